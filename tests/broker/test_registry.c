/* broker/topic.c, msg.c and the delivery in session.c, driven without a
 * server: fake worker threads (a FIFO of posted calls each, like a loop's
 * posts), fake JSON subscribers that record what they are sent, and a post
 * function that can be told to fail.  Checks the promises of PROTOCOL.md:
 * every subscriber gets a topic's messages once and in seq order across
 * history replay and live delivery whatever the threads, and anything that
 * cannot be delivered becomes an exact gap for exactly the subscribers that
 * miss it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"

#define NTHREADS 4
#define MAXEV 20000

/* ---- Fake threads ---------------------------------------------------------------- */

struct call {
	struct call *next;
	void (*fn)(void *arg);
	void *arg;
};

struct fthread {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct call *head, *tail;
	bool stop;
	atomic_int fail_posts;      /* posts to this thread that fail next */
};

static struct fthread fth[NTHREADS];
static struct bk_config cfg;

static int fake_post(unsigned idx, void (*fn)(void *arg), void *arg)
{
	struct fthread *f = &fth[idx];
	struct call *c;

	if (atomic_load(&f->fail_posts) > 0 && atomic_fetch_sub(&f->fail_posts, 1) > 0)
		return -ENOMEM;
	c = malloc(sizeof(*c));
	cr_assert(c);
	c->fn = fn;
	c->arg = arg;
	c->next = NULL;
	pthread_mutex_lock(&f->lock);
	if (f->tail)
		f->tail->next = c;
	else
		f->head = c;
	f->tail = c;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static void *thread_main(void *arg)
{
	struct fthread *f = arg;

	bk_worker_bind(&bk.workers[f - fth]);
	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->head && !f->stop)
			pthread_cond_wait(&f->cond, &f->lock);
		if (!f->head)
			break;
		struct call *c = f->head;
		f->head = c->next;
		if (!f->head)
			f->tail = NULL;
		pthread_mutex_unlock(&f->lock);
		c->fn(c->arg);
		free(c);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* Runs fn(arg) on thread idx and waits for it (and for what was posted to
 * that thread before it). */
struct sync_call {
	void (*fn)(void *arg);
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void sync_trampoline(void *arg)
{
	struct sync_call *s = arg;

	s->fn(s->arg);
	pthread_mutex_lock(&s->lock);
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void run_on(unsigned idx, void (*fn)(void *arg), void *arg)
{
	struct sync_call s = { fn, arg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };

	cr_assert_eq(fake_post(idx, sync_trampoline, &s), 0);
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
}

static void nothing(void *arg)
{
	(void)arg;
}

/* Waits until every thread ran what was posted to it so far, twice (a
 * delivery may post once more). */
static void settle(void)
{
	for (int round = 0; round < 2; round++)
		for (unsigned i = 0; i < NTHREADS; i++)
			run_on(i, nothing, NULL);
}

/* ---- Fake subscribers --------------------------------------------------------------- */

enum ev_kind { EV_MSG, EV_GAP, EV_OTHER };

struct ev {
	enum ev_kind kind;
	uint64_t a, b;              /* msg: seq; gap: from, to */
};

struct fake {
	struct bk_client cl;        /* first: bk.io gets &fake->cl */
	unsigned thread;
	size_t queued;              /* what fake_queued answers */
	int send_ret;               /* what fake_send answers (0: records) */
	bool check_unlocked;        /* assert no topic lock is held on delivery */
	bool closed_slow;
	size_t nev;
	struct ev ev[MAXEV];
};

static uint64_t num_after(const char *p, size_t n, const char *key)
{
	const char *k = memmem(p, n, key, strlen(key));

	cr_assert(k, "no %s in %.*s", key, (int)n, p);
	return strtoull(k + strlen(key), NULL, 10);
}

/* The topic's mutex must not be held by this thread when a frame or a
 * close reaches a connection.  Other threads may hold it meanwhile (a
 * publish posts under it), so this asks glibc who the owner is. */
static void assert_topic_unlocked(struct fake *f)
{
	struct bk_sub *s;

	if (rc_list_empty(&f->cl.subs))
		return;
	s = rc_container_of(f->cl.subs.next, struct bk_sub, clink);
	cr_assert_neq(__atomic_load_n(&s->topic->lock.__data.__owner, __ATOMIC_RELAXED),
		      gettid(), "a delivery or close under the topic lock");
}

static int fake_send(struct bk_client *cl, struct rc_buf *frame)
{
	struct fake *f = (struct fake *)cl;
	struct rc_frame_rules rules = { .expect_masked = false };
	struct rc_frame_header h;
	int hl = rc_frame_parse_header(rc_buf_data(frame), rc_buf_len(frame), &rules, &h);
	const char *p;
	size_t n;
	struct ev e = { EV_OTHER, 0, 0 };

	cr_assert(hl > 0);
	if (f->check_unlocked)
		assert_topic_unlocked(f);
	if (f->send_ret)
		return f->send_ret;
	cr_assert_eq(bk_worker()->idx, f->thread, "delivery on a thread that is not the subscriber's");
	p = (const char *)rc_buf_data(frame) + hl;
	n = rc_buf_len(frame) - (size_t)hl;
	if (memmem(p, n, "\"op\":\"msg\"", 10)) {
		e = (struct ev){ EV_MSG, num_after(p, n, "\"seq\":"), 0 };
	} else if (memmem(p, n, "\"op\":\"gap\"", 10) && memmem(p, n, "\"pattern\":", 10)) {
		e = (struct ev){ EV_GAP, 0, num_after(p, n, "\"dropped\":") }; /* a count */
	} else if (memmem(p, n, "\"op\":\"gap\"", 10)) {
		e = (struct ev){ EV_GAP, num_after(p, n, "\"from\":"), num_after(p, n, "\"to\":") };
	}
	cr_assert_lt(f->nev, MAXEV);
	f->ev[f->nev++] = e;
	return 0;
}

static size_t fake_queued(const struct bk_client *cl)
{
	return ((const struct fake *)cl)->queued;
}

static void fake_close_slow(struct bk_client *cl)
{
	struct fake *f = (struct fake *)cl;

	if (f->check_unlocked)
		assert_topic_unlocked(f);
	f->closed_slow = true;
}

static const char *fake_peer(const struct bk_client *cl)
{
	(void)cl;
	return "fake";
}

static const struct bk_io fake_io = {
	.post = fake_post,
	.queued = fake_queued,
	.send = fake_send,
	.close_slow = fake_close_slow,
	.peer = fake_peer,
};

static struct fake *fake_new(unsigned thread)
{
	struct fake *f = calloc(1, sizeof(*f));

	cr_assert(f);
	f->thread = thread;
	f->cl.mode = BK_MODE_JSON;
	rc_list_init(&f->cl.subs);
	rc_list_init(&f->cl.close_link);
	return f;
}

/* ---- Setup ----------------------------------------------------------------------- */

static void setup(void)
{
	bk_config_defaults(&cfg);
	cfg.history_size = 100000;
	atomic_store(&bk.cfg, &cfg);
	bk.io = &fake_io;
	bk.nthreads = NTHREADS;
	cr_assert_eq(bk_workers_init(NTHREADS), 0);
	bk_registry_init();
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_mutex_init(&fth[i].lock, NULL);
		pthread_cond_init(&fth[i].cond, NULL);
		cr_assert_eq(pthread_create(&fth[i].th, NULL, thread_main, &fth[i]), 0);
	}
}

static void teardown(void)
{
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_mutex_lock(&fth[i].lock);
		fth[i].stop = true;
		pthread_cond_signal(&fth[i].cond);
		pthread_mutex_unlock(&fth[i].lock);
		pthread_join(fth[i].th, NULL);
	}
}

TestSuite(registry, .init = setup, .fini = teardown, .timeout = 60);

/* ---- Operations run on the fake threads ------------------------------------------- */

struct sub_op {
	struct fake *f;
	bool has_from;
	uint64_t from;
	int ret;
};

static void do_sub(void *arg)
{
	struct sub_op *o = arg;
	uint64_t cur;

	o->ret = bk_subscribe(&o->f->cl, "t", 1, o->has_from, o->from, NULL, &cur);
}

static void sub_on(struct fake *f, bool has_from, uint64_t from)
{
	struct sub_op o = { f, has_from, from, 0 };

	run_on(f->thread, do_sub, &o);
	cr_assert_eq(o.ret, 0);
}

static void do_unsub_all(void *arg)
{
	bk_unsubscribe_all(&((struct fake *)arg)->cl);
}

struct pub_op {
	unsigned n;
	uint64_t last_seq;
};

static void do_pub(void *arg)
{
	struct pub_op *o = arg;
	unsigned subs;

	for (unsigned i = 0; i < o->n; i++)
		cr_assert_eq(bk_publish("t", 1, RC_OP_TEXT, "{}", 2, NULL, &o->last_seq, &subs), 0);
}

static void pub_on(unsigned thread, unsigned n)
{
	struct pub_op o = { n, 0 };

	run_on(thread, do_pub, &o);
}

/* The events as "m1 m2 g3-4 m5" for readable failures. */
static char *describe(const struct fake *f)
{
	static char buf[4096];
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < f->nev && len < sizeof(buf) - 48; i++) {
		const struct ev *e = &f->ev[i];
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, e->kind == EV_MSG ? "m%llu " :
					e->kind == EV_GAP ? "g%llu-%llu " : "? ",
					(unsigned long long)e->a, (unsigned long long)e->b);
	}
	return buf;
}

