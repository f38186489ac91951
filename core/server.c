/* The server: N loops on N threads, each with its own SO_REUSEPORT listener
 * per address (the kernel spreads connections over them), or all accepting
 * from one socket the caller owns. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"

#define RC_MAX_ADDRS 16

struct rc_server {
	struct rc_server_config cfg;
	struct rc_options opt;
	unsigned nthreads;
	/* Written by each worker as its loop starts, read by rc_server_stop
	 * (any thread, a signal handler) and rc_server_loop: atomic.  Cleared
	 * before the loops are freed, and the free waits for every
	 * rc_server_stop in progress (stoppers) to let go of them. */
	_Atomic(struct rc_loop *) *loops;
	atomic_uint stoppers;
	char *addrs[RC_MAX_ADDRS];
	int first_fds[RC_MAX_ADDRS]; /* opened by rc_server_listen; loop 0's */
	struct rc_tls_server *tls[RC_MAX_ADDRS]; /* NULL: plain */
	unsigned naddrs;
	int user_fds[RC_MAX_ADDRS];
	unsigned nuser_fds;
	int port;
	atomic_bool stop;
	pthread_mutex_t lock;
	pthread_cond_t ready;
	unsigned nready;
	bool go;                 /* every loop exists: workers may run */
	int start_err;
};
_Static_assert(offsetof(struct rc_server, cfg) == 0, "rc__server_config (internal.h) reads cfg at the start");

/* Creates a server; nothing listens until rc_server_run(). */
/* The CPUs this process may run on (taskset, cgroup cpusets): more loops
 * than that only take turns on the same CPUs. */
static long usable_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return sysconf(_SC_NPROCESSORS_ONLN);
}

struct rc_server *rc_server_new(const struct rc_server_config *cfg)
{
	struct rc_server *s = calloc(1, sizeof(*s));
	long ncpu;

	if (!s)
		return NULL;
	s->cfg = *cfg;
	if (cfg->options)
		s->opt = *cfg->options;
	else
		rc_options_default(&s->opt);
	s->cfg.options = &s->opt;
	ncpu = usable_cpus();
	s->nthreads = cfg->threads ? cfg->threads : (ncpu > 0 ? (unsigned)ncpu : 1);
	if (!s->cfg.backlog)
		s->cfg.backlog = 1024;
	s->loops = calloc(s->nthreads, sizeof(*s->loops));
	if (!s->loops) {
		free(s);
		return NULL;
	}
	s->port = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->ready, NULL);
	return s;
}

/* Splits "host:port", ":port", "[v6]:port" or "port". */
static int parse_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon;

	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= hcap)
			return -EINVAL;
		memcpy(host, addr + 1, (size_t)(end - addr - 1));
		host[end - addr - 1] = 0;
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		size_t hl = colon ? (size_t)(colon - addr) : 0;
		if (hl >= hcap)
			return -EINVAL;
		memcpy(host, addr, hl);
		host[hl] = 0;
		if (!colon)
			colon = addr - 1;
	}
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= pcap ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -EINVAL;
	strcpy(port, colon + 1);
	return 0;
}

/* Opens one listening socket for addr with SO_REUSEPORT (port 0 is resolved
 * by the first socket and reused by the rest through *port_io).  With own
 * (the server's first sockets, nown of them), refuses with -EADDRINUSE an
 * address another process already listens on (core/listen_excl.c). */
static int open_listener(const char *addr, int backlog, int *port_io,
			 const int *own, unsigned nown)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	int fd, one = 1, ret;

	if (parse_addr(addr, host, sizeof(host), port, sizeof(port)) < 0)
		return -EINVAL;
	if (*port_io > 0 && strcmp(port, "0") == 0)
		snprintf(port, sizeof(port), "%d", *port_io);
	ret = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (ret)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto err_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	/* Accepted sockets inherit TCP_NODELAY: no setsockopt per connection,
	 * which direct descriptors could not do before Linux 6.7. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		ret = -errno;
		goto err_close;
	}
	if (own && (ret = rc__listen_exclusive(fd, own, nown)) < 0)
		goto err_close;
	if (listen(fd, backlog) < 0) {
		ret = -errno;
		goto err_close;
	}
	if (own && (ret = rc__listen_exclusive(fd, own, nown)) < 0)
		goto err_close;
	if (*port_io <= 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		*port_io = ntohs(ss.ss_family == AF_INET6
				 ? ((struct sockaddr_in6 *)&ss)->sin6_port
				 : ((struct sockaddr_in *)&ss)->sin_port);
	}
	freeaddrinfo(ai);
	return fd;

err_close:
	close(fd);
err_free:
	freeaddrinfo(ai);
	return ret;
}

/* Adds an address to listen on; the first socket is opened now so that a
 * bad or busy address is reported here. */
