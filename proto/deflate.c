/* permessage-deflate (RFC 7692) streams over zlib raw deflate.
 *
 * zlib allocates only in the *_init functions here: deflateInit2 takes all
 * of its memory up front, and the inflater's window (which inflate would
 * allocate lazily at the first output byte) is forced out by setting an
 * empty dictionary at init.  Resets keep that memory. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "proto/deflate.h"

/* The empty stored block a sync flush ends with (RFC 7692 section 7.2.1). */
static const uint8_t flush_tail[4] = { 0x00, 0x00, 0xff, 0xff };

#define INFLATE_WINDOW_BITS 15

static int zlib_errno(int ret)
{
	switch (ret) {
	case Z_MEM_ERROR:
		return -ENOMEM;
	case Z_STREAM_ERROR:
	case Z_VERSION_ERROR:
		return -EINVAL;
	default:
		return -EPROTO;
	}
}

static void use_alloc(z_stream *z, const struct rc_pmd_alloc *a)
{
	if (a == NULL)
		return;
	z->zalloc = a->zalloc;
	z->zfree = a->zfree;
	z->opaque = a->opaque;
}

/* See deflate.h. */
int rc_deflater_init_alloc(struct rc_deflater *d, int window_bits,
			   bool no_context_takeover, int level,
			   const struct rc_pmd_alloc *a)
{
	int ret;

	memset(d, 0, sizeof(*d));
	/* Raw windowBits -8 is refused by zlib >= 1.2.9 (it would silently
	 * use 9, and a peer with a 256-byte window must not be promised
	 * that), so 8 is an error here and the caller sends uncompressed. */
	if (window_bits < 9 || window_bits > 15 || level < -1 || level > 9)
		return -EINVAL;
	use_alloc(&d->z, a);
	ret = deflateInit2(&d->z, level, Z_DEFLATED, -window_bits, 8,
			   Z_DEFAULT_STRATEGY);
	if (ret != Z_OK)
		return zlib_errno(ret);
	d->no_context_takeover = no_context_takeover;
	d->ready = true;
	return 0;
}

/* See deflate.h. */
int rc_deflater_init(struct rc_deflater *d, int window_bits,
		     bool no_context_takeover, int level)
{
	return rc_deflater_init_alloc(d, window_bits, no_context_takeover,
				      level, NULL);
}

/* See deflate.h. */
void rc_deflater_free(struct rc_deflater *d)
{
	if (d->ready)
		deflateEnd(&d->z);
	d->ready = false;
}

/* Where deflate writes: out[0..room), then a small spill buffer whose bytes
 * past cap can only be the dropped 00 00 FF FF. */
struct sink {
	uint8_t *out;
	size_t room;
	size_t out_used; /* bytes in out, valid once in_spill */
	bool in_spill;
	uint8_t spill[32];
};

static void to_spill(z_stream *z, struct sink *k)
{
	k->out_used = k->room - z->avail_out;
	k->in_spill = true;
	z->next_out = k->spill;
	z->avail_out = sizeof(k->spill);
}

/* Runs deflate(flush) until it returns with output space left, moving from
 * out to the spill buffer when out fills.  Returns 0, -ENOSPC when the spill
 * fills too, or -EINVAL. */
static int pump(z_stream *z, int flush, struct sink *k)
{
	for (;;) {
		int ret = deflate(z, flush);

		/* Z_BUF_ERROR: no progress possible, i.e. nothing left to do
		 * after the previous call filled the buffer exactly. */
		if (ret != Z_OK && ret != Z_BUF_ERROR)
			return zlib_errno(ret);
		if (z->avail_out != 0)
			return 0;
		if (k->in_spill)
			return -ENOSPC;
		to_spill(z, k);
	}
}

/* See deflate.h.
 *
 * A sync flush that runs out of output space emits its flush marker again
 * on the next call, so the marker is never flushed into a tight buffer:
 * Z_BLOCK first writes every data block (repeating Z_BLOCK is harmless), and
 * only then does Z_SYNC_FLUSH add the marker, at most 6 bytes (pending bits,
 * the 3-bit stored header, 00 00 FF FF), into at least 7 bytes of space. */
