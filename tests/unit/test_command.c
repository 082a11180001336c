/* Replicated commands: the entry encoding (round trips, framing, refusal of damaged
 * entries) and command_apply() as the state machine over a real store, driven through
 * encode and decode as a follower would see each entry. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kmipd/command.h"
#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"

#define TENANT "acme"
#define UID1   "0b6f1e4a-3c2d-4e5f-8a9b-0c1d2e3f4a5b"
#define UID2   "1c7a2f5b-4d3e-4f60-9bac-1d2e3f405b6c"
#define T0     1700000000

static const uint8_t sealed[] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8};
/* Attribute Values as they travel: TTLV of an Enumeration (AES) and a Text String "one". */
static const uint8_t alg_value[] = {0x42, 0x00, 0x0b, 0x05, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 0};
static const uint8_t text_one[] = {0x42, 0x00, 0x0b, 0x07, 0, 0, 0, 3,
				   'o',	 'n',  'e',  0,	   0, 0, 0, 0};
static const uint8_t text_two[] = {0x42, 0x00, 0x0b, 0x07, 0, 0, 0, 3,
				   't',	 'w',  'o',  0,	   0, 0, 0, 0};

struct fixture {
	char dir[64];
	struct store *store;
	struct arena arena;
	struct buf entry;
	uint64_t index; /* the last Raft index applied */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_config config = {0};
	char errmsg[256];

	strcpy(f->dir, "/tmp/kmipd-test-command-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	config.dir = f->dir;
	config.map_size = 64u << 20;
	config.durable = false;
	if (store_open(&f->store, &config, errmsg, sizeof(errmsg)) != 0) {
		fprintf(stderr, "store_open: %s\n", errmsg);
		return -1;
	}
	arena_init(&f->arena, 4096, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct dirent *e;
	DIR *d;

	store_close(f->store);
	arena_free(&f->arena);
	buf_free(&f->entry);
	d = opendir(f->dir);
	while (d != NULL && (e = readdir(d)) != NULL) {
		char path[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- Commands ---- */

static struct command base(enum command_type type, const char *uid, int64_t time)
{
	struct command cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.type = type;
	cmd.time = time;
	strcpy(cmd.tenant, TENANT);
	if (uid != NULL)
		strcpy(cmd.uid, uid);
	return cmd;
}

static struct command tenant_create(const char *name, int64_t time)
{
	static const uint8_t kek[] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
	struct command cmd = base(COMMAND_TENANT_CREATE, NULL, time);

	strcpy(cmd.tenant, name);
	strcpy(cmd.tenant_record.name, name);
	strcpy(cmd.tenant_record.provider, "local");
	cmd.tenant_record.root_key_id = "";
	cmd.tenant_record.wrapped_kek = kek;
	cmd.tenant_record.wrapped_kek_len = sizeof(kek);
	cmd.tenant_record.created = time;
	return cmd;
}

/* A Pre-Active AES key with one Cryptographic Algorithm attribute. @attr must outlive the
 * command. */
static struct command object_create(const char *uid, int64_t time, struct object_attr *attr)
{
	struct command cmd = base(COMMAND_OBJECT_CREATE, uid, time);
	struct object *o = &cmd.object;

	strcpy(o->uid, uid);
	strcpy(o->tenant, TENANT);
	o->object_type = KMIP_OBJECT_TYPE_SYMMETRIC_KEY;
	o->state = KMIP_STATE_PRE_ACTIVE;
	o->initial_date = time;
	o->last_change_date = time;
	attr->name = "Cryptographic Algorithm";
	attr->index = 0;
	attr->value = alg_value;
	attr->value_len = sizeof(alg_value);
	o->attrs = attr;
	o->attr_count = 1;
	o->key_format = KMIP_KEY_FORMAT_RAW;
	o->sealed = sealed;
	o->sealed_len = sizeof(sealed);
	return cmd;
}

static struct command revoke_cmd(const char *uid, int64_t time, uint32_t code, const char *message,
				 int64_t occurrence)
{
	struct command cmd = base(COMMAND_REVOKE, uid, time);

	cmd.revocation_code = code;
	cmd.revocation_message = message;
	cmd.compromise_occurrence_date = occurrence;
	return cmd;
}

static struct command attr_cmd(enum command_type type, const char *uid, int64_t time,
			       const char *name, uint32_t index, const uint8_t *value, size_t len)
{
	struct command cmd = base(type, uid, time);

	cmd.attr_name = name;
	cmd.attr_index = index;
	cmd.attr_value = value;
	cmd.attr_value_len = len;
	return cmd;
}

/* ---- Encoding ---- */

static void assert_same_command(const struct command *a, const struct command *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->time, b->time);
	assert_string_equal(a->tenant, b->tenant);
	switch (a->type) {
	case COMMAND_TENANT_CREATE:
		assert_string_equal(a->tenant_record.name, b->tenant_record.name);
		assert_string_equal(a->tenant_record.provider, b->tenant_record.provider);
		assert_string_equal(a->tenant_record.root_key_id, b->tenant_record.root_key_id);
		assert_int_equal(a->tenant_record.wrapped_kek_len,
				 b->tenant_record.wrapped_kek_len);
		assert_memory_equal(a->tenant_record.wrapped_kek, b->tenant_record.wrapped_kek,
				    a->tenant_record.wrapped_kek_len);
		assert_int_equal(a->tenant_record.created, b->tenant_record.created);
		return;
	case COMMAND_OBJECT_CREATE:
		assert_string_equal(a->object.uid, b->object.uid);
		assert_string_equal(a->object.tenant, b->object.tenant);
		assert_string_equal(a->uid, b->object.uid);
		assert_int_equal(a->object.state, b->object.state);
		assert_int_equal(a->object.object_type, b->object.object_type);
		assert_int_equal(a->object.initial_date, b->object.initial_date);
		assert_int_equal(a->object.attr_count, b->object.attr_count);
		assert_string_equal(a->object.attrs[0].name, b->object.attrs[0].name);
		assert_int_equal(a->object.sealed_len, b->object.sealed_len);
		assert_memory_equal(a->object.sealed, b->object.sealed, a->object.sealed_len);
		return;
	default:
		break;
	}
	assert_string_equal(a->uid, b->uid);
	if (a->attr_name != NULL)
		assert_string_equal(a->attr_name, b->attr_name);
	else
		assert_null(b->attr_name);
	if (a->type == COMMAND_ATTR_MODIFY || a->type == COMMAND_ATTR_DELETE)
		assert_int_equal(a->attr_index, b->attr_index);
	assert_int_equal(a->attr_value_len, b->attr_value_len);
	if (a->attr_value_len > 0)
		assert_memory_equal(a->attr_value, b->attr_value, a->attr_value_len);
	assert_int_equal(a->single_instance, b->single_instance);
	assert_int_equal(a->revocation_code, b->revocation_code);
	if (a->revocation_message != NULL)
		assert_string_equal(a->revocation_message, b->revocation_message);
	else
		assert_null(b->revocation_message);
	assert_int_equal(a->compromise_occurrence_date, b->compromise_occurrence_date);
}

/* One command of every type, some with extreme values. */
static size_t sample_commands(struct command *cmds, struct object_attr *attr)
{
	size_t n = 0;

	cmds[n++] = tenant_create(TENANT, T0);
	cmds[n++] = object_create(UID1, T0, attr);
	cmds[n] =
		attr_cmd(COMMAND_ATTR_ADD, UID1, T0 + 1, "x-owner", 0, text_one, sizeof(text_one));
	cmds[n++].single_instance = true;
	cmds[n++] = attr_cmd(COMMAND_ATTR_MODIFY, UID1, -5, "x-owner", 4000000000u, text_two,
			     sizeof(text_two));
	cmds[n++] = attr_cmd(COMMAND_ATTR_MODIFY, UID1, 0, "Name", 1, text_two, 0);
	cmds[n++] = attr_cmd(COMMAND_ATTR_DELETE, UID1, INT64_MAX, "x-owner", 7, NULL, 0);
	cmds[n++] = base(COMMAND_ACTIVATE, UID1, INT64_MIN);
	cmds[n++] = revoke_cmd(UID1, T0 + 3, KMIP_REVOCATION_KEY_COMPROMISE, "stolen", T0 - 86400);
	cmds[n++] = revoke_cmd(UID1, T0 + 3, KMIP_REVOCATION_CESSATION_OF_OPERATION, NULL, 0);
	cmds[n++] = revoke_cmd(UID1, T0 + 3, KMIP_REVOCATION_SUPERSEDED, "", 0);
	cmds[n++] = base(COMMAND_DESTROY, UID1, T0 + 4);
	return n;
}

static void round_trip_every_type(void **state)
{
	struct fixture *f = *state;
	struct command cmds[16], out;
	struct object_attr a;
	size_t n = sample_commands(cmds, &a);
	bool seen[COMMAND_DESTROY + 1] = {false};

	for (size_t i = 0; i < n; i++) {
		buf_clear(&f->entry);
		assert_int_equal(command_encode(&cmds[i], &f->entry), 0);
		assert_int_equal(f->entry.len % 8, 0);
		assert_int_equal(f->entry.data[0], COMMAND_FORMAT);
		assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &out), 0);
		assert_same_command(&cmds[i], &out);
		seen[cmds[i].type] = true;
	}
	for (int t = COMMAND_TENANT_CREATE; t <= COMMAND_DESTROY; t++)
		assert_true(seen[t]);
}

static void encode_appends_and_leaves_output_on_error(void **state)
{
	struct fixture *f = *state;
	struct command cmd = base(COMMAND_ACTIVATE, UID1, T0), bad = cmd, out;

	assert_int_equal(buf_append(&f->entry, "prefix..", 8), 0);
	assert_int_equal(command_encode(&cmd, &f->entry), 0);
	assert_memory_equal(f->entry.data, "prefix..", 8);
	assert_int_equal(command_decode(f->entry.data + 8, f->entry.len - 8, &f->arena, &out), 0);

	size_t len = f->entry.len;
	bad.type = (enum command_type)99;
	assert_int_equal(command_encode(&bad, &f->entry), KMIPD_EINVAL);
	assert_int_equal(f->entry.len, len);
}

static void every_truncation_is_refused(void **state)
{
	struct fixture *f = *state;
	struct command cmds[16], out;
	struct object_attr a;
	size_t n = sample_commands(cmds, &a);

	for (size_t i = 0; i < n; i++) {
		buf_clear(&f->entry);
		assert_int_equal(command_encode(&cmds[i], &f->entry), 0);
		for (size_t len = 0; len < f->entry.len; len++)
			assert_int_equal(command_decode(f->entry.data, len, &f->arena, &out),
					 KMIPD_EMALFORMED);
		/* ... and so is a longer entry. */
		assert_int_equal(buf_append(&f->entry, "\0\0\0\0\0\0\0\0", 8), 0);
		assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &out),
				 KMIPD_EMALFORMED);
	}
}

