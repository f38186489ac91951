/* permessage-deflate (RFC 7692) negotiation: parsing offers and answers in
 * Sec-WebSocket-Extensions values, writing ours.  Pure string work over
 * pointer + length, no allocation.
 *
 * Grammar (RFC 6455 section 9.1, RFC 7230 lists):
 *   extension-list = 1#( token *( OWS ";" OWS param ) )
 *   param          = token [ OWS "=" OWS ( token | quoted-string ) ]
 * Empty list elements (", ,") are skipped as RFC 7230 section 7 asks. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/deflate.h"

#define PMD_NAME "permessage-deflate"

/* One parsed permessage-deflate element (offer or response). */
struct pmd_elem {
	bool snct, cnct;         /* *_no_context_takeover present */
	bool has_smwb, has_cmwb; /* *_max_window_bits present */
	uint8_t smwb, cmwb;      /* their values; cmwb 0 when given bare */
};

enum elem_kind {
	ELEM_EMPTY,   /* ", ," */
	ELEM_OTHER,   /* some other extension, well formed */
	ELEM_PMD,     /* permessage-deflate with valid parameters */
	ELEM_BAD_PMD, /* permessage-deflate with a bad/unknown/duplicate param */
	ELEM_SYNTAX,  /* not parseable; skipped to the next comma */
};

struct cursor {
	const char *p;
	const char *end;
};

/* RFC 7230 tchar. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void skip_ows(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static bool at(const struct cursor *c, char ch)
{
	return c->p < c->end && *c->p == ch;
}

static struct rc_span read_token(struct cursor *c)
{
	struct rc_span s = { c->p, 0 };

	while (c->p < c->end && is_tchar((unsigned char)*c->p))
		c->p++;
	s.len = (size_t)(c->p - s.p);
	return s;
}

/* Reads a token or a quoted-string into buf (unescaped).  A value longer than
 * cap - 1 is still consumed but reported as -EINVAL (no window value is that
 * long).  Returns the value's length, -EINVAL, or -EPROTO on bad syntax. */
static int read_value(struct cursor *c, char *buf, size_t cap)
{
	size_t n = 0;
	bool toolong = false;

	if (!at(c, '"')) {
		struct rc_span t = read_token(c);

		if (t.len == 0)
			return -EPROTO;
		if (t.len >= cap)
			return -EINVAL;
		memcpy(buf, t.p, t.len);
		return (int)t.len;
	}
	c->p++;
	for (;;) {
		unsigned char ch;

		if (c->p >= c->end)
			return -EPROTO; /* unterminated */
		ch = (unsigned char)*c->p++;
		if (ch == '"')
			break;
		if (ch == '\\') {
			if (c->p >= c->end)
				return -EPROTO;
			ch = (unsigned char)*c->p++;
		}
		if (n + 1 < cap)
			buf[n++] = (char)ch;
		else
			toolong = true;
	}
	/* RFC 7692 section 7.1: a quoted value must still be a token. */
	if (toolong || n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)buf[i]))
			return -EINVAL;
	return (int)n;
}

/* Skips to just past the next comma that is not inside a quoted-string. */
static void skip_element(struct cursor *c)
{
	bool quoted = false;

	while (c->p < c->end) {
		char ch = *c->p++;

		if (quoted && ch == '\\' && c->p < c->end)
			c->p++;
		else if (ch == '"')
			quoted = !quoted;
		else if (ch == ',' && !quoted)
			return;
	}
}

