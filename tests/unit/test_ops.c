/* The object operations end to end: whole request messages built with the TTLV writer run
 * through kmip_exchange against a real store (a fresh directory per test) and real tenant
 * KEKs. Writes go through a test service that behaves like the real one, asynchronously:
 * propose records the entry and returns; the test loop, once the exchange is pending,
 * decodes the entry, applies it with command_apply in a write transaction, commits and
 * finishes the item with service_complete() (done, then kmip_exchange_item_done). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/exchange.h"
#include "kmipd/keyring.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/service.h"
#include "kmipd/store.h"

#define UID_LEN OBJECT_UID_LEN

struct fixture {
	char dir[64];
	struct store *store;
	struct crypto_key *root_key;
	struct keyring *ring;
	struct service service;
	struct session t1, t2, t3; /* t3's tenant has no KEK */
	uint64_t index;		   /* Raft index of the last applied entry */

	/* The proposal in flight. */
	bool pending;
	struct kmip_op_ctx *pending_ctx;
	struct buf entry;
	service_done_fn done;
	int proposals;
	int fail_next; /* non-zero: the next proposal is not applied but fails so */

	/* The request being written and the responses read (kept for the whole test). */
	struct buf req;
	struct ttlv_writer w;
	struct arena arena;
	struct ttlv_item *root;
};

static int test_propose(struct service *service, struct kmip_op_ctx *ctx, const struct buf *entry,
			service_done_fn done)
{
	struct fixture *f = service->propose_arg;

	assert_false(f->pending);
	buf_clear(&f->entry);
	assert_int_equal(buf_append(&f->entry, entry->data, entry->len), 0);
	f->pending = true;
	f->pending_ctx = ctx;
	f->done = done;
	f->proposals++;
	return 0;
}

