/* Destroy: erases the object's key material for good; its metadata stays (state Destroyed
 * or Destroyed Compromised) so that the identifier is never reused and Get Attributes still
 * answers. An Active object must be revoked first: the state machine refuses it with
 * Permission Denied. */
#include "kmipd/kmip_spec.h"
#include "ops.h"

int op_destroy(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_UNIQUE_IDENTIFIER};
	struct object obj;
	struct command cmd;
	const char *uid;

	if (op_only(ctx, ctx->payload, fields, 1) != 0 || op_uid(ctx, &uid) != 0 ||
	    op_object_read(ctx, uid, &obj) != 0 || op_pending_new(ctx, obj.uid) == NULL)
		return KMIP_OP_DONE;
	op_command_init(ctx, &cmd, COMMAND_DESTROY, obj.uid);
	return service_propose(ctx, &cmd, op_done_uid);
}
