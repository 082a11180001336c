/* The node's persistent state in one LMDB environment (see include/kmipd/store.h).
 *
 * Layout. Seven databases: "meta" holds "format" (uint32, little-endian, written when the
 * store is created and checked on every open) and "applied" (uint64, little-endian);
 * "tenants" maps a tenant name to a msgpack tenant record; "objects" maps
 * tenant NUL uid to an object record (object_encode); "names" maps
 * tenant NUL SHA-256(encoded Name value) uid to an empty value. Tenant names cannot
 * contain NUL, so a tenant's keys are exactly those starting with "tenant NUL".
 * "requests" maps a request id to the index it was applied at (uint64, little-endian) and
 * its recorded outcome; "request_order" holds index (big-endian, so keys sort by it) plus
 * request id, empty, so that forgetting old requests reads only those it forgets.
 * "certs" maps 'f' fingerprint (64 hex digits) to a msgpack certificate record, and
 * 'i' SHA-256(subject name) fingerprint to an empty value for each live CA certificate,
 * so that a client certificate's issuer is found without reading the others.
 *
 * Durability. By default the environment runs with MDB_NOMETASYNC: each commit fsyncs the
 * data pages and the meta page follows at the next commit, so a crash can undo the last
 * transaction but never corrupts the file. The Raft log is the durable record and replay by
 * applied index repairs that. With config->durable the store also syncs after every commit,
 * so a commit that returned survives a crash on its own. With config->lazy (kmipd's
 * choice) it runs with MDB_NOSYNC and flushes nothing: the pages of a commit are with the
 * kernel when it returns, which is all a process crash needs. Only a machine that stops
 * with pages unwritten can leave a torn file, and that is what the "unflushed" mark finds:
 * written (and flushed) with the boot id before the first commit, removed by a clean close
 * after a flush. Found at open with another boot's id, it means that the file cannot be
 * trusted; it is set aside and the store starts empty, for Raft to refill from its
 * snapshot and log (both flushed by libraft).
 *
 * Locking. LMDB needs nothing beyond MDB_NOTLS for readers beside the one writer; two
 * locks exist for restores. @writer (an error-checking mutex) is held by a write
 * transaction from begin to commit, and by store_restore(): no write transaction can
 * overlap a restore. @readers (a writer-preferring rwlock) is held for reading by each
 * read transaction and each snapshot copy (store_snapshot() reads the applied index from
 * the copy it made, so it needs no lock against writers), and for writing by
 * store_restore() while it closes and reopens the environment, so no reader is inside the
 * old environment when it goes away, and a stream of readers cannot starve the restore. Lock order:
 * @writer, then @readers. */
#include "kmipd/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/fsutil.h"

#define STORE_FORMAT  1	       /* the layout above; a newer one is refused */
#define FORMAT_KEY    "format" /* its key in "meta" */
#define TENANT_FORMAT 1	       /* the tenant record's "v" */
#define HASH_LEN      32
#define CERT_FORMAT   1 /* the certificate record's "v" */
#define MAX_DBS	      8

#define SNAPSHOT_MAGIC	    "KMIPDSNP"
#define SNAPSHOT_VERSION    1
#define SNAPSHOT_HEADER_LEN 32 /* magic, version, reserved, applied index, image length */
_Static_assert(sizeof(((struct store_image *)0)->header) == SNAPSHOT_HEADER_LEN,
	       "struct store_image holds the whole header");
#define RESTORE_FILE "data.mdb.restore"

#if SIZE_MAX > 0xffffffffu
#define DEFAULT_MAP_SIZE ((size_t)64 << 30)
#else
#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#endif

struct store {
	MDB_env *env; /* NULL once a restore failed to reopen it */
	MDB_dbi meta, tenants, objects, names, requests, request_order, certs;
	bool durable;
	bool lazy;	/* MDB_NOSYNC, with the unflushed mark */
	bool discarded; /* store_open() set a possibly torn file aside */
	/* Checkpoints' pins: read transactions kept open so that LMDB reuses none of the
	 * pages of the commit they read (see store_checkpoint()). */
	MDB_txn *pinned;  /* the last checkpoint written */
	MDB_txn *pinning; /* one taken, not settled yet */
	size_t map_size;
	uint8_t *map; /* where the environment is mapped (find_map); NULL: not known */
	char *dir;
	EVP_MD *sha256;
	pthread_mutex_t writer;	  /* see "Locking" above */
	pthread_rwlock_t readers; /* see "Locking" above */
	bool locks_ready;
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

/* The key of request @id applied at @index in "request_order". */
static void order_key(uint8_t key[8 + STORE_REQUEST_ID_LEN], uint64_t index,
		      const uint8_t id[STORE_REQUEST_ID_LEN])
{
	for (int i = 7; i >= 0; i--, index >>= 8)
		key[i] = (uint8_t)index;
	memcpy(key + 8, id, STORE_REQUEST_ID_LEN);
}

/* A store written before "request_order" existed has requests it does not list: list
 * them, once. */
static int order_requests(MDB_txn *txn, struct store *s)
{
	uint8_t key[8 + STORE_REQUEST_ID_LEN];
	MDB_stat requests, order;
	MDB_cursor *cursor;
	MDB_val k, v, empty = {0, ""};
	int rc;

	if ((rc = mdb_stat(txn, s->requests, &requests)) != 0 ||
	    (rc = mdb_stat(txn, s->request_order, &order)) != 0)
		return rc;
	if (requests.ms_entries == 0 || order.ms_entries > 0)
		return 0;
	rc = mdb_cursor_open(txn, s->requests, &cursor);
	if (rc != 0)
		return rc;
	for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
		MDB_val ok = {sizeof(key), key};

		if (k.mv_size != STORE_REQUEST_ID_LEN || v.mv_size < 8)
			continue;
		order_key(key, get_le(v.mv_data, 8), k.mv_data);
		rc = mdb_put(txn, s->request_order, &ok, &empty, 0);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(cursor);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Opens the databases and checks or writes the format, in one write transaction. */
static int open_databases(struct store *s, const char *dir, char *errmsg, size_t errlen)
{
	MDB_val k = {sizeof(FORMAT_KEY) - 1, (void *)FORMAT_KEY};
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
	    (rc = mdb_dbi_open(txn, "names", MDB_CREATE, &s->names)) != 0 ||
	    (rc = mdb_dbi_open(txn, "requests", MDB_CREATE, &s->requests)) != 0 ||
	    (rc = mdb_dbi_open(txn, "request_order", MDB_CREATE, &s->request_order)) != 0 ||
	    (rc = mdb_dbi_open(txn, "certs", MDB_CREATE, &s->certs)) != 0 ||
	    (rc = order_requests(txn, s)) != 0)
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

static uint8_t *find_map(struct store *s);

/* Opens the environment in s->dir with the store's settings, clears stale reader slots and
 * opens the databases: store_open() and store_restore() share it. On failure s->env is
 * NULL. */
static int open_env(struct store *s, char *errmsg, size_t errlen)
{
	const char *dir = s->dir;
	int dead, rc;

	rc = mdb_env_create(&s->env);
	if (rc != 0) {
		s->env = NULL;
		goto fail;
	}
	rc = mdb_env_set_mapsize(s->env, s->map_size);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, MAX_DBS);
	if (rc == 0)
		rc = mdb_env_open(s->env, dir, MDB_NOTLS | (s->lazy ? MDB_NOSYNC : MDB_NOMETASYNC),
				  0600);
	if (rc != 0)
		goto fail;
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
	s->map = find_map(s);
	return 0;
fail:
	errmsgf(errmsg, errlen, "opening LMDB environment in %s: %s", dir, mdb_strerror(rc));
	rc = map_error(rc);
err:
	mdb_env_close(s->env); /* accepts NULL */
	s->env = NULL;
	return rc;
}

/* "@dir/@name" into @path (PATH_MAX bytes). */
static int path_in(char *path, const char *dir, const char *name)
{
	int n = snprintf(path, PATH_MAX, "%s/%s", dir, name);

	return n >= 0 && n < PATH_MAX ? 0 : -ENAMETOOLONG;
}

static int write_file(const char *path, const uint8_t *data, size_t len);

#define UNFLUSHED_FILE "unflushed"
#define BOOT_ID_LEN    36 /* a UUID */

/* This boot of the machine's id into @id (BOOT_ID_LEN bytes, no NUL). */
static int read_boot_id(char *id)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, id, BOOT_ID_LEN);
	close(fd);
	return n == BOOT_ID_LEN ? 0 : KMIPD_EIO;
}

