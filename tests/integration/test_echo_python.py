"""build/echo-server driven by python3-websockets (Debian's, 10.4) and by a
hand-rolled raw socket client: sizes, fragmentation, pings inside fragmented
messages, protocol errors and their close codes, the close handshake, and
permessage-deflate with every window size and context-takeover mode."""
import asyncio
import functools
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory  # noqa: E402

from rawws import RawWS  # noqa: E402
from rctest import Fail, check, eq, run, start_echo_server  # noqa: E402

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]
OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

servers = {}


def server(kind="default"):
    """One echo-server per configuration, shared by the tests that use it."""
    if kind not in servers:
        env = {
            "default": {},
            "plain": {"ECHO_NO_DEFLATE": "1"},
            "small": {"ECHO_MAX_MESSAGE": "1000"},
            "takeover": {"ECHO_CONTEXT_TAKEOVER": "1"},
        }[kind]
        servers[kind] = start_echo_server(env)
    return servers[kind]


def url(kind="default"):
    return f"ws://127.0.0.1:{server(kind).port}/"


def utf8_text(n, rnd):
    """Exactly n bytes of UTF-8: random 1- to 4-byte characters, ASCII to pad."""
    alphabet = "abc xyz é€𝄞"
    chars, size = [], 0
    while size < n:
        ch = rnd.choice(alphabet)
        w = len(ch.encode())
        if size + w > n:
            ch, w = "z", 1
        chars.append(ch)
        size += w
    return "".join(chars)


