/* The TTLV codec: the specification's encoding examples in both directions, every rule the
 * strict decoder enforces (with the offset it reports), truncation, framing on a stream, the
 * writer's sticky errors, tree building and walking, and the arena and buffer beneath. */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/ttlv.h"

/* Tags used below: the specification's examples use 0x420020, 0x420004 and 0x420005. */
#define TAG_EXAMPLE 0x420020u
#define TAG_ENUM    0x420004u
#define TAG_INT	    0x420005u
#define TAG_MESSAGE 0x420078u
#define TAG_INNER   0x420079u
#define TAG_OTHER   0x420021u

/* Per-test state: an output buffer and its writer, an arena, the last decoded input (a
 * private copy of exactly the decoded length, so AddressSanitizer sees any over-read), the
 * decoded tree and the error. */
struct fixture {
	struct buf out;
	struct ttlv_writer w;
	struct arena arena;
	uint8_t *input;
	struct ttlv_item *root;
	struct ttlv_error err;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	ttlv_writer_init(&f->w, &f->out);
	arena_init(&f->arena, 4096, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	buf_free(&f->out);
	arena_free(&f->arena);
	free(f->input);
	free(f);
	return 0;
}

/* Decodes a fresh copy of @data. The error is preset to stale values so that a decoder
 * which forgot to fill it in would fail the checks. */
static int decode(struct fixture *f, const void *data, size_t len, const struct ttlv_limits *limits)
{
	static struct ttlv_item stale;

	free(f->input);
	f->input = malloc(len > 0 ? len : 1);
	assert_non_null(f->input);
	if (len > 0)
		memcpy(f->input, data, len);
	arena_reset(&f->arena);
	memset(&f->err, 0, sizeof(f->err));
	f->err.rule = TTLV_RULE_NO_MEMORY;
	f->err.offset = SIZE_MAX;
	f->err.tag = 0xFFFFFFFF;
	strcpy(f->err.message, "stale");
	f->root = &stale;
	return ttlv_decode(f->input, len, limits, &f->arena, &f->root, &f->err);
}

/* @err names @rule, @offset and @tag, and its message starts with "offset <offset>" and
 * includes the rule's description. */
static void assert_error(const struct ttlv_error *err, enum ttlv_rule rule, size_t offset,
			 uint32_t tag)
{
	char prefix[32];
	int n = snprintf(prefix, sizeof(prefix), "offset %zu", offset);

	assert_int_equal(err->rule, rule);
	assert_int_equal(err->offset, offset);
	assert_int_equal(err->tag, tag);
	assert_true(err->message[0] != '\0');
	assert_memory_equal(err->message, prefix, (size_t)n);
	assert_true(err->message[n] == ':' || err->message[n] == ' ');
	assert_non_null(strstr(err->message, ttlv_rule_text(rule)));
}

/* Decoding @data fails with @code for @rule at @offset in the item with @tag. */
static void expect_reject(struct fixture *f, const void *data, size_t len,
			  const struct ttlv_limits *limits, int code, enum ttlv_rule rule,
			  size_t offset, uint32_t tag)
{
	assert_int_equal(decode(f, data, len, limits), code);
	assert_null(f->root);
	assert_error(&f->err, rule, offset, tag);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_header(uint8_t *p, uint32_t tag, uint8_t type, uint32_t length)
{
	p[0] = (uint8_t)(tag >> 16);
	p[1] = (uint8_t)(tag >> 8);
	p[2] = (uint8_t)tag;
	p[3] = type;
	put_be32(p + 4, length);
}

/* A message (Structure TAG_MESSAGE) holding one item at offset 8: a TAG_EXAMPLE header of
 * @type and @length followed by @n bytes of @value, zero-filled to a multiple of 8. The value
 * of the inner item therefore starts at offset 16. Returns the size written to @m. */
static size_t one_child(uint8_t *m, uint8_t type, uint32_t length, const void *value, size_t n)
{
	size_t padded = (n + 7) & ~(size_t)7;

	memset(m, 0, 16 + padded);
	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, (uint32_t)(8 + padded));
	put_header(m + 8, TAG_EXAMPLE, type, length);
	if (n > 0)
		memcpy(m + 16, value, n);
	return 16 + padded;
}

/* @n empty structures, each inside the previous one; item i starts at offset 8 * i. */
static size_t nested(uint8_t *m, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		put_header(m + 8 * i, TAG_MESSAGE, TTLV_STRUCTURE, 8 * (n - 1 - i));
	return 8 * (size_t)n;
}

/* The writer finished cleanly and produced exactly @expect. */
static void assert_written(struct fixture *f, const uint8_t *expect, size_t len)
{
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	assert_int_equal(f->out.len, len);
	assert_memory_equal(f->out.data, expect, len);
}

/* Decodes @bytes, checks the root's tag, type, length and offset, and returns it. */
static const struct ttlv_item *assert_decodes(struct fixture *f, const uint8_t *bytes, size_t len,
					      uint8_t type)
{
	assert_int_equal(decode(f, bytes, len, NULL), 0);
	assert_non_null(f->root);
	assert_int_equal(f->err.rule, TTLV_RULE_OK);
	assert_int_equal(f->root->tag, TAG_EXAMPLE);
	assert_int_equal(f->root->type, type);
	assert_int_equal(f->root->length, (uint32_t)bytes[4] << 24 | (uint32_t)bytes[5] << 16 |
						  (uint32_t)bytes[6] << 8 | bytes[7]);
	assert_int_equal(f->root->offset, 0);
	assert_null(f->root->next);
	return f->root;
}

/* ttlv_encode() of the decoded tree gives back @bytes. */
static void assert_reencodes(struct fixture *f, const uint8_t *bytes, size_t len)
{
	struct buf again = BUF_INIT;

	assert_int_equal(ttlv_encode(f->root, &again), 0);
	assert_int_equal(again.len, len);
	assert_memory_equal(again.data, bytes, len);
	buf_free(&again);
}

/*
 * The encoding examples of KMIP 1.4 section 9.1.2.
 *
 * ttlv_decode() accepts any single item at the top level: the "a message must be a single
 * structure" rule (NOT_STRUCTURE) is enforced by ttlv_frame_need(), which is what reads
 * messages off a connection. So the scalar examples are decoded bare, exactly as printed.
 */

static void spec_integer_8(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x04,
					0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00};

	ttlv_put_integer(&f->w, TAG_EXAMPLE, 8);
	assert_written(f, bytes, sizeof(bytes));
	assert_int_equal(assert_decodes(f, bytes, sizeof(bytes), TTLV_INTEGER)->v.integer, 8);
	assert_reencodes(f, bytes, sizeof(bytes));
}

static void spec_long_integer(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x03, 0x00, 0x00, 0x00, 0x08,
					0x01, 0xB6, 0x9B, 0x4B, 0xA5, 0x74, 0x92, 0x00};

	ttlv_put_long(&f->w, TAG_EXAMPLE, 123456789000000000LL);
	assert_written(f, bytes, sizeof(bytes));
	assert_true(assert_decodes(f, bytes, sizeof(bytes), TTLV_LONG_INTEGER)->v.long_integer ==
		    123456789000000000LL);
	assert_reencodes(f, bytes, sizeof(bytes));
}

static void spec_big_integer(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x04, 0x00, 0x00, 0x00, 0x10,
					0x00, 0x00, 0x00, 0x00, 0x03, 0xFD, 0x35, 0xEB,
					0x6B, 0xC2, 0xDF, 0x46, 0x18, 0x08, 0x00, 0x00};
	/* 1234567890000000000000000000 in its 12 significant bytes: the writer sign-extends. */
	static const uint8_t value[] = {0x03, 0xFD, 0x35, 0xEB, 0x6B, 0xC2,
					0xDF, 0x46, 0x18, 0x08, 0x00, 0x00};
	const struct ttlv_item *item;

	ttlv_put_big(&f->w, TAG_EXAMPLE, value, sizeof(value));
	assert_written(f, bytes, sizeof(bytes));
	item = assert_decodes(f, bytes, sizeof(bytes), TTLV_BIG_INTEGER);
	assert_int_equal(item->length, 16);
	assert_memory_equal(item->v.bytes, bytes + 8, 16);
	assert_reencodes(f, bytes, sizeof(bytes));
}

static void spec_enumeration_255(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x05, 0x00, 0x00, 0x00, 0x04,
					0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00};

	ttlv_put_enum(&f->w, TAG_EXAMPLE, 255);
	assert_written(f, bytes, sizeof(bytes));
	assert_int_equal(assert_decodes(f, bytes, sizeof(bytes), TTLV_ENUMERATION)->v.enumeration,
			 255);
	assert_reencodes(f, bytes, sizeof(bytes));
}

