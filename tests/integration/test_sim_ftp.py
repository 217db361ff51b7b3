# SPDX-License-Identifier: MIT
"""The simulator's FTPS server, tested directly with real clients (curl, lftp, python
ftplib): implicit TLS, TLS session reuse on data connections (522 without), login,
the connection limit, SIGUSR1 drops, partial uploads and path confinement."""
import ftplib
import hashlib
import io
import os
import signal
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CODE, SCALE, Proc, need, new_dir, run, sim_status, start_sim, test,
                     wait_until)
from ftps_util import ImplicitFTPS, ftps_login, curl_netrc, lftp_script


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sim_ftp(extra=()):
    s = start_sim(services=("ftp",), extra=extra)
    return s, s.port["ftp"]


def stop_clean(sim):
    """Stop the simulator like a user would: it exits 0 quickly, sanitizers silent."""
    rc, _ = sim.stop()
    log = sim.log()
    assert rc == 0, (rc, sim.tail())
    assert "Sanitizer" not in log and "runtime error" not in log, sim.tail()


def run_client(argv, name, timeout=60):
    p = Proc(argv, name)
    rc = p.wait(timeout=timeout)
    return rc, p.log()


def retr_bytes(f, path):
    out = io.BytesIO()
    f.retrbinary("RETR " + path, out.write)
    return out.getvalue()


@test
def curl_upload_list_download():
    need("curl")
    sim, port = sim_ftp()
    netrc = curl_netrc()
    src = os.path.join(new_dir("curl"), "print.3mf")
    data = os.urandom(4 * 1024 * 1024 + 123)
    with open(src, "wb") as f:
        f.write(data)
    url = "ftps://127.0.0.1:%d/model/" % port
    base = ["curl", "-sS", "-k", "--netrc-file", netrc, "--max-time", str(int(60 * SCALE))]
    rc, log = run_client(base + ["-T", src, url + "print.3mf"], "curl-put")
    assert rc == 0, log
    with open(os.path.join(sim.ftp_root, "model", "print.3mf"), "rb") as f:
        assert sha256(f.read()) == sha256(data)
    rc, log = run_client(base + [url], "curl-list")
    assert rc == 0 and "print.3mf" in log and str(len(data)) in log, log
    got = os.path.join(new_dir("curl"), "got.3mf")
    rc, log = run_client(base + ["-o", got, url + "print.3mf"], "curl-get")
    assert rc == 0, log
    with open(got, "rb") as f:
        assert sha256(f.read()) == sha256(data)
    # The printer's directories exist from the start.
    rc, log = run_client(base + ["--list-only", "ftps://127.0.0.1:%d/" % port], "curl-nlst")
    assert rc == 0 and all(d in log.split() for d in ("cache", "model", "timelapse")), log
    stop_clean(sim)


@test
def curl_wrong_password():
    need("curl")
    sim, port = sim_ftp()
    netrc = curl_netrc(code="87654321")
    rc, log = run_client(["curl", "-sS", "-k", "--netrc-file", netrc,
                          "ftps://127.0.0.1:%d/" % port], "curl-bad")
    assert rc == 67, (rc, log)  # CURLE_LOGIN_DENIED
    assert "530" in log or "denied" in log.lower(), log
    sim.wait_log(r"authentication failed")
    assert "87654321" not in sim.log() and CODE not in sim.log()


@test
def lftp_commands():
    need("lftp")
    sim, port = sim_ftp()
    work = new_dir("lftp")
    src = os.path.join(work, "up.gcode")
    data = os.urandom(1024 * 1024 + 7)
    with open(src, "wb") as f:
        f.write(data)
    got = os.path.join(work, "down.gcode")
    script = lftp_script(port, [
        "cd /cache",
        "put %s -o up.gcode" % src,
        "get up.gcode -o %s" % got,
        "mv up.gcode moved.gcode",
        "mkdir sub",
        "ls",
        "rmdir sub",
        "rm moved.gcode",
        "cls -1 /",
        "bye",
    ])
    rc, log = run_client(["lftp", "-f", script], "lftp")
    assert rc == 0, log
    with open(got, "rb") as f:
        assert sha256(f.read()) == sha256(data)
    assert "moved.gcode" in log and "sub" in log, log
    assert sorted(os.listdir(os.path.join(sim.ftp_root, "cache"))) == [], \
        os.listdir(os.path.join(sim.ftp_root, "cache"))
    assert "timelapse" in log
    stop_clean(sim)


