/* Micro-benchmark harness: option parsing, payloads, the calibrated timing
 * loop and the output line.  Allocation counts come from the counting
 * allocator in support/alloc_count.c, linked into this binary by
 * bench/micro/alloc_count_link.c. */
#include "bench/micro/harness.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/rc.h"
#include "support/alloc_count.h"

#define GITHUB_JSON_LEN 2263
#define MAX_FILTERS 32

static struct {
	double target_s;  /* wall time of one measurement */
	int reps;         /* measurements per benchmark; the median is shown */
	const char *filters[MAX_FILTERS];
	int nfilters;
	int matched;
	int failed;
	uint8_t json_1k[1024];
	uint8_t utf8_1k[1024];
	uint8_t *github;
	size_t github_len;
	struct rc_bench_payload p_json_1k, p_utf8_1k, p_github;
} g = { .target_s = 0.5, .reps = 5 };

static double now_s(void)
{
	return (double)rc_now_ns() * 1e-9;
}

/* A JSON array of small event records, closed by one padding record so the
 * whole text is exactly sizeof(g.json_1k) bytes and still valid JSON. */
static void make_json_1k(void)
{
	static const char tail[] = ",{\"pad\":\"\"}]";
	const size_t cap = sizeof(g.json_1k);
	char rec[192];
	size_t n = 1;
	uint32_t x = 12345;
	int i;

	g.json_1k[0] = '[';
	for (i = 0;; i++) {
		int len;

		x = x * 1103515245u + 12345u; /* fixed LCG: same text every run */
		len = snprintf(rec, sizeof(rec),
			       "%s{\"id\":%d,\"user\":\"user_%04u\",\"event\":\"price_update\","
			       "\"symbol\":\"ACME\",\"price\":%u.%02u,\"ts\":%u%03u}",
			       i ? "," : "", i + 1, (x >> 8) % 10000, (x >> 4) % 900 + 100,
			       x % 100, 1700000000u + (x >> 12) % 100000, x % 1000);
		if (n + (size_t)len + sizeof(tail) - 1 > cap)
			break;
		memcpy(g.json_1k + n, rec, (size_t)len);
		n += (size_t)len;
	}
	/* tail without its "\"}]" end, then filler, then the end */
	memcpy(g.json_1k + n, tail, 9);
	n += 9;
	while (n < cap - 3)
		g.json_1k[n++] = 'x';
	memcpy(g.json_1k + n, "\"}]", 3);
}

/* Mixed scripts, 1- to 4-byte sequences; whole code points are repeated
 * until the next one would not fit, then ASCII spaces fill up to 1 KiB. */
static void make_utf8_1k(void)
{
	static const char text[] =
		"Grüße aus Köln, ça va? Καλημέρα κόσμε. Привет, мир! "
		"こんにちは世界。你好，世界。안녕하세요 🎉🚀✨ ";
	const size_t cap = sizeof(g.utf8_1k), tlen = sizeof(text) - 1;
	size_t n = 0, i = 0;

	for (;;) {
		uint8_t c = (uint8_t)text[i % tlen];
		size_t cl = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;

		if (n + cl > cap)
			break;
		memcpy(g.utf8_1k + n, text + i % tlen, cl);
		n += cl;
		i += cl;
	}
	memset(g.utf8_1k + n, ' ', cap - n);
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;
	int err = 0;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		err = -errno;
		goto err_close;
	}
	buf = malloc((size_t)size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto err_close;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		err = -EIO;
		goto err_free;
	}
	fclose(f);
	*out = buf;
	*len = (size_t)size;
	return 0;

err_free:
	free(buf);
err_close:
	fclose(f);
	return err;
}

/* The "github" payload: --github=PATH or RC_BENCH_GITHUB_JSON if given (then
 * only there), else bench/data/api_index.json (2,263 bytes, an API index
 * document of the same size and shape as the github.json GWS's benchmarks
 * use, made for this repository) from the working directory (the repo root)
 * or from the repo the binary was built in (build/ or build/san/ below it). */
