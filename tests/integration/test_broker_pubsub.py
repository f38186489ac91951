"""build/ringcast pub/sub against real clients (python3-websockets, urllib,
http.client): raw and JSON subscribers receive what HTTP, raw /pub and JSON
publishers send (text and binary, percent-encoded topics), mixed
compression on one topic, many topics per connection, unsubscribe, and
history resume with exact gaps.  Each test starts its own broker."""
import asyncio
import base64
import json
import os
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory  # noqa: E402

import broker  # noqa: E402
from rctest import Fail, check, eq, run  # noqa: E402


async def recv(ws, timeout=10):
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise Fail(f"nothing received within {timeout}s") from None


def urllib_publish(b, path, body, ctype):
    req = urllib.request.Request(f"http://127.0.0.1:{b.port}/publish/{path}", data=body,
                                 method="POST", headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=10) as r:
        eq(r.status, 200, "urllib POST status")
        return json.loads(r.read())


async def test_every_publisher_reaches_raw_and_json_subscribers():
    b = broker.start()
    try:
        topic = "news/é€🎉"
        path = urllib.parse.quote(topic, safe="")
        check("%2F" in path and "%F0%9F%8E%89" in path, f"topic is percent-encoded: {path}")
        raw = await b.connect("/sub/" + path)
        jc = await b.json_client()
        a = await jc.ack({"op": "sub", "topic": topic, "id": "s1"})
        eq(a.get("seq"), 0, "ack seq of a new topic")
        eq(a.get("epoch"), jc.epoch, "ack epoch equals the welcome's")
        pub = await b.connect("/pub/" + path)
        jpub = await b.json_client()

        # (how to publish, what the raw subscriber gets, what JSON's msg has)
        seq = 0

        async def expect(raw_payload, data, enc=None):
            nonlocal seq
            seq += 1
            got = await recv(raw)
            eq(type(got), type(raw_payload), f"raw frame type for seq {seq}")
            eq(got, raw_payload, f"raw payload of seq {seq}")
            m = await jc.recv()
            want = {"op": "msg", "topic": topic, "seq": seq, "data": data}
            if enc:
                want["enc"] = enc
            eq(m, want, f"JSON msg for seq {seq}")

        r = b.publish(path, "hello world")
        eq((r["topic"], r["seq"], r["subscribers"]), (topic, 1, 2), "POST answer")
        await expect("hello world", "hello world")
        r = b.publish(path, '{"k":[1,2,{"x":null}]}', ctype="application/json")
        await expect('{"k":[1,2,{"x":null}]}', {"k": [1, 2, {"x": None}]})
        binary = bytes(range(256)) * 3
        r = b.publish(path, binary)
        eq(r["seq"], 3, "binary POST seq")
        await expect(binary, base64.b64encode(binary).decode(), "base64")
        r = urllib_publish(b, path, "ünïcødé via urllib".encode(), "text/plain; charset=utf-8")
        await expect("ünïcødé via urllib", "ünïcødé via urllib")
        r = urllib_publish(b, path, b"\x00\xff\xfe", "application/octet-stream")
        await expect(b"\x00\xff\xfe", "AP/+", "base64")
        await pub.send("from /pub text")
        await expect("from /pub text", "from /pub text")
        await pub.send(b"\x01\x02\x03 from /pub")
        await expect(b"\x01\x02\x03 from /pub", base64.b64encode(b"\x01\x02\x03 from /pub").decode(),
                     "base64")
        await pub.send("[1, 2, 3]")  # valid JSON text: embedded as is
        await expect("[1, 2, 3]", [1, 2, 3])
        a = await jpub.ack({"op": "pub", "topic": topic, "data": {"a": "b", "n": 1.5}, "id": 7})
        eq(a.get("seq"), 9, "JSON pub ack seq")
        raw_text = await recv(raw)
        eq(json.loads(raw_text), {"a": "b", "n": 1.5}, "raw gets the JSON pub's data text")
        m = await jc.recv()
        eq((m["seq"], m["data"]), (9, {"a": "b", "n": 1.5}), "JSON msg of a JSON pub")
        await jpub.ack({"op": "pub", "topic": topic, "data": "a string", "id": 8})
        eq(await recv(raw), '"a string"', "raw gets the exact JSON text")
        eq((await jc.recv())["data"], "a string", "JSON string data")
        empty = b.publish(path, b"")
        eq(empty["seq"], 11, "empty binary body is a message")
        eq(await recv(raw), b"", "raw empty binary")
        m = await jc.recv()
        eq((m["seq"], m["data"], m.get("enc")), (11, "", "base64"), "empty binary as JSON")

        # /topics reports the topic with both subscribers and the last seq.
        st, _, body = b.http("GET", "/topics")
        eq(st, 200, "/topics status")
        t = [x for x in json.loads(body)["topics"] if x["topic"] == topic]
        eq(t, [{"topic": topic, "subscribers": 2, "seq": 11}], "/topics entry")
        s = b.stats()
        eq(s["messages_in"], 11, "stats messages_in")
        eq(s["messages_out"], 22, "stats messages_out (two subscribers)")
        for w in (raw, pub, jc.ws, jpub.ws):
            await w.close()
    finally:
        b.stop()


