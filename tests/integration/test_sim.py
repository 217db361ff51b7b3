# SPDX-License-Identifier: MIT
"""The printer simulator on its own, with real clients: its MQTT broker (mosquitto_sub/
mosquitto_pub and paho), the chamber camera (a TLS socket that speaks the protocol), the
quirks (connection limits, `#` subscriptions, --pushall-interval, SIGUSR1, --stall-after)
and the counters in sim-status.json. FTPS and RTSPS have their own test files."""
import json
import os
import random
import signal
import socket
import ssl
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (CODE, SCALE, SERIAL, Proc, SkipTest, ca_path, chamber_auth,  # noqa: E402
                     chamber_read_frame, need, recv_exact, run, sim_status, test, wait_until)

try:
    import paho.mqtt.client as paho
except ImportError:  # the test host lacks python3-paho-mqtt
    paho = None

REPORT = "device/%s/report" % SERIAL
REQUEST = "device/%s/request" % SERIAL


def start_sim(*args, extra=(), **kw):
    """The simulator on an address of its own in 127.0.0.0/8: a client of some other test
    still retrying a port the kernel has since handed to this simulator cannot reach it
    and spoil the connection counts."""
    host = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255),
                             random.randint(1, 254))
    sim = harness.start_sim(*args, extra=["--bind", host] + list(extra), **kw)
    sim.host = host
    return sim


def tls_connect(sim, svc):
    return harness.tls_connect(sim.port[svc], host=sim.host)


class Mqtt:
    """A paho (1.x API) client of the simulator that records what it receives."""

    def __init__(self, sim, code=CODE, protocol=None, subscribe=REPORT, keepalive=60):
        if paho is None:
            raise SkipTest("python3-paho-mqtt is not installed")
        self.lock = threading.Lock()
        self.msgs = []
        self.connack = None
        self.disconnected = None
        self.suback = None
        self.subscribe_to = subscribe
        # paho 2.x needs the callback API named; these callbacks are the 1.x ones.
        api = (paho.CallbackAPIVersion.VERSION1,) if hasattr(paho, "CallbackAPIVersion") else ()
        c = paho.Client(*api, client_id="", clean_session=True,
                        protocol=protocol or paho.MQTTv311, reconnect_on_failure=False)
        c.tls_set(ca_certs=ca_path(sim.state_dir))
        c.tls_insecure_set(True)  # the certificate's CN is the serial, not 127.0.0.1
        c.username_pw_set("bblp", code)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.c = c
        c.connect(getattr(sim, "host", "127.0.0.1"), sim.port["mqtt"], keepalive=keepalive)
        c.loop_start()

    def _on_connect(self, c, userdata, flags, rc):
        self.connack = rc
        if rc == 0 and self.subscribe_to:
            c.subscribe(self.subscribe_to)

    def _on_disconnect(self, c, userdata, rc):
        self.disconnected = rc

    def _on_subscribe(self, c, userdata, mid, granted):
        self.suback = granted

    def _on_message(self, c, userdata, m):
        with self.lock:
            self.msgs.append(json.loads(m.payload))

    def messages(self):
        with self.lock:
            return list(self.msgs)

    def ready(self):
        wait_until(lambda: self.suback is not None, 10, "SUBACK")
        return self

    def request(self, obj, qos=0):
        info = self.c.publish(REQUEST, json.dumps(obj), qos=qos)
        return info

    def wait_msg(self, pred, what, timeout=10):
        return wait_until(lambda: next((m for m in self.messages() if pred(m)), None),
                          timeout, what)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def prints(m):
    return m.get("print", {})


def is_full(m):
    return prints(m).get("command") == "push_status" and prints(m).get("msg") == 0


def answer_to(kind, seq):
    return lambda m: kind in m and m[kind].get("sequence_id") == seq


def mqtt_status(sim):
    return sim_status(sim)["mqtt"]


