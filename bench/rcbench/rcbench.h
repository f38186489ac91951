/* ringcast-bench: shared declarations.  The coordinator process parses the
 * options, maps one shared-memory block, forks worker processes that hold
 * the WebSocket connections (one rc_loop per thread), drives the
 * publishers itself, and merges what the workers wrote into the block. */
#ifndef RC_BENCH_RCBENCH_H
#define RC_BENCH_RCBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/rc.h"

#define RCB_MAX_WORKERS 64      /* loop threads over all processes */
#define RCB_MAX_ADDRS 64        /* source addresses */
#define RCB_TICK_NS 100000000ull /* timeline resolution: 100 ms */
#define RCB_MAX_TICKS 12000     /* 20 minutes of timeline */
#define RCB_MAX_ROUNDS 64       /* broadcast rounds */
#define RCB_PER_PROC 18000      /* connections per worker process (fd cap 20,000) */
#define RCB_CONN_PER_ADDR 25000 /* connections per source address before the next */
#define RCB_MIN_RAW 24          /* raw payload header: magic, pub, seq, ts */
#define RCB_MIN_JSON 44         /* "P%08xS%016lxT%016lx" plus the quotes */

/* ---- Log-linear histogram (hist.c) --------------------------------------
 * Values in nanoseconds; 32 linear sub-buckets per power of two, so any
 * reported value is within 1/32 (3 %) of the true one.  Fixed size, no
 * allocation: record is an index computation and an increment. */
#define RCB_HIST_SUB_BITS 5
#define RCB_HIST_N ((64 - RCB_HIST_SUB_BITS) * (1u << RCB_HIST_SUB_BITS) + (1u << RCB_HIST_SUB_BITS))

struct rcb_hist {
	uint64_t count;
	uint64_t max;
	uint64_t sum;
	uint64_t b[RCB_HIST_N];
};

/* Adds one value (ns). */
void rcb_hist_record(struct rcb_hist *h, uint64_t v);
/* dst += src (src may be changing under us: a live snapshot is fine). */
void rcb_hist_merge(struct rcb_hist *dst, const struct rcb_hist *src);
/* The value at quantile q (0..1), in ns; 0 for an empty histogram. */
uint64_t rcb_hist_quantile(const struct rcb_hist *h, double q);
/* Lowest value of bucket i, and the bucket of value v. */
uint64_t rcb_hist_bucket_low(unsigned i);
unsigned rcb_hist_index(uint64_t v);

/* ---- Options (main.c) ----------------------------------------------------- */
enum rcb_scenario { RCB_FANOUT, RCB_ECHO, RCB_CONNECT, RCB_BROADCAST };

struct rcb_opts {
	enum rcb_scenario scenario;
	char url[512];          /* ws:// or wss://host:port (path ignored) */
	char host[256];
	uint16_t port;
	const char *scheme;     /* "ws" or "wss": every connection but publishers */
	/* Publishers stay plain ws:// (--pub-url, or the --url when that is
	 * ws://): with wss the measurement is the fanout to TLS subscribers. */
	char pub_host[256];
	uint16_t pub_port;
	const char *ca_file;    /* wss: trust this CA file, not the system's */
	bool insecure;          /* wss: no certificate check */
	unsigned subs, topics, pubs, conns;
	size_t size;
	double rate;            /* msgs/s over all publishers; 0: window mode */
	unsigned window;        /* msgs in flight per publisher (window mode) */
	double duration, warmup;
	double connect_timeout;
	unsigned threads;       /* loops per worker process */
	unsigned per_proc;      /* connections per worker process */
	bool json_mode;         /* JSON payloads (also set with sse) */
	bool sse;               /* fanout subscribers read GET /events/<topic> */
	bool deflate;
	unsigned rounds;        /* broadcast */
	unsigned concurrency;   /* handshakes in progress per thread */
	pid_t server_pid;
	const char *json_file, *plot_file;
	char topic_prefix[64];
	bool pattern;            /* fanout: subscribe to P<i>.* and publish to P<i>.x */
	char path[256];         /* connect scenario */
	unsigned naddrs;
	char addrs[RCB_MAX_ADDRS][64];
	bool quiet;
};

/* ---- Shared block (worker.c) ---------------------------------------------- */
enum rcb_phase { RCB_CONNECTING, RCB_RUN, RCB_DRAIN, RCB_STOP };

