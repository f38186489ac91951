/* libFuzzer harness for the client side of a connection (core/client.c,
 * core/ws_recv.c, core/conn.c): arbitrary server bytes - SOCKS5 replies, the
 * HTTP response head, frames right behind it, deflate data - split into
 * reads of arbitrary sizes and fed in-process to a real client connection.
 *
 * How it drives a connection without a server: one loop for the whole run;
 * per input, a posted function (so everything happens on the loop thread,
 * inside a turn) wraps one end of a socketpair with rc_client_wrap_fd and
 * hands each piece to rc__conn_dispatch, as a recv completion would - each
 * piece in its own exact-size heap copy freed right after, so ASan sees any
 * read past a piece or any pointer kept into one.  Nothing is flushed while
 * the pieces are fed (the queue is what the input made the client owe), then
 * the connection is closed and aborted and the loop runs until it is freed.
 * Deterministic: no bytes ever come from the socket.
 *
 * The 101's Sec-WebSocket-Accept depends on a random key: every "{K}" in
 * the input becomes the accept value for the key of the request the client
 * has queued when that piece is fed (28 'A's before there is one), so the
 * fuzzer reaches the open connection.  A piece never ends inside "{K}", and
 * while the client has no key yet (SOCKS5 first) a piece ends before one.
 *
 * Input: byte 0 flags, byte 1 split seed, then the server's bytes.
 *   bit 0 offer permessage-deflate      bit 1 through a SOCKS5 proxy
 *   bit 2 ... with user:pass            bit 3 offer subprotocols "chat, v2"
 *   bits 4-5 reads: whole, 1 byte, 1..16 bytes, 1..64 KiB (seeded)
 *   bit 6 close from on_open            bit 7 client_max_window_bits=9
 *
 * Checked after every piece: the output-queue bound.  What server bytes can
 * make the client queue is the upgrade request and SOCKS5 requests (under
 * 4 KiB + 800 B), one close frame, echoes (this harness echoes messages up
 * to 4 KiB through rc_conn_send, so they stop at max_backpressure plus one
 * frame), and a pong per ping: 6 + k bytes out for 2 + k in, at most 3 per
 * byte fed.  So queued <= 16 KiB + max_backpressure + 3 * bytes fed.
 * Also: delivered text is valid UTF-8, messages stay within
 * max_message_size, on_close comes once. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"
#include "proto/utf8.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define QUEUE_FIXED (16u << 10)
#define ECHO_MAX 4096

static const char token[] = "{K}";
#define TOKEN_LEN (sizeof(token) - 1)

struct drive {
	const uint8_t *in;
	size_t len;
	uint8_t flags;
	uint32_t rng;
	int peer;           /* the socketpair's other end, closed after the run */
	unsigned closes;    /* on_close calls */
	struct rc_conn *c;
};

static struct rc_loop *loop;
static struct rc_options opt_plain, opt_deflate, opt_deflate9;

static void on_open(struct rc_conn *c)
{
	struct drive *d = rc_conn_user(c);

	if (d->flags & 0x40)
		rc_conn_close(c, RC_CLOSE_NORMAL, "bye", 3);
}

static void on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	CHECK(op == RC_OP_TEXT || op == RC_OP_BINARY);
	CHECK(n <= loop->opt.max_message_size);
	CHECK(op != RC_OP_TEXT || rc_utf8_valid(p, n));
	if (n & 1) { /* keep it past the handler now and then */
		struct rc_buf *b = rc_conn_keep_message(c);
		CHECK(!b || (rc_buf_len(b) == n && memcmp(rc_buf_data(b), p, n) == 0));
		rc_buf_unref(b);
	}
	if (n <= ECHO_MAX)
		(void)rc_conn_send(c, op, p, n);
}

static void on_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n)
{
	struct drive *d = rc_conn_user(c);

	(void)code;
	(void)r;
	CHECK(n <= RC_CONTROL_MAX_PAYLOAD);
	d->closes++;
}

static const struct rc_handlers handlers = {
	.on_open = on_open, .on_message = on_message, .on_close = on_close,
};

static uint32_t next_rand(struct drive *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 17;
	d->rng ^= d->rng << 5;
	return d->rng;
}

static size_t piece_len(struct drive *d)
{
	switch ((d->flags >> 4) & 3) {
	case 0: return d->len;
	case 1: return 1;
	case 2: return 1 + next_rand(d) % 16;
	}
	return 1 + next_rand(d) % 65536;
}

/* The accept value for the key in the upgrade request c has queued (28
 * 'A's and false when there is none yet). */
static bool current_accept(const struct rc_conn *c, char out[29])
{
	static const char hdr[] = "Sec-WebSocket-Key: ";

	memset(out, 'A', 28);
	out[28] = 0;
	for (const struct rc_sendq_node *n = c->sq_head; n; n = n->next) {
		const uint8_t *k = memmem(n->buf->data, n->buf->len, hdr, sizeof(hdr) - 1);
		if (k && (size_t)(k - n->buf->data) + sizeof(hdr) - 1 + 24 <= n->buf->len) {
			rc_ws_accept_key((struct rc_span){ (const char *)k + sizeof(hdr) - 1, 24 },
					 out);
			return true;
		}
	}
	return false;
}

