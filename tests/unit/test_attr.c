/* The attribute model: names per version, custom attributes, value checks, encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kmipd/attr.h"
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"

/* Builds an Attribute structure in @arena: @name, optional @index (< 0: none), @value. */
static struct ttlv_item *attribute(struct arena *arena, const char *name, int index,
				   struct ttlv_item *value)
{
	struct ttlv_item *a = ttlv_new(arena, KMIP_TAG_ATTRIBUTE, TTLV_STRUCTURE);

	ttlv_append(a, ttlv_new_bytes(arena, KMIP_TAG_ATTRIBUTE_NAME, TTLV_TEXT_STRING, name,
				      strlen(name)));
	if (index >= 0) {
		struct ttlv_item *i = ttlv_new(arena, KMIP_TAG_ATTRIBUTE_INDEX, TTLV_INTEGER);

		i->v.integer = index;
		ttlv_append(a, i);
	}
	if (value != NULL) {
		value->tag = KMIP_TAG_ATTRIBUTE_VALUE;
		ttlv_append(a, value);
	}
	return a;
}

static struct ttlv_item *enumeration(struct arena *arena, uint32_t v)
{
	struct ttlv_item *e = ttlv_new(arena, 0, TTLV_ENUMERATION);

	e->v.enumeration = v;
	return e;
}

static struct ttlv_item *integer(struct arena *arena, int32_t v)
{
	struct ttlv_item *i = ttlv_new(arena, 0, TTLV_INTEGER);

	i->v.integer = v;
	return i;
}

static struct ttlv_item *text(struct arena *arena, uint32_t tag, const char *s)
{
	return ttlv_new_bytes(arena, tag, TTLV_TEXT_STRING, s, strlen(s));
}

static struct ttlv_item *name_value(struct arena *arena, const char *s, bool with_type)
{
	struct ttlv_item *n = ttlv_new(arena, 0, TTLV_STRUCTURE);

	ttlv_append(n, text(arena, KMIP_TAG_NAME_VALUE, s));
	if (with_type) {
		struct ttlv_item *t = enumeration(arena, KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);

		t->tag = KMIP_TAG_NAME_TYPE;
		ttlv_append(n, t);
	}
	return n;
}

static void standard_names_depend_on_the_version(void **state)
{
	const struct kmip_attr_def *def;

	(void)state;
	assert_int_equal(kmip_attr_classify("State", 5, KMIP_V1_0, &def), KMIP_ATTR_STANDARD);
	assert_int_equal(def->tag, KMIP_TAG_STATE);
	/* Original Creation Date is 1.2+, Sensitive 1.4+: a 1.1 client never sees them. */
	assert_int_equal(kmip_attr_classify("Original Creation Date", 22, KMIP_V1_1, &def),
			 KMIP_ATTR_UNKNOWN);
	assert_null(def);
	assert_int_equal(kmip_attr_classify("Original Creation Date", 22, KMIP_V1_2, &def),
			 KMIP_ATTR_STANDARD);
	assert_int_equal(kmip_attr_classify("Sensitive", 9, KMIP_V1_3, NULL), KMIP_ATTR_UNKNOWN);
	assert_int_equal(kmip_attr_classify("Sensitive", 9, KMIP_V1_4, NULL), KMIP_ATTR_STANDARD);
	assert_int_equal(kmip_attr_classify("state", 5, KMIP_V1_4, NULL), KMIP_ATTR_UNKNOWN);
}

static void custom_names(void **state)
{
	(void)state;
	assert_int_equal(kmip_attr_classify("x-Vendor", 8, KMIP_V1_1, NULL),
			 KMIP_ATTR_CUSTOM_CLIENT);
	assert_int_equal(kmip_attr_classify("y-Internal", 10, KMIP_V1_1, NULL),
			 KMIP_ATTR_CUSTOM_SERVER);
	/* "x-" alone names nothing. */
	assert_int_equal(kmip_attr_classify("x-", 2, KMIP_V1_1, NULL), KMIP_ATTR_UNKNOWN);
	assert_int_equal(kmip_attr_classify("X-Vendor", 8, KMIP_V1_1, NULL), KMIP_ATTR_UNKNOWN);
}

