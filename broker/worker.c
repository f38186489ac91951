/* The broker's global state and the worker of each loop thread. */
#include "broker/broker.h"

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

/* Binds the calling thread to w (see broker.h). */
void bk_worker_bind(struct bk_worker *w)
{
	tl_worker = w;
}

/* ---- The real bk_io: the server's loops and connections ---------------------- */

static int conn_post(unsigned idx, void (*fn)(void *arg), void *arg)
{
	return rc_loop_post(rc_server_loop(bk.srv, idx), fn, arg);
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

const struct bk_io bk_conn_io = {
	.post = conn_post,
	.queued = conn_queued,
	.send = conn_send,
	.close_slow = conn_close_slow,
};

