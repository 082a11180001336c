/* The raft loop thread: libraft on its own libuv loop, the state machine that applies
 * committed entries to LMDB, and the life of a proposal:
 *
 *   worker ─► inbox ─► leader here? ─ yes ─► batch ─► raft_apply ─► applied ─► LMDB commit
 *                         │ no leader known: wait (tick)          ▲              ─► answer
 *                         └ follower ─► forward to the leader ─► its index ─► wait until
 *                                                                  this node has committed it
 *
 * The leader appends what arrived in one turn of its loop (from its workers and from
 * followers) as one entry at the end of the turn: see COMMAND_BATCH in command.h.
 * A write not confirmed within write_timeout_ms is answered "no quorum"; what raft still
 * holds stays until its callback. See replication.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kmipd/command.h"
#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/log.h"
#include "kmipd/metrics.h"
#include "kmipd/tenant_keys.h"
#include "transport.h"

#define TICK_MS 50

void proposal_list_push(struct proposal_list *list, struct proposal *p)
{
	p->next = NULL;
	p->prev = list->tail;
	if (list->tail != NULL)
		list->tail->next = p;
	else
		list->head = p;
	list->tail = p;
}

void proposal_list_remove(struct proposal_list *list, struct proposal *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		list->head = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	else
		list->tail = p->prev;
	p->prev = p->next = NULL;
}

static struct proposal_list *list_of(struct replication *repl, enum proposal_state state)
{
	switch (state) {
	case PROPOSAL_WAIT_LEADER:
		return &repl->wait_leader;
	case PROPOSAL_BATCHING:
		return &repl->batching;
	case PROPOSAL_INFLIGHT:
		return &repl->inflight;
	case PROPOSAL_BATCHED:
		return &repl->batched;
	case PROPOSAL_FORWARDED:
		return &repl->forwarded;
	case PROPOSAL_WAIT_APPLY:
		return &repl->wait_apply;
	default:
		return NULL;
	}
}

static void set_state(struct proposal *p, enum proposal_state state)
{
	struct proposal_list *from = list_of(p->repl, p->state);
	struct proposal_list *to = list_of(p->repl, state);

	if (from != NULL)
		proposal_list_remove(from, p);
	p->state = state;
	if (to != NULL)
		proposal_list_push(to, p);
}

static void proposal_free(struct proposal *p)
{
	set_state(p, PROPOSAL_NEW);
	if (p->buf.base != NULL && !p->raft_owns)
		raft_free(p->buf.base);
	free(p->members);
	free(p);
}

/* Frees @p once nobody waits for it and raft has let go of it (and of its carrier). */
static void maybe_free(struct proposal *p)
{
	if (p->reply == NULL && !p->raft_owns && p->carrier == NULL && p->origin == NULL)
		proposal_free(p);
}

/* Posts the reply (if anyone still waits) and lets @p go: the caller must not touch @p
 * afterwards. A proposal raft still holds stays in the in-flight list until its
 * callback. */
void proposal_answer(struct proposal *p)
{
	struct reply *reply = p->reply;

	p->reply = NULL;
	if (reply != NULL && mailbox_post(p->reply_to, &reply->item) != 0)
		free(reply); /* the worker is gone (shutdown): nobody waits */
	if (p->state != PROPOSAL_INFLIGHT && p->state != PROPOSAL_BATCHED)
		set_state(p, PROPOSAL_NEW);
	maybe_free(p);
}

void proposal_fail(struct proposal *p, int status, const char *fmt, ...)
{
	va_list ap;

	if (p->reply != NULL) {
		p->reply->result.status = status;
		va_start(ap, fmt);
		vsnprintf(p->reply->result.message, sizeof(p->reply->result.message), fmt, ap);
		va_end(ap);
	}
	proposal_answer(p);
}

static void store_failed(raft_index index, int rv)
{
	log_fatal("raft: applying entry %llu to the key store failed: %s; stopping so that this "
		  "replica cannot diverge (the entry is replayed at restart)",
		  (unsigned long long)index, kmipd_strerror(rv));
	abort();
}

/* The write transaction the state machine applies into. Entries applied in one turn of the
 * loop share it, and so do those of the next few turns when nobody waits for them
 * (commit_applied): one LMDB commit for several entries instead of one for each. */
static struct store_txn *apply_txn(struct replication *repl, raft_index index)
{
	int rv;

	if (repl->txn == NULL) {
		rv = store_txn_begin(repl->config.store, true, &repl->txn);
		if (rv != 0)
			store_failed(index, rv);
		repl->txn_begun_ms = uv_now(&repl->loop);
	}
	return repl->txn;
}

/* The proposal whose entry is @index, if this node appended it: a batch carrier, or one
 * plain entry. */
static struct proposal *inflight_find(struct replication *repl, raft_index index)
{
	for (struct proposal *p = repl->inflight.head; p != NULL; p = p->next)
		if (!p->is_sync && p->req.index == index)
			return p;
	return NULL;
}

static bool changes_tenant_keys(enum command_type type)
{
	return type == COMMAND_TENANT_CREATE || type == COMMAND_TENANT_REWRAP ||
	       type == COMMAND_KEK_ROTATE || type == COMMAND_KEK_RETIRE;
}

/* A tenant was created or its KEK rewrapped, rotated or retired: keep the KEKs the store
 * now holds (not the
 * command's: when entries are replayed after a restart, a losing duplicate creation also
 * reports success). */
static void tenant_changed(struct replication *repl, struct store_txn *txn, const char *tenant)
{
	struct store_tenant t;

	if (repl->tenant_keys != NULL && store_tenant_get(txn, tenant, &repl->arena, &t) == 0)
		tenant_keys_update(repl->tenant_keys, &t);
}

/* The state machine. Runs for every committed command entry, in log order, on this
 * thread, on every node. Application refusals are results; only a failing store stops the
 * node, because a replica that skipped an entry would silently diverge from the others. */
static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct replication *repl = fsm->data;
	raft_index index = raft_last_applied(&repl->raft) + 1;
	struct proposal *carrier = inflight_find(repl, index);
	struct store_txn *txn = apply_txn(repl, index);
	unsigned n = 0;
	int rv;

	arena_reset(&repl->arena);
	repl->applied_bytes += buf->len;
	repl->applied_entries++;
	rv = command_entry_decode(buf->base, buf->len, &repl->arena, repl->cmds, COMMAND_BATCH_MAX,
				  &n);
	if (rv != 0) {
		/* Every replica refuses the same bytes the same way; record the index. */
		log_error("raft: entry %llu is not a command this version understands (%s); "
			  "skipping it",
			  (unsigned long long)index, kmipd_strerror(rv));
		n = carrier != NULL && carrier->n_members > 0 ? carrier->n_members : 1;
		for (unsigned i = 0; i < n; i++) {
			memset(&repl->results[i], 0, sizeof(repl->results[i]));
			repl->results[i].status = KMIPD_EMALFORMED;
			snprintf(repl->results[i].message, sizeof(repl->results[i].message),
				 "the replicated change could not be decoded");
		}
		rv = store_set_applied_index(txn, index);
		repl->txn_urgent = true; /* what it held is not known */
	} else {
		rv = command_apply(txn, repl->cmds, n, index, &repl->arena, repl->results);
	}
	if (rv != 0)
		store_failed(index, rv);
	repl->txn_last = index;
	if (n == 0)
		repl->txn_urgent = true;

	for (unsigned i = 0; i < n; i++) {
		struct proposal *m = carrier == NULL ? NULL : carrier->members[i];

		if (repl->cmds[i].type != COMMAND_OBJECT_CREATE)
			repl->txn_urgent = true;
		if (repl->results[i].status == 0 && changes_tenant_keys(repl->cmds[i].type))
			tenant_changed(repl, txn, repl->cmds[i].tenant);
		if (repl->results[i].status == 0 && repl->cmds[i].type == COMMAND_TENANT_DELETE) {
			/* Crypto-shredding on this node: the KEK leaves memory, and the tenant's
			 * clients are cut off. */
			if (repl->tenant_keys != NULL)
				tenant_keys_forget(repl->tenant_keys, repl->cmds[i].tenant);
			else
				keyring_drop(repl->config.keyring, repl->cmds[i].tenant);
			if (repl->config.revoke != NULL)
				repl->config.revoke(repl->config.revoke_arg, repl->cmds[i].tenant,
						    NULL);
		}
		if (repl->results[i].status == 0 && repl->cmds[i].type == COMMAND_CERT_DELETE &&
		    repl->config.revoke != NULL)
			repl->config.revoke(repl->config.revoke_arg, repl->cmds[i].tenant,
					    repl->cmds[i].cert.fingerprint);
		if (m != NULL)
			*(m->reply != NULL ? &m->reply->result : &m->local) = repl->results[i];
	}
	arena_reset(&repl->arena);
	*result = NULL;
	return 0;
}

/* Answers the proposals whose entries are committed to LMDB here: a client told "done"
 * can read what it wrote through this node at once. */
static void answer_committed(struct replication *repl)
{
	struct proposal *p = repl->wait_apply.head;

	while (p != NULL) {
		struct proposal *next = p->next;

		if (p->index <= repl->committed)
			proposal_answer(p);
		p = next;
	}
}

/* How long entries applied on a node where nobody waits for them may stay uncommitted. */
#define COMMIT_DEFER_MS 5

static void on_commit_due(uv_timer_t *timer);

