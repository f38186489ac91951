/* Server-Sent Events (sse.c): GET /events/<topic>[,<topic>...] streams a
 * topic's messages as text/event-stream, with the same registry, history,
 * slow-consumer policy, budget and access control as WebSocket subscribers.
 * Private to broker/; see broker/PROTOCOL.md, "Server-Sent Events". */
#ifndef RC_BROKER_SSE_H
#define RC_BROKER_SSE_H

#include "broker/broker.h"

/* GET or HEAD /events/<list> (list: the rest of the path).  origin_denied:
 * a cross-origin page not in cors_origins (refused with 403).  Answers an
 * error, or turns the connection into an event stream. */
void bk_sse_request(struct bk_http *h, struct rc_span list, bool origin_denied);

/* At start, after the workers: the per-thread stream lists.  0 or -ENOMEM. */
int bk_sse_start(unsigned nthreads);
/* Housekeeping (every 50 ms): once per sse_keepalive, asks every thread
 * with streams to send keep-alive comments and to close stalled streams. */
void bk_sse_tick(void);

/* The message variant a stream gets: a whole event with its own id (a
 * stream of one topic), or the event without id (several topics: the id,
 * which carries every topic's position, follows per stream). */
enum bk_variant bk_sse_variant(const struct bk_client *cl);
/* Builds m's event from its JSON envelope json[0..len) (msg.c, once per
 * message and variant).  Returns a buffer with refcount 1, or NULL. */
struct rc_buf *bk_sse_build(const struct bk_msg *m, const uint8_t *json, size_t len,
			    enum bk_variant v);
/* Queues the event ev of m to s's stream (bk_deliver).  Same returns as
 * bk_io.send. */
int bk_sse_send_msg(struct bk_sub *s, const struct bk_msg *m, struct rc_buf *ev);
/* Queues a control event (gap, reset) whose JSON is json[0..len): the
 * stream's position in topic moves to pos. */
void bk_sse_send_control(struct bk_client *cl, const char *event, const char *topic,
			 size_t tlen, uint64_t pos, const char *json, size_t len);

#endif