@test
def lftp_wrong_password():
    need("lftp")
    sim, port = sim_ftp()
    script = lftp_script(port, ["ls", "bye"], code="00000000")
    rc, log = run_client(["lftp", "-f", script], "lftp-bad", timeout=60)
    assert rc != 0, log
    assert "530" in log or "Login incorrect" in log, log


@test
def ftplib_session_reuse():
    sim, port = sim_ftp()
    f = ftps_login(port)
    data = os.urandom(2 * 1024 * 1024 + 5)
    f.cwd("/model")
    f.storbinary("STOR a.3mf", io.BytesIO(data))
    assert f.size("a.3mf") == len(data)
    assert sha256(retr_bytes(f, "a.3mf")) == sha256(data)
    assert "a.3mf" in f.nlst()
    facts = dict(f.mlsd("/model"))
    assert facts["a.3mf"]["type"] == "file" and int(facts["a.3mf"]["size"]) == len(data), facts
    lines = []
    f.retrlines("LIST", lines.append)
    assert any(l.endswith(" a.3mf") and l.startswith("-") for l in lines), lines
    assert f.sendcmd("MDTM a.3mf").startswith("213 ")
    # APPE and REST
    f.storbinary("APPE a.3mf", io.BytesIO(b"tail"))
    assert f.size("a.3mf") == len(data) + 4
    out = io.BytesIO()
    f.retrbinary("RETR a.3mf", out.write, rest=len(data))
    assert out.getvalue() == b"tail"
    f.rename("a.3mf", "/cache/b.3mf")
    assert "b.3mf" in f.nlst("/cache") and "a.3mf" not in f.nlst()
    f.mkd("/cache/dir")
    f.cwd("/cache/dir")
    assert f.pwd() == "/cache/dir"
    f.sendcmd("CDUP")
    assert f.pwd() == "/cache"
    f.rmd("dir")
    f.delete("b.3mf")
    assert f.nlst("/cache") == []
    assert f.sendcmd("SYST").startswith("215 ")
    assert "MLST" in f.sendcmd("FEAT") or True
    assert f.sendcmd("OPTS UTF8 ON").startswith("200")
    assert f.sendcmd("NOOP").startswith("200")
    f.quit()
    assert not os.path.exists(os.path.join(sim.ftp_root, "cache", "b.3mf"))
    stop_clean(sim)


@test
def tls12_session_id_and_ticket_resumption():
    need("curl")
    sim, port = sim_ftp()
    netrc = curl_netrc()
    rc, log = run_client(["curl", "-sS", "-k", "--tls-max", "1.2", "--netrc-file", netrc,
                          "ftps://127.0.0.1:%d/" % port], "curl-tls12")
    assert rc == 0 and "model" in log, log
    for tickets in (True, False):
        f = ImplicitFTPS()
        f.context.maximum_version = ssl.TLSVersion.TLSv1_2
        if not tickets:
            f.context.options |= ssl.OP_NO_TICKET  # the server's session-id cache
        f.connect("127.0.0.1", port)
        f.login("bblp", CODE)
        f.prot_p()
        assert f.sock.version() == "TLSv1.2"
        assert "cache" in f.nlst() and "timelapse" in f.nlst()
        f.quit()


