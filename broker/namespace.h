/* Namespaces: the part of a topic before the first separator (':' unless
 * configured) selects a [namespace NAME] section of the configuration with
 * its own options; a topic without the separator, or in a namespace no
 * section names (unless [namespaces] unknown = refuse), uses the top-level
 * values.  Parsed with the rest of the file (config.c hands these sections
 * over) and swapped whole with the configuration on SIGHUP. */
#ifndef RC_BROKER_NAMESPACE_H
#define RC_BROKER_NAMESPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"

#define RC_NS_MAX 256        /* [namespace …] sections */
#define RC_NS_NAME_MAX 64    /* bytes of a namespace name */

/* Who may do something in a namespace (as the access file's values). */
enum bk_ns_who { RC_NS_WHO_RULES, RC_NS_WHO_ANONYMOUS, RC_NS_WHO_AUTHENTICATED,
		 RC_NS_WHO_TOKEN, RC_NS_WHO_NOBODY };

struct bk_ns {
	char name[RC_NS_NAME_MAX + 1];
	size_t len;
	uint64_t history_size;
	uint64_t history_ttl_ms;
	uint64_t max_message_size;
	int slow_consumer_policy;    /* enum bk_slow_policy */
	bool presence;               /* who is subscribed can be asked */
	bool join_leave;             /* subscribers get join/leave events */
	bool client_publish;         /* WebSocket clients may publish */
	uint8_t who_subscribe, who_publish; /* enum bk_ns_who; RULES: the access file decides */
	/* RC_NS_SET_*: the keys the section gave; the rest follow the top level */
	unsigned set;
};

enum { RC_NS_SET_HISTORY_SIZE = 1, RC_NS_SET_HISTORY_TTL = 2, RC_NS_SET_MAX_MESSAGE = 4,
       RC_NS_SET_SLOW = 8 };

/* What [namespaces] and the [namespace …] sections hold.  [namespaces]
 * gives the defaults of presence, join_leave and client_publish for every
 * topic (sections override them). */
struct bk_ns_table {
	char sep;                    /* default ':' */
	bool refuse_unknown;         /* unknown namespaces refused, else top-level values */
	struct bk_ns top;            /* the defaults; name empty */
	unsigned n;
	struct bk_ns ns[];           /* RC_NS_MAX */
};

/* True when an INI section is one of ours ("namespaces", "namespace NAME"). */
bool bk_ns_section(const char *section);
/* Sets key = value in section (bk_ns_section true) of c's table, created
 * on first use: 0, -ENOENT (unknown key), -EINVAL (bad value or name,
 * too many sections) or -ENOMEM, with *why set. */
int bk_ns_set(struct bk_config *c, const char *section, const char *key, const char *value,
	      const char **why);
/* Appends the table as INI text; returns the length or -ENOSPC. */
long bk_ns_dump(const struct bk_config *c, char *out, size_t cap);
void bk_ns_free(struct bk_config *c);

/* The options for topic t: its namespace's, or the [namespaces] defaults
 * (never NULL).  *unknown (may be NULL) is set when t names a namespace no
 * section describes and unknown namespaces are refused. */
const struct bk_ns *bk_ns_of(const struct bk_config *c, const char *t, size_t len,
			     bool *unknown);

/* A namespace's value of a key, or the top level's when it gave none. */
static inline uint64_t bk_ns_history_size(const struct bk_config *c, const struct bk_ns *ns)
{
	return ns->set & RC_NS_SET_HISTORY_SIZE ? ns->history_size : c->history_size;
}
static inline uint64_t bk_ns_history_ttl_ms(const struct bk_config *c, const struct bk_ns *ns)
{
	return ns->set & RC_NS_SET_HISTORY_TTL ? ns->history_ttl_ms : c->history_ttl_ms;
}
static inline uint64_t bk_ns_max_message_size(const struct bk_config *c, const struct bk_ns *ns)
{
	return ns->set & RC_NS_SET_MAX_MESSAGE ? ns->max_message_size : c->max_message_size;
}
static inline int bk_ns_slow_policy(const struct bk_config *c, const struct bk_ns *ns)
{
	return ns->set & RC_NS_SET_SLOW ? ns->slow_consumer_policy : (int)c->slow_consumer_policy;
}

#endif
