/* Tests for proto/handshake.c: the RFC 6455 accept example, a table of
 * upgrade requests with the expected status and reason, subprotocol choice,
 * the 101 and client-request writers (byte-exact, -ENOSPC for every short
 * cap), a full client -> server -> client round trip, and 101 rejections. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/http.h"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static struct rc_span span_of(const char *s)
{
	return (struct rc_span){ s, strlen(s) };
}

static bool span_is(struct rc_span s, const char *str)
{
	return s.len == strlen(str) && memcmp(s.p, str, s.len) == 0;
}

struct accept_case {
	char key[32];
	char accept[32];
};

/* RFC 6455 section 1.3, and the example of the Wikipedia article. */
static struct accept_case accept_cases[] = {
	{ RFC_KEY, RFC_ACCEPT },
	{ "x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk=" },
};

ParameterizedTestParameters(ws_handshake, accept_key)
{
	return cr_make_param_array(struct accept_case, accept_cases,
				   sizeof(accept_cases) / sizeof(accept_cases[0]));
}

ParameterizedTest(struct accept_case *c, ws_handshake, accept_key)
{
	char out[29];

	memset(out, '#', sizeof(out));
	rc_ws_accept_key(span_of(c->key), out);
	cr_assert_str_eq(out, c->accept);
}

/* A well-formed upgrade request with one line swapped for the case's. */
#define REQ_LINE "GET /chat HTTP/1.1\r\n"
#define HOST "Host: server.example.com\r\n"
#define UPG "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: " RFC_KEY "\r\n"
#define VER "Sec-WebSocket-Version: 13\r\n"
#define END "\r\n"

struct upgrade_case {
	char name[48];
	char text[512];
	bool is_upgrade; /* rc_http_is_upgrade() */
	int status;      /* 0: accepted */
	char reason[48]; /* a substring of up->reason */
};

