/* What the object operations share: request fields, the Unique Identifier and the ID
 * Placeholder, loading objects of the session's tenant, the attribute view of an object
 * (typed fields and stored instances), new objects from a Template-Attribute, sealing, and
 * the mapping of command results to KMIP result reasons (the one place that decides it). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/keyring.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

/* Attribute names longer than this are refused: nothing legitimate needs more. */
#define ATTR_NAME_MAX 255

const char *op_name(const struct kmip_op_ctx *ctx)
{
	const char *name = kmip_enum_name(KMIP_FAMILY_OP, ctx->item->operation);

	return name != NULL ? name : "the operation";
}

int op_refuse(struct kmip_op_ctx *ctx, uint32_t reason, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	kmip_op_fail(ctx, reason, "%s", text);
	return KMIPD_EINVAL;
}

static const char *tag_name(uint32_t tag)
{
	const char *name = kmip_tag_name(tag);

	return name != NULL ? name : "an unknown field";
}

int op_only(struct kmip_op_ctx *ctx, const struct ttlv_item *parent, const uint32_t *tags,
	    size_t count)
{
	for (const struct ttlv_item *c = parent->v.children.first; c != NULL; c = c->next) {
		size_t i = 0;

		while (i < count && tags[i] != c->tag)
			i++;
		if (i == count) {
			kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
				     "%s: %s does not belong in the %s structure (tag 0x%06X)",
				     op_name(ctx), tag_name(c->tag), tag_name(parent->tag), c->tag);
			return KMIPD_EINVAL;
		}
	}
	return 0;
}

int op_child(struct kmip_op_ctx *ctx, const struct ttlv_item *parent, uint32_t tag, uint8_t type,
	     const struct ttlv_item **out)
{
	const struct ttlv_item *c = ttlv_child(parent, tag);

	*out = NULL;
	if (c == NULL)
		return 0;
	if (ttlv_next_same(c) != NULL) {
		kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD, "%s: %s appears more than once",
			     op_name(ctx), tag_name(tag));
		return KMIPD_EINVAL;
	}
	if (c->type != type) {
		kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD, "%s: %s must be a %s, not a %s",
			     op_name(ctx), tag_name(tag), ttlv_type_name(type),
			     ttlv_type_name(c->type));
		return KMIPD_EINVAL;
	}
	*out = c;
	return 0;
}

int op_uid(struct kmip_op_ctx *ctx, const char **uid)
{
	const struct ttlv_item *item;
	const char *placeholder = ctx->exchange->id_placeholder;
	int rv;

	rv = op_child(ctx, ctx->payload, KMIP_TAG_UNIQUE_IDENTIFIER, TTLV_TEXT_STRING, &item);
	if (rv != 0)
		return rv;
	if (item == NULL) {
		if (placeholder == NULL) {
			kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA,
				     "%s: the request has no Unique Identifier and no earlier item "
				     "of this batch (Create, Register, Locate) set the ID "
				     "Placeholder",
				     op_name(ctx));
			return KMIPD_EINVAL;
		}
		*uid = placeholder;
		ctx->result->uid = placeholder;
		return 0;
	}
	/* Every identifier this server hands out is a 36-character UUID: anything else (or a
	 * text with a NUL, which would cut the store key short) names nothing. */
	if (item->length != OBJECT_UID_LEN || memchr(item->v.bytes, 0, item->length) != NULL) {
		kmip_op_fail(ctx, KMIP_REASON_ITEM_NOT_FOUND,
			     "%s: no object with Unique Identifier '%.*s'", op_name(ctx),
			     (int)(item->length > 64 ? 64 : item->length),
			     (const char *)item->v.bytes);
		return KMIPD_ENOT_FOUND;
	}
	*uid = arena_strndup(ctx->arena, (const char *)item->v.bytes, item->length);
	if (*uid == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE, "%s: out of memory", op_name(ctx));
		return KMIPD_ENOMEM;
	}
	ctx->result->uid = *uid;
	return 0;
}

/* The item's session, if it can reach the key store; NULL after failing the item. */
static struct session *store_session(struct kmip_op_ctx *ctx)
{
	struct session *session = service_session(ctx);

	if (session == NULL || session->service == NULL || session->service->store == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
			     "%s: this connection has no key store (the server is not set up "
			     "for object operations)",
			     op_name(ctx));
		return NULL;
	}
	return session;
}

