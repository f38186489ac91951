"""build/ringcast-pub and build/ringcast-sub through a real build/ringcast:
publish into subscribe, stdin lines in order, --http, --json, --from,
--count, --timeout, -v with gaps and reconnects on stderr, and the documented exit codes for a bad URL, a refused
connection, a bad topic and bad usage."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))

from rctest import BUILD, Fail, Proc, check, eq, free_port, run, wait_listening  # noqa: E402

PUB = os.path.join(BUILD, "ringcast-pub")
SUB = os.path.join(BUILD, "ringcast-sub")
EX_USAGE, EX_TIMEOUT, EX_URL, EX_CONN, EX_TOPIC = 2, 3, 4, 5, 6


def start_broker():
    port = free_port()
    p = Proc([os.path.join(BUILD, "ringcast"), "--listen", f"127.0.0.1:{port}"], name="ringcast")
    wait_listening(port)
    p.url = f"ws://127.0.0.1:{port}"
    return p


def tool(argv, stdin=None, timeout=30):
    try:
        r = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise Fail(f"{argv} did not exit within {timeout}s; stderr {e.stderr!r}")
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def start_sub(args):
    """Starts ringcast-sub and waits until its subscription is in place
    (the broker's /topics lists a subscriber)."""
    return Proc([SUB] + args, name="ringcast-sub")


def subscribed(broker_port, topic):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{broker_port}/topics", timeout=5) as r:
        d = json.load(r)
    return any(t["topic"] == topic and t["subscribers"] > 0 for t in d["topics"])


def port_of(b):
    return int(b.url.rsplit(":", 1)[1])


def wait_subscribed(b, topic):
    from rctest import wait_until
    wait_until(lambda: subscribed(port_of(b), topic), 10, f"a subscriber on {topic}")


def test_pub_into_sub_and_stdin_order():
    b = start_broker()
    try:
        n = 2500
        s = start_sub(["--count", str(n + 1), b.url, "lines"])
        wait_subscribed(b, "lines")
        rc, _, err = tool([PUB, b.url, "lines", "first"])
        eq(rc, 0, f"pub exit (stderr {err!r})")
        lines = "".join(f"line {i}\n" for i in range(n)).encode()
        rc, _, err = tool([PUB, b.url, "lines"], stdin=lines, timeout=60)
        eq(rc, 0, f"pub from stdin exit (stderr {err!r})")
        eq(s.wait(timeout=30), 0, "sub exit after --count")
        got = s.text("stdout").split("\n")[:-1]
        eq(got, ["first"] + [f"line {i}" for i in range(n)], "messages in order")
    finally:
        b.stop()


def test_http_json_and_from():
    b = start_broker()
    try:
        rc, _, err = tool([PUB, "--http", b.url, "h", "plain text"])
        eq(rc, 0, f"--http exit (stderr {err!r})")
        rc, _, err = tool([PUB, b.url, "h", '{"k":[1,2]}'])
        eq(rc, 0, f"pub exit (stderr {err!r})")
        rc, out, err = tool([SUB, "--json", "--from", "1", "--count", "2", b.url, "h"])
        eq(rc, 0, f"sub --json exit (stderr {err!r})")
        msgs = [json.loads(l) for l in out.split("\n")[:-1]]
        eq([(m["op"], m["topic"], m["seq"], m["data"]) for m in msgs],
           [("msg", "h", 1, "plain text"), ("msg", "h", 2, {"k": [1, 2]})], "--json lines")
        rc, out, _ = tool([SUB, "--from", "2", "--count", "1", b.url, "h"])
        eq((rc, out), (0, '{"k":[1,2]}\n'), "--from 2 prints the raw JSON payload")
    finally:
        b.stop()


def test_timeout_and_errors():
    b = start_broker()
    try:
        rc, _, err = tool([SUB, "--timeout", "0.3", b.url, "quiet"])
        eq(rc, EX_TIMEOUT, f"--timeout exit (stderr {err!r})")
        check("no message" in err, f"timeout message: {err!r}")
        rc, _, err = tool([SUB, "--timeout", "0", b.url, "quiet"])
        eq(rc, EX_TIMEOUT, f"--timeout 0 exit, no crash (stderr {err!r})")
        rc, _, err = tool([PUB, b.url, "bad topic", "x"])
        eq(rc, EX_TOPIC, f"bad topic exit (stderr {err!r})")
        check("bad topic" in err, err)
        rc, _, err = tool([SUB, b.url, "a\tb"])
        eq(rc, EX_TOPIC, f"sub bad topic exit (stderr {err!r})")
    finally:
        b.stop()
    dead = f"ws://127.0.0.1:{free_port()}"
    dead_tls = f"wss://127.0.0.1:{free_port()}"
    for argv in ([PUB, dead, "t", "x"], [SUB, dead, "t"], [PUB, "--http", dead, "t", "x"],
                 [PUB, dead_tls, "t", "x"]):
        rc, _, err = tool(argv)
        eq(rc, EX_CONN, f"{argv[1:]} refused exit (stderr {err!r})")
        check("refused" in err, f"stderr names the failure: {err!r}")
    for url in ["ws://", "nonsense", "ws://host:99999", "https://127.0.0.1:1"]:
        rc, _, err = tool([PUB, url, "t", "x"])
        eq(rc, EX_URL, f"{url!r} exit (stderr {err!r})")
        check(err.strip(), "an error message")
    for argv in ([PUB], [SUB, "ws://127.0.0.1:1"], [SUB, "--count", "x", "ws://h", "t"],
                 [PUB, "--rate", "0", "ws://h", "t"]):
        rc, _, err = tool(argv)
        eq(rc, EX_USAGE, f"{argv[1:]} usage exit (stderr {err!r})")
    rc, out, _ = tool([SUB, "--help"])
    eq(rc, 0, "--help exit")
    check("usage" in out, "--help text")


def test_sub_verbose_and_gap():
    """-v puts the topic before each payload; a resume past the history
    says on stderr which messages are lost (it used to print seq 4-8 and
    nothing about 1-3)."""
    port = free_port()
    b = Proc([os.path.join(BUILD, "ringcast"), "--listen", f"127.0.0.1:{port}",
              "--history-size", "5"], name="ringcast")
    wait_listening(port)
    url = f"ws://127.0.0.1:{port}"
    try:
        for i in range(1, 9):
            rc, _, err = tool([PUB, url, "news", f"m{i}"])
            eq(rc, 0, f"pub exit (stderr {err!r})")
        rc, out, err = tool([SUB, "-v", "--from", "1", "--count", "5", url, "news"])
        eq(rc, 0, f"sub exit (stderr {err!r})")
        eq(out, "".join(f"news m{i}\n" for i in range(4, 9)), "-v output")
        check("gap on 'news': messages 1-3 are lost" in err, f"gap on stderr: {err!r}")
    finally:
        b.stop()


def test_sub_reports_reconnect_and_restart():
    port = free_port()
    argv = [os.path.join(BUILD, "ringcast"), "--listen", f"127.0.0.1:{port}"]
    url = f"ws://127.0.0.1:{port}"
    b = Proc(argv, name="ringcast")
    wait_listening(port)
    s = start_sub(["-v", "--count", "2", url, "r"])
    try:
        wait_subscribed_port(port, "r")
        eq(tool([PUB, url, "r", "before"])[0], 0, "pub before the restart")
        s.wait_output(r"r before", key="stdout", timeout=10)
        b.stop()
        s.wait_output(r"connection lost .*reconnecting in \d+ ms", timeout=10)
        b = Proc(argv, name="ringcast")
        wait_listening(port)
        s.wait_output(r"reconnected", timeout=20)
        check("new epoch" in s.text("stderr"), f"restart reported: {s.text('stderr')!r}")
        wait_subscribed_port(port, "r")
        eq(tool([PUB, url, "r", "after"])[0], 0, "pub after the restart")
        eq(s.wait(timeout=20), 0, "sub exit after --count")
        eq(s.text("stdout"), "r before\nr after\n", "both messages, with topics")
    finally:
        if s.alive():
            s.stop()
        b.stop()


def wait_subscribed_port(port, topic):
    from rctest import wait_until
    wait_until(lambda: subscribed(port, topic), 10, f"a subscriber on {topic}")


if __name__ == "__main__":
    run([test_pub_into_sub_and_stdin_order, test_http_json_and_from, test_timeout_and_errors,
         test_sub_verbose_and_gap, test_sub_reports_reconnect_and_restart])
