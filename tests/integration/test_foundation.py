# SPDX-License-Identifier: MIT
"""Issue 3 (foundation): the proxy's TLS identity seen by real clients, printer trust
(pin on first use, a changed certificate refused, --printer-ca), shutdown with clients
connected, --max-clients, -n, --print-ca, --help, and no access code in any log.

The printer is pandaproxy-sim (its own CA and a certificate with CN = serial in its state
dir). Clients of the chamber camera speak the real protocol (auth packet, then frames),
so these tests hold whether a service relays bytes or implements its protocol.
"""
import glob
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# A distinctive code: every log of this file is searched for it at the end.
CODE = "Qz7xKp2W"
OTHER_SERIAL = "01P00A391800999"
ENV_VARS = [
    "PRINTER_IP", "ACCESS_CODE", "ACCESS_CODE_FILE", "SERIAL_NUMBER", "BIND_ADDRESS",
    "SERVICES", "ENABLE_ALL", "CAMERA", "PORTS", "PRINTER_PORTS", "STATE_DIR", "TLS_CERT",
    "TLS_KEY", "PRINTER_CA", "INSECURE_PRINTER", "MAX_CLIENTS", "CAMERA_LINGER",
    "CAMERA_REDETECT", "FTP_DATA_PORTS", "FTP_PASV_ADDRESS", "FTP_MAX_SESSIONS", "RUN_AS",
    "SYSLOG", "VERBOSE",
]


# ---- helpers -------------------------------------------------------------------

def run_cmd(argv, name, env=None, timeout=30, stdin=None):
    """Run a short command; its output is also kept in a log file (searched at the end).
    env adds variables; a value None removes one."""
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    p = subprocess.run(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                       timeout=timeout * h.SCALE)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    with open(os.path.join(h.tmpdir(), "cmd-%s-%d.log" % (name, time.monotonic_ns())), "w") as f:
        f.write("$ %s\n%s\n%s" % (" ".join(argv), out, err))
    return p.returncode, out, err


def proxy_cmd(args, name, env=None, stdin=None):
    full_env = {"ACCESS_CODE": CODE}
    full_env.update(env or {})
    return run_cmd([h.PROXY] + list(args), name, env=full_env, stdin=stdin)


def sim(serial=h.SERIAL, name="sim"):
    """The stand-in printer: only its chamber camera, several connections allowed."""
    return h.start_sim(services=("chamber",), serial=serial, code=CODE, name=name,
                       extra=["--limit", "chamber=16", "--fps", "5"])


def sim_leaf_pem(s, serial=h.SERIAL):
    """The simulator's certificate (the first PEM block of its certificate file)."""
    with open(os.path.join(s.state_dir, serial + ".crt")) as f:
        text = f.read()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return text[:end] + "\n"


def sim_ca(s):
    return os.path.join(s.state_dir, "pandaproxy-ca.crt")


def camera_proxy(printer, extra=(), state_dir=None, name="proxy", serial=h.SERIAL):
    p = h.start_proxy({"chamber": printer.port["chamber"]}, services=("camera",),
                      extra=list(extra), state_dir=state_dir, code=CODE, name=name,
                      serial=serial)
    p.port = p.ports(["chamber"])
    return p


def viewer(proxy):
    """A chamber client that sent its auth packet (the proxy's certificate not checked)."""
    s = h.tls_connect(proxy.port["chamber"])
    s.sendall(h.chamber_auth(code=CODE))
    return s


def expect_frame(sock):
    hdr, jpeg = h.chamber_read_frame(sock)
    assert len(hdr) == 16 and jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9", hdr


def expect_no_frame(sock, wait=1.0):
    """After the proxy refused the printer, the client must not get a frame."""
    sock.settimeout(wait * h.SCALE)
    try:
        data = sock.recv(16)
    except (socket.timeout, ConnectionError, ssl.SSLError):
        return
    assert data == b"", "the client got %r from a refused printer" % data[:16]