def stop_clean(sim):
    """SIGTERM ends the simulator promptly with status 0 (sanitizer builds: no leak report)."""
    rc, _ = sim.stop()
    assert rc == 0, "simulator exited %s; log:\n%s" % (rc, sim.tail())


# ---- MQTT ----------------------------------------------------------------------

@test
def mosquitto_sub_gets_reports_and_a_full_status_after_pushall():
    need("mosquitto_sub", "mosquitto_pub")
    sim = start_sim(services=("mqtt",))
    port = str(sim.port["mqtt"])
    tls = ["--cafile", ca_path(sim.state_dir), "--insecure", "-h", sim.host, "-p", port,
           "-u", "bblp", "-P", CODE]
    sub = Proc(["mosquitto_sub"] + tls + ["-t", REPORT], "mosquitto_sub")
    # Two periodic reports: only changed fields, msg 1.
    sub.wait_log(r'"command":"push_status","msg":1', timeout=10, count=2)
    pub = Proc(["mosquitto_pub"] + tls + ["-t", REQUEST, "-m",
               '{"pushing":{"command":"pushall","sequence_id":"0"}}'], "mosquitto_pub")
    assert pub.wait() == 0, pub.log()
    sub.wait_log(r'"msg":0', timeout=10)
    full = next(json.loads(line) for line in sub.log().splitlines() if '"msg":0' in line)
    st = full["print"]
    for key in ("gcode_state", "mc_percent", "mc_remaining_time", "nozzle_temper",
                "nozzle_target_temper", "bed_temper", "bed_target_temper", "layer_num",
                "total_layer_num", "wifi_signal", "subtask_name", "gcode_file", "print_type",
                "spd_lvl", "lights_report", "ipcam", "sequence_id"):
        assert key in st, "full status lacks %s: %s" % (key, st)
    assert st["gcode_state"] == "IDLE"
    assert "rtsp_url" not in st["ipcam"], "a chamber model has no rtsp_url"
    periodic = [json.loads(line)["print"] for line in sub.log().splitlines()
                if '"msg":1' in line]
    assert all("ipcam" not in p for p in periodic), "periodic reports carry only changes"
    s = wait_until(lambda: (lambda s: s if s["pushalls"] == 1 and s["messages"] >= 3 else None)(
        sim_status(sim)), 5, "pushall counted")
    assert s["mqtt"]["total"] == 2, s  # mosquitto_sub and mosquitto_pub


@test
def paho_get_version_names_the_model():
    for model, product in (("p1s", "P1S"), ("a1mini", "A1 mini")):
        sim = start_sim(model=model, services=("mqtt",), name="sim-" + model)
        cl = Mqtt(sim).ready()
        cl.request({"info": {"command": "get_version", "sequence_id": "42"}})
        m = cl.wait_msg(answer_to("info", "42"), "get_version answer")["info"]
        assert m["result"] == "success", m
        assert m["command"] == "get_version"
        assert any(mod.get("product_name") == product for mod in m["module"]), m
        assert all(mod["sn"] == SERIAL for mod in m["module"]), m
        cl.close()
        sim.stop()


@test
def rtsps_model_reports_rtsp_url_disable_without_a_camera_server():
    sim = start_sim(model="x1c", services=("mqtt",))
    cl = Mqtt(sim).ready()
    cl.request({"pushing": {"command": "pushall", "sequence_id": "1"}})
    st = cl.wait_msg(is_full, "full status")["print"]
    assert st["ipcam"]["rtsp_url"] == "disable", st["ipcam"]
    cl.request({"info": {"command": "get_version", "sequence_id": "2"}})
    m = cl.wait_msg(answer_to("info", "2"), "get_version answer")["info"]
    assert any(mod.get("product_name") == "X1 Carbon" for mod in m["module"]), m


@test
def mqtt_31_client_and_qos1_publish_get_puback():
    sim = start_sim(services=("mqtt",))
    cl = Mqtt(sim, protocol=paho.MQTTv31 if paho else None).ready()
    assert cl.connack == 0
    info = cl.request({"pushing": {"command": "pushall", "sequence_id": "5"}}, qos=1)
    # paho marks a QoS 1 message published only once the PUBACK arrived.
    wait_until(info.is_published, 10, "PUBACK")
    cl.wait_msg(is_full, "full status")


