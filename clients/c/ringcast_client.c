/* ringcast C client, event-loop part (see ringcast_client.h): the command
 * queues, the connection and reconnection state machine and the handling of
 * server messages.  URLs, options, setup and the timer thread are in
 * ringcast_setup.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/c/client_internal.h"
#include "proto/base64.h"
#include "proto/json_client.h"
#include "proto/utf8.h"

enum cmd_kind { CMD_SUB, CMD_UNSUB, CMD_PUB };

struct rc__cmd {
	struct rc__cmd *next;
	enum cmd_kind kind;
	uint64_t id;
	rc_pubsub_done_cb done;
	void *arg;
	bool as_string;
	size_t topic_len;
	char topic[RC_TOPIC_MAX + 1];
	size_t len;
	uint8_t *data;
};

struct rc__sub {
	struct rc__sub *next;
	rc_pubsub_msg_cb cb;
	void *arg;
	bool has_last, has_from, queued;
	bool pattern;            /* "news.*", "room.>": matched, never resumed */
	uint64_t last, from;
	size_t topic_len;
	char topic[RC_TOPIC_MAX + 1];
};

static void on_open(struct rc_conn *c);
static void on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n);
static void on_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n);
static const struct rc_handlers handlers = { .on_open = on_open, .on_message = on_message,
					     .on_close = on_close };

/* ---- Commands -------------------------------------------------------------- */

static struct rc__sub *sub_find(struct rc_pubsub *ps, const char *t, size_t n)
{
	for (struct rc__sub *s = ps->subs; s; s = s->next)
		if (s->topic_len == n && !memcmp(s->topic, t, n))
			return s;
	return NULL;
}

static void sub_remove(struct rc_pubsub *ps, struct rc__sub *s)
{
	for (struct rc__sub **pp = &ps->subs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			free(s);
			return;
		}
}

static struct rc__cmd *cmd_new(enum cmd_kind kind, const char *topic, rc_pubsub_done_cb done,
			       void *arg)
{
	size_t n = strlen(topic);
	struct rc__cmd *c;

	if (!rc_topic_valid((const uint8_t *)topic, n))
		return errno = EINVAL, NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return errno = ENOMEM, NULL;
	c->kind = kind;
	c->done = done;
	c->arg = arg;
	c->topic_len = n;
	memcpy(c->topic, topic, n);
	return c;
}

static void cmd_free(struct rc__cmd *c)
{
	free(c->data);
	free(c);
}

static void q_push(struct rc_pubsub *ps, struct rc__cmd *c)
{
	c->next = NULL;
	if (ps->q_tail)
		ps->q_tail->next = c;
	else
		ps->q_head = c;
	ps->q_tail = c;
	ps->nqueued++;
}

static void q_push_front(struct rc_pubsub *ps, struct rc__cmd *c)
{
	c->next = ps->q_head;
	ps->q_head = c;
	if (!ps->q_tail)
		ps->q_tail = c;
	ps->nqueued++;
}

static struct rc__cmd *q_pop(struct rc_pubsub *ps)
{
	struct rc__cmd *c = ps->q_head;

	if (c) {
		ps->q_head = c->next;
		if (!ps->q_head)
			ps->q_tail = NULL;
		ps->nqueued--;
	}
	return c;
}

/* Removes the in-flight command with this id. */
static struct rc__cmd *f_take(struct rc_pubsub *ps, uint64_t id)
{
	struct rc__cmd *prev = NULL;

	for (struct rc__cmd *c = ps->f_head; c; prev = c, c = c->next) {
		if (c->id != id)
			continue;
		if (prev)
			prev->next = c->next;
		else
			ps->f_head = c->next;
		if (ps->f_tail == c)
			ps->f_tail = prev;
		ps->ninflight--;
		return c;
	}
	return NULL;
}

