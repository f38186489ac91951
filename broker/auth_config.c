/* The access file (INI, read with inih): token keys, claim checks, API
 * keys, the admin key, allowed origins, publish rates and topic rules.
 * Every section and key is documented in deploy/access.ini; errors are
 * printed with file and line, and one bad line makes the whole file
 * refused (at start: no start; on SIGHUP: the running policy stays). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "broker/auth.h"

struct load {
	struct bk_auth *a;
	const char *path;
	unsigned line;
	int errors;
	FILE *f;
	struct bk_jwt_key *key;   /* the [key NAME] section being read */
	struct bk_rule *rule;     /* the [topic PATTERN] section being read */
	char section[128];
};

static const char *const who_names[] = {
	[BK_WHO_ANONYMOUS] = "anonymous", [BK_WHO_AUTHENTICATED] = "authenticated",
	[BK_WHO_TOKEN] = "token", [BK_WHO_NOBODY] = "nobody",
};

/* True when the `auth` setting is the literal "none". */
bool bk_auth_is_none(const char *setting)
{
	return setting && strcasecmp(setting, "none") == 0;
}

static int parse_who(const char *v, uint8_t *out)
{
	for (unsigned i = 0; i < 4; i++)
		if (strcasecmp(v, who_names[i]) == 0) {
			*out = (uint8_t)i;
			return 0;
		}
	return -EINVAL;
}

/* Reads a secret file whole; a trailing newline is not part of it. */
static int read_secret(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	uint8_t buf[4096];
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (!n || n == sizeof(buf))
		return -EINVAL;
	*out = malloc(n);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, buf, n);
	*len = n;
	return 0;
}

static int set_bytes(uint8_t **dst, size_t *len, const char *v)
{
	free(*dst);
	*len = strlen(v);
	*dst = (uint8_t *)strdup(v);
	return *dst ? 0 : -ENOMEM;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = *v ? strdup(v) : NULL;
	return !*v || *dst ? 0 : -ENOMEM;
}

static int parse_secs(const char *v, double max, double *out)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || *end || !isfinite(d) || d < 0 || d > max)
		return -EINVAL;
	*out = d;
	return 0;
}

/* [tokens] */
static const char *tokens_key(struct load *ld, const char *k, const char *v)
{
	struct bk_auth *a = ld->a;
	double d;

	if (!strcmp(k, "audience"))
		return set_str(&a->audience, v) ? "out of memory" : NULL;
	if (!strcmp(k, "issuer"))
		return set_str(&a->issuer, v) ? "out of memory" : NULL;
	if (!strcmp(k, "leeway")) {
		if (parse_secs(v, 3600, &d))
			return "not a number of seconds (0..3600)";
		a->leeway_s = (unsigned)d;
		return NULL;
	}
	if (!strcmp(k, "auth_timeout")) {
		if (parse_secs(v, 600, &d) || d < 0.001)
			return "not a number of seconds (0.001..600)";
		a->auth_timeout_ms = (unsigned)(d * 1000);
		return NULL;
	}
	if (!strcmp(k, "require_exp")) {
		if (!strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1") ||
		    !strcasecmp(v, "true"))
			a->require_exp = true;
		else if (!strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcmp(v, "0") ||
			 !strcasecmp(v, "false"))
			a->require_exp = false;
		else
			return "not a boolean (yes/no)";
		return NULL;
	}
	return "unknown key in [tokens]";
}

/* [key KID] */
static const char *key_key(struct load *ld, const char *k, const char *v)
{
	struct bk_jwt_key *key = ld->key;
	const char *why = NULL;

	if (!strcmp(k, "alg")) {
		key->alg = rc_jwt_alg_from_name(v, strlen(v));
		return key->alg ? NULL : "not HS256, HS384, HS512, RS256 or ES256";
	}
	if (!strcmp(k, "secret"))
		return set_bytes(&key->secret, &key->secret_len, v) ? "out of memory" : NULL;
	if (!strcmp(k, "secret_file")) {
		free(key->secret);
		key->secret = NULL;
		return read_secret(v, &key->secret, &key->secret_len)
			       ? "cannot read the secret file (or it is empty or over 4 KiB)"
			       : NULL;
	}
	if (!strcmp(k, "public_key")) {
		if (!key->alg || key->alg < RC_JWT_RS256)
			return "public_key needs alg = RS256 or ES256 on an earlier line";
		EVP_PKEY_free(key->pkey);
		key->pkey = bk_jwt_load_public(v, key->alg, &why);
		return key->pkey ? NULL : why;
	}
	return "unknown key in [key ...] (alg, secret, secret_file, public_key)";
}

