/* engine = redis: subscriptions, and the exact hand-over from Redis's
 * history to the live channel (on loop 0, see engine_redis.c).
 *
 * A node listens to a topic's channel while it has local subscribers.  A
 * new subscriber waits (next_seq = UINT64_MAX: it gets nothing) until the
 * channel subscription is confirmed; then SYNC_SCRIPT reads the topic's
 * seq, epoch and history from `from` in one atomic step.  Every message
 * published after that step reaches the channel after the confirmation,
 * so the replay is the history up to the script's seq plus the channel
 * messages above it that this node fanned out while the script was in
 * flight (kept in the topic's buffer), and the live stream goes on from
 * there: no duplicate, no hole.  The answer is posted to the subscriber's
 * thread after those fanouts and before any later one (posts to a thread
 * run in order).
 *
 * After a reconnect every topic is subscribed again, channel messages are
 * held until the node's own sync says where it left off: what was missed
 * is fanned out from history, what history no longer has becomes an exact
 * `gap`, and a topic whose epoch changed (Redis lost it) gets a `reset`
 * and its new numbering from 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine_internal.h"

static _Atomic uint64_t next_id = 1;

/* ---- The topic's buffer ---------------------------------------------------- */

static void buf_add(struct etopic *et, struct bk_msg *m)
{
	/* Full: the oldest go (a subscriber that needed them gets a gap). */
	while (et->nbuf && (et->nbuf == BK_ENGINE_BUF_MAX ||
			    et->buf_bytes + m->len > BK_ENGINE_BUF_BYTES)) {
		struct bk_msg *old = et->buf[0];
		et->buf_lost = old->seq;
		et->buf_bytes -= old->len;
		memmove(et->buf, et->buf + 1, (et->nbuf - 1) * sizeof(*et->buf));
		et->nbuf--;
		bk_msg_unref(old);
	}
	if (!et->buf && !(et->buf = malloc(BK_ENGINE_BUF_MAX * sizeof(*et->buf)))) {
		et->buf_lost = m->seq;
		return;
	}
	bk_msg_ref(m);
	et->buf[et->nbuf++] = m;
	et->buf_bytes += m->len;
}

static void buf_clear(struct etopic *et)
{
	for (size_t i = 0; i < et->nbuf; i++)
		bk_msg_unref(et->buf[i]);
	free(et->buf);
	et->buf = NULL;
	et->nbuf = 0;
	et->buf_bytes = 0;
}

static void fanout(struct etopic *et, struct bk_msg *m)
{
	bk_topic_fanout(m);
	et->last = m->seq;
	if (et->syncing)
		buf_add(et, m);
}

/* See engine_internal.h. */
void bk__eng_on_message(struct etopic *et, struct bk_msg *m)
{
	if (!et->synced)
		buf_add(et, m); /* held until the sync says where we are */
	else if (m->seq > et->last)
		fanout(et, m);
}

/* ---- Every subscriber of a topic on every thread: reset or gap ------------- */

struct bcast {
	struct bk_topic *t;         /* referenced */
	bool reset;
	uint64_t to;                /* gap: up to it */
};

static void bcast_run(void *arg)
{
	struct bcast *b = arg;
	struct bk_topic *t = b->t;
	struct rc_list *head = &t->local[bk_worker()->idx];

	for (struct rc_list *it = head->next; it != head; it = it->next) {
		struct bk_sub *s = rc_container_of(it, struct bk_sub, tlink);
		bool json = s->cl->mode == BK_MODE_JSON;
		if (s->next_seq == UINT64_MAX || s->cl->closing)
			continue; /* not synced yet: its own sync covers it */
		if (b->reset) {
			if (json)
				bk_send_reset(s->cl, t->name, t->name_len, 0);
			s->next_seq = 1;
		} else if (s->next_seq <= b->to) {
			if (json)
				bk_send_gap(s->cl, t->name, t->name_len, s->next_seq, b->to);
			s->next_seq = b->to + 1;
		}
	}
	bk_topic_put(t);
	free(b);
}

/* In order with the fanouts: posted like them, run here for loop 0. */
static void bcast(struct bk_topic *t, bool reset, uint64_t to)
{
	for (unsigned i = 0; i < bk.nthreads; i++) {
		struct bcast *b = malloc(sizeof(*b));
		if (!b)
			continue; /* that thread's subscribers see a hole later */
		b->t = t;
		b->reset = reset;
		b->to = to;
		bk_topic_ref(t);
		if (i == 0)
			bcast_run(b);
		else if (bk.io->post(i, bcast_run, b) < 0) {
			bk_topic_put(t);
			free(b);
		}
	}
}

/* ---- Sync requests ----------------------------------------------------------- */

