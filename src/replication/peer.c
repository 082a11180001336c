/* The peer channel: mutual-TLS connections between nodes, on the port after each node's
 * Raft port. Followers forward writes to the leader and hear their outcome; nodes and
 * kmipctl ask for status and membership changes. Frames and the HELLO that opens every
 * connection are in peer_proto.h:
 *
 *   FORWARD  id (8)  entry (the rest)                      follower -> leader
 *   SYNC     id (8)   (a catch-up: the leader answers with a barrier's index)  f -> l
 *   RESULT   id (8)  index (8)  status (4)  attr index (4)  state (4)  retry (1)
 *            message length (2)  message                  leader -> follower
 *
 * Only certificates issued by the cluster CA with the node URI may connect (a KMIP client
 * certificate cannot), and only with this cluster's id. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kmipd/error.h"
#include "kmipd/log.h"
#include "kmipd/peer_proto.h"
#include "kmipd/pki.h"

#define REQUEST_TIMEOUT_MS 5000 /* a one-shot request without an answer is dropped */

struct peer {
	struct replication *repl;
	struct tls_stream *stream;
	struct buf in;
	bool outbound;
	bool opened;  /* the TLS handshake completed */
	bool greeted; /* the other side's HELLO arrived and names this cluster */
	raft_id id;   /* outbound: the node we connected to; inbound: from its HELLO (0: a tool) */
	/* Outbound one-shot requests (status, join): who hears the answer, and until when. */
	peer_answer_fn on_answer;
	void *answer_arg;
	uint64_t deadline_ms;
	bool oneshot;
	struct peer *prev, *next;
};

raft_id peer_node(const struct peer *peer)
{
	return peer != NULL ? peer->id : 0;
}

int peer_address(const char *raft_address, struct sockaddr_storage *out)
{
	const char *colon = strrchr(raft_address, ':');
	char host[64];
	int port;

	if (colon == NULL || (size_t)(colon - raft_address) >= sizeof(host))
		return KMIPD_EINVAL;
	memcpy(host, raft_address, (size_t)(colon - raft_address));
	host[colon - raft_address] = '\0';
	port = atoi(colon + 1);
	if (port <= 0 || port >= 65535)
		return KMIPD_EINVAL;
	if (uv_ip4_addr(host, port + 1, (struct sockaddr_in *)out) == 0 ||
	    uv_ip6_addr(host, port + 1, (struct sockaddr_in6 *)out) == 0)
		return 0;
	return KMIPD_EINVAL;
}

static void result_failed(struct proposal *p, int status, const char *why)
{
	proposal_fail(p, status, "%s", why);
}

/* Leader side: a follower's write, or its catch-up (@sync: no entry). */
static void handle_forward(struct peer *peer, const uint8_t *body, size_t len, bool sync)
{
	struct replication *repl = peer->repl;
	struct proposal *p;
	size_t entry_len = len - 8;

	if (sync ? entry_len != 0 : entry_len == 0 || entry_len % 8 != 0) {
		tls_stream_close(peer->stream, "malformed forwarded entry");
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL || (!sync && (p->buf.base = raft_malloc(entry_len)) == NULL)) {
		free(p);
		tls_stream_close(peer->stream, "out of memory");
		return;
	}
	if (!sync)
		memcpy(p->buf.base, body + 8, entry_len);
	p->buf.len = entry_len;
	p->is_sync = sync;
	p->repl = repl;
	p->origin = peer;
	p->origin_id = peer_get_u64(body);
	p->deadline_ms = uv_now(&repl->loop) + repl->config.write_timeout_ms;
	proposal_route(p);
}

