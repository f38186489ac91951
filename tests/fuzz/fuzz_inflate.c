/* libFuzzer harness for rc_inflate_piece: the input is one compressed
 * message, fed in two pieces split at a point taken from the first byte,
 * into an output buffer of a small cap allocated to its exact size (ASan
 * catches any write past it).  Checks: only documented errors; never more
 * than cap bytes; the split does not change the result, nor does
 * rc_inflate_stream with a growing buffer; decoded output survives a
 * deflate/inflate round trip; a second message on the same
 * (possibly context-keeping) inflater stays bounded too.
 *
 * Input layout: [split byte][flags byte][message...]
 *   split: the split point is split * len / 256
 *   flags bit 0: no_context_takeover; bit 1: cap 4096, else 64 + flags/4 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/deflate.h"

#define check(x) do { if (!(x)) __builtin_trap(); } while (0)

static int inflate_split(const uint8_t *in, size_t len, size_t split,
			 bool nct, uint8_t *out, size_t cap, size_t *got)
{
	struct rc_inflater f;
	int ret;

	check(rc_inflater_init(&f, nct) == 0);
	*got = 0;
	ret = rc_inflate_piece(&f, in, split, false, out, cap, got);
	if (ret == 0)
		ret = rc_inflate_piece(&f, in + split, len - split, true, out,
				       cap, got);
	check(*got <= cap);
	check(ret == 0 || ret == -EMSGSIZE || ret == -EPROTO);
	if (ret == -EMSGSIZE)
		check(*got == cap);
	/* The same message again: with takeover it may refer to the first. */
	if (ret == 0) {
		size_t again = 0;
		int r2 = rc_inflate_piece(&f, in, len, true, out, cap, &again);

		check(again <= cap);
		check(r2 == 0 || r2 == -EMSGSIZE || r2 == -EPROTO);
	}
	rc_inflater_free(&f);
	return ret;
}

/* The same through rc_inflate_stream, the output space growing by `step`
 * bytes at each -ENOBUFS up to cap; mapped to rc_inflate_piece's returns. */
static int inflate_growing(const uint8_t *in, size_t len, size_t split,
			   bool nct, size_t step, uint8_t *out, size_t cap,
			   size_t *got)
{
	struct rc_inflater f;
	size_t room = 0, left;
	const uint8_t *p;
	int ret = 0;

	check(rc_inflater_init(&f, nct) == 0);
	*got = 0;
	for (int piece = 0; piece < 2 && ret == 0; piece++) {
		p = piece ? in + split : in;
		left = piece ? len - split : split;
		for (;;) {
			ret = rc_inflate_stream(&f, &p, &left, piece == 1, out,
						room, got);
			check(*got <= room);
			if (ret != -ENOBUFS)
				break;
			check(*got == room);
			if (room == cap)
				break;
			room = room + step > cap ? cap : room + step;
		}
		if (ret == 0)
			check(left == 0);
	}
	rc_inflater_free(&f);
	return ret == -ENOBUFS ? -EMSGSIZE : ret;
}

/* Re-compresses plain and inflates it back: it must come out unchanged. */
static void round_trip(const uint8_t *plain, size_t len)
{
	static struct rc_deflater d;
	static bool ready;
	struct rc_inflater f;
	size_t bound = rc_deflate_bound(len), got = 0;
	uint8_t *comp = malloc(bound), *back = malloc(len ? len : 1);
	ssize_t n;

	check(comp && back);
	if (!ready) {
		check(rc_deflater_init(&d, 15, true, 6) == 0);
		ready = true;
	}
	n = rc_deflate_message(&d, plain, len, comp, bound);
	check(n > 0);
	check(rc_inflater_init(&f, true) == 0);
	check(rc_inflate_piece(&f, comp, (size_t)n, true, back, len, &got) == 0);
	check(got == len && memcmp(back, plain, len) == 0);
	rc_inflater_free(&f);
	free(comp);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg, *out1, *out2;
	size_t len, split, cap, got1, got2;
	bool nct;
	int r1, r2;

	if (size < 2)
		return 0;
	len = size - 2;
	split = (size_t)data[0] * len / 256;
	nct = data[1] & 1;
	cap = (data[1] & 2) ? 4096 : 64 + (data[1] >> 2);
	/* Exact-size copies so ASan sees any read or write past the end. */
	msg = malloc(len ? len : 1);
	out1 = malloc(cap);
	out2 = malloc(cap);
	check(msg && out1 && out2);
	memcpy(msg, data + 2, len);

	r1 = inflate_split(msg, len, split, nct, out1, cap, &got1);
	r2 = inflate_split(msg, len, 0, nct, out2, cap, &got2);
	check(r1 == r2);
	if (r1 == 0)
		check(got1 == got2 && memcmp(out1, out2, got1) == 0);
	r2 = inflate_growing(msg, len, split, nct, 1 + data[0] % 61, out2,
			     cap, &got2);
	check(r1 == r2);
	if (r1 == 0) {
		check(got1 == got2 && memcmp(out1, out2, got1) == 0);
		round_trip(out1, got1);
	}
	free(msg);
	free(out1);
	free(out2);
	return 0;
}
