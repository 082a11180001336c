/* Replicated commands: their entry encoding (a format/length header, a msgpack map with
 * short keys, zero padding to 8 bytes) and command_apply(), the state machine that turns an
 * ordered command into one LMDB write on every node.
 *
 * Decoding reads entries that came over the network from another node, so it is a small
 * bounds-checked reader of exactly the msgpack subset the encoder writes: it allocates
 * nothing before it has checked a length, and refuses anything it does not expect. */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "kmipd/command.h"
#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"

#define HEADER_LEN 4

/* The map keys. Each has a bit, so the decoder can refuse duplicates and check that a
 * command carries exactly the fields of its type. */
#define KEYS(X)                                                                  \
	X(TYPE, "t")		 /* uint: enum command_type */                   \
	X(TIME, "ts")		 /* int: the proposer's clock */                 \
	X(TENANT, "tn")		 /* str */                                       \
	X(UID, "u")		 /* str */                                       \
	X(TENANT_NAME, "n")	 /* str: TENANT_CREATE record */                 \
	X(PROVIDER, "p")	 /* str */                                       \
	X(ROOT_KEY_ID, "rk")	 /* str */                                       \
	X(WRAPPED_KEK, "wk")	 /* bin */                                       \
	X(CREATED, "c")		 /* int */                                       \
	X(OBJECT, "o")		 /* bin: object_encode() of the new object */    \
	X(ATTR_NAME, "an")	 /* str */                                       \
	X(ATTR_INDEX, "ai")	 /* uint */                                      \
	X(ATTR_VALUE, "av")	 /* bin: encoded Attribute Value item */         \
	X(SINGLE, "si")		 /* bool */                                      \
	X(REVOCATION_CODE, "rc") /* uint */                                      \
	X(REVOCATION_MSG, "rm")	 /* str, optional */                             \
	X(OCCURRENCE, "cd")	 /* int: compromise occurrence date, 0 = none */ \
	X(REQUEST_ID, "rq")	 /* bin (16), optional: see command_apply */     \
	X(FINGERPRINT, "fp")	 /* str: SHA-256 of a certificate, hex */        \
	X(CLIENT, "cl")		 /* str */                                       \
	X(CERT_KIND, "ck")	 /* uint: enum store_cert_kind */                \
	X(CERT_DER, "cx")	 /* bin: the certificate */                      \
	X(SUBJECT_HASH, "sh")	 /* bin (32): a CA certificate's subject */      \
	X(OLD_KEK, "ok")	 /* bin: TENANT_REWRAP's wrapped KEK replaced */ \
	X(KEK_VERSION, "kv")	 /* uint */                                      \
	X(SEALED, "sm")		 /* bin: RESEAL's material */

enum key {
#define KEY_ENUM_(name, text) KEY_##name,
	KEYS(KEY_ENUM_)
#undef KEY_ENUM_
		KEY_COUNT_
};

static const char *const key_text[KEY_COUNT_] = {
#define KEY_TEXT_(name, text) text,
	KEYS(KEY_TEXT_)
#undef KEY_TEXT_
};

#define BIT(key) (1u << KEY_##key)
#define COMMON	 (BIT(TYPE) | BIT(TIME))
#define TARGET	 (COMMON | BIT(TENANT) | BIT(UID))

/* The keys each type must carry and the keys it may carry (index: enum command_type). */
static const struct {
	uint32_t required;
	uint32_t allowed;
} type_keys[] = {
	[COMMAND_TENANT_CREATE] = {COMMON | BIT(TENANT_NAME) | BIT(PROVIDER) | BIT(ROOT_KEY_ID) |
					   BIT(WRAPPED_KEK) | BIT(CREATED),
				   0},
	[COMMAND_OBJECT_CREATE] = {COMMON | BIT(OBJECT), 0},
	[COMMAND_ATTR_ADD] = {TARGET | BIT(ATTR_NAME) | BIT(ATTR_VALUE) | BIT(SINGLE), 0},
	[COMMAND_ATTR_MODIFY] = {TARGET | BIT(ATTR_NAME) | BIT(ATTR_INDEX) | BIT(ATTR_VALUE), 0},
	[COMMAND_ATTR_DELETE] = {TARGET | BIT(ATTR_NAME) | BIT(ATTR_INDEX), 0},
	[COMMAND_ACTIVATE] = {TARGET, 0},
	[COMMAND_REVOKE] = {TARGET | BIT(REVOCATION_CODE) | BIT(OCCURRENCE), BIT(REVOCATION_MSG)},
	[COMMAND_DESTROY] = {TARGET, 0},
	[COMMAND_TENANT_DELETE] = {COMMON | BIT(TENANT), 0},
	[COMMAND_CERT_ADD] = {COMMON | BIT(TENANT) | BIT(FINGERPRINT) | BIT(CLIENT) |
				      BIT(CERT_KIND) | BIT(CERT_DER),
			      BIT(SUBJECT_HASH)},
	[COMMAND_CERT_DELETE] = {COMMON | BIT(TENANT) | BIT(FINGERPRINT), 0},
	[COMMAND_TENANT_REWRAP] = {COMMON | BIT(TENANT) | BIT(WRAPPED_KEK) | BIT(OLD_KEK), 0},
	[COMMAND_KEK_ROTATE] = {COMMON | BIT(TENANT) | BIT(WRAPPED_KEK) | BIT(KEK_VERSION), 0},
	[COMMAND_RESEAL] = {TARGET | BIT(KEK_VERSION) | BIT(SEALED), 0},
	[COMMAND_KEK_RETIRE] = {COMMON | BIT(TENANT) | BIT(KEK_VERSION), 0},
};

unsigned command_level(enum command_type type)
{
	return type >= COMMAND_TENANT_REWRAP ? 3 : 2;
}

static bool type_known(uint64_t type)
{
	return type >= COMMAND_TENANT_CREATE && type <= COMMAND_KEK_RETIRE;
}

/* ---- Encoding ---------------------------------------------------------------------- */

/* msgpack's write callback, appending to a struct buf. */
static int buf_write(void *data, const char *bytes, size_t len)
{
	return buf_append(data, bytes, len) == 0 ? 0 : -1;
}

static int pack_key(msgpack_packer *pk, enum key key)
{
	size_t len = strlen(key_text[key]);

	if (msgpack_pack_str(pk, len) != 0)
		return -1;
	return msgpack_pack_str_body(pk, key_text[key], len);
}

static int pack_str(msgpack_packer *pk, enum key key, const char *s)
{
	size_t len;

	if (s == NULL)
		s = "";
	len = strlen(s);
	if (pack_key(pk, key) != 0 || msgpack_pack_str(pk, len) != 0)
		return -1;
	return msgpack_pack_str_body(pk, s, len);
}

static int pack_bin(msgpack_packer *pk, enum key key, const uint8_t *p, size_t len)
{
	if (pack_key(pk, key) != 0 || msgpack_pack_bin(pk, len) != 0)
		return -1;
	return len == 0 ? 0 : msgpack_pack_bin_body(pk, p, len);
}

