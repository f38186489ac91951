/* The io_uring event loop, the ring and nothing else: ring setup and
 * feature probing, the provided buffer ring, completion dispatch, timers,
 * cross-thread posts.  It calls no file above it (core/README.md, "Layers"):
 * accepting is server.c's, connections are conn.c's, each reached through
 * the hooks they register.
 *
 * One loop per thread.  Completions are dispatched by the operation encoded
 * in user_data (see enum rc_ud) to the handler registered for it.  A connection is freed only when no SQE
 * still names it (conn->inflight == 0), the io_uring form of Redis's
 * freeClientAsync. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"

#define RC_RING_ENTRIES 4096
#define RC_BR_COUNT 1024       /* provided buffers per loop (power of two) */
#define RC_BR_SIZE (16u << 10) /* bytes each */
#define RC_BGID 1

static _Thread_local struct rc_loop *current_loop;
/* ---- Options ----------------------------------------------------------------------- */

/* Defaults documented in rc.h. */
void rc_options_default(struct rc_options *o)
{
	memset(o, 0, sizeof(*o));
	o->max_message_size = 16u << 20;
	o->max_frame_size = 16u << 20;
	o->max_backpressure = 4u << 20;
	o->max_http_head = 8u << 10;
	o->max_http_body = 1u << 20;
	o->handshake_timeout_ms = 10000;
	o->idle_timeout_ms = 30000;
	o->pong_timeout_ms = 10000;
	o->close_timeout_ms = 5000;
	o->deflate.enabled = false;
	o->deflate.server_no_context_takeover = true;
	o->deflate.max_window_bits = 15;
}

/* ---- Ring setup -------------------------------------------------------------------- */

/* Kernels 6.6 to 6.8 returned bogus descriptors from multishot accept under
 * DEFER_TASKRUN (liburing#1062); run those without it. */
static bool defer_taskrun_safe(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return false;
	return !(major == 6 && minor >= 6 && minor <= 8);
}

/* Sets up the ring; loud: log why it failed (io_uring was asked for by
 * name, so there is no fallback to tell about). */
static int ring_init(struct rc_loop *l, bool loud)
{
	struct io_uring_params p;
	unsigned flags[3] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int ret = -ENOSYS;

	for (unsigned i = defer_taskrun_safe() ? 0 : 1; i < 3; i++) {
		memset(&p, 0, sizeof(p));
		p.flags = flags[i] | IORING_SETUP_SUBMIT_ALL;
		ret = io_uring_queue_init_params(RC_RING_ENTRIES, &l->ring, &p);
		if (ret == -EINVAL) { /* an older kernel: try fewer flags */
			rc_log(RC_LOG_WARN, "io_uring: setup flags 0x%x refused, falling back", flags[i]);
			continue;
		}
		if (ret < 0)
			break;
		if (i > 0)
			rc_log(RC_LOG_INFO, "io_uring: running without %s",
			       i == 1 ? "DEFER_TASKRUN" : "SINGLE_ISSUER/DEFER_TASKRUN");
		if (!(p.features & IORING_FEAT_FAST_POLL))
			rc_log(RC_LOG_WARN, "io_uring: no FAST_POLL; kernel 5.19 or newer recommended");
		return 0;
	}
	if (!loud)
		return ret;
	if (ret == -EPERM || ret == -ENOSYS)
		rc_log(RC_LOG_ERROR, "io_uring_setup failed: %s. io_uring is disabled or "
		       "blocked here (containers: Docker's default seccomp profile blocks "
		       "io_uring; run with a profile that allows io_uring_setup, "
		       "io_uring_enter and io_uring_register; or check "
		       "/proc/sys/kernel/io_uring_disabled). ringcast needs Linux 6.0 or newer.",
		       strerror(-ret));
	else
		rc_log(RC_LOG_ERROR, "io_uring_setup failed: %s", strerror(-ret));
	return ret;
}

