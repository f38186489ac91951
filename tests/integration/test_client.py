"""build/echo-client (the core client library) against third-party echo
servers: python3-websockets and Node `ws` (lib/py_echo_server.py,
lib/node_echo_server.mjs), with and without permessage-deflate and with
small negotiated windows; plus the failures a user sees: refused
connection, bad URLs, a non-101 answer, a server-initiated close."""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))

from rctest import Proc, check, eq, free_port, run, run_client  # noqa: E402

SIZES = [1, 125, 126, 65535, 65536, 1 << 20]
TEXTS = ["hello", "wörld é€𝄞", "", "x" * 300]


def start_peer(kind, config):
    """Starts a third-party echo server; config is its deflate setting."""
    if kind == "python":
        argv = ["/usr/bin/python3", os.path.join(HERE, "lib", "py_echo_server.py"),
                "off" if config is False else json.dumps(config)]
    else:
        argv = ["node", os.path.join(HERE, "lib", "node_echo_server.mjs"), json.dumps(config)]
    p = Proc(argv, name=f"{kind} echo server")
    p.port = int(p.wait_output(r"listening on port (\d+)", timeout=15).group(1))
    return p


def round_trip(peer, extra, binary=False, sizes=SIZES, texts=TEXTS):
    args = list(extra) + (["--binary"] if binary else [])
    for n in sizes:
        args += ["--size", str(n)]
    args += [f"ws://127.0.0.1:{peer.port}/echo"] + texts
    rc, out, err = run_client(args, timeout=30)
    eq(rc, 0, f"echo-client exit status (stderr {err!r})")
    want = [f"{n} bytes echoed" for n in sizes] + texts
    eq(out.split("\n")[:-1], want, "echo-client output")
    return err


def check_peer(kind, config, deflated):
    peer = start_peer(kind, config)
    try:
        for binary in (False, True):
            for offer in ([], ["--no-deflate"]):
                err = round_trip(peer, offer, binary)
                on = deflated and not offer
                check(("permessage-deflate" in err) == on,
                      f"echo-client reported {err!r}, want deflate {on}")
        seen = peer.text("stdout")
        opens = re.findall(r"open ext=(.*)", seen)
        eq(len(opens), 4, "connections the peer saw")
        check(all(("permessage-deflate" in e) == (deflated and i % 2 == 0)
                  for i, e in enumerate(opens)),
              f"negotiated extensions as the peer saw them: {opens}")
        kinds = set(re.findall(r"msg (text|binary)", seen))
        eq(kinds, {"text", "binary"}, "message types the peer received")
    finally:
        peer.stop()
    return opens


def test_python_plain():
    check_peer("python", False, False)


def test_python_deflate():
    check_peer("python", {}, True)


def test_python_small_windows():
    # the server picks our compressor's window (9) and uses 10 for its own,
    # and resets both contexts: our client must follow all of that
    opens = check_peer("python", {"server_max_window_bits": 10, "client_max_window_bits": 9,
                                  "server_no_context_takeover": True,
                                  "client_no_context_takeover": True}, True)
    check("client_max_window_bits=9" in opens[0], f"peer answered {opens[0]}")


def test_node_plain():
    check_peer("node", False, False)


def test_node_deflate():
    check_peer("node", {"threshold": 0}, True)


def test_node_context_takeover_windows():
    opens = check_peer("node", {"threshold": 0, "serverMaxWindowBits": 11,
                                "clientMaxWindowBits": 9}, True)
    check("client_max_window_bits=9" in opens[0], f"peer answered {opens[0]}")


def test_16mib():
    for kind in ("python", "node"):
        peer = start_peer(kind, {})
        try:
            round_trip(peer, [], True, sizes=[16 << 20], texts=[])
            round_trip(peer, ["--no-deflate"], False, sizes=[16 << 20], texts=[])
        finally:
            peer.stop()


def test_stdin_lines():
    peer = start_peer("python", {})
    try:
        rc, out, err = run_client([f"ws://127.0.0.1:{peer.port}/"],
                                  stdin_data="one\ntwo é\n\nfour\n".encode())
        eq((rc, out), (0, "one\ntwo é\n\nfour\n"), f"stdin echo (stderr {err!r})")
    finally:
        peer.stop()


def test_refused():
    port = free_port()
    rc, out, err = run_client([f"ws://127.0.0.1:{port}/", "hello"])
    check(rc != 0, "a refused connection must fail")
    check("Connection refused" in err, f"stderr should say why: {err!r}")
    eq(out, "", "nothing echoed")


def test_bad_urls():
    for url in ["ws://", "127.0.0.1:80", "http://127.0.0.1:1/", "ws://127.0.0.1:99999/",
                "ws://127.0.0.1:0/", "ws://127.0.0.1:12x/", "ws://[::1/"]:
        rc, out, err = run_client([url, "hello"])
        check(rc != 0, f"{url!r} must fail")
        check(url in err and ("Invalid argument" in err or "not supported" in err),
              f"stderr for {url!r} should name the URL and the problem: {err!r}")
    rc, _, err = run_client([])
    eq(rc, 2, f"no arguments: usage (stderr {err!r})")
    check("usage" in err, "usage text")
    rc, _, err = run_client(["--size", "many", "ws://127.0.0.1:1/"])
    eq(rc, 2, f"bad --size (stderr {err!r})")


def test_http_error_and_server_close():
    peer = start_peer("python", {})
    try:
        rc, out, err = run_client([f"ws://127.0.0.1:{peer.port}/missing", "hello"])
        check(rc != 0, "a 404 answer must fail")
        check("HTTP 404" in err, f"stderr should give the status: {err!r}")
        msgs = ["ping-me", "fragment-me é€𝄞 long tail", "ping-me"]
        rc, out, err = run_client(["--no-deflate", f"ws://127.0.0.1:{peer.port}/"] + msgs)
        eq((rc, out), (0, "\n".join(msgs) + "\n"), f"server pings and fragments ({err!r})")
        rc, out, err = run_client([f"ws://127.0.0.1:{peer.port}/"] + msgs)
        eq((rc, out), (0, "\n".join(msgs) + "\n"), f"same, compressed ({err!r})")
        rc, out, err = run_client([f"ws://127.0.0.1:{peer.port}/", "first", "close-me", "x"])
        check(rc != 0, "a server close before all echoes came back must fail")
        eq(out, "first\n", "echoes before the server closed")
        check("4001" in err and "server says bye" in err,
              f"stderr should give the server's close code and reason: {err!r}")
    finally:
        peer.stop()


if __name__ == "__main__":
    run([test_python_plain, test_python_deflate, test_python_small_windows, test_node_plain,
         test_node_deflate, test_node_context_takeover_windows, test_16mib, test_stdin_lines,
         test_refused, test_bad_urls, test_http_error_and_server_close])
