/* Worker threads: one libuv loop each, each with its own listening socket bound to the
 * same address with SO_REUSEPORT, so the kernel balances connections between them. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kmipd/audit.h"
#include "kmipd/error.h"
#include "kmipd/log.h"
#include "kmipd/object.h"
#include "kmipd/replication.h"
#include "net_internal.h"

static int bind_socket(const char *host, unsigned port, bool reuseport, int *fd_out,
		       unsigned *bound_port, char *errmsg, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int one = 1;
	int fd;

	memset(&addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&addr)->sin_addr) == 1) {
		struct sockaddr_in *in = (struct sockaddr_in *)&addr;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		addr_len = sizeof(*in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&addr)->sin6_addr) == 1) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		addr_len = sizeof(*in6);
	} else {
		snprintf(errmsg, errlen, "listen address '%s' is not an IPv4 or IPv6 address",
			 host);
		return KMIPD_EINVAL;
	}

	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(errmsg, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
	    bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, 1024) != 0) {
		int err = errno;

		snprintf(errmsg, errlen, "listening on %s:%u: %s", host, port, strerror(err));
		close(fd);
		return -err;
	}
	if (getsockname(fd, (struct sockaddr *)&addr, &addr_len) == 0)
		*bound_port = ntohs(addr.ss_family == AF_INET
					    ? ((struct sockaddr_in *)&addr)->sin_port
					    : ((struct sockaddr_in6 *)&addr)->sin6_port);
	*fd_out = fd;
	return 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct worker *worker = listener->data;

	if (status != 0) {
		log_warn("worker %u: accept: %s", worker->index, uv_strerror(status));
		return;
	}
	conn_accept(worker);
}

static void on_reply(struct mailbox *mailbox, struct mailbox_item *item)
{
	(void)mailbox;
	replication_deliver(item);
}

/* What the control mailbox carries to each worker. */
struct control_item {
	struct mailbox_item item;
	enum { CONTROL_REVOKE, CONTROL_DRAIN, CONTROL_UNDRAIN } kind;
	char tenant[OBJECT_TENANT_MAX + 1];
	char fingerprint[65]; /* "": every client of the tenant */
};

static int listen_again(struct worker *worker);

static void on_listener_closed(uv_handle_t *handle)
{
	struct worker *worker = handle->data;

	worker->closing_listener = false;
	if (worker->reopen && !worker->stopping)
		listen_again(worker);
	worker->reopen = false;
}

/* Opens the listener again after a drain: a new socket on the same port. */
static int listen_again(struct worker *worker)
{
	struct net *net = worker->net;
	char errmsg[256];
	int fd, rv;

	rv = bind_socket(net->config.host, net->port, true, &fd, &net->port, errmsg,
			 sizeof(errmsg));
	if (rv != 0) {
		log_error("worker %u: cannot listen again after the drain: %s", worker->index,
			  errmsg);
		return rv;
	}
	rv = uv_tcp_init(&worker->loop, &worker->listener);
	if (rv == 0)
		rv = uv_tcp_open(&worker->listener, fd);
	if (rv == 0) {
		worker->listener.data = worker;
		rv = uv_listen((uv_stream_t *)&worker->listener, 1024, on_connection);
	}
	if (rv != 0) {
		log_error("worker %u: cannot listen again after the drain: %s", worker->index,
			  uv_strerror(rv));
		if (!uv_is_closing((uv_handle_t *)&worker->listener))
			uv_close((uv_handle_t *)&worker->listener, NULL);
		return KMIPD_EIO;
	}
	worker->listening = true;
	return 0;
}

static void drain(struct worker *worker, bool on)
{
	if (on) {
		worker->draining = true;
		worker->reopen = false;
		if (worker->listening) {
			worker->listening = false;
			worker->closing_listener = true;
			uv_close((uv_handle_t *)&worker->listener, on_listener_closed);
		}
		conn_drain(worker);
		return;
	}
	worker->draining = false;
	if (worker->listening)
		return;
	if (worker->closing_listener)
		worker->reopen = true; /* on_listener_closed opens it */
	else
		listen_again(worker);
}

static void on_control(struct mailbox *mailbox, struct mailbox_item *item)
{
	struct worker *worker = mailbox->data;
	struct control_item *r = (struct control_item *)item;
	unsigned n;

	if (r->kind != CONTROL_REVOKE) {
		drain(worker, r->kind == CONTROL_DRAIN);
		free(r);
		return;
	}
	n = conn_revoke(worker, r->tenant, r->fingerprint[0] ? r->fingerprint : NULL);
	if (n > 0)
		log_info("tenant %s: %u connection(s) cut off on worker %u (%s)", r->tenant, n,
			 worker->index,
			 r->fingerprint[0] ? "its certificate was deleted" : "it was deleted");
	free(r);
}

void net_drain(struct net *net, bool on)
{
	for (unsigned i = 0; i < net->worker_count; i++) {
		struct control_item *r = calloc(1, sizeof(*r));

		if (r == NULL) {
			log_error("out of memory %sdraining the node", on ? "" : "un");
			return;
		}
		r->kind = on ? CONTROL_DRAIN : CONTROL_UNDRAIN;
		if (mailbox_post(&net->workers[i].control, &r->item) != 0)
			free(r); /* stopping */
	}
}

