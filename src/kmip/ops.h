/* The operation handlers, one file each (op_*.c), gathered in the table in ops.c, and the
 * helpers they share (op_common.c): reading request fields and the Unique Identifier (or
 * the ID Placeholder), loading an object of the session's tenant, writing attributes,
 * building new objects from a Template-Attribute, sealing material, and turning the result
 * of a replicated command into a KMIP result.
 *
 * Helpers that return int return 0 on success or a negative KMIPD_E* code after failing the
 * item (kmip_op_fail with a reason and a message): the handler then returns KMIP_OP_DONE.
 * Everything they hand out is allocated from ctx->arena and lives until the response has
 * been written. */
#ifndef KMIPD_SRC_KMIP_OPS_H
#define KMIPD_SRC_KMIP_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/attr.h"
#include "kmipd/command.h"
#include "kmipd/exchange.h"
#include "kmipd/object.h"
#include "kmipd/service.h"

int op_create(struct kmip_op_ctx *ctx);
int op_register(struct kmip_op_ctx *ctx);
int op_locate(struct kmip_op_ctx *ctx);
int op_get(struct kmip_op_ctx *ctx);
int op_get_attributes(struct kmip_op_ctx *ctx);
int op_get_attribute_list(struct kmip_op_ctx *ctx);
int op_add_attribute(struct kmip_op_ctx *ctx);
int op_modify_attribute(struct kmip_op_ctx *ctx);
int op_delete_attribute(struct kmip_op_ctx *ctx);
int op_activate(struct kmip_op_ctx *ctx);
int op_revoke(struct kmip_op_ctx *ctx);
int op_destroy(struct kmip_op_ctx *ctx);
int op_query(struct kmip_op_ctx *ctx);
int op_discover_versions(struct kmip_op_ctx *ctx);

/* The specification's name of the item's operation ("Get"), for messages. */
const char *op_name(const struct kmip_op_ctx *ctx);

