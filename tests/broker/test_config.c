/* broker/config.c: defaults, every key from text, INI files with and
 * without sections, errors by return code, precedence (defaults < file <
 * flags < env), the listen replace-then-append rule, --help/--version/
 * --check-config, and the dump reading back to the same struct. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config.h"
#include "core/rc.h"

static struct bk_config cfg;
static char tmp_path[64];

static void setup(void)
{
	bk_config_defaults(&cfg);
	tmp_path[0] = '\0';
}

static void teardown(void)
{
	bk_config_free(&cfg);
	if (tmp_path[0])
		unlink(tmp_path);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes text to a fresh temporary file named in tmp_path. */
static const char *write_tmp(const char *text)
{
	int fd;
	size_t len = strlen(text);

	if (tmp_path[0])
		unlink(tmp_path);
	strcpy(tmp_path, "/tmp/rc_cfg_XXXXXX");
	fd = mkstemp(tmp_path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return tmp_path;
}

static int from_args(bool *exit_now, int argc, char **argv)
{
	return bk_config_from_args(&cfg, argc, argv, exit_now);
}

#define ARGS(...) (char *[]){ "ringcast", __VA_ARGS__, NULL }
#define NARGS(...) ((int)(sizeof((char *[]){ "ringcast", __VA_ARGS__ }) / sizeof(char *)))
#define RUN(exit_now, ...) from_args(exit_now, NARGS(__VA_ARGS__), ARGS(__VA_ARGS__))

Test(config, defaults)
{
	cr_assert_eq(cfg.nlisten, 1);
	cr_assert_str_eq(cfg.listen[0], "127.0.0.1:8080");
	cr_assert_eq(cfg.threads, 0);
	cr_assert_eq(cfg.backlog, 1024);
	cr_assert_eq(cfg.log_level, RC_LOG_INFO);
	cr_assert(cfg.echo);
	cr_assert(cfg.compression);
	cr_assert_eq(cfg.max_connections, 0);
	cr_assert_eq(cfg.max_connections_per_ip, 0);
	cr_assert_eq(cfg.max_message_size, 1 << 20);
	cr_assert_eq(cfg.max_backpressure, 1 << 20);
	cr_assert_eq(cfg.max_topics_per_connection, 1000);
	cr_assert_eq(cfg.max_http_body, 1 << 20);
	cr_assert_eq(cfg.max_http_head, 8192);
	cr_assert_eq(cfg.json_rate, 1000.0);
	cr_assert_eq(cfg.json_burst, 2000);
	cr_assert_eq(cfg.slow_consumer_policy, BK_SLOW_CLOSE);
	cr_assert_eq(cfg.handshake_timeout_ms, 10000);
	cr_assert_eq(cfg.idle_timeout_ms, 30000);
	cr_assert_eq(cfg.pong_timeout_ms, 10000);
	cr_assert_eq(cfg.close_timeout_ms, 5000);
	cr_assert_eq(cfg.history_size, 100);
	cr_assert_eq(cfg.history_ttl_ms, 0);
	cr_assert_eq(cfg.ntls_listen, 0);
	cr_assert_null(cfg.tls_cert);
	cr_assert_null(cfg.tls_key);
	cr_assert_null(cfg.tls_client_ca);
	cr_assert_null(cfg.config_file);
	cr_assert_eq(bk_config_validate(&cfg), 0);
}

/* ---- every key from text ---------------------------------------------------- */

enum ftype { FT_U64, FT_UINT, FT_INT, FT_BOOL, FT_DBL };

/* Criterion re-executes the binary for each test, so parameters hold their
 * strings by value, never pointers into the parent's memory. */
struct set_case {
	char key[40], value[40];
	size_t off;
	enum ftype type;
	uint64_t want;
	double want_d;
};

#define F(field) offsetof(struct bk_config, field)

static struct set_case set_cases[] = {
	{ "threads", "8", F(threads), FT_UINT, 8, 0 },
	{ "threads", "1024", F(threads), FT_UINT, 1024, 0 },
	{ "backlog", "65535", F(backlog), FT_INT, 65535, 0 },
	{ "log_level", "debug", F(log_level), FT_INT, RC_LOG_DEBUG, 0 },
	{ "log_level", "WARN", F(log_level), FT_INT, RC_LOG_WARN, 0 },
	{ "log_level", "error", F(log_level), FT_INT, RC_LOG_ERROR, 0 },
	{ "echo", "off", F(echo), FT_BOOL, 0, 0 },
	{ "echo", "No", F(echo), FT_BOOL, 0, 0 },
	{ "echo", "0", F(echo), FT_BOOL, 0, 0 },
	{ "compression", "false", F(compression), FT_BOOL, 0, 0 },
	{ "compression", "yes", F(compression), FT_BOOL, 1, 0 },
	{ "max_connections", "250000", F(max_connections), FT_U64, 250000, 0 },
	{ "max_connections_per_ip", "64", F(max_connections_per_ip), FT_U64, 64, 0 },
	{ "max_message_size", "64K", F(max_message_size), FT_U64, 65536, 0 },
	{ "max_message_size", "2MiB", F(max_message_size), FT_U64, 2 << 20, 0 },
	{ "max_message_size", "1.5k", F(max_message_size), FT_U64, 1536, 0 },
	{ "max_message_size", "777", F(max_message_size), FT_U64, 777, 0 },
	{ "max_backpressure", "4G", F(max_backpressure), FT_U64, 4ull << 30, 0 },
	{ "max_backpressure", "16 MB", F(max_backpressure), FT_U64, 16 << 20, 0 },
	{ "max_topics_per_connection", "5", F(max_topics_per_connection), FT_U64, 5, 0 },
	{ "max_http_body", "256k", F(max_http_body), FT_U64, 262144, 0 },
	{ "max_http_head", "16K", F(max_http_head), FT_U64, 16384, 0 },
	{ "json_rate", "2.5", F(json_rate), FT_DBL, 0, 2.5 },
	{ "json_rate", "50", F(json_rate), FT_DBL, 0, 50 },
	{ "json_burst", "10", F(json_burst), FT_U64, 10, 0 },
	{ "slow_consumer_policy", "drop", F(slow_consumer_policy), FT_INT, BK_SLOW_DROP, 0 },
	{ "slow_consumer_policy", "close", F(slow_consumer_policy), FT_INT, BK_SLOW_CLOSE, 0 },
	{ "handshake_timeout", "2.5", F(handshake_timeout_ms), FT_UINT, 2500, 0 },
	{ "idle_timeout", "60", F(idle_timeout_ms), FT_UINT, 60000, 0 },
	{ "idle_timeout", "2m", F(idle_timeout_ms), FT_UINT, 120000, 0 },
	{ "pong_timeout", "0.25", F(pong_timeout_ms), FT_UINT, 250, 0 },
	{ "pong_timeout", "750ms", F(pong_timeout_ms), FT_UINT, 750, 0 },
	{ "close_timeout", "0.001", F(close_timeout_ms), FT_UINT, 1, 0 },
	{ "history_size", "0", F(history_size), FT_U64, 0, 0 },
	{ "history_size", "1000000", F(history_size), FT_U64, 1000000, 0 },
	{ "history_ttl", "3600", F(history_ttl_ms), FT_U64, 3600000, 0 },
	{ "history_ttl", "1.5", F(history_ttl_ms), FT_U64, 1500, 0 },
	/* Spelling variants every source relies on. */
	{ "limits.max_backpressure", "3M", F(max_backpressure), FT_U64, 3 << 20, 0 },
	{ "max-backpressure", " 5K ", F(max_backpressure), FT_U64, 5120, 0 },
	{ "MAX_BACKPRESSURE", "6K", F(max_backpressure), FT_U64, 6144, 0 },
	{ "timeouts.idle_timeout", "1", F(idle_timeout_ms), FT_UINT, 1000, 0 },
};

ParameterizedTestParameters(config, set_key)
{
	return cr_make_param_array(struct set_case, set_cases,
				   sizeof(set_cases) / sizeof(set_cases[0]));
}

ParameterizedTest(struct set_case *tc, config, set_key)
{
	const char *why = NULL;
	char *field = (char *)&cfg + tc->off;

	cr_assert_eq(bk_config_set(&cfg, tc->key, tc->value, &why), 0,
		     "%s = '%s': %s", tc->key, tc->value, why ? why : "");
	switch (tc->type) {
	case FT_U64:
		cr_assert_eq(*(uint64_t *)field, tc->want, "%s", tc->key);
		break;
	case FT_UINT:
		cr_assert_eq(*(unsigned *)field, (unsigned)tc->want, "%s", tc->key);
		break;
	case FT_INT:
		cr_assert_eq(*(int *)field, (int)tc->want, "%s", tc->key);
		break;
	case FT_BOOL:
		cr_assert_eq(*(bool *)field, tc->want != 0, "%s", tc->key);
		break;
	case FT_DBL:
		cr_assert_eq(*(double *)field, tc->want_d, "%s", tc->key);
		break;
	}
}

Test(config, set_listen_replaces_and_splits_commas)
{
	cr_assert_eq(bk_config_set(&cfg, "listen", "0.0.0.0:80, [::1]:8443,localhost:9", NULL), 0);
	cr_assert_eq(cfg.nlisten, 3);
	cr_assert_str_eq(cfg.listen[0], "0.0.0.0:80");
	cr_assert_str_eq(cfg.listen[1], "[::1]:8443");
	cr_assert_str_eq(cfg.listen[2], "localhost:9");
	cr_assert_eq(bk_config_set(&cfg, "listen", "10.0.0.1:1", NULL), 0);
	cr_assert_eq(cfg.nlisten, 1);
	cr_assert_str_eq(cfg.listen[0], "10.0.0.1:1");
}

Test(config, tls_listen_is_a_list_like_listen)
{
	cr_assert_eq(bk_config_set(&cfg, "tls_listen", "0.0.0.0:443, [::]:8443", NULL), 0);
	cr_assert_eq(cfg.ntls_listen, 2);
	cr_assert_str_eq(cfg.tls_listen[0], "0.0.0.0:443");
	cr_assert_str_eq(cfg.tls_listen[1], "[::]:8443");
	cr_assert_eq(cfg.nlisten, 1, "the plain list is untouched");
	cr_assert_str_eq(cfg.listen[0], "127.0.0.1:8080");
	cr_assert_eq(bk_config_set(&cfg, "tls.tls_listen", "", NULL), 0, "empty: no listener");
	cr_assert_eq(cfg.ntls_listen, 0);
	cr_assert_null(cfg.tls_listen[0]);
}

Test(config, tls_paths_set_replace_and_unset)
{
	cr_assert_eq(bk_config_set(&cfg, "tls_cert", " /etc/ringcast/cert.pem ", NULL), 0);
	cr_assert_str_eq(cfg.tls_cert, "/etc/ringcast/cert.pem");
	cr_assert_eq(bk_config_set(&cfg, "tls.tls_cert", "/srv/a b.pem", NULL), 0);
	cr_assert_str_eq(cfg.tls_cert, "/srv/a b.pem", "spaces inside a path stay");
	cr_assert_eq(bk_config_set(&cfg, "TLS_KEY", "k.pem", NULL), 0);
	cr_assert_str_eq(cfg.tls_key, "k.pem");
	cr_assert_eq(bk_config_set(&cfg, "tls-client-ca", "ca.pem", NULL), 0);
	cr_assert_str_eq(cfg.tls_client_ca, "ca.pem");
	cr_assert_eq(bk_config_set(&cfg, "tls_cert", "", NULL), 0);
	cr_assert_null(cfg.tls_cert, "empty unsets");
}

struct tls_valid_case {
	char listen[64], tls_listen[64], cert[16], key[16];
	int err;
};

static struct tls_valid_case tls_valid_cases[] = {
	{ "a:1", "a:2", "c.pem", "k.pem", 0 },
	{ "a:1", "a:2,b:3", "c.pem", "k.pem", 0 },
	{ "a:1", "a:2", "", "k.pem", -EINVAL },		/* no certificate */
	{ "a:1", "a:2", "c.pem", "", -EINVAL },		/* no key */
	{ "a:1", "a:1", "c.pem", "k.pem", -EINVAL },	/* plain and TLS on one address */
	{ "a:1,b:2", "c:3,b:2", "c.pem", "k.pem", -EINVAL },
	{ "a:1", "c:3,c:3", "c.pem", "k.pem", -EINVAL },
	{ "a:1", "", "c.pem", "k.pem", 0 },		/* unused: only a warning */
	{ "a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8", "b:1,b:2,b:3,b:4,b:5,b:6,b:7,b:8", "c", "k", 0 },
	{ "a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8", "b:1,b:2,b:3,b:4,b:5,b:6,b:7,b:8,b:9", "c", "k",
	  -EINVAL },	/* 17 sockets: more than the server holds */
};

ParameterizedTestParameters(config, tls_validation)
{
	return cr_make_param_array(struct tls_valid_case, tls_valid_cases,
				   sizeof(tls_valid_cases) / sizeof(tls_valid_cases[0]));
}

ParameterizedTest(struct tls_valid_case *tc, config, tls_validation)
{
	cr_assert_eq(bk_config_set(&cfg, "listen", tc->listen, NULL), 0);
	cr_assert_eq(bk_config_set(&cfg, "tls_listen", tc->tls_listen, NULL), 0);
	cr_assert_eq(bk_config_set(&cfg, "tls_cert", tc->cert, NULL), 0);
	cr_assert_eq(bk_config_set(&cfg, "tls_key", tc->key, NULL), 0);
	cr_redirect_stderr();
	cr_assert_eq(bk_config_validate(&cfg), tc->err, "listen %s tls_listen %s cert '%s' key '%s'",
		     tc->listen, tc->tls_listen, tc->cert, tc->key);
}

/* ---- bad values and unknown keys --------------------------------------------- */

struct bad_case {
	char key[40], value[64];
	int err;
};

static struct bad_case bad_cases[] = {
	{ "no_such_key", "1", -ENOENT },
	{ "server.max_backpressure", "1M", -ENOENT },	/* wrong section */
	{ "nosection.threads", "1", -ENOENT },
	{ "max_backpressure", "12Q", -EINVAL },
	{ "max_backpressure", "", -EINVAL },
	{ "max_backpressure", "-1", -EINVAL },
	{ "max_backpressure", "0", -EINVAL },
	{ "max_backpressure", "99999999999999999999", -EINVAL },
	{ "max_message_size", "0.3", -EINVAL },		/* not whole bytes */
	{ "max_message_size", "2G", -EINVAL },
	{ "max_http_head", "100", -EINVAL },
	{ "threads", "1025", -EINVAL },
	{ "threads", "four", -EINVAL },
	{ "threads", "1.5", -EINVAL },
	{ "threads", "4K", -EINVAL },
	{ "backlog", "0", -EINVAL },
	{ "backlog", "3000000000", -EINVAL },
	{ "log_level", "verbose", -EINVAL },
	{ "echo", "maybe", -EINVAL },
	{ "compression", "2", -EINVAL },
	{ "max_topics_per_connection", "0", -EINVAL },
	{ "json_rate", "0", -EINVAL },
	{ "json_rate", "-3", -EINVAL },
	{ "json_rate", "nan", -EINVAL },
	{ "json_rate", "inf", -EINVAL },
	{ "json_rate", "5x", -EINVAL },
	{ "json_burst", "0", -EINVAL },
	{ "slow_consumer_policy", "ignore", -EINVAL },
	{ "handshake_timeout", "0", -EINVAL },
	{ "idle_timeout", "0.0001", -EINVAL },		/* finer than 1 ms */
	{ "idle_timeout", "31d", -EINVAL },
	{ "pong_timeout", "9999999", -EINVAL },
	{ "history_size", "1000001", -EINVAL },
	{ "history_ttl", "1e3", -EINVAL },
	{ "listen", "8080", -EINVAL },
	{ "listen", "host:0", -EINVAL },
	{ "listen", "host:65536", -EINVAL },
	{ "listen", ":80", -EINVAL },
	{ "listen", "::1:80", -EINVAL },
	{ "listen", "[::1:80", -EINVAL },
	{ "listen", "a:1,,b:2", -EINVAL },
	{ "listen", "a b:1", -EINVAL },
	{ "listen", "a:1,", -EINVAL },
	{ "tls_listen", "8443", -EINVAL },
	{ "tls_listen", "a:1,,b:2", -EINVAL },
	{ "tls_listen", "[::1:443", -EINVAL },
	{ "server.tls_cert", "/x.pem", -ENOENT },	/* wrong section */
	{ "tls.listen", "a:1", -ENOENT },
};

ParameterizedTestParameters(config, bad_value)
{
	return cr_make_param_array(struct bad_case, bad_cases,
				   sizeof(bad_cases) / sizeof(bad_cases[0]));
}

/* A rejected value names a reason and leaves the config as it was. */
ParameterizedTest(struct bad_case *tc, config, bad_value)
{
	struct bk_config before;
	char a[4096], b[4096];
	const char *why = NULL;

	bk_config_defaults(&before);
	cr_assert_eq(bk_config_set(&cfg, tc->key, tc->value, &why), tc->err,
		     "%s = '%s'", tc->key, tc->value);
	cr_assert_not_null(why);
	cr_assert_gt(bk_config_dump(&cfg, a, sizeof(a)), 0);
	cr_assert_gt(bk_config_dump(&before, b, sizeof(b)), 0);
	bk_config_free(&before);
	cr_assert_str_eq(a, b);
}

Test(config, too_many_listen_addresses_keep_the_old_list)
{
	char list[512] = "";

	for (int i = 0; i < RC_CFG_MAX_LISTEN + 1; i++)
		sprintf(list + strlen(list), "%s10.0.0.%d:80", i ? "," : "", i);
	cr_assert_eq(bk_config_set(&cfg, "listen", list, NULL), -EINVAL);
	cr_assert_eq(cfg.nlisten, 1);
	cr_assert_str_eq(cfg.listen[0], "127.0.0.1:8080");
	*strrchr(list, ',') = '\0';	/* exactly the maximum is fine */
	cr_assert_eq(bk_config_set(&cfg, "listen", list, NULL), 0);
	cr_assert_eq(cfg.nlisten, RC_CFG_MAX_LISTEN);
}

Test(config, duplicate_listen_fails_validation)
{
	cr_assert_eq(bk_config_set(&cfg, "listen", "a:1,b:2,a:1", NULL), 0);
	cr_redirect_stderr();
	cr_assert_eq(bk_config_validate(&cfg), -EINVAL);
}

/* ---- INI files ------------------------------------------------------------------ */

Test(config, file_with_sections)
{
	const char *p = write_tmp(
		"; comment\n"
		"# another\n"
		"[server]\n"
		"listen = 0.0.0.0:8080\n"
		"listen = [::]:8080 ; inline comment\n"
		"threads = 4\n"
		"log_level = debug\r\n"
		"\n"
		"[limits]\n"
		"  max_backpressure = 256K\n"	/* indented: a key, not a continuation */
		"slow_consumer_policy = drop\n"
		"[timeouts]\n"
		"idle_timeout = 45.5\n"
		"[history]\n"
		"history_size = 500\n"
		"history_ttl = 60\n");

	cr_assert_eq(bk_config_load_file(&cfg, p), 0);
	cr_assert_eq(cfg.nlisten, 2);
	cr_assert_str_eq(cfg.listen[0], "0.0.0.0:8080");
	cr_assert_str_eq(cfg.listen[1], "[::]:8080");
	cr_assert_eq(cfg.threads, 4);
	cr_assert_eq(cfg.log_level, RC_LOG_DEBUG);
	cr_assert_eq(cfg.max_backpressure, 256 * 1024);
	cr_assert_eq(cfg.slow_consumer_policy, BK_SLOW_DROP);
	cr_assert_eq(cfg.idle_timeout_ms, 45500);
	cr_assert_eq(cfg.history_size, 500);
	cr_assert_eq(cfg.history_ttl_ms, 60000);
	cr_assert_eq(cfg.backlog, 1024, "untouched keys keep their defaults");
}

Test(config, file_tls_section)
{
	const char *p = write_tmp(
		"[tls]\n"
		"tls_listen = 0.0.0.0:8443\n"
		"tls_listen = [::]:8443,127.0.0.1:9443\n"
		"tls_cert = /etc/ringcast/fullchain.pem\n"
		"tls_key = /etc/ringcast/key.pem ; inline comment\n"
		"tls_client_ca =\n");

	cr_assert_eq(bk_config_load_file(&cfg, p), 0);
	cr_assert_eq(cfg.ntls_listen, 3);
	cr_assert_str_eq(cfg.tls_listen[0], "0.0.0.0:8443");
	cr_assert_str_eq(cfg.tls_listen[2], "127.0.0.1:9443");
	cr_assert_str_eq(cfg.tls_cert, "/etc/ringcast/fullchain.pem");
	cr_assert_str_eq(cfg.tls_key, "/etc/ringcast/key.pem");
	cr_assert_null(cfg.tls_client_ca);
	cr_assert_eq(cfg.nlisten, 1, "listen keeps its default");
	cr_assert_eq(bk_config_validate(&cfg), 0);
}

Test(config, file_without_sections)
{
	const char *p = write_tmp("threads = 2\nmax_message_size = 2M\n"
				  "listen = 1.2.3.4:5,6.7.8.9:10\nlisten=11.0.0.1:12\n");

	cr_assert_eq(bk_config_load_file(&cfg, p), 0);
	cr_assert_eq(cfg.threads, 2);
	cr_assert_eq(cfg.max_message_size, 2 << 20);
	cr_assert_eq(cfg.nlisten, 3);
	cr_assert_str_eq(cfg.listen[2], "11.0.0.1:12");
}

struct file_err_case {
	char text[512];
	int err;
};

static struct file_err_case file_err_cases[] = {
	{ "[server]\nno_such = 1\n", -EINVAL },
	{ "[limits]\nmax_backpressure = 12Q\n", -EINVAL },
	{ "[server]\nmax_backpressure = 1M\n", -EINVAL },	/* wrong section */
	{ "[bogus]\nthreads = 1\n", -EINVAL },
	{ "threads 4\n", -EINVAL },				/* inih syntax error */
	{ "[server\nthreads = 4\n", -EINVAL },
	{ "threads = 4\nlisten = nope\n", -EINVAL },
	{ "[server]\ntls_cert = c.pem\n", -EINVAL },		/* belongs in [tls] */
	{ "[tls]\nlisten = a:1\n", -EINVAL },
	{ "; the next line is longer than inih's buffer\nlisten = "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  ":1\n", -EINVAL },
};

ParameterizedTestParameters(config, file_errors)
{
	return cr_make_param_array(struct file_err_case, file_err_cases,
				   sizeof(file_err_cases) / sizeof(file_err_cases[0]));
}

ParameterizedTest(struct file_err_case *tc, config, file_errors)
{
	const char *p = write_tmp(tc->text);

	cr_redirect_stderr();
	cr_assert_eq(bk_config_load_file(&cfg, p), tc->err, "%s", tc->text);
}

Test(config, missing_file)
{
	cr_redirect_stderr();
	cr_assert_eq(bk_config_load_file(&cfg, "/nonexistent/ringcast.ini"), -ENOENT);
}

/* ---- flags, env, precedence ----------------------------------------------------- */

Test(config, precedence_file_then_flags_then_env)
{
	const char *p = write_tmp("[server]\nthreads = 2\nbacklog = 10\n"
				  "[limits]\nmax_backpressure = 1K\nmax_http_body = 3K\n");
	bool exit_now = true;
	int err;

	setenv("RINGCAST_MAX_BACKPRESSURE", "9K", 1);
	cr_redirect_stderr();	/* 9K < max_message_size: a warning */
	err = RUN(&exit_now, "--config", (char *)p, "--threads", "3",
		  "--max-backpressure=5K", "--json_burst", "7");
	unsetenv("RINGCAST_MAX_BACKPRESSURE");
	cr_assert_eq(err, 0);
	cr_assert_not(exit_now);
	cr_assert_str_eq(cfg.config_file, p);
	cr_assert_eq(cfg.backlog, 10, "file over default");
	cr_assert_eq(cfg.max_http_body, 3 * 1024, "file over default");
	cr_assert_eq(cfg.threads, 3, "flag over file");
	cr_assert_eq(cfg.json_burst, 7, "flag over default");
	cr_assert_eq(cfg.max_backpressure, 9 * 1024, "env over flag and file");
}

Test(config, config_flag_after_keys_is_still_read_first)
{
	const char *p = write_tmp("threads = 2\n");
	bool exit_now;

	cr_assert_eq(RUN(&exit_now, "--threads", "6", "--config=/dev/null",
			 "--config", (char *)p), 0);
	cr_assert_eq(cfg.threads, 6);
	cr_assert_str_eq(cfg.config_file, p, "the last --config wins");
}

Test(config, env_alone_and_empty_env)
{
	bool exit_now;

	setenv("RINGCAST_LOG_LEVEL", "error", 1);
	setenv("RINGCAST_ECHO", "", 1);		/* empty counts as unset */
	setenv("RINGCAST_HISTORY_TTL", "2.5", 1);
	cr_assert_eq(RUN(&exit_now, "--echo", "on"), 0);
	unsetenv("RINGCAST_LOG_LEVEL");
	unsetenv("RINGCAST_ECHO");
	unsetenv("RINGCAST_HISTORY_TTL");
	cr_assert_eq(cfg.log_level, RC_LOG_ERROR);
	cr_assert(cfg.echo);
	cr_assert_eq(cfg.history_ttl_ms, 2500);
}

Test(config, bad_env_value_fails)
{
	setenv("RINGCAST_THREADS", "lots", 1);
	cr_redirect_stderr();
	cr_assert_eq(bk_config_load_env(&cfg), -EINVAL);
	unsetenv("RINGCAST_THREADS");
	cr_assert_eq(cfg.threads, 0);
}

Test(config, env_config_names_the_file)
{
	const char *p = write_tmp("max_topics_per_connection = 12\n");
	bool exit_now;

	setenv("RINGCAST_CONFIG", p, 1);
	cr_assert_eq(RUN(&exit_now, "--config", "/nonexistent.ini"), 0);
	unsetenv("RINGCAST_CONFIG");
	cr_assert_eq(cfg.max_topics_per_connection, 12);
}

Test(config, listen_flags_replace_file_list_then_append)
{
	const char *p = write_tmp("listen = 1.1.1.1:1\nlisten = 2.2.2.2:2\n");
	bool exit_now;

	cr_assert_eq(RUN(&exit_now, "--config", (char *)p, "--listen", "3.3.3.3:3",
			 "--listen=4.4.4.4:4,5.5.5.5:5"), 0);
	cr_assert_eq(cfg.nlisten, 3);
	cr_assert_str_eq(cfg.listen[0], "3.3.3.3:3");
	cr_assert_str_eq(cfg.listen[1], "4.4.4.4:4");
	cr_assert_str_eq(cfg.listen[2], "5.5.5.5:5");
}

Test(config, listen_file_list_kept_without_flags_and_env_replaces)
{
	const char *p = write_tmp("listen = 1.1.1.1:1\nlisten = 2.2.2.2:2\n");
	bool exit_now;

	cr_assert_eq(RUN(&exit_now, "--config", (char *)p), 0);
	cr_assert_eq(cfg.nlisten, 2);
	cr_assert_str_eq(cfg.listen[1], "2.2.2.2:2");
	setenv("RINGCAST_LISTEN", "7.7.7.7:7,8.8.8.8:8", 1);
	cr_assert_eq(bk_config_load_env(&cfg), 0);
	unsetenv("RINGCAST_LISTEN");
	cr_assert_eq(cfg.nlisten, 2);
	cr_assert_str_eq(cfg.listen[0], "7.7.7.7:7");
	cr_assert_str_eq(cfg.listen[1], "8.8.8.8:8");
}

/* The replace-then-append rule is per list: a --listen flag does not make
 * the first --tls-listen flag append to the file's TLS list. */
Test(config, tls_listen_flags_and_env_follow_the_list_rule)
{
	const char *p = write_tmp("[server]\nlisten = 1.1.1.1:1\n[tls]\ntls_listen = 2.2.2.2:2\n"
				  "tls_cert = file.pem\ntls_key = file.key\n");
	bool exit_now;

	cr_assert_eq(RUN(&exit_now, "--config", (char *)p, "--listen", "3.3.3.3:3",
			 "--tls-listen", "4.4.4.4:4", "--tls-listen=5.5.5.5:5",
			 "--tls-cert", "flag.pem"), 0);
	cr_assert_eq(cfg.nlisten, 1);
	cr_assert_str_eq(cfg.listen[0], "3.3.3.3:3");
	cr_assert_eq(cfg.ntls_listen, 2);
	cr_assert_str_eq(cfg.tls_listen[0], "4.4.4.4:4");
	cr_assert_str_eq(cfg.tls_listen[1], "5.5.5.5:5");
	cr_assert_str_eq(cfg.tls_cert, "flag.pem", "flag over file");
	cr_assert_str_eq(cfg.tls_key, "file.key");
	setenv("RINGCAST_TLS_LISTEN", "6.6.6.6:6", 1);
	setenv("RINGCAST_TLS_KEY", "env.key", 1);
	setenv("RINGCAST_TLS_CLIENT_CA", "ca.pem", 1);
	cr_assert_eq(bk_config_load_env(&cfg), 0);
	unsetenv("RINGCAST_TLS_LISTEN");
	unsetenv("RINGCAST_TLS_KEY");
	unsetenv("RINGCAST_TLS_CLIENT_CA");
	cr_assert_eq(cfg.ntls_listen, 1);
	cr_assert_str_eq(cfg.tls_listen[0], "6.6.6.6:6");
	cr_assert_str_eq(cfg.tls_key, "env.key");
	cr_assert_str_eq(cfg.tls_client_ca, "ca.pem");
}

Test(config, no_bool_flags)
{
	bool exit_now;

	cr_assert_eq(RUN(&exit_now, "--no-echo", "--no-compression"), 0);
	cr_assert_not(cfg.echo);
	cr_assert_not(cfg.compression);
}

struct argv_err_case {
	char a[48], b[48];	/* b empty: no second argument */
};

static struct argv_err_case argv_err_cases[] = {
	{ "--threads", "" },			/* missing value */
	{ "--threads", "x" },
	{ "--frobnicate", "1" },
	{ "positional", "" },
	{ "--no-threads", "" },			/* --no- only for on/off keys */
	{ "--config", "" },
	{ "--config", "/nonexistent/ringcast.ini" },
	{ "--listen", "a:1,a:1" },		/* validation */
	{ "--tls-listen", "a:2" },		/* no certificate */
	{ "--tls-listen", "127.0.0.1:8080" },	/* the default plain address */
	{ "--no-tls-cert", "" },
	{ "-t", "4" },
};

ParameterizedTestParameters(config, argv_errors)
{
	return cr_make_param_array(struct argv_err_case, argv_err_cases,
				   sizeof(argv_err_cases) / sizeof(argv_err_cases[0]));
}

ParameterizedTest(struct argv_err_case *tc, config, argv_errors)
{
	char *argv[] = { "ringcast", tc->a, tc->b[0] ? tc->b : NULL, NULL };
	bool exit_now;

	cr_redirect_stderr();
	cr_assert_eq(bk_config_from_args(&cfg, tc->b[0] ? 3 : 2, argv, &exit_now),
		     -EINVAL, "%s %s", tc->a, tc->b);
}

/* ---- --help, --version, --check-config ------------------------------------------ */

static char *read_all(FILE *f)
{
	static char buf[16384];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);

	buf[n] = '\0';
	return buf;
}

