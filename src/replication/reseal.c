/* Re-sealing after a KEK rotation, on the leader's raft loop: objects still sealed under a
 * tenant's retiring KEK are opened with it and sealed again under the current one, a few
 * at a time (COMMAND_RESEAL), until a whole pass finds none; then the retiring KEK is
 * retired (COMMAND_KEK_RETIRE). Every step is a compare-and-set applied through Raft, so
 * a client changing an object meanwhile, a Create sealed under the old KEK that was
 * ordered late, or a new leader taking over half-way loses nothing: the pass starts over
 * until the retire is accepted. Requests are served throughout: material is opened with
 * the version its blob names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "kmipd/crypto.h"
#include "kmipd/error.h"

#define RESEAL_PER_TICK	  256  /* objects re-sealed per raft tick (50 ms) */
#define RESEAL_SCAN_MAX	  4096 /* objects looked at per tick */
#define RESEAL_IDLE_TICKS 20   /* ticks between looks for a tenant that needs it */

struct scan {
	struct replication *repl;
	struct reseal *rs;
	struct crypto_key *old, *cur;
	unsigned looked, queued;
	bool more; /* stopped before the end */
	int rv;
};

static void reseal_done(void *arg, const struct command_result *result)
{
	struct replication *repl = arg;
	struct reseal *rs = &repl->reseal;

	rs->outstanding--;
	rs->resealed += result->status == 0;
	if (result->status != 0 && result->status != KMIPD_ESTATE &&
	    result->status != KMIPD_ENOT_FOUND) {
		log_warn("tenant %s: re-sealing an object failed (%s); the pass starts again",
			 rs->tenant, result->message);
		rs->failed = true;
	}
}

static void retire_done(void *arg, const struct command_result *result)
{
	struct replication *repl = arg;
	struct reseal *rs = &repl->reseal;

	rs->outstanding--;
	if (result->status == 0) {
		log_info("tenant %s: every object is sealed under key-encryption key version %u "
			 "(%llu re-sealed by this node); version %u is retired",
			 rs->tenant, rs->to, (unsigned long long)rs->resealed, rs->from);
		rs->active = false;
		return;
	}
	/* A Create sealed under the old KEK was ordered after the pass looked, or the
	 * leader changed: look again. */
	log_info("tenant %s: retiring key-encryption key version %u: %s; re-sealing again",
		 rs->tenant, rs->from, result->message);
	memset(rs->after, 0, sizeof(rs->after));
	rs->queued_in_pass = 0;
}

static int submit(struct replication *repl, struct command *cmd, replication_complete_fn done)
{
	struct buf entry = BUF_INIT;
	int rv = crypto_request_id(cmd->request_id);

	cmd->time = (int64_t)time(NULL);
	if (rv == 0)
		rv = command_encode(cmd, &entry);
	if (rv == 0)
		rv = replication_submit(repl, &entry, &repl->own_replies, done, repl);
	buf_free(&entry);
	if (rv == 0)
		repl->reseal.outstanding++;
	return rv;
}

/* Re-seals one object sealed under the retiring KEK. */
static int reseal_one(struct scan *s, const struct object *obj)
{
	uint8_t aad[160];
	size_t aad_len, len;
	uint32_t version;
	struct buf sealed = BUF_INIT;
	struct command cmd;
	uint8_t *plain;
	int rv;

	if (crypto_sealed_info(obj->sealed, obj->sealed_len, &version, &len) != 0 || len == 0)
		return KMIPD_ECORRUPT;
	plain = malloc(len);
	if (plain == NULL)
		return KMIPD_ENOMEM;
	aad_len = crypto_object_aad(aad, sizeof(aad), obj->tenant, obj->uid, obj->object_type);
	rv = crypto_open(s->old, aad, aad_len, obj->sealed, obj->sealed_len, plain);
	if (rv == 0)
		rv = crypto_seal_kek(s->cur, s->rs->to, aad, aad_len, plain, len, &sealed);
	OPENSSL_cleanse(plain, len);
	free(plain);
	if (rv == 0) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.type = COMMAND_RESEAL;
		snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", obj->tenant);
		snprintf(cmd.uid, sizeof(cmd.uid), "%s", obj->uid);
		cmd.kek_version = s->rs->from;
		cmd.sealed = sealed.data;
		cmd.sealed_len = sealed.len;
		rv = submit(s->repl, &cmd, reseal_done);
	}
	buf_free(&sealed);
	return rv;
}

