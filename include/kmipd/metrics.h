/* The node's metrics, for the admin API's /metrics (Prometheus text format 0.0.4).
 *
 * Counters and histograms are process-wide and lock-free: any thread adds to them with
 * relaxed atomic operations, and a scrape reads them as they are at that moment (a scrape
 * may see one counter of a pair incremented and not the other; Prometheus expects that).
 * Values that belong to another thread (Raft's state, object counts) are not kept here:
 * the admin API asks for them at scrape time and renders them with metrics_gauge(). */
#ifndef KMIPD_METRICS_H
#define KMIPD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "kmipd/buf.h"

/* A KMIP batch item of @operation (KMIP_OP_*, 0 if none) ended with @reason
 * (KMIP_REASON_*, 0 for success) after @seconds. */
void metrics_kmip_item(uint32_t operation, uint32_t reason, double seconds);

/* A TLS handshake on the KMIP port ended: @ok, or failed. */
void metrics_tls_handshake(int ok);
/* A KMIP connection opened (+1) or closed (-1). */
void metrics_connections(int delta);
/* A write this node forwarded to the leader ended: @ok, or failed (no leader, refused). */
void metrics_forwarded(int ok);
/* This node, the leader, appended a Raft entry carrying @writes writes (batching). */
void metrics_appended(unsigned writes);
/* This node took a checkpoint of its store (its Raft snapshot). */
void metrics_checkpoint(void);
/* A root-key operation (@operation "wrap", "unwrap", "rewrap" or "metadata") by @provider
 * ("local", "keyprotect", "hpcs") ended: @ok, or failed (a provider's call counts once,
 * after its retries). */
void metrics_root_key(const char *provider, const char *operation, int ok);
/* An admin API request ended with HTTP @status. */
void metrics_admin_request(int status);

/* Appends every counter and histogram above to @out in the text format, with HELP and
 * TYPE lines. 0 or KMIPD_ENOMEM. */
int metrics_render(struct buf *out);

/* Appends one sample of gauge @name: "# HELP" and "# TYPE" lines first when @help is not
 * NULL, then "@name{@labels} @value". @labels is NULL or a label list without braces whose
 * values the caller has escaped (metrics_escape). 0 or KMIPD_ENOMEM. */
int metrics_gauge(struct buf *out, const char *name, const char *help, const char *labels,
		  double value);

/* Writes @value into @out (@cap bytes, truncated if need be) escaped as a label value:
 * backslash, double quote and newline become \\, \" and \n. Returns @out. */
char *metrics_escape(const char *value, char *out, size_t cap);

#endif
