/* engine = redis: the connections, publishing, and the channel messages
 * (subscriptions and their syncs are in engine_sync.c).
 *
 * Everything here runs on loop 0, which holds two connections to Redis: one
 * for commands (pipelined scripts) and one for pub/sub.  A publish on any
 * thread is posted here, becomes one EVALSHA of PUB_SCRIPT (next seq,
 * history append, PUBLISH: atomic in Redis), and its answer is posted back
 * to the publisher's thread.  Messages arriving on the pub/sub connection
 * are fanned out to this node's subscribers on every thread in the order
 * Redis published them, so every node delivers one seq order per topic.
 *
 * Memory stays bounded when Redis is slow or gone: at most
 * BK_REDIS_MAX_INFLIGHT publishes and MAX_INFLIGHT_BYTES of payload wait
 * for Redis (past that a publish is refused with `overloaded`), and a
 * publish while disconnected is refused at once (`unavailable`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "broker/engine_internal.h"

#define MAX_INFLIGHT_BYTES (64u << 20)
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000

struct engine eng;

/* KEYS: meta hash, history stream.  ARGV: channel, payload, opcode, time
 * (ms), the data set's epoch, history_size, history_ttl (ms).  The epoch is
 * the one the topic's numbering started under; seq 1 starts a history. */
static const char PUB_SCRIPT[] =
	"local seq = redis.call('HINCRBY', KEYS[1], 's', 1)\n"
	"local ep = redis.call('HGET', KEYS[1], 'e')\n"
	"if not ep then ep = ARGV[5]; redis.call('HSET', KEYS[1], 'e', ep) end\n"
	"if seq == 1 then redis.call('DEL', KEYS[2]) end\n"
	"if tonumber(ARGV[6]) > 0 then\n"
	"  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[6], seq .. '-1', 'o', ARGV[3],"
	" 't', ARGV[4], 'd', ARGV[2])\n"
	"  if ARGV[7] ~= '0' then redis.call('PEXPIRE', KEYS[2], ARGV[7]) end\n"
	"end\n"
	"redis.call('PUBLISH', ARGV[1], seq .. ':' .. ep .. ':' .. ARGV[3] .. ':' .. ARGV[4]"
	" .. ':' .. ARGV[2])\n"
	"return {seq, ep}\n";

/* KEYS: meta hash, history stream.  ARGV: from (0: none), the data set's
 * epoch, history_size, the topic's epoch the caller knows ("": none).
 * Returns {seq, epoch, history from `from`, reset}: reset 1 when `from` is
 * past seq + 1 or the topic's epoch is not the one known (the numbering
 * restarted: Redis lost the topic), and then the history from 1. */
static const char SYNC_SCRIPT[] =
	"local s = redis.call('HGET', KEYS[1], 's')\n"
	"local ep = redis.call('HGET', KEYS[1], 'e')\n"
	"if not s then\n"
	"  s = 0; ep = ARGV[2]; redis.call('HSET', KEYS[1], 's', 0, 'e', ep)\n"
	"end\n"
	"s = tonumber(s)\n"
	"local from = tonumber(ARGV[1])\n"
	"local reset = 0\n"
	"if from > s + 1 or (ARGV[4] ~= '' and ARGV[4] ~= ep) then reset = 1; from = 1 end\n"
	"local h = {}\n"
	"if from > 0 and from <= s and tonumber(ARGV[3]) > 0 then\n"
	"  h = redis.call('XRANGE', KEYS[2], from .. '-0', '+', 'COUNT', ARGV[3])\n"
	"end\n"
	"return {s, ep, h, reset}\n";

uint64_t bk__eng_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sha1_hex(const char *text, char out[41])
{
	unsigned char d[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)text, strlen(text), d);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void script_load(const char *text)
{
	bk_resp_cmd(&eng.setup, 3, (const char *[]){ "SCRIPT", "LOAD", text },
		    (size_t[]){ 6, 4, strlen(text) });
}