def gcode_state(cl):
    """The printer state as the client saw it last (reports carry only changes)."""
    state = None
    for m in cl.messages():
        if prints(m).get("command") == "push_status" and "gcode_state" in prints(m):
            state = prints(m)["gcode_state"]
    return state


@test
def print_commands_change_the_state_and_echo_sequence_id():
    sim = start_sim(services=("mqtt",))
    with open(os.path.join(sim.ftp_root, "cube.3mf"), "wb") as f:
        f.write(b"PK\x03\x04 not really a 3mf")
    cl = Mqtt(sim).ready()

    def command(cmd, seq, **kw):
        body = {"command": cmd, "sequence_id": seq}
        body.update(kw)
        cl.request({"print": body})
        return cl.wait_msg(answer_to("print", seq), cmd + " answer")["print"]

    a = command("pause", "s1")
    assert a["result"] == "failed" and a["reason"], a  # nothing is printing
    a = command("project_file", "s2", url="ftp:///missing.3mf", param="Metadata/plate_1.gcode")
    assert a["result"] == "failed" and "not found" in a["reason"], a
    a = command("project_file", "s3", url="ftp:///cube.3mf", param="Metadata/plate_1.gcode",
                subtask_name="cube")
    assert a["result"] == "success", a
    wait_until(lambda: gcode_state(cl) == "RUNNING", 10, "RUNNING")
    # A running print advances.
    wait_until(lambda: any(prints(m).get("mc_percent", 0) >= 2 for m in cl.messages()), 10,
               "mc_percent advancing")
    assert command("pause", "s4")["result"] == "success"
    wait_until(lambda: gcode_state(cl) == "PAUSE", 10, "PAUSE")
    assert command("resume", "s5")["result"] == "success"
    wait_until(lambda: gcode_state(cl) == "RUNNING", 10, "RUNNING again")
    assert command("stop", "s6")["result"] == "success"
    wait_until(lambda: gcode_state(cl) == "IDLE", 10, "IDLE")
    cl.request({"pushing": {"command": "pushall", "sequence_id": "0"}})
    st = cl.wait_msg(lambda m: is_full(m) and prints(m)["gcode_state"] == "IDLE",
                     "full status after stop")["print"]
    assert st["gcode_file"] == "cube.3mf" and st["subtask_name"] == "cube", st
    stop_clean(sim)


@test
def wrong_access_code_gets_connack_5():
    sim = start_sim(services=("mqtt",))
    cl = Mqtt(sim, code="87654321")
    wait_until(lambda: cl.connack is not None, 10, "CONNACK")
    assert cl.connack == 5, cl.connack
    cl.close()
    assert "87654321" not in sim.log()
    sim.wait_log(r"wrong user or access code")


@test
def subscribing_to_everything_or_the_request_topic_disconnects():
    sim = start_sim(services=("mqtt",))
    for topic in ("#", REQUEST):
        cl = Mqtt(sim, subscribe=topic)
        wait_until(lambda: cl.disconnected is not None, 10, "disconnect after SUBSCRIBE " + topic)
        assert cl.disconnected != 0, "the printer, not the client, ended it"
        assert cl.suback is None, "no SUBACK for a forbidden filter"
        cl.close()
    sim.wait_log(r"subscribed to '#'.*disconnecting")
    # A proper subscription keeps working.
    ok = Mqtt(sim).ready()
    ok.wait_msg(lambda m: prints(m).get("msg") == 1, "a periodic report")
    assert ok.disconnected is None