/* Whether the open transaction can take the next turns' entries too: it holds only new
 * objects, no proposal here waits for what was applied (a write through this node, a
 * catch-up), and it has not been open COMMIT_DEFER_MS yet; if so, a timer commits it then.
 * Anything else (a certificate or tenant deleted, a key revoked or destroyed, an
 * attribute changed) is committed in the turn that applied it, as before: a node must not
 * keep serving what the cluster has taken away.
 *
 * A follower of a leader that takes the writes has nobody waiting: each of its commits
 * rewrote the same few pages (the ends of "objects", "requests" and "request_order", the
 * tree roots, the free list) for one entry of three or four Creates. At 3,000 Creates/s
 * through the leader that was a commit every millisecond or so. What it costs is that a
 * key created elsewhere may be found through such a node up to COMMIT_DEFER_MS later, and
 * it is still never "not found": a read that finds nothing waits for a catch-up, and a
 * catch-up waits here (bench/RESULTS.md, "Fewer commits on a
 * follower"). */
static bool commit_deferred(struct replication *repl)
{
	uint64_t open_ms = uv_now(&repl->loop) - repl->txn_begun_ms;

	if (repl->stopping || repl->txn_urgent || open_ms >= COMMIT_DEFER_MS)
		return false;
	for (const struct proposal *p = repl->wait_apply.head; p != NULL; p = p->next)
		if (p->index <= raft_last_applied(&repl->raft))
			return false;
	if (!uv_is_active((uv_handle_t *)&repl->commit_due))
		uv_timer_start(&repl->commit_due, on_commit_due, COMMIT_DEFER_MS - open_ms, 0);
	return true;
}

static void commit_now(struct replication *repl);

/* End of a loop turn: commit what the state machine applied, unless it can wait
 * (commit_deferred), then answer. */
static void commit_applied(struct replication *repl)
{
	if (repl->txn != NULL && commit_deferred(repl))
		return;
	commit_now(repl);
}

static void on_commit_due(uv_timer_t *timer)
{
	commit_now(timer->data);
}

static void commit_now(struct replication *repl)
{
	int rv;

	if (repl->txn != NULL) {
		uv_timer_stop(&repl->commit_due);
		rv = store_txn_commit(repl->txn);
		repl->txn = NULL;
		repl->txn_urgent = false;
		if (rv != 0)
			store_failed(repl->txn_last, rv);
	}
	/* Everything applied is now in LMDB; entries that are not commands (barriers,
	 * configuration changes) change nothing there but count too. */
	if (repl->txn_last > repl->committed)
		repl->committed = repl->txn_last;
	if (!repl->stopping && raft_last_applied(&repl->raft) > repl->committed)
		repl->committed = raft_last_applied(&repl->raft);
	answer_committed(repl);
}

static void append_batches(struct replication *repl);
static void append_now(struct replication *repl);
static void on_batch_idle(uv_idle_t *idle);
static void on_batch_hold(uv_timer_t *timer);

/* The end of a loop turn: what arrived in it goes to Raft as one entry (unless it is held
 * while another is in flight), and followers that this turn's commit has not reached
 * with that entry get the commit index on its own; then what was applied is committed
 * (unless nobody waits for it yet) and answered. */
static void on_check(uv_check_t *check)
{
	struct replication *repl = check->data;

	append_batches(repl);
	if (repl->raft_started)
		(void)raft_send_commit_index(&repl->raft);
	commit_applied(repl);
}

static int load_tenants(struct replication *repl);

/* This node's place among the voters, and how many there are: snapshot phases. */
static void voter_position(const struct replication *repl, unsigned *position, unsigned *voters)
{
	const struct raft_configuration *c = &repl->raft.configuration;

	*position = 0;
	*voters = 0;
	for (unsigned i = 0; i < c->n; i++) {
		if (c->servers[i].role != RAFT_VOTER)
			continue;
		(*voters)++;
		if (c->servers[i].id < repl->config.id)
			(*position)++;
	}
	if (*voters == 0)
		*voters = 1;
	if (*position >= *voters)
		*position = 0;
}

/* Checkpoints (image_len 0) come every snapshot_threshold entries. What follows is about
 * copies (below format level 4). A copy holds the whole store, and every node writes it to
 * disk. Taken every snapshot_threshold entries, its cost per write grew with the store (at
 * 155,000 keys a 93 MB copy every 8,192 entries: twenty times the bytes of the log itself,
 * and the long tail of every write's latency). So copies come a period apart that is about
 * as many entries as it takes the log to write as many bytes as the store holds, and never
 * fewer than the configured threshold: copies then cost about what the log costs, whatever
 * the store's size. (How many entries are kept behind one is not changed.)
 *
 * Every node applies the same entries, so with one period they would all write their
 * snapshot at the same moment; at 158 MB each, three nodes on one disk wrote 474 MB/s
 * together and every write waited behind them. So each voter takes its snapshots at its own
 * phase of the period: the voter in place k of n at the indexes that are k/n of a period
 * past a multiple of it. The period is rounded to a power of two, so that nodes whose
 * stores differ a little agree on it. taken_at is the index of the snapshot just taken. */
static void space_snapshots(struct replication *repl, size_t image_len, raft_index taken_at)
{
	uint64_t average =
		repl->applied_entries > 0 ? repl->applied_bytes / repl->applied_entries : 512;
	uint64_t wanted = image_len / (average > 0 ? average : 1);
	uint64_t period = 1, next;
	unsigned position, voters;

	while (period < wanted && period < (1ull << 31))
		period <<= 1;
	if (period > 1 && period - wanted > period / 4) /* nearer the lower power */
		period >>= 1;
	if (period < repl->config.snapshot_threshold)
		period = repl->config.snapshot_threshold;

	voter_position(repl, &position, &voters);
	uint64_t phase = period * position / voters;
	uint64_t earliest = taken_at + period / 2;
	uint64_t at = earliest - earliest % period + phase;
	if (at < earliest)
		at += period;
	next = at - taken_at;
	if (next > UINT_MAX)
		next = UINT_MAX;
	log_debug("raft: next snapshot at index %llu (period %llu, phase %u of %u)",
		  (unsigned long long)at, (unsigned long long)period, position, voters);
	repl->snapshot_threshold = (unsigned)next;
	raft_set_snapshot_threshold(&repl->raft, (unsigned)next);
}

/* Until its first snapshot tells the store's size, a node waits the configured threshold
 * and its phase of it past the last snapshot (on a new cluster, past index 0). */
void snapshots_start(struct replication *repl)
{
	unsigned position, voters;
	uint64_t next = repl->config.snapshot_threshold;

	voter_position(repl, &position, &voters);
	next += next * position / voters;
	repl->snapshot_threshold = next > UINT_MAX ? UINT_MAX : (unsigned)next;
	raft_set_snapshot_threshold(&repl->raft, repl->snapshot_threshold);
}

/* Whether this node's snapshots on disk are checkpoints (format level 4): a mark in the
 * store, not a copy of it. Below that level they are copies, which the previous version
 * can read back after a rollback of the binary. */
static bool checkpoints(const struct replication *repl)
{
	return (repl->config.format_level == 0 || repl->config.format_level >= 4) &&
	       !repl->checkpoints_unsupported;
}

/* Between checkpoints the store's new pages are written back as they come, every
 * WRITE_BACK_MS, instead of all at the next checkpoint's flush. The period is short so that
 * each start of writeback queues few pages: the disk's queue is shared with the Raft log's
 * writes, which could wait behind hundreds of page writes. At 3,000 Creates/s the block
 * layer's sync writes had a p99 of 130-203 ms with a start every 100 ms, and one under
 * 45 ms in six runs of seven with a start every 10 ms, for twice the thread's CPU
 * (bench/RESULTS.md, "The store written back every 10 ms"). Every UNMAP_MS the same thread
 * unmaps one part of the store, the parts in order, so that a page unread for
 * config.map_window_ms is not mapped (store_unmap()). */
#define WRITE_BACK_MS 10
#define UNMAP_MS      100

static void *write_back(void *arg)
{
	struct replication *repl = arg;
	struct timespec pause = {0, WRITE_BACK_MS * 1000000L};
	unsigned parts = repl->config.map_window_ms / UNMAP_MS, part = 0, turn = 0;

	pthread_setname_np(pthread_self(), "kmipd-writeback");

	if (repl->config.map_window_ms > 0 && parts == 0)
		parts = 1;
	while (!atomic_load(&repl->write_back_stop)) {
		nanosleep(&pause, NULL);
		(void)store_write_back(repl->config.store);
		if (parts > 0 && ++turn == UNMAP_MS / WRITE_BACK_MS) {
			turn = 0;
			(void)store_unmap(repl->config.store, part, parts);
			part = (part + 1) % parts;
		}
	}
	return NULL;
}

static void stop_write_back(struct replication *repl)
{
	if (!repl->write_back_running)
		return;
	atomic_store(&repl->write_back_stop, true);
	pthread_join(repl->write_back_thread, NULL);
	repl->write_back_running = false;
}

/* A checkpoint reads LMDB's meta page by its layout (store_checkpoint). One is taken and
 * dropped at start-up: with an LMDB whose layout is another, snapshots stay copies. */
static void probe_checkpoints(struct replication *repl)
{
	uint8_t record[STORE_CHECKPOINT_LEN];
	uint64_t index;

	if (store_checkpoint(repl->config.store, record, &index) == KMIPD_EUNSUPPORTED) {
		repl->checkpoints_unsupported = true;
		log_warn("raft: this LMDB's meta page is not laid out as kmipd reads it; Raft "
			 "snapshots will be copies of the store");
	}
	store_checkpoint_settle(repl->config.store, false);
}

