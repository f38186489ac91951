/* echo: N connections to /echo, each with one request in flight (send,
 * wait for the echo, send again): the shape of GWS's IOPS benchmark.
 * Every request carries its send time; the echo gives the round trip. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench/rcbench/rcbench.h"

static void echo_url(const struct rcb_opts *o, uint32_t idx, char *buf, size_t cap)
{
	(void)idx;
	snprintf(buf, cap, "%s://%s:%u/echo", o->scheme, o->host, o->port);
}

static void send_next(struct rcb_conn *bc)
{
	struct rcb_thread *t = bc->t;

	bc->last[0]++;
	rcb_payload_stamp(t->sendbuf, false, bc->idx, bc->last[0], rcb_now());
	if (rc_conn_send(bc->c, RC_OP_BINARY, t->sendbuf, t->o->size) == 0)
		t->st->sent++;
}

static void on_open(struct rc_conn *c)
{
	struct rcb_conn *bc = rc_conn_user(c);

	bc->c = c;
	bc->state = RCB_C_OPEN;
	rcb_conn_ready(bc);
}

static void on_message(struct rc_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
{
	struct rcb_conn *bc = rc_conn_user(c);
	struct rcb_thread *t = bc->t;
	struct rcb_stats *st = t->st;
	uint32_t id;
	uint64_t seq, ts, now = rcb_now();

	(void)opcode;
	if (len != t->o->size || rcb_payload_parse(data, len, false, &id, &seq, &ts) < 0 ||
	    id != bc->idx) {
		st->bad++;
		return;
	}
	if (seq != bc->last[0])
		st->reordered++;
	st->delivered++;
	st->bytes += len;
	uint64_t t0 = t->sh->t0;
	if (now >= t0 && (now - t0) / RCB_TICK_NS < RCB_MAX_TICKS)
		st->ticks[(now - t0) / RCB_TICK_NS]++;
	if (ts >= t->sh->mstart && ts < t->sh->mend)
		rcb_hist_record(&st->hist, now - ts);
	if (t->sh->phase == RCB_RUN)
		send_next(bc);
}

static const struct rc_handlers handlers = {
	.on_open = on_open, .on_message = on_message, .on_close = rcb_on_close,
};

static void echo_run(struct rcb_thread *t)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->conns[i].state == RCB_C_READY)
			send_next(&t->conns[i]);
}

static int echo_setup(struct rcb_thread *t)
{
	uint64_t *seqs = calloc(t->n + 1, sizeof(uint64_t));

	t->sendbuf = malloc(t->o->size);
	if (!seqs || !t->sendbuf) {
		free(seqs);
		return -ENOMEM;
	}
	t->scratch = seqs;
	rcb_payload_fill(t->sendbuf, t->o->size, false, 0, 0, 0);
	for (unsigned i = 0; i < t->n; i++)
		t->conns[i].last = &seqs[i];
	return 0;
}

static void echo_finish(struct rcb_thread *t)
{
	/* Requests with no answer by the end of the drain. */
	t->st->lost = t->st->sent > t->st->delivered ? t->st->sent - t->st->delivered : 0;
	free(t->scratch);
	free(t->sendbuf);
}

static const struct rcb_scenario_ops ops = {
	.url = echo_url, .handlers = &handlers, .setup = echo_setup,
	.on_run = echo_run, .finish = echo_finish,
};

/* The echo scenario (see rcbench.h). */
int rcb_echo(struct rcb_opts *o)
{
	struct rcb_result r;
	pid_t pids[RCB_MAX_WORKERS];
	int np;

	if (o->size < RCB_MIN_RAW) {
		fprintf(stderr, "echo: --size must be at least %d\n", RCB_MIN_RAW);
		return 2;
	}
	np = rcb_scenario_start(o, "echo", &ops, o->conns, false, &r, pids);
	if (np < 0)
		return 1;
	uint64_t wu, du, t0 = rcb_run_window(o, &wu, &du);
	struct rcb_ticker tk = { .t0 = t0, .last_print = t0 };
	struct rcb_cpu_sample c0 = { 0 }, c1;
	while (rcb_now() < rcb_sh->mend) {
		struct timespec ts = { .tv_nsec = 5000000 };
		nanosleep(&ts, NULL);
		uint64_t now = rcb_now();
		if (!c0.at && now >= rcb_sh->mstart)
			rcb_cpu_sample(o, pids, (unsigned)np, &c0);
		rcb_progress_tick(&tk, o, "echo", o->conns, "echoes/s", now);
	}
	rcb_cpu_sample(o, pids, (unsigned)np, &c1);
	rcb_cpu_pct(&r, &c0, &c1);
	rcb_sh->phase = RCB_DRAIN;
	struct timespec ts = { .tv_nsec = 300000000 };
	nanosleep(&ts, NULL);
	if (o->server_pid)
		r.server_rss_kib = rcb_proc_rss_kib(o->server_pid);
	rcb_scenario_stop(&r, pids, np, 30);
	r.published = RCB_SUM(sent);
	r.expected = r.published;
	r.lost = RCB_SUM(lost);
	r.reordered = RCB_SUM(reordered);
	r.bad = RCB_SUM(bad);
	r.measured_s = (double)du / 1e9;
	uint64_t m = 0;
	for (uint64_t k = wu / RCB_TICK_NS; k < (wu + du) / RCB_TICK_NS && k < RCB_MAX_TICKS; k++)
		m += r.ticks[k];
	r.nticks = (unsigned)((wu + du) / RCB_TICK_NS + 5);
	if (r.nticks > RCB_MAX_TICKS)
		r.nticks = RCB_MAX_TICKS;
	r.mtick0 = (unsigned)(wu / RCB_TICK_NS < r.nticks ? wu / RCB_TICK_NS : r.nticks);
	r.mtick1 = (unsigned)((wu + du) / RCB_TICK_NS < r.nticks ? (wu + du) / RCB_TICK_NS : r.nticks);
	r.deliveries_per_sec = (double)m / r.measured_s;
	r.publish_rate = r.deliveries_per_sec;
	r.mbytes_per_sec = r.deliveries_per_sec * (double)o->size / 1e6;
	return rcb_scenario_report(&r);
}
