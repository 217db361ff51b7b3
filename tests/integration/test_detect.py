#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Camera detection (--camera auto) with the real proxy: a chamber simulator is detected
as chamber, an RTSPS printer as rtsp (against the simulator when it serves RTSPS, and
against a minimal TLS server answering RTSP/1.0), probes are closed cleanly and never
take a second camera slot, and a printer that is off at start is guessed from the
serial and switched over to when it comes up (both directions). Once detected, the
camera is probed again only after failing for --camera-redetect seconds: then the proxy
switches to the camera that answers, while a short outage changes nothing. A switch
leaves no listener on the old port and no fds or threads beyond what a proxy started
in the new mode holds."""
import os
import random
import re
import socket

import harness as h
import rtsp_clients as rc
from chamber_util import (FakePrinter, SimConnPoller, Viewer, free_port, start_camera_proxy,
                          wait_peer_close)
from harness import test

X1C_SERIAL = "00M09A350100001"


def have_rtsp():
    try:
        with open(os.path.join(h.BUILDDIR, "autoconf.h")) as f:
            return re.search(r"^#define HAVE_RTSP 1", f.read(), re.M) is not None
    except OSError:
        return True


@test
def a_chamber_printer_is_detected_as_chamber():
    sim = h.start_sim(services=("chamber",), extra=["--fps", "5"])
    poll = SimConnPoller(sim)
    px = start_camera_proxy(sim.port["chamber"], camera="auto")
    m = px.wait_log(r"detected the chamber camera: (.*)")
    assert "sent a chamber frame header" in m.group(1), m.group(0)
    port = px.ports(["chamber"])["chamber"]
    assert "(rtsp)" not in px.log()
    # The probe was closed: the printer's only camera slot is free again.
    h.wait_until(lambda: h.sim_status(sim)["chamber"]["total"] == 1 and
                 h.sim_status(sim)["chamber"]["current"] == 0, 10, "the probe closed")
    v = Viewer(port)
    h.wait_until(lambda: v.count() >= 3, 15, "frames after detection")
    v.close()
    poll.stop()
    assert poll.max_current <= 1
    assert "refusing" not in sim.log()
    rc, _ = px.stop()
    assert rc == 0, px.tail()


def fake_rtsps_handler(tls, rec):
    req = b""
    while b"\r\n\r\n" not in req and len(req) < 4096:
        chunk = tls.recv(4096)
        if not chunk:
            return
        req += chunk
    rec["request"] = req.decode("latin-1")
    cseq = re.search(r"CSeq: *(\d+)", rec["request"])
    tls.sendall(("RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, "
                 "TEARDOWN\r\n\r\n" % (cseq.group(1) if cseq else "0")).encode())
    wait_peer_close(tls, rec)


def expect_rtsp_chosen(px):
    if have_rtsp():
        px.ports(["rtsp"])
    else:
        px.wait_log(r"detected to be RTSPS, but this build has no RTSP support")
    assert "(chamber)" not in re.sub(r"\[chamber", "", px.log())


@test
def an_rtsps_printer_is_detected_as_rtsp():
    fake = FakePrinter(fake_rtsps_handler)
    # The serial hints "chamber": the probe must win over the hint.
    px = start_camera_proxy(free_port(), camera="auto", rtsp_port=fake.port, gstreamer=True)
    m = px.wait_log(r"detected the rtsp camera: (.*)")
    assert 'answered OPTIONS with "RTSP/1.0 200 OK"' in m.group(1), m.group(0)
    expect_rtsp_chosen(px)
    h.wait_until(lambda: fake.conns and "close" in fake.conns[0], 10, "probe closed")
    req = fake.conns[0]["request"]
    assert req.startswith("OPTIONS rtsps://127.0.0.1:%d/streaming/live/1 RTSP/1.0\r\n" %
                          fake.port), req
    assert "CSeq: 1\r\n" in req
    assert fake.conns[0]["close"] == "close_notify", fake.conns
    rc, _ = px.stop()
    assert rc == 0, px.tail()
    fake.stop()


@test
def the_rtsps_simulator_is_detected_as_rtsp():
    try:
        sim = h.start_sim(model="x1c", services=("rtsp",), serial=X1C_SERIAL)
    except AssertionError as e:
        raise h.SkipTest("the simulator does not serve RTSPS yet (%s)" %
                         str(e).splitlines()[0][:80])
    px = start_camera_proxy(free_port(), camera="auto", rtsp_port=sim.port["rtsp"],
                            serial=X1C_SERIAL, gstreamer=True)
    px.wait_log(r"detected the rtsp camera: .*answered OPTIONS with \"RTSP/1.0")
    expect_rtsp_chosen(px)
    rc, _ = px.stop()
    assert rc == 0, px.tail()


@test
def a_printer_off_at_start_is_guessed_then_switched_to():
    chamber_port = free_port()
    # An X1C serial: the guess is rtsp, the printer turns out to have the chamber camera.
    # No linger: once the viewer leaves, the proxy holds only what it held before.
    px = start_camera_proxy(chamber_port, camera="auto", serial=X1C_SERIAL, gstreamer=True,
                            extra=NO_LINGER)
    px.wait_log(r"no camera answered .*guessing rtsp from the serial number")
    if have_rtsp():
        old = px.ports(["rtsp"])["rtsp"]
    sim = h.start_sim(services=(), serial=X1C_SERIAL,
                      extra=["--port", "chamber=%d" % chamber_port, "--fps", "5"])
    sim.wait_log(r"listening on \S+:%d \(chamber\)" % chamber_port)
    # Background probes run every 30 s (and take up to 5 s).
    px.wait_log(r"detected the chamber camera", timeout=45)
    if have_rtsp():
        px.wait_log(r"switching the camera service from rtsp to chamber")
        px.wait_log(r"\[rtsp\] stopped")
    port = px.ports(["chamber"])["chamber"]
    v = Viewer(port)
    h.wait_until(lambda: v.count() >= 3, 15, "frames after the switch")
    v.close()
    assert "refusing" not in sim.log()
    if have_rtsp():
        assert_refused(old)
        assert_like_a_fresh_chamber_proxy(px, sim, "127.0.0.1", chamber_port,
                                          serial=X1C_SERIAL)
    rc, _ = px.stop()
    assert rc == 0, px.tail()


# ---- switching the camera service (guess or re-detection) -------------------------

def printer_host():
    """An address of its own in 127.0.0.0/8 for the stand-in printer, so nothing of another
    test retrying a reused port can reach it."""
    return "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255),
                             random.randint(1, 254))


def free_port_on(host):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def switch_proxy(host, chamber_port, rtsp_port, extra=()):
    """A camera-only proxy in --camera auto for the printer at host (GStreamer may run)."""
    return h.start_proxy({"chamber": chamber_port, "rtsp": rtsp_port}, services=("camera",),
                         camera="auto", printer_host=host, extra=list(extra),
                         env=h.gstreamer_env())


def start_printer(host, kind, port, state_dir, name="sim"):
    """The printer (re)appearing on a fixed port: a chamber (P1S) or RTSPS (X1C)
    simulator with the serial the proxy expects and the certificate it pinned
    (same state directory)."""
    model = "x1c" if kind == "rtsp" else "p1s"
    extra = ["--bind", host, "--port", "%s=%d" % (kind, port)]
    if kind == "chamber":
        extra += ["--fps", "5"]
    sim = h.start_sim(model=model, services=(), serial=h.SERIAL, state_dir=state_dir,
                      extra=extra, name=name)
    sim.wait_log(r"listening on \S+:%d \(%s\)" % (port, kind), timeout=20)
    return sim


def assert_refused(port):
    """The camera service that was switched away from left no listener behind."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5 * h.SCALE)
    except ConnectionRefusedError:
        return
    s.close()
    raise AssertionError("port %d still accepts connections after the switch" % port)


