/* ringcast-sub [OPTIONS] URL TOPIC...: subscribes to each topic over the
 * broker's JSON mode and prints every message followed by a newline.  A
 * TOPIC may be a pattern: 'news.*' (one token), 'news.>' (one or more).
 *
 * URL: ws://HOST[:PORT] (the tool uses the path /ws), or a full
 * ws://HOST:PORT/PATH.  wss://HOST[:PORT] for TLS.
 *   --json        print the server's msg object (one JSON line) instead of
 *                 the payload (text as is, JSON strings decoded, binary raw)
 *   -v, --verbose print the topic and a space before each payload (like
 *                 mosquitto_sub -v)
 * Whatever the client learns besides messages goes to stderr, one line each:
 * gaps (messages the broker no longer holds), join and leave of other
 * subscribers (namespaces with join_leave = on), a broker restart (new epoch:
 * numbering starts again), a lost connection and the reconnect.
 *   --count N     exit 0 after N messages
 *   --from SEQ    resume each topic from SEQ (history first)
 *   --timeout S   exit 3 if no message came for S seconds (decimal allowed)
 *   --ca-file F   wss: trust the CAs in F instead of the system store
 *   --insecure    wss: do not check the certificate (tests only)
 *   --socks5 URL  connect through socks5://[user:pass@]host:port
 *   --token T     connection token (JWT), sent as Authorization: Bearer on
 *                 every connect; also from RINGCAST_TOKEN
 *   --no-reconnect  exit 5 when the connection is lost (default: reconnect
 *                 and resume)
 * Exit status: 0 done (--count reached), 1 other error, 2 usage, 3 timeout,
 * 4 bad URL, 5 connection failed or lost, 6 bad topic, 7 other server error. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/c/cli_common.h"
#include "clients/c/ringcast_client.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ringcast-sub [--json] [-v] [--count N] [--from SEQ] [--timeout S] "
		   "[--ca-file F] [--insecure] [--socks5 URL] [--token T] [--no-reconnect] "
		   "URL TOPIC...\n"
		   RC__CLI_USAGE_TAIL);
}

/* Called on the client's loop thread; stderr lines are whole (stdio locks). */
static void on_event(struct rc_pubsub *ps, const struct rc_pubsub_event *ev, void *user)
{
	bool *was_down = user;

	(void)ps;
	switch (ev->kind) {
	case RC_PUBSUB_GAP:
		fprintf(stderr, "ringcast-sub: gap on '%s': messages %llu-%llu are lost\n",
			ev->topic, (unsigned long long)ev->from, (unsigned long long)ev->to);
		break;
	case RC_PUBSUB_EPOCH:
		fprintf(stderr, "ringcast-sub: the broker restarted (new epoch); "
			"sequence numbers start again\n");
		break;
	case RC_PUBSUB_DOWN:
		fprintf(stderr, "ringcast-sub: connection lost (%s); reconnecting in %u ms\n",
			ev->reason && ev->reason[0] ? ev->reason : strerror(-ev->err), ev->delay_ms);
		*was_down = true;
		break;
	case RC_PUBSUB_OPEN:
		if (*was_down)
			fprintf(stderr, "ringcast-sub: reconnected; subscriptions resumed\n");
		*was_down = false;
		break;
	case RC_PUBSUB_ERROR:
		fprintf(stderr, "ringcast-sub: server error: %s\n", ev->reason ? ev->reason : "");
		break;
	case RC_PUBSUB_JOIN:
	case RC_PUBSUB_LEAVE:
		fprintf(stderr, "ringcast-sub: %s on '%s': connection %llu%s%s%s%s\n",
			ev->kind == RC_PUBSUB_JOIN ? "join" : "leave", ev->topic,
			(unsigned long long)ev->conn, ev->user ? " user " : "",
			ev->user ? ev->user : "", ev->info ? " info " : "", ev->info ? ev->info : "");
		break;
	case RC_PUBSUB_CLOSED: /* main reports why it stops */
		break;
	}
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return *s && *s != '-' && !*end && !errno;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' }, { "count", required_argument, NULL, 'c' },
		{ "from", required_argument, NULL, 'f' }, { "timeout", required_argument, NULL, 't' },
		{ "socks5", required_argument, NULL, 'x' }, { "help", no_argument, NULL, 'h' },
		{ "ca-file", required_argument, NULL, 'C' }, { "insecure", no_argument, NULL, 'k' },
		{ "no-reconnect", no_argument, NULL, 'n' }, { "verbose", no_argument, NULL, 'v' },
		{ "token", required_argument, NULL, 'T' },
		{ 0 } };
	struct rc_pubsub_options o;
	struct rc_pubsub *ps;
	uint64_t count = 0, from = 0, got = 0;
	bool json = false, has_from = false, verbose = false, was_down = false;
	int timeout_ms = -1, opt, ret = 0;
	char err[600];

	rc_pubsub_options_default(&o);
	o.on_event = on_event;
	o.user = &was_down;
	o.token = getenv("RINGCAST_TOKEN");
	while ((opt = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		case 'v': verbose = true; break;
		case 'n': o.reconnect = false; break;
		case 'x': o.socks5 = optarg; break;
		case 'T': o.token = optarg; break;
		case 'C': o.ca_file = optarg; break;
		case 'k': o.insecure = true; break;
		case 'h': usage(stdout); return EX_OK;
		case 'c':
			if (!parse_u64(optarg, &count) || count == 0)
				return fprintf(stderr, "ringcast-sub: bad --count %s\n", optarg), EX_USAGE;
			break;
		case 'f':
			if (!parse_u64(optarg, &from))
				return fprintf(stderr, "ringcast-sub: bad --from %s\n", optarg), EX_USAGE;
			has_from = true;
			break;
		case 't': {
			double s;
			if (!rc__cli_seconds(optarg, &s))
				return fprintf(stderr, "ringcast-sub: bad --timeout %s\n", optarg), EX_USAGE;
			timeout_ms = (int)(s * 1000);
			break;
		}
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (argc - optind < 2) {
		usage(stderr);
		return EX_USAGE;
	}
	for (int i = optind + 1; i < argc; i++) {
		if (!rc__cli_topic_ok("ringcast-sub", argv[i]))
			return EX_TOPIC;
		if (has_from && rc_topic_is_pattern(argv[i], strlen(argv[i]))) {
			fprintf(stderr, "ringcast-sub: '%s' is a pattern: it has no seq to "
				"resume --from (subscribe to its topics by name)\n", argv[i]);
			return EX_USAGE;
		}
	}
	ps = rc_pubsub_open_blocking(argv[optind], &o, timeout_ms < 0 ? 10000 : timeout_ms,
				     err, sizeof(err));
	if (!ps)
		return rc__cli_open_failed("ringcast-sub", err);
	for (int i = optind + 1; i < argc && ret == 0; i++) {
		ret = rc_pubsub_subscribe_blocking(ps, argv[i], has_from, from, 10000, NULL);
		if (ret < 0)
			fprintf(stderr, "ringcast-sub: subscribe to '%s': %s\n", argv[i],
				ret == -EINVAL ? "bad topic" : rc_pubsub_error(ps)[0]
				? rc_pubsub_error(ps) : strerror(-ret));
	}
	while (ret == 0 && (count == 0 || got < count)) {
		struct rc_pubsub_msg *m;

		ret = rc_pubsub_next_message(ps, timeout_ms, &m);
		if (ret == -ETIMEDOUT) {
			fprintf(stderr, "ringcast-sub: no message within %.3f s\n",
				timeout_ms / 1000.0);
		} else if (ret < 0) {
			fprintf(stderr, "ringcast-sub: %s\n", rc_pubsub_error(ps));
		} else {
			if (verbose) {
				fwrite(m->topic, 1, m->topic_len, stdout);
				fputc(' ', stdout);
			}
			if (json)
				fwrite(m->raw, 1, m->raw_len, stdout);
			else
				fwrite(m->data, 1, m->len, stdout);
			fputc('\n', stdout);
			fflush(stdout);
			rc_pubsub_msg_free(m);
			got++;
		}
	}
	rc_pubsub_close_blocking(ps);
	return ret == 0 ? EX_OK : rc__cli_exit_for(ret);
}
