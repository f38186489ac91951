/* Tests for proto/deflate.c: the RFC 7692 section 7.2.3 examples byte for
 * byte, every split point and a guard page for the inflater, random round
 * trips over every window and takeover mode (Autobahn 12/13 sizes
 * included), the bomb stop at cap, corrupt input, -ENOSPC, the bound, and
 * zlib's allocations counted to show none happens per message. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/deflate.h"

/* xorshift64*: fixed seeds keep every run the same. */
static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
	rng_state = s ? s : 0x9e3779b97f4a7c15ull;
}

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t rng_below(size_t n)
{
	return n ? (size_t)(rng() % n) : 0;
}

/* Random bytes, or text from a small vocabulary (compressible, the kind of
 * payload Autobahn's 12.x/13.x cases send). */
static void fill(uint8_t *p, size_t len, bool text)
{
	static const char *words[] = { "ringcast ", "websocket ", "topic ",
		"publish ", "subscribe ", "{\"seq\":", "42,", "\"data\":\"",
		"hello ", "world ", "\n", "deflate ", "0123456789" };
	size_t i = 0;

	if (!text) {
		for (i = 0; i < len; i++)
			p[i] = (uint8_t)rng();
		return;
	}
	while (i < len) {
		const char *w = words[rng_below(sizeof(words) / sizeof(*words))];

		for (; *w && i < len; w++)
			p[i++] = (uint8_t)*w;
	}
}

/* len bytes whose end touches a PROT_NONE page: reading past it faults. */
struct guarded {
	uint8_t *p;
	void *map;
	size_t maplen;
};

static struct guarded guard_alloc(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data = (len + page - 1) / page * page;
	struct guarded g;

	g.maplen = data + page;
	g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(g.map, MAP_FAILED);
	cr_assert_eq(mprotect((uint8_t *)g.map + data, page, PROT_NONE), 0);
	g.p = (uint8_t *)g.map + data - len;
	return g;
}

static void guard_free(struct guarded *g)
{
	munmap(g->map, g->maplen);
}

static ssize_t deflate_msg(struct rc_deflater *d, const uint8_t *in,
			   size_t len, uint8_t *out)
{
	return rc_deflate_message(d, in, len, out, rc_deflate_bound(len));
}

/* ---- RFC 7692 section 7.2.3 ---------------------------------------- */

static const uint8_t hello_c[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
static const uint8_t hello_again_c[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };

Test(deflate, rfc_hello)
{
	struct rc_deflater d;
	uint8_t out[64];

	cr_assert_eq(rc_deflater_init(&d, 15, true, Z_DEFAULT_COMPRESSION), 0);
	for (int i = 0; i < 3; i++) {
		ssize_t n = rc_deflate_message(&d, (const uint8_t *)"Hello", 5,
					       out, sizeof(out));

		/* No context takeover: the same bytes every time. */
		cr_assert_eq(n, (ssize_t)sizeof(hello_c));
		cr_assert_arr_eq(out, hello_c, sizeof(hello_c));
	}
	rc_deflater_free(&d);
}

Test(deflate, rfc_hello_twice_context_takeover)
{
	struct rc_deflater d;
	struct rc_inflater f;
	uint8_t out[64], plain[16];
	ssize_t n;
	size_t got = 0;

	cr_assert_eq(rc_deflater_init(&d, 15, false, Z_DEFAULT_COMPRESSION), 0);
	n = rc_deflate_message(&d, (const uint8_t *)"Hello", 5, out, sizeof(out));
	cr_assert_eq(n, (ssize_t)sizeof(hello_c));
	cr_assert_arr_eq(out, hello_c, sizeof(hello_c));
	n = rc_deflate_message(&d, (const uint8_t *)"Hello", 5, out, sizeof(out));
	cr_assert_eq(n, (ssize_t)sizeof(hello_again_c));
	cr_assert_arr_eq(out, hello_again_c, sizeof(hello_again_c));
	rc_deflater_free(&d);

	/* The inflater keeps the window across messages... */
	cr_assert_eq(rc_inflater_init(&f, false), 0);
	cr_assert_eq(rc_inflate_piece(&f, hello_c, sizeof(hello_c), true, plain,
				      sizeof(plain), &got), 0);
	cr_assert_eq(got, 5);
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, hello_again_c, sizeof(hello_again_c),
				      true, plain, sizeof(plain), &got), 0);
	cr_assert_eq(got, 5);
	cr_assert_arr_eq(plain, "Hello", 5);
	rc_inflater_free(&f);

	/* ...and one without takeover forgets it: the back reference fails. */
	cr_assert_eq(rc_inflater_init(&f, true), 0);
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, hello_c, sizeof(hello_c), true, plain,
				      sizeof(plain), &got), 0);
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, hello_again_c, sizeof(hello_again_c),
				      true, plain, sizeof(plain), &got), -EPROTO);
	rc_inflater_free(&f);
}