static void rules_of_well_known_attributes(void **state)
{
	const struct kmip_attr_def *name = kmip_attr_def_by_name("Name", 4);
	const struct kmip_attr_def *uid = kmip_attr_def_by_tag(KMIP_TAG_UNIQUE_IDENTIFIER);
	const struct kmip_attr_def *alg = kmip_attr_def_by_name("Cryptographic Algorithm", 23);
	const struct kmip_attr_def *group = kmip_attr_def_by_name("Object Group", 12);

	(void)state;
	assert_true(name->flags & KMIP_ATTR_MULTI);
	assert_true(name->flags & KMIP_ATTR_CLIENT_DELETE);
	assert_int_equal(uid->flags, 0); /* server-only, single, permanent */
	assert_true(alg->flags & KMIP_ATTR_CLIENT_SET);
	assert_false(alg->flags & KMIP_ATTR_CLIENT_MODIFY);
	assert_true(kmip_attr_applies(alg, KMIP_OBJECT_TYPE_SYMMETRIC_KEY));
	assert_false(kmip_attr_applies(alg, KMIP_OBJECT_TYPE_SECRET_DATA));
	assert_true(kmip_attr_applies(uid, KMIP_OBJECT_TYPE_OPAQUE_OBJECT));
	assert_true(group->flags & KMIP_ATTR_MULTI);
	assert_true(group->flags & KMIP_ATTR_CLIENT_SET);
}

static void check_def(const struct kmip_attr_def *def, void *count)
{
	assert_string_equal(kmip_tag_name(def->tag), def->name);
	assert_int_equal(kmip_tag_since(def->tag), def->since);
	++*(int *)count;
}

/* Every table entry's tag is a known tag of the same version, and its name is the tag's. */
static void table_agrees_with_the_tag_list(void **state)
{
	int count = 0;

	(void)state;
	kmip_attr_def_foreach(check_def, &count);
	assert_int_equal(count, 50);
}

static void parse_vcenter_custom_attribute(void **state)
{
	struct arena arena;
	struct kmip_attr attr;
	struct kmip_attr_problem p;

	(void)state;
	arena_init(&arena, 4096, 0);
	assert_int_equal(kmip_attr_parse(attribute(&arena, "x-Product_Version", -1,
						   text(&arena, 0, "8.0.3")),
					 KMIP_V1_1, KMIP_ATTR_VALUE_REQUIRED, &attr, &p),
			 0);
	assert_int_equal(attr.kind, KMIP_ATTR_CUSTOM_CLIENT);
	assert_false(attr.has_index);
	assert_int_equal(attr.name.len, 17);
	assert_true(ttlv_text_equals(attr.value, "8.0.3"));

	/* Custom attributes may carry any type. */
	assert_int_equal(kmip_attr_parse(attribute(&arena, "x-count", 2, integer(&arena, 7)),
					 KMIP_V1_1, KMIP_ATTR_VALUE_REQUIRED, &attr, &p),
			 0);
	assert_true(attr.has_index);
	assert_int_equal(attr.index, 2);
	arena_free(&arena);
}

/* One line per refused attribute: the reason and a phrase of the message. */
static void refused(struct ttlv_item *a, unsigned version, enum kmip_attr_value_rule rule,
		    const char *phrase)
{
	struct kmip_attr attr;
	struct kmip_attr_problem p;

	assert_int_equal(kmip_attr_parse(a, version, rule, &attr, &p), KMIPD_EINVAL);
	assert_int_equal(p.reason, KMIP_REASON_INVALID_FIELD);
	if (strstr(p.message, phrase) == NULL)
		fail_msg("message '%s' lacks '%s'", p.message, phrase);
}

static void bad_attributes_are_refused_with_a_reason(void **state)
{
	struct arena a;

	(void)state;
	arena_init(&a, 4096, 0);
	refused(attribute(&a, "Colour", -1, text(&a, 0, "red")), KMIP_V1_1,
		KMIP_ATTR_VALUE_REQUIRED, "'Colour' is not an attribute of KMIP 1.1");
	refused(attribute(&a, "Sensitive", -1, NULL), KMIP_V1_1, KMIP_ATTR_VALUE_OPTIONAL,
		"not an attribute of KMIP 1.1");
	refused(attribute(&a, "Cryptographic Length", -1, text(&a, 0, "256")), KMIP_V1_1,
		KMIP_ATTR_VALUE_REQUIRED, "must be a Integer, not a Text String");
	refused(attribute(&a, "Cryptographic Algorithm", -1, enumeration(&a, 0x7777)), KMIP_V1_1,
		KMIP_ATTR_VALUE_REQUIRED, "0x00007777 is not a Cryptographic Algorithm value");
	refused(attribute(&a, "Name", -1, name_value(&a, "vm-1", false)), KMIP_V1_1,
		KMIP_ATTR_VALUE_REQUIRED, "Name needs a Name Type");
	refused(attribute(&a, "x-Vendor", -1, NULL), KMIP_V1_1, KMIP_ATTR_VALUE_REQUIRED,
		"has no value");
	refused(attribute(&a, "x-Vendor", -1, text(&a, 0, "v")), KMIP_V1_1, KMIP_ATTR_VALUE_ABSENT,
		"not expected");
	arena_free(&a);
}

