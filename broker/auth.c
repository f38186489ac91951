/* Access control at the door: the current policy, each connection's
 * identity (anonymous, a verified token's grants, or an API key), the
 * upgrade/HTTP/command hooks and the permission check per topic.  The
 * one-second clock that expires tokens and applies reloads is in
 * auth_clock.c. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/auth_internal.h"
#include "broker/match.h"
#include "broker/namespace.h"

_Atomic(struct bk_auth *) bk__auth_cur;

/* Not time(NULL): glibc answers it from the kernel's coarse clock, which
 * can lag the real time by a tick, so a token minted at a second's start
 * (iat = now) would be "issued in the future" with leeway 0. */
int64_t bk__auth_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* ---- patterns and rules ------------------------------------------------------ */

/* "*" at the end of a pattern matches any rest (including none); otherwise
 * the topic must equal the pattern.  A subscription pattern (match.h) is
 * covered only by a prefix that every subject it matches starts with. */
bool bk_auth_pattern_match(const char *pat, size_t plen, const char *topic, size_t tlen)
{
	if (bk_topic_is_pattern(topic, tlen))
		return plen && pat[plen - 1] == '*' && bk_pattern_within(topic, tlen, pat, plen - 1);
	if (plen && pat[plen - 1] == '*')
		return tlen >= plen - 1 && memcmp(pat, topic, plen - 1) == 0;
	return plen == tlen && memcmp(pat, topic, plen) == 0;
}

/* The rule for a topic: an exact rule wins, then the longest prefix. */
static const struct bk_rule *find_rule(const struct bk_auth *a, const char *t, size_t len)
{
	const struct bk_rule *best = NULL;

	for (unsigned i = 0; i < a->nrules; i++) {
		const struct bk_rule *r = &a->rules[i];

		if (!r->prefix) {
			if (r->len == len && memcmp(r->pattern, t, len) == 0)
				return r;
		} else if (r->len <= len && memcmp(r->pattern, t, r->len) == 0 &&
			   (!best || r->len > best->len)) {
			best = r;
		}
	}
	return best;
}

static bool granted(const struct bk_cauth *ca, enum bk_right right, const char *t, size_t len)
{
	const uint8_t *p;

	if (!ca->grants)
		return false;
	p = ca->grants->data + ca->grants->sub_len;
	for (unsigned r = 0; r < BK_NRIGHTS; r++) {
		for (unsigned i = 0; i < ca->grants->n[r]; i++) {
			size_t plen = *p++;

			if (r == right && bk_auth_pattern_match((const char *)p, plen, t, len))
				return true;
			p += plen;
		}
	}
	return false;
}

static bool who_allows(const struct bk_cauth *ca, uint8_t who, enum bk_right right,
		       const char *t, size_t len)
{
	switch (who) {
	case BK_WHO_ANONYMOUS:
		return true;
	case BK_WHO_AUTHENTICATED:
		return ca->state == BK_ID_TOKEN || ca->state == BK_ID_API_KEY;
	case BK_WHO_TOKEN:
		return ca->state == BK_ID_TOKEN && granted(ca, right, t, len);
	default:
		return false;
	}
}

/* A pattern subscription: every rule that could decide one of the subjects
 * it matches must allow it, and so must the fallback unless a prefix rule
 * covers them all (then each subject has that rule or a longer one). */
static bool pattern_allows(const struct bk_auth *a, const struct bk_cauth *ca,
			   enum bk_right right, const char *t, size_t len)
{
	bool covered = false;

	for (unsigned i = 0; i < a->nrules; i++) {
		const struct bk_rule *r = &a->rules[i];

		if (!r->prefix) {
			if (!bk_pattern_match(t, len, r->pattern, r->len))
				continue;
		} else if (bk_pattern_within(t, len, r->pattern, r->len)) {
			covered = true;
		} else if (!bk_pattern_may_start(t, len, r->pattern, r->len)) {
			continue;
		}
		if (!who_allows(ca, r->who[right], right, t, len))
			return false;
	}
	return covered || who_allows(ca, a->fallback[right], right, t, len);
}

/* A namespace's own subscribe/publish value (RC_NS_WHO_RULES: none) as a
 * BK_WHO_ value. */
static int ns_who(const struct bk_ns *ns, enum bk_right right)
{
	uint8_t w = right == BK_SUBSCRIBE ? ns->who_subscribe : ns->who_publish;

	return w == RC_NS_WHO_RULES ? -1 : BK_WHO_ANONYMOUS + (w - RC_NS_WHO_ANONYMOUS);
}

