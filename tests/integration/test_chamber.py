#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The chamber camera service through the real proxy against the real simulator (which,
like the printer, takes one camera client): fan-out with byte-identical frames, one
printer connection at most, bad clients closed on time, slow viewers skip frames without
hurting others, reconnection after the printer drops, TLS record boundaries, lingering,
and fake printers that send corrupt streams."""
import signal
import socket
import ssl
import struct
import threading
import time

import harness as h
from chamber_util import (FakePrinter, SimConnPoller, Viewer, free_port, reference_frames,
                          start_camera_proxy, wait_peer_close)
from harness import test


def camera_port(px):
    return px.ports(["chamber"])["chamber"]


def assert_no_refusals(sim):
    refused = [l for l in sim.log().splitlines() if "refusing" in l and "chamber" in l]
    assert not refused, "the simulator refused camera connections:\n" + "\n".join(refused)


@test
def ten_viewers_get_identical_frames_over_one_printer_connection():
    sim = h.start_sim(services=("chamber",), extra=["--fps", "10"])
    poll = SimConnPoller(sim)
    px = start_camera_proxy(sim.port["chamber"], camera="auto")  # the probe counts too
    port = camera_port(px)
    viewers = [Viewer(port, limit=25) for _ in range(10)]
    for v in viewers:
        v.join(60 * h.SCALE)
    poll.stop()
    for v in viewers:
        assert v.error is None and v.count() == 25, "viewer got %d frames (%r)" % (v.count(),
                                                                                   v.error)
    # Whoever received counter N received the same bytes, timestamp included.
    by_counter = {}
    for v in viewers:
        for f in v.frames:
            assert f["jpeg_ok"], "not a whole JPEG: %r" % f
            by_counter.setdefault(f["counter"], set()).add(f["all"])
    assert all(len(s) == 1 for s in by_counter.values()), "viewers disagree on a frame"
    # ... and the JPEG is the one the simulator rendered for that counter.
    ref = reference_frames(max(by_counter) + 1)
    for v in viewers:
        for f in v.frames:
            assert f["jpeg"] == ref[f["counter"]], "frame %d differs from the simulator's" % (
                f["counter"])
    assert poll.samples > 10, "status file not polled"
    assert poll.max_current <= 1, "simulator saw %d camera connections" % poll.max_current
    assert_no_refusals(sim)
    # One probe and one upstream: never a connection per viewer.
    assert h.sim_status(sim)["chamber"]["total"] == 2, h.sim_status(sim)
    for v in viewers:
        v.close()
    rc, _ = px.stop()
    assert rc == 0, px.tail()


def raw_tls(port, rcvbuf=None):
    raw = socket.socket()
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(30 * h.SCALE)
    raw.connect(("127.0.0.1", port))
    return h.tls_client_ctx().wrap_socket(raw, server_hostname=h.SERIAL)


def closed_without_frame(s):
    """Seconds until the proxy closed s; fails if any byte arrived."""
    t0 = time.monotonic()
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        pass
    assert got == b"", "a rejected client received %d bytes" % len(got)
    return time.monotonic() - t0


@test
def bad_clients_are_closed_on_time_while_others_stream():
    sim = h.start_sim(services=("chamber",), extra=["--fps", "10"])
    px = start_camera_proxy(sim.port["chamber"], camera="chamber")
    port = camera_port(px)
    good = [Viewer(port) for _ in range(3)]
    h.wait_until(lambda: all(v.count() > 0 for v in good), 15, "frames for the good viewers")
    results = {}

    def wrong_code():
        s = raw_tls(port)
        s.sendall(h.chamber_auth(code="87654321"))
        results["wrong"] = closed_without_frame(s)

    def wrong_user():
        s = raw_tls(port)
        s.sendall(h.chamber_auth(user="root"))
        results["user"] = closed_without_frame(s)

    def truncated():
        s = raw_tls(port)
        s.sendall(h.chamber_auth()[:40])
        results["truncated"] = closed_without_frame(s)

    def too_long():
        s = raw_tls(port)
        s.sendall(h.chamber_auth() + b"\x00" * 16)
        results["long"] = closed_without_frame(s)

    def garbage():
        s = raw_tls(port)
        t0 = time.monotonic()
        try:
            s.sendall(bytes(range(256)) * 4096)  # 1 MiB
        except (OSError, ssl.SSLError):
            pass  # closed while we were still sending: fine
        closed_without_frame(s)
        results["garbage"] = time.monotonic() - t0

    def idle():
        s = raw_tls(port)
        results["idle"] = closed_without_frame(s)

    threads = [threading.Thread(target=f) for f in (wrong_code, wrong_user, truncated, too_long,
                                                    garbage, idle)]
    before = {id(v): v.count() for v in good}
    for t in threads:
        t.start()
    for t in threads:
        t.join(40 * h.SCALE)
    assert len(results) == 6, results
    # Auth deadline 10 s from accept; failed logins wait the throttle delay (<= 5 s).
    for k in ("truncated", "idle"):
        assert results[k] < 10 * h.SCALE + 3, results
    for k in ("wrong", "user", "long", "garbage"):
        assert results[k] < 6 * h.SCALE + 2, results
    log = px.log()
    assert log.count("wrong user or access code") == 2, log
    assert "no auth packet from" in log
    assert "garbled auth packet" in log
    assert "longer than 80 bytes" in log
    assert h.CODE not in log and "87654321" not in log
    # The good viewers kept streaming the whole time, without a gap.
    for v in good:
        assert v.error is None, v.error
        assert v.count() >= before[id(v)] + 20, "a good viewer stalled"
        c = v.counters()
        assert c == list(range(c[0], c[0] + len(c))), "gap in %r" % c
        v.close()
    rc, _ = px.stop()
    assert rc == 0, px.tail()


@test
def a_viewer_that_stops_reading_does_not_make_others_miss_frames():
    # 150 KB frames at 10 fps: a stuck viewer with a 4 KiB receive buffer fills up at once.
    sim = h.start_sim(services=("chamber",), extra=["--fps", "10", "--frame-size", "150000"])
    px = start_camera_proxy(sim.port["chamber"], camera="chamber")
    port = camera_port(px)
    stuck = Viewer(port, rcvbuf=4096, read=False)
    good = [Viewer(port) for _ in range(3)]
    h.wait_until(lambda: all(v.count() >= 40 for v in good), 30, "40 frames each")
    for v in good:
        assert v.error is None, v.error
        c = v.counters()
        assert c == list(range(c[0], c[0] + len(c))), "a reading viewer missed frames: %r" % c
        v.close()
    stuck.close()
    rc, _ = px.stop()
    assert rc == 0, px.tail()


@test
def viewers_get_frames_again_after_the_printer_drops_everything():
    sim = h.start_sim(services=("chamber",), extra=["--fps", "10"])
    px = start_camera_proxy(sim.port["chamber"], camera="chamber")
    port = camera_port(px)
    viewers = [Viewer(port) for _ in range(3)]
    h.wait_until(lambda: all(v.count() >= 3 for v in viewers), 15, "first frames")
    last = {id(v): v.last_counter() for v in viewers}
    sim.send_signal(signal.SIGUSR1)
    sim.wait_log("SIGUSR1")
    px.wait_log("printer camera connection lost")
    # Backoff after a healthy stream starts at 1 s (+20 % jitter), then 2 s of slack.
    h.wait_until(lambda: all(v.last_counter() > last[id(v)] + 2 for v in viewers),
                 1.2 + 2, "frames after the drop")
    for v in viewers:
        assert v.error is None, "a viewer was disconnected: %r" % v.error
        v.close()
    assert h.sim_status(sim)["chamber"]["total"] == 2  # the same viewers, one reconnect
    assert_no_refusals(sim)
    rc, _ = px.stop()
    assert rc == 0, px.tail()


def tls_records_plaintext(port, want_frames):
    """Connect with an SSLObject over memory BIOs and feed it one TLS record at a time,
    so every plaintext chunk is exactly one record's content."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=15 * h.SCALE)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = h.tls_client_ctx().wrap_bio(inc, out, server_hostname=h.SERIAL)
    wire = bytearray()

    def flush():
        data = out.read()
        if data:
            raw.sendall(data)

    def next_record():
        while len(wire) < 5 or len(wire) < 5 + struct.unpack_from(">H", wire, 3)[0]:
            chunk = raw.recv(65536)
            if not chunk:
                raise EOFError("proxy closed")
            wire.extend(chunk)
        n = 5 + struct.unpack_from(">H", wire, 3)[0]
        rec = bytes(wire[:n])
        del wire[:n]
        return rec

    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            inc.write(next_record())
    flush()
    obj.write(h.chamber_auth())
    flush()
    records = []
    end = time.monotonic() + 20 * h.SCALE
    while True:
        frames, well_formed = count_frames(records)
        if frames >= want_frames or not well_formed:
            break  # the caller's checks say what is wrong
        assert time.monotonic() < end, "no %d frames within %ss" % (want_frames, 20 * h.SCALE)
        inc.write(next_record())
        plain = b""
        while True:
            try:
                plain += obj.read(65536)
            except ssl.SSLWantReadError:
                break
        if not plain:
            continue  # a handshake message (session ticket)
        records.append(plain)
    raw.close()
    return records