/* in[0..n) with every token replaced, in an exact-size heap copy. */
static uint8_t *expand(const struct rc_conn *c, const uint8_t *in, size_t n, size_t *out_len)
{
	size_t tokens = 0, len;
	char acc[29];
	uint8_t *out, *o;

	for (const uint8_t *t = in; (t = memmem(t, n - (size_t)(t - in), token, TOKEN_LEN));
	     t += TOKEN_LEN)
		tokens++;
	len = n + tokens * (28 - TOKEN_LEN);
	out = malloc(len ? len : 1);
	CHECK(out);
	if (tokens)
		current_accept(c, acc);
	o = out;
	for (size_t i = 0; i < n;) {
		if (n - i >= TOKEN_LEN && memcmp(in + i, token, TOKEN_LEN) == 0) {
			memcpy(o, acc, 28);
			o += 28;
			i += TOKEN_LEN;
		} else {
			*o++ = in[i++];
		}
	}
	*out_len = len;
	return out;
}

static void drive_run(void *arg)
{
	struct drive *d = arg;
	struct rc_client_options co = { 0 };
	size_t fed = 0, pos = 0;
	int sv[2];

	co.options = !(d->flags & 1) ? &opt_plain : (d->flags & 0x80) ? &opt_deflate9
								  : &opt_deflate;
	if (d->flags & 2)
		co.socks5 = d->flags & 4 ? "socks5://user:pass@proxy.test:1080"
					 : "socks5://proxy.test:1080";
	if (d->flags & 8)
		co.protocols = "chat, v2";
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	d->peer = sv[1];
	d->c = rc_client_wrap_fd(loop, sv[0], "ws://server.test:8080/fuzz", &co, &handlers, d);
	if (!d->c) {
		close(sv[0]);
		rc_loop_stop(loop);
		return;
	}
	while (pos < d->len && d->c->state != RC_CS_DEAD) {
		size_t end = pos + piece_len(d), n;
		if (end > d->len || end < pos)
			end = d->len;
		/* never cut a token: extend over one that starts before end */
		for (size_t k = end > TOKEN_LEN - 1 ? end - (TOKEN_LEN - 1) : 0; k < end; k++)
			if (k >= pos && d->len - k >= TOKEN_LEN && !memcmp(d->in + k, token, TOKEN_LEN))
				end = k + TOKEN_LEN;
		/* no key yet (SOCKS5 replies before it): cut before the token,
		 * the key may exist once the bytes before it are read */
		const uint8_t *t = memmem(d->in + pos, end - pos, token, TOKEN_LEN);
		char acc[29];
		if (t && t > d->in + pos && !current_accept(d->c, acc))
			end = (size_t)(t - d->in);
		uint8_t *p = expand(d->c, d->in + pos, end - pos, &n);
		rc__conn_dispatch(d->c, p, n);
		free(p);
		fed += n;
		pos = end;
		CHECK(rc_conn_queued(d->c) <= QUEUE_FIXED + loop->opt.max_backpressure + 3 * fed);
		CHECK(d->closes <= 1);
	}
	if (d->c->state == RC_CS_OPEN)
		rc_conn_close(d->c, RC_CLOSE_GOING_AWAY, "done", 4);
	rc__conn_abort(d->c, 0);
	rc_loop_stop(loop);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct rc_options o;

	(void)argc;
	(void)argv;
	rc_log_set_level(RC_LOG_ERROR);
	rc_options_default(&o);
	/* Small enough that an input cannot make one run slow. */
	o.max_message_size = o.max_frame_size = 1u << 20;
	o.max_backpressure = 64u << 10;
	opt_plain = o;
	o.deflate.enabled = true;
	o.deflate.server_no_context_takeover = false;
	opt_deflate = o;
	o.deflate.max_window_bits = 9;
	opt_deflate9 = o;
	loop = rc_loop_new(&opt_plain);
	CHECK(loop);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drive d = { 0 };

	if (size < 2)
		return 0;
	d.flags = data[0];
	d.rng = 0x9e3779b9u ^ data[1];
	d.in = data + 2;
	d.len = size - 2;
	d.peer = -1;
	CHECK(rc_loop_post(loop, drive_run, &d) == 0);
	CHECK(rc_loop_run(loop) == 0);
	/* rc_loop_run drained (the connection is freed); ready for the next. */
	CHECK(rc_list_empty(&loop->conns) && d.closes == (d.c ? 1u : 0u));
	loop->draining = false;
	atomic_store(&loop->stop, false);
	if (d.peer >= 0)
		close(d.peer);
	return 0;
}
