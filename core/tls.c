/* TLS as a byte transform: OpenSSL over memory BIOs, while the ring does
 * every socket operation (kTLS is not available on the kernels this was
 * measured on; see core/README.md).
 *
 * Receive: ciphertext from the ring goes into the read BIO; plaintext comes
 * out of SSL_read into a per-loop scratch buffer and is dispatched exactly
 * like bytes of a plain connection.
 *
 * Send: the send queue holds plaintext frames (shared, refcounted: the
 * compress-once frame is still shared, only encryption is per connection)
 * behind a prefix of ciphertext buffers.  Before each send, plaintext
 * frames are encrypted into the write BIO (up to RC_TLS_AHEAD of ciphertext
 * waiting, so a slow consumer's backlog stays shared plaintext) and the
 * BIO's bytes become one more ciphertext buffer, so the queue is always
 * "ciphertext, then plaintext" and handshake records, application data and
 * close_notify leave in the order OpenSSL produced them. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static const struct rc_transport tls_transport;

#define RC_TLS_SCRATCH (16u << 10)

struct rc_tls {
	SSL *ssl;
	BIO *rbio, *wbio;  /* owned by ssl */
	bool done;         /* handshake finished */
	bool failed;       /* fatal error: only the alert in the BIO is left to send */
	bool notify_sent;  /* close_notify queued */
};

struct rc_tls_server {
	pthread_mutex_t lock;  /* guards ctx against a reload */
	SSL_CTX *ctx;
	char *cert, *key, *ca;
};

