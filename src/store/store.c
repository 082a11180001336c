/* The node's persistent state in one LMDB environment (see include/kmipd/store.h).
 *
 * Layout. Four databases: "meta" holds "format" (uint32, little-endian, written when the
 * store is created and checked on every open) and "applied" (uint64, little-endian);
 * "tenants" maps a tenant name to a msgpack tenant record; "objects" maps
 * tenant NUL uid to an object record (object_encode); "names" maps
 * tenant NUL SHA-256(encoded Name value) uid to an empty value. Tenant names cannot
 * contain NUL, so a tenant's keys are exactly those starting with "tenant NUL".
 *
 * Durability. The environment always runs with MDB_NOMETASYNC (never MDB_NOSYNC): each
 * commit fsyncs the data pages and the meta page follows at the next commit, so a crash can
 * undo the last transaction but never corrupts the file. The Raft log is the durable record
 * and replay by applied index repairs that. With config->durable the store also syncs after
 * every commit, so a commit that returned survives a crash on its own. */
#include "kmipd/store.h"

#include <errno.h>
#include <lmdb.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/fsutil.h"

#define STORE_FORMAT  1 /* the layout above; a newer one is refused */
#define TENANT_FORMAT 1 /* the tenant record's "v" */
#define HASH_LEN      32
#define MAX_DBS	      8

#if SIZE_MAX > 0xffffffffu
#define DEFAULT_MAP_SIZE ((size_t)64 << 30)
#else
#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#endif

struct store {
	MDB_env *env;
	MDB_dbi meta, tenants, objects, names;
	bool durable;
	EVP_MD *sha256;
};

struct store_txn {
	struct store *store;
	MDB_txn *txn; /* NULL once a failed write has aborted it */
	bool write;
	int failed; /* the error that ended a write transaction early; 0 = none */
};

/* The longest key: a names key (tenant NUL hash uid). */
struct key {
	uint8_t bytes[OBJECT_TENANT_MAX + 1 + HASH_LEN + OBJECT_UID_LEN];
	size_t len;
};

static int map_error(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return KMIPD_ENOT_FOUND;
	case MDB_MAP_FULL:
	case ENOSPC:
		return KMIPD_ENO_SPACE;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return KMIPD_ECORRUPT;
	case MDB_VERSION_MISMATCH:
		return KMIPD_EUNSUPPORTED;
	case MDB_READERS_FULL:
		return KMIPD_EAGAIN;
	case ENOMEM:
		return KMIPD_ENOMEM;
	default:
		return KMIPD_EIO;
	}
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

/* ---- Opening ---- */

/* Opens the databases and checks or writes the format, in one write transaction. */
static int open_databases(struct store *s, const char *dir, char *errmsg, size_t errlen)
{
	static const char format_key[] = "format";
	MDB_val k = {sizeof(format_key) - 1, (void *)format_key};
	uint8_t bytes[4];
	MDB_val v;
	MDB_txn *txn;
	uint64_t format;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "tenants", MDB_CREATE, &s->tenants)) != 0 ||
	    (rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &s->objects)) != 0 ||
	    (rc = mdb_dbi_open(txn, "names", MDB_CREATE, &s->names)) != 0)
		goto abort;

	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		put_le(bytes, STORE_FORMAT, sizeof(bytes));
		v.mv_size = sizeof(bytes);
		v.mv_data = bytes;
		rc = mdb_put(txn, s->meta, &k, &v, 0);
	} else if (rc == 0) {
		if (v.mv_size != sizeof(bytes)) {
			mdb_txn_abort(txn);
			errmsgf(errmsg, errlen, "store in %s: the format record is damaged", dir);
			return KMIPD_ECORRUPT;
		}
		format = get_le(v.mv_data, sizeof(bytes));
		if (format > STORE_FORMAT) {
			mdb_txn_abort(txn);
			errmsgf(errmsg, errlen,
				"store in %s has format %llu; this kmipd reads formats up to %d",
				dir, (unsigned long long)format, STORE_FORMAT);
			return KMIPD_EUNSUPPORTED;
		}
	}
	if (rc != 0)
		goto abort;
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		goto fail;
	return 0;
abort:
	mdb_txn_abort(txn);
