/* Register: a client hands over an object it made — a Symmetric Key (Raw or Transparent
 * Symmetric Key), Secret Data or an Opaque Object — which is sealed under the tenant KEK and
 * replicated like a created one. Wrapped key blocks are refused for now.
 *
 * The Secret Data Type and the Opaque Data Type are part of the object, not attributes in
 * KMIP 1.x; they are kept as stored instances under those names, which are not attribute
 * names, so they are never shown as attributes. */
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

/* What the request's object holds. */
struct material {
	uint32_t format; /* Key Format Type of a key block; 0 for an Opaque Object */
	const uint8_t *data;
	size_t len;
	const struct ttlv_item *algorithm; /* Key Block fields, NULL if absent */
	const struct ttlv_item *length;
	const struct ttlv_item *data_type; /* Secret Data Type / Opaque Data Type */
};

static void register_done(struct kmip_op_ctx *ctx, const struct command_result *result)
{
	const struct op_pending *p = ctx->op_state;

	if (result->status != 0) {
		op_fail_result(ctx, result);
		return;
	}
	ttlv_put_cstr(&ctx->out, KMIP_TAG_UNIQUE_IDENTIFIER, p->uid);
	op_set_id_placeholder(ctx, p->uid);
}

static const char *format_name(uint32_t format)
{
	const char *name = kmip_enum_name(KMIP_FAMILY_KEY_FORMAT, format);

	return name != NULL ? name : "an unknown format";
}

/* Reads the Key Value of a key block: Key Material as a Byte String, or (Transparent
 * Symmetric Key) a structure holding Key. */
static int key_value(struct kmip_op_ctx *ctx, const struct ttlv_item *value, struct material *m)
{
	static const uint32_t value_fields[] = {KMIP_TAG_KEY_MATERIAL, KMIP_TAG_ATTRIBUTE};
	const struct ttlv_item *material, *key;

	if (value->type != TTLV_STRUCTURE)
		return op_refuse(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
				 "Register: wrapped key blocks are not supported yet (the Key "
				 "Value is not a structure)");
	if (ttlv_child(value, KMIP_TAG_ATTRIBUTE) != NULL)
		return op_refuse(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
				 "Register: attributes inside the Key Value are not supported; "
				 "send them in the Template-Attribute");
	if (op_only(ctx, value, value_fields, 2) != 0)
		return KMIPD_EINVAL;
	material = ttlv_child(value, KMIP_TAG_KEY_MATERIAL);
	if (material == NULL || ttlv_next_same(material) != NULL)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Register: the Key Value needs exactly one Key Material");
	if (m->format == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY) {
		static const uint32_t transparent_fields[] = {KMIP_TAG_KEY};

		if (material->type != TTLV_STRUCTURE)
			return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
					 "Register: Transparent Symmetric Key material is a "
					 "structure holding Key");
		if (op_only(ctx, material, transparent_fields, 1) != 0 ||
		    op_child(ctx, material, KMIP_TAG_KEY, TTLV_BYTE_STRING, &key) != 0)
			return KMIPD_EINVAL;
		if (key == NULL)
			return op_refuse(ctx, KMIP_REASON_MISSING_DATA,
					 "Register: the Transparent Symmetric Key has no Key");
		material = key;
	} else if (material->type != TTLV_BYTE_STRING) {
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Register: %s Key Material must be a Byte String",
				 format_name(m->format));
	}
	m->data = material->v.bytes;
	m->len = material->length;
	if (m->len == 0)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Register: the Key Material is empty");
	return 0;
}

/* Reads the Key Block of a Symmetric Key or Secret Data, whose allowed formats are
 * @formats (@count of them). */
