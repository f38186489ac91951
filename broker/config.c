/* The broker's configuration: one table of keys drives the INI loader, the
 * command-line flags, the RINGCAST_* environment variables, --help and the
 * dump, so a key added to the table is automatically settable from all
 * three sources and documented in all outputs.  This file holds the table,
 * the value parsers, the INI file and the environment; config_args.c reads
 * the command line and config_fmt.c writes the settings out. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "broker/config.h"
#include "broker/config_internal.h"
#include "broker/namespace.h"
#include "broker/redis.h"
#include "core/rc.h"
#include "proto/json.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"

#define F(field) offsetof(struct bk_config, field)
/* 30 days: every timeout fits an unsigned of milliseconds with room. */
#define MAX_TIMEOUT_MS (30ull * 86400 * 1000)

const struct key bk__config_keys[] = {
	{ "listen", "server", K_LIST, F(listen), 0, 0, NULL,
	  "HOST:PORT to listen on; repeatable or comma-separated", F(nlisten) },
	{ "threads", "server", K_UINT, F(threads), 0, 1024,
	  "out of range (0..1024)", "worker threads, one event loop each; 0 = one per CPU", 0 },
	{ "io_backend", "server", K_IOBACKEND, F(io_backend), 0, 0, NULL,
	  "event loop: auto (io_uring, epoll where io_uring is blocked), io_uring or epoll", 0 },
	{ "backlog", "server", K_INT, F(backlog), 1, INT_MAX,
	  "out of range (1..2147483647)", "listen() backlog (capped by net.core.somaxconn)", 0 },
	{ "log_level", "server", K_LEVEL, F(log_level), 0, 0, NULL,
	  "error, warn, info or debug", 0 },
	{ "log_format", "server", K_LOGFMT, F(log_format), 0, 0, NULL,
	  "text lines or one JSON object per line", 0 },
	{ "log_rate", "server", K_U64, F(log_rate), 0, 1000000, "out of range (0..1000000)",
	  "log lines per second at most (bursts of 10 s worth); 0 = no limit", 0 },
	{ "access_log", "server", K_BOOL, F(access_log), 0, 0, NULL,
	  "log every plain HTTP request at info", 0 },
	{ "echo", "server", K_BOOL, F(echo), 0, 0, NULL, "serve the /echo endpoint", 0 },
	{ "compression", "server", K_BOOL, F(compression), 0, 0, NULL,
	  "offer permessage-deflate", 0 },
	{ "cors_origins", "server", K_ORIGINS, F(cors_origins), 0, 0, NULL,
	  "web origins allowed to call the HTTP API from a page (comma-separated, or *)", 0 },
	{ "metrics_topics", "server", K_TOPICS, F(metrics_topics), 0, 0, NULL,
	  "topics with per-topic series in /metrics (comma-separated, at most 64)", 0 },
	{ "max_connections", "limits", K_U64, F(max_connections), 0, UINT64_MAX,
	  NULL, "connections in total; 0 = unlimited", 0 },
	{ "max_connections_per_ip", "limits", K_U64, F(max_connections_per_ip), 0,
	  UINT64_MAX, NULL, "connections per client address; 0 = unlimited", 0 },
	{ "max_message_size", "limits", K_SIZE, F(max_message_size), 1, GIB,
	  "out of range (1..1G)", "largest WebSocket message, bytes", 0 },
	{ "max_backpressure", "limits", K_SIZE, F(max_backpressure), 1, TIB,
	  "out of range (1..1T)", "queued bytes per connection before the slow-consumer policy", 0 },
	{ "max_topics", "limits", K_U64, F(max_topics), 1, 100000000,
	  "out of range (1..100000000)", "topics that may exist at once", 0 },
	{ "max_topics_per_connection", "limits", K_U64, F(max_topics_per_connection),
	  1, 10000000, "out of range (1..10000000)", "subscriptions per connection", 0 },
	{ "max_http_body", "limits", K_SIZE, F(max_http_body), 1, GIB,
	  "out of range (1..1G)", "largest POST /publish body, bytes", 0 },
	{ "max_http_head", "limits", K_SIZE, F(max_http_head), 256, MIB,
	  "out of range (256..1M)", "largest HTTP request head, bytes", 0 },
	{ "json_rate", "limits", K_RATE, F(json_rate), 0, 1000000000,
	  "out of range (more than 0, at most 1000000000)",
	  "JSON commands per second per connection", 0 },
	{ "json_burst", "limits", K_U64, F(json_burst), 1, 1000000000,
	  "out of range (1..1000000000)", "JSON commands allowed in a burst", 0 },
	{ "topic_create_rate", "limits", K_U64, F(topic_create_rate), 0, 1000000000,
	  "out of range (0..1000000000)",
	  "new topics per second per client address; 0 = unlimited", 0 },
	{ "topic_create_burst", "limits", K_U64, F(topic_create_burst), 1, 1000000000,
	  "out of range (1..1000000000)", "new topics a client address may create in a burst", 0 },
	{ "slow_consumer_policy", "limits", K_POLICY, F(slow_consumer_policy), 0, 0,
	  NULL, "close (1013) or drop (and report a gap) past max_backpressure", 0 },
	{ "sse_max_topics", "limits", K_U64, F(sse_max_topics), 1, 1000,
	  "out of range (1..1000)", "topics in one /events stream", 0 },
	{ "handshake_timeout", "timeouts", K_MS, F(handshake_timeout_ms), 1,
	  MAX_TIMEOUT_MS, "out of range (0.001..2592000 s)",
	  "seconds to complete the HTTP upgrade", 0 },
	{ "idle_timeout", "timeouts", K_MS, F(idle_timeout_ms), 1, MAX_TIMEOUT_MS,
	  "out of range (0.001..2592000 s)", "seconds without traffic before a ping", 0 },
	{ "pong_timeout", "timeouts", K_MS, F(pong_timeout_ms), 1, MAX_TIMEOUT_MS,
	  "out of range (0.001..2592000 s)", "seconds to wait for the pong", 0 },
	{ "close_timeout", "timeouts", K_MS, F(close_timeout_ms), 1, MAX_TIMEOUT_MS,
	  "out of range (0.001..2592000 s)", "seconds to wait for the peer's close", 0 },
	{ "sse_retry", "timeouts", K_MS, F(sse_retry_ms), 1, MAX_TIMEOUT_MS,
	  "out of range (0.001..2592000 s)",
	  "seconds an EventSource waits before reconnecting (the stream's retry:)", 0 },
	{ "sse_keepalive", "timeouts", K_MS, F(sse_keepalive_ms), 1, MAX_TIMEOUT_MS,
	  "out of range (0.001..2592000 s)",
	  "seconds of silence before an event stream gets a keep-alive comment", 0 },
	{ "history_max_bytes", "history", K_SIZE, F(history_max_bytes), 0, TIB,
	  "out of range (0..1T)", "payload bytes kept in all topics' history together", 0 },
	{ "history_size", "history", K_U64, F(history_size), 0, 1000000,
	  "out of range (0..1000000)", "messages kept per topic for resume; 0 = none", 0 },
	{ "history_ttl", "history", K_MS64, F(history_ttl_ms), 0,
	  10ull * 365 * 86400 * 1000, "out of range (0..315360000 s)",
	  "seconds a message stays in history; 0 = no age limit", 0 },
	{ "tls_listen", "tls", K_LIST, F(tls_listen), 0, 0, NULL,
	  "HOST:PORT for wss:// and https (needs tls_cert, tls_key); repeatable",
	  F(ntls_listen) },
	{ "tls_cert", "tls", K_PATH, F(tls_cert), 0, 0, NULL,
	  "PEM certificate chain for tls_listen (re-read on SIGHUP)", 0 },
	{ "tls_key", "tls", K_PATH, F(tls_key), 0, 0, NULL,
	  "PEM private key for tls_cert (re-read on SIGHUP)", 0 },
	{ "tls_client_ca", "tls", K_PATH, F(tls_client_ca), 0, 0, NULL,
	  "PEM CA file: require client certificates it signed (mutual TLS)", 0 },
	{ "auth", "auth", K_PATH, F(auth), 0, 0, NULL,
	  "access file (tokens, topic rules, API keys; re-read on SIGHUP), or none", 0 },
	{ "engine", "engine", K_STR, F(engine), 0, 0, NULL,
	  "memory (one node) or redis (nodes share topics through redis_url)", 0 },
	{ "redis_url", "engine", K_STR, F(redis_url), 0, 0, NULL,
	  "redis://[user:pass@]host:port[/db] or rediss:// (comma-separated)", 0 },
	{ "redis_tls_ca", "engine", K_PATH, F(redis_tls_ca), 0, 0, NULL,
	  "PEM CA file that verifies rediss:// servers (default: the system's)", 0 },
	{ "redis_cluster", "engine", K_BOOL, F(redis_cluster), 0, 0, NULL,
	  "redis_url names Redis Cluster nodes (sharded pub/sub)", 0 },
};

