/* A growable byte buffer: responses are encoded into one, sockets read into one.
 *
 * The bytes may be secret (a Get response carries key material), so every way of
 * releasing or shrinking a buffer wipes what it held. */
#ifndef KMIPD_BUF_H
#define KMIPD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len; /* bytes in use */
	size_t cap; /* bytes allocated */
};

#define BUF_INIT           \
	{                  \
		NULL, 0, 0 \
	}

/* Makes room for @extra more bytes after len. 0 or KMIPD_ENOMEM (the buffer is then
 * unchanged). Growth moves the contents; the old storage is wiped before it is freed. */
int buf_reserve(struct buf *b, size_t extra);

/* Appends @len bytes. 0 or KMIPD_ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);

/* Appends the formatted text (no terminating NUL is counted in len, but one is kept
 * after it). 0 or KMIPD_ENOMEM. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Removes the first @n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Wipes the contents and sets len to 0; keeps the allocation. */
void buf_clear(struct buf *b);

/* Wipes and frees the storage; @b is empty (BUF_INIT) afterwards. */
void buf_free(struct buf *b);

#endif
