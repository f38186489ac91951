/* Tests for proto/pmd_negotiate.c: a table of offers (good, bad, duplicate
 * and unknown parameters, quoted values, whitespace, several offers falling
 * through), each checked for the accepted params, the exact response text,
 * the response parsed back by the client side, and with the header ending at
 * a guard page; client offers and response validation; -ENOSPC at every
 * short buffer. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/deflate.h"

/* Copies s so that its last byte sits right before a PROT_NONE page. */
struct guarded {
	const char *p;
	void *map;
	size_t maplen;
};

static struct guarded guard_str(const char *s, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data = (len + page - 1) / page * page + page;
	struct guarded g;

	g.maplen = data + page;
	g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(g.map, MAP_FAILED);
	cr_assert_eq(mprotect((char *)g.map + data, page, PROT_NONE), 0);
	g.p = (char *)g.map + data - len;
	memcpy((char *)g.p, s, len);
	return g;
}

static struct rc_span span(const char *s)
{
	return (struct rc_span){ s, strlen(s) };
}

/* cfg flags for the table */
#define SNCT 1
#define CNCT 2

struct neg_case {
	char name[48];
	char header[200];
	int cfg_flags;
	uint8_t cfg_bits;
	int accepted;
	/* expected when accepted */
	bool snct, cnct;
	uint8_t smwb, cmwb;
	char response[160];
};

#define PMD "permessage-deflate"
#define YES(n, h, f, b, s, c, sw, cw, r) { n, h, f, b, 1, s, c, sw, cw, r }
#define NO(n, h) { n, h, SNCT, 15, 0, false, false, 0, 0, "" }

