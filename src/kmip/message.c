/* The KMIP 1.x message envelope: Request Message parsing and Response Message encoding.
 * Field presence and order follow the specification's message tables; anything a client
 * sends that the envelope does not define is refused with a message naming it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/message.h"

static int message_fail(struct kmip_message_error *err, uint32_t reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int message_fail(struct kmip_message_error *err, uint32_t reason, const char *fmt, ...)
{
	va_list ap;

	err->reason = reason;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return reason == KMIP_REASON_GENERAL_FAILURE ? KMIPD_ENOMEM : KMIPD_EMALFORMED;
}

/* The tag's name for messages, falling back to its number. */
static const char *tag_label(uint32_t tag, char *scratch, size_t size)
{
	const char *name = kmip_tag_name(tag);

	if (name != NULL)
		return name;
	snprintf(scratch, size, "tag 0x%06X", tag);
	return scratch;
}

/* Checks that @item is of @type; otherwise fills @err naming the field. */
static int expect_type(const struct ttlv_item *item, enum ttlv_type type,
		       struct kmip_message_error *err)
{
	char scratch[24];

	if (item->type == type)
		return 0;
	return message_fail(err, KMIP_REASON_INVALID_MESSAGE, "%s must be a %s, not a %s",
			    tag_label(item->tag, scratch, sizeof(scratch)), ttlv_type_name(type),
			    ttlv_type_name(item->type));
}

static int parse_version(const struct ttlv_item *pv, unsigned *version,
			 struct kmip_message_error *err)
{
	const struct ttlv_item *major = ttlv_child(pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR);
	const struct ttlv_item *minor = ttlv_child(pv, KMIP_TAG_PROTOCOL_VERSION_MINOR);

	if (pv->type != TTLV_STRUCTURE || major == NULL || minor == NULL ||
	    major->type != TTLV_INTEGER || minor->type != TTLV_INTEGER || pv->v.children.count != 2)
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "Protocol Version must hold exactly a Protocol Version Major "
				    "and a Protocol Version Minor integer");
	if (major->v.integer < 0 || major->v.integer > 255 || minor->v.integer < 0 ||
	    minor->v.integer > 255)
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "Protocol Version %d.%d is out of range", major->v.integer,
				    minor->v.integer);
	*version = KMIP_VERSION((unsigned)major->v.integer, (unsigned)minor->v.integer);
	return 0;
}

static int parse_credential(const struct ttlv_item *cred, struct kmip_credential *c,
			    struct kmip_message_error *err)
{
	const struct ttlv_item *type = ttlv_child(cred, KMIP_TAG_CREDENTIAL_TYPE);
	const struct ttlv_item *value = ttlv_child(cred, KMIP_TAG_CREDENTIAL_VALUE);
	const struct ttlv_item *user, *pass;

	if (cred->type != TTLV_STRUCTURE || type == NULL || value == NULL ||
	    type->type != TTLV_ENUMERATION)
		return message_fail(
			err, KMIP_REASON_INVALID_MESSAGE,
			"Credential must hold a Credential Type and a Credential Value");
	memset(c, 0, sizeof(*c));
	c->type = type->v.enumeration;
	if (c->type != KMIP_CREDENTIAL_USERNAME_AND_PASSWORD)
		return 0; /* kept by type only; the server decides whether it accepts it */

	user = ttlv_child(value, KMIP_TAG_USERNAME);
	pass = ttlv_child(value, KMIP_TAG_PASSWORD);
	if (value->type != TTLV_STRUCTURE || user == NULL || user->type != TTLV_TEXT_STRING ||
	    (pass != NULL && pass->type != TTLV_TEXT_STRING))
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "a Username and Password credential must hold a Username "
				    "and may hold a Password, both text strings");
	c->username = (struct kmip_bytes){user->v.bytes, user->length};
	if (pass != NULL) {
		c->has_password = true;
		c->password = (struct kmip_bytes){pass->v.bytes, pass->length};
	}
	return 0;
}

static int parse_header(const struct ttlv_item *h, struct kmip_request_header *hdr,
			struct kmip_message_error *err)
{
	bool have_version = false, have_count = false;
	char scratch[24];
	int rv;

	memset(hdr, 0, sizeof(*hdr));
	hdr->batch_error_option = KMIP_BATCH_ERROR_STOP;
	hdr->batch_order = true;

