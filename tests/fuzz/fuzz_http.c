/* libFuzzer harness for proto/http.c and proto/handshake.c.  The input is
 * parsed as a request head (default and tight limits) and as a response
 * head; prefixes must agree with the whole (-EAGAIN or the same verdict);
 * spans must stay inside the head.  A parsed upgrade request goes through
 * rc_ws_upgrade_check(), and an accepted one is answered with a 101 that
 * must parse back and pass rc_ws_check_101() with the same choices. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"

#define CHECK(cond)                  \
	do {                         \
		if (!(cond))         \
			abort();     \
	} while (0)

static void check_span(struct rc_span s, const uint8_t *buf, size_t len)
{
	CHECK((const uint8_t *)s.p >= buf);
	CHECK((const uint8_t *)s.p + s.len <= buf + len);
}

/* A handful of prefix lengths: all of them would be quadratic. */
static size_t prefix_at(size_t size, int i)
{
	switch (i) {
	case 0: return 0;
	case 1: return size / 2;
	case 2: return size / 3;
	case 3: return size > 0 ? size - 1 : 0;
	case 4: return size > 1 ? size - 2 : 0;
	default: return (size * 7 + 3) / 8;
	}
}

static void fuzz_request(const uint8_t *data, size_t size,
			 const struct rc_http_limits *lim)
{
	static struct rc_http_request req, part;
	int rc = rc_http_parse_request(data, size, lim, &req);

	if (rc >= 0) {
		CHECK((size_t)rc <= size && req.status == 0);
		CHECK(req.num_headers <= lim->max_headers);
		check_span(req.method, data, (size_t)rc);
		check_span(req.target, data, (size_t)rc);
		check_span(req.query, data, (size_t)rc);
		for (size_t i = 0; i < req.num_headers; i++) {
			check_span(req.headers[i].name, data, (size_t)rc);
			check_span(req.headers[i].value, data, (size_t)rc);
		}
	} else if (rc == -EAGAIN) {
		CHECK(size <= lim->max_head);
	} else {
		CHECK(rc == -EINVAL);
		CHECK(req.status == 400 || req.status == 431 || req.status == 505);
	}

	for (int i = 0; i < 6; i++) {
		size_t k = prefix_at(size, i);
		int prc = rc_http_parse_request(data, k, lim, &part);

		if (rc >= 0 && k >= (size_t)rc) {
			CHECK(prc == rc);
		} else if (prc != -EAGAIN) {
			CHECK(prc == rc && rc == -EINVAL);
			CHECK(part.status == req.status);
		}
	}
}

static void fuzz_response(const uint8_t *data, size_t size)
{
	static struct rc_http_response res, part;
	int rc = rc_http_parse_response(data, size, 4096, &res);
	struct rc_span proto, ext;
	const char *why;

	CHECK(rc == -EAGAIN || rc == -EINVAL || (rc > 0 && (size_t)rc <= size));
	for (int i = 0; i < 6; i++) {
		size_t k = prefix_at(size, i);
		int prc = rc_http_parse_response(data, k, 4096, &part);

		if (rc >= 0 && k >= (size_t)rc)
			CHECK(prc == rc);
		else
			CHECK(prc == -EAGAIN || prc == rc);
	}
	if (rc > 0 &&
	    rc_ws_check_101(&res, "dGhlIHNhbXBsZSBub25jZQ==", &proto, &ext,
			    &why) != 0)
		CHECK(why != NULL);
}

/* The server's side of an upgrade, then the client's check of our 101. */
static void fuzz_upgrade(const struct rc_http_request *req)
{
	static const char *const ours[] = { "chat", "v1.json", NULL };
	static struct rc_http_response res;
	struct rc_ws_upgrade up;
	struct rc_span proto, ext;
	char key[25], exts[512], out[1024], small[160];
	const char *chosen, *why;
	ssize_t n, m;

	if (rc_ws_upgrade_check(req, &up) != 0) {
		CHECK(up.status == 400 || up.status == 405 || up.status == 426);
		CHECK(up.reason != NULL);
		return;
	}
	CHECK(up.key.len == 24);
	memcpy(key, up.key.p, 24);
	key[24] = '\0';
	chosen = rc_ws_select_protocol(up.protocols, ours);
	CHECK(chosen == NULL || chosen == ours[0] || chosen == ours[1]);
	n = rc_http_header_join(req, "Sec-WebSocket-Extensions", exts, sizeof(exts));
	CHECK(n == -ENOENT || n == -ENOSPC || (n >= 0 && (size_t)n < sizeof(exts)));
	if (n < 0)
		exts[0] = '\0';

	m = rc_ws_write_101(small, sizeof(small), up.key, chosen, exts);
	CHECK(m == -ENOSPC || (m > 0 && (size_t)m <= sizeof(small)));
	m = rc_ws_write_101(out, sizeof(out), up.key, chosen, exts);
	CHECK(m > 0);
	CHECK(rc_http_parse_response((uint8_t *)out, (size_t)m, sizeof(out),
				     &res) == m);
	CHECK(rc_ws_check_101(&res, key, &proto, &ext, &why) == 0);
	CHECK(chosen ? proto.len == strlen(chosen) : proto.len == 0);
	/* Joined values are trimmed already, so the echo is exact. */
	CHECK(ext.len == strlen(exts) && memcmp(ext.p, exts, ext.len) == 0);
}

static void fuzz_helpers(const struct rc_http_request *req)
{
	char buf[8192];
	struct rc_span v;
	uint64_t len;
	ssize_t n;

	if (req->path.len <= sizeof(buf)) {
		memcpy(buf, req->path.p, req->path.len);
		n = rc_http_percent_decode((struct rc_span){ buf, req->path.len },
					   buf, req->path.len);
		CHECK(n == -EINVAL || (n >= 0 && (size_t)n <= req->path.len));
		if (n > 0)
			CHECK(memchr(buf, '\0', (size_t)n) == NULL);
	}
	if (rc_http_query_get(req->query, "from", &v))
		check_span(v, (const uint8_t *)req->query.p, req->query.len);
	(void)rc_http_content_length(req, &len);
	(void)rc_http_is_upgrade(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct rc_http_limits deflt = { 8192, RC_HTTP_MAX_HEADERS };
	static const struct rc_http_limits tight = { 256, 8 };
	static struct rc_http_request req;

	fuzz_request(data, size, &deflt);
	fuzz_request(data, size, &tight);
	fuzz_response(data, size);
	if (rc_http_parse_request(data, size, &deflt, &req) > 0) {
		fuzz_helpers(&req);
		if (rc_http_is_upgrade(&req))
			fuzz_upgrade(&req);
	}
	return 0;
}
