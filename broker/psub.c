/* Pattern subscriptions ("news.*", "room.>"; see match.h for the rules).
 *
 * Each worker thread keeps its connections' patterns in its own trie
 * (bk_worker.pats), touched only by that thread: a publish posts the
 * message to every thread that has patterns (bk_worker.npats) or exact
 * subscribers, and there the fanout walks the trie for the concrete topic
 * (topic.c's fanout_local).  So the publishing thread takes no lock for
 * patterns, the per-topic order holds (the same post queue as exact
 * subscribers), and a message reaches a connection once however many of
 * its subscriptions match: each fanout stamps the connections it reached
 * with a per-thread generation number.
 *
 * Sequence numbers stay per concrete topic (each message carries its
 * topic and seq).  A pattern subscription has no seq of its own: it
 * replays nothing and reports dropped deliveries as a count (PROTOCOL.md,
 * "Pattern subscriptions"). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"

struct bk_psub {
	struct bk_sub sub;           /* sub.topic is NULL */
	struct bk_match_entry entry; /* in the worker's trie */
	size_t len;
	char name[];
};

static struct bk_psub *psub_of(const struct bk_sub *s)
{
	return rc_container_of(s, struct bk_psub, sub);
}

/* See broker.h. */
const char *bk_sub_name(const struct bk_sub *s, size_t *len)
{
	if (s->topic) {
		*len = s->topic->name_len;
		return s->topic->name;
	}
	*len = psub_of(s)->len;
	return psub_of(s)->name;
}

/* See broker.h. */
int bk_psub_add(struct bk_client *cl, const char *pat, size_t len)
{
	struct bk_worker *w = bk_worker();
	struct bk_psub *p;

	if (!bk_psub_ok(pat, len))
		return -EINVAL;
	if (cl->nsubs >= bk_cfg()->max_topics_per_connection)
		return -EMLINK;
	if (!(p = rc_mem_alloc(sizeof(*p) + len)))
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	p->len = len;
	memcpy(p->name, pat, len);
	rc_list_init(&p->sub.hlink);
	p->sub.cl = cl;
	if (bk_match_add(&w->pats, pat, len, &p->entry) < 0) {
		rc_mem_free(p);
		return -ENOMEM;
	}
	/* Seen by publishers on every thread from now on (sequentially
	 * consistent, like the publish path's own counters). */
	atomic_fetch_add(&w->npats, 1);
	rc_list_add_tail(&cl->subs, &p->sub.clink);
	cl->nsubs++;
	bk_stat_add(BK_SUBSCRIPTIONS, 1);
	return 0;
}

/* See broker.h. */
void bk_psub_remove(struct bk_sub *s)
{
	struct bk_worker *w = bk_worker();
	struct bk_psub *p = psub_of(s);

	bk_match_del(&w->pats, &p->entry);
	atomic_fetch_sub(&w->npats, 1);
	rc_list_del(&s->clink);
	rc_list_del(&s->hlink);
	s->cl->nsubs--;
	bk_stat_add(BK_SUBSCRIPTIONS, -1);
	rc_mem_free(p);
}

struct fanout {
	struct bk_msg *m;
	uint64_t gen;
	size_t delivered;
};

static void deliver_one(struct bk_match_entry *e, void *arg)
{
	struct bk_psub *p = rc_container_of(e, struct bk_psub, entry);
	struct fanout *f = arg;
	struct bk_client *cl = p->sub.cl;

	if (cl->gen == f->gen)
		return; /* reached already by another of its subscriptions */
	cl->gen = f->gen;
	bk_deliver(&p->sub, f->m);
	f->delivered++;
}

/* See broker.h. */
size_t bk_psub_fanout(struct bk_msg *m, uint64_t gen)
{
	struct fanout f = { m, gen, 0 };
	struct bk_topic *t = m->topic;

	bk_match_each(&bk_worker()->pats, t->name, t->name_len, deliver_one, &f);
	return f.delivered;
}

/* See broker.h. */
void bk_psub_send_gap(struct bk_sub *s)
{
	struct bk_psub *p = psub_of(s);
	char name[RC_TOPIC_MAX * 6 + 3], buf[RC_TOPIC_MAX * 6 + 96];
	ssize_t nl = rc_json_write_string(name, sizeof(name), p->name, p->len);
	int n;

	if (nl < 0)
		return;
	n = snprintf(buf, sizeof(buf), "{\"op\":\"gap\",\"pattern\":%.*s,\"dropped\":%llu}",
		     (int)nl, name, (unsigned long long)s->hole_to);
	if (n > 0 && (size_t)n < sizeof(buf))
		bk_send_json(s->cl, buf, (size_t)n);
}
