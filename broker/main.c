/* ringcast: the WebSocket pub/sub broadcast broker.
 *
 * main() loads the configuration, starts the server's loops and leaves
 * signals to one thread: SIGTERM/SIGINT drain (close 1001, flush, exit 0),
 * SIGHUP reloads what can change at run time. */
#include <errno.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/engine.h"
#include "broker/sse.h"

static void core_options(const struct bk_config *c, struct rc_options *o);

static void apply_runtime(const struct bk_config *c)
{
	rc_log_set_level((enum rc_log_level)c->log_level);
	rc_log_set_format((enum rc_log_format)c->log_format);
	rc_log_set_rate((unsigned)c->log_rate);
}

/* The command line, kept for SIGHUP: flags must keep overriding the file. */
static int saved_argc;
static char **saved_argv;

/* Configurations replaced by SIGHUP.  Handlers on other threads may still
 * read one, so they are freed only after the loops stopped. */
struct retired_cfg {
	struct retired_cfg *next;
	struct bk_config *cfg;
};
static struct retired_cfg *retired;

static void free_retired(void)
{
	while (retired) {
		struct retired_cfg *r = retired;
		retired = r->next;
		bk_config_free(r->cfg);
		free(r->cfg);
		free(r);
	}
}

/* The value(s) of key in an bk_config_dump text, joined by ','; returns
 * where the first "key = " line starts (NULL if none). */
static const char *dump_value(const char *dump, const char *key, size_t klen,
			      char *val, size_t cap)
{
	const char *first = NULL;
	size_t len = 0;

	val[0] = 0;
	for (const char *l = dump; *l;) {
		const char *eol = strchrnul(l, '\n');
		if ((size_t)(eol - l) > klen + 3 && memcmp(l, key, klen) == 0 &&
		    memcmp(l + klen, " = ", 3) == 0) {
			int n = snprintf(val + len, cap - len, "%s%.*s", first ? "," : "",
					 (int)(eol - l - (ptrdiff_t)klen - 3), l + klen + 3);
			if (n > 0 && (size_t)n < cap - len)
				len += (size_t)n;
			if (!first)
				first = l;
		}
		l = *eol ? eol + 1 : eol;
	}
	return first;
}

/* Writes "key old -> new, ..." for every key whose value differs between two
 * configuration dumps (or "no change"). */
static void describe_changes(const char *was, const char *now, char *out, size_t cap)
{
	char ov[256], nv[256];
	size_t len = 0;

	out[0] = 0;
	for (const char *l = now; *l;) {
		const char *eol = strchrnul(l, '\n');
		const char *eq = memmem(l, (size_t)(eol - l), " = ", 3);
		if (*l != ';' && *l != '[' && eq) {
			size_t klen = (size_t)(eq - l);
			dump_value(was, l, klen, ov, sizeof(ov));
			/* Only at the key's first line (listen may repeat). */
			if (dump_value(now, l, klen, nv, sizeof(nv)) == l && strcmp(ov, nv) != 0) {
				/* tls_*: the files are re-read on SIGHUP, but new
				 * names or addresses only at start. */
				bool restart = (klen == 6 && !memcmp(l, "listen", 6)) ||
					       (klen == 7 && !memcmp(l, "threads", 7)) ||
					       (klen == 7 && !memcmp(l, "backlog", 7)) ||
					       (klen > 4 && !memcmp(l, "tls_", 4)) ||
					       (klen == 6 && !memcmp(l, "engine", 6)) ||
					       (klen > 6 && !memcmp(l, "redis_", 6));
				/* redis_url may carry a password: never logged. */
				bool secret = klen == 9 && !memcmp(l, "redis_url", 9);
				int n = snprintf(out + len, cap - len, "%s%.*s %s -> %s%s",
						 len ? ", " : "", (int)klen, l, secret ? "…" : ov,
						 secret ? "…" : nv, restart ? " (needs a restart)" : "");
				if (n > 0 && (size_t)n < cap - len)
					len += (size_t)n;
			}
		}
		l = *eol ? eol + 1 : eol;
	}
	if (!len)
		snprintf(out, cap, "no change");
}

/* SIGHUP: reload defaults, file, the original flags and the environment, in
 * the same order as at start; limits, timeouts, compression, history and
 * log level take effect for new decisions at once (each loop takes the core
 * options at its next turn; armed timers move to the new durations), while
 * listen addresses, threads and backlog need a restart, and the log says
 * so.  The log line lists exactly what changed. */
