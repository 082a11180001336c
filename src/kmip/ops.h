/* The operation handlers, one file each (op_*.c), gathered in the table in ops.c. */
#ifndef KMIPD_SRC_KMIP_OPS_H
#define KMIPD_SRC_KMIP_OPS_H

#include "kmipd/exchange.h"

int op_discover_versions(struct kmip_op_ctx *ctx);
int op_query(struct kmip_op_ctx *ctx);

#endif
