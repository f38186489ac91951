/* WebSocket sessions of the broker: routing an upgrade to a mode (/ws JSON,
 * /sub/<topic>, /pub/<topic>, /echo), the JSON control protocol, delivery
 * with the slow-consumer policy. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/engine.h"
#include "broker/sse.h"
#include "proto/utf8.h"

/* ---- Delivery ----------------------------------------------------------------- */

static struct rc_buf *text_frame(const char *p, size_t len)
{
	return rc_frame_encode(RC_OP_TEXT, (const uint8_t *)p, len, NULL);
}

/* Queues a small JSON frame (ack, err, gap, welcome). */
void bk_send_json(struct bk_client *cl, const char *p, size_t len)
{
	struct rc_buf *b = text_frame(p, len);

	if (!b)
		return;
	bk.io->send(cl, b);
	rc_buf_unref(b);
}

/* Tells a JSON client that messages from..to of a topic are lost to it. */
void bk_send_gap(struct bk_client *cl, const char *topic, size_t tlen,
		 uint64_t from, uint64_t to)
{
	char buf[RC_TOPIC_MAX * 6 + 128];
	ssize_t n = rc_json_write_gap(buf, sizeof(buf), topic, tlen, from, to);

	if (n > 0 && cl->mode == BK_MODE_SSE)
		bk_sse_send_control(cl, "gap", topic, tlen, to, buf, (size_t)n);
	else if (n > 0)
		bk_send_json(cl, buf, (size_t)n);
}

