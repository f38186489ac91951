"""Wildcard subscriptions against build/ringcast with real clients
(python3-websockets, http.client): JSON and raw pattern subscribers on two
threads get exactly the matching messages with their concrete topic and
seq, in order; overlapping patterns (and an exact subscription beside them)
deliver a message once per connection; unsubscribing a pattern stops it;
publishing to a pattern is refused everywhere; bad patterns are refused;
access rules apply to every subject a pattern can match."""
import asyncio
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import BUILD, Proc, check, eq, run, wait_until  # noqa: E402


async def raw_payloads(ws, n):
    return [await asyncio.wait_for(ws.recv(), 10) for _ in range(n)]


async def msgs(jc, n):
    out = []
    while len(out) < n:
        m = await jc.recv()
        check(m.get("op") == "msg", f"expected a msg, got {m}")
        out.append((m["topic"], m["seq"], m["data"]))
    return out


async def test_json_and_raw_pattern_subscribers_on_two_threads():
    b = broker.start(threads=2)
    try:
        subs = {}
        for pat in ("news.*", "news.>", "*.eu.*", ">", "news.eu.fr"):
            jc = await b.json_client()
            a = await jc.ack({"op": "sub", "topic": pat, "id": 1})
            if pat == "news.eu.fr":
                eq(a.get("seq"), 0, "an exact topic's ack has its seq")
            else:
                check("seq" not in a, f"a pattern's ack has no seq: {a}")
            subs[pat] = jc
        raws = [await b.connect("/sub/news.%2A"), await b.connect("/sub/news.>")]
        topics = ["news.eu.fr", "news.us", "sport.eu.de", "news", "news.eu.fr", "weather.eu.x.y",
                  "news.us", "a*.eu.b"]
        seqs = {}
        for i, t in enumerate(topics):
            r = b.publish(t.replace("*", "%2A"), f"p{i}")
            seqs.setdefault(t, 0)
            seqs[t] += 1
            eq((r["topic"], r["seq"]), (t, seqs[t]), f"publish {t}")

        def want(pat):
            out, n = [], {}
            for i, t in enumerate(topics):
                n[t] = n.get(t, 0) + 1
                if broker_match(pat, t):
                    out.append((t, n[t], f"p{i}"))
            return out

        for pat, jc in subs.items():
            w = want(pat)
            eq(await msgs(jc, len(w)), w, f"JSON subscriber of {pat}")
            await jc.expect_quiet(0.3)
        for ws, pat in zip(raws, ("news.*", "news.>")):
            w = [p for _, _, p in want(pat)]
            eq(await raw_payloads(ws, len(w)), w, f"raw /sub/{pat}")
        for jc in subs.values():
            await jc.close()
        for r in raws:
            await r.close()
    finally:
        b.stop()


def broker_match(pat, subj):
    """The reference rules: '*' one token, a last '>' one or more."""
    p, s = pat.split("."), subj.split(".")
    for i, tok in enumerate(p):
        if tok == ">" and i == len(p) - 1:
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


async def test_overlapping_subscriptions_deliver_once():
    b = broker.start(threads=2)
    try:
        jc = await b.json_client()
        for i, t in enumerate(("room.1", "room.*", "room.>", ">", "*.1")):
            await jc.ack({"op": "sub", "topic": t, "id": i})
        other = await b.json_client()
        await other.ack({"op": "sub", "topic": "room.*", "id": 0})
        out0 = b.stats()["messages_out"]
        for i in range(50):
            b.publish("room.1", str(i))
        got = await msgs(jc, 50)
        eq(got, [("room.1", i + 1, i) for i in range(50)], "each message once, in seq order")
        eq(await msgs(other, 50), [("room.1", i + 1, i) for i in range(50)],
           "another connection's pattern subscription")
        await jc.expect_quiet(0.5)
        eq(b.stats()["messages_out"] - out0, 100, "deliveries counted: 2 connections x 50")
        # Unsubscribing one pattern leaves the others; all gone, nothing comes.
        await jc.ack({"op": "unsub", "topic": "room.*", "id": 9})
        b.publish("room.1", '"x"')
        eq(await msgs(jc, 1), [("room.1", 51, "x")], "still matched by the others")
        for i, t in enumerate(("room.1", "room.>", ">", "*.1")):
            await jc.ack({"op": "unsub", "topic": t, "id": 10 + i})
        await jc.err({"op": "unsub", "topic": "room.>", "id": 20}, "not_subscribed")
        b.publish("room.1", '"y"')
        await msgs(other, 2)
        await jc.expect_quiet(0.5)
        st = b.stats()
        eq(st["subscriptions"], 1, "only other's room.* is left")
        await jc.close()
        await other.close()
    finally:
        b.stop()


