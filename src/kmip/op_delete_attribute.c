/* Delete Attribute: removes one instance of an attribute (Attribute Index 0 when the request
 * names none) and answers with the instance as it was. The indexes of the other instances
 * do not change. */
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

int op_delete_attribute(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_UNIQUE_IDENTIFIER, KMIP_TAG_ATTRIBUTE_NAME,
					  KMIP_TAG_ATTRIBUTE_INDEX};
	const struct ttlv_item *name_item, *index_item;
	const struct kmip_attr_def *def;
	const struct object_attr *instance;
	enum kmip_attr_kind kind;
	struct object obj;
	const char *uid, *name;
	uint32_t index = 0;
	int shown;

	if (op_only(ctx, ctx->payload, fields, 3) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_ATTRIBUTE_NAME, TTLV_TEXT_STRING, &name_item) !=
		    0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_ATTRIBUTE_INDEX, TTLV_INTEGER, &index_item) != 0)
		return KMIP_OP_DONE;
	if (name_item == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
				    "Delete Attribute: the request has no Attribute Name");
	if (index_item != NULL) {
		if (index_item->v.integer < 0)
			return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
					    "Delete Attribute: Attribute Index must not be "
					    "negative");
		index = (uint32_t)index_item->v.integer;
	}
	shown = (int)(name_item->length > 64 ? 64 : name_item->length);
	kind = kmip_attr_classify((const char *)name_item->v.bytes, name_item->length, ctx->version,
				  &def);
	if (kind == KMIP_ATTR_UNKNOWN)
		return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
				    "Delete Attribute: '%.*s' is not an attribute of KMIP %u.%u",
				    shown, (const char *)name_item->v.bytes,
				    KMIP_VERSION_MAJOR(ctx->version),
				    KMIP_VERSION_MINOR(ctx->version));
	if (kind == KMIP_ATTR_CUSTOM_SERVER)
		return kmip_op_fail(ctx, KMIP_REASON_PERMISSION_DENIED,
				    "Delete Attribute: %.*s: y- attributes belong to the server",
				    shown, (const char *)name_item->v.bytes);
	if (kind == KMIP_ATTR_STANDARD && (def->flags & KMIP_ATTR_CLIENT_DELETE) == 0)
		return kmip_op_fail(ctx, KMIP_REASON_PERMISSION_DENIED,
				    "Delete Attribute: %s cannot be deleted by clients", def->name);
	name = arena_strndup(ctx->arena, (const char *)name_item->v.bytes, name_item->length);
	if (name == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
				    "Delete Attribute: out of memory");
	if (op_uid(ctx, &uid) != 0 || op_object_read(ctx, uid, &obj) != 0)
		return KMIP_OP_DONE;
	instance = strlen(name) == name_item->length ? object_attr_find(&obj, name, index) : NULL;
	if (instance == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_ITEM_NOT_FOUND,
				    "Delete Attribute: %s has no %.*s with Attribute Index %u",
				    obj.uid, shown, (const char *)name_item->v.bytes, index);

	return op_propose_attribute(ctx, COMMAND_ATTR_DELETE, obj.uid, name, index, NULL, 0, false,
				    op_value_decode(ctx, instance->value, instance->value_len),
				    op_done_attribute);
}
