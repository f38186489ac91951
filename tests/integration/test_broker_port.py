"""One broker owns its port.  The loops listen with SO_REUSEPORT (the kernel
spreads connections over the threads), which would also let a second
process of the same user join the group and take half of the clients; the
broker checks the listening sockets after bind (core/listen_excl.c) and a
second start fails with "address in use" and a non-zero exit."""
import asyncio
import os
import signal
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


def test_successor_starts_while_predecessor_drains():
    """A restart (systemd, a rolling update) starts the new broker while the
    old one still drains: the old one leaves LISTEN when the drain starts,
    so the address is free at once (it used to listen until its ring was
    torn down, after exit, and the successor got "address in use")."""
    b = broker.start("--close-timeout", "10", threads=2)
    s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
    succ = None
    try:
        # A subscriber that never answers the close frame keeps the old
        # broker draining for close_timeout.
        s.sendall(b"GET /sub/t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            check(chunk, "connection closed before the 101")
            got += chunk
        check(got.startswith(b"HTTP/1.1 101"), f"upgrade answer: {got[:60]!r}")
        got = got.split(b"\r\n\r\n", 1)[1]
        b.signal(signal.SIGTERM)
        while not got:  # the 1001 close frame: the drain has started
            chunk = s.recv(4096)
            check(chunk, "connection closed before the close frame")
            got += chunk
        eq(got[0], 0x88, "first frame after SIGTERM is a close")
        check(b.alive(), "the old broker is still draining")
        succ = subprocess.Popen([EXE, "--listen", f"127.0.0.1:{b.port}", "--threads", "1"],
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = succ.stderr.readline()
        check(b"listening on" in line, f"successor started while the old one drains: {line!r}")
        check(b.alive(), "the old broker was still draining when the successor listened")
    finally:
        s.close()
        b.stop()
        if succ:
            succ.terminate()
            eq(succ.wait(15), 0, "exit status of the successor")


run([test_second_broker_on_busy_port_refuses, test_successor_starts_while_predecessor_drains, test_foreign_reuseport_listener_refused,
     test_other_address_same_port_runs])
