"""Access control of build/ringcast, driven by third-party tokens and keys:
JWTs minted by Debian's python3-jwt (PyJWT) with keys made by the openssl
command line, never by ringcast.  Covers the token checks at the upgrade
(valid HS256/RS256/ES256; expired, not yet valid, wrong aud/iss, tampered
payload and signature, alg none, HS-vs-RS confusion, unknown kid, garbage, a
64 KiB token), {"op":"auth"} and {"op":"refresh"}, expiry (close 4001) and
auth_timeout (4002), topic rules per pattern for subscribe/publish/resume,
API keys on HTTP publish and /pub, the admin key, allowed origins, publish
rates, the secure default for non-loopback listeners, and SIGHUP revoking
subscriptions."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import jwt  # noqa: E402  (python3-jwt)

import broker  # noqa: E402
from broker import RawSocketWS, close_code_of, read_http_response, upgrade_request  # noqa: E402
from rctest import BUILD, Proc, check, eq, run, wait_until  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rc-auth-")
HS_SECRET = "test-secret-0123456789abcdef0123456789"
API_KEY = "backend-key-0123456789"
ADMIN_KEY = "admin-key-0123456789abc"
AUD, ISS = "rc-test", "tests"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_keys():
    rs, es = os.path.join(TMP, "rs.pem"), os.path.join(TMP, "es.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rs)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", es)
    openssl("pkey", "-in", rs, "-pubout", "-out", rs + ".pub")
    openssl("pkey", "-in", es, "-pubout", "-out", es + ".pub")
    return {"rs": open(rs).read(), "es": open(es).read(),
            "rs_pub": rs + ".pub", "es_pub": es + ".pub"}


KEYS = make_keys()


def access_file(name, extra="", rules=None):
    path = os.path.join(TMP, name)
    rules = rules if rules is not None else """
[topic public.*]
subscribe = anonymous
publish = authenticated

[topic secret]
subscribe = token
publish = nobody
"""
    with open(path, "w") as f:
        f.write(f"""; test access file
[tokens]
audience = {AUD}
issuer = {ISS}
leeway = 0
auth_timeout = 1

[key hs1]
alg = HS256
secret = {HS_SECRET}

[key rs1]
alg = RS256
public_key = {KEYS['rs_pub']}

[key es1]
alg = ES256
public_key = {KEYS['es_pub']}

[api_keys]
backend = {API_KEY}

[admin]
key = {ADMIN_KEY}

