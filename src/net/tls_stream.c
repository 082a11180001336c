/* A TLS connection on a libuv loop through memory BIOs; see tls_stream.h. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/net.h"
#include "kmipd/stream_write.h"
#include "kmipd/tls.h"
#include "kmipd/tls_stream.h"

struct tls_stream {
	uv_tcp_t tcp;
	/* Both active while @out holds plaintext: @flush_check sends it once the callbacks of
	 * the loop's current poll have run, @flush_idle before the loop next polls (for what
	 * is written after the check, and so that the poll does not block meanwhile). */
	uv_check_t flush_check;
	uv_idle_t flush_idle;
	unsigned handles; /* of the three, not yet closed */
	uv_connect_t connect;
	SSL *ssl;
	BIO *rbio, *wbio;
	const struct tls_stream_callbacks *cb;
	void *data;
	bool open; /* handshake done */
	bool closing;
	bool ending; /* tls_stream_end(): closes once what was written has gone */
	uv_shutdown_t shutdown;
	/* Plaintext written and not yet given to OpenSSL: what one turn of the loop writes
	 * leaves as one TLS record and one send, not one of each per call. Before the
	 * handshake has finished it waits for it. */
	struct buf out;
	char why[160];
};

/* Sent at once rather than at the end of the loop's turn: bounds what one stream holds. */
#define OUT_FLUSH_BYTES (64 * 1024)

static void on_closed(uv_handle_t *handle)
{
	struct tls_stream *s = handle->data;

	if (--s->handles > 0)
		return;
	s->cb->on_close(s, s->why);
	SSL_free(s->ssl);
	buf_free(&s->out);
	free(s);
}

void tls_stream_close(struct tls_stream *s, const char *why)
{
	if (s->closing)
		return;
	s->closing = true;
	if (why != s->why) /* tls_stream_end() set it already */
		snprintf(s->why, sizeof(s->why), "%s", why ? why : "closed");
	uv_close((uv_handle_t *)&s->flush_check, on_closed);
	uv_close((uv_handle_t *)&s->flush_idle, on_closed);
	uv_close((uv_handle_t *)&s->tcp, on_closed);
}

static int flush(struct tls_stream *s);
static int send_out(struct tls_stream *s);

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct tls_stream *s = req->data;

	(void)status;
	tls_stream_close(s, s->why);
}

void tls_stream_end(struct tls_stream *s, const char *why)
{
	if (s->closing || s->ending)
		return;
	s->ending = true;
	snprintf(s->why, sizeof(s->why), "%s", why ? why : "closed");
	if (s->open) {
		send_out(s);
		SSL_shutdown(s->ssl); /* close_notify, best effort */
		flush(s);
	}
	s->shutdown.data = s;
	if (uv_shutdown(&s->shutdown, (uv_stream_t *)&s->tcp, on_shutdown) != 0)
		tls_stream_close(s, s->why);
}

static void on_write(uv_write_t *req, int status)
{
	struct tls_stream *s = req->handle->data;

	free(req);
	if (status != 0 && status != UV_ECANCELED)
		tls_stream_close(s, uv_strerror(status));
}

/* Sends what OpenSSL has produced. */
static int flush(struct tls_stream *s)
{
	return stream_write_bio((uv_stream_t *)&s->tcp, s->wbio, on_write);
}

static int write_plain(struct tls_stream *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		int n = SSL_write(s->ssl, p, len > 1u << 30 ? 1 << 30 : (int)len);

		if (n <= 0)
			return KMIPD_EIO;
		p += n;
		len -= (size_t)n;
	}
	return flush(s);
}

/* Gives what was written to OpenSSL and the socket. */
static int send_out(struct tls_stream *s)
{
	int rv;

	uv_check_stop(&s->flush_check);
	uv_idle_stop(&s->flush_idle);
	if (s->out.len == 0)
		return 0;
	rv = write_plain(s, s->out.data, s->out.len);
	buf_clear(&s->out);
	return rv;
}

static void flush_out(struct tls_stream *s)
{
	if (send_out(s) != 0)
		tls_stream_close(s, "write failed");
}

static void on_flush_check(uv_check_t *check)
{
	flush_out(check->data);
}

static void on_flush_idle(uv_idle_t *idle)
{
	flush_out(idle->data);
}

int tls_stream_write(struct tls_stream *s, const void *data, size_t len)
{
	int rv;

	if (s->closing || s->ending)
		return KMIPD_EIO;
	rv = buf_append(&s->out, data, len);
	if (rv != 0 || !s->open)
		return rv;
	if (s->out.len >= OUT_FLUSH_BYTES)
		return send_out(s);
	uv_check_start(&s->flush_check, on_flush_check);
	uv_idle_start(&s->flush_idle, on_flush_idle);
	return 0;
}

