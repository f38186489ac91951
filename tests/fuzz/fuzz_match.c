/* libFuzzer harness for broker/match.c: the input is lines; "+PATTERN"
 * registers a pattern, "-N" unregisters the Nth registered one, any other
 * line is a subject.  For each subject the trie's matches must be exactly
 * the registered patterns a plain reference matcher (token arrays, written
 * here independently) accepts, each once; bk_pattern_match must agree too.
 * At the end every node must be freed with the entries.  match.c depends
 * on libc, core/list.h and proto/json.c only, so it is compiled into the
 * harness (proto/ is linked into every harness). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/match.c"

#define MAXP 64
#define MAXT 300

struct tok {
	const char *p;
	size_t len;
};

static size_t split(const char *s, size_t len, struct tok *out)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			out[n].p = s + start;
			out[n].len = i - start;
			n++;
			start = i + 1;
		}
	}
	return n;
}

static bool is(const struct tok *t, char c)
{
	return t->len == 1 && t->p[0] == c;
}

/* The reference: "*" one token, ">" as the last token one or more. */
static bool ref_match(const char *pat, size_t plen, const char *subj, size_t slen)
{
	static struct tok pt[MAXT], st[MAXT];
	size_t np = split(pat, plen, pt), ns = split(subj, slen, st);

	for (size_t i = 0; i < np; i++) {
		if (is(&pt[i], '>') && i == np - 1)
			return ns > i;
		if (i >= ns)
			return false;
		if (is(&pt[i], '*'))
			continue;
		if (pt[i].len != st[i].len || memcmp(pt[i].p, st[i].p, pt[i].len) != 0)
			return false;
	}
	return np == ns;
}

static bool ref_valid(const char *pat, size_t plen)
{
	static struct tok pt[MAXT];
	size_t np = split(pat, plen, pt);

	for (size_t i = 0; i + 1 < np; i++)
		if (is(&pt[i], '>'))
			return false;
	return true;
}

struct slot {
	struct bk_match_entry e;
	const char *pat;
	size_t len;
	unsigned hits;
};

static void hit(struct bk_match_entry *e, void *arg)
{
	(void)arg;
	rc_container_of(e, struct slot, e)->hits++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct slot slots[MAXP];
	struct bk_match m = { 0 };
	const char *s = (const char *)data;
	size_t n = 0;

	memset(slots, 0, sizeof(slots));
	for (size_t i = 0; i < size; ) {
		const char *nl = memchr(s + i, '\n', size - i);
		size_t end = nl ? (size_t)(nl - s) : size, len = end - i;
		const char *line = s + i;
		i = end + 1;
		if (len > 255)
			continue; /* topics are at most 255 bytes */
		if (len && line[0] == '+') {
			if (n == MAXP)
				continue;
			int r = bk_match_add(&m, line + 1, len - 1, &slots[n].e);
			if ((r == 0) != ref_valid(line + 1, len - 1))
				abort();
			if (r == 0) {
				slots[n].pat = line + 1;
				slots[n++].len = len - 1;
			}
		} else if (len && line[0] == '-') {
			if (n)
				bk_match_del(&m, &slots[(uint8_t)(len > 1 ? line[1] : 0) % n].e);
		} else {
			size_t want = 0, got;
			for (size_t k = 0; k < n; k++)
				slots[k].hits = 0;
			got = bk_match_each(&m, line, len, hit, NULL);
			for (size_t k = 0; k < n; k++) {
				bool live = slots[k].e.node != NULL;
				bool ref = live && ref_match(slots[k].pat, slots[k].len, line, len);
				if (slots[k].hits != (ref ? 1u : 0u))
					abort();
				if (live && bk_pattern_match(slots[k].pat, slots[k].len, line, len) != ref)
					abort();
				want += ref;
			}
			if (got != want)
				abort();
		}
	}
	for (size_t k = 0; k < n; k++)
		bk_match_del(&m, &slots[k].e);
	if (m.count != 0 || (m.root && m.nodes != 1))
		abort();
	bk_match_free(&m);
	return 0;
}
