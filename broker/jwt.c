/* Connection-token verification: signatures with OpenSSL EVP over the pure
 * parser in proto/jwt.c, then the time and audience claims.
 *
 * Why not libjwt: Debian bookworm ships libjwt 1.10.2 (2019).  Its
 * jwt_decode() takes one key and trusts the token's own "alg" to decide how
 * to use it, so an HS256 token checked with an RSA public key would be
 * HMAC'd with the PEM text unless the caller re-checks; it has no hook to
 * pick a key by "kid" (jwt_decode_2 came in 1.13) and no claim validation
 * (jwt_valid_* came in 1.12); it allocates through jansson on every parse
 * with no size bound; and it needed a fix for a timing leak in its HMAC
 * compare (CVE-2024-25189).  OpenSSL is already linked, EVP covers every
 * algorithm we accept, and pinning the algorithm to the key is then a
 * comparison we make ourselves before any crypto runs. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "broker/auth.h"

static const EVP_MD *alg_md(enum rc_jwt_alg alg)
{
	switch (alg) {
	case RC_JWT_HS384: return EVP_sha384();
	case RC_JWT_HS512: return EVP_sha512();
	default: return EVP_sha256();
	}
}

static bool alg_is_hmac(enum rc_jwt_alg alg)
{
	return alg == RC_JWT_HS256 || alg == RC_JWT_HS384 || alg == RC_JWT_HS512;
}

/* Loads a PEM public key and checks it fits alg (see auth.h). */
EVP_PKEY *bk_jwt_load_public(const char *path, enum rc_jwt_alg alg, const char **why)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k;

	if (!f) {
		*why = "cannot open the public key file";
		return NULL;
	}
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (!k) {
		*why = "not a PEM public key (-----BEGIN PUBLIC KEY-----)";
		return NULL;
	}
	if (alg == RC_JWT_RS256 &&
	    (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k) < 2048)) {
		*why = "RS256 needs an RSA public key of at least 2048 bits";
		goto err_free;
	}
	if (alg == RC_JWT_ES256) {
		char group[64] = "";

		if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
		    !EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
			*why = "ES256 needs an EC public key on P-256";
			goto err_free;
		}
	}
	return k;
err_free:
	EVP_PKEY_free(k);
	return NULL;
}

static bool verify_hmac(const struct bk_jwt_key *k, const struct rc_jwt *j, const char *token)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;

	if (!HMAC(alg_md(k->alg), k->secret, (int)k->secret_len, (const uint8_t *)token,
		  j->signed_len, mac, &maclen))
		return false;
	return maclen == j->sig_len && CRYPTO_memcmp(mac, j->sig, maclen) == 0;
}

/* JWS ES256 signatures are R || S, 32 bytes each; OpenSSL wants DER. */
static int es256_der(const struct rc_jwt *j, uint8_t *der, size_t cap)
{
	ECDSA_SIG *s;
	BIGNUM *r, *sv;
	uint8_t *p = der;
	int n;

	if (j->sig_len != 64 || cap < 80)
		return -1;
	s = ECDSA_SIG_new();
	r = BN_bin2bn(j->sig, 32, NULL);
	sv = BN_bin2bn(j->sig + 32, 32, NULL);
	if (!s || !r || !sv || !ECDSA_SIG_set0(s, r, sv)) {
		BN_free(r);
		BN_free(sv);
		ECDSA_SIG_free(s);
		return -1;
	}
	n = i2d_ECDSA_SIG(s, &p);
	ECDSA_SIG_free(s);
	return n;
}

static bool verify_pkey(const struct bk_jwt_key *k, const struct rc_jwt *j, const char *token)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[80];
	const uint8_t *sig = j->sig;
	size_t siglen = j->sig_len;
	bool ok = false;

	if (!ctx)
		return false;
	if (k->alg == RC_JWT_ES256) {
		int n = es256_der(j, der, sizeof(der));
		if (n <= 0)
			goto out;
		sig = der;
		siglen = (size_t)n;
	}
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	     EVP_DigestVerify(ctx, sig, siglen, (const uint8_t *)token, j->signed_len) == 1;
out:
	EVP_MD_CTX_free(ctx);
	return ok;
}

static bool verify_with(const struct bk_jwt_key *k, const struct rc_jwt *j, const char *token)
{
	return alg_is_hmac(k->alg) ? verify_hmac(k, j, token) : verify_pkey(k, j, token);
}

/* The key named by kid, or with no kid every key of the token's alg; the
 * algorithm must be the key's own (no alg none, no HS-with-an-RSA-key). */
static int check_signature(const struct bk_auth *a, const struct rc_jwt *j, const char *token,
			   const char **why)
{
	bool tried = false;

	for (unsigned i = 0; i < a->nkeys; i++) {
		const struct bk_jwt_key *k = &a->keys[i];

		if (j->kid.p && (strlen(k->kid) != j->kid.len ||
				 memcmp(k->kid, j->kid.p, j->kid.len) != 0))
			continue;
		if (k->alg != j->alg) {
			if (j->kid.p) {
				*why = "the token's alg is not the algorithm of the key its kid names";
				return -ENOKEY;
			}
			continue;
		}
		tried = true;
		if (verify_with(k, j, token))
			return 0;
		if (j->kid.p)
			break;
	}
	if (!tried) {
		*why = j->kid.p ? "no key has this kid" : "no key is configured for this alg";
		return -ENOKEY;
	}
	*why = "bad signature";
	return -EKEYREJECTED;
}

static bool aud_ok(const struct bk_auth *a, const struct rc_jwt *j)
{
	size_t n;

	if (!a->audience)
		return true;
	n = strlen(a->audience);
	for (unsigned i = 0; i < j->naud; i++)
		if (j->aud[i].len == n && memcmp(j->aud[i].p, a->audience, n) == 0)
			return true;
	return false;
}

static int check_claims(const struct bk_auth *a, const struct rc_jwt *j, int64_t now,
			const char **why)
{
	int64_t lw = a->leeway_s;

	if (!j->has_exp && a->require_exp) {
		*why = "the token has no exp";
		return -EACCES;
	}
	if (j->has_exp && now >= j->exp + lw) {
		*why = "the token has expired";
		return -EKEYEXPIRED;
	}
	if (j->has_nbf && now + lw < j->nbf) {
		*why = "the token is not valid yet (nbf)";
		return -EAGAIN;
	}
	if (j->has_iat && now + lw < j->iat) {
		*why = "the token was issued in the future (iat)";
		return -EAGAIN;
	}
	if (!aud_ok(a, j)) {
		*why = "the token is not for this audience (aud)";
		return -EACCES;
	}
	if (a->issuer && (!j->iss.p || j->iss.len != strlen(a->issuer) ||
			  memcmp(j->iss.p, a->issuer, j->iss.len) != 0)) {
		*why = "the token is from another issuer (iss)";
		return -EACCES;
	}
	return 0;
}

/* Verifies a connection token (see auth.h). */
int bk_jwt_verify(const struct bk_auth *a, const char *token, size_t len, int64_t now_s,
		  struct rc_jwt *out, const char **why)
{
	int err = rc_jwt_parse(token, len, out, why);

	if (err < 0)
		return err;
	if ((err = check_signature(a, out, token, why)) < 0)
		return err;
	return check_claims(a, out, now_s, why);
}
