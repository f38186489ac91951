"""max_topics is not a slot one client can fill to lock everyone out
(issue: 100,000 one-byte POSTs to distinct names and every new topic was
refused for good).  A topic at the limit makes room by evicting the
globally oldest history (a topic with only history left goes); each client
address may create topic_create_rate topics per second (burst
topic_create_burst; 429 past it); history_ttl expires in the background,
so idle topics leave without being touched; and a topic's own footprint
counts in history_max_bytes, so one-byte messages cannot hold thousands of
topics in a small budget."""
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402


def flood(b, n, prefix, source="127.0.0.1", seconds=30):
    """POSTs one byte to n distinct topics over one keep-alive connection,
    bounded in count and time; returns {status: count}."""
    c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=10,
                                   source_address=(source, 0))
    out = {}
    deadline = time.monotonic() + seconds
    try:
        for i in range(n):
            if time.monotonic() > deadline:
                break
            c.request("POST", f"/publish/{prefix}{i}", b"x")
            r = c.getresponse()
            r.read()
            out[r.status] = out.get(r.status, 0) + 1
    finally:
        c.close()
    return out


def post_from(b, source, topic):
    c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=10, source_address=(source, 0))
    try:
        c.request("POST", f"/publish/{topic}", b"hello")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


async def test_flood_of_topics_does_not_lock_others_out():
    b = broker.start("--max-topics", "2000", "--topic-create-rate", "0")
    try:
        got = flood(b, 5000, "attack")
        eq(got.get(200), 5000, f"every flood publish was answered ({got})")
        check(b.stats()["topics"] <= 2000, "never more than max_topics")
        # Another client still creates topics: the oldest idle ones give way.
        for i in range(5):
            st, body = post_from(b, "127.0.0.2", f"victim{i}")
            eq(st, 200, f"a new topic from another client ({body!r})")
    finally:
        b.stop()


async def test_topic_creation_rate_per_address():
    b = broker.start("--topic-create-rate", "100", "--topic-create-burst", "500")
    try:
        t0 = time.monotonic()
        got = flood(b, 3000, "attack")
        elapsed = time.monotonic() - t0
        check(got.get(429, 0) > 0, f"the flooding address was refused ({got})")
        check(got.get(200, 0) <= 500 + 100 * elapsed + 10,
              f"created at most burst + rate x time ({got} in {elapsed:.1f}s)")
        st, _, body = b.http("POST", "/publish/attack0", b"y")
        eq(st, 200, "publishing to an existing topic is not limited")
        st, body = post_from(b, "127.0.0.2", "victim")
        eq(st, 200, f"another address is not limited by it ({body!r})")
    finally:
        b.stop()


async def test_history_ttl_expires_in_the_background():
    b = broker.start("--history-ttl", "0.5")
    try:
        for i in range(50):
            b.publish(f"idle{i}", "x")
        eq(b.stats()["topics"], 50, "topics after publishing")
        # Nothing touches them again: expiry must not wait for a publish.
        wait_until(lambda: b.stats()["topics"] == 0, 10, "idle topics to expire")
        eq(b.stats()["history_bytes"], 0, "history bytes after expiry")
    finally:
        b.stop()


async def test_topic_footprint_counts_in_history_max_bytes():
    b = broker.start("--history-max-bytes", "100K", "--topic-create-rate", "0")
    try:
        got = flood(b, 3000, "tiny")
        eq(got.get(200), 3000, f"publishes answered ({got})")
        st = b.stats()
        check(st["history_bytes"] <= 100 * 1024, f"history_bytes {st['history_bytes']} in budget")
        check(st["topics"] < 1000, f"{st['topics']} one-byte topics held in 100 KiB: "
              "each topic's own memory must count")
    finally:
        b.stop()


if __name__ == "__main__":
    run([
        test_flood_of_topics_does_not_lock_others_out,
        test_topic_creation_rate_per_address,
        test_history_ttl_expires_in_the_background,
        test_topic_footprint_counts_in_history_max_bytes,
    ], timeout=120)
