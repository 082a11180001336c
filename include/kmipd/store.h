/* The node's persistent state in one LMDB environment: tenants, managed objects and their
 * indexes, and the Raft index the state reflects.
 *
 * One writer: only the state machine's apply path (on the raft loop thread) opens write
 * transactions. Readers on any thread open read transactions (the environment is opened
 * with MDB_NOTLS) and must keep them short: a long reader makes the file grow.
 *
 * Databases (DBIs): meta (format version, applied index), tenants (name -> record),
 * objects (tenant NUL uid -> object record), names (tenant NUL SHA-256 of a Name attribute's
 * encoded value, uid -> empty, for Locate by Name). The store treats attribute values as
 * opaque bytes: it knows no KMIP wire format. Object keys start with the tenant, so reading
 * another tenant's object is simply "not found". */
#ifndef KMIPD_STORE_H
#define KMIPD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/arena.h"
#include "kmipd/object.h"

struct buf;
struct store;
struct store_txn;

struct store_config {
	const char *dir; /* created if missing (0700); holds data.mdb and lock.mdb */
	size_t map_size; /* address space reserved for the map; 0 = 64 GiB */
	bool durable;	 /* true: the store syncs after each commit, so a commit that returned
			  * survives a crash on its own. false: the Raft log is the durable
			  * record and replay repairs LMDB (see @lazy). */
	bool lazy;	 /* false: MDB_NOMETASYNC, a crash can undo the last commit, never
			  * corrupt the file. true: MDB_NOSYNC, commits are not flushed at
			  * all; before the first one the store records the machine's boot
			  * id in @dir/unflushed (flushed), and removes it once a clean close
			  * has flushed everything. A store found with the mark of another
			  * boot (the machine stopped with pages unwritten: the file may be
			  * torn) is set aside as data.mdb.unflushed and opened empty, for
			  * Raft to refill from its snapshot and log (store_discarded()).
			  * A process that merely crashed leaves its pages with the kernel:
			  * its store is kept. Ignored with @durable. */
};

/* Opens (creating if needed) the environment in @config->dir, checks its format version and
 * clears stale reader slots. On failure returns a negative code and writes a sentence
 * naming the path and the cause into @errmsg (@errlen bytes). */
int store_open(struct store **out, const struct store_config *config, char *errmsg, size_t errlen);

/* true when store_open() set aside a store that a machine crash may have torn (see
 * store_config.lazy) and opened an empty one in its place. */
bool store_discarded(const struct store *store);

/* Closes the environment. No transaction may be open. With store_config.lazy, flushes
 * it first and removes the unflushed mark if that succeeded. */
void store_close(struct store *store);

/* Transactions. A read transaction sees one consistent snapshot; a write transaction is
 * only ever opened by the apply path. Everything read through a transaction is copied into
 * the caller's arena, so results outlive the transaction.
 *
 * A transaction is ended on the thread that began it. A read transaction waits while
 * store_restore() swaps the environment (and a restore waits for open read transactions to
 * end), so a thread must not begin a second read transaction while it holds one: with a
 * restore waiting between the two, that thread would wait for itself. A write transaction
 * excludes store_restore(); beginning one on a thread that already has one open returns
 * KMIPD_ESTATE. After a failed restore (see there) every call returns
 * KMIPD_ESTATE. */
int store_txn_begin(struct store *store, bool write, struct store_txn **txn);
/* Commits a write transaction (a read transaction just ends). 0, KMIPD_ENO_SPACE (the map
 * is full: nothing was written) or KMIPD_EIO. The handle is gone either way.
 * A write that fails inside the transaction (KMIPD_ENO_SPACE, KMIPD_EIO, ...) ends it at
 * once, as LMDB requires: later calls on the handle return that error, and commit writes
 * nothing and returns it. The store stays usable for new transactions. */
int store_txn_commit(struct store_txn *txn);
/* Ends a transaction without writing anything. */
void store_txn_abort(struct store_txn *txn);

