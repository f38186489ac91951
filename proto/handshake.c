/* The WebSocket opening handshake (RFC 6455 section 4) over the HTTP heads
 * parsed by http.c: server-side validation and the 101 answer, the accept
 * key, subprotocol choice, and the client's request and 101 check. */
#include "proto/http.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const char empty[] = "";

static struct rc_span empty_span(void)
{
	return (struct rc_span){ empty, 0 };
}

/* Next header named name at or after h, among the n - (h - base) left. */
static const struct rc_http_header *
next_named(const struct rc_http_header *base, size_t n,
	   const struct rc_http_header *h, const char *name)
{
	return rc_http_header_find(h, n - (size_t)(h - base), name);
}

static size_t count_named(const struct rc_http_header *base, size_t n,
			  const char *name)
{
	const struct rc_http_header *h = base;
	size_t count = 0;

	while ((h = next_named(base, n, h, name)) != NULL) {
		count++;
		h++;
	}
	return count;
}

/* A list header may be split over several lines (RFC 9110 5.3), so the
 * token may sit in any of them ("Connection: keep-alive" then
 * "Connection: Upgrade"). */
static bool any_has_token(const struct rc_http_header *base, size_t n,
			  const char *name, const char *token)
{
	const struct rc_http_header *h = base;

	while ((h = next_named(base, n, h, name)) != NULL) {
		if (rc_http_token_list_has(h->value, token))
			return true;
		h++;
	}
	return false;
}

