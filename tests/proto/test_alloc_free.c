/* The "no allocation" proof for proto/: frame encode/parse/mask, close
 * payloads, UTF-8 validation, permessage-deflate messages after *_init and
 * HTTP request-head parsing never call the allocator.
 *
 * Counting uses support/alloc_count.c (malloc & co. replaced by
 * counting wrappers).  Criterion allocates for its own bookkeeping, also in
 * the test process and possibly from other threads, so only the calling
 * thread's counter is read, and only around the calls under test: no
 * assertion runs inside a measured region (a failing one would allocate). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/deflate.h"
#include "proto/frame.h"
#include "proto/http.h"
#include "proto/utf8.h"
#include "support/alloc_count.h"

/* The unit-test binary is built from tests/<dir>/test_*.c only, so the
 * counting allocator is compiled in here (and must not also be linked). */
#include "support/alloc_count.c"

static uint64_t mark;

static void measure_begin(void)
{
	mark = rc_alloc_count_thread();
}

static uint64_t measure_end(void)
{
	return rc_alloc_count_thread() - mark;
}

static void require_counter(void)
{
	cr_assert(rc_alloc_count_active(),
		  "malloc is not going through support/alloc_count.c");
}

TestSuite(alloc_free, .init = require_counter);

/* Called through volatile pointers so the compiler cannot pair an allocation
 * with its free and remove both. */
static void *(*volatile v_malloc)(size_t) = malloc;
static void *(*volatile v_calloc)(size_t, size_t) = calloc;
static void *(*volatile v_realloc)(void *, size_t) = realloc;
static void *(*volatile v_aligned_alloc)(size_t, size_t) = aligned_alloc;
static int (*volatile v_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void (*volatile v_free)(void *) = free;

/* The zeros below mean something only if the counter sees allocations. */
Test(alloc_free, counter_counts_every_entry_point)
{
	struct rc_alloc_stats before, after;
	void *p, *q;
	uint64_t n;
	int err;

	rc_alloc_stats(NULL, &before);
	measure_begin();
	p = v_malloc(10);
	p = v_realloc(p, 1000);
	q = v_calloc(4, 8);
	v_free(q);
	q = v_aligned_alloc(64, 128);
	v_free(q);
	err = v_posix_memalign(&q, 64, 100);
	v_free(q);
	v_free(p);
	v_free(NULL);
	n = measure_end();
	rc_alloc_stats(NULL, &after);

	cr_assert_eq(err, 0);
	cr_assert_eq(n, 5, "5 allocating calls, counted %llu", (unsigned long long)n);
	cr_assert_eq(after.frees - before.frees, 5, "4 frees + realloc's move");
	cr_assert_geq(after.bytes - before.bytes, 10 + 1000 + 32 + 128 + 100);
}

Test(alloc_free, reset_zeroes_this_thread)
{
	void *p = v_malloc(1);

	v_free(p);
	rc_alloc_reset();
	cr_assert_eq(rc_alloc_count_thread(), 0);
	p = v_malloc(1);
	v_free(p);
	cr_assert_eq(rc_alloc_count_thread(), 1);
}

/* ---- frames ---------------------------------------------------------- */

struct frame_case {
	uint64_t len;
	uint8_t opcode;
};

static struct frame_case frame_cases[] = {
	{ 0, RC_OP_TEXT },      { 1, RC_OP_BINARY },   { 125, RC_OP_PING },
	{ 126, RC_OP_TEXT },    { 127, RC_OP_BINARY }, { 65535, RC_OP_TEXT },
	{ 65536, RC_OP_BINARY }, { 70001, RC_OP_TEXT },
};

ParameterizedTestParameters(alloc_free, frame_roundtrip)
{
	return cr_make_param_array(struct frame_case, frame_cases,
				   sizeof(frame_cases) / sizeof(frame_cases[0]));
}

static uint8_t frame_buf[RC_FRAME_MAX_HEADER + 70001];

ParameterizedTest(struct frame_case *fc, alloc_free, frame_roundtrip)
{
	static const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };
	struct rc_frame_rules server = { .expect_masked = true, .max_payload = 1 << 20 };
	struct rc_frame_rules client = { .expect_masked = false };
	struct rc_msg_state st = { 0 };
	struct rc_frame_header h1, h2;
	uint8_t hdr2[RC_FRAME_MAX_HEADER];
	size_t w1, w2, i;
	int p1, p2, again = 0, sn;
	uint64_t n, off;

	memset(frame_buf, 'a', sizeof(frame_buf));
	measure_begin();
	/* a client frame: masked, parsed by the server, unmasked in two pieces */
	w1 = rc_frame_write_header(frame_buf, fc->opcode, true, false, fc->len, mask);
	rc_ws_mask(frame_buf + w1, fc->len, mask, 0);
	for (i = 0; i < w1; i++)
		if (rc_frame_parse_header(frame_buf, i, &server, &h1) == -EAGAIN)
			again++;
	p1 = rc_frame_parse_header(frame_buf, w1 + fc->len, &server, &h1);
	off = rc_ws_mask(frame_buf + w1, fc->len / 2, h1.mask, 0);
	rc_ws_mask(frame_buf + w1 + fc->len / 2, fc->len - fc->len / 2, h1.mask, off);
	sn = rc_msg_state_next(&st, &h1);
	/* a server frame: unmasked, parsed by a client */
	w2 = rc_frame_write_header(hdr2, fc->opcode, true, false, fc->len, NULL);
	p2 = rc_frame_parse_header(hdr2, w2, &client, &h2);
	n = measure_end();

	cr_assert_eq(n, 0, "frame path allocated %llu times", (unsigned long long)n);
	cr_assert_eq(p1, (int)w1);
	cr_assert_eq(again, (int)w1, "every proper prefix of the header is -EAGAIN");
	cr_assert_eq(h1.payload_len, fc->len);
	cr_assert_eq(sn, 0);
	cr_assert_eq(p2, (int)w2);
	cr_assert_eq(h2.payload_len, fc->len);
	for (i = 0; i < fc->len; i++)
		cr_assert_eq(frame_buf[w1 + i], 'a', "unmask at %zu", i);
}

