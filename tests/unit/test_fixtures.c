/* Messages encoded by an independent implementation (PyKMIP, tests/fixtures/gen_pykmip.py):
 * each decodes, encodes back to the same bytes, and each request parses into the expected
 * header and batch items. Run from the repository root, as `make unit` does. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/message.h"

#define FIXTURE_DIR "tests/fixtures/pykmip"
#define TIME_STAMP  1700000000

/* What each fixture holds: a request or a response, the protocol version of its header,
 * and the operation of each batch item. Every file in FIXTURE_DIR must be listed. */
static const struct fixture {
	const char *name;
	bool request;
	unsigned version;
	size_t count;
	uint32_t ops[3];
} fixtures[] = {
	{"activate_request", true, KMIP_V1_4, 1, {KMIP_OP_ACTIVATE}},
	{"add_attribute_batch_request",
	 true,
	 KMIP_V1_1,
	 3,
	 {KMIP_OP_ADD_ATTRIBUTE, KMIP_OP_ADD_ATTRIBUTE, KMIP_OP_ADD_ATTRIBUTE}},
	{"activate_response", false, KMIP_V1_4, 1, {KMIP_OP_ACTIVATE}},
	{"batch_request", true, KMIP_V1_4, 2, {KMIP_OP_ACTIVATE, KMIP_OP_GET}},
	{"batch_response", false, KMIP_V1_4, 2, {KMIP_OP_ACTIVATE, KMIP_OP_GET}},
	{"create_request", true, KMIP_V1_4, 1, {KMIP_OP_CREATE}},
	{"create_response", false, KMIP_V1_4, 1, {KMIP_OP_CREATE}},
	{"destroy_request", true, KMIP_V1_2, 1, {KMIP_OP_DESTROY}},
	{"destroy_response", false, KMIP_V1_2, 1, {KMIP_OP_DESTROY}},
	{"discover_versions_request", true, KMIP_V1_1, 1, {KMIP_OP_DISCOVER_VERSIONS}},
	{"discover_versions_response", false, KMIP_V1_1, 1, {KMIP_OP_DISCOVER_VERSIONS}},
	{"error_response", false, KMIP_V1_4, 1, {KMIP_OP_GET}},
	{"get_attributes_request", true, KMIP_V1_4, 1, {KMIP_OP_GET_ATTRIBUTES}},
	{"get_attributes_response", false, KMIP_V1_4, 1, {KMIP_OP_GET_ATTRIBUTES}},
	{"get_request", true, KMIP_V1_4, 1, {KMIP_OP_GET}},
	{"get_response", false, KMIP_V1_4, 1, {KMIP_OP_GET}},
	{"locate_request", true, KMIP_V1_4, 1, {KMIP_OP_LOCATE}},
	{"locate_response", false, KMIP_V1_4, 1, {KMIP_OP_LOCATE}},
	{"query_request", true, KMIP_V1_4, 1, {KMIP_OP_QUERY}},
	{"query_response", false, KMIP_V1_4, 1, {KMIP_OP_QUERY}},
	{"register_request", true, KMIP_V1_4, 1, {KMIP_OP_REGISTER}},
	{"register_response", false, KMIP_V1_4, 1, {KMIP_OP_REGISTER}},
	{"revoke_request", true, KMIP_V1_4, 1, {KMIP_OP_REVOKE}},
	{"revoke_response", false, KMIP_V1_4, 1, {KMIP_OP_REVOKE}},
};

#define FIXTURE_COUNT (sizeof(fixtures) / sizeof(fixtures[0]))

