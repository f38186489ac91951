/* ringcast core: an io_uring event loop and a WebSocket server/client library
 * with an event API (on_open, on_message, on_ping, on_pong, on_close).
 *
 * Threading: every connection belongs to one loop, and every loop to one
 * thread.  Handlers run on the connection's loop thread.  The functions marked
 * "any thread" may be called from anywhere; the rest only from the loop's own
 * thread (inside a handler, or before the loop runs).
 *
 * Memory: connections, frames and queue entries come from per-loop pools that
 * grow in large chunks; in steady state nothing on the recv, parse or send
 * path calls malloc. */
#ifndef RC_CORE_RC_H
#define RC_CORE_RC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/types.h"

struct rc_loop;
struct rc_server;
struct rc_conn;
struct rc_buf;
struct rc_client_options;
struct rc_deflater; /* proto/deflate.h */

/* ---- Intrusive lists ------------------------------------------------------------ *
 * Doubly linked, in the style of libuv's queue.h: the links live inside the
 * listed objects, so adding and removing never allocate.  Used by the core
 * and by embedders (the broker's subscriber lists). */

struct rc_list {
	struct rc_list *next, *prev;
};

static inline void rc_list_init(struct rc_list *h) { h->next = h->prev = h; }
static inline bool rc_list_empty(const struct rc_list *h) { return h->next == h; }
static inline void rc_list_add_tail(struct rc_list *h, struct rc_list *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void rc_list_del(struct rc_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}
#define rc_container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/* ---- Shared, refcounted buffers ------------------------------------------
 * An rc_buf is an immutable (once shared) byte buffer with an atomic
 * refcount.  Encoded frames are rc_bufs: one broadcast frame is queued on any
 * number of connections, on any loops, by reference. */

/* Allocates a buffer of at least cap bytes from the calling thread's loop
 * pool (or the global fallback pool off-loop).  Refcount 1, length 0.
 * Returns NULL on out of memory. */
struct rc_buf *rc_buf_new(size_t cap);
uint8_t *rc_buf_data(struct rc_buf *b);
size_t rc_buf_len(const struct rc_buf *b);
size_t rc_buf_cap(const struct rc_buf *b);
void rc_buf_set_len(struct rc_buf *b, size_t len);
/* Any thread.  ref returns b. */
struct rc_buf *rc_buf_ref(struct rc_buf *b);
void rc_buf_unref(struct rc_buf *b);

/* Encodes one complete server-to-client frame (unmasked) of opcode with
 * payload, deflated with a fresh context when d is not NULL (RSV1 set; d is
 * scratch initialised with no context takeover).  The result can be queued
 * on every connection, whatever thread owns it, with rc_conn_send_frame().
 * Returns a buffer with refcount 1 or NULL. */
struct rc_buf *rc_frame_encode(uint8_t opcode, const uint8_t *payload,
			       size_t len, struct rc_deflater *d);

/* Allocates a final, unmasked, uncompressed frame of opcode for a payload of
 * len bytes, its header written; *payload points where the caller writes
 * those len bytes (in place: no second copy), after which the frame is
 * complete and shareable like rc_frame_encode's.  Returns a buffer with
 * refcount 1 or NULL. */
struct rc_buf *rc_frame_new(uint8_t opcode, size_t len, uint8_t **payload);

/* Pooled memory for callers' own per-connection and per-message objects:
 * size-class pools of the calling thread's loop, freed from any thread.
 * Returns 16-aligned memory or NULL. */
void *rc_mem_alloc(size_t size);
void rc_mem_free(void *p);

/* ---- Options and handlers ------------------------------------------------ */

/* The loop's I/O backend (core/README.md, "Loop backends"). */
enum rc_io_backend {
	RC_IO_AUTO = 0,   /* RINGCAST_IO_BACKEND if set, else io_uring, and
			   * epoll when io_uring cannot be set up here */
	RC_IO_URING,      /* io_uring or fail */
	RC_IO_EPOLL,      /* epoll, plain descriptors */
};

struct rc_options {
	uint64_t max_message_size;   /* bytes after inflate; 1009 past it (16 MiB) */
	uint64_t max_frame_size;     /* bytes per frame (= max_message_size) */
	size_t max_backpressure;     /* the per-connection budget (4 MiB): bytes
				      * queued (frames, pongs, HTTP answers, TLS
				      * records, cross-thread sends in flight)
				      * before data sends fail with -ENOBUFS and
				      * the connection stops being read until
				      * half of it has drained */
	size_t max_http_head;        /* request head (8 KiB; 431 past it), and a
				      * client's response head */
	size_t max_http_body;        /* plain HTTP request body (1 MiB; 413) */
	unsigned handshake_timeout_ms; /* 10 s */
	unsigned idle_timeout_ms;    /* silence before we ping (30 s); 0: never */
	unsigned pong_timeout_ms;    /* ping answered within (10 s), else 1006 */
	unsigned close_timeout_ms;   /* close handshake completes within (5 s) */
	struct rc_pmd_config deflate;/* permessage-deflate; off by default */
	bool manual_pong;            /* true: on_ping must answer itself */
	enum rc_io_backend io_backend; /* chosen by rc_loop_new (auto) */
};

/* Fills o with the defaults given in parentheses above. */
void rc_options_default(struct rc_options *o);

struct rc_handlers {
	/* The handshake completed; the connection can send. */
	void (*on_open)(struct rc_conn *c);
	/* A whole message (reassembled, inflated, UTF-8 checked for text).
	 * data is valid during the call; rc_conn_keep_message() keeps it. */
	void (*on_message)(struct rc_conn *c, uint8_t opcode,
			   const uint8_t *data, size_t len);
	void (*on_ping)(struct rc_conn *c, const uint8_t *data, size_t len);
	void (*on_pong)(struct rc_conn *c, const uint8_t *data, size_t len);
	/* Called once per connection that on_upgrade accepted (usually after
	 * on_open; without it if the 101 could not be sent), when it is gone:
	 * code is the peer's close code, or 1006 when the TCP connection
	 * ended without a close handshake.  The connection must not be used
	 * after this returns. */
	void (*on_close)(struct rc_conn *c, uint16_t code,
			 const uint8_t *reason, size_t len);
};

/* ---- Loops ----------------------------------------------------------------- */

/* Creates a loop for the calling thread (rings are single-issuer) on the
 * backend o->io_backend names; auto reads RINGCAST_IO_BACKEND ("auto",
 * "io_uring" or "epoll") first.  io_uring: probes the kernel,
 * SINGLE_ISSUER/DEFER_TASKRUN when available and safe (not on 6.6-6.8,
 * liburing#1062), else falls back and logs what was turned off.  Auto runs
 * epoll when io_uring cannot be set up (blocked by a container's seccomp
 * profile, disabled, too old a kernel).  The first loop of the process logs
 * which backend runs and why.  Returns NULL with errno set; with io_uring
 * forced, EPERM/ENOSYS mean it is blocked and the message on stderr says so. */
struct rc_loop *rc_loop_new(const struct rc_options *o);
/* "io_uring" or "epoll": the backend l runs on. */
const char *rc_loop_backend(const struct rc_loop *l);
/* Runs until rc_loop_stop(); returns 0 or -errno. */
int rc_loop_run(struct rc_loop *l);
/* Any thread, async-signal-safe: asks the loop to drain (close every
 * connection with 1001 within close_timeout_ms) and return. */
void rc_loop_stop(struct rc_loop *l);
void rc_loop_free(struct rc_loop *l);
/* The loop running on the calling thread, or NULL. */
struct rc_loop *rc_loop_current(void);

/* Nanoseconds the loop spent handling events and waiting for them, and the
 * connections it holds; readable from any thread (approximate). */
void rc_loop_stats(const struct rc_loop *l, uint64_t *busy_ns, uint64_t *idle_ns,
		   unsigned *conns);

/* Calls fn(arg) on l's thread, soon.  Any thread.  Returns 0 or -ENOMEM. */
int rc_loop_post(struct rc_loop *l, void (*fn)(void *arg), void *arg);
/* Replaces l's options at run time; any thread.  l takes a copy on its own
 * thread at its next turn: limits are checked against the new values from
 * then on, new connections negotiate with them (deflate), and armed timers
 * move to the new durations counted from when they were armed.  Returns 0
 * or -ENOMEM. */
int rc_loop_set_options(struct rc_loop *l, const struct rc_options *o);

/* ---- Server ------------------------------------------------------------------ */

struct rc_server_config {
	const struct rc_options *options; /* NULL: defaults */
	unsigned threads;                 /* loops; 0: one per CPU in the affinity mask */
	int backlog;                      /* listen(2) backlog (1024) */
	/* Decides what an upgrade request becomes: return 0 to accept (after
	 * choosing handlers with rc_conn_set_handlers()), or an HTTP status
	 * (404, 403, ...) to refuse.  NULL: accept every path with
	 * default_handlers. */
	int (*on_upgrade)(struct rc_conn *c, const struct rc_http_request *req);
	/* A plain HTTP request with its body; answer with rc_conn_respond().
	 * NULL: every plain request gets 426 Upgrade Required. */
	void (*on_http)(struct rc_conn *c, const struct rc_http_request *req,
			const uint8_t *body, size_t body_len);
	const struct rc_handlers *default_handlers;
	void *user;                       /* rc_server_user() */
	/* Every accepted socket (WebSocket, plain HTTP, or silent), once its
	 * peer address is known (rc_conn_peer_ip) and before any of its bytes
	 * is read: return 0 to serve it, or an HTTP status (503, 429, ...) to
	 * refuse it: a plain listener answers with that status and closes,
	 * a TLS one closes.  For connection limits.  NULL: serve every one. */
	int (*on_connect)(struct rc_conn *c);
	/* Called once for every socket on_connect accepted, when its
	 * descriptor is closed (after on_close for a WebSocket). */
	void (*on_disconnect)(struct rc_conn *c);
};

struct rc_server *rc_server_new(const struct rc_server_config *cfg);
/* Adds a listener on "host:port", ":port" or "[v6]:port" (one SO_REUSEPORT
 * socket per loop).  Returns 0 or -errno (-EINVAL for a bad address). */
int rc_server_listen(struct rc_server *s, const char *addr);
/* TLS for a listener: OpenSSL over memory BIOs (the ring does the socket
 * I/O), TLS 1.2 minimum, ALPN http/1.1. */
struct rc_tls_config {
	const char *cert_file;      /* PEM certificate chain */
	const char *key_file;       /* PEM private key */
	const char *client_ca_file; /* NULL, or require client certificates from it */
};

/* Adds a TLS listener (like rc_server_listen).  The certificate and key are
 * loaded now: -EINVAL (reason logged) when they do not load or match. */
int rc_server_listen_tls(struct rc_server *s, const char *addr,
			 const struct rc_tls_config *tls);
/* Re-reads every TLS listener's certificate and key (e.g. on SIGHUP): new
 * handshakes use them, established connections are untouched.  Any thread.
 * Returns 0, or -EINVAL if a file failed to load (that listener keeps its
 * old certificate; the reason is logged). */
int rc_server_reload_tls(struct rc_server *s);

/* Serves on a listening socket the caller already owns (all loops accept
 * from it).  Returns 0 or -errno. */
int rc_server_listen_fd(struct rc_server *s, int fd);
/* The port of the first listener (after binding ":0"), or -1. */
int rc_server_port(const struct rc_server *s);
/* Runs every loop (the calling thread runs loop 0) until rc_server_stop()
 * has drained them all.  Returns 0 or -errno.  The drained loops and their
 * pools stay allocated until rc_server_free(): buffers and frames made on
 * a loop thread (e.g. kept in a history) may be released until then. */
int rc_server_run(struct rc_server *s);
/* Any thread, async-signal-safe. */
void rc_server_stop(struct rc_server *s);
void rc_server_free(struct rc_server *s);
void *rc_server_user(const struct rc_server *s);
unsigned rc_server_threads(const struct rc_server *s);
struct rc_loop *rc_server_loop(const struct rc_server *s, unsigned i);
/* New options for every loop (rc_loop_set_options), and for loops not
 * started yet; any thread but a signal handler.  0 or -ENOMEM (then some
 * loops may keep the old ones). */
int rc_server_set_options(struct rc_server *s, const struct rc_options *o);

/* ---- Connections ------------------------------------------------------------- */

void rc_conn_set_handlers(struct rc_conn *c, const struct rc_handlers *h);
void rc_conn_set_user(struct rc_conn *c, void *user);
void *rc_conn_user(const struct rc_conn *c);
struct rc_loop *rc_conn_loop(const struct rc_conn *c);
struct rc_server *rc_conn_server(const struct rc_conn *c);
/* The negotiated permessage-deflate parameters, or NULL if not negotiated. */
const struct rc_pmd_params *rc_conn_deflate(const struct rc_conn *c);
/* Peer address as text ("127.0.0.1:53422"), or "" if unknown (server
 * connections on kernels before 6.7, which cannot answer SO_PEERNAME for a
 * direct descriptor).  The text lives until the next call on this thread. */
const char *rc_conn_peer(const struct rc_conn *c);
/* The peer's IP in 16 bytes (IPv4 mapped as ::ffff:a.b.c.d), for per-IP
 * limits; false if unknown. */
bool rc_conn_peer_ip(const struct rc_conn *c, uint8_t ip[16]);

/* Sends a message (TEXT, BINARY) or control frame (PING, PONG; payload
 * <= 125).  Compressed when negotiated and worth it.  Any thread: off the
 * loop thread the frame is built here and handed over.  Returns 0, -ENOBUFS
 * when max_backpressure would be passed (nothing is queued), -EPIPE when the
 * connection is closing, -EINVAL or -ENOMEM. */
int rc_conn_send(struct rc_conn *c, uint8_t opcode, const void *data,
		 size_t len);
/* Queues a reference to a pre-encoded frame (rc_frame_encode).  Any
 * thread.  Same returns as rc_conn_send(); the caller keeps its reference. */
int rc_conn_send_frame(struct rc_conn *c, struct rc_buf *frame);
/* Starts the close handshake with code and reason.  Any thread.  Returns 0
 * or -EPIPE if already closing. */
int rc_conn_close(struct rc_conn *c, uint16_t code, const char *reason,
		  size_t len);
/* Like rc_conn_close, but first drops the queued frames that have not
 * started to go out, so the close frame follows right behind what is in
 * flight: for a slow consumer that would otherwise see its close only after
 * megabytes it is not reading.  Loop thread only.  0 or -EPIPE. */
int rc_conn_close_now(struct rc_conn *c, uint16_t code, const char *reason,
		      size_t len);
/* Bytes queued and not yet acknowledged by the kernel. */
size_t rc_conn_queued(const struct rc_conn *c);
/* Inside on_message: a reference to a buffer holding the message, for use
 * after the handler returns.  NULL on out of memory. */
struct rc_buf *rc_conn_keep_message(struct rc_conn *c);
/* Keeps c alive (memory, not the socket) across threads and handlers. */
void rc_conn_ref(struct rc_conn *c);
void rc_conn_unref(struct rc_conn *c);

/* Answers a plain HTTP request: a complete response with body (for a HEAD
 * request the same head without the body, so a handler answers HEAD as it
 * answers GET); the connection stays open for the next request when the
 * client allows keep-alive.  Inside on_http, or later on the connection's
 * loop thread when on_http returned without answering (an answer that
 * waits for another server): until then the connection reads no further
 * request, so answers keep the requests' order, and the idle limit
 * (handshake_timeout_ms) still runs.  Keep a reference (rc_conn_ref) for a
 * later answer: the client may be gone by then.  Returns 0, -EPIPE when the
 * request was answered already or the connection is closing or closed, or
 * -EINVAL, -ENOMEM. */
int rc_conn_respond(struct rc_conn *c, int status, const char *content_type,
		    const char *extra_headers, const void *body, size_t len);

/* ---- Byte streams -----------------------------------------------------------
 * A connection can carry plain bytes instead of WebSocket frames: a server
 * answers a request with a response whose body is a stream (Server-Sent
 * Events), or a client dials a TCP or TLS service (a Redis server).  Bytes
 * go out through the same send queue and budget (max_backpressure) as
 * frames; rc_conn_close() and rc_conn_close_now() end a stream (after, or
 * instead of, what is still queued) and rc_conn_queued() reports its queue.
 * No idle pings: a stream's protocol keeps itself alive. */

struct rc_stream_handlers {
	/* A client stream is connected (with TLS, what is sent now waits
	 * for the handshake, whose failure is reported to on_close). */
	void (*on_open)(struct rc_conn *c);
	/* Bytes from the peer of a client stream, valid during the call. */
	void (*on_data)(struct rc_conn *c, const uint8_t *data, size_t len);
	/* Once per stream, when it is gone: why is NULL when it ended in
	 * order (the peer's EOF, or our close completing), else a text
	 * (why_len bytes) saying why it failed (refused, timed out, TLS). */
	void (*on_close)(struct rc_conn *c, const char *why, size_t why_len);
};

/* Inside on_http: answers the request with the head of a response of
 * unknown length (no Content-Length, "Connection: close") and turns the
 * connection into a byte stream carrying its body.  Bytes the client sends
 * afterwards are read and discarded (so its close is seen).  For a HEAD
 * request only the head is sent and the stream ends at once.  The request
 * passed to on_http must not be used after this call.  Returns 0 or
 * -EINVAL (not inside on_http, a bad header) or -ENOMEM. */
int rc_conn_respond_stream(struct rc_conn *c, int status, const char *content_type,
			   const char *extra_headers, const struct rc_stream_handlers *h);

/* Dials "tcp://host:port" or "tls://host:port" (certificate and host name
 * verified as for wss://, o->ca_file and o->insecure apply; o->socks5 and
 * o->connect_timeout_ms too; protocols, headers and options do not).  The
 * loop thread only.  Returns the connection, or NULL with errno (EINVAL for
 * a bad URL, EPROTONOSUPPORT for another scheme). */
struct rc_conn *rc_stream_connect(struct rc_loop *l, const char *url,
				  const struct rc_client_options *o,
				  const struct rc_stream_handlers *h, void *user);

/* Queues bytes (a copy), or a reference to a shared buffer (the caller
 * keeps its reference: one encoded-once SSE event for every subscriber), on
 * a stream.  Any thread.  0, -ENOBUFS past max_backpressure (nothing is
 * queued), -EPIPE when the stream is ending or not open yet, -ENOMEM. */
int rc_stream_send(struct rc_conn *c, const void *data, size_t len);
int rc_stream_send_buf(struct rc_conn *c, struct rc_buf *b);

/* ---- Client ------------------------------------------------------------------- */

struct rc_client_options {
	const struct rc_options *options; /* NULL: defaults */
	const char *protocols;            /* Sec-WebSocket-Protocol offer */
	const char *headers;              /* extra "Name: value\r\n" lines */
	const char *socks5;               /* "socks5://[user:pass@]host:port" */
	unsigned connect_timeout_ms;      /* TCP + proxy + handshake (10 s) */
	const char *ca_file;              /* wss: trust these CAs, not the system's */
	bool insecure;                    /* wss: no certificate check (tests only) */
};

/* True if c is encrypted (wss:// or a TLS listener). */
bool rc_conn_tls(const struct rc_conn *c);

/* Starts connecting to a ws:// or wss:// URL on loop l (loop thread).
 * wss:// verifies the server's certificate against the system CA store (or
 * o->ca_file) and its host name, with SNI, unless o->insecure.  The handlers'
 * on_open reports success; on failure on_close is called with 1006 and a
 * reason text.  Returns the connection or NULL with errno set (EINVAL for a
 * bad URL, EPROTONOSUPPORT for a scheme we do not speak). */
struct rc_conn *rc_client_connect(struct rc_loop *l, const char *url,
				  const struct rc_client_options *o,
				  const struct rc_handlers *h, void *user);

/* Wraps an already connected socket (GWS NewClientFromConn): performs the
 * client handshake for url's host and path over fd, which the loop now owns.
 * With o->socks5, fd is connected to that proxy (its host and port are not
 * used) and the SOCKS5 exchange comes first.  On NULL (errno EINVAL for a
 * bad URL, ENOMEM) fd is still the caller's. */
struct rc_conn *rc_client_wrap_fd(struct rc_loop *l, int fd, const char *url,
				  const struct rc_client_options *o,
				  const struct rc_handlers *h, void *user);

/* ---- Clock ------------------------------------------------------------------------ */

/* CLOCK_MONOTONIC in nanoseconds and in milliseconds: the one clock for
 * timers, rate limits, ages and latency.  Any thread. */
uint64_t rc_now_ns(void);
uint64_t rc_now_ms(void);

/* ---- Logging ------------------------------------------------------------------- */

enum rc_log_level { RC_LOG_ERROR, RC_LOG_WARN, RC_LOG_INFO, RC_LOG_DEBUG };
enum rc_log_format { RC_LOG_TEXT, RC_LOG_JSON };
/* The most verbose level printed (RC_LOG_INFO at start). */
void rc_log_set_level(enum rc_log_level lvl);
bool rc_log_enabled(enum rc_log_level lvl);
/* RC_LOG_TEXT: "<time> <level> <message>"; RC_LOG_JSON: one object per line,
 * {"time":"…","level":"…","msg":"…"}. */
void rc_log_set_format(enum rc_log_format f);
/* At most per_second lines a second on average (bursts of ten seconds'
 * worth), 0 for no limit; lines over it are counted and reported as one
 * "N log lines suppressed" line.  200 at start. */
void rc_log_set_rate(unsigned per_second);
/* One line to stderr (any thread; never on the data path).  Text from peers
 * goes through rc_log_escape first. */
void rc_log(enum rc_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Copies p[0..len) into out (NUL-terminated, truncated with "..." to fit
 * cap) with every byte outside printable ASCII, and '"' and '\\', as \xNN:
 * a peer's path or header cannot forge or break a log line.  Returns out. */
const char *rc_log_escape(char *out, size_t cap, const void *p, size_t len);

#endif
