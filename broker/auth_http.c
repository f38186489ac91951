/* Access control on the plain-HTTP side: POST /publish needs an API key
 * (Authorization: Bearer KEY) and stays within publish_rate per key and per
 * client address; /stats, /metrics, /topics, /connz and /subsz need the
 * admin key, or, without one, a loopback peer.  With access control off nothing changes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "broker/auth_internal.h"

#define RATE_SLOTS 1024

/* Publish buckets per API key (slots 0..15) and per client address (hashed
 * into the rest: two addresses may share a bucket, which only makes the
 * limit stricter for them, and memory stays fixed whatever the traffic). */
struct bucket {
	double tokens;
	uint64_t ms;
	bool used;
};

static struct bucket buckets[BK_AUTH_MAX_API_KEYS + RATE_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static bool rate_ok(const struct bk_auth *a, unsigned slot)
{
	struct bucket *b = &buckets[slot];
	bool ok;

	if (a->publish_rate <= 0)
		return true;
	pthread_mutex_lock(&lock);
	if (!b->used) {
		b->used = true;
		b->tokens = a->publish_burst;
		b->ms = rc_now_ms();
	}
	ok = bk__rate_take(&b->tokens, &b->ms, a->publish_rate, a->publish_burst);
	pthread_mutex_unlock(&lock);
	return ok;
}

static unsigned ip_slot(struct rc_conn *c)
{
	uint8_t ip[16];
	uint32_t h = 2166136261u;

	if (!rc_conn_peer_ip(c, ip))
		return BK_AUTH_MAX_API_KEYS;
	for (int i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 16777619u;
	return BK_AUTH_MAX_API_KEYS + h % RATE_SLOTS;
}

static void refuse(struct rc_conn *c, int status, const char *why)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", why);

	rc_conn_respond(c, status, "application/json",
			status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL, body, (size_t)n);
}

static bool path_is(struct rc_span p, const char *lit)
{
	return p.len == strlen(lit) && memcmp(p.p, lit, p.len) == 0;
}

static bool publish_refused(struct rc_conn *c, const struct rc_http_request *req,
			    const struct bk_auth *a)
{
	struct rc_span key;
	int k;

	if (!bk__auth_bearer(req, &key)) {
		refuse(c, 401, "publishing needs an API key: Authorization: Bearer KEY");
		return true;
	}
	if ((k = bk__auth_api_key(a, key)) < 0) {
		refuse(c, 403, "this API key is not valid");
		return true;
	}
	if (!rate_ok(a, (unsigned)k) || !rate_ok(a, ip_slot(c))) {
		refuse(c, 429, "publish_rate exceeded; slow down");
		return true;
	}
	return false;
}

static bool loopback_peer(struct rc_conn *c)
{
	static const uint8_t v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t v6[16] = { [15] = 1 };
	uint8_t ip[16];

	if (!rc_conn_peer_ip(c, ip))
		return false;
	return (!memcmp(ip, v4, 12) && ip[12] == 127) || !memcmp(ip, v6, 16);
}

static bool admin_refused(struct rc_conn *c, const struct rc_http_request *req,
			  const struct bk_auth *a)
{
	struct rc_span key;

	if (!a->admin_key) {
		if (loopback_peer(c))
			return false;
		refuse(c, 403, "admin endpoints answer loopback clients only (or set an admin key)");
		return true;
	}
	if (!bk__auth_bearer(req, &key)) {
		refuse(c, 401, "admin endpoints need the admin key: Authorization: Bearer KEY");
		return true;
	}
	if (!bk__auth_secret_eq(a->admin_key, a->admin_key_len, key.p, key.len)) {
		refuse(c, 403, "this admin key is not valid");
		return true;
	}
	return false;
}

/* The HTTP hook (see auth.h). */
bool bk_auth_http(struct rc_conn *c, const struct rc_http_request *req)
{
	const struct bk_auth *a = bk__auth();
	struct rc_span p = req->path;

	if (!a)
		return false;
	if (p.len > 9 && memcmp(p.p, "/publish/", 9) == 0)
		return publish_refused(c, req, a);
	if (path_is(p, "/stats") || path_is(p, "/metrics") || path_is(p, "/topics") ||
	    path_is(p, "/connz") || path_is(p, "/subsz") ||
	    (p.len > 10 && memcmp(p.p, "/presence/", 10) == 0))
		return admin_refused(c, req, a);
	return false;
}
