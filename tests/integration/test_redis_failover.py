"""engine = redis when Redis fails: unreachable at start, lost while
running, back with or without its data, and one node cut off while the
others go on publishing.  Subscribers stay connected throughout and end
with every message or an exact gap/reset, never a silent hole or a
duplicate; publishes are refused with a reason while Redis is away."""
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
import tlsutil  # noqa: E402
from broker import close_code_of  # noqa: E402
from rctest import BUILD, Proc, check, eq, free_port, run, wait_until  # noqa: E402
from redisutil import Redis  # noqa: E402
from test_redis import json_msgs, stop_all  # noqa: E402


def node(url, *extra, threads=2):
    return broker.start("--engine", "redis", "--redis-url", url, *extra, threads=threads)


def health(b):
    try:
        return b.http("GET", "/healthz", timeout=2)[0]
    except OSError:
        return None


async def test_unreachable_at_start():
    """No Redis yet: the broker runs, /healthz answers 503 and the log says
    why; once Redis starts it connects (backoff) and /healthz turns 200."""
    port = free_port()
    lport = free_port()
    p = Proc([os.path.join(BUILD, "ringcast"), "--listen", f"127.0.0.1:{lport}",
              "--engine", "redis", "--redis-url", f"redis://127.0.0.1:{port}"], name="ringcast")
    b = broker.Broker(p, lport)
    redis = None
    try:
        wait_until(lambda: health(b) == 503, 10, "/healthz 503 while Redis is missing")
        p.wait_output(r"redis: cannot connect to tcp://127\.0\.0\.1:\d+ \(.*refused", timeout=10)
        st, _, body = b.http("POST", "/publish/x", b"m", {"Content-Type": "text/plain"})
        eq(st, 503, f"publish without Redis ({body!r})")
        redis = Redis(port=port)
        wait_until(lambda: health(b) == 200, 15, "/healthz 200 once Redis is up")
        eq(b.publish("x", "m")["seq"], 1, "first publish once connected")
        b.stop()
    finally:
        if redis:
            redis.stop()


async def test_lost_and_back_with_persistence():
    """Redis killed: publishes are refused on every endpoint (503, err
    unavailable, raw publisher closed 1013), subscribers stay; Redis back
    with its data (AOF): the same epoch, numbering goes on, no reset."""
    redis = Redis(persist=True)
    a = node(redis.url)
    b = node(redis.url)
    try:
        jc = await a.json_client()
        await jc.ack({"op": "sub", "topic": "p", "id": 1})
        raw_sub = await a.connect("/sub/p")
        for i in range(1, 4):
            b.publish("p", f"m{i}")
        eq([e[1] for e in await json_msgs(jc, "p", 3)], [1, 2, 3], "before the loss")
        epoch = jc.epoch
        raw_pub = await b.connect("/pub/p")
        redis.kill()
        wait_until(lambda: health(a) == 503 and health(b) == 503, 10, "/healthz 503 on both")
        st, hdrs, body = b.http("POST", "/publish/p", b"x", {"Content-Type": "text/plain"})
        eq(st, 503, f"HTTP publish while Redis is away ({body!r})")
        check(b"unavailable" in body, f"503 says why: {body!r}")
        jp = await b.json_client()
        await jp.err({"op": "pub", "topic": "p", "id": 9, "data": 1}, "unavailable")
        await raw_pub.send("x")
        eq(await close_code_of(raw_pub), 1013, "raw publisher's close code")
        await jc.ack({"op": "ping", "id": 2})  # still connected and served
        redis.start()
        wait_until(lambda: health(a) == 200 and health(b) == 200, 20, "both ready again")
        r = b.publish("p", "m4")
        eq((r["seq"], r["epoch"]), (4, epoch), "numbering and epoch survive")
        eq(await json_msgs(jc, "p", 1), [("msg", 4, "m4")], "live after the return")
        got = [await asyncio.wait_for(raw_sub.recv(), 10) for _ in range(4)]
        eq(got, ["m1", "m2", "m3", "m4"], "raw subscriber across the loss")
        await jc.expect_quiet(0.3)
        st = a.stats()["engine"]
        check(st["reconnects"] >= 1, f"reconnects counted: {st}")
        await raw_sub.close()
    finally:
        stop_all([a, b], redis)


