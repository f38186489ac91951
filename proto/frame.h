/* RFC 6455 section 5 frame codec: headers, masking, fragmentation rules and
 * close payloads.  Pure functions over byte buffers; no allocation.
 *
 * Errors are negative errno values with one meaning each, and
 * rc_close_code_for() maps them to the close code to send:
 *   -EPROTO   protocol violation               -> 1002
 *   -ENOTSUP  data type the endpoint refuses    -> 1003
 *   -EILSEQ   invalid UTF-8 in a text message   -> 1007
 *   -EMSGSIZE frame or message over a limit     -> 1009
 *   anything else (internal failure)            -> 1011 */
#ifndef RC_PROTO_FRAME_H
#define RC_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/types.h"
#include "proto/utf8.h"

#define RC_FRAME_MAX_HEADER 14     /* 2 + 8 (64-bit length) + 4 (mask) */
#define RC_CONTROL_MAX_PAYLOAD 125

struct rc_frame_header {
	uint64_t payload_len;
	uint8_t mask[4];
	uint8_t opcode;
	uint8_t header_len; /* bytes the header occupies on the wire, 2..14 */
	bool fin;
	bool rsv1; /* "compressed" when permessage-deflate is on */
	bool masked;
};

/* What the receiving side expects; the parser enforces it. */
struct rc_frame_rules {
	bool expect_masked;  /* true on a server (clients must mask), false on a client */
	bool allow_rsv1;     /* permessage-deflate negotiated */
	uint64_t max_payload;/* per frame; 0 means no limit beyond 2^63-1 */
};

/* Parses one frame header from buf[0..len).  Returns the header length
 * (2..14) on success, -EAGAIN if more bytes are needed, or -EPROTO (reserved
 * opcode or RSV bit, wrong masking, control frame longer than 125 bytes or
 * fragmented, non-minimal or 2^63+ length) or -EMSGSIZE (over max_payload).
 * Bits checked by rules are reported only when the header is complete. */
int rc_frame_parse_header(const uint8_t *buf, size_t len,
			  const struct rc_frame_rules *rules,
			  struct rc_frame_header *h);

/* Writes a frame header into out (at least RC_FRAME_MAX_HEADER bytes) and
 * returns its length.  mask is NULL for an unmasked (server) frame; when
 * given, the caller masks the payload with rc_ws_mask(). */
size_t rc_frame_write_header(uint8_t *out, uint8_t opcode, bool fin, bool rsv1,
			     uint64_t payload_len, const uint8_t mask[4]);

/* XORs data with the 4-byte mask, starting at mask position `offset`
 * (payload bytes already processed, so a payload split across buffers is
 * unmasked piecewise).  Works a word at a time on unaligned data.
 * Returns the offset for the next piece. */
uint64_t rc_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4],
		    uint64_t offset);

/* Fragmentation state of one direction of a connection. */
struct rc_msg_state {
	uint8_t opcode;     /* RC_OP_TEXT/BINARY while a message is open, else 0 */
	bool compressed;    /* RSV1 was set on the first frame */
};

/* Checks a data or control frame header against the message in progress and
 * advances the state: a continuation without a start, or a new TEXT/BINARY
 * while a message is open, is -EPROTO; RSV1 on a continuation or control
 * frame is -EPROTO.  Control frames never change the state.  A final
 * continuation closes the message (opcode back to 0), so read st->opcode and
 * st->compressed before the call when that frame needs them. */
int rc_msg_state_next(struct rc_msg_state *st, const struct rc_frame_header *h);

/* Close payloads (RFC 6455 section 5.5.1, 7.4). */

/* True for a code that may appear in a close frame on the wire:
 * 1000-1003, 1007-1011 (and 1012-1014 registered later), 3000-4999. */
bool rc_close_code_valid(uint16_t code);

/* Parses a received close payload.  An empty payload yields 1005 and no
 * reason.  Returns 0, -EPROTO (length 1, or an invalid code) or -EILSEQ
 * (reason not UTF-8).  The reason points into p. */
int rc_close_parse(const uint8_t *p, size_t len, uint16_t *code,
		   const uint8_t **reason, size_t *reason_len);

/* Writes a close payload (code, then reason truncated to fit 123 bytes on a
 * UTF-8 boundary) into out (at least 125 bytes); returns its length.  Code
 * 1005 writes an empty payload. */
size_t rc_close_write(uint8_t *out, uint16_t code, const char *reason,
		      size_t reason_len);

/* The close code to send for an error returned by this module, by utf8.h or
 * by the inflater (see the list at the top of this file). */
uint16_t rc_close_code_for(int err);

#endif
