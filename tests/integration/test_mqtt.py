# SPDX-License-Identifier: MIT
"""MQTT service: one printer session shared by many clients.

A real mosquitto broker with a TLS listener stands in for the printer (user bblp, the
access code as password, an ACL); reports are published to it as bblp, and real
clients (mosquitto_sub, mosquitto_pub, paho-mqtt) talk to the proxy.
"""
import json
import os
import re
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CODE, SCALE, SERIAL, Proc, ca_path, need, run, start_proxy,  # noqa: E402
                     wait_until)
from mqtt_util import (REPORT, REQUEST, Broker, Client, _proxies, connect_packet,  # noqa: E402
                       mosquitto_sub, mqtt_test, proxy_client, publish_reports, publisher,
                       seqs, setup, subscribe_packet, tls_raw)


# ---- tests -------------------------------------------------------------------

@mqtt_test
def fifty_clients_get_every_report_in_order_over_one_upstream_session():
    need("mosquitto_sub")
    broker, proxy, port = setup(max_clients=80)
    subs = [mosquitto_sub(proxy, port, REPORT, "msub-%d" % i) for i in range(25)]
    pahos = [proxy_client(port, "paho-%d" % i, subscribe=[REPORT]) for i in range(25)]
    proxy.wait_log(r"subscribed to %s" % REPORT, count=50)
    pub = publisher(broker)
    publish_reports(pub, range(30))
    want = list(range(30))
    for c in pahos:
        wait_until(lambda: len(seqs(c)) >= 30, 20, "30 reports at %s" % c.name)
        assert seqs(c) == want, "%s got %s" % (c.name, seqs(c))
    for s in subs:
        def got():
            return [json.loads(line)["print"]["seq"] for line in s.log().splitlines()
                    if line.startswith("{")]
        wait_until(lambda: len(got()) >= 30, 20, "30 reports at %s" % s.name)
        assert got() == want, "%s got %s" % (s.name, got())
    log = broker.log()
    assert broker.proxy_connections() == 1, log
    proxy_subs = re.findall(r"pandaproxy-%s-[0-9a-f]+ \d (\S+)" % SERIAL, log)
    assert proxy_subs == [REPORT], proxy_subs
    assert proxy.thread_count() < 50 + 10


@mqtt_test
def pushall_from_one_client_reaches_the_printer_once_and_the_answer_reaches_all():
    broker, proxy, port = setup()
    watcher = broker.client("watcher", subscribe=[REQUEST])
    watcher.wait_subscribed()
    a = proxy_client(port, "ha", subscribe=[REPORT])
    b = proxy_client(port, "slicer", subscribe=["device/+/report"])
    a.publish(REQUEST, {"pushing": {"sequence_id": "4242", "command": "pushall"}})
    # A second, later request on the same path: once it arrived, a duplicate of the
    # first would have arrived before it.
    a.publish(REQUEST, {"info": {"sequence_id": "4243", "command": "get_version"}})

    def ids():
        return [p[k]["sequence_id"] for p in watcher.payloads() for k in p]
    wait_until(lambda: "4243" in ids(), 10, "the second request at the printer")
    assert ids().count("4242") == 1, ids()
    assert ids().count("4243") == 1, ids()
    # The printer answers with the same sequence id; every subscriber gets it.
    pub = publisher(broker)
    pub.publish(REPORT, json.dumps({"pushing": {"sequence_id": "4242", "command": "pushall"}}),
                qos=1).wait_for_publish()
    for c in (a, b):
        wait_until(lambda: any("pushing" in p for p in c.payloads()), 10, "answer at " + c.name)


@mqtt_test
def proxy_sends_pushall_after_connecting():
    broker, proxy, port = setup()
    wait_until(lambda: re.search(r"Received PUBLISH from pandaproxy-%s-[0-9a-f]+ \(d0, q0, r0, "
                                 r"m0, '%s', \.\.\. \(51 bytes\)\)" % (SERIAL, REQUEST),
                                 broker.log()), 10, "pushall at the printer")