/* Raft asks for a snapshot every snapshot_threshold entries: to truncate its log, and to
 * send to a node too far behind to catch up by log.
 *
 * What this node keeps is a checkpoint (store_checkpoint): the store is on disk already, so
 * the snapshot pins one commit of it, flushes it and records where it is. A copy of the
 * whole store (300 MB at 450,000 keys), written by every node once a period, was the
 * long tail of every write's latency. A node that needs the store is sent a copy made
 * then (snapshot_get, below).
 *
 * Either way the slow part is not done on this thread: copying 136 MB here held every
 * node's raft loop 66 to 490 ms at once. libraft gets placeholder buffers, and its I/O's
 * put of this snapshot (snapshot_put) pins the checkpoint, then waits while a thread of
 * its own flushes it or copies the store; then the buffers are filled in and libraft's
 * own put writes them. The store may hold entries applied after the index libraft
 * records for the snapshot: the record or the copy gives the index it was taken at,
 * restoring sets the store to that, and the entries between are then skipped as already
 * applied, as after any restore. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct replication *repl = fsm->data;

	commit_now(repl); /* the snapshot holds at least what libraft thinks it does */
	repl->snapshot_checkpoint = checkpoints(repl);
	*n_bufs = repl->snapshot_checkpoint ? 1 : 3;
	*bufs = raft_calloc(*n_bufs, sizeof(**bufs));
	if (*bufs == NULL)
		return RAFT_NOMEM;
	repl->snapshot_bufs = *bufs;
	return 0;
}

/* libraft is done with the snapshot's pieces (written, or failed). */
static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct replication *repl = fsm->data;

	if (repl->snapshot_image != NULL) {
		store_snapshot_unmap(repl->snapshot_image);
		free(repl->snapshot_image);
		repl->snapshot_image = NULL;
	}
	if (*bufs == repl->snapshot_bufs)
		repl->snapshot_bufs = NULL;
	raft_free(*bufs);
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

/* The copy runs on a thread of its own at low CPU priority: on a follower at 340 MB it
 * took 2 s of the machine's two cores, and the writes forwarded through that node waited
 * behind it (p99 200 ms for those 2 s). Here it yields to the KMIP workers and the raft
 * loop, and takes longer only when they are busy. */
#define SNAPSHOT_COPY_NICE 10

static void *snapshot_copy(void *arg)
{
	struct replication *repl = arg;
	uint64_t started = uv_hrtime();

	pthread_setname_np(pthread_self(), "kmipd-snapshot");
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAPSHOT_COPY_NICE);
	if (repl->snapshot_checkpoint) {
		if (repl->snapshot_rv == 0) /* pinned by snapshot_put */
			repl->snapshot_rv = store_checkpoint_flush(repl->config.store);
	} else {
		repl->snapshot_image = calloc(1, sizeof(*repl->snapshot_image));
		repl->snapshot_rv =
			repl->snapshot_image == NULL
				? KMIPD_ENOMEM
				: store_snapshot_map(repl->config.store, repl->snapshot_image);
	}
	repl->snapshot_ns = uv_hrtime() - started;
	uv_async_send(&repl->snapshot_done);
	return NULL;
}

static void close_when_idle(struct replication *repl);

/* libraft's put of a checkpoint is done: only once its record is on disk may the pages of
 * the previous one be reused. */
static void checkpoint_written(struct raft_io_snapshot_put *own, int status)
{
	struct replication *repl = own->data;

	store_checkpoint_settle(repl->config.store, status == 0);
	repl->deferred_put.cb(repl->deferred_put.req, status);
}

/* Each checkpoint at debug; at info the first, then one a minute saying how many came
 * between and how long the slowest flush took (under load they come a few a second). */
#define CHECKPOINT_LOG_MS 60000

static void log_checkpoint(struct replication *repl)
{
	uint64_t now = uv_now(&repl->loop);
	bool quiet = repl->checkpoint_logged_ms != 0 &&
		     now - repl->checkpoint_logged_ms < CHECKPOINT_LOG_MS;
	char since[96] = "";

	if (!quiet && repl->checkpoints_unlogged > 0)
		snprintf(since, sizeof(since),
			 "; %u more since the last such line, the slowest flushed in %.1f ms",
			 repl->checkpoints_unlogged, (double)repl->slowest_unlogged_ns / 1e6);
	log_write(quiet ? LOG_DEBUG : LOG_INFO,
		  "raft: checkpoint of the key store at index %llu (flushed in %.1f ms beside the "
		  "raft loop%s)",
		  (unsigned long long)repl->checkpoint_index, (double)repl->snapshot_ns / 1e6,
		  since);
	if (quiet) {
		repl->checkpoints_unlogged++;
		if (repl->snapshot_ns > repl->slowest_unlogged_ns)
			repl->slowest_unlogged_ns = repl->snapshot_ns;
		return;
	}
	repl->checkpoint_logged_ms = now != 0 ? now : 1;
	repl->checkpoints_unlogged = 0;
	repl->slowest_unlogged_ns = 0;
}

/* The copy is made: fill in the placeholder and let libraft's put write it. */
static void snapshot_copied(uv_async_t *async)
{
	static uint8_t zeros[8];
	struct replication *repl = async->data;
	struct store_image *image = repl->snapshot_image;
	struct raft_buffer *bufs = repl->snapshot_bufs;
	int rv;

	if (!repl->snapshot_copying)
		return; /* a wake-up coalesced with an earlier one */
	pthread_join(repl->snapshot_thread, NULL);
	repl->snapshot_copying = false;
	if (repl->snapshot_rv != 0) {
		/* libraft cannot be told that a snapshot it asked for failed after all, and a
		 * wrong one must never be written: out of memory for a copy of the store, or
		 * a store that could not be flushed. */
		log_fatal("raft: %s the key store for a snapshot failed: %s; stopping",
			  repl->snapshot_checkpoint ? "flushing" : "copying",
			  kmipd_strerror(repl->snapshot_rv));
		abort();
	}
	if (repl->snapshot_checkpoint) {
		bufs[0] = (struct raft_buffer){repl->checkpoint, sizeof(repl->checkpoint)};
		metrics_checkpoint();
		log_checkpoint(repl);
		space_snapshots(repl, 0, repl->deferred_put.snapshot->index);
	} else {
		bufs[0] = (struct raft_buffer){image->header, sizeof(image->header)};
		bufs[1] = (struct raft_buffer){image->image, image->image_len};
		bufs[2] = (struct raft_buffer){zeros, image->pad};
		log_info("raft: snapshot of the key store at index %llu (%zu bytes, copied in "
			 "%.1f ms beside the raft loop)",
			 (unsigned long long)image->applied_index,
			 sizeof(image->header) + image->image_len + image->pad,
			 (double)repl->snapshot_ns / 1e6);
		space_snapshots(repl, sizeof(image->header) + image->image_len + image->pad,
				repl->deferred_put.snapshot->index);
	}
	if (repl->snapshot_checkpoint) {
		repl->checkpoint_put.data = repl;
		rv = repl->uv_snapshot_put(&repl->io, repl->deferred_put.trailing,
					   &repl->checkpoint_put, repl->deferred_put.snapshot,
					   checkpoint_written);
	} else {
		rv = repl->uv_snapshot_put(&repl->io, repl->deferred_put.trailing,
					   repl->deferred_put.req, repl->deferred_put.snapshot,
					   repl->deferred_put.cb);
	}
	if (rv != 0) {
		log_fatal("raft: writing a snapshot failed to start: %s; stopping",
			  raft_strerror(rv));
		abort();
	}
	close_when_idle(repl);
}

/* libraft's I/O puts a snapshot: one this node takes waits for its copy (fsm_snapshot);
 * one received from the leader is written at once. */
static int snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
			const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
	struct replication *repl =
		(struct replication *)((char *)io - offsetof(struct replication, io));
	int rv;

	if (snapshot->bufs != repl->snapshot_bufs || repl->snapshot_bufs == NULL)
		return repl->uv_snapshot_put(io, trailing, req, snapshot, cb);
	repl->deferred_put.trailing = trailing;
	repl->deferred_put.req = req;
	repl->deferred_put.snapshot = snapshot;
	repl->deferred_put.cb = cb;
	/* The pin holds up this loop's writes while it is taken (microseconds, no I/O), so
	 * it is taken here: on the low-priority thread it would hold them for as long as
	 * that thread waits for the CPU. Only the flush is left to the thread. */
	repl->snapshot_rv = 0;
	commit_now(repl); /* the pin takes the lock that an open write transaction holds */
	if (repl->snapshot_checkpoint)
		repl->snapshot_rv = store_checkpoint_pin(repl->config.store, repl->checkpoint,
							 &repl->checkpoint_index);
	rv = pthread_create(&repl->snapshot_thread, NULL, snapshot_copy, repl);
	if (rv != 0)
		return RAFT_IOERR;
	repl->snapshot_copying = true;
	return 0;
}

/* A snapshot sent to a node too far behind: raft_uv loads what this node keeps, and a
 * checkpoint is replaced by a copy of the store, made on a thread of its own at low
 * priority (as snapshot_copy) and handed to libraft, which sends it and frees it. */
struct snapshot_send {
	struct raft_io_snapshot_get get; /* raft_uv's load of the kept snapshot */
	struct replication *repl;
	struct raft_io_snapshot_get *req; /* libraft's */
	raft_io_snapshot_get_cb cb;
	struct raft_snapshot *snapshot;
	pthread_t thread;
	uv_async_t done;
	struct buf image;
	uint64_t index;
	uint64_t ns;
	int rv;
};

static void *send_copy(void *arg)
{
	struct snapshot_send *send = arg;
	uint64_t started = uv_hrtime();

	pthread_setname_np(pthread_self(), "kmipd-snap-send");
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAPSHOT_COPY_NICE);
	send->rv = store_snapshot(send->repl->config.store, &send->image, &send->index);
	send->ns = uv_hrtime() - started;
	uv_async_send(&send->done);
	return NULL;
}