async def test_patterns_refused_where_they_make_no_sense():
    b = broker.start()
    try:
        jc = await b.json_client()
        await jc.err({"op": "pub", "topic": "news.*", "data": 1, "id": 1}, "bad_topic")
        await jc.err({"op": "pub", "topic": "news.>", "data": 1, "id": 2}, "bad_topic")
        await jc.err({"op": "sub", "topic": "a.>.b", "id": 3}, "bad_topic")
        await jc.err({"op": "sub", "topic": ".".join(["x"] * 32 + ["*"]), "id": 33}, "bad_topic")
        await jc.ack({"op": "sub", "topic": ".".join(["x"] * 31 + ["*"]), "id": 32})
        await jc.ack({"op": "unsub", "topic": ".".join(["x"] * 31 + ["*"]), "id": 34})
        await jc.err({"op": "sub", "topic": "news.*", "from": 1, "id": 4}, "bad_field")
        # Wildcards inside a token are plain characters: publishable.
        a = await jc.ack({"op": "pub", "topic": "news*", "data": 1, "id": 5})
        eq(a["seq"], 1, "news* is an ordinary topic")
        # Subscribing twice to a pattern is harmless.
        await jc.ack({"op": "sub", "topic": "x.*", "id": 6})
        a = await jc.ack({"op": "sub", "topic": "x.*", "id": 7})
        check("seq" not in a, f"second ack of a pattern: {a}")
        for path in ("/publish/news.%2A", "/publish/news.>", "/publish/%3E"):
            st, _, body = b.http("POST", path, b"x")
            eq(st, 400, f"POST {path} ({body!r})")
            check(b"pattern" in body, f"the reason says why: {body!r}")
        for path in ("/pub/news.%2A", "/sub/a.>.b", "/sub/news.%2A?from=3"):
            r = await b.upgrade_status(path)
            check("400" in r, f"{path}: {r}")
        eq(b.stats()["subscriptions"], 1, "x.* only")
        await jc.close()
    finally:
        b.stop()


async def test_access_rules_cover_every_subject_of_a_pattern():
    d = tempfile.mkdtemp(prefix="rc-pat-")
    path = os.path.join(d, "access.ini")
    with open(path, "w") as f:
        f.write("[topic *]\nsubscribe = anonymous\npublish = anonymous\n"
                "[topic secret.x]\nsubscribe = nobody\n"
                "[topic vip.*]\nsubscribe = token\n")
    b = broker.start("--auth", path)
    try:
        jc = await b.json_client()
        await jc.ack({"op": "sub", "topic": "news.*", "id": 1})
        await jc.ack({"op": "sub", "topic": "secret.y.>", "id": 2})
        for i, pat in enumerate(("secret.*", "*.x", ">", "vip.>", "*.*", "v*.>")):
            if pat == "v*.>":
                await jc.ack({"op": "sub", "topic": pat, "id": 10 + i})  # 'v*' is literal
            else:
                await jc.err({"op": "sub", "topic": pat, "id": 10 + i}, "forbidden")
        await jc.close()
    finally:
        b.stop()


async def test_pattern_resume_is_exact_subs_then_the_pattern():
    """The documented resume of a pattern: exact subs with from for the
    topics seen, then the pattern; replay, then each message once."""
    b = broker.start(threads=2)
    try:
        for i in range(5):
            b.publish("news.eu", f"e{i + 1}")
        jc = await b.json_client()
        await jc.ack({"op": "sub", "topic": "news.eu", "from": 3, "id": 1})
        eq(await msgs(jc, 3), [("news.eu", s, f"e{s}") for s in (3, 4, 5)], "replay")
        await jc.ack({"op": "sub", "topic": "news.>", "id": 2})
        b.publish("news.eu", "e6")
        b.publish("news.us", "u1")
        b.publish("news.eu", "e7")
        eq(await msgs(jc, 3), [("news.eu", 6, "e6"), ("news.us", 1, "u1"), ("news.eu", 7, "e7")],
           "live, each once")
        await jc.expect_quiet(0.5)
        await jc.close()
    finally:
        b.stop()


def test_cli_subscribes_to_patterns():
    """ringcast-sub 'news.>' 'x.*' prints the matching messages of
    ringcast-pub with their topics; --from with a pattern is a usage error."""
    b = broker.start(threads=2)
    try:
        url = f"ws://127.0.0.1:{b.port}"
        sub = Proc([os.path.join(BUILD, "ringcast-sub"), "-v", "--count", "3", "--timeout", "20",
                    url, "news.>", "x.*"], name="ringcast-sub")
        wait_until(lambda: b.stats()["subscriptions"] == 2, 10, "both patterns subscribed")
        for topic, msg in (("news.a", "m1"), ("sport.b", "m2"), ("news.b.c", "m3"),
                           ("x.y.z", "m4"), ("x.y", "m5")):
            r = subprocess.run([os.path.join(BUILD, "ringcast-pub"), url, topic, msg],
                               capture_output=True, timeout=30)
            eq(r.returncode, 0, f"ringcast-pub {topic} ({r.stderr!r})")
        eq(sub.wait(timeout=30), 0, f"ringcast-sub exit ({sub.text()!r})")
        eq(sub.text("stdout").splitlines(), ["news.a m1", "news.b.c m3", "x.y m5"], "printed")
        r = subprocess.run([os.path.join(BUILD, "ringcast-sub"), "--from", "1", url, "news.*"],
                           capture_output=True, text=True, timeout=30)
        eq(r.returncode, 2, f"--from with a pattern ({r.stderr!r})")
        check("pattern" in r.stderr, f"says why: {r.stderr!r}")
    finally:
        b.stop()


if __name__ == "__main__":
    run([
        test_json_and_raw_pattern_subscribers_on_two_threads,
        test_overlapping_subscriptions_deliver_once,
        test_patterns_refused_where_they_make_no_sense,
        test_access_rules_cover_every_subject_of_a_pattern,
        test_pattern_resume_is_exact_subs_then_the_pattern,
        test_cli_subscribes_to_patterns,
    ], timeout=90)
