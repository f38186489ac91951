/* The RFC 6455 receive state machine of a connection: frame headers
 * (possibly split across buffers), payload unmasked in place, messages
 * reassembled or handed over without a copy when whole in one buffer,
 * inflated piece by piece with an exact size bound, text validated as it
 * arrives (fail at the first bad byte), control frames answered.  Sending,
 * closing and the connection's life cycle are conn.c's.
 *
 * Anything that must outlive the provided buffer (a split header, a
 * message spanning frames or buffers, a control frame cut in two) is copied
 * into the connection's pooled buffers: the buffer goes back to the kernel
 * as soon as the completion is handled. */
#include <errno.h>
#include <string.h>

#include "core/internal.h"

static void deliver(struct rc_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
{
	c->cur_data = data;
	c->cur_len = len;
	if (c->h && c->h->on_message)
		c->h->on_message(c, opcode, data, len);
	c->cur_data = NULL;
	rc_buf_unref(c->kept);
	c->kept = NULL;
}

/* Inside on_message: keep the message past the handler (see rc.h). */
struct rc_buf *rc_conn_keep_message(struct rc_conn *c)
{
	struct rc_buf *b;

	if (!c->cur_data)
		return NULL;
	if (c->msg && c->cur_data == c->msg->data)
		return rc_buf_ref(c->msg);
	if (c->kept)
		return rc_buf_ref(c->kept);
	b = rc_buf_new(c->cur_len);
	if (!b)
		return NULL;
	memcpy(b->data, c->cur_data, c->cur_len);
	b->len = c->cur_len;
	c->kept = b;
	return rc_buf_ref(b);
}

/* Payload bytes of a data frame (already unmasked).  last: the final bytes
 * of the message. */
static int on_data(struct rc_conn *c, const uint8_t *p, size_t n, bool last)
{
	uint64_t max = c->loop->opt.max_message_size;
	size_t before = c->msg ? c->msg->len : 0;
	int ret;

	if (c->msg_z) {
		if ((ret = rc__conn_inflater(c)) < 0)
			return ret;
		for (;;) {
			size_t room = 4096, len;
			if (before + room > max)
				room = max - before;
			if ((ret = rc__buf_reserve(&c->msg, room ? room : 1)) < 0)
				return ret;
			len = c->msg->len;
			size_t cap = c->msg->cap < max ? c->msg->cap : (size_t)max;
			ret = rc_inflate_stream(c->inf, &p, &n, last, c->msg->data, cap, &len);
			c->msg->len = len;
			if (ret != -ENOBUFS)
				break;
			if (len >= max)
				return -EMSGSIZE;
			if ((ret = rc__buf_reserve(&c->msg, c->msg->cap)) < 0)
				return ret;
		}
		if (ret < 0)
			return ret;
	} else {
		if (before + n > max)
			return -EMSGSIZE;
		if ((ret = rc__buf_reserve(&c->msg, n)) < 0)
			return ret;
		memcpy(c->msg->data + c->msg->len, p, n);
		c->msg->len += n;
	}
	if (c->msg_op == RC_OP_TEXT &&
	    rc_utf8_feed(&c->utf8, c->msg->data + before, c->msg->len - before, NULL) < 0)
		return -EILSEQ;
	return 0;
}

static int end_message(struct rc_conn *c)
{
	uint8_t op = c->msg_op;

	if (op == RC_OP_TEXT && !rc_utf8_done(&c->utf8))
		return -EILSEQ;
	if (c->msg) {
		deliver(c, op, c->msg->data, c->msg->len);
		/* Small buffers are kept for the next message; a large one goes
		 * back so an idle connection holds little.  One the handler kept
		 * (rc_conn_keep_message) is the user's now: reusing it would
		 * overwrite the kept message with the next one. */
		if (c->msg && (c->msg->cap > 16384 ||
			       atomic_load_explicit(&c->msg->refs, memory_order_acquire) > 1)) {
			rc_buf_unref(c->msg);
			c->msg = NULL;
		} else if (c->msg) {
			c->msg->len = 0;
		}
	} else {
		deliver(c, op, (const uint8_t *)"", 0);
	}
	return 0;
}

static int on_control(struct rc_conn *c, const uint8_t *p, size_t n)
{
	uint16_t code;
	const uint8_t *reason;
	size_t rlen;
	int ret;

	switch (c->fh.opcode) {
	case RC_OP_PING:
		if (!c->loop->opt.manual_pong && !c->close_sent)
			rc__conn_send_local(c, RC_OP_PONG, p, n);
		if (c->h && c->h->on_ping)
			c->h->on_ping(c, p, n);
		return 0;
	case RC_OP_PONG:
		if (c->tkind == RC_T_PONG)
			rc__timer_arm(c, RC_T_IDLE, c->loop->opt.idle_timeout_ms);
		if (c->h && c->h->on_pong)
			c->h->on_pong(c, p, n);
		return 0;
	case RC_OP_CLOSE:
		ret = rc_close_parse(p, n, &code, &reason, &rlen);
		if (ret < 0)
			return ret;
		c->close_rcvd = true;
		c->peer_close = code;
		rc__conn_call_on_close(c, code, reason, rlen);
		if (!c->close_sent) {
			/* Echo the code and reason (RFC 6455 section 5.5.1): the
			 * peer sees its close was understood.  An empty payload
			 * (1005) is answered with an empty one. */
			rc__conn_send_close(c, code, (const char *)reason, rlen);
		}
		rc__conn_enter(c, RC_CS_CLOSING, c->st);
		rc__timer_arm(c, RC_T_CLOSE, c->loop->opt.close_timeout_ms);
		rc__conn_maybe_finish(c);
		return 0;
	}
	return -EPROTO;
}

static int begin_frame(struct rc_conn *c)
{
	uint64_t max = c->loop->opt.max_message_size;
	int ret = rc_msg_state_next(&c->ms, &c->fh);

	if (ret < 0)
		return ret;
	if (c->fh.opcode >= RC_OP_CLOSE)
		return 0;
	if (c->fh.opcode != RC_OP_CONT) { /* first frame of a message */
		rc_utf8_init(&c->utf8);
		c->msg_op = c->fh.opcode;
		c->msg_z = c->fh.rsv1;
	}
	if (!c->msg_z && (c->msg ? c->msg->len : 0) + c->fh.payload_len > max)
		return -EMSGSIZE;
	return 0;
}

/* Frame payload bytes p[0..n) (n <= remaining), unmasked here. */
static int on_payload(struct rc_conn *c, uint8_t *p, size_t n)
{
	bool frame_end = n == c->remaining;
	int ret;

	if (c->fh.masked)
		c->mask_off = rc_ws_mask(p, n, c->fh.mask, c->mask_off);
	c->remaining -= n;
	if (c->fh.opcode >= RC_OP_CLOSE) {
		if (frame_end && c->fh.payload_len == n) /* whole in this buffer */
			return on_control(c, p, n);
		if ((ret = rc__buf_reserve(&c->in, n)) < 0)
			return ret;
		memcpy(c->in->data + c->in->len, p, n);
		c->in->len += n;
		if (!frame_end)
			return 0;
		ret = on_control(c, c->in->data, c->in->len);
		if (c->in)
			c->in->len = 0;
		return ret;
	}
	/* Zero-copy: an uncompressed single-frame message, whole in this buffer. */
	if (frame_end && c->fh.fin && !c->msg_z && c->fh.payload_len == n &&
	    (!c->msg || c->msg->len == 0)) {
		uint8_t op = c->msg_op;
		if (op == RC_OP_TEXT &&
		    (rc_utf8_feed(&c->utf8, p, n, NULL) < 0 || !rc_utf8_done(&c->utf8)))
			return -EILSEQ;
		deliver(c, op, p, n);
		return 0;
	}
	if ((ret = on_data(c, p, n, frame_end && c->fh.fin)) < 0)
		return ret;
	if (frame_end && c->fh.fin)
		return end_message(c);
	return 0;
}

/* Reads bytes received on an open connection; returns the bytes taken.
 * Before each frame the budget is checked: once the connection holds
 * max_backpressure (echoes, pongs, answers the peer is not reading), the
 * rest waits, so a peer that never reads cannot make us queue without
 * bound.  Everything else is taken (protocol errors discard the rest). */
size_t rc__ws_read(struct rc_conn *c, uint8_t *p, size_t n)
{
	struct rc_frame_rules rules = {
		.expect_masked = !c->client,
		.allow_rsv1 = c->pmd_on,
		.max_payload = c->loop->opt.max_frame_size,
	};
	size_t n0 = n;
	int ret = 0;

	/* Nothing after the peer's close frame is read (RFC 6455 5.5.1: it
	 * is the last frame it sends); on_close has run already. */
	while (n && !c->fail_fast && !c->close_rcvd &&
	       (c->state == RC_CS_OPEN || c->state == RC_CS_CLOSING)) {
		if (!c->in_payload && !c->hlen && !rc__conn_room(c))
			return n0 - n;
		if (!c->in_payload) {
			size_t take = sizeof(c->hbuf) - c->hlen;
			if (take > n)
				take = n;
			memcpy(c->hbuf + c->hlen, p, take);
			ret = rc_frame_parse_header(c->hbuf, c->hlen + take, &rules, &c->fh);
			if (ret == -EAGAIN) {
				c->hlen += take;
				return n0;
			}
			if (ret < 0)
				break;
			size_t used = (size_t)ret - c->hlen;
			p += used;
			n -= used;
			c->hlen = 0;
			if ((ret = begin_frame(c)) < 0)
				break;
			c->in_payload = true;
			c->remaining = c->fh.payload_len;
			c->mask_off = 0;
			if (c->remaining == 0) {
				c->in_payload = false;
				if ((ret = on_payload(c, p, 0)) < 0)
					break;
				continue;
			}
			if (!n)
				return n0;
		}
		size_t chunk = n < c->remaining ? n : (size_t)c->remaining;
		c->in_payload = chunk < c->remaining;
		if ((ret = on_payload(c, p, chunk)) < 0)
			break;
		p += chunk;
		n -= chunk;
	}
	if (ret < 0)
		rc__conn_fail(c, ret);
	return n0;
}

/* The WebSocket states' reader: input while OPEN is a sign of life (the
 * idle timer starts again); CLOSING reads only for the peer's close. */
static size_t ws_state_read(struct rc_conn *c, uint8_t *p, size_t n)
{
	if (c->state == RC_CS_OPEN && c->tkind == RC_T_IDLE)
		rc__timer_arm(c, RC_T_IDLE, c->loop->opt.idle_timeout_ms);
	return rc__ws_read(c, p, n);
}

const struct rc_conn_reader rc__ws_state = { .read = ws_state_read };

/* The connection becomes a WebSocket (after a 101 either way). */
void rc__conn_start_ws(struct rc_conn *c)
{
	rc__conn_enter(c, RC_CS_OPEN, &rc__ws_state);
	c->opened = true;
	rc__timer_arm(c, RC_T_IDLE, c->loop->opt.idle_timeout_ms);
	if (c->h && c->h->on_open)
		c->h->on_open(c);
}

/* Feeds bytes to the frame reader; what it cannot take now is held (see
 * rc__conn_hold), so callers with bytes in hand (an upgrade's early frames)
 * lose nothing. */
void rc__conn_feed(struct rc_conn *c, uint8_t *p, size_t n)
{
	size_t used = rc__ws_read(c, p, n);

	if (used < n)
		rc__conn_hold(c, p + used, n - used);
}