static void spec_boolean_true(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x06, 0x00, 0x00, 0x00, 0x08,
					0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};

	ttlv_put_bool(&f->w, TAG_EXAMPLE, true);
	assert_written(f, bytes, sizeof(bytes));
	assert_true(assert_decodes(f, bytes, sizeof(bytes), TTLV_BOOLEAN)->v.boolean);
	assert_reencodes(f, bytes, sizeof(bytes));
}

static void spec_text_string_hello_world(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x07, 0x00, 0x00, 0x00, 0x0B,
					0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x20, 0x57, 0x6F,
					0x72, 0x6C, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00};
	const struct ttlv_item *item;

	ttlv_put_cstr(&f->w, TAG_EXAMPLE, "Hello World");
	assert_written(f, bytes, sizeof(bytes));
	item = assert_decodes(f, bytes, sizeof(bytes), TTLV_TEXT_STRING);
	assert_int_equal(item->length, 11);
	assert_true(ttlv_text_equals(item, "Hello World"));
	assert_reencodes(f, bytes, sizeof(bytes));
}

static void spec_byte_string_010203(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x08, 0x00, 0x00, 0x00, 0x03,
					0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00};
	static const uint8_t value[] = {0x01, 0x02, 0x03};
	const struct ttlv_item *item;

	ttlv_put_bytes(&f->w, TAG_EXAMPLE, value, sizeof(value));
	assert_written(f, bytes, sizeof(bytes));
	item = assert_decodes(f, bytes, sizeof(bytes), TTLV_BYTE_STRING);
	assert_int_equal(item->length, 3);
	assert_memory_equal(item->v.bytes, value, 3);
	assert_reencodes(f, bytes, sizeof(bytes));
}

/* Friday, March 14, 2008, 11:56:40 GMT. */
static void spec_date_time_2008_03_14(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x09, 0x00, 0x00, 0x00, 0x08,
					0x00, 0x00, 0x00, 0x00, 0x47, 0xDA, 0x67, 0xF8};

	ttlv_put_datetime(&f->w, TAG_EXAMPLE, 1205495800);
	assert_written(f, bytes, sizeof(bytes));
	assert_int_equal(assert_decodes(f, bytes, sizeof(bytes), TTLV_DATE_TIME)->v.date_time,
			 0x47DA67F8);
	assert_reencodes(f, bytes, sizeof(bytes));
}

static void spec_interval_10_days(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x0A, 0x00, 0x00, 0x00, 0x04,
					0x00, 0x0D, 0x2F, 0x00, 0x00, 0x00, 0x00, 0x00};

	ttlv_put_interval(&f->w, TAG_EXAMPLE, 10 * 24 * 3600);
	assert_written(f, bytes, sizeof(bytes));
	assert_int_equal(assert_decodes(f, bytes, sizeof(bytes), TTLV_INTERVAL)->v.interval,
			 864000);
	assert_reencodes(f, bytes, sizeof(bytes));
}

static void spec_structure_enum_and_integer(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {
		0x42, 0x00, 0x20, 0x01, 0x00, 0x00, 0x00, 0x20, /* Structure, 32 bytes */
		0x42, 0x00, 0x04, 0x05, 0x00, 0x00, 0x00, 0x04, /* Enumeration */
		0x00, 0x00, 0x00, 0xFE, 0x00, 0x00, 0x00, 0x00, /* 254 */
		0x42, 0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x04, /* Integer */
		0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, /* 255 */
	};
	const struct ttlv_item *s, *e, *i;

	ttlv_begin(&f->w, TAG_EXAMPLE);
	ttlv_put_enum(&f->w, TAG_ENUM, 254);
	ttlv_put_integer(&f->w, TAG_INT, 255);
	ttlv_end(&f->w);
	assert_written(f, bytes, sizeof(bytes));

	s = assert_decodes(f, bytes, sizeof(bytes), TTLV_STRUCTURE);
	assert_int_equal(s->length, 32);
	assert_int_equal(s->v.children.count, 2);
	e = s->v.children.first;
	assert_non_null(e);
	assert_int_equal(e->tag, TAG_ENUM);
	assert_int_equal(e->type, TTLV_ENUMERATION);
	assert_int_equal(e->length, 4);
	assert_int_equal(e->offset, 8);
	assert_int_equal(e->v.enumeration, 254);
	i = e->next;
	assert_non_null(i);
	assert_ptr_equal(i, s->v.children.last);
	assert_null(i->next);
	assert_int_equal(i->tag, TAG_INT);
	assert_int_equal(i->type, TTLV_INTEGER);
	assert_int_equal(i->length, 4);
	assert_int_equal(i->offset, 24);
	assert_int_equal(i->v.integer, 255);
	assert_reencodes(f, bytes, sizeof(bytes));
}

/* The decoder takes a lone scalar; framing, which guards the wire, does not. */
static void bare_scalar_decodes_but_does_not_frame(void **state)
{
	struct fixture *f = *state;
	static const uint8_t bytes[] = {0x42, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x04,
					0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00};
	size_t need = 99, total = 99;

	assert_int_equal(decode(f, bytes, sizeof(bytes), NULL), 0);
	assert_int_equal(f->root->type, TTLV_INTEGER);
	assert_int_equal(ttlv_frame_need(bytes, sizeof(bytes), 0, &need, &total, &f->err),
			 KMIPD_EMALFORMED);
	assert_error(&f->err, TTLV_RULE_NOT_STRUCTURE, 3, 0);
}

static void negative_and_extreme_values_round_trip(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *c;
	uint8_t *copy;
	size_t len;

	ttlv_begin(&f->w, TAG_MESSAGE);
	ttlv_put_integer(&f->w, TAG_INT, INT32_MIN);
	ttlv_put_integer(&f->w, TAG_INT, -1);
	ttlv_put_long(&f->w, TAG_INT, INT64_MIN);
	ttlv_put_long(&f->w, TAG_INT, INT64_MAX);
	ttlv_put_enum(&f->w, TAG_INT, UINT32_MAX);
	ttlv_put_interval(&f->w, TAG_INT, UINT32_MAX);
	ttlv_put_datetime(&f->w, TAG_INT, -1);
	ttlv_put_bool(&f->w, TAG_INT, false);
	ttlv_end(&f->w);
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	len = f->out.len;
	assert_int_equal(len, 8 + 8 * 16);
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, f->out.data, len);

	assert_int_equal(decode(f, copy, len, NULL), 0);
	assert_int_equal(f->root->v.children.count, 8);
	c = f->root->v.children.first;
	assert_true(c->v.integer == INT32_MIN);
	c = c->next;
	assert_true(c->v.integer == -1);
	c = c->next;
	assert_true(c->v.long_integer == INT64_MIN);
	c = c->next;
	assert_true(c->v.long_integer == INT64_MAX);
	c = c->next;
	assert_true(c->v.enumeration == UINT32_MAX);
	c = c->next;
	assert_true(c->v.interval == UINT32_MAX);
	c = c->next;
	assert_true(c->v.date_time == -1);
	c = c->next;
	assert_int_equal(c->type, TTLV_BOOLEAN);
	assert_false(c->v.boolean);
	assert_reencodes(f, copy, len);
	free(copy);
}

/*
 * Rejections. Offsets, as the decoder defines them: the item's start for SHORT_HEADER,
 * BAD_TAG and TOO_DEEP; its type byte (start + 3) for BAD_TYPE; its length field (start + 4)
 * for BAD_LENGTH and PAST_END; the value's first byte for BAD_BOOLEAN and BAD_UTF8; the
 * offending byte itself for PADDING; the first extra byte for TRAILING; 0 for TOO_LARGE.
 */

static void rejects_empty_and_short_input(void **state)
{
	struct fixture *f = *state;
	static const uint8_t header[] = {0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x00};

	expect_reject(f, header, 0, NULL, KMIPD_ETRUNCATED, TTLV_RULE_SHORT_HEADER, 0, 0);
	for (size_t n = 1; n < TTLV_HEADER_SIZE; n++)
		expect_reject(f, header, n, NULL, KMIPD_ETRUNCATED, TTLV_RULE_SHORT_HEADER, 0, 0);
	/* The whole header is an empty structure: accepted. */
	assert_int_equal(decode(f, header, sizeof(header), NULL), 0);
	assert_int_equal(f->root->v.children.count, 0);
	assert_null(f->root->v.children.first);
}