static void add_tenant(struct fixture *f, struct session *s, const char *tenant, bool kek)
{
	struct buf wrapped = BUF_INIT;
	struct store_txn *txn;
	struct store_tenant t = {.root_key_id = "", .created = 1700000000};

	memset(s, 0, sizeof(*s));
	s->service = &f->service;
	snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
	snprintf(s->client, sizeof(s->client), "client-%s", tenant);
	if (!kek)
		return;
	assert_int_equal(keyring_make(f->ring, tenant, 1, &wrapped), 0);
	assert_int_equal(keyring_load(f->ring, tenant, 1, wrapped.data, wrapped.len, false), 0);
	snprintf(t.name, sizeof(t.name), "%s", tenant);
	snprintf(t.provider, sizeof(t.provider), "local");
	t.wrapped_kek = wrapped.data;
	t.wrapped_kek_len = wrapped.len;
	assert_int_equal(store_txn_begin(f->store, true, &txn), 0);
	assert_int_equal(store_tenant_put(txn, &t), 0);
	assert_int_equal(store_txn_commit(txn), 0);
	buf_free(&wrapped);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char errmsg[256];
	struct store_config config = {NULL, 64 << 20, false};

	strcpy(f->dir, "/tmp/kmipd-test-ops-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	config.dir = f->dir;
	if (store_open(&f->store, &config, errmsg, sizeof(errmsg)) != 0) {
		print_error("store_open: %s\n", errmsg);
		return -1;
	}
	f->root_key = crypto_key_new();
	assert_int_equal(crypto_random(f->root_key->bytes, CRYPTO_KEY_LEN), 0);
	f->ring = keyring_new(f->root_key);
	f->service.store = f->store;
	f->service.keyring = f->ring;
	f->service.propose = test_propose;
	f->service.propose_arg = f;
	add_tenant(f, &f->t1, "t1", true);
	add_tenant(f, &f->t2, "t2", true);
	add_tenant(f, &f->t3, "t3", false);
	arena_init(&f->arena, 64 * 1024, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	store_close(f->store);
	keyring_free(f->ring);
	crypto_key_free(f->root_key);
	buf_free(&f->entry);
	buf_free(&f->req);
	arena_free(&f->arena);
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- Writing requests ------------------------------------------------------------- */

#define BEGIN(tag)	 ttlv_begin(&f->w, KMIP_TAG_##tag)
#define END()		 ttlv_end(&f->w)
#define INT(tag, v)	 ttlv_put_integer(&f->w, KMIP_TAG_##tag, v)
#define ENUM(tag, v)	 ttlv_put_enum(&f->w, KMIP_TAG_##tag, v)
#define BOOL(tag, v)	 ttlv_put_bool(&f->w, KMIP_TAG_##tag, v)
#define TEXT(tag, s)	 ttlv_put_cstr(&f->w, KMIP_TAG_##tag, s)
#define BYTES(tag, p, n) ttlv_put_bytes(&f->w, KMIP_TAG_##tag, p, n)
#define DATE(tag, t)	 ttlv_put_datetime(&f->w, KMIP_TAG_##tag, t)

/* Opens a Request Message of KMIP 1.@minor with @count items. */
static void request(struct fixture *f, int minor, int count)
{
	buf_clear(&f->req);
	ttlv_writer_init(&f->w, &f->req);
	BEGIN(REQUEST_MESSAGE);
	BEGIN(REQUEST_HEADER);
	BEGIN(PROTOCOL_VERSION);
	INT(PROTOCOL_VERSION_MAJOR, 1);
	INT(PROTOCOL_VERSION_MINOR, minor);
	END();
	INT(BATCH_COUNT, count);
	END();
}

/* As request(), with Batch Error Continuation Option Continue. */
static void request_continue(struct fixture *f, int minor, int count)
{
	buf_clear(&f->req);
	ttlv_writer_init(&f->w, &f->req);
	BEGIN(REQUEST_MESSAGE);
	BEGIN(REQUEST_HEADER);
	BEGIN(PROTOCOL_VERSION);
	INT(PROTOCOL_VERSION_MAJOR, 1);
	INT(PROTOCOL_VERSION_MINOR, minor);
	END();
	ENUM(BATCH_ERROR_CONTINUATION_OPTION, KMIP_BATCH_ERROR_CONTINUE);
	INT(BATCH_COUNT, count);
	END();
}

/* Opens a batch item of @op with the 8-byte batch id @id (NULL: none) and its payload. */
static void item(struct fixture *f, uint32_t op, const char *id)
{
	BEGIN(BATCH_ITEM);
	ENUM(OPERATION, op);
	if (id != NULL)
		BYTES(UNIQUE_BATCH_ITEM_ID, id, 8);
	BEGIN(REQUEST_PAYLOAD);
}

static void item_end(struct fixture *f)
{
	END();
	END();
}

static void attr_begin(struct fixture *f, const char *name)
{
	BEGIN(ATTRIBUTE);
	TEXT(ATTRIBUTE_NAME, name);
}

static void attr_text(struct fixture *f, const char *name, const char *value)
{
	attr_begin(f, name);
	TEXT(ATTRIBUTE_VALUE, value);
	END();
}

static void attr_enum(struct fixture *f, const char *name, uint32_t value)
{
	attr_begin(f, name);
	ENUM(ATTRIBUTE_VALUE, value);
	END();
}

static void attr_int(struct fixture *f, const char *name, int32_t value)
{
	attr_begin(f, name);
	INT(ATTRIBUTE_VALUE, value);
	END();
}

static void attr_date(struct fixture *f, const char *name, int64_t value)
{
	attr_begin(f, name);
	DATE(ATTRIBUTE_VALUE, value);
	END();
}

static void attr_name(struct fixture *f, const char *value)
{
	attr_begin(f, "Name");
	BEGIN(ATTRIBUTE_VALUE);
	TEXT(NAME_VALUE, value);
	ENUM(NAME_TYPE, KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);
	END();
	END();
}

/* What vCenter sends: Create Symmetric Key, AES, mask Encrypt|Decrypt, the length. */
static void create_item(struct fixture *f, int bits, const char *name)
{
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_AES);
	attr_int(f, "Cryptographic Usage Mask", KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT);
	attr_int(f, "Cryptographic Length", bits);
	if (name != NULL)
		attr_name(f, name);
	END();
	item_end(f);
}

/* An item whose payload is the Unique Identifier @uid only (NULL: none at all). */
static void uid_item(struct fixture *f, uint32_t op, const char *uid)
{
	item(f, op, NULL);
	if (uid != NULL)
		TEXT(UNIQUE_IDENTIFIER, uid);
	item_end(f);
}

static void get_attributes_item(struct fixture *f, const char *uid, const char *name)
{
	item(f, KMIP_OP_GET_ATTRIBUTES, NULL);
	if (uid != NULL)
		TEXT(UNIQUE_IDENTIFIER, uid);
	if (name != NULL)
		TEXT(ATTRIBUTE_NAME, name);
	item_end(f);
}

static void add_text_item(struct fixture *f, const char *id, const char *uid, const char *name,
			  const char *value)
{
	item(f, KMIP_OP_ADD_ATTRIBUTE, id);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_text(f, name, value);
	item_end(f);
}

static void revoke_item(struct fixture *f, const char *uid, uint32_t code)
{
	item(f, KMIP_OP_REVOKE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	BEGIN(REVOCATION_REASON);
	ENUM(REVOCATION_REASON_CODE, code);
	TEXT(REVOCATION_MESSAGE, "retired");
	END();
	item_end(f);
}

/* ---- Running ---------------------------------------------------------------------- */

/* Applies the proposal in flight as the state machine would and finishes its item. */
static void apply_pending(struct fixture *f)
{
	struct command_result result;
	struct command cmd;
	struct store_txn *txn;
	struct arena a;

	assert_true(f->pending);
	f->pending = false;
	memset(&result, 0, sizeof(result));
	if (f->fail_next != 0) {
		result.status = f->fail_next;
		f->fail_next = 0;
	} else {
		arena_init(&a, 4096, 0);
		assert_int_equal(command_decode(f->entry.data, f->entry.len, &a, &cmd), 0);
		assert_int_equal(store_txn_begin(f->store, true, &txn), 0);
		assert_int_equal(command_apply(txn, &cmd, 1, ++f->index, &a, &result), 0);
		assert_int_equal(store_txn_commit(txn), 0);
		arena_free(&a);
	}
	service_complete(f->pending_ctx, f->done, &result);
}

/* Finishes the request, runs it as @s, and decodes the response into f->root. */
static void run(struct fixture *f, struct session *s)
{
	struct kmip_server_identity id = {"kmipd unit"};
	struct kmip_exchange_config config = {.identity = &id, .app = s};
	struct kmip_exchange ex;
	struct buf out = BUF_INIT;
	struct ttlv_error err;
	uint8_t *copy;
	int rv;

	END();
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	kmip_exchange_init(&ex, &config);
	assert_int_equal(kmip_exchange_begin(&ex, f->req.data, f->req.len, 1700000000), 0);
	while ((rv = kmip_exchange_run(&ex)) == KMIP_OP_PENDING)
		apply_pending(f);
	assert_int_equal(rv, 0);
	assert_false(f->pending);
	assert_int_equal(kmip_exchange_respond(&ex, &out), 0);
	kmip_exchange_free(&ex);
	/* Responses stay readable for the whole test. */
	copy = arena_alloc(&f->arena, out.len);
	memcpy(copy, out.data, out.len);
	assert_int_equal(ttlv_decode(copy, out.len, NULL, &f->arena, &f->root, &err), 0);
	buf_free(&out);
}

/* ---- Reading responses ------------------------------------------------------------ */

static int batch_count(struct fixture *f)
{
	return ttlv_child(ttlv_child(f->root, KMIP_TAG_RESPONSE_HEADER), KMIP_TAG_BATCH_COUNT)
		->v.integer;
}

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

	return r != NULL ? r->v.enumeration : 0;
}

static bool message_has(const struct ttlv_item *b, const char *text)
{
	const struct ttlv_item *m = ttlv_child(b, KMIP_TAG_RESULT_MESSAGE);

	if (m == NULL || memmem(m->v.bytes, m->length, text, strlen(text)) == NULL) {
		print_message("result message '%.*s' lacks '%s'\n", m ? (int)m->length : 0,
			      m ? (const char *)m->v.bytes : "", text);
		return false;
	}
	return true;
}

static const struct ttlv_item *payload(const struct ttlv_item *b)
{
	return ttlv_child(b, KMIP_TAG_RESPONSE_PAYLOAD);
}

/* Follows a path of tags (ending with 0) down from @from. */
static const struct ttlv_item *path(const struct ttlv_item *from, ...)
{
	va_list ap;
	uint32_t tag;

	va_start(ap, from);
	while (from != NULL && (tag = va_arg(ap, uint32_t)) != 0)
		from = ttlv_child(from, tag);
	va_end(ap);
	return from;
}

static size_t count_of(const struct ttlv_item *parent, uint32_t tag)
{
	size_t n = 0;

	for (const struct ttlv_item *c = ttlv_child(parent, tag); c; c = ttlv_next_same(c))
		n++;
	return n;
}

/* Checks item @n succeeded; returns its payload. */
static const struct ttlv_item *ok(struct fixture *f, int n)
{
	const struct ttlv_item *b = result(f, n);

	if (status(b) != KMIP_STATUS_SUCCESS) {
		const struct ttlv_item *m = ttlv_child(b, KMIP_TAG_RESULT_MESSAGE);

		print_error("item %d failed: reason 0x%X: %.*s\n", n, reason(b),
			    m ? (int)m->length : 0, m ? (const char *)m->v.bytes : "");
	}
	assert_int_equal(status(b), KMIP_STATUS_SUCCESS);
	return payload(b);
}

/* Checks item @n failed with @why and a message containing @text; no payload. */
static void failed(struct fixture *f, int n, uint32_t why, const char *text)
{
	const struct ttlv_item *b = result(f, n);

	assert_int_equal(status(b), KMIP_STATUS_OPERATION_FAILED);
	assert_int_equal(reason(b), why);
	assert_true(message_has(b, text));
	assert_null(payload(b));
}

static bool text_is(const struct ttlv_item *item, const char *s)
{
	return ttlv_text_equals(item, s);
}

/* Copies the Unique Identifier of payload @p into @uid (37 bytes). */
static void take_uid(const struct ttlv_item *p, char *uid)
{
	const struct ttlv_item *u = ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER);

	assert_non_null(u);
	assert_int_equal(u->length, UID_LEN);
	memcpy(uid, u->v.bytes, UID_LEN);
	uid[UID_LEN] = '\0';
}

/* The Attribute Value of the Attribute named @name with index @index in payload @p, or
 * NULL; *has_index says whether the Attribute carried an Attribute Index. */
static const struct ttlv_item *attribute(const struct ttlv_item *p, const char *name, int index,
					 bool *has_index)
{
	for (const struct ttlv_item *a = ttlv_child(p, KMIP_TAG_ATTRIBUTE); a;
	     a = ttlv_next_same(a)) {
		const struct ttlv_item *i = ttlv_child(a, KMIP_TAG_ATTRIBUTE_INDEX);

		if (!text_is(ttlv_child(a, KMIP_TAG_ATTRIBUTE_NAME), name) ||
		    (i ? i->v.integer : 0) != index)
			continue;
		if (has_index != NULL)
			*has_index = i != NULL;
		return ttlv_child(a, KMIP_TAG_ATTRIBUTE_VALUE);
	}
	return NULL;
}

static uint32_t state_of(struct fixture *f, struct session *s, const char *uid)
{
	const struct ttlv_item *v;

	request(f, 1, 1);
	get_attributes_item(f, uid, "State");
	run(f, s);
	v = attribute(ok(f, 0), "State", 0, NULL);
	assert_non_null(v);
	return v->v.enumeration;
}

/* Creates an AES key of @bits as @s (optionally named); its uid into @uid. */
static void create_key(struct fixture *f, struct session *s, int bits, const char *name, char *uid)
{
	request(f, 1, 1);
	create_item(f, bits, name);
	run(f, s);
	take_uid(ok(f, 0), uid);
}

/* The Key Material bytes of a Get payload holding a Symmetric Key in Raw format. */
static const struct ttlv_item *raw_material(const struct ttlv_item *p)
{
	return path(p, KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_KEY_BLOCK, KMIP_TAG_KEY_VALUE,
		    KMIP_TAG_KEY_MATERIAL, 0);
}

/* ---- vCenter's sequences ---------------------------------------------------------- */

/* new key, then use key: Create → Get (Pre-Active) → Get Attributes(State) → Activate. */
static void vcenter_create_get_activate(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p, *m1, *v;
	int64_t before = service_now();
	char uid[UID_LEN + 1];
	uint8_t first[32];

	request(f, 1, 1);
	create_item(f, 256, NULL);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(ttlv_child(p, KMIP_TAG_OBJECT_TYPE)->v.enumeration,
			 KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	take_uid(p, uid);
	assert_int_equal(p->v.children.count, 2); /* Object Type and Unique Identifier only */
	assert_int_equal(f->proposals, 1);

	/* Get works before Activate and returns the same 32 bytes every time. */
	request(f, 1, 1);
	uid_item(f, KMIP_OP_GET, uid);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(ttlv_child(p, KMIP_TAG_OBJECT_TYPE)->v.enumeration,
			 KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	assert_true(text_is(ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER), uid));
	m1 = raw_material(p);
	assert_non_null(m1);
	assert_int_equal(m1->type, TTLV_BYTE_STRING);
	assert_int_equal(m1->length, 32);
	memcpy(first, m1->v.bytes, 32);
	assert_int_equal(
		path(p, KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_KEY_BLOCK, KMIP_TAG_KEY_FORMAT_TYPE, 0)
			->v.enumeration,
		KMIP_KEY_FORMAT_RAW);
	assert_int_equal(path(p, KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_KEY_BLOCK,
			      KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, 0)
				 ->v.enumeration,
			 KMIP_ALG_AES);
	assert_int_equal(path(p, KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_KEY_BLOCK,
			      KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 0)
				 ->v.integer,
			 256);

	request(f, 1, 1);
	uid_item(f, KMIP_OP_GET, uid);
	run(f, &f->t1);
	assert_memory_equal(raw_material(ok(f, 0))->v.bytes, first, 32);
	assert_int_equal(f->proposals, 1); /* reads propose nothing */

	assert_int_equal(state_of(f, &f->t1, uid), KMIP_STATE_PRE_ACTIVE);

	/* The attributes vCenter's Create set are there; the dates are today's. */
	request(f, 1, 3);
	get_attributes_item(f, uid, "Cryptographic Usage Mask");
	get_attributes_item(f, uid, "Initial Date");
	get_attributes_item(f, uid, "Activation Date");
	run(f, &f->t1);
	assert_int_equal(attribute(ok(f, 0), "Cryptographic Usage Mask", 0, NULL)->v.integer, 12);
	v = attribute(ok(f, 1), "Initial Date", 0, NULL);
	assert_true(v->v.date_time >= before && v->v.date_time <= service_now());
	assert_null(attribute(ok(f, 2), "Activation Date", 0, NULL));

	request(f, 1, 1);
	uid_item(f, KMIP_OP_ACTIVATE, uid);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_true(text_is(ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER), uid));
	assert_int_equal(p->v.children.count, 1);
	assert_int_equal(state_of(f, &f->t1, uid), KMIP_STATE_ACTIVE);

	request(f, 1, 1);
	get_attributes_item(f, uid, "Activation Date");
	run(f, &f->t1);
	v = attribute(ok(f, 0), "Activation Date", 0, NULL);
	assert_non_null(v);
	assert_true(v->v.date_time >= before);

	/* A second Activate is refused by the state machine. */
	request(f, 1, 1);
	uid_item(f, KMIP_OP_ACTIVATE, uid);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_PERMISSION_DENIED, "only a Pre-Active object can be activated");
	assert_true(message_has(result(f, 0), "Activate: "));
}