/* For a lazy store, before the environment opens: sets aside a file that another boot
 * left unflushed, then marks the store as unflushed in this boot (flushed to disk before
 * any commit can be left unflushed). */
static int mark_unflushed(struct store *s, char *errmsg, size_t errlen)
{
	char mark[PATH_MAX], tmp[PATH_MAX], data[PATH_MAX], aside[PATH_MAX];
	char boot[BOOT_ID_LEN], seen[BOOT_ID_LEN];
	ssize_t n;
	int fd, rc;

	if (path_in(mark, s->dir, UNFLUSHED_FILE) != 0 ||
	    path_in(tmp, s->dir, UNFLUSHED_FILE ".new") != 0 ||
	    path_in(data, s->dir, "data.mdb") != 0 ||
	    path_in(aside, s->dir, "data.mdb.unflushed") != 0) {
		errmsgf(errmsg, errlen, "opening the store in %s: the path is too long", s->dir);
		return KMIPD_EINVAL;
	}
	rc = read_boot_id(boot);
	if (rc != 0) {
		errmsgf(errmsg, errlen, "reading the machine's boot id: %s", kmipd_strerror(rc));
		return rc;
	}
	fd = open(mark, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, seen, sizeof(seen));
		close(fd);
		if (n == BOOT_ID_LEN && memcmp(seen, boot, BOOT_ID_LEN) == 0)
			return 0; /* this boot's: the kernel has every page */
		if (rename(data, aside) != 0 && errno != ENOENT) {
			rc = -errno;
			errmsgf(errmsg, errlen, "setting aside %s: %s", data, strerror(errno));
			return rc;
		}
		s->discarded = true;
	} else if (errno != ENOENT) {
		rc = -errno;
		errmsgf(errmsg, errlen, "reading %s: %s", mark, strerror(errno));
		return rc;
	}
	rc = write_file(tmp, (const uint8_t *)boot, BOOT_ID_LEN);
	if (rc == 0 && rename(tmp, mark) != 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_parent_dir(mark);
	if (rc != 0) {
		errmsgf(errmsg, errlen, "writing %s: %s", mark, kmipd_strerror(rc));
		unlink(tmp);
	}
	return rc;
}

/* For a lazy store at a clean close: flush, and only then remove the mark. */
static void flush_and_unmark(struct store *s)
{
	char mark[PATH_MAX];

	if (s->env == NULL || mdb_env_sync(s->env, 1) != 0 ||
	    path_in(mark, s->dir, UNFLUSHED_FILE) != 0)
		return; /* the mark stays: the next open in another boot starts afresh */
	if (unlink(mark) == 0)
		fsync_parent_dir(mark);
}

static int init_locks(struct store *s)
{
	pthread_mutexattr_t mattr;
	pthread_rwlockattr_t rwattr;
	int rc;

	/* Error-checking: a thread that holds it (a write transaction) and asks again gets
	 * EDEADLK instead of hanging. */
	if (pthread_mutexattr_init(&mattr) != 0)
		return KMIPD_ENOMEM;
	rc = pthread_mutexattr_settype(&mattr, PTHREAD_MUTEX_ERRORCHECK);
	if (rc == 0)
		rc = pthread_mutex_init(&s->writer, &mattr);
	pthread_mutexattr_destroy(&mattr);
	if (rc != 0)
		return KMIPD_ENOMEM;
	/* Writer-preferring: once a restore waits, new readers wait behind it, so busy
	 * workers cannot hold the restore (and the raft loop) off indefinitely. */
	rc = pthread_rwlockattr_init(&rwattr);
	if (rc == 0) {
		rc = pthread_rwlockattr_setkind_np(&rwattr,
						   PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		if (rc == 0)
			rc = pthread_rwlock_init(&s->readers, &rwattr);
		pthread_rwlockattr_destroy(&rwattr);
	}
	if (rc != 0) {
		pthread_mutex_destroy(&s->writer);
		return KMIPD_ENOMEM;
	}
	s->locks_ready = true;
	return 0;
}

/* Ends the checkpoints' pins: before the environment closes. */
static void release_pins(struct store *s)
{
	mdb_txn_abort(s->pinned); /* accepts NULL */
	mdb_txn_abort(s->pinning);
	s->pinned = NULL;
	s->pinning = NULL;
}

/* Frees everything but the environment. */
static void free_store(struct store *s)
{
	if (s->locks_ready) {
		pthread_rwlock_destroy(&s->readers);
		pthread_mutex_destroy(&s->writer);
	}
	EVP_MD_free(s->sha256);
	free(s->dir);
	free(s);
}

int store_open(struct store **out, const struct store_config *config, char *errmsg, size_t errlen)
{
	char leftover[PATH_MAX];
	const char *dir;
	struct store *s;
	int rc;

	errmsgf(errmsg, errlen, "%s", "");
	if (out == NULL || config == NULL || config->dir == NULL || config->dir[0] == '\0') {
		errmsgf(errmsg, errlen, "opening the store: no directory given");
		return KMIPD_EINVAL;
	}
	dir = config->dir;
	if (path_in(leftover, dir, RESTORE_FILE) != 0) {
		errmsgf(errmsg, errlen, "opening the store in %s: the path is too long", dir);
		return KMIPD_EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->dir = strdup(dir)) == NULL || init_locks(s) != 0) {
		errmsgf(errmsg, errlen, "opening the store in %s: out of memory", dir);
		if (s != NULL)
			free_store(s);
		return KMIPD_ENOMEM;
	}
	s->durable = config->durable;
	s->lazy = config->lazy && !config->durable;
	s->map_size = config->map_size ? config->map_size : DEFAULT_MAP_SIZE;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		errmsgf(errmsg, errlen, "creating directory %s: %s", dir, strerror(errno));
		goto err;
	}
	/* A restore interrupted before its rename leaves its copy behind; data.mdb is whole
	 * either way (the rename is atomic). */
	unlink(leftover);
	rc = s->lazy ? mark_unflushed(s, errmsg, errlen) : 0;
	if (rc == 0)
		rc = open_env(s, errmsg, errlen);
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
	mdb_env_close(s->env);
	free_store(s);
	return rc;
}

bool store_discarded(const struct store *store)
{
	return store != NULL && store->discarded;
}

void store_close(struct store *store)
{
	if (store == NULL)
		return;
	release_pins(store);
	if (store->lazy)
		flush_and_unmark(store);
	mdb_env_close(store->env);
	free_store(store);
}

/* ---- Transactions ---- */

/* Takes @writer: 0, or KMIPD_ESTATE when this thread already holds it. */
static int writer_lock(struct store *s)
{
	int rc = pthread_mutex_lock(&s->writer);

	if (rc == EDEADLK)
		return KMIPD_ESTATE;
	return rc == 0 ? 0 : KMIPD_EIO;
}

static void writer_unlock(struct store *s)
{
	pthread_mutex_unlock(&s->writer);
}

/* Releases what store_txn_begin() took for @t. */
static void txn_unlock(struct store_txn *t)
{
	if (t->write)
		writer_unlock(t->store);
	else
		pthread_rwlock_unlock(&t->store->readers);
}

int store_txn_begin(struct store *store, bool write, struct store_txn **txn)
{
	struct store_txn *t;
	int rc;

	if (store == NULL || txn == NULL)
		return KMIPD_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return KMIPD_ENOMEM;
	t->store = store;
	t->write = write;
	/* A write transaction holds @writer, which store_restore() takes before @readers. */
	if (write)
		rc = writer_lock(store);
	else
		rc = pthread_rwlock_rdlock(&store->readers) == 0 ? 0 : KMIPD_EAGAIN;
	if (rc != 0) {
		free(t);
		return rc;
	}
	if (store->env == NULL)
		rc = KMIPD_ESTATE;
	else
		rc = map_error(mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &t->txn));
	if (rc != 0) {
		txn_unlock(t);
		free(t);
		return rc;
	}
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
	txn_unlock(txn);
	free(txn);
	return map_error(rc);
}