Test(alloc_free, frame_errors_and_close_payloads)
{
	static const uint8_t bad_rsv[] = { 0xC1, 0x80, 0, 0, 0, 0 };
	static const uint8_t unmasked[] = { 0x81, 0x00 };
	struct rc_frame_rules server = { .expect_masked = true };
	struct rc_frame_header h;
	uint8_t close[RC_CONTROL_MAX_PAYLOAD];
	const uint8_t *reason;
	size_t cl, reason_len;
	uint16_t code;
	int e1, e2, pc;
	uint64_t n;

	measure_begin();
	e1 = rc_frame_parse_header(bad_rsv, sizeof(bad_rsv), &server, &h);
	e2 = rc_frame_parse_header(unmasked, sizeof(unmasked), &server, &h);
	cl = rc_close_write(close, RC_CLOSE_GOING_AWAY, "shutting down, Grüße", 21);
	pc = rc_close_parse(close, cl, &code, &reason, &reason_len);
	(void)rc_close_code_for(-EILSEQ);
	(void)rc_close_code_valid(4000);
	n = measure_end();

	cr_assert_eq(n, 0);
	cr_assert_eq(e1, -EPROTO);
	cr_assert_eq(e2, -EPROTO);
	cr_assert_eq(pc, 0);
	cr_assert_eq(code, RC_CLOSE_GOING_AWAY);
	cr_assert_eq(reason_len, 21);
}

/* ---- UTF-8 ------------------------------------------------------------- */

