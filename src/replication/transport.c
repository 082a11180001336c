/* libraft's transport over mutual TLS; see transport.h.
 *
 * A link is one TLS connection between two nodes. It is checked first (the peer's
 * certificate in on_open, then its HELLO), and only then bridged: libraft gets one end of
 * a socket pair and the link pumps bytes between the other end and the TLS stream. The
 * semantics follow libraft's own TCP transport (uv_tcp*.c): a failed connect reports
 * RAFT_NOCONNECTION, one cut short by close() RAFT_CANCELED, both only after the
 * connection's handles are closed; the stream handed over was raft_malloc()ed, since
 * libraft uv_close()s it and raft_free()s it. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/log.h"
#include "kmipd/peer_proto.h"
#include "kmipd/pki.h"
#include "kmipd/stream_write.h"
#include "kmipd/tls_stream.h"
#include "transport.h"

/* The longest HELLO (type and body): a peer that says more first is not a node. */
#define HELLO_FRAME_MAX (1 + 1 + 8 + 1 + PEER_CLUSTER_ID_MAX + 1 + PEER_ADDRESS_MAX)
#define LISTEN_BACKLOG	128
#define OPEN_TIMEOUT_MS 1500 /* connect, TLS handshake and HELLO, on a LAN: milliseconds */

struct link;

struct transport {
	struct raft_uv_transport *iface;
	uv_loop_t *loop;
	SSL_CTX *server_ctx;
	SSL_CTX *client_ctx;
	char cluster_id[PEER_CLUSTER_ID_MAX + 1];
	char address[PEER_ADDRESS_MAX + 1]; /* this node's, from init() */
	struct buf hello;		    /* this node's HELLO frame */
	uv_tcp_t listener;
	bool listener_active; /* initialised, close callback not run yet */
	raft_uv_accept_cb accept_cb;
	struct link *links; /* every connection, checked or not */
	bool closing;
	raft_uv_transport_close_cb close_cb;
	struct log_gate refusals;
};

struct link {
	struct transport *t;
	struct tls_stream *tls; /* NULL once its on_close has run */
	uv_pipe_t pipe;		/* our end of the socket pair, once bridged */
	bool pipe_active;	/* initialised, close callback not run yet */
	bool outbound;
	bool bridged;		     /* the peer's HELLO passed; libraft has its end */
	struct raft_uv_connect *req; /* outbound, until its callback has run */
	raft_id peer_id;	     /* outbound: whom we dialled; inbound: from its HELLO */
	char peer_address[PEER_ADDRESS_MAX + 1];
	struct buf in; /* what arrived before the HELLO was complete */
	/* Bounds the time from connect (or accept) to the HELLO: a SYN into a cut network
	 * is otherwise retried by TCP for minutes, and a healed partition waited for it. */
	uv_timer_t timer;
	bool timer_active; /* initialised, close callback not run yet */
	struct link *prev, *next;
};

/* "A.B.C.D:PORT" or "[IPv6]:PORT". libraft's TCP transport also resolves host names; the
 * peer channel takes literals only, and so does this. */
static int parse_address(const char *address, struct sockaddr_storage *out)
{
	const char *colon = strrchr(address, ':'), *host_start = address;
	size_t host_len;
	char host[64], *end;
	long port;

	if (colon == NULL || colon[1] == '\0')
		return KMIPD_EINVAL;
	host_len = (size_t)(colon - address);
	if (host_len >= 2 && address[0] == '[' && colon[-1] == ']') {
		host_start++;
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof(host))
		return KMIPD_EINVAL;
	memcpy(host, host_start, host_len);
	host[host_len] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port <= 0 || port > 65535)
		return KMIPD_EINVAL;
	memset(out, 0, sizeof(*out));
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0 ||
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0)
		return 0;
	return KMIPD_EINVAL;
}

static void link_close(struct link *link, const char *why);

static void on_open_timeout(uv_timer_t *timer)
{
	struct link *link = timer->data;

	if (!link->bridged)
		link_close(link, "no handshake in time");
}

/* Fires the close callback once nothing of the transport has a callback to come. */
static void maybe_closed(struct transport *t)
{
	raft_uv_transport_close_cb cb = t->close_cb;

	if (!t->closing || t->listener_active || t->links != NULL || cb == NULL)
		return;
	t->close_cb = NULL;
	cb(t->iface);
}

