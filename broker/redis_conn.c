/* A Redis connection on a broker loop (see redis.h): a byte stream from
 * core (rc_stream_connect), commands written in RESP (redis_proto.c) and
 * pipelined (every command of a loop turn leaves in the core's batched
 * send), replies parsed by hiredis's redisReader and handed to callbacks in
 * command order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/redis.h"

/* ---- A connection ---------------------------------------------------------- */

struct waiter {
	bk_redis_reply_cb cb;
	void *arg;
};

struct bk_redis {
	struct rc_conn *c;
	redisReader *rd;
	const struct bk_redis_handlers *h;
	void *user;
	struct waiter *q;           /* ring of callbacks, in command order */
	size_t qcap, qhead, qlen;
	unsigned setup_left;        /* setup replies still awaited */
	struct bk_resp setup;       /* sent once the socket is open */
	bool ready, closing;
};

void *bk_redis_user(const struct bk_redis *r)
{
	return r->user;
}

bool bk_redis_ready(const struct bk_redis *r)
{
	return r->ready && !r->closing;
}

unsigned bk_redis_inflight(const struct bk_redis *r)
{
	return (unsigned)r->qlen;
}

static int push_waiter(struct bk_redis *r, bk_redis_reply_cb cb, void *arg)
{
	if (r->qlen >= BK_REDIS_MAX_INFLIGHT)
		return -ENOBUFS;
	if (r->qlen == r->qcap) {
		size_t n = r->qcap ? r->qcap * 2 : 64;
		struct waiter *nq = malloc(n * sizeof(*nq));
		if (!nq)
			return -ENOMEM;
		for (size_t i = 0; i < r->qlen; i++)
			nq[i] = r->q[(r->qhead + i) % r->qcap];
		free(r->q);
		r->q = nq;
		r->qcap = n;
		r->qhead = 0;
	}
	r->q[(r->qhead + r->qlen) % r->qcap] = (struct waiter){ cb, arg };
	r->qlen++;
	return 0;
}

/* Fails every waiting callback (the connection is going). */
static void fail_waiters(struct bk_redis *r)
{
	while (r->qlen) {
		struct waiter w = r->q[r->qhead];
		r->qhead = (r->qhead + 1) % r->qcap;
		r->qlen--;
		if (w.cb)
			w.cb(w.arg, NULL);
	}
}

static void setup_reply(void *arg, redisReply *rep)
{
	struct bk_redis *r = arg;

	if (!rep)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		rc_log(RC_LOG_ERROR, "redis: setup command refused: %.*s", (int)rep->len, rep->str);
		r->setup_left = ~0u; /* never ready */
		rc_conn_close(r->c, 0, NULL, 0);
		return;
	}
	if (--r->setup_left == 0) {
		r->ready = true;
		r->h->on_ready(r);
	}
}

static void on_data(struct rc_conn *c, const uint8_t *data, size_t len)
{
	struct bk_redis *r = rc_conn_user(c);
	void *reply;

	if (r->closing)
		return;
	if (redisReaderFeed(r->rd, (const char *)data, len) != REDIS_OK)
		goto bad;
	for (;;) {
		if (redisReaderGetReply(r->rd, &reply) != REDIS_OK)
			goto bad;
		if (!reply)
			return;
		if (r->qlen) {
			struct waiter w = r->q[r->qhead];
			r->qhead = (r->qhead + 1) % r->qcap;
			r->qlen--;
			if (w.cb)
				w.cb(w.arg, reply);
		} else if (r->ready) {
			r->h->on_push(r, reply);
		}
		freeReplyObject(reply);
		if (r->closing)
			return;
	}
bad:
	rc_log(RC_LOG_ERROR, "redis: protocol error: %s", r->rd->errstr);
	rc_conn_close(c, 0, NULL, 0);
}

static void on_open(struct rc_conn *c)
{
	struct bk_redis *r = rc_conn_user(c);

	if (rc_stream_send(c, r->setup.p, r->setup.len) < 0)
		rc_conn_close_now(c, 0, NULL, 0);
	bk_resp_free(&r->setup);
}