#define NKEYS (sizeof(bk__config_keys) / sizeof(bk__config_keys[0]))
const size_t bk__config_nkeys = NKEYS;
_Static_assert(NKEYS <= 64, "struct source.lists_seen has one bit per key");

static const char *const sections[] = { "server", "limits", "timeouts", "history", "tls", "auth", "engine" };

/* Where a value came from, for error messages and the list rule: the first
 * item of a list key (listen, tls_listen) from a source replaces the earlier
 * list, later ones append. */
struct source {
	const char *file;	/* file name, or NULL */
	unsigned line;
	const char *what;	/* "--threads", "RINGCAST_THREADS", ... */
	uint64_t lists_seen;	/* bit i: key i was set from this source */
	int errors;
	FILE *f;
	struct bk_config *c;
};

/* Name comparison that treats '-' like '_' and ignores case, so flags
 * (--max-backpressure), env (MAX_BACKPRESSURE) and INI keys share a table. */
static bool name_eq(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		char x = a[i] == '-' ? '_' : (char)tolower((unsigned char)a[i]);

		if (b[i] == '\0' || x != b[i])
			return false;
	}
	return b[i] == '\0';
}

/* The key named name[0..len) (see config_internal.h). */
const struct key *bk__config_find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (name_eq(name, len, bk__config_keys[i].name))
			return &bk__config_keys[i];
	return NULL;
}

