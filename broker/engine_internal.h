/* Private to broker/engine_redis.c and engine_sync.c: the Redis engine's
 * state, all of it owned by loop 0 (the connections live there; other
 * threads reach it by posting). */
#ifndef RC_BROKER_ENGINE_INTERNAL_H
#define RC_BROKER_ENGINE_INTERNAL_H

#include "broker/engine.h"
#include "broker/redis.h"

#define BK_EPOCH_LEN 24
/* Messages a topic holds while subscriptions are being synced (beyond,
 * the oldest go and the subscriber gets a gap). */
#define BK_ENGINE_BUF_MAX 4096
#define BK_ENGINE_BUF_BYTES (16u << 20)

enum chan_state { CHAN_OFF, CHAN_SUBSCRIBING, CHAN_LIVE };

/* A topic this node listens to. */
struct etopic {
	struct etopic *next;        /* hash chain */
	struct bk_topic *t;         /* referenced */
	unsigned nsubs;             /* local subscriptions known to the engine */
	enum chan_state chan;
	bool known;                 /* last and epoch known */
	bool synced;                /* channel messages go out as they come */
	uint64_t last;              /* last seq fanned out on this node */
	char epoch[BK_EPOCH_LEN];
	unsigned syncing;           /* sync scripts in flight */
	struct rc_list waiting;     /* struct subreq.link: wait for CHAN_LIVE */
	/* Channel messages seen while syncing (not fanned out yet if above
	 * last), oldest first, referenced. */
	struct bk_msg **buf;
	size_t nbuf, buf_bytes;
	uint64_t buf_lost;          /* highest seq dropped from buf */
};

/* A subscriber's (or the node's own, sub == NULL) sync with Redis. */
struct subreq {
	struct rc_list link;
	struct bk_topic *t;         /* referenced */
	struct bk_sub *sub;         /* NULL: the node's resync after a reconnect */
	uint64_t sub_id;
	unsigned thread;
	bool has_from, has_ack, failed;
	uint64_t from;
	struct bk_replay r;         /* the result */
	char epoch[BK_EPOCH_LEN];
	size_t id_len;
	char id[RC_CMD_ID_MAX];
};

/* One Redis server: a standalone one, or a Cluster master. */
struct enode {
	struct bk_redis_url url;
	struct bk_redis *cmd, *sub;     /* commands; pub/sub */
	bool cmd_ready, sub_ready;
	struct bk_resp chans;           /* channel commands of this turn, in order */
	uint64_t nchannels;             /* its count of our subscriptions (loop 0) */
};

#define BK_ENGINE_MAX_NODES 64
#define BK_ENGINE_MAX_SEEDS 16
#define BK_CLUSTER_SLOTS 16384

struct engine {
	bool remote, cluster;
	struct bk_redis_url seeds[BK_ENGINE_MAX_SEEDS]; /* redis_url */
	unsigned nseeds, seed_next;
	char *ca_file;                  /* redis_tls_ca */
	struct bk_redis_url url;        /* the seed of the current attempt */
	struct enode nodes[BK_ENGINE_MAX_NODES];
	unsigned nnodes;
	uint8_t slots[BK_CLUSTER_SLOTS]; /* Cluster: slot -> nodes[] index */
	struct bk_redis *probe;         /* Cluster: asks a seed for the slots */
	atomic_bool ready;              /* every node ready, epoch known */
	uint64_t next_try_ms, backoff_ms;
	char sha_pub[41], sha_sync[41];
	struct bk_resp setup;           /* SCRIPT LOADs, CLIENT SETNAME */
	struct bk_resp sub_setup;       /* CLIENT SETNAME */
	/* The data set's epoch: two texts, the current one by index, so a
	 * reader on another thread never sees one being written. */
	char epochs[2][BK_EPOCH_LEN];
	atomic_uint epoch_idx;
	bool epoch_known;
	char candidate[17];             /* offered when Redis has none */
	struct etopic **buckets;
	size_t nbuckets;
	bool flush_posted;
	_Atomic uint64_t inflight, inflight_bytes, published, received, reconnects, channels;
	_Atomic uint64_t rtt_ns_sum, rtt_count;
};

extern struct engine eng;

uint64_t bk__eng_now_ns(void);
struct etopic *bk__eng_find(const char *name, size_t len);
/* The hash chain a topic's etopic is on. */
struct etopic **bk__eng_bucket(const char *name, size_t len);
/* engine_conn.c: the command connection of the node that serves key (its
 * Cluster slot), or NULL when not connected. */
struct bk_redis *bk__eng_cmd_for(const char *key, size_t len);
/* True for a reply that says the Cluster changed (MOVED, ASK,
 * CLUSTERDOWN, TRYAGAIN, LOADING): every connection is made again (after
 * this turn) with a fresh slot map; the command was not applied. */
bool bk__eng_redirect(const redisReply *r);
/* Drops every connection and connects again (after this turn). */
void bk__eng_reconnect(const char *why);
uint64_t bk__eng_channels(void);
void bk__eng_count_channels(void);
/* engine_redis.c: a reply no command waits for, from node's pub/sub
 * connection (messages, (un)subscribe confirmations). */
void bk__eng_on_push(struct enode *node, redisReply *rep);
/* Queues a (S)SUBSCRIBE (or (S)UNSUBSCRIBE) of t's channel on its node,
 * sent at the end of this loop turn together with the others. */
void bk__eng_chan(const struct bk_topic *t, bool subscribe);
/* A message from Redis, numbered: m->seq set. */
struct bk_msg *bk__eng_msg(struct bk_topic *t, uint64_t seq, uint8_t op, uint64_t time_ms,
			   const void *p, size_t len);

/* engine_sync.c */
void bk__eng_sub_arrive(void *arg);
void bk__eng_unsub_arrive(void *arg);
void bk__eng_chan_live(struct etopic *et);
void bk__eng_on_message(struct etopic *et, struct bk_msg *m);
/* The connections are back: every topic listened to is subscribed again
 * and resynced once confirmed. */
void bk__eng_resubscribe(void);
/* The connections are gone: syncs wait for the next connection. */
void bk__eng_lost(void);

#endif