@mqtt_test
def wrong_password_gets_connack_5_and_the_printer_sees_nothing():
    need("mosquitto_sub")
    broker, proxy, port = setup()
    before = broker.log()
    c = Client("intruder", port, password="87654321")
    assert c.wait_connected() == 5, c.rc
    c.close()
    p = Proc(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "--insecure", "--cafile",
              ca_path(proxy.state_dir), "-u", "bblp", "-P", "wrong", "-t", "#"], "badsub")
    assert p.wait() != 0
    assert "not authorised" in p.log(), p.log()
    proxy.wait_log("authentication failed", count=2)
    wrong_user = Client("wrong-user", port, password=CODE, user="admin")
    assert wrong_user.wait_connected() == 5, wrong_user.rc
    wrong_user.close()
    after = broker.log()[len(before):]
    assert "New connection" not in after and "Received" not in after, after
    assert CODE not in proxy.log()


@mqtt_test
def mqtt5_client_is_refused_with_unacceptable_protocol_version():
    need("mosquitto_sub")
    broker, proxy, port = setup()
    p = mosquitto_sub(proxy, port, REPORT, "v5", extra=["-V", "mqttv5"])
    assert p.wait() != 0
    assert "Unsupported Protocol Version" in p.log(), p.log()
    proxy.wait_log("protocol level 5; only 3.1 and 3.1.1 are supported")
    raw = tls_raw(port)
    raw.sendall(connect_packet(level=5))
    assert raw.recv(4) == bytes([0x20, 0x02, 0x00, 0x01])
    assert broker.proxy_connections() == 1


@mqtt_test
def qos1_subscribers_get_qos1_with_packet_ids_and_old_clients_are_welcome():
    broker, proxy, port = setup()
    q1 = proxy_client(port, "q1", subscribe=[REPORT], qos=1)
    q2 = proxy_client(port, "q2", subscribe=[REPORT], qos=2)  # granted 1
    import paho.mqtt.client as mqtt
    v31 = proxy_client(port, "v31", subscribe=[REPORT], qos=1, protocol=mqtt.MQTTv31)
    # Home Assistant's setup dialog: empty client id; some clients: clean session 0, a will.
    raw = tls_raw(port)
    raw.sendall(connect_packet(client_id=b"", clean=False, will=(b"some/will", b"bye")))
    assert raw.recv(4) == bytes([0x20, 0x02, 0x00, 0x00])
    raw.sendall(subscribe_packet(REPORT.encode(), qos=1))
    assert raw.recv(5) == bytes([0x90, 0x03, 0x00, 0x01, 0x01])
    proxy.wait_log("subscribed to " + REPORT, count=4)
    proxy.wait_log(r'client "v31" connected \(MQTT 3\.1,')
    pub = publisher(broker)
    publish_reports(pub, range(3))
    for c in (q1, q2, v31):
        wait_until(lambda: len(seqs(c)) == 3, 10, "reports at " + c.name)
        assert [q for t, p, q in c.msgs] == [1, 1, 1]
    # The raw client gets QoS 1 publishes with distinct non-zero packet ids.
    data = b""
    pids = []
    while len(pids) < 3:
        data += raw.recv(65536)
        while len(data) >= 2:
            n, used, mult = 0, 1, 1
            while data[used] & 0x80:
                n += (data[used] & 0x7F) * mult
                mult *= 128
                used += 1
            n += (data[used] & 0x7F) * mult
            used += 1
            if len(data) < used + n:
                break
            pkt, data = data[:used + n], data[used + n:]
            assert pkt[0] == 0x32, pkt[:4]
            tlen = struct.unpack(">H", pkt[used:used + 2])[0]
            pid = struct.unpack(">H", pkt[used + 2 + tlen:used + 4 + tlen])[0]
            pids.append(pid)
            raw.sendall(b"\x40\x02" + struct.pack(">H", pid))
    assert 0 not in pids and len(set(pids)) == 3, pids


