/* RFC 6455 section 5 frame codec: header parse/write, masking,
 * fragmentation state and close payloads. */
#include "proto/frame.h"

#include <errno.h>
#include <string.h>

#define B0_FIN 0x80
#define B0_RSV1 0x40
#define B0_RSV23 0x30
#define B0_OPCODE 0x0F
#define B1_MASK 0x80
#define B1_LEN 0x7F
#define LEN_16 126
#define LEN_64 127

#define CLOSE_REASON_MAX (RC_CONTROL_MAX_PAYLOAD - 2)

static bool opcode_known(uint8_t op)
{
	switch (op) {
	case RC_OP_CONT:
	case RC_OP_TEXT:
	case RC_OP_BINARY:
	case RC_OP_CLOSE:
	case RC_OP_PING:
	case RC_OP_PONG:
		return true;
	default:
		return false;
	}
}

static bool opcode_is_control(uint8_t op)
{
	return op & 0x08;
}

static uint64_t load_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void store_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = n; i-- > 0; v >>= 8)
		p[i] = (uint8_t)v;
}

/* Parses one frame header; see frame.h.  Errors that do not depend on the
 * rules are reported as soon as the bytes showing them have arrived, so a
 * peer sending a reserved opcode is stopped at its first byte; the rule
 * checks (RSV1, masking, max_payload) wait for the whole header. */
int rc_frame_parse_header(const uint8_t *buf, size_t len,
			  const struct rc_frame_rules *rules,
			  struct rc_frame_header *h)
{
	uint8_t b0, b1, len7, opcode;
	size_t ext_len, header_len;
	uint64_t payload_len;
	bool fin, rsv1, masked;

	if (len < 1)
		return -EAGAIN;
	b0 = buf[0];
	fin = b0 & B0_FIN;
	rsv1 = b0 & B0_RSV1;
	opcode = b0 & B0_OPCODE;
	/* RSV2/RSV3 belong to extensions we never negotiate. */
	if (b0 & B0_RSV23)
		return -EPROTO;
	if (!opcode_known(opcode))
		return -EPROTO;
	if (opcode_is_control(opcode) && !fin)
		return -EPROTO;

	if (len < 2)
		return -EAGAIN;
	b1 = buf[1];
	masked = b1 & B1_MASK;
	len7 = b1 & B1_LEN;
	if (opcode_is_control(opcode) && len7 > RC_CONTROL_MAX_PAYLOAD)
		return -EPROTO;

	ext_len = len7 == LEN_16 ? 2 : len7 == LEN_64 ? 8 : 0;
	header_len = 2 + ext_len + (masked ? 4 : 0);
	if (len < 2 + ext_len)
		return -EAGAIN;
	payload_len = ext_len ? load_be(buf + 2, ext_len) : len7;
	/* Section 5.2: "the minimal number of bytes MUST be used". */
	if (len7 == LEN_16 && payload_len < LEN_16)
		return -EPROTO;
	if (len7 == LEN_64 && payload_len <= UINT16_MAX)
		return -EPROTO;
	if (payload_len >> 63)
		return -EPROTO;

	if (len < header_len)
		return -EAGAIN;
	if (rsv1 && !rules->allow_rsv1)
		return -EPROTO;
	if (masked != rules->expect_masked)
		return -EPROTO;
	if (rules->max_payload && payload_len > rules->max_payload)
		return -EMSGSIZE;

	h->payload_len = payload_len;
	if (masked)
		memcpy(h->mask, buf + 2 + ext_len, 4);
	else
		memset(h->mask, 0, 4);
	h->opcode = opcode;
	h->header_len = (uint8_t)header_len;
	h->fin = fin;
	h->rsv1 = rsv1;
	h->masked = masked;
	return (int)header_len;
}

/* Writes a frame header with the minimal length encoding; see frame.h.
 * payload_len must be below 2^63 (the top bit is not representable). */
size_t rc_frame_write_header(uint8_t *out, uint8_t opcode, bool fin, bool rsv1,
			     uint64_t payload_len, const uint8_t mask[4])
{
	uint8_t mask_bit = mask ? B1_MASK : 0;
	size_t n;

	out[0] = (fin ? B0_FIN : 0) | (rsv1 ? B0_RSV1 : 0) | (opcode & B0_OPCODE);
	if (payload_len < LEN_16) {
		out[1] = mask_bit | (uint8_t)payload_len;
		n = 2;
	} else if (payload_len <= UINT16_MAX) {
		out[1] = mask_bit | LEN_16;
		store_be(out + 2, payload_len, 2);
		n = 4;
	} else {
		out[1] = mask_bit | LEN_64;
		store_be(out + 2, payload_len, 8);
		n = 10;
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

/* XORs data with the rotating mask; see frame.h. */
uint64_t rc_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4],
		    uint64_t offset)
{
	size_t i = 0;

	if (len >= 8) {
		/* A word is two whole mask periods, so one pre-rotated mask
		 * word fits every 8-byte step; building it byte by byte in
		 * memory order makes it endian-neutral. */
		uint8_t rot[8];
		uint64_t m, w;

		for (size_t k = 0; k < 8; k++)
			rot[k] = mask[(offset + k) & 3];
		memcpy(&m, rot, sizeof(m));
		for (; len - i >= 8; i += 8) {
			memcpy(&w, data + i, sizeof(w));
			w ^= m;
			memcpy(data + i, &w, sizeof(w));
		}
	}
	for (; i < len; i++)
		data[i] ^= mask[(offset + i) & 3];
	return offset + len;
}