/* See engine.h. */
int bk_engine_init(const struct rc_config *cfg)
{
	const char *u = cfg->redis_url, *comma;
	char name[32];

	eng.remote = cfg->engine && strcmp(cfg->engine, "redis") == 0;
	memcpy(eng.epochs[0], bk.epoch, sizeof(eng.epochs[0]));
	if (!eng.remote)
		return 0;
	/* Several URLs name the same data set (a standalone Redis and its
	 * replicas behind a failover address): the first is dialed. */
	comma = strchr(u, ',');
	if (bk_redis_url_parse(u, comma ? (size_t)(comma - u) : strlen(u), &eng.url) < 0) {
		fprintf(stderr, "ringcast: redis_url: cannot read '%s' (redis://[user:pass@]"
			"host:port[/db])\n", u);
		return -EINVAL;
	}
	sha1_hex(PUB_SCRIPT, eng.sha_pub);
	sha1_hex(SYNC_SCRIPT, eng.sha_sync);
	script_load(PUB_SCRIPT);
	script_load(SYNC_SCRIPT);
	/* Named for CLIENT LIST: an operator (or a test) sees whose it is. */
	snprintf(name, sizeof(name), "ringcast-%d", (int)getpid());
	bk_resp_cmd(&eng.setup, 3, (const char *[]){ "CLIENT", "SETNAME", name },
		    (size_t[]){ 6, 7, strlen(name) });
	bk_resp_cmd(&eng.sub_setup, 3, (const char *[]){ "CLIENT", "SETNAME", name },
		    (size_t[]){ 6, 7, strlen(name) });
	eng.nbuckets = 1024;
	while (eng.nbuckets < cfg->max_topics / 4 && eng.nbuckets < (1u << 22))
		eng.nbuckets *= 2;
	eng.buckets = calloc(eng.nbuckets, sizeof(*eng.buckets));
	if (!eng.buckets || eng.setup.oom || eng.sub_setup.oom)
		return -ENOMEM;
	return 0;
}

bool bk_engine_remote(void)
{
	return eng.remote;
}

bool bk_engine_ready(void)
{
	return !eng.remote || atomic_load(&eng.ready);
}

const char *bk_engine_epoch(void)
{
	return eng.epochs[atomic_load(&eng.epoch_idx) & 1];
}

/* See engine.h. */
void bk_engine_stats_json(struct bk_text *t)
{
	uint64_t n = atomic_load(&eng.rtt_count);

	if (!eng.remote) {
		bk_tprintf(t, ",\"engine\":{\"name\":\"memory\"}");
		return;
	}
	bk_tprintf(t, ",\"engine\":{\"name\":\"redis\",\"connected\":%s,\"reconnects\":%llu,"
		   "\"inflight\":%llu,\"published\":%llu,\"received\":%llu,\"channels\":%llu,"
		   "\"publish_rtt_us\":%.1f}", bk_engine_ready() ? "true" : "false",
		   (unsigned long long)atomic_load(&eng.reconnects),
		   (unsigned long long)atomic_load(&eng.inflight),
		   (unsigned long long)atomic_load(&eng.published),
		   (unsigned long long)atomic_load(&eng.received),
		   (unsigned long long)atomic_load(&eng.channels),
		   n ? (double)atomic_load(&eng.rtt_ns_sum) / (double)n / 1e3 : 0.0);
}

/* See engine.h. */
void bk_engine_metrics(struct bk_text *t)
{
	static const struct {
		const char *name, *type, *help;
		_Atomic uint64_t *v;
	} series[] = {
		{ "reconnects", "counter", "Connections to Redis made again after a loss.",
		  &eng.reconnects },
		{ "inflight", "gauge", "Publishes waiting for Redis.", &eng.inflight },
		{ "published", "counter", "Publishes Redis numbered for this node.", &eng.published },
		{ "received", "counter", "Messages that came from Redis channels.", &eng.received },
		{ "channels", "gauge", "Redis channels this node subscribes to.", &eng.channels },
	};

	if (!eng.remote)
		return;
	bk_tprintf(t, "# HELP ringcast_engine_connected 1 while Redis is connected and ready.\n"
		   "# TYPE ringcast_engine_connected gauge\nringcast_engine_connected %d\n",
		   bk_engine_ready() ? 1 : 0);
	for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++)
		bk_tprintf(t, "# HELP ringcast_engine_%s %s\n# TYPE ringcast_engine_%s %s\n"
			   "ringcast_engine_%s%s %llu\n", series[i].name, series[i].help,
			   series[i].name, series[i].type, series[i].name,
			   strcmp(series[i].type, "counter") ? "" : "_total",
			   (unsigned long long)atomic_load(series[i].v));
	bk_tprintf(t, "# HELP ringcast_engine_publish_rtt_seconds Publish round trips to Redis.\n"
		   "# TYPE ringcast_engine_publish_rtt_seconds summary\n"
		   "ringcast_engine_publish_rtt_seconds_sum %.9f\n"
		   "ringcast_engine_publish_rtt_seconds_count %llu\n",
		   (double)atomic_load(&eng.rtt_ns_sum) / 1e9,
		   (unsigned long long)atomic_load(&eng.rtt_count));
}