Test(config, version)
{
	bool exit_now = false;

	cr_redirect_stdout();
	cr_assert_eq(RUN(&exit_now, "--threads", "bad", "--version"), 0,
		     "--version wins over anything else");
	cr_assert(exit_now);
	fflush(stdout);
	cr_assert_stdout_eq_str("ringcast " RINGCAST_VERSION "\n");
}

Test(config, help_lists_every_key)
{
	char dump[4096], *help, *line, *save = NULL;
	bool exit_now = false;

	cr_redirect_stdout();
	cr_assert_eq(RUN(&exit_now, "--help"), 0);
	cr_assert(exit_now);
	fflush(stdout);
	fclose(stdout);
	help = read_all(cr_get_redirected_stdout());
	cr_assert(strstr(help, "--config FILE"));
	cr_assert(strstr(help, "--check-config"));
	/* Every key the dump knows has a flag line with its default. */
	cr_assert_gt(bk_config_dump(&cfg, dump, sizeof(dump)), 0);
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char flag[64], *eq = strstr(line, " = ");

		if (!eq)
			continue;
		snprintf(flag, sizeof(flag), "--%.*s ", (int)(eq - line), line);
		for (char *q = flag; *q; q++)
			*q = *q == '_' ? '-' : *q;
		cr_assert(strstr(help, flag), "help has no line for %s", flag);
	}
	cr_assert(strstr(help, "(default 1M)"));
	cr_assert(strstr(help, "(default 127.0.0.1:8080)"));
	cr_assert(strstr(help, "--tls-listen HOST:PORT "), "%s", help);
	cr_assert(strstr(help, "--tls-client-ca FILE "), "%s", help);
}

