/* libFuzzer harness for proto/sse.c: any input is read as an event id of
 * 1 to 8 positions (the first byte says how many), which must never read
 * past the input nor report positions that are not in it; and it is
 * written as data lines, which must take exactly the promised length,
 * hold no bare CR, and read back (joined with LF) to the input with every
 * line break as LF. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t pos[8];
	bool has[8];
	unsigned n = size ? (unsigned)(data[0] % 8) + 1 : 1;
	const char *id = size ? (const char *)data + 1 : "";
	int r = rc_sse_parse_id(id, size ? size - 1 : 0, "e0", 2, n, pos, has);

	if (r != 0 && r != 1 && r != -EINVAL)
		abort();
	if (r == 1 && (size < 4 || memcmp(id, "e0/", 3) != 0))
		abort();

	size_t cap = rc_sse_data_len(data, size);
	char *out = malloc(cap), *back = malloc(size + 1);
	size_t b = 0, i = 0, lines = 0;

	if (!out || !back)
		abort();
	if ((size_t)(rc_sse_write_data(out, data, size) - out) != cap)
		abort();
	/* Read it back: "data: " + value, lines ending in LF. */
	while (i < cap) {
		if (cap - i < 7 || memcmp(out + i, "data: ", 6) != 0)
			abort();
		i += 6;
		if (lines++)
			back[b++] = '\n';
		while (out[i] != '\n') {
			if (out[i] == '\r')
				abort();
			back[b++] = out[i++];
		}
		i++;
	}
	for (size_t k = 0, j = 0; k < size; k++) {
		if (data[k] == '\r' && k + 1 < size && data[k + 1] == '\n')
			continue;
		char want = data[k] == '\r' ? '\n' : (char)data[k];
		if (j >= b || back[j++] != want)
			abort();
		if (k + 1 == size && j != b)
			abort();
	}
	if (size == 0 && b != 0)
		abort();
	free(out);
	free(back);
	return 0;
}
