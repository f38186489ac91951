/* ringcast-pub [OPTIONS] URL TOPIC [MESSAGE]: publishes MESSAGE, or each
 * line of stdin (without its newline) when there is no MESSAGE.
 *
 * URL: ws://HOST[:PORT] (the tool uses the path /ws) or ws://HOST:PORT/PATH;
 * with --http also http://HOST:PORT.  wss://HOST[:PORT] for TLS.
 * Over WebSocket (JSON mode) a text that is one valid JSON value is
 * published verbatim and any other text as a JSON string (see
 * ringcast_client.h); the tool waits for every ack before it exits, so
 * exit 0 means every message was published.
 *   --http        POST /publish/<topic> instead (the text is published as is)
 *   --binary      publish binary messages; JSON mode cannot carry them, so
 *                 this implies --http; without MESSAGE all of stdin is one
 *                 message
 *   --rate N      at most N messages per second
 *   --timeout S   give up (exit 3) when an answer takes longer (10 s)
 *   --ca-file F   wss: trust the CAs in F instead of the system store
 *   --insecure    wss: do not check the certificate (tests only)
 *   --socks5 URL  connect through socks5://[user:pass@]host:port (WebSocket
 *                 only)
 *   --token T     Authorization: Bearer T: a connection token (JWT) or, for
 *                 a backend, an API key (needed by --http when the broker
 *                 has access control); also from RINGCAST_TOKEN
 * Exit status: 0 ok, 1 other error, 2 usage, 3 timeout, 4 bad URL,
 * 5 connection failed or lost, 6 bad topic, 7 other server error. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/c/cli_common.h"
#include "clients/c/client_internal.h" /* rc__url_parse for --http */

struct pub {
	const char *url, *topic;
	struct rc_pubsub *ps; /* NULL with --http */
	const char *token;    /* --token, or NULL */
	bool binary;
	double rate;
	int timeout_ms;
	struct timespec next; /* --rate: when the next message may go */
	char err[600];
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ringcast-pub [--http] [--binary] [--rate N] [--timeout S] "
		   "[--ca-file F] [--insecure] [--socks5 URL] [--token T] URL TOPIC [MESSAGE]\n"
		   "  without MESSAGE each line of stdin is a message\n"
		   RC__CLI_USAGE_TAIL);
}

/* --rate: sleeps until the next slot (absolute, so no drift). */
static void pace(struct pub *p)
{
	if (p->rate <= 0)
		return;
	if (p->next.tv_sec == 0)
		clock_gettime(CLOCK_MONOTONIC, &p->next);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &p->next, NULL);
	long long ns = p->next.tv_nsec + (long long)(1e9 / p->rate);
	p->next.tv_sec += (time_t)(ns / 1000000000);
	p->next.tv_nsec = (long)(ns % 1000000000);
}

static int publish(struct pub *p, const char *data, size_t len)
{
	int ret;

	pace(p);
	if (p->ps) {
		ret = rc_pubsub_publish_nowait(p->ps, p->topic, data, len, RC_PUBSUB_AUTO);
		if (ret == -EILSEQ)
			snprintf(p->err, sizeof(p->err), "message is not valid UTF-8 (use --binary)");
		else if (ret < 0)
			snprintf(p->err, sizeof(p->err), "%s", rc_pubsub_error(p->ps)[0] ?
				 rc_pubsub_error(p->ps) : strerror(-ret));
		return ret;
	}
	ret = rc_pubsub_http_publish_bearer(p->url, p->topic, data, len, p->binary, p->token,
					    p->timeout_ms, NULL, p->err, sizeof(p->err));
	if (ret == -EINVAL && !p->err[0])
		snprintf(p->err, sizeof(p->err), "bad topic");
	return ret;
}

