/* broker/match.c: the pattern rules ("*" one token, ">" last and one or
 * more, wildcards only as whole tokens, empty tokens), the trie against
 * the one-pattern matcher, long and deep subjects, 100,000 patterns, and
 * nodes freed as entries leave. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/match.h"

static struct bk_match trie;

static void teardown(void)
{
	bk_match_free(&trie);
}

TestSuite(match, .fini = teardown);

struct rule {
	const char *pat, *subj;
	bool match;
};

static struct rule rules[] = {
	{ "a", "a", true },
	{ "a", "b", false },
	{ "a", "a.b", false },
	{ "a.b", "a", false },
	{ "*", "a", true },
	{ "*", "a.b", false },
	{ "a.*", "a.b", true },
	{ "a.*", "a", false },
	{ "a.*", "a.b.c", false },
	{ "*.b", "a.b", true },
	{ "*.b", "a.c", false },
	{ "a.*.c", "a.x.c", true },
	{ "a.*.c", "a.x.y.c", false },
	{ "*.*", "a.b", true },
	{ ">", "a", true },
	{ ">", "a.b.c", true },
	{ "a.>", "a", false },
	{ "a.>", "a.b", true },
	{ "a.>", "a.b.c.d", true },
	{ "a.>", "b.c", false },
	{ "*.>", "a", false },
	{ "*.>", "a.b", true },
	{ "a.*.>", "a.b", false },
	{ "a.*.>", "a.b.c", true },
	/* wildcards only as whole tokens */
	{ "a*", "ab", false },
	{ "a*", "a*", true },
	{ "a.b*", "a.bc", false },
	{ "x>", "x>", true },
	{ "x>", "xy", false },
	/* a subject's "*" is plain text */
	{ "a.b", "a.*", false },
	{ "a.*", "a.*", true },
	/* empty tokens are tokens */
	{ "a..b", "a..b", true },
	{ "a.*.b", "a..b", true },
	{ "*", "", true },
	{ "a.*", "a.", true },
	{ "a.>", "a.", true },
	{ "a.", "a", false },
	{ ".a", "a", false },
	/* other separators are not separators */
	{ "chat:*", "chat:room", false },
	{ "chat:room.*", "chat:room.1", true },
};

static void count_cb(struct bk_match_entry *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
}

/* Each rule through the one-pattern matcher and through a trie holding only
 * that pattern: both give the rule's answer. */
static void check_rule(const struct rule *r)
{
	struct bk_match_entry e = { 0 };
	size_t calls = 0;

	cr_assert_eq(bk_pattern_match(r->pat, strlen(r->pat), r->subj, strlen(r->subj)), r->match,
		     "'%s' vs '%s'", r->pat, r->subj);
	cr_assert_eq(bk_match_add(&trie, r->pat, strlen(r->pat), &e), 0);
	cr_assert_eq(bk_match_each(&trie, r->subj, strlen(r->subj), count_cb, &calls),
		     r->match ? 1 : 0, "trie: '%s' vs '%s'", r->pat, r->subj);
	cr_assert_eq(calls, r->match ? 1 : 0);
	bk_match_del(&trie, &e);
	cr_assert_eq(trie.count, 0);
}

Test(match, rules)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		check_rule(&rules[i]);
}

Test(match, is_pattern_and_valid)
{
	cr_assert(bk_topic_is_pattern("*", 1));
	cr_assert(bk_topic_is_pattern("a.*", 3));
	cr_assert(bk_topic_is_pattern("a.>", 3));
	cr_assert(bk_topic_is_pattern("*.a", 3));
	cr_assert(bk_topic_is_pattern("a.>.b", 5));
	cr_assert_not(bk_topic_is_pattern("a*", 2));
	cr_assert_not(bk_topic_is_pattern("a.b>", 4));
	cr_assert_not(bk_topic_is_pattern("news", 4));
	cr_assert_not(bk_topic_is_pattern("a..b", 4));
	cr_assert(bk_pattern_valid("a.>", 3));
	cr_assert(bk_pattern_valid(">", 1));
	cr_assert(bk_pattern_valid("a.*.b", 5));
	cr_assert_not(bk_pattern_valid(">.a", 3));
	cr_assert_not(bk_pattern_valid("a.>.b", 5));
	cr_assert(bk_pattern_valid("a.x>.b", 6));
}

Test(match, tokens)
{
	cr_assert_eq(bk_pattern_tokens("a", 1), 1);
	cr_assert_eq(bk_pattern_tokens("a.b.>", 5), 3);
	cr_assert_eq(bk_pattern_tokens("..", 2), 3);
}