/* One writer (cl's thread): a relaxed load and store, no locked add. */
static void relaxed_add(_Atomic uint64_t *p, uint64_t n)
{
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* The thread's connection list for /connz: joined at open, left at close. */
void bk_conns_add(struct bk_client *cl)
{
	struct bk_worker *w = cl->conns_w = bk_worker();

	pthread_mutex_lock(&w->conns_lock);
	rc_list_add_tail(&w->conns, &cl->conn_link);
	w->nconns++;
	pthread_mutex_unlock(&w->conns_lock);
}

void bk_conns_del(struct bk_client *cl)
{
	struct bk_worker *w = cl->conns_w; /* the list it joined, whoever closes */

	if (rc_list_empty(&cl->conn_link))
		return; /* never opened */
	pthread_mutex_lock(&w->conns_lock);
	rc_list_del(&cl->conn_link);
	w->nconns--;
	pthread_mutex_unlock(&w->conns_lock);
}

static const char *endpoint(const struct bk_client *cl)
{
	static const char *const names[] = { "/ws", "/sub/", "/pub/", "/echo", "/events/" };

	return cl->mode < 5 ? names[cl->mode] : "?";
}

/* See broker.h. */
const char *bk_endpoint(const struct bk_client *cl)
{
	return endpoint(cl);
}

/* {"op":"reset","topic":…,"seq":N} (see bk_send_reset). */
void bk_send_reset(struct bk_client *cl, const char *topic, size_t tlen, uint64_t seq)
{
	char name[RC_TOPIC_MAX * 6 + 3], buf[RC_TOPIC_MAX * 6 + 96];
	ssize_t nl = rc_json_write_string(name, sizeof(name), topic, tlen);
	int n;

	if (nl < 0)
		return;
	n = snprintf(buf, sizeof(buf), "{\"op\":\"reset\",\"topic\":%.*s,\"seq\":%llu}",
		     (int)nl, name, (unsigned long long)seq);
	if (n > 0 && (size_t)n < sizeof(buf) && cl->mode == BK_MODE_SSE)
		bk_sse_send_control(cl, "reset", topic, tlen, seq, buf, (size_t)n);
	else if (n > 0 && (size_t)n < sizeof(buf))
		bk_send_json(cl, buf, (size_t)n);
}

/* Closes the slow consumers deferred on this thread (a post to itself, or
 * the tick): a close may run on_close at once, which unsubscribes from
 * every topic, so never inside a delivery loop (uSockets closes on the
 * loop's next pass, Redis frees clients asynchronously). */
static void flush_closes(void *arg)
{
	struct bk_worker *w = bk_worker();

	(void)arg;
	w->close_posted = false;
	while (!rc_list_empty(&w->closes)) {
		struct bk_client *cl = rc_container_of(w->closes.next, struct bk_client, close_link);
		rc_list_del(&cl->close_link);
		bk.io->close_slow(cl);
	}
}

static void defer_close(struct bk_client *cl)
{
	struct bk_worker *w = bk_worker();

	rc_list_add_tail(&w->closes, &cl->close_link);
	if (w->close_posted)
		return;
	if (bk.io->post(w->idx, flush_closes, NULL) == 0)
		w->close_posted = true;
	else
		atomic_store(&w->tick_wanted, true); /* the tick flushes them */
}

static void slow_consumer(struct bk_sub *s, struct bk_msg *m)
{
	struct bk_client *cl = s->cl;
	const struct bk_config *cfg = bk_cfg();
	const struct bk_ns *ns = bk_ns_of(cfg, m->topic->name, m->topic->name_len, NULL);
	bool drop = bk_ns_slow_policy(cfg, ns) == BK_SLOW_DROP;

	/* Once per episode: the first drop, or the close.  A pattern
	 * subscription (no topic) counts its drops in hole_to. */
	bool first = s->topic ? s->hole_to < s->next_seq : s->hole_to == 0;

	if ((!drop || first) && rc_log_enabled(RC_LOG_WARN))
		rc_log(RC_LOG_WARN, "slow consumer %s on %s, topic '%s': %zu bytes queued, over "
		       "max_backpressure; %s", bk.io->peer(cl), endpoint(cl), m->topic->name,
		       bk.io->queued(cl), drop ? "dropping messages (a gap follows)"
		       : "closing with 1013");
	if (drop) {
		/* s->next_seq stays: the next delivery, or the next tick once
		 * there is room, reports the hole. */
		bk_stat_add(BK_DROPS, 1);
		s->hole_to = s->topic ? m->seq : s->hole_to + 1;
		if (bk_client_hears_gaps(cl) && rc_list_empty(&s->hlink)) {
			struct bk_worker *w = bk_worker();
			rc_list_add_tail(&w->holes, &s->hlink);
			atomic_store(&w->tick_wanted, true);
		}
		return;
	}
	cl->closing = true;
	bk_stat_add(BK_SLOW_CLOSES, 1);
	defer_close(cl);
}

/* Queues m to s's connection (see broker.h). */
void bk_deliver(struct bk_sub *s, struct bk_msg *m)
{
	struct bk_client *cl = s->cl;
	enum bk_variant v;
	struct rc_buf *f;
	int ret;

	/* A pattern subscription (no topic) has no seq of its own: the
	 * fanout already delivers each message once (psub.c).  Events
	 * (join, leave) have none either, and go to JSON clients only. */
	bool numbered = s->topic && !m->event;

	if ((numbered && m->seq < s->next_seq) || cl->closing)
		return; /* replayed already, or on its way out */
	if (m->event && cl->mode != BK_MODE_JSON)
		return;
	v = cl->mode == BK_MODE_JSON ? BK_JSON : BK_RAW;
	if (cl->deflate_shared)
		v = v == BK_JSON ? BK_JSON_Z : BK_RAW_Z;
	if (cl->mode == BK_MODE_SSE)
		v = bk_sse_variant(cl);
	f = bk_msg_frame(m, v);
	if (!f)
		return; /* out of memory: a hole the next delivery reports */
	size_t queued = bk.io->queued(cl);
	bk_observe_queued(queued);
	atomic_store_explicit(&cl->queued, queued, memory_order_relaxed);
	if (queued + rc_buf_len(f) > bk_cfg()->max_backpressure) {
		if (!m->event) /* an event is best effort: never a reason to close */
			slow_consumer(s, m);
		return;
	}
	if (numbered && m->seq > s->next_seq && bk_client_hears_gaps(cl))
		/* Something in between could not be delivered (dropped, or a
		 * post to this thread failed): say exactly what. */
		bk_send_gap(cl, m->topic->name, m->topic->name_len, s->next_seq, m->seq - 1);
	ret = cl->mode == BK_MODE_SSE ? bk_sse_send_msg(s, m, f) : bk.io->send(cl, f);
	if (ret == -EPIPE)
		return; /* closing already: not a slow consumer */
	if (ret < 0) {
		if (!m->event)
			slow_consumer(s, m);
		return;
	}
	if (numbered)
		s->next_seq = m->seq + 1;
	bk_stat_add(BK_MSGS_OUT, 1);
	bk_stat_add(BK_BYTES_OUT, (int64_t)rc_buf_len(f));
	relaxed_add(&cl->msgs_out, 1);
	relaxed_add(&cl->bytes_out, rc_buf_len(f));
}

/* A gap frame is small: room for one is what a hole waits for. */
#define GAP_ROOM 512

/* Sends the gaps of dropped deliveries to subscribers that have room now
 * (see broker.h). */
void bk_worker_tick(void)
{
	struct bk_worker *w = bk_worker();
	struct rc_list *it, *next;

	if (!w->close_posted)
		flush_closes(NULL);
	for (it = w->holes.next; it != &w->holes; it = next) {
		struct bk_sub *s = rc_container_of(it, struct bk_sub, hlink);
		struct bk_client *cl = s->cl;
		next = it->next;
		if (!cl->closing && s->next_seq <= s->hole_to) {
			if (bk.io->queued(cl) + GAP_ROOM > bk_cfg()->max_backpressure) {
				atomic_store(&w->tick_wanted, true); /* still full */
				continue;
			}
			if (!s->topic) { /* a pattern's drops: a count */
				bk_psub_send_gap(s);
				s->hole_to = 0;
			} else {
				bk_send_gap(cl, s->topic->name, s->topic->name_len, s->next_seq,
					    s->hole_to);
				s->next_seq = s->hole_to + 1;
			}
		}
		rc_list_del(&s->hlink);
	}
}

/* ---- JSON mode -------------------------------------------------------------------- */

static void send_err(struct bk_client *cl, struct rc_span id, const char *code,
		     const char *reason)
{
	char buf[512];
	ssize_t n = rc_json_write_err(buf, sizeof(buf), id, code, reason);

	bk_stat_add(BK_JSON_ERRORS, 1);
	if (n > 0)
		bk_send_json(cl, buf, (size_t)n);
}

static ssize_t write_ack(char *buf, size_t cap, const struct rc_cmd *cmd, bool has_seq,
			 uint64_t seq)
{
	return rc_json_write_ack(buf, cap, cmd->id, has_seq, seq, bk.epoch);
}

static void send_ack(struct bk_client *cl, const struct rc_cmd *cmd, bool has_seq,
		     uint64_t seq)
{
	char buf[256];
	ssize_t n;

	if (!cmd->has_id)
		return;
	n = write_ack(buf, sizeof(buf), cmd, has_seq, seq);
	if (n > 0)
		bk_send_json(cl, buf, (size_t)n);
}

static struct rc_span no_id(void)
{
	return (struct rc_span){ NULL, 0 };
}

/* See broker.h. */
void bk_send_err(struct bk_client *cl, const struct rc_cmd *cmd, const char *code,
		 const char *reason)
{
	send_err(cl, cmd->has_id ? cmd->id : no_id(), code, reason);
}

/* Token bucket: json_rate per second, json_burst deep.  A client that keeps
 * hammering after being told is closed with 1008. */
static bool rate_ok(struct bk_client *cl)
{
	const struct bk_config *cfg = bk_cfg();
	uint64_t now = rc_now_ms();

	cl->tokens += (double)(now - cl->tokens_ms) * cfg->json_rate / 1000.0;
	if (cl->tokens > (double)cfg->json_burst)
		cl->tokens = (double)cfg->json_burst;
	cl->tokens_ms = now;
	/* Backed off until the bucket is full again: the flood is over. */
	if (cl->tokens >= (double)cfg->json_burst)
		cl->dropped = 0;
	if (cl->tokens < 1.0)
		return false;
	cl->tokens -= 1.0;
	return true;
}

/* The err for a publish or subscribe the registry refused. */
static void send_failed(struct bk_client *cl, const struct rc_cmd *cmd, int err)
{
	static const struct { int err; const char *code, *reason; } why[] = {
		{ -ENOSPC, "topic_limit", "max_topics reached: no new topic can be created now" },
		{ -EAGAIN, "topic_rate", "topic_create_rate reached for this address: slow down" },
		{ -ESHUTDOWN, "shutting_down", "the broker is shutting down: publish elsewhere or later" },
		{ -EINVAL, "bad_topic", "a pattern ('*' or '>' token) cannot be published to" },
		{ -ENOENT, "unknown_namespace", "no [namespace] section for this topic's namespace" },
		{ -EMSGSIZE, "too_big", "over the max_message_size of this topic's namespace" },
		{ -ENOTCONN, "unavailable", "the engine (Redis) cannot be reached: publish again later" },
		{ -EBUSY, "overloaded", "too many publishes wait for the engine: slow down" },
	};
	struct rc_span id = cmd->has_id ? cmd->id : no_id();

	for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
		if (why[i].err == err) {
			send_err(cl, id, why[i].code, why[i].reason);
			return;
		}
	}
	send_err(cl, id, "internal", "out of memory");
}