static void free_send(uv_handle_t *handle)
{
	struct snapshot_send *send = handle->data;

	buf_free(&send->image);
	free(send);
}

/* No copy to send (@rv a KMIPD_E* code): libraft is told, and tries again later. */
static void fail_send(struct snapshot_send *send, int rv)
{
	struct raft_snapshot *snapshot = send->snapshot;

	if (rv != KMIPD_ECANCELED)
		log_error("raft: copying the key store to send it to a node behind failed: %s; "
			  "Raft tries again later",
			  kmipd_strerror(rv));
	for (unsigned i = 0; i < snapshot->n_bufs; i++)
		raft_free(snapshot->bufs[i].base);
	raft_free(snapshot->bufs);
	raft_configuration_close(&snapshot->configuration);
	raft_free(snapshot);
	send->cb(send->req, NULL,
		 rv == KMIPD_ENOMEM	 ? RAFT_NOMEM
		 : rv == KMIPD_ECANCELED ? RAFT_CANCELED
					 : RAFT_IOERR);
}

static void send_copied(uv_async_t *async)
{
	struct snapshot_send *send = async->data;
	struct replication *repl = send->repl;
	struct raft_snapshot *snapshot = send->snapshot;

	pthread_join(send->thread, NULL);
	repl->snapshot_sends--;
	if (send->rv != 0) {
		fail_send(send, send->rv);
	} else {
		log_info("raft: the key store at index %llu copied to send to a node behind "
			 "(%zu bytes, in %.1f ms)",
			 (unsigned long long)send->index, send->image.len, (double)send->ns / 1e6);
		raft_free(snapshot->bufs[0].base);
		snapshot->bufs[0] = (struct raft_buffer){send->image.data, send->image.len};
		send->image = (struct buf)BUF_INIT; /* libraft frees it once sent */
		send->cb(send->req, snapshot, 0);
	}
	uv_close((uv_handle_t *)&send->done, free_send);
	close_when_idle(repl);
}

static void snapshot_loaded(struct raft_io_snapshot_get *get, struct raft_snapshot *snapshot,
			    int status)
{
	struct snapshot_send *send = get->data;
	struct replication *repl = send->repl;
	int rv;

	if (status != 0 || snapshot == NULL || snapshot->n_bufs != 1 ||
	    !store_snapshot_is_checkpoint(snapshot->bufs[0].base, snapshot->bufs[0].len)) {
		send->cb(send->req, snapshot, status); /* a copy already, or a failure */
		free(send);
		return;
	}
	send->snapshot = snapshot;
	if (repl->shut_down) { /* Raft may be closing: no copy, and never the checkpoint */
		fail_send(send, KMIPD_ECANCELED);
		free(send);
		return;
	}
	send->done.data = send;
	rv = uv_async_init(&repl->loop, &send->done, send_copied);
	if (rv != 0) {
		fail_send(send, KMIPD_ENOMEM);
		free(send);
		return;
	}
	rv = pthread_create(&send->thread, NULL, send_copy, send);
	if (rv != 0) {
		fail_send(send, KMIPD_ENOMEM);
		uv_close((uv_handle_t *)&send->done, free_send);
		return;
	}
	repl->snapshot_sends++;
}

/* libraft's I/O loads the snapshot to send to a node behind. */
static int snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
			raft_io_snapshot_get_cb cb)
{
	struct replication *repl =
		(struct replication *)((char *)io - offsetof(struct replication, io));
	struct snapshot_send *send = calloc(1, sizeof(*send));
	int rv;

	if (send == NULL)
		return RAFT_NOMEM;
	send->repl = repl;
	send->req = req;
	send->cb = cb;
	send->get.data = send;
	rv = repl->uv_snapshot_get(io, &send->get, snapshot_loaded);
	if (rv != 0)
		free(send);
	return rv;
}

/* Replaces the store with a snapshot from the leader, unless the local store is already
 * at or past it (at start-up the local LMDB is usually newer than the last snapshot). At
 * start-up the snapshot may be this node's own checkpoint: a store the machine's crash set
 * aside is rolled back to it. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct replication *repl = fsm->data;
	struct store_txn *txn;
	uint64_t snapshot_index, local_index = 0;
	bool checkpoint = store_snapshot_is_checkpoint(buf->base, buf->len);
	char errmsg[256];
	int rv;

	commit_now(repl);
	rv = store_snapshot_index(buf->base, buf->len, &snapshot_index);
	if (rv != 0) {
		log_error(
			"raft: refusing a snapshot that is not a kmipd store image or checkpoint");
		return RAFT_MALFORMED;
	}
	if (checkpoint && repl->raft_started) {
		/* Only this node's own, at start-up: another node's names pages of its file. */
		log_error("raft: refusing a checkpoint sent by another node instead of a copy");
		return RAFT_MALFORMED;
	}
	if (store_txn_begin(repl->config.store, false, &txn) == 0) {
		store_applied_index(txn, &local_index);
		store_txn_abort(txn);
	}
	if (local_index >= snapshot_index) {
		log_info("raft: keeping the local store (index %llu) over a %s at %llu",
			 (unsigned long long)local_index, checkpoint ? "checkpoint" : "snapshot",
			 (unsigned long long)snapshot_index);
	} else if (checkpoint) {
		rv = store_rollback(repl->config.store, buf->base, buf->len, errmsg,
				    sizeof(errmsg));
		if (rv != 0) {
			/* Raft's log before the checkpoint is gone: nothing else can rebuild it. */
			log_fatal(
				"raft: the key store (index %llu) is behind its checkpoint at "
				"index %llu and cannot be rolled back to it: %s. Move this node's "
				"raft and store directories away and start it again: it rejoins "
				"and is sent the store by the leader",
				(unsigned long long)local_index, (unsigned long long)snapshot_index,
				errmsg);
			abort();
		}
		log_info("raft: key store rolled back to its checkpoint at index %llu (a machine "
			 "crash may have torn what came after; Raft's log brings it back)",
			 (unsigned long long)snapshot_index);
		load_tenants(repl);
		repl->txn_last = snapshot_index;
		repl->committed = snapshot_index;
	} else {
		rv = store_restore(repl->config.store, buf->base, buf->len, errmsg, sizeof(errmsg));
		if (rv != 0) {
			log_fatal("raft: restoring a snapshot at index %llu failed: %s",
				  (unsigned long long)snapshot_index, errmsg);
			abort();
		}
		log_info("raft: key store restored from a snapshot at index %llu (was %llu)",
			 (unsigned long long)snapshot_index, (unsigned long long)local_index);
		load_tenants(repl);
		repl->txn_last = snapshot_index;
		repl->committed = snapshot_index;
	}
	raft_free(buf->base);
	return 0;
}

/* The entry carrying @p was applied at @index (@status 0), or will not be by this node. */
static void member_applied(struct proposal *p, int status, raft_index index)
{
	struct replication *repl = p->repl;
	const struct command_result *outcome = p->reply ? &p->reply->result : &p->local;

	if (status == 0)
		p->index = index;
	if (p->origin != NULL) {
		/* Forwarded by a follower: it waits for its own copy of the entry. */
		struct command_result failed;

		if (status != 0) {
			memset(&failed, 0, sizeof(failed));
			failed.status = status == RAFT_LEADERSHIPLOST ? KMIPD_EAGAIN : KMIPD_EIO;
			snprintf(failed.message, sizeof(failed.message), "%s",
				 raft_strerror(status));
			outcome = &failed;
		}
		peer_send_result(p, outcome);
		proposal_answer(p);
		return;
	}
	if (status == 0) {
		if (p->index <= repl->committed || p->reply == NULL)
			proposal_answer(p);
		else
			set_state(p, PROPOSAL_WAIT_APPLY);
		return;
	}
	switch (status) {
	case RAFT_LEADERSHIPLOST:
		/* The entry may or may not commit under the next leader. Its request id
		 * makes a resubmission harmless: send it again, to whoever leads now. */
		if (p->reply != NULL && !repl->stopping) {
			log_info("raft: leadership lost with a write in flight; resubmitting it");
			proposal_route(p);
			return;
		}
		proposal_fail(p, KMIPD_EAGAIN,
			      "this node lost leadership before the change was confirmed; it may "
			      "or may not have been applied");
		break;
	case RAFT_NOSPACE:
		proposal_fail(p, KMIPD_ENO_SPACE, "the Raft log's disk is full");
		break;
	case RAFT_CANCELED:
	case RAFT_SHUTDOWN:
		proposal_fail(p, KMIPD_ECANCELED, "the node is shutting down");
		break;
	default:
		proposal_fail(p, KMIPD_EIO, "%s", raft_strerror(status));
		break;
	}
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
	struct proposal *carrier = req->data;

	(void)result;
	carrier->raft_owns = false;
	carrier->buf.base = NULL; /* raft's */
	set_state(carrier, PROPOSAL_NEW);
	for (unsigned i = 0; i < carrier->n_members; i++) {
		struct proposal *m = carrier->members[i];

		m->carrier = NULL;
		if (m->state == PROPOSAL_BATCHED)
			set_state(m, PROPOSAL_NEW);
		if (m->reply == NULL && m->origin == NULL)
			maybe_free(m); /* answered already (timed out) */
		else
			member_applied(m, status, req->index);
	}
	proposal_free(carrier);
}

/* A catch-up's barrier has been applied here, the leader: every write acknowledged before
 * it has an index at or below this one. */
