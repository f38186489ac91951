/* libFuzzer harness for permessage-deflate negotiation.  The input is a
 * config byte then a Sec-WebSocket-Extensions value (an exact-size copy, so
 * ASan sees any read past it).  Checks: whatever the server side accepts, it
 * answers with a response that the client side accepts with the very same
 * params, inside the documented ranges; the client side never crashes on
 * the raw input and only accepts sane values; our own offer is accepted by
 * our own server side.
 *
 * Config byte: bit 0 server_no_context_takeover, bit 1
 * client_no_context_takeover, bits 2..5 max_window_bits (0..15, so the
 * out-of-range values are exercised too). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/deflate.h"

#define check(x) do { if (!(x)) __builtin_trap(); } while (0)

/* What rc_pmd_config.max_window_bits means, as documented. */
static uint8_t cfg_limit(uint8_t b)
{
	if (b == 0 || b > 15)
		return 15;
	return b < 9 ? 9 : b;
}

static bool window_ok(uint8_t w)
{
	return w >= 8 && w <= 15;
}

static void server_side(struct rc_span h, const struct rc_pmd_config *cfg)
{
	struct rc_pmd_config client = { .enabled = true, .max_window_bits = 15 };
	struct rc_pmd_params p, back;
	char resp[256];
	ssize_t n;
	bool accepted = false;
	int r = rc_pmd_negotiate(h, cfg, &p);

	check(r == 0 || r == 1);
	if (r == 0)
		return;
	check(window_ok(p.server_max_window_bits));
	check(window_ok(p.client_max_window_bits));
	check(p.server_max_window_bits <= cfg_limit(cfg->max_window_bits));
	if (cfg->server_no_context_takeover)
		check(p.server_no_context_takeover);
	if (cfg->client_no_context_takeover)
		check(p.client_no_context_takeover);
	n = rc_pmd_write_response(resp, sizeof(resp), &p);
	check(n > 0 && (size_t)n == strlen(resp));
	r = rc_pmd_parse_response((struct rc_span){ resp, (size_t)n }, &client,
				  &back, &accepted);
	check(r == 0 && accepted);
	check(back.server_no_context_takeover == p.server_no_context_takeover);
	check(back.client_no_context_takeover == p.client_no_context_takeover);
	check(back.server_max_window_bits == p.server_max_window_bits);
	check(back.client_max_window_bits == p.client_max_window_bits);
	check(back.server_max_window_bits_sent == p.server_max_window_bits_sent);
}

static void client_side(struct rc_span h, const struct rc_pmd_config *cfg)
{
	struct rc_pmd_params q;
	bool accepted = false;
	int r = rc_pmd_parse_response(h, cfg, &q, &accepted);

	check(r == 0 || r == -EPROTO);
	if (r != 0 || !accepted)
		return;
	check(window_ok(q.server_max_window_bits));
	check(window_ok(q.client_max_window_bits));
	check(q.client_max_window_bits <= cfg_limit(cfg->max_window_bits));
}

static void own_offer(const struct rc_pmd_config *cfg)
{
	struct rc_pmd_config server = { .enabled = true, .max_window_bits = 15 };
	struct rc_pmd_params p;
	char offer[256];
	ssize_t n = rc_pmd_write_offer(offer, sizeof(offer), cfg);

	check(n > 0);
	check(rc_pmd_negotiate((struct rc_span){ offer, (size_t)n }, &server,
			       &p) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rc_pmd_config cfg;
	struct rc_span h;
	char *copy;

	if (size < 1)
		return 0;
	cfg = (struct rc_pmd_config){
		.enabled = true,
		.server_no_context_takeover = data[0] & 1,
		.client_no_context_takeover = data[0] & 2,
		.max_window_bits = (uint8_t)((data[0] >> 2) & 15),
	};
	copy = malloc(size - 1 ? size - 1 : 1);
	check(copy);
	memcpy(copy, data + 1, size - 1);
	h = (struct rc_span){ copy, size - 1 };
	server_side(h, &cfg);
	client_side(h, &cfg);
	own_offer(&cfg);
	free(copy);
	return 0;
}
