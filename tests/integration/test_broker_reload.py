"""SIGHUP applies what it says it applied: the WebSocket and HTTP limits,
the timeouts and compression reach every worker thread at run time
(timers already armed move to the new durations), keys that need a restart
say so; and SIGHUP and SIGTERM under load from several threads end in a
clean drain (exit 0, every connection closed with 1001)."""
import asyncio
import os
import re
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from broker import RawSocketWS, close_code_of, write_config  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402

BEFORE = {"server": {"compression": "on", "backlog": 1024},
          "limits": {"max_message_size": "64K", "max_http_head": "8K"},
          "timeouts": {"handshake_timeout": 30, "idle_timeout": 30, "pong_timeout": 30}}
AFTER = {"server": {"compression": "off", "backlog": 512},
         "limits": {"max_message_size": "1K", "max_http_head": "1K"},
         "timeouts": {"handshake_timeout": 0.5, "idle_timeout": 0.3, "pong_timeout": 0.5}}


def sighup(b, cfg, sections):
    """Rewrites the file, sends SIGHUP, returns the 'reloaded' log line."""
    write_config(cfg, sections)
    mark = len(b.log())
    b.signal(signal.SIGHUP)
    return wait_until(lambda: re.search(r"reloaded[^\n]*", b.log()[mark:]), 10,
                      "the reload log line").group(0)


def tcp_closed_within(sock, seconds):
    """True when the server closes (EOF or reset) within seconds; data is read
    and dropped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False


def retry(what, attempt, timeout=5):
    """Each loop takes the new options at its next turn and a new connection
    may land on either thread: tries attempt() until it returns true."""
    return wait_until(attempt, timeout, what, interval=0.05)


async def test_sighup_applies_limits_timeouts_compression():
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "ringcast.ini")
        write_config(cfg, BEFORE)
        b = broker.start(config=cfg, threads=2)
        try:
            # Opened before the reload: its idle timer is armed for 30 s.
            quiet = [RawSocketWS(b.port, "/sub/q") for _ in range(4)]
            ws = await b.connect("/sub/z", compression="deflate")
            check("permessage-deflate" in ws.response_headers.get("sec-websocket-extensions", ""),
                  "compression is negotiated before the reload")
            await ws.close()

            line = sighup(b, cfg, AFTER)
            for key in ("compression", "max_message_size", "max_http_head",
                        "handshake_timeout", "idle_timeout", "pong_timeout"):
                m = re.search(key + r" [^,]* -> [^,]*", line)
                check(m and "restart" not in m.group(0), f"{key} applied at run time: {line!r}")
            check(re.search(r"backlog 1024 -> 512 \(needs a restart\)", line),
                  f"backlog needs a restart: {line!r}")

            # idle_timeout 0.3 s: the connections opened 30 s-timers ago get
            # their ping now, and pong_timeout 0.5 s closes them unanswered.
            for q in quiet:
                op, _ = await asyncio.to_thread(q.recv_frame, 5)
                eq(op, 9, "a ping after the new idle_timeout (not the old 30 s)")
                check(await asyncio.to_thread(tcp_closed_within, q.s, 5),
                      "closed after the new pong_timeout (not the old 30 s)")
                q.close()

            # max_message_size 1K: a 2000-byte message is now too big (1009).
            async def too_big():
                pub = await b.connect("/pub/z")
                await pub.send("x" * 2000)
                return await close_code_of(pub, 5) == 1009
            for _ in range(6):  # over both threads
                check(await asyncio.wait_for(too_big(), 10),
                      "1009 for a message over the new max_message_size")

            # compression off: new connections are not offered deflate.
            async def no_deflate():
                w = await b.connect("/sub/z", compression="deflate")
                ext = w.response_headers.get("sec-websocket-extensions")
                await w.close()
                return ext is None
            for _ in range(6):
                check(await no_deflate(), "no permessage-deflate after compression = off")

            # max_http_head 1K: a 2 KB head gets 431.
            for _ in range(6):
                st, _, _ = b.raw_request(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " +
                                         b"p" * 2000 + b"\r\n\r\n")
                eq(st, 431, "431 for a head over the new max_http_head")

            # handshake_timeout 0.5 s: a silent TCP connection is dropped.
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
                check(await asyncio.to_thread(tcp_closed_within, s, 5),
                      "silent connection closed after the new handshake_timeout")
                s.close()
            check(b.alive(), "broker alive after the reload")
        finally:
            b.stop()


async def test_sighup_and_sigterm_under_load():
    """Publishers and subscribers on both threads; reloads flip the limits
    while messages flow, then SIGTERM drains it all (ThreadSanitizer runs
    this one: reload, cross-thread fanout and drain at once)."""
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "ringcast.ini")
        write_config(cfg, BEFORE)
        b = broker.start(config=cfg, threads=2)
        try:
            subs = [await b.connect("/sub/load", compression=c)
                    for c in ("deflate", None, "deflate", None)]
            pubs = [await b.connect("/pub/load") for _ in range(4)]
            stop = asyncio.Event()
            sent = [0]

            async def publish(ws):
                for i in range(5000):  # bounded: 5000 each at most
                    if stop.is_set():
                        return
                    await ws.send(f"m{i}")
                    sent[0] += 1
                    if i % 50 == 0:
                        await asyncio.sleep(0)

            async def drain(ws):
                n = 0
                try:
                    while True:
                        await ws.recv()
                        n += 1
                except Exception:  # closed by the drain below: counted
                    return n
            readers = [asyncio.create_task(drain(s)) for s in subs]
            writers = [asyncio.create_task(publish(p)) for p in pubs]
            for i in range(4):
                sighup(b, cfg, AFTER if i % 2 == 0 else BEFORE)
                await asyncio.sleep(0.05)
            check(b.alive(), "alive after reloads under load")
            b.signal(signal.SIGTERM)
            stop.set()
            await asyncio.gather(*writers, return_exceptions=True)
            got = await asyncio.wait_for(asyncio.gather(*readers), 20)
            eq(b.proc.wait(20), 0, "exit status after SIGTERM under load")
            check(sent[0] > 0 and all(n > 0 for n in got),
                  f"messages flowed during the reloads: sent {sent[0]}, got {got}")
            for s in subs:
                rc = s.close_rcvd.code if s.close_rcvd else None
                eq(rc, 1001, "subscriber close code after SIGTERM")
        finally:
            if b.alive():
                b.stop()


if __name__ == "__main__":
    run([
        test_sighup_applies_limits_timeouts_compression,
        test_sighup_and_sigterm_under_load,
    ], timeout=90)
