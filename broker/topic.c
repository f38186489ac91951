/* The topic registry and fanout (history is in history.c, tombstones of
 * removed topics in tombstone.c).
 *
 * Topics live in one hash table (O(1) lookups; its lock is taken once per
 * publish, to find or create the topic, and only otherwise when a topic's
 * last reference goes).  Each topic has a plain mutex that orders its
 * publishes: under it only the sequence number, the history append and the
 * hand-off to every other thread that has subscribers (one post per thread,
 * never one per subscriber), so every subscriber sees a topic's messages in
 * sequence order.  Delivery, frame building (deflate), history replay and
 * slow-consumer closes happen after unlocking; nothing under a topic lock
 * calls back into the registry.  Subscriber lists are per worker thread and
 * touched only by that thread.
 *
 * A subscription is two-way (topic -> subscribers, client -> subscriptions),
 * so a disconnect costs only that client's subscriptions (Redis pubsub.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/engine.h"

static struct {
	pthread_mutex_t lock;
	struct bk_topic **buckets;
	size_t nbuckets;
	_Atomic size_t count;       /* written under lock, read anywhere */
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint32_t hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

/* Sets up the table; called once before the server runs. */
int bk_registry_init(void)
{
	reg.nbuckets = 1024;
	reg.buckets = calloc(reg.nbuckets, sizeof(*reg.buckets));
	return reg.buckets ? 0 : -ENOMEM;
}

static void grow_table(void)
{
	size_t n = reg.nbuckets * 2;
	struct bk_topic **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < reg.nbuckets; i++) {
		struct bk_topic *t = reg.buckets[i], *next;
		for (; t; t = next) {
			next = t->hnext;
			t->hnext = nb[t->hash & (n - 1)];
			nb[t->hash & (n - 1)] = t;
		}
	}
	free(reg.buckets);
	reg.buckets = nb;
	reg.nbuckets = n;
}

/* What a topic costs besides its messages, counted in history_max_bytes. */
static size_t topic_footprint(const struct bk_topic *t)
{
	return sizeof(*t) + t->name_len + 1 +
	       bk.nthreads * (sizeof(*t->nsubs_thread) + sizeof(*t->local) + sizeof(*t->pending));
}

static void topic_free(struct bk_topic *t)
{
	pthread_mutex_destroy(&t->lock);
	free(t->hist);
	free(t->local);
	free(t->pending);
	free(t->nsubs_thread);
	free(t);
}

/* Registry lock held (the tombstones share it). */
static struct bk_topic *topic_new(const char *name, size_t len, uint32_t h)
{
	const struct bk_config *cfg = bk_cfg();
	struct bk_topic *t = calloc(1, sizeof(*t) + len + 1);

	if (!t)
		return NULL;
	t->nsubs_thread = calloc(bk.nthreads, sizeof(*t->nsubs_thread));
	t->local = calloc(bk.nthreads, sizeof(*t->local));
	t->pending = calloc(bk.nthreads, sizeof(*t->pending));
	/* The ring grows up to it (history.c): its namespace's, if any; Redis
	 * keeps the history of engine = redis. */
	t->hist_cap = bk_engine_remote() ? 0 : bk_ns_history_size(cfg, bk_ns_of(cfg, name, len, NULL));
	if (!t->nsubs_thread || !t->local || !t->pending) {
		free(t->pending);
		free(t->nsubs_thread);
		free(t->local);
		free(t);
		return NULL;
	}
	for (unsigned i = 0; i < bk.nthreads; i++)
		rc_list_init(&t->local[i]);
	rc_list_init(&t->presence);
	/* A plain mutex: nothing done under it calls back into the registry
	 * (no delivery, no close, no callback; see bk_publish). */
	pthread_mutex_init(&t->lock, NULL);
	t->hash = h;
	t->name_len = len;
	memcpy(t->name, name, len);
	/* Numbering goes on where an earlier life of this topic stopped. */
	t->seq = bk_tomb_take(name, len, h, &t->base, &t->base_exact);
	atomic_fetch_add(&bk.hist_bytes, topic_footprint(t));
	return t;
}

static struct bk_topic *lookup(const char *name, size_t len, uint32_t h)
{
	struct bk_topic *t;

	for (t = reg.buckets[h & (reg.nbuckets - 1)]; t; t = t->hnext)
		if (t->hash == h && t->name_len == len && memcmp(t->name, name, len) == 0)
			break;
	return t;
}