static void rejects_tags_outside_kmip_ranges(void **state)
{
	struct fixture *f = *state;
	uint8_t m[32];
	size_t len;

	/* Top level. */
	len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);
	m[0] = 0x43;
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_TAG, 0, 0);
	m[0] = 0x00;
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_TAG, 0, 0);

	/* A child. */
	len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);
	m[8] = 0x41;
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_TAG, 8, 0);

	/* Extension tags (0x54xxxx) are fine, at either level. */
	len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);
	m[0] = 0x54;
	m[8] = 0x54;
	assert_int_equal(decode(f, m, len, NULL), 0);
	assert_int_equal(f->root->tag, 0x540078);
	assert_int_equal(f->root->v.children.first->tag, 0x540020);
}

static void rejects_unknown_types(void **state)
{
	struct fixture *f = *state;
	static const uint8_t types[] = {0x00, 0x0B, 0x80, 0xFF};
	uint8_t m[32];
	size_t len;

	for (size_t i = 0; i < sizeof(types); i++) {
		len = one_child(m, types[i], 4, "\0\0\0\1", 4);
		expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_TYPE, 11,
			      TAG_EXAMPLE);
		assert_non_null(strstr(f->err.message, "tag 0x420020"));
	}
	len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);
	m[3] = 0x0B;
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_TYPE, 3, TAG_MESSAGE);
}

static void rejects_wrong_lengths_of_fixed_size_types(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint8_t type;
		uint32_t length;
	} cases[] = {
		{TTLV_INTEGER, 8},     {TTLV_INTEGER, 0},      {TTLV_INTEGER, 3},
		{TTLV_ENUMERATION, 8}, {TTLV_INTERVAL, 8},     {TTLV_LONG_INTEGER, 4},
		{TTLV_BOOLEAN, 4},     {TTLV_BOOLEAN, 1},      {TTLV_DATE_TIME, 4},
		{TTLV_DATE_TIME, 16},  {TTLV_LONG_INTEGER, 0},
	};
	static const uint8_t zeros[16];
	uint8_t m[32];
	size_t len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = one_child(m, cases[i].type, cases[i].length, zeros, 16);
		expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_LENGTH, 12,
			      TAG_EXAMPLE);
	}
}

static void rejects_big_integer_length_not_a_multiple_of_8(void **state)
{
	struct fixture *f = *state;
	static const uint32_t lengths[] = {0, 1, 4, 12, 15};
	static const uint8_t zeros[16];
	uint8_t m[32];
	size_t len;

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		len = one_child(m, TTLV_BIG_INTEGER, lengths[i], zeros, 16);
		expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_LENGTH, 12,
			      TAG_EXAMPLE);
	}
	len = one_child(m, TTLV_BIG_INTEGER, 16, zeros, 16);
	assert_int_equal(decode(f, m, len, NULL), 0);
	assert_int_equal(f->root->v.children.first->length, 16);
}

static void rejects_structure_length_not_a_multiple_of_8(void **state)
{
	struct fixture *f = *state;
	static const uint8_t zeros[16];
	uint8_t m[32];
	size_t len;

	/* A child structure. */
	len = one_child(m, TTLV_STRUCTURE, 4, zeros, 16);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_LENGTH, 12, TAG_EXAMPLE);
	/* The message itself. */
	len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);
	put_be32(m + 4, 12);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_LENGTH, 4, TAG_MESSAGE);
}

static void rejects_items_longer_than_the_input(void **state)
{
	struct fixture *f = *state;
	uint8_t m[32];
	size_t len;

	/* The message claims 24 bytes of value; 16 follow. */
	len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);
	put_be32(m + 4, 24);
	expect_reject(f, m, len, NULL, KMIPD_ETRUNCATED, TTLV_RULE_PAST_END, 4, TAG_MESSAGE);

	/* A text string whose padding is missing counts too. */
	put_header(m, TAG_EXAMPLE, TTLV_TEXT_STRING, 5);
	memcpy(m + 8, "hello", 5);
	expect_reject(f, m, 13, NULL, KMIPD_ETRUNCATED, TTLV_RULE_PAST_END, 4, TAG_EXAMPLE);
	/* With it, fine. */
	memset(m + 13, 0, 3);
	assert_int_equal(decode(f, m, 16, NULL), 0);
	assert_true(ttlv_text_equals(f->root, "hello"));
}

static void rejects_children_longer_than_their_parent(void **state)
{
	struct fixture *f = *state;
	uint8_t m[48] = {0};

	/* Message { Inner (16) { Byte String (16) ... } Integer }: the byte string runs out of
	 * its parent while the input goes on. */
	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, 40);
	put_header(m + 8, TAG_INNER, TTLV_STRUCTURE, 16);
	put_header(m + 16, TAG_EXAMPLE, TTLV_BYTE_STRING, 16);
	put_header(m + 32, TAG_OTHER, TTLV_INTEGER, 4);
	m[39 + 4] = 1;
	expect_reject(f, m, sizeof(m), NULL, KMIPD_EMALFORMED, TTLV_RULE_PAST_END, 20, TAG_EXAMPLE);

	/* The same with an integer whose header fits in the parent but whose value does not:
	 * Message { Inner (8) { Integer header }, Integer, Integer }. */
	memset(m + 8, 0, 40);
	put_header(m + 8, TAG_INNER, TTLV_STRUCTURE, 8);
	put_header(m + 16, TAG_EXAMPLE, TTLV_INTEGER, 4);
	put_header(m + 24, TAG_OTHER, TTLV_INTEGER, 4);
	put_header(m + 40, TAG_OTHER, TTLV_INTEGER, 4);
	expect_reject(f, m, sizeof(m), NULL, KMIPD_EMALFORMED, TTLV_RULE_PAST_END, 20, TAG_EXAMPLE);

	/* Message { Inner (16) { Integer }, Integer }: accepted. */
	memset(m + 8, 0, 40);
	put_header(m + 8, TAG_INNER, TTLV_STRUCTURE, 16);
	put_header(m + 16, TAG_EXAMPLE, TTLV_INTEGER, 4);
	put_header(m + 32, TAG_OTHER, TTLV_INTEGER, 4);
	assert_int_equal(decode(f, m, sizeof(m), NULL), 0);
	assert_int_equal(f->root->v.children.count, 2);
}

static void rejects_non_zero_padding(void **state)
{
	struct fixture *f = *state;
	uint8_t m[32];
	size_t len;

	/* After an Integer: the value is 16..19, the padding 20..23. */
	for (size_t at = 20; at < 24; at++) {
		len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\x08", 4);
		m[at] = 0x01;
		expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_PADDING, at,
			      TAG_EXAMPLE);
	}
	/* After a text string "abc": the padding is 19..23; the first bad byte is reported. */
	len = one_child(m, TTLV_TEXT_STRING, 3, "abc\0\0\0\0x", 8);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_PADDING, 23, TAG_EXAMPLE);
	len = one_child(m, TTLV_TEXT_STRING, 3, "abc\0\x20\0\0x", 8);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_PADDING, 20, TAG_EXAMPLE);
	/* After a byte string and an enumeration, and an interval. */
	len = one_child(m, TTLV_BYTE_STRING, 1, "\xFF\xFF", 2);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_PADDING, 17, TAG_EXAMPLE);
	len = one_child(m, TTLV_ENUMERATION, 4, "\0\0\0\0\0\0\0\x80", 8);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_PADDING, 23, TAG_EXAMPLE);
	len = one_child(m, TTLV_INTERVAL, 4, "\0\0\0\0\x01", 5);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_PADDING, 20, TAG_EXAMPLE);
}

static void rejects_booleans_other_than_0_and_1(void **state)
{
	struct fixture *f = *state;
	uint8_t m[32];
	size_t len;

	len = one_child(m, TTLV_BOOLEAN, 8, "\0\0\0\0\0\0\0\x02", 8);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_BOOLEAN, 16, TAG_EXAMPLE);
	len = one_child(m, TTLV_BOOLEAN, 8, "\x01\0\0\0\0\0\0\x01", 8);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_BOOLEAN, 16, TAG_EXAMPLE);
	len = one_child(m, TTLV_BOOLEAN, 8, "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 8);
	expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_BOOLEAN, 16, TAG_EXAMPLE);

	len = one_child(m, TTLV_BOOLEAN, 8, "\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(decode(f, m, len, NULL), 0);
	assert_false(f->root->v.children.first->v.boolean);
}

