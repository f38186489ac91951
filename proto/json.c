/* JSON control protocol: the command parser and strict validator.  See
 * json.h for the contract; the server-frame writers are in json_write.c.
 *
 * Parsing is two passes over the frame: scan() checks strict RFC 8259
 * grammar and UTF-8 and counts values, then jsmn tokenizes the (now known
 * good) text into a stack array of exactly that many tokens, and the
 * top-level members are picked out of the tokens.  jsmn is never fed text
 * that scan() refused, so its leniency cannot leak through. */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS /* closing a container walks parents, not all tokens */
#include <jsmn.h>

#include "proto/json.h"
#include "proto/json_internal.h"
#include "proto/utf8.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "proto/utf8.h"

/* ---- UTF-8 and strings ------------------------------------------------ */

/* Length of the valid UTF-8 sequence starting a non-ASCII byte at p[0..n),
 * or 0: no overlongs, surrogates or code points past U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Value of four hex digits at p, or -1 (json_internal.h). */
int32_t rc__json_hex4(const uint8_t *p)
{
	int32_t v = 0;

	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Byte iterator over the unescaped value of a scanned JSON string body
 * s[0..end) (without quotes).  A lone surrogate escape is encoded as its
 * 3-byte form (so comparisons stay exact) and flagged in `lone`. */
struct str_iter {
	const uint8_t *s;
	size_t i, end;
	uint8_t u[4], n, k;
	bool lone;
};

static void str_iter_init(struct str_iter *it, const uint8_t *s, size_t end)
{
	*it = (struct str_iter){ .s = s, .end = end };
}

/* Decodes the next character into it->u; input is known to be valid. */
static void str_iter_fill(struct str_iter *it)
{
	const uint8_t *s = it->s;
	uint32_t cp;

	it->k = 0;
	it->n = 1;
	if (s[it->i] != '\\') {
		it->u[0] = s[it->i++];
		return;
	}
	it->i += 2;
	switch (s[it->i - 1]) {
	case 'b': it->u[0] = '\b'; return;
	case 'f': it->u[0] = '\f'; return;
	case 'n': it->u[0] = '\n'; return;
	case 'r': it->u[0] = '\r'; return;
	case 't': it->u[0] = '\t'; return;
	case 'u': break;
	default: it->u[0] = s[it->i - 1]; return; /* " \ / */
	}
	cp = (uint32_t)rc__json_hex4(s + it->i);
	it->i += 4;
	if (cp >= 0xd800 && cp <= 0xdbff && it->end - it->i >= 6 &&
	    s[it->i] == '\\' && s[it->i + 1] == 'u') {
		uint32_t lo = (uint32_t)rc__json_hex4(s + it->i + 2);

		if (lo >= 0xdc00 && lo <= 0xdfff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			it->i += 6;
		}
	}
	if (cp >= 0xd800 && cp <= 0xdfff)
		it->lone = true;
	it->n = (uint8_t)rc_utf8_encode(cp, it->u);
}

/* Next unescaped byte, or -1 at the end. */
static int str_iter_next(struct str_iter *it)
{
	if (it->k == it->n) {
		if (it->i >= it->end)
			return -1;
		str_iter_fill(it);
	}
	return it->u[it->k++];
}

/* Compares two JSON string bodies by their unescaped values. */
static bool str_equal(const uint8_t *a, size_t alen, const uint8_t *b,
		      size_t blen)
{
	struct str_iter x, y;
	int c;

	if (!memchr(a, '\\', alen) && !memchr(b, '\\', blen))
		return alen == blen && memcmp(a, b, alen) == 0;
	str_iter_init(&x, a, alen);
	str_iter_init(&y, b, blen);
	do {
		c = str_iter_next(&x);
		if (c != str_iter_next(&y))
			return false;
	} while (c >= 0);
	return true;
}

/* Unescapes a scanned JSON string body (see json_internal.h). */
ssize_t rc__json_unescape(const uint8_t *s, size_t len, char *out, size_t cap,
			  bool *lone)
{
	struct str_iter it;
	size_t n = 0;
	int c;

	str_iter_init(&it, s, len);
	while ((c = str_iter_next(&it)) >= 0) {
		if (n == cap)
			return -ENOSPC;
		out[n++] = (char)c;
	}
	*lone = it.lone;
	return (ssize_t)n;
}

/* ---- strict validation ------------------------------------------------ */

static size_t skip_ws(const uint8_t *p, size_t len, size_t i)
{
	while (i < len && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' ||
			   p[i] == '\t'))
		i++;
	return i;
}