static void on_open_timeout(uv_timer_t *timer);

static struct link *link_new(struct transport *t, bool outbound)
{
	struct link *link = calloc(1, sizeof(*link));

	if (link == NULL)
		return NULL;
	link->t = t;
	link->outbound = outbound;
	uv_timer_init(t->loop, &link->timer);
	link->timer.data = link;
	link->timer_active = true;
	uv_timer_start(&link->timer, on_open_timeout, OPEN_TIMEOUT_MS, 0);
	link->next = t->links;
	if (t->links != NULL)
		t->links->prev = link;
	t->links = link;
	return link;
}

static void link_free(struct link *link)
{
	struct transport *t = link->t;

	if (link->prev != NULL)
		link->prev->next = link->next;
	else
		t->links = link->next;
	if (link->next != NULL)
		link->next->prev = link->prev;
	buf_free(&link->in);
	free(link);
	maybe_closed(t);
}

/* Frees @link once neither its TLS stream, its pipe nor its timer has a callback to
 * come. */
static void link_maybe_free(struct link *link)
{
	if (link->tls == NULL && !link->pipe_active && !link->timer_active)
		link_free(link);
}

static void on_timer_closed(uv_handle_t *handle)
{
	struct link *link = handle->data;

	link->timer_active = false;
	link_maybe_free(link);
}

static void stop_timer(struct link *link)
{
	if (link->timer_active && !uv_is_closing((uv_handle_t *)&link->timer))
		uv_close((uv_handle_t *)&link->timer, on_timer_closed);
}

static void on_pipe_closed(uv_handle_t *handle)
{
	struct link *link = handle->data;

	link->pipe_active = false;
	link_maybe_free(link);
}

/* Closes both sides of @link: the peer loses the connection and libraft reads EOF (or
 * fails its next write) on its end of the pair. */
static void link_close(struct link *link, const char *why)
{
	stop_timer(link);
	if (link->tls != NULL)
		tls_stream_close(link->tls, why);
	if (link->pipe_active && !uv_is_closing((uv_handle_t *)&link->pipe))
		uv_close((uv_handle_t *)&link->pipe, on_pipe_closed);
}

/* Tells libraft how its connect request ended: @stream is its end on success. */
static void connect_done(struct link *link, uv_stream_t *stream, int status)
{
	struct raft_uv_connect *req = link->req;

	link->req = NULL;
	req->cb(req, stream, status);
}

/* libraft wrote to its end: on to the peer. */
static void on_pipe_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct link *link = stream->data;

	if (nread > 0 && link->tls != NULL &&
	    tls_stream_write(link->tls, buf->base, (size_t)nread) != 0)
		link_close(link, "write failed");
	else if (nread < 0)
		link_close(link, nread == UV_EOF ? "raft closed the connection"
						 : uv_strerror((int)nread));
	free(buf->base);
}

static void on_pipe_written(uv_write_t *req, int status)
{
	struct link *link = req->handle->data;

	free(req);
	if (status != 0 && status != UV_ECANCELED)
		link_close(link, "raft closed the connection");
}

/* Passes @len bytes from the peer (copied) to libraft's end. */
static int pipe_write(struct link *link, const uint8_t *data, size_t len)
{
	struct stream_write *w = stream_write_new(len);

	if (w == NULL)
		return KMIPD_ENOMEM;
	memcpy(w->bytes, data, len);
	return stream_write((uv_stream_t *)&link->pipe, w, len, on_pipe_written) != 0 ? KMIPD_EIO
										      : 0;
}

static void free_raft_handle(uv_handle_t *handle)
{
	raft_free(handle);
}

/* Makes the socket pair: our end in link->pipe, reading, and libraft's in *@out. On error
 * link->pipe may still need closing (link_close does it). */
static int open_pair(struct link *link, uv_stream_t **out)
{
	uv_pipe_t *theirs = raft_malloc(sizeof(*theirs));
	int fds[2], rv;

	if (theirs == NULL)
		return KMIPD_ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
		rv = -errno;
		raft_free(theirs);
		return rv;
	}
	uv_pipe_init(link->t->loop, &link->pipe, 0);
	link->pipe.data = link;
	link->pipe_active = true;
	uv_pipe_init(link->t->loop, theirs, 0);
	rv = uv_pipe_open(&link->pipe, fds[0]);
	if (rv == 0) {
		fds[0] = -1;
		rv = uv_pipe_open(theirs, fds[1]);
	}
	if (rv == 0) {
		fds[1] = -1;
		rv = uv_read_start((uv_stream_t *)&link->pipe, stream_alloc, on_pipe_read);
	}
	if (rv != 0) {
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		uv_close((uv_handle_t *)theirs, free_raft_handle);
		return rv;
	}
	*out = (uv_stream_t *)theirs;
	return 0;
}

