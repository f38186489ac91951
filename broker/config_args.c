/* The broker's command line: --help, --version, --config and
 * --check-config, then every key as a flag (--key VALUE, --key=VALUE,
 * --no-KEY), in the order given; the file named by --config is read before
 * the flags and the environment after them (see bk_config_from_args). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/config_internal.h"

/* Splits "--name=value" / "--name"; returns false for non-flags. */
static bool split_flag(const char *a, const char **name, size_t *nlen,
		       const char **inline_val)
{
	const char *eq;

	if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
		return false;
	*name = a + 2;
	eq = strchr(*name, '=');
	*nlen = eq ? (size_t)(eq - *name) : strlen(*name);
	*inline_val = eq ? eq + 1 : NULL;
	return true;
}

static bool is_bool_negation(const char *name, size_t nlen)
{
	const struct key *k;

	if (nlen <= 3 || strncmp(name, "no-", 3) != 0)
		return false;
	k = bk__config_find_key(name + 3, nlen - 3);
	return k && k->kind == K_BOOL;
}

static int usage_error(void)
{
	fprintf(stderr, "Try 'ringcast --help' for the flags and keys.\n");
	return -EINVAL;
}

/* Applies one flag at argv[*i]; advances *i past a separate value. */
static int apply_flag(struct bk_config *c, int argc, char **argv, int *i,
		      uint64_t *lists_seen)
{
	const char *name, *val, *why = NULL;
	char key[64];
	size_t nlen;
	int err;

	if (!split_flag(argv[*i], &name, &nlen, &val)) {
		fprintf(stderr, "ringcast: unexpected argument '%s'\n", argv[*i]);
		return usage_error();
	}
	if (!val && is_bool_negation(name, nlen)) {
		name += 3;
		nlen -= 3;
		val = "off";
	}
	if (nlen >= sizeof(key) || !bk__config_find_key(name, nlen)) {
		fprintf(stderr, "ringcast: unknown flag '--%.*s'\n", (int)nlen, name);
		return usage_error();
	}
	memcpy(key, name, nlen);
	key[nlen] = '\0';
	if (!val) {
		if (*i + 1 >= argc) {
			fprintf(stderr, "ringcast: --%s: needs a value\n", key);
			return usage_error();
		}
		val = argv[++*i];
	}
	err = bk__config_set_trimmed(c, key, val, lists_seen, &why);
	if (err) {
		fprintf(stderr, "ringcast: --%s: %s: '%s'\n", key, why, val);
		return usage_error();
	}
	return 0;
}

static bool flag_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncmp(name, want, nlen) == 0;
}

/* Everything but --help/--version/--check-config output; *check tells
 * whether --check-config was given. */
static int load_all(struct bk_config *c, int argc, char **argv,
		    bool *exit_now, bool *check)
{
	const char *file = NULL, *env_file, *name, *val;
	uint64_t lists_seen = 0;
	size_t nlen;
	int err;

	/* Pass 1: what changes the whole run, and the file to read first. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			bk__config_print_usage(stdout);
			*exit_now = true;
			return 0;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("ringcast %s\n", RINGCAST_VERSION);
			*exit_now = true;
			return 0;
		}
		if (!split_flag(a, &name, &nlen, &val))
			continue;
		if (flag_is(name, nlen, "check-config")) {
			*check = true;
		} else if (flag_is(name, nlen, "config")) {
			if (!val && i + 1 >= argc) {
				fprintf(stderr, "ringcast: --config: needs a file\n");
				return usage_error();
			}
			file = val ? val : argv[++i];
		} else if (!val && !is_bool_negation(name, nlen)) {
			i++;	/* skip the value, which may look like anything */
		}
	}
	env_file = getenv("RINGCAST_CONFIG");
	if (env_file && *env_file)
		file = env_file;
	if (file) {
		free(c->config_file);
		c->config_file = strdup(file);
		if (!c->config_file)
			return -ENOMEM;
		if (bk_config_load_file(c, file) < 0)
			return -EINVAL;
	}
	/* Pass 2: every key flag, in order. */
	for (int i = 1; i < argc; i++) {
		if (split_flag(argv[i], &name, &nlen, &val)) {
			if (flag_is(name, nlen, "check-config"))
				continue;
			if (flag_is(name, nlen, "config")) {
				i += val ? 0 : 1;
				continue;
			}
		}
		err = apply_flag(c, argc, argv, &i, &lists_seen);
		if (err)
			return err;
	}
	if (bk_config_load_env(c) < 0 || bk_config_validate(c) < 0)
		return -EINVAL;
	return 0;
}

/* Parses argv over c (which holds the defaults): the file named by
 * --config (or RINGCAST_CONFIG), then flags in order, then the environment,
 * then bk_config_validate. */
int bk_config_from_args(struct bk_config *c, int argc, char **argv,
			bool *exit_now)
{
	char buf[16384];
	bool check = false;
	long n;
	int err;

	*exit_now = false;
	err = load_all(c, argc, argv, exit_now, &check);
	if (!check || *exit_now)
		return err;
	*exit_now = true;
	/* The access file is part of the configuration: a start would refuse
	 * it, so the check does too (bk_auth_load prints each error). */
	if (!err && c->auth && !bk_auth_is_none(c->auth)) {
		struct bk_auth *a = bk_auth_load(c->auth);
		if (!a)
			err = -EINVAL;
		bk_auth_free(a);
	}
	if (err) {
		fprintf(stderr, "ringcast: configuration is not valid\n");
		return -EINVAL;
	}
	n = bk_config_dump(c, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	fwrite(buf, 1, (size_t)n, stdout);
	printf("\nconfig OK\n");
	fflush(stdout);
	return 0;
}