/* Fails the item for @rv, what keyring_get() or keyring_check() said of the session
 * tenant's KEK (version @version; 0: the current one), with the keyring's reason. */
static void fail_without_kek(struct kmip_op_ctx *ctx, struct session *session, int rv,
			     uint32_t version)
{
	struct keyring *ring = session->service->keyring;
	char why[400] = "";
	int state = ring != NULL ? keyring_check(ring, session->tenant, why, sizeof(why))
				 : KMIPD_ENOT_FOUND;

	if (state == KMIPD_EPERMISSION)
		kmip_op_fail(ctx, KMIP_REASON_PERMISSION_DENIED, "%s: %s", op_name(ctx), why);
	else if (state == KMIPD_EUNAVAILABLE)
		kmip_op_fail(ctx, KMIP_REASON_CRYPTOGRAPHIC_FAILURE, "%s: %s", op_name(ctx), why);
	else if (state == 0 && rv == KMIPD_ENOT_FOUND && version != 0)
		kmip_op_fail(ctx, KMIP_REASON_CRYPTOGRAPHIC_FAILURE,
			     "%s: version %u of tenant %s's key-encryption key is not loaded on "
			     "this node yet (a rotation is under way); try again",
			     op_name(ctx), version, session->tenant);
	else
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
			     "%s: tenant %s has no usable key-encryption key (its root key could "
			     "not be unwrapped on this node; see the server log)",
			     op_name(ctx), session->tenant);
}

struct session *op_session(struct kmip_op_ctx *ctx)
{
	struct session *session = store_session(ctx);
	int rv;

	if (session == NULL)
		return NULL;
	/* A tenant whose root key its provider refuses, or has not unwrapped yet, is not
	 * served at all: nothing of it is read or changed until its KEK is back. */
	rv = session->service->keyring == NULL
		     ? 0
		     : keyring_check(session->service->keyring, session->tenant, NULL, 0);
	if (rv == KMIPD_EPERMISSION || rv == KMIPD_EUNAVAILABLE) {
		fail_without_kek(ctx, session, rv, 0);
		return NULL;
	}
	return session;
}

void op_set_id_placeholder(struct kmip_op_ctx *ctx, const char *uid)
{
	const char *copy = arena_strndup(ctx->arena, uid, strlen(uid));

	if (copy != NULL) {
		ctx->exchange->id_placeholder = copy;
		ctx->result->uid = copy;
	}
}

int op_object_read(struct kmip_op_ctx *ctx, const char *uid, struct object *obj)
{
	struct session *session = op_session(ctx);
	struct store_txn *txn;
	int done_rv, rv;

	if (session == NULL)
		return KMIPD_EINVAL;
	txn = service_read(ctx, &done_rv);
	if (txn == NULL)
		return KMIPD_EIO;
	rv = store_object_get(txn, session->tenant, uid, ctx->arena, obj);
	store_txn_abort(txn);
	if (rv == KMIPD_ENOT_FOUND) {
		kmip_op_fail(ctx, KMIP_REASON_ITEM_NOT_FOUND,
			     "%s: no object with Unique Identifier '%s'", op_name(ctx), uid);
		return rv;
	}
	if (rv != 0) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE, "%s: reading object '%s' failed: %s",
			     op_name(ctx), uid, kmipd_strerror(rv));
		return rv;
	}
	return 0;
}

int op_value_encode(struct kmip_op_ctx *ctx, const struct kmip_attr_def *def,
		    const struct ttlv_item *value, const uint8_t **data, size_t *len)
{
	struct buf b = BUF_INIT;
	struct ttlv_writer w;
	uint8_t *copy = NULL;
	int rv;

	ttlv_writer_init(&w, &b);
	if (def != NULL && def->fields != NULL && value->type == TTLV_STRUCTURE) {
		ttlv_begin(&w, KMIP_TAG_ATTRIBUTE_VALUE);
		for (const struct kmip_attr_field *f = def->fields; f->tag != 0; f++)
			for (const struct ttlv_item *c = value->v.children.first; c; c = c->next)
				if (c->tag == f->tag)
					ttlv_put_item(&w, c);
		ttlv_end(&w);
	} else {
		ttlv_put_item_as(&w, KMIP_TAG_ATTRIBUTE_VALUE, value);
	}
	rv = ttlv_writer_finish(&w);
	if (rv == 0) {
		copy = arena_alloc(ctx->arena, b.len);
		if (copy != NULL)
			memcpy(copy, b.data, b.len);
	}
	*data = copy;
	*len = b.len;
	buf_free(&b);
	if (copy == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
			     "%s: the attribute value could not be encoded (%s)", op_name(ctx),
			     kmipd_strerror(rv != 0 ? rv : KMIPD_ENOMEM));
		return rv != 0 ? rv : KMIPD_ENOMEM;
	}
	return 0;
}

