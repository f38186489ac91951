"""engine = redis: several ringcast nodes share topics through a real
redis-server on loopback.

A publish on any node, through any endpoint, reaches raw and JSON
subscribers (plain and compressed) on every node once, in one seq order;
a resume through another node than the one the client left replays from
Redis's history with an exact hand-over to live (no duplicate, no hole),
also while the topic is being published to."""
import asyncio
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run  # noqa: E402
from redisutil import Redis  # noqa: E402


def nodes(redis, n=2, threads=2, extra=()):
    return [broker.start("--engine", "redis", "--redis-url", redis.url, *extra, threads=threads)
            for _ in range(n)]


def stop_all(bs, redis):
    for b in bs:
        b.stop()
    redis.stop()


async def json_msgs(jc, topic, n, timeout=20):
    """Reads until n msg (or gap) events of topic came; returns them as
    ("msg", seq, data) / ("gap", from, to) / ("reset", seq)."""
    out = []
    while sum(1 for e in out if e[0] == "msg") < n:
        m = await jc.recv(timeout)
        if m.get("topic") != topic:
            continue
        if m["op"] == "msg":
            out.append(("msg", m["seq"], m["data"]))
        elif m["op"] == "gap":
            out.append(("gap", m["from"], m["to"]))
        elif m["op"] == "reset":
            out.append(("reset", m["seq"]))
    return out


async def raw_msgs(ws, n, timeout=20):
    return [await asyncio.wait_for(ws.recv(), timeout) for _ in range(n)]


async def test_publish_on_any_node_reaches_every_node():
    """HTTP on A, JSON on B, raw /pub on A: every subscriber on both nodes
    (JSON and raw, with and without permessage-deflate) gets every message
    once, in the seq order Redis gave."""
    redis = Redis()
    a, b = bs = nodes(redis)
    try:
        subs_json, subs_raw = [], []
        for node in bs:
            for comp in (None, "deflate"):
                jc = await node.json_client(compression=comp)
                await jc.ack({"op": "sub", "topic": "news", "id": 1})
                subs_json.append(jc)
                subs_raw.append(await node.connect("/sub/news", compression=comp))
        pub_b = await b.json_client()
        raw_pub = await a.connect("/pub/news")
        acked, n = [], 30
        for i in range(n):
            body = json.dumps({"i": i})
            if i % 3 == 0:
                r = await asyncio.to_thread(a.publish, "news", body, "application/json")
                acked.append(r["seq"])
                eq(r["epoch"], pub_b.epoch, "HTTP answer's epoch")
            elif i % 3 == 1:
                r = await pub_b.ack({"op": "pub", "topic": "news", "id": i, "data": {"i": i}})
                acked.append(r["seq"])
            else:
                await raw_pub.send(body)
        eq(sorted(acked), sorted(set(acked)), "distinct acked seqs")
        first = None
        for jc in subs_json:
            got = await json_msgs(jc, "news", n)
            eq([e[1] for e in got], list(range(1, n + 1)), "JSON subscriber's seqs")
            datas = [e[2]["i"] for e in got]
            eq(sorted(datas), list(range(n)), "JSON subscriber's payloads")
            if first is None:
                first = datas
            eq(datas, first, "one order on every node")
            await jc.expect_quiet(0.3)
        for ws in subs_raw:
            got = [json.loads(m)["i"] for m in await raw_msgs(ws, n)]
            eq(got, first, "raw subscriber's payloads, in the JSON subscribers' order")
        for s in subs_raw + [raw_pub]:
            await s.close()
        st = a.stats()
        check(st["engine"]["connected"] is True, f"engine state in /stats: {st.get('engine')}")
        check(st["engine"]["published"] >= n // 3, f"publishes counted: {st['engine']}")
        check(st["engine"]["channels"] == 1, f"one channel subscribed: {st['engine']}")
        _, _, metrics = a.http("GET", "/metrics")
        check(b"ringcast_engine_connected 1" in metrics, "engine series in /metrics")
        r = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True,
                           timeout=30)
        eq(r.returncode, 0, f"promtool check metrics: {r.stdout!r} {r.stderr!r}")
    finally:
        stop_all(bs, redis)


async def test_patterns_refused_not_partial():
    """A node hears only the channels of topics it has exact subscribers
    for, so a pattern would silently miss what other nodes publish: with
    engine = redis it is refused (err not_supported, 501 on /sub/), and an
    exact subscription next to it still works."""
    redis = Redis()
    bs = nodes(redis, n=1, threads=1)
    try:
        jc = await bs[0].json_client()
        await jc.err({"op": "sub", "topic": "news.*", "id": 1}, "not_supported")
        await jc.ack({"op": "sub", "topic": "news.eu", "id": 2})
        st = await bs[0].upgrade_status("/sub/news.%3E")
        check("501" in st, f"raw pattern upgrade refused with 501: {st}")
        await jc.close()
    finally:
        stop_all(bs, redis)