/* Creates a topic (registry lock held): NULL with errno ENOSPC at
 * max_topics, EAGAIN when ip is over its topic creation rate, ENOMEM. */
static struct bk_topic *create(const char *name, size_t len, uint32_t h, const uint8_t *ip)
{
	struct bk_topic *t;

	if (reg.count >= bk_cfg()->max_topics) {
		errno = ENOSPC;
		return NULL;
	}
	if (ip && !bk_ip_may_create(ip)) {
		errno = EAGAIN;
		return NULL;
	}
	if (!(t = topic_new(name, len, h))) {
		errno = ENOMEM;
		return NULL;
	}
	if (reg.count >= reg.nbuckets * 2)
		grow_table();
	t->hnext = reg.buckets[h & (reg.nbuckets - 1)];
	reg.buckets[h & (reg.nbuckets - 1)] = t;
	atomic_store_explicit(&reg.count, reg.count + 1, memory_order_relaxed);
	return t;
}

/* Finds (or creates) a topic and takes a reference.  NULL if absent (and
 * !create), with errno ENOSPC when no room can be made under max_topics,
 * EAGAIN when ip (NULL: not limited) is over topic_create_rate, or ENOMEM.
 * At max_topics, the globally oldest history is evicted first: a topic
 * that only had history left makes room (a flood of one-message topics
 * cannot lock everyone out). */
struct bk_topic *bk_topic_get(const char *name, size_t len, bool create_it, const uint8_t *ip)
{
	uint32_t h = hash(name, len);
	struct bk_topic *t;

	for (int attempt = 0;; attempt++) {
		pthread_mutex_lock(&reg.lock);
		t = lookup(name, len, h);
		if (!t && create_it)
			t = create(name, len, h, ip);
		if (t)
			atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
		pthread_mutex_unlock(&reg.lock);
		if (t || !create_it || errno != ENOSPC || attempt)
			return t;
		/* Each eviction may remove a topic; a few hundred at most. */
		bk_hist_trim(true, 1024);
	}
}

/* Takes another reference (the caller holds one). */
void bk_topic_ref(struct bk_topic *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

/* Drops a reference.  Subscriptions and messages (history included) hold
 * references, so the last one goes when the topic has neither subscribers
 * nor history: then it leaves the registry.  Only the drop to zero takes
 * the registry lock (a lookup takes its reference under it, so a topic
 * found there is never freed under the finder). */
void bk_topic_put(struct bk_topic *t)
{
	struct bk_topic **pp;
	unsigned r = atomic_load_explicit(&t->refs, memory_order_relaxed);

	while (r > 1)
		if (atomic_compare_exchange_weak_explicit(&t->refs, &r, r - 1, memory_order_acq_rel,
							  memory_order_relaxed))
			return;
	pthread_mutex_lock(&reg.lock);
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) {
		pthread_mutex_unlock(&reg.lock);
		return;
	}
	for (pp = &reg.buckets[t->hash & (reg.nbuckets - 1)]; *pp != t; pp = &(*pp)->hnext)
		;
	*pp = t->hnext;
	atomic_store_explicit(&reg.count, reg.count - 1, memory_order_relaxed);
	bk_tomb_put(t->name, t->name_len, t->hash, t->seq, t->base, t->base_exact,
		    bk_cfg()->max_topics);
	pthread_mutex_unlock(&reg.lock);
	atomic_fetch_sub(&bk.hist_bytes, topic_footprint(t) + t->hist_alloc * sizeof(*t->hist));
	topic_free(t);
}

/* Calls fn for every topic (at most max) with no lock held (see broker.h):
 * the registry lock is held only to take a reference on each. */
void bk_topics_each(void (*fn)(struct bk_topic *t, void *arg), void *arg, size_t max)
{
	bk_topics_page(fn, arg, 0, max);
}

