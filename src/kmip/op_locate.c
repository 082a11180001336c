/* Locate: the Unique Identifiers of the session tenant's objects that have every attribute
 * the request gives. An object matches an attribute when it has an instance with an equal
 * value (stored values are compared as their canonical encoding; typed fields directly);
 * a date attribute given twice is a range, both ends included. Results come in Unique
 * Identifier order, so Offset Items and Maximum Items page through a stable list.
 *
 * A Name narrows the scan to the store's Name index; otherwise every object of the tenant
 * is decoded in turn into a scratch arena. */
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "ops.h"

struct criterion {
	struct kmip_attr attr;
	const uint8_t *encoded; /* stored attributes: the value to compare with */
	size_t encoded_len;
	bool is_date;
	bool paired; /* a second date of the same name made this a range */
	int64_t low, high;
};

struct search {
	struct kmip_op_ctx *ctx;
	struct store_txn *txn;
	const char *tenant;
	const struct criterion *criteria;
	size_t count;
	struct arena scratch; /* each object in turn */
	int64_t offset;
	int64_t max;	/* -1: no maximum */
	bool count_all; /* 1.3+: Located Items reports every match */
	uint64_t matched;
	struct buf uids; /* listed identifiers, OBJECT_UID_LEN bytes each */
	size_t listed;
	int error;
};

static int64_t load_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

/* The date of a stored Date-Time value: header (8 bytes) and 8 bytes of value. */
static bool stored_date(const struct object_attr *a, int64_t *date)
{
	if (a->value_len != 16 || a->value[3] != TTLV_DATE_TIME)
		return false;
	*date = load_be64(a->value + 8);
	return true;
}

static int64_t typed_date(const struct object *obj, uint32_t tag)
{
	switch (tag) {
	case KMIP_TAG_INITIAL_DATE:
		return obj->initial_date;
	case KMIP_TAG_ACTIVATION_DATE:
		return obj->activation_date;
	case KMIP_TAG_DEACTIVATION_DATE:
		return obj->deactivation_date;
	case KMIP_TAG_COMPROMISE_OCCURRENCE_DATE:
		return obj->compromise_occurrence_date;
	case KMIP_TAG_COMPROMISE_DATE:
		return obj->compromise_date;
	case KMIP_TAG_DESTROY_DATE:
		return obj->destroy_date;
	case KMIP_TAG_LAST_CHANGE_DATE:
		return obj->last_change_date;
	default:
		return 0;
	}
}

static bool typed_matches(const struct criterion *c, const struct object *obj)
{
	const struct ttlv_item *v = c->attr.value;
	const struct ttlv_item *code, *message;
	int64_t date;

	switch (c->attr.def->tag) {
	case KMIP_TAG_UNIQUE_IDENTIFIER:
		return v->length == strlen(obj->uid) &&
		       memcmp(v->v.bytes, obj->uid, v->length) == 0;
	case KMIP_TAG_OBJECT_TYPE:
		return v->v.enumeration == obj->object_type;
	case KMIP_TAG_STATE:
		return v->v.enumeration == obj->state;
	case KMIP_TAG_REVOCATION_REASON:
		code = ttlv_child(v, KMIP_TAG_REVOCATION_REASON_CODE);
		message = ttlv_child(v, KMIP_TAG_REVOCATION_MESSAGE);
		if (obj->revocation_code == 0)
			return false;
		if (code != NULL && code->v.enumeration != obj->revocation_code)
			return false;
		return message == NULL ||
		       (obj->revocation_message != NULL &&
			strlen(obj->revocation_message) == message->length &&
			memcmp(obj->revocation_message, message->v.bytes, message->length) == 0);
	default:
		date = typed_date(obj, c->attr.def->tag);
		return date != 0 && date >= c->low && date <= c->high;
	}
}

static bool stored_matches(const struct criterion *c, const struct object *obj)
{
	for (size_t i = 0; i < obj->attr_count; i++) {
		const struct object_attr *a = &obj->attrs[i];
		int64_t date;

		if (strlen(a->name) != c->attr.name.len ||
		    memcmp(a->name, c->attr.name.data, c->attr.name.len) != 0)
			continue;
		if (c->is_date) {
			if (stored_date(a, &date) && date >= c->low && date <= c->high)
				return true;
		} else if (a->value_len == c->encoded_len &&
			   memcmp(a->value, c->encoded, c->encoded_len) == 0) {
			return true;
		}
	}
	return false;
}

static bool matches(const struct search *s, const struct object *obj)
{
	for (size_t i = 0; i < s->count; i++) {
		const struct criterion *c = &s->criteria[i];
		bool typed = c->attr.kind == KMIP_ATTR_STANDARD && op_attr_is_typed(c->attr.def);

		if (!(typed ? typed_matches(c, obj) : stored_matches(c, obj)))
			return false;
	}
	return true;
}