void store_txn_abort(struct store_txn *txn)
{
	if (txn == NULL)
		return;
	if (txn->txn != NULL)
		mdb_txn_abort(txn->txn);
	txn_unlock(txn);
	free(txn);
}

/* Every write goes through here. LMDB leaves a transaction unusable after a failed write
 * (map full, I/O error), so the transaction is aborted at once: its pages are released, and
 * the handle only remembers the error for store_txn_commit() to return. */
/* An LMDB error @rc ends @txn: it is aborted and every later call returns the error. */
static int fail_txn(struct store_txn *txn, int rc)
{
	mdb_txn_abort(txn->txn);
	txn->txn = NULL;
	txn->failed = map_error(rc);
	return txn->failed;
}

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
	return fail_txn(txn, rc);
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
	return fail_txn(txn, rc);
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

/* ---- Recent requests ---- */

int store_request_get(struct store_txn *txn, const uint8_t id[STORE_REQUEST_ID_LEN], uint8_t *value,
		      size_t cap, size_t *len)
{
	MDB_val v;
	int rc = txn_get(txn, txn->store->requests, id, STORE_REQUEST_ID_LEN, &v);

	if (rc != 0)
		return rc;
	if (v.mv_size < 8 || v.mv_size - 8 > cap)
		return KMIPD_ECORRUPT;
	memcpy(value, (const uint8_t *)v.mv_data + 8, v.mv_size - 8);
	*len = v.mv_size - 8;
	return 0;
}

int store_request_put(struct store_txn *txn, const uint8_t id[STORE_REQUEST_ID_LEN], uint64_t index,
		      const uint8_t *value, size_t len)
{
	uint8_t record[8 + STORE_REQUEST_VALUE_MAX];
	uint8_t key[8 + STORE_REQUEST_ID_LEN];
	int rc;

	if (len > STORE_REQUEST_VALUE_MAX)
		return KMIPD_EINVAL;
	put_le(record, index, 8);
	memcpy(record + 8, value, len);
	rc = txn_put(txn, txn->store->requests, id, STORE_REQUEST_ID_LEN, record, 8 + len);
	if (rc != 0)
		return rc;
	order_key(key, index, id);
	return txn_put(txn, txn->store->request_order, key, sizeof(key), "", 0);
}

