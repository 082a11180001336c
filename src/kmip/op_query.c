/* Query: what this server implements (operations, object types) and who it is (Vendor
 * Identification). Query functions that have nothing to report answer nothing, as the
 * specification allows. */
#include "kmipd/kmip_spec.h"
#include "ops.h"

/* The object types this server stores, in the order Query reports them. */
static const uint32_t object_types[] = {
	KMIP_OBJECT_TYPE_SYMMETRIC_KEY,
	KMIP_OBJECT_TYPE_SECRET_DATA,
	KMIP_OBJECT_TYPE_OPAQUE_OBJECT,
};

static void put_operation(const struct kmip_op_def *op, void *arg)
{
	struct kmip_op_ctx *ctx = arg;

	if (op->since <= ctx->version)
		ttlv_put_enum(&ctx->out, KMIP_TAG_OPERATION, op->operation);
}

int op_query(struct kmip_op_ctx *ctx)
{
	const struct kmip_exchange_config *config = &ctx->exchange->config;
	bool operations = false, objects = false, server = false;

	for (const struct ttlv_item *c = ctx->payload->v.children.first; c; c = c->next) {
		if (c->tag != KMIP_TAG_QUERY_FUNCTION || c->type != TTLV_ENUMERATION)
			return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
					    "a Query request holds only Query Function "
					    "enumerations");
		switch (c->v.enumeration) {
		case KMIP_QUERY_OPERATIONS:
			operations = true;
			break;
		case KMIP_QUERY_OBJECTS:
			objects = true;
			break;
		case KMIP_QUERY_SERVER_INFORMATION:
			server = true;
			break;
		default:
			/* Namespaces, extensions, profiles ...: none to report. */
			break;
		}
	}
	if (ctx->payload->v.children.count == 0)
		return kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
				    "a Query request needs at least one Query Function");

	/* The response fields go in the order the specification lists them. */
	if (operations)
		kmip_op_foreach(put_operation, ctx);
	if (objects)
		for (size_t i = 0; i < sizeof(object_types) / sizeof(object_types[0]); i++)
			ttlv_put_enum(&ctx->out, KMIP_TAG_OBJECT_TYPE, object_types[i]);
	if (server) {
		const char *vendor = config->identity && config->identity->vendor
					     ? config->identity->vendor
					     : "kmipd";

		ttlv_put_cstr(&ctx->out, KMIP_TAG_VENDOR_IDENTIFICATION, vendor);
	}
	return KMIP_OP_DONE;
}
