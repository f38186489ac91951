"""The smaller promises of PROTOCOL.md, each as the broker first broke it:
a JSON client that keeps flooding past json_burst is closed with 1008 (even
when the trickle of refilled tokens lets a few commands through); a raw
subscriber's ?from= takes only a 64-bit decimal; POST /publish/ with an
empty topic is a 400; the drop policy's gap arrives as soon as the
subscriber has room, not with some later message; history_max_bytes evicts
the globally oldest messages, so one hot topic cannot empty the others'
history; with no --threads, the broker starts one loop per CPU it may run
on (the affinity mask), not per CPU installed."""
import asyncio
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from broker import RawSocketWS, upgrade_request  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


async def test_flood_past_json_burst_is_closed_with_1008():
    # 100 commands/s, burst 10: one command every 2 ms is five times the
    # rate; a refilled token lets one in every 10 ms, which used to reset
    # the count, so the flood went on forever.
    b = broker.start("--json-rate", "100", "--json-burst", "10")
    try:
        jc = await b.json_client()
        code = None
        deadline = time.monotonic() + 10
        sent = 0
        try:
            while time.monotonic() < deadline and sent < 5000:
                await jc.send({"op": "ping"})
                sent += 1
                await asyncio.sleep(0.002)
            raise AssertionError(f"still open after {sent} commands")
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
        eq(code, 1008, "close code for a command flood")
    finally:
        b.stop()


async def test_sub_from_must_be_a_64_bit_decimal():
    b = broker.start()
    try:
        for bad in ("-1", "18446744073709551616", "+5", "1e3", "", "0x10"):
            _, req = upgrade_request(b.port, f"/sub/t?from={bad}")
            st, _, _ = b.raw_request(req)
            eq(st, 400, f"/sub/t?from={bad}")
        ws = await b.connect("/sub/t?from=18446744073709551615")
        await ws.close()
    finally:
        b.stop()


async def test_publish_with_empty_topic_is_400():
    b = broker.start()
    try:
        st, _, body = b.http("POST", "/publish/", b"x")
        eq(st, 400, f"POST /publish/ ({body!r})")
        check(b"invalid topic" in body, f"the reason names the topic: {body!r}")
    finally:
        b.stop()


def read_json_frames(sock, until, timeout):
    """Reads text frames from a RawSocketWS until until(obj) is true."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        check(time.monotonic() < deadline, f"no matching message within {timeout}s "
              f"(last: {seen[-3:]})")
        op, p = sock.recv_frame(max(0.01, deadline - time.monotonic()))
        if op != 1:
            continue
        m = json.loads(p)
        seen.append(m)
        if until(m):
            return seen


async def test_drop_gap_sent_as_soon_as_there_is_room():
    b = broker.start("--slow-consumer-policy", "drop", "--max-backpressure", "64K",
                     "--compression", "off")
    try:
        sock = RawSocketWS(b.port, "/ws", rcvbuf=4096)
        sock.send(1, json.dumps({"op": "sub", "topic": "d", "id": 1}).encode())
        read_json_frames(sock, lambda m: m.get("op") == "ack", 10)
        # Not reading: publish until the broker drops for it (bounded), then
        # a few more, so the last messages published are dropped ones.
        payload = "y" * 8000
        last = 0
        for _ in range(2000):
            last = b.publish("d", payload)["seq"]
            if b.stats()["drops"] > 0:
                break
        check(b.stats()["drops"] > 0, "the stuck subscriber had drops")
        for _ in range(10):
            last = b.publish("d", payload)["seq"]
        # No more publishes: reading alone must account for every seq up
        # to the last one, the dropped ones by gaps.
        covered = []

        def done(m):
            if m.get("op") == "msg":
                covered.append(m["seq"])
            elif m.get("op") == "gap":
                covered.extend(range(m["from"], m["to"] + 1))
            return covered and covered[-1] == last

        seen = read_json_frames(sock, done, 15)
        eq(covered, list(range(1, last + 1)), "every seq delivered or in a gap, once, in order")
        final = seen[-1]
        eq((final.get("op"), final.get("to")), ("gap", last),
           "the last publishes were dropped and their gap came with no later message")
        sock.close()
    finally:
        b.stop()


async def test_history_max_bytes_evicts_globally_oldest():
    b = broker.start("--history-max-bytes", "64K", "--history-size", "1000")
    try:
        for i in range(5):
            b.publish("cold", f"c{i}" + "." * 200)
        # The hot topic publishes far more than the budget afterwards.
        for i in range(200):
            b.publish("hot", "h" * 1000)
        jc = await b.json_client()
        await jc.ack({"op": "sub", "topic": "cold", "id": 1, "from": 1})
        m = await jc.recv()
        eq((m.get("op"), m.get("from"), m.get("to")), ("gap", 1, 5),
           "the oldest messages (the cold topic's) went first")
        # Then the cold topic publishes again: the hot topic's oldest go,
        # not the cold topic's new message.
        b.publish("cold", "fresh")
        b.publish("hot", "h" * 1000)
        m = await jc.recv()
        eq((m.get("op"), m.get("seq")), ("msg", 6), "live message")
        jc2 = await b.json_client()
        await jc2.ack({"op": "sub", "topic": "cold", "id": 1, "from": 6})
        m = await jc2.recv()
        eq((m.get("op"), m.get("seq")), ("msg", 6), "the cold topic keeps its newest message")
        jc3 = await b.json_client()
        await jc3.ack({"op": "sub", "topic": "hot", "id": 1, "from": 1})
        m = await jc3.recv()
        eq(m.get("op"), "gap", "the hot topic lost its oldest")
        for j in (jc, jc2, jc3):
            await j.close()
    finally:
        b.stop()


async def test_default_threads_follow_the_affinity_mask():
    cpus = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cpus)})  # the broker inherits it
        b = broker.start(threads=0)
    finally:
        os.sched_setaffinity(0, cpus)
    try:
        eq(b.stats()["threads"], 1, "threads under a one-CPU affinity mask")
    finally:
        b.stop()


if __name__ == "__main__":
    run([
        test_flood_past_json_burst_is_closed_with_1008,
        test_sub_from_must_be_a_64_bit_decimal,
        test_publish_with_empty_topic_is_400,
        test_drop_gap_sent_as_soon_as_there_is_room,
        test_history_max_bytes_evicts_globally_oldest,
        test_default_threads_follow_the_affinity_mask,
    ], timeout=60)
