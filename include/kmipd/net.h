/* The KMIP front end: worker threads, each with its own libuv loop and its own listening
 * socket on the same port (SO_REUSEPORT: the kernel spreads connections), TLS over memory
 * BIOs, TTLV framing, and a KMIP exchange per connection.
 *
 * A connection reads one message, answers it, then reads the next; a write waits for the
 * raft loop without blocking its worker. Limits apply per connection (message size, idle
 * time, unsent bytes) and per node (connections). */
#ifndef KMIPD_NET_H
#define KMIPD_NET_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "kmipd/exchange.h"
#include "kmipd/replication.h"
#include "kmipd/service.h"

struct net;

struct net_config {
	const char *host; /* address to listen on, "127.0.0.1" */
	unsigned port;	  /* 0 = any free port (see net_port) */
	unsigned workers; /* worker threads; 0 = one per core */
	SSL_CTX *tls;	  /* shared by all workers; the caller keeps it alive */
	struct service *service;
	struct replication *replication; /* for tenants first seen on a connection */
	const struct kmip_server_identity *identity;
	size_t max_message;	       /* largest request; 0 = 1 MiB */
	unsigned handshake_timeout_ms; /* 0 = 10 s */
	unsigned idle_timeout_ms;      /* between requests; 0 = 120 s */
	size_t max_unsent;	       /* response bytes a client may leave unread; 0 = 4 MiB */
	unsigned max_connections;      /* per node; 0 = 10000 */
};

/* Binds the listening sockets (so an address in use is reported here) and starts the
 * workers. On failure a sentence goes into @errmsg. */
int net_start(struct net **out, const struct net_config *config, char *errmsg, size_t errlen);

/* The port the node listens on (useful with port 0). */
unsigned net_port(const struct net *net);

/* The peer of @tcp as "host:port" in @out ("?:0" if unknown). */
void net_peer_name(const uv_tcp_t *tcp, char *out, size_t cap);

/* Cuts off, on every worker, the connections of @tenant's clients (only those with
 * certificate @fingerprint unless it is NULL): they close at once, mid-request or not.
 * Any thread. */
void net_revoke(struct net *net, const char *tenant, const char *fingerprint);

/* Drains the node (@on) or undoes it: a drained node accepts no KMIP connections (its
 * port refuses them, so a client tries its next endpoint at once), and its open
 * connections close, each after answering the request it is working on. Any thread. */
void net_drain(struct net *net, bool on);

/* Stops accepting, lets every connection finish the request it is working on, closes
 * them, joins the workers and frees everything. */
void net_stop(struct net *net);

#endif