static void rejects_invalid_utf8(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"\xC3\x28",	    /* a lead byte without its continuation */
		"\xC0\xAF",	    /* overlong '/' */
		"\xE0\x80\xAF",	    /* overlong '/' in three bytes */
		"\xED\xA0\x80",	    /* the surrogate U+D800 */
		"\xED\xBF\xBF",	    /* the surrogate U+DFFF */
		"\xF4\x90\x80\x80", /* U+110000 */
		"ab\xE2\x82",	    /* a sequence cut off by the end of the string */
		"\x80",		    /* a lone continuation byte */
		"x\xFF",	    /* a byte that never occurs */
		"\xF8\x88\x80\x80", /* a five-byte form */
	};
	uint8_t m[32];
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(bad[i]);

		len = one_child(m, TTLV_TEXT_STRING, (uint32_t)n, bad[i], n);
		expect_reject(f, m, len, NULL, KMIPD_EMALFORMED, TTLV_RULE_BAD_UTF8, 16,
			      TAG_EXAMPLE);
	}
}

static void accepts_valid_utf8_and_empty_text(void **state)
{
	struct fixture *f = *state;
	/* é, €, U+1D11E, U+10FFFF, U+D7FF and U+E000 (either side of the surrogates). */
	static const char good[] =
		"\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E\xF4\x8F\xBF\xBF\xED\x9F\xBF\xEE\x80\x80";
	uint8_t m[48];
	size_t len;

	len = one_child(m, TTLV_TEXT_STRING, sizeof(good) - 1, good, sizeof(good) - 1);
	assert_int_equal(decode(f, m, len, NULL), 0);
	assert_true(ttlv_text_equals(f->root->v.children.first, good));

	len = one_child(m, TTLV_TEXT_STRING, 0, NULL, 0);
	assert_int_equal(len, 16);
	assert_int_equal(decode(f, m, len, NULL), 0);
	assert_int_equal(f->root->v.children.first->length, 0);
	assert_true(ttlv_text_equals(f->root->v.children.first, ""));
}

static void rejects_nesting_beyond_the_configured_depth(void **state)
{
	struct fixture *f = *state;
	struct ttlv_limits limits = {.max_depth = 3};
	uint8_t m[8 * 4];

	assert_int_equal(decode(f, m, nested(m, 3), &limits), 0);
	assert_int_equal(f->root->v.children.first->v.children.first->offset, 16);
	expect_reject(f, m, nested(m, 4), &limits, KMIPD_ETOO_DEEP, TTLV_RULE_TOO_DEEP, 24,
		      TAG_MESSAGE);
	/* A scalar at the deepest level is no extra level. */
	limits.max_depth = 1;
	assert_int_equal(decode(f, m, one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4), &limits), 0);
	expect_reject(f, m, one_child(m, TTLV_STRUCTURE, 0, NULL, 0), &limits, KMIPD_ETOO_DEEP,
		      TTLV_RULE_TOO_DEEP, 8, TAG_EXAMPLE);
}

static void rejects_nesting_beyond_the_default_depth(void **state)
{
	struct fixture *f = *state;
	uint8_t m[8 * (TTLV_DEFAULT_MAX_DEPTH + 1)];

	assert_int_equal(decode(f, m, nested(m, TTLV_DEFAULT_MAX_DEPTH), NULL), 0);
	expect_reject(f, m, nested(m, TTLV_DEFAULT_MAX_DEPTH + 1), NULL, KMIPD_ETOO_DEEP,
		      TTLV_RULE_TOO_DEEP, 8 * TTLV_DEFAULT_MAX_DEPTH, TAG_MESSAGE);
}

static void depth_limit_is_capped_at_ttlv_max_depth(void **state)
{
	struct fixture *f = *state;
	struct ttlv_limits limits = {.max_depth = 1000};
	uint8_t m[8 * (TTLV_MAX_DEPTH + 1)];

	assert_int_equal(decode(f, m, nested(m, TTLV_MAX_DEPTH), &limits), 0);
	expect_reject(f, m, nested(m, TTLV_MAX_DEPTH + 1), &limits, KMIPD_ETOO_DEEP,
		      TTLV_RULE_TOO_DEEP, 8 * TTLV_MAX_DEPTH, TAG_MESSAGE);
}

static void rejects_messages_larger_than_max_message(void **state)
{
	struct fixture *f = *state;
	struct ttlv_limits limits = {.max_message = 16};
	uint8_t m[32];
	size_t len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);

	assert_int_equal(len, 24);
	expect_reject(f, m, len, &limits, KMIPD_ETOO_LARGE, TTLV_RULE_TOO_LARGE, 0, 0);
	limits.max_message = 23;
	expect_reject(f, m, len, &limits, KMIPD_ETOO_LARGE, TTLV_RULE_TOO_LARGE, 0, 0);
	limits.max_message = 24;
	assert_int_equal(decode(f, m, len, &limits), 0);
}

static void default_max_message_is_one_mebibyte(void **state)
{
	struct fixture *f = *state;
	size_t len = TTLV_DEFAULT_MAX_MESSAGE;
	uint8_t *m = calloc(1, len + 8);

	assert_non_null(m);
	/* Exactly the default: one byte string filling the message. */
	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, (uint32_t)(len - 8));
	put_header(m + 8, TAG_EXAMPLE, TTLV_BYTE_STRING, (uint32_t)(len - 16));
	assert_int_equal(decode(f, m, len, NULL), 0);
	assert_int_equal(f->root->v.children.first->length, len - 16);
	/* Eight bytes more. */
	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, (uint32_t)len);
	put_header(m + 8, TAG_EXAMPLE, TTLV_BYTE_STRING, (uint32_t)(len - 8));
	expect_reject(f, m, len + 8, NULL, KMIPD_ETOO_LARGE, TTLV_RULE_TOO_LARGE, 0, 0);
	free(m);
}

static void rejects_trailing_bytes(void **state)
{
	struct fixture *f = *state;
	uint8_t m[40] = {0};

	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, 0);
	for (size_t extra = 1; extra <= 16; extra++)
		expect_reject(f, m, 8 + extra, NULL, KMIPD_EMALFORMED, TTLV_RULE_TRAILING, 8, 0);
	/* A second message right behind the first is trailing too. */
	one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);
	one_child(m + 24, TTLV_STRUCTURE, 0, NULL, 0);
	expect_reject(f, m, 40, NULL, KMIPD_EMALFORMED, TTLV_RULE_TRAILING, 24, 0);
	assert_non_null(strstr(f->err.message, "16 byte"));
}

