/* The client side: ws:// URLs, TCP connect through the ring, an optional
 * SOCKS5 proxy (RFC 1928, username/password per RFC 1929), the upgrade
 * request and the 101 check.  Client connections use plain descriptors
 * (DNS and connect need one anyway); servers use direct descriptors. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"

enum socks_step { SOCKS_NONE, SOCKS_METHOD, SOCKS_AUTH, SOCKS_CONNECT };

struct rc_client_state {
	char host[256];        /* the WebSocket server's host (Host header) */
	char path[1024];
	char key[25];
	uint16_t port;
	uint8_t socks;          /* enum socks_step */
	uint16_t slen;          /* bytes of the proxy's current reply in sreply */
	uint8_t sreply[262];    /* the longest reply: CONNECT with a 255-byte name */
	char puser[256], ppass[256];
	bool deflate;
	struct rc_pmd_config pmd_cfg;
	char protocols[256];
	char headers[1024];
	bool tls;               /* wss:// or tls:// */
	bool stream;            /* rc_stream_connect: no upgrade */
	bool insecure;
	char ca_file[256];
};

struct url {
	bool tls;
	char host[256];
	char path[1024];
	uint16_t port;
	char user[256], pass[256];
};

/* Parses scheme://[user:pass@]host[:port][/path]; returns 0 or -EINVAL /
 * -EPROTONOSUPPORT. */
/* HANDSHAKE's reader: the proxy's replies, then the server's 101. */
static size_t handshake_read(struct rc_conn *c, uint8_t *p, size_t n)
{
	rc__client_feed(c, p, n);
	return n;
}

static const struct rc_conn_reader handshake_state = { .read = handshake_read };

static int parse_url(const char *url, const char *scheme, uint16_t defport,
		     struct url *u)
{
	size_t sl = strlen(scheme);
	const char *p, *host, *end, *at, *colon;
	unsigned long port = defport;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, scheme, sl) != 0 || strncmp(url + sl, "://", 3) != 0)
		return strstr(url, "://") ? -EPROTONOSUPPORT : -EINVAL;
	p = url + sl + 3;
	end = p + strcspn(p, "/?");
	at = memchr(p, '@', (size_t)(end - p));
	if (at) {
		const char *c = memchr(p, ':', (size_t)(at - p));
		size_t ul = (size_t)((c ? c : at) - p);
		if (ul >= sizeof(u->user) || (c && (size_t)(at - c - 1) >= sizeof(u->pass)))
			return -EINVAL;
		memcpy(u->user, p, ul);
		if (c)
			memcpy(u->pass, c + 1, (size_t)(at - c - 1));
		p = at + 1;
	}
	host = p;
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));
		if (!rb)
			return -EINVAL;
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if ((size_t)(rb - host - 1) >= sizeof(u->host))
			return -EINVAL;
		memcpy(u->host, host + 1, (size_t)(rb - host - 1));
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		size_t hl = (size_t)((colon ? colon : end) - host);
		if (hl == 0 || hl >= sizeof(u->host))
			return -EINVAL;
		memcpy(u->host, host, hl);
	}
	if (colon) {
		char *e;
		port = strtoul(colon + 1, &e, 10);
		if (e != end || port == 0 || port > 65535)
			return -EINVAL;
	}
	u->port = (uint16_t)port;
	if (strlen(end) + 2 > sizeof(u->path))
		return -EINVAL;
	u->path[0] = '/';
	strcpy(u->path + (*end == '/' ? 0 : 1), end);
	return 0;
}

/* ws://, or wss:// (TLS, port 443 by default). */
static int parse_ws_url(const char *url, struct url *u)
{
	int ret = parse_url(url, "wss", 443, u);

	if (ret == 0) {
		u->tls = true;
		return 0;
	}
	return parse_url(url, "ws", 80, u);
}

static int dial_fd(const char *host, uint16_t port, struct sockaddr_storage *ss,
		   socklen_t *sl)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	char ps[8];
	int fd, one = 1;

	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return -errno;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return fd;
}

