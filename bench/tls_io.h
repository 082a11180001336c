/* The socket side of a TLS connection driven through memory BIOs on a non-blocking
 * socket in an epoll set, shared by kmip-bench (the client) and canned-server (the
 * reference server), so that both sides of a comparison move bytes the same way. */
#ifndef KMIPD_BENCH_TLS_IO_H
#define KMIPD_BENCH_TLS_IO_H

#include <errno.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "kmipd/buf.h"

/* Sends @pend (ciphertext the socket did not take yet) as far as the socket takes it. 0,
 * or -1 if the socket failed. */
static inline int tls_io_send(int fd, struct buf *pend)
{
	size_t off = 0;

	while (off < pend->len) {
		ssize_t n = send(fd, pend->data + off, pend->len - off, MSG_NOSIGNAL);

		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		else
			return -1;
	}
	buf_consume(pend, off);
	return 0;
}

/* Moves what OpenSSL wrote into @wbio to the socket (one send per flight), and asks @ep
 * for EPOLLOUT on @fd (event data @tag) while some is left. 0, or -1 on failure. */
static inline int tls_io_flush(BIO *wbio, int fd, struct buf *pend, int ep, void *tag,
			       bool *want_out)
{
	size_t n;

	while ((n = BIO_ctrl_pending(wbio)) > 0) {
		int got;

		if (buf_reserve(pend, n) != 0)
			return -1;
		got = BIO_read(wbio, pend->data + pend->len, (int)n);
		if (got <= 0)
			return -1;
		pend->len += (size_t)got;
	}
	if (tls_io_send(fd, pend) != 0)
		return -1;
	if ((pend->len > 0) != *want_out) {
		struct epoll_event ev;

		*want_out = pend->len > 0;
		ev.events = EPOLLIN | (*want_out ? EPOLLOUT : 0);
		ev.data.ptr = tag;
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	}
	return 0;
}

/* Reads what the socket has into @rbio (level-triggered: a short read means the socket is
 * drained for now); sets *@eof when the peer has closed. 0, or -1 if the socket failed. */
static inline int tls_io_fill(int fd, BIO *rbio, bool *eof)
{
	uint8_t data[16384];

	for (;;) {
		ssize_t n = recv(fd, data, sizeof(data), 0);

		if (n > 0) {
			if (BIO_write(rbio, data, (int)n) != (int)n)
				return -1;
			if ((size_t)n < sizeof(data))
				return 0;
		} else if (n == 0) {
			*eof = true;
			return 0;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return 0;
		} else {
			return -1;
		}
	}
}

#endif
