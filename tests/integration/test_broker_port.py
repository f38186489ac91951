"""One broker owns its port.  The loops listen with SO_REUSEPORT (the kernel
spreads connections over the threads), which would also let a second
process of the same user join the group and take half of the clients; the
broker checks the listening sockets after bind (core/listen_excl.c) and a
second start fails with "address in use" and a non-zero exit."""
import asyncio
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import BUILD, Fail, check, eq, run  # noqa: E402

EXE = os.path.join(BUILD, "ringcast")


def second_start(addr):
    """Runs a second broker on addr; it must exit by itself: (code, stderr)."""
    try:
        # auth none: a wildcard address is not loopback, and the broker
        # refuses those without access control before it tries to listen.
        r = subprocess.run([EXE, "--listen", addr, "--threads", "2", "--auth", "none"],
                           capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Fail(f"a second broker on {addr} kept running") from None
    return r.returncode, r.stderr.decode(errors="replace")


async def test_second_broker_on_busy_port_refuses():
    b = broker.start(threads=2)
    try:
        for addr in (f"127.0.0.1:{b.port}", f"0.0.0.0:{b.port}", f"[::]:{b.port}"):
            code, err = second_start(addr)
            check(code != 0, f"second broker on {addr} exited {code}")
            check(f"cannot listen on {addr}: address in use" in err,
                  f"the message for {addr}: {err!r}")
        # The first broker still has every client: 6 subscribers, 4
        # publishes, each subscriber sees seq 1..4 (with two brokers in one
        # group they saw 1, 2, 1, 2 and half the messages each).
        subs = [await b.connect("/ws") for _ in range(6)]
        for i, ws in enumerate(subs):
            await ws.recv()  # welcome
            await ws.send(f'{{"op":"sub","topic":"p","id":{i}}}')
            await asyncio.wait_for(ws.recv(), 10)  # ack
        seqs = [b.publish("p", f"m{i}")["seq"] for i in range(4)]
        eq(seqs, [1, 2, 3, 4], "publish seqs")
        for ws in subs:
            got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(4)]
            eq([m.count('"seq":') for m in got], [1] * 4, "four messages")
            check(all(f'"seq":{s}' in m for s, m in zip(seqs, got)), f"in order: {got}")
            await ws.close()
    finally:
        b.stop()


def test_foreign_reuseport_listener_refused():
    """Any other process's SO_REUSEPORT listener counts, not only a broker."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        code, err = second_start(addr)
        check(code != 0 and f"cannot listen on {addr}: address in use" in err,
              f"exit {code}, stderr {err!r}")
    finally:
        s.close()


def test_other_address_same_port_runs():
    """127.0.0.2:P does not overlap 127.0.0.1:P: both brokers run."""
    b = broker.start(threads=1)
    try:
        p = subprocess.Popen([EXE, "--listen", f"127.0.0.2:{b.port}", "--threads", "1"],
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            # "N threads, epoch" comes after the listen and the signal mask.
            lines = [p.stderr.readline() for _ in range(2)]
            check(b"listening on" in lines[0] and b"threads" in lines[1],
                  f"second broker started: {lines}")
            check(p.poll() is None, "second broker still running")
        finally:
            p.terminate()
            eq(p.wait(15), 0, "exit status of the 127.0.0.2 broker")
    finally:
        b.stop()


run([test_second_broker_on_busy_port_refuses, test_foreign_reuseport_listener_refused,
     test_other_address_same_port_runs])
