"""Throwaway certificates and TLS peers for the wss:// tests.

Pki(dir) runs the openssl command at test time to make, in a temporary
directory (nothing secret is committed):
  ca          a test CA (ca.pem / ca.key)
  server      localhost, SAN DNS:localhost + IP:127.0.0.1, signed by ca
  renewed     the same names, another serial and CN (for the SIGHUP reload)
  expired     the same names, valid only in 2020
  wronghost   signed by ca, but for wrong.example only
  selfsigned  localhost + 127.0.0.1, signed by itself
  client      a client certificate (clientAuth) signed by ca
  otherclient a client certificate from another CA (other_ca)
Each entry is a (cert, key) pair of paths; pki.ca is the CA file.

start_tls_broker() starts ringcast with a plain and a TLS listener and waits
for both.  `python3 tlsutil.py echo CERT KEY` is a python3-websockets wss
echo server (prints "listening on port N" on stderr); `python3 tlsutil.py
pki DIR` makes the files and prints their paths as JSON (for Node tests).
"""
import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rctest import BUILD, Fail, Proc, check, free_port, wait_until  # noqa: E402

EXT_SERVER = ("basicConstraints=critical,CA:FALSE\n"
              "keyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=serverAuth\n")
EXT_CLIENT = ("basicConstraints=critical,CA:FALSE\n"
              "keyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=clientAuth\n")
LOCAL_SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1\n"


def openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *args], capture_output=True, timeout=30, cwd=cwd)
    if r.returncode != 0:
        raise Fail(f"openssl {' '.join(args)}: {r.stderr.decode(errors='replace')[-800:]}")
    return r.stdout.decode(errors="replace")