static int buf_ring_init(struct rc_loop *l, bool loud)
{
	struct io_uring_buf_reg reg;
	size_t ring_bytes = RC_BR_COUNT * sizeof(struct io_uring_buf);
	int ret;

	l->br_count = RC_BR_COUNT;
	l->br_size = RC_BR_SIZE;
	l->br_mask = io_uring_buf_ring_mask(RC_BR_COUNT);
	l->bgid = RC_BGID;
	l->br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->br == MAP_FAILED)
		return -errno;
	l->br_mem = mmap(NULL, (size_t)RC_BR_COUNT * RC_BR_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->br_mem == MAP_FAILED) {
		ret = -errno;
		goto err_unmap_ring;
	}
	io_uring_buf_ring_init(l->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)l->br;
	reg.ring_entries = RC_BR_COUNT;
	reg.bgid = RC_BGID;
	ret = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (ret < 0) {
		if (loud)
			rc_log(RC_LOG_ERROR, "io_uring: provided buffer rings need Linux 5.19+: %s",
			       strerror(-ret));
		goto err_unmap_mem;
	}
	for (unsigned i = 0; i < RC_BR_COUNT; i++)
		io_uring_buf_ring_add(l->br, l->br_mem + (size_t)i * RC_BR_SIZE,
				      RC_BR_SIZE, (unsigned short)i, l->br_mask, (int)i);
	io_uring_buf_ring_advance(l->br, RC_BR_COUNT);
	return 0;

err_unmap_mem:
	munmap(l->br_mem, (size_t)RC_BR_COUNT * RC_BR_SIZE);
err_unmap_ring:
	munmap(l->br, ring_bytes);
	l->br = NULL;
	return ret;
}

/* Gives buffer bid back to the kernel. */
static void buf_recycle(struct rc_loop *l, unsigned bid)
{
	io_uring_buf_ring_add(l->br, l->br_mem + (size_t)bid * RC_BR_SIZE,
			      RC_BR_SIZE, (unsigned short)bid, l->br_mask, 0);
	io_uring_buf_ring_advance(l->br, 1);
}

/* A direct-descriptor table as large as RLIMIT_NOFILE allows: the cap is per
 * ring, so N loops hold N times more connections than one process could
 * with plain descriptors. */
