"""RFC 6455 / 7692 conformance of the core library as a CLIENT: the
direction Autobahn's "fuzzingserver" tests, which cannot run here, so these
are our own cases against a hand-written raw server (lib/rawserver.py) that
sends any byte it likes.

The client under test is tests/support/conform_client.c (built here with gcc
against libringcast.a): it echoes every message it receives and prints each
event (message, ping, pong, close) as a line.  The server checks that every
frame the client sends is masked, that pings get matching pongs, the exact
close code the client sends, and that the client closes TCP within a bounded
time after the close handshake.  Handshake failures are checked with
build/echo-client, as a user would meet them (exit status and stderr).
"""
import atexit
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))

from rctest import BUILD, ROOT, Fail, Proc, check, eq, run, run_client  # noqa: E402
from rawserver import Closed, RawServer, ServerPMD  # noqa: E402
from wsconform import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,  # noqa: E402
                       OP_TEXT, frame, pattern, text_pattern)

# The client shuts its side down right after the close handshake; on
# loopback that takes milliseconds, this only bounds a failure.
TCP_CLOSE_WITHIN = 3.0
CLIENT = None


def build_client():
    """gcc tests/support/conform_client.c + libringcast.a, with the
    sanitizers when the library under test was built with them."""
    global CLIENT
    d = tempfile.mkdtemp(prefix="rc-conform-client-")
    atexit.register(shutil.rmtree, d, True)
    out = os.path.join(d, "conform_client")
    cmd = ["gcc", "-std=gnu11", "-O1", "-g", "-D_GNU_SOURCE", "-pthread", "-I", ROOT,
           "-o", out, os.path.join(ROOT, "tests", "support", "conform_client.c"),
           os.path.join(BUILD, "libringcast.a"),
           "-luring", "-lz", "-lssl", "-lcrypto", "-linih", "-lpthread"]
    ldd = subprocess.run(["ldd", os.path.join(BUILD, "echo-client")], capture_output=True,
                         text=True, timeout=30).stdout
    if "libasan" in ldd:
        cmd[1:1] = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    eq(r.returncode, 0, f"building conform_client: {r.stderr[:800]}")
    CLIENT = out


class Session:
    """One client process connected to one RawServer."""

    def __init__(self, args=(), extensions=None, pmd=None, early=None, chunk=None, extra=""):
        self.srv = RawServer()
        self.proc = Proc([CLIENT, *args, self.srv.url], name="conform_client")
        try:
            self.srv.handshake(extensions=extensions, pmd=pmd, early=early, chunk=chunk,
                               extra=extra)
            self.wait_event(r"^open ")
        except BaseException:
            self.end(check_exit=False)
            raise

    def events(self):
        return self.proc.text("stdout").splitlines()

    def wait_event(self, regex, timeout=10):
        return self.proc.wait_output("(?m)" + regex, key="stdout", timeout=timeout)

    def end(self, check_exit=True):
        """Closes our side and waits for the client to exit 0."""
        self.srv.shutdown()
        if not check_exit:
            if self.proc.alive():
                self.proc.popen.kill()
            self.proc.wait()
            return
        rc = self.proc.wait(timeout=10)
        eq(rc, 0, f"client exit status (stderr {self.proc.text()[-800:]!r})")
        err = self.proc.text()
        check("ERROR: AddressSanitizer" not in err and "runtime error" not in err,
              f"sanitizer report: {err[-2000:]}")

    def echo(self, op, payload, **kw):
        """Sends a message, expects the client's report and its echo."""
        self.srv.send_message(op, payload, **kw)
        got_op, got, z = self.srv.recv_message()
        eq((got_op, len(got)), (op, len(payload)), "echo opcode and length")
        check(got == payload, f"echo of {len(payload)} bytes differs")
        want = f"message op={op} len={len(payload)} crc={zlib.crc32(payload):08x}"
        self.wait_event("^" + re.escape(want) + "$")
        return z

    def fails(self, code, data, chunk=None, pongs=()):
        """Sends raw bytes that must make the client fail with `code`: its
        close frame (after the pongs for pings before the error), then its
        TCP close, and no message delivered."""
        try:
            self.srv.send(data, chunk)
            for p in pongs:
                self.srv.expect_pong(p)
            self.srv.expect_close(code)
            self.srv.expect_tcp_close(TCP_CLOSE_WITHIN)
        finally:
            self.srv.shutdown()
        self.end()
        ev = self.events()
        eq(ev[-1], f"close code={code} reason=", "on_close report")
        check(not any(e.startswith("message ") for e in ev),
              f"a message was delivered before the failure: {ev}")