/* Fails a connection that never opened.  on_close gets 1006 with the
 * reason as text: the caller has nothing else to tell its user why. */
void rc__client_fail(struct rc_conn *c, const char *fmt, ...)
{
	char why[RC_CONTROL_MAX_PAYLOAD];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	else if ((size_t)n >= sizeof(why))
		n = sizeof(why) - 1;
	rc_log(RC_LOG_DEBUG, "client %s:%u: %s", c->cl->host, c->cl->port, why);
	rc__conn_abort_why(c, why, (size_t)n);
}

static const char *socks_reply_text(uint8_t rep)
{
	static const char *const text[] = {
		"succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
		"network unreachable", "host unreachable", "connection refused", "TTL expired",
		"command not supported", "address type not supported",
	};
	return rep < sizeof(text) / sizeof(text[0]) ? text[rep] : "unknown reply";
}

static void send_raw(struct rc_conn *c, const void *p, size_t n)
{
	struct rc_buf *b = rc_buf_new(n);

	if (!b) {
		rc__client_fail(c, "out of memory");
		return;
	}
	memcpy(b->data, p, n);
	b->len = n;
	rc__conn_enqueue(c, b);
}

static void send_upgrade(struct rc_conn *c)
{
	struct rc_client_state *s = c->cl;
	char req[4096], host[300], ext[256];
	ssize_t n;

	if (rc_ws_make_key(s->key) < 0) {
		rc__client_fail(c, "no random bytes for the handshake key");
		return;
	}
	snprintf(host, sizeof(host), strchr(s->host, ':') ? "[%s]:%u" : "%s:%u",
		 s->host, s->port);
	if (!s->deflate || rc_pmd_write_offer(ext, sizeof(ext), &s->pmd_cfg) < 0)
		ext[0] = 0;
	n = rc_ws_write_request(req, sizeof(req), host, s->path, s->key,
				s->protocols[0] ? s->protocols : NULL, ext[0] ? ext : NULL,
				s->headers[0] ? s->headers : NULL);
	if (n < 0) {
		rc__client_fail(c, "upgrade request too long");
		return;
	}
	rc__conn_enter(c, RC_CS_HANDSHAKE, &handshake_state);
	/* wss: the request waits in the queue as plaintext until the TLS
	 * handshake (started by this flush) completes. */
	if (s->tls && !c->tls &&
	    rc__tls_connect(c, s->host, s->ca_file[0] ? s->ca_file : NULL, s->insecure) < 0) {
		rc__client_fail(c, "TLS setup failed (CA file %s)", s->ca_file[0] ? s->ca_file
								     : "system store");
		return;
	}
	send_raw(c, req, (size_t)n);
}

/* Connected to the server (directly or through the proxy): a stream opens
 * (its TLS handshake starts with the first flush), a WebSocket asks for
 * the upgrade. */
static void on_reached(struct rc_conn *c)
{
	struct rc_client_state *s = c->cl;

	if (!s->stream) {
		send_upgrade(c);
		return;
	}
	if (s->tls && !c->tls) {
		if (rc__tls_connect(c, s->host, s->ca_file[0] ? s->ca_file : NULL, s->insecure) < 0) {
			rc__client_fail(c, "TLS setup failed (CA file %s)",
					s->ca_file[0] ? s->ca_file : "system store");
			return;
		}
		rc__conn_schedule_flush(c);
	}
	rc__stream_open(c);
}

static void socks_send_connect(struct rc_conn *c)
{
	struct rc_client_state *s = c->cl;
	uint8_t m[300];
	size_t hl = strlen(s->host), n = 0;

	m[n++] = 5;
	m[n++] = 1; /* CONNECT */
	m[n++] = 0;
	m[n++] = 3; /* domain name: the proxy resolves */
	m[n++] = (uint8_t)hl;
	memcpy(m + n, s->host, hl);
	n += hl;
	m[n++] = (uint8_t)(s->port >> 8);
	m[n++] = (uint8_t)s->port;
	s->socks = SOCKS_CONNECT;
	send_raw(c, m, n);
}

