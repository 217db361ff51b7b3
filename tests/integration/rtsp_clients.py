# SPDX-License-Identifier: MIT
"""Real RTSPS clients for the integration tests: ffprobe and ffmpeg over RTP/TCP
interleaved (the only transport printers and PandaProxy serve). Shared by test_rtsp.py
and test_sim_rtsp.py; not a test file itself.

The access code appears in the client's argv here: acceptable for a test code only.
"""
import base64
import os
import random
import re
import socket
import ssl
import subprocess

from harness import CODE, SCALE, Proc, need, start_sim

PATH = "/streaming/live/1"
FRAME_RE = re.compile(r"^frame=(\d+)", re.M)
IO_TIMEOUT_US = 5000000


def url(port, path=PATH, user="bblp", code=CODE, scheme="rtsps", host="127.0.0.1"):
    """rtsps://bblp:CODE@host:port/path; user=None or code=None leave them out."""
    cred = ""
    if user is not None:
        cred = user + (":" + code if code is not None else "") + "@"
    return "%s://%s%s:%d%s" % (scheme, cred, host, port, path)


def probe(u, timeout=30):
    """ffprobe the first video stream: (exit code or None on timeout, fields, stderr)."""
    need("ffprobe")
    argv = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp",
            "-timeout", str(int(IO_TIMEOUT_US * SCALE)), "-select_streams", "v:0",
            "-show_entries", "stream=codec_name,width,height", "-of", "default=nw=1", u]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * SCALE,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, {}, "timeout"
    fields = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    return p.returncode, fields, p.stderr


def assert_h264(u, width=None, height=None):
    rc, fields, err = probe(u)
    assert rc == 0 and fields.get("codec_name") == "h264", \
        "no H.264 from %s: rc=%s %s %s" % (u.split("@")[-1], rc, fields, err)
    if width is not None:
        assert (int(fields["width"]), int(fields["height"])) == (width, height), fields
    return fields


def grab(u, frames=10, timeout=30):
    """ffmpeg copies `frames` video frames (no decoding): (exit code, stderr)."""
    need("ffmpeg")
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
            "-timeout", str(int(IO_TIMEOUT_US * SCALE)), "-i", u, "-map", "0:v:0",
            "-c", "copy", "-frames:v", str(frames), "-f", "null", "-"]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * SCALE,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    return p.returncode, p.stderr


def viewer(u, name="viewer", io_timeout_s=20):
    """A long-running ffmpeg viewer reporting its frame count (frames_seen). Its I/O
    timeout is longer than PandaProxy's data watchdog, so the proxy notices first."""
    need("ffmpeg")
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-stats_period", "0.2", "-progress", "pipe:1",
            "-rtsp_transport", "tcp", "-timeout", str(int(io_timeout_s * 1e6 * SCALE)), "-i", u,
            "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    return Proc(argv, name)


def sdp_video_control(base, sdp):
    """The URL to SETUP for the SDP's video stream: its a=control (else the session's)
    resolved against base, the DESCRIBE's Content-Base."""
    media = session_ctl = video_ctl = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            media = line[2:].split(" ", 1)[0]
        elif line.startswith("a=control:"):
            ctl = line[len("a=control:"):].strip()
            if media is None and session_ctl is None:
                session_ctl = ctl
            elif media == "video" and video_ctl is None:
                video_ctl = ctl
    control = video_ctl or session_ctl
    if control is None or control == "*":
        return base
    if control.startswith("rtsp"):
        return control
    return base.rstrip("/") + "/" + control


class RtspControl:
    """A bare RTSPS control connection, for tests that time the requests themselves (several
    viewers sending PLAY at the same moment): DESCRIBE, SETUP (RTP over TCP interleaved),
    then any request; the interleaved RTP/RTCP that arrives meanwhile is dropped."""

    def __init__(self, u, timeout=20):
        m = re.match(r"rtsps://([^:@/]+):([^@/]*)@([^:/]+):(\d+)(/.*)$", u)
        user, code, host, port, path = m.groups()
        self.url = "rtsps://%s:%s%s" % (host, port, path)
        self.auth = base64.b64encode(("%s:%s" % (user, code)).encode()).decode()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((host, int(port)), timeout=timeout * SCALE)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.buf = b""
        self.cseq = 0
        self.session = None

    def request(self, method, target, extra=()):
        """Send one request: (status, headers with lower-case names, body)."""
        self.cseq += 1
        lines = ["%s %s RTSP/1.0" % (method, target), "CSeq: %d" % self.cseq,
                 "Authorization: Basic " + self.auth]
        if self.session:
            lines.append("Session: " + self.session)
        lines += list(extra)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:
            reply = self._parse()
            if reply is not None:
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.buf += data

    def _parse(self):
        while self.buf[:1] == b"$" and len(self.buf) >= 4:
            n = 4 + int.from_bytes(self.buf[2:4], "big")
            if len(self.buf) < n:
                return None
            self.buf = self.buf[n:]
        end = self.buf.find(b"\r\n\r\n")
        if not self.buf.startswith(b"RTSP/") or end < 0:
            return None
        head = self.buf[:end].decode(errors="replace").split("\r\n")
        hdrs = dict((k.strip().lower(), v.strip())
                    for k, v in (line.split(":", 1) for line in head[1:] if ":" in line))
        n = int(hdrs.get("content-length", "0"))
        if len(self.buf) < end + 4 + n:
            return None
        body, self.buf = self.buf[end + 4:end + 4 + n], self.buf[end + 4 + n:]
        return int(head[0].split()[1]), hdrs, body

    def setup(self):
        """DESCRIBE and SETUP the video stream; returns the URL to PLAY."""
        code, hdrs, body = self.request("DESCRIBE", self.url, ["Accept: application/sdp"])
        assert code == 200, "DESCRIBE answered %d" % code
        base = hdrs.get("content-base", self.url)
        control = sdp_video_control(base, body.decode(errors="replace"))
        code, hdrs, _ = self.request("SETUP", control,
                                     ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1"])
        assert code == 200, "SETUP answered %d" % code
        self.session = hdrs.get("session", "").split(";")[0].strip()
        return base

    def close(self):
        try:
            if self.session:
                self.request("TEARDOWN", self.url)
        except OSError:
            pass
        self.sock.close()


def frames_seen(proc):
    found = FRAME_RE.findall(proc.log())
    return int(found[-1]) if found else 0


def have_rtsp():
    """Whether this build has RTSPS (configure without --disable-rtsp)."""
    import os
    from harness import BUILDDIR
    try:
        with open(os.path.join(BUILDDIR, "autoconf.h")) as f:
            return "#define HAVE_RTSP 1" in f.read()
    except OSError:
        return True


def need_rtsp():
    from harness import SkipTest
    if not have_rtsp():
        raise SkipTest("built with --disable-rtsp")


def start_rtsp_sim(extra=()):
    """An X1C simulator serving only RTSPS, on an address of its own in 127.0.0.0/8, so a
    client of another test retrying a reused port cannot reach it and spoil its counts."""
    need_rtsp()
    host = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255),
                             random.randint(1, 254))
    sim = start_sim(model="x1c", services=("rtsp",), extra=["--bind", host] + list(extra))
    sim.host = host
    return sim