const struct ttlv_item *op_value_decode(struct kmip_op_ctx *ctx, const uint8_t *data, size_t len)
{
	struct ttlv_item *item;

	if (data == NULL || len == 0 || ttlv_decode(data, len, NULL, ctx->arena, &item, NULL) != 0)
		return NULL;
	return item;
}

/* The attributes kept as fields of struct object, in the order Get Attributes lists them. */
static const uint32_t typed_tags[] = {
	KMIP_TAG_UNIQUE_IDENTIFIER,
	KMIP_TAG_OBJECT_TYPE,
	KMIP_TAG_STATE,
	KMIP_TAG_INITIAL_DATE,
	KMIP_TAG_ACTIVATION_DATE,
	KMIP_TAG_DEACTIVATION_DATE,
	KMIP_TAG_COMPROMISE_OCCURRENCE_DATE,
	KMIP_TAG_COMPROMISE_DATE,
	KMIP_TAG_DESTROY_DATE,
	KMIP_TAG_REVOCATION_REASON,
	KMIP_TAG_LAST_CHANGE_DATE,
};
#define TYPED_COUNT (sizeof(typed_tags) / sizeof(typed_tags[0]))

bool op_attr_is_typed(const struct kmip_attr_def *def)
{
	for (size_t i = 0; def != NULL && i < TYPED_COUNT; i++)
		if (typed_tags[i] == def->tag)
			return true;
	return false;
}

static bool date_value(struct ttlv_item *value, int64_t date)
{
	value->type = TTLV_DATE_TIME;
	value->length = 8;
	value->v.date_time = date;
	return date != 0;
}

static bool enum_value(struct ttlv_item *value, uint32_t e)
{
	value->type = TTLV_ENUMERATION;
	value->length = 4;
	value->v.enumeration = e;
	return true;
}

/* Builds the Revocation Reason structure {Revocation Reason Code, Revocation Message}. */
static bool revocation_value(struct kmip_op_ctx *ctx, const struct object *obj,
			     struct ttlv_item *value)
{
	struct ttlv_item *code;

	if (obj->revocation_code == 0)
		return false;
	code = ttlv_new(ctx->arena, KMIP_TAG_REVOCATION_REASON_CODE, TTLV_ENUMERATION);
	if (code == NULL)
		return false;
	code->v.enumeration = obj->revocation_code;
	value->type = TTLV_STRUCTURE;
	ttlv_append(value, code);
	if (obj->revocation_message != NULL) {
		struct ttlv_item *text =
			ttlv_new_bytes(ctx->arena, KMIP_TAG_REVOCATION_MESSAGE, TTLV_TEXT_STRING,
				       obj->revocation_message, strlen(obj->revocation_message));

		if (text == NULL)
			return false;
		ttlv_append(value, text);
	}
	return true;
}

bool op_typed_value(struct kmip_op_ctx *ctx, const struct object *obj,
		    const struct kmip_attr_def *def, struct ttlv_item *value)
{
	memset(value, 0, sizeof(*value));
	value->tag = KMIP_TAG_ATTRIBUTE_VALUE;
	switch (def->tag) {
	case KMIP_TAG_UNIQUE_IDENTIFIER:
		value->type = TTLV_TEXT_STRING;
		value->length = (uint32_t)strlen(obj->uid);
		value->v.bytes = (const uint8_t *)obj->uid;
		return true;
	case KMIP_TAG_OBJECT_TYPE:
		return enum_value(value, obj->object_type);
	case KMIP_TAG_STATE:
		return enum_value(value, obj->state);
	case KMIP_TAG_INITIAL_DATE:
		return date_value(value, obj->initial_date);
	case KMIP_TAG_ACTIVATION_DATE:
		return date_value(value, obj->activation_date);
	case KMIP_TAG_DEACTIVATION_DATE:
		return date_value(value, obj->deactivation_date);
	case KMIP_TAG_COMPROMISE_OCCURRENCE_DATE:
		return date_value(value, obj->compromise_occurrence_date);
	case KMIP_TAG_COMPROMISE_DATE:
		return date_value(value, obj->compromise_date);
	case KMIP_TAG_DESTROY_DATE:
		return date_value(value, obj->destroy_date);
	case KMIP_TAG_LAST_CHANGE_DATE:
		return date_value(value, obj->last_change_date);
	case KMIP_TAG_REVOCATION_REASON:
		return revocation_value(ctx, obj, value);
	default:
		return false;
	}
}