/* Offers "no auth", and username/password when we have one.  Proxy replies
 * are read in the handshake state (rc__client_feed hands them to
 * socks_feed). */
static void socks_hello(struct rc_conn *c)
{
	uint8_t hello[4] = { 5, 1, 0, 2 };

	rc__conn_enter(c, RC_CS_HANDSHAKE, &handshake_state);
	if (c->cl->puser[0])
		hello[1] = 2;
	send_raw(c, hello, (size_t)2 + hello[1]);
}

/* The connect SQE completed. */
void rc__client_on_connect(struct rc_conn *c, int res)
{
	struct rc_client_state *s = c->cl;

	c->inflight--;
	if (c->state == RC_CS_DEAD) { /* cancelled by a teardown */
		rc__conn_settle(c);
		return;
	}
	if (res < 0) {
		rc__client_fail(c, "connect%s: %s", s->socks == SOCKS_METHOD ? " to the SOCKS5 proxy" : "",
			    strerror(-res));
		return;
	}
	rc__conn_arm_recv(c);
	if (s->socks == SOCKS_METHOD) {
		socks_hello(c);
		return;
	}
	on_reached(c);
}

/* Bytes of the proxy's current reply needed before it can be read: 2 for
 * the method and auth replies; for CONNECT the 5 that tell the address
 * type, then the whole reply.  0: an address type RFC 1928 does not have. */
static size_t socks_need(const struct rc_client_state *s)
{
	if (s->socks != SOCKS_CONNECT)
		return 2;
	if (s->slen < 5)
		return 5;
	switch (s->sreply[3]) {
	case 1: return 10;                       /* IPv4 */
	case 3: return (size_t)7 + s->sreply[4]; /* domain name */
	case 4: return 22;                       /* IPv6 */
	}
	return 0;
}

/* A complete reply is in s->sreply: answer it, or fail. */
static void socks_reply(struct rc_conn *c)
{
	struct rc_client_state *s = c->cl;
	const uint8_t *d = s->sreply;

	switch (s->socks) {
	case SOCKS_METHOD:
		if (d[0] != 5 || (d[1] != 0 && !(d[1] == 2 && s->puser[0]))) {
			rc__client_fail(c, d[0] != 5 ? "socks5: not a SOCKS5 proxy" :
				    s->puser[0] ? "socks5: proxy refused our auth methods" :
				    "socks5: proxy requires authentication (give user:pass@)");
			return;
		}
		if (d[1] == 0) {
			socks_send_connect(c);
			return;
		}
		uint8_t m[520];
		size_t ul = strlen(s->puser), pl = strlen(s->ppass), k = 0;
		m[k++] = 1;
		m[k++] = (uint8_t)ul;
		memcpy(m + k, s->puser, ul);
		k += ul;
		m[k++] = (uint8_t)pl;
		memcpy(m + k, s->ppass, pl);
		k += pl;
		s->socks = SOCKS_AUTH;
		send_raw(c, m, k);
		return;
	case SOCKS_AUTH:
		if (d[1] != 0) {
			rc__client_fail(c, "socks5: username/password rejected by the proxy");
			return;
		}
		socks_send_connect(c);
		return;
	case SOCKS_CONNECT:
		s->socks = SOCKS_NONE;
		on_reached(c);
		return;
	}
}

/* Proxy replies, in any pieces.  Only the bytes of the current reply are
 * copied (into s->sreply, which holds the longest one); bytes behind the
 * CONNECT reply are the server's already and go on to the next reader. */
