/* Shared by the raft loop (raft_loop.c) and the peer channel (peer.c). Everything here
 * lives on the raft loop's thread. */
#ifndef KMIPD_SRC_REPLICATION_INTERNAL_H
#define KMIPD_SRC_REPLICATION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "kmipd/command.h"
#include "kmipd/log.h"
#include "kmipd/peer_proto.h"
#include "kmipd/replication.h"
#include "kmipd/tls_stream.h"

/* The answer a worker (or the daemon) receives: posted to its mailbox, freed by
 * replication_deliver(). */
struct reply {
	struct mailbox_item item; /* first */
	struct kmip_op_ctx *ctx;
	service_done_fn done;
	replication_complete_fn complete;
	void *arg;
	struct command_result result;
};

enum proposal_state {
	PROPOSAL_NEW,
	PROPOSAL_WAIT_LEADER, /* no leader known yet */
	PROPOSAL_BATCHING,    /* this node leads: to be appended at the end of the loop turn */
	PROPOSAL_INFLIGHT,    /* appended on this node, which leads (a batch entry, a barrier) */
	PROPOSAL_BATCHED,     /* a member of a batch entry in flight (see ->carrier) */
	PROPOSAL_FORWARDED,   /* sent to the leader, waiting for its answer */
	PROPOSAL_WAIT_APPLY,  /* done at the leader; waiting for this node to commit it */
};

struct peer;

/* One write on its way through Raft. It lives on the raft loop until it is answered and
 * libraft no longer holds its request. */
struct proposal {
	struct mailbox_item item; /* first: posted by workers to the inbox */
	struct replication *repl;
	enum proposal_state state;
	struct proposal *prev, *next; /* in the list of its state */
	struct raft_apply req;
	struct raft_barrier barrier;
	bool is_sync;		/* a catch-up: a barrier at the leader, no entry of its own */
	struct raft_buffer buf; /* the command's entry; kept for resubmission (it carries a
				 * request id). A carrier's: the entry appended, raft's. */
	bool raft_owns;		/* raft_apply accepted it: its callback is still to come */
	bool behind_entry;	/* leader side: it came while an entry was in flight */
	/* Leader side, batching: the proposal whose entry carries this one (kept until the
	 * carrier's callback), and a carrier's members in entry order. */
	struct proposal *carrier;
	struct proposal **members;
	unsigned n_members;
	struct mailbox *reply_to;
	struct reply *reply;	     /* NULL once answered */
	struct command_result local; /* the state machine's result when nobody waits */
	raft_index index;	     /* the entry's index, once known */
	uint64_t deadline_ms;	     /* answered with "no quorum" after this (uv_now) */
	uint64_t forward_id;	     /* follower side: id of the forwarded request */
	struct peer *via;	     /* follower side: the connection it was forwarded on */
	struct peer *origin;	     /* leader side: the follower that forwarded it */
	uint64_t origin_id;
};

struct proposal_list {
	struct proposal *head, *tail;
};

enum cluster_phase {
	PHASE_RUNNING,
	PHASE_FORMING, /* no log yet: asking the other members whether a cluster runs */
	PHASE_JOINING, /* no log, a cluster runs: asking its leader to add this node */
};

/* What one member answered while this node was forming (cluster.c). */
struct probe {
	bool inflight;
	uint64_t asked_ms, answered_ms;
	uint64_t term;
	raft_id leader_id;
	char leader_address[PEER_ADDRESS_MAX + 1];
};

struct change;

/* Re-sealing a tenant's objects after a KEK rotation, on the leader (reseal.c). */
struct reseal {
	bool active;
	bool failed; /* a re-seal was not applied: the pass starts over */
	char tenant[OBJECT_TENANT_MAX + 1];
	uint32_t from, to;		/* the retiring and the current KEK versions */
	char after[OBJECT_UID_LEN + 1]; /* where the pass goes on */
	unsigned outstanding;		/* changes submitted and not answered */
	unsigned queued_in_pass;	/* re-seals submitted in this pass */
	uint64_t resealed;		/* applied, for the log */
	unsigned idle_ticks;
};

/* Called every raft tick: moves the re-sealing along on the leader. */
void reseal_tick(struct replication *repl);

/* The command level each member said it is at (cluster.c), asked every few seconds. */
struct member_level {
	uint64_t id;
	unsigned level;
};

/* The level every member is known to be at: the lowest of this node's own and the
 * members' answers, a member never heard from counting as level 2 (a kmipd too old to
 * say). *@held_by: the member at that level, 0 if it is this node's own. */
unsigned cluster_format_level(struct replication *repl, uint64_t *held_by);

