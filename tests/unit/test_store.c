/* The LMDB store: persistence across reopen, the applied index, tenants, objects and their
 * ordering and paging, the Name index, tenant isolation, a full map, snapshot isolation,
 * readers running beside the writer, and Raft snapshots taken and restored (also beside
 * readers). Each test gets a fresh directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/store.h"
#include "slurp.h"

#define MiB ((size_t)1 << 20)
/* A byte of the meta page copy in a checkpoint record (its magic number). */
#define CKP_TEST_META_BYTE 40

struct fixture {
	char dir[64];
	char path[128]; /* the store's directory, inside dir */
	struct store *store;
	struct arena arena;
	char errmsg[256];
	char other_path[128];
	struct store *other; /* a second store, for tests that restore into one */
};

static int open_store(struct fixture *f, size_t map_size)
{
	struct store_config config = {f->path, map_size, false};

	return store_open(&f->store, &config, f->errmsg, sizeof(f->errmsg));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/kmipd-test-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/store", f->dir);
	arena_init(&f->arena, 4096, 0);
	if (open_store(f, 64 * MiB) != 0) {
		print_error("store_open: %s\n", f->errmsg);
		return -1;
	}
	*state = f;
	return 0;
}

static void remove_in(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->store);
	store_close(f->other);
	arena_free(&f->arena);
	remove_in(f->path, "data.mdb");
	remove_in(f->path, "lock.mdb");
	remove_in(f->path, "data.mdb.restore");
	remove_in(f->path, "data.mdb.unflushed");
	remove_in(f->path, "unflushed");
	rmdir(f->path);
	if (f->other_path[0] != '\0') {
		remove_in(f->other_path, "data.mdb");
		remove_in(f->other_path, "lock.mdb");
		remove_in(f->other_path, "data.mdb.restore");
		rmdir(f->other_path);
	}
	remove_in(f->dir, "file");
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A small vocabulary: one write transaction per step unless a test says otherwise. */
#define BEGIN_WRITE(t) assert_int_equal(store_txn_begin(f->store, true, &(t)), 0)
#define BEGIN_READ(t)  assert_int_equal(store_txn_begin(f->store, false, &(t)), 0)
#define COMMIT(t)      assert_int_equal(store_txn_commit(t), 0)

static void make_uid(char *uid, unsigned n)
{
	snprintf(uid, OBJECT_UID_LEN + 1, "%08x-0000-4000-8000-%012x", n * 2654435761u, n);
}

/* Name values as the operation layer would hand them over (TTLV bytes, opaque here). */
static size_t name_value(uint8_t *out, const char *text)
{
	size_t len = strlen(text);

	memcpy(out, "\x42\x00\x0b\x01\x00\x00\x00", 7);
	out[7] = (uint8_t)len;
	memcpy(out + 8, text, len);
	return 8 + len;
}

static void init_object(struct object *obj, const char *tenant, const char *uid)
{
	memset(obj, 0, sizeof(*obj));
	strcpy(obj->tenant, tenant);
	strcpy(obj->uid, uid);
	obj->object_type = 2;
	obj->state = 1;
	obj->initial_date = 1700000000;
}

static void add_name(struct fixture *f, struct object *obj, uint32_t index, const char *text)
{
	uint8_t value[64];
	size_t len = name_value(value, text);

	assert_int_equal(object_attr_add(obj, &f->arena, "Name", index, value, len), 0);
}

/* Puts a plain object in its own transaction. */
static void put_plain(struct fixture *f, const char *tenant, const char *uid)
{
	struct store_txn *t;
	struct object obj;

	init_object(&obj, tenant, uid);
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	COMMIT(t);
}

static uint64_t count_in(struct store *store, const char *tenant)
{
	struct store_txn *t;
	uint64_t n;

	assert_int_equal(store_txn_begin(store, false, &t), 0);
	assert_int_equal(store_object_count(t, tenant, &n), 0);
	COMMIT(t);
	return n;
}

static uint64_t count(struct fixture *f, const char *tenant)
{
	return count_in(f->store, tenant);
}

/* ---- Opening ---- */

static void open_creates_private_directory(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
}

static void reopen_keeps_everything(void **state)
{
	struct fixture *f = *state;
	struct store_tenant tenant = {"acme", "local", "", (const uint8_t *)"kek", 3, 17};
	struct store_tenant back;
	struct store_txn *t;
	struct object obj;
	uint64_t index;

	init_object(&obj, "acme", "11111111-2222-3333-4444-555555555555");
	add_name(f, &obj, 0, "persistent");
	BEGIN_WRITE(t);
	assert_int_equal(store_tenant_put(t, &tenant), 0);
	assert_int_equal(store_object_put(t, &obj), 0);
	assert_int_equal(store_set_applied_index(t, 99), 0);
	COMMIT(t);

	store_close(f->store);
	f->store = NULL;
	assert_int_equal(open_store(f, 64 * MiB), 0);

	BEGIN_READ(t);
	assert_int_equal(store_applied_index(t, &index), 0);
	assert_true(index == 99);
	assert_int_equal(store_tenant_get(t, "acme", &f->arena, &back), 0);
	assert_int_equal(back.created, 17);
	assert_int_equal(store_object_get(t, "acme", obj.uid, &f->arena, &obj), 0);
	assert_int_equal(obj.attr_count, 1);
	store_txn_abort(t);
}

static void open_refuses_newer_format(void **state)
{
	struct fixture *f = *state;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {6, "format"}, v = {4, "\x02\x00\x00\x00"};

	store_close(f->store);
	f->store = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, f->path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	assert_int_equal(open_store(f, 64 * MiB), KMIPD_EUNSUPPORTED);
	assert_non_null(strstr(f->errmsg, f->path));
	assert_non_null(strstr(f->errmsg, "format 2"));
}

static void open_errors_name_the_path(void **state)
{
	struct fixture *f = *state;
	char file[128];
	struct store_config config = {file, 0, true};
	struct store *s = NULL;
	FILE *fp;

	snprintf(file, sizeof(file), "%s/file", f->dir);
	fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_not_equal(store_open(&s, &config, f->errmsg, sizeof(f->errmsg)), 0);
	assert_null(s);
	assert_non_null(strstr(f->errmsg, "opening LMDB environment in "));
	assert_non_null(strstr(f->errmsg, file));

	config.dir = "/proc/kmipd-no-such-dir/store";
	assert_true(store_open(&s, &config, f->errmsg, sizeof(f->errmsg)) < 0);
	assert_non_null(strstr(f->errmsg, "creating directory /proc/kmipd-no-such-dir/store: "));
}

/* The default map is 64 GiB of address space, not of disk. */
static void default_map_size_opens(void **state)
{
	struct fixture *f = *state;
	const char *preload;

	/* Valgrind will not map that much address space (mmap fails with EINVAL). */
	preload = getenv("LD_PRELOAD");
	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		skip();
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(open_store(f, 0), 0);
	put_plain(f, "t", "00000000-0000-0000-0000-000000000001");
	assert_true(count(f, "t") == 1);
}

/* ---- Applied index ---- */

static void applied_index(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t;
	uint64_t index;

	BEGIN_READ(t);
	assert_int_equal(store_applied_index(t, &index), 0);
	assert_true(index == 0);
	assert_int_equal(store_set_applied_index(t, 1), KMIPD_EINVAL); /* read-only */
	store_txn_abort(t);

	BEGIN_WRITE(t);
	assert_int_equal(store_set_applied_index(t, 42), 0);
	assert_int_equal(store_applied_index(t, &index), 0); /* sees its own write */
	assert_true(index == 42);
	COMMIT(t);

	BEGIN_WRITE(t);
	assert_int_equal(store_set_applied_index(t, UINT64_MAX), 0);
	store_txn_abort(t);

	BEGIN_READ(t);
	assert_int_equal(store_applied_index(t, &index), 0);
	assert_true(index == 42);
	COMMIT(t);
}

/* ---- Tenants ---- */

static int collect_tenant(const struct store_tenant *tenant, void *arg)
{
	char *names = arg;

	strcat(names, tenant->name);
	strcat(names, ",");
	return strcmp(tenant->name, "stop") == 0 ? 7 : 0;
}

