/* Replicated commands: every change to a node's state is one command, proposed by the node
 * that received the request, ordered by Raft, and applied by command_apply() on every node
 * in the same order. command_apply() is the state machine: it is the only code that writes
 * LMDB.
 *
 * A command carries everything its effect depends on (the proposer's clock, generated
 * identifiers, sealed material), so applying it is deterministic: every replica ends in
 * the same state. Application-level refusals (an object that no longer exists, a state
 * that does not allow the change) are results, never errors of the state machine. */
#ifndef KMIPD_COMMAND_H
#define KMIPD_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/object.h"
#include "kmipd/store.h"

#define COMMAND_FORMAT 1 /* the encoding written by this version */
/* What a node can apply, as a level: 2 = every command up to COMMAND_CERT_DELETE and
 * batch entries; 3 = also the root-key commands from COMMAND_TENANT_REWRAP on and sealed
 * material of format 2; 4 = no new command, but the node keeps checkpoints as its Raft
 * snapshots on disk (store_checkpoint), which a version below 4 cannot read at start-up:
 * a node's own setting below 4 keeps copies, for a rollback of the binary. A node skips an
 * entry it cannot decode, so a command is only proposed when every member of the cluster
 * is at its level (rolling upgrades). */
#define COMMAND_LEVEL	4
#define COMMAND_MAX_LEN 0xFFFFFF /* the most msgpack bytes one entry's header can describe */

enum command_type {
	COMMAND_TENANT_CREATE = 1,
	COMMAND_OBJECT_CREATE,
	COMMAND_ATTR_ADD,
	COMMAND_ATTR_MODIFY,
	COMMAND_ATTR_DELETE,
	COMMAND_ACTIVATE,
	COMMAND_REVOKE,
	COMMAND_DESTROY,
	COMMAND_TENANT_DELETE, /* destroys every object of @tenant and its KEK on every node */
	COMMAND_CERT_ADD,      /* trusts @cert for a client of @tenant */
	COMMAND_CERT_DELETE,   /* stops trusting @cert.fingerprint; its connections are cut */
	/* @tenant's KEK wrapped anew by its provider (tenant_record.wrapped_kek) replaces
	 * @old_kek, if that is still the stored form */
	COMMAND_TENANT_REWRAP,
	/* @tenant's new KEK, version @kek_version (tenant_record.wrapped_kek), becomes the
	 * current one and the current one starts retiring; refused while one is retiring */
	COMMAND_KEK_ROTATE,
	/* object @uid's material re-sealed under the current KEK (@sealed) replaces what was
	 * sealed under version @kek_version, if that is still what the object holds */
	COMMAND_RESEAL,
	/* the retiring KEK, version @kek_version, is forgotten: refused while any object of
	 * @tenant is still sealed under it */
	COMMAND_KEK_RETIRE,
};

struct command {
	enum command_type type;
	/* Random, set by the proposer (all zeros: none). A command applied again with the
	 * same id (resubmitted after its outcome was lost with a leader or a connection)
	 * gets the first outcome and changes nothing. */
	uint8_t request_id[16];
	int64_t time; /* the proposer's clock: the date every replica records */
	char tenant[OBJECT_TENANT_MAX + 1];
	char uid[OBJECT_UID_LEN + 1];

	/* COMMAND_TENANT_CREATE; COMMAND_TENANT_REWRAP uses wrapped_kek only */
	struct store_tenant tenant_record;
	const uint8_t *old_kek; /* COMMAND_TENANT_REWRAP */
	size_t old_kek_len;
	uint32_t kek_version;  /* COMMAND_KEK_ROTATE, COMMAND_RESEAL, COMMAND_KEK_RETIRE */
	const uint8_t *sealed; /* COMMAND_RESEAL */
	size_t sealed_len;

	/* COMMAND_OBJECT_CREATE: the whole new object, material sealed. */
	struct object object;

	/* COMMAND_ATTR_*: one attribute instance. ATTR_ADD assigns the next free index (the
	 * result says which); with @single_instance it fails if the name already has one. */
	const char *attr_name;
	uint32_t attr_index;
	const uint8_t *attr_value; /* encoded Attribute Value item, as in struct object_attr */
	size_t attr_value_len;
	bool single_instance;

