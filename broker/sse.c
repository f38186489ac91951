/* Server-Sent Events: GET /events/<topic>[,<topic>...] answers with a
 * text/event-stream (core/rc.h, "Byte streams") and subscribes the stream
 * like a WebSocket subscriber: the same registry, history and resume, the
 * same slow-consumer policy and budget, the same access control.
 *
 * Encode once: a message's event is one shared buffer for every stream of
 * one topic (msg.c builds it on first use, as it builds the WebSocket
 * frames).  The id of every event is "<epoch>/<seq>[,<seq>...]": the
 * stream's position in each of its topics, in the order of the URL, so a
 * browser's Last-Event-ID resumes all of them.  A stream of one topic gets
 * the shared event with its id inside; a stream of several topics gets the
 * shared event without id and then its own short "id:" line (the other
 * topics' positions are its own).  Gaps, resets and the welcome are per
 * stream (rare). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth.h"
#include "broker/sse.h"
#include "proto/sse.h"

/* One topic of a stream: its registry entry (referenced by the
 * subscription while the stream lives) and the last seq the stream has
 * accounted for (delivered, or covered by a gap or reset). */
struct sse_topic {
	struct bk_topic *t;
	uint64_t pos;
	uint64_t from;              /* resume: first seq wanted */
	bool has_from;              /* else live from now */
};

struct sse_client {
	struct bk_client cl;        /* first: cl.mode == BK_MODE_SSE */
	struct rc_list link;        /* its worker's streams, for keep-alives */
	uint64_t extra_out;         /* bytes queued besides deliveries */
	uint64_t ka_sent, ka_msgs;  /* at the last sweep: bytes gone out, messages */
	uint64_t stalled_ms;        /* queue not moving for this long */
	bool restarted;
	unsigned n;
	struct sse_topic topics[];
};

struct sse_worker {
	struct rc_list streams;
	atomic_bool posted;         /* a sweep is queued to that thread */
};

static struct sse_worker *sw;
static unsigned nsw;
static _Atomic unsigned nstreams;  /* all threads: no sweep while 0 */

static struct sse_client *sse_of(struct bk_client *cl)
{
	return (struct sse_client *)cl;
}

/* ---- Encoding ------------------------------------------------------------------
 * An event is "field: value" lines and a blank line; the JSON envelope goes
 * in data lines (proto/sse.h splits it at line breaks, which in JSON can
 * only be white space between tokens, so a reader parses the same value). */

static char *put(char *o, const void *p, size_t n)
{
	memcpy(o, p, n);
	return o + n;
}

static char *put_u64(char *o, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*o++ = tmp[--n];
	return o;
}

/* "id: <epoch>/<pos>,...\n": at most this many bytes for n topics. */
static size_t id_cap(unsigned n)
{
	return 5 + sizeof(bk.epoch) + (size_t)n * 21 + 1;
}

static char *put_id(char *o, const struct sse_client *st)
{
	o = put(o, "id: ", 4);
	o = put(o, bk.epoch, strlen(bk.epoch));
	*o++ = '/';
	for (unsigned i = 0; i < st->n; i++) {
		if (i)
			*o++ = ',';
		o = put_u64(o, st->topics[i].pos);
	}
	*o++ = '\n';
	return o;
}

#define EV_MSG "event: msg\n"

/* A message's event (see sse.h): "[id: <epoch>/<seq>\n]event: msg\ndata: …\n\n",
 * or without the blank line when the stream's own id line follows. */
struct rc_buf *bk_sse_build(const struct bk_msg *m, const uint8_t *json, size_t len,
			    enum bk_variant v)
{
	bool own_id = v == BK_SSE;
	size_t cap = id_cap(1) + sizeof(EV_MSG) + rc_sse_data_len(json, len) + 1;
	struct rc_buf *b = rc_buf_new(cap);
	char *o;

