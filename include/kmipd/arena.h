/* A bump allocator for per-request data: the decoded TTLV tree, parsed requests, response
 * pieces. Everything allocated from an arena is released together by arena_reset() or
 * arena_free(); there is no per-allocation free.
 *
 * The memory an arena hands out may hold secrets (key material in a Register request), so
 * reset and free wipe every byte that was used before it is reused or returned to libc. */
#ifndef KMIPD_ARENA_H
#define KMIPD_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *chunks; /* newest first; the last one is kept by arena_reset() */
	size_t chunk_size;	    /* size of a regular chunk's payload */
	size_t used;		    /* bytes handed out since the last reset */
	size_t limit;		    /* at most this many bytes between resets; 0 = no limit */
};

/* Prepares @a. Chunks of @chunk_size bytes are allocated on demand (larger requests get a
 * chunk of their own). @limit caps the bytes handed out between resets (0: no cap), so a
 * hostile message cannot make one request take unbounded memory. Allocates nothing. */
void arena_init(struct arena *a, size_t chunk_size, size_t limit);

/* Returns @size bytes aligned for any type, or NULL when out of memory or past the limit.
 * The memory is not zeroed. */
void *arena_alloc(struct arena *a, size_t size);

/* As arena_alloc(), zeroed. */
void *arena_zalloc(struct arena *a, size_t size);

/* Copies @len bytes of @s into the arena and NUL-terminates the copy. NULL on failure. */
char *arena_strndup(struct arena *a, const char *s, size_t len);

/* Wipes and releases everything allocated so far, keeping one chunk for reuse. */
void arena_reset(struct arena *a);

/* Wipes and frees all memory of @a. @a may be initialised again afterwards. */
void arena_free(struct arena *a);

#endif
