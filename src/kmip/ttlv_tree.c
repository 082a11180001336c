/* Walking and building TTLV trees (see include/kmipd/ttlv.h). */
#include <string.h>

#include "kmipd/ttlv.h"

const struct ttlv_item *ttlv_child(const struct ttlv_item *parent, uint32_t tag)
{
	if (parent == NULL || parent->type != TTLV_STRUCTURE)
		return NULL;
	for (const struct ttlv_item *c = parent->v.children.first; c != NULL; c = c->next)
		if (c->tag == tag)
			return c;
	return NULL;
}

const struct ttlv_item *ttlv_next_same(const struct ttlv_item *item)
{
	for (const struct ttlv_item *c = item ? item->next : NULL; c != NULL; c = c->next)
		if (c->tag == item->tag)
			return c;
	return NULL;
}

bool ttlv_text_equals(const struct ttlv_item *item, const char *s)
{
	size_t n = strlen(s);

	/* An empty text made by ttlv_new() has no bytes; memcmp() must not see that NULL. */
	return item != NULL && item->type == TTLV_TEXT_STRING && item->length == n &&
	       (n == 0 || memcmp(item->v.bytes, s, n) == 0);
}

struct ttlv_item *ttlv_new(struct arena *arena, uint32_t tag, enum ttlv_type type)
{
	struct ttlv_item *item = arena_zalloc(arena, sizeof(*item));

	if (item == NULL)
		return NULL;
	item->tag = tag;
	item->type = (uint8_t)type;
	switch (type) {
	case TTLV_INTEGER:
	case TTLV_ENUMERATION:
	case TTLV_INTERVAL:
		item->length = 4;
		break;
	case TTLV_LONG_INTEGER:
	case TTLV_BOOLEAN:
	case TTLV_DATE_TIME:
		item->length = 8;
		break;
	default:
		break;
	}
	return item;
}

struct ttlv_item *ttlv_new_bytes(struct arena *arena, uint32_t tag, enum ttlv_type type,
				 const void *data, size_t len)
{
	struct ttlv_item *item;
	uint8_t *copy;

	if (len > UINT32_MAX)
		return NULL;
	item = ttlv_new(arena, tag, type);
	copy = arena_alloc(arena, len);
	if (item == NULL || copy == NULL)
		return NULL;
	if (len > 0)
		memcpy(copy, data, len);
	item->length = (uint32_t)len;
	item->v.bytes = copy;
	return item;
}

void ttlv_append(struct ttlv_item *parent, struct ttlv_item *child)
{
	child->next = NULL;
	if (parent->v.children.last == NULL)
		parent->v.children.first = child;
	else
		parent->v.children.last->next = child;
	parent->v.children.last = child;
	parent->v.children.count++;
}
