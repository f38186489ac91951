/* Client side of the JSON control protocol (see json_client.h). */
#include "proto/json_client.h"
#include "proto/json_internal.h"
#include "proto/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- Parsing server frames ------------------------------------------------
 * The frame is checked with rc_json_valid() first, so the scanner below may
 * assume a well-formed value and only needs to find where each one ends.
 * Unlike jsmn it needs no token array, so a "data" value of any size and
 * shape costs nothing. */

static size_t skip_ws(const uint8_t *p, size_t len, size_t i)
{
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* End of the (valid) string literal starting at p[i] == '"'. */
static size_t string_end(const uint8_t *p, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return len;
}

/* End of the (valid) value starting at p[i]. */
static size_t value_end(const uint8_t *p, size_t len, size_t i)
{
	size_t depth = 0;

	if (p[i] == '"')
		return string_end(p, len, i);
	if (p[i] != '{' && p[i] != '[') {
		while (i < len && p[i] != ',' && p[i] != '}' && p[i] != ']' &&
		       p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			i++;
		return i;
	}
	for (; i < len; i++) {
		if (p[i] == '"')
			i = string_end(p, len, i) - 1;
		else if (p[i] == '{' || p[i] == '[')
			depth++;
		else if ((p[i] == '}' || p[i] == ']') && --depth == 0)
			return i + 1;
	}
	return len;
}

static bool span_is(struct rc_span s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static int parse_u64(struct rc_span s, uint64_t *v)
{
	uint64_t x = 0;

	if (s.len == 0 || (s.len > 1 && s.p[0] == '0'))
		return -EBADMSG;
	for (size_t i = 0; i < s.len; i++) {
		unsigned d = (unsigned)(s.p[i] - '0');
		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

static bool is_string(struct rc_span s)
{
	return s.len >= 2 && s.p[0] == '"';
}

/* Stores one key's value; keys are plain ASCII, so comparing the raw
 * literal is exact (an escaped spelling of a key is simply unknown). */
static int set_field(struct rc_srv_msg *m, struct rc_span k, struct rc_span v,
		     struct rc_span *op)
{
	if (span_is(k, "\"op\""))
		*op = v;
	else if (span_is(k, "\"topic\""))
		m->topic = v;
	else if (span_is(k, "\"id\""))
		m->id = v;
	else if (span_is(k, "\"data\""))
		m->data = v;
	else if (span_is(k, "\"epoch\""))
		m->epoch = v;
	else if (span_is(k, "\"code\""))
		m->code = v;
	else if (span_is(k, "\"reason\""))
		m->reason = v;
	else if (span_is(k, "\"version\""))
		m->version = v;
	else if (span_is(k, "\"enc\""))
		m->base64 = span_is(v, "\"base64\"");
	else if (span_is(k, "\"seq\""))
		return (m->has_seq = true, parse_u64(v, &m->seq));
	else if (span_is(k, "\"from\""))
		return (m->has_from = true, parse_u64(v, &m->from));
	else if (span_is(k, "\"to\""))
		return (m->has_to = true, parse_u64(v, &m->to));
	else if (span_is(k, "\"conn\""))
		return (m->has_conn = true, parse_u64(v, &m->conn));
	else if (span_is(k, "\"user\""))
		m->user = v;
	else if (span_is(k, "\"info\""))
		m->info = v;
	return 0;
}

static enum rc_srv_op op_of(struct rc_span op)
{
	static const char *const names[] = { NULL, "\"welcome\"", "\"ack\"", "\"msg\"",
					     "\"gap\"", "\"err\"", "\"join\"", "\"leave\"" };

	for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++)
		if (span_is(op, names[i]))
			return (enum rc_srv_op)i;
	return RC_SRV_UNKNOWN;
}

/* Parses a server frame (see json_client.h). */
int rc_srv_parse(const uint8_t *buf, size_t len, struct rc_srv_msg *m)
{
	struct rc_span op = { NULL, 0 };
	size_t i;

	memset(m, 0, sizeof(*m));
	if (!rc_json_valid(buf, len))
		return -EBADMSG;
	i = skip_ws(buf, len, 0);
	if (buf[i] != '{')
		return -EBADMSG;
	i = skip_ws(buf, len, i + 1);
	while (i < len && buf[i] == '"') {
		struct rc_span k = { (const char *)buf + i, 0 }, v;
		size_t e = string_end(buf, len, i);

		k.len = e - i;
		i = skip_ws(buf, len, skip_ws(buf, len, e) + 1); /* past ':' */
		e = value_end(buf, len, i);
		v = (struct rc_span){ (const char *)buf + i, e - i };
		if (set_field(m, k, v, &op) < 0)
			return -EBADMSG;
		i = skip_ws(buf, len, e);
		if (i < len && buf[i] == ',')
			i = skip_ws(buf, len, i + 1);
	}
	if (!is_string(op))
		return -EBADMSG;
	m->op = op_of(op);
	if ((m->topic.p && !is_string(m->topic)) || (m->epoch.p && !is_string(m->epoch)) ||
	    (m->code.p && !is_string(m->code)) || (m->reason.p && !is_string(m->reason)) ||
	    (m->user.p && !is_string(m->user)) || (m->info.p && !is_string(m->info)))
		return -EBADMSG;
	return 0;
}

static int32_t hex4(const char *p, const char *end)
{
	return end - p < 4 ? -1 : rc__json_hex4((const uint8_t *)p);
}

/* Decodes one escape at p (just past the backslash) into u; returns the
 * bytes of input used, or -1. */
static int unescape_one(const char *p, const char *end, char u[4], size_t *ulen)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *f = p < end ? strchr(from, *p) : NULL;
	int32_t cp, lo;

	if (f && *p) {
		u[0] = to[f - from];
		*ulen = 1;
		return 1;
	}
	if (p >= end || *p != 'u' || (cp = hex4(p + 1, end)) < 0)
		return -1;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return -1;
	if (cp < 0xd800 || cp > 0xdbff) {
		*ulen = rc_utf8_encode((uint32_t)cp, (uint8_t *)u);
		return 5;
	}
	if (end - p < 11 || p[5] != '\\' || p[6] != 'u' || (lo = hex4(p + 7, end)) < 0xdc00 ||
	    lo > 0xdfff)
		return -1;
	*ulen = rc_utf8_encode(0x10000 + (((uint32_t)cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00),
			       (uint8_t *)u);
	return 11;
}

/* Decodes a JSON string literal (see json_client.h). */
ssize_t rc_json_unescape(char *out, size_t cap, struct rc_span s)
{
	const char *p, *end;
	size_t n = 0;

	if (s.len < 2 || s.p[0] != '"' || s.p[s.len - 1] != '"')
		return -EINVAL;
	p = s.p + 1;
	end = s.p + s.len - 1;
	while (p < end) {
		char u[4];
		size_t ulen = 1;

		if (*p == '\\') {
			int used = unescape_one(p + 1, end, u, &ulen);
			if (used < 0)
				return -EINVAL;
			p += 1 + used;
		} else {
			u[0] = *p++;
		}
		if (cap - n < ulen)
			return -ENOSPC;
		memcpy(out + n, u, ulen);
		n += ulen;
	}
	return (ssize_t)n;
}

/* ---- Writing commands ---------------------------------------------------- */

struct out {
	char *p;
	size_t cap, n;
	bool full;
};

static void put(struct out *o, const void *s, size_t n)
{
	if (o->full || o->cap - o->n < n) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

static void put_cstr(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);

	put(o, b, (size_t)n);
}

static void put_string(struct out *o, const void *s, size_t len)
{
	ssize_t n;

	if (o->full)
		return;
	n = rc_json_write_string(o->p + o->n, o->cap - o->n, s, len);
	if (n < 0)
		o->full = true;
	else
		o->n += (size_t)n;
}

static ssize_t out_done(const struct out *o)
{
	return o->full ? -ENOSPC : (ssize_t)o->n;
}

/* Bound of a command (see json_client.h). */
size_t rc_json_cmd_bound(size_t topic_len, size_t data_len, bool as_string)
{
	size_t t = topic_len > SIZE_MAX / 8 ? SIZE_MAX / 8 : topic_len;
	size_t d = data_len > SIZE_MAX / 8 ? SIZE_MAX / 8 : data_len;

	/* fixed text and two 20-digit numbers fit in 128 bytes */
	return 128 + 6 * t + 2 + (as_string ? 6 * d + 2 : d);
}

static void put_head(struct out *o, const char *op, const char *topic, size_t topic_len)
{
	put_cstr(o, "{\"op\":\"");
	put_cstr(o, op);
	put_cstr(o, "\",\"topic\":");
	put_string(o, topic, topic_len);
}

/* Writes a sub command (see json_client.h). */
ssize_t rc_json_write_sub(char *out, size_t cap, const char *topic,
			  size_t topic_len, uint64_t id, bool has_from,
			  uint64_t from)
{
	struct out o = { out, cap, 0, false };

	put_head(&o, "sub", topic, topic_len);
	put_cstr(&o, ",\"id\":");
	put_u64(&o, id);
	if (has_from) {
		put_cstr(&o, ",\"from\":");
		put_u64(&o, from);
	}
	put_cstr(&o, "}");
	return out_done(&o);
}

/* Writes an unsub command (see json_client.h). */
ssize_t rc_json_write_unsub(char *out, size_t cap, const char *topic,
			    size_t topic_len, uint64_t id)
{
	struct out o = { out, cap, 0, false };

	put_head(&o, "unsub", topic, topic_len);
	put_cstr(&o, ",\"id\":");
	put_u64(&o, id);
	put_cstr(&o, "}");
	return out_done(&o);
}

/* Writes a pub command (see json_client.h). */
ssize_t rc_json_write_pub(char *out, size_t cap, const char *topic,
			  size_t topic_len, const void *data, size_t data_len,
			  bool as_string, uint64_t id)
{
	struct out o = { out, cap, 0, false };

	put_head(&o, "pub", topic, topic_len);
	put_cstr(&o, ",\"id\":");
	put_u64(&o, id);
	put_cstr(&o, ",\"data\":");
	if (as_string)
		put_string(&o, data, data_len);
	else
		put(&o, data, data_len);
	put_cstr(&o, "}");
	return out_done(&o);
}

/* Writes a ping command (see json_client.h). */
ssize_t rc_json_write_ping(char *out, size_t cap, uint64_t id)
{
	struct out o = { out, cap, 0, false };

	put_cstr(&o, "{\"op\":\"ping\",\"id\":");
	put_u64(&o, id);
	put_cstr(&o, "}");
	return out_done(&o);
}
