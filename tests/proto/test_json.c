/* Tests for proto/json.c: command parsing (valid table, malformed table,
 * id echo, topic rules, limits, truncations, guard page), the strict
 * validator, and the writers (byte-exact, -ENOSPC at every short cap, bounds,
 * round trip through jsmn). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "proto/base64.h"
#include "proto/json.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The tables below leave trailing fields zero (no id, no data, ...). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Criterion runs each parameter in a fresh process (pointers differ), so
 * parameters are indices into the static tables below. */
static size_t idx[256];

static size_t *indices(size_t n)
{
	cr_assert_leq(n, ARRAY_SIZE(idx));
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	return idx;
}

#define INDEX_PARAMS(suite, name, table)                                      \
	ParameterizedTestParameters(suite, name)                              \
	{                                                                     \
		return cr_make_param_array(size_t, indices(ARRAY_SIZE(table)), \
					   ARRAY_SIZE(table));                \
	}

static int parse_str(const char *s, struct rc_cmd *cmd)
{
	return rc_cmd_parse((const uint8_t *)s, strlen(s), cmd);
}

static void assert_span(struct rc_span sp, const char *want)
{
	if (!want) {
		cr_assert_null(sp.p);
		return;
	}
	cr_assert_not_null(sp.p, "expected \"%s\"", want);
	cr_assert_eq(sp.len, strlen(want), "got \"%.*s\" want \"%s\"",
		     (int)sp.len, sp.p, want);
	cr_assert_arr_eq(sp.p, want, sp.len);
}

/* ---- valid commands --------------------------------------------------- */

static const struct valid_case {
	const char *in;
	enum rc_cmd_op op;
	const char *topic, *id, *data;
	bool has_from;
	uint64_t from;
} valid[] = {
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"id\":1}", RC_CMD_SUB, "t", "1" },
	{ "{\"op\":\"sub\",\"topic\":\"news\",\"id\":2,\"from\":0}", RC_CMD_SUB,
	  "news", "2", NULL, true, 0 },
	{ "{\"op\":\"sub\",\"topic\":\"a\",\"from\":18446744073709551615}",
	  RC_CMD_SUB, "a", NULL, NULL, true, UINT64_MAX },
	{ "{\"op\":\"sub\",\"topic\":\"a\",\"from\":42,\"data\":[1]}", RC_CMD_SUB,
	  "a", NULL, NULL, true, 42 },
	{ "{\"op\":\"unsub\",\"topic\":\"t\",\"id\":2}", RC_CMD_UNSUB, "t", "2" },
	{ "{\"op\":\"unsub\",\"topic\":\"t\",\"from\":\"x\"}", RC_CMD_UNSUB, "t" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\":{\"a\":[1,2,{\"b\":null}]},\"id\":3}",
	  RC_CMD_PUB, "t", "3", "{\"a\":[1,2,{\"b\":null}]}" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\":\"hi\\\"x\"}", RC_CMD_PUB, "t",
	  NULL, "\"hi\\\"x\"" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\":-1.5e+3}", RC_CMD_PUB, "t",
	  NULL, "-1.5e+3" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\":true}", RC_CMD_PUB, "t", NULL,
	  "true" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\":null}", RC_CMD_PUB, "t", NULL,
	  "null" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\":[ ]}", RC_CMD_PUB, "t", NULL,
	  "[ ]" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\" : { } }", RC_CMD_PUB, "t",
	  NULL, "{ }" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\":\"\",\"from\":true}",
	  RC_CMD_PUB, "t", NULL, "\"\"" },
	{ "{\"id\":7,\"data\":0,\"topic\":\"t\",\"op\":\"pub\"}", RC_CMD_PUB, "t",
	  "7", "0" },
	{ "{\"op\":\"ping\",\"id\":4}", RC_CMD_PING, NULL, "4" },
	{ "{\"op\":\"ping\"}", RC_CMD_PING },
	{ "{\"op\":\"ping\",\"topic\":\"bad topic\"}", RC_CMD_PING },
	{ " \r\n\t{\n\"op\" : \"ping\" ,\t\"id\":\"abc\"}  \r\n", RC_CMD_PING,
	  NULL, "\"abc\"" },
	{ "{\"op\":\"ping\",\"id\":\"a\\\"b\\u00e9\"}", RC_CMD_PING, NULL,
	  "\"a\\\"b\\u00e9\"" },
	{ "{\"op\":\"ping\",\"id\":-0.5e-10}", RC_CMD_PING, NULL, "-0.5e-10" },
	{ "{\"op\":\"ping\",\"id\":123456789012345678901234567890}", RC_CMD_PING,
	  NULL, "123456789012345678901234567890" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"data\":1,\"x\":{\"y\":[1,2]},\"v\":2}",
	  RC_CMD_PUB, "t", NULL, "1" },
	{ "{\"\\u006fp\":\"ping\"}", RC_CMD_PING },
	{ "{\"op\":\"s\\u0075b\",\"topic\":\"t\"}", RC_CMD_SUB, "t" },
	{ "{\"op\":\"sub\",\"topic\":\"t\\/a\"}", RC_CMD_SUB, "t/a" },
	{ "{\"op\":\"sub\",\"topic\":\"\\u00e9\"}", RC_CMD_SUB, "\xc3\xa9" },
	{ "{\"op\":\"sub\",\"topic\":\"\\ud83d\\ude00\"}", RC_CMD_SUB,
	  "\xf0\x9f\x98\x80" },
	{ "{\"op\":\"sub\",\"topic\":\"\xe6\x97\xa5\xe6\x9c\xac\"}", RC_CMD_SUB,
	  "\xe6\x97\xa5\xe6\x9c\xac" },
	{ "{\"op\":\"sub\",\"topic\":\"a\\\"b\\\\c\"}", RC_CMD_SUB, "a\"b\\c" },
	{ "{\"op\":\"sub\",\"topic\":\"x.y-z_1:2/3\",\"id\":\"\"}", RC_CMD_SUB,
	  "x.y-z_1:2/3", "\"\"" },
	{ "{\"op\":\"sub\",\"topic\":\"\\uD83D\\uDE00\"}", RC_CMD_SUB,
	  "\xf0\x9f\x98\x80" },
	{ "{\"op\":\"sub\",\"topic\":\"~\\u007e\"}", RC_CMD_SUB, "~~" },
};

