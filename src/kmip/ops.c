/* The operation table: which KMIP operations this server implements, since which protocol
 * version, and the handler of each. Everything not listed is Operation Not Supported. */
#include <stddef.h>

#include "kmipd/kmip_spec.h"
#include "ops.h"

static const struct kmip_op_def ops[] = {
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
