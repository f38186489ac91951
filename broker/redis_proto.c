/* The pure parts of the Redis engine (see redis.h): redis:// URLs, the RESP
 * command writer, a topic's key and channel names, and the payload format
 * of the messages ringcast publishes on a channel.  No socket, no loop:
 * tests/fuzz/fuzz_redis.c drives the parsers with arbitrary bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/redis.h"
#include "proto/json.h"

/* ---- URLs ------------------------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes p[0..n) into out (NUL-terminated): 0 or -EINVAL. */
static int decode(const char *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= n || (h = hexval(p[i + 1])) < 0 || (l = hexval(p[i + 2])) < 0)
				return -EINVAL;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (c == 0 || o + 1 >= cap)
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = 0;
	return 0;
}

/* See redis.h. */
int bk_redis_url_parse(const char *url, size_t len, struct bk_redis_url *out)
{
	const char *p = url, *end = url + len, *at, *host, *slash, *colon;
	size_t hl;
	unsigned long port = 6379, db = 0;

	memset(out, 0, sizeof(*out));
	if (len > 8 && memcmp(p, "redis://", 8) == 0)
		p += 8;
	else if (len > 9 && memcmp(p, "rediss://", 9) == 0) {
		p += 9;
		out->tls = true;
	} else
		return -EINVAL;
	slash = memchr(p, '/', (size_t)(end - p));
	if (!slash)
		slash = end;
	at = NULL;
	for (const char *q = p; q < slash; q++)
		if (*q == '@')
			at = q;
	if (at) {
		const char *c = memchr(p, ':', (size_t)(at - p));
		if (c) {
			if (decode(p, (size_t)(c - p), out->user, sizeof(out->user)) < 0 ||
			    decode(c + 1, (size_t)(at - c - 1), out->pass, sizeof(out->pass)) < 0)
				return -EINVAL;
		} else if (decode(p, (size_t)(at - p), out->pass, sizeof(out->pass)) < 0) {
			return -EINVAL;
		}
		p = at + 1;
	}
	host = p;
	if (p < slash && *p == '[') {
		const char *rb = memchr(p, ']', (size_t)(slash - p));
		if (!rb)
			return -EINVAL;
		colon = rb + 1 < slash && rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != slash)
			return -EINVAL;
	} else {
		colon = memchr(p, ':', (size_t)(slash - p));
	}
	hl = (size_t)((colon ? colon : slash) - host);
	if (hl == 0 || hl > 255)
		return -EINVAL;
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)host[i] <= ' ' || host[i] == '@' || host[i] == '%')
			return -EINVAL;
	if (colon) {
		port = 0;
		if (colon + 1 == slash || slash - colon > 6)
			return -EINVAL;
		for (const char *q = colon + 1; q < slash; q++) {
			if (*q < '0' || *q > '9')
				return -EINVAL;
			port = port * 10 + (unsigned long)(*q - '0');
		}
		if (port == 0 || port > 65535)
			return -EINVAL;
	}
	if (slash < end && slash + 1 < end) {
		if (end - slash > 6)
			return -EINVAL;
		for (const char *q = slash + 1; q < end; q++) {
			if (*q < '0' || *q > '9')
				return -EINVAL;
			db = db * 10 + (unsigned long)(*q - '0');
		}
	}
	out->db = (unsigned)db;
	snprintf(out->addr, sizeof(out->addr), "%s://%.*s:%lu", out->tls ? "tls" : "tcp",
		 (int)hl, host, port);
	return 0;
}

/* See redis.h. */
int bk_redis_urls_parse(const char *list, struct bk_redis_url *out, unsigned max,
			unsigned *n, struct rc_span *bad)
{
	*n = 0;
	for (const char *p = list, *comma; *p && *n < max; p = comma ? comma + 1 : "") {
		size_t len;
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && *p == ' ')
			p++, len--;
		if (bk_redis_url_parse(p, len, &out[(*n)++]) < 0) {
			*bad = (struct rc_span){ p, len };
			return -EINVAL;
		}
	}
	return *n ? 0 : -EINVAL;
}

