/* The wire types core's public API shows: opcodes, close codes, a parsed
 * HTTP request, the permessage-deflate parameters.  Types only: no
 * functions, no zlib, no other header of ours; installed beside rc.h (the
 * codecs that fill them, proto/frame.h, http.h and deflate.h, are not). */
#ifndef RC_PROTO_TYPES_H
#define RC_PROTO_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rc_opcode {
	RC_OP_CONT = 0x0,
	RC_OP_TEXT = 0x1,
	RC_OP_BINARY = 0x2,
	RC_OP_CLOSE = 0x8,
	RC_OP_PING = 0x9,
	RC_OP_PONG = 0xA,
};

/* Close codes (RFC 6455 section 7.4.1); errno has no words for these. */
enum rc_close_code {
	RC_CLOSE_NORMAL = 1000,
	RC_CLOSE_GOING_AWAY = 1001,
	RC_CLOSE_PROTOCOL = 1002,
	RC_CLOSE_UNSUPPORTED = 1003,
	RC_CLOSE_NO_STATUS = 1005,   /* never sent on the wire */
	RC_CLOSE_ABNORMAL = 1006,    /* never sent on the wire */
	RC_CLOSE_INVALID_DATA = 1007,
	RC_CLOSE_POLICY = 1008,
	RC_CLOSE_TOO_BIG = 1009,
	RC_CLOSE_MANDATORY_EXT = 1010,
	RC_CLOSE_INTERNAL = 1011,
	RC_CLOSE_TRY_AGAIN = 1013,
};

#define RC_HTTP_MAX_HEADERS 64

struct rc_span {
	const char *p;
	size_t len;
};

struct rc_http_header {
	struct rc_span name;
	struct rc_span value; /* surrounding whitespace trimmed */
};

struct rc_http_request {
	struct rc_span method;
	struct rc_span target; /* as sent, e.g. "/sub/a%20b?x=1" */
	struct rc_span path;   /* target up to '?', still percent-encoded */
	struct rc_span query;  /* after '?', empty if none */
	int minor_version;     /* HTTP/1.x */
	size_t num_headers;
	struct rc_http_header headers[RC_HTTP_MAX_HEADERS];
	int status;            /* on error: the HTTP status to answer */
};

/* The parameters of one accepted offer, as both sides will use them.
 *
 * The server compresses with a window of server_max_window_bits, the client
 * with client_max_window_bits; each side resets its compressor after every
 * message when its *_no_context_takeover is set.  Inflaters always use a
 * 32 KiB window (15 bits), which decodes a stream made with any smaller one,
 * so neither side needs the other's window size to decompress. */
struct rc_pmd_params {
	bool server_no_context_takeover;
	bool client_no_context_takeover;
	uint8_t server_max_window_bits; /* 8..15; 15 when not negotiated */
	uint8_t client_max_window_bits; /* 8..15; 15 when not negotiated */
	/* server_max_window_bits appears in the response (the client asked for
	 * it, or our limit is below 15).  Kept apart from the value because a
	 * client that asked for server_max_window_bits=15 expects it echoed
	 * (python-websockets fails the handshake otherwise). */
	bool server_max_window_bits_sent;
};

/* What our side is willing to do. */
struct rc_pmd_config {
	bool enabled;
	/* Server: always answer server_no_context_takeover, so one compressed
	 * frame serves every subscriber (compress once). */
	bool server_no_context_takeover;
	/* Ask the peer to reset its context after each message too: our
	 * inflater then needs no window between messages. */
	bool client_no_context_takeover;
	/* The largest window our compressor will use, 9..15 (0 or >15 mean
	 * 15, 8 means 9).  It bounds only our side: our inflater always has a
	 * 32 KiB window, so limiting the peer would only cost compression. */
	uint8_t max_window_bits;
};

#endif
