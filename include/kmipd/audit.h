/* The audit trail: one JSON object per line for every KMIP batch item and every admin
 * change, written to a file (or standard output) of its own, apart from the log.
 *
 *   {"time":"2026-12-05T15:04:05.123Z","node":1,"kind":"kmip","tenant":"vcenter",
 *    "client":"vc01","cert":"<sha-256 of the certificate>","source":"10.0.0.5:51234",
 *    "operation":"Get","uid":"…","result":"ok","correlation":"1-17-3"}
 *
 * Failures add "reason" (the KMIP Result Reason, or the HTTP status for admin requests)
 * and "message". Events never carry key material: the fields are identifiers, names and
 * the sentences kmipd writes for its clients.
 *
 * Threads append events to a buffer of their own and flush it with audit_flush() (workers
 * at the end of each loop turn), so a busy worker pays one write per turn, not per event;
 * a buffer is also flushed when it grows past 16 KiB. audit_reopen() (on SIGHUP) opens the
 * path again, for log rotation. */
#ifndef KMIPD_AUDIT_H
#define KMIPD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct audit_event {
	const char *kind;	 /* "kmip" or "admin" */
	const char *tenant;	 /* NULL: none */
	const char *client;	 /* the KMIP client, or the admin's name */
	const char *cert;	 /* the client certificate's fingerprint */
	const char *source;	 /* peer address "host:port" */
	const char *operation;	 /* "Create", or "POST /v1/tenants" */
	const char *uid;	 /* the object acted on, if any */
	const char *result;	 /* "ok" or "failed" */
	const char *reason;	 /* when failed */
	const char *message;	 /* when failed: why */
	const char *correlation; /* ties the events of one request together */
};

/* Starts writing to @path ("-": standard output; NULL or "": nothing is written) as node
 * @node. On failure a sentence naming the path goes into @errmsg. */
int audit_open(const char *path, uint64_t node, char *errmsg, size_t errlen);

/* True when events are written (audit_log is a no-op otherwise). */
bool audit_enabled(void);

/* Appends @event to this thread's buffer. */
void audit_log(const struct audit_event *event);

/* Writes this thread's buffered events. */
void audit_flush(void);

/* Opens the path again (after rotation); events keep their order. Returns 0, or an error
 * (the old file stays in use and the error is logged). */
int audit_reopen(void);

/* Flushes the calling thread's events and closes the sink. */
void audit_close(void);

#endif
