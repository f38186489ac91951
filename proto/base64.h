/* Base64 (RFC 4648 section 4): the standard alphabet with '=' padding, into
 * caller buffers.  Used for binary payloads in JSON "msg" envelopes.
 *
 * The decoder is strict, so that one byte string has exactly one accepted
 * encoding: the length must be a multiple of 4, padding appears only as the
 * last one or two characters, the unused bits before padding must be zero
 * (RFC 4648 section 3.5), and no whitespace or other characters are
 * skipped. */
#ifndef RC_PROTO_BASE64_H
#define RC_PROTO_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Encoded length of n input bytes: 4 * ceil(n / 3).  Saturates at SIZE_MAX
 * for n too large to encode. */
size_t rc_base64_encoded_len(size_t n);

/* Upper bound of the decoded length of n base64 characters (3 * n / 4; the
 * exact length is smaller by one per '=' of padding). */
size_t rc_base64_decoded_max(size_t n);

/* Encodes in[0..len) into out (cap bytes; no NUL is written).  Returns the
 * encoded length, or -ENOSPC when cap is smaller than
 * rc_base64_encoded_len(len), in which case out is untouched. */
ssize_t rc_base64_encode(char *out, size_t cap, const uint8_t *in, size_t len);

/* Decodes in[0..len) into out (cap bytes).  Returns the decoded length,
 * -EINVAL for input that is not canonical padded base64 (see above), or
 * -ENOSPC when cap is smaller than the decoded length.  On error the
 * contents of out are unspecified; nothing past out[cap - 1] is written. */
ssize_t rc_base64_decode(uint8_t *out, size_t cap, const char *in, size_t len);

/* Decodes unpadded base64url (RFC 4648 section 5, as in JWS compact
 * tokens) from in[0..len) into out (cap bytes).  Strict like
 * rc_base64_decode: no '=', no '+' or '/', zero unused bits.  Returns the
 * decoded length, -EINVAL or -ENOSPC. */
ssize_t rc_base64url_decode(uint8_t *out, size_t cap, const char *in, size_t len);

#endif
