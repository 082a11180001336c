/* The message layer end to end: requests built with the TTLV writer go through
 * kmip_process(), and the responses are decoded and checked field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kmipd/error.h"
#include "kmipd/exchange.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/message.h"

#define NOW 1700000000

/* Per-test state: the request being written, the response and its decoded tree. */
struct fixture {
	struct buf req;
	struct ttlv_writer w;
	struct buf resp;
	struct arena arena;
	struct ttlv_item *root;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	ttlv_writer_init(&f->w, &f->req);
	arena_init(&f->arena, 4096, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	buf_free(&f->req);
	buf_free(&f->resp);
	arena_free(&f->arena);
	free(f);
	return 0;
}

/* A small vocabulary for writing requests. */
#define BEGIN(tag)	 ttlv_begin(&f->w, KMIP_TAG_##tag)
#define END()		 ttlv_end(&f->w)
#define INT(tag, v)	 ttlv_put_integer(&f->w, KMIP_TAG_##tag, v)
#define ENUM(tag, v)	 ttlv_put_enum(&f->w, KMIP_TAG_##tag, v)
#define BOOL(tag, v)	 ttlv_put_bool(&f->w, KMIP_TAG_##tag, v)
#define TEXT(tag, s)	 ttlv_put_cstr(&f->w, KMIP_TAG_##tag, s)
#define BYTES(tag, p, n) ttlv_put_bytes(&f->w, KMIP_TAG_##tag, p, n)

static void version(struct fixture *f, int major, int minor)
{
	BEGIN(PROTOCOL_VERSION);
	INT(PROTOCOL_VERSION_MAJOR, major);
	INT(PROTOCOL_VERSION_MINOR, minor);
	END();
}

/* Opens a Request Message with a header of @ver and @count items; @extra adds fields. */
static void request(struct fixture *f, int major, int minor, int count,
		    void (*extra)(struct fixture *))
{
	BEGIN(REQUEST_MESSAGE);
	BEGIN(REQUEST_HEADER);
	version(f, major, minor);
	if (extra != NULL)
		extra(f);
	INT(BATCH_COUNT, count);
	END();
}

/* A batch item with @op, optional 8-byte batch id @id, and an empty payload. */
static void item(struct fixture *f, uint32_t op, const char *id)
{
	BEGIN(BATCH_ITEM);
	ENUM(OPERATION, op);
	if (id != NULL)
		BYTES(UNIQUE_BATCH_ITEM_ID, id, 8);
	BEGIN(REQUEST_PAYLOAD);
	END();
	END();
}

static void query_item(struct fixture *f, uint32_t function)
{
	BEGIN(BATCH_ITEM);
	ENUM(OPERATION, KMIP_OP_QUERY);
	BEGIN(REQUEST_PAYLOAD);
	ENUM(QUERY_FUNCTION, function);
	END();
	END();
}

/* Finishes the request, runs it, decodes the response. */
static void run(struct fixture *f)
{
	struct kmip_server_identity id = {"kmipd unit"};
	struct kmip_exchange_config config = {.identity = &id};
	struct ttlv_error err;

	END();
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	assert_int_equal(kmip_process(&config, f->req.data, f->req.len, NOW, &f->resp), 0);
	assert_int_equal(ttlv_decode(f->resp.data, f->resp.len, NULL, &f->arena, &f->root, &err),
			 0);
	assert_int_equal(f->root->tag, KMIP_TAG_RESPONSE_MESSAGE);
}

static const struct ttlv_item *header(struct fixture *f)
{
	return ttlv_child(f->root, KMIP_TAG_RESPONSE_HEADER);
}

static unsigned response_version(struct fixture *f)
{
	const struct ttlv_item *pv = ttlv_child(header(f), KMIP_TAG_PROTOCOL_VERSION);

	return KMIP_VERSION((unsigned)ttlv_child(pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR)->v.integer,
			    (unsigned)ttlv_child(pv, KMIP_TAG_PROTOCOL_VERSION_MINOR)->v.integer);
}

static int batch_count(struct fixture *f)
{
	return ttlv_child(header(f), KMIP_TAG_BATCH_COUNT)->v.integer;
}

/* The @n-th (from 0) Batch Item of the response. */
static const struct ttlv_item *result(struct fixture *f, int n)
{
	const struct ttlv_item *b = ttlv_child(f->root, KMIP_TAG_BATCH_ITEM);

	while (b != NULL && n-- > 0)
		b = ttlv_next_same(b);
	assert_non_null(b);
	return b;
}

static uint32_t status(const struct ttlv_item *b)
{
	return ttlv_child(b, KMIP_TAG_RESULT_STATUS)->v.enumeration;
}

static uint32_t reason(const struct ttlv_item *b)
{
	const struct ttlv_item *r = ttlv_child(b, KMIP_TAG_RESULT_REASON);

	return r ? r->v.enumeration : 0;
}

/* True if the Result Message of @b contains @text. */
static bool message_has(const struct ttlv_item *b, const char *text)
{
	const struct ttlv_item *m = ttlv_child(b, KMIP_TAG_RESULT_MESSAGE);

	return m != NULL && memmem(m->v.bytes, m->length, text, strlen(text)) != NULL;
}

static const struct ttlv_item *payload(const struct ttlv_item *b)
{
	return ttlv_child(b, KMIP_TAG_RESPONSE_PAYLOAD);
}

/* Versions listed in a Discover Versions payload, packed, into @out; returns the count. */
static size_t listed_versions(const struct ttlv_item *p, unsigned *out, size_t max)
{
	size_t n = 0;

	for (const struct ttlv_item *c = p->v.children.first; c && n < max; c = c->next)
		out[n++] = KMIP_VERSION(
			(unsigned)ttlv_child(c, KMIP_TAG_PROTOCOL_VERSION_MAJOR)->v.integer,
			(unsigned)ttlv_child(c, KMIP_TAG_PROTOCOL_VERSION_MINOR)->v.integer);
	return n;
}

/* vCenter's first request on every connection: Discover Versions, empty payload, 1.1. */
static void discover_versions_empty_lists_all_highest_first(void **state)
{
	struct fixture *f = *state;
	unsigned v[8];

	request(f, 1, 1, 1, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);

	assert_int_equal(response_version(f), KMIP_V1_1);
	assert_int_equal(batch_count(f), 1);
	assert_int_equal(status(result(f, 0)), KMIP_STATUS_SUCCESS);
	assert_int_equal(ttlv_child(result(f, 0), KMIP_TAG_OPERATION)->v.enumeration,
			 KMIP_OP_DISCOVER_VERSIONS);
	assert_null(ttlv_child(result(f, 0), KMIP_TAG_UNIQUE_BATCH_ITEM_ID));
	assert_int_equal(listed_versions(payload(result(f, 0)), v, 8), 5);
	assert_int_equal(v[0], KMIP_V1_4);
	assert_int_equal(v[1], KMIP_V1_3);
	assert_int_equal(v[2], KMIP_V1_2);
	assert_int_equal(v[3], KMIP_V1_1);
	assert_int_equal(v[4], KMIP_V1_0);
	/* The Time Stamp is the request's time. */
	assert_int_equal(ttlv_child(header(f), KMIP_TAG_TIME_STAMP)->v.date_time, NOW);
}

static void discover_versions_keeps_only_what_the_client_listed(void **state)
{
	struct fixture *f = *state;
	unsigned v[8];

	request(f, 1, 2, 1, NULL);
	BEGIN(BATCH_ITEM);
	ENUM(OPERATION, KMIP_OP_DISCOVER_VERSIONS);
	BEGIN(REQUEST_PAYLOAD);
	version(f, 2, 0);
	version(f, 1, 1);
	version(f, 1, 2);
	END();
	END();
	run(f);

	assert_int_equal(listed_versions(payload(result(f, 0)), v, 8), 2);
	assert_int_equal(v[0], KMIP_V1_2); /* the server's order, not the client's */
	assert_int_equal(v[1], KMIP_V1_1);
}

static void discover_versions_does_not_exist_in_1_0(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 0, 1, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);

