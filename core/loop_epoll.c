/* The epoll backend: the loop where io_uring cannot run (container seccomp
 * profiles, gVisor, kernel.io_uring_disabled), as a ring emulated on
 * readiness (core/README.md, "Loop backends").
 *
 * Each rc__ep_* call stands where conn.c, client.c or server.c would
 * prepare an SQE, and its result comes back as the completion the ring
 * would post: same user_data, res and flags, to the handler registered for
 * its kind (rc__loop_on).  So the layers above keep one code path (their
 * inflight counts, multishot re-arming, cancels and life cycle are the
 * ring's), and this file calls nothing above it.
 *
 * Plain non-blocking descriptors, level-triggered.  A multishot recv reads
 * the socket when it is readable into the loop's one buffer (at most
 * RC_EP_READS reads per connection per turn, so one fast sender cannot
 * starve the rest); a sendmsg is tried at once and waits for EPOLLOUT only
 * when the socket has no room; a multishot accept accepts while the
 * listener is readable.  Operations that finish inside the call (a send the
 * socket took, a shutdown, a close, a cancel) are reported after the batch
 * that started them has been flushed, as completions of that batch's SQEs
 * would be: no handler runs inside the call that started its operation, a
 * connection has one send in flight, and a send started by a report waits
 * for the next turn's report (so a connection sends at most once per batch,
 * everything queued meanwhile in the next sendmsg). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/internal.h"

#define RC_EP_BUF (64u << 10)   /* the loop's receive buffer */
#define RC_EP_READS 4           /* recvs per connection per turn */
#define RC_EP_ACCEPTS 64        /* accepts per listener per turn */

/* Finished operations not yet reported (c->ep.done), in report order. */
enum { RC_EP_CONNECT = 1, RC_EP_RECV = 2, RC_EP_SEND = 4, RC_EP_SHUT = 8, RC_EP_CLOSE = 16 };

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Sets up l's epoll instance and receive buffer.  0 or -errno. */
int rc__ep_init(struct rc_loop *l)
{
	l->ep.fd = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep.fd < 0)
		return -errno;
	l->ep.evs = calloc(RC_EP_EVENTS, sizeof(*l->ep.evs));
	/* the loop's one receive buffer is its "provided buffer" 0 */
	l->br_mem = malloc(RC_EP_BUF);
	if (!l->ep.evs || !l->br_mem) {
		rc__ep_exit(l);
		return -ENOMEM;
	}
	l->br_size = RC_EP_BUF;
	for (unsigned i = 0; i < RC_EP_LISTEN; i++)
		l->ep.listen[i].fd = -1;
	return 0;
}

/* Watches the wake eventfd (non-blocking: read only when readable). */
int rc__ep_watch_wake(struct rc_loop *l)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = RC_UD(l, RC_UD_WAKE) };

	set_nonblock(l->wake_fd);
	return epoll_ctl(l->ep.fd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0 ? -errno : 0;
}

/* Releases what rc__ep_init set up. */
void rc__ep_exit(struct rc_loop *l)
{
	close(l->ep.fd);
	free(l->ep.evs);
	free(l->br_mem);
	l->ep.evs = NULL;
	l->br_mem = NULL;
}

/* Reports op for c after this batch (report_done). */
static void done(struct rc_conn *c, uint8_t op)
{
	struct rc_loop *l = c->loop;

	if (!c->ep.done) {
		c->ep.next = l->ep.done;
		l->ep.done = c;
	}
	c->ep.done |= op;
}

/* A completion to the handler of its kind, as the ring's dispatch does. */
static void complete(struct rc_loop *l, void *ptr, enum rc_ud op, int res, uint32_t flags)
{
	struct io_uring_cqe cqe = { .user_data = RC_UD(ptr, op), .res = res, .flags = flags };

	l->on_cqe[op](ptr, &cqe);
}

/* Registers the interest c's operations need: input while its recv is
 * armed, output while a send or connect waits.  None: out of the set (a
 * paused connection is not woken by its peer's hangup).  A failure (out
 * of memory, max_user_watches) ends what waits with the error. */
static void update(struct rc_conn *c)
{
	uint32_t want = (c->ep.recv ? EPOLLIN : 0) | (c->ep.out || c->ep.connecting ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = want, .data.u64 = RC_UD(c, RC_UD_RECV) };
	int op = !c->ep.events ? EPOLL_CTL_ADD : !want ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

	if (want == c->ep.events)
		return;
	if (op == EPOLL_CTL_ADD)
		set_nonblock(c->fd);
	if (epoll_ctl(c->loop->ep.fd, op, c->fd, &ev) == 0 || op == EPOLL_CTL_DEL) {
		c->ep.events = want;
		return;
	}
	int err = -errno;
	rc_log(RC_LOG_WARN, "epoll_ctl: %s", strerror(-err));
	if (c->ep.recv) {
		c->ep.recv = false;
		c->ep.recv_res = err;
		done(c, RC_EP_RECV);
	}
	if (c->ep.out || c->ep.connecting) {
		c->ep.send_res = err;
		done(c, c->ep.out ? RC_EP_SEND : RC_EP_CONNECT);
		c->ep.out = c->ep.connecting = false;
	}
	if (op == EPOLL_CTL_ADD)
		c->ep.events = 0;
}