	if (!b)
		return NULL;
	bk_stat_add(BK_SSE_EVENTS, 1);
	o = (char *)rc_buf_data(b);
	if (own_id) {
		o = put(o, "id: ", 4);
		o = put(o, bk.epoch, strlen(bk.epoch));
		*o++ = '/';
		o = put_u64(o, m->seq);
		*o++ = '\n';
	}
	o = put(o, EV_MSG, sizeof(EV_MSG) - 1);
	o = rc_sse_write_data(o, json, len);
	if (own_id)
		*o++ = '\n';
	rc_buf_set_len(b, (size_t)(o - (char *)rc_buf_data(b)));
	return b;
}

/* ---- Sending -------------------------------------------------------------------- */

static int send_buf(struct sse_client *st, struct rc_buf *b)
{
	int ret = bk.io->send(&st->cl, b);

	if (ret == 0)
		st->extra_out += rc_buf_len(b);
	return ret;
}

/* Queues head, the stream's id line when with_id, and the blank line that
 * ends the event, as one buffer. */
static int send_event(struct sse_client *st, const char *head, size_t hlen, bool with_id)
{
	struct rc_buf *b = rc_buf_new(hlen + (with_id ? id_cap(st->n) : 0) + 1);
	char *o;
	int ret;

	if (!b)
		return -ENOMEM;
	o = (char *)rc_buf_data(b);
	if (with_id)
		o = put_id(o, st);
	o = put(o, head, hlen);
	*o++ = '\n';
	rc_buf_set_len(b, (size_t)(o - (char *)rc_buf_data(b)));
	ret = send_buf(st, b);
	rc_buf_unref(b);
	return ret;
}

static unsigned index_of(const struct sse_client *st, const struct bk_topic *t)
{
	for (unsigned i = 0; i < st->n; i++)
		if (st->topics[i].t == t)
			return i;
	return 0; /* not reached: every subscription is one of the URL's topics */
}

/* The variant for cl (see sse.h). */
enum bk_variant bk_sse_variant(const struct bk_client *cl)
{
	return ((const struct sse_client *)cl)->n == 1 ? BK_SSE : BK_SSE_BODY;
}

/* Queues ev, then for several topics the stream's own id (see sse.h).  The
 * broker's max_backpressure check has passed, and the core's bound is
 * higher by more than an id line, so the id never meets -ENOBUFS once the
 * event went in; out of memory there, the stream cannot be continued (an
 * event without its end would run into the next) and is cut. */
int bk_sse_send_msg(struct bk_sub *s, const struct bk_msg *m, struct rc_buf *ev)
{
	struct sse_client *st = sse_of(s->cl);
	unsigned i = index_of(st, s->topic);
	int ret = bk.io->send(&st->cl, ev);

	if (ret < 0)
		return ret;
	st->topics[i].pos = m->seq;
	if (st->n == 1)
		return 0;
	if (send_event(st, "", 0, true) < 0) {
		st->cl.closing = true;
		rc_conn_close_now(st->cl.conn, RC_CLOSE_INTERNAL, NULL, 0);
	}
	return 0;
}

/* A gap or reset event (see sse.h). */
void bk_sse_send_control(struct bk_client *cl, const char *event, const char *topic,
			 size_t tlen, uint64_t pos, const char *json, size_t len)
{
	struct sse_client *st = sse_of(cl);
	char head[RC_TOPIC_MAX * 6 + 200];
	int n;

	for (unsigned i = 0; i < st->n; i++) {
		const struct bk_topic *t = st->topics[i].t;
		if (t->name_len == tlen && memcmp(t->name, topic, tlen) == 0)
			st->topics[i].pos = pos;
	}
	n = snprintf(head, sizeof(head), "event: %s\ndata: %.*s\n", event, (int)len, json);
	if (n > 0 && (size_t)n < sizeof(head))
		send_event(st, head, (size_t)n, true);
}

/* The first event: retry, the stream's position and the topics' current
 * seq (as a JSON ack has it). */
