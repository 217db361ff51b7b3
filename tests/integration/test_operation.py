# SPDX-License-Identifier: MIT
"""Issue 9: running as a service: --user privilege drop, --health, SIGHUP reload."""
import hashlib
import os
import pwd
import signal
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def proc_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("Uid", "Gid", "CapEff", "CapPrm"):
                ids[key] = val.split()
    return ids


def peer_fingerprint(port):
    s = h.tls_connect(port)
    der = s.getpeercert(binary_form=True)
    s.close()
    return hashlib.sha256(der).hexdigest()


@h.test
def user_drop_keeps_serving_with_private_state():
    if os.geteuid() != 0:
        raise h.SkipTest("needs root to start as root and drop to nobody")
    nobody = pwd.getpwnam("nobody")
    state = h.new_dir("state")
    os.chmod(h.tmpdir(), 0o755)  # nobody must reach the state dir inside it
    p = h.start_proxy({"mqtt": 1}, services=("mqtt",), state_dir=state,
                      extra=["--user", "nobody"], insecure=True)
    port = p.ports(["mqtt"])["mqtt"]
    ids = proc_ids(p.pid)
    assert ids["Uid"] == [str(nobody.pw_uid)] * 4, ids
    assert ids["Gid"] == [str(nobody.pw_gid)] * 4, ids
    # Only CAP_NET_BIND_SERVICE (bit 10) is left.
    assert int(ids["CapEff"][0], 16) == 1 << 10, ids
    s = h.tls_connect(port, cafile=h.ca_path(state))
    assert s.getpeercert()["subject"][-1][0][1] == h.SERIAL
    s.close()
    for name in os.listdir(state):
        st = os.stat(os.path.join(state, name))
        assert st.st_uid == nobody.pw_uid, name
        if name.endswith(".key"):
            assert stat.S_IMODE(st.st_mode) == 0o600, name
    rc, _ = p.stop()
    assert rc == 0


@h.test
def user_that_does_not_exist_is_a_config_error():
    p = h.start_proxy({"mqtt": 1}, services=("mqtt",), extra=["-n", "--user", "no-such-user-pp"])
    assert p.wait() == 2
    assert "no user named 'no-such-user-pp'" in p.log()


@h.test
def health_reports_listening_services():
    p = h.start_proxy({"mqtt": 1, "chamber": 1}, services=("mqtt", "camera"), insecure=True)
    ports = p.ports(["mqtt", "chamber"])
    env = {"PORTS": "mqtt=%d,chamber=%d" % (ports["mqtt"], ports["chamber"]),
           "SERVICES": "mqtt,camera", "CAMERA": "chamber", "BIND_ADDRESS": "127.0.0.1"}
    probe = h.Proc([h.PROXY, "--health"], "health", env=env)
    assert probe.wait() == 0, probe.log()
    assert "mqtt (port %d): ok" % ports["mqtt"] in probe.log()
    rc, _ = p.stop()
    assert rc == 0
    probe = h.Proc([h.PROXY, "--health"], "health2", env=env)
    assert probe.wait() == 1, probe.log()
    assert "no answer" in probe.log()


def make_cert(d, cn):
    key = os.path.join(d, cn + ".key")
    crt = os.path.join(d, cn + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days",
                    "2", "-subj", "/CN=" + cn], check=True, capture_output=True)
    return crt, key


@h.test
def sighup_rereads_the_certificate_files():
    h.need("openssl")
    d = h.new_dir("certs")
    crt, key = make_cert(d, "first")
    p = h.start_proxy({"mqtt": 1}, services=("mqtt",), insecure=True,
                      extra=["--cert", crt, "--key", key])
    port = p.ports(["mqtt"])["mqtt"]
    before = peer_fingerprint(port)
    crt2, key2 = make_cert(d, "second")
    os.replace(crt2, crt)
    os.replace(key2, key)
    p.send_signal(signal.SIGHUP)
    p.wait_log(r"SIGHUP: reloading")
    after = h.wait_until(lambda: (lambda fp: fp if fp != before else None)(peer_fingerprint(port)),
                         timeout=10, what="the new certificate to be served")
    assert after != before
    rc, _ = p.stop()
    assert rc == 0


@h.test
def syslog_option_sends_nothing_to_stderr():
    h.need("ss")
    p = h.start_proxy({"mqtt": 1}, services=("mqtt",), insecure=True, extra=["--syslog"])

    # The listening line goes to syslog, so find the bound port through ss instead.
    def listening():
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        return any("pid=%d," % p.pid in line for line in out.splitlines())

    h.wait_until(listening, timeout=10, what="the proxy to listen")
    rc, _ = p.stop()
    assert rc == 0
    assert "listening on" not in p.log() and "starting" not in p.log(), p.log()


h.run()
