/* Writing to a libuv stream without a loop turn's worth of bookkeeping.
 *
 * libuv (1.44) finishes a uv_write that the socket took at once on the next loop turn,
 * and re-arms the stream's epoll registration while doing so: one epoll_ctl and one
 * callback for every message, on every KMIP connection, Raft link and peer channel.
 * stream_write tries the socket first and only queues what it did not take. */
#ifndef KMIPD_STREAM_WRITE_H
#define KMIPD_STREAM_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <uv.h>

struct stream_write {
	uv_write_t req; /* first: the callback may free(req) */
	uv_buf_t buf;
	uint8_t bytes[];
};

/* A write of @len bytes for the caller to fill in; NULL when out of memory. */
struct stream_write *stream_write_new(size_t len);

/* Sends the first @len bytes of @w. Takes @w whatever happens: frees it when the socket
 * took everything (@cb is then not called), or queues the rest behind the stream's other
 * writes, after which @cb runs and must free(req). 0, or a negative libuv error (the
 * stream is broken; @w is freed). Order is kept: nothing is tried at once while earlier
 * writes are queued. */
int stream_write(uv_stream_t *stream, struct stream_write *w, size_t len, uv_write_cb cb);

/* Sends everything pending in @bio (what OpenSSL wrote for the socket) with stream_write.
 * 0, KMIPD_ENOMEM, or KMIPD_EIO when the stream is broken. */
int stream_write_bio(uv_stream_t *stream, BIO *bio, uv_write_cb cb);

/* A uv_alloc_cb: a read buffer of libuv's suggested size from malloc (an empty one when
 * out of memory, which libuv reports as UV_ENOBUFS); the read callback frees it. */
void stream_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

#endif
