/* Running one request message: decode, parse, dispatch every batch item in order through
 * the operation table (pausing at items that wait for replication), and encode the
 * response, honouring the Batch Error Continuation Option and Maximum Response Size. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/exchange.h"
#include "kmipd/kmip_spec.h"

void kmip_exchange_init(struct kmip_exchange *ex, const struct kmip_exchange_config *config)
{
	memset(ex, 0, sizeof(*ex));
	ex->config = *config;
	/* A decoded 1 MiB message needs a few MiB of tree at most; cap it well above that. */
	arena_init(&ex->arena, 16 * 1024, 64 * 1024 * 1024);
}

/* Reads the protocol version of a message whose TTLV could not be decoded, if its first
 * bytes are the standard start of a request: Request Message, Request Header, Protocol
 * Version with Major and Minor. Returns 0 when they are not. */
static unsigned peek_version(const uint8_t *m, size_t len)
{
	static const uint8_t start[] = {
		0x42, 0x00, 0x78, 0x01, /* Request Message, Structure */
	};
	static const uint8_t version[] = {
		0x42, 0x00, 0x69, 0x01, 0x00, 0x00, 0x00, 0x20, /* Protocol Version, 32 bytes */
		0x42, 0x00, 0x6A, 0x02, 0x00, 0x00, 0x00, 0x04, /* Major, Integer */
	};
	static const uint8_t minor_header[] = {0x42, 0x00, 0x6B, 0x02, 0x00, 0x00, 0x00, 0x04};
	uint32_t major, minor;

	if (len < 56 || memcmp(m, start, sizeof(start)) != 0 || m[8] != 0x42 || m[9] != 0x00 ||
	    m[10] != 0x77 || m[11] != 0x01 || memcmp(m + 16, version, sizeof(version)) != 0 ||
	    memcmp(m + 40, minor_header, sizeof(minor_header)) != 0)
		return 0;
	major = (uint32_t)m[32] << 24 | (uint32_t)m[33] << 16 | (uint32_t)m[34] << 8 | m[35];
	minor = (uint32_t)m[48] << 24 | (uint32_t)m[49] << 16 | (uint32_t)m[50] << 8 | m[51];
	if (major == 0 || major > 255 || minor > 255)
		return 0;
	return KMIP_VERSION(major, minor);
}

/* The version to answer an unusable message in: the client's, when its header can be
 * read; KMIP 1.0, which every 1.x client reads, when the message is at least a Request
 * Message; 0 (no answer: close) for anything else. */
static unsigned error_version(const uint8_t *m, size_t len)
{
	unsigned version = peek_version(m, len);

	if (version == 0 && len >= 4 && m[0] == 0x42 && m[1] == 0x00 && m[2] == 0x78 &&
	    m[3] == TTLV_STRUCTURE)
		version = KMIP_V1_0;
	return version;
}

int kmip_exchange_begin(struct kmip_exchange *ex, const uint8_t *msg, size_t len, int64_t now)
{
	struct ttlv_item *root;
	struct ttlv_error terr;
	int rv;

	ex->now = now;
	rv = ttlv_decode(msg, len, &ex->config.limits, &ex->arena, &root, &terr);
	if (rv != 0) {
		ex->unusable = true;
		ex->error.reason = KMIP_REASON_INVALID_MESSAGE;
		ex->error.version = error_version(msg, len);
		snprintf(ex->error.message, sizeof(ex->error.message),
			 "the message is not valid TTLV: %s", terr.message);
		if (rv == KMIPD_ENOMEM) {
			ex->error.reason = KMIP_REASON_GENERAL_FAILURE;
			snprintf(ex->error.message, sizeof(ex->error.message),
				 "the server ran out of memory decoding the message");
		}
		return ex->error.version != 0 ? 0 : KMIPD_EMALFORMED;
	}
	rv = kmip_request_parse(root, &ex->arena, &ex->request, &ex->error);
	if (rv != 0) {
		ex->unusable = true;
		if (ex->error.version == 0)
			ex->error.version = error_version(msg, len);
		return ex->error.version != 0 ? 0 : KMIPD_EMALFORMED;
	}
	ex->version = kmip_response_version(ex->request.header.version);
	if (ex->config.authenticate != NULL &&
	    ex->config.authenticate(&ex->request.header, ex->config.app, ex->error.message,
				    sizeof(ex->error.message)) != 0) {
		ex->unusable = true;
		ex->error.reason = KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL;
		ex->error.version = ex->version;
		return 0;
	}
	ex->results = arena_zalloc(&ex->arena, ex->request.count * sizeof(*ex->results));
	ex->payload_at = arena_zalloc(&ex->arena, ex->request.count * sizeof(*ex->payload_at));
	if (ex->results == NULL || ex->payload_at == NULL) {
		ex->unusable = true;
		ex->error.reason = KMIP_REASON_GENERAL_FAILURE;
		snprintf(ex->error.message, sizeof(ex->error.message),
			 "the server ran out of memory for the batch");
	}
	return 0;
}

