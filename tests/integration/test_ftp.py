# SPDX-License-Identifier: MIT
"""The FTPS service through the proxy, with real clients (curl passive and active,
lftp, python ftplib) against two stand-in printers: real vsftpd configured like a
printer (implicit TLS, require_ssl_reuse, passive range, local user bblp) and the
printer simulator. Every test runs against both; vsftpd needs root (it logs in a real
system user) and is skipped with the reason otherwise. Nothing is left behind: the
temporary user, configs and files are removed, every process is killed by PID."""
import atexit
import fcntl
import ftplib
import hashlib
import io
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CODE, SCALE, SERIAL, Proc, SkipTest, need, new_dir, run, start_proxy,
                     start_sim, test, wait_until)
from ftps_util import ImplicitFTPS, curl_netrc, ftps_login, lftp_script

PRINTER_HOST = "127.0.0.2"   # the stand-in printer; the proxy is reached on 127.0.0.1
BIG = 20 * 1024 * 1024
TEST_USER = "bblp"
TEST_GECOS = "pandaproxy-test"
USER_LOCK = os.path.join("/run/lock" if os.path.isdir("/run/lock") else "/tmp",
                         "pandaproxy-test-bblp.lock")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def free_port(host):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_block(lo, hi, size):
    """A random block of ports below the ephemeral range, so it rarely collides."""
    base = random.randrange(lo, hi - size)
    return base, base + size - 1


def established(port, detail=None):
    """Control sessions between the proxy and the printer listening on port: TCP
    connections established at both ends (a connection the proxy has closed is
    not a session, even before the printer's kernel has processed the FIN). One ss
    call filters in the kernel in one pass; /proc/net/tcp is read in chunks while
    sockets come and go, so it can list a closed session beside its successor."""
    server = "%s:%d" % (PRINTER_HOST, port)
    out = subprocess.run(["ss", "-Htn", "state", "established",
                          "( src %s or dst %s )" % (server, server)],
                         capture_output=True, text=True, check=True).stdout
    at_printer, at_proxy = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[2] == server:
            at_printer.add(f[3])
        elif len(f) >= 4 and f[3] == server:
            at_proxy.add(f[2])
    both = at_printer & at_proxy
    if detail is not None:
        detail.extend(sorted(both))
    return len(both)


class SessionSampler:
    """Samples how many control sessions the printer has, in a thread."""

    def __init__(self, port):
        need("ss")
        self.port, self.max, self.seen, self.detail = port, 0, 0, []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop_ev.is_set():
            d = []
            n = established(self.port, d)
            if n > self.max:
                self.detail = d + [time.strftime("%H:%M:%S") + ".%03d" % (time.time() % 1 * 1000)]
            self.max = max(self.max, n)
            self.seen += 1

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        return self.max


# ---- the system user vsftpd logs in --------------------------------------------------