static void send_welcome(struct sse_client *st, const uint64_t *cur)
{
	struct bk_text t = { 0 };
	char name[RC_TOPIC_MAX * 6 + 3];

	bk_tprintf(&t, "retry: %u\nevent: welcome\ndata: {\"op\":\"welcome\",\"version\":\"%s\","
		   "\"epoch\":\"%s\",\"topics\":[", bk_cfg()->sse_retry_ms, RINGCAST_VERSION,
		   bk.epoch);
	for (unsigned i = 0; i < st->n; i++) {
		const struct bk_topic *tp = st->topics[i].t;
		ssize_t nl = rc_json_write_string(name, sizeof(name), tp->name, tp->name_len);
		if (nl > 0)
			bk_tprintf(&t, "%s{\"topic\":%.*s,\"seq\":%llu}", i ? "," : "", (int)nl, name,
				   (unsigned long long)cur[i]);
	}
	bk_tprintf(&t, "]}\n");
	if (!t.oom)
		send_event(st, t.p, t.len, true);
	free(t.p);
}

/* ---- Life of a stream ------------------------------------------------------------ */

static void on_stream_close(struct rc_conn *c, const char *why, size_t len)
{
	struct bk_client *cl = rc_conn_user(c);
	char reason[128];

	if (!cl)
		return; /* a HEAD answer: no stream behind it */
	if (why && rc_log_enabled(RC_LOG_DEBUG))
		rc_log(RC_LOG_DEBUG, "close %s /events/: %s", rc_conn_peer(c),
		       rc_log_escape(reason, sizeof(reason), why, len));
	rc_list_del(&sse_of(cl)->link);
	rc_list_del(&cl->close_link); /* gone before its deferred close */
	bk_conns_del(cl);
	bk_unsubscribe_all(cl);
	bk_auth_close(cl);
	bk_stat_add(BK_SSE_STREAMS, -1);
	atomic_fetch_sub(&nstreams, 1);
	rc_conn_set_user(c, NULL);
	rc_mem_free(cl);
}

static const struct rc_stream_handlers sse_handlers = { .on_close = on_stream_close };

/* An id (ours: "<epoch>/<pos>,..."; an empty position starts that topic
 * live) into st's topics. */
static bool parse_id(struct sse_client *st, struct rc_span v)
{
	uint64_t *pos = malloc(st->n * (sizeof(*pos) + sizeof(bool)));
	bool *has = (bool *)(pos + st->n);
	int r = pos ? rc_sse_parse_id(v.p, v.len, bk.epoch, strlen(bk.epoch), st->n, pos, has)
		    : -EINVAL;

	st->restarted = r == 0;
	for (unsigned i = 0; r == 1 && i < st->n; i++) {
		if (!(st->topics[i].has_from = has[i]))
			continue;
		st->topics[i].pos = pos[i];
		st->topics[i].from = pos[i] == UINT64_MAX ? pos[i] : pos[i] + 1;
	}
	free(pos);
	return r >= 0;
}

/* Reads the resume point into st: Last-Event-ID (what a browser sends
 * after a cut: our own id, so the same epoch and one position per topic),
 * else the same in ?last_event_id= (a client that opens a new stream and
 * resumes; an empty position there starts that topic live), else ?from=SEQ
 * for every topic.  An id of another epoch means the broker restarted: the
 * stream starts afresh with a reset per topic.  False when malformed. */