Test(alloc_free, utf8_validation)
{
	static const char ok[] = "ASCII first, then Grüße, Καλημέρα, 你好, 🎉 and ASCII again";
	static const uint8_t bad[] = { 'a', 0xED, 0xA0, 0x80 }; /* a surrogate */
	struct rc_utf8 v;
	size_t bad_at = 0, i;
	bool whole, done;
	int split = 0, fb;
	uint64_t n;

	measure_begin();
	whole = rc_utf8_valid((const uint8_t *)ok, sizeof(ok) - 1);
	rc_utf8_init(&v);
	for (i = 0; i < sizeof(ok) - 1; i++)
		split |= rc_utf8_feed(&v, (const uint8_t *)ok + i, 1, NULL);
	done = rc_utf8_done(&v);
	rc_utf8_init(&v);
	fb = rc_utf8_feed(&v, bad, sizeof(bad), &bad_at);
	n = measure_end();

	cr_assert_eq(n, 0);
	cr_assert(whole);
	cr_assert_eq(split, 0);
	cr_assert(done);
	cr_assert_eq(fb, -EILSEQ);
	cr_assert_eq(bad_at, 2);
}

/* ---- permessage-deflate ----------------------------------------------- */

#define MSG_LEN 3000

static uint8_t msg[MSG_LEN], comp[MSG_LEN * 2], plain[MSG_LEN * 2];

static void make_msg(void)
{
	size_t i, n = 0;

	while (n < MSG_LEN) {
		char rec[64];
		int len = snprintf(rec, sizeof(rec), "{\"seq\":%zu,\"price\":%zu.%02zu},",
				   n, n * 7 % 1000, n % 100);

		for (i = 0; i < (size_t)len && n < MSG_LEN; i++)
			msg[n++] = (uint8_t)rec[i];
	}
}

struct pmd_case {
	bool no_context_takeover;
	int level;
};

static struct pmd_case pmd_cases[] = {
	{ true, 1 }, { true, 6 }, { false, 1 }, { false, 9 },
};

ParameterizedTestParameters(alloc_free, deflate_inflate_messages)
{
	return cr_make_param_array(struct pmd_case, pmd_cases,
				   sizeof(pmd_cases) / sizeof(pmd_cases[0]));
}

/* Ten messages through one deflater and one inflater, including the first
 * message after *_init (deflate.h: they allocate only in *_init). */
ParameterizedTest(struct pmd_case *pc, alloc_free, deflate_inflate_messages)
{
	struct rc_deflater d;
	struct rc_inflater f;
	ssize_t clen = 0;
	size_t plen = 0;
	int i, err = 0, bad = 0;
	uint64_t first, rest;

	make_msg();
	cr_assert_eq(rc_deflater_init(&d, 15, pc->no_context_takeover, pc->level), 0);
	cr_assert_eq(rc_inflater_init(&f, pc->no_context_takeover), 0);

	measure_begin();
	clen = rc_deflate_message(&d, msg, MSG_LEN, comp, sizeof(comp));
	if (clen > 0)
		err = rc_inflate_piece(&f, comp, (size_t)clen, true, plain,
				       sizeof(plain), &plen);
	first = measure_end();
	cr_assert_gt(clen, 0);
	cr_assert_eq(err, 0);
	cr_assert_eq(plen, MSG_LEN);

	measure_begin();
	for (i = 0; i < 10; i++) {
		msg[i] ^= 1; /* a different message each time */
		clen = rc_deflate_message(&d, msg, MSG_LEN, comp, sizeof(comp));
		if (clen <= 0) {
			bad++;
			continue;
		}
		/* inflated in two pieces, as a message split across frames */
		plen = 0;
		err = rc_inflate_piece(&f, comp, (size_t)clen / 2, false, plain,
				       sizeof(plain), &plen);
		err |= rc_inflate_piece(&f, comp + clen / 2, (size_t)(clen - clen / 2),
					true, plain, sizeof(plain), &plen);
		if (err || plen != MSG_LEN || memcmp(plain, msg, MSG_LEN))
			bad++;
	}
	rest = measure_end();

	rc_inflater_free(&f);
	rc_deflater_free(&d);
	cr_assert_eq(bad, 0);
	cr_assert_eq(rest, 0, "10 messages allocated %llu times", (unsigned long long)rest);
	cr_assert_eq(first, 0, "the first message after init allocated %llu times",
		     (unsigned long long)first);
}