static void tenants(void **state)
{
	struct fixture *f = *state;
	static const uint8_t kek[] = {0, 1, 2, 0xff, 0};
	struct store_tenant a = {"zeta", "keyprotect", "crn:v1:root-key", kek, sizeof(kek), 1};
	struct store_tenant b = {"alpha", "hpcs", "hpcs-key-1", kek, 2, 2};
	struct store_tenant c = {"mid.dle_1", "local", NULL, NULL, 0, -5};
	struct store_tenant back;
	struct store_txn *t;
	char names[128] = "";

	BEGIN_WRITE(t);
	assert_int_equal(store_tenant_put(t, &a), 0);
	assert_int_equal(store_tenant_put(t, &b), 0);
	assert_int_equal(store_tenant_put(t, &c), 0);
	COMMIT(t);

	BEGIN_READ(t);
	assert_int_equal(store_tenant_get(t, "zeta", &f->arena, &back), 0);
	assert_string_equal(back.name, "zeta");
	assert_string_equal(back.provider, "keyprotect");
	assert_string_equal(back.root_key_id, "crn:v1:root-key");
	assert_int_equal(back.wrapped_kek_len, sizeof(kek));
	assert_memory_equal(back.wrapped_kek, kek, sizeof(kek));
	assert_int_equal(back.created, 1);
	assert_int_equal(store_tenant_get(t, "mid.dle_1", &f->arena, &back), 0);
	assert_string_equal(back.root_key_id, "");
	assert_int_equal(back.wrapped_kek_len, 0);
	assert_int_equal(back.created, -5);
	assert_int_equal(store_tenant_get(t, "zet", &f->arena, &back), KMIPD_ENOT_FOUND);
	assert_int_equal(store_tenant_get(t, "", &f->arena, &back), KMIPD_ENOT_FOUND);
	assert_int_equal(store_tenant_foreach(t, &f->arena, collect_tenant, names), 0);
	assert_string_equal(names, "alpha,mid.dle_1,zeta,");
	COMMIT(t);

	/* Replace one, and stop a walk early. */
	a.provider[0] = 'K';
	strcpy(b.name, "stop");
	BEGIN_WRITE(t);
	assert_int_equal(store_tenant_put(t, &a), 0);
	assert_int_equal(store_tenant_put(t, &b), 0);
	COMMIT(t);
	BEGIN_READ(t);
	assert_int_equal(store_tenant_get(t, "zeta", &f->arena, &back), 0);
	assert_string_equal(back.provider, "Keyprotect");
	names[0] = '\0';
	assert_int_equal(store_tenant_foreach(t, &f->arena, collect_tenant, names), 7);
	assert_string_equal(names, "alpha,mid.dle_1,stop,");
	COMMIT(t);
}

static void tenant_put_refuses_bad_records(void **state)
{
	struct fixture *f = *state;
	struct store_tenant bad = {"", "local", "", NULL, 0, 0};
	struct store_txn *t;

	BEGIN_WRITE(t);
	assert_int_equal(store_tenant_put(t, &bad), KMIPD_EINVAL);
	strcpy(bad.name, "ok");
	memset(bad.provider, 'p', sizeof(bad.provider)); /* unterminated */
	assert_int_equal(store_tenant_put(t, &bad), KMIPD_EINVAL);
	strcpy(bad.provider, "local");
	bad.wrapped_kek_len = 3; /* without bytes */
	assert_int_equal(store_tenant_put(t, &bad), KMIPD_EINVAL);
	COMMIT(t);
}

/* ---- Objects ---- */

static void object_put_get(void **state)
{
	struct fixture *f = *state;
	static const uint8_t sealed[] = "sealed material";
	const char *uid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
	struct store_txn *t;
	struct object obj, back;

	init_object(&obj, "acme", uid);
	obj.sealed = sealed;
	obj.sealed_len = sizeof(sealed);
	obj.revocation_message = "why";
	add_name(f, &obj, 0, "one");
	add_name(f, &obj, 1, "two");
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	COMMIT(t);

	BEGIN_READ(t);
	assert_int_equal(store_object_get(t, "acme", uid, &f->arena, &back), 0);
	assert_string_equal(back.uid, uid);
	assert_string_equal(back.tenant, "acme");
	assert_int_equal(back.sealed_len, sizeof(sealed));
	assert_memory_equal(back.sealed, sealed, sizeof(sealed));
	assert_string_equal(back.revocation_message, "why");
	assert_int_equal(back.attr_count, 2);
	assert_int_equal(back.attrs[1].index, 1);

	/* Another tenant's object is simply not there, whatever the uid. */
	assert_int_equal(store_object_get(t, "acme2", uid, &f->arena, &back), KMIPD_ENOT_FOUND);
	assert_int_equal(store_object_get(t, "acm", uid, &f->arena, &back), KMIPD_ENOT_FOUND);
	assert_int_equal(store_object_get(t, "acme", "3f2504e0", &f->arena, &back),
			 KMIPD_ENOT_FOUND);
	assert_int_equal(store_object_get(t, "acme", "", &f->arena, &back), KMIPD_ENOT_FOUND);
	assert_int_equal(store_object_get(t, "acme", "x-much-longer-than-any-uid-could-ever-be",
					  &f->arena, &back),
			 KMIPD_ENOT_FOUND);
	COMMIT(t);
}

static void object_put_refuses_bad_objects(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t;
	struct object obj;

	init_object(&obj, "acme", "");
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), KMIPD_EINVAL);
	init_object(&obj, "", "u1");
	assert_int_equal(store_object_put(t, &obj), KMIPD_EINVAL);
	COMMIT(t);

	init_object(&obj, "acme", "u1");
	BEGIN_READ(t);
	assert_int_equal(store_object_put(t, &obj), KMIPD_EINVAL); /* read-only */
	COMMIT(t);
}

struct walk {
	char uids[64][OBJECT_UID_LEN + 1];
	size_t n;
	size_t stop_at; /* return 5 once this many were seen (0: never) */
	size_t arena_used_max;
	struct arena *arena;
};

static int collect_object(const struct object *obj, void *arg)
{
	struct walk *w = arg;

	assert_true(w->n < 64);
	strcpy(w->uids[w->n++], obj->uid);
	if (w->arena != NULL && w->arena->used > w->arena_used_max)
		w->arena_used_max = w->arena->used;
	return w->stop_at != 0 && w->n == w->stop_at ? 5 : 0;
}

static int compare_uids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void foreach_order_and_paging(void **state)
{
	struct fixture *f = *state;
	char sorted[20][OBJECT_UID_LEN + 1];
	struct store_txn *t;
	struct walk w;
	char between[OBJECT_UID_LEN + 1];
	unsigned i;

	for (i = 0; i < 20; i++)
		make_uid(sorted[i], i + 1);
	for (i = 0; i < 20; i++)
		put_plain(f, "acme", sorted[(i * 7) % 20]); /* out of order */
	put_plain(f, "acme-other", sorted[0]);
	put_plain(f, "acm", sorted[1]);
	qsort(sorted, 20, sizeof(sorted[0]), compare_uids);

	BEGIN_READ(t);
	memset(&w, 0, sizeof(w));
	assert_int_equal(
		store_object_foreach(t, "acme", NULL, &f->arena, false, collect_object, &w), 0);
	assert_int_equal(w.n, 20);
	for (i = 0; i < 20; i++)
		assert_string_equal(w.uids[i], sorted[i]);

	/* Paging: strictly after the given uid. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(
		store_object_foreach(t, "acme", sorted[4], &f->arena, false, collect_object, &w),
		0);
	assert_int_equal(w.n, 15);
	assert_string_equal(w.uids[0], sorted[5]);

	/* A page of three: the callback's value comes back. */
	memset(&w, 0, sizeof(w));
	w.stop_at = 3;
	assert_int_equal(
		store_object_foreach(t, "acme", sorted[9], &f->arena, false, collect_object, &w),
		5);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.uids[2], sorted[12]);

	/* After a uid that is not stored: from the next one up. */
	strcpy(between, sorted[6]);
	between[OBJECT_UID_LEN - 1] = '\0'; /* a prefix sorts just before sorted[6] */
	memset(&w, 0, sizeof(w));
	assert_int_equal(
		store_object_foreach(t, "acme", between, &f->arena, false, collect_object, &w), 0);
	assert_string_equal(w.uids[0], sorted[6]);

	/* After the last: nothing; an empty tenant: nothing. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(
		store_object_foreach(t, "acme", sorted[19], &f->arena, false, collect_object, &w),
		0);
	assert_int_equal(w.n, 0);
	assert_int_equal(
		store_object_foreach(t, "nobody", NULL, &f->arena, false, collect_object, &w), 0);
	assert_int_equal(w.n, 0);

	/* With reset_between the arena holds one object at a time. */
	arena_reset(&f->arena);
	memset(&w, 0, sizeof(w));
	w.arena = &f->arena;
	assert_int_equal(store_object_foreach(t, "acme", NULL, &f->arena, true, collect_object, &w),
			 0);
	assert_int_equal(w.n, 20);
	assert_true(w.arena_used_max < 256);
	COMMIT(t);

	assert_true(count(f, "acme") == 20);
	assert_true(count(f, "acme-other") == 1);
	assert_true(count(f, "acm") == 1);
	assert_true(count(f, "ac") == 0);
}

