/* The broker's global state, the worker of each loop thread, the real
 * bk_io, and the housekeeping thread. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/sse.h"
#include "broker/engine.h"

struct bk_broker bk;

static _Thread_local struct bk_worker *tl_worker;

/* The worker of the calling loop thread, found once per thread. */
struct bk_worker *bk_worker(void)
{
	struct rc_loop *l;

	if (tl_worker)
		return tl_worker;
	l = rc_loop_current();
	for (unsigned i = 0; i < bk.nthreads; i++) {
		if (rc_server_loop(bk.srv, i) == l) {
			tl_worker = &bk.workers[i];
			return tl_worker;
		}
	}
	return &bk.workers[0]; /* not a loop thread: only before the loops run */
}

/* Sets up bk.workers (see broker.h). */
int bk_workers_init(unsigned n)
{
	bk.workers = calloc(n, sizeof(*bk.workers));
	if (!bk.workers)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		bk.workers[i].idx = i;
		rc_list_init(&bk.workers[i].holes);
		rc_list_init(&bk.workers[i].closes);
		rc_list_init(&bk.workers[i].conns);
		pthread_mutex_init(&bk.workers[i].conns_lock, NULL);
	}
	return 0;
}

/* Binds the calling thread to w (see broker.h). */
void bk_worker_bind(struct bk_worker *w)
{
	tl_worker = w;
}

/* ---- The real bk_io: the server's loops and connections ---------------------- */

static int conn_post(unsigned idx, void (*fn)(void *arg), void *arg)
{
	struct rc_loop *l = rc_server_loop(bk.srv, idx);

	return l ? rc_loop_post(l, fn, arg) : -EAGAIN;
}

static size_t conn_queued(const struct bk_client *cl)
{
	return rc_conn_queued(cl->conn);
}

static int conn_send(struct bk_client *cl, struct rc_buf *frame)
{
	return rc_conn_send_frame(cl->conn, frame);
}

static void conn_close_slow(struct bk_client *cl)
{
	/* Queued frames it is not reading are dropped, so the close frame
	 * reaches it right behind what is already on its way. */
	rc_conn_close_now(cl->conn, RC_CLOSE_TRY_AGAIN, "slow consumer", 13);
}

static const char *conn_peer(const struct bk_client *cl)
{
	return rc_conn_peer(cl->conn);
}

const struct bk_io bk_conn_io = {
	.post = conn_post,
	.queued = conn_queued,
	.send = conn_send,
	.close_slow = conn_close_slow,
	.peer = conn_peer,
};


/* ---- Housekeeping ------------------------------------------------------------------ */

static struct {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool running; /* read by the signal thread's stop */
	bool stop;
} hk = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void tick(void *arg)
{
	(void)arg;
	bk_worker_tick();
}

static void *housekeeping(void *arg)
{
	struct timespec at;
	unsigned n = 0;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &at);
	pthread_mutex_lock(&hk.lock);
	while (!hk.stop) {
		at.tv_nsec += 50 * 1000000;
		if (at.tv_nsec >= 1000000000) {
			at.tv_nsec -= 1000000000;
			at.tv_sec++;
		}
		while (!hk.stop && pthread_cond_timedwait(&hk.cond, &hk.lock, &at) != ETIMEDOUT)
			;
		if (hk.stop)
			break;
		pthread_mutex_unlock(&hk.lock);
		for (unsigned i = 0; i < bk.nthreads; i++) {
			struct bk_worker *w = &bk.workers[i];
			if (atomic_exchange(&w->tick_wanted, false) &&
			    bk.io->post(i, tick, NULL) < 0)
				atomic_store(&w->tick_wanted, true); /* next time */
		}
		bk_sse_tick();
		/* engine = redis: (re)connects on loop 0, with its backoff. */
		if (n % 5 == 0 && bk_engine_remote())
			bk.io->post(0, bk_engine_tick, NULL);
		if (++n % 20 == 0) {
			/* Expiry and the byte budget without waiting for a
			 * publish: idle topics leave on time. */
			bk_hist_trim(false, SIZE_MAX);
			bk_ip_sweep();
		}
		pthread_mutex_lock(&hk.lock);
	}
	pthread_mutex_unlock(&hk.lock);
	return NULL;
}

/* Starts the housekeeping thread (see broker.h). */
int bk_housekeeping_start(void)
{
	pthread_condattr_t attr;
	int ret;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&hk.cond, &attr);
	pthread_condattr_destroy(&attr);
	ret = pthread_create(&hk.th, NULL, housekeeping, NULL);
	if (ret)
		return -ret;
	/* After hk.th is set: the signal thread's stop joins it once it sees
	 * this (a SIGTERM before it leaves the thread to the process exit). */
	atomic_store(&hk.running, true);
	return 0;
}

/* Stops and joins it (see broker.h); harmless if it never started. */
void bk_housekeeping_stop(void)
{
	if (!atomic_load(&hk.running))
		return;
	pthread_mutex_lock(&hk.lock);
	hk.stop = true;
	pthread_cond_signal(&hk.cond);
	pthread_mutex_unlock(&hk.lock);
	pthread_join(hk.th, NULL);
	atomic_store(&hk.running, false);
}