/* See broker.h. */
void bk_topics_page(void (*fn)(struct bk_topic *t, void *arg), void *arg, size_t skip,
		    size_t max)
{
	size_t cap = bk_topics_count(), n = 0;
	struct bk_topic **all;

	if (skip >= cap)
		return; /* past the end: no walk */
	cap -= skip;
	if (cap > max)
		cap = max;
	if (!(all = malloc(cap * sizeof(*all))))
		return;
	pthread_mutex_lock(&reg.lock);
	for (size_t i = 0; i < reg.nbuckets && n < cap; i++) {
		for (struct bk_topic *t = reg.buckets[i]; t && n < cap; t = t->hnext) {
			if (skip) {
				skip--;
				continue;
			}
			atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
			all[n++] = t;
		}
	}
	pthread_mutex_unlock(&reg.lock);
	for (size_t i = 0; i < n; i++) {
		fn(all[i], arg);
		bk_topic_put(all[i]);
	}
	free(all);
}

/* A topic's last seq, read under its lock. */
uint64_t bk_topic_seq(struct bk_topic *t)
{
	uint64_t seq;

	pthread_mutex_lock(&t->lock);
	seq = t->seq;
	pthread_mutex_unlock(&t->lock);
	return seq;
}

/* Number of topics (any thread, no lock). */
size_t bk_topics_count(void)
{
	return atomic_load_explicit(&reg.count, memory_order_relaxed);
}

/* ---- Fanout -------------------------------------------------------------------- */

/* Delivers m to this thread's exact subscribers of t, then to its pattern
 * subscribers (psub.c), each connection once: the exact ones stamp their
 * connection with this fanout's generation. */
static void fanout_local(struct bk_topic *t, unsigned idx, struct bk_msg *m)
{
	struct rc_list *head = &t->local[idx], *it, *next;
	struct bk_worker *w = &bk.workers[idx];
	bool any = head->next != head;
	uint64_t gen = ++w->gen;

	for (it = head->next; it != head; it = next) {
		struct bk_sub *s = rc_container_of(it, struct bk_sub, tlink);
		next = it->next;
		s->cl->gen = gen;
		bk_deliver(s, m);
	}
	if (w->pats.count && !m->event && bk_psub_fanout(m, gen))
		any = true;
	if (any)
		bk_observe_fanout(m);
}

static void fanout_remote(void *arg)
{
	struct bk_msg *m = arg;
	unsigned idx = bk_worker()->idx;

	fanout_local(m->topic, idx, m);
	/* Only this thread decrements its counter; see bk_publish. */
	atomic_fetch_sub(&m->topic->pending[idx], 1);
	bk_msg_unref(m);
}

/* Refuses publishes and waits for those in progress (see broker.h). */
void bk_stop_publishing(void)
{
	struct timespec pause = { 0, 100000 };

	atomic_store(&bk.draining, true);
	/* A publish holds a topic lock for microseconds; 5 s is a safety net
	 * for a loop stuck elsewhere, never the normal path. */
	for (int i = 0; i < 50000 && atomic_load(&bk.publishing); i++)
		nanosleep(&pause, NULL);
}

static int publish(const char *name, size_t tlen, uint8_t opcode, const void *p,
		   size_t len, const uint8_t *ip, uint64_t *seq, unsigned *subscribers);

/* Posts m to every other thread with subscribers of t (topic lock held);
 * true when this thread (idx) delivers it directly after unlocking.
 * Another thread's earlier message may still be queued to this thread
 * (posted under this lock, so before us): delivering directly would
 * overtake it.  Then this thread's subscribers get the message through
 * the same queue, behind it.  pending[i] only grows under the lock and
 * only thread i shrinks it, so 0 here means nothing is queued. */
static bool hand_off(struct bk_topic *t, struct bk_msg *m, unsigned idx)
{
	bool direct = atomic_load(&t->pending[idx]) == 0;

	for (unsigned i = 0; i < bk.nthreads; i++) {
		if ((!t->nsubs_thread[i] && (m->event || !atomic_load(&bk.workers[i].npats))) ||
		    (i == idx && direct))
			continue;
		bk_msg_ref(m);
		atomic_fetch_add(&t->pending[i], 1);
		/* A failed post is a hole in that thread's stream: its
		 * subscribers' next delivery reports it (bk_deliver). */
		if (bk.io->post(i, fanout_remote, m) < 0) {
			atomic_fetch_sub(&t->pending[i], 1);
			bk_msg_unref(m);
		}
	}
	return direct;
}

/* See broker.h. */
void bk_topic_event(struct bk_topic *t, const char *json, size_t len)
{
	struct bk_worker *w = bk_worker();
	struct bk_msg *m = bk_msg_new(t, RC_OP_TEXT, json, len);
	bool direct;

	if (!m)
		return; /* events are best effort (PROTOCOL.md) */
	m->event = true;
	pthread_mutex_lock(&t->lock);
	m->time_ns = rc_now_ns();
	direct = hand_off(t, m, w->idx);
	pthread_mutex_unlock(&t->lock);
	if (direct)
		fanout_local(t, w->idx, m);
	bk_msg_unref(m);
}