static bool known_section(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (name_eq(s, len, sections[i]))
			return true;
	return false;
}

/* ---- value parsers: all return 0 or -EINVAL with *why set ---------------- */

struct unit {
	const char *suffix;
	uint64_t mult;
};

static const struct unit size_units[] = {
	{ "", 1 }, { "b", 1 },
	{ "k", KIB }, { "kb", KIB }, { "kib", KIB },
	{ "m", MIB }, { "mb", MIB }, { "mib", MIB },
	{ "g", GIB }, { "gb", GIB }, { "gib", GIB },
	{ "t", TIB }, { "tb", TIB }, { "tib", TIB },
	{ NULL, 0 },
};

/* Durations: a bare number is seconds; the struct holds milliseconds. */
static const struct unit time_units[] = {
	{ "", 1000 }, { "s", 1000 }, { "ms", 1 }, { "m", 60000 }, { "h", 3600000 },
	{ NULL, 0 },
};

/* "<digits>[.<digits>][ ]<suffix>" scaled exactly by the suffix's multiplier;
 * a fraction that does not land on a whole unit is an error rather than
 * silently rounded. */
static int parse_scaled(const char *s, const struct unit *units, uint64_t *out)
{
	uint64_t ip = 0, frac = 0, fscale = 1, mult = 0, v;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++)
		if (__builtin_mul_overflow(ip, 10, &ip) ||
		    __builtin_add_overflow(ip, (uint64_t)(*p - '0'), &ip))
			return -ERANGE;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			if (fscale >= 1000000000000ull)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
			fscale *= 10;
		}
	}
	while (*p == ' ')
		p++;
	for (const struct unit *u = units; u->suffix; u++)
		if (strcasecmp(p, u->suffix) == 0)
			mult = u->mult;
	if (!mult)
		return -EINVAL;
	if (__builtin_mul_overflow(ip, mult, &v))
		return -ERANGE;
	if (frac) {
		/* frac / fscale * mult must be whole; frac < fscale <= 1e12 and
		 * mult <= 2^40 could overflow, so divide first when possible. */
		unsigned __int128 f = (unsigned __int128)frac * mult;

		if (f % fscale)
			return -EDOM;
		if (__builtin_add_overflow(v, (uint64_t)(f / fscale), &v))
			return -ERANGE;
	}
	*out = v;
	return 0;
}