static void newer_or_zero_format_is_refused(void **state)
{
	struct fixture *f = *state;
	struct command cmd = base(COMMAND_DESTROY, UID1, T0), out;

	assert_int_equal(command_encode(&cmd, &f->entry), 0);
	f->entry.data[0] = COMMAND_FORMAT + 1;
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &out),
			 KMIPD_EMALFORMED);
	f->entry.data[0] = 0;
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &out),
			 KMIPD_EMALFORMED);
}

static void padding_must_be_zero(void **state)
{
	struct fixture *f = *state;
	struct command cmds[16], out;
	struct object_attr a;
	size_t n = sample_commands(cmds, &a), padded = 0;

	for (size_t i = 0; i < n; i++) {
		size_t body;

		buf_clear(&f->entry);
		assert_int_equal(command_encode(&cmds[i], &f->entry), 0);
		body = (size_t)f->entry.data[1] << 16 | (size_t)f->entry.data[2] << 8 |
		       f->entry.data[3];
		if (4 + body == f->entry.len)
			continue;
		padded++;
		f->entry.data[f->entry.len - 1] = 0x01;
		assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &out),
				 KMIPD_EMALFORMED);
		/* A length that takes a padding byte into the map leaves a stray byte. */
		f->entry.data[f->entry.len - 1] = 0;
		f->entry.data[3]++;
		assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &out),
				 KMIPD_EMALFORMED);
	}
	assert_true(padded > 0);
}

/* Frames @len bytes of hand-written msgpack as an entry, into f->entry. */
static void frame(struct fixture *f, const char *msgpack, size_t len)
{
	uint8_t header[4] = {COMMAND_FORMAT, (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			     (uint8_t)len};

	buf_clear(&f->entry);
	assert_int_equal(buf_append(&f->entry, header, 4), 0);
	assert_int_equal(buf_append(&f->entry, msgpack, len), 0);
	while (f->entry.len % 8 != 0)
		assert_int_equal(buf_append(&f->entry, "", 1), 0);
}

#define DECODES(f, s)                                                                              \
	do {                                                                                       \
		frame(f, s, sizeof(s) - 1);                                                        \
		assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &out), 0); \
	} while (0)
#define REFUSED(f, s)                                                                          \
	do {                                                                                   \
		frame(f, s, sizeof(s) - 1);                                                    \
		assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &out), \
				 KMIPD_EMALFORMED);                                            \
	} while (0)

static void fields_must_match_the_type(void **state)
{
	struct fixture *f = *state;
	struct command out;

	/* {"t": 6 (activate), "ts": 1, "tn": "a", "u": "b"} */
	DECODES(f, "\x84\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xa1"
		   "b");
	assert_int_equal(out.type, COMMAND_ACTIVATE);
	assert_string_equal(out.uid, "b");
	/* Wider integer encodings are read too. */
	DECODES(f, "\x84\xa1t\xcc\x06\xa2ts\xd3\xff\xff\xff\xff\xff\xff\xff\xfe\xa2tn\xa1"
		   "a\xa1u\xa1"
		   "b");
	assert_int_equal(out.time, -2);
	/* Missing uid, a foreign field, a duplicate, an unknown key, an unknown type. */
	REFUSED(f, "\x83\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a");
	REFUSED(f, "\x85\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xa1"
		   "b\xa2"
		   "ai\x01");
	REFUSED(f, "\x85\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xa1"
		   "b\xa1u\xa1"
		   "b");
	REFUSED(f, "\x85\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xa1"
		   "b\xa1z\x01");
	REFUSED(f, "\x84\xa1t\x63\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xa1"
		   "b");
	/* Wrong value types, an empty uid, a uid too long, a NUL inside a string. */
	REFUSED(f, "\x84\xa1t\x06\xa2ts\xc3\xa2tn\xa1"
		   "a\xa1u\xa1"
		   "b");
	REFUSED(f, "\x84\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xc4\x01"
		   "b");
	REFUSED(f, "\x84\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xa0");
	REFUSED(f, "\x84\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xd9\x25"
		   "0123456789012345678901234567890123456");
	REFUSED(f, "\x84\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xa2"
		   "b\x00");
	/* Not a map, a map longer than its entry, an absurd count. */
	REFUSED(f, "\x94\x01\x02\x03\x04");
	REFUSED(f, "\x85\xa1t\x06\xa2ts\x01\xa2tn\xa1"
		   "a\xa1u\xa1"
		   "b");
	REFUSED(f, "\xdf\xff\xff\xff\xff\xa1t\x06");
	/* A str32 claiming more bytes than there are. */
	REFUSED(f, "\x81\xdb\xff\xff\xff\xff");
}