static void socks_feed(struct rc_conn *c, uint8_t *p, size_t n)
{
	struct rc_client_state *s = c->cl;

	while (n && s->socks != SOCKS_NONE && c->state == RC_CS_HANDSHAKE) {
		size_t need = socks_need(s), take;
		if (!need) {
			rc__client_fail(c, "socks5: reply with an unknown address type %u",
				    s->sreply[3]);
			return;
		}
		take = need - s->slen < n ? need - s->slen : n;
		memcpy(s->sreply + s->slen, p, take);
		s->slen = (uint16_t)(s->slen + take);
		p += take;
		n -= take;
		if (s->socks == SOCKS_CONNECT && s->slen >= 2 &&
		    (s->sreply[0] != 5 || s->sreply[1] != 0)) {
			/* Refusals need not wait for the address. */
			rc__client_fail(c, "socks5: proxy could not connect to %s:%u: %s", s->host,
				    s->port, s->sreply[0] != 5 ? "not a SOCKS5 reply"
							       : socks_reply_text(s->sreply[1]));
			return;
		}
		if (s->slen == socks_need(s)) {
			socks_reply(c);
			s->slen = 0;
		}
	}
	if (!n || (c->state != RC_CS_HANDSHAKE && c->state != RC_CS_STREAM))
		return;
	/* The server's first bytes, right behind the proxy's reply. */
	if (c->tls)
		rc__tls_on_recv(c, p, n); /* wss, tls://: the TLS handshake's bytes */
	else if (c->state == RC_CS_STREAM)
		rc__stream_read(c, p, n);
	else
		rc__client_feed(c, p, n);
}

/* True if chosen (the 101's Sec-WebSocket-Protocol) is one of the names we
 * offered; names compare case-sensitively, and a list is never a choice. */
static bool protocol_offered(const struct rc_client_state *s, struct rc_span chosen)
{
	char name[sizeof(s->protocols)];
	const char *const one[] = { name, NULL };

	if (!s->protocols[0] || chosen.len >= sizeof(name) || memchr(chosen.p, 0, chosen.len))
		return false;
	memcpy(name, chosen.p, chosen.len);
	name[chosen.len] = 0;
	return rc_ws_select_protocol((struct rc_span){ s->protocols, strlen(s->protocols) },
				     one) != NULL;
}

/* Checks a complete response head: the 101, the accept key, the chosen
 * subprotocol and extension.  False if the handshake failed (the
 * connection is failed here). */
static bool check_response(struct rc_conn *c, const struct rc_http_response *res)
{
	struct rc_client_state *s = c->cl;
	struct rc_span proto, ext;
	const char *why = NULL;
	bool accepted = false;

	if (res->status != 101) {
		rc__client_fail(c, "handshake failed: HTTP %d %.*s", res->status,
			    (int)(res->reason.len < 60 ? res->reason.len : 60), res->reason.p);
		return false;
	}
	if (rc_ws_check_101(res, s->key, &proto, &ext, &why) < 0) {
		rc__client_fail(c, "handshake failed: %s", why ? why : "bad 101 response");
		return false;
	}
	if (proto.len && !protocol_offered(s, proto)) {
		/* RFC 6455 4.1: a subprotocol we did not ask for fails. */
		rc__client_fail(c, "handshake failed: server chose a subprotocol we did not offer");
		return false;
	}
	if (ext.len && (!s->deflate ||
			rc_pmd_parse_response(ext, &s->pmd_cfg, &c->pmd, &accepted) < 0)) {
		rc__client_fail(c, "handshake failed: server chose an extension we did not offer");
		return false;
	}
	c->pmd_on = accepted;
	return true;
}

/* Bytes before the connection is a WebSocket (client side).  The response
 * head is parsed where it lies: in p itself when it arrives whole, else
 * in c->in, which only ever holds head bytes (at most max_http_head + 1:
 * never more is copied).  Whatever follows the head in p (frames a server
 * sent right behind its 101, any amount) goes to the frame reader straight
 * from p, which is the receive buffer: no copy, no size limit but the
 * WebSocket ones. */
