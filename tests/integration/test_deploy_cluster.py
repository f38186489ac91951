"""deploy/local-cluster.sh: the compose topology without containers (Redis,
two brokers, Debian's HAProxy with deploy/haproxy.cfg) started by the script
itself.  Through the load balancer, WebSocket upgrades and plain HTTP reach
both nodes; a killed node is taken out by the /healthz checks, its clients
reconnect through the balancer to the other node; a node stopped with
SIGTERM sends close 1001 through the balancer and is taken out the same
way; `down` drains every process.  Cross-node delivery needs the redis engine: checked when the
broker accepts `engine = redis`, otherwise the test says it skips that."""
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import websockets  # noqa: E402
import yaml  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from rctest import BUILD, ROOT, Fail, check, eq, free_ports, run, wait_until  # noqa: E402

SCRIPT = os.path.join(ROOT, "deploy", "local-cluster.sh")
RINGCAST = os.path.join(BUILD, "ringcast")


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rc-cluster-")
        self.lb, self.n1, self.n2, self.redis = free_ports(4)
        self.env = dict(os.environ, RUN_DIR=self.dir, RINGCAST=RINGCAST,
                        LB_PORT=str(self.lb), NODE1_PORT=str(self.n1),
                        NODE2_PORT=str(self.n2), REDIS_PORT=str(self.redis))
        self.out = self.script("up", 60)
        self.redis_engine = "engine redis" in self.out

    def script(self, verb, timeout):
        try:
            r = subprocess.run(["bash", SCRIPT, verb], env=self.env, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Fail(f"local-cluster.sh {verb} did not finish in {timeout}s") from None
        out = (r.stdout + r.stderr).decode()
        eq(r.returncode, 0, f"local-cluster.sh {verb} status ({out[-2000:]})")
        return out

    def pid(self, name):
        with open(os.path.join(self.dir, name + ".pid")) as f:
            return int(f.read())

    def log(self, name):
        if name in getattr(self, "logs", {}):
            return self.logs[name]
        with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
            return f.read()

    def down(self):
        pids = [self.pid(n) for n in ("haproxy", "node1", "node2", "redis")
                if os.path.exists(os.path.join(self.dir, n + ".pid"))]
        try:
            return self.script("down", 90)
        finally:
            for p in pids:  # whatever the script left behind
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.logs = {n: self.log(n) for n in ("node1", "node2")}
            shutil.rmtree(self.dir, ignore_errors=True)

    def haproxy_states(self):
        """{server: status} from HAProxy's admin socket (show stat)."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        try:
            s.connect(os.path.join(self.dir, "haproxy.sock"))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        finally:
            s.close()
        rows = [line.split(",") for line in data.decode().splitlines()[1:] if line]
        return {f[1]: f[17] for f in rows if len(f) > 17 and f[0] == "ringcast"
                and f[1] not in ("FRONTEND", "BACKEND")}

    def http(self, port, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request(method, path, body=body,
                      headers={"Content-Type": "text/plain"} if body else {})
            r = c.getresponse()
            return r.status, r.getheader("X-Ringcast-Node"), r.read()
        finally:
            c.close()

    def ws(self, port, path):
        return websockets.connect(f"ws://127.0.0.1:{port}{path}", open_timeout=10,
                                  close_timeout=5, ping_interval=None, compression=None)


def node_of(ws):
    return ws.response_headers.get("X-Ringcast-Node")


async def echo(ws, text):
    await ws.send(text)
    eq(await asyncio.wait_for(ws.recv(), 10), text, "echo through the balancer")


async def both_up(c):
    await asyncio.to_thread(wait_until, lambda: c.haproxy_states() == {
        "node1": "UP", "node2": "UP"}, 15, "HAProxy to see both nodes UP")


async def test_routes_http_and_websocket_to_both_nodes():
    c = Cluster()
    try:
        await both_up(c)
        seen = set()
        for _ in range(10):
            st, node, body = await asyncio.to_thread(c.http, c.lb, "GET", "/healthz")
            eq((st, body), (200, b"ok\n"), "GET /healthz through HAProxy")
            seen.add(node)
        eq(seen, {"node1", "node2"}, "nodes that answered HTTP through HAProxy")
        st, node, body = await asyncio.to_thread(c.http, c.lb, "POST", "/publish/t", b"hi")
        eq(st, 200, f"POST /publish through HAProxy ({body!r})")
        # leastconn: the second held WebSocket goes to the node without one.
        a = await c.ws(c.lb, "/echo")
        b = await c.ws(c.lb, "/echo")
        eq({node_of(a), node_of(b)}, {"node1", "node2"}, "nodes holding the two WebSockets")
        await echo(a, "to " + node_of(a))
        await echo(b, "to " + node_of(b))
        for port in (c.n1, c.n2):
            st, _, body = await asyncio.to_thread(c.http, port, "GET", "/stats")
            check(b'"connections":1,' in body, f"node on {port} holds one connection: {body!r}")
        await a.close()
        await b.close()
    finally:
        out = await asyncio.to_thread(c.down)
    check("did not stop" not in out, f"every process stopped on SIGTERM: {out}")
    for n in ("node1", "node2"):
        log = c.log(n)
        check("draining" in log and log.rstrip().endswith("stopped"),
              f"{n} drained and stopped on SIGTERM: {log[-500:]!r}")


async def lose_one_node(c, sig, sent_code):
    """One client on each node through HAProxy; sig to the first one's node:
    that client's connection ends (with close code sent_code, None when the
    balancer just drops the tunnel), HAProxy marks the node DOWN, every new
    request goes to the other node, and the client's reconnect lands there
    while the other node's client never noticed.  Returns the node."""
    await both_up(c)
    a = await c.ws(c.lb, "/echo")
    b = await c.ws(c.lb, "/echo")
    victim, other = node_of(a), node_of(b)
    eq({victim, other}, {"node1", "node2"}, "one WebSocket on each node")
    os.kill(c.pid(victim), sig)
    try:
        await asyncio.wait_for(a.recv(), 15)
        raise Fail(f"a message from a node stopped with {sig!s}")
    except ConnectionClosed as e:
        eq(e.rcvd.code if e.rcvd else None, sent_code, f"close code through HAProxy ({sig!s})")
    except asyncio.TimeoutError:
        raise Fail(f"the client of the node stopped with {sig!s} was not disconnected "
                   "in 15 s") from None
    await asyncio.to_thread(wait_until, lambda: c.haproxy_states().get(victim) == "DOWN",
                            15, f"HAProxy to mark {victim} DOWN")
    for _ in range(6):
        st, node, _ = await asyncio.to_thread(c.http, c.lb, "GET", "/healthz")
        eq((st, node), (200, other), "HTTP after the loss goes to the live node")
    a = await c.ws(c.lb, "/echo")
    eq(node_of(a), other, "node after reconnecting")
    await echo(a, "again")
    await echo(b, "undisturbed")
    await a.close()
    await b.close()
    return victim