def plain():
    return Session(["--no-deflate"])


def finish(s):
    """The server closes cleanly with 1000; the client echoes it."""
    s.srv.close_handshake(1000, b"done", tcp_within=TCP_CLOSE_WITHIN)
    s.end()
    eq(s.events()[-1], "close code=1000 reason=done", "on_close report")


# -- 1.x framing -------------------------------------------------------------------

SIZES = [0, 1, 125, 126, 127, 128, 1000, 65535, 65536]


def test_messages_one_frame():
    s = plain()
    try:
        for n in SIZES + [1 << 20]:
            s.echo(OP_TEXT, text_pattern(n, n))
            s.echo(OP_BINARY, pattern(n, n))
        finish(s)
    finally:
        s.srv.shutdown()


def test_messages_chunked_and_byte_by_byte():
    s = plain()
    try:
        for n in [0, 1, 125, 126, 300]:
            s.echo(OP_BINARY, pattern(n, 3), chunk=1)
            s.echo(OP_TEXT, "é€𝄞 ok".encode() * (n // 10 + 1), chunk=1)
        for n in [65535, 65536, 1 << 20]:
            s.echo(OP_BINARY, pattern(n, 5), chunk=997)
        # a 64-bit length header cut in 3-byte pieces
        s.echo(OP_BINARY, pattern(70000, 9), chunk=3)
        finish(s)
    finally:
        s.srv.shutdown()


def test_fragmented_with_pings():
    s = plain()
    pings = 0
    try:
        for n, frags in [(0, 2), (10, 3), (1000, 5), (65536, 4), (1 << 20, 16)]:
            for op, data in [(OP_TEXT, text_pattern(n, 1)), (OP_BINARY, pattern(n, 2))]:
                ping = frame(OP_PING, b"between %d" % n, mask=False)
                s.srv.send_message(op, data, fragments=frags, between=ping)
                got_op, got, _ = s.srv.recv_message()
                eq((got_op, got == data), (op, True), f"fragmented {n}B echo")
                eq(s.srv.pongs, [b"between %d" % n] * (frags - 1), "pongs between fragments")
                pings += frags - 1
        # byte by byte, fragments and pings included
        data = "fragmentéd 𝄞 text".encode() * 3
        s.srv.send_message(OP_TEXT, data, fragments=5,
                           between=frame(OP_PING, b"p", mask=False), chunk=1)
        got_op, got, _ = s.srv.recv_message()
        eq((got_op, got, s.srv.pongs), (OP_TEXT, data, [b"p"] * 4), "byte-by-byte fragments")
        finish(s)
        eq(len([e for e in s.events() if e.startswith("ping ")]), pings + 4, "pings reported")
    finally:
        s.srv.shutdown()


def test_pings_answered():
    s = plain()
    try:
        for payload in [b"", b"x", pattern(125, 7), "é€".encode()]:
            s.srv.send_frame(OP_PING, payload)
            s.srv.expect_pong(payload)
            s.wait_event(f"^ping len={len(payload)} crc={zlib.crc32(payload):08x}$")
        s.srv.send_frame(OP_PING, b"split", chunk=1)
        s.srv.expect_pong(b"split")
        # an unsolicited pong is reported and not answered
        s.srv.send_frame(OP_PONG, b"unasked")
        s.wait_event(r"^pong len=7 ")
        s.echo(OP_TEXT, b"after the pong")
        eq(s.srv.pongs, [], "frames before the echo (a pong must not be answered)")
        finish(s)
    finally:
        s.srv.shutdown()


def test_masked_server_frame():
    for op, payload in [(OP_TEXT, b"masked"), (OP_PING, b"p"), (OP_BINARY, b"")]:
        plain().fails(1002, frame(op, payload, mask=True))


def test_rsv_bits_without_negotiation():
    for kw in [dict(rsv1=True), dict(rsv2=True), dict(rsv3=True),
               dict(rsv1=True, rsv2=True, rsv3=True)]:
        plain().fails(1002, frame(OP_TEXT, b"rsv", mask=False, **kw))
    plain().fails(1002, frame(OP_PING, b"rsv", mask=False, rsv2=True))
    # with deflate negotiated, RSV1 on a control frame or a continuation
    # is still an error, and RSV2/RSV3 always are
    pmd = "permessage-deflate"
    Session(extensions=pmd, pmd=ServerPMD()).fails(
        1002, frame(OP_PING, b"z", mask=False, rsv1=True))
    Session(extensions=pmd, pmd=ServerPMD()).fails(
        1002, frame(OP_TEXT, b"a", fin=False, mask=False) +
        frame(OP_CONT, b"b", mask=False, rsv1=True))
    Session(extensions=pmd, pmd=ServerPMD()).fails(
        1002, frame(OP_TEXT, b"a", mask=False, rsv2=True))


def test_reserved_opcodes():
    for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]:
        plain().fails(1002, frame(op, b"reserved", mask=False))
    # after a good message, and with a payload split byte by byte
    s = plain()
    s.echo(OP_TEXT, b"good")
    s.srv.send(frame(0xB, b"", mask=False))
    s.srv.expect_close(1002)
    s.srv.expect_tcp_close(TCP_CLOSE_WITHIN)
    s.end()
    plain().fails(1002, frame(5, b"abc", mask=False), chunk=1)


def test_fragmentation_errors():
    cont = frame(OP_CONT, b"orphan", mask=False)
    plain().fails(1002, cont)
    plain().fails(1002, frame(OP_CONT, b"orphan", fin=False, mask=False))
    start = frame(OP_TEXT, b"first", fin=False, mask=False)
    plain().fails(1002, start + frame(OP_TEXT, b"second", mask=False))
    plain().fails(1002, start + frame(OP_BINARY, b"second", fin=False, mask=False))
    plain().fails(1002, start + frame(OP_PING, b"ok", mask=False) +
                  frame(OP_TEXT, b"x", mask=False), chunk=1, pongs=[b"ok"])


def test_control_frame_errors():
    for op in [OP_PING, OP_PONG, OP_CLOSE]:
        plain().fails(1002, frame(op, b"\x03\xe8" + b"x" * 124, mask=False))
        plain().fails(1002, frame(op, b"\x03\xe8", fin=False, mask=False))
    # a 125-byte ping is fine; a 126-byte one in the 16-bit length form is not
    s = plain()
    s.srv.send_frame(OP_PING, b"y" * 125)
    s.srv.expect_pong(b"y" * 125)
    s.fails(1002, frame(OP_PING, b"z" * 126, mask=False))
    # a short ping written in the 16-bit form is a non-minimal length
    plain().fails(1002, frame(OP_PING, b"p", mask=False, length_form=16))


BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
            b"caf\xc3", b"\xe2\x82"]