static struct neg_case neg_cases[] = {
	YES("bare", PMD, SNCT, 15, true, false, 15, 15,
	    PMD "; server_no_context_takeover"),
	YES("bare, plain cfg", PMD, 0, 15, false, false, 15, 15, PMD),
	YES("browser offer", PMD "; client_max_window_bits", SNCT, 15,
	    true, false, 15, 15, PMD "; server_no_context_takeover"),
	YES("client window value", PMD "; client_max_window_bits=10", 0, 15,
	    false, false, 15, 10, PMD "; client_max_window_bits=10"),
	YES("client window 15", PMD "; client_max_window_bits=15", 0, 15,
	    false, false, 15, 15, PMD),
	YES("client window not lowered by cfg", PMD "; client_max_window_bits=12",
	    0, 10, false, false, 10, 12,
	    PMD "; server_max_window_bits=10; client_max_window_bits=12"),
	YES("server window asked", PMD "; server_max_window_bits=10", 0, 15,
	    false, false, 10, 15, PMD "; server_max_window_bits=10"),
	YES("server window 15 echoed", PMD "; server_max_window_bits=15", 0, 15,
	    false, false, 15, 15, PMD "; server_max_window_bits=15"),
	YES("server window above cfg", PMD "; server_max_window_bits=14", 0, 12,
	    false, false, 12, 15, PMD "; server_max_window_bits=12"),
	YES("server window below cfg", PMD "; server_max_window_bits=9", 0, 12,
	    false, false, 9, 15, PMD "; server_max_window_bits=9"),
	YES("server window 8 honoured", PMD "; server_max_window_bits=8", 0, 15,
	    false, false, 8, 15, PMD "; server_max_window_bits=8"),
	YES("cfg limit unasked", PMD, 0, 11, false, false, 11, 15,
	    PMD "; server_max_window_bits=11"),
	YES("cfg bits 0 means 15", PMD, 0, 0, false, false, 15, 15, PMD),
	YES("cfg bits 8 means 9", PMD, 0, 8, false, false, 9, 15,
	    PMD "; server_max_window_bits=9"),
	YES("client asks server nct", PMD "; server_no_context_takeover", 0, 15,
	    true, false, 15, 15, PMD "; server_no_context_takeover"),
	YES("client offers client nct", PMD "; client_no_context_takeover", 0, 15,
	    false, true, 15, 15, PMD "; client_no_context_takeover"),
	YES("cfg wants client nct", PMD, SNCT | CNCT, 15, true, true, 15, 15,
	    PMD "; server_no_context_takeover; client_no_context_takeover"),
	YES("all four", PMD "; server_no_context_takeover; client_no_context_takeover;"
	    " server_max_window_bits=12; client_max_window_bits=11", 0, 15,
	    true, true, 12, 11, PMD "; server_no_context_takeover; "
	    "client_no_context_takeover; server_max_window_bits=12; "
	    "client_max_window_bits=11"),
	YES("quoted value", PMD "; server_max_window_bits=\"10\"", 0, 15,
	    false, false, 10, 15, PMD "; server_max_window_bits=10"),
	YES("quoted escaped value", PMD "; client_max_window_bits=\"1\\1\"", 0, 15,
	    false, false, 15, 11, PMD "; client_max_window_bits=11"),
	YES("whitespace", "  " PMD " ;  server_max_window_bits = 11 ;\t"
	    "client_no_context_takeover  ", 0, 15, false, true, 11, 15,
	    PMD "; client_no_context_takeover; server_max_window_bits=11"),
	YES("no whitespace", PMD ";server_max_window_bits=9;client_max_window_bits",
	    0, 15, false, false, 9, 15, PMD "; server_max_window_bits=9"),
	YES("case insensitive", "PerMessage-Deflate; Server_No_Context_Takeover",
	    0, 15, true, false, 15, 15, PMD "; server_no_context_takeover"),
	YES("fall through bad value", PMD "; server_max_window_bits=16, " PMD
	    "; client_max_window_bits", SNCT, 15, true, false, 15, 15,
	    PMD "; server_no_context_takeover"),
	YES("fall through unknown", PMD "; x=1, " PMD "; server_max_window_bits=9",
	    0, 15, false, false, 9, 15, PMD "; server_max_window_bits=9"),
	YES("fall through duplicate", PMD "; client_no_context_takeover; "
	    "client_no_context_takeover, " PMD, 0, 15, false, false, 15, 15, PMD),
	YES("first good offer wins", PMD "; server_max_window_bits=10, " PMD
	    "; server_max_window_bits=9", 0, 15, false, false, 10, 15,
	    PMD "; server_max_window_bits=10"),
	YES("autobahn 13.7", PMD "; client_no_context_takeover; "
	    "client_max_window_bits, " PMD "; client_max_window_bits, " PMD,
	    0, 15, false, true, 15, 15, PMD "; client_no_context_takeover"),
	YES("other extension first", "x-webkit-deflate-frame, " PMD, 0, 15,
	    false, false, 15, 15, PMD),
	YES("two headers joined", "foo; a=1; b=\"x y\", bar, " PMD
	    "; unknown, " PMD "; server_max_window_bits=13", 0, 15,
	    false, false, 13, 15, PMD "; server_max_window_bits=13"),
	YES("empty list elements", " , ," PMD ",,", 0, 15, false, false, 15, 15, PMD),
	YES("syntax error then good", PMD "; =1, " PMD, 0, 15, false, false,
	    15, 15, PMD),
	YES("comma inside quotes skipped", "x-foo; ; a=\"b, " PMD
	    "; server_max_window_bits=9, c\", " PMD, 0, 15, false, false, 15, 15, PMD),
	YES("quoted comma in other ext", "x-foo; a=\"b," PMD "\", " PMD
	    "; server_max_window_bits=10", 0, 15, false, false, 10, 15,
	    PMD "; server_max_window_bits=10"),
	NO("empty", ""),
	NO("only whitespace", "  \t "),
	NO("only commas", ", ,"),
	NO("other extension", "x-webkit-deflate-frame"),
	NO("similar name", "permessage-deflatex"),
	NO("prefix name", "permessage"),
	NO("unknown param", PMD "; foo"),
	NO("unknown param with value", PMD "; mux=1"),
	NO("duplicate server nct", PMD "; server_no_context_takeover; "
	   "server_no_context_takeover"),
	NO("duplicate server window", PMD "; server_max_window_bits=10; "
	   "server_max_window_bits=10"),
	NO("duplicate client window", PMD "; client_max_window_bits; "
	   "client_max_window_bits=9"),
	NO("server window without value", PMD "; server_max_window_bits"),
	NO("server window 7", PMD "; server_max_window_bits=7"),
	NO("server window 16", PMD "; server_max_window_bits=16"),
	NO("server window leading zero", PMD "; server_max_window_bits=09"),
	NO("server window 015", PMD "; server_max_window_bits=015"),
	NO("server window sign", PMD "; server_max_window_bits=+9"),
	NO("server window letters", PMD "; server_max_window_bits=abc"),
	NO("server window empty quotes", PMD "; server_max_window_bits=\"\""),
	NO("server window quoted space", PMD "; server_max_window_bits=\" 9\""),
	NO("server window huge", PMD "; server_max_window_bits=100000000000000009"),
	NO("client window 7", PMD "; client_max_window_bits=7"),
	NO("client window 0", PMD "; client_max_window_bits=0"),
	NO("client window empty", PMD "; client_max_window_bits="),
	NO("nct with value", PMD "; server_no_context_takeover=1"),
	NO("client nct with value", PMD "; client_no_context_takeover=\"\""),
	NO("trailing semicolon", PMD ";"),
	NO("missing semicolon", PMD " client_max_window_bits"),
	NO("unterminated quote", PMD "; server_max_window_bits=\"10"),
	NO("bad then nothing", PMD "; server_max_window_bits=16, x-other"),
	NO("separator as name", "; " PMD),
};

