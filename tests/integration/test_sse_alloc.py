"""Zero allocations per message on the Server-Sent Events path in steady
state: the broker runs under tests/support/alloc_count.c (LD_PRELOADed, as
in test_broker_alloc.py); after a warm-up 5,000 messages fan out to 16
event streams on two threads (8 of one topic, which share each message's
event with its id, and 8 of two topics, which get the shared event and
their own id line) and the allocation count must not grow with them."""
import http.client
import os
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import broker  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402
from test_broker_alloc import SLACK, build_shim, read_count, shim_env  # noqa: E402
from test_sse import Stream  # noqa: E402

WARMUP, MEASURED, BATCH = 1000, 5000, 250


class Counter(threading.Thread):
    """Counts msg events on one stream, checking their order."""

    def __init__(self, b, path):
        super().__init__(daemon=True)
        self.s = Stream(b, path, timeout=60)
        self.s.welcome()
        self.n = 0
        self.error = None

    def run(self):
        try:
            while self.n < WARMUP + MEASURED:
                e = self.s.event(60)
                check(e is not None and e[0] == "msg", f"event {e!r:.80}")
                check(f'"seq":{self.n + 1},' in e[1], f"out of order: {e[1][:80]}")
                self.n += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def publish(b, readers, start, count):
    """In batches, each once every stream has the previous one (queues stay
    as shallow as in the warm-up)."""
    conn = http.client.HTTPConnection("127.0.0.1", b.port, timeout=10)
    for base in range(start, start + count, BATCH):
        for i in range(base, base + BATCH):
            conn.request("POST", "/publish/fan", body=('{"n":%d,"pad":"%s"}' % (i, "x" * 200)),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            eq(r.status, 200, "publish")
        wait_until(lambda: min(r.n for r in readers) >= base + BATCH or
                   any(r.error for r in readers), 60, "the streams to keep up")
        check(not any(r.error for r in readers), f"{[r.error for r in readers if r.error]}")
    conn.close()


def test_sse_fanout_allocates_nothing_per_message():
    with tempfile.TemporaryDirectory() as d:
        so = build_shim(d)
        b = broker.start(threads=2, env=shim_env(so))
        try:
            readers = [Counter(b, "/events/fan") for _ in range(8)]
            readers += [Counter(b, "/events/fan,other") for _ in range(8)]
            for r in readers:
                r.start()
            publish(b, readers, 0, WARMUP)
            c1 = read_count(b)
            check(c1 > 0, "the counter is interposed")
            publish(b, readers, WARMUP, MEASURED)
            c2 = read_count(b)
            st = b.stats()
            eq(st["sse_events"], 2 * (WARMUP + MEASURED), "events built: two variants a message")
            grew = c2 - c1
            print(f"    {MEASURED} messages, {MEASURED * len(readers)} deliveries: "
                  f"{grew} allocations (count {c1} -> {c2})")
            check(grew <= SLACK, f"{grew} allocations during {MEASURED} messages: the SSE "
                  f"path allocates")
            for r in readers:
                r.s.close()
        finally:
            b.stop()


if __name__ == "__main__":
    run([test_sse_fanout_allocates_nothing_per_message], timeout=240)
