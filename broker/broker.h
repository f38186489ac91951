/* Private to broker/: topics, messages, subscriptions, workers, stats. */
#ifndef RC_BROKER_BROKER_H
#define RC_BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "broker/config.h"
#include "broker/match.h"
#include "broker/namespace.h"
#include "core/rc.h"
#include "proto/deflate.h"
#include "proto/frame.h"
#include "proto/http.h"
#include "proto/json.h"

struct bk_topic;
struct bk_msg;

/* ---- Stats: one block per worker thread, summed on read ------------------ */

enum bk_stat {
	BK_CONNECTIONS,      /* WebSocket connections open (gauge) */
	BK_SUBSCRIPTIONS,    /* gauge */
	BK_MSGS_IN,          /* messages published */
	BK_MSGS_OUT,         /* deliveries queued to subscribers */
	BK_BYTES_IN,
	BK_BYTES_OUT,
	BK_DROPS,            /* deliveries skipped (drop policy) */
	BK_SLOW_CLOSES,      /* subscribers closed with 1013 */
	BK_DEFLATES,         /* compress-once calls */
	BK_JSON_ERRORS,      /* err replies */
	BK_HTTP_REQUESTS,
	BK_REFUSED,          /* connections refused by limits */
	BK_SSE_STREAMS,      /* Server-Sent Events streams open (gauge) */
	BK_SSE_EVENTS,       /* message events built: once per message and variant */
	BK_NSTATS
};

/* A Prometheus histogram with fixed buckets (metrics.c), written by one
 * thread (relaxed load + store, no locked instruction, no allocation) and
 * summed over the workers when /metrics is read. */
#define BK_HIST_MAX 16
struct bk_hist {
	_Atomic uint64_t count[BK_HIST_MAX + 1]; /* per bucket, last is +Inf */
	_Atomic uint64_t sum;
};

struct bk_worker {
	unsigned idx;             /* its loop: rc_server_loop(bk.srv, idx) */
	struct rc_list holes;     /* bk_sub.hlink: drops not yet reported */
	atomic_bool tick_wanted;  /* holes to report: housekeeping posts a tick */
	struct rc_list closes;    /* bk_client.close_link: slow consumers to close */
	bool close_posted;        /* a flush of closes is posted to this thread */
	struct rc_deflater deflater; /* compress-once scratch, window 15 */
	bool deflater_ready;
	_Atomic uint64_t stats[BK_NSTATS];
	struct bk_hist fanout_ns;    /* publish -> queued on this thread's subscribers */
	struct bk_hist queued_bytes; /* a connection's queue when a delivery joins it */
	/* Open WebSocket connections of this thread (bk_client.conn_link), for
	 * GET /connz: added and removed by this thread, read by the HTTP
	 * thread answering /connz, both under conns_lock. */
	pthread_mutex_t conns_lock;
	struct rc_list conns;
	unsigned nconns;
	/* Pattern subscriptions of this thread's connections (psub.c): the
	 * trie only this thread touches, its size for publishers on every
	 * thread, and the fanout generation that delivers a message once per
	 * connection (bk_client.gen). */
	struct bk_match pats;
	_Atomic unsigned npats;
	uint64_t gen;
	char pad[64];
};

/* ---- Where deliveries go ---------------------------------------------------------
 * The registry (topic.c, msg.c, the delivery in session.c) reaches threads and
 * connections only through these, so tests drive it with fake subscribers on
 * fake threads (tests/broker/test_registry.c); worker.c has the real ones. */

struct bk_client;

struct bk_io {
	/* Runs fn(arg) on worker idx's thread after everything posted to it
	 * before.  Any thread.  0 or -ENOMEM (then fn never runs). */
	int (*post)(unsigned idx, void (*fn)(void *arg), void *arg);
	/* Bytes queued to cl and not yet sent.  cl's thread. */
	size_t (*queued)(const struct bk_client *cl);
	/* Queues a reference to frame: 0, -ENOBUFS (over the core's hard
	 * limit), -EPIPE (closing) or -ENOMEM.  cl's thread. */
	int (*send)(struct bk_client *cl, struct rc_buf *frame);
	/* Closes cl as a slow consumer (1013), dropping what has not started
	 * to go out.  May call on_close at once.  cl's thread. */
	void (*close_slow)(struct bk_client *cl);
	/* The peer's address as text, for log lines.  cl's thread. */
	const char *(*peer)(const struct bk_client *cl);
};

