/* A WebSocket connection: the send queue of frame references, the close
 * handshake and the connection's life cycle (the receive state machine is
 * ws_recv.c).
 *
 * Send: the queue holds references to immutable frames; at most one sendmsg
 * is in flight per socket, and everything queued meanwhile goes in the next
 * one (bytes never reorder, batching grows with load).
 *
 * Life cycle: the loop holds one reference while the descriptor lives; the
 * descriptor is closed only when no SQE names the connection (inflight == 0),
 * and the memory is returned when the last reference drops. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"

static void hook_loop(struct rc_loop *l);

const struct rc_transport rc__plain_transport = { .recv = rc__conn_input };

/* Allocates a connection on l for descriptor fd (direct if fixed), in no
 * state yet: its creator enters the first (rc__conn_enter). */
struct rc_conn *rc__conn_alloc(struct rc_loop *l, int fd, bool fixed)
{
	struct rc_conn *c = rc__pool_alloc(l->pool, sizeof(*c));

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	hook_loop(l);
	c->tp = &rc__plain_transport;
	c->loop = l;
	c->srv = l->srv;
	c->fd = fd;
	c->fixed = fixed;
	atomic_init(&c->refs, 1);
	rc_list_init(&c->timer);
	rc_list_add_tail(&l->conns, &c->all);
	__atomic_store_n(&l->nconns, l->nconns + 1, __ATOMIC_RELAXED); /* rc_loop_stats */
	return c;
}

static void set_fd(struct io_uring_sqe *sqe, const struct rc_conn *c)
{
	if (c->fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
}

/* Arms the multishot recv (a no-op while armed). */
void rc__conn_arm_recv(struct rc_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->recv_armed || c->state == RC_CS_DEAD)
		return;
	c->recv_armed = true;
	c->inflight++;
	if (rc__loop_epoll(c->loop)) {
		rc__ep_recv(c);
		return;
	}
	sqe = rc__sqe(c->loop);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	set_fd(sqe, c);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = c->loop->bgid;
	io_uring_sqe_set_data64(sqe, RC_UD(c, RC_UD_RECV));
}

/* ---- References and teardown ------------------------------------------------------ */

/* Takes a memory reference; any thread. */
void rc_conn_ref(struct rc_conn *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static void release_buffers(struct rc_conn *c)
{
	struct rc_sendq_node *n = c->sq_head;

	while (n) {
		struct rc_sendq_node *next = n->next;
		rc_buf_unref(n->buf);
		rc__pool_release(n);
		n = next;
	}
	c->sq_head = c->sq_tail = NULL;
	rc__queued_add(c, -(ptrdiff_t)c->queued);
	rc_buf_unref(c->in);
	rc_buf_unref(c->msg);
	rc_buf_unref(c->kept);
	rc_buf_unref(c->held);
	c->in = c->msg = c->kept = c->held = NULL;
	rc__conn_zlib_free(c);
	rc__pool_release(c->sctx);
	c->sctx = NULL;
	rc__pool_release(c->cl); /* the client's state (client.c) */
	c->cl = NULL;
	if (c->tp->free)
		c->tp->free(c);
}

/* The one place a connection changes state.  st is the new state's reader
 * (NULL: input is discarded).  The transitions:
 *
 *   HTTP       -> OPEN (101 sent, http_conn.c), STREAM (a streamed
 *                 response, stream.c), DRAIN (answered without keep-alive
 *                 or refused), DEAD
 *   CONNECTING -> HANDSHAKE (connected, or the proxy answers: client.c),
 *                 STREAM (a dialed stream, stream.c), DEAD
 *   HANDSHAKE  -> OPEN (101 received, ws_recv.c), STREAM (a dialed
 *                 stream once the SOCKS5 proxy connected), DEAD
 *   OPEN       -> CLOSING (close sent or received), DEAD
 *   CLOSING    -> DRAIN (close handshake done), DEAD
 *   STREAM     -> DRAIN (ended), DEAD
 *   DRAIN      -> DEAD (flushed and shut down, or the peer's EOF)
 *
 * The readers: HTTP rc__http_state (http_conn.c), HANDSHAKE the client's
 * (client.c), OPEN and CLOSING rc__ws_state (ws_recv.c), STREAM
 * rc__stream_state (stream.c); CONNECTING, DRAIN and DEAD discard. */
void rc__conn_enter(struct rc_conn *c, enum rc_conn_state s,
		    const struct rc_conn_reader *st)
{
	c->state = (uint8_t)s;
	c->st = st;
}

/* Drops a reference; the last one frees the memory.  Any thread. */
void rc__conn_put(struct rc_conn *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		rc__pool_release(c);
}

/* Public name of rc__conn_put. */
void rc_conn_unref(struct rc_conn *c)
{
	rc__conn_put(c);
}

/* Calls on_close once per connection. */
void rc__conn_call_on_close(struct rc_conn *c, uint16_t code,
			    const uint8_t *reason, size_t len)
{
	if (c->closed_cb)
		return;
	c->closed_cb = true;
	if (c->sh) {
		/* A stream's end is told by its reason: none for an orderly one.
		 * A client stream that never opened ran out of time (a refused
		 * or failed connect comes with its reason). */
		static const char late[] = "not connected within connect_timeout_ms";
		if (!reason && c->client && !c->opened) {
			reason = (const uint8_t *)late;
			len = sizeof(late) - 1;
		}
		if (c->sh->on_close)
			c->sh->on_close(c, reason ? (const char *)reason : NULL, reason ? len : 0);
		return;
	}
	/* Servers report connections their on_upgrade accepted (even if the
	 * 101 then failed: the user may hold state for it); a client also
	 * learns that its connect or handshake failed. */
	if ((c->opened || c->accepted || c->client) && c->h && c->h->on_close)
		c->h->on_close(c, code, reason, len);
}

/* Closes the descriptor once nothing names the connection any more. */
static void maybe_close(struct rc_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->state != RC_CS_DEAD || c->close_submitted || c->inflight)
		return;
	c->close_submitted = true;
	c->inflight++;
	if (rc__loop_epoll(c->loop)) {
		rc__ep_close(c);
		return;
	}
	sqe = rc__sqe(c->loop);
	if (c->fixed)
		io_uring_prep_close_direct(sqe, (unsigned)c->fd);
	else
		io_uring_prep_close(sqe, c->fd);
	io_uring_sqe_set_data64(sqe, RC_UD(c, RC_UD_CLOSE));
}

