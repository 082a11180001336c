/* The raft loop thread: libraft on its own libuv loop, the state machine that applies
 * committed entries to LMDB, and the hand-off of proposals from workers and of results
 * back to them. See replication.h. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "kmipd/command.h"
#include "kmipd/error.h"
#include "kmipd/log.h"
#include "kmipd/replication.h"

/* One write on its way through Raft. It lives from replication_propose() until the worker
 * that made it has delivered its result. */
struct proposal {
	struct mailbox_item item; /* first: posted both ways */
	struct raft_apply req;
	struct raft_buffer buf;
	struct replication *repl;
	struct mailbox *reply;
	/* Who hears the result: a KMIP batch item (ctx, done) or any other caller
	 * (complete, arg). */
	struct kmip_op_ctx *ctx;
	service_done_fn done;
	replication_complete_fn complete;
	void *arg;
	struct command_result result;
	bool applied;		      /* the state machine has filled in result */
	struct proposal *prev, *next; /* in repl->inflight, ascending Raft index */
};

struct replication {
	struct replication_config config;
	char *dir;
	char *address;
	pthread_t thread;
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raft raft;
	struct mailbox inbox;
	uv_async_t stop;
	struct arena arena; /* per applied entry */
	uv_check_t commit_check;
	struct store_txn *txn;	     /* open while entries of this loop turn are applied */
	raft_index txn_last;	     /* last index applied into txn */
	raft_index committed;	     /* last index committed to LMDB */
	struct proposal *ready_head; /* applied, answered once committed */
	struct proposal *ready_tail;

	/* Proposals appended but not yet answered, oldest first. */
	struct proposal *inflight_head, *inflight_tail;

	/* Start-up hand-shake with replication_start(). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;
	int start_rv;
	char errmsg[256];
};

static void inflight_push(struct replication *repl, struct proposal *p)
{
	p->next = NULL;
	p->prev = repl->inflight_tail;
	if (repl->inflight_tail != NULL)
		repl->inflight_tail->next = p;
	else
		repl->inflight_head = p;
	repl->inflight_tail = p;
}

static void inflight_remove(struct replication *repl, struct proposal *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		repl->inflight_head = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	else
		repl->inflight_tail = p->prev;
	p->prev = p->next = NULL;
}

static struct proposal *inflight_find(struct replication *repl, raft_index index)
{
	for (struct proposal *p = repl->inflight_head; p != NULL; p = p->next)
		if (p->req.index == index)
			return p;
	return NULL;
}

/* Sends @p back to its worker with its result. */
static void answer(struct proposal *p)
{
	if (mailbox_post(p->reply, &p->item) != 0) {
		/* The worker is gone (shutdown): nobody waits for this answer. */
		free(p);
	}
}

static void fail(struct proposal *p, int status, const char *message)
{
	p->result.status = status;
	snprintf(p->result.message, sizeof(p->result.message), "%s", message);
	answer(p);
}

static void store_failed(raft_index index, int rv)
{
	log_fatal("raft: applying entry %llu to the key store failed: %s; stopping so that this "
		  "replica cannot diverge (the entry is replayed at restart)",
		  (unsigned long long)index, kmipd_strerror(rv));
	abort();
}

/* The write transaction the state machine applies into. Entries applied in one turn of the
 * loop share it, and it is committed once at the end of the turn (commit_applied): one
 * LMDB sync per batch instead of one per entry. */
static struct store_txn *apply_txn(struct replication *repl, raft_index index)
{
	int rv;

	if (repl->txn == NULL) {
		rv = store_txn_begin(repl->config.store, true, &repl->txn);
		if (rv != 0)
			store_failed(index, rv);
	}
	return repl->txn;
}

/* The state machine. Runs for every committed command entry, in log order, on this
 * thread. Application refusals are results; only a failing store stops the node, because
 * a replica that skipped an entry would silently diverge from the others. */
static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct replication *repl = fsm->data;
	raft_index index = raft_last_applied(&repl->raft) + 1;
	struct proposal *p = inflight_find(repl, index);
	struct command_result local, *out = p != NULL ? &p->result : &local;
	struct store_txn *txn = apply_txn(repl, index);
	struct command cmd;
	int rv;

