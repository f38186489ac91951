/* HTTP/1.1 for the WebSocket opening handshake (RFC 7230, RFC 6455 section 4)
 * and for the small plain-HTTP API: request-head parser, upgrade validation,
 * Sec-WebSocket-Accept, response writers, and the client side of the
 * handshake.  Sans-I/O: the caller owns every buffer; parsed strings are
 * spans into the caller's buffer and stay valid as long as it does. */
#ifndef RC_PROTO_HTTP_H
#define RC_PROTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/types.h"

struct rc_http_limits {
	size_t max_head;     /* bytes of request line + headers (431 past it) */
	size_t max_headers;  /* header count, at most RC_HTTP_MAX_HEADERS (431) */
};

/* Parses a request head from buf[0..len).  Incremental in the simplest way:
 * call again with the same buffer grown; it re-parses from the start (heads
 * are small).  Returns the head length (through the blank line) when
 * complete, -EAGAIN when more is needed, or -EINVAL with req->status set:
 * 400 malformed, 431 head or header count over the limits, 505 a version
 * other than HTTP/1.0 or 1.1.  -EAGAIN is never returned once len exceeds
 * max_head (that is 431).  Never allocates, never reads past buf[len - 1]
 * nor past max_head; bytes after the head (a body) are left alone.
 *
 * Strict on purpose: lines end in CRLF only (a bare LF or CR is 400),
 * obs-fold and whitespace before a header's colon are 400, control bytes in
 * a value are 400.  Empty lines before the request line are skipped (RFC
 * 9112 2.2).  Errors are found at the first bad byte, so a prefix of a head
 * gives either -EAGAIN or the very verdict of the whole head (a garbage
 * first line is 400 at once, not after max_head bytes).  lim may be NULL:
 * 8 KiB and RC_HTTP_MAX_HEADERS; max_headers is capped at
 * RC_HTTP_MAX_HEADERS.  On -EAGAIN or -EINVAL the other fields of req are
 * unspecified; on success req->status is 0.  The target may be in any form
 * (origin, absolute, "*"): path is simply everything before the first '?'. */
int rc_http_parse_request(const uint8_t *buf, size_t len,
			  const struct rc_http_limits *lim,
			  struct rc_http_request *req);

/* Case-insensitive header lookup; the first match, or NULL. */
const struct rc_http_header *rc_http_header_find(const struct rc_http_header *h,
						 size_t n, const char *name);

/* True if the comma-separated header value contains token (case-insensitive,
 * optional whitespace around elements, empty elements ignored).  Looks at one
 * header line: for a list split over repeated headers check each one. */
bool rc_http_token_list_has(struct rc_span value, const char *token);

/* Percent-decodes src into out (cap bytes).  Returns the decoded length or
 * -EINVAL (bad escape, or a decoded NUL) / -ENOSPC.  '+' is left as is
 * (paths); out may equal src.p.  Input is checked before anything is
 * written: a bad escape is -EINVAL whatever cap is, and on error out is
 * untouched.  No NUL terminator is written. */
ssize_t rc_http_percent_decode(struct rc_span src, char *out, size_t cap);

/* Finds name in an "a=1&b=2" query; the raw (still encoded) value in *val.
 * Returns true if present ("a" with no '=' gives an empty value).  name is
 * compared byte for byte with the still-encoded key; the first match wins;
 * val may be NULL. */
bool rc_http_query_get(struct rc_span query, const char *name,
		       struct rc_span *val);

/* Joins the values of every header called name (case-insensitive) with
 * ", ", the way RFC 9110 5.3 combines a list split over several lines; empty
 * values are skipped.  For Sec-WebSocket-Extensions and
 * Sec-WebSocket-Protocol, which clients may repeat.  Writes a NUL after the
 * result (cap counts it).  Returns the length without the NUL, -ENOENT if no
 * such header, or -ENOSPC. */
ssize_t rc_http_header_join(const struct rc_http_request *req,
			    const char *name, char *out, size_t cap);

/* The request body's length from Content-Length (0 if absent).  Returns 0,
 * -ENOTSUP if Transfer-Encoding is present (chunked request bodies are not
 * supported: answer 501), or -EINVAL for a bad or repeated Content-Length
 * (answer 400; two lengths are a request-smuggling vector). */
int rc_http_content_length(const struct rc_http_request *req, uint64_t *len);

/* Server side of the WebSocket handshake (RFC 6455 section 4.2.1). */
struct rc_ws_upgrade {
	struct rc_span key;         /* Sec-WebSocket-Key, 24 base64 chars */
	struct rc_span protocols;   /* Sec-WebSocket-Protocol, may be empty;
				     * the first such header, like extensions */
	struct rc_span extensions;  /* the first Sec-WebSocket-Extensions header;
				     * rc_http_header_join() gives them all */
	int status;                 /* on error: HTTP status to answer */
	const char *reason;         /* on error: a short human reason */
};

/* True if the request asks for a WebSocket upgrade at all (Upgrade header
 * with the token "websocket"): such requests are validated with
 * rc_ws_upgrade_check(), the rest are plain HTTP. */
bool rc_http_is_upgrade(const struct rc_http_request *req);

