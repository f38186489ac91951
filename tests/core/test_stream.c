/* Byte streams (core/rc.h, "Byte streams"): a response body streamed to a
 * plain socket (the shape of Server-Sent Events), and a dialed TCP stream
 * talking to a socket this test serves.  The peers are plain sockets: the
 * byte stream has no protocol of its own to speak. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/rc.h"

TestSuite(stream, .timeout = 30);

#define WAIT_MS 5000

/* ---- What the handlers saw ------------------------------------------------------ */

enum ev_kind { EV_OPEN = 1, EV_DATA, EV_CLOSE };

struct ev {
	enum ev_kind kind;
	bool why;          /* EV_CLOSE: a reason was given */
	char text[256];    /* EV_DATA: the bytes; EV_CLOSE: the reason */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct ev evs[64];
static unsigned nevs;
static struct rc_conn *stream_conn; /* the server's stream, once answered */

static void ev_add(enum ev_kind kind, bool why, const void *p, size_t n)
{
	pthread_mutex_lock(&mu);
	if (nevs < 64) {
		struct ev *e = &evs[nevs++];
		e->kind = kind;
		e->why = why;
		n = n < sizeof(e->text) - 1 ? n : sizeof(e->text) - 1;
		if (n)
			memcpy(e->text, p, n);
		e->text[n] = 0;
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static struct ev ev_wait(unsigned i)
{
	struct timespec ts;
	struct ev e;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&mu);
	while (nevs <= i && pthread_cond_timedwait(&cv, &mu, &ts) != ETIMEDOUT)
		;
	cr_assert_gt(nevs, i, "event %u never came (%u logged)", i, nevs);
	e = evs[i];
	pthread_mutex_unlock(&mu);
	return e;
}

static void st_open(struct rc_conn *c)
{
	ev_add(EV_OPEN, false, NULL, 0);
	cr_assert_eq(rc_stream_send(c, "PING\r\n", 6), 0);
}

static void st_data(struct rc_conn *c, const uint8_t *p, size_t n)
{
	(void)c;
	ev_add(EV_DATA, false, p, n);
}

static void st_close(struct rc_conn *c, const char *why, size_t len)
{
	(void)c;
	ev_add(EV_CLOSE, why != NULL, why, why ? len : 0);
}

static const struct rc_stream_handlers handlers = { st_open, st_data, st_close };

/* ---- A server answering every request with a stream -------------------------------- */

static void on_http(struct rc_conn *c, const struct rc_http_request *req,
		    const uint8_t *body, size_t len)
{
	bool head = req->method.len == 4 && memcmp(req->method.p, "HEAD", 4) == 0;

	(void)body, (void)len;
	cr_assert_eq(rc_conn_respond_stream(c, 200, "text/event-stream",
					    "Cache-Control: no-store\r\n", &handlers), 0);
	/* A second answer to the same request is refused. */
	cr_assert_eq(rc_conn_respond_stream(c, 200, NULL, NULL, &handlers), -EINVAL);
	/* After a HEAD the stream is over already. */
	cr_assert_eq(rc_stream_send(c, "retry: 1000\n\n", 13), head ? -EPIPE : 0);
	pthread_mutex_lock(&mu);
	stream_conn = c;
	pthread_mutex_unlock(&mu);
}

struct srv {
	struct rc_server *s;
	pthread_t th;
	int port;
};

static void *srv_main(void *arg)
{
	rc_server_run(((struct srv *)arg)->s);
	return NULL;
}

static void srv_start(struct srv *sv)
{
	sv->s = rc_server_new(&(struct rc_server_config){ .threads = 1, .on_http = on_http });
	cr_assert_not_null(sv->s);
	cr_assert_eq(rc_server_listen(sv->s, "127.0.0.1:0"), 0);
	sv->port = rc_server_port(sv->s);
	cr_assert_eq(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

static void srv_stop(struct srv *sv)
{
	rc_server_stop(sv->s);
	pthread_join(sv->th, NULL);
	rc_server_free(sv->s);
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Reads until EOF or n bytes; returns the count.  A timeout fails. */
static size_t read_until_eof(int fd, char *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "no EOF within %d ms", WAIT_MS);
		ssize_t r = recv(fd, p + got, n - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	p[got < n ? got : n - 1] = 0;
	return got;
}

/* Reads until needle has arrived; returns what was read. */
static void read_until(int fd, char *p, size_t n, const char *needle)
{
	size_t got = 0;

	p[0] = 0;
	while (!strstr(p, needle)) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "'%s' never came; got '%s'", needle, p);
		ssize_t r = recv(fd, p + got, n - 1 - got, 0);
		cr_assert_gt(r, 0, "EOF before '%s'; got '%s'", needle, p);
		got += (size_t)r;
		p[got] = 0;
	}
}

static struct rc_conn *wait_stream(void)
{
	for (int i = 0; i < WAIT_MS / 10; i++) {
		pthread_mutex_lock(&mu);
		struct rc_conn *c = stream_conn;
		pthread_mutex_unlock(&mu);
		if (c)
			return c;
		usleep(10000);
	}
	cr_assert_fail("the request was never answered");
	return NULL;
}

Test(stream, response_body_streams_shared_buffers_until_closed)
{
	struct srv sv;
	char buf[4096];

	srv_start(&sv);
	int fd = tcp_connect(sv.port);
	const char *req = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	read_until(fd, buf, sizeof(buf), "retry: 1000\n\n");
	cr_assert(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "head: %s", buf);
	cr_assert(strstr(buf, "Content-Type: text/event-stream\r\n"));
	cr_assert(strstr(buf, "Connection: close\r\n"));
	cr_assert(strstr(buf, "Cache-Control: no-store\r\n"));
	cr_assert_null(strstr(buf, "Content-Length"), "a stream has no length: %s", buf);

	/* From this (foreign) thread: one shared buffer queued twice, a copy,
	 * then the close, which flushes everything before it. */
	struct rc_conn *c = wait_stream();
	struct rc_buf *b = rc_buf_new(32);
	memcpy(rc_buf_data(b), "data: one\n\n", 11);
	rc_buf_set_len(b, 11);
	cr_assert_eq(rc_stream_send_buf(c, b), 0);
	cr_assert_eq(rc_stream_send_buf(c, b), 0);
	rc_buf_unref(b);
	cr_assert_eq(rc_stream_send(c, "data: two\n\n", 11), 0);
	cr_assert_eq(rc_conn_close(c, 1000, NULL, 0), 0);
	read_until_eof(fd, buf, sizeof(buf));
	cr_assert_str_eq(buf, "data: one\n\ndata: one\n\ndata: two\n\n");
	close(fd);
	struct ev e = ev_wait(0);
	cr_assert_eq(e.kind, EV_CLOSE);
	cr_assert_not(e.why, "an orderly end has no reason, got '%s'", e.text);
	srv_stop(&sv);
}

Test(stream, peer_close_ends_the_stream_and_input_is_discarded)
{
	struct srv sv;
	char buf[4096];

	srv_start(&sv);
	int fd = tcp_connect(sv.port);
	/* A request pipelined behind the first is never answered: a streamed
	 * response is the connection's last. */
	const char *req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	read_until(fd, buf, sizeof(buf), "retry: 1000\n\n");
	cr_assert_eq(send(fd, "junk", 4, 0), 4);
	close(fd);
	struct ev e = ev_wait(0);
	cr_assert_eq(e.kind, EV_CLOSE);
	cr_assert_not(e.why);
	srv_stop(&sv);
	cr_assert_eq(nevs, 1, "on_close once, nothing else");
}

Test(stream, head_request_gets_the_head_only)
{
	struct srv sv;
	char buf[4096];

	srv_start(&sv);
	int fd = tcp_connect(sv.port);
	const char *req = "HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n";
	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	read_until_eof(fd, buf, sizeof(buf));
	cr_assert(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "head: %s", buf);
	cr_assert(strstr(buf, "\r\n\r\n") && strstr(buf, "\r\n\r\n")[4] == 0,
		  "nothing after the head: %s", buf);
	close(fd);
	cr_assert_eq(ev_wait(0).kind, EV_CLOSE);
	srv_stop(&sv);
}

/* ---- Dialing ---------------------------------------------------------------------------- */

struct dial {
	struct rc_loop *l;
	pthread_t th;
	char url[128];
	struct rc_client_options opts;
	int err;          /* errno of a refused rc_stream_connect */
};

static void dial_now(void *arg)
{
	struct dial *d = arg;

	if (!rc_stream_connect(d->l, d->url, &d->opts, &handlers, NULL))
		d->err = errno;
}

static void *loop_main(void *arg)
{
	struct dial *d = arg;

	d->l = rc_loop_new(NULL);
	cr_assert_not_null(d->l);
	dial_now(d);
	rc_loop_run(d->l);
	return NULL;
}

static int listen_any(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 4), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void dial_stop(struct dial *d)
{
	rc_loop_stop(d->l);
	pthread_join(d->th, NULL);
	rc_loop_free(d->l);
}

Test(stream, dialed_stream_exchanges_bytes_both_ways)
{
	struct dial d = { 0 };
	char buf[64];
	int port, lfd = listen_any(&port);

	snprintf(d.url, sizeof(d.url), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(pthread_create(&d.th, NULL, loop_main, &d), 0);
	struct pollfd pfd = { lfd, POLLIN, 0 };
	cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "never dialed");
	int fd = accept(lfd, NULL, NULL);
	cr_assert_eq(ev_wait(0).kind, EV_OPEN);
	read_until(fd, buf, sizeof(buf), "PING\r\n");
	cr_assert_str_eq(buf, "PING\r\n");
	cr_assert_eq(send(fd, "+PONG\r\n", 7, 0), 7);
	struct ev e = ev_wait(1);
	cr_assert_eq(e.kind, EV_DATA);
	cr_assert_str_eq(e.text, "+PONG\r\n");
	close(fd);
	e = ev_wait(2);
	cr_assert_eq(e.kind, EV_CLOSE);
	cr_assert_not(e.why, "the peer's EOF is an orderly end, got '%s'", e.text);
	dial_stop(&d);
	close(lfd);
}

Test(stream, refused_dial_says_why)
{
	struct dial d = { 0 };
	int port, lfd = listen_any(&port);

	close(lfd); /* nobody listens there now */
	snprintf(d.url, sizeof(d.url), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(pthread_create(&d.th, NULL, loop_main, &d), 0);
	struct ev e = ev_wait(0);
	cr_assert_eq(e.kind, EV_CLOSE);
	cr_assert(e.why && strstr(e.text, "refused"), "reason: '%s'", e.text);
	dial_stop(&d);
}

Test(stream, bad_urls_are_refused_before_dialing)
{
	static const struct { const char *url; int err; } cases[] = {
		{ "tcp://127.0.0.1", EINVAL },          /* no port */
		{ "tcp://127.0.0.1:0", EINVAL },
		{ "tcp://127.0.0.1:6379/x", EINVAL },   /* a path means nothing here */
		{ "redis://127.0.0.1:6379", EPROTONOSUPPORT },
		{ "127.0.0.1:6379", EINVAL },
	};

	struct rc_loop *l = rc_loop_new(NULL);

	cr_assert_not_null(l);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		cr_assert_null(rc_stream_connect(l, cases[i].url, NULL, &handlers, NULL), "%s",
			       cases[i].url);
		cr_assert_eq(errno, cases[i].err, "%s: errno %d, expected %d", cases[i].url, errno,
			     cases[i].err);
	}
	cr_assert_null(rc_stream_connect(l, "tcp://127.0.0.1:1", NULL, NULL, NULL));
	cr_assert_eq(errno, EINVAL, "handlers are required");
	rc_loop_free(l);
}

/* tls:// against OpenSSL's own server (its -rev mode answers each line
 * reversed), verifying its certificate with a CA file: the TLS layer under
 * a stream is the one wss:// uses. */
Test(stream, tls_stream_verifies_and_talks_to_openssl_s_server)
{
	char dir[] = "/tmp/rc_stream_tlsXXXXXX", cmd[1024];
	struct dial d = { 0 };
	int port, lfd = listen_any(&port);

	cr_assert_not_null(mkdtemp(dir));
	close(lfd);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout k.pem -out c.pem -days 1 -subj /CN=localhost "
		 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null", dir);
	cr_assert_eq(system(cmd), 0, "openssl req");
	snprintf(cmd, sizeof(cmd),
		 "cd %s && exec timeout 20 openssl s_server -accept 127.0.0.1:%d -cert c.pem "
		 "-key k.pem -rev -naccept 3 -quiet >/dev/null 2>&1 & echo $! > %s/pid", dir, port, dir);
	cr_assert_eq(system(cmd), 0);
	/* Ready when it accepts (this probe is its first connection). */
	int probe = -1;
	for (int i = 0; i < WAIT_MS / 10 && probe < 0; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(probe, (struct sockaddr *)&a, sizeof(a)) < 0) {
			close(probe);
			probe = -1;
			usleep(10000);
		}
	}
	cr_assert_geq(probe, 0, "openssl s_server never listened");
	close(probe);

	static char ca[256];
	snprintf(ca, sizeof(ca), "%s/c.pem", dir);
	snprintf(d.url, sizeof(d.url), "tls://localhost:%d", port);
	d.opts = (struct rc_client_options){ .ca_file = ca };
	cr_assert_eq(pthread_create(&d.th, NULL, loop_main, &d), 0);
	cr_assert_eq(ev_wait(0).kind, EV_OPEN);
	char got[64] = "";
	for (unsigned i = 1; !strstr(got, "GNIP"); i++) {
		struct ev e = ev_wait(i);
		cr_assert_eq(e.kind, EV_DATA, "event %u: %d (%s)", i, e.kind, e.text);
		strncat(got, e.text, sizeof(got) - strlen(got) - 1);
	}
	dial_stop(&d);

	/* The same server checked against the system's CAs: refused, and
	 * on_close says it was the certificate. */
	struct dial d2 = { 0 };
	snprintf(d2.url, sizeof(d2.url), "tls://localhost:%d", port);
	nevs = 0;
	cr_assert_eq(pthread_create(&d2.th, NULL, loop_main, &d2), 0);
	struct ev e = ev_wait(0);
	if (e.kind == EV_OPEN)
		e = ev_wait(1);
	cr_assert_eq(e.kind, EV_CLOSE, "%d", e.kind);
	cr_assert(e.why && strstr(e.text, "TLS") && strstr(e.text, "certificate"),
		  "reason: '%s'", e.text);
	dial_stop(&d2);
	snprintf(cmd, sizeof(cmd), "kill $(cat %s/pid) 2>/dev/null; rm -rf %s", dir, dir);
	cr_assert_eq(system(cmd), 0);
}
