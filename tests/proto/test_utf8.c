/* Tests for proto/utf8.c: Markus Kuhn / Autobahn 6.x style cases, the exact
 * failing offset, every split point, a guard page after the input, every
 * code point, and a random comparison against an independent reference. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/utf8.h"

#define NO_ERROR ((size_t)-1)

/* Criterion may run each test in a freshly exec'd process, so a parameter
 * must not hold pointers into this image: the name is an array too. */
struct u8_case {
	char name[40];
	uint8_t bytes[48];
	size_t len;
	size_t bad_at; /* NO_ERROR for valid or merely truncated input */
	bool complete; /* ends on a code point boundary (when bad_at == NO_ERROR) */
};

#define U8(n, s, bad, done) { n, s, sizeof(s) - 1, bad, done }

static struct u8_case valid_cases[] = {
	U8("empty", "", NO_ERROR, true),
	U8("ascii", "Hello, world", NO_ERROR, true),
	U8("greek kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", NO_ERROR, true),
	U8("autobahn 6.2.1", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", NO_ERROR, true),
	U8("japanese", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7\xe3\x81\x99", NO_ERROR, true),
	U8("emoji", "ok \xf0\x9f\x98\x80 \xf0\x9f\x8e\x89", NO_ERROR, true),
	U8("U+0000", "\x00", NO_ERROR, true),
	U8("U+007F", "\x7f", NO_ERROR, true),
	U8("U+0080", "\xc2\x80", NO_ERROR, true),
	U8("U+07FF", "\xdf\xbf", NO_ERROR, true),
	U8("U+0800", "\xe0\xa0\x80", NO_ERROR, true),
	U8("U+D7FF", "\xed\x9f\xbf", NO_ERROR, true),
	U8("U+E000", "\xee\x80\x80", NO_ERROR, true),
	U8("U+FFFD", "\xef\xbf\xbd", NO_ERROR, true),
	U8("U+FFFE", "\xef\xbf\xbe", NO_ERROR, true),
	U8("U+FFFF", "\xef\xbf\xbf", NO_ERROR, true),
	U8("U+10000", "\xf0\x90\x80\x80", NO_ERROR, true),
	U8("U+10FFFF", "\xf4\x8f\xbf\xbf", NO_ERROR, true),
	U8("long ascii then 2-byte", "0123456789abcdefghijklmnop\xc3\xa9", NO_ERROR, true),
	/* Incomplete but not yet wrong: fail fast must not fail these. */
	U8("truncated 2-byte", "ab\xc3", NO_ERROR, false),
	U8("truncated 3-byte", "\xe2\x82", NO_ERROR, false),
	U8("truncated 4-byte", "\xf0\x9f\x98", NO_ERROR, false),
	U8("truncated F4", "\xf4\x8f", NO_ERROR, false),
	U8("truncated ED", "\xed", NO_ERROR, false),
};

static struct u8_case invalid_cases[] = {
	U8("lone continuation 80", "\x80", 0, false),
	U8("lone continuation BF", "\xbf", 0, false),
	U8("stray continuation", "a\x80", 1, false),
	U8("extra continuation", "\xc2\xa9\xa9", 2, false),
	U8("overlong / 2", "\xc0\xaf", 0, false),
	U8("overlong / 3", "\xe0\x80\xaf", 1, false),
	U8("overlong / 4", "\xf0\x80\x80\xaf", 1, false),
	U8("overlong / 5", "\xf8\x80\x80\x80\xaf", 0, false),
	U8("overlong / 6", "\xfc\x80\x80\x80\x80\xaf", 0, false),
	U8("max overlong 2", "\xc1\xbf", 0, false),
	U8("max overlong 3", "\xe0\x9f\xbf", 1, false),
	U8("max overlong 4", "\xf0\x8f\xbf\xbf", 1, false),
	U8("overlong NUL 2", "\xc0\x80", 0, false),
	U8("overlong NUL 3", "\xe0\x80\x80", 1, false),
	U8("surrogate D800", "\xed\xa0\x80", 1, false),
	U8("surrogate DB7F", "\xed\xad\xbf", 1, false),
	U8("surrogate DC00", "\xed\xb0\x80", 1, false),
	U8("surrogate DFFF", "\xed\xbf\xbf", 1, false),
	U8("surrogate pair", "\xed\xa0\x80\xed\xb0\x80", 1, false),
	U8("U+110000", "\xf4\x90\x80\x80", 1, false),
	U8("F5 lead", "\xf5\x80\x80\x80", 0, false),
	U8("F7 lead", "\xf7\xbf\xbf\xbf", 0, false),
	U8("5-byte form", "\xf8\x88\x80\x80\x80", 0, false),
	U8("6-byte form", "\xfc\x84\x80\x80\x80\x80", 0, false),
	U8("FE", "\xfe", 0, false),
	U8("FF", "\xff", 0, false),
	U8("FE FE FF FF", "\xfe\xfe\xff\xff", 0, false),
	U8("ascii then FE", "abc\xfe", 3, false),
	U8("2-byte lead then ascii", "\xc2" "A", 1, false),
	U8("3-byte truncated then ascii", "\xe2\x82" "A", 2, false),
	U8("truncated then new lead", "\xc2\xc2\xa9", 1, false),
	U8("4-byte truncated then lead", "\xf0\x9f\x98\xf0\x9f\x98\x80", 3, false),
	U8("autobahn 6.4.1", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 12, false),
	U8("autobahn 6.4.2", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80" "edited", 12, false),
	U8("fast path word 2", "0123456789abcdef\xff", 16, false),
	U8("fast path mid word", "0123456789\x80" "bcdefghij", 10, false),
	U8("after 2-byte in word", "abcd\xc3\xa9" "efgh\xc0\x80", 10, false),
};

/* Feeds c in two pieces split at `split` and checks verdict and offset. */
static void check_split(const struct u8_case *c, size_t split)
{
	struct rc_utf8 v;
	size_t bad = 12345;
	int rc;

	rc_utf8_init(&v);
	rc = rc_utf8_feed(&v, c->bytes, split, &bad);
	if (rc == 0)
		rc = rc_utf8_feed(&v, c->bytes + split, c->len - split, &bad),
		bad += split;
	if (c->bad_at == NO_ERROR) {
		cr_assert_eq(rc, 0, "%s split %zu: rc %d", c->name, split, rc);
		cr_assert_eq(rc_utf8_done(&v), c->complete, "%s split %zu", c->name, split);
	} else {
		cr_assert_eq(rc, -EILSEQ, "%s split %zu: rc %d", c->name, split, rc);
		cr_assert_eq(bad, c->bad_at, "%s split %zu: bad_at %zu", c->name, split, bad);
		cr_assert_not(rc_utf8_done(&v));
	}
}

static void check_bytewise(const struct u8_case *c)
{
	struct rc_utf8 v;
	size_t i, bad = 12345;
	int rc = 0;

	rc_utf8_init(&v);
	for (i = 0; i < c->len && rc == 0; i++)
		rc = rc_utf8_feed(&v, c->bytes + i, 1, &bad);
	if (c->bad_at == NO_ERROR) {
		cr_assert_eq(rc, 0, "%s bytewise", c->name);
		cr_assert_eq(rc_utf8_done(&v), c->complete, "%s bytewise", c->name);
	} else {
		cr_assert_eq(rc, -EILSEQ, "%s bytewise", c->name);
		cr_assert_eq(i - 1, c->bad_at, "%s bytewise failed at %zu", c->name, i - 1);
		cr_assert_eq(bad, 0);
	}
}

static void check_case(const struct u8_case *c)
{
	bool want = c->bad_at == NO_ERROR && c->complete;

	cr_assert_eq(rc_utf8_valid(c->bytes, c->len), want, "%s whole", c->name);
	for (size_t split = 0; split <= c->len; split++)
		check_split(c, split);
	check_bytewise(c);
}

ParameterizedTestParameters(utf8, valid)
{
	return cr_make_param_array(struct u8_case, valid_cases,
				   sizeof(valid_cases) / sizeof(valid_cases[0]));
}

ParameterizedTest(struct u8_case *c, utf8, valid)
{
	check_case(c);
}

ParameterizedTestParameters(utf8, invalid)
{
	return cr_make_param_array(struct u8_case, invalid_cases,
				   sizeof(invalid_cases) / sizeof(invalid_cases[0]));
}

ParameterizedTest(struct u8_case *c, utf8, invalid)
{
	check_case(c);
}

Test(utf8, sticky_error)
{
	struct rc_utf8 v;
	size_t bad = 99;

	rc_utf8_init(&v);
	cr_assert_eq(rc_utf8_feed(&v, (const uint8_t *)"ab\xff", 3, &bad), -EILSEQ);
	cr_assert_eq(bad, 2);
	cr_assert_eq(rc_utf8_feed(&v, (const uint8_t *)"abc", 3, &bad), -EILSEQ);
	cr_assert_eq(bad, 0);
	cr_assert_eq(rc_utf8_feed(&v, NULL, 0, NULL), -EILSEQ);
	cr_assert_not(rc_utf8_done(&v));
}

Test(utf8, done_only_at_boundary)
{
	static const uint8_t euro[] = { 0xe2, 0x82, 0xac };
	struct rc_utf8 v;

	rc_utf8_init(&v);
	cr_assert(rc_utf8_done(&v));
	for (size_t i = 0; i < sizeof(euro); i++) {
		cr_assert_eq(rc_utf8_feed(&v, euro + i, 1, NULL), 0);
		cr_assert_eq(rc_utf8_done(&v), i == sizeof(euro) - 1, "after byte %zu", i);
	}
	cr_assert_eq(rc_utf8_feed(&v, NULL, 0, NULL), 0);
	cr_assert(rc_utf8_done(&v));
}

/* Straightforward encoder that also produces forbidden forms: surrogates,
 * values past U+10FFFF and overlongs when n is forced larger. */
static size_t encode(uint32_t cp, size_t n, uint8_t *out)
{
	static const uint8_t lead[] = { 0, 0x00, 0xc0, 0xe0, 0xf0 };

	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		out[i] = 0x80 | (cp & 0x3f);
	out[0] = lead[n] | (uint8_t)cp;
	return n;
}

static size_t natural_len(uint32_t cp)
{
	return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Every scalar value is accepted; every surrogate, every overlong form and
 * every 4-byte value past U+10FFFF fails at its second byte. */
Test(utf8, every_code_point)
{
	uint8_t buf[4];
	size_t bad;

	for (uint32_t cp = 0; cp < 0x200000; cp++) {
		size_t n = natural_len(cp);
		bool ok = cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
		struct rc_utf8 v;

		encode(cp, n, buf);
		cr_assert_eq(rc_utf8_valid(buf, n), ok, "U+%04X", cp);
		if (!ok) {
			rc_utf8_init(&v);
			cr_assert_eq(rc_utf8_feed(&v, buf, n, &bad), -EILSEQ);
			cr_assert_eq(bad, cp > 0x13ffff ? 0 : 1, "U+%04X bad_at %zu", cp, bad);
		}
		for (size_t m = n + 1; m <= 4 && cp < 0x10000; m++) {
			encode(cp, m, buf);
			rc_utf8_init(&v);
			cr_assert_eq(rc_utf8_feed(&v, buf, m, &bad), -EILSEQ,
				     "overlong U+%04X in %zu bytes", cp, m);
			/* C0/C1 leads are wrong on their own. */
			cr_assert_eq(bad, buf[0] == 0xc0 || buf[0] == 0xc1 ? 0 : 1);
		}
	}
}

/* Inputs that end exactly where a PROT_NONE page begins: the word-at-a-time
 * fast path must never read past len. */
Test(utf8, guard_page)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
	for (size_t len = 0; len <= 40; len++) {
		uint8_t *p = map + page - len;
		size_t bad;
		struct rc_utf8 v;

		memset(p, 'x', len);
		cr_assert(rc_utf8_valid(p, len), "ascii len %zu", len);
		if (len >= 2) {
			p[len - 2] = 0xc3;
			p[len - 1] = 0xa9;
			cr_assert(rc_utf8_valid(p, len), "2-byte at end, len %zu", len);
			p[len - 1] = 0xc3;
			rc_utf8_init(&v);
			cr_assert_eq(rc_utf8_feed(&v, p, len, &bad), -EILSEQ);
			cr_assert_eq(bad, len - 1);
		}
	}
	munmap(map, (size_t)page * 2);
}

/* Reference validator, written from the RFC 3629 table rather than as a
 * DFA: a prefix of a sequence is viable while the interval of code points
 * its completions could encode still meets the allowed range for its
 * length.  The first byte that makes it non-viable is the failing byte. */
static bool ref_viable(const uint8_t *s, size_t known, size_t n)
{
	static const uint32_t lo[] = { 0, 0, 0x80, 0x800, 0x10000 };
	static const uint32_t hi[] = { 0, 0x7f, 0x7ff, 0xffff, 0x10ffff };
	uint32_t min = s[0] & (n == 1 ? 0x7f : 0x7f >> n), max;

	for (size_t i = 1; i < known; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return false;
		min = min << 6 | (s[i] & 0x3f);
	}
	max = min;
	for (size_t i = known; i < n; i++) {
		min <<= 6;
		max = max << 6 | 0x3f;
	}
	if (max < lo[n] || min > hi[n])
		return false;
	return !(min >= 0xd800 && max <= 0xdfff);
}

static size_t ref_seq_len(uint8_t b)
{
	if (b < 0x80)
		return 1;
	if ((b & 0xe0) == 0xc0)
		return 2;
	if ((b & 0xf0) == 0xe0)
		return 3;
	if ((b & 0xf8) == 0xf0)
		return 4;
	return 0;
}

/* Returns the failing offset or NO_ERROR; *complete tells whether the input
 * ended between code points. */
static size_t ref_check(const uint8_t *p, size_t len, bool *complete)
{
	size_t i = 0;

	*complete = true;
	while (i < len) {
		size_t n = ref_seq_len(p[i]);

		if (n == 0 || !ref_viable(p + i, 1, n))
			return i;
		for (size_t k = 2; k <= n; k++) {
			if (i + k - 1 >= len) {
				*complete = false;
				return NO_ERROR;
			}
			if (!ref_viable(p + i, k, n))
				return i + k - 1;
		}
		i += n;
	}
	return NO_ERROR;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

/* Mostly plausible text with sprinkled damage, so both sides get past the
 * first byte often enough to matter. */
static size_t random_text(uint8_t *buf, size_t cap)
{
	size_t len = 0, want = rnd() % cap;

	while (len + 4 <= want) {
		uint32_t r = rnd() % 10;

		if (r < 3)
			buf[len++] = (uint8_t)(rnd() % 0x80);
		else if (r < 7) {
			uint32_t cp = rnd() % 0x110000;

			len += encode(cp, natural_len(cp), buf + len);
		} else if (r < 9)
			buf[len++] = (uint8_t)rnd();
		else
			len += encode(rnd() % 0x200000, 1 + rnd() % 4, buf + len);
	}
	return len;
}

Test(utf8, random_vs_reference)
{
	uint8_t buf[64];

	rng_state = 0x243f6a8885a308d3ull;
	for (int iter = 0; iter < 200000; iter++) {
		size_t len = random_text(buf, sizeof(buf));
		size_t split = len ? rnd() % (len + 1) : 0;
		bool complete;
		size_t want = ref_check(buf, len, &complete);
		struct rc_utf8 v;
		size_t bad = NO_ERROR;
		int rc;

		rc_utf8_init(&v);
		rc = rc_utf8_feed(&v, buf, split, &bad);
		if (rc == 0) {
			rc = rc_utf8_feed(&v, buf + split, len - split, &bad);
			if (rc < 0)
				bad += split;
		}
		cr_assert_eq(rc < 0 ? bad : NO_ERROR, want,
			     "iteration %d len %zu split %zu: got %zu want %zu",
			     iter, len, split, rc < 0 ? bad : NO_ERROR, want);
		if (want == NO_ERROR)
			cr_assert_eq(rc_utf8_done(&v), complete, "iteration %d", iter);
		cr_assert_eq(rc_utf8_valid(buf, len), want == NO_ERROR && complete);
	}
}