const char *op_attr_name(struct kmip_op_ctx *ctx, const struct kmip_attr *attr)
{
	return arena_strndup(ctx->arena, (const char *)attr->name.data, attr->name.len);
}

int op_attr_check_settable(struct kmip_op_ctx *ctx, const struct kmip_attr *attr,
			   uint32_t object_type, bool creating)
{
	const struct kmip_attr_def *def = attr->def;
	uint32_t refusal = creating ? KMIP_REASON_INVALID_FIELD : KMIP_REASON_PERMISSION_DENIED;
	int shown = (int)(attr->name.len > 64 ? 64 : attr->name.len);
	const char *name = (const char *)attr->name.data;
	const char *type = kmip_enum_name(KMIP_FAMILY_OBJECT_TYPE, object_type);

	if (attr->name.len > ATTR_NAME_MAX || memchr(name, 0, attr->name.len) != NULL) {
		kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
			     "%s: attribute names are at most %d bytes of text without NUL "
			     "characters ('%.*s...')",
			     op_name(ctx), ATTR_NAME_MAX, shown, name);
		return KMIPD_EINVAL;
	}
	if (attr->kind == KMIP_ATTR_CUSTOM_SERVER) {
		kmip_op_fail(ctx, refusal,
			     "%s: %.*s: y- attributes are set by the server; name client "
			     "attributes x-...",
			     op_name(ctx), shown, name);
		return KMIPD_EPERMISSION;
	}
	if (attr->kind != KMIP_ATTR_STANDARD)
		return 0;
	if ((def->flags & KMIP_ATTR_CLIENT_SET) == 0) {
		kmip_op_fail(ctx, refusal, "%s: %s is set by the server, not by clients",
			     op_name(ctx), def->name);
		return KMIPD_EPERMISSION;
	}
	if (!kmip_attr_applies(def, object_type)) {
		kmip_op_fail(ctx, refusal, "%s: %s does not apply to %s objects", op_name(ctx),
			     def->name, type != NULL ? type : "these");
		return KMIPD_EPERMISSION;
	}
	switch (def->tag) {
	case KMIP_TAG_ACTIVATION_DATE:
		if (creating)
			break;
		kmip_op_fail(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
			     "%s: changing the Activation Date is not supported; use Activate to "
			     "activate the object",
			     op_name(ctx));
		return KMIPD_EUNSUPPORTED;
	case KMIP_TAG_DEACTIVATION_DATE:
		kmip_op_fail(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
			     "%s: setting a Deactivation Date is not supported; use Revoke to "
			     "deactivate the object",
			     op_name(ctx));
		return KMIPD_EUNSUPPORTED;
	case KMIP_TAG_SENSITIVE:
	case KMIP_TAG_EXTRACTABLE:
		/* Only the values that ask for nothing may be stored: kmipd does not yet
		 * refuse to return material, so keeping the others would be a false promise. */
		if (attr->value != NULL &&
		    attr->value->v.boolean == (def->tag == KMIP_TAG_SENSITIVE)) {
			kmip_op_fail(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
				     "%s: %s = %s is not enforced by this server and is refused",
				     op_name(ctx), def->name,
				     attr->value->v.boolean ? "true" : "false");
			return KMIPD_EUNSUPPORTED;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Writes one stored instance as an Attribute structure. */
static void put_stored(struct kmip_op_ctx *ctx, const struct object_attr *a)
{
	const struct ttlv_item *value = op_value_decode(ctx, a->value, a->value_len);

	/* A damaged value is left out rather than failing every read of the object. */
	if (value != NULL)
		kmip_attr_put(&ctx->out, a->name, strlen(a->name), (int32_t)a->index, false, value);
}

static bool stored_visible(const struct kmip_op_ctx *ctx, const struct object_attr *a)
{
	const struct kmip_attr_def *def;

	/* Internal records (Secret Data Type, ...) are not KMIP attributes: classified
	 * unknown, they are never shown; neither is what this version lacks. */
	return kmip_attr_classify(a->name, strlen(a->name), ctx->version, &def) !=
	       KMIP_ATTR_UNKNOWN;
}

size_t op_put_attribute(struct kmip_op_ctx *ctx, const struct object *obj, const char *name,
			size_t len)
{
	const struct kmip_attr_def *def;
	enum kmip_attr_kind kind = kmip_attr_classify(name, len, ctx->version, &def);
	size_t written = 0;

	if (kind == KMIP_ATTR_UNKNOWN)
		return 0;
	if (kind == KMIP_ATTR_STANDARD && op_attr_is_typed(def)) {
		struct ttlv_item value;

		if (!op_typed_value(ctx, obj, def, &value))
			return 0;
		kmip_attr_put(&ctx->out, def->name, strlen(def->name), 0, false, &value);
		return 1;
	}
	for (size_t i = 0; i < obj->attr_count; i++) {
		const struct object_attr *a = &obj->attrs[i];

		if (strlen(a->name) == len && memcmp(a->name, name, len) == 0) {
			put_stored(ctx, a);
			written++;
		}
	}
	return written;
}

void op_put_all_attributes(struct kmip_op_ctx *ctx, const struct object *obj)
{
	for (size_t i = 0; i < TYPED_COUNT; i++) {
		const struct kmip_attr_def *def = kmip_attr_def_by_tag(typed_tags[i]);

		/* PyKMIP's client (and tools built on it) cannot decode a Revocation Reason
		 * and fails the whole answer; it is given only to clients that name it. */
		if (def != NULL && def->tag != KMIP_TAG_REVOCATION_REASON)
			op_put_attribute(ctx, obj, def->name, strlen(def->name));
	}
	for (size_t i = 0; i < obj->attr_count; i++)
		if (stored_visible(ctx, &obj->attrs[i]))
			put_stored(ctx, &obj->attrs[i]);
}

void op_put_attribute_names(struct kmip_op_ctx *ctx, const struct object *obj)
{
	for (size_t i = 0; i < TYPED_COUNT; i++) {
		const struct kmip_attr_def *def = kmip_attr_def_by_tag(typed_tags[i]);
		struct ttlv_item value;

		if (def != NULL && def->since <= ctx->version &&
		    op_typed_value(ctx, obj, def, &value))
			ttlv_put_cstr(&ctx->out, KMIP_TAG_ATTRIBUTE_NAME, def->name);
	}
	for (size_t i = 0; i < obj->attr_count; i++) {
		const struct object_attr *a = &obj->attrs[i];
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(obj->attrs[j].name, a->name) == 0;
		if (!seen && stored_visible(ctx, a))
			ttlv_put_cstr(&ctx->out, KMIP_TAG_ATTRIBUTE_NAME, a->name);
	}
}

int op_object_add_attr(struct kmip_op_ctx *ctx, struct object *obj, const char *name,
		       const struct ttlv_item *value)
{
	const struct kmip_attr_def *def = kmip_attr_def_by_name(name, strlen(name));
	const uint8_t *data;
	size_t len;
	int64_t max_index;
	int rv;

	rv = op_value_encode(ctx, def, value, &data, &len);
	if (rv != 0)
		return rv;
	object_attr_count(obj, name, &max_index);
	rv = object_attr_add(obj, ctx->arena, name, (uint32_t)(max_index + 1), data, len);
	if (rv != 0) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE, "%s: out of memory", op_name(ctx));
		return rv;
	}
	return 0;
}

