/* Encoding a frame: header + payload copied into the output buffer, which is
 * what a real write costs (GWS's "write" benchmark frames the message into
 * its write buffer).  Server frames are unmasked; the client variant also
 * masks the copy. */
#include <errno.h>
#include <string.h>

#include "bench/micro/harness.h"
#include "proto/frame.h"

struct write_ctx {
	const struct rc_bench_payload *pl;
	uint8_t out[RC_FRAME_MAX_HEADER + 4096];
	const uint8_t *mask; /* NULL for a server frame */
};

static int write_frames(void *arg, uint64_t n)
{
	struct write_ctx *c = arg;
	size_t len = c->pl->len;
	uint64_t i;

	for (i = 0; i < n; i++) {
		size_t h = rc_frame_write_header(c->out, RC_OP_TEXT, true, false,
						 len, c->mask);

		memcpy(c->out + h, c->pl->p, len);
		if (c->mask)
			rc_ws_mask(c->out + h, len, c->mask, 0);
		/* the buffer is "sent": the copy must really happen each time */
		__asm__ volatile("" : : "r"(c->out) : "memory");
	}
	return 0;
}

/* Checks once that the encoder produced what a peer would parse. */
static int check_frame(struct write_ctx *c)
{
	struct rc_frame_rules rules = { .expect_masked = c->mask != NULL };
	struct rc_frame_header h;
	int hl;

	write_frames(c, 1);
	hl = rc_frame_parse_header(c->out, sizeof(c->out), &rules, &h);
	if (hl < 0)
		return hl;
	if (h.payload_len != c->pl->len || !h.fin || h.opcode != RC_OP_TEXT)
		return -EPROTO;
	if (c->mask)
		rc_ws_mask(c->out + hl, c->pl->len, h.mask, 0);
	return memcmp(c->out + hl, c->pl->p, c->pl->len) ? -EPROTO : 0;
}

static void run(const char *name, const struct rc_bench_payload *pl,
		const uint8_t *mask)
{
	static struct write_ctx c;
	int err;

	if (!rc_bench_selected(name))
		return;
	if (pl->len > sizeof(c.out) - RC_FRAME_MAX_HEADER) {
		rc_bench_fail(name, -EMSGSIZE);
		return;
	}
	c.pl = pl;
	c.mask = mask;
	err = check_frame(&c);
	if (err) {
		rc_bench_fail(name, err);
		return;
	}
	rc_bench_run(name, pl->len, write_frames, &c);
}

/* See harness.h. */
void rc_bench_frame_write(void)
{
	static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

	run("write_1k", rc_bench_json_1k(), NULL);
	run("write_github", rc_bench_github(), NULL);
	run("write_masked_github", rc_bench_github(), mask);
}