/* ---- RESP ------------------------------------------------------------------ */

/* See redis.h. */
void bk_resp_put(struct bk_resp *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;
		while (cap < b->len + n)
			cap *= 2;
		if (!(np = realloc(b->p, cap))) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* See redis.h. */
void bk_resp_cmd(struct bk_resp *b, unsigned argc, const char *const *argv, const size_t *lens)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "*%u\r\n", argc);

	bk_resp_put(b, head, (size_t)n);
	for (unsigned i = 0; i < argc; i++) {
		n = snprintf(head, sizeof(head), "$%zu\r\n", lens[i]);
		bk_resp_put(b, head, (size_t)n);
		bk_resp_put(b, argv[i], lens[i]);
		bk_resp_put(b, "\r\n", 2);
	}
}

void bk_resp_free(struct bk_resp *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- Key and channel names ------------------------------------------------- */

/* See redis.h. */
size_t bk_redis_key(char *out, size_t cap, const char *name, size_t len, const char *suffix)
{
	size_t n = (size_t)snprintf(out, cap, "rc:{");

	for (size_t i = 0; i < len && n + 8 < cap; i++) {
		char c = name[i];
		if (c == '%' || c == '}')
			n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)c);
		else
			out[n++] = c;
	}
	n += (size_t)snprintf(out + n, cap - n, "}%s", suffix);
	return n < cap ? n : cap - 1;
}

/* See redis.h. */
ssize_t bk_redis_chan_topic(const char *ch, size_t n, char *out)
{
	size_t o = 0;

	if (n < 6 || memcmp(ch, "rc:{", 4) != 0 || ch[n - 1] != '}')
		return -EINVAL;
	for (size_t i = 4; i < n - 1; i++) {
		char c = ch[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= n - 1 || (h = hexval(ch[i + 1])) < 0 || (l = hexval(ch[i + 2])) < 0)
				return -EINVAL;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (o >= RC_TOPIC_MAX)
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = 0;
	return (ssize_t)o;
}

/* ---- Channel payloads -------------------------------------------------------- */

/* Decimal digits up to a ':' (which is skipped). */
static bool field_u64(const char **p, const char *end, uint64_t *out)
{
	uint64_t n = 0;
	const char *q = *p;

	if (q == end || *q < '0' || *q > '9')
		return false;
	for (; q < end && *q >= '0' && *q <= '9'; q++) {
		if (n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (uint64_t)(*q - '0');
	}
	if (q == end || *q != ':')
		return false;
	*p = q + 1;
	*out = n;
	return true;
}

/* See redis.h. */
int bk_redis_payload_parse(const char *p, size_t n, struct bk_redis_payload *out)
{
	const char *end = p + n, *colon;
	uint64_t op;

	if (!field_u64(&p, end, &out->seq) || out->seq == 0)
		return -EINVAL;
	if (!(colon = memchr(p, ':', (size_t)(end - p))) || colon == p ||
	    (size_t)(colon - p) >= sizeof(out->epoch))
		return -EINVAL;
	for (const char *q = p; q < colon; q++)
		if (hexval(*q) < 0 && !(*q >= 'g' && *q <= 'z') && !(*q >= 'G' && *q <= 'Z'))
			return -EINVAL; /* epochs are letters and digits */
	memcpy(out->epoch, p, (size_t)(colon - p));
	out->epoch[colon - p] = 0;
	p = colon + 1;
	if (!field_u64(&p, end, &op) || !field_u64(&p, end, &out->time_ms) ||
	    (op != RC_OP_TEXT && op != RC_OP_BINARY))
		return -EINVAL;
	out->opcode = (uint8_t)op;
	out->data = p;
	out->len = (size_t)(end - p);
	return 0;
}
