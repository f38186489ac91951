/* clients/c: the pub/sub client library against the real broker
 * (build/ringcast, or $RINGCAST_BIN, started here on a free port), plus the
 * client-side JSON codec of proto/json_client.c. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients/c/client_internal.h" /* rc__err_errno */
#include "proto/json_client.h"

/* ---- The broker -------------------------------------------------------------- */

static pid_t broker_pid;
static int broker_port;
static char url[64];

static const char *broker_bin(void)
{
	const char *b = getenv("RINGCAST_BIN");
	return b ? b : "build/ringcast";
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool can_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	close(fd);
	return ok;
}

/* Starts the broker on broker_port and waits until it accepts (10 s). */
static void broker_start(void)
{
	char listen[32];
	struct timespec ts = { 0, 10 * 1000000 };

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", broker_port);
	broker_pid = fork();
	cr_assert(broker_pid >= 0);
	if (broker_pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(broker_bin(), broker_bin(), "--listen", listen, "--threads", "1", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000 && !can_connect(broker_port); i++) {
		int st;
		cr_assert(waitpid(broker_pid, &st, WNOHANG) == 0, "the broker exited");
		nanosleep(&ts, NULL); /* polling for readiness, bounded */
	}
	cr_assert(can_connect(broker_port), "the broker does not accept on %d", broker_port);
}

static void broker_stop(void)
{
	int st;

	if (broker_pid <= 0)
		return;
	kill(broker_pid, SIGTERM);
	waitpid(broker_pid, &st, 0);
	broker_pid = 0;
}

static void setup(void)
{
	if (access(broker_bin(), X_OK) != 0)
		cr_skip_test("%s not built", broker_bin());
	broker_port = free_port();
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", broker_port);
	broker_start();
}

static void teardown(void)
{
	broker_stop();
}

static struct rc_pubsub *open_client(void)
{
	char err[256];
	struct rc_pubsub_options o;
	struct rc_pubsub *ps;

	rc_pubsub_options_default(&o);
	o.backoff_min_ms = 20;
	o.backoff_max_ms = 200;
	ps = rc_pubsub_open_blocking(url, &o, 5000, err, sizeof(err));
	cr_assert(ps, "open %s: %s", url, err);
	return ps;
}

static void expect_msg(struct rc_pubsub *ps, const char *topic, uint64_t seq, const char *data,
		       bool binary)
{
	struct rc_pubsub_msg *m = NULL;
	int ret = rc_pubsub_next_message(ps, 5000, &m);

	cr_assert_eq(ret, 0, "next_message: %d (%s)", ret, rc_pubsub_error(ps));
	cr_expect_str_eq(m->topic, topic);
	cr_expect_eq(m->seq, seq, "seq %llu, want %llu", (unsigned long long)m->seq,
		     (unsigned long long)seq);
	cr_expect_eq(m->len, strlen(data));
	cr_expect(m->len == strlen(data) && !memcmp(m->data, data, m->len), "data %.*s, want %s",
		  (int)m->len, (const char *)m->data, data);
	cr_expect_eq(m->binary, binary);
	rc_pubsub_msg_free(m);
}

/* ---- Blocking API against the broker ---------------------------------------------- */

TestSuite(client, .init = setup, .fini = teardown, .timeout = 30);

Test(client, publish_subscribe_mapping)
{
	struct rc_pubsub *sub = open_client(), *pub = open_client();
	uint64_t seq = 99;

	cr_assert_eq(rc_pubsub_subscribe_blocking(sub, "news", false, 0, 5000, &seq), 0);
	cr_expect_eq(seq, 0, "a new topic's last seq");
	cr_assert_eq(rc_pubsub_publish_blocking(pub, "news", "hello", 5, RC_PUBSUB_AUTO, 5000,
						&seq), 0);
	cr_expect_eq(seq, 1);
	cr_assert_eq(rc_pubsub_publish_blocking(pub, "news", "{\"a\":[1,2]}", 11, RC_PUBSUB_AUTO,
						5000, &seq), 0);
	cr_expect_eq(seq, 2);
	cr_assert_eq(rc_pubsub_publish_blocking(pub, "news", "42", 2, RC_PUBSUB_STRING, 5000,
						NULL), 0);
	cr_expect_eq(rc_pubsub_publish_blocking(pub, "news", "not json", 8, RC_PUBSUB_JSON, 5000,
						NULL), -EINVAL);
	cr_expect_eq(rc_pubsub_publish_blocking(pub, "news", "\xff", 1, RC_PUBSUB_AUTO, 5000,
						NULL), -EILSEQ);
	cr_expect_eq(rc_pubsub_publish_blocking(pub, "bad topic", "x", 1, RC_PUBSUB_AUTO, 5000,
						NULL), -EINVAL);
	expect_msg(sub, "news", 1, "hello", false);
	expect_msg(sub, "news", 2, "{\"a\":[1,2]}", false);
	expect_msg(sub, "news", 3, "42", false);
	rc_pubsub_close_blocking(pub);
	rc_pubsub_close_blocking(sub);
}

Test(client, binary_via_http_arrives_decoded)
{
	struct rc_pubsub *sub = open_client();
	char err[256];
	uint64_t seq = 0;

	cr_assert_eq(rc_pubsub_subscribe_blocking(sub, "bin", false, 0, 5000, NULL), 0);
	cr_assert_eq(rc_pubsub_http_publish(url, "bin", "\x00\x01\xfe", 3, true, 5000, &seq, err,
					    sizeof(err)), 0, "%s", err);
	cr_expect_eq(seq, 1);
	struct rc_pubsub_msg *m;
	cr_assert_eq(rc_pubsub_next_message(sub, 5000, &m), 0);
	cr_expect(m->binary);
	cr_expect(m->len == 3 && !memcmp(m->data, "\x00\x01\xfe", 3));
	rc_pubsub_msg_free(m);
	rc_pubsub_close_blocking(sub);
}

Test(client, many_nowait_publishes_arrive_in_order)
{
	struct rc_pubsub *sub = open_client(), *pub = open_client();
	char buf[32];

	cr_assert_eq(rc_pubsub_subscribe_blocking(sub, "flood", false, 0, 5000, NULL), 0);
	for (int i = 1; i <= 1500; i++) { /* past the broker's json_burst pace */
		int n = snprintf(buf, sizeof(buf), "m%d", i);
		cr_assert_eq(rc_pubsub_publish_nowait(pub, "flood", buf, (size_t)n, 0), 0);
	}
	cr_assert_eq(rc_pubsub_flush(pub, 10000), 0, "%s", rc_pubsub_error(pub));
	for (int i = 1; i <= 1500; i++) {
		snprintf(buf, sizeof(buf), "m%d", i);
		expect_msg(sub, "flood", (uint64_t)i, buf, false);
	}
	rc_pubsub_close_blocking(pub);
	rc_pubsub_close_blocking(sub);
}

Test(client, unsubscribe_stops_delivery)
{
	struct rc_pubsub *sub = open_client(), *pub = open_client();

	cr_assert_eq(rc_pubsub_subscribe_blocking(sub, "a", false, 0, 5000, NULL), 0);
	cr_assert_eq(rc_pubsub_subscribe_blocking(sub, "b", false, 0, 5000, NULL), 0);
	cr_assert_eq(rc_pubsub_unsubscribe_blocking(sub, "a", 5000), 0);
	cr_expect_eq(rc_pubsub_unsubscribe_blocking(sub, "a", 5000), -ENOENT);
	cr_assert_eq(rc_pubsub_publish_blocking(pub, "a", "gone", 4, 0, 5000, NULL), 0);
	cr_assert_eq(rc_pubsub_publish_blocking(pub, "b", "kept", 4, 0, 5000, NULL), 0);
	/* "b" was published after "a": had "a" been delivered it would come first */
	expect_msg(sub, "b", 1, "kept", false);
	rc_pubsub_close_blocking(pub);
	rc_pubsub_close_blocking(sub);
}

Test(client, resume_from_seq)
{
	struct rc_pubsub *pub = open_client(), *sub;
	char buf[16];

	for (int i = 1; i <= 5; i++) {
		uint64_t seq;
		snprintf(buf, sizeof(buf), "r%d", i);
		cr_assert_eq(rc_pubsub_publish_blocking(pub, "hist", buf, 2, 0, 5000, &seq), 0);
		cr_assert_eq(seq, (uint64_t)i);
	}
	sub = open_client();
	cr_assert_eq(rc_pubsub_subscribe_blocking(sub, "hist", true, 3, 5000, NULL), 0);
	expect_msg(sub, "hist", 3, "r3", false);
	expect_msg(sub, "hist", 4, "r4", false);
	expect_msg(sub, "hist", 5, "r5", false);
	cr_assert_eq(rc_pubsub_publish_blocking(pub, "hist", "live", 4, 0, 5000, NULL), 0);
	expect_msg(sub, "hist", 6, "live", false);
	rc_pubsub_close_blocking(pub);
	rc_pubsub_close_blocking(sub);
}

Test(client, reconnects_after_broker_restart_with_new_epoch)
{
	struct rc_pubsub *sub = open_client(), *pub;
	char epoch[80];

	snprintf(epoch, sizeof(epoch), "%s", rc_pubsub_epoch(sub));
	cr_assert(epoch[0], "welcome carried an epoch");
	cr_assert_eq(rc_pubsub_subscribe_blocking(sub, "rr", false, 0, 5000, NULL), 0);
	broker_stop();
	broker_start();
	pub = open_client();
	cr_assert_eq(rc_pubsub_publish_blocking(pub, "rr", "after", 5, 0, 5000, NULL), 0);
	/* whether sub resubscribed before or after this publish, from=1 on the
	 * new epoch brings it */
	expect_msg(sub, "rr", 1, "after", false);
	cr_expect_str_neq(rc_pubsub_epoch(sub), epoch);
	cr_expect_str_eq(rc_pubsub_epoch(sub), rc_pubsub_epoch(pub));
	rc_pubsub_close_blocking(pub);
	rc_pubsub_close_blocking(sub);
}

Test(client, connect_errors)
{
	char err[256];
	struct rc_pubsub_options o;

	rc_pubsub_options_default(&o);
	cr_expect_null(rc_pubsub_open_blocking("https://127.0.0.1:1", &o, 1000, err, sizeof(err)));
	cr_expect_eq(errno, EPROTONOSUPPORT);
	cr_expect(strstr(err, "not supported"), "%s", err);
	cr_expect_null(rc_pubsub_open_blocking("ws://:80", &o, 1000, err, sizeof(err)));
	cr_expect_eq(errno, EINVAL);
	char dead[64];
	snprintf(dead, sizeof(dead), "ws://127.0.0.1:%d", free_port()); /* nobody listens */
	cr_expect_null(rc_pubsub_open_blocking(dead, &o, 5000, err, sizeof(err)));
	cr_expect_eq(errno, ECONNREFUSED, "errno %d: %s", errno, err);
	cr_expect(strstr(err, "refused"), "%s", err);
}

/* ---- Event-loop API ------------------------------------------------------------------- */

struct ev_state {
	struct rc_loop *loop;
	int opened, got;
	uint64_t pub_seq;
};

static void ev_event(struct rc_pubsub *ps, const struct rc_pubsub_event *ev, void *user)
{
	struct ev_state *st = user;

	(void)ps;
	if (ev->kind == RC_PUBSUB_OPEN)
		st->opened++;
}

static void ev_pub_done(struct rc_pubsub *ps, int err, uint64_t seq, void *arg)
{
	struct ev_state *st = arg;

	cr_expect_eq(err, 0);
	st->pub_seq = seq;
	if (st->got) { /* the message may come before or after our ack */
		rc_pubsub_free(ps);
		rc_loop_stop(st->loop);
	}
}

static void ev_sub_done(struct rc_pubsub *ps, int err, uint64_t seq, void *arg)
{
	cr_expect_eq(err, 0);
	cr_expect_eq(seq, 0);
	cr_expect_eq(rc_pubsub_publish(ps, "ev", "[1]", 3, RC_PUBSUB_JSON, ev_pub_done, arg), 0);
}

static void ev_msg(struct rc_pubsub *ps, const struct rc_pubsub_msg *m, void *arg)
{
	struct ev_state *st = arg;

	cr_expect_eq(m->seq, 1);
	cr_expect(m->len == 3 && !memcmp(m->data, "[1]", 3));
	cr_expect(strstr(m->raw, "\"op\":\"msg\""));
	st->got++;
	if (st->pub_seq) {
		rc_pubsub_free(ps);
		rc_loop_stop(st->loop);
	}
}

Test(client, event_loop_api, .timeout = 30)
{
	struct ev_state st = { 0 };
	struct rc_pubsub_options o;
	struct rc_pubsub *ps;

	st.loop = rc_loop_new(NULL);
	cr_assert(st.loop);
	rc_pubsub_options_default(&o);
	o.on_event = ev_event;
	o.user = &st;
	ps = rc_pubsub_new(st.loop, url, &o);
	cr_assert(ps);
	cr_assert_eq(rc_pubsub_subscribe(ps, "ev", false, 0, ev_msg, &st, ev_sub_done, &st), 0);
	cr_expect_eq(rc_pubsub_subscribe(ps, "ev", false, 0, ev_msg, &st, NULL, NULL), -EEXIST);
	cr_expect_eq(rc_pubsub_pending(ps), 1);
	cr_assert_eq(rc_pubsub_connect(ps), 0);
	cr_assert_eq(rc_loop_run(st.loop), 0);
	rc_loop_free(st.loop);
	cr_expect_eq(st.opened, 1);
	cr_expect_eq(st.got, 1);
	cr_expect_eq(st.pub_seq, 1);
}

/* ---- proto/json_client --------------------------------------------------------------- */

Test(json_client, parses_server_messages)
{
	const char *f = "{\"op\":\"msg\",\"topic\":\"a\\/b\",\"seq\":41,\"data\":{\"x\":[1,\"}\"]},"
			"\"new\":[{}]}";
	struct rc_srv_msg m;
	char out[64];

	cr_assert_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), 0);
	cr_expect_eq(m.op, RC_SRV_MSG);
	cr_expect_eq(m.seq, 41);
	cr_expect(m.data.len == 13 && !memcmp(m.data.p, "{\"x\":[1,\"}\"]}", 13), "%.*s",
		  (int)m.data.len, m.data.p);
	cr_expect_eq(rc_json_unescape(out, sizeof(out), m.topic), 3);
	cr_expect(!memcmp(out, "a/b", 3));
	f = "{\"op\":\"err\",\"id\":4,\"code\":\"bad_topic\",\"reason\":\"x\"}";
	cr_assert_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), 0);
	cr_expect_eq(m.op, RC_SRV_ERR);
	cr_expect_eq(rc__err_errno(m.code.p, m.code.len), -EINVAL);
	f = "{\"op\":\"msg\",\"seq\":-1}";
	cr_expect_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), -EBADMSG);
	f = "{\"op\":\"msg\",\"seq\":18446744073709551616}";
	cr_expect_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), -EBADMSG);
	f = "{\"op\":\"msg\"";
	cr_expect_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), -EBADMSG);
	f = "[\"op\"]";
	cr_expect_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), -EBADMSG);
}