static int from_stdin(struct pub *p)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = 0;

	if (p->binary) { /* binary: all of stdin is one message */
		size_t len = 0;
		char *buf = NULL;
		while (!ferror(stdin) && !feof(stdin)) {
			char *b = realloc(buf, len + 65536);
			if (!b)
				return free(buf), -ENOMEM;
			buf = b;
			len += fread(buf + len, 1, 65536, stdin);
		}
		ret = publish(p, buf ? buf : "", len);
		free(buf);
		return ret;
	}
	while (ret == 0 && (n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			n--;
		ret = publish(p, line, (size_t)n);
	}
	free(line);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "http", no_argument, NULL, 'H' }, { "binary", no_argument, NULL, 'b' },
		{ "rate", required_argument, NULL, 'r' }, { "timeout", required_argument, NULL, 't' },
		{ "socks5", required_argument, NULL, 'x' }, { "help", no_argument, NULL, 'h' },
		{ "ca-file", required_argument, NULL, 'C' }, { "insecure", no_argument, NULL, 'k' },
		{ "token", required_argument, NULL, 'T' }, { 0 } };
	struct pub p = { .timeout_ms = 10000, .token = getenv("RINGCAST_TOKEN") };
	struct rc_pubsub_options o;
	bool http = false;
	char *end;
	int opt, ret;

	rc_pubsub_options_default(&o);
	o.reconnect = true;
	o.max_retries = 5;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'H': http = true; break;
		case 'b': p.binary = http = true; break;
		case 'x': o.socks5 = optarg; break;
		case 'T': p.token = optarg; break;
		case 'C': o.ca_file = optarg; break;
		case 'k': o.insecure = true; break;
		case 'h': usage(stdout); return EX_OK;
		case 'r':
			p.rate = strtod(optarg, &end);
			if (*end || !*optarg || !(p.rate > 0 && p.rate <= 1e6))
				return fprintf(stderr, "ringcast-pub: bad --rate %s\n", optarg), EX_USAGE;
			break;
		case 't': {
			double s;
			if (!rc__cli_seconds(optarg, &s) || s == 0)
				return fprintf(stderr, "ringcast-pub: bad --timeout %s\n", optarg), EX_USAGE;
			p.timeout_ms = (int)(s * 1000);
			break;
		}
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (argc - optind < 2 || argc - optind > 3) {
		usage(stderr);
		return EX_USAGE;
	}
	p.url = argv[optind];
	p.topic = argv[optind + 1];
	if (http && o.socks5)
		return fprintf(stderr, "ringcast-pub: --socks5 works over WebSocket only, "
			       "not with --http or --binary\n"), EX_USAGE;
	if (!rc__cli_topic_ok("ringcast-pub", p.topic))
		return EX_TOPIC;
	if (!http) {
		o.token = p.token;
		p.ps = rc_pubsub_open_blocking(p.url, &o, p.timeout_ms, p.err, sizeof(p.err));
		if (!p.ps)
			return rc__cli_open_failed("ringcast-pub", p.err);
	} else {
		struct rc__url u;
		int e = rc__url_parse(p.url, &u);
		if (e < 0)
			return fprintf(stderr, "ringcast-pub: %s: %s\n", p.url, e == -EPROTONOSUPPORT ?
				       "scheme not supported (ws://, wss:// and http://; https:// is "
				       "not supported)" : "bad URL"), EX_URL;
	}
	if (argc - optind == 3)
		ret = publish(&p, argv[optind + 2], strlen(argv[optind + 2]));
	else
		ret = from_stdin(&p);
	if (p.ps) {
		int f = rc_pubsub_flush(p.ps, p.timeout_ms);
		if (ret == 0 && f < 0) {
			ret = f;
			snprintf(p.err, sizeof(p.err), "%s", f == -ETIMEDOUT ? "timed out waiting for acks"
				 : rc_pubsub_error(p.ps));
		}
		rc_pubsub_close_blocking(p.ps);
	}
	if (ret < 0) {
		fprintf(stderr, "ringcast-pub: %s\n", p.err[0] ? p.err : strerror(-ret));
		return rc__cli_exit_for(ret);
	}
	return EX_OK;
}
