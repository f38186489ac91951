"""Browsers and the HTTP API: CORS (cors_origins), HEAD wherever GET works,
and /favicon.ico.  A cross-origin text/plain POST is a "simple request" a
browser sends without asking first, so an origin that is not allowed must be
refused (403, nothing published), not merely hidden from the page."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import broker  # noqa: E402
from rctest import BUILD, check, eq, run  # noqa: E402

EVIL = "https://evil.example"
APP = "https://app.example"


def post(b, topic, origin=None):
    hdr = {"Content-Type": "text/plain"}
    if origin:
        hdr["Origin"] = origin
    return b.http("POST", "/publish/" + topic, b"hi", hdr)


def preflight(b, path, origin, method="POST"):
    return b.http("OPTIONS", path, None, {"Origin": origin,
                                          "Access-Control-Request-Method": method,
                                          "Access-Control-Request-Headers": "content-type"})


def test_default_refuses_cross_origin_publish():
    b = broker.start()
    try:
        st, hdr, body = post(b, "c", EVIL)
        eq(st, 403, f"cross-origin publish status ({body!r})")
        check("access-control-allow-origin" not in hdr, "no ACAO on a refusal")
        eq(b.stats()["messages_in"], 0, "nothing was published")
        st, _, _ = preflight(b, "/publish/c", EVIL)
        eq(st, 403, "preflight from a foreign origin")
        # Same origin (the demo page) and no Origin (curl) still publish.
        eq(post(b, "c", f"http://127.0.0.1:{b.port}")[0], 200, "same-origin publish")
        eq(post(b, "c")[0], 200, "publish without Origin")
        # Reads are answered but carry no CORS header: the page cannot see them.
        st, hdr, _ = b.http("GET", "/stats", headers={"Origin": EVIL})
        eq(st, 200, "GET /stats")
        check("access-control-allow-origin" not in hdr, f"no ACAO by default: {hdr}")
    finally:
        b.stop()


def test_listed_origin_allowed():
    b = broker.start("--cors-origins", f"{APP}, http://other.example:8080")
    try:
        st, hdr, _ = preflight(b, "/publish/c", APP)
        eq(st, 204, "preflight status")
        eq(hdr.get("access-control-allow-origin"), APP, "preflight ACAO")
        check("POST" in hdr.get("access-control-allow-methods", ""), f"methods: {hdr}")
        check("content-type" in hdr.get("access-control-allow-headers", "").lower(), "headers")
        check("Origin" in hdr.get("vary", ""), "Vary: Origin")
        st, hdr, _ = post(b, "c", APP)
        eq((st, hdr.get("access-control-allow-origin")), (200, APP), "allowed publish")
        for path in ("/stats", "/metrics", "/topics", "/healthz", "/", "/ringcast.js"):
            st, hdr, _ = b.http("GET", path, headers={"Origin": "http://other.example:8080"})
            eq((st, hdr.get("access-control-allow-origin")), (200, "http://other.example:8080"),
               f"GET {path}")
        st, hdr, _ = b.http("GET", "/stats", headers={"Origin": EVIL})
        check("access-control-allow-origin" not in hdr, "no ACAO for an unlisted origin")
        eq(post(b, "c", EVIL)[0], 403, "unlisted origin still refused")
        eq(b.stats()["messages_in"], 1, "only the allowed publish happened")
    finally:
        b.stop()


def test_wildcard_and_bad_value():
    b = broker.start("--cors-origins", "*")
    try:
        st, hdr, _ = post(b, "c", EVIL)
        eq((st, hdr.get("access-control-allow-origin")), (200, EVIL), "* allows any origin")
    finally:
        b.stop()

    r = subprocess.run([os.path.join(BUILD, "ringcast"), "--cors-origins", "evil.example",
                        "--check-config"], capture_output=True, timeout=10)
    check(r.returncode != 0 and b"not an origin list" in r.stderr, f"bad value: {r.stderr!r}")


def raw(b, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", b.port), timeout=timeout)
    try:
        s.sendall(data)
        buf, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf
    finally:
        s.close()


def test_head_and_favicon():
    b = broker.start()
    try:
        st, hdr, ico = b.http("GET", "/favicon.ico")
        eq((st, hdr.get("content-type")), (200, "image/x-icon"), "favicon")
        eq(ico[:4], b"\x00\x00\x01\x00", "an ICO file")
        for path in ("/", "/favicon.ico", "/ringcast.js", "/stats", "/metrics", "/healthz",
                     "/topics"):
            st, ghdr, gbody = b.http("GET", path)
            # HEAD then GET /healthz on one connection: the HEAD answer has
            # the GET's Content-Length and no body, so the next answer
            # starts right after its head.
            out = raw(b, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"
                         f"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head, rest = out.split(b"\r\n\r\n", 1)
            check(head.startswith(b"HTTP/1.1 200"), f"HEAD {path}: {head[:60]!r}")
            lines = dict(l.split(": ", 1) for l in head.decode().split("\r\n")[1:])
            if path not in ("/stats", "/metrics"):  # these change between requests
                eq(int(lines["Content-Length"]), len(gbody), f"HEAD {path} Content-Length")
            check(rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"ok\n"),
                  f"HEAD {path} sent a body: {rest[:80]!r}")
        st, hdr, _ = b.http("DELETE", "/stats")
        eq(st, 405, "DELETE")
        check("HEAD" in hdr.get("allow", ""), f"Allow lists HEAD: {hdr}")
    finally:
        b.stop()


run([test_default_refuses_cross_origin_publish, test_listed_origin_allowed,
     test_wildcard_and_bad_value, test_head_and_favicon])
