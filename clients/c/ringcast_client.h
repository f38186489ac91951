/* ringcast C client: publish and subscribe over a broker's JSON mode
 * ("GET /ws", broker/PROTOCOL.md), with resume, reconnect and client-side
 * pacing; plus HTTP publish.  Two ways to use it:
 *
 *  - the event-loop API (rc_pubsub_new ... on an rc_loop of core/rc.h):
 *    every function runs on the loop's thread, callbacks too;
 *  - the blocking API (rc_pubsub_open_blocking ...) for small programs: the
 *    library runs its own loop on a thread it owns, and each call waits on
 *    the calling thread for its answer or its timeout.  (core/rc.h has no
 *    way to run a loop for a while and keep its connections - rc_loop_stop
 *    drains them - so the loop cannot run on the caller's thread.)
 *
 * URLs: ws://HOST[:PORT][/PATH] or wss://HOST[:PORT][/PATH] (TLS, port 443
 * by default; the certificate is verified against the system CA store or
 * options.ca_file, with the host name, unless options.insecure).  With no
 * path (or "/") the library uses "/ws".  http://HOST[:PORT] is accepted too
 * and means the same server; https:// (TLS for the HTTP publish path) fails
 * with EPROTONOSUPPORT.
 *
 * Payload mapping (JSON mode carries every payload inside JSON):
 *  - publish: RC_PUBSUB_AUTO sends text that is one valid JSON value
 *    verbatim (subscribers receive exactly that text) and any other UTF-8
 *    text as a JSON string (raw subscribers on /sub/... then receive the
 *    quoted, escaped string; JSON subscribers decode it back).
 *    RC_PUBSUB_STRING always sends a string, RC_PUBSUB_JSON refuses text
 *    that is not valid JSON.  Binary payloads cannot travel in a "pub"
 *    command: publish them with rc_pubsub_http_publish().
 *  - receive: a "data" that is a JSON string is delivered decoded (its
 *    UTF-8 text), any other JSON value as its raw JSON text, and base64
 *    data ("enc":"base64") as the decoded bytes with binary = true.  So a
 *    text payload that was itself a JSON string literal arrives without its
 *    quotes; m->raw always holds the server's whole msg object.
 *
 * Delivery: messages of a topic arrive in seq order with no duplicate.
 * After a lost connection the client reconnects with exponential backoff
 * and resubscribes every topic with from = (last seq seen) + 1 when the
 * broker's epoch is unchanged, so nothing is missed that history still
 * holds (a gap event reports what it no longer holds).  When the epoch
 * changed (broker restarted) the numbers restarted: it resubscribes with
 * from = 1 and reports RC_PUBSUB_EPOCH.  Publishes not yet acknowledged
 * when the connection dropped are sent again (at-least-once: one whose ack
 * was lost may be published twice).
 *
 * Errors: functions return 0 or -errno.  Server "err" codes map to:
 * bad_topic -EINVAL, not_subscribed -ENOENT, too_many_topics -EMLINK,
 * rate_limited -EAGAIN, internal -EIO, anything else -EPROTO.  Connection
 * failures: -ECONNREFUSED, -EHOSTUNREACH (name not resolved), -ETIMEDOUT,
 * -ECONNABORTED (proxy or handshake failure), -ECONNRESET (lost).
 * rc_pubsub_error() has the text of the last failure. */
#ifndef RC_CLIENTS_RINGCAST_CLIENT_H
#define RC_CLIENTS_RINGCAST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

struct rc_pubsub;

/* One received message; valid during the callback (event API) or until
 * rc_pubsub_msg_free() (blocking API). */
struct rc_pubsub_msg {
	const char *topic;   /* NUL-terminated */
	size_t topic_len;
	uint64_t seq;
	const uint8_t *data; /* the payload, decoded as described above */
	size_t len;
	bool binary;         /* data came base64-encoded */
	const char *raw;     /* the server's msg object, verbatim */
	size_t raw_len;
};

enum rc_pubsub_event_kind {
	RC_PUBSUB_OPEN,   /* connected and welcomed; epoch known */
	RC_PUBSUB_EPOCH,  /* reconnected to a restarted broker (new epoch) */
	RC_PUBSUB_GAP,    /* topic: messages from..to are lost (history) */
	RC_PUBSUB_DOWN,   /* connection failed or lost; retry in delay_ms */
	RC_PUBSUB_CLOSED, /* for good (no reconnect, or given up); err, reason */
	RC_PUBSUB_ERROR,  /* a server err that answers no command (reason) */
	RC_PUBSUB_JOIN,   /* topic: connection conn (user, info) subscribed */
	RC_PUBSUB_LEAVE,  /* topic: connection conn (user, info) left */
};