static int parse_uint(const char *s, uint64_t *out)
{
	static const struct unit plain[] = { { "", 1 }, { NULL, 0 } };

	if (strchr(s, '.'))
		return -EINVAL;
	return parse_scaled(s, plain, out);
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* The keywords of an enumerated key, and their values. */
struct word {
	const char *name;
	int value;
};
#define WORDS(w) (w), sizeof(w) / sizeof((w)[0])

/* *out = the value of s (any case) in words; -EINVAL if none. */
static int parse_word(const char *s, const struct word *words, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(s, words[i].name) == 0) {
			*out = words[i].value;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_level(const char *s, int *out)
{
	static const struct word names[] = {
		{ "error", RC_LOG_ERROR }, { "warn", RC_LOG_WARN },
		{ "warning", RC_LOG_WARN }, { "info", RC_LOG_INFO },
		{ "debug", RC_LOG_DEBUG },
	};

	return parse_word(s, WORDS(names), out);
}

/* One "host:port": an IPv6 literal in brackets, or a name/IPv4 address
 * without colons; port 1..65535. */
static bool listen_valid(const char *s, size_t len)
{
	const char *colon = memrchr(s, ':', len);
	size_t hlen, plen;
	unsigned long port = 0;

	if (!colon)
		return false;
	hlen = (size_t)(colon - s);
	plen = len - hlen - 1;
	if (hlen == 0 || plen == 0 || plen > 5)
		return false;
	for (size_t i = 0; i < plen; i++) {
		if (!isdigit((unsigned char)colon[1 + i]))
			return false;
		port = port * 10 + (unsigned long)(colon[1 + i] - '0');
	}
	if (port == 0 || port > 65535)
		return false;
	if (s[0] == '[')
		return hlen > 2 && s[hlen - 1] == ']' && !memchr(s + 1, ']', hlen - 2);
	for (size_t i = 0; i < hlen; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && ch != '.' && ch != '-' && ch != '_' && ch != '*')
			return false;
	}
	return true;
}

static void free_list(struct bk_config *c, const struct key *k)
{
	char **items = bk__config_list_items(c, k);
	unsigned *n = bk__config_list_count(c, k);

	for (unsigned i = 0; i < *n; i++) {
		free(items[i]);
		items[i] = NULL;
	}
	*n = 0;
}

/* Validates every comma-separated item before touching c, so a bad list
 * leaves the previous one in place.  An empty value is an empty list (how
 * the example file spells "no TLS listener"). */
static int set_list(struct bk_config *c, const struct key *k, const char *v,
		    bool replace, const char **why)
{
	char *items[RC_CFG_MAX_LISTEN];
	unsigned n = 0, base = replace ? 0 : *bk__config_list_count(c, k);
	const char *p = v;
	int err = -EINVAL;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len && isspace((unsigned char)*p))
			p++, len--;
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (!listen_valid(p, len)) {
			*why = "not HOST:PORT (port 1..65535, IPv6 as [addr]:port)";
			goto err_free;
		}
		if (base + n >= RC_CFG_MAX_LISTEN) {
			*why = "too many addresses (at most 16)";
			goto err_free;
		}
		items[n] = strndup(p, len);
		if (!items[n]) {
			*why = "out of memory";
			err = -ENOMEM;
			goto err_free;
		}
		n++;
		if (!end)
			break;
		p = end + 1;
		if (!*p) {	/* "a:1," */
			*why = "not HOST:PORT (port 1..65535, IPv6 as [addr]:port)";
			goto err_free;
		}
	}
	if (replace)
		free_list(c, k);
	for (unsigned i = 0; i < n; i++)
		bk__config_list_items(c, k)[(*bk__config_list_count(c, k))++] =
			items[i];
	return 0;

err_free:
	while (n)
		free(items[--n]);
	return err;
}

/* A file name; empty unsets it.  The file is read when a listener is
 * created, where a missing or bad file is reported with OpenSSL's reason. */
static int set_path(struct bk_config *c, const struct key *k, const char *v,
		    const char **why)
{
	char **field = (char **)((char *)c + k->off);
	char *dup = NULL;

	if (*v && !(dup = strdup(v))) {
		*why = "out of memory";
		return -ENOMEM;
	}
	free(*field);
	*field = dup;
	return 0;
}

/* "*", or scheme://host[:port] items (http, https) as a browser sends them
 * in Origin (no path), separated by commas and optional spaces. */
static int set_origins(struct bk_config *c, const struct key *k, const char *v,
		       const char **why)
{
	for (const char *p = v; *p;) {
		size_t n, len;
		p += strspn(p, " ");
		len = strcspn(p, ",");
		for (n = len; n && p[n - 1] == ' '; n--)
			;
		const char *host = n > 8 && !strncmp(p, "https://", 8) ? p + 8
				 : n > 7 && !strncmp(p, "http://", 7) ? p + 7 : NULL;
		bool ok = (n == 1 && *p == '*') ||
			  (host && memchr(host, '/', n - (size_t)(host - p)) == NULL &&
			   memchr(host, ' ', n - (size_t)(host - p)) == NULL);
		if (!ok) {
			*why = "not an origin list (http[s]://HOST[:PORT],… or *)";
			return -EINVAL;
		}
		p += len + (p[len] == ',');
	}
	return set_path(c, k, v, why);
}