/* ---- Keys and topics ------------------------------------------------------- */

static uint32_t hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

struct etopic **bk__eng_bucket(const char *name, size_t len)
{
	return &eng.buckets[hash(name, len) & (eng.nbuckets - 1)];
}

struct etopic *bk__eng_find(const char *name, size_t len)
{
	struct etopic *et = *bk__eng_bucket(name, len);

	for (; et; et = et->next)
		if (et->t->name_len == len && memcmp(et->t->name, name, len) == 0)
			return et;
	return NULL;
}

/* See engine_internal.h. */
struct rc_msg *bk__eng_msg(struct rc_topic *t, uint64_t seq, uint8_t op, uint64_t time_ms,
			   const void *p, size_t len)
{
	struct rc_msg *m = bk_msg_new(t, op, p, len);

	if (!m)
		return NULL;
	m->seq = seq;
	m->time_ms = time_ms;
	m->time_ns = bk__eng_now_ns();
	return m;
}

/* ---- Channel commands, batched per turn ------------------------------------ */

static void flush_chans(void *arg)
{
	(void)arg;
	eng.flush_posted = false;
	if (eng.sub && bk_redis_ready(eng.sub)) {
		if (eng.unsubs.len)
			bk_redis_send(eng.sub, &eng.unsubs);
		if (eng.subs.len)
			bk_redis_send(eng.sub, &eng.subs);
	}
	bk_resp_free(&eng.subs);
	bk_resp_free(&eng.unsubs);
}

/* See engine_internal.h. */
void bk__eng_chan(const struct rc_topic *t, bool subscribe)
{
	char ch[RC_TOPIC_MAX * 3 + 16];
	size_t n = bk_redis_key(ch, sizeof(ch), t->name, t->name_len, "");
	const char *cmd = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";

	/* One command per topic keeps each reply tied to its channel. */
	bk_resp_cmd(subscribe ? &eng.subs : &eng.unsubs, 2, (const char *[]){ cmd, ch },
		    (size_t[]){ strlen(cmd), n });
	if (!eng.flush_posted && bk.io->post(0, flush_chans, NULL) == 0)
		eng.flush_posted = true;
}

/* ---- Publishing ------------------------------------------------------------ */

struct pubreq {
	enum bk_pub_kind kind;
	struct rc_conn *c;          /* referenced */
	unsigned thread;
	int err;                    /* 0, or why it failed */
	uint64_t seq, sent_ns;
	char epoch[BK_EPOCH_LEN];
	size_t id_len;
	char id[RC_CMD_ID_MAX];
	uint8_t opcode;
	size_t tlen, len;
	char data[];                /* topic, then payload */
};

static void pub_free(struct pubreq *q)
{
	atomic_fetch_sub(&eng.inflight, 1);
	atomic_fetch_sub(&eng.inflight_bytes, q->len);
	if (q->c)
		rc_conn_unref(q->c);
	free(q);
}

/* On the publisher's thread: the answer. */
static void pub_done(void *arg)
{
	struct pubreq *q = arg;
	char buf[512];
	ssize_t n;

	if (q->kind == BK_PUB_JSON) {
		struct rc_span id = { q->id, q->id_len };
		if (q->err)
			n = rc_json_write_err(buf, sizeof(buf), id, "unavailable",
					      "the engine (Redis) did not take the message; "
					      "publish again later");
		else
			n = rc_json_write_ack(buf, sizeof(buf), id, true, q->seq, q->epoch);
		if (n > 0 && (q->id_len || q->err))
			rc_conn_send(q->c, RC_OP_TEXT, buf, (size_t)n);
	} else if (q->kind == BK_PUB_RAW && q->err) {
		rc_conn_close(q->c, RC_CLOSE_INTERNAL, "engine unavailable", 18);
	} else if (q->kind == BK_PUB_HTTP) {
		bk_http_publish_done(q->c, q->err, q->data, q->tlen, q->seq, q->epoch);
	}
	pub_free(q);
}

