/* build/bench-micro: proto micro benchmarks (frame write/read, UTF-8,
 * permessage-deflate) and the broker's pattern matcher.  `bench-micro` runs all, `bench-micro FILTER...` the
 * benchmarks whose names contain a FILTER.  See bench/RESULTS.md. */
#include "bench/micro/harness.h"

int main(int argc, char **argv)
{
	if (rc_bench_init(argc, argv))
		return 2;
	rc_bench_frame_write();
	rc_bench_frame_read();
	rc_bench_utf8();
	rc_bench_deflate();
	rc_bench_match();
	return rc_bench_finish();
}
