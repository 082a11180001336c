/* TTLV encoding: a writer that appends items to a growable buffer and back-fills the
 * lengths of structures when they are closed. */
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/ttlv.h"

void ttlv_writer_init(struct ttlv_writer *w, struct buf *out)
{
	w->out = out;
	w->start = out->len;
	w->error = 0;
	w->depth = 0;
}

static void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
	store_be32(p, (uint32_t)(v >> 32));
	store_be32(p + 4, (uint32_t)v);
}

/* Appends a header and room for @length bytes of value plus zeroed padding; returns where
 * the value goes, or NULL after recording an error. */
static uint8_t *put_header(struct ttlv_writer *w, uint32_t tag, enum ttlv_type type, size_t length)
{
	size_t padded = (length + 7) & ~(size_t)7;
	uint8_t *p;

	if (w->error != 0)
		return NULL;
	if (length > UINT32_MAX || tag > 0xFFFFFF) {
		w->error = length > UINT32_MAX ? KMIPD_ETOO_LARGE : KMIPD_EINVAL;
		return NULL;
	}
	if (buf_reserve(w->out, TTLV_HEADER_SIZE + padded) != 0) {
		w->error = KMIPD_ENOMEM;
		return NULL;
	}
	p = w->out->data + w->out->len;
	p[0] = (uint8_t)(tag >> 16);
	p[1] = (uint8_t)(tag >> 8);
	p[2] = (uint8_t)tag;
	p[3] = (uint8_t)type;
	store_be32(p + 4, (uint32_t)length);
	memset(p + TTLV_HEADER_SIZE + length, 0, padded - length);
	w->out->len += TTLV_HEADER_SIZE + padded;
	return p + TTLV_HEADER_SIZE;
}

void ttlv_begin(struct ttlv_writer *w, uint32_t tag)
{
	size_t at = w->out->len;

	if (w->error == 0 && w->depth == TTLV_MAX_DEPTH) {
		w->error = KMIPD_ETOO_DEEP;
		return;
	}
	if (put_header(w, tag, TTLV_STRUCTURE, 0) != NULL)
		w->open[w->depth++] = at;
}

void ttlv_end(struct ttlv_writer *w)
{
	size_t at, length;

	if (w->error != 0)
		return;
	if (w->depth == 0) {
		w->error = KMIPD_EINVAL;
		return;
	}
	at = w->open[--w->depth];
	length = w->out->len - at - TTLV_HEADER_SIZE;
	if (length > UINT32_MAX) {
		w->error = KMIPD_ETOO_LARGE;
		return;
	}
	store_be32(w->out->data + at + 4, (uint32_t)length);
}

void ttlv_put_integer(struct ttlv_writer *w, uint32_t tag, int32_t value)
{
	uint8_t *p = put_header(w, tag, TTLV_INTEGER, 4);

	if (p != NULL)
		store_be32(p, (uint32_t)value);
}

void ttlv_put_long(struct ttlv_writer *w, uint32_t tag, int64_t value)
{
	uint8_t *p = put_header(w, tag, TTLV_LONG_INTEGER, 8);

	if (p != NULL)
		store_be64(p, (uint64_t)value);
}

void ttlv_put_big(struct ttlv_writer *w, uint32_t tag, const uint8_t *value, size_t len)
{
	size_t padded = len == 0 ? 8 : (len + 7) & ~(size_t)7;
	uint8_t fill = len > 0 && (value[0] & 0x80) ? 0xFF : 0x00;
	uint8_t *p;

	if (len > SIZE_MAX - 8) {
		w->error = w->error ? w->error : KMIPD_ETOO_LARGE;
		return;
	}
	p = put_header(w, tag, TTLV_BIG_INTEGER, padded);
	if (p == NULL)
		return;
	memset(p, fill, padded - len);
	if (len > 0)
		memcpy(p + padded - len, value, len);
}

