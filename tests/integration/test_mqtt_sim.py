# SPDX-License-Identifier: MIT
"""MQTT service in front of the printer simulator (pandaproxy-sim): its connection
counters, its pushall counter, its quirk of disconnecting a client that subscribes to
`#`, its limit of 4 MQTT clients, and SIGUSR1 dropping every connection."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import need, run, sim_status, start_proxy, start_sim, wait_until  # noqa: E402
from mqtt_util import (REPORT, REQUEST, _proxies, mosquitto_sub, mqtt_test,  # noqa: E402
                       proxy_client)


def setup_sim(clients_over_limit=10):
    sim = start_sim(services=("mqtt",))
    proxy = start_proxy({"mqtt": sim.port["mqtt"]}, services=("mqtt",), insecure=True,
                        extra=["--max-clients", str(clients_over_limit + 20)])
    _proxies.append(proxy)
    port = proxy.ports(["mqtt"])["mqtt"]
    proxy.wait_log("printer session up")
    return sim, proxy, port


def mqtt_counts(sim):
    return sim_status(sim)["mqtt"]


def periodic(c):
    return [p for p in c.payloads() if p.get("print", {}).get("msg") == 1]


def full(c):
    return [p for p in c.payloads() if p.get("print", {}).get("msg") == 0]


def stop_sim(sim):
    rc, _ = sim.stop()
    assert rc == 0, "simulator exited %s; log:\n%s" % (rc, sim.tail())


@mqtt_test
def many_clients_and_a_hash_subscription_share_one_simulator_connection():
    need("mosquitto_sub")
    sim, proxy, port = setup_sim()
    # Ten clients, over the simulator's limit of four, two of them subscribed to '#',
    # which would get them disconnected by the printer itself.
    pahos = [proxy_client(port, "p%d" % i, subscribe=[REPORT]) for i in range(6)]
    hashes = [proxy_client(port, "h%d" % i, subscribe=["#"]) for i in range(2)]
    subs = [mosquitto_sub(proxy, port, "#", "ms%d" % i) for i in range(2)]
    proxy.wait_log("subscribed to (#|%s)" % REPORT, count=10)
    for c in pahos + hashes:
        wait_until(lambda: len(periodic(c)) >= 2, 15, "periodic reports at " + c.name)
        assert c.disconnects == 0
    for s in subs:
        wait_until(lambda: s.log().count('"msg":1') >= 2, 15, "periodic reports at " + s.name)
        assert s.p.poll() is None
    st = mqtt_counts(sim)
    assert st["current"] == 1 and st["total"] == 1, st
    assert "subscribed to '#'" not in sim.log()
    assert sim_status(sim)["pushalls"] == 1  # the proxy's own, after connecting
    stop_sim(sim)


@mqtt_test
def a_client_pushall_reaches_the_simulator_once_and_the_full_status_reaches_all():
    sim, proxy, port = setup_sim()
    wait_until(lambda: sim_status(sim)["pushalls"] == 1, 10, "the proxy's own pushall")
    a = proxy_client(port, "ha", subscribe=[REPORT])
    b = proxy_client(port, "slicer", subscribe=["device/+/report"])
    # A periodic report first: the answer to the proxy's own pushall is behind us.
    for c in (a, b):
        wait_until(lambda: periodic(c), 10, "a periodic report at " + c.name)
    before = {c.name: len(full(c)) for c in (a, b)}
    a.publish(REQUEST, {"pushing": {"sequence_id": "0", "command": "pushall"}})
    for c in (a, b):
        wait_until(lambda: len(full(c)) > before[c.name], 10, "the full status at " + c.name)
    # Reports arrive in order: once a periodic report newer than the answer arrived,
    # a second pushall would have been counted.
    n = len(periodic(a))
    wait_until(lambda: len(periodic(a)) > n, 10, "a later report")
    assert sim_status(sim)["pushalls"] == 2, sim_status(sim)
    assert all(len(full(c)) == before[c.name] + 1 for c in (a, b))
    # A command's answer carries the client's own sequence id back to every client.
    a.publish(REQUEST, {"info": {"sequence_id": "77", "command": "get_version"}})
    for c in (a, b):
        wait_until(lambda: any(p.get("info", {}).get("sequence_id") == "77"
                               for p in c.payloads()), 10, "the get_version answer")
    stop_sim(sim)


@mqtt_test
def clients_stay_connected_when_the_simulator_drops_everyone():
    need("mosquitto_sub")
    sim, proxy, port = setup_sim()
    pahos = [proxy_client(port, "p%d" % i, subscribe=[REPORT]) for i in range(3)]
    sub = mosquitto_sub(proxy, port, REPORT, "ms")
    proxy.wait_log("subscribed to " + REPORT, count=4)
    for c in pahos:
        wait_until(lambda: periodic(c), 10, "a report before the drop")
    sim.send_signal(signal.SIGUSR1)
    proxy.wait_log("printer session lost|printer session ended")
    counts = {c.name: len(c.payloads()) for c in pahos}
    logged = sub.log().count("\n")
    # backoff starts at 1 s: back within backoff + 2 s (generous deadline).
    proxy.wait_log("printer session up", count=2, timeout=3 + 2)
    for c in pahos:
        wait_until(lambda: len(c.payloads()) > counts[c.name], 10,
                   "reports after the drop at " + c.name)
        assert c.disconnects == 0
    wait_until(lambda: sub.log().count("\n") > logged, 10, "reports after the drop at ms")
    assert sub.p.poll() is None
    # The status file lags a little: wait for the reconnect to be counted, then for
    # it to settle; exactly one connection again, and only one more in total.
    wait_until(lambda: mqtt_counts(sim)["total"] >= 2, 10, "the reconnect counted")
    st = wait_until(lambda: (lambda s: s if s["current"] == 1 else None)(mqtt_counts(sim)), 10,
                    "one connection again")
    assert st["total"] == 2, st
    wait_until(lambda: sim_status(sim)["pushalls"] == 2, 10, "a pushall after reconnecting")
    stop_sim(sim)


@mqtt_test
def lan_only_liveview_off_is_explained_once():
    # An RTSPS model whose camera is not running reports ipcam.rtsp_url = "disable".
    serial = "00M00A000000001"
    sim = start_sim(model="x1c", services=("mqtt",), serial=serial)
    proxy = start_proxy({"mqtt": sim.port["mqtt"], "chamber": 1}, services=("mqtt", "camera"),
                        insecure=True, serial=serial, camera="chamber")
    _proxies.append(proxy)
    proxy.wait_log("LAN Only Liveview", timeout=20)
    # A reconnect brings another pushall and another "disable": the advice stays single.
    sim.send_signal(signal.SIGUSR1)
    wait_until(lambda: sim_status(sim)["pushalls"] >= 2, 30, "a second pushall")
    proxy.wait_log("printer session up", count=2, timeout=30)
    assert proxy.log().count("LAN Only Liveview") == 1, proxy.log()
    stop_sim(sim)


if __name__ == "__main__":
    run()
