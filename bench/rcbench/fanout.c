/* fanout: S subscribers over T topics, P publishers (publisher p publishes
 * to topic p % T), messages of B bytes at a target rate or as fast as a
 * bounded window allows.  Each subscriber checks every publisher's
 * sequence: a jump is loss, a repeat a duplicate, a step back a reorder. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/rcbench/rcbench.h"

static unsigned pubs_per_topic(const struct rcb_opts *o)
{
	return (o->pubs + o->topics - 1) / o->topics;
}

static void fanout_url(const struct rcb_opts *o, uint32_t idx, char *buf, size_t cap)
{
	if (o->sse)
		snprintf(buf, cap, "%s://%s:%u", strcmp(o->scheme, "wss") ? "tcp" : "tls", o->host,
			 o->port);
	else if (o->json_mode)
		snprintf(buf, cap, "%s://%s:%u/ws", o->scheme, o->host, o->port);
	else
		snprintf(buf, cap, "%s://%s:%u/sub/%s%u%s", o->scheme, o->host, o->port,
			 o->topic_prefix, idx % o->topics, o->pattern ? ".*" : "");
}

static void on_open(struct rc_conn *c)
{
	struct rcb_conn *bc = rc_conn_user(c);
	const struct rcb_opts *o = bc->t->o;
	char cmd[160];

	bc->state = RCB_C_OPEN;
	if (!o->json_mode) {
		/* The broker subscribes before it answers the upgrade. */
		rcb_conn_ready(bc);
		return;
	}
	int n = snprintf(cmd, sizeof(cmd), "{\"op\":\"sub\",\"topic\":\"%s%u%s\",\"id\":1}",
			 o->topic_prefix, bc->topic, o->pattern ? ".*" : "");
	if (rc_conn_send(c, RC_OP_TEXT, cmd, (size_t)n) < 0)
		rc_conn_close(c, 1000, NULL, 0);
}

static void count_delivery(struct rcb_thread *t, size_t len, uint64_t ts, uint64_t now)
{
	struct rcb_stats *st = t->st;
	uint64_t t0 = t->sh->t0;

	st->delivered++;
	st->bytes += len;
	if (t0 && now >= t0) {
		uint64_t k = (now - t0) / RCB_TICK_NS;
		if (k < RCB_MAX_TICKS)
			st->ticks[k]++;
	}
	if (ts >= t->sh->mstart && ts < t->sh->mend)
		rcb_hist_record(&st->hist, now > ts ? now - ts : 0);
}

static void on_message(struct rc_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
{
	struct rcb_conn *bc = rc_conn_user(c);
	const struct rcb_opts *o = bc->t->o;

	(void)opcode;
	if (o->json_mode && bc->state == RCB_C_OPEN && memmem(data, len, "\"op\":\"ack\"", 10))
		rcb_conn_ready(bc);
	else if (!(o->json_mode && memmem(data, len, "\"op\":\"welcome\"", 14)))
		rcb_fanout_got(bc, data, len);
}

/* A message for subscriber bc (see rcbench.h). */
void rcb_fanout_got(struct rcb_conn *bc, const uint8_t *data, size_t len)
{
	struct rcb_thread *t = bc->t;
	const struct rcb_opts *o = t->o;
	uint32_t pub;
	uint64_t seq, ts, now = rcb_now();

	if (rcb_payload_parse(data, len, o->json_mode, &pub, &seq, &ts) < 0) {
		t->st->bad++;
		return;
	}
	if (pub >= o->pubs || pub % o->topics != bc->topic) {
		t->st->bad++;
		return;
	}
	uint64_t *last = &bc->last[pub / o->topics];
	if (seq == *last + 1) {
		*last = seq;
	} else if (seq > *last + 1) {
		bc->gaps += seq - *last - 1;
		*last = seq;
	} else if (seq == *last) {
		t->st->duplicated++;
	} else {
		/* A late arrival: it was counted as a gap when its successor came. */
		t->st->reordered++;
		if (bc->gaps)
			bc->gaps--;
	}
	count_delivery(t, len, ts, now);
	/* The topic's first subscriber paces window-mode publishers. */
	if (bc->idx == bc->topic)
		__atomic_store_n(&t->sh->pub_acked[pub], *last, __ATOMIC_RELAXED);
}

static const struct rc_handlers handlers = {
	.on_open = on_open, .on_message = on_message, .on_close = rcb_on_close,
};

/* One block of sequence slots for the thread's subscribers, allocated
 * before any message flows. */
static int fanout_setup(struct rcb_thread *t)
{
	unsigned ppt = pubs_per_topic(t->o);
	uint64_t *mem = calloc((size_t)t->n * ppt + 1, sizeof(uint64_t));

	if (!mem || (t->o->sse && rcb_sse_setup(t) < 0)) {
		free(mem);
		return -ENOMEM;
	}
	t->scratch = mem;
	for (unsigned i = 0; i < t->n; i++) {
		t->conns[i].topic = t->conns[i].idx % t->o->topics;
		t->conns[i].last = mem + (size_t)i * ppt;
	}
	return 0;
}

/* Loss: for every subscriber that was ever subscribed, what its topic's
 * publishers sent beyond the last seq it saw, plus the holes before it. */
static void fanout_finish(struct rcb_thread *t)
{
	const struct rcb_opts *o = t->o;
	unsigned ppt = pubs_per_topic(o);

	for (unsigned i = 0; i < t->n; i++) {
		struct rcb_conn *bc = &t->conns[i];
		if (bc->state != RCB_C_READY && bc->state != RCB_C_GONE)
			continue;
		for (unsigned k = 0; k < ppt; k++) {
			unsigned p = bc->topic + k * o->topics;
			if (p >= o->pubs)
				break;
			uint64_t sent = t->sh->pub_sent[p];
			t->st->expected += sent;
			if (bc->last[k] < sent)
				t->st->lost += sent - bc->last[k];
		}
		t->st->lost += bc->gaps;
	}
	free(t->scratch);
	t->scratch = NULL;
	if (o->sse)
		rcb_sse_free(t);
}

static const struct rcb_scenario_ops ops = {
	.url = fanout_url, .handlers = &handlers, .setup = fanout_setup,
	.finish = fanout_finish,
};

static const struct rcb_scenario_ops sse_ops = {
	.url = fanout_url, .stream = &rcb_sse_handlers, .setup = fanout_setup,
	.finish = fanout_finish,
};

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };
	nanosleep(&ts, NULL);
}

