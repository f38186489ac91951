/* The one clock: monotonic time for timers, rate limits, ages and latency
 * (core's and every user's of rc.h). */
#include <time.h>

#include "core/rc.h"

/* See rc.h. */
uint64_t rc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* See rc.h. */
uint64_t rc_now_ms(void)
{
	return rc_now_ns() / 1000000u;
}
