/* Size-class pools and refcounted buffers.
 *
 * Each loop thread owns a pool; objects are carved from chunks of about
 * 256 KiB (one object per chunk from the 128 KiB class up), so steady-state
 * traffic recycles memory without calling malloc.
 * Frames are shared across threads, so the last reference may drop on any
 * thread: such frees go on the owner's lock-free remote list (a Treiber
 * stack, push-only from foreign threads, drained whole by the owner).
 *
 * Memory goes back after a burst.  Each chunk keeps its own free list and
 * sits on one of three lists of its class: empty, partial, full.
 * Allocation takes from a partial chunk first, so empty chunks stay empty
 * and live objects gather in few chunks.  Once a second the loop calls
 * rc__pool_trim, which returns to the system (pages released with
 * MADV_DONTNEED, then freed: glibc alone would keep them) the empty chunks
 * no allocation needed during the whole last period, keeping one per class.
 * A steady load that moves across chunk boundaries thus never frees and
 * reallocates (the hot path stays free of malloc), and within two periods
 * after a burst a pool holds the chunks its live objects are in plus at
 * most one empty chunk per class (under 5 MiB in all).  The shared
 * fallback pool has no loop to call it: it frees past one empty chunk per
 * class at once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"

#define RC_CHUNK_MIN (256u << 10)
#define RC_TRIM_MS 1000u

enum { CH_EMPTY, CH_PARTIAL, CH_FULL, CH_LISTS };

struct rc_chunk {
	struct rc_chunk *next, *prev;  /* on its class's list */
	struct rc_pool *pool;
	struct rc_pool_obj *free;      /* this chunk's free objects */
	uint32_t nfree, nobj;
	uint16_t cls;
	uint8_t list;                  /* CH_*: the list it is on */
	size_t size;                   /* bytes allocated, header included */
};

struct rc_class {
	struct rc_chunk *lists[CH_LISTS];
	uint32_t nempty;
	uint32_t min_empty;            /* fewest empty chunks since the last trim */
};

