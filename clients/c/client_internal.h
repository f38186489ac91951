/* Private to clients/c: the client object shared by the event-loop core
 * (ringcast_client.c), its setup and timer thread (ringcast_setup.c), the
 * blocking layer (ringcast_blocking.c) and HTTP publish (ringcast_http.c). */
#ifndef RC_CLIENTS_CLIENT_INTERNAL_H
#define RC_CLIENTS_CLIENT_INTERNAL_H

#include <pthread.h>

#include "clients/c/ringcast_client.h"
#include "proto/json.h"

struct rc__url {
	char host[256];
	uint16_t port;
	char path[1024];
	char ws[1400]; /* ws[s]://host:port/path as core's rc_client_connect wants */
	bool tls;      /* wss:// */
};

/* Parses ws://, wss://, http:// (https:// gives -EPROTONOSUPPORT); an empty
 * path or "/" becomes "/ws".  Returns 0, -EINVAL or -EPROTONOSUPPORT. */
int rc__url_parse(const char *url, struct rc__url *u);

enum rc__ps_state { PS_IDLE, PS_CONNECTING, PS_OPEN, PS_WAIT, PS_CLOSED };

struct rc__cmd;
struct rc__sub;
struct rc__blocking;

struct rc_pubsub {
	struct rc_loop *loop;
	struct rc__url url;
	struct rc_pubsub_options o;
	char socks5[512];
	char ca_file[512];
	char *auth_header;          /* "Authorization: Bearer ...\r\n" or NULL */
	struct rc_options copt;
	struct rc_client_options cco;
	struct rc_conn *conn;
	enum rc__ps_state state;
	bool ever_open, freeing;
	unsigned retries;
	uint64_t retry_at;
	char epoch[72];
	char err[512];
	int err_no;
	struct rc__sub *subs;
	struct rc__cmd *q_head, *q_tail; /* not sent yet, in order */
	struct rc__cmd *f_head, *f_tail; /* sent, waiting for ack/err */
	size_t nqueued, ninflight;
	uint64_t next_id;
	double tokens;
	uint64_t tokens_ms;
	char *scratch;
	size_t scratch_cap;
	char *dec;
	size_t dec_cap;
	/* Timer thread: core/rc.h has no timers, so a thread sleeps until the
	 * earliest deadline and posts rc__ps_on_timer to the loop. */
	pthread_t timer;
	pthread_mutex_t tmu;
	pthread_cond_t tcv;
	uint64_t t_deadline;
	bool t_quit, t_posted, t_started;
	/* Blocking layer: state changes are published under mu. */
	pthread_mutex_t mu;
	struct rc__blocking *bl;
	void (*state_hook)(struct rc_pubsub *ps); /* after state/err change */
};

/* Initialises everything but the loop (blocking mode creates it later on
 * its own thread).  Returns 0 or -errno. */
int rc__ps_init(struct rc_pubsub *ps, const char *url,
		const struct rc_pubsub_options *o);
/* Starts the timer thread once ps->loop is set.  Returns 0 or -errno. */
int rc__ps_start_timer(struct rc_pubsub *ps);
/* Stops and joins the timer thread. */
void rc__ps_stop_timer(struct rc_pubsub *ps);
/* Frees what rc__ps_init and the loop-side code allocated (not ps). */
void rc__ps_destroy(struct rc_pubsub *ps);
/* Loop thread: closes the connection and fails every command with err. */
void rc__ps_shutdown(struct rc_pubsub *ps, int err);
/* Maps a server err code (raw JSON string) to -errno. */
int rc__err_errno(const char *code, size_t len);
/* Records the last failure: err and printf-style text, under mu. */
void rc__ps_set_err(struct rc_pubsub *ps, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Asks for rc__ps_on_timer within ms (the earliest request wins). */
void rc__ps_timer_arm(struct rc_pubsub *ps, uint64_t ms);
/* Loop thread, posted by the timer thread: retries a connection whose
 * backoff is over and pumps the command queue. */
void rc__ps_on_timer(void *arg);

#endif