@mqtt_test
def wildcard_subscriptions_match_and_others_do_not():
    broker, proxy, port = setup()
    hash_ = proxy_client(port, "hash", subscribe=["#"])
    plus = proxy_client(port, "plus", subscribe=["device/+/report"])
    none = proxy_client(port, "none", subscribe=["device/+/request", "other/#"])
    pub = publisher(broker)
    publish_reports(pub, range(5))
    for c in (hash_, plus):
        wait_until(lambda: len(seqs(c)) >= 5, 10, "reports at " + c.name)
        assert seqs(c) == list(range(5))
    # "none" sits in the same fan-out pass: had it matched, it would have them by now.
    late = proxy_client(port, "late", subscribe=[REPORT])
    publish_reports(pub, [5])
    # The latest report at once on subscribing, then the marker.
    wait_until(lambda: seqs(late) == [4, 5], 10, "the marker at late")
    wait_until(lambda: len(seqs(hash_)) == 6, 10, "the marker at hash")
    assert none.msgs == [], none.msgs
    assert broker.proxy_connections() == 1
    # Unsubscribing stops delivery.
    unsubacked = threading.Event()
    plus.c.on_unsubscribe = lambda c, u, mid: unsubacked.set()
    plus.c.unsubscribe("device/+/report")
    wait_until(unsubacked.is_set, 10, "UNSUBACK")
    publish_reports(pub, [6])
    wait_until(lambda: len(seqs(hash_)) == 7, 10, "the next marker at hash")
    assert seqs(plus) == list(range(6)), seqs(plus)


@mqtt_test
def publishes_to_other_topics_are_not_forwarded():
    broker, proxy, port = setup()
    watcher = broker.client("watcher", subscribe=["#"])
    watcher.wait_subscribed()
    c = proxy_client(port, "client")
    c.publish("device/%s/report" % SERIAL, {"x": "spoof"})
    c.publish("device/OTHER/request", {"x": "other"})
    c.publish("device/%s/other" % SERIAL, {"x": "third"})
    c.publish(REQUEST, {"x": "marker"})
    wait_until(lambda: {"x": "marker"} in watcher.payloads(), 10, "the marker at the printer")
    got = watcher.payloads()
    assert {"x": "spoof"} not in got and {"x": "other"} not in got and {"x": "third"} not in got
    proxy.wait_log("dropped a publish to device/%s/report" % SERIAL)


@mqtt_test
def qos1_request_is_acked_only_after_the_printer_acked_it():
    broker, proxy, port = setup()
    c = proxy_client(port, "qos1")
    broker.stop()
    proxy.wait_log("printer session lost|printer session ended")
    info = c.publish(REQUEST, {"print": {"sequence_id": "7", "command": "pause"}}, qos=1)
    proxy.wait_log("request held")
    assert info.mid not in c.acked, "PUBACK before the printer had the request"
    seen = {}

    def on_publish(cl, u, mid):
        # Read the broker log at the moment the client gets its PUBACK.
        seen["log"] = broker.log()
        c.acked[mid] = time.monotonic()
    c.c.on_publish = on_publish
    broker.start()
    wait_until(lambda: info.mid in c.acked, 15, "PUBACK after the printer came back")
    assert re.search(r"Sending PUBACK to pandaproxy-%s-[0-9a-f]+" % SERIAL, seen["log"]), \
        seen["log"]