DETECT_FDS, DETECT_THREADS = 2, 1  # background detection: its stop pipe and thread
NO_LINGER = ["--camera-linger", "0"]  # the printer stream closes with its last viewer
GLIB_ONCE_FDS = 1                   # GLib's default main context lives on once RTSPS ran


def thread_names(p):
    names = []
    for t in sorted(os.listdir("/proc/%d/task" % p.pid)):
        try:
            with open("/proc/%d/task/%s/comm" % (p.pid, t)) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


def assert_settles(px, fds, threads, what):
    """Within a generous deadline the proxy holds at most fds descriptors and threads
    threads (GLib ends idle pool threads late)."""
    try:
        h.wait_until(lambda: px.fd_count() <= fds and px.thread_count() <= threads, 30,
                     "at most %d fds and %d threads after %s" % (fds, threads, what))
    except AssertionError as e:
        raise AssertionError("%s (now %d fds, threads %s):\n%s" % (
            e, px.fd_count(), thread_names(px), "\n".join(
                "%s -> %s" % (fd, os.readlink("/proc/%d/fd/%s" % (px.pid, fd)))
                for fd in sorted(os.listdir("/proc/%d/fd" % px.pid), key=int))))


def assert_like_a_fresh_rtsp_proxy(px, host, rtsp_port, rsim):
    """Nothing of the chamber service is left after the switch: once the printer stream
    closed (the proxy runs with --camera-linger 0), the proxy holds what one started with --camera rtsp holds after the same
    ffprobe, plus background detection's thread and pipe."""
    def stream_closed():
        h.wait_until(lambda: h.sim_status(rsim)["rtsp"]["current"] == 0, 20,
                     "the printer stream closed")
    stream_closed()
    ref = h.start_proxy({"rtsp": rtsp_port}, services=("camera",), camera="rtsp",
                        printer_host=host, extra=NO_LINGER, name="ref-proxy")
    rc.assert_h264(rc.url(ref.ports(["rtsp"])["rtsp"]))
    stream_closed()
    assert_settles(px, ref.fd_count() + DETECT_FDS, ref.thread_count() + DETECT_THREADS,
                   "the switch to rtsp")
    ref.stop()