[origins]
allow = https://app.example.com, *.example.org
{extra}
{rules}""")
    return path


def claims(**kw):
    now = int(time.time())
    c = {"sub": "user-1", "aud": AUD, "iss": ISS, "iat": now, "exp": now + 300,
         "subscribe": ["secret", "grant.*"], "publish": ["public.*"]}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def hs(kid="hs1", **kw):
    return jwt.encode(claims(**kw), HS_SECRET, algorithm="HS256", headers={"kid": kid})


def rs(kid="rs1", **kw):
    return jwt.encode(claims(**kw), KEYS["rs"], algorithm="RS256", headers={"kid": kid})


def es(kid="es1", **kw):
    return jwt.encode(claims(**kw), KEYS["es"], algorithm="ES256", headers={"kid": kid})


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hand_made(header, payload, key):
    """HS256 over arbitrary header/payload with any key bytes: how an
    attacker signs with a public key, which PyJWT rightly refuses to do."""
    si = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(payload).encode())
    sig = hmac.new(key, si.encode(), hashlib.sha256).digest()
    return si + "." + b64u(sig)


def tamper_payload(tok):
    h, p, s = tok.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    body["subscribe"] = ["*"]
    return h + "." + b64u(json.dumps(body).encode()) + "." + s


def tamper_sig(tok):
    h, p, s = tok.split(".")
    raw = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    raw[len(raw) // 2] ^= 1
    return h + "." + p + "." + b64u(bytes(raw))


def upgrade_status(b, path, extra=b""):
    s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
    try:
        _, req = upgrade_request(b.port, path, extra)
        s.sendall(req)
        st, _, _ = read_http_response(s)
        return st
    finally:
        s.close()


def start(path, *flags):
    return broker.start("--auth", path, *flags)


def bad_tokens():
    now = int(time.time())
    none_tok = jwt.encode(claims(), None, algorithm="none")
    rs_pub = open(KEYS["rs_pub"], "rb").read()
    return [
        ("expired", hs(exp=now - 10, iat=now - 100)),
        ("not yet valid", hs(nbf=now + 3600)),
        ("issued in the future", hs(iat=now + 3600)),
        ("wrong aud", hs(aud="someone-else")),
        ("no aud", hs(aud=None)),
        ("wrong iss", rs(iss="evil")),
        ("no exp", hs(exp=None)),
        ("tampered payload", tamper_payload(es())),
        ("tampered signature", tamper_sig(rs())),
        ("alg none", none_tok),
        ("alg none, with a signature", none_tok + "AAAA"),
        ("HS256 signed with the RS256 public key, kid rs1",
         hand_made({"alg": "HS256", "kid": "rs1"}, claims(), rs_pub)),
        ("HS256 signed with the RS256 public key, no kid",
         hand_made({"alg": "HS256"}, claims(), rs_pub)),
        ("unknown kid", hs(kid="nope")),
        ("RS256 token naming the HS key", rs(kid="hs1")),
        ("garbage", "not.a.token"),
        ("two parts", "abc.def"),
        ("duplicate alg", hand_made({"alg": "HS256", "kid": "hs1"}, claims(),
                                    HS_SECRET.encode()).replace(
            b64u(json.dumps({"alg": "HS256", "kid": "hs1"}).encode()),
            b64u(b'{"alg":"HS256","alg":"none","kid":"hs1"}'))),
    ]


def test_tokens_at_the_upgrade():
    b = start(access_file("a1.ini"))
    try:
        for name, tok in [("HS256", hs()), ("RS256", rs()), ("ES256", es()),
                          ("RS256 without kid", jwt.encode(claims(), KEYS["rs"], "RS256"))]:
            eq(upgrade_status(b, "/sub/secret?token=" + tok), 101, f"valid {name} token")
        eq(upgrade_status(b, "/sub/secret", b"Authorization: Bearer " + es().encode() + b"\r\n"),
           101, "valid token in Authorization: Bearer")
        for name, tok in bad_tokens():
            eq(upgrade_status(b, "/ws?token=" + tok), 401, f"{name} refused with 401")
        # 64 KiB in the URL passes max_http_head: the HTTP layer says 431.
        eq(upgrade_status(b, "/ws?token=" + "A" * 65536), 431, "64 KiB token in the URL")
        check("test-secret" not in b.log(), "the secret is never logged")
    finally:
        b.stop()


async def test_auth_command_and_refresh():
    b = start(access_file("a2.ini"))
    try:
        jc = await b.json_client()
        await jc.err({"op": "sub", "topic": "secret", "id": 1}, "forbidden")
        await jc.err({"op": "auth", "token": hs(), "id": 2}, "bad_op")  # not first
        await jc.close()

        jc = await b.json_client()
        r = await jc.err({"op": "auth", "token": "x" * 65536, "id": 1}, "unauthorized")
        check("8192" in r["reason"], f"64 KiB token reason: {r}")
        for name, tok in bad_tokens():
            r = await jc.err({"op": "auth", "token": tok, "id": name}, "unauthorized")
            check(r.get("reason"), f"{name}: a reason")
        await jc.ack({"op": "auth", "token": rs(), "id": 3})
        await jc.ack({"op": "sub", "topic": "secret", "id": 4})
        await jc.err({"op": "auth", "token": rs(), "id": 5}, "bad_op")
        await jc.err({"op": "refresh", "token": rs(sub="someone-else"), "id": 6},
                     "unauthorized")
        await jc.err({"op": "refresh", "token": rs(exp=int(time.time()) - 5), "id": 7},
                     "unauthorized")
        await jc.ack({"op": "refresh", "token": es(), "id": 8})
        await jc.ack({"op": "ping", "id": 9})
        await jc.close()
    finally:
        b.stop()


async def test_expiry_closes_4001_unless_refreshed():
    b = start(access_file("a3.ini"))
    try:
        exp = int(time.time()) + 2
        short = await b.connect("/ws?token=" + hs(exp=exp))
        kept = broker.JsonClient(await b.connect("/ws?token=" + hs(exp=exp)))
        await kept.recv()  # welcome
        await kept.ack({"op": "refresh", "token": hs(exp=exp + 600), "id": 1})
        t0 = time.monotonic()
        eq(await close_code_of(short, 15), 4001, "no refresh: close 4001")
        check(time.monotonic() - t0 < 10, "closed soon after exp")
        # The refreshed one outlived the old exp (the other one's close
        # proves the clock passed it).
        await kept.ack({"op": "ping", "id": 2})
        await kept.close()
    finally:
        b.stop()


async def test_auth_timeout_closes_4002():
    # No rule lets anonymous clients in: a silent one is closed.
    b = start(access_file("a4.ini", rules=""))
    try:
        ws = await b.connect("/ws")
        eq(await close_code_of(ws, 15), 4002, "no auth within auth_timeout")
        busy = await b.json_client()  # commands instead of auth: the same
        await busy.ack({"op": "ping", "id": 1})
        await busy.err({"op": "sub", "topic": "grant.a", "id": 2}, "forbidden")
        eq(await close_code_of(busy.ws, 15), 4002, "commands but no auth")
        jc = await b.json_client()
        await jc.ack({"op": "auth", "token": hs(), "id": 1})
        await jc.ack({"op": "sub", "topic": "grant.a", "id": 2})
        await jc.err({"op": "sub", "topic": "other", "id": 3}, "forbidden")
        await jc.close()
    finally:
        b.stop()


async def test_permissions_per_pattern():
    b = start(access_file("a5.ini"))
    try:
        anon = await b.json_client()
        await anon.ack({"op": "sub", "topic": "public.news", "id": 1})
        await anon.err({"op": "sub", "topic": "secret", "id": 2}, "forbidden")
        await anon.err({"op": "sub", "topic": "secret", "from": 1, "id": 3}, "forbidden")
        await anon.err({"op": "sub", "topic": "grant.x", "id": 4}, "forbidden")
        await anon.err({"op": "pub", "topic": "public.news", "data": 1, "id": 5}, "forbidden")
        user = broker.JsonClient(await b.connect("/ws?token=" + es()))
        await user.recv()
        await user.ack({"op": "sub", "topic": "secret", "id": 1})
        await user.ack({"op": "sub", "topic": "grant.deep.x", "id": 2})
        await user.err({"op": "sub", "topic": "grantx", "id": 3}, "forbidden")
        await user.ack({"op": "pub", "topic": "public.news", "data": {"n": 1}, "id": 4})
        await user.err({"op": "pub", "topic": "secret", "data": 1, "id": 5}, "forbidden")
        m = await anon.recv()
        eq((m["op"], m["data"]), ("msg", {"n": 1}), "anonymous subscriber got the message")
        # Raw endpoints: refused upgrades get 403.
        eq(upgrade_status(b, "/sub/secret"), 403, "raw /sub without a grant")
        eq(upgrade_status(b, "/sub/secret?from=1"), 403, "raw resume without a grant")
        eq(upgrade_status(b, "/sub/public.a"), 101, "raw /sub anonymous topic")
        eq(upgrade_status(b, "/pub/public.a"), 403, "raw /pub anonymous")
        eq(upgrade_status(b, "/pub/public.a?token=" + hs()), 101, "raw /pub with a token")
        eq(upgrade_status(b, "/pub/secret?token=" + hs()), 403, "raw /pub on publish=nobody")
        await anon.close()
        await user.close()
    finally:
        b.stop()


def test_api_keys_and_admin():
    b = start(access_file("a6.ini"))
    try:
        st, h, _ = b.http("POST", "/publish/secret", b"x")
        eq(st, 401, "HTTP publish without a key")
        check("bearer" in h.get("www-authenticate", "").lower(), "WWW-Authenticate: Bearer")
        st, _, _ = b.http("POST", "/publish/secret", b"x",
                          {"Authorization": "Bearer " + API_KEY + "x"})
        eq(st, 403, "wrong API key")
        st, _, _ = b.http("POST", "/publish/secret", b"x", {"Authorization": "Bearer " + hs()})
        eq(st, 403, "a user token is not an API key")
        st, _, body = b.http("POST", "/publish/secret", b"x",
                             {"Authorization": "Bearer " + API_KEY})
        eq(st, 200, f"right API key ({body})")
        key_hdr = b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
        eq(upgrade_status(b, "/pub/secret", key_hdr), 101, "/pub with the API key")
        eq(upgrade_status(b, "/pub/secret", b"Authorization: Bearer wrong-key-0123456789\r\n"),
           401, "/pub with a wrong key")
        eq(upgrade_status(b, "/pub/secret"), 403, "/pub without a key")
        for path in ("/stats", "/metrics", "/topics", "/connz", "/subsz?offset=0"):
            eq(b.http("GET", path)[0], 401, f"{path} without the admin key")
            eq(b.http("GET", path, headers={"Authorization": "Bearer " + API_KEY})[0], 403,
               f"{path} with another key")
            eq(b.http("GET", path, headers={"Authorization": "Bearer " + ADMIN_KEY})[0], 200,
               f"{path} with the admin key")
        eq(b.http("GET", "/healthz")[0], 200, "/healthz stays open")
        log = b.log()
        check(API_KEY not in log and ADMIN_KEY not in log, "keys are never logged")
    finally:
        b.stop()


def test_origins():
    b = start(access_file("a7.ini"))
    try:
        for origin, want in [("https://app.example.com", 101), ("https://APP.example.com", 101),
                             ("http://x.example.org", 101), ("https://a.b.example.org", 101),
                             ("https://example.org", 403), ("https://evil.com", 403),
                             ("https://app.example.com.evil.com", 403),
                             ("http://app.example.com", 403), ("null", 403)]:
            eq(upgrade_status(b, "/sub/public.a", b"Origin: " + origin.encode() + b"\r\n"),
               want, f"Origin {origin}")
        eq(upgrade_status(b, "/sub/public.a"), 101, "no Origin (not a browser)")
    finally:
        b.stop()


async def test_publish_rate_limits():
    b = start(access_file("a8.ini", extra="[limits]\npublish_rate = 0.01\npublish_burst = 3\n"))
    try:
        key = {"Authorization": "Bearer " + API_KEY}
        sts = [b.http("POST", "/publish/public.r", b"x", key)[0] for _ in range(5)]
        eq(sts, [200, 200, 200, 429, 429], "HTTP publishes per key")
        raw = RawSocketWS(b.port, "/pub/public.r?token=" + hs())
        for _ in range(5):
            raw.send(1, b"m")
        eq(raw.close_code(), 1008, "raw /pub over publish_rate")
        raw.close()
        jc = broker.JsonClient(await b.connect("/ws?token=" + hs()))
        await jc.recv()
        for i in range(3):
            await jc.ack({"op": "pub", "topic": "public.r", "data": i, "id": i})
        await jc.err({"op": "pub", "topic": "public.r", "data": 3, "id": 3}, "rate_limited")
        await jc.close()
    finally:
        b.stop()


async def test_sighup_revokes():
    path = access_file("a9.ini")
    b = start(path)
    try:
        jc = await b.json_client()
        await jc.ack({"op": "sub", "topic": "public.a", "id": 1})
        await jc.ack({"op": "sub", "topic": "public.b", "id": 2})
        raw = RawSocketWS(b.port, "/sub/public.c")
        user = broker.JsonClient(await b.connect("/ws?token=" + hs()))
        await user.recv()
        await user.ack({"op": "sub", "topic": "public.a", "id": 1})
        access_file("a9.ini", rules="""
