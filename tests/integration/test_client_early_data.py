"""Frames that arrive together with the 101: the C client against a server
that writes its 101 Switching Protocols and the first frames in ONE write
(so they reach the client in one read, up to the size of a receive buffer),
and against one that writes everything, the 101 included, one byte per
write.  The client once copied whatever followed the 101 into a fixed
4 KiB stack buffer: more than 4 KiB of early frames overflowed its stack
(AddressSanitizer: stack-buffer-overflow in rc__client_feed), and without
the sanitizer more than ~8 KiB failed the handshake.

Conformance part: tests/support/conform_client.c (echoes every message and
prints each event, see test_conformance_client.py) with messages of 0 bytes
to 16 MiB, text and binary, plain and permessage-deflate, one frame or
many fragments, many small messages, a close frame among the early bytes,
and both directions of the close handshake after large messages.

Tools part (the proof the issue asks for): build/echo-client,
build/ringcast-sub and build/ringcast-bench against a server that sends
1 MiB of frames with its 101: every message arrives, the close is clean.
"""
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))

import test_conformance_client as tcc  # noqa: E402
from rctest import BUILD, Proc, check, eq, run, run_client  # noqa: E402
from rawserver import RawServer, ServerPMD  # noqa: E402
from wsconform import (OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, frame,  # noqa: E402
                       pattern, text_pattern)

# Generous per-frame deadline for the 16 MiB cases under the sanitizers on
# a loaded machine; a working client needs a fraction of it.
BIG_TIMEOUT = 90
DEFLATE = "permessage-deflate"
SIZES = [0, 1, 125, 126, 4000, 4097, 8200, 65535, 65536, 1 << 20, 16 << 20]


