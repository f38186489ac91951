/* ringcast C client, blocking API (see ringcast_client.h): the library runs
 * the event API on a loop thread of its own; each call posts its work to
 * that loop and waits for the answer on a condition variable.  Everything
 * the two threads share is guarded by ps->mu. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/c/client_internal.h"

struct bmsg {
	struct rc_pubsub_msg m; /* first: rc_pubsub_msg_free() casts back */
	struct bmsg *next;
};

struct rc__blocking {
	pthread_t thread;
	pthread_cond_t cv;
	bool ready, loop_gone;
	struct bmsg *mh, *mt;
	size_t outstanding; /* publish_nowait not answered yet */
	int first_err;
};

enum req_kind { REQ_SUB, REQ_UNSUB, REQ_PUB, REQ_CLOSE };

struct req {
	struct rc_pubsub *ps;
	enum req_kind kind;
	bool nowait, done, abandoned, has_from;
	int err;
	unsigned flags;
	uint64_t seq, from;
	size_t len;
	char topic[RC_TOPIC_MAX + 1];
	uint8_t data[];
};

/* ---- Time ----------------------------------------------------------------- */

static struct timespec deadline(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* Waits on bl->cv (mu held) until the deadline; false once it passed. */
static bool wait_until(struct rc_pubsub *ps, int timeout_ms, const struct timespec *dl)
{
	if (timeout_ms < 0)
		return pthread_cond_wait(&ps->bl->cv, &ps->mu), true;
	return pthread_cond_timedwait(&ps->bl->cv, &ps->mu, dl) != ETIMEDOUT;
}

/* ---- Loop side ---------------------------------------------------------------- */

static void state_hook(struct rc_pubsub *ps)
{
	bool stop;

	pthread_mutex_lock(&ps->mu);
	pthread_cond_broadcast(&ps->bl->cv);
	stop = ps->state == PS_CLOSED && !ps->bl->loop_gone;
	pthread_mutex_unlock(&ps->mu);
	if (stop)
		rc_loop_stop(ps->loop);
}

static void on_msg(struct rc_pubsub *ps, const struct rc_pubsub_msg *m, void *arg)
{
	struct bmsg *b = malloc(sizeof(*b) + m->topic_len + m->len + m->raw_len + 3);
	char *p = (char *)(b + 1);

	(void)arg;
	if (!b)
		return; /* out of memory: the message is lost, like a full queue */
	b->m = *m;
	b->next = NULL;
	memcpy(p, m->topic, m->topic_len + 1);
	b->m.topic = p;
	p += m->topic_len + 1;
	memcpy(p, m->data, m->len);
	p[m->len] = 0; /* text payloads can be used as C strings */
	b->m.data = (const uint8_t *)p;
	p += m->len + 1;
	memcpy(p, m->raw, m->raw_len);
	p[m->raw_len] = 0;
	b->m.raw = p;
	pthread_mutex_lock(&ps->mu);
	if (ps->bl->mt)
		ps->bl->mt->next = b;
	else
		ps->bl->mh = b;
	ps->bl->mt = b;
	pthread_cond_broadcast(&ps->bl->cv);
	pthread_mutex_unlock(&ps->mu);
}

static void complete(struct rc_pubsub *ps, struct req *r, int err, uint64_t seq)
{
	bool free_it;

	pthread_mutex_lock(&ps->mu);
	if (r->nowait) {
		ps->bl->outstanding--;
		if (err && !ps->bl->first_err)
			ps->bl->first_err = err;
		free_it = true;
	} else {
		r->done = true;
		r->err = err;
		r->seq = seq;
		free_it = r->abandoned;
	}
	pthread_cond_broadcast(&ps->bl->cv);
	pthread_mutex_unlock(&ps->mu);
	if (free_it)
		free(r);
}

static void req_done(struct rc_pubsub *ps, int err, uint64_t seq, void *arg)
{
	complete(ps, arg, err, seq);
}

static void run_req(void *arg)
{
	struct req *r = arg;
	struct rc_pubsub *ps = r->ps;
	int ret = 0;

	if (r->kind == REQ_CLOSE) {
		/* not after the loop ended (it runs leftover posts while freed) */
		if (!ps->bl->loop_gone) {
			rc__ps_shutdown(ps, -ECANCELED);
			rc_loop_stop(ps->loop);
		}
		free(r);
		return;
	}
	if (ps->state == PS_CLOSED)
		ret = ps->err_no ? ps->err_no : -ENOTCONN;
	else if (r->kind == REQ_SUB)
		ret = rc_pubsub_subscribe(ps, r->topic, r->has_from, r->from, on_msg, NULL,
					  req_done, r);
	else if (r->kind == REQ_UNSUB)
		ret = rc_pubsub_unsubscribe(ps, r->topic, req_done, r);
	else
		ret = rc_pubsub_publish(ps, r->topic, r->data, r->len, r->flags, req_done, r);
	if (ret < 0)
		complete(ps, r, ret, 0);
}

static void *loop_main(void *arg)
{
	struct rc_pubsub *ps = arg;
	struct rc_loop *l = rc_loop_new(&ps->copt);
	int ret = l ? 0 : -errno;

	ps->loop = l;
	if (!ret)
		ret = rc__ps_start_timer(ps);
	if (!ret)
		ret = rc_pubsub_connect(ps);
	pthread_mutex_lock(&ps->mu);
	if (ret < 0) {
		ps->state = PS_CLOSED;
		ps->err_no = ret;
		if (!ps->err[0])
			snprintf(ps->err, sizeof(ps->err), "%s", strerror(-ret));
	}
	ps->bl->ready = true;
	pthread_cond_broadcast(&ps->bl->cv);
	pthread_mutex_unlock(&ps->mu);
	if (!ret)
		rc_loop_run(l);
	rc__ps_stop_timer(ps);
	pthread_mutex_lock(&ps->mu);
	ps->bl->loop_gone = true;
	ps->state = PS_CLOSED;
	if (!ps->err_no)
		ps->err_no = -ECONNRESET;
	pthread_cond_broadcast(&ps->bl->cv);
	pthread_mutex_unlock(&ps->mu);
	/* Requests posted before loop_gone run (and fail) in here. */
	rc_loop_free(l);
	return NULL;
}

/* ---- Caller side ------------------------------------------------------------------ */

/* Posts r to the loop (mu held).  Returns 0 or -errno (r not posted). */
static int post_locked(struct rc_pubsub *ps, struct req *r)
{
	if (ps->bl->loop_gone || ps->state == PS_CLOSED)
		return ps->err_no ? ps->err_no : -ENOTCONN;
	return rc_loop_post(ps->loop, run_req, r);
}

static struct req *req_new(struct rc_pubsub *ps, enum req_kind kind, const char *topic,
			   const void *data, size_t len)
{
	struct req *r;

	if (topic && strlen(topic) > RC_TOPIC_MAX)
		return errno = EINVAL, NULL;
	r = calloc(1, sizeof(*r) + len);
	if (!r)
		return errno = ENOMEM, NULL;
	r->ps = ps;
	r->kind = kind;
	if (topic)
		strcpy(r->topic, topic);
	if (len)
		memcpy(r->data, data, len);
	r->len = len;
	return r;
}

/* Posts r and waits for its answer. */
static int call(struct rc_pubsub *ps, struct req *r, int timeout_ms, uint64_t *seq)
{
	struct timespec dl = deadline(timeout_ms < 0 ? 0 : timeout_ms);
	int ret;

	pthread_mutex_lock(&ps->mu);
	ret = post_locked(ps, r);
	if (ret < 0) {
		pthread_mutex_unlock(&ps->mu);
		free(r);
		return ret;
	}
	while (!r->done && wait_until(ps, timeout_ms, &dl))
		;
	if (!r->done) {
		r->abandoned = true;
		pthread_mutex_unlock(&ps->mu);
		return -ETIMEDOUT;
	}
	pthread_mutex_unlock(&ps->mu);
	ret = r->err;
	if (seq)
		*seq = r->seq;
	free(r);
	return ret;
}

/* Opens a client with its own loop thread (see ringcast_client.h). */
struct rc_pubsub *rc_pubsub_open_blocking(const char *url, const struct rc_pubsub_options *o,
					  int timeout_ms, char *err_text, size_t err_cap)
{
	struct rc_pubsub *ps = malloc(sizeof(*ps));
	struct timespec dl = deadline(timeout_ms < 0 ? 0 : timeout_ms);
	pthread_condattr_t ca;
	int ret;

	if (err_text && err_cap)
		err_text[0] = 0;
	if (!ps)
		return errno = ENOMEM, NULL;
	ret = rc__ps_init(ps, url, o);
	if (ret < 0)
		goto err_free;
	ps->bl = calloc(1, sizeof(*ps->bl));
	if (!ps->bl) {
		ret = -ENOMEM;
		goto err_destroy;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ps->bl->cv, &ca);
	pthread_condattr_destroy(&ca);
	ps->state_hook = state_hook;
	ret = -pthread_create(&ps->bl->thread, NULL, loop_main, ps);
	if (ret < 0)
		goto err_bl;
	pthread_mutex_lock(&ps->mu);
	/* The loop thread's start-up is not part of the timeout: even with a
	 * timeout of 0 the loop must exist before anything can close it. */
	while (!ps->bl->ready)
		pthread_cond_wait(&ps->bl->cv, &ps->mu);
	while (ps->state != PS_OPEN && ps->state != PS_CLOSED && wait_until(ps, timeout_ms, &dl))
		;
	ret = ps->state == PS_OPEN ? 0 : ps->state == PS_CLOSED ? ps->err_no : -ETIMEDOUT;
	if (ret == -ETIMEDOUT)
		snprintf(ps->err, sizeof(ps->err), "no welcome from %.200s:%u within %d ms",
			 ps->url.host, ps->url.port, timeout_ms);
	if (ret < 0 && err_text && err_cap)
		snprintf(err_text, err_cap, "%s", ps->err);
	pthread_mutex_unlock(&ps->mu);
	if (ret == 0)
		return ps;
	rc_pubsub_close_blocking(ps);
	errno = -ret;
	return NULL;
err_bl:
	pthread_cond_destroy(&ps->bl->cv);
	free(ps->bl);
err_destroy:
	rc__ps_destroy(ps);
err_free:
	if (err_text && err_cap)
		snprintf(err_text, err_cap, "%s: %s", url,
			 ret == -EPROTONOSUPPORT ? "scheme not supported (ws://, wss:// and http://; "
						   "https:// is not supported)"
			 : ret == -EINVAL ? "bad URL (expected ws[s]://HOST[:PORT][/PATH])"
					  : strerror(-ret));
	free(ps);
	errno = -ret;
	return NULL;
}

/* Blocking subscribe (see ringcast_client.h). */
int rc_pubsub_subscribe_blocking(struct rc_pubsub *ps, const char *topic, bool has_from,
				 uint64_t from, int timeout_ms, uint64_t *seq)
{
	struct req *r = req_new(ps, REQ_SUB, topic, NULL, 0);

	if (!r)
		return -errno;
	r->has_from = has_from;
	r->from = from;
	return call(ps, r, timeout_ms, seq);
}

/* Blocking unsubscribe (see ringcast_client.h). */
int rc_pubsub_unsubscribe_blocking(struct rc_pubsub *ps, const char *topic, int timeout_ms)
{
	struct req *r = req_new(ps, REQ_UNSUB, topic, NULL, 0);

	if (!r)
		return -errno;
	return call(ps, r, timeout_ms, NULL);
}

/* Blocking publish (see ringcast_client.h). */
int rc_pubsub_publish_blocking(struct rc_pubsub *ps, const char *topic, const void *data,
			       size_t len, unsigned flags, int timeout_ms, uint64_t *seq)
{
	struct req *r = req_new(ps, REQ_PUB, topic, data, len);

	if (!r)
		return -errno;
	r->flags = flags;
	return call(ps, r, timeout_ms, seq);
}

/* Queued publish (see ringcast_client.h). */
int rc_pubsub_publish_nowait(struct rc_pubsub *ps, const char *topic, const void *data,
			     size_t len, unsigned flags)
{
	struct req *r;
	int ret;

	if (!rc_topic_valid((const uint8_t *)topic, strlen(topic)))
		return -EINVAL;
	r = req_new(ps, REQ_PUB, topic, data, len);
	if (!r)
		return -errno;
	r->flags = flags;
	r->nowait = true;
	pthread_mutex_lock(&ps->mu);
	while (ps->bl->outstanding >= (size_t)ps->o.max_inflight * 4 && !ps->bl->loop_gone)
		pthread_cond_wait(&ps->bl->cv, &ps->mu);
	ret = post_locked(ps, r);
	if (ret == 0)
		ps->bl->outstanding++;
	pthread_mutex_unlock(&ps->mu);
	if (ret < 0)
		free(r);
	return ret;
}

/* Waits for every queued publish (see ringcast_client.h). */
int rc_pubsub_flush(struct rc_pubsub *ps, int timeout_ms)
{
	struct timespec dl = deadline(timeout_ms < 0 ? 0 : timeout_ms);
	int ret;

	pthread_mutex_lock(&ps->mu);
	while (ps->bl->outstanding && !ps->bl->loop_gone && wait_until(ps, timeout_ms, &dl))
		;
	if (ps->bl->outstanding)
		ret = ps->bl->loop_gone ? (ps->err_no ? ps->err_no : -ECONNRESET) : -ETIMEDOUT;
	else
		ret = ps->bl->first_err;
	ps->bl->first_err = 0;
	pthread_mutex_unlock(&ps->mu);
	return ret;
}

/* Next message (see ringcast_client.h). */
int rc_pubsub_next_message(struct rc_pubsub *ps, int timeout_ms, struct rc_pubsub_msg **m)
{
	struct timespec dl = deadline(timeout_ms < 0 ? 0 : timeout_ms);
	struct bmsg *b;
	int ret = 0;

	pthread_mutex_lock(&ps->mu);
	while (!ps->bl->mh && ps->state != PS_CLOSED && wait_until(ps, timeout_ms, &dl))
		;
	b = ps->bl->mh;
	if (b) {
		ps->bl->mh = b->next;
		if (!ps->bl->mh)
			ps->bl->mt = NULL;
		*m = &b->m;
	} else {
		ret = ps->state == PS_CLOSED ? (ps->err_no ? ps->err_no : -ECONNRESET)
					     : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&ps->mu);
	return ret;
}

/* Frees a message from rc_pubsub_next_message (see ringcast_client.h). */
void rc_pubsub_msg_free(struct rc_pubsub_msg *m)
{
	free(m); /* m is the first member of its struct bmsg */
}

/* Closes and frees (see ringcast_client.h). */
void rc_pubsub_close_blocking(struct rc_pubsub *ps)
{
	struct req *r;

	if (!ps)
		return;
	r = req_new(ps, REQ_CLOSE, NULL, NULL, 0);
	pthread_mutex_lock(&ps->mu);
	/* A closed client's loop stops by itself (state_hook). */
	if (!r || ps->bl->loop_gone || rc_loop_post(ps->loop, run_req, r) < 0) {
		if (!ps->bl->loop_gone)
			rc_loop_stop(ps->loop);
		free(r);
	}
	pthread_mutex_unlock(&ps->mu);
	pthread_join(ps->bl->thread, NULL);
	while (ps->bl->mh) {
		struct bmsg *b = ps->bl->mh;
		ps->bl->mh = b->next;
		free(b);
	}
	pthread_cond_destroy(&ps->bl->cv);
	free(ps->bl);
	rc__ps_destroy(ps);
	free(ps);
}
