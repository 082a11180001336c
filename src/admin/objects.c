/* GET /v1/tenants/{tenant}/objects and .../objects/{uid}: metadata and attributes of a
 * tenant's objects, never their material. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"
#include "kmipd/attr.h"
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/object.h"
#include "kmipd/pki.h"
#include "kmipd/store.h"
#include "kmipd/ttlv.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000

static json_t *enum_name(uint32_t tag, uint32_t value)
{
	enum kmip_enum_family family = kmip_enum_family_of(tag);
	const char *name = family != KMIP_FAMILY_NONE_ && !kmip_enum_family_is_mask(family)
				   ? kmip_enum_name(family, value)
				   : NULL;

	return name != NULL ? json_string(name) : json_integer(value);
}

static json_t *hex(const uint8_t *bytes, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *text = malloc(2 * len + 1);
	json_t *out;

	if (text == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		text[2 * i] = digits[bytes[i] >> 4];
		text[2 * i + 1] = digits[bytes[i] & 15];
	}
	text[2 * len] = '\0';
	out = json_string(text);
	free(text);
	return out;
}

/* One TTLV value as JSON: text as a string, numbers as numbers, enumerations by name,
 * dates in ISO 8601, bytes in hex, structures as objects keyed by their fields' names.
 * @tag is the tag the value stands for (an attribute's own tag for its value). */
static json_t *render(const struct ttlv_item *it, uint32_t tag)
{
	switch (it->type) {
	case TTLV_TEXT_STRING:
		return json_stringn((const char *)it->v.bytes, it->length);
	case TTLV_INTEGER:
		return json_integer(it->v.integer);
	case TTLV_LONG_INTEGER:
		return json_integer(it->v.long_integer);
	case TTLV_ENUMERATION:
		return enum_name(tag, it->v.enumeration);
	case TTLV_BOOLEAN:
		return json_boolean(it->v.boolean);
	case TTLV_DATE_TIME:
		return admin_date(it->v.date_time);
	case TTLV_INTERVAL:
		return json_integer(it->v.interval);
	case TTLV_BYTE_STRING:
	case TTLV_BIG_INTEGER:
		return hex(it->v.bytes, it->length);
	case TTLV_STRUCTURE: {
		json_t *o = json_object();

		for (const struct ttlv_item *c = it->v.children.first; c != NULL; c = c->next) {
			const char *name = kmip_tag_name(c->tag);
			char fallback[16];

			if (name == NULL) {
				snprintf(fallback, sizeof(fallback), "0x%06x", c->tag);
				name = fallback;
			}
			json_object_set_new(o, name, render(c, c->tag));
		}
		return o;
	}
	default:
		return json_null();
	}
}

static json_t *attribute_value(const struct object_attr *a, struct arena *arena)
{
	const struct kmip_attr_def *def = kmip_attr_def_by_name(a->name, strlen(a->name));
	struct ttlv_item *root;

	if (ttlv_decode(a->value, a->value_len, NULL, arena, &root, NULL) != 0)
		return json_null();
	return render(root, def != NULL ? def->tag : root->tag);
}

