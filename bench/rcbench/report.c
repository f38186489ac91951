/* Output: the live progress line, the final text report, --json and the
 * --plot SVG (latency distribution and deliveries over time), written
 * directly so the tool needs nothing else installed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench/rcbench/rcbench.h"

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

/* One progress line (see rcbench.h). */
void rcb_progress(const char *what, double t, uint64_t conns, uint64_t target,
		  double rate, const char *rate_name, const struct rcb_hist *h,
		  uint64_t closed)
{
	fprintf(stderr, "%s %5.1fs  conns %llu/%llu  %.0f %s  p99 %.0f us  closed %llu\n",
		what, t, (unsigned long long)conns, (unsigned long long)target, rate, rate_name,
		us(rcb_hist_quantile(h, 0.99)), (unsigned long long)closed);
}

/* The final report on stdout. */
void rcb_report_text(const struct rcb_result *r)
{
	const struct rcb_hist *h = &r->hist;

	printf("== ringcast-bench %s ==\n", r->scenario);
	printf("connections   %llu ready, %llu failed, in %.2f s (%.0f/s)\n",
	       (unsigned long long)r->conns, (unsigned long long)r->conns_failed, r->connect_s,
	       r->connect_s > 0 ? (double)r->conns / r->connect_s : 0);
	if (strcmp(r->scenario, "connect") != 0) {
		printf("published     %llu (%.0f/s in the measured %.1f s)\n",
		       (unsigned long long)r->published, r->publish_rate, r->measured_s);
		printf("delivered     %llu of %llu expected; %.0f deliveries/s, %.1f MB/s\n",
		       (unsigned long long)r->delivered, (unsigned long long)r->expected,
		       r->deliveries_per_sec, r->mbytes_per_sec);
		printf("lost %llu  duplicated %llu  reordered %llu  malformed %llu\n",
		       (unsigned long long)r->lost, (unsigned long long)r->duplicated,
		       (unsigned long long)r->reordered, (unsigned long long)r->bad);
		printf("latency us    p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (%llu samples)\n",
		       us(rcb_hist_quantile(h, 0.5)), us(rcb_hist_quantile(h, 0.9)),
		       us(rcb_hist_quantile(h, 0.99)), us(rcb_hist_quantile(h, 0.999)), us(h->max),
		       (unsigned long long)h->count);
	}
	if (r->rounds)
		printf("time to last  %.0f us (median of %u rounds)\n", r->time_to_last_us, r->rounds);
	if (r->bench_cpu_pct > 0 || r->server_cpu_pct > 0)
		printf("cpu           bench %.0f%%  server %.0f%% (of one core)\n", r->bench_cpu_pct,
		       r->server_cpu_pct);
	if (r->server_rss_kib > 0)
		printf("server rss    %ld KiB (%.0f B per connection)\n", r->server_rss_kib,
		       r->rss_per_conn_bytes);
	fflush(stdout);
}

/* --json FILE: flat object; the documented fields first. */
int rcb_report_json(const struct rcb_result *r, const char *file)
{
	const struct rcb_hist *h = &r->hist;
	const struct rcb_opts *o = r->o;
	FILE *f = strcmp(file, "-") == 0 ? stdout : fopen(file, "w");

	if (!f) {
		fprintf(stderr, "ringcast-bench: %s: %s\n", file, strerror(errno));
		return -errno;
	}
	fprintf(f, "{\n  \"scenario\": \"%s\",\n", r->scenario);
	fprintf(f, "  \"deliveries_per_sec\": %.1f,\n  \"published\": %llu,\n  \"delivered\": %llu,\n",
		r->deliveries_per_sec, (unsigned long long)r->published,
		(unsigned long long)r->delivered);
	fprintf(f, "  \"expected\": %llu,\n  \"lost\": %llu,\n  \"duplicated\": %llu,\n"
		"  \"reordered\": %llu,\n  \"malformed\": %llu,\n",
		(unsigned long long)r->expected, (unsigned long long)r->lost,
		(unsigned long long)r->duplicated, (unsigned long long)r->reordered,
		(unsigned long long)r->bad);
	fprintf(f, "  \"p50_us\": %.1f,\n  \"p90_us\": %.1f,\n  \"p99_us\": %.1f,\n"
		"  \"p999_us\": %.1f,\n  \"max_us\": %.1f,\n  \"latency_samples\": %llu,\n",
		us(rcb_hist_quantile(h, 0.5)), us(rcb_hist_quantile(h, 0.9)),
		us(rcb_hist_quantile(h, 0.99)), us(rcb_hist_quantile(h, 0.999)), us(h->max),
		(unsigned long long)h->count);
	fprintf(f, "  \"publish_rate\": %.1f,\n  \"mbytes_per_sec\": %.2f,\n  \"measured_s\": %.2f,\n",
		r->publish_rate, r->mbytes_per_sec, r->measured_s);
	fprintf(f, "  \"connections\": %llu,\n  \"connections_failed\": %llu,\n"
		"  \"connect_s\": %.3f,\n  \"connect_rate\": %.1f,\n",
		(unsigned long long)r->conns, (unsigned long long)r->conns_failed, r->connect_s,
		r->connect_s > 0 ? (double)r->conns / r->connect_s : 0);
	fprintf(f, "  \"bench_cpu_pct\": %.1f,\n  \"server_cpu_pct\": %.1f,\n"
		"  \"server_rss_kib\": %ld,\n  \"server_rss_base_kib\": %ld,\n"
		"  \"rss_per_conn_bytes\": %.1f,\n",
		r->bench_cpu_pct, r->server_cpu_pct, r->server_rss_kib, r->server_rss_base_kib,
		r->rss_per_conn_bytes);
	fprintf(f, "  \"time_to_last_us\": %.1f,\n  \"rounds_last_us\": [", r->time_to_last_us);
	for (unsigned i = 0; i < r->rounds; i++)
		fprintf(f, "%s%.1f", i ? ", " : "", r->round_last_us[i]);
	fprintf(f, "],\n  \"subs\": %u,\n  \"topics\": %u,\n  \"pubs\": %u,\n  \"conns\": %u,\n"
		"  \"size\": %zu,\n  \"rate\": %.1f,\n  \"duration\": %.2f,\n  \"warmup\": %.2f,\n"
		"  \"mode\": \"%s\",\n  \"deflate\": %s\n}\n",
		o->subs, o->topics, o->pubs, o->conns, o->size, o->rate, o->duration, o->warmup,
		o->sse ? "sse" : o->json_mode ? "json" : "raw", o->deflate ? "true" : "false");
	if (f != stdout && fclose(f) != 0)
		return -errno;
	return 0;
}