TestSuite(json_cmd);

static void check_valid(const struct valid_case *c, const uint8_t *buf,
			size_t len)
{
	struct rc_cmd cmd;
	int r = rc_cmd_parse(buf, len, &cmd);

	cr_assert_eq(r, 0, "%s: %d %s (%s)", c->in, r, cmd.err_code,
		     cmd.err_reason);
	cr_assert_eq(cmd.op, c->op, "%s", c->in);
	cr_assert_eq(cmd.has_id, c->id != NULL);
	assert_span(cmd.id, c->id);
	assert_span(cmd.data, c->data);
	if (c->topic) {
		cr_assert_eq(cmd.topic_len, strlen(c->topic));
		cr_assert_str_eq(cmd.topic, c->topic);
	} else {
		cr_assert_eq(cmd.topic_len, 0);
	}
	cr_assert_eq(cmd.has_from, c->has_from, "%s", c->in);
	if (c->has_from)
		cr_assert_eq(cmd.from, c->from);
}

INDEX_PARAMS(json_cmd, valid, valid)
ParameterizedTest(size_t *i, json_cmd, valid)
{
	check_valid(&valid[*i], (const uint8_t *)valid[*i].in,
		    strlen(valid[*i].in));
}

/* Every strict prefix of a valid command is incomplete JSON.  (The parser is
 * not incremental: a WebSocket message arrives whole; this checks that a cut
 * anywhere is an error and never a crash or a misread.) */
INDEX_PARAMS(json_cmd, every_prefix_fails, valid)
ParameterizedTest(size_t *i, json_cmd, every_prefix_fails)
{
	const char *in = valid[*i].in;
	size_t len = strlen(in), end = len;
	struct rc_cmd cmd;

	while (end > 0 && strchr(" \r\n\t", in[end - 1]))
		end--; /* trailing whitespace is optional */
	for (size_t cut = 0; cut < end; cut++) {
		cr_assert_lt(rc_cmd_parse((const uint8_t *)in, cut, &cmd), 0);
		cr_assert_str_eq(cmd.err_code, "bad_json", "cut %zu", cut);
		cr_assert_eq(cmd.op, RC_CMD_NONE);
	}
}

/* ---- guard page ------------------------------------------------------- */

static uint8_t *guard_map;
static long guard_pg;

static void guard_init(void)
{
	guard_pg = sysconf(_SC_PAGESIZE);
	guard_map = mmap(NULL, (size_t)guard_pg * 2, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(guard_map, MAP_FAILED);
	cr_assert_eq(mprotect(guard_map + guard_pg, (size_t)guard_pg, PROT_NONE),
		     0);
}

static void guard_fini(void)
{
	munmap(guard_map, (size_t)guard_pg * 2);
}

/* Copies s so that its last byte is the last readable byte. */
static const uint8_t *at_guard(const void *s, size_t len)
{
	uint8_t *at = guard_map + guard_pg - len;

	memcpy(at, s, len);
	return at;
}

TestSuite(json_guard, .init = guard_init, .fini = guard_fini);

Test(json_guard, valid_commands_end_at_guard)
{
	for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
		size_t len = strlen(valid[i].in);

		check_valid(&valid[i], at_guard(valid[i].in, len), len);
		for (size_t cut = 0; cut < len; cut++) {
			struct rc_cmd cmd;

			rc_cmd_parse(at_guard(valid[i].in, cut), cut, &cmd);
			rc_json_valid(at_guard(valid[i].in, cut), cut);
		}
	}
}

/* ---- malformed commands ----------------------------------------------- */