void bk_topic_fanout(struct bk_msg *m)
{
	struct bk_worker *w = bk_worker();
	struct bk_topic *t = m->topic;
	bool direct;

	pthread_mutex_lock(&t->lock);
	t->seq = m->seq;
	direct = hand_off(t, m, w->idx);
	pthread_mutex_unlock(&t->lock);
	if (direct)
		fanout_local(t, w->idx, m);
}

/* Publishes a payload to a topic (see broker.h).  The count of publishes
 * in progress and the draining flag pair up (both sequentially consistent)
 * so bk_stop_publishing either sees this one running or this one sees the
 * drain: no message is acked after the drain passed. */
int bk_publish(const char *name, size_t tlen, uint8_t opcode, const void *p,
	       size_t len, const uint8_t *ip, uint64_t *seq, unsigned *subscribers)
{
	const struct bk_config *cfg = bk_cfg();
	int ret = -ESHUTDOWN;
	bool unknown;

	if (bk_topic_is_pattern(name, tlen))
		return -EINVAL; /* patterns are for subscribing */
	if (len > bk_ns_max_message_size(cfg, bk_ns_of(cfg, name, tlen, &unknown)))
		return -EMSGSIZE; /* its namespace's max_message_size */
	if (unknown)
		return -ENOENT; /* [namespaces] unknown = refuse */
	atomic_fetch_add(&bk.publishing, 1);
	if (!atomic_load(&bk.draining))
		ret = publish(name, tlen, opcode, p, len, ip, seq, subscribers);
	atomic_fetch_sub(&bk.publishing, 1);
	return ret;
}

static int publish(const char *name, size_t tlen, uint8_t opcode, const void *p,
		   size_t len, const uint8_t *ip, uint64_t *seq, unsigned *subscribers)
{
	struct bk_worker *w = bk_worker();
	struct bk_msg *expired[8], *evicted = NULL;
	struct bk_topic *t = bk_topic_get(name, tlen, true, ip);
	struct bk_msg *m;
	size_t nexp = 0;
	bool direct;

	if (!t)
		return -errno;
	m = bk_msg_new(t, opcode, p, len);
	if (!m) {
		bk_topic_put(t);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->lock);
	m->seq = ++t->seq;
	m->time_ns = rc_now_ns();
	m->time_ms = m->time_ns / 1000000;
	if (t->hist_cap) {
		nexp = bk_hist_expire(t, expired, 8);
		evicted = bk_hist_append(t, m);
	}
	*seq = m->seq;
	*subscribers = atomic_load(&t->nsubs);
	direct = hand_off(t, m, w->idx);
	pthread_mutex_unlock(&t->lock);
	/* This thread's subscribers, outside the lock (frames are built and
	 * compressed here, on first use).  Nothing can overtake: a later seq
	 * reaches this thread only through a post, which runs after this
	 * handler returns; only this thread touches its subscriber list. */
	if (direct)
		fanout_local(t, w->idx, m);
	bk_stat_add(BK_MSGS_IN, 1);
	bk_stat_add(BK_BYTES_IN, (int64_t)len);
	for (size_t i = 0; i < nexp; i++)
		bk_msg_unref(expired[i]);
	if (evicted)
		bk_msg_unref(evicted);
	bk_msg_unref(m);
	bk_topic_put(t);
	/* Over history_max_bytes: the globally oldest go first (history.c). */
	if (atomic_load(&bk.hist_bytes) > bk_cfg()->history_max_bytes)
		bk_hist_trim(false, 64);
	return 0;
}

/* ---- Subscriptions --------------------------------------------------------------- */

static struct bk_sub *find_sub(struct bk_client *cl, const char *name, size_t len)
{
	for (struct rc_list *it = cl->subs.next; it != &cl->subs; it = it->next) {
		struct bk_sub *s = rc_container_of(it, struct bk_sub, clink);
		size_t n;
		const char *sn = bk_sub_name(s, &n);
		if (n == len && memcmp(sn, name, len) == 0)
			return s;
	}
	return NULL;
}