struct rc_pubsub_event {
	enum rc_pubsub_event_kind kind;
	int err;             /* DOWN, CLOSED, ERROR: -errno */
	const char *reason;  /* DOWN, CLOSED, ERROR: text */
	const char *topic;   /* GAP, JOIN, LEAVE */
	uint64_t from, to;   /* GAP */
	unsigned delay_ms;   /* DOWN */
	uint64_t conn;       /* JOIN, LEAVE: the connection's id on the broker */
	const char *user;    /* JOIN, LEAVE: its token's user, or NULL */
	const char *info;    /* JOIN, LEAVE: its ?info=, or NULL */
};

typedef void (*rc_pubsub_msg_cb)(struct rc_pubsub *ps,
				 const struct rc_pubsub_msg *m, void *arg);
/* A command was answered: err 0 and the ack's seq (sub: the topic's last
 * seq when subscribing; pub: the seq assigned), or a negative errno. */
typedef void (*rc_pubsub_done_cb)(struct rc_pubsub *ps, int err, uint64_t seq,
				  void *arg);
typedef void (*rc_pubsub_event_cb)(struct rc_pubsub *ps,
				   const struct rc_pubsub_event *ev, void *user);

struct rc_pubsub_options {
	const char *socks5;          /* "socks5://[user:pass@]host:port" or NULL */
	const char *ca_file;         /* wss: trust these CAs instead of the system's */
	bool insecure;               /* wss: skip certificate checks (tests only) */
	const char *token;           /* NULL, or a connection token (JWT) or API
				      * key sent as "Authorization: Bearer" on
				      * every connect; at most 8192 bytes */
	unsigned connect_timeout_ms; /* TCP + proxy + handshake (10 s) */
	bool reconnect;              /* after a lost connection (true) */
	bool retry_first;            /* also when the first connect fails (false) */
	unsigned backoff_min_ms;     /* first retry delay (100 ms), doubling... */
	unsigned backoff_max_ms;     /* ...up to this (10 s); +-25% jitter */
	unsigned max_retries;        /* in a row before giving up; 0: never */
	unsigned cmd_rate;           /* commands sent per second (900; 0: no
				      * limit); the broker drops commands past
				      * its json_rate (1000/s by default) */
	unsigned cmd_burst;          /* commands sent at once at most (900) */
	unsigned max_inflight;       /* commands sent and unanswered (512) */
	bool deflate;                /* offer permessage-deflate (true) */
	rc_pubsub_event_cb on_event; /* NULL: none */
	void *user;                  /* rc_pubsub_user() */
};

/* Fills o with the defaults given in parentheses above. */
void rc_pubsub_options_default(struct rc_pubsub_options *o);

enum rc_pubsub_pub_flags {
	RC_PUBSUB_AUTO = 0,   /* valid JSON verbatim, else a string */
	RC_PUBSUB_STRING = 1, /* always a JSON string */
	RC_PUBSUB_JSON = 2,   /* must be valid JSON (-EINVAL otherwise) */
};

/* ---- Event-loop API (loop thread only) ------------------------------------ */

/* Creates a client for url on loop l (nothing is sent yet; the options are
 * copied).  Returns NULL with errno EINVAL (bad URL), EPROTONOSUPPORT (https://
 * or another scheme), ENOMEM, or EAGAIN (no thread for the timer). */
struct rc_pubsub *rc_pubsub_new(struct rc_loop *l, const char *url,
				const struct rc_pubsub_options *o);
/* Starts connecting.  Returns 0 or -errno when the attempt cannot even
 * start (-EHOSTUNREACH: name not resolved); later failures come as events. */
int rc_pubsub_connect(struct rc_pubsub *ps);
/* Subscribes to topic; cb gets every message.  has_from: resume from that
 * seq (history first, then live).  done (may be NULL) gets the ack.  Works
 * before the connection is open (queued).  topic may be a pattern
 * ("news.*", "news.>": rc_topic_is_pattern): cb gets every message of the
 * topics it matches (each message once, to the exact subscription if there
 * is one, else to the first matching pattern), live only (no from, no
 * resume after a reconnect).  Returns 0, -EINVAL (topic not valid, see
 * rc_topic_valid, or has_from with a pattern), -EEXIST (already
 * subscribed), -ENOMEM. */
int rc_pubsub_subscribe(struct rc_pubsub *ps, const char *topic, bool has_from,
			uint64_t from, rc_pubsub_msg_cb cb, void *arg,
			rc_pubsub_done_cb done, void *done_arg);
/* Unsubscribes (no more messages from here on).  Returns 0, -ENOENT (not
 * subscribed) or -ENOMEM. */
int rc_pubsub_unsubscribe(struct rc_pubsub *ps, const char *topic,
			  rc_pubsub_done_cb done, void *done_arg);
