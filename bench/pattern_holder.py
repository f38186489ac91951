"""Holds N distinct patterns on JSON connections of a ringcast broker, 1,000
per connection (the default max_topics_per_connection), for
bench/patterns.sh: patterns spread over the trie
(a fixed first token, a '*' first token, and under the bench's own topic
bench0) so a publish to bench<k>.x passes nodes with 100,000/3 children.
None of them matches the bench's topics.  Prints "ready" once every sub is
acked, then waits until killed.

    /usr/bin/python3 bench/pattern_holder.py PORT N
"""
import asyncio
import json
import sys

import websockets


PER_CONN = 1000
FORMS = ("idle.{}.*", "*.p{}", "bench0.{}.>")


async def hold(port, first, n, conns):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None,
                                  ping_interval=None, open_timeout=10)
    conns.append(ws)
    await asyncio.wait_for(ws.recv(), 10)  # welcome
    for i in range(first, first + n):
        await ws.send(json.dumps({"op": "sub", "topic": FORMS[i % 3].format(i), "id": i}))
    acked = 0
    while acked < n:
        m = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if m.get("op") == "err":
            sys.exit(f"pattern_holder: {m}")
        acked += m.get("op") == "ack"


async def main(port, n):
    conns = []
    for first in range(0, n, PER_CONN * 10):  # ten connections at a time
        await asyncio.gather(*(hold(port, f, min(PER_CONN, n - f), conns)
                               for f in range(first, min(n, first + PER_CONN * 10), PER_CONN)))
    print("ready", flush=True)
    await asyncio.Event().wait()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
