/* Tests for proto/base64.c: RFC 4648 section 10 vectors, strict decoding,
 * -ENOSPC for every short buffer, random round trips checked against
 * OpenSSL, and decoding input that ends right at a guard page. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/base64.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Criterion runs each parameter in a fresh process, so parameters are
 * indices into these tables rather than pointers. */
static const struct {
	const char *plain, *enc;
} rfc[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static size_t idx[64];

static size_t *indices(size_t n)
{
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	return idx;
}

TestSuite(base64);

ParameterizedTestParameters(base64, rfc4648_vectors)
{
	return cr_make_param_array(size_t, indices(ARRAY_SIZE(rfc)),
				   ARRAY_SIZE(rfc));
}

ParameterizedTest(size_t *i, base64, rfc4648_vectors)
{
	const char *plain = rfc[*i].plain, *enc = rfc[*i].enc;
	size_t plen = strlen(plain), elen = strlen(enc);
	char out[16];
	uint8_t dec[16];

	cr_assert_eq(rc_base64_encoded_len(plen), elen);
	cr_assert_geq(rc_base64_decoded_max(elen), plen);
	cr_assert_eq(rc_base64_encode(out, sizeof(out), (const uint8_t *)plain,
				      plen), (ssize_t)elen);
	cr_assert_arr_eq(out, enc, elen);
	cr_assert_eq(rc_base64_decode(dec, sizeof(dec), enc, elen),
		     (ssize_t)plen);
	cr_assert_arr_eq(dec, plain, plen);
}

/* Every capacity below the needed one fails and writes nothing past cap. */
ParameterizedTestParameters(base64, enospc_every_short_cap)
{
	return cr_make_param_array(size_t, indices(ARRAY_SIZE(rfc)),
				   ARRAY_SIZE(rfc));
}

ParameterizedTest(size_t *i, base64, enospc_every_short_cap)
{
	const char *plain = rfc[*i].plain, *enc = rfc[*i].enc;
	size_t plen = strlen(plain), elen = strlen(enc);
	char out[32];
	uint8_t dec[32];

	for (size_t cap = 0; cap < elen; cap++) {
		memset(out, 0x55, sizeof(out));
		cr_assert_eq(rc_base64_encode(out, cap, (const uint8_t *)plain,
					      plen), -ENOSPC);
		for (size_t k = 0; k < sizeof(out); k++)
			cr_assert_eq((uint8_t)out[k], 0x55, "cap %zu", cap);
	}
	for (size_t cap = 0; cap < plen; cap++) {
		memset(dec, 0x55, sizeof(dec));
		cr_assert_eq(rc_base64_decode(dec, cap, enc, elen), -ENOSPC);
		for (size_t k = cap; k < sizeof(dec); k++)
			cr_assert_eq(dec[k], 0x55, "cap %zu", cap);
	}
}

static const char *const bad[] = {
	"Zg=",      /* length not a multiple of 4 */
	"Zg",
	"Z",
	"Z===",     /* three pads */
	"====",
	"Zh==",     /* bits under the padding not zero */
	"Zm9=",
	"Zm 8",     /* space */
	"Zm8=Zm8=", /* padding in the middle */
	"Zg==Zg==",
	"Zm9v\n",
	"Zm9v\r\n\r\n",
	"-_==",     /* URL-safe alphabet */
	"Zm=v",
	"Z=9v",
	"=m9v",
	"Zm9\x80",
	"Zm9\xff",
	"Zm9v*A==",
};

ParameterizedTestParameters(base64, decode_rejects)
{
	return cr_make_param_array(size_t, indices(ARRAY_SIZE(bad)),
				   ARRAY_SIZE(bad));
}

ParameterizedTest(size_t *i, base64, decode_rejects)
{
	uint8_t dec[64];

	cr_assert_eq(rc_base64_decode(dec, sizeof(dec), bad[*i], strlen(bad[*i])),
		     -EINVAL, "accepted \"%s\"", bad[*i]);
}

/* Random lengths and bytes: the encoding matches OpenSSL's byte for byte,
 * every character is in the alphabet, and decoding gives the input back. */
Test(base64, random_round_trips)
{
	static uint8_t in[1024], dec[1030];
	static char enc[1400], ref[1400];

	srand(4648);
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(round < 300 ? round : rand() % 1024);
		ssize_t n;

		for (size_t k = 0; k < len; k++)
			in[k] = (uint8_t)rand();
		n = rc_base64_encode(enc, sizeof(enc), in, len);
		cr_assert_eq(n, (ssize_t)rc_base64_encoded_len(len));
		cr_assert_eq(EVP_EncodeBlock((unsigned char *)ref, in, (int)len),
			     (int)n);
		cr_assert_arr_eq(enc, ref, (size_t)n, "len %zu", len);
		cr_assert_eq(rc_base64_decode(dec, len, enc, (size_t)n),
			     (ssize_t)len);
		cr_assert_arr_eq(dec, in, len);
		if (n > 0) {
			/* Any single corrupted character is noticed or
			 * decodes to different bytes; a non-alphabet byte is
			 * always refused. */
			size_t at = (size_t)rand() % (size_t)n;
			char keep = enc[at];

			enc[at] = '.';
			cr_assert_eq(rc_base64_decode(dec, sizeof(dec), enc,
						      (size_t)n),
				     -EINVAL);
			enc[at] = keep;
		}
	}
}

/* Input that ends at the last byte before a PROT_NONE page: any read past
 * the end faults. */
Test(base64, decode_at_guard_page)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t dec[16];

	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
	for (size_t i = 0; i < ARRAY_SIZE(rfc); i++) {
		size_t elen = strlen(rfc[i].enc);
		char *at = (char *)map + pg - elen;

		memcpy(at, rfc[i].enc, elen);
		cr_assert_eq(rc_base64_decode(dec, sizeof(dec), at, elen),
			     (ssize_t)strlen(rfc[i].plain));
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		size_t blen = strlen(bad[i]);
		char *at = (char *)map + pg - blen;

		memcpy(at, bad[i], blen);
		cr_assert_eq(rc_base64_decode(dec, sizeof(dec), at, blen), -EINVAL);
	}
	munmap(map, (size_t)pg * 2);
}