/* Not an input rule but reachable from input: the arena's limit runs out. */
static void reports_arena_exhaustion(void **state)
{
	struct fixture *f = *state;
	size_t item =
		(sizeof(struct ttlv_item) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	uint8_t m[32];
	size_t len = one_child(m, TTLV_INTEGER, 4, "\0\0\0\1", 4);

	arena_free(&f->arena);
	arena_init(&f->arena, 4096, item); /* room for the root only */
	expect_reject(f, m, len, NULL, KMIPD_ENOMEM, TTLV_RULE_NO_MEMORY, 8, TAG_EXAMPLE);
	arena_free(&f->arena);
	arena_init(&f->arena, 4096, 2 * item);
	assert_int_equal(decode(f, m, len, NULL), 0);
}

static void error_may_be_null(void **state)
{
	struct fixture *f = *state;
	struct ttlv_item *root = NULL;
	uint8_t m[32];
	size_t len = one_child(m, TTLV_BOOLEAN, 8, "\0\0\0\0\0\0\0\x02", 8);
	size_t need, total;

	assert_int_equal(ttlv_decode(m, len, NULL, &f->arena, &root, NULL), KMIPD_EMALFORMED);
	assert_null(root);
	assert_int_equal(ttlv_decode(m, 3, NULL, &f->arena, &root, NULL), KMIPD_ETRUNCATED);
	m[3] = TTLV_INTEGER;
	assert_int_equal(ttlv_frame_need(m, len, 0, &need, &total, NULL), KMIPD_EMALFORMED);
}

static void rule_texts_and_type_names(void **state)
{
	(void)state;
	for (int r = TTLV_RULE_OK; r <= TTLV_RULE_NO_MEMORY; r++)
		assert_true(ttlv_rule_text((enum ttlv_rule)r)[0] != '\0');
	assert_string_equal(ttlv_rule_text(TTLV_RULE_PADDING), "non-zero padding byte");
	assert_string_equal(ttlv_rule_text((enum ttlv_rule)(TTLV_RULE_NO_MEMORY + 1)),
			    "unknown rule");
	assert_null(ttlv_type_name(0));
	assert_string_equal(ttlv_type_name(TTLV_STRUCTURE), "Structure");
	assert_string_equal(ttlv_type_name(TTLV_TEXT_STRING), "Text String");
	assert_string_equal(ttlv_type_name(TTLV_INTERVAL), "Interval");
	assert_null(ttlv_type_name(TTLV_INTERVAL + 1));
	assert_null(ttlv_type_name(0xFFFFFFFFu));
}

/* Truncation. */

/* A nested message of 152 bytes with every kind of value. */
static void write_nested_message(struct ttlv_writer *w)
{
	static const uint8_t big[] = {0x80, 0x01};

	ttlv_begin(w, TAG_MESSAGE);
	ttlv_begin(w, 0x420077);
	ttlv_begin(w, 0x420069);
	ttlv_put_integer(w, 0x42006A, 1);
	ttlv_put_integer(w, 0x42006B, 4);
	ttlv_end(w);
	ttlv_put_long(w, 0x42000D, 1);
	ttlv_end(w);
	ttlv_begin(w, 0x42000F);
	ttlv_put_enum(w, 0x42005C, 1);
	ttlv_begin(w, TAG_INNER);
	ttlv_put_cstr(w, 0x420094, "abc");
	ttlv_put_bytes(w, 0x420093, "\x01\x02\x03\x04\x05\x06\x07\x08\x09", 9);
	ttlv_put_bool(w, 0x420008, true);
	ttlv_put_big(w, 0x420009, big, sizeof(big));
	ttlv_put_datetime(w, 0x420092, 1700000000);
	ttlv_put_interval(w, 0x420010, 60);
	ttlv_end(w);
	ttlv_end(w);
	ttlv_end(w);
}

static void every_prefix_of_a_message_is_rejected(void **state)
{
	struct fixture *f = *state;
	uint8_t *m;
	size_t len;

	write_nested_message(&f->w);
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	len = f->out.len;
	assert_true(len >= 100);
	m = malloc(len);
	assert_non_null(m);
	memcpy(m, f->out.data, len);
	assert_int_equal(decode(f, m, len, NULL), 0);
	assert_reencodes(f, m, len);

	for (size_t n = 0; n < len; n++) {
		if (n < TTLV_HEADER_SIZE)
			expect_reject(f, m, n, NULL, KMIPD_ETRUNCATED, TTLV_RULE_SHORT_HEADER, 0,
				      0);
		else
			expect_reject(f, m, n, NULL, KMIPD_ETRUNCATED, TTLV_RULE_PAST_END, 4,
				      TAG_MESSAGE);
	}
	free(m);
}

/* Cuts the body instead, with the message's length rewritten to match, so the cut lands
 * inside the children: decoding succeeds exactly when the cut falls between two top-level
 * children, and otherwise fails with an error inside the input. */
static void every_cut_inside_the_body_fails_cleanly(void **state)
{
	struct fixture *f = *state;
	size_t boundaries[8], nb = 0;
	uint8_t *m, *cut;
	size_t len;

	write_nested_message(&f->w);
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	len = f->out.len;
	m = malloc(len);
	cut = malloc(len);
	assert_non_null(m);
	assert_non_null(cut);
	memcpy(m, f->out.data, len);
	assert_int_equal(decode(f, m, len, NULL), 0);
	boundaries[nb++] = 8;
	for (const struct ttlv_item *c = f->root->v.children.first; c != NULL; c = c->next)
		boundaries[nb++] = c->offset + 8 + ((c->length + 7) & ~(size_t)7);
	assert_int_equal(nb, 3);

	for (size_t n = 8; n < len; n += 8) {
		bool whole = false;
		int rv;

		for (size_t b = 0; b < nb; b++)
			whole |= boundaries[b] == n;
		memcpy(cut, m, n);
		put_be32(cut + 4, (uint32_t)(n - 8));
		rv = decode(f, cut, n, NULL);
		if (whole) {
			assert_int_equal(rv, 0);
			assert_reencodes(f, cut, n);
		} else {
			assert_true(rv == KMIPD_EMALFORMED || rv == KMIPD_ETRUNCATED);
			assert_null(f->root);
			assert_int_equal(f->err.rule, TTLV_RULE_PAST_END);
			assert_true(f->err.offset < n);
		}
	}
	free(cut);
	free(m);
}

/* Framing. */

static void frame_need_counts_missing_header_bytes(void **state)
{
	struct fixture *f = *state;
	uint8_t m[8];
	size_t need, total;

	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, 64);
	for (size_t have = 0; have < TTLV_HEADER_SIZE; have++) {
		need = 99;
		total = 99;
		assert_int_equal(ttlv_frame_need(m, have, 0, &need, &total, &f->err), 0);
		assert_int_equal(need, TTLV_HEADER_SIZE - have);
		assert_int_equal(total, 0);
	}
}

static void frame_need_counts_missing_body_bytes(void **state)
{
	struct fixture *f = *state;
	uint8_t m[8 + 64 + 24] = {0};
	size_t need, total;

	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, 64);
	for (size_t have = TTLV_HEADER_SIZE; have <= 72; have++) {
		assert_int_equal(ttlv_frame_need(m, have, 0, &need, &total, &f->err), 0);
		assert_int_equal(total, 72);
		assert_int_equal(need, 72 - have);
	}
	/* Bytes of the next message do not change the answer. */
	for (size_t have = 73; have <= sizeof(m); have++) {
		assert_int_equal(ttlv_frame_need(m, have, 0, &need, &total, &f->err), 0);
		assert_int_equal(need, 0);
		assert_int_equal(total, 72);
	}
	/* An empty structure is complete with its header. */
	put_header(m, 0x540001, TTLV_STRUCTURE, 0);
	assert_int_equal(ttlv_frame_need(m, 8, 0, &need, &total, &f->err), 0);
	assert_int_equal(need, 0);
	assert_int_equal(total, 8);
}

static void frame_need_rejects_bad_headers(void **state)
{
	struct fixture *f = *state;
	uint8_t m[8];
	size_t need, total;

	for (unsigned type = 0; type < 256; type++) {
		if (type == TTLV_STRUCTURE)
			continue;
		put_header(m, TAG_MESSAGE, (uint8_t)type, 8);
		assert_int_equal(ttlv_frame_need(m, 8, 0, &need, &total, &f->err),
				 KMIPD_EMALFORMED);
		assert_error(&f->err, TTLV_RULE_NOT_STRUCTURE, 3, 0);
	}
	put_header(m, 0x430078, TTLV_STRUCTURE, 8);
	assert_int_equal(ttlv_frame_need(m, 8, 0, &need, &total, &f->err), KMIPD_EMALFORMED);
	assert_error(&f->err, TTLV_RULE_BAD_TAG, 0, 0);
	for (uint32_t length = 1; length < 8; length++) {
		put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, 64 + length);
		assert_int_equal(ttlv_frame_need(m, 8, 0, &need, &total, &f->err),
				 KMIPD_EMALFORMED);
		assert_error(&f->err, TTLV_RULE_BAD_LENGTH, 4, 0);
	}
}

static void frame_need_enforces_max_message(void **state)
{
	struct fixture *f = *state;
	uint8_t m[8];
	size_t need, total;

	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, 56);
	assert_int_equal(ttlv_frame_need(m, 8, 64, &need, &total, &f->err), 0);
	assert_int_equal(total, 64);
	assert_int_equal(need, 56);
	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, 64);
	assert_int_equal(ttlv_frame_need(m, 8, 64, &need, &total, &f->err), KMIPD_ETOO_LARGE);
	assert_error(&f->err, TTLV_RULE_TOO_LARGE, 4, 0);

	/* 0 means the default. */
	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, TTLV_DEFAULT_MAX_MESSAGE - 8);
	assert_int_equal(ttlv_frame_need(m, 8, 0, &need, &total, &f->err), 0);
	assert_int_equal(total, TTLV_DEFAULT_MAX_MESSAGE);
	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, TTLV_DEFAULT_MAX_MESSAGE);
	assert_int_equal(ttlv_frame_need(m, 8, 0, &need, &total, &f->err), KMIPD_ETOO_LARGE);
	assert_error(&f->err, TTLV_RULE_TOO_LARGE, 4, 0);
}

