/* Server-Sent Events subscribers for the fanout scenario (--mode sse): a
 * byte stream per subscriber (rc_stream_connect) that sends
 * GET /events/<topic> and reads the event stream line by line.  The
 * welcome makes it ready; each msg event's data (the JSON envelope, whose
 * "data" is the publisher's JSON string) goes to rcb_fanout_got, the same
 * check and count as a WebSocket subscriber's message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/rcbench/rcbench.h"

/* A subscriber's parser: where the response is, and a line cut by a read. */
struct rcb_sse {
	bool status_seen;   /* the status line was read */
	bool body;          /* the head is over: event lines follow */
	uint32_t len, cap;  /* buf: a partial line */
	uint8_t buf[];
};

static size_t line_cap(const struct rcb_opts *o)
{
	return o->size + 1024; /* the envelope and its "data: " around a payload */
}

/* One per connection of t, in one block (freed by rcb_sse_free). */
int rcb_sse_setup(struct rcb_thread *t)
{
	size_t one = (sizeof(struct rcb_sse) + line_cap(t->o) + 15) & ~(size_t)15;
	uint8_t *mem = calloc(t->n ? t->n : 1, one);

	if (!mem)
		return -ENOMEM;
	for (unsigned i = 0; i < t->n; i++) {
		t->conns[i].sse = (struct rcb_sse *)(mem + (size_t)i * one);
		t->conns[i].sse->cap = (uint32_t)line_cap(t->o);
	}
	if (!t->n)
		free(mem);
	return 0;
}

void rcb_sse_free(struct rcb_thread *t)
{
	if (t->n)
		free(t->conns[0].sse);
	for (unsigned i = 0; i < t->n; i++)
		t->conns[i].sse = NULL;
}

static void sse_open(struct rc_conn *c)
{
	struct rcb_conn *bc = rc_conn_user(c);
	const struct rcb_opts *o = bc->t->o;
	char req[512];
	int n = snprintf(req, sizeof(req), "GET /events/%s%u HTTP/1.1\r\nHost: %s:%u\r\n"
			 "Accept: text/event-stream\r\n\r\n", o->topic_prefix, bc->topic, o->host,
			 o->port);

	bc->state = RCB_C_OPEN;
	if (rc_stream_send(c, req, (size_t)n) < 0)
		rc_conn_close(c, 1000, NULL, 0);
}

#define MSG "data: {\"op\":\"msg\""
#define WELCOME "data: {\"op\":\"welcome\""

/* One line without its end (LF, and a CR before it). */
static void line(struct rcb_conn *bc, const uint8_t *p, size_t n)
{
	struct rcb_sse *s = bc->sse;

	if (n && p[n - 1] == '\r')
		n--;
	if (!s->body) {
		if (!s->status_seen) {
			s->status_seen = true;
			if (n < 12 || memcmp(p + 8, " 200", 4) != 0) {
				fprintf(stderr, "sse: the broker answered '%.*s'\n", (int)(n < 80 ? n : 80),
					(const char *)p);
				bc->t->st->bad++;
				rc_conn_close(bc->c, 1000, NULL, 0);
			}
		}
		s->body = n == 0;
		return;
	}
	if (n >= sizeof(MSG) - 1 && memcmp(p, MSG, sizeof(MSG) - 1) == 0)
		rcb_fanout_got(bc, p + 6, n - 6);
	else if (bc->state == RCB_C_OPEN && n >= sizeof(WELCOME) - 1 &&
		 memcmp(p, WELCOME, sizeof(WELCOME) - 1) == 0)
		rcb_conn_ready(bc);
}

/* Lines are handled where they lie in the read; only one cut by the
 * read's end is copied. */
static void sse_data(struct rc_conn *c, const uint8_t *p, size_t n)
{
	struct rcb_conn *bc = rc_conn_user(c);
	struct rcb_sse *s = bc->sse;

	while (n) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) : n;

		if (s->len + k > s->cap) {
			bc->t->st->bad++;
			rc_conn_close(c, 1000, NULL, 0);
			return;
		}
		if (!nl || s->len) {
			memcpy(s->buf + s->len, p, k);
			s->len += (uint32_t)k;
			if (!nl)
				return;
			line(bc, s->buf, s->len);
			s->len = 0;
		} else {
			line(bc, p, k);
		}
		p += k + 1;
		n -= k + 1;
	}
}

static void sse_close(struct rc_conn *c, const char *why, size_t len)
{
	(void)len;
	rcb_conn_gone(rc_conn_user(c), why ? 1006 : 1000);
}

const struct rc_stream_handlers rcb_sse_handlers = {
	.on_open = sse_open, .on_data = sse_data, .on_close = sse_close,
};