static bool parse_resume(struct sse_client *st, const struct rc_http_request *req)
{
	const struct rc_http_header *h =
		rc_http_header_find(req->headers, req->num_headers, "last-event-id");
	struct rc_span v;
	uint64_t pos;

	if (h && h->value.len)
		return parse_id(st, h->value);
	if (rc_http_query_get(req->query, "last_event_id", &v) && v.len) {
		/* Percent-decoded (URLSearchParams encodes '/' and ','); no
		 * valid id of n topics is longer than id_cap(n). */
		size_t cap = id_cap(st->n);
		char *buf = malloc(cap);
		ssize_t n = buf ? rc_http_percent_decode(v, buf, cap) : -1;
		bool ok = n > 0 && parse_id(st, (struct rc_span){ buf, (size_t)n });

		free(buf);
		return ok;
	}
	if (!rc_http_query_get(req->query, "from", &v))
		return true;
	if (!bk_parse_u64(v, &pos))
		return false;
	for (unsigned i = 0; i < st->n; i++) {
		st->topics[i].from = pos;
		st->topics[i].pos = pos ? pos - 1 : 0;
		st->topics[i].has_from = true;
	}
	return true;
}

/* Drops what setup holds on failure (topic references, the identity). */
static void release(struct sse_client *st, unsigned ntopics)
{
	for (unsigned i = 0; i < ntopics; i++)
		bk_topic_put(st->topics[i].t);
	bk_auth_close(&st->cl);
	rc_mem_free(st);
}

/* Finds every topic of the list (creating it, as a subscribe does) after
 * checking its name and the permission to subscribe.  Answers the error
 * and returns false on the first that fails; st->topics[0..*got) are
 * referenced either way. */
static bool take_topics(struct bk_http *h, struct sse_client *st, struct rc_span list,
			unsigned *got)
{
	const char *p = list.p, *end = list.p + list.len;
	char name[RC_TOPIC_MAX + 1];

	for (*got = 0; *got < st->n; p++) {
		const char *e = memchr(p, ',', (size_t)(end - p));
		struct bk_topic *t;
		ssize_t n;

		if (!e)
			e = end;
		n = bk_topic_from_path((struct rc_span){ p, (size_t)(e - p) }, name);
		if (n < 0) {
			bk_http_error(h, 400, "invalid topic: 1-255 bytes of UTF-8, no spaces or "
				      "control characters, separated by commas");
			return false;
		}
		if (rc_topic_is_pattern(name, (size_t)n)) {
			/* An event id holds one seq per listed topic: a pattern's
			 * topics are not known in advance, so it cannot resume. */
			bk_http_error(h, 400, "patterns are not served as Server-Sent Events "
				      "(their ids could not resume them); use WebSocket");
			return false;
		}
		if (!bk_auth_may(&st->cl, BK_SUBSCRIBE, name, (size_t)n)) {
			bk_http_error(h, 403, "not allowed to subscribe to this topic");
			return false;
		}
		if (!(t = bk_topic_get(name, (size_t)n, true, st->cl.ip_known ? st->cl.ip : NULL))) {
			if (errno == EAGAIN)
				bk_http_error(h, 429, "topic creation rate reached for this address "
					      "(topic_create_rate)");
			else
				bk_http_error(h, 503, errno == ENOSPC ? "topic limit reached (max_topics)"
					      : "out of memory");
			return false;
		}
		st->topics[(*got)++].t = t;
		for (unsigned i = 0; i + 1 < *got; i++) {
			if (st->topics[i].t == t) {
				bk_http_error(h, 400, "a topic is listed twice");
				return false;
			}
		}
		p = e;
	}
	return true;
}

/* Subscribes the answered stream to its topics, then the welcome.  The
 * topics that start live go first: every replayed event's id then holds
 * their real position too. */
static void start(struct sse_client *st)
{
	struct bk_client *cl = &st->cl;
	uint64_t cur[st->n];
	int err = 0;

	for (unsigned k = 0; k < 2 * st->n && !err; k++) {
		unsigned i = k % st->n;
		const struct bk_topic *t = st->topics[i].t;
		if (st->topics[i].has_from != (k >= st->n))
			continue;
		err = bk_subscribe(cl, t->name, t->name_len, st->topics[i].has_from,
				   st->topics[i].from, NULL, &cur[i]);
		if (!err) /* where the replay (if any) left it */
			st->topics[i].pos = rc_container_of(cl->subs.prev, struct bk_sub, clink)
						    ->next_seq - 1;
	}
	for (unsigned i = 0; i < st->n; i++)
		bk_topic_put(st->topics[i].t); /* the subscriptions hold theirs */
	if (err) {
		/* Only out of memory: the topics exist and the count is checked. */
		cl->closing = true;
		rc_conn_close_now(cl->conn, RC_CLOSE_INTERNAL, NULL, 0);
		return;
	}
	for (unsigned i = 0; i < st->n && st->restarted; i++)
		bk_send_reset(cl, st->topics[i].t->name, st->topics[i].t->name_len, cur[i]);
	send_welcome(st, cur);
}