static int load_github(const char *arg)
{
	char exe[PATH_MAX], cand[3][PATH_MAX + 64], *dir;
	const char *env = getenv("RC_BENCH_GITHUB_JSON");
	const char *given = arg ? arg : (env && *env ? env : NULL);
	ssize_t el;
	int nc = 0, i, err = -ENOENT;

	if (given) {
		snprintf(cand[nc++], sizeof(cand[0]), "%s", given);
	} else {
		snprintf(cand[nc++], sizeof(cand[0]), "bench/data/api_index.json");
		el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (el > 0) {
			exe[el] = '\0';
			dir = dirname(exe);
			snprintf(cand[nc++], sizeof(cand[0]), "%s/../bench/data/api_index.json", dir);
			snprintf(cand[nc++], sizeof(cand[0]), "%s/../../bench/data/api_index.json", dir);
		}
	}
	for (i = 0; i < nc; i++) {
		err = read_file(cand[i], &g.github, &g.github_len);
		if (err == 0)
			break;
	}
	if (err) {
		fprintf(stderr, "bench-micro: cannot read the github payload (%s); tried:\n",
			strerror(-err));
		for (i = 0; i < nc; i++)
			fprintf(stderr, "  %s\n", cand[i]);
		fprintf(stderr, "pass --github=PATH or set RC_BENCH_GITHUB_JSON\n");
		return err;
	}
	if (g.github_len != GITHUB_JSON_LEN)
		fprintf(stderr, "bench-micro: warning: %s is %zu bytes, GWS's is %d\n",
			cand[i], g.github_len, GITHUB_JSON_LEN);
	return 0;
}

static void print_banner(void)
{
	char line[512], model[256] = "unknown";
	char family[32] = "?", modelno[32] = "?", mhz[32] = "?";
	int cpus = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ':');

		if (!v)
			continue;
		v += strspn(v + 1, " \t") + 1;
		v[strcspn(v, "\n")] = '\0';
		if (!strncmp(line, "processor", 9))
			cpus++;
		else if (cpus == 1 && !strncmp(line, "model name", 10))
			snprintf(model, sizeof(model), "%s", v);
		else if (cpus == 1 && !strncmp(line, "cpu family", 10))
			snprintf(family, sizeof(family), "%s", v);
		else if (cpus == 1 && !strncmp(line, "model\t", 6))
			snprintf(modelno, sizeof(modelno), "%s", v);
		else if (cpus == 1 && !strncmp(line, "cpu MHz", 7))
			snprintf(mhz, sizeof(mhz), "%s", v);
	}
	if (f)
		fclose(f);
	printf("cpu: %s (family %s model %s), %d logical CPUs, %s MHz\n",
	       model, family, modelno, cpus, mhz);
	printf("compiler: %s%s\n", __VERSION__,
#ifdef __OPTIMIZE__
	       ", optimized"
#else
	       ", NOT optimized"
#endif
	);
	printf("each: %.2f s x %d runs, median shown; github payload %zu bytes\n\n",
	       g.target_s, g.reps, g.github_len);
	printf("%-26s %12s %12s %10s\n", "benchmark", "ns/op", "allocs/op", "MB/s");
}

static void usage(void)
{
	printf("usage: bench-micro [--time=SECONDS] [--reps=N] [--github=PATH] [FILTER...]\n"
	       "Runs every benchmark whose name contains one of the FILTERs (all\n"
	       "without a filter) and prints ns/op, allocations/op and MB/s.\n");
}

