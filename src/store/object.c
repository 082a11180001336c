/* The managed-object record (see include/kmipd/object.h): its msgpack encoding and the
 * helpers that edit its list of attribute instances.
 *
 * A record is one msgpack map with short string keys. The first key is always "v", the
 * format version, so a reader knows which layout it holds before it interprets anything
 * else; keys this version does not know are skipped, which lets a newer binary add fields
 * that an older one ignores during a rolling upgrade. Records arrive from LMDB and from
 * replication commands, so the reader below checks every length against the bytes left and
 * never trusts a count to size an allocation it has not bounded. */
#include "kmipd/object.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kmipd/error.h"

/* The scalar fields of struct object, by record key. @required is the bit a decoder sets
 * in its "seen" mask for fields every record must have (0 for optional ones). */
enum field_kind { FIELD_U32, FIELD_DATE };
enum { SEEN_UID = 1, SEEN_TENANT = 2, SEEN_TYPE = 4, SEEN_STATE = 8, SEEN_ALL = 15 };

static const struct field {
	const char *key;
	enum field_kind kind;
	size_t offset;
	unsigned required;
} fields[] = {
	{"ot", FIELD_U32, offsetof(struct object, object_type), SEEN_TYPE},
	{"s", FIELD_U32, offsetof(struct object, state), SEEN_STATE},
	{"di", FIELD_DATE, offsetof(struct object, initial_date), 0},
	{"da", FIELD_DATE, offsetof(struct object, activation_date), 0},
	{"dd", FIELD_DATE, offsetof(struct object, deactivation_date), 0},
	{"dco", FIELD_DATE, offsetof(struct object, compromise_occurrence_date), 0},
	{"dc", FIELD_DATE, offsetof(struct object, compromise_date), 0},
	{"dx", FIELD_DATE, offsetof(struct object, destroy_date), 0},
	{"dl", FIELD_DATE, offsetof(struct object, last_change_date), 0},
	{"rc", FIELD_U32, offsetof(struct object, revocation_code), 0},
	{"kf", FIELD_U32, offsetof(struct object, key_format), 0},
};

#define FIELD_COUNT (sizeof(fields) / sizeof(fields[0]))

/* The other keys: "v" format, "u" uid, "t" tenant, "rm" revocation message (only when
 * set), "a" attributes (an array of [name, index, value] arrays), "m" sealed material. */

/* ---- Encoding ---- */

/* Where the packer writes: appends to @out and remembers the first failure, so the
 * encoder can check once at the end instead of after every call. */
struct sink {
	struct buf *out;
	int rc;
};

static int sink_write(void *data, const char *bytes, size_t len)
{
	struct sink *s = data;

	if (s->rc == 0)
		s->rc = buf_append(s->out, bytes, len);
	return s->rc;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t len)
{
	msgpack_pack_str(pk, len);
	if (len > 0)
		msgpack_pack_str_body(pk, s, len);
}

static void pack_key(msgpack_packer *pk, const char *key)
{
	pack_str(pk, key, strlen(key));
}

static void pack_bin(msgpack_packer *pk, const uint8_t *data, size_t len)
{
	msgpack_pack_bin(pk, len);
	if (len > 0)
		msgpack_pack_bin_body(pk, data, len);
}

