/* Reading a client frame: the masked text frame is copied into the receive
 * buffer (standing in for the kernel's copy; GWS's "read" benchmark copies it
 * out of a bytes.Reader), then its header is parsed, the payload unmasked in
 * place and validated as UTF-8 with the incremental validator the connection
 * uses (the _noutf8 variant skips that, as GWS does by default). */
#include <errno.h>
#include <string.h>

#include "bench/micro/harness.h"
#include "proto/frame.h"
#include "proto/utf8.h"

struct read_ctx {
	const struct rc_bench_payload *pl;
	bool check_utf8;
	struct rc_frame_rules rules;
	uint8_t wire[RC_FRAME_MAX_HEADER + 4096];
	size_t wire_len;
	uint8_t rx[RC_FRAME_MAX_HEADER + 4096];
};

static int read_frames(void *arg, uint64_t n)
{
	struct read_ctx *c = arg;
	uint64_t i;

	for (i = 0; i < n; i++) {
		struct rc_frame_header h;
		struct rc_utf8 v;
		int hl;

		memcpy(c->rx, c->wire, c->wire_len);
		hl = rc_frame_parse_header(c->rx, c->wire_len, &c->rules, &h);
		if (hl < 0)
			return hl;
		if (h.payload_len != c->wire_len - (size_t)hl)
			return -EPROTO;
		rc_ws_mask(c->rx + hl, h.payload_len, h.mask, 0);
		if (!c->check_utf8)
			continue;
		rc_utf8_init(&v);
		if (rc_utf8_feed(&v, c->rx + hl, h.payload_len, NULL) ||
		    !rc_utf8_done(&v))
			return -EILSEQ;
	}
	return 0;
}

static void run(const char *name, const struct rc_bench_payload *pl,
		bool check_utf8)
{
	static const uint8_t mask[4] = { 0xa1, 0x5c, 0x07, 0xe2 };
	static struct read_ctx c;
	size_t h;
	int err;

	if (!rc_bench_selected(name))
		return;
	if (pl->len > sizeof(c.wire) - RC_FRAME_MAX_HEADER) {
		rc_bench_fail(name, -EMSGSIZE);
		return;
	}
	c.pl = pl;
	c.check_utf8 = check_utf8;
	c.rules = (struct rc_frame_rules){ .expect_masked = true,
					   .max_payload = 16u << 20 };
	h = rc_frame_write_header(c.wire, RC_OP_TEXT, true, false, pl->len, mask);
	memcpy(c.wire + h, pl->p, pl->len);
	rc_ws_mask(c.wire + h, pl->len, mask, 0);
	c.wire_len = h + pl->len;

	/* self-check: one read gives back the original payload */
	err = read_frames(&c, 1);
	if (!err && memcmp(c.rx + h, pl->p, pl->len))
		err = -EPROTO;
	if (err) {
		rc_bench_fail(name, err);
		return;
	}
	rc_bench_run(name, pl->len, read_frames, &c);
}

/* See harness.h. */
void rc_bench_frame_read(void)
{
	run("read_1k", rc_bench_json_1k(), true);
	run("read_1k_multi", rc_bench_utf8_1k(), true);
	run("read_github", rc_bench_github(), true);
	/* GWS's read benchmark runs with its default CheckUtf8Enabled=false */
	run("read_github_noutf8", rc_bench_github(), false);
}
