"""The broker over TLS: a plain and a TLS listener side by side, with
python3-websockets as wss clients (raw /sub and JSON /ws, compression on),
publishing by HTTP on the plain port, HTTPS on the TLS port and JSON over
wss; openssl s_client for the handshake, ALPN and refused TLS 1.1; the
certificate reloaded on SIGHUP while a wss connection stays up; mutual TLS
with tls_client_ca."""
import asyncio
import http.client
import json
import os
import shutil
import signal
import ssl
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import websockets  # noqa: E402

from rctest import Fail, check, eq, run, wait_until  # noqa: E402
import tlsutil  # noqa: E402
from broker import JsonClient  # noqa: E402

TMP = tempfile.TemporaryDirectory(prefix="rc-tls-broker-")
PKI = tlsutil.Pki(TMP.name)


def wss(b, path, ctx=None, compression="deflate", host="localhost"):
    return websockets.connect(f"wss://{host}:{b.tls_port}{path}", ssl=ctx or PKI.client_ctx(),
                              compression=compression, open_timeout=10, close_timeout=5,
                              ping_interval=None, max_size=16 << 20)


def https(b, method, path, body=None, headers=None, ctx=None):
    c = http.client.HTTPSConnection("localhost", b.tls_port, timeout=10,
                                    context=ctx or PKI.client_ctx())
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


async def recv(ws, timeout=10):
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise Fail(f"nothing received within {timeout}s") from None


async def test_pubsub_plain_and_tls_side_by_side():
    b = tlsutil.start_tls_broker(PKI)
    try:
        async with wss(b, "/sub/news") as raw_tls, \
                websockets.connect(b.url("/sub/news"), compression="deflate") as raw_plain, \
                wss(b, "/ws") as jws:
            check(raw_tls.response_headers.get("Sec-WebSocket-Extensions", "")
                  .startswith("permessage-deflate"), "compression negotiated over wss")
            j = JsonClient(jws)
            eq((await j.recv()).get("op"), "welcome", "JSON welcome over wss")
            await j.ack({"op": "sub", "topic": "news", "id": 1})
            # 1: HTTP POST on the plain port.
            big = "tls fanout " * 20000  # 220 KB, compressible
            r = b.publish("news", big)
            eq(r.get("subscribers"), 3, "subscribers across both listeners")
            eq(await recv(raw_tls), big, "raw wss subscriber got the plain POST")
            eq(await recv(raw_plain), big, "raw ws subscriber got it too")
            m = await j.recv()
            eq((m.get("op"), m.get("data")), ("msg", big), "JSON wss subscriber")
            # 2: HTTPS POST on the TLS port.
            st, body = https(b, "POST", "/publish/news", b"\x00\x01binary",
                             {"Content-Type": "application/octet-stream"})
            eq(st, 200, f"POST over https ({body!r})")
            eq(await recv(raw_tls), b"\x00\x01binary", "binary stays binary over wss")
            eq(await recv(raw_plain), b"\x00\x01binary", "and over ws")
            m = await j.recv()
            eq((m.get("enc"), m.get("seq")), ("base64", r["seq"] + 1), "JSON sees seq + 1")
            # 3: JSON pub over wss.
            await j.send({"op": "pub", "topic": "news", "data": {"via": "wss"}, "id": 2})
            got = []
            while len(got) < 2:
                got.append(await j.recv())
            ops = sorted(x.get("op") for x in got)
            eq(ops, ["ack", "msg"], f"ack and own message: {got}")
            eq(json.loads(await recv(raw_tls)), {"via": "wss"}, "raw wss gets the JSON pub")
            eq(json.loads(await recv(raw_plain)), {"via": "wss"}, "raw ws too")
        st, body = https(b, "GET", "/healthz")
        eq(st, 200, "GET /healthz over https")
        st = b.stats()
        check(isinstance(st, dict), "stats over plain HTTP")
    finally:
        b.stop()


