"""Server-Sent Events (GET /events/<topic>[,<topic>...]) of build/ringcast,
read by real clients: curl -N, and Python's http.client reading the stream
line by line.  Covers the event format for every payload kind, resume by
Last-Event-ID (one topic and several, with no duplicate and no hole) and by
?from=, gap and reset events, HTTP semantics (HEAD, 405 with Allow,
OPTIONS, CORS, every 400), retry: and keep-alive comments, a clean end at
SIGTERM, access control (token in ?token= or Authorization, per-topic
permission, origins), and slow consumers under both policies with the
broker's RSS bounded, and a stream that stopped reading being cut."""
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import jwt  # noqa: E402  (python3-jwt)

import broker  # noqa: E402
from rctest import BUILD, Proc, check, eq, run, wait_until  # noqa: E402


class Stream:
    """An event stream read with http.client, parsed as the HTML standard's
    EventSource parser does (fields, comments, dispatch on a blank line)."""

    def __init__(self, b, path, headers=None, timeout=10, method="GET"):
        self.c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=timeout)
        self.c.request(method, path, headers=headers or {})
        self.sock = self.c.sock  # http.client lets go of it for a close-delimited body
        self.r = self.c.getresponse()
        self.status = self.r.status
        self.headers = {k.lower(): v for k, v in self.r.getheaders()}
        self.last_id = None
        self.retry = None
        self.comments = 0

    def event(self, timeout=10):
        """The next event as (type, data, last id), or None at the end."""
        self.sock.settimeout(timeout)
        kind, data = "", []
        while True:
            line = self.r.readline()
            if not line:
                return None
            check(line.endswith(b"\n"), f"a line cut short at the end: {line!r}")
            line = line[:-1].decode()
            if line == "":
                if data:
                    return kind or "message", "\n".join(data), self.last_id
                kind = ""
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                self.last_id = value
            elif field == "retry":
                self.retry = int(value)

    def welcome(self, timeout=10):
        """Reads up to the welcome; returns (events before it, welcome)."""
        before = []
        while True:
            e = self.event(timeout)
            check(e is not None, f"stream ended before the welcome; got {before}")
            if e[0] == "welcome":
                return before, json.loads(e[1])
            before.append((e[0], json.loads(e[1]), e[2]))

    def msgs(self, n, timeout=10):
        """The next n events, each (type, parsed data, id)."""
        out = []
        for _ in range(n):
            e = self.event(timeout)
            check(e is not None, f"stream ended after {out}")
            out.append((e[0], json.loads(e[1]), e[2]))
        return out

    def close(self):
        self.r.close()
        self.sock.close()


def seqs(events, topic=None):
    return [d["seq"] for k, d, _ in events if k == "msg" and (topic is None or d["topic"] == topic)]


def test_curl_streams_every_payload_kind():
    b = broker.start()
    try:
        curl = Proc(["curl", "-sN", "-i", f"http://127.0.0.1:{b.port}/events/kinds"], name="curl")
        curl.wait_output(r"event: welcome", key="stdout")
        b.publish("kinds", b'{"a": [1, 2]}', ctype="application/json")
        b.publish("kinds", b'{\n  "multi": "line"\r\n}\r', ctype="application/json")
        b.publish("kinds", "plain text, not JSON")
        b.publish("kinds", bytes(range(256)))
        curl.wait_output(r"(?s)(event: msg.*){4}", key="stdout")
        curl.popen.terminate()
        curl.wait()
        out = curl.text("stdout")
        head, _, body = out.partition("\r\n\r\n")
        check(head.startswith("HTTP/1.1 200"), f"status line: {head[:80]!r}")
        check("Content-Type: text/event-stream" in head, f"head: {head!r}")
        check("Cache-Control: no-store" in head and "Content-Length" not in head, f"head: {head!r}")
        datas = []
        for block in body.split("\n\n"):
            lines = block.split("\n")
            if "event: msg" in lines:
                datas.append(json.loads("\n".join(ln[6:] for ln in lines if ln.startswith("data: "))))
                check(any(ln.startswith("id: ") for ln in lines), f"an event without id: {block!r}")
        eq(len(datas), 4, "msg events")
        eq(datas[0], {"op": "msg", "topic": "kinds", "seq": 1, "data": {"a": [1, 2]}}, "JSON payload")
        eq(datas[1]["data"], {"multi": "line"}, "JSON with line breaks, split over data lines")
        eq(datas[2]["data"], "plain text, not JSON", "text payload")
        eq(datas[3].get("enc"), "base64", "binary payload encoding")
        eq(base64.b64decode(datas[3]["data"]), bytes(range(256)), "binary payload")
    finally:
        b.stop()