static int key_block(struct kmip_op_ctx *ctx, const struct ttlv_item *block,
		     const uint32_t *formats, size_t count, struct material *m)
{
	static const uint32_t fields[] = {
		KMIP_TAG_KEY_FORMAT_TYPE,
		KMIP_TAG_KEY_COMPRESSION_TYPE,
		KMIP_TAG_KEY_VALUE,
		KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM,
		KMIP_TAG_CRYPTOGRAPHIC_LENGTH,
		KMIP_TAG_KEY_WRAPPING_DATA,
	};
	const struct ttlv_item *format, *compression, *value, *wrapping;
	size_t i = 0;

	if (block == NULL)
		return op_refuse(ctx, KMIP_REASON_MISSING_DATA,
				 "Register: the object has no Key Block");
	if (op_only(ctx, block, fields, sizeof(fields) / sizeof(fields[0])) != 0 ||
	    op_child(ctx, block, KMIP_TAG_KEY_FORMAT_TYPE, TTLV_ENUMERATION, &format) != 0 ||
	    op_child(ctx, block, KMIP_TAG_KEY_COMPRESSION_TYPE, TTLV_ENUMERATION, &compression) !=
		    0 ||
	    op_child(ctx, block, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, TTLV_ENUMERATION,
		     &m->algorithm) != 0 ||
	    op_child(ctx, block, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, TTLV_INTEGER, &m->length) != 0 ||
	    op_child(ctx, block, KMIP_TAG_KEY_WRAPPING_DATA, TTLV_STRUCTURE, &wrapping) != 0)
		return KMIPD_EINVAL;
	value = ttlv_child(block, KMIP_TAG_KEY_VALUE);
	if (wrapping != NULL)
		return op_refuse(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
				 "Register: wrapped key blocks are not supported yet (the Key "
				 "Block has Key Wrapping Data)");
	if (compression != NULL)
		return op_refuse(ctx, KMIP_REASON_KEY_COMPRESSION_TYPE_NOT_SUPPORTED,
				 "Register: key compression is not supported");
	if (format == NULL)
		return op_refuse(ctx, KMIP_REASON_MISSING_DATA,
				 "Register: the Key Block has no Key Format Type");
	while (i < count && formats[i] != format->v.enumeration)
		i++;
	if (i == count)
		return op_refuse(ctx, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED,
				 "Register: Key Format Type %s is not supported for this "
				 "object type (use %s%s%s)",
				 format_name(format->v.enumeration), format_name(formats[0]),
				 count > 1 ? " or " : "", count > 1 ? format_name(formats[1]) : "");
	m->format = format->v.enumeration;
	if (value == NULL || ttlv_next_same(value) != NULL)
		return op_refuse(ctx, KMIP_REASON_MISSING_DATA,
				 "Register: the Key Block needs exactly one Key Value");
	return key_value(ctx, value, m);
}

/* The value of the Template-Attribute's @tmpl_item and the Key Block's @block_item, which
 * must agree when both are there. */
static const struct ttlv_item *agree(struct kmip_op_ctx *ctx, const char *what,
				     const struct ttlv_item *tmpl_item,
				     const struct ttlv_item *block_item, int *rv)
{
	*rv = 0;
	if (tmpl_item != NULL && block_item != NULL &&
	    (tmpl_item->type != block_item->type ||
	     tmpl_item->v.enumeration != block_item->v.enumeration)) {
		kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
			     "Register: the %s of the Key Block and of the Template-Attribute "
			     "differ",
			     what);
		*rv = KMIPD_EINVAL;
	}
	return block_item != NULL ? block_item : tmpl_item;
}

/* A Symmetric Key: checks its algorithm and length against the material, and records them
 * as attributes unless the template did. */