/* An operation on a connection that is already dead came back: close the
 * descriptor once nothing names it. */
void rc__conn_settle(struct rc_conn *c)
{
	maybe_close(c);
}

/* Fails a connection that never opened: on_close gets 1006 with why as its
 * reason (its user has no other way to learn why), then it ends. */
void rc__conn_abort_why(struct rc_conn *c, const char *why, size_t len)
{
	if (c->state != RC_CS_DEAD)
		rc__conn_call_on_close(c, RC_CLOSE_ABNORMAL, (const uint8_t *)why, len);
	rc__conn_abort(c, RC_CLOSE_ABNORMAL);
}

/* Ends the connection now: on_close (code, default 1006), cancel whatever is
 * in flight, close the descriptor when it is all back. */
void rc__conn_abort(struct rc_conn *c, uint16_t code)
{
	struct io_uring_sqe *sqe;

	if (c->state == RC_CS_DEAD)
		return;
	rc__conn_call_on_close(c, code ? code : RC_CLOSE_ABNORMAL, NULL, 0);
	rc__conn_enter(c, RC_CS_DEAD, NULL);
	rc__timer_disarm(c);
	if (c->inflight && rc__loop_epoll(c->loop)) {
		rc__ep_cancel(c);
	} else if (c->inflight) {
		sqe = rc__sqe(c->loop);
		io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL |
					(c->fixed ? IORING_ASYNC_CANCEL_FD_FIXED : 0));
		io_uring_sqe_set_data64(sqe, 0);
	}
	maybe_close(c);
}

/* The close SQE completed: the connection leaves the loop. */
void rc__conn_on_close(struct rc_conn *c)
{
	const struct rc_server_config *cfg = c->srv ? rc__server_config(c->srv) : NULL;

	c->inflight--;
	rc_list_del(&c->all);
	__atomic_store_n(&c->loop->nconns, c->loop->nconns - 1, __ATOMIC_RELAXED);
	if (c->admitted && cfg->on_disconnect)
		cfg->on_disconnect(c);
	release_buffers(c);
	rc__conn_put(c);
}

/* An SQE of the layers above naming c completed (server.c's SO_PEERNAME):
 * true if c lives on, false if it was dead and is being closed now. */
bool rc__conn_complete(struct rc_conn *c)
{
	c->inflight--;
	if (c->state != RC_CS_DEAD)
		return true;
	maybe_close(c);
	return false;
}

/* shutdown(SHUT_WR) completed: wait for the peer's EOF (close timer). */
void rc__conn_on_shut(struct rc_conn *c)
{
	c->inflight--;
	maybe_close(c);
}