/* Scans a string whose opening quote is at p[i]; returns the index after the
 * closing quote, or 0 if the string is malformed or unterminated. */
static size_t scan_string(const uint8_t *p, size_t len, size_t i)
{
	size_t n;

	for (i++; i < len;) {
		uint8_t c = p[i];

		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c < 0x80 && c != '\\') {
			i++;
			continue;
		}
		if (c >= 0x80) {
			n = utf8_seq(p + i, len - i);
			if (!n)
				return 0;
			i += n;
			continue;
		}
		if (++i >= len)
			return 0;
		if (p[i] == 'u') {
			if (len - i < 5 || rc__json_hex4(p + i + 1) < 0)
				return 0;
			i += 5;
		} else if (p[i] && strchr("\"\\/bfnrt", p[i])) {
			i++;
		} else {
			return 0;
		}
	}
	return 0;
}

static size_t scan_digits(const uint8_t *p, size_t len, size_t i)
{
	while (i < len && p[i] >= '0' && p[i] <= '9')
		i++;
	return i;
}

/* Scans -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at p[i]; returns the
 * index after it, or 0.  What may follow is checked by the caller. */
static size_t scan_number(const uint8_t *p, size_t len, size_t i)
{
	size_t j;

	if (p[i] == '-')
		i++;
	if (i >= len || p[i] < '0' || p[i] > '9')
		return 0;
	i = p[i] == '0' ? i + 1 : scan_digits(p, len, i);
	if (i < len && p[i] == '.') {
		j = scan_digits(p, len, i + 1);
		if (j == i + 1)
			return 0;
		i = j;
	}
	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < len && (p[i] == '+' || p[i] == '-'))
			i++;
		j = scan_digits(p, len, i);
		if (j == i)
			return 0;
		i = j;
	}
	return i;
}

/* Scans a scalar (string, number, literal) at p[i]; returns the index after
 * it, or 0. */
static size_t scan_scalar(const uint8_t *p, size_t len, size_t i)
{
	static const char *const lit[] = { "true", "false", "null" };

	if (p[i] == '"')
		return scan_string(p, len, i);
	if (p[i] == '-' || (p[i] >= '0' && p[i] <= '9'))
		return scan_number(p, len, i);
	for (size_t k = 0; k < 3; k++) {
		size_t n = strlen(lit[k]);

		if (len - i >= n && memcmp(p + i, lit[k], n) == 0)
			return i + n;
	}
	return 0;
}

/* Validates p[0..len) as one JSON value with optional surrounding
 * whitespace.  A flat state machine with an explicit stack of one bit per
 * open container (1: object), so depth costs no recursion.  Counts values
 * and keys (what jsmn makes tokens of) into *ntok.  Returns 0, -EBADMSG,
 * or -E2BIG past max_tok tokens or RC_JSON_MAX_DEPTH levels. */
static int scan(const uint8_t *p, size_t len, size_t max_tok, size_t *ntok)
{
	uint64_t objbit[RC_JSON_MAX_DEPTH / 64] = { 0 };
	size_t depth = 0, n = 0, i = skip_ws(p, len, 0);
	bool obj;

value:
	if (i >= len)
		return -EBADMSG;
	if (++n > max_tok)
		return -E2BIG;
	if (p[i] != '{' && p[i] != '[') {
		i = scan_scalar(p, len, i);
		if (!i)
			return -EBADMSG;
		goto after;
	}
	if (depth == RC_JSON_MAX_DEPTH)
		return -E2BIG;
	obj = p[i] == '{';
	if (obj)
		objbit[depth / 64] |= 1ull << (depth % 64);
	else
		objbit[depth / 64] &= ~(1ull << (depth % 64));
	depth++;
	i = skip_ws(p, len, i + 1);
	if (i < len && p[i] == (obj ? '}' : ']')) {
		depth--;
		i++;
		goto after;
	}
	if (!obj)
		goto value;
key:
	if (i >= len || p[i] != '"')
		return -EBADMSG;
	if (++n > max_tok)
		return -E2BIG;
	i = scan_string(p, len, i);
	if (!i)
		return -EBADMSG;
	i = skip_ws(p, len, i);
	if (i >= len || p[i] != ':')
		return -EBADMSG;
	i = skip_ws(p, len, i + 1);
	goto value;
after:
	i = skip_ws(p, len, i);
	if (depth == 0) {
		*ntok = n;
		return i == len ? 0 : -EBADMSG;
	}
	if (i >= len)
		return -EBADMSG;
	obj = objbit[(depth - 1) / 64] >> ((depth - 1) % 64) & 1;
	if (p[i] == ',') {
		i = skip_ws(p, len, i + 1);
		if (obj)
			goto key;
		goto value;
	}
	if (p[i] != (obj ? '}' : ']'))
		return -EBADMSG;
	depth--;
	i++;
	goto after;
}