/* Topic names separated by commas (blanks around them trimmed): each a
 * valid topic, none twice (a duplicate series fails a scrape), at most
 * RC_CFG_MAX_METRICS_TOPICS.  A topic containing a comma cannot be listed. */
static int set_topics(struct bk_config *c, const struct key *k, const char *v,
		      const char **why)
{
	const char *item[RC_CFG_MAX_METRICS_TOPICS];
	size_t ilen[RC_CFG_MAX_METRICS_TOPICS];
	unsigned n = 0;

	if (strlen(v) > RC_CFG_MAX_METRICS_TOPICS_LEN) {
		*why = "list too long (at most 4096 bytes)";
		return -EINVAL;
	}
	for (const char *p = v; *p;) {
		size_t len, m;
		p += strspn(p, " \t");
		len = strcspn(p, ",");
		for (m = len; m && (p[m - 1] == ' ' || p[m - 1] == '\t'); m--)
			;
		if (!rc_topic_valid((const uint8_t *)p, m)) {
			*why = "not a topic list (valid topic names separated by commas)";
			return -EINVAL;
		}
		for (unsigned i = 0; i < n; i++)
			if (ilen[i] == m && !memcmp(item[i], p, m)) {
				*why = "a topic is listed twice";
				return -EINVAL;
			}
		if (n == RC_CFG_MAX_METRICS_TOPICS) {
			*why = "too many topics (at most 64)";
			return -EINVAL;
		}
		item[n] = p;
		ilen[n++] = m;
		p += len + (p[len] == ',');
	}
	return set_path(c, k, v, why);
}

static int range_err(const struct key *k, const char **why)
{
	*why = k->range ? k->range : "out of range";
	return -EINVAL;
}

/* Parses v for k and stores it; c is untouched on error. */
static int set_value(struct bk_config *c, const struct key *k, const char *v,
		     bool list_replace, const char **why)
{
	char *field = (char *)c + k->off;
	uint64_t n = 0;
	int err;

	switch (k->kind) {
	case K_LIST:
		return set_list(c, k, v, list_replace, why);
	case K_PATH:
	case K_STR:
		return set_path(c, k, v, why);
	case K_ORIGINS:
		return set_origins(c, k, v, why);
	case K_TOPICS:
		return set_topics(c, k, v, why);
	case K_BOOL:
		*why = "not a boolean (on/off, true/false, yes/no, 1/0)";
		return parse_bool(v, (bool *)field);
	case K_LEVEL:
		*why = "not a log level (error, warn, info, debug)";
		return parse_level(v, (int *)field);
	case K_LOGFMT: {
		static const struct word fmts[] = { { "text", RC_LOG_TEXT }, { "json", RC_LOG_JSON } };
		*why = "not a log format (text, json)";
		return parse_word(v, WORDS(fmts), (int *)field);
	}
	case K_POLICY: {
		static const struct word policies[] = {
			{ "close", BK_SLOW_CLOSE }, { "drop", BK_SLOW_DROP },
		};
		int p;
		*why = "not a policy (close, drop)";
		if (parse_word(v, WORDS(policies), &p) < 0)
			return -EINVAL;
		c->slow_consumer_policy = (enum bk_slow_policy)p;
		return 0;
	}
	case K_IOBACKEND: {
		static const struct word backends[] = {
			{ "auto", RC_IO_AUTO }, { "io_uring", RC_IO_URING }, { "epoll", RC_IO_EPOLL },
		};
		*why = "not an io backend (auto, io_uring, epoll)";
		return parse_word(v, WORDS(backends), &c->io_backend);
	}
	case K_RATE: {
		char *end;
		double d;

		*why = "not a number";
		errno = 0;
		d = strtod(v, &end);
		if (end == v || *end || errno == ERANGE || !isfinite(d))
			return -EINVAL;
		if (!(d > 0) || d > (double)k->max)
			return range_err(k, why);
		*(double *)field = d;
		return 0;
	}
	case K_SIZE:
		*why = "not a size (bytes, or with K/M/G/T)";
		err = parse_scaled(v, size_units, &n);
		if (err == -EDOM)
			*why = "not a whole number of bytes";
		break;
	case K_MS:
	case K_MS64:
		*why = "not a duration (seconds, fractions allowed; or with ms/s/m/h)";
		err = parse_scaled(v, time_units, &n);
		if (err == -EDOM)
			*why = "finer than a millisecond";
		break;
	default:
		*why = "not a whole number";
		err = parse_uint(v, &n);
		break;
	}
	if (err == -ERANGE)
		return range_err(k, why);
	if (err)
		return -EINVAL;
	if (n < k->min || n > k->max)
		return range_err(k, why);
	switch (k->kind) {
	case K_UINT:
	case K_MS:
		*(unsigned *)field = (unsigned)n;
		break;
	case K_INT:
		*(int *)field = (int)n;
		break;
	default:
		*(uint64_t *)field = n;
		break;
	}
	return 0;
}

