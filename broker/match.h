/* Subject patterns (NATS style) and the token trie that matches them.
 *
 * A topic is a sequence of tokens separated by '.' ("news.eu.fr" has three;
 * "a..b" has three, the middle one empty).  In a pattern, a token that is
 * exactly "*" matches any one token, and a last token that is exactly ">"
 * matches one or more tokens.  "*" or ">" inside a longer token ("a*",
 * "x>y") is an ordinary character.  A topic with a wildcard token is a
 * pattern: it can be subscribed to, never published to.
 *
 * struct bk_match is a trie of patterns, one level per token, so a match
 * visits only the trie nodes the subject can reach: its cost grows with
 * the subject's tokens and the patterns that match, not with how many
 * patterns are registered (NATS's sublist without its cache).  A trie is
 * used by one thread at a time (the broker keeps one per worker thread);
 * it has no lock.  Matching never allocates.  Depends on libc,
 * core/rc.h's list and proto/json.c only (the fuzz harness builds it alone). */
#ifndef RC_BROKER_MATCH_H
#define RC_BROKER_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "proto/json.h"

/* True when some token of p is exactly "*" or ">" (proto/json.c). */
static inline bool bk_topic_is_pattern(const char *p, size_t len)
{
	return rc_topic_is_pattern(p, len);
}
/* True when p may be subscribed to as a pattern or topic: ">" appears as
 * a token only last.  (The topic rules, rc_topic_valid, are checked
 * apart.) */
bool bk_pattern_valid(const char *p, size_t len);
/* The tokens of p (at least 1). */
size_t bk_pattern_tokens(const char *p, size_t len);
/* Matches one subject against one pattern, token by token, without a
 * trie: O(len).  The subject is taken literally (its "*" tokens are plain
 * text).  The clients use the same function (proto/json.c). */
static inline bool bk_pattern_match(const char *pat, size_t plen, const char *subj, size_t slen)
{
	return rc_topic_matches(pat, plen, subj, slen);
}
/* True when every subject pat can match starts with the len bytes of
 * prefix: prefix is a prefix of pat and no wildcard token of pat starts
 * inside it (for prefix permission rules, auth.c). */
bool bk_pattern_within(const char *pat, size_t plen, const char *prefix, size_t len);

/* True when some subject pat can match may start with prefix (a prefix
 * permission rule that may decide one of its subjects).  Errs towards true:
 * past pat's first wildcard token anything is assumed possible. */
bool bk_pattern_may_start(const char *pat, size_t plen, const char *prefix, size_t len);

struct bk_match_node;

/* One registered pattern, embedded in its owner's struct. */
struct bk_match_entry {
	struct rc_list link;         /* in its node's list */
	struct bk_match_node *node;  /* NULL when not registered */
};

struct bk_match {
	struct bk_match_node *root;  /* NULL until the first add */
	size_t count;                /* entries registered */
	size_t nodes;                /* trie nodes allocated */
};

/* Registers e under pattern pat (bk_pattern_valid must hold).  Several
 * entries may share a pattern.  0, -EINVAL (a ">" not last) or -ENOMEM
 * (then nothing changed). */
int bk_match_add(struct bk_match *m, const char *pat, size_t len, struct bk_match_entry *e);
/* Unregisters e (registered in m) and frees the nodes left empty. */
void bk_match_del(struct bk_match *m, struct bk_match_entry *e);
/* Calls fn for every entry whose pattern matches subject subj, each once,
 * in no defined order.  fn must not add or delete entries.  Returns the
 * number of calls. */
size_t bk_match_each(const struct bk_match *m, const char *subj, size_t len,
		     void (*fn)(struct bk_match_entry *e, void *arg), void *arg);
/* Frees every node; entries still registered are forgotten (their node
 * becomes NULL). */
void bk_match_free(struct bk_match *m);

#endif
