/* echo-client ws://HOST:PORT/PATH [MESSAGE...]: sends each message (or each
 * line of stdin), prints each echo, and exits 0 once all came back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rc.h"

static char **msgs;
static int nmsgs, got, status = 1;
static char line[65536];

static void on_open(struct rc_conn *c)
{
	for (int i = 0; i < nmsgs; i++)
		rc_conn_send(c, RC_OP_TEXT, msgs[i], strlen(msgs[i]));
	if (nmsgs == 0 && fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		nmsgs = 1;
		rc_conn_send(c, RC_OP_TEXT, line, strlen(line));
	}
	if (nmsgs == 0)
		rc_conn_close(c, RC_CLOSE_NORMAL, NULL, 0);
}

static void on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	(void)op;
	printf("%.*s\n", (int)n, (const char *)p);
	fflush(stdout);
	if (++got == nmsgs) {
		status = 0;
		rc_conn_close(c, RC_CLOSE_NORMAL, NULL, 0);
	}
}

static void on_close(struct rc_conn *c, uint16_t code, const uint8_t *r, size_t n)
{
	if (code != RC_CLOSE_NORMAL)
		fprintf(stderr, "echo-client: closed with %u %.*s\n", code, (int)n, (const char *)r);
	rc_loop_stop(rc_conn_loop(c));
}

int main(int argc, char **argv)
{
	static const struct rc_handlers h = { .on_open = on_open, .on_message = on_message,
					      .on_close = on_close };
	struct rc_loop *l;

	if (argc < 2) {
		fprintf(stderr, "usage: echo-client ws://HOST:PORT/PATH [MESSAGE...]\n");
		return 2;
	}
	msgs = argv + 2;
	nmsgs = argc - 2;
	l = rc_loop_new(NULL);
	if (!l || !rc_client_connect(l, argv[1], NULL, &h, NULL)) {
		perror("echo-client");
		return 1;
	}
	rc_loop_run(l);
	rc_loop_free(l);
	return status;
}
