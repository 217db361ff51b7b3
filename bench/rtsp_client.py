# SPDX-License-Identifier: MIT
"""A minimal RTSPS viewer for bench/rtsp: DESCRIBE, SETUP (RTP over TCP interleaved),
PLAY, then H.264 depacketisation (single NAL, STAP-A, FU-A) into access units, each
stamped with the time its last packet (RTP marker) was read. PandaProxy never
transcodes, so an access unit's slice bytes are the same straight from the simulator and
through the proxy: a hash of them pairs the two and gives the added latency.

Not a test file; bench/rtsp imports it. The access code sits in the URL: a test code.
"""
import base64
import hashlib
import os
import re
import select
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from rtsp_clients import sdp_video_control  # noqa: E402

NAL_SLICE, NAL_IDR, NAL_SPS, NAL_PPS, NAL_STAP_A, NAL_FU_A = 1, 5, 7, 8, 24, 28
RTSP_TIMEOUT_S = 20
KEEPALIVE_S = 15


class RtspError(Exception):
    pass


class AccessUnit:
    __slots__ = ("key", "idr", "t", "size", "headers")

    def __init__(self, key, idr, t, size, headers):
        self.key, self.idr, self.t, self.size = key, idr, t, size
        self.headers = headers     # SPS and PPS travel with this access unit