class TestUser:
    """The local user bblp with the access code as password, created for these tests
    only (marked by its GECOS field) and removed at exit. A lock file keeps parallel
    runs on one machine from fighting over the single user name."""

    def __init__(self):
        self.home = None
        self.lockf = None
        self.created = False

    def ensure(self):
        if self.home:
            return self.home
        if os.geteuid() != 0:
            raise SkipTest("vsftpd tests need root (to create the system user bblp and "
                           "start vsftpd); run make check as root to include them")
        need("vsftpd", "useradd", "userdel", "chpasswd", "openssl")
        if not any(line.strip() == "/bin/sh" for line in open("/etc/shells")):
            raise SkipTest("/bin/sh is not in /etc/shells: PAM would refuse the test user")
        if self.lockf is None:
            self.lock()
            atexit.register(self.release)
        try:
            pw = pwd.getpwnam(TEST_USER)
        except KeyError:
            pw = None
        if pw is not None:
            if pw.pw_gecos != TEST_GECOS:
                raise SkipTest("a real user %s exists on this machine; not touching it" %
                               TEST_USER)
            self.remove_user()  # left over by a killed run
        # Outside the harness tmpdir: its cleanup runs before ours at exit.
        home = tempfile_dir("pp-ftp-home-")
        self.created = True
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", "-c", TEST_GECOS,
                        TEST_USER], check=True)
        subprocess.run(["chpasswd"], input=("%s:%s\n" % (TEST_USER, CODE)).encode(),
                       check=True)
        pw = pwd.getpwnam(TEST_USER)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        self.home = home
        return self.home

    def lock(self):
        """Hold USER_LOCK. The holder unlinks it when done, so a lock taken on a file
        that is no longer at the path is retried on a fresh one."""
        end = time.monotonic() + 600 * SCALE
        while True:
            f = open(USER_LOCK, "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                try:
                    if os.stat(USER_LOCK).st_ino == os.fstat(f.fileno()).st_ino:
                        self.lockf = f
                        return
                except FileNotFoundError:
                    pass
            except BlockingIOError:
                if time.monotonic() > end:
                    f.close()
                    raise SkipTest("another test run holds %s" % USER_LOCK)
                time.sleep(0.2)
            f.close()

    def clear_home(self):
        for name in os.listdir(self.home):
            p = os.path.join(self.home, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    def release(self):
        if self.created:
            self.remove_user()
            self.created = False
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None
        if self.lockf:
            os.unlink(USER_LOCK)
            self.lockf.close()
            self.lockf = None

    def remove_user(self):
        for _ in range(50):
            r = subprocess.run(["userdel", TEST_USER], capture_output=True)
            if r.returncode in (0, 6):  # removed / no such user
                break
            time.sleep(0.1)  # a vsftpd session process of the user is still exiting
        else:
            subprocess.run(["userdel", "-f", TEST_USER], capture_output=True)


def tempfile_dir(prefix):
    import tempfile
    return tempfile.mkdtemp(prefix=prefix)


USER = TestUser()


# ---- stand-in printers -------------------------------------------------------------

class Vsftpd:
    name = "vsftpd"

    def __init__(self):
        self.root = USER.ensure()
        USER.clear_home()
        d = new_dir("vsftpd")
        empty = os.path.join(d, "empty")
        os.mkdir(empty, 0o755)
        self.cert, self.key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=" + SERIAL,
                        "-days", "2", "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)
        self.port = free_port(PRINTER_HOST)
        lo, hi = port_block(20000, 25900, 50)
        self.conf = os.path.join(d, "vsftpd.conf")
        self.logfile = os.path.join(d, "vsftpd.log")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "listen=YES", "listen_address=" + PRINTER_HOST, "listen_port=%d" % self.port,
                "background=NO", "seccomp_sandbox=NO", "isolate=NO", "isolate_network=NO",
                "secure_chroot_dir=" + empty, "anonymous_enable=NO", "local_enable=YES",
                "write_enable=YES", "chroot_local_user=YES", "allow_writeable_chroot=YES",
                "ssl_enable=YES", "implicit_ssl=YES", "require_ssl_reuse=YES",
                "force_local_data_ssl=YES", "force_local_logins_ssl=YES",
                "rsa_cert_file=" + self.cert, "rsa_private_key_file=" + self.key,
                "pasv_enable=YES", "pasv_min_port=%d" % lo, "pasv_max_port=%d" % hi,
                # Like a printer that names an unroutable address in its 227.
                "pasv_address=0.0.0.0", "pam_service_name=vsftpd", "xferlog_enable=NO",
                "log_ftp_protocol=YES", "vsftpd_log_file=" + self.logfile,
                "max_per_ip=0", "max_clients=0", "data_connection_timeout=30",
                "idle_session_timeout=300", ""]))
        self.proc = Proc(["vsftpd", self.conf], "vsftpd")
        wait_until(lambda: self.proc.p.poll() is not None or established_listen(self.port),
                   what="vsftpd listening")
        assert self.proc.p.poll() is None, self.proc.log()

    def session_pids(self):
        """vsftpd's per-session processes (they call setsid: killpg misses them)."""
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == self.proc.pid:
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if self.conf.encode() in f.read():
                        pids.append(int(pid))
            except OSError:
                pass
        return pids

    def kill_upstream(self):
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def teardown(self):
        self.proc.kill()
        wait_until(lambda: not self.kill_upstream() and not self.session_pids(), timeout=10,
                   what="vsftpd session processes gone")