static int visit(const struct object *obj, void *arg)
{
	struct scan *s = arg;
	uint32_t version;
	size_t len;

	if (s->looked++ >= RESEAL_SCAN_MAX || s->queued >= RESEAL_PER_TICK) {
		s->more = true;
		return 1;
	}
	snprintf(s->rs->after, sizeof(s->rs->after), "%s", obj->uid);
	if (obj->sealed_len == 0 ||
	    crypto_sealed_info(obj->sealed, obj->sealed_len, &version, &len) != 0 ||
	    version != s->rs->from)
		return 0;
	s->rv = reseal_one(s, obj);
	if (s->rv != 0) {
		log_warn("tenant %s: object %s could not be re-sealed (%s); the pass starts again",
			 obj->tenant, obj->uid, kmipd_strerror(s->rv));
		return 1;
	}
	s->queued++;
	s->rs->queued_in_pass++;
	return 0;
}

static int find_retiring(const struct store_tenant *t, void *arg)
{
	struct reseal *rs = arg;

	if (t->deleted != 0 || t->retiring_version == 0)
		return 0;
	snprintf(rs->tenant, sizeof(rs->tenant), "%s", t->name);
	rs->from = t->retiring_version;
	rs->to = t->kek_version;
	return 1;
}

/* Looks for a tenant with a retiring KEK: 1 when one was found (@rs set up for it). */
static int start(struct replication *repl, struct store_txn *txn)
{
	struct reseal *rs = &repl->reseal;
	int found = store_tenant_foreach(txn, &repl->arena, find_retiring, rs);

	arena_reset(&repl->arena);
	if (found != 1)
		return 0;
	rs->active = true;
	rs->failed = false;
	rs->resealed = 0;
	rs->queued_in_pass = 0;
	memset(rs->after, 0, sizeof(rs->after));
	log_info("tenant %s: re-sealing its objects from key-encryption key version %u to %u",
		 rs->tenant, rs->from, rs->to);
	return 1;
}

void reseal_tick(struct replication *repl)
{
	struct reseal *rs = &repl->reseal;
	struct scan s = {repl, rs, NULL, NULL, 0, 0, false, 0};
	struct store_txn *txn;
	struct store_tenant t;
	struct arena objects;
	int rv;

	if (repl->stopping || raft_state(&repl->raft) != RAFT_LEADER) {
		rs->active = false; /* the next leader takes it up */
		return;
	}
	if (rs->outstanding > 0)
		return;
	if (!rs->active && ++rs->idle_ticks < RESEAL_IDLE_TICKS)
		return;
	rs->idle_ticks = 0;
	if (store_txn_begin(repl->config.store, false, &txn) != 0)
		return;
	if (!rs->active && !start(repl, txn))
		goto out;
	/* The tenant may have been deleted, or its rotation finished under another leader. */
	if (store_tenant_get(txn, rs->tenant, &repl->arena, &t) != 0 || t.deleted != 0 ||
	    t.retiring_version != rs->from || t.kek_version != rs->to) {
		arena_reset(&repl->arena);
		rs->active = false;
		goto out;
	}
	arena_reset(&repl->arena);
	s.old = crypto_key_new();
	s.cur = crypto_key_new();
	if (s.old == NULL || s.cur == NULL ||
	    keyring_get(repl->config.keyring, rs->tenant, rs->from, s.old, NULL) != 0 ||
	    keyring_get(repl->config.keyring, rs->tenant, rs->to, s.cur, NULL) != 0)
		goto out; /* not unwrapped here yet: the next tick tries again */
	arena_init(&objects, 16384, 0);
	rv = store_object_foreach(txn, rs->tenant, rs->after[0] != '\0' ? rs->after : NULL,
				  &objects, true, visit, &s);
	arena_free(&objects);
	if (rv < 0 || s.rv != 0 || rs->failed) {
		memset(rs->after, 0, sizeof(rs->after));
		rs->queued_in_pass = 0;
		rs->failed = false;
	} else if (!s.more) {
		/* The end of the tenant's objects: a pass that queued nothing retires the old
		 * KEK; one that did looks again once its changes are applied. */
		if (rs->queued_in_pass == 0) {
			struct command cmd;

			memset(&cmd, 0, sizeof(cmd));
			cmd.type = COMMAND_KEK_RETIRE;
			snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", rs->tenant);
			cmd.kek_version = rs->from;
			if (submit(repl, &cmd, retire_done) != 0)
				log_warn("tenant %s: retiring key-encryption key version %u could "
					 "not be submitted; trying again",
					 rs->tenant, rs->from);
		}
		memset(rs->after, 0, sizeof(rs->after));
		rs->queued_in_pass = 0;
	}
out:
	crypto_key_free(s.old);
	crypto_key_free(s.cur);
	store_txn_abort(txn);
}
