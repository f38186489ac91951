/* JWT compact-form parser: see jwt.h for the contract.  Three base64url
 * parts are decoded (header and signature straight into bounded buffers,
 * the claims onto the stack), each JSON part is checked strictly by
 * rc_json_valid before jsmn tokenizes it (jsmn alone is lax), and the
 * members we know are copied, unescaped, into out->text. */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "proto/jwt.h"

#include <errno.h>
#include <string.h>

#include "proto/base64.h"
#include "proto/json.h"
#include "proto/json_internal.h"

#define HEADER_MAX 1024 /* decoded header bytes */
#define MAX_MEMBERS 64  /* top-level members of the header or claims */

static const char *const alg_names[] = {
	[RC_JWT_HS256] = "HS256", [RC_JWT_HS384] = "HS384", [RC_JWT_HS512] = "HS512",
	[RC_JWT_RS256] = "RS256", [RC_JWT_ES256] = "ES256",
};

/* "HS256" etc.; "?" for a value outside the enum. */
const char *rc_jwt_alg_name(enum rc_jwt_alg alg)
{
	if (alg < RC_JWT_HS256 || alg > RC_JWT_ES256)
		return "?";
	return alg_names[alg];
}

/* The enum for an "alg" name, exact and case-sensitive (RFC 7515), or 0. */
enum rc_jwt_alg rc_jwt_alg_from_name(const char *name, size_t len)
{
	for (int a = RC_JWT_HS256; a <= RC_JWT_ES256; a++)
		if (strlen(alg_names[a]) == len && memcmp(alg_names[a], name, len) == 0)
			return (enum rc_jwt_alg)a;
	return 0;
}

/* One JSON part being read: its bytes and tokens. */
struct part {
	const uint8_t *p;
	jsmntok_t *tok;
	int ntok;
};

/* Tokenizes p[0..len), which must be one strict JSON object. */
static int tokenize(struct part *pt, const uint8_t *p, size_t len, jsmntok_t *tok,
		    int cap, const char **why)
{
	jsmn_parser jp;
	int r;

	if (!rc_json_valid(p, len)) {
		*why = "not strict JSON";
		return -EBADMSG;
	}
	jsmn_init(&jp);
	r = jsmn_parse(&jp, (const char *)p, len, tok, (unsigned)cap);
	if (r == JSMN_ERROR_NOMEM) {
		*why = "too many JSON values";
		return -EBADMSG;
	}
	if (r < 1 || tok[0].type != JSMN_OBJECT) {
		*why = "not a JSON object";
		return -EBADMSG;
	}
	if (tok[0].size > MAX_MEMBERS) {
		*why = "too many members";
		return -EBADMSG;
	}
	pt->p = p;
	pt->tok = tok;
	pt->ntok = r;
	return 0;
}

/* Copies the unescaped body of string token t into out->text. */
static int copy_string(struct rc_jwt *out, const struct part *pt, const jsmntok_t *t,
		       size_t max, struct rc_span *dst)
{
	char *at = out->text + out->text_len;
	size_t room = sizeof(out->text) - out->text_len;
	bool lone;
	ssize_t n;

	if (t->type != JSMN_STRING)
		return -EINVAL;
	n = rc__json_unescape(pt->p + t->start, (size_t)(t->end - t->start), at,
			      room < max ? room : max, &lone);
	if (n < 0 || lone)
		return -EINVAL;
	*dst = (struct rc_span){ at, (size_t)n };
	out->text_len += (size_t)n;
	return 0;
}

/* A NumericDate: an integer or decimal number of seconds (no exponent),
 * floored, within +-1e15. */
static int numeric_date(const struct part *pt, const jsmntok_t *t, int64_t *v)
{
	const uint8_t *s = pt->p + t->start, *e = pt->p + t->end;
	bool neg = false;
	int64_t x = 0;

	if (t->type != JSMN_PRIMITIVE || (*s != '-' && (*s < '0' || *s > '9')))
		return -EINVAL;
	if (*s == '-')
		neg = true, s++;
	for (; s < e && *s >= '0' && *s <= '9'; s++) {
		if (x > 100000000000000ll)
			return -EINVAL;
		x = x * 10 + (*s - '0');
	}
	if (s < e && *s != '.')
		return -EINVAL; /* an exponent */
	for (const uint8_t *f = s + (s < e); f < e; f++)
		if (*f < '0' || *f > '9')
			return -EINVAL;
	if (neg && s < e) {
		for (const uint8_t *f = s + 1; f < e; f++)
			if (*f != '0') {
				x++; /* floor of a negative fraction */
				break;
			}
	}
	*v = neg ? -x : x;
	return 0;
}