/* tag key: Get Attributes on absent x- attributes answer Success with the UID only. */
static void vcenter_absent_custom_attribute_is_success(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 256, NULL, uid);
	request(f, 1, 3);
	get_attributes_item(f, uid, "x-Product_Version");
	get_attributes_item(f, uid, "x-Vendor");
	get_attributes_item(f, uid, "Not An Attribute");
	run(f, &f->t1);
	for (int i = 0; i < 3; i++) {
		p = ok(f, i);
		assert_int_equal(p->v.children.count, 1);
		assert_true(text_is(ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER), uid));
	}
}

/* tag key: three Add Attribute items in one message, QLKC batch ids echoed, each answered
 * with its assigned index; a second instance of a name gets index 1. */
static void vcenter_add_attribute_batch(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p, *id, *v;
	char uid[UID_LEN + 1];
	static const char *const ids[] = {"QLKC\x01\x00\x00\x00", "QLKC\x02\x00\x00\x00",
					  "QLKC\x03\x00\x00\x00"};
	static const char *const names[] = {"x-Product_Version", "x-Vendor", "x-Product"};
	bool has_index;

	create_key(f, &f->t1, 256, NULL, uid);
	request(f, 1, 3);
	add_text_item(f, ids[0], uid, names[0], "8.0.3");
	add_text_item(f, ids[1], uid, names[1], "VMware, Inc.");
	add_text_item(f, ids[2], uid, names[2], "VMware vSphere");
	run(f, &f->t1);
	assert_int_equal(batch_count(f), 3);
	for (int i = 0; i < 3; i++) {
		p = ok(f, i);
		id = ttlv_child(result(f, i), KMIP_TAG_UNIQUE_BATCH_ITEM_ID);
		assert_int_equal(id->length, 8);
		assert_memory_equal(id->v.bytes, ids[i], 8);
		assert_int_equal(ttlv_child(result(f, i), KMIP_TAG_OPERATION)->v.enumeration,
				 KMIP_OP_ADD_ATTRIBUTE);
		assert_true(text_is(ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER), uid));
		v = attribute(p, names[i], 0, &has_index);
		assert_non_null(v);
		assert_true(has_index); /* Add Attribute always says which index it assigned */
	}
	assert_true(text_is(attribute(ok(f, 1), "x-Vendor", 0, NULL), "VMware, Inc."));

	/* The same name twice in one message: indexes 0 and 1. */
	request(f, 1, 2);
	add_text_item(f, "QLKC\x01\x00\x00\x00", uid, "x-Name", "vm-a");
	add_text_item(f, "QLKC\x02\x00\x00\x00", uid, "x-Name", "vm-b");
	run(f, &f->t1);
	assert_true(text_is(attribute(ok(f, 0), "x-Name", 0, NULL), "vm-a"));
	assert_true(text_is(attribute(ok(f, 1), "x-Name", 1, NULL), "vm-b"));

	/* Get Attributes returns every instance; the index shows when it is above 0. */
	request(f, 1, 2);
	get_attributes_item(f, uid, "x-Name");
	get_attributes_item(f, uid, "x-Vendor");
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(count_of(p, KMIP_TAG_ATTRIBUTE), 2);
	assert_true(text_is(attribute(p, "x-Name", 0, &has_index), "vm-a"));
	assert_false(has_index);
	assert_true(text_is(attribute(p, "x-Name", 1, &has_index), "vm-b"));
	assert_true(has_index);
	assert_true(text_is(attribute(ok(f, 1), "x-Vendor", 0, NULL), "VMware, Inc."));
}

/* ---- Get ---------------------------------------------------------------------------- */

static void get_transparent_symmetric_key(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *raw, *key;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 128, NULL, uid);
	request(f, 1, 2);
	uid_item(f, KMIP_OP_GET, uid);
	item(f, KMIP_OP_GET, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	ENUM(KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY);
	item_end(f);
	run(f, &f->t1);
	raw = raw_material(ok(f, 0));
	assert_int_equal(raw->length, 16);
	key = path(ok(f, 1), KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_KEY_BLOCK, KMIP_TAG_KEY_VALUE,
		   KMIP_TAG_KEY_MATERIAL, KMIP_TAG_KEY, 0);
	assert_non_null(key);
	assert_int_equal(key->length, 16);
	assert_memory_equal(key->v.bytes, raw->v.bytes, 16);
	assert_int_equal(path(ok(f, 1), KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_KEY_BLOCK,
			      KMIP_TAG_KEY_FORMAT_TYPE, 0)
				 ->v.enumeration,
			 KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY);
}

static void get_errors(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 256, NULL, uid);
	request_continue(f, 1, 7);
	item(f, KMIP_OP_GET, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	ENUM(KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_PKCS_1);
	item_end(f);
	item(f, KMIP_OP_GET, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	BEGIN(KEY_WRAPPING_SPECIFICATION);
	ENUM(WRAPPING_METHOD, KMIP_WRAPPING_METHOD_ENCRYPT);
	END();
	item_end(f);
	item(f, KMIP_OP_GET, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	ENUM(KEY_COMPRESSION_TYPE, KMIP_KEY_COMPRESSION_TYPE_EC_PUBLIC_KEY_TYPE_UNCOMPRESSED);
	item_end(f);
	uid_item(f, KMIP_OP_GET, "00000000-0000-4000-8000-000000000000");
	uid_item(f, KMIP_OP_GET, "short");
	uid_item(f, KMIP_OP_GET, NULL);
	item(f, KMIP_OP_GET, NULL);
	INT(UNIQUE_IDENTIFIER, 7);
	item_end(f);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED, "not PKCS#1");
	failed(f, 1, KMIP_REASON_FEATURE_NOT_SUPPORTED, "Key Wrapping Specification");
	failed(f, 2, KMIP_REASON_KEY_COMPRESSION_TYPE_NOT_SUPPORTED, "Key Compression Type");
	failed(f, 3, KMIP_REASON_ITEM_NOT_FOUND,
	       "Get: no object with Unique Identifier '00000000-0000-4000-8000-000000000000'");
	failed(f, 4, KMIP_REASON_ITEM_NOT_FOUND, "'short'");
	failed(f, 5, KMIP_REASON_MISSING_DATA, "no Unique Identifier");
	failed(f, 6, KMIP_REASON_INVALID_FIELD, "Unique Identifier must be a Text String");
}

/* ---- ID Placeholder ------------------------------------------------------------------ */

static void id_placeholder_carries_through_the_batch(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1];

	request(f, 1, 4);
	create_item(f, 256, NULL);
	uid_item(f, KMIP_OP_GET, NULL);
	uid_item(f, KMIP_OP_ACTIVATE, NULL);
	get_attributes_item(f, NULL, "State");
	run(f, &f->t1);
	take_uid(ok(f, 0), uid);
	assert_true(text_is(ttlv_child(ok(f, 1), KMIP_TAG_UNIQUE_IDENTIFIER), uid));
	assert_int_equal(raw_material(ok(f, 1))->length, 32);
	assert_true(text_is(ttlv_child(ok(f, 2), KMIP_TAG_UNIQUE_IDENTIFIER), uid));
	assert_int_equal(attribute(ok(f, 3), "State", 0, NULL)->v.enumeration, KMIP_STATE_ACTIVE);

	/* It does not outlive its message. */
	request(f, 1, 1);
	uid_item(f, KMIP_OP_GET, NULL);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_MISSING_DATA, "ID Placeholder");
}