/* Publishes data (copied) to topic as flags say.  done (may be NULL) gets
 * the ack with the seq.  Returns 0, -EINVAL (bad topic, or not JSON with
 * RC_PUBSUB_JSON), -EILSEQ (not UTF-8 where a string is needed), -ENOMEM. */
int rc_pubsub_publish(struct rc_pubsub *ps, const char *topic,
		      const void *data, size_t len, unsigned flags,
		      rc_pubsub_done_cb done, void *done_arg);
/* Commands queued or sent and not answered yet. */
size_t rc_pubsub_pending(const struct rc_pubsub *ps);
/* True while connected and welcomed. */
bool rc_pubsub_is_open(const struct rc_pubsub *ps);
/* The broker's epoch ("" before the first welcome). */
const char *rc_pubsub_epoch(const struct rc_pubsub *ps);
/* Text of the last failure ("" if none). */
const char *rc_pubsub_error(const struct rc_pubsub *ps);
void *rc_pubsub_user(const struct rc_pubsub *ps);
/* Closes (1000) and frees once the connection is gone; pending commands get
 * done(-ECANCELED) now, and no callback runs after this returns. */
void rc_pubsub_free(struct rc_pubsub *ps);

/* ---- Blocking API (any one thread) ------------------------------------------
 * timeout_ms < 0 waits forever.  Messages of every subscription are queued
 * inside the client until rc_pubsub_next_message() takes them. */

/* Starts a loop thread and connects to url, waiting up to timeout_ms for the
 * welcome.  Returns the client or NULL with errno set (see above: EINVAL,
 * EPROTONOSUPPORT, ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT, ECONNABORTED);
 * when err_text is not NULL it receives the reason (err_cap bytes). */
struct rc_pubsub *rc_pubsub_open_blocking(const char *url,
					  const struct rc_pubsub_options *o,
					  int timeout_ms, char *err_text,
					  size_t err_cap);
/* Subscribes and waits for the ack (its seq in *seq if not NULL). */
int rc_pubsub_subscribe_blocking(struct rc_pubsub *ps, const char *topic,
				 bool has_from, uint64_t from, int timeout_ms,
				 uint64_t *seq);
int rc_pubsub_unsubscribe_blocking(struct rc_pubsub *ps, const char *topic,
				   int timeout_ms);
/* Publishes and waits for the ack (the seq in *seq if not NULL). */
int rc_pubsub_publish_blocking(struct rc_pubsub *ps, const char *topic,
			       const void *data, size_t len, unsigned flags,
			       int timeout_ms, uint64_t *seq);
/* Queues a publish without waiting for its ack (waits only while
 * max_inflight * 4 are outstanding).  Returns 0 or -errno (a local check
 * failed, or the client is closed); server errors surface in
 * rc_pubsub_flush(). */
int rc_pubsub_publish_nowait(struct rc_pubsub *ps, const char *topic,
			     const void *data, size_t len, unsigned flags);
/* Waits until every publish_nowait was answered.  Returns 0, the first
 * error since the previous flush, or -ETIMEDOUT. */
int rc_pubsub_flush(struct rc_pubsub *ps, int timeout_ms);
/* Waits for the next message.  Returns 0 with *m (free it with
 * rc_pubsub_msg_free), -ETIMEDOUT, or the error that closed the client for
 * good (-ECONNRESET, ...) once no message is left. */
int rc_pubsub_next_message(struct rc_pubsub *ps, int timeout_ms,
			   struct rc_pubsub_msg **m);
void rc_pubsub_msg_free(struct rc_pubsub_msg *m);
/* Closes the connection, stops the thread and frees everything. */
void rc_pubsub_close_blocking(struct rc_pubsub *ps);

/* ---- HTTP publish -------------------------------------------------------------- */

/* POST /publish/<topic> to the broker of url (ws:// or http://; the path is
 * ignored), blocking, one connection per call.  binary selects
 * application/octet-stream, else text/plain (must be UTF-8).  Returns 0 with
 * the seq, or -errno (-EINVAL bad URL or topic, -ECONNREFUSED, -ETIMEDOUT,
 * -EPROTO for an error status, with the status and body in err_text). */
int rc_pubsub_http_publish(const char *url, const char *topic,
			   const void *data, size_t len, bool binary,
			   int timeout_ms, uint64_t *seq, char *err_text,
			   size_t err_cap);
/* The same with "Authorization: Bearer <bearer>" (an API key; NULL: none);
 * bearer must not contain CR or LF (-EINVAL). */
int rc_pubsub_http_publish_bearer(const char *url, const char *topic,
				  const void *data, size_t len, bool binary,
				  const char *bearer, int timeout_ms, uint64_t *seq,
				  char *err_text, size_t err_cap);

#endif
