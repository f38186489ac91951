/* The connection state machine driven with handcrafted bytes: a server on a
 * listening socket we own (rc_server_listen_fd) or a client wrapped around
 * one end of a socketpair (rc_client_wrap_fd), and a plain blocking socket
 * on the other side that writes frames byte by byte and checks what comes
 * back: handler calls (in order, with their data), echoes, the send queue's
 * ordering under partial sends, backpressure, and the close handshake. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/rc.h"
#include "proto/http.h"

TestSuite(conn, .timeout = 30);

#define WAIT_MS 5000

/* ---- What the handlers saw -------------------------------------------------- */

enum ev_kind { EV_OPEN = 1, EV_MESSAGE, EV_PING, EV_PONG, EV_CLOSE, EV_NOTE };

struct ev {
	enum ev_kind kind;
	uint8_t op;
	uint16_t code;
	long value;           /* EV_NOTE: a result the handler reports */
	size_t len;
	uint8_t data[512];    /* first bytes of the payload */
};

#define MAX_EVS 4096

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cv = PTHREAD_COND_INITIALIZER;
static struct ev evs[MAX_EVS];
static unsigned nevs;
static size_t opt_backpressure;

static void ev_add(enum ev_kind kind, uint8_t op, uint16_t code, long value,
		   const uint8_t *p, size_t n)
{
	pthread_mutex_lock(&ev_mu);
	if (nevs < MAX_EVS) {
		struct ev *e = &evs[nevs++];
		e->kind = kind;
		e->op = op;
		e->code = code;
		e->value = value;
		e->len = n;
		if (n)
			memcpy(e->data, p, n < sizeof(e->data) ? n : sizeof(e->data));
	}
	pthread_cond_broadcast(&ev_cv);
	pthread_mutex_unlock(&ev_mu);
}

/* Waits until at least n events were logged; returns a copy of event i. */
static struct ev ev_wait(unsigned i)
{
	struct timespec ts;
	struct ev e;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&ev_mu);
	while (nevs <= i) {
		if (pthread_cond_timedwait(&ev_cv, &ev_mu, &ts) == ETIMEDOUT)
			break;
	}
	cr_assert_gt(nevs, i, "event %u never came (%u logged)", i, nevs);
	e = evs[i];
	pthread_mutex_unlock(&ev_mu);
	return e;
}

static void ev_expect(unsigned i, enum ev_kind kind, uint8_t op, const void *data, size_t len)
{
	struct ev e = ev_wait(i);

	cr_assert_eq(e.kind, kind, "event %u: kind %d, expected %d", i, e.kind, kind);
	cr_assert_eq(e.op, op, "event %u: opcode %u, expected %u", i, e.op, op);
	cr_assert_eq(e.len, len, "event %u: %zu bytes, expected %zu", i, e.len, len);
	cr_assert(len == 0 || memcmp(e.data, data, len < sizeof(e.data) ? len : sizeof(e.data)) == 0,
		  "event %u: payload differs", i);
}

static unsigned ev_count(void)
{
	pthread_mutex_lock(&ev_mu);
	unsigned n = nevs;
	pthread_mutex_unlock(&ev_mu);
	return n;
}

/* ---- Server handlers: echo, plus commands carried by text messages ------------ */

static struct rc_buf *kept;

static void srv_open(struct rc_conn *c)
{
	(void)c;
	ev_add(EV_OPEN, 0, 0, 0, NULL, 0);
}

/* A payload for frame i of a burst: its index, then a pattern. */
static size_t burst_payload(uint8_t *out, unsigned i, size_t len)
{
	for (size_t k = 0; k < len; k++)
		out[k] = (uint8_t)(i * 7 + k);
	if (len >= 4)
		memcpy(out, &i, 4);
	return len;
}

static size_t burst_len(unsigned i)
{
	return 4 + (i * 977u) % 9000u;
}

/* Sends 16 KiB frames from a thread that is not c's loop: at most 1000,
 * until the budget says no.  Returns how many were accepted. */