@test
def fifth_mqtt_client_is_refused_over_the_default_limit():
    sim = start_sim(services=("mqtt",))
    clients = [Mqtt(sim).ready() for _ in range(4)]
    wait_until(lambda: mqtt_status(sim)["current"] == 4, 10, "4 clients counted")
    refused = False
    try:
        s = tls_connect(sim, "mqtt")
        refused = s.recv(1) == b""
    except (OSError, ssl.SSLError):
        refused = True
    assert refused, "a 5th connection completed a TLS handshake"
    sim.wait_log(r"refusing")
    clients[0].close()
    wait_until(lambda: mqtt_status(sim)["current"] == 3, 10, "a slot freed")
    again = Mqtt(sim).ready()
    assert again.connack == 0
    stop_clean(sim)


@test
def limit_option_sets_the_mqtt_connection_limit():
    sim = start_sim(services=("mqtt",), extra=["--limit", "mqtt=1"])
    first = Mqtt(sim).ready()
    try:
        s = tls_connect(sim, "mqtt")
        refused = s.recv(1) == b""
    except (OSError, ssl.SSLError):
        refused = True
    assert refused, "a 2nd connection completed a TLS handshake with --limit mqtt=1"
    sim.wait_log(r"refusing")
    assert first.disconnected is None
    # The refused connection never became a client.
    wait_until(lambda: sim_status(sim)["mqtt"]["total"] == 1, 10, "one connection counted")


@test
def pushall_interval_ignores_a_quick_second_pushall():
    sim = start_sim(services=("mqtt",), extra=["--pushall-interval", "600"])
    cl = Mqtt(sim).ready()
    cl.request({"pushing": {"command": "pushall", "sequence_id": "1"}})
    cl.request({"pushing": {"command": "pushall", "sequence_id": "2"}})
    wait_until(lambda: sim_status(sim)["pushalls"] == 2, 10, "2 pushalls counted")
    s = sim_status(sim)
    assert s["pushalls_ignored"] == 1, s
    sim.wait_log(r"pushall \d+ ms after the previous one: ignored")
    # Reports arrive in order: once a periodic report newer than both pushalls arrived,
    # every answer to them would have arrived too.
    n = len(cl.messages())
    wait_until(lambda: len(cl.messages()) > n + 1, 10, "later reports")
    assert sum(1 for m in cl.messages() if is_full(m)) == 1, cl.messages()


@test
def pingreq_is_answered_and_keepalive_silence_closes_the_client():
    sim = start_sim(services=("mqtt",))
    s = tls_connect(sim, "mqtt")
    user, pw = b"bblp", CODE.encode()
    body = (struct.pack(">H", 4) + b"MQTT" + bytes([4, 0xC2]) + struct.pack(">H", 1) +
            struct.pack(">H", 2) + b"ka" + struct.pack(">H", len(user)) + user +
            struct.pack(">H", len(pw)) + pw)
    s.sendall(bytes([0x10, len(body)]) + body)
    assert recv_exact(s, 4) == b"\x20\x02\x00\x00"  # CONNACK accepted
    s.sendall(b"\xc0\x00")  # PINGREQ
    assert recv_exact(s, 2) == b"\xd0\x00"  # PINGRESP
    s.settimeout(10 * SCALE)
    # Keepalive 1 s and no PINGREQ: the broker closes after 1.5 s of silence.
    assert s.recv(1) == b""
    sim.wait_log(r"keepalive expired")


@test
def sigusr1_drops_every_connection_and_counters_follow():
    sim = start_sim(services=("mqtt", "chamber"))
    a, b = Mqtt(sim).ready(), Mqtt(sim).ready()
    cam = tls_connect(sim, "chamber")
    cam.sendall(chamber_auth())
    chamber_read_frame(cam)
    wait_until(lambda: (lambda s: s["mqtt"]["current"] == 2 and s["chamber"]["current"] == 1)(
        sim_status(sim)), 10, "3 connections counted")
    sim.send_signal(signal.SIGUSR1)
    wait_until(lambda: a.disconnected is not None and b.disconnected is not None, 10,
               "MQTT clients disconnected")
    cam.settimeout(10 * SCALE)
    try:
        while True:
            chamber_read_frame(cam)
    except (EOFError, OSError):
        pass
    s = wait_until(lambda: (lambda s: s if s["mqtt"]["current"] == 0 and
                            s["chamber"]["current"] == 0 else None)(sim_status(sim)), 10,
                   "connections gone")
    assert s["mqtt"]["total"] == 2 and s["chamber"]["total"] == 1, s
    sim.wait_log(r"SIGUSR1")
    # The printer is still there: clients come back.
    c = Mqtt(sim).ready()
    c.wait_msg(lambda m: prints(m).get("msg") == 1, "a report after the blip")
    wait_until(lambda: mqtt_status(sim)["total"] == 3, 10, "the reconnect counted")
    stop_clean(sim)  # with a client still connected