int rc_server_listen(struct rc_server *s, const char *addr)
{
	int port = 0, fd;

	if (s->naddrs == RC_MAX_ADDRS)
		return -ENOSPC;
	fd = open_listener(addr, s->cfg.backlog, &port, s->first_fds, s->naddrs);
	if (fd < 0)
		return fd;
	/* Kept open and handed to loop 0: clients may connect (into the
	 * backlog) from now on, and nobody can take the port meanwhile. */
	s->first_fds[s->naddrs] = fd;
	/* Remember the resolved port so that ":0" means one port for all. */
	char host[256], p[16], buf[300];
	parse_addr(addr, host, sizeof(host), p, sizeof(p));
	snprintf(buf, sizeof(buf), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	s->addrs[s->naddrs++] = strdup(buf);
	if (s->port < 0)
		s->port = port;
	return 0;
}

/* Adds a TLS listener (see rc.h). */
int rc_server_listen_tls(struct rc_server *s, const char *addr,
			 const struct rc_tls_config *tls)
{
	struct rc_tls_server *t;
	int ret;

	if (!tls || !tls->cert_file || !tls->key_file)
		return -EINVAL;
	if (s->naddrs == RC_MAX_ADDRS)
		return -ENOSPC;
	if (!(t = rc__tls_server_new(tls)))
		return -EINVAL;
	ret = rc_server_listen(s, addr);
	if (ret < 0) {
		rc__tls_server_free(t);
		return ret;
	}
	s->tls[s->naddrs - 1] = t;
	return 0;
}

/* Reloads every TLS listener's files (see rc.h). */
int rc_server_reload_tls(struct rc_server *s)
{
	int ret = 0;

	for (unsigned i = 0; i < s->naddrs; i++)
		if (s->tls[i] && rc__tls_server_reload(s->tls[i]) < 0)
			ret = -EINVAL;
	return ret;
}

/* Serves on an existing listening socket (see rc.h). */
int rc_server_listen_fd(struct rc_server *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (s->nuser_fds == RC_MAX_ADDRS)
		return -ENOSPC;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	s->user_fds[s->nuser_fds++] = fd;
	if (s->port < 0)
		s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							: ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* The first listener's port. */
int rc_server_port(const struct rc_server *s) { return s->port; }

/* ---- Accept ------------------------------------------------------------------------- */

static void arm_accept(struct rc_listener *ls)
{
	struct rc_loop *l = ls->loop;
	struct io_uring_sqe *sqe;

	if (rc__loop_epoll(l)) {
		ls->armed = rc__ep_accept(l, ls->fd, ls) == 0;
		ls->failed = !ls->armed;
		return;
	}
	sqe = rc__sqe(l);
	if (l->direct) /* direct descriptors have no close-on-exec flag */
		io_uring_prep_multishot_accept_direct(sqe, ls->fd, NULL, NULL, 0);
	else
		io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, RC_UD(ls, RC_UD_ACCEPT));
	ls->armed = true;
}

/* A direct descriptor has no getpeername(); Linux 6.7+ answers
 * getsockopt(SOL_SOCKET, SO_PEERNAME) through IORING_OP_URING_CMD.  The SQE
 * is hard-linked to the recv that follows, so the address is written before
 * any request byte is handled, and a kernel without the command (an error
 * here, leaving the address unknown) neither cancels the recv nor leaves anything naming the connection.
 * The uapi fields of 6.7 are set by offset: liburing 2.3 predates them. */
static void ask_peer_name(struct rc_conn *c, int family)
{
	struct io_uring_sqe *sqe = rc__sqe(c->loop);

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, c->fd, NULL, 0, 0);
	sqe->off = 2; /* cmd_op = SOCKET_URING_OP_GETSOCKOPT */
	sqe->addr = (uint64_t)SOL_SOCKET | ((uint64_t)SO_PEERNAME << 32); /* level, optname */
	/* optlen: SO_PEERNAME refuses a length over the address's own. */
	sqe->splice_fd_in = family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
					       : (int)sizeof(struct sockaddr_in);
	sqe->addr3 = (uint64_t)(uintptr_t)&c->peer;                      /* optval */
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
	/* Its completion (whatever the result) admits the connection
	 * (cqe_peer) before the linked recv's first bytes. */
	io_uring_sqe_set_data64(sqe, RC_UD(c, RC_UD_PEER));
	c->inflight++;
}

