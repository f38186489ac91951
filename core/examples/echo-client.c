/* echo-client [OPTIONS] ws://HOST:PORT/PATH [MESSAGE...]: sends each message
 * (or each line of stdin), checks that each echo matches what was sent,
 * prints it, and exits 0 once all came back (1 on any failure, 2 on usage).
 *   --binary        send binary messages instead of text
 *   --no-deflate    do not offer permessage-deflate (offered by default)
 *   --socks5 URL    dial through socks5://[user:pass@]host:port
 *   --ca FILE       wss://: trust the CAs in FILE instead of the system's
 *   --insecure      wss://: do not verify the certificate (tests only)
 *   --size N        also send a generated message of N bytes (prints
 *                   "N bytes echoed" instead of the message) */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rc.h"

struct msg {
	char *data;
	size_t len;
	bool generated;
};

static struct msg *msgs;
static int nmsgs, got, status = 1;
static uint8_t opcode = RC_OP_TEXT;

static void on_open(struct rc_conn *c)
{
	const struct rc_pmd_params *p = rc_conn_deflate(c);

	if (p)
		fprintf(stderr, "echo-client: connected, permessage-deflate (server window %u, "
			"client window %u%s%s)\n", p->server_max_window_bits,
			p->client_max_window_bits,
			p->server_no_context_takeover ? ", server_no_context_takeover" : "",
			p->client_no_context_takeover ? ", client_no_context_takeover" : "");
	else
		fprintf(stderr, "echo-client: connected, no compression\n");
	for (int i = 0; i < nmsgs; i++) {
		int ret = rc_conn_send(c, opcode, msgs[i].data, msgs[i].len);
		if (ret < 0) {
			fprintf(stderr, "echo-client: send: %s\n", strerror(-ret));
			rc_conn_close(c, RC_CLOSE_INTERNAL, NULL, 0);
			return;
		}
	}
	if (nmsgs == 0) {
		status = 0;
		rc_conn_close(c, RC_CLOSE_NORMAL, NULL, 0);
	}
}

static void on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	const struct msg *m = got < nmsgs ? &msgs[got] : NULL;

	if (!m || op != opcode || n != m->len || memcmp(p, m->data, n) != 0) {
		fprintf(stderr, "echo-client: echo %d (%zu bytes, opcode %u) does not match "
			"what was sent\n", got + 1, n, op);
		rc_conn_close(c, RC_CLOSE_POLICY, NULL, 0);
		return;
	}
	if (m->generated)
		printf("%zu bytes echoed\n", n);
	else
		printf("%.*s\n", (int)n, (const char *)p);
	fflush(stdout);
	if (++got == nmsgs) {
		status = 0;
		rc_conn_close(c, RC_CLOSE_NORMAL, NULL, 0);
	}
}

static void on_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n)
{
	if (code != RC_CLOSE_NORMAL || status != 0) {
		status = 1;
		fprintf(stderr, "echo-client: connection closed with %u%s%.*s\n", code,
			n ? ": " : "", (int)n, (const char *)r);
	}
	rc_loop_stop(rc_conn_loop(c));
}

static int add(char *data, size_t len, bool generated)
{
	struct msg *m = realloc(msgs, sizeof(*m) * (size_t)(nmsgs + 1));

	if (!m)
		return -1;
	msgs = m;
	msgs[nmsgs++] = (struct msg){ data, len, generated };
	return 0;
}

/* A generated message: compressible runs with some variety, ASCII so it is
 * valid text too. */
static char *generate(size_t n)
{
	char *p = malloc(n ? n : 1);

	for (size_t i = 0; p && i < n; i++)
		p[i] = (char)('a' + (i * 7 + i / 1000) % 26);
	return p;
}

int main(int argc, char **argv)
{
	static const struct rc_handlers h = { .on_open = on_open, .on_message = on_message,
					      .on_close = on_close };
	static const struct option longopts[] = {
		{ "binary", no_argument, NULL, 'b' }, { "deflate", no_argument, NULL, 'd' },
		{ "no-deflate", no_argument, NULL, 'n' }, { "socks5", required_argument, NULL, 'x' },
		{ "size", required_argument, NULL, 's' }, { "ca", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'k' }, { 0 } };
	struct rc_client_options co = { 0 };
	struct rc_options o;
	struct rc_loop *l;
	char *end, *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int opt;

	rc_options_default(&o);
	o.deflate.enabled = true;
	o.max_backpressure = 64u << 20;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b': opcode = RC_OP_BINARY; break;
		case 'd': o.deflate.enabled = true; break;
		case 'n': o.deflate.enabled = false; break;
		case 'x': co.socks5 = optarg; break;
		case 'c': co.ca_file = optarg; break;
		case 'k': co.insecure = true; break;
		case 's': {
			unsigned long long n = strtoull(optarg, &end, 10);
			if (*end || !*optarg || n > o.max_message_size || add(generate(n), n, true) < 0) {
				fprintf(stderr, "echo-client: bad --size %s\n", optarg);
				return 2;
			}
			break;
		}
		default: goto usage;
		}
	}
	if (optind >= argc)
		goto usage;
	for (int i = optind + 1; i < argc; i++)
		if (add(argv[i], strlen(argv[i]), false) < 0)
			return 1;
	if (argc - optind == 1 && nmsgs == 0)
		while ((len = getline(&line, &cap, stdin)) > 0) {
			line[strcspn(line, "\n")] = 0;
			if (add(strdup(line), strlen(line), false) < 0)
				return 1;
		}
	co.options = &o;
	l = rc_loop_new(&o);
	if (!l)
		return perror("echo-client: cannot create the event loop"), 1;
	if (!rc_client_connect(l, argv[optind], &co, &h, NULL)) {
		fprintf(stderr, "echo-client: cannot connect to %s%s%s: %s\n", argv[optind],
			co.socks5 ? " via " : "", co.socks5 ? co.socks5 : "", strerror(errno));
		return 1;
	}
	free(line);
	rc_loop_run(l);
	rc_loop_free(l);
	return status;
usage:
	fprintf(stderr, "usage: echo-client [--binary] [--no-deflate] [--socks5 URL] [--ca FILE] "
		"[--insecure] [--size N]... ws[s]://HOST:PORT/PATH [MESSAGE...]\n");
	return 2;
}