/* Follower side: how a forwarded write ended at the leader. */
static void handle_result(struct peer *peer, const uint8_t *body, size_t len)
{
	struct replication *repl = peer->repl;
	uint64_t id, index;
	size_t msg_len;
	struct proposal *p;

	if (len < 8 + 8 + 4 + 4 + 4 + 1 + 2) {
		tls_stream_close(peer->stream, "malformed result");
		return;
	}
	id = peer_get_u64(body);
	index = peer_get_u64(body + 8);
	msg_len = (size_t)body[29] << 8 | body[30];
	if (31 + msg_len != len) {
		tls_stream_close(peer->stream, "malformed result");
		return;
	}
	for (p = repl->forwarded.head; p != NULL && p->forward_id != id; p = p->next)
		;
	if (p == NULL)
		return; /* answered already (timed out) */
	if (body[28] || (int32_t)peer_get_u32(body + 16) == KMIPD_EAGAIN) {
		/* The leader had not applied it (it was no longer leading), or lost
		 * leadership with it in flight: route again (the request id makes that
		 * safe). */
		proposal_list_remove(&repl->forwarded, p);
		p->state = PROPOSAL_NEW;
		p->via = NULL;
		proposal_route(p);
		return;
	}
	if (p->reply != NULL) {
		struct command_result *r = &p->reply->result;

		r->status = (int32_t)peer_get_u32(body + 16);
		r->index = peer_get_u32(body + 20);
		r->state = peer_get_u32(body + 24);
		snprintf(r->message, sizeof(r->message), "%.*s", (int)msg_len, body + 31);
	}
	if (p->is_sync && p->reply != NULL && p->reply->result.status != 0) {
		/* The leader could not confirm (it lost leadership): ask again. */
		proposal_list_remove(&repl->forwarded, p);
		p->state = PROPOSAL_NEW;
		p->via = NULL;
		p->reply->result.status = 0;
		proposal_route(p);
		return;
	}
	p->index = index;
	p->via = NULL;
	if (p->buf.base != NULL)
		raft_free(p->buf.base);
	p->buf.base = NULL;
	/* Answer once this node has the entry in its own store: a client reads what it
	 * wrote through the node it wrote through. */
	proposal_list_remove(&repl->forwarded, p);
	p->state = PROPOSAL_WAIT_APPLY;
	proposal_list_push(&repl->wait_apply, p);
	if (p->reply == NULL || index <= repl->committed)
		proposal_answer(p);
}

void peer_send(struct peer *peer, enum peer_frame type, const void *body, size_t len)
{
	struct buf frame = BUF_INIT;

	if (peer_frame_begin(&frame, type, len) != 0 || buf_append(&frame, body, len) != 0 ||
	    tls_stream_write(peer->stream, frame.data, frame.len) != 0)
		tls_stream_close(peer->stream, "write failed");
	buf_free(&frame);
}

static int send_hello(struct peer *peer)
{
	struct replication *repl = peer->repl;
	struct buf hello = BUF_INIT;
	int rv = peer_hello_encode(&hello, repl->config.id, repl->cluster_id, repl->address);

	if (rv == 0)
		rv = tls_stream_write(peer->stream, hello.data, hello.len);
	buf_free(&hello);
	return rv;
}

/* The other side's HELLO: same cluster, and (outbound) the node we meant to reach. */
static bool check_hello(struct peer *peer, const uint8_t *body, size_t len)
{
	struct replication *repl = peer->repl;
	struct peer_hello hello;

	if (peer_hello_decode(body, len, &hello) != 0 || hello.version != PEER_PROTO_VERSION) {
		log_warn("peer channel: refusing a connection that does not speak this version");
		return false;
	}
	if (strcmp(hello.cluster_id, repl->cluster_id) != 0) {
		/* A stray node asks again every half second: once a minute is enough. */
		log_write(log_gate_level(&repl->peer_refusals, hello.node_id, uv_now(&repl->loop),
					 LOG_WARN),
			  "peer channel: refusing node %llu%s%s: it belongs to cluster '%s', this "
			  "node to cluster '%s'",
			  (unsigned long long)hello.node_id, hello.address[0] ? " at " : "",
			  hello.address, hello.cluster_id, repl->cluster_id);
		return false;
	}
	if (peer->outbound && peer->id != 0 && hello.node_id != peer->id) {
		log_warn("peer channel: the node at %s says it is node %llu, not node %llu; check "
			 "cluster.members",
			 hello.address, (unsigned long long)hello.node_id,
			 (unsigned long long)peer->id);
		return false;
	}
	if (!peer->outbound)
		peer->id = hello.node_id;
	peer->greeted = true;
	return true;
}

/* A one-shot request's answer (or its failure) goes to whoever asked, once. */
static void answer(struct peer *peer, int status, uint8_t type, const uint8_t *body, size_t len)
{
	peer_answer_fn cb = peer->on_answer;

	peer->on_answer = NULL;
	if (cb != NULL)
		cb(peer->repl, peer->answer_arg, status, type, body, len);
}

