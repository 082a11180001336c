/* The KMIP 1.0–1.4 attribute table and the checks made on every Attribute a client sends.
 * The rules (instances, who may set, modify or delete) are those of the specification's
 * per-attribute rule tables (KMIP 1.4, section 3). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kmipd/attr.h"
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"

/* Object type groups. */
#define OBJ(t)	    KMIP_OBJECT_BIT(KMIP_OBJECT_TYPE_##t)
#define ALL_OBJECTS 0xFFFFFFFEu
#define KEYS	    (OBJ(SYMMETRIC_KEY) | OBJ(PUBLIC_KEY) | OBJ(PRIVATE_KEY) | OBJ(SPLIT_KEY))
#define CERTS	    (OBJ(CERTIFICATE))
#define CRYPTO	    (KEYS | CERTS | OBJ(TEMPLATE) | OBJ(PGP_KEY))
#define ASYMMETRIC  (OBJ(PUBLIC_KEY) | OBJ(PRIVATE_KEY) | OBJ(TEMPLATE))
#define PROTECTING  (OBJ(SYMMETRIC_KEY) | OBJ(SPLIT_KEY) | OBJ(TEMPLATE))

#define SERVER	      0
#define MULTI	      KMIP_ATTR_MULTI
#define CLIENT	      KMIP_ATTR_CLIENT_SET
#define CLIENT_FULL   (KMIP_ATTR_CLIENT_SET | KMIP_ATTR_CLIENT_MODIFY | KMIP_ATTR_CLIENT_DELETE)
#define CLIENT_CHANGE (KMIP_ATTR_CLIENT_SET | KMIP_ATTR_CLIENT_MODIFY)

