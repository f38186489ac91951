/* Tests for proto/http.c: the request head parser on a table of good and
 * bad heads (whole, split at every byte, ending at a guard page), its
 * limits, the response parser, header/token/query/percent helpers, and the
 * plain response writer (byte-exact, -ENOSPC for every short cap). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/http.h"

/* Criterion may run each test in a freshly exec'd process, so parameters
 * hold arrays, never pointers into this image. */
struct req_case {
	char name[48];
	char text[400];
	size_t len;
	int status;          /* 0: parses; else the expected req->status */
	size_t max_head;     /* 0: 8192 */
	size_t max_headers;  /* 0: RC_HTTP_MAX_HEADERS */
};

#define RQ(n, s, st) { n, s, sizeof(s) - 1, st, 0, 0 }
#define RQL(n, s, st, mh, mn) { n, s, sizeof(s) - 1, st, mh, mn }

static struct req_case req_cases[] = {
	RQ("minimal get", "GET / HTTP/1.1\r\n\r\n", 0),
	RQ("http/1.0", "GET /x HTTP/1.0\r\nHost: a\r\n\r\n", 0),
	RQ("upgrade request",
	   "GET /sub/a%20b?x=1&y HTTP/1.1\r\nHost: example.com:8080\r\n"
	   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	   "Sec-WebSocket-Version: 13\r\n\r\n", 0),
	RQ("leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nA: b\r\n\r\n", 0),
	RQ("ows around value", "GET / HTTP/1.1\r\nX:  \t v a l \t \r\n\r\n", 0),
	RQ("empty value", "GET / HTTP/1.1\r\nX-Empty:\r\nY: \r\n\r\n", 0),
	RQ("obs-text in value", "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", 0),
	RQ("tchar method and name", "M-SEARCH * HTTP/1.1\r\n!#$%&'*+-.^_`|~0aZ: 1\r\n\r\n", 0),
	RQ("absolute form", "GET http://h/p?q HTTP/1.1\r\n\r\n", 0),
	RQ("post with body", "POST /publish/t HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 0),
	RQL("exactly max headers", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", 0, 0, 2),
	RQL("exactly max head", "GET / HTTP/1.1\r\nA: 1\r\n\r\n", 0, 24, 0),
	RQ("space in method", "G ET / HTTP/1.1\r\n\r\n", 400),
	RQ("double space", "GET  / HTTP/1.1\r\n\r\n", 400),
	RQ("tab separator", "GET\t/ HTTP/1.1\r\n\r\n", 400),
	RQ("missing target", "GET HTTP/1.1\r\n\r\n", 400),
	RQ("lowercase version", "GET / http/1.1\r\n\r\n", 400),
	RQ("two-digit major", "GET / HTTP/11.1\r\n\r\n", 400),
	RQ("no minor", "GET / HTTP/1\r\n\r\n", 400),
	RQ("trailing space", "GET / HTTP/1.1 \r\n\r\n", 400),
	RQ("bare lf request line", "GET / HTTP/1.1\nHost: a\n\n", 400),
	RQ("bare lf at end", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
	RQ("bare cr in value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
	RQ("nul in value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 400),
	RQ("del in value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400),
	RQ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
	RQ("obs-fold", "GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", 400),
	RQ("whitespace first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
	RQ("empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400),
	RQ("no colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 400),
	RQ("non-ascii target", "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400),
	RQ("tls client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
	RQ("binary garbage", "\x00\x01\x02\x03", 400),
	RQ("http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
	RQ("http/1.2", "GET / HTTP/1.2\r\n\r\n", 505),
	RQ("http/0.9", "GET / HTTP/0.9\r\n\r\n", 505),
	RQ("http/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
	RQL("too many headers", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, 0, 2),
	RQL("head too long", "GET / HTTP/1.1\r\nA: 1\r\n\r\n", 431, 23, 0),
	RQL("endless request line", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 431, 16, 0),
	RQL("bad line past limit", "GET / HTTP/1.1\r\nA: 1\r\nHost : x\r\n\r\n", 431, 20, 0),
};

static void limits_of(const struct req_case *c, struct rc_http_limits *lim)
{
	lim->max_head = c->max_head ? c->max_head : 8192;
	lim->max_headers = c->max_headers ? c->max_headers : RC_HTTP_MAX_HEADERS;
}

/* The head length a good case must report: through the blank line. */
static size_t head_len(const struct req_case *c)
{
	const char *start = c->text, *end;

	/* Leading empty lines are skipped, not the end of the head. */
	while (start[0] == '\r' && start[1] == '\n')
		start += 2;
	end = memmem(start, c->len - (size_t)(start - c->text), "\r\n\r\n", 4);
	cr_assert_not_null(end, "%s: no blank line", c->name);
	return (size_t)(end - c->text) + 4;
}

/* Parses c->len bytes at buf and checks the verdict. */
static void check_whole(const struct req_case *c, const uint8_t *buf)
{
	struct rc_http_limits lim;
	struct rc_http_request req;
	int rc;

	limits_of(c, &lim);
	memset(&req, 0xa5, sizeof(req));
	rc = rc_http_parse_request(buf, c->len, &lim, &req);
	if (c->status) {
		cr_assert_eq(rc, -EINVAL, "%s: rc %d", c->name, rc);
		cr_assert_eq(req.status, c->status, "%s: status %d", c->name,
			     req.status);
		return;
	}
	cr_assert_eq(rc, (int)head_len(c), "%s: rc %d", c->name, rc);
	cr_assert_eq(req.status, 0);
	cr_assert(req.minor_version == 0 || req.minor_version == 1);
	cr_assert_leq(req.num_headers, lim.max_headers);
	/* Every span lies inside the head. */
	for (size_t i = 0; i < req.num_headers; i++) {
		const struct rc_http_header *h = &req.headers[i];

		cr_assert_geq((const uint8_t *)h->name.p, buf);
		cr_assert_leq((const uint8_t *)h->value.p + h->value.len, buf + rc);
		cr_assert_gt(h->name.len, 0);
	}
	cr_assert_eq(req.path.p, req.target.p);
	cr_assert_leq(req.path.len + (req.query.len ? req.query.len + 1 : 0),
		      req.target.len);
}

ParameterizedTestParameters(http_request, whole)
{
	return cr_make_param_array(struct req_case, req_cases,
				   sizeof(req_cases) / sizeof(req_cases[0]));
}

ParameterizedTest(struct req_case *c, http_request, whole)
{
	check_whole(c, (const uint8_t *)c->text);
}

/* Every prefix gives -EAGAIN or exactly the final verdict, and once the
 * verdict is in it stays; a good head is -EAGAIN until its last byte. */
ParameterizedTestParameters(http_request, split)
{
	return cr_make_param_array(struct req_case, req_cases,
				   sizeof(req_cases) / sizeof(req_cases[0]));
}

ParameterizedTest(struct req_case *c, http_request, split)
{
	const uint8_t *buf = (const uint8_t *)c->text;
	struct rc_http_limits lim;
	struct rc_http_request full, req;
	int want, rc;
	bool decided = false;

	limits_of(c, &lim);
	want = rc_http_parse_request(buf, c->len, &lim, &full);
	for (size_t k = 0; k <= c->len; k++) {
		rc = rc_http_parse_request(buf, k, &lim, &req);
		if (rc == -EAGAIN) {
			cr_assert(!decided, "%s: -EAGAIN at %zu after verdict",
				  c->name, k);
			continue;
		}
		decided = true;
		cr_assert_eq(rc, want, "%s: prefix %zu gave %d, whole %d",
			     c->name, k, rc, want);
		if (rc < 0) {
			cr_assert_eq(req.status, full.status, "%s at %zu", c->name, k);
			continue;
		}
		cr_assert_geq(k, (size_t)rc);
		cr_assert_eq(req.num_headers, full.num_headers);
		cr_assert_eq(req.target.p, full.target.p);
		cr_assert_eq(req.target.len, full.target.len);
		cr_assert_eq(memcmp(req.headers, full.headers,
				    req.num_headers * sizeof(req.headers[0])), 0);
	}
	cr_assert(decided, "%s: never decided", c->name);
	if (want > 0) {
		cr_assert_eq(rc_http_parse_request(buf, (size_t)want - 1, &lim, &req),
			     -EAGAIN, "%s: not -EAGAIN one byte short", c->name);
	}
}

/* Every prefix placed so that its last byte is the last readable one: a
 * read past len faults. */
ParameterizedTestParameters(http_request, guard_page)
{
	return cr_make_param_array(struct req_case, req_cases,
				   sizeof(req_cases) / sizeof(req_cases[0]));
}

ParameterizedTest(struct req_case *c, http_request, guard_page)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct rc_http_limits lim;
	struct rc_http_request req, full;
	int want;

	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
	limits_of(c, &lim);
	want = rc_http_parse_request((const uint8_t *)c->text, c->len, &lim, &full);
	for (size_t k = 0; k <= c->len; k++) {
		uint8_t *p = map + page - k;
		int rc;

		memcpy(p, c->text, k);
		rc = rc_http_parse_request(p, k, &lim, &req);
		cr_assert(rc == -EAGAIN || rc == want, "%s: %zu bytes gave %d",
			  c->name, k, rc);
		if (k == c->len && want >= 0)
			check_whole(c, p);
	}
	munmap(map, (size_t)page * 2);
}

Test(http_request, fields)
{
	static const char text[] =
		"GET /sub/a%20b?x=1&y HTTP/1.1\r\nHost: example.com\r\n"
		"X-Pad:  \t padded value \t\r\nEmpty:\r\n\r\nBODY";
	struct rc_http_request req;
	int rc = rc_http_parse_request((const uint8_t *)text, sizeof(text) - 1,
				       NULL, &req);

	cr_assert_eq(rc, (int)(sizeof(text) - 1 - 4));
	cr_assert_eq(req.method.len, 3);
	cr_assert_eq(memcmp(req.method.p, "GET", 3), 0);
	cr_assert_eq(req.target.len, strlen("/sub/a%20b?x=1&y"));
	cr_assert_eq(req.path.len, strlen("/sub/a%20b"));
	cr_assert_eq(memcmp(req.path.p, "/sub/a%20b", req.path.len), 0);
	cr_assert_eq(req.query.len, 5);
	cr_assert_eq(memcmp(req.query.p, "x=1&y", 5), 0);
	cr_assert_eq(req.minor_version, 1);
	cr_assert_eq(req.num_headers, 3);
	cr_assert_eq(req.headers[1].value.len, strlen("padded value"));
	cr_assert_eq(memcmp(req.headers[1].value.p, "padded value", 12), 0);
	cr_assert_eq(req.headers[2].value.len, 0);
	cr_assert_eq(req.headers[2].name.len, 5);
}

Test(http_request, no_query)
{
	static const char text[] = "GET /a/b HTTP/1.0\r\n\r\n";
	struct rc_http_request req;

	cr_assert_eq(rc_http_parse_request((const uint8_t *)text, sizeof(text) - 1,
					   NULL, &req), (int)sizeof(text) - 1);
	cr_assert_eq(req.minor_version, 0);
	cr_assert_eq(req.path.len, 4);
	cr_assert_eq(req.query.len, 0);
	cr_assert_not_null(req.query.p);
}

/* Builds a head with n headers into buf; returns its length. */
static size_t make_head(char *buf, size_t cap, size_t n, size_t value_len)
{
	size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");

	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(buf + len, cap - len, "H%zu: ", i);
		memset(buf + len, 'v', value_len);
		len += value_len;
		len += (size_t)snprintf(buf + len, cap - len, "\r\n");
	}
	len += (size_t)snprintf(buf + len, cap - len, "\r\n");
	cr_assert_lt(len, cap);
	return len;
}

Test(http_request, header_count_limits)
{
	static char buf[16384];
	struct rc_http_limits lim = { .max_head = sizeof(buf), .max_headers = 10 };
	struct rc_http_request req;
	size_t len;

	len = make_head(buf, sizeof(buf), 10, 3);
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, len, &lim, &req), (int)len);
	cr_assert_eq(req.num_headers, 10);
	len = make_head(buf, sizeof(buf), 11, 3);
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, len, &lim, &req), -EINVAL);
	cr_assert_eq(req.status, 431);

	/* The array holds RC_HTTP_MAX_HEADERS whatever the caller asks for. */
	lim.max_headers = 1000;
	len = make_head(buf, sizeof(buf), RC_HTTP_MAX_HEADERS, 3);
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, len, &lim, &req), (int)len);
	cr_assert_eq(req.num_headers, RC_HTTP_MAX_HEADERS);
	len = make_head(buf, sizeof(buf), RC_HTTP_MAX_HEADERS + 1, 3);
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, len, &lim, &req), -EINVAL);
	cr_assert_eq(req.status, 431);
}

Test(http_request, head_size_limits)
{
	static char buf[16384];
	struct rc_http_limits lim = { .max_head = 8192, .max_headers = 64 };
	struct rc_http_request req;
	size_t len = make_head(buf, sizeof(buf), 4, 1000);

	lim.max_head = len;
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, len, &lim, &req), (int)len);
	/* Body bytes past max_head do not matter once the head is complete. */
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, sizeof(buf), &lim, &req),
		     (int)len);
	lim.max_head = len - 1;
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, len - 1, &lim, &req),
		     -EAGAIN);
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, len, &lim, &req), -EINVAL);
	cr_assert_eq(req.status, 431);

	/* A slow header line that never ends: -EAGAIN up to max_head, then 431. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	lim.max_head = 100;
	for (size_t k = 0; k <= 100; k++)
		cr_assert_eq(rc_http_parse_request((uint8_t *)buf, k, &lim, &req),
			     -EAGAIN, "at %zu", k);
	for (size_t k = 101; k < 200; k++) {
		cr_assert_eq(rc_http_parse_request((uint8_t *)buf, k, &lim, &req),
			     -EINVAL);
		cr_assert_eq(req.status, 431);
	}

	/* NULL limits mean 8 KiB. */
	len = make_head(buf, sizeof(buf), 8, 1100);
	cr_assert_gt(len, 8192);
	cr_assert_eq(rc_http_parse_request((uint8_t *)buf, len, NULL, &req), -EINVAL);
	cr_assert_eq(req.status, 431);
}

