/* Strict TTLV decoding into an arena-allocated tree, and framing of messages on a stream.
 * Every length is checked against what encloses it before a byte of the value is read. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/ttlv.h"

static const char *const rule_texts[] = {
#define RULE_TEXT_(name, text) text,
	TTLV_RULES(RULE_TEXT_)
#undef RULE_TEXT_
};

const char *ttlv_rule_text(enum ttlv_rule rule)
{
	if ((size_t)rule >= sizeof(rule_texts) / sizeof(rule_texts[0]))
		return "unknown rule";
	return rule_texts[rule];
}

const char *ttlv_type_name(unsigned type)
{
	static const char *const names[] = {
		NULL,	       "Structure",   "Integer",  "Long Integer",
		"Big Integer", "Enumeration", "Boolean",  "Text String",
		"Byte String", "Date-Time",   "Interval",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : NULL;
}

struct decoder {
	const uint8_t *data;
	size_t len;
	unsigned max_depth;
	struct arena *arena;
	struct ttlv_error *err;
};

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t load_be64(const uint8_t *p)
{
	return (uint64_t)load_be32(p) << 32 | load_be32(p + 4);
}

static int fail(struct ttlv_error *err, int code, enum ttlv_rule rule, size_t offset, uint32_t tag,
		const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Records the rejection in @err and returns @code. */
static int fail(struct ttlv_error *err, int code, enum ttlv_rule rule, size_t offset, uint32_t tag,
		const char *fmt, ...)
{
	char detail[128] = "";
	char where[64];
	const char *name = tag ? kmip_tag_name(tag) : NULL;
	va_list ap;

	if (err == NULL)
		return code;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	if (tag == 0)
		snprintf(where, sizeof(where), "offset %zu", offset);
	else if (name != NULL)
		snprintf(where, sizeof(where), "offset %zu (%s, tag 0x%06X)", offset, name, tag);
	else
		snprintf(where, sizeof(where), "offset %zu (tag 0x%06X)", offset, tag);
	err->rule = rule;
	err->offset = offset;
	err->tag = tag;
	snprintf(err->message, sizeof(err->message), "%s: %s%s%s", where, ttlv_rule_text(rule),
		 detail[0] ? ": " : "", detail);
	return code;
}

/* The bytes a value of @length occupies on the wire, padding included. */
static size_t padded(uint32_t length)
{
	return ((size_t)length + 7) & ~(size_t)7;
}

/* The exact length a fixed-size type must have, or 0 for variable-length types. */
static uint32_t fixed_length(unsigned type)
{
	switch (type) {
	case TTLV_INTEGER:
	case TTLV_ENUMERATION:
	case TTLV_INTERVAL:
		return 4;
	case TTLV_LONG_INTEGER:
	case TTLV_BOOLEAN:
	case TTLV_DATE_TIME:
		return 8;
	default:
		return 0;
	}
}

static bool valid_utf8(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			n = 1, cp = c & 0x1Fu, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2, cp = c & 0x0Fu, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3, cp = c & 0x07u, min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3Fu);
		}
		/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
		if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return false;
		i += n + 1;
	}
	return true;
}

static int decode_value(struct decoder *d, struct ttlv_item *item, size_t value_at, unsigned depth);

/* Decodes the items in [@at, @end) as the children of @parent (or, with @parent NULL, the
 * single top-level item into *@root). */
static int decode_items(struct decoder *d, size_t at, size_t end, unsigned depth,
			struct ttlv_item *parent, struct ttlv_item **root)
{
	while (at < end) {
		const uint8_t *h = d->data + at;
		struct ttlv_item *item;
		uint32_t tag, length, fixed;
		uint8_t type;
		int rv;

		if (end - at < TTLV_HEADER_SIZE)
			return fail(d->err, end == d->len ? KMIPD_ETRUNCATED : KMIPD_EMALFORMED,
				    TTLV_RULE_SHORT_HEADER, at, 0, "%zu byte(s) left", end - at);
		tag = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
		type = h[3];
		length = load_be32(h + 4);
		if (h[0] != 0x42 && h[0] != 0x54)
			return fail(d->err, KMIPD_EMALFORMED, TTLV_RULE_BAD_TAG, at, 0,
				    "tag 0x%06X", tag);
		if (ttlv_type_name(type) == NULL)
			return fail(d->err, KMIPD_EMALFORMED, TTLV_RULE_BAD_TYPE, at + 3, tag,
				    "type 0x%02X", type);
		fixed = fixed_length(type);
		if ((fixed != 0 && length != fixed) ||
		    (type == TTLV_STRUCTURE && length % 8 != 0) ||
		    (type == TTLV_BIG_INTEGER && (length == 0 || length % 8 != 0)))
			return fail(d->err, KMIPD_EMALFORMED, TTLV_RULE_BAD_LENGTH, at + 4, tag,
				    "%s of length %u", ttlv_type_name(type), length);
		if (padded(length) > end - at - TTLV_HEADER_SIZE)
			return fail(d->err, end == d->len ? KMIPD_ETRUNCATED : KMIPD_EMALFORMED,
				    TTLV_RULE_PAST_END, at + 4, tag,
				    "%u byte(s) of value (%zu with padding), %zu left", length,
				    padded(length), end - at - TTLV_HEADER_SIZE);
		if (parent == NULL && at + TTLV_HEADER_SIZE + padded(length) != end)
			return fail(d->err, KMIPD_EMALFORMED, TTLV_RULE_TRAILING,
				    at + TTLV_HEADER_SIZE + padded(length), 0, "%zu byte(s)",
				    end - at - TTLV_HEADER_SIZE - padded(length));

		item = arena_alloc(d->arena, sizeof(*item));
		if (item == NULL)
			return fail(d->err, KMIPD_ENOMEM, TTLV_RULE_NO_MEMORY, at, tag, NULL);
		item->tag = tag;
		item->type = type;
		item->length = length;
		item->offset = at;
		item->next = NULL;
		rv = decode_value(d, item, at + TTLV_HEADER_SIZE, depth);
		if (rv != 0)
			return rv;

		if (parent == NULL)
			*root = item;
		else
			ttlv_append(parent, item);
		at += TTLV_HEADER_SIZE + padded(length);
	}
	return 0;
}