static void on_sub(struct bk_client *cl, const struct rc_cmd *cmd)
{
	uint64_t cur = 0;
	int ret;

	if (!bk_auth_may(cl, BK_SUBSCRIBE, cmd->topic, cmd->topic_len)) {
		send_err(cl, cmd->has_id ? cmd->id : no_id(), "forbidden",
			 "not allowed to subscribe to this topic");
		return;
	}
	ret = bk_subscribe(cl, cmd->topic, cmd->topic_len, cmd->has_from, cmd->from,
			   cmd->has_id ? &cmd->id : NULL, &cur);
	if (ret == -EMLINK)
		send_err(cl, cmd->has_id ? cmd->id : no_id(), "too_many_topics",
			 "max_topics_per_connection reached");
	else if (ret == -EINVAL)
		send_err(cl, cmd->has_id ? cmd->id : no_id(), "bad_topic",
			 "a pattern has '>' only as its last token and at most 32 tokens");
	else if (ret == -EPROTO)
		send_err(cl, cmd->has_id ? cmd->id : no_id(), "bad_field",
			 "a pattern has no seq of its own: from is for topics");
	else if (ret == -EOPNOTSUPP)
		send_err(cl, cmd->has_id ? cmd->id : no_id(), "not_supported",
			 "pattern subscriptions are not available with engine = redis");
	else if (ret < 0 && ret != -EEXIST)
		send_failed(cl, cmd, ret);
	else if (ret == -EEXIST)
		send_ack(cl, cmd, !bk_topic_is_pattern(cmd->topic, cmd->topic_len), cur);
}