/* The object's metadata and attributes (@full) or its summary. */
static json_t *object_json(const struct object *o, bool full, struct arena *arena)
{
	const char *type = kmip_enum_name(KMIP_FAMILY_OBJECT_TYPE, o->object_type);
	const char *state = kmip_enum_name(KMIP_FAMILY_STATE, o->state);
	json_t *j = json_pack(
		"{s:s, s:s, s:s, s:o, s:o}", "uid", o->uid, "type", type != NULL ? type : "unknown",
		"state", state != NULL ? state : "unknown", "initial_date",
		admin_date(o->initial_date), "last_change_date", admin_date(o->last_change_date));
	json_t *attrs;

	if (j == NULL)
		return NULL;
	if (o->activation_date != 0)
		json_object_set_new(j, "activation_date", admin_date(o->activation_date));
	if (o->deactivation_date != 0)
		json_object_set_new(j, "deactivation_date", admin_date(o->deactivation_date));
	if (o->destroy_date != 0)
		json_object_set_new(j, "destroy_date", admin_date(o->destroy_date));
	if (o->compromise_date != 0)
		json_object_set_new(j, "compromise_date", admin_date(o->compromise_date));
	if (o->revocation_code != 0) {
		const char *reason = kmip_enum_name(KMIP_FAMILY_REVOCATION, o->revocation_code);

		json_object_set_new(j, "revocation",
				    json_pack("{s:s, s:s}", "reason", reason ? reason : "unknown",
					      "message",
					      o->revocation_message ? o->revocation_message : ""));
	}
	json_object_set_new(j, "has_material", json_boolean(o->sealed_len > 0));
	if (!full) {
		/* A summary carries the custom attributes, where vCenter names its keys. */
		json_t *custom = json_object();

		for (size_t i = 0; i < o->attr_count; i++)
			if (strncmp(o->attrs[i].name, "x-", 2) == 0 && o->attrs[i].index == 0)
				json_object_set_new(custom, o->attrs[i].name,
						    attribute_value(&o->attrs[i], arena));
		json_object_set_new(j, "custom", custom);
		return j;
	}
	attrs = json_array();
	for (size_t i = 0; i < o->attr_count; i++)
		json_array_append_new(attrs,
				      json_pack("{s:s, s:I, s:o}", "name", o->attrs[i].name,
						"index", (json_int_t)o->attrs[i].index, "value",
						attribute_value(&o->attrs[i], arena)));
	json_object_set_new(j, "attributes", attrs);
	return j;
}

/* The tenant exists and is not deleted; else answers 404 (or catches up first, see
 * admin_catch_up) and returns false. */
static bool tenant_exists(struct http_conn *c, struct store_txn *txn, const char *tenant)
{
	struct store_tenant t;

	if (pki_name_valid(tenant) && store_tenant_get(txn, tenant, &c->arena, &t) == 0 &&
	    t.deleted == 0)
		return true;
	if (!pki_name_valid(tenant) || !admin_catch_up(c))
		http_error(c, 404, "no tenant %s", tenant);
	return false;
}

/* A read transaction in which @tenant exists; else NULL after answering (or after
 * starting a catch-up, see admin_catch_up). */
static struct store_txn *open_tenant(struct http_conn *c, const char *tenant)
{
	struct store_txn *txn;

	if (store_txn_begin(c->admin->config.store, false, &txn) != 0) {
		http_error(c, 503, "the key store cannot be read");
		return NULL;
	}
	if (!tenant_exists(c, txn, tenant)) {
		store_txn_abort(txn);
		return NULL;
	}
	return txn;
}

struct listing {
	struct http_conn *c;
	json_t *items;
	unsigned limit, count;
	uint32_t state;	       /* 0: any */
	uint32_t type;	       /* 0: any */
	const char *attr_name; /* NULL: any */
	const char *attr_value;
	char last[OBJECT_UID_LEN + 1];
	bool more;
	struct arena values; /* decoding attribute values */
};

static bool has_attribute(const struct object *o, const char *name, const char *value,
			  struct arena *arena)
{
	for (size_t i = 0; i < o->attr_count; i++) {
		struct ttlv_item *v;

		if (strcmp(o->attrs[i].name, name) != 0 ||
		    ttlv_decode(o->attrs[i].value, o->attrs[i].value_len, NULL, arena, &v, NULL) !=
			    0)
			continue;
		if (v->type == TTLV_TEXT_STRING && v->length == strlen(value) &&
		    memcmp(v->v.bytes, value, v->length) == 0)
			return true;
	}
	return false;
}

static int list_one(const struct object *o, void *arg)
{
	struct listing *l = arg;

	arena_reset(&l->values);
	if ((l->state != 0 && o->state != l->state) ||
	    (l->type != 0 && o->object_type != l->type) ||
	    (l->attr_name != NULL && !has_attribute(o, l->attr_name, l->attr_value, &l->values)))
		return 0;
	if (l->count == l->limit) {
		l->more = true;
		return 1;
	}
	json_array_append_new(l->items, object_json(o, false, &l->values));
	snprintf(l->last, sizeof(l->last), "%s", o->uid);
	l->count++;
	return 0;
}

