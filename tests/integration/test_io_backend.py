"""The loop backend: io_backend = auto runs io_uring, and epoll where
io_uring is blocked, saying which and why; io_backend = epoll (flag, file,
RINGCAST_IO_BACKEND) forces epoll; io_backend = io_uring refuses to start
where it is blocked, with the hint.

"Blocked" is made real with tests/support/no_io_uring.c (built here with
gcc): a seccomp filter that answers io_uring_setup with EPERM, what Docker's
default profile and Kubernetes' RuntimeDefault do, then exec of the broker.
The whole integration suite runs forced to epoll as well (`make test-epoll`);
this file covers the choice itself."""
import asyncio
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import BUILD, ROOT, check, eq, free_ports, run, wait_until  # noqa: E402

HELPER = None
# Each case says what it wants; the suite may run with the variable set.
AUTO = {"RINGCAST_IO_BACKEND": ""}


def build_helper():
    global HELPER
    d = tempfile.mkdtemp(prefix="rc-no-io-uring-")
    atexit.register(shutil.rmtree, d, True)
    out = os.path.join(d, "no_io_uring")
    r = subprocess.run(["gcc", "-O1", "-o", out,
                        os.path.join(ROOT, "tests", "support", "no_io_uring.c")],
                       capture_output=True, text=True, timeout=120)
    eq(r.returncode, 0, f"building no_io_uring: {r.stderr[:800]}")
    HELPER = out


async def pubsub(b):
    """A subscriber gets a message published over HTTP."""
    ws = await b.connect("/sub/io")
    wait_until(lambda: b.stats()["subscriptions"] == 1, 10, "subscribed")
    b.publish("io", "hello over " + b.url("/"))
    got = await asyncio.wait_for(ws.recv(), 10)
    check(got.startswith("hello over"), f"delivery: {got!r}")
    await ws.close()


async def test_auto_falls_back_to_epoll_under_seccomp():
    b = broker.start(threads=2, env=AUTO, prefix=[HELPER])
    check(b is not None, "the broker did not start under a filter refusing io_uring_setup")
    try:
        log = b.log()
        check("io backend: epoll, because io_uring is unavailable: io_uring_setup: "
              "Operation not permitted" in log, f"the reason in the log: {log[-1500:]!r}")
        check("seccomp" in log, f"the hint names seccomp: {log[-1500:]!r}")
        eq(log.count("io backend:"), 1, "one backend line for two loops")
        await pubsub(b)
    finally:
        b.stop()


def test_forced_io_uring_refuses_under_seccomp():
    port = free_ports(1)[0]
    r = subprocess.run([HELPER, os.path.join(BUILD, "ringcast"), "--listen", f"127.0.0.1:{port}",
                        "--io-backend", "io_uring"], capture_output=True, text=True, timeout=30,
                       env={**os.environ, **AUTO})
    check(r.returncode != 0, f"io_backend = io_uring ran although io_uring_setup is refused: "
          f"{r.stderr[-800:]!r}")
    check("io_uring_setup failed: Operation not permitted" in r.stderr and "seccomp" in r.stderr,
          f"the hint: {r.stderr[-800:]!r}")


async def test_forced_epoll_flag_and_env():
    for flags, env in ((["--io-backend", "epoll"], AUTO), ([], {"RINGCAST_IO_BACKEND": "epoll"})):
        b = broker.start(*flags, env=env)
        try:
            check("io backend: epoll (forced" in b.log(), f"log: {b.log()[-1500:]!r}")
            await pubsub(b)
        finally:
            b.stop()


async def test_auto_is_io_uring_where_allowed():
    b = broker.start(env=AUTO)
    try:
        log = b.log()
        if "io backend: epoll, because" in log:
            print(f"skip: io_uring is unavailable on this machine itself: {log[-500:]!r}")
            return
        check("io backend: io_uring" in log, f"log: {log[-1500:]!r}")
        await pubsub(b)
    finally:
        b.stop()


def test_bad_value_refused():
    r = subprocess.run([os.path.join(BUILD, "ringcast"), "--check-config", "--io-backend",
                        "kqueue"], capture_output=True, text=True, timeout=30)
    eq(r.returncode, 2, f"exit status; stderr {r.stderr!r}")
    check("not an io backend (auto, io_uring, epoll)" in r.stderr, f"stderr {r.stderr!r}")


if __name__ == "__main__":
    build_helper()
    run([test_auto_falls_back_to_epoll_under_seccomp, test_forced_io_uring_refuses_under_seccomp,
         test_forced_epoll_flag_and_env, test_auto_is_io_uring_where_allowed,
         test_bad_value_refused])
