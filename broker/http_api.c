/* The plain-HTTP API on the broker's port: POST /publish/<topic>, GET
 * /stats, /metrics (Prometheus text), /healthz, /topics, and the embedded
 * demo page and browser client. */
#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth.h"
#include "broker/broker.h"

static const char *const stat_names[BK_NSTATS] = {
	[BK_CONNECTIONS] = "connections",
	[BK_SUBSCRIPTIONS] = "subscriptions",
	[BK_MSGS_IN] = "messages_in",
	[BK_MSGS_OUT] = "messages_out",
	[BK_BYTES_IN] = "bytes_in",
	[BK_BYTES_OUT] = "bytes_out",
	[BK_DROPS] = "drops",
	[BK_SLOW_CLOSES] = "slow_consumer_closes",
	[BK_DEFLATES] = "deflate_calls",
	[BK_JSON_ERRORS] = "json_errors",
	[BK_HTTP_REQUESTS] = "http_requests",
	[BK_REFUSED] = "connections_refused",
};

/* The sum of one counter over every worker. */
uint64_t bk_stat_sum(enum bk_stat s)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < bk.nthreads; i++)
		sum += atomic_load_explicit(&bk.workers[i].stats[s], memory_order_relaxed);
	return sum;
}

static bool is_gauge(enum bk_stat s)
{
	return s == BK_CONNECTIONS || s == BK_SUBSCRIPTIONS;
}

/* A growing text buffer for the few larger answers (/metrics, /topics). */
struct text {
	char *p;
	size_t len, cap;
	bool oom;
};

static void tprintf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(struct text *t, const char *fmt, ...)
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

static void respond_text(struct rc_conn *c, struct text *t, const char *type)
{
	if (t->oom)
		rc_conn_respond(c, 500, "text/plain", NULL, "out of memory\n", 14);
	else
		rc_conn_respond(c, 200, type, NULL, t->p, t->len);
	free(t->p);
}

static void error(struct rc_conn *c, int status, const char *reason, const char *extra)
{
	char body[300];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", reason);

	rc_conn_respond(c, status, "application/json", extra, body, (size_t)n);
}

static void loop_util(unsigned i, double *util, unsigned *conns)
{
	uint64_t busy, idle;

	rc_loop_stats(rc_server_loop(bk.srv, i), &busy, &idle, conns);
	*util = busy + idle ? (double)busy / (double)(busy + idle) : 0.0;
}