static void on_barrier(struct raft_barrier *req, int status)
{
	struct proposal *p = req->data;
	struct replication *repl = p->repl;
	struct command_result outcome = {.status = 0};

	p->raft_owns = false;
	set_state(p, PROPOSAL_NEW);
	if (status == 0) {
		p->index = raft_last_applied(&repl->raft);
	} else {
		outcome.status = KMIPD_EAGAIN;
		snprintf(outcome.message, sizeof(outcome.message), "%s", raft_strerror(status));
	}
	if (p->origin != NULL) {
		peer_send_result(p, &outcome);
		proposal_answer(p);
		return;
	}
	if (status != 0) {
		proposal_fail(p, KMIPD_EAGAIN, "the cluster leader could not confirm: %s",
			      raft_strerror(status));
		return;
	}
	if (p->index <= repl->committed)
		proposal_answer(p);
	else
		set_state(p, PROPOSAL_WAIT_APPLY);
}

/* raft refused to take @p (for a reason other than not leading): tell whoever waits. */
static void append_failed(struct proposal *p, const char *what, int rv)
{
	if (p->origin != NULL) {
		struct command_result failed = {.status = KMIPD_EIO};

		snprintf(failed.message, sizeof(failed.message), "%s: %s", what, raft_strerror(rv));
		peer_send_result(p, &failed);
	}
	proposal_fail(p, KMIPD_EIO, "%s: %s", what, raft_strerror(rv));
}

/* @p was forwarded to this node, which does not lead (any more) or is stopping: the
 * follower that sent it routes it again. */
static void send_back(struct proposal *p)
{
	struct command_result retry = {.status = KMIPD_EAGAIN};

	snprintf(retry.message, sizeof(retry.message), "not the leader");
	peer_send_result(p, &retry);
}

/* @p cannot be appended here: forward it to the leader if another node leads, send it
 * back to the follower that forwarded it, or keep it until a leader is known. */
static void route_elsewhere(struct proposal *p)
{
	struct replication *repl = p->repl;
	raft_id leader_id;
	const char *leader_address;

	raft_leader(&repl->raft, &leader_id, &leader_address);
	if (p->origin == NULL && leader_id != 0 && leader_id != repl->config.id &&
	    peer_forward(repl, p, leader_id, leader_address) == 0)
		return;
	if (p->origin != NULL) {
		send_back(p);
		proposal_answer(p);
		return;
	}
	set_state(p, PROPOSAL_WAIT_LEADER);
}

/* Appends @p here if this node leads (at the end of the loop turn, with whatever else
 * arrived in it); forwards it if another node does; keeps it waiting if nobody does. */
void proposal_route(struct proposal *p)
{
	struct replication *repl = p->repl;
	int rv;

	if (repl->stopping) {
		proposal_fail(p, KMIPD_ECANCELED, "the node is shutting down");
		return;
	}
	if (raft_state(&repl->raft) != RAFT_LEADER) {
		route_elsewhere(p);
		return;
	}
	if (p->is_sync) {
		p->barrier.data = p;
		rv = raft_barrier(&repl->raft, &p->barrier, on_barrier);
		if (rv == 0) {
			p->raft_owns = true;
			set_state(p, PROPOSAL_INFLIGHT);
		} else if (rv == RAFT_NOTLEADER) {
			route_elsewhere(p);
		} else {
			append_failed(p, "barrier", rv);
		}
		return;
	}
	if (repl->batching.head == NULL)
		uv_idle_start(&repl->batch_idle, on_batch_idle);
	p->behind_entry = repl->inflight.head != NULL;
	set_state(p, PROPOSAL_BATCHING);
}

/* Makes the carrier of the first @n proposals waiting in repl->batching: its entry is the
 * one command's entry as it is, or a batch of them. NULL if memory ran out. */
static struct proposal *carrier_new(struct replication *repl, unsigned n)
{
	struct proposal *carrier = calloc(1, sizeof(*carrier));
	struct proposal *p = repl->batching.head;
	struct buf batch = BUF_INIT;

	if (carrier == NULL || (carrier->members = calloc(n, sizeof(*carrier->members))) == NULL)
		goto err;
	carrier->repl = repl;
	for (unsigned i = 0; i < n; i++, p = p->next) {
		carrier->members[i] = p;
		if (n > 1 && command_batch_add(&batch, p->buf.base, p->buf.len) != 0)
			goto err;
	}
	carrier->n_members = n;
	carrier->buf.len = n > 1 ? batch.len : repl->batching.head->buf.len;
	carrier->buf.base = raft_malloc(carrier->buf.len);
	if (carrier->buf.base == NULL)
		goto err;
	memcpy(carrier->buf.base, n > 1 ? batch.data : repl->batching.head->buf.base,
	       carrier->buf.len);
	buf_free(&batch);
	return carrier;
err:
	buf_free(&batch);
	if (carrier != NULL)
		free(carrier->members);
	free(carrier);
	return NULL;
}

/* The most bytes of commands one batch entry carries (a larger command goes alone). */
#define BATCH_BYTES_MAX (256 * 1024)

/* Whether what waits in repl->batching is to wait a little longer. Every entry costs each
 * node a log write, a store commit and a message each way, whatever it carries: at 3,000
 * Creates/s on three nodes that fixed cost was most of the cluster's CPU. So writes that
 * arrive while an entry is in flight are held until batch_hold_ms after the last append,
 * or until they fill a batch. The entry's being applied does not end the hold: that came
 * after about a millisecond, and entries then followed the round trip instead of the hold
 * (2.4-3.7 writes each at 3,000 Creates/s, twice as many entries as now). A write that
 * arrives with nothing in flight goes at once: a lone client never waits for a hold. */
static bool batch_held(struct replication *repl)
{
	const struct proposal *p = repl->batching.head;
	size_t bytes = 0;
	unsigned n = 0;
	uint64_t hold_ns = (uint64_t)repl->config.batch_hold_ms * 1000000;
	uint64_t since;

	if (hold_ns == 0 || p == NULL || !p->behind_entry)
		return false;
	since = uv_hrtime() - repl->last_append_ns;
	if (since >= hold_ns)
		return false;
	for (; p != NULL; p = p->next) {
		bytes += p->buf.len;
		if (++n >= COMMAND_BATCH_MAX || bytes >= BATCH_BYTES_MAX)
			return false;
	}
	if (!uv_is_active((uv_handle_t *)&repl->batch_hold))
		uv_timer_start(&repl->batch_hold, on_batch_hold,
			       (hold_ns - since + 999999) / 1000000, 0);
	return true;
}

/* Appends what waits in repl->batching as one entry, or a few if there is a lot, unless
 * it is held (batch_held). */
static void append_batches(struct replication *repl)
{
	uv_idle_stop(&repl->batch_idle);
	if (batch_held(repl))
		return;
	append_now(repl);
}

static void append_now(struct replication *repl)
{
	uv_timer_stop(&repl->batch_hold);
	if (repl->batching.head != NULL)
		repl->last_append_ns = uv_hrtime();
	while (repl->batching.head != NULL) {
		struct proposal *p = repl->batching.head->next, *carrier;
		size_t bytes = repl->batching.head->buf.len;
		unsigned n = 1;
		int rv;

		for (; p != NULL && n < COMMAND_BATCH_MAX && bytes + p->buf.len <= BATCH_BYTES_MAX;
		     p = p->next, n++)
			bytes += p->buf.len;
		carrier = carrier_new(repl, n);
		if (carrier == NULL) {
			while (n-- > 0)
				append_failed(repl->batching.head, "batching writes", RAFT_NOMEM);
			continue;
		}
		carrier->req.data = carrier;
		rv = raft_apply(&repl->raft, &carrier->req, &carrier->buf, 1, on_applied);
		if (rv == 0) {
			metrics_appended(n);
			carrier->raft_owns = true;
			set_state(carrier, PROPOSAL_INFLIGHT);
			for (unsigned i = 0; i < n; i++) {
				carrier->members[i]->carrier = carrier;
				set_state(carrier->members[i], PROPOSAL_BATCHED);
			}
			continue;
		}
		for (unsigned i = 0; i < n; i++) {
			set_state(carrier->members[i], PROPOSAL_NEW);
			if (rv == RAFT_NOTLEADER)
				route_elsewhere(carrier->members[i]);
			else
				append_failed(carrier->members[i], "appending to the Raft log", rv);
		}
		proposal_free(carrier);
	}
}

static void on_batch_idle(uv_idle_t *idle)
{
	append_batches(idle->data);
}

static void on_batch_hold(uv_timer_t *timer)
{
	append_now(timer->data);
}

static void on_proposal(struct mailbox *inbox, struct mailbox_item *item)
{
	struct proposal *p = (struct proposal *)item;

	(void)inbox;
	p->deadline_ms = uv_now(&p->repl->loop) + p->repl->config.write_timeout_ms;
	proposal_route(p);
}

static void on_admin_task(struct mailbox *control, struct mailbox_item *item)
{
	(void)control;
	cluster_admin_run((struct admin_task *)item);
}

/* Logs changes of leadership as this node sees them. */
static void note_leader(struct replication *repl)
{
	raft_id leader;
	const char *address;

	raft_leader(&repl->raft, &leader, &address);
	if (leader == repl->seen_leader)
		return;
	repl->seen_leader = leader;
	if (leader == repl->config.id)
		log_info("raft: this node (%llu) is the leader", (unsigned long long)leader);
	else if (leader != 0)
		log_info("raft: node %llu at %s is the leader", (unsigned long long)leader,
			 address);
	else
		log_info("raft: no leader known");
}

/* Writes forwarded to a node that no longer leads (it may be cut off, its connection
 * silent rather than closed) go to the new leader: their request ids make that safe. */
