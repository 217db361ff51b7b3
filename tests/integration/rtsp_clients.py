# SPDX-License-Identifier: MIT
"""Real RTSPS clients for the integration tests: ffprobe and ffmpeg over RTP/TCP
interleaved (the only transport printers and PandaProxy serve). Shared by test_rtsp.py
and test_sim_rtsp.py; not a test file itself.

The access code appears in the client's argv here: acceptable for a test code only.
"""
import os
import random
import re
import subprocess

from harness import CODE, SCALE, Proc, need, start_sim

# Sanitizer builds: AddressSanitizer and UBSan stay on for the GStreamer processes, but
# LeakSanitizer's exit check cannot run in them with this toolchain (GCC 12 libasan,
# glibc 2.36, GStreamer 1.22): its stop-the-world tracer crashes while scanning the
# thread-local storage of GStreamer's threads ("Tracer caught signal 11 ... LeakSanitizer
# has encountered a fatal error", exit 1 at every clean stop), and with that scan off
# (use_tls=0) every GLib per-thread cache (GPrivate, GSlice magazines, dispatch depth)
# reads as a leak. So leak detection is off for these processes only; the other
# services' tests keep it. Ignored by non-sanitizer builds.
os.environ["ASAN_OPTIONS"] = ":".join(
    o for o in (os.environ.get("ASAN_OPTIONS", ""), "detect_leaks=0") if o)

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
