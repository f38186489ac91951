/* The server side of a connection before it is a WebSocket: the request
 * head (and body, for plain HTTP), the upgrade decision, the 101, and
 * keep-alive for plain HTTP requests.  Parsing is proto/http.c; this file
 * only owns the buffer and the decisions. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

static void next_request_done(struct rc_conn *c);

static int append_in(struct rc_conn *c, const uint8_t *p, size_t n)
{
	if (rc__buf_reserve(&c->in, n ? n : 1) < 0)
		return -ENOMEM;
	memcpy(c->in->data + c->in->len, p, n);
	c->in->len += n;
	return 0;
}

/* Answers with a short text body and closes after it is sent. */
void rc__http_refuse(struct rc_conn *c, int status, const char *reason,
		     const char *extra)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status,
			 rc_http_reason(status), reason ? reason : "");

	c->http_keepalive = false;
	/* Rate-limited by rc_log: a flood of bad requests cannot fill the disk. */
	if (rc_log_enabled(RC_LOG_INFO))
		rc_log(RC_LOG_INFO, "refused %s: %d %s: %s", rc_conn_peer(c)[0] ? rc_conn_peer(c) : "?",
		       status, rc_http_reason(status), reason ? reason : "");
	rc_conn_respond(c, status, "text/plain; charset=utf-8", extra, body, (size_t)n);
}

static void upgrade(struct rc_conn *c, const struct rc_http_request *req)
{
	const struct rc_server_config *cfg = rc__server_config(c->srv);
	const struct rc_options *o = &c->loop->opt;
	struct rc_ws_upgrade up;
	char ext[512], resp[1024];
	const char *ext_answer = NULL;
	ssize_t n;
	int status;

	if (rc_ws_upgrade_check(req, &up) < 0) {
		rc__http_refuse(c, up.status, up.reason,
		       up.status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL);
		return;
	}
	c->h = cfg->default_handlers;
	if (cfg->on_upgrade && (status = cfg->on_upgrade(c, req)) != 0) {
		rc__http_refuse(c, status, "refused", NULL);
		return;
	}
	c->accepted = true;
	if (o->deflate.enabled) {
		n = rc_http_header_join(req, "sec-websocket-extensions", ext, sizeof(ext));
		struct rc_span offers = { ext, n > 0 ? (size_t)n : 0 };
		if (n > 0 && rc_pmd_negotiate(offers, &o->deflate, &c->pmd) == 1 &&
		    rc_pmd_write_response(ext, sizeof(ext), &c->pmd) > 0) {
			c->pmd_on = true;
			ext_answer = ext;
		}
	}
	n = rc_ws_write_101(resp, sizeof(resp), up.key, NULL, ext_answer);
	struct rc_buf *b = n > 0 ? rc_buf_new((size_t)n) : NULL;
	if (!b) {
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return;
	}
	memcpy(b->data, resp, (size_t)n);
	b->len = (size_t)n;
	c->state = RC_CS_OPEN; /* so the 101 may be queued */
	rc__conn_enqueue(c, b);
	rc__conn_start_ws(c);
}

/* After the upgrade: the bytes behind the request head in c->in (frames
 * sent right behind it, which a client may do once it has the 101) go to the
 * frame reader, whatever their size; what it cannot take yet is held. */
static void upgrade_and_read_early(struct rc_conn *c, const struct rc_http_request *req,
				   size_t head)
{
	struct rc_buf *in = c->in;

	c->in = NULL; /* the frame reader's control-frame buffer from now on */
	upgrade(c, req);
	if (c->state == RC_CS_OPEN && in->len > head)
		rc__conn_feed(c, in->data + head, in->len - head);
	rc_buf_unref(in);
}

/* Handles the request at the start of c->in if it is complete.  Returns 1
 * if one was answered (the connection may take the next), 0 if more bytes
 * are needed, -1 if the connection left the HTTP state (upgraded,
 * refused, closing). */