async def test_many_wss_subscribers_compressed():
    b = tlsutil.start_tls_broker(PKI)
    try:
        conns = [await wss(b, "/sub/many").__aenter__() for _ in range(50)]
        try:
            for i in range(20):
                r = b.publish("many", json.dumps({"i": i, "pad": "x" * 3000}))
                eq(r.get("subscribers"), 50, "50 wss subscribers")
            for ws in conns:
                for i in range(20):
                    eq(json.loads(await recv(ws))["i"], i, "in order on every connection")
        finally:
            for ws in conns:
                await ws.close()
    finally:
        b.stop()


def test_openssl_s_client_alpn_and_versions():
    b = tlsutil.start_tls_broker(PKI)
    try:
        rc, out = tlsutil.s_client(b.tls_port, "-CAfile", PKI.ca, "-alpn", "http/1.1",
                                   "-verify_return_error", "-verify_hostname", "localhost", "-ign_eof",
                                   stdin=b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                                   b"Connection: close\r\n\r\n", timeout=20)
        eq(rc, 0, f"s_client exit status ({out[-1500:]!r})")
        check("ALPN protocol: http/1.1" in out, f"ALPN http/1.1 in {out[-2000:]!r}")
        check("Verify return code: 0 (ok)" in out, "verify OK with the test CA")
        check("HTTP/1.1 200" in out, "HTTP answered over the session")
        # Offering only another protocol: no ALPN answer, not a failure.
        rc, out = tlsutil.s_client(b.tls_port, "-CAfile", PKI.ca, "-alpn", "h2", stdin=b"")
        check("No ALPN negotiated" in out, f"no ALPN for h2 only: {out[-1500:]!r}")
        for v in ("-tls1_2", "-tls1_3"):
            rc, out = tlsutil.s_client(b.tls_port, "-CAfile", PKI.ca, v, stdin=b"")
            check("Verify return code: 0 (ok)" in out, f"{v} handshake: {out[-1500:]!r}")
        rc, out = tlsutil.s_client(b.tls_port, "-tls1_1", stdin=b"")
        # Refused with the protocol_version alert (number 70), so the
        # client learns why (core/README.md).
        check(rc != 0 and "Cipher is (NONE)" in out, f"TLS 1.1 refused: {out[-1500:]!r}")
        check("alert protocol version" in out, f"protocol_version alert: {out[-1500:]!r}")
        check(b.alive(), "broker alive after s_client runs")
    finally:
        b.stop()


def served_cert(port):
    rc, out = tlsutil.s_client(port, "-showcerts", stdin=b"")
    start = out.find("-----BEGIN CERTIFICATE-----")
    end = out.find("-----END CERTIFICATE-----")
    check(start >= 0 and end > start, f"a certificate in s_client output: {out[-1000:]!r}")
    return tlsutil.cert_serial_and_cn(out[start:end + 25])


async def test_sighup_reloads_the_certificate():
    d = tempfile.mkdtemp(dir=TMP.name)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    shutil.copy(PKI.server[0], cert)
    shutil.copy(PKI.server[1], key)
    b = tlsutil.start_tls_broker(PKI, cert=(cert, key))
    try:
        eq(served_cert(b.tls_port), ("1001", "localhost"), "the first certificate")
        async with wss(b, "/sub/reload") as old:
            eq(b.publish("reload", "before")["subscribers"], 1, "subscribed")
            eq(await recv(old), "before", "message before the reload")
            # Renewal: write the new files, then SIGHUP.
            shutil.copy(PKI.renewed[0], cert + ".new")
            shutil.copy(PKI.renewed[1], key + ".new")
            os.replace(cert + ".new", cert)
            os.replace(key + ".new", key)
            b.signal(signal.SIGHUP)
            wait_until(lambda: "TLS certificate and key re-read" in b.log(), 10,
                       "the reload log line")
            eq(served_cert(b.tls_port), ("1002", "localhost renewed"),
               "a new connection sees the new certificate")
            eq(b.publish("reload", "after")["subscribers"], 1, "old connection still counted")
            eq(await recv(old), "after", "the old connection keeps working")
            await old.send("x")  # a raw subscriber sending data: closed with 1003
            with_err = None
            try:
                await asyncio.wait_for(old.recv(), 10)
            except websockets.ConnectionClosed as e:
                with_err = e.rcvd.code if e.rcvd else None
            eq(with_err, 1003, "the old session still speaks the protocol")
        async with wss(b, "/sub/reload") as new:
            eq(b.publish("reload", "new")["subscribers"], 1, "new subscriber")
            eq(await recv(new), "new", "a new wss connection works")
        # A broken file: the old certificate stays, and the log says so.
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        b.signal(signal.SIGHUP)
        wait_until(lambda: "keeping the previous certificate" in b.log(), 10,
                   "the failed-reload log line")
        eq(served_cert(b.tls_port), ("1002", "localhost renewed"), "still the renewed one")
    finally:
        b.stop()


