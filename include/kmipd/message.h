/* KMIP 1.x request and response messages: parsing a decoded Request Message into its
 * header and batch items, and encoding a Response Message from per-item results.
 *
 * This layer knows the message envelope, not the operations: payloads are handed on as
 * TTLV subtrees and come back as encoded bytes. It never touches sockets or storage. */
#ifndef KMIPD_MESSAGE_H
#define KMIPD_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/ttlv.h"

/* A text or byte string borrowed from a decoded message (not NUL-terminated). */
struct kmip_bytes {
	const uint8_t *data;
	size_t len;
};

struct kmip_credential {
	uint32_t type;		    /* KMIP_CREDENTIAL_* */
	struct kmip_bytes username; /* Username and Password credentials only */
	struct kmip_bytes password; /* empty if the client sent none */
	bool has_password;
};

struct kmip_request_header {
	unsigned version; /* as the client sent it, KMIP_VERSION(major, minor) */
	bool has_max_response_size;
	int32_t max_response_size;
	bool has_credential;
	struct kmip_credential credential;
	uint32_t batch_error_option; /* KMIP_BATCH_ERROR_*; STOP when absent */
	bool batch_order;	     /* true when absent */
	bool has_time_stamp;
	int64_t time_stamp;
	bool asynchronous;
	int32_t batch_count;
};

struct kmip_request_item {
	uint32_t operation; /* 0 if the item had none */
	bool has_batch_id;
	struct kmip_bytes batch_id;	 /* Unique Batch Item ID, echoed in the response */
	const struct ttlv_item *payload; /* Request Payload; NULL if absent */
	/* A problem found while parsing this item alone, answered for this item only:
	 * reason 0 means none. */
	uint32_t error_reason;
	const char *error_message;
};

struct kmip_request {
	struct kmip_request_header header;
	struct kmip_request_item *items;
	size_t count;
};

/* Why a whole message could not be used: the reason and a message for a person. The
 * version is what could be read of the header (0 if nothing), so the error response can
 * speak the client's version. */
struct kmip_message_error {
	uint32_t reason;
	unsigned version;
	char message[256];
};

/* Parses the decoded message @root (a Request Message). Items, strings and payload
 * pointers are views into @root and allocations from @arena.
 *
 * Returns 0, or KMIPD_EMALFORMED / KMIPD_ENOMEM with @err describing why the message as a
 * whole is unusable (missing header, batch count that does not match, ...). Problems that
 * concern one batch item only (no operation, unknown operation) do not fail the parse:
 * they are recorded in that item's error_reason. */
int kmip_request_parse(const struct ttlv_item *root, struct arena *arena, struct kmip_request *req,
		       struct kmip_message_error *err);

/* The outcome of one batch item, ready for encoding. */
struct kmip_result {
	uint32_t operation; /* 0: omit (the request item carried none) */
	bool has_batch_id;
	struct kmip_bytes batch_id;
	uint32_t status;	   /* KMIP_STATUS_* */
	uint32_t reason;	   /* KMIP_REASON_*; 0 (omitted) on success */
	const char *message;	   /* Result Message; NULL to omit */
	struct kmip_bytes payload; /* the encoded children of the Response Payload */
	bool has_payload;
	/* Not encoded: the object the item acted on, for the audit trail (NULL: none). */
	const char *uid;
};

/* Fills @r as a failure of @item with @reason and a message. @message is not copied. */
void kmip_result_fail(struct kmip_result *r, const struct kmip_request_item *item, uint32_t reason,
		      const char *message);

/* Encodes a Response Message into @out (appending): header with @version, @time_stamp
 * and the batch count, then every result in order.
 *
 * @max_size > 0 is the client's Maximum Response Size: if the response would be larger,
 * every successful item that carries a payload is answered instead with Response Too
 * Large, and the smaller response is sent. Returns 0 or KMIPD_ENOMEM. */
int kmip_response_encode(unsigned version, int64_t time_stamp, const struct kmip_result *results,
			 size_t count, size_t max_size, struct buf *out);

/* Encodes a response for a message that could not be used at all: one batch item with
 * Operation Failed, @err's reason and message. */
int kmip_response_encode_error(const struct kmip_message_error *err, int64_t time_stamp,
			       struct buf *out);

/* The version to answer in for a request of @requested: the same when supported, else
 * the highest supported version (so the client can read the error and negotiate). */
unsigned kmip_response_version(unsigned requested);

#endif