/* The tables read best one entry per line, aligned by hand. */
/* clang-format off */
#define F(tag, type, required, repeats, since)                                                     \
	{KMIP_TAG_##tag, TTLV_##type, required, repeats, KMIP_V1_##since}
#define END                                                                                        \
	{                                                                                          \
		0, 0, false, false, 0                                                              \
	}

static const struct kmip_attr_field name_fields[] = {
	F(NAME_VALUE, TEXT_STRING, true, false, 0),
	F(NAME_TYPE, ENUMERATION, true, false, 0),
	END,
};

static const struct kmip_attr_field cryptographic_parameters_fields[] = {
	F(BLOCK_CIPHER_MODE, ENUMERATION, false, false, 0),
	F(PADDING_METHOD, ENUMERATION, false, false, 0),
	F(HASHING_ALGORITHM, ENUMERATION, false, false, 0),
	F(KEY_ROLE_TYPE, ENUMERATION, false, false, 0),
	F(DIGITAL_SIGNATURE_ALGORITHM, ENUMERATION, false, false, 2),
	F(CRYPTOGRAPHIC_ALGORITHM, ENUMERATION, false, false, 2),
	F(RANDOM_IV, BOOLEAN, false, false, 2),
	F(IV_LENGTH, INTEGER, false, false, 2),
	F(TAG_LENGTH, INTEGER, false, false, 2),
	F(FIXED_FIELD_LENGTH, INTEGER, false, false, 2),
	F(INVOCATION_FIELD_LENGTH, INTEGER, false, false, 2),
	F(COUNTER_LENGTH, INTEGER, false, false, 2),
	F(INITIAL_COUNTER_VALUE, INTEGER, false, false, 2),
	F(SALT_LENGTH, INTEGER, false, false, 4),
	F(MASK_GENERATOR, ENUMERATION, false, false, 4),
	F(MASK_GENERATOR_HASHING_ALGORITHM, ENUMERATION, false, false, 4),
	F(P_SOURCE, BYTE_STRING, false, false, 4),
	F(TRAILER_FIELD, INTEGER, false, false, 4),
	END,
};

static const struct kmip_attr_field domain_parameters_fields[] = {
	F(QLENGTH, INTEGER, false, false, 0),
	F(RECOMMENDED_CURVE, ENUMERATION, false, false, 0),
	END,
};

static const struct kmip_attr_field usage_limits_fields[] = {
	F(USAGE_LIMITS_TOTAL, LONG_INTEGER, true, false, 0),
	F(USAGE_LIMITS_COUNT, LONG_INTEGER, false, false, 0),
	F(USAGE_LIMITS_UNIT, ENUMERATION, true, false, 0),
	END,
};

static const struct kmip_attr_field link_fields[] = {
	F(LINK_TYPE, ENUMERATION, true, false, 0),
	F(LINKED_OBJECT_IDENTIFIER, TEXT_STRING, true, false, 0),
	END,
};

static const struct kmip_attr_field application_information_fields[] = {
	F(APPLICATION_NAMESPACE, TEXT_STRING, true, false, 0),
	F(APPLICATION_DATA, TEXT_STRING, false, false, 0),
	END,
};

static const struct kmip_attr_field alternative_name_fields[] = {
	F(ALTERNATIVE_NAME_VALUE, TEXT_STRING, true, false, 2),
	F(ALTERNATIVE_NAME_TYPE, ENUMERATION, true, false, 2),
	END,
};

static const struct kmip_attr_field key_value_location_fields[] = {
	F(KEY_VALUE_LOCATION_VALUE, TEXT_STRING, true, false, 2),
	F(KEY_VALUE_LOCATION_TYPE, ENUMERATION, true, false, 2),
	END,
};

static const struct kmip_attr_field random_number_generator_fields[] = {
	F(RNG_ALGORITHM, ENUMERATION, true, false, 3),
	F(CRYPTOGRAPHIC_ALGORITHM, ENUMERATION, false, false, 3),
	F(CRYPTOGRAPHIC_LENGTH, INTEGER, false, false, 3),
	F(HASHING_ALGORITHM, ENUMERATION, false, false, 3),
	F(DRBG_ALGORITHM, ENUMERATION, false, false, 3),
	F(RECOMMENDED_CURVE, ENUMERATION, false, false, 3),
	F(FIPS186_VARIATION, ENUMERATION, false, false, 3),
	F(PREDICTION_RESISTANCE, BOOLEAN, false, false, 3),
	END,
};

#define A(name, tag, type, since, flags, applies, fields)                                          \
	{name, KMIP_TAG_##tag, TTLV_##type, KMIP_V1_##since, flags, applies, fields}

/* clang-format off */
static const struct kmip_attr_def attributes[] = {
	A("Unique Identifier", UNIQUE_IDENTIFIER, TEXT_STRING, 0, SERVER, ALL_OBJECTS, NULL),
	A("Name", NAME, STRUCTURE, 0, MULTI | CLIENT_FULL, ALL_OBJECTS, name_fields),
	A("Object Type", OBJECT_TYPE, ENUMERATION, 0, SERVER, ALL_OBJECTS, NULL),
	A("Cryptographic Algorithm", CRYPTOGRAPHIC_ALGORITHM, ENUMERATION, 0, CLIENT, CRYPTO, NULL),
	A("Cryptographic Length", CRYPTOGRAPHIC_LENGTH, INTEGER, 0, CLIENT, CRYPTO, NULL),
	A("Cryptographic Parameters", CRYPTOGRAPHIC_PARAMETERS, STRUCTURE, 0, MULTI | CLIENT_FULL, CRYPTO, cryptographic_parameters_fields),
	A("Cryptographic Domain Parameters", CRYPTOGRAPHIC_DOMAIN_PARAMETERS, STRUCTURE, 0, CLIENT, ASYMMETRIC, domain_parameters_fields),
	A("Certificate Type", CERTIFICATE_TYPE, ENUMERATION, 0, SERVER, CERTS, NULL),
	A("Certificate Length", CERTIFICATE_LENGTH, INTEGER, 1, SERVER, CERTS, NULL),
	A("X.509 Certificate Identifier", X_509_CERTIFICATE_IDENTIFIER, STRUCTURE, 1, SERVER, CERTS, NULL),
	A("X.509 Certificate Subject", X_509_CERTIFICATE_SUBJECT, STRUCTURE, 1, SERVER, CERTS, NULL),
	A("X.509 Certificate Issuer", X_509_CERTIFICATE_ISSUER, STRUCTURE, 1, SERVER, CERTS, NULL),
	A("Certificate Identifier", CERTIFICATE_IDENTIFIER, STRUCTURE, 0, SERVER, CERTS, NULL),
	A("Certificate Subject", CERTIFICATE_SUBJECT, STRUCTURE, 0, SERVER, CERTS, NULL),
	A("Certificate Issuer", CERTIFICATE_ISSUER, STRUCTURE, 0, SERVER, CERTS, NULL),
	A("Digital Signature Algorithm", DIGITAL_SIGNATURE_ALGORITHM, ENUMERATION, 1, SERVER, CERTS | OBJ(PGP_KEY), NULL),
	A("Digest", DIGEST, STRUCTURE, 0, MULTI | SERVER, ALL_OBJECTS, NULL),
	A("Operation Policy Name", OPERATION_POLICY_NAME, TEXT_STRING, 0, CLIENT_FULL, ALL_OBJECTS, NULL),
	A("Cryptographic Usage Mask", CRYPTOGRAPHIC_USAGE_MASK, INTEGER, 0, CLIENT, ALL_OBJECTS, NULL),
	A("Lease Time", LEASE_TIME, INTERVAL, 0, SERVER, ALL_OBJECTS, NULL),
	A("Usage Limits", USAGE_LIMITS, STRUCTURE, 0, CLIENT_CHANGE, KEYS | OBJ(TEMPLATE), usage_limits_fields),
	A("State", STATE, ENUMERATION, 0, SERVER, ALL_OBJECTS, NULL),
	A("Initial Date", INITIAL_DATE, DATE_TIME, 0, SERVER, ALL_OBJECTS, NULL),
	A("Activation Date", ACTIVATION_DATE, DATE_TIME, 0, CLIENT_CHANGE, ALL_OBJECTS, NULL),
	A("Process Start Date", PROCESS_START_DATE, DATE_TIME, 0, CLIENT_CHANGE, PROTECTING, NULL),
	A("Protect Stop Date", PROTECT_STOP_DATE, DATE_TIME, 0, CLIENT_CHANGE, PROTECTING, NULL),
	A("Deactivation Date", DEACTIVATION_DATE, DATE_TIME, 0, CLIENT_CHANGE, ALL_OBJECTS, NULL),
	A("Destroy Date", DESTROY_DATE, DATE_TIME, 0, SERVER, ALL_OBJECTS, NULL),
	A("Compromise Occurrence Date", COMPROMISE_OCCURRENCE_DATE, DATE_TIME, 0, SERVER, ALL_OBJECTS, NULL),
	A("Compromise Date", COMPROMISE_DATE, DATE_TIME, 0, SERVER, ALL_OBJECTS, NULL),
	A("Revocation Reason", REVOCATION_REASON, STRUCTURE, 0, SERVER, ALL_OBJECTS, NULL),
	A("Archive Date", ARCHIVE_DATE, DATE_TIME, 0, SERVER, ALL_OBJECTS, NULL),
	A("Object Group", OBJECT_GROUP, TEXT_STRING, 0, MULTI | CLIENT, ALL_OBJECTS, NULL),
	A("Fresh", FRESH, BOOLEAN, 1, CLIENT, ALL_OBJECTS, NULL),
	A("Link", LINK, STRUCTURE, 0, MULTI | CLIENT_FULL, ALL_OBJECTS, link_fields),
	A("Application Specific Information", APPLICATION_SPECIFIC_INFORMATION, STRUCTURE, 0, MULTI | CLIENT_FULL, ALL_OBJECTS, application_information_fields),
	A("Contact Information", CONTACT_INFORMATION, TEXT_STRING, 0, CLIENT_FULL, ALL_OBJECTS, NULL),
	A("Last Change Date", LAST_CHANGE_DATE, DATE_TIME, 0, SERVER, ALL_OBJECTS, NULL),
	A("Alternative Name", ALTERNATIVE_NAME, STRUCTURE, 2, MULTI | CLIENT_FULL, ALL_OBJECTS, alternative_name_fields),
	A("Key Value Present", KEY_VALUE_PRESENT, BOOLEAN, 2, SERVER, ALL_OBJECTS, NULL),
	A("Key Value Location", KEY_VALUE_LOCATION, STRUCTURE, 2, MULTI | CLIENT_FULL, ALL_OBJECTS, key_value_location_fields),
	A("Original Creation Date", ORIGINAL_CREATION_DATE, DATE_TIME, 2, CLIENT, ALL_OBJECTS, NULL),
	A("Random Number Generator", RANDOM_NUMBER_GENERATOR, STRUCTURE, 3, CLIENT, KEYS, random_number_generator_fields),
	A("PKCS#12 Friendly Name", PKCS12_FRIENDLY_NAME, TEXT_STRING, 4, CLIENT_FULL, OBJ(PRIVATE_KEY) | CERTS, NULL),
	A("Description", DESCRIPTION, TEXT_STRING, 4, CLIENT_FULL, ALL_OBJECTS, NULL),
	A("Comment", COMMENT, TEXT_STRING, 4, CLIENT_FULL, ALL_OBJECTS, NULL),
	A("Sensitive", SENSITIVE, BOOLEAN, 4, CLIENT_CHANGE, ALL_OBJECTS, NULL),
	A("Always Sensitive", ALWAYS_SENSITIVE, BOOLEAN, 4, SERVER, ALL_OBJECTS, NULL),
	A("Extractable", EXTRACTABLE, BOOLEAN, 4, CLIENT_CHANGE, ALL_OBJECTS, NULL),
	A("Never Extractable", NEVER_EXTRACTABLE, BOOLEAN, 4, SERVER, ALL_OBJECTS, NULL),
};
/* clang-format on */
/* clang-format on */

#define ATTRIBUTE_COUNT (sizeof(attributes) / sizeof(attributes[0]))

const struct kmip_attr_def *kmip_attr_def_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < ATTRIBUTE_COUNT; i++)
		if (strlen(attributes[i].name) == len && memcmp(attributes[i].name, name, len) == 0)
			return &attributes[i];
	return NULL;
}