def binary(n, seed):
    """n bytes that are not all alike, fast for 16 MiB (pattern() repeated
    with a period that is not a power of two)."""
    base = pattern(min(n, 65537), seed)
    return (base * (n // len(base) + 1))[:n] if n else b""


def text(n, seed):
    return text_pattern(n, seed)


def expect_echo(s, op, payload, timeout=BIG_TIMEOUT):
    """The client reports the message (length and CRC) and echoes it."""
    got_op, got, _ = s.srv.recv_message(timeout)
    eq((got_op, len(got)), (op, len(payload)), "echo opcode and length")
    check(got == payload, f"echo of {len(payload)} bytes differs")
    want = f"message op={op} len={len(payload)} crc={zlib.crc32(payload):08x}"
    s.wait_event("^" + re.escape(want) + "$", timeout=timeout)


def close_by(s, who):
    """Ends a session with the close handshake started by `who`."""
    if who == "server":
        tcc.finish(s)
        return
    # the client closes after its Nth echo (--close-after): its close frame
    # follows the echo; we answer it and it ends TCP
    s.srv.expect_close(1000, b"client done", timeout=BIG_TIMEOUT)
    s.srv.send_frame(OP_CLOSE, struct.pack("!H", 1000) + b"client done")
    s.srv.expect_tcp_close(tcc.TCP_CLOSE_WITHIN)
    s.end()
    eq(s.events()[-1], "close code=1000 reason=client done", "on_close report")


def session(msgs, compress=False, chunk=None, close="server", args=(), between=b"",
            tail=b""):
    """A client whose 101 arrives with `msgs` ((opcode, payload, fragments)
    each) behind it; checks every echo and closes from `close`'s side."""
    # The server here takes its time with 16 MiB echoes before it answers
    # a close; the client's close timer must not count that as silence.
    args = list(args) + ["--close-timeout", "60000"] + ([] if compress else ["--no-deflate"])
    if close == "client":
        args += ["--close-after", str(len(msgs))]

    def early(srv):
        return b"".join(srv.message(op, p, compress=compress, fragments=f, between=between)
                        for op, p, f in msgs) + tail

    s = tcc.Session(args, extensions=DEFLATE if compress else None,
                    pmd=ServerPMD() if compress else None, early=early, chunk=chunk)
    try:
        for op, payload, _ in msgs:
            expect_echo(s, op, payload)
        if not tail:  # else the caller goes on
            close_by(s, close)
    except BaseException:
        s.end(check_exit=False)
        raise
    finally:
        if not tail:
            s.srv.shutdown()
    return s


# -- the 101 and the first frames in one write ------------------------------------

def test_one_write_plain():
    for i, n in enumerate(SIZES):
        session([(OP_TEXT, text(n, i), 1), (OP_BINARY, binary(n, i), 1)],
                close="client" if i % 2 else "server")


def test_one_write_deflate():
    for i, n in enumerate(SIZES):
        session([(OP_TEXT, text(n, i), 1), (OP_BINARY, binary(n, i), 1)], compress=True,
                close="server" if i % 2 else "client")


def test_one_write_fragments():
    """Large messages in many fragments with pings between them (answered
    in order), plain and compressed."""
    ping = frame(OP_PING, b"between", mask=False)
    for compress in (False, True):
        s = session([(OP_TEXT, text(1 << 20, 1), 1000), (OP_BINARY, binary(300000, 2), 4096)],
                    compress=compress, between=ping, close="client")
        pings = [e for e in s.events() if e.startswith("ping ")]
        eq(len(pings), 999 + 4095, "pings between fragments reported")
    session([(OP_BINARY, binary(16 << 20, 3), 256)], compress=True, close="server")


def test_one_write_many_messages():
    """2,000 small messages behind the 101 (about 40 KiB)."""
    msgs = [(OP_TEXT if i % 2 else OP_BINARY, text(i % 37, i), 1) for i in range(2000)]
    session(msgs, close="client")
    session(msgs[:500], compress=True, close="server")


def test_one_write_with_close():
    """A close frame among the early bytes: the messages before it are
    delivered, the close is echoed, nothing after it is read."""
    tail = frame(OP_CLOSE, struct.pack("!H", 1001) + b"early bye", mask=False) + \
        frame(OP_TEXT, b"after the close", mask=False)
    for compress in (False, True):
        s = session([(OP_BINARY, binary(200000, 4), 1), (OP_TEXT, text(70000, 5), 3)],
                    compress=compress, tail=tail)
        try:
            s.srv.expect_close(1001, b"early bye", timeout=BIG_TIMEOUT)
            s.srv.expect_tcp_close(tcc.TCP_CLOSE_WITHIN)
        finally:
            s.srv.shutdown()
        s.end()
        eq(s.events()[-1], "close code=1001 reason=early bye", "on_close report")
        check(not any("len=15 " in e for e in s.events()), "a message after the close")


# -- everything one byte per write --------------------------------------------------

def test_byte_by_byte():
    """The 101 and the frames behind it, one byte per write."""
    ping = frame(OP_PING, b"p", mask=False)
    msgs = [(OP_TEXT, b"", 1), (OP_BINARY, binary(1, 1), 1), (OP_TEXT, text(125, 2), 1),
            (OP_BINARY, binary(126, 3), 1), (OP_TEXT, "é€𝄞 ok".encode() * 40, 5),
            (OP_BINARY, binary(65536, 4), 1)]
    session(msgs, chunk=1, between=ping, close="client")
    session(msgs[:5] + [(OP_TEXT, text(20000, 5), 3)], compress=True, chunk=1,
            between=ping, close="server")


def test_head_in_pieces():
    """The head cut across reads with frames behind its last piece (the
    head is gathered, the frames are not), and a head over max_http_head
    (8 KiB) fails the handshake with a reason."""
    msgs = [(OP_BINARY, binary(200000, 6), 1), (OP_TEXT, text(5000, 7), 2)]
    for chunk in (50, 4096):
        session(msgs, chunk=chunk, close="client")
    tcc.handshake_failure([], "response head too large", extra="X-Pad: " + "a" * 9000 + "\r\n")
    # just under the limit is fine
    s = tcc.Session(["--no-deflate"], extra="X-Pad: " + "a" * 7900 + "\r\n",
                    early=lambda srv: frame(OP_TEXT, b"ok", mask=False))
    try:
        expect_echo(s, OP_TEXT, b"ok")
        tcc.finish(s)
    finally:
        s.srv.shutdown()


# -- the tools: 1 MiB of frames with the 101 -------------------------------------

MIB = 1 << 20


def generated(n):
    return tcc.generated(n)


def test_echo_client_tool():
    """echo-client --size 1 MiB: the echo of its message (known in
    advance) arrives with the 101, in 16 frames, plain and compressed."""
    msg = bytes(b for b in generated(MIB))
    for args, ext, pmd in [(["--no-deflate"], None, None), ([], DEFLATE, ServerPMD())]:
        srv = RawServer()
        holder = {}
        t = threading.Thread(target=lambda: holder.setdefault("r", run_client(
            [*args, "--size", str(MIB), srv.url], timeout=60)))
        t.start()
        try:
            srv.handshake(extensions=ext, pmd=pmd, early=lambda s: s.message(
                OP_TEXT, msg, compress=pmd is not None, fragments=16))
            op, got, _ = srv.recv_message(BIG_TIMEOUT)
            eq((op, got == msg), (OP_TEXT, True), "echo-client's own message")
            srv.expect_close(1000, timeout=BIG_TIMEOUT)
            srv.send_frame(OP_CLOSE, struct.pack("!H", 1000))
            srv.expect_tcp_close(tcc.TCP_CLOSE_WITHIN)
        finally:
            srv.shutdown()
            t.join(70)
        check("r" in holder, "echo-client did not finish")
        rc, out, err = holder["r"]
        eq((rc, out), (0, f"{MIB} bytes echoed\n"), f"echo-client result (stderr {err!r})")


def socks_proxy(srv, connect_reply, chunk):
    """Plays a SOCKS5 proxy with username/password on srv's connection (the
    proxy and the server are one here); returns the CONNECT request."""
    srv.accept()
    deadline = time.monotonic() + srv.timeout
    eq(srv._take(4, deadline), b"\x05\x02\x00\x02", "method offer")
    srv.send(b"\x05\x02", chunk)
    ver, ulen = srv._take(2, deadline)
    user = srv._take(ulen, deadline)
    pw = srv._take(srv._take(1, deadline)[0], deadline)
    eq((ver, user, pw), (1, b"u", b"pw"), "username/password")
    srv.send(b"\x01\x00", chunk)
    req = srv._take(5, deadline)
    req += srv._take(req[4] + 2, deadline)
    srv.send(connect_reply, chunk)
    return req


def socks_echo_client(srv, proxy_url=None):
    holder = {}
    t = threading.Thread(target=lambda: holder.setdefault("r", run_client(
        ["--no-deflate", "--socks5", proxy_url or f"socks5://u:pw@127.0.0.1:{srv.port}",
         "--size", "100000", "ws://target.example:9000/x"], timeout=30)))
    t.start()
    return t, holder


def test_socks5_replies():
    """Each proxy reply in one write or byte by byte, with each address
    type, then the 101 with the echo behind it; and the replies that must
    fail: an unknown address type, a refusal cut short after 2 bytes."""
    msg = generated(100000)
    replies = [b"\x05\x00\x00\x01\x7f\x00\x00\x01\x23\x28",
               b"\x05\x00\x00\x03\x0dproxy.example\x23\x28",
               b"\x05\x00\x00\x04" + b"\x00" * 15 + b"\x01\x23\x28"]
    for reply in replies:
        for chunk in (None, 1):
            srv = RawServer()
            t, holder = socks_echo_client(srv)
            try:
                req = socks_proxy(srv, reply, chunk)
                eq(req, b"\x05\x01\x00\x03\x0etarget.example\x23\x28", "CONNECT request")
                srv.handshake(early=lambda s: s.message(OP_TEXT, msg, fragments=3),
                              chunk=chunk)
                eq(srv.recv_message(BIG_TIMEOUT)[:2], (OP_TEXT, msg), "echo-client's message")
                srv.expect_close(1000)
                srv.send_frame(OP_CLOSE, struct.pack("!H", 1000))
                srv.expect_tcp_close(tcc.TCP_CLOSE_WITHIN)
            finally:
                srv.shutdown()
                t.join(40)
            eq(holder["r"][:2], (0, "100000 bytes echoed\n"), f"echo-client ({holder['r'][2]!r})")
    for reply, words in [(b"\x05\x00\x00\x09\x00\x00\x00", "unknown address type 9"),
                         (b"\x05\x05", "connection refused")]:
        srv = RawServer()
        t, holder = socks_echo_client(srv)
        try:
            socks_proxy(srv, reply, None)  # and the connection stays open
            t.join(20)
        finally:
            srv.shutdown()
            t.join(20)
        rc, out, err = holder["r"]
        check(rc != 0 and words in err, f"echo-client must fail saying {words!r}: {err!r}")


def json_frame(obj):
    return frame(OP_TEXT, json.dumps(obj, separators=(",", ":")).encode(), mask=False)


def test_ringcast_sub_tool():
    """ringcast-sub, subscribed to t, loses its connection; the server it
    reconnects to writes its 101, the welcome and 1 MiB of msg frames for
    t in one write (as a broker replaying history would, in a hurry):
    every message is printed, then the tool closes cleanly (--count)."""
    n = 64
    datas = [f"{i:04d}:" + "x" * (16 * 1024 - 5) for i in range(1, n + 1)]
    welcome = {"op": "welcome", "version": "test", "epoch": "e1"}
    first = RawServer()
    proc = Proc([os.path.join(BUILD, "ringcast-sub"), "--count", str(n), "--timeout", "60",
                 first.url, "t"], name="ringcast-sub")
    second = RawServer(listener=first)
    try:
        first.handshake(early=lambda s: json_frame(welcome))
        sub = json.loads(first.recv_message()[1])
        eq((sub["op"], sub["topic"]), ("sub", "t"), "subscription")
        first.send(json_frame({"op": "ack", "id": sub["id"], "seq": 0, "epoch": "e1"}))
        first.sock.close()  # the connection is lost; the tool reconnects
        first.sock = None
        second.handshake(early=lambda s: json_frame(welcome) + b"".join(
            json_frame({"op": "msg", "topic": "t", "seq": i + 1, "data": d})
            for i, d in enumerate(datas)))
        resub = json.loads(second.recv_message()[1])
        eq((resub["op"], resub["topic"]), ("sub", "t"), "resubscription")
        second.send(json_frame({"op": "ack", "id": resub["id"], "seq": n, "epoch": "e1"}))
        second.expect_close(1000, timeout=BIG_TIMEOUT)
        second.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        second.expect_tcp_close(tcc.TCP_CLOSE_WITHIN)
        eq(proc.wait(30), 0, f"ringcast-sub exit status (stderr {proc.text()[-800:]!r})")
    finally:
        second.shutdown()
        first.shutdown()
    eq(proc.text("stdout").splitlines(), datas, "every message printed once, in order")


def test_ringcast_bench_tool():
    """ringcast-bench connect, 2 connections; each gets its 101, 16
    binary messages of 64 KiB and a close frame in one write: all 32
    messages are counted, no connection fails, each echoes the close."""
    conns, per = 2, 16
    lead = RawServer()
    servers = [lead] + [RawServer(listener=lead) for _ in range(conns - 1)]
    errors = []

    def serve(srv):
        try:
            srv.handshake(early=lambda s: b"".join(
                frame(OP_BINARY, binary(64 * 1024, i), mask=False) for i in range(per)) +
                frame(OP_CLOSE, struct.pack("!H", 1000), mask=False))
            srv.expect_close(1000, timeout=BIG_TIMEOUT)
            srv.expect_tcp_close(BIG_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=serve, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    try:
        r = subprocess.run([os.path.join(BUILD, "ringcast-bench"), "connect", "--url",
                            f"ws://127.0.0.1:{lead.port}", "--conns", str(conns),
                            "--duration", "1", "--path", "/early", "--json", "-", "--quiet"],
                           capture_output=True, text=True, timeout=120)
        for t in threads:
            t.join(BIG_TIMEOUT + 10)
    finally:
        for s in servers:
            s.shutdown()
    eq(errors, [], "server side of each connection")
    eq(r.returncode, 0, f"ringcast-bench exit status (stderr {r.stderr[-800:]!r})")
    res, _ = json.JSONDecoder().raw_decode(r.stdout[r.stdout.index("{"):])
    eq((res["connections"], res["connections_failed"], res["delivered"]),
       (conns, 0, conns * per), "connections and messages counted")


if __name__ == "__main__":
    tcc.build_client()
    run([test_one_write_plain, test_one_write_deflate, test_one_write_fragments,
         test_one_write_many_messages, test_one_write_with_close, test_byte_by_byte,
         test_head_in_pieces,
         test_socks5_replies, test_echo_client_tool, test_ringcast_sub_tool,
         test_ringcast_bench_tool])