static void req_free(struct subreq *q)
{
	for (size_t i = 0; i < q->r.n; i++)
		bk_msg_unref(q->r.msgs[i]);
	free(q->r.msgs);
	bk_topic_put(q->t);
	free(q);
}

/* On the subscriber's thread: its ack, replay, and live from there. */
static void sub_done(void *arg)
{
	struct subreq *q = arg;
	struct rc_list *head = &q->t->local[bk_worker()->idx];
	struct rc_span id = { q->id, q->id_len };
	struct bk_sub *s = NULL;

	for (struct rc_list *it = head->next; it != head; it = it->next) {
		struct bk_sub *c = rc_container_of(it, struct bk_sub, tlink);
		if (c == q->sub && c->eng_id == q->sub_id) {
			s = c;
			break;
		}
	}
	if (s && q->failed) {
		struct bk_client *cl = s->cl;
		char buf[256];
		ssize_t n = rc_json_write_err(buf, sizeof(buf), id, "unavailable",
					      "the engine (Redis) could not subscribe; try again");
		if (cl->mode == BK_MODE_JSON && n > 0)
			bk_send_json(cl, buf, (size_t)n);
		else if (cl->mode != BK_MODE_JSON)
			rc_conn_close(cl->conn, RC_CLOSE_INTERNAL, "engine unavailable", 18);
		bk_unsubscribe(cl, q->t->name, q->t->name_len);
	} else if (s) {
		bk_send_replay(s, &q->r, q->has_ack ? &id : NULL, q->epoch);
		q->r.n = 0;
		q->r.msgs = NULL;
	}
	req_free(q);
}

static void send_sync(struct etopic *et, struct subreq *q);

/* The topic is not wanted any more: leave its channel. */
static void maybe_teardown(struct etopic *et)
{
	struct etopic **pp;

	if (et->nsubs || et->syncing || !rc_list_empty(&et->waiting))
		return;
	if (et->chan != CHAN_OFF && atomic_load(&eng.ready))
		bk__eng_chan(et->t, false);
	for (pp = bk__eng_bucket(et->t->name, et->t->name_len); *pp != et; pp = &(*pp)->next)
		;
	*pp = et->next;
	buf_clear(et);
	bk_topic_put(et->t);
	free(et);
}

/* A stream entry "seq-1" {o, t, d} as a message of t, or NULL. */
static struct bk_msg *entry_msg(struct bk_topic *t, const redisReply *e)
{
	const redisReply *f;
	uint64_t seq = 0, op = 0, tm = 0;
	const char *d = NULL;
	size_t dl = 0;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
		return NULL;
	seq = strtoull(e->element[0]->str, NULL, 10);
	f = e->element[1];
	for (size_t i = 0; i + 1 < f->elements; i += 2) {
		const redisReply *k = f->element[i], *v = f->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1)
			continue;
		if (k->str[0] == 'o')
			op = strtoull(v->str, NULL, 10);
		else if (k->str[0] == 't')
			tm = strtoull(v->str, NULL, 10);
		else if (k->str[0] == 'd') {
			d = v->str;
			dl = v->len;
		}
	}
	if (!seq || !d || (op != RC_OP_TEXT && op != RC_OP_BINARY))
		return NULL;
	return bk__eng_msg(t, seq, (uint8_t)op, tm, d, dl);
}

/* Node side of a sync reply: where this node stands, and (after a
 * reconnect) what its subscribers missed. */
static void node_update(struct etopic *et, bool node, uint64_t cur, const char *ep,
			bool reset, const redisReply *h)
{
	if (!et->known) {
		et->known = true;
		et->last = cur;
		snprintf(et->epoch, sizeof(et->epoch), "%s", ep);
	} else if (node) {
		if (reset) {
			snprintf(et->epoch, sizeof(et->epoch), "%s", ep);
			bcast(et->t, true, 0);
			et->last = 0;
		}
		for (size_t i = 0; i < h->elements; i++) {
			struct bk_msg *m = entry_msg(et->t, h->element[i]);
			if (m && m->seq > et->last)
				fanout(et, m);
			if (m)
				bk_msg_unref(m);
		}
		if (cur > et->last) { /* beyond what history still has */
			bcast(et->t, false, cur);
			et->last = cur;
		}
	}
	if (!et->synced) { /* what came meanwhile, above where we are */
		size_t n = et->nbuf;
		struct bk_msg **held = et->buf;
		et->synced = true;
		et->buf = NULL;
		et->nbuf = 0;
		et->buf_bytes = 0;
		for (size_t i = 0; i < n; i++) {
			if (held[i]->seq > et->last)
				fanout(et, held[i]);
			bk_msg_unref(held[i]);
		}
		free(held);
	}
}

