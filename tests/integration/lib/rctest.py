"""Shared helpers for the integration tests (run by Debian's /usr/bin/python3).

Programs are started on loopback with their output collected by reader
threads, every wait polls its condition against a deadline, and every
process started here is killed at exit whatever happens.  run() is a tiny
test runner: it runs each test function (async ones under asyncio with a
per-test timeout), prints PASS/FAIL lines and exits non-zero on a failure.
"""
import asyncio
import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(ROOT, "build")
TESTS = os.path.join(ROOT, "tests")

_live = []


def _kill_all():
    for p in _live:
        if p.popen.poll() is None:
            p.popen.kill()
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_all)


class Fail(Exception):
    """A failed expectation, with a message that says what was expected."""


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        g, w = repr(got), repr(want)
        raise Fail(f"{what}: got {g[:200]}, want {w[:200]}")


def wait_until(cond, timeout, what, interval=0.01):
    """Polls cond() until it returns something true; fails after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    """A port that was free a moment ago (for programs that cannot bind 0)."""
    return free_ports(1)[0]


def free_ports(n):
    """n distinct ports that were free a moment ago: the sockets stay bound
    until all are chosen (two free_port() calls may return the same port)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def can_connect(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(port, timeout=10, host="127.0.0.1"):
    wait_until(lambda: can_connect(port, host), timeout, f"{host}:{port} to accept")


class Proc:
    """A started program whose stdout and stderr are collected as they come."""

    def __init__(self, argv, env=None, stdin=subprocess.DEVNULL, name=None):
        full = dict(os.environ)
        full.update(env or {})
        self.name = name or os.path.basename(argv[0])
        self.argv = argv
        self.popen = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=full)
        _live.append(self)
        self._out = {"stdout": bytearray(), "stderr": bytearray()}
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._pump, args=(k,), daemon=True)
                         for k in self._out]
        for t in self._threads:
            t.start()

    def _pump(self, key):
        f = getattr(self.popen, key)
        while True:
            chunk = f.read1(65536)
            if not chunk:
                return
            with self._lock:
                self._out[key] += chunk

    def text(self, key="stderr"):
        with self._lock:
            return self._out[key].decode("utf-8", "replace")

    def wait_output(self, regex, key="stderr", timeout=10):
        """Waits until regex matches the collected output; returns the match."""
        def look():
            m = re.search(regex, self.text(key))
            if m:
                return m
            if self.popen.poll() is not None:
                for t in self._threads:
                    t.join(timeout=1)
                m = re.search(regex, self.text(key))
                if m:
                    return m
                raise Fail(f"{self.name} exited with {self.popen.returncode} before "
                           f"printing /{regex}/; stderr: {self.text()[-2000:]!r}")
            return None
        return wait_until(look, timeout, f"{self.name} to print /{regex}/")

    def wait(self, timeout=10):
        """Waits for the program to exit; returns its exit status."""
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)
            raise Fail(f"{self.name} did not exit within {timeout}s; "
                       f"stderr: {self.text()[-2000:]!r}")
        for t in self._threads:
            t.join(timeout=2)
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=10, expect=(0,)):
        """Signals the program and checks it exits with a status in expect."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        rc = self.wait(timeout)
        if expect is not None and rc not in expect:
            raise Fail(f"{self.name} exited with {rc} after {sig!s}, want {expect}; "
                       f"stderr: {self.text()[-2000:]!r}")
        return rc

    def alive(self):
        return self.popen.poll() is None


def start_echo_server(env=None, timeout=10):
    """Starts build/echo-server on an ephemeral loopback port; sets .port."""
    p = Proc([os.path.join(BUILD, "echo-server"), "127.0.0.1:0"], env=env)
    m = p.wait_output(r"listening on port (\d+)", timeout=timeout)
    p.port = int(m.group(1))
    check(p.port > 0, f"echo-server printed port {p.port}")
    return p


def run_client(args, timeout=20, stdin_data=None, env=None):
    """Runs build/echo-client to completion: (status, stdout, stderr)."""
    full = dict(os.environ)
    full.update(env or {})
    try:
        r = subprocess.run([os.path.join(BUILD, "echo-client")] + list(args),
                           input=stdin_data, capture_output=True, timeout=timeout, env=full)
    except subprocess.TimeoutExpired as e:
        raise Fail(f"echo-client {args} did not exit within {timeout}s; "
                   f"stderr: {e.stderr!r}")
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def run(tests, timeout=60):
    """Runs each test; async ones get timeout seconds.  Exits 1 on failure."""
    passed = failed = 0
    only = os.environ.get("ONLY")
    for fn in tests:
        if only and only not in fn.__name__:
            continue
        t0 = time.monotonic()
        try:
            if asyncio.iscoroutinefunction(fn):
                asyncio.run(asyncio.wait_for(fn(), timeout))
            else:
                fn()
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}", flush=True)
            if not isinstance(e, Fail):
                traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {fn.__name__} ({time.monotonic() - t0:.2f}s)", flush=True)
    print(f"{passed} passed, {failed} failed")
    _kill_all()
    sys.exit(1 if failed or not passed else 0)