def test_invalid_utf8():
    for bad in BAD_UTF8:
        plain().fails(1007, frame(OP_TEXT, b"ok " + bad, mask=False))
        # split across fragments: the invalid byte in the last one
        plain().fails(1007, frame(OP_TEXT, b"ok ", fin=False, mask=False) +
                      frame(OP_CONT, bad, mask=False))
    # fail fast: the bad bytes in a non-final fragment are refused at
    # once, before the message could end
    for bad in [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]:
        s = plain()
        s.srv.send(frame(OP_TEXT, b"ok " + bad, fin=False, mask=False))
        s.srv.expect_close(1007)
        s.srv.expect_tcp_close(TCP_CLOSE_WITHIN)
        s.end()
        eq(s.events()[-1], "close code=1007 reason=", "fail-fast close")
    # a code point split across fragments is fine
    s = plain()
    data = "a€b𝄞c".encode()
    for cut in range(1, len(data)):
        s.srv.send(frame(OP_TEXT, data[:cut], fin=False, mask=False) +
                   frame(OP_CONT, data[cut:], mask=False))
        got = s.srv.recv_message()
        eq(got[:2], (OP_TEXT, data), f"split at {cut}")
    finish(s)
    # a close reason that is not UTF-8
    plain().fails(1007, frame(OP_CLOSE, b"\x03\xe8\xff", mask=False))