Test(deflate, empty_message_is_one_zero_byte)
{
	struct rc_deflater d;
	uint8_t out[16];

	for (int nct = 0; nct < 2; nct++) {
		cr_assert_eq(rc_deflater_init(&d, 12, nct, 6), 0);
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(rc_deflate_message(&d, NULL, 0, out, sizeof(out)), 1);
			cr_assert_eq(out[0], 0x00);
			/* Also between real messages. */
			cr_assert_gt(rc_deflate_message(&d, (const uint8_t *)"abcabc", 6,
							out, sizeof(out)), 0);
		}
		rc_deflater_free(&d);
	}
}

/* Payloads a peer may send for "Hello" (or ""), each inflated whole, split
 * at every byte, one byte at a time and against a guard page. */
struct inflate_case {
	char name[48];
	uint8_t bytes[24];
	size_t len;
	char plain[8];
};

static struct inflate_case inflate_cases[] = {
	{ "7.2.3.1 compressed", { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 }, 7, "Hello" },
	{ "7.2.3.3 no compression", { 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65,
	  0x6c, 0x6c, 0x6f, 0x00 }, 11, "Hello" },
	{ "7.2.3.4 BFINAL set", { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 },
	  8, "Hello" },
	{ "BFINAL without the empty block", { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
	  0x00 }, 7, "Hello" },
	{ "7.2.3.5 two blocks", { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff,
	  0xca, 0xc9, 0xc9, 0x07, 0x00 }, 13, "Hello" },
	{ "7.2.3.6 empty message", { 0x00 }, 1, "" },
	{ "empty payload", { 0 }, 0, "" },
};

ParameterizedTestParameters(deflate, inflate_vectors)
{
	return cr_make_param_array(struct inflate_case, inflate_cases,
				   sizeof(inflate_cases) / sizeof(*inflate_cases));
}

static void inflate_split(const struct inflate_case *c, size_t at,
			  bool bytewise, bool nct)
{
	struct rc_inflater f;
	uint8_t out[16];
	size_t got = 0;
	size_t plen = strlen(c->plain);

	cr_assert_eq(rc_inflater_init(&f, nct), 0);
	/* Twice: the second message checks the state the first one left. */
	for (int round = 0; round < 2; round++) {
		got = 0;
		if (bytewise) {
			for (size_t i = 0; i < c->len; i++)
				cr_assert_eq(rc_inflate_piece(&f, c->bytes + i, 1, false,
							      out, sizeof(out), &got), 0);
			cr_assert_eq(rc_inflate_piece(&f, NULL, 0, true, out,
						      sizeof(out), &got), 0, "%s", c->name);
		} else {
			cr_assert_eq(rc_inflate_piece(&f, c->bytes, at, false, out,
						      sizeof(out), &got), 0);
			cr_assert_eq(rc_inflate_piece(&f, c->bytes + at, c->len - at, true,
						      out, sizeof(out), &got), 0,
				     "%s split at %zu", c->name, at);
		}
		cr_assert_eq(got, plen, "%s", c->name);
		cr_assert_arr_eq(out, c->plain, plen);
	}
	rc_inflater_free(&f);
}