Test(match, gt_not_last_refused)
{
	struct bk_match_entry e = { 0 };

	cr_assert_eq(bk_match_add(&trie, "a.>.b", 5, &e), -EINVAL);
	cr_assert_eq(trie.count, 0);
	cr_assert_null(e.node);
}

Test(match, within_prefix)
{
	cr_assert(bk_pattern_within("news.>", 6, "news.", 5));
	cr_assert(bk_pattern_within("news.eu.*", 9, "news.", 5));
	cr_assert(bk_pattern_within("news.x", 6, "", 0));
	cr_assert_not(bk_pattern_within("*.eu", 4, "news.", 5));
	cr_assert_not(bk_pattern_within("a.*", 3, "a.*", 3), "'*' starts inside the prefix");
	cr_assert_not(bk_pattern_within("a.*.b", 5, "a.*.", 4));
	cr_assert_not(bk_pattern_within("new", 3, "news", 4));
	cr_assert(bk_pattern_within("news*", 5, "news", 4), "'news*' is literal");
}

Test(match, may_start)
{
	cr_assert(bk_pattern_may_start("news.*", 6, "news.eu", 7));
	cr_assert(bk_pattern_may_start("news.*", 6, "news", 4));
	cr_assert(bk_pattern_may_start("*.x", 3, "secret", 6), "'*' can be anything");
	cr_assert_not(bk_pattern_may_start("news.*", 6, "sport", 5));
	cr_assert_not(bk_pattern_may_start("news.*", 6, "newsx", 5));
}

struct seen {
	struct bk_match_entry *want[8];
	size_t n, got[8];
	size_t other;
};

static void seen_cb(struct bk_match_entry *e, void *arg)
{
	struct seen *s = arg;

	for (size_t i = 0; i < s->n; i++) {
		if (s->want[i] == e) {
			s->got[i]++;
			return;
		}
	}
	s->other++;
}

/* Overlapping patterns each match once; shared patterns keep both entries;
 * deleting one leaves the other working. */