struct rc_pool {
	struct rc_class cls[RC_POOL_CLASSES];
	_Atomic(struct rc_pool_obj *) remote;
	size_t footprint;
	uint64_t trimmed_ms;      /* when rc__pool_trim last looked */
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

/* Frees memory of len bytes at m, first handing its whole pages back to
 * the kernel: glibc keeps freed blocks it took from the heap (and, once a
 * large block was freed, takes blocks of that size from the heap too), so
 * free() alone would leave a burst's memory resident. */
static void release_memory(void *m, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	/* Past the first bytes: free() writes its bookkeeping there. */
	uintptr_t lo = ((uintptr_t)m + 64 + page - 1) & ~(page - 1);
	uintptr_t hi = ((uintptr_t)m + len) & ~(page - 1);

	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
	free(m);
}

/* Frees every chunk.  Objects still referenced elsewhere become invalid:
 * call only when all users are gone. */
void rc__pool_free(struct rc_pool *p)
{
	struct rc_chunk *c, *next;

	if (!p)
		return;
	for (unsigned k = 0; k < RC_POOL_CLASSES; k++) {
		for (unsigned l = 0; l < CH_LISTS; l++) {
			for (c = p->cls[k].lists[l]; c; c = next) {
				next = c->next;
				free(c);
			}
		}
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

static void unlink_chunk(struct rc_class *k, struct rc_chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		k->lists[c->list] = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->list == CH_EMPTY && --k->nempty < k->min_empty)
		k->min_empty = k->nempty;
}

static void link_chunk(struct rc_class *k, struct rc_chunk *c, uint8_t list)
{
	c->list = list;
	c->prev = NULL;
	c->next = k->lists[list];
	if (c->next)
		c->next->prev = c;
	k->lists[list] = c;
	if (list == CH_EMPTY)
		k->nempty++;
}

static void move_chunk(struct rc_class *k, struct rc_chunk *c, uint8_t list)
{
	unlink_chunk(k, c);
	link_chunk(k, c, list);
}

/* Adds an empty chunk to class cls. */
static int grow(struct rc_pool *p, unsigned cls)
{
	size_t osize = ((size_t)1 << (cls + RC_POOL_MIN_SHIFT)) + sizeof(struct rc_pool_obj);
	size_t head = (sizeof(struct rc_chunk) + 15) & ~(size_t)15;
	size_t n = RC_CHUNK_MIN / osize;
	struct rc_chunk *c;
	uint8_t *at;

	if (n < 1)
		n = 1;
	c = aligned_alloc(16, head + n * osize);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->pool = p;
	c->cls = (uint16_t)cls;
	c->nobj = c->nfree = (uint32_t)n;
	c->size = head + n * osize;
	p->footprint += c->size;
	at = (uint8_t *)c + head;
	for (size_t i = 0; i < n; i++, at += osize) {
		struct rc_pool_obj *o = (struct rc_pool_obj *)at;
		o->chunk = c;
		o->next = c->free;
		c->free = o;
	}
	link_chunk(&p->cls[cls], c, CH_EMPTY);
	return 0;
}

static void drop_chunk(struct rc_pool *p, struct rc_class *k, struct rc_chunk *c)
{
	unlink_chunk(k, c);
	p->footprint -= c->size;
	release_memory(c, c->size);
}

/* Puts o back on its chunk's free list (owner thread, or under the lock). */
static void put_back(struct rc_pool *p, struct rc_pool_obj *o)
{
	struct rc_chunk *c = o->chunk;
	struct rc_class *k = &p->cls[c->cls];

	o->next = c->free;
	c->free = o;
	c->nfree++;
	if (c->nfree == c->nobj) {
		move_chunk(k, c, CH_EMPTY);
		if (p->shared && k->nempty > 1)
			drop_chunk(p, k, c);
	} else if (c->list == CH_FULL) {
		move_chunk(k, c, CH_PARTIAL);
	}
}

static void drain_remote(struct rc_pool *p)
{
	struct rc_pool_obj *o = atomic_exchange_explicit(&p->remote, NULL,
							  memory_order_acquire);
	while (o) {
		struct rc_pool_obj *next = o->next;
		put_back(p, o);
		o = next;
	}
}

static bool remote_pending(struct rc_pool *p)
{
	return atomic_load_explicit(&p->remote, memory_order_relaxed) != NULL;
}

static void *alloc_large(size_t size)
{
	struct rc_pool_obj *o = malloc(sizeof(*o) + size);

	if (!o)
		return NULL;
	o->chunk = NULL;
	o->large = size;
	return o + 1;
}

static void *alloc_locked(struct rc_pool *p, size_t size)
{
	struct rc_pool_obj *o;
	struct rc_class *k;
	struct rc_chunk *c;
	unsigned cls;

	if (size > ((size_t)1 << RC_POOL_MAX_SHIFT))
		return alloc_large(size);
	cls = size_class(size);
	k = &p->cls[cls];
	if (remote_pending(p))
		drain_remote(p);
	c = k->lists[CH_PARTIAL] ? k->lists[CH_PARTIAL] : k->lists[CH_EMPTY];
	if (!c) {
		if (grow(p, cls) < 0)
			return NULL;
		c = k->lists[CH_EMPTY];
	}
	o = c->free;
	c->free = o->next;
	c->nfree--;
	if (c->nfree == 0)
		move_chunk(k, c, CH_FULL);
	else if (c->list == CH_EMPTY)
		move_chunk(k, c, CH_PARTIAL);
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
	if (!o->chunk) {
		release_memory(o, sizeof(*o) + o->large);
		return;
	}
	p = o->chunk->pool;
	if (p == current_pool && !p->shared) {
		put_back(p, o);
		/* Frees from other threads come back here too, so their
		 * chunks can empty even if this class is not allocated again. */
		if (remote_pending(p))
			drain_remote(p);
		return;
	}
	/* Foreign thread (or the shared pool): lock-free push. */
	o->next = atomic_load_explicit(&p->remote, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&p->remote, &o->next, o,
						      memory_order_release,
						      memory_order_relaxed))
		;
}

/* Returns idle chunks to the system; the loop calls it on every pass (it
 * does its work at most once per RC_TRIM_MS).  Empty chunks that stayed
 * empty for a whole period (min_empty) are freed, keeping one per class. */
void rc__pool_trim(struct rc_pool *p, uint64_t now_ms)
{
	if (now_ms - p->trimmed_ms < RC_TRIM_MS)
		return;
	p->trimmed_ms = now_ms;
	if (remote_pending(p))
		drain_remote(p);
	for (unsigned i = 0; i < RC_POOL_CLASSES; i++) {
		struct rc_class *k = &p->cls[i];
		uint32_t drop = k->min_empty;

		if (drop >= k->nempty)
			drop = k->nempty ? k->nempty - 1 : 0;
		while (drop--)
			drop_chunk(p, k, k->lists[CH_EMPTY]);
		k->min_empty = k->nempty;
	}
}

/* Usable bytes of a pool object. */
size_t rc__pool_usable(const void *ptr)
{
	const struct rc_pool_obj *o = (const struct rc_pool_obj *)ptr - 1;

	if (!o->chunk)
		return o->large;
	return (size_t)1 << (o->chunk->cls + RC_POOL_MIN_SHIFT);
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