static int next_request(struct rc_conn *c)
{
	const struct rc_options *o = &c->loop->opt;
	const struct rc_server_config *cfg = rc__server_config(c->srv);
	struct rc_http_limits lim = { o->max_http_head, RC_HTTP_MAX_HEADERS };
	struct rc_http_request req;
	uint64_t clen;
	int head, err;

	/* Parse only when it can succeed: a head ends with CRLF CRLF and a
	 * body with its length; before that, parsing again on every read
	 * would cost time quadratic in a trickled request's size. */
	if (c->http_need) {
		if (c->in->len < c->http_need)
			return 0;
	} else if (c->in->len <= o->max_http_head) {
		size_t from = c->http_scan > 3 ? c->http_scan - 3 : 0;
		if (!memmem(c->in->data + from, c->in->len - from, "\r\n\r\n", 4)) {
			c->http_scan = (uint32_t)c->in->len;
			return 0;
		}
	}
	c->http_scan = 0;
	head = rc_http_parse_request(c->in->data, c->in->len, &lim, &req);
	if (head == -EAGAIN)
		return 0;
	c->http_answered = false; /* a new request, whatever becomes of it */
	c->http_head = head >= 0 && req.method.len == 4 && memcmp(req.method.p, "HEAD", 4) == 0;
	if (head < 0) {
		rc__http_refuse(c, req.status, "malformed request", NULL);
		return -1;
	}
	if (rc_http_is_upgrade(&req)) {
		upgrade_and_read_early(c, &req, (size_t)head);
		return -1;
	}
	err = rc_http_content_length(&req, &clen);
	if (err < 0) {
		rc__http_refuse(c, err == -ENOTSUP ? 501 : 400, err == -ENOTSUP
			  ? "chunked bodies are not accepted; send Content-Length"
			  : "bad Content-Length", NULL);
		return -1;
	}
	if (clen > o->max_http_body) {
		rc__http_refuse(c, 413, "body over max_http_body", NULL);
		return -1;
	}
	if (c->in->len < (size_t)head + (size_t)clen) {
		c->http_need = (uint32_t)(head + clen);
		return 0; /* the body is still coming */
	}
	c->http_need = 0;
	const struct rc_http_header *conn_h =
		rc_http_header_find(req.headers, req.num_headers, "connection");
	c->http_keepalive = req.minor_version == 1
		? !(conn_h && rc_http_token_list_has(conn_h->value, "close"))
		: (conn_h && rc_http_token_list_has(conn_h->value, "keep-alive"));
	if (cfg->on_http)
		cfg->on_http(c, &req, c->in->data + head, (size_t)clen);
	else
		rc__http_refuse(c, 426, "this endpoint speaks WebSocket only", "Upgrade: websocket\r\n");
	if (c->sh) {
		/* Answered with a stream: no request follows this one. */
		rc_buf_unref(c->in);
		c->in = NULL;
	}
	if (c->state != RC_CS_HTTP || !c->in)
		return -1;
	c->http_used = (uint32_t)(head + clen);
	if (!c->http_answered) {
		/* Answered later (rc_conn_respond): the request stays in c->in
		 * and no other is read until then, so answers keep the order
		 * of the requests. */
		c->http_pending = true;
		return 0;
	}
	next_request_done(c);
	return 1;
}

/* The request at the start of c->in was answered: drop it, so a pipelined
 * one comes next, and count the connection as active. */
static void next_request_done(struct rc_conn *c)
{
	memmove(c->in->data, c->in->data + c->http_used, c->in->len - c->http_used);
	c->in->len -= c->http_used;
	rc__timer_arm(c, RC_T_HANDSHAKE, c->loop->opt.handshake_timeout_ms);
}

/* Bytes arriving before the connection is a WebSocket (server side);
 * returns the bytes taken.  c->in holds at most one whole request
 * (max_http_head + max_http_body), so a request is always complete, or
 * refused, before more is taken: bytes are never dropped and request
 * boundaries hold.  Pipelined requests are answered one at a time while
 * the connection's budget allows; past it the rest waits (the caller holds
 * it and reading pauses) until the answers drain. */
size_t rc__http_feed(struct rc_conn *c, uint8_t *p, size_t n)
{
	const struct rc_options *o = &c->loop->opt;
	size_t limit = o->max_http_head + o->max_http_body, used = 0;

	for (;;) {
		if (c->state != RC_CS_HTTP)
			break;
		if (!rc__conn_room(c) || c->http_pending)
			return used; /* the rest waits (held, reading paused) */
		int r = c->in && c->in->len ? next_request(c) : 0;
		if (r != 0 || c->http_pending)
			continue;
		size_t have = c->in ? c->in->len : 0, take = n - used;
		if (!take)
			return n;
		if (have >= limit) { /* cannot happen: a full head parses or is 431 */
			rc__http_refuse(c, 431, "request over max_http_head + max_http_body", NULL);
			break;
		}
		if (take > limit - have)
			take = limit - have;
		if (append_in(c, p + used, take) < 0) {
			rc__conn_abort(c, RC_CLOSE_ABNORMAL);
			return n;
		}
		used += take;
	}
	/* Upgraded: the rest are frames, behind any held early ones. */
	if ((c->state == RC_CS_OPEN || c->state == RC_CS_CLOSING) && !c->held && used < n)
		return used + rc__ws_read(c, p + used, n - used);
	/* Refused or closing: the rest is discarded until EOF (DRAIN). */
	return c->state == RC_CS_OPEN || c->state == RC_CS_CLOSING ? used : n;
}

/* Answers a plain HTTP request (see rc.h). */
int rc_conn_respond(struct rc_conn *c, int status, const char *content_type,
		    const char *extra_headers, const void *body, size_t len)
{
	size_t head_room = 512 + (extra_headers ? strlen(extra_headers) : 0);
	struct rc_buf *b;
	ssize_t n;

	if (c->state != RC_CS_HTTP || c->client || c->http_answered)
		return -EPIPE;
	b = rc_buf_new(head_room + len);
	if (!b)
		return -ENOMEM;
	n = rc_http_write_response((char *)b->data, b->cap, status, content_type,
				   extra_headers, body, len, c->http_keepalive);
	if (n < 0) {
		rc_buf_unref(b);
		return (int)n;
	}
	/* HEAD: the same head (Content-Length included), no body (RFC 9110
	 * 9.3.2); 1xx, 204 and 304 answers carry none anyway. */
	b->len = (size_t)n - (c->http_head && status >= 200 && status != 204 && status != 304
			      ? len : 0);
	rc__conn_enqueue(c, b);
	c->http_answered = true;
	if (!c->http_keepalive) {
		/* Close after the answer is flushed: DRAIN shuts down our side
		 * once the queue is empty. */
		c->state = RC_CS_DRAIN;
		rc_buf_unref(c->in);
		c->in = NULL;
		c->http_pending = false;
		return 0;
	}
	if (c->http_pending) {
		/* A deferred answer: the requests behind it may be read now. */
		c->http_pending = false;
		next_request_done(c);
		rc__conn_resume(c);
	}
	return 0;
}