/* Takes one Attribute of a Template-Attribute into @obj. */
static int take_attribute(struct kmip_op_ctx *ctx, const struct ttlv_item *item, int64_t now,
			  struct object *obj, struct op_template *tmpl)
{
	struct kmip_attr attr;
	struct kmip_attr_problem problem;
	const struct kmip_attr_def *def;
	const char *name;
	int64_t max_index;
	int rv;

	if (kmip_attr_parse(item, ctx->version, KMIP_ATTR_VALUE_REQUIRED, &attr, &problem) != 0) {
		kmip_op_fail(ctx, problem.reason, "%s: %s", op_name(ctx), problem.message);
		return KMIPD_EINVAL;
	}
	rv = op_attr_check_settable(ctx, &attr, obj->object_type, true);
	if (rv != 0)
		return rv;
	def = attr.def;
	name = op_attr_name(ctx, &attr);
	if (name == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE, "%s: out of memory", op_name(ctx));
		return KMIPD_ENOMEM;
	}
	if (def != NULL && (def->flags & KMIP_ATTR_MULTI) == 0 &&
	    (object_attr_count(obj, name, &max_index) > 0 ||
	     (def->tag == KMIP_TAG_ACTIVATION_DATE && obj->activation_date != 0))) {
		kmip_op_fail(ctx, KMIP_REASON_INVALID_FIELD,
			     "%s: %s appears more than once in the Template-Attribute; it has a "
			     "single instance",
			     op_name(ctx), def->name);
		return KMIPD_EINVAL;
	}
	if (def != NULL && def->tag == KMIP_TAG_ACTIVATION_DATE) {
		/* kmipd changes states only on request: a date still to come would leave an
		 * object Pre-Active after its activation time. */
		if (attr.value->v.date_time > now) {
			kmip_op_fail(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
				     "%s: an Activation Date in the future is not supported; omit "
				     "it and call Activate when the object should become Active",
				     op_name(ctx));
			return KMIPD_EUNSUPPORTED;
		}
		obj->activation_date = attr.value->v.date_time;
		obj->state = KMIP_STATE_ACTIVE;
		return 0;
	}
	if (def != NULL && def->tag == KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM)
		tmpl->algorithm = attr.value;
	if (def != NULL && def->tag == KMIP_TAG_CRYPTOGRAPHIC_LENGTH)
		tmpl->length = attr.value;
	return op_object_add_attr(ctx, obj, name, attr.value);
}