/* An array of strings (or, if one_ok, a single string) into dst[]. */
static int string_list(struct rc_jwt *out, const struct part *pt, int i, bool one_ok,
		       struct rc_span *dst, unsigned max, unsigned *n, size_t item_max)
{
	const jsmntok_t *t = &pt->tok[i];

	*n = 0;
	if (t->type == JSMN_STRING && one_ok) {
		*n = 1;
		return copy_string(out, pt, t, item_max, &dst[0]);
	}
	if (t->type != JSMN_ARRAY || t->size > (int)max)
		return -EINVAL;
	for (int k = 0, j = i + 1; k < t->size; k++, j++) {
		if (copy_string(out, pt, &pt->tok[j], item_max, &dst[k]) < 0)
			return -EINVAL;
		(*n)++;
	}
	return 0;
}

/* The member name at token k compared with a known name. */
static bool key_is(const struct part *pt, const jsmntok_t *k, const char *name)
{
	char buf[32];
	bool lone;
	ssize_t n = rc__json_unescape(pt->p + k->start, (size_t)(k->end - k->start), buf,
				      sizeof(buf), &lone);

	return n >= 0 && (size_t)n == strlen(name) && memcmp(buf, name, (size_t)n) == 0;
}

/* Finds the known members: val[f] = token index of names[f]'s value, or -1.
 * A known name given twice is a duplicate (-EBADMSG). */
static int members(const struct part *pt, const char *const *names, int nnames, int *val)
{
	for (int f = 0; f < nnames; f++)
		val[f] = -1;
	for (int m = 0, k = 1; m < pt->tok[0].size; m++) {
		for (int f = 0; f < nnames; f++) {
			if (!key_is(pt, &pt->tok[k], names[f]))
				continue;
			if (val[f] >= 0)
				return -EBADMSG;
			val[f] = k + 1;
		}
		k = rc__json_tok_skip(pt->tok, k + 1);
	}
	return 0;
}

enum { H_ALG, H_KID, H_CRIT, H_COUNT };
static const char *const header_names[H_COUNT] = { "alg", "kid", "crit" };

static int parse_header(struct rc_jwt *out, const uint8_t *h, size_t len, const char **why)
{
	jsmntok_t tok[64];
	struct part pt;
	int val[H_COUNT], err;
	struct rc_span alg;

	if ((err = tokenize(&pt, h, len, tok, 64, why)) < 0) {
		*why = "header is not a small strict JSON object";
		return err;
	}
	if (members(&pt, header_names, H_COUNT, val) < 0) {
		*why = "header has a duplicate member";
		return -EBADMSG;
	}
	if (val[H_CRIT] >= 0) {
		*why = "\"crit\" header extensions are not supported";
		return -ENOTSUP;
	}
	if (val[H_ALG] < 0 || copy_string(out, &pt, &tok[val[H_ALG]], 16, &alg) < 0) {
		*why = "header has no usable \"alg\"";
		return -ENOTSUP;
	}
	out->alg = rc_jwt_alg_from_name(alg.p, alg.len);
	if (!out->alg) {
		*why = alg.len == 4 && !memcmp(alg.p, "none", 4)
			       ? "alg \"none\" is refused"
			       : "alg is not HS256, HS384, HS512, RS256 or ES256";
		return -ENOTSUP;
	}
	if (val[H_KID] >= 0 &&
	    copy_string(out, &pt, &tok[val[H_KID]], RC_JWT_KID_MAX, &out->kid) < 0) {
		*why = "kid is not a string of at most 64 bytes";
		return -EINVAL;
	}
	return 0;
}