/* One per loop thread; written by that thread only, read live by the
 * coordinator (plain loads of aligned words: a snapshot may be a message
 * behind, never torn). */
struct rcb_stats {
	uint64_t opened, failed, closed, ready;
	uint64_t delivered, bytes;
	uint64_t lost, duplicated, reordered, bad; /* final, after the run */
	uint64_t sent;                  /* echo: requests sent */
	uint64_t expected;              /* fanout: deliveries owed to ready subscribers */
	uint64_t closes_by_code[8];     /* 1000,1001,1006,1008,1009,1011,1013,other */
	int done;
	pid_t pid;
	struct rcb_hist hist;           /* latency of measured messages */
	uint64_t ticks[RCB_MAX_TICKS];  /* deliveries per 100 ms since t0 */
	uint64_t round_count[RCB_MAX_ROUNDS];
	uint64_t round_last[RCB_MAX_ROUNDS]; /* latest receive time (ns, monotonic) */
};

struct rcb_shared {
	volatile int phase;             /* enum rcb_phase */
	volatile uint64_t t0;           /* publishing starts (ns, monotonic) */
	volatile uint64_t mstart, mend; /* measured window, by send time */
	unsigned nworkers;
	uint64_t *pub_sent;             /* [pubs]: messages sent per publisher */
	uint64_t *pub_acked;            /* [pubs]: last seq the topic's tracker saw */
	uint64_t *round_ts;             /* broadcast: send time per round */
	struct rcb_stats w[RCB_MAX_WORKERS];
};

/* One subscriber/echo connection held by a worker thread. */
struct rcb_conn {
	struct rcb_thread *t;
	struct rc_conn *c;
	uint32_t idx;           /* global connection index */
	uint32_t topic;
	uint8_t state;          /* RCB_C_* */
	uint64_t *last;         /* fanout: last seq per publisher of the topic */
	uint64_t gaps;          /* fanout: seqs skipped so far */
	struct rcb_sse *sse;    /* SSE subscribers: the stream parser (sse.c) */
};
/* GONE: was READY, then closed (still owed messages for the loss count). */
enum { RCB_C_IDLE, RCB_C_CONNECTING, RCB_C_OPEN, RCB_C_READY, RCB_C_CLOSED, RCB_C_GONE };

struct rcb_thread;

/* What a scenario plugs into the worker machinery. */
struct rcb_scenario_ops {
	/* Writes the URL of connection idx. */
	void (*url)(const struct rcb_opts *o, uint32_t idx, char *buf, size_t cap);
	const struct rc_handlers *handlers;
	/* On the loop thread, once per thread, when the phase becomes RUN. */
	void (*on_run)(struct rcb_thread *t);
	/* After the loop returned: final counts into t->st. */
	void (*finish)(struct rcb_thread *t);
	/* Per-thread setup before connecting (allocations live here). */
	int (*setup)(struct rcb_thread *t);
	/* Byte streams instead of WebSocket (url() gives tcp:// or tls://):
	 * dialed with rc_stream_connect and these handlers. */
	const struct rc_stream_handlers *stream;
};

struct rcb_thread {
	unsigned widx;                  /* global worker index */
	struct rc_loop *l;
	struct rcb_stats *st;
	struct rcb_conn *conns;         /* connections idx = widx + k * nworkers */
	unsigned n, next, pending;
	const struct rcb_scenario_ops *ops;
	const struct rcb_opts *o;
	struct rcb_shared *sh;
	void *scratch;                  /* scenario's per-thread memory */
	uint8_t *sendbuf;               /* echo: payload under construction */
};

extern struct rcb_shared *rcb_sh;

/* Maps the shared block for o (pubs, rounds).  Returns 0 or -errno. */
int rcb_shared_init(const struct rcb_opts *o, unsigned nworkers);
/* Forks the worker processes for nconns connections; they connect, run the
 * scenario's handlers until phase STOP, finish and exit.  Returns the
 * number of processes started or -errno. */
int rcb_workers_start(const struct rcb_opts *o, const struct rcb_scenario_ops *ops,
		      unsigned nconns, pid_t *pids, unsigned maxpids);
/* Waits for the worker processes (bounded by timeout_s); returns how many
 * finished normally. */