Test(match, overlapping_and_shared)
{
	struct bk_match_entry e[6] = { 0 };
	const char *pats[6] = { "a.b.c", "a.*.c", "a.>", ">", "a.b.c", "x.>" };
	struct seen s = { .n = 6 };

	for (int i = 0; i < 6; i++) {
		cr_assert_eq(bk_match_add(&trie, pats[i], strlen(pats[i]), &e[i]), 0);
		s.want[i] = &e[i];
	}
	cr_assert_eq(bk_match_each(&trie, "a.b.c", 5, seen_cb, &s), 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(s.got[i], 1, "entry %d ('%s')", i, pats[i]);
	cr_assert_eq(s.got[5], 0);
	cr_assert_eq(s.other, 0);
	bk_match_del(&trie, &e[0]);
	memset(s.got, 0, sizeof(s.got));
	cr_assert_eq(bk_match_each(&trie, "a.b.c", 5, seen_cb, &s), 4);
	cr_assert_eq(s.got[4], 1, "the other entry of 'a.b.c' stays");
	for (int i = 1; i < 6; i++)
		bk_match_del(&trie, &e[i]);
	cr_assert_eq(trie.count, 0);
	cr_assert_eq(trie.nodes, 1, "only the root is left");
}

/* The deepest subject a topic can be (128 empty tokens in 255 bytes... and
 * 128 one-byte tokens) and a 255-byte single token. */
Test(match, long_and_deep)
{
	char deep[256], pat[256], longtok[256];
	struct bk_match_entry e[4] = { 0 };
	size_t n = 0, calls = 0;

	for (size_t i = 0; i < 255; i++)
		deep[i] = i % 2 ? '.' : 'x';
	deep[255] = 0; /* x.x.x...x: 128 tokens */
	memcpy(pat, deep, 256);
	for (size_t i = 0; i < 255; i += 2)
		if (i % 8 == 0)
			pat[i] = '*';
	memset(longtok, 'q', 255);
	longtok[255] = 0;
	cr_assert_eq(bk_match_add(&trie, deep, 255, &e[0]), 0);
	cr_assert_eq(bk_match_add(&trie, pat, 255, &e[1]), 0);
	cr_assert_eq(bk_match_add(&trie, "x.>", 3, &e[2]), 0);
	cr_assert_eq(bk_match_add(&trie, longtok, 255, &e[3]), 0);
	cr_assert(bk_pattern_match(pat, 255, deep, 255));
	n = bk_match_each(&trie, deep, 255, count_cb, &calls);
	cr_assert_eq(n, 3);
	cr_assert_eq(calls, 3);
	calls = 0;
	cr_assert_eq(bk_match_each(&trie, longtok, 255, count_cb, &calls), 1);
	deep[254] = 'y';
	calls = 0;
	cr_assert_eq(bk_match_each(&trie, deep, 255, count_cb, &calls), 1, "only x.> now");
	for (int i = 0; i < 4; i++)
		bk_match_del(&trie, &e[i]);
	cr_assert_eq(trie.nodes, 1);
}

#define MANY 100000

/* 100,000 distinct patterns: a subject gets exactly its matches, and the
 * walk visits only them (the call count is the match count, whatever the
 * number of patterns); every node goes when the entries do. */
Test(match, hundred_thousand_patterns, .timeout = 60)
{
	struct bk_match_entry *e = calloc(MANY, sizeof(*e));
	char buf[64];
	size_t calls;

	cr_assert_not_null(e);
	for (int i = 0; i < MANY; i++) {
		/* room.<i>.*, room.*.<i>, user.<i>.> and <i>.x, in turn */
		int n;
		switch (i % 4) {
		case 0: n = snprintf(buf, sizeof(buf), "room.%d.*", i); break;
		case 1: n = snprintf(buf, sizeof(buf), "room.*.%d", i); break;
		case 2: n = snprintf(buf, sizeof(buf), "user.%d.>", i); break;
		default: n = snprintf(buf, sizeof(buf), "%d.x", i); break;
		}
		cr_assert_eq(bk_match_add(&trie, buf, (size_t)n, &e[i]), 0);
	}
	cr_assert_eq(trie.count, MANY);
	calls = 0;
	cr_assert_eq(bk_match_each(&trie, "room.4.5", 8, count_cb, &calls), 2,
		     "room.4.* and room.*.5");
	calls = 0;
	cr_assert_eq(bk_match_each(&trie, "room.1.2", 8, count_cb, &calls), 0,
		     "room.1.* and room.*.2 are not registered (1 %% 4, 2 %% 4)");
	calls = 0;
	cr_assert_eq(bk_match_each(&trie, "user.6.a.b", 10, count_cb, &calls), 1);
	calls = 0;
	cr_assert_eq(bk_match_each(&trie, "user.6", 6, count_cb, &calls), 0);
	calls = 0;
	cr_assert_eq(bk_match_each(&trie, "99999.x", 7, count_cb, &calls), 1);
	calls = 0;
	cr_assert_eq(bk_match_each(&trie, "nothing.here", 12, count_cb, &calls), 0);
	for (int i = 0; i < MANY; i++)
		bk_match_del(&trie, &e[i]);
	cr_assert_eq(trie.count, 0);
	cr_assert_eq(trie.nodes, 1);
	free(e);
}

/* Random patterns and subjects over a tiny alphabet: the trie agrees with
 * the one-pattern matcher (the fuzz harness does the same, unbounded). */
Test(match, random_against_reference)
{
	static const char alpha[] = "ab.*>";
	struct bk_match_entry e[64];
	char pats[64][12], subj[12];
	size_t plen[64];
	unsigned seed = 12345;

	for (int round = 0; round < 200; round++) {
		size_t np = 0;
		memset(e, 0, sizeof(e));
		for (int i = 0; i < 64; i++) {
			plen[i] = 1 + (size_t)(rand_r(&seed) % 10);
			for (size_t k = 0; k < plen[i]; k++)
				pats[i][k] = alpha[rand_r(&seed) % 5];
			if (bk_match_add(&trie, pats[i], plen[i], &e[i]) == 0)
				np++;
			else
				cr_assert_not(bk_pattern_valid(pats[i], plen[i]));
		}
		cr_assert_eq(trie.count, np);
		for (int q = 0; q < 50; q++) {
			size_t sl = 1 + (size_t)(rand_r(&seed) % 10), want = 0;
			struct seen s = { 0 };
			for (size_t k = 0; k < sl; k++)
				subj[k] = alpha[rand_r(&seed) % 3];
			for (int i = 0; i < 64; i++)
				if (e[i].node && bk_pattern_match(pats[i], plen[i], subj, sl))
					want++;
			cr_assert_eq(bk_match_each(&trie, subj, sl, seen_cb, &s), want);
		}
		for (int i = 0; i < 64; i++)
			bk_match_del(&trie, &e[i]);
		cr_assert_eq(trie.nodes, 1);
	}
}
