"""SIGTERM under load on several threads: no acked message is lost.

JSON subscribers on every loop read a topic while JSON publishers (on
every loop too) publish with ids, pipelined; SIGTERM arrives mid-stream.
The drain is one ordered step: publishes are refused everywhere (err
shutting_down), everything already acked reaches every subscriber that
keeps up, then each connection gets close 1001.  So every subscriber ends
exactly at the highest acked seq, with nothing missing before it.  Each
round is bounded (publish count and time); several rounds per run, since
the old per-thread drain lost messages in some runs only."""
import asyncio
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

NSUBS, NPUBS, WINDOW, MAX_PUBS = 8, 4, 16, 4000


async def subscriber(b, ready):
    jc = await b.json_client(max_queue=None)
    await jc.ack({"op": "sub", "topic": "d", "id": 1})
    ready.set()
    seqs, code = [], None
    try:
        while True:
            m = json.loads(await asyncio.wait_for(jc.ws.recv(), 30))
            if m.get("op") == "msg":
                seqs.append(m["seq"])
            else:
                raise AssertionError(f"subscriber got {m}")
    except ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd else None
    return seqs, code


async def publisher(b, k, acked, refused, go):
    jc = await b.json_client(max_queue=None)
    await go.wait()
    sent = answered = 0
    inflight = asyncio.Semaphore(WINDOW)

    async def reader():
        nonlocal answered
        try:
            while True:
                m = json.loads(await asyncio.wait_for(jc.ws.recv(), 30))
                answered += 1
                inflight.release()
                if m.get("op") == "ack":
                    acked.append(m["seq"])
                elif m.get("op") == "err":
                    eq(m.get("code"), "shutting_down", f"publish refused during drain: {m}")
                    refused.append(m)
        except ConnectionClosed as e:
            return e.rcvd.code if e.rcvd else None

    rt = asyncio.create_task(reader())
    try:
        while sent < MAX_PUBS and not rt.done():
            await inflight.acquire()
            await jc.send({"op": "pub", "topic": "d", "data": {"p": k, "n": sent}, "id": sent})
            sent += 1
    except ConnectionClosed:
        pass
    return await rt


async def one_round(threads):
    b = broker.start("--max-backpressure", "64M", "--close-timeout", "20",
                     "--json-rate", "1000000", "--json-burst", "1000000", threads=threads)
    try:
        readies = [asyncio.Event() for _ in range(NSUBS)]
        subs = [asyncio.create_task(subscriber(b, r)) for r in readies]
        for r in readies:
            await asyncio.wait_for(r.wait(), 10)
        go = asyncio.Event()
        acked, refused = [], []
        pubs = [asyncio.create_task(publisher(b, k, acked, refused, go)) for k in range(NPUBS)]
        go.set()
        deadline = time.monotonic() + 10
        while len(acked) < 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        check(len(acked) >= 300, f"load before the signal ({len(acked)} acks)")
        b.signal(signal.SIGTERM)
        pub_codes = await asyncio.wait_for(asyncio.gather(*pubs), 40)
        results = await asyncio.wait_for(asyncio.gather(*subs), 40)
        eq(b.proc.wait(30), 0, "exit status after SIGTERM")
        top = max(acked)
        eq(sorted(acked), list(range(1, top + 1)), "acks are 1..N, each once")
        for i, (seqs, code) in enumerate(results):
            eq(code, 1001, f"subscriber {i} close code")
            check(seqs == list(range(1, len(seqs) + 1)),
                  f"subscriber {i} got a contiguous stream from 1")
            eq(len(seqs), top, f"subscriber {i} ends at the highest acked seq "
               f"(last got {seqs[-1] if seqs else None})")
        eq(set(pub_codes), {1001}, "publishers closed with 1001")
        return top, len(refused)
    finally:
        if b.alive():
            b.stop()


async def test_sigterm_under_load_loses_no_acked_message():
    for r in range(5):
        top, nref = await one_round(threads=4)
        print(f"    round {r}: {top} acked messages delivered to {NSUBS} subscribers, "
              f"{nref} publishes refused while draining", flush=True)


if __name__ == "__main__":
    run([test_sigterm_under_load_loses_no_acked_message], timeout=240)