	memset(out, 0, sizeof(*out));
	arena_reset(&repl->arena);
	rv = command_decode(buf->base, buf->len, &repl->arena, &cmd);
	if (rv != 0) {
		/* Every replica refuses the same bytes the same way; record the index. */
		log_error("raft: entry %llu is not a command this version understands (%s); "
			  "skipping it",
			  (unsigned long long)index, kmipd_strerror(rv));
		out->status = KMIPD_EMALFORMED;
		snprintf(out->message, sizeof(out->message),
			 "the replicated change could not be decoded");
		rv = store_set_applied_index(txn, index);
	} else {
		rv = command_apply(txn, &cmd, index, &repl->arena, out);
	}
	if (rv != 0)
		store_failed(index, rv);
	repl->txn_last = index;

	if (out->status == 0 && cmd.type == COMMAND_TENANT_CREATE) {
		const struct store_tenant *t = &cmd.tenant_record;
		int krv = keyring_load(repl->config.keyring, t->name, t->wrapped_kek,
				       t->wrapped_kek_len);

		if (krv != 0)
			log_error("tenant %s: its key-encryption key cannot be unwrapped with "
				  "this node's root key (%s); its requests will fail",
				  t->name, kmipd_strerror(krv));
	}
	arena_reset(&repl->arena);
	if (p != NULL)
		p->applied = true;
	*result = p;
	return 0;
}

/* Answers the proposals whose entries are committed to LMDB: a client told "done" can
 * read what it wrote on any thread of this node. */
static void answer_committed(struct replication *repl)
{
	while (repl->ready_head != NULL && repl->ready_head->req.index <= repl->committed) {
		struct proposal *p = repl->ready_head;

		repl->ready_head = p->next;
		if (repl->ready_head == NULL)
			repl->ready_tail = NULL;
		p->next = NULL;
		answer(p);
	}
}

/* End of a loop turn: commit what the state machine applied, then answer. */
static void commit_applied(struct replication *repl)
{
	int rv;

	if (repl->txn != NULL) {
		rv = store_txn_commit(repl->txn);
		repl->txn = NULL;
		if (rv != 0)
			store_failed(repl->txn_last, rv);
		repl->committed = repl->txn_last;
	}
	answer_committed(repl);
}

static void on_check(uv_check_t *check)
{
	commit_applied(check->data);
}

/* Snapshots arrive with replication across nodes; until then the log is not compacted
 * (the threshold is set out of reach in loop_start). */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	(void)fsm;
	(void)bufs;
	(void)n_bufs;
	return RAFT_NOTFOUND;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	(void)fsm;
	(void)buf;
	return RAFT_NOTFOUND;
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;

	struct replication *repl = p->repl;

	(void)result;
	inflight_remove(repl, p);
	if (status == 0 && p->applied) {
		if (req->index <= repl->committed) {
			answer(p);
			return;
		}
		/* Applied but not yet committed to LMDB: answered by commit_applied(). Entries
		 * are applied in index order, so the list stays sorted. */
		p->next = NULL;
		if (repl->ready_tail != NULL)
			repl->ready_tail->next = p;
		else
			repl->ready_head = p;
		repl->ready_tail = p;
		return;
	}
	switch (status) {
	case RAFT_LEADERSHIPLOST:
		fail(p, KMIPD_EAGAIN,
		     "this node lost leadership before the change was confirmed; it may or "
		     "may not have been applied");
		break;
	case RAFT_NOSPACE:
		fail(p, KMIPD_ENO_SPACE, "the Raft log's disk is full");
		break;
	case RAFT_CANCELED:
	case RAFT_SHUTDOWN:
		fail(p, KMIPD_ECANCELED, "the node is shutting down");
		break;
	default:
		fail(p, KMIPD_EIO, raft_strerror(status));
		break;
	}
}