static const struct bad_case {
	const char *in;
	size_t len; /* 0: strlen */
	const char *code;
	int err;
	const char *id; /* id recovered for the err, or NULL */
} bad[] = {
	/* not JSON / not strict JSON / not an object */
	{ "", 0, "bad_json", -EBADMSG },
	{ "   ", 0, "bad_json", -EBADMSG },
	{ "nope", 0, "bad_json", -EBADMSG },
	{ "[]", 0, "bad_json", -EBADMSG },
	{ "[{\"op\":\"ping\"}]", 0, "bad_json", -EBADMSG },
	{ "\"op\"", 0, "bad_json", -EBADMSG },
	{ "42", 0, "bad_json", -EBADMSG },
	{ "null", 0, "bad_json", -EBADMSG },
	{ "{", 0, "bad_json", -EBADMSG },
	{ "}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\"", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\"}x", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\"}}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\"} {}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\"},", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\"}\0", 14, "bad_json", -EBADMSG },
	{ "{\"op\":\"pi\0ng\"}", 14, "bad_json", -EBADMSG },
	{ "\xef\xbb\xbf{\"op\":\"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",}", 0, "bad_json", -EBADMSG },
	{ "{,\"op\":\"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\" \"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\"::\"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\" \"id\":1}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",,\"id\":1}", 0, "bad_json", -EBADMSG },
	{ "{\"op\",\"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{op:\"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{'op':'ping'}", 0, "bad_json", -EBADMSG },
	{ "{1:\"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"id\":01}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"id\":1.}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"id\":.5}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"id\":1e}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"id\":1e+}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"id\":+1}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"id\":-}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"id\":0x10}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":tru}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":nul}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":True}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":truex}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":NaN}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":Infinity}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":[1 2]}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":[1,]}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":[,1]}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":[1}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":{\"a\"}}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":{\"a\":1]}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":{1:1}}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"p\x01ing\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"a\tb\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"a\nb\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\\x\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\\u12G4\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\\u12\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\\U0041\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\\'\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\\\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\xff\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\xc0\x80\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\xed\xa0\x80\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\xe2\x82\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\xf4\x90\x80\x80\"}", 0, "bad_json",
	  -EBADMSG },
	{ "{\"op\":\"ping\",\"x\":\"\x80\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"\xe9\":1}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\"}\xc3\xa9", 0, "bad_json", -EBADMSG },
	/* duplicate keys, compared after unescaping; id kept if unique */
	{ "{\"op\":\"ping\",\"op\":\"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"\\u006fp\":\"sub\"}", 0, "bad_json", -EBADMSG },
	{ "{\"id\":5,\"op\":\"ping\",\"x\":1,\"x\":2}", 0, "bad_json", -EBADMSG,
	  "5" },
	{ "{\"id\":5,\"id\":6,\"op\":\"ping\"}", 0, "bad_json", -EBADMSG },
	{ "{\"op\":\"ping\",\"\\ud800\":1,\"\\ud800\":2}", 0, "bad_json",
	  -EBADMSG },
	/* op */
	{ "{\"op\":\"publish\",\"id\":9}", 0, "bad_op", -EOPNOTSUPP, "9" },
	{ "{\"op\":\"SUB\",\"topic\":\"t\"}", 0, "bad_op", -EOPNOTSUPP },
	{ "{\"op\":\"\"}", 0, "bad_op", -EOPNOTSUPP },
	{ "{\"op\":\"sub\\u0000\"}", 0, "bad_op", -EOPNOTSUPP },
	{ "{\"op\":\"msg\",\"id\":\"m\"}", 0, "bad_op", -EOPNOTSUPP, "\"m\"" },
	{ "{\"op\":1}", 0, "bad_op", -EOPNOTSUPP },
	{ "{\"op\":null}", 0, "bad_op", -EOPNOTSUPP },
	{ "{\"op\":[\"sub\"]}", 0, "bad_op", -EOPNOTSUPP },
	/* missing fields */
	{ "{}", 0, "missing_field", -EINVAL },
	{ "{\"id\":1}", 0, "missing_field", -EINVAL, "1" },
	{ "{\"Op\":\"ping\"}", 0, "missing_field", -EINVAL },
	{ "{\"op\":\"sub\"}", 0, "missing_field", -EINVAL },
	{ "{\"op\":\"unsub\",\"id\":\"x\"}", 0, "missing_field", -EINVAL,
	  "\"x\"" },
	{ "{\"op\":\"pub\",\"topic\":\"t\",\"id\":3}", 0, "missing_field", -EINVAL,
	  "3" },
	{ "{\"op\":\"pub\",\"data\":1}", 0, "missing_field", -EINVAL },
	/* wrong types and ranges */
	{ "{\"op\":\"ping\",\"id\":true}", 0, "bad_field", -EINVAL },
	{ "{\"op\":\"ping\",\"id\":null}", 0, "bad_field", -EINVAL },
	{ "{\"op\":\"ping\",\"id\":{}}", 0, "bad_field", -EINVAL },
	{ "{\"op\":\"ping\",\"id\":[1]}", 0, "bad_field", -EINVAL },
	{ "{\"op\":\"ping\",\"id\":\"12345678901234567890123456789012345678901234567890123456789012345\"}",
	  0, "bad_field", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"from\":-1,\"id\":1}", 0, "bad_field",
	  -EINVAL, "1" },
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"from\":1.5}", 0, "bad_field", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"from\":1e3}", 0, "bad_field", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"from\":\"5\"}", 0, "bad_field",
	  -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"from\":18446744073709551616}", 0,
	  "bad_field", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"from\":99999999999999999999}", 0,
	  "bad_field", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"from\":true}", 0, "bad_field",
	  -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"t\",\"from\":null}", 0, "bad_field",
	  -EINVAL },
	/* topics */
	{ "{\"op\":\"sub\",\"topic\":\"\",\"id\":1}", 0, "bad_topic", -EINVAL,
	  "1" },
	{ "{\"op\":\"sub\",\"topic\":1}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":null}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"pub\",\"topic\":[\"t\"],\"data\":1}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"a b\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\" \"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"a\\tb\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"a\\nb\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"a\\u0000b\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\u001f\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\u007f\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\x7f\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\u0085\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\xc2\x85\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\u00a0\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"a\\u2028\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"a\xe3\x80\x80\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\ud800\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\udc00\"}", 0, "bad_topic", -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\udc00\\ud800\"}", 0, "bad_topic",
	  -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\ud800\\u0041\"}", 0, "bad_topic",
	  -EINVAL },
	{ "{\"op\":\"sub\",\"topic\":\"\\ud800x\"}", 0, "bad_topic", -EINVAL },
};

