/* libFuzzer target for the KMIP message layer: every input goes through kmip_process() as
 * a request, and whatever response comes back must be valid TTLV, a Response Message, and
 * count its batch items right. Every Attribute structure found anywhere in a decodable
 * input is also run through kmip_attr_parse() for each protocol version and value rule. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kmipd/arena.h"
#include "kmipd/attr.h"
#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/exchange.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/ttlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

/* A fixed request time, so that every run of an input behaves the same. */
#define NOW INT64_C(1700000000)

static void check_response(const uint8_t *data, size_t size)
{
	struct ttlv_limits limits = {.max_message = size, .max_depth = TTLV_MAX_DEPTH};
	const struct ttlv_item *header, *count;
	struct ttlv_item *root;
	struct ttlv_error err;
	struct arena arena;
	size_t need, total;
	int32_t items = 0;

	/* A server must never emit invalid TTLV. */
	arena_init(&arena, 4096, 0);
	CHECK(ttlv_decode(data, size, &limits, &arena, &root, &err) == 0);
	CHECK(root->tag == KMIP_TAG_RESPONSE_MESSAGE && root->type == TTLV_STRUCTURE);
	CHECK(ttlv_frame_need(data, size, size, &need, &total, &err) == 0);
	CHECK(need == 0 && total == size);

	/* A Response Header first, whose Batch Count counts the Batch Items that follow. */
	header = root->v.children.first;
	CHECK(header != NULL && header->tag == KMIP_TAG_RESPONSE_HEADER &&
	      header->type == TTLV_STRUCTURE);
	count = ttlv_child(header, KMIP_TAG_BATCH_COUNT);
	CHECK(count != NULL && count->type == TTLV_INTEGER);
	for (const struct ttlv_item *c = header->next; c != NULL; c = c->next) {
		CHECK(c->tag == KMIP_TAG_BATCH_ITEM && c->type == TTLV_STRUCTURE);
		CHECK(ttlv_child(c, KMIP_TAG_RESULT_STATUS) != NULL);
		items++;
	}
	CHECK(items >= 1 && count->v.integer == items);
	arena_free(&arena);
}

static const unsigned versions[] = {
	KMIP_V1_0, KMIP_V1_1, KMIP_V1_2, KMIP_V1_3, KMIP_V1_4, 0, KMIP_VERSION(2, 0),
};

static const enum kmip_attr_value_rule rules[] = {
	KMIP_ATTR_VALUE_REQUIRED,
	KMIP_ATTR_VALUE_OPTIONAL,
	KMIP_ATTR_VALUE_ABSENT,
};

/* An attribute that parsed is written back with kmip_attr_put() and must parse again the
 * same way. */
static void check_rewrite(const struct kmip_attr *a, unsigned version,
			  enum kmip_attr_value_rule rule)
{
	struct buf out = BUF_INIT;
	struct ttlv_writer w;
	struct arena arena;
	struct ttlv_item *root;
	struct kmip_attr again;
	struct kmip_attr_problem problem;

	ttlv_writer_init(&w, &out);
	kmip_attr_put(&w, (const char *)a->name.data, a->name.len, a->index, a->has_index,
		      a->value);
	CHECK(ttlv_writer_finish(&w) == 0);

	arena_init(&arena, 4096, 0);
	CHECK(ttlv_decode(out.data, out.len, &(struct ttlv_limits){0, TTLV_MAX_DEPTH}, &arena,
			  &root, NULL) == 0);
	CHECK(kmip_attr_parse(root, version, rule, &again, &problem) == 0);
	CHECK(again.kind == a->kind && again.def == a->def && again.has_index == a->has_index &&
	      again.index == a->index && (again.value == NULL) == (a->value == NULL));
	arena_free(&arena);
	buf_free(&out);
}

static void check_attribute(const struct ttlv_item *item)
{
	for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
		for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
			struct kmip_attr a;
			struct kmip_attr_problem problem;
			int rv = kmip_attr_parse(item, versions[v], rules[r], &a, &problem);

			if (rv != 0) {
				CHECK(rv == KMIPD_EINVAL && problem.reason != 0);
				CHECK(memchr(problem.message, '\0', sizeof(problem.message)));
				continue;
			}
			CHECK(a.kind != KMIP_ATTR_UNKNOWN);
			CHECK((a.kind == KMIP_ATTR_STANDARD) == (a.def != NULL));
			check_rewrite(&a, versions[v], rules[r]);
		}
	}
}

static void walk(const struct ttlv_item *item)
{
	if (item->tag == KMIP_TAG_ATTRIBUTE)
		check_attribute(item);
	if (item->type == TTLV_STRUCTURE)
		for (const struct ttlv_item *c = item->v.children.first; c != NULL; c = c->next)
			walk(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kmip_server_identity identity = {"kmipd fuzz"};
	const struct kmip_exchange_config config = {.identity = &identity};
	struct buf out = BUF_INIT;
	struct arena arena;
	struct ttlv_item *root;
	int rv;

	rv = kmip_process(&config, data, size, NOW, &out);
	if (rv == 0) {
		CHECK(out.len > 0);
		check_response(out.data, out.len);
	} else {
		/* No operation goes pending here; the only failure is "no response at all". */
		CHECK(rv == KMIPD_EMALFORMED && out.len == 0);
	}
	buf_free(&out);

	arena_init(&arena, 4096, 0);
	if (ttlv_decode(data, size, &(struct ttlv_limits){0, TTLV_MAX_DEPTH}, &arena, &root,
			NULL) == 0)
		walk(root);
	arena_free(&arena);
	return 0;
}
