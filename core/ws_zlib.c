/* A connection's zlib state for permessage-deflate: created when first
 * needed, released when it need not be kept.
 *
 * Negotiating deflate costs nothing by itself.  A deflater (~80 KB of
 * resident memory at a 15-bit window) exists only once the connection
 * compresses a message of its own (rc_conn_send); frames built once for
 * many recipients (rc_frame_encode, the broker's shared frames) never need
 * one, so a subscriber that only receives them never gets one.  An
 * inflater (~10 KB resident, up to 32 KiB more as its window fills) exists
 * once a compressed message arrives.  Each is created at most once per
 * connection and then reused for every message (the hot path does not
 * allocate), except that state that keeps no context between messages
 * (*_no_context_takeover) is released when the connection goes idle and
 * created again by its next compressed message.  zlib's memory comes from
 * the loop's pool, so what is released goes back to the system with the
 * pool's idle chunks (glibc would keep zlib's 64 KiB blocks resident). */
#include <errno.h>
#include <stdint.h>

#include "core/internal.h"

static voidpf z_alloc(voidpf pool, uInt items, uInt size)
{
	if (size && items > SIZE_MAX / size)
		return Z_NULL;
	return rc__pool_alloc(pool, (size_t)items * size);
}

static void z_free(voidpf pool, voidpf p)
{
	(void)pool;
	rc__pool_release(p);
}

/* The deflater for this connection's own messages, created on first use;
 * NULL when deflate was not negotiated, when zlib cannot use the window
 * (8 bits), off the owning loop's thread (the state belongs to the loop),
 * or without memory: the message then goes uncompressed, which RFC 7692
 * allows message by message. */
struct rc_deflater *rc__conn_deflater(struct rc_conn *c)
{
	bool no_ctx;
	int bits;

	if (!c->pmd_on || rc_loop_current() != c->loop)
		return NULL;
	if (c->def)
		return c->def;
	no_ctx = c->client ? c->pmd.client_no_context_takeover
			   : c->pmd.server_no_context_takeover;
	bits = c->client ? c->pmd.client_max_window_bits
			 : c->pmd.server_max_window_bits;
	if (bits < 9)
		return NULL; /* zlib cannot produce it: checked before allocating */
	c->def = rc__pool_alloc(c->loop->pool, sizeof(*c->def));
	if (c->def && rc_deflater_init_alloc(c->def, bits, no_ctx, 6,
					     &(struct rc_pmd_alloc){ z_alloc, z_free,
								    c->loop->pool }) < 0) {
		rc__pool_release(c->def);
		c->def = NULL;
	}
	return c->def;
}

/* The inflater for received compressed messages, created on first use.
 * Returns 0 or -ENOMEM. */
int rc__conn_inflater(struct rc_conn *c)
{
	bool no_ctx;

	if (c->inf)
		return 0;
	c->inf = rc__pool_alloc(c->loop->pool, sizeof(*c->inf));
	if (!c->inf)
		return -ENOMEM;
	no_ctx = c->client ? c->pmd.server_no_context_takeover
			   : c->pmd.client_no_context_takeover;
	if (rc_inflater_init_alloc(c->inf, no_ctx,
				   &(struct rc_pmd_alloc){ z_alloc, z_free, c->loop->pool }) < 0) {
		rc__pool_release(c->inf);
		c->inf = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void free_deflater(struct rc_conn *c)
{
	rc_deflater_free(c->def);
	rc__pool_release(c->def);
	c->def = NULL;
}

static void free_inflater(struct rc_conn *c)
{
	rc_inflater_free(c->inf);
	rc__pool_release(c->inf);
	c->inf = NULL;
}

/* The connection went idle: release what holds no context between
 * messages.  The deflater is reset after every message when it keeps no
 * context; the inflater likewise, once no message is half received (no
 * fragmented message open, no frame payload pending). */
void rc__conn_zlib_trim(struct rc_conn *c)
{
	if (c->def && c->def->no_context_takeover)
		free_deflater(c);
	if (c->inf && c->inf->no_context_takeover && !c->in_payload &&
	    c->ms.opcode == 0)
		free_inflater(c);
}

/* Teardown: releases all zlib state. */
void rc__conn_zlib_free(struct rc_conn *c)
{
	if (c->def)
		free_deflater(c);
	if (c->inf)
		free_inflater(c);
}
