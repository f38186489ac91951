/* Incremental UTF-8 validation (RFC 3629), for text messages and close reasons.
 *
 * The validator is a small DFA whose state survives across calls, so a
 * message may be fed in any number of pieces (fragments, recv buffers).  It
 * fails at the first byte that cannot start or continue a valid sequence
 * (overlong forms, surrogates, code points past U+10FFFF), not at the end of
 * the message: a peer sending garbage is stopped early (Autobahn 6.x
 * "fail fast").  Runs of ASCII are skipped a word at a time. */
#ifndef RC_PROTO_UTF8_H
#define RC_PROTO_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rc_utf8 {
	uint32_t state; /* 0: between code points; otherwise mid-sequence */
};

static inline void rc_utf8_init(struct rc_utf8 *v) { v->state = 0; }

/* Feeds len bytes.  Returns 0 if everything so far can still be valid UTF-8,
 * or -EILSEQ as soon as a byte makes it invalid; after -EILSEQ the state is
 * sticky and every later call fails too.  *bad_at (may be NULL) receives the
 * offset in p of the offending byte. */
int rc_utf8_feed(struct rc_utf8 *v, const uint8_t *p, size_t len, size_t *bad_at);

/* True when the bytes fed so far end on a code point boundary (a complete,
 * valid text).  Call at the end of a message. */
bool rc_utf8_done(const struct rc_utf8 *v);

/* Encodes code point cp (at most U+10FFFF) as UTF-8 into out and returns
 * the length, 1 to 4.  Surrogates are encoded as given (callers that must
 * not produce them check first). */
size_t rc_utf8_encode(uint32_t cp, uint8_t out[4]);

/* Whole-buffer convenience: true if p[0..len) is complete, valid UTF-8. */
bool rc_utf8_valid(const uint8_t *p, size_t len);

#endif