Test(json_client, parses_join_and_leave)
{
	const char *f = "{\"op\":\"join\",\"topic\":\"room:1\",\"conn\":7,\"user\":\"u\",\"info\":\"i\"}";
	struct rc_srv_msg m;

	cr_assert_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), 0);
	cr_expect_eq(m.op, RC_SRV_JOIN);
	cr_expect(m.has_conn && m.conn == 7);
	cr_expect(m.user.len == 3 && m.info.len == 3);
	f = "{\"op\":\"leave\",\"topic\":\"t\",\"conn\":1}";
	cr_assert_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), 0);
	cr_expect_eq(m.op, RC_SRV_LEAVE);
	cr_expect_null(m.user.p);
	f = "{\"op\":\"join\",\"topic\":\"t\",\"conn\":1,\"user\":5}";
	cr_expect_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), -EBADMSG, "user not a string");
	f = "{\"op\":\"join\",\"topic\":\"t\",\"conn\":-1}";
	cr_expect_eq(rc_srv_parse((const uint8_t *)f, strlen(f), &m), -EBADMSG, "conn not a u64");
}

Test(json_client, unescape)
{
	char out[16];
	struct rc_span s = { "\"\\ud834\\udd1e\\n\\u00e9\"", 22 };

	cr_assert_eq(rc_json_unescape(out, sizeof(out), s), 7);
	cr_expect(!memcmp(out, "\xf0\x9d\x84\x9e\n\xc3\xa9", 7));
	s = (struct rc_span){ "\"\\udd1e\"", 8 };
	cr_expect_eq(rc_json_unescape(out, sizeof(out), s), -EINVAL);
	s = (struct rc_span){ "\"abcdef\"", 8 };
	cr_expect_eq(rc_json_unescape(out, 3, s), -ENOSPC);
}

Test(json_client, writes_commands)
{
	char out[128];
	ssize_t n = rc_json_write_pub(out, sizeof(out), "t", 1, "a\"b", 3, true, 7);

	cr_assert_gt(n, 0);
	cr_expect(!memcmp(out, "{\"op\":\"pub\",\"topic\":\"t\",\"id\":7,\"data\":\"a\\\"b\"}", (size_t)n),
		  "%.*s", (int)n, out);
	n = rc_json_write_sub(out, sizeof(out), "t", 1, 1, true, 5);
	cr_expect(!memcmp(out, "{\"op\":\"sub\",\"topic\":\"t\",\"id\":1,\"from\":5}", (size_t)n));
	cr_expect_eq(rc_json_write_sub(out, 10, "t", 1, 1, true, 5), -ENOSPC);
}