/* The Raft index of the last command applied (0 for a new store). */
int store_applied_index(struct store_txn *txn, uint64_t *index);
/* Records @index as applied, in the same write transaction as the change it belongs to. */
int store_set_applied_index(struct store_txn *txn, uint64_t index);

/* Raft snapshots.
 *
 * A snapshot is the whole LMDB state as one byte string: a 32-byte header (the magic
 * "KMIPDSNP", a format version (uint32, 1), a reserved uint32 (0), the applied index
 * (uint64) and the image length (uint64), all little-endian), then a compacted copy of the
 * LMDB file (mdb_env_copyfd2 with MDB_CP_COMPACT), then 0-7 zero bytes so that the total
 * length is a multiple of 8 (libraft's rule for buffers). The whole snapshot is held in
 * memory, on both sides. */

/* Writes a snapshot of the store into @out (its previous contents are dropped; on error it
 * is left empty) and its applied index into @applied_index. Any thread may take one, beside
 * readers and the writer: LMDB copies the committed state in its own read transaction, and
 * the applied index is read from that copy, so image and index always agree (a write
 * transaction still open is not in it). 0, KMIPD_ENOMEM, KMIPD_EIO, KMIPD_ESTATE (a
 * failed restore closed the store) or KMIPD_EINVAL. */
int store_snapshot(struct store *store, struct buf *out, uint64_t *applied_index);

/* The same snapshot in three pieces, to be written one after the other, without copying
 * the image (the FSM hands them to libraft as they are): @header, the LMDB image mapped
 * read-only from a memory file, and @pad zero bytes. Same rules and errors as
 * store_snapshot(); release with store_snapshot_unmap(). */
struct store_image {
	uint8_t header[32];
	uint8_t *image;
	size_t image_len;
	size_t pad;
	uint64_t applied_index;
};
int store_snapshot_map(struct store *store, struct store_image *out);
void store_snapshot_unmap(struct store_image *image);

/* Checks the header of the snapshot @data (@len bytes: magic, version 1, lengths, zero
 * padding; or a checkpoint record) and reads its applied index, without looking at the
 * image or touching any store: the FSM's restore compares it with the local store's index
 * (at start-up the local store is usually newer and is kept). 0, KMIPD_EMALFORMED or
 * KMIPD_EINVAL. */
int store_snapshot_index(const uint8_t *data, size_t len, uint64_t *applied_index);

/* Replaces the store's entire contents with the snapshot @data (@len bytes; not kept, the
 * caller still owns it). On the writer's thread, which must have no transaction open
 * (KMIPD_ESTATE for a write transaction; an open read transaction on this thread would
 * deadlock).
 *
 * The image is written to DIR/data.mdb.restore (fsynced) and checked (it opens as LMDB, its
 * format is one this kmipd reads, its applied index is the header's). Then, once read
 * transactions on other threads have ended (new ones wait), the environment is closed,
 * data.mdb.restore is renamed over data.mdb (the directory fsynced), lock.mdb is removed
 * and the environment is reopened with the same settings and checks as store_open().
 *
 * Errors: KMIPD_EMALFORMED (a bad header or an image that is not a store),
 * KMIPD_EUNSUPPORTED (a newer store format), KMIPD_ESTATE, or an I/O error writing the
 * copy (-errno): the store is unchanged and usable. A failed rename also reopens the
 * unchanged store. Only two failures come after the swap, both fatal for the caller: the
 * directory could not be fsynced (the snapshot's contents are in place but may not survive
 * a crash), or the environment did not reopen (the store is closed: every later call
 * returns KMIPD_ESTATE). Each failure is described in @errmsg (@errlen bytes). */
int store_restore(struct store *store, const uint8_t *data, size_t len, char *errmsg,
		  size_t errlen);