int object_encode(const struct object *obj, struct buf *out)
{
	size_t start = out->len;
	struct sink sink = {out, 0};
	msgpack_packer pk;
	size_t uid_len, tenant_len, i;

	/* Refuse what object_decode() would refuse, so that every record written can be read
	 * back; msgpack lengths are 32-bit. */
	uid_len = strnlen(obj->uid, sizeof(obj->uid));
	tenant_len = strnlen(obj->tenant, sizeof(obj->tenant));
	if (uid_len == 0 || uid_len > OBJECT_UID_LEN || tenant_len == 0 ||
	    tenant_len > OBJECT_TENANT_MAX || obj->sealed_len > UINT32_MAX ||
	    (obj->sealed == NULL && obj->sealed_len > 0))
		return KMIPD_EINVAL;
	for (i = 0; i < obj->attr_count; i++) {
		const struct object_attr *a = &obj->attrs[i];

		if (a->name == NULL || a->name[0] == '\0' || a->value_len > UINT32_MAX ||
		    (a->value == NULL && a->value_len > 0))
			return KMIPD_EINVAL;
	}

	msgpack_packer_init(&pk, &sink, sink_write);
	msgpack_pack_map(&pk, 5 + FIELD_COUNT + (obj->revocation_message != NULL));
	pack_key(&pk, "v");
	msgpack_pack_uint32(&pk, OBJECT_FORMAT);
	pack_key(&pk, "u");
	pack_str(&pk, obj->uid, uid_len);
	pack_key(&pk, "t");
	pack_str(&pk, obj->tenant, tenant_len);
	for (i = 0; i < FIELD_COUNT; i++) {
		const void *p = (const char *)obj + fields[i].offset;

		pack_key(&pk, fields[i].key);
		if (fields[i].kind == FIELD_U32)
			msgpack_pack_uint32(&pk, *(const uint32_t *)p);
		else
			msgpack_pack_int64(&pk, *(const int64_t *)p);
	}
	if (obj->revocation_message != NULL) {
		pack_key(&pk, "rm");
		pack_str(&pk, obj->revocation_message, strlen(obj->revocation_message));
	}
	pack_key(&pk, "a");
	msgpack_pack_array(&pk, obj->attr_count);
	for (i = 0; i < obj->attr_count; i++) {
		const struct object_attr *a = &obj->attrs[i];

		msgpack_pack_array(&pk, 3);
		pack_key(&pk, a->name);
		msgpack_pack_uint32(&pk, a->index);
		pack_bin(&pk, a->value, a->value_len);
	}
	pack_key(&pk, "m");
	pack_bin(&pk, obj->sealed, obj->sealed_len);

	if (sink.rc != 0) {
		explicit_bzero(out->data + start, out->len - start);
		out->len = start;
	}
	return sink.rc;
}

/* ---- Decoding ---- */

struct reader {
	const uint8_t *p;
	const uint8_t *end;
};

static size_t left(const struct reader *r)
{
	return (size_t)(r->end - r->p);
}

/* Consumes @n bytes, returning where they start in @bytes. */
static int take(struct reader *r, size_t n, const uint8_t **bytes)
{
	if (left(r) < n)
		return KMIPD_EMALFORMED;
	*bytes = r->p;
	r->p += n;
	return 0;
}

/* Reads an @n-byte big-endian unsigned number (n <= 8). */
static int take_be(struct reader *r, size_t n, uint64_t *v)
{
	const uint8_t *b;
	size_t i;

	if (take(r, n, &b) != 0)
		return KMIPD_EMALFORMED;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = *v << 8 | b[i];
	return 0;
}

/* The size in bytes of the big-endian number following a msgpack type byte of one of the
 * 8/16/32/64-bit families whose first member is @base (e.g. 0xcc for uint8). */
static size_t width(uint8_t type, uint8_t base)
{
	return (size_t)1 << (type - base);
}

/* Reads any msgpack integer that fits an int64_t. */
static int read_int(struct reader *r, int64_t *v)
{
	const uint8_t *b;
	uint64_t u;

	if (take(r, 1, &b) != 0)
		return KMIPD_EMALFORMED;
	if (*b <= 0x7f || *b >= 0xe0) { /* positive and negative fixint */
		*v = (int8_t)*b;
		return 0;
	}
	if (*b >= 0xcc && *b <= 0xcf) {
		if (take_be(r, width(*b, 0xcc), &u) != 0 || u > INT64_MAX)
			return KMIPD_EMALFORMED;
		*v = (int64_t)u;
		return 0;
	}
	if (*b >= 0xd0 && *b <= 0xd3) {
		size_t n = width(*b, 0xd0);

		if (take_be(r, n, &u) != 0)
			return KMIPD_EMALFORMED;
		/* Sign-extend from n bytes. */
		if (n < 8 && (u >> (8 * n - 1)) != 0)
			u |= ~(uint64_t)0 << (8 * n);
		*v = (int64_t)u;
		return 0;
	}
	return KMIPD_EMALFORMED;
}

static int read_u32(struct reader *r, uint32_t *v)
{
	int64_t i;

	if (read_int(r, &i) != 0 || i < 0 || i > UINT32_MAX)
		return KMIPD_EMALFORMED;
	*v = (uint32_t)i;
	return 0;
}

/* Reads the length that follows the type byte @t of a str, bin or ext family whose 8-bit
 * member is @base. */
static int read_length(struct reader *r, uint8_t t, uint8_t base, uint64_t *n)
{
	return take_be(r, width(t, base), n);
}

