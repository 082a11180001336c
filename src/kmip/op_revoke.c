/* Revoke: takes an object out of use. Key Compromise and CA Compromise make it Compromised
 * (with the Compromise Occurrence Date the client gives, else its Initial Date); any other
 * reason makes it Deactivated. The transitions are the state machine's (command_apply);
 * here the request is checked and carried over. */
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

int op_revoke(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_UNIQUE_IDENTIFIER, KMIP_TAG_REVOCATION_REASON,
					  KMIP_TAG_COMPROMISE_OCCURRENCE_DATE};
	static const uint32_t reason_fields[] = {KMIP_TAG_REVOCATION_REASON_CODE,
						 KMIP_TAG_REVOCATION_MESSAGE};
	const struct ttlv_item *reason, *code, *message, *occurred;
	const char *text = NULL;
	struct object obj;
	struct command cmd;
	const char *uid;
	unsigned since;
	bool compromise;

	if (op_only(ctx, ctx->payload, fields, 3) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_REVOCATION_REASON, TTLV_STRUCTURE, &reason) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, TTLV_DATE_TIME,
		     &occurred) != 0)
		return KMIP_OP_DONE;
	if (reason == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
				    "Revoke: the request has no Revocation Reason");
	if (op_only(ctx, reason, reason_fields, 2) != 0 ||
	    op_child(ctx, reason, KMIP_TAG_REVOCATION_REASON_CODE, TTLV_ENUMERATION, &code) != 0 ||
	    op_child(ctx, reason, KMIP_TAG_REVOCATION_MESSAGE, TTLV_TEXT_STRING, &message) != 0)
		return KMIP_OP_DONE;
	if (code == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
				    "Revoke: the Revocation Reason has no Revocation Reason Code");
	since = kmip_enum_since(KMIP_FAMILY_REVOCATION, code->v.enumeration);
	if (since == 0 || since > ctx->version)
		return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
				    "Revoke: 0x%08X is not a Revocation Reason Code",
				    code->v.enumeration);
	compromise = code->v.enumeration == KMIP_REVOCATION_KEY_COMPROMISE ||
		     code->v.enumeration == KMIP_REVOCATION_CA_COMPROMISE;
	if (occurred != NULL && !compromise)
		return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
				    "Revoke: a Compromise Occurrence Date goes only with the "
				    "reasons Key Compromise and CA Compromise");
	if (message != NULL) {
		if (memchr(message->v.bytes, 0, message->length) != NULL)
			return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
					    "Revoke: the Revocation Message contains a NUL "
					    "character");
		text = arena_strndup(ctx->arena, (const char *)message->v.bytes, message->length);
		if (text == NULL)
			return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
					    "Revoke: out of memory");
	}
	if (op_uid(ctx, &uid) != 0 || op_object_read(ctx, uid, &obj) != 0 ||
	    op_pending_new(ctx, obj.uid) == NULL)
		return KMIP_OP_DONE;

	op_command_init(ctx, &cmd, COMMAND_REVOKE, obj.uid);
	cmd.revocation_code = code->v.enumeration;
	cmd.revocation_message = text;
	if (compromise)
		cmd.compromise_occurrence_date =
			occurred != NULL ? occurred->v.date_time : obj.initial_date;
	return service_propose(ctx, &cmd, op_done_uid);
}
