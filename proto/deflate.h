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

/* Server: walks every offer in the Sec-WebSocket-Extensions value(s)
 * (offers separated by commas, parameters by semicolons; several headers are
 * passed joined by ", ") and accepts the first permessage-deflate offer whose
 * parameters are valid.  An offer with an unknown parameter, a duplicate, or
 * a bad value is declined (the next one is tried), never a handshake error;
 * so is a syntax error (skipped up to the next comma outside quotes).
 * Names compare case-insensitively; values may be quoted ("10"); spaces and
 * tabs are allowed around every separator.  Window values are 8..15 written
 * without leading zeros; server_max_window_bits needs a value,
 * client_max_window_bits may have none, the two *_no_context_takeover take
 * none.
 *
 * Policy for the accepted offer (cfg->enabled false accepts nothing):
 * - server_no_context_takeover: when the client asked or cfg says so.
 * - client_no_context_takeover: when the client offered it or cfg wants it.
 * - server_max_window_bits: min(requested, cfg->max_window_bits), or
 *   cfg->max_window_bits when not requested; sent when requested or < 15.
 *   A request for 8 is honoured: zlib cannot deflate with 8 bits, so the
 *   caller's rc_deflater_init fails and it sends uncompressed messages.
 * - client_max_window_bits: the client's own value when it offered one (we
 *   never lower it, see max_window_bits), else 15; sent only when < 15,
 *   which implies the client offered the parameter (RFC 7692 7.1.2.2).
 * Returns 1 and fills *out when an offer was accepted, 0 when none was. */
int rc_pmd_negotiate(struct rc_span header, const struct rc_pmd_config *cfg,
		     struct rc_pmd_params *out);

/* Server: writes the Sec-WebSocket-Extensions value answering an accepted
 * offer ("permessage-deflate; server_no_context_takeover; ...") as described
 * at rc_pmd_negotiate.  Returns the length (the text is NUL-terminated; cap
 * counts the NUL), -ENOSPC, or -EINVAL for a window outside 8..15. */
ssize_t rc_pmd_write_response(char *out, size_t cap,
			      const struct rc_pmd_params *p);

/* Client: writes our offer: "permessage-deflate", then
 * "; server_no_context_takeover" if cfg->server_no_context_takeover (asks the
 * server to reset its context), "; client_no_context_takeover" if
 * cfg->client_no_context_takeover (we will reset ours), and
 * "; client_max_window_bits" (with "=N" when cfg->max_window_bits < 15), so
 * the server may pick our window.  We never ask for server_max_window_bits:
 * our inflater takes any window.  Returns the length (NUL-terminated, cap
 * counts the NUL), -ENOSPC, or -EINVAL when cfg->enabled is false. */
ssize_t rc_pmd_write_offer(char *out, size_t cap, const struct rc_pmd_config *cfg);

/* Client: validates the server's answer to the offer rc_pmd_write_offer made
 * from the same cfg (an unknown parameter or extension, a duplicate, a bad
 * value, a parameter we did not allow, client_max_window_bits without a value
 * or larger than we offered, more than one extension, or any answer when
 * cfg->enabled is false is -EPROTO).  The server may add
 * server_no_context_takeover, client_no_context_takeover and
 * server_max_window_bits unasked (RFC 7692 7.1.1, 7.1.2.1).  In *out,
 * client_no_context_takeover is also set when we offered it.  An empty (or
 * all-whitespace) header means "not negotiated": returns 0 with *accepted
 * false.  Returns 0 with *accepted true and *out filled otherwise. */
int rc_pmd_parse_response(struct rc_span header, const struct rc_pmd_config *cfg,
			  struct rc_pmd_params *out, bool *accepted);

/* Optional allocator for zlib's state (a pool, or a counter in tests).
 * zalloc/zfree follow zlib's alloc_func/free_func contract. */
struct rc_pmd_alloc {
	alloc_func zalloc;
	free_func zfree;
	voidpf opaque;
};

/* Compressor for one direction.  window_bits 9..15 (zlib cannot produce a
 * raw stream with an 8-bit window: callers that negotiated 8 send those
 * messages uncompressed, which RFC 7692 allows message by message). */
struct rc_deflater {
	z_stream z;
	bool no_context_takeover;
	bool ready;
};

/* Initialises d (any prior content is ignored) with zlib's malloc.  level is
 * zlib's -1..9.  All of zlib's memory (about 2^(window_bits+2) + 128 KiB) is
 * allocated here; nothing is allocated per message.  Returns 0, -EINVAL for
 * window_bits outside 9..15 (8 included, see above) or a bad level, or
 * -ENOMEM. */
int rc_deflater_init(struct rc_deflater *d, int window_bits,
		     bool no_context_takeover, int level);

/* rc_deflater_init with zlib's memory taken from *a (NULL: malloc). */
int rc_deflater_init_alloc(struct rc_deflater *d, int window_bits,
			   bool no_context_takeover, int level,
			   const struct rc_pmd_alloc *a);