def established_listen(port):
    with open("/proc/net/tcp") as f:
        return any(l.split()[3] == "0A" and int(l.split()[1].rsplit(":", 1)[1], 16) == port
                   for l in list(f)[1:])


class Sim:
    name = "sim"

    def __init__(self):
        self.proc = start_sim(services=("ftp",), extra=("--bind", PRINTER_HOST))
        self.port = self.proc.port["ftp"]
        self.root = os.path.join(self.proc.ftp_root, "model")

    def kill_upstream(self):
        self.proc.send_signal(signal.SIGUSR1)

    def teardown(self):
        rc, _ = self.proc.stop()
        assert rc == 0, self.proc.tail()


BACKENDS = {"vsftpd": Vsftpd, "sim": Sim}


def remote_dir(printer):
    """Where tests put files on the printer: / on vsftpd (the chroot), /model on the sim."""
    return "/" if printer.name == "vsftpd" else "/model/"


def printer_test(fn):
    """Register fn once per stand-in printer: fn(printer)."""
    for name, cls in BACKENDS.items():
        def one(fn=fn, cls=cls):
            printer = cls()
            try:
                fn(printer)
            finally:
                printer.teardown()
        one.__name__ = "%s_%s" % (name, fn.__name__)
        test(one)
    return fn


# ---- the proxy ----------------------------------------------------------------------

def start_ftp_proxy(printer, sessions=2, nports=20, extra=()):
    lo, hi = port_block(26000, 32000, nports)
    p = start_proxy({"ftp": printer.port}, services=("ftp",), printer_host=PRINTER_HOST,
                    insecure=True, extra=["--ftp-data-ports", "%d-%d" % (lo, hi),
                                          "--ftp-max-sessions", str(sessions)] + list(extra))
    p.ftp = p.ports(["ftp"])["ftp"]
    p.data_ports = (lo, hi)
    return p


def stop_clean(proxy):
    rc, took = proxy.stop()
    log = proxy.log()
    assert rc == 0, (rc, proxy.tail())
    assert "Sanitizer" not in log and "runtime error" not in log, proxy.tail()
    assert CODE not in log, "the access code was logged"


def run_client(argv, name, timeout=120):
    p = Proc(argv, name)
    rc = p.wait(timeout=timeout)
    return rc, p.log()


def write_random(path, size):
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return data


def retr(f, path, rest=None):
    out = io.BytesIO()
    f.retrbinary("RETR " + path, out.write, rest=rest)
    return out.getvalue()


def baseline(proxy):
    """fd and thread counts of the idle proxy; a full session must return to them."""
    base = (proxy.fd_count(), proxy.thread_count())
    f = ftps_login(proxy.ftp)
    f.nlst()
    f.quit()
    back_to(proxy, base, "after a normal session")
    return base


def back_to(proxy, base, what):
    try:
        wait_until(lambda: (proxy.fd_count(), proxy.thread_count()) == base, timeout=20,
                   what="%s: proxy fds/threads back to %s" % (what, base))
    except AssertionError as e:
        fds = sorted(os.readlink("/proc/%d/fd/%s" % (proxy.pid, fd))
                     for fd in os.listdir("/proc/%d/fd" % proxy.pid))
        raise AssertionError("%s; now %s, fds %s; proxy log:\n%s" %
                             (e, (proxy.fd_count(), proxy.thread_count()), fds, proxy.tail(30)))


# ---- clients ------------------------------------------------------------------------