static void on_close(struct rc_conn *c, const char *why, size_t why_len)
{
	struct bk_redis *r = rc_conn_user(c);
	char text[160];

	snprintf(text, sizeof(text), "%.*s", why ? (int)why_len : 6, why ? why : "closed");
	if (!r->closing) {
		r->closing = true;
		fail_waiters(r);
		r->h->on_lost(r, text);
	}
	redisReaderFree(r->rd);
	bk_resp_free(&r->setup);
	free(r->q);
	free(r);
}

static const struct rc_stream_handlers stream_handlers = {
	.on_open = on_open,
	.on_data = on_data,
	.on_close = on_close,
};

/* Prepares AUTH, SELECT and the caller's setup commands (sent at open). */
static int prepare_setup(struct bk_redis *r, const struct bk_redis_url *u,
			 const struct bk_resp *setup, unsigned nsetup)
{
	struct bk_resp b = { 0 };
	char db[16];
	int err = 0;

	if (u->pass[0]) {
		const char *argv[] = { "AUTH", u->user, u->pass };
		size_t lens[] = { 4, strlen(u->user), strlen(u->pass) };
		if (u->user[0])
			bk_resp_cmd(&b, 3, argv, lens);
		else
			bk_resp_cmd(&b, 2, (const char *[]){ "AUTH", u->pass },
				    (size_t[]){ 4, strlen(u->pass) });
		r->setup_left++;
	}
	if (u->db) {
		int n = snprintf(db, sizeof(db), "%u", u->db);
		bk_resp_cmd(&b, 2, (const char *[]){ "SELECT", db }, (size_t[]){ 6, (size_t)n });
		r->setup_left++;
	}
	if (setup) {
		bk_resp_put(&b, setup->p, setup->len);
		r->setup_left += nsetup;
	}
	/* PING last: a connection with nothing to set up is ready on its pong. */
	bk_resp_cmd(&b, 1, (const char *[]){ "PING" }, (size_t[]){ 4 });
	r->setup_left++;
	if (b.oom) {
		bk_resp_free(&b);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < r->setup_left && !err; i++)
		err = push_waiter(r, setup_reply, r);
	if (err < 0)
		bk_resp_free(&b);
	else
		r->setup = b;
	return err;
}

/* See redis.h. */
struct bk_redis *bk_redis_open(struct rc_loop *l, const struct bk_redis_url *u,
			       const struct bk_resp *setup, unsigned nsetup,
			       const struct bk_redis_handlers *h, void *user)
{
	static struct rc_options opts;
	struct rc_client_options co = { .options = &opts, .connect_timeout_ms = 5000,
					.ca_file = u->ca_file };
	struct bk_redis *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	rc_options_default(&opts);
	opts.max_backpressure = 64u << 20; /* pipelined commands of every loop */
	if (!(r->rd = redisReaderCreate())) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->h = h;
	r->user = user;
	if (prepare_setup(r, u, setup, nsetup) < 0 ||
	    !(r->c = rc_stream_connect(l, u->addr, &co, &stream_handlers, r))) {
		redisReaderFree(r->rd);
		bk_resp_free(&r->setup);
		free(r->q);
		free(r);
		errno = errno ? errno : ENOMEM;
		return NULL;
	}
	return r;
}

/* See redis.h. */
int bk_redis_call(struct bk_redis *r, const struct bk_resp *cmd, bk_redis_reply_cb cb, void *arg)
{
	int err;

	if (!bk_redis_ready(r))
		return -EPIPE;
	if (cmd->oom)
		return -ENOMEM;
	if ((err = push_waiter(r, cb, arg)) < 0)
		return err;
	if ((err = rc_stream_send(r->c, cmd->p, cmd->len)) < 0) {
		r->qlen--; /* the waiter just pushed, unused */
		return err;
	}
	return 0;
}

/* See redis.h. */
int bk_redis_send(struct bk_redis *r, const struct bk_resp *cmd)
{
	if (!bk_redis_ready(r))
		return -EPIPE;
	return cmd->oom ? -ENOMEM : rc_stream_send(r->c, cmd->p, cmd->len);
}

/* See redis.h. */
void bk_redis_close(struct bk_redis *r)
{
	if (r->closing)
		return;
	r->closing = true;
	fail_waiters(r);
	rc_conn_close_now(r->c, 0, NULL, 0);
}
