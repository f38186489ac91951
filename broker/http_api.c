/* The plain-HTTP API on the broker's port: POST /publish/<topic>, GET
 * /stats, /metrics (Prometheus text), /healthz, /topics, /connz, /subsz,
 * and the embedded demo page and browser client. */
#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/engine.h"
#include "broker/sse.h"

/* Appends to t, growing it (see broker.h). */
void bk_tprintf(struct bk_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0 || t->oom)
			return;
		if (t->p && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
		char *np = realloc(t->p, cap);
		if (!np) {
			t->oom = true;
			return;
		}
		t->p = np;
		t->cap = cap;
	}
}

/* "PEER METHOD PATH" of h's request for a log line, escaped. */
static const char *request_line(const struct bk_http *h, char *out, size_t cap)
{
	char m[16], p[256];
	const struct rc_http_request *r = h->req;

	if (!r) { /* a deferred answer: the request is gone */
		snprintf(out, cap, "%s POST /publish/...", rc_conn_peer(h->c));
		return out;
	}
	snprintf(out, cap, "%s %s %s", rc_conn_peer(h->c)[0] ? rc_conn_peer(h->c) : "?",
		 rc_log_escape(m, sizeof(m), r->method.p, r->method.len),
		 rc_log_escape(p, sizeof(p), r->path.p, r->path.len));
	return out;
}

/* Answers with the request's CORS headers (if any) before extra; the
 * access log (access_log = on) gets one line per answer. */
static void respond(struct bk_http *h, int status, const char *type, const char *extra,
		    const void *body, size_t len)
{
	char hdr[sizeof(h->cors) + 128], line[400];

	if (bk_cfg()->access_log && rc_log_enabled(RC_LOG_INFO))
		rc_log(RC_LOG_INFO, "access %s %d %zu", request_line(h, line, sizeof(line)), status,
		       len);

	snprintf(hdr, sizeof(hdr), "%s%s", h->cors, extra ? extra : "");
	rc_conn_respond(h->c, status, type, hdr[0] ? hdr : NULL, body, len);
}

/* Answers with t and frees it (see broker.h). */
void bk_respond_text(struct bk_http *h, struct bk_text *t, const char *type)
{
	if (t->oom)
		respond(h, 500, "text/plain", NULL, "out of memory\n", 14);
	else
		respond(h, 200, type, NULL, t->p, t->len);
	free(t->p);
}

/* A JSON error answer, logged at info with its reason (rate-limited). */
static void error(struct bk_http *h, int status, const char *reason, const char *extra)
{
	char body[300], line[400];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", reason);

	if (rc_log_enabled(RC_LOG_INFO))
		rc_log(RC_LOG_INFO, "http %s: %d %s", request_line(h, line, sizeof(line)), status,
		       reason);

	respond(h, status, "application/json", extra, body, (size_t)n);
}

/* See broker.h. */
void bk_http_error(struct bk_http *h, int status, const char *reason)
{
	error(h, status, reason, NULL);
}

static void stats(struct bk_http *h)
{
	struct bk_text t = { 0 };
	bk_tprintf(&t, "{\"version\":\"%s\",\"epoch\":\"%s\",\"uptime_s\":%llu,\"threads\":%u,"
		"\"topics\":%zu", RINGCAST_VERSION, bk_engine_epoch(),
		(unsigned long long)((rc_now_ms() - bk.started_ms) / 1000), bk.nthreads,
		bk_topics_count());
	for (int s = 0; s < BK_NSTATS; s++)
		bk_tprintf(&t, ",\"%s\":%lld", bk_stat_names[s], (long long)bk_stat_sum(s));
	bk_tprintf(&t, ",\"history_bytes\":%llu", (unsigned long long)atomic_load(&bk.hist_bytes));
	bk_engine_stats_json(&t);
	bk_tprintf(&t, ",\"loops\":[");
	for (unsigned i = 0; i < bk.nthreads; i++) {
		double util;
		unsigned conns;
		bk_loop_util(i, &util, &conns);
		bk_tprintf(&t, "%s{\"thread\":%u,\"utilisation\":%.4f,\"sockets\":%u}",
			i ? "," : "", i, util, conns);
	}
	bk_tprintf(&t, "]}\n");
	bk_respond_text(h, &t, "application/json");
}

struct topics_arg {
	struct bk_text *t;
	unsigned n;
};