/* f saw exactly seq from..to, each once and in order, as messages except
 * the ranges given as gaps (gaps[] pairs, in order, nul-terminated). */
static void expect_stream(const struct fake *f, uint64_t from, uint64_t to, const uint64_t *gaps)
{
	uint64_t next = from;

	for (size_t i = 0; i < f->nev; i++) {
		const struct ev *e = &f->ev[i];
		if (e->kind == EV_GAP) {
			cr_assert(gaps && gaps[0] == e->a && gaps[1] == e->b && e->a == next,
				  "unexpected gap %llu-%llu at %llu: %s", (unsigned long long)e->a,
				  (unsigned long long)e->b, (unsigned long long)next, describe(f));
			next = e->b + 1;
			gaps += 2;
			continue;
		}
		cr_assert_eq(e->kind, EV_MSG, "%s", describe(f));
		cr_assert_eq(e->a, next, "expected seq %llu: %s", (unsigned long long)next, describe(f));
		next++;
	}
	cr_assert_eq(next, to + 1, "stream ends at %llu, want %llu: %s",
		     (unsigned long long)next - 1, (unsigned long long)to, describe(f));
	cr_assert(!gaps || !gaps[0], "a gap that never came: %s", describe(f));
}

/* ---- Tests --------------------------------------------------------------------------- */