/* GET or HEAD /events/<list> (see sse.h). */
void bk_sse_request(struct bk_http *h, struct rc_span list, bool origin_denied)
{
	const struct bk_config *cfg = bk_cfg();
	struct rc_conn *c = h->c;
	char hdr[sizeof(h->cors) + 96];
	struct sse_client *st;
	unsigned n = 1, got;
	bool head = h->req->method.len == 4 && !memcmp(h->req->method.p, "HEAD", 4);
	int status;

	if (origin_denied) {
		bk_http_error(h, 403, "origin not allowed (cors_origins)");
		return;
	}
	for (size_t i = 0; i < list.len; i++)
		n += list.p[i] == ',';
	if (n > cfg->sse_max_topics || n > cfg->max_topics_per_connection) {
		bk_http_error(h, 400, "too many topics for one stream (sse_max_topics)");
		return;
	}
	if (!(st = rc_mem_alloc(sizeof(*st) + n * sizeof(st->topics[0])))) {
		bk_http_error(h, 503, "out of memory");
		return;
	}
	memset(st, 0, sizeof(*st) + n * sizeof(st->topics[0]));
	st->n = n;
	st->cl.conn = c;
	st->cl.mode = BK_MODE_SSE;
	rc_list_init(&st->cl.subs);
	rc_list_init(&st->cl.close_link);
	rc_list_init(&st->cl.conn_link);
	rc_list_init(&st->link);
	st->cl.ip_known = rc_conn_peer_ip(c, st->cl.ip);
	if (!parse_resume(st, h->req)) {
		rc_mem_free(st);
		bk_http_error(h, 400, "bad Last-Event-ID or from: not an id of this stream");
		return;
	}
	/* Origin, then a token (Authorization: Bearer, or ?token=) as for
	 * an upgrade; then each topic's subscribe permission. */
	if ((status = bk_auth_upgrade(c, h->req, &st->cl)) != 0) {
		rc_mem_free(st);
		bk_http_error(h, status, status == 401 ? "token not valid" : status == 403
			      ? "origin not allowed" : "out of memory");
		return;
	}
	if (!take_topics(h, st, list, &got)) {
		release(st, got);
		return;
	}
	snprintf(hdr, sizeof(hdr), "%sCache-Control: no-store\r\nX-Accel-Buffering: no\r\n",
		 h->cors);
	if (cfg->access_log && rc_log_enabled(RC_LOG_INFO)) {
		char topics[256]; /* the request is not ours once answered */
		rc_log(RC_LOG_INFO, "access %s %s /events/%s 200 stream", rc_conn_peer(c),
		       head ? "HEAD" : "GET", rc_log_escape(topics, sizeof(topics), list.p, list.len));
	}
	if (rc_conn_respond_stream(c, 200, "text/event-stream", hdr, &sse_handlers) < 0) {
		release(st, got);
		bk_http_error(h, 503, "out of memory");
		return;
	}
	if (head) {
		release(st, got);
		return;
	}
	rc_conn_set_user(c, &st->cl);
	if (st->n == 1) { /* /connz shows the topic of a stream of one */
		st->cl.topic_len = st->topics[0].t->name_len;
		memcpy(st->cl.topic, st->topics[0].t->name, st->cl.topic_len);
	}
	st->cl.opened_ms = rc_now_ms();
	bk_conns_add(&st->cl);
	rc_list_add_tail(&sw[bk_worker()->idx].streams, &st->link);
	atomic_fetch_add(&nstreams, 1);
	bk_stat_add(BK_SSE_STREAMS, 1);
	start(st);
}