ParameterizedTest(struct inflate_case *c, deflate, inflate_vectors)
{
	struct rc_inflater f;
	struct guarded g = guard_alloc(c->len);
	uint8_t out[16];
	size_t got = 0;

	for (size_t at = 0; at <= c->len; at++) {
		inflate_split(c, at, false, false);
		inflate_split(c, at, false, true);
	}
	inflate_split(c, 0, true, false);

	/* Input ending right at a guard page. */
	memcpy(g.p, c->bytes, c->len);
	cr_assert_eq(rc_inflater_init(&f, false), 0);
	cr_assert_eq(rc_inflate_piece(&f, g.p, c->len, true, out, sizeof(out),
				      &got), 0);
	cr_assert_eq(got, strlen(c->plain));
	rc_inflater_free(&f);
	guard_free(&g);
}

Test(deflate, bfinal_keeps_window_for_takeover)
{
	/* A final block, then a message referring back into it. */
	static const uint8_t m1[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 };
	struct rc_inflater f;
	uint8_t out[16];
	size_t got = 0;

	cr_assert_eq(rc_inflater_init(&f, false), 0);
	cr_assert_eq(rc_inflate_piece(&f, m1, sizeof(m1), true, out, sizeof(out), &got), 0);
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, hello_again_c, sizeof(hello_again_c), true,
				      out, sizeof(out), &got), 0);
	cr_assert_eq(got, 5);
	cr_assert_arr_eq(out, "Hello", 5);
	rc_inflater_free(&f);
}

/* ---- errors ---------------------------------------------------------- */

struct bad_case {
	char name[40];
	uint8_t bytes[16];
	size_t len;
};

static struct bad_case bad_cases[] = {
	{ "reserved block type", { 0xff, 0xff, 0xff }, 3 },
	{ "stored NLEN mismatch", { 0x00, 0x05, 0x00, 0x00, 0x00, 'H' }, 6 },
	{ "distance too far back", { 0xf2, 0x00, 0x11, 0x00, 0x00 }, 5 },
	{ "ends inside a stored block", { 0x00, 0x0a, 0x00, 0xf5, 0xff, 'H' }, 6 },
	{ "ends inside a block", { 0xf2, 0x48, 0xcd }, 3 },
};

ParameterizedTestParameters(deflate, corrupt)
{
	return cr_make_param_array(struct bad_case, bad_cases,
				   sizeof(bad_cases) / sizeof(*bad_cases));
}

ParameterizedTest(struct bad_case *c, deflate, corrupt)
{
	struct rc_inflater f;
	uint8_t out[64];
	size_t got = 0;

	cr_assert_eq(rc_inflater_init(&f, false), 0);
	cr_assert_eq(rc_inflate_piece(&f, c->bytes, c->len, true, out, sizeof(out),
				      &got), -EPROTO, "%s", c->name);
	/* The inflater is reset and decodes a good message afterwards. */
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, hello_c, sizeof(hello_c), true, out,
				      sizeof(out), &got), 0);
	cr_assert_eq(got, 5);
	rc_inflater_free(&f);
}

Test(deflate, bad_arguments)
{
	struct rc_deflater d;
	struct rc_inflater f;
	uint8_t out[8];
	size_t got = 9;

	cr_assert_eq(rc_deflater_init(&d, 8, true, 6), -EINVAL);
	rc_deflater_free(&d); /* safe after a failed init */
	cr_assert_eq(rc_deflater_init(&d, 16, true, 6), -EINVAL);
	cr_assert_eq(rc_deflater_init(&d, 15, true, 10), -EINVAL);
	cr_assert_eq(rc_deflater_init(&d, 15, true, -2), -EINVAL);
	cr_assert_eq(rc_deflate_message(&d, out, 1, out, sizeof(out)), -EINVAL);
	cr_assert_eq(rc_deflater_init(&d, 9, false, 0), 0);
	cr_assert_eq(rc_deflate_once(&d, out, 1, out, sizeof(out)), -EINVAL);
	rc_deflater_free(&d);
	rc_deflater_free(&d);
	cr_assert_eq(rc_inflater_init(&f, false), 0);
	cr_assert_eq(rc_inflate_piece(&f, hello_c, 7, true, out, sizeof(out), &got),
		     -EINVAL);
	rc_inflater_free(&f);
	rc_inflater_free(&f);
}