@test
def sigusr2_logs_the_counters():
    sim = start_sim(services=("mqtt",))
    sim.send_signal(signal.SIGUSR2)
    sim.wait_log(r"status: mqtt 0/0")


# ---- chamber camera --------------------------------------------------------------

@test
def chamber_client_gets_jpeg_frames_with_the_header_in_its_own_record():
    sim = start_sim(services=("chamber",), extra=["--fps", "5"])
    cam = tls_connect(sim, "chamber")
    cam.sendall(chamber_auth())
    # One SSL_read returns at most one TLS record: a 16-byte read result proves the
    # header travelled alone, as Home Assistant's integration expects.
    hdr = cam.recv(65536)
    assert len(hdr) == 16, "header shares its record: got %d bytes" % len(hdr)
    (n,) = struct.unpack_from("<I", hdr, 0)
    jpg = recv_exact(cam, n)
    assert jpg[:4] == b"\xff\xd8\xff\xe0" and jpg[-2:] == b"\xff\xd9", jpg[:4].hex()
    for _ in range(3):
        hdr, jpg = chamber_read_frame(cam)
        assert jpg[:4] == b"\xff\xd8\xff\xe0" and jpg[-2:] == b"\xff\xd9"
    wait_until(lambda: sim_status(sim)["frames"] >= 4, 10, "frames counted")
    stop_clean(sim)


@test
def second_chamber_client_is_refused():
    sim = start_sim(services=("chamber",))
    first = tls_connect(sim, "chamber")
    first.sendall(chamber_auth())
    chamber_read_frame(first)
    refused = False
    try:
        second = tls_connect(sim, "chamber")
        second.sendall(chamber_auth())
        second.settimeout(10 * SCALE)
        refused = second.recv(16) == b""
    except (OSError, ssl.SSLError):
        refused = True
    assert refused, "a second chamber client got a frame"
    sim.wait_log(r"refusing")
    chamber_read_frame(first)  # the first one is unaffected


@test
def chamber_bad_code_is_closed_without_a_frame():
    sim = start_sim(services=("chamber",))
    cam = tls_connect(sim, "chamber")
    cam.sendall(chamber_auth(code="00000000"))
    cam.settimeout(10 * SCALE)
    try:
        got = cam.recv(16)
    except (ConnectionResetError, ssl.SSLError):
        got = b""
    assert got == b"", "got bytes after a wrong code"
    sim.wait_log(r"wrong user or access code")
    assert sim_status(sim)["frames"] == 0


@test
def chamber_stall_after_stops_frames_but_keeps_the_connection():
    sim = start_sim(services=("chamber",), extra=["--fps", "5", "--stall-after", "1"])
    cam = tls_connect(sim, "chamber")
    cam.sendall(chamber_auth())
    chamber_read_frame(cam)
    sim.wait_log(r"stalling")
    frames = sim_status(sim)["frames"]
    cam.settimeout(1.5 * SCALE)
    try:
        while True:  # drain what was sent before the stall
            chamber_read_frame(cam)
    except socket.timeout:
        pass
    # Silent yet open: the server still counts the client and sent nothing more.
    s = sim_status(sim)
    assert s["chamber"]["current"] == 1 and s["frames"] == frames, s


if __name__ == "__main__":
    run()
