/* The admin API: HTTPS with JSON bodies, served by every node on a thread and libuv loop of
 * its own, so that neither a slow admin client nor a flood of handshakes touches the KMIP
 * workers or the raft loop.
 *
 * Every request except GET /healthz and GET /readyz (and GET /metrics with
 * admin.public_metrics) needs a client certificate from the cluster CA that names an
 * administrator (URI urn:kmipd:admin:<name>, made by `kmipctl issue-admin` or dev mode).
 * Changes go through Raft like KMIP writes, so they take effect on every node. Errors are
 * {"error": "<a sentence a person can act on>"} with a fitting HTTP status. */
#ifndef KMIPD_ADMIN_H
#define KMIPD_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "kmipd/config.h"
#include "kmipd/keyring.h"
#include "kmipd/replication.h"
#include "kmipd/store.h"

struct admin;

struct admin_config {
	const char *host; /* address to listen on */
	unsigned port;	  /* 0: any free port (see admin_port) */
	/* Server side of TLS: presents the node's certificate and asks for (but does not
	 * require) a client certificate from the cluster CA. The caller keeps it alive. */
	SSL_CTX *tls;
	struct store *store;
	struct keyring *keyring;
	struct replication *replication;
	uint64_t node_id;
	const char *cluster_id;
	const char *version;
	bool public_metrics; /* /metrics without a certificate */
	/* The cluster CA (tls.client_ca), its key (tls.ca_key: without it, client
	 * certificates cannot be issued here) and this node's certificate chain. */
	const char *ca_cert;
	const char *ca_key;
	const char *server_cert;
	/* Drains this node's KMIP front end (@on) or undoes it (net_drain). */
	void (*drain)(void *arg, bool on);
	void *drain_arg;
	/* The root-key providers' settings, for wrapping a new cloud tenant's KEK. */
	const struct provider_config *keyprotect, *hpcs;
};

/* Binds the listener (an address in use is reported here, in @errmsg) and starts the
 * admin thread. */
int admin_start(struct admin **out, const struct admin_config *config, char *errmsg, size_t errlen);

/* The port the API listens on. */
unsigned admin_port(const struct admin *admin);

/* Closes the listener and every connection and returns once no request can reach the
 * replication (or the store) any more. Call before replication_stop(). */
void admin_close(struct admin *admin);

/* Joins the thread and frees everything. Call after replication_stop(): every change
 * submitted to the raft loop has been answered then. */
void admin_stop(struct admin *admin);

#endif