static void pub_finish(struct pubreq *q, int err)
{
	q->err = err;
	if (q->thread == 0 || bk.io->post(q->thread, pub_done, q) < 0)
		pub_done(q); /* a failed post: answered from here (any thread may send) */
}

static void pub_reply(void *arg, redisReply *r)
{
	struct pubreq *q = arg;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[1]->len >= BK_EPOCH_LEN) {
		if (r && r->type == REDIS_REPLY_ERROR && rc_log_enabled(RC_LOG_WARN))
			rc_log(RC_LOG_WARN, "redis: publish refused: %.*s", (int)r->len, r->str);
		pub_finish(q, -ENOTCONN);
		return;
	}
	q->seq = (uint64_t)r->element[0]->integer;
	memcpy(q->epoch, r->element[1]->str, r->element[1]->len);
	q->epoch[r->element[1]->len] = 0;
	atomic_fetch_add(&eng.published, 1);
	atomic_fetch_add(&eng.rtt_ns_sum, bk__eng_now_ns() - q->sent_ns);
	atomic_fetch_add(&eng.rtt_count, 1);
	pub_finish(q, 0);
}

/* On loop 0: the script call. */
static void pub_arrive(void *arg)
{
	struct pubreq *q = arg;
	const struct rc_config *cfg = bk_cfg();
	char meta[RC_TOPIC_MAX * 3 + 16], hist[sizeof(meta)], ch[sizeof(meta)];
	char op[4], tm[24], size[24], ttl[24];
	struct bk_resp b = { 0 };
	int err;
	size_t ml = bk_redis_key(meta, sizeof(meta), q->data, q->tlen, ":m");
	size_t hl = bk_redis_key(hist, sizeof(hist), q->data, q->tlen, ":h");
	size_t cl = bk_redis_key(ch, sizeof(ch), q->data, q->tlen, "");
	int ol = snprintf(op, sizeof(op), "%u", q->opcode);
	int tl = snprintf(tm, sizeof(tm), "%llu", (unsigned long long)wall_ms());
	int sl = snprintf(size, sizeof(size), "%llu", (unsigned long long)cfg->history_size);
	int xl = snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)cfg->history_ttl_ms);
	const char *epoch = bk_engine_epoch();
	const char *argv[] = { "EVALSHA", eng.sha_pub, "2", meta, hist, ch, q->data + q->tlen,
			       op, tm, epoch, size, ttl };
	size_t lens[] = { 7, 40, 1, ml, hl, cl, q->len, (size_t)ol, (size_t)tl, strlen(epoch),
			  (size_t)sl, (size_t)xl };

	bk_resp_cmd(&b, 12, argv, lens);
	q->sent_ns = bk__eng_now_ns();
	err = eng.cmd && atomic_load(&eng.ready) ? bk_redis_call(eng.cmd, &b, pub_reply, q) : -EPIPE;
	bk_resp_free(&b);
	if (err < 0)
		pub_finish(q, err);
}

/* See engine.h. */
int bk_engine_publish(const char *topic, size_t tlen, uint8_t opcode, const void *p,
		      size_t len, enum bk_pub_kind kind, struct rc_conn *c,
		      const struct rc_span *id)
{
	struct pubreq *q;

	if (atomic_load(&bk.draining))
		return -ESHUTDOWN;
	if (!atomic_load(&eng.ready))
		return -ENOTCONN;
	if (atomic_load(&eng.inflight) >= BK_REDIS_MAX_INFLIGHT ||
	    atomic_load(&eng.inflight_bytes) + len > MAX_INFLIGHT_BYTES)
		return -EBUSY;
	if (!(q = malloc(sizeof(*q) + tlen + len)))
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->kind = kind;
	q->c = c;
	q->thread = bk_worker()->idx;
	q->opcode = opcode;
	q->tlen = tlen;
	q->len = len;
	memcpy(q->data, topic, tlen);
	memcpy(q->data + tlen, p, len);
	if (id && id->len <= sizeof(q->id)) {
		memcpy(q->id, id->p, id->len);
		q->id_len = id->len;
	}
	atomic_fetch_add(&eng.inflight, 1);
	atomic_fetch_add(&eng.inflight_bytes, len);
	if (c)
		rc_conn_ref(c);
	if (bk.io->post(0, pub_arrive, q) < 0) {
		q->c = NULL;
		if (c)
			rc_conn_unref(c);
		pub_free(q);
		return -ENOMEM;
	}
	return 0;
}

