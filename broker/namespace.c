/* Namespaces (see namespace.h): the [namespaces] and [namespace NAME]
 * sections, and the lookup of a topic's namespace. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/namespace.h"

static const char *const who_names[] = { "rules", "anonymous", "authenticated", "token",
					 "nobody" };

/* The table of c, created with its defaults on first use (NULL: ENOMEM). */
static struct bk_ns_table *table(struct bk_config *c)
{
	if (!c->namespaces) {
		c->namespaces = calloc(1, sizeof(*c->namespaces) + RC_NS_MAX * sizeof(struct bk_ns));
		if (c->namespaces) {
			c->namespaces->sep = ':';
			c->namespaces->top.client_publish = true;
		}
	}
	return c->namespaces;
}

/* See namespace.h. */
bool bk_ns_section(const char *section)
{
	return strcasecmp(section, "namespaces") == 0 || strncasecmp(section, "namespace ", 10) == 0;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "on", "true", "yes", "1" }, *const no[] = { "off",
		"false", "no", "0" };

	for (int i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
			*out = strcasecmp(v, yes[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* A section's name: letters, digits, '_' and '-', 1..RC_NS_NAME_MAX bytes. */
static bool name_ok(const char *n)
{
	size_t len = strlen(n);

	if (!len || len > RC_NS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(n[i] == '_' || n[i] == '-' || (n[i] >= '0' && n[i] <= '9') ||
		      ((n[i] | 0x20) >= 'a' && (n[i] | 0x20) <= 'z')))
			return false;
	return true;
}

static struct bk_ns *section_ns(struct bk_ns_table *t, const char *name, const char **why)
{
	size_t len = strlen(name);

	for (unsigned i = 0; i < t->n; i++)
		if (t->ns[i].len == len && memcmp(t->ns[i].name, name, len) == 0)
			return &t->ns[i];
	if (!name_ok(name)) {
		*why = "a namespace name is 1-64 letters, digits, '_' or '-'";
		return NULL;
	}
	if (t->n == RC_NS_MAX) {
		*why = "at most 256 [namespace] sections";
		return NULL;
	}
	struct bk_ns *ns = &t->ns[t->n++];
	*ns = t->top; /* the [namespaces] defaults read so far */
	ns->set = 0;
	memcpy(ns->name, name, len);
	ns->name[len] = 0;
	ns->len = len;
	return ns;
}

/* The keys that mean the same as at the top level, parsed by the same code. */
static int set_limit(struct bk_ns *ns, const char *key, const char *value, const char **why)
{
	struct bk_config tmp;
	int ret;

	memset(&tmp, 0, sizeof(tmp));
	if ((ret = bk_config_set(&tmp, key, value, why)) < 0)
		return ret;
	if (strcasecmp(key, "history_size") == 0) {
		ns->history_size = tmp.history_size;
		ns->set |= RC_NS_SET_HISTORY_SIZE;
	} else if (strcasecmp(key, "history_ttl") == 0) {
		ns->history_ttl_ms = tmp.history_ttl_ms;
		ns->set |= RC_NS_SET_HISTORY_TTL;
	} else if (strcasecmp(key, "max_message_size") == 0) {
		ns->max_message_size = tmp.max_message_size;
		ns->set |= RC_NS_SET_MAX_MESSAGE;
	} else {
		ns->slow_consumer_policy = (int)tmp.slow_consumer_policy;
		ns->set |= RC_NS_SET_SLOW;
	}
	return 0;
}

static int set_who(uint8_t *out, const char *value, const char **why)
{
	for (unsigned i = 0; i < sizeof(who_names) / sizeof(who_names[0]); i++) {
		if (strcasecmp(value, who_names[i]) == 0) {
			*out = (uint8_t)i;
			return 0;
		}
	}
	*why = "expected rules, anonymous, authenticated, token or nobody";
	return -EINVAL;
}

static int set_key(struct bk_ns *ns, const char *key, const char *value, const char **why)
{
	static const char *const limits[] = { "history_size", "history_ttl", "max_message_size",
					      "slow_consumer_policy" };
	bool *flag = NULL;

	for (int i = 0; i < 4; i++)
		if (strcasecmp(key, limits[i]) == 0)
			return set_limit(ns, key, value, why);
	if (strcasecmp(key, "subscribe") == 0)
		return set_who(&ns->who_subscribe, value, why);
	if (strcasecmp(key, "publish") == 0)
		return set_who(&ns->who_publish, value, why);
	if (strcasecmp(key, "presence") == 0)
		flag = &ns->presence;
	else if (strcasecmp(key, "join_leave") == 0)
		flag = &ns->join_leave;
	else if (strcasecmp(key, "client_publish") == 0)
		flag = &ns->client_publish;
	if (!flag) {
		*why = "unknown key in a [namespace] section";
		return -ENOENT;
	}
	if (parse_bool(value, flag) < 0) {
		*why = "expected on or off";
		return -EINVAL;
	}
	return 0;
}

/* See namespace.h. */
int bk_ns_set(struct bk_config *c, const char *section, const char *key, const char *value,
	      const char **why)
{
	struct bk_ns_table *t = table(c);
	struct bk_ns *ns;

	if (!t) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if (strncasecmp(section, "namespace ", 10) == 0) {
		const char *name = section + 10;
		while (*name == ' ')
			name++;
		if (!(ns = section_ns(t, name, why)))
			return -EINVAL;
		return set_key(ns, key, value, why);
	}
	if (strcasecmp(key, "separator") == 0) {
		if (strlen(value) != 1 || value[0] == '.' || value[0] == '*' || value[0] == '>' ||
		    (unsigned char)value[0] <= ' ' || (unsigned char)value[0] >= 0x7f) {
			*why = "one printable ASCII character other than '.', '*' and '>'";
			return -EINVAL;
		}
		t->sep = value[0];
		return 0;
	}
	if (strcasecmp(key, "unknown") == 0) {
		if (strcasecmp(value, "refuse") && strcasecmp(value, "default")) {
			*why = "expected refuse or default";
			return -EINVAL;
		}
		t->refuse_unknown = strcasecmp(value, "refuse") == 0;
		return 0;
	}
	if (strcasecmp(key, "subscribe") == 0 || strcasecmp(key, "publish") == 0 ||
	    strcasecmp(key, "presence") == 0 || strcasecmp(key, "join_leave") == 0 ||
	    strcasecmp(key, "client_publish") == 0)
		return set_key(&t->top, key, value, why);
	*why = "unknown key in [namespaces] (separator, unknown, presence, join_leave, "
	       "client_publish, subscribe, publish)";
	return -ENOENT;
}

static const struct bk_ns default_ns = { .client_publish = true };

/* See namespace.h. */
const struct bk_ns *bk_ns_of(const struct bk_config *c, const char *t, size_t len,
			     bool *unknown)
{
	const struct bk_ns_table *tb = c->namespaces;
	const char *sep;
	size_t n;

	if (unknown)
		*unknown = false;
	if (!tb)
		return &default_ns;
	if (!(sep = memchr(t, tb->sep, len)))
		return &tb->top;
	n = (size_t)(sep - t);
	for (unsigned i = 0; i < tb->n; i++)
		if (tb->ns[i].len == n && memcmp(tb->ns[i].name, t, n) == 0)
			return &tb->ns[i];
	if (unknown)
		*unknown = tb->refuse_unknown;
	return &tb->top;
}

static const char *onoff(bool b)
{
	return b ? "on" : "off";
}

/* One section's keys as INI text at out + *pos. */
static void dump_ns(const struct bk_ns *ns, char *out, size_t cap, size_t *pos)
{
	int n;

#define PUT(...)                                                                     \
	do {                                                                         \
		n = snprintf(out + *pos, *pos < cap ? cap - *pos : 0, __VA_ARGS__);  \
		*pos += n > 0 ? (size_t)n : 0;                                       \
	} while (0)
	if (ns->set & RC_NS_SET_HISTORY_SIZE)
		PUT("history_size = %llu\n", (unsigned long long)ns->history_size);
	if (ns->set & RC_NS_SET_HISTORY_TTL)
		PUT("history_ttl = %.3f\n", (double)ns->history_ttl_ms / 1e3);
	if (ns->set & RC_NS_SET_MAX_MESSAGE)
		PUT("max_message_size = %llu\n", (unsigned long long)ns->max_message_size);
	if (ns->set & RC_NS_SET_SLOW)
		PUT("slow_consumer_policy = %s\n", ns->slow_consumer_policy ? "drop" : "close");
	PUT("presence = %s\njoin_leave = %s\nclient_publish = %s\nsubscribe = %s\npublish = %s\n",
	    onoff(ns->presence), onoff(ns->join_leave), onoff(ns->client_publish),
	    who_names[ns->who_subscribe], who_names[ns->who_publish]);
#undef PUT
}

/* See namespace.h. */
long bk_ns_dump(const struct bk_config *c, char *out, size_t cap)
{
	const struct bk_ns_table *t = c->namespaces;
	size_t pos = 0;
	int n;

	if (!t)
		return 0;
	n = snprintf(out, cap, "\n[namespaces]\nseparator = %c\nunknown = %s\n", t->sep,
		     t->refuse_unknown ? "refuse" : "default");
	pos = n > 0 ? (size_t)n : 0;
	dump_ns(&t->top, out, cap, &pos);
	for (unsigned i = 0; i < t->n; i++) {
		n = snprintf(out + pos, pos < cap ? cap - pos : 0, "\n[namespace %s]\n",
			     t->ns[i].name);
		pos += n > 0 ? (size_t)n : 0;
		dump_ns(&t->ns[i], out, cap, &pos);
	}
	return pos < cap ? (long)pos : -ENOSPC;
}

/* See namespace.h. */
void bk_ns_free(struct bk_config *c)
{
	free(c->namespaces);
	c->namespaces = NULL;
}
