"""Starts build/ringcast for one test and talks to it.

start(flags) picks a free loopback port (bind port 0, close, pass it with
--listen), starts the broker, waits (bounded) until GET /healthz answers
200, and returns a Broker; Broker.stop() sends SIGTERM and checks the exit
status is 0.  The helpers below speak HTTP (http.client), raw WebSocket
handshakes over a socket (for requests no library sends) and JSON mode via
python3-websockets, every wait bounded by a deadline.
"""
import asyncio
import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import struct
import time

import websockets
from websockets.exceptions import ConnectionClosed

from rctest import BUILD, Fail, Proc, check, eq, wait_until

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.pid = proc.popen.pid

    # ---- process -------------------------------------------------------------
    def log(self):
        return self.proc.text("stderr") + self.proc.text("stdout")

    def alive(self):
        return self.proc.alive()

    def stop(self, timeout=15):
        """SIGTERM; the broker must drain and exit 0 in time."""
        return self.proc.stop(signal.SIGTERM, timeout=timeout, expect=(0,))

    def signal(self, sig):
        self.proc.popen.send_signal(sig)

    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise Fail("no VmRSS in /proc/PID/status")

    # ---- HTTP -----------------------------------------------------------------
    def http(self, method, path, body=None, headers=None, timeout=10, source=None):
        """One request on a fresh connection (from address source, e.g.
        127.0.0.2, if given): (status, headers dict, body)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                       source_address=(source, 0) if source else None)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def stats(self):
        st, _, body = self.http("GET", "/stats")
        eq(st, 200, "GET /stats status")
        return json.loads(body)

    def publish(self, topic_path, body, ctype=None):
        """POST /publish/<topic_path> (already percent-encoded); returns the
        parsed answer.  str bodies go as text/plain, bytes as octet-stream
        unless ctype says otherwise."""
        if isinstance(body, str):
            body = body.encode()
            ctype = ctype or "text/plain; charset=utf-8"
        hdr = {"Content-Type": ctype} if ctype else {}
        st, _, data = self.http("POST", "/publish/" + topic_path, body, hdr)
        eq(st, 200, f"POST /publish/{topic_path} status (body {data[:200]!r})")
        return json.loads(data)

    def raw_request(self, data, timeout=5):
        """Sends raw bytes, returns everything until the server closes or
        the head and Content-Length body arrived: (status, head, body)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            return read_http_response(s, timeout)
        finally:
            s.close()

    # ---- WebSocket --------------------------------------------------------------
    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def connect(self, path, compression=None, **kw):
        """A python3-websockets connection (await it)."""
        kw.setdefault("max_size", 64 << 20)
        kw.setdefault("open_timeout", 10)
        kw.setdefault("close_timeout", 5)
        kw.setdefault("ping_interval", None)
        return websockets.connect(self.url(path), compression=compression, **kw)

    async def upgrade_status(self, path):
        """Tries a WebSocket upgrade: "accepted", or the refusal's text
        (it names the HTTP status, e.g. "... HTTP 400")."""
        try:
            ws = await self.connect(path)
        except Exception as e:  # InvalidStatus(Code) across websockets versions
            return str(e)
        await ws.close()
        return "accepted"

    async def json_client(self, compression=None, **kw):
        ws = await self.connect("/ws", compression=compression, **kw)
        c = JsonClient(ws)
        w = await c.recv()
        eq(w.get("op"), "welcome", "first JSON message")
        c.epoch = w.get("epoch")
        check(isinstance(c.epoch, str) and c.epoch, f"welcome without an epoch: {w}")
        return c


def read_http_response(s, timeout=5):
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        except socket.timeout:
            raise Fail(f"no complete HTTP answer within {timeout}s; got {buf[:200]!r}") from None
        if not chunk:
            break
        buf += chunk
    check(b"\r\n\r\n" in buf, f"connection closed before an HTTP answer: {buf[:200]!r}")
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(body) < n:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise Fail("HTTP body not complete in time") from None
        if not chunk:
            break
        body += chunk
    return status, hdrs, body


def upgrade_request(port, path, extra=b"", version=b"13"):
    key = base64.b64encode(os.urandom(16))
    req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode() +
           b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
           b"\r\nSec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n")
    return key, req


