/* Incremental UTF-8 validation: a table-driven DFA (RFC 3629 section 4
 * grammar) plus a word-at-a-time skip over ASCII runs. */
#include "proto/utf8.h"

#include <errno.h>
#include <string.h>

/* Byte classes.  Each class is a set of bytes the DFA never needs to tell
 * apart; the continuation range is split where the second byte of E0, ED,
 * F0 and F4 sequences is restricted (overlongs, surrogates, > U+10FFFF). */
enum {
	C_ASCII,  /* 00..7F */
	C_80_8F,  /* continuation */
	C_90_9F,  /* continuation */
	C_A0_BF,  /* continuation */
	C_BAD,    /* C0, C1 (always overlong), F5..FF (past U+10FFFF or 5/6-byte) */
	C_L2,     /* C2..DF: lead of a 2-byte sequence */
	C_E0,     /* E0: 3-byte lead, second byte A0..BF (no overlongs) */
	C_L3,     /* E1..EC, EE, EF: 3-byte lead, any continuation */
	C_ED,     /* ED: 3-byte lead, second byte 80..9F (no surrogates) */
	C_F0,     /* F0: 4-byte lead, second byte 90..BF (no overlongs) */
	C_L4,     /* F1..F3: 4-byte lead, any continuation */
	C_F4,     /* F4: 4-byte lead, second byte 80..8F (<= U+10FFFF) */
	C_COUNT
};

/* States.  ACCEPT must be 0: struct rc_utf8 documents 0 as "between code
 * points" and rc_utf8_init() sets it. */
enum {
	S_ACCEPT,
	S_REJECT, /* sticky */
	S_NEED1,  /* one more continuation byte, any */
	S_NEED2,
	S_NEED3,
	S_E0,     /* after E0: A0..BF, then one more */
	S_ED,     /* after ED: 80..9F, then one more */
	S_F0,     /* after F0: 90..BF, then two more */
	S_F4,     /* after F4: 80..8F, then two more */
	S_COUNT
};

static const uint8_t byte_class[256] = {
	[0x00 ... 0x7F] = C_ASCII,
	[0x80 ... 0x8F] = C_80_8F,
	[0x90 ... 0x9F] = C_90_9F,
	[0xA0 ... 0xBF] = C_A0_BF,
	[0xC0 ... 0xC1] = C_BAD,
	[0xC2 ... 0xDF] = C_L2,
	[0xE0] = C_E0,
	[0xE1 ... 0xEC] = C_L3,
	[0xED] = C_ED,
	[0xEE ... 0xEF] = C_L3,
	[0xF0] = C_F0,
	[0xF1 ... 0xF3] = C_L4,
	[0xF4] = C_F4,
	[0xF5 ... 0xFF] = C_BAD,
};

#define R S_REJECT
static const uint8_t transition[S_COUNT][C_COUNT] = {
	/*            ASCII     80-8F    90-9F    A0-BF    BAD  L2       E0    L3       ED    F0    L4       F4 */
	[S_ACCEPT] = {S_ACCEPT, R,       R,       R,       R,   S_NEED1, S_E0, S_NEED2, S_ED, S_F0, S_NEED3, S_F4},
	[S_REJECT] = {R,        R,       R,       R,       R,   R,       R,    R,       R,    R,    R,       R},
	[S_NEED1]  = {R,        S_ACCEPT, S_ACCEPT, S_ACCEPT, R, R,      R,    R,       R,    R,    R,       R},
	[S_NEED2]  = {R,        S_NEED1, S_NEED1, S_NEED1, R,   R,       R,    R,       R,    R,    R,       R},
	[S_NEED3]  = {R,        S_NEED2, S_NEED2, S_NEED2, R,   R,       R,    R,       R,    R,    R,       R},
	[S_E0]     = {R,        R,       R,       S_NEED1, R,   R,       R,    R,       R,    R,    R,       R},
	[S_ED]     = {R,        S_NEED1, S_NEED1, R,       R,   R,       R,    R,       R,    R,    R,       R},
	[S_F0]     = {R,        R,       S_NEED2, S_NEED2, R,   R,       R,    R,       R,    R,    R,       R},
	[S_F4]     = {R,        S_NEED2, R,       R,       R,   R,       R,    R,       R,    R,    R,       R},
};
#undef R

_Static_assert(S_ACCEPT == 0, "struct rc_utf8 promises state 0 between code points");

#define HIGH_BITS 0x8080808080808080ull

/* Feeds len bytes; see utf8.h.  After an earlier failure *bad_at is 0: the
 * first byte of this call is already past the error. */
int rc_utf8_feed(struct rc_utf8 *v, const uint8_t *p, size_t len, size_t *bad_at)
{
	uint32_t s = v->state;
	size_t i = 0;

	if (s == S_REJECT)
		goto fail;

	while (i < len) {
		if (s == S_ACCEPT) {
			/* Text is mostly ASCII: skip it 8 bytes per step.
			 * memcpy keeps the unaligned load well defined. */
			while (len - i >= 8) {
				uint64_t w;

				memcpy(&w, p + i, sizeof(w));
				if (w & HIGH_BITS)
					break;
				i += 8;
			}
			while (i < len && p[i] < 0x80)
				i++;
			if (i == len)
				break;
		}
		s = transition[s][byte_class[p[i]]];
		if (s == S_REJECT)
			goto fail;
		i++;
	}
	v->state = s;
	return 0;

fail:
	v->state = S_REJECT;
	if (bad_at)
		*bad_at = i;
	return -EILSEQ;
}

/* True when the input so far ends between code points; see utf8.h. */
bool rc_utf8_done(const struct rc_utf8 *v)
{
	return v->state == S_ACCEPT;
}

/* Whole-buffer check; see utf8.h. */
bool rc_utf8_valid(const uint8_t *p, size_t len)
{
	struct rc_utf8 v;

	rc_utf8_init(&v);
	return rc_utf8_feed(&v, p, len, NULL) == 0 && rc_utf8_done(&v);
}

/* Encodes one code point as UTF-8 (see utf8.h). */
size_t rc_utf8_encode(uint32_t cp, uint8_t out[4])
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | cp >> 6);
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | cp >> 12);
		out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | cp >> 18);
	out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}