static void *xflood_main(void *arg)
{
	static uint8_t buf[16384];
	long sent = 0;

	memset(buf, 'x', sizeof(buf));
	while (sent < 1000 && rc_conn_send(arg, RC_OP_BINARY, buf, sizeof(buf)) == 0)
		sent++;
	return (void *)sent;
}

static void srv_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	static uint8_t buf[16384];
	unsigned count;

	ev_add(EV_MESSAGE, op, 0, 0, p, n);
	if (op == RC_OP_TEXT && sscanf((const char *)p, "burst %u", &count) == 1 &&
	    memchr(p, '.', n)) {
		/* Many frames of varying sizes at once: far more than a socket
		 * buffer, so sendmsg completes partially and resumes. */
		for (unsigned i = 0; i < count; i++) {
			size_t len = burst_payload(buf, i, burst_len(i));
			int ret = rc_conn_send(c, RC_OP_BINARY, buf, len);
			if (ret < 0) {
				ev_add(EV_NOTE, 0, 0, ret, NULL, 0);
				return;
			}
		}
		ev_add(EV_NOTE, 0, 0, (long)rc_conn_queued(c), NULL, 0);
	} else if (op == RC_OP_TEXT && n == 5 && memcmp(p, "flood", 5) == 0) {
		/* Sends 16 KiB frames until the backpressure limit says no. */
		long sent = 0;
		int ret;
		memset(buf, 'f', sizeof(buf));
		while ((ret = rc_conn_send(c, RC_OP_BINARY, buf, sizeof(buf))) == 0)
			sent++;
		ev_add(EV_NOTE, 0, 0, sent, NULL, 0);
		ev_add(EV_NOTE, 0, 0, ret, NULL, 0);
		ev_add(EV_NOTE, 0, 0, (long)rc_conn_queued(c), NULL, 0);
	} else if (op == RC_OP_TEXT && n == 6 && memcmp(p, "xflood", 6) == 0) {
		/* The same from another thread while this loop is blocked, so
		 * nothing posted reaches the queue before the flood ends. */
		pthread_t th;
		long sent = 0;
		pthread_create(&th, NULL, xflood_main, c);
		pthread_join(th, (void **)&sent);
		ev_add(EV_NOTE, 0, 0, sent, NULL, 0);
	} else if (op == RC_OP_TEXT && n == 5 && memcmp(p, "close", 5) == 0) {
		ev_add(EV_NOTE, 0, 0, rc_conn_close(c, 4000, "bye", 3), NULL, 0);
		ev_add(EV_NOTE, 0, 0, rc_conn_send(c, RC_OP_TEXT, "x", 1), NULL, 0);
		ev_add(EV_NOTE, 0, 0, rc_conn_close(c, 1000, NULL, 0), NULL, 0);
	} else if (op == RC_OP_TEXT && n >= 4 && memcmp(p, "keep", 4) == 0) {
		kept = rc_conn_keep_message(c);
		ev_add(EV_NOTE, 0, 0, kept != NULL, NULL, 0);
	} else if (op == RC_OP_TEXT && n == 6 && memcmp(p, "recall", 6) == 0) {
		/* The kept message, after its handler returned and other bytes
		 * went through the receive buffers. */
		ev_add(EV_NOTE, 0, 0, 0, rc_buf_data(kept), rc_buf_len(kept));
		rc_buf_unref(kept);
		kept = NULL;
	} else {
		rc_conn_send(c, op, p, n);
	}
}

static void srv_ping(struct rc_conn *c, const uint8_t *p, size_t n)
{
	(void)c;
	ev_add(EV_PING, RC_OP_PING, 0, 0, p, n);
}

static void srv_pong(struct rc_conn *c, const uint8_t *p, size_t n)
{
	(void)c;
	ev_add(EV_PONG, RC_OP_PONG, 0, 0, p, n);
}

static void srv_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n)
{
	(void)c;
	ev_add(EV_CLOSE, 0, code, 0, r, n);
}

