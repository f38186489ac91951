/* The JSON control protocol of "GET /ws" (see broker/PROTOCOL.md): the
 * command parser for client frames (proto/json.c) and the writers for server
 * frames (proto/json_write.c).  Sans-I/O and allocation-free: parsed strings
 * are spans into the caller's frame buffer, writers fill caller buffers and
 * never write past cap.
 *
 *   client {"op":"sub","topic":"t","id":1}          optional "from":<seq>
 *   client {"op":"unsub","topic":"t","id":2}
 *   client {"op":"pub","topic":"t","data":<any JSON value>,"id":3}
 *   client {"op":"ping","id":4}
 *   client {"op":"auth","token":"<JWT>","id":5}      also "refresh"
 *   server {"op":"msg","topic":"t","seq":42,"data":<value>}
 *          binary payloads: "data":"<base64>","enc":"base64"
 *   server {"op":"ack","id":1,"seq":41,"epoch":"..."}
 *   server {"op":"err","id":3,"code":"forbidden","reason":"..."}
 *   server {"op":"gap","topic":"t","from":10,"to":20}
 *   server {"op":"welcome","version":"...","epoch":"..."}
 *
 * Validation is strict RFC 8259 (grammar, UTF-8, no trailing bytes) and is
 * done by this module itself before jsmn tokenizes: jsmn 1.1.0, even with
 * JSMN_STRICT, accepts [1 2], {"a":1 "b":2}, [tru], [01] and raw control
 * characters in strings, and a command's "data" is copied verbatim into
 * every subscriber's frame, so it must be valid JSON byte for byte. */
#ifndef RC_PROTO_JSON_H
#define RC_PROTO_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/http.h" /* struct rc_span */

#define RC_TOPIC_MAX 255        /* bytes of a topic name */
#define RC_CMD_ID_MAX 64        /* bytes of an id's raw JSON text */
#define RC_CMD_MAX_TOKENS 1024  /* JSON values + keys in one command */
#define RC_CMD_MAX_KEYS 32      /* keys of the command object itself */
#define RC_JSON_MAX_DEPTH 256   /* nesting of arrays/objects, anywhere */

/* Topic names: 1..RC_TOPIC_MAX bytes of valid UTF-8 with no control
 * characters (U+0000-U+001F, U+007F-U+009F) and no spaces (U+0020 and the
 * other Unicode White_Space code points, e.g. U+00A0, U+2028, U+3000).
 * The same rule serves the URL form (/sub/<topic>) after percent-decoding. */
bool rc_topic_valid(const uint8_t *p, size_t len);

/* Subject patterns (NATS style, broker/PROTOCOL.md "Patterns"): a topic is
 * '.'-separated tokens; a token that is exactly "*" matches one token, a
 * last token exactly ">" one or more.  rc_topic_is_pattern: some token is
 * exactly "*" or ">" (subscribe only, never publish).  rc_topic_matches:
 * whether pattern pat matches topic (taken literally), in O(length). */
bool rc_topic_is_pattern(const char *p, size_t len);
/* The end of the token of p starting at i: the next '.', or len. */
size_t rc_topic_token_end(const char *p, size_t len, size_t i);
bool rc_topic_matches(const char *pat, size_t plen, const char *topic, size_t tlen);

enum rc_cmd_op {
	RC_CMD_NONE = 0, /* only after a failed parse */
	RC_CMD_SUB,
	RC_CMD_UNSUB,
	RC_CMD_PUB,
	RC_CMD_PING,
	RC_CMD_AUTH,     /* {"op":"auth","token":"<JWT>"}: first command */
	RC_CMD_PRESENCE, /* {"op":"presence","topic":…}: who is subscribed */
	RC_CMD_PRESENCE_STATS, /* {"op":"presence_stats","topic":…}: counts */
	RC_CMD_REFRESH,  /* {"op":"refresh","token":"<JWT>"}: a newer token */
};

/* One parsed client command.  Spans point into the parsed buffer. */
struct rc_cmd {
	enum rc_cmd_op op;
	bool has_id;
	bool has_from;           /* sub only */
	struct rc_span id;       /* raw JSON text of the id, a number or a string
				  * with its quotes (1, 1.5e3, "a\"b"): echo it
				  * verbatim; at most RC_CMD_ID_MAX bytes */
	uint64_t from;           /* sub: resume after this seq */
	struct rc_span token;    /* auth, refresh: the string's raw body */
	struct rc_span data;     /* pub: raw text of the value, verbatim; valid
				  * JSON of any type, no surrounding spaces */
	size_t topic_len;        /* sub, unsub, pub: 1..RC_TOPIC_MAX */
	char topic[RC_TOPIC_MAX + 1]; /* unescaped, validated, NUL-terminated
				       * (the NUL is not counted) */
	const char *err_code;    /* on failure: static, see rc_cmd_parse */
	const char *err_reason;  /* on failure: static human text */
};