/* Validates an upgrade request, checking in this order: GET (else 405),
 * HTTP/1.1, exactly one non-empty Host, Upgrade: websocket, Connection
 * containing "upgrade" (these 400), Sec-WebSocket-Version 13 (missing or
 * other: 426, and the response must then carry "Sec-WebSocket-Version: 13";
 * repeated: 400), then exactly one Sec-WebSocket-Key that is the canonical
 * base64 of 16 bytes (else 400).  The version comes before the key so that
 * an old-draft client without a key still learns our version.  Upgrade and
 * Connection tokens may be in any of several such headers.  Returns 0, or
 * -EINVAL with up->status and up->reason (a static string) set; spans not
 * found are empty, never NULL.  Several Sec-WebSocket-Protocol or
 * Sec-WebSocket-Extensions headers are reported through up->protocols and
 * up->extensions only as the first one; rc_http_header_join() gives all. */
int rc_ws_upgrade_check(const struct rc_http_request *req,
			struct rc_ws_upgrade *up);

/* Computes Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)), 28
 * characters plus a NUL written to out.  If OpenSSL fails (out of memory)
 * out is the empty string, which no peer accepts. */
void rc_ws_accept_key(struct rc_span key, char out[29]);

/* Picks the first protocol in the client's list (comma-separated, in the
 * client's order of preference) that appears in supported (NULL-terminated,
 * may be NULL).  Names compare case-sensitively.  Returns the server's name
 * for it, or NULL. */
const char *rc_ws_select_protocol(struct rc_span offered,
				  const char *const *supported);

/* Writes "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection,
 * Sec-WebSocket-Accept (from key) and, when not NULL or empty,
 * Sec-WebSocket-Protocol and Sec-WebSocket-Extensions.  Returns the length
 * (no NUL is written), -ENOSPC, -EINVAL if protocol or extensions holds a
 * CR or LF, or -ENOMEM if OpenSSL could not hash. */
ssize_t rc_ws_write_101(char *out, size_t cap, struct rc_span key,
			const char *protocol, const char *extensions);

/* Writes a complete plain HTTP/1.1 response: status line with the standard
 * reason phrase, Content-Type (if not NULL), Content-Length, Connection
 * keep-alive or close, extra_headers verbatim (each "Name: value\r\n", may be
 * NULL), then the body.  Returns the total length (no NUL is written) or
 * -ENOSPC; -EINVAL for a status outside 100..999, a CR/LF in content_type,
 * extra_headers not ending in CRLF, or a body on 1xx/204/304 (which get no
 * Content-Length, RFC 9110 8.6).  No Date header: pass it in extra_headers. */
ssize_t rc_http_write_response(char *out, size_t cap, int status,
			       const char *content_type,
			       const char *extra_headers,
			       const void *body, size_t body_len,
			       bool keep_alive);

/* Writes the head of a response whose body is a stream of unknown length
 * (Server-Sent Events): like rc_http_write_response's head, without
 * Content-Length and with "Connection: close", so the body ends when the
 * connection does (RFC 9112 6.3, rule 8).  Returns the length, -ENOSPC, or
 * -EINVAL (as rc_http_write_response, and for a status that has no body). */
ssize_t rc_http_write_stream_head(char *out, size_t cap, int status,
				  const char *content_type,
				  const char *extra_headers);

/* The standard reason phrase for a status ("Not Found"), "Unknown" if none. */
const char *rc_http_reason(int status);

/* Client side of the handshake. */

/* Fills key with a fresh random Sec-WebSocket-Key (16 random bytes from
 * OpenSSL, base64: 24 characters plus NUL).  Returns 0 or -EIO. */
int rc_ws_make_key(char key[25]);

/* Writes the GET upgrade request.  host is the Host header value
 * ("example.com:8080"), path the request target (NULL or "" mean "/");
 * protocols, extensions and extra_headers (each "Name: value\r\n") may be
 * NULL.  Returns the length (no NUL is written) or -ENOSPC; -EINVAL if host
 * or key is NULL, a value holds CR/LF, path a space or control byte, or
 * extra_headers does not end in CRLF. */
ssize_t rc_ws_write_request(char *out, size_t cap, const char *host,
			    const char *path, const char *key,
			    const char *protocols, const char *extensions,
			    const char *extra_headers);

struct rc_http_response {
	int minor_version;
	int status;
	struct rc_span reason;
	size_t num_headers;
	struct rc_http_header headers[RC_HTTP_MAX_HEADERS];
};

/* Parses a response head.  Returns the head length, -EAGAIN, or -EINVAL
 * (malformed, a version other than HTTP/1.0 or 1.1, more than
 * RC_HTTP_MAX_HEADERS headers, or longer than max_head).  Same strict line
 * rules as rc_http_parse_request; the SP before an empty reason phrase may
 * be missing. */
int rc_http_parse_response(const uint8_t *buf, size_t len, size_t max_head,
			   struct rc_http_response *res);

/* Validates a 101 answer to a request sent with key: status 101, Upgrade
 * websocket, Connection upgrade, exactly one and the right
 * Sec-WebSocket-Accept, at most one Sec-WebSocket-Protocol and one
 * Sec-WebSocket-Extensions header.  On success *protocol and *extensions
 * (may be NULL) receive the server's choices (empty spans if none); the
 * caller checks that the protocol is one it offered and the extension with
 * the deflate module.  Returns 0, or -EPROTO with *why (may be NULL) set to
 * a short static reason. */
int rc_ws_check_101(const struct rc_http_response *res, const char *key,
		    struct rc_span *protocol, struct rc_span *extensions,
		    const char **why);

#endif