static void resend_to_new_leader(struct replication *repl)
{
	raft_id leader;
	const char *address;
	struct proposal *p, *next;

	raft_leader(&repl->raft, &leader, &address);
	if (leader == 0)
		return;
	for (p = repl->forwarded.head; p != NULL; p = next) {
		next = p->next;
		if (p->via != NULL && peer_node(p->via) != leader) {
			set_state(p, PROPOSAL_NEW);
			p->via = NULL;
			proposal_route(p);
		}
	}
}

static const char *state_name(int state)
{
	switch (state) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	default:
		return "unavailable";
	}
}

/* Publishes what other threads may ask (replication_status). */
static void publish_status(struct replication *repl)
{
	struct replication_status s = {.id = repl->config.id, .witness = repl->config.witness};
	const char *address = NULL;
	raft_id leader = 0;

	s.running = repl->phase == PHASE_RUNNING && repl->raft_started;
	if (s.running) {
		snprintf(s.state, sizeof(s.state), "%s", state_name(raft_state(&repl->raft)));
		s.term = raft_current_term(&repl->raft);
		s.commit_index = raft_commit_index(&repl->raft);
		s.applied_index = repl->committed;
		raft_leader(&repl->raft, &leader, &address);
		s.leader_id = leader;
		snprintf(s.leader_address, sizeof(s.leader_address), "%s",
			 address != NULL ? address : "");
		for (unsigned i = 0; i < repl->raft.configuration.n; i++) {
			const struct raft_server *server = &repl->raft.configuration.servers[i];

			if (i < sizeof(s.member) / sizeof(s.member[0])) {
				s.member[i].id = server->id;
				snprintf(s.member[i].address, sizeof(s.member[i].address), "%s",
					 server->address);
				snprintf(s.member[i].role, sizeof(s.member[i].role), "%s",
					 server->role == RAFT_VOTER	? "voter"
					 : server->role == RAFT_STANDBY ? "standby"
									: "spare");
			}
			s.members++;
			if (server->role == RAFT_VOTER)
				s.voters++;
		}
	} else {
		snprintf(s.state, sizeof(s.state), "unavailable");
	}
	s.format_level = cluster_format_level(repl, &s.format_held_by);
	pthread_mutex_lock(&repl->status_lock);
	repl->status = s;
	pthread_mutex_unlock(&repl->status_lock);
}

void replication_status(struct replication *repl, struct replication_status *out)
{
	pthread_mutex_lock(&repl->status_lock);
	*out = repl->status;
	pthread_mutex_unlock(&repl->status_lock);
}

/* Every TICK_MS: route what waits for a leader, and fail what waited too long. */
static void on_tick(uv_timer_t *timer)
{
	struct replication *repl = timer->data;
	uint64_t now = uv_now(&repl->loop);
	struct proposal_list *lists[] = {&repl->wait_leader, &repl->batching, &repl->forwarded,
					 &repl->batched, &repl->wait_apply};
	struct proposal_list waiting;
	struct proposal *p, *next;

	cluster_tick(repl);
	note_leader(repl);
	publish_status(repl);
	resend_to_new_leader(repl);
	reseal_tick(repl);

	/* What waited too long is answered "no quorum". */
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		for (p = lists[i]->head; p != NULL; p = next) {
			next = p->next;
			if (p->reply != NULL && now >= p->deadline_ms)
				proposal_fail(p, KMIPD_ENO_QUORUM,
					      "the cluster has no quorum: the change was not "
					      "confirmed within %u ms%s",
					      repl->config.write_timeout_ms,
					      p->state == PROPOSAL_WAIT_LEADER
						      ? " (no leader)"
						      : "; it may still be applied later");
		}
	}

	/* The rest of what waits for a leader is routed again, each once: routing may put
	 * it straight back on the waiting list, so walk a detached copy of the list. */
	waiting = repl->wait_leader;
	repl->wait_leader.head = repl->wait_leader.tail = NULL;
	for (p = waiting.head; p != NULL; p = next) {
		next = p->next;
		p->prev = p->next = NULL;
		p->state = PROPOSAL_NEW;
		proposal_route(p);
	}
}

static struct proposal *proposal_new(struct replication *repl, const struct buf *entry,
				     struct mailbox *reply_to)
{
	struct proposal *p;

	if (entry->len == 0 || entry->len % 8 != 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->reply = calloc(1, sizeof(*p->reply));
	p->buf.base = raft_malloc(entry->len);
	if (p->reply == NULL || p->buf.base == NULL) {
		free(p->reply);
		raft_free(p->buf.base);
		free(p);
		return NULL;
	}
	memcpy(p->buf.base, entry->data, entry->len);
	p->buf.len = entry->len;
	p->repl = repl;
	p->reply_to = reply_to;
	return p;
}

static int post(struct replication *repl, struct proposal *p)
{
	if (mailbox_post(&repl->inbox, &p->item) != 0) {
		raft_free(p->buf.base);
		free(p->reply);
		free(p);
		return KMIPD_ECANCELED;
	}
	return 0;
}

int replication_propose(struct service *service, struct kmip_op_ctx *ctx, const struct buf *entry,
			service_done_fn done)
{
	struct replication *repl = service->propose_arg;
	struct proposal *p = proposal_new(repl, entry, service_session(ctx)->reply);

	if (p == NULL)
		return KMIPD_ENOMEM;
	p->reply->ctx = ctx;
	p->reply->done = done;
	return post(repl, p);
}

int replication_submit(struct replication *repl, const struct buf *entry, struct mailbox *reply,
		       replication_complete_fn complete, void *arg)
{
	struct proposal *p = proposal_new(repl, entry, reply);

	if (p == NULL)
		return KMIPD_ENOMEM;
	p->reply->complete = complete;
	p->reply->arg = arg;
	return post(repl, p);
}

/* A catch-up: a barrier at the leader, then until this node has applied its index. NULL
 * for a single node (it is always caught up) or when memory or the inbox is gone. */
static struct proposal *catch_up(struct replication *repl, struct mailbox *reply_to)
{
	struct proposal *p;

	if (repl->config.members == NULL || repl->config.members[0] == '\0')
		return NULL; /* one node: what it has is all there is */
	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->reply = calloc(1, sizeof(*p->reply))) == NULL) {
		free(p);
		return NULL;
	}
	p->is_sync = true;
	p->repl = repl;
	p->reply_to = reply_to;
	return p;
}

int replication_sync(struct service *service, struct kmip_op_ctx *ctx)
{
	struct replication *repl = service->propose_arg;
	struct proposal *p = catch_up(repl, service_session(ctx)->reply);

	if (p == NULL)
		return KMIP_OP_DONE;
	p->reply->ctx = ctx;
	p->reply->done = service_sync_done;
	return post(repl, p) == 0 ? KMIP_OP_PENDING : KMIP_OP_DONE;
}

int replication_catch_up(struct replication *repl, struct mailbox *reply,
			 replication_complete_fn complete, void *arg)
{
	struct proposal *p = catch_up(repl, reply);

	if (p == NULL)
		return 1;
	p->reply->complete = complete;
	p->reply->arg = arg;
	return post(repl, p);
}

/* On the caller's loop: the task's outcome goes to its callback. */
static void admin_task_done(void *arg, const struct command_result *result)
{
	struct admin_task *task = arg;

	(void)result;
	task->done(task->arg, task->json != NULL ? task->json : "{\"ok\": false}");
	free(task->json);
	free(task);
}

int replication_admin(struct replication *repl, enum replication_admin_op op, uint64_t id,
		      const char *address, unsigned timeout_ms, struct mailbox *reply,
		      replication_admin_fn done, void *arg)
{
	struct admin_task *task = calloc(1, sizeof(*task));

	if (task == NULL || (task->reply = calloc(1, sizeof(*task->reply))) == NULL) {
		free(task);
		return KMIPD_ENOMEM;
	}
	task->repl = repl;
	task->op = op;
	task->id = id;
	snprintf(task->address, sizeof(task->address), "%s", address != NULL ? address : "");
	task->timeout_ms = timeout_ms;
	task->reply_to = reply;
	task->reply->complete = admin_task_done;
	task->reply->arg = task;
	task->done = done;
	task->arg = arg;
	if (mailbox_post(&repl->control, &task->item) != 0) {
		free(task->reply);
		free(task);
		return KMIPD_ECANCELED;
	}
	return 0;
}

void replication_deliver(struct mailbox_item *item)
{
	struct reply *reply = (struct reply *)item;

	if (reply->complete != NULL)
		reply->complete(reply->arg, &reply->result);
	else
		service_complete(reply->ctx, reply->done, &reply->result);
	free(reply);
}

static int load_tenant(const struct store_tenant *t, void *arg)
{
	struct replication *repl = arg;

	if (repl->tenant_keys != NULL)
		tenant_keys_update(repl->tenant_keys, t);
	return 0;
}

/* Loads the KEK of every tenant the store has, or starts asking its provider. */
static int load_tenants(struct replication *repl)
{
	struct store_txn *txn;
	struct arena arena;
	int rv = store_txn_begin(repl->config.store, false, &txn);

	if (rv != 0)
		return rv;
	arena_init(&arena, 4096, 0);
	rv = store_tenant_foreach(txn, &arena, load_tenant, repl);
	arena_free(&arena);
	store_txn_abort(txn);
	return rv;
}

static void signal_started(struct replication *repl, int rv)
{
	pthread_mutex_lock(&repl->lock);
	repl->start_rv = rv;
	repl->ready = true;
	pthread_cond_signal(&repl->cond);
	pthread_mutex_unlock(&repl->lock);
}

