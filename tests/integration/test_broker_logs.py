"""Logs an operator can read: WebSocket connections opened and closed at
debug (peer, endpoint, close code, deliveries, duration), refused handshakes
and HTTP errors at info with the reason, slow consumers at warn, an optional
access log, log_format = json, peer text escaped, and a rate limit that
turns a flood into one "N log lines suppressed" line."""
import asyncio
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from broker import RawSocketWS  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402


def raw(b, data):
    s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
    try:
        s.sendall(data)
        while s.recv(65536):
            pass
    finally:
        s.close()


def log_lines(b):
    return [l for l in b.log().splitlines() if l.strip()]


async def test_debug_json_connection_lines():
    b = broker.start("--log-level", "debug", "--log-format", "json")
    try:
        ws = await b.connect("/sub/logs")
        wait_until(lambda: b.stats()["subscriptions"] == 1, 10, "subscribed")
        b.publish("logs", "one")
        eq(await asyncio.wait_for(ws.recv(), 10), "one", "delivery")
        await ws.close()
        wait_until(lambda: "close " in b.log(), 10, "the close line")
        objs = [json.loads(l) for l in log_lines(b)]  # every line is JSON
        msgs = [(o["level"], o["msg"]) for o in objs]
        check(all(set(o) == {"time", "level", "msg"} for o in objs), f"keys: {objs[:2]}")
        check(any(lv == "debug" and re.match(r"open 127\.0\.0\.1:\d+ /sub/logs", m)
                  for lv, m in msgs), f"open line: {msgs}")
        check(any(lv == "debug" and re.match(
            r"close 127\.0\.0\.1:\d+ /sub/logs: code 1000, 1 messages / \d+ bytes delivered, "
            r"\d+\.\d{3} s", m) for lv, m in msgs), f"close line: {msgs}")
    finally:
        b.stop()


async def test_info_refusals_and_access_log():
    b = broker.start("--access-log", "on")
    try:
        raw(b, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n")
        raw(b, b"GET /no\"pe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw(b, b"GET /a\x1b HTTP/1.1\r\nHost: x\r\n\r\n")  # the parser refuses it
        b.http("GET", "/healthz")
        wait_until(lambda: "access" in b.log() and "/healthz" in b.log(), 10, "access line")
        text = b.log()
        check(re.search(r" info refused 127\.0\.0\.1:\d+: 426 Upgrade Required: \S", text),
              f"refused handshake with reason: {text}")
        check(re.search(r' info http 127\.0\.0\.1:\d+ GET /no\\x22pe: 404 not found', text),
              f"HTTP error with the path escaped: {text}")
        check(re.search(r" info refused 127\.0\.0\.1:\d+: 400 Bad Request: malformed request",
                        text), f"malformed request: {text}")
        check(re.search(r" info access 127\.0\.0\.1:\d+ GET /healthz 200 3\n", text),
              f"access line: {text}")
        check(" debug " not in text, "no debug lines at info")
        ws = await b.connect("/sub/x")
        await ws.close()
        check("open " not in b.log(), "connections are debug only")
    finally:
        b.stop()


def test_slow_consumer_warns():
    b = broker.start("--max-backpressure", "64K", "--slow-consumer-policy", "close")
    try:
        slow = RawSocketWS(b.port, "/sub/slow", rcvbuf=4096)
        wait_until(lambda: b.stats()["subscriptions"] == 1, 10, "subscribed")
        body = "x" * 16384
        deadline = time.monotonic() + 30
        while b.stats()["slow_consumer_closes"] == 0:
            check(time.monotonic() < deadline, "slow consumer closed in time")
            b.publish("slow", body)
        wait_until(lambda: re.search(r" warn slow consumer 127\.0\.0\.1:\d+ on /sub/, topic "
                                     r"'slow': \d+ bytes queued, over max_backpressure; "
                                     r"closing with 1013", b.log()), 10, "the warn line")
        eq(len(re.findall("slow consumer", b.log())), 1, "one line per slow consumer")
        slow.close()
    finally:
        b.stop()


def test_rate_limit():
    """300 errors at log_rate 5: about the burst (50 lines) gets through and
    the rest is counted and reported once lines flow again."""
    b = broker.start("--log-rate", "5")
    sent = 0

    def accounted():
        text = b.log()
        held = re.findall(r" warn (\d+) log lines suppressed \(over 5 per second\)", text)
        return len(re.findall(r"GET /missing: 404", text)) + sum(map(int, held))
    try:
        for _ in range(300):
            b.http("GET", "/missing")
            sent += 1
        n = len(re.findall(r"GET /missing: 404", b.log()))
        check(40 <= n < 100, f"{n} of 300 error lines got through")

        def all_reported():
            nonlocal sent
            b.http("GET", "/missing")  # a line to carry the report
            sent += 1
            return accounted() >= 300
        wait_until(all_reported, 15, "the suppressed lines reported", interval=0.25)
        # Held-back lines are counted, never lost from the count.
        check(accounted() <= sent, f"accounted {accounted()} of {sent}")
    finally:
        b.stop()


run([test_debug_json_connection_lines, test_info_refusals_and_access_log,
     test_slow_consumer_warns, test_rate_limit])