static const char *list_add(char **items, unsigned *n, unsigned max, const char *v)
{
	const char *p = v;

	while (*p) {
		size_t len = strcspn(p, ",");
		const char *q = p;

		while (len && isspace((unsigned char)*q))
			q++, len--;
		while (len && isspace((unsigned char)q[len - 1]))
			len--;
		if (len) {
			if (*n >= max)
				return "too many origins (at most 32)";
			if (!(items[*n] = strndup(q, len)))
				return "out of memory";
			(*n)++;
		}
		p += strcspn(p, ",");
		if (*p)
			p++;
	}
	return NULL;
}

static const char *simple_section(struct load *ld, const char *s, const char *k,
				  const char *v)
{
	struct bk_auth *a = ld->a;
	double d;

	if (!strcmp(s, "tokens"))
		return tokens_key(ld, k, v);
	if (!strcmp(s, "api_keys")) {
		struct bk_api_key *ak;

		if (a->napi_keys >= BK_AUTH_MAX_API_KEYS)
			return "too many API keys (at most 16)";
		if (strlen(v) < 16)
			return "an API key must be at least 16 bytes";
		ak = &a->api_keys[a->napi_keys++];
		if (!(ak->name = strdup(k)) || set_bytes(&ak->key, &ak->len, v))
			return "out of memory";
		return NULL;
	}
	if (!strcmp(s, "admin")) {
		if (strcmp(k, "key"))
			return "unknown key in [admin] (key)";
		if (strlen(v) < 16)
			return "the admin key must be at least 16 bytes";
		return set_bytes(&a->admin_key, &a->admin_key_len, v) ? "out of memory" : NULL;
	}
	if (!strcmp(s, "origins")) {
		if (strcmp(k, "allow"))
			return "unknown key in [origins] (allow)";
		return list_add(a->origins, &a->norigins, BK_AUTH_MAX_ORIGINS, v);
	}
	if (!strcmp(s, "limits")) {
		if (!strcmp(k, "publish_rate")) {
			if (parse_secs(v, 1e9, &d))
				return "not a number of messages per second (0 = unlimited)";
			a->publish_rate = d;
			return NULL;
		}
		if (!strcmp(k, "publish_burst")) {
			if (parse_secs(v, 1e9, &d) || d < 1 || d != (double)(unsigned)d)
				return "not a whole number of messages (1..1000000000)";
			a->publish_burst = (unsigned)d;
			return NULL;
		}
		return "unknown key in [limits] (publish_rate, publish_burst)";
	}
	return "unknown section (tokens, key NAME, api_keys, admin, origins, limits, "
	       "topic PATTERN)";
}

/* A pattern: a topic, or a topic prefix ending in '*' ("news.*", "*"). */
static bool pattern_ok(const char *p, size_t len)
{
	const char *star = memchr(p, '*', len);

	if (star && star != p + len - 1)
		return false;
	if (len == 1 && star)
		return true;
	return len && rc_topic_valid((const uint8_t *)p, star ? len - 1 : len);
}

/* Enters a new section: [key NAME] and [topic PATTERN] open an entry. */
static const char *enter_section(struct load *ld, const char *s)
{
	struct bk_auth *a = ld->a;

	snprintf(ld->section, sizeof(ld->section), "%s", s);
	ld->key = NULL;
	ld->rule = NULL;
	if (!strncmp(s, "key ", 4)) {
		if (a->nkeys >= BK_AUTH_MAX_KEYS)
			return "too many keys (at most 16)";
		if (strlen(s + 4) == 0 || strlen(s + 4) > RC_JWT_KID_MAX)
			return "a key's name (its kid) must be 1..64 bytes";
		for (unsigned i = 0; i < a->nkeys; i++)
			if (!strcmp(a->keys[i].kid, s + 4))
				return "a key with this name is already defined";
		ld->key = &a->keys[a->nkeys++];
		snprintf(ld->key->kid, sizeof(ld->key->kid), "%s", s + 4);
	} else if (!strncmp(s, "topic ", 6)) {
		const char *p = s + 6;
		size_t len = strlen(p);

		if (a->nrules >= BK_AUTH_MAX_RULES)
			return "too many topic rules (at most 256)";
		if (!pattern_ok(p, len))
			return "not a topic or a topic prefix ending in '*'";
		ld->rule = &a->rules[a->nrules++];
		ld->rule->prefix = p[len - 1] == '*';
		ld->rule->len = ld->rule->prefix ? len - 1 : len;
		if (!(ld->rule->pattern = strndup(p, ld->rule->len)))
			return "out of memory";
		ld->rule->who[BK_SUBSCRIBE] = a->fallback[BK_SUBSCRIBE];
		ld->rule->who[BK_PUBLISH] = a->fallback[BK_PUBLISH];
	}
	return NULL;
}

