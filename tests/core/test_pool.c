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