async def test_killed_node_taken_out_clients_reconnect():
    c = Cluster()
    try:
        # SIGKILL: no close frame; the balancer ends the tunnel.
        await lose_one_node(c, signal.SIGKILL, None)
    finally:
        await asyncio.to_thread(c.down)


async def test_drained_node_closes_1001_through_the_balancer():
    """A rolling restart: SIGTERM on one node sends its clients close 1001
    through HAProxy's tunnel, and it is taken out like a dead one."""
    c = Cluster()
    try:
        victim = await lose_one_node(c, signal.SIGTERM, 1001)
        check("stopped" in c.log(victim), f"{victim} drained and stopped: {c.log(victim)[-500:]}")
    finally:
        await asyncio.to_thread(c.down)


async def test_cross_node_delivery():
    r = subprocess.run([RINGCAST, "--engine", "redis", "--redis-url", "redis://127.0.0.1:1",
                        "--check-config"], capture_output=True, timeout=30)
    if r.returncode != 0:
        print("skip: cross-node delivery: this ringcast refuses 'engine = redis' "
              f"({r.stderr.decode().strip().splitlines()[0]!r}), so the nodes cannot share "
              "messages yet", flush=True)
        return
    c = Cluster()
    try:
        check(c.redis_engine, f"local-cluster.sh started the nodes on redis: {c.out}")
        await both_up(c)
        async with c.ws(c.n1, "/ws") as sub:
            eq(json.loads(await asyncio.wait_for(sub.recv(), 10)).get("op"),
               "welcome", "first JSON message")
            await sub.send('{"op":"sub","topic":"x","id":1}')
            eq(json.loads(await asyncio.wait_for(sub.recv(), 10)).get("op"),
               "ack", "subscribe answer")
            st, _, body = await asyncio.to_thread(c.http, c.n2, "POST", "/publish/x", b"across")
            eq(st, 200, f"publish on node2 ({body!r})")
            m = json.loads(await asyncio.wait_for(sub.recv(), 10))
            eq((m.get("op"), m.get("data")), ("msg", "across"),
               "node1's subscriber got node2's message")
    finally:
        await asyncio.to_thread(c.down)


