/* Server-Sent Events encoding and ids (see sse.h). */
#include <errno.h>
#include <string.h>

#include "proto/sse.h"

#define DATA "data: "

/* A line break at p[i]: LF, or a CR not followed by LF (a CRLF counts
 * once, at its LF). */
static bool line_break(const uint8_t *p, size_t len, size_t i)
{
	return p[i] == '\n' || (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n'));
}

size_t rc_sse_data_len(const uint8_t *p, size_t len)
{
	size_t n = sizeof(DATA) - 1 + 1;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
			continue; /* the LF makes the break */
		n += line_break(p, len, i) ? sizeof(DATA) : 1;
	}
	return n;
}

char *rc_sse_write_data(char *out, const uint8_t *p, size_t len)
{
	memcpy(out, DATA, sizeof(DATA) - 1);
	out += sizeof(DATA) - 1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
			continue;
		if (line_break(p, len, i)) {
			memcpy(out, "\n" DATA, sizeof(DATA));
			out += sizeof(DATA);
		} else {
			*out++ = (char)p[i];
		}
	}
	*out++ = '\n';
	return out;
}

/* Decimal digits that fit 64 bits (no sign, no blank). */
static bool parse_u64(const char *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(p[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int rc_sse_parse_id(const char *p, size_t len, const char *epoch, size_t elen,
		    unsigned n, uint64_t *pos, bool *has)
{
	const char *end = p + len, *slash = memchr(p, '/', len), *q;

	if (!slash || n == 0)
		return -EINVAL;
	q = slash + 1;
	for (unsigned i = 0; i < n; i++) {
		const char *e = memchr(q, ',', (size_t)(end - q));

		if (!e)
			e = end;
		if ((e == end) != (i + 1 == n))
			return -EINVAL; /* fewer or more positions */
		has[i] = e > q;
		if (has[i] && !parse_u64(q, (size_t)(e - q), &pos[i]))
			return -EINVAL;
		q = e + 1;
	}
	return (size_t)(slash - p) == elen && memcmp(p, epoch, elen) == 0;
}
