# SPDX-License-Identifier: MIT
"""PandaProxy's RTSPS camera service against the simulator (an X1C), with real clients
(ffprobe/ffmpeg over rtsps://, RTP over TCP interleaved): both mounts, one printer
connection for many viewers, auth, TLS only, recovery after a Wi-Fi blip or a hung
printer, --camera-linger (and loss while lingering), RTSP keepalives to the printer, the
trust policy, no fd/thread growth over many viewers, orderly stop."""
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CODE, SCALE, SkipTest, need, new_dir, run,  # noqa: E402
                     sim_status, start_proxy, test, wait_until)
import rtsp_clients as rc  # noqa: E402

CYCLES = 20
THREAD_SLACK = 16   # GLib keeps idle pool threads for a while: a bound, not equality
LINGER_S = int(8 * SCALE)


def sim_and_proxy(sim_extra=(), proxy_extra=(), pin=None, linger=0):
    """linger: --camera-linger (0 unless a test is about it: the printer stream closes
    with the last viewer)."""
    sim = rc.start_rtsp_sim(sim_extra)
    proxy = start_proxy({"rtsp": sim.port["rtsp"]}, services=("camera",), camera="rtsp",
                        extra=["--camera-linger", str(linger)] + list(proxy_extra),
                        printer_host=sim.host)
    if pin is not None:
        with open(os.path.join(proxy.state_dir, "01P00A391800001.printer-pin"), "w") as f:
            f.write(pin)
    proxy.port = proxy.ports(["rtsp"])
    return sim, proxy


def rtsp_total(sim):
    return sim_status(sim)["rtsp"]["total"]


@test
def rtsp_disabled_build_refuses_camera_rtsp():
    if rc.have_rtsp():
        raise SkipTest("this build has RTSPS")
    proxy = start_proxy({"rtsp": 1}, services=("camera",), camera="rtsp")
    assert proxy.wait(timeout=10) != 0
    assert "this build has no RTSPS support (configured with --disable-rtsp)" in proxy.log()


def mapped(proc, needle):
    with open("/proc/%d/maps" % proc.pid) as f:
        return any(needle in line for line in f)


@test
def rtsp_module_and_gstreamer_are_mapped_only_when_the_rtsps_camera_runs():
    if not rc.have_rtsp():
        raise SkipTest("this build has no RTSPS")
    # MQTT and a chamber camera (no printer behind them): GStreamer stays out.
    other = start_proxy({"mqtt": 1, "chamber": 1}, services=("mqtt", "camera"),
                        camera="chamber", name="no-rtsp")
    other.ports(["mqtt", "chamber"])
    other.wait_log(r"\[mqtt\] printer unavailable")
    for needle in ("/rtsp.so", "libgstreamer-1.0", "libglib-2.0"):
        assert not mapped(other, needle), needle
    sim, proxy = sim_and_proxy()
    for needle in ("/rtsp.so", "libgstreamer-1.0", "libgstrtspserver-1.0"):
        assert mapped(proxy, needle), needle
    rc.assert_h264(rc.url(proxy.port["rtsp"]), 640, 360)


@test
def rtsp_missing_module_is_a_clear_error():
    if not rc.have_rtsp():
        raise SkipTest("this build has no RTSPS")
    empty = new_dir("nomodule")
    want = "cannot load the RTSPS module: %s/rtsp.so" % empty
    fix = "set PANDAPROXY_MODULE_DIR"
    proxy = start_proxy({"rtsp": 1}, services=("camera",), camera="rtsp",
                        env={"PANDAPROXY_MODULE_DIR": empty})
    assert proxy.wait(timeout=10 * SCALE) != 0
    assert want in proxy.log() and fix in proxy.log(), proxy.log()[-2000:]
    check = start_proxy({"rtsp": 1}, services=("camera",), camera="rtsp", name="check",
                        extra=["--check-config"], env={"PANDAPROXY_MODULE_DIR": empty})
    assert check.wait(timeout=10 * SCALE) != 0
    assert "option --camera rtsp: " + want in check.log(), check.log()[-2000:]


