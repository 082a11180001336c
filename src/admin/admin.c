/* The admin API's thread: its libuv loop, the listener, and the routing of requests to
 * handlers, with the check that the caller is an administrator. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "kmipd/audit.h"
#include "kmipd/command.h"
#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/log.h"
#include "kmipd/provider.h"
#include "kmipd/replication.h"

enum access {
	ACCESS_PUBLIC,	/* anyone who completes the TLS handshake */
	ACCESS_METRICS, /* administrators, or anyone with admin.public_metrics */
	ACCESS_ADMIN,	/* administrators only */
};

struct route {
	enum http_method method;
	const char *pattern; /* "*" matches one path segment */
	enum access access;
	void (*handler)(struct http_conn *c, const char **params);
	/* Reads the store after this node has caught up with the leader, so that what any
	 * node has acknowledged (a key created through another endpoint) is there. */
	bool fresh;
};

static const struct route routes[] = {
	{HTTP_GET, "/healthz", ACCESS_PUBLIC, handle_healthz},
	{HTTP_GET, "/readyz", ACCESS_PUBLIC, handle_readyz},
	{HTTP_GET, "/metrics", ACCESS_METRICS, handle_metrics},
	{HTTP_GET, "/v1/cluster", ACCESS_ADMIN, handle_cluster},
	{HTTP_POST, "/v1/cluster/members", ACCESS_ADMIN, handle_member_add},
	{HTTP_DELETE, "/v1/cluster/members/*", ACCESS_ADMIN, handle_member_remove},
	{HTTP_POST, "/v1/cluster/transfer", ACCESS_ADMIN, handle_transfer},
	{HTTP_POST, "/v1/cluster/drain", ACCESS_ADMIN, handle_drain},
	{HTTP_POST, "/v1/cluster/undrain", ACCESS_ADMIN, handle_undrain},
	{HTTP_GET, "/v1/tenants", ACCESS_ADMIN, handle_tenant_list, true},
	{HTTP_POST, "/v1/tenants", ACCESS_ADMIN, handle_tenant_create},
	{HTTP_GET, "/v1/tenants/*", ACCESS_ADMIN, handle_tenant_show, true},
	{HTTP_DELETE, "/v1/tenants/*", ACCESS_ADMIN, handle_tenant_delete},
	{HTTP_POST, "/v1/tenants/*/rotate-kek", ACCESS_ADMIN, handle_tenant_rotate_kek},
	{HTTP_GET, "/v1/tenants/*/root-key", ACCESS_ADMIN, handle_tenant_root_key},
	{HTTP_POST, "/v1/tenants/*/rewrap", ACCESS_ADMIN, handle_tenant_rewrap},
	{HTTP_GET, "/v1/tenants/*/objects", ACCESS_ADMIN, handle_object_list, true},
	{HTTP_GET, "/v1/tenants/*/objects/*", ACCESS_ADMIN, handle_object_show, true},
	{HTTP_GET, "/v1/tenants/*/clients", ACCESS_ADMIN, handle_client_list, true},
	{HTTP_POST, "/v1/tenants/*/clients", ACCESS_ADMIN, handle_client_add},
	{HTTP_GET, "/v1/tenants/*/clients/*", ACCESS_ADMIN, handle_client_show, true},
	{HTTP_POST, "/v1/tenants/*/clients/*/issue", ACCESS_ADMIN, handle_client_issue},
	{HTTP_POST, "/v1/tenants/*/clients/*/sign", ACCESS_ADMIN, handle_client_sign},
	{HTTP_GET, "/v1/tenants/*/certificates/*", ACCESS_ADMIN, handle_cert_show, true},
	{HTTP_DELETE, "/v1/tenants/*/certificates/*", ACCESS_ADMIN, handle_cert_delete},
	{HTTP_GET, "/v1/pki/ca", ACCESS_ADMIN, handle_pki_ca},
	{HTTP_GET, "/v1/pki/server", ACCESS_ADMIN, handle_pki_server},
};

#define MAX_PARAMS 4

/* Matches @path against @pattern; the segments that "*" matched go into @params (arena
 * copies). */