/* The largest length a structure can declare must not wrap around to something small. */
static void frame_need_refuses_the_largest_declared_length(void **state)
{
	struct fixture *f = *state;
	uint8_t m[8];
	size_t need = 99, total = 99;

	put_header(m, TAG_MESSAGE, TTLV_STRUCTURE, 0xFFFFFFF8u);
	assert_int_equal(ttlv_frame_need(m, 8, 0, &need, &total, &f->err), KMIPD_ETOO_LARGE);
	assert_error(&f->err, TTLV_RULE_TOO_LARGE, 4, 0);
	assert_int_equal(total, 0);
	/* Also with a limit just under 4 GiB. */
	assert_int_equal(ttlv_frame_need(m, 8, 0xFFFFFFF8u, &need, &total, &f->err),
			 KMIPD_ETOO_LARGE);
	assert_error(&f->err, TTLV_RULE_TOO_LARGE, 4, 0);
}

/* Writer. */

static void writer_end_without_begin_is_sticky_and_rolls_back(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(buf_append(&f->out, "abc", 3), 0);
	ttlv_writer_init(&f->w, &f->out);
	ttlv_put_integer(&f->w, TAG_INT, 0x11111111);
	assert_int_equal(f->out.len, 3 + 16);
	ttlv_end(&f->w);
	assert_int_equal(f->w.error, KMIPD_EINVAL);
	/* Everything after the error is ignored. */
	ttlv_put_integer(&f->w, TAG_INT, 0x22222222);
	ttlv_begin(&f->w, TAG_MESSAGE);
	ttlv_put_cstr(&f->w, TAG_EXAMPLE, "ignored");
	assert_int_equal(f->out.len, 3 + 16);
	assert_int_equal(f->w.depth, 0);
	assert_int_equal(ttlv_writer_finish(&f->w), KMIPD_EINVAL);
	/* Rolled back to the start, the existing bytes kept and what was written wiped. */
	assert_int_equal(f->out.len, 3);
	assert_memory_equal(f->out.data, "abc", 3);
	for (size_t i = 3; i < 3 + 16; i++)
		assert_int_equal(f->out.data[i], 0);
}

static void writer_unclosed_structure_is_an_error(void **state)
{
	struct fixture *f = *state;

	ttlv_begin(&f->w, TAG_MESSAGE);
	ttlv_put_integer(&f->w, TAG_INT, 1);
	assert_int_equal(f->out.len, 24);
	assert_int_equal(ttlv_writer_finish(&f->w), KMIPD_EINVAL);
	assert_int_equal(f->out.len, 0);
}

static void writer_nesting_is_limited_to_ttlv_max_depth(void **state)
{
	struct fixture *f = *state;
	struct ttlv_limits limits = {.max_depth = TTLV_MAX_DEPTH};
	size_t len;

	for (int i = 0; i < TTLV_MAX_DEPTH; i++)
		ttlv_begin(&f->w, TAG_MESSAGE);
	ttlv_put_integer(&f->w, TAG_INT, 7);
	for (int i = 0; i < TTLV_MAX_DEPTH; i++)
		ttlv_end(&f->w);
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	len = f->out.len;
	assert_int_equal(len, 8 * TTLV_MAX_DEPTH + 16);
	assert_int_equal(decode(f, f->out.data, len, &limits), 0);
	/* The outermost length was back-filled: everything after its header. */
	assert_int_equal(f->out.data[4] | f->out.data[5], 0);
	assert_int_equal(f->out.data[6] << 8 | f->out.data[7], len - 8);

	/* One level more. */
	assert_int_equal(buf_append(&f->out, "xy", 2), 0);
	ttlv_writer_init(&f->w, &f->out);
	for (int i = 0; i <= TTLV_MAX_DEPTH; i++)
		ttlv_begin(&f->w, TAG_MESSAGE);
	assert_int_equal(f->w.error, KMIPD_ETOO_DEEP);
	assert_int_equal(f->out.len, len + 2 + 8 * TTLV_MAX_DEPTH);
	for (int i = 0; i <= TTLV_MAX_DEPTH; i++)
		ttlv_end(&f->w);
	assert_int_equal(ttlv_writer_finish(&f->w), KMIPD_ETOO_DEEP);
	assert_int_equal(f->out.len, len + 2);
	assert_memory_equal(f->out.data + len, "xy", 2);
}

static void writer_rejects_tags_wider_than_24_bits(void **state)
{
	struct fixture *f = *state;

	ttlv_begin(&f->w, TAG_MESSAGE);
	ttlv_put_integer(&f->w, 0x1420020, 1);
	ttlv_end(&f->w);
	assert_int_equal(ttlv_writer_finish(&f->w), KMIPD_EINVAL);
	assert_int_equal(f->out.len, 0);
}

static void writer_appends_after_existing_contents(void **state)
{
	struct fixture *f = *state;
	static const uint8_t expect[] = {'h',  'i',  0x42, 0x00, 0x20, 0x01, 0x00, 0x00, 0x00,
					 0x10, 0x42, 0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x04,
					 0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x00};

	assert_int_equal(buf_append(&f->out, "hi", 2), 0);
	ttlv_writer_init(&f->w, &f->out);
	assert_int_equal(f->w.start, 2);
	ttlv_begin(&f->w, TAG_EXAMPLE);
	ttlv_put_integer(&f->w, TAG_INT, 42);
	ttlv_end(&f->w);
	assert_written(f, expect, sizeof(expect));
}

static void writer_pads_text_and_bytes_with_zeros(void **state)
{
	struct fixture *f = *state;
	static const char src[] = "abcdefghijklmnopq";

	for (size_t n = 0; n <= 17; n++) {
		size_t padded = (n + 7) & ~(size_t)7;

		buf_clear(&f->out);
		/* Dirty the buffer so that padding left unwritten would show. */
		assert_int_equal(buf_reserve(&f->out, 64), 0);
		memset(f->out.data, 0xEE, f->out.cap);
		ttlv_writer_init(&f->w, &f->out);
		ttlv_put_text(&f->w, TAG_EXAMPLE, src, n);
		ttlv_put_bytes(&f->w, TAG_OTHER, src, n);
		assert_int_equal(ttlv_writer_finish(&f->w), 0);
		assert_int_equal(f->out.len, 2 * (8 + padded));
		for (int k = 0; k < 2; k++) {
			const uint8_t *p = f->out.data + k * (8 + padded);

			assert_int_equal(p[3], k == 0 ? TTLV_TEXT_STRING : TTLV_BYTE_STRING);
			assert_int_equal(p[4] | p[5] | p[6], 0);
			assert_int_equal(p[7], n);
			assert_memory_equal(p + 8, src, n);
			for (size_t i = n; i < padded; i++)
				assert_int_equal(p[8 + i], 0);
		}
	}
	/* put_cstr is put_text of the whole string. */
	buf_clear(&f->out);
	ttlv_writer_init(&f->w, &f->out);
	ttlv_put_cstr(&f->w, TAG_EXAMPLE, "Hello World");
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	assert_int_equal(f->out.len, 24);
	assert_int_equal(f->out.data[7], 11);
	assert_memory_equal(f->out.data + 8, "Hello World\0\0\0\0", 16);
}

static void writer_sign_extends_big_integers(void **state)
{
	struct fixture *f = *state;
	static const uint8_t negative[] = {0x80, 0x01};
	static const uint8_t positive[] = {0x7F};
	static const uint8_t eight[] = {0x80, 1, 2, 3, 4, 5, 6, 7};
	static const uint8_t expect[] = {
		0x42, 0x00, 0x20, 0x04, 0x00, 0x00, 0x00, 0x08, /* -32767 */
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x01, /**/
		0x42, 0x00, 0x20, 0x04, 0x00, 0x00, 0x00, 0x08, /* 127 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7F, /**/
		0x42, 0x00, 0x20, 0x04, 0x00, 0x00, 0x00, 0x08, /* empty: 0 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /**/
		0x42, 0x00, 0x20, 0x04, 0x00, 0x00, 0x00, 0x08, /* already 8 bytes */
		0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, /**/
	};

	ttlv_put_big(&f->w, TAG_EXAMPLE, negative, sizeof(negative));
	ttlv_put_big(&f->w, TAG_EXAMPLE, positive, sizeof(positive));
	ttlv_put_big(&f->w, TAG_EXAMPLE, NULL, 0);
	ttlv_put_big(&f->w, TAG_EXAMPLE, eight, sizeof(eight));
	assert_written(f, expect, sizeof(expect));
}

