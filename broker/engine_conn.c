/* engine = redis: the connections (on loop 0).  Each Redis server the
 * engine uses (the standalone one, or every Cluster master) gets two: one
 * for commands (pipelined scripts), one for pub/sub.  In Cluster mode a
 * probe connection to the first redis_url asks CLUSTER SLOTS, then the
 * masters are dialed; a command goes to the master of its key's slot
 * (every key and the channel of a topic share one slot: bk_redis_key), and
 * channels use sharded pub/sub (SSUBSCRIBE, SPUBLISH).
 *
 * The engine is ready when every connection is and the data set's epoch is
 * known.  Any connection lost, and any reply saying the Cluster changed
 * (MOVED, ASK, CLUSTERDOWN, ...), drops them all: publishes are refused,
 * subscribers wait, and the next attempt (backoff 250 ms doubling to 5 s)
 * starts over with a fresh slot map, then every topic resyncs
 * (engine_sync.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/engine_internal.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000

static uint64_t mono_ms(void)
{
	return bk__eng_now_ns() / 1000000;
}

/* ---- Slots ------------------------------------------------------------------ */

/* CRC16-CCITT (XMODEM), the Cluster's key hash. */
static uint16_t crc16(const char *p, size_t n)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < n; i++) {
		crc ^= (uint16_t)((uint8_t)p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)(crc << 1) ^ 0x1021 : (uint16_t)(crc << 1);
	}
	return crc;
}

/* The slot of a key: the hash of its first non-empty {tag}, or of it all. */
static unsigned slot_of(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len), *close;

	if (open && (close = memchr(open + 1, '}', (size_t)(key + len - open - 1))) &&
	    close > open + 1)
		return crc16(open + 1, (size_t)(close - open - 1)) % BK_CLUSTER_SLOTS;
	return crc16(key, len) % BK_CLUSTER_SLOTS;
}

static struct enode *node_for(const char *key, size_t len)
{
	return &eng.nodes[eng.cluster ? eng.slots[slot_of(key, len)] : 0];
}

/* See engine_internal.h. */
struct bk_redis *bk__eng_cmd_for(const char *key, size_t len)
{
	struct enode *n = node_for(key, len);

	return n->cmd && n->cmd_ready ? n->cmd : NULL;
}

/* Any thread: the sum loop 0 keeps (bk__eng_count_channels). */
uint64_t bk__eng_channels(void)
{
	return atomic_load(&eng.channels);
}

/* Loop 0, after a node's count changed. */
void bk__eng_count_channels(void)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < eng.nnodes; i++)
		sum += eng.nodes[i].nchannels;
	atomic_store(&eng.channels, sum);
}

/* ---- Channel commands, batched per turn ------------------------------------ */

static void flush_chans(void *arg)
{
	(void)arg;
	eng.flush_posted = false;
	for (unsigned i = 0; i < eng.nnodes; i++) {
		struct enode *n = &eng.nodes[i];
		if (n->sub && bk_redis_ready(n->sub) && n->chans.len)
			bk_redis_send(n->sub, &n->chans);
		bk_resp_free(&n->chans);
	}
}

/* See engine_internal.h. */
void bk__eng_chan(const struct bk_topic *t, bool subscribe)
{
	char ch[RC_TOPIC_MAX * 3 + 16];
	size_t n = bk_redis_key(ch, sizeof(ch), t->name, t->name_len, "");
	struct enode *node = node_for(ch, n);
	const char *cmd = subscribe ? (eng.cluster ? "SSUBSCRIBE" : "SUBSCRIBE")
				    : (eng.cluster ? "SUNSUBSCRIBE" : "UNSUBSCRIBE");

	/* One command per topic keeps each reply tied to its channel; one
	 * buffer keeps a leave and a return within a turn in order. */
	bk_resp_cmd(&node->chans, 2, (const char *[]){ cmd, ch }, (size_t[]){ strlen(cmd), n });
	if (!eng.flush_posted && bk.io->post(0, flush_chans, NULL) == 0)
		eng.flush_posted = true;
}

/* ---- The data set's epoch ----------------------------------------------------- */

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
		if (r && !bk__eng_redirect(r))
			bk__eng_reconnect("the epoch could not be read");
		return;
	}
	if (r->type == REDIS_REPLY_STRING)
		set_epoch(r->str, r->len);
	else /* none was set: ours is now */
		set_epoch(eng.candidate, strlen(eng.candidate));
	atomic_store(&eng.ready, true);
	eng.backoff_ms = 0;
	rc_log(RC_LOG_INFO, "redis: connected to %s%s, epoch %s", eng.url.addr,
	       eng.cluster ? " (Cluster)" : "", bk_engine_epoch());
	bk__eng_resubscribe();
}

