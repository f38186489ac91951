/* broadcast: S idle subscribers of one topic; one message at a time (a
 * round), and the time until the last subscriber has it.  Rounds are
 * spaced so each starts from idle; the median round is the headline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/rcbench/rcbench.h"

static void bc_url(const struct rcb_opts *o, uint32_t idx, char *buf, size_t cap)
{
	(void)idx;
	snprintf(buf, cap, "%s://%s:%u/sub/%sbcast", o->scheme, o->host, o->port,
		 o->topic_prefix);
}

static void on_message(struct rc_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
{
	struct rcb_conn *bc = rc_conn_user(c);
	struct rcb_stats *st = bc->t->st;
	uint32_t pub;
	uint64_t seq, ts, now = rcb_now();

	(void)opcode;
	if (rcb_payload_parse(data, len, false, &pub, &seq, &ts) < 0 || seq == 0 ||
	    seq > RCB_MAX_ROUNDS) {
		st->bad++;
		return;
	}
	st->delivered++;
	st->bytes += len;
	st->round_count[seq - 1]++;
	if (now > st->round_last[seq - 1])
		st->round_last[seq - 1] = now;
	rcb_hist_record(&st->hist, now - ts);
}

static const struct rc_handlers handlers = {
	.on_open = rcb_on_open_ready, .on_message = on_message, .on_close = rcb_on_close,
};

static const struct rcb_scenario_ops ops = { .url = bc_url, .handlers = &handlers };

static uint64_t round_sum(unsigned k, bool last)
{
	uint64_t s = 0;

	for (unsigned i = 0; i < rcb_sh->nworkers; i++) {
		volatile struct rcb_stats *st = &rcb_sh->w[i];
		if (last)
			s = st->round_last[k] > s ? st->round_last[k] : s;
		else
			s += st->round_count[k];
	}
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The broadcast scenario (see rcbench.h). */
int rcb_broadcast(struct rcb_opts *o)
{
	struct rcb_result r;
	struct rcb_pub pub;
	pid_t pids[RCB_MAX_WORKERS];
	int np, ret = 0;
	const char *why = "";
	char path[300];

	if (o->size < RCB_MIN_RAW || o->rounds == 0 || o->rounds > RCB_MAX_ROUNDS) {
		fprintf(stderr, "broadcast: --size >= %d and --rounds 1..%d\n", RCB_MIN_RAW,
			RCB_MAX_ROUNDS);
		return 2;
	}
	o->json_mode = false;
	o->pubs = 1;
	np = rcb_scenario_start(o, "broadcast", &ops, o->subs, true, &r, pids);
	if (np < 0)
		return 1;
	if (o->server_pid) {
		struct timespec ts = { .tv_nsec = 500000000 };
		nanosleep(&ts, NULL); /* let the last handshakes settle */
		rcb_rss_per_conn(&r);
	}
	snprintf(path, sizeof(path), "/pub/%sbcast", o->topic_prefix);
	int fd = rcb_ws_dial(o, path, NULL, &why);
	if (fd < 0 || rcb_pub_init(&pub, fd, 0, o) < 0) {
		fprintf(stderr, "broadcast: publisher: %s: %s\n", why, strerror(-fd));
		ret = 1;
		goto out_stop;
	}
	rcb_sh->t0 = rcb_now();
	rcb_sh->mstart = 0;
	rcb_sh->mend = UINT64_MAX;
	rcb_sh->phase = RCB_RUN;
	uint64_t target = r.conns - RCB_SUM(closed);
	for (unsigned k = 0; k < o->rounds; k++) {
		if (rcb_pub_send(&pub, false) < 0) {
			ret = 1;
			break;
		}
		rcb_sh->round_ts[k] = pub.last_ts;
		uint64_t end = pub.last_ts + 10000000000ull;
		while (round_sum(k, false) < target && rcb_now() < end) {
			struct timespec ts = { .tv_nsec = 1000000 };
			nanosleep(&ts, NULL);
		}
		uint64_t got = round_sum(k, false), lastrx = round_sum(k, true);
		r.round_last_us[k] = lastrx > pub.last_ts ? (double)(lastrx - pub.last_ts) / 1e3 : 0;
		r.lost += target - (got < target ? got : target);
		r.rounds++;
		if (!o->quiet)
			fprintf(stderr, "round %u: %llu/%llu subscribers, last after %.0f us\n", k + 1,
				(unsigned long long)got, (unsigned long long)target, r.round_last_us[k]);
		struct timespec gap = { .tv_nsec = 300000000 };
		nanosleep(&gap, NULL);
	}
	r.published = pub.seq;
	rcb_pub_free(&pub);
out_stop:
	rcb_scenario_stop(&r, pids, np, 60);
	r.expected = r.published * r.conns;
	r.bad = RCB_SUM(bad);
	if (r.rounds) {
		double v[RCB_MAX_ROUNDS];
		memcpy(v, r.round_last_us, sizeof(double) * r.rounds);
		qsort(v, r.rounds, sizeof(double), cmp_double);
		r.time_to_last_us = v[r.rounds / 2];
	}
	return rcb_scenario_report(&r) | ret;
}
