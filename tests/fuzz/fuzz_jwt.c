/* libFuzzer harness for proto/jwt.c: any input is parsed as a compact JWT.
 * On success every span must lie inside out->text and be valid UTF-8, the
 * alg must be one we implement and the signature inside its buffer; on
 * failure a static reason must be set.  The input also goes through
 * rc_base64url_decode, which must never write past its capacity. */
#include <stdlib.h>
#include <string.h>

#include "proto/base64.h"
#include "proto/jwt.h"
#include "proto/utf8.h"

static void check_span(const struct rc_jwt *j, struct rc_span s)
{
	if (!s.p)
		return;
	if (s.p < j->text || s.p + s.len > j->text + j->text_len)
		abort();
	if (!rc_utf8_valid((const uint8_t *)s.p, s.len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rc_jwt j;
	const char *why = NULL;
	uint8_t *dec;
	int r = rc_jwt_parse((const char *)data, size, &j, &why);

	if (r == 0) {
		if (why || j.alg < RC_JWT_HS256 || j.alg > RC_JWT_ES256)
			abort();
		if (!j.sig_len || j.sig_len > RC_JWT_SIG_MAX || j.signed_len >= size ||
		    j.text_len > sizeof(j.text))
			abort();
		check_span(&j, j.kid);
		check_span(&j, j.sub);
		check_span(&j, j.iss);
		if (j.naud > RC_JWT_MAX_AUD)
			abort();
		for (unsigned i = 0; i < j.naud; i++)
			check_span(&j, j.aud[i]);
		for (int g = 0; g < RC_JWT_NGRANTS; g++) {
			if (j.ngrants[g] > RC_JWT_MAX_GRANTS)
				abort();
			for (unsigned i = 0; i < j.ngrants[g]; i++)
				check_span(&j, j.grants[g][i]);
		}
	} else if (r > 0 || !why) {
		abort();
	}
	/* Exactly the decoded size: an overrun is caught by ASan. */
	size_t cap = size / 4 * 3 + (size % 4 ? size % 4 - 1 : 0);
	dec = malloc(cap ? cap : 1);
	(void)rc_base64url_decode(dec, cap, (const char *)data, size);
	free(dec);
	return 0;
}