/* ---- Send queue ---------------------------------------------------------------------- */

/* Queues c for a flush at the end of this loop turn. */
void rc__conn_schedule_flush(struct rc_conn *c)
{
	struct rc_loop *l = c->loop;

	if (c->flush_pending)
		return;
	c->flush_pending = true;
	rc_conn_ref(c);
	c->flush_next = l->flushq;
	l->flushq = c;
}

/* Appends b (taking over the caller's reference) to c's queue; sent at the
 * end of this loop turn. */
int rc__conn_enqueue(struct rc_conn *c, struct rc_buf *b)
{
	struct rc_sendq_node *n = rc__pool_alloc(c->loop->pool, sizeof(*n));

	if (!n) {
		rc_buf_unref(b);
		return -ENOMEM;
	}
	n->next = NULL;
	n->buf = b;
	n->cipher = false;
	if (c->sq_tail)
		c->sq_tail->next = n;
	else
		c->sq_head = n;
	c->sq_tail = n;
	rc__queued_add(c, (ptrdiff_t)b->len);
	rc__conn_schedule_flush(c);
	return 0;
}

/* Whether queue node n may go out now: under a sealing transport (TLS),
 * only once sealed. */
static bool sendable(const struct rc_conn *c, const struct rc_sendq_node *n)
{
	return !c->tp->seal || n->cipher;
}

/* Submits one send covering as much of the queue as fits in the iovec. */
void rc__conn_flush(struct rc_conn *c)
{
	struct rc_sendq_node *n;
	struct io_uring_sqe *sqe;
	struct rc_send_ctx *s;
	size_t off = c->sq_off;
	unsigned i = 0;

	if (c->sending || c->state == RC_CS_DEAD)
		return;
	if (c->tp->seal && c->tp->seal(c) < 0)
		return;
	/* A sealing transport sends only the sealed prefix of the queue;
	 * plaintext waiting for the TLS handshake stays. */
	if (!c->sq_head || !sendable(c, c->sq_head))
		return;
	n = c->sq_head;
	if ((!n->next || !sendable(c, n->next)) && !rc__loop_epoll(c->loop)) {
		/* One buffer (a broadcast to an idle subscriber, an echo): a
		 * plain send needs no msghdr and no send context. */
		sqe = rc__sqe(c->loop);
		io_uring_prep_send(sqe, c->fd, n->buf->data + off, n->buf->len - off,
				   MSG_NOSIGNAL);
		i = 1;
	} else {
		if (!c->sctx && !(c->sctx = rc__pool_alloc(c->loop->pool, sizeof(*c->sctx)))) {
			rc__conn_abort(c, RC_CLOSE_ABNORMAL);
			return;
		}
		s = c->sctx;
		for (; n && i < RC_SEND_IOV && sendable(c, n); n = n->next, i++) {
			s->iov[i].iov_base = n->buf->data + off;
			s->iov[i].iov_len = n->buf->len - off;
			off = 0;
		}
		memset(&s->msg, 0, sizeof(s->msg));
		s->msg.msg_iov = s->iov;
		s->msg.msg_iovlen = i;
		if (rc__loop_epoll(c->loop)) { /* epoll sends every queue this way */
			c->sending = true;
			c->send_iovs = (uint8_t)i;
			c->inflight++;
			rc__ep_sendmsg(c, &s->msg);
			return;
		}
		sqe = rc__sqe(c->loop);
		io_uring_prep_sendmsg(sqe, c->fd, &s->msg, MSG_NOSIGNAL);
	}
	set_fd(sqe, c);
	io_uring_sqe_set_data64(sqe, RC_UD(c, RC_UD_SEND));
	c->sending = true;
	c->send_iovs = (uint8_t)i;
	c->inflight++;
}