/* ---- Operations: where the ring would take an SQE ------------------------------- */

/* A multishot recv (completions RC_UD_RECV with F_MORE and F_BUFFER; the
 * last one, EOF or error, without F_MORE). */
void rc__ep_recv(struct rc_conn *c)
{
	c->ep.recv = true;
	update(c);
}

/* Cancels the recv: its last completion is -ECANCELED.  What arrives
 * meanwhile stays in the kernel (TCP pushes back on the peer). */
void rc__ep_recv_cancel(struct rc_conn *c)
{
	if (!c->ep.recv)
		return;
	c->ep.recv = false;
	c->ep.recv_res = -ECANCELED;
	done(c, RC_EP_RECV);
	update(c);
}

/* One sendmsg; false when the socket has no room (nothing sent). */
static bool try_send(struct rc_conn *c)
{
	ssize_t n;

	do
		n = sendmsg(c->fd, c->ep.msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return false;
	c->ep.send_res = n < 0 ? -errno : (int)n;
	done(c, RC_EP_SEND);
	return true;
}

/* A sendmsg of msg (which lives until its completion, RC_UD_SEND). */
void rc__ep_sendmsg(struct rc_conn *c, const struct msghdr *msg)
{
	c->ep.msg = msg;
	if (!try_send(c)) {
		c->ep.out = true;
		update(c);
	}
}

/* shutdown(SHUT_WR) (RC_UD_SHUT). */
void rc__ep_shutdown(struct rc_conn *c)
{
	shutdown(c->fd, SHUT_WR);
	done(c, RC_EP_SHUT);
}

/* close (RC_UD_CLOSE): the descriptor leaves the set now; its completion
 * comes after every event of this turn that may still name c. */
void rc__ep_close(struct rc_conn *c)
{
	if (c->ep.events)
		epoll_ctl(c->loop->ep.fd, EPOLL_CTL_DEL, c->fd, NULL);
	c->ep.events = 0;
	close(c->fd);
	done(c, RC_EP_CLOSE);
}

/* Cancels everything c waits for (-ECANCELED each), as a cancel of all
 * SQEs on its descriptor does. */
void rc__ep_cancel(struct rc_conn *c)
{
	rc__ep_recv_cancel(c);
	if (c->ep.out || c->ep.connecting) {
		c->ep.send_res = -ECANCELED;
		done(c, c->ep.out ? RC_EP_SEND : RC_EP_CONNECT);
		c->ep.out = c->ep.connecting = false;
		update(c);
	}
}

/* A connect of c's socket to sa (RC_UD_CONNECT). */
void rc__ep_connect(struct rc_conn *c, const struct sockaddr *sa, socklen_t sl)
{
	set_nonblock(c->fd);
	if (connect(c->fd, sa, sl) == 0) {
		c->ep.send_res = 0;
		done(c, RC_EP_CONNECT);
	} else if (errno == EINPROGRESS) {
		c->ep.connecting = true;
		update(c);
	} else {
		c->ep.send_res = -errno;
		done(c, RC_EP_CONNECT);
	}
}

/* A multishot accept on listening socket fd, its completions (RC_UD_ACCEPT)
 * naming ptr.  0 or -errno (no completion follows). */
int rc__ep_accept(struct rc_loop *l, int fd, void *ptr)
{
	struct epoll_event ev = { .events = EPOLLIN };
	unsigned i = 0;

	while (i < RC_EP_LISTEN && l->ep.listen[i].fd >= 0)
		i++;
	if (i == RC_EP_LISTEN)
		return -ENOSPC;
	ev.data.u64 = RC_UD((uintptr_t)i << 4, RC_UD_ACCEPT);
	set_nonblock(fd);
	if (epoll_ctl(l->ep.fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;
		rc_log(RC_LOG_ERROR, "epoll_ctl on listener %d: %s", fd, strerror(-err));
		return err;
	}
	l->ep.listen[i].fd = fd;
	l->ep.listen[i].ptr = ptr;
	return 0;
}

/* Ends the accept on fd (no completion). */
void rc__ep_accept_cancel(struct rc_loop *l, int fd)
{
	for (unsigned i = 0; i < RC_EP_LISTEN; i++) {
		if (l->ep.listen[i].fd == fd) {
			epoll_ctl(l->ep.fd, EPOLL_CTL_DEL, fd, NULL);
			l->ep.listen[i].fd = -1;
			l->ep.listen[i].ready = false;
		}
	}
}

/* ---- Readiness, turned into completions -------------------------------------------- */

static void on_accept(struct rc_loop *l, struct rc_ep_listen *ls)
{
	void *ptr = ls->ptr;
	int fd = ls->fd;

	for (unsigned i = 0; i < RC_EP_ACCEPTS && fd >= 0 && ls->fd == fd && !l->draining; i++) {
		int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (s < 0 && errno != ECONNABORTED) {
			/* the multishot ends (out of descriptors: the server
			 * retries; anything else: given up) */
			int err = -errno;
			rc__ep_accept_cancel(l, fd);
			complete(l, ptr, RC_UD_ACCEPT, err, 0);
			return;
		}
		complete(l, ptr, RC_UD_ACCEPT, s < 0 ? -ECONNABORTED : s, IORING_CQE_F_MORE);
	}
}

static void on_readable(struct rc_loop *l, struct rc_conn *c)
{
	for (unsigned i = 0; i < RC_EP_READS && c->ep.recv; i++) {
		ssize_t n = recv(c->fd, l->br_mem, RC_EP_BUF, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { /* EOF or error ends the multishot */
			c->ep.recv = false;
			update(c);
			complete(l, c, RC_UD_RECV, n < 0 ? -errno : 0, 0);
			return;
		}
		complete(l, c, RC_UD_RECV, (int)n,
			 IORING_CQE_F_MORE | IORING_CQE_F_BUFFER); /* buffer 0 */
		if (n < (ssize_t)RC_EP_BUF)
			return; /* drained; level-triggered says if more came */
	}
}

static void on_writable(struct rc_conn *c)
{
	if (c->ep.connecting) {
		int err = 0;
		socklen_t sl = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
			err = errno;
		c->ep.connecting = false;
		update(c);
		complete(c->loop, c, RC_UD_CONNECT, -err, 0);
		return;
	}
	if (c->ep.out && try_send(c)) {
		c->ep.out = false;
		update(c);
	}
}

/* Reports what finished since the last turn, each as its completion.
 * Reports made meanwhile (a send a report started) wait for the next
 * turn. */
static void report_done(struct rc_loop *l)
{
	struct rc_conn *c = l->ep.done;

	l->ep.done = NULL;
	while (c) {
		struct rc_conn *next = c->ep.next;
		uint8_t ops = c->ep.done;

		c->ep.done = 0;
		c->ep.next = NULL;
		if (ops & RC_EP_CONNECT)
			complete(l, c, RC_UD_CONNECT, c->ep.send_res, 0);
		if (ops & RC_EP_RECV)
			complete(l, c, RC_UD_RECV, c->ep.recv_res, 0);
		if (ops & RC_EP_SEND)
			complete(l, c, RC_UD_SEND, c->ep.send_res, 0);
		if (ops & RC_EP_SHUT)
			complete(l, c, RC_UD_SHUT, 0, 0);
		if (ops & RC_EP_CLOSE) /* the last: nothing else names c */
			complete(l, c, RC_UD_CLOSE, 0, 0);
		c = next;
	}
}

/* Waits up to wait_ms for readiness (not at all when completions are due).
 * The number of events, or -errno. */
int rc__ep_wait(struct rc_loop *l, uint64_t wait_ms)
{
	int n;

	if ((int64_t)wait_ms < 0) /* a deadline already past */
		wait_ms = 0;
	else if (wait_ms > 1000000)
		wait_ms = 1000000;
	n = epoll_wait(l->ep.fd, l->ep.evs, RC_EP_EVENTS, l->ep.done ? 0 : (int)wait_ms);
	if (n < 0 && errno == EINTR)
		return 0;
	return n < 0 ? -errno : n;
}

/* Turns n events into completions, then reports what finished since the
 * last turn, then accepts; the end of each batch flushes (on_batch).
 * Accepting last means connections that ended this turn are gone (their
 * close reported, on_disconnect called) before new ones are admitted, so a
 * connection limit counts only live ones.  True when the wake eventfd
 * fired (loop.c runs the posts). */
bool rc__ep_dispatch(struct rc_loop *l, int n)
{
	bool woken = false, accept = false;

	for (int i = 0; i < n; i++) {
		uint64_t ud = l->ep.evs[i].data.u64;
		uint32_t ev = l->ep.evs[i].events;
		struct rc_conn *c = RC_UD_PTR(ud);

		switch (RC_UD_OP(ud)) {
		case RC_UD_ACCEPT:
			l->ep.listen[(uintptr_t)RC_UD_PTR(ud) >> 4].ready = accept = true;
			break;
		case RC_UD_RECV:
			/* events gathered before c's close this turn are stale */
			if (!c->ep.events)
				break;
			if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				on_writable(c);
			if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(l, c);
			break;
		case RC_UD_WAKE: {
			uint64_t v;
			(void)!read(l->wake_fd, &v, sizeof(v));
			woken = true;
			break;
		}
		default:
			break;
		}
	}
	if (l->on_batch)
		l->on_batch(l);
	report_done(l);
	for (unsigned i = 0; accept && i < RC_EP_LISTEN; i++) {
		if (l->ep.listen[i].ready) {
			l->ep.listen[i].ready = false;
			on_accept(l, &l->ep.listen[i]);
		}
	}
	if (l->on_batch)
		l->on_batch(l);
	return woken;
}