def count_frames(records):
    """(whole frames, whether every header had a record of its own so far)"""
    frames, need = 0, 0
    for r in records:
        if need == 0:
            if len(r) != 16:
                return frames, False
            need = struct.unpack_from("<I", r, 0)[0]
        else:
            if len(r) > need:
                return frames, False
            need -= len(r)
            if need == 0:
                frames += 1
    return frames, True


@test
def each_header_travels_alone_in_its_own_tls_record():
    sim = h.start_sim(services=("chamber",), extra=["--fps", "10", "--frame-size", "40000"])
    px = start_camera_proxy(sim.port["chamber"], camera="chamber")
    records = tls_records_plaintext(camera_port(px), 5)
    need = 0
    frames = 0
    for r in records:
        if need == 0:
            assert len(r) == 16, "a header shares its record (%d bytes)" % len(r)
            need = struct.unpack_from("<I", r, 0)[0]
            assert need == 40000
        else:
            assert len(r) <= need, "a JPEG record runs into the next header"
            need -= len(r)
            frames += need == 0
    assert frames >= 5
    rc, _ = px.stop()
    assert rc == 0, px.tail()


@test
def a_new_viewer_gets_the_fresh_latest_frame_at_once():
    # One frame every 5 s: the second viewer's first frame can only be the one the first
    # viewer just got if the proxy hands out the (fresh) latest frame on joining.
    sim = h.start_sim(services=("chamber",), extra=["--fps", "0.2"])
    px = start_camera_proxy(sim.port["chamber"], camera="chamber")
    port = camera_port(px)
    first = Viewer(port)
    h.wait_until(lambda: first.count() >= 1, 15, "a first frame")
    second = Viewer(port)
    h.wait_until(lambda: second.count() >= 1, 10, "the second viewer's first frame")
    assert second.counters()[0] == first.counters()[0], (first.counters(), second.counters())
    first.close()
    second.close()
    rc, _ = px.stop()
    assert rc == 0, px.tail()


