"""build/ringcast slow consumers: one subscriber that never reads (a raw
socket with a small SO_RCVBUF that completes the handshake and then never
calls recv) next to many that do, publishing hundreds of MiB:
- the broker's RSS stays under a stated bound (the stuck one's queue is
  capped by max_backpressure, not by what is published);
- policy close: the stuck one is closed with 1013, the others get
  everything, in order;
- policy drop: the stuck JSON subscriber misses messages and, once it reads
  again, a gap message accounts for exactly the seqs it missed.
Readers are plain sockets in one selector thread (Python must keep up with
100 x 200 MiB); the publisher POSTs over one keep-alive connection and stays
at most WINDOW messages ahead of the slowest reader."""
import http.client
import json
import os
import selectors
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from broker import RawSocketWS  # noqa: E402
from rctest import Fail, check, eq, run, wait_until  # noqa: E402

SIZE = 32 << 10
WINDOW = 16          # messages the publisher may run ahead of the slowest reader
RSS_BOUND_KB = 128 * 1024  # 200 MiB are published; the stuck queue is capped at 1 MiB


class Reader:
    """Counts binary frames of SIZE bytes whose first 8 bytes are 0, 1, 2..."""

    def __init__(self, ws):
        self.sock = ws.s
        self.sock.setblocking(False)
        self.count = 0
        self.skip = 0
        self.head = bytearray()
        self.error = None

    def feed(self, data):
        pos, n = 0, len(data)
        while pos < n:
            if self.skip:
                k = min(self.skip, n - pos)
                self.skip -= k
                pos += k
                continue
            self.head += data[pos:pos + 1]
            pos += 1
            h = self.head
            if len(h) < 2:
                continue
            ln = h[1] & 0x7F
            hl = 2 + (2 if ln == 126 else 8 if ln == 127 else 0)
            if len(h) < hl + 8:
                # take the rest of the header and the 8-byte prefix at once
                k = min(hl + 8 - len(h), n - pos)
                h += data[pos:pos + k]
                pos += k
                if len(h) < hl + 8:
                    continue
            if h[0] != 0x82:
                why = ""
                if h[0] == 0x88 and ln >= 2:  # say which close it was
                    code = struct.unpack("!H", h[2:4])[0]
                    why = f" (close {code} {bytes(h[4:2 + min(ln, hl + 6)])!r}...)"
                self.error = f"frame {self.count}: first byte {h[0]:#x}, want 0x82{why}"
                return
            plen = ln if ln < 126 else struct.unpack("!H" if ln == 126 else "!Q", h[2:hl])[0]
            if plen != SIZE:
                self.error = f"frame {self.count}: {plen} bytes, want {SIZE}"
                return
            idx = struct.unpack("!Q", h[hl:hl + 8])[0]
            if idx != self.count:
                self.error = f"frame {self.count} carries index {idx} (lost or reordered)"
                return
            self.count += 1
            self.skip = plen - 8
            self.head = bytearray()


def read_all(readers, total, deadline, stop):
    sel = selectors.DefaultSelector()
    for r in readers:
        sel.register(r.sock, selectors.EVENT_READ, r)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    left = len(readers)
    while left and time.monotonic() < deadline and not stop.is_set():
        for key, _ in sel.select(0.2):
            r = key.data
            try:
                n = r.sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError as e:
                r.error = f"recv: {e}"
                n = 0
            if n == 0:
                r.error = r.error or f"EOF after {r.count} frames"
            else:
                r.feed(view[:n])
            if r.error or r.count >= total:
                sel.unregister(r.sock)
                left -= 1
    sel.close()


