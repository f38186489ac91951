/* libFuzzer harness for broker/redis_proto.c, the Redis engine's own
 * parsers: the input is read as a redis:// URL, as a channel name and as a
 * channel payload.  A URL that parses gives a dialable address inside its
 * buffer with a port; a channel name that parses names a topic that maps
 * back to the same channel; a payload that parses has its data inside the
 * input.  Key building must never write past its buffer. */
#include <stdlib.h>
#include <string.h>

#include "broker/redis.h"
#include "proto/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct bk_redis_url u;
	struct bk_redis_payload pl;
	char topic[RC_TOPIC_MAX + 1], key[RC_TOPIC_MAX * 3 + 16];
	ssize_t tl;

	if (bk_redis_url_parse(p, size, &u) == 0) {
		if (strncmp(u.addr, u.tls ? "tls://" : "tcp://", 6) != 0 || !strrchr(u.addr, ':') ||
		    strlen(u.addr) >= sizeof(u.addr))
			abort();
	}
	tl = bk_redis_chan_topic(p, size, topic);
	if (tl >= 0) {
		size_t kl = bk_redis_key(key, sizeof(key), topic, (size_t)tl, "");
		char back[RC_TOPIC_MAX + 1];
		if (kl >= sizeof(key) || bk_redis_chan_topic(key, kl, back) != tl ||
		    memcmp(back, topic, (size_t)tl) != 0)
			abort();
	}
	if (size <= RC_TOPIC_MAX) {
		size_t kl = bk_redis_key(key, sizeof(key), p, size, ":m");
		if (kl >= sizeof(key) || key[kl] != 0)
			abort();
	}
	if (bk_redis_payload_parse(p, size, &pl) == 0) {
		if (pl.data < p || pl.data + pl.len != p + size || !pl.seq || !pl.epoch[0])
			abort();
	}
	return 0;
}