# -- 7.x close --------------------------------------------------------------------------

def test_server_close():
    for code, reason in [(1000, b"bye"), (1000, b""), (1001, "é€".encode()), (1003, b""),
                         (1007, b""), (1011, b"x" * 123), (1012, b""), (3000, b""),
                         (4999, b"app")]:
        s = plain()
        s.echo(OP_TEXT, b"before the close")
        f = s.srv.close_handshake(code, reason, tcp_within=TCP_CLOSE_WITHIN)
        eq(f.payload, struct.pack("!H", code) + reason, "close echo with reason")
        s.end()
        eq(s.events()[-1].encode(), b"close code=%d reason=%s" % (code, reason),
           "on_close report")
    # an empty close is answered with an empty close; on_close says 1005
    s = plain()
    f = s.srv.close_handshake(None, tcp_within=TCP_CLOSE_WITHIN)
    eq(f.payload, b"", "empty close echo")
    s.end()
    eq(s.events()[-1], "close code=1005 reason=", "on_close for an empty close")
    # a message after the server's close frame is not delivered
    s = plain()
    s.srv.send(frame(OP_CLOSE, b"\x03\xe8", mask=False) + frame(OP_TEXT, b"late", mask=False))
    s.srv.expect_close(1000)
    s.srv.expect_tcp_close(TCP_CLOSE_WITHIN)
    s.end()
    check(not any(e.startswith("message") for e in s.events()), f"late message: {s.events()}")


def test_invalid_close_codes():
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]:
        plain().fails(1002, frame(OP_CLOSE, struct.pack("!H", code), mask=False))
    plain().fails(1002, frame(OP_CLOSE, b"\x03", mask=False))


def test_client_close_after_tcp_close():
    """A server that drops TCP without a close: on_close says 1006."""
    s = plain()
    s.echo(OP_TEXT, b"hi")
    s.srv.sock.close()
    s.srv.sock = None
    s.proc.wait(timeout=10)
    eq(s.events()[-1], "close code=1006 reason=", "abnormal close report")
    s.srv.shutdown()


# -- 12.x / 13.x compression --------------------------------------------------------

def deflate_session(response, pmd, args=()):
    s = Session(args, extensions=response, pmd=pmd)
    check(s.srv.offered_deflate() is not None, f"client offer {s.srv.offer!r}")
    return s


COMPRESS_SIZES = [0, 1, 64, 125, 1000, 65536, 1 << 20]


def compressed_round_trips(s, fragments=(1, 3)):
    for n in COMPRESS_SIZES:
        for frags in fragments:
            s.echo(OP_TEXT, text_pattern(n, n), compress=True, fragments=frags)
            s.echo(OP_BINARY, pattern(n, n), compress=True, fragments=frags)
    # repeated messages: context takeover makes later ones refer back
    for i in range(5):
        s.echo(OP_TEXT, text_pattern(3000, 1), compress=True)
    # uncompressed messages are fine in between
    s.echo(OP_BINARY, pattern(500, 1))
    # byte by byte
    s.echo(OP_TEXT, text_pattern(400, 2), compress=True, chunk=1)


def test_deflate_context_takeover():
    s = deflate_session("permessage-deflate", ServerPMD())
    try:
        eq(s.events()[0], "open deflate=1 server_bits=15 client_bits=15 snct=0 cnct=0",
           "negotiated")
        compressed_round_trips(s)
        # the client compresses its echoes of compressible text
        s.srv.send_message(OP_TEXT, text_pattern(5000, 3), compress=True)
        _, got, z = s.srv.recv_message()
        check(z and got == text_pattern(5000, 3), "client compressed its echo")
        finish(s)
    finally:
        s.srv.shutdown()


def test_deflate_no_context_takeover():
    resp = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    s = deflate_session(resp, ServerPMD(server_no_ctx=True, client_no_ctx=True))
    try:
        eq(s.events()[0], "open deflate=1 server_bits=15 client_bits=15 snct=1 cnct=1",
           "negotiated")
        compressed_round_trips(s)
        finish(s)
    finally:
        s.srv.shutdown()


