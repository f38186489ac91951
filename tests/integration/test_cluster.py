"""engine = redis with redis_cluster = on: ringcast nodes over a real
3-master Redis Cluster (redis-server --cluster-enabled yes, made by
redis-cli --cluster create) on loopback.

Each topic's keys and channel share one slot ({topic} hash tag), so its
numbering, history and sharded pub/sub live on one master; topics spread
over every master; a publish on any node reaches subscribers on every
node in seq order; a resume through another node is exact; a master
killed during a publish stream and restarted (AOF) loses nothing: every
subscriber ends with every acked message once, in order."""
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402
from redisutil import Cluster  # noqa: E402
from test_redis import json_msgs, raw_msgs  # noqa: E402
from test_redis_failover import health  # noqa: E402

TOPICS = [f"c{i}" for i in range(12)]


def nodes(cluster, n=2, extra=()):
    return [broker.start("--engine", "redis", "--redis-url", cluster.url, "--redis-cluster", "on",
                         *extra, threads=2) for _ in range(n)]


async def subscribe_all(bs):
    """One JSON client per node subscribed to every topic."""
    subs = []
    for node in bs:
        jc = await node.json_client()
        for i, t in enumerate(TOPICS):
            await jc.ack({"op": "sub", "topic": t, "id": i})
        subs.append(jc)
    return subs


async def test_cluster_pubsub_and_resume():
    """Topics on every master; publishes through both nodes reach JSON and
    raw subscribers on both nodes in seq order; the keys sit on the master
    of the topic's slot; a resume through the other node is exact."""
    cluster = Cluster()
    a, b = bs = nodes(cluster)
    try:
        owners = {cluster.owner("{" + t + "}").port for t in TOPICS}
        check(len(owners) >= 2, f"topics spread over masters: {owners}")
        subs = await subscribe_all(bs)
        raw = await b.connect("/sub/c3")
        n = 6
        for k in range(n):
            for t in TOPICS:
                r = (a if k % 2 else b).publish(t, f"{t}-{k}")
                eq(r["seq"], k + 1, f"seq of {t}'s publish {k}")
        for jc in subs:
            got = {}
            while sum(len(v) for v in got.values()) < n * len(TOPICS):
                m = await jc.recv(20)
                got.setdefault(m["topic"], []).append((m["seq"], m["data"]))
            for t in TOPICS:
                eq(got[t], [(k + 1, f"{t}-{k}") for k in range(n)], f"{t} on a subscriber")
        eq(await raw_msgs(raw, n), [f"c3-{k}" for k in range(n)], "raw subscriber")
        for t in TOPICS[:3]:
            owner = cluster.owner("{" + t + "}")
            eq(owner.cli("EXISTS", f"rc:{{{t}}}:m", f"rc:{{{t}}}:h"), "2",
               f"{t}'s keys on its slot's master")
        jr = await a.json_client()
        await jr.ack({"op": "sub", "topic": "c5", "id": 1, "from": 4})
        eq(await json_msgs(jr, "c5", 3), [("msg", s, f"c5-{s - 1}") for s in (4, 5, 6)],
           "resume through the other node")
        await raw.close()
    finally:
        for x in bs:
            x.stop()
        cluster.stop()


async def test_cluster_master_killed_during_stream():
    """A master is killed (SIGKILL) while both nodes publish to every
    topic, then restarted with its AOF: publishes are refused meanwhile
    (503), every subscriber ends with every acked message once, in seq
    order, no gap, no reset."""
    cluster = Cluster(persist=True)
    a, b = bs = nodes(cluster)
    try:
        subs = await subscribe_all(bs)
        acked = {t: [] for t in TOPICS}
        refused = 0
        victim = cluster.owner("{c0}")

        def publish_round(k):
            nonlocal refused
            for t in TOPICS:
                st, _, body = (a if k % 2 else b).http(
                    "POST", f"/publish/{t}", f"{t}-{k}".encode(), {"Content-Type": "text/plain"})
                if st == 200:
                    acked[t].append(f"{t}-{k}")
                else:
                    eq(st, 503, f"a refused publish's status ({body!r})")
                    refused += 1

        for k in range(5):
            await asyncio.to_thread(publish_round, k)
        victim.kill()
        wait_until(lambda: health(a) == 503, 15, "node A sees the master gone")
        for k in range(5, 8):
            await asyncio.to_thread(publish_round, k)
        victim.start()
        wait_until(cluster.ok, 30, "the cluster whole again", interval=0.2)
        wait_until(lambda: health(a) == 200 and health(b) == 200, 30, "both nodes ready")
        for k in range(8, 12):
            await asyncio.to_thread(publish_round, k)
        check(refused > 0, "some publishes were refused while the master was down")
        total = sum(len(v) for v in acked.values())
        for jc in subs:
            got = {t: [] for t in TOPICS}
            while sum(len(v) for v in got.values()) < total:
                m = await jc.recv(30)
                check(m["op"] == "msg", f"no gap or reset expected: {m}")
                got[m["topic"]].append((m["seq"], m["data"]))
            for t in TOPICS:
                eq([s for s, _ in got[t]], list(range(1, len(acked[t]) + 1)), f"{t} seqs")
                eq([d for _, d in got[t]], acked[t], f"{t}: every acked message once")
            await jc.expect_quiet(0.3)
    finally:
        for x in bs:
            x.stop()
        cluster.stop()


if __name__ == "__main__":
    run([test_cluster_pubsub_and_resume, test_cluster_master_killed_during_stream], timeout=180)