def test_resume_by_last_event_id_one_topic():
    b = broker.start(threads=2)
    try:
        s = Stream(b, "/events/r1")
        eq(s.status, 200, "status")
        _, w = s.welcome()
        eq(w["topics"], [{"topic": "r1", "seq": 0}], "welcome topics")
        for i in range(3):
            b.publish("r1", f"m{i + 1}")
        got = s.msgs(3)
        eq(seqs(got), [1, 2, 3], "first three")
        last = got[-1][2]
        eq(last, f"{w['epoch']}/3", "the id: epoch/seq")
        s.close()
        for i in range(3, 6):
            b.publish("r1", f"m{i + 1}")
        s = Stream(b, "/events/r1", {"Last-Event-ID": last})
        before, _ = s.welcome()
        eq(seqs(before), [4, 5, 6], "replayed after the cut, nothing twice, nothing missing")
        b.publish("r1", "m7")
        eq(seqs(s.msgs(1)), [7], "then live")
        s.close()
        # ?from= without Last-Event-ID: the same replay.
        s = Stream(b, "/events/r1?from=6")
        before, _ = s.welcome()
        eq(seqs(before), [6, 7], "?from=6")
        s.close()
    finally:
        b.stop()


def test_resume_several_topics():
    b = broker.start(threads=2)
    topics = ["ma", "mb", "m,c"]  # a comma inside a topic is percent-encoded
    path = "/events/ma,mb,m%2Cc"
    try:
        s = Stream(b, path)
        _, w = s.welcome()
        eq([t["topic"] for t in w["topics"]], topics, "welcome topics in URL order")
        order = ["ma", "mb", "ma", "m,c", "mb", "ma"]
        for t in order:
            b.publish(t.replace(",", "%2C"), "x")
        got = s.msgs(4)
        eq([d["topic"] for _, d, _ in got], order[:4], "arrival order")
        last = got[-1][2]
        eq(last, f"{w['epoch']}/2,1,1", "the id carries every topic's position")
        s.close()  # cut with mb:2 and ma:3 unread
        for t in ["m,c", "mb", "ma"]:
            b.publish(t.replace(",", "%2C"), "y")
        s = Stream(b, path, {"Last-Event-ID": last})
        before, w2 = s.welcome()
        eq(sorted((d["topic"], d["seq"]) for _, d, _ in before),
           sorted([("mb", 2), ("ma", 3), ("m,c", 2), ("mb", 3), ("ma", 4)]),
           "every topic resumed where it stopped")
        eq(s.last_id, f"{w['epoch']}/4,3,2", "position after the replay")
        eq([t["seq"] for t in w2["topics"]], [4, 3, 2], "welcome seqs")
        s.close()
        # A client opening a new stream passes the id in the query (encoded
        # as URLSearchParams does); an empty position starts that topic live.
        b.publish("mb", "z")
        q = urllib.parse.urlencode({"last_event_id": f"{w['epoch']}/4,,2"})
        s = Stream(b, f"{path}?{q}")
        before, w3 = s.welcome()
        eq([(d["topic"], d["seq"]) for _, d, _ in before], [], "nothing to replay")
        eq(s.last_id, f"{w['epoch']}/4,4,2", "mb starts live at its current seq")
        s.close()
        # A Last-Event-ID for another number of topics is not this stream's.
        s = Stream(b, "/events/ma,mb", {"Last-Event-ID": last})
        eq(s.status, 400, "Last-Event-ID of three topics on a stream of two")
        s.close()
    finally:
        b.stop()


def test_gap_and_reset_events():
    b = broker.start("--history-size", "3")
    try:
        for i in range(10):
            b.publish("g", f"{i + 1}")
        s = Stream(b, "/events/g?from=2")
        before, w = s.welcome()
        eq(before[0][0], "gap", "first event")
        eq(before[0][1], {"op": "gap", "topic": "g", "from": 2, "to": 7}, "gap")
        eq(before[0][2], f"{w['epoch']}/7", "the gap moves the position past it")
        eq(seqs(before[1:]), [8, 9, 10], "then history")
        s.close()
        # An id of another epoch: the broker restarted; numbers start afresh.
        s = Stream(b, "/events/g", {"Last-Event-ID": "0123456789abcdef/99"})
        before, w = s.welcome()
        eq([(k, d) for k, d, _ in before],
           [("reset", {"op": "reset", "topic": "g", "seq": 10})], "reset for a restarted broker")
        b.publish("g", "11")
        eq(seqs(s.msgs(1)), [11], "live after the reset")
        s.close()
    finally:
        b.stop()


