/* JSON Web Tokens (RFC 7519) in JWS compact form (RFC 7515): the pure part.
 * rc_jwt_parse splits a token, decodes its header and claims into a
 * caller-owned struct and checks their shape; it verifies no signature and
 * no time (the broker does both, broker/jwt.c, with keys it loaded).
 *
 * Strict on purpose, because a token is attacker input that decides access:
 * the header and the claims must be strict RFC 8259 JSON objects without
 * duplicate members (two parsers that disagree on a duplicate "alg" or "exp"
 * are a classic bypass), base64url must be canonical and unpadded, "alg"
 * must be one we implement ("none" is refused here, not by the caller), a
 * "crit" header is refused (RFC 7515 4.1.11: we understand no extension),
 * and registered claims must have their registered types.  Everything is
 * bounded: a token over RC_JWT_MAX bytes is refused before any decoding. */
#ifndef RC_PROTO_JWT_H
#define RC_PROTO_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/http.h" /* struct rc_span */

#define RC_JWT_MAX 8192          /* bytes of a compact token */
#define RC_JWT_SIG_MAX 512       /* decoded signature (RSA 4096) */
#define RC_JWT_KID_MAX 64        /* bytes of a "kid" */
#define RC_JWT_MAX_AUD 8         /* strings in an "aud" array */
#define RC_JWT_MAX_GRANTS 64     /* patterns per permission claim */
#define RC_JWT_MAX_TOKENS 512    /* JSON values + keys in the claims */

enum rc_jwt_alg {
	RC_JWT_HS256 = 1,
	RC_JWT_HS384,
	RC_JWT_HS512,
	RC_JWT_RS256,
	RC_JWT_ES256,
};

/* The permission claims: arrays of topic patterns (same syntax as the
 * broker's [topic PATTERN] rules: "news", "news.*", "*"). */
enum rc_jwt_grant { RC_JWT_SUBSCRIBE, RC_JWT_PUBLISH, RC_JWT_NGRANTS };

struct rc_jwt {
	enum rc_jwt_alg alg;
	struct rc_span kid;          /* p NULL: no "kid" */
	size_t signed_len;           /* token[0..signed_len) is the JWS signing
				      * input (header "." payload) */
	size_t sig_len;
	uint8_t sig[RC_JWT_SIG_MAX];
	bool has_exp, has_nbf, has_iat;
	int64_t exp, nbf, iat;       /* NumericDate, whole seconds (floored) */
	struct rc_span sub, iss;     /* p NULL: absent */
	unsigned naud;               /* "aud": a string (1) or an array */
	struct rc_span aud[RC_JWT_MAX_AUD];
	unsigned ngrants[RC_JWT_NGRANTS];
	struct rc_span grants[RC_JWT_NGRANTS][RC_JWT_MAX_GRANTS];
	size_t text_len;             /* every span above points into text */
	char text[RC_JWT_MAX];
};

/* Names of algorithms as in the "alg" header; rc_jwt_alg_from_name returns
 * 0 for a name we do not implement. */
const char *rc_jwt_alg_name(enum rc_jwt_alg alg);
enum rc_jwt_alg rc_jwt_alg_from_name(const char *name, size_t len);

/* Parses token[0..len) into *out (about 11 KiB; the caller owns it; spans
 * point into out->text, unescaped, valid UTF-8).  Returns 0, or a negative
 * errno with *why set to a static reason:
 *   -EMSGSIZE  longer than RC_JWT_MAX
 *   -EBADMSG   not three base64url parts, or a part that is not a strict
 *              JSON object, duplicate members, over RC_JWT_MAX_TOKENS
 *   -ENOTSUP   "alg" missing, "none", or not HS256/384/512, RS256, ES256;
 *              a "crit" header
 *   -EINVAL    a claim of the wrong type (exp/nbf/iat not numbers, sub/iss
 *              not strings, aud not a string or array of strings, a
 *              permission claim not an array of strings), or over the
 *              bounds above
 * Unknown header parameters and claims are ignored.  Allocates nothing;
 * uses about 16 KiB of stack. */
int rc_jwt_parse(const char *token, size_t len, struct rc_jwt *out,
		 const char **why);

#endif
