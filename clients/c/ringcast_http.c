/* ringcast C client: POST /publish/<topic> over a plain blocking socket
 * (see ringcast_client.h).  One request per connection ("Connection:
 * close"), so the answer is simply everything until EOF. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clients/c/client_internal.h"

static int remaining(uint64_t end)
{
	uint64_t now = rc_now_ms();

	return end == 0 ? -1 : now >= end ? 0 : (int)(end - now);
}

/* Connects with a deadline (end 0: none).  Returns the fd or -errno. */
static int dial(const struct rc__url *u, uint64_t end)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	char port[8];
	int fd, err = 0;
	socklen_t el = sizeof(err);
	struct pollfd pfd;

	snprintf(port, sizeof(port), "%u", u->port);
	if (getaddrinfo(u->host, port, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return -errno;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
		err = errno;
	freeaddrinfo(ai);
	if (!err) {
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, remaining(end)) == 0)
			err = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
	}
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}

static int io_all(int fd, bool out, char *p, size_t len, size_t *done, uint64_t end)
{
	struct pollfd pfd = { .fd = fd, .events = out ? POLLOUT : POLLIN };

	*done = 0;
	while (*done < len) {
		ssize_t n = out ? send(fd, p + *done, len - *done, MSG_NOSIGNAL)
				: recv(fd, p + *done, len - *done, 0);
		if (n > 0) {
			*done += (size_t)n;
			continue;
		}
		if (n == 0)
			return 0; /* EOF */
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (poll(&pfd, 1, remaining(end)) == 0)
			return -ETIMEDOUT;
	}
	return 0;
}

static size_t pct_encode(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[n++] = (char)c;
		} else {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	out[n] = 0;
	return n;
}

/* Sends the request and reads the whole answer into *resp (NUL-terminated). */
static int exchange(int fd, const struct rc__url *u, const char *topic, const void *data,
		    size_t len, bool binary, const char *bearer, uint64_t end, char **resp,
		    size_t *rlen)
{
	char path[3 * RC_TOPIC_MAX + 1], head[4096 + 8192];
	size_t cap = 4096, done;
	int n, ret;

	pct_encode(path, topic);
	n = snprintf(head, sizeof(head),
		     "POST /publish/%s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\n%s%s%sConnection: close\r\n\r\n", path, u->host,
		     u->port, binary ? "application/octet-stream" : "text/plain; charset=utf-8", len,
		     bearer ? "Authorization: Bearer " : "", bearer ? bearer : "", bearer ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -E2BIG;
	ret = io_all(fd, true, head, (size_t)n, &done, end);
	if (!ret && len)
		ret = io_all(fd, true, (char *)(uintptr_t)data, len, &done, end);
	if (ret < 0)
		return ret;
	*resp = malloc(cap + 1);
	*rlen = 0;
	while (*resp) {
		ret = io_all(fd, false, *resp + *rlen, cap - *rlen, &done, end);
		*rlen += done;
		if (ret < 0 || *rlen < cap)
			break;
		char *p = cap < (1u << 20) ? realloc(*resp, 2 * cap + 1) : NULL;
		if (!p)
			return -E2BIG;
		*resp = p;
		cap *= 2;
	}
	if (!*resp)
		return -ENOMEM;
	(*resp)[*rlen] = 0;
	return ret;
}

/* HTTP publish (see ringcast_client.h). */
int rc_pubsub_http_publish(const char *url, const char *topic, const void *data,
			   size_t len, bool binary, int timeout_ms, uint64_t *seq,
			   char *err_text, size_t err_cap)
{
	return rc_pubsub_http_publish_bearer(url, topic, data, len, binary, NULL, timeout_ms,
					     seq, err_text, err_cap);
}

/* HTTP publish with an API key (see ringcast_client.h). */
int rc_pubsub_http_publish_bearer(const char *url, const char *topic, const void *data,
				  size_t len, bool binary, const char *bearer, int timeout_ms,
				  uint64_t *seq, char *err_text, size_t err_cap)
{
	uint64_t end = timeout_ms < 0 ? 0 : rc_now_ms() + (uint64_t)timeout_ms;
	struct rc__url u;
	char *resp = NULL, *body, *s;
	size_t rlen = 0;
	int ret, fd, status = 0;

	if (err_text && err_cap)
		err_text[0] = 0;
	ret = rc__url_parse(url, &u);
	if (ret < 0)
		return ret;
	if (u.tls) /* the HTTP publish path has no TLS (yet) */
		return -EPROTONOSUPPORT;
	if (!rc_topic_valid((const uint8_t *)topic, strlen(topic)) ||
	    (bearer && (strpbrk(bearer, "\r\n") || strlen(bearer) > 8192)))
		return -EINVAL;
	fd = dial(&u, end);
	if (fd < 0) {
		if (err_text && err_cap)
			snprintf(err_text, err_cap, "cannot connect to %s:%u: %s", u.host, u.port,
				 fd == -EHOSTUNREACH ? "host name not resolved" : strerror(-fd));
		return fd;
	}
	ret = exchange(fd, &u, topic, data, len, binary, bearer, end, &resp, &rlen);
	close(fd);
	if (ret < 0 && !(resp && rlen)) {
		if (err_text && err_cap)
			snprintf(err_text, err_cap, "POST to %s:%u: %s", u.host, u.port,
				 strerror(-ret));
		free(resp);
		return ret;
	}
	body = strstr(resp, "\r\n\r\n");
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1 || !body) {
		ret = -EPROTO;
		if (err_text && err_cap)
			snprintf(err_text, err_cap, "malformed HTTP response from %s:%u", u.host,
				 u.port);
	} else if (status != 200) {
		ret = status == 400 ? -EINVAL : -EPROTO;
		if (err_text && err_cap)
			snprintf(err_text, err_cap, "HTTP %d: %.200s", status, body + 4);
	} else if (seq && (s = strstr(body, "\"seq\":"))) {
		*seq = strtoull(s + 6, NULL, 10);
		ret = 0;
	}
	free(resp);
	return ret;
}