struct names {
	char uids[8][OBJECT_UID_LEN + 1];
	size_t n;
};

static int collect_name(const char *uid, void *arg)
{
	struct names *names = arg;

	assert_true(names->n < 8);
	strcpy(names->uids[names->n++], uid);
	return 0;
}

/* The uids of @tenant's objects named @text in @store, in order, comma-separated in @out. */
static const char *lookup_in(struct store *store, const char *tenant, const char *text, char *out)
{
	struct store_txn *t;
	struct names names = {.n = 0};
	uint8_t value[64];
	size_t len = name_value(value, text), i;

	assert_int_equal(store_txn_begin(store, false, &t), 0);
	assert_int_equal(store_name_foreach(t, tenant, value, len, collect_name, &names), 0);
	COMMIT(t);
	out[0] = '\0';
	for (i = 0; i < names.n; i++) {
		strcat(out, names.uids[i]);
		strcat(out, i + 1 < names.n ? "," : "");
	}
	return out;
}

static const char *lookup(struct fixture *f, const char *tenant, const char *text, char *out)
{
	return lookup_in(f->store, tenant, text, out);
}

static void name_index_follows_renames(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t;
	struct object obj;
	char out[256];

	init_object(&obj, "acme", "u1");
	add_name(f, &obj, 0, "A");
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	COMMIT(t);
	assert_string_equal(lookup(f, "acme", "A", out), "u1");
	assert_string_equal(lookup(f, "acme", "B", out), "");

	/* Rename: the old name no longer finds it. */
	assert_int_equal(object_attr_remove(&obj, "Name", 0), 0);
	add_name(f, &obj, 0, "B");
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	COMMIT(t);
	assert_string_equal(lookup(f, "acme", "A", out), "");
	assert_string_equal(lookup(f, "acme", "B", out), "u1");

	/* Two names, then one removed; a second object shares a name. */
	add_name(f, &obj, 1, "C");
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	COMMIT(t);
	assert_string_equal(lookup(f, "acme", "B", out), "u1");
	assert_string_equal(lookup(f, "acme", "C", out), "u1");
	assert_int_equal(object_attr_remove(&obj, "Name", 0), 0);
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	init_object(&obj, "acme", "u0");
	add_name(f, &obj, 0, "C");
	assert_int_equal(store_object_put(t, &obj), 0);
	/* The same name in another tenant stays there. */
	init_object(&obj, "acme2", "u2");
	add_name(f, &obj, 0, "C");
	assert_int_equal(store_object_put(t, &obj), 0);
	COMMIT(t);
	assert_string_equal(lookup(f, "acme", "B", out), "");
	assert_string_equal(lookup(f, "acme", "C", out), "u0,u1");
	assert_string_equal(lookup(f, "acme2", "C", out), "u2");
	assert_string_equal(lookup(f, "acm", "C", out), "");

	/* Non-Name attributes are not indexed, even with the same value. */
	init_object(&obj, "acme", "u3");
	{
		uint8_t value[64];
		size_t len = name_value(value, "D");

		assert_int_equal(object_attr_add(&obj, &f->arena, "name", 0, value, len), 0);
		assert_int_equal(
			object_attr_add(&obj, &f->arena, "Alternative Name", 0, value, len), 0);
	}
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	COMMIT(t);
	assert_string_equal(lookup(f, "acme", "D", out), "");
}

/* An aborted write leaves neither the object nor its index entries behind. */
static void aborted_write_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t;
	struct object obj;
	char out[64];

	init_object(&obj, "acme", "u1");
	add_name(f, &obj, 0, "A");
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	store_txn_abort(t);
	assert_true(count(f, "acme") == 0);
	assert_string_equal(lookup(f, "acme", "A", out), "");
}

/* Reads or replaces one record with LMDB directly; the store must be closed. @val NULL:
 * read into @out (at most *@len bytes, *@len set to the record's size). */