static bool match(struct http_conn *c, const char *pattern, const char *path, const char **params,
		  unsigned *n)
{
	*n = 0;
	while (*pattern != '\0' && *path != '\0') {
		if (*pattern == '*') {
			size_t len = strcspn(path, "/");
			char *seg;

			if (len == 0 || *n == MAX_PARAMS ||
			    (seg = arena_strndup(&c->arena, path, len)) == NULL)
				return false;
			params[(*n)++] = seg;
			pattern++;
			path += len;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	/* A trailing slash names the same thing. */
	if (*pattern == '\0' && path[0] == '/' && path[1] == '\0')
		path++;
	return *pattern == '\0' && *path == '\0';
}

void admin_audit_as(struct http_conn *c, const char *operation, const char *tenant)
{
	c->audit_op = operation;
	snprintf(c->audit_tenant, sizeof(c->audit_tenant), "%s", tenant != NULL ? tenant : "");
}

void admin_audit(struct http_conn *c, int status, const char *message)
{
	char reason[8], operation[ADMIN_PATH_MAX + 16];

	if (!audit_enabled() || (c->req.method == HTTP_GET && status != 401 && status != 403))
		return;
	snprintf(reason, sizeof(reason), "%d", status);
	if (c->audit_op != NULL)
		snprintf(operation, sizeof(operation), "%s", c->audit_op);
	else
		snprintf(operation, sizeof(operation), "%s %s", http_method_str(c->req.method),
			 c->req.path);
	audit_log(&(struct audit_event){
		.kind = "admin",
		.tenant = c->audit_tenant[0] ? c->audit_tenant : NULL,
		.client = c->admin_name[0] ? c->admin_name : NULL,
		.cert = c->fingerprint[0] ? c->fingerprint : NULL,
		.source = c->peer,
		.operation = operation,
		.result = status < 400 ? "ok" : "failed",
		.reason = status < 400 ? NULL : reason,
		.message = status < 400 ? NULL : message,
		.correlation = c->req.correlation,
	});
}

void admin_dispatch(struct http_conn *c)
{
	const char *params[MAX_PARAMS] = {NULL};
	bool path_known = false;
	unsigned n;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];

		if (!match(c, r->pattern, c->req.path, params, &n))
			continue;
		path_known = true;
		if (r->method != c->req.method)
			continue;
		if (r->access == ACCESS_ADMIN ||
		    (r->access == ACCESS_METRICS && !c->admin->config.public_metrics)) {
			if (c->fingerprint[0] == '\0') {
				http_error(c, 401,
					   "%s needs an administrator's client certificate from "
					   "the cluster CA (kmipctl issue-admin)",
					   c->req.path);
				return;
			}
			if (c->admin_name[0] == '\0') {
				http_error(
					c, 403,
					"this client certificate does not name an administrator "
					"(urn:kmipd:admin:NAME); KMIP client certificates cannot "
					"use the admin API");
				return;
			}
		}
		if (r->fresh && admin_catch_up(c))
			return; /* dispatched again once caught up */
		r->handler(c, params);
		return;
	}
	if (path_known)
		http_error(c, 405, "%s does not take %s", c->req.path,
			   http_method_str(c->req.method));
	else
		http_error(c, 404, "no such resource: %s", c->req.path);
}

static void caught_up(void *arg, const struct command_result *result)
{
	struct http_conn *c = arg;

	if (!admin_resume(c))
		return;
	if (result->status != 0) {
		http_error(c, 503,
			   "this node could not catch up with the cluster's leader (%s), so it "
			   "cannot tell whether what it holds is current; try again or ask another "
			   "node",
			   result->message[0] ? result->message : "no leader");
		return;
	}
	admin_dispatch(c); /* again, on a store that has everything the leader had */
}

bool admin_catch_up(struct http_conn *c)
{
	if (c->caught_up)
		return false;
	c->caught_up = true;
	if (replication_catch_up(c->admin->config.replication, &c->admin->replies, caught_up, c) !=
	    0)
		return false;
	admin_wait(c);
	return true;
}

/* ---- Changes ---- */

struct change {
	struct http_conn *c;
	struct command cmd; /* as submitted; its pointers are not followed afterwards */
	int status_ok;
	admin_done_fn done;
};

