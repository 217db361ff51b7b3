# SPDX-License-Identifier: MIT
"""Integration-test harness: starts the real binaries on loopback with ports picked at
run time (read back from their "listening on ADDR:PORT (NAME)" log lines), enforces
deadlines, and kills every process it started, by PID, whatever happens.

A test file defines functions decorated with @test and ends with `run()`.
Exit status: 0 all passed, 1 a failure, 77 everything skipped.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

BUILDDIR = os.environ.get("PP_BUILDDIR") or os.getcwd()
SRCDIR = os.environ.get("PP_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PROXY = os.path.join(BUILDDIR, "pandaproxy")
SIM = os.path.join(BUILDDIR, "pandaproxy-sim")
# Every pandaproxy started here loads the RTSPS module from the build tree.
os.environ.setdefault("PANDAPROXY_MODULE_DIR", BUILDDIR)
# Every deadline is multiplied by this: 2 by default (test machines are small and shared),
# 3 in scripts/check's slower sanitizer build.
SCALE = float(os.environ.get("PP_TIME_SCALE", "2"))
SERIAL = "01P00A391800001"
CODE = "12345678"
LISTEN_RE = re.compile(r"listening on (\S+):(\d+) \((\w+)\)")

_procs = []
_tmpdirs = []


class SkipTest(Exception):
    pass


class Proc:
    """A started program whose stderr+stdout go to a log file we can read any time."""

    def __init__(self, argv, name, env=None, cwd=None, stdin=None):
        self.name = name
        self.argv = argv
        fd, self.logpath = tempfile.mkstemp(prefix=name + "-", suffix=".log", dir=tmpdir())
        self.logf = os.fdopen(fd, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  env=full_env, cwd=cwd, stdin=stdin or subprocess.DEVNULL,
                                  start_new_session=True)
        self.pid = self.p.pid
        _procs.append(self)

    def log(self):
        with open(self.logpath, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10, count=1):
        """Wait until pattern (regex) appears count times; returns the last match."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout * SCALE
        while True:
            found = list(rx.finditer(self.log()))
            if len(found) >= count:
                return found[count - 1]
            if self.p.poll() is not None:
                found = list(rx.finditer(self.log()))
                if len(found) >= count:
                    return found[count - 1]
                raise AssertionError("%s exited (%s) before logging %r; log:\n%s" %
                                     (self.name, self.p.returncode, pattern, self.tail()))
            if time.monotonic() > end:
                raise AssertionError("%s did not log %r within %ss; log:\n%s" %
                                     (self.name, pattern, timeout * SCALE, self.tail()))
            time.sleep(0.05)

    def ports(self, names, timeout=15):
        """Map service name -> bound port, waiting until every name is listening."""
        end = time.monotonic() + timeout * SCALE
        while True:
            got = {m.group(3): int(m.group(2)) for m in LISTEN_RE.finditer(self.log())}
            if all(n in got for n in names):
                return got
            if self.p.poll() is not None:
                raise AssertionError("%s exited (%s) before listening; log:\n%s" %
                                     (self.name, self.p.returncode, self.tail()))
            if time.monotonic() > end:
                raise AssertionError("%s not listening on %s within %ss; log:\n%s" %
                                     (self.name, names, timeout * SCALE, self.tail()))
            time.sleep(0.05)

    def tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def send_signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal and wait; returns (exit code, seconds taken). Kills on timeout."""
        t0 = time.monotonic()
        if self.p.poll() is None:
            os.kill(self.pid, sig)
        try:
            rc = self.p.wait(timeout=timeout * SCALE)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not exit within %ss after signal %d; log:\n%s" %
                                 (self.name, timeout * SCALE, sig, self.tail()))
        return rc, time.monotonic() - t0

    def wait(self, timeout=30):
        try:
            return self.p.wait(timeout=timeout * SCALE)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not finish within %ss; log:\n%s" %
                                 (self.name, timeout * SCALE, self.tail()))

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if not self.logf.closed:
            self.logf.close()

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def thread_count(self):
        return len(os.listdir("/proc/%d/task" % self.pid))


def tmpdir():
    if not _tmpdirs:
        _tmpdirs.append(tempfile.mkdtemp(prefix="pp-test-"))
    return _tmpdirs[0]


def new_dir(prefix="d"):
    return tempfile.mkdtemp(prefix=prefix + "-", dir=tmpdir())


def cleanup():
    for p in list(_procs):
        p.kill()
    _procs.clear()
    if os.environ.get("PP_KEEP_TMP"):
        return
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    _tmpdirs.clear()


atexit.register(cleanup)


def wait_until(cond, timeout=10, what="condition", interval=0.05):
    """Poll cond() until truthy; returns its value or fails after timeout*SCALE."""
    end = time.monotonic() + timeout * SCALE
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout * SCALE, what))
        time.sleep(interval)


def need(*programs):
    for prog in programs:
        if shutil.which(prog) is None:
            raise SkipTest("%s is not installed" % prog)


# Sanitizer builds: processes that run GStreamer keep leak detection with the
# suppressions in tests/lsan-gstreamer.supp (memory GLib never frees by design, each
# entry documented there); every other process runs with none. Two runtime options for
# them: malloc stacks are unwound the exact way (GLib is built without frame pointers, so
# the fast unwinder stops at g_malloc and no suppression could see the GLib function
# above it), and libasan does not track dynamic TLS through __tls_get_addr: with GCC 12's
# libasan and glibc 2.36 it records bogus ranges for threads that used TLS of a
# dlopen()ed library (GIO's TLS module), and the leak check then crashes at exit
# ("Tracer caught signal 11" in ScanRangeForPointers). Without that tracking, memory held
# only in such TLS would be reported, never hidden.
LSAN_GSTREAMER_SUPP = os.path.join(SRCDIR, "tests", "lsan-gstreamer.supp")
GSTREAMER_ASAN_OPTIONS = "fast_unwind_on_malloc=0:intercept_tls_get_addr=0"


def _with_option(name, option):
    return ":".join(o for o in (os.environ.get(name, ""), option) if o)


def gstreamer_env(env=None):
    """Environment for a process that may run GStreamer (RTSPS): see LSAN_GSTREAMER_SUPP.
    Ignored by builds without sanitizers."""
    e = dict(env or {})
    e["ASAN_OPTIONS"] = _with_option("ASAN_OPTIONS", GSTREAMER_ASAN_OPTIONS)
    e["LSAN_OPTIONS"] = _with_option("LSAN_OPTIONS", "suppressions=" + LSAN_GSTREAMER_SUPP)
    return e


def start_proxy(printer_ports, services=("mqtt", "ftp", "camera"), extra=(), state_dir=None,
                env=None, printer_host="127.0.0.1", serial=SERIAL, code=CODE, camera="chamber",
                listen=None, name="proxy", insecure=False):
    """Start pandaproxy; printer_ports maps service name -> printer port."""
    state_dir = state_dir or new_dir("state")
    argv = [PROXY, "-p", printer_host, "-s", serial, "--state-dir", state_dir,
            "--services", ",".join(services), "--camera", camera, "-v"]
    for svc in ("mqtt", "ftp", "chamber", "rtsp"):
        argv += ["--port", "%s=%d" % (svc, (listen or {}).get(svc, 0))]
    for svc, port in printer_ports.items():
        argv += ["--printer-port", "%s=%d" % (svc, port)]
    if insecure:
        argv.append("--insecure-printer")
    argv += list(extra)
    full_env = {"ACCESS_CODE": code}
    if "camera" in services and camera == "rtsp":
        full_env = gstreamer_env(full_env)
    full_env.update(env or {})
    p = Proc(argv, name, env=full_env)
    p.state_dir = state_dir
    return p


def start_sim(model="p1s", services=("mqtt", "ftp", "chamber"), extra=(), serial=SERIAL,
              code=CODE, ftp_root=None, state_dir=None, name="sim"):
    """Start the printer simulator with free ports for the given services."""
    if not os.path.exists(SIM):
        raise SkipTest("pandaproxy-sim is not built")
    state_dir = state_dir or new_dir("simstate")
    ftp_root = ftp_root or new_dir("ftproot")
    argv = [SIM, "--model", model, "--serial", serial,
            "--state-dir", state_dir, "--ftp-root", ftp_root]
    for svc in services:
        argv += ["--port", "%s=0" % svc]
    argv += list(extra)
    # The code goes through the environment: secrets never sit in a child's argv.
    env = {"SIM_ACCESS_CODE": code}
    runs_rtsp = "rtsp" in services or any(a.startswith("rtsp=") for a in extra)
    p = Proc(argv, name, env=gstreamer_env(env) if runs_rtsp else env)
    p.ftp_root = ftp_root
    p.state_dir = state_dir
    p.port = p.ports(list(services))
    return p


def sim_status(sim):
    """The simulator's counters (STATE_DIR/sim-status.json), rewritten at least every second."""
    import json
    path = os.path.join(sim.state_dir, "sim-status.json")
    for _ in range(50):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.02)
    raise AssertionError("cannot read " + path)


