/* The glue between operations and the node: read transactions, proposing commands and
 * finishing the items that waited for them. */
#include <stdio.h>
#include <time.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/service.h"

int service_propose(struct kmip_op_ctx *ctx, const struct command *cmd, service_done_fn done)
{
	struct session *session = service_session(ctx);
	struct buf entry = BUF_INIT;
	struct command identified = *cmd;
	int rv;

	/* The request id lets the replication path submit the command again when its
	 * outcome is lost with a leader, without applying it twice. */
	rv = crypto_request_id(identified.request_id);
	if (rv == 0)
		rv = command_encode(&identified, &entry);
	if (rv == 0)
		rv = session->service->propose(session->service, ctx, &entry, done);
	buf_free(&entry);
	if (rv != 0)
		return kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
				    "the change could not be submitted for replication: %s",
				    kmipd_strerror(rv));
	return KMIP_OP_PENDING;
}

void service_complete(struct kmip_op_ctx *ctx, service_done_fn done,
		      const struct command_result *result)
{
	struct session *session = service_session(ctx);

	done(ctx, result);
	kmip_exchange_item_done(ctx);
	if (session->resume != NULL)
		session->resume(session);
}

struct store_txn *service_read(struct kmip_op_ctx *ctx, int *done_rv)
{
	struct session *session = service_session(ctx);
	struct store_txn *txn = NULL;
	int rv = store_txn_begin(session->service->store, false, &txn);

	if (rv != 0) {
		*done_rv = kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
					"the key store could not be read: %s", kmipd_strerror(rv));
		return NULL;
	}
	return txn;
}

int service_authenticate(const struct kmip_request_header *header, void *app, char *why, size_t len)
{
	const struct session *session = app;
	const struct kmip_credential *cred = &header->credential;

	if (session->credential == NULL)
		return 0;
	if (!header->has_credential || cred->type != KMIP_CREDENTIAL_USERNAME_AND_PASSWORD ||
	    !cred->has_password) {
		snprintf(why, len,
			 "client %s of tenant %s must send a Username and Password credential",
			 session->client, session->tenant);
		return KMIPD_EPERMISSION;
	}
	if (!credential_matches(session->credential, cred->username.data, cred->username.len,
				cred->password.data, cred->password.len)) {
		snprintf(why, len, "the Username or Password of client %s of tenant %s is wrong",
			 session->client, session->tenant);
		return KMIPD_EPERMISSION;
	}
	return 0;
}

int service_sync(struct kmip_op_ctx *ctx)
{
	struct service *service = service_session(ctx)->service;

	if (service->sync == NULL)
		return KMIP_OP_DONE;
	return service->sync(service, ctx);
}

void service_sync_done(struct kmip_op_ctx *ctx, const struct command_result *result)
{
	if (result->status == 0) {
		kmip_exchange_sync_done(ctx, true);
		return;
	}
	kmip_exchange_sync_done(ctx, false);
	kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
		     "this node could not confirm with the cluster whether the object exists "
		     "(%s); try again or use another endpoint",
		     result->message);
}

int64_t service_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec;
}
