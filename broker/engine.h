/* The engine: where a topic's seq, history and epoch come from, and how
 * messages travel between nodes.  `engine = memory` (the default) is the
 * registry of topic.c and history.c alone; `engine = redis` (engine_redis.c,
 * engine_sync.c) makes Redis the source: a publish on any node is one
 * script in Redis (next seq, history append, PUBLISH on the topic's
 * channel), every node delivers what its channel subscriptions bring, in
 * Redis's order, through the same fanout and compress-once as before.
 * Private to broker/. */
#ifndef RC_BROKER_ENGINE_H
#define RC_BROKER_ENGINE_H

#include "broker/broker.h"

/* What answers a publish once Redis has numbered it. */
enum bk_pub_kind {
	BK_PUB_RAW,   /* a /pub/ connection: nothing, or a close on failure */
	BK_PUB_JSON,  /* a /ws connection: an ack with the seq, or an err */
	BK_PUB_HTTP,  /* POST /publish: the deferred HTTP answer */
};

/* Reads the engine settings at start: 0, or -EINVAL (a bad redis_url,
 * printed).  Before the loops run. */
int bk_engine_init(const struct bk_config *cfg);
/* True when engine = redis. */
bool bk_engine_remote(void);
/* True when publishes can be served (memory: always; redis: connected). */
bool bk_engine_ready(void);
/* The epoch clients see in the welcome: the broker's own (memory) or the
 * one stored in Redis for its data set (redis; the broker's own until the
 * first connection).  Any thread; the text does not change under the
 * caller. */
const char *bk_engine_epoch(void);
/* Runs on loop 0 twice a second (posted by housekeeping): connects,
 * reconnects with backoff. */
void bk_engine_tick(void *arg);

/* Bytes of a publish's context (see bk_engine_publish). */
#define BK_PUB_CTX_MAX 320

/* Publishes through Redis (engine = redis), any loop thread.  c (kind
 * JSON, HTTP, RAW) is referenced until the answer; ctx (NULL: none, at
 * most BK_PUB_CTX_MAX bytes) is the JSON command's id, or the header
 * lines (CORS) an HTTP answer carries.  0 (the answer comes later), -ENOTCONN
 * (Redis unreachable), -EBUSY (too many publishes in flight), -ESHUTDOWN
 * (draining), -ENOMEM. */
int bk_engine_publish(const char *topic, size_t tlen, uint8_t opcode, const void *p,
		      size_t len, enum bk_pub_kind kind, struct rc_conn *c,
		      const struct rc_span *ctx);

/* Answers a deferred POST /publish on c's thread (http_api.c): 200 with
 * the seq and epoch, or the error's status. */
void bk_http_publish_done(struct rc_conn *c, int err, const char *topic, size_t tlen,
			  uint64_t seq, const char *epoch, struct rc_span cors);

/* A new subscription s (in its topic's list, next_seq = UINT64_MAX: gets
 * nothing yet) on the calling thread: the engine makes sure the node
 * listens to the topic's channel, reads seq and history from Redis, and
 * then s gets its ack, its replay and the live stream, in order, on this
 * thread.  0 or -ENOMEM (then s is not known to the engine). */
int bk_engine_subscribe(struct bk_sub *s, bool has_from, uint64_t from,
			const struct rc_span *ack_id);
/* s (known to the engine) leaves; its topic may stop being listened to. */
void bk_engine_unsubscribed(struct bk_sub *s);

/* /stats: ,"engine":{…} (name, and for redis: connected, reconnects,
 * commands in flight, publishes, channel messages, channels, the mean
 * publish round trip). */
void bk_engine_stats_json(struct bk_text *t);
/* /metrics: the ringcast_engine_* series. */
void bk_engine_metrics(struct bk_text *t);

#endif