/* ---- output bounds ---------------------------------------------------- */

Test(deflate, bomb_stops_at_cap, .timeout = 60)
{
	const size_t zeros = 16u << 20, cap = 1u << 20;
	uint8_t *plain = calloc(zeros, 1), *comp = malloc(rc_deflate_bound(zeros));
	struct rc_deflater d;
	struct rc_inflater f;
	struct guarded g = guard_alloc(cap);
	ssize_t n;
	size_t got = 0;

	cr_assert(plain && comp);
	cr_assert_eq(rc_deflater_init(&d, 15, true, 9), 0);
	n = deflate_msg(&d, plain, zeros, comp);
	cr_assert_gt(n, 0);
	cr_assert_lt(n, 32 * 1024, "16 MiB of zeros is a few KiB compressed");
	rc_deflater_free(&d);

	/* The output buffer ends at a guard page: one byte past cap faults. */
	cr_assert_eq(rc_inflater_init(&f, false), 0);
	cr_assert_eq(rc_inflate_piece(&f, comp, (size_t)n, true, g.p, cap, &got),
		     -EMSGSIZE);
	cr_assert_eq(got, cap);
	/* The same in small pieces. */
	got = 0;
	int ret = 0;
	for (size_t off = 0; off < (size_t)n && ret == 0; off += 100) {
		size_t len = (size_t)n - off < 100 ? (size_t)n - off : 100;

		ret = rc_inflate_piece(&f, comp + off, len, off + len == (size_t)n,
				       g.p, cap, &got);
	}
	cr_assert_eq(ret, -EMSGSIZE);
	cr_assert_eq(got, cap);
	rc_inflater_free(&f);
	guard_free(&g);
	free(plain);
	free(comp);
}

Test(deflate, exact_cap)
{
	uint8_t plain[3000], comp[4000], out[3000];
	struct rc_deflater d;
	struct rc_inflater f;
	ssize_t n;
	size_t got = 0;

	rng_seed(7);
	fill(plain, sizeof(plain), true);
	cr_assert_eq(rc_deflater_init(&d, 15, true, 6), 0);
	n = deflate_msg(&d, plain, sizeof(plain), comp);
	cr_assert_gt(n, 0);
	cr_assert_eq(rc_inflater_init(&f, true), 0);
	cr_assert_eq(rc_inflate_piece(&f, comp, (size_t)n, true, out, sizeof(out),
				      &got), 0);
	cr_assert_eq(got, sizeof(plain));
	cr_assert_arr_eq(out, plain, sizeof(plain));
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, comp, (size_t)n, true, out,
				      sizeof(out) - 1, &got), -EMSGSIZE);
	cr_assert_eq(got, sizeof(out) - 1);
	rc_inflater_free(&f);
	rc_deflater_free(&d);
}

/* Every cap from 0 to the compressed length: too small is -ENOSPC, exactly
 * the length gives the same bytes (the dropped tail may not fit in out). */
Test(deflate, enospc_at_every_cap)
{
	static const size_t sizes[] = { 0, 1, 5, 100, 1000, 5000 };
	uint8_t plain[5000], ref[6000], out[6000];
	struct rc_deflater d;

	rng_seed(11);
	cr_assert_eq(rc_deflater_init(&d, 10, true, 6), 0);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
		size_t len = sizes[s];
		ssize_t n;

		fill(plain, len, s % 2);
		n = deflate_msg(&d, plain, len, ref);
		cr_assert_gt(n, 0);
		for (size_t cap = 0; cap <= (size_t)n; cap++) {
			ssize_t r = rc_deflate_message(&d, plain, len, out, cap);

			if (cap < (size_t)n) {
				cr_assert_eq(r, -ENOSPC, "len %zu cap %zu", len, cap);
				continue;
			}
			cr_assert_eq(r, n);
			cr_assert_arr_eq(out, ref, (size_t)n);
		}
	}
	rc_deflater_free(&d);
}

