/* Tests for proto/frame.c: RFC 6455 section 5.7 vectors byte-exact, every
 * error path, headers split at every byte and ending at a guard page,
 * random write/parse round trips, masking against a byte-wise reference,
 * fragmentation sequences and close payloads. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/frame.h"

static const struct rc_frame_rules server_rules = { .expect_masked = true };
static const struct rc_frame_rules client_rules = { .expect_masked = false };

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* ---- RFC 6455 section 5.7 examples ------------------------------------ */

/* Parameters hold no pointers: Criterion may exec a fresh process per test. */
struct rfc_case {
	char name[40];
	uint8_t wire[16];  /* header, then the payload when it is short */
	size_t wire_len;
	size_t header_len;
	uint8_t opcode;
	bool fin;
	bool masked;
	uint8_t mask[4];
	uint64_t payload_len;
	char payload[8];   /* unmasked payload when wire holds it */
};

static struct rfc_case rfc_cases[] = {
	{ "unmasked text Hello", { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' }, 7, 2,
	  RC_OP_TEXT, true, false, { 0 }, 5, "Hello" },
	{ "masked text Hello",
	  { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 }, 11, 6,
	  RC_OP_TEXT, true, true, { 0x37, 0xfa, 0x21, 0x3d }, 5, "Hello" },
	{ "fragment 1 Hel", { 0x01, 0x03, 'H', 'e', 'l' }, 5, 2,
	  RC_OP_TEXT, false, false, { 0 }, 3, "Hel" },
	{ "fragment 2 lo", { 0x80, 0x02, 'l', 'o' }, 4, 2,
	  RC_OP_CONT, true, false, { 0 }, 2, "lo" },
	{ "unmasked ping Hello", { 0x89, 0x05, 'H', 'e', 'l', 'l', 'o' }, 7, 2,
	  RC_OP_PING, true, false, { 0 }, 5, "Hello" },
	{ "masked pong Hello",
	  { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 }, 11, 6,
	  RC_OP_PONG, true, true, { 0x37, 0xfa, 0x21, 0x3d }, 5, "Hello" },
	{ "256 bytes binary", { 0x82, 0x7e, 0x01, 0x00 }, 4, 4,
	  RC_OP_BINARY, true, false, { 0 }, 256, "" },
	{ "64KiB binary",
	  { 0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00 }, 10, 10,
	  RC_OP_BINARY, true, false, { 0 }, 65536, "" },
};

ParameterizedTestParameters(frame_rfc, examples)
{
	return cr_make_param_array(struct rfc_case, rfc_cases,
				   sizeof(rfc_cases) / sizeof(rfc_cases[0]));
}

ParameterizedTest(struct rfc_case *c, frame_rfc, examples)
{
	const struct rc_frame_rules *rules = c->masked ? &server_rules : &client_rules;
	struct rc_frame_header h;
	uint8_t out[RC_FRAME_MAX_HEADER + 8];
	size_t n;

	/* Parse: every field as the RFC describes it. */
	cr_assert_eq(rc_frame_parse_header(c->wire, c->wire_len, rules, &h),
		     (int)c->header_len, "%s", c->name);
	cr_assert_eq(h.header_len, c->header_len);
	cr_assert_eq(h.opcode, c->opcode);
	cr_assert_eq(h.fin, c->fin);
	cr_assert_eq(h.masked, c->masked);
	cr_assert_not(h.rsv1);
	cr_assert_eq(h.payload_len, c->payload_len);
	if (c->masked)
		cr_assert_arr_eq(h.mask, c->mask, 4);

	/* Write: the same bytes, and masking the payload gives the wire. */
	n = rc_frame_write_header(out, c->opcode, c->fin, false, c->payload_len,
				  c->masked ? c->mask : NULL);
	cr_assert_eq(n, c->header_len, "%s: wrote %zu", c->name, n);
	if (c->wire_len > c->header_len) {
		size_t plen = c->wire_len - c->header_len;

		memcpy(out + n, c->payload, plen);
		if (c->masked)
			cr_assert_eq(rc_ws_mask(out + n, plen, c->mask, 0), plen);
		n += plen;
	}
	cr_assert_arr_eq(out, c->wire, c->wire_len, "%s: bytes differ", c->name);

	/* Unmasking the wire payload in place gives the text back. */
	if (c->masked) {
		uint8_t p[8];

		memcpy(p, c->wire + c->header_len, c->payload_len);
		rc_ws_mask(p, c->payload_len, h.mask, 0);
		cr_assert_arr_eq(p, c->payload, c->payload_len);
	}
}

/* The fragmented "Hel" + "lo" example as a whole message. */
Test(frame_rfc, fragmented_message)
{
	static const uint8_t wire[] = { 0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o' };
	struct rc_msg_state st = { 0 };
	struct rc_frame_header h;
	char msg[8];
	size_t off = 0, mlen = 0;
	int n;

	while (off < sizeof(wire)) {
		n = rc_frame_parse_header(wire + off, sizeof(wire) - off, &client_rules, &h);
		cr_assert_gt(n, 0);
		cr_assert_eq(rc_msg_state_next(&st, &h), 0);
		off += (size_t)n;
		memcpy(msg + mlen, wire + off, h.payload_len);
		mlen += h.payload_len;
		off += h.payload_len;
		cr_assert_eq(st.opcode, h.fin ? 0 : RC_OP_TEXT);
	}
	cr_assert_eq(mlen, 5);
	cr_assert_arr_eq(msg, "Hello", 5);
}

/* ---- error paths ------------------------------------------------------ */

enum rules_kind { SERVER, CLIENT, SERVER_RSV1, SERVER_MAX100 };

static const struct rc_frame_rules *rules_of(enum rules_kind k)
{
	static const struct rc_frame_rules rsv1 = { .expect_masked = true, .allow_rsv1 = true };
	static const struct rc_frame_rules max100 = { .expect_masked = true, .max_payload = 100 };

	switch (k) {
	case SERVER:
		return &server_rules;
	case CLIENT:
		return &client_rules;
	case SERVER_RSV1:
		return &rsv1;
	default:
		return &max100;
	}
}

struct hdr_case {
	char name[48];
	uint8_t bytes[RC_FRAME_MAX_HEADER];
	size_t len;
	enum rules_kind rules;
	int want; /* header length or -errno */
};

#define M 0x80 /* mask bit in byte 1 */
#define K 1, 2, 3, 4 /* a mask key */

static struct hdr_case hdr_cases[] = {
	{ "RSV2", { 0xa2, M, K }, 6, SERVER, -EPROTO },
	{ "RSV3", { 0x92, M, K }, 6, SERVER, -EPROTO },
	{ "RSV2 even with rsv1 allowed", { 0xe2, M, K }, 6, SERVER_RSV1, -EPROTO },
	{ "RSV1 not negotiated", { 0xc1, M, K }, 6, SERVER, -EPROTO },
	{ "RSV1 negotiated", { 0xc1, M, K }, 6, SERVER_RSV1, 6 },
	{ "unmasked to server", { 0x82, 0x00 }, 2, SERVER, -EPROTO },
	{ "masked to client", { 0x82, M, K }, 6, CLIENT, -EPROTO },
	{ "fragmented ping", { 0x09, M, K }, 6, SERVER, -EPROTO },
	{ "fragmented close", { 0x08, M, K }, 6, SERVER, -EPROTO },
	{ "fragmented pong", { 0x0a, M, K }, 6, SERVER, -EPROTO },
	{ "ping 125 bytes", { 0x89, M | 125, K }, 6, SERVER, 6 },
	{ "ping 126 bytes", { 0x89, M | 126, 0x00, 0x7e, K }, 8, SERVER, -EPROTO },
	{ "close 64-bit length", { 0x88, M | 127, 0, 0, 0, 0, 0, 1, 0, 0, K }, 14, SERVER, -EPROTO },
	{ "16-bit length 125", { 0x82, M | 126, 0x00, 0x7d, K }, 8, SERVER, -EPROTO },
	{ "16-bit length 0", { 0x82, M | 126, 0x00, 0x00, K }, 8, SERVER, -EPROTO },
	{ "16-bit length 126", { 0x82, M | 126, 0x00, 0x7e, K }, 8, SERVER, 8 },
	{ "64-bit length 65535", { 0x82, M | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff, K }, 14, SERVER, -EPROTO },
	{ "64-bit length 5", { 0x82, M | 127, 0, 0, 0, 0, 0, 0, 0, 5, K }, 14, SERVER, -EPROTO },
	{ "64-bit length 65536", { 0x82, M | 127, 0, 0, 0, 0, 0, 1, 0, 0, K }, 14, SERVER, 14 },
	{ "64-bit length 2^63", { 0x82, M | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, K }, 14, SERVER, -EPROTO },
	{ "64-bit length 2^64-1", { 0x82, M | 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, K }, 14, SERVER, -EPROTO },
	{ "64-bit length 2^63-1", { 0x82, M | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, K }, 14, SERVER, 14 },
	{ "max_payload exact", { 0x82, M | 100, K }, 6, SERVER_MAX100, 6 },
	{ "max_payload + 1", { 0x82, M | 101, K }, 6, SERVER_MAX100, -EMSGSIZE },
	{ "max_payload 16-bit", { 0x82, M | 126, 0x01, 0x00, K }, 8, SERVER_MAX100, -EMSGSIZE },
	{ "max_payload 64-bit", { 0x82, M | 127, 0, 0, 0, 0, 0, 1, 0, 0, K }, 14, SERVER_MAX100, -EMSGSIZE },
	{ "protocol error wins over size", { 0x82, M | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, K }, 14, SERVER_MAX100, -EPROTO },
	{ "rsv1 error wins over size", { 0xc2, M | 127, 0, 0, 0, 0, 0, 1, 0, 0, K }, 14, SERVER_MAX100, -EPROTO },
	{ "empty continuation", { 0x80, M, K }, 6, SERVER, 6 },
};

/* Every prefix of a header must say "need more" or already give the final
 * answer; valid headers must say "need more" until complete. */
static void check_prefixes(const uint8_t *b, size_t len, const struct rc_frame_rules *r,
			   int want, const char *name)
{
	struct rc_frame_header h;

	for (size_t k = 0; k < len; k++) {
		int got = rc_frame_parse_header(b, k, r, &h);

		if (got != -EAGAIN)
			cr_assert(want < 0 && got == want, "%s: prefix %zu gave %d", name, k, got);
	}
}

ParameterizedTestParameters(frame_header, cases)
{
	return cr_make_param_array(struct hdr_case, hdr_cases,
				   sizeof(hdr_cases) / sizeof(hdr_cases[0]));
}

ParameterizedTest(struct hdr_case *c, frame_header, cases)
{
	const struct rc_frame_rules *r = rules_of(c->rules);
	struct rc_frame_header h;
	uint8_t longer[RC_FRAME_MAX_HEADER + 4] = { 0 };

	cr_assert_eq(rc_frame_parse_header(c->bytes, c->len, r, &h), c->want,
		     "%s", c->name);
	/* Bytes after the header (payload) change nothing. */
	memcpy(longer, c->bytes, c->len);
	cr_assert_eq(rc_frame_parse_header(longer, sizeof(longer), r, &h), c->want,
		     "%s with trailing bytes", c->name);
	if (c->want > 0)
		cr_assert_eq(h.header_len, c->want);
	check_prefixes(c->bytes, c->len, r, c->want, c->name);
}

Test(frame_header, reserved_opcodes)
{
	static const uint8_t reserved[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };
	struct rc_frame_header h;

	for (size_t i = 0; i < sizeof(reserved); i++) {
		uint8_t b[6] = { 0x80 | reserved[i], M, K };

		cr_assert_eq(rc_frame_parse_header(b, 6, &server_rules, &h), -EPROTO,
			     "opcode %x", reserved[i]);
		/* Known from the first byte: fail fast. */
		cr_assert_eq(rc_frame_parse_header(b, 1, &server_rules, &h), -EPROTO);
	}
	for (uint8_t op = 0; op < 16; op++) {
		uint8_t b[6] = { 0x80 | op, M, K };
		bool known = op <= 2 || (op >= 8 && op <= 0xa);

		cr_assert_eq(rc_frame_parse_header(b, 6, &server_rules, &h) == 6, known,
			     "opcode %x", op);
	}
}

Test(frame_header, empty_and_rule_errors_wait_for_whole_header)
{
	static const uint8_t masked[] = { 0x81, M | 126, 0x00, 0x80, K };
	struct rc_frame_header h;

	cr_assert_eq(rc_frame_parse_header(NULL, 0, &server_rules, &h), -EAGAIN);
	/* A masked header sent to a client is refused only once complete. */
	for (size_t k = 0; k < sizeof(masked); k++)
		cr_assert_eq(rc_frame_parse_header(masked, k, &client_rules, &h), -EAGAIN);
	cr_assert_eq(rc_frame_parse_header(masked, sizeof(masked), &client_rules, &h), -EPROTO);
	cr_assert_eq(rc_frame_parse_header(masked, sizeof(masked), &server_rules, &h), 8);
	cr_assert_eq(h.payload_len, 128);
}

/* ---- split at every byte, guard page, round trips --------------------- */

static const uint8_t all_opcodes[] = {
	RC_OP_CONT, RC_OP_TEXT, RC_OP_BINARY, RC_OP_CLOSE, RC_OP_PING, RC_OP_PONG
};

static uint64_t random_len(bool control)
{
	static const uint64_t edges[] = {
		0, 1, 125, 126, 127, 65535, 65536, 65537, UINT32_MAX,
		(uint64_t)1 << 32, INT64_MAX - 1, INT64_MAX,
	};

	if (control)
		return rnd() % (RC_CONTROL_MAX_PAYLOAD + 1);
	switch (rnd() % 5) {
	case 0:
		return edges[rnd() % (sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return rnd() % 126;
	case 2:
		return 126 + rnd() % (65536 - 126);
	case 3:
		return 65536 + rnd() % (1u << 24);
	default:
		return rnd() >> 1;
	}
}

struct random_frame {
	uint8_t opcode;
	bool fin, rsv1, masked;
	uint8_t mask[4];
	uint64_t len;
};

static struct random_frame make_random_frame(void)
{
	struct random_frame f;
	uint64_t r = rnd();

	f.opcode = all_opcodes[r % sizeof(all_opcodes)];
	f.fin = f.opcode >= RC_OP_CLOSE || (r >> 8 & 1);
	f.rsv1 = r >> 9 & 1;
	f.masked = r >> 10 & 1;
	for (int i = 0; i < 4; i++)
		f.mask[i] = (uint8_t)(r >> (16 + 8 * i));
	f.len = random_len(f.opcode >= RC_OP_CLOSE);
	return f;
}

static size_t expected_header_len(uint64_t len, bool masked)
{
	return (len < 126 ? 2 : len <= 65535 ? 4 : 10) + (masked ? 4 : 0);
}

Test(frame_header, random_round_trips)
{
	struct rc_frame_rules r = { .allow_rsv1 = true };
	uint8_t buf[RC_FRAME_MAX_HEADER];
	struct rc_frame_header h;

	rng_state = 0x5eed5eed12345678ull;
	for (int i = 0; i < 10000; i++) {
		struct random_frame f = make_random_frame();
		size_t n = rc_frame_write_header(buf, f.opcode, f.fin, f.rsv1, f.len,
						 f.masked ? f.mask : NULL);

		r.expect_masked = f.masked;
		cr_assert_eq(n, expected_header_len(f.len, f.masked), "iteration %d", i);
		cr_assert_eq(rc_frame_parse_header(buf, n, &r, &h), (int)n, "iteration %d", i);
		cr_assert_eq(h.header_len, n);
		cr_assert_eq(h.opcode, f.opcode);
		cr_assert_eq(h.fin, f.fin);
		cr_assert_eq(h.rsv1, f.rsv1);
		cr_assert_eq(h.masked, f.masked);
		cr_assert_eq(h.payload_len, f.len, "iteration %d len %llu", i,
			     (unsigned long long)f.len);
		if (f.masked)
			cr_assert_arr_eq(h.mask, f.mask, 4);
		/* The opposite role refuses it. */
		r.expect_masked = !f.masked;
		cr_assert_eq(rc_frame_parse_header(buf, n, &r, &h), -EPROTO);
	}
}

/* Every RFC example and a few hundred random headers cut at every byte:
 * each strict prefix is -EAGAIN, never an error or a short header. */
Test(frame_header, split_at_every_byte)
{
	struct rc_frame_rules r = { .allow_rsv1 = true };
	uint8_t buf[RC_FRAME_MAX_HEADER];
	struct rc_frame_header h, whole;

	rng_state = 0xfeedfacecafebeefull;
	for (int i = 0; i < 500; i++) {
		struct random_frame f = make_random_frame();
		size_t n = rc_frame_write_header(buf, f.opcode, f.fin, f.rsv1, f.len,
						 f.masked ? f.mask : NULL);

		r.expect_masked = f.masked;
		cr_assert_eq(rc_frame_parse_header(buf, n, &r, &whole), (int)n);
		cr_assert_eq(whole.payload_len, f.len);
		for (size_t k = 0; k < n; k++)
			cr_assert_eq(rc_frame_parse_header(buf, k, &r, &h), -EAGAIN,
				     "iteration %d split %zu", i, k);
	}
	for (size_t c = 0; c < sizeof(rfc_cases) / sizeof(rfc_cases[0]); c++) {
		const struct rfc_case *rc = &rfc_cases[c];

		check_prefixes(rc->wire, rc->header_len,
			       rc->masked ? &server_rules : &client_rules,
			       (int)rc->header_len, rc->name);
	}
}

/* Headers that end exactly at a PROT_NONE page: the parser must not touch a
 * byte past len, complete or not. */
Test(frame_header, guard_page)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct rc_frame_rules r = { .allow_rsv1 = true };
	struct rc_frame_header h;
	uint8_t buf[RC_FRAME_MAX_HEADER];

	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
	rng_state = 0x0123456789abcdefull;
	for (int i = 0; i < 300; i++) {
		struct random_frame f = make_random_frame();
		size_t n = rc_frame_write_header(buf, f.opcode, f.fin, f.rsv1, f.len,
						 f.masked ? f.mask : NULL);

		r.expect_masked = f.masked;
		for (size_t k = 0; k <= n; k++) {
			uint8_t *p = map + page - k;

			memcpy(p, buf, k);
			cr_assert_eq(rc_frame_parse_header(p, k, &r, &h),
				     k == n ? (int)n : -EAGAIN, "iteration %d k %zu", i, k);
		}
	}
	munmap(map, (size_t)page * 2);
}

/* ---- masking ---------------------------------------------------------- */

Test(frame_mask, matches_bytewise_reference)
{
	static const uint64_t offsets[] = { 0, 1, 2, 3, 4, 7, 1ull << 32 | 1, UINT64_MAX - 2 };
	const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	uint8_t src[128], got[128 + 16], want[128 + 16];

	rng_state = 0xabcdef0123456789ull;
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)rnd();
	for (size_t o = 0; o < sizeof(offsets) / sizeof(offsets[0]); o++) {
		for (size_t len = 0; len <= 100; len++) {
			for (size_t align = 0; align < 8; align++) {
				memset(got, 0xee, sizeof(got));
				memcpy(got + align, src, len);
				memcpy(want, got, sizeof(want));
				for (size_t i = 0; i < len; i++)
					want[align + i] ^= mask[(offsets[o] + i) % 4];
				cr_assert_eq(rc_ws_mask(got + align, len, mask, offsets[o]),
					     offsets[o] + len);
				/* Compares the canaries around the range too. */
				cr_assert_arr_eq(got, want, sizeof(got),
						 "offset %llu len %zu align %zu",
						 (unsigned long long)offsets[o], len, align);
			}
		}
	}
}

Test(frame_mask, piecewise_equals_whole_and_is_involution)
{
	const uint8_t mask[4] = { 0xde, 0xad, 0xbe, 0xef };
	uint8_t orig[97], whole[97], pieces[97];

	rng_state = 42;
	for (size_t i = 0; i < sizeof(orig); i++)
		orig[i] = (uint8_t)rnd();
	memcpy(whole, orig, sizeof(orig));
	rc_ws_mask(whole, sizeof(whole), mask, 0);
	for (size_t a = 0; a <= sizeof(orig); a++) {
		for (size_t b = a; b <= sizeof(orig); b += 7) {
			uint64_t off = 0;

			memcpy(pieces, orig, sizeof(orig));
			off = rc_ws_mask(pieces, a, mask, off);
			off = rc_ws_mask(pieces + a, b - a, mask, off);
			off = rc_ws_mask(pieces + b, sizeof(orig) - b, mask, off);
			cr_assert_eq(off, sizeof(orig));
			cr_assert_arr_eq(pieces, whole, sizeof(whole), "split %zu %zu", a, b);
		}
	}
	rc_ws_mask(whole, sizeof(whole), mask, 0);
	cr_assert_arr_eq(whole, orig, sizeof(orig));
}

/* ---- fragmentation ---------------------------------------------------- */

struct step {
	uint8_t opcode;
	bool fin, rsv1;
	int want;
	uint8_t open_after; /* st.opcode after the step, when it succeeded */
	bool compressed_after;
};

struct frag_case {
	char name[48];
	struct step steps[5];
	size_t n;
};

#define OK 0
#define S(op, fin, rsv1, want, open, comp) { op, fin, rsv1, want, open, comp }

static struct frag_case frag_cases[] = {
	{ "single text", { S(RC_OP_TEXT, 1, 0, OK, 0, 0) }, 1 },
	{ "single binary compressed", { S(RC_OP_BINARY, 1, 1, OK, 0, 0) }, 1 },
	{ "text in three", { S(RC_OP_TEXT, 0, 0, OK, RC_OP_TEXT, 0),
			     S(RC_OP_CONT, 0, 0, OK, RC_OP_TEXT, 0),
			     S(RC_OP_CONT, 1, 0, OK, 0, 0) }, 3 },
	{ "ping inside message", { S(RC_OP_BINARY, 0, 0, OK, RC_OP_BINARY, 0),
				   S(RC_OP_PING, 1, 0, OK, RC_OP_BINARY, 0),
				   S(RC_OP_PONG, 1, 0, OK, RC_OP_BINARY, 0),
				   S(RC_OP_CLOSE, 1, 0, OK, RC_OP_BINARY, 0),
				   S(RC_OP_CONT, 1, 0, OK, 0, 0) }, 5 },
	{ "compressed fragments", { S(RC_OP_TEXT, 0, 1, OK, RC_OP_TEXT, 1),
				    S(RC_OP_CONT, 0, 0, OK, RC_OP_TEXT, 1),
				    S(RC_OP_CONT, 1, 0, OK, 0, 0) }, 3 },
	{ "continuation without start", { S(RC_OP_CONT, 1, 0, -EPROTO, 0, 0) }, 1 },
	{ "continuation after end", { S(RC_OP_TEXT, 1, 0, OK, 0, 0),
				      S(RC_OP_CONT, 0, 0, -EPROTO, 0, 0) }, 2 },
	{ "text while text open", { S(RC_OP_TEXT, 0, 0, OK, RC_OP_TEXT, 0),
				    S(RC_OP_TEXT, 1, 0, -EPROTO, 0, 0) }, 2 },
	{ "binary while text open", { S(RC_OP_TEXT, 0, 0, OK, RC_OP_TEXT, 0),
				      S(RC_OP_BINARY, 0, 0, -EPROTO, 0, 0) }, 2 },
	{ "rsv1 on continuation", { S(RC_OP_TEXT, 0, 1, OK, RC_OP_TEXT, 1),
				    S(RC_OP_CONT, 1, 1, -EPROTO, 0, 0) }, 2 },
	{ "rsv1 on ping", { S(RC_OP_PING, 1, 1, -EPROTO, 0, 0) }, 1 },
	{ "rsv1 on close", { S(RC_OP_CLOSE, 1, 1, -EPROTO, 0, 0) }, 1 },
	{ "fragmented pong", { S(RC_OP_PONG, 0, 0, -EPROTO, 0, 0) }, 1 },
	{ "reserved opcode", { S(0x3, 1, 0, -EPROTO, 0, 0) }, 1 },
	{ "two messages", { S(RC_OP_TEXT, 0, 0, OK, RC_OP_TEXT, 0),
			    S(RC_OP_CONT, 1, 0, OK, 0, 0),
			    S(RC_OP_BINARY, 0, 1, OK, RC_OP_BINARY, 1),
			    S(RC_OP_CONT, 1, 0, OK, 0, 0) }, 4 },
};

ParameterizedTestParameters(frame_frag, sequences)
{
	return cr_make_param_array(struct frag_case, frag_cases,
				   sizeof(frag_cases) / sizeof(frag_cases[0]));
}

ParameterizedTest(struct frag_case *c, frame_frag, sequences)
{
	struct rc_msg_state st = { 0 };

	for (size_t i = 0; i < c->n; i++) {
		const struct step *s = &c->steps[i];
		struct rc_frame_header h = {
			.opcode = s->opcode, .fin = s->fin, .rsv1 = s->rsv1,
		};
		int rc = rc_msg_state_next(&st, &h);

		cr_assert_eq(rc, s->want, "%s step %zu: %d", c->name, i, rc);
		if (rc == 0) {
			cr_assert_eq(st.opcode, s->open_after, "%s step %zu", c->name, i);
			cr_assert_eq(st.compressed, s->compressed_after, "%s step %zu", c->name, i);
		}
	}
}

/* ---- close payloads --------------------------------------------------- */

Test(frame_close, code_valid_every_code)
{
	for (uint32_t c = 0; c <= UINT16_MAX; c++) {
		bool want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
			    (c >= 3000 && c <= 4999);

		cr_assert_eq(rc_close_code_valid((uint16_t)c), want, "code %u", c);
	}
}

Test(frame_close, parse_empty_and_short)
{
	uint16_t code = 0;
	const uint8_t *reason = (const uint8_t *)"x";
	size_t rlen = 9;
	uint8_t one = 0x03;

	cr_assert_eq(rc_close_parse(NULL, 0, &code, &reason, &rlen), 0);
	cr_assert_eq(code, RC_CLOSE_NO_STATUS);
	cr_assert_eq(rlen, 0);
	cr_assert_eq(rc_close_parse(&one, 1, &code, &reason, &rlen), -EPROTO);
}

Test(frame_close, parse_codes)
{
	static const uint16_t bad[] = { 0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535 };
	static const uint16_t good[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
					 1011, 1012, 1013, 1014, 3000, 4000, 4999 };
	uint8_t p[8];
	uint16_t code;
	const uint8_t *reason;
	size_t rlen;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p[0] = (uint8_t)(bad[i] >> 8);
		p[1] = (uint8_t)bad[i];
		cr_assert_eq(rc_close_parse(p, 2, &code, &reason, &rlen), -EPROTO,
			     "code %u", bad[i]);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		p[0] = (uint8_t)(good[i] >> 8);
		p[1] = (uint8_t)good[i];
		memcpy(p + 2, "bye", 3);
		cr_assert_eq(rc_close_parse(p, 5, &code, &reason, &rlen), 0, "code %u", good[i]);
		cr_assert_eq(code, good[i]);
		cr_assert_eq(reason, p + 2);
		cr_assert_eq(rlen, 3);
		cr_assert_eq(rc_close_parse(p, 2, &code, &reason, &rlen), 0);
		cr_assert_eq(rlen, 0);
	}
}

Test(frame_close, parse_reason_utf8)
{
	static const uint8_t greek[] = { 0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf,
					 0x83, 0xce, 0xbc, 0xce, 0xb5 };
	static const uint8_t bad[] = { 0x03, 0xe8, 'o', 'k', 0xff };
	static const uint8_t cut[] = { 0x03, 0xe8, 0xce };
	uint8_t too_long[126] = { 0x03, 0xe8 };
	uint16_t code;
	const uint8_t *reason;
	size_t rlen;

	cr_assert_eq(rc_close_parse(greek, sizeof(greek), &code, &reason, &rlen), 0);
	cr_assert_eq(rlen, sizeof(greek) - 2);
	cr_assert_eq(rc_close_parse(bad, sizeof(bad), &code, &reason, &rlen), -EILSEQ);
	cr_assert_eq(rc_close_parse(cut, sizeof(cut), &code, &reason, &rlen), -EILSEQ);
	memset(too_long + 2, 'a', sizeof(too_long) - 2);
	cr_assert_eq(rc_close_parse(too_long, 125, &code, &reason, &rlen), 0);
	cr_assert_eq(rc_close_parse(too_long, 126, &code, &reason, &rlen), -EPROTO);
}

/* Writes code + reason and checks the expected reason length, then that the
 * payload parses back as the same prefix. */
static void check_write(uint16_t code, const char *reason, size_t rlen, size_t want_rlen)
{
	uint8_t out[RC_CONTROL_MAX_PAYLOAD + 8];
	const uint8_t *back;
	uint16_t back_code;
	size_t back_len, n;

	memset(out, 0xaa, sizeof(out));
	n = rc_close_write(out, code, reason, rlen);
	cr_assert_eq(n, 2 + want_rlen, "reason of %zu bytes: wrote %zu", rlen, n);
	cr_assert_leq(n, RC_CONTROL_MAX_PAYLOAD);
	cr_assert_eq(out[n], 0xaa, "wrote past its length");
	cr_assert_eq(out[0] << 8 | out[1], code);
	if (want_rlen)
		cr_assert_arr_eq(out + 2, reason, want_rlen);
	cr_assert_eq(rc_close_parse(out, n, &back_code, &back, &back_len), 0);
	cr_assert_eq(back_code, code);
	cr_assert_eq(back_len, want_rlen);
}

Test(frame_close, write)
{
	char r[200];
	uint8_t out[RC_CONTROL_MAX_PAYLOAD];

	cr_assert_eq(rc_close_write(out, RC_CLOSE_NO_STATUS, "ignored", 7), 0);
	check_write(RC_CLOSE_NORMAL, NULL, 0, 0);
	check_write(RC_CLOSE_GOING_AWAY, "shutting down", 13, 13);
	memset(r, 'a', sizeof(r));
	check_write(RC_CLOSE_POLICY, r, 123, 123);
	check_write(RC_CLOSE_POLICY, r, sizeof(r), 123);
	/* A 2-byte character straddling the limit is dropped whole. */
	memcpy(r + 122, "\xc3\xa9", 2);
	check_write(RC_CLOSE_POLICY, r, 124, 122);
	memcpy(r + 121, "\xc3\xa9", 2);
	check_write(RC_CLOSE_POLICY, r, 124, 123);
	/* 3- and 4-byte characters cut at every possible position. */
	memset(r, 'a', sizeof(r));
	memcpy(r + 121, "\xe2\x82\xac", 3);
	check_write(RC_CLOSE_POLICY, r, 130, 121);
	memset(r, 'a', sizeof(r));
	memcpy(r + 120, "\xe2\x82\xac", 3);
	check_write(RC_CLOSE_POLICY, r, 130, 123);
	for (size_t at = 119; at <= 122; at++) {
		memset(r, 'a', sizeof(r));
		memcpy(r + at, "\xf0\x9f\x98\x80", 4);
		check_write(RC_CLOSE_POLICY, r, 130, at + 4 <= 123 ? 123 : at);
	}
	/* A reason that is not UTF-8 is cut before the bad part. */
	check_write(RC_CLOSE_POLICY, "ok\xff" "more", 7, 2);
	check_write(RC_CLOSE_POLICY, "ok\xe2\x82", 4, 2);
}

Test(frame_close, code_for_errors)
{
	cr_assert_eq(rc_close_code_for(-EPROTO), 1002);
	cr_assert_eq(rc_close_code_for(-ENOTSUP), 1003);
	cr_assert_eq(rc_close_code_for(-EILSEQ), 1007);
	cr_assert_eq(rc_close_code_for(-EMSGSIZE), 1009);
	cr_assert_eq(rc_close_code_for(-ENOMEM), 1011);
	cr_assert_eq(rc_close_code_for(-EINVAL), 1011);
}
