#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Camera detection (--camera auto) with the real proxy: a chamber simulator is detected
as chamber, an RTSPS printer as rtsp (against the simulator when it serves RTSPS, and
against a minimal TLS server answering RTSP/1.0), probes are closed cleanly and never
take a second camera slot, and a printer that is off at start is guessed from the
serial and switched over to when it comes up."""
import os
import re

import harness as h
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
    px = start_camera_proxy(chamber_port, camera="auto", serial=X1C_SERIAL, gstreamer=True)
    px.wait_log(r"no camera answered .*guessing rtsp from the serial number")
    if have_rtsp():
        px.ports(["rtsp"])
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
    rc, _ = px.stop()
    assert rc == 0, px.tail()


h.run()