/* A sendmsg completed: drop what the kernel took, send the rest. */
void rc__conn_on_send(struct rc_conn *c, int res)
{
	size_t done;

	c->inflight--;
	c->sending = false;
	if (res < 0) {
		if (res == -EAGAIN || res == -EINTR) {
			rc__conn_flush(c);
			return;
		}
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		maybe_close(c);
		return;
	}
	done = (size_t)res;
	rc__queued_add(c, -(ptrdiff_t)done);
	/* A keep-alive HTTP connection is idle when neither side moves:
	 * answers going out count as activity. */
	if (c->state == RC_CS_HTTP && done)
		rc__timer_arm(c, RC_T_HANDSHAKE, c->loop->opt.handshake_timeout_ms);
	while (done && c->sq_head) {
		struct rc_sendq_node *n = c->sq_head;
		size_t left = n->buf->len - c->sq_off;

		if (done < left) {
			c->sq_off += done;
			break;
		}
		done -= left;
		c->sq_off = 0;
		c->sq_head = n->next;
		if (!c->sq_head)
			c->sq_tail = NULL;
		rc_buf_unref(n->buf);
		rc__pool_release(n);
	}
	/* Input held while over budget is read once half the budget is free
	 * again (hysteresis: not one pause per frame). */
	if ((c->held || (c->state == RC_CS_HTTP && c->in && c->in->len)) &&
	    rc__conn_room(c) >= c->loop->opt.max_backpressure / 2)
		rc__conn_resume(c);
	if (c->state == RC_CS_DEAD) {
		maybe_close(c);
		return;
	}
	if (c->sq_head) {
		rc__conn_flush(c);
		return;
	}
	/* The queue is empty: nothing more is kept for an idle connection. */
	rc__pool_release(c->sctx);
	c->sctx = NULL;
	rc__conn_maybe_finish(c);
}

/* Builds a frame for opcode/payload in this loop's pool (masked on a
 * client).  Compressed with the connection's own deflater (created here the
 * first time, on the loop thread only) when negotiated and worth it. */
static struct rc_buf *build_frame(struct rc_conn *c, uint8_t opcode,
				  const uint8_t *data, size_t len)
{
	bool data_frame = opcode == RC_OP_TEXT || opcode == RC_OP_BINARY;
	struct rc_deflater *d = data_frame && len >= 64 ? rc__conn_deflater(c) : NULL;

	return rc__frame_build(opcode, data, len, d, false, c->client);
}

/* True while data may be queued: an open WebSocket that has not sent its
 * close, or a byte stream that is not ending. */
bool rc__conn_writable(const struct rc_conn *c)
{
	return (c->state == RC_CS_OPEN && !c->close_sent) || c->state == RC_CS_STREAM;
}

/* Sends a message or control frame on the loop thread: 0, -EPIPE when
 * closing, -ENOBUFS past the budget, -ENOMEM.  Control frames are queued
 * past it (a pong answers a ping we read): they still count, and the reader
 * stops reading once the budget is spent, so they cannot pile up. */
int rc__conn_send_local(struct rc_conn *c, uint8_t opcode, const uint8_t *data,
			size_t len)
{
	bool control = opcode >= RC_OP_CLOSE;
	struct rc_buf *b;

	if (c->state != RC_CS_OPEN || c->close_sent)
		return -EPIPE;
	if (!control && len > rc__conn_room(c))
		return -ENOBUFS;
	b = build_frame(c, opcode, data, len);
	if (!b)
		return -ENOMEM;
	return rc__conn_enqueue(c, b);
}

/* A send handed to the owner thread.  Its frame and its bookkeeping (this
 * record, the post, the queue node: one 64-byte pool class each) are
 * reserved in the connection's budget when it is posted, so sends in
 * flight cannot pass the bound however many there are, and the post queue
 * holds at most max_backpressure / RC_XSEND_COST of them per connection. */
#define RC_XSEND_COST (3 * 64)

struct rc_xsend {
	struct rc_conn *c;
	struct rc_buf *b;
	size_t cost;         /* reserved in c->reserved */
	uint16_t close_code; /* nonzero: a close request, b holds the reason */
};

/* Takes n bytes of c's budget for a cross-thread send; false if they do not
 * fit (then nothing is taken).  Any thread. */
static bool reserve(struct rc_conn *c, size_t n)
{
	size_t r = __atomic_add_fetch(&c->reserved, n, __ATOMIC_ACQ_REL);

	if (rc__queued(c) + r <= c->loop->opt.max_backpressure)
		return true;
	__atomic_sub_fetch(&c->reserved, n, __ATOMIC_ACQ_REL);
	return false;
}

static void unreserve(struct rc_conn *c, size_t n)
{
	__atomic_sub_fetch(&c->reserved, n, __ATOMIC_ACQ_REL);
}

static void xsend_run(void *arg)
{
	struct rc_xsend *x = arg;
	struct rc_conn *c = x->c;

	/* No budget check here: the bytes were counted when posted, and
	 * queueing them first and releasing the reservation after keeps the
	 * total from ever dipping below what is really held. */
	if (x->close_code) {
		rc_conn_close(c, x->close_code, (const char *)x->b->data, x->b->len);
		rc_buf_unref(x->b);
	} else if (rc__conn_writable(c)) {
		rc__conn_enqueue(c, x->b);
	} else {
		rc_buf_unref(x->b);
	}
	unreserve(c, x->cost);
	rc__conn_put(c);
	rc__pool_release(x);
}