int store_request_prune(struct store_txn *txn, uint64_t below)
{
	MDB_cursor *cursor;
	MDB_val k, v;
	int rc;

	if (!txn->write)
		return KMIPD_EINVAL;
	if (txn->failed != 0)
		return txn->failed;
	rc = mdb_cursor_open(txn->txn, txn->store->request_order, &cursor);
	if (rc != 0)
		return map_error(rc);
	/* Oldest first: stop at the first request young enough to keep. */
	while ((rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST)) == 0) {
		MDB_val id;
		uint64_t index = 0;

		if (k.mv_size != 8 + STORE_REQUEST_ID_LEN) {
			rc = MDB_CORRUPTED;
			break;
		}
		for (int i = 0; i < 8; i++)
			index = index << 8 | ((const uint8_t *)k.mv_data)[i];
		if (index >= below)
			break;
		id.mv_size = STORE_REQUEST_ID_LEN;
		id.mv_data = (uint8_t *)k.mv_data + 8;
		/* The id's record, unless a later one replaced it. */
		rc = mdb_get(txn->txn, txn->store->requests, &id, &v);
		if (rc == 0 && v.mv_size >= 8 && get_le(v.mv_data, 8) < below)
			rc = mdb_del(txn->txn, txn->store->requests, &id, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		rc = mdb_cursor_del(cursor, 0);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(cursor);
	if (rc == 0 || rc == MDB_NOTFOUND)
		return 0;
	return fail_txn(txn, rc);
}

/* ---- Applied index ---- */

static const char applied_key[] = "applied";

/* Reads the applied index from @meta in @txn (0 when none was recorded). */
static int get_applied(MDB_txn *txn, MDB_dbi meta, uint64_t *index)
{
	MDB_val k = {sizeof(applied_key) - 1, (void *)applied_key};
	MDB_val v;
	int rc;

	rc = mdb_get(txn, meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*index = 0;
		return 0;
	}
	if (rc != 0)
		return map_error(rc);
	if (v.mv_size != 8)
		return KMIPD_ECORRUPT;
	*index = get_le(v.mv_data, 8);
	return 0;
}

int store_applied_index(struct store_txn *txn, uint64_t *index)
{
	if (txn->failed != 0)
		return txn->failed;
	return get_applied(txn->txn, txn->store->meta, index);
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
 * "k" wrapped KEK, "c" created; "d" deleted, "x" the KEK's version when it is not 1, and
 * "ov" / "ok" the retiring KEK's version and wrapped form while there is one. Unknown keys
 * are skipped on reading. */

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
	rc |= msgpack_pack_map(&pk, 6 + (t->deleted != 0) + (t->kek_version > 1) +
					    2 * (t->retiring_version != 0));
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
	if (t->deleted != 0) {
		rc |= msgpack_pack_str_with_body(&pk, "d", 1);
		rc |= msgpack_pack_int64(&pk, t->deleted);
	}
	if (t->kek_version > 1) {
		rc |= msgpack_pack_str_with_body(&pk, "x", 1);
		rc |= msgpack_pack_uint32(&pk, t->kek_version);
	}
	if (t->retiring_version != 0) {
		rc |= msgpack_pack_str_with_body(&pk, "ov", 2);
		rc |= msgpack_pack_uint32(&pk, t->retiring_version);
		rc |= msgpack_pack_str_with_body(&pk, "ok", 2);
		rc |= msgpack_pack_bin_with_body(&pk, t->retiring_kek, t->retiring_kek_len);
	}
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

/* Reads a record's map header and its first pair, "v" (the format, 1..@format_max):
 * @pairs says how many pairs follow. */
static int read_record_start(struct reader *r, int64_t format_max, uint64_t *pairs)
{
	const uint8_t *key;
	size_t key_len;
	int64_t version;
	uint8_t type;

	if (take_header(r, &type, pairs) != 0)
		return KMIPD_ECORRUPT;
	if (type >= 0x80 && type <= 0x8f)
		*pairs = type & 0x0f;
	else if (type != 0xde && type != 0xdf)
		return KMIPD_ECORRUPT;
	if (*pairs == 0 || read_bytes(r, false, &key, &key_len) != 0 ||
	    !key_is(key, key_len, "v") || read_int(r, &version) != 0 || version < 1 ||
	    version > format_max)
		return KMIPD_ECORRUPT;
	(*pairs)--;
	return 0;
}

/* Reads a byte string of at most @max bytes into @arena (an empty one leaves *@out NULL). */
static int read_arena_bytes(struct reader *r, struct arena *arena, size_t max, const uint8_t **out,
			    size_t *len)
{
	const uint8_t *s;
	uint8_t *copy;

	if (read_bytes(r, true, &s, len) != 0 || *len > max)
		return KMIPD_ECORRUPT;
	if (*len == 0)
		return 0;
	copy = arena_alloc(arena, *len);
	if (copy == NULL)
		return KMIPD_ENOMEM;
	memcpy(copy, s, *len);
	*out = copy;
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
	char *root;

	memset(t, 0, sizeof(*t));
	t->root_key_id = "";
	t->kek_version = 1;
	if (read_record_start(&r, TENANT_FORMAT, &pairs) != 0)
		return KMIPD_ECORRUPT;
	for (i = 0; i < pairs; i++) {
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
			rc = read_arena_bytes(&r, arena, UINT32_MAX, &t->wrapped_kek,
					      &t->wrapped_kek_len);
			if (rc == KMIPD_ENOMEM)
				return rc;
		} else if (key_is(key, key_len, "c")) {
			rc = read_int(&r, &t->created);
		} else if (key_is(key, key_len, "d")) {
			rc = read_int(&r, &t->deleted);
		} else if (key_is(key, key_len, "x") || key_is(key, key_len, "ov")) {
			int64_t version;

			rc = read_int(&r, &version);
			if (rc == 0 && (version < 1 || version > UINT32_MAX))
				rc = KMIPD_ECORRUPT;
			if (rc == 0 && key_len == 1)
				t->kek_version = (uint32_t)version;
			else if (rc == 0)
				t->retiring_version = (uint32_t)version;
		} else if (key_is(key, key_len, "ok")) {
			rc = read_arena_bytes(&r, arena, UINT32_MAX, &t->retiring_kek,
					      &t->retiring_kek_len);
			if (rc == KMIPD_ENOMEM)
				return rc;
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

static int collect_fingerprint(const struct store_cert *cert, void *arg)
{
	return buf_append(arg, cert->fingerprint, 64) == 0 ? 0 : KMIPD_ENOMEM;
}

/* Forgets every certificate of @tenant: collected first, since deleting moves the
 * cursor that finds them. */
static int purge_certs(struct store_txn *txn, const char *tenant)
{
	struct buf fps = BUF_INIT;
	struct arena arena;
	char fp[65];
	int rc;

	arena_init(&arena, 2048, 0);
	rc = store_cert_foreach(txn, tenant, &arena, collect_fingerprint, &fps);
	for (size_t at = 0; rc == 0 && at < fps.len; at += 64) {
		memcpy(fp, fps.data + at, 64);
		fp[64] = '\0';
		rc = store_cert_delete(txn, fp);
	}
	arena_free(&arena);
	buf_free(&fps);
	return rc;
}

int store_tenant_purge(struct store_txn *txn, const char *tenant, uint64_t *count)
{
	MDB_dbi dbis[2] = {txn->store->objects, txn->store->names};
	struct key prefix;
	int rc;

	*count = 0;
	if (!txn->write)
		return KMIPD_EINVAL;
	if (txn->failed != 0)
		return txn->failed;
	rc = tenant_prefix(&prefix, tenant);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < 2 && rc == 0; i++) {
		MDB_cursor *cursor;
		MDB_val k = {prefix.len, prefix.bytes}, v;

		rc = mdb_cursor_open(txn->txn, dbis[i], &cursor);
		if (rc != 0)
			break;
		for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
		     rc == 0 && has_prefix(&k, prefix.bytes, prefix.len);
		     rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
			rc = mdb_cursor_del(cursor, 0);
			if (rc != 0)
				break;
			if (i == 0)
				(*count)++;
		}
		mdb_cursor_close(cursor);
		if (rc == MDB_NOTFOUND || rc == 0)
			rc = 0;
	}
	if (rc != 0)
		return fail_txn(txn, rc);
	return purge_certs(txn, tenant);
}

/* ---- Client certificates ---- */

#define CERT_KEY_LEN   (1 + 64)
#define ISSUER_KEY_LEN (1 + HASH_LEN + 64)

static bool fingerprint_valid(const char *fp)
{
	if (fp == NULL || strlen(fp) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((fp[i] >= '0' && fp[i] <= '9') || (fp[i] >= 'a' && fp[i] <= 'f')))
			return false;
	return true;
}

static void cert_key(uint8_t key[CERT_KEY_LEN], const char *fp)
{
	key[0] = 'f';
	memcpy(key + 1, fp, 64);
}

static void issuer_key(uint8_t key[ISSUER_KEY_LEN], const uint8_t subject_hash[HASH_LEN],
		       const char *fp)
{
	key[0] = 'i';
	memcpy(key + 1, subject_hash, HASH_LEN);
	memcpy(key + 1 + HASH_LEN, fp, 64);
}

static int encode_cert(const struct store_cert *c, struct buf *out)
{
	bool ca = c->kind == STORE_CERT_CA;
	msgpack_packer pk;
	int rc = 0;

	msgpack_packer_init(&pk, out, sink_write);
	rc |= msgpack_pack_map(&pk, 6 + (ca ? 1 : 0) + (c->deleted != 0 ? 1 : 0));
	rc |= msgpack_pack_str_with_body(&pk, "v", 1);
	rc |= msgpack_pack_uint32(&pk, CERT_FORMAT);
	rc |= msgpack_pack_str_with_body(&pk, "t", 1);
	rc |= msgpack_pack_str_with_body(&pk, c->tenant, strlen(c->tenant));
	rc |= msgpack_pack_str_with_body(&pk, "c", 1);
	rc |= msgpack_pack_str_with_body(&pk, c->client, strlen(c->client));
	rc |= msgpack_pack_str_with_body(&pk, "k", 1);
	rc |= msgpack_pack_uint32(&pk, (uint32_t)c->kind);
	rc |= msgpack_pack_str_with_body(&pk, "d", 1);
	rc |= msgpack_pack_bin_with_body(&pk, c->der, c->der_len);
	rc |= msgpack_pack_str_with_body(&pk, "a", 1);
	rc |= msgpack_pack_int64(&pk, c->added);
	if (ca) {
		rc |= msgpack_pack_str_with_body(&pk, "s", 1);
		rc |= msgpack_pack_bin_with_body(&pk, c->subject_hash, HASH_LEN);
	}
	if (c->deleted != 0) {
		rc |= msgpack_pack_str_with_body(&pk, "x", 1);
		rc |= msgpack_pack_int64(&pk, c->deleted);
	}
	return rc == 0 ? 0 : KMIPD_ENOMEM;
}

/* Decodes the record @v stored under 'f' @fp; a record that is not one is corrupt. */
static int decode_cert(const char *fp, const MDB_val *v, struct arena *arena, struct store_cert *c)
{
	struct reader r = {v->mv_data, (const uint8_t *)v->mv_data + v->mv_size};
	const uint8_t *key, *s;
	size_t key_len, s_len;
	uint64_t pairs;
	int64_t n;

	memset(c, 0, sizeof(*c));
	memcpy(c->fingerprint, fp, 64);
	if (read_record_start(&r, CERT_FORMAT, &pairs) != 0)
		return KMIPD_ECORRUPT;
	for (uint64_t i = 0; i < pairs; i++) {
		int rc;

		if (read_bytes(&r, false, &key, &key_len) != 0)
			return KMIPD_ECORRUPT;
		if (key_is(key, key_len, "t")) {
			rc = read_text(&r, c->tenant, OBJECT_TENANT_MAX);
		} else if (key_is(key, key_len, "c")) {
			rc = read_text(&r, c->client, STORE_CERT_CLIENT_MAX);
		} else if (key_is(key, key_len, "k")) {
			rc = read_int(&r, &n);
			if (rc == 0 && (n < STORE_CERT_PINNED || n > STORE_CERT_ISSUED))
				rc = KMIPD_ECORRUPT;
			c->kind = (enum store_cert_kind)n;
		} else if (key_is(key, key_len, "d")) {
			rc = read_arena_bytes(&r, arena, STORE_CERT_DER_MAX, &c->der, &c->der_len);
			if (rc == KMIPD_ENOMEM)
				return rc;
		} else if (key_is(key, key_len, "s")) {
			rc = read_bytes(&r, true, &s, &s_len);
			if (rc == 0 && s_len != HASH_LEN)
				rc = KMIPD_ECORRUPT;
			if (rc == 0)
				memcpy(c->subject_hash, s, HASH_LEN);
		} else if (key_is(key, key_len, "a")) {
			rc = read_int(&r, &c->added);
		} else if (key_is(key, key_len, "x")) {
			rc = read_int(&r, &c->deleted);
		} else {
			rc = skip(&r);
		}
		if (rc != 0)
			return KMIPD_ECORRUPT;
	}
	if (r.p != r.end || c->tenant[0] == '\0' || c->client[0] == '\0' || c->kind == 0 ||
	    c->der == NULL)
		return KMIPD_ECORRUPT;
	return 0;
}

int store_cert_get(struct store_txn *txn, const char *fingerprint, struct arena *arena,
		   struct store_cert *out)
{
	uint8_t key[CERT_KEY_LEN];
	MDB_val v;
	int rc;

	if (!fingerprint_valid(fingerprint))
		return KMIPD_ENOT_FOUND;
	cert_key(key, fingerprint);
	rc = txn_get(txn, txn->store->certs, key, sizeof(key), &v);
	return rc != 0 ? rc : decode_cert(fingerprint, &v, arena, out);
}

int store_cert_delete(struct store_txn *txn, const char *fingerprint)
{
	uint8_t key[CERT_KEY_LEN], index[ISSUER_KEY_LEN];
	struct store_cert old;
	struct arena arena;
	int rc;

	if (!txn->write || !fingerprint_valid(fingerprint))
		return KMIPD_EINVAL;
	arena_init(&arena, 1024, 0);
	rc = store_cert_get(txn, fingerprint, &arena, &old);
	if (rc == 0 && old.kind == STORE_CERT_CA) {
		issuer_key(index, old.subject_hash, fingerprint);
		rc = txn_del(txn, txn->store->certs, index, sizeof(index));
	}
	arena_free(&arena);
	if (rc != 0 && rc != KMIPD_ENOT_FOUND)
		return rc;
	cert_key(key, fingerprint);
	return txn_del(txn, txn->store->certs, key, sizeof(key));
}

int store_cert_put(struct store_txn *txn, const struct store_cert *cert)
{
	uint8_t key[CERT_KEY_LEN], index[ISSUER_KEY_LEN];
	struct buf record = BUF_INIT;
	int rc;

	if (!fingerprint_valid(cert->fingerprint) ||
	    text_len(cert->tenant, OBJECT_TENANT_MAX) == 0 ||
	    text_len(cert->client, STORE_CERT_CLIENT_MAX) == 0 || cert->der == NULL ||
	    cert->der_len == 0 || cert->der_len > STORE_CERT_DER_MAX ||
	    cert->kind < STORE_CERT_PINNED || cert->kind > STORE_CERT_ISSUED)
		return KMIPD_EINVAL;
	rc = store_cert_delete(txn, cert->fingerprint); /* and its issuer index entry */
	if (rc == 0)
		rc = encode_cert(cert, &record);
	if (rc == 0) {
		cert_key(key, cert->fingerprint);
		rc = txn_put(txn, txn->store->certs, key, sizeof(key), record.data, record.len);
	}
	if (rc == 0 && cert->kind == STORE_CERT_CA && cert->deleted == 0) {
		issuer_key(index, cert->subject_hash, cert->fingerprint);
		rc = txn_put(txn, txn->store->certs, index, sizeof(index), "", 0);
	}
	buf_free(&record);
	return rc;
}

struct cert_visit {
	struct store_txn *txn;
	const char *tenant;
	struct arena *arena;
	int (*fn)(const struct store_cert *cert, void *arg);
	void *arg;
};

static int visit_cert(const MDB_val *k, const MDB_val *v, void *ctx)
{
	struct cert_visit *cv = ctx;
	struct store_cert c;
	char fp[65];
	int rc;

	if (k->mv_size != CERT_KEY_LEN)
		return KMIPD_ECORRUPT;
	memcpy(fp, (const char *)k->mv_data + 1, 64);
	fp[64] = '\0';
	arena_reset(cv->arena);
	rc = decode_cert(fp, v, cv->arena, &c);
	if (rc != 0)
		return rc;
	if (cv->tenant != NULL && strcmp(c.tenant, cv->tenant) != 0)
		return 0;
	return cv->fn(&c, cv->arg);
}

int store_cert_foreach(struct store_txn *txn, const char *tenant, struct arena *arena,
		       int (*fn)(const struct store_cert *cert, void *arg), void *arg)
{
	struct cert_visit cv = {txn, tenant, arena, fn, arg};
	static const uint8_t prefix[1] = {'f'};

	return scan(txn, txn->store->certs, prefix, 1, prefix, 1, false, visit_cert, &cv);
}

static int visit_issuer(const MDB_val *k, const MDB_val *v, void *ctx)
{
	struct cert_visit *cv = ctx;
	struct store_cert c;
	char fp[65];
	int rc;

	(void)v;
	if (k->mv_size != ISSUER_KEY_LEN)
		return KMIPD_ECORRUPT;
	memcpy(fp, (const char *)k->mv_data + 1 + HASH_LEN, 64);
	fp[64] = '\0';
	arena_reset(cv->arena);
	rc = store_cert_get(cv->txn, fp, cv->arena, &c);
	if (rc == KMIPD_ENOT_FOUND)
		return KMIPD_ECORRUPT; /* an index entry without its record */
	if (rc != 0)
		return rc;
	return cv->fn(&c, cv->arg);
}

int store_cert_issuer_foreach(struct store_txn *txn, const uint8_t subject_hash[32],
			      struct arena *arena,
			      int (*fn)(const struct store_cert *cert, void *arg), void *arg)
{
	struct cert_visit cv = {txn, NULL, arena, fn, arg};
	uint8_t prefix[1 + HASH_LEN];

	prefix[0] = 'i';
	memcpy(prefix + 1, subject_hash, HASH_LEN);
	return scan(txn, txn->store->certs, prefix, sizeof(prefix), prefix, sizeof(prefix), false,
		    visit_issuer, &cv);
}

/* ---- Snapshots ---- */

static size_t snapshot_padding(size_t image_len)
{
	return (8 - (SNAPSHOT_HEADER_LEN + image_len) % 8) % 8;
}

/* The applied index recorded in the LMDB image in the memory file @fd. */
static int image_applied_index(int fd, uint64_t *index)
{
	char path[64];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta;
	int rc;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = mdb_env_create(&env);
	if (rc != 0)
		return map_error(rc);
	rc = mdb_env_set_maxdbs(env, MAX_DBS);
	if (rc == 0)
		rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS,
				  0600);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, "meta", 0, &meta);
		rc = rc == 0 ? get_applied(txn, meta, index) : map_error(rc);
		mdb_txn_abort(txn);
	} else {
		rc = map_error(rc);
	}
	mdb_env_close(env);
	return rc;
}