Test(http_request, header_find)
{
	static const char text[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Y: 1\r\nx-y: 2\r\n\r\n";
	struct rc_http_request req;
	const struct rc_http_header *h;

	cr_assert_gt(rc_http_parse_request((const uint8_t *)text,
					   sizeof(text) - 1, NULL, &req), 0);
	h = rc_http_header_find(req.headers, req.num_headers, "X-y");
	cr_assert_eq(h, &req.headers[1]);
	h = rc_http_header_find(h + 1, req.num_headers - 2, "X-Y");
	cr_assert_eq(h, &req.headers[2]);
	cr_assert_null(rc_http_header_find(req.headers, req.num_headers, "X"));
	cr_assert_null(rc_http_header_find(req.headers, req.num_headers, "X-Y-Z"));
	cr_assert_null(rc_http_header_find(req.headers, 0, "Host"));
}

Test(http_request, header_join)
{
	static const char text[] =
		"GET / HTTP/1.1\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
		"Host: a\r\nsec-websocket-extensions:\r\n"
		"Sec-WebSocket-Extensions: x-foo; a=1\r\n\r\n";
	static const char want[] = "permessage-deflate, x-foo; a=1";
	struct rc_http_request req;
	char out[64];

	cr_assert_gt(rc_http_parse_request((const uint8_t *)text,
					   sizeof(text) - 1, NULL, &req), 0);
	cr_assert_eq(rc_http_header_join(&req, "sec-websocket-extensions", out,
					 sizeof(out)), (ssize_t)strlen(want));
	cr_assert_str_eq(out, want);
	for (size_t cap = 0; cap <= strlen(want); cap++)
		cr_assert_eq(rc_http_header_join(&req, "Sec-WebSocket-Extensions",
						 out, cap), -ENOSPC, "cap %zu", cap);
	cr_assert_eq(rc_http_header_join(&req, "Sec-WebSocket-Protocol", out,
					 sizeof(out)), -ENOENT);
	cr_assert_eq(rc_http_header_join(&req, "Host", out, 2), 1);
	cr_assert_str_eq(out, "a");
}

Test(http_request, content_length)
{
	static const struct {
		const char *headers;
		int rc;
		uint64_t len;
	} cases[] = {
		{ "", 0, 0 },
		{ "Content-Length: 0\r\n", 0, 0 },
		{ "Content-Length: 12345\r\n", 0, 12345 },
		{ "Content-Length: 9999999999999999999\r\n", 0, 9999999999999999999ull },
		{ "Content-Length: 99999999999999999999\r\n", -EINVAL, 0 },
		{ "Content-Length: -1\r\n", -EINVAL, 0 },
		{ "Content-Length: 1,1\r\n", -EINVAL, 0 },
		{ "Content-Length:\r\n", -EINVAL, 0 },
		{ "Content-Length: 5\r\ncontent-length: 5\r\n", -EINVAL, 0 },
		{ "Transfer-Encoding: chunked\r\n", -ENOTSUP, 0 },
		{ "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", -ENOTSUP, 0 },
	};
	char buf[256];
	struct rc_http_request req;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\n%s\r\n",
				 cases[i].headers);
		uint64_t len = 77;

		cr_assert_eq(rc_http_parse_request((uint8_t *)buf, (size_t)n, NULL,
						   &req), n);
		cr_assert_eq(rc_http_content_length(&req, &len), cases[i].rc,
			     "case %zu", i);
		if (cases[i].rc == 0)
			cr_assert_eq(len, cases[i].len, "case %zu", i);
	}
}

