/* ringcast C client, setup part (see ringcast_client.h): broker URLs,
 * options and their defaults, initialising a client, the timer thread that
 * stands in for the timers core/rc.h does not have, and the accessors.  The
 * connection and protocol state machine is in ringcast_client.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/c/client_internal.h"

/* Defaults (see ringcast_client.h). */
void rc_pubsub_options_default(struct rc_pubsub_options *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = 10000;
	o->reconnect = true;
	o->backoff_min_ms = 100;
	o->backoff_max_ms = 10000;
	o->cmd_rate = 900;
	o->cmd_burst = 900;
	o->max_inflight = 512;
	o->deflate = true;
}

/* ---- URLs ----------------------------------------------------------------- */

/* Parses a broker URL (see client_internal.h). */
int rc__url_parse(const char *url, struct rc__url *u)
{
	const char *p, *end, *colon;
	unsigned long port = 80;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (!strncmp(url, "https://", 8))
		return -EPROTONOSUPPORT;
	if (!strncmp(url, "wss://", 6)) {
		p = url + 6;
		port = 443;
		u->tls = true;
	} else if (!strncmp(url, "ws://", 5))
		p = url + 5;
	else if (!strncmp(url, "http://", 7))
		p = url + 7;
	else
		return strstr(url, "://") ? -EPROTONOSUPPORT : -EINVAL;
	end = p + strcspn(p, "/?#");
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));
		if (!rb || rb == p + 1)
			return -EINVAL;
		hl = (size_t)(rb - p - 1);
		if (hl >= sizeof(u->host))
			return -EINVAL;
		memcpy(u->host, p + 1, hl);
		colon = rb[1] == ':' ? rb + 1 : (rb + 1 == end ? NULL : rb);
		if (colon == rb)
			return -EINVAL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		hl = (size_t)((colon ? colon : end) - p);
		if (hl == 0 || hl >= sizeof(u->host) || memchr(p, '@', hl))
			return -EINVAL;
		memcpy(u->host, p, hl);
	}
	if (colon) {
		char *e;
		if (colon + 1 == end)
			return -EINVAL;
		port = strtoul(colon + 1, &e, 10);
		if (e != end || port == 0 || port > 65535)
			return -EINVAL;
	}
	u->port = (uint16_t)port;
	if (*end == '#' || strlen(end) + 4 > sizeof(u->path))
		return -EINVAL;
	if (*end == 0 || !strcmp(end, "/"))
		strcpy(u->path, "/ws");
	else if (*end == '?')
		snprintf(u->path, sizeof(u->path), "/ws%s", end);
	else
		snprintf(u->path, sizeof(u->path), "%s", end);
	snprintf(u->ws, sizeof(u->ws), strchr(u->host, ':') ? "%s://[%s]:%u%s" : "%s://%s:%u%s",
		 u->tls ? "wss" : "ws", u->host, u->port, u->path);
	return 0;
}

/* ---- Setup and the timer thread --------------------------------------------- */

/* Records the last failure (see client_internal.h). */
void rc__ps_set_err(struct rc_pubsub *ps, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&ps->mu);
	va_start(ap, fmt);
	vsnprintf(ps->err, sizeof(ps->err), fmt, ap);
	va_end(ap);
	ps->err_no = err;
	pthread_mutex_unlock(&ps->mu);
}