/* Plans a replay from seq `from` (topic lock held): a start the broker
 * cannot vouch for (see tombstone.c) gets a reset, a resume point older
 * than the history a gap, then the history from there, referenced.  Out
 * of memory for the list: the history it would hold is a gap too. */
static void plan_replay(struct bk_topic *t, uint64_t from, struct bk_replay *r)
{
	uint64_t oldest = t->hist_len ? bk_hist_at(t, 0)->seq : t->seq + 1;

	if (from == 0)
		from = 1;
	if (!t->base_exact && from <= t->base) {
		r->reset_to = t->base;
		from = t->base + 1;
	}
	if (from < oldest && from <= t->seq) {
		r->gap_from = from;
		r->gap_to = oldest - 1;
		from = oldest;
	}
	r->from = from;
	if (!t->hist_len || from > t->seq)
		return;
	if (!(r->msgs = malloc(t->hist_len * sizeof(*r->msgs)))) {
		r->gap_from = r->gap_to ? r->gap_from : from;
		r->gap_to = t->seq;
		r->from = t->seq + 1;
		return;
	}
	for (size_t i = 0; i < t->hist_len; i++) {
		struct bk_msg *m = bk_hist_at(t, i);
		if (m->seq >= from) {
			bk_msg_ref(m);
			r->msgs[r->n++] = m;
		}
	}
}

/* Sends what plan_replay (or the engine) decided (no lock held; this
 * thread's live deliveries come later, from posts, or from its own next
 * publish). */
void bk_send_replay(struct bk_sub *s, struct bk_replay *r, const struct rc_span *ack_id,
		    const char *epoch)
{
	uint64_t live = r->live ? r->live : r->cur + 1;
	struct bk_topic *t = s->topic;
	struct bk_client *cl = s->cl;

	if (ack_id) { /* before any replayed message, with the seq they follow */
		char ack[256];
		ssize_t n = rc_json_write_ack(ack, sizeof(ack), *ack_id, true, r->cur, epoch);
		if (n > 0)
			bk_send_json(cl, ack, (size_t)n);
	}
	if ((r->reset_to || r->reset) && bk_client_hears_gaps(cl))
		bk_send_reset(cl, t->name, t->name_len, r->reset_to);
	if (r->gap_to && bk_client_hears_gaps(cl))
		bk_send_gap(cl, t->name, t->name_len, r->gap_from, r->gap_to);
	s->next_seq = r->from;
	for (size_t i = 0; i < r->n; i++) {
		bk_deliver(s, r->msgs[i]);
		bk_msg_unref(r->msgs[i]);
	}
	free(r->msgs);
	/* A resume point in the future: live goes on from the next seq. */
	if (s->next_seq > live)
		s->next_seq = live;
}

/* A pattern: no seq of its own (*cur 0), nothing to replay; the ack has
 * no seq.  -EINVAL for a '>' not last, -EPROTO for a from (PROTOCOL.md). */
static int subscribe_pattern(struct bk_client *cl, const char *pat, size_t len, bool has_from,
			     const struct rc_span *ack_id, uint64_t *cur)
{
	char ack[256];
	ssize_t n;
	int ret;

	*cur = 0;
	if (bk_engine_remote())
		return -EOPNOTSUPP; /* a node hears only its exact topics' channels */
	if (has_from)
		return -EPROTO;
	if (find_sub(cl, pat, len))
		return -EEXIST;
	if ((ret = bk_psub_add(cl, pat, len)) < 0)
		return ret;
	if (ack_id && (n = rc_json_write_ack(ack, sizeof(ack), *ack_id, false, 0, bk.epoch)) > 0)
		bk_send_json(cl, ack, (size_t)n);
	return 0;
}

static void remove_sub(struct bk_sub *s);

/* Subscribes cl to a topic (see broker.h).  Returns 0, -EEXIST when already
 * subscribed (*cur still set), -EMLINK over max_topics_per_connection, or
 * -ENOSPC (max_topics), -EAGAIN (topic_create_rate), -ENOENT (an unknown
 * namespace, refused), for a pattern -EINVAL (not bk_psub_ok) or -EPROTO
 * (has_from), or -ENOMEM.  Under the
 * topic lock only the plan and the list insertion; the ack, the replay and
 * any close they cause happen outside it. */