struct token_case {
	char value[48];
	char token[16];
	bool has;
};

static struct token_case token_cases[] = {
	{ "Upgrade", "upgrade", true },
	{ "keep-alive, Upgrade", "upgrade", true },
	{ " keep-alive ,UPGRADE\t", "Upgrade", true },
	{ ",,upgrade,,", "upgrade", true },
	{ "keep-alive", "upgrade", false },
	{ "upgrade2", "upgrade", false },
	{ "upgrad", "upgrade", false },
	{ "up grade", "upgrade", false },
	{ "websocket/13", "websocket", false },
	{ "", "upgrade", false },
	{ "a,,b", "", false },
};

ParameterizedTestParameters(http_util, token_list)
{
	return cr_make_param_array(struct token_case, token_cases,
				   sizeof(token_cases) / sizeof(token_cases[0]));
}

ParameterizedTest(struct token_case *c, http_util, token_list)
{
	struct rc_span v = { c->value, strlen(c->value) };

	cr_assert_eq(rc_http_token_list_has(v, c->token), c->has, "'%s' has '%s'",
		     c->value, c->token);
}

struct pct_case {
	char in[40];
	char out[40];
	ssize_t rc; /* the decoded length, or the error */
};

static struct pct_case pct_cases[] = {
	{ "", "", 0 },
	{ "plain", "plain", 5 },
	{ "a%20b", "a b", 3 },
	{ "%41%42%43", "ABC", 3 },
	{ "%e2%82%AC", "\xe2\x82\xac", 3 },
	{ "%25", "%", 1 },
	{ "%2525", "%25", 3 },
	{ "a+b", "a+b", 3 },
	{ "%7f%ff", "\x7f\xff", 2 },
	{ "%", "", -EINVAL },
	{ "%2", "", -EINVAL },
	{ "abc%", "", -EINVAL },
	{ "%zz", "", -EINVAL },
	{ "%0g", "", -EINVAL },
	{ "%g0", "", -EINVAL },
	{ "% 20", "", -EINVAL },
	{ "a%00b", "", -EINVAL },
	{ "ok%20then%", "", -EINVAL },
};

