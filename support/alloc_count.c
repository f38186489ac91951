/* Counting wrappers around the allocator; see alloc_count.h for the two ways
 * to use them.  Not a test file itself (the unit-test glob is test_*.c). */
#include "support/alloc_count.h"

#include <errno.h>
#include <signal.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc's real allocator, exported for exactly this purpose (wrappers that
 * replace malloc).  There is no __libc_posix_memalign/__libc_aligned_alloc:
 * those are built on __libc_memalign below. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

/* Under AddressSanitizer (gcc's shared libasan or clang's static runtime)
 * these resolve to ASan's allocator, and forwarding to them keeps every block
 * on ASan's books: blocks that ASan's own interceptors (strdup, ...) hand out
 * are then freed by the allocator that made them.  Without ASan the weak
 * references stay NULL and glibc's entry points are used. */
extern void *__interceptor_malloc(size_t size) __attribute__((weak));
extern void *__interceptor_calloc(size_t n, size_t size) __attribute__((weak));
extern void *__interceptor_realloc(void *p, size_t size) __attribute__((weak));
extern void __interceptor_free(void *p) __attribute__((weak));
extern void *__interceptor_memalign(size_t align, size_t size) __attribute__((weak));
extern int __interceptor_posix_memalign(void **out, size_t align, size_t size)
	__attribute__((weak));
extern void *__interceptor_aligned_alloc(size_t align, size_t size)
	__attribute__((weak));
extern void *__interceptor_valloc(size_t size) __attribute__((weak));
extern void *__interceptor_pvalloc(size_t size) __attribute__((weak));

static _Atomic uint64_t g_allocs, g_frees, g_bytes;

/* initial-exec: the wrappers must not allocate to find their TLS block (a
 * dynamic TLS access may call malloc); fine for the main program and for a
 * library in LD_PRELOAD, which both get static TLS. */
static __thread uint64_t t_allocs __attribute__((tls_model("initial-exec")));
static __thread uint64_t t_frees __attribute__((tls_model("initial-exec")));
static __thread uint64_t t_bytes __attribute__((tls_model("initial-exec")));

static void count_alloc(size_t size)
{
	atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&g_bytes, size, memory_order_relaxed);
	t_allocs++;
	t_bytes += size;
}

static void count_free(void)
{
	atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed);
	t_frees++;
}

/* rc_alloc_fail_from: requests of at least this many bytes on this thread
 * fail (0: none do). */
static __thread size_t t_fail_from __attribute__((tls_model("initial-exec")));

static bool injected_failure(size_t size)
{
	if (!t_fail_from || size < t_fail_from)
		return false;
	errno = ENOMEM;
	return true;
}