static void stats(struct rc_conn *c)
{
	struct text t = { 0 };
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	tprintf(&t, "{\"version\":\"%s\",\"epoch\":\"%s\",\"uptime_s\":%llu,\"threads\":%u,"
		"\"topics\":%zu", RINGCAST_VERSION, bk.epoch,
		(unsigned long long)(((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 -
				      bk.started_ms) / 1000), bk.nthreads,
		bk_topics_count());
	for (int s = 0; s < BK_NSTATS; s++)
		tprintf(&t, ",\"%s\":%lld", stat_names[s], (long long)bk_stat_sum(s));
	tprintf(&t, ",\"history_bytes\":%llu", (unsigned long long)atomic_load(&bk.hist_bytes));
	tprintf(&t, ",\"loops\":[");
	for (unsigned i = 0; i < bk.nthreads; i++) {
		double util;
		unsigned conns;
		loop_util(i, &util, &conns);
		tprintf(&t, "%s{\"thread\":%u,\"utilisation\":%.4f,\"sockets\":%u}",
			i ? "," : "", i, util, conns);
	}
	tprintf(&t, "]}\n");
	respond_text(c, &t, "application/json");
}

static void metrics(struct rc_conn *c)
{
	struct text t = { 0 };

	for (int s = 0; s < BK_NSTATS; s++) {
		bool g = is_gauge(s);
		tprintf(&t, "# TYPE ringcast_%s%s %s\nringcast_%s%s %lld\n", stat_names[s],
			g ? "" : "_total", g ? "gauge" : "counter", stat_names[s],
			g ? "" : "_total", (long long)bk_stat_sum(s));
	}
	tprintf(&t, "# TYPE ringcast_topics gauge\nringcast_topics %zu\n", bk_topics_count());
	tprintf(&t, "# TYPE ringcast_history_bytes gauge\nringcast_history_bytes %llu\n",
		(unsigned long long)atomic_load(&bk.hist_bytes));
	tprintf(&t, "# TYPE ringcast_loop_utilisation gauge\n");
	for (unsigned i = 0; i < bk.nthreads; i++) {
		double util;
		unsigned conns;
		loop_util(i, &util, &conns);
		tprintf(&t, "ringcast_loop_utilisation{thread=\"%u\"} %.4f\n", i, util);
	}
	respond_text(c, &t, "text/plain; version=0.0.4; charset=utf-8");
}

struct topics_arg {
	struct text *t;
	unsigned n;
};

static void topic_json(struct rc_topic *tp, void *arg)
{
	struct topics_arg *a = arg;
	char name[RC_TOPIC_MAX * 6 + 3];
	ssize_t n = rc_json_write_string(name, sizeof(name), tp->name, tp->name_len);

	if (n < 0 || a->n >= 10000) /* bounded answer */
		return;
	tprintf(a->t, "%s{\"topic\":%.*s,\"subscribers\":%u,\"seq\":%llu}", a->n++ ? "," : "",
		(int)n, name, atomic_load(&tp->nsubs), (unsigned long long)tp->seq);
}

static void topics(struct rc_conn *c)
{
	struct text t = { 0 };
	struct topics_arg a = { &t, 0 };

	tprintf(&t, "{\"topics\":[");
	bk_topics_each(topic_json, &a);
	tprintf(&t, "]}\n");
	respond_text(c, &t, "application/json");
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

static void publish(struct rc_conn *c, const struct rc_http_request *req,
		    struct rc_span seg, const uint8_t *body, size_t len)
{
	char topic[RC_TOPIC_MAX + 1], out[RC_TOPIC_MAX * 6 + 128], name[RC_TOPIC_MAX * 6 + 3];
	bool text = content_is_text(req);
	ssize_t tl = bk_topic_from_path(seg, topic);
	uint64_t seq;
	unsigned subs;

	if (tl < 0) {
		error(c, 400, "invalid topic: 1-255 bytes of UTF-8, no spaces or control characters",
		      NULL);
		return;
	}
	if (len > bk_cfg()->max_message_size) {
		error(c, 413, "body over max_message_size", NULL);
		return;
	}
	if (text && !rc_utf8_valid(body, len)) {
		error(c, 400, "text body is not valid UTF-8", NULL);
		return;
	}
	int err = bk_publish(topic, (size_t)tl, text ? RC_OP_TEXT : RC_OP_BINARY, body, len,
			     &seq, &subs);
	if (err < 0) {
		error(c, 503, err == -ENOSPC ? "topic limit reached (max_topics)" : "out of memory",
		      NULL);
		return;
	}
	ssize_t nl = rc_json_write_string(name, sizeof(name), topic, (size_t)tl);
	int n = snprintf(out, sizeof(out), "{\"topic\":%.*s,\"seq\":%llu,\"subscribers\":%u}\n",
			 (int)nl, name, (unsigned long long)seq, subs);
	rc_conn_respond(c, 200, "application/json", NULL, out, (size_t)n);
}

static bool serve_file(struct rc_conn *c, struct rc_span path)
{
	for (size_t i = 0; i < bk_nfiles; i++) {
		const struct bk_file *f = &bk_files[i];
		if (strlen(f->path) == path.len && memcmp(f->path, path.p, path.len) == 0) {
			rc_conn_respond(c, 200, f->type, "Cache-Control: no-cache\r\n", f->data,
					f->len);
			return true;
		}
	}
	return false;
}

static bool path_is(struct rc_span p, const char *lit)
{
	return p.len == strlen(lit) && memcmp(p.p, lit, p.len) == 0;
}

/* Routes a plain HTTP request (see rc_server_config.on_http). */
void bk_on_http(struct rc_conn *c, const struct rc_http_request *req,
		const uint8_t *body, size_t len)
{
	bool get = req->method.len == 3 && memcmp(req->method.p, "GET", 3) == 0;
	bool post = req->method.len == 4 && memcmp(req->method.p, "POST", 4) == 0;
	struct rc_span p = req->path;

	bk_stat_add(BK_HTTP_REQUESTS, 1);
	if (bk_auth_http(c, req))
		return;
	if (p.len > 9 && memcmp(p.p, "/publish/", 9) == 0) {
		if (!post) {
			error(c, 405, "use POST", "Allow: POST\r\n");
			return;
		}
		publish(c, req, (struct rc_span){ p.p + 9, p.len - 9 }, body, len);
		return;
	}
	if (!get) {
		error(c, 405, "method not allowed", "Allow: GET\r\n");
		return;
	}
	if (path_is(p, "/stats"))
		stats(c);
	else if (path_is(p, "/metrics"))
		metrics(c);
	else if (path_is(p, "/healthz"))
		rc_conn_respond(c, 200, "text/plain", NULL, "ok\n", 3);
	else if (path_is(p, "/topics"))
		topics(c);
	else if (path_is(p, "/ws") || path_is(p, "/echo") ||
		 (p.len > 5 && (!memcmp(p.p, "/sub/", 5) || !memcmp(p.p, "/pub/", 5))))
		error(c, 426, "this endpoint speaks WebSocket", "Upgrade: websocket\r\n");
	else if (!serve_file(c, p))
		error(c, 404, "not found", NULL);
}
