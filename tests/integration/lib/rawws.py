"""A deliberately naive WebSocket client over a plain socket, for sending
frames no well-behaved library would send (bad opcodes, RSV bits, invalid
UTF-8 text) and for watching exactly what the server answers and when it
closes TCP.  Every read is bounded by the socket timeout."""
import base64
import hashlib
import os
import socket
import struct
import time

from rctest import Fail, check, eq

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class RawWS:
    def __init__(self, port, host="127.0.0.1", extensions=None, timeout=5.0, early=b""):
        self.timeout = timeout
        self.s = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16))
        req = (b"GET / HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() +
               b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n")
        if extensions:
            req += b"Sec-WebSocket-Extensions: " + extensions.encode() + b"\r\n"
        self.s.sendall(req + b"\r\n" + early)  # early: frames in the same packet
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._read()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        check(lines[0].startswith("HTTP/1.1 101"), f"handshake answer {lines[0]!r}")
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        eq(self.headers.get("sec-websocket-accept"), want, "Sec-WebSocket-Accept")

    def _read(self):
        try:
            chunk = self.s.recv(65536)
        except socket.timeout:
            raise Fail(f"no data from the server within {self.timeout}s") from None
        if not chunk:
            raise Fail("the server closed TCP before sending what we expected")
        return chunk

    def _need(self, n):
        while len(self.buf) < n:
            self.buf += self._read()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    @staticmethod
    def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
        """Encodes a frame; length overrides the length field (for lies)."""
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        masked = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        return head + key + masked

    def send(self, opcode, payload=b"", **kw):
        self.s.sendall(self.frame(opcode, payload, **kw))

    def send_raw(self, data):
        self.s.sendall(data)

    def recv_frame(self):
        """Returns (fin, rsv, opcode, payload) of the next server frame."""
        b0, b1 = self._need(2)
        check(not b1 & 0x80, "server frames must not be masked")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, self._need(n)

    def expect_close(self, code):
        """Skips data frames up to the server's close frame; checks its code."""
        while True:
            fin, rsv, op, payload = self.recv_frame()
            if op == 8:
                break
        got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        eq(got, code, "close code from the server")
        return payload[2:].decode("utf-8")

    def expect_eof(self, timeout=3.0):
        """The server must close TCP (after the close handshake) in time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail(f"server did not close TCP within {timeout}s")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return
            if not chunk:
                return
            check(False, f"unexpected bytes after the close frame: {chunk[:40]!r}")

    def close(self):
        self.s.close()