/* With context takeover, a message that did not fit goes out uncompressed;
 * the peer never sees it, and the next compressed one must still decode. */
Test(deflate, enospc_keeps_takeover_stream_valid)
{
	uint8_t a[2000], b[2000], comp[4000], out[2000];
	struct rc_deflater d;
	struct rc_inflater f;
	ssize_t n;
	size_t got;

	rng_seed(3);
	fill(a, sizeof(a), true);
	memcpy(b, a, sizeof(b));
	b[1000] ^= 1;
	cr_assert_eq(rc_deflater_init(&d, 15, false, 6), 0);
	cr_assert_eq(rc_inflater_init(&f, false), 0);
	n = deflate_msg(&d, a, sizeof(a), comp);
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, comp, (size_t)n, true, out, sizeof(out), &got), 0);
	cr_assert_eq(rc_deflate_message(&d, b, sizeof(b), comp, 10), -ENOSPC);
	n = deflate_msg(&d, b, sizeof(b), comp);
	cr_assert_gt(n, 0);
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, comp, (size_t)n, true, out, sizeof(out), &got), 0);
	cr_assert_eq(got, sizeof(b));
	cr_assert_arr_eq(out, b, sizeof(b));
	rc_inflater_free(&f);
	rc_deflater_free(&d);
}

Test(deflate, bound_holds_for_every_window_and_level, .timeout = 120)
{
	static const size_t sizes[] = { 0, 1, 17, 255, 4096, 70000, 300000 };
	uint8_t *plain = malloc(300000), *out = malloc(rc_deflate_bound(300000));

	cr_assert(plain && out);
	rng_seed(5);
	for (int wb = 9; wb <= 15; wb++) {
		for (int level = 0; level <= 9; level += (wb == 9 ? 1 : 3)) {
			struct rc_deflater d;

			cr_assert_eq(rc_deflater_init(&d, wb, false, level), 0);
			for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
				size_t len = sizes[s];
				ssize_t n;

				fill(plain, len, false);
				n = deflate_msg(&d, plain, len, out);
				cr_assert_gt(n, 0, "wb %d level %d len %zu", wb, level, len);
				cr_assert_leq((size_t)n, rc_deflate_bound(len));
			}
			rc_deflater_free(&d);
		}
	}
	cr_assert_geq(rc_deflate_bound(SIZE_MAX), SIZE_MAX);
	free(plain);
	free(out);
}

/* ---- round trips -------------------------------------------------------- */

/* Feeds comp to f in random pieces (some empty), checks the result. */
static void inflate_random_pieces(struct rc_inflater *f, const uint8_t *comp,
				  size_t n, const uint8_t *plain, size_t len,
				  uint8_t *out, size_t cap)
{
	size_t got = 0, off = 0;

	while (off < n) {
		size_t piece = rng_below(n - off + 1);

		cr_assert_eq(rc_inflate_piece(f, comp + off, piece, false, out, cap,
					      &got), 0);
		off += piece;
	}
	cr_assert_eq(rc_inflate_piece(f, NULL, 0, true, out, cap, &got), 0);
	cr_assert_eq(got, len);
	cr_assert(memcmp(out, plain, len) == 0);
}

/* msgs messages of random sizes below max through one deflater/inflater
 * pair, as a connection would, for every window and takeover mode. */
