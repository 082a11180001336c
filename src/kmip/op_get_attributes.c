/* Get Attributes: the attributes of an object, all of them or those named. vCenter asks for
 * one x- attribute at a time, most of which do not exist yet: a name the object does not
 * have (or this protocol version does not know) is simply left out, and the answer is still
 * Success with the Unique Identifier. */
#include "kmipd/kmip_spec.h"
#include "ops.h"

int op_get_attributes(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_UNIQUE_IDENTIFIER, KMIP_TAG_ATTRIBUTE_NAME};
	const struct ttlv_item *first;
	struct object obj;
	const char *uid;

	if (op_only(ctx, ctx->payload, fields, 2) != 0)
		return KMIP_OP_DONE;
	first = ttlv_child(ctx->payload, KMIP_TAG_ATTRIBUTE_NAME);
	for (const struct ttlv_item *n = first; n != NULL; n = ttlv_next_same(n))
		if (n->type != TTLV_TEXT_STRING)
			return kmip_op_fail(
				ctx, KMIP_REASON_INVALID_FIELD,
				"Get Attributes: an Attribute Name must be a Text String");
	if (op_uid(ctx, &uid) != 0 || op_object_read(ctx, uid, &obj) != 0)
		return KMIP_OP_DONE;

	ttlv_put_cstr(&ctx->out, KMIP_TAG_UNIQUE_IDENTIFIER, obj.uid);
	if (first == NULL)
		op_put_all_attributes(ctx, &obj);
	for (const struct ttlv_item *n = first; n != NULL; n = ttlv_next_same(n))
		op_put_attribute(ctx, &obj, (const char *)n->v.bytes, n->length);
	return KMIP_OP_DONE;
}
