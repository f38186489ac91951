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
 * (ms), the data set's epoch, history_size, history_ttl (ms), PUBLISH or
 * SPUBLISH (Cluster: sharded pub/sub, the channel in the keys' slot).  The epoch is
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
	"redis.call(ARGV[8], ARGV[1], seq .. ':' .. ep .. ':' .. ARGV[3] .. ':' .. ARGV[4]"
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
int bk_engine_init(const struct bk_config *cfg)
{
	const char *u = cfg->redis_url;
	struct rc_span bad = { "", 0 };
	char name[32];

	eng.remote = cfg->engine && strcmp(cfg->engine, "redis") == 0;
	memcpy(eng.epochs[0], bk.epoch, sizeof(eng.epochs[0]));
	if (!eng.remote)
		return 0;
	/* Several URLs: Cluster seeds, or addresses of one standalone data
	 * set (e.g. before and after a failover); each attempt dials the
	 * next. */
	eng.cluster = cfg->redis_cluster;
	if (bk_redis_urls_parse(u, eng.seeds, BK_ENGINE_MAX_SEEDS, &eng.nseeds, &bad) < 0) {
		fprintf(stderr, "ringcast: redis_url: cannot read '%.*s' "
			"(redis://[user:pass@]host:port[/db])\n", (int)bad.len, bad.p);
		return -EINVAL;
	}
	/* Kept for the process's life: a reload does not change the engine. */
	if (cfg->redis_tls_ca && !(eng.ca_file = strdup(cfg->redis_tls_ca)))
		return -ENOMEM;
	for (unsigned i = 0; i < eng.nseeds; i++)
		eng.seeds[i].ca_file = eng.ca_file;
	eng.url = eng.seeds[0];
	eng.nodes[0].url = eng.url; /* standalone: the one node; Cluster: asked */
	eng.nnodes = 1;
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
		   (unsigned long long)bk__eng_channels(),
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
	};

	if (!eng.remote)
		return;
	bk_tprintf(t, "# HELP ringcast_engine_connected 1 while Redis is connected and ready.\n"
		   "# TYPE ringcast_engine_connected gauge\nringcast_engine_connected %d\n",
		   bk_engine_ready() ? 1 : 0);
	for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "ringcast_engine_%s%s", series[i].name,
			 strcmp(series[i].type, "counter") ? "" : "_total");
		bk_tprintf(t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, series[i].help, name,
			   series[i].type, name, (unsigned long long)atomic_load(series[i].v));
	}
	bk_tprintf(t, "# HELP ringcast_engine_channels Redis channels this node subscribes to.\n"
		   "# TYPE ringcast_engine_channels gauge\nringcast_engine_channels %llu\n",
		   (unsigned long long)bk__eng_channels());
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
struct bk_msg *bk__eng_msg(struct bk_topic *t, uint64_t seq, uint8_t op, uint64_t time_ms,
			   const void *p, size_t len)
{
	struct bk_msg *m = bk_msg_new(t, op, p, len);

	if (!m)
		return NULL;
	m->seq = seq;
	m->time_ms = time_ms;
	m->time_ns = bk__eng_now_ns();
	return m;
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
	char id[BK_PUB_CTX_MAX];    /* JSON: the id; HTTP: CORS header lines */
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
		bk_http_publish_done(q->c, q->err, q->data, q->tlen, q->seq, q->epoch,
				     (struct rc_span){ q->id, q->id_len });
	}
	pub_free(q);
}

static void pub_finish(struct pubreq *q, int err)
{
	q->err = err;
	if (q->thread == 0) {
		pub_done(q);
		return;
	}
	if (bk.io->post(q->thread, pub_done, q) == 0)
		return;
	/* A failed post (out of memory): a WebSocket answer or close may
	 * leave from here (any thread); an HTTP answer only from its own
	 * loop, so that request stays unanswered until the idle limit
	 * closes its connection. */
	if (q->kind == BK_PUB_HTTP)
		pub_free(q);
	else
		pub_done(q);
}

static void pub_reply(void *arg, redisReply *r)
{
	struct pubreq *q = arg;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[1]->len >= BK_EPOCH_LEN) {
		if (r && !bk__eng_redirect(r) && r->type == REDIS_REPLY_ERROR &&
		    rc_log_enabled(RC_LOG_WARN))
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
	const struct bk_config *cfg = bk_cfg();
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
	const char *pub = eng.cluster ? "SPUBLISH" : "PUBLISH";
	const char *argv[] = { "EVALSHA", eng.sha_pub, "2", meta, hist, ch, q->data + q->tlen,
			       op, tm, epoch, size, ttl, pub };
	size_t lens[] = { 7, 40, 1, ml, hl, cl, q->len, (size_t)ol, (size_t)tl, strlen(epoch),
			  (size_t)sl, (size_t)xl, strlen(pub) };
	struct bk_redis *c = atomic_load(&eng.ready) ? bk__eng_cmd_for(meta, ml) : NULL;

	bk_resp_cmd(&b, 13, argv, lens);
	q->sent_ns = bk__eng_now_ns();
	err = c ? bk_redis_call(c, &b, pub_reply, q) : -EPIPE;
	bk_resp_free(&b);
	if (err < 0)
		pub_finish(q, err);
}

/* See engine.h. */
int bk_engine_publish(const char *topic, size_t tlen, uint8_t opcode, const void *p,
		      size_t len, enum bk_pub_kind kind, struct rc_conn *c,
		      const struct rc_span *ctx)
{
	const struct rc_span *id = ctx;
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
	struct bk_msg *m;
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

/* kind is "message", or "smessage" for sharded pub/sub (likewise below). */
static bool is(const redisReply *k, const char *kind)
{
	size_t n = strlen(kind);

	return (k->len == n && memcmp(k->str, kind, n) == 0) ||
	       (k->len == n + 1 && k->str[0] == 's' && memcmp(k->str + 1, kind, n) == 0);
}

/* See engine_internal.h. */
void bk__eng_on_push(struct enode *node, redisReply *rep)
{
	redisReply **e = rep->element;
	char name[RC_TOPIC_MAX + 1];
	struct etopic *et;
	ssize_t tl;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 || e[0]->type != REDIS_REPLY_STRING ||
	    e[1]->type != REDIS_REPLY_STRING)
		return;
	if (is(e[0], "message") && e[2]->type == REDIS_REPLY_STRING) {
		channel_message(e[1]->str, e[1]->len, e[2]->str, e[2]->len);
		return;
	}
	if (e[2]->type == REDIS_REPLY_INTEGER)
		node->nchannels = (uint64_t)e[2]->integer, bk__eng_count_channels();
	tl = bk_redis_chan_topic(e[1]->str, e[1]->len, name);
	et = tl > 0 ? bk__eng_find(name, (size_t)tl) : NULL;
	if (is(e[0], "subscribe") && et && et->chan == CHAN_SUBSCRIBING)
		bk__eng_chan_live(et);
	else if (is(e[0], "unsubscribe") && et && et->chan == CHAN_LIVE)
		/* Not asked for: the cluster moved the topic's slot. */
		bk__eng_reconnect("a channel's slot moved");
}