async def test_mutual_tls():
    b = tlsutil.start_tls_broker(PKI, "--tls-client-ca", PKI.ca)
    try:
        async def refused(ctx, what):
            try:
                async with wss(b, "/sub/m", ctx=ctx) as ws:
                    # TLS 1.3: the server checks the client certificate after
                    # the client thinks the handshake is done.
                    await asyncio.wait_for(ws.recv(), 10)
            except (ssl.SSLError, OSError, websockets.ConnectionClosed,
                    websockets.InvalidMessage, EOFError, asyncio.TimeoutError) as e:
                return e
            raise Fail(f"{what}: connection accepted")
        await refused(PKI.client_ctx(), "no client certificate")
        await refused(PKI.client_ctx(PKI.otherclient), "a certificate from another CA")
        async with wss(b, "/sub/m", ctx=PKI.client_ctx(PKI.client)) as ws:
            eq(b.publish("m", "mtls ok")["subscribers"], 1, "mTLS subscriber")
            eq(await recv(ws), "mtls ok", "message over mutual TLS")
        rc, out = tlsutil.s_client(b.tls_port, "-CAfile", PKI.ca, "-cert", PKI.client[0],
                                   "-key", PKI.client[1], stdin=b"")
        check("Verify return code: 0 (ok)" in out, f"s_client with a client cert: {out[-800:]}")
        check(b.alive(), "broker alive")
    finally:
        b.stop()


def test_bad_tls_config_refused_at_start():
    from rctest import Proc, BUILD, free_ports
    exe = os.path.join(BUILD, "ringcast")
    # Distinct ports: the same one for --listen and --tls-listen is refused
    # as "given twice" (exit 2), which is not what these cases test.
    ports = free_ports(4)
    cases = [
        (["--tls-listen", f"127.0.0.1:{ports[1]}"], "needs tls_cert and tls_key", 2),
        (["--tls-listen", f"127.0.0.1:{ports[2]}", "--tls-cert", PKI.server[0],
          "--tls-key", PKI.client[1]], "cannot listen with TLS", 1),
        (["--tls-listen", f"127.0.0.1:{ports[3]}", "--tls-cert", "/nonexistent.pem",
          "--tls-key", PKI.server[1]], "/nonexistent.pem", 1),
    ]
    for flags, want, status in cases:
        p = Proc([exe, "--listen", f"127.0.0.1:{ports[0]}", *flags], name="ringcast")
        eq(p.wait(10), status, f"exit status for {flags}")
        check(want in p.text(), f"{want!r} in {p.text()[-800:]!r}")


if __name__ == "__main__":
    run([test_pubsub_plain_and_tls_side_by_side, test_many_wss_subscribers_compressed,
         test_openssl_s_client_alpn_and_versions, test_sighup_reloads_the_certificate,
         test_mutual_tls, test_bad_tls_config_refused_at_start], timeout=90)
