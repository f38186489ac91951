/* Logging: one line per event to stderr, as text ("<time> <level> <msg>")
 * or as one JSON object per line, with a rate limit so that a flood (a
 * scan, a storm of refused handshakes) cannot fill the disk: a token bucket
 * of `rate` lines per second with a burst of ten seconds' worth, shared by
 * all threads; what it holds back is counted and reported in one line when
 * lines flow again.  Never called on the data path. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "proto/json.h"

/* level and format change on SIGHUP (the signal thread) while every thread
 * reads them: relaxed atomics, a line at the old setting is harmless. */
static struct {
	pthread_mutex_t lock;
	enum rc_log_level level;
	enum rc_log_format format;
	unsigned rate;       /* lines per second; 0: unlimited */
	double tokens;
	uint64_t last_ns;
	uint64_t suppressed; /* lines held back since the last report */
} lg = { PTHREAD_MUTEX_INITIALIZER, RC_LOG_INFO, RC_LOG_TEXT, 200, 2000, 0, 0 };

/* Sets the most verbose level that is printed. */
void rc_log_set_level(enum rc_log_level lvl)
{
	__atomic_store_n(&lg.level, lvl, __ATOMIC_RELAXED);
}

/* Text lines or JSON objects (see rc.h). */
void rc_log_set_format(enum rc_log_format f)
{
	__atomic_store_n(&lg.format, f, __ATOMIC_RELAXED);
}

/* Lines per second at most, 0 for no limit (see rc.h). */
void rc_log_set_rate(unsigned per_second)
{
	pthread_mutex_lock(&lg.lock);
	lg.rate = per_second;
	lg.tokens = 10.0 * per_second;
	pthread_mutex_unlock(&lg.lock);
}

/* Whether a line at lvl would be printed (skip formatting when not). */
bool rc_log_enabled(enum rc_log_level lvl)
{
	return lvl <= __atomic_load_n(&lg.level, __ATOMIC_RELAXED);
}

/* Takes a token; *held gets the count of lines held back before this one
 * (to report) when it may be printed.  Returns false to hold it back. */
static bool admit(uint64_t *held)
{
	uint64_t now;
	bool ok;

	now = rc_now_ns();
	pthread_mutex_lock(&lg.lock);
	if (lg.rate) {
		double burst = 10.0 * lg.rate;
		lg.tokens += (double)(now - lg.last_ns) / 1e9 * lg.rate;
		if (lg.tokens > burst || !lg.last_ns)
			lg.tokens = burst;
	}
	lg.last_ns = now;
	ok = !lg.rate || lg.tokens >= 1.0;
	if (ok) {
		lg.tokens -= lg.rate ? 1.0 : 0.0;
		*held = lg.suppressed;
		lg.suppressed = 0;
	} else {
		lg.suppressed++;
	}
	pthread_mutex_unlock(&lg.lock);
	return ok;
}

/* See rc.h. */
const char *rc_log_escape(char *out, size_t cap, const void *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *s = p;
	size_t o = 0;

	if (!cap)
		return out;
	for (size_t i = 0; i < len; i++) {
		bool plain = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\';
		if (o + (plain ? 1 : 4) + 4 > cap) {
			if (o + 4 <= cap)
				memcpy(out + o, "...", 3), o += 3;
			break;
		}
		if (plain) {
			out[o++] = (char)s[i];
		} else {
			out[o++] = '\\', out[o++] = 'x';
			out[o++] = hex[s[i] >> 4], out[o++] = hex[s[i] & 15];
		}
	}
	out[o] = 0;
	return out;
}

static void emit(enum rc_log_level lvl, const char *msg)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char line[2400]; /* the prefix and a 1023-byte message, JSON-escaped */
	struct timespec ts;
	struct tm tm;
	bool json = __atomic_load_n(&lg.format, __ATOMIC_RELAXED) == RC_LOG_JSON;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), json
		     ? "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":"
		     : "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000, names[lvl]);
	if (json) {
		ssize_t m = rc_json_write_string(line + n, sizeof(line) - (size_t)n - 3, msg,
						 strlen(msg));
		n += m > 0 ? (int)m : snprintf(line + n, 3, "\"\"");
		line[n++] = '}';
	} else {
		n += snprintf(line + n, sizeof(line) - (size_t)n - 1, "%s", msg);
		if (n > (int)sizeof(line) - 2)
			n = (int)sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* One write per line: lines from several threads never interleave. */
	(void)!write(2, line, (size_t)n);
}

/* One line to stderr (see rc.h). */
void rc_log(enum rc_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	uint64_t held = 0;
	va_list ap;

	if (!rc_log_enabled(lvl) || !admit(&held))
		return;
	if (held) {
		snprintf(msg, sizeof(msg), "%llu log lines suppressed (over %u per second)",
			 (unsigned long long)held, lg.rate);
		emit(RC_LOG_WARN, msg);
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(lvl, msg);
}