	assert_int_equal(status(result(f, 0)), KMIP_STATUS_OPERATION_FAILED);
	assert_int_equal(reason(result(f, 0)), KMIP_REASON_OPERATION_NOT_SUPPORTED);
	assert_true(message_has(result(f, 0), "needs KMIP 1.1"));
	assert_null(payload(result(f, 0)));
}

static void query_server_information_names_the_vendor(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p;

	request(f, 1, 1, 1, NULL);
	query_item(f, KMIP_QUERY_SERVER_INFORMATION);
	run(f);

	p = payload(result(f, 0));
	assert_true(ttlv_text_equals(ttlv_child(p, KMIP_TAG_VENDOR_IDENTIFICATION), "kmipd unit"));
	assert_null(ttlv_child(p, KMIP_TAG_OPERATION));
}

static void query_operations_lists_the_table_for_the_version(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p;
	bool saw_query = false, saw_discover = false;

	request(f, 1, 0, 1, NULL);
	query_item(f, KMIP_QUERY_OPERATIONS);
	run(f);

	p = payload(result(f, 0));
	for (const struct ttlv_item *c = ttlv_child(p, KMIP_TAG_OPERATION); c;
	     c = ttlv_next_same(c)) {
		saw_query |= c->v.enumeration == KMIP_OP_QUERY;
		saw_discover |= c->v.enumeration == KMIP_OP_DISCOVER_VERSIONS;
	}
	assert_true(saw_query);
	assert_false(saw_discover); /* a 1.1 operation is not offered to a 1.0 client */
}

