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

static void apply_runtime(const struct rc_config *c)
{
	rc_log_set_level((enum rc_log_level)c->log_level);
}

/* The command line, kept for SIGHUP: flags must keep overriding the file. */
static int saved_argc;
static char **saved_argv;

/* Configurations replaced by SIGHUP.  Handlers on other threads may still
 * read one, so they are freed only after the loops stopped. */
struct retired_cfg {
	struct retired_cfg *next;
	struct rc_config *cfg;
};
static struct retired_cfg *retired;

static void free_retired(void)
{
	while (retired) {
		struct retired_cfg *r = retired;
		retired = r->next;
		rc_config_free(r->cfg);
		free(r->cfg);
		free(r);
	}
}

/* The value(s) of key in an rc_config_dump text, joined by ','; returns
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
					       (klen > 4 && !memcmp(l, "tls_", 4));
				int n = snprintf(out + len, cap - len, "%s%.*s %s -> %s%s",
						 len ? ", " : "", (int)klen, l, ov, nv,
						 restart ? " (needs a restart)" : "");
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
 * the same order as at start; limits, history and log level take effect for
 * new decisions at once (listen addresses and threads need a restart, and
 * the log says so).  The log line lists exactly what changed. */
static void reload(void)
{
	enum { DUMP = 16384 };
	const struct rc_config *old = bk_cfg();
	struct rc_config *c = calloc(1, sizeof(*c));
	char *was = malloc(DUMP), *now = malloc(DUMP), *what = malloc(DUMP);
	struct retired_cfg *r;
	bool exit_now = false;

	if (!c || !was || !now || !what)
		goto cleanup;
	rc_config_defaults(c);
	/* Errors are printed by the parser, with file and line. */
	if (rc_config_from_args(c, saved_argc, saved_argv, &exit_now) < 0) {
		rc_log(RC_LOG_ERROR, "reload: %s has errors; keeping the running configuration",
		       old->config_file ? old->config_file : "the configuration");
		rc_config_free(c);
		goto cleanup;
	}
	if (rc_config_dump(old, was, DUMP) < 0 || rc_config_dump(c, now, DUMP) < 0)
		snprintf(what, DUMP, "(configuration too long to compare)");
	else
		describe_changes(was, now, what, DUMP);
	apply_runtime(c);
	bk_auth_reload(c);
	/* The old struct stays allocated until exit (handlers on other threads
	 * may still read it): a few hundred bytes per SIGHUP. */
	atomic_store_explicit(&bk.cfg, c, memory_order_release);
	c = NULL;
	if ((r = malloc(sizeof(*r)))) {
		r->cfg = (struct rc_config *)old;
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
	const struct rc_config *c = bk_cfg();
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
		/* A certificate reload gave this thread OpenSSL state (its DRBG,
		 * error queue) that is freed only at thread exit; main may exit
		 * first once the server stops, so free it now. */
		OPENSSL_thread_stop();
		bk_auth_stop();
		rc_server_stop(bk.srv);
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

static void core_options(const struct rc_config *c, struct rc_options *o)
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
}

int main(int argc, char **argv)
{
	struct rc_config *cfg = calloc(1, sizeof(*cfg));
	struct rc_options opt;
	sigset_t set;
	pthread_t sig_th;
	bool exit_now = false;
	struct timespec ts;
	int ret;

	if (!cfg)
		return 1;
	rc_config_defaults(cfg);
	saved_argc = argc;
	saved_argv = argv;
	ret = rc_config_from_args(cfg, argc, argv, &exit_now);
	if (ret < 0 || exit_now) {
		rc_config_free(cfg);
		free(cfg);
		return ret < 0 ? 2 : 0;
	}
	apply_runtime(cfg);
	if (bk_auth_init(cfg) < 0) {
		rc_config_free(cfg);
		free(cfg);
		return 2;
	}
	atomic_store(&bk.cfg, cfg);
	make_epoch();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	bk.started_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	bk_registry_init();
	core_options(cfg, &opt);
	bk.srv = rc_server_new(&(struct rc_server_config){
		.options = &opt,
		.threads = cfg->threads,
		.backlog = cfg->backlog,
		.on_upgrade = bk_on_upgrade,
		.on_http = bk_on_http,
	});
	if (!bk.srv)
		return 1;
	bk.nthreads = rc_server_threads(bk.srv);
	bk.workers = calloc(bk.nthreads, sizeof(*bk.workers));
	if (!bk.workers)
		return 1;
	for (unsigned i = 0; i < bk.nthreads; i++)
		bk.workers[i].idx = i;
	if (bk_auth_start(bk.nthreads) < 0)
		return 1;
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		ret = rc_server_listen(bk.srv, cfg->listen[i]);
		if (ret < 0) {
			fprintf(stderr, "ringcast: cannot listen on %s: %s\n", cfg->listen[i],
				ret == -EINVAL ? "not a HOST:PORT address" : strerror(-ret));
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
				"bad address, or the certificate/key did not load" : strerror(-ret));
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
	ret = rc_server_run(bk.srv);
	if (ret < 0) {
		fprintf(stderr, "ringcast: %s\n", strerror(-ret));
		return 1;
	}
	free_retired();
	rc_log(RC_LOG_INFO, "stopped");
	return 0;
}