ParameterizedTestParameters(pmd, negotiate)
{
	return cr_make_param_array(struct neg_case, neg_cases,
				   sizeof(neg_cases) / sizeof(*neg_cases));
}

ParameterizedTest(struct neg_case *c, pmd, negotiate)
{
	struct rc_pmd_config cfg = {
		.enabled = true,
		.server_no_context_takeover = c->cfg_flags & SNCT,
		.client_no_context_takeover = c->cfg_flags & CNCT,
		.max_window_bits = c->cfg_bits,
	};
	struct rc_pmd_config client = { .enabled = true, .max_window_bits = 15 };
	struct rc_pmd_params p, back;
	struct guarded g = guard_str(c->header, strlen(c->header));
	char resp[200];
	ssize_t n;
	bool accepted;

	memset(&p, 0xa5, sizeof(p));
	cr_assert_eq(rc_pmd_negotiate(span(c->header), &cfg, &p), c->accepted,
		     "%s", c->name);
	/* The same with the header ending at a guard page. */
	cr_assert_eq(rc_pmd_negotiate((struct rc_span){ g.p, strlen(c->header) },
				      &cfg, &back), c->accepted);
	munmap(g.map, g.maplen);
	if (!c->accepted)
		return;
	cr_assert_eq(p.server_no_context_takeover, c->snct, "%s", c->name);
	cr_assert_eq(p.client_no_context_takeover, c->cnct, "%s", c->name);
	cr_assert_eq(p.server_max_window_bits, c->smwb, "%s", c->name);
	cr_assert_eq(p.client_max_window_bits, c->cmwb, "%s", c->name);
	n = rc_pmd_write_response(resp, sizeof(resp), &p);
	cr_assert_eq(n, (ssize_t)strlen(c->response), "%s: %s", c->name, resp);
	cr_assert_str_eq(resp, c->response, "%s", c->name);

	/* The client side accepts our answer and agrees on every field. */
	cr_assert_eq(rc_pmd_parse_response(span(resp), &client, &back, &accepted), 0);
	cr_assert(accepted);
	cr_assert_eq(back.server_no_context_takeover, p.server_no_context_takeover);
	cr_assert_eq(back.client_no_context_takeover, p.client_no_context_takeover);
	cr_assert_eq(back.server_max_window_bits, p.server_max_window_bits);
	cr_assert_eq(back.client_max_window_bits, p.client_max_window_bits);
	cr_assert_eq(back.server_max_window_bits_sent, p.server_max_window_bits_sent);
}

