"""Real redis-server processes on loopback for the engine = redis tests.

Redis(port=None, persist=False) starts Debian's redis-server in a fresh
temporary directory (no RDB snapshots; with persist=True an append-only
file, fsync always, so a restart keeps every acked write), waits until it
answers PING, and is stopped (SIGKILL or SHUTDOWN) and started again on
the same port by the tests.  cli() runs redis-cli against it.
"""
import os
import shutil
import signal
import subprocess
import tempfile

from rctest import Proc, check, free_port, wait_until


class Redis:
    def __init__(self, port=None, persist=False, extra=()):
        self.port = port or free_port()
        self.persist = persist
        self.extra = list(extra)
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
        r = subprocess.run(["redis-cli", "-p", str(self.port), "PING"], capture_output=True,
                           timeout=5)
        return r.stdout.strip() == b"PONG"

    def cli(self, *args, check_ok=True):
        r = subprocess.run(["redis-cli", "-p", str(self.port)] + [str(a) for a in args],
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