/* ---- Create ------------------------------------------------------------------------- */

static void create_errors(void **state)
{
	struct fixture *f = *state;
	int64_t now = service_now();

	request_continue(f, 4, 12);
	/* 0: not a symmetric key */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SECRET_DATA);
	item_end(f);
	/* 1: 3DES */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_TRIPLE_DES);
	attr_int(f, "Cryptographic Length", 168);
	END();
	item_end(f);
	/* 2: 100 bits */
	create_item(f, 100, NULL);
	/* 3: no algorithm */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_int(f, "Cryptographic Length", 256);
	END();
	item_end(f);
	/* 4: a template by name */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	BEGIN(NAME);
	TEXT(NAME_VALUE, "gold");
	ENUM(NAME_TYPE, KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);
	END();
	END();
	item_end(f);
	/* 5: a server-set attribute */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_enum(f, "State", KMIP_STATE_ACTIVE);
	END();
	item_end(f);
	/* 6: a y- attribute */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_text(f, "y-mine", "no");
	END();
	item_end(f);
	/* 7: a single-instance attribute twice */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_AES);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_AES);
	END();
	item_end(f);
	/* 8: an Activation Date to come */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_date(f, "Activation Date", now + 3600);
	END();
	item_end(f);
	/* 9: Sensitive (1.4) is not enforced */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_begin(f, "Sensitive");
	BOOL(ATTRIBUTE_VALUE, true);
	END();
	END();
	item_end(f);
	/* 10: a Deactivation Date */
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_date(f, "Deactivation Date", now);
	END();
	item_end(f);
	/* 11: no Object Type */
	item(f, KMIP_OP_CREATE, NULL);
	item_end(f);
	run(f, &f->t1);

	failed(f, 0, KMIP_REASON_INVALID_FIELD, "Object Type Secret Data is not supported");
	failed(f, 1, KMIP_REASON_INVALID_FIELD, "Cryptographic Algorithm 3DES is not supported");
	failed(f, 2, KMIP_REASON_INVALID_FIELD, "Cryptographic Length 100");
	failed(f, 3, KMIP_REASON_MISSING_DATA, "no Cryptographic Algorithm");
	failed(f, 4, KMIP_REASON_FEATURE_NOT_SUPPORTED, "templates");
	failed(f, 5, KMIP_REASON_INVALID_FIELD, "State is set by the server");
	failed(f, 6, KMIP_REASON_INVALID_FIELD, "y- attributes are set by the server");
	failed(f, 7, KMIP_REASON_INVALID_FIELD, "Cryptographic Algorithm appears more than once");
	failed(f, 8, KMIP_REASON_FEATURE_NOT_SUPPORTED, "Activation Date in the future");
	failed(f, 9, KMIP_REASON_FEATURE_NOT_SUPPORTED, "Sensitive = true");
	failed(f, 10, KMIP_REASON_FEATURE_NOT_SUPPORTED, "Deactivation Date");
	failed(f, 11, KMIP_REASON_MISSING_DATA, "no Object Type");
	assert_int_equal(f->proposals, 0);
}

static void create_with_past_activation_date_is_active(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p;
	char uid[UID_LEN + 1];

	request(f, 1, 1);
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_AES);
	attr_int(f, "Cryptographic Length", 192);
	attr_date(f, "Activation Date", 1600000000);
	attr_text(f, "Operation Policy Name", "default");
	attr_text(f, "Object Group", "vms");
	attr_text(f, "Object Group", "hosts");
	attr_text(f, "x-Owner", "ops");
	END();
	item_end(f);
	run(f, &f->t1);
	take_uid(ok(f, 0), uid);

	request(f, 1, 1);
	get_attributes_item(f, uid, NULL);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(attribute(p, "State", 0, NULL)->v.enumeration, KMIP_STATE_ACTIVE);
	assert_int_equal(attribute(p, "Activation Date", 0, NULL)->v.date_time, 1600000000);
	assert_int_equal(attribute(p, "Cryptographic Length", 0, NULL)->v.integer, 192);
	assert_true(text_is(attribute(p, "Operation Policy Name", 0, NULL), "default"));
	assert_true(text_is(attribute(p, "Object Group", 0, NULL), "vms"));
	assert_true(text_is(attribute(p, "Object Group", 1, NULL), "hosts"));
	assert_true(text_is(attribute(p, "x-Owner", 0, NULL), "ops"));
	assert_true(text_is(attribute(p, "Unique Identifier", 0, NULL), uid));
	assert_int_equal(attribute(p, "Object Type", 0, NULL)->v.enumeration,
			 KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	assert_non_null(attribute(p, "Last Change Date", 0, NULL));
	assert_null(attribute(p, "Destroy Date", 0, NULL));
	assert_null(attribute(p, "Revocation Reason", 0, NULL));
}

static void create_without_kek_fails(void **state)
{
	struct fixture *f = *state;

	request(f, 1, 1);
	create_item(f, 256, NULL);
	run(f, &f->t3);
	failed(f, 0, KMIP_REASON_GENERAL_FAILURE,
	       "Create: tenant t3 has no usable key-encryption key");
	assert_int_equal(f->proposals, 0);
}

/* A write that cannot be replicated fails with General Failure and says why. */
static void replication_failures_are_general_failures(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1];

	f->fail_next = KMIPD_ENO_QUORUM;
	request(f, 1, 1);
	create_item(f, 256, NULL);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_GENERAL_FAILURE, "Create: the cluster has no quorum");

	create_key(f, &f->t1, 256, NULL, uid);
	f->fail_next = KMIPD_ENO_SPACE;
	request(f, 1, 1);
	uid_item(f, KMIP_OP_ACTIVATE, uid);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_GENERAL_FAILURE, "storage is full");
	assert_int_equal(state_of(f, &f->t1, uid), KMIP_STATE_PRE_ACTIVE);
}

/* ---- Attributes ------------------------------------------------------------------- */

/* Get Attributes never shows what the request's version lacks (Description is 1.4). */
static void attributes_follow_the_version(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1];

	request(f, 4, 1);
	item(f, KMIP_OP_CREATE, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_AES);
	attr_int(f, "Cryptographic Length", 256);
	attr_text(f, "Description", "a 1.4 attribute");
	END();
	item_end(f);
	run(f, &f->t1);
	take_uid(ok(f, 0), uid);

	request(f, 1, 3);
	get_attributes_item(f, uid, NULL);
	get_attributes_item(f, uid, "Description");
	uid_item(f, KMIP_OP_GET_ATTRIBUTE_LIST, uid);
	run(f, &f->t1);
	assert_null(attribute(ok(f, 0), "Description", 0, NULL));
	assert_non_null(attribute(ok(f, 0), "Cryptographic Algorithm", 0, NULL));
	assert_int_equal(ok(f, 1)->v.children.count, 1);
	for (const struct ttlv_item *n = ttlv_child(ok(f, 2), KMIP_TAG_ATTRIBUTE_NAME); n;
	     n = ttlv_next_same(n))
		assert_false(text_is(n, "Description"));

	request(f, 4, 1);
	get_attributes_item(f, uid, "Description");
	run(f, &f->t1);
	assert_true(text_is(attribute(ok(f, 0), "Description", 0, NULL), "a 1.4 attribute"));
}

static void get_attribute_list_names_each_once(void **state)
{
	struct fixture *f = *state;
	static const char *const expected[] = {
		"Unique Identifier",
		"Object Type",
		"State",
		"Initial Date",
		"Last Change Date",
		"Cryptographic Algorithm",
		"Cryptographic Usage Mask",
		"Cryptographic Length",
		"x-Name",
	};
	const struct ttlv_item *p;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 256, NULL, uid);
	request(f, 1, 2);
	add_text_item(f, NULL, uid, "x-Name", "a");
	add_text_item(f, NULL, uid, "x-Name", "b");
	run(f, &f->t1);
	ok(f, 1);

	request(f, 1, 1);
	uid_item(f, KMIP_OP_GET_ATTRIBUTE_LIST, uid);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_true(text_is(ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER), uid));
	assert_int_equal(count_of(p, KMIP_TAG_ATTRIBUTE_NAME),
			 sizeof(expected) / sizeof(expected[0]));
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		bool found = false;

		for (const struct ttlv_item *n = ttlv_child(p, KMIP_TAG_ATTRIBUTE_NAME); n;
		     n = ttlv_next_same(n))
			found |= text_is(n, expected[i]);
		if (!found)
			print_error("missing %s\n", expected[i]);
		assert_true(found);
	}
}