/* Copies the store into a new memory file @fd and reads the applied index of that copy.
 * The copy is LMDB's own read transaction: writers go on beside it. */
static int copy_env(struct store *s, int *fd, uint64_t *index)
{
	int rc;

	/* With MDB_NOMETASYNC the last meta page may not be on disk yet; the copy reads
	 * through the map, but the reference rule (sync first) costs one fsync per snapshot.
	 * A lazy store flushes nothing before a clean close: the map is the page cache,
	 * which is what the copy reads. */
	rc = s->lazy ? 0 : mdb_env_sync(s->env, 1);
	if (rc != 0)
		return KMIPD_EIO;
	*fd = memfd_create("kmipd-snapshot", MFD_CLOEXEC);
	if (*fd < 0)
		return errno == ENOMEM || errno == EMFILE || errno == ENFILE ? KMIPD_ENOMEM
									     : KMIPD_EIO;
	rc = mdb_env_copyfd2(s->env, *fd, MDB_CP_COMPACT);
	if (rc != 0)
		return rc == ENOMEM || rc == ENOSPC ? KMIPD_ENOMEM : KMIPD_EIO;
	rc = image_applied_index(*fd, index);
	return rc == KMIPD_ENOMEM ? rc : rc != 0 ? KMIPD_EIO : 0;
}

int store_snapshot_map(struct store *store, struct store_image *out)
{
	struct stat st;
	uint64_t index = 0;
	void *map = MAP_FAILED;
	int fd = -1, rc;

	if (store == NULL || out == NULL)
		return KMIPD_EINVAL;
	memset(out, 0, sizeof(*out));
	/* A reader: store_restore() cannot swap the environment under the copy. */
	if (pthread_rwlock_rdlock(&store->readers) != 0)
		return KMIPD_EAGAIN;
	rc = store->env == NULL ? KMIPD_ESTATE : copy_env(store, &fd, &index);
	pthread_rwlock_unlock(&store->readers);
	if (rc != 0)
		goto out;
	if (fstat(fd, &st) != 0) {
		rc = KMIPD_EIO;
		goto out;
	}
	if (st.st_size == 0 || (uint64_t)st.st_size > SIZE_MAX - SNAPSHOT_HEADER_LEN - 8) {
		rc = KMIPD_EIO;
		goto out;
	}
	/* Mapped, not read: the image is handed on without being copied again. */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = errno == ENOMEM ? KMIPD_ENOMEM : KMIPD_EIO;
		goto out;
	}
	out->image = map;
	out->image_len = (size_t)st.st_size;
	out->pad = snapshot_padding(out->image_len);
	out->applied_index = index;
	memcpy(out->header, SNAPSHOT_MAGIC, 8);
	put_le(out->header + 8, SNAPSHOT_VERSION, 4);
	put_le(out->header + 12, 0, 4);
	put_le(out->header + 16, index, 8);
	put_le(out->header + 24, out->image_len, 8);
