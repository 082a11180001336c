/* The object record: msgpack round trips, what the decoder refuses (newer formats,
 * truncated or damaged records) and what it tolerates (unknown keys), and the attribute
 * instance helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "kmipd/error.h"
#include "kmipd/object.h"

#define UID    "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define TENANT "acme.prod-1"

struct fixture {
	struct arena arena;  /* the object being built */
	struct arena decode; /* what object_decode() fills */
	struct buf out;
	struct object obj;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	arena_init(&f->arena, 4096, 0);
	arena_init(&f->decode, 4096, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	arena_free(&f->arena);
	arena_free(&f->decode);
	buf_free(&f->out);
	free(f);
	return 0;
}

/* Attribute values are opaque TTLV bytes to this module; these stand in for them. */
static const uint8_t alg_aes[] = {0x42, 0x00, 0x0b, 0x05, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 0};
static const uint8_t name_a[] = {0x42, 0x00, 0x0b, 0x01, 0, 0, 0, 1, 'A', 0, 0, 0, 0, 0, 0, 0};
static const uint8_t name_b[] = {0x42, 0x00, 0x0b, 0x01, 0, 0, 0, 1, 'B', 0, 0, 0, 0, 0, 0, 0};
static const uint8_t custom[] = {0x42, 0x00, 0x0b, 0x07, 0, 0, 0, 3, 'x', 'y', 'z', 0, 0, 0, 0, 0};

#define ADD(name, index, value) \
	assert_int_equal(object_attr_add(&f->obj, &f->arena, name, index, value, sizeof(value)), 0)

/* Every field set, every date distinct, Name repeated. */
static void build_full(struct fixture *f)
{
	static uint8_t sealed[60];
	size_t i;

	for (i = 0; i < sizeof(sealed); i++)
		sealed[i] = (uint8_t)(i * 7 + 1);
	memset(&f->obj, 0, sizeof(f->obj));
	strcpy(f->obj.uid, UID);
	strcpy(f->obj.tenant, TENANT);
	f->obj.object_type = 2; /* Symmetric Key */
	f->obj.state = 4;	/* Compromised */
	f->obj.initial_date = 1700000000;
	f->obj.activation_date = 1700000100;
	f->obj.deactivation_date = 1700000200;
	f->obj.compromise_occurrence_date = 1700000300;
	f->obj.compromise_date = 1700000400;
	f->obj.destroy_date = -1; /* before the epoch: still a date */
	f->obj.last_change_date = INT64_MAX;
	f->obj.revocation_code = 2; /* Key Compromise */
	f->obj.revocation_message = "leaked in a backup";
	f->obj.key_format = 1; /* Raw */
	f->obj.sealed = sealed;
	f->obj.sealed_len = sizeof(sealed);
	ADD("Cryptographic Algorithm", 0, alg_aes);
	ADD("Name", 0, name_a);
	ADD("Name", 1, name_b);
	ADD("x-Custom", 0, custom);
	ADD("Cryptographic Length", UINT32_MAX, alg_aes);
}

static void assert_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	assert_int_equal(a_len, b_len);
	if (a_len > 0)
		assert_memory_equal(a, b, a_len);
}

static void assert_same(const struct object *a, const struct object *b)
{
	size_t i;

	assert_string_equal(a->uid, b->uid);
	assert_string_equal(a->tenant, b->tenant);
	assert_int_equal(a->object_type, b->object_type);
	assert_int_equal(a->state, b->state);
	assert_true(a->initial_date == b->initial_date);
	assert_true(a->activation_date == b->activation_date);
	assert_true(a->deactivation_date == b->deactivation_date);
	assert_true(a->compromise_occurrence_date == b->compromise_occurrence_date);
	assert_true(a->compromise_date == b->compromise_date);
	assert_true(a->destroy_date == b->destroy_date);
	assert_true(a->last_change_date == b->last_change_date);
	assert_int_equal(a->revocation_code, b->revocation_code);
	if (a->revocation_message == NULL)
		assert_null(b->revocation_message);
	else
		assert_string_equal(a->revocation_message, b->revocation_message);
	assert_int_equal(a->key_format, b->key_format);
	assert_bytes(a->sealed, a->sealed_len, b->sealed, b->sealed_len);
	assert_int_equal(a->attr_count, b->attr_count);
	for (i = 0; i < a->attr_count; i++) {
		assert_string_equal(a->attrs[i].name, b->attrs[i].name);
		assert_int_equal(a->attrs[i].index, b->attrs[i].index);
		assert_bytes(a->attrs[i].value, a->attrs[i].value_len, b->attrs[i].value,
			     b->attrs[i].value_len);
	}
}

