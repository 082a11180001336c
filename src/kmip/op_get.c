/* Get: the object with its material, unsealed with the tenant KEK into arena memory (wiped
 * when the response has been written). vCenter asks with the Unique Identifier only, before
 * activating the key: Get works in every state until the object is destroyed. Key wrapping
 * and compression are not offered yet. */
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

static const char *format_name(uint32_t format)
{
	const char *name = kmip_enum_name(KMIP_FAMILY_KEY_FORMAT, format);

	return name != NULL ? name : "(unknown)";
}

/* The decoded value of the first stored instance of @name, or NULL. */
static const struct ttlv_item *stored(struct kmip_op_ctx *ctx, const struct object *obj,
				      const char *name)
{
	const struct object_attr *a = object_attr_find(obj, name, 0);

	return a != NULL ? op_value_decode(ctx, a->value, a->value_len) : NULL;
}

/* Writes Key Block {Key Format Type, Key Value {Key Material}, algorithm, length}. */
static void put_key_block(struct kmip_op_ctx *ctx, const struct object *obj, uint32_t format,
			  const uint8_t *material, size_t len)
{
	struct ttlv_writer *w = &ctx->out;
	const struct ttlv_item *algorithm = NULL, *length = NULL;

	if (obj->object_type == KMIP_OBJECT_TYPE_SYMMETRIC_KEY) {
		algorithm = stored(ctx, obj, "Cryptographic Algorithm");
		length = stored(ctx, obj, "Cryptographic Length");
	}
	ttlv_begin(w, KMIP_TAG_KEY_BLOCK);
	ttlv_put_enum(w, KMIP_TAG_KEY_FORMAT_TYPE, format);
	ttlv_begin(w, KMIP_TAG_KEY_VALUE);
	if (format == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY) {
		ttlv_begin(w, KMIP_TAG_KEY_MATERIAL);
		ttlv_put_bytes(w, KMIP_TAG_KEY, material, len);
		ttlv_end(w);
	} else {
		ttlv_put_bytes(w, KMIP_TAG_KEY_MATERIAL, material, len);
	}
	ttlv_end(w);
	if (algorithm != NULL)
		ttlv_put_item_as(w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, algorithm);
	if (length != NULL)
		ttlv_put_item_as(w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, length);
	ttlv_end(w);
}

/* The format to answer in for @obj when the client asked for @asked (NULL: none); fails
 * the item with Key Format Type Not Supported when the object cannot be given so. */
static int answer_format(struct kmip_op_ctx *ctx, const struct object *obj,
			 const struct ttlv_item *asked, uint32_t *format)
{
	uint32_t want = asked != NULL ? asked->v.enumeration : 0;

	switch (obj->object_type) {
	case KMIP_OBJECT_TYPE_SYMMETRIC_KEY:
		*format = want != 0 ? want : KMIP_KEY_FORMAT_RAW;
		if (*format == KMIP_KEY_FORMAT_RAW ||
		    *format == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY)
			return 0;
		return op_refuse(ctx, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED,
				 "Get: a Symmetric Key is returned as Raw or Transparent Symmetric "
				 "Key, not %s",
				 format_name(want));
	case KMIP_OBJECT_TYPE_SECRET_DATA:
		*format = want != 0 ? want : obj->key_format;
		if (*format == obj->key_format)
			return 0;
		return op_refuse(ctx, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED,
				 "Get: this Secret Data was registered as %s and is returned only "
				 "in that format, not %s",
				 format_name(obj->key_format), format_name(want));
	case KMIP_OBJECT_TYPE_OPAQUE_OBJECT:
		*format = 0;
		if (asked == NULL)
			return 0;
		return op_refuse(ctx, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED,
				 "Get: an Opaque Object has no Key Block; ask without a Key Format "
				 "Type");
	default:
		return op_refuse(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
				 "Get: objects of type %s cannot be returned by this server",
				 kmip_enum_name(KMIP_FAMILY_OBJECT_TYPE, obj->object_type));
	}
}

int op_get(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {
		KMIP_TAG_UNIQUE_IDENTIFIER,
		KMIP_TAG_KEY_FORMAT_TYPE,
		KMIP_TAG_KEY_WRAP_TYPE,
		KMIP_TAG_KEY_COMPRESSION_TYPE,
		KMIP_TAG_KEY_WRAPPING_SPECIFICATION,
	};
	const struct ttlv_item *format_item, *wrap_type, *compression, *wrapping;
	const struct ttlv_item *data_type;
	struct ttlv_writer *w = &ctx->out;
	const uint8_t *material;
	struct object obj;
	const char *uid;
	uint32_t format = 0;
	size_t len;

	if (op_only(ctx, ctx->payload, fields, sizeof(fields) / sizeof(fields[0])) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_KEY_FORMAT_TYPE, TTLV_ENUMERATION, &format_item) !=
		    0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_KEY_WRAP_TYPE, TTLV_ENUMERATION, &wrap_type) !=
		    0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_KEY_COMPRESSION_TYPE, TTLV_ENUMERATION,
		     &compression) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_KEY_WRAPPING_SPECIFICATION, TTLV_STRUCTURE,
		     &wrapping) != 0)
		return KMIP_OP_DONE;
	if (wrap_type != NULL && ctx->version < KMIP_V1_4)
		return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
				    "Get: Key Wrap Type needs KMIP 1.4");
	if (wrapping != NULL)
		return kmip_op_fail(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
				    "Get: key wrapping (Key Wrapping Specification) is not "
				    "supported yet; ask without it");
	if (compression != NULL)
		return kmip_op_fail(ctx, KMIP_REASON_KEY_COMPRESSION_TYPE_NOT_SUPPORTED,
				    "Get: key compression (Key Compression Type) is not supported");
	if (op_uid(ctx, &uid) != 0 || op_object_read(ctx, uid, &obj) != 0 ||
	    answer_format(ctx, &obj, format_item, &format) != 0 ||
	    op_unseal(ctx, &obj, &material, &len) != 0)
		return KMIP_OP_DONE;

	ttlv_put_enum(w, KMIP_TAG_OBJECT_TYPE, obj.object_type);
	ttlv_put_cstr(w, KMIP_TAG_UNIQUE_IDENTIFIER, obj.uid);
	switch (obj.object_type) {
	case KMIP_OBJECT_TYPE_SYMMETRIC_KEY:
		ttlv_begin(w, KMIP_TAG_SYMMETRIC_KEY);
		put_key_block(ctx, &obj, format, material, len);
		ttlv_end(w);
		break;
	case KMIP_OBJECT_TYPE_SECRET_DATA:
		data_type = stored(ctx, &obj, "Secret Data Type");
		if (data_type == NULL)
			return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
					    "Get: the record of %s has lost its Secret Data Type",
					    obj.uid);
		ttlv_begin(w, KMIP_TAG_SECRET_DATA);
		ttlv_put_item_as(w, KMIP_TAG_SECRET_DATA_TYPE, data_type);
		put_key_block(ctx, &obj, format, material, len);
		ttlv_end(w);
		break;
	default:
		data_type = stored(ctx, &obj, "Opaque Data Type");
		if (data_type == NULL)
			return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
					    "Get: the record of %s has lost its Opaque Data Type",
					    obj.uid);
		ttlv_begin(w, KMIP_TAG_OPAQUE_OBJECT);
		ttlv_put_item_as(w, KMIP_TAG_OPAQUE_DATA_TYPE, data_type);
		ttlv_put_bytes(w, KMIP_TAG_OPAQUE_DATA_VALUE, material, len);
		ttlv_end(w);
		break;
	}
	return KMIP_OP_DONE;
}