def assert_like_a_fresh_chamber_proxy(px, sim, host, chamber_port, serial=h.SERIAL):
    """Nothing of the RTSPS service is left after the switch: once the viewer left (no
    linger), the proxy holds what one started with --camera chamber holds after the
    same viewer, plus background detection's thread and pipe and the wakeup fd of
    GLib's default main context (created once per process)."""
    def upstream_closed():
        h.wait_until(lambda: h.sim_status(sim)["chamber"]["current"] == 0, 15,
                     "the printer connection closed (no linger)")
    upstream_closed()
    ref = h.start_proxy({"chamber": chamber_port}, services=("camera",), camera="chamber",
                        printer_host=host, serial=serial, extra=NO_LINGER,
                        name="ref-proxy")
    v = Viewer(ref.ports(["chamber"])["chamber"])
    h.wait_until(lambda: v.count() >= 3, 15, "frames through a fresh chamber proxy")
    v.close()
    upstream_closed()
    assert_settles(px, ref.fd_count() + DETECT_FDS + GLIB_ONCE_FDS,
                   ref.thread_count() + DETECT_THREADS, "the switch to chamber")
    ref.stop()


def wait_switched(px, old, new, timeout, count=1, listen_count=None):
    """The count-th switch from old to new: logged, the old service stopped; returns the
    port of the new service (listening for the listen_count-th time, default count)."""
    px.wait_log(r"switching the camera service from %s to %s" % (old, new), timeout=timeout,
                count=count)
    px.wait_log(r"\[%s\] stopped" % old, count=count)
    m = px.wait_log(r"listening on \S+:(\d+) \(%s\)" % new, count=listen_count or count)
    return int(m.group(1))


@test
def the_chamber_camera_failing_for_the_redetect_period_is_redetected_as_rtsp():
    rc.need_rtsp()
    host = printer_host()
    sim = h.start_sim(services=("chamber",), extra=["--bind", host, "--fps", "5"])
    rtsp_port = free_port_on(host)
    px = switch_proxy(host, sim.port["chamber"], rtsp_port,
                      ["--camera-redetect", "3"] + NO_LINGER)
    px.wait_log(r"detected the chamber camera: .*sent a chamber frame header")
    old = px.ports(["chamber"])["chamber"]
    v = Viewer(old)  # a viewer keeps the printer connection (and its failures) going
    h.wait_until(lambda: v.count() >= 3, 15, "frames before the printer goes")
    # The printer is replaced: the chamber camera is gone, RTSPS answers (same serial).
    sim.stop()
    rsim = start_printer(host, "rtsp", rtsp_port, sim.state_dir, name="rtsp-sim")
    px.wait_log(r"the chamber camera is failing; both camera ports are probed again if it "
                r"keeps failing for 3 s")
    px.wait_log(r"the chamber camera has kept failing for \d+ s: probing both camera ports "
                r"again", timeout=30)
    m = px.wait_log(r"detected the rtsp camera: (.*)", timeout=30)
    assert re.search(r"RTSPS port %d answered OPTIONS with \"RTSP/1.0" % rtsp_port,
                     m.group(1)), m.group(0)
    port = wait_switched(px, "chamber", "rtsp", 30)
    rc.assert_h264(rc.url(port))
    assert_refused(old)
    v.close()
    assert_like_a_fresh_rtsp_proxy(px, host, rtsp_port, rsim)
    rc_, _ = px.stop()
    assert rc_ == 0, px.tail()


