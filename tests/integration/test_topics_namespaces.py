"""Namespaces against build/ringcast with real clients (python3-websockets,
http.client): history_size differs per namespace (the resume gap shows it),
client_publish = off refuses WebSocket publishers but not HTTP, a
namespace's max_message_size, unknown namespaces refused everywhere when
configured so, a custom separator, and SIGHUP changing a namespace's
options for the next decision."""
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import BUILD, check, eq, run, wait_until  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rc-ns-")


def config(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


BASE = """[history]
history_size = 100

[namespaces]
unknown = refuse

[namespace chat]
history_size = 2

[namespace feed]
history_size = 5
client_publish = off
max_message_size = 10
"""


async def resume(jc, topic, n_msgs, ident):
    """sub with from=1: returns the gap (or None) and the seqs replayed."""
    a = await jc.ack({"op": "sub", "topic": topic, "from": 1, "id": ident})
    eq(a["seq"], n_msgs, f"{topic}: ack seq")
    gap, seqs = None, []
    while len(seqs) < n_msgs and (gap is None or len(seqs) < n_msgs - (gap[1] - gap[0] + 1)):
        m = await jc.recv()
        if m["op"] == "gap":
            gap = (m["from"], m["to"])
        else:
            eq((m["op"], m["topic"]), ("msg", topic), "replayed message")
            seqs.append(m["seq"])
    return gap, seqs


async def test_history_and_publish_rights_per_namespace():
    b = broker.start(config=config("a.ini", BASE))
    try:
        for t in ("chat:a", "feed:a", "plain"):
            for i in range(6):
                eq(b.publish(t, f"m{i}")["seq"], i + 1, f"POST {t}")
        jc = await b.json_client()
        eq(await resume(jc, "chat:a", 6, 1), ((1, 4), [5, 6]), "chat keeps 2")
        eq(await resume(jc, "feed:a", 6, 2), ((1, 1), [2, 3, 4, 5, 6]), "feed keeps 5")
        eq(await resume(jc, "plain", 6, 3), (None, [1, 2, 3, 4, 5, 6]), "top level keeps 100")
        # feed: WebSocket clients may not publish, HTTP may.
        await jc.err({"op": "pub", "topic": "feed:a", "data": 1, "id": 4}, "forbidden")
        check("403" in await b.upgrade_status("/pub/feed:a"), "raw /pub/feed:a refused")
        pc = await b.json_client()  # jc would get its own message before the ack
        await pc.ack({"op": "pub", "topic": "chat:a", "data": 1, "id": 5})
        # feed's max_message_size (10 bytes) applies to every publisher.
        st, _, body = b.http("POST", "/publish/feed:a", b"x" * 11)
        eq(st, 413, f"11 bytes to feed ({body!r})")
        eq(b.publish("feed:a", "x" * 10)["seq"], 7, "10 bytes pass")
        await pc.ack({"op": "pub", "topic": "chat:a", "data": "x" * 100, "id": 6})
        for t, seq in (("chat:a", 7), ("feed:a", 7), ("chat:a", 8)):
            m = await jc.recv()
            eq((m["op"], m["topic"], m["seq"]), ("msg", t, seq), "live messages")
        # Unknown namespaces are refused everywhere (unknown = refuse).
        st, _, body = b.http("POST", "/publish/nope:x", b"1")
        eq(st, 404, f"POST to an unknown namespace ({body!r})")
        await jc.err({"op": "sub", "topic": "nope:x", "id": 7}, "unknown_namespace")
        await jc.err({"op": "pub", "topic": "nope:x", "data": 1, "id": 8}, "unknown_namespace")
        check("404" in await b.upgrade_status("/sub/nope:x"), "raw /sub/nope:x refused")
        await jc.ack({"op": "sub", "topic": "chat:*", "id": 9})  # one literal token
        await jc.close()
        await pc.close()
    finally:
        b.stop()


async def test_separator_and_defaults():
    b = broker.start(config=config("b.ini", "[namespaces]\nseparator = /\n\n"
                                   "[namespace room]\nhistory_size = 1\n"))
    try:
        for i in range(3):
            b.publish("room%2Fx", f"m{i}")
            b.publish("room:x", f"m{i}")
            b.publish("other%2Fx", f"m{i}")
        jc = await b.json_client()
        eq(await resume(jc, "room/x", 3, 1), ((1, 2), [3]), "room/ keeps 1")
        eq(await resume(jc, "room:x", 3, 2), (None, [1, 2, 3]), "':' is no separator now")
        eq(await resume(jc, "other/x", 3, 3), (None, [1, 2, 3]),
           "unknown namespaces use the top level by default")
        await jc.close()
    finally:
        b.stop()


async def test_sighup_changes_a_namespace():
    path = config("c.ini", BASE)
    b = broker.start(config=path)
    try:
        jc = await b.json_client()
        await jc.ack({"op": "pub", "topic": "chat:a", "data": 1, "id": 1})
        st, _, _ = b.http("POST", "/publish/nope:x", b"1")
        eq(st, 404, "before the reload")
        config("c.ini", BASE.replace("history_size = 2\n", "history_size = 2\nclient_publish = off\n")
               + "\n[namespace nope]\nhistory_size = 3\n")
        mark = len(b.log())
        b.signal(signal.SIGHUP)
        wait_until(lambda: re.search(r"reloaded", b.log()[mark:]), 10, "the reload log line")
        await jc.err({"op": "pub", "topic": "chat:a", "data": 2, "id": 2}, "forbidden")
        for i in range(5):
            eq(b.publish("nope:y", f"m{i}")["seq"], i + 1, "nope exists now")
        eq(await resume(jc, "nope:y", 5, 3), ((1, 2), [3, 4, 5]), "nope keeps 3")
        await jc.close()
    finally:
        b.stop()


def test_bad_sections_refused():
    for text, why in (("[namespace bad name!]\nhistory_size = 1\n", "namespace name"),
                      ("[namespace x]\nbogus = 1\n", "unknown key"),
                      ("[namespace x]\nhistory_size = lots\n", "history_size"),
                      ("[namespaces]\nseparator = .\n", "separator")):
        p = config("bad.ini", text)
        r = subprocess.run([os.path.join(BUILD, "ringcast"), "--config", p,
                                   "--check-config"], capture_output=True, text=True,
                                  timeout=20)
        check(r.returncode != 0, f"{text!r} accepted")
        check(why in r.stderr and "bad.ini:" in r.stderr, f"{text!r}: {r.stderr!r}")


if __name__ == "__main__":
    run([
        test_history_and_publish_rights_per_namespace,
        test_separator_and_defaults,
        test_sighup_changes_a_namespace,
        test_bad_sections_refused,
    ], timeout=90)
