/* Shared between the worker (threads, listeners) and the connection state machine. */
#ifndef KMIPD_SRC_NET_INTERNAL_H
#define KMIPD_SRC_NET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <uv.h>

#include "kmipd/mailbox.h"
#include "kmipd/net.h"

struct conn;

struct worker {
	struct net *net;
	unsigned index;
	pthread_t thread;
	uv_loop_t loop;
	uv_tcp_t listener;
	int listen_fd;
	struct mailbox replies; /* completions from the raft loop */
	struct mailbox control; /* net_revoke(): connections to cut off */
	uv_async_t stop;
	bool stopping;
	bool draining;	/* net_drain(): no new connections; the open ones close */
	bool listening; /* @listener is open */
	bool closing_listener;
	bool reopen;	    /* undrained while the listener was closing: open it again */
	struct conn *conns; /* every open connection, for shutdown */
	uint64_t accepted;  /* connections accepted so far (their serial numbers) */
	uv_check_t flush;   /* writes this thread's audit events at the end of each turn */
	uint8_t read_buf[65536];
	bool read_buf_busy;
};

struct net {
	struct net_config config;
	unsigned port;
	struct worker *workers;
	unsigned worker_count;
	atomic_uint connections;
};

/* Takes the connection waiting on @worker's listener. */
void conn_accept(struct worker *worker);

/* Starts closing every connection of @worker that is not in the middle of a request;
 * the others close once their response is written (the worker is stopping or draining). */
void conn_drain(struct worker *worker);

/* Closes at once every connection of @worker authenticated as a client of @tenant (with
 * certificate @fingerprint, unless NULL: every client of the tenant). Returns how many. */
unsigned conn_revoke(struct worker *worker, const char *tenant, const char *fingerprint);

#endif