/* Asks the server whether to serve a socket just accepted, before any of
 * its bytes is read (rc_server_config.on_connect).  Refused: a plain one is
 * answered with the status and closed like any refused request (its
 * request, if any, is discarded); a TLS one is closed (no handshake yet). */
static void admit(struct rc_conn *c)
{
	const struct rc_server_config *cfg = rc__server_config(c->srv);
	int status = cfg->on_connect ? cfg->on_connect(c) : 0;

	if (!status) {
		c->admitted = true;
		return;
	}
	if (c->tls)
		rc__conn_abort(c, 0);
	else
		rc__http_refuse(c, status, "connection limit", NULL);
}

/* The peer's address arrived (see ask_peer_name): admit or refuse. */
static void cqe_peer(void *c, const struct io_uring_cqe *cqe)
{
	(void)cqe;
	if (rc__conn_complete(c))
		admit(c);
}

static void cqe_accept(void *ptr, const struct io_uring_cqe *cqe)
{
	struct rc_listener *ls = ptr;
	struct rc_loop *l = ls->loop;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		ls->armed = false;
	if (cqe->res >= 0) {
		struct rc_conn *c = rc__conn_new(l, cqe->res, l->direct);
		if (!c && rc__loop_epoll(l)) {
			close(cqe->res);
		} else if (!c) {
			struct io_uring_sqe *sqe = rc__sqe(l);
			if (l->direct)
				io_uring_prep_close_direct(sqe, (unsigned)cqe->res);
			else
				io_uring_prep_close(sqe, cqe->res);
			io_uring_sqe_set_data64(sqe, 0);
		} else {
			rc__timer_arm(c, RC_T_HANDSHAKE, l->opt.handshake_timeout_ms);
			if (ls->tls && rc__tls_accept(c, ls->tls) < 0) {
				rc__conn_abort(c, 0);
			} else if (l->direct) {
				ask_peer_name(c, ls->family);
				rc__conn_arm_recv(c);
			} else {
				socklen_t sl = sizeof(c->peer);
				getpeername(c->fd, (struct sockaddr *)&c->peer, &sl);
				admit(c);
				rc__conn_arm_recv(c);
			}
		}
	} else if (cqe->res == -ENFILE || cqe->res == -EMFILE || cqe->res == -ENOMEM ||
		   cqe->res == -ENOBUFS) {
		/* Out of descriptors or memory: the multishot ended; the next
		 * accept is retried by the tick (see rc_loop_run), not in a
		 * busy loop. */
		if (!ls->armed && l->now_ms - ls->last_warn_ms >= 1000) {
			rc_log(RC_LOG_WARN, "accept: %s (retrying every second)",
			       strerror(-cqe->res));
			ls->last_warn_ms = l->now_ms;
		}
		return;
	} else if (cqe->res != -ECANCELED && cqe->res != -EAGAIN &&
		   cqe->res != -ECONNABORTED) {
		rc_log(RC_LOG_ERROR, "accept on listener %d failed for good: %s",
		       ls->fd, strerror(-cqe->res));
		ls->failed = true;
		return;
	}
	if (!ls->armed && !l->draining)
		arm_accept(ls);
}

/* Listeners whose multishot ended for want of descriptors or memory get
 * another try at most once a second. */
static void rearm_listeners(struct rc_loop *l)
{
	struct rc_list *it;

	if (l->draining)
		return;
	for (it = l->listeners.next; it != &l->listeners; it = it->next) {
		struct rc_listener *ls = rc_container_of(it, struct rc_listener, link);
		if (!ls->armed && !ls->failed && l->now_ms - ls->last_warn_ms >= 1000)
			arm_accept(ls);
	}
}