static void on_command(struct bk_client *cl, const uint8_t *p, size_t n)
{
	struct rc_cmd cmd;
	uint64_t seq;
	unsigned subs;

	if (!rate_ok(cl)) {
		/* A dropped command that carries an id is answered with its id,
		 * so the client knows exactly what to resend; of those without,
		 * the first is told.  json_burst more drops before the client
		 * backs off (its bucket full again) are a flood (PROTOCOL.md),
		 * even when the trickle of refilled tokens lets a few through. */
		if (++cl->dropped > bk_cfg()->json_burst + 1) {
			rc_conn_close(cl->conn, RC_CLOSE_POLICY, "command flood", 13);
			cl->closing = true;
			return;
		}
		rc_cmd_parse(p, n, &cmd); /* for the id only */
		if (cmd.has_id || cl->dropped == 1)
			send_err(cl, cmd.has_id ? cmd.id : no_id(), "rate_limited",
				 "too many commands; slow down");
		return;
	}
	if (rc_cmd_parse(p, n, &cmd) < 0) {
		send_err(cl, cmd.has_id ? cmd.id : no_id(), cmd.err_code, cmd.err_reason);
		return;
	}
	if (bk_auth_command(cl, &cmd))
		return;
	switch (cmd.op) {
	case RC_CMD_SUB:
		on_sub(cl, &cmd);
		break;
	case RC_CMD_UNSUB:
		if (bk_unsubscribe(cl, cmd.topic, cmd.topic_len) < 0)
			send_err(cl, cmd.has_id ? cmd.id : no_id(), "not_subscribed",
				 "no subscription to this topic");
		else
			send_ack(cl, &cmd, false, 0);
		break;
	case RC_CMD_PUB: {
		if (!bk_auth_may(cl, BK_PUBLISH, cmd.topic, cmd.topic_len)) {
			send_err(cl, cmd.has_id ? cmd.id : no_id(), "forbidden",
				 "not allowed to publish to this topic");
			break;
		}
		if (!bk_auth_publish_rate(cl)) {
			send_err(cl, cmd.has_id ? cmd.id : no_id(), "rate_limited",
				 "publish_rate exceeded; slow down");
			break;
		}
		int err;
		if (bk_engine_remote()) { /* acked when Redis has numbered it */
			err = bk_engine_publish(cmd.topic, cmd.topic_len, RC_OP_TEXT, cmd.data.p,
						cmd.data.len, BK_PUB_JSON, cl->conn,
						cmd.has_id ? &cmd.id : NULL);
			if (err < 0)
				send_failed(cl, &cmd, err);
			break;
		}
		err = bk_publish(cmd.topic, cmd.topic_len, RC_OP_TEXT, cmd.data.p,
				 cmd.data.len, cl->ip_known ? cl->ip : NULL, &seq, &subs);
		if (err < 0)
			send_failed(cl, &cmd, err);
		else
			send_ack(cl, &cmd, true, seq);
		break;
	}
	case RC_CMD_PING:
		send_ack(cl, &cmd, false, 0);
		break;
	case RC_CMD_PRESENCE:
	case RC_CMD_PRESENCE_STATS:
		/* Who is subscribed is for those who may subscribe. */
		if (!bk_auth_may(cl, BK_SUBSCRIBE, cmd.topic, cmd.topic_len))
			send_err(cl, cmd.has_id ? cmd.id : no_id(), "forbidden",
				 "not allowed to subscribe to this topic");
		else
			bk_presence_command(cl, &cmd, cmd.op == RC_CMD_PRESENCE_STATS);
		break;
	default:
		break;
	}
}

