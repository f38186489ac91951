/* A Redis client on the broker's loops (redis_conn.c): the URL parser, the
 * RESP command writer, and one connection with pipelined commands whose
 * replies (parsed by hiredis's sans-I/O redisReader) go to callbacks in the
 * order the commands were sent.  Private to broker/. */
#ifndef RC_BROKER_REDIS_H
#define RC_BROKER_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "core/rc.h"
#include "proto/http.h"

/* ---- URLs ------------------------------------------------------------------ */

struct bk_redis_url {
	char addr[300];      /* "tcp://host:port" or "tls://host:port" for rc_stream_connect */
	char user[128];      /* "" for the default user */
	char pass[256];      /* "": no AUTH */
	unsigned db;         /* SELECT (0: none sent) */
	bool tls;
	const char *ca_file; /* tls: verify with it (not parsed; NULL: the system's CAs) */
};

/* Parses one "redis://[[user]:pass@]host[:port][/db]" or "rediss://…"
 * (port 6379 by default; user and password percent-decoded; host may be
 * "[v6]").  Pure: no allocation.  0 or -EINVAL. */
int bk_redis_url_parse(const char *url, size_t len, struct bk_redis_url *out);

/* Parses a comma-separated list (blanks after commas allowed) into out[0..max)
 * (*n set): 0, or -EINVAL with *bad the item that failed (or an empty
 * list).  Items past max are ignored. */
int bk_redis_urls_parse(const char *list, struct bk_redis_url *out, unsigned max,
			unsigned *n, struct rc_span *bad);

/* ---- RESP ------------------------------------------------------------------ */

/* A growing buffer of encoded commands. */
struct bk_resp {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Appends raw bytes (already encoded commands). */
void bk_resp_put(struct bk_resp *b, const void *p, size_t n);
/* Appends one command, argc arguments of lens[i] bytes each. */
void bk_resp_cmd(struct bk_resp *b, unsigned argc, const char *const *argv,
		 const size_t *lens);
void bk_resp_free(struct bk_resp *b);

/* ---- Names and payloads ------------------------------------------------------ */

/* A topic's key ("rc:{T}" + suffix: ":m" its seq and epoch, ":h" its
 * history) or channel (suffix ""), with '%' and '}' of the name
 * percent-encoded, so the hash tag is the whole name: one Cluster slot per
 * topic.  Returns the length (out NUL-terminated; cap of at least
 * 3 * len + 16 holds any name). */
size_t bk_redis_key(char *out, size_t cap, const char *name, size_t len, const char *suffix);
/* The topic of channel ch into out (RC_TOPIC_MAX + 1 bytes): its length,
 * or -EINVAL when ch is not one of ours. */
ssize_t bk_redis_chan_topic(const char *ch, size_t n, char *out);

/* What PUB_SCRIPT publishes: "<seq>:<epoch>:<opcode>:<time ms>:<payload>". */
struct bk_redis_payload {
	uint64_t seq, time_ms;
	uint8_t opcode;           /* RC_OP_TEXT or RC_OP_BINARY */
	char epoch[24];
	const char *data;         /* inside the parsed bytes */
	size_t len;
};
/* Parses p[0..n): 0 or -EINVAL. */
int bk_redis_payload_parse(const char *p, size_t n, struct bk_redis_payload *out);

/* ---- A connection ---------------------------------------------------------- */

struct bk_redis;

/* A command's reply, or r == NULL when the connection went before it
 * came.  The reply is freed after the call. */
typedef void (*bk_redis_reply_cb)(void *arg, redisReply *r);

struct bk_redis_handlers {
	/* Connected, authenticated, database selected, scripts loaded. */
	void (*on_ready)(struct bk_redis *r);
	/* A reply no command waits for (pub/sub messages and confirmations). */
	void (*on_push)(struct bk_redis *r, redisReply *reply);
	/* Gone (why says how); r is freed after this returns.  Not called
	 * after bk_redis_close(). */
	void (*on_lost)(struct bk_redis *r, const char *why);
};

/* Most commands in flight on one connection (then -ENOBUFS). */
#define BK_REDIS_MAX_INFLIGHT 65536

/* Dials u on loop l (loop thread).  setup: commands sent first, after AUTH
 * and SELECT, whose replies must not be errors (e.g. SCRIPT LOAD); NULL or
 * an encoded buffer.  NULL on failure (errno). */
struct bk_redis *bk_redis_open(struct rc_loop *l, const struct bk_redis_url *u,
			       const struct bk_resp *setup, unsigned nsetup,
			       const struct bk_redis_handlers *h, void *user);
void *bk_redis_user(const struct bk_redis *r);
bool bk_redis_ready(const struct bk_redis *r);
/* Sends an encoded command whose reply goes to cb(arg): 0, -EPIPE (not
 * ready), -ENOBUFS (too many in flight or the socket's queue full), or
 * -ENOMEM; on error cb is never called. */
int bk_redis_call(struct bk_redis *r, const struct bk_resp *cmd, bk_redis_reply_cb cb,
		  void *arg);
/* Sends encoded commands whose replies go to on_push (SUBSCRIBE …). */
int bk_redis_send(struct bk_redis *r, const struct bk_resp *cmd);
/* Commands waiting for their replies. */
unsigned bk_redis_inflight(const struct bk_redis *r);
/* Closes r: every waiting callback gets NULL (now), on_lost is not called,
 * r is freed once the socket is gone. */
void bk_redis_close(struct bk_redis *r);

#endif