void rc__client_feed(struct rc_conn *c, uint8_t *p, size_t n)
{
	size_t limit = c->loop->opt.max_http_head, old = c->in ? c->in->len : 0;
	const uint8_t *head_buf = p;
	struct rc_http_response res;
	size_t have = n, used;
	int head;

	if (c->cl->socks != SOCKS_NONE) {
		socks_feed(c, p, n);
		return;
	}
	if (old) {
		/* The head's start came earlier: add at most what can still
		 * be head (one byte over the limit tells "too large"). */
		size_t take = limit + 1 - old < n ? limit + 1 - old : n;
		memcpy(c->in->data + old, p, take);
		c->in->len += take;
		head_buf = c->in->data;
		have = c->in->len;
		/* Only CRLF CRLF ends a head: until it can have arrived, parsing
		 * again would only cost time (quadratic for a head trickled in
		 * byte by byte). */
		size_t from = old > 3 ? old - 3 : 0;
		if (have <= limit && !memmem(head_buf + from, have - from, "\r\n\r\n", 4))
			return;
	}
	head = rc_http_parse_response(head_buf, have, limit, &res);
	if (head == -EAGAIN && !old) {
		/* n <= limit here (a longer incomplete head is -EINVAL). */
		if (rc__buf_reserve(&c->in, limit + 1) < 0) {
			rc__client_fail(c, "out of memory");
			return;
		}
		memcpy(c->in->data, p, n);
		c->in->len = n;
		return;
	}
	if (head == -EAGAIN)
		return;
	/* (A head ending within the bytes kept earlier cannot be: they
	 * were incomplete.  Refused rather than trusted.) */
	if (head < 0 || (size_t)head < old) {
		bool big = head < 0 && have > limit &&
			   rc_http_parse_response(head_buf, limit, limit, &res) == -EAGAIN;
		rc__client_fail(c, big ? "handshake failed: response head too large"
				       : "handshake failed: malformed HTTP response");
		return;
	}
	if (!check_response(c, &res))
		return;
	used = (size_t)head - old; /* bytes of p that were head */
	rc_buf_unref(c->in);
	c->in = NULL;
	rc__conn_start_ws(c);
	/* on_open may have closed (CLOSING still reads the peer's close) or
	 * aborted; rc__conn_feed reads only in the states that read. */
	if (n > used)
		rc__conn_feed(c, p + used, n - used);
}

static void cqe_connect(void *c, const struct io_uring_cqe *cqe)
{
	rc__client_on_connect(c, cqe->res);
}

static struct rc_conn *client_new(struct rc_loop *l, int fd, const struct url *u,
				  const struct rc_client_options *o,
				  const struct rc_handlers *h, void *user)
{
	/* The state first: once the connection exists, failing would close
	 * fd through the ring, and the caller closes it too. */
	struct rc_client_state *s = rc__pool_alloc(l->pool, sizeof(*s));
	struct rc_conn *c = s ? rc__conn_alloc(l, fd, false) : NULL;

	if (!c) {
		rc__pool_release(s);
		return NULL;
	}
	rc__loop_on(l, RC_UD_CONNECT, cqe_connect);
	c->cl = s;
	memset(s, 0, sizeof(*s));
	c->client = true;
	c->h = h;
	c->user = user;
	c->opened = false;
	snprintf(s->host, sizeof(s->host), "%s", u->host);
	snprintf(s->path, sizeof(s->path), "%s", u->path);
	s->port = u->port;
	const struct rc_options *opt = o && o->options ? o->options : &l->opt;
	s->pmd_cfg = opt->deflate;
	s->deflate = opt->deflate.enabled;
	if (o && o->protocols)
		snprintf(s->protocols, sizeof(s->protocols), "%s", o->protocols);
	if (o && o->headers)
		snprintf(s->headers, sizeof(s->headers), "%s", o->headers);
	s->tls = u->tls;
	s->insecure = o && o->insecure;
	if (o && o->ca_file)
		snprintf(s->ca_file, sizeof(s->ca_file), "%s", o->ca_file);
	rc__timer_arm(c, RC_T_HANDSHAKE, o && o->connect_timeout_ms ? o->connect_timeout_ms
						       : l->opt.handshake_timeout_ms);
	return c;
}

