/* GET /metrics in the Prometheus text format (0.0.4): every series with
 * # HELP and # TYPE (so `promtool check metrics` passes), the broker's
 * counters, build and process information, and two histograms.
 *
 * The histograms are written on the hot path, so they cost no allocation
 * and no locked instruction: fixed buckets, one block per worker thread,
 * each written by its own thread only (a relaxed load and store), summed
 * when /metrics is read.  The only label taking a value from users is the
 * topic of the per-topic series, and only for the topics the operator
 * lists in metrics_topics (at most 64), so the number of series stays
 * bounded whatever clients do. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/engine.h"

const char *const bk_stat_names[BK_NSTATS] = {
	[BK_CONNECTIONS] = "connections",
	[BK_SUBSCRIPTIONS] = "subscriptions",
	[BK_MSGS_IN] = "messages_in",
	[BK_MSGS_OUT] = "messages_out",
	[BK_BYTES_IN] = "bytes_in",
	[BK_BYTES_OUT] = "bytes_out",
	[BK_DROPS] = "drops",
	[BK_SLOW_CLOSES] = "slow_consumer_closes",
	[BK_DEFLATES] = "deflate_calls",
	[BK_JSON_ERRORS] = "json_errors",
	[BK_HTTP_REQUESTS] = "http_requests",
	[BK_REFUSED] = "connections_refused",
	[BK_SSE_STREAMS] = "sse_streams",
	[BK_SSE_EVENTS] = "sse_events",
};

/* The sum of one counter over every worker. */
uint64_t bk_stat_sum(enum bk_stat s)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < bk.nthreads; i++)
		sum += atomic_load_explicit(&bk.workers[i].stats[s], memory_order_relaxed);
	return sum;
}

static const char *const stat_help[BK_NSTATS] = {
	[BK_CONNECTIONS] = "WebSocket connections open.",
	[BK_SUBSCRIPTIONS] = "Subscriptions held by open connections.",
	[BK_MSGS_IN] = "Messages published (WebSocket and HTTP).",
	[BK_MSGS_OUT] = "Deliveries queued to subscribers.",
	[BK_BYTES_IN] = "Payload bytes published.",
	[BK_BYTES_OUT] = "Frame bytes queued to subscribers.",
	[BK_DROPS] = "Deliveries skipped by the drop slow-consumer policy.",
	[BK_SLOW_CLOSES] = "Subscribers closed with 1013 by the slow-consumer policy.",
	[BK_DEFLATES] = "Compress-once deflate calls.",
	[BK_JSON_ERRORS] = "JSON-mode err replies.",
	[BK_HTTP_REQUESTS] = "Plain HTTP requests answered.",
	[BK_REFUSED] = "Connections refused by a limit.",
	[BK_SSE_STREAMS] = "Server-Sent Events streams open (GET /events/...).",
	[BK_SSE_EVENTS] = "Server-Sent Events message events built (once per message and variant).",
};

/* Bucket upper bounds.  Latency in nanoseconds (exposed in seconds): 10 us
 * to 1 s.  Queued bytes: 0, then powers of 4 from 1 KiB to 64 MiB. */
static const uint64_t fanout_le[] = {
	10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
	5000000, 10000000, 25000000, 50000000, 100000000, 250000000, 1000000000,
};
static const uint64_t queued_le[] = {
	0, 1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26,
};
#define NLE(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(NLE(fanout_le) <= BK_HIST_MAX && NLE(queued_le) <= BK_HIST_MAX, "buckets");