static void topic_json(struct bk_topic *tp, void *arg)
{
	struct topics_arg *a = arg;
	char name[RC_TOPIC_MAX * 6 + 3];
	ssize_t n = rc_json_write_string(name, sizeof(name), tp->name, tp->name_len);

	if (n < 0)
		return;
	bk_tprintf(a->t, "%s{\"topic\":%.*s,\"subscribers\":%u,\"seq\":%llu}", a->n++ ? "," : "",
		(int)n, name, atomic_load(&tp->nsubs), (unsigned long long)bk_topic_seq(tp));
}

static void topics(struct bk_http *h)
{
	struct bk_text t = { 0 };
	struct topics_arg a = { &t, 0 };

	bk_tprintf(&t, "{\"topics\":[");
	bk_topics_each(topic_json, &a, 10000); /* bounded answer */
	bk_tprintf(&t, "]}\n");
	bk_respond_text(h, &t, "application/json");
}

/* GET /subsz?topic=T: that topic (404 when not in the registry); else
 * ?offset=&limit=: a page of the topics in registry order, as /topics. */
static void subsz(struct bk_http *h)
{
	struct bk_text t = { 0 };
	struct topics_arg a = { &t, 0 };
	struct rc_span v;
	size_t offset, limit;

	if (rc_http_query_get(h->req->query, "topic", &v)) {
		char name[RC_TOPIC_MAX + 1];
		ssize_t n = bk_topic_from_path(v, name);
		struct bk_topic *tp = n < 0 ? NULL : bk_topic_get(name, (size_t)n, false, NULL);

		if (n < 0) {
			error(h, 400, "invalid topic", NULL);
			return;
		}
		if (!tp) {
			error(h, 404, "no such topic", NULL);
			return;
		}
		bk_tprintf(&t, "{\"topics\":[");
		topic_json(tp, &a);
		bk_topic_put(tp);
		bk_tprintf(&t, "]}\n");
		bk_respond_text(h, &t, "application/json");
		return;
	}
	if (!bk_page_args(h, &offset, &limit))
		return;
	bk_tprintf(&t, "{\"total\":%zu,\"offset\":%zu,\"limit\":%zu,\"topics\":[",
		   bk_topics_count(), offset, limit);
	bk_topics_page(topic_json, &a, offset, limit);
	bk_tprintf(&t, "]}\n");
	bk_respond_text(h, &t, "application/json");
}

static bool content_is_text(const struct rc_http_request *req)
{
	const struct rc_http_header *h =
		rc_http_header_find(req->headers, req->num_headers, "content-type");

	if (!h)
		return false;
	return (h->value.len >= 5 && strncasecmp(h->value.p, "text/", 5) == 0) ||
	       (h->value.len >= 16 && strncasecmp(h->value.p, "application/json", 16) == 0);
}

static void publish_failed(struct bk_http *h, int err)
{
	if (err == -EAGAIN)
		error(h, 429, "topic creation rate reached for this address (topic_create_rate)",
		      "Retry-After: 1\r\n");
	else if (err == -ESHUTDOWN)
		error(h, 503, "shutting down", NULL);
	else if (err == -EINVAL)
		error(h, 400, "a pattern ('*' or '>' token) cannot be published to", NULL);
	else if (err == -ENOENT)
		error(h, 404, "unknown namespace (no [namespace] section for it)", NULL);
	else if (err == -EMSGSIZE)
		error(h, 413, "over the max_message_size of this topic's namespace", NULL);
	else if (err == -ENOTCONN || err == -EBUSY)
		error(h, 503, err == -EBUSY ? "overloaded: too many publishes wait for the engine"
		      : "unavailable: the engine (Redis) cannot be reached", "Retry-After: 1\r\n");
	else
		error(h, 503, err == -ENOSPC ? "topic limit reached (max_topics)" : "out of memory",
		      NULL);
}

static void publish(struct bk_http *h, const struct rc_http_request *req,
		    struct rc_span seg, const uint8_t *body, size_t len)
{
	char topic[RC_TOPIC_MAX + 1], out[RC_TOPIC_MAX * 6 + 128], name[RC_TOPIC_MAX * 6 + 3];
	bool text = content_is_text(req);
	ssize_t tl = bk_topic_from_path(seg, topic);
	uint64_t seq;
	unsigned subs;

