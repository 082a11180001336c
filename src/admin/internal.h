/* Shared by the admin API's files; everything here lives on the admin thread. */
#ifndef KMIPD_SRC_ADMIN_INTERNAL_H
#define KMIPD_SRC_ADMIN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <http_parser.h>
#include <jansson.h>
#include <uv.h>

#include "kmipd/admin.h"
#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/mailbox.h"
#include "kmipd/store.h"
#include "kmipd/tls_stream.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#define ADMIN_BODY_MAX	(1u << 20) /* the largest request body */
#define ADMIN_PATH_MAX	1024
#define ADMIN_CONNS_MAX 256 /* open connections; more are refused at once */

struct http_conn;

struct admin {
	struct admin_config config;
	pthread_t thread;
	uv_loop_t loop;
	uv_tcp_t listener;
	int listen_fd;
	unsigned port;
	uv_async_t stop;
	uv_async_t close; /* admin_close(): no more requests */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool closed;		/* guarded by lock */
	struct mailbox replies; /* changes answered by the raft loop */
	uv_check_t flush;	/* audit lines, once per loop turn */
	struct http_conn *conns;
	unsigned conn_count;
	bool stopping;
	atomic_bool drained; /* read by /readyz */
	/* Made on first use, for wrapping new cloud tenants' KEKs (tenants.c). */
	struct provider *keyprotect, *hpcs;
};

/* One HTTP request, as parsed. */
struct http_request {
	enum http_method method;
	char path[ADMIN_PATH_MAX]; /* percent-decoded */
	char query[ADMIN_PATH_MAX];
	struct buf url;
	struct buf body;
	char header[32]; /* the header field being read, lower-case, truncated */
	bool header_done;
	char correlation[65]; /* X-Correlation-ID, or one made up */
	bool too_large;
};

/* One client connection: TLS, then HTTP/1.1 requests one at a time. */
struct http_conn {
	struct admin *admin;
	struct http_conn *prev, *next;
	struct tls_stream *stream; /* NULL once it has closed */
	uv_timer_t timer;	   /* idle and handshake time limit */
	http_parser parser;
	struct http_request req;
	struct buf in;	  /* received and not yet parsed */
	bool busy;	  /* a request is being answered */
	bool keep_alive;  /* of the request being answered */
	unsigned waiting; /* answers expected from the raft loop */
	bool timer_open;
	uint64_t serial;
	char peer[64];
	char admin_name[65]; /* the administrator the certificate names; "" if none */
	char fingerprint[65];
	struct arena arena; /* per request */
	/* What the audit trail calls the request being answered (set by its handler). */
	const char *audit_op;
	char audit_tenant[65];
	char error_message[512]; /* of the error being sent, for the audit trail */
	bool caught_up;		 /* the request has waited for the cluster once */
	void *pending;		 /* the handler's state while a change is applied (in @arena) */
};

/* What issuing a client certificate hands back (clients.c), in the request's arena. */
struct admin_issued {
	const char *cert_pem;
	const char *ca_pem;
	const char *key_pem; /* NULL when a CSR was signed */
};

/* Answers the request being handled. @body (@len bytes) is copied. */
void http_send(struct http_conn *c, int status, const char *content_type, const void *body,
	       size_t len);