/* Resolves "key" or "section.key"; a key named under the wrong section is
 * unknown there (-ENOENT), which catches keys pasted into the wrong block. */
static const struct key *lookup(const char *key, const char **why)
{
	const char *dot = strchr(key, '.');
	const struct key *k;

	if (!dot) {
		k = bk__config_find_key(key, strlen(key));
		if (!k)
			*why = "unknown key";
		return k;
	}
	if (!known_section(key, (size_t)(dot - key))) {
		*why = "unknown section";
		return NULL;
	}
	k = bk__config_find_key(dot + 1, strlen(dot + 1));
	if (!k) {
		*why = "unknown key";
		return NULL;
	}
	if (!name_eq(key, (size_t)(dot - key), k->section)) {
		*why = "key belongs to another section";
		return NULL;
	}
	return k;
}

/* Trims surrounding blanks (flags and env keep them; inih does not). */
int bk__config_set_trimmed(struct bk_config *c, const char *key,
			   const char *value, uint64_t *lists_seen,
			   const char **why)
{
	const struct key *k = lookup(key, why);
	char buf[512];
	size_t len;

	if (!k)
		return -ENOENT;
	while (isspace((unsigned char)*value))
		value++;
	len = strlen(value);
	while (len && isspace((unsigned char)value[len - 1]))
		len--;
	if (len >= sizeof(buf)) {
		*why = "value too long";
		return -EINVAL;
	}
	memcpy(buf, value, len);
	buf[len] = '\0';
	if (k->kind == K_LIST && lists_seen) {
		uint64_t bit = 1ull << (k - bk__config_keys);
		int err = set_value(c, k, buf, !(*lists_seen & bit), why);

		if (!err)
			*lists_seen |= bit;
		return err;
	}
	return set_value(c, k, buf, true, why);
}

/* Fills c with the defaults (a broker that works with no file).  The listen
 * string is allocated like every other one, since callers free entries of
 * listen[] themselves; if that allocation fails the list stays empty and
 * bk_config_validate reports it. */
void bk_config_defaults(struct bk_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen[0] = strdup(DEFAULT_LISTEN);
	c->nlisten = c->listen[0] ? 1 : 0;
	c->threads = 0;
	c->backlog = 1024;
	c->log_level = RC_LOG_INFO;
	c->log_format = RC_LOG_TEXT;
	c->log_rate = 200;
	c->echo = true;
	c->compression = true;
	c->max_connections = 0;
	c->max_connections_per_ip = 0;
	c->max_message_size = 1 * MIB;
	c->max_backpressure = 1 * MIB;
	c->max_topics_per_connection = 1000;
	c->max_topics = 100000;
	c->max_http_body = 1 * MIB;
	c->max_http_head = 8 * KIB;
	c->json_rate = 1000;
	c->json_burst = 2000;
	c->topic_create_rate = 1000;
	c->topic_create_burst = 10000;
	c->slow_consumer_policy = BK_SLOW_CLOSE;
	c->handshake_timeout_ms = 10000;
	c->idle_timeout_ms = 30000;
	c->pong_timeout_ms = 10000;
	c->close_timeout_ms = 5000;
	c->sse_retry_ms = 3000;
	c->sse_keepalive_ms = 15000;
	c->sse_max_topics = 32;
	c->engine = strdup("memory"); /* NULL (out of memory) means memory too */
	c->history_size = 100;
	c->history_max_bytes = 256 * MIB;
	c->history_ttl_ms = 0;
	c->config_file = NULL;
}

/* Sets one key from text; "listen" replaces the whole list. */
int bk_config_set(struct bk_config *c, const char *key, const char *value,
		  const char **why)
{
	const char *dummy;

	return bk__config_set_trimmed(c, key, value, NULL, why ? why : &dummy);
}

/* ---- INI file -------------------------------------------------------------- */

/* fgets for inih that counts lines (this inih build has no line numbers in
 * the handler), refuses over-long lines instead of letting inih parse their
 * tail as a new line, and strips leading blanks so an indented key is never
 * taken as a continuation of the previous value. */
