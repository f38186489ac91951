/* libFuzzer harness for proto/utf8.c: the first input byte picks a split
 * point; validating the rest in two pieces, byte by byte, and whole must
 * agree on the verdict and on the offset of the failing byte. */
#include <errno.h>
#include <stdlib.h>

#include "proto/utf8.h"

#define NONE ((size_t)-1)

/* Feeds p in pieces of at most `step` bytes starting with a first piece of
 * `first` bytes; returns the absolute failing offset or NONE. */
static size_t feed_pieces(const uint8_t *p, size_t len, size_t first, size_t step,
			  bool *done)
{
	struct rc_utf8 v;
	size_t off = 0, piece = first, bad, again;

	rc_utf8_init(&v);
	while (off < len) {
		if (piece > len - off)
			piece = len - off;
		if (rc_utf8_feed(&v, p + off, piece, &bad) < 0) {
			*done = rc_utf8_done(&v);
			/* Sticky: a later call fails too, at its first byte. */
			if (rc_utf8_feed(&v, p, len, &again) != -EILSEQ || again != 0)
				abort();
			return off + bad;
		}
		off += piece;
		piece = step;
	}
	*done = rc_utf8_done(&v);
	return NONE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p;
	size_t len, split, whole, two, bytewise;
	bool done_whole, done_two, done_bytes;

	if (size == 0)
		return 0;
	p = data + 1;
	len = size - 1;
	split = data[0] % (len + 1);

	whole = feed_pieces(p, len, len, len, &done_whole);
	two = feed_pieces(p, len, split, len, &done_two);
	bytewise = feed_pieces(p, len, 1, 1, &done_bytes);
	if (whole != two || whole != bytewise)
		abort();
	if (done_whole != done_two || done_whole != done_bytes)
		abort();
	if (rc_utf8_valid(p, len) != (whole == NONE && done_whole))
		abort();
	if (whole != NONE) {
		bool done;

		if (done_whole)
			abort();
		/* Fail fast: everything before the bad byte was still viable. */
		if (feed_pieces(p, whole, whole, whole, &done) != NONE)
			abort();
	}
	return 0;
}