/* ---- Handlers ------------------------------------------------------------------------ */

static void on_open(struct rc_conn *c)
{
	struct bk_client *cl = rc_conn_user(c);
	char buf[256];
	uint64_t cur;

	const struct rc_pmd_params *pmd = rc_conn_deflate(c);

	/* The shared compressed frames use a 15-bit window and a fresh
	 * context: they suit a peer that accepted exactly that. */
	cl->deflate_shared = pmd && pmd->server_max_window_bits == 15 &&
			     pmd->server_no_context_takeover;
	cl->opened_ms = rc_now_ms();
	bk_conns_add(cl);
	if (rc_log_enabled(RC_LOG_DEBUG))
		rc_log(RC_LOG_DEBUG, "open %s %s%s%s", rc_conn_peer(c), endpoint(cl), cl->topic,
		       pmd ? " (permessage-deflate)" : "");
	if (cl->mode == BK_MODE_JSON) {
		ssize_t n = rc_json_write_welcome(buf, sizeof(buf), RINGCAST_VERSION,
						  bk_engine_epoch());
		if (n > 0)
			bk_send_json(cl, buf, (size_t)n);
	} else if (cl->mode == BK_MODE_SUB) {
		int err = bk_subscribe(cl, cl->topic, cl->topic_len, cl->has_from, cl->from,
				       NULL, &cur);
		if (err == -ENOSPC)
			rc_conn_close(c, RC_CLOSE_TRY_AGAIN, "topic limit reached", 19);
		else if (err == -EAGAIN)
			rc_conn_close(c, RC_CLOSE_TRY_AGAIN, "topic creation rate", 19);
		else if (err < 0 && !cl->closing)
			rc_conn_close(c, RC_CLOSE_INTERNAL, "subscribe failed", 16);
	}
}