	if (tl < 0) {
		error(h, 400, "invalid topic: 1-255 bytes of UTF-8, no spaces or control characters",
		      NULL);
		return;
	}
	if (len > bk_cfg()->max_message_size) {
		error(h, 413, "body over max_message_size", NULL);
		return;
	}
	if (text && !rc_utf8_valid(body, len)) {
		error(h, 400, "text body is not valid UTF-8", NULL);
		return;
	}
	if (bk_engine_remote()) { /* answered when Redis has numbered it */
		struct rc_span cors = { h->cors, strlen(h->cors) };
		int err = bk_engine_publish(topic, (size_t)tl, text ? RC_OP_TEXT : RC_OP_BINARY,
					    body, len, BK_PUB_HTTP, h->c, &cors);
		if (err < 0)
			publish_failed(h, err);
		return;
	}
	uint8_t ip[16];
	int err = bk_publish(topic, (size_t)tl, text ? RC_OP_TEXT : RC_OP_BINARY, body, len,
			     rc_conn_peer_ip(h->c, ip) ? ip : NULL, &seq, &subs);
	if (err < 0) {
		publish_failed(h, err);
		return;
	}
	ssize_t nl = rc_json_write_string(name, sizeof(name), topic, (size_t)tl);
	int n = snprintf(out, sizeof(out), "{\"topic\":%.*s,\"seq\":%llu,\"subscribers\":%u}\n",
			 (int)nl, name, (unsigned long long)seq, subs);
	respond(h, 200, "application/json", NULL, out, (size_t)n);
}

/* See engine.h. */
void bk_http_publish_done(struct rc_conn *c, int err, const char *topic, size_t tlen,
			  uint64_t seq, const char *epoch, struct rc_span cors)
{
	struct bk_http h = { .c = c };
	char out[RC_TOPIC_MAX * 6 + 128], name[RC_TOPIC_MAX * 6 + 3];
	ssize_t nl;
	int n;

	snprintf(h.cors, sizeof(h.cors), "%.*s", (int)cors.len, cors.p);
	if (err < 0) {
		publish_failed(&h, err);
		return;
	}
	nl = rc_json_write_string(name, sizeof(name), topic, tlen);
	n = snprintf(out, sizeof(out), "{\"topic\":%.*s,\"seq\":%llu,\"epoch\":\"%s\"}\n",
		     (int)nl, name, (unsigned long long)seq, epoch);
	respond(&h, 200, "application/json", NULL, out, (size_t)n);
}

static bool serve_file(struct bk_http *h, struct rc_span path)
{
	for (size_t i = 0; i < bk_nfiles; i++) {
		const struct bk_file *f = &bk_files[i];
		if (strlen(f->path) == path.len && memcmp(f->path, path.p, path.len) == 0) {
			respond(h, 200, f->type, "Cache-Control: no-cache\r\n", f->data, f->len);
			return true;
		}
	}
	return false;
}

static bool path_is(struct rc_span p, const char *lit)
{
	return p.len == strlen(lit) && memcmp(p.p, lit, p.len) == 0;
}

/* ---- CORS ---------------------------------------------------------------------
 * A page may call the API from another origin only when cors_origins lists
 * that origin (or is "*").  Browsers send a cross-origin text/plain POST
 * without asking first, so hiding the answer is not enough: a publish from
 * an origin that is not allowed is refused with 403 before it happens.
 * Requests without Origin (curl, services) and same-origin requests (the
 * demo page; Origin's host equals Host) are not cross-origin calls. */

enum cors { CORS_NONE, CORS_SAME, CORS_ALLOWED, CORS_DENIED };

static bool span_ieq(struct rc_span a, const char *b, size_t blen)
{
	return a.len == blen && strncasecmp(a.p, b, blen) == 0;
}