int op_object_new(struct kmip_op_ctx *ctx, uint32_t object_type,
		  const struct ttlv_item *template_attribute, struct object *obj,
		  struct op_template *tmpl)
{
	struct session *session = op_session(ctx);
	int64_t now = service_now();
	int rv;

	memset(obj, 0, sizeof(*obj));
	memset(tmpl, 0, sizeof(*tmpl));
	if (session == NULL)
		return KMIPD_EINVAL;
	if (crypto_uuid(obj->uid) != 0) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
			     "%s: the random generator failed to make a Unique Identifier",
			     op_name(ctx));
		return KMIPD_ECRYPTO;
	}
	snprintf(obj->tenant, sizeof(obj->tenant), "%s", session->tenant);
	obj->object_type = object_type;
	obj->state = KMIP_STATE_PRE_ACTIVE;
	obj->initial_date = now;
	obj->last_change_date = now;
	if (template_attribute == NULL)
		return 0;
	for (const struct ttlv_item *c = template_attribute->v.children.first; c; c = c->next) {
		if (c->tag == KMIP_TAG_NAME) {
			kmip_op_fail(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
				     "%s: templates (a Name in the Template-Attribute) are not "
				     "supported; send the attributes themselves",
				     op_name(ctx));
			return KMIPD_EUNSUPPORTED;
		}
		if (c->tag != KMIP_TAG_ATTRIBUTE) {
			kmip_op_fail(
				ctx, KMIP_REASON_INVALID_FIELD,
				"%s: a Template-Attribute holds only Attribute structures, not "
				"%s",
				op_name(ctx), tag_name(c->tag));
			return KMIPD_EINVAL;
		}
		rv = take_attribute(ctx, c, now, obj, tmpl);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* Copies version @version (0: the current one, whose version goes into *@got) of the
 * session tenant's KEK into a fresh locked key; NULL after failing the item. */
static struct crypto_key *tenant_kek(struct kmip_op_ctx *ctx, uint32_t version, uint32_t *got)
{
	struct session *session = store_session(ctx);
	struct crypto_key *kek;
	int rv;

	if (session == NULL)
		return NULL;
	kek = crypto_key_borrow();
	if (kek == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE, "%s: out of memory", op_name(ctx));
		return NULL;
	}
	rv = session->service->keyring == NULL
		     ? KMIPD_ENOT_FOUND
		     : keyring_get(session->service->keyring, session->tenant, version, kek, got);
	if (rv != 0) {
		crypto_key_return(kek);
		fail_without_kek(ctx, session, rv, version);
		return NULL;
	}
	return kek;
}

