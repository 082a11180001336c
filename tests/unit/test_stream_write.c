/* stream_write over a real socket pair: what the socket takes goes at once and costs no
 * callback; what it does not is queued, and later writes queue behind it, so bytes arrive
 * whole and in order; a broken stream is an error at once, with nothing left allocated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/stream_write.h"

#define BIG (4u << 20) /* far more than a socket pair's buffers hold */

struct pair {
	uv_loop_t loop;
	uv_pipe_t writer;
	uv_pipe_t reader;
	int reader_fd;
	unsigned callbacks;
	int last_status;
	struct buf received;
	size_t want;
};

static int setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	int fds[2];

	assert_non_null(p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	assert_int_equal(uv_loop_init(&p->loop), 0);
	assert_int_equal(uv_pipe_init(&p->loop, &p->writer, 0), 0);
	assert_int_equal(uv_pipe_open(&p->writer, fds[0]), 0);
	assert_int_equal(uv_pipe_init(&p->loop, &p->reader, 0), 0);
	assert_int_equal(uv_pipe_open(&p->reader, fds[1]), 0);
	p->writer.data = p->reader.data = p;
	p->reader_fd = fds[1];
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	if (!uv_is_closing((uv_handle_t *)&p->writer))
		uv_close((uv_handle_t *)&p->writer, NULL);
	if (!uv_is_closing((uv_handle_t *)&p->reader))
		uv_close((uv_handle_t *)&p->reader, NULL);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&p->loop), 0);
	buf_free(&p->received);
	free(p);
	return 0;
}

static void on_written(uv_write_t *req, int status)
{
	struct pair *p = req->handle->data;

	free(req);
	p->callbacks++;
	p->last_status = status;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct pair *p = stream->data;

	if (nread > 0)
		assert_int_equal(buf_append(&p->received, buf->base, (size_t)nread), 0);
	free(buf->base);
	if (nread < 0 || p->received.len >= p->want)
		uv_read_stop(stream);
}

static struct stream_write *filled(const void *data, size_t len)
{
	struct stream_write *w = stream_write_new(len);

	assert_non_null(w);
	memcpy(w->bytes, data, len);
	return w;
}

static void what_the_socket_takes_goes_at_once_without_a_callback(void **state)
{
	struct pair *p = *state;
	char got[16] = {0};

	assert_int_equal(stream_write((uv_stream_t *)&p->writer, filled("hello", 5), 5, on_written),
			 0);
	assert_int_equal(uv_stream_get_write_queue_size((uv_stream_t *)&p->writer), 0);
	/* Already in the socket, before the loop has run at all. */
	assert_int_equal(read(p->reader_fd, got, sizeof(got)), 5);
	assert_memory_equal(got, "hello", 5);
	uv_run(&p->loop, UV_RUN_NOWAIT);
	assert_int_equal(p->callbacks, 0);
}

static void the_rest_is_queued_and_later_writes_wait_behind_it(void **state)
{
	struct pair *p = *state;
	uint8_t *big = malloc(BIG);

	assert_non_null(big);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	assert_int_equal(stream_write((uv_stream_t *)&p->writer, filled(big, BIG), BIG, on_written),
			 0);
	assert_true(uv_stream_get_write_queue_size((uv_stream_t *)&p->writer) > 0);
	/* The socket has room again once the reader starts, but this must not overtake. */
	assert_int_equal(stream_write((uv_stream_t *)&p->writer, filled("tail", 4), 4, on_written),
			 0);
	p->want = BIG + 4;
	assert_int_equal(uv_read_start((uv_stream_t *)&p->reader, stream_alloc, on_read), 0);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	assert_int_equal(p->received.len, BIG + 4);
	assert_memory_equal(p->received.data, big, BIG);
	assert_memory_equal(p->received.data + BIG, "tail", 4);
	assert_int_equal(p->callbacks, 2);
	assert_int_equal(p->last_status, 0);
	free(big);
}

static void a_broken_stream_is_an_error_at_once(void **state)
{
	struct pair *p = *state;

	uv_close((uv_handle_t *)&p->reader, NULL);
	uv_run(&p->loop, UV_RUN_NOWAIT);
	assert_true(stream_write((uv_stream_t *)&p->writer, filled("lost", 4), 4, on_written) < 0);
	uv_run(&p->loop, UV_RUN_NOWAIT);
	assert_int_equal(p->callbacks, 0);
}

static void everything_openssl_wrote_is_sent(void **state)
{
	struct pair *p = *state;
	BIO *bio = BIO_new(BIO_s_mem());
	char got[64] = {0};

	assert_non_null(bio);
	assert_int_equal(BIO_write(bio, "one ", 4), 4);
	assert_int_equal(BIO_write(bio, "two", 3), 3);
	assert_int_equal(stream_write_bio((uv_stream_t *)&p->writer, bio, on_written), 0);
	assert_int_equal(BIO_ctrl_pending(bio), 0);
	assert_int_equal(read(p->reader_fd, got, sizeof(got)), 7);
	assert_memory_equal(got, "one two", 7);
	BIO_free(bio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			what_the_socket_takes_goes_at_once_without_a_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(the_rest_is_queued_and_later_writes_wait_behind_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_broken_stream_is_an_error_at_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(everything_openssl_wrote_is_sent, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