static void query_without_functions_is_missing_data(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 1, NULL);
	item(f, KMIP_OP_QUERY, NULL);
	run(f);

	assert_int_equal(reason(result(f, 0)), KMIP_REASON_MISSING_DATA);
}

/* vCenter numbers its items "QLKC" + a little-endian counter; every one comes back. */
static void batch_item_ids_are_echoed(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *id;

	request(f, 1, 1, 3, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, "QLKC\x01\x00\x00\x00");
	query_item(f, KMIP_QUERY_SERVER_INFORMATION);
	item(f, KMIP_OP_DISCOVER_VERSIONS, "QLKC\x03\x00\x00\x00");
	run(f);

	assert_int_equal(batch_count(f), 3);
	id = ttlv_child(result(f, 0), KMIP_TAG_UNIQUE_BATCH_ITEM_ID);
	assert_int_equal(id->length, 8);
	assert_memory_equal(id->v.bytes, "QLKC\x01\x00\x00\x00", 8);
	assert_null(ttlv_child(result(f, 1), KMIP_TAG_UNIQUE_BATCH_ITEM_ID));
	id = ttlv_child(result(f, 2), KMIP_TAG_UNIQUE_BATCH_ITEM_ID);
	assert_memory_equal(id->v.bytes, "QLKC\x03\x00\x00\x00", 8);
}

static void unknown_operation_fails_that_item(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 1, NULL);
	item(f, 0x77, "ABCDEFGH");
	run(f);

	assert_int_equal(status(result(f, 0)), KMIP_STATUS_OPERATION_FAILED);
	assert_int_equal(reason(result(f, 0)), KMIP_REASON_OPERATION_NOT_SUPPORTED);
	assert_true(message_has(result(f, 0), "0x00000077"));
	assert_int_equal(ttlv_child(result(f, 0), KMIP_TAG_OPERATION)->v.enumeration, 0x77);
	assert_memory_equal(ttlv_child(result(f, 0), KMIP_TAG_UNIQUE_BATCH_ITEM_ID)->v.bytes,
			    "ABCDEFGH", 8);
}

static void continue_option(struct fixture *f)
{
	ENUM(BATCH_ERROR_CONTINUATION_OPTION, KMIP_BATCH_ERROR_CONTINUE);
}

static void undo_option(struct fixture *f)
{
	ENUM(BATCH_ERROR_CONTINUATION_OPTION, KMIP_BATCH_ERROR_UNDO);
}

static void continue_runs_every_item(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 3, continue_option);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	item(f, 0x77, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);

	assert_int_equal(batch_count(f), 3);
	assert_int_equal(status(result(f, 0)), KMIP_STATUS_SUCCESS);
	assert_int_equal(status(result(f, 1)), KMIP_STATUS_OPERATION_FAILED);
	assert_int_equal(status(result(f, 2)), KMIP_STATUS_SUCCESS);
}

/* Stop is the default: nothing after the first failure runs or is answered. */
static void stop_ends_the_batch_at_the_first_failure(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 3, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	item(f, 0x77, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);

	assert_int_equal(batch_count(f), 2);
	assert_int_equal(status(result(f, 0)), KMIP_STATUS_SUCCESS);
	assert_int_equal(status(result(f, 1)), KMIP_STATUS_OPERATION_FAILED);
	assert_null(ttlv_next_same(result(f, 1)));
}

