/* Private to broker/: topics, messages, subscriptions, workers, stats. */
#ifndef RC_BROKER_BROKER_H
#define RC_BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "broker/config.h"
#include "core/list.h"
#include "core/rc.h"
#include "proto/json.h"

struct rc_topic;
struct rc_msg;

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
	BK_NSTATS
};

struct bk_worker {
	unsigned idx;             /* its loop: rc_server_loop(bk.srv, idx) */
	struct rc_deflater deflater; /* compress-once scratch, window 15 */
	bool deflater_ready;
	_Atomic uint64_t stats[BK_NSTATS];
	char pad[64];
};

/* ---- The broker ------------------------------------------------------------- */

struct bk_broker {
	struct rc_server *srv;
	_Atomic(struct rc_config *) cfg; /* swapped whole on SIGHUP */
	unsigned nthreads;
	struct bk_worker *workers;
	char epoch[24];                  /* changes at every start */
	_Atomic uint64_t conns;          /* WebSocket connections, all threads */
	_Atomic uint64_t hist_bytes;     /* payload bytes held by histories */
	uint64_t started_ms;
};

extern struct bk_broker bk;

/* The worker of the calling loop thread. */
struct bk_worker *bk_worker(void);
static inline const struct rc_config *bk_cfg(void)
{
	return atomic_load_explicit(&bk.cfg, memory_order_acquire);
}
static inline void bk_stat_add(enum bk_stat s, int64_t n)
{
	atomic_fetch_add_explicit(&bk_worker()->stats[s], (uint64_t)n, memory_order_relaxed);
}
uint64_t bk_stat_sum(enum bk_stat s);

/* ---- Messages (msg.c) ----------------------------------------------------------
 * One per publish, refcounted; frames built lazily, at most once each. */

enum bk_variant { BK_RAW, BK_RAW_Z, BK_JSON, BK_JSON_Z, BK_NVARIANTS };

struct rc_msg {
	atomic_uint refs;
	uint8_t opcode;            /* RC_OP_TEXT or RC_OP_BINARY */
	uint64_t seq;
	uint64_t time_ms;
	struct rc_topic *topic;    /* holds a topic reference */
	pthread_mutex_t lock;      /* guards frames[] construction */
	struct rc_buf *frames[BK_NVARIANTS];
	size_t len;
	uint8_t data[];            /* the payload, copied once */
};

struct rc_msg *bk_msg_new(struct rc_topic *t, uint8_t opcode, const void *p, size_t len);
void bk_msg_ref(struct rc_msg *m);
void bk_msg_unref(struct rc_msg *m);
/* The frame for a variant; built on first use.  NULL on out of memory. */
struct rc_buf *bk_msg_frame(struct rc_msg *m, enum bk_variant v);

/* ---- Topics and subscriptions (topic.c) -------------------------------------- */

struct bk_client;

struct bk_sub {
	struct rc_list tlink;       /* topic->local[worker] */
	struct rc_list clink;       /* client->subs */
	struct rc_topic *topic;
	struct bk_client *cl;
	uint64_t min_seq;           /* deliveries below this are replays' */
	uint64_t drop_from;         /* drop policy: first skipped seq, 0 if none */
};

struct rc_topic {
	struct rc_topic *hnext;
	pthread_mutex_t lock;
	uint64_t seq;               /* last assigned */
	unsigned refs;              /* guarded by the registry lock */
	_Atomic unsigned nsubs;
	unsigned *nsubs_thread;     /* per worker, guarded by lock */
	_Atomic unsigned *pending;  /* per worker: fanouts posted to it, not yet run */
	struct rc_list *local;      /* per worker; only that worker touches it */
	struct rc_msg **hist;       /* ring of the last history_size messages */
	size_t hist_cap, hist_head, hist_len;
	uint32_t hash;
	size_t name_len;
	char name[];
};

struct rc_topic *bk_topic_get(const char *name, size_t len, bool create);
void bk_topic_ref(struct rc_topic *t);
void bk_topic_put(struct rc_topic *t);
/* Publishes (any loop thread).  *subscribers gets the count at publish. */
int bk_publish(const char *topic, size_t tlen, uint8_t opcode, const void *p,
	       size_t len, uint64_t *seq, unsigned *subscribers);
/* Subscribes client cl (JSON or raw).  has_from: replay history from seq
 * `from` on (a gap first when history does not reach back), then live.
 * ack_id not NULL: queue the JSON ack (with the topic's current seq) before
 * the replay.  *cur gets the topic's last seq. */
int bk_subscribe(struct bk_client *cl, const char *topic, size_t tlen, bool has_from,
		 uint64_t from, const struct rc_span *ack_id, uint64_t *cur);
int bk_unsubscribe(struct bk_client *cl, const char *topic, size_t tlen);
void bk_unsubscribe_all(struct bk_client *cl);
/* Calls fn for each topic (registry locked; fn must not call back in). */
void bk_topics_each(void (*fn)(struct rc_topic *t, void *arg), void *arg);
size_t bk_topics_count(void);
void bk_registry_init(void);

/* ---- Connections (client.c) ------------------------------------------------------ */

enum bk_mode { BK_MODE_JSON, BK_MODE_SUB, BK_MODE_PUB, BK_MODE_ECHO };

struct bk_client {
	struct rc_conn *conn;
	uint8_t mode;
	bool deflate_shared;        /* may receive the shared compressed frames */
	bool closing;
	unsigned nsubs;
	struct rc_list subs;
	double tokens;              /* JSON command rate limit bucket */
	uint64_t tokens_ms;
	unsigned errors_in_row;
	size_t topic_len;           /* raw modes */
	char topic[RC_TOPIC_MAX + 1];
	uint64_t from;              /* raw sub ?from= */
	bool has_from;
	bool ip_counted;            /* counted in max_connections_per_ip */
	struct bk_cauth *auth;      /* identity and grants (auth.c) */
	uint8_t ip[16];
};

/* Per-IP connection counts (ip_limit.c). */
bool bk_ip_acquire(const uint8_t ip[16], uint64_t limit);
void bk_ip_release(const uint8_t ip[16]);

/* Queues one delivery of m to sub's connection, applying the slow-consumer
 * policy. */
void bk_deliver(struct bk_sub *s, struct rc_msg *m);
/* Queues a small JSON control frame (ack, err, gap) to cl. */
void bk_send_json(struct bk_client *cl, const char *p, size_t len);
void bk_send_gap(struct bk_client *cl, const char *topic, size_t tlen,
		 uint64_t from, uint64_t to);

int bk_on_upgrade(struct rc_conn *c, const struct rc_http_request *req);
extern const struct rc_handlers bk_handlers;

/* ---- HTTP API (http_api.c) --------------------------------------------------------- */

void bk_on_http(struct rc_conn *c, const struct rc_http_request *req,
		const uint8_t *body, size_t len);

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

#endif
