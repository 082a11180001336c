/* Prints kmipd's KMIP tables for cross-checking against other implementations:
 *   tag 0x420001 1.0 Activation Date
 *   enum 0x42005C 0x00000001 1.0 Create
 * one line per tag, then one per value of every enumeration family, the family named by
 * the hex of its defining tag. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kmipd/kmip_spec.h"

static void print_tag(uint32_t tag, const char *name, unsigned since, void *arg)
{
	(void)arg;
	printf("tag 0x%06" PRIX32 " %u.%u %s\n", tag, KMIP_VERSION_MAJOR(since),
	       KMIP_VERSION_MINOR(since), name);
}

struct family {
	uint32_t tag;
};

static void print_value(uint32_t value, const char *name, unsigned since, void *arg)
{
	const struct family *f = arg;

	printf("enum 0x%06" PRIX32 " 0x%08" PRIX32 " %u.%u %s\n", f->tag, value,
	       KMIP_VERSION_MAJOR(since), KMIP_VERSION_MINOR(since), name);
}

int main(void)
{
	kmip_tag_foreach(print_tag, NULL);
	for (int i = KMIP_FAMILY_NONE_ + 1; i < KMIP_FAMILY_COUNT_; i++) {
		enum kmip_enum_family family = (enum kmip_enum_family)i;
		const char *name = kmip_enum_family_name(family);
		struct family f = {0};

		if (name == NULL || kmip_tag_by_name(name, strlen(name), &f.tag) != 0) {
			fprintf(stderr, "spec_dump: family %d has no tag\n", i);
			return 1;
		}
		kmip_enum_foreach(family, print_value, &f);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
