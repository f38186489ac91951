/* The access policy's life: loading at start with the secure-default rule,
 * the swap on SIGHUP, and a one-second clock that visits every loop's
 * connections (on that loop's thread) to close expired tokens (4001) and
 * silent unauthenticated ones (4002) and to drop what a reload revoked. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth_internal.h"

struct wstate {
	struct rc_list conns;    /* bk_cauth.link; touched only by its loop */
	atomic_bool posted;      /* a sweep is queued to that loop */
};

static struct wstate *ws;
static unsigned nws;
static atomic_uint gen = 1;  /* bumped by every reload */

/* The clock runs only while a policy exists (started at start or by the
 * reload that brings the first one) and is stopped and joined before the
 * loops are freed: a post to a freed loop would be a use after free. */
static pthread_t clock_th;
static bool clock_running;   /* touched by main and the signal thread, in turn */
static pthread_mutex_t clock_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t clock_cv;
static bool clock_quit;

/* Policies replaced by SIGHUP: connections may still be reading one, so
 * they live until exit (one per reload, like the configuration). */
static struct bk_auth *retired;

/* ---- start and the secure default ------------------------------------------ */

/* Loopback: 127.0.0.0/8, [::1] and localhost.  Everything else (0.0.0.0,
 * [::], a name, a public address) can be reached from elsewhere. */
static bool loopback(const char *hostport)
{
	return !strncmp(hostport, "127.", 4) || !strncmp(hostport, "[::1]:", 6) ||
	       !strncmp(hostport, "localhost:", 10);
}

static int check_exposure(const struct bk_config *cfg, bool none)
{
	const char *open = NULL;

	for (unsigned i = 0; i < cfg->nlisten && !open; i++)
		if (!loopback(cfg->listen[i]))
			open = cfg->listen[i];
	for (unsigned i = 0; i < cfg->ntls_listen && !open; i++)
		if (!loopback(cfg->tls_listen[i]))
			open = cfg->tls_listen[i];
	if (!open)
		return 0;
	if (none) {
		rc_log(RC_LOG_WARN, "auth = none: %s is reachable beyond this host and anyone "
		       "who reaches it may subscribe, publish and read the admin endpoints", open);
		return 0;
	}
	fprintf(stderr, "ringcast: %s is not a loopback address and no access control is "
		"configured: set auth = FILE (an access file, see deploy/access.ini), or "
		"auth = none to run open on purpose\n", open);
	return -EINVAL;
}

/* Loads the policy and applies the secure default (see auth.h). */
int bk_auth_init(const struct bk_config *cfg)
{
	bool none = bk_auth_is_none(cfg->auth);
	struct bk_auth *a = NULL;

	if (cfg->auth && !none) {
		if (!(a = bk_auth_load(cfg->auth)))
			return -EINVAL;
		rc_log(RC_LOG_INFO, "auth: %s: %u token keys, %u API keys, %u topic rules, "
		       "%u allowed origins%s", cfg->auth, a->nkeys, a->napi_keys, a->nrules,
		       a->norigins, a->admin_key ? ", admin key" : "");
	}
	if (check_exposure(cfg, none) < 0) {
		bk_auth_free(a);
		return -EINVAL;
	}
	atomic_store(&bk__auth_cur, a);
	return 0;
}

/* ---- per-loop lists and the sweep ------------------------------------------ */

void bk__auth_track(struct bk_cauth *ca)
{
	ca->gen = atomic_load(&gen);
	if (ws)
		rc_list_add_tail(&ws[bk_worker()->idx].conns, &ca->link);
	else
		rc_list_init(&ca->link);
}

static void err_revoked(struct bk_client *cl, const char *topic, size_t len)
{
	char reason[RC_TOPIC_MAX + 64], buf[RC_TOPIC_MAX * 6 + 160];
	ssize_t n;

	snprintf(reason, sizeof(reason), "subscription to %.*s revoked", (int)len, topic);
	n = rc_json_write_err(buf, sizeof(buf), (struct rc_span){ 0 }, "forbidden", reason);
	bk_stat_add(BK_JSON_ERRORS, 1);
	if (n > 0)
		bk_send_json(cl, buf, (size_t)n);
}

/* Drops what a no longer allows (see auth_internal.h). */
void bk__auth_recheck(const struct bk_auth *a, struct bk_client *cl)
{
	struct bk_cauth *ca = cl->auth;
	struct rc_list *it;

	if (cl->closing)
		return;
	if ((cl->mode == BK_MODE_SUB &&
	     !bk__auth_allows(a, ca, BK_SUBSCRIBE, cl->topic, cl->topic_len)) ||
	    (cl->mode == BK_MODE_PUB &&
	     !bk__auth_allows(a, ca, BK_PUBLISH, cl->topic, cl->topic_len))) {
		cl->closing = true;
		rc_conn_close(cl->conn, RC_CLOSE_POLICY, "permission revoked", 18);
		return;
	}
	if (cl->mode == BK_MODE_SSE) {
		/* An event stream cannot drop one topic: it ends, and the
		 * browser's reconnect meets the new rules (403). */
		for (it = cl->subs.next; it != &cl->subs; it = it->next) {
			struct bk_sub *s = rc_container_of(it, struct bk_sub, clink);
			if (!bk__auth_allows(a, ca, BK_SUBSCRIBE, s->topic->name, s->topic->name_len)) {
				cl->closing = true;
				rc_conn_close(cl->conn, RC_CLOSE_POLICY, NULL, 0);
				return;
			}
		}
		return;
	}
	if (cl->mode != BK_MODE_JSON)
		return;
restart:
	for (it = cl->subs.next; it != &cl->subs; it = it->next) {
		struct bk_sub *s = rc_container_of(it, struct bk_sub, clink);
		char name[RC_TOPIC_MAX + 1];
		size_t len;
		const char *sn = bk_sub_name(s, &len);

		if (bk__auth_allows(a, ca, BK_SUBSCRIBE, sn, len))
			continue;
		memcpy(name, sn, len); /* the sub and topic may go */
		bk_unsubscribe(cl, name, len);
		err_revoked(cl, name, len);
		goto restart;
	}
}