/* A proposal from a worker: append it, or answer at once why not. */
static void on_proposal(struct mailbox *inbox, struct mailbox_item *item)
{
	struct replication *repl = inbox->data;
	struct proposal *p = (struct proposal *)item;
	int rv;

	p->req.data = p;
	rv = raft_apply(&repl->raft, &p->req, &p->buf, 1, on_applied);
	if (rv != 0) {
		raft_free(p->buf.base);
		p->buf.base = NULL;
		fail(p, rv == RAFT_NOTLEADER ? KMIPD_ENO_QUORUM : KMIPD_EIO,
		     rv == RAFT_NOTLEADER ? "this node is not the cluster leader"
					  : raft_strerror(rv));
		return;
	}
	/* raft owns the buffer now. */
	inflight_push(repl, p);
}

static struct proposal *proposal_new(struct replication *repl, const struct buf *entry,
				     struct mailbox *reply)
{
	struct proposal *p;

	if (entry->len == 0 || entry->len % 8 != 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->buf.base = raft_malloc(entry->len);
	if (p->buf.base == NULL) {
		free(p);
		return NULL;
	}
	memcpy(p->buf.base, entry->data, entry->len);
	p->buf.len = entry->len;
	p->repl = repl;
	p->reply = reply;
	return p;
}

static int post(struct replication *repl, struct proposal *p)
{
	if (mailbox_post(&repl->inbox, &p->item) != 0) {
		raft_free(p->buf.base);
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
	p->ctx = ctx;
	p->done = done;
	return post(repl, p);
}

int replication_submit(struct replication *repl, const struct buf *entry, struct mailbox *reply,
		       replication_complete_fn complete, void *arg)
{
	struct proposal *p = proposal_new(repl, entry, reply);

	if (p == NULL)
		return KMIPD_ENOMEM;
	p->complete = complete;
	p->arg = arg;
	return post(repl, p);
}

void replication_deliver(struct mailbox_item *item)
{
	struct proposal *p = (struct proposal *)item;

	if (p->complete != NULL)
		p->complete(p->arg, &p->result);
	else
		service_complete(p->ctx, p->done, &p->result);
	free(p);
}

static int load_tenant(const struct store_tenant *t, void *arg)
{
	struct replication *repl = arg;
	int rv = keyring_load(repl->config.keyring, t->name, t->wrapped_kek, t->wrapped_kek_len);

	if (rv != 0)
		log_error("tenant %s: its key-encryption key cannot be unwrapped with this "
			  "node's root key (%s); its requests will fail",
			  t->name, kmipd_strerror(rv));
	return 0;
}

/* Unwraps the KEK of every tenant the store already has. */
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
	raft_uv_tcp_close(&repl->transport);
}

static void close_handle(uv_handle_t *handle, void *arg)
{
	(void)arg;
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

static void on_stop(uv_async_t *async)
{
	struct replication *repl = async->data;

	mailbox_close(&repl->inbox, NULL);
	uv_close((uv_handle_t *)&repl->stop, NULL);
	raft_close(&repl->raft, on_raft_closed);
	/* Closing fails the proposals still in flight; commit what was applied and answer. */
	commit_applied(repl);
	uv_close((uv_handle_t *)&repl->commit_check, NULL);
}

static int loop_start(struct replication *repl)
{
	struct raft_configuration conf;
	unsigned election =
		repl->config.election_timeout_ms ? repl->config.election_timeout_ms : 1000;
	unsigned heartbeat = repl->config.heartbeat_ms ? repl->config.heartbeat_ms : 100;
	int rv;

	repl->transport.version = 1;
	rv = raft_uv_tcp_init(&repl->transport, &repl->loop);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft transport: %s",
			 raft_strerror(rv));
		return KMIPD_EIO;
	}
	rv = raft_uv_init(&repl->io, &repl->loop, repl->dir, &repl->transport);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft log in %s: %s", repl->dir,
			 repl->io.errmsg);
		return KMIPD_EIO;
	}
	repl->fsm.version = 1;
	repl->fsm.data = repl;
	repl->fsm.apply = fsm_apply;
	repl->fsm.snapshot = fsm_snapshot;
	repl->fsm.restore = fsm_restore;
	rv = raft_init(&repl->raft, &repl->io, &repl->fsm, repl->config.id, repl->address);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft: %s", raft_errmsg(&repl->raft));
		return KMIPD_EIO;
	}
	repl->raft.data = repl;

	raft_configuration_init(&conf);
	rv = raft_configuration_add(&conf, repl->config.id, repl->address, RAFT_VOTER);
	if (rv == 0) {
		rv = raft_bootstrap(&repl->raft, &conf);
		if (rv == RAFT_CANTBOOTSTRAP)
			rv = 0; /* this node has state already */
	}
	raft_configuration_close(&conf);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft bootstrap: %s",
			 raft_strerror(rv));
		return KMIPD_EIO;
	}

	raft_set_election_timeout(&repl->raft, election);
	raft_set_heartbeat_timeout(&repl->raft, heartbeat);
	raft_set_pre_vote(&repl->raft, true);
	raft_set_snapshot_threshold(&repl->raft, UINT_MAX / 2);
	raft_set_snapshot_trailing(&repl->raft, UINT_MAX / 2);

	rv = raft_start(&repl->raft);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg),
			 "starting Raft (log in %s, peer "
			 "address %s): %s%s%s",
			 repl->dir, repl->address, raft_strerror(rv),
			 raft_errmsg(&repl->raft)[0] ? ": " : "", raft_errmsg(&repl->raft));
		return KMIPD_EIO;
	}
	return 0;
}