int bk_subscribe(struct bk_client *cl, const char *name, size_t tlen, bool has_from,
		 uint64_t from, const struct rc_span *ack_id, uint64_t *cur)
{
	struct bk_worker *w = bk_worker();
	struct bk_msg *expired[8];
	struct bk_replay r = { 0 };
	struct bk_topic *t;
	struct bk_sub *s;
	size_t nexp = 0;
	bool unknown;
	const struct bk_ns *ns = bk_ns_of(bk_cfg(), name, tlen, &unknown);

	if (unknown)
		return -ENOENT; /* [namespaces] unknown = refuse */
	if (bk_topic_is_pattern(name, tlen))
		return subscribe_pattern(cl, name, tlen, has_from, ack_id, cur);
	if ((s = find_sub(cl, name, tlen))) {
		pthread_mutex_lock(&s->topic->lock);
		*cur = s->topic->seq;
		pthread_mutex_unlock(&s->topic->lock);
		return -EEXIST;
	}
	if (cl->nsubs >= bk_cfg()->max_topics_per_connection)
		return -EMLINK;
	if (!(t = bk_topic_get(name, tlen, true, cl->ip_known ? cl->ip : NULL)))
		return -errno;
	if (!(s = rc_mem_alloc(sizeof(*s)))) {
		bk_topic_put(t);
		return -ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	rc_list_init(&s->hlink);
	s->topic = t;
	s->cl = cl;
	if (ns->presence) /* out of memory: this one is not listed */
		s->pres = bk_presence_new(cl);
	pthread_mutex_lock(&t->lock);
	if (s->pres)
		bk_presence_link(t, s->pres);
	if (t->hist_cap)
		nexp = bk_hist_expire(t, expired, 8);
	r.cur = *cur = t->seq;
	/* Live from the next seq: anything at or below the current one
	 * already in flight to this thread is covered by the replay. */
	r.from = t->seq + 1;
	if (bk_engine_remote())
		s->next_seq = UINT64_MAX; /* nothing until the engine's sync */
	else if (has_from)
		plan_replay(t, from, &r);
	rc_list_add_tail(&t->local[w->idx], &s->tlink);
	t->nsubs_thread[w->idx]++;
	atomic_fetch_add(&t->nsubs, 1);
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; i < nexp; i++)
		bk_msg_unref(expired[i]);
	rc_list_add_tail(&cl->subs, &s->clink);
	cl->nsubs++;
	bk_stat_add(BK_SUBSCRIPTIONS, 1);
	if (!bk_engine_remote()) {
		bk_send_replay(s, &r, ack_id, bk.epoch);
	} else {
		int err = bk_engine_subscribe(s, has_from, from, ack_id);
		if (err < 0) {
			remove_sub(s);
			return err;
		}
	}
	if (ns->join_leave)
		bk_presence_event(t, cl, true);
	return 0;
}

static void remove_sub(struct bk_sub *s)
{
	struct bk_topic *t = s->topic;
	unsigned idx = bk_worker()->idx;

	if (s->eng_id)
		bk_engine_unsubscribed(s);
	if (!t) {
		bk_psub_remove(s);
		return;
	}
	pthread_mutex_lock(&t->lock);
	rc_list_del(&s->tlink);
	t->nsubs_thread[idx]--;
	atomic_fetch_sub(&t->nsubs, 1);
	if (s->pres)
		bk_presence_unlink(t, s->pres);
	pthread_mutex_unlock(&t->lock);
	rc_list_del(&s->clink);
	rc_list_del(&s->hlink);
	s->cl->nsubs--;
	bk_stat_add(BK_SUBSCRIPTIONS, -1);
	if (bk_ns_of(bk_cfg(), t->name, t->name_len, NULL)->join_leave)
		bk_presence_event(t, s->cl, false);
	bk_topic_put(t);
	bk_presence_free(s->pres);
	rc_mem_free(s);
}

/* Removes cl's subscription to a topic: 0 or -ENOENT. */
int bk_unsubscribe(struct bk_client *cl, const char *name, size_t tlen)
{
	struct bk_sub *s = find_sub(cl, name, tlen);

	if (!s)
		return -ENOENT;
	remove_sub(s);
	return 0;
}

/* Removes every subscription of cl (on disconnect). */
void bk_unsubscribe_all(struct bk_client *cl)
{
	while (!rc_list_empty(&cl->subs))
		remove_sub(rc_container_of(cl->subs.next, struct bk_sub, clink));
}
