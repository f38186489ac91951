/* Presence and join/leave (namespaces with presence = on, join_leave = on).
 *
 * A subscription to a topic whose namespace has presence on carries a
 * bk_presence record (connection id, the token's user, the client's info),
 * made on the subscriber's thread before the topic lock and linked into
 * the topic's presence list under it.  A query copies at most one page of
 * records under the topic lock and formats outside it: a topic with
 * 100,000 subscribers costs one page (at most 1,000 rows over HTTP, 100 in
 * JSON mode, with "truncated"), never the whole list.  Skipping to an
 * offset walks the list under the lock (O(offset), as /subsz does).
 *
 * join/leave events go through the topic's own fanout (bk_topic_event):
 * in order with its messages, to its exact JSON subscribers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth_internal.h"
#include "broker/broker.h"
#include "proto/utf8.h"

#define USER_MAX 128      /* bytes of a user id kept (longer ones are cut at a character) */
#define JSON_ROWS 100     /* rows in a JSON-mode answer */

struct bk_presence {
	struct rc_list link;  /* rc_topic.presence, under the topic lock */
	uint64_t conn;
	uint8_t user_len, info_len;
	char user[USER_MAX];
	char info[RC_INFO_MAX];
};

/* n bytes of p, shortened to a whole UTF-8 character within cap. */
static uint8_t cut(char *out, const char *p, size_t n, size_t cap)
{
	if (!n)
		return 0; /* p may be NULL */
	if (n > cap) {
		n = cap;
		while (n && ((uint8_t)p[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, p, n);
	return (uint8_t)n;
}

static void fill(struct bk_presence *p, const struct bk_client *cl)
{
	const struct bk_cauth *ca = cl->auth;

	p->conn = cl->id;
	p->user_len = 0;
	if (ca && ca->state == BK_ID_TOKEN && ca->grants)
		p->user_len = cut(p->user, (const char *)ca->grants->data, ca->grants->sub_len,
				  USER_MAX);
	p->info_len = cut(p->info, cl->info, cl->info_len, RC_INFO_MAX);
}

/* See broker.h. */
struct bk_presence *bk_presence_new(const struct bk_client *cl)
{
	struct bk_presence *p = malloc(sizeof(*p));

	if (p) {
		rc_list_init(&p->link);
		fill(p, cl);
	}
	return p;
}

/* See broker.h. */
void bk_presence_link(struct bk_topic *t, struct bk_presence *p)
{
	rc_list_add_tail(&t->presence, &p->link);
	t->npresence++;
}

/* See broker.h. */
void bk_presence_unlink(struct bk_topic *t, struct bk_presence *p)
{
	rc_list_del(&p->link);
	t->npresence--;
}

void bk_presence_free(struct bk_presence *p)
{
	free(p);
}

/* ---- Formatting ------------------------------------------------------------ */

/* ,"conn":N[,"user":"…"][,"info":"…"] (no braces). */
static void client_fields(struct bk_text *out, const struct bk_presence *p)
{
	char s[RC_INFO_MAX * 6 + 3];
	ssize_t n;

	bk_tprintf(out, "\"conn\":%llu", (unsigned long long)p->conn);
	if (p->user_len && (n = rc_json_write_string(s, sizeof(s), p->user, p->user_len)) > 0)
		bk_tprintf(out, ",\"user\":%.*s", (int)n, s);
	if (p->info_len && (n = rc_json_write_string(s, sizeof(s), p->info, p->info_len)) > 0)
		bk_tprintf(out, ",\"info\":%.*s", (int)n, s);
}

/* See broker.h. */
void bk_presence_event(struct bk_topic *t, const struct bk_client *cl, bool join)
{
	char name[RC_TOPIC_MAX * 6 + 3];
	struct bk_text out = { 0 };
	struct bk_presence p;
	ssize_t n = rc_json_write_string(name, sizeof(name), t->name, t->name_len);

	if (n < 0)
		return;
	fill(&p, cl);
	bk_tprintf(&out, "{\"op\":\"%s\",\"topic\":%.*s,", join ? "join" : "leave", (int)n, name);
	client_fields(&out, &p);
	bk_tprintf(&out, "}");
	if (!out.oom)
		bk_topic_event(t, out.p, out.len);
	free(out.p);
}

/* ---- Queries ------------------------------------------------------------------- */

struct page {
	size_t total, n;
	struct bk_presence *rows;
};

/* Copies up to max records after the first skip (topic lock held only
 * here).  -ENOMEM when the rows cannot be allocated. */
static int collect(struct bk_topic *t, size_t skip, size_t max, struct page *pg)
{
	if (!(pg->rows = malloc((max ? max : 1) * sizeof(*pg->rows))))
		return -ENOMEM;
	pg->n = 0;
	pthread_mutex_lock(&t->lock);
	pg->total = t->npresence;
	for (struct rc_list *it = t->presence.next; it != &t->presence && pg->n < max;
	     it = it->next) {
		if (skip) {
			skip--;
			continue;
		}
		pg->rows[pg->n++] = *rc_container_of(it, struct bk_presence, link);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void page_json(struct bk_text *out, const struct page *pg, size_t offset)
{
	bk_tprintf(out, "\"total\":%zu,\"clients\":[", pg->total);
	for (size_t i = 0; i < pg->n; i++) {
		bk_tprintf(out, "%s{", i ? "," : "");
		client_fields(out, &pg->rows[i]);
		bk_tprintf(out, "}");
	}
	bk_tprintf(out, "],\"truncated\":%s", offset + pg->n < pg->total ? "true" : "false");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t user_hash(const struct bk_presence *p)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < p->user_len; i++)
		h = (h ^ (uint8_t)p->user[i]) * 1099511628211ull;
	return h;
}

/* Counts clients and distinct users (by a hash of the user id: two users
 * colliding count once).  The hashes are copied under the lock (8 bytes a
 * subscriber), sorted outside it.  -ENOMEM if they cannot be held. */
static int count(struct bk_topic *t, size_t *clients, size_t *users)
{
	size_t cap = t->npresence + 16, n = 0; /* a racy read: the lock decides */
	uint64_t *h = malloc(cap * sizeof(*h));

	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&t->lock);
	*clients = t->npresence;
	for (struct rc_list *it = t->presence.next; it != &t->presence && n < cap; it = it->next) {
		const struct bk_presence *p = rc_container_of(it, struct bk_presence, link);
		if (p->user_len)
			h[n++] = user_hash(p);
	}
	pthread_mutex_unlock(&t->lock);
	qsort(h, n, sizeof(*h), cmp_u64);
	*users = 0;
	for (size_t i = 0; i < n; i++)
		*users += !i || h[i] != h[i - 1];
	free(h);
	return 0;
}

/* The topic if presence is on for it, referenced; NULL with *why. */
static struct bk_topic *presence_topic(const char *name, size_t len, const char **why)
{
	const struct bk_config *cfg = bk_cfg();
	bool unknown;
	const struct bk_ns *ns = bk_ns_of(cfg, name, len, &unknown);
	struct bk_topic *t;

	if (unknown || !ns->presence) {
		*why = "presence is off for this topic's namespace";
		return NULL;
	}
	/* A topic nobody subscribes to and with no history is not in the
	 * registry: its presence is empty. */
	t = bk_topic_get(name, len, false, NULL);
	*why = NULL;
	return t;
}

/* See broker.h. */
void bk_presence_command(struct bk_client *cl, const struct rc_cmd *cmd, bool stats)
{
	char name[RC_TOPIC_MAX * 6 + 3];
	struct bk_text out = { 0 };
	struct page pg = { 0 };
	const char *why;
	struct bk_topic *t = presence_topic(cmd->topic, cmd->topic_len, &why);
	ssize_t n = rc_json_write_string(name, sizeof(name), cmd->topic, cmd->topic_len);
	size_t clients = 0, users = 0;
	int err = 0;

	if (why) {
		bk_send_err(cl, cmd, "presence_off", why);
		return;
	}
	if (t)
		err = stats ? count(t, &clients, &users) : collect(t, 0, JSON_ROWS, &pg);
	if (t)
		bk_topic_put(t);
	if (err < 0 || n < 0) {
		bk_send_err(cl, cmd, "internal", "out of memory");
		return;
	}
	bk_tprintf(&out, "{\"op\":\"%s\",", stats ? "presence_stats" : "presence");
	if (cmd->has_id)
		bk_tprintf(&out, "\"id\":%.*s,", (int)cmd->id.len, cmd->id.p);
	bk_tprintf(&out, "\"topic\":%.*s,", (int)n, name);
	if (stats)
		bk_tprintf(&out, "\"clients\":%zu,\"users\":%zu}", clients, users);
	else
		page_json(&out, &pg, 0);
	if (!stats)
		bk_tprintf(&out, "}");
	free(pg.rows);
	if (out.oom)
		bk_send_err(cl, cmd, "internal", "out of memory");
	else
		bk_send_json(cl, out.p, out.len);
	free(out.p);
}

/* See broker.h. */
void bk_presence_http(struct bk_http *h, struct rc_span seg)
{
	char topic[RC_TOPIC_MAX + 1], name[RC_TOPIC_MAX * 6 + 3];
	ssize_t tl = bk_topic_from_path(seg, topic), n;
	struct bk_text out = { 0 };
	struct page pg = { 0 };
	size_t offset, limit;
	struct bk_topic *t;
	const char *why;

	if (tl < 0) {
		bk_http_error(h, 400, "invalid topic");
		return;
	}
	if (!bk_page_args(h, &offset, &limit))
		return;
	t = presence_topic(topic, (size_t)tl, &why);
	if (why) {
		bk_http_error(h, 404, why);
		return;
	}
	if (t && collect(t, offset, limit, &pg) < 0) {
		bk_topic_put(t);
		bk_http_error(h, 503, "out of memory");
		return;
	}
	if (t)
		bk_topic_put(t);
	n = rc_json_write_string(name, sizeof(name), topic, (size_t)tl);
	bk_tprintf(&out, "{\"topic\":%.*s,\"offset\":%zu,\"limit\":%zu,", (int)(n > 0 ? n : 0),
		   name, offset, limit);
	page_json(&out, &pg, offset);
	bk_tprintf(&out, "}\n");
	free(pg.rows);
	bk_respond_text(h, &out, "application/json");
}