@functools.lru_cache(maxsize=None)
def payload(n, text, seed=1):
    """Mixed data: compressible runs and random bytes (multi-byte UTF-8 for
    text, so a split code point crosses frames and buffers)."""
    rnd = random.Random(seed + n)
    if text and n:
        block = utf8_text(min(n, 8192), rnd)
        k = len(block.encode())
        return block * (n // k) + utf8_text(n % k, rnd)
    if text:
        return ""
    return rnd.randbytes(n // 2) + bytes(n - n // 2)


async def echo_sizes(uri, compression):
    async with websockets.connect(uri, max_size=None, compression=compression,
                                  ping_interval=None) as ws:
        for n in SIZES:
            for text in (False, True):
                data = payload(n, text)
                await ws.send(data)
                got = await asyncio.wait_for(ws.recv(), 20)
                eq(type(got), type(data), f"echo type for {n} {'text' if text else 'binary'}")
                if text:
                    eq(len(data.encode()), n, "test text size in bytes")
                check(got == data, f"{'text' if text else 'binary'} of {n} did not round-trip "
                                   f"(got {len(got)})")


async def test_sizes_uncompressed():
    await echo_sizes(url("plain"), None)


async def test_sizes_deflate():
    await echo_sizes(url(), "deflate")


async def test_fragmented():
    async with websockets.connect(url(), max_size=None, compression=None,
                                  ping_interval=None) as ws:
        for text in (False, True):
            whole = payload(200000, text, seed=7)
            parts = [whole[:1], whole[1:126], whole[126:70000], whole[70000:70000],
                     whole[70000:]]
            await ws.send(parts)
            got = await asyncio.wait_for(ws.recv(), 10)
            check(got == whole, f"fragmented {'text' if text else 'binary'} did not round-trip")


async def test_ping_inside_fragmented_message():
    async with websockets.connect(url(), max_size=None, ping_interval=None) as ws:
        pongs = []

        async def gen():
            for i in range(5):
                pongs.append(await ws.ping(f"p{i}".encode()))
                yield f"part{i} é "
        await ws.send(gen())
        got = await asyncio.wait_for(ws.recv(), 10)
        eq(got, "".join(f"part{i} é " for i in range(5)), "echo of a message with pings inside")
        await asyncio.wait_for(asyncio.gather(*pongs), 5)


def test_raw_fragments_with_pings():
    """Exact wire order: pongs come back at once, the echo after the last
    fragment; a code point split across fragments is fine."""
    ws = RawWS(server("plain").port)
    text = "a€b".encode()
    ws.send(OP_TEXT, text[:2], fin=False)
    ws.send(OP_PING, b"one")
    eq(ws.recv_frame(), (True, 0, OP_PONG, b"one"), "pong for the first ping")
    ws.send(OP_CONT, text[2:3], fin=False)
    ws.send(OP_PING, b"")
    eq(ws.recv_frame(), (True, 0, OP_PONG, b""), "pong for an empty ping")
    ws.send(OP_CONT, b"", fin=False)
    ws.send(OP_CONT, text[3:], fin=True)
    eq(ws.recv_frame(), (True, 0, OP_TEXT, text), "echo of the fragmented text")
    ws.send(OP_CLOSE, struct.pack("!H", 1000))
    ws.expect_close(1000)
    ws.expect_eof()
    ws.close()


def expect_failure(kind, frames, code, raw=None):
    ws = RawWS(server(kind).port)
    for f in frames:
        ws.send(*f[:2], **(f[2] if len(f) > 2 else {}))
    if raw:
        ws.send_raw(raw)
    ws.expect_close(code)
    ws.expect_eof()
    ws.close()


def test_invalid_utf8_1007():
    bad = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"ok\xf4\x90\x80\x80", b"\xe2\x82"]
    for b in bad:
        expect_failure("plain", [(OP_TEXT, b)], 1007)
    # split over fragments: bad continuation, and a truncated code point at fin
    expect_failure("plain", [(OP_TEXT, b"\xe2", {"fin": False}), (OP_CONT, b"\x28\xa1")], 1007)
    expect_failure("plain", [(OP_TEXT, b"ab\xe2\x82", {"fin": False}), (OP_CONT, b"")], 1007)
    # invalid close reason
    expect_failure("plain", [(OP_CLOSE, struct.pack("!H", 1000) + b"\xff")], 1007)


def test_protocol_errors_1002():
    cases = [
        [(3, b"")],                                    # reserved data opcode
        [(0xB, b"")],                                  # reserved control opcode
        [(OP_TEXT, b"x", {"rsv": 4})],                 # RSV1 without deflate
        [(OP_TEXT, b"x", {"rsv": 2})],                 # RSV2
        [(OP_BIN, b"x", {"rsv": 1})],                  # RSV3
        [(OP_CONT, b"x")],                             # continuation with no message
        [(OP_TEXT, b"a", {"fin": False}), (OP_TEXT, b"b")],  # new message mid-message
        [(OP_PING, b"x", {"fin": False})],             # fragmented control frame
        [(OP_PING, b"x" * 126)],                       # control payload > 125
        [(OP_TEXT, b"x", {"mask": False})],            # unmasked client frame
        [(OP_CLOSE, b"\x03")],                         # 1-byte close payload
        [(OP_CLOSE, struct.pack("!H", 1005))],         # code that must not be sent
        [(OP_CLOSE, struct.pack("!H", 999))],
    ]
    for frames in cases:
        expect_failure("plain", frames, 1002)


def test_oversized_1009():
    ws = RawWS(server("small").port)
    ws.send(OP_BIN, b"x" * 1000)
    eq(ws.recv_frame(), (True, 0, OP_BIN, b"x" * 1000), "a message at the limit")
    ws.send(OP_BIN, b"x" * 1001)
    ws.expect_close(1009)
    ws.expect_eof()
    # the length field alone must be enough: no payload follows
    expect_failure("small", [], 1009, raw=RawWS.frame(OP_BIN, b"", length=1 << 40))
    # the limit counts the whole message, across fragments
    expect_failure("small", [(OP_TEXT, b"a" * 600, {"fin": False}), (OP_CONT, b"b" * 600)], 1009)


async def test_oversized_compressed_1009():
    """A deflate bomb: a tiny compressed frame inflating past the limit."""
    async with websockets.connect(url("small"), compression="deflate",
                                  ping_interval=None) as ws:
        check(ws.response_headers.get("Sec-WebSocket-Extensions"), "deflate negotiated")
        await ws.send(b"y" * 999)
        eq(await asyncio.wait_for(ws.recv(), 5), b"y" * 999, "compressed echo under the limit")
        await ws.send(bytes(1 << 20))
        try:
            await asyncio.wait_for(ws.recv(), 5)
            raise Fail("the server echoed a message over its limit")
        except ConnectionClosed:
            pass
        eq(ws.close_code, 1009, "close code after a deflate bomb")


async def test_close_handshake():
    for code, reason in [(4000, "bye"), (1000, ""), (1001, "going away"), (3999, "é" * 40)]:
        async with websockets.connect(url(), ping_interval=None, close_timeout=5) as ws:
            await ws.send("before close")
            eq(await ws.recv(), "before close", "echo before closing")
            t0 = time.monotonic()
            await ws.close(code, reason)
            # websockets waits for the server to close TCP (up to close_timeout)
            check(time.monotonic() - t0 < 2, "the server did not close TCP promptly")
            eq(ws.close_code, code, "close code echoed by the server")


def test_close_raw_tcp_closed():
    ws = RawWS(server().port)
    ws.send(OP_CLOSE, struct.pack("!H", 4000) + b"bye")
    ws.expect_close(4000)
    ws.expect_eof()
    ws.close()
    # an empty close is answered with an empty close
    ws = RawWS(server().port)
    ws.send(OP_CLOSE, b"")
    eq(ws.recv_frame(), (True, 0, OP_CLOSE, b""), "answer to an empty close")
    ws.expect_eof()
    ws.close()


def deflate_params(headers):
    ext = headers.get("Sec-WebSocket-Extensions", "")
    check(ext.startswith("permessage-deflate"), f"permessage-deflate not negotiated: {ext!r}")
    params = {}
    for p in ext.split(";")[1:]:
        k, _, v = p.strip().partition("=")
        params[k] = v.strip('"') if v else True
    return params


async def deflate_round_trips(ws, n=6):
    # repeated messages make context takeover matter; 300 KiB crosses the
    # largest window many times; a random message is sent uncompressed or
    # barely compressed
    msgs = [payload(3000, True, seed=3)] * 3 + [payload(300000, False, seed=4),
                                                 os.urandom(5000), "short"]
    for m in msgs[:n]:
        await ws.send(m)
        got = await asyncio.wait_for(ws.recv(), 10)
        check(got == m, f"message of {len(m)} did not round-trip through deflate")


async def test_deflate_window_bits():
    # server_max_window_bits=8 too: zlib cannot deflate with a 256-byte
    # window, so the server must send those messages uncompressed (Python's
    # zlib refuses client_max_window_bits=8 itself, so that is not offered)
    combos = [(8, 15)] + [c for b in range(9, 16) for c in [(b, b), (b, 15), (15, b)]]
    # with the server keeping its context too: a window larger than
    # negotiated would show as back-references our peer cannot follow
    for kind, (server_bits, client_bits) in [(k, c) for k in ("default", "takeover")
                                             for c in combos]:
        ext = ClientPerMessageDeflateFactory(server_max_window_bits=server_bits,
                                             client_max_window_bits=client_bits)
        async with websockets.connect(url(kind), extensions=[ext], max_size=None,
                                      ping_interval=None) as ws:
            p = deflate_params(ws.response_headers)
            eq(int(p.get("server_max_window_bits", 15)), server_bits,
               "server_max_window_bits answered")
            check(int(p.get("client_max_window_bits", 15)) <= client_bits,
                  f"client_max_window_bits {p} above our offer {client_bits}")
            await deflate_round_trips(ws)


async def test_deflate_context_takeover():
    for kind in ("default", "takeover"):
        for snct in (False, True):
            for cnct in (False, True):
                ext = ClientPerMessageDeflateFactory(server_no_context_takeover=snct,
                                                     client_no_context_takeover=cnct)
                async with websockets.connect(url(kind), extensions=[ext], max_size=None,
                                              ping_interval=None) as ws:
                    p = deflate_params(ws.response_headers)
                    want_snct = snct or kind == "default"
                    eq("server_no_context_takeover" in p, want_snct,
                       f"server_no_context_takeover in {p} ({kind}, offered {snct})")
                    if cnct:
                        check("client_no_context_takeover" in p,
                              f"client_no_context_takeover not echoed: {p}")
                    await deflate_round_trips(ws)


async def test_deflate_large():
    async with websockets.connect(url("takeover"), compression="deflate", max_size=None,
                                  ping_interval=None) as ws:
        for n in (65536, 1 << 20, 16 << 20):
            data = payload(n, False)
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), 30)
            check(got == data, f"compressed binary of {n} did not round-trip")