/* The decoded copy must not point into the encoded bytes. */
static void assert_not_within(const void *p, const struct buf *b)
{
	const uint8_t *q = p;

	assert_false(q >= b->data && q < b->data + b->cap);
}

static void round_trip_full_object(void **state)
{
	struct fixture *f = *state;
	struct object back;
	size_t i;

	build_full(f);
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	assert_int_equal(object_decode(f->out.data, f->out.len, &f->decode, &back), 0);
	assert_same(&f->obj, &back);
	assert_not_within(back.revocation_message, &f->out);
	assert_not_within(back.sealed, &f->out);
	for (i = 0; i < back.attr_count; i++) {
		assert_not_within(back.attrs[i].name, &f->out);
		assert_not_within(back.attrs[i].value, &f->out);
	}
	/* Wiping the record leaves the decoded object intact. */
	memset(f->out.data, 0, f->out.len);
	assert_string_equal(back.attrs[1].name, "Name");
	assert_memory_equal(back.attrs[2].value, name_b, sizeof(name_b));
}

static void round_trip_minimal_object(void **state)
{
	struct fixture *f = *state;
	struct object back;

	strcpy(f->obj.uid, UID);
	strcpy(f->obj.tenant, "t");
	f->obj.object_type = 7;
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	assert_int_equal(object_decode(f->out.data, f->out.len, &f->decode, &back), 0);
	assert_same(&f->obj, &back);
	assert_null(back.revocation_message);
	assert_null(back.attrs);
	assert_null(back.sealed);
}

/* Encoding appends; two records in one buffer decode one at a time. */
static void encode_appends(void **state)
{
	struct fixture *f = *state;
	struct object back;
	size_t first;

	build_full(f);
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	first = f->out.len;
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	assert_int_equal(f->out.len, 2 * first);
	assert_int_equal(object_decode(f->out.data + first, first, &f->decode, &back), 0);
	assert_same(&f->obj, &back);
}

static void encode_refuses_what_cannot_be_read_back(void **state)
{
	struct fixture *f = *state;
	struct object bad;

	build_full(f);
	assert_int_equal(buf_append(&f->out, "xy", 2), 0);

	bad = f->obj;
	bad.uid[0] = '\0';
	assert_int_equal(object_encode(&bad, &f->out), KMIPD_EINVAL);
	bad = f->obj;
	memset(bad.tenant, 'a', sizeof(bad.tenant)); /* unterminated */
	assert_int_equal(object_encode(&bad, &f->out), KMIPD_EINVAL);
	bad = f->obj;
	bad.sealed = NULL;
	assert_int_equal(object_encode(&bad, &f->out), KMIPD_EINVAL);
	f->obj.attrs[1].name = "";
	assert_int_equal(object_encode(&f->obj, &f->out), KMIPD_EINVAL);
	assert_int_equal(f->out.len, 2);
}

/* The offset of the version's value in an encoded record: after the map header and "v". */
static size_t version_offset(const struct buf *b)
{
	const uint8_t *v = memmem(b->data, b->len, "\xa1v", 2);

	assert_non_null(v);
	return (size_t)(v - b->data) + 2;
}

static void newer_format_refused(void **state)
{
	struct fixture *f = *state;
	struct object back;
	size_t at;

	build_full(f);
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	at = version_offset(&f->out);
	assert_int_equal(f->out.data[at], OBJECT_FORMAT);

	f->out.data[at] = OBJECT_FORMAT + 1;
	assert_int_equal(object_decode(f->out.data, f->out.len, &f->decode, &back),
			 KMIPD_EMALFORMED);
	assert_int_equal(back.attr_count, 0);
	f->out.data[at] = 0; /* formats start at 1 */
	assert_int_equal(object_decode(f->out.data, f->out.len, &f->decode, &back),
			 KMIPD_EMALFORMED);
	f->out.data[at] = OBJECT_FORMAT;
	assert_int_equal(object_decode(f->out.data, f->out.len, &f->decode, &back), 0);
}