unsigned rcb_workers_wait(pid_t *pids, unsigned n, double timeout_s);
/* Worker loops and processes needed for nconns under o. */
void rcb_layout(const struct rcb_opts *o, unsigned nconns, unsigned *procs,
		unsigned *nworkers);
/* The thread's connection finished its handshake work: start the next. */
void rcb_conn_ready(struct rcb_conn *bc);
/* The connection is gone (closed or failed); counts and starts the next. */
void rcb_conn_gone(struct rcb_conn *bc, uint16_t code);
/* Sums every worker's counter at byte offset off of struct rcb_stats. */
uint64_t rcb_sum(size_t off);
#define RCB_SUM(field) rcb_sum(offsetof(struct rcb_stats, field))

/* ---- Time and payloads (payload.c) ------------------------------------------ */
uint64_t rcb_now(void);
/* Fills buf[0..size) with a message from publisher pub, seq, stamped now.
 * Raw: binary header + filler; JSON: a JSON string literal. */
void rcb_payload_fill(uint8_t *buf, size_t size, bool json, uint32_t pub,
		      uint64_t seq, uint64_t ts);
/* Only rewrites the header (filler already in place). */
void rcb_payload_stamp(uint8_t *buf, bool json, uint32_t pub, uint64_t seq,
		       uint64_t ts);
/* Parses a received message; JSON mode looks for "data":"...".  Returns 0
 * or -EINVAL. */
int rcb_payload_parse(const uint8_t *p, size_t len, bool json, uint32_t *pub,
		      uint64_t *seq, uint64_t *ts);

/* ---- Plain publisher connections (pubs.c) ----------------------------------- */
struct rcb_pub {
	int fd;
	uint32_t id;
	uint64_t seq;
	uint64_t last_ts;        /* send time of the last message */
	uint8_t *frame;         /* header + masked payload */
	size_t hlen, flen;
	uint8_t mask[4];
};
/* Connects and upgrades a blocking client socket to path on the publisher
 * address (o->pub_host, o->pub_port; always plain ws://), binding to source
 * address src (NULL: any).  Returns the fd or -errno with *why set. */
int rcb_ws_dial(const struct rcb_opts *o, const char *path, const char *src,
		const char **why);
/* Prepares publisher p (connected on fd) for messages of o->size. */
int rcb_pub_init(struct rcb_pub *p, int fd, uint32_t id, const struct rcb_opts *o);
/* Sends the next message (seq + 1) stamped now.  Returns 0 or -errno. */
int rcb_pub_send(struct rcb_pub *p, bool json);
void rcb_pub_free(struct rcb_pub *p);

/* ---- Reporting (report.c) ---------------------------------------------------- */
struct rcb_result {
	const char *scenario;
	double connect_s;       /* time to open every connection */
	uint64_t conns, conns_failed;
	uint64_t published, delivered, expected;
	uint64_t lost, duplicated, reordered, bad;
	double publish_rate, deliveries_per_sec, mbytes_per_sec;
	double measured_s;
	struct rcb_hist hist;
	double bench_cpu_pct, server_cpu_pct; /* of one core, measured window */
	long server_rss_kib, server_rss_base_kib;
	double rss_per_conn_bytes;
	unsigned rounds;
	double round_last_us[RCB_MAX_ROUNDS];
	double time_to_last_us; /* broadcast: median over rounds */
	uint64_t ticks[RCB_MAX_TICKS];
	unsigned nticks;
	unsigned mtick0, mtick1; /* the measured window in ticks: [mtick0, mtick1) */
	const struct rcb_opts *o;
};
/* Prints the one-second progress line to stderr. */
void rcb_progress(const char *what, double t, uint64_t conns, uint64_t target,
		  double rate_label, const char *rate_name, const struct rcb_hist *h,
		  uint64_t lost);
void rcb_report_text(const struct rcb_result *r);
/* Returns 0 or -errno. */
int rcb_report_json(const struct rcb_result *r, const char *file);
int rcb_report_svg(const struct rcb_result *r, const char *file);

/* CPU time (ns) of a process so far from /proc, or 0; RSS in KiB or -1. */
uint64_t rcb_proc_cpu_ns(pid_t pid);
long rcb_proc_rss_kib(pid_t pid);

