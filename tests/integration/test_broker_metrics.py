"""GET /metrics is valid Prometheus text: `promtool check metrics` (from
Debian's prometheus package) passes, every series has # HELP and # TYPE,
and the build, process and histogram series say what happened; per-topic
series exist for exactly the topics metrics_topics lists (label values
escaped), follow SIGHUP, and the list is bounded."""
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import check, eq, run, wait_until  # noqa: E402


def scrape(b):
    st, hdr, body = b.http("GET", "/metrics")
    eq(st, 200, "GET /metrics status")
    check(hdr["content-type"].startswith("text/plain; version=0.0.4"), hdr["content-type"])
    return body.decode()


def samples(text):
    """{series with labels: value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def promtool_check(text):
    promtool = shutil.which("promtool")
    check(promtool, "promtool not installed (make test-deps installs Debian's prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    eq((r.returncode, r.stdout.decode() + r.stderr.decode()), (0, ""), "promtool check metrics")


def test_promtool_passes():
    promtool = shutil.which("promtool")
    check(promtool, "promtool not installed (make test-deps installs Debian's prometheus)")
    b = broker.start(threads=2)
    try:
        b.publish("m", "x")
        text = scrape(b)
        check("ringcast_topic_" not in text, "no per-topic series without metrics_topics")
        r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        eq((r.returncode, r.stdout.decode() + r.stderr.decode()), (0, ""), "promtool check metrics")
        # Every family is announced before its samples.
        helped = set(re.findall(r"^# HELP (\S+) ", text, re.M))
        typed = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        eq(helped, set(typed), "families with HELP and with TYPE")
        for name in samples(text):
            base = re.sub(r"(_bucket|_sum|_count)?(\{.*)?$", "", name)
            check(base in typed or name.split("{")[0] in typed, f"{name} has no TYPE")
    finally:
        b.stop()


async def test_build_process_and_histograms():
    b = broker.start(threads=2)
    try:
        subs = [await b.connect("/sub/h") for _ in range(3)]
        st = b.stats()
        eq(st["subscriptions"], 3, "subscriptions")
        for i in range(5):
            b.publish("h", f"m{i}")
        for ws in subs:
            for i in range(5):
                eq(await asyncio.wait_for(ws.recv(), 10), f"m{i}", "delivery")
        s = samples(scrape(b))
        eq(s['ringcast_build_info{version="%s"}' % st["version"]], 1.0, "build_info")
        check(s["process_resident_memory_bytes"] > 1 << 20, "RSS over 1 MiB")
        check(s["process_open_fds"] >= 3, "open fds")
        check(s["process_cpu_seconds_total"] > 0, "CPU seconds")
        with open(f"/proc/{b.pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = int(re.search(r"^btime (\d+)", f.read(), re.M).group(1))
        start = btime + ticks / os.sysconf("SC_CLK_TCK")
        check(abs(s["process_start_time_seconds"] - start) < 2,
              f"start time {s['process_start_time_seconds']} vs /proc {start}")
        # One latency observation per message and thread with subscribers
        # (the 3 subscribers may sit on one or two threads).
        n = s["ringcast_fanout_latency_seconds_count"]
        check(5 <= n <= 10, f"fanout observations {n}")
        eq(s['ringcast_fanout_latency_seconds_bucket{le="+Inf"}'], n, "+Inf bucket = count")
        check(s["ringcast_fanout_latency_seconds_sum"] > 0, "latency sum")
        # One queued-bytes observation per delivery.
        eq(s["ringcast_queued_bytes_count"], 15.0, "queued-bytes observations")
        eq(s["ringcast_messages_out_total"], 15.0, "deliveries")
        for ws in subs:
            await ws.close()
    finally:
        b.stop()


ODD = 'q"uo\\teé'  # a double quote, a backslash and UTF-8 in a topic name


def topic_series(text):
    return {k: v for k, v in samples(text).items() if k.startswith("ringcast_topic_")}


async def test_listed_topics():
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "ringcast.ini")
        broker.write_config(cfg, {"server": {"metrics_topics": f" m1 , {ODD},absent"}})
        b = broker.start(threads=2, config=cfg)
        try:
            subs = [await b.connect("/sub/m1") for _ in range(2)]
            subs.append(await b.connect("/sub/" + urllib.parse.quote(ODD)))
            subs.append(await b.connect("/sub/unlisted"))
            wait_until(lambda: b.stats()["subscriptions"] == 4, 10, "4 subscriptions")
            for i in range(3):
                eq(b.publish("m1", f"x{i}")["seq"], i + 1, "publish seq")
            b.publish("unlisted", "y")
            text = scrape(b)
            promtool_check(text)
            esc = 'q\\"uo\\\\teé'  # as the text format escapes it
            eq(topic_series(text), {
                'ringcast_topic_subscribers{topic="m1"}': 2.0,
                'ringcast_topic_subscribers{topic="%s"}' % esc: 1.0,
                'ringcast_topic_subscribers{topic="absent"}': 0.0,
                'ringcast_topic_seq{topic="m1"}': 3.0,
                'ringcast_topic_seq{topic="%s"}' % esc: 0.0,
            }, "per-topic series for exactly the listed topics")
            # SIGHUP: the new list replaces the old one.
            broker.write_config(cfg, {"server": {"metrics_topics": "unlisted"}})
            mark = len(b.log())
            b.signal(signal.SIGHUP)
            wait_until(lambda: "reloaded" in b.log()[mark:], 10, "the reload log line")
            text = scrape(b)
            promtool_check(text)
            eq(topic_series(text), {'ringcast_topic_subscribers{topic="unlisted"}': 1.0,
                                    'ringcast_topic_seq{topic="unlisted"}': 1.0},
               "series after SIGHUP")
            for ws in subs:
                await ws.close()
        finally:
            b.stop()


def test_list_is_bounded():
    exe = os.path.join(broker.BUILD, "ringcast")
    for value, why in ((",".join(f"t{i}" for i in range(65)), "too many topics"),
                       ("a,b,a", "listed twice"), ("a,,b", "not a topic list"),
                       ("ok," + "x" * 4100, "too long")):
        r = subprocess.run([exe, "--metrics-topics", value, "--check-config"],
                           capture_output=True, timeout=30)
        check(r.returncode != 0, f"{value[:40]!r} accepted")
        check(why in r.stderr.decode(), f"{why!r} not in {r.stderr.decode()!r}")
    r = subprocess.run([exe, "--metrics-topics", ",".join(f"t{i}" for i in range(64)),
                        "--check-config"], capture_output=True, timeout=30)
    eq(r.returncode, 0, "64 topics accepted: " + r.stderr.decode())


run([test_promtool_passes, test_build_process_and_histograms, test_listed_topics,
     test_list_is_bounded])