fail:
	errmsgf(errmsg, errlen, "opening the databases in %s: %s", dir, mdb_strerror(rc));
	return map_error(rc);
}

int store_open(struct store **out, const struct store_config *config, char *errmsg, size_t errlen)
{
	const char *dir;
	struct store *s;
	int dead, rc;

	errmsgf(errmsg, errlen, "%s", "");
	if (out == NULL || config == NULL || config->dir == NULL || config->dir[0] == '\0') {
		errmsgf(errmsg, errlen, "opening the store: no directory given");
		return KMIPD_EINVAL;
	}
	dir = config->dir;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		errmsgf(errmsg, errlen, "opening the store in %s: out of memory", dir);
		return KMIPD_ENOMEM;
	}
	s->durable = config->durable;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		errmsgf(errmsg, errlen, "creating directory %s: %s", dir, strerror(errno));
		goto err;
	}
	rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->env,
					 config->map_size ? config->map_size : DEFAULT_MAP_SIZE);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, MAX_DBS);
	if (rc == 0)
		rc = mdb_env_open(s->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
	if (rc != 0) {
		errmsgf(errmsg, errlen, "opening LMDB environment in %s: %s", dir,
			mdb_strerror(rc));
		rc = map_error(rc);
		goto err;
	}
	/* Slots of readers that died (a crashed process) would pin old pages forever. */
	rc = mdb_reader_check(s->env, &dead);
	if (rc != 0) {
		errmsgf(errmsg, errlen, "clearing stale readers in %s: %s", dir, mdb_strerror(rc));
		rc = map_error(rc);
		goto err;
	}
	rc = open_databases(s, dir, errmsg, errlen);
	if (rc != 0)
		goto err;
	s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (s->sha256 == NULL) {
		errmsgf(errmsg, errlen, "opening the store in %s: OpenSSL has no SHA-256", dir);
		rc = KMIPD_ECRYPTO;
		goto err;
	}
	*out = s;
	return 0;
err:
	if (s->env != NULL)
		mdb_env_close(s->env);
	free(s);
	return rc;
}

void store_close(struct store *store)
{
	if (store == NULL)
		return;
	mdb_env_close(store->env);
	EVP_MD_free(store->sha256);
	free(store);
}

/* ---- Transactions ---- */

int store_txn_begin(struct store *store, bool write, struct store_txn **txn)
{
	struct store_txn *t;
	int rc;

	if (store == NULL || txn == NULL)
		return KMIPD_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return KMIPD_ENOMEM;
	rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc != 0) {
		free(t);
		return map_error(rc);
	}
	t->store = store;
	t->write = write;
	*txn = t;
	return 0;
}

int store_txn_commit(struct store_txn *txn)
{
	int rc = 0;

	if (!txn->write) {
		store_txn_abort(txn);
		return 0;
	}
	if (txn->failed != 0) {
		rc = txn->failed;
		store_txn_abort(txn);
		return rc;
	}
	rc = mdb_txn_commit(txn->txn); /* frees the LMDB transaction even when it fails */
	if (rc == 0 && txn->store->durable)
		rc = mdb_env_sync(txn->store->env, 1);
	free(txn);
	return map_error(rc);
}

void store_txn_abort(struct store_txn *txn)
{
	if (txn == NULL)
		return;
	if (txn->txn != NULL)
		mdb_txn_abort(txn->txn);
	free(txn);
}

/* Every write goes through here. LMDB leaves a transaction unusable after a failed write
 * (map full, I/O error), so the transaction is aborted at once: its pages are released, and
 * the handle only remembers the error for store_txn_commit() to return. */
static int txn_put(struct store_txn *txn, MDB_dbi dbi, const void *key, size_t key_len,
		   const void *data, size_t len)
{
	MDB_val k = {key_len, (void *)key};
	MDB_val v = {len, (void *)data};
	int rc;

	if (!txn->write)
		return KMIPD_EINVAL;
	if (txn->failed != 0)
		return txn->failed;
	rc = mdb_put(txn->txn, dbi, &k, &v, 0);
	if (rc == 0)
		return 0;
	mdb_txn_abort(txn->txn);
	txn->txn = NULL;
	txn->failed = map_error(rc);
	return txn->failed;
}

