"""A tiny raw WebSocket client for the conformance tests (test_conformance*.py).

Everything is done by hand on a plain socket: the opening handshake, frames
built byte by byte (any opcode, RSV bits, FIN, mask, length form), frames
read back, and the server's TCP close detected with a timeout.  It trusts
nothing it receives: every read is bounded by a deadline, so a server that
hangs makes a test fail instead of stalling.

Also here: starting build/echo-server on a free loopback port and stopping
it, and permessage-deflate helpers (RFC 7692) on top of zlib.
"""
import base64
import hashlib
import os
import select
import socket
import struct
import subprocess
import tempfile
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

# How long the server may take to answer anything on loopback.  Generous,
# because CI machines are slow and sanitizer builds slower; a conformant
# server answers in milliseconds, so this only bounds a failure.
TIMEOUT = float(os.environ.get("WSCONFORM_TIMEOUT", "10"))


class Timeout(Exception):
    """Nothing (or not enough) arrived before the deadline."""


class Closed(Exception):
    """The server closed the TCP connection while we expected more bytes."""


def build_dir():
    """The build directory: $BUILD (the runner sets it) or <repo>/build."""
    b = os.environ.get("BUILD")
    if b:
        return b
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "build"))


class Server:
    """A program that prints "listening on port N" on stderr, started on a
    free port ("127.0.0.1:0") and stopped by stop().  stderr goes to a
    temporary file (a pipe nobody drains could block the server)."""

    def __init__(self, prog="echo-server", args=(), env=None, start_timeout=10.0):
        path = os.path.join(build_dir(), prog)
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"{path} is missing: run make first")
        e = dict(os.environ)
        e.update(env or {})
        self.log = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen([path, "127.0.0.1:0", *args], env=e,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            text = self.stderr()
            for line in text.splitlines():
                if "listening on port " in line:
                    self.port = int(line.rsplit("listening on port ", 1)[1].split()[0])
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{prog} exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.02)  # polling a log file; bounded by the deadline
        self.stop()
        raise RuntimeError(f"{prog} did not report its port within {start_timeout}s")

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def mask_bytes(data, key):
    """XORs data with the 4-byte key (fast: one big integer XOR)."""
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv1=False, rsv2=False, rsv3=False,
          mask=True, key=None, length_form=None):
    """One client frame as bytes.  length_form forces 7, 16 or 64-bit
    lengths (a non-minimal encoding) for tests that need it."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) \
        | (0x10 if rsv3 else 0) | (opcode & 0x0F)
    n = len(payload)
    m = 0x80 if mask else 0
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    if form == 7:
        head = struct.pack("!BB", b0, m | n)
    elif form == 16:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = key or os.urandom(4)
    return head + key + mask_bytes(payload, key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return f"Frame(fin={self.fin}, rsv={self.rsv}, op={self.opcode}, {len(self.payload)}B {p!r})"


class RawPeer:
    """Byte and frame reading shared by the raw client here and the raw
    server in rawserver.py: a subclass sets self.sock, self.buf = b"",
    self.eof = False and self.timeout.  Every read has a deadline."""

    def _fill(self, deadline):
        """Reads what is available (waiting until deadline); raises Closed
        on EOF/reset and Timeout when nothing came."""
        if self.eof:
            raise Closed()
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            raise Timeout()
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            raise Closed()
        self.buf += data

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_until(self, marker, limit):
        """An HTTP head: everything up to and including marker."""
        deadline = time.monotonic() + self.timeout
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError("HTTP head too long")
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def send(self, data, chunk=None):
        """Sends raw bytes, all at once or `chunk` bytes per send() with
        TCP_NODELAY so they leave as separate segments.  A reset (the peer
        already closed) is not an error here; the reads will tell."""
        try:
            if not chunk:
                self.sock.sendall(data)
                return
            for i in range(0, len(data), chunk):
                self.sock.sendall(data[i:i + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _recv_frame(self, timeout, masked):
        """The next frame, unmasked; masked says whether the peer must mask
        (a client) or must not (a server), RFC 6455 5.1."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        b0, b1 = self._take(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline))[0]
        if bool(b1 & 0x80) != masked:
            raise AssertionError(f"frame (opcode {b0 & 15}) is {'not ' if masked else ''}"
                                 f"masked, and {'clients must' if masked else 'servers must not'}")
        key = self._take(4, deadline) if masked else None
        payload = self._take(n, deadline)
        if key:
            payload = mask_bytes(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload)

    def _close_frame(self, code, reason, deadline):
        """The next frame must be a close with `code` (None: an empty
        payload; a tuple: any of them) and, unless reason is None, that
        reason.  Returns it."""
        try:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()))
        except Timeout:
            raise AssertionError(f"no close frame (expected {code}) in time")
        except Closed:
            raise AssertionError(f"TCP closed without a close frame (expected {code})")
        if f.opcode != OP_CLOSE:
            raise AssertionError(f"expected close {code}, got {f}")
        codes = code if isinstance(code, tuple) else (code,)
        if f.close_code not in codes:
            raise AssertionError(f"close code {f.close_code} (payload {f.payload!r}), "
                                 f"expected {code}")
        if reason is not None and f.payload[2:] != reason:
            raise AssertionError(f"close reason {f.payload[2:]!r}, expected {reason!r}")
        return f

    def expect_tcp_close(self, timeout=None):
        """The peer ends its side of TCP (FIN or reset) within timeout; any
        byte before that fails (nothing may follow a close frame).  Returns
        the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + (timeout if timeout is not None else self.timeout)
        try:
            while True:
                self._fill(deadline)
                if self.buf:
                    raise AssertionError(f"bytes after the close frame: {self.buf[:40]!r}")
        except Closed:
            return time.monotonic() - t0
        except Timeout:
            raise AssertionError(f"the {self.peer} did not close TCP in time")


class Client(RawPeer):
    """A raw client connection.  Every read waits at most `timeout`."""

    peer = "server"

    def __init__(self, port, path="/", extensions=None, host="127.0.0.1",
                 extra_headers="", timeout=TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.extensions = None
        self.pmd = None
        self._handshake(host, port, path, extensions, extra_headers)

    # -- handshake --------------------------------------------------------
    def _handshake(self, host, port, path, extensions, extra_headers):
        key = base64.b64encode(os.urandom(16))
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n")
        if extensions:
            req += f"Sec-WebSocket-Extensions: {extensions}\r\n"
        req += extra_headers + "\r\n"
        self.sock.sendall(req.encode())
        head = self._read_until(b"\r\n\r\n", 16384)
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise AssertionError(f"handshake refused: {lines[0]!r}")
        hdrs = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            hdrs[name] = (hdrs[name] + ", " if name in hdrs else "") + value.strip()
        want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise AssertionError(f"bad Sec-WebSocket-Accept in {hdrs}")
        self.headers = hdrs
        self.extensions = hdrs.get("sec-websocket-extensions")
        if self.extensions:
            self.pmd = PMD(self.extensions)

    def send_frame(self, opcode, payload=b"", chunk=None, **kw):
        self.send(frame(opcode, payload, **kw), chunk)

    def recv_frame(self, timeout=None):
        """The next frame from the server.  Raises Timeout or Closed."""
        return self._recv_frame(timeout, masked=False)

    def recv_message(self, timeout=None):
        """The next data message, reassembled and inflated when RSV1 says
        so; pings and pongs on the way are skipped, a close frame fails the
        test (showing its code).  Returns (opcode, payload)."""
        op, parts, z = None, [], False
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == OP_CLOSE:
                raise AssertionError(f"expected a message, got {f} (code {f.close_code})")
            if f.opcode in (OP_PING, OP_PONG):
                continue
            if op is None:
                if f.opcode == OP_CONT:
                    raise AssertionError("continuation without a start")
                op, z = f.opcode, bool(f.rsv & 4)
            elif f.opcode != OP_CONT:
                raise AssertionError(f"new message {f} inside a fragmented one")
            parts.append(f.payload)
            if f.fin:
                data = b"".join(parts)
                if z:
                    if self.pmd is None:
                        raise AssertionError("RSV1 without permessage-deflate")
                    data = self.pmd.inflate(data)
                return op, data

    def expect_close(self, code, timeout=None):
        """The server must send a close frame with `code` (None: an empty
        payload; a tuple: any of them) and nothing before it, then close
        TCP within the time left.  Any other frame on the way fails the
        test (e.g. an echo or a pong for a frame sent after a protocol
        error)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        f = self._close_frame(code, None, deadline)
        self.expect_tcp_close(max(0.0, deadline - time.monotonic()) + 1.0)
        return f

    def close(self, code=1000, reason=b""):
        """The client side of a clean close: send ours, expect the echo of
        the code and the server's TCP close.  Returns the close frame."""
        self.send_frame(OP_CLOSE, close_payload(code, reason))
        return self.expect_close(code)

    def shutdown(self):
        try:
            self.sock.close()
        except OSError:
            pass