@test
def the_printer_connection_lingers_then_closes_and_reopens_on_demand():
    sim = h.start_sim(services=("chamber",), extra=["--fps", "10"])
    poll = SimConnPoller(sim)
    px = start_camera_proxy(sim.port["chamber"], camera="chamber",
                            extra=["--camera-linger", "1"])
    port = camera_port(px)
    v = Viewer(port)
    h.wait_until(lambda: v.count() >= 3, 15, "frames")
    v.close()
    px.wait_log("no viewer for 1 s: closing the printer connection")
    h.wait_until(lambda: h.sim_status(sim)["chamber"]["total"] == 1 and
                 h.sim_status(sim)["chamber"]["current"] == 0, 10, "upstream closed")
    v = Viewer(port)
    h.wait_until(lambda: v.count() >= 3, 15, "frames after reopening")
    v.close()
    poll.stop()
    assert poll.max_current <= 1
    assert h.sim_status(sim)["chamber"]["total"] == 2
    assert_no_refusals(sim)
    rc, _ = px.stop()
    assert rc == 0, px.tail()


def corrupt_printer(kind):
    def handler(tls, rec):
        auth = h.recv_exact(tls, 80)
        rec["auth_ok"] = auth == h.chamber_auth()
        if kind == "auth-close":
            tls.close()
            return
        jpeg = b"\xff\xd8" + b"\x00" * 96 + b"\xff\xd9"
        tls.sendall(struct.pack("<I12x", len(jpeg)))
        tls.sendall(jpeg)  # one good frame, then the bad part
        if kind == "zero":
            tls.sendall(struct.pack("<I12x", 0))
        elif kind == "huge":
            tls.sendall(struct.pack("<I12x", 2 ** 31))
        elif kind == "midframe":
            tls.sendall(struct.pack("<I12x", 5000))
            tls.sendall(b"\xff\xd8" + b"\x00" * 100)
            tls.close()  # no close_notify: the connection just ends mid-frame
            return
        wait_peer_close(tls, rec)
    return handler


@test
def corrupt_printer_streams_are_dropped_and_retried():
    for kind in ("zero", "huge", "midframe"):
        fake = FakePrinter(corrupt_printer(kind))
        px = start_camera_proxy(fake.port, camera="chamber")
        port = camera_port(px)
        v = Viewer(port)
        # The viewer stays connected while the proxy reconnects (backoff 1 s, then 2 s).
        h.wait_until(lambda: len(fake.conns) >= 3, 20, "reconnects after a %s stream" % kind)
        h.wait_until(lambda: v.count() >= 3, 10, "the good frames of each connection")
        assert v.error is None, v.error
        assert all(c.get("auth_ok") for c in fake.conns[:2]), fake.conns
        if kind != "midframe":
            px.wait_log("corrupt camera stream")
            # Dropped with close_notify, not abandoned.
            assert fake.conns[0].get("close") == "close_notify", fake.conns
        else:
            px.wait_log("lost inside a 5000-byte frame")
        v.close()
        rc, _ = px.stop()
        assert rc == 0, "%s: exit %s\n%s" % (kind, rc, px.tail())  # sanitizers: no leak
        fake.stop()


@test
def a_printer_closing_after_auth_is_reported_as_a_wrong_access_code():
    fake = FakePrinter(corrupt_printer("auth-close"))
    px = start_camera_proxy(fake.port, camera="chamber")
    v = Viewer(camera_port(px))
    px.wait_log("access code is probably wrong")
    assert len(fake.conns) == 1
    v.close()
    rc, _ = px.stop()
    assert rc == 0, px.tail()
    assert h.CODE not in px.log()
    fake.stop()


h.run()
