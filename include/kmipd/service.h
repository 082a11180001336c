/* What KMIP operations run against: the node's store (reads), its tenant KEKs, and the
 * path that turns a write into a replicated command. The network layer makes one session
 * per connection and hands it to the exchange as kmip_exchange_config.app.
 *
 * Reads run on the calling (worker) thread in a short LMDB read transaction. Writes are
 * proposed and the operation returns KMIP_OP_PENDING; when the command has been applied,
 * the done function runs on the same worker thread and finishes the batch item. */
#ifndef KMIPD_SERVICE_H
#define KMIPD_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "kmipd/buf.h"
#include "kmipd/command.h"
#include "kmipd/credentials.h"
#include "kmipd/crypto.h"
#include "kmipd/exchange.h"
#include "kmipd/keyring.h"
#include "kmipd/mailbox.h"
#include "kmipd/store.h"

struct service;

/* Runs on the proposing worker when @ctx's command has been applied (result->status 0 or
 * a refusal) or could not be (result->status KMIPD_ENO_QUORUM, KMIPD_ENO_SPACE, ...). It
 * writes the response payload or fails the item, then returns; the exchange continues. */
typedef void (*service_done_fn)(struct kmip_op_ctx *ctx, const struct command_result *result);

/* Hands the encoded command @entry to the replication path. On success the service owns
 * nothing of @entry's storage (it is copied) and @done will be called exactly once. */
typedef int (*service_propose_fn)(struct service *service, struct kmip_op_ctx *ctx,
				  const struct buf *entry, service_done_fn done);

/* Catches this node up with the cluster for @ctx (see kmip_exchange_config.sync):
 * KMIP_OP_PENDING, or KMIP_OP_DONE if this node is authoritative or cannot start one. */
typedef int (*service_sync_fn)(struct service *service, struct kmip_op_ctx *ctx);

struct service {
	struct store *store;
	struct keyring *keyring;
	service_propose_fn propose;
	service_sync_fn sync; /* NULL: this node is always authoritative */
	void *propose_arg;    /* for the propose and sync functions' own state */
	/* Clients that must also send a Username/Password credential; NULL: none. */
	const struct credentials *credentials;
};

/* One authenticated client connection. */
struct session {
	struct service *service;
	char tenant[OBJECT_TENANT_MAX + 1];
	char client[OBJECT_TENANT_MAX + 1];
	char fingerprint[65];		     /* SHA-256 of the client certificate, hex */
	char trusted_by[65];		     /* the record that admitted it (trust.h) */
	const struct credential *credential; /* what this client must send, or NULL */
	/* Called after a pending item has finished, so the connection can carry on with
	 * the exchange (run the next items, write the response). */
	void (*resume)(struct session *session);
	struct mailbox *reply; /* where the replication path posts completions */
	void *conn;	       /* the network layer's connection */
};

/* The session of an operation (ctx->app). */
static inline struct session *service_session(const struct kmip_op_ctx *ctx)
{
	return (struct session *)ctx->app;
}

/* Proposes @cmd for @ctx: encodes it and calls service->propose. Returns KMIP_OP_PENDING,
 * or fails the item (General Failure naming the cause) and returns KMIP_OP_DONE. */
int service_propose(struct kmip_op_ctx *ctx, const struct command *cmd, service_done_fn done);

/* Finishes a pending item on the proposing worker: runs @done with @result, marks the item
 * done in its exchange and resumes the session. The replication path calls this exactly
 * once per successful service->propose, never from inside it. */
void service_complete(struct kmip_op_ctx *ctx, service_done_fn done,
		      const struct command_result *result);

/* Opens a read transaction on the session's store. On failure the item is failed and
 * KMIP_OP_DONE returned through *done_rv; returns NULL. */
struct store_txn *service_read(struct kmip_op_ctx *ctx, int *done_rv);

/* The kmip_exchange_config.authenticate check for a session: a client with a credentials
 * entry must send the matching Username and Password in every request. */
int service_authenticate(const struct kmip_request_header *header, void *app, char *why,
			 size_t len);

/* The kmip_exchange_config.sync for sessions: calls service->sync. */
int service_sync(struct kmip_op_ctx *ctx);

/* The done function of a catch-up: lets the item run again, or fails it saying this node
 * could not confirm with the cluster. */
void service_sync_done(struct kmip_op_ctx *ctx, const struct command_result *result);

/* The current time in seconds since the epoch (the proposer's clock for dates). */
int64_t service_now(void);

#endif