def cert_sha256(pem):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def peer_sha256(port, cafile=None):
    s = h.tls_connect(port, cafile=cafile)
    der = s.getpeercert(binary_form=True)
    s.close()
    return hashlib.sha256(der).hexdigest()


def pin_path(state_dir, serial=h.SERIAL):
    return os.path.join(state_dir, serial + ".printer-pin")


def read(path):
    with open(path) as f:
        return f.read()


def openssl_keypair(d, name, cn="test"):
    """A self-signed certificate and its key, made with the openssl command."""
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    rc, out, err = run_cmd(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                            "-subj", "/CN=" + cn, "-days", "2"], "openssl-req")
    assert rc == 0, out + err
    return crt, key


def s_client(port, cafile, extra=()):
    """openssl s_client: the handshake, verified against cafile; (rc, output)."""
    rc, out, err = run_cmd(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                            "-servername", h.SERIAL, "-CAfile", cafile,
                            "-verify_return_error"] + list(extra), "s_client")
    return rc, out + err


# ---- the proxy's identity ------------------------------------------------------

@h.test
def every_port_verifies_against_the_proxy_ca():
    h.need("openssl")
    p = h.start_proxy({"mqtt": 1, "ftp": 1, "chamber": 1}, code=CODE)
    ports = p.ports(["mqtt", "ftp", "chamber"])
    assert "rtsp" not in ports, "a service that is not enabled was opened"
    ca = h.ca_path(p.state_dir)
    p.wait_log(r"trust the CA %s" % re.escape(ca))
    for name in ("mqtt", "ftp", "chamber"):
        rc, out = s_client(ports[name], ca, ["-verify_hostname", h.SERIAL,
                                             "-verify_ip", "127.0.0.1"])
        assert rc == 0, "%s: s_client failed:\n%s" % (name, out)
        assert "Verify return code: 0 (ok)" in out, out
        assert re.search(r"subject=.*CN ?= ?%s\b" % h.SERIAL, out), out
        assert re.search(r"(New|Reused), TLSv1\.[23],", out), out
    # The same client refuses a certificate from another CA: the check above can fail.
    other = h.new_dir("otherca")
    other_crt, _ = openssl_keypair(other, "ca", "another CA")
    rc, out = s_client(ports["mqtt"], other_crt)
    assert rc != 0 and "verify" in out.lower(), out
    # TLS 1.1 and older are refused.
    rc, out = s_client(ports["mqtt"], ca, ["-tls1_1"])
    assert rc != 0, out
    # The server picks the cipher: AES-128-GCM although s_client lists AES-256 first,
    # ChaCha20 for a client that puts it first (one without AES instructions).
    for extra, want in ((["-tls1_3"], "TLS_AES_128_GCM_SHA256"),
                        (["-tls1_3", "-ciphersuites",
                          "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"],
                         "TLS_CHACHA20_POLY1305_SHA256"),
                        (["-tls1_2"], "ECDHE-ECDSA-AES128-GCM-SHA256")):
        rc, out = s_client(ports["chamber"], ca, extra)
        assert rc == 0, out
        m = re.search(r"Cipher is (\S+)", out)
        assert m and m.group(1) == want, "%s: want %s, got:\n%s" % (extra, want, out)
    assert p.stop()[0] == 0


@h.test
def identity_survives_a_restart():
    state = h.new_dir("state")
    p = h.start_proxy({"mqtt": 1}, services=("mqtt",), state_dir=state, code=CODE)
    port = p.ports(["mqtt"])["mqtt"]
    first = peer_sha256(port, cafile=h.ca_path(state))
    ca_pem = read(h.ca_path(state))
    for key in glob.glob(os.path.join(state, "*.key")):
        assert os.stat(key).st_mode & 0o077 == 0, "%s is readable by others" % key
    assert p.stop()[0] == 0

    p = h.start_proxy({"mqtt": 1}, services=("mqtt",), state_dir=state, code=CODE,
                      name="proxy-again")
    port = p.ports(["mqtt"])["mqtt"]
    assert peer_sha256(port, cafile=h.ca_path(state)) == first
    assert read(h.ca_path(state)) == ca_pem
    assert "generated" not in p.log(), p.tail()
    assert p.stop()[0] == 0

    # Another state directory is another identity.
    p = h.start_proxy({"mqtt": 1}, services=("mqtt",), code=CODE, name="proxy-other")
    assert peer_sha256(p.ports(["mqtt"])["mqtt"]) != first
    assert p.stop()[0] == 0


