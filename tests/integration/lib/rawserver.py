"""A tiny raw WebSocket SERVER for testing our client (test_conformance_client.py).

The mirror of wsconform.Client: it listens on a free loopback port, accepts
one connection, answers the opening handshake by hand (optionally accepting
permessage-deflate with parameters the test chooses, or answering wrongly on
purpose), then sends hand-built frames (unmasked, or masked to test the
client's checks) whole, in chunks or byte by byte, and reads the client's
frames back, checking each is masked and unmasking it.  Every read has a
deadline, so a client that hangs fails the test instead of stalling it.
"""
import base64
import hashlib
import select
import socket
import struct
import time
import zlib

from wsconform import (GUID, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, TIMEOUT, Closed, RawPeer,
                       Frame, Timeout, frame, parse_extension)

__all__ = ["RawServer", "ServerPMD", "Closed", "Timeout"]


class ServerPMD:
    """The server's side of a negotiated permessage-deflate: our compressor
    (server_max_window_bits, context kept unless server_no_context_takeover)
    and an inflater for the client's messages that is only as large as the
    window we allowed it, so a client that overreaches fails to inflate."""

    def __init__(self, server_bits=15, client_bits=15, server_no_ctx=False,
                 client_no_ctx=False):
        self.server_bits, self.client_bits = server_bits, client_bits
        self.server_no_ctx, self.client_no_ctx = server_no_ctx, client_no_ctx
        self._def = None
        self._inf = None

    def deflate(self, data):
        """One message compressed (RFC 7692 7.2.1: the 00 00 ff ff tail
        removed); the window is reset per message with server_no_ctx."""
        if self._def is None or self.server_no_ctx:
            self._def = zlib.compressobj(6, zlib.DEFLATED, -self.server_bits)
        out = self._def.compress(data) + self._def.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def inflate(self, data):
        """A compressed message from the client.  With client_no_ctx every
        message gets a fresh inflater: a client that kept its context would
        refer back into the previous message and fail here."""
        if self._inf is None or self.client_no_ctx:
            self._inf = zlib.decompressobj(-max(9, self.client_bits))
        out = self._inf.decompress(data + b"\x00\x00\xff\xff")
        if self._inf.unconsumed_tail:
            raise AssertionError("inflate left input")
        return out