	/* The version first, so that any later error can be answered in it. */
	for (const struct ttlv_item *c = h->v.children.first; c != NULL; c = c->next) {
		if (c->tag == KMIP_TAG_PROTOCOL_VERSION) {
			rv = parse_version(c, &hdr->version, err);
			if (rv != 0)
				return rv;
			err->version = hdr->version;
			have_version = true;
			break;
		}
	}
	if (!have_version)
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "the Request Header has no Protocol Version");

	for (const struct ttlv_item *c = h->v.children.first; c != NULL; c = c->next) {
		switch (c->tag) {
		case KMIP_TAG_PROTOCOL_VERSION:
			continue;
		case KMIP_TAG_MAXIMUM_RESPONSE_SIZE:
			rv = expect_type(c, TTLV_INTEGER, err);
			if (rv == 0 && c->v.integer <= 0)
				rv = message_fail(err, KMIP_REASON_INVALID_MESSAGE,
						  "Maximum Response Size must be positive, not %d",
						  c->v.integer);
			hdr->has_max_response_size = true;
			hdr->max_response_size = c->v.integer;
			break;
		case KMIP_TAG_AUTHENTICATION: {
			const struct ttlv_item *cred = ttlv_child(c, KMIP_TAG_CREDENTIAL);

			rv = expect_type(c, TTLV_STRUCTURE, err);
			if (rv == 0 && cred == NULL)
				rv = message_fail(err, KMIP_REASON_INVALID_MESSAGE,
						  "Authentication must hold a Credential");
			if (rv == 0)
				rv = parse_credential(cred, &hdr->credential, err);
			hdr->has_credential = true;
			break;
		}
		case KMIP_TAG_ASYNCHRONOUS_INDICATOR:
			rv = expect_type(c, TTLV_BOOLEAN, err);
			if (rv == 0) /* v.boolean is only valid in a Boolean */
				hdr->asynchronous = c->v.boolean;
			break;
		case KMIP_TAG_BATCH_ERROR_CONTINUATION_OPTION:
			rv = expect_type(c, TTLV_ENUMERATION, err);
			if (rv == 0 && (c->v.enumeration < KMIP_BATCH_ERROR_CONTINUE ||
					c->v.enumeration > KMIP_BATCH_ERROR_UNDO))
				rv = message_fail(err, KMIP_REASON_INVALID_MESSAGE,
						  "Batch Error Continuation Option %u is not "
						  "Continue (1), Stop (2) or Undo (3)",
						  c->v.enumeration);
			hdr->batch_error_option = c->v.enumeration;
			break;
		case KMIP_TAG_BATCH_ORDER_OPTION:
			rv = expect_type(c, TTLV_BOOLEAN, err);
			if (rv == 0) /* v.boolean is only valid in a Boolean */
				hdr->batch_order = c->v.boolean;
			break;
		case KMIP_TAG_TIME_STAMP:
			rv = expect_type(c, TTLV_DATE_TIME, err);
			hdr->has_time_stamp = true;
			hdr->time_stamp = c->v.date_time;
			break;
		case KMIP_TAG_BATCH_COUNT:
			rv = expect_type(c, TTLV_INTEGER, err);
			have_count = true;
			hdr->batch_count = c->v.integer;
			break;
		/* 1.2+ header fields that carry no meaning for this server. */
		case KMIP_TAG_ATTESTATION_CAPABLE_INDICATOR:
		case KMIP_TAG_ATTESTATION_TYPE:
		case KMIP_TAG_CLIENT_CORRELATION_VALUE:
		case KMIP_TAG_SERVER_CORRELATION_VALUE:
			rv = 0;
			break;
		default:
			rv = message_fail(err, KMIP_REASON_INVALID_MESSAGE,
					  "the Request Header does not allow %s",
					  tag_label(c->tag, scratch, sizeof(scratch)));
			break;
		}
		if (rv != 0)
			return rv;
	}
	if (!have_count)
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "the Request Header has no Batch Count");
	return 0;
}

/* A message naming a field the batch item does not allow, from @arena (or a fixed text
 * when out of memory). */
static const char *unexpected_field(struct arena *arena, uint32_t tag)
{
	char scratch[24], text[96];
	char *copy;

	snprintf(text, sizeof(text), "the Batch Item does not allow %s",
		 tag_label(tag, scratch, sizeof(scratch)));
	copy = arena_strndup(arena, text, strlen(text));
	return copy ? copy : "the Batch Item holds a field it does not allow";
}