void ttlv_put_enum(struct ttlv_writer *w, uint32_t tag, uint32_t value)
{
	uint8_t *p = put_header(w, tag, TTLV_ENUMERATION, 4);

	if (p != NULL)
		store_be32(p, value);
}

void ttlv_put_bool(struct ttlv_writer *w, uint32_t tag, bool value)
{
	uint8_t *p = put_header(w, tag, TTLV_BOOLEAN, 8);

	if (p != NULL)
		store_be64(p, value ? 1 : 0);
}

void ttlv_put_text(struct ttlv_writer *w, uint32_t tag, const char *text, size_t len)
{
	uint8_t *p = put_header(w, tag, TTLV_TEXT_STRING, len);

	if (p != NULL && len > 0)
		memcpy(p, text, len);
}

void ttlv_put_cstr(struct ttlv_writer *w, uint32_t tag, const char *text)
{
	ttlv_put_text(w, tag, text, strlen(text));
}

void ttlv_put_bytes(struct ttlv_writer *w, uint32_t tag, const void *data, size_t len)
{
	uint8_t *p = put_header(w, tag, TTLV_BYTE_STRING, len);

	if (p != NULL && len > 0)
		memcpy(p, data, len);
}

void ttlv_put_datetime(struct ttlv_writer *w, uint32_t tag, int64_t seconds)
{
	uint8_t *p = put_header(w, tag, TTLV_DATE_TIME, 8);

	if (p != NULL)
		store_be64(p, (uint64_t)seconds);
}

void ttlv_put_interval(struct ttlv_writer *w, uint32_t tag, uint32_t seconds)
{
	uint8_t *p = put_header(w, tag, TTLV_INTERVAL, 4);

	if (p != NULL)
		store_be32(p, seconds);
}

void ttlv_put_item_as(struct ttlv_writer *w, uint32_t tag, const struct ttlv_item *item)
{
	uint8_t *p;

	switch (item->type) {
	case TTLV_STRUCTURE:
		ttlv_begin(w, tag);
		for (const struct ttlv_item *c = item->v.children.first; c != NULL; c = c->next)
			ttlv_put_item(w, c);
		ttlv_end(w);
		break;
	case TTLV_INTEGER:
		ttlv_put_integer(w, tag, item->v.integer);
		break;
	case TTLV_LONG_INTEGER:
		ttlv_put_long(w, tag, item->v.long_integer);
		break;
	case TTLV_ENUMERATION:
		ttlv_put_enum(w, tag, item->v.enumeration);
		break;
	case TTLV_BOOLEAN:
		ttlv_put_bool(w, tag, item->v.boolean);
		break;
	case TTLV_DATE_TIME:
		ttlv_put_datetime(w, tag, item->v.date_time);
		break;
	case TTLV_INTERVAL:
		ttlv_put_interval(w, tag, item->v.interval);
		break;
	case TTLV_BIG_INTEGER:
		ttlv_put_big(w, tag, item->v.bytes, item->length);
		break;
	case TTLV_TEXT_STRING:
	case TTLV_BYTE_STRING:
		p = put_header(w, tag, (enum ttlv_type)item->type, item->length);
		if (p != NULL && item->length > 0)
			memcpy(p, item->v.bytes, item->length);
		break;
	default:
		if (w->error == 0)
			w->error = KMIPD_EINVAL;
		break;
	}
}

void ttlv_put_item(struct ttlv_writer *w, const struct ttlv_item *item)
{
	ttlv_put_item_as(w, item->tag, item);
}

int ttlv_writer_finish(struct ttlv_writer *w)
{
	if (w->error == 0 && w->depth != 0)
		w->error = KMIPD_EINVAL;
	if (w->error != 0 && w->out->len > w->start) {
		explicit_bzero(w->out->data + w->start, w->out->len - w->start);
		w->out->len = w->start;
	}
	return w->error;
}

int ttlv_encode(const struct ttlv_item *root, struct buf *out)
{
	struct ttlv_writer w;

	ttlv_writer_init(&w, out);
	ttlv_put_item(&w, root);
	return ttlv_writer_finish(&w);
}