/* Strict single-value check; see json.h. */
bool rc_json_valid(const void *p, size_t len)
{
	size_t n;

	return scan(p, len, SIZE_MAX, &n) == 0;
}

/* Picks the envelope form; see json.h. */
enum rc_json_data rc_json_data_kind(const void *p, size_t len, bool text)
{
	if (!text)
		return RC_JSON_DATA_BINARY;
	if (rc_json_valid(p, len))
		return RC_JSON_DATA_JSON;
	return rc_utf8_valid(p, len) ? RC_JSON_DATA_TEXT : RC_JSON_DATA_BINARY;
}

/* ---- topics ----------------------------------------------------------- */

/* Unicode White_Space and control code points (see json.h). */
static bool topic_cp_bad(uint32_t cp)
{
	if (cp <= 0x20 || (cp >= 0x7f && cp <= 0xa0))
		return true;
	return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
	       cp == 0x205f || cp == 0x3000;
}

/* Topic rule; see json.h. */
bool rc_topic_valid(const uint8_t *p, size_t len)
{
	size_t i = 0, n;
	uint32_t cp;

	if (len == 0 || len > RC_TOPIC_MAX)
		return false;
	while (i < len) {
		if (p[i] < 0x80) {
			if (topic_cp_bad(p[i++]))
				return false;
			continue;
		}
		n = utf8_seq(p + i, len - i);
		if (!n)
			return false;
		cp = p[i] & (0x7f >> n);
		for (size_t k = 1; k < n; k++)
			cp = cp << 6 | (p[i + k] & 0x3f);
		if (topic_cp_bad(cp))
			return false;
		i += n;
	}
	return true;
}

/* ---- command parsing -------------------------------------------------- */

enum { K_OP, K_ID, K_TOPIC, K_DATA, K_FROM, K_TOKEN, K_COUNT };
static const char *const key_names[K_COUNT] = { "op", "id", "topic", "data",
						 "from", "token" };

static int fail(struct rc_cmd *cmd, int err, const char *code,
		const char *reason)
{
	cmd->op = RC_CMD_NONE;
	cmd->topic_len = 0;
	cmd->topic[0] = '\0';
	cmd->err_code = code;
	cmd->err_reason = reason;
	return err;
}

static bool tok_is(const uint8_t *buf, const jsmntok_t *t, const char *lit)
{
	return t->type == JSMN_STRING &&
	       str_equal(buf + t->start, (size_t)(t->end - t->start),
			 (const uint8_t *)lit, strlen(lit));
}

/* The raw text of a value token; strings keep their quotes. */
static struct rc_span tok_raw(const uint8_t *buf, const jsmntok_t *t)
{
	int q = t->type == JSMN_STRING;

	return (struct rc_span){ (const char *)buf + t->start - q,
				 (size_t)(t->end - t->start + 2 * q) };
}

/* Index of the token after the subtree rooted at tokens[i]. */
int rc__json_tok_skip(const jsmntok_t *t, int i)
{
	int pending = 1;

	while (pending > 0) {
		pending += t[i].size - 1;
		i++;
	}
	return i;
}

/* Unescapes and validates the topic into cmd->topic; returns a reason on
 * failure, NULL on success. */
static const char *parse_topic(const uint8_t *buf, const jsmntok_t *t,
			       struct rc_cmd *cmd)
{
	struct str_iter it;
	size_t n = 0;
	int c;

	if (t->type != JSMN_STRING)
		return "topic must be a string";
	str_iter_init(&it, buf + t->start, (size_t)(t->end - t->start));
	while ((c = str_iter_next(&it)) >= 0) {
		if (n == RC_TOPIC_MAX)
			return "topic is longer than 255 bytes";
		cmd->topic[n++] = (char)c;
	}
	cmd->topic[n] = '\0';
	if (n == 0)
		return "topic is empty";
	if (it.lone)
		return "topic has an unpaired surrogate escape";
	if (!rc_topic_valid((const uint8_t *)cmd->topic, n))
		return "topic has a space or control character";
	cmd->topic_len = n;
	return NULL;
}