/* Parses one command frame buf[0..len) into *cmd.  Returns 0, or a negative
 * errno with cmd->err_code and cmd->err_reason set (both static strings):
 *   -EBADMSG     "bad_json"       not strict JSON, trailing bytes, not an
 *                                 object, a duplicate key at the top level
 *   -E2BIG       "too_complex"    more than RC_CMD_MAX_TOKENS values and keys,
 *                                 more than RC_CMD_MAX_KEYS top-level keys
 *                                 (duplicate detection is quadratic in them),
 *                                 nesting deeper than RC_JSON_MAX_DEPTH, or
 *                                 a frame of INT_MAX bytes or more
 *   -EOPNOTSUPP  "bad_op"         op is not one of the strings "sub", "unsub",
 *                                 "pub", "ping", "auth", "refresh", "presence",
 *                                 "presence_stats"
 *   -EINVAL      "missing_field"  no op, or no topic/data/token where the op
 *                                 needs it
 *   -EINVAL      "bad_field"      id not a number or string, or longer than
 *                                 RC_CMD_ID_MAX; from not an integer in
 *                                 0..2^64-1
 *   -EINVAL      "bad_topic"      topic not a string, or not a valid topic
 *                                 (see rc_topic_valid; escapes are decoded
 *                                 first, lone surrogates are refused)
 * Unknown keys, and known keys that the
 * op does not use ("data" on a sub, "from" on a pub), are ignored so that
 * newer clients keep working with older servers.  When the frame is valid
 * JSON and its id is usable, cmd->has_id and cmd->id are set even on
 * failure, so the err can carry the id.  Uses about 20 KiB of stack (the
 * jsmn token array); allocates nothing. */
int rc_cmd_parse(const uint8_t *buf, size_t len, struct rc_cmd *cmd);

/* True if p[0..len) is exactly one strict RFC 8259 JSON value (any type),
 * optionally surrounded by whitespace, in valid UTF-8, nested at most
 * RC_JSON_MAX_DEPTH deep.  No allocation, one pass, any length. */
bool rc_json_valid(const void *p, size_t len);

/* How a payload is carried in a "msg" envelope. */
enum rc_json_data {
	RC_JSON_DATA_JSON,   /* embedded verbatim; must be rc_json_valid() */
	RC_JSON_DATA_TEXT,   /* a JSON string; must be valid UTF-8 */
	RC_JSON_DATA_BINARY, /* a base64 JSON string, plus "enc":"base64" */
};

/* Picks the envelope form for a payload: a text payload that is valid JSON
 * is embedded, other valid UTF-8 text becomes a string, and binary payloads
 * or text that is not valid UTF-8 (possible over HTTP publish) use base64. */
enum rc_json_data rc_json_data_kind(const void *p, size_t len, bool text);

/* Exact length of s[0..len) as a quoted JSON string: '"' and '\' get a
 * backslash, U+0000-U+001F become \u00xx (lower-case hex), everything else,
 * including UTF-8 sequences, passes through. */
size_t rc_json_string_len(const void *s, size_t len);

/* Writes s[0..len) as a quoted JSON string (see rc_json_string_len).  s
 * should be valid UTF-8 or the output is not valid JSON.  Returns the
 * length or -ENOSPC. */
ssize_t rc_json_write_string(char *out, size_t cap, const void *s, size_t len);

/* Upper bound of the "msg" frame for a topic and payload of these lengths,
 * without looking at the bytes (text is counted as if every byte needed
 * \u00xx).  Saturates at SIZE_MAX. */
size_t rc_json_msg_bound(size_t topic_len, size_t data_len,
			 enum rc_json_data kind);

/* Exact length that rc_json_write_msg() will produce (scans text data). */
size_t rc_json_msg_len(const char *topic, size_t topic_len, uint64_t seq,
		       const void *data, size_t data_len,
		       enum rc_json_data kind);

/* Writes {"op":"msg","topic":..,"seq":..,"data":..} with data in the given
 * form (see enum rc_json_data; JSON data is trusted, not re-validated).
 * Returns the length or -ENOSPC. */
ssize_t rc_json_write_msg(char *out, size_t cap, const char *topic,
			  size_t topic_len, uint64_t seq, const void *data,
			  size_t data_len, enum rc_json_data kind);

/* Upper bound of an ack with an id of id_len raw bytes and an epoch. */
size_t rc_json_ack_bound(size_t id_len, size_t epoch_len);

/* Writes {"op":"ack","id":<id>[,"seq":<seq>][,"epoch":"<epoch>"]}.  id is the
 * raw id text from struct rc_cmd (trusted, written verbatim) and must be
 * present (-EINVAL otherwise); epoch may be NULL.  Returns the length or
 * -ENOSPC / -EINVAL. */
ssize_t rc_json_write_ack(char *out, size_t cap, struct rc_span id,
			  bool has_seq, uint64_t seq, const char *epoch);

/* Upper bound of an err with these field lengths (id_len 0: no id). */
size_t rc_json_err_bound(size_t id_len, size_t code_len, size_t reason_len);

/* Writes {"op":"err"[,"id":<id>],"code":"<code>"[,"reason":"<reason>"]}.
 * id.p NULL: no id (the request had none, or it was unreadable); reason may
 * be NULL.  code and reason are NUL-terminated and escaped.  Returns the
 * length or -ENOSPC. */
ssize_t rc_json_write_err(char *out, size_t cap, struct rc_span id,
			  const char *code, const char *reason);

/* Upper bound of a gap for a topic of topic_len bytes. */
size_t rc_json_gap_bound(size_t topic_len);

/* Writes {"op":"gap","topic":..,"from":<from>,"to":<to>}: messages from..to
 * of the topic are lost for this subscriber.  Returns the length or
 * -ENOSPC. */
ssize_t rc_json_write_gap(char *out, size_t cap, const char *topic,
			  size_t topic_len, uint64_t from, uint64_t to);

/* Upper bound of a welcome with these field lengths. */
size_t rc_json_welcome_bound(size_t version_len, size_t epoch_len);

/* Writes {"op":"welcome","version":"<version>","epoch":"<epoch>"}, the first
 * frame on a JSON-mode connection; both strings NUL-terminated and escaped.
 * Returns the length or -ENOSPC. */
ssize_t rc_json_write_welcome(char *out, size_t cap, const char *version,
			      const char *epoch);

#endif