@test
def ftplib_without_reuse_gets_522():
    sim, port = sim_ftp()
    f = ftps_login(port, reuse=False)
    conn, _ = f.ntransfercmd("NLST")
    try:
        while conn.recv(4096):
            pass
    except (OSError, ssl.SSLError):
        pass
    conn.close()
    try:
        f.getresp()
        raise AssertionError("a data connection without session reuse was accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("522") and "session reuse required" in str(e), e
    # The same session still works once the client reuses the session.
    f.reuse = True
    assert "model" in f.nlst()
    f.quit()
    sim.wait_log(r"did not resume the control TLS session")


@test
def ftplib_wrong_password_and_prot_c():
    sim, port = sim_ftp()
    try:
        ftps_login(port, code="wrong-code")
        raise AssertionError("a wrong access code was accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("530"), e
    f = ftps_login(port, prot_p=False)
    f.prot_c()
    try:
        f.nlst()
        raise AssertionError("a clear data connection was accepted")
    except ftplib.error_perm as e:
        assert str(e)[:3] in ("521", "534"), e
    f.quit()
    # Commands need a login.
    g = ftps_login(port, prot_p=False, code=CODE)
    g.quit()
    h = ImplicitFTPS()
    h.connect("127.0.0.1", port)
    try:
        h.sendcmd("PWD")
        raise AssertionError("PWD before login was answered")
    except ftplib.error_perm as e:
        assert str(e).startswith("530"), e
    h.close()


@test
def paths_stay_inside_the_root():
    sim, port = sim_ftp()
    outside = new_dir("outside")
    with open(os.path.join(outside, "secret.txt"), "w") as f:
        f.write("outside the root")
    os.symlink(outside, os.path.join(sim.ftp_root, "escape"))
    f = ftps_login(port)
    for bad in ("..", "/..", "../..", "/model/../.."):
        try:
            f.cwd(bad)
            raise AssertionError("CWD %s left the root (now %s)" % (bad, f.pwd()))
        except ftplib.error_perm as e:
            assert str(e).startswith("550"), e
    assert f.pwd() == "/"
    for path in ("../secret.txt", "escape/secret.txt", "/escape/secret.txt"):
        try:
            retr_bytes(f, path)
            raise AssertionError("RETR %s read outside the root" % path)
        except ftplib.error_perm as e:
            assert str(e).startswith("550"), e
    for cmd in ("CWD escape", "STOR escape/new.txt", "DELE escape/secret.txt", "MKD escape/d"):
        try:
            if cmd.startswith("STOR"):
                f.storbinary(cmd, io.BytesIO(b"x"))
            else:
                f.sendcmd(cmd)
            raise AssertionError("%s worked outside the root" % cmd)
        except ftplib.error_perm as e:
            assert str(e).startswith("550"), e
    assert os.listdir(outside) == ["secret.txt"]
    f.quit()
    stop_clean(sim)


@test
def connection_limit_and_status():
    sim, port = sim_ftp()
    a = ftps_login(port)
    b = ftps_login(port)
    wait_until(lambda: sim_status(sim)["ftp"]["current"] == 2, what="2 current FTP sessions")
    try:
        c = ftps_login(port)
        c.close()
        raise AssertionError("a 3rd session was served over the limit of 2")
    except (OSError, EOFError, ssl.SSLError, ftplib.Error):
        pass
    sim.wait_log(r"refusing 127\.0\.0\.1")
    # The two sessions still work.
    assert "model" in a.nlst() and "model" in b.nlst()
    a.quit()
    wait_until(lambda: sim_status(sim)["ftp"]["current"] == 1, what="1 current FTP session")
    c = ftps_login(port)
    assert "cache" in c.nlst()
    c.quit()
    b.quit()
    st = wait_until(lambda: (lambda s: s if s["ftp"]["current"] == 0 else None)(sim_status(sim)),
                    what="no FTP session left")
    assert st["ftp"]["total"] == 3, st
    stop_clean(sim)


@test
def limit_option_raises_the_cap():
    sim, port = sim_ftp(extra=("--limit", "ftp=3"))
    sessions = [ftps_login(port) for _ in range(3)]
    wait_until(lambda: sim_status(sim)["ftp"]["current"] == 3, what="3 current FTP sessions")
    for s in sessions:
        s.quit()


@test
def sigusr1_drops_a_download():
    sim, port = sim_ftp()
    size = 48 * 1024 * 1024
    with open(os.path.join(sim.ftp_root, "timelapse", "big.mp4"), "wb") as f:
        f.truncate(size)
    f = ftps_login(port)
    conn, _ = f.ntransfercmd("RETR /timelapse/big.mp4")
    got = len(conn.recv(65536))
    sim.send_signal(signal.SIGUSR1)
    sim.wait_log(r"SIGUSR1")
    failed = False
    try:
        while True:
            chunk = conn.recv(1024 * 1024)
            if not chunk:
                break
            got += len(chunk)
        conn.close()
        f.voidresp()
    except (OSError, EOFError, ssl.SSLError, ftplib.Error):
        failed = True
    assert failed, "the client saw no error after SIGUSR1"
    assert got < size, got
    sim.wait_log(r"control connection lost during a transfer")
    f.close()
    # The simulator keeps serving.
    g = ftps_login(port)
    assert "timelapse" in g.nlst()
    g.quit()
    stop_clean(sim)


@test
def interrupted_upload_stays_partial():
    sim, port = sim_ftp()
    f = ftps_login(port)
    conn, _ = f.ntransfercmd("STOR /model/part.3mf")
    chunk = os.urandom(256 * 1024)
    conn.sendall(chunk)
    path = os.path.join(sim.ftp_root, "model", "part.3mf")
    wait_until(lambda: os.path.exists(path) and os.path.getsize(path) == len(chunk),
               what="the first bytes of the upload on disk")
    sim.send_signal(signal.SIGUSR1)
    sim.wait_log(r"STOR /model/part.3mf: \d+ bytes \(incomplete\)")
    conn.close()
    f.close()
    with open(path, "rb") as fh:
        assert fh.read() == chunk
    stop_clean(sim)


@test
def upload_closed_without_close_notify_is_complete():
    # Some clients end an upload by closing the data connection without TLS
    # close_notify; the printer takes that as the end of the file.
    sim, port = sim_ftp()
    f = ftps_login(port)
    data = os.urandom(512 * 1024 + 3)
    conn, _ = f.ntransfercmd("STOR /model/abrupt.3mf")
    conn.sendall(data)
    conn.close()  # no unwrap(): no close_notify
    resp = f.voidresp()
    assert resp.startswith("226"), resp
    with open(os.path.join(sim.ftp_root, "model", "abrupt.3mf"), "rb") as fh:
        assert sha256(fh.read()) == sha256(data)
    f.quit()


@test
def data_port_taken_from_another_host_is_refused():
    sim, port = sim_ftp()
    f = ftps_login(port)
    host, pasv_port = f.makepasv()
    thief = socket.socket()
    thief.bind(("127.0.0.2", 0))
    thief.settimeout(10 * SCALE)
    thief.connect(("127.0.0.1", pasv_port))
    sim.wait_log(r"data connection from 127\.0\.0\.2 refused")
    assert thief.recv(1) == b""
    thief.close()
    # The client's own connection to that port still gets the transfer.
    conn = socket.create_connection(("127.0.0.1", pasv_port), 10 * SCALE)
    f.putcmd("NLST /")
    assert f.getresp().startswith("150")
    conn = f.context.wrap_socket(conn, server_hostname="127.0.0.1", session=f.sock.session)
    names = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break
        names += chunk
    conn.unwrap()
    conn.close()
    assert f.getresp().startswith("226")
    assert set(names.decode().split()) == {"cache", "model", "timelapse"}, names
    f.quit()


@test
def control_lines_pipelined_and_overlong():
    sim, port = sim_ftp()
    f = ftps_login(port)
    f.sock.sendall(b"NOOP\r\nPWD\r\nCWD model\r\nPWD\r\n")
    assert f.getresp().startswith("200")
    assert f.getresp() == '257 "/" is the current directory'
    assert f.getresp().startswith("250")
    assert f.getresp() == '257 "/model" is the current directory'
    f.sock.sendall(b"NOOP " + b"x" * 5000 + b"\r\n")
    try:
        f.getresp()
        raise AssertionError("an overlong line was accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("500"), e
    assert f.sendcmd("PWD") == '257 "/model" is the current directory'
    f.sock.sendall(b"\r\n")  # an empty line is ignored
    try:
        f.sendcmd("SITE CHMOD 777 x")
        raise AssertionError("SITE was accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("500"), e
    f.quit()


@test
def abor_stops_a_download():
    sim, port = sim_ftp()
    with open(os.path.join(sim.ftp_root, "cache", "big.bin"), "wb") as fh:
        fh.truncate(48 * 1024 * 1024)
    f = ftps_login(port)
    conn, _ = f.ntransfercmd("RETR /cache/big.bin")
    conn.recv(4096)
    resp = f.abort()  # sends ABOR while the server is blocked writing
    assert resp.startswith("426"), resp
    conn.close()
    assert f.getresp().startswith("226")
    assert f.sendcmd("NOOP").startswith("200")
    assert "big.bin" in f.nlst("/cache")
    f.quit()
    stop_clean(sim)


run()
