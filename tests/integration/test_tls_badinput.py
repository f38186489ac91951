"""Bad input to the broker's TLS port, with the sanitizer build
(build/san/ringcast from `make SAN=1 build/san/ringcast`) when it exists:
plain HTTP, a truncated ClientHello, garbage, a client that stalls in the
middle of the handshake (closed after --handshake-timeout), one that
finishes the handshake and then stalls or sends non-TLS bytes, many at
once.  None may crash; afterwards a wss client still works, and at SIGTERM
the broker exits 0 with no sanitizer report (ASan, LSan, UBSan)."""
import asyncio
import os
import socket
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import websockets  # noqa: E402

from rctest import BUILD, ROOT, TESTS, Fail, check, eq, run  # noqa: E402
import tlsutil  # noqa: E402

TMP = tempfile.TemporaryDirectory(prefix="rc-tls-bad-")
PKI = tlsutil.Pki(TMP.name)
SAN = os.environ.get("SAN_RINGCAST") or os.path.join(ROOT, "build", "san", "ringcast")
HANDSHAKE_TIMEOUT = 0.5
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
           "LSAN_OPTIONS": f"suppressions={os.path.join(TESTS, 'lsan.supp')}",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def start():
    exe = SAN if os.access(SAN, os.X_OK) else None
    if not exe:
        print(f"note: {SAN} not built (make SAN=1 build/san/ringcast); "
              f"using {BUILD}/ringcast", flush=True)
    return tlsutil.start_tls_broker(PKI, "--handshake-timeout", str(HANDSHAKE_TIMEOUT),
                                    exe=exe, env=SAN_ENV, timeout=60)


def client_hello():
    """The first flight of a real TLS client (a ClientHello record)."""
    ctx = ssl.create_default_context(cafile=PKI.ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    check(len(hello) > 100 and hello[0] == 0x16, f"a ClientHello record ({len(hello)} bytes)")
    return hello


def closed_within(s, timeout):
    """Reads until EOF/reset; returns (seconds taken, bytes read)."""
    t0 = time.monotonic()
    got = b""
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise Fail(f"still open after {timeout}s (read {got[:80]!r})") from None
    return time.monotonic() - t0, got


def conn(b):
    return socket.create_connection(("127.0.0.1", b.tls_port), timeout=5)


def check_works(b):
    async def go():
        async with websockets.connect(f"wss://localhost:{b.tls_port}/sub/ok",
                                      ssl=PKI.client_ctx(), open_timeout=10,
                                      compression="deflate") as ws:
            eq(b.publish("ok", "still fine")["subscribers"], 1, "wss subscriber")
            eq(await asyncio.wait_for(ws.recv(), 10), "still fine", "message")
    asyncio.run(go())


def stop_clean(b):
    b.stop(timeout=30)
    log = b.log()
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "SUMMARY:"):
        check(bad not in log, f"sanitizer report in the broker log: {log[-3000:]}")


def test_bad_input_does_not_crash():
    b = start()
    try:
        hello = client_hello()
        # Plain HTTP to the TLS port: not TLS, closed, no HTTP answer.
        s = conn(b)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        took, got = closed_within(s, 5)
        s.close()
        check(not got.startswith(b"HTTP/"), f"no plain HTTP answer on the TLS port: {got[:60]!r}")
        # Garbage, and a TLS record header with a huge length.
        for junk in (os.urandom(70000), b"\x16\x03\x01\xff\xff" + b"\x00" * 200,
                     b"\x80\x80\x01\x03\x01" + os.urandom(100), b"\x15\x03\x03\x00\x02\x02\x28"):
            s = conn(b)
            try:
                s.sendall(junk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            closed_within(s, 5)
            s.close()
        # Truncated ClientHello, then the client goes away.
        for cut in (1, 5, 6, len(hello) // 2, len(hello) - 1):
            s = conn(b)
            s.sendall(hello[:cut])
            s.close()
        # A ClientHello split into single bytes is still a handshake.
        s = conn(b)
        for i in range(len(hello)):
            s.sendall(hello[i:i + 1])
        s.settimeout(5)
        check(s.recv(5)[:1] == b"\x16", "ServerHello after a byte-by-byte ClientHello")
        s.close()
        check(b.alive(), "broker alive after bad input")
        check_works(b)
    finally:
        stop_clean(b)


def test_stalled_handshakes_time_out():
    b = start()
    try:
        hello = client_hello()
        socks = []
        for i in range(30):
            s = conn(b)
            if i % 3 == 1:
                s.sendall(hello[:len(hello) // 2])   # stalls inside the ClientHello
            elif i % 3 == 2:
                s.sendall(hello)                     # stalls after the ServerHello
            socks.append(s)
        t0 = time.monotonic()
        for s in socks:
            closed_within(s, 10)
            s.close()
        took = time.monotonic() - t0
        check(took < HANDSHAKE_TIMEOUT + 5, f"all closed by the handshake timeout ({took:.2f}s)")
        # TLS done, then no HTTP request: the same timeout covers the upgrade.
        ctx = PKI.client_ctx()
        t0 = time.monotonic()
        with ctx.wrap_socket(conn(b), server_hostname="localhost") as ts:
            took, _ = closed_within(ts, 10)
        check(HANDSHAKE_TIMEOUT * 0.5 <= time.monotonic() - t0 < HANDSHAKE_TIMEOUT + 5,
              f"idle TLS session closed after about the handshake timeout ({took:.2f}s)")
        # TLS done, then bytes that are not a TLS record.
        with ctx.wrap_socket(conn(b), server_hostname="localhost") as ts:
            raw = socket.socket(fileno=os.dup(ts.fileno()))
            raw.sendall(b"\x00GARBAGE AFTER THE HANDSHAKE\r\n\r\n" * 10)
            try:
                closed_within(ts, 5)
            except ssl.SSLError:
                pass
            raw.close()
        check(b.alive(), "broker alive")
        check_works(b)
    finally:
        stop_clean(b)


if __name__ == "__main__":
    run([test_bad_input_does_not_crash, test_stalled_handshakes_time_out], timeout=120)
