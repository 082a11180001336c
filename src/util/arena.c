/* The per-request bump allocator (see include/kmipd/arena.h). */
#include "kmipd/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
	struct arena_chunk *next;
	size_t size; /* payload bytes */
	size_t used;
	alignas(max_align_t) unsigned char data[];
};

#define ALIGNMENT alignof(max_align_t)

void arena_init(struct arena *a, size_t chunk_size, size_t limit)
{
	a->chunks = NULL;
	a->chunk_size = chunk_size ? chunk_size : 4096;
	a->used = 0;
	a->limit = limit;
}

static struct arena_chunk *chunk_new(size_t size)
{
	struct arena_chunk *c = malloc(sizeof(*c) + size);

	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c = a->chunks;
	size_t rounded;

	if (size == 0)
		size = 1;
	if (size > SIZE_MAX - ALIGNMENT)
		return NULL;
	rounded = (size + ALIGNMENT - 1) & ~(ALIGNMENT - 1);
	if (a->limit != 0 && (rounded > a->limit || a->used > a->limit - rounded))
		return NULL;

	if (c == NULL || c->size - c->used < rounded) {
		struct arena_chunk *fresh =
			chunk_new(rounded > a->chunk_size ? rounded : a->chunk_size);

		if (fresh == NULL)
			return NULL;
		if (c != NULL && fresh->size == rounded && rounded > a->chunk_size) {
			/* An oversized request gets a chunk of its own, behind the current one,
			 * so the space left in the current chunk is not wasted. */
			fresh->next = c->next;
			c->next = fresh;
			c = fresh;
		} else {
			fresh->next = c;
			a->chunks = fresh;
			c = fresh;
		}
	}
	c->used += rounded;
	a->used += rounded;
	return c->data + c->used - rounded;
}

void *arena_zalloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *copy;

	if (len == SIZE_MAX)
		return NULL;
	copy = arena_alloc(a, len + 1);
	if (copy == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

static void chunk_release(struct arena_chunk *c)
{
	explicit_bzero(c->data, c->used);
	free(c);
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *c = a->chunks;
	struct arena_chunk *keep = NULL;

	/* Keep the first regular-sized chunk met; release the rest. */
	while (c != NULL) {
		struct arena_chunk *next = c->next;

		if (keep == NULL && c->size == a->chunk_size) {
			explicit_bzero(c->data, c->used);
			c->used = 0;
			c->next = NULL;
			keep = c;
		} else {
			chunk_release(c);
		}
		c = next;
	}
	a->chunks = keep;
	a->used = 0;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->chunks;

	while (c != NULL) {
		struct arena_chunk *next = c->next;

		chunk_release(c);
		c = next;
	}
	a->chunks = NULL;
	a->used = 0;
}