/* One frame from the other side; false closes the connection. */
static bool handle_frame(struct peer *peer, uint8_t type, const uint8_t *body, size_t len)
{
	bool node = peer->id != 0; /* a node, not a tool */
	struct buf status = BUF_INIT;

	if (!peer->greeted)
		return type == PEER_HELLO && check_hello(peer, body, len);
	if (peer->outbound) {
		switch (type) {
		case PEER_RESULT:
			handle_result(peer, body, len);
			return true;
		case PEER_STATUS:
		case PEER_ADMIN:
			if (peer->on_answer == NULL)
				return false;
			answer(peer, 0, type, body, len);
			tls_stream_close(peer->stream, "answered");
			return true;
		default:
			return false;
		}
	}
	switch (type) {
	case PEER_FORWARD:
	case PEER_SYNC:
		if (!node || len < 8)
			return false;
		handle_forward(peer, body, len, type == PEER_SYNC);
		return true;
	case PEER_STATUS_REQ:
		if (cluster_status(peer->repl, &status) != 0) {
			buf_free(&status);
			return false;
		}
		peer_send(peer, PEER_STATUS, status.data, status.len);
		buf_free(&status);
		return true;
	case PEER_ADD:
	case PEER_JOIN:
		/* A node joins as itself only. */
		if (len <= 8 || len > 8 + PEER_ADDRESS_MAX ||
		    (type == PEER_JOIN && (!node || peer_get_u64(body) != peer->id)))
			return false;
		cluster_change(peer->repl, peer, NULL, type, peer_get_u64(body),
			       (const char *)body + 8, len - 8);
		return true;
	case PEER_REMOVE:
	case PEER_TRANSFER:
		if (len != 8)
			return false;
		cluster_change(peer->repl, peer, NULL, type, peer_get_u64(body), NULL, 0);
		return true;
	default:
		return false;
	}
}

static void on_data(struct tls_stream *stream, const uint8_t *data, size_t len)
{
	struct peer *peer = tls_stream_data(stream);
	const uint8_t *body;
	size_t body_len, frame_len;
	uint8_t type;
	int rv;

	if (buf_append(&peer->in, data, len) != 0) {
		tls_stream_close(stream, "out of memory");
		return;
	}
	while ((rv = peer_frame_next(peer->in.data, peer->in.len, &type, &body, &body_len,
				     &frame_len)) == 0) {
		if (!handle_frame(peer, type, body, body_len)) {
			tls_stream_close(stream, peer->greeted ? "unexpected frame" : "refused");
			return;
		}
		buf_consume(&peer->in, frame_len);
	}
	if (rv != KMIPD_EAGAIN)
		tls_stream_close(stream, "oversized frame");
}

static int on_open(struct tls_stream *stream)
{
	struct peer *peer = tls_stream_data(stream);
	X509 *cert = tls_stream_peer_cert(stream);

	if (cert == NULL || !pki_cert_is_node(cert)) {
		log_warn("peer channel: refusing a connection whose certificate is not a "
			 "node certificate of this cluster");
		return -1;
	}
	log_debug("peer channel: %s node connection open", peer->outbound ? "outbound" : "inbound");
	peer->opened = true;
	/* The outbound side queued its HELLO with its first frame. */
	return peer->outbound ? 0 : send_hello(peer);
}

static void on_close(struct tls_stream *stream, const char *why)
{
	struct peer *peer = tls_stream_data(stream);
	struct replication *repl = peer->repl;
	struct proposal *p, *next;

	if (peer->oneshot) {
		answer(peer, KMIPD_EIO, 0, (const uint8_t *)why, strlen(why));
	} else if (peer->outbound) {
		if (repl->to_leader == peer)
			repl->to_leader = NULL;
		/* Their outcome is unknown; each carries a request id, so sending it again
		 * (to whoever leads next) cannot apply it twice. */
		for (p = repl->forwarded.head; p != NULL; p = next) {
			next = p->next;
			if (p->via != peer)
				continue;
			proposal_list_remove(&repl->forwarded, p);
			p->state = PROPOSAL_NEW;
			p->via = NULL;
			if (repl->stopping) {
				result_failed(p, KMIPD_ECANCELED, "the node is shutting down");
			} else {
				/* Routed again on the next tick, when raft may know the new
				 * leader. */
				p->state = PROPOSAL_WAIT_LEADER;
				proposal_list_push(&repl->wait_leader, p);
			}
		}
		/* A node that is down refuses every attempt: not worth a line each time. */
		if (peer->opened)
			log_info("peer channel: connection to node %llu closed: %s",
				 (unsigned long long)peer->id, why);
		else
			log_debug("peer channel: cannot reach node %llu: %s",
				  (unsigned long long)peer->id, why);
	}
	cluster_peer_closed(repl, peer);
	/* Writes this follower forwarded go on in Raft; nobody hears their result. */
	struct proposal_list *lists[] = {&repl->batching, &repl->inflight, &repl->batched};

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (p = lists[i]->head; p != NULL; p = p->next)
			if (p->origin == peer)
				p->origin = NULL;
	if (peer->prev != NULL)
		peer->prev->next = peer->next;
	else if (repl->peers == peer)
		repl->peers = peer->next;
	if (peer->next != NULL)
		peer->next->prev = peer->prev;
	buf_free(&peer->in);
	free(peer);
}

