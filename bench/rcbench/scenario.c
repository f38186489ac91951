/* What every scenario's coordinator does the same way: start the workers
 * and wait for their connections, open the measured window, sample CPU
 * time, print progress, stop the workers and report.  The scenarios keep
 * only what makes them different (publishing, rounds, holding idle). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/rcbench/rcbench.h"

/* Starts the scenario's workers and waits for the connections (see
 * rcbench.h). */
int rcb_scenario_start(struct rcb_opts *o, const char *name,
		       const struct rcb_scenario_ops *ops, unsigned nconns, bool rss_base,
		       struct rcb_result *r, pid_t *pids)
{
	unsigned procs, nw;
	int np;

	rcb_layout(o, nconns, &procs, &nw);
	if (rcb_shared_init(o, nw) < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->scenario = name;
	if (rss_base)
		r->server_rss_base_kib = o->server_pid ? rcb_proc_rss_kib(o->server_pid) : -1;
	np = rcb_workers_start(o, ops, nconns, pids, RCB_MAX_WORKERS);
	if (np < 0) {
		fprintf(stderr, "%s: starting workers: %s\n", name, strerror(-np));
		return -1;
	}
	r->connect_s = rcb_wait_connected(o, nconns);
	r->conns = RCB_SUM(ready);
	r->conns_failed = RCB_SUM(failed);
	return np;
}

/* Opens the measured window (see rcbench.h). */
uint64_t rcb_run_window(const struct rcb_opts *o, uint64_t *wu, uint64_t *du)
{
	uint64_t t0 = rcb_now();

	/* Whole ticks, so the measured window is a whole run of the timeline. */
	*wu = (uint64_t)(o->warmup * 10 + 0.5) * RCB_TICK_NS;
	*du = (uint64_t)(o->duration * 10 + 0.5) * RCB_TICK_NS;
	rcb_sh->mstart = t0 + *wu;
	rcb_sh->mend = t0 + *wu + *du;
	rcb_sh->t0 = t0;
	rcb_sh->phase = RCB_RUN;
	return t0;
}

/* Samples the CPU time of the bench and the broker (see rcbench.h). */
void rcb_cpu_sample(const struct rcb_opts *o, const pid_t *pids, unsigned np,
		    struct rcb_cpu_sample *s)
{
	s->bench = rcb_proc_cpu_ns(getpid());
	for (unsigned i = 0; i < np; i++)
		s->bench += rcb_proc_cpu_ns(pids[i]);
	s->server = o->server_pid ? rcb_proc_cpu_ns(o->server_pid) : 0;
	s->at = rcb_now();
}

/* CPU percentages between two samples into r (see rcbench.h). */
void rcb_cpu_pct(struct rcb_result *r, const struct rcb_cpu_sample *c0,
		 const struct rcb_cpu_sample *c1)
{
	if (!c0->at || c1->at <= c0->at)
		return;
	r->bench_cpu_pct = 100.0 * (double)(c1->bench - c0->bench) / (double)(c1->at - c0->at);
	r->server_cpu_pct = 100.0 * (double)(c1->server - c0->server) / (double)(c1->at - c0->at);
}

/* The once-a-second progress line of a running scenario (see rcbench.h). */
void rcb_progress_tick(struct rcb_ticker *tk, const struct rcb_opts *o, const char *what,
		       uint64_t target, const char *rate_name, uint64_t now)
{
	if (o->quiet || now - tk->last_print < 1000000000ull)
		return;
	struct rcb_hist h = { 0 };
	uint64_t d = RCB_SUM(delivered);
	for (unsigned i = 0; i < rcb_sh->nworkers; i++)
		rcb_hist_merge(&h, &rcb_sh->w[i].hist);
	rcb_progress(what, (double)(now - tk->t0) / 1e9, RCB_SUM(ready), target,
		     (double)(d - tk->last_d) * 1e9 / (double)(now - tk->last_print), rate_name,
		     &h, RCB_SUM(closed));
	tk->last_d = d;
	tk->last_print = now;
}

/* The broker's RSS now, and its growth per connection (see rcbench.h). */
void rcb_rss_per_conn(struct rcb_result *r)
{
	const struct rcb_opts *o = r->o;

	r->server_rss_kib = rcb_proc_rss_kib(o->server_pid);
	if (r->conns && r->server_rss_base_kib >= 0)
		r->rss_per_conn_bytes = (double)(r->server_rss_kib - r->server_rss_base_kib) *
					1024.0 / (double)r->conns;
}

/* Stops the workers and collects what they measured (see rcbench.h). */
void rcb_scenario_stop(struct rcb_result *r, pid_t *pids, int np, double timeout_s)
{
	rcb_sh->phase = RCB_STOP;
	rcb_workers_wait(pids, (unsigned)np, timeout_s);
	rcb_merge(r);
	r->delivered = RCB_SUM(delivered);
}

/* Prints and writes the report (see rcbench.h). */
int rcb_scenario_report(const struct rcb_result *r)
{
	const struct rcb_opts *o = r->o;
	int ret = 0;

	rcb_report_text(r);
	if (o->json_file && rcb_report_json(r, o->json_file) < 0)
		ret = 1;
	if (o->plot_file && rcb_report_svg(r, o->plot_file) < 0)
		ret = 1;
	return ret;
}

/* The on_close handler every scenario shares (see rcbench.h). */
void rcb_on_close(struct rc_conn *c, uint16_t code, const uint8_t *reason, size_t n)
{
	(void)reason;
	(void)n;
	rcb_conn_gone(rc_conn_user(c), code);
}

/* The on_open handler of scenarios with nothing to do after the upgrade
 * (see rcbench.h). */
void rcb_on_open_ready(struct rc_conn *c)
{
	struct rcb_conn *bc = rc_conn_user(c);

	bc->state = RCB_C_OPEN;
	rcb_conn_ready(bc);
}
