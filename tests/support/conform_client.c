/* conform_client [--no-deflate] [--window-bits N] [--protocols LIST]
 * [--close-after N] [--close-timeout MS] URL: the
 * core WebSocket client for tests/integration/test_conformance_client.py (the
 * Autobahn "fuzzingserver" direction).  It connects, echoes every message it
 * receives back to the server (like an Autobahn test client, so the server
 * sees our masking and our compressor at work), and prints one line per
 * event on stdout:
 *   open deflate=0|1 server_bits=N client_bits=N snct=0|1 cnct=0|1
 *   message op=N len=N crc=XXXXXXXX
 *   ping len=N crc=XXXXXXXX / pong len=N crc=XXXXXXXX
 *   close code=N reason=TEXT
 * With --close-after N it starts the close handshake itself (1000, reason
 * "client done") right after echoing the Nth message.  --close-timeout sets
 * close_timeout_ms (2000 by default here).
 * It exits 0 once the loop has drained (after on_close), 1 if it could not
 * start.  Built by the test with gcc against libringcast.a. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/rc.h"

static unsigned long close_after, received;

static unsigned long crc(const uint8_t *p, size_t n)
{
	return crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

static void on_open(struct rc_conn *c)
{
	const struct rc_pmd_params *p = rc_conn_deflate(c);

	if (p)
		printf("open deflate=1 server_bits=%u client_bits=%u snct=%d cnct=%d\n",
		       p->server_max_window_bits, p->client_max_window_bits,
		       p->server_no_context_takeover, p->client_no_context_takeover);
	else
		printf("open deflate=0\n");
	fflush(stdout);
}

static void on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	printf("message op=%u len=%zu crc=%08lx\n", op, n, crc(p, n));
	fflush(stdout);
	int ret = rc_conn_send(c, op, p, n);
	if (ret < 0) {
		printf("send-error %s\n", strerror(-ret));
		fflush(stdout);
	}
	if (++received == close_after)
		rc_conn_close(c, RC_CLOSE_NORMAL, "client done", 11);
}

static void on_ping(struct rc_conn *c, const uint8_t *p, size_t n)
{
	(void)c;
	printf("ping len=%zu crc=%08lx\n", n, crc(p, n));
	fflush(stdout);
}

static void on_pong(struct rc_conn *c, const uint8_t *p, size_t n)
{
	(void)c;
	printf("pong len=%zu crc=%08lx\n", n, crc(p, n));
	fflush(stdout);
}

static void on_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n)
{
	printf("close code=%u reason=%.*s\n", code, (int)n, (const char *)r);
	fflush(stdout);
	rc_loop_stop(rc_conn_loop(c));
}

int main(int argc, char **argv)
{
	static const struct rc_handlers h = { .on_open = on_open, .on_message = on_message,
					      .on_ping = on_ping, .on_pong = on_pong,
					      .on_close = on_close };
	static const struct option longopts[] = {
		{ "no-deflate", no_argument, NULL, 'n' },
		{ "window-bits", required_argument, NULL, 'w' },
		{ "protocols", required_argument, NULL, 'p' },
		{ "close-after", required_argument, NULL, 'c' },
		{ "close-timeout", required_argument, NULL, 't' }, { 0 } };
	struct rc_client_options co = { 0 };
	struct rc_options o;
	struct rc_loop *l;
	int opt;

	rc_options_default(&o);
	o.deflate.enabled = true;
	o.max_backpressure = 64u << 20;
	o.close_timeout_ms = 2000;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': o.deflate.enabled = false; break;
		case 'w': o.deflate.max_window_bits = (uint8_t)atoi(optarg); break;
		case 'p': co.protocols = optarg; break;
		case 'c': close_after = strtoul(optarg, NULL, 10); break;
		case 't': o.close_timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		default: goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	co.options = &o;
	co.connect_timeout_ms = 5000;
	l = rc_loop_new(&o);
	if (!l)
		return perror("conform_client: rc_loop_new"), 1;
	if (!rc_client_connect(l, argv[optind], &co, &h, NULL)) {
		fprintf(stderr, "conform_client: %s: %s\n", argv[optind], strerror(errno));
		rc_loop_free(l);
		return 1;
	}
	rc_loop_run(l);
	rc_loop_free(l);
	return 0;
usage:
	fprintf(stderr, "usage: conform_client [--no-deflate] [--window-bits N] [--protocols LIST] "
		"[--close-after N] [--close-timeout MS] ws://HOST:PORT/PATH\n");
	return 2;
}
