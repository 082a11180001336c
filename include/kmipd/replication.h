/* The raft loop: one thread that owns libraft, its libuv I/O backend and the state
 * machine. Workers hand it proposals through a mailbox; it appends them to the Raft log,
 * applies committed entries to LMDB with command_apply() (the only LMDB writer) and posts
 * each proposal back to the worker that made it.
 *
 * With one voter (dev mode, single node) this is the same path with a one-member
 * configuration: a proposal is acknowledged once the entry is fsynced in the Raft log and
 * applied to LMDB. */
#ifndef KMIPD_REPLICATION_H
#define KMIPD_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "kmipd/config.h"
#include "kmipd/keyring.h"
#include "kmipd/mailbox.h"
#include "kmipd/service.h"
#include "kmipd/store.h"

struct replication;

struct replication_config {
	const char *dir;     /* Raft log and metadata (created 0700 if missing) */
	uint64_t id;	     /* this node's Raft id, > 0 */
	const char *address; /* this node's peer address, "127.0.0.1:7696" */
	struct store *store;
	struct keyring *keyring;
	unsigned election_timeout_ms; /* 0 = 1000 */
	unsigned heartbeat_ms;	      /* 0 = 25: followers learn of commits this often */
	/* The initial voters, "ID@HOST:PORT,..." (Raft addresses); NULL or "": this node
	 * alone. Every initial voter must be given the same list. */
	const char *members;
	unsigned write_timeout_ms; /* a write not confirmed by then fails; 0 = 5000 */
	/* While an entry is in flight, the leader holds new writes for up to this long after
	 * its last append, so that under load they go out together; 0: no hold. */
	unsigned batch_hold_ms;
	/* Entries between snapshots (0 = 128), and entries of log kept behind one, for
	 * nodes a little behind to catch up by log rather than by a copy (0 = 8192). */
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;
	/* A page of the store that no read has touched for about this long is unmapped from
	 * the process (store_unmap()), by the thread that writes the store back; 0: never. */
	unsigned map_window_ms;
	/* The peer channel (forwarding writes to the leader), on the port after the Raft
	 * port: mutual TLS with node certificates from the cluster CA. */
	SSL_CTX *peer_server_tls;
	SSL_CTX *peer_client_tls;
	/* Every connection between nodes (Raft and the peer channel) opens with this id;
	 * nodes of different clusters refuse each other. NULL = "kmipd". */
	const char *cluster_id;
	/* A witness votes and keeps the whole state but serves no KMIP; it hands leadership
	 * to another voter whenever it is elected. */
	bool witness;
	/* Called on the raft loop once a change that cuts clients off is applied on this
	 * node: tenant @tenant was deleted (@fingerprint NULL), or the certificate
	 * @fingerprint of @tenant was. NULL: nothing to cut off. */
	void (*revoke)(void *arg, const char *tenant, const char *fingerprint);
	void *revoke_arg;
	/* Root-key providers ("" url: not set up) and how often each cloud tenant's KEK is
	 * checked with its provider (tenant_keys.h; 0 = 5 minutes). */
	const struct provider_config *keyprotect, *hpcs;
	unsigned check_interval_ms;
	/* The highest command level this node allows (0 = COMMAND_LEVEL). */
	unsigned format_level;
};

/* Starts the raft loop thread and waits until Raft has started (and, with one voter, has
 * become leader; with several, the others may not be up yet). On failure a sentence goes
 * into @errmsg. */
int replication_start(struct replication **out, const struct replication_config *config,
		      char *errmsg, size_t errlen);

/* Stops the loop: pending proposals complete with KMIPD_ECANCELED, Raft closes, the thread
 * is joined and everything freed. */
void replication_stop(struct replication *repl);

/* What this node knows of the cluster, as of the raft loop's last tick (at most 50 ms
 * old): for the admin API's health, readiness and metrics, from any thread. */
struct replication_status {
	bool running; /* Raft has started: the node is not still forming or joining */
	bool witness;
	char state[16]; /* "follower", "candidate", "leader" or "unavailable" */
	uint64_t id, term, commit_index, applied_index;
	uint64_t leader_id; /* 0: none known */
	char leader_address[256];
	unsigned voters; /* in the configuration this node has */
	unsigned members;
	struct {
		uint64_t id;
		char address[256];
		char role[8]; /* "voter", "standby" or "spare" */
	} member[16];	      /* the first 16 members */
	/* The command level every member is known to be at (command.h), and the member that
	 * holds it down (0: none; or none answered yet, when the level is 2). */
	unsigned format_level;
	uint64_t format_held_by;
};
void replication_status(struct replication *repl, struct replication_status *out);

/* The service->propose implementation. The proposal is completed through session->reply
 * (the proposing worker's mailbox, whose handler must call replication_deliver()). Set
 * service->propose_arg to the struct replication. */
int replication_propose(struct service *service, struct kmip_op_ctx *ctx, const struct buf *entry,
			service_done_fn done);

/* The service->sync implementation: a node in a cluster asks the leader for a barrier
 * and waits until it has applied the barrier's index, so a read that found nothing is
 * then authoritative. A single node is always authoritative (KMIP_OP_DONE). */
int replication_sync(struct service *service, struct kmip_op_ctx *ctx);

/* Proposes @entry for a caller that is not a KMIP batch item (tenant creation at
 * start-up or on a client's first connection): @complete(@arg, result) runs on the thread
 * of @reply's loop. */
typedef void (*replication_complete_fn)(void *arg, const struct command_result *result);
int replication_submit(struct replication *repl, const struct buf *entry, struct mailbox *reply,
		       replication_complete_fn complete, void *arg);

/* Catches this node up with the cluster for a caller that is not a KMIP item (the admin
 * API, before it says something does not exist): @complete(@arg, result) runs on @reply's
 * loop once this node has applied everything the leader had committed (result status 0),
 * or with why it could not confirm. Returns 0 (it will run), 1 when there is nothing to
 * wait for (a single node: @complete does not run), or KMIPD_ECANCELED when stopping. */
int replication_catch_up(struct replication *repl, struct mailbox *reply,
			 replication_complete_fn complete, void *arg);

/* Cluster administration for the admin API, run on the raft loop. */
enum replication_admin_op {
	REPLICATION_STATUS,   /* every member's own view of its state */
	REPLICATION_ADD,      /* add node @id at Raft address @address, as a voter */
	REPLICATION_REMOVE,   /* remove node @id */
	REPLICATION_TRANSFER, /* hand leadership to node @id (0: the best placed voter) */
};

/* The outcome, a JSON text the callee owns until it returns: for STATUS
 * {"members": [each member's status (as `kmipctl cluster status --json` shows it), or
 * {"id", "address", "error"} for one that did not answer]}; for the changes, the
 * leader's answer {"ok", "message", "leader_id", "leader_address"}. */
typedef void (*replication_admin_fn)(void *arg, const char *json);

/* Runs @op; changes go to the leader (over the peer channel unless this node leads).
 * @done(@arg, json) runs on @reply's loop within about @timeout_ms (0: 5 s). 0, or
 * KMIPD_ENOMEM / KMIPD_ECANCELED (stopping): then @done does not run. */
int replication_admin(struct replication *repl, enum replication_admin_op op, uint64_t id,
		      const char *address, unsigned timeout_ms, struct mailbox *reply,
		      replication_admin_fn done, void *arg);

/* Called by a mailbox handler for an item posted by the raft loop: finishes the
 * proposal's batch item (service_complete) and frees the proposal. */
void replication_deliver(struct mailbox_item *item);

#endif
