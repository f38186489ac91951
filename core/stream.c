/* Byte streams: a connection that carries plain bytes instead of WebSocket
 * frames (rc.h, "Byte streams").  A server stream is the body of a response
 * of unknown length (Server-Sent Events); a client stream is a dialed TCP or
 * TLS connection (client.c dials it and calls rc__stream_open).  Both use
 * the connection's send queue, budget and teardown unchanged: a stream is
 * one more state of rc_conn, not another kind of object. */
#include <errno.h>
#include <string.h>

#include "core/internal.h"

/* The connection is a stream from now on (the client side, connected). */
void rc__stream_open(struct rc_conn *c)
{
	rc__conn_enter(c, RC_CS_STREAM, &rc__stream_state);
	c->opened = true;
	rc__timer_disarm(c);
	if (c->sh->on_open)
		c->sh->on_open(c);
}

/* Input in the stream state.  Client streams hand it to on_data; a server
 * stream's peer has nothing more to say (its request was the last), so its
 * bytes are dropped: reading goes on only to see the close. */
size_t rc__stream_read(struct rc_conn *c, uint8_t *p, size_t n)
{
	if (c->client && c->sh->on_data)
		c->sh->on_data(c, p, n);
	return n;
}

/* Ends a stream: what is queued is flushed (or, with drop_unsent, only what
 * already started to go out), then our side is shut down and the peer's EOF
 * awaited, bounded by close_timeout_ms (conn.c's DRAIN). */
void rc__stream_end(struct rc_conn *c, bool drop_unsent)
{
	if (drop_unsent)
		rc__conn_drop_unsent(c);
	rc__conn_enter(c, RC_CS_DRAIN, NULL);
	rc__timer_arm(c, RC_T_CLOSE, c->loop->opt.close_timeout_ms);
	rc__conn_maybe_finish(c);
}

const struct rc_conn_reader rc__stream_state = {
	.read = rc__stream_read,
	.end = rc__stream_end,
};

/* Answers the current request with a streamed body (see rc.h). */
int rc_conn_respond_stream(struct rc_conn *c, int status, const char *content_type,
			   const char *extra_headers, const struct rc_stream_handlers *h)
{
	size_t room = 512 + (extra_headers ? strlen(extra_headers) : 0);
	struct rc_buf *b;
	ssize_t n;

	if (c->state != RC_CS_HTTP || c->client || c->http_answered || !h)
		return -EINVAL;
	b = rc_buf_new(room);
	if (!b)
		return -ENOMEM;
	n = rc_http_write_stream_head((char *)b->data, b->cap, status, content_type,
				      extra_headers);
	if (n < 0) {
		rc_buf_unref(b);
		return (int)n;
	}
	b->len = (size_t)n;
	c->sh = h;
	c->http_keepalive = false;
	/* The request buffer goes when on_http returns (http_conn.c): the
	 * handler may still hold pointers into it. */
	c->http_answered = true;
	rc__conn_enter(c, RC_CS_STREAM, &rc__stream_state);
	if (c->http_pending) { /* answered later: on_http is long gone */
		c->http_pending = false;
		rc_buf_unref(c->in);
		c->in = NULL;
	}
	rc__timer_disarm(c);
	rc__conn_enqueue(c, b);
	if (c->http_head)
		rc__stream_end(c, false);
	return 0;
}

/* Queues a copy of data on a stream (see rc.h). */
int rc_stream_send(struct rc_conn *c, const void *data, size_t len)
{
	struct rc_buf *b = rc_buf_new(len ? len : 1);
	int ret;

	if (!b)
		return -ENOMEM;
	memcpy(b->data, data, len);
	b->len = len;
	ret = rc_stream_send_buf(c, b);
	rc_buf_unref(b);
	return ret;
}

/* Queues a reference to b on a stream (see rc.h). */
int rc_stream_send_buf(struct rc_conn *c, struct rc_buf *b)
{
	/* The state is the owner's to read; a stream that is not (yet)
	 * writable there drops the bytes when they arrive (conn.c). */
	if (rc_loop_current() == c->loop && c->state != RC_CS_STREAM)
		return -EPIPE;
	return rc__conn_send_buf(c, b);
}
