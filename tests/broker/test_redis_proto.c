/* broker/redis_proto.c: redis:// URLs, RESP commands, key and channel
 * names, channel payloads.  Each parser whole, and (payloads) at every
 * truncation. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "broker/redis.h"
#include "proto/json.h"

TestSuite(redis_proto);

/* Arrays, not pointers: Criterion copies the cases into each test's
 * process, where the parent's addresses mean nothing. */
struct url_case {
	char url[40];
	int ret;
	char addr[32], user[8], pass[8];
	unsigned db;
};

ParameterizedTestParameters(redis_proto, url)
{
	static struct url_case cases[] = {
		{ "redis://127.0.0.1:6379", 0, "tcp://127.0.0.1:6379", "", "", 0 },
		{ "redis://localhost", 0, "tcp://localhost:6379", "", "", 0 },
		{ "rediss://r.example:6380/3", 0, "tls://r.example:6380", "", "", 3 },
		{ "redis://:s3cret@h:1", 0, "tcp://h:1", "", "s3cret", 0 },
		{ "redis://bob:p%40ss@h:2/0", 0, "tcp://h:2", "bob", "p@ss", 0 },
		{ "redis://[::1]:7000", 0, "tcp://[::1]:7000", "", "", 0 },
		{ "redis://[::1]", 0, "tcp://[::1]:6379", "", "", 0 },
		{ "redis://h:0", -EINVAL, "", "", "", 0 },
		{ "redis://h:65536", -EINVAL, "", "", "", 0 },
		{ "redis://h:12a", -EINVAL, "", "", "", 0 },
		{ "redis://:6379", -EINVAL, "", "", "", 0 },
		{ "redis://h/x", -EINVAL, "", "", "", 0 },
		{ "redis://a:b%zz@h", -EINVAL, "", "", "", 0 },
		{ "redis://a:b%00@h", -EINVAL, "", "", "", 0 },
		{ "redis://[::1", -EINVAL, "", "", "", 0 },
		{ "http://h:1", -EINVAL, "", "", "", 0 },
		{ "redis://", -EINVAL, "", "", "", 0 },
		{ "redis://h h:1", -EINVAL, "", "", "", 0 },
	};
	return cr_make_param_array(struct url_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct url_case *c, redis_proto, url)
{
	struct bk_redis_url u;

	cr_assert_eq(bk_redis_url_parse(c->url, strlen(c->url), &u), c->ret, "%s", c->url);
	if (c->ret)
		return;
	cr_assert_str_eq(u.addr, c->addr);
	cr_assert_str_eq(u.user, c->user);
	cr_assert_str_eq(u.pass, c->pass);
	cr_assert_eq(u.db, c->db);
}

Test(redis_proto, resp_command)
{
	struct bk_resp b = { 0 };
	const char *argv[] = { "SET", "k", "a\r\nb" };
	size_t lens[] = { 3, 1, 4 };
	const char want[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n";

	bk_resp_cmd(&b, 3, argv, lens);
	cr_assert_not(b.oom);
	cr_assert_eq(b.len, sizeof(want) - 1);
	cr_assert_eq(memcmp(b.p, want, b.len), 0);
	bk_resp_free(&b);
}

Test(redis_proto, key_and_channel_names)
{
	char key[RC_TOPIC_MAX * 3 + 16], topic[RC_TOPIC_MAX + 1];
	static const char *const names[] = { "news", "a}b", "%7D", "{x}", "}", "%" };
	char longest[RC_TOPIC_MAX];

	cr_assert_eq(bk_redis_key(key, sizeof(key), "news", 4, ":m"), 11);
	cr_assert_str_eq(key, "rc:{news}:m");
	bk_redis_key(key, sizeof(key), "a}b", 3, ":h");
	cr_assert_str_eq(key, "rc:{a%7Db}:h", "a '}' would end the hash tag early");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = bk_redis_key(key, sizeof(key), names[i], strlen(names[i]), "");
		cr_assert_eq(bk_redis_chan_topic(key, n, topic), (ssize_t)strlen(names[i]));
		cr_assert_str_eq(topic, names[i]);
	}
	memset(longest, '}', sizeof(longest));
	size_t n = bk_redis_key(key, sizeof(key), longest, sizeof(longest), ":m");
	cr_assert_eq(n, 4 + 3 * sizeof(longest) + 3, "a 255-byte name of '}' fits");
	cr_assert_eq(bk_redis_chan_topic("rc:{}", 5, topic), -EINVAL);
	cr_assert_eq(bk_redis_chan_topic("other", 5, topic), -EINVAL);
	cr_assert_eq(bk_redis_chan_topic("rc:{a%7}", 8, topic), -EINVAL);
}

Test(redis_proto, payload)
{
	static const char p[] = "42:abc123:2:1700000000123:bin:ary";
	struct bk_redis_payload pl;

	cr_assert_eq(bk_redis_payload_parse(p, sizeof(p) - 1, &pl), 0);
	cr_assert_eq(pl.seq, 42);
	cr_assert_str_eq(pl.epoch, "abc123");
	cr_assert_eq(pl.opcode, RC_OP_BINARY);
	cr_assert_eq(pl.time_ms, 1700000000123ull);
	cr_assert_eq(pl.len, 7);
	cr_assert_eq(memcmp(pl.data, "bin:ary", 7), 0);
	/* Every truncation before the payload is refused (an empty payload is
	 * a message). */
	for (size_t n = 0; n < sizeof(p) - 1 - 7; n++)
		cr_assert_eq(bk_redis_payload_parse(p, n, &pl), -EINVAL, "cut at %zu", n);
	cr_assert_eq(bk_redis_payload_parse("0:e:1:1:x", 9, &pl), -EINVAL, "seq 0");
	cr_assert_eq(bk_redis_payload_parse("1:e:9:1:x", 9, &pl), -EINVAL, "opcode");
	cr_assert_eq(bk_redis_payload_parse("1::1:1:x", 8, &pl), -EINVAL, "empty epoch");
	cr_assert_eq(bk_redis_payload_parse("1:e-1:1:1:x", 11, &pl), -EINVAL, "epoch text");
	cr_assert_eq(bk_redis_payload_parse("99999999999999999999:e:1:1:x", 28, &pl), -EINVAL,
		     "seq overflow");
}