@printer_test
def curl_passive_upload_list_download_and_commands(printer):
    need("curl")
    proxy = start_ftp_proxy(printer)
    work = new_dir("curl")
    data = write_random(os.path.join(work, "print.3mf"), BIG)
    netrc = curl_netrc()
    url = "ftps://127.0.0.1:%d%s" % (proxy.ftp, remote_dir(printer))
    base = ["curl", "-sS", "-k", "--netrc-file", netrc, "--max-time", str(int(120 * SCALE))]
    rc, log = run_client(base + ["-T", os.path.join(work, "print.3mf"), url + "print.3mf"],
                         "curl-put")
    assert rc == 0, log
    with open(os.path.join(printer.root, "print.3mf"), "rb") as f:
        assert sha256(f.read()) == sha256(data)
    rc, log = run_client(base + [url], "curl-list")
    assert rc == 0 and "print.3mf" in log and str(BIG) in log, log
    got = os.path.join(work, "got.3mf")
    rc, log = run_client(base + ["-o", got, url + "print.3mf"], "curl-get")
    assert rc == 0, log
    with open(got, "rb") as f:
        assert sha256(f.read()) == sha256(data)
    # Quote commands run before curl changes directory: absolute paths.
    d = remote_dir(printer)
    rc, log = run_client(base + ["-Q", "RNFR %sprint.3mf" % d, "-Q", "RNTO %smoved.3mf" % d,
                                 "-Q", "MKD %snewdir" % d, url], "curl-cmds")
    assert rc == 0, log
    assert os.path.isdir(os.path.join(printer.root, "newdir"))
    assert os.path.exists(os.path.join(printer.root, "moved.3mf"))
    rc, log = run_client(base + ["-Q", "RMD %snewdir" % d, "-Q", "DELE %smoved.3mf" % d, url],
                         "curl-rm")
    assert rc == 0, log
    assert not os.path.exists(os.path.join(printer.root, "newdir"))
    assert not os.path.exists(os.path.join(printer.root, "moved.3mf"))
    stop_clean(proxy)


def curl_version():
    out = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    return tuple(int(x) for x in re.match(r"curl (\d+)\.(\d+)", out).groups())


@printer_test
def curl_active_upload_and_download(printer):
    need("curl")
    if curl_version() < (8, 0):
        # Seen here with vsftpd directly: curl accepts the server's data connection,
        # then waits for plain data instead of starting TLS ("ftp: active mode with
        # SSL, add the filter" in curl 8.0.0). lftp and ftplib cover active mode.
        raise SkipTest("curl %d.%d never starts TLS on active FTPS data connections "
                       "(fixed in curl 8.0.0)" % curl_version())
    proxy = start_ftp_proxy(printer)
    work = new_dir("curl")
    data = write_random(os.path.join(work, "act.bin"), BIG)
    netrc = curl_netrc()
    url = "ftps://127.0.0.1:%d%sact.bin" % (proxy.ftp, remote_dir(printer))
    base = ["curl", "-sS", "-k", "--netrc-file", netrc, "--ftp-port", "-",
            "--max-time", str(int(120 * SCALE))]
    rc, log = run_client(base + ["-T", os.path.join(work, "act.bin"), url], "curl-put")
    assert rc == 0, log
    with open(os.path.join(printer.root, "act.bin"), "rb") as f:
        assert sha256(f.read()) == sha256(data)
    got = os.path.join(work, "got.bin")
    rc, log = run_client(base + ["-o", got, url], "curl-get")
    assert rc == 0, log
    with open(got, "rb") as f:
        assert sha256(f.read()) == sha256(data)
    assert re.search(r"client: (PORT|EPRT) ", proxy.log()), "curl did not use active mode"
    stop_clean(proxy)


@printer_test
def lftp_and_ftplib_active_mode(printer):
    """PORT/EPRT from the client: the proxy connects out and stays passive upstream."""
    need("lftp")
    proxy = start_ftp_proxy(printer)
    work = new_dir("active")
    d = remote_dir(printer)
    data = write_random(os.path.join(work, "a.bin"), BIG)
    got = os.path.join(work, "back.bin")
    script = lftp_script(proxy.ftp, [
        "set ftp:passive-mode false",
        "cd %s" % d,
        "put %s -o a.bin" % os.path.join(work, "a.bin"),
        "ls",
        "get a.bin -o %s" % got,
        "bye",
    ])
    rc, log = run_client(["lftp", "-f", script], "lftp-active")
    assert rc == 0, log
    assert "a.bin" in log, log
    with open(got, "rb") as f:
        assert sha256(f.read()) == sha256(data)
    assert re.search(r"client: (PORT|EPRT) ", proxy.log()), "lftp did not use active mode"
    f = ftps_login(proxy.ftp)
    f.set_pasv(False)
    f.storbinary("STOR %sb.bin" % d, io.BytesIO(data))
    assert sha256(retr(f, d + "b.bin")) == sha256(data)
    f.quit()
    with open(os.path.join(printer.root, "b.bin"), "rb") as fh:
        assert sha256(fh.read()) == sha256(data)
    stop_clean(proxy)