# ---- trust in the printer --------------------------------------------------------

@h.test
def printer_pinned_on_first_use_and_a_changed_certificate_refused():
    printer = sim()
    state = h.new_dir("state")
    p = camera_proxy(printer, state_dir=state)
    v = viewer(p)
    expect_frame(v)
    v.close()
    pin = pin_path(state)
    h.wait_until(lambda: os.path.exists(pin), what="the printer pin file")
    assert read(pin).strip() == "sha256:" + cert_sha256(sim_leaf_pem(printer)), read(pin)
    assert os.stat(pin).st_mode & 0o777 == 0o600
    p.wait_log(r"pinned sha256:")
    assert p.stop()[0] == 0
    printer.stop()

    # Same serial, another certificate (a new simulator state): refused after a restart.
    impostor = sim(name="impostor")
    p = camera_proxy(impostor, state_dir=state, name="proxy-after-change")
    v = viewer(p)
    m = p.wait_log(r"ERROR.*printer certificate changed.*")
    assert pin in m.group(0), m.group(0)
    assert "delete" in m.group(0), m.group(0)
    expect_no_frame(v)
    v.close()
    # The impostor never got an auth packet (no access code sent to it): no frame sent.
    assert h.sim_status(impostor)["frames"] == 0
    assert read(pin).strip() == "sha256:" + cert_sha256(sim_leaf_pem(printer))
    assert p.stop()[0] == 0


@h.test
def printer_ca_accepts_the_chain_and_checks_the_serial():
    printer = sim()
    state = h.new_dir("state")
    p = camera_proxy(printer, state_dir=state, extra=["--printer-ca", sim_ca(printer)])
    v = viewer(p)
    expect_frame(v)
    v.close()
    assert not os.path.exists(pin_path(state)), "--printer-ca must not pin"
    assert p.stop()[0] == 0

    # A printer whose certificate (same CA setup) names another serial.
    wrong = sim(serial=OTHER_SERIAL, name="wrong-serial")
    p = camera_proxy(wrong, extra=["--printer-ca", sim_ca(wrong)], name="proxy-wrong-cn")
    v = viewer(p)
    m = p.wait_log(r"ERROR.*printer certificate is for CN=(\S+), not the serial (\S+):")
    assert m.group(1) == OTHER_SERIAL and m.group(2) == h.SERIAL, m.group(0)
    expect_no_frame(v)
    v.close()
    assert h.sim_status(wrong)["frames"] == 0
    assert p.stop()[0] == 0

    # The right serial, signed by a CA that is not the one given.
    p = camera_proxy(printer, extra=["--printer-ca", sim_ca(wrong)], name="proxy-wrong-ca")
    v = viewer(p)
    p.wait_log(r"ERROR.*not signed by --printer-ca")
    expect_no_frame(v)
    v.close()
    assert p.stop()[0] == 0


# ---- the runtime -------------------------------------------------------------------

@h.test
def sigterm_with_ten_clients_exits_cleanly():
    printer = sim()
    p = h.start_proxy({"chamber": printer.port["chamber"], "mqtt": 1, "ftp": 1},
                      insecure=True, code=CODE)
    ports = p.ports(["mqtt", "ftp", "chamber"])
    p.port = ports
    socks = []
    # Five viewers receiving frames and five sockets that never start TLS.
    for _ in range(5):
        v = viewer(p)
        expect_frame(v)
        socks.append(v)
    for name in ("mqtt", "ftp", "chamber", "mqtt", "ftp"):
        socks.append(socket.create_connection(("127.0.0.1", ports[name]),
                                              timeout=10 * h.SCALE))
    p.wait_log(r"connection from", count=10)
    assert not os.path.exists(pin_path(p.state_dir)), "--insecure-printer must not pin"
    rc, secs = p.stop(signal.SIGTERM, timeout=10)
    print("    shutdown with 10 clients connected took %.3f s (target 1 s)" % secs)
    assert rc == 0, p.tail()
    p.wait_log(r"stopped in \d+ ms")
    for s in socks:
        s.close()