const struct kmip_attr_def *kmip_attr_def_by_tag(uint32_t tag)
{
	for (size_t i = 0; i < ATTRIBUTE_COUNT; i++)
		if (attributes[i].tag == tag)
			return &attributes[i];
	return NULL;
}

void kmip_attr_def_foreach(void (*fn)(const struct kmip_attr_def *def, void *arg), void *arg)
{
	for (size_t i = 0; i < ATTRIBUTE_COUNT; i++)
		fn(&attributes[i], arg);
}

enum kmip_attr_kind kmip_attr_classify(const char *name, size_t len, unsigned version,
				       const struct kmip_attr_def **def)
{
	const struct kmip_attr_def *d;

	if (def != NULL)
		*def = NULL;
	if (len > 2 && name[1] == '-' && (name[0] == 'x' || name[0] == 'y'))
		return name[0] == 'x' ? KMIP_ATTR_CUSTOM_CLIENT : KMIP_ATTR_CUSTOM_SERVER;
	d = kmip_attr_def_by_name(name, len);
	if (d == NULL || d->since > version)
		return KMIP_ATTR_UNKNOWN;
	if (def != NULL)
		*def = d;
	return KMIP_ATTR_STANDARD;
}

bool kmip_attr_applies(const struct kmip_attr_def *def, uint32_t object_type)
{
	return object_type < 32 && (def->applies & KMIP_OBJECT_BIT(object_type)) != 0;
}