void net_revoke(struct net *net, const char *tenant, const char *fingerprint)
{
	for (unsigned i = 0; i < net->worker_count; i++) {
		struct control_item *r = calloc(1, sizeof(*r));

		if (r == NULL) {
			log_error("tenant %s: out of memory cutting off its connections", tenant);
			return;
		}
		r->kind = CONTROL_REVOKE;
		snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
		snprintf(r->fingerprint, sizeof(r->fingerprint), "%s",
			 fingerprint != NULL ? fingerprint : "");
		if (mailbox_post(&net->workers[i].control, &r->item) != 0)
			free(r); /* stopping */
	}
}

static void on_stop(uv_async_t *async)
{
	struct worker *worker = async->data;

	worker->stopping = true;
	mailbox_close(&worker->control, NULL);
	uv_close((uv_handle_t *)&worker->flush, NULL); /* the thread's end flushes the rest */
	if (!uv_is_closing((uv_handle_t *)&worker->listener))
		uv_close((uv_handle_t *)&worker->listener, NULL);
	uv_close((uv_handle_t *)&worker->stop, NULL);
	conn_drain(worker);
}

static void on_turn_end(uv_check_t *check)
{
	(void)check;
	audit_flush();
}

/* The replies mailbox stays open while connections wait for the raft loop; conn.c
 * closes it when the last connection of a stopping worker is gone. */
static void *worker_main(void *arg)
{
	struct worker *worker = arg;
	char name[16];
	int rv;

	snprintf(name, sizeof(name), "kmipd-kmip-%u", worker->index);
	pthread_setname_np(pthread_self(), name);
	rv = uv_run(&worker->loop, UV_RUN_DEFAULT);
	(void)rv;
	return NULL;
}

static int worker_init(struct worker *worker, char *errmsg, size_t errlen)
{
	int rv = uv_loop_init(&worker->loop);

	if (rv == 0)
		rv = uv_tcp_init(&worker->loop, &worker->listener);
	if (rv == 0)
		rv = uv_tcp_open(&worker->listener, worker->listen_fd);
	if (rv == 0) {
		worker->listener.data = worker;
		rv = uv_listen((uv_stream_t *)&worker->listener, 1024, on_connection);
		worker->listening = rv == 0;
	}
	if (rv == 0)
		rv = mailbox_init(&worker->replies, &worker->loop, on_reply, worker);
	if (rv == 0)
		rv = mailbox_init(&worker->control, &worker->loop, on_control, worker);
	if (rv == 0) {
		rv = uv_async_init(&worker->loop, &worker->stop, on_stop);
		worker->stop.data = worker;
	}
	if (rv == 0)
		rv = uv_check_init(&worker->loop, &worker->flush);
	if (rv == 0)
		rv = uv_check_start(&worker->flush, on_turn_end);
	if (rv != 0) {
		snprintf(errmsg, errlen, "starting worker %u: %s", worker->index, uv_strerror(rv));
		return KMIPD_EIO;
	}
	return 0;
}

int net_start(struct net **out, const struct net_config *config, char *errmsg, size_t errlen)
{
	struct net *net = calloc(1, sizeof(*net));
	unsigned count = config->workers;
	unsigned started = 0;
	int probe = -1;
	int rv = 0;

	if (net == NULL)
		return KMIPD_ENOMEM;
	if (count == 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);

		count = cores > 0 ? (unsigned)cores : 1;
	}
	net->config = *config;
	net->port = config->port;
	net->worker_count = count;
	net->workers = calloc(count, sizeof(*net->workers));
	if (net->workers == NULL) {
		free(net);
		return KMIPD_ENOMEM;
	}
	/* SO_REUSEPORT would let a second kmipd of the same user share the port and take
	 * half the connections. A probe bound without it fails if anyone listens there;
	 * with port 0 it also picks the port the workers then share. */
	rv = bind_socket(config->host, net->port, false, &probe, &net->port, errmsg, errlen);
	if (rv == 0)
		close(probe);
	/* Bind every socket before starting any thread: a port in use is reported at once. */
	for (unsigned i = 0; i < count && rv == 0; i++) {
		struct worker *worker = &net->workers[i];

		worker->net = net;
		worker->index = i;
		worker->listen_fd = -1;
		rv = bind_socket(config->host, net->port, true, &worker->listen_fd, &net->port,
				 errmsg, errlen);
	}
	for (unsigned i = 0; i < count && rv == 0; i++) {
		rv = worker_init(&net->workers[i], errmsg, errlen);
		if (rv == 0) {
			rv = pthread_create(&net->workers[i].thread, NULL, worker_main,
					    &net->workers[i]);
			if (rv != 0) {
				snprintf(errmsg, errlen, "starting worker thread: %s",
					 strerror(rv));
				rv = -rv;
			} else {
				started++;
			}
		}
	}
	if (rv != 0) {
		for (unsigned i = started; i < count; i++)
			if (net->workers[i].listen_fd >= 0)
				close(net->workers[i].listen_fd);
		net->worker_count = started;
		net_stop(net);
		return rv;
	}
	*out = net;
	return 0;
}

unsigned net_port(const struct net *net)
{
	return net->port;
}

void net_stop(struct net *net)
{
	if (net == NULL)
		return;
	for (unsigned i = 0; i < net->worker_count; i++)
		uv_async_send(&net->workers[i].stop);
	for (unsigned i = 0; i < net->worker_count; i++) {
		pthread_join(net->workers[i].thread, NULL);
		uv_loop_close(&net->workers[i].loop);
	}
	free(net->workers);
	free(net);
}