/* Checkpoints: a snapshot that is not a copy.
 *
 * The store is already on disk; what a snapshot has to give Raft is a point it can truncate
 * its log at and still rebuild the store from. A checkpoint names one LMDB commit and keeps
 * its pages from being reused until the next checkpoint has been written: the pages are
 * flushed, a read transaction pins them (LMDB reuses only pages freed before the oldest
 * reader's commit), and the record below carries a copy of that commit's meta page. A
 * process that crashes keeps every page with the kernel, and its store is kept. A machine
 * that stops may leave later commits torn (store_config.lazy): the file is set aside and
 * store_rollback() writes the checkpoint's meta page back into it, which makes LMDB open it
 * at that commit, whose pages are whole. Raft's log after the checkpoint does the rest.
 *
 * The record (STORE_CHECKPOINT_LEN bytes, little-endian): the magic "KMIPDCKP", a format
 * version (uint32, 1), LMDB's page size (uint32), the applied index and the LMDB
 * transaction id of the commit (uint64 each), the data file's inode number (uint64: a
 * roll-back only touches the file the checkpoint was taken of), and LMDB's meta page
 * contents (LMDB 0.9's MDB_meta, 136 bytes, checked against the commit when taken). A
 * checkpoint never leaves its node: a node sent a snapshot is sent a copy of the store
 * (store_snapshot()). */
#define STORE_CHECKPOINT_LEN 176

/* Takes a checkpoint of the latest commit into @record and its applied index into
 * @applied_index: store_checkpoint_pin(), then store_checkpoint_flush(). 0, KMIPD_EIO
 * (the flush failed: no record), KMIPD_EUNSUPPORTED (an LMDB whose meta page this kmipd
 * does not know), KMIPD_ESTATE or KMIPD_EINVAL. */
int store_checkpoint(struct store *store, uint8_t record[STORE_CHECKPOINT_LEN],
		     uint64_t *applied_index);

/* The first half of store_checkpoint(): pins the latest commit and reads its meta page
 * into @record. It holds up writers while it runs (a read transaction's begin and two
 * page reads, no I/O to wait for): run it where a wait for the CPU cannot stall them,
 * never on a thread inside a write transaction. The pin stays pending until
 * store_checkpoint_settle(); @record is a checkpoint only once store_checkpoint_flush()
 * has returned 0. One checkpoint at a time, never beside store_restore(). */
int store_checkpoint_pin(struct store *store, uint8_t record[STORE_CHECKPOINT_LEN],
			 uint64_t *applied_index);

/* The second half: flushes the data file (fdatasync), with no lock a writer needs, so it
 * may run on any thread at any priority. 0, KMIPD_EIO, or KMIPD_ESTATE (nothing pinned). */
int store_checkpoint_flush(struct store *store);

/* The record of the last store_checkpoint() was written durably (@kept: its pin replaces
 * the previous checkpoint's, whose pages may now be reused) or not (its pin is dropped,
 * the previous checkpoint stays pinned). */
void store_checkpoint_settle(struct store *store, bool kept);

/* Starts writing the store's dirty pages to disk without waiting for them
 * (sync_file_range, SYNC_FILE_RANGE_WRITE), so that the next checkpoint's flush finds
 * few left: between checkpoints the pinned pages are never rewritten, so writing them
 * early costs nothing more. Any thread. 0, -errno or KMIPD_ESTATE. */
int store_write_back(struct store *store);

/* Unmaps part @part of @parts (0 <= @part < @parts) of the store's pages from this
 * process: madvise(MADV_DONTNEED) on LMDB's read-only shared map drops the page-table
 * entries and nothing else (the page cache keeps every page; the next read maps it again).
 * Called for each part in turn, it bounds the mapped pages to those read since their part
 * was last unmapped. Kernel memory scanners pay per mapping of each page they look at: on
 * this project's test machines, the kernel's access monitor (DAMON) took 15-25 ms of a CPU
 * every half second in non-preemptible code with a few hundred megabytes of store mapped,
 * and every client of the node waited that long. Any thread. 0, -errno or KMIPD_ESTATE. */