ssize_t rc_deflate_message(struct rc_deflater *d, const uint8_t *in,
			   size_t len, uint8_t *out, size_t cap)
{
	struct sink k = { .out = out, .room = cap > UINT_MAX ? UINT_MAX : cap };
	size_t total, spilled;
	int ret;

	if (!d->ready || len > UINT_MAX)
		return -EINVAL;
	/* Between messages the stream is byte aligned, so an empty message is
	 * just the header byte of an empty stored block (RFC 7692 7.2.3.6);
	 * zlib refuses a second flush with no input in between. */
	if (len == 0) {
		if (cap == 0)
			return -ENOSPC;
		out[0] = 0x00;
		return 1;
	}
	d->z.next_in = (z_const Bytef *)in;
	d->z.avail_in = (uInt)len;
	d->z.next_out = out;
	d->z.avail_out = (uInt)k.room;
	if (k.room == 0)
		to_spill(&d->z, &k);
	ret = pump(&d->z, Z_BLOCK, &k);
	if (ret < 0)
		goto fail;
	if (k.in_spill && d->z.avail_out != sizeof(k.spill)) {
		/* Data blocks alone passed cap; the marker only adds. */
		ret = -ENOSPC;
		goto fail;
	}
	if (!k.in_spill && d->z.avail_out < 7)
		to_spill(&d->z, &k); /* no room for the marker in out */
	ret = pump(&d->z, Z_SYNC_FLUSH, &k);
	if (ret < 0)
		goto fail;
	if (!k.in_spill)
		k.out_used = k.room - d->z.avail_out;
	spilled = k.in_spill ? sizeof(k.spill) - d->z.avail_out : 0;
	total = k.out_used + spilled;
	if (total < sizeof(flush_tail) || total - sizeof(flush_tail) > k.room) {
		ret = -ENOSPC;
		goto fail;
	}
	total -= sizeof(flush_tail);
	if (total > k.out_used)
		memcpy(out + k.out_used, k.spill, total - k.out_used);
	if (d->no_context_takeover)
		deflateReset(&d->z);
	return (ssize_t)total;
fail:
	/* The peer will get this message uncompressed, so our window must not
	 * remember it: restart from an empty context. */
	deflateReset(&d->z);
	return ret;
}

/* See deflate.h.  zlib's conservative deflateBound (fixed codes cost at most
 * 9 bits a byte, stored blocks 5 bytes per block) plus the flush: the end of
 * the current block and the empty stored block, minus the 4 bytes we drop. */
size_t rc_deflate_bound(size_t len)
{
	size_t b = len + ((len + 7) >> 3) + ((len + 63) >> 6) + 5 + 16;

	return b < len ? SIZE_MAX : b;
}

/* See deflate.h. */
ssize_t rc_deflate_once(struct rc_deflater *d, const uint8_t *in, size_t len,
			uint8_t *out, size_t cap)
{
	/* A deflater that keeps context belongs to one peer's stream; and it
	 * would not start fresh, which is the whole point here. */
	if (!d->ready || !d->no_context_takeover)
		return -EINVAL;
	return rc_deflate_message(d, in, len, out, cap);
}

/* See deflate.h. */
int rc_inflater_init_alloc(struct rc_inflater *f, bool no_context_takeover,
			   const struct rc_pmd_alloc *a)
{
	int ret;

	memset(f, 0, sizeof(*f));
	use_alloc(&f->z, a);
	ret = inflateInit2(&f->z, -INFLATE_WINDOW_BITS);
	if (ret != Z_OK)
		return zlib_errno(ret);
	/* Allocates the 32 KiB window now rather than at the first message. */
	ret = inflateSetDictionary(&f->z, flush_tail, 0);
	if (ret != Z_OK) {
		inflateEnd(&f->z);
		return zlib_errno(ret);
	}
	f->no_context_takeover = no_context_takeover;
	f->boundary = true;
	f->ready = true;
	return 0;
}

/* See deflate.h. */
int rc_inflater_init(struct rc_inflater *f, bool no_context_takeover)
{
	return rc_inflater_init_alloc(f, no_context_takeover, NULL);
}

/* See deflate.h. */
void rc_inflater_free(struct rc_inflater *f)
{
	if (f->ready)
		inflateEnd(&f->z);
	f->ready = false;
}

/* A final block (BFINAL=1) ended the deflate stream.  The peer may go on in
 * the same message (RFC 7692 7.2.3.4 adds an empty stored block) and, with
 * context takeover, refer back to what came before: start a new stream over
 * the same window.  inflateResetKeep (zlib's inflateReset without clearing
 * the window; exported since 1.2.7, declared among zlib.h's undocumented
 * functions) does that in constant time.  Copying the window out and back
 * in as a dictionary cost 64 KiB per restart, and a peer can end a stream
 * every two bytes (03 00 is an empty final block): a 1 MB message then cost
 * over a second of CPU.  Like inflateReset it zeroes total_in, which
 * rc_inflate_piece reads as "nothing of this stream consumed yet". */
static int restart_keep_window(z_stream *z)
{
	return inflateResetKeep(z) == Z_OK ? 0 : -EPROTO;
}

/* Feeds *in (*len bytes, advanced as consumed) to zlib.  When out is full,
 * inflates into a one-byte probe: a byte there proves there is more output;
 * it is held for the next call.  Returns 0 when the input is consumed and
 * all output delivered, -ENOBUFS when out is full with more to come, or an
 * error. */
