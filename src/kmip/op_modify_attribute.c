/* Modify Attribute: a new value for one existing instance of an attribute (Attribute Index
 * 0 when the request names none). Only attributes clients may change qualify; a missing
 * instance is Item Not Found, to be added with Add Attribute first. */
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

int op_modify_attribute(struct kmip_op_ctx *ctx)
{
	struct kmip_attr attr;
	struct object obj;
	const uint8_t *value;
	const char *uid, *name;
	uint32_t index;
	size_t len;

	if (op_payload_attribute(ctx, &attr) != 0)
		return KMIP_OP_DONE;
	if (attr.kind == KMIP_ATTR_STANDARD && (attr.def->flags & KMIP_ATTR_CLIENT_MODIFY) == 0)
		return kmip_op_fail(ctx, KMIP_REASON_PERMISSION_DENIED,
				    "Modify Attribute: %s cannot be changed by clients",
				    attr.def->name);
	index = attr.has_index ? (uint32_t)attr.index : 0;
	if (op_uid(ctx, &uid) != 0 || op_object_read(ctx, uid, &obj) != 0 ||
	    op_attr_check_settable(ctx, &attr, obj.object_type, false) != 0)
		return KMIP_OP_DONE;
	name = op_attr_name(ctx, &attr);
	if (name == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
				    "Modify Attribute: out of memory");
	if (object_attr_find(&obj, name, index) == NULL)
		return kmip_op_fail(
			ctx, KMIP_REASON_ITEM_NOT_FOUND,
			"Modify Attribute: %s has no %s with Attribute Index %u (add it "
			"with Add Attribute)",
			obj.uid, name, index);
	if (op_value_encode(ctx, attr.def, attr.value, &value, &len) != 0)
		return KMIP_OP_DONE;

	return op_propose_attribute(ctx, COMMAND_ATTR_MODIFY, obj.uid, name, index, value, len,
				    false, attr.value, op_done_attribute);
}