ParameterizedTestParameters(http_util, percent_decode)
{
	return cr_make_param_array(struct pct_case, pct_cases,
				   sizeof(pct_cases) / sizeof(pct_cases[0]));
}

ParameterizedTest(struct pct_case *c, http_util, percent_decode)
{
	struct rc_span in = { c->in, strlen(c->in) };
	char out[64], inplace[64];
	ssize_t rc;

	memset(out, '#', sizeof(out));
	rc = rc_http_percent_decode(in, out, sizeof(out));
	cr_assert_eq(rc, c->rc, "'%s': %zd", c->in, rc);
	if (rc < 0) {
		cr_assert_eq(out[0], '#', "wrote on error");
		/* A bad escape is -EINVAL even with no room at all. */
		cr_assert_eq(rc_http_percent_decode(in, out, 0), -EINVAL);
		return;
	}
	cr_assert_eq(memcmp(out, c->out, (size_t)rc), 0);
	cr_assert_eq(out[rc], '#', "wrote past the result");
	for (size_t cap = 0; cap < (size_t)rc; cap++)
		cr_assert_eq(rc_http_percent_decode(in, out, cap), -ENOSPC);
	cr_assert_eq(rc_http_percent_decode(in, out, (size_t)rc), rc);

	/* In place: out == src.p. */
	memcpy(inplace, c->in, in.len);
	in.p = inplace;
	cr_assert_eq(rc_http_percent_decode(in, inplace, in.len), rc);
	cr_assert_eq(memcmp(inplace, c->out, (size_t)rc), 0);
}