static void undo_is_refused_before_anything_runs(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 2, undo_option);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);

	assert_int_equal(reason(result(f, 0)), KMIP_REASON_FEATURE_NOT_SUPPORTED);
	assert_true(message_has(result(f, 0), "Undo"));
	assert_null(payload(result(f, 0)));
}

static void small_max_size(struct fixture *f)
{
	INT(MAXIMUM_RESPONSE_SIZE, 64);
}

static void response_too_large_replaces_payloads(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 1, small_max_size);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);

	assert_int_equal(status(result(f, 0)), KMIP_STATUS_OPERATION_FAILED);
	assert_int_equal(reason(result(f, 0)), KMIP_REASON_RESPONSE_TOO_LARGE);
	assert_null(payload(result(f, 0)));
}

static void large_enough_max_size(struct fixture *f)
{
	INT(MAXIMUM_RESPONSE_SIZE, 4096);
}

static void max_size_that_fits_changes_nothing(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 1, large_enough_max_size);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);

	assert_int_equal(status(result(f, 0)), KMIP_STATUS_SUCCESS);
	assert_true(f->resp.len <= 4096);
}

/* A 2.0 client can still negotiate: Discover Versions works, the rest says why not. */
static void unsupported_version_answers_in_a_supported_one(void **state)
{
	struct fixture *f = *state;

	request(f, 2, 0, 2, continue_option);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	query_item(f, KMIP_QUERY_SERVER_INFORMATION);
	run(f);

	assert_int_equal(response_version(f), KMIP_V1_4);
	assert_int_equal(status(result(f, 0)), KMIP_STATUS_SUCCESS);
	assert_int_equal(reason(result(f, 1)), KMIP_REASON_INVALID_MESSAGE);
	assert_true(message_has(result(f, 1), "2.0 is not supported"));
}

static void credential(struct fixture *f)
{
	BEGIN(AUTHENTICATION);
	BEGIN(CREDENTIAL);
	ENUM(CREDENTIAL_TYPE, KMIP_CREDENTIAL_USERNAME_AND_PASSWORD);
	BEGIN(CREDENTIAL_VALUE);
	TEXT(USERNAME, "vcenter");
	TEXT(PASSWORD, "s3cret");
	END();
	END();
	END();
}

static void every_header_field(struct fixture *f)
{
	INT(MAXIMUM_RESPONSE_SIZE, 100000);
	credential(f);
	BOOL(ASYNCHRONOUS_INDICATOR, false);
	ENUM(BATCH_ERROR_CONTINUATION_OPTION, KMIP_BATCH_ERROR_CONTINUE);
	BOOL(BATCH_ORDER_OPTION, false);
	ttlv_put_datetime(&f->w, KMIP_TAG_TIME_STAMP, 1234);
}

static void header_fields_are_parsed(void **state)
{
	struct fixture *f = *state;
	struct kmip_request req;
	struct kmip_message_error err;
	struct ttlv_item *root;
	struct ttlv_error terr;

	request(f, 1, 4, 1, every_header_field);
	item(f, KMIP_OP_QUERY, "12345678");
	END();
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	assert_int_equal(ttlv_decode(f->req.data, f->req.len, NULL, &f->arena, &root, &terr), 0);
	assert_int_equal(kmip_request_parse(root, &f->arena, &req, &err), 0);

	assert_int_equal(req.header.version, KMIP_V1_4);
	assert_true(req.header.has_max_response_size);
	assert_int_equal(req.header.max_response_size, 100000);
	assert_true(req.header.has_credential);
	assert_int_equal(req.header.credential.type, KMIP_CREDENTIAL_USERNAME_AND_PASSWORD);
	assert_int_equal(req.header.credential.username.len, 7);
	assert_memory_equal(req.header.credential.username.data, "vcenter", 7);
	assert_true(req.header.credential.has_password);
	assert_memory_equal(req.header.credential.password.data, "s3cret", 6);
	assert_int_equal(req.header.batch_error_option, KMIP_BATCH_ERROR_CONTINUE);
	assert_false(req.header.batch_order);
	assert_true(req.header.has_time_stamp);
	assert_int_equal(req.header.time_stamp, 1234);
	assert_int_equal(req.count, 1);
	assert_int_equal(req.items[0].operation, KMIP_OP_QUERY);
	assert_true(req.items[0].has_batch_id);
	assert_non_null(req.items[0].payload);
	assert_int_equal(req.items[0].error_reason, 0);
}