class RawSocketWS:
    """A WebSocket over a plain socket: the handshake, then whatever the
    test wants (including never reading).  rcvbuf shrinks SO_RCVBUF before
    connecting."""

    def __init__(self, port, path, rcvbuf=None, timeout=5):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        key, req = upgrade_request(port, path)
        self.s.sendall(req)
        self.buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            check(time.monotonic() < deadline, "handshake answer in time")
            chunk = self.s.recv(1)  # byte by byte: leave frames in the kernel
            check(chunk, "server closed during the handshake")
            self.buf += chunk
        head = self.buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        check(head.startswith("HTTP/1.1 101"), f"handshake answer {head[:100]!r}")
        want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        check(want in head, "Sec-WebSocket-Accept matches")
        self.buf = b""

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self.s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.s.recv(1 << 20)
            except socket.timeout:
                raise Fail("no frame from the server in time") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Fail("server closed TCP mid-frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=10):
        deadline = time.monotonic() + timeout
        b0, b1 = self._need(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8, deadline))[0]
        return b0 & 0x0F, self._need(n, deadline)

    def send(self, opcode, payload, fin=True, rsv1=False):
        n = len(payload)
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        if n < 126:
            head = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", b0, 0x80 | 127, n)
        key = os.urandom(4)
        mask = (key * (n // 4 + 1))[:n]  # as one big integer: fast for MiBs
        m = (int.from_bytes(payload, "little") ^
             int.from_bytes(mask, "little")).to_bytes(n, "little")
        self.s.sendall(head + key + m)

    def close_code(self, timeout=30):
        """Reads (skipping data) up to the close frame; returns its code."""
        deadline = time.monotonic() + timeout
        while True:
            check(time.monotonic() < deadline, f"a close frame within {timeout}s")
            op, p = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == 8:
                return struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None

    def close(self):
        self.s.close()


class JsonClient:
    """JSON mode over python3-websockets: send commands, read objects."""

    def __init__(self, ws):
        self.ws = ws
        self.epoch = None

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def recv(self, timeout=10):
        try:
            m = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise Fail(f"no JSON message within {timeout}s") from None
        check(isinstance(m, str), f"JSON mode sent a binary frame: {m[:60]!r}")
        return json.loads(m)

    async def cmd(self, obj, timeout=10):
        """Sends a command with an id and returns its ack or err."""
        await self.send(obj)
        while True:
            r = await self.recv(timeout)
            if r.get("op") in ("ack", "err") and r.get("id") == obj.get("id"):
                return r
            raise Fail(f"waiting for the answer to {obj}, got {r}")

    async def ack(self, obj, timeout=10):
        r = await self.cmd(obj, timeout)
        eq(r.get("op"), "ack", f"answer to {obj} ({r})")
        return r

    async def err(self, obj, code, timeout=10):
        r = await self.cmd(obj, timeout)
        eq((r.get("op"), r.get("code")), ("err", code), f"answer to {obj} ({r})")
        return r

    async def expect_quiet(self, seconds=0.3):
        """Nothing more arrives in a short window (used after the sender's
        own ack proved ordering, so the window is not what the test rests on)."""
        try:
            m = await asyncio.wait_for(self.ws.recv(), seconds)
        except asyncio.TimeoutError:
            return
        raise Fail(f"unexpected message: {m[:200]!r}")

    async def close(self):
        await self.ws.close()


async def close_code_of(ws, timeout=30):
    """Reads until the server closes; returns the close code it sent."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail(f"server did not close within {timeout}s")
            await asyncio.wait_for(ws.recv(), left)
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None
    except asyncio.TimeoutError:
        raise Fail(f"server did not close within {timeout}s") from None


def write_config(path, sections):
    """Writes an INI file from {"section": {"key": value}}."""
    with open(path, "w") as f:
        for sec, kv in sections.items():
            f.write(f"[{sec}]\n")
            for k, v in kv.items():
                f.write(f"{k} = {v}\n")


def start(*flags, threads=1, env=None, config=None, timeout=10, prefix=()):
    """Starts build/ringcast on a free loopback port with the given flags
    (strings, e.g. "--history-size", "5"), behind prefix (a wrapper program
    and its arguments) if given; waits until /healthz is 200."""
    exe = os.path.join(BUILD, "ringcast")
    check(os.access(exe, os.X_OK), f"{exe} not built")
    last = None
    for _ in range(3):  # the free port may be taken in between: retry
        port = _free_port()
        argv = [*prefix, exe, "--listen", f"127.0.0.1:{port}", "--threads", str(threads)]
        if config:
            argv += ["--config", config]
        argv += [str(f) for f in flags]
        p = Proc(argv, env=env, name="ringcast")
        b = Broker(p, port)

        def healthy():
            if not p.alive():
                return "exited"
            try:
                st, _, body = b.http("GET", "/healthz", timeout=1)
                return "ok" if st == 200 else None
            except OSError:
                return None
        r = wait_until(healthy, timeout, "ringcast /healthz to answer 200")
        if r == "ok":
            return b
        p.wait(5)
        last = b.log()
        if "in use" not in last:
            break
    raise Fail(f"ringcast did not start; log: {last[-2000:]!r}")