/* Subscriber side: the replay from history and the buffer. */
static void plan(struct etopic *et, struct subreq *q, uint64_t cur, bool reset,
		 const redisReply *h)
{
	struct bk_replay *r = &q->r;
	size_t cap = h->elements + et->nbuf;
	uint64_t first;

	r->cur = cur;
	r->from = q->has_from ? (q->from ? q->from : 1) : cur + 1;
	if (reset) {
		r->reset = true;
		r->from = 1;
	}
	r->live = (et->last > cur ? et->last : cur) + 1;
	if (cap && !(r->msgs = malloc(cap * sizeof(*r->msgs))))
		cap = 0; /* no replay: the gap below covers it */
	for (size_t i = 0; i < h->elements && r->n < cap; i++) {
		struct bk_msg *m = entry_msg(et->t, h->element[i]);
		if (m && m->seq >= r->from && m->seq <= cur)
			r->msgs[r->n++] = m;
		else if (m)
			bk_msg_unref(m);
	}
	first = r->n ? r->msgs[0]->seq : cur + 1;
	if (r->from < first && r->from <= cur) {
		r->gap_from = r->from;
		r->gap_to = first - 1;
		r->from = first;
	}
	for (size_t i = 0; i < et->nbuf && r->n < cap; i++) {
		struct bk_msg *m = et->buf[i];
		if (m->seq > cur && m->seq <= et->last) {
			bk_msg_ref(m);
			r->msgs[r->n++] = m;
		}
	}
}

