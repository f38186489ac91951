/* The epoll backend: the loop where io_uring cannot run (container seccomp
 * profiles, gVisor, kernel.io_uring_disabled), behind the same operations
 * (core/README.md, "Loop backends").
 *
 * Plain non-blocking descriptors, level-triggered.  Each operation the ring
 * would carry is done here when the socket is ready and reported to the
 * same handler a completion reaches: a recv's bytes to rc__conn_received, a
 * send's result to rc__conn_on_send, a close to rc__conn_on_close, a
 * connect to rc__client_on_connect.  Results of operations done at once
 * (a send the socket took, a close) are reported at the next turn, as a
 * completion would be: so a connection still sends once per turn with at
 * most one send "in flight" (its frames batch meanwhile), and no handler
 * runs inside the call that started the operation.  inflight counts those
 * operations like SQEs, so the life cycle in conn.c is the same. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/internal.h"

#define RC_EP_EVENTS 256        /* events taken per epoll_wait */
#define RC_EP_BUF (64u << 10)   /* the loop's receive buffer */
#define RC_EP_READS 4           /* recvs per connection per turn: one busy
				 * connection cannot starve the others */
#define RC_EP_ACCEPTS 64        /* accepts per listener per turn */

/* Operations finished and not yet reported (c->ep_done). */
enum { RC_EP_SEND = 1, RC_EP_CONNECT = 2, RC_EP_CLOSE = 4 };

/* Sets up l's epoll instance and receive buffer.  0 or -1 (errno). */
int rc__ep_init(struct rc_loop *l)
{
	l->ep.fd = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep.fd < 0)
		return -1;
	l->ep.buf = malloc(RC_EP_BUF);
	if (!l->ep.buf) {
		close(l->ep.fd);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Releases what rc__ep_init set up. */
void rc__ep_exit(struct rc_loop *l)
{
	close(l->ep.fd);
	free(l->ep.buf);
	l->ep.buf = NULL;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Reports op (with res) at the next turn. */
static void done(struct rc_conn *c, uint8_t op, int res)
{
	struct rc_loop *l = c->loop;

	if (op != RC_EP_CLOSE)
		c->ep_res = res; /* a send and a connect never wait together */
	if (!c->ep_done) {
		c->ep_next = l->ep.done;
		l->ep.done = c;
	}
	c->ep_done |= op;
}

/* Registers the interest c's state asks for: input while its recv is
 * armed, output while a send or connect waits.  None: out of the set
 * (a paused connection is not woken by its peer's hangup). */
static void update(struct rc_conn *c)
{
	uint32_t want = (c->recv_armed ? EPOLLIN : 0) |
			(c->ep_out || c->ep_connecting ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = want, .data.u64 = RC_UD(c, RC_UD_RECV) };
	int op = !c->ep_events ? EPOLL_CTL_ADD : !want ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

	if (want == c->ep_events)
		return;
	if (op == EPOLL_CTL_ADD)
		set_nonblock(c->fd);
	if (epoll_ctl(c->loop->ep.fd, op, c->fd, &ev) < 0 && op != EPOLL_CTL_DEL) {
		/* out of memory or max_user_watches: this connection cannot run */
		rc_log(RC_LOG_WARN, "epoll_ctl: %s", strerror(errno));
		c->ep_events = op == EPOLL_CTL_ADD ? 0 : c->ep_events;
		c->recv_armed = false;
		if (c->ep_out) {
			c->ep_out = false;
			done(c, RC_EP_SEND, -errno);
		}
		if (c->ep_connecting) {
			c->ep_connecting = false;
			done(c, RC_EP_CONNECT, -errno);
		}
		return;
	}
	c->ep_events = want;
}

/* ---- Operations (the ring's, done here) ------------------------------------------ */

/* Starts reading c (see rc__conn_arm_recv). */
void rc__ep_arm_recv(struct rc_conn *c)
{
	c->recv_armed = true;
	update(c);
}

/* Stops reading c until rc__conn_arm_recv: the kernel keeps what arrives
 * and TCP pushes back on the peer. */
void rc__ep_pause_recv(struct rc_conn *c)
{
	c->recv_armed = false;
	update(c);
}

/* One sendmsg of iov[n] (the send_iovs frames the send covers); false
 * when the socket has no room. */
static bool try_send(struct rc_conn *c, struct iovec *iov, unsigned cnt)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = cnt };
	ssize_t n;

	do
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return false;
	done(c, RC_EP_SEND, n < 0 ? -errno : (int)n);
	return true;
}