/* Compress once (the broker's path), too small an output buffer (-ENOSPC,
 * stream reset) and a decompression bomb (-EMSGSIZE): no allocation either. */
Test(alloc_free, deflate_once_and_error_paths)
{
	static uint8_t zeros[64 * 1024];
	struct rc_deflater d;
	struct rc_inflater f, fb;
	ssize_t once1, once2, once3, nospc, bomb_len;
	size_t plen = 0, blen = 0;
	int e_bomb, e_ok;
	uint64_t n;

	make_msg();
	cr_assert_eq(rc_deflater_init(&d, 15, true, 1), 0);
	cr_assert_eq(rc_inflater_init(&f, true), 0);
	cr_assert_eq(rc_inflater_init(&fb, true), 0);
	bomb_len = rc_deflate_once(&d, zeros, sizeof(zeros), comp, sizeof(comp));
	cr_assert_gt(bomb_len, 0);
	cr_assert_lt(bomb_len, 1024);

	measure_begin();
	e_bomb = rc_inflate_piece(&fb, comp, (size_t)bomb_len, true, plain, 4096, &blen);
	once1 = rc_deflate_once(&d, msg, MSG_LEN, plain, sizeof(plain));
	once2 = rc_deflate_once(&d, msg, MSG_LEN, plain + MSG_LEN, sizeof(plain) - MSG_LEN);
	nospc = rc_deflate_once(&d, msg, MSG_LEN, plain, 16);
	once3 = rc_deflate_once(&d, msg, MSG_LEN, comp, sizeof(comp));
	e_ok = rc_inflate_piece(&f, comp, (size_t)once3, true, plain, sizeof(plain),
				&plen);
	n = measure_end();

	rc_inflater_free(&fb);
	rc_inflater_free(&f);
	rc_deflater_free(&d);
	cr_assert_eq(n, 0, "allocated %llu times", (unsigned long long)n);
	cr_assert_eq(e_bomb, -EMSGSIZE);
	cr_assert_gt(once1, 0);
	cr_assert_eq(once1, once2, "no context takeover: same output every time");
	cr_assert_eq(nospc, -ENOSPC);
	cr_assert_eq(once3, once1, "the deflater works again after -ENOSPC");
	cr_assert_eq(e_ok, 0);
	cr_assert_eq(plen, MSG_LEN);
	cr_assert_eq(memcmp(plain, msg, MSG_LEN), 0);
}

/* ---- HTTP request head ------------------------------------------------ */

Test(alloc_free, http_upgrade_parse)
{
	static const char head[] =
		"GET /sub/prices?x=1 HTTP/1.1\r\n"
		"Host: example.com\r\n"
		"Upgrade: websocket\r\n"
		"Connection: keep-alive, Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n"
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
		"\r\n";
	static struct rc_http_request req;
	struct rc_ws_upgrade up;
	struct rc_pmd_config cfg = { .enabled = true, .server_no_context_takeover = true,
				     .max_window_bits = 15 };
	struct rc_pmd_params params;
	int parsed, checked, accepted, again = 0;
	size_t i;
	uint64_t n;

	measure_begin();
	for (i = 0; i < sizeof(head) - 1; i++)
		if (rc_http_parse_request((const uint8_t *)head, i, NULL, &req) == -EAGAIN)
			again++;
	parsed = rc_http_parse_request((const uint8_t *)head, sizeof(head) - 1, NULL, &req);
	checked = parsed > 0 ? rc_ws_upgrade_check(&req, &up) : -1;
	accepted = checked == 0 ? rc_pmd_negotiate(up.extensions, &cfg, &params) : -1;
	n = measure_end();

	cr_assert_eq(n, 0, "allocated %llu times", (unsigned long long)n);
	cr_assert_eq(parsed, (int)sizeof(head) - 1);
	cr_assert_eq(again, (int)sizeof(head) - 1);
	cr_assert_eq(checked, 0);
	cr_assert_eq(accepted, 1);
}