/* Releases zlib's memory; safe on a freed or failed-init deflater. */
void rc_deflater_free(struct rc_deflater *d);

/* Compresses one whole message into out[0..cap), without the trailing
 * 00 00 FF FF (RFC 7692 section 7.2.1).  Returns the compressed length, or
 * -ENOSPC when it does not fit (the stream is then reset; send the message
 * uncompressed: a fresh compressor's output is valid for a peer whatever
 * window it kept, so context takeover stays correct), or -EINVAL for an
 * uninitialised deflater or len > UINT_MAX.  A message of length 0 gives the
 * single byte 0x00.  With no_context_takeover the stream is reset after each
 * message.  cap >= rc_deflate_bound(len) never gives -ENOSPC; cap = len is a
 * good choice when compression must pay for itself. */
ssize_t rc_deflate_message(struct rc_deflater *d, const uint8_t *in,
			   size_t len, uint8_t *out, size_t cap);

/* Upper bound of rc_deflate_message's output for len input bytes, for any
 * window and level (zlib's conservative bound plus the flush's bytes). */
size_t rc_deflate_bound(size_t len);

/* Decompressor for one direction; bounded output. */
struct rc_inflater {
	z_stream z;
	bool no_context_takeover;
	bool ready;
	/* rc_inflate_stream state: one byte inflated past cap (it proves the
	 * output goes on), handed out first on the next call; and how much
	 * of the 00 00 FF FF tail the current message has consumed. */
	bool has_held;
	uint8_t held;
	uint8_t tail_fed;
	bool boundary; /* zlib last stopped between two deflate blocks */
};

/* Initialises f with a 15-bit window (any peer window decodes), allocating
 * all of zlib's memory (about 40 KiB) here, none per message.
 * no_context_takeover: the peer resets its compressor after each message, so
 * we reset too (the window is not needed between messages).  Returns 0 or
 * -ENOMEM. */
int rc_inflater_init(struct rc_inflater *f, bool no_context_takeover);

/* rc_inflater_init with zlib's memory taken from *a (NULL: malloc). */
int rc_inflater_init_alloc(struct rc_inflater *f, bool no_context_takeover,
			   const struct rc_pmd_alloc *a);

/* Releases zlib's memory; safe on a freed or failed-init inflater. */
void rc_inflater_free(struct rc_inflater *f);

/* Inflates a piece of a compressed message, appending to out[*out_len..cap).
 * Call with last=true for the final piece (the 00 00 FF FF tail is added
 * here; last may come with len 0).  Returns 0, -EMSGSIZE when the output
 * would pass cap (the message is too big: a decompression bomb is stopped
 * at cap bytes, the rest is never produced), -EPROTO when the data is not
 * valid deflate or the message does not end on a block boundary, or -EINVAL
 * for an uninitialised inflater or *out_len > cap.  After an error the
 * stream is reset (the connection should be failed: with context takeover
 * later messages may no longer decode).  After the last piece the context
 * is reset when no_context_takeover, otherwise the window carries over to
 * the next message.  A block with BFINAL set (RFC 7692 7.2.3.4) ends the
 * deflate stream: the window is kept and decoding continues after it, at
 * constant cost per such block (no window copy).  An empty payload is
 * accepted as an empty message. */
int rc_inflate_piece(struct rc_inflater *f, const uint8_t *in, size_t len,
		     bool last, uint8_t *out, size_t cap, size_t *out_len);

/* Streaming form of rc_inflate_piece for a caller whose output buffer
 * grows: inflates from *in (*in_len bytes), advancing both past what was
 * consumed, appending to out[*out_len..cap).  Returns 0 when all input is
 * consumed (with last: the message is complete, the context handled as in
 * rc_inflate_piece), or -ENOBUFS when out is full and at least one more
 * output byte is certain: grow out (or fail the message as too big, which
 * is then exact: a message of exactly cap bytes returns 0) and call again
 * with the advanced *in and *in_len (possibly 0 left), the same last and more
 * cap.  A caller that gives up after -ENOBUFS must free the inflater (its
 * state is mid-message).  Other errors as rc_inflate_piece (the stream is
 * then reset). */
int rc_inflate_stream(struct rc_inflater *f, const uint8_t **in,
		      size_t *in_len, bool last, uint8_t *out, size_t cap,
		      size_t *out_len);

/* Compress once: deflates a message with a fresh context (no context
 * takeover) so the result is a valid permessage-deflate payload for every
 * peer whose negotiated server_max_window_bits is >= window_bits.  Uses the
 * caller's deflater (initialised with no_context_takeover) as scratch.
 * Same returns as rc_deflate_message, plus -EINVAL for a deflater that keeps
 * its context (its stream belongs to one peer). */
ssize_t rc_deflate_once(struct rc_deflater *d, const uint8_t *in, size_t len,
			uint8_t *out, size_t cap);

#endif