/* Hands b (the caller's reference) to c's owner; cost is reserved already
 * and is released here on failure. */
static int post_to_owner(struct rc_conn *c, struct rc_buf *b, uint16_t close_code,
			 size_t cost)
{
	struct rc_xsend *x = rc__pool_alloc(rc__pool_current(), sizeof(*x));

	if (!x)
		goto err;
	x->c = c;
	x->b = b;
	x->cost = cost;
	x->close_code = close_code;
	rc_conn_ref(c);
	if (rc_loop_post(c->loop, xsend_run, x) < 0) {
		rc__conn_put(c);
		rc__pool_release(x);
		goto err;
	}
	return 0;
err:
	rc_buf_unref(b);
	unreserve(c, cost);
	return -ENOMEM;
}

/* Sends a message or control frame; any thread (see rc.h). */
int rc_conn_send(struct rc_conn *c, uint8_t opcode, const void *data, size_t len)
{
	bool control = opcode >= RC_OP_CLOSE;

	if ((opcode != RC_OP_TEXT && opcode != RC_OP_BINARY && opcode != RC_OP_PING &&
	     opcode != RC_OP_PONG) || (control && len > RC_CONTROL_MAX_PAYLOAD))
		return -EINVAL;
	if (rc_loop_current() == c->loop)
		return rc__conn_send_local(c, opcode, data, len);
	/* Another thread: frame it here (uncompressed, the connection's
	 * deflater belongs to its loop) and hand the reference over. */
	size_t cost = RC_FRAME_MAX_HEADER + len + RC_XSEND_COST;
	if (!reserve(c, cost))
		return -ENOBUFS;
	struct rc_buf *b = c->client ? build_frame(c, opcode, data, len) /* masked */
				     : rc_frame_encode(opcode, data, len, NULL);
	if (!b) {
		unreserve(c, cost);
		return -ENOMEM;
	}
	return post_to_owner(c, b, 0, cost);
}

/* Queues a reference to b's bytes (a frame, or a stream's bytes); any
 * thread.  The caller keeps its reference. */
int rc__conn_send_buf(struct rc_conn *c, struct rc_buf *b)
{
	if (rc_loop_current() != c->loop) {
		size_t cost = b->len + RC_XSEND_COST;
		if (!reserve(c, cost))
			return -ENOBUFS;
		return post_to_owner(c, rc_buf_ref(b), 0, cost);
	}
	if (b->len > rc__conn_room(c))
		return -ENOBUFS;
	if (!rc__conn_writable(c))
		return -EPIPE;
	return rc__conn_enqueue(c, rc_buf_ref(b));
}

/* Queues a shared pre-encoded frame; any thread (see rc.h). */
int rc_conn_send_frame(struct rc_conn *c, struct rc_buf *frame)
{
	return rc__conn_send_buf(c, frame);
}

/* Bytes queued and not yet taken by the kernel. */
size_t rc_conn_queued(const struct rc_conn *c) { return rc__queued(c); }

/* ---- Close handshake ------------------------------------------------------------------ */

/* Queues our close frame (code and reason) and remembers it was sent. */
int rc__conn_send_close(struct rc_conn *c, uint16_t code, const char *reason, size_t len)
{
	uint8_t payload[RC_CONTROL_MAX_PAYLOAD];
	size_t n = rc_close_write(payload, code, reason, len);
	struct rc_buf *b = build_frame(c, RC_OP_CLOSE, payload, n);

	if (!b)
		return -ENOMEM;
	c->close_sent = true;
	c->close_code = code;
	return rc__conn_enqueue(c, b);
}

/* After both close frames (or ours after a failure) are flushed: shutdown
 * our side and wait for the peer's EOF, bounded by close_timeout_ms.  The
 * server closes TCP first (RFC 6455 section 7.1.1). */
void rc__conn_maybe_finish(struct rc_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->state == RC_CS_DEAD || c->shut_sent || c->sq_head || c->sending)
		return;
	if (!(c->close_sent && (c->close_rcvd || c->fail_fast)) && c->state != RC_CS_DRAIN)
		return;
	if (c->tp->close_notify && c->tp->close_notify(c))
		return; /* back here once close_notify is sent */
	rc__conn_enter(c, RC_CS_DRAIN, NULL);
	c->shut_sent = true;
	c->inflight++;
	rc__timer_arm(c, RC_T_CLOSE, c->loop->opt.close_timeout_ms);
	if (rc__loop_epoll(c->loop)) {
		rc__ep_shutdown(c);
		return;
	}
	sqe = rc__sqe(c->loop);
	io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
	set_fd(sqe, c);
	io_uring_sqe_set_data64(sqe, RC_UD(c, RC_UD_SHUT));
}