/* Reads a string (@bin false) or byte string (@bin true): its length, then the bytes. */
static int read_bytes(struct reader *r, bool bin, const uint8_t **bytes, size_t *len)
{
	const uint8_t *b;
	uint64_t n;

	if (take(r, 1, &b) != 0)
		return KMIPD_EMALFORMED;
	if (!bin && *b >= 0xa0 && *b <= 0xbf) {
		n = *b & 0x1f;
	} else if (!bin && *b >= 0xd9 && *b <= 0xdb) {
		if (read_length(r, *b, 0xd9, &n) != 0)
			return KMIPD_EMALFORMED;
	} else if (bin && *b >= 0xc4 && *b <= 0xc6) {
		if (read_length(r, *b, 0xc4, &n) != 0)
			return KMIPD_EMALFORMED;
	} else {
		return KMIPD_EMALFORMED;
	}
	if (n > left(r))
		return KMIPD_EMALFORMED;
	*len = (size_t)n;
	return take(r, *len, bytes);
}

/* Reads a string that may not contain NUL (it becomes a C string). */
static int read_text(struct reader *r, const uint8_t **s, size_t *len)
{
	if (read_bytes(r, false, s, len) != 0 || memchr(*s, '\0', *len) != NULL)
		return KMIPD_EMALFORMED;
	return 0;
}

/* Reads a map (@map true) or array header. Every entry takes at least one byte, so a count
 * beyond the bytes left is malformed; this also bounds what callers allocate from it. */
static int read_count(struct reader *r, bool map, size_t *count)
{
	const uint8_t *b;
	uint64_t n;

	if (take(r, 1, &b) != 0)
		return KMIPD_EMALFORMED;
	if (map && *b >= 0x80 && *b <= 0x8f)
		n = *b & 0x0f;
	else if (!map && *b >= 0x90 && *b <= 0x9f)
		n = *b & 0x0f;
	else if ((map && *b >= 0xde && *b <= 0xdf) || (!map && *b >= 0xdc && *b <= 0xdd)) {
		/* map/array 16 and 32: the odd type byte has the 32-bit count */
		if (take_be(r, (*b & 1) ? 4 : 2, &n) != 0)
			return KMIPD_EMALFORMED;
	} else {
		return KMIPD_EMALFORMED;
	}
	if (n > left(r) / (map ? 2 : 1))
		return KMIPD_EMALFORMED;
	*count = (size_t)n;
	return 0;
}

/* Skips one value of any type, however nested, without recursion: @pending counts the
 * values still to skip. read_count()'s bound keeps it far from overflowing. */
static int skip(struct reader *r)
{
	uint64_t pending = 1;

	while (pending-- > 0) {
		const uint8_t *b;
		uint64_t n = 0;
		uint8_t t;
		int rv = 0;

		if (left(r) == 0)
			return KMIPD_EMALFORMED;
		t = *r->p;
		if ((t >= 0x80 && t <= 0x9f) || (t >= 0xdc && t <= 0xdf)) {
			bool map = (t >= 0x80 && t <= 0x8f) || t >= 0xde;
			size_t count;

			if (read_count(r, map, &count) != 0)
				return KMIPD_EMALFORMED;
			pending += map ? 2 * (uint64_t)count : count;
			continue;
		}
		r->p++;
		if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
			continue; /* fixint, nil, false, true */
		if (t >= 0xa0 && t <= 0xbf) {
			n = t & 0x1f; /* fixstr */
		} else if (t >= 0xc4 && t <= 0xc6) {
			rv = read_length(r, t, 0xc4, &n); /* bin */
		} else if (t >= 0xc7 && t <= 0xc9) {
			rv = read_length(r, t, 0xc7, &n); /* ext: length, type byte, data */
			n += 1;
		} else if (t == 0xca || t == 0xcb) {
			n = t == 0xca ? 4 : 8; /* float 32/64 */
		} else if (t >= 0xcc && t <= 0xcf) {
			n = width(t, 0xcc); /* uint */
		} else if (t >= 0xd0 && t <= 0xd3) {
			n = width(t, 0xd0); /* int */
		} else if (t >= 0xd4 && t <= 0xd8) {
			n = 1 + width(t, 0xd4); /* fixext: type byte and data */
		} else if (t >= 0xd9 && t <= 0xdb) {
			rv = read_length(r, t, 0xd9, &n); /* str */
		} else {
			return KMIPD_EMALFORMED; /* 0xc1 is never used */
		}
		if (rv != 0 || n > left(r) || take(r, (size_t)n, &b) != 0)
			return KMIPD_EMALFORMED;
	}
	return 0;
}

