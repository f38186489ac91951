/* ringcast-bench: command line and dispatch.  Every scenario is bounded in
 * connections and time, targets only the --url (and --source-addrs) given,
 * and ends by itself. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/rcbench/rcbench.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ringcast-bench SCENARIO --url ws[s]://HOST:PORT [options]\n"
"Scenarios:\n"
"  fanout     --subs S --topics T --pubs P --size B [--rate R] --duration D\n"
"             S subscribers over T topics, publisher p -> topic p %% T; without\n"
"             --rate each publisher keeps at most --window messages in flight\n"
"  echo       --conns N --size B --duration D: one request in flight per connection\n"
"  connect    --conns C --duration D [--path /sub/x]: open C, hold them idle\n"
"  broadcast  --subs S --size B [--rounds N]: one message to S idle subscribers\n"
"Options:\n"
"  --url ws://HOST:PORT   the broker (only this address and --pub-url are ever\n"
"                         contacted); wss:// makes subscriber, echo and connect\n"
"                         connections TLS\n"
"  --pub-url ws://HOST:PORT  where publishers connect, always plain (default: the\n"
"                         --url; required for fanout/broadcast with a wss:// --url):\n"
"                         over wss the measurement is the fanout to TLS subscribers\n"
"  --ca-file FILE         wss: trust the CAs in FILE instead of the system store\n"
"  --insecure             wss: no certificate check (self-signed test brokers)\n"
"  --warmup S             seconds before measuring (1)\n"
"  --json FILE            machine-readable results (\"-\" for stdout)\n"
"  --plot FILE.svg        latency CDF and deliveries over time\n"
"  --threads N            loops per worker process (1)\n"
"  --per-proc N           connections per worker process (%d; fd limit 20,000)\n"
"  --mode raw|json|sse    /sub + /pub, /ws JSON subscriptions, or Server-Sent\n"
"                         Events subscribers (GET /events/<topic>) (raw)\n"
"  --deflate              subscribers offer permessage-deflate\n"
"  --source-addrs A,B,..  bind connections round-robin to these addresses\n"
"                         (automatic 127.0.0.2.. beyond %d loopback connections)\n"
"  --server-pid PID       report the broker's CPU and RSS\n"
"  --window N             window mode: messages in flight per publisher (32)\n"
"  --concurrency N        handshakes in flight per thread (256)\n"
"  --connect-timeout S    give up waiting for connections after S (60)\n"
"  --topic-prefix P       topic names P0, P1, ... (bench)\n"
"  --pattern               fanout: subscribers use the pattern P<i>.*, publishers\n"
"                          publish to P<i>.x (the cost of matching beside exact)\n"
"  --quiet                no progress lines\n", RCB_PER_PROC, RCB_CONN_PER_ADDR);
}

/* Host and port of the authority at p (after "scheme://"); the port
 * defaults to dport. */
static int parse_authority(const char *p, uint16_t dport, char *host, size_t hcap,
			   uint16_t *port)
{
	const char *end = p + strcspn(p, "/?");
	const char *colon = memchr(p, ':', (size_t)(end - p));
	size_t hl = (size_t)((colon ? colon : end) - p);

	if (hl == 0 || hl >= hcap)
		return -EINVAL;
	memcpy(host, p, hl);
	host[hl] = 0;
	*port = dport;
	if (colon) {
		char *pe;
		long v = strtol(colon + 1, &pe, 10);
		if (v <= 0 || v > 65535 || pe != end)
			return -EINVAL;
		*port = (uint16_t)v;
	}
	return 0;
}

static int parse_url(struct rcb_opts *o, const char *url)
{
	bool tls = strncmp(url, "wss://", 6) == 0;

	if (!tls && strncmp(url, "ws://", 5) != 0) {
		fprintf(stderr, "ringcast-bench: --url wants ws:// or wss:// (got %s)\n", url);
		return -EINVAL;
	}
	snprintf(o->url, sizeof(o->url), "%s", url);
	o->scheme = tls ? "wss" : "ws";
	if (parse_authority(url + (tls ? 6 : 5), tls ? 443 : 80, o->host, sizeof(o->host),
			    &o->port) < 0) {
		fprintf(stderr, "ringcast-bench: bad host or port in --url %s\n", url);
		return -EINVAL;
	}
	return 0;
}

/* Publishers write hand-made frames on plain sockets: ws:// only. */
static int parse_pub_url(struct rcb_opts *o, const char *url)
{
	if (strncmp(url, "ws://", 5) != 0) {
		fprintf(stderr, "ringcast-bench: --pub-url wants ws:// (publishers stay "
			"plain; got %s)\n", url);
		return -EINVAL;
	}
	if (parse_authority(url + 5, 80, o->pub_host, sizeof(o->pub_host),
			    &o->pub_port) < 0) {
		fprintf(stderr, "ringcast-bench: bad host or port in --pub-url %s\n", url);
		return -EINVAL;
	}
	return 0;
}

