"""Presence and join/leave against build/ringcast with real clients
(python3-websockets, raw sockets, a python3 subprocess killed with
SIGKILL): who is subscribed (connection id, ?info=, the token's user) over
JSON and GET /presence/<topic>, counts with presence_stats, join and leave
events across subscribe, unsubscribe, disconnect and a crash, answers
bounded (100 in JSON mode, pages of at most 1,000 over HTTP, "truncated"),
and presence refused where the namespace has it off."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import BUILD, Proc, check, eq, run, wait_until  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rc-pres-")
CONF = os.path.join(TMP, "p.ini")
with open(CONF, "w") as f:
    f.write("[namespace room]\npresence = on\njoin_leave = on\n\n"
            "[namespace quiet]\nhistory_size = 1\n")


async def event(jc, op, timeout=10):
    m = await jc.recv(timeout)
    eq(m.get("op"), op, f"expected a {op} event, got {m}")
    return m


async def ask(jc, obj):
    """A presence command: its answer is the next message (it has no ack)."""
    await jc.send(obj)
    m = await jc.recv()
    eq((m.get("op"), m.get("id")), (obj["op"], obj["id"]), f"answer to {obj}: {m}")
    return m


def get_json(b, path):
    st, _, body = b.http("GET", path)
    eq(st, 200, f"GET {path} ({body[:200]!r})")
    return json.loads(body)


async def test_presence_and_join_leave():
    b = broker.start(config=CONF, threads=2)
    try:
        ws = await b.connect("/ws?info=alice%20laptop")
        alice = broker.JsonClient(ws)
        eq((await alice.recv())["op"], "welcome", "welcome")
        await alice.ack({"op": "sub", "topic": "room:1", "id": 1})
        j = await event(alice, "join")
        eq((j["topic"], j.get("info")), ("room:1", "alice laptop"), "alice's own join")
        alice_id = j["conn"]
        ws = await b.connect("/ws?info=bob")
        bob = broker.JsonClient(ws)
        await bob.recv()
        await bob.ack({"op": "sub", "topic": "room:1", "id": 1})
        j = await event(alice, "join")
        eq(j.get("info"), "bob", "alice sees bob join")
        bob_id = j["conn"]
        check(bob_id != alice_id, "connection ids differ")
        await event(bob, "join")
        # Who is there: JSON (anyone who may subscribe) and HTTP (admin).
        carol = await b.json_client()
        p = await ask(carol, {"op": "presence", "topic": "room:1", "id": "p"})
        eq((p["op"], p["id"], p["total"], p["truncated"]), ("presence", "p", 2, False), f"{p}")
        eq(sorted((c["conn"], c.get("info")) for c in p["clients"]),
           sorted([(alice_id, "alice laptop"), (bob_id, "bob")]), "clients")
        s = await ask(carol, {"op": "presence_stats", "topic": "room:1", "id": "s"})
        eq((s["clients"], s["users"]), (2, 0), f"stats {s}")
        h = get_json(b, "/presence/room:1")
        eq((h["total"], len(h["clients"]), h["truncated"]), (2, 2, False), f"GET {h}")
        h = get_json(b, "/presence/room:1?limit=1&offset=1")
        eq((h["total"], len(h["clients"]), h["truncated"]), (2, 1, False), "the last page")
        h = get_json(b, "/presence/room:1?limit=1")
        eq((len(h["clients"]), h["truncated"]), (1, True), "a first page of one")
        eq(get_json(b, "/presence/room:nobody")["total"], 0, "an empty topic")
        # Leave: unsubscribe, then a clean close, then a crash.
        await bob.ack({"op": "unsub", "topic": "room:1", "id": 2})
        eq((await event(alice, "leave"))["conn"], bob_id, "bob unsubscribed")
        await bob.ack({"op": "sub", "topic": "room:1", "id": 3})
        await event(alice, "join")
        await bob.close()
        eq((await event(alice, "leave"))["conn"], bob_id, "bob closed")
        crash = subprocess.Popen(["/usr/bin/python3", "-c",
                                  "import socket,sys,time,base64,os\n"
                                  "s=socket.create_connection(('127.0.0.1',%d))\n"
                                  "k=base64.b64encode(os.urandom(16)).decode()\n"
                                  "s.sendall(('GET /sub/room:1?info=crash HTTP/1.1\\r\\n"
                                  "Host: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                                  "Sec-WebSocket-Key: '+k+'\\r\\nSec-WebSocket-Version: 13"
                                  "\\r\\n\\r\\n').encode())\n"
                                  "s.recv(1000); print('up', flush=True); time.sleep(60)\n"
                                  % b.port], stdout=subprocess.PIPE)
        try:
            eq(crash.stdout.readline().strip(), b"up", "the crashing client connected")
            j = await event(alice, "join")
            eq(j.get("info"), "crash", "a raw subscriber joins too")
            crash.send_signal(signal.SIGKILL)
            t0 = time.monotonic()
            eq((await event(alice, "leave", timeout=30))["conn"], j["conn"], "the crash's leave")
            check(time.monotonic() - t0 < 30, "within the idle timeout")
        finally:
            crash.kill()
            crash.wait(10)
        p = await ask(carol, {"op": "presence", "topic": "room:1", "id": "p2"})
        eq([c["conn"] for c in p["clients"]], [alice_id], "alice alone")
        await alice.close()
        await carol.close()
    finally:
        b.stop()


async def test_bounded_answers_and_off():
    b = broker.start(config=CONF)
    socks = []
    try:
        for i in range(150):
            socks.append(broker.RawSocketWS(b.port, f"/sub/room:big?info=n{i}"))
        jc = await b.json_client()
        p = await ask(jc, {"op": "presence", "topic": "room:big", "id": 1})
        eq((p["total"], len(p["clients"]), p["truncated"]), (150, 100, True), "JSON: 100 + truncated")
        s = await ask(jc, {"op": "presence_stats", "topic": "room:big", "id": 2})
        eq(s["clients"], 150, "stats count them all")
        seen = []
        for off in (0, 100):
            h = get_json(b, f"/presence/room:big?offset={off}&limit=100")
            seen += [c["info"] for c in h["clients"]]
        eq(sorted(seen), sorted(f"n{i}" for i in range(150)), "two pages cover everyone once")
        h = get_json(b, "/presence/room:big?limit=100000")
        eq((h["limit"], len(h["clients"])), (1000, 150), "limit capped at 1000")
        await jc.err({"op": "presence", "topic": "quiet:x", "id": 3}, "presence_off")
        await jc.err({"op": "presence", "topic": "plain", "id": 4}, "presence_off")
        st, _, _ = b.http("GET", "/presence/quiet:x")
        eq(st, 404, "HTTP presence where it is off")
        st, _, _ = b.http("GET", "/presence/room:x?limit=0")
        eq(st, 400, "limit=0")
        for path in ("/ws?info=" + "x" * 129, "/ws?info=%FF"):
            r = await b.upgrade_status(path)
            check("400" in r, f"{path[:30]}: {r}")
        await jc.close()
    finally:
        for s in socks:
            s.close()
        b.stop()


async def test_cli_prints_join_and_leave():
    """ringcast-sub (the C client) reports others' join and leave on stderr."""
    b = broker.start(config=CONF)
    try:
        sub = Proc([os.path.join(BUILD, "ringcast-sub"), "--count", "1", "--timeout", "20",
                    f"ws://127.0.0.1:{b.port}", "room:cli"], name="ringcast-sub")
        wait_until(lambda: b.stats()["subscriptions"] == 1, 10, "ringcast-sub subscribed")
        ws = await b.connect("/ws?info=dora")
        dora = broker.JsonClient(ws)
        await dora.recv()
        await dora.ack({"op": "sub", "topic": "room:cli", "id": 1})
        await event(dora, "join")  # her own
        await dora.ack({"op": "unsub", "topic": "room:cli", "id": 2})
        sub.wait_output(r"leave on 'room:cli': connection \d+ info dora")
        check(re.search(r"join on 'room:cli': connection \d+ info dora", sub.text()),
              f"the join came first: {sub.text()!r}")
        b.publish("room:cli", "bye")
        eq(sub.wait(timeout=30), 0, "ringcast-sub exit after its message")
        eq(sub.text("stdout"), "bye\n", "the message")
        await dora.close()
    finally:
        b.stop()


if __name__ == "__main__":
    run([
        test_presence_and_join_leave,
        test_bounded_answers_and_off,
        test_cli_prints_join_and_leave,
    ], timeout=120)