/* Damaged entries: every result is an answer, never a crash (run this under ASan). */
static void damaged_entries_never_crash(void **state)
{
	struct fixture *f = *state;
	struct command cmds[16], out;
	struct object_attr a;
	size_t n = sample_commands(cmds, &a);
	uint32_t rng = 12345;

	for (size_t i = 0; i < n; i++) {
		struct buf copy = BUF_INIT;

		assert_int_equal(command_encode(&cmds[i], &copy), 0);
		for (int round = 0; round < 2000; round++) {
			buf_clear(&f->entry);
			assert_int_equal(buf_append(&f->entry, copy.data, copy.len), 0);
			for (int k = 0; k < 1 + round % 4; k++) {
				rng = rng * 1103515245u + 12345u;
				size_t at = (rng >> 8) % copy.len;
				rng = rng * 1103515245u + 12345u;
				f->entry.data[at] = (uint8_t)(rng >> 16);
			}
			int rc = command_decode(f->entry.data, f->entry.len, &f->arena, &out);
			assert_true(rc == 0 || rc == KMIPD_EMALFORMED);
			arena_reset(&f->arena);
		}
		buf_free(&copy);
	}
}

/* ---- Applying ---- */

/* Proposes @cmd as a leader would (encode) and applies it as a follower would (decode,
 * apply) at Raft index @index, in one write transaction. Returns command_apply's code. */
static int apply_at(struct fixture *f, const struct command *cmd, uint64_t index,
		    struct command_result *result)
{
	struct store_txn *txn;
	struct command decoded;
	int rc;

	buf_clear(&f->entry);
	assert_int_equal(command_encode(cmd, &f->entry), 0);
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &decoded), 0);
	assert_int_equal(store_txn_begin(f->store, true, &txn), 0);
	rc = command_apply(txn, &decoded, 1, index, &f->arena, result);
	if (rc != 0) {
		store_txn_abort(txn);
		return rc;
	}
	assert_int_equal(store_txn_commit(txn), 0);
	return 0;
}

/* Applies @cmd at the next index and returns the result status. */
static int apply(struct fixture *f, const struct command *cmd, struct command_result *result)
{
	assert_int_equal(apply_at(f, cmd, ++f->index, result), 0);
	return result->status;
}

static int status_of(struct fixture *f, struct command cmd)
{
	struct command_result r;

	return apply(f, &cmd, &r);
}

/* The stored object @uid of @tenant, read back into the arena. */
static int get(struct fixture *f, const char *tenant, const char *uid, struct object *obj)
{
	struct store_txn *txn;
	int rc;

	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	rc = store_object_get(txn, tenant, uid, &f->arena, obj);
	store_txn_abort(txn);
	return rc;
}

static uint64_t applied(struct fixture *f)
{
	struct store_txn *txn;
	uint64_t index;

	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	assert_int_equal(store_applied_index(txn, &index), 0);
	store_txn_abort(txn);
	return index;
}

/* Tenant acme with a Pre-Active key UID1 created at T0. */
static void create(struct fixture *f, const char *uid)
{
	struct object_attr a;

	if (f->index == 0)
		assert_int_equal(status_of(f, tenant_create(TENANT, T0)), 0);
	assert_int_equal(status_of(f, object_create(uid, T0, &a)), 0);
}

#define OK(f, cmd)		   assert_int_equal(status_of(f, cmd), 0)
#define FAILS(f, cmd, status)	   assert_int_equal(status_of(f, cmd), status)
#define ACTIVATE(uid, t)	   base(COMMAND_ACTIVATE, uid, t)
#define DESTROY(uid, t)		   base(COMMAND_DESTROY, uid, t)
#define REVOKE(uid, t, code)	   revoke_cmd(uid, t, KMIP_REVOCATION_##code, NULL, 0)
#define ADD(uid, t, name, v)	   attr_cmd(COMMAND_ATTR_ADD, uid, t, name, 0, v, sizeof(v))
#define MODIFY(uid, t, name, i, v) attr_cmd(COMMAND_ATTR_MODIFY, uid, t, name, i, v, sizeof(v))
#define DELETE(uid, t, name, i)	   attr_cmd(COMMAND_ATTR_DELETE, uid, t, name, i, NULL, 0)

static uint32_t state_of(struct fixture *f, const char *uid)
{
	struct object obj;

	assert_int_equal(get(f, TENANT, uid, &obj), 0);
	return obj.state;
}

static void full_lifecycle_records_command_times(void **state)
{
	struct fixture *f = *state;
	struct command_result r;
	struct object obj;
	struct command cmd;

	create(f, UID1);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.state, KMIP_STATE_PRE_ACTIVE);
	assert_int_equal(obj.initial_date, T0);
	assert_int_equal(obj.last_change_date, T0);

	cmd = ACTIVATE(UID1, T0 + 10);
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(r.state, KMIP_STATE_ACTIVE);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.state, KMIP_STATE_ACTIVE);
	assert_int_equal(obj.activation_date, T0 + 10);
	assert_int_equal(obj.last_change_date, T0 + 10);

	cmd = revoke_cmd(UID1, T0 + 20, KMIP_REVOCATION_CESSATION_OF_OPERATION, "retired", 0);
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(r.state, KMIP_STATE_DEACTIVATED);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.state, KMIP_STATE_DEACTIVATED);
	assert_int_equal(obj.deactivation_date, T0 + 20);
	assert_int_equal(obj.revocation_code, KMIP_REVOCATION_CESSATION_OF_OPERATION);
	assert_string_equal(obj.revocation_message, "retired");
	assert_int_equal(obj.compromise_date, 0);
	assert_int_equal(obj.last_change_date, T0 + 20);
	assert_int_equal(obj.sealed_len, sizeof(sealed));

	cmd = DESTROY(UID1, T0 + 30);
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(r.state, KMIP_STATE_DESTROYED);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.state, KMIP_STATE_DESTROYED);
	assert_int_equal(obj.destroy_date, T0 + 30);
	assert_int_equal(obj.last_change_date, T0 + 30);
	assert_int_equal(obj.sealed_len, 0);
	assert_null(obj.sealed);
	/* The metadata stays. */
	assert_int_equal(obj.activation_date, T0 + 10);
	assert_int_equal(obj.deactivation_date, T0 + 20);
	assert_int_equal(obj.attr_count, 1);
	assert_string_equal(obj.attrs[0].name, "Cryptographic Algorithm");

	/* A destroyed object's metadata can still change; it cannot come back to life. */
	OK(f, ADD(UID1, T0 + 40, "x-note", text_one));
	FAILS(f, ACTIVATE(UID1, T0 + 50), KMIPD_ESTATE);
	FAILS(f, DESTROY(UID1, T0 + 50), KMIPD_ESTATE);
	FAILS(f, REVOKE(UID1, T0 + 50, SUPERSEDED), KMIPD_ESTATE);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.last_change_date, T0 + 40);
}

