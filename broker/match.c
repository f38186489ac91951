/* Subject patterns and the token trie (see match.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/match.h"

/* A trie node: one token of some pattern.  Its literal children are in a
 * chained hash table (grown as they come), the "*" child apart. */
struct bk_match_node {
	struct bk_match_node *parent;
	struct bk_match_node *hnext;  /* in the parent's bucket */
	struct bk_match_node *star;   /* the "*" child */
	struct bk_match_node **kids;  /* literal children */
	uint32_t nkids, nbuckets;
	struct rc_list here;          /* entries whose pattern ends at this node */
	struct rc_list rest;          /* entries whose pattern is this node + ".>" */
	bool is_star;
	uint32_t hash;
	size_t len;
	char tok[];
};

/* ---- Tokens -------------------------------------------------------------------- */

static bool tok_is(const char *p, size_t i, size_t e, char c)
{
	return e - i == 1 && p[i] == c;
}

/* See match.h. */
size_t bk_pattern_tokens(const char *p, size_t len)
{
	size_t n = 1;

	for (const char *d = p; (d = memchr(d, '.', len - (size_t)(d - p))); d++)
		n++;
	return n;
}

/* See match.h. */
bool bk_pattern_valid(const char *p, size_t len)
{
	for (size_t i = 0;; ) {
		size_t e = rc_topic_token_end(p, len, i);
		if (e >= len)
			return true;
		if (tok_is(p, i, e, '>'))
			return false;
		i = e + 1;
	}
}

/* See match.h. */
bool bk_pattern_within(const char *pat, size_t plen, const char *prefix, size_t len)
{
	if (len > plen || memcmp(pat, prefix, len) != 0)
		return false;
	for (size_t i = 0;; ) {
		size_t e = rc_topic_token_end(pat, plen, i);
		if (i < len && (tok_is(pat, i, e, '*') || tok_is(pat, i, e, '>')))
			return false;
		if (e >= plen)
			return true;
		i = e + 1;
	}
}

/* See match.h. */
bool bk_pattern_may_start(const char *pat, size_t plen, const char *prefix, size_t len)
{
	size_t head = plen; /* where the first wildcard token starts */

	for (size_t i = 0;; ) {
		size_t e = rc_topic_token_end(pat, plen, i);
		if (tok_is(pat, i, e, '*') || tok_is(pat, i, e, '>')) {
			head = i;
			break;
		}
		if (e >= plen)
			break;
		i = e + 1;
	}
	if (len <= head)
		return memcmp(pat, prefix, len) == 0;
	return memcmp(pat, prefix, head) == 0;
}

/* ---- The trie --------------------------------------------------------------------- */

static uint32_t tok_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

static struct bk_match_node *node_new(struct bk_match *m, struct bk_match_node *parent,
				      const char *tok, size_t len, uint32_t h)
{
	struct bk_match_node *n = calloc(1, sizeof(*n) + len);

	if (!n)
		return NULL;
	n->parent = parent;
	rc_list_init(&n->here);
	rc_list_init(&n->rest);
	n->hash = h;
	n->len = len;
	memcpy(n->tok, tok, len);
	m->nodes++;
	return n;
}

static struct bk_match_node *kid_find(const struct bk_match_node *n, const char *tok,
				      size_t len, uint32_t h)
{
	struct bk_match_node *k;

	if (!n->nbuckets)
		return NULL;
	for (k = n->kids[h & (n->nbuckets - 1)]; k; k = k->hnext)
		if (k->hash == h && k->len == len && memcmp(k->tok, tok, len) == 0)
			return k;
	return NULL;
}

/* Doubles n's table when it is full: 0 or -ENOMEM (the old one stays). */
static int kids_grow(struct bk_match_node *n)
{
	uint32_t cap = n->nbuckets ? n->nbuckets * 2 : 4;
	struct bk_match_node **t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < n->nbuckets; i++) {
		for (struct bk_match_node *k = n->kids[i], *next; k; k = next) {
			next = k->hnext;
			k->hnext = t[k->hash & (cap - 1)];
			t[k->hash & (cap - 1)] = k;
		}
	}
	free(n->kids);
	n->kids = t;
	n->nbuckets = cap;
	return 0;
}

/* The child of n for token tok, created if absent (NULL: out of memory). */
static struct bk_match_node *kid_get(struct bk_match *m, struct bk_match_node *n,
				     const char *tok, size_t len)
{
	uint32_t h = tok_hash(tok, len);
	struct bk_match_node *k;

	if (len == 1 && tok[0] == '*') {
		if (!n->star && (n->star = node_new(m, n, tok, len, h)))
			n->star->is_star = true;
		return n->star;
	}
	if ((k = kid_find(n, tok, len, h)))
		return k;
	if (n->nkids >= n->nbuckets && kids_grow(n) < 0)
		return NULL;
	if (!(k = node_new(m, n, tok, len, h)))
		return NULL;
	k->hnext = n->kids[h & (n->nbuckets - 1)];
	n->kids[h & (n->nbuckets - 1)] = k;
	n->nkids++;
	return k;
}

