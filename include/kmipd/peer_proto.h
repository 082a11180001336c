/* What nodes (and kmipctl) say to each other over mutual TLS, before anything else and on
 * the peer channel.
 *
 * Every connection, on the Raft port and on the peer channel (the port after it), opens
 * with a HELLO from each side, in frames of
 *
 *   length (4, big-endian, of what follows)  type (1)  body
 *
 *   HELLO  version (1)  node id (8)  cluster id length (1)  cluster id
 *          address length (1)  address (the sender's Raft address; empty for a tool)
 *
 * A side whose cluster id differs closes the connection: two clusters never exchange a
 * byte of Raft traffic. Node id 0 is a tool (kmipctl), allowed only on the peer channel.
 *
 * On the peer channel, after the HELLOs:
 *   STATUS_REQ  (empty)                      -> STATUS  JSON (see docs/ARCHITECTURE.md)
 *   ADD         node id (8)  address         -> ADMIN   JSON {"ok", "message", "leader"}
 *   REMOVE      node id (8)                  -> ADMIN
 *   TRANSFER    node id (8, 0: any voter)    -> ADMIN   (to the leader: hand leadership over)
 *   JOIN        node id (8)  address         (a node with an empty log asks to be added;
 *                                             ADMIN answers)
 * plus FORWARD, SYNC and RESULT between followers and the leader (peer.c). */
#ifndef KMIPD_PEER_PROTO_H
#define KMIPD_PEER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "kmipd/buf.h"

#define PEER_PROTO_VERSION 1

enum peer_frame {
	PEER_FORWARD = 1,
	PEER_RESULT = 2,
	PEER_SYNC = 3,
	PEER_HELLO = 4,
	PEER_STATUS_REQ = 5,
	PEER_STATUS = 6,
	PEER_ADD = 7,
	PEER_REMOVE = 8,
	PEER_ADMIN = 9,
	PEER_JOIN = 10,
	PEER_TRANSFER = 11,
};

#define PEER_FRAME_MAX	    (256u << 20) /* a snapshot-sized frame at most */
#define PEER_CLUSTER_ID_MAX 64
#define PEER_ADDRESS_MAX    255

struct peer_hello {
	uint8_t version;
	uint64_t node_id;
	char cluster_id[PEER_CLUSTER_ID_MAX + 1];
	char address[PEER_ADDRESS_MAX + 1];
};

/* Appends a frame header for a body of @body_len bytes. 0 or KMIPD_ENOMEM. */
int peer_frame_begin(struct buf *out, enum peer_frame type, size_t body_len);

/* Appends a whole HELLO frame. 0, KMIPD_EINVAL (an id or address too long) or
 * KMIPD_ENOMEM. */
int peer_hello_encode(struct buf *out, uint64_t node_id, const char *cluster_id,
		      const char *address);

/* Parses a HELLO body. 0 or KMIPD_EMALFORMED. */
int peer_hello_decode(const uint8_t *body, size_t len, struct peer_hello *out);

/* Splits the next frame off @data: 0 with *type, *body, *body_len and *frame_len (bytes
 * to consume) set; KMIPD_EAGAIN if the frame is not complete yet; KMIPD_EMALFORMED for an
 * empty or oversized frame. */
int peer_frame_next(const uint8_t *data, size_t len, uint8_t *type, const uint8_t **body,
		    size_t *body_len, size_t *frame_len);

/* Big-endian helpers for frame bodies. */
void peer_put_u64(uint8_t *p, uint64_t v);
uint64_t peer_get_u64(const uint8_t *p);
void peer_put_u32(uint8_t *p, uint32_t v);
uint32_t peer_get_u32(const uint8_t *p);

#endif