/* Parses a non-negative integer token into *v; returns a reason or NULL. */
static const char *parse_u64(const uint8_t *buf, const jsmntok_t *t,
			     uint64_t *v)
{
	uint64_t x = 0;

	if (t->type != JSMN_PRIMITIVE || buf[t->start] == '-' ||
	    buf[t->start] > '9')
		return "from must be a non-negative integer";
	for (int i = t->start; i < t->end; i++) {
		unsigned d = buf[i] - '0';

		if (d > 9)
			return "from must be a non-negative integer";
		if (x > (UINT64_MAX - d) / 10)
			return "from is out of range";
		x = x * 10 + d;
	}
	*v = x;
	return NULL;
}

/* Records where each known key's value is; keys are compared by their
 * unescaped values, and any repeated key (known or not) is a duplicate.
 * Returns true when there was a duplicate; *id_dup tells whether "id" was
 * one of them. */
static bool find_keys(const uint8_t *buf, const jsmntok_t *t, int val[K_COUNT],
		      bool *id_dup)
{
	int keys[RC_CMD_MAX_KEYS];
	int nkeys = t[0].size, k = 1;
	bool dup = false;

	for (int m = 0; m < nkeys; m++) {
		const jsmntok_t *key = &t[k];

		keys[m] = k;
		for (int j = 0; j < m; j++) {
			const jsmntok_t *o = &t[keys[j]];

			if (str_equal(buf + o->start, (size_t)(o->end - o->start),
				      buf + key->start,
				      (size_t)(key->end - key->start)))
				dup = true;
		}
		for (int f = 0; f < K_COUNT; f++) {
			if (!tok_is(buf, key, key_names[f]))
				continue;
			if (val[f] >= 0 && f == K_ID)
				*id_dup = true;
			if (val[f] < 0)
				val[f] = k + 1;
		}
		k = rc__json_tok_skip(t, k + 1);
	}
	return dup;
}

/* Sets cmd->id from the id value when it is usable; returns a reason when it
 * is not. */
static const char *parse_id(const uint8_t *buf, const jsmntok_t *t,
			    struct rc_cmd *cmd)
{
	struct rc_span raw = tok_raw(buf, t);

	if (t->type != JSMN_STRING &&
	    !(t->type == JSMN_PRIMITIVE &&
	      (buf[t->start] == '-' || buf[t->start] <= '9')))
		return "id must be a number or a string";
	if (raw.len > RC_CMD_ID_MAX)
		return "id is longer than 64 bytes";
	cmd->id = raw;
	cmd->has_id = true;
	return NULL;
}

static enum rc_cmd_op parse_op(const uint8_t *buf, const jsmntok_t *t)
{
	static const char *const names[] = { "sub", "unsub", "pub", "ping",
					     "auth", "refresh", "presence",
					     "presence_stats" };
	static const enum rc_cmd_op ops[] = { RC_CMD_SUB, RC_CMD_UNSUB,
					      RC_CMD_PUB, RC_CMD_PING,
					      RC_CMD_AUTH, RC_CMD_REFRESH,
					      RC_CMD_PRESENCE,
					      RC_CMD_PRESENCE_STATS };

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (tok_is(buf, t, names[i]))
			return ops[i];
	return RC_CMD_NONE;
}

/* Parses one command frame; see json.h for the error table.  The token
 * array lives on the stack (RC_CMD_MAX_TOKENS * 20 bytes). */