static bool node_unused(const struct bk_match_node *n)
{
	return !n->star && !n->nkids && rc_list_empty(&n->here) && rc_list_empty(&n->rest);
}

/* Frees n and its ancestors while they hold nothing (never the root). */
static void prune(struct bk_match *m, struct bk_match_node *n)
{
	while (n->parent && node_unused(n)) {
		struct bk_match_node *p = n->parent, **pp;
		if (n->is_star) {
			p->star = NULL;
		} else {
			for (pp = &p->kids[n->hash & (p->nbuckets - 1)]; *pp != n; pp = &(*pp)->hnext)
				;
			*pp = n->hnext;
			p->nkids--;
		}
		free(n->kids);
		free(n);
		m->nodes--;
		n = p;
	}
}

/* See match.h. */
int bk_match_add(struct bk_match *m, const char *pat, size_t len, struct bk_match_entry *e)
{
	struct bk_match_node *n;

	if (!bk_pattern_valid(pat, len))
		return -EINVAL;
	if (!m->root && !(m->root = node_new(m, NULL, "", 0, 0)))
		return -ENOMEM;
	n = m->root;
	for (size_t i = 0;; ) {
		size_t end = rc_topic_token_end(pat, len, i);
		if (end == len && tok_is(pat, i, end, '>')) {
			rc_list_add_tail(&n->rest, &e->link);
			break;
		}
		struct bk_match_node *k = kid_get(m, n, pat + i, end - i);
		if (!k) {
			prune(m, n);
			return -ENOMEM;
		}
		n = k;
		if (end >= len) {
			rc_list_add_tail(&n->here, &e->link);
			break;
		}
		i = end + 1;
	}
	e->node = n;
	m->count++;
	return 0;
}

/* See match.h. */
void bk_match_del(struct bk_match *m, struct bk_match_entry *e)
{
	if (!e->node)
		return;
	rc_list_del(&e->link);
	prune(m, e->node);
	e->node = NULL;
	m->count--;
}

static size_t each_in(struct rc_list *head, void (*fn)(struct bk_match_entry *, void *),
		      void *arg)
{
	size_t n = 0;

	for (struct rc_list *it = head->next; it != head; it = it->next, n++)
		fn(rc_container_of(it, struct bk_match_entry, link), arg);
	return n;
}

/* Matches the tokens of subj from i on (i > len: none left) under n.  The
 * recursion is as deep as the subject has tokens (at most its length). */
static size_t walk(const struct bk_match_node *n, const char *subj, size_t len, size_t i,
		   void (*fn)(struct bk_match_entry *, void *), void *arg)
{
	struct bk_match_node *k;
	size_t calls, e;

	if (i > len)
		return each_in((struct rc_list *)&n->here, fn, arg);
	calls = each_in((struct rc_list *)&n->rest, fn, arg);
	e = rc_topic_token_end(subj, len, i);
	if ((k = kid_find(n, subj + i, e - i, tok_hash(subj + i, e - i))))
		calls += walk(k, subj, len, e + 1, fn, arg);
	if (n->star)
		calls += walk(n->star, subj, len, e + 1, fn, arg);
	return calls;
}

/* See match.h. */
size_t bk_match_each(const struct bk_match *m, const char *subj, size_t len,
		     void (*fn)(struct bk_match_entry *e, void *arg), void *arg)
{
	return m->root ? walk(m->root, subj, len, 0, fn, arg) : 0;
}

static void forget(struct rc_list *head)
{
	while (!rc_list_empty(head)) {
		struct bk_match_entry *e = rc_container_of(head->next, struct bk_match_entry, link);
		rc_list_del(&e->link);
		e->node = NULL;
	}
}

static void node_free(struct bk_match_node *n)
{
	forget(&n->here);
	forget(&n->rest);
	if (n->star)
		node_free(n->star);
	for (uint32_t i = 0; i < n->nbuckets; i++) {
		for (struct bk_match_node *k = n->kids[i], *next; k; k = next) {
			next = k->hnext;
			node_free(k);
		}
	}
	free(n->kids);
	free(n);
}

/* See match.h. */
void bk_match_free(struct bk_match *m)
{
	if (m->root)
		node_free(m->root);
	m->root = NULL;
	m->count = m->nodes = 0;
}
