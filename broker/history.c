/* History: the last history_size messages of each topic (a ring per topic,
 * guarded by the topic's lock), and one list of every history message of
 * every topic in the order they were appended (guarded by hist.lock, taken
 * inside a topic lock, never the other way round).
 *
 * That list makes the global limits fair and cheap: history_max_bytes
 * evicts the globally oldest messages (one hot topic cannot empty the
 * others' history), history_ttl expires from its head in the background
 * without walking topics, and a topic that must be created when max_topics
 * exist makes room by evicting the oldest history, which removes topics
 * that had only history left.  Within a topic the ring and the list agree
 * on order, so the list's head is always the oldest message of its topic.
 *
 * bk.hist_bytes counts every message's payload and struct and every
 * topic's own footprint (topic.c adds it), against history_max_bytes. */
#include <stdlib.h>
#include <time.h>

#include "broker/broker.h"

static struct {
	pthread_mutex_t lock;
	struct rc_list fifo;        /* rc_msg.hlink, oldest first */
	bool ready;
} hist = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Bytes a history message holds. */
static size_t msg_cost(const struct bk_msg *m)
{
	return sizeof(*m) + m->len;
}

/* The message i places after t's oldest (topic lock held). */
struct bk_msg *bk_hist_at(const struct bk_topic *t, size_t i)
{
	return t->hist[(t->hist_head + i) % t->hist_alloc];
}

/* Doubles t's ring up to hist_cap, oldest first at 0: a topic costs what
 * it holds, not history_size slots from its first message. */
static bool grow(struct bk_topic *t)
{
	size_t n = t->hist_alloc ? t->hist_alloc * 2 : 4;
	struct bk_msg **nh;

	if (t->hist_alloc >= t->hist_cap)
		return false;
	if (n > t->hist_cap)
		n = t->hist_cap;
	if (!(nh = malloc(n * sizeof(*nh))))
		return false;
	for (size_t i = 0; i < t->hist_len; i++)
		nh[i] = bk_hist_at(t, i);
	atomic_fetch_add(&bk.hist_bytes, (n - t->hist_alloc) * sizeof(*nh));
	free(t->hist);
	t->hist = nh;
	t->hist_alloc = n;
	t->hist_head = 0;
	return true;
}

/* Appends m (taking a reference).  A full ring gives up its oldest, which
 * the caller unrefs after unlocking (returned, or NULL).  Topic lock held. */
struct bk_msg *bk_hist_append(struct bk_topic *t, struct bk_msg *m)
{
	struct bk_msg *old = NULL;

	if (t->hist_len == t->hist_alloc && !grow(t)) {
		if (!t->hist_len)
			return NULL; /* no memory for a ring: no history */
		old = bk_hist_drop_oldest(t); /* full (or no memory to grow) */
	}
	bk_msg_ref(m);
	t->hist[(t->hist_head + t->hist_len) % t->hist_alloc] = m;
	t->hist_len++;
	atomic_fetch_add(&bk.hist_bytes, msg_cost(m));
	pthread_mutex_lock(&hist.lock);
	if (!hist.ready) {
		rc_list_init(&hist.fifo);
		hist.ready = true;
	}
	rc_list_add_tail(&hist.fifo, &m->hlink);
	pthread_mutex_unlock(&hist.lock);
	return old;
}

/* Takes t's oldest message out of history; the caller unrefs it after
 * unlocking (the last reference may drop the topic).  Topic lock held. */
struct bk_msg *bk_hist_drop_oldest(struct bk_topic *t)
{
	struct bk_msg *m = t->hist[t->hist_head];

	pthread_mutex_lock(&hist.lock);
	rc_list_del(&m->hlink);
	pthread_mutex_unlock(&hist.lock);
	atomic_fetch_sub(&bk.hist_bytes, msg_cost(m));
	t->hist[t->hist_head] = NULL;
	t->hist_head = (t->hist_head + 1) % t->hist_alloc;
	t->hist_len--;
	return m;
}

/* Drops up to max of t's messages past history_ttl into out (unref them
 * after unlocking); returns how many.  Topic lock held. */
size_t bk_hist_expire(struct bk_topic *t, struct bk_msg **out, size_t max)
{
	const struct bk_config *cfg = bk_cfg();
	uint64_t ttl = bk_ns_history_ttl_ms(cfg, bk_ns_of(cfg, t->name, t->name_len, NULL));
	uint64_t now = rc_now_ms();
	size_t n = 0;

	while (ttl && t->hist_len && n < max && bk_hist_at(t, 0)->time_ms + ttl <= now)
		out[n++] = bk_hist_drop_oldest(t);
	return n;
}

/* The globally oldest history message, referenced, or NULL.  idle_only:
 * the oldest of a topic without subscribers (evicting it can remove the
 * topic; the history of subscribed topics is not given up for a slot),
 * looking at most *steps messages past the head. */
static struct bk_msg *oldest(bool idle_only, size_t *steps)
{
	struct bk_msg *m = NULL;

	pthread_mutex_lock(&hist.lock);
	if (hist.ready) {
		for (struct rc_list *it = hist.fifo.next; it != &hist.fifo && *steps;
		     it = it->next, --*steps) {
			struct bk_msg *c = rc_container_of(it, struct bk_msg, hlink);
			if (!idle_only || !atomic_load(&c->topic->nsubs)) {
				m = c;
				bk_msg_ref(m);
				break;
			}
		}
	}
	pthread_mutex_unlock(&hist.lock);
	return m;
}

/* Takes m out of its topic's history if it is still there (no lock held;
 * the caller holds a reference to m, which holds one to its topic). */
static void evict(struct bk_msg *m)
{
	struct bk_topic *t = m->topic;
	struct bk_msg *out = NULL;

	pthread_mutex_lock(&t->lock);
	if (t->hist_len && bk_hist_at(t, 0) == m)
		out = bk_hist_drop_oldest(t);
	pthread_mutex_unlock(&t->lock);
	if (out)
		bk_msg_unref(out);
}

/* Evicts the globally oldest history messages while over
 * history_max_bytes or past history_ttl, or (make_room) the oldest of
 * topics without subscribers while the registry is at max_topics.  At
 * most `budget` messages looked at.  No lock held. */
void bk_hist_trim(bool make_room, size_t budget)
{
	const struct bk_config *cfg = bk_cfg();
	uint64_t now = rc_now_ms();
	struct bk_msg *m;

	if (make_room) {
		while (bk_topics_count() >= cfg->max_topics && (m = oldest(true, &budget))) {
			evict(m);
			bk_msg_unref(m);
		}
		return;
	}
	while (budget && (m = oldest(false, &budget))) {
		bool over = atomic_load(&bk.hist_bytes) > cfg->history_max_bytes;
		struct bk_topic *t = m->topic;
		uint64_t ttl = bk_ns_history_ttl_ms(cfg, bk_ns_of(cfg, t->name, t->name_len, NULL));
		bool expired = ttl && m->time_ms + ttl <= now;

		if (over || expired)
			evict(m);
		bk_msg_unref(m);
		if (!over && !expired)
			break;
		budget--;
	}
}