static void name_structure_is_checked_field_by_field(void **state)
{
	struct arena a;
	struct kmip_attr attr;
	struct kmip_attr_problem p;
	struct ttlv_item *n;

	(void)state;
	arena_init(&a, 4096, 0);
	assert_int_equal(kmip_attr_parse(attribute(&a, "Name", 0, name_value(&a, "vm-1", true)),
					 KMIP_V1_0, KMIP_ATTR_VALUE_REQUIRED, &attr, &p),
			 0);
	n = name_value(&a, "vm-1", true);
	ttlv_append(n, text(&a, KMIP_TAG_NAME_VALUE, "again"));
	refused(attribute(&a, "Name", -1, n), KMIP_V1_0, KMIP_ATTR_VALUE_REQUIRED,
		"Name Value appears twice");
	n = name_value(&a, "vm-1", true);
	ttlv_append(n, text(&a, KMIP_TAG_UNIQUE_IDENTIFIER, "x"));
	refused(attribute(&a, "Name", -1, n), KMIP_V1_0, KMIP_ATTR_VALUE_REQUIRED,
		"does not have a field Unique Identifier");
	arena_free(&a);
}

static void index_must_not_be_negative(void **state)
{
	struct arena a;
	struct ttlv_item *attr;

	(void)state;
	arena_init(&a, 4096, 0);
	attr = attribute(&a, "x-a", 0, text(&a, 0, "v"));
	attr->v.children.first->next->v.integer = -1;
	refused(attr, KMIP_V1_1, KMIP_ATTR_VALUE_REQUIRED, "non-negative");
	arena_free(&a);
}

static void put_writes_index_only_when_asked_or_positive(void **state)
{
	struct arena a;
	struct buf out = BUF_INIT;
	struct ttlv_writer w;
	struct ttlv_item *root;
	struct ttlv_error err;
	struct kmip_attr attr;
	struct kmip_attr_problem p;
	const struct ttlv_item *c;

	(void)state;
	arena_init(&a, 4096, 0);
	ttlv_writer_init(&w, &out);
	ttlv_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
	kmip_attr_put(&w, "x-Name", 6, 0, false, text(&a, 0, "vm"));
	kmip_attr_put(&w, "x-Name", 6, 0, true, text(&a, 0, "vm"));
	kmip_attr_put(&w, "x-Name", 6, 3, false, text(&a, 0, "vm"));
	ttlv_end(&w);
	assert_int_equal(ttlv_writer_finish(&w), 0);
	assert_int_equal(ttlv_decode(out.data, out.len, NULL, &a, &root, &err), 0);

	c = root->v.children.first;
	assert_int_equal(kmip_attr_parse(c, KMIP_V1_1, KMIP_ATTR_VALUE_REQUIRED, &attr, &p), 0);
	assert_false(attr.has_index);
	c = c->next;
	assert_int_equal(kmip_attr_parse(c, KMIP_V1_1, KMIP_ATTR_VALUE_REQUIRED, &attr, &p), 0);
	assert_true(attr.has_index);
	assert_int_equal(attr.index, 0);
	c = c->next;
	assert_int_equal(kmip_attr_parse(c, KMIP_V1_1, KMIP_ATTR_VALUE_REQUIRED, &attr, &p), 0);
	assert_int_equal(attr.index, 3);
	assert_int_equal(attr.value->tag, KMIP_TAG_ATTRIBUTE_VALUE);
	buf_free(&out);
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(standard_names_depend_on_the_version),
		cmocka_unit_test(custom_names),
		cmocka_unit_test(rules_of_well_known_attributes),
		cmocka_unit_test(table_agrees_with_the_tag_list),
		cmocka_unit_test(parse_vcenter_custom_attribute),
		cmocka_unit_test(bad_attributes_are_refused_with_a_reason),
		cmocka_unit_test(name_structure_is_checked_field_by_field),
		cmocka_unit_test(index_must_not_be_negative),
		cmocka_unit_test(put_writes_index_only_when_asked_or_positive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
