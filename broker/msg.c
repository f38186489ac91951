/* Messages: one refcounted object per publish, holding the payload once.
 * Its wire frames are built on first use, at most once per variant (raw or
 * JSON envelope, plain or deflated), and shared by every subscriber on every
 * thread: compression happens once however many subscribers there are. */
#include <errno.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/sse.h"

/* Creates a message for topic t (taking a topic reference) with a copy of
 * the payload, made in place in its raw frame.  NULL on out of memory. */
struct bk_msg *bk_msg_new(struct bk_topic *t, uint8_t opcode, const void *p, size_t len)
{
	struct bk_msg *m = rc_mem_alloc(sizeof(*m));
	uint8_t *data;

	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	if (!(m->frames[BK_RAW] = rc_frame_new(opcode, len, &data))) {
		rc_mem_free(m);
		return NULL;
	}
	atomic_init(&m->refs, 1);
	m->opcode = opcode;
	m->len = len;
	if (len)
		memcpy(data, p, len);
	m->data = data;
	pthread_mutex_init(&m->lock, NULL);
	m->topic = t;
	bk_topic_ref(t);
	return m;
}

/* Takes a reference; any thread. */
void bk_msg_ref(struct bk_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

/* Drops a reference; the last frees the frames, the topic reference and the
 * message.  Any thread. */
void bk_msg_unref(struct bk_msg *m)
{
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (int v = 0; v < BK_NVARIANTS; v++)
		if (m->frames[v])
			rc_buf_unref(m->frames[v]);
	bk_topic_put(m->topic);
	pthread_mutex_destroy(&m->lock);
	rc_mem_free(m);
}

static struct rc_deflater *scratch_deflater(void)
{
	struct bk_worker *w = bk_worker();

	if (!w->deflater_ready) {
		if (rc_deflater_init(&w->deflater, 15, true, 6) < 0)
			return NULL;
		w->deflater_ready = true;
	}
	return &w->deflater;
}

static struct rc_buf *build_json(struct bk_msg *m)
{
	struct bk_topic *t = m->topic;
	enum rc_json_data kind = rc_json_data_kind(m->data, m->len, m->opcode == RC_OP_TEXT);
	size_t n = rc_json_msg_len(t->name, t->name_len, m->seq, m->data, m->len, kind);
	uint8_t *body;
	struct rc_buf *b;

	if (m->event) { /* join/leave: the text is the whole envelope */
		m->json_len = m->len;
		return rc_frame_encode(RC_OP_TEXT, m->data, m->len, NULL);
	}
	b = rc_frame_new(RC_OP_TEXT, n, &body);
	if (!b)
		return NULL;
	if (rc_json_write_msg((char *)body, n, t->name, t->name_len,
			      m->seq, m->data, m->len, kind) != (ssize_t)n) {
		rc_buf_unref(b);
		return NULL;
	}
	m->json_len = n;
	return b;
}

/* Published with release order: bk_msg_frame reads without the lock. */
static void set_frame(struct bk_msg *m, enum bk_variant v, struct rc_buf *b)
{
	__atomic_store_n(&m->frames[v], b, __ATOMIC_RELEASE);
}

/* Called with m->lock held. */
static struct rc_buf *build(struct bk_msg *m, enum bk_variant v)
{
	struct rc_buf *json;
	struct rc_deflater *d;

	if (m->frames[v])
		return m->frames[v];
	switch (v) {
	case BK_RAW_Z:
		if (!(d = scratch_deflater()))
			return build(m, BK_RAW);
		bk_stat_add(BK_DEFLATES, 1);
		set_frame(m, v, rc_frame_encode(m->opcode, m->data, m->len, d));
		break;
	case BK_JSON:
		set_frame(m, v, build_json(m));
		break;
	case BK_JSON_Z:
		if (!(json = build(m, BK_JSON)) || !(d = scratch_deflater()))
			return build(m, BK_JSON);
		/* The envelope's text: the JSON frame's last json_len bytes. */
		bk_stat_add(BK_DEFLATES, 1);
		set_frame(m, v, rc_frame_encode(RC_OP_TEXT, rc_buf_data(json) + rc_buf_len(json) -
					       m->json_len, m->json_len, d));
		break;
	case BK_SSE:
	case BK_SSE_BODY:
		if (!(json = build(m, BK_JSON)))
			return NULL;
		set_frame(m, v, bk_sse_build(m, rc_buf_data(json) + rc_buf_len(json) - m->json_len,
					     m->json_len, v));
		break;
	default:
		return NULL;
	}
	return m->frames[v];
}

/* The frame for variant v, built on first use (see broker.h). */
struct rc_buf *bk_msg_frame(struct bk_msg *m, enum bk_variant v)
{
	struct rc_buf *b;

	/* Fast path: built frames never change once published. */
	b = __atomic_load_n(&m->frames[v], __ATOMIC_ACQUIRE);
	if (b)
		return b;
	pthread_mutex_lock(&m->lock);
	b = build(m, v);
	pthread_mutex_unlock(&m->lock);
	return b;
}