static void on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	struct bk_client *cl = rc_conn_user(c);
	uint64_t seq;
	unsigned subs;

	switch (cl->mode) {
	case BK_MODE_JSON:
		if (op != RC_OP_TEXT) {
			send_err(cl, no_id(), "bad_json", "commands are JSON text frames");
			return;
		}
		on_command(cl, p, n);
		return;
	case BK_MODE_PUB: {
		if (!bk_auth_publish_rate(cl)) {
			rc_conn_close(c, RC_CLOSE_POLICY, "publish rate exceeded", 21);
			cl->closing = true;
			return;
		}
		int err = bk_engine_remote()
			? bk_engine_publish(cl->topic, cl->topic_len, op, p, n, BK_PUB_RAW, c, NULL)
			: bk_publish(cl->topic, cl->topic_len, op, p, n,
				     cl->ip_known ? cl->ip : NULL, &seq, &subs);
		if (err == -ENOTCONN || err == -EBUSY)
			/* Refused with a reason: the publisher reconnects later. */
			rc_conn_close(c, RC_CLOSE_TRY_AGAIN, err == -EBUSY ? "engine overloaded"
				      : "engine unavailable", err == -EBUSY ? 17 : 18);
		else if (err == -ENOSPC)
			rc_conn_close(c, RC_CLOSE_TRY_AGAIN, "topic limit reached", 19);
		else if (err == -EAGAIN)
			rc_conn_close(c, RC_CLOSE_TRY_AGAIN, "topic creation rate", 19);
		else if (err == -ESHUTDOWN)
			rc_conn_close(c, RC_CLOSE_GOING_AWAY, "server shutting down", 20);
		else if (err == -EMSGSIZE)
			rc_conn_close(c, RC_CLOSE_TOO_BIG, "over the namespace's max_message_size", 37);
		else if (err < 0)
			rc_conn_close(c, RC_CLOSE_INTERNAL, "out of memory", 13);
		return;
	}
	case BK_MODE_ECHO:
		rc_conn_send(c, op, p, n);
		return;
	case BK_MODE_SUB:
		/* Raw subscribers only listen. */
		rc_conn_close(c, RC_CLOSE_UNSUPPORTED, "this endpoint only sends", 24);
		return;
	}
}

static void on_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n)
{
	struct bk_client *cl = rc_conn_user(c);
	char reason[128];

	if (!cl)
		return;
	if (rc_log_enabled(RC_LOG_DEBUG))
		rc_log(RC_LOG_DEBUG, "close %s %s%s: code %u%s%s, %llu messages / %llu bytes delivered, "
		       "%.3f s", rc_conn_peer(c), endpoint(cl), cl->topic, code, n ? " " : "",
		       rc_log_escape(reason, sizeof(reason), r, n),
		       (unsigned long long)cl->msgs_out, (unsigned long long)cl->bytes_out,
		       cl->opened_ms ? (double)(rc_now_ms() - cl->opened_ms) / 1e3 : 0.0);
	rc_list_del(&cl->close_link); /* gone before its deferred close */
	bk_conns_del(cl);
	bk_unsubscribe_all(cl);
	bk_auth_close(cl);
	free(cl->info);
	bk_stat_add(BK_CONNECTIONS, -1);
	atomic_fetch_sub(&bk.conns, 1);
	rc_conn_set_user(c, NULL);
	rc_mem_free(cl);
}

const struct rc_handlers bk_handlers = {
	.on_open = on_open,
	.on_message = on_message,
	.on_close = on_close,
};

/* ---- Routing -------------------------------------------------------------------------- */

static bool prefix(struct rc_span path, const char *pre, struct rc_span *rest)
{
	size_t n = strlen(pre);

	if (path.len < n || memcmp(path.p, pre, n) != 0)
		return false;
	rest->p = path.p + n;
	rest->len = path.len - n;
	return true;
}