out:
	if (fd >= 0)
		close(fd); /* the mapping keeps the memory file */
	return rc;
}

void store_snapshot_unmap(struct store_image *image)
{
	if (image != NULL && image->image != NULL)
		munmap(image->image, image->image_len);
	if (image != NULL)
		image->image = NULL;
}

int store_snapshot(struct store *store, struct buf *out, uint64_t *applied_index)
{
	static const uint8_t zeros[8];
	struct store_image image;
	int rc;

	if (out == NULL || applied_index == NULL)
		return KMIPD_EINVAL;
	buf_clear(out);
	rc = store_snapshot_map(store, &image);
	if (rc != 0)
		return rc;
	rc = buf_reserve(out, sizeof(image.header) + image.image_len + image.pad);
	if (rc == 0) {
		buf_append(out, image.header, sizeof(image.header));
		buf_append(out, image.image, image.image_len);
		buf_append(out, zeros, image.pad);
		*applied_index = image.applied_index;
	}
	store_snapshot_unmap(&image);
	return rc;
}

/* Checks the header and returns the applied index and the image's length. */
static int parse_snapshot(const uint8_t *data, size_t len, uint64_t *index, size_t *image_len)
{
	uint64_t version, reserved, n;
	size_t i;

	if (len < SNAPSHOT_HEADER_LEN || memcmp(data, SNAPSHOT_MAGIC, 8) != 0)
		return KMIPD_EMALFORMED;
	version = get_le(data + 8, 4);
	reserved = get_le(data + 12, 4);
	n = get_le(data + 24, 8);
	if (version != SNAPSHOT_VERSION || reserved != 0 || n == 0 ||
	    n > len - SNAPSHOT_HEADER_LEN || len % 8 != 0 ||
	    len - SNAPSHOT_HEADER_LEN - n != snapshot_padding((size_t)n))
		return KMIPD_EMALFORMED;
	for (i = SNAPSHOT_HEADER_LEN + (size_t)n; i < len; i++)
		if (data[i] != 0)
			return KMIPD_EMALFORMED;
	*index = get_le(data + 16, 8);
	*image_len = (size_t)n;
	return 0;
}

static int parse_checkpoint(const uint8_t *r, size_t len, uint64_t *applied, uint64_t *txnid,
			    size_t *psize, uint64_t *inode);

int store_snapshot_index(const uint8_t *data, size_t len, uint64_t *applied_index)
{
	size_t image_len;

	if ((data == NULL && len > 0) || applied_index == NULL)
		return KMIPD_EINVAL;
	if (data == NULL)
		return KMIPD_EMALFORMED;
	if (store_snapshot_is_checkpoint(data, len)) {
		uint64_t txnid, inode;
		size_t psize;

		return parse_checkpoint(data, len, applied_index, &txnid, &psize, &inode);
	}
	return parse_snapshot(data, len, applied_index, &image_len);
}