static int build(struct rc_pubsub *ps, const struct rc__cmd *c)
{
	size_t need = rc_json_cmd_bound(c->topic_len, c->len, c->as_string);
	struct rc__sub *s;
	uint64_t from = 0;
	bool has_from = false;

	if (need > ps->scratch_cap) {
		char *p = realloc(ps->scratch, need);
		if (!p)
			return -ENOMEM;
		ps->scratch = p;
		ps->scratch_cap = need;
	}
	switch (c->kind) {
	case CMD_SUB:
		s = sub_find(ps, c->topic, c->topic_len);
		if (s && s->pattern) {
			/* a pattern has no seq of its own: it goes on live */
		} else if (s && s->has_last) {
			has_from = true;
			from = s->last + 1;
		} else if (s && s->has_from) {
			has_from = true;
			from = s->from;
		}
		return (int)rc_json_write_sub(ps->scratch, need, c->topic, c->topic_len, c->id,
					      has_from, from);
	case CMD_UNSUB:
		return (int)rc_json_write_unsub(ps->scratch, need, c->topic, c->topic_len, c->id);
	case CMD_PUB:
		return (int)rc_json_write_pub(ps->scratch, need, c->topic, c->topic_len, c->data,
					      c->len, c->as_string, c->id);
	}
	return -EINVAL;
}

/* Sends queued commands while the connection is open, the in-flight window
 * has room and the pacing bucket has tokens. */
static void pump(struct rc_pubsub *ps)
{
	uint64_t now = rc_now_ms();

	if (ps->state != PS_OPEN || !ps->conn)
		return;
	if (ps->o.cmd_rate) {
		ps->tokens += (double)(now - ps->tokens_ms) * ps->o.cmd_rate / 1000.0;
		if (ps->tokens > ps->o.cmd_burst)
			ps->tokens = ps->o.cmd_burst;
	}
	ps->tokens_ms = now;
	while (ps->q_head && ps->ninflight < ps->o.max_inflight) {
		struct rc__cmd *c;
		int n, ret;

		if (ps->o.cmd_rate && ps->tokens < 1.0) {
			rc__ps_timer_arm(ps, 1 + (uint64_t)((1.0 - ps->tokens) * 1000.0 /
							    ps->o.cmd_rate));
			return;
		}
		c = ps->q_head;
		n = build(ps, c);
		if (n < 0)
			return rc__ps_timer_arm(ps, 10);
		ret = rc_conn_send(ps->conn, RC_OP_TEXT, ps->scratch, (size_t)n);
		if (ret == -ENOBUFS || ret == -ENOMEM)
			return rc__ps_timer_arm(ps, 10);
		if (ret < 0)
			return; /* closing: on_close requeues */
		q_pop(ps);
		ps->tokens -= 1.0;
		c->next = NULL;
		if (ps->f_tail)
			ps->f_tail->next = c;
		else
			ps->f_head = c;
		ps->f_tail = c;
		ps->ninflight++;
	}
}

static void enqueue(struct rc_pubsub *ps, struct rc__cmd *c)
{
	c->id = ps->next_id++;
	q_push(ps, c);
	pump(ps);
}

/* Subscribes (see ringcast_client.h). */
int rc_pubsub_subscribe(struct rc_pubsub *ps, const char *topic, bool has_from,
			uint64_t from, rc_pubsub_msg_cb cb, void *arg,
			rc_pubsub_done_cb done, void *done_arg)
{
	struct rc__cmd *c = cmd_new(CMD_SUB, topic, done, done_arg);
	struct rc__sub *s;

	if (!c)
		return -errno;
	if (sub_find(ps, c->topic, c->topic_len)) {
		cmd_free(c);
		return -EEXIST;
	}
	if (has_from && rc_topic_is_pattern(c->topic, c->topic_len)) {
		cmd_free(c);
		return -EINVAL; /* a pattern cannot resume (PROTOCOL.md) */
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		cmd_free(c);
		return -ENOMEM;
	}
	s->cb = cb;
	s->arg = arg;
	s->has_from = has_from;
	s->from = from ? from : 1;
	s->pattern = rc_topic_is_pattern(c->topic, c->topic_len);
	s->queued = true;
	s->topic_len = c->topic_len;
	memcpy(s->topic, c->topic, c->topic_len);
	s->next = ps->subs;
	ps->subs = s;
	enqueue(ps, c);
	return 0;
}

/* Unsubscribes (see ringcast_client.h). */
int rc_pubsub_unsubscribe(struct rc_pubsub *ps, const char *topic,
			  rc_pubsub_done_cb done, void *done_arg)
{
	struct rc__sub *s = sub_find(ps, topic, strlen(topic));
	struct rc__cmd *c;

	if (!s)
		return -ENOENT;
	c = cmd_new(CMD_UNSUB, topic, done, done_arg);
	if (!c)
		return -errno;
	sub_remove(ps, s);
	enqueue(ps, c);
	return 0;
}