/* Counts and (within offset and maximum) lists @obj if it matches. Non-zero stops. */
static int consider(struct search *s, const struct object *obj)
{
	uint64_t n;

	if (!matches(s, obj))
		return 0;
	n = s->matched++;
	if (n < (uint64_t)s->offset)
		return 0;
	if (s->max >= 0 && s->listed >= (uint64_t)s->max)
		return s->count_all ? 0 : 1;
	if (buf_append(&s->uids, obj->uid, OBJECT_UID_LEN) != 0) {
		s->error = KMIPD_ENOMEM;
		return 1;
	}
	s->listed++;
	return 0;
}

static int each_object(const struct object *obj, void *arg)
{
	return consider(arg, obj);
}

static int each_named(const char *uid, void *arg)
{
	struct search *s = arg;
	struct object obj;
	int rv;

	arena_reset(&s->scratch);
	rv = store_object_get(s->txn, s->tenant, uid, &s->scratch, &obj);
	if (rv == KMIPD_ENOT_FOUND)
		return 0;
	if (rv != 0) {
		s->error = rv;
		return 1;
	}
	return consider(s, &obj);
}

/* Reads the request's Attributes into criteria. */
static int read_criteria(struct kmip_op_ctx *ctx, struct criterion **out, size_t *count)
{
	const struct ttlv_item *first = ttlv_child(ctx->payload, KMIP_TAG_ATTRIBUTE);
	struct criterion *criteria;
	size_t n = 0;

	for (const struct ttlv_item *a = first; a != NULL; a = ttlv_next_same(a))
		n++;
	*out = NULL;
	*count = 0;
	if (n == 0)
		return 0;
	criteria = arena_zalloc(ctx->arena, n * sizeof(*criteria));
	if (criteria == NULL)
		return op_refuse(ctx, KMIP_REASON_GENERAL_FAILURE, "Locate: out of memory");
	n = 0;
	for (const struct ttlv_item *a = first; a != NULL; a = ttlv_next_same(a)) {
		struct criterion *c = &criteria[n];
		struct kmip_attr_problem problem;
		struct criterion *earlier = NULL;
		int64_t date;

		if (kmip_attr_parse(a, ctx->version, KMIP_ATTR_VALUE_REQUIRED, &c->attr,
				    &problem) != 0)
			return op_refuse(ctx, problem.reason, "Locate: %s", problem.message);
		if (c->attr.value->type != TTLV_DATE_TIME) {
			if (op_value_encode(ctx, c->attr.def, c->attr.value, &c->encoded,
					    &c->encoded_len) != 0)
				return KMIPD_ENOMEM;
			n++;
			continue;
		}
		date = c->attr.value->v.date_time;
		for (size_t i = 0; i < n && earlier == NULL; i++)
			if (criteria[i].is_date && criteria[i].attr.name.len == c->attr.name.len &&
			    memcmp(criteria[i].attr.name.data, c->attr.name.data,
				   c->attr.name.len) == 0)
				earlier = &criteria[i];
		if (earlier == NULL) {
			c->is_date = true;
			c->low = c->high = date;
			n++;
			continue;
		}
		if (earlier->paired)
			return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
					 "Locate: %.*s is given more than twice; two dates make a "
					 "range, more mean nothing",
					 (int)c->attr.name.len, (const char *)c->attr.name.data);
		earlier->paired = true;
		if (date < earlier->low)
			earlier->low = date;
		else
			earlier->high = date;
		memset(c, 0, sizeof(*c));
	}
	*out = criteria;
	*count = n;
	return 0;
}

/* Reads Maximum Items, Offset Items, Storage Status Mask and Object Group Member. Offset
 * Items is a 1.3 field, but PyKMIP sends it in 1.2 requests too: it is honoured in every
 * version (only the response's Located Items is kept to 1.3+). */