def test_raw_byte_by_byte():
    """Every frame header and payload split at every byte (TCP_NODELAY, one
    send per byte): headers of 2, 4 and 10 bytes, masks across the splits."""
    import socket
    ws = RawWS(server("plain").port)
    ws.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for op, data in [(OP_TEXT, "é€𝄞 split".encode()), (OP_BIN, bytes(range(256)) * 300),
                     (OP_BIN, b"")]:
        wire = RawWS.frame(op, data)
        for i in range(len(wire)):
            ws.send_raw(wire[i:i + 1])
            if i % 4096 == 0:
                time.sleep(0)  # let a few reach the server one by one
        eq(ws.recv_frame(), (True, 0, op, data), f"echo of a {len(data)}-byte frame sent bytewise")
    ping = RawWS.frame(OP_PING, b"abc")
    for i in range(len(ping)):
        ws.send_raw(ping[i:i + 1])
    eq(ws.recv_frame(), (True, 0, OP_PONG, b"abc"), "pong for a bytewise ping")
    ws.send(OP_CLOSE, struct.pack("!H", 1000))
    ws.expect_close(1000)
    ws.expect_eof()
    ws.close()


async def test_fragmented_deflate_with_pings():
    """websockets compresses a fragmented message as one deflate stream
    (RSV1 on the first frame only); pings go between the fragments."""
    for kind in ("default", "takeover"):
        async with websockets.connect(url(kind), compression="deflate", max_size=None,
                                      ping_interval=None) as ws:
            pongs = []
            parts = [payload(n, True, seed=n) for n in (10, 70000, 0, 300, 200000)]

            async def gen():
                for i, part in enumerate(parts):
                    pongs.append(await ws.ping(str(i)))
                    yield part
            for _ in range(3):
                await ws.send(gen())
                got = await asyncio.wait_for(ws.recv(), 10)
                check(got == "".join(parts), f"compressed fragmented message ({kind})")
            await asyncio.wait_for(asyncio.gather(*pongs), 5)