static void add_attribute_errors(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 256, NULL, uid);
	request_continue(f, 4, 7);
	item(f, KMIP_OP_ADD_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_begin(f, "x-a");
	INT(ATTRIBUTE_INDEX, 3);
	TEXT(ATTRIBUTE_VALUE, "v");
	END();
	item_end(f);
	add_text_item(f, NULL, uid, "y-a", "v");
	item(f, KMIP_OP_ADD_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_enum(f, "State", KMIP_STATE_ACTIVE);
	item_end(f);
	item(f, KMIP_OP_ADD_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_AES);
	item_end(f);
	add_text_item(f, NULL, uid, "PKCS#12 Friendly Name", "mine");
	item(f, KMIP_OP_ADD_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_int(f, "Cryptographic Length", 128); /* Create set it already */
	item_end(f);
	item(f, KMIP_OP_ADD_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_text(f, "Cryptographic Usage Mask", "12");
	item_end(f);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_INVALID_FIELD, "the server assigns the Attribute Index");
	failed(f, 1, KMIP_REASON_PERMISSION_DENIED, "y- attributes are set by the server");
	failed(f, 2, KMIP_REASON_PERMISSION_DENIED, "State is set by the server");
	failed(f, 3, KMIP_REASON_ILLEGAL_OPERATION, "single instance");
	failed(f, 4, KMIP_REASON_PERMISSION_DENIED,
	       "PKCS#12 Friendly Name does not apply to Symmetric Key objects");
	failed(f, 5, KMIP_REASON_ILLEGAL_OPERATION, "Cryptographic Length");
	failed(f, 6, KMIP_REASON_INVALID_FIELD, "must be a Integer");
	assert_int_equal(f->proposals, 1); /* the Create only */
}

static void modify_and_delete_attribute(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p;
	char uid[UID_LEN + 1];
	bool has_index;

	create_key(f, &f->t1, 256, NULL, uid);
	request(f, 1, 3);
	add_text_item(f, NULL, uid, "x-Component", "Virtual Machine");
	add_text_item(f, NULL, uid, "x-Component", "ESXi Server");
	add_text_item(f, NULL, uid, "Contact Information", "ops@example.com");
	run(f, &f->t1);
	ok(f, 2);

	request(f, 1, 3);
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_text(f, "x-Component", "Host"); /* no index: instance 0 */
	item_end(f);
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_begin(f, "x-Component");
	INT(ATTRIBUTE_INDEX, 1);
	TEXT(ATTRIBUTE_VALUE, "Cluster");
	END();
	item_end(f);
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_text(f, "Contact Information", "sec@example.com");
	item_end(f);
	run(f, &f->t1);
	assert_true(text_is(attribute(ok(f, 0), "x-Component", 0, &has_index), "Host"));
	assert_false(has_index);
	assert_true(text_is(attribute(ok(f, 1), "x-Component", 1, &has_index), "Cluster"));
	assert_true(has_index);
	assert_true(
		text_is(attribute(ok(f, 2), "Contact Information", 0, NULL), "sec@example.com"));

	/* Delete instance 0: the answer carries the old value; index 1 keeps its index. */
	request(f, 1, 2);
	item(f, KMIP_OP_DELETE_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	TEXT(ATTRIBUTE_NAME, "x-Component");
	item_end(f);
	item(f, KMIP_OP_DELETE_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	TEXT(ATTRIBUTE_NAME, "Contact Information");
	INT(ATTRIBUTE_INDEX, 0);
	item_end(f);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_true(text_is(ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER), uid));
	assert_true(text_is(attribute(p, "x-Component", 0, NULL), "Host"));
	assert_true(
		text_is(attribute(ok(f, 1), "Contact Information", 0, NULL), "sec@example.com"));

	request(f, 1, 2);
	get_attributes_item(f, uid, "x-Component");
	get_attributes_item(f, uid, "Contact Information");
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(count_of(p, KMIP_TAG_ATTRIBUTE), 1);
	assert_true(text_is(attribute(p, "x-Component", 1, &has_index), "Cluster"));
	assert_true(has_index);
	assert_int_equal(ok(f, 1)->v.children.count, 1);

	/* A new instance takes the next index, not the freed one. */
	request(f, 1, 1);
	add_text_item(f, NULL, uid, "x-Component", "Again");
	run(f, &f->t1);
	assert_non_null(attribute(ok(f, 0), "x-Component", 2, NULL));
}

static void modify_and_delete_errors(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 256, NULL, uid);
	request_continue(f, 1, 10);
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_text(f, "x-absent", "v");
	item_end(f);
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_AES);
	item_end(f);
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_date(f, "Activation Date", 1600000000);
	item_end(f);
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_text(f, "y-server", "v");
	item_end(f);
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	item_end(f);
	item(f, KMIP_OP_DELETE_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	TEXT(ATTRIBUTE_NAME, "x-absent");
	item_end(f);
	item(f, KMIP_OP_DELETE_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	TEXT(ATTRIBUTE_NAME, "Cryptographic Algorithm");
	item_end(f);
	item(f, KMIP_OP_DELETE_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	TEXT(ATTRIBUTE_NAME, "Description"); /* 1.4 */
	item_end(f);
	item(f, KMIP_OP_DELETE_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	TEXT(ATTRIBUTE_NAME, "y-x");
	item_end(f);
	item(f, KMIP_OP_DELETE_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	TEXT(ATTRIBUTE_NAME, "Cryptographic Usage Mask");
	INT(ATTRIBUTE_INDEX, -1);
	item_end(f);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_ITEM_NOT_FOUND, "has no x-absent with Attribute Index 0");
	failed(f, 1, KMIP_REASON_PERMISSION_DENIED, "Cryptographic Algorithm cannot be changed");
	failed(f, 2, KMIP_REASON_FEATURE_NOT_SUPPORTED, "use Activate");
	failed(f, 3, KMIP_REASON_PERMISSION_DENIED, "y- attributes");
	failed(f, 4, KMIP_REASON_MISSING_DATA, "no Attribute");
	failed(f, 5, KMIP_REASON_ITEM_NOT_FOUND, "has no x-absent with Attribute Index 0");
	failed(f, 6, KMIP_REASON_PERMISSION_DENIED, "Cryptographic Algorithm cannot be deleted");
	failed(f, 7, KMIP_REASON_INVALID_FIELD, "'Description' is not an attribute of KMIP 1.1");
	failed(f, 8, KMIP_REASON_PERMISSION_DENIED, "y- attributes belong to the server");
	failed(f, 9, KMIP_REASON_INVALID_FIELD, "must not be negative");
	assert_int_equal(f->proposals, 1);
}

/* ---- Locate --------------------------------------------------------------------------- */

static void locate_item_name(struct fixture *f, const char *name)
{
	item(f, KMIP_OP_LOCATE, NULL);
	attr_name(f, name);
	item_end(f);
}

/* The Unique Identifiers of a Locate payload, checked to be in ascending order. */
static size_t located(const struct ttlv_item *p, char uids[][UID_LEN + 1], size_t max)
{
	size_t n = 0;

	for (const struct ttlv_item *u = ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER); u;
	     u = ttlv_next_same(u)) {
		assert_true(n < max);
		assert_int_equal(u->length, UID_LEN);
		memcpy(uids[n], u->v.bytes, UID_LEN);
		uids[n][UID_LEN] = '\0';
		if (n > 0)
			assert_true(strcmp(uids[n - 1], uids[n]) < 0);
		n++;
	}
	return n;
}

static bool listed(char uids[][UID_LEN + 1], size_t n, const char *uid)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(uids[i], uid) == 0)
			return true;
	return false;
}

static void locate_by_name_state_and_custom_value(void **state)
{
	struct fixture *f = *state;
	char a[UID_LEN + 1], b[UID_LEN + 1], c[UID_LEN + 1], other[UID_LEN + 1];
	char uids[8][UID_LEN + 1];
	const struct ttlv_item *p;

	create_key(f, &f->t1, 256, "alpha", a);
	create_key(f, &f->t1, 256, "beta", b);
	create_key(f, &f->t1, 128, NULL, c);
	create_key(f, &f->t2, 256, "alpha", other);
	request(f, 1, 3);
	uid_item(f, KMIP_OP_ACTIVATE, b);
	add_text_item(f, NULL, a, "x-Identifier", "vm-42");
	add_text_item(f, NULL, c, "x-Identifier", "vm-42");
	run(f, &f->t1);
	ok(f, 2);

	/* By Name: only t1's alpha, though t2 has one of that name too. Name Type first in
	 * the request: the value is compared in its canonical order. */
	request(f, 1, 2);
	locate_item_name(f, "alpha");
	item(f, KMIP_OP_LOCATE, NULL);
	attr_begin(f, "Name");
	BEGIN(ATTRIBUTE_VALUE);
	ENUM(NAME_TYPE, KMIP_NAME_TYPE_UNINTERPRETED_TEXT_STRING);
	TEXT(NAME_VALUE, "beta");
	END();
	END();
	item_end(f);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_null(ttlv_child(p, KMIP_TAG_LOCATED_ITEMS)); /* 1.1 has no Located Items */
	assert_int_equal(located(p, uids, 8), 1);
	assert_string_equal(uids[0], a);
	assert_int_equal(located(ok(f, 1), uids, 8), 1);
	assert_string_equal(uids[0], b);

	/* By State, by Cryptographic Length, by x- value, and combined. */
	request(f, 1, 5);
	item(f, KMIP_OP_LOCATE, NULL);
	attr_enum(f, "State", KMIP_STATE_ACTIVE);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	attr_enum(f, "State", KMIP_STATE_PRE_ACTIVE);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	attr_int(f, "Cryptographic Length", 128);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	attr_text(f, "x-Identifier", "vm-42");
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	attr_text(f, "x-Identifier", "vm-42");
	attr_enum(f, "Object Type", KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	attr_name(f, "alpha");
	item_end(f);
	run(f, &f->t1);
	assert_int_equal(located(ok(f, 0), uids, 8), 1);
	assert_string_equal(uids[0], b);
	assert_int_equal(located(ok(f, 1), uids, 8), 2);
	assert_true(listed(uids, 2, a) && listed(uids, 2, c));
	assert_int_equal(located(ok(f, 2), uids, 8), 1);
	assert_string_equal(uids[0], c);
	assert_int_equal(located(ok(f, 3), uids, 8), 2);
	assert_true(listed(uids, 2, a) && listed(uids, 2, c));
	assert_int_equal(located(ok(f, 4), uids, 8), 1);
	assert_string_equal(uids[0], a);

	/* No criteria: every object of the tenant, none of the other's. */
	request(f, 1, 1);
	item(f, KMIP_OP_LOCATE, NULL);
	item_end(f);
	run(f, &f->t2);
	assert_int_equal(located(ok(f, 0), uids, 8), 1);
	assert_string_equal(uids[0], other);
}

static void locate_pages_with_maximum_and_offset(void **state)
{
	struct fixture *f = *state;
	char keys[5][UID_LEN + 1], all[8][UID_LEN + 1], page[8][UID_LEN + 1];
	const struct ttlv_item *p;

	for (int i = 0; i < 5; i++)
		create_key(f, &f->t1, 256, NULL, keys[i]);

	request(f, 4, 4);
	item(f, KMIP_OP_LOCATE, NULL);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	INT(MAXIMUM_ITEMS, 2);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	INT(MAXIMUM_ITEMS, 2);
	INT(OFFSET_ITEMS, 3);
	INT(STORAGE_STATUS_MASK, KMIP_STORAGE_STATUS_MASK_ONLINE_STORAGE);
	ENUM(OBJECT_GROUP_MEMBER, KMIP_OBJECT_GROUP_MEMBER_GROUP_MEMBER_DEFAULT);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	INT(STORAGE_STATUS_MASK, KMIP_STORAGE_STATUS_MASK_ARCHIVAL_STORAGE);
	item_end(f);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(ttlv_child(p, KMIP_TAG_LOCATED_ITEMS)->v.integer, 5);
	assert_int_equal(located(p, all, 8), 5);
	for (int i = 0; i < 5; i++)
		assert_true(listed(all, 5, keys[i]));
	p = ok(f, 1);
	assert_int_equal(ttlv_child(p, KMIP_TAG_LOCATED_ITEMS)->v.integer, 5);
	assert_int_equal(located(p, page, 8), 2);
	assert_string_equal(page[0], all[0]);
	assert_string_equal(page[1], all[1]);
	p = ok(f, 2);
	assert_int_equal(ttlv_child(p, KMIP_TAG_LOCATED_ITEMS)->v.integer, 5);
	assert_int_equal(located(p, page, 8), 2);
	assert_string_equal(page[0], all[3]);
	assert_string_equal(page[1], all[4]);
	p = ok(f, 3);
	assert_int_equal(ttlv_child(p, KMIP_TAG_LOCATED_ITEMS)->v.integer, 0);
	assert_null(ttlv_child(p, KMIP_TAG_UNIQUE_IDENTIFIER));

	/* Before 1.3: no Located Items in the answer, but Offset Items (which PyKMIP sends
	 * in 1.2) and Maximum Items still page. */
	request_continue(f, 2, 4);
	item(f, KMIP_OP_LOCATE, NULL);
	INT(OFFSET_ITEMS, 4);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	INT(MAXIMUM_ITEMS, 3);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	INT(MAXIMUM_ITEMS, -1);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	INT(OFFSET_ITEMS, -2);
	item_end(f);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_null(ttlv_child(p, KMIP_TAG_LOCATED_ITEMS));
	assert_int_equal(located(p, page, 8), 1);
	assert_string_equal(page[0], all[4]);
	assert_int_equal(located(ok(f, 1), page, 8), 3);
	assert_string_equal(page[2], all[2]);
	failed(f, 2, KMIP_REASON_INVALID_FIELD, "Maximum Items must not be negative");
	failed(f, 3, KMIP_REASON_INVALID_FIELD, "Offset Items must not be negative");
}

static void locate_dates_make_a_range(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1], uids[4][UID_LEN + 1];
	int64_t now = service_now();

	create_key(f, &f->t1, 256, NULL, uid);
	request(f, 1, 3);
	item(f, KMIP_OP_LOCATE, NULL);
	attr_date(f, "Initial Date", now + 3600);
	attr_date(f, "Initial Date", now - 3600);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	attr_date(f, "Initial Date", now + 3600);
	attr_date(f, "Initial Date", now + 7200);
	item_end(f);
	item(f, KMIP_OP_LOCATE, NULL);
	attr_date(f, "Initial Date", now - 1);
	item_end(f);
	run(f, &f->t1);
	assert_int_equal(located(ok(f, 0), uids, 4), 1);
	assert_string_equal(uids[0], uid);
	assert_int_equal(located(ok(f, 1), uids, 4), 0);
	assert_int_equal(located(ok(f, 2), uids, 4), 0); /* one date: that exact second */
}

/* A Locate that finds exactly one object sets the ID Placeholder. */
static void locate_then_get_in_one_batch(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1], other[UID_LEN + 1];

	create_key(f, &f->t1, 256, "the-one", uid);
	create_key(f, &f->t1, 256, "another", other);
	request(f, 1, 2);
	locate_item_name(f, "the-one");
	uid_item(f, KMIP_OP_GET, NULL);
	run(f, &f->t1);
	ok(f, 0);
	assert_true(text_is(ttlv_child(ok(f, 1), KMIP_TAG_UNIQUE_IDENTIFIER), uid));
}

/* ---- Lifecycle ------------------------------------------------------------------------ */

static void revoke_and_destroy_lifecycle(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p, *reason_value;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 256, NULL, uid);
	request(f, 1, 2);
	uid_item(f, KMIP_OP_ACTIVATE, uid);
	uid_item(f, KMIP_OP_DESTROY, uid);
	run(f, &f->t1);
	ok(f, 0);
	failed(f, 1, KMIP_REASON_PERMISSION_DENIED,
	       "an Active object must be revoked before it is destroyed");

	request(f, 1, 1);
	revoke_item(f, uid, KMIP_REVOCATION_CESSATION_OF_OPERATION);
	run(f, &f->t1);
	assert_true(text_is(ttlv_child(ok(f, 0), KMIP_TAG_UNIQUE_IDENTIFIER), uid));

	/* Revocation Reason comes only when named (PyKMIP cannot decode it). */
	request(f, 1, 2);
	get_attributes_item(f, uid, NULL);
	get_attributes_item(f, uid, "Revocation Reason");
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(attribute(p, "State", 0, NULL)->v.enumeration, KMIP_STATE_DEACTIVATED);
	assert_non_null(attribute(p, "Deactivation Date", 0, NULL));
	assert_null(attribute(p, "Revocation Reason", 0, NULL));
	reason_value = attribute(ok(f, 1), "Revocation Reason", 0, NULL);
	assert_int_equal(ttlv_child(reason_value, KMIP_TAG_REVOCATION_REASON_CODE)->v.enumeration,
			 KMIP_REVOCATION_CESSATION_OF_OPERATION);
	assert_true(text_is(ttlv_child(reason_value, KMIP_TAG_REVOCATION_MESSAGE), "retired"));

	/* A deactivated key can still be read; then it is destroyed and cannot. */
	request(f, 1, 3);
	uid_item(f, KMIP_OP_GET, uid);
	uid_item(f, KMIP_OP_DESTROY, uid);
	uid_item(f, KMIP_OP_GET, uid);
	run(f, &f->t1);
	assert_int_equal(raw_material(ok(f, 0))->length, 32);
	assert_true(text_is(ttlv_child(ok(f, 1), KMIP_TAG_UNIQUE_IDENTIFIER), uid));
	failed(f, 2, KMIP_REASON_PERMISSION_DENIED, "its key material has been erased");

	request_continue(f, 1, 3);
	get_attributes_item(f, uid, NULL);
	uid_item(f, KMIP_OP_DESTROY, uid);
	uid_item(f, KMIP_OP_ACTIVATE, uid);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(attribute(p, "State", 0, NULL)->v.enumeration, KMIP_STATE_DESTROYED);
	assert_non_null(attribute(p, "Destroy Date", 0, NULL));
	failed(f, 1, KMIP_REASON_PERMISSION_DENIED, "already destroyed");
	failed(f, 2, KMIP_REASON_PERMISSION_DENIED, "only a Pre-Active object");
}