static void close_local(struct rc_conn *c, uint16_t code, const char *reason, size_t len)
{
	if (c->state != RC_CS_OPEN || c->close_sent)
		return;
	if (rc__conn_send_close(c, code, reason, len) < 0) {
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return;
	}
	rc__conn_enter(c, RC_CS_CLOSING, c->st);
	rc__timer_arm(c, RC_T_CLOSE, c->loop->opt.close_timeout_ms);
}

/* Drops the queued frames that have not started to go out: not those the
 * sendmsg in flight covers, not a partly sent head, and nothing already
 * encrypted (TLS records are numbered; dropping one breaks the stream). */
void rc__conn_drop_unsent(struct rc_conn *c)
{
	struct rc_sendq_node **pp = &c->sq_head, *n;
	unsigned keep = c->sending ? c->send_iovs : (c->sq_off ? 1 : 0);

	c->sq_tail = NULL;
	while ((n = *pp)) {
		if (keep || n->cipher) {
			if (keep)
				keep--;
			c->sq_tail = n;
			pp = &n->next;
			continue;
		}
		*pp = n->next;
		rc__queued_add(c, -(ptrdiff_t)n->buf->len);
		rc_buf_unref(n->buf);
		rc__pool_release(n);
	}
}

/* Closes without flushing what is queued (see rc.h); loop thread. */
int rc_conn_close_now(struct rc_conn *c, uint16_t code, const char *reason, size_t len)
{
	if (c->st && c->st->end) {
		c->st->end(c, true);
		return 0;
	}
	if (c->state != RC_CS_OPEN || c->close_sent)
		return -EPIPE;
	rc__conn_drop_unsent(c);
	close_local(c, code, reason, len);
	return 0;
}

/* Starts the close handshake; any thread (see rc.h). */
int rc_conn_close(struct rc_conn *c, uint16_t code, const char *reason, size_t len)
{
	if (rc_loop_current() != c->loop) {
		/* One close in flight per connection: more would only queue
		 * posts (the owner ignores all but the first anyway). */
		if (__atomic_exchange_n(&c->close_posted, true, __ATOMIC_ACQ_REL))
			return -EPIPE;
		struct rc_buf *b = rc_buf_new(len);
		if (!b)
			return -ENOMEM;
		if (len)
			memcpy(b->data, reason, len);
		b->len = len;
		return post_to_owner(c, b, code ? code : RC_CLOSE_NORMAL, 0);
	}
	if (c->st && c->st->end) {
		c->st->end(c, false);
		return 0;
	}
	if (c->state != RC_CS_OPEN || c->close_sent)
		return -EPIPE;
	close_local(c, code, reason, len);
	return 0;
}

/* Fails the connection (RFC 6455 section 7.1.7): send a close with the code
 * for err, stop reading frames, close TCP once it is flushed. */
void rc__conn_fail(struct rc_conn *c, int err)
{
	uint16_t code = rc_close_code_for(err);

	c->fail_fast = true;
	if (c->state != RC_CS_OPEN && c->state != RC_CS_CLOSING) {
		rc__conn_abort(c, code);
		return;
	}
	rc__conn_call_on_close(c, code, NULL, 0);
	if (!c->close_sent && rc__conn_send_close(c, code, NULL, 0) < 0) {
		rc__conn_abort(c, code);
		return;
	}
	rc__conn_enter(c, RC_CS_CLOSING, c->st);
	rc__timer_arm(c, RC_T_CLOSE, c->loop->opt.close_timeout_ms);
	rc__conn_maybe_finish(c);
}

/* A timer expired (see loop.c). */
void rc__conn_timeout(struct rc_conn *c, enum rc_timer_kind kind)
{
	switch (kind) {
	case RC_T_IDLE: {
		/* Silence: ask for a sign of life, and hold no zlib state
		 * that keeps no context. */
		rc__conn_zlib_trim(c);
		if (c->state == RC_CS_OPEN && !c->close_sent &&
		    rc__conn_send_local(c, RC_OP_PING, NULL, 0) == 0) {
			rc__timer_arm(c, RC_T_PONG, c->loop->opt.pong_timeout_ms);
			return;
		}
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return;
	}
	case RC_T_PONG:
	case RC_T_HANDSHAKE:
	case RC_T_CLOSE:
	case RC_T_NONE:
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return;
	}
}