static void on_raft_closed(struct raft *raft)
{
	struct replication *repl = raft->data;

	raft_uv_close(&repl->io);
	transport_free(&repl->transport);
	/* Closing failed the proposals raft held; commit what was applied and answer. */
	commit_now(repl);
	uv_close((uv_handle_t *)&repl->commit_check, NULL);
	uv_close((uv_handle_t *)&repl->batch_idle, NULL);
	uv_close((uv_handle_t *)&repl->batch_hold, NULL);
	uv_close((uv_handle_t *)&repl->commit_due, NULL);
	uv_close((uv_handle_t *)&repl->snapshot_done, NULL); /* no copy runs: raft waited */
	stop_write_back(repl);
	mailbox_close(&repl->own_replies, NULL);
}

static void close_handle(uv_handle_t *handle, void *arg)
{
	(void)arg;
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

static void raft_close_now(struct replication *repl)
{
	repl->close_after_copy = false;
	raft_close(&repl->raft, on_raft_closed);
}

/* Closes Raft and the loop's handles; the loop then ends. A snapshot being copied is
 * written first: libraft waits for its put. */
static void shut_down(struct replication *repl)
{
	if (repl->shut_down)
		return;
	repl->shut_down = true;
	if (uv_is_active((uv_handle_t *)&repl->transfer_timer))
		uv_timer_stop(&repl->transfer_timer);
	uv_close((uv_handle_t *)&repl->transfer_timer, NULL);
	peer_close_all(repl);
	repl->close_after_copy = true;
	close_when_idle(repl);
}

/* Once shut_down() has asked, closes Raft when no copy or checkpoint is being made: libraft
 * waits for its put, and for the snapshot it asked to send. */
static void close_when_idle(struct replication *repl)
{
	if (repl->close_after_copy && !repl->snapshot_copying && repl->snapshot_sends == 0)
		raft_close_now(repl);
}

/* The hand-over did not complete in time (the other voters may be stopping too). */
static void on_transfer_timeout(uv_timer_t *timer)
{
	struct replication *repl = timer->data;

	log_warn("raft: no other node took leadership before this one stopped; the cluster "
		 "elects a new leader");
	shut_down(repl);
}

static void on_transferred(struct raft_transfer *req)
{
	struct replication *repl = req->data;
	raft_id leader;
	const char *address;

	if (repl->shut_down)
		return;
	raft_leader(&repl->raft, &leader, &address);
	if (leader != 0 && leader != repl->config.id)
		log_info("raft: handed leadership to node %llu before stopping",
			 (unsigned long long)leader);
	else
		log_warn("raft: no other node took leadership before this one stopped; the "
			 "cluster elects a new leader");
	shut_down(repl);
}

static void on_stop(uv_async_t *async)
{
	struct replication *repl = async->data;
	struct proposal_list *lists[] = {&repl->wait_leader, &repl->batching, &repl->forwarded,
					 &repl->wait_apply};

	repl->stopping = true;
	tenant_keys_close(repl->tenant_keys);
	repl->tenant_keys = NULL;
	mailbox_close(&repl->inbox, NULL);
	mailbox_close(&repl->control, NULL);
	uv_close((uv_handle_t *)&repl->stop, NULL);
	uv_close((uv_handle_t *)&repl->tick, NULL);
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		while (lists[i]->head != NULL) {
			if (lists[i]->head->origin != NULL)
				send_back(lists[i]->head);
			proposal_fail(lists[i]->head, KMIPD_ECANCELED, "the node is shutting down");
		}
	/* A leader hands leadership to an up-to-date voter first, so the cluster does not
	 * wait an election timeout for a new one (rolling upgrades stop nodes in turn). */
	uv_timer_init(&repl->loop, &repl->transfer_timer);
	repl->transfer_timer.data = repl;
	if (raft_state(&repl->raft) == RAFT_LEADER) {
		repl->transfer.data = repl;
		if (raft_transfer(&repl->raft, &repl->transfer, 0, on_transferred) == 0) {
			uv_timer_start(&repl->transfer_timer, on_transfer_timeout,
				       2 * (uint64_t)repl->config.election_timeout_ms, 0);
			return;
		}
	}
	shut_down(repl);
}

/* Parses "ID@HOST:PORT,..." into @conf. */
static int parse_members(struct replication *repl, struct raft_configuration *conf)
{
	const char *s = repl->config.members;
	bool self = false;

	while (s != NULL && *s != '\0') {
		size_t len = strcspn(s, ",");
		char entry[256], *at, *end;
		unsigned long long id;

		if (len == 0 || len >= sizeof(entry))
			goto bad;
		memcpy(entry, s, len);
		entry[len] = '\0';
		at = strchr(entry, '@');
		if (at == NULL)
			goto bad;
		*at = '\0';
		errno = 0;
		id = strtoull(entry, &end, 10);
		if (errno != 0 || *end != '\0' || id == 0 || strchr(at + 1, ':') == NULL)
			goto bad;
		if (raft_configuration_add(conf, id, at + 1, RAFT_VOTER) != 0) {
			snprintf(repl->errmsg, sizeof(repl->errmsg),
				 "cluster.members: node %llu is listed twice", id);
			return KMIPD_EINVAL;
		}
		if (id == repl->config.id) {
			self = true;
			if (strcmp(at + 1, repl->address) != 0) {
				snprintf(repl->errmsg, sizeof(repl->errmsg),
					 "cluster.members gives node %llu the address %s, but "
					 "raft.address is %s",
					 id, at + 1, repl->address);
				return KMIPD_EINVAL;
			}
		}
		s += len;
		if (*s == ',')
			s++;
	}
	if (!self) {
		snprintf(repl->errmsg, sizeof(repl->errmsg),
			 "cluster.members does not list this node (raft.id %llu)",
			 (unsigned long long)repl->config.id);
		return KMIPD_EINVAL;
	}
	return 0;
bad:
	snprintf(repl->errmsg, sizeof(repl->errmsg),
		 "cluster.members: '%s' is not a list of ID@HOST:PORT", repl->config.members);
	return KMIPD_EINVAL;
}

static int loop_start(struct replication *repl)
{
	unsigned seed;
	int rv;

	rv = transport_init(&repl->transport, &repl->loop, repl->config.peer_server_tls,
			    repl->config.peer_client_tls, repl->cluster_id);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft transport: %s",
			 kmipd_strerror(rv));
		return rv;
	}
	rv = raft_uv_init(&repl->io, &repl->loop, repl->dir, &repl->transport);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft log in %s: %s", repl->dir,
			 repl->io.errmsg);
		return KMIPD_EIO;
	}
	repl->uv_snapshot_put = repl->io.snapshot_put;
	repl->io.snapshot_put = snapshot_put;
	repl->uv_snapshot_get = repl->io.snapshot_get;
	repl->io.snapshot_get = snapshot_get;
	repl->fsm.version = 2;
	repl->fsm.data = repl;
	repl->fsm.apply = fsm_apply;
	repl->fsm.snapshot = fsm_snapshot;
	repl->fsm.restore = fsm_restore;
	repl->fsm.snapshot_finalize = fsm_snapshot_finalize;
	rv = raft_init(&repl->raft, &repl->io, &repl->fsm, repl->config.id, repl->address);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft: %s", raft_errmsg(&repl->raft));
		return KMIPD_EIO;
	}
	repl->raft.data = repl;
	/* raft_uv seeds the election timeouts from the node id and two clocks in
	 * milliseconds: nodes started together can draw alike, time out together after a
	 * leader dies and split the vote (both survivors became candidates 4 ms apart in a
	 * failover drill, and writes came back after 3.4 s instead of 1.6-2.0 s). */
	if (crypto_random(&seed, sizeof(seed)) == 0)
		raft_seed(&repl->raft, seed);

	raft_configuration_init(&repl->founders);
	if (repl->config.members != NULL && repl->config.members[0] != '\0')
		rv = parse_members(repl, &repl->founders);
	else
		rv = raft_configuration_add(&repl->founders, repl->config.id, repl->address,
					    RAFT_VOTER);
	if (rv == KMIPD_EINVAL)
		return rv;
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "out of memory");
		return KMIPD_ENOMEM;
	}

	raft_set_election_timeout(&repl->raft, repl->config.election_timeout_ms);
	raft_set_heartbeat_timeout(&repl->raft, repl->config.heartbeat_ms);
	raft_set_pre_vote(&repl->raft, true);
	raft_set_snapshot_threshold(&repl->raft, repl->config.snapshot_threshold);
	raft_set_snapshot_trailing(&repl->raft, repl->config.snapshot_trailing);
	probe_checkpoints(repl);
	if (checkpoints(repl) &&
	    pthread_create(&repl->write_back_thread, NULL, write_back, repl) == 0)
		repl->write_back_running = true;
	return cluster_start(repl);
}

/* Waits (on the loop) until this node leads, so that a single node accepts writes as soon
 * as replication_start() returns. A cluster member returns at once: the others may not be
 * up yet, and writes wait for a leader on their own. */
static void on_wait_leader(uv_timer_t *timer)
{
	struct replication *repl = timer->data;
	bool single = repl->config.members == NULL || repl->config.members[0] == '\0';

	if (!single || raft_state(&repl->raft) == RAFT_LEADER) {
		uv_timer_stop(timer);
		uv_close((uv_handle_t *)timer, NULL);
		signal_started(repl, 0);
	}
}

/* The raft loop's own changes (a KEK rewrapped by its provider) are answered here. */
static void on_own_reply(struct mailbox *mailbox, struct mailbox_item *item)
{
	(void)mailbox;
	replication_deliver(item);
}