static const struct fixture *find_fixture(const char *name)
{
	for (size_t i = 0; i < FIXTURE_COUNT; i++)
		if (strcmp(fixtures[i].name, name) == 0)
			return &fixtures[i];
	return NULL;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Loads FIXTURE_DIR/@name.hex into @out: lowercase hex digits and one final newline,
 * nothing else. */
static void load(const char *name, struct buf *out)
{
	char path[256];
	struct buf text = BUF_INIT;
	char chunk[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.hex", FIXTURE_DIR, name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s (run the tests from the repository root)", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(buf_append(&text, chunk, n), 0);
	fclose(f);

	assert_true(text.len >= 2);
	if (text.data[text.len - 1] != '\n' || (text.len - 1) % 2 != 0)
		fail_msg("%s: expected an even number of hex digits and a final newline", path);
	for (size_t i = 0; i + 1 < text.len; i += 2) {
		int hi = hex_digit(text.data[i]), lo = hex_digit(text.data[i + 1]);
		uint8_t byte;

		if (hi < 0 || lo < 0)
			fail_msg("%s: byte %zu is not lowercase hex", path, i / 2);
		byte = (uint8_t)(hi << 4 | lo);
		assert_int_equal(buf_append(out, &byte, 1), 0);
	}
	buf_free(&text);
}

/* Decodes fixture @fx, checks that encoding the tree gives the same bytes, and checks the
 * envelope; for requests also runs the message parser. */
static void check_fixture(const struct fixture *fx)
{
	struct buf data = BUF_INIT, again = BUF_INIT;
	struct arena arena;
	struct ttlv_item *root = NULL;
	struct ttlv_error err;
	const struct ttlv_item *header, *item, *count;
	size_t items = 0;

	arena_init(&arena, 4096, 0);
	load(fx->name, &data);

	if (ttlv_decode(data.data, data.len, NULL, &arena, &root, &err) != 0)
		fail_msg("%s: %s", fx->name, err.message);
	assert_int_equal(ttlv_encode(root, &again), 0);
	if (again.len != data.len || memcmp(again.data, data.data, data.len) != 0)
		fail_msg("%s: re-encoding gives %zu bytes that differ from the %zu decoded",
			 fx->name, again.len, data.len);

	/* The envelope, read from the tree for requests and responses alike. */
	assert_int_equal(root->tag,
			 fx->request ? KMIP_TAG_REQUEST_MESSAGE : KMIP_TAG_RESPONSE_MESSAGE);
	header = ttlv_child(root, fx->request ? KMIP_TAG_REQUEST_HEADER : KMIP_TAG_RESPONSE_HEADER);
	assert_non_null(header);
	count = ttlv_child(header, KMIP_TAG_BATCH_COUNT);
	assert_non_null(count);
	assert_int_equal(count->v.integer, (int32_t)fx->count);
	for (item = ttlv_child(root, KMIP_TAG_BATCH_ITEM); item != NULL;
	     item = ttlv_next_same(item)) {
		const struct ttlv_item *op = ttlv_child(item, KMIP_TAG_OPERATION);

		assert_true(items < fx->count);
		assert_non_null(op);
		assert_int_equal(op->v.enumeration, fx->ops[items]);
		items++;
	}
	assert_int_equal(items, fx->count);

	if (fx->request) {
		struct kmip_request req;
		struct kmip_message_error merr;

		if (kmip_request_parse(root, &arena, &req, &merr) != 0)
			fail_msg("%s: kmip_request_parse: %s", fx->name, merr.message);
		assert_int_equal(req.header.version, fx->version);
		assert_int_equal(req.header.batch_count, (int32_t)fx->count);
		assert_int_equal(req.count, fx->count);
		for (size_t i = 0; i < req.count; i++) {
			if (req.items[i].error_reason != 0)
				fail_msg("%s: item %zu: %s", fx->name, i,
					 req.items[i].error_message);
			assert_int_equal(req.items[i].operation, fx->ops[i]);
			assert_non_null(req.items[i].payload);
		}
	}

	arena_free(&arena);
	buf_free(&data);
	buf_free(&again);
}

static void every_fixture_round_trips(void **state)
{
	(void)state;
	for (size_t i = 0; i < FIXTURE_COUNT; i++)
		check_fixture(&fixtures[i]);
}

/* Every .hex file in the directory is one the table describes, and none is missing. */
static void directory_matches_the_table(void **state)
{
	DIR *dir = opendir(FIXTURE_DIR);
	struct dirent *e;
	size_t seen = 0;

	(void)state;
	if (dir == NULL)
		fail_msg("cannot open %s (run the tests from the repository root)", FIXTURE_DIR);
	while ((e = readdir(dir)) != NULL) {
		size_t len = strlen(e->d_name);
		char name[256];

		if (len <= 4 || strcmp(e->d_name + len - 4, ".hex") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 4), e->d_name);
		if (find_fixture(name) == NULL)
			fail_msg("%s/%s is not described in test_fixtures.c", FIXTURE_DIR,
				 e->d_name);
		seen++;
	}
	closedir(dir);
	assert_int_equal(seen, FIXTURE_COUNT);
}

/* A closer look at the header fields PyKMIP wrote into a few requests. */
static void request_headers_parse(void **state)
{
	struct buf data = BUF_INIT;
	struct arena arena;
	struct ttlv_item *root;
	struct ttlv_error err;
	struct kmip_request req;
	struct kmip_message_error merr;

	(void)state;
	arena_init(&arena, 4096, 0);

	load("query_request", &data);
	assert_int_equal(ttlv_decode(data.data, data.len, NULL, &arena, &root, &err), 0);
	assert_int_equal(kmip_request_parse(root, &arena, &req, &merr), 0);
	assert_true(req.header.has_max_response_size);
	assert_int_equal(req.header.max_response_size, 65536);
	assert_true(req.header.has_credential);
	assert_int_equal(req.header.credential.type, KMIP_CREDENTIAL_USERNAME_AND_PASSWORD);
	assert_int_equal(req.header.credential.username.len, 7);
	assert_memory_equal(req.header.credential.username.data, "vcenter", 7);
	assert_true(req.header.credential.has_password);
	assert_int_equal(req.header.credential.password.len, 12);
	assert_memory_equal(req.header.credential.password.data, "not-a-secret", 12);
	assert_false(req.header.has_time_stamp);
	assert_int_equal(req.header.batch_error_option, KMIP_BATCH_ERROR_STOP);
	assert_true(req.header.batch_order);
	assert_false(req.items[0].has_batch_id);
	buf_clear(&data);
	arena_reset(&arena);

	load("batch_request", &data);
	assert_int_equal(ttlv_decode(data.data, data.len, NULL, &arena, &root, &err), 0);
	assert_int_equal(kmip_request_parse(root, &arena, &req, &merr), 0);
	assert_false(req.header.has_credential);
	assert_false(req.header.has_max_response_size);
	assert_true(req.header.has_time_stamp);
	assert_int_equal(req.header.time_stamp, TIME_STAMP);
	assert_int_equal(req.header.batch_error_option, KMIP_BATCH_ERROR_STOP);
	assert_true(req.header.batch_order);
	assert_int_equal(req.count, 2);
	for (size_t i = 0; i < 2; i++) {
		const uint8_t id[2] = {0x00, (uint8_t)(i + 1)};

		assert_true(req.items[i].has_batch_id);
		assert_int_equal(req.items[i].batch_id.len, 2);
		assert_memory_equal(req.items[i].batch_id.data, id, 2);
	}

	arena_free(&arena);
	buf_free(&data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_fixture_round_trips),
		cmocka_unit_test(directory_matches_the_table),
		cmocka_unit_test(request_headers_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