/* A pattern whose namespace part holds a wildcard ("*.x", ">") reaches
 * every namespace: each one with its own value must allow it too. */
static bool every_ns_allows(const struct bk_cauth *ca, enum bk_right right, const char *t,
			    size_t len)
{
	const struct bk_ns_table *tb = bk_cfg()->namespaces;
	char pre[RC_NS_NAME_MAX + 1];

	for (unsigned i = 0; tb && i < tb->n; i++) {
		const struct bk_ns *ns = &tb->ns[i];
		int who = ns_who(ns, right);
		memcpy(pre, ns->name, ns->len);
		pre[ns->len] = tb->sep;
		if (who >= 0 && bk_pattern_may_start(t, len, pre, ns->len + 1) &&
		    !who_allows(ca, (uint8_t)who, right, t, len))
			return false;
	}
	return true;
}

/* The permission check of policy a for identity ca.  A namespace that
 * says who may subscribe or publish decides for its topics instead of the
 * rules; client_publish = off leaves publishing to API keys (and HTTP). */
bool bk__auth_allows(const struct bk_auth *a, const struct bk_cauth *ca, enum bk_right right,
		     const char *t, size_t len)
{
	const struct bk_ns *ns = bk_ns_of(bk_cfg(), t, len, NULL);
	bool pattern = bk_topic_is_pattern(t, len);
	const struct bk_rule *r;
	int who;

	if (right == BK_PUBLISH && !ns->client_publish && ca->state != BK_ID_API_KEY)
		return false;
	if (!a)
		return true;
	/* A backend's API key publishes anywhere (HTTP and /pub alike). */
	if (ca->state == BK_ID_API_KEY && right == BK_PUBLISH)
		return true;
	if (pattern && !every_ns_allows(ca, right, t, len))
		return false;
	if ((who = ns_who(ns, right)) >= 0)
		return who_allows(ca, (uint8_t)who, right, t, len);
	if (pattern)
		return pattern_allows(a, ca, right, t, len);
	r = find_rule(a, t, len);
	return who_allows(ca, r ? r->who[right] : a->fallback[right], right, t, len);
}

bool bk_auth_may(struct bk_client *cl, enum bk_right right, const char *topic, size_t len)
{
	return !cl->auth || bk__auth_allows(bk__auth(), cl->auth, right, topic, len);
}

/* ---- identities ------------------------------------------------------------------- */

/* Packs a verified token's sub and grants (length-prefixed patterns). */
static struct bk_grants *pack_grants(const struct rc_jwt *j)
{
	size_t size = sizeof(struct bk_grants) + j->sub.len;
	struct bk_grants *g;
	uint8_t *p;

	for (int r = 0; r < RC_JWT_NGRANTS; r++)
		for (unsigned i = 0; i < j->ngrants[r]; i++)
			size += 1 + j->grants[r][i].len;
	if (!(g = malloc(size)))
		return NULL;
	g->sub_len = (uint16_t)j->sub.len;
	memcpy(g->data, j->sub.p ? j->sub.p : "", j->sub.len);
	p = g->data + j->sub.len;
	for (int r = 0; r < RC_JWT_NGRANTS; r++) {
		g->n[r] = (uint16_t)j->ngrants[r];
		for (unsigned i = 0; i < j->ngrants[r]; i++) {
			*p++ = (uint8_t)j->grants[r][i].len; /* at most 255 */
			memcpy(p, j->grants[r][i].p, j->grants[r][i].len);
			p += j->grants[r][i].len;
		}
	}
	return g;
}

/* Verifies a token and makes it ca's identity.  0 or -errno, *why set. */
static int adopt_token(const struct bk_auth *a, struct bk_cauth *ca, const char *tok,
		       size_t len, bool refresh, const char **why)
{
	struct rc_jwt *j = malloc(sizeof(*j)); /* 11 KiB: not on a loop stack */
	struct bk_grants *g;
	int err;

	if (!j) {
		*why = "out of memory";
		return -ENOMEM;
	}
	err = bk_jwt_verify(a, tok, len, bk__auth_now_s(), j, why);
	if (!err && refresh && (j->sub.len != ca->grants->sub_len ||
				memcmp(j->sub.p, ca->grants->data, j->sub.len) != 0)) {
		*why = "a refreshed token must have the same sub";
		err = -EACCES;
	}
	if (!err && !(g = pack_grants(j))) {
		*why = "out of memory";
		err = -ENOMEM;
	}
	if (!err) {
		free(ca->grants);
		ca->grants = g;
		ca->state = BK_ID_TOKEN;
		ca->deadline_ms = 0;
		ca->has_exp = j->has_exp;
		ca->exp = j->exp;
	}
	free(j);
	return err;
}