static void raw_record(struct fixture *f, const char *db, const char *key, size_t key_len,
		       const void *val, size_t val_len, void *out, size_t *len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {key_len, (void *)key}, v = {val_len, (void *)val};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 64 * MiB), 0);
	assert_int_equal(mdb_env_open(env, f->path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	if (val != NULL) {
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	} else {
		assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
		assert_true(v.mv_size <= *len);
		memcpy(out, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* A damaged record read back is reported as corruption, whatever the damage. */
static void damaged_records_are_corrupt(void **state)
{
	struct fixture *f = *state;
	struct store_tenant tenant = {"acme", "hpcs", "root-1", (const uint8_t *)"wrapped", 7, 9};
	static const char object_key[] = "acme\0u1";
	uint8_t tenant_record[256], object_record[256];
	size_t tenant_len = sizeof(tenant_record), object_len = sizeof(object_record), cut;
	struct store_txn *t;
	struct store_tenant back;
	struct object obj;

	init_object(&obj, "acme", "u1");
	add_name(f, &obj, 0, "A");
	BEGIN_WRITE(t);
	assert_int_equal(store_tenant_put(t, &tenant), 0);
	assert_int_equal(store_object_put(t, &obj), 0);
	COMMIT(t);
	store_close(f->store);
	f->store = NULL;
	raw_record(f, "tenants", "acme", 4, NULL, 0, tenant_record, &tenant_len);
	raw_record(f, "objects", object_key, sizeof(object_key) - 1, NULL, 0, object_record,
		   &object_len);

	/* Every cut of the tenant record (the object decoder has its own tests). */
	for (cut = 1; cut < tenant_len; cut++) {
		raw_record(f, "tenants", "acme", 4, tenant_record, cut, NULL, NULL);
		assert_int_equal(open_store(f, 64 * MiB), 0);
		BEGIN_READ(t);
		if (store_tenant_get(t, "acme", &f->arena, &back) != KMIPD_ECORRUPT)
			fail_msg("a tenant record cut to %zu bytes was accepted", cut);
		COMMIT(t);
		store_close(f->store);
		f->store = NULL;
	}

	/* A record stored under another tenant's key, and a cut object record. */
	raw_record(f, "tenants", "acmf", 4, tenant_record, tenant_len, NULL, NULL);
	raw_record(f, "objects", object_key, sizeof(object_key) - 1, object_record, object_len - 1,
		   NULL, NULL);
	assert_int_equal(open_store(f, 64 * MiB), 0);
	BEGIN_READ(t);
	assert_int_equal(store_tenant_get(t, "acmf", &f->arena, &back), KMIPD_ECORRUPT);
	assert_int_equal(store_object_get(t, "acme", "u1", &f->arena, &obj), KMIPD_ECORRUPT);
	COMMIT(t);
	/* Replacing a damaged object is refused too: its Name entries cannot be known. */
	init_object(&obj, "acme", "u1");
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), KMIPD_ECORRUPT);
	store_txn_abort(t);
}

/* ---- A full map ---- */

static void map_full(void **state)
{
	struct fixture *f = *state;
	static uint8_t big[64 * 1024];
	char uid[OBJECT_UID_LEN + 1];
	struct store_txn *t;
	struct object obj;
	unsigned committed = 0, i;
	int rc = 0;

	store_close(f->store);
	f->store = NULL;
	remove_in(f->path, "data.mdb");
	remove_in(f->path, "lock.mdb");
	assert_int_equal(open_store(f, 1 * MiB), 0);

	memset(big, 0x5a, sizeof(big));
	while (committed < 100) {
		make_uid(uid, committed);
		init_object(&obj, "acme", uid);
		assert_int_equal(object_attr_add(&obj, &f->arena, "x-Big", 0, big, sizeof(big)), 0);
		BEGIN_WRITE(t);
		rc = store_object_put(t, &obj);
		if (rc == 0)
			rc = store_set_applied_index(t, committed + 1);
		if (rc != 0) {
			/* The transaction is over: later calls say so, commit writes nothing. */
			assert_int_equal(store_set_applied_index(t, 1000), rc);
			assert_int_equal(store_txn_commit(t), rc);
			break;
		}
		rc = store_txn_commit(t);
		if (rc != 0)
			break;
		committed++;
		arena_reset(&f->arena);
	}
	assert_int_equal(rc, KMIPD_ENO_SPACE);
	assert_true(committed > 0);

	/* Everything committed before is still there. */
	BEGIN_READ(t);
	for (i = 0; i < committed; i++) {
		make_uid(uid, i);
		assert_int_equal(store_object_get(t, "acme", uid, &f->arena, &obj), 0);
		assert_int_equal(obj.attrs[0].value_len, sizeof(big));
		arena_reset(&f->arena);
	}
	make_uid(uid, committed);
	assert_int_equal(store_object_get(t, "acme", uid, &f->arena, &obj), KMIPD_ENOT_FOUND);
	COMMIT(t);
	assert_true(count(f, "acme") == committed);

	/* A small write still fits: the failed transaction's pages were never committed. */
	BEGIN_WRITE(t);
	init_object(&obj, "small", "u1");
	assert_int_equal(store_object_put(t, &obj), 0);
	assert_int_equal(store_set_applied_index(t, 12345), 0);
	COMMIT(t);
	assert_true(count(f, "small") == 1);
}

/* ---- Concurrency ---- */

static void read_transaction_sees_a_snapshot(void **state)
{
	struct fixture *f = *state;
	struct store_txn *before, *w, *after;
	struct object obj;
	uint64_t n, index;

	put_plain(f, "acme", "u1");
	BEGIN_READ(before);

	init_object(&obj, "acme", "u2");
	BEGIN_WRITE(w);
	assert_int_equal(store_object_put(w, &obj), 0);
	assert_int_equal(store_set_applied_index(w, 7), 0);
	COMMIT(w);

	assert_int_equal(store_object_get(before, "acme", "u2", &f->arena, &obj), KMIPD_ENOT_FOUND);
	assert_int_equal(store_object_count(before, "acme", &n), 0);
	assert_true(n == 1);
	assert_int_equal(store_applied_index(before, &index), 0);
	assert_true(index == 0);

	BEGIN_READ(after);
	assert_int_equal(store_object_get(after, "acme", "u2", &f->arena, &obj), 0);
	assert_int_equal(store_applied_index(after, &index), 0);
	assert_true(index == 7);
	store_txn_abort(after);
	store_txn_abort(before);
}

/* Reader threads report through counters: cmocka's assertions belong to the main thread. */
struct reader_arg {
	struct store *store;
	atomic_bool *writer_done; /* readers run until the writer is done */
	int rounds;
	int errors;
	uint64_t last_count;
};

static int count_visit(const struct object *obj, void *arg)
{
	(void)obj;
	++*(uint64_t *)arg;
	return 0;
}

static void *reader_main(void *p)
{
	struct reader_arg *r = p;
	struct arena arena;
	int i;

	arena_init(&arena, 4096, 0);
	for (i = 0; !atomic_load(r->writer_done) || i < 10; i++) {
		struct store_txn *t;
		struct object obj;
		uint64_t n = 0, walked = 0;

		if (store_txn_begin(r->store, false, &t) != 0) {
			r->errors++;
			continue;
		}
		if (store_object_get(t, "acme", "seed", &arena, &obj) != 0)
			r->errors++;
		if (store_object_count(t, "acme", &n) != 0 || n < r->last_count)
			r->errors++; /* snapshots only move forward */
		if (store_object_foreach(t, "acme", NULL, &arena, true, count_visit, &walked) !=
			    0 ||
		    walked != n)
			r->errors++; /* one transaction, one snapshot */
		r->last_count = n;
		store_txn_abort(t);
		arena_reset(&arena);
	}
	r->rounds = i;
	arena_free(&arena);
	return NULL;
}

static void readers_beside_the_writer(void **state)
{
	struct fixture *f = *state;
	atomic_bool writer_done = false;
	struct reader_arg args[2];
	pthread_t threads[2];
	char uid[OBJECT_UID_LEN + 1];
	unsigned i;

	put_plain(f, "acme", "seed");
	for (i = 0; i < 2; i++) {
		args[i] = (struct reader_arg){f->store, &writer_done, 0, 0, 0};
		assert_int_equal(pthread_create(&threads[i], NULL, reader_main, &args[i]), 0);
	}
	for (i = 0; i < 200; i++) {
		make_uid(uid, i);
		put_plain(f, "acme", uid);
	}
	atomic_store(&writer_done, true);
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(args[i].errors, 0);
		assert_true(args[i].rounds >= 10);
	}
	assert_true(count(f, "acme") == 201);
}

/* ---- Raft snapshots ---- */

static void open_other(struct fixture *f)
{
	struct store_config config = {f->other_path, 64 * MiB, false};

	snprintf(f->other_path, sizeof(f->other_path), "%s/other", f->dir);
	assert_int_equal(store_open(&f->other, &config, f->errmsg, sizeof(f->errmsg)), 0);
}

static uint64_t applied_in(struct store *store)
{
	struct store_txn *t;
	uint64_t index;

	assert_int_equal(store_txn_begin(store, false, &t), 0);
	assert_int_equal(store_applied_index(t, &index), 0);
	COMMIT(t);
	return index;
}

/* The names of @store's tenants, comma-terminated, in @out (128 bytes). */
static const char *tenants_in(struct fixture *f, struct store *store, char *out)
{
	struct store_txn *t;

	out[0] = '\0';
	assert_int_equal(store_txn_begin(store, false, &t), 0);
	assert_int_equal(store_tenant_foreach(t, &f->arena, collect_tenant, out), 0);
	COMMIT(t);
	return out;
}

/* Puts tenants, objects (one named @name) and @index into @store in one transaction. */
static void fill(struct fixture *f, struct store *store, const char *const *tenants,
		 unsigned objects_each, const char *name, uint64_t index)
{
	char uid[OBJECT_UID_LEN + 1];
	struct store_txn *t;
	struct object obj;
	unsigned i, j;

	assert_int_equal(store_txn_begin(store, true, &t), 0);
	for (i = 0; tenants[i] != NULL; i++) {
		struct store_tenant tenant = {"", "local", "", (const uint8_t *)"kek", 3, i};

		strcpy(tenant.name, tenants[i]);
		assert_int_equal(store_tenant_put(t, &tenant), 0);
		for (j = 0; j < objects_each; j++) {
			make_uid(uid, j + 1);
			init_object(&obj, tenants[i], uid);
			if (j == 0)
				add_name(f, &obj, 0, name);
			assert_int_equal(store_object_put(t, &obj), 0);
		}
	}
	assert_int_equal(store_set_applied_index(t, index), 0);
	COMMIT(t);
	arena_reset(&f->arena);
}

static void take_snapshot(struct store *store, struct buf *snap, uint64_t expect_index)
{
	uint64_t index = 12345, from_header = 54321;

	assert_int_equal(store_snapshot(store, snap, &index), 0);
	assert_true(index == expect_index);
	assert_true(snap->len >= 32 + 4096);
	assert_int_equal(snap->len % 8, 0);
	assert_memory_equal(snap->data, "KMIPDSNP", 8);
	assert_int_equal(store_snapshot_index(snap->data, snap->len, &from_header), 0);
	assert_true(from_header == expect_index);
}

static void snapshot_replaces_another_store(void **state)
{
	struct fixture *f = *state;
	static const char *const mine[] = {"acme", "beta", NULL};
	static const char *const theirs[] = {"zulu", "acme2", NULL};
	struct buf snap = BUF_INIT;
	char uid[OBJECT_UID_LEN + 1], out[256];
	struct store_txn *t;
	struct store_tenant tenant;
	struct object obj;

	fill(f, f->store, mine, 3, "A", 42);
	open_other(f);
	fill(f, f->other, theirs, 5, "A", 77);
	put_plain(f, "acme", "extra"); /* a commit without an index is in the image too */
	take_snapshot(f->store, &snap, 42);

	assert_int_equal(store_restore(f->other, snap.data, snap.len, f->errmsg, sizeof(f->errmsg)),
			 0);
	assert_string_equal(f->errmsg, "");
	assert_true(applied_in(f->other) == 42);
	assert_string_equal(tenants_in(f, f->other, out), "acme,beta,");
	assert_true(count_in(f->other, "acme") == 4);
	assert_true(count_in(f->other, "beta") == 3);
	assert_true(count_in(f->other, "zulu") == 0);
	assert_true(count_in(f->other, "acme2") == 0);
	make_uid(uid, 1);
	assert_string_equal(lookup_in(f->other, "acme", "A", out), uid);
	assert_string_equal(lookup_in(f->other, "zulu", "A", out), "");
	assert_int_equal(store_txn_begin(f->other, false, &t), 0);
	assert_int_equal(store_tenant_get(t, "beta", &f->arena, &tenant), 0);
	assert_int_equal(tenant.created, 1);
	assert_memory_equal(tenant.wrapped_kek, "kek", 3);
	assert_int_equal(store_object_get(t, "acme", uid, &f->arena, &obj), 0);
	assert_int_equal(obj.attr_count, 1);
	assert_int_equal(store_object_get(t, "zulu", uid, &f->arena, &obj), KMIPD_ENOT_FOUND);
	COMMIT(t);

	/* The restored store takes writes and keeps everything across a reopen; the copy it
	 * was restored from is gone. */
	put_plain(f, "acme", "x"); /* into the first store: the second must not see it */
	assert_int_equal(store_txn_begin(f->other, true, &t), 0);
	init_object(&obj, "beta", "new");
	assert_int_equal(store_object_put(t, &obj), 0);
	assert_int_equal(store_set_applied_index(t, 43), 0);
	COMMIT(t);
	store_close(f->other);
	f->other = NULL;
	open_other(f);
	assert_true(applied_in(f->other) == 43);
	assert_true(count_in(f->other, "beta") == 4);
	assert_true(count_in(f->other, "acme") == 4);
	snprintf(out, sizeof(out), "%s/data.mdb.restore", f->other_path);
	assert_int_equal(access(out, F_OK), -1);

	/* The snapshotted store itself is untouched. */
	assert_true(applied_in(f->store) == 42);
	assert_true(count(f, "acme") == 5);
	buf_free(&snap);
}

/* Restores @bad (@len bytes) into f->other, which must refuse with @expect and keep its
 * contents (tenant "zulu", index 77). */
static void refused(struct fixture *f, const uint8_t *bad, size_t len, int expect)
{
	char out[128];

	if (store_restore(f->other, bad, len, f->errmsg, sizeof(f->errmsg)) != expect)
		fail_msg("restoring %zu bytes did not return %d: %s", len, expect, f->errmsg);
	assert_true(f->errmsg[0] != '\0');
	assert_true(applied_in(f->other) == 77);
	assert_string_equal(tenants_in(f, f->other, out), "zulu,");
	assert_true(count_in(f->other, "zulu") == 2);
	snprintf(out, sizeof(out), "%s/data.mdb.restore", f->other_path);
	assert_int_equal(access(out, F_OK), -1);
}

static void malformed_snapshots_change_nothing(void **state)
{
	struct fixture *f = *state;
	static const char *const mine[] = {"acme", NULL};
	static const char *const theirs[] = {"zulu", NULL};
	static const struct {
		size_t offset;
		uint8_t value;
	} patches[] = {
		{0, 'k'},   /* magic */
		{7, 0},	    /* magic */
		{8, 2},	    /* a newer version */
		{8, 0},	    /* version 0 */
		{11, 1},    /* version 1 << 24 */
		{12, 1},    /* reserved */
		{24, 8},    /* image length: one word longer than it is */
		{31, 0x80}, /* image length: huge */
	};
	struct buf snap = BUF_INIT;
	uint8_t *bad;
	uint64_t index;
	size_t i, image_len, cuts[] = {0, 1, 8, 31, 32, 40, 4096};

	fill(f, f->store, mine, 2, "A", 5);
	open_other(f);
	fill(f, f->other, theirs, 2, "A", 77);
	take_snapshot(f->store, &snap, 5);
	bad = malloc(snap.len + 8);
	assert_non_null(bad);

	/* The header, field by field. */
	for (i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
		memcpy(bad, snap.data, snap.len);
		bad[patches[i].offset] = patches[i].value;
		if (store_snapshot_index(bad, snap.len, &index) != KMIPD_EMALFORMED)
			fail_msg("patch %zu was accepted", i);
		refused(f, bad, snap.len, KMIPD_EMALFORMED);
	}
	/* Truncated (including to nothing), and with bytes appended. */
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		assert_int_equal(store_snapshot_index(snap.data, cuts[i], &index),
				 KMIPD_EMALFORMED);
		refused(f, snap.data, cuts[i], KMIPD_EMALFORMED);
	}
	assert_int_equal(store_snapshot_index(snap.data, snap.len - 8, &index), KMIPD_EMALFORMED);
	refused(f, snap.data, snap.len - 8, KMIPD_EMALFORMED);
	memcpy(bad, snap.data, snap.len);
	memset(bad + snap.len, 0, 8);
	assert_int_equal(store_snapshot_index(bad, snap.len + 8, &index), KMIPD_EMALFORMED);
	refused(f, bad, snap.len + 8, KMIPD_EMALFORMED);
	assert_int_equal(store_snapshot_index(NULL, 0, &index), KMIPD_EMALFORMED);
	refused(f, NULL, 0, KMIPD_EMALFORMED);

	/* A sound header on an image that is not a store, or is not at the header's index. */
	memcpy(bad, snap.data, snap.len);
	memset(bad + 32, 0x5a, snap.len - 32);
	assert_int_equal(store_snapshot_index(bad, snap.len, &index), 0);
	refused(f, bad, snap.len, KMIPD_EMALFORMED);
	assert_non_null(strstr(f->errmsg, "not a kmipd store"));
	memcpy(bad, snap.data, snap.len);
	bad[16] = 6;
	refused(f, bad, snap.len, KMIPD_EMALFORMED);
	assert_non_null(strstr(f->errmsg, "applied index 6"));
	/* An image cut short, under a header that agrees with it. */
	image_len = snap.len - 32 - 4096;
	memcpy(bad, snap.data, snap.len);
	bad[24] = (uint8_t)image_len;
	bad[25] = (uint8_t)(image_len >> 8);
	bad[26] = (uint8_t)(image_len >> 16);
	assert_int_equal(store_snapshot_index(bad, snap.len - 4096, &index), 0);
	refused(f, bad, snap.len - 4096, KMIPD_EMALFORMED);
	assert_non_null(strstr(f->errmsg, "cut short"));

	/* The original is still good. */
	assert_int_equal(store_restore(f->other, snap.data, snap.len, f->errmsg, sizeof(f->errmsg)),
			 0);
	assert_true(applied_in(f->other) == 5);
	assert_true(count_in(f->other, "acme") == 2);
	free(bad);
	buf_free(&snap);
}