static void check_bad(const struct bad_case *c, const uint8_t *buf, size_t len)
{
	struct rc_cmd cmd;
	int r = rc_cmd_parse(buf, len, &cmd);

	cr_assert_eq(r, c->err, "%s: got %d %s", c->in, r,
		     r ? cmd.err_code : "ok");
	cr_assert_str_eq(cmd.err_code, c->code, "%s: %s", c->in, cmd.err_reason);
	cr_assert_not_null(cmd.err_reason);
	cr_assert_gt(strlen(cmd.err_reason), 0);
	cr_assert_eq(cmd.op, RC_CMD_NONE);
	cr_assert_eq(cmd.has_id, c->id != NULL, "%s", c->in);
	assert_span(cmd.id, c->id);
}

static size_t bad_len(const struct bad_case *c)
{
	return c->len ? c->len : strlen(c->in);
}

INDEX_PARAMS(json_cmd, malformed, bad)
ParameterizedTest(size_t *i, json_cmd, malformed)
{
	check_bad(&bad[*i], (const uint8_t *)bad[*i].in, bad_len(&bad[*i]));
}

Test(json_guard, malformed_commands_end_at_guard)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		size_t len = bad_len(&bad[i]);

		check_bad(&bad[i], at_guard(bad[i].in, len), len);
	}
}

/* ---- limits ----------------------------------------------------------- */

static char big[64 * 1024];

/* A pub whose data is `depth` nested arrays. */
static size_t nested(size_t depth)
{
	size_t n = (size_t)sprintf(big, "{\"op\":\"pub\",\"topic\":\"t\",\"id\":8,\"data\":");

	memset(big + n, '[', depth);
	n += depth;
	memset(big + n, ']', depth);
	n += depth;
	big[n++] = '}';
	return n;
}

Test(json_cmd, nesting_limit)
{
	struct rc_cmd cmd;
	size_t n = nested(RC_JSON_MAX_DEPTH - 1); /* the object is one level */

	cr_assert_eq(rc_cmd_parse((uint8_t *)big, n, &cmd), 0, "%s",
		     cmd.err_reason);
	cr_assert_eq(cmd.data.len, 2 * (RC_JSON_MAX_DEPTH - 1));
	n = nested(RC_JSON_MAX_DEPTH);
	cr_assert_eq(rc_cmd_parse((uint8_t *)big, n, &cmd), -E2BIG);
	cr_assert_str_eq(cmd.err_code, "too_complex");
	n = nested(20000);
	cr_assert_eq(rc_cmd_parse((uint8_t *)big, n, &cmd), -E2BIG);
	cr_assert(!rc_json_valid(big + 39, 2 * 20000));
}

/* A pub with an array of `count` numbers: 9 tokens + count. */
static size_t wide(size_t count)
{
	size_t n = (size_t)sprintf(big, "{\"op\":\"pub\",\"topic\":\"t\",\"data\":[");

	for (size_t k = 0; k < count; k++)
		n += (size_t)sprintf(big + n, k ? ",%zu" : "%zu", k);
	n += (size_t)sprintf(big + n, "],\"id\":1}");
	return n;
}

Test(json_cmd, token_limit)
{
	struct rc_cmd cmd;
	size_t n = wide(RC_CMD_MAX_TOKENS - 9);

	cr_assert_eq(rc_cmd_parse((uint8_t *)big, n, &cmd), 0, "%s",
		     cmd.err_reason);
	n = wide(RC_CMD_MAX_TOKENS - 8);
	cr_assert_eq(rc_cmd_parse((uint8_t *)big, n, &cmd), -E2BIG);
	cr_assert_str_eq(cmd.err_code, "too_complex");
	cr_assert(rc_json_valid(big, n)); /* no token limit for payloads */
	/* Top-level keys are bounded (duplicate detection is quadratic). */
	n = (size_t)sprintf(big, "{\"op\":\"ping\"");
	for (int k = 1; k < RC_CMD_MAX_KEYS; k++)
		n += (size_t)sprintf(big + n, ",\"k%d\":%d", k, k);
	big[n++] = '}';
	cr_assert_eq(rc_cmd_parse((uint8_t *)big, n, &cmd), 0);
	n--;
	n += (size_t)sprintf(big + n, ",\"k\":0}");
	cr_assert_eq(rc_cmd_parse((uint8_t *)big, n, &cmd), -E2BIG);
	cr_assert_str_eq(cmd.err_code, "too_complex");
	/* A duplicate among many keys is found. */
	n = (size_t)sprintf(big, "{\"op\":\"ping\"");
	for (int k = 1; k < RC_CMD_MAX_KEYS - 1; k++)
		n += (size_t)sprintf(big + n, ",\"k%d\":%d", k, k);
	n += (size_t)sprintf(big + n, ",\"k17\":0}");
	cr_assert_eq(rc_cmd_parse((uint8_t *)big, n, &cmd), -EBADMSG);
}

/* ---- topics ----------------------------------------------------------- */