/* Sends what c's queue may send now (rc__conn_flush, once per turn):
 * reported to rc__conn_on_send at the next turn, or when the socket has
 * room again. */
void rc__ep_send(struct rc_conn *c)
{
	struct iovec iov[RC_SEND_IOV];

	c->sending = true;
	c->send_iovs = (uint8_t)rc__conn_iov(c, iov, RC_SEND_IOV);
	c->inflight++;
	if (!try_send(c, iov, c->send_iovs)) {
		c->ep_out = true;
		update(c);
	}
}

/* Ends what waits for readiness (a teardown's cancel): reported as
 * -ECANCELED at the next turn, like a cancelled SQE. */
void rc__ep_cancel(struct rc_conn *c)
{
	c->recv_armed = false;
	if (c->ep_out) {
		c->ep_out = false;
		done(c, RC_EP_SEND, -ECANCELED);
	}
	if (c->ep_connecting) {
		c->ep_connecting = false;
		done(c, RC_EP_CONNECT, -ECANCELED);
	}
	update(c);
}

/* Closes c's descriptor (nothing names c any more): rc__conn_on_close at
 * the next turn, after any event of this turn that still names it. */
void rc__ep_close(struct rc_conn *c)
{
	if (c->ep_events)
		epoll_ctl(c->loop->ep.fd, EPOLL_CTL_DEL, c->fd, NULL);
	c->ep_events = 0;
	close(c->fd);
	c->close_submitted = true;
	c->inflight++;
	done(c, RC_EP_CLOSE, 0);
}

/* Connects c's socket to sa: rc__client_on_connect at the next turn, or
 * when the handshake is done. */
void rc__ep_connect(struct rc_conn *c, const struct sockaddr *sa, socklen_t sl)
{
	set_nonblock(c->fd);
	c->inflight++;
	if (connect(c->fd, sa, sl) == 0) {
		done(c, RC_EP_CONNECT, 0);
	} else if (errno == EINPROGRESS) {
		c->ep_connecting = true;
		update(c);
	} else {
		done(c, RC_EP_CONNECT, -errno);
	}
}

/* Starts accepting on ls. */
void rc__ep_arm_accept(struct rc_listener *ls)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = RC_UD(ls, RC_UD_ACCEPT) };

	set_nonblock(ls->fd);
	if (epoll_ctl(ls->loop->ep.fd, EPOLL_CTL_ADD, ls->fd, &ev) < 0) {
		rc_log(RC_LOG_ERROR, "epoll_ctl on listener %d: %s", ls->fd, strerror(errno));
		ls->failed = true;
		return;
	}
	ls->armed = true;
}

/* Stops accepting on ls. */
void rc__ep_stop_accept(struct rc_listener *ls)
{
	if (ls->armed)
		epoll_ctl(ls->loop->ep.fd, EPOLL_CTL_DEL, ls->fd, NULL);
	ls->armed = false;
}

/* ---- Events ---------------------------------------------------------------------------- */

static void on_accept(struct rc_loop *l, struct rc_listener *ls)
{
	for (unsigned i = 0; i < RC_EP_ACCEPTS && ls->armed && !l->draining; i++) {
		int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			rc__loop_accepted(ls, fd);
			continue;
		}
		if (errno == EAGAIN)
			return;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		rc__ep_stop_accept(ls);
		if (errno == ENFILE || errno == EMFILE || errno == ENOMEM || errno == ENOBUFS) {
			/* retried by the tick once a second, as with io_uring */
			if (l->now_ms - ls->last_warn_ms >= 1000) {
				rc_log(RC_LOG_WARN, "accept: %s (retrying every second)",
				       strerror(errno));
				ls->last_warn_ms = l->now_ms;
			}
			return;
		}
		rc_log(RC_LOG_ERROR, "accept on listener %d failed for good: %s",
		       ls->fd, strerror(errno));
		ls->failed = true;
		return;
	}
}