struct burst {
	unsigned thread, n;
};

static void *publisher(void *arg)
{
	struct burst *b = arg;

	pub_on(b->thread, b->n);
	return NULL;
}

/* Publishers on every thread while subscribers on every thread join with
 * from=1: each sees 1..N once, in order, replay then live, no gap. */
Test(registry, order_across_replay_and_live_on_every_thread)
{
	enum { PER = 300, SUBS = 3 };
	struct fake *f[NTHREADS][SUBS];
	struct burst b[NTHREADS];
	pthread_t th[NTHREADS];

	for (unsigned i = 0; i < NTHREADS; i++) {
		b[i] = (struct burst){ i, PER };
		cr_assert_eq(pthread_create(&th[i], NULL, publisher, &b[i]), 0);
	}
	/* Subscribers join while the publishers run. */
	for (unsigned k = 0; k < SUBS; k++)
		for (unsigned i = 0; i < NTHREADS; i++)
			sub_on(f[i][k] = fake_new(i), true, 1);
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	settle();
	for (unsigned i = 0; i < NTHREADS; i++)
		for (unsigned k = 0; k < SUBS; k++)
			expect_stream(f[i][k], 1, NTHREADS * PER, NULL);
}

/* Without from, a subscriber sees exactly what follows its ack, in order. */
Test(registry, live_only_subscribers_see_a_contiguous_tail)
{
	enum { PER = 200 };
	struct fake *f[NTHREADS];
	struct burst b[NTHREADS];
	pthread_t th[NTHREADS];

	for (unsigned i = 0; i < NTHREADS; i++) {
		b[i] = (struct burst){ i, PER };
		cr_assert_eq(pthread_create(&th[i], NULL, publisher, &b[i]), 0);
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		sub_on(f[i] = fake_new(i), false, 0);
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	settle();
	for (unsigned i = 0; i < NTHREADS; i++) {
		if (!f[i]->nev)
			continue; /* joined after the last publish */
		expect_stream(f[i], f[i]->ev[0].a, NTHREADS * PER, NULL);
	}
}

/* A post to thread 2 that fails: its subscribers (and only they) get the
 * exact gap with their next message; the publisher's own thread, reached
 * without a post, misses nothing. */
Test(registry, failed_post_is_a_gap_for_exactly_those_subscribers)
{
	struct fake *local = fake_new(0), *remote = fake_new(2), *other = fake_new(3);

	sub_on(local, false, 0);
	sub_on(remote, false, 0);
	sub_on(other, false, 0);
	pub_on(0, 3);
	settle();
	atomic_store(&fth[2].fail_posts, 2); /* seq 4 and 5 never reach thread 2 */
	pub_on(0, 3);
	settle();
	expect_stream(local, 1, 6, NULL);
	expect_stream(other, 1, 6, NULL);
	expect_stream(remote, 1, 6, (const uint64_t[]){ 4, 5, 0 });
}

/* Drop policy: the messages skipped while over max_backpressure come back
 * as one exact gap, then the stream goes on. */
Test(registry, drop_policy_gap_is_exact)
{
	struct fake *slow = fake_new(1), *fast = fake_new(1);

	cfg.slow_consumer_policy = BK_SLOW_DROP;
	sub_on(slow, false, 0);
	sub_on(fast, false, 0);
	pub_on(0, 2);
	settle();
	slow->queued = cfg.max_backpressure; /* full */
	pub_on(0, 3);
	settle();
	slow->queued = 0;
	pub_on(0, 1);
	settle();
	cr_assert(!slow->closed_slow);
	expect_stream(slow, 1, 6, (const uint64_t[]){ 3, 5, 0 });
	expect_stream(fast, 1, 6, NULL);
}

static void do_tick(void *arg)
{
	(void)arg;
	bk_worker_tick();
}

/* The drop policy's gap goes out as soon as there is room, with no later
 * message to carry it; a tick while still full sends nothing. */
Test(registry, drop_gap_sent_once_there_is_room)
{
	struct fake *slow = fake_new(1);

	cfg.slow_consumer_policy = BK_SLOW_DROP;
	sub_on(slow, false, 0);
	pub_on(0, 1);
	settle();
	slow->queued = cfg.max_backpressure;
	pub_on(0, 2);
	settle();
	cr_assert(atomic_load(&bk.workers[1].tick_wanted));
	run_on(1, do_tick, NULL);
	expect_stream(slow, 1, 1, NULL);
	slow->queued = 0;
	run_on(1, do_tick, NULL);
	expect_stream(slow, 1, 3, (const uint64_t[]){ 2, 3, 0 });
	pub_on(0, 1);
	settle();
	expect_stream(slow, 1, 4, (const uint64_t[]){ 2, 3, 0 });
}

/* Close policy: the slow subscriber is closed once and gets nothing more;
 * the others on its thread are not disturbed. */
Test(registry, close_policy_closes_only_the_slow_one)
{
	struct fake *slow = fake_new(1), *fast = fake_new(1);

	sub_on(slow, false, 0);
	sub_on(fast, false, 0);
	pub_on(2, 1);
	settle();
	slow->queued = cfg.max_backpressure;
	pub_on(2, 2);
	settle();
	cr_assert(slow->closed_slow);
	expect_stream(slow, 1, 1, NULL);
	expect_stream(fast, 1, 3, NULL);
	run_on(1, do_unsub_all, slow);
	run_on(1, do_unsub_all, fast);
}

/* A topic that left the registry numbers on where it stopped. */
Test(registry, removed_topic_numbers_on)
{
	struct fake *f = fake_new(1);

	cfg.history_size = 0;
	sub_on(f, false, 0);
	pub_on(0, 3);
	settle();
	run_on(1, do_unsub_all, f);
	cr_assert_eq(bk_topics_count(), 0);
	pub_on(0, 4);
	f->nev = 0;
	sub_on(f, true, 4);
	pub_on(0, 1);
	settle();
	expect_stream(f, 4, 8, (const uint64_t[]){ 4, 7, 0 });
}

/* A connection already closing answers -EPIPE: that is not a slow
 * consumer (no close, not counted). */
Test(registry, epipe_is_not_a_slow_consumer)
{
	struct fake *closing = fake_new(1);

	sub_on(closing, false, 0);
	closing->send_ret = -EPIPE;
	pub_on(0, 3);
	settle();
	cr_assert(!closing->closed_slow);
	cr_assert_eq(bk_stat_sum(BK_SLOW_CLOSES), 0);
	cr_assert_eq(bk_stat_sum(BK_DROPS), 0);
}

static void do_pub_refused(void *arg)
{
	uint64_t seq;
	unsigned subs;

	*(int *)arg = bk_publish("t", 1, RC_OP_TEXT, "{}", 2, NULL, &seq, &subs);
}

/* Drain: once publishing stopped, every publish is refused with a reason
 * and nothing more reaches subscribers. */
Test(registry, publishes_refused_once_draining)
{
	struct fake *f = fake_new(1);
	int ret = 0;

	sub_on(f, false, 0);
	pub_on(0, 2);
	bk_stop_publishing();
	run_on(0, do_pub_refused, &ret);
	cr_assert_eq(ret, -ESHUTDOWN);
	settle();
	expect_stream(f, 1, 2, NULL);
}

/* Under the topic lock only seq, history and hand-off: replay, direct and
 * posted deliveries, and slow-consumer closes all run with it free. */
Test(registry, deliveries_and_closes_outside_the_topic_lock)
{
	struct fake *a = fake_new(0), *b = fake_new(0), *slow = fake_new(1);

	a->check_unlocked = b->check_unlocked = slow->check_unlocked = true;
	pub_on(0, 3);
	sub_on(a, true, 1);  /* replay */
	sub_on(slow, false, 0);
	for (int i = 0; i < 2; i++) {
		pub_on(0, 1); /* direct to thread 0, posted to thread 1 */
		settle();
	}
	for (int i = 0; i < 2; i++) {
		pub_on(1, 1); /* posted to thread 0 */
		settle();
	}
	slow->queued = cfg.max_backpressure;
	pub_on(0, 1);        /* a close, deferred */
	settle();
	sub_on(b, true, 2);
	settle();
	cr_assert(slow->closed_slow);
	expect_stream(a, 1, 8, NULL);
	expect_stream(b, 2, 8, NULL);
}

static void do_pub_other(void *arg)
{
	uint64_t seq;
	unsigned subs;

	(void)arg;
	cr_assert_eq(bk_publish("u", 1, RC_OP_TEXT, "{}", 2, NULL, &seq, &subs), 0);
}

static void lookup_again(struct bk_topic *t, void *arg)
{
	struct bk_topic *same = bk_topic_get(t->name, t->name_len, false, NULL);

	/* Would deadlock if the registry lock were held around fn. */
	cr_assert_eq(same, t);
	bk_topic_put(same);
	(*(unsigned *)arg)++;
}

/* GET /topics formats with no registry lock held, bounded by max. */
Test(registry, topics_each_holds_no_lock_while_calling)
{
	unsigned seen = 0;

	cfg.history_size = 10;
	pub_on(0, 1);
	run_on(0, do_pub_other, NULL);
	bk_topics_each(lookup_again, &seen, 10000);
	cr_assert_eq(seen, 2);
	seen = 0;
	bk_topics_each(lookup_again, &seen, 1);
	cr_assert_eq(seen, 1);
}

/* history_max_bytes: publishing past the budget evicts the oldest messages
 * (the budget holds afterwards), and a subscriber replaying from 1 gets
 * what was evicted as one exact gap, then every kept message in order,
 * then the live ones: the hand-over from history to live loses nothing
 * more. */
Test(registry, history_budget_evicts_oldest_and_replay_reports_the_gap)
{
	struct fake *f = fake_new(1);
	uint64_t gap_to;

	cfg.history_max_bytes = 4096;
	pub_on(0, 200);
	settle();
	cr_assert_leq(atomic_load(&bk.hist_bytes), cfg.history_max_bytes);
	sub_on(f, true, 1);
	pub_on(2, 5); /* live, behind the replay */
	settle();
	cr_assert_gt(f->nev, 6, "%s", describe(f));
	cr_assert_eq(f->ev[0].kind, EV_GAP, "replay starts with the evicted range: %s", describe(f));
	gap_to = f->ev[0].b;
	cr_assert(gap_to >= 1 && gap_to < 200, "gap 1-%llu: %s", (unsigned long long)gap_to,
		  describe(f));
	expect_stream(f, 1, 205, (const uint64_t[]){ 1, gap_to, 0 });
}

/* ---- Pattern subscriptions (psub.c) ------------------------------------------------ */

struct named_sub {
	struct fake *f;
	const char *name;
	int ret;
};

static void do_sub_named(void *arg)
{
	struct named_sub *o = arg;
	uint64_t cur;

	o->ret = bk_subscribe(&o->f->cl, o->name, strlen(o->name), false, 0, NULL, &cur);
}

static void sub_named(struct fake *f, const char *name)
{
	struct named_sub o = { f, name, 0 };

	run_on(f->thread, do_sub_named, &o);
	cr_assert_eq(o.ret, 0, "subscribe to %s: %d", name, o.ret);
}

/* Subscribers on every thread, each on the exact topic and two patterns
 * that match it, or on patterns only: publishers on every thread, and
 * every connection gets each message once, in seq order. */
Test(registry, patterns_deliver_once_in_order_on_every_thread)
{
	enum { PER = 300 };
	struct fake *both[NTHREADS], *pats[NTHREADS];
	struct burst b[NTHREADS];
	pthread_t th[NTHREADS];

	for (unsigned i = 0; i < NTHREADS; i++) {
		both[i] = fake_new(i);
		sub_named(both[i], "t");
		sub_named(both[i], "*");
		sub_named(both[i], ">");
		pats[i] = fake_new(i);
		sub_named(pats[i], ">");
		sub_named(pats[i], "*");
	}
	for (unsigned i = 0; i < NTHREADS; i++) {
		b[i] = (struct burst){ i, PER };
		cr_assert_eq(pthread_create(&th[i], NULL, publisher, &b[i]), 0);
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	settle();
	for (unsigned i = 0; i < NTHREADS; i++) {
		expect_stream(both[i], 1, NTHREADS * PER, NULL);
		expect_stream(pats[i], 1, NTHREADS * PER, NULL);
		run_on(i, do_unsub_all, both[i]);
		run_on(i, do_unsub_all, pats[i]);
		cr_assert_eq(atomic_load(&bk.workers[i].npats), 0);
		cr_assert_eq(bk.workers[i].pats.count, 0);
	}
}

/* Drop policy on a pattern subscription: its drops are counted and
 * reported as {"op":"gap","pattern":…,"dropped":N} once there is room,
 * then delivery goes on. */
Test(registry, pattern_drops_are_reported_as_a_count)
{
	struct fake *slow = fake_new(1);

	cfg.slow_consumer_policy = BK_SLOW_DROP;
	sub_named(slow, ">");
	pub_on(0, 1);
	settle();
	slow->queued = cfg.max_backpressure;
	pub_on(0, 3);
	settle();
	run_on(1, do_tick, NULL);
	cr_assert_eq(slow->nev, 1, "still full: nothing more: %s", describe(slow));
	slow->queued = 0;
	run_on(1, do_tick, NULL);
	pub_on(0, 1);
	settle();
	cr_assert_eq(slow->nev, 3, "%s", describe(slow));
	cr_assert(slow->ev[0].kind == EV_MSG && slow->ev[0].a == 1);
	cr_assert(slow->ev[1].kind == EV_GAP && slow->ev[1].b == 3, "3 dropped: %s", describe(slow));
	cr_assert(slow->ev[2].kind == EV_MSG && slow->ev[2].a == 5);
}