int kmip_op_fail(struct kmip_op_ctx *ctx, uint32_t reason, const char *fmt, ...)
{
	struct ttlv_writer *w = &ctx->out;
	char text[512];
	const char *message;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	message = arena_strndup(ctx->arena, text, strlen(text));
	kmip_result_fail(ctx->result, ctx->item, reason, message ? message : "operation failed");

	/* Drop whatever part of a payload was written. */
	if (w->out->len > w->start) {
		explicit_bzero(w->out->data + w->start, w->out->len - w->start);
		w->out->len = w->start;
	}
	w->depth = 0;
	w->error = 0;
	return KMIP_OP_DONE;
}

/* Sets up ctx for item @i and fills the defaults of its result. */
static void start_item(struct kmip_exchange *ex, size_t i)
{
	struct kmip_op_ctx *ctx = &ex->ctx;
	const struct kmip_request_item *item = &ex->request.items[i];
	struct kmip_result *r = &ex->results[ex->done];

	ctx->exchange = ex;
	ctx->item = item;
	ctx->payload = item->payload;
	ctx->version = ex->version;
	ctx->arena = &ex->arena;
	ctx->result = r;
	ctx->app = ex->config.app;
	ttlv_writer_init(&ctx->out, &ex->payloads);
	ex->payload_at[ex->done] = ex->payloads.len;

	memset(r, 0, sizeof(*r));
	r->operation = item->operation;
	r->has_batch_id = item->has_batch_id;
	r->batch_id = item->batch_id;
	r->status = KMIP_STATUS_SUCCESS;
	r->has_payload = true;
	ex->item_synced = ex->syncing = ex->sync_ok = false;
}

/* Records the end of the current item; returns true if the batch stops here. */
static bool finish_item(struct kmip_exchange *ex)
{
	struct kmip_op_ctx *ctx = &ex->ctx;
	struct kmip_result *r = ctx->result;

	if (ttlv_writer_finish(&ctx->out) != 0 && r->status == KMIP_STATUS_SUCCESS)
		kmip_op_fail(ctx, KMIP_REASON_GENERAL_FAILURE,
			     "the server could not encode the response payload (out of memory)");
	if (r->status == KMIP_STATUS_SUCCESS)
		r->payload.len = ex->payloads.len - ex->payload_at[ex->done];
	ex->done++;
	return r->status != KMIP_STATUS_SUCCESS &&
	       ex->request.header.batch_error_option != KMIP_BATCH_ERROR_CONTINUE;
}

/* Checks what the message layer can decide for an item on its own: a parse problem, an
 * operation that does not exist in the request's version or is not implemented. Returns
 * the handler to run, or NULL after failing the item. */
static kmip_op_handler admit_item(struct kmip_exchange *ex, struct kmip_op_ctx *ctx)
{
	const struct kmip_request_item *item = ctx->item;
	const struct kmip_op_def *op;
	unsigned v = ex->request.header.version;
	const char *name;

	if (item->error_reason != 0) {
		kmip_op_fail(ctx, item->error_reason, "%s", item->error_message);
		return NULL;
	}
	op = kmip_op_lookup(item->operation);
	name = kmip_enum_name(KMIP_FAMILY_OP, item->operation);
	if (!kmip_version_supported(v) && item->operation != KMIP_OP_DISCOVER_VERSIONS) {
		kmip_op_fail(ctx, KMIP_REASON_INVALID_MESSAGE,
			     "protocol version %u.%u is not supported; this server speaks KMIP "
			     "1.0 to 1.4 (ask with Discover Versions)",
			     KMIP_VERSION_MAJOR(v), KMIP_VERSION_MINOR(v));
		return NULL;
	}
	if (op == NULL) {
		if (name != NULL)
			kmip_op_fail(ctx, KMIP_REASON_OPERATION_NOT_SUPPORTED,
				     "this server does not implement %s", name);
		else
			kmip_op_fail(ctx, KMIP_REASON_OPERATION_NOT_SUPPORTED,
				     "operation 0x%08X is not a KMIP operation", item->operation);
		return NULL;
	}
	if (kmip_version_supported(v) && v < op->since) {
		kmip_op_fail(ctx, KMIP_REASON_OPERATION_NOT_SUPPORTED,
			     "%s needs KMIP %u.%u or later; the request speaks %u.%u", name,
			     KMIP_VERSION_MAJOR(op->since), KMIP_VERSION_MINOR(op->since),
			     KMIP_VERSION_MAJOR(v), KMIP_VERSION_MINOR(v));
		return NULL;
	}
	if (ex->request.header.batch_error_option == KMIP_BATCH_ERROR_UNDO) {
		kmip_op_fail(ctx, KMIP_REASON_FEATURE_NOT_SUPPORTED,
			     "Batch Error Continuation Option Undo is not supported and nothing "
			     "in this batch was run; send Stop or Continue");
		return NULL;
	}
	return op->handler;
}

