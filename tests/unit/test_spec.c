/* The KMIP 1.0–1.4 tag and enumeration tables: ordering, name <-> number round trips,
 * versions, and spot checks against the specification's own tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"

/* Walk state shared by the foreach callbacks. */
struct walk {
	size_t count;
	uint32_t last;
	enum kmip_enum_family family;
};

static void check_tag(uint32_t tag, const char *name, unsigned since, void *arg)
{
	struct walk *w = arg;
	uint32_t found = 0;

	/* Strictly ascending, hence unique, and all inside the KMIP tag range. */
	if (w->count > 0)
		assert_true(tag > w->last);
	assert_true(tag >= 0x420001 && tag <= 0x42FFFF);
	w->last = tag;
	w->count++;

	assert_non_null(name);
	assert_true(name[0] != '\0');
	assert_string_equal(kmip_tag_name(tag), name);
	assert_int_equal(kmip_tag_since(tag), since);
	assert_true(since >= KMIP_V1_0 && since <= KMIP_V1_4);
	assert_true(kmip_version_supported(since));

	assert_int_equal(kmip_tag_by_name(name, strlen(name), &found), 0);
	assert_int_equal(found, tag);
}

static void tags_ascend_and_round_trip(void **state)
{
	struct walk w = {0};

	(void)state;
	kmip_tag_foreach(check_tag, &w);
	/* 0x420001 .. 0x420124: every tag of KMIP 1.0 to 1.4. */
	assert_int_equal(w.count, 0x124);
	assert_int_equal(w.last, 0x420124);
}

static void check_value(uint32_t value, const char *name, unsigned since, void *arg)
{
	struct walk *w = arg;
	uint32_t found = 0xFFFFFFFF;

	if (w->count > 0)
		assert_true(value > w->last);
	w->last = value;
	w->count++;

	assert_non_null(name);
	assert_true(name[0] != '\0');
	assert_string_equal(kmip_enum_name(w->family, value), name);
	assert_int_equal(kmip_enum_since(w->family, value), since);
	assert_true(since >= KMIP_V1_0 && since <= KMIP_V1_4);

	assert_int_equal(kmip_enum_by_name(w->family, name, strlen(name), &found), 0);
	assert_int_equal(found, value);

	/* A mask family's values are single bits. */
	if (kmip_enum_family_is_mask(w->family))
		assert_true(value != 0 && (value & (value - 1)) == 0);
}

static void families_ascend_and_round_trip(void **state)
{
	size_t total = 0;

	(void)state;
	for (int f = KMIP_FAMILY_NONE_ + 1; f < KMIP_FAMILY_COUNT_; f++) {
		struct walk w = {.family = (enum kmip_enum_family)f};
		const char *fname = kmip_enum_family_name(w.family);
		uint32_t tag = 0;

		/* The family is named after its defining tag, which maps back to it. */
		assert_non_null(fname);
		assert_int_equal(kmip_tag_by_name(fname, strlen(fname), &tag), 0);
		assert_int_equal(kmip_enum_family_of(tag), f);

		kmip_enum_foreach(w.family, check_value, &w);
		assert_true(w.count > 0);
		total += w.count;
	}
	assert_true(total > 500);
}

static void spot_checks_tags(void **state)
{
	uint32_t tag = 0;

	(void)state;
	assert_int_equal(KMIP_TAG_UNIQUE_IDENTIFIER, 0x420094);
	assert_string_equal(kmip_tag_name(0x420094), "Unique Identifier");
	assert_int_equal(kmip_tag_since(0x420094), KMIP_V1_0);
	assert_string_equal(kmip_tag_name(0x420001), "Activation Date");
	assert_string_equal(kmip_tag_name(0x420028), "Cryptographic Algorithm");
	assert_string_equal(kmip_tag_name(0x42005C), "Operation");
	assert_string_equal(kmip_tag_name(0x420078), "Request Message");
	assert_string_equal(kmip_tag_name(0x42007B), "Response Message");
	assert_string_equal(kmip_tag_name(0x420091), "Template-Attribute");
	assert_int_equal(KMIP_TAG_PASSWORD, 0x4200A1);
	assert_int_equal(kmip_tag_since(KMIP_TAG_PASSWORD), KMIP_V1_0);
	assert_int_equal(KMIP_TAG_DEVICE_IDENTIFIER, 0x4200A2);
	assert_int_equal(kmip_tag_since(KMIP_TAG_DEVICE_IDENTIFIER), KMIP_V1_1);
	assert_int_equal(kmip_tag_since(KMIP_TAG_KEY_VALUE_LOCATION), KMIP_V1_2);
	assert_int_equal(kmip_tag_since(KMIP_TAG_CAPABILITY_INFORMATION), KMIP_V1_3);
	assert_int_equal(kmip_tag_since(KMIP_TAG_KEY_WRAP_TYPE), KMIP_V1_4);
	assert_int_equal(KMIP_TAG_REPLACE_EXISTING, 0x420124);
	assert_int_equal(kmip_tag_since(KMIP_TAG_REPLACE_EXISTING), KMIP_V1_4);

	assert_int_equal(kmip_tag_by_name("Batch Count", strlen("Batch Count"), &tag), 0);
	assert_int_equal(tag, 0x42000D);
	/* The length bounds the match: "Batch Count" is a prefix of nothing else here. */
	assert_int_equal(kmip_tag_by_name("Batch Countx", 11, &tag), 0);
	assert_int_equal(tag, 0x42000D);
}

