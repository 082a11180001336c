/* The KMIP 1.x attribute model: which attributes exist in which protocol version, their
 * value types, whether they may have several instances, who may set, modify and delete
 * them, which object types they apply to; and parsing, checking and encoding of
 * Attribute {Attribute Name, Attribute Index, Attribute Value} structures.
 *
 * Custom attributes are any attribute named "x-..." (set by clients) or "y-..." (set by
 * the server); they may hold any TTLV type and have any number of instances. */
#ifndef KMIPD_ATTR_H
#define KMIPD_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/message.h"
#include "kmipd/ttlv.h"

enum {
	KMIP_ATTR_MULTI = 1 << 0,	  /* may have several instances */
	KMIP_ATTR_CLIENT_SET = 1 << 1,	  /* a client may set it: Create/Register, Add */
	KMIP_ATTR_CLIENT_MODIFY = 1 << 2, /* a client may change it with Modify Attribute */
	KMIP_ATTR_CLIENT_DELETE = 1 << 3, /* a client may remove it with Delete Attribute */
};

/* Object types as bits, for kmip_attr_def.applies: bit n is Object Type n. */
#define KMIP_OBJECT_BIT(object_type) (1u << (object_type))

/* A field of a structured attribute value: its tag, type, whether it must be present,
 * whether it may repeat, and the first version that has it. */
struct kmip_attr_field {
	uint32_t tag;
	uint8_t type;
	bool required;
	bool repeats;
	unsigned since;
};

struct kmip_attr_def {
	const char *name; /* as the specification spells it: "Cryptographic Algorithm" */
	uint32_t tag;	  /* the attribute's own tag (KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM) */
	uint8_t type;	  /* TTLV type of its value */
	unsigned since;	  /* first version that has it */
	unsigned flags;	  /* KMIP_ATTR_* */
	uint32_t applies; /* KMIP_OBJECT_BIT()s of the object types it belongs to */
	const struct kmip_attr_field *fields; /* structure fields, NULL-tag terminated */
};

/* Looks up a standard attribute by name (exact match) or by its tag; NULL if none. */
const struct kmip_attr_def *kmip_attr_def_by_name(const char *name, size_t len);
const struct kmip_attr_def *kmip_attr_def_by_tag(uint32_t tag);

/* Calls @fn for every standard attribute, in the specification's order. */
void kmip_attr_def_foreach(void (*fn)(const struct kmip_attr_def *def, void *arg), void *arg);

enum kmip_attr_kind {
	KMIP_ATTR_UNKNOWN = 0,	 /* no such attribute in this version */
	KMIP_ATTR_STANDARD,	 /* defined by the specification */
	KMIP_ATTR_CUSTOM_CLIENT, /* "x-..." */
	KMIP_ATTR_CUSTOM_SERVER, /* "y-..." */
};

/* Classifies the attribute name @name of @len bytes for protocol @version; for a standard
 * attribute also returns its definition in *def (may be NULL). A standard attribute that
 * the version does not have is KMIP_ATTR_UNKNOWN. */
enum kmip_attr_kind kmip_attr_classify(const char *name, size_t len, unsigned version,
				       const struct kmip_attr_def **def);

/* True if the standard attribute @def belongs to objects of @object_type. */
bool kmip_attr_applies(const struct kmip_attr_def *def, uint32_t object_type);

/* A parsed Attribute. Name and value are views into the decoded message. */
struct kmip_attr {
	struct kmip_bytes name;
	bool has_index;
	int32_t index;
	const struct ttlv_item *value; /* the Attribute Value item; NULL when absent */
	enum kmip_attr_kind kind;
	const struct kmip_attr_def *def; /* standard attributes only */
};

/* Why an attribute was refused: a KMIP result reason and a message naming the attribute
 * and what is wrong with it. */
struct kmip_attr_problem {
	uint32_t reason;
	char message[256];
};

enum kmip_attr_value_rule {
	KMIP_ATTR_VALUE_REQUIRED, /* Add / Modify / templates */
	KMIP_ATTR_VALUE_OPTIONAL,
	KMIP_ATTR_VALUE_ABSENT, /* names only */
};

/* Parses an Attribute structure for protocol @version and checks its value (type and, for
 * structures and enumerations, content) against the model. Unknown names are refused.
 * 0, or KMIPD_EINVAL with @problem filled in. */
int kmip_attr_parse(const struct ttlv_item *attribute, unsigned version,
		    enum kmip_attr_value_rule value_rule, struct kmip_attr *out,
		    struct kmip_attr_problem *problem);

/* Checks @value (an Attribute Value item) against the definition of the attribute named
 * in @attr for @version. 0, or KMIPD_EINVAL with @problem filled in. */
int kmip_attr_check_value(const struct kmip_attr *attr, const struct ttlv_item *value,
			  unsigned version, struct kmip_attr_problem *problem);

/* Writes an Attribute structure: name, the index when @index > 0 or @always_index, and
 * @value (any item; written with the Attribute Value tag). */
void kmip_attr_put(struct ttlv_writer *w, const char *name, size_t name_len, int32_t index,
		   bool always_index, const struct ttlv_item *value);

#endif
