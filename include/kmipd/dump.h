/* A human-readable dump of a TTLV tree with the specification's names for tags and
 * enumeration values — what `kmipctl ttlv decode` prints. */
#ifndef KMIPD_DUMP_H
#define KMIPD_DUMP_H

#include <stdio.h>

#include "kmipd/ttlv.h"

/* Writes @item and everything below it to @out, one item per line, indented by depth:
 *   Operation (Enumeration): Create
 * Tags and values kmipd does not know are shown by number. */
void kmip_dump(FILE *out, const struct ttlv_item *item);

#endif
