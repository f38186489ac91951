/* Log-linear latency histogram: 32 linear sub-buckets per power of two
 * (HdrHistogram's layout with 5 significant bits).  Values below 64 get a
 * bucket each; above, bucket = shift * 32 + (v >> shift), where shift puts
 * v >> shift in [32, 64).  Recording is branch-light and never allocates. */
#include "bench/rcbench/rcbench.h"

#define SUB (1u << RCB_HIST_SUB_BITS)

/* The bucket of v (see rcbench.h). */
unsigned rcb_hist_index(uint64_t v)
{
	if (v < 2 * SUB)
		return (unsigned)v;
	unsigned m = 63u - (unsigned)__builtin_clzll(v); /* floor(log2 v) >= 6 */
	unsigned shift = m - RCB_HIST_SUB_BITS;
	return shift * SUB + (unsigned)(v >> shift);
}

/* The lowest value that lands in bucket i. */
uint64_t rcb_hist_bucket_low(unsigned i)
{
	if (i < 2 * SUB)
		return i;
	unsigned shift = i / SUB - 1;
	uint64_t q = i - shift * SUB;
	return q << shift;
}

/* Adds v (ns). */
void rcb_hist_record(struct rcb_hist *h, uint64_t v)
{
	h->b[rcb_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

/* dst += src. */
void rcb_hist_merge(struct rcb_hist *dst, const struct rcb_hist *src)
{
	const volatile struct rcb_hist *s = src;
	uint64_t n = 0;

	for (unsigned i = 0; i < RCB_HIST_N; i++) {
		uint64_t c = s->b[i];
		dst->b[i] += c;
		n += c;
	}
	/* Count from the buckets, so a live snapshot stays self-consistent. */
	dst->count += n;
	dst->sum += s->sum;
	if (s->max > dst->max)
		dst->max = s->max;
}

/* Value at quantile q: the middle of the bucket holding the rank, capped
 * at the recorded maximum. */
uint64_t rcb_hist_quantile(const struct rcb_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (q >= 1.0)
		return h->max;
	rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	for (unsigned i = 0; i < RCB_HIST_N; i++) {
		seen += h->b[i];
		if (seen > rank) {
			uint64_t lo = rcb_hist_bucket_low(i);
			uint64_t hi = i + 1 < RCB_HIST_N ? rcb_hist_bucket_low(i + 1) : lo;
			uint64_t mid = lo + (hi - lo) / 2;
			return mid > h->max ? h->max : mid;
		}
	}
	return h->max;
}