/* Input: up to RC_EP_READS recvs into the loop's buffer, each handled
 * before the next (the buffer is reused, as a provided buffer is). */
static void on_readable(struct rc_loop *l, struct rc_conn *c)
{
	for (unsigned i = 0; i < RC_EP_READS && c->recv_armed && c->state != RC_CS_DEAD; i++) {
		ssize_t n = recv(c->fd, l->ep.buf, RC_EP_BUF, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		rc__conn_received(c, l->ep.buf, n < 0 ? -errno : (int)n);
		if (n < (ssize_t)RC_EP_BUF)
			return; /* drained, or ended; level-triggered tells if more came */
	}
}

static void on_connected(struct rc_conn *c)
{
	int err = 0;
	socklen_t sl = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		err = errno;
	c->ep_connecting = false;
	update(c);
	rc__client_on_connect(c, -err);
}

static void on_conn_event(struct rc_loop *l, struct rc_conn *c, uint32_t ev)
{
	if (c->state == RC_CS_DEAD || c->close_submitted)
		return;
	if (c->ep_connecting) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connected(c);
		return;
	}
	if (c->ep_out && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		struct iovec iov[RC_SEND_IOV];
		c->ep_out = false;
		if (!try_send(c, iov, rc__conn_iov(c, iov, c->send_iovs)))
			c->ep_out = true;
		update(c);
	}
	if (c->state != RC_CS_DEAD && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		on_readable(l, c);
}

/* Reports what finished since the last turn.  Reports made meanwhile (a
 * send a report started) wait for the next turn. */
static void report_done(struct rc_loop *l)
{
	struct rc_conn *c = l->ep.done;

	l->ep.done = NULL;
	while (c) {
		struct rc_conn *next = c->ep_next;
		uint8_t ops = c->ep_done;

		c->ep_done = 0;
		c->ep_next = NULL;
		if (ops & RC_EP_CONNECT)
			rc__client_on_connect(c, c->ep_res);
		if (ops & RC_EP_SEND)
			rc__conn_on_send(c, c->ep_res);
		if (ops & RC_EP_CLOSE)
			rc__conn_on_close(c); /* may free c */
		c = next;
	}
}

/* One turn on epoll: wait up to wait_ms (not at all when reports are
 * due), handle the events, report what finished, then the common tick.
 * 0, or -errno when epoll failed for good. */
int rc__ep_turn(struct rc_loop *l, uint64_t wait_ms)
{
	struct epoll_event evs[RC_EP_EVENTS];
	uint64_t t0 = rc_now_ns(), t1;
	int n;

	if ((int64_t)wait_ms < 0) /* a deadline already past */
		wait_ms = 0;
	else if (wait_ms > 1000000)
		wait_ms = 1000000;
	n = epoll_wait(l->ep.fd, evs, RC_EP_EVENTS, l->ep.done ? 0 : (int)wait_ms);
	t1 = rc_now_ns();
	__atomic_store_n(&l->idle_ns, l->idle_ns + (t1 - t0), __ATOMIC_RELAXED);
	if (n < 0 && errno != EINTR) {
		rc_log(RC_LOG_ERROR, "epoll_wait: %s", strerror(errno));
		return -errno;
	}
	l->now_ms = t1 / 1000000;
	for (int i = 0; i < n; i++) {
		uint64_t ud = evs[i].data.u64;
		void *ptr = RC_UD_PTR(ud);

		switch (RC_UD_OP(ud)) {
		case RC_UD_ACCEPT:
			on_accept(l, ptr);
			break;
		case RC_UD_RECV:
			on_conn_event(l, ptr, evs[i].events);
			break;
		case RC_UD_WAKE: {
			uint64_t v;
			(void)!read(l->wake_fd, &v, sizeof(v));
			rc__loop_wake(l);
			break;
		}
		default:
			break;
		}
	}
	rc__loop_flush(l);
	report_done(l);
	rc__loop_flush(l);
	rc__loop_tick(l, t1);
	return 0;
}