static int pack_uint(msgpack_packer *pk, enum key key, uint64_t v)
{
	if (pack_key(pk, key) != 0)
		return -1;
	return msgpack_pack_uint64(pk, v);
}

static int pack_int(msgpack_packer *pk, enum key key, int64_t v)
{
	if (pack_key(pk, key) != 0)
		return -1;
	return msgpack_pack_int64(pk, v);
}

static int pack_bool(msgpack_packer *pk, enum key key, bool v)
{
	if (pack_key(pk, key) != 0)
		return -1;
	return v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

static unsigned popcount(uint32_t v)
{
	unsigned n = 0;

	for (; v != 0; v &= v - 1)
		n++;
	return n;
}

/* Packs the map; -1 when @out could not grow. @object is the encoded object (OBJECT_CREATE). */
static int pack_command(msgpack_packer *pk, const struct command *cmd, const struct buf *object)
{
	uint32_t keys = type_keys[cmd->type].required;
	const struct store_tenant *t = &cmd->tenant_record;

	if (cmd->type == COMMAND_REVOKE && cmd->revocation_message != NULL)
		keys |= BIT(REVOCATION_MSG);
	if (cmd->type == COMMAND_CERT_ADD && cmd->cert.kind == STORE_CERT_CA)
		keys |= BIT(SUBJECT_HASH);
	if (command_has_request_id(cmd))
		keys |= BIT(REQUEST_ID);
	if (msgpack_pack_map(pk, popcount(keys)) != 0)
		return -1;
	if (pack_uint(pk, KEY_TYPE, (uint64_t)cmd->type) != 0 ||
	    pack_int(pk, KEY_TIME, cmd->time) != 0)
		return -1;
	if ((keys & BIT(TENANT)) != 0 && pack_str(pk, KEY_TENANT, cmd->tenant) != 0)
		return -1;
	if ((keys & BIT(UID)) != 0 && pack_str(pk, KEY_UID, cmd->uid) != 0)
		return -1;
	if ((keys & BIT(REQUEST_ID)) != 0 &&
	    pack_bin(pk, KEY_REQUEST_ID, cmd->request_id, sizeof(cmd->request_id)) != 0)
		return -1;

	switch (cmd->type) {
	case COMMAND_TENANT_CREATE:
		if (pack_str(pk, KEY_TENANT_NAME, t->name) != 0 ||
		    pack_str(pk, KEY_PROVIDER, t->provider) != 0 ||
		    pack_str(pk, KEY_ROOT_KEY_ID, t->root_key_id) != 0 ||
		    pack_bin(pk, KEY_WRAPPED_KEK, t->wrapped_kek, t->wrapped_kek_len) != 0 ||
		    pack_int(pk, KEY_CREATED, t->created) != 0)
			return -1;
		break;
	case COMMAND_OBJECT_CREATE:
		if (pack_bin(pk, KEY_OBJECT, object->data, object->len) != 0)
			return -1;
		break;
	case COMMAND_ATTR_ADD:
		if (pack_str(pk, KEY_ATTR_NAME, cmd->attr_name) != 0 ||
		    pack_bin(pk, KEY_ATTR_VALUE, cmd->attr_value, cmd->attr_value_len) != 0 ||
		    pack_bool(pk, KEY_SINGLE, cmd->single_instance) != 0)
			return -1;
		break;
	case COMMAND_ATTR_MODIFY:
		if (pack_str(pk, KEY_ATTR_NAME, cmd->attr_name) != 0 ||
		    pack_uint(pk, KEY_ATTR_INDEX, cmd->attr_index) != 0 ||
		    pack_bin(pk, KEY_ATTR_VALUE, cmd->attr_value, cmd->attr_value_len) != 0)
			return -1;
		break;
	case COMMAND_ATTR_DELETE:
		if (pack_str(pk, KEY_ATTR_NAME, cmd->attr_name) != 0 ||
		    pack_uint(pk, KEY_ATTR_INDEX, cmd->attr_index) != 0)
			return -1;
		break;
	case COMMAND_REVOKE:
		if (pack_uint(pk, KEY_REVOCATION_CODE, cmd->revocation_code) != 0 ||
		    pack_int(pk, KEY_OCCURRENCE, cmd->compromise_occurrence_date) != 0)
			return -1;
		if (cmd->revocation_message != NULL &&
		    pack_str(pk, KEY_REVOCATION_MSG, cmd->revocation_message) != 0)
			return -1;
		break;
	case COMMAND_CERT_ADD:
		if (pack_str(pk, KEY_FINGERPRINT, cmd->cert.fingerprint) != 0 ||
		    pack_str(pk, KEY_CLIENT, cmd->cert.client) != 0 ||
		    pack_uint(pk, KEY_CERT_KIND, (uint64_t)cmd->cert.kind) != 0 ||
		    pack_bin(pk, KEY_CERT_DER, cmd->cert.der, cmd->cert.der_len) != 0)
			return -1;
		if ((keys & BIT(SUBJECT_HASH)) != 0 &&
		    pack_bin(pk, KEY_SUBJECT_HASH, cmd->cert.subject_hash,
			     sizeof(cmd->cert.subject_hash)) != 0)
			return -1;
		break;
	case COMMAND_CERT_DELETE:
		if (pack_str(pk, KEY_FINGERPRINT, cmd->cert.fingerprint) != 0)
			return -1;
		break;
	case COMMAND_TENANT_REWRAP:
		if (pack_bin(pk, KEY_WRAPPED_KEK, t->wrapped_kek, t->wrapped_kek_len) != 0 ||
		    pack_bin(pk, KEY_OLD_KEK, cmd->old_kek, cmd->old_kek_len) != 0)
			return -1;
		break;
	case COMMAND_KEK_ROTATE:
		if (pack_bin(pk, KEY_WRAPPED_KEK, t->wrapped_kek, t->wrapped_kek_len) != 0 ||
		    pack_uint(pk, KEY_KEK_VERSION, cmd->kek_version) != 0)
			return -1;
		break;
	case COMMAND_RESEAL:
		if (pack_uint(pk, KEY_KEK_VERSION, cmd->kek_version) != 0 ||
		    pack_bin(pk, KEY_SEALED, cmd->sealed, cmd->sealed_len) != 0)
			return -1;
		break;
	case COMMAND_KEK_RETIRE:
		if (pack_uint(pk, KEY_KEK_VERSION, cmd->kek_version) != 0)
			return -1;
		break;
	case COMMAND_ACTIVATE:
	case COMMAND_DESTROY:
	case COMMAND_TENANT_DELETE:
		break;
	}
	return 0;
}

int command_encode(const struct command *cmd, struct buf *out)
{
	static const uint8_t zeros[8];
	struct buf object = BUF_INIT;
	msgpack_packer pk;
	size_t start = out->len;
	size_t len;
	int rc = KMIPD_ENOMEM;

	if (!type_known((uint64_t)cmd->type))
		return KMIPD_EINVAL;
	if (cmd->type == COMMAND_OBJECT_CREATE && (rc = object_encode(&cmd->object, &object)) != 0)
		goto err;

	rc = KMIPD_ENOMEM;
	if (buf_append(out, zeros, HEADER_LEN) != 0)
		goto err;
	msgpack_packer_init(&pk, out, buf_write);
	if (pack_command(&pk, cmd, &object) != 0)
		goto err;

	len = out->len - start - HEADER_LEN;
	if (len > COMMAND_MAX_LEN) {
		rc = KMIPD_ETOO_LARGE;
		goto err;
	}
	out->data[start] = COMMAND_FORMAT;
	out->data[start + 1] = (uint8_t)(len >> 16);
	out->data[start + 2] = (uint8_t)(len >> 8);
	out->data[start + 3] = (uint8_t)len;
	if ((out->len - start) % 8 != 0 && buf_append(out, zeros, 8 - (out->len - start) % 8) != 0)
		goto err;
	buf_free(&object);
	return 0;

err:
	/* Leave @out as it was: wipe whatever was appended. */
	if (out->len > start) {
		memset(out->data + start, 0, out->len - start);
		out->len = start;
	}
	buf_free(&object);
	return rc;
}

/* ---- Decoding ---------------------------------------------------------------------- */

/* A cursor over untrusted bytes. Every read checks the bounds first. */
struct reader {
	const uint8_t *p;
	const uint8_t *end;
};

static int take(struct reader *r, size_t n, const uint8_t **out)
{
	if ((size_t)(r->end - r->p) < n)
		return KMIPD_EMALFORMED;
	*out = r->p;
	r->p += n;
	return 0;
}

static int take_be(struct reader *r, size_t n, uint64_t *v)
{
	const uint8_t *p;

	if (take(r, n, &p) != 0)
		return KMIPD_EMALFORMED;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = *v << 8 | p[i];
	return 0;
}

static int take_byte(struct reader *r, uint8_t *b)
{
	const uint8_t *p;

	if (take(r, 1, &p) != 0)
		return KMIPD_EMALFORMED;
	*b = *p;
	return 0;
}

static int read_map(struct reader *r, uint64_t *count)
{
	uint8_t b;

	if (take_byte(r, &b) != 0)
		return KMIPD_EMALFORMED;
	if (b >= 0x80 && b <= 0x8f) {
		*count = b & 0x0fu;
		return 0;
	}
	if (b == 0xde)
		return take_be(r, 2, count);
	if (b == 0xdf)
		return take_be(r, 4, count);
	return KMIPD_EMALFORMED;
}

/* A str (@want_str) or bin item: a view of its bytes inside the entry. */
static int read_bytes(struct reader *r, bool want_str, const uint8_t **p, size_t *len)
{
	uint64_t n;
	uint8_t b;
	int rc;

	if (take_byte(r, &b) != 0)
		return KMIPD_EMALFORMED;
	if (want_str && b >= 0xa0 && b <= 0xbf) {
		n = b & 0x1fu;
		rc = 0;
	} else if (b == (want_str ? 0xd9 : 0xc4)) {
		rc = take_be(r, 1, &n);
	} else if (b == (want_str ? 0xda : 0xc5)) {
		rc = take_be(r, 2, &n);
	} else if (b == (want_str ? 0xdb : 0xc6)) {
		rc = take_be(r, 4, &n);
	} else {
		return KMIPD_EMALFORMED;
	}
	if (rc != 0 || take(r, (size_t)n, p) != 0)
		return KMIPD_EMALFORMED;
	*len = (size_t)n;
	return 0;
}

/* Any msgpack integer, as a sign and magnitude. */
static int read_integer(struct reader *r, bool *negative, uint64_t *magnitude)
{
	uint64_t v;
	uint8_t b;
	size_t n;

	if (take_byte(r, &b) != 0)
		return KMIPD_EMALFORMED;
	*negative = false;
	if (b <= 0x7f) {
		*magnitude = b;
		return 0;
	}
	if (b >= 0xe0) {
		*negative = true;
		*magnitude = (uint64_t)(0x100 - b);
		return 0;
	}
	if (b >= 0xcc && b <= 0xcf) {
		n = (size_t)1 << (b - 0xcc);
		return take_be(r, n, magnitude);
	}
	if (b >= 0xd0 && b <= 0xd3) {
		n = (size_t)1 << (b - 0xd0);
		if (take_be(r, n, &v) != 0)
			return KMIPD_EMALFORMED;
		if (n < 8 && (v >> (8 * n - 1)) != 0)
			v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
		if ((v >> 63) != 0) {
			*negative = true;
			*magnitude = ~v + 1; /* two's complement magnitude, 2^63 for INT64_MIN */
		} else {
			*magnitude = v;
		}
		return 0;
	}
	return KMIPD_EMALFORMED;
}

static int read_uint(struct reader *r, uint64_t max, uint64_t *v)
{
	bool negative;

	if (read_integer(r, &negative, v) != 0)
		return KMIPD_EMALFORMED;
	if (negative && *v != 0)
		return KMIPD_EMALFORMED;
	return *v <= max ? 0 : KMIPD_EMALFORMED;
}

static int read_int(struct reader *r, int64_t *v)
{
	uint64_t magnitude;
	bool negative;

	if (read_integer(r, &negative, &magnitude) != 0)
		return KMIPD_EMALFORMED;
	if (!negative) {
		if (magnitude > INT64_MAX)
			return KMIPD_EMALFORMED;
		*v = (int64_t)magnitude;
	} else {
		if (magnitude > (uint64_t)INT64_MAX + 1)
			return KMIPD_EMALFORMED;
		*v = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
	}
	return 0;
}

static int read_bool(struct reader *r, bool *v)
{
	uint8_t b;

	if (take_byte(r, &b) != 0 || (b != 0xc2 && b != 0xc3))
		return KMIPD_EMALFORMED;
	*v = b == 0xc3;
	return 0;
}

/* A string into a fixed array of @cap bytes (room for the NUL included). */
static int read_fixed_str(struct reader *r, char *dst, size_t cap)
{
	const uint8_t *p;
	size_t len;

	if (read_bytes(r, true, &p, &len) != 0 || len >= cap || memchr(p, 0, len) != NULL)
		return KMIPD_EMALFORMED;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

/* A string copied into @arena. */
static int read_arena_str(struct reader *r, struct arena *arena, const char **out)
{
	const uint8_t *p;
	size_t len;

	if (read_bytes(r, true, &p, &len) != 0 || memchr(p, 0, len) != NULL)
		return KMIPD_EMALFORMED;
	*out = arena_strndup(arena, (const char *)p, len);
	return *out == NULL ? KMIPD_ENOMEM : 0;
}

/* A byte string copied into @arena (never a NULL pointer, even when empty). */
static int read_arena_bin(struct reader *r, struct arena *arena, const uint8_t **out,
			  size_t *out_len)
{
	const uint8_t *p;
	uint8_t *copy;
	size_t len;

	if (read_bytes(r, false, &p, &len) != 0)
		return KMIPD_EMALFORMED;
	copy = arena_alloc(arena, len + 1);
	if (copy == NULL)
		return KMIPD_ENOMEM;
	if (len != 0)
		memcpy(copy, p, len);
	*out = copy;
	*out_len = len;
	return 0;
}

static int find_key(const uint8_t *p, size_t len, enum key *key)
{
	for (int k = 0; k < KEY_COUNT_; k++) {
		if (strlen(key_text[k]) == len && memcmp(key_text[k], p, len) == 0) {
			*key = (enum key)k;
			return 0;
		}
	}
	return KMIPD_EMALFORMED;
}

/* Reads the value of @key into @cmd. */
static int read_field(struct reader *r, enum key key, struct arena *arena, struct command *cmd)
{
	struct store_tenant *t = &cmd->tenant_record;
	const uint8_t *p;
	uint64_t v;
	size_t len;
	int rc;

	switch (key) {
	case KEY_TYPE:
		if (read_uint(r, UINT32_MAX, &v) != 0 || !type_known(v))
			return KMIPD_EMALFORMED;
		cmd->type = (enum command_type)v;
		return 0;
	case KEY_TIME:
		return read_int(r, &cmd->time);
	case KEY_TENANT:
		return read_fixed_str(r, cmd->tenant, sizeof(cmd->tenant));
	case KEY_UID:
		return read_fixed_str(r, cmd->uid, sizeof(cmd->uid));
	case KEY_TENANT_NAME:
		return read_fixed_str(r, t->name, sizeof(t->name));
	case KEY_PROVIDER:
		return read_fixed_str(r, t->provider, sizeof(t->provider));
	case KEY_ROOT_KEY_ID:
		return read_arena_str(r, arena, &t->root_key_id);
	case KEY_WRAPPED_KEK:
		return read_arena_bin(r, arena, &t->wrapped_kek, &t->wrapped_kek_len);
	case KEY_CREATED:
		return read_int(r, &t->created);
	case KEY_OBJECT:
		if (read_bytes(r, false, &p, &len) != 0)
			return KMIPD_EMALFORMED;
		rc = object_decode(p, len, arena, &cmd->object);
		return rc == KMIPD_ENOMEM ? rc : rc != 0 ? KMIPD_EMALFORMED : 0;
	case KEY_ATTR_NAME:
		return read_arena_str(r, arena, &cmd->attr_name);
	case KEY_ATTR_INDEX:
		if (read_uint(r, UINT32_MAX, &v) != 0)
			return KMIPD_EMALFORMED;
		cmd->attr_index = (uint32_t)v;
		return 0;
	case KEY_ATTR_VALUE:
		return read_arena_bin(r, arena, &cmd->attr_value, &cmd->attr_value_len);
	case KEY_SINGLE:
		return read_bool(r, &cmd->single_instance);
	case KEY_REVOCATION_CODE:
		if (read_uint(r, UINT32_MAX, &v) != 0)
			return KMIPD_EMALFORMED;
		cmd->revocation_code = (uint32_t)v;
		return 0;
	case KEY_REVOCATION_MSG:
		return read_arena_str(r, arena, &cmd->revocation_message);
	case KEY_OCCURRENCE:
		return read_int(r, &cmd->compromise_occurrence_date);
	case KEY_REQUEST_ID:
		if (read_bytes(r, false, &p, &len) != 0 || len != sizeof(cmd->request_id))
			return KMIPD_EMALFORMED;
		memcpy(cmd->request_id, p, len);
		return 0;
	case KEY_FINGERPRINT:
		return read_fixed_str(r, cmd->cert.fingerprint, sizeof(cmd->cert.fingerprint));
	case KEY_CLIENT:
		return read_fixed_str(r, cmd->cert.client, sizeof(cmd->cert.client));
	case KEY_CERT_KIND:
		if (read_uint(r, STORE_CERT_ISSUED, &v) != 0 || v < STORE_CERT_PINNED)
			return KMIPD_EMALFORMED;
		cmd->cert.kind = (enum store_cert_kind)v;
		return 0;
	case KEY_CERT_DER:
		rc = read_arena_bin(r, arena, &cmd->cert.der, &cmd->cert.der_len);
		if (rc == 0 && (cmd->cert.der_len == 0 || cmd->cert.der_len > STORE_CERT_DER_MAX))
			return KMIPD_EMALFORMED;
		return rc;
	case KEY_SUBJECT_HASH:
		if (read_bytes(r, false, &p, &len) != 0 || len != sizeof(cmd->cert.subject_hash))
			return KMIPD_EMALFORMED;
		memcpy(cmd->cert.subject_hash, p, len);
		return 0;
	case KEY_OLD_KEK:
		return read_arena_bin(r, arena, &cmd->old_kek, &cmd->old_kek_len);
	case KEY_KEK_VERSION:
		if (read_uint(r, UINT32_MAX, &v) != 0 || v == 0)
			return KMIPD_EMALFORMED;
		cmd->kek_version = (uint32_t)v;
		return 0;
	case KEY_SEALED:
		return read_arena_bin(r, arena, &cmd->sealed, &cmd->sealed_len);
	case KEY_COUNT_:
		break;
	}
	return KMIPD_EMALFORMED;
}

int command_decode(const uint8_t *data, size_t len, struct arena *arena, struct command *cmd)
{
	struct reader r;
	uint32_t seen = 0;
	uint64_t count;
	size_t body_len, end;
	int rc;

	memset(cmd, 0, sizeof(*cmd));
	if (data == NULL || len < HEADER_LEN || len % 8 != 0)
		return KMIPD_EMALFORMED;
	if (data[0] == 0 || data[0] > COMMAND_FORMAT)
		return KMIPD_EMALFORMED;
	body_len = (size_t)data[1] << 16 | (size_t)data[2] << 8 | data[3];
	end = HEADER_LEN + body_len;
	if (body_len == 0 || end > len || len - end >= 8)
		return KMIPD_EMALFORMED;
	for (size_t i = end; i < len; i++)
		if (data[i] != 0)
			return KMIPD_EMALFORMED;

	r.p = data + HEADER_LEN;
	r.end = data + end;
	if (read_map(&r, &count) != 0 || count > KEY_COUNT_)
		return KMIPD_EMALFORMED;
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *key_bytes;
		size_t key_len;
		enum key key;

		if (read_bytes(&r, true, &key_bytes, &key_len) != 0 ||
		    find_key(key_bytes, key_len, &key) != 0 || (seen & (1u << key)) != 0)
			return KMIPD_EMALFORMED;
		seen |= 1u << key;
		rc = read_field(&r, key, arena, cmd);
		if (rc != 0)
			return rc;
	}
	if (r.p != r.end)
		return KMIPD_EMALFORMED;

	/* Exactly the fields of the type: every required one, nothing foreign. */
	if ((seen & BIT(TYPE)) == 0)
		return KMIPD_EMALFORMED;
	if ((seen & type_keys[cmd->type].required) != type_keys[cmd->type].required ||
	    (seen & ~(type_keys[cmd->type].required | type_keys[cmd->type].allowed |
		      BIT(REQUEST_ID))) != 0)
		return KMIPD_EMALFORMED;

	switch (cmd->type) {
	case COMMAND_TENANT_CREATE:
		if (cmd->tenant_record.name[0] == '\0')
			return KMIPD_EMALFORMED;
		memcpy(cmd->tenant, cmd->tenant_record.name, sizeof(cmd->tenant));
		break;
	case COMMAND_OBJECT_CREATE:
		if (cmd->object.tenant[0] == '\0' || cmd->object.uid[0] == '\0')
			return KMIPD_EMALFORMED;
		memcpy(cmd->tenant, cmd->object.tenant, sizeof(cmd->tenant));
		memcpy(cmd->uid, cmd->object.uid, sizeof(cmd->uid));
		break;
	case COMMAND_TENANT_DELETE:
		if (cmd->tenant[0] == '\0')
			return KMIPD_EMALFORMED;
		break;
	case COMMAND_TENANT_REWRAP:
		if (cmd->tenant[0] == '\0' || cmd->tenant_record.wrapped_kek_len == 0 ||
		    cmd->old_kek_len == 0)
			return KMIPD_EMALFORMED;
		break;
	case COMMAND_KEK_ROTATE:
		if (cmd->tenant[0] == '\0' || cmd->tenant_record.wrapped_kek_len == 0 ||
		    cmd->kek_version < 2)
			return KMIPD_EMALFORMED;
		break;
	case COMMAND_KEK_RETIRE:
		if (cmd->tenant[0] == '\0')
			return KMIPD_EMALFORMED;
		break;
	case COMMAND_CERT_ADD:
	case COMMAND_CERT_DELETE:
		if (cmd->tenant[0] == '\0' || cmd->cert.fingerprint[0] == '\0' ||
		    (cmd->type == COMMAND_CERT_ADD &&
		     (cmd->cert.client[0] == '\0' ||
		      (cmd->cert.kind == STORE_CERT_CA) != ((seen & BIT(SUBJECT_HASH)) != 0))))
			return KMIPD_EMALFORMED;
		memcpy(cmd->cert.tenant, cmd->tenant, sizeof(cmd->cert.tenant));
		cmd->cert.added = cmd->time;
		break;
	default:
		if (cmd->tenant[0] == '\0' || cmd->uid[0] == '\0')
			return KMIPD_EMALFORMED;
		if ((seen & BIT(ATTR_NAME)) != 0 && cmd->attr_name[0] == '\0')
			return KMIPD_EMALFORMED;
		break;
	}
	return 0;
}

/* ---- Batches ------------------------------------------------------------------------ */

#define BATCH_HEADER_LEN 8

/* The length of the encoded command at the start of @data (header, body and padding), or
 * 0 if @len cannot hold one. */
static size_t entry_span(const uint8_t *data, size_t len)
{
	size_t body_len, span;

	if (len < HEADER_LEN || data[0] == 0 || data[0] > COMMAND_FORMAT)
		return 0;
	body_len = (size_t)data[1] << 16 | (size_t)data[2] << 8 | data[3];
	span = (HEADER_LEN + body_len + 7) / 8 * 8;
	return body_len > 0 && span <= len ? span : 0;
}

static unsigned batch_count(const uint8_t *header)
{
	return (unsigned)header[1] << 16 | (unsigned)header[2] << 8 | header[3];
}

int command_batch_add(struct buf *batch, const uint8_t *entry, size_t len)
{
	static const uint8_t header[BATCH_HEADER_LEN] = {COMMAND_BATCH};
	size_t start = batch->len;
	unsigned count;

	if (len % 8 != 0 || entry_span(entry, len) != len)
		return KMIPD_EINVAL;
	if (start == 0 && buf_append(batch, header, sizeof(header)) != 0)
		return KMIPD_ENOMEM;
	if (batch->len < BATCH_HEADER_LEN || batch->data[0] != COMMAND_BATCH)
		return KMIPD_EINVAL;
	count = batch_count(batch->data);
	if (count >= COMMAND_BATCH_MAX)
		return KMIPD_EINVAL;
	if (buf_append(batch, entry, len) != 0) {
		batch->len = start;
		return KMIPD_ENOMEM;
	}
	count++;
	batch->data[1] = (uint8_t)(count >> 16);
	batch->data[2] = (uint8_t)(count >> 8);
	batch->data[3] = (uint8_t)count;
	return 0;
}

int command_entry_decode(const uint8_t *data, size_t len, struct arena *arena, struct command *cmds,
			 unsigned max, unsigned *n)
{
	size_t off = BATCH_HEADER_LEN;
	unsigned count;
	int rc;

	*n = 0;
	if (data == NULL || len < HEADER_LEN || max == 0)
		return KMIPD_EMALFORMED;
	if (data[0] != COMMAND_BATCH) {
		rc = command_decode(data, len, arena, &cmds[0]);
		if (rc == 0)
			*n = 1;
		return rc;
	}
	if (len < BATCH_HEADER_LEN || len % 8 != 0)
		return KMIPD_EMALFORMED;
	for (size_t i = 4; i < BATCH_HEADER_LEN; i++)
		if (data[i] != 0)
			return KMIPD_EMALFORMED;
	count = batch_count(data);
	if (count == 0 || count > max || count > COMMAND_BATCH_MAX)
		return KMIPD_EMALFORMED;
	for (unsigned i = 0; i < count; i++) {
		size_t span = entry_span(data + off, len - off);

		if (span == 0)
			return KMIPD_EMALFORMED;
		rc = command_decode(data + off, span, arena, &cmds[i]);
		if (rc != 0)
			return rc;
		off += span;
	}
	if (off != len)
		return KMIPD_EMALFORMED;
	*n = count;
	return 0;
}

/* ---- The state machine ------------------------------------------------------------- */

/* Records a refusal in @result; the entry is still consumed. */
static void refuse(struct command_result *result, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void refuse(struct command_result *result, int status, const char *fmt, ...)
{
	va_list ap;

	result->status = status;
	va_start(ap, fmt);
	vsnprintf(result->message, sizeof(result->message), fmt, ap);
	va_end(ap);
}

static const char *state_name(uint32_t state)
{
	const char *name = kmip_enum_name(KMIP_FAMILY_STATE, state);

	return name != NULL ? name : "in an unknown state";
}

static int apply_tenant_create(struct store_txn *txn, const struct command *cmd,
			       struct arena *arena, struct command_result *result)
{
	struct store_tenant existing;
	int rc;

	rc = store_tenant_get(txn, cmd->tenant_record.name, arena, &existing);
	if (rc == 0 && existing.deleted == 0) {
		refuse(result, KMIPD_EEXISTS, "tenant %s already exists", cmd->tenant_record.name);
		return 0;
	}
	if (rc != 0 && rc != KMIPD_ENOT_FOUND)
		return rc;
	/* New, or made again after it was deleted: its old objects are long gone. */
	return store_tenant_put(txn, &cmd->tenant_record);
}

/* The root key was rotated and the provider wrapped the KEK anew: keep the new form, if
 * the stored one is still the one it replaces (every node may offer the same change). */
/* Reads tenant @name into @t: 0 if it is live, 1 after refusing (no such tenant, or
 * deleted), or a store error. */
static int live_tenant(struct store_txn *txn, const char *name, struct arena *arena,
		       struct store_tenant *t, struct command_result *result)
{
	int rc = store_tenant_get(txn, name, arena, t);

	if (rc == KMIPD_ENOT_FOUND || (rc == 0 && t->deleted != 0)) {
		refuse(result, KMIPD_ENOT_FOUND, "no tenant %s", name);
		return 1;
	}
	return rc;
}

static int apply_tenant_rewrap(struct store_txn *txn, const struct command *cmd,
			       struct arena *arena, struct command_result *result)
{
	struct store_tenant t;
	int rc = live_tenant(txn, cmd->tenant, arena, &t, result);

	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (t.wrapped_kek_len != cmd->old_kek_len ||
	    memcmp(t.wrapped_kek, cmd->old_kek, cmd->old_kek_len) != 0) {
		refuse(result, KMIPD_ESTATE, "tenant %s's key-encryption key was rewrapped already",
		       cmd->tenant);
		return 0;
	}
	t.wrapped_kek = cmd->tenant_record.wrapped_kek;
	t.wrapped_kek_len = cmd->tenant_record.wrapped_kek_len;
	return store_tenant_put(txn, &t);
}

/* Reads the object @cmd names into @obj: 0, 1 after refusing (no such object), or a
 * store error. */
static int target_object(struct store_txn *txn, const struct command *cmd, struct arena *arena,
			 struct object *obj, struct command_result *result)
{
	int rc = store_object_get(txn, cmd->tenant, cmd->uid, arena, obj);

	if (rc == KMIPD_ENOT_FOUND) {
		refuse(result, KMIPD_ENOT_FOUND, "no object with Unique Identifier %s", cmd->uid);
		return 1;
	}
	return rc;
}

/* A new KEK: the current one starts retiring, and stays until every object sealed under
 * it has been re-sealed (COMMAND_RESEAL) and it is retired (COMMAND_KEK_RETIRE). */
static int apply_kek_rotate(struct store_txn *txn, const struct command *cmd, struct arena *arena,
			    struct command_result *result)
{
	struct store_tenant t;
	int rc = live_tenant(txn, cmd->tenant, arena, &t, result);

	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (t.retiring_version != 0) {
		refuse(result, KMIPD_ESTATE,
		       "tenant %s's key-encryption key version %" PRIu32 " is still being "
		       "retired: rotate again once its objects are re-sealed",
		       cmd->tenant, t.retiring_version);
		return 0;
	}
	if (cmd->kek_version != t.kek_version + 1) {
		refuse(result, KMIPD_ESTATE,
		       "tenant %s's key-encryption key is at version %" PRIu32 ", not %" PRIu32,
		       cmd->tenant, t.kek_version, cmd->kek_version - 1);
		return 0;
	}
	t.retiring_version = t.kek_version;
	t.retiring_kek = t.wrapped_kek;
	t.retiring_kek_len = t.wrapped_kek_len;
	t.kek_version = cmd->kek_version;
	t.wrapped_kek = cmd->tenant_record.wrapped_kek;
	t.wrapped_kek_len = cmd->tenant_record.wrapped_kek_len;
	result->index = t.kek_version;
	return store_tenant_put(txn, &t);
}

/* The KEK version @obj's material is sealed under; 0 when it has none (destroyed). */
static uint32_t sealed_version(const struct object *obj)
{
	uint32_t version;
	size_t len;

	if (obj->sealed_len == 0 ||
	    crypto_sealed_info(obj->sealed, obj->sealed_len, &version, &len) != 0)
		return 0;
	return version;
}

static int apply_reseal(struct store_txn *txn, const struct command *cmd, struct arena *arena,
			struct command_result *result)
{
	struct store_tenant t;
	struct object obj;
	uint32_t version = 0;
	size_t len;
	int rc = live_tenant(txn, cmd->tenant, arena, &t, result);

	if (rc == 0)
		rc = target_object(txn, cmd, arena, &obj, result);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (sealed_version(&obj) != cmd->kek_version ||
	    crypto_sealed_info(cmd->sealed, cmd->sealed_len, &version, &len) != 0 ||
	    version != t.kek_version) {
		refuse(result, KMIPD_ESTATE,
		       "%s is not sealed under key-encryption key version %" PRIu32
		       " any more, or the new material is not sealed under the current one",
		       cmd->uid, cmd->kek_version);
		return 0;
	}
	obj.sealed = cmd->sealed;
	obj.sealed_len = cmd->sealed_len;
	result->state = obj.state;
	return store_object_put(txn, &obj);
}

struct retire_scan {
	uint32_t version;
	uint64_t left;
};

static int count_sealed_under(const struct object *obj, void *arg)
{
	struct retire_scan *scan = arg;

	scan->left += sealed_version(obj) == scan->version;
	return 0;
}

/* Forgets the retiring KEK once no object needs it. Every replica scans the tenant's
 * objects here: rare (once per rotation), and the only way to be sure that no Create
 * sealed under the old KEK was ordered after the re-sealing pass looked. */
static int apply_kek_retire(struct store_txn *txn, const struct command *cmd, struct arena *arena,
			    struct command_result *result)
{
	struct retire_scan scan = {cmd->kek_version, 0};
	struct store_tenant t;
	struct arena objects;
	int rc = live_tenant(txn, cmd->tenant, arena, &t, result);

	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (t.retiring_version == 0 || t.retiring_version != cmd->kek_version) {
		refuse(result, KMIPD_ESTATE,
		       "tenant %s has no retiring key-encryption key version %" PRIu32, cmd->tenant,
		       cmd->kek_version);
		return 0;
	}
	arena_init(&objects, 16384, 0);
	rc = store_object_foreach(txn, cmd->tenant, NULL, &objects, true, count_sealed_under,
				  &scan);
	arena_free(&objects);
	if (rc != 0)
		return rc;
	if (scan.left > 0) {
		refuse(result, KMIPD_ESTATE,
		       "%" PRIu64 " object(s) of tenant %s are still sealed under key-encryption "
		       "key version %" PRIu32,
		       scan.left, cmd->tenant, cmd->kek_version);
		result->index = (uint32_t)(scan.left > UINT32_MAX ? UINT32_MAX : scan.left);
		return 0;
	}
	t.retiring_version = 0;
	t.retiring_kek = NULL;
	t.retiring_kek_len = 0;
	return store_tenant_put(txn, &t);
}

/* Crypto-shredding: the objects go, and the tenant's record stays as a deleted one without
 * its wrapped KEK, so no node can unwrap it again, and a client certificate that names
 * the tenant cannot bring it back by connecting. */
static int apply_tenant_delete(struct store_txn *txn, const struct command *cmd,
			       struct arena *arena, struct command_result *result)
{
	struct store_tenant t;
	uint64_t count;
	int rc;

	rc = live_tenant(txn, cmd->tenant, arena, &t, result);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	rc = store_tenant_purge(txn, cmd->tenant, &count);
	if (rc != 0)
		return rc;
	t.deleted = cmd->time != 0 ? cmd->time : 1;
	t.wrapped_kek = NULL;
	t.wrapped_kek_len = 0;
	result->index = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
	return store_tenant_put(txn, &t);
}

/* A client certificate for a live tenant; one certificate belongs to one client. */
static int apply_cert_add(struct store_txn *txn, const struct command *cmd, struct arena *arena,
			  struct command_result *result)
{
	struct store_tenant t;
	struct store_cert old;
	int rc;

	rc = live_tenant(txn, cmd->tenant, arena, &t, result);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	rc = store_cert_get(txn, cmd->cert.fingerprint, arena, &old);
	if (rc == 0 && old.deleted == 0) {
		refuse(result, KMIPD_EEXISTS,
		       "certificate %.16s... already belongs to client %s of "
		       "tenant %s",
		       old.fingerprint, old.client, old.tenant);
		return 0;
	}
	if (rc != 0 && rc != KMIPD_ENOT_FOUND)
		return rc;
	return store_cert_put(txn, &cmd->cert);
}

/* Stops trusting a certificate of @tenant. An issued one stays as deleted: the cluster
 * CA's signature on it would otherwise still admit it. */
static int apply_cert_delete(struct store_txn *txn, const struct command *cmd, struct arena *arena,
			     struct command_result *result)
{
	struct store_cert cert;
	int rc;

	rc = store_cert_get(txn, cmd->cert.fingerprint, arena, &cert);
	if (rc == KMIPD_ENOT_FOUND ||
	    (rc == 0 && (cert.deleted != 0 || strcmp(cert.tenant, cmd->tenant) != 0))) {
		refuse(result, KMIPD_ENOT_FOUND, "tenant %s has no certificate %s", cmd->tenant,
		       cmd->cert.fingerprint);
		return 0;
	}
	if (rc != 0)
		return rc;
	if (cert.kind != STORE_CERT_ISSUED)
		return store_cert_delete(txn, cert.fingerprint);
	cert.deleted = cmd->time != 0 ? cmd->time : 1;
	return store_cert_put(txn, &cert);
}

static int apply_object_create(struct store_txn *txn, const struct command *cmd,
			       struct arena *arena, struct command_result *result)
{
	const struct object *obj = &cmd->object;
	struct object existing;
	struct store_tenant t;
	uint32_t version = sealed_version(obj);
	int rc;

	/* Material sealed under a KEK the tenant no longer has (a node that had not loaded
	 * a rotation's new KEK yet, ordered after the old one was retired) could never be
	 * opened again: refuse it rather than store it. */
	if (version != 0) {
		rc = store_tenant_get(txn, obj->tenant, arena, &t);
		if (rc != 0 && rc != KMIPD_ENOT_FOUND)
			return rc;
		if (rc == 0 && version != t.kek_version && version != t.retiring_version) {
			refuse(result, KMIPD_ESTATE,
			       "the key material was sealed under key-encryption key version "
			       "%" PRIu32 ", which tenant %s no longer has (it is at version "
			       "%" PRIu32 "); try again",
			       version, obj->tenant, t.kek_version);
			return 0;
		}
	}
	rc = store_object_get(txn, obj->tenant, obj->uid, arena, &existing);
	if (rc == 0) {
		result->state = existing.state;
		refuse(result, KMIPD_EEXISTS, "an object with Unique Identifier %s already exists",
		       obj->uid);
		return 0;
	}
	if (rc != KMIPD_ENOT_FOUND)
		return rc;
	rc = store_object_put(txn, obj);
	if (rc == 0)
		result->state = obj->state;
	return rc;
}

static bool is_compromise(uint32_t code)
{
	return code == KMIP_REVOCATION_KEY_COMPROMISE || code == KMIP_REVOCATION_CA_COMPROMISE;
}

/* Changes @obj as @cmd says. 0 when it changed (the caller stores it), 1 when refused
 * (@result says why), or a negative code. */
static int change_object(const struct command *cmd, struct object *obj, struct arena *arena,
			 struct command_result *result)
{
	const char *uid = cmd->uid;
	int64_t max_index;
	size_t count;

	switch (cmd->type) {
	case COMMAND_ACTIVATE:
		if (obj->state != KMIP_STATE_PRE_ACTIVE) {
			refuse(result, KMIPD_ESTATE,
			       "%s is %s, only a Pre-Active object can be activated", uid,
			       state_name(obj->state));
			return 1;
		}
		obj->state = KMIP_STATE_ACTIVE;
		obj->activation_date = cmd->time;
		break;

	case COMMAND_REVOKE:
		if (is_compromise(cmd->revocation_code)) {
			/* The compromise dates are the first compromise's: the server sets them
			 * once and never changes them. */
			if (obj->compromise_date == 0) {
				obj->compromise_date = cmd->time;
				obj->compromise_occurrence_date =
					cmd->compromise_occurrence_date != 0
						? cmd->compromise_occurrence_date
						: cmd->time;
			}
			if (obj->state == KMIP_STATE_DESTROYED ||
			    obj->state == KMIP_STATE_DESTROYED_COMPROMISED)
				obj->state = KMIP_STATE_DESTROYED_COMPROMISED;
			else
				obj->state = KMIP_STATE_COMPROMISED;
		} else if (obj->state == KMIP_STATE_ACTIVE || obj->state == KMIP_STATE_PRE_ACTIVE) {
			obj->state = KMIP_STATE_DEACTIVATED;
			obj->deactivation_date = cmd->time;
		} else if (obj->state != KMIP_STATE_DEACTIVATED) {
			refuse(result, KMIPD_ESTATE,
			       "%s is %s, only a key compromise can still be recorded", uid,
			       state_name(obj->state));
			return 1;
		}
		obj->revocation_code = cmd->revocation_code;
		obj->revocation_message = NULL;
		if (cmd->revocation_message != NULL) {
			obj->revocation_message = arena_strndup(arena, cmd->revocation_message,
								strlen(cmd->revocation_message));
			if (obj->revocation_message == NULL)
				return KMIPD_ENOMEM;
		}
		break;

	case COMMAND_DESTROY:
		if (obj->state == KMIP_STATE_ACTIVE) {
			refuse(result, KMIPD_ESTATE,
			       "%s: an Active object must be revoked before it is destroyed", uid);
			return 1;
		}
		if (obj->state == KMIP_STATE_DESTROYED ||
		    obj->state == KMIP_STATE_DESTROYED_COMPROMISED) {
			refuse(result, KMIPD_ESTATE, "%s is already destroyed", uid);
			return 1;
		}
		if (obj->state == KMIP_STATE_COMPROMISED)
			obj->state = KMIP_STATE_DESTROYED_COMPROMISED;
		else if (obj->state == KMIP_STATE_PRE_ACTIVE ||
			 obj->state == KMIP_STATE_DEACTIVATED)
			obj->state = KMIP_STATE_DESTROYED;
		else {
			refuse(result, KMIPD_ESTATE, "%s is %s and cannot be destroyed", uid,
			       state_name(obj->state));
			return 1;
		}
		obj->destroy_date = cmd->time;
		obj->sealed = NULL;
		obj->sealed_len = 0;
		break;

	case COMMAND_ATTR_ADD:
		count = object_attr_count(obj, cmd->attr_name, &max_index);
		if (cmd->single_instance && count > 0) {
			refuse(result, KMIPD_EEXISTS, "%s already has an attribute %s", uid,
			       cmd->attr_name);
			return 1;
		}
		if (max_index >= (int64_t)UINT32_MAX) {
			refuse(result, KMIPD_ERANGE, "%s has no free index for attribute %s", uid,
			       cmd->attr_name);
			return 1;
		}
		result->index = (uint32_t)(max_index + 1);
		return object_attr_add(obj, arena, cmd->attr_name, result->index, cmd->attr_value,
				       cmd->attr_value_len);

	case COMMAND_ATTR_MODIFY:
	case COMMAND_ATTR_DELETE:
		if (object_attr_find(obj, cmd->attr_name, cmd->attr_index) == NULL) {
			refuse(result, KMIPD_ENOT_FOUND,
			       "%s has no attribute %s with index %" PRIu32, uid, cmd->attr_name,
			       cmd->attr_index);
			return 1;
		}
		if (cmd->type == COMMAND_ATTR_DELETE)
			return object_attr_remove(obj, cmd->attr_name, cmd->attr_index);
		return object_attr_replace(obj, arena, cmd->attr_name, cmd->attr_index,
					   cmd->attr_value, cmd->attr_value_len);

	case COMMAND_TENANT_CREATE:
	case COMMAND_OBJECT_CREATE:
	case COMMAND_TENANT_DELETE:
	case COMMAND_TENANT_REWRAP:
	case COMMAND_KEK_ROTATE:
	case COMMAND_RESEAL:
	case COMMAND_KEK_RETIRE:
	case COMMAND_CERT_ADD:
	case COMMAND_CERT_DELETE:
		assert(!"not a change of an existing object");
		return KMIPD_EINVAL;
	}
	return 0;
}

static int apply_object_change(struct store_txn *txn, const struct command *cmd,
			       struct arena *arena, struct command_result *result)
{
	struct object obj;
	int rc;

	rc = target_object(txn, cmd, arena, &obj, result);
	if (rc != 0)
		return rc > 0 ? 0 : rc;

	rc = change_object(cmd, &obj, arena, result);
	result->state = obj.state;
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	obj.last_change_date = cmd->time;
	return store_object_put(txn, &obj);
}

bool command_has_request_id(const struct command *cmd)
{
	for (size_t i = 0; i < sizeof(cmd->request_id); i++)
		if (cmd->request_id[i] != 0)
			return true;
	return false;
}

/* A command result as recorded for its request id: status, index, state, message. */
static size_t result_pack(const struct command_result *r, uint8_t *out)
{
	size_t len = strnlen(r->message, sizeof(r->message));

	for (int i = 0; i < 4; i++) {
		out[i] = (uint8_t)((uint32_t)r->status >> (24 - 8 * i));
		out[4 + i] = (uint8_t)(r->index >> (24 - 8 * i));
		out[8 + i] = (uint8_t)(r->state >> (24 - 8 * i));
	}
	memcpy(out + 12, r->message, len);
	return 12 + len;
}

static void result_unpack(const uint8_t *in, size_t len, struct command_result *r)
{
	uint32_t status = 0;

	memset(r, 0, sizeof(*r));
	if (len < 12)
		return;
	for (int i = 0; i < 4; i++) {
		status = status << 8 | in[i];
		r->index = r->index << 8 | in[4 + i];
		r->state = r->state << 8 | in[8 + i];
	}
	r->status = (int)status;
	snprintf(r->message, sizeof(r->message), "%.*s", (int)(len - 12), in + 12);
}

/* Requests are remembered for this many entries: a resubmission comes within seconds. */
#define REQUEST_MEMORY 65536

/* Applies one command of entry @index. */
static int apply_one(struct store_txn *txn, const struct command *cmd, uint64_t index,
		     struct arena *arena, struct command_result *result)
{
	uint8_t recorded[STORE_REQUEST_VALUE_MAX];
	size_t recorded_len;
	int rc;

	memset(result, 0, sizeof(*result));
	if (command_has_request_id(cmd)) {
		rc = store_request_get(txn, cmd->request_id, recorded, sizeof(recorded),
				       &recorded_len);
		if (rc == 0) {
			/* Submitted again after an unknown outcome: answer as the first time. */
			result_unpack(recorded, recorded_len, result);
			return 0;
		}
		if (rc != KMIPD_ENOT_FOUND)
			return rc;
	}

	switch (cmd->type) {
	case COMMAND_TENANT_CREATE:
		rc = apply_tenant_create(txn, cmd, arena, result);
		break;
	case COMMAND_TENANT_DELETE:
		rc = apply_tenant_delete(txn, cmd, arena, result);
		break;
	case COMMAND_TENANT_REWRAP:
		rc = apply_tenant_rewrap(txn, cmd, arena, result);
		break;
	case COMMAND_KEK_ROTATE:
		rc = apply_kek_rotate(txn, cmd, arena, result);
		break;
	case COMMAND_RESEAL:
		rc = apply_reseal(txn, cmd, arena, result);
		break;
	case COMMAND_KEK_RETIRE:
		rc = apply_kek_retire(txn, cmd, arena, result);
		break;
	case COMMAND_CERT_ADD:
		rc = apply_cert_add(txn, cmd, arena, result);
		break;
	case COMMAND_CERT_DELETE:
		rc = apply_cert_delete(txn, cmd, arena, result);
		break;
	case COMMAND_OBJECT_CREATE:
		rc = apply_object_create(txn, cmd, arena, result);
		break;
	case COMMAND_ATTR_ADD:
	case COMMAND_ATTR_MODIFY:
	case COMMAND_ATTR_DELETE:
		if (cmd->attr_name == NULL) {
			refuse(result, KMIPD_EINVAL, "the command names no attribute");
			rc = 0;
			break;
		}
		rc = apply_object_change(txn, cmd, arena, result);
		break;
	case COMMAND_ACTIVATE:
	case COMMAND_REVOKE:
	case COMMAND_DESTROY:
		rc = apply_object_change(txn, cmd, arena, result);
		break;
	default:
		refuse(result, KMIPD_EUNSUPPORTED, "unknown command type %d", (int)cmd->type);
		rc = 0;
		break;
	}
	if (rc != 0 || !command_has_request_id(cmd))
		return rc;
	recorded_len = result_pack(result, recorded);
	return store_request_put(txn, cmd->request_id, index, recorded, recorded_len);
}

int command_apply(struct store_txn *txn, const struct command *cmds, unsigned n, uint64_t index,
		  struct arena *arena, struct command_result *results)
{
	uint64_t applied;
	int rc;

	memset(results, 0, n * sizeof(*results));
	rc = store_applied_index(txn, &applied);
	if (rc != 0)
		return rc;
	if (index <= applied)
		return 0; /* replayed after a restart: already in the store */
	for (unsigned i = 0; i < n; i++) {
		rc = apply_one(txn, &cmds[i], index, arena, &results[i]);
		if (rc != 0)
			return rc;
	}
	if (index % 1024 == 0 && index > REQUEST_MEMORY) {
		rc = store_request_prune(txn, index - REQUEST_MEMORY);
		if (rc != 0)
			return rc;
	}
	return store_set_applied_index(txn, index);
}
