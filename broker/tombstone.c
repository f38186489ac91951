/* Tombstones: the last seq of topics that left the registry.
 *
 * A topic leaves the registry when it has neither subscribers nor history;
 * if it comes back within the same epoch its numbering must go on where it
 * stopped, or a client resuming with `from` would meet old numbers reused
 * for new messages and lose them silently.  So a removed topic leaves its
 * name and last seq here, and a topic created again takes them back.
 *
 * The table is bounded (max_topics entries, the oldest forgotten first).  A
 * forgotten topic's last seq raises a floor: every topic created without a
 * tombstone starts numbering there, so no topic's seq ever goes back, and a
 * resume from at or below that start gets a `reset` (the numbers before it
 * are unknown) instead of a false promise.
 *
 * Every function here is called with the registry lock held. */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

struct tomb {
	struct tomb *hnext;
	struct rc_list age;          /* oldest first */
	uint32_t hash;
	bool base_exact;             /* what the topic knew of its start */
	uint64_t seq, base;
	size_t name_len;
	char name[];
};

static struct {
	struct tomb **buckets;
	size_t nbuckets, count;
	struct rc_list age;
	uint64_t floor;              /* highest seq of a forgotten topic */
} tb;

static struct tomb **find(const char *name, size_t len, uint32_t h)
{
	struct tomb **pp;

	if (!tb.buckets)
		return NULL;
	for (pp = &tb.buckets[h & (tb.nbuckets - 1)]; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && (*pp)->name_len == len && !memcmp((*pp)->name, name, len))
			return pp;
	return NULL;
}

static void unlink_tomb(struct tomb **pp)
{
	struct tomb *e = *pp;

	*pp = e->hnext;
	rc_list_del(&e->age);
	tb.count--;
	free(e);
}

static bool table_ready(void)
{
	if (tb.buckets)
		return true;
	tb.nbuckets = 1024;
	tb.buckets = calloc(tb.nbuckets, sizeof(*tb.buckets));
	rc_list_init(&tb.age);
	return tb.buckets != NULL;
}

static void grow(void)
{
	size_t n = tb.nbuckets * 2;
	struct tomb **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < tb.nbuckets; i++) {
		for (struct tomb *e = tb.buckets[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(tb.buckets);
	tb.buckets = nb;
	tb.nbuckets = n;
}

static void forget_oldest(void)
{
	struct tomb *e = rc_container_of(tb.age.next, struct tomb, age);

	if (e->seq > tb.floor)
		tb.floor = e->seq;
	unlink_tomb(find(e->name, e->name_len, e->hash));
}

/* Where a topic being created starts numbering: its tombstone's seq (taken
 * out of the table, with the start its earlier life had), or the floor
 * (exact only while nothing was ever forgotten). */
uint64_t bk_tomb_take(const char *name, size_t len, uint32_t h, uint64_t *base, bool *exact)
{
	struct tomb **pp = find(name, len, h);
	uint64_t seq;

	if (!pp) {
		*exact = tb.floor == 0;
		*base = tb.floor;
		return tb.floor;
	}
	seq = (*pp)->seq;
	*base = (*pp)->base;
	*exact = (*pp)->base_exact;
	unlink_tomb(pp);
	return seq;
}

/* Records a removed topic's last seq.  Out of memory (or a limit of 0)
 * forgets it at once, which only raises the floor. */
void bk_tomb_put(const char *name, size_t len, uint32_t h, uint64_t seq, uint64_t base,
		 bool base_exact, uint64_t limit)
{
	struct tomb *e;

	if (seq == 0 || (seq == tb.floor && !base_exact && base == tb.floor))
		return; /* the floor alone says as much */
	if (!limit || !table_ready() || !(e = malloc(sizeof(*e) + len))) {
		if (seq > tb.floor)
			tb.floor = seq;
		return;
	}
	while (tb.count >= limit)
		forget_oldest();
	if (tb.count >= tb.nbuckets * 2)
		grow();
	e->hash = h;
	e->seq = seq;
	e->base = base;
	e->base_exact = base_exact;
	e->name_len = len;
	memcpy(e->name, name, len);
	e->hnext = tb.buckets[h & (tb.nbuckets - 1)];
	tb.buckets[h & (tb.nbuckets - 1)] = e;
	rc_list_add_tail(&tb.age, &e->age);
	tb.count++;
}