/* Hand-built records: a map of @pairs whose first five are v, u, t, ot, s. */
struct packer {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void key(struct packer *p, const char *k)
{
	msgpack_pack_str_with_body(&p->pk, k, strlen(k));
}

static void begin_record(struct packer *p, uint32_t version, size_t pairs)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&p->pk, pairs);
	key(p, "v");
	msgpack_pack_uint32(&p->pk, version);
	key(p, "u");
	key(p, UID);
	key(p, "t");
	key(p, TENANT);
	key(p, "ot");
	msgpack_pack_uint32(&p->pk, 2);
	key(p, "s");
	msgpack_pack_uint32(&p->pk, 1);
}

static int decode_packed(struct fixture *f, struct packer *p, struct object *obj)
{
	int rv = object_decode((const uint8_t *)p->sb.data, p->sb.size, &f->decode, obj);

	msgpack_sbuffer_destroy(&p->sb);
	return rv;
}

static void unknown_keys_ignored(void **state)
{
	struct fixture *f = *state;
	struct packer p;
	struct object obj;

	begin_record(&p, OBJECT_FORMAT, 5 + 9);
	key(&p, "zz-map");
	msgpack_pack_map(&p.pk, 2);
	key(&p, "nested");
	msgpack_pack_array(&p.pk, 3);
	msgpack_pack_nil(&p.pk);
	msgpack_pack_true(&p.pk);
	msgpack_pack_double(&p.pk, 1.5);
	key(&p, "more");
	msgpack_pack_ext_with_body(&p.pk, "abcdef", 6, 3);
	key(&p, "zz-float");
	msgpack_pack_float(&p.pk, 2.0f);
	key(&p, "zz-fixext");
	msgpack_pack_ext_with_body(&p.pk, "abcd", 4, 1);
	key(&p, "zz-bin");
	msgpack_pack_bin_with_body(&p.pk, "\0\1\2", 3);
	key(&p, "zz-neg");
	msgpack_pack_int64(&p.pk, -123456789012LL);
	key(&p, "zz-big");
	msgpack_pack_uint64(&p.pk, UINT64_MAX);
	key(&p, "zz-str");
	key(&p, "a string of more than thirty-one bytes, so str8");
	/* Attribute entries may grow extra elements too. */
	key(&p, "a");
	msgpack_pack_array(&p.pk, 1);
	msgpack_pack_array(&p.pk, 5);
	key(&p, "Name");
	msgpack_pack_uint32(&p.pk, 3);
	msgpack_pack_bin_with_body(&p.pk, name_a, sizeof(name_a));
	msgpack_pack_false(&p.pk);
	msgpack_pack_array(&p.pk, 0);
	key(&p, "dl");
	msgpack_pack_int64(&p.pk, 1234);

	assert_int_equal(decode_packed(f, &p, &obj), 0);
	assert_string_equal(obj.uid, UID);
	assert_string_equal(obj.tenant, TENANT);
	assert_int_equal(obj.object_type, 2);
	assert_int_equal(obj.state, 1);
	assert_true(obj.last_change_date == 1234);
	assert_int_equal(obj.attr_count, 1);
	assert_int_equal(obj.attrs[0].index, 3);
	assert_memory_equal(obj.attrs[0].value, name_a, sizeof(name_a));
}

/* An unknown key may hold a value nested far deeper than any stack would allow. */
static void deeply_nested_unknown_value_is_skipped(void **state)
{
	struct fixture *f = *state;
	enum { DEPTH = 200000 };
	struct packer p;
	struct object obj;
	size_t i;

	begin_record(&p, OBJECT_FORMAT, 6);
	key(&p, "deep");
	for (i = 0; i < DEPTH; i++)
		msgpack_pack_array(&p.pk, 1);
	msgpack_pack_nil(&p.pk);
	assert_int_equal(decode_packed(f, &p, &obj), 0);
}

/* Records that are refused, each built by one function. */
static void missing_state(struct packer *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&p->pk, 4);
	key(p, "v");
	msgpack_pack_uint32(&p->pk, 1);
	key(p, "u");
	key(p, UID);
	key(p, "t");
	key(p, TENANT);
	key(p, "ot");
	msgpack_pack_uint32(&p->pk, 2);
}