int op_seal(struct kmip_op_ctx *ctx, struct object *obj, const uint8_t *plain, size_t len)
{
	struct buf sealed = BUF_INIT;
	struct crypto_key *kek;
	uint32_t version = 1;
	uint8_t aad[160];
	size_t aad_len;
	uint8_t *copy = NULL;
	int rv;

	aad_len = crypto_object_aad(aad, sizeof(aad), obj->tenant, obj->uid, obj->object_type);
	kek = tenant_kek(ctx, 0, &version);
	if (kek == NULL)
		return KMIPD_ENOT_FOUND;
	rv = crypto_seal_kek(kek, version, aad, aad_len, plain, len, &sealed);
	crypto_key_return(kek);
	if (rv == 0 && (copy = arena_alloc(ctx->arena, sealed.len)) != NULL)
		memcpy(copy, sealed.data, sealed.len);
	obj->sealed = copy;
	obj->sealed_len = sealed.len;
	buf_free(&sealed);
	if (copy == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
			     "%s: sealing the key material failed: %s", op_name(ctx),
			     kmipd_strerror(rv != 0 ? rv : KMIPD_ENOMEM));
		return rv != 0 ? rv : KMIPD_ENOMEM;
	}
	return 0;
}

int op_unseal(struct kmip_op_ctx *ctx, const struct object *obj, const uint8_t **plain, size_t *len)
{
	struct crypto_key *kek;
	uint8_t aad[160];
	size_t aad_len, plain_len;
	uint32_t version;
	uint8_t *out;
	int rv;

	if (obj->state == KMIP_STATE_DESTROYED || obj->state == KMIP_STATE_DESTROYED_COMPROMISED ||
	    obj->sealed_len == 0) {
		kmip_op_fail(ctx, KMIP_REASON_PERMISSION_DENIED,
			     "%s: %s is Destroyed: its key material has been erased", op_name(ctx),
			     obj->uid);
		return KMIPD_ESTATE;
	}
	if (crypto_sealed_info(obj->sealed, obj->sealed_len, &version, &plain_len) != 0 ||
	    plain_len == 0) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
			     "%s: the stored material of %s is damaged", op_name(ctx), obj->uid);
		return KMIPD_ECORRUPT;
	}
	aad_len = crypto_object_aad(aad, sizeof(aad), obj->tenant, obj->uid, obj->object_type);
	out = arena_alloc(ctx->arena, plain_len);
	if (out == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE, "%s: out of memory", op_name(ctx));
		return KMIPD_ENOMEM;
	}
	/* The version the material names: the current KEK, or the retiring one while the
	 * tenant's objects are re-sealed after a rotation. */
	kek = tenant_kek(ctx, version, NULL);
	if (kek == NULL)
		return KMIPD_ENOT_FOUND;
	rv = crypto_open(kek, aad, aad_len, obj->sealed, obj->sealed_len, out);
	crypto_key_return(kek);
	if (rv != 0) {
		kmip_op_fail(ctx, KMIP_REASON_CRYPTOGRAPHIC_FAILURE,
			     "%s: the key material of %s could not be unsealed with tenant %s's "
			     "key-encryption key (%s: wrong root key or damaged record)",
			     op_name(ctx), obj->uid, obj->tenant, kmipd_strerror(rv));
		return rv;
	}
	*plain = out;
	*len = plain_len;
	return 0;
}

struct op_pending *op_pending_new(struct kmip_op_ctx *ctx, const char *uid)
{
	struct op_pending *p = arena_zalloc(ctx->arena, sizeof(*p));

	if (p != NULL)
		p->uid = arena_strndup(ctx->arena, uid, strlen(uid));
	if (p == NULL || p->uid == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE, "%s: out of memory", op_name(ctx));
		return NULL;
	}
	ctx->op_state = p;
	return p;
}

int op_propose_attribute(struct kmip_op_ctx *ctx, enum command_type type, const char *uid,
			 const char *name, uint32_t index, const uint8_t *value, size_t value_len,
			 bool single_instance, const struct ttlv_item *answer, service_done_fn done)
{
	struct op_pending *pending = op_pending_new(ctx, uid);
	struct command cmd;

	if (pending == NULL)
		return KMIP_OP_DONE;
	pending->attr_name = name;
	pending->attr_index = index;
	pending->attr_value = answer;
	op_command_init(ctx, &cmd, type, pending->uid);
	cmd.attr_name = name;
	cmd.attr_index = index;
	cmd.attr_value = value;
	cmd.attr_value_len = value_len;
	cmd.single_instance = single_instance;
	return service_propose(ctx, &cmd, done);
}