# A module that exports the right symbol from another build: it must never be called.
FOREIGN_MODULE = r"""
#include <stdio.h>
struct ops { int (*start)(void *, char *, size_t); void (*serve)(void *, void *);
             void (*stop)(void *); _Bool raw, own_listener; };
static int start(void *svc, char *err, size_t n)
{
    (void)svc;
    snprintf(err, n, "the foreign module was called");
    return -1;
}
static const struct ops ops = { start, NULL, NULL, 0, 1 };
struct foreign { unsigned abi; const char *version; size_t config_size, service_size;
                 const struct ops *ops; const void *reload; };
const struct foreign pp_rtsp_module = { 1, "0.0.0-other", 1, 1, &ops, NULL };
"""


@test
def rtsp_module_of_another_build_is_refused():
    if not rc.have_rtsp():
        raise SkipTest("this build has no RTSPS")
    need("cc")
    d = new_dir("foreign")
    src = os.path.join(d, "foreign.c")
    with open(src, "w") as f:
        f.write(FOREIGN_MODULE)
    r = subprocess.run(["cc", "-shared", "-fPIC", "-o", os.path.join(d, "rtsp.so"), src],
                       capture_output=True, text=True, timeout=60 * SCALE)
    assert r.returncode == 0, r.stderr
    proxy = start_proxy({"rtsp": 1}, services=("camera",), camera="rtsp",
                        env={"PANDAPROXY_MODULE_DIR": d})
    assert proxy.wait(timeout=10 * SCALE) != 0
    log = proxy.log()
    assert "foreign module was called" not in log, log[-2000:]
    assert ("%s/rtsp.so is not the RTSPS module of this pandaproxy" % d) in log, log[-2000:]


@test
def rtsp_both_mounts_serve_h264():
    sim, proxy = sim_and_proxy()
    port = proxy.port["rtsp"]
    for path in ("/streaming/live/1", "/stream", "/stream?channel=1"):
        rc.assert_h264(rc.url(port, path=path), 640, 360)
        code, err = rc.grab(rc.url(port, path=path), frames=15)
        assert code == 0, (path, err)
    assert CODE not in proxy.log()
    proxy.wait_log(r"opening the printer stream rtsps://%s:%d/streaming/live/1"
                   % (re.escape(sim.host), sim.port["rtsp"]))


@test
def rtsp_three_viewers_one_printer_connection():
    sim, proxy = sim_and_proxy()
    port = proxy.port["rtsp"]
    paths = ("/streaming/live/1", "/stream", "/streaming/live/1?x=1")
    viewers = [rc.viewer(rc.url(port, path=p), "v%d" % i) for i, p in enumerate(paths)]
    wait_until(lambda: all(rc.frames_seen(v) > 15 for v in viewers), 30, "three viewers")
    st = sim_status(sim)["rtsp"]
    assert st["current"] == 1 and st["total"] == 1, st
    for v in viewers:
        v.stop()
    # The last viewer gone, the printer connection closes too.
    wait_until(lambda: sim_status(sim)["rtsp"]["current"] == 0, 15, "printer stream closed")
    assert rtsp_total(sim) == 1


@test
def rtsp_wrong_or_missing_password_gets_401():
    sim, proxy = sim_and_proxy()
    port = proxy.port["rtsp"]
    for u in (rc.url(port, code="wrong123"), rc.url(port, user=None),
              rc.url(port, path="/stream", code="")):
        code, fields, err = rc.probe(u)
        assert code != 0 and "401" in err and "codec_name" not in fields, (u, code, err)
    assert rtsp_total(sim) == 0, "a refused viewer reached the printer"
    proxy.wait_log(r"wrong user or access code from 127\.0\.0\.1 \(further logins refused "
                   r"for \d+ ms\)")
    # Failed logins are throttled without sleeping in the server's threads; once the
    # short lock-out is over the right code plays again.
    wait_until(lambda: rc.probe(rc.url(port))[1].get("codec_name") == "h264", 30,
               "video with the right code after the lock-out")