static void rewrap_stored(void *arg, const struct command_result *result)
{
	const char *tenant = arg;

	if (result->status == 0)
		log_info("tenant %s: the rewrapped key-encryption key is stored on every node",
			 tenant);
	else if (result->status != KMIPD_ESTATE) /* another node stored it first */
		log_warn("tenant %s: storing the rewrapped key-encryption key failed (%s); the "
			 "next check tries again",
			 tenant, result->message);
	free(arg);
}

/* tenant_keys' rewrapped callback: replicate the new form, replacing @old if it is still
 * the stored one. */
static void on_rewrapped(void *arg, const char *tenant, const uint8_t *old, size_t old_len,
			 const char *ciphertext)
{
	struct replication *repl = arg;
	struct command cmd;
	struct buf entry = BUF_INIT;
	uint64_t held_by;
	char *name;
	int rv;

	if (cluster_format_level(repl, &held_by) < command_level(COMMAND_TENANT_REWRAP)) {
		/* The old form keeps working: the provider rewraps it on every unwrap. */
		log_info("tenant %s: the rewrapped key-encryption key is stored once node %llu "
			 "runs this kmipd version",
			 tenant, (unsigned long long)held_by);
		return;
	}
	name = strdup(tenant);
	rv = name == NULL ? KMIPD_ENOMEM : 0;

	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_TENANT_REWRAP;
	cmd.time = (int64_t)time(NULL);
	snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", tenant);
	cmd.tenant_record.wrapped_kek = (const uint8_t *)ciphertext;
	cmd.tenant_record.wrapped_kek_len = strlen(ciphertext);
	cmd.old_kek = old;
	cmd.old_kek_len = old_len;
	if (rv == 0)
		rv = crypto_request_id(cmd.request_id);
	if (rv == 0)
		rv = command_encode(&cmd, &entry);
	if (rv == 0)
		rv = replication_submit(repl, &entry, &repl->own_replies, rewrap_stored, name);
	buf_free(&entry);
	if (rv != 0) {
		log_warn("tenant %s: the rewrapped key-encryption key could not be submitted (%s); "
			 "the next check tries again",
			 tenant, kmipd_strerror(rv));
		free(name);
	}
}

/* The providers and every tenant's KEK, on this loop. */
static int start_tenant_keys(struct replication *repl)
{
	struct tenant_keys_config tc = {
		.loop = &repl->loop,
		.keyring = repl->config.keyring,
		.keyprotect = repl->config.keyprotect,
		.hpcs = repl->config.hpcs,
		.check_interval_ms = repl->config.check_interval_ms,
		.rewrapped = on_rewrapped,
		.arg = repl,
	};
	int rv = mailbox_init(&repl->own_replies, &repl->loop, on_own_reply, repl);

	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft loop: cannot set up its loop");
		return KMIPD_EIO;
	}
	rv = tenant_keys_new(&tc, &repl->tenant_keys, repl->errmsg, sizeof(repl->errmsg));
	if (rv != 0)
		return rv;
	rv = load_tenants(repl);
	if (rv != 0)
		snprintf(repl->errmsg, sizeof(repl->errmsg),
			 "reading tenants from the key store: %s", kmipd_strerror(rv));
	return rv;
}

static void *loop_main(void *arg)
{
	struct replication *repl = arg;
	uv_timer_t wait_leader;
	int rv;

	pthread_setname_np(pthread_self(), "kmipd-raft");
	rv = mailbox_init(&repl->inbox, &repl->loop, on_proposal, repl);
	if (rv == 0)
		rv = mailbox_init(&repl->control, &repl->loop, on_admin_task, repl);
	if (rv == 0)
		rv = uv_async_init(&repl->loop, &repl->stop, on_stop);
	if (rv == 0) {
		repl->snapshot_done.data = repl;
		rv = uv_async_init(&repl->loop, &repl->snapshot_done, snapshot_copied);
	}
	if (rv == 0)
		rv = uv_check_init(&repl->loop, &repl->commit_check);
	if (rv == 0) {
		repl->commit_check.data = repl;
		rv = uv_check_start(&repl->commit_check, on_check);
	}
	if (rv == 0)
		rv = uv_timer_init(&repl->loop, &repl->tick);
	if (rv == 0)
		rv = uv_idle_init(&repl->loop, &repl->batch_idle);
	if (rv == 0)
		rv = uv_timer_init(&repl->loop, &repl->batch_hold);
	if (rv == 0)
		rv = uv_timer_init(&repl->loop, &repl->commit_due);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft loop: %s", uv_strerror(rv));
		signal_started(repl, KMIPD_EIO);
		return NULL;
	}
	repl->stop.data = repl;
	repl->tick.data = repl;
	repl->batch_idle.data = repl;
	repl->batch_hold.data = repl;
	repl->commit_due.data = repl;
	rv = start_tenant_keys(repl);
	if (rv == 0)
		rv = loop_start(repl);
	if (rv == 0 && repl->config.peer_server_tls != NULL)
		rv = peer_listen(repl, repl->errmsg, sizeof(repl->errmsg));
	if (rv != 0) {
		signal_started(repl, rv);
		tenant_keys_close(repl->tenant_keys);
		repl->tenant_keys = NULL;
		uv_walk(&repl->loop, close_handle, NULL);
		uv_run(&repl->loop, UV_RUN_DEFAULT);
		return NULL;
	}
	uv_timer_start(&repl->tick, on_tick, TICK_MS, TICK_MS);
	uv_timer_init(&repl->loop, &wait_leader);
	wait_leader.data = repl;
	uv_timer_start(&wait_leader, on_wait_leader, 0, 10);
	uv_run(&repl->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* libraft reports a peer port in use as a bare I/O error once it starts; find out first,
 * so the operator reads which address collides. */
static int check_address(const char *address, char *errmsg, size_t errlen)
{
	struct sockaddr_in addr;
	char host[64];
	const char *colon = strrchr(address, ':');
	int fd, one = 1, rv = 0;

	if (colon == NULL || (size_t)(colon - address) >= sizeof(host)) {
		snprintf(errmsg, errlen, "Raft address '%s' is not HOST:PORT", address);
		return KMIPD_EINVAL;
	}
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		return 0; /* not an IPv4 literal: let libraft resolve and report it */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		rv = -errno;
		snprintf(errmsg, errlen,
			 "Raft peer address %s: %s (another kmipd? set raft.address)", address,
			 strerror(errno));
	}
	close(fd);
	return rv;
}

int replication_start(struct replication **out, const struct replication_config *config,
		      char *errmsg, size_t errlen)
{
	struct replication *repl = calloc(1, sizeof(*repl));
	int rv;

	if (repl == NULL)
		return KMIPD_ENOMEM;
	rv = check_address(config->address, errmsg, errlen);
	if (rv != 0) {
		free(repl);
		return rv;
	}
	repl->config = *config;
	repl->cluster_id = config->cluster_id != NULL ? config->cluster_id : "kmipd";
	repl->peer_refusals.interval_ms = 60000;
	if (repl->config.election_timeout_ms == 0)
		repl->config.election_timeout_ms = 1000;
	if (repl->config.heartbeat_ms == 0)
		repl->config.heartbeat_ms = 25;
	if (repl->config.write_timeout_ms == 0)
		repl->config.write_timeout_ms = 5000;
	if (repl->config.snapshot_threshold == 0)
		repl->config.snapshot_threshold = 128;
	if (repl->config.snapshot_trailing == 0)
		repl->config.snapshot_trailing = 8192;
	repl->dir = strdup(config->dir);
	repl->address = strdup(config->address);
	if (repl->dir == NULL || repl->address == NULL) {
		rv = KMIPD_ENOMEM;
		goto err;
	}
	if (mkdir(repl->dir, 0700) != 0 && errno != EEXIST) {
		snprintf(errmsg, errlen, "creating the Raft directory %s: %s", repl->dir,
			 strerror(errno));
		rv = -errno;
		goto err;
	}
	arena_init(&repl->arena, 16384, 0);
	pthread_mutex_init(&repl->lock, NULL);
	pthread_cond_init(&repl->cond, NULL);
	pthread_mutex_init(&repl->status_lock, NULL);
	snprintf(repl->status.state, sizeof(repl->status.state), "unavailable");
	rv = uv_loop_init(&repl->loop);
	if (rv != 0) {
		snprintf(errmsg, errlen, "raft loop: %s", uv_strerror(rv));
		goto err;
	}
	rv = pthread_create(&repl->thread, NULL, loop_main, repl);
	if (rv != 0) {
		snprintf(errmsg, errlen, "starting the raft thread: %s", strerror(rv));
		uv_loop_close(&repl->loop);
		rv = -rv;
		goto err;
	}

	pthread_mutex_lock(&repl->lock);
	while (!repl->ready)
		pthread_cond_wait(&repl->cond, &repl->lock);
	pthread_mutex_unlock(&repl->lock);
	if (repl->start_rv != 0) {
		rv = repl->start_rv;
		snprintf(errmsg, errlen, "%s", repl->errmsg);
		pthread_join(repl->thread, NULL);
		stop_write_back(repl);
		uv_loop_close(&repl->loop);
		goto err;
	}
	*out = repl;
	return 0;
err:
	raft_configuration_close(&repl->founders);
	free(repl->dir);
	free(repl->address);
	free(repl);
	return rv;
}

void replication_stop(struct replication *repl)
{
	if (repl == NULL)
		return;
	uv_async_send(&repl->stop);
	pthread_join(repl->thread, NULL);
	stop_write_back(repl); /* already, unless Raft never started */
	uv_loop_close(&repl->loop);
	arena_free(&repl->arena);
	raft_configuration_close(&repl->founders);
	free(repl->probes);
	free(repl->dir);
	free(repl->address);
	free(repl);
}