static int refuse(struct kmip_attr_problem *p, uint32_t reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct kmip_attr_problem *p, uint32_t reason, const char *fmt, ...)
{
	va_list ap;

	p->reason = reason;
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof(p->message), fmt, ap);
	va_end(ap);
	return KMIPD_EINVAL;
}

/* Checks an Enumeration @value of the field @tag: it must be a value that @version has. */
static int check_enum(const char *attr, uint32_t tag, uint32_t value, unsigned version,
		      struct kmip_attr_problem *p)
{
	enum kmip_enum_family family = kmip_enum_family_of(tag);
	unsigned since;

	if (family == KMIP_FAMILY_NONE_)
		return 0;
	since = kmip_enum_since(family, value);
	if (since == 0 || since > version)
		return refuse(p, KMIP_REASON_INVALID_FIELD,
			      "%s: 0x%08X is not a %s value in KMIP %u.%u", attr, value,
			      kmip_enum_family_name(family), KMIP_VERSION_MAJOR(version),
			      KMIP_VERSION_MINOR(version));
	return 0;
}

/* Checks a structure value against its field list. */
static int check_fields(const char *attr, const struct kmip_attr_field *fields,
			const struct ttlv_item *value, unsigned version,
			struct kmip_attr_problem *p)
{
	for (const struct ttlv_item *c = value->v.children.first; c != NULL; c = c->next) {
		const struct kmip_attr_field *f = fields;
		const char *name = kmip_tag_name(c->tag);

		while (f->tag != 0 && f->tag != c->tag)
			f++;
		if (f->tag == 0 || f->since > version)
			return refuse(p, KMIP_REASON_INVALID_FIELD, "%s does not have a field %s",
				      attr, name ? name : "of that tag");
		if (c->type != f->type)
			return refuse(p, KMIP_REASON_INVALID_FIELD, "%s: %s must be a %s", attr,
				      name, ttlv_type_name(f->type));
		if (!f->repeats && ttlv_next_same(c) != NULL)
			return refuse(p, KMIP_REASON_INVALID_FIELD, "%s: %s appears twice", attr,
				      name);
		if (c->type == TTLV_ENUMERATION &&
		    check_enum(attr, c->tag, c->v.enumeration, version, p) != 0)
			return KMIPD_EINVAL;
	}
	for (const struct kmip_attr_field *f = fields; f->tag != 0; f++)
		if (f->required && f->since <= version && ttlv_child(value, f->tag) == NULL)
			return refuse(p, KMIP_REASON_INVALID_FIELD, "%s needs a %s", attr,
				      kmip_tag_name(f->tag));
	return 0;
}