/* The loop drains: every listener stops accepting. */
static void stop_accepting(struct rc_loop *l)
{
	struct rc_list *it, *next;

	for (it = l->listeners.next; it != &l->listeners; it = next) {
		struct rc_listener *ls = rc_container_of(it, struct rc_listener, link);
		next = it->next;
		if (rc__loop_epoll(l)) {
			rc__ep_accept_cancel(l, ls->fd);
		} else {
			struct io_uring_sqe *sqe = rc__sqe(l);
			io_uring_prep_cancel_fd(sqe, ls->fd, 0);
			io_uring_sqe_set_data64(sqe, 0);
		}
		/* Leave LISTEN now, not when the descriptor is closed: the ring
		 * may keep the socket alive after exit (its teardown runs in a
		 * kernel worker), and while it listens the kernel completes
		 * handshakes nobody will accept and a successor on this address
		 * is refused as "address in use" (listen_excl.c). */
		if (ls->owned)
			shutdown(ls->fd, SHUT_RD);
	}
}

/* Starts accepting on fd (a listening socket) on l. */
static int add_listener(struct rc_loop *l, int fd, bool owned,
			struct rc_tls_server *tls)
{
	struct rc_listener *ls = calloc(1, sizeof(*ls));

	if (!ls)
		return -ENOMEM;
	ls->loop = l;
	ls->fd = fd;
	ls->owned = owned;
	ls->tls = tls;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ls->family = getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 ? ss.ss_family : AF_INET;
	rc_list_add_tail(&l->listeners, &ls->link);
	rc__loop_on(l, RC_UD_ACCEPT, cqe_accept);
	rc__loop_on(l, RC_UD_PEER, cqe_peer);
	l->on_stop_accepting = stop_accepting;
	l->on_tick = rearm_listeners;
	arm_accept(ls);
	return 0;
}

/* Closes l's listeners (before the loop is freed). */
static void free_listeners(struct rc_loop *l)
{
	struct rc_list *it, *next;

	for (it = l->listeners.next; it != &l->listeners; it = next) {
		struct rc_listener *ls = rc_container_of(it, struct rc_listener, link);
		next = it->next;
		if (ls->owned)
			close(ls->fd);
		free(ls);
	}
	rc_list_init(&l->listeners);
}

struct worker_arg {
	struct rc_server *s;
	unsigned idx;
};

static int start_loop(struct rc_server *s, unsigned idx)
{
	struct rc_loop *l;
	int ret;

	/* Under the lock: rc_server_set_options either changes s->opt before
	 * this loop copies it, or finds the loop in s->loops. */
	pthread_mutex_lock(&s->lock);
	l = rc_loop_new(&s->opt);
	ret = l ? 0 : -errno;
	if (l) {
		l->srv = s;
		atomic_store(&s->loops[idx], l);
	}
	pthread_mutex_unlock(&s->lock);
	if (!l)
		return ret;
	for (unsigned i = 0; i < s->naddrs; i++) {
		int port = 0;
		int fd = idx == 0 ? s->first_fds[i]
				  : open_listener(s->addrs[i], s->cfg.backlog, &port, NULL, 0);
		if (idx == 0)
			s->first_fds[i] = -1; /* the loop owns it now */
		if (fd < 0) {
			rc_log(RC_LOG_ERROR, "listen %s: %s", s->addrs[i], strerror(-fd));
			return fd;
		}
		if ((ret = add_listener(l, fd, true, s->tls[i])) < 0)
			return ret;
	}
	for (unsigned i = 0; i < s->nuser_fds; i++)
		if ((ret = add_listener(l, s->user_fds[i], false, NULL)) < 0)
			return ret;
	return 0;
}

static void *worker(void *arg)
{
	struct worker_arg *w = arg;
	struct rc_server *s = w->s;
	int ret = start_loop(s, w->idx);

	pthread_mutex_lock(&s->lock);
	if (ret < 0 && !s->start_err)
		s->start_err = ret;
	s->nready++;
	pthread_cond_broadcast(&s->ready);
	/* Not before every loop exists: a connection on this loop may post
	 * to any other (rc_server_loop). */
	while (!s->go)
		pthread_cond_wait(&s->ready, &s->lock);
	pthread_mutex_unlock(&s->lock);
	if (ret == 0)
		rc_loop_run(atomic_load(&s->loops[w->idx]));
	return NULL;
}