static void empty_store_snapshots_and_restores(void **state)
{
	struct fixture *f = *state;
	static const char *const theirs[] = {"zulu", NULL};
	struct buf snap = BUF_INIT;
	char out[128];

	take_snapshot(f->store, &snap, 0);
	open_other(f);
	fill(f, f->other, theirs, 2, "A", 77);
	assert_int_equal(store_restore(f->other, snap.data, snap.len, f->errmsg, sizeof(f->errmsg)),
			 0);
	assert_true(applied_in(f->other) == 0);
	assert_string_equal(tenants_in(f, f->other, out), "");
	assert_true(count_in(f->other, "zulu") == 0);
	assert_string_equal(lookup_in(f->other, "zulu", "A", out), "");
	/* Usable afterwards, and a store restores its own snapshot. */
	fill(f, f->other, theirs, 1, "B", 1);
	assert_true(count_in(f->other, "zulu") == 1);
	assert_int_equal(store_restore(f->store, snap.data, snap.len, f->errmsg, sizeof(f->errmsg)),
			 0);
	assert_true(applied_in(f->store) == 0);
	put_plain(f, "t", "u1");
	assert_true(count(f, "t") == 1);
	buf_free(&snap);
}

/* Snapshots of stores of many sizes are whole 8-byte words, header and image included. */
static void snapshot_length_is_a_multiple_of_8(void **state)
{
	struct fixture *f = *state;
	static uint8_t blob[3001];
	struct buf snap = BUF_INIT;
	char uid[OBJECT_UID_LEN + 1];
	struct store_txn *t;
	struct object obj;
	uint64_t index, image_len;
	unsigned i, round;

	memset(blob, 0xa5, sizeof(blob));
	for (round = 0; round < 6; round++) {
		assert_int_equal(store_snapshot(f->store, &snap, &index), 0);
		assert_true(index == round);
		assert_int_equal(snap.len % 8, 0);
		for (image_len = 0, i = 0; i < 8; i++)
			image_len |= (uint64_t)snap.data[24 + i] << (8 * i);
		assert_true(snap.len - 32 - image_len < 8);

		BEGIN_WRITE(t);
		for (i = 0; i < round * 7 + 1; i++) {
			make_uid(uid, round * 100 + i);
			init_object(&obj, "acme", uid);
			assert_int_equal(object_attr_add(&obj, &f->arena, "x-Blob", 0, blob,
							 sizeof(blob) - round * 97 - i),
					 0);
			assert_int_equal(store_object_put(t, &obj), 0);
		}
		assert_int_equal(store_set_applied_index(t, round + 1), 0);
		COMMIT(t);
		arena_reset(&f->arena);
	}
	buf_free(&snap);
}

