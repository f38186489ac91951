"""build/ringcast under load, bounded in count and time:
- two worker threads, several publishers and subscribers on separate
  connections spread over both threads, 100 000 messages: every subscriber
  sees every publisher's messages in order, none lost, seqs contiguous;
- compress-once: 1000 compressing subscribers, N messages -> deflate_calls
  equals N per variant used, not N x subscribers.
The slow-consumer tests are in test_broker_slow.py."""
import asyncio
import base64
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import Fail, check, eq, run  # noqa: E402

NPUB = 4
PER_PUB = 25000  # 100 000 messages in total
TOTAL = NPUB * PER_PUB


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    check(soft >= want, f"RLIMIT_NOFILE {soft} >= {want}")


async def recv(ws, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise Fail("time budget exhausted")
    try:
        return await asyncio.wait_for(ws.recv(), left)
    except asyncio.TimeoutError:
        raise Fail("time budget exhausted while receiving") from None


def check_order(last, payload, who):
    """payload is "P:COUNTER"; COUNTER must follow the previous one of P."""
    p, _, n = payload.partition(":")
    n = int(n)
    want = last.get(p, -1) + 1
    if n != want:
        raise Fail(f"{who}: publisher {p} counter {n}, want {want} (lost or reordered)")
    last[p] = n


async def raw_subscriber(ws, name, deadline):
    last = {}
    for _ in range(TOTAL):
        check_order(last, await recv(ws, deadline), name)
    return last


async def json_subscriber(jc, name, deadline):
    last = {}
    for seq in range(1, TOTAL + 1):
        m = json.loads(await recv(jc.ws, deadline))
        if m.get("op") != "msg" or m.get("seq") != seq:
            raise Fail(f"{name}: got {m}, want msg seq {seq}")
        check_order(last, m["data"], name)
    return last


async def publisher(ws, pid, deadline):
    for i in range(PER_PUB):
        await ws.send(f"p{pid}:{i}")
        if i % 500 == 499:
            check(time.monotonic() < deadline, "publishing within the time budget")
            await asyncio.sleep(0)  # let the subscribers' readers run


async def test_two_threads_100k_messages_ordered_and_complete():
    # A subscriber of this Python process may lag the publishers by far more
    # than the default 1 MiB; this test is about order and completeness.
    b = broker.start("--max-backpressure", "512M", "--history-size", "10", threads=2)
    t0 = time.monotonic()
    deadline = t0 + 100
    try:
        raws = [await b.connect("/sub/mt", compression=c) for c in (None, "deflate", None)]
        jsons = []
        for c in (None, "deflate"):
            j = await b.json_client(compression=c)
            await j.ack({"op": "sub", "topic": "mt", "id": 1})
            jsons.append(j)
        pubs = [await b.connect("/pub/mt", compression=None) for _ in range(NPUB)]
        # SO_REUSEPORT spreads connections by hash; add idle ones (bounded)
        # until both threads hold some.
        extra = []
        for _ in range(40):
            loops = b.stats()["loops"]
            if len(loops) == 2 and all(lp["sockets"] > 0 for lp in loops):
                break
            extra.append(await b.connect("/echo"))
        loops = b.stats()["loops"]
        eq(len(loops), 2, "two loops in /stats")
        check(all(lp["sockets"] > 0 for lp in loops), f"both threads hold sockets: {loops}")

        tasks = [asyncio.create_task(raw_subscriber(w, f"raw{i}", deadline))
                 for i, w in enumerate(raws)]
        tasks += [asyncio.create_task(json_subscriber(j, f"json{i}", deadline))
                  for i, j in enumerate(jsons)]
        await asyncio.gather(*(publisher(w, i, deadline) for i, w in enumerate(pubs)))
        t_pub = time.monotonic() - t0
        results = await asyncio.gather(*tasks)
        for r in results:
            eq(r, {f"p{i}": PER_PUB - 1 for i in range(NPUB)}, "last counter per publisher")
        s = b.stats()
        eq(s["messages_in"], TOTAL, "stats messages_in")
        eq(s["messages_out"], TOTAL * (len(raws) + len(jsons)), "stats messages_out")
        eq(s["slow_consumer_closes"], 0, "no slow-consumer closes")
        print(f"    100k messages: published in {t_pub:.1f}s, all received in "
              f"{time.monotonic() - t0:.1f}s; loops {s['loops']}", flush=True)
        for w in raws + pubs + extra + [j.ws for j in jsons]:
            await w.close()
    finally:
        b.stop()


async def test_compress_once_1000_subscribers():
    raise_nofile(4096)
    b = broker.start("--max-topics-per-connection", "10", threads=2)
    deadline = time.monotonic() + 100
    try:
        nraw, njson, n = 800, 200, 20
        raws, jsons = [], []
        for i in range(0, nraw, 100):
            raws += await asyncio.gather(*(b.connect("/sub/co", compression="deflate")
                                           for _ in range(100)))
        for i in range(0, njson, 100):
            jsons += await asyncio.gather(*(b.json_client(compression="deflate")
                                            for _ in range(100)))
        await asyncio.gather(*(j.ack({"op": "sub", "topic": "co", "id": 1}) for j in jsons))
        check(all(w.extensions for w in raws + [j.ws for j in jsons]),
              "every subscriber negotiated permessage-deflate")
        eq(b.stats()["subscriptions"], nraw + njson, "subscriptions")
        before = b.stats()["deflate_calls"]
        eq(before, 0, "no deflate before publishing")
        payloads = [("compress me once " * (i + 1) * 30) for i in range(n // 2)]
        payloads += [os.urandom(1000 + i) for i in range(n - len(payloads))]
        for p in payloads:
            b.publish("co", p)

        async def take_raw(ws):
            for i, p in enumerate(payloads):
                got = await recv(ws, deadline)
                if got != p:
                    raise Fail(f"raw subscriber payload {i} differs")

        async def take_json(j):
            for i, p in enumerate(payloads):
                m = json.loads(await recv(j.ws, deadline))
                got = base64.b64decode(m["data"]) if m.get("enc") == "base64" else m["data"]
                if m["seq"] != i + 1 or got != p:
                    raise Fail(f"JSON subscriber message {i}: {str(m)[:100]}")

        await asyncio.gather(*(take_raw(w) for w in raws), *(take_json(j) for j in jsons))
        s = b.stats()
        eq(s["messages_out"], n * (nraw + njson), "deliveries")
        eq(s["deflate_calls"], 2 * n,
           f"deflate_calls: once per message and variant (raw, JSON), for {nraw + njson} "
           f"subscribers")
        await asyncio.gather(*(w.close() for w in raws + [j.ws for j in jsons]))
    finally:
        b.stop()


if __name__ == "__main__":
    run([
        test_two_threads_100k_messages_ordered_and_complete,
        test_compress_once_1000_subscribers,
    ], timeout=120)