/* Publishes (see ringcast_client.h). */
int rc_pubsub_publish(struct rc_pubsub *ps, const char *topic, const void *data,
		      size_t len, unsigned flags, rc_pubsub_done_cb done, void *done_arg)
{
	bool json = flags != RC_PUBSUB_STRING && rc_json_valid(data, len);
	struct rc__cmd *c;

	if (flags == RC_PUBSUB_JSON && !json)
		return -EINVAL;
	if (!json && !rc_utf8_valid(data, len))
		return -EILSEQ;
	c = cmd_new(CMD_PUB, topic, done, done_arg);
	if (!c)
		return -errno;
	c->as_string = !json;
	c->len = len;
	c->data = malloc(len ? len : 1);
	if (!c->data) {
		cmd_free(c);
		return -ENOMEM;
	}
	memcpy(c->data, data, len);
	enqueue(ps, c);
	return 0;
}

/* ---- Connection --------------------------------------------------------------- */

/* Starts connecting (see ringcast_client.h). */
int rc_pubsub_connect(struct rc_pubsub *ps)
{
	struct rc_conn *c;

	if (ps->conn)
		return -EALREADY;
	c = rc_client_connect(ps->loop, ps->url.ws, &ps->cco, &handlers, ps);
	if (!c) {
		int err = errno == EHOSTUNREACH ? -EHOSTUNREACH : -errno;
		rc__ps_set_err(ps, err, "cannot connect to %s:%u: %s", ps->url.host, ps->url.port,
			err == -EHOSTUNREACH ? "host name not resolved" : strerror(-err));
		return err;
	}
	ps->conn = c;
	pthread_mutex_lock(&ps->mu);
	ps->state = PS_CONNECTING;
	pthread_mutex_unlock(&ps->mu);
	return 0;
}

static void emit(struct rc_pubsub *ps, const struct rc_pubsub_event *ev)
{
	if (ps->o.on_event && !ps->freeing)
		ps->o.on_event(ps, ev, ps->o.user);
}

static void notify(struct rc_pubsub *ps)
{
	if (ps->state_hook)
		ps->state_hook(ps);
}

static void fail_all(struct rc_pubsub *ps, int err)
{
	struct rc__cmd *c;

	while (ps->f_head)
		q_push_front(ps, f_take(ps, ps->f_tail->id));
	while ((c = q_pop(ps))) {
		if (c->done)
			c->done(ps, err, 0, c->arg);
		cmd_free(c);
	}
}

/* Closes for good (see client_internal.h). */
void rc__ps_shutdown(struct rc_pubsub *ps, int err)
{
	fail_all(ps, err);
	if (ps->conn && ps->state == PS_OPEN)
		rc_conn_close(ps->conn, RC_CLOSE_NORMAL, NULL, 0);
	if (ps->state != PS_CLOSED) {
		pthread_mutex_lock(&ps->mu);
		ps->state = PS_CLOSED;
		if (!ps->err_no) {
			ps->err_no = err;
			snprintf(ps->err, sizeof(ps->err), "client closed");
		}
		pthread_mutex_unlock(&ps->mu);
	}
	notify(ps);
}

static void really_free(struct rc_pubsub *ps)
{
	rc__ps_destroy(ps);
	free(ps);
}

/* Frees (see ringcast_client.h). */
void rc_pubsub_free(struct rc_pubsub *ps)
{
	if (!ps)
		return;
	rc__ps_stop_timer(ps);
	rc__ps_shutdown(ps, -ECANCELED);
	ps->freeing = true;
	/* A connection still dialing cannot be closed through rc.h: its
	 * on_open or on_close comes later and finishes the job. */
	if (!ps->conn && !ps->t_posted)
		really_free(ps);
}

static void on_open(struct rc_conn *c)
{
	struct rc_pubsub *ps = rc_conn_user(c);

	if (ps->freeing || ps->state == PS_CLOSED)
		rc_conn_close(c, RC_CLOSE_NORMAL, NULL, 0);
	/* Commands wait for the welcome, which carries the epoch. */
}

static int conn_errno(const char *r, size_t n, bool was_open)
{
	if (was_open)
		return -ECONNRESET;
	if (!r || n == 0)
		return -ETIMEDOUT;
	if (memmem(r, n, "refused", 7))
		return -ECONNREFUSED;
	if (memmem(r, n, "timed out", 9))
		return -ETIMEDOUT;
	return -ECONNABORTED;
}