static void activate_twice_is_refused(void **state)
{
	struct fixture *f = *state;
	struct command cmd = ACTIVATE(UID1, T0 + 2);
	struct command_result r;
	struct object obj;

	create(f, UID1);
	OK(f, ACTIVATE(UID1, T0 + 1));
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ESTATE);
	assert_int_equal(r.state, KMIP_STATE_ACTIVE);
	assert_non_null(strstr(r.message, "is Active, only a Pre-Active object can be activated"));
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.activation_date, T0 + 1);
	assert_int_equal(obj.last_change_date, T0 + 1);
}

static void destroying_an_active_object_is_refused(void **state)
{
	struct fixture *f = *state;
	struct command cmd = DESTROY(UID1, T0 + 2);
	struct command_result r;
	struct object obj;

	create(f, UID1);
	OK(f, ACTIVATE(UID1, T0 + 1));
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ESTATE);
	assert_non_null(strstr(r.message, "must be revoked before it is destroyed"));
	assert_int_equal(r.state, KMIP_STATE_ACTIVE);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.sealed_len, sizeof(sealed));
	assert_int_equal(obj.destroy_date, 0);
}

static void compromise_then_destroy(void **state)
{
	struct fixture *f = *state;
	struct command cmd;
	struct command_result r;
	struct object obj;

	create(f, UID1);
	OK(f, ACTIVATE(UID1, T0 + 1));
	cmd = revoke_cmd(UID1, T0 + 5, KMIP_REVOCATION_KEY_COMPROMISE, "leaked", T0 + 2);
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(r.state, KMIP_STATE_COMPROMISED);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.compromise_date, T0 + 5);
	assert_int_equal(obj.compromise_occurrence_date, T0 + 2);
	assert_int_equal(obj.revocation_code, KMIP_REVOCATION_KEY_COMPROMISE);
	assert_string_equal(obj.revocation_message, "leaked");
	assert_int_equal(obj.deactivation_date, 0);

	/* Only another compromise can still be recorded, and it keeps the first dates. */
	FAILS(f, REVOKE(UID1, T0 + 6, SUPERSEDED), KMIPD_ESTATE);
	OK(f, REVOKE(UID1, T0 + 7, CA_COMPROMISE));
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.compromise_date, T0 + 5);
	assert_int_equal(obj.compromise_occurrence_date, T0 + 2);

	cmd = DESTROY(UID1, T0 + 8);
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(r.state, KMIP_STATE_DESTROYED_COMPROMISED);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.destroy_date, T0 + 8);
	assert_null(obj.sealed);
	FAILS(f, DESTROY(UID1, T0 + 9), KMIPD_ESTATE);
	OK(f, REVOKE(UID1, T0 + 9, KEY_COMPROMISE));
	assert_int_equal(state_of(f, UID1), KMIP_STATE_DESTROYED_COMPROMISED);
}

static void compromise_of_a_destroyed_object(void **state)
{
	struct fixture *f = *state;
	struct object obj;

	create(f, UID1);
	OK(f, DESTROY(UID1, T0 + 1)); /* straight from Pre-Active */
	assert_int_equal(state_of(f, UID1), KMIP_STATE_DESTROYED);
	OK(f, REVOKE(UID1, T0 + 2, KEY_COMPROMISE));
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.state, KMIP_STATE_DESTROYED_COMPROMISED);
	assert_int_equal(obj.compromise_date, T0 + 2);
	assert_int_equal(obj.compromise_occurrence_date, T0 + 2); /* none given: the time */
	assert_int_equal(obj.destroy_date, T0 + 1);
}

static void revoke_pre_active_and_deactivated(void **state)
{
	struct fixture *f = *state;
	struct object obj;

	create(f, UID1);
	OK(f, REVOKE(UID1, T0 + 1, AFFILIATION_CHANGED));
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.state, KMIP_STATE_DEACTIVATED);
	assert_int_equal(obj.deactivation_date, T0 + 1);
	/* Revoking a deactivated object again keeps its deactivation date. */
	OK(f, REVOKE(UID1, T0 + 2, SUPERSEDED));
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.state, KMIP_STATE_DEACTIVATED);
	assert_int_equal(obj.deactivation_date, T0 + 1);
	assert_int_equal(obj.revocation_code, KMIP_REVOCATION_SUPERSEDED);
	assert_null(obj.revocation_message);
	/* A deactivated key can still turn out compromised. */
	OK(f, REVOKE(UID1, T0 + 3, KEY_COMPROMISE));
	assert_int_equal(state_of(f, UID1), KMIP_STATE_COMPROMISED);
	FAILS(f, ACTIVATE(UID1, T0 + 4), KMIPD_ESTATE);
}

static void attribute_add_assigns_indexes(void **state)
{
	struct fixture *f = *state;
	struct command cmd;
	struct command_result r;
	struct object obj;

	create(f, UID1);
	for (uint32_t i = 0; i < 3; i++) {
		cmd = ADD(UID1, T0 + 1 + i, "x-tag", text_one);
		assert_int_equal(apply(f, &cmd, &r), 0);
		assert_int_equal(r.index, i);
	}
	cmd = ADD(UID1, T0 + 10, "x-tag", text_two);
	cmd.single_instance = true;
	assert_int_equal(apply(f, &cmd, &r), KMIPD_EEXISTS);

	cmd = ADD(UID1, T0 + 11, "x-single", text_two);
	cmd.single_instance = true;
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(r.index, 0);
	assert_int_equal(apply(f, &cmd, &r), KMIPD_EEXISTS);

	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.attr_count, 5);
	assert_int_equal(obj.last_change_date, T0 + 11);
	assert_non_null(object_attr_find(&obj, "x-tag", 2));
	assert_memory_equal(object_attr_find(&obj, "x-single", 0)->value, text_two,
			    sizeof(text_two));

	/* After a delete the next index is still one past the highest. */
	OK(f, DELETE(UID1, T0 + 12, "x-tag", 1));
	cmd = ADD(UID1, T0 + 13, "x-tag", text_one);
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(r.index, 3);
}

/* A command resubmitted with the same request id after its outcome was lost is answered
 * as the first time and changes nothing; another id is a new command. */
static void resubmitted_request_is_applied_once(void **state)
{
	struct fixture *f = *state;
	struct command cmd, decoded;
	struct command_result first, again;
	struct object obj;

	create(f, UID1);
	cmd = ADD(UID1, T0 + 1, "x-tag", text_one);
	memset(cmd.request_id, 0xA5, sizeof(cmd.request_id));
	assert_true(command_has_request_id(&cmd));

	/* The id survives encoding. */
	buf_clear(&f->entry);
	assert_int_equal(command_encode(&cmd, &f->entry), 0);
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &decoded), 0);
	assert_memory_equal(decoded.request_id, cmd.request_id, sizeof(cmd.request_id));

	assert_int_equal(apply(f, &cmd, &first), 0);
	assert_int_equal(first.index, 0);
	assert_int_equal(apply(f, &cmd, &again), 0);
	assert_int_equal(again.index, first.index);
	assert_int_equal(again.state, first.state);
	assert_int_equal(applied(f), f->index); /* the entry is consumed all the same */
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(object_attr_count(&obj, "x-tag", NULL), 1);

	/* A refusal is remembered as a refusal. */
	cmd = ACTIVATE(UID1, T0 + 2);
	memset(cmd.request_id, 0x5A, sizeof(cmd.request_id));
	assert_int_equal(apply(f, &cmd, &first), 0);
	cmd.time = T0 + 3;
	assert_int_equal(apply(f, &cmd, &again), 0);
	assert_int_equal(state_of(f, UID1), KMIP_STATE_ACTIVE);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.activation_date, T0 + 2);

	/* A different id is a different command: adds a second instance. */
	cmd = ADD(UID1, T0 + 4, "x-tag", text_one);
	memset(cmd.request_id, 0x11, sizeof(cmd.request_id));
	assert_int_equal(apply(f, &cmd, &again), 0);
	assert_int_equal(again.index, 1);
}

