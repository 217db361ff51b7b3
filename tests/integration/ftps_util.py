# SPDX-License-Identifier: MIT
"""Implicit-FTPS client helpers for the integration tests: a python ftplib client that
speaks TLS from the first byte and resumes the control connection's TLS session on
data connections (as a BambuLab printer demands), plus curl/lftp config files that keep
the access code out of argv."""
import ftplib
import os
import socket

from harness import CODE, SCALE, new_dir, tls_client_ctx


class ImplicitFTPS(ftplib.FTP_TLS):
    """ftplib over implicit TLS. reuse=False makes data connections start a new TLS
    session, which a printer refuses with 522."""

    def __init__(self, reuse=True, timeout=10):
        super().__init__(context=tls_client_ctx(), timeout=timeout * SCALE)
        self.reuse = reuse

    def connect(self, host="127.0.0.1", port=990, timeout=None, source_address=None):
        self.host, self.port = host, port
        if timeout is not None:
            self.timeout = timeout
        raw = socket.create_connection((host, port), self.timeout)
        try:
            self.sock = self.context.wrap_socket(raw, server_hostname=host)
        except Exception:
            raw.close()
            raise
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = self.sock.session if self.reuse else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


def ftps_login(port, reuse=True, code=CODE, prot_p=True):
    """A logged-in implicit-FTPS session on 127.0.0.1:port."""
    f = ImplicitFTPS(reuse=reuse)
    f.connect("127.0.0.1", port)
    try:
        f.login("bblp", code)
        if prot_p:
            f.prot_p()
    except Exception:
        f.close()
        raise
    return f


def curl_netrc(code=CODE, host="127.0.0.1"):
    """A netrc file for curl --netrc-file: the code never sits in curl's argv."""
    path = os.path.join(new_dir("netrc"), "netrc")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("machine %s login bblp password %s\n" % (host, code))
    return path


def lftp_script(port, commands, code=CODE, host="127.0.0.1"):
    """An lftp script file (lftp -f) that logs in and runs commands; the code stays
    out of argv. Retries are capped so a refused login fails at once."""
    path = os.path.join(new_dir("lftp"), "script")
    lines = [
        "set ftp:ssl-force true",
        "set ssl:verify-certificate no",
        "set net:max-retries 1",
        "set net:reconnect-interval-base 1",
        "set net:timeout %d" % int(10 * SCALE),
        "set cmd:fail-exit true",
        "open -u bblp,%s ftps://%s:%d" % (code, host, port),
    ] + list(commands)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