static void sweep_one(const struct bk_auth *a, struct bk_cauth *ca, unsigned g,
		      int64_t now_s, uint64_t now_ms)
{
	struct bk_client *cl = ca->cl;

	if (cl->closing)
		return;
	if (ca->state == BK_ID_TOKEN && ca->has_exp && a && now_s >= ca->exp + a->leeway_s) {
		cl->closing = true;
		rc_conn_close(cl->conn, 4001, "token expired", 13);
		return;
	}
	/* Still unauthenticated at auth_timeout (silent, or busy with
	 * commands no rule lets anonymous clients use). */
	if (ca->deadline_ms && now_ms >= ca->deadline_ms) {
		if (a && !a->anonymous_somewhere) {
			cl->closing = true;
			rc_conn_close(cl->conn, 4002, "authentication timeout", 22);
			return;
		}
		ca->deadline_ms = 0;
		if (ca->state == BK_ID_PENDING)
			ca->state = BK_ID_ANONYMOUS;
	}
	if (ca->gen != g) {
		ca->gen = g;
		bk__auth_recheck(a, cl);
	}
}

static void sweep(void *arg)
{
	struct wstate *w = arg;
	const struct bk_auth *a = bk__auth();
	unsigned g = atomic_load(&gen);
	int64_t now_s = bk__auth_now_s();
	uint64_t now_ms = rc_now_ms();

	atomic_store(&w->posted, false);
	for (struct rc_list *it = w->conns.next; it != &w->conns; it = it->next)
		sweep_one(a, rc_container_of(it, struct bk_cauth, link), g, now_s, now_ms);
}

static void *clock_thread(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&clock_mu);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	while (!clock_quit) {
		ts.tv_sec++;
		if (pthread_cond_timedwait(&clock_cv, &clock_mu, &ts) != ETIMEDOUT)
			continue;
		for (unsigned i = 0; i < nws && !clock_quit; i++) {
			struct rc_loop *l = rc_server_loop(bk.srv, i);

			if (!l || atomic_exchange(&ws[i].posted, true))
				continue; /* the last one has not run yet */
			if (rc_loop_post(l, sweep, &ws[i]) < 0)
				atomic_store(&ws[i].posted, false);
		}
	}
	pthread_mutex_unlock(&clock_mu);
	return NULL;
}

static int start_clock(void)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	if (clock_running || !ws)
		return 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&clock_cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals stay with the signal thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&clock_th, NULL, clock_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	clock_running = true;
	return 0;
}

/* Sets up the per-loop lists and, with a policy, the clock (see auth.h). */
int bk_auth_start(unsigned nthreads)
{
	ws = calloc(nthreads, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	for (unsigned i = 0; i < nthreads; i++)
		rc_list_init(&ws[i].conns);
	nws = nthreads;
	return bk__auth() ? start_clock() : 0;
}

/* Stops and joins the clock (see auth.h). */
void bk_auth_stop(void)
{
	if (!clock_running)
		return;
	pthread_mutex_lock(&clock_mu);
	clock_quit = true;
	pthread_cond_signal(&clock_cv);
	pthread_mutex_unlock(&clock_mu);
	pthread_join(clock_th, NULL);
	clock_running = false;
}

/* SIGHUP (see auth.h). */
void bk_auth_reload(const struct bk_config *cfg)
{
	struct bk_auth *old = (struct bk_auth *)bk__auth(), *a = NULL;
	bool none = bk_auth_is_none(cfg->auth);

	if (cfg->auth && !none && !(a = bk_auth_load(cfg->auth))) {
		rc_log(RC_LOG_ERROR, "reload: %s has errors; keeping the running access policy",
		       cfg->auth);
		return;
	}
	if (!a && old && !none) {
		/* Dropping the file would open a public listener: only an
		 * explicit auth = none does that. */
		rc_log(RC_LOG_ERROR, "reload: auth is no longer set; keeping the running access "
		       "policy (write auth = none to turn access control off)");
		return;
	}
	atomic_store_explicit(&bk__auth_cur, a, memory_order_release);
	if (a && start_clock() < 0)
		rc_log(RC_LOG_ERROR, "reload: no thread for the auth clock: tokens will not "
		       "expire on open connections until a restart");
	if (old) {
		old->retired_next = retired;
		retired = old;
	}
	atomic_fetch_add(&gen, 1);
	rc_log(RC_LOG_INFO, "reload: access policy %s%s", a ? "re-read from " : "off",
	       a ? cfg->auth : "");
}