Test(json_cmd, topic_length)
{
	char t[300];
	struct rc_cmd cmd;

	for (size_t len = 253; len <= 257; len++) {
		memset(t, 'a', len);
		sprintf(big, "{\"op\":\"sub\",\"topic\":\"%.*s\"}", (int)len, t);
		if (len <= RC_TOPIC_MAX) {
			cr_assert_eq(parse_str(big, &cmd), 0);
			cr_assert_eq(cmd.topic_len, len);
			cr_assert_eq(cmd.topic[len], '\0');
		} else {
			cr_assert_eq(parse_str(big, &cmd), -EINVAL);
			cr_assert_str_eq(cmd.err_code, "bad_topic");
		}
	}
	/* 255 bytes spelled with escapes: 85 x U+20AC (3 bytes each). */
	strcpy(big, "{\"op\":\"sub\",\"topic\":\"");
	for (int k = 0; k < 85; k++)
		strcat(big, "\\u20ac");
	strcat(big, "\"}");
	cr_assert_eq(parse_str(big, &cmd), 0);
	cr_assert_eq(cmd.topic_len, 255);
	cr_assert_arr_eq(cmd.topic + 252, "\xe2\x82\xac", 3);
	strcpy(big + strlen(big) - 2, "x\"}");
	cr_assert_eq(parse_str(big, &cmd), -EINVAL);
}

static const struct {
	const char *t;
	bool ok;
} topics[] = {
	{ "a", true },
	{ "chat/room-1", true },
	{ "\xc3\xa9t\xc3\xa9", true },
	{ "\xf0\x9f\x98\x80", true },
	{ "\xe2\x80\x8b", true }, /* zero-width space is not White_Space */
	{ "", false },
	{ "a b", false },
	{ "a\x01", false },
	{ "\x7f", false },
	{ "\xc2\x80", false },
	{ "\xc2\xa0", false },
	{ "\xe1\x9a\x80", false },
	{ "\xe2\x80\x80", false },
	{ "\xe2\x80\x8a", false },
	{ "\xe2\x80\xa8", false },
	{ "\xe2\x80\xa9", false },
	{ "\xe2\x80\xaf", false },
	{ "\xe2\x81\x9f", false },
	{ "\xe3\x80\x80", false },
	{ "\xff", false },
	{ "\xc3", false },
	{ "\xed\xa0\x80", false },
};

INDEX_PARAMS(json_cmd, topic_rule, topics)
ParameterizedTest(size_t *i, json_cmd, topic_rule)
{
	const char *t = topics[*i].t;

	cr_assert_eq(rc_topic_valid((const uint8_t *)t, strlen(t)),
		     topics[*i].ok, "topic \"%s\"", t);
}

/* ---- id echo ---------------------------------------------------------- */

static const char *const ids[] = {
	"0", "-0", "7", "-12", "1.5", "1e10", "1E-2", "-0.0e+0",
	"12345678901234567890", "\"\"", "\"abc\"", "\"a\\\"b\"",
	"\"\\u00e9\\n\"", "\"\xc3\xa9\"", "\"\\ud83d\\ude00\"",
};

INDEX_PARAMS(json_cmd, id_echoed_verbatim, ids)
ParameterizedTest(size_t *i, json_cmd, id_echoed_verbatim)
{
	char in[200], out[300], want[300];
	struct rc_cmd cmd;
	ssize_t n;

	sprintf(in, "{\"op\":\"ping\",\"id\":%s}", ids[*i]);
	cr_assert_eq(parse_str(in, &cmd), 0);
	assert_span(cmd.id, ids[*i]);
	n = rc_json_write_ack(out, sizeof(out), cmd.id, false, 0, NULL);
	sprintf(want, "{\"op\":\"ack\",\"id\":%s}", ids[*i]);
	cr_assert_eq(n, (ssize_t)strlen(want));
	cr_assert_arr_eq(out, want, (size_t)n);
	cr_assert(rc_json_valid(out, (size_t)n));
	/* And on a failed command, in the err. */
	sprintf(in, "{\"op\":\"nope\",\"id\":%s}", ids[*i]);
	cr_assert_eq(parse_str(in, &cmd), -EOPNOTSUPP);
	n = rc_json_write_err(out, sizeof(out), cmd.id, cmd.err_code, NULL);
	sprintf(want, "{\"op\":\"err\",\"id\":%s,\"code\":\"bad_op\"}", ids[*i]);
	cr_assert_eq(n, (ssize_t)strlen(want));
	cr_assert_arr_eq(out, want, (size_t)n);
}

/* ---- validator -------------------------------------------------------- */

static const char *const json_ok[] = {
	"0", "-0", "1", " 1 ", "1.0", "-1.25e-7", "1E+2", "\"\"", "\"\\u0000\"",
	"\"\\ud800\"", "true", "false", "null", "[]", "{}", " [ 1 , [ ] , { } ] ",
	"{\"a\":{\"b\":[true,false,null]}}", "\"\xf4\x8f\xbf\xbf\"",
	"{\"a\":1,\"a\":2}", "\n\t\r 3\n",
};

static const char *const json_bad[] = {
	"", " ", "01", "-", "1.", ".1", "1e", "+1", "--1", "0x1", "1 2", "tru",
	"nulll", "[1,]", "[,]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1 2]",
	"{\"a\" 1}", "\"\x01\"", "\"\\v\"", "'a'", "[", "]", "{}}", "\"\xc0\xaf\"",
	"\"\xf8\x88\x80\x80\x80\"", "\xc3\xa9", "[1]x", "NaN", "-Infinity",
	"\"abc",
};

