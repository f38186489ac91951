/* libFuzzer harness for a whole server connection in-process: the input's
 * bytes reach a real core connection (HTTP request heads and bodies,
 * pipelining, the upgrade with permessage-deflate, WebSocket frames,
 * compressed messages, control frames) split where the input says, on a
 * real loop whose socket is one end of a socketpair; the input also says
 * when the peer reads what the connection sent.  Handlers answer every
 * HTTP request and echo every message, so everything the peer sends can
 * make the connection queue.  By the length of its path, a request is
 * answered at once, answered later (before the next step: a deferred
 * answer, with the pipelined requests behind it waiting), or answered
 * with a byte stream that gets a chunk of bytes.  Checked after every step:
 *   - the queue stays within the budget plus one reaction (the answer, echo
 *     or control frame to the last request or frame read before the budget
 *     stopped the reader): the budget is the bound, whatever the input;
 *   - input is held only while the connection is over budget or waits for
 *     a deferred answer, and once the
 *     peer has read everything nothing is left held (reading never stalls);
 *   - no crash, no leak, no sanitizer report.
 *
 * Input: steps of one control byte k and then the chunk it announces:
 * ((k & 63) + 1) bytes, times 64 if k & 64; k & 128 makes the peer read
 * everything pending first.  While input is held (reading paused) no step
 * is taken: the peer reads until the connection resumes, as the kernel
 * would keep the bytes in the socket meanwhile.  The seeds in
 * corpus/server_conn are floods in 4 KiB steps (pings, echoes, pipelined
 * GETs) and an upgrade with every kind of frame. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"

#define CHECK(cond)                  \
	do {                         \
		if (!(cond))         \
			abort();     \
	} while (0)

#define BUDGET 8192
#define MAX_MSG 4096
#define MAX_ANSWER 3000 /* on_http body, at most */

static struct rc_loop *loop;
static struct rc_server *srv;

static void echo(struct rc_conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	rc_conn_send(c, op, p, n);
}

static const struct rc_handlers handlers = { .on_message = echo };

static int accept_all(struct rc_conn *c, const struct rc_http_request *req)
{
	(void)c;
	(void)req;
	return 0;
}

static const struct rc_stream_handlers stream_handlers = { 0 };
static struct rc_conn *deferred; /* a request left for later (a reference) */
static uint8_t text[MAX_ANSWER];

/* Answers with a body whose size follows the path: answers of every size
 * up to MAX_ANSWER, now, later, or as a stream. */
static void answer(struct rc_conn *c, const struct rc_http_request *req,
		   const uint8_t *body, size_t len)
{
	size_t n = (req->path.len * 613) % MAX_ANSWER;

	(void)body;
	(void)len;
	memset(text, 'a', sizeof(text));
	switch (req->path.len % 5) {
	case 1:
		CHECK(!deferred);
		rc_conn_ref(c);
		deferred = c;
		return;
	case 2:
		if (rc_conn_respond_stream(c, 200, "text/event-stream", NULL, &stream_handlers) == 0)
			rc_stream_send(c, text, n);
		return;
	}
	rc_conn_respond(c, 200, "text/plain", NULL, text, n);
}

/* The deferred answer, if one is owed. */
static void answer_later(void)
{
	struct rc_conn *c = deferred;

	if (!c)
		return;
	/* The answer lets the next request in, which may be deferred too. */
	deferred = NULL;
	rc_conn_respond(c, 202, "text/plain", NULL, text, 100);
	rc_conn_unref(c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct rc_options o;

	(void)argc;
	(void)argv;
	rc_log_set_level(RC_LOG_ERROR);
	rc_options_default(&o);
	o.max_backpressure = BUDGET;
	o.max_message_size = o.max_frame_size = MAX_MSG;
	o.max_http_head = 1024;
	o.max_http_body = 2048;
	o.deflate.enabled = true;
	srv = rc_server_new(&(struct rc_server_config){
		.options = &o, .threads = 1, .on_upgrade = accept_all,
		.on_http = answer, .default_handlers = &handlers });
	loop = rc_loop_new(&o);
	CHECK(srv && loop);
	loop->srv = srv;
	return 0;
}

/* Reads (and discards) everything the connection sent so far. */
static void peer_reads(int fd)
{
	static uint8_t sink[65536];

	while (read(fd, sink, sizeof(sink)) > 0)
		;
}

/* The queue may pass the budget by the one reaction the reader produced
 * before it checked again: an echo (deflate may grow it a little), an HTTP
 * answer, the 101, a pong or close. */
static void check_bound(const struct rc_conn *c)
{
	size_t reaction = MAX_MSG + MAX_MSG / 64 + 64 + RC_FRAME_MAX_HEADER;

	if (reaction < MAX_ANSWER + 512)
		reaction = MAX_ANSWER + 512;
	CHECK(rc__queued(c) <= BUDGET + reaction + 1024);
	/* Held input means the reader stopped for the budget, or for a
	 * deferred answer. */
	CHECK(!c->held || c->state == RC_CS_DEAD || rc__queued(c) > 0 || c->http_pending);
	CHECK(!c->http_pending || deferred);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t chunk[64 * 64];
	int sv[2], small = 4096;
	struct rc_conn *c;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	c = rc__conn_new(loop, sv[0], false);
	CHECK(c);
	rc_conn_ref(c);
	for (int stuck = 0; size && c->state != RC_CS_DEAD;) {
		if (c->held) {
			/* Reading is paused: the peer must read for it to resume. */
			CHECK(++stuck < 200);
			answer_later();
			peer_reads(sv[1]);
			rc__loop_turn(loop, 1);
			check_bound(c);
			continue;
		}
		stuck = 0;
		uint8_t k = *data++;
		size_t n = ((size_t)(k & 63) + 1) * ((k & 64) ? 64 : 1);
		size--;
		if (n > size)
			n = size;
		if (k & 128)
			peer_reads(sv[1]);
		answer_later();
		rc__loop_turn(loop, 0);
		memcpy(chunk, data, n); /* the reader unmasks in place */
		rc__conn_input(c, chunk, n);
		data += n;
		size -= n;
		rc__loop_flush(loop);
		check_bound(c);
	}
	/* The peer reads everything: what was held must be read in turn. */
	for (int i = 0; i < 200 && c->state != RC_CS_DEAD && (c->held || rc__queued(c) || deferred);
	     i++) {
		answer_later();
		peer_reads(sv[1]);
		rc__loop_turn(loop, 1);
		check_bound(c);
	}
	CHECK(!c->held || c->state == RC_CS_DEAD);
	answer_later();
	rc__conn_abort(c, 0);
	for (int i = 0; loop->nconns; i++) {
		CHECK(i < 1000);
		rc__loop_turn(loop, 1);
	}
	rc_conn_unref(c);
	close(sv[1]);
	return 0;
}