Test(http_util, query_get)
{
	static const struct {
		const char *query, *name, *value; /* value NULL: absent */
	} cases[] = {
		{ "a=1&b=2", "a", "1" },
		{ "a=1&b=2", "b", "2" },
		{ "a=1&b=2", "c", NULL },
		{ "a", "a", "" },
		{ "a=", "a", "" },
		{ "&&a=x&", "a", "x" },
		{ "ab=1&a=2", "a", "2" },
		{ "a=1&a=2", "a", "1" },
		{ "a=b=c", "a", "b=c" },
		{ "a%20b=1", "a b", NULL },
		{ "a%20b=1", "a%20b", "1" },
		{ "=v", "", "v" },
		{ "", "a", NULL },
		{ "from=42&topic=news", "from", "42" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rc_span q = { cases[i].query, strlen(cases[i].query) };
		struct rc_span v = { NULL, 99 };
		bool found = rc_http_query_get(q, cases[i].name, &v);

		cr_assert_eq(found, cases[i].value != NULL, "case %zu", i);
		if (!found)
			continue;
		cr_assert_eq(v.len, strlen(cases[i].value), "case %zu", i);
		cr_assert_eq(memcmp(v.p, cases[i].value, v.len), 0, "case %zu", i);
		cr_assert(v.p >= q.p && v.p + v.len <= q.p + q.len, "case %zu", i);
	}
	cr_assert(rc_http_query_get((struct rc_span){ "x=1", 3 }, "x", NULL));
}

Test(http_util, reasons)
{
	static const int required[] = { 101, 200, 201, 204, 301, 302, 304, 400,
		401, 403, 404, 405, 408, 413, 414, 426, 429, 431, 500, 501,
		503, 505 };

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		cr_assert_str_neq(rc_http_reason(required[i]), "Unknown", "%d",
				  required[i]);
	cr_assert_str_eq(rc_http_reason(404), "Not Found");
	cr_assert_str_eq(rc_http_reason(101), "Switching Protocols");
	cr_assert_str_eq(rc_http_reason(431), "Request Header Fields Too Large");
	cr_assert_str_eq(rc_http_reason(299), "Unknown");
	cr_assert_str_eq(rc_http_reason(-1), "Unknown");
}

/* Checks one writer call byte-exact, then every cap below the need. */
static void check_response(int status, const char *ctype, const char *extra,
			   const char *body, bool keep_alive, const char *want)
{
	char out[512];
	size_t need = strlen(want);
	size_t blen = body ? strlen(body) : 0;
	ssize_t rc;

	memset(out, '#', sizeof(out));
	rc = rc_http_write_response(out, sizeof(out), status, ctype, extra, body,
				    blen, keep_alive);
	cr_assert_eq(rc, (ssize_t)need, "status %d: %zd", status, rc);
	cr_assert_eq(memcmp(out, want, need), 0, "got\n%.*s", (int)need, out);
	for (size_t cap = 0; cap < need; cap++) {
		memset(out, '#', sizeof(out));
		cr_assert_eq(rc_http_write_response(out, cap, status, ctype, extra,
						    body, blen, keep_alive),
			     -ENOSPC, "cap %zu", cap);
		cr_assert_eq(out[cap], '#', "wrote past cap %zu", cap);
	}
	cr_assert_eq(rc_http_write_response(out, need, status, ctype, extra, body,
					    blen, keep_alive), (ssize_t)need);
}

Test(http_write, response)
{
	check_response(200, "application/json", NULL, "{\"ok\":true}", true,
		       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		       "Content-Length: 11\r\nConnection: keep-alive\r\n\r\n"
		       "{\"ok\":true}");
	check_response(404, NULL, "Cache-Control: no-store\r\nX-A: b\r\n", "", false,
		       "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
		       "Connection: close\r\nCache-Control: no-store\r\nX-A: b\r\n\r\n");
	check_response(426, "text/plain", "Sec-WebSocket-Version: 13\r\n",
		       "need ws 13\n", false,
		       "HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain\r\n"
		       "Content-Length: 11\r\nConnection: close\r\n"
		       "Sec-WebSocket-Version: 13\r\n\r\nneed ws 13\n");
	check_response(204, NULL, NULL, NULL, true,
		       "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
	check_response(304, NULL, "ETag: \"x\"\r\n", NULL, true,
		       "HTTP/1.1 304 Not Modified\r\nConnection: keep-alive\r\n"
		       "ETag: \"x\"\r\n\r\n");
	check_response(599, NULL, NULL, "x", false,
		       "HTTP/1.1 599 Unknown\r\nContent-Length: 1\r\n"
		       "Connection: close\r\n\r\nx");
}

Test(http_write, response_binary_body)
{
	static const uint8_t body[] = { 0, 1, 2, 0xff, 0 };
	char out[128];
	ssize_t rc = rc_http_write_response(out, sizeof(out), 200,
					    "application/octet-stream", NULL,
					    body, sizeof(body), true);

	cr_assert_gt(rc, (ssize_t)sizeof(body));
	cr_assert_eq(memcmp(out + rc - sizeof(body), body, sizeof(body)), 0);
	cr_assert_not_null(memmem(out, (size_t)rc, "Content-Length: 5\r\n", 19));
}

Test(http_write, response_invalid)
{
	char out[256];

	cr_assert_eq(rc_http_write_response(out, sizeof(out), 99, NULL, NULL,
					    NULL, 0, true), -EINVAL);
	cr_assert_eq(rc_http_write_response(out, sizeof(out), 1000, NULL, NULL,
					    NULL, 0, true), -EINVAL);
	cr_assert_eq(rc_http_write_response(out, sizeof(out), 204, NULL, NULL,
					    "x", 1, true), -EINVAL);
	cr_assert_eq(rc_http_write_response(out, sizeof(out), 200, "a\r\nb", NULL,
					    NULL, 0, true), -EINVAL);
	cr_assert_eq(rc_http_write_response(out, sizeof(out), 200, NULL, "X: 1",
					    NULL, 0, true), -EINVAL);
}

/* The plain writer's output parses back as a response. */
Test(http_response, parse_written)
{
	char out[256];
	struct rc_http_response res;
	ssize_t n = rc_http_write_response(out, sizeof(out), 503, "text/plain",
					   "Retry-After: 1\r\n", "busy", 4, false);

	cr_assert_gt(n, 0);
	cr_assert_eq(rc_http_parse_response((uint8_t *)out, (size_t)n, 4096, &res),
		     (int)n - 4);
	cr_assert_eq(res.status, 503);
	cr_assert_eq(res.minor_version, 1);
	cr_assert_eq(res.reason.len, strlen("Service Unavailable"));
	cr_assert_eq(res.num_headers, 4);
	cr_assert_eq(memcmp(res.headers[3].value.p, "1", 1), 0);
}

struct res_case {
	char name[32];
	char text[200];
	int status; /* 0: malformed (-EINVAL) */
	size_t max_head;
};

static struct res_case res_cases[] = {
	{ "101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 101, 4096 },
	{ "no reason", "HTTP/1.1 200 \r\nA: b\r\n\r\n", 200, 4096 },
	{ "no reason no sp", "HTTP/1.1 200\r\n\r\n", 200, 4096 },
	{ "1.0", "HTTP/1.0 404 Not Found\r\n\r\n", 404, 4096 },
	{ "http/2", "HTTP/2.0 200 OK\r\n\r\n", 0, 4096 },
	{ "4-digit", "HTTP/1.1 2000 OK\r\n\r\n", 0, 4096 },
	{ "2-digit", "HTTP/1.1 20 OK\r\n\r\n", 0, 4096 },
	{ "status 099", "HTTP/1.1 099 x\r\n\r\n", 0, 4096 },
	{ "bare lf", "HTTP/1.1 101 x\nA: b\n\n", 0, 4096 },
	{ "fold", "HTTP/1.1 101 x\r\nA: b\r\n c\r\n\r\n", 0, 4096 },
	{ "html", "<html><body>hi</body></html>", 0, 4096 },
	{ "too long", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 0, 40 },
};

ParameterizedTestParameters(http_response, table)
{
	return cr_make_param_array(struct res_case, res_cases,
				   sizeof(res_cases) / sizeof(res_cases[0]));
}

/* Whole, every prefix, and every prefix ending at a guard page. */
ParameterizedTest(struct res_case *c, http_response, table)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t len = strlen(c->text);
	struct rc_http_response res;
	int want;

	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
	want = rc_http_parse_response((uint8_t *)c->text, len, c->max_head, &res);
	if (c->status) {
		cr_assert_eq(want, (int)len, "%s: %d", c->name, want);
		cr_assert_eq(res.status, c->status);
	} else {
		cr_assert_eq(want, -EINVAL, "%s: %d", c->name, want);
	}
	for (size_t k = 0; k < len; k++) {
		uint8_t *p = map + page - k;
		int rc;

		memcpy(p, c->text, k);
		rc = rc_http_parse_response(p, k, c->max_head, &res);
		if (want > 0)
			cr_assert_eq(rc, -EAGAIN, "%s: %zu bytes gave %d", c->name, k, rc);
		else
			cr_assert(rc == -EAGAIN || rc == -EINVAL);
	}
	munmap(map, (size_t)page * 2);
}

Test(http_response, header_overflow)
{
	static char buf[8192];
	struct rc_http_response res;
	size_t len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n");

	for (int i = 0; i <= RC_HTTP_MAX_HEADERS; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "H%d: v\r\n", i);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n");
	cr_assert_eq(rc_http_parse_response((uint8_t *)buf, len, sizeof(buf), &res),
		     -EINVAL);
}