/* True (and the catch-up marked as started) if the item just run failed with Item Not
 * Found and this node should catch up with the cluster before saying so. */
static bool needs_sync(struct kmip_exchange *ex)
{
	const struct kmip_result *r = ex->ctx.result;

	if (ex->config.sync == NULL || ex->item_synced ||
	    r->status != KMIP_STATUS_OPERATION_FAILED || r->reason != KMIP_REASON_ITEM_NOT_FOUND)
		return false;
	ex->item_synced = true;
	ex->syncing = true;
	ex->sync_ok = false;
	return true;
}

void kmip_exchange_sync_done(struct kmip_op_ctx *ctx, bool ok)
{
	ctx->exchange->sync_ok = ok;
}

int kmip_exchange_run(struct kmip_exchange *ex)
{
	if (ex->unusable || ex->pending)
		return ex->pending ? KMIP_OP_PENDING : 0;
	while (ex->next < ex->request.count) {
		kmip_op_handler handler;

		if (ex->sync_ok) {
			/* The item runs again after a catch-up: same slot, fresh result. */
			bool synced = ex->item_synced;

			start_item(ex, ex->next++);
			ex->item_synced = synced;
		} else {
			start_item(ex, ex->next++);
		}
		handler = admit_item(ex, &ex->ctx);
		if (handler != NULL && handler(&ex->ctx) == KMIP_OP_PENDING) {
			ex->pending = true;
			return KMIP_OP_PENDING;
		}
		if (needs_sync(ex) && ex->config.sync(&ex->ctx) == KMIP_OP_PENDING) {
			ex->pending = true;
			return KMIP_OP_PENDING;
		}
		ex->syncing = false;
		if (finish_item(ex))
			break;
	}
	ex->next = ex->request.count;
	return 0;
}

void kmip_exchange_item_done(struct kmip_op_ctx *ctx)
{
	struct kmip_exchange *ex = ctx->exchange;

	ex->pending = false;
	if (ex->syncing) {
		ex->syncing = false;
		if (ex->sync_ok) {
			ex->next--; /* kmip_exchange_run() runs it again */
			return;
		}
	}
	ex->sync_ok = false;
	if (finish_item(ex))
		ex->next = ex->request.count;
}

int kmip_exchange_respond(struct kmip_exchange *ex, struct buf *out)
{
	const struct kmip_request_header *h = &ex->request.header;

	if (ex->unusable)
		return kmip_response_encode_error(&ex->error, ex->now, out);
	/* No item may have written a payload yet (payloads.data is then NULL, and every
	 * payload is empty): NULL + 0 is undefined, so leave the pointers NULL. */
	if (ex->payloads.data != NULL)
		for (size_t i = 0; i < ex->done; i++)
			ex->results[i].payload.data = ex->payloads.data + ex->payload_at[i];
	return kmip_response_encode(ex->version, ex->now, ex->results, ex->done,
				    h->has_max_response_size ? (size_t)h->max_response_size : 0,
				    out);
}

void kmip_exchange_reset(struct kmip_exchange *ex)
{
	struct kmip_exchange_config config = ex->config;
	struct arena arena = ex->arena;
	struct buf payloads = ex->payloads;

	arena_reset(&arena);
	buf_clear(&payloads);
	memset(ex, 0, sizeof(*ex));
	ex->config = config;
	ex->arena = arena;
	ex->payloads = payloads;
}

void kmip_exchange_free(struct kmip_exchange *ex)
{
	arena_free(&ex->arena);
	buf_free(&ex->payloads);
}

int kmip_process(const struct kmip_exchange_config *config, const uint8_t *msg, size_t len,
		 int64_t now, struct buf *out)
{
	struct kmip_exchange ex;
	int rv;

	kmip_exchange_init(&ex, config);
	rv = kmip_exchange_begin(&ex, msg, len, now);
	if (rv == 0)
		rv = kmip_exchange_run(&ex) == KMIP_OP_PENDING ? KMIPD_EAGAIN : 0;
	if (rv == 0)
		rv = kmip_exchange_respond(&ex, out);
	kmip_exchange_free(&ex);
	return rv;
}