enum { C_EXP, C_NBF, C_IAT, C_SUB, C_ISS, C_AUD, C_SUBSCRIBE, C_PUBLISH, C_COUNT };
static const char *const claim_names[C_COUNT] = {
	"exp", "nbf", "iat", "sub", "iss", "aud", "subscribe", "publish",
};

static int parse_claims(struct rc_jwt *out, const uint8_t *c, size_t len, const char **why)
{
	jsmntok_t tok[RC_JWT_MAX_TOKENS];
	struct part pt;
	int val[C_COUNT], err;

	if ((err = tokenize(&pt, c, len, tok, RC_JWT_MAX_TOKENS, why)) < 0) {
		*why = "claims are not a strict JSON object of at most 512 values";
		return err;
	}
	if (members(&pt, claim_names, C_COUNT, val) < 0) {
		*why = "claims have a duplicate member";
		return -EBADMSG;
	}
	*why = "exp, nbf and iat must be numbers of seconds";
	if ((val[C_EXP] >= 0 && numeric_date(&pt, &tok[val[C_EXP]], &out->exp) < 0) ||
	    (val[C_NBF] >= 0 && numeric_date(&pt, &tok[val[C_NBF]], &out->nbf) < 0) ||
	    (val[C_IAT] >= 0 && numeric_date(&pt, &tok[val[C_IAT]], &out->iat) < 0))
		return -EINVAL;
	out->has_exp = val[C_EXP] >= 0;
	out->has_nbf = val[C_NBF] >= 0;
	out->has_iat = val[C_IAT] >= 0;
	*why = "sub and iss must be strings of at most 255 bytes";
	if ((val[C_SUB] >= 0 && copy_string(out, &pt, &tok[val[C_SUB]], 255, &out->sub) < 0) ||
	    (val[C_ISS] >= 0 && copy_string(out, &pt, &tok[val[C_ISS]], 255, &out->iss) < 0))
		return -EINVAL;
	*why = "aud must be a string or an array of at most 8 strings";
	if (val[C_AUD] >= 0 && string_list(out, &pt, val[C_AUD], true, out->aud,
					   RC_JWT_MAX_AUD, &out->naud, 255) < 0)
		return -EINVAL;
	*why = "subscribe and publish must be arrays of at most 64 topic patterns";
	for (int g = 0; g < RC_JWT_NGRANTS; g++) {
		int v = val[g == RC_JWT_SUBSCRIBE ? C_SUBSCRIBE : C_PUBLISH];

		if (v >= 0 && string_list(out, &pt, v, false, out->grants[g], RC_JWT_MAX_GRANTS,
					  &out->ngrants[g], RC_TOPIC_MAX) < 0)
			return -EINVAL;
	}
	*why = NULL;
	return 0;
}

/* Parses a compact JWS (see jwt.h). */
int rc_jwt_parse(const char *token, size_t len, struct rc_jwt *out, const char **why)
{
	uint8_t header[HEADER_MAX], claims[RC_JWT_MAX];
	const char *d1, *d2;
	ssize_t hn, cn, sn;
	int err;

	memset(out, 0, offsetof(struct rc_jwt, text));
	out->text_len = 0;
	if (len > RC_JWT_MAX) {
		*why = "token is longer than 8192 bytes";
		return -EMSGSIZE;
	}
	d1 = memchr(token, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
		*why = "not a JWT (three base64url parts separated by dots)";
		return -EBADMSG;
	}
	hn = rc_base64url_decode(header, sizeof(header), token, (size_t)(d1 - token));
	cn = rc_base64url_decode(claims, sizeof(claims), d1 + 1, (size_t)(d2 - d1 - 1));
	sn = rc_base64url_decode(out->sig, sizeof(out->sig), d2 + 1,
				 len - (size_t)(d2 + 1 - token));
	if (hn <= 0 || cn <= 0 || sn <= 0) {
		*why = "a part is empty, too long or not canonical base64url";
		return -EBADMSG;
	}
	out->sig_len = (size_t)sn;
	out->signed_len = (size_t)(d2 - token);
	if ((err = parse_header(out, header, (size_t)hn, why)) < 0)
		return err;
	return parse_claims(out, claims, (size_t)cn, why);
}
