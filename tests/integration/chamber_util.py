# SPDX-License-Identifier: MIT
"""Helpers shared by the chamber camera and detection tests: viewers that record what
they receive, a poller of the simulator's camera connection count, reference frames
straight from a simulator, and fake printers (TLS servers written here) that misbehave."""
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import threading
import time

import harness as h

HDR_LEN = 16


def free_port():
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def frame_info(hdr, jpeg):
    (length, counter) = struct.unpack_from("<II", hdr, 0)
    return {"counter": counter, "len": length, "all": hashlib.sha256(hdr + jpeg).hexdigest(),
            "jpeg": hashlib.sha256(jpeg).hexdigest(), "jpeg_ok": jpeg[:2] == b"\xff\xd8"
            and jpeg[-2:] == b"\xff\xd9" and len(jpeg) == length, "t": time.monotonic()}


class Viewer(threading.Thread):
    """A chamber client that authenticates and records every frame it reads."""

    def __init__(self, port, limit=None, code=h.CODE, rcvbuf=None, read=True):
        super().__init__(daemon=True)
        raw = socket.socket()
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(15 * h.SCALE)
        raw.connect(("127.0.0.1", port))
        self.sock = h.tls_client_ctx().wrap_socket(raw, server_hostname=h.SERIAL)
        self.sock.sendall(h.chamber_auth(code=code))
        self.frames = []
        self.error = None
        self.limit = limit
        self.stopping = False
        self.lock = threading.Lock()
        if read:
            self.start()

    def run(self):
        try:
            while not self.stopping and (self.limit is None or len(self.frames) < self.limit):
                hdr, jpeg = h.chamber_read_frame(self.sock)
                with self.lock:
                    self.frames.append(frame_info(hdr, jpeg))
        except Exception as e:  # recorded; the test decides whether it matters
            if not self.stopping:
                self.error = e

    def count(self):
        with self.lock:
            return len(self.frames)

    def last_counter(self):
        with self.lock:
            return self.frames[-1]["counter"] if self.frames else -1

    def counters(self):
        with self.lock:
            return [f["counter"] for f in self.frames]

    def close(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.is_alive():
            self.join(10 * h.SCALE)


class SimConnPoller(threading.Thread):
    """Polls the simulator's status file: the most chamber connections ever open at once."""

    def __init__(self, sim, svc="chamber"):
        super().__init__(daemon=True)
        self.sim = sim
        self.svc = svc
        self.max_current = 0
        self.samples = 0
        self.halt = threading.Event()
        self.start()

    def run(self):
        while not self.halt.is_set():
            try:
                st = h.sim_status(self.sim)
                self.max_current = max(self.max_current, st[self.svc]["current"])
                self.samples += 1
            except AssertionError:
                pass
            time.sleep(0.02)

    def stop(self):
        self.halt.set()
        self.join(5)


def reference_frames(count, extra=()):
    """counter -> sha256(jpeg) for frames 0..count-1, read straight from a fresh simulator
    with the same picture options (frames are a pure function of the counter)."""
    sim = h.start_sim(services=("chamber",), extra=list(extra) + ["--fps", "100"], name="refsim")
    s = h.tls_connect(sim.port["chamber"])
    s.sendall(h.chamber_auth())
    ref = {}
    while len(ref) < count:
        hdr, jpeg = h.chamber_read_frame(s)
        info = frame_info(hdr, jpeg)
        ref[info["counter"]] = info["jpeg"]
    s.close()
    sim.stop()
    return ref


def start_camera_proxy(sim_chamber_port, camera="auto", extra=(), serial=h.SERIAL,
                       rtsp_port=None, listen=None, gstreamer=False, name="proxy"):
    """A proxy serving only the camera; the RTSPS printer port is a closed one unless given.
    gstreamer=True: the test expects the RTSPS service to run (see h.gstreamer_env)."""
    ports = {"rtsp": rtsp_port or free_port()}
    if sim_chamber_port:
        ports["chamber"] = sim_chamber_port
    return h.start_proxy(ports, services=("camera",), camera=camera, extra=list(extra),
                         serial=serial, listen=listen, name=name,
                         env=h.gstreamer_env() if gstreamer else None)


def self_signed_cert(serial=h.SERIAL):
    d = h.new_dir("fakecert")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + serial], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class FakePrinter(threading.Thread):
    """A TLS server on loopback; handler(tls_sock, record) runs per connection in turn.
    record is a dict the handler fills; every connection's record lands in self.conns."""

    def __init__(self, handler):
        super().__init__(daemon=True)
        h.need("openssl")
        cert, key = self_signed_cert()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.handler = handler
        self.conns = []
        self.halt = threading.Event()
        self.start()

    def run(self):
        while not self.halt.is_set():
            try:
                raw, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = {"t": time.monotonic()}
            self.conns.append(rec)
            raw.settimeout(15 * h.SCALE)
            tls = None
            try:
                tls = self.ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
                self.handler(tls, rec)
            except (OSError, ssl.SSLError, EOFError) as e:
                rec.setdefault("error", repr(e))
            finally:
                for s in (tls, raw):
                    try:
                        if s is not None:
                            s.close()
                    except OSError:
                        pass

    def stop(self):
        self.halt.set()
        self.lsock.close()
        self.join(10)


def wait_peer_close(tls, rec):
    """Read until the peer ends; rec['close'] = 'close_notify' or 'abrupt'."""
    try:
        while True:
            if not tls.recv(65536):
                rec["close"] = "close_notify"
                return
    except ssl.SSLEOFError:
        rec["close"] = "abrupt"
    except (OSError, ssl.SSLError) as e:
        rec["close"] = "error: %r" % e
