/* ringcast: the WebSocket pub/sub broadcast broker.
 *
 * main() loads the configuration, starts the server's loops and leaves
 * signals to one thread: SIGTERM/SIGINT drain (close 1001, flush, exit 0),
 * SIGHUP reloads what can change at run time. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"

static void apply_runtime(const struct rc_config *c)
{
	rc_log_set_level((enum rc_log_level)c->log_level);
}

/* SIGHUP: reload file and environment over the defaults; limits, history
 * and log level take effect for new decisions at once (listen addresses and
 * threads need a restart, and say so). */
static void reload(void)
{
	const struct rc_config *old = bk_cfg();
	struct rc_config *c = calloc(1, sizeof(*c));
	bool changed_static;

	if (!c)
		return;
	rc_config_defaults(c);
	if (old->config_file && rc_config_load_file(c, old->config_file) < 0) {
		rc_log(RC_LOG_ERROR, "reload: %s has errors; keeping the running configuration",
		       old->config_file);
		rc_config_free(c);
		free(c);
		return;
	}
	if (rc_config_load_env(c) < 0) {
		rc_config_free(c);
		free(c);
		return;
	}
	c->config_file = old->config_file ? strdup(old->config_file) : NULL;
	changed_static = c->threads != old->threads || c->nlisten != old->nlisten;
	/* Keep what only a restart can change. */
	for (unsigned i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	for (unsigned i = 0; i < old->nlisten; i++)
		c->listen[i] = strdup(old->listen[i]);
	c->nlisten = old->nlisten;
	c->threads = old->threads;
	apply_runtime(c);
	/* The old struct stays allocated: handlers on other threads may still
	 * read it; a few hundred bytes per SIGHUP. */
	atomic_store_explicit(&bk.cfg, c, memory_order_release);
	rc_log(RC_LOG_INFO, "reloaded%s%s: limits (connections, backpressure, topics per "
	       "connection, message and body size, JSON rate), slow-consumer policy, "
	       "history, log level%s", old->config_file ? " " : "",
	       old->config_file ? old->config_file : "",
	       changed_static ? "; listen addresses and threads need a restart" : "");
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
			continue;
		}
		rc_log(RC_LOG_INFO, "%s: draining connections", strsignal(sig));
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
	if (rc_config_from_args(cfg, argc, argv, &exit_now) < 0)
		return 2;
	if (exit_now)
		return 0;
	apply_runtime(cfg);
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
	rc_log(RC_LOG_INFO, "stopped");
	return 0;
}