static void pump(struct tls_stream *s)
{
	uint8_t plain[16384];
	char reason[160];
	int n;

	if (!s->open) {
		n = SSL_do_handshake(s->ssl);
		if (flush(s) != 0) {
			tls_stream_close(s, "write failed during the handshake");
			return;
		}
		if (n != 1) {
			if (SSL_get_error(s->ssl, n) != SSL_ERROR_WANT_READ)
				tls_stream_close(s, tls_last_error(reason, sizeof(reason)));
			return;
		}
		s->open = true;
		if (s->cb->on_open(s) != 0) {
			tls_stream_close(s, "peer refused");
			return;
		}
		if (send_out(s) != 0) {
			tls_stream_close(s, "write failed");
			return;
		}
	}
	while (!s->closing) {
		n = SSL_read(s->ssl, plain, sizeof(plain));
		if (n > 0) {
			s->cb->on_data(s, plain, (size_t)n);
			continue;
		}
		switch (SSL_get_error(s->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			flush(s);
			return;
		case SSL_ERROR_ZERO_RETURN:
			tls_stream_close(s, "peer closed");
			return;
		default:
			tls_stream_close(s, tls_last_error(reason, sizeof(reason)));
			return;
		}
	}
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct tls_stream *s = stream->data;

	if (nread < 0)
		tls_stream_close(s, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
	else if (nread > 0 && BIO_write(s->rbio, buf->base, (int)nread) != (int)nread)
		tls_stream_close(s, "out of memory");
	else if (nread > 0)
		pump(s);
	free(buf->base);
}

static struct tls_stream *stream_new(uv_loop_t *loop, SSL_CTX *ctx,
				     const struct tls_stream_callbacks *cb, void *data)
{
	struct tls_stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->ssl = SSL_new(ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (s->ssl == NULL || s->rbio == NULL || s->wbio == NULL) {
		SSL_free(s->ssl);
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		free(s);
		return NULL;
	}
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	s->cb = cb;
	s->data = data;
	uv_tcp_init(loop, &s->tcp);
	s->tcp.data = s;
	uv_check_init(loop, &s->flush_check);
	s->flush_check.data = s;
	uv_idle_init(loop, &s->flush_idle);
	s->flush_idle.data = s;
	s->handles = 3;
	return s;
}

/* Links between nodes must notice a peer that has gone silent (a cut network, a dead host)
 * in seconds: TCP alone retries with back-off for minutes, and after a partition healed
 * the Raft connections stayed stalled until its next retransmission (10-15 s). Unacked
 * data or keep-alive probes unanswered for this long end the connection; the owner then
 * connects again. */
#define SILENT_PEER_MS 3000

static void watch_for_silence(struct tls_stream *s)
{
	unsigned timeout = SILENT_PEER_MS;
	uv_os_fd_t fd;

	uv_tcp_nodelay(&s->tcp, 1);
	uv_tcp_keepalive(&s->tcp, 1, 1);
	if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
}

int tls_stream_accept(uv_stream_t *server, SSL_CTX *ctx, const struct tls_stream_callbacks *cb,
		      void *data, struct tls_stream **out)
{
	struct tls_stream *s = stream_new(server->loop, ctx, cb, data);

	if (s == NULL)
		return KMIPD_ENOMEM;
	*out = s;
	if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0) {
		tls_stream_close(s, "accept failed");
		return KMIPD_EIO;
	}
	watch_for_silence(s);
	SSL_set_accept_state(s->ssl);
	uv_read_start((uv_stream_t *)&s->tcp, stream_alloc, on_read);
	return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
	struct tls_stream *s = req->data;

	if (status != 0) {
		tls_stream_close(s, uv_strerror(status));
		return;
	}
	watch_for_silence(s);
	uv_read_start((uv_stream_t *)&s->tcp, stream_alloc, on_read);
	pump(s); /* sends the ClientHello */
}

int tls_stream_connect(uv_loop_t *loop, const struct sockaddr *addr, SSL_CTX *ctx,
		       const struct tls_stream_callbacks *cb, void *data, struct tls_stream **out)
{
	struct tls_stream *s = stream_new(loop, ctx, cb, data);

	if (s == NULL)
		return KMIPD_ENOMEM;
	*out = s;
	SSL_set_connect_state(s->ssl);
	s->connect.data = s;
	if (uv_tcp_connect(&s->connect, &s->tcp, addr, on_connect) != 0) {
		tls_stream_close(s, "connect failed");
		return KMIPD_EIO;
	}
	return 0;
}

X509 *tls_stream_peer_cert(struct tls_stream *s)
{
	X509 *cert = SSL_get0_peer_certificate(s->ssl);

	return cert != NULL && SSL_get_verify_result(s->ssl) == X509_V_OK ? cert : NULL;
}

void tls_stream_peer_address(struct tls_stream *s, char *out, size_t cap)
{
	net_peer_name(&s->tcp, out, cap);
}

void *tls_stream_data(struct tls_stream *s)
{
	return s->data;
}