Test(config, check_config_ok)
{
	bool exit_now = false;
	char *out;

	cr_redirect_stdout();
	cr_assert_eq(RUN(&exit_now, "--check-config", "--threads", "5"), 0);
	cr_assert(exit_now);
	fflush(stdout);
	fclose(stdout);
	out = read_all(cr_get_redirected_stdout());
	cr_assert(strstr(out, "threads = 5\n"), "%s", out);
	cr_assert(strstr(out, "config OK\n"));
}

Test(config, check_config_bad)
{
	bool exit_now = false;

	cr_redirect_stdout();
	cr_redirect_stderr();
	cr_assert_eq(RUN(&exit_now, "--check-config", "--threads", "2000"), -EINVAL);
	cr_assert(exit_now);
}

/* ---- dump ------------------------------------------------------------------------ */

static void assert_same(const struct bk_config *a, const struct bk_config *b)
{
	cr_assert_eq(a->nlisten, b->nlisten);
	for (unsigned i = 0; i < a->nlisten; i++)
		cr_assert_str_eq(a->listen[i], b->listen[i]);
	cr_assert_eq(a->threads, b->threads);
	cr_assert_eq(a->backlog, b->backlog);
	cr_assert_eq(a->log_level, b->log_level);
	cr_assert_eq(a->echo, b->echo);
	cr_assert_eq(a->compression, b->compression);
	cr_assert_eq(a->max_connections, b->max_connections);
	cr_assert_eq(a->max_connections_per_ip, b->max_connections_per_ip);
	cr_assert_eq(a->max_message_size, b->max_message_size);
	cr_assert_eq(a->max_backpressure, b->max_backpressure);
	cr_assert_eq(a->max_topics_per_connection, b->max_topics_per_connection);
	cr_assert_eq(a->max_http_body, b->max_http_body);
	cr_assert_eq(a->max_http_head, b->max_http_head);
	cr_assert_eq(a->json_rate, b->json_rate);
	cr_assert_eq(a->json_burst, b->json_burst);
	cr_assert_eq(a->slow_consumer_policy, b->slow_consumer_policy);
	cr_assert_eq(a->handshake_timeout_ms, b->handshake_timeout_ms);
	cr_assert_eq(a->idle_timeout_ms, b->idle_timeout_ms);
	cr_assert_eq(a->pong_timeout_ms, b->pong_timeout_ms);
	cr_assert_eq(a->close_timeout_ms, b->close_timeout_ms);
	cr_assert_eq(a->history_size, b->history_size);
	cr_assert_eq(a->history_ttl_ms, b->history_ttl_ms);
	cr_assert_eq(a->ntls_listen, b->ntls_listen);
	for (unsigned i = 0; i < a->ntls_listen; i++)
		cr_assert_str_eq(a->tls_listen[i], b->tls_listen[i]);
	cr_assert_str_eq(a->tls_cert ? a->tls_cert : "(null)", b->tls_cert ? b->tls_cert : "(null)");
	cr_assert_str_eq(a->tls_key ? a->tls_key : "(null)", b->tls_key ? b->tls_key : "(null)");
	cr_assert_str_eq(a->tls_client_ca ? a->tls_client_ca : "(null)",
			 b->tls_client_ca ? b->tls_client_ca : "(null)");
}