/* Builds the same message as write_everything() from nodes. */
static struct ttlv_item *build_everything(struct arena *a)
{
	static const uint8_t big[] = {0xFF, 0x01};
	struct ttlv_item *root = ttlv_new(a, TAG_MESSAGE, TTLV_STRUCTURE);
	struct ttlv_item *inner = ttlv_new(a, TAG_INNER, TTLV_STRUCTURE);
	struct ttlv_item *i;

	assert_non_null(root);
	assert_non_null(inner);
	i = ttlv_new(a, TAG_INT, TTLV_INTEGER);
	i->v.integer = -5;
	ttlv_append(root, i);
	i = ttlv_new(a, TAG_INT, TTLV_LONG_INTEGER);
	i->v.long_integer = 123456789000000000LL;
	ttlv_append(root, i);
	ttlv_append(root, ttlv_new_bytes(a, TAG_INT, TTLV_BIG_INTEGER, big, sizeof(big)));
	i = ttlv_new(a, TAG_ENUM, TTLV_ENUMERATION);
	i->v.enumeration = 254;
	ttlv_append(root, i);
	i = ttlv_new(a, TAG_INT, TTLV_BOOLEAN);
	i->v.boolean = true;
	ttlv_append(inner, i);
	ttlv_append(inner, ttlv_new_bytes(a, TAG_EXAMPLE, TTLV_TEXT_STRING, "Hello World", 11));
	ttlv_append(inner, ttlv_new_bytes(a, TAG_EXAMPLE, TTLV_BYTE_STRING, "\1\2\3", 3));
	ttlv_append(inner, ttlv_new_bytes(a, TAG_EXAMPLE, TTLV_TEXT_STRING, "", 0));
	ttlv_append(root, inner);
	ttlv_append(root, ttlv_new(a, TAG_OTHER, TTLV_STRUCTURE));
	i = ttlv_new(a, TAG_INT, TTLV_DATE_TIME);
	i->v.date_time = 0x47DA67F8;
	ttlv_append(root, i);
	i = ttlv_new(a, TAG_INT, TTLV_INTERVAL);
	i->v.interval = 864000;
	ttlv_append(root, i);
	return root;
}

static void write_everything(struct ttlv_writer *w)
{
	static const uint8_t big[] = {0xFF, 0x01};

	ttlv_begin(w, TAG_MESSAGE);
	ttlv_put_integer(w, TAG_INT, -5);
	ttlv_put_long(w, TAG_INT, 123456789000000000LL);
	ttlv_put_big(w, TAG_INT, big, sizeof(big));
	ttlv_put_enum(w, TAG_ENUM, 254);
	ttlv_begin(w, TAG_INNER);
	ttlv_put_bool(w, TAG_INT, true);
	ttlv_put_cstr(w, TAG_EXAMPLE, "Hello World");
	ttlv_put_bytes(w, TAG_EXAMPLE, "\1\2\3", 3);
	ttlv_put_text(w, TAG_EXAMPLE, "", 0);
	ttlv_end(w);
	ttlv_begin(w, TAG_OTHER);
	ttlv_end(w);
	ttlv_put_datetime(w, TAG_INT, 0x47DA67F8);
	ttlv_put_interval(w, TAG_INT, 864000);
	ttlv_end(w);
}

static void built_tree_encodes_like_the_writer(void **state)
{
	struct fixture *f = *state;
	struct buf tree = BUF_INIT;
	struct ttlv_item *root = build_everything(&f->arena);

	assert_int_equal(root->v.children.count, 8);
	assert_int_equal(root->v.children.last->v.interval, 864000);
	write_everything(&f->w);
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	assert_int_equal(ttlv_encode(root, &tree), 0);
	assert_int_equal(tree.len, f->out.len);
	assert_memory_equal(tree.data, f->out.data, tree.len);
	buf_free(&tree);

	/* And the encoding decodes to the same shape. */
	assert_int_equal(decode(f, f->out.data, f->out.len, NULL), 0);
	assert_int_equal(f->root->v.children.count, 8);
	assert_int_equal(ttlv_child(f->root, TAG_INNER)->v.children.count, 4);
	assert_int_equal(ttlv_child(f->root, TAG_OTHER)->v.children.count, 0);
	assert_int_equal(ttlv_child(f->root, TAG_INT)->v.integer, -5);
}

static void put_item_as_retags_a_copy(void **state)
{
	struct fixture *f = *state;
	struct buf out = BUF_INIT;
	struct ttlv_writer w;
	const struct ttlv_item *inner;

	write_everything(&f->w);
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	assert_int_equal(decode(f, f->out.data, f->out.len, NULL), 0);
	inner = ttlv_child(f->root, TAG_INNER);
	ttlv_writer_init(&w, &out);
	ttlv_put_item_as(&w, TAG_OTHER, inner);
	assert_int_equal(ttlv_writer_finish(&w), 0);
	assert_int_equal(out.len, 8 + inner->length);
	assert_int_equal(out.data[2], 0x21);
	assert_memory_equal(out.data + 3, f->out.data + inner->offset + 3, out.len - 3);
	buf_free(&out);
}

static void encode_rejects_unknown_item_types(void **state)
{
	struct fixture *f = *state;
	struct ttlv_item *root = ttlv_new(&f->arena, TAG_MESSAGE, TTLV_STRUCTURE);
	struct ttlv_item *bad = ttlv_new(&f->arena, TAG_INT, TTLV_INTEGER);

	assert_int_equal(buf_append(&f->out, "keep", 4), 0);
	bad->type = 0x0B;
	ttlv_append(root, ttlv_new(&f->arena, TAG_ENUM, TTLV_ENUMERATION));
	ttlv_append(root, bad);
	assert_int_equal(ttlv_encode(root, &f->out), KMIPD_EINVAL);
	assert_int_equal(f->out.len, 4);
	assert_memory_equal(f->out.data, "keep", 4);
}

/* Walking. */

static void child_finds_the_first_item_with_a_tag(void **state)
{
	struct fixture *f = *state;
	struct ttlv_item *root = ttlv_new(&f->arena, TAG_MESSAGE, TTLV_STRUCTURE);
	struct ttlv_item *a = ttlv_new(&f->arena, TAG_INT, TTLV_INTEGER);
	struct ttlv_item *b = ttlv_new(&f->arena, TAG_ENUM, TTLV_ENUMERATION);
	struct ttlv_item *c = ttlv_new(&f->arena, TAG_INT, TTLV_INTEGER);

	assert_null(ttlv_child(root, TAG_INT));
	ttlv_append(root, a);
	ttlv_append(root, b);
	ttlv_append(root, c);
	assert_int_equal(root->v.children.count, 3);
	assert_ptr_equal(ttlv_child(root, TAG_INT), a);
	assert_ptr_equal(ttlv_child(root, TAG_ENUM), b);
	assert_null(ttlv_child(root, TAG_OTHER));
	assert_null(ttlv_child(NULL, TAG_INT));
	assert_null(ttlv_child(a, TAG_INT)); /* not a structure */
}

static void next_same_walks_repeated_fields(void **state)
{
	struct fixture *f = *state;
	struct ttlv_item *root = ttlv_new(&f->arena, TAG_MESSAGE, TTLV_STRUCTURE);
	static const uint32_t tags[] = {TAG_INT, TAG_ENUM, TAG_INT, TAG_ENUM, TAG_ENUM, TAG_INT};
	const struct ttlv_item *c;
	int seen = 0;

	for (int i = 0; i < 6; i++) {
		struct ttlv_item *item = ttlv_new(&f->arena, tags[i], TTLV_INTEGER);

		item->v.integer = i;
		ttlv_append(root, item);
	}
	for (c = ttlv_child(root, TAG_INT); c != NULL; c = ttlv_next_same(c))
		seen = seen * 10 + c->v.integer + 1;
	assert_int_equal(seen, 136); /* items 0, 2 and 5 */
	seen = 0;
	for (c = ttlv_child(root, TAG_ENUM); c != NULL; c = ttlv_next_same(c))
		seen = seen * 10 + c->v.integer + 1;
	assert_int_equal(seen, 245); /* items 1, 3 and 4 */
	assert_null(ttlv_next_same(root->v.children.last));
	assert_null(ttlv_next_same(NULL));
}