/* kmip_op_fail() for helpers: fails the item and returns KMIPD_EINVAL. */
int op_refuse(struct kmip_op_ctx *ctx, uint32_t reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Request fields. */

/* Fails the item (Invalid Field) if @parent (a structure of the request) has a child whose
 * tag is not one of the @count @tags. */
int op_only(struct kmip_op_ctx *ctx, const struct ttlv_item *parent, const uint32_t *tags,
	    size_t count);

/* The only child of @parent with @tag, in *out (NULL when absent). Fails the item (Invalid
 * Field) when it appears more than once or is not of TTLV @type. */
int op_child(struct kmip_op_ctx *ctx, const struct ttlv_item *parent, uint32_t tag, uint8_t type,
	     const struct ttlv_item **out);

/* The Unique Identifier the item is about: the payload's, or when it has none the ID
 * Placeholder that an earlier item of the batch set. Fails with Missing Data when there is
 * neither, and with Item Not Found for a text that cannot be one of our identifiers. */
int op_uid(struct kmip_op_ctx *ctx, const char **uid);

/* The session of the item (ctx->app); NULL after failing the item when the connection has
 * no store to work on (tools and fuzzers run exchanges without one). */
struct session *op_session(struct kmip_op_ctx *ctx);

/* Sets the ID Placeholder of the exchange to @uid (copied into the arena). */
void op_set_id_placeholder(struct kmip_op_ctx *ctx, const char *uid);

/* Reads object @uid of the session's tenant into @obj. An object of another tenant is not
 * found, exactly like one that does not exist (Item Not Found). */
int op_object_read(struct kmip_op_ctx *ctx, const char *uid, struct object *obj);

/* Attribute values. */

/* The encoding kept in struct object_attr.value for the Attribute Value @value of the
 * attribute @def (NULL for custom attributes): the item under the Attribute Value tag, with
 * the fields of a standard structure in the specification's order, so that equal values
 * always encode to equal bytes (Locate compares them). */
int op_value_encode(struct kmip_op_ctx *ctx, const struct kmip_attr_def *def,
		    const struct ttlv_item *value, const uint8_t **data, size_t *len);

/* Decodes a stored value back into an item; NULL if it is damaged. */
const struct ttlv_item *op_value_decode(struct kmip_op_ctx *ctx, const uint8_t *data, size_t len);

/* True for the attributes kept as typed fields of struct object (Unique Identifier, Object
 * Type, State, the lifecycle dates, Revocation Reason) rather than in its attrs. */
bool op_attr_is_typed(const struct kmip_attr_def *def);

/* Fills @value (tag Attribute Value) with the typed attribute @def of @obj; false when the
 * object has none (a date that was never set, no revocation). */
bool op_typed_value(struct kmip_op_ctx *ctx, const struct object *obj,
		    const struct kmip_attr_def *def, struct ttlv_item *value);

/* Checks that a client may give the attribute @attr to an object of @object_type: when
 * @creating (a Template-Attribute of Create or Register) a refusal is Invalid Field, else
 * (Add / Modify Attribute) Permission Denied; settings kmipd cannot honour are Feature Not
 * Supported. Says nothing about instances already present. */
int op_attr_check_settable(struct kmip_op_ctx *ctx, const struct kmip_attr *attr,
			   uint32_t object_type, bool creating);

/* Copies the attribute name of @attr into the arena, NUL-terminated. */
const char *op_attr_name(struct kmip_op_ctx *ctx, const struct kmip_attr *attr);

/* Writing attributes to the response payload; only what ctx->version has is written. */

/* Every instance of the attribute named @name (@len bytes) that @obj has, as Attribute
 * structures (Attribute Index when > 0). Returns how many were written. */
size_t op_put_attribute(struct kmip_op_ctx *ctx, const struct object *obj, const char *name,
			size_t len);
/* Every attribute of @obj: the typed ones, then the others in the order they were added.
 * Revocation Reason is left out (PyKMIP clients cannot decode it): it is returned only when
 * asked for by name. */
void op_put_all_attributes(struct kmip_op_ctx *ctx, const struct object *obj);
/* The name of every attribute @obj has, each once (Get Attribute List). */
void op_put_attribute_names(struct kmip_op_ctx *ctx, const struct object *obj);

/* New objects (Create, Register). */

/* What op_object_new found in the Template-Attribute that the operation checks further. */
struct op_template {
	const struct ttlv_item *algorithm; /* Cryptographic Algorithm value, NULL if absent */
	const struct ttlv_item *length;	   /* Cryptographic Length value, NULL if absent */
};

/* Makes a new object of @object_type for the session's tenant: a fresh uid, Pre-Active
 * (Active when the template holds an Activation Date that has passed), Initial and Last
 * Change Date now, and the attributes of the Template-Attribute @template_attribute (may
 * be NULL), each checked and stored. */
int op_object_new(struct kmip_op_ctx *ctx, uint32_t object_type,
		  const struct ttlv_item *template_attribute, struct object *obj,
		  struct op_template *tmpl);

/* Adds a stored attribute instance to @obj (next free index) whose value is @value. */
int op_object_add_attr(struct kmip_op_ctx *ctx, struct object *obj, const char *name,
		       const struct ttlv_item *value);

/* Seals @len bytes of @plain for @obj under the session tenant's KEK into obj->sealed. */
int op_seal(struct kmip_op_ctx *ctx, struct object *obj, const uint8_t *plain, size_t len);

/* Opens the material of @obj into arena memory (wiped with the arena). Fails with
 * Permission Denied when the object has been destroyed. */
int op_unseal(struct kmip_op_ctx *ctx, const struct object *obj, const uint8_t **plain,
	      size_t *len);

/* Writes. A handler that proposes a command keeps what its done function needs in a
 * struct op_pending (ctx->op_state); the done function runs after the command has been
 * applied (or could not be) and writes the payload or fails the item. */
struct op_pending {
	const char *uid;
	uint32_t object_type;
	const char *attr_name;
	uint32_t attr_index;
	const struct ttlv_item *attr_value; /* Attribute Value to answer with */
};

/* A zeroed op_pending for @uid, installed as ctx->op_state; NULL after failing the item. */
struct op_pending *op_pending_new(struct kmip_op_ctx *ctx, const char *uid);

/* Proposes a change to instance @index of attribute @name of @uid (Add, Modify or Delete
 * Attribute): the command carries @value (encoded; NULL for a delete) and, for Add,
 * whether the attribute has a single instance; @done answers with @answer, the Attribute
 * Value (see op_done_attribute). Returns what service_propose returns. */
int op_propose_attribute(struct kmip_op_ctx *ctx, enum command_type type, const char *uid,
			 const char *name, uint32_t index, const uint8_t *value, size_t value_len,
			 bool single_instance, const struct ttlv_item *answer,
			 service_done_fn done);

/* Fills the common part of a command about object @uid of the session's tenant. */
void op_command_init(struct kmip_op_ctx *ctx, struct command *cmd, enum command_type type,
		     const char *uid);

/* Fails the item for a command that was refused (result->message says why) or could not
 * be applied (no quorum, storage full, ...). Returns KMIP_OP_DONE. */
int op_fail_result(struct kmip_op_ctx *ctx, const struct command_result *result);

/* A done function for operations that answer with the Unique Identifier only (Activate,
 * Revoke, Destroy). */
void op_done_uid(struct kmip_op_ctx *ctx, const struct command_result *result);

/* Done function answering the Unique Identifier and the attribute instance the pending
 * state names (attr_name, attr_index, attr_value): Modify and Delete Attribute. */
void op_done_attribute(struct kmip_op_ctx *ctx, const struct command_result *result);

/* Reads the one Attribute of an Add or Modify Attribute payload (its value required) into
 * @attr. 0, or the item has been failed (naming the operation): return KMIP_OP_DONE. */
int op_payload_attribute(struct kmip_op_ctx *ctx, struct kmip_attr *attr);

#endif
