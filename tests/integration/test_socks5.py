"""build/echo-client dialing build/echo-server through Debian's microsocks
(SOCKS5, RFC 1928; username/password, RFC 1929): with and without a
password, and the failures a user must be told about clearly."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from rctest import Fail, Proc, can_connect, check, eq, free_port, run, run_client, \
    start_echo_server, wait_until  # noqa: E402

state = {}


def microsocks(*auth):
    """Starts microsocks on a free loopback port (it cannot bind port 0, so a
    port taken meanwhile by someone else is retried)."""
    for _ in range(5):
        port = free_port()
        p = Proc(["microsocks", "-i", "127.0.0.1", "-p", str(port)] + list(auth))
        try:
            wait_until(lambda: can_connect(port) or not p.alive(), 10, "microsocks to listen")
        except Fail:
            p.stop(expect=None)
            raise
        if p.alive():
            p.port = port
            return p
    raise Fail("microsocks never started listening")


def setup():
    if not state:
        state["echo"] = start_echo_server()
        state["open"] = microsocks()
        state["auth"] = microsocks("-u", "alice", "-P", "s3cret:pw")


def target(path="/"):
    return f"ws://127.0.0.1:{state['echo'].port}{path}"


def expect_ok(proxy, extra=()):
    rc, out, err = run_client(["--socks5", proxy, *extra, "--size", "200000", target(),
                               "through the proxy", "é€𝄞"])
    eq(rc, 0, f"echo-client via {proxy} exit status (stderr {err!r})")
    eq(out, "200000 bytes echoed\nthrough the proxy\né€𝄞\n", f"echoes via {proxy}")


def expect_fail(proxy, words, url=None):
    rc, out, err = run_client(["--socks5", proxy, url or target(), "hello"])
    check(rc != 0, f"echo-client via {proxy} to {url or target()} must fail")
    eq(out, "", "nothing echoed")
    for w in words:
        check(w in err, f"stderr should say {w!r}: {err!r}")


def test_no_auth():
    setup()
    expect_ok(f"socks5://127.0.0.1:{state['open'].port}")
    expect_ok(f"socks5://127.0.0.1:{state['open'].port}", ["--no-deflate", "--binary"])


def test_password():
    setup()
    # the password holds a colon: only the first one separates user and password
    expect_ok(f"socks5://alice:s3cret:pw@127.0.0.1:{state['auth'].port}")
    # credentials offered to a proxy that wants none are simply not used
    expect_ok(f"socks5://alice:whatever@127.0.0.1:{state['open'].port}")


def test_wrong_password():
    setup()
    port = state["auth"].port
    expect_fail(f"socks5://alice:wrong@127.0.0.1:{port}", ["socks5", "rejected"])
    expect_fail(f"socks5://mallory:s3cret:pw@127.0.0.1:{port}", ["socks5", "rejected"])
    expect_fail(f"socks5://127.0.0.1:{port}", ["socks5", "requires authentication"])


def test_proxy_failures():
    setup()
    # the proxy cannot reach the target
    dead = free_port()
    expect_fail(f"socks5://127.0.0.1:{state['open'].port}", ["socks5", f"127.0.0.1:{dead}"],
                url=f"ws://127.0.0.1:{dead}/")
    # no proxy there at all
    expect_fail(f"socks5://127.0.0.1:{free_port()}", ["SOCKS5 proxy", "Connection refused"])
    # a bad proxy URL
    rc, _, err = run_client(["--socks5", "http://127.0.0.1:1", target(), "x"])
    check(rc != 0 and "cannot connect" in err, f"bad proxy URL: {rc} {err!r}")


def test_teardown():
    for name in ("open", "auth"):
        p = state.pop(name)
        check(p.alive(), f"microsocks ({name}) died: {p.text()!r}")
        p.stop(expect=None)
    state.pop("echo").stop()


if __name__ == "__main__":
    run([test_no_auth, test_password, test_wrong_password, test_proxy_failures, test_teardown])