/* ---- The loop's hooks ---------------------------------------------------------- */

static void cqe_recv(void *c, const struct io_uring_cqe *cqe)
{
	rc__conn_on_recv(c, cqe);
}

static void cqe_send(void *c, const struct io_uring_cqe *cqe)
{
	rc__conn_on_send(c, cqe->res);
}

static void cqe_close(void *c, const struct io_uring_cqe *cqe)
{
	(void)cqe;
	rc__conn_on_close(c);
}

static void cqe_shut(void *c, const struct io_uring_cqe *cqe)
{
	(void)cqe;
	rc__conn_on_shut(c);
}

/* The end of a batch: sends what the connections queued during it, one
 * sendmsg per connection however many frames arrived meanwhile. */
static void flush_queued(struct rc_loop *l)
{
	while (l->flushq) {
		struct rc_conn *c = l->flushq;
		l->flushq = c->flush_next;
		c->flush_next = NULL;
		c->flush_pending = false;
		rc__conn_flush(c);
		rc__conn_put(c);
	}
}

/* The loop drains: open connections get a 1001 close, those not open yet
 * end at once; force: every connection ends now. */
static void drain(struct rc_loop *l, bool force)
{
	struct rc_list *it, *next;

	for (it = l->conns.next; it != &l->conns; it = next) {
		struct rc_conn *c = rc_container_of(it, struct rc_conn, all);
		next = it->next;
		if (force)
			rc__conn_abort(c, 0);
		else if (c->state == RC_CS_OPEN || c->state == RC_CS_STREAM)
			rc_conn_close(c, RC_CLOSE_GOING_AWAY, "server shutting down", 20);
		else if (c->state < RC_CS_OPEN)
			rc__conn_abort(c, 0);
	}
}

/* Hooks connections into l (on each new one: a few stores). */
static void hook_loop(struct rc_loop *l)
{
	rc__loop_on(l, RC_UD_RECV, cqe_recv);
	rc__loop_on(l, RC_UD_SEND, cqe_send);
	rc__loop_on(l, RC_UD_CLOSE, cqe_close);
	rc__loop_on(l, RC_UD_SHUT, cqe_shut);
	l->on_batch = flush_queued;
	l->on_timeout = rc__conn_timeout;
	l->on_drain = drain;
}

/* ---- Opening and receiving --------------------------------------------------------- */

/* Plaintext bytes received, handed to the reader of the current state.
 * Returns the bytes it took: fewer than n when the connection ran out of
 * budget (the caller holds the rest; nothing is dropped). */
size_t rc__conn_dispatch(struct rc_conn *c, uint8_t *p, size_t n)
{
	return c->st ? c->st->read(c, p, n) : n; /* none: discard until EOF */
}

/* Stops reading c: cancels its multishot recv (bytes it already carried
 * are held too).  The recv is armed again once the held input is read. */
static void pause_recv(struct rc_conn *c)
{
	struct io_uring_sqe *sqe;

	if (!c->recv_armed || c->recv_cancel || c->state == RC_CS_DEAD)
		return;
	c->recv_cancel = true;
	if (rc__loop_epoll(c->loop)) {
		rc__ep_recv_cancel(c);
		return;
	}
	sqe = rc__sqe(c->loop);
	io_uring_prep_cancel64(sqe, RC_UD(c, RC_UD_RECV), 0);
	io_uring_sqe_set_data64(sqe, 0);
}

/* Keeps input the connection cannot process now (over its budget), after
 * whatever is held already, and stops reading.  0, or -ENOMEM (aborted). */
int rc__conn_hold(struct rc_conn *c, const uint8_t *p, size_t n)
{
	struct rc_buf *h = c->held;

	if (!n || c->state == RC_CS_DEAD)
		return 0;
	if (h && c->held_off) { /* compact: only the unread tail is kept */
		memmove(h->data, h->data + c->held_off, h->len - c->held_off);
		h->len -= c->held_off;
		c->held_off = 0;
	}
	if (rc__buf_reserve(&c->held, n) < 0) {
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return -ENOMEM;
	}
	memcpy(c->held->data + c->held->len, p, n);
	c->held->len += n;
	pause_recv(c);
	return 0;
}

/* Plaintext input from the socket (or TLS): processed now, unless earlier
 * input is still held, in which case it queues behind it. */
