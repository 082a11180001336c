/* Add Attribute: a new instance of an attribute. The server picks the index: the next free
 * one for attributes that may have several instances (every x- attribute), 0 for the others,
 * which may not be added twice. vCenter tags each key with three x- attributes in one
 * batch and expects each back with its assigned index. */
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

static void add_done(struct kmip_op_ctx *ctx, const struct command_result *result)
{
	const struct op_pending *p = ctx->op_state;

	if (result->status != 0) {
		op_fail_result(ctx, result);
		return;
	}
	ttlv_put_cstr(&ctx->out, KMIP_TAG_UNIQUE_IDENTIFIER, p->uid);
	kmip_attr_put(&ctx->out, p->attr_name, strlen(p->attr_name), (int32_t)result->index, true,
		      p->attr_value);
}

int op_add_attribute(struct kmip_op_ctx *ctx)
{
	struct kmip_attr attr;
	struct object obj;
	const uint8_t *value;
	const char *uid, *name;
	size_t len;
	int64_t max_index;
	bool single;

	if (op_payload_attribute(ctx, &attr) != 0)
		return KMIP_OP_DONE;
	if (attr.has_index)
		return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
				    "Add Attribute: the server assigns the Attribute Index; send "
				    "the attribute without one");
	if (op_uid(ctx, &uid) != 0 || op_object_read(ctx, uid, &obj) != 0 ||
	    op_attr_check_settable(ctx, &attr, obj.object_type, false) != 0)
		return KMIP_OP_DONE;
	name = op_attr_name(ctx, &attr);
	if (name == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
				    "Add Attribute: out of memory");
	single = attr.kind == KMIP_ATTR_STANDARD && (attr.def->flags & KMIP_ATTR_MULTI) == 0;
	if (single && object_attr_count(&obj, name, &max_index) > 0)
		return kmip_op_fail(ctx, KMIP_REASON_ILLEGAL_OPERATION,
				    "Add Attribute: %s already has %s, which has a single "
				    "instance; change it with Modify Attribute",
				    obj.uid, name);
	if (op_value_encode(ctx, attr.def, attr.value, &value, &len) != 0)
		return KMIP_OP_DONE;

	return op_propose_attribute(ctx, COMMAND_ATTR_ADD, obj.uid, name, 0, value, len, single,
				    attr.value, add_done);
}