/* ---- Channel messages ------------------------------------------------------ */

/* A message on channel ch (see bk_redis_payload_parse). */
static void channel_message(const char *ch, size_t chlen, const char *p, size_t n)
{
	char name[RC_TOPIC_MAX + 1];
	struct bk_redis_payload pl;
	struct etopic *et;
	struct rc_msg *m;
	ssize_t tl = bk_redis_chan_topic(ch, chlen, name);

	if (tl <= 0 || !(et = bk__eng_find(name, (size_t)tl)) || et->chan != CHAN_LIVE)
		return; /* left already, or not ours */
	if (bk_redis_payload_parse(p, n, &pl) < 0)
		return;
	atomic_fetch_add(&eng.received, 1);
	if (!(m = bk__eng_msg(et->t, pl.seq, pl.opcode, pl.time_ms, pl.data, pl.len)))
		return; /* out of memory: a hole the next delivery reports */
	bk__eng_on_message(et, m);
	bk_msg_unref(m);
}

static void on_push(struct bk_redis *r, redisReply *rep)
{
	redisReply **e = rep->element;

	(void)r;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 || e[0]->type != REDIS_REPLY_STRING)
		return;
	if (e[0]->len == 7 && memcmp(e[0]->str, "message", 7) == 0 &&
	    e[1]->type == REDIS_REPLY_STRING && e[2]->type == REDIS_REPLY_STRING) {
		channel_message(e[1]->str, e[1]->len, e[2]->str, e[2]->len);
	} else if (e[0]->len == 9 && memcmp(e[0]->str, "subscribe", 9) == 0 &&
		   e[1]->type == REDIS_REPLY_STRING) {
		char name[RC_TOPIC_MAX + 1];
		ssize_t tl = bk_redis_chan_topic(e[1]->str, e[1]->len, name);
		struct etopic *et = tl > 0 ? bk__eng_find(name, (size_t)tl) : NULL;
		if (e[2]->type == REDIS_REPLY_INTEGER)
			atomic_store(&eng.channels, (uint64_t)e[2]->integer);
		if (et && et->chan == CHAN_SUBSCRIBING)
			bk__eng_chan_live(et);
	} else if (e[0]->len == 11 && memcmp(e[0]->str, "unsubscribe", 11) == 0 &&
		   e[2]->type == REDIS_REPLY_INTEGER) {
		atomic_store(&eng.channels, (uint64_t)e[2]->integer);
	}
}

/* ---- Connections ----------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	return bk__eng_now_ns() / 1000000;
}

static void set_epoch(const char *e, size_t n)
{
	unsigned next = (atomic_load(&eng.epoch_idx) + 1) & 1;

	if (n >= BK_EPOCH_LEN)
		n = BK_EPOCH_LEN - 1;
	if (eng.epoch_known && strlen(bk_engine_epoch()) == n &&
	    memcmp(bk_engine_epoch(), e, n) == 0)
		return;
	if (eng.epoch_known)
		rc_log(RC_LOG_WARN, "redis: the data set's epoch changed to %.*s (Redis lost its "
		       "data): topics renumber, subscribers get a reset", (int)n, e);
	memcpy(eng.epochs[next], e, n);
	eng.epochs[next][n] = 0;
	atomic_store(&eng.epoch_idx, next);
	eng.epoch_known = true;
}

static void epoch_reply(void *arg, redisReply *r)
{
	(void)arg;
	if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
		if (eng.cmd)
			bk_redis_close(eng.cmd);
		return;
	}
	if (r->type == REDIS_REPLY_STRING)
		set_epoch(r->str, r->len);
	else /* none was set: ours is now */
		set_epoch(eng.candidate, strlen(eng.candidate));
	atomic_store(&eng.ready, true);
	eng.backoff_ms = 0;
	rc_log(RC_LOG_INFO, "redis: connected to %s, epoch %s", eng.url.addr, bk_engine_epoch());
	bk__eng_resubscribe();
}