@h.test
def max_clients_refuses_the_third():
    printer = sim()
    p = camera_proxy(printer, extra=["--max-clients", "2"])
    held = [viewer(p), viewer(p)]
    for v in held:
        expect_frame(v)
    third = socket.create_connection(("127.0.0.1", p.port["chamber"]), timeout=10 * h.SCALE)
    p.wait_log(r"refusing 127\.0\.0\.1:\d+: .*--max-clients 2")
    try:
        data = third.recv(1)
    except ConnectionError:
        data = b""
    assert data == b"", data
    third.close()
    # The two still work, and a place frees when one leaves.
    for v in held:
        expect_frame(v)
    held.pop().close()
    p.wait_log(r"closed 127\.0\.0\.1")
    again = viewer(p)
    expect_frame(again)
    again.close()
    held[0].close()
    assert p.stop()[0] == 0


# ---- one-shot actions --------------------------------------------------------------

def check_config(args, name, env=None):
    return proxy_cmd(["-n", "-p", "127.0.0.1", "-s", h.SERIAL] + list(args), name, env=env)


@h.test
def check_config_catches_each_kind_of_bad_configuration():
    h.need("openssl")
    d = h.new_dir("files")
    state = os.path.join(d, "state-not-created-yet")
    good_crt, good_key = openssl_keypair(d, "good", h.SERIAL)
    _, other_key = openssl_keypair(d, "other")
    garbage = os.path.join(d, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("this is not a certificate\n")
    code_file = os.path.join(d, "code")
    with open(code_file, "w") as f:
        f.write(CODE + "\n")

    rc, out, err = check_config(["--state-dir", state], "n-good")
    assert rc == 0, err
    assert "OK" in out, out
    assert not os.path.exists(state), "-n must not create anything"
    rc, out, err = check_config(["--state-dir", state, "--cert", good_crt, "--key", good_key,
                                 "--printer-ca", good_crt, "--access-code-file", code_file],
                                "n-good-files", env={"ACCESS_CODE": None})
    assert rc == 0, err

    bad = [
        (["--port", "mqtt=70000"], {}, r"--port"),
        (["--services", "printer"], {}, r"--services"),
        ([], {"PORTS": "mqtt=x"}, r"PORTS"),
        (["--access-code-file", os.path.join(d, "missing")], {"ACCESS_CODE": None},
         r"--access-code-file.*missing"),
        (["--access-code-file", d], {"ACCESS_CODE": None}, r"--access-code-file"),
        (["--cert", os.path.join(d, "missing.crt"), "--key", good_key], {}, r"missing\.crt"),
        (["--cert", garbage, "--key", good_key], {}, r"garbage\.pem"),
        (["--cert", good_crt, "--key", other_key], {}, r"does not match"),
        (["--printer-ca", garbage], {}, r"--printer-ca"),
        (["--printer-ca", os.path.join(d, "missing-ca.pem")], {}, r"--printer-ca"),
        (["--user", "no-such-user-pp"], {}, r"--user.*no-such-user-pp"),
    ]
    for args, env, want in bad:
        rc, out, err = check_config(["--state-dir", state] + args, "n-bad", env=env)
        assert rc == 2, "%s %s: exit %d\n%s%s" % (args, env, rc, out, err)
        assert re.search(want, err), "%s: %r not in %r" % (args, want, err)
        assert "OK" not in out, out
    # A required option missing.
    rc, out, err = proxy_cmd(["-n", "-p", "127.0.0.1"], "n-missing")
    assert rc == 2 and "--serial-number" in err, err


@h.test
def print_ca_prints_the_ca_file_and_help_lists_every_variable():
    state = h.new_dir("state")
    rc, out, err = proxy_cmd(["--print-ca", "--state-dir", state], "print-ca")
    assert rc == 0, err
    assert out.startswith("-----BEGIN CERTIFICATE-----"), out
    assert out == read(h.ca_path(state))
    # The daemon then serves a certificate that this very CA verifies.
    p = h.start_proxy({"mqtt": 1}, services=("mqtt",), state_dir=state, code=CODE)
    s = h.tls_connect(p.ports(["mqtt"])["mqtt"], cafile=h.ca_path(state))
    s.close()
    assert p.stop()[0] == 0
    rc, again, _ = proxy_cmd(["--print-ca", "--state-dir", state], "print-ca-again")
    assert rc == 0 and again == out

    rc, out, err = run_cmd([h.PROXY, "--help"], "help")
    assert rc == 0, err
    missing = [v for v in ENV_VARS if not re.search(r"\b%s\b" % v, out)]
    assert not missing, "--help does not mention %s" % missing
    rc, out, _ = run_cmd([h.PROXY, "--version"], "version")
    assert rc == 0 and re.match(r"pandaproxy \d", out), out


# ---- secrets ---------------------------------------------------------------------------

def mqtt_session(port, password, want_report):
    """A paho-mqtt client: connect (TLS, user bblp), optionally ask for and await a full
    status report. Returns the CONNACK code."""
    import paho.mqtt.client as mqtt
    got = {"rc": None, "reports": 0}
    c = mqtt.Client(client_id="foundation", clean_session=True, protocol=mqtt.MQTTv311)
    c.username_pw_set("bblp", password)
    c.tls_set_context(h.tls_client_ctx())
    report = "device/%s/report" % h.SERIAL

    def on_connect(client, userdata, flags, rc):
        got["rc"] = rc
        if rc == 0 and want_report:
            client.subscribe(report)

    def on_subscribe(client, userdata, mid, qos):
        client.publish("device/%s/request" % h.SERIAL,
                       '{"pushing":{"sequence_id":"0","command":"pushall"}}')

    def on_message(client, userdata, msg):
        got["reports"] += 1

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    try:
        h.wait_until(lambda: got["rc"] is not None, 10, "CONNACK")
        if got["rc"] == 0 and want_report:
            h.wait_until(lambda: got["reports"] > 0, 10, "a report through the proxy")
    finally:
        c.disconnect()
        c.loop_stop()
    return got["rc"]


@h.test
def no_log_contains_the_access_code():
    """Runs last: every log this file produced (proxies, simulators, commands)."""
    # One more run with debug logging, real clients, and failed logins on two services.
    printer = h.start_sim(services=("mqtt", "chamber"), code=CODE, name="sim-all",
                          extra=["--limit", "chamber=4"])
    p = h.start_proxy({"chamber": printer.port["chamber"], "mqtt": printer.port["mqtt"],
                       "ftp": 1}, code=CODE, extra=["--max-clients", "3"])
    p.port = p.ports(["mqtt", "ftp", "chamber"])
    v = viewer(p)
    expect_frame(v)
    v.close()
    bad = h.tls_connect(p.port["chamber"])
    bad.sendall(h.chamber_auth(code="Wrong123"))
    expect_no_frame(bad)
    bad.close()
    try:
        import paho.mqtt.client  # noqa: F401
        have_paho = True
    except ImportError:
        have_paho = False
    if have_paho:
        assert mqtt_session(p.port["mqtt"], CODE, want_report=True) == 0
        assert mqtt_session(p.port["mqtt"], "Wrong123", want_report=False) != 0
    assert p.stop()[0] == 0
    printer.stop()
    logs = glob.glob(os.path.join(h.tmpdir(), "**", "*.log"), recursive=True)
    assert len(logs) >= 2, logs
    for path in logs:
        with open(path, "rb") as f:
            data = f.read()
        assert CODE.encode() not in data, "%s contains the access code" % path


h.run()
