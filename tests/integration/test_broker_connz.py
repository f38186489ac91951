"""GET /connz and GET /subsz list connections and topics for operators, in
pages: real websocket clients on two loop threads, their listing contents
(peer, endpoint, topics, deliveries), paging that covers every connection
once, the limit cap, bad arguments, and a closed connection leaving the
listing.  The admin protection is in test_auth.py (like /stats)."""
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402


def get(b, path, status=200):
    st, hdr, body = b.http("GET", path)
    eq(st, status, f"GET {path}: {body[:200]!r}")
    return json.loads(body)


def peer_of(ws):
    host, port = ws.local_address[:2]
    return f"{host}:{port}"


async def test_connz():
    b = broker.start(threads=2)
    try:
        subs = [await b.connect("/sub/a") for _ in range(3)]
        jsons = [await b.connect("/ws") for _ in range(2)]
        for i, ws in enumerate(jsons):
            json.loads(await asyncio.wait_for(ws.recv(), 10))  # welcome
            for n, topic in enumerate(("a", f"j{i}")):
                await ws.send(json.dumps({"op": "sub", "topic": topic, "id": n + 1}))
                json.loads(await asyncio.wait_for(ws.recv(), 10))  # ack
        pub = await b.connect("/pub/b")
        everyone = subs + jsons + [pub]
        wait_until(lambda: b.stats()["subscriptions"] == 7, 10, "7 subscriptions")
        for i in range(4):
            b.publish("a", f"m{i}")
        for ws in subs + jsons:
            for i in range(4):
                m = await asyncio.wait_for(ws.recv(), 10)
                check(f"m{i}" in m, f"delivery {m!r}")

        page = get(b, "/connz")
        eq((page["total"], page["offset"], page["limit"]), (6, 0, 100), "page header")
        rows = {r["peer"]: r for r in page["connections"]}
        eq(set(rows), {peer_of(ws) for ws in everyone}, "every connection listed once")
        for ws in subs:
            r = rows[peer_of(ws)]
            eq((r["endpoint"], r["topic"], r["topics"], r["messages_out"]),
               ("/sub/", "a", 1, 4), "a /sub/ connection")
            check(r["bytes_out"] >= 8 and r["queued_bytes"] >= 0 and r["age_s"] >= 0, str(r))
        for ws in jsons:
            r = rows[peer_of(ws)]
            eq((r["endpoint"], r["topics"]), ("/ws", 2), "a JSON connection")
            check("topic" not in r and r["messages_out"] >= 4, str(r))  # acks count too
        r = rows[peer_of(pub)]
        eq((r["endpoint"], r["topic"], r["topics"], r["messages_out"]), ("/pub/", "b", 0, 0),
           "a /pub/ connection")
        eq({r["thread"] for r in rows.values()}, {0, 1}, "both loop threads listed")

        # Pages of 4 cover everyone exactly once; past the end is empty.
        seen = []
        for off in (0, 4):
            p = get(b, f"/connz?offset={off}&limit=4")
            eq((p["total"], p["offset"], p["limit"]), (6, off, 4), "page header")
            seen += [r["peer"] for r in p["connections"]]
        eq(sorted(seen), sorted(rows), "two pages cover every connection once")
        eq(get(b, "/connz?offset=6")["connections"], [], "past the end")
        eq(get(b, "/connz?offset=18446744073709551615")["connections"], [], "huge offset")
        eq(get(b, "/connz?limit=5000")["limit"], 1000, "limit capped at 1000")
        for bad in ("limit=0", "limit=x", "offset=-1", "offset=99999999999999999999"):
            get(b, f"/connz?{bad}", 400)

        # /subsz: one topic, pages, unknown and bad names.
        eq(get(b, "/subsz?topic=a")["topics"], [{"topic": "a", "subscribers": 5, "seq": 4}],
           "/subsz?topic=a")
        get(b, "/subsz?topic=nope", 404)
        get(b, "/subsz?topic=", 400)
        p = get(b, "/subsz")
        eq(p["total"], 3, "topics a, j0, j1")  # /pub/b creates no topic until it publishes
        names = []
        for off in range(3):
            q = get(b, f"/subsz?offset={off}&limit=1")
            eq(len(q["topics"]), 1, "one per page")
            names.append(q["topics"][0]["topic"])
        eq(sorted(names), ["a", "j0", "j1"], "pages of one cover every topic")
        eq(get(b, "/subsz?offset=3")["topics"], [], "past the end")

        # A closed connection leaves the listing.
        gone = peer_of(subs[0])
        await subs[0].close()
        wait_until(lambda: get(b, "/connz")["total"] == 5, 10, "5 connections after a close")
        check(gone not in {r["peer"] for r in get(b, "/connz")["connections"]}, "closed one gone")
        for ws in everyone[1:]:
            await ws.close()
        wait_until(lambda: get(b, "/connz")["total"] == 0, 10, "no connections left")
    finally:
        b.stop()


def test_subsz_cap():
    """A limit over 1000 returns 1000 entries, not more (the /connz page uses
    the same argument parsing and copies at most limit rows)."""
    b = broker.start("--topic-create-rate", "0", threads=2)
    try:
        for i in range(1005):
            eq(b.publish(f"t{i}", "x")["seq"], 1, "publish")
        p = get(b, "/subsz?limit=5000")
        eq((p["total"], p["limit"], len(p["topics"])), (1005, 1000, 1000), "capped page")
        q = get(b, "/subsz?offset=1000&limit=1000")
        eq(len(q["topics"]), 5, "the rest")
        names = {t["topic"] for t in p["topics"] + q["topics"]}
        eq(len(names), 1005, "two pages cover every topic once")
    finally:
        b.stop()


run([test_connz, test_subsz_cap])