/* 1234567 -> "1.23M": short axis labels. */
static const char *si(double v, char *buf, size_t cap)
{
	if (v >= 1e6)
		snprintf(buf, cap, "%.3gM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, cap, "%.3gk", v / 1e3);
	else
		snprintf(buf, cap, "%.3g", v);
	return buf;
}

/* --plot FILE.svg: left, the latency CDF on a log axis; right, deliveries
 * per second over time (100 ms buckets) from the start to the end of the
 * measured window, the warm-up shaded, with scales on both axes. */
int rcb_report_svg(const struct rcb_result *r, const char *file)
{
	const struct rcb_hist *h = &r->hist;
	FILE *f = fopen(file, "w");
	const double W = 420, H = 260, L = 60, T = 40;

	if (!f) {
		fprintf(stderr, "ringcast-bench: %s: %s\n", file, strerror(errno));
		return -errno;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		"font-family=\"sans-serif\" font-size=\"11\">\n", 2 * (W + L) + 40, H + T + 60);
	fprintf(f, "<text x=\"10\" y=\"18\" font-size=\"14\">ringcast-bench %s: %.0f deliveries/s, "
		"p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us</text>\n", r->scenario,
		r->deliveries_per_sec, us(rcb_hist_quantile(h, 0.5)), us(rcb_hist_quantile(h, 0.99)),
		us(rcb_hist_quantile(h, 0.999)), us(h->max));
	/* Latency CDF: x = log10(us) over [lo, hi] decades. */
	double lo = 0, hi = 1;
	if (h->count) {
		lo = floor(log10(fmax(us(rcb_hist_quantile(h, 0.0)), 1)));
		hi = ceil(log10(fmax(us(h->max), 10)));
		if (hi <= lo)
			hi = lo + 1;
	}
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#888\"/>\n",
		L, T, W, H);
	for (double d = lo; d <= hi; d++)
		fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%g us</text>\n",
			L + (d - lo) / (hi - lo) * W, T + H + 15, pow(10, d));
	for (int q = 0; q <= 4; q++) /* y: share of samples */
		fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n"
			"<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
			L - 4, T + H - q * H / 4 + 4, q * 25, L, L + W, T + H - q * H / 4,
			T + H - q * H / 4);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">latency CDF (%llu samples)</text>\n",
		L + W / 2, T + H + 32, (unsigned long long)h->count);
	fprintf(f, "<polyline fill=\"none\" stroke=\"#c33\" stroke-width=\"1.5\" points=\"");
	uint64_t seen = 0;
	for (unsigned i = 0; i < RCB_HIST_N && h->count; i++) {
		if (!h->b[i])
			continue;
		seen += h->b[i];
		double x = log10(fmax(us(rcb_hist_bucket_low(i)), pow(10, lo)));
		fprintf(f, "%.1f,%.1f ", L + (x - lo) / (hi - lo) * W,
			T + H - (double)seen / (double)h->count * H);
	}
	fprintf(f, "\"/>\n");
	/* Deliveries per second over time, up to the end of the measured
	 * window (the drain after it is not part of the result). */
	unsigned n = r->mtick1 ? r->mtick1 : r->nticks;
	double X = L * 2 + W + 20, peak = 1, secs = n / 10.0;
	for (unsigned k = 0; k < n; k++)
		peak = fmax(peak, (double)r->ticks[k] * 10);
	fprintf(f, "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" fill=\"#eee\"/>\n"
		"<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#888\">warm-up</text>\n",
		X, T, n ? (double)r->mtick0 / n * W : 0, H, X + (n ? (double)r->mtick0 / n * W : 0) / 2,
		T + 14);
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#888\"/>\n",
		X, T, W, H);
	char lab[32];
	for (int q = 0; q <= 4; q++) /* y: deliveries/s */
		fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			X - 4, T + H - q * H / 4 + 4, si(peak * q / 4, lab, sizeof(lab)));
	double step = secs <= 10 ? 1 : secs <= 60 ? 5 : 60; /* x: seconds */
	for (double t = 0; n && t <= secs + 1e-9; t += step)
		fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%gs</text>\n",
			X + t / secs * W, T + H + 15, t);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">deliveries/s, 100 ms "
		"buckets (peak %.0f)</text>\n", X + W / 2, T + H + 32, peak);
	fprintf(f, "<polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"1.5\" points=\"");
	for (unsigned k = 0; k < n; k++)
		fprintf(f, "%.1f,%.1f ", X + (k + 0.5) / n * W, /* bucket middles */
			T + H - (double)r->ticks[k] * 10 / peak * H);
	fprintf(f, "\"/>\n</svg>\n");
	if (fclose(f) != 0)
		return -errno;
	return 0;
}