def test_http_semantics():
    b = broker.start("--sse-max-topics", "3", "--cors-origins", "https://ok.example")
    try:
        st, h, body = b.http("HEAD", "/events/h")
        eq((st, h.get("content-type"), body), (200, "text/event-stream", b""), "HEAD")
        st, h, _ = b.http("POST", "/events/h", b"x")
        eq((st, h.get("allow")), (405, "GET, HEAD, OPTIONS"), "POST")
        st, h, _ = b.http("OPTIONS", "/events/h", headers={
            "Origin": "https://ok.example", "Access-Control-Request-Method": "GET"})
        eq((st, h.get("access-control-allow-origin")), (204, "https://ok.example"), "preflight")
        for path, hdr, want in [
                ("/events/", {}, 400), ("/events/a,,b", {}, 400), ("/events/a%20b", {}, 400),
                ("/events/a,a", {}, 400), ("/events/a,b,c,d", {}, 400),
                ("/events/news.*", {}, 400), ("/events/a,news.%3E", {}, 400),  # patterns
                ("/events/a?from=-1", {}, 400), ("/events/a?from=18446744073709551616", {}, 400),
                ("/events/a", {"Last-Event-ID": "garbage"}, 400),
                ("/events/a", {"Last-Event-ID": "x/1"}, 200),  # another epoch: a reset
                ("/events/a", {"Last-Event-ID": "x/1,2"}, 400),  # two positions for one topic
                ("/events", {}, 404),
                ("/events/a", {"Origin": "https://evil.example"}, 403)]:
            st, _, body = b.http("GET", path, headers=hdr, timeout=2) if want != 200 else \
                (Stream(b, path, hdr).status, None, b"")
            eq(st, want, f"GET {path} {hdr}")
            if want >= 400:
                check(json.loads(body).get("error"), f"an error reason for {path}: {body!r}")
        s = Stream(b, "/events/a", {"Origin": "https://ok.example"})
        eq(s.headers.get("access-control-allow-origin"), "https://ok.example", "CORS on the stream")
        s.close()
    finally:
        b.stop()


def test_retry_and_keepalive_comments():
    b = broker.start("--sse-retry", "1.5", "--sse-keepalive", "0.2")
    try:
        s = Stream(b, "/events/k")
        s.welcome()
        eq(s.retry, 1500, "retry: from sse_retry")
        s.sock.settimeout(5)
        comments = 0
        while comments < 3:  # each within the socket's timeout
            line = s.r.readline()
            check(line, "the stream ended")
            comments += line.startswith(b":")
        b.publish("k", "after the comments")
        eq(seqs(s.msgs(1)), [1], "a message after the comments")
        s.close()
    finally:
        b.stop()


def test_sigterm_ends_streams_after_everything_acked():
    b = broker.start(threads=2)
    try:
        s = Stream(b, "/events/d")
        s.welcome()
        for i in range(50):
            b.publish("d", f"{i}")
        b.proc.popen.send_signal(15)
        got = []
        while (e := s.event(10)) is not None:
            got.append(json.loads(e[1])["seq"])
        eq(got, list(range(1, 51)), "every acked message, then the end")
        eq(b.proc.wait(15), 0, "exit status")
    finally:
        if b.alive():
            b.stop()


def test_one_event_per_message_for_every_stream():
    b = broker.start(threads=2)
    try:
        streams = [Stream(b, "/events/once") for _ in range(10)]
        streams += [Stream(b, "/events/once,twice") for _ in range(5)]
        for s in streams:
            s.welcome()
        before = b.stats()["sse_events"]
        for i in range(50):
            b.publish("once", f"{i}")
        for s in streams:
            eq(seqs(s.msgs(50)), list(range(1, 51)), "every stream gets every message")
        st = b.stats()
        # One shared event per message for the ten one-topic streams and
        # one (without id) for the five two-topic ones: never per stream.
        eq(st["sse_events"] - before, 100, "events built for 50 messages and 15 streams")
        check(st["messages_out"] >= 750, f"deliveries: {st['messages_out']}")
        eq(st["sse_streams"], 15, "sse_streams")
        _, _, body = b.http("GET", "/connz?limit=1000")
        rows = [c for c in json.loads(body)["connections"] if c["endpoint"] == "/events/"]
        eq(sorted((c.get("topic", ""), c["topics"], c["messages_out"]) for c in rows),
           [("", 2, 50)] * 5 + [("once", 1, 50)] * 10, "/connz lists the streams")
        for s in streams:
            s.close()
    finally:
        b.stop()