[topic public.a]
subscribe = authenticated
[topic public.*]
subscribe = token
""")
        b.signal(signal.SIGHUP)
        got = set()
        for _ in range(2):
            r = await jc.recv(15)
            eq((r["op"], r["code"]), ("err", "forbidden"), f"revocation err {r}")
            check("revoked" in r["reason"], f"reason says revoked: {r}")
            got.add(r["reason"])
        check(any("public.a" in g for g in got) and any("public.b" in g for g in got),
              f"both subscriptions revoked: {got}")
        eq(raw.close_code(15), 1008, "raw subscriber closed 1008")
        raw.close()
        # The token holder keeps public.a (authenticated), and publishing
        # there still reaches it.
        st, _, _ = b.http("POST", "/publish/public.a", b"{}",
                          {"Authorization": "Bearer " + API_KEY,
                           "Content-Type": "application/json"})
        eq(st, 200, "publish after reload")
        m = await user.recv()
        eq((m["op"], m["topic"]), ("msg", "public.a"), "kept subscription delivers")
        await jc.ack({"op": "ping", "id": 3})
        await jc.close()
        await user.close()
    finally:
        b.stop()


def cli(argv, timeout=30):
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_cli_token():
    b = start(access_file("a10.ini"))
    sub_exe, pub_exe = os.path.join(BUILD, "ringcast-sub"), os.path.join(BUILD, "ringcast-pub")
    url = f"ws://127.0.0.1:{b.port}"
    try:
        code, _, err = cli([sub_exe, "--no-reconnect", "--count", "1", "--timeout", "5",
                            url, "secret"])
        check(code != 0 and "forbidden" in err, f"ringcast-sub without a token: {code} {err!r}")
        p = Proc([sub_exe, "--token", hs(), "--count", "1", url, "secret"], name="sub")

        def subscribed():
            st, _, body = b.http("GET", "/topics",
                                 headers={"Authorization": "Bearer " + ADMIN_KEY})
            return any(t["topic"] == "secret" and t["subscribers"] for t in
                       json.loads(body)["topics"])
        wait_until(subscribed, 10, "ringcast-sub --token subscribed to secret")
        code, _, err = cli([pub_exe, "--http", url.replace("ws:", "http:"), "secret", "x"])
        eq(code, 7, f"ringcast-pub --http without a key ({err!r})")
        check("401" in err, f"says 401: {err!r}")
        code, _, err = cli([pub_exe, "--http", "--token", API_KEY,
                            url.replace("ws:", "http:"), "secret", "hello"])
        eq(code, 0, f"ringcast-pub --http --token KEY ({err!r})")
        eq(p.wait(10), 0, "ringcast-sub got its message")
        check("hello" in p.text("stdout"), f"ringcast-sub printed it: {p.text('stdout')!r}")
        code, _, err = cli([pub_exe, url, "public.x", "1"], )
        check(code != 0 and "forbidden" in err, f"ringcast-pub anonymous: {code} {err!r}")
        env = dict(os.environ, RINGCAST_TOKEN=API_KEY)
        r = subprocess.run([pub_exe, url, "secret", "2"], capture_output=True, timeout=30,
                           env=env)
        eq(r.returncode, 0, f"ringcast-pub with RINGCAST_TOKEN=API key over /ws ({r.stderr!r})")
    finally:
        b.stop()


def test_secure_default():
    exe = os.path.join(BUILD, "ringcast")
    port = broker._free_port()
    p = Proc([exe, "--listen", f"0.0.0.0:{port}", "--threads", "1"], name="ringcast-open")
    eq(p.wait(10), 2, "non-loopback listener without auth refuses to start")
    check("auth = none" in p.text("stderr"), f"says why: {p.text('stderr')!r}")
    p = Proc([exe, "--listen", f"0.0.0.0:{port}", "--threads", "1", "--auth", "none"],
             name="ringcast-none")
    p.wait_output(r"auth = none: .* reachable beyond this host", timeout=10)
    p.wait_output(r"ringcast \S+: \d+ threads?, epoch", timeout=10)
    check(p.alive(), "auth = none starts")
    p.stop()
    b = broker.start()  # loopback, no auth: today's behaviour
    try:
        eq(b.http("POST", "/publish/x", b"1")[0], 200, "loopback without auth publishes")
    finally:
        b.stop()
    bad = os.path.join(TMP, "bad.ini")
    with open(bad, "w") as f:
        f.write("[key k]\nalg = none\nsecret = 1234\n[topic a*b]\nsubscribe = x\n")
    p = Proc([exe, "--listen", f"127.0.0.1:{port}", "--auth", bad], name="ringcast-bad")
    eq(p.wait(10), 2, "a bad access file refuses to start")
    err = p.text("stderr")
    check("bad.ini:2" in err and "bad.ini:5" in err and "1234" not in err,
          f"errors with lines, no secret: {err!r}")

def test_check_config_reads_the_access_file():
    """--check-config refuses what a start would refuse, with the same lines."""
    exe = os.path.join(BUILD, "ringcast")
    bad = os.path.join(TMP, "bad-check.ini")
    with open(bad, "w") as f:
        f.write("[key k]\nalg = none\nsecret = 1234\n[topic a*b]\nsubscribe = x\n")
    r = subprocess.run([exe, "--auth", bad, "--check-config"], capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    err = r.stderr.decode(errors="replace")
    check(r.returncode != 0, f"--check-config with a bad access file exited {r.returncode}")
    check("bad-check.ini:2" in err and "bad-check.ini:5" in err and "1234" not in err
          and "configuration is not valid" in err, f"errors with lines, no secret: {err!r}")
    good = access_file("good-check.ini")
    r = subprocess.run([exe, "--auth", good, "--check-config"], capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, f"--check-config with a good access file: {r.stderr!r}")
    check(b"config OK" in r.stdout, f"says OK: {r.stdout[-200:]!r}")


if __name__ == "__main__":
    run([test_tokens_at_the_upgrade, test_auth_command_and_refresh,
         test_expiry_closes_4001_unless_refreshed, test_auth_timeout_closes_4002,
         test_permissions_per_pattern, test_api_keys_and_admin, test_origins,
         test_publish_rate_limits, test_sighup_revokes, test_cli_token, test_secure_default,
         test_check_config_reads_the_access_file], timeout=90)