static void version_not_first(struct packer *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&p->pk, 5);
	key(p, "u");
	key(p, UID);
	key(p, "v");
	msgpack_pack_uint32(&p->pk, 1);
	key(p, "t");
	key(p, TENANT);
	key(p, "ot");
	msgpack_pack_uint32(&p->pk, 2);
	key(p, "s");
	msgpack_pack_uint32(&p->pk, 1);
}

static void uid_too_long(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "u");
	key(p, UID "0");
}

static void empty_tenant(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "t");
	key(p, "");
}

static void nul_in_uid(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "u");
	msgpack_pack_str_with_body(&p->pk, "ab\0cd", 5);
}

static void state_too_large(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "s");
	msgpack_pack_uint64(&p->pk, (uint64_t)UINT32_MAX + 1);
}

static void negative_type(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "ot");
	msgpack_pack_int32(&p->pk, -1);
}

static void date_past_int64(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "da");
	msgpack_pack_uint64(&p->pk, (uint64_t)INT64_MAX + 1);
}

static void date_as_string(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "da");
	key(p, "yesterday");
}

static void sealed_as_string(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "m");
	key(p, "material");
}

static void attr_with_two_elements(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "a");
	msgpack_pack_array(&p->pk, 1);
	msgpack_pack_array(&p->pk, 2);
	key(p, "Name");
	msgpack_pack_uint32(&p->pk, 0);
}

static void attr_without_name(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "a");
	msgpack_pack_array(&p->pk, 1);
	msgpack_pack_array(&p->pk, 3);
	key(p, "");
	msgpack_pack_uint32(&p->pk, 0);
	msgpack_pack_bin_with_body(&p->pk, "x", 1);
}

static void attr_index_too_large(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "a");
	msgpack_pack_array(&p->pk, 1);
	msgpack_pack_array(&p->pk, 3);
	key(p, "Name");
	msgpack_pack_uint64(&p->pk, (uint64_t)UINT32_MAX + 1);
	msgpack_pack_bin_with_body(&p->pk, "x", 1);
}

static void attrs_not_array(struct packer *p)
{
	begin_record(p, 1, 6);
	key(p, "a");
	msgpack_pack_map(&p->pk, 0);
}

static void key_not_string(struct packer *p)
{
	begin_record(p, 1, 6);
	msgpack_pack_uint32(&p->pk, 1);
	msgpack_pack_uint32(&p->pk, 1);
}

static void record_not_map(struct packer *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
	msgpack_pack_array(&p->pk, 1);
	msgpack_pack_nil(&p->pk);
}

static void trailing_bytes(struct packer *p)
{
	begin_record(p, 1, 5);
	msgpack_pack_nil(&p->pk);
}

static void refused_records(void **state)
{
	static void (*const cases[])(struct packer *) = {
		missing_state,	      version_not_first, uid_too_long,		 empty_tenant,
		nul_in_uid,	      state_too_large,	 negative_type,		 date_past_int64,
		date_as_string,	      sealed_as_string,	 attr_with_two_elements, attr_without_name,
		attr_index_too_large, attrs_not_array,	 key_not_string,	 record_not_map,
		trailing_bytes,
	};
	struct fixture *f = *state;
	struct packer p;
	struct object obj;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cases[i](&p);
		if (decode_packed(f, &p, &obj) != KMIPD_EMALFORMED)
			fail_msg("case %zu was accepted", i);
	}
}

/* Raw bytes whose counts and lengths promise far more than they hold. */
static void lying_lengths_refused(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
	} cases[] = {
		{"", 0},
		{"\xdf\xff\xff\xff\xff", 5},			    /* map32 of 4G pairs */
		{"\x81\xa1v\x01", 4},				    /* the version alone */
		{"\x82\xa1v\x01\xa1\x61\xdd\xff\xff\xff\xff", 11},  /* "a": array32 of 4G */
		{"\x82\xa1v\x01\xa1m\xc6\xff\xff\xff\xff", 11},	    /* "m": bin32 of 4G */
		{"\x82\xa1v\x01\xa1z\xc9\xff\xff\xff\xff\x01", 12}, /* unknown ext32 */
		{"\x82\xa1v\x01\xa1z\xdb\xff\xff\xff\xff", 11},	    /* unknown str32 */
		{"\x82\xa1v\x01\xa1z\xc1", 7},			    /* the unused type byte */
		{"\x82\xa1v\x01\xbfz", 6},			    /* fixstr key cut short */
	};
	struct fixture *f = *state;
	struct object obj;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (object_decode((const uint8_t *)cases[i].bytes, cases[i].len, &f->decode,
				  &obj) != KMIPD_EMALFORMED)
			fail_msg("case %zu was accepted", i);
	}
	assert_int_equal(object_decode(NULL, 0, &f->decode, &obj), KMIPD_EMALFORMED);
}

