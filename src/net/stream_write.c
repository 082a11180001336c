/* See stream_write.h. */
#include <stdlib.h>

#include "kmipd/error.h"
#include "kmipd/stream_write.h"

struct stream_write *stream_write_new(size_t len)
{
	return malloc(sizeof(struct stream_write) + len);
}

int stream_write(uv_stream_t *stream, struct stream_write *w, size_t len, uv_write_cb cb)
{
	uv_buf_t all = uv_buf_init((char *)w->bytes, (unsigned)len);
	int n = uv_try_write(stream, &all, 1); /* UV_EAGAIN while writes are queued */
	int rv;

	if (n == UV_EAGAIN)
		n = 0;
	if (n < 0 || (size_t)n == len) {
		free(w);
		return n < 0 ? n : 0;
	}
	w->buf = uv_buf_init((char *)w->bytes + n, (unsigned)(len - (size_t)n));
	rv = uv_write(&w->req, stream, &w->buf, 1, cb);
	if (rv != 0)
		free(w);
	return rv;
}

void stream_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	(void)handle;
	buf->base = malloc(suggested);
	buf->len = buf->base != NULL ? suggested : 0;
}

int stream_write_bio(uv_stream_t *stream, BIO *bio, uv_write_cb cb)
{
	size_t pending;

	while ((pending = BIO_ctrl_pending(bio)) > 0) {
		struct stream_write *w = stream_write_new(pending);
		int n;

		if (w == NULL)
			return KMIPD_ENOMEM;
		n = BIO_read(bio, w->bytes, (int)pending);
		if (n <= 0) {
			free(w);
			return KMIPD_EIO;
		}
		if (stream_write(stream, w, (size_t)n, cb) != 0)
			return KMIPD_EIO;
	}
	return 0;
}