/* Writes @len bytes to a new file @path and fsyncs it. 0 or -errno. */
static int write_file(const char *path, const uint8_t *data, size_t len)
{
	size_t done = 0;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (rc == 0 && done < len) {
		n = write(fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else
			done += (size_t)n;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Opens the copied image at @path read-only, on its own, and checks that it is a store this
 * kmipd reads, whose applied index is @index and whose pages all lie inside its @len
 * bytes (LMDB never reads a page past the last one its meta page names). */
static int check_image(const struct store *s, const char *path, size_t len, uint64_t index,
		       char *errmsg, size_t errlen)
{
	MDB_val k = {sizeof(FORMAT_KEY) - 1, (void *)FORMAT_KEY};
	MDB_env *env;
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn = NULL;
	MDB_dbi meta;
	MDB_val v;
	uint64_t format, found;
	int rc;

	rc = mdb_env_create(&env);
	if (rc != 0) {
		errmsgf(errmsg, errlen, "checking the snapshot copy %s: %s", path,
			mdb_strerror(rc));
		return map_error(rc);
	}
	rc = mdb_env_set_mapsize(env, s->map_size);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(env, MAX_DBS);
	if (rc == 0)
		rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
	if (rc == 0)
		rc = mdb_env_info(env, &info);
	if (rc == 0)
		rc = mdb_env_stat(env, &st);
	if (rc == 0 && ((uint64_t)info.me_last_pgno + 1) * st.ms_psize > len) {
		errmsgf(errmsg, errlen, "the snapshot's image is cut short (%zu bytes)", len);
		rc = KMIPD_EMALFORMED;
		goto out;
	}
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", 0, &meta);
	if (rc == 0)
		rc = mdb_get(txn, meta, &k, &v);
	if (rc != 0) {
		errmsgf(errmsg, errlen, "the snapshot's image is not a kmipd store: %s",
			mdb_strerror(rc));
		rc = rc == ENOMEM ? KMIPD_ENOMEM : KMIPD_EMALFORMED;
		goto out;
	}
	format = v.mv_size == 4 ? get_le(v.mv_data, 4) : 0;
	if (format == 0) {
		errmsgf(errmsg, errlen, "the snapshot's image has a damaged format record");
		rc = KMIPD_EMALFORMED;
		goto out;
	}
	if (format > STORE_FORMAT) {
		errmsgf(errmsg, errlen,
			"the snapshot's image has store format %llu; this kmipd reads formats up "
			"to %d",
			(unsigned long long)format, STORE_FORMAT);
		rc = KMIPD_EUNSUPPORTED;
		goto out;
	}
	rc = get_applied(txn, meta, &found);
	if (rc != 0 || found != index) {
		errmsgf(errmsg, errlen,
			"the snapshot's header says applied index %llu but its image holds %llu",
			(unsigned long long)index, (unsigned long long)found);
		rc = KMIPD_EMALFORMED;
	}
out:
	mdb_txn_abort(txn); /* accepts NULL */
	mdb_env_close(env);
	return rc;
}

/* swap_env(), with @readers and @writer held. */
static int swap_files(struct store *s, const char *copy, char *errmsg, size_t errlen)
{
	char data[PATH_MAX], lock[PATH_MAX];
	int rc, rc_open;

	if (path_in(data, s->dir, "data.mdb") != 0 || path_in(lock, s->dir, "lock.mdb") != 0)
		return -ENAMETOOLONG; /* cannot happen: the copy's longer name fitted */
	release_pins(s);
	mdb_env_close(s->env);
	s->env = NULL;
	s->map = NULL;
	if (rename(copy, data) != 0) {
		rc = -errno;
		errmsgf(errmsg, errlen, "renaming %s to %s: %s", copy, data, strerror(-rc));
		unlink(copy);
	} else {
		rc = fsync_parent_dir(data);
		if (rc != 0)
			errmsgf(errmsg, errlen,
				"syncing %s after renaming the restored store into place: %s",
				s->dir, kmipd_strerror(rc));
		/* The old lock file describes the old data file (its last transaction id, its
		 * readers); nobody else has it open, so a fresh one is made. */
		unlink(lock);
	}
	rc_open = open_env(s, errmsg, errlen);
	return rc_open != 0 ? rc_open : rc;
}

/* Closes the environment, puts @copy in place of data.mdb and reopens. @writer is held;
 * @readers is taken here: read transactions on other threads finish theirs first, and new
 * ones wait until the new environment is open. */
static int swap_env(struct store *s, const char *copy, char *errmsg, size_t errlen)
{
	int rc;

	pthread_rwlock_wrlock(&s->readers);
	rc = swap_files(s, copy, errmsg, errlen);
	pthread_rwlock_unlock(&s->readers);
	return rc;
}

/* Takes the writer lock to replace the store's file (@doing names that in @errmsg:
 * "restoring", "rolling back"), and keeps it on success. KMIPD_ESTATE when a write
 * transaction is open on this thread or the store is closed; KMIPD_EIO when the lock
 * fails. */
static int writer_lock_open(struct store *s, const char *doing, char *errmsg, size_t errlen)
{
	int rc = writer_lock(s);

	if (rc != 0) {
		errmsgf(errmsg, errlen, "%s the store in %s: %s", doing, s->dir,
			rc == KMIPD_ESTATE ? "a write transaction is open on this thread"
					   : "its lock failed");
		return rc;
	}
	if (s->env == NULL) {
		writer_unlock(s);
		errmsgf(errmsg, errlen, "%s the store in %s: the store is closed", doing, s->dir);
		return KMIPD_ESTATE;
	}
	return 0;
}

int store_restore(struct store *store, const uint8_t *data, size_t len, char *errmsg, size_t errlen)
{
	char copy[PATH_MAX];
	size_t image_len;
	uint64_t index;
	int rc;

	errmsgf(errmsg, errlen, "%s", "");
	if (store == NULL || (data == NULL && len > 0)) {
		errmsgf(errmsg, errlen, "restoring the store: no store or no snapshot given");
		return KMIPD_EINVAL;
	}
	rc = data == NULL ? KMIPD_EMALFORMED : parse_snapshot(data, len, &index, &image_len);
	if (rc != 0) {
		errmsgf(errmsg, errlen,
			"restoring the store in %s: the snapshot's header is malformed (%zu bytes)",
			store->dir, len);
		return rc;
	}
	rc = writer_lock_open(store, "restoring", errmsg, errlen);
	if (rc != 0)
		return rc;
	path_in(copy, store->dir, RESTORE_FILE); /* fitted at open */
	rc = write_file(copy, data + SNAPSHOT_HEADER_LEN, image_len);
	if (rc != 0) {
		errmsgf(errmsg, errlen, "writing %s: %s", copy, kmipd_strerror(rc));
		unlink(copy);
		goto out;
	}
	rc = check_image(store, copy, image_len, index, errmsg, errlen);
	if (rc != 0) {
		unlink(copy);
		goto out;
	}
	rc = swap_env(store, copy, errmsg, errlen);
out:
	writer_unlock(store);
	return rc;
}

/* ---- Checkpoints (see store.h) ---- */

#define CHECKPOINT_MAGIC   "KMIPDCKP"
#define CHECKPOINT_VERSION 1
/* LMDB 0.9's meta page: a 16-byte page header, then MDB_meta. Its fields are read here by
 * offset; store_checkpoint() checks them against the commit it pinned, so a library with
 * another layout makes checkpoints fail (KMIPD_EUNSUPPORTED), never wrong. */
#define LMDB_META_AT	  16
#define LMDB_META_LEN	  136
#define LMDB_MAGIC	  0xBEEFC0DEu
#define LMDB_DATA_VERSION 1
#define LMDB_P_META	  0x08
#define META_PSIZE	  24  /* mm_dbs[FREE_DBI].md_pad */
#define META_LAST_PG	  120 /* mm_last_pg */
#define META_TXNID	  128 /* mm_txnid */
/* The record: magic, version, page size, applied index, transaction id, inode, meta. */
#define CKP_PSIZE   12
#define CKP_APPLIED 16
#define CKP_TXNID   24
#define CKP_INODE   32
#define CKP_META    40
_Static_assert(CKP_META + LMDB_META_LEN == STORE_CHECKPOINT_LEN, "the record's layout");
_Static_assert(STORE_CHECKPOINT_LEN % 8 == 0, "libraft's buffers are whole words");

/* A meta page's header: its page number, no padding, the flag P_META, nothing else. */
static void meta_header(uint8_t header[LMDB_META_AT], unsigned n)
{
	memset(header, 0, LMDB_META_AT);
	put_le(header, n, 8);
	put_le(header + 10, LMDB_P_META, 2);
}

/* Reads LMDB's meta page @n (0 or 1, @psize bytes each) of @fd into @meta; KMIPD_EUNSUPPORTED
 * when its header is not the one LMDB 0.9 writes. */
static int read_meta(int fd, unsigned n, size_t psize, uint8_t meta[LMDB_META_LEN])
{
	uint8_t page[LMDB_META_AT + LMDB_META_LEN], header[LMDB_META_AT];
	ssize_t got = pread(fd, page, sizeof(page), (off_t)(n * psize));

	if (got != (ssize_t)sizeof(page))
		return KMIPD_EIO;
	meta_header(header, n);
	if (memcmp(page, header, LMDB_META_AT) != 0)
		return KMIPD_EUNSUPPORTED;
	memcpy(meta, page + LMDB_META_AT, LMDB_META_LEN);
	return 0;
}

/* A meta page of this LMDB's layout, of page size @psize, for commit @txnid. */
static bool meta_is(const uint8_t meta[LMDB_META_LEN], size_t psize, uint64_t txnid)
{
	return get_le(meta, 4) == LMDB_MAGIC && get_le(meta + 4, 4) == LMDB_DATA_VERSION &&
	       get_le(meta + META_PSIZE, 4) == psize && get_le(meta + META_TXNID, 8) == txnid;
}

int store_checkpoint_pin(struct store *s, uint8_t record[STORE_CHECKPOINT_LEN],
			 uint64_t *applied_index)
{
	char data[PATH_MAX];
	uint8_t meta[2][LMDB_META_LEN];
	MDB_txn *pin = NULL;
	MDB_stat st;
	struct stat fst;
	uint64_t txnid = 0, applied = 0;
	int fd = -1, which, rc;

	if (s == NULL || record == NULL || applied_index == NULL)
		return KMIPD_EINVAL;
	if (path_in(data, s->dir, "data.mdb") != 0)
		return KMIPD_EINVAL;
	if (pthread_rwlock_rdlock(&s->readers) != 0)
		return KMIPD_EAGAIN;
	rc = s->env == NULL ? KMIPD_ESTATE : map_error(mdb_env_stat(s->env, &st));
	if (rc == 0) {
		fd = open(data, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 || fstat(fd, &fst) != 0 ? KMIPD_EIO : 0;
	}
	/* The pin and the meta page together, with no commit between them: the commit's meta
	 * page is overwritten two commits later. */
	if (rc == 0)
		rc = writer_lock(s);
	if (rc == 0) {
		rc = map_error(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &pin));
		if (rc == 0) {
			txnid = mdb_txn_id(pin);
			rc = get_applied(pin, s->meta, &applied);
		}
		if (rc == 0)
			rc = read_meta(fd, 0, st.ms_psize, meta[0]);
		if (rc == 0)
			rc = read_meta(fd, 1, st.ms_psize, meta[1]);
		writer_unlock(s);
	}
	which = rc != 0				       ? -1
		: meta_is(meta[0], st.ms_psize, txnid) ? 0
		: meta_is(meta[1], st.ms_psize, txnid) ? 1
						       : -1;
	if (rc == 0 && which < 0)
		rc = KMIPD_EUNSUPPORTED;
	if (rc == 0) {
		memset(record, 0, STORE_CHECKPOINT_LEN);
		memcpy(record, CHECKPOINT_MAGIC, 8);
		put_le(record + 8, CHECKPOINT_VERSION, 4);
		put_le(record + CKP_PSIZE, st.ms_psize, 4);
		put_le(record + CKP_APPLIED, applied, 8);
		put_le(record + CKP_TXNID, txnid, 8);
		put_le(record + CKP_INODE, (uint64_t)fst.st_ino, 8);
		memcpy(record + CKP_META, meta[which], LMDB_META_LEN);
		*applied_index = applied;
		mdb_txn_abort(s->pinning); /* one left unsettled: not written */
		s->pinning = pin;
		pin = NULL;
	}
	mdb_txn_abort(pin);
	pthread_rwlock_unlock(&s->readers);
	if (fd >= 0)
		close(fd);
	return rc;
}

int store_checkpoint_flush(struct store *s)
{
	int rc;

	if (s == NULL)
		return KMIPD_EINVAL;
	if (pthread_rwlock_rdlock(&s->readers) != 0)
		return KMIPD_EAGAIN;
	/* The pinned commit's pages reach the disk; later commits cannot overwrite them. */
	rc = s->env == NULL	       ? KMIPD_ESTATE
	     : s->pinning == NULL      ? KMIPD_ESTATE
	     : mdb_env_sync(s->env, 1) ? KMIPD_EIO
				       : 0;
	pthread_rwlock_unlock(&s->readers);
	return rc;
}

int store_checkpoint(struct store *s, uint8_t record[STORE_CHECKPOINT_LEN], uint64_t *applied_index)
{
	int rc = store_checkpoint_pin(s, record, applied_index);

	return rc != 0 ? rc : store_checkpoint_flush(s);
}

int store_write_back(struct store *s)
{
	int fd = -1, rc;

	if (s == NULL)
		return KMIPD_EINVAL;
	if (pthread_rwlock_rdlock(&s->readers) != 0)
		return KMIPD_EAGAIN;
	rc = s->env == NULL ? KMIPD_ESTATE : map_error(mdb_env_get_fd(s->env, &fd));
	if (rc == 0 && sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) != 0)
		rc = -errno;
	pthread_rwlock_unlock(&s->readers);
	return rc;
}

/* Where the environment's map starts in this process. LMDB keeps the address to itself
 * (mdb_env_info() reports it only for MDB_FIXEDMAP), but a record it returns points into the
 * map, into a page that begins with its page number (LMDB 0.9's page header): that page's
 * address less its number of pages is the start. Accepted only if the start holds meta page
 * 0 (its header, then LMDB's magic), read only once mincore() has said that it is mapped:
 * with a library of another layout the store finds no map and unmaps nothing. NULL then. */
static uint8_t *find_map(struct store *s)
{
	MDB_val k = {sizeof(FORMAT_KEY) - 1, (void *)FORMAT_KEY}, v;
	uint8_t header[LMDB_META_AT], *map = NULL, *start;
	unsigned char resident;
	MDB_envinfo info;
	MDB_stat stat;
	MDB_txn *txn;
	uintptr_t page;
	uint64_t pgno;

	if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &stat) != 0 ||
	    mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return NULL;
	if (mdb_get(txn, s->meta, &k, &v) == 0) {
		page = (uintptr_t)v.mv_data & ~(uintptr_t)(stat.ms_psize - 1);
		pgno = get_le((const uint8_t *)page, 8);
		start = (uint8_t *)(page - pgno * stat.ms_psize);
		meta_header(header, 0);
		if (pgno > 0 && pgno <= info.me_last_pgno && pgno * stat.ms_psize <= page &&
		    mincore(start, stat.ms_psize, &resident) == 0 &&
		    memcmp(start, header, LMDB_META_AT) == 0 &&
		    get_le(start + LMDB_META_AT, 4) == LMDB_MAGIC)
			map = start;
	}
	mdb_txn_abort(txn);
	return map;
}

int store_unmap(struct store *s, unsigned part, unsigned parts)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), pages, from, to;
	struct stat st;
	int fd, rc = 0;

	if (s == NULL || parts == 0 || part >= parts)
		return KMIPD_EINVAL;
	if (pthread_rwlock_rdlock(&s->readers) != 0)
		return KMIPD_EAGAIN;
	/* What can be mapped is the file, to its end: reads map the pages around the one they
	 * fault on, beyond LMDB's last page too. */
	if (s->env == NULL || s->map == NULL || mdb_env_get_fd(s->env, &fd) != 0) {
		rc = KMIPD_ESTATE;
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	pages = ((size_t)st.st_size + page - 1) / page;
	if (pages * page > s->map_size)
		pages = s->map_size / page;
	from = pages * part / parts;
	to = pages * (part + 1) / parts;
	if (to > from && madvise(s->map + from * page, (to - from) * page, MADV_DONTNEED) != 0)
		rc = -errno;
out:
	pthread_rwlock_unlock(&s->readers);
	return rc;
}

