/* echo-server [HOST:]PORT: echoes every message.  Test knobs: ECHO_NO_DEFLATE,
 * ECHO_CONTEXT_TAKEOVER (keep our deflate context), ECHO_MAX_MESSAGE=bytes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rc.h"

static struct rc_server *srv;

static void on_message(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	rc_conn_send(c, op, p, n);
}

static void on_signal(int sig) { (void)sig; rc_server_stop(srv); }

int main(int argc, char **argv)
{
	static const struct rc_handlers h = { .on_message = on_message };
	struct rc_options o;
	char addr[300];

	rc_options_default(&o);
	o.deflate.enabled = !getenv("ECHO_NO_DEFLATE");
	o.deflate.server_no_context_takeover = !getenv("ECHO_CONTEXT_TAKEOVER");
	o.max_message_size = o.max_frame_size = strtoull(getenv("ECHO_MAX_MESSAGE") ?: "16777216", 0, 0);
	o.max_backpressure = 64u << 20; /* a whole 16 MiB echo fits */
	snprintf(addr, sizeof(addr), "%s%s", argc > 1 && !strchr(argv[1], ':') ? ":" : "",
		 argc > 1 ? argv[1] : ":9001");
	srv = rc_server_new(&(struct rc_server_config){ .options = &o, .threads = 1,
							.default_handlers = &h });
	if (!srv || rc_server_listen(srv, addr) < 0)
		return fprintf(stderr, "echo-server: cannot listen on %s\n", addr), 1;
	signal(SIGINT, on_signal), signal(SIGTERM, on_signal);
	fprintf(stderr, "echo-server: listening on port %d\n", rc_server_port(srv));
	return rc_server_run(srv) < 0;
}
