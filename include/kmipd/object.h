/* A managed object as kmipd keeps it: identity, tenant, type, lifecycle state and dates,
 * the attributes a client can see, and the key material sealed under the tenant's KEK.
 *
 * The record is what the store persists and what replication commands carry, encoded with
 * msgpack (object_encode / object_decode). Material is only ever held sealed here: the
 * plaintext exists briefly in the operation that generates or returns it. */
#ifndef KMIPD_OBJECT_H
#define KMIPD_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"

#define OBJECT_UID_LEN	  36 /* a UUID in its canonical text form */
#define OBJECT_TENANT_MAX 64 /* tenant names: [A-Za-z0-9._-], 1..64 bytes */
#define OBJECT_FORMAT	  1  /* the record format written by this version */

/* One instance of an attribute other than those kept as typed fields below: its name, its
 * index among instances of that name, and the TTLV encoding of its Attribute Value item
 * (tag 0x42000B, type, length and padded value: exactly what goes on the wire). */
struct object_attr {
	const char *name; /* NUL-terminated */
	uint32_t index;
	const uint8_t *value;
	size_t value_len;
};

struct object {
	char uid[OBJECT_UID_LEN + 1];
	char tenant[OBJECT_TENANT_MAX + 1];
	uint32_t object_type; /* KMIP_OBJECT_TYPE_* */
	uint32_t state;	      /* KMIP_STATE_* */

	/* Lifecycle dates, seconds since the epoch; 0 = not set. */
	int64_t initial_date;
	int64_t activation_date;
	int64_t deactivation_date;
	int64_t compromise_occurrence_date;
	int64_t compromise_date;
	int64_t destroy_date;
	int64_t last_change_date;

	/* Revocation Reason, when revoked: code 0 = none. */
	uint32_t revocation_code;
	const char *revocation_message; /* NULL if none */

	/* Every other attribute (Cryptographic Algorithm, Name, Object Group, x-..., ...),
	 * in the order they were added. */
	struct object_attr *attrs;
	size_t attr_count;

	/* The material sealed under the tenant KEK (crypto_seal); empty once destroyed. */
	uint32_t key_format; /* KMIP_KEY_FORMAT_* the material is kept in (Raw) */
	const uint8_t *sealed;
	size_t sealed_len;
};

/* Encodes @obj as one msgpack map into @out (appending). 0, KMIPD_ENOMEM, or KMIPD_EINVAL
 * when @obj could not be decoded again (uid or tenant empty or unterminated, an attribute
 * without a name, a length past 32 bits); on error @out is as it was. */
int object_encode(const struct object *obj, struct buf *out);

/* Decodes a record made by object_encode() (this or an older format version). Strings and
 * byte strings are copied into @arena, so @obj does not borrow @data. 0, KMIPD_EMALFORMED
 * (not a record, or a newer format than this binary reads), or KMIPD_ENOMEM. */
int object_decode(const uint8_t *data, size_t len, struct arena *arena, struct object *obj);

/* The first attribute instance named @name with @index, or NULL. */
const struct object_attr *object_attr_find(const struct object *obj, const char *name,
					   uint32_t index);

/* Appends an instance (name and value are copied into @arena; the attrs array grows in
 * @arena too). 0 or KMIPD_ENOMEM. */
int object_attr_add(struct object *obj, struct arena *arena, const char *name, uint32_t index,
		    const uint8_t *value, size_t value_len);

/* Replaces the value of instance (@name, @index). 0, KMIPD_ENOT_FOUND or KMIPD_ENOMEM. */
int object_attr_replace(struct object *obj, struct arena *arena, const char *name, uint32_t index,
			const uint8_t *value, size_t value_len);

/* Removes instance (@name, @index), keeping the order of the others. 0 or
 * KMIPD_ENOT_FOUND. */
int object_attr_remove(struct object *obj, const char *name, uint32_t index);

/* The number of instances of @name, and the highest index in use (-1 if none). */
size_t object_attr_count(const struct object *obj, const char *name, int64_t *max_index);

#endif