int store_unmap(struct store *store, unsigned part, unsigned parts);

/* true when @data (@len bytes) is a checkpoint record, not a store image; its applied
 * index is read by store_snapshot_index(). */
bool store_snapshot_is_checkpoint(const uint8_t *data, size_t len);

/* Brings back the store a machine crash set aside (DIR/data.mdb.unflushed) at the
 * checkpoint @record (@len bytes): checks that the file is the one the checkpoint was
 * taken of and long enough, writes the checkpoint's meta page into both of LMDB's meta
 * pages (fsynced), checks that it opens at the checkpoint's applied index, and puts it in
 * place of data.mdb as store_restore() does. On the writer's thread, with no transaction
 * open. KMIPD_ENOT_FOUND (no file set aside), KMIPD_EMALFORMED (a bad record, or a file
 * that is not the checkpoint's), or the errors of store_restore(); each described in
 * @errmsg. */
int store_rollback(struct store *store, const uint8_t *record, size_t len, char *errmsg,
		   size_t errlen);

/* Tenants. */
struct store_tenant {
	char name[OBJECT_TENANT_MAX + 1];
	char provider[16];	    /* "local", "keyprotect", "hpcs" */
	const char *root_key_id;    /* provider's id of the root key ("" for local) */
	const uint8_t *wrapped_kek; /* the current KEK as the provider wrapped it */
	size_t wrapped_kek_len;
	int64_t created;
	int64_t deleted;      /* 0: live; else when it was deleted (its KEK and objects are gone) */
	uint32_t kek_version; /* of the current KEK: 1 (also when 0 is written), then one more
			       * per rotation */
	/* The KEK before the current one while objects sealed under it are re-sealed:
	 * version 0 when there is none. */
	uint32_t retiring_version;
	const uint8_t *retiring_kek;
	size_t retiring_kek_len;
};

/* Reads tenant @name into @out (strings copied into @arena). 0 or KMIPD_ENOT_FOUND. */
int store_tenant_get(struct store_txn *txn, const char *name, struct arena *arena,
		     struct store_tenant *out);
/* Creates or replaces a tenant record. */
int store_tenant_put(struct store_txn *txn, const struct store_tenant *tenant);
/* Calls @fn for every tenant in name order; @fn returns non-zero to stop (that value is
 * returned). */
int store_tenant_foreach(struct store_txn *txn, struct arena *arena,
			 int (*fn)(const struct store_tenant *tenant, void *arg), void *arg);

/* Objects. */

/* Reads object @uid of @tenant. 0, or KMIPD_ENOT_FOUND when there is no such object in
 * that tenant (whether or not another tenant has one). */
int store_object_get(struct store_txn *txn, const char *tenant, const char *uid,
		     struct arena *arena, struct object *out);

/* Creates or replaces @obj (keyed by obj->tenant and obj->uid) and keeps the Name index in
 * step with its Name attributes. KMIPD_ENO_SPACE when the map is full. */
int store_object_put(struct store_txn *txn, const struct object *obj);

/* Calls @fn for each object of @tenant in unique-identifier order, starting after
 * @after_uid (NULL: from the first). Each object is decoded into @arena, which is reset
 * between objects only if @reset_between is true. @fn returns non-zero to stop; that value
 * is returned. */
int store_object_foreach(struct store_txn *txn, const char *tenant, const char *after_uid,
			 struct arena *arena, bool reset_between,
			 int (*fn)(const struct object *obj, void *arg), void *arg);

/* Calls @fn with the uid of each object of @tenant that has an attribute named "Name" whose
 * encoded value (struct object_attr.value) equals @value (@len bytes), in uid order. @fn
 * returns non-zero to stop; that value is returned. */
int store_name_foreach(struct store_txn *txn, const char *tenant, const uint8_t *value, size_t len,
		       int (*fn)(const char *uid, void *arg), void *arg);