static void round_trips(size_t max, int msgs, uint64_t seed)
{
	uint8_t *plain = malloc(max), *out = malloc(max);
	uint8_t *comp = malloc(rc_deflate_bound(max));

	cr_assert(plain && out && comp);
	rng_seed(seed);
	for (int wb = 9; wb <= 15; wb++) {
		for (int nct = 0; nct < 2; nct++) {
			struct rc_deflater d;
			struct rc_inflater f;

			cr_assert_eq(rc_deflater_init(&d, wb, nct, Z_DEFAULT_COMPRESSION), 0);
			cr_assert_eq(rc_inflater_init(&f, nct), 0);
			for (int m = 0; m < msgs; m++) {
				size_t len = rng_below(max);
				ssize_t n;

				fill(plain, len, rng() % 4 != 0);
				n = deflate_msg(&d, plain, len, comp);
				cr_assert_gt(n, 0);
				if (m % 2) {
					size_t got = 0;

					cr_assert_eq(rc_inflate_piece(&f, comp, (size_t)n, true,
								      out, len, &got), 0,
						     "wb %d nct %d msg %d len %zu", wb, nct, m, len);
					cr_assert_eq(got, len);
					cr_assert(memcmp(out, plain, len) == 0);
				} else {
					inflate_random_pieces(&f, comp, (size_t)n, plain, len,
							      out, len);
				}
			}
			rc_inflater_free(&f);
			rc_deflater_free(&d);
		}
	}
	free(plain);
	free(out);
	free(comp);
}

Test(deflate, round_trip_up_to_256k, .timeout = 300)
{
	round_trips(256 * 1024, 6, 1);
}

Test(deflate, round_trip_small_messages, .timeout = 120)
{
	round_trips(600, 200, 2);
}

/* Autobahn 12.x/13.x: messages of 16..131072 bytes, many in sequence, for
 * every window and takeover combination. */
Test(deflate, autobahn_sizes, .timeout = 300)
{
	static const size_t sizes[] = { 16, 64, 256, 1024, 4096, 8192, 16384,
					32768, 65536, 131072 };
	size_t max = 131072;
	uint8_t *plain = malloc(max), *out = malloc(max);
	uint8_t *comp = malloc(rc_deflate_bound(max));

	cr_assert(plain && out && comp);
	rng_seed(12);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
		for (int wb = 9; wb <= 15; wb++) {
			for (int nct = 0; nct < 2; nct++) {
				struct rc_deflater d;
				struct rc_inflater f;
				int msgs = sizes[s] >= 32768 ? 3 : 10;

				cr_assert_eq(rc_deflater_init(&d, wb, nct, 6), 0);
				cr_assert_eq(rc_inflater_init(&f, nct), 0);
				for (int m = 0; m < msgs; m++) {
					size_t got = 0;
					ssize_t n;

					fill(plain, sizes[s], true);
					n = deflate_msg(&d, plain, sizes[s], comp);
					cr_assert_gt(n, 0);
					cr_assert_eq(rc_inflate_piece(&f, comp, (size_t)n, true,
								      out, max, &got), 0);
					cr_assert_eq(got, sizes[s]);
					cr_assert(memcmp(out, plain, got) == 0);
				}
				rc_inflater_free(&f);
				rc_deflater_free(&d);
			}
		}
	}
	free(plain);
	free(out);
	free(comp);
}

/* Compress once: the bytes are what a fresh deflater gives, and they decode
 * for peers whose inflaters hold unrelated history (takeover or not). */
Test(deflate, deflate_once_serves_every_peer)
{
	uint8_t plain[4000], first[8000], once[8000], out[4000];
	struct rc_deflater scratch, fresh;
	struct rc_inflater peers[2];
	ssize_t n, m;

	rng_seed(9);
	cr_assert_eq(rc_deflater_init(&scratch, 12, true, 6), 0);
	cr_assert_eq(rc_inflater_init(&peers[0], false), 0);
	cr_assert_eq(rc_inflater_init(&peers[1], true), 0);
	for (int i = 0; i < 5; i++) {
		fill(plain, sizeof(plain), true);
		n = rc_deflate_once(&scratch, plain, sizeof(plain), once, sizeof(once));
		cr_assert_gt(n, 0);
		cr_assert_eq(rc_deflater_init(&fresh, 12, false, 6), 0);
		m = deflate_msg(&fresh, plain, sizeof(plain), first);
		rc_deflater_free(&fresh);
		cr_assert_eq(n, m);
		cr_assert_arr_eq(once, first, (size_t)n);
		for (int p = 0; p < 2; p++) {
			size_t got = 0;

			cr_assert_eq(rc_inflate_piece(&peers[p], once, (size_t)n, true, out,
						      sizeof(out), &got), 0);
			cr_assert_eq(got, sizeof(plain));
			cr_assert_arr_eq(out, plain, sizeof(plain));
		}
	}
	rc_inflater_free(&peers[0]);
	rc_inflater_free(&peers[1]);
	rc_deflater_free(&scratch);
}