/* Every connection ready: the data set's epoch, or a new one if it has
 * none (a new or emptied Redis: a fresh value each time, so numbering
 * that restarted is never mistaken for the old). */
static void all_ready(void)
{
	struct bk_resp b = { 0 };
	uint8_t r[8];
	const char *argv[] = { "SET", "rc:epoch", eng.candidate, "NX", "GET" };
	size_t lens[] = { 3, 8, 16, 2, 3 };
	struct bk_redis *c = bk__eng_cmd_for("rc:epoch", 8);

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memcpy(r, &(uint64_t){ bk__eng_now_ns() }, sizeof(r));
	for (int i = 0; i < 8; i++)
		snprintf(eng.candidate + 2 * i, 3, "%02x", r[i]);
	bk_resp_cmd(&b, 5, argv, lens);
	if (!c || bk_redis_call(c, &b, epoch_reply, NULL) < 0)
		bk__eng_reconnect("the epoch could not be asked");
	bk_resp_free(&b);
}

/* ---- Connections ----------------------------------------------------------- */

static void drop_all(const char *why);
static void dial_nodes(void);
static void slots_reply(void *arg, redisReply *r);

static void on_ready(struct bk_redis *r)
{
	struct enode *n = bk_redis_user(r);

	if (!n) { /* the Cluster probe */
		struct bk_resp b = { 0 };
		bk_resp_cmd(&b, 2, (const char *[]){ "CLUSTER", "SLOTS" }, (size_t[]){ 7, 5 });
		if (bk_redis_call(r, &b, slots_reply, NULL) < 0)
			bk__eng_reconnect("CLUSTER SLOTS could not be asked");
		bk_resp_free(&b);
		return;
	}
	if (r == n->cmd)
		n->cmd_ready = true;
	else
		n->sub_ready = true;
	for (unsigned i = 0; i < eng.nnodes; i++)
		if (!eng.nodes[i].cmd_ready || !eng.nodes[i].sub_ready)
			return;
	all_ready();
}

static void on_push(struct bk_redis *r, redisReply *rep)
{
	struct enode *n = bk_redis_user(r);

	if (n)
		bk__eng_on_push(n, rep);
}

static void on_lost(struct bk_redis *r, const char *why)
{
	struct enode *n = bk_redis_user(r);

	if (!n)
		eng.probe = NULL;
	else if (r == n->cmd)
		n->cmd = NULL;
	else
		n->sub = NULL;
	drop_all(why);
}

static const struct bk_redis_handlers handlers = {
	.on_ready = on_ready,
	.on_push = on_push,
	.on_lost = on_lost,
};

static void close_conn(struct bk_redis **r)
{
	struct bk_redis *c = *r;

	*r = NULL;
	if (c)
		bk_redis_close(c);
}

/* Everything goes (a half is no use); syncs wait for the next attempt. */
static void drop_all(const char *why)
{
	bool was = atomic_exchange(&eng.ready, false);

	eng.backoff_ms = eng.backoff_ms ? eng.backoff_ms * 2 : BACKOFF_MIN_MS;
	if (eng.backoff_ms > BACKOFF_MAX_MS)
		eng.backoff_ms = BACKOFF_MAX_MS;
	if (atomic_load(&bk.draining))
		rc_log(RC_LOG_INFO, "redis: connections closed (shutting down)");
	else if (was)
		rc_log(RC_LOG_WARN, "redis: connection to %s lost (%s); publishes are refused "
		       "until it is back", eng.url.addr, why);
	else
		rc_log(RC_LOG_WARN, "redis: cannot connect to %s (%s); /healthz is 503, next "
		       "attempt in %llu ms", eng.url.addr, why, (unsigned long long)eng.backoff_ms);
	close_conn(&eng.probe);
	for (unsigned i = 0; i < eng.nnodes; i++) {
		struct enode *n = &eng.nodes[i];
		n->cmd_ready = n->sub_ready = false;
		n->nchannels = 0;
		close_conn(&n->cmd);
		close_conn(&n->sub);
	}
	bk__eng_count_channels();
	bk__eng_lost();
	eng.next_try_ms = mono_ms() + eng.backoff_ms;
}

static void reconnect_now(void *arg)
{
	if (atomic_load(&eng.ready) || eng.probe)
		drop_all(arg);
}

/* See engine_internal.h. */
void bk__eng_reconnect(const char *why)
{
	if (bk.io->post(0, reconnect_now, (void *)why) < 0)
		reconnect_now((void *)why);
}

