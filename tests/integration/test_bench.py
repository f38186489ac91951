"""ringcast-bench fanout against a broker this test starts: 2 s, small
numbers, both modes; the --json report has the documented fields, nothing
is lost, duplicated or reordered, and every subscriber got every message
(delivered == published x subscribers per topic).  Also the echo scenario,
the usage errors, and one fanout over wss:// (subscribers on the broker's
TLS listener, verified against a throwaway CA from lib/tlsutil.py;
publishers on its plain one).  Everything started here is stopped here."""
import json
import re
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

BUILD = os.environ.get("BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
BROKER = os.path.join(BUILD, "ringcast")
BENCH = os.path.join(BUILD, "ringcast-bench")
FIELDS = ["deliveries_per_sec", "published", "delivered", "lost", "duplicated", "reordered",
          "p50_us", "p99_us", "p999_us", "max_us"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker():
    port = free_port()
    # --max-backpressure as in bench/RESULTS.md: window mode paces on each
    # topic's first subscriber, so a slower one may fall a few MiB behind on
    # a loaded machine; the slow-consumer policy is not what this tests.
    p = subprocess.Popen([BROKER, "--listen", f"127.0.0.1:{port}", "--threads", "1",
                          "--log-level", "warn", "--max-backpressure", "64M"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, port
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.02)
    p.kill()
    raise SystemExit(f"broker did not start: {p.stderr.read().decode()[-500:]}")


def bench(args, timeout=60):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        r = subprocess.run([BENCH] + args + ["--json", path, "--quiet"], capture_output=True,
                           timeout=timeout)
        data = json.load(open(path)) if r.returncode == 0 and os.path.getsize(path) else None
        return r, data
    finally:
        os.unlink(path)


def fanout_case(port, mode, subs, topics, pubs, size, extra=(), url=None):
    url = url or f"ws://127.0.0.1:{port}"
    name = (f"fanout {url.split(':')[0]} {mode} {subs} subs / {topics} topics / {pubs} pubs / "
            f"{size} B {' '.join(extra)}")
    r, d = bench(["fanout", "--url", url, "--subs", str(subs),
                  "--topics", str(topics), "--pubs", str(pubs), "--size", str(size),
                  "--duration", "2", "--warmup", "0.5", "--mode", mode, "--topic-prefix",
                  f"t{mode}{size}x"] + list(extra))
    check(r.returncode == 0 and d is not None, f"{name}: exit 0 with a JSON report "
          f"({r.stderr.decode()[-300:]})")
    if d is None:
        return
    missing = [k for k in FIELDS if k not in d]
    check(not missing, f"{name}: documented fields present (missing {missing})")
    check(d["published"] > 0, f"{name}: published {d['published']} > 0")
    check(d["lost"] == 0, f"{name}: lost == 0 (got {d['lost']}; connections closed "
                          f"early: {d.get('closed')})")
    check(d["duplicated"] == 0, f"{name}: duplicated == 0 (got {d['duplicated']})")
    check(d["reordered"] == 0, f"{name}: reordered == 0 (got {d['reordered']})")
    # pubs is a multiple of topics here, so every topic has subs/topics
    # subscribers and each message reaches exactly that many.
    want = d["published"] * (subs // topics)
    check(d["delivered"] == want, f"{name}: delivered {d['delivered']} == published x "
          f"subscribers per topic ({want})")
    check(d["deliveries_per_sec"] > 0, f"{name}: deliveries_per_sec > 0")
    check(0 < d["p50_us"] <= d["p99_us"] <= d["p999_us"] <= d["max_us"] * 1.04 + 1,
          f"{name}: 0 < p50 <= p99 <= p99.9 <= max ({d['p50_us']}, {d['p99_us']}, "
          f"{d['p999_us']}, {d['max_us']})")


def wss_case():
    """Subscribers over TLS on the broker's --tls-listen port, trusting only
    the test CA and checking the host name (localhost); publishers plain."""
    import tlsutil
    with tempfile.TemporaryDirectory() as d:
        pki = tlsutil.Pki(d)
        b = tlsutil.start_tls_broker(pki, "--log-level", "warn", "--max-backpressure", "64M",
                                     exe=BROKER)
        try:
            fanout_case(b.port, "raw", 60, 2, 2, 1024,
                        ["--pub-url", f"ws://127.0.0.1:{b.port}", "--ca-file", pki.ca],
                        url=f"wss://localhost:{b.tls_port}")
            # A CA that did not sign the broker's certificate: every TLS
            # handshake fails verification, so no connection becomes ready.
            r, d = bench(["connect", "--url", f"wss://localhost:{b.tls_port}", "--ca-file",
                          pki.other_ca, "--conns", "5", "--duration", "0.5",
                          "--connect-timeout", "10"])
            check(d is not None and d["connections"] == 0 and d["connections_failed"] == 5,
                  f"wss with the wrong CA: 0 of 5 connections, 5 failed "
                  f"({d and (d['connections'], d['connections_failed'])})")
            check(b.alive(), "TLS broker still running after the wss benchmarks")
            st = b.stats()
            # A loss above would show here if the broker closed subscribers.
            check(st["slow_consumer_closes"] == 0,
                  f"no slow-consumer closes during the wss fanout (got {st['slow_consumer_closes']})")
        finally:
            b.stop()


def plot_case(svg):
    """--plot: the timeline stops at the end of the measured window (warm-up
    0.2 s + 1 s = 12 buckets of 100 ms), shades the warm-up, and both plots
    have scales."""
    try:
        with open(svg) as f:
            text = f.read()
    except OSError as e:
        check(False, f"--plot wrote {svg} ({e})")
        return
    finally:
        if os.path.exists(svg):
            os.unlink(svg)
    lines = re.findall(r'<polyline [^>]*points="([^"]*)"', text)
    check(len(lines) == 2 and len(lines[1].split()) == 12,
          f"--plot: timeline of 12 buckets ({lines[1].split()[:3] if len(lines) > 1 else lines})")
    check(">warm-up<" in text and ">1s<" in text and ">100%<" in text and ">0<" in text,
          "--plot: warm-up marked, time ticks and both y scales")


def main():
    if not os.access(BENCH, os.X_OK) or not os.access(BROKER, os.X_OK):
        print(f"skip: {BENCH} or {BROKER} not built")
        return 0
    broker, port = start_broker()
    try:
        fanout_case(port, "raw", 200, 4, 4, 64)
        fanout_case(port, "raw", 100, 1, 2, 1024, ["--rate", "2000"])
        fanout_case(port, "raw", 50, 1, 1, 16384, ["--deflate"])
        fanout_case(port, "json", 60, 3, 3, 100)
        svg = os.path.join(tempfile.gettempdir(), f"rcbench-{os.getpid()}.svg")
        r, d = bench(["echo", "--url", f"ws://127.0.0.1:{port}", "--conns", "20",
                      "--size", "256", "--duration", "1", "--warmup", "0.2", "--plot", svg])
        check(d is not None and d["delivered"] > 0 and d["lost"] == 0 and d["malformed"] == 0,
              f"echo: answers came back, none lost or malformed ({d and d['delivered']})")
        plot_case(svg)
        r, d = bench(["broadcast", "--url", f"ws://127.0.0.1:{port}", "--subs", "100",
                      "--rounds", "3", "--duration", "1"])
        check(d is not None and d["delivered"] == 300 and d["lost"] == 0 and
              d["time_to_last_us"] > 0,
              f"broadcast: 3 rounds x 100 subscribers delivered ({d and d['delivered']})")
        r = subprocess.run([BENCH, "fanout", "--subs", "1"], capture_output=True, timeout=10)
        check(r.returncode == 2 and b"--url" in r.stderr, "no --url: exit 2 with a message")
        r = subprocess.run([BENCH, "fanout", "--url", "wss://127.0.0.1:1"], capture_output=True,
                           timeout=10)
        check(r.returncode == 2 and b"--pub-url" in r.stderr,
              "fanout with a wss:// URL and no --pub-url: exit 2 naming --pub-url")
        r = subprocess.run([BENCH, "fanout", "--url", "wss://127.0.0.1:1", "--pub-url",
                            "wss://127.0.0.1:2"], capture_output=True, timeout=10)
        check(r.returncode == 2 and b"--pub-url wants ws://" in r.stderr,
              "--pub-url wss:// refused with exit 2 (publishers stay plain)")
        check(broker.poll() is None, "broker still running after the benchmarks")
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
    wss_case()
    print(f"test_bench: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
