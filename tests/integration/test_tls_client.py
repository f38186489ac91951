"""The C client (core rc_client_connect through build/echo-client) over
wss:// against a python3-websockets wss echo server started here: the test
CA via --ca (ca_file), the system store refusing the test CA, --insecure
against a self-signed certificate, expired and wrong-host certificates
failing with 1006 and the verification error in the reason, TLS through a
SOCKS5 proxy (microsocks), and the core's own TLS listener (the broker's
/echo over wss) for a large compressed message."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from rctest import Proc, check, eq, free_port, run, run_client, wait_listening  # noqa: E402
import tlsutil  # noqa: E402

TMP = tempfile.TemporaryDirectory(prefix="rc-tls-client-")
PKI = tlsutil.Pki(TMP.name)


def echo_with(cert, args, url_host="127.0.0.1", msgs=("hello", "wss world")):
    srv = tlsutil.start_wss_echo(cert)
    try:
        st, out, err = run_client([*args, f"wss://{url_host}:{srv.port}/", *msgs])
    finally:
        srv.stop()
    return st, out, err


def test_ca_file_ip_and_name():
    for host in ("127.0.0.1", "localhost"):
        st, out, err = echo_with(PKI.server, ["--ca", PKI.ca], url_host=host)
        eq(st, 0, f"echo-client --ca over wss://{host} (stderr {err!r})")
        eq(out, "hello\nwss world\n", "echoes")


def test_system_store_does_not_know_the_test_ca():
    st, out, err = echo_with(PKI.server, [])
    eq(st, 1, f"exit status without --ca (stderr {err!r})")
    check("closed with 1006" in err and "certificate" in err,
          f"a 1006 naming the certificate problem: {err!r}")


def test_insecure_accepts_self_signed():
    st, out, err = echo_with(PKI.selfsigned, ["--ca", PKI.ca])
    eq(st, 1, "self-signed refused when verifying")
    check("1006" in err and "self-signed" in err, f"reason names self-signed: {err!r}")
    st, out, err = echo_with(PKI.selfsigned, ["--insecure"])
    eq(st, 0, f"--insecure (stderr {err!r})")
    eq(out, "hello\nwss world\n", "echoes")


def test_expired_certificate():
    st, out, err = echo_with(PKI.expired, ["--ca", PKI.ca])
    eq(st, 1, "expired certificate refused")
    check("closed with 1006" in err and "certificate has expired" in err,
          f"reason says expired: {err!r}")
    eq(out, "", "nothing echoed")
    print("   expired:", err.strip().splitlines()[-1])


def test_wrong_host_certificate():
    for host in ("127.0.0.1", "localhost"):
        st, out, err = echo_with(PKI.wronghost, ["--ca", PKI.ca], url_host=host)
        eq(st, 1, f"wrong.example certificate for {host} refused")
        check("closed with 1006" in err and "mismatch" in err,
              f"reason says the name does not match: {err!r}")


def test_through_socks5():
    port = free_port()
    proxy = Proc(["microsocks", "-i", "127.0.0.1", "-p", str(port)], name="microsocks")
    try:
        wait_listening(port)
        st, out, err = echo_with(PKI.server, ["--ca", PKI.ca, "--socks5",
                                              f"socks5://127.0.0.1:{port}"], url_host="localhost")
        eq(st, 0, f"wss through SOCKS5 (stderr {err!r})")
        eq(out, "hello\nwss world\n", "echoes")
        # The proxy resolves "localhost" itself; the certificate is still
        # checked against the name in the URL.
        st, out, err = echo_with(PKI.wronghost, ["--ca", PKI.ca, "--socks5",
                                                 f"socks5://127.0.0.1:{port}"],
                                 url_host="localhost")
        eq(st, 1, "wrong-host certificate through SOCKS5 refused")
        check("mismatch" in err, f"reason: {err!r}")
    finally:
        proxy.stop(expect=None)


def test_core_server_and_client_both_tls():
    """echo-client (core client) to the broker's /echo on its TLS listener
    (core server): 3 MiB compressed and 200 small messages each way."""
    b = tlsutil.start_tls_broker(PKI, "--max-message-size", "8M", "--max-backpressure", "8M")
    try:
        st, out, err = run_client(["--ca", PKI.ca, "--size", str(3 << 20),
                                   f"wss://localhost:{b.tls_port}/echo"], timeout=60)
        eq(st, 0, f"3 MiB over wss (stderr {err!r})")
        eq(out, f"{3 << 20} bytes echoed\n", "echo-client output")
        check("permessage-deflate" in err, f"compression negotiated: {err!r}")
        lines = "".join(f"line {i}\n" for i in range(200))
        st, out, err = run_client(["--ca", PKI.ca, f"wss://127.0.0.1:{b.tls_port}/echo"],
                                  stdin_data=lines.encode(), timeout=60)
        eq(st, 0, f"200 lines over wss (stderr {err!r})")
        eq(out, lines, "every line echoed in order")
    finally:
        b.stop()


if __name__ == "__main__":
    run([test_ca_file_ip_and_name, test_system_store_does_not_know_the_test_ca,
         test_insecure_accepts_self_signed, test_expired_certificate,
         test_wrong_host_certificate, test_through_socks5,
         test_core_server_and_client_both_tls])