static int symmetric_key(struct kmip_op_ctx *ctx, const struct ttlv_item *object,
			 const struct op_template *tmpl, struct object *obj, struct material *m)
{
	static const uint32_t fields[] = {KMIP_TAG_KEY_BLOCK};
	static const uint32_t formats[] = {KMIP_KEY_FORMAT_RAW,
					   KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY};
	const struct ttlv_item *algorithm, *length, *block;
	struct ttlv_item computed = {
		.tag = KMIP_TAG_CRYPTOGRAPHIC_LENGTH, .type = TTLV_INTEGER, .length = 4};
	unsigned since;
	int rv;

	if (op_only(ctx, object, fields, 1) != 0 ||
	    op_child(ctx, object, KMIP_TAG_KEY_BLOCK, TTLV_STRUCTURE, &block) != 0 ||
	    key_block(ctx, block, formats, 2, m) != 0)
		return KMIPD_EINVAL;
	algorithm = agree(ctx, "Cryptographic Algorithm", tmpl->algorithm, m->algorithm, &rv);
	if (rv != 0)
		return rv;
	length = agree(ctx, "Cryptographic Length", tmpl->length, m->length, &rv);
	if (rv != 0)
		return rv;
	if (algorithm == NULL)
		return op_refuse(ctx, KMIP_REASON_MISSING_DATA,
				 "Register: a Symmetric Key needs a Cryptographic Algorithm in "
				 "its Key Block");
	since = kmip_enum_since(KMIP_FAMILY_ALG, algorithm->v.enumeration);
	if (since == 0 || since > ctx->version)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Register: 0x%08X is not a Cryptographic Algorithm of this "
				 "protocol version",
				 algorithm->v.enumeration);
	if (algorithm->v.enumeration == KMIP_ALG_AES) {
		if (m->len != 16 && m->len != 24 && m->len != 32)
			return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
					 "Register: an AES key is 16, 24 or 32 bytes, not %zu",
					 m->len);
		if (length != NULL && (size_t)length->v.integer != m->len * 8)
			return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
					 "Register: Cryptographic Length %d does not match the "
					 "%zu-byte key material (%zu bits)",
					 length->v.integer, m->len, m->len * 8);
	}
	if (length == NULL) {
		if (m->len > INT32_MAX / 8)
			return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
					 "Register: the key material is too long");
		computed.v.integer = (int32_t)(m->len * 8);
		length = &computed;
	}
	if (tmpl->algorithm == NULL &&
	    op_object_add_attr(ctx, obj, "Cryptographic Algorithm", algorithm) != 0)
		return KMIPD_ENOMEM;
	if (tmpl->length == NULL &&
	    op_object_add_attr(ctx, obj, "Cryptographic Length", length) != 0)
		return KMIPD_ENOMEM;
	return 0;
}

static int secret_data(struct kmip_op_ctx *ctx, const struct ttlv_item *object, struct object *obj,
		       struct material *m)
{
	static const uint32_t fields[] = {KMIP_TAG_SECRET_DATA_TYPE, KMIP_TAG_KEY_BLOCK};
	static const uint32_t formats[] = {KMIP_KEY_FORMAT_OPAQUE, KMIP_KEY_FORMAT_RAW};
	const struct ttlv_item *block;
	unsigned since;

	if (op_only(ctx, object, fields, 2) != 0 ||
	    op_child(ctx, object, KMIP_TAG_SECRET_DATA_TYPE, TTLV_ENUMERATION, &m->data_type) !=
		    0 ||
	    op_child(ctx, object, KMIP_TAG_KEY_BLOCK, TTLV_STRUCTURE, &block) != 0)
		return KMIPD_EINVAL;
	if (m->data_type == NULL)
		return op_refuse(ctx, KMIP_REASON_MISSING_DATA,
				 "Register: Secret Data needs a Secret Data Type");
	since = kmip_enum_since(KMIP_FAMILY_SECRET_DATA_TYPE, m->data_type->v.enumeration);
	if (since == 0 || since > ctx->version)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Register: 0x%08X is not a Secret Data Type (Password or Seed)",
				 m->data_type->v.enumeration);
	if (key_block(ctx, block, formats, 2, m) != 0)
		return KMIPD_EINVAL;
	if (m->algorithm != NULL || m->length != NULL)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Register: Secret Data has no Cryptographic Algorithm or "
				 "Length; leave them out of its Key Block");
	return op_object_add_attr(ctx, obj, "Secret Data Type", m->data_type);
}

static int opaque_object(struct kmip_op_ctx *ctx, const struct ttlv_item *object,
			 struct object *obj, struct material *m)
{
	static const uint32_t fields[] = {KMIP_TAG_OPAQUE_DATA_TYPE, KMIP_TAG_OPAQUE_DATA_VALUE};
	const struct ttlv_item *value;

	if (op_only(ctx, object, fields, 2) != 0 ||
	    op_child(ctx, object, KMIP_TAG_OPAQUE_DATA_TYPE, TTLV_ENUMERATION, &m->data_type) !=
		    0 ||
	    op_child(ctx, object, KMIP_TAG_OPAQUE_DATA_VALUE, TTLV_BYTE_STRING, &value) != 0)
		return KMIPD_EINVAL;
	if (m->data_type == NULL || value == NULL)
		return op_refuse(ctx, KMIP_REASON_MISSING_DATA,
				 "Register: an Opaque Object needs an Opaque Data Type and an "
				 "Opaque Data Value");
	if (value->length == 0)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Register: the Opaque Data Value is empty");
	m->data = value->v.bytes;
	m->len = value->length;
	return op_object_add_attr(ctx, obj, "Opaque Data Type", m->data_type);
}

