/* Connection limits: every socket the core accepts (WebSocket, plain HTTP
 * keep-alive, or one that never sends a byte) counts against
 * max_connections, and against max_connections_per_ip in a hash table of
 * counters per client address, entries removed when they drop to zero so
 * memory follows the number of distinct connected addresses.  Addresses are
 * counted whatever the limit, so a limit set by a reload (SIGHUP) sees the
 * connections that were there before it.
 * Also per address: topic creations (topic_create_rate, a token bucket
 * each), forgotten once full again. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"

#define IP_BUCKETS 4096

struct ip_count {
	struct ip_count *next;
	uint8_t ip[16];
	uint64_t n;
};

static struct ip_count *buckets[IP_BUCKETS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct ip_count **slot(const uint8_t ip[16])
{
	uint32_t h = 2166136261u;
	struct ip_count **pp;

	for (int i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 16777619u;
	for (pp = &buckets[h % IP_BUCKETS]; *pp; pp = &(*pp)->next)
		if (memcmp((*pp)->ip, ip, 16) == 0)
			break;
	return pp;
}

/* Counts one more connection from ip unless that would pass limit.
 * Returns true if counted. */
static bool ip_acquire(const uint8_t ip[16], uint64_t limit)
{
	struct ip_count **pp, *e;
	bool ok = false;

	pthread_mutex_lock(&lock);
	pp = slot(ip);
	e = *pp;
	if (!e && (e = calloc(1, sizeof(*e)))) {
		memcpy(e->ip, ip, 16);
		*pp = e;
	}
	if (e && e->n < limit) {
		e->n++;
		ok = true;
	}
	if (e && e->n == 0) { /* limit 0 refused a new entry: drop it */
		*pp = e->next;
		free(e);
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

/* Uncounts a connection counted by ip_acquire. */
static void ip_release(const uint8_t ip[16])
{
	struct ip_count **pp, *e;

	pthread_mutex_lock(&lock);
	pp = slot(ip);
	if ((e = *pp) && --e->n == 0) {
		*pp = e->next;
		free(e);
	}
	pthread_mutex_unlock(&lock);
}

/* Admits or refuses a socket just accepted (rc_server_config.on_connect):
 * 503 past max_connections, 429 past max_connections_per_ip. */
int bk_on_connect(struct rc_conn *c)
{
	const struct bk_config *cfg = bk_cfg();
	uint64_t per_ip = cfg->max_connections_per_ip ? cfg->max_connections_per_ip : UINT64_MAX;
	uint8_t ip[16];

	if (atomic_fetch_add(&bk.sockets, 1) >= cfg->max_connections && cfg->max_connections) {
		atomic_fetch_sub(&bk.sockets, 1);
		bk_stat_add(BK_REFUSED, 1);
		return 503;
	}
	if (rc_conn_peer_ip(c, ip) && !ip_acquire(ip, per_ip)) {
		atomic_fetch_sub(&bk.sockets, 1);
		bk_stat_add(BK_REFUSED, 1);
		return 429;
	}
	return 0;
}

/* Uncounts a socket bk_on_connect admitted. */
void bk_on_disconnect(struct rc_conn *c)
{
	uint8_t ip[16];

	atomic_fetch_sub(&bk.sockets, 1);
	if (rc_conn_peer_ip(c, ip))
		ip_release(ip);
}

/* ---- Topic creation rate ------------------------------------------------------ */

struct ip_bucket {
	struct ip_bucket *next;
	uint8_t ip[16];
	double tokens;
	uint64_t at_ms;
};

static struct ip_bucket *cbuckets[IP_BUCKETS];

static uint32_t ip_hash(const uint8_t ip[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 16777619u;
	return h % IP_BUCKETS;
}

/* Refills b to now; true if it is full (the address is idle). */
static bool refill(struct ip_bucket *b, const struct bk_config *cfg, uint64_t now)
{
	b->tokens += (double)(now - b->at_ms) * (double)cfg->topic_create_rate / 1000.0;
	b->at_ms = now;
	if (b->tokens >= (double)cfg->topic_create_burst) {
		b->tokens = (double)cfg->topic_create_burst;
		return true;
	}
	return false;
}

/* Takes one creation token for ip (see broker.h).  Out of memory allows:
 * the limit is a fairness measure, max_topics stays the hard bound. */
bool bk_ip_may_create(const uint8_t ip[16])
{
	const struct bk_config *cfg = bk_cfg();
	struct ip_bucket **pp, *b;
	bool ok = true;

	if (!cfg->topic_create_rate)
		return true;
	pthread_mutex_lock(&lock);
	for (pp = &cbuckets[ip_hash(ip)]; *pp; pp = &(*pp)->next)
		if (memcmp((*pp)->ip, ip, 16) == 0)
			break;
	if (!(b = *pp) && (b = calloc(1, sizeof(*b)))) {
		memcpy(b->ip, ip, 16);
		b->tokens = (double)cfg->topic_create_burst;
		b->at_ms = rc_now_ms();
		*pp = b;
	}
	if (b) {
		refill(b, cfg, rc_now_ms());
		ok = b->tokens >= 1.0;
		if (ok)
			b->tokens -= 1.0;
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

/* Drops the buckets that are full again (see broker.h). */
void bk_ip_sweep(void)
{
	const struct bk_config *cfg = bk_cfg();
	uint64_t now = rc_now_ms();

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < IP_BUCKETS; i++) {
		for (struct ip_bucket **pp = &cbuckets[i], *b; (b = *pp);) {
			if (refill(b, cfg, now)) {
				*pp = b->next;
				free(b);
			} else {
				pp = &b->next;
			}
		}
	}
	pthread_mutex_unlock(&lock);
}