int rc_cmd_parse(const uint8_t *buf, size_t len, struct rc_cmd *cmd)
{
	jsmntok_t tok[RC_CMD_MAX_TOKENS];
	int val[K_COUNT] = { -1, -1, -1, -1, -1, -1 };
	const char *why = NULL, *id_why = NULL;
	bool id_dup = false, dup;
	jsmn_parser jp;
	size_t ntok;
	int r;

	memset(cmd, 0, sizeof(*cmd));
	if (len >= INT_MAX)
		return fail(cmd, -E2BIG, "too_complex", "frame too large");
	r = scan(buf, len, RC_CMD_MAX_TOKENS, &ntok);
	if (r == -E2BIG)
		return fail(cmd, r, "too_complex",
			    "too many JSON values or nested too deep");
	if (r < 0)
		return fail(cmd, r, "bad_json", "not valid JSON");
	if (buf[skip_ws(buf, len, 0)] != '{')
		return fail(cmd, -EBADMSG, "bad_json",
			    "a command must be a JSON object");
	jsmn_init(&jp);
	r = jsmn_parse(&jp, (const char *)buf, len, tok, RC_CMD_MAX_TOKENS);
	if (r < 0 || (size_t)r != ntok)
		return fail(cmd, -EBADMSG, "bad_json", "tokenizer disagreed");

	if (tok[0].size > RC_CMD_MAX_KEYS)
		return fail(cmd, -E2BIG, "too_complex", "too many keys");
	dup = find_keys(buf, tok, val, &id_dup);
	if (val[K_ID] >= 0 && !id_dup)
		id_why = parse_id(buf, &tok[val[K_ID]], cmd);
	if (dup)
		return fail(cmd, -EBADMSG, "bad_json", "duplicate key");
	if (id_why)
		return fail(cmd, -EINVAL, "bad_field", id_why);
	if (val[K_OP] < 0)
		return fail(cmd, -EINVAL, "missing_field", "missing \"op\"");
	cmd->op = parse_op(buf, &tok[val[K_OP]]);
	if (cmd->op == RC_CMD_NONE)
		return fail(cmd, -EOPNOTSUPP, "bad_op",
			    "op must be \"sub\", \"unsub\", \"pub\", \"ping\", "
			    "\"auth\", \"refresh\", \"presence\" or "
			    "\"presence_stats\"");
	if (cmd->op == RC_CMD_PING)
		return 0;
	if (cmd->op == RC_CMD_AUTH || cmd->op == RC_CMD_REFRESH) {
		/* A JWT is base64url and dots: its raw text is the token, and
		 * one with escapes fails verification like any other garbage. */
		if (val[K_TOKEN] < 0)
			return fail(cmd, -EINVAL, "missing_field", "missing \"token\"");
		if (tok[val[K_TOKEN]].type != JSMN_STRING)
			return fail(cmd, -EINVAL, "bad_field", "token must be a string");
		cmd->token = (struct rc_span){ (const char *)buf + tok[val[K_TOKEN]].start,
					       (size_t)(tok[val[K_TOKEN]].end -
							tok[val[K_TOKEN]].start) };
		return 0;
	}
	if (val[K_TOPIC] < 0)
		return fail(cmd, -EINVAL, "missing_field", "missing \"topic\"");
	why = parse_topic(buf, &tok[val[K_TOPIC]], cmd);
	if (why)
		return fail(cmd, -EINVAL, "bad_topic", why);
	if (cmd->op == RC_CMD_PUB) {
		if (val[K_DATA] < 0)
			return fail(cmd, -EINVAL, "missing_field",
				    "missing \"data\"");
		cmd->data = tok_raw(buf, &tok[val[K_DATA]]);
	}
	if (cmd->op == RC_CMD_SUB && val[K_FROM] >= 0) {
		why = parse_u64(buf, &tok[val[K_FROM]], &cmd->from);
		if (why)
			return fail(cmd, -EINVAL, "bad_field", why);
		cmd->has_from = true;
	}
	return 0;
}

/* ---- Patterns -------------------------------------------------------------- */

/* See json.h. */
size_t rc_topic_token_end(const char *p, size_t len, size_t i)
{
	const char *dot = i < len ? memchr(p + i, '.', len - i) : NULL;

	return dot ? (size_t)(dot - p) : len;
}

static bool tok_one(const char *p, size_t i, size_t e, char c)
{
	return e - i == 1 && p[i] == c;
}

/* See json.h. */
bool rc_topic_is_pattern(const char *p, size_t len)
{
	for (size_t i = 0;; ) {
		size_t e = rc_topic_token_end(p, len, i);
		if (tok_one(p, i, e, '*') || tok_one(p, i, e, '>'))
			return true;
		if (e >= len)
			return false;
		i = e + 1;
	}
}

/* See json.h.  Walks both token by token; pi/si are the next token's
 * start, past the end (len + 1) once the last token is consumed. */
bool rc_topic_matches(const char *pat, size_t plen, const char *subj, size_t slen)
{
	size_t pi = 0, si = 0;

	while (pi <= plen && si <= slen) {
		size_t pe = rc_topic_token_end(pat, plen, pi), se = rc_topic_token_end(subj, slen, si);
		if (tok_one(pat, pi, pe, '>') && pe == plen)
			return true; /* one or more: this subject token and any after */
		if (!tok_one(pat, pi, pe, '*') &&
		    (pe - pi != se - si || memcmp(pat + pi, subj + si, pe - pi) != 0))
			return false;
		pi = pe + 1;
		si = se + 1;
	}
	return pi > plen && si > slen;
}
