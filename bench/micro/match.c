/* The broker's pattern matcher (broker/match.c, compiled in here as in its
 * fuzz harness): one publish's walk of a worker's trie for a concrete
 * topic, with 100 subscribed patterns, and with 100,000 more distinct
 * patterns registered beside them.  The cost should follow the topic and
 * its matches, not the number of patterns; 0 allocations per walk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/micro/harness.h"
#include "broker/match.c"

struct walk_arg {
	struct bk_match *m;
	const char *subj;
	size_t len, want;
};

static void count(struct bk_match_entry *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
}

static int walk_n(void *arg, uint64_t n)
{
	struct walk_arg *w = arg;
	size_t hits = 0;

	for (uint64_t i = 0; i < n; i++)
		bk_match_each(w->m, w->subj, w->len, count, &hits);
	return hits == n * w->want ? 0 : -EPROTO;
}

/* Adds n patterns from fmt forms; returns the entries (NULL: ENOMEM). */
static struct bk_match_entry *add(struct bk_match *m, unsigned n, const char *const *forms,
				  unsigned nforms)
{
	struct bk_match_entry *e = calloc(n ? n : 1, sizeof(*e));
	char buf[64];

	for (unsigned i = 0; e && i < n; i++) {
		int len = snprintf(buf, sizeof(buf), forms[i % nforms], i);
		if (bk_match_add(m, buf, (size_t)len, &e[i]) < 0) {
			free(e);
			return NULL;
		}
	}
	return e;
}

static void run(struct bk_match *m, const char *name, const char *subj, size_t want)
{
	struct walk_arg w = { m, subj, strlen(subj), want };

	rc_bench_run(name, 0, walk_n, &w);
}

/* See harness.h. */
void rc_bench_match(void)
{
	static const char *const subs[] = { "bench%u.*" };
	static const char *const others[] = { "idle.%u.*", "*.p%u", "bench0.%u.>" };
	struct bk_match m = { 0 };
	struct bk_match_entry *a = add(&m, 100, subs, 1), *b = NULL;

	if (!a)
		return rc_bench_fail("match_100_patterns", -ENOMEM);
	run(&m, "match_100_patterns", "bench7.x", 1);
	if (!(b = add(&m, 100000, others, 3))) {
		rc_bench_fail("match_100k_patterns", -ENOMEM);
	} else {
		run(&m, "match_100k_patterns", "bench7.x", 1);
		/* through bench0's 33,333 children (bench0.5.> matches) */
		run(&m, "match_100k_patterns_bench0", "bench0.5.y", 1);
	}
	bk_match_free(&m);
	free(a);
	free(b);
}
