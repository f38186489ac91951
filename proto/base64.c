/* Base64, standard alphabet with padding (RFC 4648 section 4).  See base64.h
 * for the strictness rules of the decoder. */
#include "proto/base64.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>

static const char enc_alphabet[64] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Sextet value + 1 per input byte; 0 marks a byte outside the alphabet (this
 * includes '=', which only the padding check accepts). */
static const uint8_t dec_table[256] = {
	[32] =
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 63,  0,  0,  0, 64,
	53, 54, 55, 56, 57, 58, 59, 60, 61, 62,  0,  0,  0,  0,  0,  0,
	 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,  0,  0,  0,  0,  0,
	 0, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
	42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52,  0,  0,  0,  0,  0,
};

/* Encoded length of n bytes: 4 * ceil(n / 3), saturating. */
size_t rc_base64_encoded_len(size_t n)
{
	size_t groups = n / 3 + (n % 3 != 0);

	if (groups > SIZE_MAX / 4)
		return SIZE_MAX;
	return groups * 4;
}

/* Decoded size before subtracting padding. */
size_t rc_base64_decoded_max(size_t n)
{
	return n / 4 * 3 + (n % 4) * 3 / 4;
}

/* Encodes whole 3-byte groups with one table lookup per output character,
 * then the padded tail. */
ssize_t rc_base64_encode(char *out, size_t cap, const uint8_t *in, size_t len)
{
	size_t need = rc_base64_encoded_len(len);
	size_t i = 0;
	char *o = out;

	if (need > cap || need > SSIZE_MAX)
		return -ENOSPC;
	for (; len - i >= 3; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		o[0] = enc_alphabet[v >> 18];
		o[1] = enc_alphabet[(v >> 12) & 63];
		o[2] = enc_alphabet[(v >> 6) & 63];
		o[3] = enc_alphabet[v & 63];
		o += 4;
	}
	if (len - i == 1) {
		o[0] = enc_alphabet[in[i] >> 2];
		o[1] = enc_alphabet[(in[i] & 3) << 4];
		o[2] = '=';
		o[3] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		o[0] = enc_alphabet[v >> 10];
		o[1] = enc_alphabet[(v >> 4) & 63];
		o[2] = enc_alphabet[(v << 2) & 63];
		o[3] = '=';
	}
	return (ssize_t)need;
}

/* Checks the shape (length, padding) first so that -ENOSPC is only returned
 * for input that could be valid, then decodes; a character outside the
 * alphabet anywhere, or non-zero bits under the padding, is -EINVAL. */
ssize_t rc_base64_decode(uint8_t *out, size_t cap, const char *in, size_t len)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t pad = 0, full, dlen, i;
	uint8_t *o = out;

	if (len % 4 != 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	dlen = len / 4 * 3 - pad;
	if (dlen > cap || dlen > SSIZE_MAX)
		return -ENOSPC;
	/* Groups without padding. */
	full = pad ? len - 4 : len;
	for (i = 0; i < full; i += 4) {
		uint32_t a = dec_table[s[i]], b = dec_table[s[i + 1]];
		uint32_t c = dec_table[s[i + 2]], d = dec_table[s[i + 3]];

		if (!a || !b || !c || !d)
			return -EINVAL;
		uint32_t v = (a - 1) << 18 | (b - 1) << 12 | (c - 1) << 6 | (d - 1);
		o[0] = (uint8_t)(v >> 16);
		o[1] = (uint8_t)(v >> 8);
		o[2] = (uint8_t)v;
		o += 3;
	}
	if (pad) {
		uint32_t a = dec_table[s[i]], b = dec_table[s[i + 1]];
		uint32_t c = pad == 1 ? dec_table[s[i + 2]] : 1;

		if (!a || !b || !c)
			return -EINVAL;
		uint32_t v = (a - 1) << 18 | (b - 1) << 12 | (c - 1) << 6;
		/* The bits no output byte carries must be zero. */
		if ((pad == 2 && (v & 0xffff)) || (pad == 1 && (v & 0xff)))
			return -EINVAL;
		o[0] = (uint8_t)(v >> 16);
		if (pad == 1)
			o[1] = (uint8_t)(v >> 8);
	}
	return (ssize_t)dlen;
}

/* The URL-safe alphabet (RFC 4648 section 5): '-' and '_' in place of '+'
 * and '/', no padding (as JWS compact serialization uses it). */
static uint8_t url_sextet(uint8_t ch)
{
	if (ch == '-')
		return 63;
	if (ch == '_')
		return 64;
	if (ch == '+' || ch == '/')
		return 0;
	return dec_table[ch];
}

/* Decodes unpadded base64url; the same canonical rules as the standard
 * decoder (a length of 1 mod 4 is impossible, unused bits must be zero). */
ssize_t rc_base64url_decode(uint8_t *out, size_t cap, const char *in, size_t len)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t tail = len % 4, dlen = len / 4 * 3 + (tail ? tail - 1 : 0), i;
	uint8_t *o = out;
	uint32_t v = 0;

	if (tail == 1)
		return -EINVAL;
	if (dlen > cap || dlen > SSIZE_MAX)
		return -ENOSPC;
	for (i = 0; i < len; i++) {
		uint8_t x = url_sextet(s[i]);

		if (!x)
			return -EINVAL;
		v = v << 6 | (uint32_t)(x - 1);
		if (i % 4 == 3) {
			o[0] = (uint8_t)(v >> 16);
			o[1] = (uint8_t)(v >> 8);
			o[2] = (uint8_t)v;
			o += 3;
			v = 0;
		}
	}
	if (tail == 2) {
		if (v & 0xf)
			return -EINVAL;
		o[0] = (uint8_t)(v >> 4);
	} else if (tail == 3) {
		if (v & 0x3)
			return -EINVAL;
		o[0] = (uint8_t)(v >> 10);
		o[1] = (uint8_t)(v >> 2);
	}
	return (ssize_t)dlen;
}