class RawServer(RawPeer):
    """Listens on 127.0.0.1:<free port>; accept() takes one connection."""

    peer = "client"

    def __init__(self, timeout=TIMEOUT, listener=None):
        """listener: another RawServer whose listening socket this one
        shares (one RawServer per connection of a client that opens
        several); it stays open until that one's shutdown()."""
        self.timeout = timeout
        if listener is None:
            self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.lsock.bind(("127.0.0.1", 0))
            self.lsock.listen(8)
        else:
            self.lsock = listener.lsock
        self.owns_lsock = listener is None
        self.port = self.lsock.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/conform"
        self.sock = None
        self.buf = b""
        self.eof = False
        self.request = None
        self.offer = None
        self.pmd = None

    # -- connection and handshake ------------------------------------------
    def accept(self):
        r, _, _ = select.select([self.lsock], [], [], self.timeout)
        if not r:
            raise AssertionError("the client did not connect in time")
        self.sock, _ = self.lsock.accept()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def read_request(self):
        """Reads the upgrade request; returns its headers (lower-case names,
        repeated headers joined with ", ")."""
        head = self._read_until(b"\r\n\r\n", 16384).decode("latin-1")
        lines = head.split("\r\n")
        if not lines[0].startswith("GET ") or not lines[0].endswith(" HTTP/1.1"):
            raise AssertionError(f"bad request line {lines[0]!r}")
        hdrs = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                hdrs[name] = (hdrs[name] + ", " if name in hdrs else "") + value.strip()
        for name, want in (("upgrade", "websocket"), ("sec-websocket-version", "13")):
            if hdrs.get(name, "").lower() != want:
                raise AssertionError(f"request header {name}: {hdrs.get(name)!r}")
        if "upgrade" not in hdrs.get("connection", "").lower():
            raise AssertionError(f"request Connection: {hdrs.get('connection')!r}")
        key = hdrs.get("sec-websocket-key", "")
        if len(base64.b64decode(key)) != 16:
            raise AssertionError(f"bad Sec-WebSocket-Key {key!r}")
        self.request = hdrs
        self.offer = hdrs.get("sec-websocket-extensions")
        return hdrs

    def handshake(self, extensions=None, pmd=None, accept=None, status_line=None,
                  extra="", early=None, chunk=None):
        """accept() + read_request() + the 101.  extensions: the
        Sec-WebSocket-Extensions value to answer (None: none); pmd: the
        ServerPMD that value means; accept: a Sec-WebSocket-Accept to send
        instead of the right one.  early(self) -> bytes: frames written
        right behind the 101 in the same send (built once self.pmd is set,
        so they may be compressed); chunk: the 101 and those frames go out
        in writes of that many bytes instead (1: byte by byte).  A
        connection accept()ed already (e.g. after a SOCKS5 exchange the
        test played as the proxy) is used as it is."""
        if self.sock is None:
            self.accept()
        hdrs = self.read_request()
        if accept is None:
            accept = base64.b64encode(hashlib.sha1(hdrs["sec-websocket-key"].encode() +
                                                   GUID).digest()).decode()
        resp = (status_line or "HTTP/1.1 101 Switching Protocols") + "\r\n" \
            "Upgrade: websocket\r\nConnection: Upgrade\r\n" \
            f"Sec-WebSocket-Accept: {accept}\r\n"
        if extensions:
            resp += f"Sec-WebSocket-Extensions: {extensions}\r\n"
        self.pmd = pmd
        self.send((resp + extra + "\r\n").encode() + (early(self) if early else b""), chunk)
        return hdrs

    def offered_deflate(self):
        """The client's permessage-deflate offer as a dict of parameters,
        or None."""
        if not self.offer:
            return None
        name, params = parse_extension(self.offer.split(",")[0])
        return params if name == "permessage-deflate" else None

    def send_frame(self, opcode, payload=b"", chunk=None, mask=False, **kw):
        """A server frame: unmasked unless mask=True (a protocol error)."""
        self.send(frame(opcode, payload, mask=mask, **kw), chunk)

    def send_message(self, opcode, payload, compress=False, fragments=1, chunk=None,
                     between=b""):
        """A data message, compressed with self.pmd when asked, cut into
        `fragments` frames with the bytes `between` sent between them."""
        self.send(self.message(opcode, payload, compress, fragments, between), chunk)

    def message(self, opcode, payload, compress=False, fragments=1, between=b""):
        """The frames send_message() sends, as bytes."""
        data = self.pmd.deflate(payload) if compress else payload
        n = max(1, fragments)
        step = -(-len(data) // n) if data else 0
        parts = [data[i * step:(i + 1) * step] for i in range(n)] if step else [b""] * n
        out = []
        for i, part in enumerate(parts):
            out.append(frame(opcode if i == 0 else OP_CONT, part, fin=i == n - 1,
                             rsv1=compress and i == 0, mask=False))
            if i < n - 1:
                out.append(between)
        return b"".join(out)

    # -- frames -----------------------------------------------------------
    def recv_frame(self, timeout=None):
        """The next frame from the client, unmasked.  A frame without a
        mask fails the test (RFC 6455 5.1: clients mask every frame)."""
        return self._recv_frame(timeout, masked=True)

    def recv_message(self, timeout=None):
        """The next data message from the client, reassembled and inflated;
        pongs on the way are returned in self.pongs.  Returns (opcode,
        payload, compressed)."""
        op, parts, z = None, [], False
        self.pongs = []
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == OP_CLOSE:
                raise AssertionError(f"expected a message, got {f} (code {f.close_code})")
            if f.opcode == OP_PONG:
                self.pongs.append(f.payload)
                continue
            if f.opcode == OP_PING:
                raise AssertionError(f"unexpected ping from the client: {f}")
            if op is None:
                if f.opcode == OP_CONT:
                    raise AssertionError("continuation without a start")
                op, z = f.opcode, bool(f.rsv & 4)
            elif f.opcode != OP_CONT:
                raise AssertionError(f"new message {f} inside a fragmented one")
            if f.rsv & ~4 & 7 or (f.rsv & 4 and f.opcode == OP_CONT):
                raise AssertionError(f"bad RSV bits on {f}")
            parts.append(f.payload)
            if f.fin:
                data = b"".join(parts)
                if z:
                    if self.pmd is None:
                        raise AssertionError("RSV1 without permessage-deflate")
                    data = self.pmd.inflate(data)
                return op, data, z

    def expect_pong(self, payload, timeout=None):
        f = self.recv_frame(timeout)
        if (f.opcode, f.payload) != (OP_PONG, payload):
            raise AssertionError(f"expected pong {payload[:40]!r}, got {f}")

    def expect_close(self, code, reason=None, timeout=None):
        """The client sends a close frame with `code` (None: empty payload)
        and nothing before it.  Returns the frame."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        return self._close_frame(code, reason, deadline)

    def close_handshake(self, code, reason=b"", tcp_within=None):
        """Server-initiated close: sends ours (code None: an empty one),
        expects the echo of the code and the client's TCP close within
        tcp_within seconds (default: the timeout)."""
        payload = struct.pack("!H", code) + reason if code is not None else b""
        self.send_frame(OP_CLOSE, payload)
        f = self.expect_close(code)
        self.expect_tcp_close(tcp_within)
        return f

    def shutdown(self):
        for s in (self.sock, self.lsock if self.owns_lsock else None):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