/* Maps a refused change to an HTTP status. */
static int status_of(int rv)
{
	switch (rv) {
	case KMIPD_EEXISTS:
		return 409;
	case KMIPD_ENOT_FOUND:
		return 404;
	case KMIPD_EINVAL:
	case KMIPD_EMALFORMED:
		return 400;
	case KMIPD_ENO_QUORUM:
	case KMIPD_EAGAIN:
	case KMIPD_ECANCELED:
		return 503;
	default:
		return 500;
	}
}

static void changed(void *arg, const struct command_result *result)
{
	struct change *ch = arg;
	struct http_conn *c = ch->c;
	int status = result->status != 0 ? status_of(result->status) : ch->status_ok;
	const char *message = result->status == 0  ? NULL
			      : result->message[0] ? result->message
						   : kmipd_strerror(result->status);

	if (c->stream == NULL || c->admin->stopping)
		admin_audit(c, status, message); /* the client left; the change stands */
	if (admin_resume(c)) {
		if (result->status != 0)
			http_error(c, status, "%s", message);
		else
			ch->done(c, &ch->cmd, result);
	}
	free(ch);
}

void admin_submit(struct http_conn *c, struct command *cmd, int status_ok, admin_done_fn done)
{
	struct change *ch = calloc(1, sizeof(*ch));
	struct buf entry = BUF_INIT;
	int rv;

	if (ch == NULL) {
		http_error(c, 500, "out of memory");
		return;
	}
	ch->c = c;
	ch->status_ok = status_ok;
	ch->done = done;
	rv = crypto_request_id(cmd->request_id);
	if (rv == 0)
		rv = command_encode(cmd, &entry);
	if (rv == 0) {
		ch->cmd = *cmd;
		rv = replication_submit(c->admin->config.replication, &entry, &c->admin->replies,
					changed, ch);
	}
	buf_free(&entry);
	if (rv != 0) {
		free(ch);
		http_error(c, rv == KMIPD_ECANCELED ? 503 : 500, "the change could not be made: %s",
			   kmipd_strerror(rv));
		return;
	}
	admin_wait(c);
}

/* ---- The thread ---- */

static void on_connection(uv_stream_t *listener, int status)
{
	struct admin *admin = listener->data;

	if (status != 0) {
		log_warn("admin: accept: %s", uv_strerror(status));
		return;
	}
	http_accept(admin);
}

static void on_reply(struct mailbox *mailbox, struct mailbox_item *item)
{
	(void)mailbox;
	replication_deliver(item);
}

static void on_turn_end(uv_check_t *check)
{
	(void)check;
	audit_flush();
}

/* admin_close(): the listener and every connection close; no handler runs afterwards. */
static void on_close(uv_async_t *async)
{
	struct admin *admin = async->data;

	if (!admin->stopping) {
		admin->stopping = true;
		uv_close((uv_handle_t *)&admin->listener, NULL);
		http_close_all(admin);
	}
	pthread_mutex_lock(&admin->lock);
	admin->closed = true;
	pthread_cond_signal(&admin->cond);
	pthread_mutex_unlock(&admin->lock);
}

static void on_stop(uv_async_t *async)
{
	struct admin *admin = async->data;

	on_close(&admin->close);
	provider_close(admin->keyprotect);
	provider_close(admin->hpcs);
	uv_close((uv_handle_t *)&admin->stop, NULL);
	uv_close((uv_handle_t *)&admin->close, NULL);
	uv_close((uv_handle_t *)&admin->flush, NULL);
	/* The raft loop has stopped (admin_stop comes after replication_stop) and has posted
	 * an answer for every change it was given: closing the mailbox handles them, and the
	 * connections that waited are freed. */
	mailbox_close(&admin->replies, NULL);
}

static void *admin_main(void *arg)
{
	struct admin *admin = arg;

	pthread_setname_np(pthread_self(), "kmipd-admin");
	uv_run(&admin->loop, UV_RUN_DEFAULT);
	audit_flush();
	return NULL;
}