/* See harness.h. */
int rc_bench_init(int argc, char **argv)
{
	const char *github = NULL;
	int i, err;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "--time=", 7)) {
			g.target_s = atof(a + 7);
		} else if (!strncmp(a, "--reps=", 7)) {
			g.reps = atoi(a + 7);
		} else if (!strncmp(a, "--github=", 9)) {
			github = a + 9;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			exit(0);
		} else if (a[0] == '-') {
			fprintf(stderr, "bench-micro: unknown option %s\n", a);
			usage();
			return -EINVAL;
		} else if (g.nfilters < MAX_FILTERS) {
			g.filters[g.nfilters++] = a;
		}
	}
	if (g.target_s <= 0 || g.reps < 1 || g.reps > 99) {
		fprintf(stderr, "bench-micro: bad --time or --reps\n");
		return -EINVAL;
	}
	if (!rc_alloc_count_active()) {
		fprintf(stderr, "bench-micro: allocation counter not interposed\n");
		return -ENOSYS;
	}
	err = load_github(github);
	if (err)
		return err;
	make_json_1k();
	make_utf8_1k();
	g.p_json_1k = (struct rc_bench_payload){ "1k", g.json_1k, sizeof(g.json_1k) };
	g.p_utf8_1k = (struct rc_bench_payload){ "1k_multi", g.utf8_1k, sizeof(g.utf8_1k) };
	g.p_github = (struct rc_bench_payload){ "github", g.github, g.github_len };
	print_banner();
	return 0;
}

/* See harness.h. */
bool rc_bench_selected(const char *name)
{
	int i;

	if (g.nfilters == 0)
		return true;
	for (i = 0; i < g.nfilters; i++)
		if (strstr(name, g.filters[i]))
			return true;
	return false;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Grows n until one run takes 10 ms, then scales it to the target time. */
static int calibrate(rc_bench_cb fn, void *arg, uint64_t *n_out)
{
	uint64_t n = 1;
	double t;
	int err;

	for (;;) {
		double t0 = now_s();

		err = fn(arg, n);
		t = now_s() - t0;
		if (err)
			return err;
		if (t >= 0.01 || n >= (1ull << 40))
			break;
		n *= t < 0.0001 ? 100 : 4;
	}
	*n_out = (uint64_t)((double)n * g.target_s / t) + 1;
	return 0;
}

/* See harness.h. */
void rc_bench_run(const char *name, size_t bytes_per_op, rc_bench_cb fn, void *arg)
{
	double ns[99], med;
	uint64_t n, allocs = 0, ops = 0;
	char apo[32];
	int r, err;

	if (!rc_bench_selected(name))
		return;
	g.matched++;
	err = calibrate(fn, arg, &n);
	for (r = 0; !err && r < g.reps; r++) {
		uint64_t a0 = rc_alloc_count_thread();
		double t0 = now_s();

		err = fn(arg, n);
		ns[r] = (now_s() - t0) * 1e9 / (double)n;
		allocs += rc_alloc_count_thread() - a0;
		ops += n;
	}
	if (err) {
		g.matched--;
		rc_bench_fail(name, err);
		return;
	}
	qsort(ns, (size_t)g.reps, sizeof(ns[0]), cmp_double);
	med = g.reps % 2 ? ns[g.reps / 2] : (ns[g.reps / 2 - 1] + ns[g.reps / 2]) / 2;
	if (allocs == 0)
		snprintf(apo, sizeof(apo), "0");
	else
		snprintf(apo, sizeof(apo), "%.4f", (double)allocs / (double)ops);
	printf("%-26s %12.1f %12s %10.1f\n", name, med, apo,
	       (double)bytes_per_op * 1e3 / med);
	fflush(stdout);
}

/* See harness.h. */
void rc_bench_fail(const char *name, int err)
{
	if (!rc_bench_selected(name))
		return;
	g.matched++;
	g.failed++;
	printf("%-26s FAILED: %s\n", name, strerror(err < 0 ? -err : err));
	fflush(stdout);
}

/* See harness.h. */
const struct rc_bench_payload *rc_bench_json_1k(void)
{
	return &g.p_json_1k;
}

/* See harness.h. */
const struct rc_bench_payload *rc_bench_github(void)
{
	return &g.p_github;
}

/* See harness.h. */
const struct rc_bench_payload *rc_bench_utf8_1k(void)
{
	return &g.p_utf8_1k;
}

/* See harness.h. */
int rc_bench_finish(void)
{
	if (g.matched == 0) {
		fprintf(stderr, "bench-micro: no benchmark matches the filter\n");
		return 1;
	}
	free(g.github);
	return g.failed ? 1 : 0;
}