static int run(struct rc_inflater *f, const uint8_t **in, size_t *len,
	       uint8_t *out, size_t cap, size_t *out_len)
{
	z_stream *z = &f->z;
	uint8_t probe;

	if (f->has_held) {
		if (*out_len == cap)
			return -ENOBUFS;
		out[(*out_len)++] = f->held;
		f->has_held = false;
	}
	for (;;) {
		size_t room = cap - *out_len;
		uInt in_given = *len > UINT_MAX ? UINT_MAX : (uInt)*len;
		uInt out_given;
		int ret;

		z->next_in = (z_const Bytef *)*in;
		z->avail_in = in_given;
		if (room == 0) {
			z->next_out = &probe;
			z->avail_out = 1;
		} else {
			z->next_out = out + *out_len;
			z->avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
		}
		out_given = z->avail_out;
		ret = inflate(z, Z_SYNC_FLUSH);
		*in += in_given - z->avail_in;
		*len -= in_given - z->avail_in;
		/* data_type 128: stopped between blocks.  A call that moves
		 * nothing turns zlib's TYPE into TYPEDO, the same place, but
		 * clears that flag, so such a call keeps the old answer. */
		if (z->data_type & 128)
			f->boundary = true;
		else if (z->avail_in != in_given || z->avail_out != out_given)
			f->boundary = false;
		if (room == 0 && z->avail_out == 0) {
			/* Even on Z_STREAM_END: a finished stream says so again
			 * on the next call, which restarts it then. */
			f->held = probe;
			f->has_held = true;
			return -ENOBUFS;
		}
		*out_len += out_given - z->avail_out;
		if (ret == Z_STREAM_END) {
			ret = restart_keep_window(z);
			if (ret < 0)
				return ret;
			f->boundary = true;
			if (*len == 0)
				return 0;
			continue;
		}
		if (ret != Z_OK && ret != Z_BUF_ERROR)
			return ret == Z_MEM_ERROR ? -ENOMEM : -EPROTO;
		if (*len == 0 && z->avail_out != 0)
			return 0;
	}
}

static void reset_inflater(struct rc_inflater *f)
{
	inflateReset(&f->z); /* also zeroes total_in */
	f->has_held = false;
	f->tail_fed = 0;
	f->boundary = true;
}

/* The body of rc_inflate_stream/rc_inflate_piece; does not reset on
 * error. */
static int inflate_msg(struct rc_inflater *f, const uint8_t **in,
		       size_t *len, bool last, uint8_t *out, size_t cap,
		       size_t *out_len)
{
	const uint8_t *t;
	size_t tl;
	int ret;

	if (!f->ready || *out_len > cap)
		return -EINVAL;
	ret = run(f, in, len, out, cap, out_len);
	if (ret < 0 || !last)
		return ret;
	/* Nothing consumed since the message began (an empty payload) or since
	 * a final block ended the stream: already on a block boundary, and the
	 * tail would start a block it cannot finish. */
	if (f->tail_fed != 0 || f->z.total_in != 0) {
		/* Also run with the tail all fed: it drains held output. */
		t = flush_tail + f->tail_fed;
		tl = sizeof(flush_tail) - f->tail_fed;
		ret = run(f, &t, &tl, out, cap, out_len);
		f->tail_fed = (uint8_t)(sizeof(flush_tail) - tl);
		if (ret < 0)
			return ret;
		/* Not between blocks: the payload ended inside a block
		 * (truncated or garbage). */
		if (f->z.total_in != 0 && !f->boundary)
			return -EPROTO;
	}
	if (f->no_context_takeover)
		reset_inflater(f);
	else
		f->z.total_in = 0; /* per message; zlib only reports it */
	f->tail_fed = 0;
	return 0;
}

/* See deflate.h. */
int rc_inflate_stream(struct rc_inflater *f, const uint8_t **in,
		      size_t *in_len, bool last, uint8_t *out, size_t cap,
		      size_t *out_len)
{
	int ret = inflate_msg(f, in, in_len, last, out, cap, out_len);

	if (ret < 0 && ret != -ENOBUFS && ret != -EINVAL)
		reset_inflater(f);
	return ret;
}

/* See deflate.h. */
int rc_inflate_piece(struct rc_inflater *f, const uint8_t *in, size_t len,
		     bool last, uint8_t *out, size_t cap, size_t *out_len)
{
	int ret = inflate_msg(f, &in, &len, last, out, cap, out_len);

	if (ret == -ENOBUFS)
		ret = -EMSGSIZE;
	if (ret < 0 && ret != -EINVAL)
		reset_inflater(f);
	return ret;
}