static bool span_eq(struct rc_span s, const char *str)
{
	size_t len = strlen(str);

	return s.len == len && (len == 0 || memcmp(s.p, str, len) == 0);
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Exactly the canonical base64 of 16 bytes: 21 full sextets, one that holds
 * the last 2 bits (its low 4 bits zero), "==". */
static bool key_is_valid(struct rc_span k)
{
	if (k.len != 24 || k.p[22] != '=' || k.p[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++)
		if (b64val(k.p[i]) < 0)
			return false;
	return (b64val(k.p[21]) & 0x0f) == 0;
}

/* True if the request asks for a WebSocket upgrade; see http.h. */
bool rc_http_is_upgrade(const struct rc_http_request *req)
{
	return any_has_token(req->headers, req->num_headers, "Upgrade",
			     "websocket");
}

static int reject(struct rc_ws_upgrade *up, int status, const char *reason)
{
	up->status = status;
	up->reason = reason;
	return -EINVAL;
}

/* Validates an upgrade request (RFC 6455 4.2.1); see http.h. */
int rc_ws_upgrade_check(const struct rc_http_request *req,
			struct rc_ws_upgrade *up)
{
	const struct rc_http_header *hs = req->headers, *h;
	size_t n = req->num_headers, count;

	up->key = up->protocols = up->extensions = empty_span();
	up->status = 0;
	up->reason = NULL;

	if (!span_eq(req->method, "GET"))
		return reject(up, 405, "WebSocket upgrade requires GET");
	if (req->minor_version != 1)
		return reject(up, 400, "WebSocket upgrade requires HTTP/1.1");

	count = count_named(hs, n, "Host");
	if (count == 0)
		return reject(up, 400, "missing Host header");
	if (count > 1)
		return reject(up, 400, "more than one Host header");
	if (rc_http_header_find(hs, n, "Host")->value.len == 0)
		return reject(up, 400, "empty Host header");

	if (!any_has_token(hs, n, "Upgrade", "websocket"))
		return reject(up, 400, "Upgrade header must name websocket");
	if (!any_has_token(hs, n, "Connection", "upgrade"))
		return reject(up, 400, "Connection header must contain upgrade");

	/* Before the key: an old-draft client (hybi-00 has no
	 * Sec-WebSocket-Key) learns from the 426 which version we speak. */
	count = count_named(hs, n, "Sec-WebSocket-Version");
	if (count > 1)
		return reject(up, 400, "more than one Sec-WebSocket-Version");
	h = rc_http_header_find(hs, n, "Sec-WebSocket-Version");
	if (!h)
		return reject(up, 426, "missing Sec-WebSocket-Version");
	if (!span_eq(h->value, "13"))
		return reject(up, 426, "unsupported Sec-WebSocket-Version");

	count = count_named(hs, n, "Sec-WebSocket-Key");
	if (count == 0)
		return reject(up, 400, "missing Sec-WebSocket-Key");
	if (count > 1)
		return reject(up, 400, "more than one Sec-WebSocket-Key");
	h = rc_http_header_find(hs, n, "Sec-WebSocket-Key");
	if (!key_is_valid(h->value))
		return reject(up, 400,
			      "Sec-WebSocket-Key is not base64 of 16 bytes");
	up->key = h->value;

	h = rc_http_header_find(hs, n, "Sec-WebSocket-Protocol");
	if (h)
		up->protocols = h->value;
	h = rc_http_header_find(hs, n, "Sec-WebSocket-Extensions");
	if (h)
		up->extensions = h->value;
	return 0;
}

/* Computes Sec-WebSocket-Accept; see http.h. */
void rc_ws_accept_key(struct rc_span key, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	out[0] = '\0';
	if (!ctx)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
	    (key.len == 0 || EVP_DigestUpdate(ctx, key.p, key.len) == 1) &&
	    EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 20)
		EVP_EncodeBlock((unsigned char *)out, md, 20);
	EVP_MD_CTX_free(ctx);
}

/* Chooses a subprotocol in the client's order of preference; see http.h. */
const char *rc_ws_select_protocol(struct rc_span offered,
				  const char *const *supported)
{
	size_t i = 0;

	if (!supported)
		return NULL;
	while (i < offered.len) {
		size_t start, end;

		while (i < offered.len &&
		       (offered.p[i] == ' ' || offered.p[i] == '\t'))
			i++;
		start = i;
		while (i < offered.len && offered.p[i] != ',')
			i++;
		end = i;
		while (end > start &&
		       (offered.p[end - 1] == ' ' || offered.p[end - 1] == '\t'))
			end--;
		/* Subprotocol names compare case-sensitively (RFC 6455 11.3.4). */
		for (size_t s = 0; end > start && supported[s]; s++)
			if (strlen(supported[s]) == end - start &&
			    memcmp(supported[s], offered.p + start,
				   end - start) == 0)
				return supported[s];
		i++;
	}
	return NULL;
}

/* Bounded appender: counts everything, copies only what fits. */
struct outbuf {
	char *p;
	size_t cap, len;
};

static void puts_(struct outbuf *o, const char *s)
{
	size_t n = strlen(s);

	if (o->len <= o->cap && n <= o->cap - o->len && n)
		memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_header(struct outbuf *o, const char *name, const char *value)
{
	puts_(o, name);
	puts_(o, ": ");
	puts_(o, value);
	puts_(o, "\r\n");
}

static ssize_t finish(const struct outbuf *o)
{
	if (o->len > o->cap || o->len > SSIZE_MAX)
		return -ENOSPC;
	return (ssize_t)o->len;
}

/* A header value the caller hands us must not smuggle in a line break. */
static bool bad_value(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

static bool bad_block(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n != 0 && (n < 2 || s[n - 2] != '\r' || s[n - 1] != '\n');
}

/* Writes the 101 answer; see http.h. */
ssize_t rc_ws_write_101(char *out, size_t cap, struct rc_span key,
			const char *protocol, const char *extensions)
{
	struct outbuf o = { out, cap, 0 };
	char accept[29];

	if (bad_value(protocol) || bad_value(extensions))
		return -EINVAL;
	rc_ws_accept_key(key, accept);
	if (accept[0] == '\0')
		return -ENOMEM;

	puts_(&o, "HTTP/1.1 101 Switching Protocols\r\n"
		  "Upgrade: websocket\r\n"
		  "Connection: Upgrade\r\n");
	put_header(&o, "Sec-WebSocket-Accept", accept);
	if (protocol && *protocol)
		put_header(&o, "Sec-WebSocket-Protocol", protocol);
	if (extensions && *extensions)
		put_header(&o, "Sec-WebSocket-Extensions", extensions);
	puts_(&o, "\r\n");
	return finish(&o);
}

/* Makes a fresh Sec-WebSocket-Key; see http.h. */
int rc_ws_make_key(char key[25])
{
	unsigned char raw[16];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	return 0;
}

/* Writes the client's upgrade request; see http.h. */
ssize_t rc_ws_write_request(char *out, size_t cap, const char *host,
			    const char *path, const char *key,
			    const char *protocols, const char *extensions,
			    const char *extra_headers)
{
	struct outbuf o = { out, cap, 0 };

	if (!path || !*path)
		path = "/";
	/* The target goes on the request line: no space or control byte. */
	for (const char *c = path; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return -EINVAL;
	if (!host || !key || bad_value(host) || bad_value(key) ||
	    bad_value(protocols) || bad_value(extensions) ||
	    bad_block(extra_headers))
		return -EINVAL;

	puts_(&o, "GET ");
	puts_(&o, path);
	puts_(&o, " HTTP/1.1\r\n");
	put_header(&o, "Host", host);
	puts_(&o, "Upgrade: websocket\r\n"
		  "Connection: Upgrade\r\n");
	put_header(&o, "Sec-WebSocket-Key", key);
	puts_(&o, "Sec-WebSocket-Version: 13\r\n");
	if (protocols && *protocols)
		put_header(&o, "Sec-WebSocket-Protocol", protocols);
	if (extensions && *extensions)
		put_header(&o, "Sec-WebSocket-Extensions", extensions);
	if (extra_headers)
		puts_(&o, extra_headers);
	puts_(&o, "\r\n");
	return finish(&o);
}

static int fail(const char **why, const char *reason)
{
	*why = reason;
	return -EPROTO;
}

/* Validates the server's 101 (RFC 6455 4.2.2 step 5 from the client's
 * side, 4.1 "the client MUST"); see http.h. */
int rc_ws_check_101(const struct rc_http_response *res, const char *key,
		    struct rc_span *protocol, struct rc_span *extensions,
		    const char **why)
{
	const struct rc_http_header *hs = res->headers, *h;
	size_t n = res->num_headers;
	const char *unused;
	char accept[29];

	if (!why)
		why = &unused;
	*why = NULL;
	if (protocol)
		*protocol = empty_span();
	if (extensions)
		*extensions = empty_span();

	if (res->status != 101)
		return fail(why, "server did not answer 101");
	if (!any_has_token(hs, n, "Upgrade", "websocket"))
		return fail(why, "101 without Upgrade: websocket");
	if (!any_has_token(hs, n, "Connection", "upgrade"))
		return fail(why, "101 without Connection: upgrade");
	if (count_named(hs, n, "Sec-WebSocket-Accept") != 1)
		return fail(why, "101 needs exactly one Sec-WebSocket-Accept");
	rc_ws_accept_key((struct rc_span){ key, strlen(key) }, accept);
	h = rc_http_header_find(hs, n, "Sec-WebSocket-Accept");
	if (accept[0] == '\0' || !span_eq(h->value, accept))
		return fail(why, "wrong Sec-WebSocket-Accept");
	/* We hand back one span each, so a second header would go unseen:
	 * refuse rather than run with an extension we never checked. */
	if (count_named(hs, n, "Sec-WebSocket-Protocol") > 1)
		return fail(why, "more than one Sec-WebSocket-Protocol");
	if (count_named(hs, n, "Sec-WebSocket-Extensions") > 1)
		return fail(why, "more than one Sec-WebSocket-Extensions");
	h = rc_http_header_find(hs, n, "Sec-WebSocket-Protocol");
	if (h && protocol)
		*protocol = h->value;
	h = rc_http_header_find(hs, n, "Sec-WebSocket-Extensions");
	if (h && extensions)
		*extensions = h->value;
	return 0;
}
