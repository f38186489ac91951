/* Shared by tests/ and bench/ (neither owns it).
 * Allocation counter for tests and benchmarks: proves that a code path does
 * not call the allocator.
 *
 * support/alloc_count.c defines malloc, calloc, realloc, free,
 * posix_memalign, aligned_alloc, memalign, valloc and pvalloc.  Each wrapper
 * bumps counters and forwards to the real allocator: the sanitizer's
 * interceptor when the program is built with ASan (so ASan keeps seeing every
 * block), glibc's __libc_* entry points otherwise.  Two ways to use it:
 *
 *   link-in:    compile alloc_count.c into the program (exactly once); the
 *               program's definitions take precedence over libc's.  The
 *               Makefile builds nothing from support/, so
 *               tests/proto/test_alloc_free.c #includes the .c into
 *               build/tests/unit and bench/micro/alloc_count_link.c into
 *               build/bench-micro: other unit tests include only this
 *               header (a second copy would define malloc twice).
 *   LD_PRELOAD: gcc -shared -fPIC -O2 -D_GNU_SOURCE -I. \
 *                   -o build/alloc_count.so support/alloc_count.c
 *               With RC_ALLOC_COUNT_REPORT=1 in the environment the totals
 *               are printed to stderr at exit.  A program that wants the
 *               accessors under LD_PRELOAD looks them up with dlsym.
 *
 * Counting is always on and costs two relaxed atomic adds plus a
 * thread-local add per call.  To measure a region: read a counter before,
 * run the code, read it after; the thread counter is immune to allocations
 * made concurrently by other threads (a test runner's, for instance). */
#ifndef RC_TESTS_ALLOC_COUNT_H
#define RC_TESTS_ALLOC_COUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rc_alloc_stats {
	uint64_t allocs; /* malloc/calloc/realloc/memalign-family calls */
	uint64_t frees;  /* free(non-NULL), and realloc of a non-NULL block */
	uint64_t bytes;  /* bytes requested by the allocating calls */
};

/* Allocating calls made by the whole process since start or the last
 * rc_alloc_reset(). */
uint64_t rc_alloc_count(void);

/* Allocating calls made by the calling thread since it started or since it
 * last called rc_alloc_reset(). */
uint64_t rc_alloc_count_thread(void);

/* Fills the process-wide and/or the calling thread's counters (either
 * pointer may be NULL). */
void rc_alloc_stats(struct rc_alloc_stats *process, struct rc_alloc_stats *thread);

/* Zeroes the process-wide counters and the calling thread's counters. */
void rc_alloc_reset(void);

/* Failure injection: from now on, every request of at least bytes made by
 * the calling thread fails (NULL and ENOMEM, as out of memory would); 0
 * stops it.  A threshold rather than a count, so a test can fail the big
 * allocations (a pool's new chunk) and not the small ones around them. */
void rc_alloc_fail_from(size_t bytes);

/* True once a call went through the wrappers, i.e. the counter is really
 * interposed (a program that checks this can tell "0 allocations" from "the
 * counter is not linked in"). */
bool rc_alloc_count_active(void);

#endif