extern const struct bk_io bk_conn_io;

/* ---- The broker ------------------------------------------------------------- */

struct bk_broker {
	struct rc_server *srv;
	const struct bk_io *io;          /* &bk_conn_io, or a test's fakes */
	_Atomic(struct bk_config *) cfg; /* swapped whole on SIGHUP */
	unsigned nthreads;
	struct bk_worker *workers;
	char epoch[24];                  /* changes at every start */
	_Atomic uint64_t conns;          /* WebSocket connections, all threads */
	_Atomic uint64_t sockets;        /* accepted sockets (max_connections) */
	_Atomic uint64_t hist_bytes;     /* held by histories and topics (history.c) */
	atomic_bool draining;            /* SIGTERM: publishes are refused */
	atomic_uint publishing;          /* bk_publish calls in progress */
	atomic_uint drain_left;          /* loops that have not passed the barrier */
	_Atomic uint64_t conn_ids;       /* the last connection id given (presence) */
	uint64_t started_ms;
};

extern struct bk_broker bk;

/* The worker of the calling loop thread. */
struct bk_worker *bk_worker(void);
/* Makes w the calling thread's worker (tests' fake threads). */
void bk_worker_bind(struct bk_worker *w);
/* Allocates and sets up bk.workers for n threads: 0 or -ENOMEM. */
int bk_workers_init(unsigned n);
/* On a worker's thread: sends the drop-policy gaps of subscribers that have
 * room again (posted by housekeeping while any are waiting). */
void bk_worker_tick(void);
/* The housekeeping thread: every 50 ms a tick to the workers that wait for
 * one; every second history_ttl expiry in the background, history_max_bytes,
 * and the topic creation buckets.  start: 0 or -errno; stop joins it. */
int bk_housekeeping_start(void);
void bk_housekeeping_stop(void);
static inline const struct bk_config *bk_cfg(void)
{
	return atomic_load_explicit(&bk.cfg, memory_order_acquire);
}
static inline void bk_stat_add(enum bk_stat s, int64_t n)
{
	atomic_fetch_add_explicit(&bk_worker()->stats[s], (uint64_t)n, memory_order_relaxed);
}
uint64_t bk_stat_sum(enum bk_stat s);
/* The JSON and metric name of each counter (metrics.c). */
extern const char *const bk_stat_names[BK_NSTATS];
/* Loop i's busy share since start and its socket count. */
void bk_loop_util(unsigned i, double *util, unsigned *conns);

/* ---- Messages (msg.c) ----------------------------------------------------------
 * One per publish, refcounted; frames built lazily, at most once each. */

/* BK_SSE: a Server-Sent Event with its own id; BK_SSE_BODY: the same event
 * without the id (sse.c). */
enum bk_variant { BK_RAW, BK_RAW_Z, BK_JSON, BK_JSON_Z, BK_SSE, BK_SSE_BODY, BK_NVARIANTS };

struct bk_msg {
	atomic_uint refs;
	uint8_t opcode;            /* RC_OP_TEXT or RC_OP_BINARY */
	uint64_t seq;
	uint64_t time_ms;
	uint64_t time_ns;          /* CLOCK_MONOTONIC at publish, for the latency histogram */
	struct rc_list hlink;      /* in history: every topic's, oldest first */
	struct bk_topic *topic;    /* holds a topic reference */
	pthread_mutex_t lock;      /* guards frames[] construction */
	struct rc_buf *frames[BK_NVARIANTS]; /* [BK_RAW] from the start */
	bool event;                /* join/leave (presence.c): no seq, JSON only, data is the frame */
	size_t len;
	const uint8_t *data;       /* the payload, copied once: in frames[BK_RAW] */
	size_t json_len;           /* frames[BK_JSON]'s payload, once built */
};