/* ---- allocations ---------------------------------------------------------- */

struct alloc_count {
	long allocs;
	long frees;
};

static voidpf count_alloc(voidpf opaque, uInt items, uInt size)
{
	((struct alloc_count *)opaque)->allocs++;
	return calloc(items, size);
}

static void count_free(voidpf opaque, voidpf p)
{
	((struct alloc_count *)opaque)->frees++;
	free(p);
}

Test(deflate, no_allocation_per_message)
{
	struct alloc_count cnt = { 0, 0 };
	struct rc_pmd_alloc a = { count_alloc, count_free, &cnt };
	static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 };
	static const uint8_t junk[] = { 0xff, 0xff, 0xff };
	uint8_t plain[20000], comp[30000], out[20000], small[3];
	struct rc_deflater d[2];
	struct rc_inflater f[2];
	long after_init;

	rng_seed(4);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(rc_deflater_init_alloc(&d[i], 9 + 6 * i, i, 6, &a), 0);
		cr_assert_eq(rc_inflater_init_alloc(&f[i], i, &a), 0);
	}
	after_init = cnt.allocs;
	cr_assert_gt(after_init, 0, "the counting allocator is used");
	for (int m = 0; m < 50; m++) {
		/* Over 200 bytes so the -ENOSPC below always happens: it resets
		 * the takeover deflater, which keeps it in step with the
		 * inflater the error paths reset. */
		size_t len = 200 + rng_below(sizeof(plain) - 200);

		fill(plain, len, m % 3 != 0);
		for (int i = 0; i < 2; i++) {
			size_t got = 0;
			ssize_t n = deflate_msg(&d[i], plain, len, comp);

			cr_assert_gt(n, 0);
			cr_assert_eq(rc_inflate_piece(&f[i], comp, (size_t)n, true, out,
						      sizeof(out), &got), 0);
			cr_assert_eq(rc_deflate_message(&d[i], plain, len, small, 3),
				     -ENOSPC);
			/* Error and restart paths must not allocate either. */
			got = 0;
			cr_assert_eq(rc_inflate_piece(&f[i], bfinal, sizeof(bfinal), true,
						      out, sizeof(out), &got), 0);
			got = 0;
			cr_assert_eq(rc_inflate_piece(&f[i], junk, sizeof(junk), true, out,
						      sizeof(out), &got), -EPROTO);
			got = 0;
			cr_assert_eq(rc_inflate_piece(&f[i], comp, (size_t)n, true, out,
						      len / 2, &got), -EMSGSIZE, "i %d m %d len %zu got %zu", i, m, len, got);
		}
	}
	cr_assert_eq(cnt.allocs, after_init, "zlib allocated after init");
	for (int i = 0; i < 2; i++) {
		rc_deflater_free(&d[i]);
		rc_inflater_free(&f[i]);
	}
	cr_assert_eq(cnt.frees, cnt.allocs);
}

/* ---- rc_inflate_stream ------------------------------------------------------ */

/* Inflates comp through rc_inflate_stream in random input pieces into a
 * buffer that starts at `start` bytes and grows by random steps up to
 * limit.  Returns 0 or the error; -ENOBUFS only at the limit. */
static int stream_growing(struct rc_inflater *f, const uint8_t *comp, size_t n,
			  uint8_t *out, size_t start, size_t limit, size_t *got)
{
	size_t cap = start < limit ? start : limit, off = 0;

	*got = 0;
	for (;;) {
		size_t piece = off == n ? 0 : 1 + rng_below(n - off);
		const uint8_t *p = comp + off;
		size_t left = piece;
		bool last = off + piece == n;
		int ret;

		for (;;) {
			ret = rc_inflate_stream(f, &p, &left, last, out, cap, got);
			if (ret != -ENOBUFS)
				break;
			cr_assert_eq(*got, cap, "-ENOBUFS only with out full");
			if (cap == limit)
				return -ENOBUFS;
			cap += 1 + rng_below(64);
			if (cap > limit)
				cap = limit;
		}
		if (ret < 0)
			return ret;
		cr_assert_eq(left, 0);
		cr_assert_eq(p, comp + off + piece);
		off += piece;
		if (last)
			return 0;
	}
}