/* Messages that cannot be used as a whole get one failed item, in the client's version. */
static void expect_invalid_message(struct fixture *f, unsigned version, const char *text)
{
	assert_int_equal(response_version(f), version);
	assert_int_equal(batch_count(f), 1);
	assert_int_equal(status(result(f, 0)), KMIP_STATUS_OPERATION_FAILED);
	assert_int_equal(reason(result(f, 0)), KMIP_REASON_INVALID_MESSAGE);
	assert_true(message_has(result(f, 0), text));
	assert_null(ttlv_child(result(f, 0), KMIP_TAG_OPERATION));
}

static void batch_count_must_match(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 2, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);
	expect_invalid_message(f, KMIP_V1_1, "Batch Count says 2 but the message holds 1");
}

static void vendor_in_header(struct fixture *f)
{
	TEXT(VENDOR_IDENTIFICATION, "surprise");
}

static void unknown_header_field_is_named(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 3, 1, vendor_in_header);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);
	expect_invalid_message(f, KMIP_V1_3, "does not allow Vendor Identification");
}

static void item_without_operation_fails_alone(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 2, continue_option);
	BEGIN(BATCH_ITEM);
	BEGIN(REQUEST_PAYLOAD);
	END();
	END();
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	run(f);

	assert_int_equal(reason(result(f, 0)), KMIP_REASON_INVALID_MESSAGE);
	assert_true(message_has(result(f, 0), "no Operation"));
	assert_int_equal(status(result(f, 1)), KMIP_STATUS_SUCCESS);
}

static void critical_extension_is_not_supported(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1, 1, NULL);
	BEGIN(BATCH_ITEM);
	ENUM(OPERATION, KMIP_OP_DISCOVER_VERSIONS);
	BEGIN(REQUEST_PAYLOAD);
	END();
	BEGIN(MESSAGE_EXTENSION);
	TEXT(VENDOR_IDENTIFICATION, "acme");
	BOOL(CRITICALITY_INDICATOR, true);
	BEGIN(VENDOR_EXTENSION);
	END();
	END();
	END();
	run(f);

	assert_int_equal(reason(result(f, 0)), KMIP_REASON_FEATURE_NOT_SUPPORTED);
}

/* Broken TTLV after a readable header: Invalid Message in the header's version, naming
 * the offset. */
static void undecodable_message_with_readable_header(void **state)
{
	struct fixture *f = *state;
	struct kmip_exchange_config config = {0};
	struct ttlv_error err;

	request(f, 1, 2, 1, NULL);
	item(f, KMIP_OP_DISCOVER_VERSIONS, NULL);
	END();
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	f->req.data[f->req.len - 5] = 0x0B; /* the Request Payload's type: no such type */

	assert_int_equal(kmip_process(&config, f->req.data, f->req.len, NOW, &f->resp), 0);
	assert_int_equal(ttlv_decode(f->resp.data, f->resp.len, NULL, &f->arena, &f->root, &err),
			 0);
	expect_invalid_message(f, KMIP_V1_2, "not valid TTLV");
}

static void garbage_gets_no_response(void **state)
{
	struct fixture *f = *state;
	struct kmip_exchange_config config = {0};
	static const uint8_t garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	assert_int_equal(kmip_process(&config, garbage, sizeof(garbage) - 1, NOW, &f->resp),
			 KMIPD_EMALFORMED);
	assert_int_equal(f->resp.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(discover_versions_empty_lists_all_highest_first),
		T(discover_versions_keeps_only_what_the_client_listed),
		T(discover_versions_does_not_exist_in_1_0),
		T(query_server_information_names_the_vendor),
		T(query_operations_lists_the_table_for_the_version),
		T(query_without_functions_is_missing_data),
		T(batch_item_ids_are_echoed),
		T(unknown_operation_fails_that_item),
		T(continue_runs_every_item),
		T(stop_ends_the_batch_at_the_first_failure),
		T(undo_is_refused_before_anything_runs),
		T(response_too_large_replaces_payloads),
		T(max_size_that_fits_changes_nothing),
		T(unsupported_version_answers_in_a_supported_one),
		T(header_fields_are_parsed),
		T(batch_count_must_match),
		T(unknown_header_field_is_named),
		T(item_without_operation_fails_alone),
		T(critical_extension_is_not_supported),
		T(undecodable_message_with_readable_header),
		T(garbage_gets_no_response),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
