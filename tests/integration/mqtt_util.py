# SPDX-License-Identifier: MIT
"""Helpers of the MQTT service tests and benchmark: a mosquitto TLS broker standing in
for the printer, paho clients that record what they get, the proxy set up in front of
a printer, and raw MQTT packets for clients that misbehave on purpose."""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CODE, SCALE, SERIAL, Proc, ca_path, need, new_dir,  # noqa: E402
                     start_proxy, test, tls_client_ctx, wait_until)

REPORT = "device/%s/report" % SERIAL
REQUEST = "device/%s/request" % SERIAL
UP_CONN_RE = r"New client connected from \S+ as pandaproxy-%s-[0-9a-f]+ \(p2, " % SERIAL


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- the stand-in printer ----------------------------------------------------

class Broker:
    """mosquitto over TLS with bblp/CODE, an ACL and a log of everything it does."""

    def __init__(self, port=None, log_types=("all",)):
        need("mosquitto", "mosquitto_passwd", "openssl")
        self.dir = new_dir("broker")
        self.port = port or free_port()
        self.cert = os.path.join(self.dir, "printer.crt")
        key = os.path.join(self.dir, "printer.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
                        self.cert, "-days", "2", "-subj", "/CN=" + SERIAL],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pw = os.path.join(self.dir, "passwd")
        with open(pw, "w") as f:
            f.write("bblp:%s\n" % CODE)
        subprocess.run(["mosquitto_passwd", "-U", pw], check=True)
        acl = os.path.join(self.dir, "acl")
        with open(acl, "w") as f:
            f.write("user bblp\ntopic readwrite device/#\n")
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.runs = 0
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "listener %d 127.0.0.1" % self.port,
                "certfile " + self.cert, "keyfile " + key,
                "password_file " + pw, "acl_file " + acl,
                "allow_anonymous false", "set_tcp_nodelay true",
                "user " + _user(),
                "\n".join("log_type " + t for t in log_types),
                "log_dest file LOGFILE", ""]))
        self.proc = None
        self.start()

    def start(self):
        self.runs += 1
        self.logpath = os.path.join(self.dir, "mosquitto-%d.log" % self.runs)
        conf = os.path.join(self.dir, "run-%d.conf" % self.runs)
        with open(self.conf) as f, open(conf, "w") as g:
            g.write(f.read().replace("LOGFILE", self.logpath))
        self.proc = Proc(["mosquitto", "-c", conf], "mosquitto")
        wait_until(lambda: "running" in self.log(), 10, "mosquitto to start")

    def stop(self):
        self.proc.stop()

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def proxy_connections(self):
        return len(re.findall(UP_CONN_RE, self.log()))

    def client(self, name, **kw):
        return Client(name, self.port, cafile=self.cert, **kw)


def _user():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


# ---- paho clients ------------------------------------------------------------

class Client:
    """A paho-mqtt 1.x client running its network loop in a thread."""

    def __init__(self, name, port, password=CODE, cafile=None, subscribe=(), qos=0,
                 keepalive=60, connect=True, user="bblp", protocol=None):
        import paho.mqtt.client as mqtt
        self.mqtt = mqtt
        self.name = name
        self.lock = threading.Lock()
        self.closed = False
        self.msgs = []
        self.rc = None
        self.disconnects = 0
        self.acked = {}
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id=name, clean_session=True,
                             protocol=protocol or mqtt.MQTTv311)
        self.c.username_pw_set(user, password)
        ctx = tls_client_ctx()
        self.c.tls_set_context(ctx)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_publish = self._on_publish
        self.topics = list(subscribe)
        self.qos = qos
        _clients.append(self)
        if connect:
            self.c.connect("127.0.0.1", port, keepalive=keepalive)
            self.c.loop_start()

    def _on_connect(self, c, u, flags, rc):
        # paho leaves Nagle on: each large publish would wait for a delayed ACK.
        c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rc = rc
        if rc == 0 and self.topics:
            c.subscribe([(t, self.qos) for t in self.topics])

    def _on_message(self, c, u, m):
        with self.lock:
            self.msgs.append((m.topic, m.payload, m.qos))

    def _on_disconnect(self, c, u, rc):
        self.disconnects += 1

    def _on_publish(self, c, u, mid):
        self.acked[mid] = time.monotonic()

    def payloads(self, topic=None):
        with self.lock:
            return [json.loads(p) for t, p, q in self.msgs if topic is None or t == topic]

    def wait_connected(self, what=""):
        wait_until(lambda: self.rc is not None, 10, "CONNACK for %s" % self.name)
        return self.rc

    def wait_subscribed(self):
        wait_until(self.subscribed.is_set, 10, "SUBACK for %s" % self.name)

    def publish(self, topic, payload, qos=0):
        info = self.c.publish(topic, payload if isinstance(payload, (bytes, str))
                              else json.dumps(payload), qos=qos)
        return info

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.c.disconnect()
        self.c.loop_stop()


