/* Private to core/: the structures behind the handles of core/rc.h. */
#ifndef RC_CORE_INTERNAL_H
#define RC_CORE_INTERNAL_H

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "core/list.h"
#include "core/rc.h"

/* ---- Size-class pools ------------------------------------------------------
 * Power-of-two classes from 64 B to 1 MiB; larger requests go to malloc.
 * Chunks that fall idle go back to the system (see pool.c).
 * A pool belongs to one thread; an object freed on another thread is pushed
 * on the pool's lock-free remote list and reclaimed by the owner. */

#define RC_POOL_MIN_SHIFT 6
#define RC_POOL_MAX_SHIFT 20
#define RC_POOL_CLASSES (RC_POOL_MAX_SHIFT - RC_POOL_MIN_SHIFT + 1)

struct rc_pool;

/* Every pool object starts with this header (16 bytes, keeps 16-alignment). */
struct rc_pool_obj {
	struct rc_chunk *chunk;            /* its chunk; NULL for a large object */
	union {
		struct rc_pool_obj *next;  /* while free (chunk or remote list) */
		size_t large;              /* a large object's usable size */
	};
};
_Static_assert(sizeof(struct rc_pool_obj) == 16, "pool header keeps 16-byte alignment");

struct rc_pool *rc__pool_new(void);
void rc__pool_free(struct rc_pool *p);
/* Frees chunks unused for a whole period (see pool.c); owner thread. */
void rc__pool_trim(struct rc_pool *p, uint64_t now_ms);
/* The calling thread's pool (its loop's, or the shared locked fallback). */
struct rc_pool *rc__pool_current(void);
void rc__pool_set_current(struct rc_pool *p);
/* Returns size usable bytes, 16-aligned, or NULL. */
void *rc__pool_alloc(struct rc_pool *p, size_t size);
/* Any thread. */
void rc__pool_release(void *ptr);
/* Usable size of an object from rc__pool_alloc. */
size_t rc__pool_usable(const void *ptr);
/* Makes sure *bp (may be NULL) has room for need more bytes, replacing it
 * with a larger pooled copy if not (capacity doubles).  0 or -ENOMEM. */
int rc__buf_reserve(struct rc_buf **bp, size_t need);
/* Bytes of chunk memory the pool holds (for memory reports). */
size_t rc__pool_footprint(const struct rc_pool *p);

struct rc_buf {
	atomic_uint refs;
	uint32_t pad;
	size_t len;
	size_t cap;
	uint8_t data[];
};

/* ---- The loop ---------------------------------------------------------------- */

/* user_data of every SQE: a pointer with the operation in the low 4 bits
 * (connections come from the pools, loops and listeners from malloc: all
 * 16-aligned).  0 means "no completion handling" (cancels, timeouts). */
enum rc_ud {
	RC_UD_NONE = 0,
	RC_UD_ACCEPT = 1,  /* ptr: struct rc_listener */
	RC_UD_RECV = 2,    /* ptr: struct rc_conn */
	RC_UD_SEND = 3,    /* ptr: struct rc_conn */
	RC_UD_CLOSE = 4,   /* ptr: struct rc_conn */
	RC_UD_WAKE = 5,    /* ptr: struct rc_loop (eventfd read) */
	RC_UD_CONNECT = 6, /* ptr: struct rc_conn */
	RC_UD_SHUT = 7,    /* ptr: struct rc_conn (shutdown(SHUT_WR)) */
	RC_UD_PEER = 8,    /* ptr: struct rc_conn (SO_PEERNAME of an accepted one) */
};
#define RC_UD(ptr, op) ((uint64_t)(uintptr_t)(ptr) | (uint64_t)(op))
#define RC_UD_OP(ud) ((enum rc_ud)((ud) & 15))
#define RC_UD_PTR(ud) ((void *)(uintptr_t)((ud) & ~(uint64_t)15))

struct rc_post {
	struct rc_post *next;
	void (*fn)(void *arg);
	void *arg;
};

struct rc_listener {
	struct rc_list link;    /* in loop->listeners */
	struct rc_loop *loop;
	int fd;
	bool owned;             /* we close it */
	bool armed;
	bool failed;            /* a fatal accept error: given up */
	int family;             /* AF_INET or AF_INET6 */
	struct rc_tls_server *tls; /* NULL: plain */
	uint64_t last_warn_ms;
};