@mqtt_test
def requests_wait_a_bounded_time_and_count_while_the_printer_is_away():
    broker, proxy, port = setup()
    c = proxy_client(port, "impatient")
    broker.stop()
    proxy.wait_log("printer session lost|printer session ended")
    for i in range(70):  # more than the queue holds
        c.publish(REQUEST, {"print": {"sequence_id": "old-%d" % i, "command": "pause"}})
    proxy.wait_log(r"request dropped: 64 requests already wait for the printer")

    def expired():
        return sum(int(n) for n in re.findall(
            r"dropped (\d+) client request\(s\): printer unavailable for 10 s", proxy.log()))
    wait_until(lambda: expired() >= 64, 20, "64 requests expired")
    assert expired() == 64, proxy.log()
    broker.start()
    proxy.wait_log("printer session up", count=2, timeout=45)
    watcher = broker.client("watcher", subscribe=[REQUEST])
    watcher.wait_subscribed()
    c.publish(REQUEST, {"print": {"sequence_id": "new", "command": "resume"}})

    def ids():
        return [p["print"]["sequence_id"] for p in watcher.payloads() if "print" in p]
    wait_until(lambda: "new" in ids(), 10, "the fresh request at the printer")
    assert ids() == ["new"], ids()


@mqtt_test
def clients_survive_a_printer_restart_and_get_reports_again():
    need("mosquitto_sub")
    broker, proxy, port = setup()
    pahos = [proxy_client(port, "p%d" % i, subscribe=[REPORT]) for i in range(3)]
    subs = [mosquitto_sub(proxy, port, REPORT, "s%d" % i) for i in range(2)]
    proxy.wait_log("subscribed to " + REPORT, count=5)
    pub = publisher(broker)
    publish_reports(pub, [1])
    for c in pahos:
        wait_until(lambda: seqs(c) == [1], 10, "first report")
    pub.close()
    broker.stop()
    proxy.wait_log("printer session lost|printer session ended")
    broker.start()
    # backoff starts at 1 s: up again within backoff + 2 s (generous deadline).
    proxy.wait_log("printer session up", count=2, timeout=3 + 2)
    wait_until(lambda: re.search(r"Received PUBLISH from pandaproxy-\S+ .*'%s'" % REQUEST,
                                 broker.log()), 5, "pushall after reconnect")
    pub = publisher(broker)
    publish_reports(pub, [2])
    for c in pahos:
        wait_until(lambda: seqs(c) == [1, 2], 10, "report after restart at " + c.name)
        assert c.disconnects == 0
    for s in subs:
        wait_until(lambda: '"seq": 2' in s.log(), 10, "report after restart at " + s.name)
        assert s.p.poll() is None
    assert broker.proxy_connections() == 1


@mqtt_test
def a_client_that_stops_reading_is_dropped_and_others_miss_nothing():
    need("mosquitto_sub")
    broker, proxy, port = setup()
    goods = [mosquitto_sub(proxy, port, REPORT, "good-%d" % i) for i in range(2)]
    slow = tls_raw(port, rcvbuf=4096)
    slow.sendall(connect_packet(client_id=b"slow"))
    assert slow.recv(4) == bytes([0x20, 0x02, 0x00, 0x00])
    slow.sendall(subscribe_packet(REPORT.encode()))
    assert slow.recv(5)[0] == 0x90
    proxy.wait_log("subscribed to " + REPORT, count=3)

    def got(good):
        return [json.loads(line)["print"]["seq"] for line in good.log().splitlines()
                if line.startswith("{") and line.endswith("}")]

    def caught_up(n):
        # The healthy clients read what they get: at most one batch behind the
        # publisher, far from the queue limit, however loaded the machine is.
        for good in goods:
            wait_until(lambda: len(got(good)) >= n, 30, "%d reports at %s" % (n, good.name))
    pub = publisher(broker)
    n = 0
    pad = 32 * 1024
    while "fell behind" not in proxy.log():
        assert n < 3000, "the slow client was never dropped"
        publish_reports(pub, range(n, n + 20), pad)
        n += 20
        caught_up(n)
    publish_reports(pub, range(n, n + 20), pad)
    n += 20
    caught_up(n)
    for good in goods:
        assert got(good) == list(range(n)), good.name
        assert good.p.poll() is None
    behind = [line for line in proxy.log().splitlines() if "fell behind" in line]
    assert len(behind) == 1 and re.search(
        r"client \"slow\" fell behind \(\d+ reports, \d+ bytes queued\)", behind[0]), behind
    slow.close()


