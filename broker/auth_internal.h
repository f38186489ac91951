/* Private to broker/auth*.c: a connection's identity and the helpers the
 * hooks (auth.c), the clock (auth_clock.c) and the HTTP side (auth_http.c)
 * share. */
#ifndef RC_BROKER_AUTH_INTERNAL_H
#define RC_BROKER_AUTH_INTERNAL_H

#include <stdatomic.h>

#include "broker/auth.h"
#include "broker/broker.h"

enum bk_id {
	BK_ID_ANONYMOUS,
	BK_ID_PENDING,   /* JSON mode: may still send {"op":"auth"} */
	BK_ID_TOKEN,
	BK_ID_API_KEY,
};

/* What a verified token granted: sub, then per right n[r] patterns, each
 * one length byte and its bytes. */
struct bk_grants {
	uint16_t sub_len;
	uint16_t n[BK_NRIGHTS];
	uint8_t data[];
};

/* One per connection (from the loop's pool); on its worker's list while
 * open, so the clock can expire it and re-check it after a reload. */
struct bk_cauth {
	struct rc_list link;
	struct bk_client *cl;
	uint8_t state;           /* enum bk_id */
	uint8_t api_key;         /* BK_ID_API_KEY: its index */
	bool has_exp;
	int64_t exp;             /* seconds since the epoch */
	uint64_t deadline_ms;    /* unauthenticated JSON: auth_timeout; 0 after */
	unsigned gen;            /* the policy generation last checked */
	struct bk_grants *grants;
	double rate_tokens;      /* publish_rate bucket */
	uint64_t rate_ms;
};

extern _Atomic(struct bk_auth *) bk__auth_cur;

/* The current policy, NULL when access control is off. */
static inline const struct bk_auth *bk__auth(void)
{
	return atomic_load_explicit(&bk__auth_cur, memory_order_acquire);
}

int64_t bk__auth_now_s(void);
bool bk__auth_allows(const struct bk_auth *a, const struct bk_cauth *ca, enum bk_right right,
		     const char *topic, size_t len);
/* Constant-time equality of a configured secret and presented bytes. */
bool bk__auth_secret_eq(const uint8_t *want, size_t wlen, const char *got, size_t glen);
int bk__auth_api_key(const struct bk_auth *a, struct rc_span key);
bool bk__auth_bearer(const struct rc_http_request *req, struct rc_span *out);
bool bk__rate_take(double *tokens, uint64_t *last_ms, double rate, unsigned burst);
/* Puts ca on the calling worker's list (auth_clock.c). */
void bk__auth_track(struct bk_cauth *ca);
/* Drops what policy a no longer allows cl: JSON subscriptions with an err
 * `forbidden`, raw connections with close 1008. */
void bk__auth_recheck(const struct bk_auth *a, struct bk_client *cl);

#endif