int op_register(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_OBJECT_TYPE, KMIP_TAG_TEMPLATE_ATTRIBUTE,
					  KMIP_TAG_SYMMETRIC_KEY, KMIP_TAG_SECRET_DATA,
					  KMIP_TAG_OPAQUE_OBJECT};
	static const uint32_t object_tags[] = {
		[KMIP_OBJECT_TYPE_SYMMETRIC_KEY] = KMIP_TAG_SYMMETRIC_KEY,
		[KMIP_OBJECT_TYPE_SECRET_DATA] = KMIP_TAG_SECRET_DATA,
		[KMIP_OBJECT_TYPE_OPAQUE_OBJECT] = KMIP_TAG_OPAQUE_OBJECT,
	};
	const struct ttlv_item *type, *template_attribute, *object;
	struct material m = {0};
	struct op_template tmpl;
	struct op_pending *pending;
	struct object obj;
	struct command cmd;
	uint32_t t;
	int rv;

	if (op_child(ctx, ctx->payload, KMIP_TAG_OBJECT_TYPE, TTLV_ENUMERATION, &type) != 0)
		return KMIP_OP_DONE;
	if (type == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
				    "Register: the request has no Object Type");
	t = type->v.enumeration;
	if (t >= sizeof(object_tags) / sizeof(object_tags[0]) || object_tags[t] == 0) {
		const char *name = kmip_enum_name(KMIP_FAMILY_OBJECT_TYPE, t);

		return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
				    "Register: Object Type %s is not supported; this server "
				    "stores Symmetric Keys, Secret Data and Opaque Objects",
				    name != NULL ? name : "(unknown)");
	}
	if (op_only(ctx, ctx->payload, fields, sizeof(fields) / sizeof(fields[0])) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_TEMPLATE_ATTRIBUTE, TTLV_STRUCTURE,
		     &template_attribute) != 0 ||
	    op_child(ctx, ctx->payload, object_tags[t], TTLV_STRUCTURE, &object) != 0)
		return KMIP_OP_DONE;
	for (size_t i = 0; i < sizeof(object_tags) / sizeof(object_tags[0]); i++)
		if (object_tags[i] != 0 && i != t && ttlv_child(ctx->payload, object_tags[i]))
			return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
					    "Register: the request holds a %s, but its Object Type "
					    "is %s",
					    kmip_tag_name(object_tags[i]),
					    kmip_enum_name(KMIP_FAMILY_OBJECT_TYPE, t));
	if (object == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
				    "Register: the request declares Object Type %s but holds no "
				    "such object",
				    kmip_enum_name(KMIP_FAMILY_OBJECT_TYPE, t));

	if (op_object_new(ctx, t, template_attribute, &obj, &tmpl) != 0)
		return KMIP_OP_DONE;
	switch (t) {
	case KMIP_OBJECT_TYPE_SYMMETRIC_KEY:
		rv = symmetric_key(ctx, object, &tmpl, &obj, &m);
		obj.key_format = KMIP_KEY_FORMAT_RAW; /* Transparent is Raw under a structure */
		break;
	case KMIP_OBJECT_TYPE_SECRET_DATA:
		rv = secret_data(ctx, object, &obj, &m);
		obj.key_format = m.format;
		break;
	default:
		rv = opaque_object(ctx, object, &obj, &m);
		break;
	}
	if (rv != 0 || op_seal(ctx, &obj, m.data, m.len) != 0)
		return KMIP_OP_DONE;

	pending = op_pending_new(ctx, obj.uid);
	if (pending == NULL)
		return KMIP_OP_DONE;
	pending->object_type = obj.object_type;
	op_command_init(ctx, &cmd, COMMAND_OBJECT_CREATE, obj.uid);
	cmd.time = obj.initial_date;
	cmd.object = obj;
	return service_propose(ctx, &cmd, register_done);
}