/* Parses one Batch Item. Problems found here concern this item only and go into @item. */
static void parse_item(const struct ttlv_item *b, struct arena *arena,
		       struct kmip_request_item *item)
{
	memset(item, 0, sizeof(*item));
	if (b->type != TTLV_STRUCTURE) {
		item->error_reason = KMIP_REASON_INVALID_MESSAGE;
		item->error_message = "a Batch Item must be a Structure";
		return;
	}
	for (const struct ttlv_item *c = b->v.children.first; c != NULL; c = c->next) {
		switch (c->tag) {
		case KMIP_TAG_OPERATION:
			if (c->type == TTLV_ENUMERATION)
				item->operation = c->v.enumeration;
			else
				item->error_message = "Operation must be an Enumeration";
			break;
		case KMIP_TAG_UNIQUE_BATCH_ITEM_ID:
			if (c->type == TTLV_BYTE_STRING) {
				item->has_batch_id = true;
				item->batch_id = (struct kmip_bytes){c->v.bytes, c->length};
			} else {
				item->error_message = "Unique Batch Item ID must be a Byte String";
			}
			break;
		case KMIP_TAG_REQUEST_PAYLOAD:
			if (c->type == TTLV_STRUCTURE)
				item->payload = c;
			else
				item->error_message = "Request Payload must be a Structure";
			break;
		case KMIP_TAG_MESSAGE_EXTENSION: {
			const struct ttlv_item *critical =
				ttlv_child(c, KMIP_TAG_CRITICALITY_INDICATOR);

			if (critical != NULL && critical->type == TTLV_BOOLEAN &&
			    critical->v.boolean) {
				item->error_reason = KMIP_REASON_FEATURE_NOT_SUPPORTED;
				item->error_message =
					"critical Message Extensions are not supported";
				return;
			}
			break;
		}
		default:
			item->error_message = unexpected_field(arena, c->tag);
			break;
		}
		if (item->error_message != NULL && item->error_reason == 0) {
			item->error_reason = KMIP_REASON_INVALID_MESSAGE;
			return;
		}
	}
	if (item->operation == 0) {
		item->error_reason = KMIP_REASON_INVALID_MESSAGE;
		item->error_message = "the Batch Item has no Operation";
	} else if (item->payload == NULL) {
		item->error_reason = KMIP_REASON_INVALID_MESSAGE;
		item->error_message = "the Batch Item has no Request Payload";
	}
}

int kmip_request_parse(const struct ttlv_item *root, struct arena *arena, struct kmip_request *req,
		       struct kmip_message_error *err)
{
	const struct ttlv_item *c;
	size_t n = 0;
	int rv;

	memset(req, 0, sizeof(*req));
	err->version = 0;
	err->message[0] = '\0';
	if (root->tag != KMIP_TAG_REQUEST_MESSAGE || root->type != TTLV_STRUCTURE)
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "expected a Request Message structure (tag 0x420078)");
	c = root->v.children.first;
	if (c == NULL || c->tag != KMIP_TAG_REQUEST_HEADER || c->type != TTLV_STRUCTURE)
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "a Request Message must start with a Request Header");
	rv = parse_header(c, &req->header, err);
	if (rv != 0)
		return rv;

	for (c = c->next; c != NULL; c = c->next) {
		if (c->tag != KMIP_TAG_BATCH_ITEM)
			return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
					    "a Request Message holds one Request Header and "
					    "Batch Items only");
		n++;
	}
	if (n == 0)
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "the Request Message has no Batch Item");
	if (req->header.batch_count < 0 || (size_t)req->header.batch_count != n)
		return message_fail(err, KMIP_REASON_INVALID_MESSAGE,
				    "Batch Count says %d but the message holds %zu Batch Item(s)",
				    req->header.batch_count, n);

	req->items = arena_alloc(arena, n * sizeof(*req->items));
	if (req->items == NULL)
		return message_fail(err, KMIP_REASON_GENERAL_FAILURE, "out of memory");
	req->count = n;
	n = 0;
	for (c = root->v.children.first->next; c != NULL; c = c->next)
		parse_item(c, arena, &req->items[n++]);
	return 0;
}

