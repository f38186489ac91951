"""Real redis-server processes on loopback for the engine = redis tests.

Redis(port=None, persist=False) starts Debian's redis-server in a fresh
temporary directory (no RDB snapshots; with persist=True an append-only
file, fsync always, so a restart keeps every acked write), waits until it
answers PING, and is stopped (SIGKILL or SHUTDOWN) and started again on
the same port by the tests.  cli() runs redis-cli against it.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile

from rctest import Proc, check, free_port, wait_until


class Redis:
    def __init__(self, port=None, persist=False, extra=(), cluster=False, tls_ca=None):
        self.port = port or free_port()
        self.persist = persist
        self.extra = list(extra)
        # A TLS-only server: redis-cli speaks TLS to it with the test CA.
        self.cli_tls = ["--tls", "--cacert", tls_ca] if tls_ca else []
        if cluster:
            self.extra += ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                           "--cluster-config-file", "nodes.conf"]
        self.dir = tempfile.mkdtemp(prefix="rc-redis-")
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--protected-mode", "no"]
        if self.persist:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        self.proc = Proc(argv + self.extra, name=f"redis-server:{self.port}")
        wait_until(self.ping, 10, f"redis-server on {self.port} to answer PING")

    def ping(self):
        if not self.proc.alive():
            raise AssertionError(f"redis-server exited: {self.proc.text('stdout')[-1500:]}")
        r = subprocess.run(["redis-cli", "-p", str(self.port), *self.cli_tls, "PING"],
                           capture_output=True,
                           timeout=5)
        return r.stdout.strip() == b"PONG"

    def cli(self, *args, check_ok=True):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *self.cli_tls] +
                           [str(a) for a in args],
                           capture_output=True, timeout=10)
        if check_ok:
            check(r.returncode == 0, f"redis-cli {args}: {r.stderr!r}")
        return r.stdout.decode().strip()

    def kill(self):
        """SIGKILL: whatever was not persisted is lost."""
        if self.proc and self.proc.alive():
            self.proc.popen.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, wipe=False):
        self.kill()
        if wipe:
            shutil.rmtree(self.dir, ignore_errors=True)
            os.makedirs(self.dir)
        self.start()

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _port_pair_free(p):
    for q in (p, p + 10000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", q))
            except OSError:
                return False
    return True


def cluster_ports(n):
    """n ports whose cluster bus ports (port + 10000) are free too."""
    out = []
    while len(out) < n:
        p = random.randint(20000, 45000)
        if p not in out and _port_pair_free(p):
            out.append(p)
    return out


class Cluster:
    """A Redis Cluster of n masters (no replicas) made by redis-cli --cluster
    create; url names every master (the engine asks the first one for the
    slot map)."""

    def __init__(self, n=3, persist=True):
        self.nodes = [Redis(port=p, persist=persist, cluster=True) for p in cluster_ports(n)]
        addrs = [f"127.0.0.1:{r.port}" for r in self.nodes]
        r = subprocess.run(["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", "0",
                            "--cluster-yes"], capture_output=True, timeout=60)
        check(r.returncode == 0, f"redis-cli --cluster create: {r.stdout[-1500:]!r}")
        wait_until(self.ok, 30, "cluster_state:ok on every node", interval=0.2)

    def ok(self):
        return all("cluster_state:ok" in r.cli("CLUSTER", "INFO", check_ok=False)
                   for r in self.nodes if r.proc.alive())

    @property
    def url(self):
        return ",".join(r.url for r in self.nodes)

    def owner(self, key):
        """The node that serves key's slot."""
        slot = int(self.nodes[0].cli("CLUSTER", "KEYSLOT", key))
        for line in self.nodes[0].cli("CLUSTER", "NODES").splitlines():
            f = line.split()
            port = int(f[1].split("@")[0].rsplit(":", 1)[1])
            for rng in f[8:]:
                a, _, b = rng.partition("-")
                if a.isdigit() and int(a) <= slot <= int(b or a):
                    return next(r for r in self.nodes if r.port == port)
        raise AssertionError(f"no owner for slot {slot}")

    def stop(self):
        for r in self.nodes:
            r.stop()
