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

#include <stddef.h>
#include <stdint.h>

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
	unsigned heartbeat_ms;	      /* 0 = 100 */
};

/* Starts the raft loop thread and waits until Raft has started (and, with one voter, has
 * become leader). On failure a sentence goes into @errmsg. */
int replication_start(struct replication **out, const struct replication_config *config,
		      char *errmsg, size_t errlen);

/* Stops the loop: pending proposals complete with KMIPD_ECANCELED, Raft closes, the thread
 * is joined and everything freed. */
void replication_stop(struct replication *repl);

/* The service->propose implementation. The proposal is completed through session->reply
 * (the proposing worker's mailbox, whose handler must call replication_deliver()). Set
 * service->propose_arg to the struct replication. */
int replication_propose(struct service *service, struct kmip_op_ctx *ctx, const struct buf *entry,
			service_done_fn done);

/* Proposes @entry for a caller that is not a KMIP batch item (tenant creation at
 * start-up or on a client's first connection): @complete(@arg, result) runs on the thread
 * of @reply's loop. */
typedef void (*replication_complete_fn)(void *arg, const struct command_result *result);
int replication_submit(struct replication *repl, const struct buf *entry, struct mailbox *reply,
		       replication_complete_fn complete, void *arg);

/* Called by a mailbox handler for an item posted by the raft loop: finishes the
 * proposal's batch item (service_complete) and frees the proposal. */
void replication_deliver(struct mailbox_item *item);

#endif