struct rc_loop {
	struct io_uring ring;
	struct rc_options opt;
	struct rc_pool *pool;
	struct rc_server *srv;
	pthread_t thread;
	bool direct;            /* fixed-file table registered */
	unsigned direct_slots;

	/* provided buffer ring for recv */
	struct io_uring_buf_ring *br;
	uint8_t *br_mem;
	unsigned br_count, br_size, br_mask;
	unsigned short bgid;

	struct rc_list conns;     /* every live connection */
	struct rc_list listeners;
	/* Timer lists: every connection waits in at most one; within a list
	 * deadlines are in insertion order because each list has one duration,
	 * so arming is an append and expiry looks at the head only. */
	struct rc_list t_handshake, t_idle, t_pong, t_close;
	uint64_t now_ms;
	unsigned nconns;         /* one writer (the loop), read by rc_loop_stats */

	int wake_fd;             /* eventfd: posts and stop */
	uint64_t wake_val;
	_Atomic(struct rc_post *) posts;
	atomic_bool stop;
	bool draining;
	uint64_t drain_deadline;
	struct rc_conn *flushq;   /* connections with frames queued this turn */
	uint8_t *tls_scratch;     /* plaintext out of SSL_read */

	/* counters for stats */
	uint64_t busy_ns, idle_ns;
};

/* ---- Connections --------------------------------------------------------------- */

enum rc_conn_state {
	RC_CS_HTTP,        /* server: reading a request head (and body) */
	RC_CS_CONNECTING,  /* client: TCP connect / proxy in progress */
	RC_CS_HANDSHAKE,   /* client: upgrade request sent, reading the 101 */
	RC_CS_OPEN,
	RC_CS_CLOSING,     /* close frame sent, waiting for the peer's */
	RC_CS_STREAM,      /* a byte stream (stream.c): no frames */
	RC_CS_DRAIN,       /* close done: flushing, then shutdown, then close */
	RC_CS_DEAD,        /* descriptor closing or closed */
};

struct rc_sendq_node {
	struct rc_sendq_node *next;
	struct rc_buf *buf;
	bool cipher;              /* TLS: already encrypted (see tls.c) */
};

#define RC_SEND_IOV 64 /* fits conn->send_iovs */

struct rc_send_ctx {
	struct msghdr msg;
	struct iovec iov[RC_SEND_IOV];
};

struct rc_client_state;

struct rc_conn {
	struct rc_list all;       /* loop->conns */
	struct rc_list timer;     /* one of loop->t_* */
	uint64_t deadline;
	struct rc_loop *loop;
	struct rc_server *srv;
	struct rc_conn *flush_next; /* loop->flushq while flush_pending */
	const struct rc_handlers *h;
	const struct rc_stream_handlers *sh; /* a byte stream's (instead of h) */
	void *user;
	atomic_uint refs;         /* memory: loop's + rc_conn_ref()s */
	uint16_t inflight;        /* SQEs naming this conn not yet completed */
	uint16_t close_code;      /* what we sent or will send */
	int fd;
	uint8_t state;
	bool fixed;               /* fd is a direct descriptor */
	bool client;
	bool recv_armed;
	bool sending;
	bool opened;              /* on_open was called */
	bool accepted;            /* on_upgrade accepted it: on_close is owed */
	bool close_sent;
	bool close_rcvd;
	bool fail_fast;           /* protocol error: no more reading */
	bool http_keepalive;
	bool http_head;         /* answering a HEAD request: headers only */
	bool http_answered;       /* the current request got its answer */
	bool http_pending;        /* ... not yet: on_http left it for later */
	uint32_t http_used;       /* bytes of c->in the pending request takes */
	uint32_t http_scan;       /* bytes of c->in known to hold no head end */
	uint32_t http_need;       /* head + body of the request in c->in, once
				   * its head parsed (0: not yet) */
	bool pmd_on;
	bool flush_pending;
	bool close_submitted;
	bool closed_cb;           /* on_close was called */
	bool shut_sent;
	bool recv_cancel;         /* a cancel of the recv is on its way (pause) */
	bool admitted;            /* on_connect accepted it: on_disconnect is owed */
	uint8_t tkind;            /* which timer list c->timer is on */
	uint8_t send_iovs;        /* queue nodes the sendmsg in flight covers */
	uint8_t hlen;             /* bytes in hbuf */
	uint8_t hbuf[RC_FRAME_MAX_HEADER];
	struct rc_frame_header fh;/* current frame once hlen is complete */
	bool in_payload;
	uint64_t remaining;       /* payload bytes of the current frame left */
	uint64_t mask_off;
	struct rc_msg_state ms;   /* fragmentation rules (proto) */
	uint8_t msg_op;           /* opcode of the message being received */
	bool msg_z;               /* ... and whether it is compressed */
	struct rc_utf8 utf8;
	uint16_t peer_close;      /* code from the peer's close frame */
	struct rc_buf *in;        /* HTTP head/body, or control frame payload */
	struct rc_buf *msg;       /* message being assembled */
	struct rc_buf *kept;      /* in-place message copied by keep_message */
	const uint8_t *cur_data;  /* message being delivered (keep_message) */
	size_t cur_len;
	struct rc_inflater *inf;
	struct rc_deflater *def;
	struct rc_pmd_params pmd;
	struct rc_sendq_node *sq_head, *sq_tail;
	size_t sq_off;            /* bytes of sq_head already sent */
	size_t queued;            /* written by the loop thread only, through
				   * rc__queued_add; read anywhere with
				   * rc__queued (rc_conn_send's check) */
	struct rc_buf *held;      /* input received but not yet processed: the
				   * connection was over its budget (reading is
				   * paused while this is set) */
	size_t held_off;          /* bytes of held already processed */
	size_t reserved;          /* budget taken by cross-thread sends on their
				   * way to the owner (atomic, any thread) */
	bool close_posted;        /* a cross-thread close is on its way (atomic) */
	struct rc_send_ctx *sctx;
	struct rc_client_state *cl;
	struct sockaddr_in6 peer; /* or sockaddr_in; family 0 if unknown */
	struct rc_tls *tls;       /* NULL: plain TCP */
};

