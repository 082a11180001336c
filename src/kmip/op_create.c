/* Create: a new AES key generated here, sealed under the tenant KEK and replicated before
 * the client hears of it. vCenter's only way of getting keys: Symmetric Key, Cryptographic
 * Algorithm AES, Length 256, Usage Mask Encrypt|Decrypt; the key starts Pre-Active. */
#include <openssl/crypto.h>

#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

static void create_done(struct kmip_op_ctx *ctx, const struct command_result *result)
{
	const struct op_pending *p = ctx->op_state;

	if (result->status != 0) {
		op_fail_result(ctx, result);
		return;
	}
	ttlv_put_enum(&ctx->out, KMIP_TAG_OBJECT_TYPE, p->object_type);
	ttlv_put_cstr(&ctx->out, KMIP_TAG_UNIQUE_IDENTIFIER, p->uid);
	op_set_id_placeholder(ctx, p->uid);
}

/* Checks the algorithm and length the template asked for; the key size in bytes. */
static int key_size(struct kmip_op_ctx *ctx, const struct op_template *tmpl, size_t *bytes)
{
	const char *name;
	int32_t bits;

	if (tmpl->algorithm == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
			     "Create: the Template-Attribute has no Cryptographic Algorithm (this "
			     "server makes AES keys)");
		return KMIPD_EINVAL;
	}
	if (tmpl->algorithm->v.enumeration != KMIP_ALG_AES) {
		name = kmip_enum_name(KMIP_FAMILY_ALG, tmpl->algorithm->v.enumeration);
		kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
			     "Create: Cryptographic Algorithm %s is not supported; this server "
			     "makes AES keys",
			     name != NULL ? name : "(unknown)");
		return KMIPD_EINVAL;
	}
	if (tmpl->length == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
			     "Create: the Template-Attribute has no Cryptographic Length (128, 192 "
			     "or 256 for AES)");
		return KMIPD_EINVAL;
	}
	bits = tmpl->length->v.integer;
	if (bits != 128 && bits != 192 && bits != 256) {
		kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
			     "Create: Cryptographic Length %d is not an AES key length (128, 192 "
			     "or 256)",
			     bits);
		return KMIPD_EINVAL;
	}
	*bytes = (size_t)bits / 8;
	return 0;
}

int op_create(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_OBJECT_TYPE, KMIP_TAG_TEMPLATE_ATTRIBUTE};
	const struct ttlv_item *type, *template_attribute;
	struct op_template tmpl;
	struct op_pending *pending;
	struct object obj;
	struct command cmd;
	uint8_t key[32];
	size_t bytes;
	int rv;

	if (op_only(ctx, ctx->payload, fields, 2) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_OBJECT_TYPE, TTLV_ENUMERATION, &type) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_TEMPLATE_ATTRIBUTE, TTLV_STRUCTURE,
		     &template_attribute) != 0)
		return KMIP_OP_DONE;
	if (type == NULL)
		return kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
				    "Create: the request has no Object Type");
	if (type->v.enumeration != KMIP_OBJECT_TYPE_SYMMETRIC_KEY) {
		const char *name = kmip_enum_name(KMIP_FAMILY_OBJECT_TYPE, type->v.enumeration);

		return kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
				    "Create makes Symmetric Keys only; Object Type %s is not "
				    "supported (use Register to store other objects)",
				    name != NULL ? name : "(unknown)");
	}
	if (op_object_new(ctx, KMIP_OBJECT_TYPE_SYMMETRIC_KEY, template_attribute, &obj, &tmpl) !=
		    0 ||
	    key_size(ctx, &tmpl, &bytes) != 0)
		return KMIP_OP_DONE;

	if (crypto_random(key, bytes) != 0)
		return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
				    "Create: the random generator failed; no key was made");
	rv = op_seal(ctx, &obj, key, bytes);
	OPENSSL_cleanse(key, sizeof(key));
	if (rv != 0)
		return KMIP_OP_DONE;
	obj.key_format = KMIP_KEY_FORMAT_RAW;

	pending = op_pending_new(ctx, obj.uid);
	if (pending == NULL)
		return KMIP_OP_DONE;
	pending->object_type = obj.object_type;
	op_command_init(ctx, &cmd, COMMAND_OBJECT_CREATE, obj.uid);
	cmd.time = obj.initial_date;
	cmd.object = obj;
	return service_propose(ctx, &cmd, create_done);
}
