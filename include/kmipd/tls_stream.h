/* A TLS connection on a libuv loop: TCP through OpenSSL memory BIOs, delivering plaintext
 * to callbacks. Used by the peer channel between nodes and by the admin API; every call
 * and callback runs on the loop's thread.
 *
 * Lifetime: the stream is freed after on_close has run (once, whatever the cause); do not
 * touch it afterwards. */
#ifndef KMIPD_TLS_STREAM_H
#define KMIPD_TLS_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

struct tls_stream;

struct tls_stream_callbacks {
	/* The handshake is done; the peer's certificate has been verified against the
	 * context's CA. Return non-zero to refuse the peer (the stream closes). */
	int (*on_open)(struct tls_stream *stream);
	/* Plaintext arrived (@len bytes, valid during the call). */
	void (*on_data)(struct tls_stream *stream, const uint8_t *data, size_t len);
	/* The stream has closed: @why says why (a sentence). */
	void (*on_close)(struct tls_stream *stream, const char *why);
};

/* Accepts a connection waiting on @server as the TLS server side. */
int tls_stream_accept(uv_stream_t *server, SSL_CTX *ctx, const struct tls_stream_callbacks *cb,
		      void *data, struct tls_stream **out);

/* Connects to @addr as the TLS client side (the context verifies the server). */
int tls_stream_connect(uv_loop_t *loop, const struct sockaddr *addr, SSL_CTX *ctx,
		       const struct tls_stream_callbacks *cb, void *data, struct tls_stream **out);

/* Queues @len bytes of plaintext (copied). They are sent before the loop next polls, with
 * whatever else this turn of the loop writes to the stream (at 64 KiB held, at once);
 * before on_open they wait for the handshake. 0 or KMIPD_ENOMEM / KMIPD_EIO. */
int tls_stream_write(struct tls_stream *stream, const void *data, size_t len);

/* Starts closing; on_close follows. Plaintext not yet sent is dropped. */
void tls_stream_close(struct tls_stream *stream, const char *why);

/* Closes once everything written so far has been sent (close_notify, then a TCP
 * shutdown); on_close follows. Nothing more may be written. */
void tls_stream_end(struct tls_stream *stream, const char *why);

/* The verified peer certificate (borrowed; valid while the stream is open), or NULL. */
X509 *tls_stream_peer_cert(struct tls_stream *stream);

/* Writes the peer's address as "host:port" into @out ("?:0" if unknown). */
void tls_stream_peer_address(struct tls_stream *stream, char *out, size_t cap);

/* The user data given at creation. */
void *tls_stream_data(struct tls_stream *stream);

#endif