static bool origin_listed(const char *list, struct rc_span o)
{
	for (const char *p = list; p && *p;) {
		size_t len, n;
		p += strspn(p, " ");
		len = strcspn(p, ",");
		for (n = len; n && p[n - 1] == ' '; n--)
			;
		if ((n == 1 && *p == '*') || span_ieq(o, p, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

static enum cors cors_check(const struct rc_http_request *req, struct rc_span *origin)
{
	const struct rc_http_header *o =
		rc_http_header_find(req->headers, req->num_headers, "origin");
	const struct rc_http_header *host =
		rc_http_header_find(req->headers, req->num_headers, "host");
	const char *sep;

	if (!o)
		return CORS_NONE;
	*origin = o->value;
	sep = memmem(o->value.p, o->value.len, "://", 3);
	if (sep && host) {
		struct rc_span after = { sep + 3, o->value.len - (size_t)(sep + 3 - o->value.p) };
		if (span_ieq(after, host->value.p, host->value.len))
			return CORS_SAME;
	}
	if (o->value.len < 256 && origin_listed(bk_cfg()->cors_origins, o->value))
		return CORS_ALLOWED;
	return CORS_DENIED;
}

/* OPTIONS: a CORS preflight (Origin and Access-Control-Request-Method) is
 * answered for allowed origins and refused for others; a plain OPTIONS
 * gets the methods. */
static void options(struct bk_http *h, const struct rc_http_request *req, enum cors cors,
		    bool publish)
{
	const char *allow = publish ? "Allow: POST, OPTIONS\r\n" : "Allow: GET, HEAD, OPTIONS\r\n";

	if (!rc_http_header_find(req->headers, req->num_headers, "access-control-request-method") ||
	    cors == CORS_NONE) {
		respond(h, 204, NULL, allow, NULL, 0);
		return;
	}
	if (cors == CORS_DENIED) {
		error(h, 403, "origin not allowed (cors_origins)", NULL);
		return;
	}
	respond(h, 204, NULL, publish
		? "Access-Control-Allow-Methods: POST, OPTIONS\r\n"
		  "Access-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: 600\r\n"
		: "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
		  "Access-Control-Max-Age: 600\r\n", NULL, 0);
}

static bool method_is(const struct rc_http_request *req, const char *m)
{
	return req->method.len == strlen(m) && memcmp(req->method.p, m, req->method.len) == 0;
}

/* Routes a plain HTTP request (see rc_server_config.on_http). */
void bk_on_http(struct rc_conn *c, const struct rc_http_request *req,
		const uint8_t *body, size_t len)
{
	bool get = method_is(req, "GET") || method_is(req, "HEAD");
	struct rc_span p = req->path, origin = { 0 };
	enum cors cors = cors_check(req, &origin);
	struct bk_http h = { .c = c, .req = req };
	bool pub = p.len >= 9 && memcmp(p.p, "/publish/", 9) == 0; /* empty topic: 400 */

	bk_stat_add(BK_HTTP_REQUESTS, 1);
	if (cors == CORS_ALLOWED)
		snprintf(h.cors, sizeof(h.cors), "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n",
			 (int)origin.len, origin.p);
	else if (bk_cfg()->cors_origins)
		snprintf(h.cors, sizeof(h.cors), "Vary: Origin\r\n");
	if (method_is(req, "OPTIONS")) {
		options(&h, req, cors, pub);
		return;
	}
	if (bk_auth_http(c, req))
		return;
	if (pub) {
		if (!method_is(req, "POST"))
			error(&h, 405, "use POST", "Allow: POST, OPTIONS\r\n");
		else if (cors == CORS_DENIED)
			error(&h, 403, "origin not allowed (cors_origins)", NULL);
		else
			publish(&h, req, (struct rc_span){ p.p + 9, p.len - 9 }, body, len);
		return;
	}
	if (!get) {
		error(&h, 405, "method not allowed", "Allow: GET, HEAD, OPTIONS\r\n");
		return;
	}
	if (p.len >= 8 && memcmp(p.p, "/events/", 8) == 0)
		bk_sse_request(&h, (struct rc_span){ p.p + 8, p.len - 8 }, cors == CORS_DENIED);
	else if (path_is(p, "/stats"))
		stats(&h);
	else if (path_is(p, "/metrics"))
		bk_metrics(&h);
	else if (path_is(p, "/healthz") && !bk_engine_ready())
		respond(&h, 503, "text/plain", NULL, "engine not ready\n", 17);
	else if (path_is(p, "/healthz"))
		respond(&h, 200, "text/plain", NULL, "ok\n", 3);
	else if (path_is(p, "/topics"))
		topics(&h);
	else if (path_is(p, "/connz"))
		bk_connz(&h);
	else if (path_is(p, "/subsz"))
		subsz(&h);
	else if (p.len > 10 && !memcmp(p.p, "/presence/", 10))
		bk_presence_http(&h, (struct rc_span){ p.p + 10, p.len - 10 });
	else if (path_is(p, "/ws") || path_is(p, "/echo") ||
		 (p.len > 5 && (!memcmp(p.p, "/sub/", 5) || !memcmp(p.p, "/pub/", 5))))
		error(&h, 426, "this endpoint speaks WebSocket", "Upgrade: websocket\r\n");
	else if (!serve_file(&h, p))
		error(&h, 404, "not found", NULL);
}