INDEX_PARAMS(json_valid, accepts, json_ok)
ParameterizedTest(size_t *i, json_valid, accepts)
{
	cr_assert(rc_json_valid(json_ok[*i], strlen(json_ok[*i])), "%s",
		  json_ok[*i]);
	cr_assert_eq(rc_json_data_kind(json_ok[*i], strlen(json_ok[*i]), true),
		     RC_JSON_DATA_JSON);
	cr_assert_eq(rc_json_data_kind(json_ok[*i], strlen(json_ok[*i]), false),
		     RC_JSON_DATA_BINARY);
}

INDEX_PARAMS(json_valid, rejects, json_bad)
ParameterizedTest(size_t *i, json_valid, rejects)
{
	const char *s = json_bad[*i];
	enum rc_json_data k = rc_json_data_kind(s, strlen(s), true);

	cr_assert(!rc_json_valid(s, strlen(s)), "%s", s);
	cr_assert_neq(k, RC_JSON_DATA_JSON);
}

Test(json_valid, data_kind_text_and_bad_utf8)
{
	cr_assert_eq(rc_json_data_kind("hello world", 11, true), RC_JSON_DATA_TEXT);
	cr_assert_eq(rc_json_data_kind("\xc3\xa9", 2, true), RC_JSON_DATA_TEXT);
	cr_assert_eq(rc_json_data_kind("", 0, true), RC_JSON_DATA_TEXT);
	cr_assert_eq(rc_json_data_kind("a\xff", 2, true), RC_JSON_DATA_BINARY);
	cr_assert_eq(rc_json_data_kind("\xed\xa0\x80", 3, true),
		     RC_JSON_DATA_BINARY);
}

Test(json_valid, depth_limit)
{
	memset(big, '[', RC_JSON_MAX_DEPTH);
	memset(big + RC_JSON_MAX_DEPTH, ']', RC_JSON_MAX_DEPTH);
	cr_assert(rc_json_valid(big, 2 * RC_JSON_MAX_DEPTH));
	memset(big, '{', 1);
	cr_assert(!rc_json_valid(big, 2 * RC_JSON_MAX_DEPTH));
	/* Objects and arrays interleaved past the 64-bit words of the stack. */
	size_t n = 0;

	for (int k = 0; k < 200; k++)
		n += (size_t)sprintf(big + n, k % 3 ? "[" : "{\"k\":");
	for (int k = 199; k >= 0; k--)
		big[n++] = k % 3 ? ']' : '}';
	cr_assert(rc_json_valid(big, n));
	big[n - 1] = ']';
	cr_assert(!rc_json_valid(big, n));
}

/* ---- writers ---------------------------------------------------------- */

static const uint8_t bin4[] = { 0x00, 0x01, 0x02, 0xff };
static const struct rc_span id3 = { "3", 1 }, ids3 = { "\"r-1\"", 5 };

/* Each writer case: what to call, what it must produce, and its bound. */
static const struct {
	const char *want;
} wcases[] = {
	{ "{\"op\":\"msg\",\"topic\":\"t\",\"seq\":42,\"data\":{\"a\":1}}" },
	{ "{\"op\":\"msg\",\"topic\":\"t\",\"seq\":1,\"data\":\"he said \\\"hi\\\"\\u000a\\\\\"}" },
	{ "{\"op\":\"msg\",\"topic\":\"t\",\"seq\":7,\"data\":\"AAEC/w==\",\"enc\":\"base64\"}" },
	{ "{\"op\":\"msg\",\"topic\":\"a\\\"b\\\\c\xc3\xa9\",\"seq\":18446744073709551615,\"data\":\"\"}" },
	{ "{\"op\":\"msg\",\"topic\":\"t\",\"seq\":0,\"data\":\"\",\"enc\":\"base64\"}" },
	{ "{\"op\":\"ack\",\"id\":3,\"seq\":41,\"epoch\":\"e1\"}" },
	{ "{\"op\":\"ack\",\"id\":\"r-1\"}" },
	{ "{\"op\":\"ack\",\"id\":3,\"seq\":0}" },
	{ "{\"op\":\"ack\",\"id\":3,\"epoch\":\"x\\\"y\"}" },
	{ "{\"op\":\"err\",\"id\":3,\"code\":\"forbidden\",\"reason\":\"no \\\"t\\\"\"}" },
	{ "{\"op\":\"err\",\"code\":\"bad_json\"}" },
	{ "{\"op\":\"err\",\"id\":\"r-1\",\"code\":\"x\",\"reason\":\"\"}" },
	{ "{\"op\":\"gap\",\"topic\":\"t\",\"from\":10,\"to\":20}" },
	{ "{\"op\":\"gap\",\"topic\":\"\\u0001\",\"from\":0,\"to\":18446744073709551615}" },
	{ "{\"op\":\"welcome\",\"version\":\"0.1.0\",\"epoch\":\"5f3a\"}" },
};