static bool pow2(size_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* Allocator replacement: counts, then forwards. */
void *malloc(size_t size)
{
	if (injected_failure(size))
		return NULL;
	count_alloc(size);
	if (__interceptor_malloc)
		return __interceptor_malloc(size);
	return __libc_malloc(size);
}

/* Allocator replacement: counts, then forwards. */
void *calloc(size_t n, size_t size)
{
	if (injected_failure(n * size))
		return NULL;
	count_alloc(n * size);
	if (__interceptor_calloc)
		return __interceptor_calloc(n, size);
	return __libc_calloc(n, size);
}

/* Allocator replacement.  Any realloc counts as an allocation (it may move
 * the block); of a non-NULL block also as a free, so allocs - frees stays the
 * number of live blocks. */
void *realloc(void *p, size_t size)
{
	if (injected_failure(size))
		return NULL; /* p stays valid */
	count_alloc(size);
	if (p)
		count_free();
	if (__interceptor_realloc)
		return __interceptor_realloc(p, size);
	return __libc_realloc(p, size);
}

/* Allocator replacement: counts non-NULL frees, then forwards. */
void free(void *p)
{
	if (!p)
		return;
	count_free();
	if (__interceptor_free)
		__interceptor_free(p);
	else
		__libc_free(p);
}

/* Allocator replacement: counts, then forwards. */
void *memalign(size_t align, size_t size)
{
	if (injected_failure(size))
		return NULL;
	count_alloc(size);
	if (__interceptor_memalign)
		return __interceptor_memalign(align, size);
	return __libc_memalign(align, size);
}

/* Allocator replacement: counts, then forwards (EINVAL for an alignment that
 * is not a power of two multiple of sizeof(void *), as POSIX says). */
int posix_memalign(void **out, size_t align, size_t size)
{
	void *p;

	if (injected_failure(size))
		return ENOMEM;
	count_alloc(size);
	if (__interceptor_posix_memalign)
		return __interceptor_posix_memalign(out, align, size);
	if (!pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	p = __libc_memalign(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

/* Allocator replacement: counts, then forwards. */
void *aligned_alloc(size_t align, size_t size)
{
	if (injected_failure(size))
		return NULL;
	count_alloc(size);
	if (__interceptor_aligned_alloc)
		return __interceptor_aligned_alloc(align, size);
	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return __libc_memalign(align, size);
}

/* Allocator replacement: counts, then forwards. */
void *valloc(size_t size)
{
	count_alloc(size);
	if (__interceptor_valloc)
		return __interceptor_valloc(size);
	return __libc_valloc(size);
}

/* Allocator replacement: counts, then forwards. */
void *pvalloc(size_t size)
{
	count_alloc(size);
	if (__interceptor_pvalloc)
		return __interceptor_pvalloc(size);
	return __libc_pvalloc(size);
}

/* See alloc_count.h. */
uint64_t rc_alloc_count(void)
{
	return atomic_load_explicit(&g_allocs, memory_order_relaxed);
}

/* See alloc_count.h. */
uint64_t rc_alloc_count_thread(void)
{
	return t_allocs;
}

/* See alloc_count.h. */
void rc_alloc_stats(struct rc_alloc_stats *process, struct rc_alloc_stats *thread)
{
	if (process) {
		process->allocs = atomic_load_explicit(&g_allocs, memory_order_relaxed);
		process->frees = atomic_load_explicit(&g_frees, memory_order_relaxed);
		process->bytes = atomic_load_explicit(&g_bytes, memory_order_relaxed);
	}
	if (thread) {
		thread->allocs = t_allocs;
		thread->frees = t_frees;
		thread->bytes = t_bytes;
	}
}

/* See alloc_count.h. */
void rc_alloc_fail_from(size_t bytes)
{
	t_fail_from = bytes;
}

/* See alloc_count.h. */
void rc_alloc_reset(void)
{
	atomic_store_explicit(&g_allocs, 0, memory_order_relaxed);
	atomic_store_explicit(&g_frees, 0, memory_order_relaxed);
	atomic_store_explicit(&g_bytes, 0, memory_order_relaxed);
	t_allocs = 0;
	t_frees = 0;
	t_bytes = 0;
}

/* Called through a volatile pointer so the compiler cannot pair the malloc
 * with the free and drop both (it may for direct calls). */
static void *(*volatile probe_malloc)(size_t) = malloc;

/* See alloc_count.h: allocates one probe block and checks that the calling
 * thread's counter saw it. */
bool rc_alloc_count_active(void)
{
	uint64_t before = t_allocs;
	void *p = probe_malloc(1);
	bool seen = t_allocs == before + 1;

	free(p);
	return seen;
}

static void report(void)
{
	struct rc_alloc_stats s;

	rc_alloc_stats(&s, NULL);
	dprintf(STDERR_FILENO,
		"alloc_count: pid %d allocs %llu frees %llu live %lld bytes %llu\n",
		(int)getpid(), (unsigned long long)s.allocs,
		(unsigned long long)s.frees,
		(long long)(s.allocs - s.frees), (unsigned long long)s.bytes);
}

/* RC_ALLOC_COUNT_REPORT=1: print the totals at exit (the way to read them
 * when the counter is LD_PRELOADed under a program that knows nothing of
 * it). */
/* Writes "alloc_count: allocs N\n" with write(2) only: this runs inside a
 * signal handler, where stdio and the allocator are off limits. */
static void on_sigusr2(int sig)
{
	char buf[64] = "alloc_count: allocs ", digits[24];
	uint64_t v = atomic_load_explicit(&g_allocs, memory_order_relaxed);
	size_t n = strlen(buf), d = 0;
	int saved = errno;

	(void)sig;
	do
		digits[d++] = (char)('0' + v % 10);
	while ((v /= 10) && d < sizeof(digits));
	while (d)
		buf[n++] = digits[--d];
	buf[n++] = '\n';
	(void)!write(STDERR_FILENO, buf, n);
	errno = saved;
}

/* RC_ALLOC_COUNT_REPORT=1: print the totals at exit (the way to read them
 * when the counter is LD_PRELOADed under a program that knows nothing of
 * it).  RC_ALLOC_COUNT_SIGNAL=1: print the running allocation count on
 * every SIGUSR2, so a test can read it before and after a phase of a
 * program that keeps running. */
__attribute__((constructor)) static void report_init(void)
{
	const char *v = getenv("RC_ALLOC_COUNT_REPORT");
	const char *sig = getenv("RC_ALLOC_COUNT_SIGNAL");

	if (v && *v && *v != '0')
		atexit(report);
	if (sig && *sig && *sig != '0') {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigusr2;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGUSR2, &sa, NULL);
	}
}