@test
def rtsp_plain_rtsp_on_the_tls_port_gets_no_video():
    sim, proxy = sim_and_proxy()
    code, fields, err = rc.probe(rc.url(proxy.port["rtsp"], scheme="rtsp"))
    assert code != 0 and "codec_name" not in fields, (code, fields, err)
    assert rtsp_total(sim) == 0
    rc.assert_h264(rc.url(proxy.port["rtsp"]))


@test
def rtsp_printer_blip_ends_viewers_and_recovers():
    sim, proxy = sim_and_proxy()
    u = rc.url(proxy.port["rtsp"])
    viewers = [rc.viewer(u, "v%d" % i) for i in range(2)]
    wait_until(lambda: all(rc.frames_seen(v) > 10 for v in viewers), 30, "viewers streaming")
    sim.send_signal(signal.SIGUSR1)
    for v in viewers:
        v.wait(timeout=20)  # ends by itself, no hang (closed by GStreamer or by the proxy)
    proxy.wait_log(r"printer stream closed", timeout=10)

    def video_again():
        code, fields, _ = rc.probe(u, timeout=10)
        return code == 0 and fields.get("codec_name") == "h264"
    wait_until(video_again, 10, "video again after the blip", interval=0.2)
    assert rtsp_total(sim) == 2, sim_status(sim)


@test
def rtsp_hung_printer_is_detected_by_the_watchdog():
    # The simulator stops sending video but keeps the connection, like a hung printer.
    sim, proxy = sim_and_proxy(sim_extra=("--stall-after", str(int(3 * SCALE))))
    v = rc.viewer(rc.url(proxy.port["rtsp"]))
    wait_until(lambda: rc.frames_seen(v) > 0, 30, "video before the stall")
    sim.wait_log(r"stalling", timeout=20)
    proxy.wait_log(r"printer stream lost \(no video from the printer for \d+ ms\): "
                   r"closed 1 viewer", timeout=20)
    v.wait(timeout=20)
    wait_until(lambda: sim_status(sim)["rtsp"]["current"] == 0, 15, "printer connection closed")
    rc.assert_h264(rc.url(proxy.port["rtsp"]))  # a fresh upstream (stalls again later)


def keeping_open(proxy, count=1):
    proxy.wait_log(r"no viewer left: keeping the printer stream open for %d s" % LINGER_S,
                   timeout=15, count=count)


@test
def rtsp_linger_keeps_the_printer_stream_for_a_returning_viewer():
    sim, proxy = sim_and_proxy(linger=LINGER_S)
    u = rc.url(proxy.port["rtsp"])
    v = rc.viewer(u)
    wait_until(lambda: rc.frames_seen(v) > 10, 30, "first viewer streaming")
    v.stop()
    keeping_open(proxy)
    st = sim_status(sim)["rtsp"]
    assert st["current"] == 1 and st["total"] == 1, st  # lingering, not closed
    # A viewer within the linger plays from the same printer connection.
    code, err = rc.grab(rc.url(proxy.port["rtsp"], path="/stream"), frames=10)
    assert code == 0, err
    assert rtsp_total(sim) == 1, sim_status(sim)
    keeping_open(proxy, count=2)
    # Nobody comes back: the printer connection closes after the linger.
    proxy.wait_log(r"no viewer for %d s: closing the printer stream" % LINGER_S,
                   timeout=LINGER_S + 15)
    wait_until(lambda: sim_status(sim)["rtsp"]["current"] == 0, 15, "printer stream closed")
    assert rtsp_total(sim) == 1
    rc.assert_h264(u)  # and the next viewer opens a new one
    assert rtsp_total(sim) == 2, sim_status(sim)


@test
def rtsp_printer_loss_while_lingering_closes_the_stream():
    sim, proxy = sim_and_proxy(linger=600)
    u = rc.url(proxy.port["rtsp"])
    v = rc.viewer(u)
    wait_until(lambda: rc.frames_seen(v) > 10, 30, "viewer streaming")
    v.stop()
    proxy.wait_log(r"no viewer left: keeping the printer stream open for 600 s", timeout=15)
    sim.send_signal(signal.SIGUSR1)  # a Wi-Fi blip while nobody watches
    proxy.wait_log(r"printer stream lost \(.*\): closed 0 viewers", timeout=20)
    proxy.wait_log(r"printer stream closed", timeout=10)
    wait_until(lambda: sim_status(sim)["rtsp"]["current"] == 0, 15, "no printer connection")
    rc.assert_h264(u)  # a broken stream is not kept: the next viewer gets a fresh one
    assert rtsp_total(sim) == 2, sim_status(sim)