/* Backoff: min * 2^retries capped at max, then 75..125% of that. */
static unsigned backoff(struct rc_pubsub *ps)
{
	uint64_t d = ps->o.backoff_min_ms;

	for (unsigned i = 0; i < ps->retries && d < ps->o.backoff_max_ms; i++)
		d *= 2;
	if (d > ps->o.backoff_max_ms)
		d = ps->o.backoff_max_ms;
	return (unsigned)(d * 3 / 4 + (uint64_t)rand() % (d / 2 + 1));
}

static void on_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n)
{
	struct rc_pubsub *ps = rc_conn_user(c);
	bool was_open = ps->state == PS_OPEN;
	bool retry;
	int err = conn_errno((const char *)r, n, was_open);


	ps->conn = NULL;
	if (ps->freeing) {
		if (!ps->t_posted)
			really_free(ps);
		return;
	}
	if (ps->state == PS_CLOSED)
		return notify(ps);
	if (was_open)
		rc__ps_set_err(ps, err, "connection to %s:%u closed (%u%s%.*s)", ps->url.host,
			ps->url.port, code, n ? ": " : "", (int)n, (const char *)r);
	else
		rc__ps_set_err(ps, err, "cannot connect to %s:%u: %.*s", ps->url.host, ps->url.port,
			(int)n, n ? (const char *)r : "timed out");
	/* What was in flight is sent again, first, in its order. */
	while (ps->f_head)
		q_push_front(ps, f_take(ps, ps->f_tail->id));
	for (struct rc__sub *s = ps->subs; s; s = s->next)
		s->queued = false;
	for (struct rc__cmd *q = ps->q_head; q; q = q->next) {
		struct rc__sub *s = q->kind == CMD_SUB ? sub_find(ps, q->topic, q->topic_len) : NULL;
		if (s)
			s->queued = true;
	}
	retry = (ps->ever_open ? ps->o.reconnect : ps->o.retry_first) &&
		(ps->o.max_retries == 0 || ps->retries < ps->o.max_retries);
	if (!retry) {
		struct rc_pubsub_event ev = { .kind = RC_PUBSUB_CLOSED, .err = err,
					      .reason = ps->err };
		rc__ps_shutdown(ps, err);
		emit(ps, &ev);
		return;
	}
	unsigned delay = backoff(ps);
	struct rc_pubsub_event ev = { .kind = RC_PUBSUB_DOWN, .err = err, .reason = ps->err,
				      .delay_ms = delay };
	ps->retries++;
	pthread_mutex_lock(&ps->mu);
	ps->state = PS_WAIT;
	pthread_mutex_unlock(&ps->mu);
	ps->retry_at = rc_now_ms() + delay;
	rc__ps_timer_arm(ps, delay);
	emit(ps, &ev);
	notify(ps);
}

static void retry_now(struct rc_pubsub *ps)
{
	int ret = rc_pubsub_connect(ps);

	if (ret < 0) {
		/* Same as a failed attempt: schedule the next one. */
		unsigned delay = backoff(ps);
		ps->retries++;
		ps->retry_at = rc_now_ms() + delay;
		rc__ps_timer_arm(ps, delay);
	}
}

/* Timer fired (see client_internal.h). */
void rc__ps_on_timer(void *arg)
{
	struct rc_pubsub *ps = arg;

	pthread_mutex_lock(&ps->tmu);
	ps->t_posted = false;
	pthread_cond_signal(&ps->tcv); /* a deadline may have come meanwhile */
	pthread_mutex_unlock(&ps->tmu);
	if (ps->freeing) {
		if (!ps->conn)
			really_free(ps);
		return;
	}
	if (ps->state == PS_WAIT && rc_now_ms() >= ps->retry_at)
		retry_now(ps);
	else if (ps->state == PS_WAIT)
		rc__ps_timer_arm(ps, ps->retry_at - rc_now_ms());
	pump(ps);
}

/* ---- Server messages ----------------------------------------------------------- */

