/* Deferred HTTP answers (rc_conn_respond after on_http returned): the answer
 * to a request that waits for something else (a Redis round trip) comes
 * later, and the requests pipelined behind it are answered after it, in
 * order.  The peer is a plain socket writing raw HTTP. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/rc.h"

TestSuite(http_defer, .timeout = 30);

#define WAIT_MS 5000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct rc_conn *waiting;   /* the request left unanswered (a reference) */
static bool gone;                 /* on_disconnect ran */
static int late_ret = 1;          /* what the deferred rc_conn_respond returned */
static struct rc_loop *loop0;

static void on_http(struct rc_conn *c, const struct rc_http_request *req,
		    const uint8_t *body, size_t len)
{
	(void)body, (void)len;
	if (req->path.len == 6 && memcmp(req->path.p, "/later", 6) == 0) {
		rc_conn_ref(c);
		pthread_mutex_lock(&mu);
		waiting = c;
		loop0 = rc_conn_loop(c);
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		return;
	}
	cr_assert_eq(rc_conn_respond(c, 200, "text/plain", NULL, "now", 3), 0);
	cr_assert_eq(rc_conn_respond(c, 200, "text/plain", NULL, "again", 5), -EPIPE,
		     "a request is answered once");
}

static void on_disconnect(struct rc_conn *c)
{
	(void)c;
	pthread_mutex_lock(&mu);
	gone = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* On the loop thread: the late answer. */
static void answer_now(void *arg)
{
	struct rc_conn *c = arg;
	int r = rc_conn_respond(c, 201, "text/plain", NULL, "later", 5);

	if (r == 0)
		cr_assert_eq(rc_conn_respond(c, 200, NULL, NULL, "x", 1), -EPIPE);
	pthread_mutex_lock(&mu);
	late_ret = r;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	rc_conn_unref(c);
}

static int on_connect(struct rc_conn *c)
{
	(void)c;
	return 0;
}

struct srv {
	struct rc_server *s;
	pthread_t th;
};

static void *srv_main(void *arg)
{
	rc_server_run(((struct srv *)arg)->s);
	return NULL;
}

static int srv_start(struct srv *sv)
{
	sv->s = rc_server_new(&(struct rc_server_config){
		.threads = 1, .on_http = on_http, .on_connect = on_connect,
		.on_disconnect = on_disconnect });
	cr_assert_not_null(sv->s);
	cr_assert_eq(rc_server_listen(sv->s, "127.0.0.1:0"), 0);
	cr_assert_eq(pthread_create(&sv->th, NULL, srv_main, sv), 0);
	return rc_server_port(sv->s);
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

/* Waits (bounded) until *flag or pointer is set under mu. */
static void wait_for(bool (*cond)(void), const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&mu);
	while (!cond() && pthread_cond_timedwait(&cv, &mu, &ts) != ETIMEDOUT)
		;
	bool ok = cond();
	pthread_mutex_unlock(&mu);
	cr_assert(ok, "%s never happened", what);
}

static bool is_waiting(void) { return waiting != NULL; }
static bool is_gone(void) { return gone; }
static bool is_answered(void) { return late_ret != 1; }

/* Reads until EOF, or until n bytes, within WAIT_MS. */
static size_t read_some(int fd, char *p, size_t n, const char *until)
{
	size_t got = 0;

	p[0] = 0;
	while (got < n - 1 && !(until && strstr(p, until))) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, WAIT_MS) != 1)
			break;
		ssize_t r = recv(fd, p + got, n - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		p[got] = 0;
	}
	return got;
}

Test(http_defer, pipelined_requests_wait_for_the_deferred_answer)
{
	struct srv sv;
	char buf[2048];
	int fd = tcp_connect(srv_start(&sv));
	const char *req = "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /now HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /now HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	wait_for(is_waiting, "the /later request");
	cr_assert_eq(rc_loop_post(loop0, answer_now, waiting), 0);
	read_some(fd, buf, sizeof(buf), NULL); /* to EOF: the last asked to close */
	wait_for(is_answered, "the late answer");
	cr_assert_eq(late_ret, 0);
	char *a = strstr(buf, "HTTP/1.1 201"), *b = strstr(buf, "\r\n\r\nnow");
	cr_assert(a && b && a < b, "the deferred answer comes first: %s", buf);
	cr_assert(strstr(b + 7, "\r\n\r\nnow"), "both pipelined requests answered: %s", buf);
	cr_assert_eq(strncmp(buf, "HTTP/1.1 201 Created\r\n", 22), 0, "%s", buf);
	cr_assert(strstr(buf, "\r\n\r\nlater"));
	close(fd);
	srv_stop(&sv);
}

Test(http_defer, answer_after_the_client_left_is_refused)
{
	struct srv sv;
	int fd = tcp_connect(srv_start(&sv));
	const char *req = "GET /later HTTP/1.1\r\nHost: x\r\n\r\n";

	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	wait_for(is_waiting, "the /later request");
	close(fd);
	wait_for(is_gone, "the disconnect");
	cr_assert_eq(rc_loop_post(loop0, answer_now, waiting), 0);
	wait_for(is_answered, "the late answer");
	cr_assert_eq(late_ret, -EPIPE);
	srv_stop(&sv);
}