/* The caller's own write transaction excludes restores (and a second write transaction):
 * each says so instead of hanging. A snapshot goes on beside it and holds what was
 * committed, not what the open transaction wrote. */
static void write_transaction_excludes_restore_not_snapshot(void **state)
{
	struct fixture *f = *state;
	struct buf snap = BUF_INIT;
	struct store_txn *w, *w2;

	put_plain(f, "acme", "u1");
	BEGIN_WRITE(w);
	assert_int_equal(store_txn_begin(f->store, true, &w2), KMIPD_ESTATE);
	assert_int_equal(store_set_applied_index(w, 4), 0);
	take_snapshot(f->store, &snap, 0);
	COMMIT(w);
	assert_true(applied_in(f->store) == 4);

	take_snapshot(f->store, &snap, 4);
	BEGIN_WRITE(w);
	assert_int_equal(store_restore(f->store, snap.data, snap.len, f->errmsg, sizeof(f->errmsg)),
			 KMIPD_ESTATE);
	assert_non_null(strstr(f->errmsg, "write transaction"));
	assert_int_equal(store_set_applied_index(w, 9), 0);
	COMMIT(w);
	assert_true(applied_in(f->store) == 9);
	buf_free(&snap);
}

/* Snapshots taken on another thread while the writer commits: each image holds exactly the
 * state of the applied index in its header (the writer keeps objects == index). */
struct snapshot_writer {
	struct store *store;
	atomic_bool *done;
	int commits;
	int errors;
};

static void *snapshot_writer_main(void *p)
{
	struct snapshot_writer *w = p;
	char uid[OBJECT_UID_LEN + 1];
	uint64_t index;

	for (index = 1; !atomic_load(w->done); index++) {
		struct store_txn *t;
		struct object obj;

		if (store_txn_begin(w->store, true, &t) != 0) {
			w->errors++;
			break;
		}
		make_uid(uid, (unsigned)index);
		init_object(&obj, "acme", uid);
		if (store_object_put(t, &obj) != 0 || store_set_applied_index(t, index) != 0 ||
		    store_txn_commit(t) != 0) {
			w->errors++;
			break;
		}
		w->commits++;
	}
	return NULL;
}

static void snapshots_beside_the_writer_match_their_index(void **state)
{
	struct fixture *f = *state;
	atomic_bool done = false;
	struct snapshot_writer w = {f->store, &done, 0, 0};
	struct buf snap = BUF_INIT;
	uint64_t index, objects, last = 0;
	struct store_txn *t;
	pthread_t thread;

	open_other(f);
	assert_int_equal(pthread_create(&thread, NULL, snapshot_writer_main, &w), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(store_snapshot(f->store, &snap, &index), 0);
		assert_true(index >= last);
		last = index;
		assert_int_equal(
			store_restore(f->other, snap.data, snap.len, f->errmsg, sizeof(f->errmsg)),
			0);
		assert_int_equal(store_txn_begin(f->other, false, &t), 0);
		assert_int_equal(store_applied_index(t, &objects), 0);
		assert_true(objects == index);
		assert_int_equal(store_object_count(t, "acme", &objects), 0);
		store_txn_abort(t);
		assert_true(objects == index);
	}
	atomic_store(&done, true);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(w.errors, 0);
	assert_true(w.commits > 0);
	assert_true(last > 0);
	buf_free(&snap);
}

/* Readers check that each transaction sees one of the two states whole. */
struct restore_reader {
	struct store *store;
	atomic_bool *done;
	int rounds;
	int errors;
};

static void *restore_reader_main(void *p)
{
	struct restore_reader *r = p;
	int i;

	for (i = 0; !atomic_load(r->done) || i < 10; i++) {
		struct store_txn *t;
		uint64_t index = 0, a = 0, z = 0;

		if (store_txn_begin(r->store, false, &t) != 0) {
			r->errors++;
			continue;
		}
		if (store_applied_index(t, &index) != 0 || store_object_count(t, "acme", &a) != 0 ||
		    store_object_count(t, "zulu", &z) != 0)
			r->errors++;
		else if (!(index == 5 && a == 3 && z == 0) && !(index == 77 && a == 0 && z == 4))
			r->errors++;
		store_txn_abort(t);
	}
	r->rounds = i;
	return NULL;
}

static void restore_beside_readers(void **state)
{
	struct fixture *f = *state;
	static const char *const mine[] = {"acme", NULL};
	static const char *const theirs[] = {"zulu", NULL};
	atomic_bool done = false;
	struct restore_reader readers[2];
	pthread_t threads[2];
	struct buf a = BUF_INIT, z = BUF_INIT;
	unsigned i;

	fill(f, f->store, mine, 3, "A", 5);
	take_snapshot(f->store, &a, 5);
	open_other(f);
	fill(f, f->other, theirs, 4, "A", 77);
	take_snapshot(f->other, &z, 77);

	for (i = 0; i < 2; i++) {
		readers[i] = (struct restore_reader){f->store, &done, 0, 0};
		assert_int_equal(
			pthread_create(&threads[i], NULL, restore_reader_main, &readers[i]), 0);
	}
	for (i = 0; i < 40; i++) {
		const struct buf *snap = i % 2 == 0 ? &z : &a;

		if (store_restore(f->store, snap->data, snap->len, f->errmsg, sizeof(f->errmsg)) !=
		    0)
			fail_msg("restore %u: %s", i, f->errmsg);
	}
	atomic_store(&done, true);
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(readers[i].errors, 0);
		assert_true(readers[i].rounds >= 10);
	}
	assert_true(applied_in(f->store) == 5); /* the last restore was of the first store */
	assert_true(count(f, "acme") == 3);
	buf_free(&a);
	buf_free(&z);
}

/* ---- Unmapping (store_unmap) ---- */

/* Kilobytes of @dir/data.mdb mapped into this process (the Rss of its mappings). */
static unsigned long mapped_kb(const char *dir)
{
	char path[160], line[512];
	unsigned long kb = 0, n;
	bool in = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	f = fopen("/proc/self/smaps", "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long from, to;

		if (sscanf(line, "%lx-%lx ", &from, &to) == 2) { /* a mapping's first line */
			const char *at = strstr(line, path);

			in = at != NULL && strcmp(at + strlen(path), "\n") == 0;
		} else if (in && sscanf(line, "Rss: %lu kB", &n) == 1) {
			kb += n;
		}
	}
	fclose(f);
	return kb;
}

/* Reads each of the @n objects fill() put under @tenant in @store. */
static void read_all(struct fixture *f, struct store *store, const char *tenant, unsigned n)
{
	char uid[OBJECT_UID_LEN + 1];
	struct store_txn *t;
	struct object obj;

	assert_int_equal(store_txn_begin(store, false, &t), 0);
	for (unsigned j = 0; j < n; j++) {
		make_uid(uid, j + 1);
		assert_int_equal(store_object_get(t, tenant, uid, &f->arena, &obj), 0);
		assert_string_equal(obj.uid, uid);
		assert_string_equal(obj.tenant, tenant);
	}
	COMMIT(t);
	arena_reset(&f->arena);
}

/* Unmapping every part leaves nothing of the file mapped, and every record readable; the
 * store finds its new map after a restore. Nothing else reads the store meanwhile, so what
 * is mapped after the calls is exactly what they left. */
