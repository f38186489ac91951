/* The client side of the JSON control protocol of "GET /ws" (see
 * broker/PROTOCOL.md): a parser for server frames (welcome, ack, msg, gap,
 * err) and writers for client commands (sub, unsub, pub, ping).  Sans-I/O
 * and allocation-free like proto/json.h: parsed values are spans into the
 * caller's frame buffer, writers fill caller buffers. */
#ifndef RC_PROTO_JSON_CLIENT_H
#define RC_PROTO_JSON_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/http.h" /* struct rc_span */
#include "proto/json.h"

enum rc_srv_op {
	RC_SRV_UNKNOWN = 0, /* a valid object with an op we do not know */
	RC_SRV_WELCOME,
	RC_SRV_ACK,
	RC_SRV_MSG,
	RC_SRV_GAP,
	RC_SRV_ERR,
	RC_SRV_JOIN,        /* presence: a connection subscribed to topic */
	RC_SRV_LEAVE,       /* presence: a connection left topic */
};

/* One parsed server message.  Spans are raw JSON text inside the parsed
 * buffer: strings keep their quotes and escapes (decode them with
 * rc_json_unescape()).  Absent fields have a NULL span and false flags. */
struct rc_srv_msg {
	enum rc_srv_op op;
	struct rc_span topic;   /* msg, gap: a JSON string */
	struct rc_span id;      /* ack, err: raw id text (number or string) */
	struct rc_span data;    /* msg: the raw value, any JSON type */
	struct rc_span epoch;   /* welcome, ack: a JSON string */
	struct rc_span code;    /* err: a JSON string */
	struct rc_span reason;  /* err: a JSON string */
	struct rc_span version; /* welcome */
	struct rc_span user;    /* join, leave: a JSON string */
	struct rc_span info;    /* join, leave: a JSON string */
	bool has_seq, has_from, has_to, has_conn;
	bool base64;            /* msg: "enc":"base64" */
	uint64_t seq, from, to, conn;
};

/* Parses one server frame buf[0..len).  The frame must be one strict JSON
 * object (checked with rc_json_valid) with a string "op".  Unknown keys are
 * ignored (newer servers), and so is an unknown op (RC_SRV_UNKNOWN).
 * Returns 0, -EBADMSG for anything that is not such an object or has a
 * known field of the wrong type (seq/from/to must be integers in
 * 0..2^64-1). */
int rc_srv_parse(const uint8_t *buf, size_t len, struct rc_srv_msg *m);

/* Decodes the JSON string literal s (with its quotes, as in the spans
 * above) into out as UTF-8.  The result is never longer than s.len - 2.
 * Returns the decoded length, -EINVAL if s is not a string literal (or has
 * a lone surrogate escape), -ENOSPC if cap is too small. */
ssize_t rc_json_unescape(char *out, size_t cap, struct rc_span s);

/* Upper bound of a command written by the functions below for a topic of
 * topic_len bytes and data of data_len bytes (as_string: counted as if every
 * byte needed \u00xx). */
size_t rc_json_cmd_bound(size_t topic_len, size_t data_len, bool as_string);

/* Writes {"op":"sub","topic":<topic>,"id":<id>[,"from":<from>]}.  The topic
 * should be valid (rc_topic_valid); it is quoted and escaped here.  Returns
 * the length or -ENOSPC. */
ssize_t rc_json_write_sub(char *out, size_t cap, const char *topic,
			  size_t topic_len, uint64_t id, bool has_from,
			  uint64_t from);

/* Writes {"op":"unsub","topic":<topic>,"id":<id>}.  Returns the length or
 * -ENOSPC. */
ssize_t rc_json_write_unsub(char *out, size_t cap, const char *topic,
			    size_t topic_len, uint64_t id);

/* Writes {"op":"pub","topic":<topic>,"data":<data>,"id":<id>}: data
 * verbatim when as_string is false (the caller checked rc_json_valid), else
 * as a JSON string (data must then be valid UTF-8).  Returns the length or
 * -ENOSPC. */
ssize_t rc_json_write_pub(char *out, size_t cap, const char *topic,
			  size_t topic_len, const void *data, size_t data_len,
			  bool as_string, uint64_t id);

/* Writes {"op":"ping","id":<id>}.  Returns the length or -ENOSPC. */
ssize_t rc_json_write_ping(char *out, size_t cap, uint64_t id);

#endif