def test_bench_sse_subscribers():
    """ringcast-bench fanout --mode sse: SSE subscribers, checked like
    WebSocket ones (every publisher's seq, no loss, no duplicate)."""
    b = broker.start("--max-backpressure", "64M", threads=2)
    try:
        out = os.path.join(TMP, "bench.json")
        r = subprocess.run([os.path.join(BUILD, "ringcast-bench"), "fanout", "--url",
                            f"ws://127.0.0.1:{b.port}", "--mode", "sse", "--subs", "60",
                            "--topics", "3", "--pubs", "3", "--size", "100", "--duration", "2",
                            "--warmup", "0.5", "--json", out, "--quiet"],
                           capture_output=True, timeout=60)
        eq(r.returncode, 0, f"ringcast-bench exit ({r.stderr.decode()[-300:]})")
        d = json.load(open(out))
        eq(d["mode"], "sse", "mode in the report")
        check(d["published"] > 0, "published")
        eq((d["lost"], d["duplicated"], d["reordered"]), (0, 0, 0), "lost/dup/reordered")
        eq(d["delivered"], d["published"] * 20, "every message to its topic's 20 streams")
    finally:
        b.stop()


TMP = tempfile.mkdtemp(prefix="rc-sse-")
SECRET = "sse-secret-0123456789abcdef0123456789"


def token(**kw):
    now = int(time.time())
    c = {"sub": "u", "iat": now, "exp": now + 300, "subscribe": ["secret"]}
    c.update(kw)
    return jwt.encode(c, SECRET, algorithm="HS256", headers={"kid": "k"})


def test_access_control():
    path = os.path.join(TMP, "access.ini")
    with open(path, "w") as f:
        f.write(f"""[tokens]
leeway = 0

[key k]
alg = HS256
secret = {SECRET}

[origins]
allow = https://app.example

[topic public.*]
subscribe = anonymous
publish = anonymous

[topic secret]
subscribe = token
publish = nobody
""")
    b = broker.start("--auth", path, "--cors-origins", "https://app.example")
    try:
        tok = token()
        for p, hdr, want in [
                ("/events/public.a", {}, 200),
                ("/events/secret", {}, 403),
                ("/events/public.a,secret", {}, 403),
                (f"/events/public.a,secret?token={tok}", {}, 200),
                ("/events/secret", {"Authorization": f"Bearer {tok}"}, 200),
                (f"/events/secret?token={token(subscribe=['other'])}", {}, 403),
                (f"/events/secret?token={token(exp=int(time.time()) - 10)}", {}, 401),
                ("/events/public.a", {"Origin": "https://app.example"}, 200),
                ("/events/public.a", {"Origin": "https://evil.example"}, 403)]:
            s = Stream(b, p, hdr, timeout=5)
            eq(s.status, want, f"GET {p} {hdr}")
            s.close()
        # A stream whose token expires is ended.
        s = Stream(b, f"/events/secret?token={token(exp=int(time.time()) + 2)}")
        s.welcome()
        check(s.event(10) is None, "the stream ends when its token expires")
        s.close()
    finally:
        b.stop()


# ---- Slow consumers ------------------------------------------------------------

SIZE = 16 << 10


