"""build/ringcast process lifecycle: SIGTERM/SIGINT drain every kind of
connection with close 1001 and exit 0; SIGHUP reloads the config file
(new limits enforced on existing connections, command-line flags keep
their precedence, the log says what changed, a broken file is refused)."""
import asyncio
import os
import re
import signal
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from broker import RawSocketWS, close_code_of, write_config  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402


async def drain(sig):
    b = broker.start(threads=2)
    try:
        raws = [await b.connect("/sub/d", compression=c) for c in ("deflate", None, None)]
        jsons = [await b.json_client(compression=c) for c in ("deflate", None)]
        for j in jsons:
            await j.ack({"op": "sub", "topic": "d", "id": 1})
        pub = await b.connect("/pub/d")
        echo = await b.connect("/echo")
        sock = RawSocketWS(b.port, "/sub/d")
        await pub.send("before shutdown")
        for r in raws:
            eq(await asyncio.wait_for(r.recv(), 10), "before shutdown", "delivery before drain")
        eq(sock.recv_frame(), (1, b"before shutdown"), "raw socket delivery")
        b.signal(sig)
        codes = [await close_code_of(w, 15) for w in raws + [j.ws for j in jsons] + [pub, echo]]
        eq(codes, [1001] * len(codes), f"close codes after {sig.name}")
        eq(await asyncio.to_thread(sock.close_code, 15), 1001, "raw socket close code")
        sock.close()
        eq(b.proc.wait(15), 0, f"exit status after {sig.name}")
        check(re.search(r"draining", b.log()), "the log says it drains")
    finally:
        if b.alive():
            b.stop()


async def test_sigterm_drains_with_1001():
    await drain(signal.SIGTERM)


async def test_sigint_drains_with_1001():
    await drain(signal.SIGINT)


def wait_log(b, regex, after, timeout=10):
    """Waits for regex in the log after offset `after`; returns the match."""
    return wait_until(lambda: re.search(regex, b.log()[after:]), timeout, f"log /{regex}/")


async def test_sighup_reload():
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "ringcast.ini")
        write_config(cfg, {"limits": {"max_topics_per_connection": 2},
                           "history": {"history_size": 100}})
        # The flag overrides the file, before and after the reload.
        b = broker.start("--history-size", "3", config=cfg)
        try:
            jc = await b.json_client()
            await jc.ack({"op": "sub", "topic": "a", "id": 1})
            await jc.ack({"op": "sub", "topic": "b", "id": 2})
            await jc.err({"op": "sub", "topic": "c", "id": 3}, "too_many_topics")

            write_config(cfg, {"limits": {"max_topics_per_connection": 4},
                               "history": {"history_size": 100}})
            mark = len(b.log())
            b.signal(signal.SIGHUP)
            m = wait_log(b, r"reloaded[^\n]*", mark)
            line = m.group(0)
            check(cfg in line, f"reload log names the file: {line!r}")
            check(re.search(r"max_topics_per_connection[ =:]+2 -> 4", line),
                  f"reload log says what changed: {line!r}")
            check("history_size" not in line, f"unchanged keys are not listed: {line!r}")
            # The same connection now gets the new limit.
            await jc.ack({"op": "sub", "topic": "c", "id": 4})
            await jc.ack({"op": "sub", "topic": "d", "id": 5})
            await jc.err({"op": "sub", "topic": "e", "id": 6}, "too_many_topics")
            # --history-size 3 still wins over the file's 100.
            for i in range(10):
                b.publish("fresh", f"m{i + 1}")
            await jc.ack({"op": "sub", "topic": "a", "id": 7})  # still subscribed: ack
            j2 = await b.json_client()
            await j2.ack({"op": "sub", "topic": "fresh", "id": 1, "from": 1})
            eq(await j2.recv(), {"op": "gap", "topic": "fresh", "from": 1, "to": 7},
               "history_size from the flag after reload")

            # Nothing changed: the log says so.
            mark = len(b.log())
            b.signal(signal.SIGHUP)
            line = wait_log(b, r"reloaded[^\n]*", mark).group(0)
            check("no change" in line, f"an unchanged reload says so: {line!r}")

            # A broken file is refused and the running limits stay.
            with open(cfg, "w") as f:
                f.write("[limits]\nmax_topics_per_connection = lots\n")
            mark = len(b.log())
            b.signal(signal.SIGHUP)
            wait_log(b, r"keeping the running configuration", mark)
            await jc.err({"op": "sub", "topic": "e", "id": 8}, "too_many_topics")
            await jc.close()
            await j2.close()
            check(b.alive(), "broker survives reloads")
        finally:
            b.stop()


if __name__ == "__main__":
    run([
        test_sigterm_drains_with_1001,
        test_sigint_drains_with_1001,
        test_sighup_reload,
    ], timeout=60)