static void unmap_drops_the_mapping_and_keeps_the_data(void **state)
{
	struct fixture *f = *state;
	static const char *const mine[] = {"acme", NULL};
	static const char *const theirs[] = {"zulu", NULL};
	struct buf snap = BUF_INIT;
	unsigned part;

	assert_int_equal(store_unmap(f->store, 0, 0), KMIPD_EINVAL);
	assert_int_equal(store_unmap(f->store, 4, 4), KMIPD_EINVAL);

	fill(f, f->store, mine, 3000, "A", 7);
	read_all(f, f->store, "acme", 3000);
	assert_true(mapped_kb(f->path) >= 256);
	for (part = 0; part < 4; part++)
		assert_int_equal(store_unmap(f->store, part, 4), 0);
	assert_int_equal(mapped_kb(f->path), 0);
	read_all(f, f->store, "acme", 3000);
	assert_true(mapped_kb(f->path) >= 256);
	assert_true(applied_in(f->store) == 7);

	/* One part of two leaves some of the file mapped, and not all of it. */
	unsigned long all = mapped_kb(f->path);

	assert_int_equal(store_unmap(f->store, 0, 2), 0);
	assert_true(mapped_kb(f->path) > 0 && mapped_kb(f->path) < all);

	/* A restore maps a new file: unmapping follows it. */
	open_other(f);
	fill(f, f->other, theirs, 2000, "Z", 9);
	take_snapshot(f->other, &snap, 9);
	assert_int_equal(store_restore(f->store, snap.data, snap.len, f->errmsg, sizeof(f->errmsg)),
			 0);
	read_all(f, f->store, "zulu", 2000);
	assert_true(mapped_kb(f->path) >= 128);
	assert_int_equal(store_unmap(f->store, 0, 1), 0);
	assert_int_equal(mapped_kb(f->path), 0);
	read_all(f, f->store, "zulu", 2000);
	assert_true(count(f, "acme") == 0);
	buf_free(&snap);
}

/* ---- Lazy flushing (store_config.lazy) ---- */

static int open_lazy(struct fixture *f)
{
	struct store_config config = {.dir = f->path, .map_size = 64 * MiB, .lazy = true};

	return store_open(&f->store, &config, f->errmsg, sizeof(f->errmsg));
}

static void write_mark(const struct fixture *f, const char *boot_id)
{
	char path[256];
	FILE *file;

	snprintf(path, sizeof(path), "%s/unflushed", f->path);
	file = fopen(path, "w");
	assert_non_null(file);
	assert_int_equal(fputs(boot_id, file) >= 0, 1);
	assert_int_equal(fclose(file), 0);
}

