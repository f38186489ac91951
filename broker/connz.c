/* GET /connz: a page of the open WebSocket connections for operators (in
 * the spirit of NATS's /connz).  Connections live on several loop threads;
 * each thread keeps its open connections in a list under its own lock
 * (session.c adds at open, removes at close), so the HTTP thread copies a
 * bounded page of fixed-size rows under one thread's lock at a time (no
 * lock while formatting, no allocation past limit rows) and the owning
 * threads never wait for more than that copy.  The counters read from
 * another thread are the ones the owner writes with relaxed atomics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

struct row {
	char peer[64];
	const char *endpoint;
	char topic[RC_TOPIC_MAX + 1]; /* raw modes' topic */
	unsigned thread, topics;
	uint64_t queued, msgs_out, bytes_out, opened_ms;
};

/* See broker.h. */
bool bk_page_args(struct bk_http *h, size_t *offset, size_t *limit)
{
	struct rc_span v;
	uint64_t n;

	*offset = 0;
	*limit = PAGE_DEFAULT;
	if (rc_http_query_get(h->req->query, "offset", &v)) {
		if (!bk_parse_u64(v, &n)) {
			bk_http_error(h, 400, "offset is not a number");
			return false;
		}
		*offset = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
	}
	if (rc_http_query_get(h->req->query, "limit", &v)) {
		if (!bk_parse_u64(v, &n) || n == 0) {
			bk_http_error(h, 400, "limit is not a number from 1");
			return false;
		}
		*limit = n > PAGE_MAX ? PAGE_MAX : (size_t)n;
	}
	return true;
}

/* Copies up to max rows of worker w's connections after the first skip. */
static size_t copy_rows(struct bk_worker *w, size_t skip, struct row *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&w->conns_lock);
	for (struct rc_list *e = w->conns.next; e != &w->conns && n < max; e = e->next) {
		const struct bk_client *cl = rc_container_of(e, struct bk_client, conn_link);
		struct row *r = &out[n];

		if (skip) {
			skip--;
			continue;
		}
		/* The peer's address and the topic are fixed before the open. */
		snprintf(r->peer, sizeof(r->peer), "%s", rc_conn_peer(cl->conn));
		r->endpoint = bk_endpoint(cl);
		memcpy(r->topic, cl->topic, cl->topic_len);
		r->topic[cl->topic_len] = 0;
		r->thread = w->idx;
		r->topics = atomic_load_explicit(&cl->nsubs, memory_order_relaxed);
		r->queued = atomic_load_explicit(&cl->queued, memory_order_relaxed);
		r->msgs_out = atomic_load_explicit(&cl->msgs_out, memory_order_relaxed);
		r->bytes_out = atomic_load_explicit(&cl->bytes_out, memory_order_relaxed);
		r->opened_ms = cl->opened_ms;
		n++;
	}
	pthread_mutex_unlock(&w->conns_lock);
	return n;
}

static unsigned thread_conns(struct bk_worker *w)
{
	unsigned n;

	pthread_mutex_lock(&w->conns_lock);
	n = w->nconns;
	pthread_mutex_unlock(&w->conns_lock);
	return n;
}

/* See broker.h.  The page runs over the threads' lists one after another;
 * connections that open or close between two requests shift the pages. */
void bk_connz(struct bk_http *h)
{
	struct bk_text t = { 0 };
	size_t offset, limit, n = 0, total = 0, skip;
	struct row *rows;
	uint64_t now_ms;

	if (!bk_page_args(h, &offset, &limit))
		return;
	if (!(rows = malloc(limit * sizeof(*rows)))) {
		bk_http_error(h, 503, "out of memory");
		return;
	}
	now_ms = rc_now_ms();
	skip = offset;
	for (unsigned i = 0; i < bk.nthreads; i++) {
		struct bk_worker *w = &bk.workers[i];
		size_t c = thread_conns(w);

		total += c;
		if (n == limit)
			continue;
		if (skip >= c) { /* the whole thread is before the page */
			skip -= c;
			continue;
		}
		n += copy_rows(w, skip, rows + n, limit - n);
		skip = 0;
	}
	bk_tprintf(&t, "{\"total\":%zu,\"offset\":%zu,\"limit\":%zu,\"connections\":[", total,
		   offset, limit);
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		char topic[RC_TOPIC_MAX * 6 + 3];
		ssize_t tl = rc_json_write_string(topic, sizeof(topic), r->topic, strlen(r->topic));

		bk_tprintf(&t, "%s{\"peer\":\"%s\",\"endpoint\":\"%s\",", i ? "," : "", r->peer,
			   r->endpoint);
		if (r->topic[0] && tl > 0)
			bk_tprintf(&t, "\"topic\":%.*s,", (int)tl, topic);
		bk_tprintf(&t, "\"thread\":%u,\"topics\":%u,\"queued_bytes\":%llu,"
			   "\"messages_out\":%llu,\"bytes_out\":%llu,\"age_s\":%.3f}", r->thread,
			   r->topics, (unsigned long long)r->queued,
			   (unsigned long long)r->msgs_out, (unsigned long long)r->bytes_out,
			   now_ms > r->opened_ms ? (double)(now_ms - r->opened_ms) / 1e3 : 0.0);
	}
	bk_tprintf(&t, "]}\n");
	free(rows);
	bk_respond_text(h, &t, "application/json");
}