static void modify_and_delete_need_the_instance(void **state)
{
	struct fixture *f = *state;
	struct command cmd;
	struct command_result r;
	struct object obj;

	create(f, UID1);
	OK(f, ADD(UID1, T0 + 1, "x-tag", text_one));

	cmd = MODIFY(UID1, T0 + 2, "x-tag", 1, text_two);
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ENOT_FOUND);
	assert_non_null(strstr(r.message, UID1 " has no attribute x-tag with index 1"));
	FAILS(f, MODIFY(UID1, T0 + 2, "x-other", 0, text_two), KMIPD_ENOT_FOUND);
	FAILS(f, DELETE(UID1, T0 + 2, "x-tag", 1), KMIPD_ENOT_FOUND);
	FAILS(f, DELETE(UID1, T0 + 2, "x-other", 0), KMIPD_ENOT_FOUND);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.last_change_date, T0 + 1);

	OK(f, MODIFY(UID1, T0 + 3, "x-tag", 0, text_two));
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_memory_equal(object_attr_find(&obj, "x-tag", 0)->value, text_two, sizeof(text_two));
	assert_int_equal(obj.last_change_date, T0 + 3);

	OK(f, DELETE(UID1, T0 + 4, "x-tag", 0));
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_null(object_attr_find(&obj, "x-tag", 0));
	assert_int_equal(obj.attr_count, 1);
	assert_int_equal(obj.last_change_date, T0 + 4);
}

static void replayed_entries_change_nothing(void **state)
{
	struct fixture *f = *state;
	struct command cmd = ADD(UID1, T0 + 1, "x-tag", text_one);
	struct command_result r;
	struct object obj;
	uint64_t at;

	create(f, UID1);
	assert_int_equal(apply(f, &cmd, &r), 0);
	at = f->index;
	assert_int_equal(applied(f), at);

	/* The same entry again (a restart replays the log), and an older one. */
	assert_int_equal(apply_at(f, &cmd, at, &r), 0);
	assert_int_equal(r.status, 0);
	cmd = ACTIVATE(UID1, T0 + 2);
	assert_int_equal(apply_at(f, &cmd, at - 1, &r), 0);
	assert_int_equal(r.status, 0);

	assert_int_equal(applied(f), at);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.attr_count, 2);
	assert_int_equal(obj.state, KMIP_STATE_PRE_ACTIVE);
	assert_int_equal(obj.last_change_date, T0 + 1);

	/* The next index applies. */
	assert_int_equal(apply_at(f, &cmd, at + 5, &r), 0);
	assert_int_equal(r.state, KMIP_STATE_ACTIVE);
	assert_int_equal(applied(f), at + 5);
}

static void refused_commands_still_advance_the_index(void **state)
{
	struct fixture *f = *state;
	struct command cmd = ACTIVATE(UID2, T0 + 1);
	struct command_result r;
	struct object_attr a;

	create(f, UID1);
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ENOT_FOUND);
	assert_string_equal(r.message, "no object with Unique Identifier " UID2);
	assert_int_equal(applied(f), f->index);

	FAILS(f, tenant_create(TENANT, T0 + 2), KMIPD_EEXISTS);
	assert_int_equal(applied(f), f->index);
	FAILS(f, object_create(UID1, T0 + 3, &a), KMIPD_EEXISTS);
	assert_int_equal(applied(f), f->index);
	assert_int_equal(state_of(f, UID1), KMIP_STATE_PRE_ACTIVE);
}

static void another_tenant_sees_nothing(void **state)
{
	struct fixture *f = *state;
	struct command cmd;
	struct command_result r;
	struct object obj;

	create(f, UID1);
	OK(f, tenant_create("other", T0));
	cmd = ACTIVATE(UID1, T0 + 1);
	strcpy(cmd.tenant, "other");
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ENOT_FOUND);
	assert_string_equal(r.message, "no object with Unique Identifier " UID1);
	cmd = DELETE(UID1, T0 + 1, "Cryptographic Algorithm", 0);
	strcpy(cmd.tenant, "other");
	FAILS(f, cmd, KMIPD_ENOT_FOUND);
	assert_int_equal(get(f, "other", UID1, &obj), KMIPD_ENOT_FOUND);
	assert_int_equal(state_of(f, UID1), KMIP_STATE_PRE_ACTIVE);
}

/* Deleting a tenant destroys its objects and leaves a record without its KEK; the tenant
 * can be made again, empty; deleting what is not there is refused. */
static void tenant_delete_shreds_and_allows_recreation(void **state)
{
	struct fixture *f = *state;
	struct command cmd, decoded;
	struct command_result r;
	struct store_tenant t;
	struct store_txn *txn;
	struct object obj;

	create(f, UID1);
	create(f, UID2);
	cmd = base(COMMAND_TENANT_DELETE, NULL, T0 + 50);
	buf_clear(&f->entry);
	assert_int_equal(command_encode(&cmd, &f->entry), 0);
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &decoded), 0);
	assert_int_equal(decoded.type, COMMAND_TENANT_DELETE);
	assert_string_equal(decoded.tenant, TENANT);
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(r.index, 2); /* objects destroyed */
	assert_int_equal(get(f, TENANT, UID1, &obj), KMIPD_ENOT_FOUND);
	assert_int_equal(get(f, TENANT, UID2, &obj), KMIPD_ENOT_FOUND);
	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	assert_int_equal(store_tenant_get(txn, TENANT, &f->arena, &t), 0);
	store_txn_abort(txn);
	assert_true(t.deleted == T0 + 50);
	assert_int_equal(t.wrapped_kek_len, 0);

	/* Again: there is no such tenant any more. */
	cmd.time = T0 + 51;
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ENOT_FOUND);
	assert_string_equal(r.message, "no tenant " TENANT);
	/* Made again, empty, with a new KEK. */
	assert_int_equal(status_of(f, tenant_create(TENANT, T0 + 60)), 0);
	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	assert_int_equal(store_tenant_get(txn, TENANT, &f->arena, &t), 0);
	store_txn_abort(txn);
	assert_true(t.deleted == 0 && t.created == T0 + 60 && t.wrapped_kek_len > 0);
	assert_int_equal(get(f, TENANT, UID1, &obj), KMIPD_ENOT_FOUND);
	/* A tenant that was never made cannot be deleted either. */
	cmd = base(COMMAND_TENANT_DELETE, NULL, T0 + 70);
	strcpy(cmd.tenant, "never");
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ENOT_FOUND);
}

/* A KEK rewrapped by its provider replaces the stored form only if that is the form it
 * names: of several nodes offering the same rewrap, the first wins and the rest are refused
 * without changing anything. */
