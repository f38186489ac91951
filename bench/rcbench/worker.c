/* Worker processes and loop threads.  The coordinator maps one shared block
 * and forks ceil(connections / per_proc) processes (a process may hold at
 * most 20,000 descriptors here), each running --threads rc_loops.  Every
 * thread opens its share of the connections, at most `concurrency`
 * handshakes at a time, each from its source address, then serves the
 * scenario's handlers until the coordinator sets phase STOP. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/rcbench/rcbench.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

struct rcb_shared *rcb_sh;

static struct sockaddr_storage dst;
static socklen_t dst_len;

/* Maps the shared block plus the per-publisher and per-round arrays. */
int rcb_shared_init(const struct rcb_opts *o, unsigned nworkers)
{
	size_t np = o->pubs ? o->pubs : 1;
	size_t sz = sizeof(struct rcb_shared) + (2 * np + RCB_MAX_ROUNDS) * sizeof(uint64_t);
	uint8_t *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return -errno;
	rcb_sh = (struct rcb_shared *)m;
	rcb_sh->nworkers = nworkers;
	rcb_sh->pub_sent = (uint64_t *)(m + sizeof(struct rcb_shared));
	rcb_sh->pub_acked = rcb_sh->pub_sent + np;
	rcb_sh->round_ts = rcb_sh->pub_acked + np;
	rcb_sh->mstart = UINT64_MAX;
	rcb_sh->mend = UINT64_MAX;
	return 0;
}

/* Processes and loops for nconns connections. */
void rcb_layout(const struct rcb_opts *o, unsigned nconns, unsigned *procs,
		unsigned *nworkers)
{
	unsigned p = (nconns + o->per_proc - 1) / o->per_proc;

	if (p == 0)
		p = 1;
	while (p * o->threads > RCB_MAX_WORKERS && p > 1)
		p--;
	*procs = p;
	*nworkers = p * o->threads;
}

/* Sums one uint64_t counter over the workers. */
uint64_t rcb_sum(size_t off)
{
	uint64_t s = 0;

	for (unsigned i = 0; i < rcb_sh->nworkers; i++)
		s += *(volatile uint64_t *)((uint8_t *)&rcb_sh->w[i] + off);
	return s;
}

/* Opens a non-blocking connect from the source address of idx, then hands
 * the socket (blocking again, as the ring expects) to the rc client. */
static int dial(const struct rcb_opts *o, uint32_t idx)
{
	int one = 1;
	int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->naddrs && dst.ss_family == AF_INET) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		inet_pton(AF_INET, o->addrs[idx % o->naddrs], &sa.sin_addr);
		/* Pick the port at connect time: the 4-tuple, not the source
		 * address alone, has to be unique. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto err;
	}
	if (connect(fd, (struct sockaddr *)&dst, dst_len) < 0 && errno != EINPROGRESS)
		goto err;
	if (fcntl(fd, F_SETFL, 0) < 0)
		goto err;
	return fd;
err:
	one = -errno;
	close(fd);
	return one;
}

static void start_more(struct rcb_thread *t);

static struct rc_client_options client_opts = { .connect_timeout_ms = 30000 };

static void start_one(struct rcb_thread *t)
{
	struct rcb_conn *bc = &t->conns[t->next++];
	char url[600];
	int fd;

	if (t->ops->stream) { /* byte streams dial for themselves */
		t->ops->url(t->o, bc->idx, url, sizeof(url));
		bc->state = RCB_C_CONNECTING;
		t->pending++;
		bc->c = rc_stream_connect(t->l, url, &client_opts, t->ops->stream, bc);
		if (!bc->c && bc->state == RCB_C_CONNECTING) {
			bc->state = RCB_C_CLOSED;
			t->pending--;
			t->st->failed++;
		}
		return;
	}
	fd = dial(t->o, bc->idx);
	if (fd < 0) {
		t->st->failed++;
		return;
	}
	t->ops->url(t->o, bc->idx, url, sizeof(url));
	bc->state = RCB_C_CONNECTING;
	t->pending++;
	bc->c = rc_client_wrap_fd(t->l, fd, url, &client_opts, t->ops->handlers, bc);
	if (!bc->c && bc->state == RCB_C_CONNECTING) {
		/* Refused before any callback: nothing owns fd now but us?  The
		 * client closes it on failure after creation; only a bad URL
		 * returns before, and the URL is ours. */
		bc->state = RCB_C_CLOSED;
		t->pending--;
		t->st->failed++;
	}
}

/* Keeps `concurrency` handshakes in flight; never recurses through the
 * handlers that call it. */