async def test_mixed_compression_identical_payloads():
    b = broker.start()
    try:
        topic = "z"
        small = ClientPerMessageDeflateFactory(server_max_window_bits=10)
        subs = {
            "raw-deflate": await b.connect("/sub/z", compression="deflate"),
            "raw-plain": await b.connect("/sub/z", compression=None),
            "raw-window10": await b.connect("/sub/z", compression=None, extensions=[small]),
        }
        for name, ws in subs.items():
            negotiated = [e.name for e in ws.extensions]
            want = [] if name == "raw-plain" else ["permessage-deflate"]
            eq(negotiated, want, f"{name} extensions")
        jz = await b.json_client(compression="deflate")
        jp = await b.json_client(compression=None)
        check(jz.ws.extensions and not jp.ws.extensions, "JSON clients negotiated as asked")
        for j in (jz, jp):
            await j.ack({"op": "sub", "topic": topic, "id": 1})
        pub = await b.connect("/pub/z", compression="deflate")
        payloads = []
        for i, n in enumerate([0, 1, 100, 1000, 20000, 200000]):
            text = ("ringcast %d " % i) * (n // 11 + 1)
            payloads.append(text[:n])
            payloads.append(os.urandom(n))
        for p in payloads:
            await pub.send(p)
        for name, ws in subs.items():
            for i, p in enumerate(payloads):
                got = await recv(ws)
                eq(got, p, f"{name} payload {i}")
        for j, name in ((jz, "json-deflate"), (jp, "json-plain")):
            for i, p in enumerate(payloads):
                m = await j.recv()
                eq(m["seq"], i + 1, f"{name} seq")
                if isinstance(p, bytes):
                    eq(base64.b64decode(m["data"]), p, f"{name} binary {i}")
                    eq(m.get("enc"), "base64", f"{name} enc {i}")
                else:
                    eq(m["data"], p, f"{name} text {i}")
        s = b.stats()
        # Two compressed variants were used (raw and JSON), once per message.
        eq(s["deflate_calls"], 2 * len(payloads), "deflate_calls (raw_z + json_z per message)")
        for ws in list(subs.values()) + [jz.ws, jp.ws, pub]:
            await ws.close()
    finally:
        b.stop()


async def test_many_topics_unsubscribe_not_subscribed():
    b = broker.start()
    try:
        jc = await b.json_client()
        topics = [f"t{i}" for i in range(60)]
        for i, t in enumerate(topics):
            a = await jc.ack({"op": "sub", "topic": t, "id": i})
            eq(a["seq"], 0, f"ack seq for {t}")
        # Subscribing again is harmless and acked with the current seq.
        b.publish("t0", "x")
        eq((await jc.recv())["topic"], "t0", "first message")
        a = await jc.ack({"op": "sub", "topic": "t0", "id": "again"})
        eq(a["seq"], 1, "re-subscribe ack seq")
        for t in topics:
            b.publish(t, "to " + t)
        for t in topics:
            m = await jc.recv()
            eq((m["topic"], m["data"]), (t, "to " + t), "message per topic, in order")
        gone = set(topics[::2])
        for t in sorted(gone):
            a = await jc.ack({"op": "unsub", "topic": t, "id": "u" + t})
            check("seq" not in a or a["seq"] is not None, "unsub ack")
        await jc.err({"op": "unsub", "topic": "t0", "id": "twice"}, "not_subscribed")
        await jc.err({"op": "unsub", "topic": "never", "id": 99}, "not_subscribed")
        _, _, body = b.http("GET", "/topics")
        counts = {x["topic"]: x["subscribers"] for x in json.loads(body)["topics"]}
        for t in topics:
            eq(counts.get(t), 0 if t in gone else 1, f"/topics subscribers of {t}")
        for t in topics:
            b.publish(t, "after " + t)
        b.publish("t1", "sentinel")
        got = []
        while True:
            m = await jc.recv()
            if m["data"] == "sentinel":
                break
            got.append(m["topic"])
        eq(got, [t for t in topics if t not in gone], "only still-subscribed topics deliver")
        eq(b.stats()["subscriptions"], len(topics) - len(gone), "stats subscriptions")
        await jc.close()
        # Disconnect drops the subscriptions.
        broker.wait_until(lambda: b.stats()["subscriptions"] == 0, 10, "subscriptions to drop")
    finally:
        b.stop()


async def collect_json(jc, n, timeout=20):
    out = []
    for _ in range(n):
        out.append(await jc.recv(timeout))
    return out


async def test_history_resume_then_live_without_dup_or_hole():
    b = broker.start("--history-size", "5000")
    try:
        for i in range(1, 51):
            b.publish("h", f"m{i}")
        jc = await b.json_client()
        a = await jc.ack({"op": "sub", "topic": "h", "id": 1, "from": 20})
        eq(a["seq"], 50, "ack seq is the last seq")
        ms = await collect_json(jc, 31)
        eq([m["seq"] for m in ms], list(range(20, 51)), "replayed seqs")
        eq([m["data"] for m in ms], [f"m{i}" for i in range(20, 51)], "replayed payloads")
        for i in range(51, 61):
            b.publish("h", f"m{i}")
        ms = await collect_json(jc, 10)
        eq([m["seq"] for m in ms], list(range(51, 61)), "live seqs after replay")
        await jc.close()  # before it falls behind the flood below

        # Resume while a publisher is racing: the replay/live seam must have
        # no duplicate and no hole.
        pub = await b.connect("/pub/h")
        total = 2000

        async def flood():
            for i in range(61, total + 1):
                await pub.send(f"m{i}")
                if i % 50 == 0:
                    await asyncio.sleep(0)
        task = asyncio.create_task(flood())
        await asyncio.sleep(0.01)
        for attempt in range(3):
            j2 = await b.json_client()
            a = await j2.ack({"op": "sub", "topic": "h", "id": "r", "from": 30 + attempt})
            seqs = []
            while not seqs or seqs[-1] < total:
                m = await j2.recv(20)
                eq(m["op"], "msg", "only messages after the ack")
                seqs.append(m["seq"])
                eq(m["data"], f"m{m['seq']}", "payload matches seq")
            eq(seqs, list(range(30 + attempt, total + 1)),
               f"resume {attempt}: contiguous from `from` (ack seq {a['seq']})")
            await j2.close()
        await task
        # Raw subscriber with ?from= replays too.
        raw = await b.connect("/sub/h?from=1998")
        eq([await recv(raw) for _ in range(3)], ["m1998", "m1999", "m2000"], "raw ?from= replay")
        b.publish("h", "m2001")
        eq(await recv(raw), "m2001", "raw live after replay")
        for w in (raw, pub):
            await w.close()
    finally:
        b.stop()


async def test_gap_when_history_is_short():
    b = broker.start("--history-size", "10")
    try:
        for i in range(1, 31):
            b.publish("g", f"m{i}")
        jc = await b.json_client()
        a = await jc.ack({"op": "sub", "topic": "g", "id": 1, "from": 5})
        eq(a["seq"], 30, "ack seq")
        gap = await jc.recv()
        eq(gap, {"op": "gap", "topic": "g", "from": 5, "to": 20}, "gap message")
        ms = await collect_json(jc, 10)
        eq([m["seq"] for m in ms], list(range(21, 31)), "history after the gap")
        # from inside the history: no gap; from in the future: nothing.
        j2 = await b.json_client()
        await j2.ack({"op": "sub", "topic": "g", "id": 2, "from": 25})
        eq([m["seq"] for m in await collect_json(j2, 6)], list(range(25, 31)), "no gap inside")
        j3 = await b.json_client()
        await j3.ack({"op": "sub", "topic": "g", "id": 3, "from": 31})
        j4 = await b.json_client()
        await j4.ack({"op": "sub", "topic": "g", "id": 4, "from": 1})
        eq(await j4.recv(), {"op": "gap", "topic": "g", "from": 1, "to": 20}, "gap from 1")
        eq([m["seq"] for m in await collect_json(j4, 10)], list(range(21, 31)), "j4 history")
        b.publish("g", "m31")
        for j in (jc, j2, j3, j4):
            m = await j.recv()
            eq((m["op"], m["seq"]), ("msg", 31), "live message after resume")
        # A raw subscriber cannot be told about the gap; it gets what is left.
        raw = await b.connect("/sub/g?from=2")
        eq([await recv(raw) for _ in range(10)], [f"m{i}" for i in range(22, 32)], "raw replay")
        for j in (jc, j2, j3, j4):
            await j.close()
        await raw.close()
    finally:
        b.stop()


if __name__ == "__main__":
    run([
        test_every_publisher_reaches_raw_and_json_subscribers,
        test_mixed_compression_identical_payloads,
        test_many_topics_unsubscribe_not_subscribed,
        test_history_resume_then_live_without_dup_or_hole,
        test_gap_when_history_is_short,
    ], timeout=90)