/* Checks a frame against the message in progress; see frame.h.  A final
 * continuation resets the state, so a caller that needs the message's opcode
 * or compression flag for that frame reads them before the call. */
int rc_msg_state_next(struct rc_msg_state *st, const struct rc_frame_header *h)
{
	switch (h->opcode) {
	case RC_OP_CONT:
		/* RFC 7692 section 6.1: RSV1 only on the first frame. */
		if (!st->opcode || h->rsv1)
			return -EPROTO;
		if (h->fin) {
			st->opcode = 0;
			st->compressed = false;
		}
		return 0;
	case RC_OP_TEXT:
	case RC_OP_BINARY:
		if (st->opcode)
			return -EPROTO;
		if (!h->fin) {
			st->opcode = h->opcode;
			st->compressed = h->rsv1;
		}
		return 0;
	case RC_OP_CLOSE:
	case RC_OP_PING:
	case RC_OP_PONG:
		/* Control frames may interleave with a fragmented message
		 * (section 5.4) but are never compressed or fragmented. */
		if (h->rsv1 || !h->fin)
			return -EPROTO;
		return 0;
	default:
		return -EPROTO;
	}
}

/* True for codes allowed on the wire; see frame.h.  1004 is reserved,
 * 1005/1006/1015 are local-only by definition, 1016-2999 are unassigned or
 * reserved for future protocol use, 3000-4999 belong to libraries and
 * applications. */
bool rc_close_code_valid(uint16_t code)
{
	if (code >= 3000 && code <= 4999)
		return true;
	if (code >= 1000 && code <= 1003)
		return true;
	return code >= 1007 && code <= 1014;
}

/* Parses a received close payload; see frame.h.  A payload over 125 bytes
 * cannot come from a valid control frame and is -EPROTO too. */
int rc_close_parse(const uint8_t *p, size_t len, uint16_t *code,
		   const uint8_t **reason, size_t *reason_len)
{
	uint16_t c;

	if (len == 0) {
		*code = RC_CLOSE_NO_STATUS;
		*reason = NULL;
		*reason_len = 0;
		return 0;
	}
	if (len == 1 || len > RC_CONTROL_MAX_PAYLOAD)
		return -EPROTO;
	c = (uint16_t)load_be(p, 2);
	if (!rc_close_code_valid(c))
		return -EPROTO;
	if (!rc_utf8_valid(p + 2, len - 2))
		return -EILSEQ;
	*code = c;
	*reason = p + 2;
	*reason_len = len - 2;
	return 0;
}

/* Longest prefix of r[0..len) that is complete, valid UTF-8 and at most
 * max bytes.  Cutting only at a boundary of the valid part means the
 * payload we send always passes the peer's UTF-8 check, even if the
 * caller's reason was itself bad. */
static size_t utf8_prefix(const uint8_t *r, size_t len, size_t max)
{
	struct rc_utf8 v;
	size_t n = len < max ? len : max;
	size_t bad;

	rc_utf8_init(&v);
	if (rc_utf8_feed(&v, r, n, &bad) < 0)
		n = bad;
	if (rc_utf8_valid(r, n))
		return n;
	/* r[0..n) is a valid start that ends inside a sequence: drop that
	 * sequence's continuation bytes, then its lead byte. */
	while (n > 0 && (r[n - 1] & 0xC0) == 0x80)
		n--;
	return n > 0 ? n - 1 : 0;
}

/* Writes a close payload; see frame.h.  reason may be NULL when reason_len
 * is 0. */
size_t rc_close_write(uint8_t *out, uint16_t code, const char *reason,
		      size_t reason_len)
{
	size_t n;

	if (code == RC_CLOSE_NO_STATUS)
		return 0;
	store_be(out, code, 2);
	if (!reason)
		return 2;
	n = utf8_prefix((const uint8_t *)reason, reason_len, CLOSE_REASON_MAX);
	memcpy(out + 2, reason, n);
	return 2 + n;
}

/* Maps an error of this module, utf8.h or the inflater to a close code;
 * see frame.h. */
uint16_t rc_close_code_for(int err)
{
	switch (err) {
	case -EPROTO:
		return RC_CLOSE_PROTOCOL;
	case -ENOTSUP:
		return RC_CLOSE_UNSUPPORTED;
	case -EILSEQ:
		return RC_CLOSE_INVALID_DATA;
	case -EMSGSIZE:
		return RC_CLOSE_TOO_BIG;
	default:
		return RC_CLOSE_INTERNAL;
	}
}