async def test_node_cut_off_replays_or_gaps():
    """Node A loses Redis (its ACL user is switched off and its
    connections killed) while node B publishes: when A is back, its
    subscribers get what they missed from history, in order, and what
    history no longer holds as an exact gap."""
    redis = Redis()
    redis.cli("ACL", "SETUSER", "nodea", "on", ">pw-a", "~*", "&*", "+@all")
    url_a = f"redis://nodea:pw-a@127.0.0.1:{redis.port}"
    a = node(url_a, "--history-size", "4")
    b = node(redis.url, "--history-size", "4")
    try:
        jc = await a.json_client()
        await jc.ack({"op": "sub", "topic": "c", "id": 1})
        raw = await a.connect("/sub/c")
        b.publish("c", "m1")
        eq(await json_msgs(jc, "c", 1), [("msg", 1, "m1")], "before the cut")

        async def cut_and_publish(first, last):
            redis.cli("ACL", "SETUSER", "nodea", "off")
            redis.cli("CLIENT", "KILL", "USER", "nodea")
            wait_until(lambda: health(a) == 503, 10, "node A not ready")
            for i in range(first, last + 1):
                b.publish("c", f"m{i}")
            redis.cli("ACL", "SETUSER", "nodea", "on")
            wait_until(lambda: health(a) == 200, 20, "node A back")

        await cut_and_publish(2, 4)  # 3 missed, history holds 4: replayed
        eq(await json_msgs(jc, "c", 3), [("msg", i, f"m{i}") for i in (2, 3, 4)],
           "missed messages replayed")
        await cut_and_publish(5, 14)  # 10 missed: 11..14 replayed, 5..10 a gap
        eq(await json_msgs(jc, "c", 4),
           [("gap", 5, 10)] + [("msg", i, f"m{i}") for i in range(11, 15)],
           "exact gap, then the rest")
        b.publish("c", "m15")
        eq(await json_msgs(jc, "c", 1), [("msg", 15, "m15")], "live again")
        await jc.expect_quiet(0.3)
        want = ["m1", "m2", "m3", "m4"] + [f"m{i}" for i in range(11, 16)]
        eq([await asyncio.wait_for(raw.recv(), 10) for _ in want], want, "raw subscriber")
        await raw.close()
    finally:
        stop_all([a, b], redis)


async def test_restart_without_persistence_resets():
    """Redis restarts empty: a new epoch, subscribers get a reset and the
    new numbering from 1, a new client's welcome carries the new epoch."""
    redis = Redis()
    a = node(redis.url)
    b = node(redis.url)
    try:
        jc = await a.json_client()
        await jc.ack({"op": "sub", "topic": "e", "id": 1})
        for i in range(1, 4):
            b.publish("e", f"m{i}")
        eq([e[1] for e in await json_msgs(jc, "e", 3)], [1, 2, 3], "before the restart")
        old = jc.epoch
        redis.restart(wipe=True)
        wait_until(lambda: health(a) == 200 and health(b) == 200, 20, "both ready again")
        r = b.publish("e", "n1")
        eq(r["seq"], 1, "numbering restarted")
        check(r["epoch"] != old, f"a new epoch: {r['epoch']} after {old}")
        eq(await json_msgs(jc, "e", 1), [("reset", 0), ("msg", 1, "n1")],
           "reset, then the new numbering")
        jn = await a.json_client()
        eq(jn.epoch, r["epoch"], "welcome epoch of a new client")
        await jc.expect_quiet(0.3)
    finally:
        stop_all([a, b], redis)


class SwitchProxy:
    """A TCP forwarder on loopback (a load balancer's stand-in) in a thread
    of its own: new connections go to the current target port; cut()
    closes the open ones."""

    def __init__(self, target):
        self.target = target
        self.socks = []
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks += [c, u]
            for x, y in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(x, y), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.socks = []

    def stop(self):
        self.cut()
        self.srv.close()


