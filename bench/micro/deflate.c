/* permessage-deflate with no context takeover, as the broker uses it
 * (compress once per message, the same bytes for every subscriber):
 *   deflate_*     rc_deflate_once alone
 *   inflate_*     rc_inflate_piece of one whole message alone
 *   pmd_write_*   compressed write: deflate into the output buffer right
 *                 after room for the header, then the RSV1 header in front
 *   pmd_read_*    compressed read: copy the masked frame into the receive
 *                 buffer, parse, unmask, inflate, validate UTF-8
 * Level 1 is GWS's default (flate.BestSpeed); _l6 is zlib's default level. */
#include <errno.h>
#include <string.h>

#include "bench/micro/harness.h"
#include "proto/deflate.h"
#include "proto/frame.h"
#include "proto/utf8.h"

#define BUF_CAP 8192

struct pmd_ctx {
	const struct rc_bench_payload *pl;
	struct rc_deflater d;
	struct rc_inflater f;
	struct rc_frame_rules rules;
	uint8_t comp[BUF_CAP];      /* the deflated message */
	size_t comp_len;
	uint8_t wire[BUF_CAP];      /* a masked client frame carrying comp */
	size_t wire_len;
	uint8_t rx[BUF_CAP];        /* receive buffer */
	uint8_t out[BUF_CAP];       /* deflate / inflate output */
	size_t out_len;             /* last result, for the self-check */
	size_t hdr_len;             /* pmd_write: header bytes before the payload */
};

static int op_deflate(void *arg, uint64_t n)
{
	struct pmd_ctx *c = arg;
	uint64_t i;

	for (i = 0; i < n; i++) {
		ssize_t r = rc_deflate_once(&c->d, c->pl->p, c->pl->len, c->out,
					    sizeof(c->out));
		if (r < 0)
			return (int)r;
		c->out_len = (size_t)r;
	}
	return 0;
}

static int op_inflate(void *arg, uint64_t n)
{
	struct pmd_ctx *c = arg;
	uint64_t i;

	for (i = 0; i < n; i++) {
		int err;

		c->out_len = 0;
		err = rc_inflate_piece(&c->f, c->comp, c->comp_len, true, c->out,
				       sizeof(c->out), &c->out_len);
		if (err)
			return err;
	}
	return 0;
}

/* Deflates at out + RC_FRAME_MAX_HEADER, then writes the header so it ends
 * exactly where the payload starts: no copy of the compressed bytes. */
static int op_pmd_write(void *arg, uint64_t n)
{
	struct pmd_ctx *c = arg;
	uint8_t *payload = c->out + RC_FRAME_MAX_HEADER;
	uint64_t i;

	for (i = 0; i < n; i++) {
		uint8_t hdr[RC_FRAME_MAX_HEADER];
		ssize_t r = rc_deflate_once(&c->d, c->pl->p, c->pl->len, payload,
					    sizeof(c->out) - RC_FRAME_MAX_HEADER);
		size_t hl;

		if (r < 0)
			return (int)r;
		hl = rc_frame_write_header(hdr, RC_OP_TEXT, true, true,
					   (uint64_t)r, NULL);
		memcpy(payload - hl, hdr, hl);
		c->hdr_len = hl;
		c->out_len = hl + (size_t)r;
	}
	return 0;
}

static int op_pmd_read(void *arg, uint64_t n)
{
	struct pmd_ctx *c = arg;
	uint64_t i;

	for (i = 0; i < n; i++) {
		struct rc_frame_header h;
		struct rc_utf8 v;
		int hl, err;

		memcpy(c->rx, c->wire, c->wire_len);
		hl = rc_frame_parse_header(c->rx, c->wire_len, &c->rules, &h);
		if (hl < 0)
			return hl;
		if (!h.rsv1 || h.payload_len != c->wire_len - (size_t)hl)
			return -EPROTO;
		rc_ws_mask(c->rx + hl, h.payload_len, h.mask, 0);
		c->out_len = 0;
		err = rc_inflate_piece(&c->f, c->rx + hl, h.payload_len, true,
				       c->out, sizeof(c->out), &c->out_len);
		if (err)
			return err;
		rc_utf8_init(&v);
		if (rc_utf8_feed(&v, c->out, c->out_len, NULL) || !rc_utf8_done(&v))
			return -EILSEQ;
	}
	return 0;
}