struct bk_msg *bk_msg_new(struct bk_topic *t, uint8_t opcode, const void *p, size_t len);
void bk_msg_ref(struct bk_msg *m);
void bk_msg_unref(struct bk_msg *m);
/* The frame for a variant; built on first use.  NULL on out of memory. */
struct rc_buf *bk_msg_frame(struct bk_msg *m, enum bk_variant v);

/* ---- Topics and subscriptions (topic.c) -------------------------------------- */

struct bk_sub {
	struct rc_list tlink;       /* topic->local[worker] */
	struct rc_list clink;       /* client->subs */
	struct bk_topic *topic;     /* NULL: a pattern subscription (psub.c) */
	struct bk_client *cl;
	/* The next seq this subscriber should get: below it is a replay's
	 * (skipped), above it a hole (a delivery that could not happen:
	 * dropped, or a post that failed) that the next delivery reports
	 * with a gap first.  Only the subscriber's thread touches it. */
	uint64_t next_seq;
	/* Drop policy: the last seq dropped, and the link in the worker's
	 * holes list, so the gap goes out as soon as there is room even if
	 * no further message comes (bk_worker_tick).  A pattern subscription
	 * counts its drops here instead (next_seq stays 0). */
	uint64_t hole_to;
	struct rc_list hlink;
	struct bk_presence *pres;   /* presence = on: its record (presence.c) */
	uint64_t eng_id;            /* engine = redis: its sync request; 0: none */
};

struct bk_topic {
	struct bk_topic *hnext;
	pthread_mutex_t lock;
	uint64_t seq;               /* last assigned */
	uint64_t base;              /* seq when this topic was created */
	bool base_exact;            /* false: numbers up to base are unknown */
	atomic_uint refs;           /* drops to 0 only under the registry lock */
	_Atomic unsigned nsubs;
	unsigned *nsubs_thread;     /* per worker, guarded by lock */
	_Atomic unsigned *pending;  /* per worker: fanouts posted to it, not yet run */
	struct rc_list *local;      /* per worker; only that worker touches it */
	struct bk_msg **hist;       /* ring of the last history_size messages */
	size_t hist_cap;            /* history_size when created */
	size_t hist_alloc, hist_head, hist_len; /* the ring, grown on demand (history.c) */
	struct rc_list presence;    /* bk_presence.link, under lock (presence.c) */
	size_t npresence;
	uint32_t hash;
	size_t name_len;
	char name[];
};

struct bk_topic *bk_topic_get(const char *name, size_t len, bool create, const uint8_t *ip);
void bk_topic_ref(struct bk_topic *t);
void bk_topic_put(struct bk_topic *t);
/* Publishes (any loop thread).  ip: the publisher's address for the
 * topic creation rate (NULL: not limited).  *subscribers gets the count at
 * publish (exact subscribers).  0, or -ENOSPC (max_topics), -EAGAIN
 * (topic_create_rate), -ESHUTDOWN (draining), -EINVAL (a pattern),
 * -EMSGSIZE (over its namespace's max_message_size), -ENOENT (an unknown
 * namespace, refused), -ENOMEM. */
int bk_publish(const char *topic, size_t tlen, uint8_t opcode, const void *p,
	       size_t len, const uint8_t *ip, uint64_t *seq, unsigned *subscribers);
/* Sends an event (join, leave: the JSON text) to t's exact JSON
 * subscribers on every thread, in order with its messages; no seq, no
 * history, best effort (dropped when out of memory or over backpressure). */
void bk_topic_event(struct bk_topic *t, const char *json, size_t len);
/* Drain, step one (any thread but a loop's): refuse every publish from now
 * on and wait (bounded) until those in progress have handed their message
 * to every thread.  Then every acked message is queued to, or posted
 * towards, each subscriber. */
void bk_stop_publishing(void);
/* Subscribes client cl (JSON or raw) to a topic or a pattern (psub.c:
 * no seq, no replay, the ack without seq).  has_from: replay history from seq
 * `from` on (a gap first when history does not reach back), then live.
 * ack_id not NULL: queue the JSON ack (with the topic's current seq) before
 * the replay.  *cur gets the topic's last seq. */