def seqs(client):
    return [p["print"]["seq"] for p in client.payloads(REPORT) if "print" in p]


def report(n, pad=0):
    return json.dumps({"print": {"sequence_id": "0", "seq": n, "pad": "x" * pad}})


_proxies = []
_clients = []


def mqtt_test(fn):
    """A @test that also stops every proxy it started and wants a clean exit: status 0
    within the shutdown target's deadline, with clients still connected, and no
    sanitizer report (the sanitizer build runs these same tests)."""
    def wrapped():
        try:
            fn()
            for p in _proxies:
                rc, took = p.stop()
                log = p.log()
                assert "Sanitizer" not in log and "runtime error" not in log, p.tail(80)
                assert rc == 0, "proxy exited %s; log:\n%s" % (rc, p.tail())
        finally:
            _proxies.clear()
            # Stop paho's network threads: left running they retry dead ports and
            # take CPU from the next test's clients.
            for c in _clients:
                c.c.disconnect()
            for c in _clients:
                c.close()
            _clients.clear()
    wrapped.__name__ = fn.__name__
    return test(wrapped)


def setup(extra=(), max_clients=None):
    broker = Broker()
    args = list(extra)
    if max_clients:
        args += ["--max-clients", str(max_clients)]
    proxy = start_proxy({"mqtt": broker.port}, services=("mqtt",), insecure=True, extra=args)
    _proxies.append(proxy)
    port = proxy.ports(["mqtt"])["mqtt"]
    proxy.wait_log("printer session up")
    return broker, proxy, port


def proxy_client(port, name, **kw):
    c = Client(name, port, **kw)
    assert c.wait_connected() == 0, "%s refused: %s" % (name, c.rc)
    if kw.get("subscribe"):
        c.wait_subscribed()
    return c


def mosquitto_sub(proxy, port, topic, name, extra=()):
    argv = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "--insecure", "--cafile",
            ca_path(proxy.state_dir), "-u", "bblp", "-P", CODE, "-t", topic, "-i", name] + \
        list(extra)
    return Proc(argv, name)


def publisher(broker):
    pub = broker.client("test-publisher")
    assert pub.wait_connected() == 0
    return pub


def publish_reports(pub, seq_range, pad=0):
    """Publish at QoS 1 and wait for each PUBACK, so the broker never drops one."""
    for n in seq_range:
        pub.publish(REPORT, report(n, pad), qos=1).wait_for_publish()


# ---- raw packets -------------------------------------------------------------

def tls_raw(port, rcvbuf=None):
    raw = socket.socket()
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(10 * SCALE)
    raw.connect(("127.0.0.1", port))
    return tls_client_ctx().wrap_socket(raw, server_hostname=SERIAL)


def varint(n):
    out = b""
    while True:
        b = n % 128
        n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def mstr(b):
    return struct.pack(">H", len(b)) + b


def connect_packet(client_id=b"raw", keepalive=60, level=4, user=b"bblp", pw=CODE.encode(),
                   clean=True, will=None):
    flags = (0x02 if clean else 0) | 0x80 | 0x40 | (0x04 | 0x08 if will else 0)
    body = mstr(b"MQTT") + bytes([level, flags]) + struct.pack(">H", keepalive)
    if level == 5:
        body += b"\x00"  # empty properties
    body += mstr(client_id)
    if will:
        body += mstr(will[0]) + mstr(will[1])
    body += mstr(user) + mstr(pw)
    return b"\x10" + varint(len(body)) + body


def subscribe_packet(topic, pid=1, qos=0):
    body = struct.pack(">H", pid) + mstr(topic) + bytes([qos])
    return b"\x82" + varint(len(body)) + body