async def test_many_connections():
    """100 concurrent connections, each echoing interleaved messages."""
    async def one(i):
        comp = "deflate" if i % 2 else None
        async with websockets.connect(url(), compression=comp, max_size=None,
                                      ping_interval=None) as ws:
            msgs = [payload(1 + 997 * j * i % 70000, bool(j % 2), seed=i) for j in range(10)]
            for m in msgs:
                await ws.send(m)
            for m in msgs:
                got = await asyncio.wait_for(ws.recv(), 20)
                check(got == m, f"connection {i}: echo out of order or corrupt")
    await asyncio.gather(*(one(i) for i in range(100)))


def test_raw_early_frames_and_control_limits():
    """Frames sent right behind the upgrade request, in the same packet, are
    not lost; a 125-byte ping (the largest) is answered in full."""
    early = RawWS.frame(OP_TEXT, b"early one") + RawWS.frame(OP_BIN, b"\x00two")
    ws = RawWS(server("plain").port, early=early)
    eq(ws.recv_frame(), (True, 0, OP_TEXT, b"early one"), "first early frame")
    eq(ws.recv_frame(), (True, 0, OP_BIN, b"\x00two"), "second early frame")
    ws.send(OP_PING, b"p" * 125)
    eq(ws.recv_frame(), (True, 0, OP_PONG, b"p" * 125), "pong for a 125-byte ping")
    ws.send(OP_PONG, b"unsolicited")  # must be ignored
    ws.send(OP_TEXT, b"after pong")
    eq(ws.recv_frame(), (True, 0, OP_TEXT, b"after pong"), "echo after an unsolicited pong")
    ws.send(OP_CLOSE, struct.pack("!H", 1000))
    ws.expect_close(1000)
    ws.expect_eof()
    ws.close()


async def test_shutdown_drains_with_1001():
    """SIGTERM: every open connection gets a 1001 close and the server exits 0."""
    p = start_echo_server()
    try:
        conns = [await websockets.connect(f"ws://127.0.0.1:{p.port}/", ping_interval=None)
                 for _ in range(5)]
        for ws in conns:
            await ws.send("still here")
            eq(await ws.recv(), "still here", "echo before shutdown")
        t0 = time.monotonic()
        p.popen.terminate()
        for ws in conns:
            try:
                await asyncio.wait_for(ws.recv(), 5)
                raise Fail("a message arrived instead of the close")
            except ConnectionClosed:
                pass
            eq(ws.close_code, 1001, "close code on server shutdown")
        await asyncio.get_running_loop().run_in_executor(None, p.stop)
        check(time.monotonic() - t0 < 3, "shutdown took too long")
    finally:
        if p.alive():
            p.popen.kill()


def test_server_exits_cleanly():
    for kind in list(servers):
        p = servers.pop(kind)
        check(p.alive(), f"echo-server ({kind}) died during the tests: {p.text()[-2000:]!r}")
        p.stop()


if __name__ == "__main__":
    run([test_sizes_uncompressed, test_sizes_deflate, test_fragmented,
         test_ping_inside_fragmented_message, test_raw_fragments_with_pings,
         test_invalid_utf8_1007, test_protocol_errors_1002, test_oversized_1009,
         test_oversized_compressed_1009, test_close_handshake, test_close_raw_tcp_closed,
         test_deflate_window_bits, test_deflate_context_takeover, test_deflate_large,
         test_raw_byte_by_byte, test_fragmented_deflate_with_pings, test_many_connections,
         test_raw_early_frames_and_control_limits, test_shutdown_drains_with_1001,
         test_server_exits_cleanly])