static void round_trip(void)
{
	struct bk_config back;
	char text[8192];
	long n = bk_config_dump(&cfg, text, sizeof(text));

	cr_assert_gt(n, 0);
	cr_assert_eq((size_t)n, strlen(text));
	bk_config_defaults(&back);
	cr_assert_eq(bk_config_load_file(&back, write_tmp(text)), 0, "%s", text);
	assert_same(&cfg, &back);
	bk_config_free(&back);
}

Test(config, dump_round_trips_defaults)
{
	round_trip();
}

Test(config, dump_round_trips_everything_changed)
{
	static const char *const kv[][2] = {
		{ "listen", "0.0.0.0:1,[::1]:2,example.org:3" }, { "threads", "7" },
		{ "backlog", "77" }, { "log_level", "warn" }, { "echo", "off" },
		{ "compression", "off" }, { "max_connections", "123457" },
		{ "max_connections_per_ip", "9" }, { "max_message_size", "1000001" },
		{ "max_backpressure", "3G" }, { "max_topics_per_connection", "31" },
		{ "max_http_body", "1.5M" }, { "max_http_head", "4095" },
		{ "json_rate", "0.1" }, { "json_burst", "3" },
		{ "slow_consumer_policy", "drop" }, { "handshake_timeout", "1.234" },
		{ "io_backend", "epoll" },
		{ "idle_timeout", "0.5" }, { "pong_timeout", "7" },
		{ "close_timeout", "2.05" }, { "history_size", "0" },
		{ "history_ttl", "86400.001" },
		{ "tls_listen", "0.0.0.0:443,[::]:443" }, { "tls_cert", "/a/c.pem" },
		{ "tls_key", "/a/k.pem" }, { "tls_client_ca", "/a/ca.pem" },
	};

	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		cr_assert_eq(bk_config_set(&cfg, kv[i][0], kv[i][1], NULL), 0, "%s", kv[i][0]);
	cr_assert_eq(cfg.close_timeout_ms, 2050);
	round_trip();
}

Test(config, dump_too_small)
{
	char small[64];

	cr_assert_eq(bk_config_dump(&cfg, small, sizeof(small)), -ENOSPC);
}

/* The documented example loads cleanly and holds exactly the defaults, so
 * the documentation cannot drift from the code.  Tests run from the
 * repository root (make unit). */
Test(config, example_file_is_the_defaults)
{
	struct bk_config def;

	if (access("deploy/ringcast.ini", R_OK) != 0)
		cr_skip_test("deploy/ringcast.ini not found (run from the repository root)");
	cfg.threads = 9;
	cfg.echo = false;
	cr_assert_eq(bk_config_load_file(&cfg, "deploy/ringcast.ini"), 0);
	bk_config_defaults(&def);
	assert_same(&cfg, &def);
	bk_config_free(&def);
}