static void revoke_for_compromise(void **state)
{
	struct fixture *f = *state;
	const struct ttlv_item *p;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 256, NULL, uid);
	request(f, 1, 1);
	item(f, KMIP_OP_REVOKE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	BEGIN(REVOCATION_REASON);
	ENUM(REVOCATION_REASON_CODE, KMIP_REVOCATION_KEY_COMPROMISE);
	END();
	DATE(COMPROMISE_OCCURRENCE_DATE, 1650000000);
	item_end(f);
	run(f, &f->t1);
	ok(f, 0);

	request(f, 1, 2);
	get_attributes_item(f, uid, NULL);
	uid_item(f, KMIP_OP_DESTROY, uid);
	run(f, &f->t1);
	p = ok(f, 0);
	assert_int_equal(attribute(p, "State", 0, NULL)->v.enumeration, KMIP_STATE_COMPROMISED);
	assert_int_equal(attribute(p, "Compromise Occurrence Date", 0, NULL)->v.date_time,
			 1650000000);
	assert_non_null(attribute(p, "Compromise Date", 0, NULL));
	ok(f, 1);
	assert_int_equal(state_of(f, &f->t1, uid), KMIP_STATE_DESTROYED_COMPROMISED);
}

static void revoke_errors(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1];

	create_key(f, &f->t1, 256, NULL, uid);
	request_continue(f, 1, 4);
	uid_item(f, KMIP_OP_REVOKE, uid);
	revoke_item(f, uid, 0x77);
	item(f, KMIP_OP_REVOKE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	BEGIN(REVOCATION_REASON);
	ENUM(REVOCATION_REASON_CODE, KMIP_REVOCATION_SUPERSEDED);
	END();
	DATE(COMPROMISE_OCCURRENCE_DATE, 1650000000);
	item_end(f);
	item(f, KMIP_OP_REVOKE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	BEGIN(REVOCATION_REASON);
	END();
	item_end(f);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_MISSING_DATA, "no Revocation Reason");
	failed(f, 1, KMIP_REASON_INVALID_FIELD, "0x00000077 is not a Revocation Reason Code");
	failed(f, 2, KMIP_REASON_INVALID_FIELD, "Compromise Occurrence Date goes only with");
	failed(f, 3, KMIP_REASON_MISSING_DATA, "no Revocation Reason Code");
	assert_int_equal(f->proposals, 1);
}