# -- permessage-deflate --------------------------------------------------------

def parse_extension(header):
    """'permessage-deflate; a=1; b' -> ('permessage-deflate', {'a': '1', 'b': None})."""
    parts = [p.strip() for p in header.split(";")]
    params = {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        params[k.strip()] = v.strip().strip('"') if eq else None
    return parts[0], params


class PMD:
    """Both directions of a negotiated permessage-deflate (client side)."""

    def __init__(self, response):
        name, params = parse_extension(response)
        if name != "permessage-deflate":
            raise AssertionError(f"unexpected extension {response!r}")
        self.params = params
        self.server_no_ctx = "server_no_context_takeover" in params
        self.client_no_ctx = "client_no_context_takeover" in params
        self.server_bits = int(params.get("server_max_window_bits") or 15)
        self.client_bits = int(params.get("client_max_window_bits") or 15)
        self._inf = None
        self._def = None

    def deflate(self, data, keep_context=True):
        """A message payload compressed as RFC 7692 section 7.2.1 says
        (the trailing 00 00 ff ff removed).  keep_context=False starts a
        fresh window even when context takeover was allowed."""
        if self._def is None or self.client_no_ctx or not keep_context:
            # zlib turns a raw window of 8 into 9, which a peer that asked
            # for 8 could not read: callers never negotiate 8 for us
            self._def = zlib.compressobj(6, zlib.DEFLATED, -self.client_bits)
        out = self._def.compress(data) + self._def.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def inflate(self, data):
        """A compressed message from the server; the window the server
        keeps is honoured (a back reference past it fails to inflate)."""
        if self._inf is None or self.server_no_ctx:
            self._inf = zlib.decompressobj(-max(9, self.server_bits))
        out = self._inf.decompress(data + b"\x00\x00\xff\xff")
        if self._inf.unconsumed_tail:
            raise AssertionError("inflate left input")
        return out


# -- shared test scaffolding -------------------------------------------------------

def pattern(n, seed=0):
    """n bytes that are not all alike (catches offset and masking bugs)."""
    return bytes((i * 31 + seed + (i >> 8)) & 0xFF for i in range(n))


def text_pattern(n, seed=0):
    """n bytes of compressible ASCII text."""
    base = b"Hello, ringcast! 0123456789 abcdefghijklmnopqrstuvwxyz %d " % seed
    return (base * (n // len(base) + 1))[:n]


class ServerCase:
    """Mixin for unittest.TestCase classes that talk to one Server: set
    `server` on the class (or a module global via server())."""

    def server(self):
        raise NotImplementedError

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.shutdown()
        s = self.server()
        if not s.alive():
            raise AssertionError(f"server died:\n{s.stderr()}")

    def connect(self, **kw):
        c = Client(self.server().port, **kw)
        self.clients.append(c)
        return c

    def echo(self, c, op, payload, **kw):
        """Sends one uncompressed message as one frame, expects it back."""
        c.send_frame(op, payload, **kw)
        got = c.recv_message()
        if got != (op, payload):
            raise AssertionError(f"echo of {len(payload)}B op {op} came back as "
                                 f"{len(got[1])}B op {got[0]}")

    def ping_ok(self, c, payload=b"alive"):
        c.send_frame(OP_PING, payload)
        f = c.recv_frame()
        if (f.opcode, f.payload) != (OP_PONG, payload):
            raise AssertionError(f"expected pong {payload!r}, got {f}")


def stop_checked(server):
    """Stops a server the tests used; raises if it died on the way or did
    not exit 0 on SIGTERM."""
    alive = server.alive()
    status = server.stop()
    if not alive:
        raise AssertionError(f"server died during the tests:\n{server.stderr()}")
    if status != 0:
        raise AssertionError(f"server exited with {status} after SIGTERM:\n{server.stderr()}")