@mqtt_test
def a_silent_client_is_closed_after_one_and_a_half_keepalives():
    broker, proxy, port = setup()
    s = tls_raw(port)
    s.sendall(connect_packet(client_id=b"silent", keepalive=1))
    assert s.recv(4) == bytes([0x20, 0x02, 0x00, 0x00])
    s.settimeout(10 * SCALE)
    assert s.recv(1) == b""
    proxy.wait_log(r"client \"silent\" silent for 1.5 x keepalive")
    # A client that pings stays.
    alive = proxy_client(port, "pinger", keepalive=1)
    t0 = time.monotonic()
    wait_until(lambda: time.monotonic() - t0 > 3, 10, "three keepalive periods")
    assert alive.disconnects == 0


@mqtt_test
def garbage_and_late_connect_are_closed_cleanly():
    broker, proxy, port = setup()
    s = tls_raw(port)
    s.sendall(b"\x10\xff\xff\xff\xff\x7f")  # remaining length over 4 bytes
    s.settimeout(10 * SCALE)
    assert s.recv(16) == b""
    s = tls_raw(port)
    s.sendall(subscribe_packet(b"#"))  # not a CONNECT first
    assert s.recv(16) == b""
    proxy.wait_log("not CONNECT")
    ok = proxy_client(port, "after-garbage", subscribe=[REPORT])
    pub = publisher(broker)
    publish_reports(pub, [1])
    wait_until(lambda: seqs(ok) == [1], 10, "the report after garbage")


@mqtt_test
def printer_refusing_the_access_code_is_logged_and_clients_stay_served():
    broker = Broker()
    proxy = start_proxy({"mqtt": broker.port}, services=("mqtt",), insecure=True,
                        code="87654321")
    _proxies.append(proxy)
    port = proxy.ports(["mqtt"])["mqtt"]
    proxy.wait_log(r"printer refused the MQTT login \(CONNACK 5\): check the access code")
    wait_until(lambda: "not authorised" in broker.log() or "not authorized" in broker.log(),
               10, "the broker's refusal in its log")
    # Clients log in with the code the proxy was given and wait for the printer.
    c = Client("waiting", port, password="87654321", subscribe=[REPORT])
    assert c.wait_connected() == 0
    assert "87654321" not in proxy.log()


@mqtt_test
def a_client_that_never_sends_connect_is_closed():
    broker, proxy, port = setup()
    s = tls_raw(port)
    s.settimeout(30 * SCALE)
    assert s.recv(16) == b""  # closed by the proxy's 10 s CONNECT deadline
    proxy.wait_log(r"no CONNECT from \S+: timed out")


@mqtt_test
def a_new_subscriber_gets_the_latest_report_without_waiting_for_the_next():
    need("mosquitto_sub")
    broker, proxy, port = setup()
    early = proxy_client(port, "early", subscribe=[REPORT])
    pub = publisher(broker)
    publish_reports(pub, [1, 2])
    wait_until(lambda: seqs(early) == [1, 2], 10, "two reports at the early client")
    late = proxy_client(port, "late", subscribe=[REPORT, "device/#"])
    wait_until(lambda: seqs(late) == [2], 10, "the latest report at the late client")
    sub = mosquitto_sub(proxy, port, REPORT, "late-sub")
    wait_until(lambda: '"seq": 2' in sub.log(), 10, "the latest report at mosquitto_sub")
    publish_reports(pub, [3])
    wait_until(lambda: seqs(late) == [2, 3], 10, "the next report at the late client")
    wait_until(lambda: '"seq": 3' in sub.log(), 10, "the next report at mosquitto_sub")
    assert seqs(early) == [1, 2, 3]
    assert '"seq": 1' not in sub.log()
    # A printer restart forgets it: what came before may no longer be true.
    pub.close()
    broker.stop()
    proxy.wait_log("printer session ended")  # logged once the session is torn down
    after = proxy_client(port, "after-restart", subscribe=[REPORT])
    broker.start()
    proxy.wait_log("printer session up", count=2, timeout=3 + 2)
    pub = publisher(broker)
    publish_reports(pub, [4])
    wait_until(lambda: seqs(after) == [4], 10, "the first report after the restart")