static void reload(void)
{
	enum { DUMP = 16384 };
	const struct bk_config *old = bk_cfg();
	struct bk_config *c = calloc(1, sizeof(*c));
	char *was = malloc(DUMP), *now = malloc(DUMP), *what = malloc(DUMP);
	struct retired_cfg *r;
	struct rc_options opt;
	bool exit_now = false;

	if (!c || !was || !now || !what)
		goto cleanup;
	bk_config_defaults(c);
	/* Errors are printed by the parser, with file and line. */
	if (bk_config_from_args(c, saved_argc, saved_argv, &exit_now) < 0) {
		rc_log(RC_LOG_ERROR, "reload: %s has errors; keeping the running configuration",
		       old->config_file ? old->config_file : "the configuration");
		bk_config_free(c);
		goto cleanup;
	}
	if (bk_config_dump(old, was, DUMP) < 0 || bk_config_dump(c, now, DUMP) < 0)
		snprintf(what, DUMP, "(configuration too long to compare)");
	else
		describe_changes(was, now, what, DUMP);
	apply_runtime(c);
	core_options(c, &opt);
	if (rc_server_set_options(bk.srv, &opt) < 0)
		rc_log(RC_LOG_ERROR, "reload: out of memory: some threads keep the old "
		       "limits and timeouts");
	bk_auth_reload(c);
	/* The old struct stays allocated until exit (handlers on other threads
	 * may still read it): a few hundred bytes per SIGHUP. */
	atomic_store_explicit(&bk.cfg, c, memory_order_release);
	c = NULL;
	if ((r = malloc(sizeof(*r)))) {
		r->cfg = (struct bk_config *)old;
		r->next = retired;
		retired = r;
	}
	rc_log(RC_LOG_INFO, "reloaded%s%s: %s", old->config_file ? " " : "",
	       old->config_file ? old->config_file : "", what);
cleanup:
	free(c);
	free(was);
	free(now);
	free(what);
}

/* SIGHUP, TLS part: every TLS listener re-reads its certificate and key (a
 * renewed certificate is picked up by new handshakes; established
 * connections keep theirs).  Independent of the configuration reload, so a
 * typo in the file does not hold back a certificate renewal. */
static void reload_tls(void)
{
	const struct bk_config *c = bk_cfg();
	int ret;

	if (!c->ntls_listen)
		return;
	ret = rc_server_reload_tls(bk.srv);
	if (ret < 0)
		rc_log(RC_LOG_ERROR, "reload: TLS certificate or key did not load (reason "
		       "above); keeping the previous certificate");
	else
		rc_log(RC_LOG_INFO, "reload: TLS certificate and key re-read");
}

/* Runs on each loop after everything posted to it before: the last loop
 * to get here stops the server. */
static void drain_barrier(void *arg)
{
	(void)arg;
	if (atomic_fetch_sub(&bk.drain_left, 1) == 1)
		rc_server_stop(bk.srv);
}

/* SIGTERM/SIGINT, as one ordered step across all threads: (1) no publish
 * is accepted anywhere any more (refused with a reason: err shutting_down,
 * HTTP 503, close 1001 on /pub) and those in progress finish; (2) a
 * barrier behind every message already handed to each loop, so when the
 * last loop passes it every acked message is queued to every subscriber;
 * (3) only then every connection gets close 1001, behind what is queued.
 * Each thread draining on its own acked publishes on one thread after
 * another had closed its subscribers. */
static void drain(void)
{
	unsigned n = bk.nthreads;

	bk_stop_publishing();
	atomic_store(&bk.drain_left, n);
	for (unsigned i = 0; i < n; i++)
		if (bk.io->post(i, drain_barrier, NULL) < 0)
			drain_barrier(NULL); /* not running yet, or no memory */
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload();
			reload_tls();
			continue;
		}
		rc_log(RC_LOG_INFO, "%s: draining connections", strsignal(sig));
		/* It posts to the loops and frees into their pools: it stops
		 * before they do. */
		bk_housekeeping_stop();
		/* A certificate reload gave this thread OpenSSL state (its DRBG,
		 * error queue) that is freed only at thread exit; main may exit
		 * first once the server stops, so free it now. */
		OPENSSL_thread_stop();
		bk_auth_stop();
		drain();
		return NULL;
	}
}

static void make_epoch(void)
{
	uint8_t r[8];

	arc4random_buf(r, sizeof(r));
	for (int i = 0; i < 8; i++)
		snprintf(bk.epoch + 2 * i, 3, "%02x", r[i]);
}

static void core_options(const struct bk_config *c, struct rc_options *o)
{
	rc_options_default(o);
	o->max_message_size = c->max_message_size;
	o->max_frame_size = c->max_message_size;
	/* The broker applies max_backpressure itself (with the slow-consumer
	 * policy); the core's limit is a hard stop above it. */
	o->max_backpressure = c->max_backpressure * 2 + c->max_message_size + (64u << 10);
	o->max_http_head = c->max_http_head;
	o->max_http_body = c->max_http_body;
	o->handshake_timeout_ms = c->handshake_timeout_ms;
	o->idle_timeout_ms = c->idle_timeout_ms;
	o->pong_timeout_ms = c->pong_timeout_ms;
	o->close_timeout_ms = c->close_timeout_ms;
	o->deflate.enabled = c->compression;
	o->deflate.server_no_context_takeover = true;
	o->deflate.max_window_bits = 15;
	o->io_backend = (enum rc_io_backend)c->io_backend;
}