@printer_test
def lftp_put_ls_get_mv_mkdir_rm(printer):
    need("lftp")
    proxy = start_ftp_proxy(printer)
    work = new_dir("lftp")
    data = write_random(os.path.join(work, "up.gcode"), BIG)
    got = os.path.join(work, "down.gcode")
    script = lftp_script(proxy.ftp, [
        "set ftp:passive-mode true",
        "cd %s" % remote_dir(printer),
        "put %s -o up.gcode" % os.path.join(work, "up.gcode"),
        "ls",
        "get up.gcode -o %s" % got,
        "mv up.gcode moved.gcode",
        "mkdir sub",
        "cls -1",
        "rmdir sub",
        "rm moved.gcode",
        "bye",
    ])
    rc, log = run_client(["lftp", "-f", script], "lftp")
    assert rc == 0, log
    with open(got, "rb") as f:
        assert sha256(f.read()) == sha256(data)
    assert "up.gcode" in log and "moved.gcode" in log and "sub" in log, log
    assert not os.path.exists(os.path.join(printer.root, "moved.gcode"))
    assert not os.path.exists(os.path.join(printer.root, "sub"))
    stop_clean(proxy)


@printer_test
def ftplib_session_reuse_transfers_and_commands(printer):
    proxy = start_ftp_proxy(printer)
    d = remote_dir(printer)
    data = os.urandom(BIG)
    f = ftps_login(proxy.ftp)
    f.storbinary("STOR %sreuse.bin" % d, io.BytesIO(data))
    lines = []
    f.retrlines("LIST %s" % d, lines.append)
    assert any("reuse.bin" in l and str(BIG) in l for l in lines), lines
    assert sha256(retr(f, d + "reuse.bin")) == sha256(data)
    # REST: resume a download in the middle.
    assert retr(f, d + "reuse.bin", rest=BIG - 1000) == data[-1000:]
    f.rename(d + "reuse.bin", d + "renamed.bin")
    f.mkd(d + "dir1")
    assert "dir1" in " ".join(f.nlst(d))
    f.rmd(d + "dir1")
    f.delete(d + "renamed.bin")
    assert not any("renamed.bin" in n for n in f.nlst(d))
    # Without PROT P no data connection is opened (the printer requires it).
    assert f.sendcmd("PBSZ 0").startswith("200")
    try:
        f.sendcmd("PROT C")
        raise AssertionError("PROT C accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("536"), e
    f.quit()
    stop_clean(proxy)


@printer_test
def upload_closed_without_close_notify_arrives_complete(printer):
    """Home Assistant's way: write the file, close the socket, never unwrap."""
    proxy = start_ftp_proxy(printer)
    d = remote_dir(printer)
    for i in range(3):
        data = os.urandom(BIG if i == 0 else 256 * 1024 + i)
        f = ftps_login(proxy.ftp)
        conn, _ = f.ntransfercmd("STOR %sha%d.3mf" % (d, i))
        conn.sendall(data)
        conn.close()  # no close_notify
        assert f.voidresp().startswith("226")
        f.quit()
        with open(os.path.join(printer.root, "ha%d.3mf" % i), "rb") as fh:
            assert sha256(fh.read()) == sha256(data), "upload %d truncated" % i
    stop_clean(proxy)


# ---- sessions and ports ---------------------------------------------------------------

@printer_test
def four_clients_share_two_printer_sessions(printer):
    proxy = start_ftp_proxy(printer, sessions=2)
    d = remote_dir(printer)
    sampler = SessionSampler(printer.port)
    errors, results = [], {}
    start = threading.Barrier(4)

    def client(i):
        try:
            data = os.urandom(4 * 1024 * 1024 + i)
            start.wait(timeout=30 * SCALE)
            f = ImplicitFTPS(timeout=90)
            f.connect("127.0.0.1", proxy.ftp)
            f.login("bblp", CODE)
            f.prot_p()
            f.storbinary("STOR %sc%d.bin" % (d, i), io.BytesIO(data))
            results[i] = retr(f, "%sc%d.bin" % (d, i)) == data
            f.quit()
        except Exception as e:  # reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120 * SCALE)
    peak = sampler.stop()
    assert not errors, errors
    assert results == {0: True, 1: True, 2: True, 3: True}, results
    assert sampler.seen >= 3, sampler.seen
    assert 1 <= peak <= 2, "the printer saw %d sessions at once: %s" % (peak, sampler.detail)
    # Two clients had to wait for a slot.
    assert len(re.findall(r"all 2 printer sessions in use", proxy.log())) >= 1, proxy.tail()
    stop_clean(proxy)


@printer_test
def thirty_transfers_through_ten_data_ports(printer):
    proxy = start_ftp_proxy(printer, nports=10)
    lo, hi = proxy.data_ports
    d = remote_dir(printer)
    f = ftps_login(proxy.ftp)
    for i in range(15):
        data = os.urandom(64 * 1024 + i)
        f.storbinary("STOR %sseq.bin" % d, io.BytesIO(data))
        assert retr(f, d + "seq.bin") == data, i
    # PASV replies name the proxy's address and a port from the range.
    for _ in range(3):
        resp = f.sendcmd("PASV")
        nums = [int(x) for x in re.search(r"\((\d+(?:,\d+){5})\)", resp).group(1).split(",")]
        assert nums[:4] == [127, 0, 0, 1], resp
        assert lo <= nums[4] * 256 + nums[5] <= hi, (resp, lo, hi)
    f.quit()
    # Separate sessions reuse the same ports too.
    for i in range(3):
        g = ftps_login(proxy.ftp)
        assert "seq.bin" in " ".join(g.nlst(d))
        g.quit()
    stop_clean(proxy)


@printer_test
def pasv_address_option_names_the_configured_address(printer):
    proxy = start_ftp_proxy(printer, extra=("--ftp-pasv-address", "127.0.0.9"))
    f = ftps_login(proxy.ftp)
    resp = f.sendcmd("PASV")
    assert "(127,0,0,9," in resp, resp
    resp = f.sendcmd("EPSV")
    assert re.search(r"\(\|\|\|\d+\|\)", resp), resp
    f.quit()
    stop_clean(proxy)


# ---- refusals -------------------------------------------------------------------------

@printer_test
def wrong_password_gets_530_and_the_printer_sees_nothing(printer):
    proxy = start_ftp_proxy(printer)
    sampler = SessionSampler(printer.port)
    f = ImplicitFTPS()
    f.connect("127.0.0.1", proxy.ftp)
    try:
        f.login("bblp", "87654321")
        raise AssertionError("wrong password accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("530"), e
    f.close()
    g = ImplicitFTPS()
    g.connect("127.0.0.1", proxy.ftp)
    try:
        g.login("someone", CODE)
        raise AssertionError("wrong user accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("530"), e
    g.close()
    proxy.wait_log(r"authentication failed", count=2)
    assert sampler.stop() == 0, "the printer saw a connection"
    assert "connected to printer" not in proxy.log()
    assert "87654321" not in proxy.log()
    stop_clean(proxy)


@printer_test
def port_to_another_address_and_overlong_lines_are_refused(printer):
    proxy = start_ftp_proxy(printer)
    f = ftps_login(proxy.ftp)
    for cmd, code in (("PORT 127,0,0,9,200,10", "500"), ("EPRT |1|127.0.0.9|51210|", "504"),
                      ("EPRT |1|10.1.2.3|51210|", "504"), ("PORT 1,2,3", "501")):
        try:
            f.sendcmd(cmd)
            raise AssertionError("%s accepted" % cmd)
        except ftplib.error_perm as e:
            assert str(e).startswith(code), (cmd, e)
    assert f.sendcmd("PORT 127,0,0,1,200,10").startswith("200")
    f.sock.sendall(b"NOOP " + b"x" * 5000 + b"\r\n")
    try:
        f.getresp()
        raise AssertionError("overlong command accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("500"), e
    assert f.sendcmd("NOOP").startswith("200")  # the session goes on
    f.quit()
    stop_clean(proxy)


# ---- failures mid-transfer ---------------------------------------------------------

SLOW_UPLOADER = r"""
import os, socket, ssl, sys
sys.path.insert(0, sys.argv[1])
from ftps_util import ftps_login
f = ftps_login(int(sys.argv[2]))
conn, _ = f.ntransfercmd("STOR " + sys.argv[3])
print("uploading", flush=True)
while True:
    conn.sendall(os.urandom(64 * 1024))
"""


@printer_test
def client_killed_mid_upload_leaks_nothing(printer):
    proxy = start_ftp_proxy(printer)
    base = baseline(proxy)
    here = os.path.dirname(os.path.abspath(__file__))
    target = remote_dir(printer) + "killed.bin"
    up = Proc([sys.executable, "-c", SLOW_UPLOADER, here, str(proxy.ftp), target], "uploader")
    up.wait_log("uploading", timeout=20)
    path = os.path.join(printer.root, "killed.bin")
    wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 1024 * 1024,
               what="upload under way")
    up.kill()
    proxy.wait_log(r"upload: \w", timeout=30)
    back_to(proxy, base, "after the client was killed")
    wait_until(lambda: established(printer.port) == 0, what="printer session closed")
    # The proxy still serves.
    f = ftps_login(proxy.ftp)
    f.nlst(remote_dir(printer))
    f.quit()
    stop_clean(proxy)


@printer_test
def printer_killed_mid_download_gives_an_error_and_leaks_nothing(printer):
    proxy = start_ftp_proxy(printer)
    base = baseline(proxy)
    size = 200 * 1024 * 1024
    with open(os.path.join(printer.root, "big.mp4"), "wb") as fh:
        fh.truncate(size)
    f = ftps_login(proxy.ftp)
    conn, _ = f.ntransfercmd("RETR %sbig.mp4" % remote_dir(printer))
    got = len(conn.recv(65536))
    printer.kill_upstream()
    failed = False
    try:
        while True:
            chunk = conn.recv(1024 * 1024)
            if not chunk:
                break
            got += len(chunk)
        conn.close()
        f.voidresp()
    except (OSError, EOFError, ssl.SSLError, ftplib.Error) as e:
        failed = True
        assert not isinstance(e, ftplib.Error) or str(e)[:3] in ("426", "451", "421"), e
    assert failed, "the client saw no error"
    assert got < size, got
    f.close()
    back_to(proxy, base, "after the printer dropped")
    stop_clean(proxy)


@printer_test
def abor_stops_a_download(printer):
    proxy = start_ftp_proxy(printer)
    with open(os.path.join(printer.root, "abor.bin"), "wb") as fh:
        fh.truncate(200 * 1024 * 1024)
    f = ftps_login(proxy.ftp)
    conn, _ = f.ntransfercmd("RETR %sabor.bin" % remote_dir(printer))
    conn.recv(4096)
    resp = f.abort()
    assert resp[:3] in ("426", "225", "226"), resp
    conn.close()
    if resp.startswith("426"):
        assert f.getresp()[:3] in ("225", "226")
    assert f.sendcmd("NOOP").startswith("200")
    assert "abor.bin" in " ".join(f.nlst(remote_dir(printer)))
    f.quit()
    stop_clean(proxy)


@printer_test
def stopping_the_proxy_mid_transfer_is_quick(printer):
    proxy = start_ftp_proxy(printer)
    with open(os.path.join(printer.root, "stop.bin"), "wb") as fh:
        fh.truncate(200 * 1024 * 1024)
    f = ftps_login(proxy.ftp)
    conn, _ = f.ntransfercmd("RETR %sstop.bin" % remote_dir(printer))
    conn.recv(4096)
    rc, _ = proxy.stop()  # fails unless the proxy exits within its deadline
    assert rc == 0, proxy.tail()
    conn.close()
    f.close()


if __name__ == "__main__":
    run()
