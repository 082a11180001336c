/* The numbers of KMIP 1.0–1.4: tags, enumerations and protocol versions, with the
 * version each one first appeared in, and lookups between numbers and the names the
 * specification uses ("Cryptographic Algorithm", "Pre-Active").
 *
 * The tables themselves live in two X-macro lists, kmip_tags.def and kmip_enums.def,
 * so that the C constants below and the runtime name tables can never disagree. */
#ifndef KMIPD_KMIP_SPEC_H
#define KMIPD_KMIP_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A protocol version packed as (major << 8 | minor), so versions compare with < and >. */
#define KMIP_VERSION(major, minor) ((unsigned)(((major) << 8) | (minor)))
#define KMIP_V1_0		   KMIP_VERSION(1, 0)
#define KMIP_V1_1		   KMIP_VERSION(1, 1)
#define KMIP_V1_2		   KMIP_VERSION(1, 2)
#define KMIP_V1_3		   KMIP_VERSION(1, 3)
#define KMIP_V1_4		   KMIP_VERSION(1, 4)
#define KMIP_VERSION_MAJOR(v)	   ((v) >> 8)
#define KMIP_VERSION_MINOR(v)	   ((v)&0xffu)

/* The versions kmipd speaks, highest first (the order Discover Versions answers in). */
extern const unsigned kmip_supported_versions[];
extern const size_t kmip_supported_versions_count;
bool kmip_version_supported(unsigned version);

/* kmip_tags.def holds lines KMIP_TAG(CONSTANT, value, "Name", since); kmip_enums.def holds
 * KMIP_FAMILY(FAMILY, TAG_CONSTANT, is_mask) lines, each followed by that family's
 * KMIP_VALUE(FAMILY, CONSTANT, value, "Name", since) lines. A mask family's values are
 * bits of an Integer field (Cryptographic Usage Mask); the others are Enumerations. */

/* KMIP_TAG_ACTIVATION_DATE = 0x420001, ... one constant per line of kmip_tags.def. */
enum kmip_tag {
#define KMIP_TAG(constant, value, name, since) KMIP_TAG_##constant = value,
#include "kmipd/kmip_tags.def"
#undef KMIP_TAG
};

/* The enumeration families: KMIP_FAMILY_OP, KMIP_FAMILY_OBJECT_TYPE, ... */
enum kmip_enum_family {
	KMIP_FAMILY_NONE_ = 0,
#define KMIP_FAMILY(family, tag, is_mask) KMIP_FAMILY_##family,
#define KMIP_VALUE(family, constant, value, name, since)
#include "kmipd/kmip_enums.def"
#undef KMIP_FAMILY
#undef KMIP_VALUE
	KMIP_FAMILY_COUNT_
};

/* KMIP_OP_CREATE = 0x01, KMIP_REASON_ITEM_NOT_FOUND = 0x01, ... one per value line. */
enum {
#define KMIP_FAMILY(family, tag, is_mask)
#define KMIP_VALUE(family, constant, value, name, since) KMIP_##family##_##constant = value,
#include "kmipd/kmip_enums.def"
#undef KMIP_FAMILY
#undef KMIP_VALUE
};

/* The specification's name of @tag ("Unique Identifier"), or NULL if kmipd does not know
 * it. The string is static. */
const char *kmip_tag_name(uint32_t tag);

/* The version that introduced @tag, or 0 if the tag is unknown. */
unsigned kmip_tag_since(uint32_t tag);

/* Finds the tag whose name is the @len bytes at @name (exact, case-sensitive match).
 * Returns 0 and sets *tag, or KMIPD_ENOT_FOUND. */
int kmip_tag_by_name(const char *name, size_t len, uint32_t *tag);

/* The enumeration family whose values the field @tag carries (KMIP_FAMILY_OP for
 * KMIP_TAG_OPERATION), or KMIP_FAMILY_NONE_ if @tag is not an enumeration field. */
enum kmip_enum_family kmip_enum_family_of(uint32_t tag);

/* The name of the family ("Operation") — the name of its defining tag. */
const char *kmip_enum_family_name(enum kmip_enum_family family);

/* True if @family's values are bits of an Integer mask rather than Enumeration values. */
bool kmip_enum_family_is_mask(enum kmip_enum_family family);

/* The name of @value in @family ("Pre-Active"), or NULL if the value is not known. */
const char *kmip_enum_name(enum kmip_enum_family family, uint32_t value);

/* The version that introduced @value in @family, or 0 if unknown. */
unsigned kmip_enum_since(enum kmip_enum_family family, uint32_t value);

/* Finds a value of @family by its name (exact match). 0 and *value, or KMIPD_ENOT_FOUND. */
int kmip_enum_by_name(enum kmip_enum_family family, const char *name, size_t len, uint32_t *value);

/* Calls @fn for every known tag in ascending order; for listings and cross-checks. */
void kmip_tag_foreach(void (*fn)(uint32_t tag, const char *name, unsigned since, void *arg),
		      void *arg);

/* Calls @fn for every value of @family in ascending order. */
void kmip_enum_foreach(enum kmip_enum_family family,
		       void (*fn)(uint32_t value, const char *name, unsigned since, void *arg),
		       void *arg);

#endif