static void hist_add(struct bk_hist *h, const uint64_t *le, size_t nle, uint64_t v)
{
	size_t i = 0;

	while (i < nle && v > le[i])
		i++;
	/* One writer per block: a plain load and store are enough. */
	atomic_store_explicit(&h->count[i],
			      atomic_load_explicit(&h->count[i], memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* See broker.h. */
void bk_observe_fanout(const struct bk_msg *m)
{
	uint64_t now = rc_now_ns();

	hist_add(&bk_worker()->fanout_ns, fanout_le, NLE(fanout_le),
		 now > m->time_ns ? now - m->time_ns : 0);
}

/* See broker.h. */
void bk_observe_queued(size_t bytes)
{
	hist_add(&bk_worker()->queued_bytes, queued_le, NLE(queued_le), bytes);
}

/* See broker.h. */
void bk_loop_util(unsigned i, double *util, unsigned *conns)
{
	uint64_t busy, idle;

	rc_loop_stats(rc_server_loop(bk.srv, i), &busy, &idle, conns);
	*util = busy + idle ? (double)busy / (double)(busy + idle) : 0.0;
}

static void head(struct bk_text *t, const char *name, const char *type, const char *help)
{
	bk_tprintf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram summed over the workers; scale divides le and sum (1e9 for
 * nanoseconds to seconds). */
static void hist_write(struct bk_text *t, const char *name, const char *help, size_t off,
		       const uint64_t *le, size_t nle, double scale)
{
	uint64_t cum = 0, sum = 0;

	head(t, name, "histogram", help);
	for (size_t i = 0; i <= nle; i++) {
		for (unsigned w = 0; w < bk.nthreads; w++) {
			const struct bk_hist *h = (const void *)((const char *)&bk.workers[w] + off);
			cum += atomic_load_explicit(&h->count[i], memory_order_relaxed);
			if (i == 0)
				sum += atomic_load_explicit(&h->sum, memory_order_relaxed);
		}
		if (i < nle)
			bk_tprintf(t, "%s_bucket{le=\"%.9g\"} %llu\n", name, (double)le[i] / scale,
				   (unsigned long long)cum);
		else
			bk_tprintf(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	bk_tprintf(t, "%s_sum %.9g\n%s_count %llu\n", name, (double)sum / scale, name,
		   (unsigned long long)cum);
}

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not the directory's own descriptor */
}

/* The process_* series of the Prometheus client libraries. */
static void process_metrics(struct bk_text *t)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long vsz = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	double up = (double)(rc_now_ms() - bk.started_ms) / 1e3;

	if (f) {
		if (fscanf(f, "%lu %lu", &vsz, &rss) != 2)
			vsz = rss = 0;
		fclose(f);
	}
	getrusage(RUSAGE_SELF, &ru);
	head(t, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
	bk_tprintf(t, "process_cpu_seconds_total %.6f\n",
		   (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	head(t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	bk_tprintf(t, "process_resident_memory_bytes %llu\n",
		   (unsigned long long)rss * (unsigned long long)sysconf(_SC_PAGESIZE));
	head(t, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	bk_tprintf(t, "process_virtual_memory_bytes %llu\n",
		   (unsigned long long)vsz * (unsigned long long)sysconf(_SC_PAGESIZE));
	head(t, "process_open_fds", "gauge",
	     "Open file descriptors (accepted connections are io_uring direct descriptors, not counted here).");
	bk_tprintf(t, "process_open_fds %u\n", count_fds());
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		head(t, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		bk_tprintf(t, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
	head(t, "process_start_time_seconds", "gauge",
	     "Start time of the process since the Unix epoch in seconds.");
	bk_tprintf(t, "process_start_time_seconds %.3f\n",
		   (double)realtime_ns() / 1e9 - up);
}

/* A label value in the text format: backslash, double quote and newline
 * escaped (topics have no control characters, but the escape is cheap). */
static void label_value(struct bk_text *t, const char *p, size_t len)
{
	char buf[RC_TOPIC_MAX * 2 + 1];
	size_t n = 0;

	for (size_t i = 0; i < len && n + 2 < sizeof(buf); i++) {
		if (p[i] == '\\' || p[i] == '"' || p[i] == '\n')
			buf[n++] = '\\';
		buf[n++] = p[i] == '\n' ? 'n' : p[i];
	}
	bk_tprintf(t, "%.*s", (int)n, buf);
}

/* ringcast_topic_subscribers and ringcast_topic_seq for each topic of
 * metrics_topics.  Each lookup takes a reference (no creation) and drops it
 * after two atomic reads and the topic lock for seq; nothing is held while
 * formatting.  A listed topic not in the registry has 0 subscribers and no
 * seq sample (its last seq may sit in a tombstone, not read here). */
static void topic_metrics(struct bk_text *t, const char *list)
{
	unsigned subs[RC_CFG_MAX_METRICS_TOPICS];
	uint64_t seq[RC_CFG_MAX_METRICS_TOPICS];
	const char *name[RC_CFG_MAX_METRICS_TOPICS];
	size_t len[RC_CFG_MAX_METRICS_TOPICS];
	bool known[RC_CFG_MAX_METRICS_TOPICS];
	unsigned n = 0;

	/* The list was validated when loaded (config.c, set_topics). */
	for (const char *p = list; p && *p && n < RC_CFG_MAX_METRICS_TOPICS;) {
		size_t l, m;
		p += strspn(p, " \t");
		l = strcspn(p, ",");
		for (m = l; m && (p[m - 1] == ' ' || p[m - 1] == '\t'); m--)
			;
		struct bk_topic *tp = bk_topic_get(p, m, false, NULL);
		name[n] = p;
		len[n] = m;
		known[n] = tp != NULL;
		subs[n] = tp ? atomic_load(&tp->nsubs) : 0;
		seq[n] = tp ? bk_topic_seq(tp) : 0;
		if (tp)
			bk_topic_put(tp);
		n++;
		p += l + (p[l] == ',');
	}
	if (!n)
		return;
	head(t, "ringcast_topic_subscribers", "gauge",
	     "Subscribers of each topic listed in metrics_topics.");
	for (unsigned i = 0; i < n; i++) {
		bk_tprintf(t, "ringcast_topic_subscribers{topic=\"");
		label_value(t, name[i], len[i]);
		bk_tprintf(t, "\"} %u\n", subs[i]);
	}
	head(t, "ringcast_topic_seq", "gauge",
	     "Last sequence number of each listed topic in the registry (messages published "
	     "since the topic's seq began).");
	for (unsigned i = 0; i < n; i++) {
		if (!known[i])
			continue;
		bk_tprintf(t, "ringcast_topic_seq{topic=\"");
		label_value(t, name[i], len[i]);
		bk_tprintf(t, "\"} %llu\n", (unsigned long long)seq[i]);
	}
}

/* See broker.h. */
void bk_metrics(struct bk_http *h)
{
	struct bk_text t = { 0 };
	char name[64];

	head(&t, "ringcast_build_info", "gauge", "Always 1; the version as a label.");
	bk_tprintf(&t, "ringcast_build_info{version=\"%s\"} 1\n", RINGCAST_VERSION);
	for (int s = 0; s < BK_NSTATS; s++) {
		bool gauge = s == BK_CONNECTIONS || s == BK_SUBSCRIPTIONS || s == BK_SSE_STREAMS;
		snprintf(name, sizeof(name), "ringcast_%s%s", bk_stat_names[s], gauge ? "" : "_total");
		head(&t, name, gauge ? "gauge" : "counter", stat_help[s]);
		bk_tprintf(&t, "%s %llu\n", name, (unsigned long long)bk_stat_sum(s));
	}
	head(&t, "ringcast_topics", "gauge", "Topics in the registry.");
	bk_tprintf(&t, "ringcast_topics %zu\n", bk_topics_count());
	topic_metrics(&t, bk_cfg()->metrics_topics);
	head(&t, "ringcast_history_bytes", "gauge", "Payload bytes held by topic histories.");
	bk_tprintf(&t, "ringcast_history_bytes %llu\n",
		   (unsigned long long)atomic_load(&bk.hist_bytes));
	head(&t, "ringcast_loop_utilisation", "gauge",
	     "Share of time each loop thread spent working since start (0-1).");
	for (unsigned i = 0; i < bk.nthreads; i++) {
		double util;
		unsigned conns;
		bk_loop_util(i, &util, &conns);
		bk_tprintf(&t, "ringcast_loop_utilisation{thread=\"%u\"} %.4f\n", i, util);
	}
	hist_write(&t, "ringcast_fanout_latency_seconds",
		   "Time from a publish being accepted to its frame queued on every subscriber "
		   "of one loop thread (one observation per message and thread).",
		   offsetof(struct bk_worker, fanout_ns), fanout_le, NLE(fanout_le), 1e9);
	hist_write(&t, "ringcast_queued_bytes",
		   "Bytes already queued on a subscriber's connection when a delivery joins "
		   "its queue (one observation per delivery).",
		   offsetof(struct bk_worker, queued_bytes), queued_le, NLE(queued_le), 1);
	bk_engine_metrics(&t);
	process_metrics(&t);
	bk_respond_text(h, &t, "text/plain; version=0.0.4; charset=utf-8");
}
