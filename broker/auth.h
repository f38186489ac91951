/* Access control of the broker (private to broker/): the policy loaded from
 * the access file named by the `auth` key (keys for connection tokens,
 * topic rules, API keys, the admin key, allowed origins, publish rates),
 * the per-connection identity, and the hooks session.c and http_api.c call
 * at the door.  The policy is immutable once published and swapped whole on
 * SIGHUP; a connection keeps only what its own token granted.  See
 * broker/PROTOCOL.md, "Access control", for the behaviour. */
#ifndef RC_BROKER_AUTH_H
#define RC_BROKER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "core/rc.h"
#include "proto/json.h"
#include "proto/jwt.h"

struct bk_client;
struct evp_pkey_st;

/* Who may subscribe to or publish on a topic. */
enum bk_who {
	BK_WHO_ANONYMOUS,     /* everyone, with or without a token */
	BK_WHO_AUTHENTICATED, /* any valid token (or an API key) */
	BK_WHO_TOKEN,         /* a token whose subscribe/publish claim covers it */
	BK_WHO_NOBODY,        /* no WebSocket client (backends use HTTP + key) */
};

enum bk_right { BK_SUBSCRIBE, BK_PUBLISH, BK_NRIGHTS };

#define BK_AUTH_MAX_KEYS 16
#define BK_AUTH_MAX_API_KEYS 16
#define BK_AUTH_MAX_ORIGINS 32
#define BK_AUTH_MAX_RULES 256

/* One token verification key: its kid (section name), the one algorithm it
 * accepts, and the secret (HS*) or public key (RS256, ES256). */
struct bk_jwt_key {
	char kid[RC_JWT_KID_MAX + 1];
	enum rc_jwt_alg alg;
	uint8_t *secret;
	size_t secret_len;
	struct evp_pkey_st *pkey;
};

struct bk_rule {
	char *pattern;          /* without the trailing '*' when prefix */
	size_t len;
	bool prefix;
	uint8_t who[BK_NRIGHTS];
};

struct bk_api_key {
	char *name;             /* logged; the key never is */
	uint8_t *key;
	size_t len;
};

struct bk_auth {
	char *file;
	struct bk_jwt_key keys[BK_AUTH_MAX_KEYS];
	unsigned nkeys;
	char *audience, *issuer;        /* NULL: not checked */
	unsigned leeway_s;              /* clock skew allowed on exp/nbf/iat */
	unsigned auth_timeout_ms;       /* for {"op":"auth"} */
	bool require_exp;
	struct bk_api_key api_keys[BK_AUTH_MAX_API_KEYS];
	unsigned napi_keys;
	uint8_t *admin_key;
	size_t admin_key_len;
	char *origins[BK_AUTH_MAX_ORIGINS];
	unsigned norigins;
	struct bk_rule rules[BK_AUTH_MAX_RULES];
	unsigned nrules;
	uint8_t fallback[BK_NRIGHTS];   /* when no rule matches */
	bool anonymous_somewhere;       /* some rule lets anonymous clients in */
	double publish_rate;            /* per connection, per API key, per IP */
	unsigned publish_burst;
	struct bk_auth *retired_next;   /* replaced by a reload, kept until exit */
};

/* ---- auth_config.c: the access file ------------------------------------- */

/* Loads an access file; NULL after printing every error (file:line). */
struct bk_auth *bk_auth_load(const char *path);
void bk_auth_free(struct bk_auth *a);
/* True when the `auth` setting is the literal "none". */
bool bk_auth_is_none(const char *setting);

/* ---- jwt.c: token verification ---------------------------------------------- */

/* Verifies token[0..len) against a's keys and claim rules at time now_s
 * (seconds since the epoch): the key is the one named by "kid" (or, without
 * a kid, every key configured for the token's alg in turn); the token's alg
 * must be the key's configured alg; then exp, nbf, iat (with leeway), aud
 * and iss.  Fills *out (large: not on a small stack).  Returns 0, or a
 * negative errno with *why a static reason for the client (never the
 * token): -EMSGSIZE, -EBADMSG, -ENOTSUP (from rc_jwt_parse), -ENOKEY (no
 * key for its kid or alg), -EKEYREJECTED (bad signature), -EKEYEXPIRED
 * (exp passed), -EAGAIN (nbf or iat in the future), -EACCES (aud or iss
 * mismatch, or no exp while require_exp). */
int bk_jwt_verify(const struct bk_auth *a, const char *token, size_t len, int64_t now_s,
		  struct rc_jwt *out, const char **why);
/* Loads a PEM public key for alg (RS256: RSA of at least 2048 bits; ES256:
 * EC on P-256).  NULL with *why set. */
struct evp_pkey_st *bk_jwt_load_public(const char *path, enum rc_jwt_alg alg,
				       const char **why);

/* ---- auth.c: the current policy and the hooks --------------------------------- */

/* At start, after the configuration: loads the access file named by
 * cfg->auth and enforces the secure default (a listener beyond loopback
 * needs an access file or an explicit `auth = none`).  Returns 0 or -EINVAL
 * (printed). */
int bk_auth_init(const struct bk_config *cfg);
/* After the workers exist: sets up the per-loop connection lists and, when
 * a policy is loaded, starts the one-second auth clock (expiry,
 * auth_timeout, revocations after a reload; a reload that loads the first
 * policy starts it then).  Returns 0 or -errno. */
int bk_auth_start(unsigned nthreads);
/* Before the loops stop for good (SIGTERM): stops and joins the clock, so
 * nothing is posted to a loop that is being freed. */
void bk_auth_stop(void);
/* SIGHUP: re-reads the access file of cfg; on success swaps it in and makes
 * every loop re-check its connections' subscriptions.  On error the
 * running policy stays. */
void bk_auth_reload(const struct bk_config *cfg);

/* Upgrade hook (session.c, after the mode and topic are known): origin,
 * token or API key, and for /sub and /pub the topic's permission.  Returns
 * 0 or the HTTP status to refuse with (401, 403, 503). */
int bk_auth_upgrade(struct rc_conn *c, const struct rc_http_request *req,
		    struct bk_client *cl);
/* Is cl allowed right on topic (JSON sub/pub)? */
bool bk_auth_may(struct bk_client *cl, enum bk_right right, const char *topic, size_t len);
/* JSON mode, before the command switch: handles auth and refresh (true:
 * consumed), and marks that the first command was something else. */
bool bk_auth_command(struct bk_client *cl, const struct rc_cmd *cmd);
/* Raw /pub, JSON pub: the publish rate limit.  False: over it. */
bool bk_auth_publish_rate(struct bk_client *cl);
/* on_close: drops cl's identity. */
void bk_auth_close(struct bk_client *cl);
/* HTTP hook (http_api.c, before routing): answers and returns true when the
 * request is refused (API key for /publish, admin key or loopback for
 * /stats, /metrics, /topics, per key/IP publish rate). */
bool bk_auth_http(struct rc_conn *c, const struct rc_http_request *req);

/* Topic pattern match: "*" at the end matches any rest, else exact. */
bool bk_auth_pattern_match(const char *pat, size_t plen, const char *topic, size_t tlen);

#endif