/* Recent requests: the outcome of each recently applied command that carried a request
 * id, so that a command submitted again after an unknown outcome (a leader lost, a
 * connection cut) is answered with the first outcome instead of being applied twice.
 * Values are opaque to the store. */
#define STORE_REQUEST_ID_LEN	16
#define STORE_REQUEST_VALUE_MAX 256

/* Copies the value recorded for @id into @value (@cap bytes). 0 or KMIPD_ENOT_FOUND. */
int store_request_get(struct store_txn *txn, const uint8_t id[STORE_REQUEST_ID_LEN], uint8_t *value,
		      size_t cap, size_t *len);
/* Records @value for @id, applied at @index. */
int store_request_put(struct store_txn *txn, const uint8_t id[STORE_REQUEST_ID_LEN], uint64_t index,
		      const uint8_t *value, size_t len);
/* Forgets requests applied before @below. */
int store_request_prune(struct store_txn *txn, uint64_t below);

/* Deletes every object of @tenant, its name index entries and its client certificates;
 * @count says how many objects. 0 or a store error. */
int store_tenant_purge(struct store_txn *txn, const char *tenant, uint64_t *count);

/* Client certificates a tenant trusts besides those the cluster CA issues with a kmipd
 * URI (include/kmipd/pki.h): a pinned leaf (vCenter's self-signed certificate), a CA
 * whose certificates name the client, or a certificate the cluster CA issued through the
 * admin API. Keyed by the SHA-256 of the certificate's DER (64 hex digits). */
enum store_cert_kind {
	STORE_CERT_PINNED = 1, /* this exact certificate is the client */
	STORE_CERT_CA,	       /* any certificate this CA issues is the client */
	STORE_CERT_ISSUED,     /* issued by the cluster CA for the client */
};
#define STORE_CERT_DER_MAX    16384 /* one certificate's DER */
#define STORE_CERT_CLIENT_MAX 64

struct store_cert {
	char fingerprint[65];
	char tenant[OBJECT_TENANT_MAX + 1];
	char client[STORE_CERT_CLIENT_MAX + 1];
	enum store_cert_kind kind;
	const uint8_t *der;
	size_t der_len;
	/* STORE_CERT_CA: SHA-256 of the DER of the certificate's subject name, under which it
	 * is found as the issuer of the certificates it signs (store_cert_issuer_foreach). */
	uint8_t subject_hash[32];
	int64_t added;
	/* 0: trusted. Else when it was deleted: a deleted issued certificate is kept, since
	 * the cluster CA's signature alone would still admit it. */
	int64_t deleted;
};

/* Reads certificate @fingerprint into @out (@der copied into @arena). 0 or
 * KMIPD_ENOT_FOUND. */
int store_cert_get(struct store_txn *txn, const char *fingerprint, struct arena *arena,
		   struct store_cert *out);
/* Creates or replaces @cert. KMIPD_EINVAL for a malformed record. */
int store_cert_put(struct store_txn *txn, const struct store_cert *cert);
/* Removes certificate @fingerprint (a missing one is not an error). */
int store_cert_delete(struct store_txn *txn, const char *fingerprint);
/* Calls @fn for each certificate of @tenant (NULL: of every tenant), in fingerprint order.
 * Records are decoded into @arena, which is reset between them. @fn returns non-zero to
 * stop; that value is returned. */
int store_cert_foreach(struct store_txn *txn, const char *tenant, struct arena *arena,
		       int (*fn)(const struct store_cert *cert, void *arg), void *arg);
/* Calls @fn for each live STORE_CERT_CA certificate whose subject name hashes to
 * @subject_hash. Same contract as store_cert_foreach(). */
int store_cert_issuer_foreach(struct store_txn *txn, const uint8_t subject_hash[32],
			      struct arena *arena,
			      int (*fn)(const struct store_cert *cert, void *arg), void *arg);

/* The number of objects of @tenant (for metrics and tests). */
int store_object_count(struct store_txn *txn, const char *tenant, uint64_t *count);

#endif