static void start_more(struct rcb_thread *t)
{
	static __thread bool busy;

	if (busy)
		return;
	busy = true;
	while (t->next < t->n && t->pending < t->o->concurrency)
		start_one(t);
	busy = false;
}

/* The connection is usable for the scenario (see rcbench.h). */
void rcb_conn_ready(struct rcb_conn *bc)
{
	struct rcb_thread *t = bc->t;

	if (bc->state != RCB_C_CONNECTING && bc->state != RCB_C_OPEN)
		return;
	bc->state = RCB_C_READY;
	t->st->ready++;
	t->pending--;
	start_more(t);
}

static unsigned code_slot(uint16_t code)
{
	switch (code) {
	case 1000: return 0;
	case 1001: return 1;
	case 1006: return 2;
	case 1008: return 3;
	case 1009: return 4;
	case 1011: return 5;
	case 1013: return 6;
	default: return 7;
	}
}

/* The connection is gone (see rcbench.h). */
void rcb_conn_gone(struct rcb_conn *bc, uint16_t code)
{
	struct rcb_thread *t = bc->t;
	uint8_t was = bc->state;

	bc->state = RCB_C_CLOSED;
	bc->c = NULL;
	if (was == RCB_C_CONNECTING || was == RCB_C_OPEN) {
		t->st->failed++;
		t->pending--;
		start_more(t);
		return;
	}
	if (was == RCB_C_READY) {
		t->st->closed++;
		t->st->closes_by_code[code_slot(code)]++;
		bc->state = RCB_C_GONE;
	}
}

static void on_run_posted(void *arg)
{
	struct rcb_thread *t = arg;

	if (t->ops->on_run)
		t->ops->on_run(t);
}

/* On the loop thread at STOP: the scenario's final counts.  The process
 * exits after every thread has done this; the loops are never stopped. */
static void finish_posted(void *arg)
{
	struct rcb_thread *t = arg;

	if (t->ops->finish)
		t->ops->finish(t);
	__atomic_store_n(&t->st->done, 1, __ATOMIC_RELEASE);
}

static void start_posted(void *arg)
{
	start_more(arg);
}

static void *thread_main(void *arg)
{
	struct rcb_thread *t = arg;
	struct rc_options opt;

	rc_options_default(&opt);
	opt.idle_timeout_ms = 0;          /* idle subscribers stay silent */
	opt.handshake_timeout_ms = 30000;
	opt.max_backpressure = 64u << 20;
	opt.max_message_size = 64u << 20;
	opt.max_frame_size = 64u << 20;
	if (t->o->deflate) {
		opt.deflate.enabled = true;
		opt.deflate.max_window_bits = 15;
	}
	client_opts.options = NULL;
	t->l = rc_loop_new(&opt);
	if (!t->l) {
		fprintf(stderr, "ringcast-bench: worker %u: no io_uring loop: %s\n", t->widx,
			strerror(errno));
		t->st->failed += t->n;
		t->st->done = -1;
		return NULL;
	}
	if (t->ops->setup && t->ops->setup(t) < 0) {
		t->st->failed += t->n;
		t->st->done = -1;
		return NULL;
	}
	/* From inside the loop: sends queued by handlers and posted functions
	 * are flushed at the end of the turn, ones queued before the loop runs
	 * would wait for its first timeout. */
	if (rc_loop_post(t->l, start_posted, t) < 0)
		start_more(t);
	rc_loop_run(t->l);
	return NULL;
}

static void raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* The worker process: threads for workers [first, first + n), then a
 * controller that relays phase changes into the loops. */