struct replication {
	struct replication_config config;
	struct reseal reseal;
	struct member_level levels[16];
	unsigned n_levels;
	uint64_t levels_next_ms;	 /* when to ask the members again */
	struct tenant_keys *tenant_keys; /* NULL once stopping */
	struct mailbox own_replies;	 /* answers to the loop's own changes */
	char *dir;
	char *address;
	const char *cluster_id;
	pthread_t thread;
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raft raft;
	struct mailbox inbox;
	struct mailbox control; /* admin tasks (replication_admin) */
	uv_async_t stop;
	uv_timer_t tick;
	uv_check_t commit_check;
	struct arena arena; /* per applied entry */
	bool stopping;

	struct store_txn *txn; /* open from the first entry applied until commit_applied */
	raft_index txn_last;   /* last index applied into txn */
	raft_index committed;  /* last index committed to LMDB */
	uint64_t txn_begun_ms; /* uv_now() when txn was begun */
	bool txn_urgent;       /* txn holds more than new objects: commit it this turn */
	uv_timer_t commit_due; /* commits a txn that nobody waits for (commit_applied) */
	/* Bytes and count of the command entries applied: their average sets how far apart
	 * snapshots are (fsm_snapshot). */
	uint64_t applied_bytes, applied_entries;
	unsigned snapshot_threshold; /* entries between snapshots now */
	/* A snapshot: fsm_snapshot() hands libraft placeholder buffers at once, and the put
	 * that libraft then asks of its I/O waits for the image, made in the threadpool. */
	struct raft_buffer *snapshot_bufs;  /* the placeholder, until libraft is done with it */
	struct store_image *snapshot_image; /* made, then written by libraft */
	pthread_t snapshot_thread;	    /* makes the copy (snapshot_copy) */
	uv_async_t snapshot_done;	    /* ... and wakes the loop when it is made */
	bool snapshot_copying;		    /* snapshot_thread is running */
	bool close_after_copy;		    /* shut_down() waits for the copy */
	bool snapshot_checkpoint;	    /* this one is a checkpoint, not a copy */
	bool checkpoints_unsupported;	    /* probe_checkpoints() found another LMDB */
	pthread_t write_back_thread;	    /* writes the store's new pages back (write_back) */
	bool write_back_running;
	atomic_bool write_back_stop;
	uint8_t checkpoint[STORE_CHECKPOINT_LEN];   /* its record */
	uint64_t checkpoint_index;		    /* ... at this applied index */
	struct raft_io_snapshot_put checkpoint_put; /* its put, to settle it when written */
	unsigned snapshot_sends;		    /* copies being made to send (snapshot_get) */
	int snapshot_rv;			    /* how the copy ended */
	uint64_t snapshot_ns;			    /* how long the copy took */
	/* Checkpoints come a few a second under load: each is logged at debug, and at info
	 * only once a minute, with what came since (log_checkpoint()). */
	uint64_t checkpoint_logged_ms; /* uv_now() of the last info line; 0: none yet */
	unsigned checkpoints_unlogged; /* at debug since then */
	uint64_t slowest_unlogged_ns;  /* the longest flush among them */
	int (*uv_snapshot_put)(struct raft_io *io, unsigned trailing,
			       struct raft_io_snapshot_put *req,
			       const struct raft_snapshot *snapshot,
			       raft_io_snapshot_put_cb cb); /* raft_uv's own */
	int (*uv_snapshot_get)(struct raft_io *io, struct raft_io_snapshot_get *req,
			       raft_io_snapshot_get_cb cb); /* raft_uv's own */
	struct {
		unsigned trailing;
		struct raft_io_snapshot_put *req;
		const struct raft_snapshot *snapshot;
		raft_io_snapshot_put_cb cb;
	} deferred_put;

	pthread_mutex_t status_lock; /* guards status, read by other threads */
	struct replication_status status;

	struct proposal_list wait_leader;
	struct proposal_list batching; /* to be appended as one entry at the end of the turn,
					* or held a little longer (batch_held in raft_loop.c) */
	uv_idle_t batch_idle;	       /* keeps the loop from blocking while some wait */
	uv_timer_t batch_hold;	       /* ends a hold (config.batch_hold_ms) */
	uint64_t last_append_ns;       /* uv_hrtime() of the last batch appended */
	struct proposal_list inflight; /* ascending index */
	struct proposal_list batched;  /* members of batch entries in flight */
	struct command cmds[COMMAND_BATCH_MAX]; /* the entry being applied */
	struct command_result results[COMMAND_BATCH_MAX];
	struct proposal_list forwarded;
	struct proposal_list wait_apply;
	uint64_t next_forward_id;
	raft_id seen_leader; /* for logging changes */
	struct raft_transfer transfer;
	uv_timer_t transfer_timer; /* bounds the hand-over at shutdown */
	bool shut_down;