static const char *ssl_error_text(void)
{
	static _Thread_local char buf[160];
	unsigned long e = ERR_get_error();

	if (!e)
		return "unexpected end of stream";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* ALPN: we speak http/1.1 (the WebSocket upgrade); a client offering only
 * other protocols gets no ALPN answer rather than a failed handshake. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	for (unsigned i = 0; i < inlen;) {
		unsigned n = in[i];
		if (i + 1 + n <= inlen && n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *server_ctx_new(const char *cert, const char *key, const char *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_NO_COMPRESSION);
	/* Idle sessions hold no 16 KB record buffers: ~20 KB of TLS state per idle
	 * connection instead of ~49 KB (bench/RESULTS.md, TLS). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		rc_log(RC_LOG_ERROR, "tls: certificate %s: %s", cert, ssl_error_text());
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		rc_log(RC_LOG_ERROR, "tls: key %s: %s", key, ssl_error_text());
		goto err;
	}
	if (ca) {
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			rc_log(RC_LOG_ERROR, "tls: client CA %s: %s", ca, ssl_error_text());
			goto err;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
err:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Loads a server certificate and key (and optional client CA).  NULL with
 * the reason logged. */
struct rc_tls_server *rc__tls_server_new(const struct rc_tls_config *cfg)
{
	struct rc_tls_server *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ctx = server_ctx_new(cfg->cert_file, cfg->key_file, cfg->client_ca_file);
	if (!t->ctx) {
		free(t);
		return NULL;
	}
	t->cert = strdup(cfg->cert_file);
	t->key = strdup(cfg->key_file);
	t->ca = cfg->client_ca_file ? strdup(cfg->client_ca_file) : NULL;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

/* Re-reads the files; on failure the old context stays.  0 or -EINVAL. */
int rc__tls_server_reload(struct rc_tls_server *t)
{
	SSL_CTX *ctx = server_ctx_new(t->cert, t->key, t->ca), *old;

	if (!ctx)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	old = t->ctx;
	t->ctx = ctx;
	pthread_mutex_unlock(&t->lock);
	SSL_CTX_free(old); /* connections keep their own reference */
	return 0;
}

/* Frees a server context (no connection may still be accepted with it). */
void rc__tls_server_free(struct rc_tls_server *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->lock);
	free(t->cert);
	free(t->key);
	free(t->ca);
	free(t);
}

static int attach(struct rc_conn *c, SSL_CTX *ctx)
{
	struct rc_tls *t = rc__pool_alloc(c->loop->pool, sizeof(*t));

	if (!t)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	t->ssl = SSL_new(ctx);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio) {
		SSL_free(t->ssl);
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		rc__pool_release(t);
		return -ENOMEM;
	}
	BIO_set_mem_eof_return(t->rbio, -1); /* empty means "retry", not EOF */
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	c->tls = t;
	c->tp = &tls_transport;
	return 0;
}

/* Server side: a TLS session for an accepted connection. */
int rc__tls_accept(struct rc_conn *c, struct rc_tls_server *srv)
{
	int ret;

	pthread_mutex_lock(&srv->lock);
	ret = attach(c, srv->ctx); /* SSL_new takes its own ctx reference */
	pthread_mutex_unlock(&srv->lock);
	if (ret == 0)
		SSL_set_accept_state(c->tls->ssl);
	return ret;
}

/* ---- Client contexts: system CAs, insecure, or a given CA file ---------------- */

static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *client_default, *client_insecure, *client_cafile;
static char *client_cafile_path;

static SSL_CTX *client_ctx_new(const char *ca, bool insecure)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	static const unsigned char alpn[] = "\x08http/1.1";

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
	if (insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	if ((ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
		: SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		rc_log(RC_LOG_ERROR, "tls: CA %s: %s", ca ? ca : "(system store)", ssl_error_text());
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

static SSL_CTX *client_ctx(const char *ca, bool insecure)
{
	SSL_CTX **slot = insecure ? &client_insecure : ca ? &client_cafile : &client_default;
	SSL_CTX *ctx;

	pthread_mutex_lock(&client_lock);
	if (ca && !insecure && client_cafile && strcmp(client_cafile_path, ca) != 0) {
		SSL_CTX_free(client_cafile); /* one CA file cached at a time */
		client_cafile = NULL;
	}
	if (!*slot) {
		*slot = client_ctx_new(ca, insecure);
		if (ca && !insecure && *slot) {
			free(client_cafile_path);
			client_cafile_path = strdup(ca);
		}
	}
	ctx = *slot;
	if (ctx)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&client_lock);
	return ctx;
}

/* Client side: a TLS session verifying host (SNI + hostname check unless
 * insecure).  The handshake starts with the first flush. */
int rc__tls_connect(struct rc_conn *c, const char *host, const char *ca_file, bool insecure)
{
	SSL_CTX *ctx = client_ctx(ca_file, insecure);
	struct in6_addr a6;
	struct in_addr a4;
	bool ip;
	int ret;

	if (!ctx)
		return -EINVAL;
	ret = attach(c, ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (ret < 0)
		return ret;
	ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
	if (!ip)
		SSL_set_tlsext_host_name(c->tls->ssl, host);
	if (!insecure) {
		if (ip)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->tls->ssl), host);
		else
			SSL_set1_host(c->tls->ssl, host);
	}
	SSL_set_connect_state(c->tls->ssl);
	return 0;
}

/* Frees the session with the connection. */
static void tls_free(struct rc_conn *c)
{
	if (!c->tls)
		return;
	SSL_free(c->tls->ssl);
	rc__pool_release(c->tls);
	c->tls = NULL;
	c->tp = &rc__plain_transport;
}

/* ---- Data path ------------------------------------------------------------------- */

static bool pending_output(const struct rc_conn *c);

static void tls_fail(struct rc_conn *c, const char *what)
{
	const char *why = ssl_error_text();
	long v = SSL_get_verify_result(c->tls->ssl);

	if (v != X509_V_OK)
		why = X509_verify_cert_error_string(v);
	rc_log(RC_LOG_DEBUG, "tls: %s: %s", what, why);
	c->tls->failed = true;
	if (c->client) {
		char text[RC_CONTROL_MAX_PAYLOAD];
		int n = snprintf(text, sizeof(text), "TLS %s failed: %s", what, why);
		rc__conn_abort_why(c, text, n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n
									: sizeof(text) - 1);
	} else if (pending_output(c) && c->state != RC_CS_DEAD) {
		/* Send OpenSSL's alert (e.g. protocol_version) so the peer learns
		 * why, then close as after any answer: shutdown, bounded wait. */
		c->fail_fast = true;
		rc__conn_enter(c, RC_CS_DRAIN, NULL);
		rc__timer_arm(c, RC_T_CLOSE, c->loop->opt.close_timeout_ms);
		rc__conn_schedule_flush(c);
	} else {
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
	}
}

static bool pending_output(const struct rc_conn *c)
{
	return BIO_ctrl_pending(c->tls->wbio) > 0;
}

/* Ciphertext arrived: decrypt and dispatch what it completes. */
void rc__tls_on_recv(struct rc_conn *c, uint8_t *p, size_t n)
{
	struct rc_tls *t = c->tls;
	struct rc_loop *l = c->loop;
	int r;

	if (t->failed)
		return; /* draining the alert: the rest is noise */
	if (BIO_write(t->rbio, p, (int)n) != (int)n) {
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return;
	}
	if (!t->done) {
		r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			int e = SSL_get_error(t->ssl, r);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				tls_fail(c, "handshake");
				return;
			}
		} else {
			t->done = true;
		}
	}
	if (!l->tls_scratch && !(l->tls_scratch = malloc(RC_TLS_SCRATCH))) {
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return;
	}
	while (t->done && c->tls == t && c->state != RC_CS_DEAD) {
		r = SSL_read(t->ssl, l->tls_scratch, RC_TLS_SCRATCH);
		if (r > 0) {
			rc__conn_input(c, l->tls_scratch, (size_t)r);
			continue;
		}
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify: like EOF */
			rc__conn_abort(c, c->close_rcvd ? c->peer_close : RC_CLOSE_ABNORMAL);
			return;
		}
		tls_fail(c, "read");
		return;
	}
	if (c->tls == t && c->state != RC_CS_DEAD && pending_output(c))
		rc__conn_schedule_flush(c);
}