static bool span_is(struct rc_span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* "8".."15", no leading zero, no sign.  Returns the value or 0. */
static uint8_t window_value(const char *v, int n)
{
	int x = 0;

	if (n < 1 || n > 2 || v[0] == '0')
		return 0;
	for (int i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		x = x * 10 + (v[i] - '0');
	}
	return x >= 8 && x <= 15 ? (uint8_t)x : 0;
}

/* Applies one parameter to e.  vlen < 0 means "no value".  Returns false for
 * an unknown name, a duplicate, or a value that is missing/extra/bad. */
static bool apply_param(struct pmd_elem *e, struct rc_span name,
			const char *v, int vlen)
{
	bool has = vlen >= 0;
	uint8_t w = has ? window_value(v, vlen) : 0;

	if (span_is(name, "server_no_context_takeover")) {
		if (e->snct || has)
			return false;
		e->snct = true;
	} else if (span_is(name, "client_no_context_takeover")) {
		if (e->cnct || has)
			return false;
		e->cnct = true;
	} else if (span_is(name, "server_max_window_bits")) {
		if (e->has_smwb || !has || !w)
			return false;
		e->has_smwb = true;
		e->smwb = w;
	} else if (span_is(name, "client_max_window_bits")) {
		if (e->has_cmwb || (has && !w))
			return false;
		e->has_cmwb = true;
		e->cmwb = w;
	} else {
		return false;
	}
	return true;
}

/* Parses one list element starting at c and leaves c just past its comma
 * (or at the end).  *e is filled for ELEM_PMD. */
static enum elem_kind parse_element(struct cursor *c, struct pmd_elem *e)
{
	struct rc_span name;
	bool is_pmd, bad = false;

	memset(e, 0, sizeof(*e));
	skip_ows(c);
	if (c->p >= c->end)
		return ELEM_EMPTY;
	if (at(c, ',')) {
		c->p++;
		return ELEM_EMPTY;
	}
	name = read_token(c);
	if (name.len == 0)
		goto syntax;
	is_pmd = span_is(name, PMD_NAME);
	for (;;) {
		struct rc_span pname;
		char vbuf[8];
		int vlen = -1;

		skip_ows(c);
		if (c->p >= c->end)
			break;
		if (at(c, ',')) {
			c->p++;
			break;
		}
		if (!at(c, ';'))
			goto syntax;
		c->p++;
		skip_ows(c);
		pname = read_token(c);
		if (pname.len == 0)
			goto syntax;
		skip_ows(c);
		if (at(c, '=')) {
			c->p++;
			skip_ows(c);
			vlen = read_value(c, vbuf, sizeof(vbuf));
			if (vlen == -EPROTO)
				goto syntax;
			if (vlen < 0) {
				bad = true; /* well formed but not a window */
				continue;
			}
		}
		if (is_pmd && !apply_param(e, pname, vbuf, vlen))
			bad = true;
	}
	if (!is_pmd)
		return ELEM_OTHER;
	return bad ? ELEM_BAD_PMD : ELEM_PMD;
syntax:
	skip_element(c);
	return ELEM_SYNTAX;
}

/* cfg->max_window_bits as documented: 0 or > 15 mean 15, below 9 mean 9. */
static uint8_t cfg_window(const struct rc_pmd_config *cfg)
{
	uint8_t b = cfg->max_window_bits;

	if (b == 0 || b > 15)
		return 15;
	return b < 9 ? 9 : b;
}

/* Server side, see deflate.h for the policy. */
int rc_pmd_negotiate(struct rc_span header, const struct rc_pmd_config *cfg,
		     struct rc_pmd_params *out)
{
	struct cursor c;
	struct pmd_elem e;
	uint8_t limit;

	if (!cfg->enabled || header.len == 0)
		return 0;
	c.p = header.p;
	c.end = header.p + header.len;
	limit = cfg_window(cfg);
	while (c.p < c.end) {
		if (parse_element(&c, &e) != ELEM_PMD)
			continue;
		memset(out, 0, sizeof(*out));
		out->server_no_context_takeover =
			e.snct || cfg->server_no_context_takeover;
		out->client_no_context_takeover =
			e.cnct || cfg->client_no_context_takeover;
		out->server_max_window_bits =
			e.has_smwb && e.smwb < limit ? e.smwb : limit;
		out->server_max_window_bits_sent =
			e.has_smwb || out->server_max_window_bits < 15;
		out->client_max_window_bits = e.has_cmwb && e.cmwb ? e.cmwb : 15;
		return 1;
	}
	return 0;
}

/* Appends text to out[*n..cap) keeping room for the NUL. */
static bool put(char *out, size_t cap, size_t *n, const char *text)
{
	size_t l = strlen(text);

	if (cap == 0 || l > cap - 1 - *n)
		return false;
	memcpy(out + *n, text, l + 1);
	*n += l;
	return true;
}

static bool window_ok(uint8_t w)
{
	return w >= 8 && w <= 15;
}

/* Server side: the response for accepted params. */
ssize_t rc_pmd_write_response(char *out, size_t cap,
			      const struct rc_pmd_params *p)
{
	size_t n = 0;
	char num[40];

	if (!window_ok(p->server_max_window_bits) ||
	    !window_ok(p->client_max_window_bits))
		return -EINVAL;
	if (!put(out, cap, &n, PMD_NAME))
		return -ENOSPC;
	if (p->server_no_context_takeover &&
	    !put(out, cap, &n, "; server_no_context_takeover"))
		return -ENOSPC;
	if (p->client_no_context_takeover &&
	    !put(out, cap, &n, "; client_no_context_takeover"))
		return -ENOSPC;
	if (p->server_max_window_bits_sent) {
		snprintf(num, sizeof(num), "; server_max_window_bits=%u",
			 (unsigned)p->server_max_window_bits);
		if (!put(out, cap, &n, num))
			return -ENOSPC;
	}
	if (p->client_max_window_bits < 15) {
		snprintf(num, sizeof(num), "; client_max_window_bits=%u",
			 (unsigned)p->client_max_window_bits);
		if (!put(out, cap, &n, num))
			return -ENOSPC;
	}
	return (ssize_t)n;
}

/* Client side: our offer. */
ssize_t rc_pmd_write_offer(char *out, size_t cap, const struct rc_pmd_config *cfg)
{
	size_t n = 0;
	uint8_t w = cfg_window(cfg);
	char num[40];

	if (!cfg->enabled)
		return -EINVAL;
	if (!put(out, cap, &n, PMD_NAME))
		return -ENOSPC;
	if (cfg->server_no_context_takeover &&
	    !put(out, cap, &n, "; server_no_context_takeover"))
		return -ENOSPC;
	if (cfg->client_no_context_takeover &&
	    !put(out, cap, &n, "; client_no_context_takeover"))
		return -ENOSPC;
	if (w < 15)
		snprintf(num, sizeof(num), "; client_max_window_bits=%u",
			 (unsigned)w);
	else
		snprintf(num, sizeof(num), "; client_max_window_bits");
	if (!put(out, cap, &n, num))
		return -ENOSPC;
	return (ssize_t)n;
}

/* Client side: checks the server's answer against what we offered. */
int rc_pmd_parse_response(struct rc_span header, const struct rc_pmd_config *cfg,
			  struct rc_pmd_params *out, bool *accepted)
{
	struct cursor c;
	struct pmd_elem e, got = { 0 };
	int seen = 0;

	*accepted = false;
	if (header.len == 0)
		return 0;
	c.p = header.p;
	c.end = header.p + header.len;
	while (c.p < c.end) {
		switch (parse_element(&c, &e)) {
		case ELEM_EMPTY:
			continue;
		case ELEM_PMD:
			got = e;
			seen++;
			break;
		default:
			return -EPROTO;
		}
	}
	if (seen == 0)
		return 0;
	if (seen > 1 || !cfg->enabled)
		return -EPROTO;
	/* We offered client_max_window_bits; the answer must carry a value no
	 * larger than ours. */
	if (got.has_cmwb && (got.cmwb == 0 || got.cmwb > cfg_window(cfg)))
		return -EPROTO;
	memset(out, 0, sizeof(*out));
	out->server_no_context_takeover = got.snct;
	out->client_no_context_takeover =
		got.cnct || cfg->client_no_context_takeover;
	out->server_max_window_bits = got.has_smwb ? got.smwb : 15;
	out->server_max_window_bits_sent = got.has_smwb;
	out->client_max_window_bits = got.has_cmwb ? got.cmwb : cfg_window(cfg);
	*accepted = true;
	return 0;
}
