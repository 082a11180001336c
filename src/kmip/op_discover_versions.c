/* Discover Versions: the protocol versions this server speaks, highest first, limited to
 * those the client listed when it listed any. vCenter opens every connection with it. */
#include "kmipd/kmip_spec.h"
#include "ops.h"

static void put_version(struct ttlv_writer *w, unsigned version)
{
	ttlv_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_put_integer(w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, (int32_t)KMIP_VERSION_MAJOR(version));
	ttlv_put_integer(w, KMIP_TAG_PROTOCOL_VERSION_MINOR, (int32_t)KMIP_VERSION_MINOR(version));
	ttlv_end(w);
}

/* Reads one Protocol Version structure of the request; 0 if it is not well formed. */
static unsigned read_version(const struct ttlv_item *pv)
{
	const struct ttlv_item *major = ttlv_child(pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR);
	const struct ttlv_item *minor = ttlv_child(pv, KMIP_TAG_PROTOCOL_VERSION_MINOR);

	if (major == NULL || minor == NULL || major->type != TTLV_INTEGER ||
	    minor->type != TTLV_INTEGER || major->v.integer < 0 || major->v.integer > 255 ||
	    minor->v.integer < 0 || minor->v.integer > 255)
		return 0;
	return KMIP_VERSION((unsigned)major->v.integer, (unsigned)minor->v.integer);
}

int op_discover_versions(struct kmip_op_ctx *ctx)
{
	const struct ttlv_item *p = ctx->payload;
	bool listed = p->v.children.count > 0;

	for (const struct ttlv_item *c = p->v.children.first; c != NULL; c = c->next)
		if (c->tag != KMIP_TAG_PROTOCOL_VERSION || read_version(c) == 0)
			return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
					    "a Discover Versions request holds only Protocol "
					    "Version structures (Major and Minor integers)");

	for (size_t i = 0; i < kmip_supported_versions_count; i++) {
		unsigned v = kmip_supported_versions[i];
		bool wanted = !listed;

		for (const struct ttlv_item *c = p->v.children.first; c && !wanted; c = c->next)
			wanted = read_version(c) == v;
		if (wanted)
			put_version(&ctx->out, v);
	}
	return KMIP_OP_DONE;
}