/* ---- Keep-alives and stalls ------------------------------------------------------ */

/* Sets up the per-thread lists (see sse.h). */
int bk_sse_start(unsigned nthreads)
{
	if (!(sw = calloc(nthreads, sizeof(*sw))))
		return -ENOMEM;
	for (unsigned i = 0; i < nthreads; i++)
		rc_list_init(&sw[i].streams);
	nsw = nthreads;
	return 0;
}

/* One stream at a sweep: a silent stream gets the shared comment; one
 * whose queue has not moved for idle_timeout + pong_timeout (a WebSocket
 * would have been pinged and closed by then) is cut: it stopped reading,
 * and under the drop policy nothing else would ever end it. */
static void sweep_one(struct sse_client *st, struct rc_buf *ka, uint64_t elapsed_ms)
{
	const struct bk_config *cfg = bk_cfg();
	struct bk_client *cl = &st->cl;
	size_t queued = bk.io->queued(cl);
	uint64_t msgs = atomic_load_explicit(&cl->msgs_out, memory_order_relaxed);
	uint64_t sent = atomic_load_explicit(&cl->bytes_out, memory_order_relaxed) +
			st->extra_out - queued;

	if (cl->closing)
		return;
	if (queued && sent == st->ka_sent) {
		st->stalled_ms += elapsed_ms;
		if (st->stalled_ms >= (uint64_t)cfg->idle_timeout_ms + cfg->pong_timeout_ms) {
			rc_log(RC_LOG_WARN, "stalled event stream %s: %zu bytes queued and none "
			       "read for %.1f s; closing", bk.io->peer(cl), queued,
			       (double)st->stalled_ms / 1e3);
			cl->closing = true;
			bk_stat_add(BK_SLOW_CLOSES, 1);
			rc_conn_close_now(cl->conn, RC_CLOSE_TRY_AGAIN, NULL, 0);
			return;
		}
	} else {
		st->stalled_ms = 0;
	}
	if (!queued && msgs == st->ka_msgs && ka)
		send_buf(st, ka);
	st->ka_sent = sent; /* a comment queued now counts both ways */
	st->ka_msgs = msgs;
}

static void sweep(void *arg)
{
	struct sse_worker *w = arg;
	static _Thread_local uint64_t last_ms;
	uint64_t now = rc_now_ms(), elapsed = last_ms ? now - last_ms : 0;
	struct rc_buf *ka = NULL;
	struct rc_list *it, *next;

	atomic_store(&w->posted, false);
	last_ms = now;
	if (rc_list_empty(&w->streams))
		return;
	/* One comment for every silent stream of this thread. */
	if ((ka = rc_buf_new(2))) {
		memcpy(rc_buf_data(ka), ":\n", 2);
		rc_buf_set_len(ka, 2);
	}
	for (it = w->streams.next; it != &w->streams; it = next) {
		next = it->next; /* a cut stream's on_close may come later, never now */
		sweep_one(rc_container_of(it, struct sse_client, link), ka, elapsed);
	}
	if (ka)
		rc_buf_unref(ka);
}

/* Housekeeping's call (see sse.h). */
void bk_sse_tick(void)
{
	static uint64_t last_ms;
	uint64_t now = rc_now_ms();

	if (!sw || !atomic_load(&nstreams) || now - last_ms < bk_cfg()->sse_keepalive_ms)
		return;
	last_ms = now;
	for (unsigned i = 0; i < nsw; i++) {
		if (atomic_exchange(&sw[i].posted, true))
			continue; /* the last one has not run yet */
		if (bk.io->post(i, sweep, &sw[i]) < 0)
			atomic_store(&sw[i].posted, false);
	}
}
