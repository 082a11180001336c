/* The operation table: which KMIP operations this server implements, since which protocol
 * version, and the handler of each. Everything not listed is Operation Not Supported. */
#include <stddef.h>

#include "kmipd/kmip_spec.h"
#include "ops.h"

static const struct kmip_op_def ops[] = {
	{KMIP_OP_CREATE, KMIP_V1_0, op_create},
	{KMIP_OP_REGISTER, KMIP_V1_0, op_register},
	{KMIP_OP_LOCATE, KMIP_V1_0, op_locate},
	{KMIP_OP_GET, KMIP_V1_0, op_get},
	{KMIP_OP_GET_ATTRIBUTES, KMIP_V1_0, op_get_attributes},
	{KMIP_OP_GET_ATTRIBUTE_LIST, KMIP_V1_0, op_get_attribute_list},
	{KMIP_OP_ADD_ATTRIBUTE, KMIP_V1_0, op_add_attribute},
	{KMIP_OP_MODIFY_ATTRIBUTE, KMIP_V1_0, op_modify_attribute},
	{KMIP_OP_DELETE_ATTRIBUTE, KMIP_V1_0, op_delete_attribute},
	{KMIP_OP_ACTIVATE, KMIP_V1_0, op_activate},
	{KMIP_OP_REVOKE, KMIP_V1_0, op_revoke},
	{KMIP_OP_DESTROY, KMIP_V1_0, op_destroy},
	{KMIP_OP_QUERY, KMIP_V1_0, op_query},
	{KMIP_OP_DISCOVER_VERSIONS, KMIP_V1_1, op_discover_versions},
};

const struct kmip_op_def *kmip_op_lookup(uint32_t operation)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].operation == operation)
			return &ops[i];
	return NULL;
}

void kmip_op_foreach(void (*fn)(const struct kmip_op_def *op, void *arg), void *arg)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		fn(&ops[i], arg);
}
