/* UTF-8 validation of a whole text message (rc_utf8_valid), on mostly-ASCII
 * JSON (the word-at-a-time fast path) and on multilingual text (the DFA). */
#include <errno.h>

#include "bench/micro/harness.h"
#include "proto/utf8.h"

static int validate(void *arg, uint64_t n)
{
	const struct rc_bench_payload *pl = arg;
	uint64_t i;

	for (i = 0; i < n; i++)
		if (!rc_utf8_valid(pl->p, pl->len))
			return -EILSEQ;
	return 0;
}

static void run(const char *name, const struct rc_bench_payload *pl)
{
	rc_bench_run(name, pl->len, validate, (void *)pl);
}

/* See harness.h. */
void rc_bench_utf8(void)
{
	run("utf8_1k_ascii", rc_bench_json_1k());
	run("utf8_1k_multi", rc_bench_utf8_1k());
	run("utf8_github", rc_bench_github());
}