	/* The peer channel (peer.c). */
	uv_tcp_t peer_listener;
	bool peer_listening;
	struct peer *peers;	/* every open peer connection */
	struct peer *to_leader; /* our connection to the current leader, if any */
	raft_id to_leader_id;
	struct log_gate peer_refusals;

	/* Membership (cluster.c). */
	struct raft_configuration founders; /* cluster.members, or this node alone */
	enum cluster_phase phase;
	bool raft_started;
	struct probe *probes; /* one per founder, while forming */
	uint64_t waiting_logged_ms;
	raft_id join_to;
	char join_address[PEER_ADDRESS_MAX + 1];
	unsigned join_next;
	bool join_inflight;
	uint64_t join_asked_ms;
	struct change *change; /* the membership change in progress, if any */
	struct raft_transfer witness_transfer;
	bool witness_transferring;
	uint64_t witness_retry_ms;

	/* Start-up hand-shake with replication_start(). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;
	int start_rv;
	char errmsg[256];
};

void proposal_list_push(struct proposal_list *list, struct proposal *p);
void proposal_list_remove(struct proposal_list *list, struct proposal *p);

/* Answers @p's waiter with @p->reply->result (or fails it) and frees @p when raft no
 * longer holds it. */
void proposal_answer(struct proposal *p);
void proposal_fail(struct proposal *p, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The leader's view: raft_apply @p on this node (leader) or queue it. */
void proposal_route(struct proposal *p);

/* Peer channel. */
int peer_listen(struct replication *repl, char *errmsg, size_t errlen);
void peer_close_all(struct replication *repl);
/* Sends @p to the current leader (leader_id at leader_address). 0, or an error: then @p is
 * untouched and the caller keeps it waiting. */
int peer_forward(struct replication *repl, struct proposal *p, raft_id leader_id,
		 const char *leader_address);
/* Leader side: tells the follower that forwarded @p how it ended. */
void peer_send_result(struct proposal *p, const struct command_result *result);

/* One request to the node at Raft address @address (expected to be node @node_id; 0: any):
 * its answer frame, or a failure (status != 0, @body the reason), goes to @cb once, within
 * @timeout_ms (0: 5 s). */
typedef void (*peer_answer_fn)(struct replication *repl, void *arg, int status, uint8_t type,
			       const uint8_t *body, size_t len);
int peer_request(struct replication *repl, raft_id node_id, const char *address,
		 enum peer_frame type, const void *body, size_t len, unsigned timeout_ms,
		 peer_answer_fn cb, void *arg);
/* Closes one-shot requests that have waited too long (their callbacks hear it). */
void peer_expire_requests(struct replication *repl);
/* Sends one frame on @peer (answers to admin requests). */
void peer_send(struct peer *peer, enum peer_frame type, const void *body, size_t len);

/* An administrator's request to the raft loop (replication_admin). */
struct admin_task {
	struct mailbox_item item; /* first: posted to repl->control */
	struct replication *repl;
	enum replication_admin_op op;
	raft_id id;
	char address[PEER_ADDRESS_MAX + 1];
	unsigned timeout_ms;
	struct reply *reply; /* posted back to reply_to, carrying this task */
	struct mailbox *reply_to;
	replication_admin_fn done;
	void *arg;
	json_t *members;  /* STATUS: one slot per member */
	unsigned pending; /* STATUS: answers still to come */
	char *json;	  /* the outcome */
};

/* Membership and formation (cluster.c). */
/* Runs @task; it is answered (task_finish) now or later. */
void cluster_admin_run(struct admin_task *task);
/* Answers @task with @json (copied) on its caller's loop. */
void cluster_admin_finish(struct admin_task *task, const char *json);
/* Starts Raft now (a node with a log, or a single node) or begins forming. */
int cluster_start(struct replication *repl);
/* Sets when this node takes its first snapshot, once Raft has started (raft_loop.c). */
void snapshots_start(struct replication *repl);
/* Every tick: forming, joining, witness hand-over, expired requests and changes. */
void cluster_tick(struct replication *repl);
int cluster_status(struct replication *repl, struct buf *json);
/* A membership change or leadership transfer asked for by @origin (a tool on the peer
 * channel) or @task (this node's admin API); NULL when neither waits. */
void cluster_change(struct replication *repl, struct peer *origin, struct admin_task *task,
		    uint8_t type, raft_id id, const char *address, size_t address_len);
void cluster_peer_closed(struct replication *repl, struct peer *peer);

/* The node an outbound peer connection goes to (0 for none). */
raft_id peer_node(const struct peer *peer);

/* The forwarding address of a node whose Raft address is @raft_address: same host, the
 * next port. */
int peer_address(const char *raft_address, struct sockaddr_storage *out);

#endif