/* Ciphertext kept ahead of the socket: plaintext is encrypted only while
 * less than this is waiting to be sent.  The rest of the queue stays the
 * shared plaintext frames (one copy for every subscriber, and droppable by
 * rc_conn_close_now) instead of a per-connection ciphertext copy of it. */
#define RC_TLS_AHEAD (64u << 10)

/* The last ciphertext node of the queue (the queue is "ciphertext, then
 * plaintext"), or NULL; *bytes gets the ciphertext bytes not yet sent. */
static struct rc_sendq_node *cipher_tail(struct rc_conn *c, size_t *bytes)
{
	struct rc_sendq_node *n = c->sq_head, *last = NULL;

	*bytes = 0;
	for (; n && n->cipher; n = n->next) {
		*bytes += n->buf->len - (n == c->sq_head ? c->sq_off : 0);
		last = n;
	}
	return last;
}

/* Encrypts queued plaintext (while less than RC_TLS_AHEAD of ciphertext
 * waits) and moves the write BIO's bytes into the queue as one ciphertext
 * buffer.  Returns 0 or -errno (connection failed). */
static int tls_seal(struct rc_conn *c)
{
	struct rc_tls *t = c->tls;
	size_t ahead, pending;
	struct rc_sendq_node *last = cipher_tail(c, &ahead), *n;
	int r;

	if (!t->done && !t->failed) {
		r = SSL_do_handshake(t->ssl);
		if (r == 1) {
			t->done = true;
		} else {
			int e = SSL_get_error(t->ssl, r);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				tls_fail(c, "handshake");
				return -EPROTO;
			}
		}
	}
	while (t->done && !t->failed && ahead < RC_TLS_AHEAD &&
	       (n = last ? last->next : c->sq_head)) {
		r = SSL_write(t->ssl, n->buf->data, (int)n->buf->len);
		ahead += n->buf->len;
		if (r <= 0) {
			tls_fail(c, "write");
			return -EPROTO;
		}
		if (last)
			last->next = n->next;
		else
			c->sq_head = n->next;
		if (c->sq_tail == n)
			c->sq_tail = last;
		rc__queued_add(c, -(ptrdiff_t)n->buf->len);
		rc_buf_unref(n->buf);
		rc__pool_release(n);
	}
	pending = BIO_ctrl_pending(t->wbio);
	if (!pending)
		return 0;
	struct rc_buf *b = rc_buf_new(pending);
	n = rc__pool_alloc(c->loop->pool, sizeof(*n));
	if (!b || !n || BIO_read(t->wbio, b->data, (int)pending) != (int)pending) {
		rc_buf_unref(b);
		rc__pool_release(n);
		rc__conn_abort(c, RC_CLOSE_ABNORMAL);
		return -ENOMEM;
	}
	b->len = pending;
	n->buf = b;
	n->cipher = true;
	n->next = last ? last->next : c->sq_head;
	if (last)
		last->next = n;
	else
		c->sq_head = n;
	if (!n->next)
		c->sq_tail = n;
	rc__queued_add(c, (ptrdiff_t)pending);
	return 0;
}

/* Queues close_notify once before our side shuts down.  Returns true if it
 * queued something (the caller waits for it to be sent). */
static bool tls_close_notify(struct rc_conn *c)
{
	struct rc_tls *t = c->tls;

	if (!t || t->notify_sent || !t->done)
		return false;
	t->notify_sent = true;
	SSL_shutdown(t->ssl);
	if (!pending_output(c))
		return false;
	rc__conn_schedule_flush(c);
	return true;
}

/* True when the connection is encrypted. */
bool rc_conn_tls(const struct rc_conn *c)
{
	return c->tls != NULL;
}

/* The TLS transport: OpenSSL over memory BIOs, the ring does the I/O. */
static const struct rc_transport tls_transport = {
	.recv = rc__tls_on_recv,
	.seal = tls_seal,
	.close_notify = tls_close_notify,
	.free = tls_free,
};
