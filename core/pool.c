/* Size-class pools and refcounted buffers.
 *
 * Each loop thread owns a pool; objects are carved from chunks of at least
 * 256 KiB, so steady-state traffic recycles memory without calling malloc.
 * Frames are shared across threads, so the last reference may drop on any
 * thread: such frees go on the owner's lock-free remote list (a Treiber
 * stack, push-only from foreign threads, drained whole by the owner). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define RC_POOL_LARGE 0xffffffffu
#define RC_POOL_MAGIC 0x72637031u /* "rcp1" */
#define RC_CHUNK_MIN (256u << 10)

struct rc_chunk {
	struct rc_chunk *next;
	size_t size;
};

struct rc_pool {
	struct rc_pool_obj *free[RC_POOL_CLASSES];
	_Atomic(struct rc_pool_obj *) remote;
	struct rc_chunk *chunks;
	size_t footprint;
	bool shared;              /* the off-loop fallback: guarded by lock */
	pthread_mutex_t lock;
};

static _Thread_local struct rc_pool *current_pool;
static struct rc_pool *shared_pool;
static pthread_once_t shared_once = PTHREAD_ONCE_INIT;

static void shared_init(void)
{
	shared_pool = rc__pool_new();
	if (shared_pool)
		shared_pool->shared = true;
}

