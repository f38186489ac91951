"""Memory taken by a burst goes back: after a flood of large half-received
messages the broker's RSS falls back near where it started (its pools
return chunks that fall idle instead of keeping their peak for the life of
the process)."""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402


def test_rss_falls_back_after_a_flood():
    """80 publishers each leave a 600 KiB message half sent (the broker
    holds a 1 MiB reassembly buffer for each, ~80 MiB in all), then finish
    it and leave.  Within 20 s the broker's RSS is back under its starting
    RSS plus 16 MiB."""
    n, size = 80, 600 * 1024
    b = broker.start("--history-size", "0")
    try:
        # The loop's provided receive buffers (16 MiB) become resident as
        # traffic cycles through them: make that happen before measuring.
        warm = broker.RawSocketWS(b.port, "/pub/warm")
        for _ in range(40):
            warm.send(2, b"w" * 800 * 1024)
        wait_until(lambda: b.stats()["messages_in"] >= 40, 30, "the warm-up messages")
        warm.send(8, struct.pack("!H", 1000))
        warm.close()
        base = b.rss_kb()
        conns = [broker.RawSocketWS(b.port, f"/pub/flood{i % 4}") for i in range(n)]
        part = b"x" * size
        for ws in conns:
            ws.send(2, part, fin=False)
        peak = wait_until(lambda: (lambda r: r if r > base + n * size // 2048 else None)(
            b.rss_kb()), 30, "the broker to hold the half-received messages")
        for ws in conns:
            ws.send(0, b"end")
        wait_until(lambda: b.stats()["messages_in"] >= n + 40, 30, "the messages to be published")
        for ws in conns:
            ws.send(8, struct.pack("!H", 1000))
            ws.close()
        wait_until(lambda: b.stats()["connections"] == 0, 30, "the publishers to be gone")
        bound = base + 16 * 1024

        samples = [b.rss_kb()]
        deadline = time.monotonic() + 20
        while samples[-1] >= bound and time.monotonic() < deadline:
            time.sleep(0.1)
            samples.append(b.rss_kb())
        after = samples[-1]
        print(f"    RSS KiB: start {base}, peak {peak}, after {after} "
              f"({len(samples) / 10:.1f} s)")
        check(after < bound, f"RSS {after} KiB after the flood (start {base} KiB, peak "
              f"{peak} KiB), want under {bound} KiB within 20 s")
        eq(b.http("GET", "/healthz")[0], 200, "the broker is well")
    finally:
        b.stop()


if __name__ == "__main__":
    run([test_rss_falls_back_after_a_flood], timeout=180)