def stuck_reader(b, path):
    """A socket that asks for the stream and then never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", b.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def read_all(s, timeout=30):
    s.settimeout(timeout)
    data = bytearray()
    while chunk := s.recv(1 << 20):
        data += chunk
    return bytes(data)


def parse_events(raw):
    body = raw.partition(b"\r\n\r\n")[2].decode()
    out = []
    for block in body.split("\n\n")[:-1]:
        lines = block.split("\n")
        kinds = [ln[7:] for ln in lines if ln.startswith("event: ")]
        data = "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))
        if kinds:
            out.append((kinds[0], json.loads(data)))
    return out


class Follower(threading.Thread):
    """A reader that keeps up, counting msg seqs in order."""

    def __init__(self, b, path):
        super().__init__(daemon=True)
        self.s = Stream(b, path, timeout=30)
        self.s.welcome()
        self.seqs = []
        self.error = None

    def run(self):
        try:
            while (e := self.s.event(30)) is not None:
                if e[0] == "msg":
                    self.seqs.append(json.loads(e[1])["seq"])
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def slow_run(policy):
    b = broker.start("--max-backpressure", "256K", "--slow-consumer-policy", policy,
                     "--history-size", "0", threads=2)
    stuck = stuck_reader(b, "/events/slow")
    fol = Follower(b, "/events/slow")
    fol.start()
    wait_until(lambda: b.stats()["sse_streams"] == 2, 10, "two streams")
    rss = [b.rss_kb()]
    n = 1500  # 24 MiB of payload, about 100 x max_backpressure
    payload = "x" * SIZE
    for i in range(n):
        b.publish("slow", payload)
        if i % 100 == 0:
            rss.append(b.rss_kb())
            wait_until(lambda: len(fol.seqs) >= i - 50, 30, "the follower to keep up")
    wait_until(lambda: len(fol.seqs) == n or fol.error, 30, "the follower to get everything")
    check(fol.error is None, f"follower: {fol.error}")
    eq(fol.seqs, list(range(1, n + 1)), "the follower's seqs")
    print(f"  {policy}: RSS {rss[0] // 1024} MiB at start, peak {max(rss) // 1024} MiB "
          f"({n * SIZE >> 20} MiB published)", flush=True)
    return b, stuck, fol, rss, n


RSS_BOUND_KB = 64 * 1024


def test_slow_consumer_close_policy_rss_bounded():
    b, stuck, fol, rss, n = slow_run("close")
    try:
        wait_until(lambda: b.stats()["slow_consumer_closes"] >= 1, 10, "the slow close")
        events = parse_events(read_all(stuck))
        got = [d["seq"] for k, d in events if k == "msg"]
        check(0 < len(got) < n // 4, f"the stuck stream got {len(got)} of {n} before its end")
        eq(got, list(range(1, len(got) + 1)), "what it got is a prefix, in order")
        check(max(rss) < RSS_BOUND_KB, f"RSS peaked at {max(rss)} KiB, bound {RSS_BOUND_KB}")
    finally:
        b.stop()


def test_slow_consumer_drop_policy_reports_gap():
    b, stuck, fol, rss, n = slow_run("drop")
    try:
        check(b.stats()["drops"] > 0, "deliveries were dropped")
        b.publish("slow", "last")  # after reading resumes: the gap goes out first
        stuck.settimeout(30)
        buf = bytearray()
        deadline = time.monotonic() + 30
        while b'"seq":%d' % (n + 1) not in buf:
            check(time.monotonic() < deadline, "the last message never came")
            buf += stuck.recv(1 << 20)
        covered = []
        for k, d in parse_events(bytes(buf)):
            if k == "msg":
                covered.append(d["seq"])
            elif k == "gap":
                check(d["from"] == (covered[-1] + 1 if covered else 1),
                      f"a gap from {d['from']} after {covered[-1:]}")
                covered += list(range(d["from"], d["to"] + 1))
        eq(covered, list(range(1, n + 2)), "messages and gaps account for every seq exactly once")
        check(max(rss) < RSS_BOUND_KB, f"RSS peaked at {max(rss)} KiB, bound {RSS_BOUND_KB}")
    finally:
        b.stop()


def test_stalled_stream_is_cut():
    b = broker.start("--max-backpressure", "64K", "--slow-consumer-policy", "drop",
                     "--sse-keepalive", "0.2", "--idle-timeout", "0.5", "--pong-timeout", "0.5")
    try:
        stuck = stuck_reader(b, "/events/st")
        wait_until(lambda: b.stats()["sse_streams"] == 1, 10, "the stream")
        for i in range(4000):  # until the socket buffers and the queue are full
            b.publish("st", "y" * SIZE)
            if i % 20 == 0 and b.stats()["drops"] > 0:
                break
        check(b.stats()["drops"] > 0, "the queue is full")
        wait_until(lambda: b.stats()["sse_streams"] == 0, 15, "the stalled stream to be cut")
        check("stalled event stream" in b.log(), "the log says why")
        read_all(stuck)  # then EOF
    finally:
        b.stop()


if __name__ == "__main__":
    run([test_curl_streams_every_payload_kind, test_resume_by_last_event_id_one_topic,
         test_resume_several_topics, test_gap_and_reset_events, test_http_semantics,
         test_retry_and_keepalive_comments, test_sigterm_ends_streams_after_everything_acked,
         test_one_event_per_message_for_every_stream, test_bench_sse_subscribers,
         test_access_control, test_slow_consumer_close_policy_rss_bounded,
         test_slow_consumer_drop_policy_reports_gap, test_stalled_stream_is_cut])