static int read_limits(struct kmip_op_ctx *ctx, struct search *s, bool *online)
{
	const struct ttlv_item *max, *offset, *mask, *member;

	if (op_child(ctx, ctx->payload, KMIP_TAG_MAXIMUM_ITEMS, TTLV_INTEGER, &max) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_OFFSET_ITEMS, TTLV_INTEGER, &offset) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_STORAGE_STATUS_MASK, TTLV_INTEGER, &mask) != 0 ||
	    op_child(ctx, ctx->payload, KMIP_TAG_OBJECT_GROUP_MEMBER, TTLV_ENUMERATION, &member) !=
		    0)
		return KMIPD_EINVAL;
	if (max != NULL && max->v.integer < 0)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Locate: Maximum Items must not be negative");
	if (offset != NULL && offset->v.integer < 0)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Locate: Offset Items must not be negative");
	if (mask != NULL && (mask->v.integer & ~(KMIP_STORAGE_STATUS_MASK_ONLINE_STORAGE |
						 KMIP_STORAGE_STATUS_MASK_ARCHIVAL_STORAGE)) != 0)
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Locate: Storage Status Mask 0x%X has bits that are not storage "
				 "statuses",
				 (unsigned)mask->v.integer);
	if (member != NULL &&
	    (ctx->version < KMIP_V1_1 ||
	     kmip_enum_since(KMIP_FAMILY_OBJECT_GROUP_MEMBER, member->v.enumeration) == 0))
		return op_refuse(ctx, KMIP_REASON_INVALID_FIELD,
				 "Locate: Object Group Member needs KMIP 1.1 and a value of Group "
				 "Member Fresh or Default");
	s->max = max != NULL ? max->v.integer : -1;
	s->offset = offset != NULL ? offset->v.integer : 0;
	/* Every object is on-line: a search of archival storage alone finds nothing. */
	*online = mask == NULL || (mask->v.integer & KMIP_STORAGE_STATUS_MASK_ONLINE_STORAGE);
	return 0;
}

/* Runs the search in one read transaction. */
static int run(struct kmip_op_ctx *ctx, struct search *s)
{
	const struct criterion *by_name = NULL;
	int done_rv, rv;

	for (size_t i = 0; i < s->count && by_name == NULL; i++)
		if (s->criteria[i].attr.kind == KMIP_ATTR_STANDARD &&
		    s->criteria[i].attr.def->tag == KMIP_TAG_NAME)
			by_name = &s->criteria[i];
	s->txn = service_read(ctx, &done_rv);
	if (s->txn == NULL)
		return KMIPD_EIO;
	if (by_name != NULL)
		rv = store_name_foreach(s->txn, s->tenant, by_name->encoded, by_name->encoded_len,
					each_named, s);
	else
		rv = store_object_foreach(s->txn, s->tenant, NULL, &s->scratch, true, each_object,
					  s);
	store_txn_abort(s->txn);
	if (rv < 0 || s->error != 0)
		return op_refuse(ctx, KMIP_REASON_GENERAL_FAILURE,
				 "Locate: searching the store failed: %s",
				 kmipd_strerror(s->error != 0 ? s->error : rv));
	return 0;
}

int op_locate(struct kmip_op_ctx *ctx)
{
	static const uint32_t fields[] = {KMIP_TAG_MAXIMUM_ITEMS, KMIP_TAG_OFFSET_ITEMS,
					  KMIP_TAG_STORAGE_STATUS_MASK,
					  KMIP_TAG_OBJECT_GROUP_MEMBER, KMIP_TAG_ATTRIBUTE};
	struct search s = {.ctx = ctx, .uids = BUF_INIT};
	struct criterion *criteria;
	struct session *session;
	bool online = true;

	if (op_only(ctx, ctx->payload, fields, sizeof(fields) / sizeof(fields[0])) != 0 ||
	    read_limits(ctx, &s, &online) != 0 || read_criteria(ctx, &criteria, &s.count) != 0)
		return KMIP_OP_DONE;
	session = op_session(ctx);
	if (session == NULL)
		return KMIP_OP_DONE;
	s.criteria = criteria;
	s.tenant = session->tenant;
	s.count_all = ctx->version >= KMIP_V1_3;
	arena_init(&s.scratch, 16 * 1024, 16 * 1024 * 1024);
	if (online && run(ctx, &s) != 0) {
		arena_free(&s.scratch);
		buf_free(&s.uids);
		return KMIP_OP_DONE;
	}
	arena_free(&s.scratch);

	if (ctx->version >= KMIP_V1_3)
		ttlv_put_integer(&ctx->out, KMIP_TAG_LOCATED_ITEMS,
				 s.matched > INT32_MAX ? INT32_MAX : (int32_t)s.matched);
	for (size_t i = 0; i < s.listed; i++)
		ttlv_put_text(&ctx->out, KMIP_TAG_UNIQUE_IDENTIFIER,
			      (const char *)s.uids.data + i * OBJECT_UID_LEN, OBJECT_UID_LEN);
	if (s.listed == 1) {
		char uid[OBJECT_UID_LEN + 1];

		memcpy(uid, s.uids.data, OBJECT_UID_LEN);
		uid[OBJECT_UID_LEN] = '\0';
		op_set_id_placeholder(ctx, uid);
	}
	buf_free(&s.uids);
	return KMIP_OP_DONE;
}