/* Runs writer case i; *bound gets the matching bound helper's value. */
static ssize_t run_writer(size_t i, char *out, size_t cap, size_t *bound)
{
	const char *he = "he said \"hi\"\n\\", *t = "a\"b\\c\xc3\xa9";

	switch (i) {
	case 0:
		*bound = rc_json_msg_bound(1, 7, RC_JSON_DATA_JSON);
		cr_assert_eq(rc_json_msg_len("t", 1, 42, "{\"a\":1}", 7,
					     RC_JSON_DATA_JSON),
			     strlen(wcases[i].want));
		return rc_json_write_msg(out, cap, "t", 1, 42, "{\"a\":1}", 7,
					 RC_JSON_DATA_JSON);
	case 1:
		*bound = rc_json_msg_bound(1, strlen(he), RC_JSON_DATA_TEXT);
		cr_assert_eq(rc_json_msg_len("t", 1, 1, he, strlen(he),
					     RC_JSON_DATA_TEXT),
			     strlen(wcases[i].want));
		return rc_json_write_msg(out, cap, "t", 1, 1, he, strlen(he),
					 RC_JSON_DATA_TEXT);
	case 2:
		*bound = rc_json_msg_bound(1, 4, RC_JSON_DATA_BINARY);
		cr_assert_eq(rc_json_msg_len("t", 1, 7, bin4, 4,
					     RC_JSON_DATA_BINARY),
			     strlen(wcases[i].want));
		return rc_json_write_msg(out, cap, "t", 1, 7, bin4, 4,
					 RC_JSON_DATA_BINARY);
	case 3:
		*bound = rc_json_msg_bound(strlen(t), 2, RC_JSON_DATA_JSON);
		cr_assert_eq(rc_json_msg_len(t, strlen(t), UINT64_MAX, "\"\"", 2,
					     RC_JSON_DATA_JSON),
			     strlen(wcases[i].want));
		return rc_json_write_msg(out, cap, t, strlen(t), UINT64_MAX,
					 "\"\"", 2, RC_JSON_DATA_JSON);
	case 4:
		*bound = rc_json_msg_bound(1, 0, RC_JSON_DATA_BINARY);
		cr_assert_eq(rc_json_msg_len("t", 1, 0, "", 0,
					     RC_JSON_DATA_BINARY),
			     strlen(wcases[i].want));
		return rc_json_write_msg(out, cap, "t", 1, 0, "", 0,
					 RC_JSON_DATA_BINARY);
	case 5:
		*bound = rc_json_ack_bound(1, 2);
		return rc_json_write_ack(out, cap, id3, true, 41, "e1");
	case 6:
		*bound = rc_json_ack_bound(5, 0);
		return rc_json_write_ack(out, cap, ids3, false, 99, NULL);
	case 7:
		*bound = rc_json_ack_bound(1, 0);
		return rc_json_write_ack(out, cap, id3, true, 0, NULL);
	case 8:
		*bound = rc_json_ack_bound(1, 3);
		return rc_json_write_ack(out, cap, id3, false, 0, "x\"y");
	case 9:
		*bound = rc_json_err_bound(1, 9, 6);
		return rc_json_write_err(out, cap, id3, "forbidden", "no \"t\"");
	case 10:
		*bound = rc_json_err_bound(0, 8, 0);
		return rc_json_write_err(out, cap, (struct rc_span){ 0 },
					 "bad_json", NULL);
	case 11:
		*bound = rc_json_err_bound(5, 1, 0);
		return rc_json_write_err(out, cap, ids3, "x", "");
	case 12:
		*bound = rc_json_gap_bound(1);
		return rc_json_write_gap(out, cap, "t", 1, 10, 20);
	case 13:
		*bound = rc_json_gap_bound(1);
		return rc_json_write_gap(out, cap, "\x01", 1, 0, UINT64_MAX);
	default:
		*bound = rc_json_welcome_bound(5, 4);
		return rc_json_write_welcome(out, cap, "0.1.0", "5f3a");
	}
}

TestSuite(json_write);

INDEX_PARAMS(json_write, byte_exact_and_enospc, wcases)
ParameterizedTest(size_t *i, json_write, byte_exact_and_enospc)
{
	const char *want = wcases[*i].want;
	size_t len = strlen(want), bound;
	char out[512];
	ssize_t n;

	memset(out, 0x55, sizeof(out));
	n = run_writer(*i, out, sizeof(out), &bound);
	cr_assert_eq(n, (ssize_t)len, "got %zd: %.*s", n, (int)(n > 0 ? n : 0),
		     out);
	cr_assert_arr_eq(out, want, len, "got %.*s", (int)len, out);
	cr_assert_eq((uint8_t)out[len], 0x55);
	cr_assert_geq(bound, len);
	cr_assert(rc_json_valid(out, len));
	for (size_t cap = 0; cap < len; cap++) {
		memset(out, 0x55, sizeof(out));
		cr_assert_eq(run_writer(*i, out, cap, &bound), -ENOSPC,
			     "cap %zu", cap);
		for (size_t k = cap; k < sizeof(out); k++)
			cr_assert_eq((uint8_t)out[k], 0x55, "cap %zu wrote %zu",
				     cap, k);
	}
	/* Exactly enough room is enough. */
	cr_assert_eq(run_writer(*i, out, len, &bound), (ssize_t)len);
}

Test(json_write, ack_needs_id)
{
	char out[64];

	cr_assert_eq(rc_json_write_ack(out, sizeof(out), (struct rc_span){ 0 },
				       true, 1, NULL), -EINVAL);
}

Test(json_write, escapes_every_control_char)
{
	char out[16], want[16];
	uint8_t c;

	for (int k = 0; k < 0x20; k++) {
		c = (uint8_t)k;
		snprintf(want, sizeof(want), "\"\\u%04x\"", k);
		cr_assert_eq(rc_json_write_string(out, sizeof(out), &c, 1), 8);
		cr_assert_arr_eq(out, want, 8, "char 0x%02x", k);
		cr_assert_eq(rc_json_string_len(&c, 1), 8);
	}
	cr_assert_eq(rc_json_write_string(out, sizeof(out), "\"", 1), 4);
	cr_assert_arr_eq(out, "\"\\\"\"", 4);
	cr_assert_eq(rc_json_write_string(out, sizeof(out), "\\", 1), 4);
	cr_assert_arr_eq(out, "\"\\\\\"", 4);
	/* DEL, '/', and UTF-8 pass through. */
	cr_assert_eq(rc_json_write_string(out, sizeof(out), "\x7f/\xc3\xa9", 4), 6);
	cr_assert_arr_eq(out, "\"\x7f/\xc3\xa9\"", 6);
	cr_assert_eq(rc_json_write_string(out, sizeof(out), "", 0), 2);
	cr_assert_eq(rc_json_write_string(out, 1, "", 0), -ENOSPC);
}