def test_compose_file_matches_the_topology():
    """deploy/compose.yaml (no container runtime runs it here): the same
    services, every variable haproxy.cfg reads, environment the broker
    knows, files that exist, a stop grace period above the drain."""
    deploy = os.path.join(ROOT, "deploy")
    with open(os.path.join(deploy, "compose.yaml")) as f:
        svc = yaml.safe_load(f)["services"]
    eq(sorted(svc), ["haproxy", "redis", "ringcast1", "ringcast2"], "compose services")
    with open(os.path.join(deploy, "haproxy.cfg")) as f:
        cfg = "".join(ln for ln in f if not ln.lstrip().startswith("#"))
    wanted = set(re.findall(r"\$\{(\w+)\}", cfg))
    eq(set(svc["haproxy"]["environment"]), wanted, "HAProxy's environment vs haproxy.cfg")
    for vol in svc["haproxy"]["volumes"]:
        check(os.path.exists(os.path.join(deploy, vol.split(":")[0])), f"{vol} exists")
    for n in ("ringcast1", "ringcast2"):
        node = svc[n]
        env = {k: str(v) for k, v in node["environment"].items()}
        eq(env.get("RINGCAST_REDIS_URL"), "redis://redis:6379", f"{n}'s Redis")
        r = subprocess.run([RINGCAST, "--check-config"], capture_output=True, timeout=30,
                           env=dict(os.environ, **env))
        eq(r.returncode, 0, f"{n}'s environment: {r.stderr.decode()}")
        unknown = set(re.findall(r"(RINGCAST_\w+) is not a ringcast setting", r.stderr.decode()))
        check(unknown <= {"RINGCAST_ENGINE", "RINGCAST_REDIS_URL"},
              f"{n} sets variables the broker does not know: {unknown}")
        seccomp = [o.split("=", 1)[1] for o in node["security_opt"] if o.startswith("seccomp=")]
        check(seccomp and os.path.exists(os.path.join(deploy, seccomp[0])),
              f"{n}'s seccomp profile exists: {seccomp}")
        check(int(node["stop_grace_period"].rstrip("s")) >= 10, "stop grace period")
        eq(node["depends_on"]["redis"]["condition"], "service_healthy", f"{n} waits for Redis")


if __name__ == "__main__":
    run([test_routes_http_and_websocket_to_both_nodes,
         test_killed_node_taken_out_clients_reconnect,
         test_drained_node_closes_1001_through_the_balancer, test_cross_node_delivery,
         test_compose_file_matches_the_topology], timeout=120)
