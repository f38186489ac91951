/* The one frame encoder: every WebSocket frame ringcast sends is built here,
 * once, into an rc_buf that any number of connections may queue by
 * reference.  Server frames (rc_frame_new, rc_frame_encode: the broker's raw,
 * JSON and deflated variants, core's sends) and a client's masked frames
 * (rc__frame_build with mask) differ only in the header and the XOR. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* A final frame of len payload bytes with its header written; *payload is
 * where the payload goes.  key NULL: unmasked. */
static struct rc_buf *frame_alloc(uint8_t opcode, bool rsv1, size_t len,
				  const uint8_t *key, uint8_t **payload)
{
	struct rc_buf *b = rc_buf_new(RC_FRAME_MAX_HEADER + len);
	size_t hl;

	if (!b)
		return NULL;
	hl = rc_frame_write_header(b->data, opcode, true, rsv1, len, key);
	b->len = hl + len;
	*payload = b->data + hl;
	return b;
}

/* See rc.h. */
struct rc_buf *rc_frame_new(uint8_t opcode, size_t len, uint8_t **payload)
{
	return frame_alloc(opcode, false, len, NULL, payload);
}

/* Compresses payload into a new frame with RSV1; NULL if it did not fit
 * (the caller sends it plain) or on out of memory. */
static struct rc_buf *frame_deflated(uint8_t opcode, const uint8_t *payload,
				     size_t len, struct rc_deflater *d, bool fresh,
				     const uint8_t *key)
{
	uint8_t hdr[RC_FRAME_MAX_HEADER];
	struct rc_buf *b = rc_buf_new(RC_FRAME_MAX_HEADER + rc_deflate_bound(len));
	uint8_t *out;
	ssize_t n;
	size_t hl;

	if (!b)
		return NULL;
	out = b->data + RC_FRAME_MAX_HEADER;
	n = fresh ? rc_deflate_once(d, payload, len, out, b->cap - RC_FRAME_MAX_HEADER)
		  : rc_deflate_message(d, payload, len, out, b->cap - RC_FRAME_MAX_HEADER);
	if (n < 0) {
		rc_buf_unref(b);
		return NULL;
	}
	/* The header's length is known only now: move the output behind it. */
	hl = rc_frame_write_header(hdr, opcode, true, true, (uint64_t)n, key);
	memmove(b->data + hl, out, (size_t)n);
	memcpy(b->data, hdr, hl);
	if (key)
		rc_ws_mask(b->data + hl, (size_t)n, key, 0);
	b->len = hl + (size_t)n;
	return b;
}

/* See internal.h. */
struct rc_buf *rc__frame_build(uint8_t opcode, const uint8_t *payload, size_t len,
			       struct rc_deflater *d, bool fresh, bool mask)
{
	uint8_t key[4], *out;
	struct rc_buf *b;

	if (mask)
		arc4random_buf(key, sizeof(key));
	if (d && len > 0 && (b = frame_deflated(opcode, payload, len, d, fresh,
						  mask ? key : NULL)))
		return b;
	b = frame_alloc(opcode, false, len, mask ? key : NULL, &out);
	if (!b)
		return NULL;
	if (len)
		memcpy(out, payload, len);
	if (mask)
		rc_ws_mask(out, len, key, 0);
	return b;
}

/* Encodes one shareable server frame (see rc.h). */
struct rc_buf *rc_frame_encode(uint8_t opcode, const uint8_t *payload,
			       size_t len, struct rc_deflater *d)
{
	return rc__frame_build(opcode, payload, len, d, true, false);
}