/* Deletes @key; a missing key is not an error. */
static int txn_del(struct store_txn *txn, MDB_dbi dbi, const void *key, size_t key_len)
{
	MDB_val k = {key_len, (void *)key};
	int rc;

	if (txn->failed != 0)
		return txn->failed;
	rc = mdb_del(txn->txn, dbi, &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		return 0;
	mdb_txn_abort(txn->txn);
	txn->txn = NULL;
	txn->failed = map_error(rc);
	return txn->failed;
}

/* Looks @key up; @v is valid until the next write in @txn. */
static int txn_get(struct store_txn *txn, MDB_dbi dbi, const void *key, size_t key_len, MDB_val *v)
{
	MDB_val k = {key_len, (void *)key};

	if (txn->failed != 0)
		return txn->failed;
	return map_error(mdb_get(txn->txn, dbi, &k, v));
}

static bool has_prefix(const MDB_val *k, const uint8_t *prefix, size_t len)
{
	return len == 0 || (k->mv_size >= len && memcmp(k->mv_data, prefix, len) == 0);
}

/* Calls @visit for each key starting with @prefix, in key order, from @start (or from the
 * first key after @start when @after). @visit returns non-zero to stop; that value is
 * returned. */
static int scan(struct store_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t prefix_len,
		const uint8_t *start, size_t start_len, bool after,
		int (*visit)(const MDB_val *k, const MDB_val *v, void *ctx), void *ctx)
{
	MDB_cursor *cursor;
	MDB_val k = {start_len, (void *)start};
	MDB_val v;
	int rc, stop = 0;

	if (txn->failed != 0)
		return txn->failed;
	rc = mdb_cursor_open(txn->txn, dbi, &cursor);
	if (rc != 0)
		return map_error(rc);
	rc = mdb_cursor_get(cursor, &k, &v, start_len > 0 ? MDB_SET_RANGE : MDB_FIRST);
	if (rc == 0 && after && start_len > 0 && k.mv_size == start_len &&
	    memcmp(k.mv_data, start, start_len) == 0)
		rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
	while (rc == 0 && has_prefix(&k, prefix, prefix_len)) {
		stop = visit(&k, &v, ctx);
		if (stop != 0)
			break;
		rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cursor);
	if (stop != 0)
		return stop;
	return rc == MDB_NOTFOUND ? 0 : map_error(rc);
}

/* ---- Applied index ---- */

static const char applied_key[] = "applied";

int store_applied_index(struct store_txn *txn, uint64_t *index)
{
	MDB_val v;
	int rc;

	rc = txn_get(txn, txn->store->meta, applied_key, sizeof(applied_key) - 1, &v);
	if (rc == KMIPD_ENOT_FOUND) {
		*index = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 8)
		return KMIPD_ECORRUPT;
	*index = get_le(v.mv_data, 8);
	return 0;
}

int store_set_applied_index(struct store_txn *txn, uint64_t index)
{
	uint8_t bytes[8];

	put_le(bytes, index, sizeof(bytes));
	return txn_put(txn, txn->store->meta, applied_key, sizeof(applied_key) - 1, bytes,
		       sizeof(bytes));
}

/* ---- Keys ---- */

/* The length of @s if it is 1..@max bytes, else 0. */
static size_t text_len(const char *s, size_t max)
{
	size_t len;

	if (s == NULL)
		return 0;
	len = strnlen(s, max + 1);
	return len <= max ? len : 0;
}

/* tenant NUL: the prefix of every key of @tenant. 0 when @tenant is not a tenant name. */
static int tenant_prefix(struct key *k, const char *tenant)
{
	size_t len = text_len(tenant, OBJECT_TENANT_MAX);

	if (len == 0)
		return KMIPD_EINVAL;
	memcpy(k->bytes, tenant, len);
	k->bytes[len] = '\0';
	k->len = len + 1;
	return 0;
}

/* Appends @len bytes (the caller has checked they fit). */
static void key_append(struct key *k, const void *bytes, size_t len)
{
	memcpy(k->bytes + k->len, bytes, len);
	k->len += len;
}

/* tenant NUL SHA-256(value): the prefix of a Name value's index keys. */
static int name_prefix(struct store *s, struct key *k, const char *tenant, const uint8_t *value,
		       size_t len)
{
	int rc = tenant_prefix(k, tenant);

	if (rc != 0)
		return rc;
	if (EVP_Digest(len > 0 ? value : (const uint8_t *)"", len, k->bytes + k->len, NULL,
		       s->sha256, NULL) != 1)
		return KMIPD_ECRYPTO;
	k->len += HASH_LEN;
	return 0;
}

/* ---- Tenants ---- */

/* The tenant record: a msgpack map of "v" (first), "n" name, "p" provider, "r" root key id,
 * "k" wrapped KEK, "c" created. Unknown keys are skipped on reading. */

static int sink_write(void *data, const char *bytes, size_t len)
{
	return buf_append(data, bytes, len) == 0 ? 0 : -1;
}

static int encode_tenant(const struct store_tenant *t, struct buf *out)
{
	const char *root = t->root_key_id != NULL ? t->root_key_id : "";
	size_t name_len = strlen(t->name), provider_len = strlen(t->provider);
	size_t root_len = strlen(root);
	msgpack_packer pk;
	int rc = 0;

	msgpack_packer_init(&pk, out, sink_write);
	rc |= msgpack_pack_map(&pk, 6);
	rc |= msgpack_pack_str_with_body(&pk, "v", 1);
	rc |= msgpack_pack_uint32(&pk, TENANT_FORMAT);
	rc |= msgpack_pack_str_with_body(&pk, "n", 1);
	rc |= msgpack_pack_str_with_body(&pk, t->name, name_len);
	rc |= msgpack_pack_str_with_body(&pk, "p", 1);
	rc |= msgpack_pack_str_with_body(&pk, t->provider, provider_len);
	rc |= msgpack_pack_str_with_body(&pk, "r", 1);
	rc |= msgpack_pack_str_with_body(&pk, root, root_len);
	rc |= msgpack_pack_str_with_body(&pk, "k", 1);
	rc |= msgpack_pack_bin_with_body(&pk, t->wrapped_kek, t->wrapped_kek_len);
	rc |= msgpack_pack_str_with_body(&pk, "c", 1);
	rc |= msgpack_pack_int64(&pk, t->created);
	return rc == 0 ? 0 : KMIPD_ENOMEM;
}

/* A minimal msgpack reader for the tenant record; every length is checked against the
 * bytes left, and anything unexpected makes the record corrupt. */
struct reader {
	const uint8_t *p;
	const uint8_t *end;
};

static int take(struct reader *r, size_t n, const uint8_t **bytes)
{
	if ((size_t)(r->end - r->p) < n)
		return KMIPD_ECORRUPT;
	*bytes = r->p;
	r->p += n;
	return 0;
}

/* Reads a type byte and, for the 8/16/32/64-bit forms, the big-endian number after it. */
static int take_header(struct reader *r, uint8_t *type, uint64_t *n)
{
	const uint8_t *b;
	size_t width = 0;

	if (take(r, 1, &b) != 0)
		return KMIPD_ECORRUPT;
	*type = *b;
	*n = 0;
	if (*b == 0xcc || *b == 0xd0 || *b == 0xd9 || *b == 0xc4)
		width = 1;
	else if (*b == 0xcd || *b == 0xd1 || *b == 0xda || *b == 0xc5 || *b == 0xdc || *b == 0xde)
		width = 2;
	else if (*b == 0xce || *b == 0xd2 || *b == 0xdb || *b == 0xc6 || *b == 0xdd || *b == 0xdf)
		width = 4;
	else if (*b == 0xcf || *b == 0xd3)
		width = 8;
	if (take(r, width, &b) != 0)
		return KMIPD_ECORRUPT;
	while (width-- > 0)
		*n = *n << 8 | *b++;
	return 0;
}

/* Reads a string (@bin false) or byte string. */
static int read_bytes(struct reader *r, bool bin, const uint8_t **bytes, size_t *len)
{
	uint8_t t;
	uint64_t n;

	if (take_header(r, &t, &n) != 0)
		return KMIPD_ECORRUPT;
	if (!bin && t >= 0xa0 && t <= 0xbf)
		n = t & 0x1f;
	else if (!(bin ? t >= 0xc4 && t <= 0xc6 : t >= 0xd9 && t <= 0xdb))
		return KMIPD_ECORRUPT;
	if (n > (uint64_t)(r->end - r->p))
		return KMIPD_ECORRUPT;
	*len = (size_t)n;
	return take(r, *len, bytes);
}

static int read_int(struct reader *r, int64_t *v)
{
	uint8_t t;
	uint64_t n;

	if (take_header(r, &t, &n) != 0)
		return KMIPD_ECORRUPT;
	if (t <= 0x7f || t >= 0xe0)
		*v = (int8_t)t;
	else if (t >= 0xcc && t <= 0xcf && n <= INT64_MAX)
		*v = (int64_t)n;
	else if (t == 0xd0)
		*v = (int8_t)n;
	else if (t == 0xd1)
		*v = (int16_t)n;
	else if (t == 0xd2)
		*v = (int32_t)n;
	else if (t == 0xd3)
		*v = (int64_t)n;
	else
		return KMIPD_ECORRUPT;
	return 0;
}

/* Skips one value of any type, without recursion (@pending: values still to skip). A
 * container cannot hold more entries than there are bytes left. */
static int skip(struct reader *r)
{
	uint64_t pending = 1, n, size;
	const uint8_t *b;
	uint8_t t;

	while (pending-- > 0) {
		if (take_header(r, &t, &n) != 0)
			return KMIPD_ECORRUPT;
		size = 0;
		if ((t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf) {
			n = t <= 0x8f ? (t & 0x0f) : n;
			if (n > (uint64_t)(r->end - r->p))
				return KMIPD_ECORRUPT;
			pending += 2 * n;
		} else if ((t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd) {
			n = t <= 0x9f ? (t & 0x0f) : n;
			if (n > (uint64_t)(r->end - r->p))
				return KMIPD_ECORRUPT;
			pending += n;
		} else if (t >= 0xa0 && t <= 0xbf) {
			size = t & 0x1f;
		} else if ((t >= 0xc4 && t <= 0xc6) || (t >= 0xd9 && t <= 0xdb)) {
			size = n;
		} else if (t == 0xca || t == 0xcb) {
			size = t == 0xca ? 4 : 8;
		} else if (t >= 0xc7 && t <= 0xc9) {
			/* ext 8/16/32: its length is read here, then a type byte and the data */
			uint64_t len;
			size_t width = (size_t)1 << (t - 0xc7);

			if (take(r, width, &b) != 0)
				return KMIPD_ECORRUPT;
			for (len = 0; width > 0; width--)
				len = len << 8 | *b++;
			size = len + 1;
		} else if (t >= 0xd4 && t <= 0xd8) {
			size = 1 + ((uint64_t)1 << (t - 0xd4));
		} else if (!(t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3 ||
			     (t >= 0xcc && t <= 0xd3))) {
			return KMIPD_ECORRUPT; /* 0xc1 */
		}
		if (size > (uint64_t)(r->end - r->p) || take(r, (size_t)size, &b) != 0)
			return KMIPD_ECORRUPT;
	}
	return 0;
}

static bool key_is(const uint8_t *key, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(key, name, len) == 0;
}

/* Copies a string of at most @max bytes, without NUL, into @dst (max + 1 bytes). */
static int read_text(struct reader *r, char *dst, size_t max)
{
	const uint8_t *s;
	size_t len;

	if (read_bytes(r, false, &s, &len) != 0 || len > max || memchr(s, '\0', len) != NULL)
		return KMIPD_ECORRUPT;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* Decodes the record @v stored under @k; a record naming another tenant is corrupt. */
static int decode_tenant(const MDB_val *k, const MDB_val *v, struct arena *arena,
			 struct store_tenant *t)
{
	struct reader r = {v->mv_data, (const uint8_t *)v->mv_data + v->mv_size};
	const uint8_t *key, *s;
	size_t key_len, s_len;
	uint64_t pairs, i;
	int64_t version;
	uint8_t type;
	char *root;
	uint8_t *kek;

	memset(t, 0, sizeof(*t));
	t->root_key_id = "";
	if (take_header(&r, &type, &pairs) != 0)
		return KMIPD_ECORRUPT;
	if (type >= 0x80 && type <= 0x8f)
		pairs = type & 0x0f;
	else if (type != 0xde && type != 0xdf)
		return KMIPD_ECORRUPT;
	if (pairs == 0 || read_bytes(&r, false, &key, &key_len) != 0 ||
	    !key_is(key, key_len, "v") || read_int(&r, &version) != 0 || version < 1 ||
	    version > TENANT_FORMAT)
		return KMIPD_ECORRUPT;
	for (i = 1; i < pairs; i++) {
		int rc;

		if (read_bytes(&r, false, &key, &key_len) != 0)
			return KMIPD_ECORRUPT;
		if (key_is(key, key_len, "n")) {
			rc = read_text(&r, t->name, OBJECT_TENANT_MAX);
		} else if (key_is(key, key_len, "p")) {
			rc = read_text(&r, t->provider, sizeof(t->provider) - 1);
		} else if (key_is(key, key_len, "r")) {
			rc = read_bytes(&r, false, &s, &s_len);
			if (rc != 0 || memchr(s, '\0', s_len) != NULL)
				return KMIPD_ECORRUPT;
			root = arena_strndup(arena, (const char *)s, s_len);
			if (root == NULL)
				return KMIPD_ENOMEM;
			t->root_key_id = root;
		} else if (key_is(key, key_len, "k")) {
			rc = read_bytes(&r, true, &s, &s_len);
			if (rc == 0 && s_len > 0) {
				kek = arena_alloc(arena, s_len);
				if (kek == NULL)
					return KMIPD_ENOMEM;
				memcpy(kek, s, s_len);
				t->wrapped_kek = kek;
				t->wrapped_kek_len = s_len;
			}
		} else if (key_is(key, key_len, "c")) {
			rc = read_int(&r, &t->created);
		} else {
			rc = skip(&r);
		}
		if (rc != 0)
			return KMIPD_ECORRUPT;
	}
	if (r.p != r.end || strlen(t->name) != k->mv_size ||
	    memcmp(t->name, k->mv_data, k->mv_size) != 0)
		return KMIPD_ECORRUPT;
	return 0;
}

int store_tenant_get(struct store_txn *txn, const char *name, struct arena *arena,
		     struct store_tenant *out)
{
	size_t len = text_len(name, OBJECT_TENANT_MAX);
	MDB_val key, v;
	int rc;

	if (len == 0)
		return name == NULL ? KMIPD_EINVAL : KMIPD_ENOT_FOUND;
	rc = txn_get(txn, txn->store->tenants, name, len, &v);
	if (rc != 0)
		return rc;
	key.mv_size = len;
	key.mv_data = (void *)name;
	return decode_tenant(&key, &v, arena, out);
}

int store_tenant_put(struct store_txn *txn, const struct store_tenant *tenant)
{
	struct buf record = BUF_INIT;
	size_t len;
	int rc;

	len = text_len(tenant->name, OBJECT_TENANT_MAX);
	if (len == 0 ||
	    strnlen(tenant->provider, sizeof(tenant->provider)) >= sizeof(tenant->provider) ||
	    (tenant->wrapped_kek == NULL && tenant->wrapped_kek_len > 0) ||
	    tenant->wrapped_kek_len > UINT32_MAX)
		return KMIPD_EINVAL;
	rc = encode_tenant(tenant, &record);
	if (rc == 0)
		rc = txn_put(txn, txn->store->tenants, tenant->name, len, record.data, record.len);
	buf_free(&record);
	return rc;
}

struct tenant_visit {
	struct arena *arena;
	int (*fn)(const struct store_tenant *tenant, void *arg);
	void *arg;
};

static int visit_tenant(const MDB_val *k, const MDB_val *v, void *ctx)
{
	struct tenant_visit *tv = ctx;
	struct store_tenant t;
	int rc;

	rc = decode_tenant(k, v, tv->arena, &t);
	if (rc != 0)
		return rc;
	return tv->fn(&t, tv->arg);
}

int store_tenant_foreach(struct store_txn *txn, struct arena *arena,
			 int (*fn)(const struct store_tenant *tenant, void *arg), void *arg)
{
	struct tenant_visit tv = {arena, fn, arg};

	return scan(txn, txn->store->tenants, NULL, 0, NULL, 0, false, visit_tenant, &tv);
}

/* ---- Objects ---- */

/* Decodes a stored object record; a record that does not decode, or that names another key
 * than the one it is stored under, is corruption. */
static int decode_object(const MDB_val *k, const MDB_val *v, struct arena *arena,
			 struct object *obj)
{
	size_t tenant_len;
	int rc;

	rc = object_decode(v->mv_data, v->mv_size, arena, obj);
	if (rc != 0)
		return rc == KMIPD_ENOMEM ? rc : KMIPD_ECORRUPT;
	tenant_len = strlen(obj->tenant);
	if (k->mv_size != tenant_len + 1 + strlen(obj->uid) ||
	    memcmp(k->mv_data, obj->tenant, tenant_len + 1) != 0 ||
	    memcmp((const char *)k->mv_data + tenant_len + 1, obj->uid, strlen(obj->uid)) != 0)
		return KMIPD_ECORRUPT;
	return 0;
}

/* tenant NUL uid. */
static int object_key(struct key *k, const char *tenant, const char *uid)
{
	size_t len = text_len(uid, OBJECT_UID_LEN);
	int rc;

	if (uid == NULL)
		return KMIPD_EINVAL;
	rc = tenant_prefix(k, tenant);
	if (rc != 0)
		return rc;
	if (len == 0)
		return KMIPD_ENOT_FOUND;
	key_append(k, uid, len);
	return 0;
}

int store_object_get(struct store_txn *txn, const char *tenant, const char *uid,
		     struct arena *arena, struct object *out)
{
	struct key k;
	MDB_val v;
	MDB_val key;
	int rc;

	rc = object_key(&k, tenant, uid);
	if (rc == KMIPD_EINVAL && tenant != NULL && uid != NULL)
		rc = KMIPD_ENOT_FOUND; /* a name no tenant can have */
	if (rc != 0)
		return rc;
	rc = txn_get(txn, txn->store->objects, k.bytes, k.len, &v);
	if (rc != 0)
		return rc;
	key.mv_size = k.len;
	key.mv_data = k.bytes;
	return decode_object(&key, &v, arena, out);
}

static bool is_name(const struct object_attr *a)
{
	return strcmp(a->name, "Name") == 0;
}

/* Whether @obj has a Name instance whose value is @a's. */
static bool has_name(const struct object *obj, const struct object_attr *a)
{
	size_t i;

	for (i = 0; i < obj->attr_count; i++) {
		const struct object_attr *b = &obj->attrs[i];

		if (is_name(b) && b->value_len == a->value_len &&
		    (a->value_len == 0 || memcmp(b->value, a->value, a->value_len) == 0))
			return true;
	}
	return false;
}

/* Adds (@add) or removes the Name index entry of @a for @obj. */
static int index_name(struct store_txn *txn, const struct object *obj, const struct object_attr *a,
		      bool add)
{
	struct key k;
	size_t uid_len = strlen(obj->uid);
	int rc;

	rc = name_prefix(txn->store, &k, obj->tenant, a->value, a->value_len);
	if (rc != 0)
		return rc;
	key_append(&k, obj->uid, uid_len);
	if (add)
		return txn_put(txn, txn->store->names, k.bytes, k.len, "", 0);
	return txn_del(txn, txn->store->names, k.bytes, k.len);
}

int store_object_put(struct store_txn *txn, const struct object *obj)
{
	struct buf record = BUF_INIT;
	struct arena scratch;
	struct object old;
	bool had_old = false;
	struct key k;
	MDB_val v;
	size_t i;
	int rc;

	if (!txn->write)
		return KMIPD_EINVAL;
	if (txn->failed != 0)
		return txn->failed;
	if (strnlen(obj->tenant, sizeof(obj->tenant)) == sizeof(obj->tenant) ||
	    strnlen(obj->uid, sizeof(obj->uid)) == sizeof(obj->uid))
		return KMIPD_EINVAL;
	rc = object_key(&k, obj->tenant, obj->uid);
	if (rc != 0)
		return KMIPD_EINVAL;

	/* The previous record says which Name entries may have to go. It is decoded (copied)
	 * before anything is written: LMDB's pointer would not survive the first write. */
	arena_init(&scratch, 4096, 0);
	rc = txn_get(txn, txn->store->objects, k.bytes, k.len, &v);
	if (rc == 0) {
		MDB_val key = {k.len, k.bytes};

		rc = decode_object(&key, &v, &scratch, &old);
		had_old = rc == 0;
	} else if (rc == KMIPD_ENOT_FOUND) {
		rc = 0;
	}
	if (rc == 0)
		rc = object_encode(obj, &record);
	if (rc == 0)
		rc = txn_put(txn, txn->store->objects, k.bytes, k.len, record.data, record.len);
	for (i = 0; rc == 0 && had_old && i < old.attr_count; i++) {
		if (is_name(&old.attrs[i]) && !has_name(obj, &old.attrs[i]))
			rc = index_name(txn, obj, &old.attrs[i], false);
	}
	/* Every current Name is (re)written, which also repairs a missing entry. */
	for (i = 0; rc == 0 && i < obj->attr_count; i++) {
		if (is_name(&obj->attrs[i]))
			rc = index_name(txn, obj, &obj->attrs[i], true);
	}
	buf_free(&record);
	arena_free(&scratch);
	return rc;
}

struct object_visit {
	struct arena *arena;
	bool reset_between;
	bool first;
	int (*fn)(const struct object *obj, void *arg);
	void *arg;
};

static int visit_object(const MDB_val *k, const MDB_val *v, void *ctx)
{
	struct object_visit *ov = ctx;
	struct object obj;
	int rc;

	if (ov->reset_between && !ov->first)
		arena_reset(ov->arena);
	ov->first = false;
	rc = decode_object(k, v, ov->arena, &obj);
	if (rc != 0)
		return rc;
	return ov->fn(&obj, ov->arg);
}

int store_object_foreach(struct store_txn *txn, const char *tenant, const char *after_uid,
			 struct arena *arena, bool reset_between,
			 int (*fn)(const struct object *obj, void *arg), void *arg)
{
	struct object_visit ov = {arena, reset_between, true, fn, arg};
	struct key prefix, start;
	int rc;

	rc = tenant_prefix(&prefix, tenant);
	if (rc != 0)
		return rc;
	start = prefix;
	if (after_uid != NULL) {
		size_t len = strnlen(after_uid, OBJECT_UID_LEN + 1);

		if (len > OBJECT_UID_LEN)
			return KMIPD_EINVAL;
		key_append(&start, after_uid, len);
	}
	return scan(txn, txn->store->objects, prefix.bytes, prefix.len, start.bytes, start.len,
		    after_uid != NULL, visit_object, &ov);
}

struct name_visit {
	size_t prefix_len;
	int (*fn)(const char *uid, void *arg);
	void *arg;
};

static int visit_name(const MDB_val *k, const MDB_val *v, void *ctx)
{
	struct name_visit *nv = ctx;
	char uid[OBJECT_UID_LEN + 1];
	size_t len = k->mv_size - nv->prefix_len;

	(void)v;
	if (len == 0 || len > OBJECT_UID_LEN)
		return KMIPD_ECORRUPT;
	memcpy(uid, (const char *)k->mv_data + nv->prefix_len, len);
	uid[len] = '\0';
	return nv->fn(uid, nv->arg);
}

int store_name_foreach(struct store_txn *txn, const char *tenant, const uint8_t *value, size_t len,
		       int (*fn)(const char *uid, void *arg), void *arg)
{
	struct name_visit nv = {0, fn, arg};
	struct key prefix;
	int rc;

	if (value == NULL && len > 0)
		return KMIPD_EINVAL;
	rc = name_prefix(txn->store, &prefix, tenant, value, len);
	if (rc != 0)
		return rc;
	nv.prefix_len = prefix.len;
	return scan(txn, txn->store->names, prefix.bytes, prefix.len, prefix.bytes, prefix.len,
		    false, visit_name, &nv);
}

static int visit_count(const MDB_val *k, const MDB_val *v, void *ctx)
{
	(void)k;
	(void)v;
	++*(uint64_t *)ctx;
	return 0;
}

int store_object_count(struct store_txn *txn, const char *tenant, uint64_t *count)
{
	struct key prefix;
	int rc;

	*count = 0;
	rc = tenant_prefix(&prefix, tenant);
	if (rc != 0)
		return rc;
	return scan(txn, txn->store->objects, prefix.bytes, prefix.len, prefix.bytes, prefix.len,
		    false, visit_count, count);
}