/* The peer's HELLO passed: libraft gets its end, behind whatever followed the HELLO. */
static void bridge(struct link *link)
{
	struct transport *t = link->t;
	uv_stream_t *theirs = NULL;
	int rv;

	assert(!t->closing); /* close() closed every stream: no more data */
	rv = open_pair(link, &theirs);
	if (rv == 0 && link->in.len > 0) {
		rv = pipe_write(link, link->in.data, link->in.len);
		if (rv != 0)
			uv_close((uv_handle_t *)theirs, free_raft_handle);
	}
	buf_free(&link->in);
	if (rv != 0) {
		log_warn("raft transport: cannot bridge the connection with node %llu at %s: %s",
			 (unsigned long long)link->peer_id, link->peer_address, kmipd_strerror(rv));
		link_close(link, "cannot bridge to raft");
		return;
	}
	link->bridged = true;
	stop_timer(link);
	log_debug("raft transport: %s node %llu at %s",
		  link->outbound ? "connected to" : "accepted", (unsigned long long)link->peer_id,
		  link->peer_address);
	if (link->outbound)
		connect_done(link, theirs, 0);
	else
		t->accept_cb(t->iface, link->peer_id, link->peer_address, theirs);
}

/* Logs a refusal of node @id: libraft retries every second, so a warning once a minute
 * per node and debug lines in between. */
