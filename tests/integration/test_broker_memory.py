"""Bounds the broker keeps whatever clients do: max_connections_per_ip
(429 past it, counted again when a connection closes), max_topics
(when every topic has subscribers, a publish or subscribe that would create
one more is refused with 503, err topic_limit, or close 1013; a topic with
only history left gives way) and history_max_bytes (histories and topics
together hold at most that much; the globally oldest messages go first, and
a resume reports the exact gap)."""
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402


async def test_max_topics_refuses_new_topics_only():
    b = broker.start("--max-topics", "3", "--history-size", "5")
    try:
        c = await b.json_client()
        for i in range(3):
            eq(b.publish(f"t{i}", "x")["seq"], 1, f"publish to t{i}")
            await c.ack({"op": "sub", "topic": f"t{i}", "id": 10 + i})
        # Every topic has a subscriber: nothing can make room.
        st, _, body = b.http("POST", "/publish/t3", b"x", {"Content-Type": "text/plain"})
        eq(st, 503, f"fourth topic over HTTP ({body!r})")
        check(b"topic limit" in body, f"the answer says why: {body!r}")
        eq(b.publish("t1", "again")["seq"], 2, "an existing topic still takes publishes")
        eq((await c.recv())["seq"], 2, "delivered")
        await c.err({"op": "pub", "topic": "t4", "data": 1, "id": 1}, "topic_limit")
        await c.err({"op": "sub", "topic": "t5", "id": 2}, "topic_limit")
        r = await c.ack({"op": "sub", "topic": "t2", "id": 3})
        eq(r.get("seq"), 1, "subscribing to an existing topic works")
        async with b.connect("/sub/t6") as ws:
            eq(await broker.close_code_of(ws), 1013, "/sub to a new topic at the limit")
        async with b.connect("/pub/t7") as ws:
            await ws.send("hello")
            eq(await broker.close_code_of(ws), 1013, "/pub to a new topic at the limit")
        eq(b.stats()["topics"], 3, "topics in /stats")
        # A topic that has only history left gives way to a new one (its
        # oldest history goes), so the table cannot be locked by idle topics.
        await c.ack({"op": "unsub", "topic": "t0", "id": 4})
        eq(b.publish("t3", "x")["seq"], 1, "a new topic once t0 is only history")
        eq(b.stats()["topics"], 3, "t0 made room")
        await c.close()
    finally:
        b.stop()


async def test_history_max_bytes_bounds_history_and_reports_the_gap():
    b = broker.start("--history-size", "1000", "--history-max-bytes", "10K")
    try:
        for i in range(1, 101):  # 100 KiB into a 10 KiB budget
            b.publish("h", f"{i:04d}" + "x" * 1020)
        hb = b.stats()["history_bytes"]
        check(0 < hb <= 10 * 1024, f"history_bytes {hb} within 10 KiB")
        c = await b.json_client()
        await c.ack({"op": "sub", "topic": "h", "id": 1, "from": 1})
        gap = await c.recv()
        eq(gap.get("op"), "gap", f"first after the ack ({gap})")
        eq(gap.get("from"), 1, "gap starts where the resume asked")
        kept = 100 - gap["to"]
        check(1 <= kept <= 10, f"{kept} messages kept in 10 KiB")
        for seq in range(gap["to"] + 1, 101):
            m = await c.recv()
            eq((m.get("op"), m.get("seq")), ("msg", seq), "replay in order with no hole")
            eq(m["data"][:4], f"{seq:04d}", "payload of the replayed message")
        # Another topic's publish over the full budget evicts the globally
        # oldest messages (h's), not its own new one.
        b.publish("other", "y" * 900)
        eq(b.stats()["topics"], 2, "the other topic kept its history")
        await c.ack({"op": "unsub", "topic": "h", "id": 2})
        await c.ack({"op": "sub", "topic": "other", "id": 3, "from": 1})
        m = await c.recv()
        eq((m.get("op"), m.get("seq")), ("msg", 1), "the newest message is kept")
        check(b.stats()["history_bytes"] <= 10 * 1024, "still within the budget")
        await c.close()
    finally:
        b.stop()


async def test_max_connections_per_ip():
    b = broker.start("--max-connections-per-ip", "2", threads=2)
    try:
        a = await b.connect("/ws")
        c = await b.connect("/sub/x")
        st, head, _ = b.raw_request(broker.upgrade_request(b.port, "/ws")[1])
        eq(st, 429, f"third connection from 127.0.0.1 ({head!r})")
        st, _, _ = b.raw_request(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        eq(st, 429, "plain HTTP from the same address counts too")
        st, _, body = b.http("GET", "/stats", source="127.0.0.2")
        check(json.loads(body)["connections_refused"] >= 2, "counted in /stats")
        await a.close()

        def freed():
            st, _, _ = b.raw_request(broker.upgrade_request(b.port, "/ws")[1])
            return st == 101
        wait_until(freed, 10, "a slot to free after a close")
        await c.close()
    finally:
        b.stop()


if __name__ == "__main__":
    run([test_max_connections_per_ip, test_max_topics_refuses_new_topics_only,
         test_history_max_bytes_bounds_history_and_reports_the_gap])
