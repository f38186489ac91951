/* The server side of a connection before it is a WebSocket: the request
 * head (and body, for plain HTTP), the upgrade decision, the 101, and
 * keep-alive for plain HTTP requests.  Parsing is proto/http.c; this file
 * only owns the buffer and the decisions. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

static int append_in(struct rc_conn *c, const uint8_t *p, size_t n, size_t limit)
{
	size_t have = c->in ? c->in->len : 0;

	if (have + n > limit)
		n = limit > have ? limit - have : 0;
	if (rc__buf_reserve(&c->in, n ? n : 1) < 0)
		return -ENOMEM;
	memcpy(c->in->data + c->in->len, p, n);
	c->in->len += n;
	return 0;
}

/* Answers with a short text body and closes after it is sent. */
static void refuse(struct rc_conn *c, int status, const char *reason,
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
		refuse(c, up.status, up.reason,
		       up.status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL);
		return;
	}
	c->h = cfg->default_handlers;
	if (cfg->on_upgrade && (status = cfg->on_upgrade(c, req)) != 0) {
		refuse(c, status, "refused", NULL);
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

/* Bytes arriving before the connection is a WebSocket (server side). */
void rc__http_feed(struct rc_conn *c, const uint8_t *p, size_t n)
{
	const struct rc_options *o = &c->loop->opt;
	const struct rc_server_config *cfg = rc__server_config(c->srv);
	struct rc_http_limits lim = { o->max_http_head, RC_HTTP_MAX_HEADERS };
	struct rc_http_request req;

	if (append_in(c, p, n, o->max_http_head + o->max_http_body + 1) < 0) {
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return;
	}
	while (c->state == RC_CS_HTTP && c->in && c->in->len) {
		int head = rc_http_parse_request(c->in->data, c->in->len, &lim, &req);
		if (head == -EAGAIN)
			return;
		c->http_head = head >= 0 && req.method.len == 4 &&
			       memcmp(req.method.p, "HEAD", 4) == 0;
		if (head < 0) {
			refuse(c, req.status, "malformed request", NULL);
			return;
		}
		if (rc_http_is_upgrade(&req)) {
			size_t rest = c->in->len - (size_t)head;
			uint8_t early[4096];
			/* Frames sent right behind the request (allowed once
			 * the client has the 101; be lenient). */
			if (rest > sizeof(early)) {
				refuse(c, 400, "data after the upgrade request", NULL);
				return;
			}
			memcpy(early, c->in->data + head, rest);
			upgrade(c, &req);
			rc_buf_unref(c->in);
			c->in = NULL;
			if (rest && c->state == RC_CS_OPEN)
				rc__conn_feed(c, early, rest);
			return;
		}
		uint64_t clen;
		int err = rc_http_content_length(&req, &clen);
		if (err < 0) {
			refuse(c, err == -ENOTSUP ? 501 : 400, err == -ENOTSUP
				  ? "chunked bodies are not accepted; send Content-Length"
				  : "bad Content-Length", NULL);
			return;
		}
		if (clen > o->max_http_body) {
			refuse(c, 413, "body over max_http_body", NULL);
			return;
		}
		if (c->in->len < (size_t)head + (size_t)clen)
			return; /* the body is still coming */
		const struct rc_http_header *conn_h =
			rc_http_header_find(req.headers, req.num_headers, "connection");
		c->http_keepalive = req.minor_version == 1
			? !(conn_h && rc_http_token_list_has(conn_h->value, "close"))
			: (conn_h && rc_http_token_list_has(conn_h->value, "keep-alive"));
		if (cfg->on_http)
			cfg->on_http(c, &req, c->in->data + head, (size_t)clen);
		else
			refuse(c, 426, "this endpoint speaks WebSocket only", "Upgrade: websocket\r\n");
		if (c->state != RC_CS_HTTP || !c->in)
			return;
		/* Pipelined requests: drop the one just answered. */
		size_t used = (size_t)head + (size_t)clen;
		memmove(c->in->data, c->in->data + used, c->in->len - used);
		c->in->len -= used;
		rc__timer_arm(c, RC_T_HANDSHAKE, o->handshake_timeout_ms);
	}
}

/* Answers a plain HTTP request (see rc.h). */
int rc_conn_respond(struct rc_conn *c, int status, const char *content_type,
		    const char *extra_headers, const void *body, size_t len)
{
	size_t head_room = 512 + (extra_headers ? strlen(extra_headers) : 0);
	struct rc_buf *b = rc_buf_new(head_room + len);
	ssize_t n;

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
	if (!c->http_keepalive) {
		/* Close after the answer is flushed: DRAIN shuts down our side
		 * once the queue is empty. */
		c->state = RC_CS_DRAIN;
		rc_buf_unref(c->in);
		c->in = NULL;
	}
	return 0;
}
