/* The human-readable TTLV dump behind `kmipctl ttlv decode`. */
#include <inttypes.h>
#include <time.h>

#include "kmipd/attr.h"
#include "kmipd/dump.h"
#include "kmipd/kmip_spec.h"

static void put_hex(FILE *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%02x", p[i]);
}

static void put_text(FILE *out, const uint8_t *p, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			fprintf(out, "\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] == 0x7f)
			fprintf(out, "\\x%02x", p[i]);
		else
			fputc(p[i], out);
	}
	fputc('"', out);
}

static void put_date(FILE *out, int64_t seconds)
{
	time_t t = (time_t)seconds;
	struct tm tm;
	char text[40];

	if (gmtime_r(&t, &tm) != NULL && strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm))
		fprintf(out, "%s (%" PRId64 ")", text, seconds);
	else
		fprintf(out, "%" PRId64, seconds);
}

/* Prints the bits of a mask by name: "12 (Encrypt|Decrypt)". */
static void put_mask(FILE *out, enum kmip_enum_family family, uint32_t mask)
{
	const char *sep = " (";

	fprintf(out, "%" PRIu32, mask);
	for (unsigned bit = 0; bit < 32; bit++) {
		const char *name = kmip_enum_name(family, 1u << bit);

		if ((mask & (1u << bit)) == 0)
			continue;
		if (name != NULL)
			fprintf(out, "%s%s", sep, name);
		else
			fprintf(out, "%s0x%08x", sep, 1u << bit);
		sep = "|";
	}
	if (sep[0] == '|')
		fputc(')', out);
}

/* @meaning is the tag whose meaning the value has: the item's own tag, or, for an
 * Attribute Value, the tag of the attribute it belongs to. */
static void dump(FILE *out, const struct ttlv_item *item, uint32_t meaning, unsigned depth)
{
	const char *name = kmip_tag_name(item->tag);
	enum kmip_enum_family family = kmip_enum_family_of(meaning);
	uint32_t child_meaning = 0;

	fprintf(out, "%*s", (int)depth * 2, "");
	if (name != NULL)
		fprintf(out, "%s (%s): ", name, ttlv_type_name(item->type));
	else
		fprintf(out, "0x%06X (%s): ", item->tag, ttlv_type_name(item->type));

	switch (item->type) {
	case TTLV_STRUCTURE: {
		const struct ttlv_item *attr_name = ttlv_child(item, KMIP_TAG_ATTRIBUTE_NAME);

		fprintf(out, "%" PRIu32 " item(s)\n", item->v.children.count);
		if (item->tag == KMIP_TAG_ATTRIBUTE && attr_name != NULL &&
		    attr_name->type == TTLV_TEXT_STRING) {
			const struct kmip_attr_def *def = kmip_attr_def_by_name(
				(const char *)attr_name->v.bytes, attr_name->length);

			child_meaning = def ? def->tag : 0;
		}
		for (const struct ttlv_item *c = item->v.children.first; c; c = c->next)
			dump(out, c, c->tag == KMIP_TAG_ATTRIBUTE_VALUE ? child_meaning : c->tag,
			     depth + 1);
		return;
	}
	case TTLV_INTEGER:
		if (family != KMIP_FAMILY_NONE_ && kmip_enum_family_is_mask(family))
			put_mask(out, family, (uint32_t)item->v.integer);
		else
			fprintf(out, "%" PRId32, item->v.integer);
		break;
	case TTLV_LONG_INTEGER:
		fprintf(out, "%" PRId64, item->v.long_integer);
		break;
	case TTLV_BIG_INTEGER:
		fputs("0x", out);
		put_hex(out, item->v.bytes, item->length);
		break;
	case TTLV_ENUMERATION: {
		const char *value = kmip_enum_name(family, item->v.enumeration);

		if (value != NULL)
			fprintf(out, "%s (0x%08" PRIX32 ")", value, item->v.enumeration);
		else
			fprintf(out, "0x%08" PRIX32, item->v.enumeration);
		break;
	}
	case TTLV_BOOLEAN:
		fputs(item->v.boolean ? "true" : "false", out);
		break;
	case TTLV_TEXT_STRING:
		put_text(out, item->v.bytes, item->length);
		break;
	case TTLV_BYTE_STRING:
		fprintf(out, "%" PRIu32 " byte(s) ", item->length);
		put_hex(out, item->v.bytes, item->length);
		break;
	case TTLV_DATE_TIME:
		put_date(out, item->v.date_time);
		break;
	case TTLV_INTERVAL:
		fprintf(out, "%" PRIu32 " s", item->v.interval);
		break;
	}
	fputc('\n', out);
}

void kmip_dump(FILE *out, const struct ttlv_item *item)
{
	dump(out, item, item->tag, 0);
}
