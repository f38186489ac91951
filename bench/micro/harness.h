/* Micro-benchmark harness: calibrated loops, median of repeated runs,
 * allocations per operation from support/alloc_count. */
#ifndef RC_BENCH_MICRO_HARNESS_H
#define RC_BENCH_MICRO_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runs the measured operation n times.  Returns 0, or -errno when an
 * operation failed (the benchmark is then reported as failed, never timed). */
typedef int (*rc_bench_cb)(void *arg, uint64_t n);

/* A payload the scenarios share, loaded once by rc_bench_init(). */
struct rc_bench_payload {
	const char *name;  /* "1k", "github", ... used in benchmark names */
	const uint8_t *p;
	size_t len;
};

/* Parses argv (name filters and options), reads the data files and prints
 * the banner.  Returns 0 or -errno after printing why. */
int rc_bench_init(int argc, char **argv);

/* True when a benchmark called name was selected on the command line (no
 * filter selects everything; a filter selects names containing it). */
bool rc_bench_selected(const char *name);

/* Times fn if name is selected: calibrates n to about the target time,
 * repeats the measurement, prints one line (median ns/op, allocs/op over all
 * repetitions, MB/s from bytes_per_op).  A failing fn is reported and makes
 * rc_bench_finish() return nonzero. */
void rc_bench_run(const char *name, size_t bytes_per_op, rc_bench_cb fn, void *arg);

/* Reports benchmark name as failed with err (a setup or self-check error)
 * if it is selected. */
void rc_bench_fail(const char *name, int err);

/* The 1 KiB JSON-like text (exactly 1024 bytes, ASCII). */
const struct rc_bench_payload *rc_bench_json_1k(void);
/* bench/data/api_index.json (2,263 bytes): the size and shape of the
 * github.json payload of GWS's benchmarks, made for this repository. */
const struct rc_bench_payload *rc_bench_github(void);
/* 1 KiB of multilingual UTF-8 (Latin, Greek, Cyrillic, CJK, emoji). */
const struct rc_bench_payload *rc_bench_utf8_1k(void);

/* Exit status for main: 0, or 1 when a benchmark failed or none matched. */
int rc_bench_finish(void);

/* The scenarios, one file each. */
void rc_bench_frame_write(void);
void rc_bench_frame_read(void);
void rc_bench_utf8(void);
void rc_bench_deflate(void);
void rc_bench_match(void);

#endif