static void worker_main(const struct rcb_opts *o, const struct rcb_scenario_ops *ops,
			unsigned nconns, unsigned first, unsigned n)
{
	struct rcb_thread *th = calloc(n, sizeof(*th));
	pthread_t *tid = calloc(n, sizeof(*tid));
	unsigned nw = rcb_sh->nworkers;
	bool posted = false, stopped = false;
	uint64_t stop_at = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!th || !tid)
		_exit(2);
	for (unsigned k = 0; k < n; k++) {
		struct rcb_thread *t = &th[k];
		t->widx = first + k;
		t->st = &rcb_sh->w[t->widx];
		t->st->pid = getpid();
		t->o = o;
		t->ops = ops;
		t->sh = rcb_sh;
		t->n = nconns > t->widx ? (nconns - t->widx + nw - 1) / nw : 0;
		t->conns = calloc(t->n ? t->n : 1, sizeof(*t->conns));
		if (!t->conns)
			_exit(2);
		for (unsigned i = 0; i < t->n; i++) {
			t->conns[i].t = t;
			t->conns[i].idx = t->widx + i * nw;
		}
		if (pthread_create(&tid[k], NULL, thread_main, t) != 0)
			_exit(2);
	}
	/* Bounded: the coordinator's own deadlines end every phase, and if it
	 * dies PDEATHSIG ends us. */
	for (;;) {
		int ph = rcb_sh->phase;
		bool all_done = true;
		for (unsigned k = 0; k < n; k++)
			all_done &= th[k].st->done != 0;
		if (all_done)
			break;
		if (ph >= RCB_RUN && !posted) {
			for (unsigned k = 0; k < n; k++)
				if (th[k].l && th[k].st->done == 0)
					rc_loop_post(th[k].l, on_run_posted, &th[k]);
			posted = true;
		}
		if (ph >= RCB_STOP && !stopped) {
			/* Final counts on each loop thread, then exit: the kernel
			 * closes the sockets at once, where a close handshake with
			 * thousands of peers would keep the broker busy for the
			 * next run. */
			for (unsigned k = 0; k < n; k++)
				if (th[k].l && th[k].st->done == 0)
					rc_loop_post(th[k].l, finish_posted, &th[k]);
			stopped = true;
			stop_at = rcb_now();
		}
		if (stopped && rcb_now() - stop_at > 5000000000ull)
			_exit(3);
		sleep_ms(2);
	}
	_exit(0);
}

/* Forks the workers (see rcbench.h). */
int rcb_workers_start(const struct rcb_opts *o, const struct rcb_scenario_ops *ops,
		      unsigned nconns, pid_t *pids, unsigned maxpids)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	unsigned procs, nw;
	char ps[8];

	snprintf(ps, sizeof(ps), "%u", o->port);
	if (getaddrinfo(o->host, ps, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	memcpy(&dst, ai->ai_addr, ai->ai_addrlen);
	dst_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	client_opts.ca_file = o->ca_file;
	client_opts.insecure = o->insecure;
	raise_nofile();
	rcb_layout(o, nconns, &procs, &nw);
	if (procs > maxpids)
		return -E2BIG;
	fflush(NULL);
	for (unsigned p = 0; p < procs; p++) {
		pid_t pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0)
			worker_main(o, ops, nconns, p * o->threads, o->threads);
		pids[p] = pid;
	}
	return (int)procs;
}

/* Reaps the workers, killing what outlives timeout_s. */
unsigned rcb_workers_wait(pid_t *pids, unsigned n, double timeout_s)
{
	uint64_t end = rcb_now() + (uint64_t)(timeout_s * 1e9);
	unsigned ok = 0, left = n;

	while (left > 0) {
		for (unsigned i = 0; i < n; i++) {
			int st;
			if (pids[i] <= 0)
				continue;
			if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
				if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
					ok++;
				pids[i] = 0;
				left--;
			}
		}
		if (left == 0)
			break;
		if (rcb_now() > end) {
			for (unsigned i = 0; i < n; i++)
				if (pids[i] > 0) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], NULL, 0);
					pids[i] = 0;
				}
			break;
		}
		sleep_ms(5);
	}
	return ok;
}

/* Waits for the connections (see rcbench.h). */
double rcb_wait_connected(const struct rcb_opts *o, uint64_t target)
{
	uint64_t start = rcb_now(), last_print = start;
	uint64_t end = start + (uint64_t)(o->connect_timeout * 1e9);

	for (;;) {
		uint64_t ready = RCB_SUM(ready), failed = RCB_SUM(failed), now = rcb_now();
		if (ready + failed >= target || now > end)
			return (double)(now - start) / 1e9;
		if (!o->quiet && now - last_print >= 1000000000ull) {
			fprintf(stderr, "connecting: %llu/%llu ready, %llu failed\n",
				(unsigned long long)ready, (unsigned long long)target,
				(unsigned long long)failed);
			last_print = now;
		}
		sleep_ms(2);
	}
}

/* Merges histograms and timelines of every worker into r. */
void rcb_merge(struct rcb_result *r)
{
	memset(&r->hist, 0, sizeof(r->hist));
	memset(r->ticks, 0, sizeof(r->ticks));
	for (unsigned i = 0; i < rcb_sh->nworkers; i++) {
		rcb_hist_merge(&r->hist, &rcb_sh->w[i].hist);
		for (unsigned k = 0; k < RCB_MAX_TICKS; k++)
			r->ticks[k] += rcb_sh->w[i].ticks[k];
	}
}

/* utime + stime of pid from /proc, in ns (0 if unreadable). */
uint64_t rcb_proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (uint64_t)(ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* VmRSS of pid in KiB, or -1. */
long rcb_proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}