/* A message arrived at fanout subscriber bc (fanout.c): checks its
 * publisher's sequence, counts it and paces the publishers. */
void rcb_fanout_got(struct rcb_conn *bc, const uint8_t *data, size_t len);

/* ---- Server-Sent Events subscribers (sse.c) ------------------------------------ */
/* The fanout scenario's operations with SSE subscribers (--mode sse): each
 * one a tcp:// (or tls://) stream that sends GET /events/<topic> and hands
 * every msg event's data to rcb_fanout_got. */
extern const struct rc_stream_handlers rcb_sse_handlers;
/* Per-thread parsers for t's connections (setup), and their release. */
int rcb_sse_setup(struct rcb_thread *t);
void rcb_sse_free(struct rcb_thread *t);

/* Scenarios. */
int rcb_fanout(struct rcb_opts *o);
int rcb_echo(struct rcb_opts *o);
int rcb_connect(struct rcb_opts *o);
int rcb_broadcast(struct rcb_opts *o);

/* ---- What the scenarios share (scenario.c) ---------------------------------- */
/* Lays out and maps the shared block, forks the workers for nconns
 * connections of ops and waits until they are connected.  r is zeroed and
 * gets name, the connect time and the connection counts; with rss_base
 * also the broker's RSS before the connections (-1 without --server-pid).
 * Fills pids[RCB_MAX_WORKERS].  Returns the number of worker processes, or
 * -1 when they could not be started (said on stderr when it was the fork). */
int rcb_scenario_start(struct rcb_opts *o, const char *name,
		       const struct rcb_scenario_ops *ops, unsigned nconns, bool rss_base,
		       struct rcb_result *r, pid_t *pids);
/* Opens the measured window: warmup then duration from now, both rounded to
 * whole ticks (*wu, *du in ns), and sets the phase to RUN.  Returns t0. */
uint64_t rcb_run_window(const struct rcb_opts *o, uint64_t *wu, uint64_t *du);

/* CPU time (ns) of the bench (this process and its np workers) and of the
 * broker (--server-pid, else 0), taken at `at` (ns, monotonic). */
struct rcb_cpu_sample {
	uint64_t bench, server, at;
};
void rcb_cpu_sample(const struct rcb_opts *o, const pid_t *pids, unsigned np,
		    struct rcb_cpu_sample *s);
/* r's bench and server CPU (% of one core) from c0 to c1; left alone unless
 * both were taken, c1 after c0. */
void rcb_cpu_pct(struct rcb_result *r, const struct rcb_cpu_sample *c0,
		 const struct rcb_cpu_sample *c1);

/* Progress of a running scenario: t0 is when the run started; last_print
 * and last_d the time and delivery count of the previous line. */
struct rcb_ticker {
	uint64_t t0, last_print, last_d;
};
/* Prints the progress line (unless --quiet) when a second has passed
 * since the previous one: target connections, deliveries/s as rate_name. */
void rcb_progress_tick(struct rcb_ticker *tk, const struct rcb_opts *o, const char *what,
		       uint64_t target, const char *rate_name, uint64_t now);
/* Reads the broker's RSS into r (needs --server-pid) and, with a base from
 * rcb_scenario_start, its growth per ready connection. */
void rcb_rss_per_conn(struct rcb_result *r);
/* Sets the phase to STOP, waits for the np workers (at most timeout_s),
 * merges their histograms and timelines into r and sums r->delivered. */
void rcb_scenario_stop(struct rcb_result *r, pid_t *pids, int np, double timeout_s);
/* Prints the text report and writes --json and --plot.  Returns 0, or 1 if
 * a file could not be written. */
int rcb_scenario_report(const struct rcb_result *r);
/* Handlers: on close, the connection is gone (rcb_conn_gone); on open,
 * ready at once (the upgrade was all the handshake the scenario needs). */
void rcb_on_close(struct rc_conn *c, uint16_t code, const uint8_t *reason, size_t n);
void rcb_on_open_ready(struct rc_conn *c);

/* Coordinator helpers (worker.c). */
/* Waits until every connection is ready or failed (bounded by
 * o->connect_timeout), printing progress.  Returns seconds taken. */
double rcb_wait_connected(const struct rcb_opts *o, uint64_t target);
/* Merges every worker's histogram and timeline into r. */
void rcb_merge(struct rcb_result *r);

#endif