static void sync_reply(void *arg, redisReply *rep)
{
	struct subreq *q = arg;
	struct etopic *et = bk__eng_find(q->t->name, q->t->name_len);
	bool node = !q->sub, ok;
	redisReply **e;
	char ep[BK_EPOCH_LEN];

	if (!et) { /* cannot be: a topic waits for its syncs */
		req_free(q);
		return;
	}
	et->syncing--;
	if (!rep || bk__eng_redirect(rep)) { /* again once (re)connected */
		if (q->sub)
			rc_list_add_tail(&et->waiting, &q->link);
		else
			req_free(q);
		return;
	}
	e = rep->element;
	ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 4 &&
	     e[0]->type == REDIS_REPLY_INTEGER && e[1]->type == REDIS_REPLY_STRING &&
	     e[1]->len < BK_EPOCH_LEN && e[2]->type == REDIS_REPLY_ARRAY &&
	     e[3]->type == REDIS_REPLY_INTEGER;
	if (!ok) {
		rc_log(RC_LOG_WARN, "redis: sync of topic '%s' failed: %.*s", q->t->name,
		       rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 16,
		       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		q->failed = true;
	} else {
		memcpy(ep, e[1]->str, e[1]->len);
		ep[e[1]->len] = 0;
		snprintf(q->epoch, sizeof(q->epoch), "%s", ep);
		if (q->sub)
			plan(et, q, (uint64_t)e[0]->integer, e[3]->integer == 1, e[2]);
	}
	/* The subscriber's answer goes before the fanouts node_update makes:
	 * they are live for it. */
	if (node)
		req_free(q);
	else if (q->thread == 0)
		sub_done(q);
	else if (bk.io->post(q->thread, sub_done, q) < 0)
		req_free(q); /* that subscriber waits for nothing: its client times out */
	if (ok)
		node_update(et, node, (uint64_t)e[0]->integer, ep, e[3]->integer == 1, e[2]);
	if (!et->syncing && et->synced)
		buf_clear(et);
	maybe_teardown(et);
}

static void send_sync(struct etopic *et, struct subreq *q)
{
	char meta[RC_TOPIC_MAX * 3 + 16], hist[sizeof(meta)], from[24], size[24];
	const struct bk_topic *t = et->t;
	const char *epoch = bk_engine_epoch();
	const char *known = q->sub ? "" : et->epoch;
	struct bk_resp b = { 0 };
	size_t ml = bk_redis_key(meta, sizeof(meta), t->name, t->name_len, ":m");
	size_t hl = bk_redis_key(hist, sizeof(hist), t->name, t->name_len, ":h");
	uint64_t f = q->has_from ? (q->from ? q->from : 1) : 0;
	int fl = snprintf(from, sizeof(from), "%llu", (unsigned long long)f);
	int sl = snprintf(size, sizeof(size), "%llu",
			  (unsigned long long)bk_cfg()->history_size);
	const char *argv[] = { "EVALSHA", eng.sha_sync, "2", meta, hist, from, epoch, size, known };
	size_t lens[] = { 7, 40, 1, ml, hl, (size_t)fl, strlen(epoch), (size_t)sl, strlen(known) };

	struct bk_redis *c = atomic_load(&eng.ready) ? bk__eng_cmd_for(meta, ml) : NULL;

	bk_resp_cmd(&b, 9, argv, lens);
	if (c && bk_redis_call(c, &b, sync_reply, q) == 0)
		et->syncing++;
	else if (q->sub)
		rc_list_add_tail(&et->waiting, &q->link); /* again when connected */
	else
		req_free(q);
	bk_resp_free(&b);
}

/* ---- Arrivals on loop 0 -------------------------------------------------------- */

static struct etopic *etopic_get(struct bk_topic *t)
{
	struct etopic *et = bk__eng_find(t->name, t->name_len);
	struct etopic **b;

	if (et)
		return et;
	if (!(et = calloc(1, sizeof(*et))))
		return NULL;
	et->t = t;
	bk_topic_ref(t);
	rc_list_init(&et->waiting);
	b = bk__eng_bucket(t->name, t->name_len);
	et->next = *b;
	*b = et;
	return et;
}

/* See engine_internal.h. */
void bk__eng_sub_arrive(void *arg)
{
	struct subreq *q = arg;
	struct etopic *et = etopic_get(q->t);
	bool ready = atomic_load(&eng.ready);

	if (!et) {
		q->failed = true;
		if (q->thread == 0 || bk.io->post(q->thread, sub_done, q) < 0)
			sub_done(q);
		return;
	}
	et->nsubs++;
	if (et->chan == CHAN_OFF && ready) {
		et->chan = CHAN_SUBSCRIBING;
		bk__eng_chan(et->t, true);
	}
	if (et->chan == CHAN_LIVE && ready)
		send_sync(et, q); /* after the node's own sync, if one is in flight */
	else
		rc_list_add_tail(&et->waiting, &q->link);
}

/* See engine_internal.h. */
void bk__eng_unsub_arrive(void *arg)
{
	struct bk_topic *t = arg;
	struct etopic *et = bk__eng_find(t->name, t->name_len);

	if (et && et->nsubs) {
		et->nsubs--;
		maybe_teardown(et);
	}
	bk_topic_put(t);
}

/* See engine_internal.h. */
void bk__eng_chan_live(struct etopic *et)
{
	et->chan = CHAN_LIVE;
	if (et->known) { /* back after a reconnect: the node's own sync first */
		struct subreq *q = calloc(1, sizeof(*q));
		if (q) {
			q->t = et->t;
			bk_topic_ref(et->t);
			q->has_from = true;
			q->from = et->last + 1;
			send_sync(et, q);
		} else {
			et->synced = true; /* live goes on; its holes become gaps */
		}
	}
	while (!rc_list_empty(&et->waiting)) {
		struct subreq *q = rc_container_of(et->waiting.next, struct subreq, link);
		rc_list_del(&q->link);
		send_sync(et, q);
		if (!atomic_load(&eng.ready))
			break; /* lost meanwhile: it waits again */
	}
}

static void each_topic(void (*fn)(struct etopic *et))
{
	for (size_t i = 0; i < eng.nbuckets; i++)
		for (struct etopic *et = eng.buckets[i], *next; et; et = next) {
			next = et->next;
			fn(et);
		}
}

static void resubscribe_one(struct etopic *et)
{
	et->chan = CHAN_SUBSCRIBING;
	bk__eng_chan(et->t, true);
}

static void lost_one(struct etopic *et)
{
	et->chan = CHAN_OFF;
	et->synced = false;
}

void bk__eng_resubscribe(void)
{
	each_topic(resubscribe_one);
}

void bk__eng_lost(void)
{
	if (eng.buckets)
		each_topic(lost_one);
}

/* ---- From the subscriber's thread ------------------------------------------------ */

/* See engine.h. */
int bk_engine_subscribe(struct bk_sub *s, bool has_from, uint64_t from,
			const struct rc_span *ack_id)
{
	struct subreq *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->t = s->topic;
	bk_topic_ref(q->t);
	q->sub = s;
	q->sub_id = atomic_fetch_add(&next_id, 1);
	q->thread = bk_worker()->idx;
	q->has_from = has_from;
	q->from = from;
	if (ack_id && ack_id->len <= sizeof(q->id)) {
		q->has_ack = true;
		memcpy(q->id, ack_id->p, ack_id->len);
		q->id_len = ack_id->len;
	}
	s->eng_id = q->sub_id;
	if (bk.io->post(0, bk__eng_sub_arrive, q) < 0) {
		s->eng_id = 0;
		req_free(q);
		return -ENOMEM;
	}
	return 0;
}

/* See engine.h. */
void bk_engine_unsubscribed(struct bk_sub *s)
{
	bk_topic_ref(s->topic);
	if (bk.io->post(0, bk__eng_unsub_arrive, s->topic) < 0)
		bk_topic_put(s->topic); /* the channel stays subscribed: extra traffic only */
}
