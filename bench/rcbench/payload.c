/* Message payloads: every message names its publisher, its sequence number
 * and its send time (CLOCK_MONOTONIC ns: publishers and subscribers run on
 * the same machine), so subscribers measure latency and check order.
 * Raw mode: binary, "RCB1" + pub (u32) + seq (u64) + ts (u64), little
 * endian, then filler.  JSON mode: a JSON string literal
 * "P<8 hex>S<16 hex>T<16 hex><filler>" that the broker embeds as "data". */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "bench/rcbench/rcbench.h"

/* Monotonic nanoseconds. */
uint64_t rcb_now(void)
{
	return rc_now_ns();
}

static const char hexd[] = "0123456789abcdef";

static void put_hex(uint8_t *out, uint64_t v, unsigned digits)
{
	for (unsigned i = digits; i-- > 0; v >>= 4)
		out[i] = (uint8_t)hexd[v & 15];
}

static int get_hex(const uint8_t *p, unsigned digits, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned i = 0; i < digits; i++) {
		uint8_t c = p[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10u;
		else
			return -EINVAL;
		r = r << 4 | d;
	}
	*v = r;
	return 0;
}

/* Rewrites the header of a filled payload. */
void rcb_payload_stamp(uint8_t *buf, bool json, uint32_t pub, uint64_t seq,
		       uint64_t ts)
{
	if (!json) {
		memcpy(buf, "RCB1", 4);
		memcpy(buf + 4, &pub, 4);
		memcpy(buf + 8, &seq, 8);
		memcpy(buf + 16, &ts, 8);
		return;
	}
	buf[0] = '"';
	buf[1] = 'P';
	put_hex(buf + 2, pub, 8);
	buf[10] = 'S';
	put_hex(buf + 11, seq, 16);
	buf[27] = 'T';
	put_hex(buf + 28, ts, 16);
}

/* Fills a whole payload.  The filler looks like a stream of small JSON
 * records (compressible about as well as typical pub/sub traffic), and is
 * the same for every message so each costs the same to compress. */
void rcb_payload_fill(uint8_t *buf, size_t size, bool json, uint32_t pub,
		      uint64_t seq, uint64_t ts)
{
	static const char rec[] = "{\"sym\":\"ABC\",\"px\":101.25,\"qty\":300,\"side\":\"b\"},";
	size_t start = json ? 44 : RCB_MIN_RAW;
	uint32_t x = 2463534242u;

	for (size_t i = start; i < size; i++) {
		uint8_t c = (uint8_t)rec[(i - start) % (sizeof(rec) - 1)];
		/* Vary the digits so the text is not one repeated record. */
		if (c >= '0' && c <= '9') {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			c = (uint8_t)('0' + x % 10);
		}
		if (json && c == '"')
			c = '\''; /* stays one JSON string */
		buf[i] = c;
	}
	rcb_payload_stamp(buf, json, pub, seq, ts);
	if (json)
		buf[size - 1] = '"';
}

/* Parses a received payload (see the top of this file). */
int rcb_payload_parse(const uint8_t *p, size_t len, bool json, uint32_t *pub,
		      uint64_t *seq, uint64_t *ts)
{
	uint64_t v;

	if (!json) {
		if (len < RCB_MIN_RAW || memcmp(p, "RCB1", 4) != 0)
			return -EINVAL;
		memcpy(pub, p + 4, 4);
		memcpy(seq, p + 8, 8);
		memcpy(ts, p + 16, 8);
		return 0;
	}
	const uint8_t *d = memmem(p, len, "\"data\":\"P", 9);
	if (!d)
		return -EINVAL;
	d += 8; /* at 'P' */
	if ((size_t)(p + len - d) < 43 || d[9] != 'S' || d[26] != 'T')
		return -EINVAL;
	if (get_hex(d + 1, 8, &v) < 0)
		return -EINVAL;
	*pub = (uint32_t)v;
	if (get_hex(d + 10, 16, seq) < 0 || get_hex(d + 27, 16, ts) < 0)
		return -EINVAL;
	return 0;
}