void store_checkpoint_settle(struct store *s, bool kept)
{
	if (s == NULL)
		return;
	if (kept) {
		mdb_txn_abort(s->pinned);
		s->pinned = s->pinning;
	} else {
		mdb_txn_abort(s->pinning);
	}
	s->pinning = NULL;
}

/* The record's fields, checked: 0 or KMIPD_EMALFORMED. */
static int parse_checkpoint(const uint8_t *r, size_t len, uint64_t *applied, uint64_t *txnid,
			    size_t *psize, uint64_t *inode)
{
	if (r == NULL || len != STORE_CHECKPOINT_LEN || memcmp(r, CHECKPOINT_MAGIC, 8) != 0 ||
	    get_le(r + 8, 4) != CHECKPOINT_VERSION)
		return KMIPD_EMALFORMED;
	*psize = (size_t)get_le(r + CKP_PSIZE, 4);
	*applied = get_le(r + CKP_APPLIED, 8);
	*txnid = get_le(r + CKP_TXNID, 8);
	*inode = get_le(r + CKP_INODE, 8);
	if (*psize < 512 || *psize > 65536 || !meta_is(r + CKP_META, *psize, *txnid))
		return KMIPD_EMALFORMED;
	return 0;
}

bool store_snapshot_is_checkpoint(const uint8_t *data, size_t len)
{
	return data != NULL && len >= 8 && memcmp(data, CHECKPOINT_MAGIC, 8) == 0;
}

/* Writes the checkpoint's meta page, with its header, over both meta pages of the file @fd
 * and flushes it. */
static int write_meta(int fd, const uint8_t meta[LMDB_META_LEN], size_t psize)
{
	uint8_t page[LMDB_META_AT + LMDB_META_LEN];

	memcpy(page + LMDB_META_AT, meta, LMDB_META_LEN);
	for (unsigned n = 0; n < 2; n++) {
		meta_header(page, n);
		if (pwrite(fd, page, sizeof(page), (off_t)(n * psize)) != (ssize_t)sizeof(page))
			return errno != 0 ? -errno : KMIPD_EIO;
	}
	return fdatasync(fd) == 0 ? 0 : -errno;
}

int store_rollback(struct store *s, const uint8_t *record, size_t len, char *errmsg, size_t errlen)
{
	char aside[PATH_MAX];
	uint64_t applied, txnid, inode, last_pg;
	size_t psize;
	struct stat st;
	int fd = -1, rc;

	errmsgf(errmsg, errlen, "%s", "");
	if (s == NULL || parse_checkpoint(record, len, &applied, &txnid, &psize, &inode) != 0) {
		errmsgf(errmsg, errlen, "rolling the store back: the checkpoint is malformed");
		return s == NULL ? KMIPD_EINVAL : KMIPD_EMALFORMED;
	}
	last_pg = get_le(record + CKP_META + META_LAST_PG, 8);
	path_in(aside, s->dir, "data.mdb.unflushed"); /* fitted at open */
	rc = writer_lock_open(s, "rolling back", errmsg, errlen);
	if (rc != 0)
		return rc;
	fd = open(aside, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? KMIPD_ENOT_FOUND : -errno;
		errmsgf(errmsg, errlen, "no store was set aside to roll back (%s: %s)", aside,
			strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_ino != inode ||
	    (uint64_t)st.st_size < (last_pg + 1) * psize) {
		errmsgf(errmsg, errlen,
			"%s is not the store the checkpoint at index %llu was taken of", aside,
			(unsigned long long)applied);
		rc = KMIPD_EMALFORMED;
		goto out;
	}
	rc = write_meta(fd, record + CKP_META, psize);
	if (rc != 0) {
		errmsgf(errmsg, errlen, "writing the checkpoint's meta page into %s: %s", aside,
			kmipd_strerror(rc));
		goto out;
	}
	close(fd);
	fd = -1;
	rc = check_image(s, aside, (size_t)st.st_size, applied, errmsg, errlen);
	if (rc != 0)
		goto out;
	rc = swap_env(s, aside, errmsg, errlen);
	if (rc == 0)
		s->discarded = false;
out:
	if (fd >= 0)
		close(fd);
	writer_unlock(s);
	return rc;
}
