/* Benchmark of the TTLV codec and the KMIP message layer on two realistic messages: the
 * Create request vCenter sends for a new AES-256 key, and the Get response that returns
 * it. For each message it times decode, encode, decode+encode and (request only)
 * decode+kmip_request_parse, and prints one line per figure. See bench/README.md.
 *
 * The benchmark checks its own work: the messages are checked against their known size
 * and layout, the decoded trees field by field, and after every timed batch the result of
 * the last iteration (round trips must reproduce the input byte for byte). Any failure
 * exits with status 1, so a broken codec cannot produce a figure. */
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/message.h"
#include "kmipd/ttlv.h"

#define REPS		21
#define QUICK_REPS	3
#define MIN_BATCH_NS	20000000.0 /* a batch is calibrated to take 20–50 ms ... */
#define TARGET_BATCH_NS 30000000.0 /* ... aiming at 30 ms */
#define QUICK_MIN_NS	2000000.0
#define QUICK_TARGET_NS 3000000.0

/* Kept out of line so that callgrind reports each step's cost under its own name. */
#define NOINLINE __attribute__((noinline))

/* What the messages carry. */
#define KEY_ID	    "1f0e6a53-9c2b-4d87-b5a4-3e6f0c9d8a21" /* 36 characters, as vCenter's */
#define VENDOR_TEXT "VMware, Inc."
#define TIME_STAMP  1700000000
static const uint8_t key_material[32] = {
	0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae,
	0xf0, 0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61,
	0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
};
static_assert(sizeof(KEY_ID) - 1 == 36, "a UUID in text is 36 characters");

/* Sizes worked out by hand from the layouts below (header 8 bytes, values padded to 8),
 * so that the writer is checked against something other than the decoder. */
#define CREATE_REQUEST_SIZE  440
#define CREATE_REQUEST_ITEMS 28
#define GET_RESPONSE_SIZE    312
#define GET_RESPONSE_ITEMS   20

/* One message under test and everything its figures work with. */
struct bench {
	const char *name;
	bool is_request;
	struct buf wire;	 /* the message as the writer built it */
	size_t items;		 /* expected number of items in the decoded tree */
	struct arena arena;	 /* per-iteration decode arena, reset every iteration */
	struct ttlv_item *root;	 /* the tree of the last decode */
	struct arena tree_arena; /* holds @tree, which the encode figure re-encodes */
	struct ttlv_item *tree;
	struct buf out; /* encode output, cleared every iteration */
	struct ttlv_error terr;
	struct kmip_request req;
	struct kmip_message_error merr;
	size_t arena_decode; /* arena bytes one decode uses */
	size_t arena_parse;  /* ... and one decode + parse */
};

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_codec: FAILED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Building the messages. */

static void put_version(struct ttlv_writer *w, int major, int minor)
{
	ttlv_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_put_integer(w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, major);
	ttlv_put_integer(w, KMIP_TAG_PROTOCOL_VERSION_MINOR, minor);
	ttlv_end(w);
}