static char *read_line(char *buf, int num, void *stream)
{
	struct source *src = stream;
	size_t len, skip = 0;
	int ch;

	if (!fgets(buf, num, src->f))
		return NULL;
	src->line++;
	len = strlen(buf);
	if (len == (size_t)num - 1 && buf[len - 1] != '\n') {
		ch = getc(src->f);
		if (ch != EOF && ch != '\n') {
			while (ch != EOF && ch != '\n')
				ch = getc(src->f);
			fprintf(stderr, "ringcast: %s:%u: line too long (at most %d bytes)\n",
				src->file, src->line, num - 1);
			src->errors++;
			strcpy(buf, "\n");
			return buf;
		}
	}
	while (buf[skip] == ' ' || buf[skip] == '\t')
		skip++;
	if (skip)
		memmove(buf, buf + skip, len - skip + 1);
	return buf;
}

static int ini_cb(void *user, const char *section, const char *name,
		  const char *value)
{
	struct source *src = user;
	const struct key *k = bk__config_find_key(name, strlen(name));
	const char *why = NULL;
	int err;

	if (section[0] && bk_ns_section(section)) {
		/* [namespaces], [namespace NAME]: namespace.c */
		if (!bk_ns_set(src->c, section, name, value, &why))
			return 1;
		fprintf(stderr, "ringcast: %s:%u: [%s] %s: %s: '%s'\n", src->file, src->line,
			section, name, why, value);
		goto fail;
	}
	if (section[0] && !known_section(section, strlen(section))) {
		fprintf(stderr, "ringcast: %s:%u: unknown section [%s]\n",
			src->file, src->line, section);
		goto fail;
	}
	if (section[0] && k && !name_eq(section, strlen(section), k->section)) {
		fprintf(stderr, "ringcast: %s:%u: %s: belongs in [%s], not [%s]\n",
			src->file, src->line, name, k->section, section);
		goto fail;
	}
	err = bk__config_set_trimmed(src->c, name, value, &src->lists_seen,
				     &why);
	if (err == -ENOENT) {
		fprintf(stderr, "ringcast: %s:%u: %s: %s\n", src->file, src->line,
			name, why);
		goto fail;
	}
	if (err) {
		fprintf(stderr, "ringcast: %s:%u: %s: %s: '%s'\n", src->file,
			src->line, name, why, value);
		goto fail;
	}
	return 1;
fail:
	src->errors++;
	return 1;	/* keep going: report every bad line in one run */
}

/* Loads an INI file over c; the first listen line replaces the list. */
int bk_config_load_file(struct bk_config *c, const char *path)
{
	struct source src = { .file = path, .c = c };
	int ret, err;

	src.f = fopen(path, "re");
	if (!src.f) {
		err = -errno;
		fprintf(stderr, "ringcast: %s: %s\n", path, strerror(errno));
		return err;
	}
	ret = ini_parse_stream(read_line, &src, ini_cb, &src);
	if (ferror(src.f)) {
		fprintf(stderr, "ringcast: %s: read error\n", path);
		src.errors++;
	}
	fclose(src.f);
	if (ret > 0) {
		/* ini_cb never fails, so inih itself rejected this line. */
		fprintf(stderr, "ringcast: %s:%d: syntax error (expected 'key = value' or '[section]')\n",
			path, ret);
		src.errors++;
	} else if (ret < 0) {
		fprintf(stderr, "ringcast: %s: cannot parse (inih error %d)\n", path, ret);
		return -ENOMEM;
	}
	return src.errors ? -EINVAL : 0;
}

/* ---- environment ----------------------------------------------------------- */

/* Applies RINGCAST_<KEY>; an empty variable counts as unset (compose files
 * often expand unset variables to ""), and an unknown RINGCAST_* name is
 * warned about, since a typo would otherwise be silently ignored. */
int bk_config_load_env(struct bk_config *c)
{
	char name[64];
	int errors = 0;

	for (size_t i = 0; i < NKEYS; i++) {
		const char *v, *why = NULL;
		size_t j;
		int err;

		j = (size_t)snprintf(name, sizeof(name), "RINGCAST_");
		for (const char *p = bk__config_keys[i].name;
		     *p && j < sizeof(name) - 1; p++)
			name[j++] = (char)toupper((unsigned char)*p);
		name[j] = '\0';
		v = getenv(name);
		if (!v || !*v)
			continue;
		err = bk__config_set_trimmed(c, bk__config_keys[i].name, v, NULL,
					     &why);
		if (err) {
			fprintf(stderr, "ringcast: %s: %s: %s: '%s'\n", name,
				bk__config_keys[i].name, why, v);
			errors++;
		}
	}
	for (char **e = environ; *e; e++) {
		const char *eq;

		if (strncmp(*e, "RINGCAST_", 9) != 0 || !(eq = strchr(*e, '=')))
			continue;
		if (name_eq(*e + 9, (size_t)(eq - *e - 9), "config") ||
		    bk__config_find_key(*e + 9, (size_t)(eq - *e - 9)))
			continue;
		fprintf(stderr, "ringcast: warning: %.*s is not a ringcast setting; ignored\n",
			(int)(eq - *e), *e);
	}
	return errors ? -EINVAL : 0;
}

