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

struct store;
struct store_txn;

struct store_config {
	const char *dir; /* created if missing (0700); holds data.mdb and lock.mdb */
	size_t map_size; /* address space reserved for the map; 0 = 64 GiB */
	bool durable;	 /* Both ways LMDB runs with MDB_NOMETASYNC (never MDB_NOSYNC): a
			  * crash can undo the last commit, never corrupt the file. false:
			  * the Raft log is the durable record and replay repairs LMDB.
			  * true: the store also syncs after each commit, so one that
			  * returned survives a crash on its own. */
};

/* Opens (creating if needed) the environment in @config->dir, checks its format version and
 * clears stale reader slots. On failure returns a negative code and writes a sentence
 * naming the path and the cause into @errmsg (@errlen bytes). */
int store_open(struct store **out, const struct store_config *config, char *errmsg, size_t errlen);

/* Closes the environment. No transaction may be open. */
void store_close(struct store *store);

/* Transactions. A read transaction sees one consistent snapshot; a write transaction is
 * only ever opened by the apply path. Everything read through a transaction is copied into
 * the caller's arena, so results outlive the transaction. */
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

/* Tenants. */
struct store_tenant {
	char name[OBJECT_TENANT_MAX + 1];
	char provider[16];	    /* "local", "keyprotect", "hpcs" */
	const char *root_key_id;    /* provider's id of the root key ("" for local) */
	const uint8_t *wrapped_kek; /* the KEK as the provider wrapped it */
	size_t wrapped_kek_len;
	int64_t created;
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

/* The number of objects of @tenant (for metrics and tests). */
int store_object_count(struct store_txn *txn, const char *tenant, uint64_t *count);

#endif