def publish_paced(b, topic, total, readers, deadline, rss_samples):
    c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=10)
    filler = (bytes(range(256)) * (SIZE // 256))[:SIZE - 8]
    check(len(filler) == SIZE - 8, "filler size")
    try:
        for i in range(total):
            while True:
                low = min(r.count if not r.error else total for r in readers)
                if low >= i - WINDOW:
                    break
                if time.monotonic() > deadline:
                    raise Fail(f"readers stalled at {low} of {i} published")
                errs = [r.error for r in readers if r.error]
                if errs:
                    raise Fail(f"reader failed: {errs[0]}")
                time.sleep(0.0005)  # pacing only; the loop condition decides
            c.request("POST", f"/publish/{topic}", body=struct.pack("!Q", i) + filler,
                      headers={"Content-Type": "application/octet-stream"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise Fail(f"POST {i}: {r.status}")
            if i % 64 == 0:
                rss_samples.append(b.rss_kb())
    finally:
        c.close()


def slow_run(policy, nreaders, total, slow_path, budget):
    # close_timeout 20 s: the stuck subscriber only reads its close frame
    # once the test notices the close, on a busy two-core machine.  The
    # readers never send, so past idle_timeout (30 s) they would get a ping
    # the frame checker does not expect: on a loaded machine the run can
    # last longer than that, so the idle timeout outlasts the budget.
    b = broker.start("--slow-consumer-policy", policy, "--max-backpressure", "1M",
                     "--history-size", "16", "--close-timeout", "20",
                     "--idle-timeout", str(budget + 60), threads=2)
    stop = threading.Event()
    t0 = time.monotonic()
    deadline = t0 + budget
    try:
        slow = RawSocketWS(b.port, slow_path, rcvbuf=4096)
        readers = [Reader(RawSocketWS(b.port, "/sub/slow")) for _ in range(nreaders)]
        th = threading.Thread(target=read_all, args=(readers, total, deadline, stop),
                              daemon=True)
        th.start()
        return b, slow, readers, th, stop, deadline, t0
    except BaseException:
        stop.set()
        b.stop()
        raise


def close_all(readers, slow):
    """Our sockets go first, so the drain on SIGTERM waits for no one."""
    for r in readers:
        r.sock.close()
    slow.close()


def finish_readers(readers, th, total, deadline):
    th.join(max(0.1, deadline - time.monotonic()))
    check(not th.is_alive(), "readers finished within the time budget")
    for i, r in enumerate(readers):
        check(r.error is None, f"reader {i}: {r.error}")
        eq(r.count, total, f"reader {i} frames")


def test_slow_consumer_closed_with_1013_rss_bounded():
    total, nreaders = 6400, 100  # 200 MiB published, 20 GiB delivered
    b, slow, readers, th, stop, deadline, t0 = slow_run("close", nreaders, total,
                                                        "/sub/slow", 85)
    try:
        # Once the broker has given up on it, the stuck one starts reading:
        # what was queued before, then the close frame with 1013.  (A peer
        # that never reads again is cut off after close_timeout.)
        got = {}

        def watch():
            try:
                wait_until(lambda: b.stats()["slow_consumer_closes"] >= 1, 60,
                           "the slow consumer to be closed", interval=0.05)
                got["t"] = time.monotonic() - t0
                got["code"] = slow.close_code(30)
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                got["error"] = e
        wt = threading.Thread(target=watch, daemon=True)
        wt.start()
        rss = [b.rss_kb()]
        publish_paced(b, "slow", total, readers, deadline, rss)
        t_pub = time.monotonic() - t0
        finish_readers(readers, th, total, deadline)
        wt.join(max(0.1, deadline - time.monotonic()))
        check(not wt.is_alive(), "the slow consumer saw its close in time")
        if "error" in got:
            raise got["error"]
        eq(got["code"], 1013, "close code of the slow consumer")
        slow.send(8, struct.pack("!H", 1013))  # complete the close handshake
        slow.s.settimeout(10)
        eq(slow.s.recv(1), b"", "TCP closed after the close handshake")
        s = b.stats()
        eq(s["slow_consumer_closes"], 1, "exactly the stuck subscriber was closed")
        eq(s["messages_in"], total, "messages_in")
        rss.append(b.rss_kb())
        check(max(rss) < RSS_BOUND_KB,
              f"broker RSS peaked at {max(rss) // 1024} MiB, bound {RSS_BOUND_KB // 1024} MiB")
        slow.close()
        print(f"    {total} x {SIZE // 1024} KiB to {nreaders} readers + 1 stuck: closed after "
              f"{got['t']:.1f}s, published in {t_pub:.1f}s, RSS max {max(rss) // 1024} MiB",
              flush=True)
    finally:
        stop.set()
        close_all(readers, slow)
        b.stop()


def test_slow_consumer_drop_policy_reports_exact_gap():
    total, nreaders = 1200, 5  # 37.5 MiB
    b, slow, readers, th, stop, deadline, t0 = slow_run("drop", nreaders, total, "/ws", 60)
    try:
        op, welcome = slow.recv_frame()
        eq(json.loads(welcome)["op"], "welcome", "welcome")
        slow.send(1, b'{"op":"sub","topic":"slow","id":1}')
        op, ack = slow.recv_frame()
        eq(json.loads(ack), {"op": "ack", "id": 1, "seq": 0, "epoch": json.loads(welcome)["epoch"]},
           "sub ack")
        rss = []
        publish_paced(b, "slow", total, readers, deadline, rss)
        finish_readers(readers, th, total, deadline)
        s = b.stats()
        check(s["drops"] > 0, f"the stuck subscriber had drops ({s['drops']})")
        eq(s["slow_consumer_closes"], 0, "no closes under policy drop")
        # It reads again: messages, then one gap, then (once it has room)
        # the probes.  Every seq is accounted for exactly once.
        seen, gaps = [], []
        probe_seq, last = None, 0
        for attempt in range(20):
            r = b.publish("slow", "probe")
            probe_seq = r["seq"]
            end = time.monotonic() + 3
            while time.monotonic() < end and last < probe_seq:
                try:
                    op, p = slow.recv_frame(max(0.05, end - time.monotonic()))
                except Fail:
                    break
                m = json.loads(p)
                if m["op"] == "msg":
                    seen.append(m["seq"])
                    last = m["seq"]
                elif m["op"] == "gap":
                    eq(m["topic"], "slow", "gap topic")
                    gaps.append((m["from"], m["to"]))
                    seen.append(("gap", m["from"], m["to"]))
                else:
                    raise Fail(f"unexpected {m}")
            if last == probe_seq:
                break
        eq(last, probe_seq, f"the stuck subscriber caught up ({seen[-3:]})")
        check(gaps, "a gap message was sent")
        covered = []
        for x in seen:
            covered += list(range(x[1], x[2] + 1)) if isinstance(x, tuple) else [x]
        eq(covered, list(range(1, probe_seq + 1)),
           "delivered seqs and gap ranges cover 1..last exactly once, in order")
        slow.close()
    finally:
        stop.set()
        close_all(readers, slow)
        b.stop()


if __name__ == "__main__":
    run([
        test_slow_consumer_closed_with_1013_rss_bounded,
        test_slow_consumer_drop_policy_reports_exact_gap,
    ], timeout=120)