void rc__conn_input(struct rc_conn *c, uint8_t *p, size_t n)
{
	size_t used = c->held ? 0 : rc__conn_dispatch(c, p, n);

	if (used < n)
		rc__conn_hold(c, p + used, n - used);
}

/* Reads held input while the budget allows; once all of it is read, the
 * recv is armed again. */
void rc__conn_resume(struct rc_conn *c)
{
	/* Pipelined requests already in the request buffer come first. */
	if (c->state == RC_CS_HTTP && c->in && c->in->len && rc__conn_room(c))
		c->st->read(c, NULL, 0);
	while (c->held && c->state != RC_CS_DEAD && rc__conn_room(c)) {
		struct rc_buf *b = c->held;
		size_t off = c->held_off, used;

		/* Detached while read: what the readers hold meanwhile (an
		 * upgrade's early frames) goes first, then b's unread rest. */
		c->held = NULL;
		c->held_off = 0;
		used = rc__conn_dispatch(c, b->data + off, b->len - off);
		if (off + used < b->len && !c->held) {
			c->held = b;
			c->held_off = off + used;
		} else {
			if (off + used < b->len)
				rc__conn_hold(c, b->data + off + used, b->len - off - used);
			rc_buf_unref(b);
		}
		if (!used)
			break;
	}
	if (!c->held && c->state != RC_CS_DEAD && !c->recv_armed)
		rc__conn_arm_recv(c);
}

/* A recv completion for c (the buffer is recycled after this returns). */
void rc__conn_on_recv(struct rc_conn *c, const struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		c->recv_armed = false;
		c->recv_cancel = false;
		c->inflight--;
	}
	if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
		uint8_t *p = rc__loop_buf(c->loop, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		c->tp->recv(c, p, (size_t)res);
	} else if (res == -ECANCELED && c->state != RC_CS_DEAD) {
		/* pause_recv's cancel: armed again when the held input is read */
	} else if (res == 0 || (res < 0 && res != -ENOBUFS)) {
		/* EOF or error: the peer is gone (or the recv was cancelled). */
		if (c->state != RC_CS_DEAD)
			rc__conn_abort(c, c->close_rcvd ? c->peer_close : RC_CLOSE_ABNORMAL);
		maybe_close(c);
		return;
	}
	if (c->state == RC_CS_DEAD)
		maybe_close(c);
	else if (!c->recv_armed && !c->held)
		rc__conn_arm_recv(c);
}

/* ---- Accessors ---------------------------------------------------------------------- */

/* Sets the handlers (in on_upgrade, or before connecting). */
void rc_conn_set_handlers(struct rc_conn *c, const struct rc_handlers *h) { c->h = h; }
/* Per-connection user pointer. */
void rc_conn_set_user(struct rc_conn *c, void *user) { c->user = user; }
/* The user pointer. */
void *rc_conn_user(const struct rc_conn *c) { return c->user; }
/* The owning loop. */
struct rc_loop *rc_conn_loop(const struct rc_conn *c) { return c->loop; }
/* The server that accepted c, or NULL for a client connection. */
struct rc_server *rc_conn_server(const struct rc_conn *c) { return c->srv; }
/* Peer address text ("127.0.0.1:5000", "[::1]:5000"), "" if unknown. */
const char *rc_conn_peer(const struct rc_conn *c)
{
	static _Thread_local char text[INET6_ADDRSTRLEN + 8];
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	text[0] = 0;
	if (!c->fixed && getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0)
		sa = (const struct sockaddr *)&ss;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(text, sizeof(text), "%s:%u", ip, ntohs(a->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(text, sizeof(text), "[%s]:%u", ip, ntohs(a->sin6_port));
	}
	return text;
}

/* The peer's IP address in 16 bytes (IPv4 as ::ffff:a.b.c.d); false if
 * unknown. */
bool rc_conn_peer_ip(const struct rc_conn *c, uint8_t ip[16])
{
	const struct sockaddr_in6 *a6 = &c->peer;

	if (a6->sin6_family == AF_INET6) {
		memcpy(ip, &a6->sin6_addr, 16);
		return true;
	}
	if (a6->sin6_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)a6;
		memset(ip, 0, 10);
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &a4->sin_addr, 4);
		return true;
	}
	return false;
}

/* Negotiated permessage-deflate, or NULL. */
const struct rc_pmd_params *rc_conn_deflate(const struct rc_conn *c)
{
	return c->pmd_on ? &c->pmd : NULL;
}