static void tenant_rewrap_replaces_only_the_form_it_names(void **state)
{
	static const uint8_t old[] = {9, 8, 7, 6, 5, 4, 3, 2, 1}; /* tenant_create's */
	static const uint8_t new_form[] = "eyJjaXBoZXJ0ZXh0IjoiLi4uIn0=";
	struct fixture *f = *state;
	struct command cmd = base(COMMAND_TENANT_REWRAP, NULL, T0 + 5), decoded;
	struct command_result r;
	struct store_tenant t;
	struct store_txn *txn;

	OK(f, tenant_create(TENANT, T0));
	cmd.tenant_record.wrapped_kek = new_form;
	cmd.tenant_record.wrapped_kek_len = sizeof(new_form) - 1;
	cmd.old_kek = old;
	cmd.old_kek_len = sizeof(old);
	buf_clear(&f->entry);
	assert_int_equal(command_encode(&cmd, &f->entry), 0);
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &decoded), 0);
	assert_int_equal(decoded.type, COMMAND_TENANT_REWRAP);
	assert_string_equal(decoded.tenant, TENANT);
	assert_int_equal(decoded.old_kek_len, sizeof(old));
	assert_memory_equal(decoded.old_kek, old, sizeof(old));
	assert_int_equal(decoded.tenant_record.wrapped_kek_len, sizeof(new_form) - 1);

	assert_int_equal(apply(f, &decoded, &r), 0);
	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	assert_int_equal(store_tenant_get(txn, TENANT, &f->arena, &t), 0);
	store_txn_abort(txn);
	assert_int_equal(t.wrapped_kek_len, sizeof(new_form) - 1);
	assert_memory_equal(t.wrapped_kek, new_form, sizeof(new_form) - 1);
	assert_true(t.created == T0 && strcmp(t.provider, "local") == 0);

	/* The same offer from another node: the stored form is not the old one any more. */
	cmd.time = T0 + 6;
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ESTATE);
	assert_string_equal(r.message,
			    "tenant " TENANT "'s key-encryption key was rewrapped already");
	/* A tenant that does not exist. */
	strcpy(cmd.tenant, "never");
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ENOT_FOUND);
	/* Without the form it replaces, the entry is malformed. */
	cmd.old_kek_len = 0;
	buf_clear(&f->entry);
	assert_int_equal(command_encode(&cmd, &f->entry), 0);
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &decoded),
			 KMIPD_EMALFORMED);
}

/* A rotation keeps the old KEK as retiring; each object's material is re-sealed only from
 * the version it still holds to the current one; the old KEK is retired only once no
 * object needs it; a second rotation waits for that. */
static void kek_rotation_reseals_then_retires(void **state)
{
	/* Sealed blobs as the apply sees them: only their header is read. */
	static const uint8_t under_v1[1 + 12 + 4 + 16] = {CRYPTO_SEAL_VERSION};
	static const uint8_t under_v2[5 + 12 + 4 + 16] = {CRYPTO_SEAL_VERSION_KEK, 0, 0, 0, 2};
	static const uint8_t new_kek[] = "wrapped-v2";
	struct fixture *f = *state;
	struct command cmd, c1, c2;
	struct command_result r;
	struct object_attr a1, a2;
	struct store_tenant t;
	struct store_txn *txn;
	struct object obj;

	OK(f, tenant_create(TENANT, T0));
	c1 = object_create(UID1, T0, &a1);
	c2 = object_create(UID2, T0, &a2);
	c1.object.sealed = c2.object.sealed = under_v1;
	c1.object.sealed_len = c2.object.sealed_len = sizeof(under_v1);
	OK(f, c1);
	OK(f, c2);

	cmd = base(COMMAND_KEK_ROTATE, NULL, T0 + 1);
	cmd.tenant_record.wrapped_kek = new_kek;
	cmd.tenant_record.wrapped_kek_len = sizeof(new_kek) - 1;
	cmd.kek_version = 3;
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ESTATE);
	assert_string_equal(r.message,
			    "tenant " TENANT "'s key-encryption key is at version 1, not 2");
	cmd.kek_version = 2;
	assert_int_equal(apply(f, &cmd, &r), 0);
	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	assert_int_equal(store_tenant_get(txn, TENANT, &f->arena, &t), 0);
	store_txn_abort(txn);
	assert_int_equal(t.kek_version, 2);
	assert_int_equal(t.retiring_version, 1);
	assert_int_equal(t.retiring_kek_len, 9); /* tenant_create's wrapped KEK */
	assert_memory_equal(t.wrapped_kek, new_kek, sizeof(new_kek) - 1);
	cmd.kek_version = 3;
	FAILS(f, cmd, KMIPD_ESTATE); /* version 1 is still retiring */

	/* Retiring version 1 while two objects still need it. */
	cmd = base(COMMAND_KEK_RETIRE, NULL, T0 + 2);
	cmd.kek_version = 1;
	assert_int_equal(apply(f, &cmd, &r), KMIPD_ESTATE);
	assert_int_equal(r.index, 2);

	cmd = base(COMMAND_RESEAL, UID1, T0 + 3);
	cmd.kek_version = 1;
	cmd.sealed = under_v1; /* not under the current KEK */
	cmd.sealed_len = sizeof(under_v1);
	FAILS(f, cmd, KMIPD_ESTATE);
	cmd.sealed = under_v2;
	cmd.sealed_len = sizeof(under_v2);
	OK(f, cmd);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(obj.sealed_len, sizeof(under_v2));
	assert_int_equal(obj.state, KMIP_STATE_PRE_ACTIVE);
	assert_int_equal(obj.attr_count, 1);
	FAILS(f, cmd, KMIPD_ESTATE); /* already re-sealed */
	strcpy(cmd.uid, UID2);
	OK(f, cmd);
	strcpy(cmd.uid, "no-such-object");
	FAILS(f, cmd, KMIPD_ENOT_FOUND);

	cmd = base(COMMAND_KEK_RETIRE, NULL, T0 + 4);
	cmd.kek_version = 2;
	FAILS(f, cmd, KMIPD_ESTATE); /* the current one is not retiring */
	cmd.kek_version = 1;
	OK(f, cmd);
	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	assert_int_equal(store_tenant_get(txn, TENANT, &f->arena, &t), 0);
	store_txn_abort(txn);
	assert_int_equal(t.kek_version, 2);
	assert_int_equal(t.retiring_version, 0);
	assert_int_equal(t.retiring_kek_len, 0);

	/* A Create sealed by a node that still had version 1 as current, ordered after the
	 * retirement, would be unreadable: it is refused. */
	c1 = object_create("uid-late", T0 + 4, &a1);
	c1.object.sealed = under_v1;
	c1.object.sealed_len = sizeof(under_v1);
	assert_int_equal(apply(f, &c1, &r), KMIPD_ESTATE);
	assert_non_null(strstr(r.message, "version 1, which tenant " TENANT " no longer has"));
	c1.object.sealed = under_v2;
	c1.object.sealed_len = sizeof(under_v2);
	OK(f, c1);

	cmd = base(COMMAND_KEK_ROTATE, NULL, T0 + 5);
	cmd.tenant_record.wrapped_kek = new_kek;
	cmd.tenant_record.wrapped_kek_len = sizeof(new_kek) - 1;
	cmd.kek_version = 3;
	OK(f, cmd);
}

/* ---- Client certificates ---- */

#define FP_A "aaaa000000000000000000000000000000000000000000000000000000000001"
#define FP_B "bbbb000000000000000000000000000000000000000000000000000000000002"
#define FP_C "cccc000000000000000000000000000000000000000000000000000000000003"

static const uint8_t der_bytes[] = {0x30, 0x03, 0x02, 0x01, 0x07}; /* opaque to the store */