int bk_subscribe(struct bk_client *cl, const char *topic, size_t tlen, bool has_from,
		 uint64_t from, const struct rc_span *ack_id, uint64_t *cur);
int bk_unsubscribe(struct bk_client *cl, const char *topic, size_t tlen);
/* What a new subscription gets before the live stream. */
struct bk_replay {
	uint64_t cur;               /* the topic's last seq (the ack's) */
	uint64_t reset_to;          /* > 0: a reset up to it first */
	bool reset;                 /* a reset even when reset_to is 0 */
	uint64_t gap_from, gap_to;  /* gap_to > 0: a gap first */
	uint64_t from;              /* first seq to replay */
	uint64_t live;              /* first seq of the live stream (0: cur + 1) */
	size_t n;
	struct bk_msg **msgs;       /* referenced, malloc'd; freed by the send */
};
/* Sends the ack (ack_id not NULL, with epoch), a reset or gap, the replay,
 * and sets where s's live stream starts.  s's thread. */
void bk_send_replay(struct bk_sub *s, struct bk_replay *r, const struct rc_span *ack_id,
		    const char *epoch);
/* Delivers m (numbered by the engine) to every local subscriber of its
 * topic, on every thread, in the order of the calls; the topic's seq
 * becomes m's.  Loop 0 only (engine = redis). */
void bk_topic_fanout(struct bk_msg *m);
void bk_unsubscribe_all(struct bk_client *cl);
/* Calls fn for each topic, at most max of them, holding a reference to
 * it and no lock (the registry lock is held only to collect them, never
 * while fn formats). */
void bk_topics_each(void (*fn)(struct bk_topic *t, void *arg), void *arg, size_t max);
/* The same for the topics after the first skip in registry order (a page:
 * the order is stable while no topic comes or goes).  The registry lock is
 * held while skipping (O(skip)) and taking references, never during fn. */
void bk_topics_page(void (*fn)(struct bk_topic *t, void *arg), void *arg, size_t skip,
		    size_t max);
/* A topic's last seq (takes its lock). */
uint64_t bk_topic_seq(struct bk_topic *t);
size_t bk_topics_count(void);
/* Allocates the topic table at start: 0 or -ENOMEM. */
int bk_registry_init(void);

/* Pattern subscriptions (psub.c).  A subscription's topic or pattern. */
const char *bk_sub_name(const struct bk_sub *s, size_t *len);
/* A pattern's trie path costs a node per token: at most this many tokens,
 * so one connection's patterns stay within max_topics_per_connection x
 * BK_PATTERN_MAX_TOKENS nodes. */
#define BK_PATTERN_MAX_TOKENS 32
/* True when pat may be subscribed to (bk_pattern_valid, at most
 * BK_PATTERN_MAX_TOKENS tokens). */
static inline bool bk_psub_ok(const char *pat, size_t len)
{
	return bk_pattern_valid(pat, len) && bk_pattern_tokens(pat, len) <= BK_PATTERN_MAX_TOKENS;
}
/* Subscribes cl (on its thread) to pattern pat: 0, -EINVAL (not
 * bk_psub_ok), -EMLINK (max_topics_per_connection) or -ENOMEM. */
int bk_psub_add(struct bk_client *cl, const char *pat, size_t len);
/* Removes a pattern subscription (its client's thread). */
void bk_psub_remove(struct bk_sub *s);
/* Delivers m to this thread's pattern subscribers whose pattern matches its
 * topic, skipping connections stamped with gen and stamping those it
 * reaches.  Returns the deliveries. */
size_t bk_psub_fanout(struct bk_msg *m, uint64_t gen);
/* Sends a pattern subscription's drop count as
 * {"op":"gap","pattern":P,"dropped":N}. */
void bk_psub_send_gap(struct bk_sub *s);

