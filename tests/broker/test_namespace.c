/* broker/namespace.c: [namespaces] and [namespace NAME] sections read from
 * a file (with file:line errors), the lookup of a topic's namespace with
 * the separator and the unknown rule, values falling back to the top
 * level, and the dump reading back to the same table. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/namespace.h"

static struct bk_config cfg;
static char path[64];

static void setup(void)
{
	bk_config_defaults(&cfg);
	path[0] = 0;
}

static void teardown(void)
{
	bk_config_free(&cfg);
	if (path[0])
		unlink(path);
}

TestSuite(namespace, .init = setup, .fini = teardown);

static int load(const char *text)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/rc-ns-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return bk_config_load_file(&cfg, path);
}

Test(namespace, sections_and_lookup)
{
	bool unknown;
	const struct bk_ns *ns;

	cr_assert_eq(load("[history]\nhistory_size = 50\n"
			  "[namespaces]\nunknown = refuse\npresence = on\n"
			  "[namespace chat]\nhistory_size = 5\nhistory_ttl = 2.5\n"
			  "slow_consumer_policy = drop\nclient_publish = off\n"
			  "subscribe = token\n[namespace feed]\nmax_message_size = 4K\n"), 0);
	ns = bk_ns_of(&cfg, "chat:room", 9, &unknown);
	cr_assert_not(unknown);
	cr_assert_str_eq(ns->name, "chat");
	cr_assert_eq(bk_ns_history_size(&cfg, ns), 5);
	cr_assert_eq(bk_ns_history_ttl_ms(&cfg, ns), 2500);
	cr_assert_eq(bk_ns_slow_policy(&cfg, ns), BK_SLOW_DROP);
	cr_assert_eq(bk_ns_max_message_size(&cfg, ns), cfg.max_message_size, "top level");
	cr_assert(ns->presence, "from [namespaces]");
	cr_assert_not(ns->client_publish);
	cr_assert_eq(ns->who_subscribe, RC_NS_WHO_TOKEN);
	cr_assert_eq(ns->who_publish, RC_NS_WHO_RULES);
	ns = bk_ns_of(&cfg, "feed:x", 6, &unknown);
	cr_assert_eq(bk_ns_max_message_size(&cfg, ns), 4096);
	cr_assert_eq(bk_ns_history_size(&cfg, ns), 50, "top level");
	ns = bk_ns_of(&cfg, "plain", 5, &unknown);
	cr_assert_not(unknown, "no separator: the top level");
	cr_assert_eq(ns->name[0], 0);
	bk_ns_of(&cfg, "nope:x", 6, &unknown);
	cr_assert(unknown);
	bk_ns_of(&cfg, "chatx:x", 7, &unknown);
	cr_assert(unknown, "a name is matched whole");
}

Test(namespace, separator_and_default_unknown)
{
	bool unknown = true;

	cr_assert_eq(load("[namespaces]\nseparator = /\n[namespace a]\nhistory_size = 1\n"), 0);
	cr_assert_str_eq(bk_ns_of(&cfg, "a/x", 3, &unknown)->name, "a");
	cr_assert_eq(bk_ns_of(&cfg, "a:x", 3, &unknown)->name[0], 0);
	bk_ns_of(&cfg, "b/x", 3, &unknown);
	cr_assert_not(unknown, "unknown = default");
}

Test(namespace, no_sections)
{
	bool unknown = true;
	const struct bk_ns *ns = bk_ns_of(&cfg, "chat:x", 6, &unknown);

	cr_assert_not(unknown);
	cr_assert(ns->client_publish);
	cr_assert_not(ns->presence);
	cr_assert_eq(bk_ns_history_size(&cfg, ns), cfg.history_size);
}

Test(namespace, errors_name_the_line, .init = cr_redirect_stderr)
{
	static const char *const want[] = {
		":4: [namespace bad name] x: a namespace name is 1-64",
		":6: [namespace ok] bogus: unknown key",
		":7: [namespace ok] presence: expected on or off",
		":9: [namespaces] separator: one printable ASCII character",
		":10: [namespaces] unknown: expected refuse or default",
	};
	char buf[4096];
	size_t n;
	FILE *f;

	cr_assert_neq(load("[namespace ok]\nhistory_size = 1\n[namespace bad name]\nx = 1\n"
			   "[namespace ok]\nbogus = 2\npresence = maybe\n[namespaces]\n"
			   "separator = .\nunknown = sometimes\n"), 0);
	fflush(stderr);
	f = cr_get_redirected_stderr();
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert(strstr(buf, want[i]), "missing '%s' in:\n%s", want[i], buf);
}

Test(namespace, dump_reads_back)
{
	struct bk_config again;
	char *a = malloc(65536), *b = malloc(65536);
	long n;

	cr_assert_eq(load("[namespaces]\nseparator = #\njoin_leave = on\n"
			  "[namespace x]\nhistory_size = 3\npublish = nobody\n"), 0);
	n = bk_config_dump(&cfg, a, 65536);
	cr_assert_gt(n, 0);
	unlink(path);
	bk_config_defaults(&again);
	{
		struct bk_config keep = cfg;
		cfg = again;
		cr_assert_eq(load(a), 0);
		again = cfg;
		cfg = keep;
	}
	cr_assert_gt(bk_config_dump(&again, b, 65536), 0);
	cr_assert_str_eq(a, b);
	cr_assert_eq(again.namespaces->sep, '#');
	cr_assert_eq(again.namespaces->ns[0].who_publish, RC_NS_WHO_NOBODY);
	bk_config_free(&again);
	free(a);
	free(b);
}
