/* Activate: Pre-Active → Active, with the Activation Date set to now. vCenter calls it after
 * Get and Get Attributes(State) on a key it created. The state rule itself is the state
 * machine's (command_apply); an object in another state is refused with Permission Denied. */
#include "kmipd/kmip_spec.h"
#include "ops.h"

int op_activate(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_UNIQUE_IDENTIFIER};
	struct object obj;
	struct command cmd;
	const char *uid;

	if (op_only(ctx, ctx->payload, fields, 1) != 0 || op_uid(ctx, &uid) != 0 ||
	    op_object_read(ctx, uid, &obj) != 0 || op_pending_new(ctx, obj.uid) == NULL)
		return KMIP_OP_DONE;
	op_command_init(ctx, &cmd, COMMAND_ACTIVATE, obj.uid);
	return service_propose(ctx, &cmd, op_done_uid);
}