static const struct rc_handlers srv_handlers = {
	.on_open = srv_open,
	.on_message = srv_message,
	.on_ping = srv_ping,
	.on_pong = srv_pong,
	.on_close = srv_close,
};

/* ---- A server on a socket we own, in its own thread ---------------------------- */

struct srv {
	struct rc_server *s;
	pthread_t th;
	int lfd, port, ret;
};

static void *srv_main(void *arg)
{
	struct srv *sv = arg;

	sv->ret = rc_server_run(sv->s);
	return NULL;
}

static void srv_start(struct srv *sv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	struct rc_options o;

	nevs = 0;
	rc_options_default(&o);
	o.max_message_size = o.max_frame_size = 1 << 20;
	o.max_backpressure = opt_backpressure ? opt_backpressure : 64u << 20;
	sv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(sv->lfd, 0);
	cr_assert_eq(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(sv->lfd, 16), 0);
	cr_assert_eq(getsockname(sv->lfd, (struct sockaddr *)&a, &sl), 0);
	sv->port = ntohs(a.sin_port);
	sv->s = rc_server_new(&(struct rc_server_config){
		.options = &o, .threads = 1, .default_handlers = &srv_handlers });
	cr_assert_not_null(sv->s);
	cr_assert_eq(rc_server_listen_fd(sv->s, sv->lfd), 0);
	cr_assert_eq(rc_server_port(sv->s), sv->port);
	cr_assert_eq(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

static void srv_stop(struct srv *sv)
{
	rc_server_stop(sv->s);
	pthread_join(sv->th, NULL);
	rc_server_free(sv->s);
	close(sv->lfd);
	cr_assert_eq(sv->ret, 0);
}

/* ---- The raw peer ------------------------------------------------------------------ */

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		cr_assert_gt(w, 0, "send: %s", strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

/* Reads exactly n bytes (or returns the count read before EOF/timeout). */
static size_t read_full(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, WAIT_MS) != 1)
			break;
		ssize_t r = recv(fd, b + got, n - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* A frame with payload, masked when key is given. */
static size_t make_frame(uint8_t *out, uint8_t b0, const void *payload, size_t n,
			 const uint8_t *key)
{
	size_t h = 0;

	out[h++] = b0;
	uint8_t m = key ? 0x80 : 0;
	if (n < 126) {
		out[h++] = m | (uint8_t)n;
	} else if (n < 65536) {
		out[h++] = m | 126;
		out[h++] = (uint8_t)(n >> 8);
		out[h++] = (uint8_t)n;
	} else {
		out[h++] = m | 127;
		for (int i = 7; i >= 0; i--)
			out[h++] = (uint8_t)((uint64_t)n >> (8 * i));
	}
	if (key) {
		memcpy(out + h, key, 4);
		h += 4;
	}
	for (size_t i = 0; i < n; i++)
		out[h + i] = ((const uint8_t *)payload)[i] ^ (key ? key[i % 4] : 0);
	return h + n;
}

static const uint8_t KEY[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Sends one masked client frame. */
static void send_frame(int fd, uint8_t b0, const void *payload, size_t n)
{
	uint8_t buf[70000];

	cr_assert_leq(n, 65536);
	write_all(fd, buf, make_frame(buf, b0, payload, n, KEY));
}

struct rframe {
	uint8_t b0;
	bool masked;
	size_t len;
	uint8_t *data; /* malloc'd, NUL-terminated */
};

/* Reads one frame; asserts it arrives within WAIT_MS. */
static struct rframe read_frame(int fd)
{
	struct rframe f = { 0 };
	uint8_t h[14], key[4];

	cr_assert_eq(read_full(fd, h, 2), 2, "no frame header");
	f.b0 = h[0];
	f.masked = h[1] & 0x80;
	uint64_t n = h[1] & 0x7f;
	if (n == 126) {
		cr_assert_eq(read_full(fd, h, 2), 2);
		n = (uint64_t)h[0] << 8 | h[1];
	} else if (n == 127) {
		cr_assert_eq(read_full(fd, h, 8), 8);
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | h[i];
	}
	if (f.masked)
		cr_assert_eq(read_full(fd, key, 4), 4);
	f.len = (size_t)n;
	f.data = malloc(f.len + 1);
	cr_assert_eq(read_full(fd, f.data, f.len), f.len, "short payload");
	for (size_t i = 0; f.masked && i < f.len; i++)
		f.data[i] ^= key[i % 4];
	f.data[f.len] = 0;
	return f;
}

static void expect_frame(int fd, uint8_t b0, const void *data, size_t len)
{
	struct rframe f = read_frame(fd);

	cr_assert_eq(f.b0, b0, "frame byte 0 %#x, expected %#x", f.b0, b0);
	cr_assert_eq(f.len, len, "frame of %zu bytes, expected %zu", f.len, len);
	cr_assert_eq(memcmp(f.data, data, len), 0, "frame payload differs");
	free(f.data);
}

static void expect_eof(int fd)
{
	uint8_t b;
	struct pollfd pfd = { fd, POLLIN, 0 };

	cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "the peer did not close TCP");
	cr_assert_eq(recv(fd, &b, 1, 0), 0, "bytes instead of EOF");
}

/* Connects and upgrades; rcvbuf > 0 sets SO_RCVBUF first (before the
 * handshake, so the advertised window never exceeds it). */
static int ws_connect_rcvbuf(int port, int rcvbuf)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	static const char req[] =
		"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n";
	char resp[1024];
	size_t n = 0;

	cr_assert_geq(fd, 0);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	write_all(fd, req, sizeof(req) - 1);
	/* byte by byte so no frame byte is swallowed with the head */
	while (n < sizeof(resp) - 1 && read_full(fd, resp + n, 1) == 1) {
		n++;
		if (n >= 4 && memcmp(resp + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	resp[n] = 0;
	cr_assert(strncmp(resp, "HTTP/1.1 101 ", 13) == 0, "no 101: %s", resp);
	cr_assert_not_null(strstr(resp, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "RFC 6455 accept");
	ev_expect(0, EV_OPEN, 0, NULL, 0);
	return fd;
}

static int ws_connect(int port)
{
	return ws_connect_rcvbuf(port, 0);
}

/* ---- Server-side tests ------------------------------------------------------------- */

Test(conn, frames_split_at_every_byte)
{
	struct srv sv;
	uint8_t stream[256];
	size_t n = 0;
	unsigned ev = 1;

	srv_start(&sv);
	int fd = ws_connect(sv.port);
	/* text, ping, binary in two fragments with a pong between them */
	n += make_frame(stream + n, 0x81, "hello", 5, KEY);
	n += make_frame(stream + n, 0x89, "p1", 2, KEY);
	n += make_frame(stream + n, 0x02, "frag", 4, KEY);
	n += make_frame(stream + n, 0x8a, "q", 1, KEY);
	n += make_frame(stream + n, 0x80, "ment", 4, KEY);
	for (size_t cut = 0; cut <= n; cut++) {
		write_all(fd, stream, cut);
		write_all(fd, stream + cut, n - cut);
		expect_frame(fd, 0x81, "hello", 5);
		expect_frame(fd, 0x8a, "p1", 2);
		expect_frame(fd, 0x82, "fragment", 8);
		ev_expect(ev++, EV_MESSAGE, RC_OP_TEXT, "hello", 5);
		ev_expect(ev++, EV_PING, RC_OP_PING, "p1", 2);
		ev_expect(ev++, EV_PONG, RC_OP_PONG, "q", 1);
		ev_expect(ev++, EV_MESSAGE, RC_OP_BINARY, "fragment", 8);
	}
	/* and all of it one byte per write */
	for (size_t i = 0; i < n; i++)
		write_all(fd, stream + i, 1);
	expect_frame(fd, 0x81, "hello", 5);
	expect_frame(fd, 0x8a, "p1", 2);
	expect_frame(fd, 0x82, "fragment", 8);
	close(fd);
	ev_wait(ev + 4);
	srv_stop(&sv);
}

Test(conn, send_queue_keeps_order_through_partial_sends)
{
	struct srv sv;
	const unsigned count = 3000; /* ~13 MiB queued at once */
	static uint8_t want[16384];

	srv_start(&sv);
	/* a small receive buffer: the server's sendmsg cannot take it all */
	int fd = ws_connect_rcvbuf(sv.port, 8192);
	char cmd[32];
	int cl = snprintf(cmd, sizeof(cmd), "burst %u.", count);
	send_frame(fd, 0x81, cmd, (size_t)cl);
	struct ev e = ev_wait(2);
	cr_assert_eq(e.kind, EV_NOTE);
	cr_assert_gt(e.value, 1 << 20, "queued %ld bytes right after queueing", e.value);
	for (unsigned i = 0; i < count; i++) {
		struct rframe f = read_frame(fd);
		size_t len = burst_payload(want, i, burst_len(i));
		cr_assert_eq(f.b0, 0x82, "frame %u", i);
		cr_assert_eq(f.len, len, "frame %u: %zu bytes, expected %zu", i, f.len, len);
		cr_assert_eq(memcmp(f.data, want, len), 0, "frame %u out of order or corrupt", i);
		free(f.data);
	}
	/* the queue drained: a ping is answered right away */
	send_frame(fd, 0x89, "after", 5);
	expect_frame(fd, 0x8a, "after", 5);
	close(fd);
	srv_stop(&sv);
}

/* A server with a 256 KiB budget and a peer that asked it for a flood
 * (command cmd) of 16 KiB frames; returns the peer's socket. */
static int start_flood(struct srv *sv, const char *cmd)
{
	opt_backpressure = 256 * 1024;
	srv_start(sv);
	opt_backpressure = 0;
	int fd = ws_connect(sv->port);
	send_frame(fd, 0x81, cmd, strlen(cmd));
	return fd;
}

/* Reads the n flood frames of fill, then checks nothing else was queued
 * behind them: the next frame is the pong to our ping. */
static void expect_flood(int fd, long n, uint8_t fill)
{
	static uint8_t want[16384];

	memset(want, fill, sizeof(want));
	for (long i = 0; i < n; i++)
		expect_frame(fd, 0x82, want, sizeof(want));
	send_frame(fd, 0x89, "next", 4);
	expect_frame(fd, 0x8a, "next", 4);
}

Test(conn, backpressure_refuses_without_queueing)
{
	struct srv sv;
	int fd = start_flood(&sv, "flood");
	long sent = ev_wait(2).value, ret = ev_wait(3).value, queued = ev_wait(4).value;

	cr_assert_eq(ret, -ENOBUFS);
	/* everything that was accepted fits, one more frame would not */
	cr_assert_gt(sent, 0);
	cr_assert_leq((size_t)queued, 256 * 1024);
	cr_assert_gt((size_t)queued + 16384, 256 * 1024);
	expect_flood(fd, sent, 'f');
	close(fd);
	srv_stop(&sv);
}

Test(conn, cross_thread_sends_in_flight_count_against_the_budget)
{
	struct srv sv;
	int fd = start_flood(&sv, "xflood");
	long sent = ev_wait(2).value;

	/* Before the owner queued any of them, the posted ones already held
	 * the budget: 1000 x 16 KiB could not all pass. */
	cr_assert_gt(sent, 0);
	cr_assert_leq((size_t)sent * 16384, 256 * 1024, "%ld frames of 16 KiB accepted", sent);
	expect_flood(fd, sent, 'x');
	close(fd);
	srv_stop(&sv);
}

Test(conn, server_close_handshake)
{
	struct srv sv;

	srv_start(&sv);
	int fd = ws_connect(sv.port);
	send_frame(fd, 0x81, "close", 5);
	cr_assert_eq(ev_wait(2).value, 0, "rc_conn_close");
	cr_assert_eq(ev_wait(3).value, -EPIPE, "send after close");
	cr_assert_eq(ev_wait(4).value, -EPIPE, "second close");
	expect_frame(fd, 0x88, "\x0f\xa0" "bye", 5);
	/* frames after the server's close are not delivered */
	send_frame(fd, 0x81, "late", 4);
	send_frame(fd, 0x88, "\x0f\xa0", 2);
	expect_eof(fd);
	/* data the peer sent before it saw our close is still delivered
	 * (RFC 6455 section 1.4), but no longer answered (-EPIPE above) */
	ev_expect(5, EV_MESSAGE, RC_OP_TEXT, "late", 4);
	struct ev e = ev_wait(6);
	cr_assert_eq(e.kind, EV_CLOSE);
	cr_assert_eq(e.code, 4000);
	cr_assert_eq(ev_count(), 7);
	close(fd);
	srv_stop(&sv);
}

Test(conn, peer_close_reaches_on_close_and_is_echoed)
{
	struct srv sv;

	srv_start(&sv);
	int fd = ws_connect(sv.port);
	send_frame(fd, 0x88, "\x0f\xa1why", 5);
	expect_frame(fd, 0x88, "\x0f\xa1why", 5);
	expect_eof(fd);
	ev_expect(1, EV_CLOSE, 0, "why", 3);
	cr_assert_eq(ev_wait(1).code, 4001);
	close(fd);
	srv_stop(&sv);
}

Test(conn, protocol_errors_call_on_close_with_the_code)
{
	static const struct {
		uint8_t b0;
		bool mask;
		const char *payload;
		size_t len;
		uint16_t code;
	} cases[] = {
		{ 0x81, false, "unmasked", 8, 1002 },
		{ 0x83, true, "opcode 3", 8, 1002 },
		{ 0xc1, true, "rsv1", 4, 1002 },
		{ 0x80, true, "orphan", 6, 1002 },
		{ 0x09, true, "frag ping", 9, 1002 },
		{ 0x81, true, "\xc0\xaf", 2, 1007 },
		{ 0x01, true, "\xff", 1, 1007 },
		{ 0x88, true, "\x03\xed", 2, 1002 }, /* close code 1005 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv sv;
		uint8_t buf[64], want[2] = { (uint8_t)(cases[i].code >> 8), (uint8_t)cases[i].code };

		srv_start(&sv);
		int fd = ws_connect(sv.port);
		size_t n = make_frame(buf, cases[i].b0, cases[i].payload, cases[i].len,
				      cases[i].mask ? KEY : NULL);
		write_all(fd, buf, n);
		expect_frame(fd, 0x88, want, 2);
		expect_eof(fd);
		struct ev e = ev_wait(1);
		cr_assert_eq(e.kind, EV_CLOSE, "case %zu", i);
		cr_assert_eq(e.code, cases[i].code, "case %zu: on_close %u", i, e.code);
		cr_assert_eq(ev_count(), 2, "case %zu: a handler ran after the error", i);
		close(fd);
		srv_stop(&sv);
	}
}

Test(conn, eof_without_close_is_1006)
{
	struct srv sv;

	srv_start(&sv);
	int fd = ws_connect(sv.port);
	send_frame(fd, 0x82, "\x01\x02", 2);
	expect_frame(fd, 0x82, "\x01\x02", 2);
	/* half a frame, then EOF */
	uint8_t buf[32];
	write_all(fd, buf, make_frame(buf, 0x82, "abcdef", 6, KEY) - 3);
	shutdown(fd, SHUT_WR);
	expect_eof(fd);
	struct ev e = ev_wait(2);
	cr_assert_eq(e.kind, EV_CLOSE);
	cr_assert_eq(e.code, 1006);
	close(fd);
	srv_stop(&sv);
}

Test(conn, kept_message_outlives_its_handler)
{
	struct srv sv;
	static uint8_t big[3000];

	srv_start(&sv);
	int fd = ws_connect(sv.port);
	/* single frame (delivered in place from the receive buffer) and
	 * fragmented (assembled), each recalled after more traffic */
	for (int round = 0; round < 2; round++) {
		unsigned base = ev_count();
		memset(big, 'k', sizeof(big));
		memcpy(big, "keep", 4);
		big[4] = (uint8_t)('0' + round);
		if (round == 0) {
			send_frame(fd, 0x81, big, 500);
		} else {
			send_frame(fd, 0x01, big, 200);
			send_frame(fd, 0x80, big + 200, 300);
		}
		cr_assert_eq(ev_wait(base + 1).value, 1, "keep_message returned NULL");
		for (int i = 0; i < 20; i++) { /* overwrite the receive buffers */
			send_frame(fd, 0x82, "zzzzzzzzzzzzzzzz", 16);
			expect_frame(fd, 0x82, "zzzzzzzzzzzzzzzz", 16);
		}
		send_frame(fd, 0x81, "recall", 6);
		struct ev e = ev_wait(base + 23);
		cr_assert_eq(e.kind, EV_NOTE);
		cr_assert_eq(e.len, 500, "round %d: recalled %zu bytes", round, e.len);
		cr_assert_eq(memcmp(e.data, big, 500), 0, "kept message changed (round %d)", round);
	}
	close(fd);
	srv_stop(&sv);
}

/* ---- Client side over a socketpair ----------------------------------------------- */

struct cli {
	pthread_t th;
	int fd;
	struct rc_loop *loop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool ready;
	int ret;
};

static void cli_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	ev_add(EV_MESSAGE, op, 0, 0, p, n);
	rc_conn_send(c, op, p, n);
}

static void cli_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n)
{
	ev_add(EV_CLOSE, 0, code, 0, r, n);
	rc_loop_stop(rc_conn_loop(c));
}

static const struct rc_handlers cli_handlers = {
	.on_open = srv_open,
	.on_message = cli_message,
	.on_ping = srv_ping,
	.on_close = cli_close,
};

static void *cli_main(void *arg)
{
	struct cli *cl = arg;

	cl->loop = rc_loop_new(NULL);
	if (cl->loop && !rc_client_wrap_fd(cl->loop, cl->fd, "ws://example.com/path?q=1",
					   NULL, &cli_handlers, NULL))
		cl->ret = -errno;
	pthread_mutex_lock(&cl->mu);
	cl->ready = true;
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->mu);
	if (cl->loop && cl->ret == 0)
		cl->ret = rc_loop_run(cl->loop);
	return NULL;
}

/* Starts a client loop on one end of a socketpair; returns our end after
 * answering its upgrade request with a 101. */
static int cli_start(struct cli *cl)
{
	int sv[2];
	char req[2048], accept[29], resp[256];
	size_t n = 0;

	nevs = 0;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(cl, 0, sizeof(*cl));
	pthread_mutex_init(&cl->mu, NULL);
	pthread_cond_init(&cl->cv, NULL);
	cl->fd = sv[1];
	cr_assert_eq(pthread_create(&cl->th, NULL, cli_main, cl), 0);
	pthread_mutex_lock(&cl->mu);
	while (!cl->ready)
		pthread_cond_wait(&cl->cv, &cl->mu);
	pthread_mutex_unlock(&cl->mu);
	cr_assert_not_null(cl->loop, "rc_loop_new: io_uring unavailable?");
	cr_assert_eq(cl->ret, 0);
	while (n < sizeof(req) - 1 && read_full(sv[0], req + n, 1) == 1) {
		n++;
		if (n >= 4 && memcmp(req + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	req[n] = 0;
	cr_assert(strncmp(req, "GET /path?q=1 HTTP/1.1\r\n", 24) == 0, "request: %s", req);
	/* the default port may be given or not (RFC 6455 section 4.1) */
	cr_assert(strcasestr(req, "\r\nHost: example.com\r\n") ||
		  strcasestr(req, "\r\nHost: example.com:80\r\n"), "%s", req);
	cr_assert_not_null(strcasestr(req, "\r\nUpgrade: websocket\r\n"), "%s", req);
	cr_assert_not_null(strcasestr(req, "\r\nSec-WebSocket-Version: 13\r\n"), "%s", req);
	char *key = strcasestr(req, "\r\nSec-WebSocket-Key: ");
	cr_assert_not_null(key);
	key += 21;
	rc_ws_accept_key((struct rc_span){ key, (size_t)(strstr(key, "\r\n") - key) }, accept);
	int rl = snprintf(resp, sizeof(resp), "HTTP/1.1 101 Switching Protocols\r\n"
			  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			  "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
	write_all(sv[0], resp, (size_t)rl);
	ev_expect(0, EV_OPEN, 0, NULL, 0);
	return sv[0];
}

static void cli_stop(struct cli *cl)
{
	rc_loop_stop(cl->loop);
	pthread_join(cl->th, NULL);
	rc_loop_free(cl->loop);
	cr_assert_eq(cl->ret, 0);
}

Test(conn, client_masks_and_reads_unmasked_frames)
{
	struct cli cl;
	uint8_t buf[70000];
	static uint8_t big[65536];

	int fd = cli_start(&cl);
	/* server frames, byte by byte, of each length form */
	size_t n = make_frame(buf, 0x81, "hi", 2, NULL);
	for (size_t i = 0; i < n; i++)
		write_all(fd, buf + i, 1);
	struct rframe f = read_frame(fd);
	cr_assert(f.masked, "client frames must be masked");
	cr_assert_eq(f.b0, 0x81);
	cr_assert_str_eq((char *)f.data, "hi");
	free(f.data);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i ^ (i >> 9));
	write_all(fd, buf, make_frame(buf, 0x82, big, sizeof(big), NULL));
	f = read_frame(fd);
	cr_assert(f.masked);
	cr_assert_eq(f.len, sizeof(big));
	cr_assert_eq(memcmp(f.data, big, sizeof(big)), 0);
	free(f.data);
	/* a ping is answered with a masked pong */
	write_all(fd, buf, make_frame(buf, 0x89, "pp", 2, NULL));
	f = read_frame(fd);
	cr_assert(f.masked);
	cr_assert_eq(f.b0, 0x8a);
	cr_assert_str_eq((char *)f.data, "pp");
	free(f.data);
	/* a close from the server is answered, then on_close(1000) */
	write_all(fd, buf, make_frame(buf, 0x88, "\x03\xe8", 2, NULL));
	f = read_frame(fd);
	cr_assert(f.masked);
	cr_assert_eq(f.b0, 0x88);
	cr_assert_eq(f.len, 2);
	cr_assert_eq(memcmp(f.data, "\x03\xe8", 2), 0);
	free(f.data);
	shutdown(fd, SHUT_WR); /* the server closes TCP first */
	ev_expect(3, EV_PING, RC_OP_PING, "pp", 2);
	struct ev e = ev_wait(4);
	cr_assert_eq(e.kind, EV_CLOSE);
	cr_assert_eq(e.code, 1000);
	close(fd);
	cli_stop(&cl);
}

Test(conn, client_rejects_masked_server_frames)
{
	struct cli cl;
	uint8_t buf[64];

	int fd = cli_start(&cl);
	write_all(fd, buf, make_frame(buf, 0x81, "masked", 6, KEY));
	struct rframe f = read_frame(fd);
	cr_assert_eq(f.b0, 0x88);
	cr_assert_eq(f.len, 2);
	cr_assert_eq(f.data[0] << 8 | f.data[1], 1002);
	free(f.data);
	struct ev e = ev_wait(1);
	cr_assert_eq(e.kind, EV_CLOSE);
	cr_assert_eq(e.code, 1002);
	close(fd);
	cli_stop(&cl);
}