/* Hashes before comparing, so the time taken says nothing about the
 * length or the bytes of a configured key. */
bool bk__auth_secret_eq(const uint8_t *want, size_t wlen, const char *got, size_t glen)
{
	uint8_t a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];

	SHA256(want, wlen, a);
	SHA256((const uint8_t *)got, glen, b);
	return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

/* The index of the API key equal to key, or -1 (every key is compared). */
int bk__auth_api_key(const struct bk_auth *a, struct rc_span key)
{
	int found = -1;

	for (unsigned i = 0; i < a->napi_keys; i++)
		if (bk__auth_secret_eq(a->api_keys[i].key, a->api_keys[i].len, key.p, key.len))
			found = (int)i;
	return found;
}

/* The credentials of "Authorization: Bearer X"; false if absent. */
bool bk__auth_bearer(const struct rc_http_request *req, struct rc_span *out)
{
	const struct rc_http_header *h =
		rc_http_header_find(req->headers, req->num_headers, "authorization");

	if (!h || h->value.len <= 7 || strncasecmp(h->value.p, "Bearer ", 7) != 0)
		return false;
	out->p = h->value.p + 7;
	out->len = h->value.len - 7;
	while (out->len && *out->p == ' ')
		out->p++, out->len--;
	return out->len > 0;
}

/* ---- origins ----------------------------------------------------------------------- */

/* An allowed_origins entry: "https://app.example.com" (exact), or
 * "*.example.com", also with a scheme in front (any subdomain, with that
 * scheme if one is given).  Hosts compare without case. */
static bool origin_match(const char *pat, struct rc_span o)
{
	const char *ps = strstr(pat, "://");
	const char *os = memmem(o.p, o.len, "://", 3);
	const char *host = os ? os + 3 : o.p;
	size_t hlen = o.len - (size_t)(host - o.p), plen;

	if (ps) {
		if (!os || (size_t)(ps - pat) != (size_t)(os - o.p) ||
		    strncasecmp(pat, o.p, (size_t)(ps - pat)) != 0)
			return false;
		pat = ps + 3;
	}
	plen = strlen(pat);
	if (pat[0] == '*' && pat[1] == '.')
		return hlen > plen - 1 && strncasecmp(host + hlen - (plen - 1), pat + 1,
						      plen - 1) == 0;
	return hlen == plen && strncasecmp(host, pat, plen) == 0;
}

static bool origin_ok(const struct bk_auth *a, const struct rc_http_request *req)
{
	const struct rc_http_header *h =
		rc_http_header_find(req->headers, req->num_headers, "origin");

	/* No list: any origin.  No Origin header: not a browser. */
	if (!a->norigins || !h)
		return true;
	for (unsigned i = 0; i < a->norigins; i++)
		if (origin_match(a->origins[i], h->value))
			return true;
	return false;
}

/* ---- hooks ----------------------------------------------------------------------------- */

/* Decides the identity at the upgrade (see auth.h). */
int bk_auth_upgrade(struct rc_conn *c, const struct rc_http_request *req,
		    struct bk_client *cl)
{
	const struct bk_auth *a = bk__auth();
	struct bk_cauth *ca;
	struct rc_span tok = { 0 };
	const char *why = NULL;
	bool bearer;
	int key = -1;

