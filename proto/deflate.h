/* permessage-deflate (RFC 7692): negotiation and the zlib raw-deflate streams.
 *
 * Negotiation is sans-I/O string work.  The streams wrap zlib; they allocate
 * only in *_init (zlib's own state) and never per message. */
#ifndef RC_PROTO_DEFLATE_H
#define RC_PROTO_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>

#include "proto/http.h"

/* The parameters of one accepted offer, as both sides will use them. */
struct rc_pmd_params {
	bool server_no_context_takeover;
	bool client_no_context_takeover;
	uint8_t server_max_window_bits; /* 8..15; 15 when not negotiated */
	uint8_t client_max_window_bits; /* 8..15; 15 when not negotiated */
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
	uint8_t max_window_bits; /* the largest window we will use, 9..15 */
};

/* Server: walks every offer in the Sec-WebSocket-Extensions value(s)
 * (offers separated by commas, parameters by semicolons; several headers are
 * passed joined by ", ") and accepts the first permessage-deflate offer whose
 * parameters are valid.  An offer with an unknown parameter, a duplicate, or
 * a bad value is declined (the next one is tried), never a handshake error.
 * Returns 1 and fills *out when an offer was accepted, 0 when none was. */
int rc_pmd_negotiate(struct rc_span header, const struct rc_pmd_config *cfg,
		     struct rc_pmd_params *out);

/* Server: writes the Sec-WebSocket-Extensions value answering an accepted
 * offer ("permessage-deflate; server_no_context_takeover; ...").  Returns the
 * length (NUL-terminated) or -ENOSPC. */
ssize_t rc_pmd_write_response(char *out, size_t cap,
			      const struct rc_pmd_params *p);

/* Client: writes our offer.  Returns the length (NUL-terminated) or -ENOSPC. */
ssize_t rc_pmd_write_offer(char *out, size_t cap, const struct rc_pmd_config *cfg);

/* Client: validates the server's answer to our offer (an unknown parameter,
 * a parameter we did not allow, a window larger than we offered, or more
 * than one extension is -EPROTO).  An empty header means "not negotiated":
 * returns 0 with *accepted false. */
int rc_pmd_parse_response(struct rc_span header, const struct rc_pmd_config *cfg,
			  struct rc_pmd_params *out, bool *accepted);

/* Compressor for one direction.  window_bits 9..15 (zlib cannot produce a
 * raw stream with an 8-bit window: callers that negotiated 8 send those
 * messages uncompressed, which RFC 7692 allows message by message). */
struct rc_deflater {
	z_stream z;
	bool no_context_takeover;
	bool ready;
};

int rc_deflater_init(struct rc_deflater *d, int window_bits,
		     bool no_context_takeover, int level);
void rc_deflater_free(struct rc_deflater *d);

/* Compresses one whole message into out[0..cap), without the trailing
 * 00 00 FF FF (RFC 7692 section 7.2.1).  Returns the compressed length, or
 * -ENOSPC when it does not fit (the stream is then reset; send the message
 * uncompressed).  A message of length 0 gives the single byte 0x00. */
ssize_t rc_deflate_message(struct rc_deflater *d, const uint8_t *in,
			   size_t len, uint8_t *out, size_t cap);

/* Upper bound of rc_deflate_message's output for len input bytes. */
size_t rc_deflate_bound(size_t len);

/* Decompressor for one direction; bounded output. */
struct rc_inflater {
	z_stream z;
	bool no_context_takeover;
	bool ready;
};

int rc_inflater_init(struct rc_inflater *f, bool no_context_takeover);
void rc_inflater_free(struct rc_inflater *f);

/* Inflates a piece of a compressed message, appending to out[*out_len..cap).
 * Call with last=true for the final piece (the 00 00 FF FF tail is added
 * here).  Returns 0, -EMSGSIZE when the output would pass cap (the message
 * is too big: a decompression bomb is stopped here), or -EPROTO when the
 * data is not valid deflate.  After the last piece the context is reset
 * when no_context_takeover. */
int rc_inflate_piece(struct rc_inflater *f, const uint8_t *in, size_t len,
		     bool last, uint8_t *out, size_t cap, size_t *out_len);

/* Compress once: deflates a message with a fresh context (no context
 * takeover) so the result is a valid permessage-deflate payload for every
 * peer whose negotiated server_max_window_bits is >= window_bits.  Uses the
 * caller's deflater (initialised with no_context_takeover) as scratch.
 * Same returns as rc_deflate_message. */
ssize_t rc_deflate_once(struct rc_deflater *d, const uint8_t *in, size_t len,
			uint8_t *out, size_t cap);

#endif