static bool key_is(const uint8_t *key, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(key, name, len) == 0;
}

/* Copies @len bytes into @arena; an empty string of bytes becomes NULL. */
static int copy_bytes(struct arena *arena, const uint8_t *src, size_t len, const uint8_t **out)
{
	uint8_t *copy;

	*out = NULL;
	if (len == 0)
		return 0;
	copy = arena_alloc(arena, len);
	if (copy == NULL)
		return KMIPD_ENOMEM;
	memcpy(copy, src, len);
	*out = copy;
	return 0;
}

/* Reads a string of 1..@max bytes into the fixed array @dst (max + 1 bytes, zeroed). */
static int read_fixed_text(struct reader *r, char *dst, size_t max)
{
	const uint8_t *s;
	size_t len;

	if (read_text(r, &s, &len) != 0 || len == 0 || len > max)
		return KMIPD_EMALFORMED;
	memcpy(dst, s, len);
	return 0;
}

static int read_attrs(struct reader *r, struct arena *arena, struct object *obj)
{
	size_t count, i;

	if (read_count(r, false, &count) != 0)
		return KMIPD_EMALFORMED;
	obj->attr_count = 0;
	obj->attrs = NULL;
	if (count == 0)
		return 0;
	/* read_count() bounded count by the record's length, so this cannot overflow. */
	obj->attrs = arena_alloc(arena, count * sizeof(*obj->attrs));
	if (obj->attrs == NULL)
		return KMIPD_ENOMEM;
	for (i = 0; i < count; i++) {
		struct object_attr *a = &obj->attrs[i];
		const uint8_t *name, *value;
		size_t n, name_len, extra;
		int rv;

		if (read_count(r, false, &n) != 0 || n < 3 || read_text(r, &name, &name_len) != 0 ||
		    name_len == 0 || read_u32(r, &a->index) != 0 ||
		    read_bytes(r, true, &value, &a->value_len) != 0)
			return KMIPD_EMALFORMED;
		for (extra = 3; extra < n; extra++) {
			if (skip(r) != 0)
				return KMIPD_EMALFORMED;
		}
		a->name = arena_strndup(arena, (const char *)name, name_len);
		if (a->name == NULL)
			return KMIPD_ENOMEM;
		rv = copy_bytes(arena, value, a->value_len, &a->value);
		if (rv != 0)
			return rv;
		obj->attr_count++;
	}
	return 0;
}

/* Reads the value of one known key (@key_len bytes at @key), or skips an unknown one.
 * @seen collects which required keys were met. */
static int read_member(struct reader *r, const uint8_t *key, size_t key_len, struct arena *arena,
		       struct object *obj, unsigned *seen)
{
	const uint8_t *s;
	size_t len, i;

	for (i = 0; i < FIELD_COUNT; i++) {
		void *p = (char *)obj + fields[i].offset;

		if (!key_is(key, key_len, fields[i].key))
			continue;
		*seen |= fields[i].required;
		if (fields[i].kind == FIELD_U32)
			return read_u32(r, p);
		return read_int(r, p);
	}
	if (key_is(key, key_len, "u")) {
		*seen |= SEEN_UID;
		memset(obj->uid, 0, sizeof(obj->uid));
		return read_fixed_text(r, obj->uid, OBJECT_UID_LEN);
	}
	if (key_is(key, key_len, "t")) {
		*seen |= SEEN_TENANT;
		memset(obj->tenant, 0, sizeof(obj->tenant));
		return read_fixed_text(r, obj->tenant, OBJECT_TENANT_MAX);
	}
	if (key_is(key, key_len, "rm")) {
		if (read_text(r, &s, &len) != 0)
			return KMIPD_EMALFORMED;
		obj->revocation_message = arena_strndup(arena, (const char *)s, len);
		return obj->revocation_message != NULL ? 0 : KMIPD_ENOMEM;
	}
	if (key_is(key, key_len, "a"))
		return read_attrs(r, arena, obj);
	if (key_is(key, key_len, "m")) {
		if (read_bytes(r, true, &s, &obj->sealed_len) != 0)
			return KMIPD_EMALFORMED;
		return copy_bytes(arena, s, obj->sealed_len, &obj->sealed);
	}
	return skip(r);
}

