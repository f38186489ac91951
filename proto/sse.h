/* Server-Sent Events (the HTML standard's text/event-stream), sans I/O:
 * writing a data field whose value may hold line breaks, and reading back
 * the event ids the broker writes, "<epoch>/<pos>[,<pos>...]" (one position
 * per topic of a stream, broker/PROTOCOL.md "Server-Sent Events"). */
#ifndef RC_PROTO_SSE_H
#define RC_PROTO_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes rc_sse_write_data writes for the value p[0..len). */
size_t rc_sse_data_len(const uint8_t *p, size_t len);

/* Writes the value p[0..len) as "data: ...\n" lines into out, which has
 * room for rc_sse_data_len(p, len) bytes: each line break in it (CR, LF or
 * CRLF, all of which end a line for a reader) starts a new "data: " line,
 * so a reader, which joins data lines with LF, gets the value back with
 * every line break as LF.  Returns the end of what was written. */
char *rc_sse_write_data(char *out, const uint8_t *p, size_t len);

/* Reads an id "<epoch>/<pos>,...,<pos>" of exactly n (>= 1) positions,
 * each decimal digits up to 2^64 - 1 or empty (has[i] false: no position),
 * into pos[n] and has[n].  Returns 1 when the id's epoch is
 * epoch[0..elen), 0 when it is another one (its numbers mean nothing
 * here), or -EINVAL when the text is not such an id (no '/', another
 * number of positions, a bad position).  Linear in len; on 0 and -EINVAL
 * pos and has hold nothing useful. */
int rc_sse_parse_id(const char *p, size_t len, const char *epoch, size_t elen,
		    unsigned n, uint64_t *pos, bool *has);

#endif