@test
def rtsp_hung_printer_while_lingering_closes_the_stream():
    sim, proxy = sim_and_proxy(sim_extra=("--stall-after", str(int(6 * SCALE))), linger=600)
    v = rc.viewer(rc.url(proxy.port["rtsp"]))
    wait_until(lambda: rc.frames_seen(v) > 10, 30, "viewer streaming")
    v.stop()
    proxy.wait_log(r"no viewer left: keeping the printer stream open for 600 s", timeout=15)
    sim.wait_log(r"stalling", timeout=30)
    proxy.wait_log(r"printer stream lost \(no video from the printer for \d+ ms\): "
                   r"closed 0 viewers", timeout=20)
    wait_until(lambda: sim_status(sim)["rtsp"]["current"] == 0, 15, "no printer connection")


@test
def rtsp_printer_session_gets_rtsp_keepalives_while_video_flows():
    # rtspsrc sends an RTSP keepalive over TCP only when nothing arrives, so while video
    # flows a printer would see RTCP alone; the proxy sends GET_PARAMETER now and then.
    sim, proxy = sim_and_proxy()
    v = rc.viewer(rc.url(proxy.port["rtsp"]))
    wait_until(lambda: rc.frames_seen(v) > 10, 30, "viewer streaming")
    wait_until(lambda: sim_status(sim)["rtsp"]["keepalives"] >= 2, 45,
               "two RTSP keepalives from the proxy")
    st = sim_status(sim)["rtsp"]
    assert st["current"] == 1 and st["total"] == 1, st  # the same printer session
    seen = rc.frames_seen(v)
    wait_until(lambda: rc.frames_seen(v) > seen + 10, 20, "video after the keepalives")
    assert "refused the RTSP keepalive" not in proxy.log()


@test
def rtsp_printer_certificate_goes_through_the_pin():
    sim, proxy = sim_and_proxy(pin="sha256:" + "00" * 32 + "\n")
    code, fields, err = rc.probe(rc.url(proxy.port["rtsp"]))
    assert code != 0 and "codec_name" not in fields, (code, fields, err)
    proxy.wait_log(r"not trusting the printer's camera: printer certificate changed")


@test
def rtsp_many_viewers_leave_no_fds_or_threads():
    sim, proxy = sim_and_proxy()
    u = rc.url(proxy.port["rtsp"])
    rc.assert_h264(u)  # one-time GStreamer fds and threads exist from here on
    wait_until(lambda: sim_status(sim)["rtsp"]["current"] == 0, 15, "first stream closed")
    fds0, threads0 = proxy.fd_count(), proxy.thread_count()
    for i in range(CYCLES):
        code, err = rc.grab(u if i % 2 else rc.url(proxy.port["rtsp"], path="/stream"), frames=3)
        assert code == 0, (i, err)
    wait_until(lambda: sim_status(sim)["rtsp"]["current"] == 0, 15, "last stream closed")
    wait_until(lambda: proxy.fd_count() <= fds0, 15,
               "fds back to %d (now %d)" % (fds0, proxy.fd_count()))
    assert proxy.thread_count() <= threads0 + THREAD_SLACK, (threads0, proxy.thread_count())
    assert rtsp_total(sim) == CYCLES + 1


@test
def rtsp_stops_orderly_with_viewers():
    sim, proxy = sim_and_proxy(linger=600)  # the lingering stream must not hold up the stop
    v = rc.viewer(rc.url(proxy.port["rtsp"]))
    wait_until(lambda: rc.frames_seen(v) > 5, 30, "viewer streaming")
    code, _ = proxy.stop()
    assert code == 0, proxy.tail()
    v.wait(timeout=20)
    wait_until(lambda: sim_status(sim)["rtsp"]["current"] == 0, 15, "printer connection closed")


run()