/* Dial through this proxy: SOCKS5 comes first once connected. */
static void socks_init(struct rc_conn *c, const struct url *proxy)
{
	c->cl->socks = SOCKS_METHOD;
	snprintf(c->cl->puser, sizeof(c->cl->puser), "%s", proxy->user);
	snprintf(c->cl->ppass, sizeof(c->cl->ppass), "%s", proxy->pass);
}

/* tcp://host:port, or tls://host:port; a port is required. */
static int parse_stream_url(const char *url, struct url *u)
{
	int ret = parse_url(url, "tls", 0, u);

	if (ret == 0)
		u->tls = true;
	else
		ret = parse_url(url, "tcp", 0, u);
	if (ret == 0 && (!u->port || strcmp(u->path, "/") != 0))
		return -EINVAL;
	return ret;
}

/* Parses url (a stream's when stream), and o->socks5 when given (*via says
 * so).  0 or -errno. */
static int parse_target(const char *url, const struct rc_client_options *o, bool stream,
			struct url *u, struct url *proxy, bool *via)
{
	int ret = stream ? parse_stream_url(url, u) : parse_ws_url(url, u);

	*via = o && o->socks5 && o->socks5[0];
	if (ret == 0 && *via)
		ret = parse_url(o->socks5, "socks5", 1080, proxy);
	return ret;
}

/* Dials url (a stream's, or ws:// / wss://), through o->socks5 if given. */
static struct rc_conn *dial(struct rc_loop *l, const char *url,
			    const struct rc_client_options *o, bool stream,
			    const struct rc_handlers *h, const struct rc_stream_handlers *sh,
			    void *user)
{
	struct sockaddr_storage ss;
	struct url u, proxy;
	socklen_t sl;
	bool via;
	int ret, fd;

	ret = parse_target(url, o, stream, &u, &proxy, &via);
	if (ret < 0) {
		errno = -ret;
		return NULL;
	}
	fd = via ? dial_fd(proxy.host, proxy.port, &ss, &sl) : dial_fd(u.host, u.port, &ss, &sl);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	struct rc_conn *c = client_new(l, fd, &u, o, h, user);
	if (!c) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	c->sh = sh;
	c->cl->stream = stream;
	rc__conn_enter(c, RC_CS_CONNECTING, NULL);
	if (via)
		socks_init(c, &proxy);
	c->inflight++;
	if (rc__loop_epoll(l)) {
		rc__ep_connect(c, (struct sockaddr *)&ss, sl);
		return c;
	}
	/* The sockaddr must live until the SQE is consumed: submit now. */
	struct io_uring_sqe *sqe = rc__sqe(l);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&ss, sl);
	io_uring_sqe_set_data64(sqe, RC_UD(c, RC_UD_CONNECT));
	io_uring_submit(&l->ring);
	return c;
}

/* Starts a client connection (see rc.h). */
struct rc_conn *rc_client_connect(struct rc_loop *l, const char *url,
				  const struct rc_client_options *o,
				  const struct rc_handlers *h, void *user)
{
	return dial(l, url, o, false, h, NULL, user);
}

/* Dials a byte stream (see rc.h). */
struct rc_conn *rc_stream_connect(struct rc_loop *l, const char *url,
				  const struct rc_client_options *o,
				  const struct rc_stream_handlers *h, void *user)
{
	if (!h) {
		errno = EINVAL;
		return NULL;
	}
	return dial(l, url, o, true, NULL, h, user);
}

/* Wraps a connected socket (see rc.h). */
struct rc_conn *rc_client_wrap_fd(struct rc_loop *l, int fd, const char *url,
				  const struct rc_client_options *o,
				  const struct rc_handlers *h, void *user)
{
	struct url u, proxy;
	bool via;
	int ret = parse_target(url, o, false, &u, &proxy, &via);

	if (ret < 0) {
		errno = -ret;
		return NULL;
	}
	struct rc_conn *c = client_new(l, fd, &u, o, h, user);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	rc__conn_arm_recv(c);
	if (via) {
		socks_init(c, &proxy);
		socks_hello(c);
	} else {
		send_upgrade(c);
	}
	return c;
}