/* Presence (presence.c).  RC_INFO_MAX: bytes of a client's ?info=. */
#define RC_INFO_MAX 128
struct bk_presence;
/* A record of cl for a topic's presence list (cl's thread); NULL: ENOMEM. */
struct bk_presence *bk_presence_new(const struct bk_client *cl);
/* Links / unlinks a record (topic lock held). */
void bk_presence_link(struct bk_topic *t, struct bk_presence *p);
void bk_presence_unlink(struct bk_topic *t, struct bk_presence *p);
void bk_presence_free(struct bk_presence *p);
/* Sends {"op":"join"|"leave","topic":…,"conn":…[,"user":…][,"info":…]}
 * to t's JSON subscribers (cl's thread, no lock held). */
void bk_presence_event(struct bk_topic *t, const struct bk_client *cl, bool join);
/* Answers {"op":"presence"} (at most 100 clients, then "truncated") or
 * {"op":"presence_stats"} (counts) for cl. */
void bk_presence_command(struct bk_client *cl, const struct rc_cmd *cmd, bool stats);

/* History (history.c): the ring of each topic plus one list of every
 * history message, oldest first, for the global limits. */
struct bk_msg *bk_hist_at(const struct bk_topic *t, size_t i);
struct bk_msg *bk_hist_append(struct bk_topic *t, struct bk_msg *m);
struct bk_msg *bk_hist_drop_oldest(struct bk_topic *t);
size_t bk_hist_expire(struct bk_topic *t, struct bk_msg **out, size_t max);
void bk_hist_trim(bool make_room, size_t budget);

/* Tombstones of removed topics (tombstone.c); registry lock held. */
uint64_t bk_tomb_take(const char *name, size_t len, uint32_t h, uint64_t *base, bool *exact);
void bk_tomb_put(const char *name, size_t len, uint32_t h, uint64_t seq, uint64_t base,
		 bool base_exact, uint64_t limit);

/* ---- Connections (client.c) ------------------------------------------------------ */

enum bk_mode { BK_MODE_JSON, BK_MODE_SUB, BK_MODE_PUB, BK_MODE_ECHO, BK_MODE_SSE };

struct bk_client {
	struct rc_conn *conn;
	uint8_t mode;
	bool deflate_shared;        /* may receive the shared compressed frames */
	bool closing;
	uint64_t gen;               /* the last fanout that reached it (psub.c) */
	_Atomic unsigned nsubs;     /* written by cl's thread, read by /connz */
	struct rc_list subs;
	struct rc_list close_link;  /* in its worker's closes until closed */
	double tokens;              /* JSON command rate limit bucket */
	uint64_t tokens_ms;
	uint64_t dropped;           /* commands rate-limited since the bucket was full */
	size_t topic_len;           /* raw modes */
	char topic[RC_TOPIC_MAX + 1];
	uint64_t from;              /* raw sub ?from= */
	bool has_from;
	uint64_t opened_ms;         /* for the close log line and /connz */
	/* Written by cl's thread only (relaxed load and store, no locked
	 * instruction), read by /connz from another thread. */
	_Atomic uint64_t msgs_out, bytes_out;
	_Atomic uint64_t queued;    /* queued bytes seen by its last delivery */
	struct rc_list conn_link;   /* in conns_w->conns from open to close */
	struct bk_worker *conns_w;
	bool ip_known;              /* ip is the peer's (topic_create_rate) */
	uint64_t id;                /* connection id, unique in this process (presence) */
	char *info;                 /* ?info= at connect (presence), or NULL */
	size_t info_len;
	struct bk_cauth *auth;      /* identity and grants (auth.c) */
	uint8_t ip[16];
};

/* Clients told about gaps and resets (JSON mode and event streams); raw
 * subscribers cannot be. */
static inline bool bk_client_hears_gaps(const struct bk_client *cl)
{
	return cl->mode == BK_MODE_JSON || cl->mode == BK_MODE_SSE;
}

/* Connection limits (ip_limit.c), the core's on_connect/on_disconnect:
 * every accepted socket counts against max_connections and, by its
 * address, max_connections_per_ip. */