/* Reads an enumeration parameter by name ("Active", "pre-active", "Symmetric Key"). */
static int enum_param(struct http_conn *c, const char *param, enum kmip_enum_family family,
		      uint32_t *out)
{
	const char *text = http_query(c, param);
	char name[64];

	*out = 0;
	if (text == NULL)
		return 0;
	/* Accept the specification's spelling in any case, with '-' or '_' for spaces. */
	for (uint32_t v = 0; v < 0x100; v++) {
		const char *n = kmip_enum_name(family, v);
		size_t i;

		if (n == NULL || strlen(n) >= sizeof(name))
			continue;
		for (i = 0; n[i] != '\0'; i++)
			name[i] = n[i] == ' ' ? '-' : n[i];
		name[i] = '\0';
		if (strcasecmp(name, text) == 0 || strcasecmp(n, text) == 0) {
			*out = v;
			return 0;
		}
		for (i = 0; name[i] != '\0'; i++)
			if (name[i] == '-')
				name[i] = '_';
		if (strcasecmp(name, text) == 0) {
			*out = v;
			return 0;
		}
	}
	http_error(c, 400, "%s: '%s' is not a %s", param, text, kmip_enum_family_name(family));
	return -1;
}

void handle_object_list(struct http_conn *c, const char **params)
{
	const char *tenant = params[0];
	const char *limit = http_query(c, "limit"), *after = http_query(c, "after");
	const char *attr = http_query(c, "attribute");
	struct listing l = {.c = c, .limit = LIST_DEFAULT};
	struct arena objects; /* reset between objects: not the request's */
	struct store_txn *txn;
	json_t *body;
	int rc;

	if (limit != NULL) {
		char *end;
		long n = strtol(limit, &end, 10);

		if (*end != '\0' || n < 1 || n > LIST_MAX) {
			http_error(c, 400, "limit: '%s' is not a number from 1 to %d", limit,
				   LIST_MAX);
			return;
		}
		l.limit = (unsigned)n;
	}
	if (enum_param(c, "state", KMIP_FAMILY_STATE, &l.state) != 0 ||
	    enum_param(c, "type", KMIP_FAMILY_OBJECT_TYPE, &l.type) != 0)
		return;
	if (attr != NULL) {
		char *eq = strchr(attr, '=');

		if (eq == NULL || eq == attr) {
			http_error(c, 400, "attribute: '%s' is not NAME=VALUE (e.g. x-Name=vm01)",
				   attr);
			return;
		}
		*eq = '\0';
		l.attr_name = attr;
		l.attr_value = eq + 1;
	}
	if (after != NULL && strlen(after) != OBJECT_UID_LEN) {
		http_error(c, 400, "after: '%s' is not a Unique Identifier", after);
		return;
	}
	txn = open_tenant(c, tenant);
	if (txn == NULL)
		return;
	l.items = json_array();
	arena_init(&l.values, 4096, 0);
	arena_init(&objects, 16384, 0);
	rc = store_object_foreach(txn, tenant, after, &objects, true, list_one, &l);
	store_txn_abort(txn);
	arena_free(&objects);
	arena_free(&l.values);
	if (rc < 0) {
		json_decref(l.items);
		http_error(c, 500, "reading the objects failed");
		return;
	}
	body = json_pack("{s:s, s:o}", "tenant", tenant, "objects", l.items);
	json_object_set_new(body, "next", l.more ? json_string(l.last) : json_null());
	http_json(c, 200, body);
}

void handle_object_show(struct http_conn *c, const char **params)
{
	const char *tenant = params[0], *uid = params[1];
	struct store_txn *txn;
	struct object o;
	int rc;

	txn = open_tenant(c, tenant);
	if (txn == NULL)
		return;
	rc = strlen(uid) == OBJECT_UID_LEN ? store_object_get(txn, tenant, uid, &c->arena, &o)
					   : KMIPD_ENOT_FOUND;
	store_txn_abort(txn);
	if (rc == KMIPD_ENOT_FOUND) {
		if (strlen(uid) != OBJECT_UID_LEN || !admin_catch_up(c))
			http_error(c, 404, "tenant %s has no object %s", tenant, uid);
		return;
	}
	if (rc != 0) {
		http_error(c, 500, "reading object %s failed", uid);
		return;
	}
	http_json(c, 200, object_json(&o, true, &c->arena));
}
