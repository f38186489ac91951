/* Connections per client IP, for max_connections_per_ip: a hash table of
 * counters, entries removed when they drop to zero so memory follows the
 * number of distinct connected addresses. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
bool bk_ip_acquire(const uint8_t ip[16], uint64_t limit)
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

/* Uncounts a connection counted by bk_ip_acquire. */
void bk_ip_release(const uint8_t ip[16])
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