static void truncated_records_refused(void **state)
{
	struct fixture *f = *state;
	struct object obj;
	uint8_t *copy;
	size_t len;

	build_full(f);
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	for (len = 0; len < f->out.len; len++) {
		/* A copy of exactly @len bytes, so a read past the end is caught by ASan. */
		copy = malloc(len ? len : 1);
		memcpy(copy, f->out.data, len);
		memset(&obj, 0xa5, sizeof(obj));
		if (object_decode(copy, len, &f->decode, &obj) != KMIPD_EMALFORMED)
			fail_msg("a record cut to %zu of %zu bytes was accepted", len, f->out.len);
		assert_int_equal(obj.attr_count, 0);
		assert_null(obj.attrs);
		free(copy);
		arena_reset(&f->decode);
	}
}

/* Every one-byte change decodes to something or is refused; none crashes. */
static void damaged_records_never_crash(void **state)
{
	struct fixture *f = *state;
	struct object obj;
	size_t at;
	int v, rv;

	build_full(f);
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	for (at = 0; at < f->out.len; at++) {
		uint8_t saved = f->out.data[at];

		for (v = 0; v < 256; v++) {
			f->out.data[at] = (uint8_t)v;
			rv = object_decode(f->out.data, f->out.len, &f->decode, &obj);
			if (rv != 0 && rv != KMIPD_EMALFORMED)
				fail_msg("byte %zu = %d gave %d", at, v, rv);
			arena_reset(&f->decode);
		}
		f->out.data[at] = saved;
	}
}

/* A limited arena makes decoding fail cleanly with ENOMEM. */
static void decode_out_of_memory(void **state)
{
	struct fixture *f = *state;
	struct arena small;
	struct object obj;

	build_full(f);
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	arena_init(&small, 64, 64);
	assert_int_equal(object_decode(f->out.data, f->out.len, &small, &obj), KMIPD_ENOMEM);
	arena_free(&small);
}

static void attr_find_and_count(void **state)
{
	struct fixture *f = *state;
	const struct object_attr *a;
	int64_t max;

	build_full(f);
	a = object_attr_find(&f->obj, "Name", 1);
	assert_non_null(a);
	assert_memory_equal(a->value, name_b, sizeof(name_b));
	assert_null(object_attr_find(&f->obj, "Name", 2));
	assert_null(object_attr_find(&f->obj, "name", 0)); /* names are case-sensitive */

	assert_int_equal(object_attr_count(&f->obj, "Name", &max), 2);
	assert_true(max == 1);
	assert_int_equal(object_attr_count(&f->obj, "Cryptographic Length", &max), 1);
	assert_true(max == UINT32_MAX);
	assert_int_equal(object_attr_count(&f->obj, "Object Group", &max), 0);
	assert_true(max == -1);
	assert_int_equal(object_attr_count(&f->obj, "x-Custom", NULL), 1);
}

static void attr_add_copies(void **state)
{
	struct fixture *f = *state;
	char name[] = "x-Mine";
	uint8_t value[] = {1, 2, 3};
	struct object_attr own[1] = {{"Object Group", 0, custom, sizeof(custom)}};

	/* The object's array belongs to the caller: adding must not write into it. */
	strcpy(f->obj.uid, UID);
	f->obj.attrs = own;
	f->obj.attr_count = 1;
	assert_int_equal(object_attr_add(&f->obj, &f->arena, name, 4, value, sizeof(value)), 0);
	assert_ptr_not_equal(f->obj.attrs, own);
	assert_int_equal(f->obj.attr_count, 2);
	name[0] = 'y';
	value[0] = 9;
	assert_string_equal(f->obj.attrs[1].name, "x-Mine");
	assert_int_equal(f->obj.attrs[1].value[0], 1);
	assert_int_equal(f->obj.attrs[1].index, 4);
	assert_string_equal(f->obj.attrs[0].name, "Object Group");
	assert_int_equal(own[0].index, 0);

	/* An empty value is allowed and reads back as none. */
	assert_int_equal(object_attr_add(&f->obj, &f->arena, "x-Empty", 0, NULL, 0), 0);
	assert_int_equal(f->obj.attrs[2].value_len, 0);
}

