/* Get Attribute List: the names of the attributes an object has, each once, limited to those
 * the request's protocol version knows. */
#include "kmipd/kmip_spec.h"
#include "ops.h"

int op_get_attribute_list(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_UNIQUE_IDENTIFIER};
	struct object obj;
	const char *uid;

	if (op_only(ctx, ctx->payload, fields, 1) != 0 || op_uid(ctx, &uid) != 0 ||
	    op_object_read(ctx, uid, &obj) != 0)
		return KMIP_OP_DONE;
	ttlv_put_cstr(&ctx->out, KMIP_TAG_UNIQUE_IDENTIFIER, obj.uid);
	op_put_attribute_names(ctx, &obj);
	return KMIP_OP_DONE;
}
