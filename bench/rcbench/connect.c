/* connect: C connections as fast as the handshake window allows, then held
 * idle; reports the connect rate and, for a local broker (--server-pid),
 * its RSS growth per connection. */
#include <stdio.h>
#include <time.h>

#include "bench/rcbench/rcbench.h"

static void connect_url(const struct rcb_opts *o, uint32_t idx, char *buf, size_t cap)
{
	(void)idx;
	snprintf(buf, cap, "%s://%s:%u%s", o->scheme, o->host, o->port, o->path);
}

static void on_message(struct rc_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
{
	struct rcb_conn *bc = rc_conn_user(c);

	(void)opcode;
	(void)data;
	bc->t->st->delivered++;
	bc->t->st->bytes += len;
}

static const struct rc_handlers handlers = {
	.on_open = rcb_on_open_ready, .on_message = on_message, .on_close = rcb_on_close,
};

static const struct rcb_scenario_ops ops = { .url = connect_url, .handlers = &handlers };

/* The connect scenario (see rcbench.h). */
int rcb_connect(struct rcb_opts *o)
{
	struct rcb_result r;
	pid_t pids[RCB_MAX_WORKERS];
	int np = rcb_scenario_start(o, "connect", &ops, o->conns, true, &r, pids);

	if (np < 0)
		return 1;
	/* Hold them idle; RSS after the hold, when the broker has settled. */
	uint64_t end = rcb_now() + (uint64_t)(o->duration * 1e9), last = rcb_now();
	while (rcb_now() < end) {
		struct timespec ts = { .tv_nsec = 20000000 };
		nanosleep(&ts, NULL);
		if (!o->quiet && rcb_now() - last >= 1000000000ull) {
			last = rcb_now();
			fprintf(stderr, "holding: %llu open, %llu closed\n",
				(unsigned long long)RCB_SUM(ready), (unsigned long long)RCB_SUM(closed));
		}
	}
	if (o->server_pid)
		rcb_rss_per_conn(&r);
	rcb_scenario_stop(&r, pids, np, 60);
	r.published = 0;
	if (r.connect_s > 0)
		r.publish_rate = (double)r.conns / r.connect_s; /* connections/s */
	return rcb_scenario_report(&r);
}