static struct command cert_add(const char *fp, const char *client, enum store_cert_kind kind,
			       int64_t time)
{
	struct command cmd = base(COMMAND_CERT_ADD, NULL, time);

	strcpy(cmd.cert.fingerprint, fp);
	strcpy(cmd.cert.client, client);
	cmd.cert.kind = kind;
	cmd.cert.der = der_bytes;
	cmd.cert.der_len = sizeof(der_bytes);
	if (kind == STORE_CERT_CA)
		memset(cmd.cert.subject_hash, 0x5a, sizeof(cmd.cert.subject_hash));
	return cmd;
}

static struct command cert_delete(const char *tenant, const char *fp, int64_t time)
{
	struct command cmd = base(COMMAND_CERT_DELETE, NULL, time);

	strcpy(cmd.tenant, tenant);
	strcpy(cmd.cert.fingerprint, fp);
	return cmd;
}

static int cert_get(struct fixture *f, const char *fp, struct store_cert *out)
{
	struct store_txn *txn;
	int rc;

	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	rc = store_cert_get(txn, fp, &f->arena, out);
	store_txn_abort(txn);
	return rc;
}

static int count_cert(const struct store_cert *cert, void *arg)
{
	(void)cert;
	(*(int *)arg)++;
	return 0;
}

/* How many CA records answer for the subject hash cert_add() gives CAs, and how many
 * records @tenant has. */
static void cert_counts(struct fixture *f, const char *tenant, int *issuers, int *records)
{
	uint8_t hash[32];
	struct store_txn *txn;

	memset(hash, 0x5a, sizeof(hash));
	*issuers = *records = 0;
	assert_int_equal(store_txn_begin(f->store, false, &txn), 0);
	assert_int_equal(store_cert_issuer_foreach(txn, hash, &f->arena, count_cert, issuers), 0);
	assert_int_equal(store_cert_foreach(txn, tenant, &f->arena, count_cert, records), 0);
	store_txn_abort(txn);
}

/* Certificates: added to a live tenant once, found by fingerprint and (CAs) by subject;
 * deleted only through their own tenant; an issued one stays as deleted; a tenant's
 * deletion takes its certificates with it. */
static void certificates_are_added_and_deleted(void **state)
{
	struct fixture *f = *state;
	struct command cmd, decoded;
	struct command_result r;
	struct store_cert rec;
	int issuers, records;

	OK(f, tenant_create(TENANT, T0));
	OK(f, tenant_create("other", T0));

	cmd = cert_add(FP_A, "vcenter", STORE_CERT_PINNED, T0 + 1);
	buf_clear(&f->entry);
	assert_int_equal(command_encode(&cmd, &f->entry), 0);
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, &decoded), 0);
	assert_int_equal(decoded.type, COMMAND_CERT_ADD);
	assert_string_equal(decoded.cert.fingerprint, FP_A);
	assert_string_equal(decoded.cert.client, "vcenter");
	assert_string_equal(decoded.cert.tenant, TENANT);
	assert_int_equal(decoded.cert.kind, STORE_CERT_PINNED);
	assert_memory_equal(decoded.cert.der, der_bytes, sizeof(der_bytes));
	assert_true(decoded.cert.added == T0 + 1);

	OK(f, cmd);
	assert_int_equal(cert_get(f, FP_A, &rec), 0);
	assert_string_equal(rec.tenant, TENANT);
	assert_string_equal(rec.client, "vcenter");
	assert_int_equal(rec.kind, STORE_CERT_PINNED);
	assert_true(rec.added == T0 + 1 && rec.deleted == 0);

	/* One certificate, one client: not again, not for another tenant. */
	assert_int_equal(apply(f, &cmd, &r), KMIPD_EEXISTS);
	assert_string_equal(r.message, "certificate aaaa000000000000... already belongs to client "
				       "vcenter of tenant " TENANT);
	cmd = cert_add(FP_A, "x", STORE_CERT_PINNED, T0 + 2);
	strcpy(cmd.tenant, "other");
	FAILS(f, cmd, KMIPD_EEXISTS);
	cmd = cert_add(FP_B, "x", STORE_CERT_PINNED, T0 + 2);
	strcpy(cmd.tenant, "never");
	FAILS(f, cmd, KMIPD_ENOT_FOUND);

	OK(f, cert_add(FP_B, "vmca", STORE_CERT_CA, T0 + 3));
	OK(f, cert_add(FP_C, "esxi", STORE_CERT_ISSUED, T0 + 4));
	cert_counts(f, TENANT, &issuers, &records);
	assert_int_equal(issuers, 1);
	assert_int_equal(records, 3);

	/* Another tenant cannot delete them. */
	FAILS(f, cert_delete("other", FP_A, T0 + 5), KMIPD_ENOT_FOUND);
	OK(f, cert_delete(TENANT, FP_A, T0 + 5));
	assert_int_equal(cert_get(f, FP_A, &rec), KMIPD_ENOT_FOUND);
	OK(f, cert_delete(TENANT, FP_B, T0 + 6));
	cert_counts(f, TENANT, &issuers, &records);
	assert_int_equal(issuers, 0);
	/* The issued one is kept, as deleted, and cannot be deleted twice. */
	OK(f, cert_delete(TENANT, FP_C, T0 + 7));
	assert_int_equal(cert_get(f, FP_C, &rec), 0);
	assert_true(rec.deleted == T0 + 7);
	FAILS(f, cert_delete(TENANT, FP_C, T0 + 8), KMIPD_ENOT_FOUND);
	/* ... and may be added again. */
	OK(f, cert_add(FP_C, "esxi", STORE_CERT_ISSUED, T0 + 9));
	assert_int_equal(cert_get(f, FP_C, &rec), 0);
	assert_true(rec.deleted == 0);

	/* Deleting the tenant forgets its certificates. */
	OK(f, cert_add(FP_B, "vmca", STORE_CERT_CA, T0 + 10));
	OK(f, base(COMMAND_TENANT_DELETE, NULL, T0 + 11));
	cert_counts(f, TENANT, &issuers, &records);
	assert_int_equal(issuers, 0);
	assert_int_equal(records, 0);
	assert_int_equal(cert_get(f, FP_C, &rec), KMIPD_ENOT_FOUND);
}

/* ---- Batches ---- */

/* Encodes @n commands and joins them into one batch entry in @f->entry. */
static void make_batch(struct fixture *f, const struct command *cmds, size_t n)
{
	struct buf one = BUF_INIT;

	buf_clear(&f->entry);
	for (size_t i = 0; i < n; i++) {
		buf_clear(&one);
		assert_int_equal(command_encode(&cmds[i], &one), 0);
		assert_int_equal(command_batch_add(&f->entry, one.data, one.len), 0);
	}
	buf_free(&one);
}

static void batch_round_trip(void **state)
{
	struct fixture *f = *state;
	struct command cmds[16], out[COMMAND_BATCH_MAX];
	struct object_attr a;
	size_t n = sample_commands(cmds, &a);
	unsigned got;

	make_batch(f, cmds, n);
	assert_int_equal(f->entry.data[0], COMMAND_BATCH);
	assert_int_equal(f->entry.len % 8, 0);
	assert_int_equal(command_entry_decode(f->entry.data, f->entry.len, &f->arena, out,
					      COMMAND_BATCH_MAX, &got),
			 0);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++)
		assert_same_command(&cmds[i], &out[i]);

	/* A plain entry decodes as one command; a batch is not one command. */
	buf_clear(&f->entry);
	assert_int_equal(command_encode(&cmds[1], &f->entry), 0);
	assert_int_equal(command_entry_decode(f->entry.data, f->entry.len, &f->arena, out,
					      COMMAND_BATCH_MAX, &got),
			 0);
	assert_int_equal(got, 1);
	assert_same_command(&cmds[1], &out[0]);
	make_batch(f, cmds, 2);
	assert_int_equal(command_decode(f->entry.data, f->entry.len, &f->arena, out),
			 KMIPD_EMALFORMED);
}