/* Both connections ready: the data set's epoch, or a new one if it has
 * none (a new or emptied Redis: a fresh value each time, so numbering
 * that restarted is never mistaken for the old). */
static void both_ready(void)
{
	struct bk_resp b = { 0 };
	uint8_t r[8];
	const char *argv[] = { "SET", "rc:epoch", eng.candidate, "NX", "GET" };
	size_t lens[] = { 3, 8, 16, 2, 3 };

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memcpy(r, &(uint64_t){ bk__eng_now_ns() }, sizeof(r));
	for (int i = 0; i < 8; i++)
		snprintf(eng.candidate + 2 * i, 3, "%02x", r[i]);
	bk_resp_cmd(&b, 5, argv, lens);
	if (bk_redis_call(eng.cmd, &b, epoch_reply, NULL) < 0)
		bk_redis_close(eng.cmd);
	bk_resp_free(&b);
}

static void on_ready(struct bk_redis *r)
{
	if (r == eng.cmd)
		eng.cmd_ready = true;
	else
		eng.sub_ready = true;
	if (eng.cmd_ready && eng.sub_ready)
		both_ready();
}

static void drop_all(const char *why);

static void on_lost(struct bk_redis *r, const char *why)
{
	if (r == eng.cmd)
		eng.cmd = NULL;
	else
		eng.sub = NULL;
	drop_all(why);
}

static const struct bk_redis_handlers handlers = {
	.on_ready = on_ready,
	.on_push = on_push,
	.on_lost = on_lost,
};

/* One connection went: both go (a half is no use), syncs wait. */
static void drop_all(const char *why)
{
	bool was = atomic_exchange(&eng.ready, false);

	eng.backoff_ms = eng.backoff_ms ? eng.backoff_ms * 2 : BACKOFF_MIN_MS;
	if (eng.backoff_ms > BACKOFF_MAX_MS)
		eng.backoff_ms = BACKOFF_MAX_MS;
	if (was)
		rc_log(RC_LOG_WARN, "redis: connection to %s lost (%s); publishes are refused "
		       "until it is back", eng.url.addr, why);
	else
		rc_log(RC_LOG_WARN, "redis: cannot connect to %s (%s); /healthz is 503, next "
		       "attempt in %llu ms", eng.url.addr, why, (unsigned long long)eng.backoff_ms);
	eng.cmd_ready = eng.sub_ready = false;
	if (eng.cmd) {
		struct bk_redis *c = eng.cmd;
		eng.cmd = NULL;
		bk_redis_close(c);
	}
	if (eng.sub) {
		struct bk_redis *s = eng.sub;
		eng.sub = NULL;
		bk_redis_close(s);
	}
	bk__eng_lost();
	eng.next_try_ms = mono_ms() + eng.backoff_ms;
}

/* See engine.h. */
void bk_engine_tick(void *arg)
{
	(void)arg;
	if (!eng.remote || eng.cmd || eng.sub || atomic_load(&bk.draining) ||
	    mono_ms() < eng.next_try_ms)
		return;
	if (eng.next_try_ms)
		atomic_fetch_add(&eng.reconnects, 1);
	eng.next_try_ms = mono_ms() + BACKOFF_MAX_MS; /* until it fails or succeeds */
	struct rc_loop *l = rc_server_loop(bk.srv, 0);
	eng.cmd = bk_redis_open(l, &eng.url, &eng.setup, 3, &handlers, NULL);
	eng.sub = eng.cmd ? bk_redis_open(l, &eng.url, &eng.sub_setup, 1, &handlers, NULL) : NULL;
	if (!eng.cmd || !eng.sub) {
		rc_log(RC_LOG_WARN, "redis: cannot dial %s: %s", eng.url.addr, strerror(errno));
		drop_all("dial failed");
	}
}