static bool equals(struct rc_span s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* A seq in a query: decimal digits only, at most 2^64 - 1 (strtoull would
 * take "-1" and saturate overflows, as the JSON mode does not). */
/* See broker.h. */
bool bk_parse_u64(struct rc_span v, uint64_t *out)
{
	uint64_t n = 0;

	if (v.len == 0)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		unsigned d = (unsigned)(v.p[i] - '0');
		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

/* ?info= at connect: shown in presence and join/leave.  0, 400 (over
 * RC_INFO_MAX bytes or not UTF-8) or 503. */
static int client_info(struct bk_client *cl, struct rc_span v)
{
	char buf[RC_INFO_MAX + 1];
	ssize_t n = rc_http_percent_decode(v, buf, sizeof(buf));

	if (n < 0 || n > RC_INFO_MAX || !rc_utf8_valid((const uint8_t *)buf, (size_t)n))
		return 400;
	if (!n)
		return 0;
	if (!(cl->info = malloc((size_t)n)))
		return 503;
	memcpy(cl->info, buf, (size_t)n);
	cl->info_len = (size_t)n;
	return 0;
}

/* Decides what an upgrade becomes (see rc_server_config.on_upgrade). */
int bk_on_upgrade(struct rc_conn *c, const struct rc_http_request *req)
{
	const struct bk_config *cfg = bk_cfg();
	struct bk_client *cl;
	struct rc_span rest, val;
	uint8_t mode;
	int n;

	if (equals(req->path, "/ws"))
		mode = BK_MODE_JSON;
	else if (prefix(req->path, "/sub/", &rest))
		mode = BK_MODE_SUB;
	else if (prefix(req->path, "/pub/", &rest))
		mode = BK_MODE_PUB;
	else if (equals(req->path, "/echo") && cfg->echo)
		mode = BK_MODE_ECHO;
	else
		return 404;
	cl = rc_mem_alloc(sizeof(*cl));
	if (!cl)
		return 503;
	memset(cl, 0, sizeof(*cl));
	cl->conn = c;
	cl->mode = mode;
	cl->tokens = (double)cfg->json_burst;
	rc_list_init(&cl->subs);
	rc_list_init(&cl->close_link);
	rc_list_init(&cl->conn_link);
	if (mode == BK_MODE_SUB || mode == BK_MODE_PUB) {
		ssize_t n = bk_topic_from_path(rest, cl->topic);
		if (n < 0) {
			rc_mem_free(cl);
			return 400;
		}
		cl->topic_len = (size_t)n;
		/* Patterns: subscribed to, never published to; no seq to
		 * resume from. */
		if (bk_topic_is_pattern(cl->topic, cl->topic_len) &&
		    (mode == BK_MODE_PUB || !bk_psub_ok(cl->topic, cl->topic_len) ||
		     rc_http_query_get(req->query, "from", &val))) {
			rc_mem_free(cl);
			return 400;
		}
		/* engine = redis: a node hears only the channels of topics it
		 * has exact subscribers for, so a pattern would miss messages
		 * published on other nodes: refused rather than partial. */
		if (bk_topic_is_pattern(cl->topic, cl->topic_len) && bk_engine_remote()) {
			rc_mem_free(cl);
			return 501;
		}
		bool unknown;
		bk_ns_of(cfg, cl->topic, cl->topic_len, &unknown);
		if (unknown) { /* [namespaces] unknown = refuse */
			rc_mem_free(cl);
			return 404;
		}
		if (mode == BK_MODE_SUB && rc_http_query_get(req->query, "from", &val)) {
			if (!bk_parse_u64(val, &cl->from)) {
				rc_mem_free(cl);
				return 400;
			}
			cl->has_from = true;
		}
	}
	cl->ip_known = rc_conn_peer_ip(c, cl->ip);
	if (rc_http_query_get(req->query, "info", &val) && (n = client_info(cl, val)) != 0) {
		rc_mem_free(cl);
		return n;
	}
	if ((n = bk_auth_upgrade(c, req, cl)) != 0) {
		free(cl->info);
		rc_mem_free(cl);
		return n;
	}
	cl->id = atomic_fetch_add(&bk.conn_ids, 1) + 1;
	/* Counted here, uncounted in on_close: the core owes on_close to
	 * every connection accepted here, even one whose 101 fails. */
	atomic_fetch_add(&bk.conns, 1);
	bk_stat_add(BK_CONNECTIONS, 1);
	rc_conn_set_user(c, cl);
	rc_conn_set_handlers(c, &bk_handlers);
	return 0;
}

/* Decodes and validates a topic from a URL path segment. */
ssize_t bk_topic_from_path(struct rc_span seg, char *out)
{
	ssize_t n = rc_http_percent_decode(seg, out, RC_TOPIC_MAX + 1);

	if (n <= 0 || n > RC_TOPIC_MAX || !rc_topic_valid((const uint8_t *)out, (size_t)n))
		return -EINVAL;
	out[n] = 0;
	return n;
}