static void refuse(struct transport *t, unsigned long long id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void refuse(struct transport *t, unsigned long long id, const char *fmt, ...)
{
	enum log_level level = log_gate_level(&t->refusals, id, uv_now(t->loop), LOG_WARN);
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_write(level, "raft transport: %s", message);
}

/* Refuses what @link's peer said or presented, before knowing (inbound) who it is. */
static void refuse_link(struct link *link, const char *why)
{
	if (link->outbound)
		refuse(link->t, link->peer_id, "refusing node %llu at %s: %s",
		       (unsigned long long)link->peer_id, link->peer_address, why);
	else
		refuse(link->t, 0, "refusing an incoming connection: %s", why);
}

/* The other side's HELLO: this version and cluster, a node (a tool has id 0 and belongs on
 * the peer channel) and, outbound, the node we dialled. Logs why not. */
static bool hello_acceptable(struct link *link, const struct peer_hello *hello)
{
	struct transport *t = link->t;
	const char *at = link->outbound ? link->peer_address : hello->address;
	unsigned long long id = (unsigned long long)hello->node_id;

	if (at[0] == '\0')
		at = "an unnamed address";
	if (hello->version != PEER_PROTO_VERSION) {
		refuse(t, id,
		       "refusing node %llu at %s: it speaks version %u, this node version %u", id,
		       at, hello->version, PEER_PROTO_VERSION);
		return false;
	}
	if (strcmp(hello->cluster_id, t->cluster_id) != 0) {
		refuse(t, id,
		       "refusing node %llu at %s: it belongs to cluster '%s', this node to "
		       "cluster '%s'",
		       id, at, hello->cluster_id, t->cluster_id);
		return false;
	}
	if (hello->node_id == 0 || (!link->outbound && hello->address[0] == '\0')) {
		log_warn("raft transport: refusing a tool at %s: the Raft port takes nodes only "
			 "(tools use the peer channel)",
			 at);
		return false;
	}
	if (link->outbound && hello->node_id != link->peer_id) {
		refuse(t, id,
		       "the node at %s says it is node %llu, not node %llu; check "
		       "cluster.members",
		       at, id, (unsigned long long)link->peer_id);
		return false;
	}
	return true;
}

/* Waits for the whole HELLO in link->in, checks it and bridges. */
static void read_hello(struct link *link)
{
	const uint8_t *body;
	size_t body_len, frame_len;
	struct peer_hello hello;
	uint8_t type;
	int rv;

	if (link->in.len >= 4 && peer_get_u32(link->in.data) > HELLO_FRAME_MAX)
		rv = KMIPD_EMALFORMED;
	else
		rv = peer_frame_next(link->in.data, link->in.len, &type, &body, &body_len,
				     &frame_len);
	if (rv == KMIPD_EAGAIN)
		return;
	if (rv != 0 || type != PEER_HELLO || peer_hello_decode(body, body_len, &hello) != 0) {
		refuse_link(link, "it did not open with a HELLO");
		tls_stream_close(link->tls, "no HELLO");
		return;
	}
	if (!hello_acceptable(link, &hello)) {
		tls_stream_close(link->tls, "HELLO refused");
		return;
	}
	if (!link->outbound) {
		link->peer_id = hello.node_id;
		memcpy(link->peer_address, hello.address, sizeof(link->peer_address));
	}
	buf_consume(&link->in, frame_len);
	bridge(link);
}

/* The handshake is done: a node certificate of our CA, or nothing more is said. */
static int on_open(struct tls_stream *stream)
{
	struct link *link = tls_stream_data(stream);
	X509 *cert = tls_stream_peer_cert(stream);

	if (cert == NULL || !pki_cert_is_node(cert)) {
		refuse_link(link, "its certificate is not a node certificate of this cluster");
		return -1;
	}
	return tls_stream_write(stream, link->t->hello.data, link->t->hello.len) != 0 ? -1 : 0;
}

static void on_data(struct tls_stream *stream, const uint8_t *data, size_t len)
{
	struct link *link = tls_stream_data(stream);

	if (link->bridged) {
		if (pipe_write(link, data, len) != 0)
			link_close(link, "out of memory");
		return;
	}
	if (buf_append(&link->in, data, len) != 0) {
		tls_stream_close(stream, "out of memory");
		return;
	}
	read_hello(link);
}

static void on_close(struct tls_stream *stream, const char *why)
{
	struct link *link = tls_stream_data(stream);
	struct transport *t = link->t;

	link->tls = NULL;
	if (link->bridged)
		log_debug("raft transport: connection with node %llu at %s closed: %s",
			  (unsigned long long)link->peer_id, link->peer_address, why);
	if (link->req != NULL) {
		/* A node that is down refuses every attempt: not worth a line each time. */
		log_debug("raft transport: cannot reach node %llu at %s: %s",
			  (unsigned long long)link->peer_id, link->peer_address, why);
		snprintf(t->iface->errmsg, sizeof(t->iface->errmsg), "connecting to %s: %s",
			 link->peer_address, why);
		connect_done(link, NULL, t->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
	}
	link_close(link, why);
	link_maybe_free(link);
}

static const struct tls_stream_callbacks callbacks = {on_open, on_data, on_close};

/* Implements raft_uv_transport->init: this node's identity, said in every HELLO. */
static int set_identity(struct raft_uv_transport *iface, raft_id id, const char *address)
{
	struct transport *t = iface->impl;
	int rv;

	if (id == 0 || strlen(address) >= sizeof(t->address)) {
		snprintf(iface->errmsg, sizeof(iface->errmsg), "invalid id or address '%s'",
			 address);
		return RAFT_INVALID;
	}
	snprintf(t->address, sizeof(t->address), "%s", address);
	buf_free(&t->hello);
	rv = peer_hello_encode(&t->hello, id, t->cluster_id, t->address);
	if (rv != 0) {
		snprintf(iface->errmsg, sizeof(iface->errmsg), "HELLO: %s", kmipd_strerror(rv));
		return rv == KMIPD_ENOMEM ? RAFT_NOMEM : RAFT_INVALID;
	}
	return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct transport *t = server->data;
	struct link *link;

	if (status != 0 || t->closing)
		return;
	link = link_new(t, false);
	if (link == NULL)
		return;
	/* On failure after the stream exists, it closes and on_close frees the link. */
	if (tls_stream_accept(server, t->server_ctx, &callbacks, link, &link->tls) != 0 &&
	    link->tls == NULL)
		stop_timer(link); /* its close callback frees the link */
}

static void on_listener_closed(uv_handle_t *handle)
{
	struct transport *t = handle->data;

	t->listener_active = false;
	maybe_closed(t);
}

/* Implements raft_uv_transport->listen, on this node's own address. */
static int start_listening(struct raft_uv_transport *iface, raft_uv_accept_cb cb)
{
	struct transport *t = iface->impl;
	struct sockaddr_storage addr;
	int rv;

	if (parse_address(t->address, &addr) != 0) {
		snprintf(iface->errmsg, sizeof(iface->errmsg), "Raft address '%s' is not IP:PORT",
			 t->address);
		return RAFT_INVALID;
	}
	t->accept_cb = cb;
	uv_tcp_init(t->loop, &t->listener);
	t->listener.data = t;
	t->listener_active = true;
	rv = uv_tcp_bind(&t->listener, (struct sockaddr *)&addr, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&t->listener, LISTEN_BACKLOG, on_connection);
	if (rv != 0) {
		snprintf(iface->errmsg, sizeof(iface->errmsg), "listening on %s: %s", t->address,
			 uv_strerror(rv));
		uv_close((uv_handle_t *)&t->listener, on_listener_closed);
		return RAFT_IOERR;
	}
	return 0;
}

/* Implements raft_uv_transport->connect. A bad address fails here, as in libraft's TCP
 * transport; everything later goes through @cb. */
static int connect_to(struct raft_uv_transport *iface, struct raft_uv_connect *req, raft_id id,
		      const char *address, raft_uv_connect_cb cb)
{
	struct transport *t = iface->impl;
	struct sockaddr_storage addr;
	struct link *link;

	assert(!t->closing);
	if (parse_address(address, &addr) != 0) {
		snprintf(iface->errmsg, sizeof(iface->errmsg), "'%s' is not IP:PORT", address);
		return RAFT_NOCONNECTION;
	}
	link = link_new(t, true);
	if (link == NULL)
		return RAFT_NOMEM;
	link->req = req;
	req->cb = cb;
	link->peer_id = id;
	snprintf(link->peer_address, sizeof(link->peer_address), "%s", address);
	/* On failure after the stream exists, it closes and on_close calls @cb. */
	if (tls_stream_connect(t->loop, (struct sockaddr *)&addr, t->client_ctx, &callbacks, link,
			       &link->tls) != 0 &&
	    link->tls == NULL) {
		link->req = NULL; /* failed here: @cb is not called */
		stop_timer(link); /* its close callback frees the link */
		return RAFT_NOMEM;
	}
	return 0;
}

/* Implements raft_uv_transport->close: no more accepting, pending connects end with
 * RAFT_CANCELED, every link closes, and @cb runs when all of that is done. */
static void close_transport(struct raft_uv_transport *iface, raft_uv_transport_close_cb cb)
{
	struct transport *t = iface->impl;

	assert(!t->closing);
	t->closing = true;
	t->close_cb = cb;
	if (t->listener_active && !uv_is_closing((uv_handle_t *)&t->listener))
		uv_close((uv_handle_t *)&t->listener, on_listener_closed);
	for (struct link *link = t->links; link != NULL; link = link->next)
		link_close(link, "the node is shutting down");
	maybe_closed(t);
}

int transport_init(struct raft_uv_transport *iface, uv_loop_t *loop, SSL_CTX *server_ctx,
		   SSL_CTX *client_ctx, const char *cluster_id)
{
	void *data = iface->data;
	size_t id_len = cluster_id != NULL ? strlen(cluster_id) : 0;
	struct transport *t;

	if (loop == NULL || server_ctx == NULL || client_ctx == NULL || id_len == 0 ||
	    id_len > PEER_CLUSTER_ID_MAX)
		return KMIPD_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return KMIPD_ENOMEM;
	t->iface = iface;
	t->loop = loop;
	t->refusals.interval_ms = 60000;
	SSL_CTX_up_ref(server_ctx);
	t->server_ctx = server_ctx;
	SSL_CTX_up_ref(client_ctx);
	t->client_ctx = client_ctx;
	memcpy(t->cluster_id, cluster_id, id_len);

	memset(iface, 0, sizeof(*iface));
	iface->version = 1;
	iface->data = data;
	iface->impl = t;
	iface->init = set_identity;
	iface->listen = start_listening;
	iface->connect = connect_to;
	iface->close = close_transport;
	return 0;
}

void transport_free(struct raft_uv_transport *iface)
{
	struct transport *t = iface->impl;

	if (t == NULL)
		return;
	assert(t->links == NULL && !t->listener_active);
	SSL_CTX_free(t->server_ctx);
	SSL_CTX_free(t->client_ctx);
	buf_free(&t->hello);
	free(t);
	iface->impl = NULL;
}