static const char *line(struct load *ld, const char *s, const char *k, const char *v)
{
	const char *why;

	if (strcmp(s, ld->section) && (why = enter_section(ld, s)))
		return why;
	if (ld->key)
		return key_key(ld, k, v);
	if (ld->rule) {
		if (strcmp(k, "subscribe") && strcmp(k, "publish"))
			return "unknown key in [topic ...] (subscribe, publish)";
		if (parse_who(v, &ld->rule->who[strcmp(k, "subscribe") ? BK_PUBLISH
								       : BK_SUBSCRIBE]))
			return "not anonymous, authenticated, token or nobody";
		return NULL;
	}
	return simple_section(ld, s, k, v);
}

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	const char *why = line(ld, section, name, value);

	if (why) {
		/* The value may be a secret: never echo it. */
		fprintf(stderr, "ringcast: %s:%u: [%s] %s: %s\n", ld->path, ld->line, section,
			name, why);
		ld->errors++;
	}
	return 1;
}

static char *read_line(char *buf, int num, void *stream)
{
	struct load *ld = stream;

	if (!fgets(buf, num, ld->f))
		return NULL;
	ld->line++;
	return buf;
}

/* Checks what lines alone cannot. */
static void check_whole(struct load *ld)
{
	struct bk_auth *a = ld->a;

	for (unsigned i = 0; i < a->nkeys; i++) {
		struct bk_jwt_key *k = &a->keys[i];
		bool hmac = k->alg && k->alg <= RC_JWT_HS512;
		const char *why = !k->alg ? "no alg"
				: hmac && !k->secret ? "HS* keys need secret or secret_file"
				: !hmac && !k->pkey ? "RS256/ES256 keys need public_key"
				: hmac && k->pkey ? "an HS* key takes a secret, not a public key"
				: NULL;
		if (why) {
			fprintf(stderr, "ringcast: %s: [key %s]: %s\n", ld->path, k->kid, why);
			ld->errors++;
		} else if (hmac && k->secret_len < 32) {
			fprintf(stderr, "ringcast: warning: %s: [key %s]: a secret shorter than 32 "
				"bytes can be brute-forced from one token\n", ld->path, k->kid);
		}
	}
	for (unsigned i = 0; i < a->nrules; i++)
		for (int r = 0; r < BK_NRIGHTS; r++)
			if (a->rules[i].who[r] == BK_WHO_ANONYMOUS)
				a->anonymous_somewhere = true;
	for (int r = 0; r < BK_NRIGHTS; r++)
		if (a->fallback[r] == BK_WHO_ANONYMOUS)
			a->anonymous_somewhere = true;
}

/* Loads an access file (see auth.h). */
struct bk_auth *bk_auth_load(const char *path)
{
	struct load ld = { .path = path };
	struct bk_auth *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return NULL;
	ld.a = a;
	a->leeway_s = 30;
	a->auth_timeout_ms = 5000;
	a->require_exp = true;
	a->fallback[BK_SUBSCRIBE] = BK_WHO_TOKEN;
	a->fallback[BK_PUBLISH] = BK_WHO_TOKEN;
	a->publish_burst = 100;
	if (!(a->file = strdup(path)) || !(ld.f = fopen(path, "re"))) {
		fprintf(stderr, "ringcast: auth: %s: %s\n", path, strerror(errno));
		bk_auth_free(a);
		return NULL;
	}
	ret = ini_parse_stream(read_line, &ld, ini_cb, &ld);
	fclose(ld.f);
	if (ret) {
		fprintf(stderr, "ringcast: %s:%d: syntax error\n", path, ret);
		ld.errors++;
	}
	check_whole(&ld);
	if (ld.errors) {
		bk_auth_free(a);
		return NULL;
	}
	return a;
}

static void wipe_free(uint8_t *p, size_t len)
{
	if (p)
		OPENSSL_cleanse(p, len);
	free(p);
}

void bk_auth_free(struct bk_auth *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->nkeys; i++) {
		wipe_free(a->keys[i].secret, a->keys[i].secret_len);
		EVP_PKEY_free(a->keys[i].pkey);
	}
	for (unsigned i = 0; i < a->napi_keys; i++) {
		free(a->api_keys[i].name);
		wipe_free(a->api_keys[i].key, a->api_keys[i].len);
	}
	wipe_free(a->admin_key, a->admin_key_len);
	for (unsigned i = 0; i < a->norigins; i++)
		free(a->origins[i]);
	for (unsigned i = 0; i < a->nrules; i++)
		free(a->rules[i].pattern);
	free(a->audience);
	free(a->issuer);
	free(a->file);
	free(a);
}