/* Waits (on the loop) until this node leads, so that a single node accepts writes as soon
 * as replication_start() returns. */
static void on_wait_leader(uv_timer_t *timer)
{
	struct replication *repl = timer->data;

	if (raft_state(&repl->raft) == RAFT_LEADER) {
		uv_timer_stop(timer);
		uv_close((uv_handle_t *)timer, NULL);
		signal_started(repl, 0);
	}
}

static void *loop_main(void *arg)
{
	struct replication *repl = arg;
	uv_timer_t wait_leader;
	int rv;

	rv = mailbox_init(&repl->inbox, &repl->loop, on_proposal, repl);
	if (rv == 0)
		rv = uv_async_init(&repl->loop, &repl->stop, on_stop);
	if (rv == 0)
		rv = uv_check_init(&repl->loop, &repl->commit_check);
	if (rv == 0) {
		repl->commit_check.data = repl;
		rv = uv_check_start(&repl->commit_check, on_check);
	}
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg), "raft loop: %s", uv_strerror(rv));
		signal_started(repl, KMIPD_EIO);
		return NULL;
	}
	repl->stop.data = repl;
	rv = loop_start(repl);
	if (rv != 0) {
		signal_started(repl, rv);
		uv_walk(&repl->loop, close_handle, NULL);
		uv_run(&repl->loop, UV_RUN_DEFAULT);
		return NULL;
	}
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
	rv = load_tenants(repl);
	if (rv != 0) {
		snprintf(errmsg, errlen, "reading tenants from the key store: %s",
			 kmipd_strerror(rv));
		goto err;
	}
	arena_init(&repl->arena, 16384, 0);
	pthread_mutex_init(&repl->lock, NULL);
	pthread_cond_init(&repl->cond, NULL);
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
		uv_loop_close(&repl->loop);
		goto err;
	}
	*out = repl;
	return 0;
err:
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
	uv_loop_close(&repl->loop);
	arena_free(&repl->arena);
	free(repl->dir);
	free(repl->address);
	free(repl);
}
