/* libraft's transport over mutual TLS: Raft messages between nodes travel inside TLS
 * connections that only node certificates of the cluster CA can open, and only between
 * nodes of the same cluster.
 *
 * Every connection opens with a HELLO from each side (peer_proto.h) right after the
 * handshake. Once a side has checked the other's HELLO, its libraft gets one end of a
 * local socket pair as its stream; the transport pumps bytes between the other end and
 * the TLS connection. libraft never sees a byte from a peer that has not passed the
 * checks, and never sends one to it.
 *
 * Everything runs on the loop given to transport_init(). */
#ifndef KMIPD_SRC_REPLICATION_TRANSPORT_H
#define KMIPD_SRC_REPLICATION_TRANSPORT_H

#include <openssl/ssl.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

/* Makes @t a Raft transport over mutual TLS on @loop: connections present and require
 * node certificates of the cluster CA (pki_cert_is_node) and open with a HELLO carrying
 * @cluster_id; a peer of another cluster is refused with a log line naming both ids.
 *
 * @server_ctx accepts connections (tls_server_context), @client_ctx makes them
 * (tls_client_context); the transport takes a reference to each. @cluster_id (1 to
 * PEER_CLUSTER_ID_MAX bytes) is copied. t->data is kept; everything else in @t is set
 * here. 0, KMIPD_EINVAL or KMIPD_ENOMEM; on error nothing needs freeing. */
int transport_init(struct raft_uv_transport *t, uv_loop_t *loop, SSL_CTX *server_ctx,
		   SSL_CTX *client_ctx, const char *cluster_id);

/* Frees what transport_init allocated, once libraft has closed the transport (its close
 * callback has run) or if the transport was never used. */
void transport_free(struct raft_uv_transport *t);

#endif
