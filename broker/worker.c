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

