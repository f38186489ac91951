/* Tests for proto/sse.c: data lines for every kind of line break (checked
 * by reading them back as the HTML standard's parser does), the length
 * promise, and ids: good ones, another epoch, every malformed shape, and an
 * id ending right at a guard page. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/sse.h"

TestSuite(sse);

/* Reads data lines back as EventSource does: each "data: " value, joined
 * with LF.  Lines end at LF only here (the writer emits LF). */
static size_t read_back(const char *p, size_t n, char *out)
{
	size_t o = 0, lines = 0;

	while (n) {
		const char *nl = memchr(p, '\n', n);
		cr_assert_not_null(nl, "a line without its end");
		cr_assert(nl - p >= 6 && memcmp(p, "data: ", 6) == 0, "not a data line: %.*s",
			  (int)(nl - p), p);
		if (lines++)
			out[o++] = '\n';
		memcpy(out + o, p + 6, (size_t)(nl - p) - 6);
		o += (size_t)(nl - p) - 6;
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	return o;
}

static void data_case(const char *in, const char *want_lines, const char *want_value)
{
	size_t n = strlen(in), cap = rc_sse_data_len((const uint8_t *)in, n);
	char *buf = malloc(cap + 1), value[256];
	char *end = rc_sse_write_data(buf, (const uint8_t *)in, n);

	cr_assert_eq((size_t)(end - buf), cap, "length promised %zu, written %zu", cap,
		     (size_t)(end - buf));
	buf[cap] = 0;
	cr_assert_str_eq(buf, want_lines);
	size_t vl = read_back(buf, cap, value);
	value[vl] = 0;
	cr_assert_str_eq(value, want_value);
	free(buf);
}

Test(sse, data_lines)
{
	data_case("", "data: \n", "");
	data_case("{\"a\":1}", "data: {\"a\":1}\n", "{\"a\":1}");
	data_case("a\nb", "data: a\ndata: b\n", "a\nb");
	data_case("a\r\nb", "data: a\ndata: b\n", "a\nb");
	data_case("a\rb", "data: a\ndata: b\n", "a\nb");
	data_case("a\r\r\nb\n", "data: a\ndata: \ndata: b\ndata: \n", "a\n\nb\n");
	data_case("\r", "data: \ndata: \n", "\n");
	data_case("\n\r", "data: \ndata: \ndata: \n", "\n\n");
}

Test(sse, data_len_is_exact_for_every_byte_pair)
{
	uint8_t in[3];
	char out[64];

	for (int a = 0; a < 256; a++) {
		for (int b = 0; b < 256; b++) {
			in[0] = (uint8_t)a, in[1] = (uint8_t)b, in[2] = '\r';
			size_t cap = rc_sse_data_len(in, 3);
			cr_assert_leq(cap, sizeof(out));
			cr_assert_eq((size_t)(rc_sse_write_data(out, in, 3) - out), cap);
		}
	}
}

static int parse(const char *id, unsigned n, uint64_t *pos, bool *has)
{
	return rc_sse_parse_id(id, strlen(id), "e0", 2, n, pos, has);
}

Test(sse, ids)
{
	uint64_t pos[4];
	bool has[4];

	cr_assert_eq(parse("e0/7", 1, pos, has), 1);
	cr_assert(has[0] && pos[0] == 7);
	cr_assert_eq(parse("e0/0,18446744073709551615,,3", 4, pos, has), 1);
	cr_assert(has[0] && pos[0] == 0 && has[1] && pos[1] == UINT64_MAX && !has[2] && has[3] &&
		  pos[3] == 3);
	cr_assert_eq(parse("e0/", 1, pos, has), 1, "one empty position");
	cr_assert_not(has[0]);
	cr_assert_eq(parse("ff/1,2", 2, pos, has), 0, "another epoch");
	cr_assert_eq(parse("/1", 1, pos, has), 0, "an empty epoch is another one");
	static const char *const bad[] = {
		"", "e0", "e01", "e0/1,2", "e0/1,", "e0/,", "e0/-1", "e0/+1", "e0/ 1", "e0/1 ",
		"e0/18446744073709551616", "e0/000000000000000000001", "e0/1/2", "e0/0x1", "e0/1;",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], 1, pos, has), -EINVAL, "'%s' accepted", bad[i]);
	cr_assert_eq(parse("e0/1", 0, pos, has), -EINVAL, "no positions wanted");
	cr_assert_eq(parse("e0/1,2,3", 2, pos, has), -EINVAL, "three for two");
	cr_assert_eq(parse("ff/1,2,3", 2, pos, has), -EINVAL, "malformed beats another epoch");
}

Test(sse, id_at_a_guard_page)
{
	long page = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	static const char *const ids[] = { "e0/12,34", "e0/12,", "e0/1234567", "e0" };
	uint64_t pos[2];
	bool has[2];

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(mprotect(m + page, (size_t)page, PROT_NONE), 0);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		size_t n = strlen(ids[i]);
		char *p = m + page - n;
		memcpy(p, ids[i], n);
		int want = i == 0 || i == 1 ? 1 : -EINVAL;
		cr_assert_eq(rc_sse_parse_id(p, n, "e0", 2, 2, pos, has), want, "%s", ids[i]);
	}
	munmap(m, (size_t)page * 2);
}