static struct upgrade_case upgrade_cases[] = {
	{ "rfc 6455 1.2 example",
	  REQ_LINE HOST UPG CONN KEY "Origin: http://example.com\r\n"
	  "Sec-WebSocket-Protocol: chat, superchat\r\n" VER END, true, 0, "" },
	{ "firefox connection", REQ_LINE HOST UPG
	  "Connection: keep-alive, Upgrade\r\n" KEY VER END, true, 0, "" },
	{ "mixed case values", REQ_LINE HOST "Upgrade: WebSocket\r\n"
	  "Connection: UPGRADE\r\n" KEY VER END, true, 0, "" },
	{ "lowercase names", REQ_LINE "host: a\r\nupgrade: websocket\r\n"
	  "connection: upgrade\r\nsec-websocket-key: " RFC_KEY "\r\n"
	  "sec-websocket-version: 13\r\n" END, true, 0, "" },
	{ "connection split", REQ_LINE HOST UPG "Connection: keep-alive\r\n"
	  "Connection: Upgrade\r\n" KEY VER END, true, 0, "" },
	{ "post", "POST /chat HTTP/1.1\r\n" HOST UPG CONN KEY VER END,
	  true, 405, "GET" },
	{ "lowercase get", "get /chat HTTP/1.1\r\n" HOST UPG CONN KEY VER END,
	  true, 405, "GET" },
	{ "http/1.0", "GET /chat HTTP/1.0\r\n" HOST UPG CONN KEY VER END,
	  true, 400, "HTTP/1.1" },
	{ "missing host", REQ_LINE UPG CONN KEY VER END, true, 400, "Host" },
	{ "two hosts", REQ_LINE HOST HOST UPG CONN KEY VER END, true, 400, "Host" },
	{ "empty host", REQ_LINE "Host:\r\n" UPG CONN KEY VER END, true, 400, "Host" },
	{ "upgrade h2c", REQ_LINE HOST "Upgrade: h2c\r\n" CONN KEY VER END,
	  false, 400, "Upgrade" },
	{ "no upgrade", REQ_LINE HOST CONN KEY VER END, false, 400, "Upgrade" },
	{ "no connection", REQ_LINE HOST UPG KEY VER END, true, 400, "Connection" },
	{ "connection close", REQ_LINE HOST UPG "Connection: close\r\n" KEY VER END,
	  true, 400, "Connection" },
	{ "missing version", REQ_LINE HOST UPG CONN KEY END, true, 426, "Version" },
	{ "version 8", REQ_LINE HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n"
	  END, true, 426, "Version" },
	{ "version list", REQ_LINE HOST UPG CONN KEY
	  "Sec-WebSocket-Version: 13, 8\r\n" END, true, 426, "Version" },
	{ "hybi-00 (no key, no version)", REQ_LINE HOST UPG CONN
	  "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n" END, true, 426, "Version" },
	{ "two versions", REQ_LINE HOST UPG CONN KEY VER VER END, true, 400, "Version" },
	{ "missing key", REQ_LINE HOST UPG CONN VER END, true, 400, "Key" },
	{ "two keys", REQ_LINE HOST UPG CONN KEY KEY VER END, true, 400, "Key" },
	{ "short key", REQ_LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"
	  VER END, true, 400, "Key" },
	{ "key of 17 bytes", REQ_LINE HOST UPG CONN
	  "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n" VER END, true, 400, "Key" },
	{ "key without padding", REQ_LINE HOST UPG CONN
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" VER END, true, 400, "Key" },
	{ "key bad char", REQ_LINE HOST UPG CONN
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ*==\r\n" VER END, true, 400, "Key" },
	{ "key non-canonical", REQ_LINE HOST UPG CONN
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n" VER END, true, 400, "Key" },
	{ "key url-safe alphabet", REQ_LINE HOST UPG CONN
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==\r\n" VER END, true, 400, "Key" },
};

ParameterizedTestParameters(ws_handshake, upgrade_check)
{
	return cr_make_param_array(struct upgrade_case, upgrade_cases,
				   sizeof(upgrade_cases) / sizeof(upgrade_cases[0]));
}

ParameterizedTest(struct upgrade_case *c, ws_handshake, upgrade_check)
{
	const uint8_t *buf = (const uint8_t *)c->text;
	size_t len = strlen(c->text);
	struct rc_http_request req;
	struct rc_ws_upgrade up;
	int rc;

	/* The head itself is fine and needs every byte. */
	cr_assert_eq(rc_http_parse_request(buf, len, NULL, &req), (int)len,
		     "%s: parse", c->name);
	for (size_t k = 0; k < len; k++) {
		struct rc_http_request part;

		cr_assert_eq(rc_http_parse_request(buf, k, NULL, &part), -EAGAIN,
			     "%s: prefix %zu", c->name, k);
	}
	cr_assert_eq(rc_http_is_upgrade(&req), c->is_upgrade, "%s", c->name);

	memset(&up, 0xa5, sizeof(up));
	rc = rc_ws_upgrade_check(&req, &up);
	if (c->status == 0) {
		cr_assert_eq(rc, 0, "%s: %d %s", c->name, up.status, up.reason);
		cr_assert(span_is(up.key, RFC_KEY), "%s: key", c->name);
		cr_assert_not_null(up.protocols.p);
		cr_assert_not_null(up.extensions.p);
		return;
	}
	cr_assert_eq(rc, -EINVAL, "%s", c->name);
	cr_assert_eq(up.status, c->status, "%s: status %d (%s)", c->name,
		     up.status, up.reason);
	cr_assert_not_null(up.reason);
	cr_assert_not_null(strstr(up.reason, c->reason), "%s: reason '%s'",
			   c->name, up.reason);
}

Test(ws_handshake, upgrade_fields)
{
	static const char text[] = REQ_LINE HOST UPG CONN KEY VER
		"Sec-WebSocket-Protocol: chat, superchat\r\n"
		"Sec-WebSocket-Extensions: permessage-deflate\r\n"
		"Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n" END;
	struct rc_http_request req;
	struct rc_ws_upgrade up;
	char joined[128];

	cr_assert_gt(rc_http_parse_request((const uint8_t *)text,
					   sizeof(text) - 1, NULL, &req), 0);
	cr_assert_eq(rc_ws_upgrade_check(&req, &up), 0);
	cr_assert(span_is(up.protocols, "chat, superchat"));
	/* The contract: the first header only; the join helper gives all. */
	cr_assert(span_is(up.extensions, "permessage-deflate"));
	cr_assert_gt(rc_http_header_join(&req, "Sec-WebSocket-Extensions", joined,
					 sizeof(joined)), 0);
	cr_assert_str_eq(joined, "permessage-deflate, x-webkit-deflate-frame");
}

Test(ws_handshake, select_protocol)
{
	static const char *const ours[] = { "superchat", "chat", "v1.json", NULL };
	static const struct {
		const char *offered;
		int want; /* index in ours, -1 for none */
	} cases[] = {
		{ "chat, superchat", 1 },
		{ "superchat,chat", 0 },
		{ "  v1.json  ", 2 },
		{ "mqtt, ,v1.json", 2 },
		{ "Chat", -1 },
		{ "chat2, cha", -1 },
		{ "", -1 },
		{ ",", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = rc_ws_select_protocol(span_of(cases[i].offered), ours);

		if (cases[i].want < 0)
			cr_assert_null(got, "case %zu: %s", i, got);
		else
			cr_assert_eq(got, ours[cases[i].want], "case %zu", i);
	}
	cr_assert_null(rc_ws_select_protocol(span_of("chat"), NULL));
}

/* Checks a writer's output byte-exact, then -ENOSPC and no byte past the cap
 * for every cap below the need. */
#define CHECK_WRITER(want, call_with_cap)                                     \
	do {                                                                  \
		char out[1024];                                               \
		size_t need = strlen(want), cap = sizeof(out);                 \
		ssize_t rc;                                                   \
		memset(out, '#', sizeof(out));                                \
		rc = (call_with_cap);                                         \
		cr_assert_eq(rc, (ssize_t)need, "rc %zd", rc);                \
		cr_assert_eq(memcmp(out, want, need), 0, "got\n%.*s",         \
			     (int)need, out);                                 \
		for (cap = 0; cap < need; cap++) {                            \
			memset(out, '#', sizeof(out));                        \
			rc = (call_with_cap);                                 \
			cr_assert_eq(rc, -ENOSPC, "cap %zu: %zd", cap, rc);   \
			cr_assert_eq(out[cap], '#', "wrote past cap %zu", cap); \
		}                                                             \
		cap = need;                                                   \
		cr_assert_eq((call_with_cap), (ssize_t)need);                 \
	} while (0)

Test(ws_handshake, write_101)
{
	struct rc_span key = span_of(RFC_KEY);

	CHECK_WRITER("HTTP/1.1 101 Switching Protocols\r\n"
		     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
		     "Sec-WebSocket-Protocol: chat\r\n\r\n",
		     rc_ws_write_101(out, cap, key, "chat", NULL));
	CHECK_WRITER("HTTP/1.1 101 Switching Protocols\r\n"
		     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
		     "Sec-WebSocket-Extensions: permessage-deflate; "
		     "server_no_context_takeover\r\n\r\n",
		     rc_ws_write_101(out, cap, key, "",
				     "permessage-deflate; server_no_context_takeover"));
	CHECK_WRITER("HTTP/1.1 101 Switching Protocols\r\n"
		     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
		     rc_ws_write_101(out, cap, key, NULL, NULL));
}

Test(ws_handshake, write_101_invalid)
{
	char out[512];

	cr_assert_eq(rc_ws_write_101(out, sizeof(out), span_of(RFC_KEY),
				     "chat\r\nSet-Cookie: x", NULL), -EINVAL);
	cr_assert_eq(rc_ws_write_101(out, sizeof(out), span_of(RFC_KEY), NULL,
				     "a\nb"), -EINVAL);
}

Test(ws_handshake, write_request)
{
	CHECK_WRITER("GET /sub/news?from=3 HTTP/1.1\r\nHost: example.com:8080\r\n"
		     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: " RFC_KEY "\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: v1.json, chat\r\n"
		     "Sec-WebSocket-Extensions: permessage-deflate\r\n"
		     "Origin: http://example.com\r\n\r\n",
		     rc_ws_write_request(out, cap, "example.com:8080",
					 "/sub/news?from=3", RFC_KEY,
					 "v1.json, chat", "permessage-deflate",
					 "Origin: http://example.com\r\n"));
	CHECK_WRITER("GET / HTTP/1.1\r\nHost: h\r\n"
		     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: " RFC_KEY "\r\n"
		     "Sec-WebSocket-Version: 13\r\n\r\n",
		     rc_ws_write_request(out, cap, "h", NULL, RFC_KEY, NULL, NULL,
					 NULL));
}

Test(ws_handshake, write_request_invalid)
{
	char out[512];

	cr_assert_eq(rc_ws_write_request(out, sizeof(out), "h", "/a b", RFC_KEY,
					 NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(rc_ws_write_request(out, sizeof(out), "h\r\nX: y", "/",
					 RFC_KEY, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(rc_ws_write_request(out, sizeof(out), NULL, "/", RFC_KEY,
					 NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(rc_ws_write_request(out, sizeof(out), "h", "/", RFC_KEY,
					 NULL, NULL, "X: no crlf"), -EINVAL);
	cr_assert_eq(rc_ws_write_request(out, sizeof(out), "h", "/", RFC_KEY,
					 "a\r\n", NULL, NULL), -EINVAL);
}

/* Fresh keys are well-formed (the server accepts them) and differ. */
Test(ws_handshake, make_key)
{
	char keys[8][25];

	for (int i = 0; i < 8; i++) {
		char buf[512];
		struct rc_http_request req;
		struct rc_ws_upgrade up;
		ssize_t n;

		memset(keys[i], '#', sizeof(keys[i]));
		cr_assert_eq(rc_ws_make_key(keys[i]), 0);
		cr_assert_eq(strlen(keys[i]), 24);
		n = rc_ws_write_request(buf, sizeof(buf), "h", "/", keys[i], NULL,
					NULL, NULL);
		cr_assert_gt(n, 0);
		cr_assert_eq(rc_http_parse_request((uint8_t *)buf, (size_t)n, NULL,
						   &req), n);
		cr_assert_eq(rc_ws_upgrade_check(&req, &up), 0, "%s: %s", keys[i],
			     up.reason);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(keys[i], keys[j]);
	}
}

/* Client request -> server parse and check -> 101 -> client parse and
 * check, the response also parsed split at every byte. */
Test(ws_handshake, round_trip)
{
	static const char *const ours[] = { "v1.json", NULL };
	char key[25], reqbuf[512], resbuf[512];
	struct rc_http_request req;
	struct rc_http_response res;
	struct rc_ws_upgrade up;
	struct rc_span proto, ext;
	const char *why = "unset", *chosen;
	ssize_t nreq, nres;

	cr_assert_eq(rc_ws_make_key(key), 0);
	nreq = rc_ws_write_request(reqbuf, sizeof(reqbuf), "127.0.0.1:8080",
				   "/sub/a%20b", key, "mqtt, v1.json",
				   "permessage-deflate; client_max_window_bits",
				   NULL);
	cr_assert_gt(nreq, 0);
	cr_assert_eq(rc_http_parse_request((uint8_t *)reqbuf, (size_t)nreq, NULL,
					   &req), nreq);
	cr_assert(rc_http_is_upgrade(&req));
	cr_assert_eq(rc_ws_upgrade_check(&req, &up), 0, "%s", up.reason);
	cr_assert(span_is(up.key, key));
	cr_assert(span_is(req.path, "/sub/a%20b"));
	cr_assert(span_is(up.extensions, "permessage-deflate; client_max_window_bits"));
	chosen = rc_ws_select_protocol(up.protocols, ours);
	cr_assert_eq(chosen, ours[0]);

	nres = rc_ws_write_101(resbuf, sizeof(resbuf), up.key, chosen,
			       "permessage-deflate");
	cr_assert_gt(nres, 0);
	for (ssize_t k = 0; k < nres; k++)
		cr_assert_eq(rc_http_parse_response((uint8_t *)resbuf, (size_t)k,
						    4096, &res), -EAGAIN, "%zd", k);
	/* Frame bytes may follow the head in the same read. */
	memcpy(resbuf + nres, "\x81\x02hi", 4);
	cr_assert_eq(rc_http_parse_response((uint8_t *)resbuf, (size_t)nres + 4,
					    4096, &res), nres);
	cr_assert_eq(rc_ws_check_101(&res, key, &proto, &ext, &why), 0, "%s", why);
	cr_assert(span_is(proto, "v1.json"));
	cr_assert(span_is(ext, "permessage-deflate"));
	cr_assert_eq(rc_ws_check_101(&res, key, NULL, NULL, NULL), 0);
}

struct check101_case {
	char name[40];
	char fmt[400]; /* %s is the right accept for RFC_KEY */
	char why[40];  /* a substring of the reason; empty: accepted */
};

#define OK101 "HTTP/1.1 101 Switching Protocols\r\n"
#define UPG101 "Upgrade: websocket\r\n"
#define CONN101 "Connection: Upgrade\r\n"
#define ACC101 "Sec-WebSocket-Accept: %s\r\n"

static struct check101_case check101_cases[] = {
	{ "good", OK101 UPG101 CONN101 ACC101 "\r\n", "" },
	{ "good, odd case", "HTTP/1.1 101 x\r\nupgrade: WebSocket\r\n"
	  "connection: keep-alive, upgrade\r\n" ACC101 "\r\n", "" },
	{ "wrong accept", OK101 UPG101 CONN101
	  "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n\r\n", "Accept" },
	{ "accept with suffix", OK101 UPG101 CONN101
	  "Sec-WebSocket-Accept: %sx\r\n\r\n", "Accept" },
	{ "missing accept", OK101 UPG101 CONN101 "\r\n", "Accept" },
	{ "two accepts", OK101 UPG101 CONN101 ACC101 ACC101 "\r\n", "Accept" },
	{ "missing upgrade", OK101 CONN101 ACC101 "\r\n", "Upgrade" },
	{ "upgrade h2c", OK101 "Upgrade: h2c\r\n" CONN101 ACC101 "\r\n", "Upgrade" },
	{ "missing connection", OK101 UPG101 ACC101 "\r\n", "Connection" },
	{ "status 200", "HTTP/1.1 200 OK\r\n" UPG101 CONN101 ACC101
	  "Content-Length: 0\r\n\r\n", "101" },
	{ "status 426", "HTTP/1.1 426 Upgrade Required\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", "101" },
	{ "two protocols", OK101 UPG101 CONN101 ACC101
	  "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n\r\n",
	  "Protocol" },
	{ "two extension headers", OK101 UPG101 CONN101 ACC101
	  "Sec-WebSocket-Extensions: permessage-deflate\r\n"
	  "Sec-WebSocket-Extensions: x-foo\r\n\r\n", "Extensions" },
};

ParameterizedTestParameters(ws_handshake, check_101)
{
	return cr_make_param_array(struct check101_case, check101_cases,
				   sizeof(check101_cases) / sizeof(check101_cases[0]));
}

ParameterizedTest(struct check101_case *c, ws_handshake, check_101)
{
	char buf[512];
	struct rc_http_response res;
	struct rc_span proto = { NULL, 7 }, ext = { NULL, 7 };
	const char *why = NULL;
	int n, rc;

	n = snprintf(buf, sizeof(buf), c->fmt, RFC_ACCEPT, RFC_ACCEPT);
	cr_assert_eq(rc_http_parse_response((uint8_t *)buf, (size_t)n, 4096, &res),
		     n, "%s: parse", c->name);
	rc = rc_ws_check_101(&res, RFC_KEY, &proto, &ext, &why);
	if (c->why[0] == '\0') {
		cr_assert_eq(rc, 0, "%s: %s", c->name, why);
		cr_assert_eq(proto.len, 0);
		cr_assert_eq(ext.len, 0);
		return;
	}
	cr_assert_eq(rc, -EPROTO, "%s", c->name);
	cr_assert_not_null(why, "%s", c->name);
	cr_assert_not_null(strstr(why, c->why), "%s: why '%s'", c->name, why);
	cr_assert_eq(rc_ws_check_101(&res, RFC_KEY, NULL, NULL, NULL), -EPROTO);
}

/* The 101 must answer the key it was computed for. */
Test(ws_handshake, check_101_other_key)
{
	char buf[512];
	struct rc_http_response res;
	ssize_t n = rc_ws_write_101(buf, sizeof(buf), span_of(RFC_KEY), NULL, NULL);
	const char *why;

	cr_assert_gt(n, 0);
	cr_assert_eq(rc_http_parse_response((uint8_t *)buf, (size_t)n, 4096, &res), n);
	cr_assert_eq(rc_ws_check_101(&res, RFC_KEY, NULL, NULL, &why), 0);
	cr_assert_eq(rc_ws_check_101(&res, "x3JJHMbDL1EzLkh9GBhXDw==", NULL, NULL,
				     &why), -EPROTO);
}