void kmip_result_fail(struct kmip_result *r, const struct kmip_request_item *item, uint32_t reason,
		      const char *message)
{
	const char *uid = r->uid; /* what the item acted on stays known */

	memset(r, 0, sizeof(*r));
	r->uid = uid;
	if (item != NULL) {
		r->operation = item->operation;
		r->has_batch_id = item->has_batch_id;
		r->batch_id = item->batch_id;
	}
	r->status = KMIP_STATUS_OPERATION_FAILED;
	r->reason = reason;
	r->message = message;
}

unsigned kmip_response_version(unsigned requested)
{
	if (kmip_version_supported(requested))
		return requested;
	return requested > KMIP_V1_4 ? KMIP_V1_4 : KMIP_V1_0;
}

static void put_header(struct ttlv_writer *w, unsigned version, int64_t time_stamp, size_t count)
{
	ttlv_begin(w, KMIP_TAG_RESPONSE_HEADER);
	ttlv_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_put_integer(w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, (int32_t)KMIP_VERSION_MAJOR(version));
	ttlv_put_integer(w, KMIP_TAG_PROTOCOL_VERSION_MINOR, (int32_t)KMIP_VERSION_MINOR(version));
	ttlv_end(w);
	ttlv_put_datetime(w, KMIP_TAG_TIME_STAMP, time_stamp);
	ttlv_put_integer(w, KMIP_TAG_BATCH_COUNT, (int32_t)count);
	ttlv_end(w);
}

static void put_result(struct ttlv_writer *w, const struct kmip_result *r)
{
	ttlv_begin(w, KMIP_TAG_BATCH_ITEM);
	if (r->operation != 0)
		ttlv_put_enum(w, KMIP_TAG_OPERATION, r->operation);
	if (r->has_batch_id)
		ttlv_put_bytes(w, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, r->batch_id.data, r->batch_id.len);
	ttlv_put_enum(w, KMIP_TAG_RESULT_STATUS, r->status);
	if (r->reason != 0)
		ttlv_put_enum(w, KMIP_TAG_RESULT_REASON, r->reason);
	if (r->message != NULL)
		ttlv_put_cstr(w, KMIP_TAG_RESULT_MESSAGE, r->message);
	if (r->has_payload) {
		/* The payload arrives encoded: splice it in as the structure's body. */
		ttlv_begin(w, KMIP_TAG_RESPONSE_PAYLOAD);
		if (w->error == 0 && r->payload.len > 0 &&
		    buf_append(w->out, r->payload.data, r->payload.len) != 0)
			w->error = KMIPD_ENOMEM;
		ttlv_end(w);
	}
	ttlv_end(w);
}

static int encode(unsigned version, int64_t time_stamp, const struct kmip_result *results,
		  size_t count, bool too_large, struct buf *out)
{
	static const char too_large_message[] =
		"the response exceeds the Maximum Response Size the client set";
	struct ttlv_writer w;

	ttlv_writer_init(&w, out);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_MESSAGE);
	put_header(&w, version, time_stamp, count);
	for (size_t i = 0; i < count; i++) {
		struct kmip_result r = results[i];

		if (too_large && r.has_payload && r.status == KMIP_STATUS_SUCCESS) {
			r.status = KMIP_STATUS_OPERATION_FAILED;
			r.reason = KMIP_REASON_RESPONSE_TOO_LARGE;
			r.message = too_large_message;
			r.has_payload = false;
		}
		put_result(&w, &r);
	}
	ttlv_end(&w);
	return ttlv_writer_finish(&w);
}

int kmip_response_encode(unsigned version, int64_t time_stamp, const struct kmip_result *results,
			 size_t count, size_t max_size, struct buf *out)
{
	size_t start = out->len;
	int rv = encode(version, time_stamp, results, count, false, out);

	if (rv != 0 || max_size == 0 || out->len - start <= max_size)
		return rv;
	explicit_bzero(out->data + start, out->len - start);
	out->len = start;
	return encode(version, time_stamp, results, count, true, out);
}

int kmip_response_encode_error(const struct kmip_message_error *err, int64_t time_stamp,
			       struct buf *out)
{
	struct kmip_result r = {0};

	kmip_result_fail(&r, NULL, err->reason, err->message);
	return kmip_response_encode(kmip_response_version(err->version), time_stamp, &r, 1, 0, out);
}