def test_deflate_server_window_bits():
    for bits in range(9, 16):
        resp = f"permessage-deflate; server_max_window_bits={bits}"
        s = deflate_session(resp, ServerPMD(server_bits=bits))
        try:
            eq(s.events()[0], f"open deflate=1 server_bits={bits} client_bits=15 snct=0 cnct=0",
               "negotiated")
            for n in [100, 5000, 70000]:
                for _ in range(2):
                    s.echo(OP_TEXT, text_pattern(n, bits), compress=True)
                    s.echo(OP_BINARY, pattern(n, bits), compress=True, fragments=2)
            finish(s)
        finally:
            s.srv.shutdown()


def test_deflate_client_window_bits():
    """The server picks the client's window; our inflater is only that
    large, so a client compressing with a larger one fails to decode."""
    for bits in [9, 10, 12, 15]:
        resp = f"permessage-deflate; client_max_window_bits={bits}"
        s = deflate_session(resp, ServerPMD(client_bits=bits))
        try:
            check("client_max_window_bits" in s.srv.offer, f"offer {s.srv.offer!r}")
            for n in [3000, 70000]:
                for seed in range(3):
                    s.srv.send_message(OP_TEXT, text_pattern(n, seed))
                    _, got, z = s.srv.recv_message()
                    check(z and got == text_pattern(n, seed),
                          f"window {bits}: compressed echo of {n} bytes")
            finish(s)
        finally:
            s.srv.shutdown()
    # the client's own limit is offered and honoured
    s = deflate_session("permessage-deflate; client_max_window_bits=10",
                        ServerPMD(client_bits=10), args=["--window-bits", "11"])
    try:
        check("client_max_window_bits=11" in s.srv.offer, f"offer {s.srv.offer!r}")
        s.echo(OP_TEXT, text_pattern(40000, 1), compress=True)
        finish(s)
    finally:
        s.srv.shutdown()


def test_deflate_errors():
    pmd = "permessage-deflate"
    # RSV1 on a message that is not deflate data: a protocol error for us
    # (RFC 7692 only says "fail"; the server side answers the same)
    Session(extensions=pmd, pmd=ServerPMD()).fails(
        1002, frame(OP_BINARY, b"\xff\xff\xff\xff not deflate", mask=False, rsv1=True))
    # compressed text that inflates to invalid UTF-8
    d = ServerPMD()
    Session(extensions=pmd, pmd=d).fails(
        1007, frame(OP_TEXT, d.deflate(b"ok \xc0\xaf"), mask=False, rsv1=True))


# -- handshake --------------------------------------------------------------------------

def handshake_failure(args, want, **kw):
    """echo-client against a server answering wrongly: non-zero exit, a
    reason on stderr, and no frame sent."""
    srv = RawServer()
    holder = {}

    def client():
        holder["r"] = run_client([*args, srv.url, "hello"], timeout=15)

    t = threading.Thread(target=client)
    t.start()
    try:
        srv.handshake(**kw)
        try:
            f = srv.recv_frame(timeout=5)
        except Closed:
            pass
        else:
            raise Fail(f"client sent {f} after a bad handshake")
    finally:
        t.join(20)
        srv.shutdown()
    check("r" in holder, "echo-client did not finish")
    rc, out, err = holder["r"]
    check(rc != 0, f"echo-client must fail (stderr {err!r})")
    check(want in err, f"stderr should say {want!r}: {err!r}")
    eq(out, "", "nothing echoed")


def test_handshake_failures():
    handshake_failure([], "wrong Sec-WebSocket-Accept", accept="dGhlIHNhbXBsZSBub25jZQ==")
    handshake_failure(["--no-deflate"], "extension we did not offer",
                      extensions="permessage-deflate")
    handshake_failure([], "extension we did not offer", extensions="x-webkit-deflate-frame")
    handshake_failure([], "extension we did not offer",
                      extensions="permessage-deflate; client_max_window_bits=15; foo")
    handshake_failure([], "extension we did not offer",
                      extensions="permessage-deflate; server_max_window_bits=16")
    handshake_failure([], "HTTP 403", status_line="HTTP/1.1 403 Forbidden")
    handshake_failure([], "exactly one Sec-WebSocket-Accept",
                      extra="Sec-WebSocket-Accept: x\r\n")
    handshake_failure([], "subprotocol we did not offer",
                      extra="Sec-WebSocket-Protocol: chat\r\n")