@test
def the_camera_is_redetected_back_and_forth_without_leaking():
    """rtsp -> chamber -> rtsp -> chamber, each time after the camera failed for the
    period: the second time in chamber the proxy holds no more fds or threads than the
    first time (GLib and GIO start process-wide workers the first time RTSPS streams;
    the first round pays for those)."""
    rc.need_rtsp()
    host, state = printer_host(), h.new_dir("simstate")
    rtsp_port, chamber_port = free_port_on(host), free_port_on(host)
    rsim = start_printer(host, "rtsp", rtsp_port, state, name="rtsp-sim")
    px = switch_proxy(host, chamber_port, rtsp_port,
                      ["--camera-redetect", "3"] + NO_LINGER)
    px.wait_log(r"detected the rtsp camera: .*answered OPTIONS")
    rport = px.ports(["rtsp"])["rtsp"]
    for rnd in (1, 2):
        # rtsp: a viewer's printer stream runs, then the printer turns into a chamber one.
        viewer = rc.viewer(rc.url(rport), name="viewer%d" % rnd)
        h.wait_until(lambda: rc.frames_seen(viewer) >= 10, 30, "video in round %d" % rnd)
        rsim.stop()
        csim = start_printer(host, "chamber", chamber_port, state, name="sim%d" % rnd)
        px.wait_log(r"the rtsp camera has kept failing for \d+ s: probing both camera "
                    r"ports again", timeout=30, count=rnd)
        cport = wait_switched(px, "rtsp", "chamber", 30, count=rnd)
        assert_refused(rport)
        v = Viewer(cport)
        h.wait_until(lambda: v.count() >= 3, 15, "frames in round %d" % rnd)
        v.close()
        h.wait_until(lambda: h.sim_status(csim)["chamber"]["current"] == 0, 15,
                     "the printer connection closed (no linger)")
        if rnd == 2:
            assert_settles(px, first[0], first[1], "the second switch to chamber")
            break
        first = (px.fd_count(), px.thread_count())
        # chamber: a viewer keeps the printer connection (and its failures) going.
        v = Viewer(cport)
        v.sock.settimeout(120 * h.SCALE)  # no frame reaches it while the printer changes
        h.wait_until(lambda: v.count() >= 3, 15, "frames before the printer changes")
        csim.stop()
        rsim = start_printer(host, "rtsp", rtsp_port, state, name="rtsp-sim%d" % rnd)
        px.wait_log(r"the chamber camera has kept failing for \d+ s: probing both camera "
                    r"ports again", timeout=30)
        rport = wait_switched(px, "chamber", "rtsp", 30, listen_count=2)
        assert_refused(cport)
        v.close()
        rc.assert_h264(rc.url(rport))
        h.wait_until(lambda: h.sim_status(rsim)["rtsp"]["current"] == 0, 20,
                     "the printer stream closed")
    rc_, _ = px.stop()
    assert rc_ == 0, px.tail()


@test
def a_chamber_camera_briefly_down_is_not_redetected():
    host = printer_host()
    sim = h.start_sim(services=("chamber",), extra=["--bind", host, "--fps", "5"])
    period = int(45 * h.SCALE)
    px = switch_proxy(host, sim.port["chamber"], free_port_on(host),
                      ["--camera-redetect", str(period)])
    px.wait_log(r"detected the chamber camera")
    v = Viewer(px.ports(["chamber"])["chamber"])
    v.sock.settimeout(120 * h.SCALE)  # no frame reaches it while the printer is away
    h.wait_until(lambda: v.count() >= 3, 15, "frames before the blip")
    sim.stop()
    px.wait_log(r"the chamber camera is failing; both camera ports are probed again if it "
                r"keeps failing for %d s" % period, timeout=20)
    seen = v.count()
    start_printer(host, "chamber", sim.port["chamber"], sim.state_dir, name="sim-again")
    # The same viewer connection gets frames again (the proxy reconnected upstream).
    h.wait_until(lambda: v.count() >= seen + 3, 60, "frames after the blip")
    px.wait_log(r"the chamber camera works again", timeout=30)
    log = px.log()
    assert "probing both camera ports again" not in log, px.tail()
    assert "switching the camera service" not in log, px.tail()
    assert v.error is None, v.error
    v.close()
    rc_, _ = px.stop()
    assert rc_ == 0, px.tail()


@test
def a_printer_off_at_start_guessed_chamber_is_switched_to_rtsp():
    rc.need_rtsp()
    host = printer_host()
    rtsp_port = free_port_on(host)
    # A P1S serial: the guess is chamber; the printer turns out to serve RTSPS.
    px = switch_proxy(host, free_port_on(host), rtsp_port, NO_LINGER)
    px.wait_log(r"no camera answered .*guessing chamber from the serial number")
    old = px.ports(["chamber"])["chamber"]
    rsim = start_printer(host, "rtsp", rtsp_port, h.new_dir("simstate"), name="rtsp-sim")
    # Background probes run every 30 s (and take up to 5 s).
    m = px.wait_log(r"detected the rtsp camera: (.*)", timeout=45)
    assert "answered OPTIONS" in m.group(1), m.group(0)
    port = wait_switched(px, "chamber", "rtsp", 15)
    rc.assert_h264(rc.url(port))
    assert_refused(old)
    assert_like_a_fresh_rtsp_proxy(px, host, rtsp_port, rsim)
    rc_, _ = px.stop()
    assert rc_ == 0, px.tail()


h.run()