def chamber_auth(user="bblp", code=CODE):
    """The 80-byte chamber camera auth packet."""
    import struct
    return struct.pack("<II8x32s32s", 0x40, 0x3000, user.encode(), code.encode())


def chamber_read_frame(sock):
    """(header bytes, jpeg bytes) of the next chamber frame; raises on EOF."""
    import struct
    hdr = recv_exact(sock, 16)
    (n,) = struct.unpack_from("<I", hdr, 0)
    return hdr, recv_exact(sock, n)


def recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return bytes(out)


def tls_client_ctx(cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = False
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_connect(port, host="127.0.0.1", cafile=None, timeout=10):
    raw = socket.create_connection((host, port), timeout=timeout * SCALE)
    return tls_client_ctx(cafile).wrap_socket(raw, server_hostname=SERIAL)


def ca_path(state_dir):
    return os.path.join(state_dir, "pandaproxy-ca.crt")


# What a sanitizer build prints when it finds something (ASan, LSan, UBSan).
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak)Sanitizer|LeakSanitizer has encountered|"
                          r"runtime error: ")


def check_daemons_exit_cleanly():
    """At the end of a test that passed: every pandaproxy and pandaproxy-sim still running
    gets SIGTERM and must exit 0 with no sanitizer report. This is where a sanitizer
    build's leak check runs (at exit); a SIGKILL would skip it."""
    problems = []
    for p in reversed(_procs):  # proxies before the printers they talk to
        if p.argv[0] not in (PROXY, SIM):
            continue
        if p.p.poll() is None:
            code, _ = p.stop()
            if code != 0:
                problems.append("%s exited %s on SIGTERM; log:\n%s" % (p.name, code,
                                                                      p.tail(80)))
                continue
        # Also the ones that ended during the test: a report there is a finding too.
        if SANITIZER_RE.search(p.log()):
            problems.append("%s has a sanitizer report; log:\n%s" % (p.name, p.tail(80)))
    if problems:
        raise AssertionError("\n".join(problems))


_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def run():
    only = os.environ.get("PP_TEST")
    failed = passed = skipped = 0
    for fn in _tests:
        if only and only not in fn.__name__:
            continue
        t0 = time.monotonic()
        try:
            fn()
            check_daemons_exit_cleanly()
            passed += 1
            print("  ok   %s (%.1fs)" % (fn.__name__, time.monotonic() - t0), flush=True)
        except SkipTest as e:
            skipped += 1
            print("  skip %s: %s" % (fn.__name__, e), flush=True)
        except Exception:
            failed += 1
            print("  FAIL %s (%.1fs)" % (fn.__name__, time.monotonic() - t0), flush=True)
            traceback.print_exc()
        finally:
            for p in list(_procs):
                p.kill()
            _procs.clear()
    cleanup()
    if failed:
        sys.exit(1)
    if passed == 0 and skipped:
        sys.exit(77)
    sys.exit(0)
