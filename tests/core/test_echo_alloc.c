/* Zero allocations on the echo path: a one-thread rc_server and an rc loop
 * client echo 1 KiB messages back and forth; after 1000 warm-up round trips,
 * 10000 more must not call the allocator on either thread (plain, and with
 * permessage-deflate).
 *
 * The counting shim (support/alloc_count.c) is linked into
 * build/tests/unit once, by tests/proto/test_alloc_free.c; this file only
 * uses its header.  Each side reads its own thread's counter inside its
 * handler, so allocations by other threads (Criterion's) cannot leak in. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/rc.h"
#include "support/alloc_count.h"

#define WARMUP 1000
#define MEASURED 10000
#define MSG_LEN 1024

TestSuite(echo_alloc, .timeout = 60);

struct echo_run {
	bool deflate;
	struct rc_server *srv;
	pthread_t thread;
	int run_ret;
	/* server side */
	atomic_uint srv_msgs;
	atomic_ullong srv_before, srv_after;
	/* client side */
	uint8_t msg[MSG_LEN];
	unsigned cli_msgs;
	uint64_t cli_before, cli_after;
	bool mismatch, negotiated, finished;
	uint16_t close_code;
};

static struct echo_run *g_run; /* handlers have no user pointer on the server */

static void srv_on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	unsigned i = atomic_fetch_add(&g_run->srv_msgs, 1) + 1;

	/* Measured window on this side: after the WARMUP-th echo was queued
	 * up to just before the (WARMUP + MEASURED)-th is. */
	if (i == WARMUP + 1)
		atomic_store(&g_run->srv_before, rc_alloc_count_thread());
	if (i == WARMUP + MEASURED + 1)
		atomic_store(&g_run->srv_after, rc_alloc_count_thread());
	rc_conn_send(c, op, p, n);
}

static void *server_main(void *arg)
{
	struct echo_run *r = arg;

	r->run_ret = rc_server_run(r->srv);
	return NULL;
}

static void cli_send(struct rc_conn *c, struct echo_run *r)
{
	/* Vary a few bytes so no two messages are alike (and deflate cannot
	 * just repeat a back reference to the last one). */
	for (unsigned v = r->cli_msgs, i = 0; i < 6; i++, v /= 10)
		r->msg[i] = (uint8_t)('0' + v % 10);
	cr_assert_eq(rc_conn_send(c, RC_OP_TEXT, r->msg, sizeof(r->msg)), 0);
}

static void cli_on_open(struct rc_conn *c)
{
	struct echo_run *r = rc_conn_user(c);

	r->negotiated = rc_conn_deflate(c) != NULL;
	cli_send(c, r);
}

static void cli_on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	struct echo_run *r = rc_conn_user(c);

	if (op != RC_OP_TEXT || n != sizeof(r->msg) || memcmp(p, r->msg, n) != 0) {
		r->mismatch = true;
		rc_loop_stop(rc_conn_loop(c));
		return;
	}
	r->cli_msgs++;
	if (r->cli_msgs == WARMUP)
		r->cli_before = rc_alloc_count_thread();
	if (r->cli_msgs == WARMUP + MEASURED) {
		r->cli_after = rc_alloc_count_thread();
		/* one more round trip so the server samples its end too */
	}
	if (r->cli_msgs == WARMUP + MEASURED + 1) {
		r->finished = true;
		rc_conn_close(c, RC_CLOSE_NORMAL, NULL, 0);
		return;
	}
	cli_send(c, r);
}

static void cli_on_close(struct rc_conn *c, uint16_t code, const uint8_t *reason, size_t len)
{
	struct echo_run *r = rc_conn_user(c);

	r->close_code = code;
	if (!r->finished)
		fprintf(stderr, "echo_alloc: client closed with %u: %.*s\n", code, (int)len,
			(const char *)reason);
	rc_loop_stop(rc_conn_loop(c));
}

/* A listening TCP socket on 127.0.0.1 and a free port. */
static int listen_loopback(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	return fd;
}

static void run_echo(bool deflate)
{
	static const struct rc_handlers srv_h = { .on_message = srv_on_message };
	static const struct rc_handlers cli_h = {
		.on_open = cli_on_open,
		.on_message = cli_on_message,
		.on_close = cli_on_close,
	};
	static struct echo_run run;
	struct rc_options o;
	char url[64];

	cr_assert(rc_alloc_count_active(), "the allocation counter is not linked in");
	memset(&run, 0, sizeof(run));
	g_run = &run;
	run.deflate = deflate;
	for (size_t i = 0; i < sizeof(run.msg); i++)
		run.msg[i] = (uint8_t)('a' + (i * 7 + i / 100) % 26);

	rc_options_default(&o);
	o.deflate.enabled = deflate;
	run.srv = rc_server_new(&(struct rc_server_config){
		.options = &o, .threads = 1, .default_handlers = &srv_h });
	cr_assert_not_null(run.srv, "rc_server_new: %s", strerror(errno));
	/* Our own listening socket: rc_server_listen() binds again only when
	 * the server runs, so a client connecting first could be refused. */
	int lfd = listen_loopback();
	cr_assert_eq(rc_server_listen_fd(run.srv, lfd), 0);
	int port = rc_server_port(run.srv);
	cr_assert_gt(port, 0);
	cr_assert_eq(pthread_create(&run.thread, NULL, server_main, &run), 0);

	struct rc_loop *l = rc_loop_new(&o);
	cr_assert_not_null(l, "rc_loop_new: %s", strerror(errno));
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", port);
	struct rc_client_options co = { .options = &o };
	cr_assert_not_null(rc_client_connect(l, url, &co, &cli_h, &run));
	cr_assert_eq(rc_loop_run(l), 0);
	rc_loop_free(l);
	rc_server_stop(run.srv);
	pthread_join(run.thread, NULL);
	rc_server_free(run.srv);
	close(lfd);
	cr_assert_eq(run.run_ret, 0);

	cr_assert_not(run.mismatch, "an echo did not match what was sent");
	cr_assert(run.finished, "stopped after %u echoes (close code %u)", run.cli_msgs,
		  run.close_code);
	cr_assert_eq(run.negotiated, deflate, "permessage-deflate negotiation");
	uint64_t cli = run.cli_after - run.cli_before;
	uint64_t srv = atomic_load(&run.srv_after) - atomic_load(&run.srv_before);
	cr_assert_eq(srv, 0, "server thread: %llu allocations in %d echoes%s",
		     (unsigned long long)srv, MEASURED, deflate ? " (deflate)" : "");
	cr_assert_eq(cli, 0, "client thread: %llu allocations in %d echoes%s",
		     (unsigned long long)cli, MEASURED, deflate ? " (deflate)" : "");
}

Test(echo_alloc, plain_1k_echo_allocates_nothing)
{
	run_echo(false);
}

Test(echo_alloc, deflate_1k_echo_allocates_nothing)
{
	run_echo(true);
}