static void attr_begin(struct ttlv_writer *w, const char *name)
{
	ttlv_begin(w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_cstr(w, KMIP_TAG_ATTRIBUTE_NAME, name);
}

/* A KMIP 1.1 Create request for an AES-256 key, as vCenter sends it (no Authentication:
 * the client is identified by its TLS certificate). */
static void build_create_request(struct buf *out)
{
	struct ttlv_writer w;
	int rv;

	ttlv_writer_init(&w, out);
	ttlv_begin(&w, KMIP_TAG_REQUEST_MESSAGE);
	ttlv_begin(&w, KMIP_TAG_REQUEST_HEADER);
	put_version(&w, 1, 1);
	ttlv_put_integer(&w, KMIP_TAG_BATCH_COUNT, 1);
	ttlv_end(&w);
	ttlv_begin(&w, KMIP_TAG_BATCH_ITEM);
	ttlv_put_enum(&w, KMIP_TAG_OPERATION, KMIP_OP_CREATE);
	ttlv_begin(&w, KMIP_TAG_REQUEST_PAYLOAD);
	ttlv_put_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	ttlv_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);

	attr_begin(&w, "Cryptographic Algorithm");
	ttlv_put_enum(&w, KMIP_TAG_ATTRIBUTE_VALUE, KMIP_ALG_AES);
	ttlv_end(&w);
	attr_begin(&w, "Cryptographic Length");
	ttlv_put_integer(&w, KMIP_TAG_ATTRIBUTE_VALUE, 256);
	ttlv_end(&w);
	attr_begin(&w, "Cryptographic Usage Mask");
	ttlv_put_integer(&w, KMIP_TAG_ATTRIBUTE_VALUE,
			 (int32_t)(KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT));
	ttlv_end(&w);
	attr_begin(&w, "Name");
	ttlv_begin(&w, KMIP_TAG_ATTRIBUTE_VALUE);
	ttlv_put_cstr(&w, KMIP_TAG_NAME_VALUE, KEY_ID);
	ttlv_put_enum(&w, KMIP_TAG_NAME_TYPE, KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);
	ttlv_end(&w);
	ttlv_end(&w);
	attr_begin(&w, "x-Vendor");
	ttlv_put_cstr(&w, KMIP_TAG_ATTRIBUTE_VALUE, VENDOR_TEXT);
	ttlv_end(&w);

	ttlv_end(&w); /* Template-Attribute */
	ttlv_end(&w); /* Request Payload */
	ttlv_end(&w); /* Batch Item */
	ttlv_end(&w); /* Request Message */
	rv = ttlv_writer_finish(&w);
	if (rv != 0)
		die("writing the Create request: %s", kmipd_strerror(rv));
}

/* The Get response that returns a 256-bit AES key in Raw format. */
static void build_get_response(struct buf *out)
{
	struct ttlv_writer w;
	int rv;

	ttlv_writer_init(&w, out);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_MESSAGE);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_HEADER);
	put_version(&w, 1, 1);
	ttlv_put_datetime(&w, KMIP_TAG_TIME_STAMP, TIME_STAMP);
	ttlv_put_integer(&w, KMIP_TAG_BATCH_COUNT, 1);
	ttlv_end(&w);
	ttlv_begin(&w, KMIP_TAG_BATCH_ITEM);
	ttlv_put_enum(&w, KMIP_TAG_OPERATION, KMIP_OP_GET);
	ttlv_put_enum(&w, KMIP_TAG_RESULT_STATUS, KMIP_STATUS_SUCCESS);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_PAYLOAD);
	ttlv_put_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	ttlv_put_cstr(&w, KMIP_TAG_UNIQUE_IDENTIFIER, KEY_ID);
	ttlv_begin(&w, KMIP_TAG_SYMMETRIC_KEY);
	ttlv_begin(&w, KMIP_TAG_KEY_BLOCK);
	ttlv_put_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW);
	ttlv_begin(&w, KMIP_TAG_KEY_VALUE);
	ttlv_put_bytes(&w, KMIP_TAG_KEY_MATERIAL, key_material, sizeof(key_material));
	ttlv_end(&w); /* Key Value */
	ttlv_put_enum(&w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
	ttlv_put_integer(&w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 256);
	ttlv_end(&w); /* Key Block */
	ttlv_end(&w); /* Symmetric Key */
	ttlv_end(&w); /* Response Payload */
	ttlv_end(&w); /* Batch Item */
	ttlv_end(&w); /* Response Message */
	rv = ttlv_writer_finish(&w);
	if (rv != 0)
		die("writing the Get response: %s", kmipd_strerror(rv));
}

/* Checking. */

static size_t count_items(const struct ttlv_item *item)
{
	size_t n = 1;

	if (item->type == TTLV_STRUCTURE)
		for (const struct ttlv_item *c = item->v.children.first; c != NULL; c = c->next)
			n += count_items(c);
	return n;
}

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The first child of @parent with @tag and @type, or death. */
static const struct ttlv_item *need(const struct ttlv_item *parent, uint32_t tag,
				    enum ttlv_type type)
{
	const struct ttlv_item *c = ttlv_child(parent, tag);