static void text_equals_compares_type_length_and_bytes(void **state)
{
	struct fixture *f = *state;
	struct ttlv_item *t =
		ttlv_new_bytes(&f->arena, TAG_EXAMPLE, TTLV_TEXT_STRING, "Hello World", 11);
	struct ttlv_item *b =
		ttlv_new_bytes(&f->arena, TAG_EXAMPLE, TTLV_BYTE_STRING, "Hello World", 11);
	struct ttlv_item *e = ttlv_new_bytes(&f->arena, TAG_EXAMPLE, TTLV_TEXT_STRING, "", 0);
	struct ttlv_item *nul = ttlv_new_bytes(&f->arena, TAG_EXAMPLE, TTLV_TEXT_STRING, "a\0b", 3);
	struct ttlv_item *bare = ttlv_new(&f->arena, TAG_EXAMPLE, TTLV_TEXT_STRING); /* no bytes */

	assert_true(ttlv_text_equals(t, "Hello World"));
	assert_false(ttlv_text_equals(t, "Hello"));
	assert_false(ttlv_text_equals(t, "Hello World!"));
	assert_false(ttlv_text_equals(t, "hello world"));
	assert_false(ttlv_text_equals(t, ""));
	assert_false(ttlv_text_equals(b, "Hello World")); /* a byte string is not text */
	assert_true(ttlv_text_equals(e, ""));
	assert_false(ttlv_text_equals(e, "x"));
	assert_false(ttlv_text_equals(nul, "a"));
	assert_false(ttlv_text_equals(NULL, ""));
	assert_true(ttlv_text_equals(bare, ""));
	assert_false(ttlv_text_equals(bare, "x"));
	/* ttlv_new_bytes copies. */
	assert_int_equal(t->length, 11);
	assert_int_equal(e->length, 0);
	assert_int_equal(nul->length, 3);
}

/* Arena and buffer. */

static void arena_allocations_are_aligned(void **state)
{
	struct arena a;
	char *s;

	(void)state;
	arena_init(&a, 256, 0);
	for (size_t size = 0; size < 300; size += 7) {
		uint8_t *p = arena_alloc(&a, size);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
		memset(p, 0xAB, size);
	}
	for (size_t size = 1; size < 64; size += 5) {
		uint8_t *p = arena_zalloc(&a, size);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
		for (size_t i = 0; i < size; i++)
			assert_int_equal(p[i], 0);
	}
	s = arena_strndup(&a, "secret!!", 6);
	assert_non_null(s);
	assert_string_equal(s, "secret");
	arena_free(&a);
	assert_null(a.chunks);
	assert_int_equal(a.used, 0);
}

static void arena_limit_is_enforced(void **state)
{
	struct arena a;

	(void)state;
	arena_init(&a, 64, 256);
	assert_non_null(arena_alloc(&a, 128));
	assert_non_null(arena_alloc(&a, 128));
	assert_int_equal(a.used, 256);
	assert_null(arena_alloc(&a, 1));
	assert_null(arena_zalloc(&a, 1));
	assert_null(arena_strndup(&a, "x", 1));
	assert_null(arena_alloc(&a, SIZE_MAX));
	arena_reset(&a);
	assert_int_equal(a.used, 0);
	assert_non_null(arena_alloc(&a, 256));
	arena_reset(&a);
	assert_null(arena_alloc(&a, 257));
	assert_non_null(arena_alloc(&a, 200));
	arena_free(&a);

	/* No limit: a request far above the chunk size gets a chunk of its own. */
	arena_init(&a, 64, 0);
	assert_non_null(arena_alloc(&a, 16));
	assert_non_null(arena_alloc(&a, 100000));
	assert_null(arena_alloc(&a, SIZE_MAX));
	arena_free(&a);
}

static void arena_reset_keeps_working(void **state)
{
	struct arena a;

	(void)state;
	arena_init(&a, 64, 0);
	for (int round = 0; round < 5; round++) {
		uint8_t *p[40];

		for (int i = 0; i < 40; i++) {
			p[i] = arena_alloc(&a, 24 + (size_t)i * 3);
			assert_non_null(p[i]);
			memset(p[i], i, 24 + (size_t)i * 3);
		}
		/* No allocation overlapped another. */
		for (int i = 0; i < 40; i++)
			for (size_t k = 0; k < 24 + (size_t)i * 3; k++)
				assert_int_equal(p[i][k], i);
		assert_true(a.used >= 40 * 24);
		arena_reset(&a);
		assert_int_equal(a.used, 0);
		assert_non_null(a.chunks);
	}
	arena_free(&a);
}

static void buf_append_consume_and_reserve(void **state)
{
	struct buf b = BUF_INIT;
	uint8_t big[1000];
	size_t cap;

	(void)state;
	assert_int_equal(buf_reserve(&b, 10), 0);
	assert_int_equal(b.len, 0);
	assert_true(b.cap >= 10);
	assert_int_equal(buf_append(&b, "hello ", 6), 0);
	assert_int_equal(buf_append(&b, "world", 5), 0);
	assert_int_equal(buf_append(&b, NULL, 0), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "hello world", 11);

	/* Growth keeps the contents. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
	assert_int_equal(b.len, 11 + sizeof(big));
	assert_true(b.cap >= b.len);
	assert_memory_equal(b.data, "hello world", 11);
	assert_memory_equal(b.data + 11, big, sizeof(big));

	/* Reserving what is already there changes nothing. */
	cap = b.cap;
	assert_int_equal(buf_reserve(&b, cap - b.len), 0);
	assert_int_equal(b.cap, cap);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), KMIPD_ENOMEM);
	assert_int_equal(b.len, 11 + sizeof(big));
	assert_int_equal(b.cap, cap);

	/* Consuming moves the rest to the front. */
	buf_consume(&b, 6);
	assert_int_equal(b.len, 5 + sizeof(big));
	assert_memory_equal(b.data, "world", 5);
	assert_memory_equal(b.data + 5, big, sizeof(big));
	buf_consume(&b, 0);
	assert_int_equal(b.len, 5 + sizeof(big));
	buf_consume(&b, 5 + sizeof(big));
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);

	assert_int_equal(buf_append(&b, "abc", 3), 0);
	buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.data[0], 0); /* wiped */
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(spec_integer_8),
		T(spec_long_integer),
		T(spec_big_integer),
		T(spec_enumeration_255),
		T(spec_boolean_true),
		T(spec_text_string_hello_world),
		T(spec_byte_string_010203),
		T(spec_date_time_2008_03_14),
		T(spec_interval_10_days),
		T(spec_structure_enum_and_integer),
		T(bare_scalar_decodes_but_does_not_frame),
		T(negative_and_extreme_values_round_trip),
		T(rejects_empty_and_short_input),
		T(rejects_tags_outside_kmip_ranges),
		T(rejects_unknown_types),
		T(rejects_wrong_lengths_of_fixed_size_types),
		T(rejects_big_integer_length_not_a_multiple_of_8),
		T(rejects_structure_length_not_a_multiple_of_8),
		T(rejects_items_longer_than_the_input),
		T(rejects_children_longer_than_their_parent),
		T(rejects_non_zero_padding),
		T(rejects_booleans_other_than_0_and_1),
		T(rejects_invalid_utf8),
		T(accepts_valid_utf8_and_empty_text),
		T(rejects_nesting_beyond_the_configured_depth),
		T(rejects_nesting_beyond_the_default_depth),
		T(depth_limit_is_capped_at_ttlv_max_depth),
		T(rejects_messages_larger_than_max_message),
		T(default_max_message_is_one_mebibyte),
		T(rejects_trailing_bytes),
		T(reports_arena_exhaustion),
		T(error_may_be_null),
		T(rule_texts_and_type_names),
		T(every_prefix_of_a_message_is_rejected),
		T(every_cut_inside_the_body_fails_cleanly),
		T(frame_need_counts_missing_header_bytes),
		T(frame_need_counts_missing_body_bytes),
		T(frame_need_rejects_bad_headers),
		T(frame_need_enforces_max_message),
		T(frame_need_refuses_the_largest_declared_length),
		T(writer_end_without_begin_is_sticky_and_rolls_back),
		T(writer_unclosed_structure_is_an_error),
		T(writer_nesting_is_limited_to_ttlv_max_depth),
		T(writer_rejects_tags_wider_than_24_bits),
		T(writer_appends_after_existing_contents),
		T(writer_pads_text_and_bytes_with_zeros),
		T(writer_sign_extends_big_integers),
		T(built_tree_encodes_like_the_writer),
		T(put_item_as_retags_a_copy),
		T(encode_rejects_unknown_item_types),
		T(child_finds_the_first_item_with_a_tag),
		T(next_same_walks_repeated_fields),
		T(text_equals_compares_type_length_and_bytes),
		T(arena_allocations_are_aligned),
		T(arena_limit_is_enforced),
		T(arena_reset_keeps_working),
		T(buf_append_consume_and_reserve),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