static int parse_addrs(struct rcb_opts *o, const char *list)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");
		if (n == 0 || n >= sizeof(o->addrs[0]) || o->naddrs >= RCB_MAX_ADDRS)
			return -EINVAL;
		memcpy(o->addrs[o->naddrs], p, n);
		o->addrs[o->naddrs++][n] = 0;
		p += n + (p[n] == ',');
	}
	return 0;
}

/* More than RCB_CONN_PER_ADDR connections to one loopback destination run
 * out of ephemeral ports: spread them over 127.0.0.2, .3, ... */
static void auto_addrs(struct rcb_opts *o, unsigned total)
{
	if (o->naddrs || total <= RCB_CONN_PER_ADDR)
		return;
	if (strcmp(o->host, "127.0.0.1") != 0 && strcmp(o->host, "localhost") != 0)
		return;
	unsigned n = (total + RCB_CONN_PER_ADDR - 1) / RCB_CONN_PER_ADDR;
	for (unsigned i = 0; i < n && i < RCB_MAX_ADDRS; i++)
		snprintf(o->addrs[o->naddrs++], sizeof(o->addrs[0]), "127.0.0.%u", i + 2);
}

static unsigned long num(const char *s, const char *name, bool *ok)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == 0 || *end != 0) {
		fprintf(stderr, "ringcast-bench: --%s wants a number, got '%s'\n", name, s);
		*ok = false;
	}
	return v;
}

static double dnum(const char *s, const char *name, bool *ok)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == 0 || *end != 0 || v < 0) {
		fprintf(stderr, "ringcast-bench: --%s wants a non-negative number, got '%s'\n", name, s);
		*ok = false;
	}
	return v;
}

enum {
	O_URL = 256, O_SUBS, O_TOPICS, O_PUBS, O_SIZE, O_RATE, O_DURATION, O_WARMUP,
	O_JSON, O_PLOT, O_THREADS, O_MODE, O_DEFLATE, O_ADDRS, O_CONNS, O_PID, O_WINDOW,
	O_CONC, O_CTIMEOUT, O_PREFIX, O_QUIET, O_ROUNDS, O_PATH, O_PERPROC, O_HELP,
	O_PUBURL, O_CAFILE, O_INSECURE, O_PATTERN,
};

static const struct option longopts[] = {
	{ "url", 1, 0, O_URL }, { "subs", 1, 0, O_SUBS }, { "topics", 1, 0, O_TOPICS },
	{ "pubs", 1, 0, O_PUBS }, { "size", 1, 0, O_SIZE }, { "rate", 1, 0, O_RATE },
	{ "duration", 1, 0, O_DURATION }, { "warmup", 1, 0, O_WARMUP }, { "json", 1, 0, O_JSON },
	{ "plot", 1, 0, O_PLOT }, { "threads", 1, 0, O_THREADS }, { "mode", 1, 0, O_MODE },
	{ "deflate", 0, 0, O_DEFLATE }, { "source-addrs", 1, 0, O_ADDRS },
	{ "conns", 1, 0, O_CONNS }, { "server-pid", 1, 0, O_PID }, { "window", 1, 0, O_WINDOW },
	{ "concurrency", 1, 0, O_CONC }, { "connect-timeout", 1, 0, O_CTIMEOUT },
	{ "topic-prefix", 1, 0, O_PREFIX }, { "quiet", 0, 0, O_QUIET },
	{ "rounds", 1, 0, O_ROUNDS }, { "path", 1, 0, O_PATH }, { "per-proc", 1, 0, O_PERPROC },
	{ "pub-url", 1, 0, O_PUBURL }, { "ca-file", 1, 0, O_CAFILE },
	{ "insecure", 0, 0, O_INSECURE }, { "pattern", 0, 0, O_PATTERN },
	{ "help", 0, 0, O_HELP }, { 0, 0, 0, 0 },
};