int main(int argc, char **argv)
{
	struct bk_config *cfg = calloc(1, sizeof(*cfg));
	struct rc_options opt;
	sigset_t set;
	pthread_t sig_th;
	bool exit_now = false;
	int ret;

	if (!cfg)
		return 1;
	bk_config_defaults(cfg);
	saved_argc = argc;
	saved_argv = argv;
	ret = bk_config_from_args(cfg, argc, argv, &exit_now);
	if (ret < 0 || exit_now) {
		bk_config_free(cfg);
		free(cfg);
		return ret < 0 ? 2 : 0;
	}
	apply_runtime(cfg);
	if (bk_auth_init(cfg) < 0) {
		bk_config_free(cfg);
		free(cfg);
		return 2;
	}
	atomic_store(&bk.cfg, cfg);
	make_epoch();
	if (bk_engine_init(cfg) < 0)
		return 2;
	bk.started_ms = rc_now_ms();
	if (bk_registry_init() < 0) {
		fprintf(stderr, "ringcast: out of memory\n");
		return 1;
	}
	bk.io = &bk_conn_io;
	core_options(cfg, &opt);
	bk.srv = rc_server_new(&(struct rc_server_config){
		.options = &opt,
		.threads = cfg->threads,
		.backlog = cfg->backlog,
		.on_upgrade = bk_on_upgrade,
		.on_http = bk_on_http,
		.on_connect = bk_on_connect,
		.on_disconnect = bk_on_disconnect,
	});
	if (!bk.srv)
		return 1;
	bk.nthreads = rc_server_threads(bk.srv);
	if (bk_workers_init(bk.nthreads) < 0)
		return 1;
	if (bk_auth_start(bk.nthreads) < 0 || bk_sse_start(bk.nthreads) < 0)
		return 1;
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		ret = rc_server_listen(bk.srv, cfg->listen[i]);
		if (ret < 0) {
			fprintf(stderr, "ringcast: cannot listen on %s: %s\n", cfg->listen[i],
				ret == -EINVAL ? "not a HOST:PORT address" :
				ret == -EADDRINUSE ? "address in use" : strerror(-ret));
			return 1;
		}
		rc_log(RC_LOG_INFO, "listening on %s (port %d)", cfg->listen[i],
		       rc_server_port(bk.srv));
	}
	for (unsigned i = 0; i < cfg->ntls_listen; i++) {
		ret = rc_server_listen_tls(bk.srv, cfg->tls_listen[i], &(struct rc_tls_config){
			.cert_file = cfg->tls_cert,
			.key_file = cfg->tls_key,
			.client_ca_file = cfg->tls_client_ca,
		});
		if (ret < 0) {
			/* -EINVAL: the address, or a file OpenSSL refused (logged). */
			fprintf(stderr, "ringcast: cannot listen with TLS on %s: %s\n",
				cfg->tls_listen[i], ret == -EINVAL ?
				"bad address, or the certificate/key did not load" :
				ret == -EADDRINUSE ? "address in use" : strerror(-ret));
			return 1;
		}
		rc_log(RC_LOG_INFO, "listening on %s (TLS, certificate %s%s%s)", cfg->tls_listen[i],
		       cfg->tls_cert, cfg->tls_client_ca ? ", client certificates from " : "",
		       cfg->tls_client_ca ? cfg->tls_client_ca : "");
	}
	/* Signals go to one thread; the loops never see them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_create(&sig_th, NULL, signal_thread, &set);
	pthread_detach(sig_th);
	rc_log(RC_LOG_INFO, "ringcast %s: %u threads, epoch %s", RINGCAST_VERSION, bk.nthreads,
	       bk.epoch);
	if ((ret = bk_housekeeping_start()) < 0) {
		fprintf(stderr, "ringcast: cannot start the housekeeping thread: %s\n",
			strerror(-ret));
		return 1;
	}
	ret = rc_server_run(bk.srv);
	bk_housekeeping_stop();
	if (ret < 0) {
		fprintf(stderr, "ringcast: %s\n", strerror(-ret));
		return 1;
	}
	/* bk.srv is not freed: its loops' pools hold the histories' messages;
	 * exit reclaims both. */
	free_retired();
	rc_log(RC_LOG_INFO, "stopped");
	return 0;
}
