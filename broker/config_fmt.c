/* The broker's configuration as text: the INI dump (--check-config) and the
 * --help listing, both generated from the key table in config.c so every
 * key shows up in each with its current or default value. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "broker/config_internal.h"
#include "broker/namespace.h"
#include "core/rc.h"

static void fmt_size(uint64_t v, char *buf, size_t cap)
{
	static const struct { uint64_t m; char s; } u[] = {
		{ TIB, 'T' }, { GIB, 'G' }, { MIB, 'M' }, { KIB, 'K' },
	};

	for (size_t i = 0; i < 4; i++) {
		if (v && v % u[i].m == 0) {
			snprintf(buf, cap, "%llu%c", (unsigned long long)(v / u[i].m), u[i].s);
			return;
		}
	}
	snprintf(buf, cap, "%llu", (unsigned long long)v);
}

static void fmt_ms(uint64_t ms, char *buf, size_t cap)
{
	int n;

	if (ms % 1000 == 0) {
		snprintf(buf, cap, "%llu", (unsigned long long)(ms / 1000));
		return;
	}
	n = snprintf(buf, cap, "%llu.%03llu", (unsigned long long)(ms / 1000),
		     (unsigned long long)(ms % 1000));
	while (n > 0 && (size_t)n < cap && buf[n - 1] == '0')
		buf[--n] = '\0';
}

/* Shortest %g form that reads back as the same double, so the dump
 * round-trips without printing 0.10000000000000001 for 0.1. */
static void fmt_rate(double d, char *buf, size_t cap)
{
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

static void fmt_value(const struct bk_config *c, const struct key *k, char *buf,
		      size_t cap)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	const char *field = (const char *)c + k->off;

	switch (k->kind) {
	case K_LIST: {
		char *const *items = (char *const *)field;
		unsigned n = *(const unsigned *)((const char *)c + k->count_off);

		buf[0] = '\0';
		for (unsigned i = 0; i < n; i++) {
			size_t len = strlen(buf);

			snprintf(buf + len, cap - len, "%s%s", i ? "," : "", items[i]);
		}
		break;
	}
	case K_PATH:
	case K_STR:
	case K_ORIGINS:
	case K_TOPICS:
		snprintf(buf, cap, "%s", *(char *const *)field ? *(char *const *)field : "");
		break;
	case K_UINT:
		snprintf(buf, cap, "%u", *(const unsigned *)field);
		break;
	case K_INT:
		snprintf(buf, cap, "%d", *(const int *)field);
		break;
	case K_U64:
		snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)field);
		break;
	case K_SIZE:
		fmt_size(*(const uint64_t *)field, buf, cap);
		break;
	case K_MS:
		fmt_ms(*(const unsigned *)field, buf, cap);
		break;
	case K_MS64:
		fmt_ms(*(const uint64_t *)field, buf, cap);
		break;
	case K_BOOL:
		snprintf(buf, cap, "%s", *(const bool *)field ? "on" : "off");
		break;
	case K_LEVEL: {
		int l = *(const int *)field;

		snprintf(buf, cap, "%s", l >= 0 && l <= 3 ? levels[l] : "info");
		break;
	}
	case K_LOGFMT:
		snprintf(buf, cap, "%s", *(const int *)field == 1 /* RC_LOG_JSON */ ? "json" : "text");
		break;
	case K_POLICY:
		snprintf(buf, cap, "%s", c->slow_consumer_policy == BK_SLOW_DROP ?
			 "drop" : "close");
		break;
	case K_IOBACKEND:
		snprintf(buf, cap, "%s", c->io_backend == RC_IO_URING ? "io_uring" :
			 c->io_backend == RC_IO_EPOLL ? "epoll" : "auto");
		break;
	case K_RATE:
		fmt_rate(*(const double *)field, buf, cap);
		break;
	}
}

/* Appends to out; *len keeps counting past cap so overflow is detected once
 * at the end. */