void op_command_init(struct kmip_op_ctx *ctx, struct command *cmd, enum command_type type,
		     const char *uid)
{
	struct session *session = service_session(ctx);

	memset(cmd, 0, sizeof(*cmd));
	cmd->type = type;
	cmd->time = service_now();
	snprintf(cmd->tenant, sizeof(cmd->tenant), "%s", session->tenant);
	snprintf(cmd->uid, sizeof(cmd->uid), "%s", uid);
}

int op_fail_result(struct kmip_op_ctx *ctx, const struct command_result *result)
{
	int len = (int)strnlen(result->message, sizeof(result->message));
	uint32_t reason;

	switch (result->status) {
	case KMIPD_ENO_QUORUM:
		return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
				    "%s: the cluster has no quorum (too few nodes are reachable); "
				    "nothing was changed: retry when the cluster is healthy",
				    op_name(ctx));
	case KMIPD_ENO_SPACE:
		return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
				    "%s: the server's storage is full; nothing was changed: an "
				    "operator must free space or enlarge the store",
				    op_name(ctx));
	case KMIPD_ENOT_FOUND:
		reason = KMIP_REASON_ITEM_NOT_FOUND;
		break;
	case KMIPD_ESTATE:
	case KMIPD_EPERMISSION:
		reason = KMIP_REASON_PERMISSION_DENIED;
		break;
	case KMIPD_EEXISTS:
		reason = KMIP_REASON_ILLEGAL_OPERATION;
		break;
	case KMIPD_EINVAL:
		reason = KMIP_REASON_INVALID_FIELD;
		break;
	case KMIPD_ERANGE:
		reason = KMIP_REASON_INDEX_OUT_OF_BOUNDS;
		break;
	default:
		return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
				    "%s failed: %s%s%.*s; nothing was changed", op_name(ctx),
				    kmipd_strerror(result->status), len > 0 ? ": " : "", len,
				    result->message);
	}
	if (len > 0)
		return kmip_op_fail(ctx, reason, "%s: %.*s", op_name(ctx), len, result->message);
	return kmip_op_fail(ctx, reason, "%s: %s", op_name(ctx), kmipd_strerror(result->status));
}

void op_done_uid(struct kmip_op_ctx *ctx, const struct command_result *result)
{
	const struct op_pending *p = ctx->op_state;

	if (result->status != 0) {
		op_fail_result(ctx, result);
		return;
	}
	ttlv_put_cstr(&ctx->out, KMIP_TAG_UNIQUE_IDENTIFIER, p->uid);
}

void op_done_attribute(struct kmip_op_ctx *ctx, const struct command_result *result)
{
	const struct op_pending *p = ctx->op_state;

	if (result->status != 0) {
		op_fail_result(ctx, result);
		return;
	}
	ttlv_put_cstr(&ctx->out, KMIP_TAG_UNIQUE_IDENTIFIER, p->uid);
	kmip_attr_put(&ctx->out, p->attr_name, strlen(p->attr_name), (int32_t)p->attr_index, false,
		      p->attr_value);
}

int op_payload_attribute(struct kmip_op_ctx *ctx, struct kmip_attr *attr)
{
	static const uint32_t fields[] = {KMIP_TAG_UNIQUE_IDENTIFIER, KMIP_TAG_ATTRIBUTE};
	struct kmip_attr_problem problem;
	const struct ttlv_item *item;

	if (op_only(ctx, ctx->payload, fields, 2) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_ATTRIBUTE, TTLV_STRUCTURE, &item) != 0)
		return KMIPD_EINVAL;
	if (item == NULL) {
		kmip_op_fail(ctx, KMIP_REASON_MISSING_DATA, "%s: the request has no Attribute",
			     op_name(ctx));
		return KMIPD_EINVAL;
	}
	if (kmip_attr_parse(item, ctx->version, KMIP_ATTR_VALUE_REQUIRED, attr, &problem) != 0) {
		kmip_op_fail(ctx, problem.reason, "%s: %s", op_name(ctx), problem.message);
		return KMIPD_EINVAL;
	}
	return 0;
}