/* Publishes until mend.  Rate mode: keeps the total on the schedule
 * R * elapsed.  Window mode: each publisher stays at most `window`
 * messages ahead of its topic's tracking subscriber. */
static int publish(const struct rcb_opts *o, struct rcb_pub *pubs, const pid_t *pids,
		   unsigned np, struct rcb_cpu_sample *c0, struct rcb_cpu_sample *c1,
		   uint64_t *pub_at_mstart)
{
	uint64_t t0 = rcb_sh->t0, total = 0;
	struct rcb_ticker tk = { .t0 = t0, .last_print = t0 };
	bool in_measure = false;
	unsigned rr = 0;

	for (;;) {
		uint64_t now = rcb_now();
		if (now >= rcb_sh->mend)
			break;
		if (!in_measure && now >= rcb_sh->mstart) {
			in_measure = true;
			*pub_at_mstart = total;
			rcb_cpu_sample(o, pids, np, c0);
		}
		rcb_progress_tick(&tk, o, "fanout", o->subs, "deliveries/s", now);
		unsigned burst = 0;
		if (o->rate > 0) {
			uint64_t due = (uint64_t)((double)(now - t0) * o->rate / 1e9) + 1;
			while (total < due && burst < 4096) {
				struct rcb_pub *p = &pubs[rr++ % o->pubs];
				if (rcb_pub_send(p, o->json_mode) < 0)
					return -EIO;
				rcb_sh->pub_sent[p->id] = p->seq;
				total++;
				burst++;
			}
			if (burst == 0) {
				uint64_t next = t0 + (uint64_t)((double)total * 1e9 / o->rate);
				sleep_ns(next > now ? (next - now < 1000000 ? next - now : 1000000) : 0);
			}
			continue;
		}
		for (unsigned i = 0; i < o->pubs; i++) {
			struct rcb_pub *p = &pubs[i];
			uint64_t acked = __atomic_load_n(&rcb_sh->pub_acked[i], __ATOMIC_RELAXED);
			if (p->seq - acked >= o->window)
				continue;
			if (rcb_pub_send(p, o->json_mode) < 0)
				return -EIO;
			rcb_sh->pub_sent[i] = p->seq;
			total++;
			burst++;
		}
		if (burst == 0)
			sleep_ns(20000);
	}
	if (!in_measure)
		rcb_cpu_sample(o, pids, np, c0);
	rcb_cpu_sample(o, pids, np, c1);
	return 0;
}

/* Deliveries owed once every publisher's last message has arrived:
 * subscriber i listens to topic i % T, publisher p sends to topic p % T. */
static uint64_t owed(const struct rcb_opts *o, const struct rcb_pub *pubs)
{
	uint64_t total = 0;

	for (unsigned p = 0; p < o->pubs; p++) {
		unsigned t = p % o->topics;
		uint64_t subs = o->subs / o->topics + (t < o->subs % o->topics ? 1 : 0);
		total += pubs[p].seq * subs;
	}
	return total;
}