	/* COMMAND_REVOKE */
	uint32_t revocation_code; /* KMIP_REVOCATION_* */
	const char *revocation_message;
	int64_t compromise_occurrence_date; /* 0 if not given */

	/* COMMAND_CERT_ADD: fingerprint, client, kind, der and (for a CA) subject_hash; the
	 * tenant is @tenant and the date added is @time. COMMAND_CERT_DELETE: fingerprint. */
	struct store_cert cert;
};

/* What applying a command did, for the proposer to answer its client with. */
struct command_result {
	int status;	   /* 0, KMIPD_ENOT_FOUND, KMIPD_EEXISTS, KMIPD_ESTATE, ... */
	uint32_t index;	   /* ATTR_ADD: the index assigned; TENANT_DELETE: objects destroyed */
	uint32_t state;	   /* the object's state afterwards */
	char message[160]; /* why, when status != 0: a sentence for the client */
};

/* The level a node must be at to apply commands of @type. */
unsigned command_level(enum command_type type);

/* True if @cmd carries a request id. */
bool command_has_request_id(const struct command *cmd);

/* Encodes @cmd into @out (appending): msgpack, preceded by a 4-byte format/length header
 * and zero-padded to a multiple of 8 bytes, as Raft entries must be. 0 or KMIPD_ENOMEM;
 * also KMIPD_ETOO_LARGE (more than COMMAND_MAX_LEN bytes of msgpack) and KMIPD_EINVAL (an
 * unknown type, or an object object_encode() refuses). On error @out is left as it was. */
int command_encode(const struct command *cmd, struct buf *out);

/* Decodes an entry made by command_encode(); strings and bytes are copied into @arena.
 * Only the fields of the command's type are read; for TENANT_CREATE and OBJECT_CREATE,
 * @cmd->tenant (and uid) are set from the record carried. 0, KMIPD_EMALFORMED (including a
 * newer format than this binary knows, missing or foreign fields) or KMIPD_ENOMEM (@arena
 * refused). */
int command_decode(const uint8_t *data, size_t len, struct arena *arena, struct command *cmd);

/* Several commands proposed in the same turn of the leader's loop travel as one Raft entry,
 * a batch: an 8-byte header (COMMAND_BATCH, then the member count in 3 bytes, then zeros)
 * followed by each member entry exactly as command_encode() made it. One entry per turn
 * instead of one per command is what keeps the messages between nodes, their TLS records
 * and system calls, and libraft's per-entry work from growing with the number of
 * clients. An entry of one command is never wrapped. */
#define COMMAND_BATCH	  0x81 /* first byte of a batch entry (plain entries start 1..0x7F) */
#define COMMAND_BATCH_MAX 64   /* the most commands one entry carries */

/* Appends the encoded command @entry (command_encode's output, @len bytes) to the batch in
 * @batch, starting it when @batch is empty. 0, KMIPD_EINVAL (@entry is not one encoded
 * command, or the batch is full) or KMIPD_ENOMEM; on error @batch is left as it was. */
int command_batch_add(struct buf *batch, const uint8_t *entry, size_t len);

/* Decodes a Raft entry, a plain command or a batch, into @cmds (room for @max), setting
 * @n to how many it holds, in order. Strings and bytes are copied into @arena. 0 or
 * command_decode's errors; a batch that is malformed in any member is refused whole. */
int command_entry_decode(const uint8_t *data, size_t len, struct arena *arena, struct command *cmds,
			 unsigned max, unsigned *n);

/* Applies the @n commands of entry @index (one, or a batch's members in order) inside
 * the write transaction @txn, writing each one's outcome to @results[i], and records
 * @index as applied. An entry at or below the store's applied index is skipped (every
 * result status 0): replay after a restart is harmless. Returns 0, or a negative code
 * only when the store itself failed (KMIPD_ENO_SPACE, KMIPD_EIO, KMIPD_ECORRUPT, or
 * KMIPD_ENOMEM from @arena): then the caller must abort the transaction. */
int command_apply(struct store_txn *txn, const struct command *cmds, unsigned n, uint64_t index,
		  struct arena *arena, struct command_result *results);

#endif
