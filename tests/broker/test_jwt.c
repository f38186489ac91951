/* Tests for broker/jwt.c: the RFC 7515 A.1 token verifies with its JWK
 * secret while it is valid, and the key pinning refuses what it must. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "proto/base64.h"

#define RFC_TOKEN                                                                    \
	"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"                                       \
	".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" \
	".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define RFC_KEY "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"

static struct bk_auth a;
static struct rc_jwt j;
static uint8_t secret[64];

static void setup(void)
{
	ssize_t n = rc_base64url_decode(secret, sizeof(secret), RFC_KEY, strlen(RFC_KEY));

	cr_assert_eq(n, 64);
	memset(&a, 0, sizeof(a));
	a.nkeys = 1;
	a.keys[0].alg = RC_JWT_HS256;
	a.keys[0].secret = secret;
	a.keys[0].secret_len = 64;
	a.require_exp = true;
}

TestSuite(bk_jwt, .init = setup);

static int verify(const char *tok, int64_t now, const char **why)
{
	return bk_jwt_verify(&a, tok, strlen(tok), now, &j, why);
}

Test(bk_jwt, rfc_vector)
{
	const char *why = NULL;

	cr_assert_eq(verify(RFC_TOKEN, 1300819379, &why), 0, "%s", why);
	cr_assert_eq(verify(RFC_TOKEN, 1300819380, &why), -EKEYEXPIRED);
	a.leeway_s = 10;
	cr_assert_eq(verify(RFC_TOKEN, 1300819385, &why), 0, "%s", why);
	a.issuer = "joe";
	cr_assert_eq(verify(RFC_TOKEN, 1300819300, &why), 0, "%s", why);
	a.issuer = "jane";
	cr_assert_eq(verify(RFC_TOKEN, 1300819300, &why), -EACCES);
	a.issuer = NULL;
	a.audience = "x";
	cr_assert_eq(verify(RFC_TOKEN, 1300819300, &why), -EACCES);
}

Test(bk_jwt, key_pinning)
{
	const char *why = NULL;
	char bad[sizeof(RFC_TOKEN)];

	/* The key's alg is the only one it accepts. */
	a.keys[0].alg = RC_JWT_HS384;
	cr_assert_eq(verify(RFC_TOKEN, 1300819300, &why), -ENOKEY);
	a.keys[0].alg = RC_JWT_HS256;
	/* A kid in the token must name a key (the RFC token has none). */
	strcpy(a.keys[0].kid, "k1");
	cr_assert_eq(verify(RFC_TOKEN, 1300819300, &why), 0, "%s", why);
	/* One flipped signature bit. */
	strcpy(bad, RFC_TOKEN);
	bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
	cr_assert_eq(verify(bad, 1300819300, &why), -EKEYREJECTED);
	a.nkeys = 0;
	cr_assert_eq(verify(RFC_TOKEN, 1300819300, &why), -ENOKEY);
}
