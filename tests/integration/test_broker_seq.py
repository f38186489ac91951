"""Sequence numbers never go back within an epoch.

A topic leaves the registry when it has neither subscribers nor history;
when it comes back its numbering goes on where it stopped (a tombstone
keeps the last seq), so a client resuming with `from` gets the exact
`gap` for what it missed, never old numbers reused for new messages.
When the tombstone itself was forgotten (more removed topics than
max_topics), a resume from below the new start gets a `reset`."""
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run  # noqa: E402


async def resume(b, topic, frm):
    """Resumes topic from `frm`; returns (ack seq, [events]) where events
    are ("msg", seq), ("gap", from, to) or ("reset", seq), read until every
    number up to the ack's seq is accounted for."""
    jc = await b.json_client()
    ack = await jc.ack({"op": "sub", "topic": topic, "id": 1, "from": frm})
    last, nxt, events = ack["seq"], frm, []
    while nxt <= last:
        m = await jc.recv()
        if m["op"] == "msg":
            events.append(("msg", m["seq"]))
            nxt = m["seq"] + 1
        elif m["op"] == "gap":
            events.append(("gap", m["from"], m["to"]))
            nxt = m["to"] + 1
        elif m["op"] == "reset":
            events.append(("reset", m["seq"]))
            nxt = m["seq"] + 1
        else:
            raise AssertionError(f"unexpected {m}")
    await jc.expect_quiet(0.2)
    await jc.close()
    return last, events


async def first_three_then_leave(b, topic):
    jc = await b.json_client()
    await jc.ack({"op": "sub", "topic": topic, "id": 1})
    for i in range(3):
        eq(b.publish(topic, f"m{i + 1}")["seq"], i + 1, "seq of the first publishes")
    eq([(await jc.recv())["seq"] for _ in range(3)], [1, 2, 3], "subscriber got 1-3")
    await jc.close()


async def test_history_size_0_numbering_goes_on():
    b = broker.start("--history-size", "0")
    try:
        await first_three_then_leave(b, "h0")
        # The topic has no subscriber and no history: it leaves the
        # registry after each publish, and still numbers on.
        eq([b.publish("h0", f"m{i}")["seq"] for i in range(4, 8)], [4, 5, 6, 7],
           "seq after the topic was removed")
        last, events = await resume(b, "h0", 4)
        eq(last, 7, "ack seq on resume")
        eq(events, [("gap", 4, 7)], "the exact gap for the four lost messages")
    finally:
        b.stop()


async def test_ttl_expired_topic_numbering_goes_on():
    b = broker.start("--history-ttl", "1")
    try:
        await first_three_then_leave(b, "ttl")
        await asyncio.sleep(1.1)
        # A subscribe expires the old history; when it leaves, the topic has
        # neither subscriber nor history and is removed.
        jc = await b.json_client()
        eq((await jc.ack({"op": "sub", "topic": "ttl", "id": 1}))["seq"], 3, "ack seq")
        await jc.ack({"op": "unsub", "topic": "ttl", "id": 2})
        await jc.close()
        eq([b.publish("ttl", f"m{i}")["seq"] for i in range(4, 8)], [4, 5, 6, 7],
           "seq after the expired topic was removed")
        last, events = await resume(b, "ttl", 4)
        eq(last, 7, "ack seq on resume")
        eq(covered(events), [4, 5, 6, 7], f"4..7 each delivered or reported lost ({events})")
    finally:
        b.stop()


def covered(events):
    out = []
    for e in events:
        out += [e[1]] if e[0] == "msg" else list(range(e[1], e[2] + 1))
    return out


async def test_history_evicted_by_other_topic():
    # 3000 bytes for every history together, and another topic holds
    # almost all of it: the small topic's history is pushed out.
    b = broker.start("--history-max-bytes", "3000")
    try:
        b.publish("big", "x" * 2999)
        await first_three_then_leave(b, "small")
        eq([b.publish("small", f"m{i}")["seq"] for i in range(4, 8)], [4, 5, 6, 7],
           "small topic's seq")
        b.publish("big", "x" * 2999)
        last, events = await resume(b, "small", 4)
        eq(last, 7, "ack seq on resume")
        eq(covered(events), [4, 5, 6, 7], f"4..7 each delivered or reported lost ({events})")
    finally:
        b.stop()


async def test_forgotten_tombstone_gives_reset():
    # max_topics 2 bounds the tombstones too: the third removed topic
    # forgets the first one's numbering.
    b = broker.start("--history-size", "0", "--max-topics", "2")
    try:
        await first_three_then_leave(b, "a")
        for t in ("b", "c"):
            for _ in range(5):
                b.publish(t, "x")
        s = b.publish("a", "again")["seq"]
        check(s > 3, f"a recreated topic never numbers below its old seq (got {s})")
        last, events = await resume(b, "a", 2)
        eq(last, s, "ack seq")
        eq(events[0][0], "reset", f"a resume below the unknown start is a reset ({events})")
        check(events[0][1] >= 3, f"reset covers the old numbers ({events})")
        # Past the start, the numbers are exact again.
        eq(await resume(b, "a", s + 1), (s, []), "resume after the start")
    finally:
        b.stop()


if __name__ == "__main__":
    run([
        test_history_size_0_numbering_goes_on,
        test_ttl_expired_topic_numbering_goes_on,
        test_history_evicted_by_other_topic,
        test_forgotten_tombstone_gives_reset,
    ], timeout=60)