int kmip_attr_check_value(const struct kmip_attr *attr, const struct ttlv_item *value,
			  unsigned version, struct kmip_attr_problem *p)
{
	const struct kmip_attr_def *def = attr->def;

	if (attr->kind != KMIP_ATTR_STANDARD)
		return 0; /* custom attributes may hold any type */
	if (value->type != def->type)
		return refuse(p, KMIP_REASON_INVALID_FIELD,
			      "the value of %s must be a %s, not a %s", def->name,
			      ttlv_type_name(def->type), ttlv_type_name(value->type));
	if (value->type == TTLV_ENUMERATION)
		return check_enum(def->name, def->tag, value->v.enumeration, version, p);
	if (value->type == TTLV_STRUCTURE && def->fields != NULL)
		return check_fields(def->name, def->fields, value, version, p);
	return 0;
}

int kmip_attr_parse(const struct ttlv_item *attribute, unsigned version,
		    enum kmip_attr_value_rule value_rule, struct kmip_attr *out,
		    struct kmip_attr_problem *p)
{
	const struct ttlv_item *name = NULL, *index = NULL, *value = NULL;
	const char *text;
	int shown;

	memset(out, 0, sizeof(*out));
	if (attribute->type != TTLV_STRUCTURE)
		return refuse(p, KMIP_REASON_INVALID_FIELD, "an Attribute must be a Structure");
	for (const struct ttlv_item *c = attribute->v.children.first; c != NULL; c = c->next) {
		const struct ttlv_item **slot = c->tag == KMIP_TAG_ATTRIBUTE_NAME    ? &name
						: c->tag == KMIP_TAG_ATTRIBUTE_INDEX ? &index
						: c->tag == KMIP_TAG_ATTRIBUTE_VALUE ? &value
										     : NULL;

		if (slot == NULL || *slot != NULL)
			return refuse(
				p, KMIP_REASON_INVALID_FIELD,
				"an Attribute holds one Attribute Name, at most one Attribute "
				"Index and at most one Attribute Value");
		*slot = c;
	}
	if (name == NULL || name->type != TTLV_TEXT_STRING)
		return refuse(p, KMIP_REASON_INVALID_FIELD,
			      "an Attribute needs an Attribute Name text string");
	/* Names in messages are cut at 64 bytes: enough to recognise, never a flood. */
	shown = (int)(name->length > 64 ? 64 : name->length);
	text = (const char *)name->v.bytes;
	out->name = (struct kmip_bytes){name->v.bytes, name->length};
	out->kind =
		kmip_attr_classify((const char *)name->v.bytes, name->length, version, &out->def);
	if (out->kind == KMIP_ATTR_UNKNOWN)
		return refuse(p, KMIP_REASON_INVALID_FIELD,
			      "'%.*s' is not an attribute of KMIP %u.%u (custom attributes are "
			      "named x-...)",
			      shown, text, KMIP_VERSION_MAJOR(version),
			      KMIP_VERSION_MINOR(version));
	if (index != NULL) {
		if (index->type != TTLV_INTEGER || index->v.integer < 0)
			return refuse(p, KMIP_REASON_INVALID_FIELD,
				      "%.*s: Attribute Index must be a non-negative integer", shown,
				      text);
		out->has_index = true;
		out->index = index->v.integer;
	}
	if (value == NULL && value_rule == KMIP_ATTR_VALUE_REQUIRED)
		return refuse(p, KMIP_REASON_INVALID_FIELD, "%.*s: the Attribute has no value",
			      shown, text);
	if (value != NULL && value_rule == KMIP_ATTR_VALUE_ABSENT)
		return refuse(p, KMIP_REASON_INVALID_FIELD,
			      "%.*s: an Attribute Value is not expected here", shown, text);
	out->value = value;
	return value != NULL ? kmip_attr_check_value(out, value, version, p) : 0;
}

void kmip_attr_put(struct ttlv_writer *w, const char *name, size_t name_len, int32_t index,
		   bool always_index, const struct ttlv_item *value)
{
	ttlv_begin(w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, name_len);
	if (index > 0 || always_index)
		ttlv_put_integer(w, KMIP_TAG_ATTRIBUTE_INDEX, index);
	if (value != NULL)
		ttlv_put_item_as(w, KMIP_TAG_ATTRIBUTE_VALUE, value);
	ttlv_end(w);
}