static int parse(struct rcb_opts *o, int argc, char **argv)
{
	bool ok = true, have_url = false, have_pub = false;
	int c;

	while (ok && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_URL: ok = parse_url(o, optarg) == 0; have_url = ok; break;
		case O_SUBS: o->subs = (unsigned)num(optarg, "subs", &ok); break;
		case O_TOPICS: o->topics = (unsigned)num(optarg, "topics", &ok); break;
		case O_PUBS: o->pubs = (unsigned)num(optarg, "pubs", &ok); break;
		case O_CONNS: o->conns = (unsigned)num(optarg, "conns", &ok); break;
		case O_SIZE: o->size = num(optarg, "size", &ok); break;
		case O_RATE: o->rate = dnum(optarg, "rate", &ok); break;
		case O_DURATION: o->duration = dnum(optarg, "duration", &ok); break;
		case O_WARMUP: o->warmup = dnum(optarg, "warmup", &ok); break;
		case O_JSON: o->json_file = optarg; break;
		case O_PLOT: o->plot_file = optarg; break;
		case O_THREADS: o->threads = (unsigned)num(optarg, "threads", &ok); break;
		case O_PERPROC: o->per_proc = (unsigned)num(optarg, "per-proc", &ok); break;
		case O_MODE:
			ok = !strcmp(optarg, "raw") || !strcmp(optarg, "json") || !strcmp(optarg, "sse");
			o->sse = strcmp(optarg, "sse") == 0;
			o->json_mode = o->sse || strcmp(optarg, "json") == 0;
			if (!ok)
				fprintf(stderr, "ringcast-bench: --mode raw, json or sse\n");
			break;
		case O_DEFLATE: o->deflate = true; break;
		case O_ADDRS: ok = parse_addrs(o, optarg) == 0; break;
		case O_PID: o->server_pid = (pid_t)num(optarg, "server-pid", &ok); break;
		case O_WINDOW: o->window = (unsigned)num(optarg, "window", &ok); break;
		case O_CONC: o->concurrency = (unsigned)num(optarg, "concurrency", &ok); break;
		case O_CTIMEOUT: o->connect_timeout = dnum(optarg, "connect-timeout", &ok); break;
		case O_PREFIX: snprintf(o->topic_prefix, sizeof(o->topic_prefix), "%s", optarg); break;
		case O_QUIET: o->quiet = true; break;
		case O_ROUNDS: o->rounds = (unsigned)num(optarg, "rounds", &ok); break;
		case O_PATH: snprintf(o->path, sizeof(o->path), "%s", optarg); break;
		case O_PUBURL: ok = parse_pub_url(o, optarg) == 0; have_pub = ok; break;
		case O_CAFILE: o->ca_file = optarg; break;
		case O_INSECURE: o->insecure = true; break;
		case O_PATTERN: o->pattern = true; break;
		case O_HELP: case 'h': usage(stdout); exit(0);
		default: ok = false;
		}
	}
	if (!ok)
		return -EINVAL;
	if (!have_url) {
		fprintf(stderr, "ringcast-bench: --url ws://HOST:PORT is required\n");
		return -EINVAL;
	}
	if (!have_pub && strcmp(o->scheme, "wss") == 0 &&
	    (o->scenario == RCB_FANOUT || o->scenario == RCB_BROADCAST)) {
		fprintf(stderr, "ringcast-bench: --url wss:// needs --pub-url ws://HOST:PORT: "
			"publishers connect without TLS (give the broker's plain listener)\n");
		return -EINVAL;
	}
	if (!have_pub) {
		snprintf(o->pub_host, sizeof(o->pub_host), "%s", o->host);
		o->pub_port = o->port;
	}
	if (o->threads == 0 || o->threads > RCB_MAX_WORKERS || o->per_proc == 0 ||
	    o->per_proc > 19000 || o->concurrency == 0 || o->window == 0) {
		fprintf(stderr, "ringcast-bench: --threads 1..%d, --per-proc 1..19000, "
			"--concurrency and --window >= 1\n", RCB_MAX_WORKERS);
		return -EINVAL;
	}
	if (o->duration <= 0 || o->duration > 1000 || o->warmup > 100) {
		fprintf(stderr, "ringcast-bench: --duration (0, 1000] and --warmup <= 100 s\n");
		return -EINVAL;
	}
	size_t min = o->json_mode ? RCB_MIN_JSON : RCB_MIN_RAW;
	if (o->size < min || o->size > (16u << 20)) {
		fprintf(stderr, "ringcast-bench: --size %zu..16 MiB in this mode\n", min);
		return -EINVAL;
	}
	unsigned total = o->scenario == RCB_FANOUT ? o->subs + o->pubs :
			 o->scenario == RCB_BROADCAST ? o->subs + 1 : o->conns;
	if (total > RCB_MAX_WORKERS * 19000u / o->threads || total > 1000000) {
		fprintf(stderr, "ringcast-bench: too many connections (%u)\n", total);
		return -EINVAL;
	}
	auto_addrs(o, total);
	return 0;
}

int main(int argc, char **argv)
{
	struct rcb_opts o = {
		.subs = 1000, .topics = 1, .pubs = 1, .conns = 1000, .size = 64, .window = 32,
		.duration = 5, .warmup = 1, .connect_timeout = 60, .threads = 1,
		.per_proc = RCB_PER_PROC, .rounds = 5, .concurrency = 256,
		.topic_prefix = "bench", .path = "/sub/benchidle",
	};

	if (argc < 2 || argv[1][0] == '-') {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sc = argv[1];
	if (strcmp(sc, "fanout") == 0)
		o.scenario = RCB_FANOUT;
	else if (strcmp(sc, "echo") == 0)
		o.scenario = RCB_ECHO, o.size = 1024;
	else if (strcmp(sc, "connect") == 0)
		o.scenario = RCB_CONNECT;
	else if (strcmp(sc, "broadcast") == 0)
		o.scenario = RCB_BROADCAST;
	else {
		fprintf(stderr, "ringcast-bench: unknown scenario '%s'\n", sc);
		usage(stderr);
		return 2;
	}
	if (parse(&o, argc - 1, argv + 1) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	rc_log_set_level(RC_LOG_WARN);
	switch (o.scenario) {
	case RCB_FANOUT: return rcb_fanout(&o);
	case RCB_ECHO: return rcb_echo(&o);
	case RCB_CONNECT: return rcb_connect(&o);
	case RCB_BROADCAST: return rcb_broadcast(&o);
	}
	return 2;
}