/* See engine_internal.h. */
bool bk__eng_redirect(const redisReply *r)
{
	static const char *const kinds[] = { "MOVED ", "ASK ", "CLUSTERDOWN", "TRYAGAIN",
					     "LOADING" };

	if (r->type != REDIS_REPLY_ERROR)
		return false;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (r->len >= strlen(kinds[i]) && !memcmp(r->str, kinds[i], strlen(kinds[i]))) {
			bk__eng_reconnect("the cluster changed");
			return true;
		}
	return false;
}

/* CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]. */
static void slots_reply(void *arg, redisReply *r)
{
	(void)arg;
	if (!r || r->type != REDIS_REPLY_ARRAY || !r->elements) {
		if (r)
			bk__eng_reconnect("CLUSTER SLOTS gave no slots");
		return;
	}
	eng.nnodes = 0;
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *e = r->element[i], *m;
		char addr[300];
		unsigned k;
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    e->element[0]->type != REDIS_REPLY_INTEGER ||
		    e->element[1]->type != REDIS_REPLY_INTEGER ||
		    (m = e->element[2])->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
		    m->element[0]->type != REDIS_REPLY_STRING ||
		    m->element[1]->type != REDIS_REPLY_INTEGER)
			continue;
		/* An empty host means "the address you reached me on". */
		if (m->element[0]->len)
			snprintf(addr, sizeof(addr), "%s://%.*s:%lld", eng.url.tls ? "tls" : "tcp",
				 (int)m->element[0]->len, m->element[0]->str,
				 m->element[1]->integer);
		else
			snprintf(addr, sizeof(addr), "%.*s:%lld",
				 (int)(strrchr(eng.url.addr, ':') - eng.url.addr), eng.url.addr,
				 m->element[1]->integer);
		for (k = 0; k < eng.nnodes && strcmp(eng.nodes[k].url.addr, addr); k++)
			;
		if (k == eng.nnodes) {
			if (k == BK_ENGINE_MAX_NODES)
				continue;
			eng.nodes[k].url = eng.url;
			eng.nodes[k].url.db = 0; /* a Cluster has one database */
			snprintf(eng.nodes[k].url.addr, sizeof(eng.nodes[k].url.addr), "%s", addr);
			eng.nnodes++;
		}
		for (long long s = e->element[0]->integer;
		     s <= e->element[1]->integer && s < BK_CLUSTER_SLOTS; s++)
			if (s >= 0)
				eng.slots[s] = (uint8_t)k;
	}
	if (!eng.nnodes) {
		bk__eng_reconnect("CLUSTER SLOTS named no master");
		return;
	}
	rc_log(RC_LOG_INFO, "redis: Cluster of %u masters", eng.nnodes);
	close_conn(&eng.probe);
	dial_nodes();
}

static void dial_nodes(void)
{
	struct rc_loop *l = rc_server_loop(bk.srv, 0);

	for (unsigned i = 0; i < eng.nnodes; i++) {
		struct enode *n = &eng.nodes[i];
		n->cmd = bk_redis_open(l, &n->url, &eng.setup, 3, &handlers, n);
		n->sub = n->cmd ? bk_redis_open(l, &n->url, &eng.sub_setup, 1, &handlers, n) : NULL;
		if (!n->cmd || !n->sub) {
			rc_log(RC_LOG_WARN, "redis: cannot dial %s: %s", n->url.addr, strerror(errno));
			drop_all("dial failed");
			return;
		}
	}
}

/* See engine.h. */
void bk_engine_tick(void *arg)
{
	bool busy = eng.probe != NULL;

	(void)arg;
	for (unsigned i = 0; i < eng.nnodes; i++)
		busy |= eng.nodes[i].cmd || eng.nodes[i].sub;
	if (!eng.remote || busy || atomic_load(&bk.draining) || mono_ms() < eng.next_try_ms)
		return;
	if (eng.next_try_ms)
		atomic_fetch_add(&eng.reconnects, 1);
	eng.next_try_ms = mono_ms() + BACKOFF_MAX_MS; /* until it fails or succeeds */
	eng.url = eng.seeds[eng.seed_next++ % eng.nseeds];
	if (!eng.cluster) {
		eng.nodes[0].url = eng.url;
		dial_nodes();
		return;
	}
	eng.probe = bk_redis_open(rc_server_loop(bk.srv, 0), &eng.url, NULL, 0, &handlers, NULL);
	if (!eng.probe) {
		rc_log(RC_LOG_WARN, "redis: cannot dial %s: %s", eng.url.addr, strerror(errno));
		drop_all("dial failed");
	}
}