	if (a && !origin_ok(a, req))
		return 403;
	if (!(ca = rc_mem_alloc(sizeof(*ca))))
		return 503;
	memset(ca, 0, sizeof(*ca));
	ca->cl = cl;
	ca->rate_tokens = a ? a->publish_burst : 0;
	ca->rate_ms = rc_now_ms();
	bearer = bk__auth_bearer(req, &tok);
	if (!bearer)
		rc_http_query_get(req->query, "token", &tok);
	if (a && bearer && (key = bk__auth_api_key(a, tok)) >= 0) {
		ca->state = BK_ID_API_KEY;
		ca->api_key = (uint8_t)key;
	} else if (a && tok.len && adopt_token(a, ca, tok.p, tok.len, false, &why) < 0) {
		rc_log(RC_LOG_DEBUG, "auth: upgrade from %s refused: %s", rc_conn_peer(c), why);
		rc_mem_free(ca);
		return 401;
	} else if (!tok.len && cl->mode == BK_MODE_JSON && a) {
		ca->state = BK_ID_PENDING;
		ca->deadline_ms = rc_now_ms() + a->auth_timeout_ms;
	}
	if ((cl->mode == BK_MODE_SUB &&
	     !bk__auth_allows(a, ca, BK_SUBSCRIBE, cl->topic, cl->topic_len)) ||
	    (cl->mode == BK_MODE_PUB &&
	     !bk__auth_allows(a, ca, BK_PUBLISH, cl->topic, cl->topic_len))) {
		free(ca->grants);
		rc_mem_free(ca);
		return 403;
	}
	cl->auth = ca;
	bk__auth_track(ca);
	return 0;
}

static void send_err(struct bk_client *cl, const struct rc_cmd *cmd, const char *code,
		     const char *reason)
{
	char buf[600];
	ssize_t n = rc_json_write_err(buf, sizeof(buf), cmd && cmd->has_id ? cmd->id
								       : (struct rc_span){ 0 },
				      code, reason);

	bk_stat_add(BK_JSON_ERRORS, 1);
	if (n > 0)
		bk_send_json(cl, buf, (size_t)n);
}

static void send_ack(struct bk_client *cl, const struct rc_cmd *cmd)
{
	char buf[256];
	ssize_t n;

	if (!cmd->has_id)
		return;
	n = rc_json_write_ack(buf, sizeof(buf), cmd->id, false, 0, bk.epoch);
	if (n > 0)
		bk_send_json(cl, buf, (size_t)n);
}

/* auth and refresh commands (see auth.h). */
bool bk_auth_command(struct bk_client *cl, const struct rc_cmd *cmd)
{
	const struct bk_auth *a = bk__auth();
	struct bk_cauth *ca = cl->auth;
	const char *why = NULL;
	bool refresh = cmd->op == RC_CMD_REFRESH;

	if (!ca)
		return false;
	if (cmd->op != RC_CMD_AUTH && !refresh) {
		if (ca->state == BK_ID_PENDING)
			ca->state = BK_ID_ANONYMOUS;
		return false;
	}
	if (!a) { /* access control is off: every token is as good as none */
		send_ack(cl, cmd);
		return true;
	}
	if (!refresh && ca->state != BK_ID_PENDING) {
		send_err(cl, cmd, "bad_op", ca->state == BK_ID_TOKEN
			 ? "already authenticated: use refresh for a newer token"
			 : "auth must be the first command");
		return true;
	}
	if (refresh && ca->state != BK_ID_TOKEN) {
		send_err(cl, cmd, "bad_op", "refresh needs a connection authenticated by a token");
		return true;
	}
	if (adopt_token(a, ca, cmd->token.p, cmd->token.len, refresh, &why) < 0) {
		send_err(cl, cmd, "unauthorized", why);
		return true;
	}
	send_ack(cl, cmd);
	if (refresh) /* the new token may grant less */
		bk__auth_recheck(a, cl);
	return true;
}

/* Token bucket per connection (see auth.h); publish_rate 0: unlimited. */
bool bk_auth_publish_rate(struct bk_client *cl)
{
	const struct bk_auth *a = bk__auth();
	struct bk_cauth *ca = cl->auth;

	if (!a || !ca || a->publish_rate <= 0)
		return true;
	return bk__rate_take(&ca->rate_tokens, &ca->rate_ms, a->publish_rate, a->publish_burst);
}

/* One token from a bucket of burst, refilled at rate per second. */
bool bk__rate_take(double *tokens, uint64_t *last_ms, double rate, unsigned burst)
{
	uint64_t now = rc_now_ms();

	*tokens += (double)(now - *last_ms) * rate / 1000.0;
	if (*tokens > burst)
		*tokens = burst;
	*last_ms = now;
	if (*tokens < 1.0)
		return false;
	*tokens -= 1.0;
	return true;
}

void bk_auth_close(struct bk_client *cl)
{
	struct bk_cauth *ca = cl->auth;

	if (!ca)
		return;
	rc_list_del(&ca->link);
	free(ca->grants);
	rc_mem_free(ca);
	cl->auth = NULL;
}