class Viewer:
    """One RTSPS session. connect_and_play() then poll() from a select loop (fileno)."""

    def __init__(self, url, name="viewer"):
        m = re.match(r"rtsps://(?:([^:@/]+)(?::([^@/]*))?@)?([^:/]+):(\d+)(/.*)?$", url)
        if m is None:
            raise ValueError("not an rtsps:// URL with a port")
        self.user, self.code, self.host = m.group(1), m.group(2), m.group(3)
        self.port, self.path = int(m.group(4)), m.group(5) or "/"
        self.name = name
        self.url = "rtsps://%s:%d%s" % (self.host, self.port, self.path)
        self.sock = None
        self.buf = bytearray()
        self.cseq = 0
        self.session = None
        self.aus = []              # AccessUnit, in arrival order
        self.nals = []             # NAL units of the access unit being assembled
        self.fu = None             # FU-A NAL being reassembled
        self.t_play = self.t_connect = None
        self.last_keepalive = 0.0

    # ---- RTSP ---------------------------------------------------------------------

    def _auth(self):
        if self.user is None:
            return ""
        cred = "%s:%s" % (self.user, self.code or "")
        return "Authorization: Basic %s\r\n" % base64.b64encode(cred.encode()).decode()

    def _send(self, method, url, extra=""):
        self.cseq += 1
        req = "%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: pp-bench\r\n%s%s%s\r\n" % (
            method, url, self.cseq, self._auth(),
            "Session: %s\r\n" % self.session if self.session else "", extra)
        self.sock.sendall(req.encode())
        return self.cseq

    def _reply(self, cseq, deadline):
        """Read until the reply to cseq; interleaved data before it is depacketised."""
        while True:
            for item in self._parse():
                if item[0] == "reply" and item[1].get("cseq") == str(cseq):
                    return item[1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise RtspError("%s: no reply to request %d" % (self.name, cseq))
            self._recv(left)

    def _request(self, method, url, extra=""):
        reply = self._reply(self._send(method, url, extra), time.monotonic() + RTSP_TIMEOUT_S)
        if reply["status"] != 200:
            raise RtspError("%s: %s answered %d" % (self.name, method, reply["status"]))
        return reply

    def connect_and_play(self):
        t0 = time.monotonic()
        raw = socket.create_connection((self.host, self.port), timeout=RTSP_TIMEOUT_S)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(raw, server_hostname=self.host)
        self.t_connect = time.monotonic() - t0
        d = self._request("DESCRIBE", self.url, "Accept: application/sdp\r\n")
        base = d.get("content-base", self.url)
        control = sdp_video_control(base, d["body"].decode(errors="replace"))
        s = self._request("SETUP", control,
                          "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        self.session = s.get("session", "").split(";")[0].strip()
        self.t_play = time.monotonic()
        self._request("PLAY", base, "Range: npt=0.000-\r\n")
        self.last_keepalive = time.monotonic()

    def close(self):
        if self.sock is not None:
            try:
                self._send("TEARDOWN", self.url)
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    def fileno(self):
        return self.sock.fileno()

    # ---- reading ------------------------------------------------------------------

    def _recv(self, timeout):
        if self.sock.pending() == 0:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return
        data = self.sock.recv(1 << 18)
        if not data:
            raise RtspError("%s: connection closed" % self.name)
        self.buf += data

    def poll(self):
        """Read what is there (the socket is readable) and process it."""
        self._recv(0)
        while self.sock.pending() > 0:
            self._recv(0)
        for _ in self._parse():
            pass
        now = time.monotonic()
        if now - self.last_keepalive > KEEPALIVE_S:
            self.last_keepalive = now
            self._send("GET_PARAMETER", self.url)

    def _parse(self):
        """Yield replies; depacketise interleaved RTP on channel 0 as it comes."""
        now = time.monotonic()
        while self.buf:
            if self.buf[0] == 0x24:  # '$' channel, u16 length
                if len(self.buf) < 4:
                    return
                n = int.from_bytes(self.buf[2:4], "big")
                if len(self.buf) < 4 + n:
                    return
                if self.buf[1] == 0:
                    self._rtp(bytes(self.buf[4:4 + n]), now)
                del self.buf[:4 + n]
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode(errors="replace").split("\r\n")
            hdr = {}
            for line in head[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdr[k.strip().lower()] = v.strip()
            n = int(hdr.get("content-length", "0"))
            if len(self.buf) < end + 4 + n:
                return
            parts = head[0].split(" ")
            hdr["status"] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            hdr["body"] = bytes(self.buf[end + 4:end + 4 + n])
            del self.buf[:end + 4 + n]
            yield ("reply", hdr)

    def _rtp(self, pkt, now):
        if len(pkt) < 12 or pkt[0] >> 6 != 2:
            return
        cc, ext, marker = pkt[0] & 0x0F, pkt[0] & 0x10, pkt[1] & 0x80
        off = 12 + 4 * cc
        if ext and len(pkt) >= off + 4:
            off += 4 + 4 * int.from_bytes(pkt[off + 2:off + 4], "big")
        end = len(pkt) - (pkt[-1] if pkt[0] & 0x20 else 0)
        pl = pkt[off:end]
        if pl:
            self._payload(pl)
        if marker:
            self._access_unit(now)

    def _payload(self, pl):
        t = pl[0] & 0x1F
        if 1 <= t <= 23:
            self.nals.append(pl)
        elif t == NAL_STAP_A:
            i = 1
            while i + 2 <= len(pl):
                n = int.from_bytes(pl[i:i + 2], "big")
                self.nals.append(pl[i + 2:i + 2 + n])
                i += 2 + n
        elif t == NAL_FU_A and len(pl) >= 2:
            start, stop = pl[1] & 0x80, pl[1] & 0x40
            if start:
                self.fu = bytearray([(pl[0] & 0xE0) | (pl[1] & 0x1F)])
            if self.fu is not None:
                self.fu += pl[2:]
                if stop:
                    self.nals.append(bytes(self.fu))
                    self.fu = None

    def _access_unit(self, now):
        # Only the slices: parameter sets, SEI and delimiters may be added on the way.
        nals = self.nals
        slices = [n for n in nals if n and (n[0] & 0x1F) in (NAL_SLICE, NAL_IDR)]
        self.nals, self.fu = [], None
        if not slices:
            return
        h = hashlib.blake2b(digest_size=12)
        for n in slices:
            h.update(n)
        idr = any((n[0] & 0x1F) == NAL_IDR for n in slices)
        types = {n[0] & 0x1F for n in nals if n}
        self.aus.append(AccessUnit(h.digest(), idr, now, sum(len(n) for n in slices),
                                   {NAL_SPS, NAL_PPS} <= types))


def run_viewers(viewers, until, timeout=60):
    """Read every viewer until until() is true (checked every poll)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise RtspError("no video within %d s" % timeout)
        ready = [v for v in viewers if v.sock.pending() > 0]
        if not ready:
            ready, _, _ = select.select(viewers, [], [], 0.5)
        for v in ready:
            v.poll()


def first_frame(url, name="first"):
    """Seconds from connecting to the first access unit and to the first keyframe (an IDR:
    where a decoder can start), and from sending PLAY to that keyframe."""
    v = Viewer(url, name)
    t0 = time.monotonic()
    try:
        v.connect_and_play()
        run_viewers([v], lambda: any(a.idr for a in v.aus))
        key = next(a.t for a in v.aus if a.idr)
        return v.aus[0].t - t0, key - t0, key - v.t_play
    finally:
        v.close()