def generated(n):
    """echo-client's --size N message (generate() in echo-client.c)."""
    return bytes(ord("a") + (i * 7 + i // 1000) % 26 for i in range(n))


def test_echo_client_closes_first():
    """build/echo-client sends its messages (compressed, masked), checks
    our echoes and starts the close itself: its close frame is 1000, it
    waits for ours and then ends TCP."""
    for args, resp, pmd in [
            (["--no-deflate"], None, None),
            ([], "permessage-deflate; server_no_context_takeover", ServerPMD(server_no_ctx=True)),
            ([], "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
             ServerPMD(server_bits=10, client_bits=9))]:
        msgs = [b"hello", "é€𝄞".encode(), text_pattern(3000, 1), text_pattern(3000, 1)]
        srv = RawServer()
        holder = {}
        t = threading.Thread(target=lambda: holder.setdefault("r", run_client(
            [*args, "--size", "100000", srv.url] + [m.decode() for m in msgs], timeout=20)))
        t.start()
        try:
            srv.handshake(extensions=resp, pmd=pmd)
            for want in [generated(100000)] + msgs:
                op, got, z = srv.recv_message()
                eq((op, len(got)), (OP_TEXT, len(want)), "message from echo-client")
                check(got == want, f"{len(want)}B message from echo-client differs")
                check(z == (pmd is not None and len(got) >= 1000),
                      f"{len(got)}B message compressed: {z}")
                srv.send_message(OP_TEXT, got, compress=pmd is not None, fragments=2)
            srv.expect_close(1000)
            srv.send_frame(OP_CLOSE, struct.pack("!H", 1000))
            srv.expect_tcp_close(TCP_CLOSE_WITHIN)
        finally:
            srv.shutdown()
            t.join(25)
        check("r" in holder, "echo-client did not finish")
        rc, out, err = holder["r"]
        eq(rc, 0, f"echo-client exit status (stderr {err!r})")
        eq(out.splitlines(), ["100000 bytes echoed"] + [m.decode() for m in msgs],
           "echo-client output")


def test_subprotocols():
    """The server may pick one of the names we offered, exactly as we
    spelled it; anything else fails the handshake (RFC 6455 4.1)."""
    for chosen, ok in [("chat", True), ("v2.ringcast", True), ("superchat", False),
                       ("Chat", False), ("chat, v2.ringcast", False), ("", True)]:
        srv = RawServer()
        proc = Proc([CLIENT, "--no-deflate", "--protocols", "chat, v2.ringcast", srv.url],
                    name="conform_client")
        try:
            extra = f"Sec-WebSocket-Protocol: {chosen}\r\n" if chosen else ""
            hdrs = srv.handshake(extra=extra)
            eq(hdrs.get("sec-websocket-protocol"), "chat, v2.ringcast", "offer")
            if ok:
                proc.wait_output("(?m)^open ", key="stdout")
                srv.send_frame(OP_TEXT, b"proto")
                eq(srv.recv_message()[:2], (OP_TEXT, b"proto"), "echo")
                srv.close_handshake(1000)
            else:
                try:
                    f = srv.recv_frame(timeout=5)
                except Closed:
                    pass
                else:
                    raise Fail(f"client sent {f} after choosing {chosen!r}")
        finally:
            srv.shutdown()
        eq(proc.wait(10), 0, "client exit status")
        last = proc.text("stdout").splitlines()[-1]
        want = "close code=1000 reason=" if ok else \
            "close code=1006 reason=handshake failed: server chose a subprotocol we did not offer"
        eq(last, want, f"on_close after choosing {chosen!r}")


if __name__ == "__main__":
    build_client()
    run([test_messages_one_frame, test_messages_chunked_and_byte_by_byte,
         test_fragmented_with_pings, test_pings_answered, test_masked_server_frame,
         test_rsv_bits_without_negotiation, test_reserved_opcodes, test_fragmentation_errors,
         test_control_frame_errors, test_invalid_utf8, test_server_close,
         test_invalid_close_codes, test_client_close_after_tcp_close,
         test_deflate_context_takeover, test_deflate_no_context_takeover,
         test_deflate_server_window_bits, test_deflate_client_window_bits,
         test_deflate_errors, test_handshake_failures, test_echo_client_closes_first,
         test_subprotocols])