/* Initialises a client (see client_internal.h). */
int rc__ps_init(struct rc_pubsub *ps, const char *url, const struct rc_pubsub_options *o)
{
	pthread_condattr_t ca;
	int ret;

	memset(ps, 0, sizeof(*ps));
	ret = rc__url_parse(url, &ps->url);
	if (ret < 0)
		return ret;
	if (o)
		ps->o = *o;
	else
		rc_pubsub_options_default(&ps->o);
	if (ps->o.socks5) {
		if (strlen(ps->o.socks5) >= sizeof(ps->socks5))
			return -EINVAL;
		strcpy(ps->socks5, ps->o.socks5);
		ps->o.socks5 = ps->socks5;
	}
	if (ps->o.max_inflight == 0)
		ps->o.max_inflight = 1;
	if (ps->o.cmd_burst == 0)
		ps->o.cmd_burst = 1;
	if (ps->o.backoff_min_ms == 0)
		ps->o.backoff_min_ms = 1;
	if (ps->o.backoff_max_ms < ps->o.backoff_min_ms)
		ps->o.backoff_max_ms = ps->o.backoff_min_ms;
	rc_options_default(&ps->copt);
	ps->copt.deflate.enabled = ps->o.deflate;
	ps->cco.options = &ps->copt;
	ps->cco.socks5 = ps->o.socks5;
	ps->cco.connect_timeout_ms = ps->o.connect_timeout_ms;
	if (ps->o.ca_file) {
		if (strlen(ps->o.ca_file) >= sizeof(ps->ca_file))
			return -EINVAL;
		strcpy(ps->ca_file, ps->o.ca_file);
		ps->o.ca_file = ps->ca_file;
	}
	ps->cco.ca_file = ps->o.ca_file;
	if (ps->o.token) {
		size_t n = strlen(ps->o.token);

		if (n > 8192 || strpbrk(ps->o.token, "\r\n") ||
		    !(ps->auth_header = malloc(n + 32)))
			return n > 8192 || strpbrk(ps->o.token, "\r\n") ? -EINVAL : -ENOMEM;
		snprintf(ps->auth_header, n + 32, "Authorization: Bearer %s\r\n", ps->o.token);
		ps->o.token = NULL; /* the caller's string need not outlive this */
		ps->cco.headers = ps->auth_header;
	}
	ps->cco.insecure = ps->o.insecure;
	ps->tokens = ps->o.cmd_burst;
	ps->tokens_ms = rc_now_ms();
	ps->next_id = 1;
	pthread_mutex_init(&ps->mu, NULL);
	pthread_mutex_init(&ps->tmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ps->tcv, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

static void *timer_main(void *arg)
{
	struct rc_pubsub *ps = arg;

	pthread_mutex_lock(&ps->tmu);
	while (!ps->t_quit) {
		uint64_t now = rc_now_ms();
		if (ps->t_deadline == 0 || ps->t_posted) {
			pthread_cond_wait(&ps->tcv, &ps->tmu);
		} else if (now >= ps->t_deadline) {
			ps->t_deadline = 0;
			ps->t_posted = true;
			if (rc_loop_post(ps->loop, rc__ps_on_timer, ps) < 0) {
				ps->t_posted = false;
				ps->t_deadline = now + 10;
			}
		} else {
			struct timespec ts = { .tv_sec = (time_t)(ps->t_deadline / 1000),
					       .tv_nsec = (long)(ps->t_deadline % 1000) * 1000000 };
			pthread_cond_timedwait(&ps->tcv, &ps->tmu, &ts);
		}
	}
	pthread_mutex_unlock(&ps->tmu);
	return NULL;
}

/* Starts the timer thread (see client_internal.h). */
int rc__ps_start_timer(struct rc_pubsub *ps)
{
	int ret = pthread_create(&ps->timer, NULL, timer_main, ps);

	if (ret)
		return -ret;
	ps->t_started = true;
	return 0;
}

/* Stops the timer thread (see client_internal.h). */
void rc__ps_stop_timer(struct rc_pubsub *ps)
{
	if (!ps->t_started)
		return;
	pthread_mutex_lock(&ps->tmu);
	ps->t_quit = true;
	pthread_cond_signal(&ps->tcv);
	pthread_mutex_unlock(&ps->tmu);
	pthread_join(ps->timer, NULL);
	ps->t_started = false;
}

/* Arms the timer (see client_internal.h). */
void rc__ps_timer_arm(struct rc_pubsub *ps, uint64_t ms)
{
	uint64_t at = rc_now_ms() + ms;

	pthread_mutex_lock(&ps->tmu);
	if (ps->t_deadline == 0 || at < ps->t_deadline) {
		ps->t_deadline = at;
		pthread_cond_signal(&ps->tcv);
	}
	pthread_mutex_unlock(&ps->tmu);
}

/* Event API constructor (see ringcast_client.h). */
struct rc_pubsub *rc_pubsub_new(struct rc_loop *l, const char *url,
				const struct rc_pubsub_options *o)
{
	struct rc_pubsub *ps = malloc(sizeof(*ps));
	int ret;

	if (!ps) {
		errno = ENOMEM;
		return NULL;
	}
	ret = rc__ps_init(ps, url, o);
	if (ret < 0)
		goto err_free;
	ps->loop = l;
	ret = rc__ps_start_timer(ps);
	if (ret < 0)
		goto err_destroy;
	return ps;
err_destroy:
	rc__ps_destroy(ps);
err_free:
	free(ps);
	errno = -ret;
	return NULL;
}

/* ---- Accessors ------------------------------------------------------------------- */

/* Unanswered commands (see ringcast_client.h). */
size_t rc_pubsub_pending(const struct rc_pubsub *ps)
{
	return ps->nqueued + ps->ninflight;
}

/* Connected (see ringcast_client.h). */
bool rc_pubsub_is_open(const struct rc_pubsub *ps)
{
	return ps->state == PS_OPEN;
}

/* Epoch (see ringcast_client.h). */
const char *rc_pubsub_epoch(const struct rc_pubsub *ps)
{
	return ps->epoch;
}

/* Last failure (see ringcast_client.h). */
const char *rc_pubsub_error(const struct rc_pubsub *ps)
{
	return ps->err;
}

/* User pointer (see ringcast_client.h). */
void *rc_pubsub_user(const struct rc_pubsub *ps)
{
	return ps->o.user;
}
