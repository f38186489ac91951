/* Tests for proto/jwt.c and rc_base64url_decode: the RFC 7515 A.1 example
 * token, the strictness rules (alg none, crit, duplicates, non-canonical
 * base64url, claim types, bounds), and a token split at every byte
 * boundary must never parse as something else. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base64.h"
#include "proto/jwt.h"

/* RFC 7515 appendix A.1 (HS256); its header and claims contain CRLFs. */
#define RFC_TOKEN                                                                    \
	"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"                                       \
	".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" \
	".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

static struct rc_jwt j;

static int parse(const char *tok, const char **why)
{
	return rc_jwt_parse(tok, strlen(tok), &j, why);
}

/* header.claims.sig from JSON texts (base64url-encoded here). */
static char *make(const char *hdr, const char *claims)
{
	static char out[RC_JWT_MAX * 2];
	char tmp[RC_JWT_MAX * 2];
	size_t n = 0;
	const char *parts[3] = { hdr, claims, "sig" };

	for (int p = 0; p < 3; p++) {
		ssize_t e = rc_base64_encode(tmp, sizeof(tmp), (const uint8_t *)parts[p],
					     strlen(parts[p]));
		cr_assert(e >= 0);
		for (ssize_t i = 0; i < e; i++) {
			char c = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
			if (c != '=')
				out[n++] = c;
		}
		if (p < 2)
			out[n++] = '.';
	}
	out[n] = 0;
	return out;
}

TestSuite(jwt);

Test(jwt, rfc7515_example)
{
	const char *why = NULL;

	cr_assert_eq(parse(RFC_TOKEN, &why), 0, "%s", why);
	cr_assert_eq(j.alg, RC_JWT_HS256);
	cr_assert(j.has_exp && j.exp == 1300819380);
	cr_assert(j.iss.len == 3 && !memcmp(j.iss.p, "joe", 3));
	cr_assert_null(j.kid.p);
	cr_assert_eq(j.sig_len, 32);
	cr_assert_eq(j.signed_len, strchr(strchr(RFC_TOKEN, '.') + 1, '.') - RFC_TOKEN);
}

Test(jwt, claims_and_grants)
{
	const char *why = NULL;
	char *t = make("{\"alg\":\"ES256\",\"kid\":\"k\\u0031\"}",
		       "{\"sub\":\"u\\u00e9\",\"aud\":[\"a\",\"b\"],\"nbf\":1.9,\"iat\":-1.5,"
		       "\"subscribe\":[\"news.*\",\"x\"],\"publish\":[],\"other\":{\"exp\":\"x\"}}");

	cr_assert_eq(parse(t, &why), 0, "%s", why);
	cr_assert_eq(j.alg, RC_JWT_ES256);
	cr_assert(j.kid.len == 2 && !memcmp(j.kid.p, "k1", 2));
	cr_assert(j.sub.len == 3 && !memcmp(j.sub.p, "u\xc3\xa9", 3));
	cr_assert_eq(j.naud, 2);
	cr_assert(j.has_nbf && j.nbf == 1);
	cr_assert(j.has_iat && j.iat == -2);
	cr_assert(!j.has_exp);
	cr_assert_eq(j.ngrants[RC_JWT_SUBSCRIBE], 2);
	cr_assert_eq(j.ngrants[RC_JWT_PUBLISH], 0);
	cr_assert(j.grants[0][0].len == 6 && !memcmp(j.grants[0][0].p, "news.*", 6));
}

