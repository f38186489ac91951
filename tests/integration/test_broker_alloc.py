"""Zero allocations per message on the broker's fanout path in steady state.

The real broker runs under support/alloc_count.c, LD_PRELOADed (built
here with gcc), which prints the process's allocation count on SIGUSR2.  A
warm-up fills the pools; then 5,000 more messages fan out to 20 subscribers
(raw and JSON, compressed and not, over two threads: 100,000 deliveries, 4
frame variants per message, compress-once) and the count must not grow with
them: a per-message or per-delivery allocation would add thousands."""
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import BUILD, ROOT, Fail, check, eq, run, wait_until  # noqa: E402

WARMUP, MEASURED = 1000, 5000
# Allocations allowed in the measured phase that do not scale with messages
# (a pool chunk when a queue runs deeper than during the warm-up, zlib's
# lazily allocated window on a connection's first compressed frame).
SLACK = 64


def build_shim(d):
    so = os.path.join(d, "alloc_count.so")
    r = subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-D_GNU_SOURCE", "-I", ROOT, "-o", so,
                        os.path.join(ROOT, "support", "alloc_count.c")],
                       capture_output=True, timeout=60)
    eq(r.returncode, 0, f"building the counter: {r.stderr.decode()[:500]}")
    return so


def shim_env(so):
    """The environment that interposes the counter.  A sanitizer build
    refuses to start unless its runtime comes first among the preloaded
    libraries; with verify_asan_link_order=0 it accepts the shim in front,
    and the shim forwards to ASan's interceptors, so ASan still sees every
    block (support/alloc_count.h)."""
    env = {"LD_PRELOAD": so, "RC_ALLOC_COUNT_SIGNAL": "1"}
    exe = os.path.join(BUILD, "ringcast")
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=30).stdout
    if "libasan" in ldd:
        opts = os.environ.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "verify_asan_link_order=0"
    return env


def read_count(b):
    """SIGUSR2 -> one new 'alloc_count: allocs N' line on stderr."""
    before = len(re.findall(r"alloc_count: allocs (\d+)", b.proc.text()))
    b.signal(signal.SIGUSR2)

    def got():
        found = re.findall(r"alloc_count: allocs (\d+)", b.proc.text())
        return found[before] if len(found) > before else None
    return int(wait_until(got, 10, "the counter's answer to SIGUSR2"))


BATCH = 250
received = []


async def subscriber(b, kind, ready, total, idx):
    deflate = "deflate" if kind.endswith("z") else None
    if kind.startswith("raw"):
        async with b.connect("/sub/fan", compression=deflate) as ws:
            ready.set_result(True)
            for i in range(total):
                m = await asyncio.wait_for(ws.recv(), 60)
                check(m.startswith('{"n":'), f"raw payload {m[:40]!r}")
                received[idx] += 1
    else:
        c = await b.json_client(compression=deflate)
        await c.ack({"op": "sub", "topic": "fan", "id": 1})
        ready.set_result(True)
        for i in range(total):
            m = await c.recv(60)
            eq(m.get("op"), "msg", "JSON delivery")
            received[idx] += 1
        await c.close()


async def publish(ws, start, count):
    """In batches, each sent once every subscriber has the previous one, so
    queues stay as shallow in the measured phase as in the warm-up (a deeper
    queue would grow a pool once: legitimate, but not what is measured)."""
    for base in range(start, start + count, BATCH):
        for i in range(base, base + BATCH):
            await ws.send('{"n":%d,"pad":"%s"}' % (i, "x" * 200))
        for _ in range(6000):  # bounded: 60 s
            if min(received) >= base + BATCH:
                break
            await asyncio.sleep(0.01)
        else:
            raise Fail(f"subscribers stuck at {received} of {base + BATCH}")


async def test_fanout_allocates_nothing_per_message():
    with tempfile.TemporaryDirectory() as d:
        so = build_shim(d)
        b = broker.start("--json-rate", "1000000", "--json-burst", "1000000", threads=2,
                         env=shim_env(so))
        try:
            kinds = ["raw", "rawz", "json", "jsonz"] * 5
            received[:] = [0] * len(kinds)
            loop = asyncio.get_running_loop()
            readies = [loop.create_future() for _ in kinds]
            subs = [asyncio.ensure_future(subscriber(b, k, r, WARMUP + MEASURED, i))
                    for i, (k, r) in enumerate(zip(kinds, readies))]
            await asyncio.wait_for(asyncio.gather(*readies), 30)
            async with b.connect("/pub/fan") as pub:
                await publish(pub, 0, WARMUP)
                c1 = read_count(b)
                check(c1 > 0, "the counter is interposed (the broker's start-up allocated)")
                await publish(pub, WARMUP, MEASURED)
                await asyncio.wait_for(asyncio.gather(*subs), 120)
                c2 = read_count(b)
            st = b.stats()
            eq(st["messages_out"], (WARMUP + MEASURED) * len(kinds), "deliveries")
            check(st["deflate_calls"] <= 2 * (WARMUP + MEASURED),
                  f"compress once: {st['deflate_calls']} deflate calls")
            grew = c2 - c1
            print(f"    {MEASURED} messages, {MEASURED * len(kinds)} deliveries: "
                  f"{grew} allocations (count {c1} -> {c2})")
            check(grew <= SLACK, f"{grew} allocations during {MEASURED} messages "
                  f"({MEASURED * len(kinds)} deliveries): the fanout path allocates")
        finally:
            b.stop()


if __name__ == "__main__":
    run([test_fanout_allocates_nothing_per_message], timeout=240)
