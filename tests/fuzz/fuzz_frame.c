/* libFuzzer harness for proto/frame.c: parses the input as a stream of
 * frames with the server and the client rule sets and checks invariants of
 * each accepted header, the fragmentation state, masking and close
 * payloads. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void check_mask(const uint8_t *payload, size_t len, const uint8_t mask[4])
{
	uint8_t *a = malloc(len + 1), *b = malloc(len + 1);
	size_t cut = len ? payload[0] % (len + 1) : 0;
	uint64_t off;

	CHECK(a && b);
	memcpy(a, payload, len);
	memcpy(b, payload, len);
	off = rc_ws_mask(a, cut, mask, 0);
	off = rc_ws_mask(a + cut, len - cut, mask, off);
	CHECK(off == len);
	for (size_t i = 0; i < len; i++)
		b[i] ^= mask[i % 4];
	CHECK(memcmp(a, b, len) == 0);
	free(a);
	free(b);
}

static void check_close(const uint8_t *p, size_t len)
{
	const uint8_t *reason;
	uint16_t code, code2;
	size_t rlen, rlen2, n;
	uint8_t out[RC_CONTROL_MAX_PAYLOAD];
	int rc = rc_close_parse(p, len, &code, &reason, &rlen);

	if (rc < 0) {
		CHECK(rc == -EPROTO || rc == -EILSEQ);
		CHECK(rc_close_code_for(rc) == (rc == -EPROTO ? 1002 : 1007));
		return;
	}
	CHECK(len == 0 ? code == RC_CLOSE_NO_STATUS : rc_close_code_valid(code));
	n = rc_close_write(out, code, (const char *)reason, rlen);
	CHECK(n == (len == 0 ? 0 : len));
	CHECK(rc_close_parse(out, n, &code2, &reason, &rlen2) == 0);
	CHECK(code2 == code && rlen2 == rlen);
}

static void run(const uint8_t *data, size_t size, const struct rc_frame_rules *r)
{
	struct rc_msg_state st = { 0 };
	size_t off = 0;

	while (off < size) {
		const uint8_t *p = data + off;
		size_t avail = size - off;
		struct rc_frame_header h;
		uint8_t again[RC_FRAME_MAX_HEADER];
		int n = rc_frame_parse_header(p, avail, r, &h);

		if (n == -EAGAIN) {
			CHECK(avail < RC_FRAME_MAX_HEADER);
			return;
		}
		if (n < 0) {
			CHECK(n == -EPROTO || n == -EMSGSIZE);
			return;
		}
		CHECK(n >= 2 && n <= RC_FRAME_MAX_HEADER && (size_t)n <= avail);
		CHECK(h.header_len == n && h.masked == r->expect_masked);
		CHECK(r->allow_rsv1 || !h.rsv1);
		CHECK(h.payload_len >> 63 == 0);
		CHECK(!r->max_payload || h.payload_len <= r->max_payload);
		if (h.opcode & 0x08)
			CHECK(h.fin && h.payload_len <= RC_CONTROL_MAX_PAYLOAD);
		/* Only minimal encodings are accepted, so writing the header
		 * back must give the very same bytes. */
		CHECK(rc_frame_write_header(again, h.opcode, h.fin, h.rsv1, h.payload_len,
					    h.masked ? h.mask : NULL) == (size_t)n);
		CHECK(memcmp(again, p, (size_t)n) == 0);
		/* Every strict prefix of an accepted header needs more. */
		CHECK(rc_frame_parse_header(p, (size_t)n - 1, r, &h) == -EAGAIN);
		CHECK(rc_frame_parse_header(p, avail, r, &h) == n);

		if (rc_msg_state_next(&st, &h) < 0)
			memset(&st, 0, sizeof(st));
		if (h.payload_len > avail - (size_t)n)
			return;
		if (h.masked)
			check_mask(p + n, h.payload_len, h.mask);
		if (h.opcode == RC_OP_CLOSE)
			check_close(p + n, h.payload_len);
		off += (size_t)n + h.payload_len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct rc_frame_rules server = {
		.expect_masked = true, .allow_rsv1 = true,
	};
	static const struct rc_frame_rules client = {
		.expect_masked = false, .max_payload = 1 << 16,
	};

	run(data, size, &server);
	run(data, size, &client);
	return 0;
}
