/* The inflater's work stays proportional to its input (issue 10, item 5).
 *
 * A message of real data followed by many empty final blocks (03 00: BFINAL
 * set, fixed codes, end of block) ends the deflate stream every two bytes.
 * Each end restarts zlib with the window kept; restarting by copying the
 * 32 KiB window out and back in cost 64 KiB of copying per two input bytes
 * (a 1 MB message stalled a loop for over a second).  zlib's dictionary calls
 * and inflate() are wrapped here to count that work without a clock: the
 * wrappers in this executable take precedence over libz's symbols for every
 * caller, proto/deflate.o included, and forward to the real ones. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "proto/deflate.h"

static size_t dict_bytes;   /* window bytes moved by the dictionary calls */
static size_t inflate_calls;

static void *real(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (!f)
		abort();
	return f;
}

int inflateGetDictionary(z_streamp strm, Bytef *dict, uInt *len)
{
	int (*f)(z_streamp, Bytef *, uInt *) = real("inflateGetDictionary");
	int ret = f(strm, dict, len);

	if (ret == Z_OK && len)
		dict_bytes += *len;
	return ret;
}

int inflateSetDictionary(z_streamp strm, const Bytef *dict, uInt len)
{
	int (*f)(z_streamp, const Bytef *, uInt) = real("inflateSetDictionary");

	dict_bytes += len;
	return f(strm, dict, len);
}

int inflate(z_streamp strm, int flush)
{
	int (*f)(z_streamp, int) = real("inflate");

	inflate_calls++;
	return f(strm, flush);
}

TestSuite(deflate_work, .timeout = 60);

/* Text that compresses, but with enough variety to fill the window. */
static void fill_text(uint8_t *p, size_t len)
{
	uint64_t s = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < len; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)('a' + (s >> 59) % 26);
	}
}

/* comp1 (32 KiB) and its flush tail, then blocks x "03 00", then comp2, the second half of the
 * same text again, which zlib encodes as references back into the window
 * comp1 filled (its largest distance is just under 32 KiB): the window must
 * survive every restart. */
static void run_case(bool piecewise)
{
	enum { DATA = 32768, BLOCKS = 20000 };
	uint8_t *plain = malloc(DATA), *out = malloc(2 * DATA);
	const size_t want = DATA + DATA / 2;
	uint8_t *msg = malloc(2 * rc_deflate_bound(DATA) + 4 + 2 * BLOCKS);
	struct rc_deflater d;
	struct rc_inflater f;
	size_t len = 0, got = 0;
	ssize_t n;

	cr_assert(plain && out && msg);
	fill_text(plain, DATA);
	cr_assert_eq(rc_deflater_init(&d, 15, false, 6), 0);
	cr_assert_eq(rc_inflater_init(&f, false), 0);
	n = rc_deflate_message(&d, plain, DATA, msg, rc_deflate_bound(DATA));
	cr_assert_gt(n, 0);
	len = (size_t)n;
	memcpy(msg + len, "\x00\x00\xff\xff", 4); /* ends comp1's flush block */
	len += 4;
	for (int i = 0; i < BLOCKS; i++) {
		msg[len++] = 0x03;
		msg[len++] = 0x00;
	}
	n = rc_deflate_message(&d, plain + DATA / 2, DATA / 2, msg + len,
			       rc_deflate_bound(DATA / 2));
	cr_assert_gt(n, 0);
	cr_assert_lt((size_t)n, DATA / 64, "the second copy is back-references");
	len += (size_t)n;

	dict_bytes = inflate_calls = 0;
	if (piecewise) {
		/* 1 KiB pieces through the streaming form, as core/ feeds it. */
		const uint8_t *p = msg;
		size_t left = len;

		while (left) {
			size_t take = left < 1024 ? left : 1024;
			const uint8_t *q = p;
			size_t ql = take;

			cr_assert_eq(rc_inflate_stream(&f, &q, &ql, take == left, out,
						       2 * DATA, &got), 0);
			cr_assert_eq(ql, 0);
			p += take;
			left -= take;
		}
	} else {
		cr_assert_eq(rc_inflate_piece(&f, msg, len, true, out, 2 * DATA, &got), 0);
	}
	cr_assert_eq(got, want);
	cr_assert_arr_eq(out, plain, DATA);
	cr_assert_arr_eq(out + DATA, plain + DATA / 2, DATA / 2);
	/* No window copying per block: at most one window's worth in all. */
	cr_assert_leq(dict_bytes, (size_t)DATA, "%zu window bytes copied for %d restarts",
		      dict_bytes, BLOCKS);
	/* One inflate() per block it must restart after, plus a few per piece. */
	cr_assert_leq(inflate_calls, (size_t)BLOCKS + 4 * (len / 1024 + 2),
		      "%zu inflate calls", inflate_calls);
	rc_inflater_free(&f);
	rc_deflater_free(&d);
	free(plain);
	free(out);
	free(msg);
}

Test(deflate_work, empty_final_blocks_cost_no_window_copies)
{
	run_case(false);
}

Test(deflate_work, empty_final_blocks_streamed_in_pieces)
{
	run_case(true);
}
