/* One KMIP request/response exchange: decode a request message, run its batch items through
 * the operation table in order, and encode the response.
 *
 * An operation either finishes at once (reads) or reports that it is pending (a write
 * waiting for replication); the exchange then pauses and continues from the same item when
 * the caller resumes it. All per-request memory comes from the exchange's arena and is
 * released, wiped, by kmip_exchange_reset(). */
#ifndef KMIPD_EXCHANGE_H
#define KMIPD_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/message.h"
#include "kmipd/ttlv.h"

struct kmip_exchange;

/* What an operation handler sees for one batch item. */
struct kmip_op_ctx {
	struct kmip_exchange *exchange;
	const struct kmip_request_item *item;
	const struct ttlv_item *payload; /* the Request Payload structure */
	unsigned version;		 /* the version the response speaks */
	struct arena *arena;		 /* lives until the response is written */
	struct ttlv_writer out;		 /* writes the children of the Response Payload */
	struct kmip_result *result;
	void *app; /* the server's per-connection state (kmip_exchange_config.app) */
	/* A pending handler's own state for its done function (arena memory). Set by the
	 * handler before it returns KMIP_OP_PENDING; meaningless otherwise. */
	void *op_state;
};

enum {
	KMIP_OP_DONE = 0,    /* the item's result is final */
	KMIP_OP_PENDING = 1, /* the handler will call kmip_exchange_item_done() later */
};

/* A handler runs one batch item: it reads ctx->payload, writes the response payload with
 * ctx->out, and returns KMIP_OP_DONE (success unless it called kmip_op_fail) or
 * KMIP_OP_PENDING. */
typedef int (*kmip_op_handler)(struct kmip_op_ctx *ctx);

struct kmip_op_def {
	uint32_t operation; /* KMIP_OP_* */
	unsigned since;	    /* first protocol version that has it */
	kmip_op_handler handler;
};

/* The operation table: every operation this server implements, in ascending order. */
const struct kmip_op_def *kmip_op_lookup(uint32_t operation);
void kmip_op_foreach(void (*fn)(const struct kmip_op_def *op, void *arg), void *arg);

/* Fails the current item with @reason and a message (formatted and copied into the arena;
 * a person should be able to act on it). Anything already written to the payload is
 * dropped. Returns KMIP_OP_DONE, for `return kmip_op_fail(...)`. */
int kmip_op_fail(struct kmip_op_ctx *ctx, uint32_t reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Who the server says it is when asked by Query (Server Information). */
struct kmip_server_identity {
	const char *vendor; /* Vendor Identification, e.g. "kmipd 0.1.0" */
};

/* Checks a parsed request's credentials before any item runs. Returns 0 to go on, or
 * non-zero with a sentence in @why: the whole message is then answered with
 * Authentication Not Successful. */
typedef int (*kmip_authenticate_fn)(const struct kmip_request_header *header, void *app, char *why,
				    size_t len);

struct kmip_exchange_config {
	struct ttlv_limits limits;
	const struct kmip_server_identity *identity;
	kmip_authenticate_fn authenticate; /* NULL: credentials are not checked */
	/* Called when an item failed with Item Not Found, once per item: a node that may be
	 * behind the cluster catches up before "not found" is final. Returns KMIP_OP_PENDING
	 * after starting the catch-up (then kmip_exchange_sync_done() and
	 * kmip_exchange_item_done() follow), or KMIP_OP_DONE when this node is authoritative.
	 * NULL: never. */
	int (*sync)(struct kmip_op_ctx *ctx);
	void *app;
};

struct kmip_exchange {
	struct kmip_exchange_config config;
	struct arena arena;
	struct kmip_request request;
	bool unusable;			 /* the message as a whole is answered with error */
	struct kmip_message_error error; /* why, when unusable */
	unsigned version;
	int64_t now; /* time of the request, for the response's Time Stamp */
	struct kmip_result *results;
	size_t *payload_at;  /* offsets of each result's payload in payloads */
	struct buf payloads; /* every item's encoded payload, back to back */
	size_t done;	     /* results produced */
	size_t next;	     /* next request item to run */
	bool pending;
	bool item_synced; /* the current item has had its catch-up */
	bool syncing;	  /* ... and it is under way */
	bool sync_ok;	  /* ... and it succeeded: run the item again */
	/* The ID Placeholder: the Unique Identifier of the object the last successful Create,
	 * Register or Locate (exactly one match) of this message named, for later items that
	 * omit theirs (arena memory; NULL until set). */
	const char *id_placeholder;
	struct kmip_op_ctx ctx; /* the item being run */
};

/* Prepares @ex; copies @config. */
void kmip_exchange_init(struct kmip_exchange *ex, const struct kmip_exchange_config *config);

/* Decodes and parses the request in @msg (which must stay valid until the response has
 * been encoded). A message that cannot be used is not an error here: the response will
 * say why. Returns 0, or KMIPD_EMALFORMED when not even an error response can be made
 * (the caller should close the connection). */
int kmip_exchange_begin(struct kmip_exchange *ex, const uint8_t *msg, size_t len, int64_t now);

/* Runs items until all are done (returns 0) or one is pending (returns KMIP_OP_PENDING;
 * call again after kmip_exchange_item_done()). */
int kmip_exchange_run(struct kmip_exchange *ex);

/* Called by a pending handler when its item has its final result (written through the
 * same ctx). */
void kmip_exchange_item_done(struct kmip_op_ctx *ctx);

/* Ends a catch-up started by config.sync: with @ok the item runs again once
 * kmip_exchange_item_done() is called; otherwise the item keeps the failure the caller has
 * set with kmip_op_fail(). */
void kmip_exchange_sync_done(struct kmip_op_ctx *ctx, bool ok);

/* Encodes the response into @out (appending). 0 or KMIPD_ENOMEM. */
int kmip_exchange_respond(struct kmip_exchange *ex, struct buf *out);

/* Releases (and wipes) everything of the last request; @ex is ready for the next. */
void kmip_exchange_reset(struct kmip_exchange *ex);

/* Frees all memory of @ex. */
void kmip_exchange_free(struct kmip_exchange *ex);

/* Runs a whole exchange whose operations all finish at once (tools and tests). Returns 0
 * with the response in @out, KMIPD_EMALFORMED if no response can be made, or
 * KMIPD_EAGAIN if an operation went pending. */
int kmip_process(const struct kmip_exchange_config *config, const uint8_t *msg, size_t len,
		 int64_t now, struct buf *out);

#endif