static void spot_checks_enums(void **state)
{
	uint32_t v = 0;

	(void)state;
	assert_int_equal(kmip_enum_family_of(KMIP_TAG_OPERATION), KMIP_FAMILY_OP);
	assert_string_equal(kmip_enum_family_name(KMIP_FAMILY_OP), "Operation");
	assert_int_equal(KMIP_OP_CREATE, 0x01);
	assert_int_equal(KMIP_OP_GET, 0x0A);
	assert_int_equal(KMIP_OP_DISCOVER_VERSIONS, 0x1E);
	assert_string_equal(kmip_enum_name(KMIP_FAMILY_OP, 0x1E), "Discover Versions");
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_OP, 0x1E), KMIP_V1_1);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_OP, KMIP_OP_ENCRYPT), KMIP_V1_2);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_OP, KMIP_OP_EXPORT), KMIP_V1_4);

	assert_string_equal(kmip_enum_name(KMIP_FAMILY_STATE, 0x01), "Pre-Active");
	assert_int_equal(KMIP_STATE_DESTROYED_COMPROMISED, 0x06);

	assert_string_equal(kmip_enum_name(KMIP_FAMILY_OBJECT_TYPE, 0x08), "Opaque Object");
	assert_int_equal(KMIP_OBJECT_TYPE_SYMMETRIC_KEY, 0x02);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_OBJECT_TYPE, KMIP_OBJECT_TYPE_PGP_KEY),
			 KMIP_V1_2);

	assert_int_equal(KMIP_ALG_AES, 0x03);
	assert_string_equal(kmip_enum_name(KMIP_FAMILY_ALG, 0x03), "AES");
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_ALG, KMIP_ALG_EC), KMIP_V1_2);

	assert_true(kmip_enum_family_is_mask(KMIP_FAMILY_USAGE));
	assert_int_equal(kmip_enum_family_of(KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK), KMIP_FAMILY_USAGE);
	assert_int_equal(KMIP_USAGE_ENCRYPT, 0x04);
	assert_int_equal(KMIP_USAGE_DECRYPT, 0x08);
	assert_false(kmip_enum_family_is_mask(KMIP_FAMILY_OP));

	assert_string_equal(kmip_enum_name(KMIP_FAMILY_REASON, 0x100), "General Failure");
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_REASON, 0x100), KMIP_V1_0);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_REASON, KMIP_REASON_ITEM_NOT_FOUND),
			 KMIP_V1_0);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_REASON, KMIP_REASON_ENCODING_OPTION_ERROR),
			 KMIP_V1_1);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_REASON, KMIP_REASON_ATTESTATION_REQUIRED),
			 KMIP_V1_2);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_REASON, KMIP_REASON_OBJECT_ALREADY_EXISTS),
			 KMIP_V1_4);

	assert_int_equal(KMIP_STATUS_SUCCESS, 0x00);
	assert_string_equal(kmip_enum_name(KMIP_FAMILY_STATUS, 0x00), "Success");
	assert_int_equal(KMIP_LINK_TYPE_CERTIFICATE_LINK, 0x101);
	assert_int_equal(KMIP_KEY_FORMAT_RAW, 0x01);
	assert_int_equal(KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY, 0x07);
	assert_int_equal(KMIP_REVOCATION_KEY_COMPROMISE, 0x02);
	assert_int_equal(KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING, 0x01);
	assert_int_equal(KMIP_QUERY_SERVER_INFORMATION, 0x03);
	assert_int_equal(KMIP_PADDING_PKCS1_V1_5, 0x08);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_PADDING, 0x08), KMIP_V1_0);
	assert_int_equal(KMIP_KEY_WRAP_TYPE_AS_REGISTERED, 0x02);

	/* Mask Generator Hashing Algorithm carries Hashing Algorithm values. */
	assert_int_equal(kmip_enum_family_of(KMIP_TAG_MASK_GENERATOR_HASHING_ALGORITHM),
			 KMIP_FAMILY_HASH);
	assert_int_equal(kmip_enum_family_of(KMIP_TAG_HASHING_ALGORITHM), KMIP_FAMILY_HASH);
	assert_string_equal(kmip_enum_name(KMIP_FAMILY_HASH, KMIP_HASH_SHA_256), "SHA-256");

	assert_int_equal(kmip_enum_by_name(KMIP_FAMILY_STATE, "Active", 6, &v), 0);
	assert_int_equal(v, KMIP_STATE_ACTIVE);
}

