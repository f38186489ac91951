/* Pools and refcounted buffers: class sizing, reuse, cross-thread frees. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "core/internal.h"

TestSuite(pool, .timeout = 10);

Test(pool, sizes_round_up_to_a_class)
{
	struct rc_pool *p = rc__pool_new();
	size_t sizes[] = { 1, 64, 65, 1000, 4096, 4097, 1u << 20 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *o = rc__pool_alloc(p, sizes[i]);
		cr_assert_not_null(o);
		cr_assert_geq(rc__pool_usable(o), sizes[i]);
		cr_assert_lt(rc__pool_usable(o), sizes[i] * 2 + 64);
		cr_assert_eq((uintptr_t)o % 16, 0, "16-byte aligned");
		memset(o, 0xab, sizes[i]);
		rc__pool_release(o);
	}
	rc__pool_free(p);
}

Test(pool, freed_objects_are_reused_without_growing)
{
	struct rc_pool *p = rc__pool_new();
	void *objs[100];

	rc__pool_set_current(p);
	for (int i = 0; i < 100; i++)
		objs[i] = rc__pool_alloc(p, 200);
	size_t foot = rc__pool_footprint(p);
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 100; i++)
			rc__pool_release(objs[i]);
		for (int i = 0; i < 100; i++)
			objs[i] = rc__pool_alloc(p, 200);
	}
	cr_assert_eq(rc__pool_footprint(p), foot, "steady state allocates no chunk");
	for (int i = 0; i < 100; i++)
		rc__pool_release(objs[i]);
	rc__pool_set_current(NULL);
	rc__pool_free(p);
}

Test(pool, large_objects_bypass_classes)
{
	struct rc_pool *p = rc__pool_new();
	void *o = rc__pool_alloc(p, (2u << 20) + 5);

	cr_assert_not_null(o);
	cr_assert_eq(rc__pool_usable(o), (2u << 20) + 5);
	cr_assert_eq(rc__pool_footprint(p), 0);
	rc__pool_release(o);
	rc__pool_free(p);
}

struct xfree { void **objs; int n; };

static void *free_elsewhere(void *arg)
{
	struct xfree *x = arg;
	for (int i = 0; i < x->n; i++)
		rc__pool_release(x->objs[i]);
	return NULL;
}

Test(pool, frees_from_another_thread_come_back_to_the_owner)
{
	struct rc_pool *p = rc__pool_new();
	void *objs[1000];
	pthread_t t;

	rc__pool_set_current(p);
	for (int i = 0; i < 1000; i++)
		objs[i] = rc__pool_alloc(p, 100);
	size_t foot = rc__pool_footprint(p);
	struct xfree x = { objs, 1000 };
	pthread_create(&t, NULL, free_elsewhere, &x);
	pthread_join(t, NULL);
	for (int i = 0; i < 1000; i++)
		objs[i] = rc__pool_alloc(p, 100);
	cr_assert_eq(rc__pool_footprint(p), foot, "remote frees were reclaimed");
	for (int i = 0; i < 1000; i++)
		rc__pool_release(objs[i]);
	rc__pool_set_current(NULL);
	rc__pool_free(p);
}

/* The burst tests' pool, current on the test's thread, with room for
 * BURST_MAX objects and a fake clock for rc__pool_trim. */
enum { BURST_MAX = 20000 };
static struct rc_pool *p;
static void **objs;
static uint64_t now;

static void burst_init(void)
{
	p = rc__pool_new();
	objs = calloc(BURST_MAX, sizeof(*objs));
	now = 1000;
	rc__pool_set_current(p);
	rc__pool_trim(p, now);
}

static void burst_fini(void)
{
	rc__pool_set_current(NULL);
	rc__pool_free(p);
	free(objs);
}

/* Two trim periods with no allocation: chunks empty for a whole period go. */
static void idle_periods(void)
{
	for (int i = 0; i < 2; i++)
		rc__pool_trim(p, now += 1000);
}

/* A burst of 20,000 connection-sized objects: once they are released and
 * the pool has been idle for two trim periods, it holds at most the one
 * empty chunk it keeps for the class (before, every chunk stayed for the
 * life of the pool). */
Test(pool, idle_chunks_go_back_after_a_burst, .init = burst_init, .fini = burst_fini)
{
	enum { N = BURST_MAX };

	for (int i = 0; i < N; i++)
		cr_assert_not_null(objs[i] = rc__pool_alloc(p, 400));
	size_t peak = rc__pool_footprint(p);
	cr_assert_gt(peak, (size_t)N * 512, "the burst took chunks");
	/* Every other one first: no chunk empties, none can go back. */
	for (int i = 0; i < N; i += 2)
		rc__pool_release(objs[i]);
	idle_periods();
	cr_assert_eq(rc__pool_footprint(p), peak);
	for (int i = 1; i < N; i += 2)
		rc__pool_release(objs[i]);
	idle_periods();
	cr_assert_leq(rc__pool_footprint(p), 300u << 10,
		      "%zu bytes held after the burst", rc__pool_footprint(p));
}