async def test_clients_move_to_another_node():
    """ringcast.js and the C client (ringcast-sub) reach node A through a
    forwarder; A is killed and the forwarder now leads to B: both clients
    reconnect by themselves, resume on B (same epoch) and end with every
    message once, in order, no gap."""
    redis = Redis()
    a = node(redis.url)
    b = node(redis.url)
    proxy = SwitchProxy(a.port)
    js = Proc(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib",
                                    "js_sub.mjs"), f"ws://127.0.0.1:{proxy.port}/ws", "mv"],
              name="js_sub")
    csub = Proc([os.path.join(BUILD, "ringcast-sub"), "-v", f"ws://127.0.0.1:{proxy.port}",
                 "mv"], name="ringcast-sub")
    try:
        def js_msgs():
            return [json.loads(x) for x in js.text("stdout").splitlines() if x.strip()]

        def c_lines():
            return [x for x in csub.text("stdout").splitlines() if x.strip()]

        wait_until(lambda: any(e["ev"] == "open" for e in js_msgs()), 15, "ringcast.js open")
        wait_until(lambda: b.stats()["subscriptions"] == 0 and a.stats()["subscriptions"] == 2,
                   15, "both clients subscribed on A")
        for i in range(1, 6):
            b.publish("mv", f"m{i}")
        wait_until(lambda: len(c_lines()) >= 5 and
                   sum(e["ev"] == "msg" for e in js_msgs()) >= 5, 15, "first five")
        a.signal(signal.SIGKILL)
        a.proc.wait(10)
        proxy.target = b.port
        proxy.cut()
        for i in range(6, 11):
            b.publish("mv", f"m{i}")
        wait_until(lambda: b.stats()["subscriptions"] == 2, 20, "both clients back, on B")
        for i in range(11, 13):
            b.publish("mv", f"m{i}")
        wait_until(lambda: len(c_lines()) >= 12 and
                   sum(e["ev"] == "msg" for e in js_msgs()) >= 12, 20, "all twelve")
        got = [(e["seq"], e["data"]) for e in js_msgs() if e["ev"] == "msg"]
        eq(got, [(i, f"m{i}") for i in range(1, 13)], "ringcast.js: every message once")
        eq([e for e in js_msgs() if e["ev"] in ("gap", "reset")], [], "ringcast.js: no gap/reset")
        eq(c_lines(), [f"mv m{i}" for i in range(1, 13)], "ringcast-sub: every message once")
        check("gap" not in csub.text() and "restart" not in csub.text(),
              f"ringcast-sub saw no gap or restart: {csub.text()!r}")
    finally:
        js.popen.kill()
        csub.popen.kill()
        proxy.stop()
        b.stop()
        redis.stop()


async def test_tls_redis():
    """rediss:// to a TLS-only redis-server: with redis_tls_ca the nodes
    connect and carry messages; without it (system CAs) the certificate
    is refused, the log says so and /healthz stays 503."""
    with tempfile.TemporaryDirectory() as d:
        pki = tlsutil.Pki(d)
        cert, key = pki.server
        port = free_port()
        redis = Redis(port=port, extra=["--port", "0", "--tls-port", str(port),
                                        "--tls-cert-file", cert, "--tls-key-file", key,
                                        "--tls-ca-cert-file", pki.ca, "--tls-auth-clients", "no"],
                      tls_ca=pki.ca)
        url = f"rediss://127.0.0.1:{port}"
        a = node(url, "--redis-tls-ca", pki.ca)
        b = node(url, "--redis-tls-ca", pki.ca)
        lport = free_port()
        bad = Proc([os.path.join(BUILD, "ringcast"), "--listen", f"127.0.0.1:{lport}",
                    "--engine", "redis", "--redis-url", url], name="ringcast")
        try:
            jc = await a.json_client()
            await jc.ack({"op": "sub", "topic": "s", "id": 1})
            eq(b.publish("s", "over tls")["seq"], 1, "publish through rediss://")
            eq(await json_msgs(jc, "s", 1), [("msg", 1, "over tls")], "delivered")
            bad.wait_output(r"redis: cannot connect to tls://.*(certificate|verify)", timeout=15)
            eq(health(broker.Broker(bad, lport)), 503, "untrusted Redis: not ready")
        finally:
            bad.stop()
            stop_all([a, b], redis)


async def test_kill_node_clients_resume_elsewhere():
    """A node is killed (SIGKILL) while publishing goes on through another:
    its client resumes on a surviving node with from = last + 1 and ends
    with every message once."""
    redis = Redis()
    a = node(redis.url)
    b = node(redis.url)
    try:
        jc = await a.json_client()
        await jc.ack({"op": "sub", "topic": "k", "id": 1})
        for i in range(1, 6):
            b.publish("k", f"m{i}")
        got = await json_msgs(jc, "k", 5)
        a.signal(signal.SIGKILL)
        a.proc.wait(10)
        for i in range(6, 11):
            b.publish("k", f"m{i}")
        jr = await b.json_client()
        eq(jr.epoch, jc.epoch, "same epoch on the other node")
        await jr.ack({"op": "sub", "topic": "k", "id": 2, "from": got[-1][1] + 1})
        got += await json_msgs(jr, "k", 5)
        eq(got, [("msg", i, f"m{i}") for i in range(1, 11)], "every message once")
    finally:
        b.stop()
        redis.stop()


if __name__ == "__main__":
    t0 = time.monotonic()
    run([test_unreachable_at_start, test_lost_and_back_with_persistence,
         test_node_cut_off_replays_or_gaps, test_restart_without_persistence_resets,
         test_kill_node_clients_resume_elsewhere, test_clients_move_to_another_node,
         test_tls_redis],
        timeout=120)