static void put(char *out, size_t cap, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void put(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*len < cap ? out + *len : NULL, *len < cap ? cap - *len : 0,
		      fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n;
}

/* Writes the effective configuration as INI text, one listen line per
 * address; returns the length written or -ENOSPC. */
long bk_config_dump(const struct bk_config *c, char *out, size_t cap)
{
	struct bk_config *mc = (struct bk_config *)c; /* only read through */
	char val[600];
	size_t len = 0;
	const char *section = NULL;

	put(out, cap, &len, "; ringcast %s effective configuration\n", RINGCAST_VERSION);
	if (c->config_file)
		put(out, cap, &len, "; config file: %s\n", c->config_file);
	for (size_t i = 0; i < bk__config_nkeys; i++) {
		const struct key *k = &bk__config_keys[i];

		if (!section || strcmp(section, k->section) != 0) {
			section = k->section;
			put(out, cap, &len, "\n[%s]\n", section);
		}
		/* One line per list item; an empty list still gets its line,
		 * so every key appears (and reads back as empty). */
		if (k->kind == K_LIST && *bk__config_list_count(mc, k)) {
			char **items = bk__config_list_items(mc, k);
			unsigned n = *bk__config_list_count(mc, k);

			for (unsigned j = 0; j < n; j++)
				put(out, cap, &len, "%s = %s\n", k->name, items[j]);
			continue;
		}
		fmt_value(c, k, val, sizeof(val));
		put(out, cap, &len, "%s = %s\n", k->name, val);
	}
	if (len < cap) {
		long n = bk_ns_dump(c, out + len, cap - len);
		len = n < 0 ? cap : len + (size_t)n;
	}
	if (len >= cap)
		return -ENOSPC;
	return (long)len;
}

static const char *metavar(enum kind kind)
{
	switch (kind) {
	case K_LIST: return "HOST:PORT";
	case K_PATH: return "FILE";
	case K_STR: return "TEXT";
	case K_ORIGINS: return "ORIGINS";
	case K_TOPICS: return "TOPICS";
	case K_SIZE: return "SIZE";
	case K_MS: case K_MS64: return "SECONDS";
	case K_BOOL: return "on|off";
	case K_LEVEL: return "LEVEL";
	case K_LOGFMT: return "text|json";
	case K_POLICY: return "close|drop";
	case K_IOBACKEND: return "auto|io_uring|epoll";
	case K_RATE: return "RATE";
	default: return "N";
	}
}

/* Prints --help: every key of the table with its flag, section, help line
 * and default. */
void bk__config_print_usage(FILE *f)
{
	struct bk_config d;
	char flag[64], val[600];

	bk_config_defaults(&d);
	fprintf(f,
		"Usage: ringcast [--config FILE] [--listen HOST:PORT]... [--KEY VALUE]...\n"
		"A WebSocket pub/sub broker.  Settings come from the defaults, then the\n"
		"file, then flags, then RINGCAST_<KEY> environment variables.\n\n"
		"  --config FILE                          INI file (RINGCAST_CONFIG overrides)\n"
		"  --check-config                         validate, print the effective config, exit\n"
		"  --help, -h                             this text\n"
		"  --version, -V                          print the version\n\n"
		"Keys: --key VALUE, --key=VALUE (dashes or underscores), --no-KEY for\n"
		"on/off keys, RINGCAST_KEY, or 'key = value' in the file's [section]:\n");
	for (size_t i = 0; i < bk__config_nkeys; i++) {
		const struct key *k = &bk__config_keys[i];
		size_t j = 0;

		for (const char *p = k->name; *p; p++)
			flag[j++] = *p == '_' ? '-' : *p;
		snprintf(flag + j, sizeof(flag) - j, " %s", metavar(k->kind));
		fmt_value(&d, k, val, sizeof(val));
		fprintf(f, "  --%-36s [%s] %s (default %s)\n", flag, k->section,
			k->help, val[0] ? val : "none");
	}
	bk_config_free(&d);
	fprintf(f, "\nSizes take K/M/G/T (binary); durations are seconds (0.5, or 500ms).\n"
		"Every key is documented in deploy/ringcast.ini.\n");
}