/* ---- Tenants ---------------------------------------------------------------------------- */

static void other_tenants_objects_are_not_found(void **state)
{
	struct fixture *f = *state;
	char uid[UID_LEN + 1], text[128];
	static const uint32_t ops[] = {KMIP_OP_GET, KMIP_OP_ACTIVATE, KMIP_OP_DESTROY,
				       KMIP_OP_GET_ATTRIBUTE_LIST, KMIP_OP_GET_ATTRIBUTES};
	const int n = (int)(sizeof(ops) / sizeof(ops[0]));

	create_key(f, &f->t1, 256, "secret", uid);
	request_continue(f, 1, n + 4);
	for (int i = 0; i < n; i++)
		uid_item(f, ops[i], uid);
	add_text_item(f, NULL, uid, "x-Mine", "now");
	item(f, KMIP_OP_MODIFY_ATTRIBUTE, NULL);
	TEXT(UNIQUE_IDENTIFIER, uid);
	attr_text(f, "x-Mine", "now");
	item_end(f);
	revoke_item(f, uid, KMIP_REVOCATION_SUPERSEDED);
	locate_item_name(f, "secret");
	run(f, &f->t2);
	snprintf(text, sizeof(text), "no object with Unique Identifier '%s'", uid);
	for (int i = 0; i < n + 3; i++)
		failed(f, i, KMIP_REASON_ITEM_NOT_FOUND, text);
	assert_null(ttlv_child(ok(f, n + 3), KMIP_TAG_UNIQUE_IDENTIFIER));
	assert_int_equal(f->proposals, 1);
	assert_int_equal(state_of(f, &f->t1, uid), KMIP_STATE_PRE_ACTIVE);
}

/* ---- Register ----------------------------------------------------------------------------- */