static void attr_add_out_of_memory(void **state)
{
	struct fixture *f = *state;
	struct arena tiny;

	(void)state;
	arena_init(&tiny, 16, 16);
	assert_int_equal(object_attr_add(&f->obj, &tiny, "Name", 0, name_a, sizeof(name_a)),
			 KMIPD_ENOMEM);
	assert_int_equal(f->obj.attr_count, 0);
	arena_free(&tiny);
}

static void attr_replace(void **state)
{
	struct fixture *f = *state;
	uint8_t value[] = {7, 7};

	build_full(f);
	assert_int_equal(object_attr_replace(&f->obj, &f->arena, "Name", 0, value, sizeof(value)),
			 0);
	value[0] = 0;
	assert_int_equal(f->obj.attrs[1].value_len, 2);
	assert_int_equal(f->obj.attrs[1].value[0], 7);
	assert_int_equal(f->obj.attr_count, 5);
	assert_memory_equal(f->obj.attrs[2].value, name_b, sizeof(name_b)); /* the other Name */
	assert_int_equal(object_attr_replace(&f->obj, &f->arena, "Name", 5, value, 1),
			 KMIPD_ENOT_FOUND);
}

static void attr_remove_keeps_order(void **state)
{
	struct fixture *f = *state;
	int64_t max;

	build_full(f);
	assert_int_equal(object_attr_remove(&f->obj, "Name", 0), 0);
	assert_int_equal(f->obj.attr_count, 4);
	assert_string_equal(f->obj.attrs[0].name, "Cryptographic Algorithm");
	assert_string_equal(f->obj.attrs[1].name, "Name");
	assert_int_equal(f->obj.attrs[1].index, 1);
	assert_string_equal(f->obj.attrs[2].name, "x-Custom");
	assert_string_equal(f->obj.attrs[3].name, "Cryptographic Length");
	assert_int_equal(object_attr_count(&f->obj, "Name", &max), 1);
	assert_true(max == 1);

	assert_int_equal(object_attr_remove(&f->obj, "Name", 0), KMIPD_ENOT_FOUND);
	assert_int_equal(object_attr_remove(&f->obj, "Cryptographic Length", UINT32_MAX), 0);
	assert_int_equal(object_attr_remove(&f->obj, "Cryptographic Algorithm", 0), 0);
	assert_int_equal(object_attr_remove(&f->obj, "Name", 1), 0);
	assert_int_equal(object_attr_remove(&f->obj, "x-Custom", 0), 0);
	assert_int_equal(f->obj.attr_count, 0);
	assert_int_equal(object_attr_count(&f->obj, "Name", &max), 0);
	assert_true(max == -1);
	assert_int_equal(object_attr_remove(&f->obj, "x-Custom", 0), KMIPD_ENOT_FOUND);
}

/* Edits survive a round trip. */
static void edited_object_round_trips(void **state)
{
	struct fixture *f = *state;
	struct object back;

	build_full(f);
	assert_int_equal(object_attr_remove(&f->obj, "Name", 0), 0);
	assert_int_equal(object_attr_replace(&f->obj, &f->arena, "Name", 1, name_a, sizeof(name_a)),
			 0);
	ADD("Object Group", 0, custom);
	assert_int_equal(object_encode(&f->obj, &f->out), 0);
	assert_int_equal(object_decode(f->out.data, f->out.len, &f->decode, &back), 0);
	assert_same(&f->obj, &back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(round_trip_full_object),
		T(round_trip_minimal_object),
		T(encode_appends),
		T(encode_refuses_what_cannot_be_read_back),
		T(newer_format_refused),
		T(unknown_keys_ignored),
		T(deeply_nested_unknown_value_is_skipped),
		T(refused_records),
		T(lying_lengths_refused),
		T(truncated_records_refused),
		T(damaged_records_never_crash),
		T(decode_out_of_memory),
		T(attr_find_and_count),
		T(attr_add_copies),
		T(attr_add_out_of_memory),
		T(attr_replace),
		T(attr_remove_keeps_order),
		T(edited_object_round_trips),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