Test(pmd, disabled_accepts_nothing)
{
	struct rc_pmd_config cfg = { .enabled = false, .max_window_bits = 15 };
	struct rc_pmd_params p;

	cr_assert_eq(rc_pmd_negotiate(span(PMD), &cfg, &p), 0);
	cr_assert_eq(rc_pmd_negotiate((struct rc_span){ NULL, 0 }, &cfg, &p), 0);
}

Test(pmd, write_response_enospc_every_cap)
{
	struct rc_pmd_params p = { true, true, 10, 9, true };
	char full[200], out[200];
	ssize_t n = rc_pmd_write_response(full, sizeof(full), &p);

	cr_assert_gt(n, 0);
	for (size_t cap = 0; cap <= (size_t)n; cap++)
		cr_assert_eq(rc_pmd_write_response(out, cap, &p), -ENOSPC, "cap %zu", cap);
	cr_assert_eq(rc_pmd_write_response(out, (size_t)n + 1, &p), n);
	cr_assert_str_eq(out, full);
	p.server_max_window_bits = 16;
	cr_assert_eq(rc_pmd_write_response(out, sizeof(out), &p), -EINVAL);
	p.server_max_window_bits = 15;
	p.client_max_window_bits = 7;
	cr_assert_eq(rc_pmd_write_response(out, sizeof(out), &p), -EINVAL);
}

struct offer_case {
	char name[32];
	bool snct, cnct;
	uint8_t bits;
	char offer[120];
};

static struct offer_case offer_cases[] = {
	{ "default", false, false, 15, PMD "; client_max_window_bits" },
	{ "bits 0", false, false, 0, PMD "; client_max_window_bits" },
	{ "limited window", false, false, 10, PMD "; client_max_window_bits=10" },
	{ "both nct", true, true, 9, PMD "; server_no_context_takeover; "
	  "client_no_context_takeover; client_max_window_bits=9" },
	{ "client nct", false, true, 15, PMD "; client_no_context_takeover; "
	  "client_max_window_bits" },
};

ParameterizedTestParameters(pmd, offer)
{
	return cr_make_param_array(struct offer_case, offer_cases,
				   sizeof(offer_cases) / sizeof(*offer_cases));
}

/* Our offer is byte exact, short buffers fail, and our own server side
 * accepts it. */
ParameterizedTest(struct offer_case *c, pmd, offer)
{
	struct rc_pmd_config cfg = { true, c->snct, c->cnct, c->bits };
	struct rc_pmd_config server = { .enabled = true, .max_window_bits = 15 };
	struct rc_pmd_params p;
	char out[200];
	ssize_t n = rc_pmd_write_offer(out, sizeof(out), &cfg);

	cr_assert_eq(n, (ssize_t)strlen(c->offer));
	cr_assert_str_eq(out, c->offer);
	for (size_t cap = 0; cap <= (size_t)n; cap++)
		cr_assert_eq(rc_pmd_write_offer(out, cap, &cfg), -ENOSPC);
	cr_assert_eq(rc_pmd_negotiate(span(c->offer), &server, &p), 1);
	cr_assert_eq(p.server_no_context_takeover, c->snct);
	cr_assert_eq(p.client_no_context_takeover, c->cnct);
	cfg.enabled = false;
	cr_assert_eq(rc_pmd_write_offer(out, sizeof(out), &cfg), -EINVAL);
}

struct resp_case {
	char name[48];
	char header[160];
	uint8_t cfg_bits;
	bool cfg_cnct;
	int ret;
	bool accepted;
	bool snct, cnct;
	uint8_t smwb, cmwb;
};