static void unknown_things(void **state)
{
	uint32_t v = 12345;

	(void)state;
	assert_null(kmip_tag_name(0));
	assert_null(kmip_tag_name(0x420000));
	assert_null(kmip_tag_name(0x420125)); /* KMIP 2.0 Attributes */
	assert_null(kmip_tag_name(0x540001)); /* extension range */
	assert_int_equal(kmip_tag_since(0x420125), 0);
	assert_int_equal(kmip_tag_by_name("No Such Tag", 11, &v), KMIPD_ENOT_FOUND);
	assert_int_equal(kmip_tag_by_name("Unique Identifie", 16, &v), KMIPD_ENOT_FOUND);
	assert_int_equal(kmip_tag_by_name("", 0, &v), KMIPD_ENOT_FOUND);
	assert_int_equal(v, 12345);

	assert_int_equal(kmip_enum_family_of(KMIP_TAG_UNIQUE_IDENTIFIER), KMIP_FAMILY_NONE_);
	assert_int_equal(kmip_enum_family_of(0x420125), KMIP_FAMILY_NONE_);
	assert_null(kmip_enum_family_name(KMIP_FAMILY_NONE_));
	assert_null(kmip_enum_family_name(KMIP_FAMILY_COUNT_));
	assert_false(kmip_enum_family_is_mask(KMIP_FAMILY_NONE_));
	assert_false(kmip_enum_family_is_mask(KMIP_FAMILY_COUNT_));

	assert_null(kmip_enum_name(KMIP_FAMILY_OP, 0));
	assert_null(kmip_enum_name(KMIP_FAMILY_OP, 0x2C)); /* KMIP 2.0 Log */
	assert_null(kmip_enum_name(KMIP_FAMILY_REASON, 0x19));
	assert_null(kmip_enum_name(KMIP_FAMILY_NONE_, 1));
	assert_null(kmip_enum_name(KMIP_FAMILY_COUNT_, 1));
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_OP, 0x2C), 0);
	assert_int_equal(kmip_enum_since(KMIP_FAMILY_NONE_, 1), 0);
	assert_int_equal(kmip_enum_by_name(KMIP_FAMILY_OP, "Login", 5, &v), KMIPD_ENOT_FOUND);
	assert_int_equal(kmip_enum_by_name(KMIP_FAMILY_NONE_, "Create", 6, &v), KMIPD_ENOT_FOUND);
	/* Names belong to their family: "Active" is a State, not an Operation. */
	assert_int_equal(kmip_enum_by_name(KMIP_FAMILY_OP, "Active", 6, &v), KMIPD_ENOT_FOUND);
	assert_int_equal(v, 12345);
}

static void count_calls(uint32_t value, const char *name, unsigned since, void *arg)
{
	(void)value;
	(void)name;
	(void)since;
	(*(int *)arg)++;
}

static void foreach_of_invalid_family_does_nothing(void **state)
{
	int calls = 0;

	(void)state;
	kmip_enum_foreach(KMIP_FAMILY_NONE_, count_calls, &calls);
	kmip_enum_foreach(KMIP_FAMILY_COUNT_, count_calls, &calls);
	assert_int_equal(calls, 0);
}

static void supported_versions(void **state)
{
	(void)state;
	for (unsigned minor = 0; minor <= 4; minor++)
		assert_true(kmip_version_supported(KMIP_VERSION(1, minor)));
	assert_false(kmip_version_supported(KMIP_VERSION(1, 5)));
	assert_false(kmip_version_supported(KMIP_VERSION(2, 0)));
	assert_false(kmip_version_supported(KMIP_VERSION(0, 9)));
	assert_false(kmip_version_supported(0));

	/* Highest first, as Discover Versions answers. */
	assert_int_equal(kmip_supported_versions_count, 5);
	assert_int_equal(kmip_supported_versions[0], KMIP_V1_4);
	for (size_t i = 1; i < kmip_supported_versions_count; i++)
		assert_true(kmip_supported_versions[i] < kmip_supported_versions[i - 1]);
	assert_int_equal(KMIP_VERSION_MAJOR(KMIP_V1_3), 1);
	assert_int_equal(KMIP_VERSION_MINOR(KMIP_V1_3), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tags_ascend_and_round_trip),
		cmocka_unit_test(families_ascend_and_round_trip),
		cmocka_unit_test(spot_checks_tags),
		cmocka_unit_test(spot_checks_enums),
		cmocka_unit_test(unknown_things),
		cmocka_unit_test(foreach_of_invalid_family_does_nothing),
		cmocka_unit_test(supported_versions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