int object_decode(const uint8_t *data, size_t len, struct arena *arena, struct object *obj)
{
	struct reader r = {data, data + len};
	const uint8_t *key;
	size_t pairs, key_len, i;
	uint32_t version;
	unsigned seen = 0;
	int rv;

	memset(obj, 0, sizeof(*obj));
	if (data == NULL)
		return KMIPD_EMALFORMED;

	/* The version comes first and decides how to read the rest. */
	if (read_count(&r, true, &pairs) != 0 || pairs == 0 || read_text(&r, &key, &key_len) != 0 ||
	    !key_is(key, key_len, "v") || read_u32(&r, &version) != 0 || version == 0 ||
	    version > OBJECT_FORMAT)
		return KMIPD_EMALFORMED;

	for (i = 1; i < pairs; i++) {
		rv = read_text(&r, &key, &key_len);
		if (rv == 0)
			rv = read_member(&r, key, key_len, arena, obj, &seen);
		if (rv != 0)
			goto err;
	}
	rv = KMIPD_EMALFORMED;
	if (r.p != r.end || seen != SEEN_ALL)
		goto err;
	return 0;
err:
	memset(obj, 0, sizeof(*obj));
	return rv;
}

/* ---- Attribute instances ---- */

const struct object_attr *object_attr_find(const struct object *obj, const char *name,
					   uint32_t index)
{
	size_t i;

	for (i = 0; i < obj->attr_count; i++) {
		const struct object_attr *a = &obj->attrs[i];

		if (a->index == index && strcmp(a->name, name) == 0)
			return a;
	}
	return NULL;
}

int object_attr_add(struct object *obj, struct arena *arena, const char *name, uint32_t index,
		    const uint8_t *value, size_t value_len)
{
	struct object_attr *attrs;
	struct object_attr *a;
	int rv;

	if (obj->attr_count >= SIZE_MAX / sizeof(*attrs) - 1)
		return KMIPD_ENOMEM;
	/* The array may not be the arena's (a caller can build an object around its own), so
	 * it is copied rather than grown in place: objects carry tens of attributes, not
	 * thousands. */
	attrs = arena_alloc(arena, (obj->attr_count + 1) * sizeof(*attrs));
	if (attrs == NULL)
		return KMIPD_ENOMEM;
	if (obj->attr_count > 0)
		memcpy(attrs, obj->attrs, obj->attr_count * sizeof(*attrs));
	a = &attrs[obj->attr_count];
	a->name = arena_strndup(arena, name, strlen(name));
	if (a->name == NULL)
		return KMIPD_ENOMEM;
	a->index = index;
	a->value_len = value_len;
	rv = copy_bytes(arena, value, value_len, &a->value);
	if (rv != 0)
		return rv;
	obj->attrs = attrs;
	obj->attr_count++;
	return 0;
}

int object_attr_replace(struct object *obj, struct arena *arena, const char *name, uint32_t index,
			const uint8_t *value, size_t value_len)
{
	struct object_attr *a = (struct object_attr *)object_attr_find(obj, name, index);
	const uint8_t *copy;
	int rv;

	if (a == NULL)
		return KMIPD_ENOT_FOUND;
	rv = copy_bytes(arena, value, value_len, &copy);
	if (rv != 0)
		return rv;
	a->value = copy;
	a->value_len = value_len;
	return 0;
}

int object_attr_remove(struct object *obj, const char *name, uint32_t index)
{
	const struct object_attr *a = object_attr_find(obj, name, index);
	size_t at;

	if (a == NULL)
		return KMIPD_ENOT_FOUND;
	at = (size_t)(a - obj->attrs);
	memmove(&obj->attrs[at], &obj->attrs[at + 1],
		(obj->attr_count - at - 1) * sizeof(*obj->attrs));
	obj->attr_count--;
	return 0;
}

size_t object_attr_count(const struct object *obj, const char *name, int64_t *max_index)
{
	size_t i, count = 0;
	int64_t max = -1;

	for (i = 0; i < obj->attr_count; i++) {
		const struct object_attr *a = &obj->attrs[i];

		if (strcmp(a->name, name) != 0)
			continue;
		count++;
		if ((int64_t)a->index > max)
			max = a->index;
	}
	if (max_index != NULL)
		*max_index = max;
	return count;
}