#define OK(n, h, b, cc, s, c, sw, cw) { n, h, b, cc, 0, true, s, c, sw, cw }
#define BAD(n, h) { n, h, 15, false, -EPROTO, false, false, false, 0, 0 }

static struct resp_case resp_cases[] = {
	{ "empty", "", 15, false, 0, false, false, false, 0, 0 },
	{ "whitespace", " \t ", 15, false, 0, false, false, false, 0, 0 },
	OK("bare", PMD, 15, false, false, false, 15, 15),
	OK("bare, we limited our window", PMD, 10, false, false, false, 15, 10),
	OK("bare, we offered client nct", PMD, 15, true, false, true, 15, 15),
	OK("server nct unasked", PMD "; server_no_context_takeover", 15, false,
	   true, false, 15, 15),
	OK("client nct unasked", PMD "; client_no_context_takeover", 15, false,
	   false, true, 15, 15),
	OK("server window unasked", PMD "; server_max_window_bits=8", 15, false,
	   false, false, 8, 15),
	OK("client window", PMD "; client_max_window_bits=9", 15, false,
	   false, false, 15, 9),
	OK("client window = offered", PMD "; client_max_window_bits=10", 10, false,
	   false, false, 15, 10),
	OK("quoted, spaced, cased", " PERMESSAGE-DEFLATE ;client_max_window_bits"
	   " = \"12\" ", 15, false, false, false, 15, 12),
	{ "client window above offered", PMD "; client_max_window_bits=11", 10,
	  false, -EPROTO, false, false, false, 0, 0 },
	BAD("client window without value", PMD "; client_max_window_bits"),
	BAD("two extensions", PMD ", " PMD),
	BAD("other extension", "x-webkit-deflate-frame"),
	BAD("other extension too", PMD ", x-foo"),
	BAD("unknown param", PMD "; foo=1"),
	BAD("duplicate", PMD "; server_no_context_takeover; "
	    "server_no_context_takeover"),
	BAD("server window 16", PMD "; server_max_window_bits=16"),
	BAD("server window no value", PMD "; server_max_window_bits"),
	BAD("syntax", PMD "; ; server_no_context_takeover"),
	BAD("unterminated quote", PMD "; client_max_window_bits=\"9"),
};

ParameterizedTestParameters(pmd, response)
{
	return cr_make_param_array(struct resp_case, resp_cases,
				   sizeof(resp_cases) / sizeof(*resp_cases));
}

ParameterizedTest(struct resp_case *c, pmd, response)
{
	struct rc_pmd_config cfg = { true, false, c->cfg_cnct, c->cfg_bits };
	struct rc_pmd_params p;
	struct guarded g = guard_str(c->header, strlen(c->header));
	bool accepted = !c->accepted;

	cr_assert_eq(rc_pmd_parse_response(span(c->header), &cfg, &p, &accepted),
		     c->ret, "%s", c->name);
	cr_assert_eq(accepted, c->accepted, "%s", c->name);
	cr_assert_eq(rc_pmd_parse_response((struct rc_span){ g.p, strlen(c->header) },
					   &cfg, &p, &accepted), c->ret);
	munmap(g.map, g.maplen);
	if (!c->accepted)
		return;
	cr_assert_eq(p.server_no_context_takeover, c->snct, "%s", c->name);
	cr_assert_eq(p.client_no_context_takeover, c->cnct, "%s", c->name);
	cr_assert_eq(p.server_max_window_bits, c->smwb, "%s", c->name);
	cr_assert_eq(p.client_max_window_bits, c->cmwb, "%s", c->name);
}

Test(pmd, response_when_we_did_not_offer)
{
	struct rc_pmd_config cfg = { .enabled = false };
	struct rc_pmd_params p;
	bool accepted = true;

	cr_assert_eq(rc_pmd_parse_response(span(PMD), &cfg, &p, &accepted), -EPROTO);
	cr_assert_eq(rc_pmd_parse_response(span(""), &cfg, &p, &accepted), 0);
	cr_assert_not(accepted);
}
