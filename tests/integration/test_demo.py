# SPDX-License-Identifier: MIT
"""Smoke test of scripts/demo: it starts the simulator and PandaProxy from the built
binaries, the client commands it prints work as printed, and SIGINT (Ctrl-C) stops both
cleanly."""
import os
import random
import re
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILDDIR, SCALE, SRCDIR, Proc, SkipTest, gstreamer_env, need,  # noqa: E402
                     new_dir, run, test)

DEMO = os.path.join(SRCDIR, "scripts", "demo")
# A shell cannot trap a signal that was ignored when it started (as SIGINT is under a
# background job): start the demo with SIGINT at its default, as a terminal would.
SIGINT_DEFAULT = [sys.executable, "-c", "import os, signal, sys; "
                  "signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "os.execvp(sys.argv[1], sys.argv[1:])"]


def start_demo(*args):
    if not os.path.exists(os.path.join(BUILDDIR, "pandaproxy-sim")):
        raise SkipTest("pandaproxy-sim is not built")
    # --any-ports: tests run beside other builds on the same machine.
    # An address of its own in 127.0.0.0/8: no client of another test can wander in.
    bind = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255),
                             random.randint(1, 254))
    env = {"PP_BUILDDIR": BUILDDIR, "DEMO_TIMEOUT": str(int(60 * SCALE)), "DEMO_BIND": bind}
    # An RTSPS model runs GStreamer in both programs the demo starts.
    if any(m in args for m in ("x1c", "x1e", "h2d", "p2s")):
        env = gstreamer_env(env)
    demo = Proc(SIGINT_DEFAULT + ["sh", DEMO, "--no-build", "--any-ports"] + list(args), "demo",
                env=env)
    return demo


def children(pid):
    """PIDs and names of pid's child processes (from /proc)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out[int(d)] = name
    return out


def printed(demo, prefix, containing=""):
    """The command line the demo printed that starts with prefix (and contains ...)."""
    for line in demo.log().splitlines():
        if line.strip().startswith(prefix) and containing in line:
            return line.strip()
    raise AssertionError("demo printed no '%s' command:\n%s" % (prefix, demo.tail()))


def run_printed(cmd, what, timeout=30):
    """Run a printed command line in a fresh directory; its output (stdout + stderr)."""
    cwd = new_dir("client")
    p = Proc(["sh", "-c", cmd], what, cwd=cwd)  # the harness kills its process group
    rc = p.wait(timeout)
    assert rc == 0, "%s failed (%d): %s\n%s" % (what, rc, cmd, p.log())
    return p.log(), cwd


def stop_demo(demo):
    kids = {p: n for p, n in children(demo.pid).items() if n != "sleep"}
    assert len(kids) == 2, "expected the simulator and the proxy, found %s" % kids
    work = re.search(r"Logs: (\S+)/pandaproxy\.log", demo.log()).group(1)
    rc, _ = demo.stop(signal.SIGINT, timeout=15)
    assert rc == 0, "demo exited %s:\n%s" % (rc, demo.tail())
    log = demo.log()
    assert "pandaproxy exited with status 0" in log, log
    assert "pandaproxy-sim exited with status 0" in log, log
    for pid in kids:
        assert not os.path.exists("/proc/%d" % pid), "process %d (%s) survived" % (pid, kids[pid])
    assert not os.path.exists(work), "the demo left " + work


@test
def demo_chamber_model_prints_working_commands_and_stops_on_sigint():
    need("mosquitto_sub", "curl")
    demo = start_demo()
    demo.wait_log(r"(?m)^ready:", timeout=60)
    out, _ = run_printed(printed(demo, "mosquitto_sub") + " -C 1", "mosquitto_sub")
    assert "push_status" in out, out
    out, _ = run_printed(printed(demo, "curl", "ftps://"), "curl list")
    assert "timelapse" in out, out
    # Upload, then start a print with the printed commands: the reports say RUNNING.
    src = os.path.join(new_dir("upload"), "cube.3mf")
    with open(src, "wb") as f:
        f.write(b"PK\x03\x04 a tiny model")
    run_printed("cp %s . && %s" % (src, printed(demo, "curl", "-T cube.3mf")), "curl upload")
    # exec: the shell becomes mosquitto_sub, so stopping it by PID stops the client.
    watch = Proc(["sh", "-c", "exec " + printed(demo, "mosquitto_sub")], "watch")
    watch.wait_log(r"push_status")  # subscribed
    run_printed(printed(demo, "mosquitto_pub", "project_file"), "project_file")
    watch.wait_log(r'"command":"project_file","sequence_id":"1","result":"success"')
    watch.wait_log(r'"gcode_state":"RUNNING"')
    watch.stop()
    out, cwd = run_printed(printed(demo, "ACCESS_CODE=").replace("--frames 5", "--frames 2"),
                           "chamber-client")
    with open(os.path.join(cwd, "frames", "frame-00002.jpg"), "rb") as f:
        assert f.read(4) == b"\xff\xd8\xff\xe0"
    stop_demo(demo)


@test
def demo_rtsps_model_starts_and_stops():
    demo = start_demo("--model", "x1c")
    try:
        demo.wait_log(r"(?m)^ready:", timeout=60)
    except AssertionError:
        if re.search(r"not simulated yet|no RTSPS support", demo.log()):
            raise SkipTest("this build has no RTSPS camera")
        raise
    m = re.search(r"ffplay -rtsp_transport tcp (rtsps://bblp:\S+@127\.\d+\.\d+\.\d+:\d+"
                  r"/streaming/live/1)", demo.log())
    assert m, demo.tail()
    if shutil.which("ffprobe"):
        out, _ = run_printed("ffprobe -v error -rtsp_transport tcp -show_entries "
                             "stream=codec_name -of compact '%s'" % m.group(1), "ffprobe")
        assert "codec_name=h264" in out, out
    stop_demo(demo)


@test
def demo_rejects_an_unknown_model():
    demo = Proc(["sh", DEMO, "--no-build", "--model", "q9"], "demo-bad",
                env={"PP_BUILDDIR": BUILDDIR})
    assert demo.wait() == 2
    assert "unknown model" in demo.log()


run()