/* Minimal unescaper for what the writer produces (\" \\ \u00xx). */
static size_t unescape(const char *s, size_t len, uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\') {
			out[n++] = (uint8_t)s[i];
		} else if (s[i + 1] == 'u') {
			unsigned v;

			cr_assert_eq(sscanf(s + i + 2, "%4x", &v), 1);
			out[n++] = (uint8_t)v;
			i += 5;
		} else {
			out[n++] = (uint8_t)s[++i];
		}
	}
	return n;
}

static const jsmntok_t *obj_get(const char *js, const jsmntok_t *t, int ntok,
				const char *key)
{
	for (int k = 1; k + 1 < ntok; k++)
		if (t[k].type == JSMN_STRING && t[k].size == 1 &&
		    (size_t)(t[k].end - t[k].start) == strlen(key) &&
		    !memcmp(js + t[k].start, key, strlen(key)))
			return &t[k + 1];
	return NULL;
}

/* Random topics and payloads of every form: the msg re-tokenizes with jsmn
 * into the same topic, seq and data. */
Test(json_write, msg_round_trip_through_jsmn)
{
	static char out[8192];
	static uint8_t data[1024], back[2048];
	char topic[40];
	jsmntok_t tok[64];
	jsmn_parser p;

	srand(8259);
	for (int round = 0; round < 3000; round++) {
		enum rc_json_data kind = (enum rc_json_data)(round % 3);
		size_t tlen = 1 + (size_t)rand() % 30, dlen = (size_t)rand() % 1024;
		uint64_t seq = (uint64_t)rand() * (uint64_t)rand();
		const jsmntok_t *v;
		ssize_t n;
		int r;

		for (size_t k = 0; k < tlen; k++)
			topic[k] = (char)(0x21 + rand() % 94); /* incl. " and \ */
		for (size_t k = 0; k < dlen; k++)
			data[k] = (uint8_t)(kind == RC_JSON_DATA_BINARY ? rand()
								       : rand() % 128);
		if (kind == RC_JSON_DATA_JSON)
			dlen = (size_t)sprintf((char *)data, "[%d,\"x\",{\"k\":null}]",
					       rand());
		n = rc_json_write_msg(out, rc_json_msg_bound(tlen, dlen, kind),
				      topic, tlen, seq, data, dlen, kind);
		cr_assert_eq(n, (ssize_t)rc_json_msg_len(topic, tlen, seq, data,
							 dlen, kind));
		cr_assert(rc_json_valid(out, (size_t)n), "%.*s", (int)n, out);
		jsmn_init(&p);
		r = jsmn_parse(&p, out, (size_t)n, tok, 64);
		cr_assert_gt(r, 0);
		cr_assert_eq(tok[0].type, JSMN_OBJECT);
		cr_assert_eq(tok[0].end, n);
		v = obj_get(out, tok, r, "topic");
		cr_assert_eq(unescape(out + v->start, (size_t)(v->end - v->start),
				      back), tlen);
		cr_assert_arr_eq(back, topic, tlen);
		v = obj_get(out, tok, r, "seq");
		cr_assert_eq(strtoull(out + v->start, NULL, 10), seq);
		v = obj_get(out, tok, r, "data");
		if (kind == RC_JSON_DATA_JSON) {
			cr_assert_eq((size_t)(v->end - v->start), dlen);
			cr_assert_arr_eq(out + v->start, data, dlen);
			continue;
		}
		cr_assert_eq(v->type, JSMN_STRING);
		if (kind == RC_JSON_DATA_TEXT) {
			cr_assert_eq(unescape(out + v->start,
					      (size_t)(v->end - v->start), back),
				     dlen);
		} else {
			cr_assert_eq(rc_base64_decode(back, sizeof(back),
						      out + v->start,
						      (size_t)(v->end - v->start)),
				     (ssize_t)dlen);
			cr_assert_not_null(obj_get(out, tok, r, "enc"));
		}
		cr_assert_arr_eq(back, data, dlen);
	}
}

/* A pub's data goes out in a msg unchanged. */
Test(json_write, pub_data_into_msg)
{
	const char *in = "{\"op\":\"pub\",\"topic\":\"room\",\"data\":{\"t\":\"\\u00e9\",\"n\":[1,2.5]}}";
	const char *want = "{\"op\":\"msg\",\"topic\":\"room\",\"seq\":5,\"data\":{\"t\":\"\\u00e9\",\"n\":[1,2.5]}}";
	struct rc_cmd cmd;
	char out[256];
	ssize_t n;

	cr_assert_eq(parse_str(in, &cmd), 0);
	n = rc_json_write_msg(out, sizeof(out), cmd.topic, cmd.topic_len, 5,
			      cmd.data.p, cmd.data.len, RC_JSON_DATA_JSON);
	cr_assert_eq(n, (ssize_t)strlen(want));
	cr_assert_arr_eq(out, want, (size_t)n);
}