	if (c == NULL || c->type != type)
		die("decoded tree: no %s (%s) under %s", kmip_tag_name(tag), ttlv_type_name(type),
		    parent ? kmip_tag_name(parent->tag) : "(nothing)");
	return c;
}

static void need_enum(const struct ttlv_item *parent, uint32_t tag, uint32_t value)
{
	const struct ttlv_item *c = need(parent, tag, TTLV_ENUMERATION);

	if (c->v.enumeration != value)
		die("decoded tree: %s is %u, not %u", kmip_tag_name(tag), c->v.enumeration, value);
}

static void need_integer(const struct ttlv_item *parent, uint32_t tag, int32_t value)
{
	const struct ttlv_item *c = need(parent, tag, TTLV_INTEGER);

	if (c->v.integer != value)
		die("decoded tree: %s is %d, not %d", kmip_tag_name(tag), c->v.integer, value);
}

static void need_text(const struct ttlv_item *parent, uint32_t tag, const char *text)
{
	if (!ttlv_text_equals(need(parent, tag, TTLV_TEXT_STRING), text))
		die("decoded tree: %s is not \"%s\"", kmip_tag_name(tag), text);
}

static void need_version(const struct ttlv_item *header)
{
	const struct ttlv_item *pv = need(header, KMIP_TAG_PROTOCOL_VERSION, TTLV_STRUCTURE);

	need_integer(pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	need_integer(pv, KMIP_TAG_PROTOCOL_VERSION_MINOR, 1);
	need_integer(header, KMIP_TAG_BATCH_COUNT, 1);
}

/* The Create request's tree, field by field. */
static void check_request_tree(const struct ttlv_item *root)
{
	const struct ttlv_item *item, *payload, *ta, *a, *value;
	int seen = 0;

	if (root->tag != KMIP_TAG_REQUEST_MESSAGE)
		die("decoded tree: the root is not a Request Message");
	need_version(need(root, KMIP_TAG_REQUEST_HEADER, TTLV_STRUCTURE));
	item = need(root, KMIP_TAG_BATCH_ITEM, TTLV_STRUCTURE);
	need_enum(item, KMIP_TAG_OPERATION, KMIP_OP_CREATE);
	payload = need(item, KMIP_TAG_REQUEST_PAYLOAD, TTLV_STRUCTURE);
	need_enum(payload, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	ta = need(payload, KMIP_TAG_TEMPLATE_ATTRIBUTE, TTLV_STRUCTURE);
	if (ta->v.children.count != 5)
		die("decoded tree: %u attributes, not 5", ta->v.children.count);
	for (a = ttlv_child(ta, KMIP_TAG_ATTRIBUTE); a != NULL; a = ttlv_next_same(a)) {
		const struct ttlv_item *name = need(a, KMIP_TAG_ATTRIBUTE_NAME, TTLV_TEXT_STRING);

		if (ttlv_text_equals(name, "Cryptographic Algorithm")) {
			need_enum(a, KMIP_TAG_ATTRIBUTE_VALUE, KMIP_ALG_AES);
		} else if (ttlv_text_equals(name, "Cryptographic Length")) {
			need_integer(a, KMIP_TAG_ATTRIBUTE_VALUE, 256);
		} else if (ttlv_text_equals(name, "Cryptographic Usage Mask")) {
			need_integer(a, KMIP_TAG_ATTRIBUTE_VALUE, 12);
		} else if (ttlv_text_equals(name, "Name")) {
			value = need(a, KMIP_TAG_ATTRIBUTE_VALUE, TTLV_STRUCTURE);
			need_text(value, KMIP_TAG_NAME_VALUE, KEY_ID);
			need_enum(value, KMIP_TAG_NAME_TYPE,
				  KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);
		} else if (ttlv_text_equals(name, "x-Vendor")) {
			need_text(a, KMIP_TAG_ATTRIBUTE_VALUE, VENDOR_TEXT);
		} else {
			die("decoded tree: unexpected attribute %.*s", (int)name->length,
			    (const char *)name->v.bytes);
		}
		seen++;
	}
	if (seen != 5)
		die("decoded tree: %d attributes found, not 5", seen);
}

/* The Get response's tree, field by field. */
static void check_response_tree(const struct ttlv_item *root)
{
	const struct ttlv_item *header, *item, *payload, *block, *material;

	if (root->tag != KMIP_TAG_RESPONSE_MESSAGE)
		die("decoded tree: the root is not a Response Message");
	header = need(root, KMIP_TAG_RESPONSE_HEADER, TTLV_STRUCTURE);
	need_version(header);
	if (need(header, KMIP_TAG_TIME_STAMP, TTLV_DATE_TIME)->v.date_time != TIME_STAMP)
		die("decoded tree: wrong Time Stamp");
	item = need(root, KMIP_TAG_BATCH_ITEM, TTLV_STRUCTURE);
	need_enum(item, KMIP_TAG_OPERATION, KMIP_OP_GET);
	need_enum(item, KMIP_TAG_RESULT_STATUS, KMIP_STATUS_SUCCESS);
	payload = need(item, KMIP_TAG_RESPONSE_PAYLOAD, TTLV_STRUCTURE);
	need_enum(payload, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	need_text(payload, KMIP_TAG_UNIQUE_IDENTIFIER, KEY_ID);
	block = need(need(payload, KMIP_TAG_SYMMETRIC_KEY, TTLV_STRUCTURE), KMIP_TAG_KEY_BLOCK,
		     TTLV_STRUCTURE);
	need_enum(block, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW);
	material = need(need(block, KMIP_TAG_KEY_VALUE, TTLV_STRUCTURE), KMIP_TAG_KEY_MATERIAL,
			TTLV_BYTE_STRING);
	if (material->length != sizeof(key_material) ||
	    memcmp(material->v.bytes, key_material, sizeof(key_material)) != 0)
		die("decoded tree: wrong Key Material");
	need_enum(block, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
	need_integer(block, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 256);
}

/* The message as built: its size and outermost headers, worked out by hand. */
static void check_wire(const struct bench *b, size_t size, uint32_t root_tag, uint32_t first_tag)
{
	const uint8_t *p = b->wire.data;

	if (b->wire.len != size)
		die("%s: built %zu bytes, expected %zu", b->name, b->wire.len, size);
	if ((load_be32(p) >> 8) != root_tag || p[3] != TTLV_STRUCTURE ||
	    load_be32(p + 4) != size - TTLV_HEADER_SIZE || (load_be32(p + 8) >> 8) != first_tag ||
	    p[11] != TTLV_STRUCTURE)
		die("%s: the encoded headers are not what TTLV requires", b->name);
}

/* The state after the last iteration of a figure; 0 if right. */
static int check_decode(struct bench *b)
{
	return b->root != NULL && b->root->length + TTLV_HEADER_SIZE == b->wire.len &&
			       b->root->v.children.count == 2 && count_items(b->root) == b->items
		       ? 0
		       : -1;
}

static int check_encode(struct bench *b)
{
	return b->out.len == b->wire.len && memcmp(b->out.data, b->wire.data, b->wire.len) == 0
		       ? 0
		       : -1;
}

static int check_round_trip(struct bench *b)
{
	return check_decode(b) == 0 && check_encode(b) == 0 ? 0 : -1;
}

static int check_parse(struct bench *b)
{
	const struct kmip_request *r = &b->req;

	if (check_decode(b) != 0 || r->count != 1 || r->header.version != KMIP_V1_1 ||
	    r->header.batch_count != 1 || r->header.has_credential)
		return -1;
	if (r->items[0].operation != KMIP_OP_CREATE || r->items[0].error_reason != 0 ||
	    r->items[0].payload == NULL ||
	    r->items[0].payload !=
		    ttlv_child(ttlv_child(b->root, KMIP_TAG_BATCH_ITEM), KMIP_TAG_REQUEST_PAYLOAD))
		return -1;
	return 0;
}

/* The timed steps: one iteration each. */

static NOINLINE int step_decode(struct bench *b)
{
	arena_reset(&b->arena);
	return ttlv_decode(b->wire.data, b->wire.len, NULL, &b->arena, &b->root, &b->terr);
}

static NOINLINE int step_encode(struct bench *b)
{
	buf_clear(&b->out);
	return ttlv_encode(b->tree, &b->out);
}

static NOINLINE int step_round_trip(struct bench *b)
{
	int rv;

	arena_reset(&b->arena);
	rv = ttlv_decode(b->wire.data, b->wire.len, NULL, &b->arena, &b->root, &b->terr);
	if (rv != 0)
		return rv;
	buf_clear(&b->out);
	return ttlv_encode(b->root, &b->out);
}

static NOINLINE int step_parse(struct bench *b)
{
	int rv;

	arena_reset(&b->arena);
	rv = ttlv_decode(b->wire.data, b->wire.len, NULL, &b->arena, &b->root, &b->terr);
	if (rv != 0)
		return rv;
	return kmip_request_parse(b->root, &b->arena, &b->req, &b->merr);
}

struct figure {
	const char *name;
	int (*step)(struct bench *b);
	int (*check)(struct bench *b);
	bool request_only;
};

static const struct figure figures[] = {
	{"decode", step_decode, check_decode, false},
	{"encode", step_encode, check_encode, false},
	{"decode+encode", step_round_trip, check_round_trip, false},
	{"decode+parse", step_parse, check_parse, true},
};

static double now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		die("clock_gettime(CLOCK_MONOTONIC) failed");
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Runs @n iterations of @f and returns the nanoseconds they took; dies if any iteration
 * failed or the last one left a wrong result. */
static double run_batch(struct bench *b, const struct figure *f, uint64_t n)
{
	double start, end;
	int bad = 0;

	/* Stale results must not pass the check. */
	b->root = NULL;
	memset(&b->req, 0, sizeof(b->req));
	if (f->step != step_encode)
		buf_clear(&b->out);

	start = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		int rv = f->step(b);

		if (rv != 0 && bad == 0)
			bad = rv;
	}
	end = now_ns();

	if (bad != 0)
		die("%s %s: an iteration failed (%s%s%s)", b->name, f->name, kmipd_strerror(bad),
		    b->terr.rule != TTLV_RULE_OK ? ": " : "", b->terr.message);
	if (f->check(b) != 0)
		die("%s %s: wrong result after %llu iteration(s)", b->name, f->name,
		    (unsigned long long)n);
	return end - start;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct options {
	bool quick;
	const char *only; /* run only figures whose "message figure" contains this */
};

static void measure(struct bench *b, const struct figure *f, const struct options *o)
{
	double min_ns = o->quick ? QUICK_MIN_NS : MIN_BATCH_NS;
	double target_ns = o->quick ? QUICK_TARGET_NS : TARGET_BATCH_NS;
	int reps = o->quick ? QUICK_REPS : REPS;
	double times[REPS], t, median;
	uint64_t n = 1;

	/* Calibration, which also warms caches and the allocator: grow the batch until it
	 * takes at least min_ns, then size it for target_ns. */
	for (;;) {
		t = run_batch(b, f, n);
		if (t >= min_ns)
			break;
		n *= t * 8 < min_ns ? 8 : 2;
	}
	n = (uint64_t)((double)n * target_ns / t);
	if (n == 0)
		n = 1;

	for (int r = 0; r < reps; r++)
		times[r] = run_batch(b, f, n);
	qsort(times, (size_t)reps, sizeof(times[0]), compare_double);
	median = times[reps / 2] / (double)n;
	printf("%-15s %-14s %6zu %9llu %10.1f %10.1f %10.1f %12.0f\n", b->name, f->name,
	       b->wire.len, (unsigned long long)n, median, times[0] / (double)n,
	       times[reps - 1] / (double)n, 1e9 / median);
	fflush(stdout);
}

/* Decodes once outside the timed loops: checks the tree field by field, keeps a copy for
 * the encode figure and records how much arena a decode (and a parse) takes. */
static void prepare(struct bench *b, void (*check_tree)(const struct ttlv_item *root))
{
	int rv;

	arena_init(&b->arena, 16 * 1024, 64 * 1024 * 1024); /* as kmip_exchange does */
	arena_init(&b->tree_arena, 16 * 1024, 0);
	rv = ttlv_decode(b->wire.data, b->wire.len, NULL, &b->tree_arena, &b->tree, &b->terr);
	if (rv != 0)
		die("%s: decode: %s: %s", b->name, kmipd_strerror(rv), b->terr.message);
	check_tree(b->tree);
	if (count_items(b->tree) != b->items)
		die("%s: decoded %zu items, expected %zu", b->name, count_items(b->tree), b->items);

	if (step_decode(b) != 0 || check_decode(b) != 0)
		die("%s: decode into the benchmark arena failed", b->name);
	b->arena_decode = b->arena.used;
	if (b->is_request) {
		rv = step_parse(b);
		if (rv != 0)
			die("%s: kmip_request_parse: %s", b->name, b->merr.message);
		if (check_parse(b) != 0)
			die("%s: kmip_request_parse gave a wrong request", b->name);
		b->arena_parse = b->arena.used;
	}
	arena_reset(&b->arena);
}

static void usage(FILE *f)
{
	fputs("usage: bench_codec [--quick] [--only TEXT]\n"
	      "  --quick      3 batches of ~3 ms per figure instead of 21 of ~30 ms (smoke runs)\n"
	      "  --only TEXT  run only the figures whose \"message figure\" contains TEXT\n",
	      f);
}

static bool selected(const struct options *o, const struct bench *b, const struct figure *f)
{
	char label[64];

	if (o->only == NULL)
		return true;
	snprintf(label, sizeof(label), "%s %s", b->name, f->name);
	return strstr(label, o->only) != NULL;
}

int main(int argc, char **argv)
{
	struct options o = {false, NULL};
	struct bench benches[2] = {
		{.name = "create-request", .is_request = true, .items = CREATE_REQUEST_ITEMS},
		{.name = "get-response", .is_request = false, .items = GET_RESPONSE_ITEMS},
	};

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			o.quick = true;
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			o.only = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}

	build_create_request(&benches[0].wire);
	check_wire(&benches[0], CREATE_REQUEST_SIZE, KMIP_TAG_REQUEST_MESSAGE,
		   KMIP_TAG_REQUEST_HEADER);
	prepare(&benches[0], check_request_tree);
	build_get_response(&benches[1].wire);
	check_wire(&benches[1], GET_RESPONSE_SIZE, KMIP_TAG_RESPONSE_MESSAGE,
		   KMIP_TAG_RESPONSE_HEADER);
	prepare(&benches[1], check_response_tree);

	printf("kmipd TTLV codec benchmark: median of %d batches per figure%s\n",
	       o.quick ? QUICK_REPS : REPS, o.quick ? " (--quick)" : "");
	printf("%-15s %-14s %6s %9s %10s %10s %10s %12s\n", "message", "figure", "bytes", "batch",
	       "ns/msg", "min", "max", "msg/s");
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		for (size_t k = 0; k < sizeof(figures) / sizeof(figures[0]); k++)
			if ((benches[i].is_request || !figures[k].request_only) &&
			    selected(&o, &benches[i], &figures[k]))
				measure(&benches[i], &figures[k], &o);

	printf("\n%-15s %6s %6s %13s %13s\n", "message", "bytes", "items", "arena/decode",
	       "arena/+parse");
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		char parse[24] = "-";

		if (benches[i].is_request)
			snprintf(parse, sizeof(parse), "%zu", benches[i].arena_parse);
		printf("%-15s %6zu %6zu %13zu %13s\n", benches[i].name, benches[i].wire.len,
		       benches[i].items, benches[i].arena_decode, parse);
	}

	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		buf_free(&benches[i].wire);
		buf_free(&benches[i].out);
		arena_free(&benches[i].arena);
		arena_free(&benches[i].tree_arena);
	}
	return 0;
}
