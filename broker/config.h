/* The broker's configuration: defaults, an INI file (inih), command-line
 * flags and RINGCAST_* environment variables, applied in that order (each
 * later source overrides the earlier).  Every key is documented in
 * deploy/ringcast.ini. */
#ifndef RC_BROKER_CONFIG_H
#define RC_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_CFG_MAX_LISTEN 16
/* Per-topic series in /metrics: each listed topic adds two, so the list is
 * short by construction (and fits the reload's configuration dump). */
#define RC_CFG_MAX_METRICS_TOPICS 64
#define RC_CFG_MAX_METRICS_TOPICS_LEN 4096

enum bk_slow_policy { BK_SLOW_CLOSE, BK_SLOW_DROP };

struct bk_config {
	/* [server] */
	char *listen[RC_CFG_MAX_LISTEN];   /* "host:port"; default 127.0.0.1:8080 */
	unsigned nlisten;
	unsigned threads;                  /* 0: one per CPU */
	int backlog;
	int io_backend;                    /* enum rc_io_backend (auto: io_uring, epoll
					    * where io_uring is blocked) */
	int log_level;                     /* enum rc_log_level */
	int log_format;                    /* enum rc_log_format */
	uint64_t log_rate;                 /* log lines per second; 0: unlimited */
	bool access_log;                   /* one info line per HTTP request */
	bool echo;                         /* serve /echo */
	bool compression;                  /* permessage-deflate offered */
	char *cors_origins;                /* "https://a.example,…" or "*"; NULL: same origin only */
	char *metrics_topics;              /* "a,b,…" (at most RC_CFG_MAX_METRICS_TOPICS); NULL: none */
	/* [limits] */
	uint64_t max_connections;          /* total; 0: unlimited */
	uint64_t max_connections_per_ip;   /* 0: unlimited */
	uint64_t max_message_size;         /* bytes */
	uint64_t max_backpressure;         /* queued bytes per connection */
	uint64_t max_topics_per_connection;
	uint64_t max_topics;               /* topics in the registry */
	uint64_t max_http_body;
	uint64_t max_http_head;
	double json_rate;                  /* commands per second per connection */
	uint64_t json_burst;
	uint64_t topic_create_rate;        /* new topics per second per IP; 0: no limit */
	uint64_t topic_create_burst;
	enum bk_slow_policy slow_consumer_policy;
	uint64_t sse_max_topics;           /* topics in one /events stream */
	/* [timeouts] (milliseconds in the struct, seconds in the file) */
	unsigned handshake_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned pong_timeout_ms;
	unsigned close_timeout_ms;
	unsigned sse_retry_ms;             /* the retry: an event stream sends */
	unsigned sse_keepalive_ms;         /* a comment on a silent event stream */
	/* [history] */
	uint64_t history_size;             /* messages kept per topic */
	uint64_t history_max_bytes;        /* payload bytes in all histories */
	uint64_t history_ttl_ms;           /* 0: no age limit */
	/* [tls] */
	char *tls_listen[RC_CFG_MAX_LISTEN]; /* "host:port" for TLS; default none */
	unsigned ntls_listen;
	char *tls_cert;                    /* PEM chain; NULL unless tls_listen */
	char *tls_key;                     /* PEM private key */
	char *tls_client_ca;               /* NULL: no client certificates asked */
	char *config_file;                 /* as given, for SIGHUP */
	/* [auth] */
	char *auth;                        /* access file, "none", or NULL */
	/* [namespaces], [namespace NAME] (namespace.c); NULL: none */
	struct bk_ns_table *namespaces;
	/* [engine] */
	char *engine;                      /* NULL or "memory", or "redis" */
	char *redis_url;                   /* engine = redis: where */
	char *redis_tls_ca;                /* rediss://: CA file, NULL: the system's */
	bool redis_cluster;
};

/* Fills c with the defaults (a broker that works with no file). */
void bk_config_defaults(struct bk_config *c);

/* Sets one key ("max_backpressure", also "limits.max_backpressure") from
 * text.  Sizes accept K/M/G suffixes, booleans on/off/true/false/yes/no/1/0,
 * durations seconds (fractions allowed).  Returns 0, -ENOENT for an unknown
 * key, or -EINVAL for a bad value; *why gets a static explanation. */
int bk_config_set(struct bk_config *c, const char *key, const char *value,
		  const char **why);

/* Loads an INI file over c.  Returns 0 or -errno; errors (unknown key, bad
 * value, unreadable file) are printed to stderr with the file and line. */
int bk_config_load_file(struct bk_config *c, const char *path);

/* Applies RINGCAST_<KEY> environment variables (key upper-cased).  Returns
 * 0 or -EINVAL (printed to stderr). */
int bk_config_load_env(struct bk_config *c);

/* Parses argv: --config FILE is read first (file, then flags, then env),
 * then every --key VALUE / --key=VALUE flag, --listen and --tls-listen
 * repeatable.
 * --help and --version print and set *exit_now (exit status 0);
 * --check-config validates and sets *exit_now.  Returns 0, or -EINVAL
 * after printing the error and a usage hint to stderr. */
int bk_config_from_args(struct bk_config *c, int argc, char **argv,
			bool *exit_now);

/* Checks what single keys cannot (no listen address, one given twice in
 * listen and tls_listen together, tls_listen without tls_cert and tls_key)
 * and warns about risky combinations.  Returns 0 or -EINVAL (printed to
 * stderr).  bk_config_from_args already calls it. */
int bk_config_validate(const struct bk_config *c);

/* Writes the effective configuration as INI text (for --check-config and
 * logs); returns the length written or -ENOSPC. */
long bk_config_dump(const struct bk_config *c, char *out, size_t cap);

void bk_config_free(struct bk_config *c);

#define RINGCAST_VERSION "0.1.0"

#endif
