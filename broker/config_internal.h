/* Private to broker/config*.c: the key table that drives loading (config.c),
 * the command line (config_args.c) and the dump and --help text
 * (config_fmt.c). */
#ifndef RC_BROKER_CONFIG_INTERNAL_H
#define RC_BROKER_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "broker/config.h"

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)

enum kind {
	K_LIST,		/* char *[RC_CFG_MAX_LISTEN] + unsigned count at count_off:
			 * HOST:PORT items, comma-separated, repeatable */
	K_PATH,		/* char *, a file name; empty = unset (NULL) */
	K_STR,		/* char *, plain text; empty = unset (NULL) */
	K_ORIGINS,	/* char *, comma-separated web origins or "*"; empty = NULL */
	K_TOPICS,	/* char *, comma-separated topic names (metrics_topics); empty = NULL */
	K_UINT,		/* unsigned, plain integer */
	K_INT,		/* int, plain integer */
	K_U64,		/* uint64_t, plain integer */
	K_SIZE,		/* uint64_t bytes, K/M/G/T suffixes (binary) */
	K_MS,		/* unsigned milliseconds, seconds in text */
	K_MS64,		/* uint64_t milliseconds, seconds in text */
	K_BOOL,
	K_LEVEL,	/* enum rc_log_level stored in an int */
	K_LOGFMT,	/* enum rc_log_format stored in an int: text, json */
	K_POLICY,	/* enum bk_slow_policy */
	K_IOBACKEND,	/* enum rc_io_backend: auto, io_uring, epoll */
	K_RATE,		/* double, > 0 */
};

struct key {
	const char *name;
	const char *section;
	enum kind kind;
	size_t off;
	uint64_t min, max;	/* in struct units; K_RATE uses them as whole numbers */
	const char *range;	/* the static "why" when out of range */
	const char *help;	/* one line for --help */
	size_t count_off;	/* K_LIST: where the item count lives */
};

/* The table, in dump and --help order (grouped by section). */
extern const struct key bk__config_keys[];
extern const size_t bk__config_nkeys;

/* A list key's items and count inside c. */
static inline char **bk__config_list_items(struct bk_config *c,
					    const struct key *k)
{
	return (char **)((char *)c + k->off);
}

static inline unsigned *bk__config_list_count(struct bk_config *c,
					      const struct key *k)
{
	return (unsigned *)((char *)c + k->count_off);
}

/* The key named name[0..len), compared ignoring case and with '-' as '_',
 * or NULL. */
const struct key *bk__config_find_key(const char *name, size_t len);
/* Sets "key" or "section.key" from text with surrounding blanks trimmed.
 * lists_seen (or NULL: always replace) tracks which list keys this source
 * has set, so its first item replaces the list and later ones append.
 * Returns 0, -ENOENT (unknown key), -EINVAL or -ENOMEM with *why set. */
int bk__config_set_trimmed(struct bk_config *c, const char *key,
			   const char *value, uint64_t *lists_seen,
			   const char **why);
/* Checks engine, redis_url and redis_cluster together: the number of
 * errors printed to stderr. */
int bk__config_check_engine(const struct bk_config *c);
/* Prints the --help text (in config_fmt.c). */
void bk__config_print_usage(FILE *f);

#endif