static void close_handle(uv_handle_t *handle, void *arg)
{
	(void)arg;
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

static int bind_listener(struct admin *admin, char *errmsg, size_t errlen)
{
	struct sockaddr_storage addr;
	int len = sizeof(addr), rv;

	memset(&addr, 0, sizeof(addr));
	if (uv_ip4_addr(admin->config.host, (int)admin->config.port, (struct sockaddr_in *)&addr) !=
		    0 &&
	    uv_ip6_addr(admin->config.host, (int)admin->config.port,
			(struct sockaddr_in6 *)&addr) != 0) {
		snprintf(errmsg, errlen, "admin.listen: '%s' is not an IPv4 or IPv6 address",
			 admin->config.host);
		return KMIPD_EINVAL;
	}
	rv = uv_tcp_init(&admin->loop, &admin->listener);
	if (rv == 0)
		rv = uv_tcp_bind(&admin->listener, (struct sockaddr *)&addr, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&admin->listener, 128, on_connection);
	if (rv != 0) {
		snprintf(errmsg, errlen, "admin API on %s:%u: %s (set admin.listen, or 'off')",
			 admin->config.host, admin->config.port, uv_strerror(rv));
		return rv == UV_EADDRINUSE ? -EADDRINUSE : KMIPD_EIO;
	}
	admin->listener.data = admin;
	if (uv_tcp_getsockname(&admin->listener, (struct sockaddr *)&addr, &len) == 0)
		admin->port = ntohs(addr.ss_family == AF_INET
					    ? ((struct sockaddr_in *)&addr)->sin_port
					    : ((struct sockaddr_in6 *)&addr)->sin6_port);
	return 0;
}

int admin_start(struct admin **out, const struct admin_config *config, char *errmsg, size_t errlen)
{
	struct admin *admin = calloc(1, sizeof(*admin));
	int rv;

	if (admin == NULL)
		return KMIPD_ENOMEM;
	admin->config = *config;
	rv = uv_loop_init(&admin->loop);
	if (rv != 0) {
		free(admin);
		snprintf(errmsg, errlen, "admin API: %s", uv_strerror(rv));
		return KMIPD_EIO;
	}
	pthread_mutex_init(&admin->lock, NULL);
	pthread_cond_init(&admin->cond, NULL);
	rv = bind_listener(admin, errmsg, errlen);
	if (rv == 0 && (mailbox_init(&admin->replies, &admin->loop, on_reply, admin) != 0 ||
			uv_async_init(&admin->loop, &admin->stop, on_stop) != 0 ||
			uv_async_init(&admin->loop, &admin->close, on_close) != 0 ||
			uv_check_init(&admin->loop, &admin->flush) != 0 ||
			uv_check_start(&admin->flush, on_turn_end) != 0)) {
		snprintf(errmsg, errlen, "admin API: cannot set up its loop");
		rv = KMIPD_EIO;
	}
	admin->stop.data = admin;
	admin->close.data = admin;
	if (rv == 0 && (rv = pthread_create(&admin->thread, NULL, admin_main, admin)) != 0) {
		snprintf(errmsg, errlen, "starting the admin thread: %s", strerror(rv));
		rv = -rv;
	}
	if (rv != 0) {
		uv_walk(&admin->loop, close_handle, NULL);
		uv_run(&admin->loop, UV_RUN_DEFAULT);
		uv_loop_close(&admin->loop);
		pthread_mutex_destroy(&admin->lock);
		pthread_cond_destroy(&admin->cond);
		free(admin);
		return rv;
	}
	*out = admin;
	return 0;
}

unsigned admin_port(const struct admin *admin)
{
	return admin->port;
}

void admin_close(struct admin *admin)
{
	if (admin == NULL)
		return;
	uv_async_send(&admin->close);
	pthread_mutex_lock(&admin->lock);
	while (!admin->closed)
		pthread_cond_wait(&admin->cond, &admin->lock);
	pthread_mutex_unlock(&admin->lock);
}

void admin_stop(struct admin *admin)
{
	if (admin == NULL)
		return;
	uv_async_send(&admin->stop);
	pthread_join(admin->thread, NULL);
	uv_loop_close(&admin->loop);
	pthread_mutex_destroy(&admin->lock);
	pthread_cond_destroy(&admin->cond);
	free(admin);
}