static bool exists_in(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void put_acme(struct fixture *f)
{
	struct store_tenant tenant = {"acme", "local", "", (const uint8_t *)"kek", 3, 17};
	struct store_txn *t;

	BEGIN_WRITE(t);
	assert_int_equal(store_tenant_put(t, &tenant), 0);
	COMMIT(t);
}

static int get_acme(struct fixture *f)
{
	struct store_tenant back;
	struct store_txn *t;
	int rc;

	BEGIN_READ(t);
	rc = store_tenant_get(t, "acme", &f->arena, &back);
	store_txn_abort(t);
	return rc;
}

/* The mark is there while the store is open and gone after a clean close; a mark of this
 * boot (a process that crashed) keeps the store. */
static void lazy_store_marks_itself_while_open(void **state)
{
	struct fixture *f = *state;
	char boot[64] = "";
	FILE *file = fopen("/proc/sys/kernel/random/boot_id", "r");

	assert_non_null(file);
	assert_non_null(fgets(boot, sizeof(boot), file));
	fclose(file);
	store_close(f->store);
	assert_int_equal(open_lazy(f), 0);
	assert_true(exists_in(f->path, "unflushed"));
	put_acme(f);
	store_close(f->store);
	f->store = NULL;
	assert_false(exists_in(f->path, "unflushed"));

	write_mark(f, boot); /* as a SIGKILLed kmipd leaves it */
	assert_int_equal(open_lazy(f), 0);
	assert_false(store_discarded(f->store));
	assert_int_equal(get_acme(f), 0);
	assert_false(exists_in(f->path, "data.mdb.unflushed"));
}

/* A mark of another boot: the machine stopped with pages unwritten, so the file is set
 * aside and the store opens empty. */
static void lazy_store_of_another_boot_is_set_aside(void **state)
{
	struct fixture *f = *state;

	store_close(f->store);
	assert_int_equal(open_lazy(f), 0);
	put_acme(f);
	store_close(f->store);
	f->store = NULL;

	write_mark(f, "00000000-0000-0000-0000-000000000000\n");
	assert_int_equal(open_lazy(f), 0);
	assert_true(store_discarded(f->store));
	assert_int_equal(get_acme(f), KMIPD_ENOT_FOUND);
	assert_true(exists_in(f->path, "data.mdb.unflushed"));
	remove_in(f->path, "data.mdb.unflushed");

	/* The new store is marked with this boot's id: reopening keeps it. */
	put_acme(f);
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(open_lazy(f), 0);
	assert_false(store_discarded(f->store));
	assert_int_equal(get_acme(f), 0);
}

/* Puts object @n and applied index @n in one transaction, as the FSM applies an entry;
 * every third entry also destroys the object two before it, so that pages are freed and
 * reused. */
static void apply_entry(struct fixture *f, unsigned n)
{
	char uid[OBJECT_UID_LEN + 1];
	struct store_txn *t;
	struct object obj;

	make_uid(uid, n);
	init_object(&obj, "acme", uid);
	BEGIN_WRITE(t);
	assert_int_equal(store_object_put(t, &obj), 0);
	if (n % 3 == 0 && n >= 2) {
		make_uid(uid, n - 2);
		init_object(&obj, "acme", uid);
		obj.state = 6; /* destroyed: a rewrite of the record */
		assert_int_equal(store_object_put(t, &obj), 0);
	}
	assert_int_equal(store_set_applied_index(t, n), 0);
	COMMIT(t);
}

/* A checkpoint survives the worst a machine crash can do to the commits after it: every
 * page that changed after the checkpoint was taken (later commits' pages, the meta pages)
 * is replaced by garbage, as if none of those writes reached the disk whole. Rolled back,
 * the store opens at the checkpoint's commit, with exactly its contents, and takes writes
 * again. This holds only if the checkpoint's pages were never overwritten: with the pin
 * dropped, LMDB reuses them and the roll-back finds garbage. The checkpoint is taken in
 * its two halves, as the raft loop takes it, with a commit between them: the record is of
 * the commit pinned, not of the one the flush found. */
static void checkpoint_rolls_a_torn_store_back(void **state)
{
	struct fixture *f = *state;
	uint8_t record[STORE_CHECKPOINT_LEN], *then, *now;
	char data[256], copy[256], uid[OBJECT_UID_LEN + 1];
	size_t then_len, now_len, psize = (size_t)sysconf(_SC_PAGESIZE);
	struct store_txn *t;
	struct object back;
	uint64_t applied, index;
	unsigned garbled = 0;
	FILE *file;

	store_close(f->store);
	assert_int_equal(open_lazy(f), 0);
	for (unsigned n = 1; n <= 300; n++)
		apply_entry(f, n);
	assert_int_equal(store_checkpoint_flush(f->store), KMIPD_ESTATE); /* nothing pinned */
	assert_int_equal(store_checkpoint_pin(f->store, record, &applied), 0);
	apply_entry(f, 301);
	assert_int_equal(store_checkpoint_flush(f->store), 0);
	assert_int_equal(applied, 300);
	assert_true(store_snapshot_is_checkpoint(record, sizeof(record)));
	assert_int_equal(store_snapshot_index(record, sizeof(record), &index), 0);
	assert_int_equal(index, 300);
	store_checkpoint_settle(f->store, true);
	snprintf(data, sizeof(data), "%s/data.mdb", f->path);
	then = (uint8_t *)slurp(data, &then_len); /* what the checkpoint left on disk */
	for (unsigned n = 302; n <= 1000; n++)
		apply_entry(f, n);
	store_close(f->store); /* flushes: the file now holds every later commit */
	f->store = NULL;

	/* Every page written after the checkpoint is torn; the others are as they were. */
	now = (uint8_t *)slurp(data, &now_len);
	assert_true(now_len >= then_len);
	for (size_t at = 0; at < now_len; at += psize) {
		size_t n = now_len - at < psize ? now_len - at : psize;

		if (at + n <= then_len && memcmp(now + at, then + at, n) == 0)
			continue;
		memset(now + at, 0xA5, n);
		garbled++;
	}
	assert_true(garbled > 10);

	/* Another file with the same contents is not the one the checkpoint was taken of. */
	snprintf(copy, sizeof(copy), "%s/data.mdb.unflushed", f->path);
	file = fopen(copy, "wb");
	assert_non_null(file);
	assert_int_equal(fwrite(now, 1, now_len, file), now_len);
	assert_int_equal(fclose(file), 0);
	assert_int_equal(open_lazy(f), 0);
	assert_int_equal(
		store_rollback(f->store, record, sizeof(record), f->errmsg, sizeof(f->errmsg)),
		KMIPD_EMALFORMED);
	assert_non_null(strstr(f->errmsg, "is not the store the checkpoint at index 300"));
	store_close(f->store);
	f->store = NULL;
	remove_in(f->path, "data.mdb.unflushed");

	/* The torn file in place, then the machine's reboot sets it aside. */
	file = fopen(data, "r+b");
	assert_non_null(file);
	assert_int_equal(fwrite(now, 1, now_len, file), now_len);
	assert_int_equal(fclose(file), 0);
	write_mark(f, "00000000-0000-0000-0000-000000000000\n");
	assert_int_equal(open_lazy(f), 0);
	assert_true(store_discarded(f->store));
	record[CKP_TEST_META_BYTE] ^= 1; /* a damaged record is refused, nothing touched */
	assert_int_equal(
		store_rollback(f->store, record, sizeof(record), f->errmsg, sizeof(f->errmsg)),
		KMIPD_EMALFORMED);
	record[CKP_TEST_META_BYTE] ^= 1;
	if (store_rollback(f->store, record, sizeof(record), f->errmsg, sizeof(f->errmsg)) != 0)
		fail_msg("rollback: %s", f->errmsg);
	assert_false(store_discarded(f->store));
	assert_false(exists_in(f->path, "data.mdb.unflushed"));

	BEGIN_READ(t);
	assert_int_equal(store_applied_index(t, &index), 0);
	assert_int_equal(index, 300);
	for (unsigned n = 1; n <= 301; n++) {
		make_uid(uid, n);
		assert_int_equal(store_object_get(t, "acme", uid, &f->arena, &back),
				 n <= 300 ? 0 : KMIPD_ENOT_FOUND);
		if (n <= 298)
			assert_int_equal(back.state, n % 3 == 1 && n + 2 <= 300 ? 6 : 1);
	}
	store_txn_abort(t);
	assert_int_equal(count_in(f->store, "acme"), 300);
	for (unsigned n = 301; n <= 600; n++) /* the log after the checkpoint, applied again */
		apply_entry(f, n);
	assert_int_equal(count_in(f->store, "acme"), 600);
	free(then);
	free(now);
}

/* Purging a tenant deletes its objects and names and nothing of any other tenant (one whose
 * name starts with the same letters included); a deleted tenant's record says so. */
static void tenant_purge_and_deleted_record(void **state)
{
	struct fixture *f = *state;
	struct store_tenant t = {"acme", "local", NULL, (const uint8_t *)"k", 1, 7};
	struct store_tenant back;
	char uid[OBJECT_UID_LEN + 1], out[512];
	struct store_txn *w;
	struct object obj;
	uint64_t n = 99;

	for (unsigned i = 0; i < 300; i++) {
		make_uid(uid, i);
		init_object(&obj, i % 3 == 0 ? "acme2" : "acme", uid);
		if (i < 10) /* acme2: 4 of them, acme: 6 */
			add_name(f, &obj, 0, "named");
		BEGIN_WRITE(w);
		assert_int_equal(store_object_put(w, &obj), 0);
		COMMIT(w);
		arena_reset(&f->arena);
	}
	assert_true(count(f, "acme") == 200 && count(f, "acme2") == 100);
	assert_true(strlen(lookup(f, "acme", "named", out)) == 6 * 37 - 1);
	BEGIN_WRITE(w);
	assert_int_equal(store_tenant_purge(w, "acme", &n), 0);
	t.deleted = 9;
	t.wrapped_kek = NULL;
	t.wrapped_kek_len = 0;
	assert_int_equal(store_tenant_put(w, &t), 0);
	COMMIT(w);
	assert_true(n == 200);
	assert_true(count(f, "acme") == 0 && count(f, "acme2") == 100);
	assert_string_equal(lookup(f, "acme", "named", out), "");
	assert_true(strlen(lookup(f, "acme2", "named", out)) == 4 * 37 - 1);
	BEGIN_READ(w);
	assert_int_equal(store_tenant_get(w, "acme", &f->arena, &back), 0);
	COMMIT(w);
	assert_true(back.deleted == 9 && back.created == 7 && back.wrapped_kek_len == 0);
	BEGIN_WRITE(w);
	assert_int_equal(store_tenant_purge(w, "acme", &n), 0); /* nothing left */
	COMMIT(w);
	assert_true(n == 0);
}

/* ---- Recent requests ---- */

static void request_id(uint8_t id[STORE_REQUEST_ID_LEN], unsigned n)
{
	memset(id, 0, STORE_REQUEST_ID_LEN);
	/* Ids are random in use: make their order unlike the order of their indexes. */
	id[0] = (uint8_t)(n * 37);
	id[15] = (uint8_t)n;
}

static bool request_known(struct fixture *f, unsigned n)
{
	uint8_t id[STORE_REQUEST_ID_LEN], value[STORE_REQUEST_VALUE_MAX];
	struct store_txn *t;
	size_t len;
	int rc;

	request_id(id, n);
	BEGIN_READ(t);
	rc = store_request_get(t, id, value, sizeof(value), &len);
	store_txn_abort(t);
	assert_true(rc == 0 || rc == KMIPD_ENOT_FOUND);
	if (rc == 0) {
		assert_int_equal(len, 1);
		assert_int_equal(value[0], (uint8_t)n);
	}
	return rc == 0;
}

/* Requests 1..@n, request i applied at index 10 * i. */
static void put_requests(struct fixture *f, unsigned n)
{
	uint8_t id[STORE_REQUEST_ID_LEN];
	struct store_txn *t;

	BEGIN_WRITE(t);
	for (unsigned i = 1; i <= n; i++) {
		uint8_t value = (uint8_t)i;

		request_id(id, i);
		assert_int_equal(store_request_put(t, id, 10 * i, &value, 1), 0);
	}
	COMMIT(t);
}

static void prune(struct fixture *f, uint64_t below)
{
	struct store_txn *t;

	BEGIN_WRITE(t);
	assert_int_equal(store_request_prune(t, below), 0);
	COMMIT(t);
}

/* Pruning forgets exactly the requests applied before the bound, oldest first. */
static void requests_are_pruned_by_index(void **state)
{
	struct fixture *f = *state;

	put_requests(f, 200);
	prune(f, 10); /* nothing is older */
	for (unsigned i = 1; i <= 200; i++)
		assert_true(request_known(f, i));
	prune(f, 1005); /* 1..100 */
	for (unsigned i = 1; i <= 200; i++)
		assert_int_equal(request_known(f, i), i > 100);
	prune(f, 1005); /* again: nothing more */
	assert_true(request_known(f, 101));
	prune(f, UINT64_MAX);
	for (unsigned i = 1; i <= 200; i++)
		assert_false(request_known(f, i));
	prune(f, UINT64_MAX); /* empty */
}

/* A store whose requests were recorded before their order was: the order is made at the
 * next open, and pruning works on them. */
static void requests_of_an_older_store_are_ordered_at_open(void **state)
{
	struct fixture *f = *state;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	put_requests(f, 50);
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 64 * MiB), 0);
	assert_int_equal(mdb_env_open(env, f->path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "request_order", 0, &dbi), 0);
	assert_int_equal(mdb_drop(txn, dbi, 1), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	assert_int_equal(open_store(f, 64 * MiB), 0);
	for (unsigned i = 1; i <= 50; i++)
		assert_true(request_known(f, i));
	prune(f, 255);
	for (unsigned i = 1; i <= 50; i++)
		assert_int_equal(request_known(f, i), i > 25);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(open_creates_private_directory),
		T(reopen_keeps_everything),
		T(open_refuses_newer_format),
		T(open_errors_name_the_path),
		T(default_map_size_opens),
		T(applied_index),
		T(tenants),
		T(tenant_put_refuses_bad_records),
		T(object_put_get),
		T(object_put_refuses_bad_objects),
		T(foreach_order_and_paging),
		T(name_index_follows_renames),
		T(aborted_write_leaves_nothing),
		T(damaged_records_are_corrupt),
		T(map_full),
		T(read_transaction_sees_a_snapshot),
		T(readers_beside_the_writer),
		T(snapshot_replaces_another_store),
		T(malformed_snapshots_change_nothing),
		T(empty_store_snapshots_and_restores),
		T(snapshot_length_is_a_multiple_of_8),
		T(write_transaction_excludes_restore_not_snapshot),
		T(snapshots_beside_the_writer_match_their_index),
		T(restore_beside_readers),
		T(unmap_drops_the_mapping_and_keeps_the_data),
		T(lazy_store_marks_itself_while_open),
		T(lazy_store_of_another_boot_is_set_aside),
		T(checkpoint_rolls_a_torn_store_back),
		T(tenant_purge_and_deleted_record),
		T(requests_are_pruned_by_index),
		T(requests_of_an_older_store_are_ordered_at_open),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