/* Waits until everything owed has arrived, or deliveries stop changing for
 * 2 s (a subscriber that failed or was closed), bounded by 15 s: a short
 * stall on a loaded machine must not end the run with deliveries still in
 * flight and count them as lost. */
static void drain(uint64_t target)
{
	uint64_t last = RCB_SUM(delivered), since = rcb_now(), end = since + 15000000000ull;

	while (rcb_now() < end && last < target) {
		sleep_ns(20000000);
		uint64_t d = RCB_SUM(delivered);
		if (d != last) {
			last = d;
			since = rcb_now();
		} else if (rcb_now() - since > 2000000000ull) {
			break;
		}
	}
}

/* The fanout scenario (see rcbench.h). */
int rcb_fanout(struct rcb_opts *o)
{
	struct rcb_result r;
	struct rcb_pub *pubs;
	struct rcb_cpu_sample c0 = { 0 }, c1 = { 0 };
	pid_t pids[RCB_MAX_WORKERS];
	uint64_t pub_at_mstart = 0;
	int np, ret = 0;

	if (o->topics == 0 || o->pubs == 0 || o->subs < o->topics) {
		fprintf(stderr, "fanout: need --topics >= 1, --pubs >= 1 and --subs >= --topics\n");
		return 2;
	}
	np = rcb_scenario_start(o, "fanout", o->sse ? &sse_ops : &ops, o->subs, false, &r, pids);
	if (np < 0)
		return 1;
	pubs = calloc(o->pubs, sizeof(*pubs));
	for (unsigned i = 0; pubs && i < o->pubs; i++) {
		char path[300];
		const char *why = "";
		snprintf(path, sizeof(path), "/pub/%s%u%s", o->topic_prefix, i % o->topics,
			 o->pattern ? ".x" : "");
		int fd = rcb_ws_dial(o, path, o->naddrs ? o->addrs[(o->subs + i) % o->naddrs] : NULL,
				     &why);
		if (fd < 0 || rcb_pub_init(&pubs[i], fd, i, o) < 0) {
			fprintf(stderr, "fanout: publisher %u: %s: %s\n", i, why, strerror(-fd));
			ret = 1;
			for (unsigned k = 0; k < i; k++)
				rcb_pub_free(&pubs[k]);
			goto out_stop;
		}
	}
	if (!pubs)
		goto out_stop;
	uint64_t wu, du;
	rcb_run_window(o, &wu, &du);
	if (publish(o, pubs, pids, (unsigned)np, &c0, &c1, &pub_at_mstart) < 0) {
		fprintf(stderr, "fanout: a publisher failed (broker gone or not reading)\n");
		ret = 1;
	}
	uint64_t total = 0;
	for (unsigned i = 0; i < o->pubs; i++)
		total += pubs[i].seq;
	rcb_sh->phase = RCB_DRAIN;
	drain(owed(o, pubs));
	for (unsigned i = 0; i < o->pubs; i++)
		rcb_pub_free(&pubs[i]);
	r.published = total;
	r.measured_s = (double)du / 1e9;
	r.publish_rate = (double)(total - pub_at_mstart) / r.measured_s;
	rcb_cpu_pct(&r, &c0, &c1);
	if (o->server_pid)
		r.server_rss_kib = rcb_proc_rss_kib(o->server_pid);
out_stop:
	rcb_scenario_stop(&r, pids, np, 30);
	free(pubs);
	r.expected = RCB_SUM(expected);
	r.lost = RCB_SUM(lost);
	r.duplicated = RCB_SUM(duplicated);
	r.reordered = RCB_SUM(reordered);
	r.bad = RCB_SUM(bad);
	uint64_t m = 0, k0 = (rcb_sh->mstart - rcb_sh->t0) / RCB_TICK_NS;
	uint64_t k1 = (rcb_sh->mend - rcb_sh->t0) / RCB_TICK_NS;
	for (uint64_t k = k0; rcb_sh->t0 && k < k1 && k < RCB_MAX_TICKS; k++)
		m += r.ticks[k];
	r.nticks = (unsigned)(k1 + 20 < RCB_MAX_TICKS ? k1 + 20 : RCB_MAX_TICKS);
	r.mtick0 = (unsigned)(k0 < RCB_MAX_TICKS ? k0 : RCB_MAX_TICKS);
	r.mtick1 = (unsigned)(k1 < RCB_MAX_TICKS ? k1 : RCB_MAX_TICKS);
	if (r.measured_s > 0) {
		r.deliveries_per_sec = (double)m / r.measured_s;
		r.mbytes_per_sec = r.deliveries_per_sec * (double)o->size / 1e6;
	}
	return rcb_scenario_report(&r) | ret;
}