static void direct_table_init(struct rc_loop *l)
{
	struct rlimit rl;
	unsigned n;
	int ret;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	n = (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		    ? (unsigned)rl.rlim_cur : 65536;
	if (n > 1u << 20)
		n = 1u << 20;
	ret = io_uring_register_files_sparse(&l->ring, n);
	if (ret < 0) {
		rc_log(RC_LOG_WARN, "io_uring: no direct descriptor table (%s); "
		       "connections use plain fds", strerror(-ret));
		return;
	}
	l->direct = true;
	l->direct_slots = n;
}

static void arm_wake(struct rc_loop *l)
{
	struct io_uring_sqe *sqe = rc__sqe(l);

	io_uring_prep_read(sqe, l->wake_fd, &l->wake_val, sizeof(l->wake_val), 0);
	io_uring_sqe_set_data64(sqe, RC_UD(l, RC_UD_WAKE));
}

/* The ring and its provided buffers; 0 or -errno (logged when loud), *why
 * naming the step that failed. */
static int uring_init(struct rc_loop *l, bool loud, const char **why)
{
	int ret = ring_init(l, loud);

	*why = "io_uring_setup";
	if (ret < 0)
		return ret;
	ret = buf_ring_init(l, loud);
	if (ret < 0) {
		*why = "provided buffer rings (Linux 5.19+)";
		io_uring_queue_exit(&l->ring);
	}
	return ret;
}

static void uring_exit(struct rc_loop *l)
{
	/* the ring goes first: the buffer ring is registered with it */
	io_uring_queue_exit(&l->ring);
	munmap(l->br_mem, (size_t)l->br_count * l->br_size);
	munmap(l->br, l->br_count * sizeof(struct io_uring_buf));
}

/* The backend asked for: o's, or RINGCAST_IO_BACKEND's when o says auto. */
static enum rc_io_backend backend_wanted(const struct rc_options *o)
{
	const char *env = getenv("RINGCAST_IO_BACKEND");

	if (o->io_backend != RC_IO_AUTO || !env || !*env || !strcmp(env, "auto"))
		return o->io_backend;
	if (!strcmp(env, "io_uring"))
		return RC_IO_URING;
	if (!strcmp(env, "epoll"))
		return RC_IO_EPOLL;
	rc_log(RC_LOG_WARN, "RINGCAST_IO_BACKEND=%s: not auto, io_uring or epoll; "
	       "using auto", env);
	return RC_IO_AUTO;
}

/* Says once per process which backend the loops run and why. */
static void log_backend(struct rc_loop *l, enum rc_io_backend want, int err, const char *why)
{
	static atomic_bool said;

	if (atomic_exchange(&said, true))
		return;
	if (!rc__loop_epoll(l))
		rc_log(RC_LOG_INFO, "io backend: io_uring%s", want == RC_IO_URING ? " (forced)" : "");
	else if (want == RC_IO_EPOLL)
		rc_log(RC_LOG_INFO, "io backend: epoll (forced by io_backend or RINGCAST_IO_BACKEND)");
	else
		rc_log(RC_LOG_WARN, "io backend: epoll, because io_uring is unavailable: %s: %s%s",
		       why, strerror(-err),
		       err == -EPERM || err == -ENOSYS
			       ? " (blocked by a seccomp profile such as Docker's or Kubernetes' "
				 "RuntimeDefault, or kernel.io_uring_disabled)" : "");
}

/* Sets up the backend: io_uring unless epoll is asked for, epoll when auto
 * finds io_uring unavailable. */
static int backend_init(struct rc_loop *l)
{
	enum rc_io_backend want = backend_wanted(&l->opt);
	const char *why = "";
	int ret = 0;

	l->io = RC_IO_URING;
	if (want != RC_IO_EPOLL) {
		ret = uring_init(l, want == RC_IO_URING, &why);
		if (ret == 0 || want == RC_IO_URING) {
			if (ret == 0)
				log_backend(l, want, 0, why);
			return ret;
		}
	}
	l->io = RC_IO_EPOLL;
	int err = rc__ep_init(l);
	if (err < 0)
		return err;
	log_backend(l, want, ret, why);
	return 0;
}

static void backend_exit(struct rc_loop *l)
{
	if (rc__loop_epoll(l))
		rc__ep_exit(l);
	else
		uring_exit(l);
}

/* Creates a loop owned by the calling thread. */
struct rc_loop *rc_loop_new(const struct rc_options *o)
{
	struct rc_loop *l = calloc(1, sizeof(*l));
	int ret;

	if (!l) {
		errno = ENOMEM;
		return NULL;
	}
	if (o)
		l->opt = *o;
	else
		rc_options_default(&l->opt);
	ret = backend_init(l);
	if (ret < 0)
		goto err_free;
	l->pool = rc__pool_new();
	if (!l->pool) {
		ret = -ENOMEM;
		goto err_backend;
	}
	l->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (l->wake_fd < 0) {
		ret = -errno;
		goto err_pool;
	}
	if (!rc__loop_epoll(l))
		direct_table_init(l);
	else if ((ret = rc__ep_watch_wake(l)) < 0)
		goto err_wake;
	rc_list_init(&l->conns);
	rc_list_init(&l->listeners);
	rc_list_init(&l->t_handshake);
	rc_list_init(&l->t_idle);
	rc_list_init(&l->t_pong);
	rc_list_init(&l->t_close);
	l->thread = pthread_self();
	l->now_ms = rc_now_ms();
	rc__pool_set_current(l->pool);
	current_loop = l;
	if (!rc__loop_epoll(l))
		arm_wake(l);
	return l;

err_wake:
	close(l->wake_fd);
err_pool:
	rc__pool_free(l->pool);
err_backend:
	backend_exit(l);
err_free:
	free(l);
	errno = -ret;
	return NULL;
}

/* The calling thread's loop. */
struct rc_loop *rc_loop_current(void) { return current_loop; }

/* The backend's name (see rc.h). */
const char *rc_loop_backend(const struct rc_loop *l)
{
	return rc__loop_epoll(l) ? "epoll" : "io_uring";
}

/* An SQE, submitting first if the SQ is full (never fails: the ring is
 * sized for the loop and a full SQ is flushed to the kernel). */
struct io_uring_sqe *rc__sqe(struct rc_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	while (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

/* ---- Timers ---------------------------------------------------------------------- */

/* Puts c on the list of kind with a deadline ms from now, replacing any
 * other timer; ms 0 disarms. */
void rc__timer_arm(struct rc_conn *c, enum rc_timer_kind kind, unsigned ms)
{
	struct rc_loop *l = c->loop;
	struct rc_list *lists[] = { NULL, &l->t_handshake, &l->t_idle, &l->t_pong, &l->t_close };

	rc_list_del(&c->timer);
	c->tkind = RC_T_NONE;
	if (!ms || kind == RC_T_NONE)
		return;
	c->tkind = (uint8_t)kind;
	c->deadline = l->now_ms + ms;
	rc_list_add_tail(lists[kind], &c->timer);
}

/* Removes c from its timer list. */
void rc__timer_disarm(struct rc_conn *c)
{
	rc_list_del(&c->timer);
	c->tkind = RC_T_NONE;
}

static void expire_list(struct rc_loop *l, struct rc_list *list, enum rc_timer_kind kind)
{
	while (!rc_list_empty(list)) {
		struct rc_conn *c = rc_container_of(list->next, struct rc_conn, timer);
		if (c->deadline > l->now_ms)
			break;
		rc__timer_disarm(c);
		l->on_timeout(c, kind);
	}
}

static uint64_t next_deadline(struct rc_loop *l)
{
	struct rc_list *lists[] = { &l->t_handshake, &l->t_idle, &l->t_pong, &l->t_close };
	uint64_t d = l->now_ms + 1000;

	for (size_t i = 0; i < 4; i++) {
		if (rc_list_empty(lists[i]))
			continue;
		struct rc_conn *c = rc_container_of(lists[i]->next, struct rc_conn, timer);
		if (c->deadline < d)
			d = c->deadline;
	}
	if (l->draining && l->drain_deadline < d)
		d = l->drain_deadline;
	return d;
}

/* Loop utilisation and size (see rc.h). */
void rc_loop_stats(const struct rc_loop *l, uint64_t *busy_ns, uint64_t *idle_ns,
		   unsigned *conns)
{
	*busy_ns = __atomic_load_n(&l->busy_ns, __ATOMIC_RELAXED);
	*idle_ns = __atomic_load_n(&l->idle_ns, __ATOMIC_RELAXED);
	*conns = __atomic_load_n(&l->nconns, __ATOMIC_RELAXED);
}

/* ---- Posts and stop ---------------------------------------------------------------- */

/* Queues fn(arg) for l's thread (see rc.h). */
int rc_loop_post(struct rc_loop *l, void (*fn)(void *arg), void *arg)
{
	struct rc_post *p = rc__pool_alloc(rc__pool_current(), sizeof(*p));
	struct rc_post *head;
	uint64_t one = 1;

	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	head = atomic_load_explicit(&l->posts, memory_order_relaxed);
	do
		p->next = head;
	while (!atomic_compare_exchange_weak_explicit(&l->posts, &head, p,
						      memory_order_release,
						      memory_order_relaxed));
	/* The owner drains the whole stack at once: only the push onto an
	 * empty stack needs to wake it. */
	if (!head)
		(void)!write(l->wake_fd, &one, sizeof(one));
	return 0;
}

static void run_posts(struct rc_loop *l)
{
	struct rc_post *p = atomic_exchange_explicit(&l->posts, NULL, memory_order_acquire);
	struct rc_post *fifo = NULL;

	while (p) { /* the stack is LIFO: reverse to keep post order */
		struct rc_post *next = p->next;
		p->next = fifo;
		fifo = p;
		p = next;
	}
	while (fifo) {
		struct rc_post *next = fifo->next;
		fifo->fn(fifo->arg);
		rc__pool_release(fifo);
		fifo = next;
	}
}

/* Moves the deadlines on one timer list from old_ms to new_ms, counted from
 * when each was armed: every entry shifts by the same amount, so the list
 * stays in deadline order (ms 0 disarms, as in rc__timer_arm). */
static void retime(struct rc_list *list, unsigned old_ms, unsigned new_ms)
{
	struct rc_list *it, *next;

	if (old_ms == new_ms)
		return;
	for (it = list->next; it != list; it = next) {
		struct rc_conn *c = rc_container_of(it, struct rc_conn, timer);
		next = it->next;
		if (!new_ms)
			rc__timer_disarm(c);
		else
			c->deadline = c->deadline - old_ms + new_ms;
	}
}

struct new_options {
	struct rc_loop *l; /* not rc_loop_current(): rc_loop_free runs posts too */
	struct rc_options o;
};

static void apply_options(void *arg)
{
	struct new_options *no = arg;
	struct rc_options *o = &no->o;
	struct rc_loop *l = no->l;
	/* max_backpressure is read on other threads (rc_conn_send's check):
	 * stored atomically, every other field copied around it. */
	size_t bp_at = offsetof(struct rc_options, max_backpressure);
	size_t bp_end = bp_at + sizeof(o->max_backpressure);

	retime(&l->t_handshake, l->opt.handshake_timeout_ms, o->handshake_timeout_ms);
	retime(&l->t_idle, l->opt.idle_timeout_ms, o->idle_timeout_ms);
	retime(&l->t_pong, l->opt.pong_timeout_ms, o->pong_timeout_ms);
	retime(&l->t_close, l->opt.close_timeout_ms, o->close_timeout_ms);
	memcpy(&l->opt, o, bp_at);
	memcpy((char *)&l->opt + bp_end, (char *)o + bp_end, sizeof(*o) - bp_end);
	__atomic_store_n(&l->opt.max_backpressure, o->max_backpressure, __ATOMIC_RELAXED);
	free(no);
}

/* New options for l, taken on l's thread at its next turn (see rc.h). */
int rc_loop_set_options(struct rc_loop *l, const struct rc_options *o)
{
	struct new_options *copy = malloc(sizeof(*copy));

	if (!copy)
		return -ENOMEM;
	copy->l = l;
	copy->o = *o;
	if (rc_loop_post(l, apply_options, copy) < 0) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}

/* Async-signal-safe: a flag and an eventfd write. */
void rc_loop_stop(struct rc_loop *l)
{
	uint64_t one = 1;

	atomic_store(&l->stop, true);
	(void)!write(l->wake_fd, &one, sizeof(one));
}

/* Stops accepting and closes every connection, through the layers above. */
static void start_drain(struct rc_loop *l)
{
	l->draining = true;
	l->drain_deadline = l->now_ms + l->opt.close_timeout_ms;
	if (l->on_stop_accepting)
		l->on_stop_accepting(l);
	if (l->on_drain)
		l->on_drain(l, false);
}

/* ---- The run loop -------------------------------------------------------------------- */

/* The wake eventfd fired: run the posts, drain if asked to stop. */
static void woken(struct rc_loop *l)
{
	run_posts(l);
	if (atomic_load(&l->stop) && !l->draining)
		start_drain(l);
}

/* One completion, to the handler its kind was registered with (loop.c
 * handles only its own wake-ups); a provided buffer goes back to the ring
 * once the handler is done with it. */
static void dispatch(struct rc_loop *l, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	enum rc_ud op = RC_UD_OP(ud);

	if (op == RC_UD_WAKE) {
		woken(l);
		arm_wake(l);
		return;
	}
	if (op != RC_UD_NONE)
		l->on_cqe[op](RC_UD_PTR(ud), cqe);
	if (cqe->flags & IORING_CQE_F_BUFFER)
		buf_recycle(l, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
}

/* Registers the handler of completions of kind op (by the layer that
 * submits them). */
void rc__loop_on(struct rc_loop *l, enum rc_ud op, rc__cqe_cb *fn)
{
	l->on_cqe[op] = fn;
}

/* The provided buffer for a recv completion (see rc__conn_on_recv). */
uint8_t *rc__loop_buf(struct rc_loop *l, unsigned bid)
{
	return l->br_mem + (size_t)bid * l->br_size;
}

/* The end of a batch of completions: what the connections queued meanwhile
 * goes out (conn.c's hook), one sendmsg per connection. */
void rc__loop_flush(struct rc_loop *l)
{
	if (l->on_batch)
		l->on_batch(l);
}

/* One turn of the loop: submit, wait up to wait_ms for a completion,
 * handle every completion, expire timers, send what was queued.  0, or
 * -errno when the ring failed for good. */
int rc__loop_turn(struct rc_loop *l, uint64_t wait_ms)
{
	struct io_uring_cqe *cqes[256], *cqe;
	struct __kernel_timespec ts = { .tv_sec = (long long)(wait_ms / 1000),
					.tv_nsec = (long long)(wait_ms % 1000) * 1000000 };
	uint64_t t0 = rc_now_ns(), t1;
	unsigned n;
	int ret;

	if (rc__loop_epoll(l))
		ret = rc__ep_wait(l, wait_ms);
	else
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	t1 = rc_now_ns();
	__atomic_store_n(&l->idle_ns, l->idle_ns + (t1 - t0), __ATOMIC_RELAXED);
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY) {
		rc_log(RC_LOG_ERROR, "%s: %s", rc__loop_epoll(l) ? "epoll_wait" : "io_uring_enter",
		       strerror(-ret));
		return ret;
	}
	l->now_ms = t1 / 1000000;
	if (rc__loop_epoll(l)) {
		if (rc__ep_dispatch(l, ret))
			woken(l);
	} else {
		while ((n = io_uring_peek_batch_cqe(&l->ring, cqes, 256)) > 0) {
			for (unsigned i = 0; i < n; i++)
				dispatch(l, cqes[i]);
			io_uring_cq_advance(&l->ring, n);
			rc__loop_flush(l);
		}
	}
	if (l->on_tick)
		l->on_tick(l);
	expire_list(l, &l->t_handshake, RC_T_HANDSHAKE);
	expire_list(l, &l->t_idle, RC_T_IDLE);
	expire_list(l, &l->t_pong, RC_T_PONG);
	expire_list(l, &l->t_close, RC_T_CLOSE);
	rc__loop_flush(l);
	rc__pool_trim(l->pool, l->now_ms); /* after a burst, memory goes back */
	__atomic_store_n(&l->busy_ns, l->busy_ns + (rc_now_ns() - t1), __ATOMIC_RELAXED);
	return 0;
}

/* Runs until stopped and drained. */
int rc_loop_run(struct rc_loop *l)
{
	current_loop = l;
	rc__pool_set_current(l->pool);
	for (;;) {
		int ret;

		l->now_ms = rc_now_ms();
		if (l->draining && (rc_list_empty(&l->conns) || l->now_ms >= l->drain_deadline)) {
			if (rc_list_empty(&l->conns))
				break;
			l->on_drain(l, true);
			l->drain_deadline = l->now_ms + 1000;
		}
		if ((ret = rc__loop_turn(l, next_deadline(l) - l->now_ms)) < 0)
			return ret;
	}
	return 0;
}

/* Frees a drained loop (after rc_loop_run returned). */
void rc_loop_free(struct rc_loop *l)
{
	if (!l)
		return;
	/* Completions of cancels and closes still in the ring name nothing. */
	backend_exit(l);
	close(l->wake_fd);
	free(l->tls_scratch);
	run_posts(l);
	if (current_loop == l) {
		current_loop = NULL;
		rc__pool_set_current(NULL);
	}
	rc__pool_free(l->pool);
	free(l);
}