Test(deflate, stream_growing_buffer, .timeout = 60)
{
	uint8_t plain[20000], comp[30000], out[20000];

	rng_seed(21);
	for (int nct = 0; nct < 2; nct++) {
		struct rc_deflater d;
		struct rc_inflater f;

		cr_assert_eq(rc_deflater_init(&d, 11, nct, 6), 0);
		cr_assert_eq(rc_inflater_init(&f, nct), 0);
		for (int m = 0; m < 60; m++) {
			size_t len = rng_below(sizeof(plain)), got;
			ssize_t n;

			fill(plain, len, m % 4 != 0);
			n = deflate_msg(&d, plain, len, comp);
			cr_assert_gt(n, 0);
			/* A limit of exactly len must succeed: -ENOBUFS is only
			 * returned when another byte is certain. */
			cr_assert_eq(stream_growing(&f, comp, (size_t)n, out,
						    rng_below(100), len, &got), 0,
				     "nct %d msg %d len %zu", nct, m, len);
			cr_assert_eq(got, len);
			cr_assert(memcmp(out, plain, len) == 0);
		}
		rc_inflater_free(&f);
		rc_deflater_free(&d);
	}
}

Test(deflate, stream_limit_is_exact)
{
	uint8_t plain[5000], comp[8000], out[5000];
	struct rc_deflater d;
	struct rc_inflater f;
	size_t got;
	ssize_t n;

	rng_seed(22);
	fill(plain, sizeof(plain), true);
	cr_assert_eq(rc_deflater_init(&d, 15, true, 6), 0);
	n = deflate_msg(&d, plain, sizeof(plain), comp);
	cr_assert_eq(rc_inflater_init(&f, true), 0);
	cr_assert_eq(stream_growing(&f, comp, (size_t)n, out, 0, sizeof(plain) - 1,
				    &got), -ENOBUFS);
	cr_assert_eq(got, sizeof(plain) - 1);
	/* After an error (which resets the stream) the inflater decodes a
	 * whole message again. */
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, (const uint8_t *)"\xff\xff", 2, true, out,
				      sizeof(out), &got), -EPROTO);
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, comp, (size_t)n, true, out, sizeof(out),
				      &got), 0);
	cr_assert_eq(got, sizeof(plain));
	rc_inflater_free(&f);
	rc_deflater_free(&d);
}

/* A stored block whose last bytes are the appended tail: the tail itself is
 * output, so -ENOBUFS can come in the middle of it. */
Test(deflate, stream_enobufs_inside_tail)
{
	static const uint8_t msg[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 'H' };
	static const uint8_t want[] = { 'H', 0x00, 0x00, 0xff, 0xff };
	struct rc_inflater f;
	uint8_t out[8];
	size_t got = 0, cap = 0;
	const uint8_t *p = msg;
	size_t left = sizeof(msg);
	int ret, nobufs = 0;

	cr_assert_eq(rc_inflater_init(&f, false), 0);
	while ((ret = rc_inflate_stream(&f, &p, &left, true, out, cap, &got)) == -ENOBUFS) {
		cr_assert_eq(got, cap);
		cap++;
		nobufs++;
	}
	cr_assert_eq(ret, 0, "ret %d got %zu cap %zu", ret, got, cap);
	cr_assert_eq(got, sizeof(want));
	cr_assert_arr_eq(out, want, sizeof(want));
	cr_assert_eq(nobufs, (int)sizeof(want));
	/* The stream is clean for the next message. */
	got = 0;
	cr_assert_eq(rc_inflate_piece(&f, hello_c, sizeof(hello_c), true, out,
				      sizeof(out), &got), 0);
	cr_assert_eq(got, 5);
	rc_inflater_free(&f);
}