int bk_on_connect(struct rc_conn *c);
void bk_on_disconnect(struct rc_conn *c);
/* One topic creation from ip, if its topic_create_rate bucket allows. */
bool bk_ip_may_create(const uint8_t ip[16]);
/* Forgets the creation buckets that are full again (housekeeping). */
void bk_ip_sweep(void);

/* The calling thread's list of open connections for /connz (WebSocket
 * connections from on_open, event streams once answered) and leaving it
 * (harmless for one that never joined). */
void bk_conns_add(struct bk_client *cl);
void bk_conns_del(struct bk_client *cl);

/* Queues one delivery of m to sub's connection, applying the slow-consumer
 * policy. */
void bk_deliver(struct bk_sub *s, struct bk_msg *m);
/* Queues a small JSON control frame (ack, err, gap) to cl. */
void bk_send_json(struct bk_client *cl, const char *p, size_t len);
void bk_send_gap(struct bk_client *cl, const char *topic, size_t tlen,
		 uint64_t from, uint64_t to);
/* Tells a JSON client that a topic's numbers up to seq are unknown to the
 * broker (its numbering cannot be vouched for there); seq + 1 follows. */
void bk_send_reset(struct bk_client *cl, const char *topic, size_t tlen, uint64_t seq);

int bk_on_upgrade(struct rc_conn *c, const struct rc_http_request *req);
extern const struct rc_handlers bk_handlers;

/* ---- HTTP API (http_api.c) --------------------------------------------------------- */

void bk_on_http(struct rc_conn *c, const struct rc_http_request *req,
		const uint8_t *body, size_t len);

/* One plain HTTP request being answered: its connection and the CORS
 * headers every answer to it carries. */
struct bk_http {
	struct rc_conn *c;
	const struct rc_http_request *req; /* for the access and error logs */
	char cors[320];
};

/* A growing text buffer for the few larger answers (/metrics, /topics). */
struct bk_text {
	char *p;
	size_t len, cap;
	bool oom;
};
void bk_tprintf(struct bk_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Answers 200 with t (500 if it ran out of memory) and frees it. */
void bk_respond_text(struct bk_http *h, struct bk_text *t, const char *type);

/* ---- Metrics (metrics.c) ----------------------------------------------------------- */

/* GET /metrics: Prometheus text format 0.0.4. */
void bk_metrics(struct bk_http *h);
/* Records, on the calling loop thread, that m is now queued to every local
 * subscriber (one observation per message per thread). */
void bk_observe_fanout(const struct bk_msg *m);
/* Records a connection's queued bytes as a delivery joins its queue. */
void bk_observe_queued(size_t bytes);

/* Embedded static files (generated at build time from clients/js). */
struct bk_file {
	const char *path;
	const char *type;
	const unsigned char *data;
	size_t len;
};
extern const struct bk_file bk_files[];
extern const size_t bk_nfiles;

/* Decodes a topic from a URL path segment into out (RC_TOPIC_MAX + 1 bytes);
 * returns its length or -EINVAL for an invalid topic. */
ssize_t bk_topic_from_path(struct rc_span seg, char *out);
/* A decimal number of up to 20 digits that fits 64 bits (no sign, no
 * blanks). */
bool bk_parse_u64(struct rc_span v, uint64_t *out);
/* "/ws", "/sub/", "/pub/" or "/echo": cl's endpoint (its mode). */
const char *bk_endpoint(const struct bk_client *cl);
/* A JSON error answer (http_api.c). */
void bk_http_error(struct bk_http *h, int status, const char *reason);
/* GET /presence/<topic>[?offset=&limit=]: a page of its presence. */
void bk_presence_http(struct bk_http *h, struct rc_span seg);
/* Sends an err for cmd (its id when it has one). */
void bk_send_err(struct bk_client *cl, const struct rc_cmd *cmd, const char *code,
		 const char *reason);
/* GET /connz (connz.c), admin only: a page of the open connections. */
void bk_connz(struct bk_http *h);
/* Paging of the listings: ?offset=N&limit=M, limit 1..1000, default 100.
 * False (after answering 400) on a bad value. */
bool bk_page_args(struct bk_http *h, size_t *offset, size_t *limit);

#endif