/* Builds the compressed message and the client frame carrying it. */
static int setup(struct pmd_ctx *c, const struct rc_bench_payload *pl, int level)
{
	static const uint8_t mask[4] = { 0x5e, 0x11, 0xc3, 0x8a };
	ssize_t r;
	size_t h;
	int err;

	if (pl->len > BUF_CAP / 2)
		return -EMSGSIZE;
	memset(c, 0, sizeof(*c));
	c->pl = pl;
	c->rules = (struct rc_frame_rules){ .expect_masked = true, .allow_rsv1 = true,
					    .max_payload = 16u << 20 };
	err = rc_deflater_init(&c->d, 15, true, level);
	if (err)
		return err;
	err = rc_inflater_init(&c->f, true);
	if (err)
		goto err_deflater;
	r = rc_deflate_once(&c->d, pl->p, pl->len, c->comp, sizeof(c->comp));
	if (r < 0) {
		err = (int)r;
		goto err_inflater;
	}
	c->comp_len = (size_t)r;
	h = rc_frame_write_header(c->wire, RC_OP_TEXT, true, true, c->comp_len, mask);
	memcpy(c->wire + h, c->comp, c->comp_len);
	rc_ws_mask(c->wire + h, c->comp_len, mask, 0);
	c->wire_len = h + c->comp_len;
	return 0;

err_inflater:
	rc_inflater_free(&c->f);
err_deflater:
	rc_deflater_free(&c->d);
	return err;
}

/* Runs fn once and checks that its result round-trips to the payload. */
static int self_check(struct pmd_ctx *c, rc_bench_cb fn)
{
	int err = fn(c, 1);

	if (err)
		return err;
	if (fn == op_deflate || fn == op_pmd_write) {
		/* what was deflated must inflate back to the payload */
		const uint8_t *p = c->out;
		size_t len = c->out_len;

		if (fn == op_pmd_write) {
			struct rc_frame_rules rules = { .allow_rsv1 = true };
			struct rc_frame_header h;
			const uint8_t *frame = c->out + RC_FRAME_MAX_HEADER - c->hdr_len;

			if (rc_frame_parse_header(frame, c->out_len, &rules, &h) !=
				    (int)c->hdr_len || !h.rsv1)
				return -EPROTO;
			p = frame + c->hdr_len;
			len = c->out_len - c->hdr_len;
		}
		if (len != c->comp_len || memcmp(p, c->comp, len))
			return -EPROTO; /* no context takeover: same bytes each time */
		return 0;
	}
	if (c->out_len != c->pl->len || memcmp(c->out, c->pl->p, c->pl->len))
		return -EPROTO;
	return 0;
}

static void run(const char *name, const struct rc_bench_payload *pl, int level,
		rc_bench_cb fn)
{
	static struct pmd_ctx c;
	int err;

	if (!rc_bench_selected(name))
		return;
	err = setup(&c, pl, level);
	if (err) {
		rc_bench_fail(name, err);
		return;
	}
	err = self_check(&c, fn);
	if (err)
		rc_bench_fail(name, err);
	else
		rc_bench_run(name, pl->len, fn, &c);
	rc_inflater_free(&c.f);
	rc_deflater_free(&c.d);
}

/* See harness.h. */
void rc_bench_deflate(void)
{
	const struct rc_bench_payload *k = rc_bench_json_1k(), *gh = rc_bench_github();

	run("deflate_1k", k, 1, op_deflate);
	run("deflate_github", gh, 1, op_deflate);
	run("deflate_github_l6", gh, 6, op_deflate);
	run("inflate_1k", k, 1, op_inflate);
	run("inflate_github", gh, 1, op_inflate);
	run("pmd_write_1k", k, 1, op_pmd_write);
	run("pmd_write_github", gh, 1, op_pmd_write);
	run("pmd_write_github_l6", gh, 6, op_pmd_write);
	run("pmd_read_1k", k, 1, op_pmd_read);
	run("pmd_read_github", gh, 1, op_pmd_read);
}