static void on_welcome(struct rc_pubsub *ps, const struct rc_srv_msg *m)
{
	char epoch[sizeof(ps->epoch)];
	ssize_t n = m->epoch.p ? rc_json_unescape(epoch, sizeof(epoch) - 1, m->epoch) : 0;
	bool changed;

	epoch[n < 0 ? 0 : n] = 0;
	changed = ps->epoch[0] && strcmp(epoch, ps->epoch) != 0;
	if (changed)
		for (struct rc__sub *s = ps->subs; s; s = s->next) {
			/* numbering restarted: everything the new broker has is new */
			s->has_last = true;
			s->last = 0;
		}
	/* Resubscribe before anything else queued, so publishes of ours that
	 * follow are seen by our own subscriptions as before. */
	for (struct rc__sub *s = ps->subs; s; s = s->next) {
		struct rc__cmd *c;
		if (s->queued || !(c = cmd_new(CMD_SUB, s->topic, NULL, NULL)))
			continue;
		c->id = ps->next_id++;
		s->queued = true;
		q_push_front(ps, c);
	}
	pthread_mutex_lock(&ps->mu);
	memcpy(ps->epoch, epoch, sizeof(epoch));
	ps->state = PS_OPEN;
	ps->ever_open = true;
	ps->retries = 0;
	pthread_mutex_unlock(&ps->mu);
	emit(ps, &(struct rc_pubsub_event){ .kind = changed ? RC_PUBSUB_EPOCH : RC_PUBSUB_OPEN });
	if (changed)
		emit(ps, &(struct rc_pubsub_event){ .kind = RC_PUBSUB_OPEN });
	notify(ps);
	pump(ps);
}

/* Maps an err code (see client_internal.h). */
int rc__err_errno(const char *code, size_t len)
{
	static const struct { const char *code; int err; } map[] = {
		{ "\"bad_topic\"", -EINVAL }, { "\"not_subscribed\"", -ENOENT },
		{ "\"too_many_topics\"", -EMLINK }, { "\"rate_limited\"", -EAGAIN },
		{ "\"internal\"", -EIO },
	};

	for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
		if (len == strlen(map[i].code) && !memcmp(code, map[i].code, len))
			return map[i].err;
	return -EPROTO;
}

static void on_answer(struct rc_pubsub *ps, const struct rc_srv_msg *m)
{
	uint64_t id = 0;
	struct rc__cmd *c = NULL;
	struct rc__sub *s;
	int err = 0;

	for (size_t i = 0; i < m->id.len && m->id.p[i] >= '0' && m->id.p[i] <= '9'; i++)
		id = id * 10 + (uint64_t)(m->id.p[i] - '0');
	if (m->id.len)
		c = f_take(ps, id);
	if (m->op == RC_SRV_ERR) {
		err = rc__err_errno(m->code.p, m->code.len);
		rc__ps_set_err(ps, err, "server error %.*s: %.*s", (int)m->code.len, m->code.p,
			(int)m->reason.len, m->reason.p);
	}
	if (!c) {
		if (err)
			emit(ps, &(struct rc_pubsub_event){ .kind = RC_PUBSUB_ERROR, .err = err,
							    .reason = ps->err });
		return pump(ps);
	}
	if (c->kind == CMD_SUB && (s = sub_find(ps, c->topic, c->topic_len))) {
		s->queued = false;
		if (err) {
			sub_remove(ps, s);
		} else if (!s->has_last) {
			s->has_last = true;
			s->last = s->has_from ? s->from - 1 : m->seq;
		}
	}
	if (c->done)
		c->done(ps, err, m->seq, c->arg);
	cmd_free(c);
	pump(ps);
}

static int decode_data(struct rc_pubsub *ps, const struct rc_srv_msg *m,
		       struct rc_pubsub_msg *out)
{
	ssize_t n;

	if (m->data.len + 1 > ps->dec_cap) {
		char *p = realloc(ps->dec, m->data.len + 1);
		if (!p)
			return -ENOMEM;
		ps->dec = p;
		ps->dec_cap = m->data.len + 1;
	}
	out->binary = m->base64;
	if (m->data.p[0] != '"') {
		out->data = (const uint8_t *)m->data.p;
		out->len = m->data.len;
		return 0;
	}
	n = rc_json_unescape(ps->dec, ps->dec_cap, m->data);
	if (n >= 0 && m->base64)
		n = rc_base64_decode((uint8_t *)ps->dec, ps->dec_cap, ps->dec, (size_t)n);
	if (n < 0)
		return (int)n;
	out->data = (const uint8_t *)ps->dec;
	out->len = (size_t)n;
	return 0;
}

/* The subscription a message of topic t belongs to: the exact one, else
 * the first pattern that matches (the broker sends a message once per
 * connection however many of its subscriptions match). */