static const struct {
	const char *hdr, *claims;
	int err;
} refused[] = {
	{ "{\"alg\":\"none\"}", "{}", -ENOTSUP },
	{ "{\"alg\":\"hs256\"}", "{}", -ENOTSUP },
	{ "{\"kid\":\"a\"}", "{}", -ENOTSUP },
	{ "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "{}", -ENOTSUP },
	{ "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", -EBADMSG },
	{ "{\"alg\":\"HS256\",\"al\\u0067\":\"none\"}", "{}", -EBADMSG },
	{ "{\"alg\":\"HS256\"}", "{\"exp\":1,\"exp\":2}", -EBADMSG },
	{ "{\"alg\":\"HS256\"} x", "{}", -EBADMSG },
	{ "[\"alg\"]", "{}", -EBADMSG },
	{ "{\"alg\":\"HS256\"}", "[]", -EBADMSG },
	{ "{\"alg\":\"HS256\"}", "{\"a\":[1 2]}", -EBADMSG },
	{ "{\"alg\":\"HS256\"}", "{\"exp\":\"1\"}", -EINVAL },
	{ "{\"alg\":\"HS256\"}", "{\"exp\":1e9}", -EINVAL },
	{ "{\"alg\":\"HS256\"}", "{\"exp\":99999999999999999999}", -EINVAL },
	{ "{\"alg\":\"HS256\"}", "{\"sub\":1}", -EINVAL },
	{ "{\"alg\":\"HS256\"}", "{\"aud\":[1]}", -EINVAL },
	{ "{\"alg\":\"HS256\"}", "{\"aud\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}",
	  -EINVAL },
	{ "{\"alg\":\"HS256\"}", "{\"subscribe\":\"news\"}", -EINVAL },
	{ "{\"alg\":\"HS256\"}", "{\"publish\":[{\"a\":1}]}", -EINVAL },
	{ "{\"alg\":\"HS256\"}", "{\"sub\":\"\\ud800\"}", -EINVAL },
	{ "{\"alg\":\"HS256\",\"kid\":5}", "{}", -EINVAL },
};

Test(jwt, refusals)
{
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *why = NULL;
		int r = parse(make(refused[i].hdr, refused[i].claims), &why);

		cr_expect_eq(r, refused[i].err, "case %zu (%s %s): %d %s", i, refused[i].hdr,
			     refused[i].claims, r, why);
		cr_expect_not_null(why, "case %zu has a reason", i);
	}
}

Test(jwt, shape_and_size)
{
	const char *why;
	char *big = malloc(RC_JWT_MAX + 2);

	cr_assert_eq(parse("abc", &why), -EBADMSG);
	cr_assert_eq(parse("a.b", &why), -EBADMSG);
	cr_assert_eq(parse("a.b.c.d", &why), -EBADMSG);
	cr_assert_eq(parse("..", &why), -EBADMSG);
	/* Padding and the standard alphabet are not base64url. */
	cr_assert_eq(parse("eyJhbGciOiJIUzI1NiJ9.e30=.c2ln", &why), -EBADMSG);
	cr_assert_eq(parse("eyJhbGciOiJIUzI1NiJ9.e30.c2l+", &why), -EBADMSG);
	cr_assert_eq(parse("eyJhbGciOiJIUzI1NiJ9.e30.c2ln", &why), 0, "%s", why);
	memset(big, 'A', RC_JWT_MAX + 1);
	cr_assert_eq(rc_jwt_parse(big, RC_JWT_MAX + 1, &j, &why), -EMSGSIZE);
	free(big);
}

/* Every prefix of a valid token is refused (never half-parsed). */
Test(jwt, every_prefix_refused)
{
	const char *why;
	size_t n = strlen(RFC_TOKEN);

	for (size_t i = 0; i < n; i++) {
		int r = rc_jwt_parse(RFC_TOKEN, i, &j, &why);
		/* A prefix ending inside the signature may still be a valid
		 * shape; it must then carry a shorter signature. */
		cr_assert(r < 0 || j.sig_len < 32, "prefix %zu", i);
	}
}

Test(jwt, base64url)
{
	uint8_t out[8];

	cr_assert_eq(rc_base64url_decode(out, sizeof(out), "Zm9vYg", 6), 4);
	cr_assert(!memcmp(out, "foob", 4));
	cr_assert_eq(rc_base64url_decode(out, sizeof(out), "-_8", 3), 2);
	cr_assert(out[0] == 0xfb && out[1] == 0xff);
	cr_assert_eq(rc_base64url_decode(out, sizeof(out), "Zm9vYh", 6), -EINVAL); /* bits */
	cr_assert_eq(rc_base64url_decode(out, sizeof(out), "Zm9vY", 5), -EINVAL);
	cr_assert_eq(rc_base64url_decode(out, 3, "Zm9vYg", 6), -ENOSPC);
	cr_assert_eq(rc_base64url_decode(out, sizeof(out), "", 0), 0);
}
