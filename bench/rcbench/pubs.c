/* Publisher connections: plain blocking sockets that write pre-built,
 * masked frames, with nothing but a header rewrite per message.  They live
 * in the coordinator and stay out of the subscribers' loops, so pacing is a
 * simple clock loop and the measured fanout is the broker's.  They never
 * speak TLS: with --url wss:// they go to the plain --pub-url listener, and
 * what is measured is the fanout to encrypted subscribers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench/rcbench/rcbench.h"
#include "proto/frame.h"
#include "proto/http.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int resolve(const struct rcb_opts *o, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	char ps[8];

	snprintf(ps, sizeof(ps), "%u", o->pub_port);
	if (getaddrinfo(o->pub_host, ps, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Reads the handshake answer (bounded: 8 KiB, 10 s) and checks the 101. */
static int read_101(int fd, const char *key, const char **why)
{
	char buf[8192];
	size_t n = 0;
	struct rc_http_response res;

	for (int tries = 0; tries < 1000; tries++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 10000) <= 0) {
			*why = "no handshake answer within 10 s";
			return -ETIMEDOUT;
		}
		ssize_t r = recv(fd, buf + n, sizeof(buf) - n, 0);
		if (r <= 0) {
			*why = "connection closed during the handshake";
			return r < 0 ? -errno : -ECONNRESET;
		}
		n += (size_t)r;
		int h = rc_http_parse_response((const uint8_t *)buf, n, sizeof(buf), &res);
		if (h == -EAGAIN && n < sizeof(buf))
			continue;
		if (h < 0) {
			*why = "malformed handshake answer";
			return -EPROTO;
		}
		if ((size_t)h != n) {
			*why = "data after the 101 before we sent anything";
			return -EPROTO;
		}
		return rc_ws_check_101(&res, key, NULL, NULL, why);
	}
	*why = "handshake answer in too many pieces";
	return -EPROTO;
}

/* Connects a blocking socket and upgrades it (see rcbench.h). */
int rcb_ws_dial(const struct rcb_opts *o, const char *path, const char *src,
		const char **why)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char req[2048], key[25], host[300];
	int fd, ret, one = 1;
	ssize_t n;

	*why = "cannot resolve the host";
	if ((ret = resolve(o, &ss, &sl)) < 0)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*why = "socket";
		return -errno;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src && src[0] && ss.ss_family == AF_INET) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (inet_pton(AF_INET, src, &sa.sin_addr) != 1 ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			*why = "bind to the source address";
			ret = -EADDRNOTAVAIL;
			goto err_close;
		}
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		*why = "connect";
		ret = -errno;
		goto err_close;
	}
	snprintf(host, sizeof(host), "%s:%u", o->pub_host, o->pub_port);
	if (rc_ws_make_key(key) < 0) {
		*why = "no random bytes";
		ret = -EIO;
		goto err_close;
	}
	n = rc_ws_write_request(req, sizeof(req), host, path, key, NULL, NULL, NULL);
	if (n < 0 || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		*why = "sending the upgrade request";
		ret = n < 0 ? (int)n : -EIO;
		goto err_close;
	}
	if ((ret = read_101(fd, key, why)) < 0)
		goto err_close;
	return fd;

err_close:
	close(fd);
	return ret;
}

/* Builds the frame once: header, then the payload masked in place.  Each
 * send rewrites the header fields of the payload and masks only them. */
int rcb_pub_init(struct rcb_pub *p, int fd, uint32_t id, const struct rcb_opts *o)
{
	uint8_t *payload;

	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->id = id;
	p->frame = malloc(o->size + RC_FRAME_MAX_HEADER);
	if (!p->frame)
		return -ENOMEM;
	for (int i = 0; i < 4; i++)
		p->mask[i] = (uint8_t)(rand() & 0xff);
	p->hlen = rc_frame_write_header(p->frame, o->json_mode ? RC_OP_TEXT : RC_OP_BINARY,
					true, false, o->size, p->mask);
	payload = p->frame + p->hlen;
	rcb_payload_fill(payload, o->size, o->json_mode, id, 0, 0);
	rc_ws_mask(payload, o->size, p->mask, 0);
	p->flen = p->hlen + o->size;
	/* A broker that stops reading must not hang us: sends give up. */
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

/* Sends message seq + 1 stamped now. */
int rcb_pub_send(struct rcb_pub *p, bool json)
{
	uint8_t *payload = p->frame + p->hlen;
	size_t hdr = json ? 44 : RCB_MIN_RAW;
	size_t off = 0;

	p->seq++;
	p->last_ts = rcb_now();
	rcb_payload_stamp(payload, json, p->id, p->seq, p->last_ts);
	rc_ws_mask(payload, hdr, p->mask, 0);
	while (off < p->flen) {
		ssize_t n = send(p->fd, p->frame + off, p->flen - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Closes and frees. */
void rcb_pub_free(struct rcb_pub *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	free(p->frame);
	p->frame = NULL;
}
