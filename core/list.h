/* Intrusive doubly linked list (in the style of libuv's queue.h): the links
 * live inside the listed objects, so adding and removing never allocate.
 * Used by the core and by embedders (the broker's subscriber lists). */
#ifndef RC_CORE_LIST_H
#define RC_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