/* Creates an empty pool; chunks are added on demand. */
struct rc_pool *rc__pool_new(void)
{
	struct rc_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

/* Frees every chunk.  Objects still referenced elsewhere become invalid:
 * call only when all users are gone. */
void rc__pool_free(struct rc_pool *p)
{
	struct rc_chunk *c, *next;

	if (!p)
		return;
	for (c = p->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* The pool of the calling thread's loop, or the shared fallback. */
struct rc_pool *rc__pool_current(void)
{
	if (current_pool)
		return current_pool;
	pthread_once(&shared_once, shared_init);
	return shared_pool;
}

/* Makes p the calling thread's pool (a loop calls this on its thread). */
void rc__pool_set_current(struct rc_pool *p)
{
	current_pool = p;
}

static unsigned size_class(size_t size)
{
	unsigned shift = RC_POOL_MIN_SHIFT;

	while (((size_t)1 << shift) < size)
		shift++;
	return shift - RC_POOL_MIN_SHIFT;
}

static void drain_remote(struct rc_pool *p)
{
	struct rc_pool_obj *o = atomic_exchange_explicit(&p->remote, NULL,
							  memory_order_acquire);
	while (o) {
		struct rc_pool_obj *next = o->next;
		o->next = p->free[o->cls];
		p->free[o->cls] = o;
		o = next;
	}
}

static int grow(struct rc_pool *p, unsigned cls)
{
	size_t osize = ((size_t)1 << (cls + RC_POOL_MIN_SHIFT)) + sizeof(struct rc_pool_obj);
	size_t n = RC_CHUNK_MIN / osize;
	struct rc_chunk *c;
	uint8_t *at;

	if (n < 4)
		n = 4;
	c = malloc(sizeof(*c) + 16 + n * osize);
	if (!c)
		return -ENOMEM;
	c->size = n * osize;
	c->next = p->chunks;
	p->chunks = c;
	p->footprint += c->size;
	at = (uint8_t *)(((uintptr_t)(c + 1) + 15) & ~(uintptr_t)15);
	for (size_t i = 0; i < n; i++, at += osize) {
		struct rc_pool_obj *o = (struct rc_pool_obj *)at;
		o->cls = cls;
		o->magic = RC_POOL_MAGIC;
		o->next = p->free[cls];
		p->free[cls] = o;
	}
	return 0;
}

static void *alloc_locked(struct rc_pool *p, size_t size)
{
	struct rc_pool_obj *o;
	unsigned cls;

	if (size > ((size_t)1 << RC_POOL_MAX_SHIFT)) {
		o = malloc(sizeof(*o) + size);
		if (!o)
			return NULL;
		o->cls = RC_POOL_LARGE;
		o->magic = RC_POOL_MAGIC;
		o->pool = (struct rc_pool *)(uintptr_t)size; /* remembered size */
		return o + 1;
	}
	cls = size_class(size);
	if (!p->free[cls])
		drain_remote(p);
	if (!p->free[cls] && grow(p, cls) < 0)
		return NULL;
	o = p->free[cls];
	p->free[cls] = o->next;
	o->pool = p;
	return o + 1;
}

/* Returns an object of at least size bytes (16-aligned) or NULL. */
void *rc__pool_alloc(struct rc_pool *p, size_t size)
{
	void *r;

	if (!p->shared)
		return alloc_locked(p, size);
	pthread_mutex_lock(&p->lock);
	r = alloc_locked(p, size);
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* Returns ptr to its pool; any thread. */
void rc__pool_release(void *ptr)
{
	struct rc_pool_obj *o;
	struct rc_pool *p;

	if (!ptr)
		return;
	o = (struct rc_pool_obj *)ptr - 1;
	if (o->cls == RC_POOL_LARGE) {
		free(o);
		return;
	}
	p = o->pool;
	if (p == current_pool && !p->shared) {
		o->next = p->free[o->cls];
		p->free[o->cls] = o;
		return;
	}
	/* Foreign thread (or the shared pool): lock-free push. */
	o->next = atomic_load_explicit(&p->remote, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&p->remote, &o->next, o,
						      memory_order_release,
						      memory_order_relaxed))
		;
}

/* Usable bytes of a pool object. */
size_t rc__pool_usable(const void *ptr)
{
	const struct rc_pool_obj *o = (const struct rc_pool_obj *)ptr - 1;

	if (o->cls == RC_POOL_LARGE)
		return (size_t)(uintptr_t)o->pool;
	return (size_t)1 << (o->cls + RC_POOL_MIN_SHIFT);
}

/* Chunk bytes held by p. */
size_t rc__pool_footprint(const struct rc_pool *p)
{
	return p->footprint;
}

/* Public pooled allocation (see rc.h). */
void *rc_mem_alloc(size_t size)
{
	return rc__pool_alloc(rc__pool_current(), size);
}

/* Returns memory from rc_mem_alloc; any thread. */
void rc_mem_free(void *p)
{
	rc__pool_release(p);
}

/* ---- rc_buf ------------------------------------------------------------------ */

/* Allocates a buffer from the calling thread's pool. */
struct rc_buf *rc_buf_new(size_t cap)
{
	struct rc_buf *b = rc__pool_alloc(rc__pool_current(), sizeof(*b) + cap);

	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->len = 0;
	b->cap = rc__pool_usable(b) - sizeof(*b);
	return b;
}

/* The bytes of b. */
uint8_t *rc_buf_data(struct rc_buf *b) { return b->data; }
/* Bytes in use. */
size_t rc_buf_len(const struct rc_buf *b) { return b->len; }
/* Bytes available. */
size_t rc_buf_cap(const struct rc_buf *b) { return b->cap; }
/* Sets the bytes in use (at most cap). */
void rc_buf_set_len(struct rc_buf *b, size_t len) { b->len = len; }

/* Takes a reference; any thread. */
struct rc_buf *rc_buf_ref(struct rc_buf *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

/* Drops a reference; the last one returns b to its pool.  Any thread. */
void rc_buf_unref(struct rc_buf *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		rc__pool_release(b);
}

/* Makes sure *bp has room for need more bytes, growing by doubling from the
 * pool.  Returns 0 or -ENOMEM. */
int rc__buf_reserve(struct rc_buf **bp, size_t need)
{
	struct rc_buf *b = *bp, *nb;
	size_t cap;

	if (b && b->cap - b->len >= need)
		return 0;
	cap = b ? b->cap * 2 : 1024;
	while (cap < (b ? b->len : 0) + need)
		cap *= 2;
	nb = rc_buf_new(cap);
	if (!nb)
		return -ENOMEM;
	if (b) {
		memcpy(nb->data, b->data, b->len);
		nb->len = b->len;
		rc_buf_unref(b);
	}
	*bp = nb;
	return 0;
}

/* Encodes one shareable server frame (see rc.h). */
struct rc_buf *rc_frame_encode(uint8_t opcode, const uint8_t *payload,
			       size_t len, struct rc_deflater *d)
{
	struct rc_buf *b;
	size_t hl;

	if (d && len > 0) {
		size_t bound = rc_deflate_bound(len);
		ssize_t n;

		b = rc_buf_new(RC_FRAME_MAX_HEADER + bound);
		if (!b)
			return NULL;
		n = rc_deflate_once(d, payload, len, b->data + RC_FRAME_MAX_HEADER,
				    b->cap - RC_FRAME_MAX_HEADER);
		if (n >= 0) {
			uint8_t hdr[RC_FRAME_MAX_HEADER];
			hl = rc_frame_write_header(hdr, opcode, true, true, (uint64_t)n, NULL);
			memmove(b->data + hl, b->data + RC_FRAME_MAX_HEADER, (size_t)n);
			memcpy(b->data, hdr, hl);
			b->len = hl + (size_t)n;
			return b;
		}
		rc_buf_unref(b); /* did not fit: send it plain */
	}
	b = rc_buf_new(RC_FRAME_MAX_HEADER + len);
	if (!b)
		return NULL;
	hl = rc_frame_write_header(b->data, opcode, true, false, len, NULL);
	if (len)
		memcpy(b->data + hl, payload, len);
	b->len = hl + len;
	return b;
}
