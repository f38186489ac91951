/* libFuzzer harness for proto/json.c: any input goes to rc_cmd_parse.  A
 * parsed command is answered with an ack (or an err when it failed) and its
 * data is written into a msg, each into a buffer of exactly the bound
 * helper's size; every output must be strict JSON (rc_json_valid) and
 * tokenize with jsmn into one object.  The raw input is also sent through
 * rc_json_data_kind + rc_json_write_msg as a text and as a binary payload,
 * and base64 must round-trip it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "proto/base64.h"
#include "proto/json.h"

static void check_json(const char *p, ssize_t n, size_t bound)
{
	jsmntok_t tok[2048];
	jsmn_parser jp;
	int r;

	if (n < 0 || (size_t)n > bound)
		abort();
	if (!rc_json_valid(p, (size_t)n))
		abort();
	jsmn_init(&jp);
	r = jsmn_parse(&jp, p, (size_t)n, tok, 2048);
	if (r < 1 || tok[0].type != JSMN_OBJECT || tok[0].end != n)
		abort();
}

static void write_msg(const char *topic, size_t tlen, const uint8_t *d,
		      size_t dlen, enum rc_json_data kind)
{
	size_t bound = rc_json_msg_bound(tlen, dlen, kind);
	char *out = malloc(bound ? bound : 1);
	ssize_t n = rc_json_write_msg(out, bound, topic, tlen, 7, d, dlen, kind);

	check_json(out, n, bound);
	if ((size_t)n != rc_json_msg_len(topic, tlen, 7, d, dlen, kind))
		abort();
	/* One byte short must fail cleanly. */
	if (rc_json_write_msg(out, (size_t)n - 1, topic, tlen, 7, d, dlen,
			      kind) != -ENOSPC)
		abort();
	free(out);
}

static void round_trip_base64(const uint8_t *d, size_t len)
{
	size_t elen = rc_base64_encoded_len(len);
	char *enc = malloc(elen + 1);
	uint8_t *dec = malloc(len + 1);

	if (rc_base64_encode(enc, elen, d, len) != (ssize_t)elen ||
	    rc_base64_decode(dec, len, enc, elen) != (ssize_t)len ||
	    memcmp(dec, d, len) != 0)
		abort();
	/* Decoding arbitrary bytes must not crash or overrun. */
	rc_base64_decode(dec, len, (const char *)d, len);
	free(enc);
	free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rc_cmd cmd;
	char out[1024];
	size_t bound;
	ssize_t n;
	int r = rc_cmd_parse(data, size, &cmd);

	if (cmd.has_id && cmd.id.len > RC_CMD_ID_MAX)
		abort();
	if (r == 0) {
		if (cmd.op == RC_CMD_NONE || cmd.err_code)
			abort();
		if (cmd.op != RC_CMD_PING && cmd.op != RC_CMD_AUTH &&
		    cmd.op != RC_CMD_REFRESH &&
		    !rc_topic_valid((const uint8_t *)cmd.topic, cmd.topic_len))
			abort();
		if (cmd.has_id) {
			bound = rc_json_ack_bound(cmd.id.len, 4);
			n = rc_json_write_ack(out, bound, cmd.id, true, 41, "ep\"1");
			check_json(out, n, bound);
		}
		if (cmd.op == RC_CMD_PUB) {
			if (!rc_json_valid(cmd.data.p, cmd.data.len))
				abort();
			write_msg(cmd.topic, cmd.topic_len,
				  (const uint8_t *)cmd.data.p, cmd.data.len,
				  RC_JSON_DATA_JSON);
		}
		if (cmd.op == RC_CMD_SUB || cmd.op == RC_CMD_UNSUB) {
			bound = rc_json_gap_bound(cmd.topic_len);
			n = rc_json_write_gap(out, bound, cmd.topic,
					      cmd.topic_len, cmd.from, cmd.from + 1);
			check_json(out, n, bound);
		}
	} else {
		if (r >= 0 || !cmd.err_code || !cmd.err_reason ||
		    cmd.op != RC_CMD_NONE)
			abort();
		bound = rc_json_err_bound(cmd.has_id ? cmd.id.len : 0,
					  strlen(cmd.err_code),
					  strlen(cmd.err_reason));
		n = rc_json_write_err(out, bound, cmd.has_id ? cmd.id
							     : (struct rc_span){ 0 },
				      cmd.err_code, cmd.err_reason);
		check_json(out, n, bound);
	}
	/* The raw input as a published payload, text and binary. */
	write_msg("t", 1, data, size, rc_json_data_kind(data, size, true));
	write_msg("t", 1, data, size, rc_json_data_kind(data, size, false));
	round_trip_base64(data, size);
	return 0;
}