struct rc_tls;
struct rc_tls_server;

/* The queued-bytes counter: one writer (the loop thread), readers on any
 * thread, so both sides use relaxed atomics (an approximate but race-free
 * backpressure check for cross-thread sends). */
static inline size_t rc__queued(const struct rc_conn *c)
{
	return __atomic_load_n(&c->queued, __ATOMIC_RELAXED);
}
static inline void rc__queued_add(struct rc_conn *c, ptrdiff_t delta)
{
	__atomic_store_n(&c->queued, c->queued + (size_t)delta, __ATOMIC_RELAXED);
}

/* The loop's max_backpressure, for checks on other threads: the loop stores
 * it atomically when it takes new options (rc_loop_set_options). */
static inline size_t rc__max_backpressure(const struct rc_loop *l)
{
	return __atomic_load_n(&l->opt.max_backpressure, __ATOMIC_RELAXED);
}

/* The one budget check (core/README.md, "One budget per connection"): the
 * bytes c may still make us hold, out of max_backpressure.  Everything a
 * connection queues counts: data and control frames, HTTP answers, TLS
 * ciphertext, and cross-thread sends in flight.  Senders of data refuse
 * past it; readers stop reading at 0 until the queue drains. */
static inline size_t rc__conn_room(const struct rc_conn *c)
{
	size_t used = rc__queued(c) + __atomic_load_n(&c->reserved, __ATOMIC_ACQUIRE);
	size_t max = rc__max_backpressure(c->loop);

	return used < max ? max - used : 0;
}

/* loop.c */
struct io_uring_sqe *rc__sqe(struct rc_loop *l);
void rc__loop_log_features(struct rc_loop *l);
enum rc_timer_kind { RC_T_NONE, RC_T_HANDSHAKE, RC_T_IDLE, RC_T_PONG, RC_T_CLOSE };
void rc__timer_arm(struct rc_conn *c, enum rc_timer_kind kind, unsigned ms);
uint8_t *rc__loop_buf(struct rc_loop *l, unsigned bid);
void rc__loop_flush(struct rc_loop *l);
int rc__loop_turn(struct rc_loop *l, uint64_t wait_ms);
void rc__timer_disarm(struct rc_conn *c);
int rc__loop_add_listener(struct rc_loop *l, int fd, bool owned,
			  struct rc_tls_server *tls);
uint64_t rc__now_ms(void);