static struct rc__sub *sub_for(struct rc_pubsub *ps, const char *t, size_t n)
{
	struct rc__sub *s = sub_find(ps, t, n);

	for (struct rc__sub *p = ps->subs; p && !s; p = p->next)
		if (p->pattern && rc_topic_matches(p->topic, p->topic_len, t, n))
			s = p;
	return s;
}

static void on_msg(struct rc_pubsub *ps, const struct rc_srv_msg *m, const uint8_t *raw,
		   size_t len)
{
	char topic[RC_TOPIC_MAX + 1];
	ssize_t tn = rc_json_unescape(topic, RC_TOPIC_MAX, m->topic);
	struct rc_pubsub_msg out = { .topic = topic, .seq = m->seq, .raw = (const char *)raw,
				     .raw_len = len };
	struct rc__sub *s;

	if (tn < 0 || !m->has_seq || !(s = sub_for(ps, topic, (size_t)tn)))
		return;
	topic[tn] = 0;
	out.topic_len = (size_t)tn;
	if (m->op == RC_SRV_GAP) {
		if (m->has_to && (!s->has_last || m->to > s->last)) {
			s->has_last = true;
			s->last = m->to;
		}
		emit(ps, &(struct rc_pubsub_event){ .kind = RC_PUBSUB_GAP, .topic = topic,
						    .from = m->from, .to = m->to });
		return;
	}
	if (!s->pattern && s->has_last && m->seq <= s->last)
		return; /* already delivered before a reconnect */
	if (!m->data.p || decode_data(ps, m, &out) < 0)
		return;
	s->has_last = !s->pattern;
	s->last = m->seq;
	if (s->cb)
		s->cb(ps, &out, s->arg);
}

/* A join or leave (namespaces with join_leave = on) of a subscribed topic:
 * an event with the strings decoded (cut to their buffers). */
static void on_presence(struct rc_pubsub *ps, const struct rc_srv_msg *m)
{
	char topic[RC_TOPIC_MAX + 1], user[256], info[256];
	ssize_t tn = rc_json_unescape(topic, RC_TOPIC_MAX, m->topic);
	ssize_t un = m->user.p ? rc_json_unescape(user, sizeof(user) - 1, m->user) : -1;
	ssize_t in = m->info.p ? rc_json_unescape(info, sizeof(info) - 1, m->info) : -1;

	if (tn < 0 || !m->has_conn)
		return;
	topic[tn] = 0;
	if (un >= 0)
		user[un] = 0;
	if (in >= 0)
		info[in] = 0;
	emit(ps, &(struct rc_pubsub_event){ .kind = m->op == RC_SRV_JOIN ? RC_PUBSUB_JOIN
									 : RC_PUBSUB_LEAVE,
					    .topic = topic, .conn = m->conn,
					    .user = un >= 0 ? user : NULL,
					    .info = in >= 0 ? info : NULL });
}

static void on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	struct rc_pubsub *ps = rc_conn_user(c);
	struct rc_srv_msg m;

	if (ps->freeing || op != RC_OP_TEXT || rc_srv_parse(p, n, &m) < 0)
		return;
	switch (m.op) {
	case RC_SRV_WELCOME:
		on_welcome(ps, &m);
		break;
	case RC_SRV_ACK:
	case RC_SRV_ERR:
		on_answer(ps, &m);
		break;
	case RC_SRV_JOIN:
	case RC_SRV_LEAVE:
		on_presence(ps, &m);
		break;
	case RC_SRV_MSG:
	case RC_SRV_GAP:
		/* The gap's "from" is not a resume position: keep has_seq
		 * meaningful for both. */
		m.has_seq = m.has_seq || m.op == RC_SRV_GAP;
		on_msg(ps, &m, p, n);
		break;
	default:
		break;
	}
}

/* Frees the client's memory (see client_internal.h). */
void rc__ps_destroy(struct rc_pubsub *ps)
{
	struct rc__cmd *c;

	while (ps->f_head)
		cmd_free(f_take(ps, ps->f_head->id));
	while ((c = q_pop(ps)))
		cmd_free(c);
	while (ps->subs)
		sub_remove(ps, ps->subs);
	free(ps->scratch);
	free(ps->dec);
	free(ps->auth_header);
	pthread_mutex_destroy(&ps->mu);
	pthread_mutex_destroy(&ps->tmu);
	pthread_cond_destroy(&ps->tcv);
}