class Pki:
    def __init__(self, d):
        self.dir = d
        self.ca = self._ca("ca", "ringcast test CA")
        self.other_ca = self._ca("other_ca", "some other CA")
        self.server = self.issue("server", "localhost", LOCAL_SAN + EXT_SERVER, 0x1001)
        self.renewed = self.issue("renewed", "localhost renewed", LOCAL_SAN + EXT_SERVER,
                                  0x1002)
        self.wronghost = self.issue("wronghost", "wrong.example",
                                    "subjectAltName=DNS:wrong.example\n" + EXT_SERVER, 0x1003)
        self.client = self.issue("client", "test client", EXT_CLIENT, 0x1004)
        self.otherclient = self.issue("otherclient", "stranger", EXT_CLIENT, 0x1005,
                                      ca="other_ca")
        self.expired = self._expired()
        self.selfsigned = self._selfsigned()

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", self.path(name + ".key"))
        return self.path(name + ".key")

    def _ca(self, name, cn):
        key = self._key(name)
        openssl("req", "-x509", "-new", "-key", key, "-subj", f"/CN={cn}", "-days", "2",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-out", self.path(name + ".pem"))
        return self.path(name + ".pem")

    def _csr(self, name, cn):
        key = self._key(name)
        openssl("req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", self.path(name + ".csr"))
        return key

    def issue(self, name, cn, ext, serial, ca="ca"):
        key = self._csr(name, cn)
        with open(self.path(name + ".ext"), "w") as f:
            f.write(ext)
        openssl("x509", "-req", "-in", self.path(name + ".csr"), "-CA", self.path(ca + ".pem"),
                "-CAkey", self.path(ca + ".key"), "-set_serial", str(serial), "-days", "2",
                "-sha256", "-extfile", self.path(name + ".ext"), "-out", self.path(name + ".pem"))
        return self.path(name + ".pem"), key

    def _expired(self):
        """openssl 3.0's x509 cannot back-date, so this one goes through
        `openssl ca`, which takes explicit start and end dates."""
        key = self._csr("expired", "localhost expired")
        db = self.path("cadb")
        os.makedirs(db, exist_ok=True)
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w") as f:
            f.write("1006\n")
        with open(self.path("expired.ext"), "w") as f:
            f.write(LOCAL_SAN + EXT_SERVER)
        with open(self.path("ca.cnf"), "w") as f:
            f.write(f"[ca]\ndefault_ca = test\n[test]\ndatabase = {db}/index.txt\n"
                    f"new_certs_dir = {db}\nserial = {db}/serial\n"
                    f"certificate = {self.ca}\nprivate_key = {self.path('ca.key')}\n"
                    "default_md = sha256\npolicy = any\nunique_subject = no\n"
                    "[any]\ncommonName = supplied\n")
        openssl("ca", "-batch", "-config", self.path("ca.cnf"), "-in", self.path("expired.csr"),
                "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-notext",
                "-extfile", self.path("expired.ext"), "-out", self.path("expired.pem"))
        return self.path("expired.pem"), key

    def _selfsigned(self):
        key = self._key("selfsigned")
        openssl("req", "-x509", "-new", "-key", key, "-subj", "/CN=localhost", "-days", "2",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-out", self.path("selfsigned.pem"))
        return self.path("selfsigned.pem"), key

    def client_ctx(self, cert=None):
        """An ssl context trusting the test CA (and presenting cert, a pair)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        if cert:
            ctx.load_cert_chain(cert[0], cert[1])
        return ctx


def cert_serial_and_cn(pem_text):
    """(serial hex, subject CN) of the first certificate in PEM text."""
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-subject"],
                         input=pem_text.encode(), capture_output=True, timeout=10)
    text = out.stdout.decode()
    serial = cn = None
    for line in text.splitlines():
        if line.startswith("serial="):
            serial = line.split("=", 1)[1].strip()
        if line.startswith("subject="):
            cn = line.split("CN", 1)[1].lstrip(" =").strip() if "CN" in line else ""
    return serial, cn


def s_client(port, *args, servername="localhost", stdin=b"", timeout=15):
    """openssl s_client to 127.0.0.1:port: (exit status, stdout+stderr)."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
            "-servername", servername, *args]
    try:
        r = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail(f"{' '.join(argv)} did not finish within {timeout}s") from None
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def tls_listening(port):
    """True once a TLS handshake to port completes (any certificate)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            with ctx.wrap_socket(s, server_hostname="localhost"):
                return True
    except (OSError, ssl.SSLError):
        return False


def start_tls_broker(pki, *flags, exe=None, env=None, cert=None, timeout=20):
    """Starts ringcast with --listen (plain) and --tls-listen on two free
    loopback ports; returns a broker.Broker with .tls_port.  exe defaults to
    BUILD/ringcast (pass build/san/ringcast for the sanitizer build)."""
    from broker import Broker
    exe = exe or os.path.join(BUILD, "ringcast")
    check(os.access(exe, os.X_OK), f"{exe} not built")
    cert = cert or pki.server
    last = ""
    for _ in range(3):
        port, tls_port = free_port(), free_port()
        if port == tls_port:
            continue
        argv = [exe, "--listen", f"127.0.0.1:{port}", "--tls-listen", f"127.0.0.1:{tls_port}",
                "--tls-cert", cert[0], "--tls-key", cert[1], "--threads", "2",
                *[str(f) for f in flags]]
        p = Proc(argv, env=env, name=os.path.basename(exe))
        b = Broker(p, port)
        b.tls_port = tls_port

        def up():
            if not p.alive():
                return "exited"
            try:
                st, _, _ = b.http("GET", "/healthz", timeout=1)
            except OSError:
                return None
            return "ok" if st == 200 and tls_listening(tls_port) else None
        if wait_until(up, timeout, "ringcast to answer on both listeners") == "ok":
            return b
        p.wait(5)
        last = b.log()
        if "in use" not in last:
            break
    raise Fail(f"ringcast did not start; log: {last[-2000:]!r}")


async def _echo_main(cert, key):
    import websockets
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)

    async def echo(ws, path=None):
        async for m in ws:
            await ws.send(m)
    async with websockets.serve(echo, "127.0.0.1", 0, ssl=ctx, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on port {port}", file=sys.stderr, flush=True)
        await stop


def start_wss_echo(cert):
    """A python3-websockets wss echo server with cert (a pair); sets .port."""
    p = Proc(["/usr/bin/python3", os.path.abspath(__file__), "echo", cert[0], cert[1]],
             name="wss-echo")
    p.port = int(p.wait_output(r"listening on port (\d+)").group(1))
    return p


if __name__ == "__main__" and sys.argv[1:2] == ["echo"]:
    asyncio.run(_echo_main(sys.argv[2], sys.argv[3]))
elif __name__ == "__main__" and sys.argv[1:2] == ["pki"]:
    # For the Node tests: makes the files in DIR, prints their paths as JSON.
    import json
    pki = Pki(sys.argv[2])
    print(json.dumps({k: v for k, v in vars(pki).items() if k != "dir"}))