/* Frees every loop once no rc_server_stop still holds one: the slots are
 * cleared first, so a later stop finds none (seq_cst on both sides: either
 * the stopper's increment is seen here or the cleared slot is seen there). */
static void free_loops(struct rc_server *s)
{
	struct rc_loop *l;

	for (unsigned i = 0; i < s->nthreads; i++) {
		pthread_mutex_lock(&s->lock); /* rc_server_set_options is done with it */
		l = atomic_exchange(&s->loops[i], NULL);
		pthread_mutex_unlock(&s->lock);
		if (!l)
			continue;
		while (atomic_load(&s->stoppers))
			sched_yield(); /* a stopper only does one write per loop */
		free_listeners(l);
		rc_loop_free(l);
	}
}

/* Runs every loop until stopped (see rc.h). */
int rc_server_run(struct rc_server *s)
{
	pthread_t *th = calloc(s->nthreads, sizeof(*th));
	struct worker_arg *args = calloc(s->nthreads, sizeof(*args));
	unsigned started = 1; /* threads running worker(), loop 0's included */
	int ret = 0;

	if (!th || !args) {
		ret = -ENOMEM;
		goto out;
	}
	ret = start_loop(s, 0);
	if (ret < 0)
		goto out;
	for (; started < s->nthreads; started++) {
		args[started].s = s;
		args[started].idx = started;
		if (pthread_create(&th[started], NULL, worker, &args[started]) != 0) {
			ret = -EAGAIN;
			break;
		}
	}
	pthread_mutex_lock(&s->lock);
	while (s->nready < started - 1)
		pthread_cond_wait(&s->ready, &s->lock);
	if (s->start_err && !ret)
		ret = s->start_err;
	s->go = true;
	pthread_cond_broadcast(&s->ready);
	pthread_mutex_unlock(&s->lock);
	/* A stop that came before every loop existed missed some. */
	if (ret < 0 || atomic_load(&s->stop))
		rc_server_stop(s);
	if (ret == 0)
		ret = rc_loop_run(atomic_load(&s->loops[0]));
	for (unsigned i = 1; i < started; i++)
		pthread_join(th[i], NULL);
	/* The loops (and their pools) stay until rc_server_free: objects from
	 * the pools, such as messages a user keeps in a history, outlive the
	 * run. */
out:
	free(th);
	free(args);
	return ret;
}

/* Stops every loop; async-signal-safe (see rc.h). */
void rc_server_stop(struct rc_server *s)
{
	atomic_store(&s->stop, true);
	atomic_fetch_add(&s->stoppers, 1);
	for (unsigned i = 0; i < s->nthreads; i++) {
		struct rc_loop *l = atomic_load(&s->loops[i]);
		if (l)
			rc_loop_stop(l);
	}
	atomic_fetch_sub(&s->stoppers, 1);
}

/* New options for every loop (see rc.h). */
int rc_server_set_options(struct rc_server *s, const struct rc_options *o)
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	s->opt = *o;
	for (unsigned i = 0; i < s->nthreads; i++) {
		struct rc_loop *l = atomic_load(&s->loops[i]);
		if (l && rc_loop_set_options(l, o) < 0)
			ret = -ENOMEM;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Frees a server that is not running, with its loops and their pools. */
void rc_server_free(struct rc_server *s)
{
	if (!s)
		return;
	free_loops(s);
	for (unsigned i = 0; i < s->naddrs; i++) {
		if (s->first_fds[i] >= 0)
			close(s->first_fds[i]);
		rc__tls_server_free(s->tls[i]);
		free(s->addrs[i]);
	}
	free(s->loops);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->ready);
	free(s);
}

/* The user pointer from the config. */
void *rc_server_user(const struct rc_server *s) { return s->cfg.user; }
/* Number of loops. */
unsigned rc_server_threads(const struct rc_server *s) { return s->nthreads; }
/* Loop i (valid until rc_server_free). */
struct rc_loop *rc_server_loop(const struct rc_server *s, unsigned i)
{
	return i < s->nthreads ? atomic_load_explicit(&s->loops[i], memory_order_acquire) : NULL;
}
