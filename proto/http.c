/* HTTP/1.1 message heads (RFC 9112, formerly RFC 7230): the request parser
 * the server runs on every new connection, the response parser the client
 * runs on the handshake answer, and the small helpers over parsed heads
 * (header lookup, token lists, percent-decoding, query strings, body length,
 * plain responses).  The WebSocket-specific half lives in handshake.c.
 *
 * The parsers scan strictly left to right and decide every error at the
 * first offending byte, so a prefix of a head yields either -EAGAIN or the
 * same verdict as the whole head: re-parsing from the start on every read is
 * safe, and a garbage first line (a TLS ClientHello on the plain port) is
 * rejected at its first byte instead of after max_head bytes. */
#include "proto/http.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_HEAD 8192

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB, obs-text included (RFC 9110 5.5).  Every other
 * control byte (NUL, bare CR, bare LF, DEL) is an error. */
static bool is_field_char(uint8_t c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static struct rc_span mkspan(const uint8_t *p, size_t len)
{
	return (struct rc_span){ .p = (const char *)p, .len = len };
}

/* In this file's parsers: 0 done, -EAGAIN out of input, or a positive HTTP
 * status for the error found. */

/* Only CRLF ends a line: a bare LF is rejected (400) rather than accepted
 * (RFC 9112 2.2 allows either), so that no proxy in front of us can
 * disagree about where a header ends. */
static int expect_crlf(const uint8_t *b, size_t end, size_t *pos)
{
	if (*pos >= end)
		return -EAGAIN;
	if (b[*pos] != '\r')
		return 400;
	if (*pos + 1 >= end)
		return -EAGAIN;
	if (b[*pos + 1] != '\n')
		return 400;
	*pos += 2;
	return 0;
}

/* "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3). */
static int parse_version(const uint8_t *b, size_t end, size_t *pos,
			 int *major, int *minor)
{
	static const char pat[] = "HTTP/9.9";

	for (size_t i = 0; i < sizeof(pat) - 1; i++) {
		uint8_t c;

		if (*pos + i >= end)
			return -EAGAIN;
		c = b[*pos + i];
		if (pat[i] == '9' ? (c < '0' || c > '9') : c != (uint8_t)pat[i])
			return 400;
	}
	*major = b[*pos + 5] - '0';
	*minor = b[*pos + 7] - '0';
	*pos += sizeof(pat) - 1;
	return 0;
}

static int parse_request_line(const uint8_t *b, size_t end, size_t *pos,
			      struct rc_http_request *req)
{
	size_t p = *pos, start, i;
	int major, minor, rc;

	/* RFC 9112 2.2: empty lines before the request line are ignored (some
	 * clients send a CRLF after a POST body).  max_head bounds them. */
	while (p < end && b[p] == '\r') {
		rc = expect_crlf(b, end, &p);
		if (rc)
			return rc;
	}

	start = p;
	while (p < end && is_tchar(b[p]))
		p++;
	if (p == end)
		return -EAGAIN;
	if (p == start || b[p] != ' ')
		return 400;
	req->method = mkspan(b + start, p - start);

	/* Any visible ASCII: origin-form, absolute-form, authority-form and
	 * "*" all pass; routing decides what it serves. */
	start = ++p;
	while (p < end && b[p] > 0x20 && b[p] < 0x7f)
		p++;
	if (p == end)
		return -EAGAIN;
	if (p == start || b[p] != ' ')
		return 400;
	req->target = mkspan(b + start, p - start);
	p++;

	rc = parse_version(b, end, &p, &major, &minor);
	if (rc)
		return rc;
	rc = expect_crlf(b, end, &p);
	if (rc)
		return rc;
	/* Only a well-formed line gets here, so 505 never hides a 400. */
	if (major != 1 || minor > 1)
		return 505;
	req->minor_version = minor;

	req->path = req->target;
	req->query = (struct rc_span){ req->target.p + req->target.len, 0 };
	for (i = 0; i < req->target.len; i++) {
		if (req->target.p[i] == '?') {
			req->path.len = i;
			req->query = mkspan((const uint8_t *)req->target.p + i + 1,
					    req->target.len - i - 1);
			break;
		}
	}
	*pos = p;
	return 0;
}

/* Header lines up to and including the blank line.  too_many is the status
 * for a header past max (checked only after the line itself is valid, which
 * keeps prefix verdicts consistent). */
static int parse_headers(const uint8_t *b, size_t end, size_t *pos,
			 struct rc_http_header *h, size_t *n, size_t max,
			 int too_many)
{
	size_t p = *pos;

	for (;;) {
		size_t name, name_end, val, val_end;
		int rc;

		if (p >= end)
			return -EAGAIN;
		if (b[p] == '\r') {
			rc = expect_crlf(b, end, &p);
			if (rc)
				return rc;
			*pos = p;
			return 0;
		}
		/* A line starting with whitespace (obs-fold, RFC 9112 5.2) and
		 * whitespace before the colon (5.1) both fail here. */
		name = p;
		while (p < end && is_tchar(b[p]))
			p++;
		if (p == end)
			return -EAGAIN;
		if (p == name || b[p] != ':')
			return 400;
		name_end = p++;
		while (p < end && is_ows(b[p]))
			p++;
		val = val_end = p;
		while (p < end && is_field_char(b[p])) {
			if (!is_ows(b[p]))
				val_end = p + 1;
			p++;
		}
		rc = expect_crlf(b, end, &p);
		if (rc)
			return rc;
		if (*n >= max)
			return too_many;
		h[*n].name = mkspan(b + name, name_end - name);
		h[*n].value = mkspan(b + val, val_end - val);
		(*n)++;
	}
}

/* Parses a request head; see http.h. */
int rc_http_parse_request(const uint8_t *buf, size_t len,
			  const struct rc_http_limits *lim,
			  struct rc_http_request *req)
{
	size_t max_head = lim ? lim->max_head : DEFAULT_MAX_HEAD;
	size_t max_hdrs = lim ? lim->max_headers : RC_HTTP_MAX_HEADERS;
	size_t end, pos = 0;
	int rc;

	if (max_hdrs > RC_HTTP_MAX_HEADERS)
		max_hdrs = RC_HTTP_MAX_HEADERS;
	if (max_head > INT_MAX)
		max_head = INT_MAX;
	/* Never look past max_head: what lies beyond is body or excess. */
	end = len < max_head ? len : max_head;

	req->method = req->target = req->path = req->query = mkspan(NULL, 0);
	req->minor_version = 0;
	req->num_headers = 0;
	req->status = 0;

	rc = parse_request_line(buf, end, &pos, req);
	if (rc == 0)
		rc = parse_headers(buf, end, &pos, req->headers,
				   &req->num_headers, max_hdrs, 431);
	if (rc == 0)
		return (int)pos;
	if (rc == -EAGAIN) {
		if (len <= max_head)
			return -EAGAIN;
		rc = 431;
	}
	req->status = rc;
	return -EINVAL;
}

static int parse_status_line(const uint8_t *b, size_t end, size_t *pos,
			     struct rc_http_response *res)
{
	size_t p = *pos, start;
	int major, minor, rc, status = 0;

	rc = parse_version(b, end, &p, &major, &minor);
	if (rc)
		return rc;
	if (major != 1 || minor > 1)
		return 400;
	res->minor_version = minor;
	for (int i = 0; i < 4; i++, p++) {
		if (p >= end)
			return -EAGAIN;
		if (i == 0 ? b[p] != ' ' : (b[p] < '0' || b[p] > '9'))
			return 400;
		if (i > 0)
			status = status * 10 + (b[p] - '0');
	}
	if (status < 100)
		return 400;
	res->status = status;
	/* The SP before an empty reason phrase is often left out. */
	if (p >= end)
		return -EAGAIN;
	if (b[p] == ' ')
		p++;
	else if (b[p] != '\r')
		return 400;
	start = p;
	while (p < end && is_field_char(b[p]))
		p++;
	res->reason = mkspan(b + start, p - start);
	rc = expect_crlf(b, end, &p);
	if (rc)
		return rc;
	*pos = p;
	return 0;
}

/* Parses a response head; see http.h. */
int rc_http_parse_response(const uint8_t *buf, size_t len, size_t max_head,
			   struct rc_http_response *res)
{
	size_t end, pos = 0;
	int rc;

	if (max_head > INT_MAX)
		max_head = INT_MAX;
	end = len < max_head ? len : max_head;
	res->minor_version = 0;
	res->status = 0;
	res->reason = mkspan(NULL, 0);
	res->num_headers = 0;

	rc = parse_status_line(buf, end, &pos, res);
	if (rc == 0)
		rc = parse_headers(buf, end, &pos, res->headers,
				   &res->num_headers, RC_HTTP_MAX_HEADERS, 400);
	if (rc == 0)
		return (int)pos;
	if (rc == -EAGAIN && len <= max_head)
		return -EAGAIN;
	return -EINVAL;
}

static bool span_ieq(struct rc_span s, const char *str, size_t len)
{
	return s.len == len && (len == 0 || strncasecmp(s.p, str, len) == 0);
}

/* Finds a header by name; see http.h. */
const struct rc_http_header *rc_http_header_find(const struct rc_http_header *h,
						 size_t n, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (span_ieq(h[i].name, name, len))
			return &h[i];
	return NULL;
}

/* Searches a comma-separated list; see http.h. */
bool rc_http_token_list_has(struct rc_span value, const char *token)
{
	size_t tlen = strlen(token), i = 0;

	if (tlen == 0)
		return false;
	while (i < value.len) {
		size_t start, end;

		while (i < value.len && is_ows((uint8_t)value.p[i]))
			i++;
		start = i;
		while (i < value.len && value.p[i] != ',')
			i++;
		end = i;
		while (end > start && is_ows((uint8_t)value.p[end - 1]))
			end--;
		if (span_ieq(mkspan((const uint8_t *)value.p + start,
				    end - start), token, tlen))
			return true;
		i++; /* past the comma */
	}
	return false;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes a span; see http.h. */
ssize_t rc_http_percent_decode(struct rc_span src, char *out, size_t cap)
{
	size_t i, n = 0;

	/* Validate and measure first, so that a bad escape is -EINVAL whatever
	 * cap is, and nothing is written on error. */
	for (i = 0; i < src.len; n++) {
		if (src.p[i] != '%') {
			i++;
			continue;
		}
		if (src.len - i < 3 || hexval(src.p[i + 1]) < 0 ||
		    hexval(src.p[i + 2]) < 0)
			return -EINVAL;
		if (hexval(src.p[i + 1]) == 0 && hexval(src.p[i + 2]) == 0)
			return -EINVAL;
		i += 3;
	}
	if (n > cap)
		return -ENOSPC;
	if (n > SSIZE_MAX)
		return -EINVAL;
	/* The write index never passes the read index, so out == src.p works. */
	for (i = 0, n = 0; i < src.len; n++) {
		if (src.p[i] != '%') {
			out[n] = src.p[i++];
			continue;
		}
		out[n] = (char)(hexval(src.p[i + 1]) << 4 | hexval(src.p[i + 2]));
		i += 3;
	}
	return (ssize_t)n;
}

/* Looks up a query parameter; see http.h. */
bool rc_http_query_get(struct rc_span query, const char *name,
		       struct rc_span *val)
{
	size_t nlen = strlen(name), i = 0;

	while (i < query.len) {
		size_t start = i, eq = SIZE_MAX;

		while (i < query.len && query.p[i] != '&') {
			if (query.p[i] == '=' && eq == SIZE_MAX)
				eq = i;
			i++;
		}
		/* [start, i) is one pair; i is at '&' or the end. */
		if ((eq == SIZE_MAX ? i : eq) - start == nlen &&
		    memcmp(query.p + start, name, nlen) == 0) {
			if (val) {
				if (eq == SIZE_MAX)
					*val = (struct rc_span){ query.p + i, 0 };
				else
					*val = (struct rc_span){ query.p + eq + 1,
								 i - eq - 1 };
			}
			return true;
		}
		i++;
	}
	return false;
}

/* Joins every value of a repeated header; see http.h. */
ssize_t rc_http_header_join(const struct rc_http_request *req,
			    const char *name, char *out, size_t cap)
{
	const struct rc_http_header *h = req->headers;
	size_t left = req->num_headers, n = 0;
	bool found = false;

	while ((h = rc_http_header_find(h, left, name)) != NULL) {
		left = req->num_headers - (size_t)(h - req->headers) - 1;
		found = true;
		/* Empty list elements carry nothing (RFC 9110 5.6.1). */
		if (h->value.len) {
			size_t sep = n ? 2 : 0;

			if (cap < 1 || cap - 1 - n < sep + h->value.len)
				return -ENOSPC;
			memcpy(out + n, ", ", sep);
			memcpy(out + n + sep, h->value.p, h->value.len);
			n += sep + h->value.len;
		}
		h++;
	}
	if (!found)
		return -ENOENT;
	if (cap < 1)
		return -ENOSPC;
	out[n] = '\0';
	return (ssize_t)n;
}

/* Reads the request body's framing; see http.h. */
int rc_http_content_length(const struct rc_http_request *req, uint64_t *len)
{
	const struct rc_http_header *h;
	uint64_t v = 0;

	*len = 0;
	if (rc_http_header_find(req->headers, req->num_headers,
				"Transfer-Encoding"))
		return -ENOTSUP;
	h = rc_http_header_find(req->headers, req->num_headers, "Content-Length");
	if (!h)
		return 0;
	/* A second Content-Length is a smuggling vector: refuse it outright. */
	if (rc_http_header_find(h + 1,
				req->num_headers - (size_t)(h - req->headers) - 1,
				"Content-Length"))
		return -EINVAL;
	if (h->value.len == 0 || h->value.len > 19)
		return -EINVAL;
	for (size_t i = 0; i < h->value.len; i++) {
		char c = h->value.p[i];

		if (c < '0' || c > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(c - '0');
	}
	*len = v;
	return 0;
}

/* Standard reason phrases (RFC 9110 15 and RFC 6585); see http.h. */
const char *rc_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* Bounded appender: counts everything, copies only what fits. */
struct outbuf {
	char *p;
	size_t cap, len;
};

static void put(struct outbuf *o, const void *s, size_t n)
{
	if (o->len <= o->cap && n <= o->cap - o->len && n)
		memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts_(struct outbuf *o, const char *s)
{
	put(o, s, strlen(s));
}

static bool is_header_block(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n == 0 || (n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n');
}

/* Writes a plain response; see http.h. */
/* The head of a response: status line, Content-Type, Content-Length when
 * body_len is not RC_HTTP_LENGTH_NONE (and the status has a body),
 * Connection, extra_headers, blank line. */
#define RC_HTTP_LENGTH_NONE SIZE_MAX

static int write_head(struct outbuf *o, int status, const char *content_type,
		      const char *extra_headers, size_t body_len, bool keep_alive)
{
	bool bodyless = status < 200 || status == 204 || status == 304;
	char num[48];

	if (status < 100 || status > 999)
		return -EINVAL;
	if (content_type && strpbrk(content_type, "\r\n"))
		return -EINVAL;
	if (!is_header_block(extra_headers))
		return -EINVAL;
	snprintf(num, sizeof(num), "HTTP/1.1 %d ", status);
	puts_(o, num);
	puts_(o, rc_http_reason(status));
	puts_(o, "\r\n");
	if (content_type) {
		puts_(o, "Content-Type: ");
		puts_(o, content_type);
		puts_(o, "\r\n");
	}
	if (!bodyless && body_len != RC_HTTP_LENGTH_NONE) {
		snprintf(num, sizeof(num), "Content-Length: %zu\r\n", body_len);
		puts_(o, num);
	}
	puts_(o, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
	if (extra_headers)
		puts_(o, extra_headers);
	puts_(o, "\r\n");
	return 0;
}

ssize_t rc_http_write_response(char *out, size_t cap, int status,
			       const char *content_type,
			       const char *extra_headers,
			       const void *body, size_t body_len,
			       bool keep_alive)
{
	struct outbuf o = { out, cap, 0 };
	/* RFC 9110 8.6: no Content-Length (and no body) on 1xx, 204 and 304. */
	bool bodyless = status < 200 || status == 204 || status == 304;
	int err;

	if (bodyless && body_len)
		return -EINVAL;
	if (body_len == RC_HTTP_LENGTH_NONE)
		return -EINVAL;
	err = write_head(&o, status, content_type, extra_headers, body_len, keep_alive);
	if (err < 0)
		return err;
	put(&o, body, body_len);
	if (o.len > cap || o.len > SSIZE_MAX)
		return -ENOSPC;
	return (ssize_t)o.len;
}

ssize_t rc_http_write_stream_head(char *out, size_t cap, int status,
				  const char *content_type,
				  const char *extra_headers)
{
	struct outbuf o = { out, cap, 0 };
	int err;

	if (status < 200 || status == 204 || status == 304)
		return -EINVAL;
	err = write_head(&o, status, content_type, extra_headers, RC_HTTP_LENGTH_NONE, false);
	if (err < 0)
		return err;
	if (o.len > cap || o.len > SSIZE_MAX)
		return -ENOSPC;
	return (ssize_t)o.len;
}