/* Hysteresis: a load that comes back every period keeps its chunks (no
 * free and malloc again per burst), and they go once it stops. */
Test(pool, a_recurring_load_keeps_its_chunks, .init = burst_init, .fini = burst_fini)
{
	enum { N = 5000 };
	size_t peak = 0;

	for (int period = 0; period < 5; period++) {
		for (int i = 0; i < N; i++)
			objs[i] = rc__pool_alloc(p, 400);
		if (period == 0)
			peak = rc__pool_footprint(p);
		cr_assert_eq(rc__pool_footprint(p), peak, "period %d grew", period);
		for (int i = 0; i < N; i++)
			rc__pool_release(objs[i]);
		rc__pool_trim(p, now += 1000);
	}
	cr_assert_eq(rc__pool_footprint(p), peak, "chunks used every period stay");
	idle_periods();
	cr_assert_leq(rc__pool_footprint(p), 300u << 10);
}

/* Allocation fills partial chunks before empty ones, so objects that stay
 * gather and the rest of a burst's chunks can go back. */
Test(pool, survivors_of_a_burst_pin_few_chunks, .init = burst_init, .fini = burst_fini)
{
	enum { N = BURST_MAX, KEEP = 100 };

	for (int i = 0; i < N; i++)
		objs[i] = rc__pool_alloc(p, 400);
	for (int i = 0; i < N; i++)
		rc__pool_release(objs[i]);
	for (int i = 0; i < N; i++)
		objs[i] = rc__pool_alloc(p, 400);
	/* Keep only the last KEEP allocated: they share one or two chunks. */
	for (int i = 0; i < N - KEEP; i++)
		rc__pool_release(objs[i]);
	idle_periods();
	cr_assert_leq(rc__pool_footprint(p), 3 * (300u << 10),
		      "%zu bytes held for %d live objects", rc__pool_footprint(p), KEEP);
	for (int i = N - KEEP; i < N; i++)
		rc__pool_release(objs[i]);
}

/* Frees from another thread are reclaimed by the trim too, so their
 * chunks go back although the owner allocates nothing more. */
Test(pool, remote_frees_release_chunks_too, .init = burst_init, .fini = burst_fini)
{
	enum { N = 5000 };
	struct xfree x = { objs, N };
	pthread_t t;

	for (int i = 0; i < N; i++)
		objs[i] = rc__pool_alloc(p, 400);
	pthread_create(&t, NULL, free_elsewhere, &x);
	pthread_join(t, NULL);
	cr_assert_gt(rc__pool_footprint(p), (size_t)N * 400, "nothing drained yet");
	idle_periods();
	cr_assert_leq(rc__pool_footprint(p), 300u << 10,
		      "%zu bytes held after the remote frees", rc__pool_footprint(p));
}

Test(buf, refcount_keeps_the_buffer_until_the_last_unref)
{
	struct rc_buf *b = rc_buf_new(10);

	cr_assert_geq(rc_buf_cap(b), 10);
	memcpy(rc_buf_data(b), "0123456789", 10);
	rc_buf_set_len(b, 10);
	rc_buf_ref(b);
	rc_buf_ref(b);
	rc_buf_unref(b);
	rc_buf_unref(b);
	cr_assert_eq(memcmp(rc_buf_data(b), "0123456789", 10), 0);
	cr_assert_eq(rc_buf_len(b), 10);
	rc_buf_unref(b);
}

Test(buf, frame_encode_is_a_valid_server_frame)
{
	uint8_t payload[300];
	struct rc_frame_header h;
	struct rc_frame_rules rules = { .expect_masked = false };

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	struct rc_buf *b = rc_frame_encode(RC_OP_BINARY, payload, sizeof(payload), NULL);
	int hl = rc_frame_parse_header(rc_buf_data(b), rc_buf_len(b), &rules, &h);
	cr_assert_eq(hl, 4);
	cr_assert(h.fin);
	cr_assert_eq(h.opcode, RC_OP_BINARY);
	cr_assert_eq(h.payload_len, sizeof(payload));
	cr_assert_eq(rc_buf_len(b), 4 + sizeof(payload));
	cr_assert_eq(memcmp(rc_buf_data(b) + 4, payload, sizeof(payload)), 0);
	rc_buf_unref(b);
}