static void register_symmetric_key(struct fixture *f, uint32_t format, const uint8_t *key,
				   size_t len, int bits)
{
	item(f, KMIP_OP_REGISTER, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_int(f, "Cryptographic Usage Mask", KMIP_USAGE_WRAP_KEY);
	END();
	BEGIN(SYMMETRIC_KEY);
	BEGIN(KEY_BLOCK);
	ENUM(KEY_FORMAT_TYPE, format);
	BEGIN(KEY_VALUE);
	if (format == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY) {
		BEGIN(KEY_MATERIAL);
		BYTES(KEY, key, len);
		END();
	} else {
		BYTES(KEY_MATERIAL, key, len);
	}
	END();
	ENUM(CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
	if (bits > 0)
		INT(CRYPTOGRAPHIC_LENGTH, bits);
	END();
	END();
	item_end(f);
}

static void register_and_get_each_type(void **state)
{
	struct fixture *f = *state;
	static const uint8_t key16[16] = "0123456789abcdef";
	static const uint8_t key32[32] = "0123456789abcdef0123456789abcdef";
	static const uint8_t password[] = "correct horse battery staple";
	static const uint8_t blob[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
	char sk[UID_LEN + 1], tk[UID_LEN + 1], sd[UID_LEN + 1], oo[UID_LEN + 1];
	const struct ttlv_item *p, *m;

	request(f, 4, 4);
	register_symmetric_key(f, KMIP_KEY_FORMAT_RAW, key16, 16, 128);
	register_symmetric_key(f, KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY, key32, 32, 0);
	item(f, KMIP_OP_REGISTER, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SECRET_DATA);
	BEGIN(SECRET_DATA);
	ENUM(SECRET_DATA_TYPE, KMIP_SECRET_DATA_TYPE_PASSWORD);
	BEGIN(KEY_BLOCK);
	ENUM(KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_OPAQUE);
	BEGIN(KEY_VALUE);
	BYTES(KEY_MATERIAL, password, sizeof(password) - 1);
	END();
	END();
	END();
	item_end(f);
	item(f, KMIP_OP_REGISTER, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_OPAQUE_OBJECT);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_name(f, "blob");
	END();
	BEGIN(OPAQUE_OBJECT);
	ENUM(OPAQUE_DATA_TYPE, 0x80000001);
	BYTES(OPAQUE_DATA_VALUE, blob, sizeof(blob));
	END();
	item_end(f);
	run(f, &f->t1);
	take_uid(ok(f, 0), sk);
	assert_int_equal(ok(f, 0)->v.children.count, 1);
	take_uid(ok(f, 1), tk);
	take_uid(ok(f, 2), sd);
	take_uid(ok(f, 3), oo);

	request_continue(f, 4, 6);
	uid_item(f, KMIP_OP_GET, sk);
	uid_item(f, KMIP_OP_GET, tk);
	uid_item(f, KMIP_OP_GET, sd);
	uid_item(f, KMIP_OP_GET, oo);
	item(f, KMIP_OP_GET, NULL);
	TEXT(UNIQUE_IDENTIFIER, sd);
	ENUM(KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW);
	item_end(f);
	uid_item(f, KMIP_OP_GET_ATTRIBUTE_LIST, oo);
	run(f, &f->t1);

	p = ok(f, 0);
	m = raw_material(p);
	assert_int_equal(m->length, 16);
	assert_memory_equal(m->v.bytes, key16, 16);
	assert_int_equal(path(p, KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_KEY_BLOCK,
			      KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 0)
				 ->v.integer,
			 128);

	/* Registered transparent, kept raw: Get without a format gives Raw, the length was
	 * taken from the material. */
	p = ok(f, 1);
	m = raw_material(p);
	assert_int_equal(m->type, TTLV_BYTE_STRING);
	assert_memory_equal(m->v.bytes, key32, 32);
	assert_int_equal(path(p, KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_KEY_BLOCK,
			      KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 0)
				 ->v.integer,
			 256);

	p = ok(f, 2);
	assert_int_equal(ttlv_child(p, KMIP_TAG_OBJECT_TYPE)->v.enumeration,
			 KMIP_OBJECT_TYPE_SECRET_DATA);
	assert_int_equal(path(p, KMIP_TAG_SECRET_DATA, KMIP_TAG_SECRET_DATA_TYPE, 0)->v.enumeration,
			 KMIP_SECRET_DATA_TYPE_PASSWORD);
	assert_int_equal(
		path(p, KMIP_TAG_SECRET_DATA, KMIP_TAG_KEY_BLOCK, KMIP_TAG_KEY_FORMAT_TYPE, 0)
			->v.enumeration,
		KMIP_KEY_FORMAT_OPAQUE);
	m = path(p, KMIP_TAG_SECRET_DATA, KMIP_TAG_KEY_BLOCK, KMIP_TAG_KEY_VALUE,
		 KMIP_TAG_KEY_MATERIAL, 0);
	assert_int_equal(m->length, sizeof(password) - 1);
	assert_memory_equal(m->v.bytes, password, sizeof(password) - 1);
	assert_null(path(p, KMIP_TAG_SECRET_DATA, KMIP_TAG_KEY_BLOCK,
			 KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, 0));

	p = ok(f, 3);
	assert_int_equal(ttlv_child(p, KMIP_TAG_OBJECT_TYPE)->v.enumeration,
			 KMIP_OBJECT_TYPE_OPAQUE_OBJECT);
	assert_int_equal(
		path(p, KMIP_TAG_OPAQUE_OBJECT, KMIP_TAG_OPAQUE_DATA_TYPE, 0)->v.enumeration,
		0x80000001);
	m = path(p, KMIP_TAG_OPAQUE_OBJECT, KMIP_TAG_OPAQUE_DATA_VALUE, 0);
	assert_int_equal(m->length, sizeof(blob));
	assert_memory_equal(m->v.bytes, blob, sizeof(blob));

	failed(f, 4, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED, "registered as Opaque");

	/* The internal record of the data type is no attribute. */
	p = ok(f, 5);
	for (const struct ttlv_item *n = ttlv_child(p, KMIP_TAG_ATTRIBUTE_NAME); n;
	     n = ttlv_next_same(n))
		assert_false(text_is(n, "Opaque Data Type"));
	assert_int_equal(count_of(p, KMIP_TAG_ATTRIBUTE_NAME), 6); /* 5 typed + Name */
	assert_int_equal(state_of(f, &f->t1, sk), KMIP_STATE_PRE_ACTIVE);
}

static void register_errors(void **state)
{
	struct fixture *f = *state;
	static const uint8_t key16[16] = "0123456789abcdef";

	request_continue(f, 1, 8);
	/* 0: wrapped */
	item(f, KMIP_OP_REGISTER, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(SYMMETRIC_KEY);
	BEGIN(KEY_BLOCK);
	ENUM(KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW);
	BYTES(KEY_VALUE, key16, 16);
	ENUM(CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
	INT(CRYPTOGRAPHIC_LENGTH, 128);
	BEGIN(KEY_WRAPPING_DATA);
	ENUM(WRAPPING_METHOD, KMIP_WRAPPING_METHOD_ENCRYPT);
	END();
	END();
	END();
	item_end(f);
	/* 1: length and material disagree */
	register_symmetric_key(f, KMIP_KEY_FORMAT_RAW, key16, 16, 256);
	/* 2: AES of 15 bytes */
	register_symmetric_key(f, KMIP_KEY_FORMAT_RAW, key16, 15, 0);
	/* 3: a certificate */
	item(f, KMIP_OP_REGISTER, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_CERTIFICATE);
	BEGIN(CERTIFICATE);
	ENUM(CERTIFICATE_TYPE, KMIP_CERTIFICATE_TYPE_X_509);
	BYTES(CERTIFICATE_VALUE, key16, 16);
	END();
	item_end(f);
	/* 4: PKCS#8 symmetric key */
	register_symmetric_key(f, KMIP_KEY_FORMAT_PKCS_8, key16, 16, 128);
	/* 5: Secret Data with an algorithm */
	item(f, KMIP_OP_REGISTER, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SECRET_DATA);
	BEGIN(SECRET_DATA);
	ENUM(SECRET_DATA_TYPE, KMIP_SECRET_DATA_TYPE_SEED);
	BEGIN(KEY_BLOCK);
	ENUM(KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW);
	BEGIN(KEY_VALUE);
	BYTES(KEY_MATERIAL, key16, 16);
	END();
	ENUM(CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
	END();
	END();
	item_end(f);
	/* 6: template and key block disagree */
	item(f, KMIP_OP_REGISTER, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
	BEGIN(TEMPLATE_ATTRIBUTE);
	attr_enum(f, "Cryptographic Algorithm", KMIP_ALG_HMAC_SHA256);
	END();
	BEGIN(SYMMETRIC_KEY);
	BEGIN(KEY_BLOCK);
	ENUM(KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW);
	BEGIN(KEY_VALUE);
	BYTES(KEY_MATERIAL, key16, 16);
	END();
	ENUM(CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
	END();
	END();
	item_end(f);
	/* 7: declared type and object differ */
	item(f, KMIP_OP_REGISTER, NULL);
	ENUM(OBJECT_TYPE, KMIP_OBJECT_TYPE_SECRET_DATA);
	BEGIN(OPAQUE_OBJECT);
	ENUM(OPAQUE_DATA_TYPE, 0x80000001);
	BYTES(OPAQUE_DATA_VALUE, key16, 16);
	END();
	item_end(f);
	run(f, &f->t1);
	failed(f, 0, KMIP_REASON_FEATURE_NOT_SUPPORTED, "wrapped key blocks are not supported yet");
	failed(f, 1, KMIP_REASON_INVALID_FIELD, "Cryptographic Length 256 does not match");
	failed(f, 2, KMIP_REASON_INVALID_FIELD, "an AES key is 16, 24 or 32 bytes, not 15");
	failed(f, 3, KMIP_REASON_INVALID_FIELD, "Object Type Certificate is not supported");
	failed(f, 4, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED, "PKCS#8");
	failed(f, 5, KMIP_REASON_INVALID_FIELD, "Secret Data has no Cryptographic Algorithm");
	failed(f, 6, KMIP_REASON_INVALID_FIELD, "Cryptographic Algorithm of the Key Block");
	failed(f, 7, KMIP_REASON_INVALID_FIELD, "but its Object Type is Secret Data");
	assert_int_equal(f->proposals, 0);
}

/* Exchanges without a store (tools, fuzzers) fail object operations cleanly. */
static void no_store_fails_cleanly(void **state)
{
	struct fixture *f = *state;
	struct kmip_exchange_config config = {0};
	struct buf out = BUF_INIT;
	struct ttlv_error err;

	request(f, 1, 2);
	create_item(f, 256, NULL);
	uid_item(f, KMIP_OP_GET, "00000000-0000-4000-8000-000000000000");
	END();
	assert_int_equal(ttlv_writer_finish(&f->w), 0);
	assert_int_equal(kmip_process(&config, f->req.data, f->req.len, 1700000000, &out), 0);
	assert_int_equal(ttlv_decode(out.data, out.len, NULL, &f->arena, &f->root, &err), 0);
	failed(f, 0, KMIP_REASON_GENERAL_FAILURE, "no key store");
	assert_int_equal(status(result(f, 0)), KMIP_STATUS_OPERATION_FAILED);
	buf_free(&out);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(vcenter_create_get_activate),
		T(vcenter_absent_custom_attribute_is_success),
		T(vcenter_add_attribute_batch),
		T(get_transparent_symmetric_key),
		T(get_errors),
		T(id_placeholder_carries_through_the_batch),
		T(create_errors),
		T(create_with_past_activation_date_is_active),
		T(create_without_kek_fails),
		T(replication_failures_are_general_failures),
		T(attributes_follow_the_version),
		T(get_attribute_list_names_each_once),
		T(add_attribute_errors),
		T(modify_and_delete_attribute),
		T(modify_and_delete_errors),
		T(locate_by_name_state_and_custom_value),
		T(locate_pages_with_maximum_and_offset),
		T(locate_dates_make_a_range),
		T(locate_then_get_in_one_batch),
		T(revoke_and_destroy_lifecycle),
		T(revoke_for_compromise),
		T(revoke_errors),
		T(other_tenants_objects_are_not_found),
		T(register_and_get_each_type),
		T(register_errors),
		T(no_store_fails_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