/* ---- validation ------------------------------------------------------------ */

/* Checks what single keys cannot: returns 0 or -EINVAL (printed). */
int bk_config_validate(const struct bk_config *c)
{
	int errors = 0;

	const char *all[2 * RC_CFG_MAX_LISTEN];
	unsigned n = 0;

	if (c->nlisten == 0) {
		fprintf(stderr, "ringcast: listen: no address to listen on "
			"(or out of memory)\n");
		errors++;
	}
	/* One address in both lists would bind twice (SO_REUSEPORT lets it)
	 * and split clients between plain and TLS at random. */
	for (unsigned i = 0; i < c->nlisten; i++)
		all[n++] = c->listen[i];
	for (unsigned i = 0; i < c->ntls_listen; i++)
		all[n++] = c->tls_listen[i];
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++)
			if (strcmp(all[i], all[j]) == 0) {
				fprintf(stderr, "ringcast: %s: '%s' given twice\n",
					j < c->nlisten ? "listen" : "tls_listen", all[i]);
				errors++;
			}
	if (n > RC_CFG_MAX_LISTEN) {
		fprintf(stderr, "ringcast: listen, tls_listen: %u addresses; at most %d "
			"together\n", n, RC_CFG_MAX_LISTEN);
		errors++;
	}
	if (c->ntls_listen && (!c->tls_cert || !c->tls_key)) {
		fprintf(stderr, "ringcast: tls_listen: needs tls_cert and tls_key\n");
		errors++;
	}
	if (!c->ntls_listen && (c->tls_cert || c->tls_key || c->tls_client_ca))
		fprintf(stderr, "ringcast: warning: tls_cert/tls_key/tls_client_ca are "
			"set but there is no tls_listen address; they are unused\n");
	errors += bk__config_check_engine(c);
	if (c->max_backpressure < c->max_message_size)
		fprintf(stderr, "ringcast: warning: max_backpressure (%llu) is below "
			"max_message_size (%llu): one large message can trip the "
			"slow-consumer policy\n",
			(unsigned long long)c->max_backpressure,
			(unsigned long long)c->max_message_size);
	return errors ? -EINVAL : 0;
}

/* engine, redis_url, redis_cluster: the errors found (printed). */
int bk__config_check_engine(const struct bk_config *c)
{
	bool redis = c->engine && strcmp(c->engine, "redis") == 0;

	if (c->engine && !redis && strcmp(c->engine, "memory") != 0) {
		fprintf(stderr, "ringcast: engine: '%s' is neither memory nor redis\n", c->engine);
		return 1;
	}
	if (redis && !c->redis_url) {
		fprintf(stderr, "ringcast: engine = redis needs redis_url\n");
		return 1;
	}
	if (c->redis_url) {
		struct bk_redis_url u[16];
		struct rc_span bad = { "", 0 };
		unsigned n;
		if (bk_redis_urls_parse(c->redis_url, u, 16, &n, &bad) < 0) {
			fprintf(stderr, "ringcast: redis_url: cannot read '%.*s' (redis://[[user]:"
				"password@]host[:port][/db] or rediss://)\n", (int)bad.len, bad.p);
			return 1;
		}
	}
	return 0;
}

/* Frees the strings c owns; c must be re-initialised before reuse. */
void bk_config_free(struct bk_config *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (bk__config_keys[i].kind == K_LIST)
			free_list(c, &bk__config_keys[i]);
		if (bk__config_keys[i].kind == K_PATH || bk__config_keys[i].kind == K_STR ||
		    bk__config_keys[i].kind == K_ORIGINS ||
		    bk__config_keys[i].kind == K_TOPICS) {
			free(*(char **)((char *)c + bk__config_keys[i].off));
			*(char **)((char *)c + bk__config_keys[i].off) = NULL;
		}
	}
	free(c->config_file);
	c->config_file = NULL;
	bk_ns_free(c);
}