/* conn.c */
struct rc_conn *rc__conn_new(struct rc_loop *l, int fd, bool fixed);
void rc__conn_arm_recv(struct rc_conn *c);
void rc__conn_on_recv(struct rc_conn *c, const struct io_uring_cqe *cqe);
void rc__conn_on_send(struct rc_conn *c, int res);
void rc__conn_on_close(struct rc_conn *c);
void rc__conn_on_shut(struct rc_conn *c);
void rc__conn_timeout(struct rc_conn *c, enum rc_timer_kind kind);
void rc__conn_abort(struct rc_conn *c, uint16_t code);
void rc__conn_flush(struct rc_conn *c);
int rc__conn_enqueue(struct rc_conn *c, struct rc_buf *b);
void rc__conn_feed(struct rc_conn *c, uint8_t *p, size_t n);
void rc__conn_start_ws(struct rc_conn *c);
/* ws_zlib.c: the connection's zlib state, created on first use. */
struct rc_deflater *rc__conn_deflater(struct rc_conn *c);
int rc__conn_inflater(struct rc_conn *c);
void rc__conn_zlib_trim(struct rc_conn *c);
void rc__conn_zlib_free(struct rc_conn *c);
void rc__conn_put(struct rc_conn *c);
size_t rc__conn_dispatch(struct rc_conn *c, uint8_t *p, size_t n);
void rc__conn_input(struct rc_conn *c, uint8_t *p, size_t n);
int rc__conn_hold(struct rc_conn *c, const uint8_t *p, size_t n);
void rc__conn_resume(struct rc_conn *c);
void rc__conn_admit(struct rc_conn *c);
void rc__conn_on_peer(struct rc_conn *c);
/* ws_recv.c */
size_t rc__ws_read(struct rc_conn *c, uint8_t *p, size_t n);
/* conn.c, for ws_recv.c */
void rc__conn_fail(struct rc_conn *c, int err);
void rc__conn_maybe_finish(struct rc_conn *c);
int rc__conn_send_local(struct rc_conn *c, uint8_t opcode, const uint8_t *data, size_t len);
int rc__conn_send_close(struct rc_conn *c, uint16_t code, const char *reason, size_t len);
void rc__conn_call_on_close(struct rc_conn *c, uint16_t code, const uint8_t *reason,
			    size_t len);
void rc__conn_schedule_flush(struct rc_conn *c);

/* tls.c */
struct rc_tls_server *rc__tls_server_new(const struct rc_tls_config *cfg);
int rc__tls_server_reload(struct rc_tls_server *t);
void rc__tls_server_free(struct rc_tls_server *t);

/* core/listen_excl.c: 0, or -EADDRINUSE when a socket other than fd and
 * own_fds[] (at most RC__MAX_LISTEN_CHECK) listens on an overlapping address. */
#define RC__MAX_LISTEN_CHECK 16
int rc__listen_exclusive(int fd, const int *own_fds, unsigned nown);
int rc__tls_accept(struct rc_conn *c, struct rc_tls_server *srv);
int rc__tls_connect(struct rc_conn *c, const char *host, const char *ca_file, bool insecure);
void rc__tls_free(struct rc_conn *c);
void rc__tls_on_recv(struct rc_conn *c, const uint8_t *p, size_t n);
int rc__tls_encrypt(struct rc_conn *c);
bool rc__tls_close_notify(struct rc_conn *c);

/* stream.c */
void rc__stream_open(struct rc_conn *c);
size_t rc__stream_read(struct rc_conn *c, uint8_t *p, size_t n);
void rc__stream_end(struct rc_conn *c, bool drop_unsent);
/* conn.c, for stream.c */
bool rc__conn_writable(const struct rc_conn *c);
void rc__conn_drop_unsent(struct rc_conn *c);
int rc__conn_send_buf(struct rc_conn *c, struct rc_buf *b);

/* http_conn.c */
void rc__http_refuse(struct rc_conn *c, int status, const char *reason,
		     const char *extra);
size_t rc__http_feed(struct rc_conn *c, uint8_t *p, size_t n);

/* client.c */
void rc__client_on_connect(struct rc_conn *c, int res);
void rc__client_feed(struct rc_conn *c, uint8_t *p, size_t n);
void rc__client_free(struct rc_conn *c);
void rc__client_fail(struct rc_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* server.c */
const struct rc_server_config *rc__server_config(const struct rc_server *s);

#endif