static void batch_add_refuses_what_is_not_one_command(void **state)
{
	struct command cmd = tenant_create(TENANT, T0);
	struct buf one = BUF_INIT, batch = BUF_INIT;

	(void)state;
	assert_int_equal(command_encode(&cmd, &one), 0);
	assert_int_equal(command_batch_add(&batch, one.data, one.len - 8), KMIPD_EINVAL);
	assert_int_equal(batch.len, 0);
	for (unsigned i = 0; i < COMMAND_BATCH_MAX; i++)
		assert_int_equal(command_batch_add(&batch, one.data, one.len), 0);
	assert_int_equal(command_batch_add(&batch, one.data, one.len), KMIPD_EINVAL);
	assert_int_equal(batch.len, 8 + COMMAND_BATCH_MAX * one.len);
	/* A batch is not a member of another. */
	buf_clear(&one);
	assert_int_equal(command_batch_add(&one, batch.data, batch.len), KMIPD_EINVAL);
	buf_free(&one);
	buf_free(&batch);
}

/* Damaged batches are refused whole: wrong counts, bad headers, truncation, extra bytes. */
static void damaged_batches_are_refused(void **state)
{
	struct fixture *f = *state;
	struct command cmds[3], out[COMMAND_BATCH_MAX];
	struct object_attr a;
	unsigned got;
	uint8_t *copy;
	size_t len;

	cmds[0] = tenant_create(TENANT, T0);
	cmds[1] = object_create(UID1, T0, &a);
	cmds[2] = base(COMMAND_ACTIVATE, UID1, T0 + 1);
	make_batch(f, cmds, 3);
	len = f->entry.len;
	copy = malloc(len + 8);
	assert_non_null(copy);
#define BATCH_REFUSED(n)                                                                           \
	assert_int_equal(command_entry_decode(copy, (n), &f->arena, out, COMMAND_BATCH_MAX, &got), \
			 KMIPD_EMALFORMED)
	memcpy(copy, f->entry.data, len);
	copy[3] = 2; /* says two, holds three */
	BATCH_REFUSED(len);
	copy[3] = 4; /* says four */
	BATCH_REFUSED(len);
	copy[3] = 0;
	BATCH_REFUSED(len);
	memcpy(copy, f->entry.data, len);
	copy[5] = 1; /* reserved bytes must be zero */
	BATCH_REFUSED(len);
	memcpy(copy, f->entry.data, len);
	memset(copy + len, 0, 8);
	BATCH_REFUSED(len + 8); /* trailing bytes */
	for (size_t cut = 8; cut < len; cut += 8)
		BATCH_REFUSED(cut);
	memcpy(copy, f->entry.data, len);
	copy[8] = COMMAND_BATCH; /* a batch inside a batch */
	BATCH_REFUSED(len);
	/* More members than the caller has room for. */
	memcpy(copy, f->entry.data, len);
	assert_int_equal(command_entry_decode(copy, len, &f->arena, out, 2, &got),
			 KMIPD_EMALFORMED);
	assert_int_equal(command_entry_decode(copy, len, &f->arena, out, 3, &got), 0);
	assert_int_equal(got, 3);
#undef BATCH_REFUSED
	free(copy);
}

/* The members of a batch apply in order in one entry, each with its own result; a replay
 * of the entry changes nothing; a request id repeated inside the batch applies once. */
static void batch_applies_members_in_order(void **state)
{
	struct fixture *f = *state;
	struct command cmds[5], out[COMMAND_BATCH_MAX];
	struct command_result r[COMMAND_BATCH_MAX];
	struct object_attr a;
	struct store_txn *txn;
	struct object obj;
	unsigned got;

	cmds[0] = tenant_create(TENANT, T0);
	cmds[1] = object_create(UID1, T0, &a);
	cmds[2] = ADD(UID1, T0 + 1, "x-tag", text_one);
	memset(cmds[2].request_id, 0x77, sizeof(cmds[2].request_id));
	cmds[3] = cmds[2];		  /* the same request again, in the same entry */
	cmds[4] = ACTIVATE(UID2, T0 + 2); /* refused: no such object */
	make_batch(f, cmds, 5);
	assert_int_equal(command_entry_decode(f->entry.data, f->entry.len, &f->arena, out,
					      COMMAND_BATCH_MAX, &got),
			 0);
	assert_int_equal(got, 5);
	assert_int_equal(store_txn_begin(f->store, true, &txn), 0);
	assert_int_equal(command_apply(txn, out, got, 7, &f->arena, r), 0);
	assert_int_equal(store_txn_commit(txn), 0);
	assert_int_equal(r[0].status, 0);
	assert_int_equal(r[1].status, 0);
	assert_int_equal(r[1].state, KMIP_STATE_PRE_ACTIVE);
	assert_int_equal(r[2].status, 0);
	assert_int_equal(r[2].index, 0);
	assert_int_equal(r[3].status, 0);
	assert_int_equal(r[3].index, 0); /* answered as the first time */
	assert_int_equal(r[4].status, KMIPD_ENOT_FOUND);
	assert_int_equal(applied(f), 7);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(object_attr_count(&obj, "x-tag", NULL), 1);

	/* Replayed after a restart: skipped whole, every result 0. */
	assert_int_equal(store_txn_begin(f->store, true, &txn), 0);
	assert_int_equal(command_apply(txn, out, got, 7, &f->arena, r), 0);
	assert_int_equal(store_txn_commit(txn), 0);
	for (unsigned i = 0; i < got; i++)
		assert_int_equal(r[i].status, 0);
	assert_int_equal(get(f, TENANT, UID1, &obj), 0);
	assert_int_equal(object_attr_count(&obj, "x-tag", NULL), 1);
	assert_int_equal(applied(f), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(round_trip_every_type),
		T(encode_appends_and_leaves_output_on_error),
		T(every_truncation_is_refused),
		T(newer_or_zero_format_is_refused),
		T(padding_must_be_zero),
		T(fields_must_match_the_type),
		T(damaged_entries_never_crash),
		T(full_lifecycle_records_command_times),
		T(activate_twice_is_refused),
		T(destroying_an_active_object_is_refused),
		T(compromise_then_destroy),
		T(compromise_of_a_destroyed_object),
		T(revoke_pre_active_and_deactivated),
		T(attribute_add_assigns_indexes),
		T(modify_and_delete_need_the_instance),
		T(resubmitted_request_is_applied_once),
		T(replayed_entries_change_nothing),
		T(refused_commands_still_advance_the_index),
		T(another_tenant_sees_nothing),
		T(tenant_delete_shreds_and_allows_recreation),
		T(tenant_rewrap_replaces_only_the_form_it_names),
		T(kek_rotation_reseals_then_retires),
		T(certificates_are_added_and_deleted),
		T(batch_round_trip),
		T(batch_add_refuses_what_is_not_one_command),
		T(damaged_batches_are_refused),
		T(batch_applies_members_in_order),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