async def test_resume_through_another_node():
    """A client that read 1..5 on A resumes on B with from=6 after 5 more
    were published: exactly 6..10, then live; from beyond the history gets
    the exact gap first."""
    redis = Redis()
    a, b = bs = nodes(redis, extra=("--history-size", "8"))
    try:
        jc = await a.json_client()
        await jc.ack({"op": "sub", "topic": "t/r", "id": 1})
        for i in range(1, 6):
            a.publish("t%2Fr", f"m{i}")
        got = await json_msgs(jc, "t/r", 5)
        eq([e[1] for e in got], [1, 2, 3, 4, 5], "first client's seqs")
        await jc.close()
        for i in range(6, 11):
            b.publish("t%2Fr", f"m{i}")
        jb = await b.json_client()
        ack = await jb.ack({"op": "sub", "topic": "t/r", "id": 2, "from": 6})
        eq(ack["seq"], 10, "resume ack's seq")
        got = await json_msgs(jb, "t/r", 5)
        eq(got, [("msg", s, f"m{s}") for s in range(6, 11)], "replay through node B")
        a.publish("t%2Fr", "m11")
        eq(await json_msgs(jb, "t/r", 1), [("msg", 11, "m11")], "live after the replay")
        await jb.expect_quiet(0.3)
        # History holds 8 (history_size of the publishing node): 4..11.
        jg = await b.json_client()
        await jg.ack({"op": "sub", "topic": "t/r", "id": 3, "from": 1})
        got = await json_msgs(jg, "t/r", 8)
        eq(got[0], ("gap", 1, 3), "gap for what history no longer has")
        eq([e[1] for e in got[1:]], list(range(4, 12)), "replay after the gap")
        # A raw subscriber resumes too.
        ws = await b.connect("/sub/t%2Fr?from=10")
        eq(await raw_msgs(ws, 2), ["m10", "m11"], "raw resume")
        await ws.close()
    finally:
        stop_all(bs, redis)


async def test_handover_exact_while_publishing():
    """Subscribers join node B (with and without from) while node A
    publishes as fast as Redis acks: each gets a contiguous run of seqs
    from where it asked up to the last one, no duplicate, no hole."""
    redis = Redis()
    a, b = bs = nodes(redis, extra=("--history-size", "5000"))
    total = 1500
    try:
        pub = await a.json_client()
        done = asyncio.Event()

        async def publisher():
            for i in range(1, total + 1):
                await pub.send({"op": "pub", "topic": "hot", "data": i, "id": i})
                if i % 50 == 0:  # keep a bounded window of acks outstanding
                    while True:
                        m = await pub.recv(20)
                        if m.get("id") == i:
                            break
            done.set()

        async def subscriber(k):
            await asyncio.sleep(random.random() * 1.5)
            jc = await b.json_client(compression="deflate" if k % 2 else None)
            frm = None
            if k % 3:
                r = await jc.ack({"op": "sub", "topic": "hot", "id": 0})
                frm = max(1, r["seq"] - random.randint(0, 200))
                await jc.send({"op": "unsub", "topic": "hot", "id": 1})
                while (m := await jc.recv()).get("op") == "msg":
                    pass  # live ones of the first subscription, before its unsub
                eq(m.get("op"), "ack", f"unsub's answer ({m})")
                ack = await jc.ack({"op": "sub", "topic": "hot", "id": 2, "from": frm})
            else:
                ack = await jc.ack({"op": "sub", "topic": "hot", "id": 2})
                frm = ack["seq"] + 1
            want = list(range(frm, total + 1))
            got = await json_msgs(jc, "hot", len(want), timeout=60)
            eq([e[1] for e in got if e[0] == "msg"], want, f"subscriber {k} (from {frm})")
            eq([e for e in got if e[0] != "msg"], [], f"subscriber {k}: no gap or reset")
            await jc.close()

        await asyncio.gather(publisher(), *(subscriber(k) for k in range(12)))
    finally:
        stop_all(bs, redis)


async def test_many_nodes_many_publishers_order():
    """3 nodes x 2 threads, publishers on every node to two topics, a
    subscriber per topic on every node: per-topic seq order, no loss, and
    every payload once.  (RC_REDIS_LOAD sets messages per publisher.)"""
    per = int(os.environ.get("RC_REDIS_LOAD", "1500"))
    redis = Redis()
    # A Python reader far behind stops reading its socket (websockets'
    # queue is full), so it would miss the broker's pings: none here.
    bs = nodes(redis, n=3, extra=("--json-rate", "1000000", "--json-burst", "1000000",
                                  "--max-backpressure", "256M", "--idle-timeout", "600"))
    topics = ["L1", "L2"]
    try:
        subs = []
        for node in bs:
            for t in topics:
                jc = await node.json_client()
                await jc.ack({"op": "sub", "topic": t, "id": 1})
                subs.append((t, jc))

        async def publisher(node, k):
            jc = await node.json_client()
            for i in range(per):
                t = topics[i % 2]
                await jc.send({"op": "pub", "topic": t, "data": f"{k}:{i}", "id": i})
                if i % 100 == 99:
                    while (await jc.recv(30)).get("id") != i:
                        pass
            await jc.close()

        each = len(bs) * per // 2
        # Subscribers read while the publishers run (a reader that stops
        # would stop answering pings and be dropped).
        readers = [asyncio.create_task(json_msgs(jc, t, each, timeout=60)) for t, jc in subs]
        await asyncio.gather(*(publisher(node, k) for k, node in enumerate(bs)))
        for (t, jc), reader in zip(subs, readers):
            got = await reader
            eq([e[1] for e in got], list(range(1, each + 1)), f"{t} seqs")
            datas = [e[2] for e in got]
            eq(len(set(datas)), each, f"{t}: every payload once")
    finally:
        stop_all(bs, redis)


if __name__ == "__main__":
    run([test_publish_on_any_node_reaches_every_node, test_patterns_refused_not_partial,
         test_resume_through_another_node,
         test_handover_exact_while_publishing, test_many_nodes_many_publishers_order],
        timeout=180)