def _takeover_lines(proxy, name):
    """(new connection, old connection) of each takeover of client id name in the log."""
    return [(int(a), int(b)) for a, b in re.findall(
        r"client \"%s\" connected again as connection (\d+): closing its connection (\d+)"
        % re.escape(name), proxy.log())]


@mqtt_test
def a_client_id_in_use_is_taken_over_by_the_new_connection():
    """MQTT 3.1.1 3.1.4: the server disconnects the client already using the id."""
    need("mosquitto_sub")
    broker, proxy, port = setup()
    first = Client("ha-same", port, subscribe=[REPORT], connect=False)
    first.c.reconnect_delay_set(min_delay=120, max_delay=120)  # no ping-pong in the test
    first.c.connect("127.0.0.1", port, keepalive=60)
    first.c.loop_start()
    assert first.wait_connected() == 0
    first.wait_subscribed()
    pub = publisher(broker)
    publish_reports(pub, [1])
    wait_until(lambda: seqs(first) == [1], 10, "the first report at the first client")
    second = mosquitto_sub(proxy, port, REPORT, "ha-same")
    wait_until(lambda: first.disconnects == 1, 10, "the first client disconnected")
    proxy.wait_log("subscribed to " + REPORT, count=2)
    (new, old), = _takeover_lines(proxy, "ha-same")
    assert new != old
    proxy.wait_log(r"\[mqtt#%d\] client \"ha-same\" taken over by connection %d: closed"
                   % (old, new))
    publish_reports(pub, [2])
    wait_until(lambda: '"seq": 2' in second.log(), 10, "the report at the second client")
    assert seqs(first) == [1]
    assert second.p.poll() is None
    assert broker.proxy_connections() == 1


@mqtt_test
def a_dead_connection_is_replaced_when_its_client_comes_back():
    """Home Assistant after a network blip: the old TCP connection still looks open."""
    broker, proxy, port = setup()
    stale = tls_raw(port)
    stale.sendall(connect_packet(client_id=b"ha-blip", keepalive=60))
    assert stale.recv(4) == bytes([0x20, 0x02, 0x00, 0x00])
    stale.sendall(subscribe_packet(REPORT.encode()))
    assert stale.recv(5)[0] == 0x90
    back = proxy_client(port, "ha-blip", subscribe=[REPORT])
    stale.settimeout(10 * SCALE)
    while stale.recv(4096):
        pass  # closed by the proxy: EOF, after whatever was in flight
    pub = publisher(broker)
    publish_reports(pub, [7])
    wait_until(lambda: seqs(back) == [7], 10, "the report at the client that came back")
    assert back.disconnects == 0
    assert len(_takeover_lines(proxy, "ha-blip")) == 1


@mqtt_test
def clients_without_an_id_never_take_each_other_over():
    broker, proxy, port = setup()
    raws = []
    for _ in range(2):
        r = tls_raw(port)
        r.sendall(connect_packet(client_id=b""))
        assert r.recv(4) == bytes([0x20, 0x02, 0x00, 0x00])
        r.sendall(subscribe_packet(REPORT.encode()))
        assert r.recv(5)[0] == 0x90
        raws.append(r)
    proxy.wait_log("subscribed to " + REPORT, count=2)
    pub = publisher(broker)
    publish_reports(pub, [3])
    for r in raws:
        r.settimeout(10 * SCALE)
        got = b""
        while b'"seq": 3' not in got:
            chunk = r.recv(65536)
            assert chunk, "an id-less client was closed"
            got += chunk
    assert "connected again" not in proxy.log()
    assert "taken over" not in proxy.log()


if __name__ == "__main__":
    run()