/* Answers with @body as JSON (the reference is taken). */
void http_json(struct http_conn *c, int status, json_t *body);
/* Answers {"error": message}. */
void http_error(struct http_conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The request body as a JSON object, or NULL after answering 400 with the reason. An
 * empty body is an empty object. */
json_t *http_body_object(struct http_conn *c);

/* The value of query parameter @name (percent-decoded into the request's arena), or NULL. */
const char *http_query(struct http_conn *c, const char *name);

/* A date as ISO 8601 UTC text ("" for 0), and as JSON (null for 0). */
void admin_date_text(int64_t t, char out[32]);
json_t *admin_date(int64_t t);

/* Appends @cert as PEM to @out. 0 or KMIPD_ENOMEM. */
int admin_pem_cert(X509 *cert, struct buf *out);
/* @cert or else @key as PEM text in the request's arena. 0 or KMIPD_ENOMEM. */
int admin_pem(struct http_conn *c, X509 *cert, EVP_PKEY *key, const char **out);

/* Tenant @name, live: false after answering 404 (or starting a catch-up that runs the
 * request again) (tenants.c). */
bool admin_find_tenant(struct http_conn *c, struct store_txn *txn, const char *name,
		       struct store_tenant *t);
/* admin_find_tenant() in a read transaction of its own; @t stays valid (the request's
 * arena). */
bool admin_read_tenant(struct http_conn *c, const char *name, struct store_tenant *t);

/* Certificates that expire within 30 days or have: the server's, the cluster CA and
 * every client's, as [{"kind": "server"|"ca"|"client", "certificate" (a file, or which
 * client), "subject", "not_after", "days_left"}] (clients.c). */
json_t *admin_expiry_warnings(struct admin *admin);

/* The provider of type @type on this thread, made on first use; NULL after answering
 * why there is none (tenants.c). */
struct provider *admin_provider(struct http_conn *c, const char *type);

/* Connections (http.c). */
void http_accept(struct admin *admin);
void http_close_all(struct admin *admin);

/* Dispatches a complete request (admin.c). */
void admin_dispatch(struct http_conn *c);

/* Names the request for the audit trail: every change (any method but GET), and every
 * request refused for want of an administrator's certificate, is recorded with its
 * outcome when it is answered (admin.c). */
void admin_audit_as(struct http_conn *c, const char *operation, const char *tenant);
void admin_audit(struct http_conn *c, int status, const char *message);

/* A write submitted to the raft loop on behalf of @c: @c stays allocated until the answer
 * arrives, even if the client has gone. */
void admin_wait(struct http_conn *c);
/* The answer arrived: false if the client has gone (nothing may be sent). */
bool admin_resume(struct http_conn *c);

/* The request found nothing on this node, which may be behind the cluster: catch up with
 * the leader and run the request again. Returns true if that is under way (the caller
 * returns without answering); false if it already happened for this request or cannot
 * (a single node, stopping): then "not found" is the answer. */
bool admin_catch_up(struct http_conn *c);

/* Answers a change once applied: @cmd is the command as submitted (its pointers are not
 * valid any more), @result how it went (status 0: done). */
typedef void (*admin_done_fn)(struct http_conn *c, const struct command *cmd,
			      const struct command_result *result);

/* Submits @cmd (a request id is added) to the raft loop for @c. Once it is applied here,
 * a refusal is answered with its message and a fitting status, and success by @done
 * (@status_ok is what the audit trail records if the client has gone). */
void admin_submit(struct http_conn *c, struct command *cmd, int status_ok, admin_done_fn done);

/* Route handlers. @params are the path's wildcard segments. */
void handle_healthz(struct http_conn *c, const char **params);
void handle_readyz(struct http_conn *c, const char **params);
void handle_metrics(struct http_conn *c, const char **params);
void handle_tenant_list(struct http_conn *c, const char **params);
void handle_tenant_create(struct http_conn *c, const char **params);
void handle_tenant_show(struct http_conn *c, const char **params);
void handle_tenant_delete(struct http_conn *c, const char **params);
void handle_tenant_rotate_kek(struct http_conn *c, const char **params);
void handle_tenant_root_key(struct http_conn *c, const char **params);
void handle_tenant_rewrap(struct http_conn *c, const char **params);
void handle_object_list(struct http_conn *c, const char **params);
void handle_object_show(struct http_conn *c, const char **params);
void handle_cluster(struct http_conn *c, const char **params);
void handle_member_add(struct http_conn *c, const char **params);
void handle_member_remove(struct http_conn *c, const char **params);
void handle_transfer(struct http_conn *c, const char **params);
void handle_drain(struct http_conn *c, const char **params);
void handle_undrain(struct http_conn *c, const char **params);
void handle_client_list(struct http_conn *c, const char **params);
void handle_client_show(struct http_conn *c, const char **params);
void handle_client_add(struct http_conn *c, const char **params);
void handle_client_issue(struct http_conn *c, const char **params);
void handle_client_sign(struct http_conn *c, const char **params);
void handle_cert_show(struct http_conn *c, const char **params);
void handle_cert_delete(struct http_conn *c, const char **params);
void handle_pki_ca(struct http_conn *c, const char **params);
void handle_pki_server(struct http_conn *c, const char **params);

#endif