static int decode_value(struct decoder *d, struct ttlv_item *item, size_t at, unsigned depth)
{
	const uint8_t *p = d->data + at;
	size_t pad_at = at + item->length;
	size_t pad_end = at + padded(item->length);

	switch (item->type) {
	case TTLV_STRUCTURE:
		if (depth + 1 > d->max_depth)
			return fail(d->err, KMIPD_ETOO_DEEP, TTLV_RULE_TOO_DEEP, item->offset,
				    item->tag, "limit %u", d->max_depth);
		item->v.children.first = NULL;
		item->v.children.last = NULL;
		item->v.children.count = 0;
		return decode_items(d, at, at + item->length, depth + 1, item, NULL);
	case TTLV_INTEGER:
		item->v.integer = (int32_t)load_be32(p);
		break;
	case TTLV_ENUMERATION:
		item->v.enumeration = load_be32(p);
		break;
	case TTLV_INTERVAL:
		item->v.interval = load_be32(p);
		break;
	case TTLV_LONG_INTEGER:
		item->v.long_integer = (int64_t)load_be64(p);
		break;
	case TTLV_DATE_TIME:
		item->v.date_time = (int64_t)load_be64(p);
		break;
	case TTLV_BOOLEAN: {
		uint64_t b = load_be64(p);

		if (b > 1)
			return fail(d->err, KMIPD_EMALFORMED, TTLV_RULE_BAD_BOOLEAN, at, item->tag,
				    "value 0x%016llX", (unsigned long long)b);
		item->v.boolean = b == 1;
		break;
	}
	case TTLV_TEXT_STRING:
		if (!valid_utf8(p, item->length))
			return fail(d->err, KMIPD_EMALFORMED, TTLV_RULE_BAD_UTF8, at, item->tag,
				    NULL);
		item->v.bytes = p;
		break;
	case TTLV_BYTE_STRING:
	case TTLV_BIG_INTEGER:
		item->v.bytes = p;
		break;
	}
	for (size_t i = pad_at; i < pad_end; i++)
		if (d->data[i] != 0)
			return fail(d->err, KMIPD_EMALFORMED, TTLV_RULE_PADDING, i, item->tag,
				    "byte 0x%02X", d->data[i]);
	return 0;
}

int ttlv_decode(const uint8_t *data, size_t len, const struct ttlv_limits *limits,
		struct arena *arena, struct ttlv_item **root, struct ttlv_error *err)
{
	size_t max_message =
		limits && limits->max_message ? limits->max_message : TTLV_DEFAULT_MAX_MESSAGE;
	unsigned max_depth =
		limits && limits->max_depth ? limits->max_depth : TTLV_DEFAULT_MAX_DEPTH;
	struct decoder d = {data, len, max_depth, arena, err};

	if (max_depth > TTLV_MAX_DEPTH)
		d.max_depth = TTLV_MAX_DEPTH;
	*root = NULL;
	if (len > max_message)
		return fail(err, KMIPD_ETOO_LARGE, TTLV_RULE_TOO_LARGE, 0, 0,
			    "%zu bytes, limit %zu", len, max_message);
	if (len == 0)
		return fail(err, KMIPD_ETRUNCATED, TTLV_RULE_SHORT_HEADER, 0, 0, "empty input");
	if (err != NULL) {
		err->rule = TTLV_RULE_OK;
		err->message[0] = '\0';
	}
	return decode_items(&d, 0, len, 0, NULL, root);
}

int ttlv_frame_need(const uint8_t *data, size_t have, size_t max_message, size_t *need,
		    size_t *total, struct ttlv_error *err)
{
	uint32_t length;
	size_t size;

	if (max_message == 0)
		max_message = TTLV_DEFAULT_MAX_MESSAGE;
	*total = 0;
	if (have < TTLV_HEADER_SIZE) {
		*need = TTLV_HEADER_SIZE - have;
		return 0;
	}
	if (data[0] != 0x42 && data[0] != 0x54)
		return fail(err, KMIPD_EMALFORMED, TTLV_RULE_BAD_TAG, 0, 0, "tag 0x%02X%02X%02X",
			    data[0], data[1], data[2]);
	if (data[3] != TTLV_STRUCTURE)
		return fail(err, KMIPD_EMALFORMED, TTLV_RULE_NOT_STRUCTURE, 3, 0, "type 0x%02X",
			    data[3]);
	length = load_be32(data + 4);
	if (length % 8 != 0)
		return fail(err, KMIPD_EMALFORMED, TTLV_RULE_BAD_LENGTH, 4, 0,
			    "Structure of length %u", length);
	size = TTLV_HEADER_SIZE + (size_t)length;
	if (size > max_message)
		return fail(err, KMIPD_ETOO_LARGE, TTLV_RULE_TOO_LARGE, 4, 0,
			    "%zu bytes, limit %zu", size, max_message);
	*total = size;
	*need = have >= size ? 0 : size - have;
	return 0;
}
