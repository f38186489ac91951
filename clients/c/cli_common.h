/* What the command-line tools (ringcast-pub, ringcast-sub) share: their exit
 * codes, the mapping from -errno to them, the common tail of the usage text
 * and the checks of arguments they both take.  It serves the tools only, so
 * it is header-only and nothing of it lands in libringcast.a. */
#ifndef RC_CLIENTS_C_CLI_COMMON_H
#define RC_CLIENTS_C_CLI_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"

/* Exit status of every tool (documented in each tool's usage). */
enum { EX_OK, EX_ERR, EX_USAGE, EX_TIMEOUT, EX_URL, EX_CONN, EX_TOPIC, EX_SERVER };

/* The end of every tool's usage text: the URL forms and the exit codes. */
#define RC__CLI_USAGE_TAIL                                                                 \
	"  URL is ws[s]://HOST[:PORT] (path /ws is used) or ws[s]://HOST:PORT/PATH\n"      \
	"exit: 0 ok, 2 usage, 3 timeout, 4 bad URL, 5 connection failed or lost,\n"        \
	"      6 bad topic, 7 server error, 1 other\n"

/* The exit status for a client library error (-errno). */
static inline int rc__cli_exit_for(int err)
{
	switch (err) {
	case -EINVAL: return EX_TOPIC;
	case -EPROTONOSUPPORT: return EX_URL;
	case -ETIMEDOUT: return EX_TIMEOUT;
	case -ECONNREFUSED: case -EHOSTUNREACH: case -ECONNABORTED: case -ECONNRESET:
	case -ENOTCONN: return EX_CONN;
	case -EPROTO: case -EMLINK: case -EAGAIN: case -EIO: return EX_SERVER;
	default: return EX_ERR;
	}
}

/* rc_pubsub_open_blocking returned NULL: prints err (what it wrote) and
 * returns the exit status for errno, which it set.  At open, EINVAL is the
 * URL, not a topic. */
static inline int rc__cli_open_failed(const char *tool, const char *err)
{
	int e = errno;

	fprintf(stderr, "%s: %s\n", tool, err);
	return e == EINVAL || e == EPROTONOSUPPORT ? EX_URL : rc__cli_exit_for(-e);
}

/* Whether topic is one the broker accepts; if not, says so on stderr. */
static inline bool rc__cli_topic_ok(const char *tool, const char *topic)
{
	if (rc_topic_valid((const uint8_t *)topic, strlen(topic)))
		return true;
	fprintf(stderr, "%s: bad topic '%s' (1-255 bytes of UTF-8, no spaces or control "
		"characters)\n", tool, topic);
	return false;
}

/* Parses a --timeout value: decimal seconds, 0 up to a year.  Returns
 * false for anything else (trailing junk, negative, NaN). */
static inline bool rc__cli_seconds(const char *arg, double *s)
{
	char *end;

	*s = strtod(arg, &end);
	return !*end && *arg && *s >= 0 && *s < 86400 * 365;
}

#endif