static const struct tls_stream_callbacks callbacks = {on_open, on_data, on_close};

static struct peer *peer_new(struct replication *repl, bool outbound)
{
	struct peer *peer = calloc(1, sizeof(*peer));

	if (peer == NULL)
		return NULL;
	peer->repl = repl;
	peer->outbound = outbound;
	peer->next = repl->peers;
	if (repl->peers != NULL)
		repl->peers->prev = peer;
	repl->peers = peer;
	return peer;
}

/* Drops a peer whose stream could not even be created (on_close will not run). */
static void peer_forget(struct peer *peer)
{
	struct replication *repl = peer->repl;

	if (peer->prev != NULL)
		peer->prev->next = peer->next;
	else
		repl->peers = peer->next;
	if (peer->next != NULL)
		peer->next->prev = peer->prev;
	free(peer);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct replication *repl = server->data;
	struct peer *peer;

	if (status != 0)
		return;
	peer = peer_new(repl, false);
	if (peer == NULL)
		return;
	/* On failure after the stream exists, it closes and on_close frees the peer. */
	if (tls_stream_accept(server, repl->config.peer_server_tls, &callbacks, peer,
			      &peer->stream) != 0 &&
	    peer->stream == NULL)
		peer_forget(peer);
}

int peer_listen(struct replication *repl, char *errmsg, size_t errlen)
{
	struct sockaddr_storage addr;
	int rv;

	if (peer_address(repl->address, &addr) != 0) {
		snprintf(errmsg, errlen, "Raft address '%s' is not HOST:PORT", repl->address);
		return KMIPD_EINVAL;
	}
	rv = uv_tcp_init(&repl->loop, &repl->peer_listener);
	if (rv == 0)
		rv = uv_tcp_bind(&repl->peer_listener, (struct sockaddr *)&addr, 0);
	if (rv == 0) {
		repl->peer_listener.data = repl;
		rv = uv_listen((uv_stream_t *)&repl->peer_listener, 128, on_connection);
	}
	if (rv != 0) {
		char host[64] = "?";
		int port = 0;

		if (addr.ss_family == AF_INET) {
			uv_ip4_name((struct sockaddr_in *)&addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
		}
		snprintf(errmsg, errlen, "peer channel on %s:%d: %s (the port after raft.address)",
			 host, port, uv_strerror(rv));
		return KMIPD_EIO;
	}
	repl->peer_listening = true;
	return 0;
}

void peer_close_all(struct replication *repl)
{
	if (repl->peer_listening) {
		uv_close((uv_handle_t *)&repl->peer_listener, NULL);
		repl->peer_listening = false;
	}
	for (struct peer *peer = repl->peers; peer != NULL; peer = peer->next)
		tls_stream_close(peer->stream, "node shutting down");
}

int peer_forward(struct replication *repl, struct proposal *p, raft_id leader_id,
		 const char *leader_address)
{
	struct sockaddr_storage addr;
	struct peer *peer = repl->to_leader;
	uint8_t header[4 + 1 + 8];

	if (repl->config.peer_client_tls == NULL)
		return KMIPD_EUNSUPPORTED;
	if (peer != NULL && repl->to_leader_id != leader_id) {
		tls_stream_close(peer->stream, "the leader changed");
		repl->to_leader = peer = NULL;
	}
	if (peer == NULL) {
		if (peer_address(leader_address, &addr) != 0)
			return KMIPD_EINVAL;
		peer = peer_new(repl, true);
		if (peer == NULL)
			return KMIPD_ENOMEM;
		peer->id = leader_id;
		if (tls_stream_connect(&repl->loop, (struct sockaddr *)&addr,
				       repl->config.peer_client_tls, &callbacks, peer,
				       &peer->stream) != 0) {
			if (peer->stream == NULL)
				peer_forget(peer);
			return KMIPD_EIO; /* else the stream closes and frees the peer */
		}
		if (send_hello(peer) != 0) {
			tls_stream_close(peer->stream, "out of memory");
			return KMIPD_ENOMEM;
		}
		repl->to_leader = peer;
		repl->to_leader_id = leader_id;
	}
	p->forward_id = ++repl->next_forward_id;
	peer_put_u32(header, (uint32_t)(1 + 8 + (p->is_sync ? 0 : p->buf.len)));
	header[4] = p->is_sync ? PEER_SYNC : PEER_FORWARD;
	peer_put_u64(header + 5, p->forward_id);
	if (tls_stream_write(peer->stream, header, sizeof(header)) != 0 ||
	    (!p->is_sync && tls_stream_write(peer->stream, p->buf.base, p->buf.len) != 0))
		return KMIPD_EIO;
	p->via = peer;
	p->state = PROPOSAL_FORWARDED;
	proposal_list_push(&repl->forwarded, p);
	return 0;
}

void peer_send_result(struct proposal *p, const struct command_result *result)
{
	struct peer *peer = p->origin;
	size_t msg_len = strnlen(result->message, sizeof(result->message));
	uint8_t frame[4 + 1 + 31 + sizeof(result->message)];
	bool retry =
		result->status == KMIPD_EAGAIN && strcmp(result->message, "not the leader") == 0;

	p->origin = NULL;
	if (peer == NULL)
		return;
	peer_put_u32(frame, (uint32_t)(1 + 31 + msg_len));
	frame[4] = PEER_RESULT;
	peer_put_u64(frame + 5, p->origin_id);
	peer_put_u64(frame + 13, p->index);
	peer_put_u32(frame + 21, (uint32_t)result->status);
	peer_put_u32(frame + 25, result->index);
	peer_put_u32(frame + 29, result->state);
	frame[33] = retry;
	frame[34] = (uint8_t)(msg_len >> 8);
	frame[35] = (uint8_t)msg_len;
	memcpy(frame + 36, result->message, msg_len);
	if (tls_stream_write(peer->stream, frame, 36 + msg_len) != 0)
		tls_stream_close(peer->stream, "write failed");
}

int peer_request(struct replication *repl, raft_id node_id, const char *address,
		 enum peer_frame type, const void *body, size_t len, unsigned timeout_ms,
		 peer_answer_fn cb, void *arg)
{
	struct sockaddr_storage addr;
	struct peer *peer;

	if (repl->config.peer_client_tls == NULL)
		return KMIPD_EUNSUPPORTED;
	if (peer_address(address, &addr) != 0)
		return KMIPD_EINVAL;
	peer = peer_new(repl, true);
	if (peer == NULL)
		return KMIPD_ENOMEM;
	peer->id = node_id;
	peer->oneshot = true;
	peer->on_answer = cb;
	peer->answer_arg = arg;
	peer->deadline_ms =
		uv_now(&repl->loop) + (timeout_ms > 0 ? timeout_ms : REQUEST_TIMEOUT_MS);
	if (tls_stream_connect(&repl->loop, (struct sockaddr *)&addr, repl->config.peer_client_tls,
			       &callbacks, peer, &peer->stream) != 0) {
		if (peer->stream == NULL) {
			peer_forget(peer);
			return KMIPD_EIO;
		}
		return 0; /* the stream closes: @cb hears it */
	}
	if (send_hello(peer) != 0)
		tls_stream_close(peer->stream, "out of memory");
	else
		peer_send(peer, type, body, len);
	return 0;
}

void peer_expire_requests(struct replication *repl)
{
	uint64_t now = uv_now(&repl->loop);

	for (struct peer *peer = repl->peers; peer != NULL; peer = peer->next)
		if (peer->on_answer != NULL && now >= peer->deadline_ms)
			tls_stream_close(peer->stream, "no answer in time");
}
