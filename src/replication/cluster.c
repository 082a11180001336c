/* Membership: how a node becomes part of a cluster, and how the leader changes who is in
 * it.
 *
 * Forming. A node that has never had a Raft log (a new node, or one whose data directory
 * was lost) does not assume it is founding the cluster: it asks the other members of
 * cluster.members for their status first.
 *   - If one of them has been through an election (term >= 2), a cluster exists: this
 *     node starts with no configuration and asks the leader to JOIN it. The leader
 *     removes the node first if the configuration still lists it (its log is gone, and the
 *     leader's record of what it had acknowledged is no longer true), adds it as a
 *     non-voter, and promotes it once it has caught up. It votes only after that.
 *   - If a majority of the members (this node included) answer and none has, the cluster
 *     is being founded: every founder bootstraps the same configuration.
 *   - Otherwise it waits and asks again.
 *
 * Changing. ADD, REMOVE and JOIN requests (from kmipctl or a joining node) are carried out
 * by the leader, one at a time, through libraft's configuration changes.
 *
 * Witness. A witness votes and keeps the state but serves no KMIP; when it is elected it
 * hands leadership to another voter. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "kmipd/error.h"
#include "kmipd/log.h"

#define PROBE_EVERY_MS	  500
#define PROBE_FRESH_MS	  3000	 /* an answer older than this does not count */
#define JOIN_EVERY_MS	  1000	 /* a joining node asks again this often */
#define WAIT_LOG_MS	  5000	 /* how often "waiting for ..." is logged */
#define CHANGE_LIMIT_MS	  120000 /* a membership change not done by then is given up on */
#define CATCH_UP_ROUND_MS 60000	 /* a promotee's catch-up round may take this long */

struct change {
	struct replication *repl;
	struct raft_change req;
	struct raft_transfer transfer; /* removing the leader: hand leadership over first */
	uint8_t type;		       /* PEER_ADD, PEER_REMOVE, PEER_JOIN or PEER_TRANSFER */
	int step;		       /* 0: remove a stale entry, 1: add, 2: promote */
	raft_id id;
	char address[PEER_ADDRESS_MAX + 1];
	struct peer *origin;	 /* who hears the outcome; NULL once it has gone */
	struct admin_task *task; /* or this node's admin API */
	uint64_t deadline_ms;
	bool abandoned; /* libraft still holds req: free when its callback comes */
};

/* True if @dir holds no Raft metadata: this node has never been part of a cluster, or
 * its data directory is new. */
static bool raft_dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (d == NULL)
		return true;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "metadata", 8) == 0)
			empty = false;
	closedir(d);
	return empty;
}

static const struct raft_server *find_server(struct replication *repl, raft_id id)
{
	const struct raft_configuration *conf = &repl->raft.configuration;

	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id)
			return &conf->servers[i];
	return NULL;
}

static const char *role_name(int role)
{
	switch (role) {
	case RAFT_VOTER:
		return "voter";
	case RAFT_STANDBY:
		return "standby";
	default:
		return "spare";
	}
}

static unsigned own_level(const struct replication *repl)
{
	unsigned level = repl->config.format_level;

	return level >= 2 && level <= COMMAND_LEVEL ? level : COMMAND_LEVEL;
}

static struct member_level *level_of(struct replication *repl, raft_id id)
{
	for (unsigned i = 0; i < repl->n_levels; i++)
		if (repl->levels[i].id == id)
			return &repl->levels[i];
	return NULL;
}

unsigned cluster_format_level(struct replication *repl, uint64_t *held_by)
{
	const struct raft_configuration *conf = &repl->raft.configuration;
	unsigned level = own_level(repl);

	*held_by = 0;
	for (unsigned i = 0; i < conf->n; i++) {
		const struct member_level *known = level_of(repl, conf->servers[i].id);
		unsigned l = known != NULL ? known->level : 2;

		if (conf->servers[i].id == repl->config.id)
			continue;
		if (l < level) {
			level = l;
			*held_by = conf->servers[i].id;
		}
	}
	return level;
}

/* A member's status answer: the level it says it is at (none said: 2, an older kmipd). */
static void on_level(struct replication *repl, void *arg, int status, uint8_t type,
		     const uint8_t *body, size_t len)
{
	raft_id id = (raft_id)(uintptr_t)arg;
	struct member_level *known;
	json_t *answer, *level;

	if (status != 0 || type != PEER_STATUS)
		return; /* not heard: what was known stays */
	answer = json_loadb((const char *)body, len, 0, NULL);
	level = json_object_get(answer, "format_level");
	known = level_of(repl, id);
	if (known == NULL && repl->n_levels < sizeof(repl->levels) / sizeof(repl->levels[0])) {
		known = &repl->levels[repl->n_levels++];
		known->id = id;
	}
	if (known != NULL)
		known->level = json_is_integer(level) ? (unsigned)json_integer_value(level) : 2;
	json_decref(answer);
}

/* Asks every other member its level: every second until each has answered, then every
 * five. */
static void ask_levels(struct replication *repl, uint64_t now)
{
	const struct raft_configuration *conf = &repl->raft.configuration;
	bool all_known = true;

	if (now < repl->levels_next_ms)
		return;
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];

		if (s->id == repl->config.id)
			continue;
		all_known &= level_of(repl, s->id) != NULL;
		peer_request(repl, s->id, s->address, PEER_STATUS_REQ, NULL, 0, 2000, on_level,
			     (void *)(uintptr_t)s->id);
	}
	repl->levels_next_ms = now + (all_known ? 5000 : 1000);
}

int cluster_status(struct replication *repl, struct buf *out)
{
	const struct raft_configuration *conf = &repl->raft.configuration;
	json_t *members = json_array(), *status;
	const char *state, *leader_address;
	raft_id leader_id;
	char *text;
	int rv = 0;

	raft_leader(&repl->raft, &leader_id, &leader_address);
	if (repl->phase == PHASE_FORMING)
		state = "forming";
	else if (repl->phase == PHASE_JOINING)
		state = "joining";
	else
		state = raft_state_name(raft_state(&repl->raft));
	for (unsigned i = 0; members != NULL && i < conf->n; i++)
		json_array_append_new(members, json_pack("{s:I,s:s,s:s}", "id",
							 (json_int_t)conf->servers[i].id, "address",
							 conf->servers[i].address, "role",
							 role_name(conf->servers[i].role)));
	status = json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:o*}", "id",
			   (json_int_t)repl->config.id, "address", repl->address, "cluster_id",
			   repl->cluster_id, "role", repl->config.witness ? "witness" : "voter",
			   "state", state, "term", (json_int_t)repl->raft.current_term, "leader_id",
			   (json_int_t)leader_id, "leader_address",
			   leader_address != NULL ? leader_address : "", "commit_index",
			   (json_int_t)repl->raft.commit_index, "applied_index",
			   (json_int_t)repl->committed, "last_index",
			   (json_int_t)raft_last_index(&repl->raft), "format_level",
			   (json_int_t)own_level(repl), "members", members);
	text = status != NULL ? json_dumps(status, JSON_COMPACT) : NULL;
	if (text == NULL || buf_append(out, text, strlen(text)) != 0)
		rv = KMIPD_ENOMEM;
	free(text);
	json_decref(status);
	return rv;
}

/* Answers an ADD, REMOVE, JOIN or TRANSFER: @ok, a sentence, and who leads (so a tool
 * can go there), to @peer or @task (either may be NULL). */
static void admin_answer(struct peer *peer, struct admin_task *task, struct replication *repl,
			 bool ok, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void admin_answer(struct peer *peer, struct admin_task *task, struct replication *repl,
			 bool ok, const char *fmt, ...)
{
	char message[256];
	const char *leader_address;
	raft_id leader_id;
	json_t *answer;
	char *text;
	va_list ap;

	if (peer == NULL && task == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	raft_leader(&repl->raft, &leader_id, &leader_address);
	answer = json_pack("{s:b,s:s,s:I,s:s}", "ok", ok, "message", message, "leader_id",
			   (json_int_t)leader_id, "leader_address",
			   leader_address != NULL ? leader_address : "");
	text = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;
	if (text != NULL && peer != NULL)
		peer_send(peer, PEER_ADMIN, text, strlen(text));
	if (task != NULL)
		cluster_admin_finish(task, text);
	free(text);
	json_decref(answer);
}

static void change_done(struct change *c, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void change_done(struct change *c, bool ok, const char *fmt, ...)
{
	struct replication *repl = c->repl;
	char message[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (ok)
		log_info("cluster: %s", message);
	else
		log_warn("cluster: %s", message);
	admin_answer(c->origin, c->task, repl, ok, "%s", message);
	if (repl->change == c)
		repl->change = NULL;
	free(c);
}

static void change_step(struct change *c);

static void on_changed(struct raft_change *req, int status)
{
	struct change *c = req->data;

	if (c->abandoned) {
		free(c);
		return;
	}
	if (status != 0) {
		change_done(c, false, "changing the membership of node %llu failed: %s%s",
			    (unsigned long long)c->id, raft_strerror(status),
			    c->step == 2 ? " (it was added as a non-voter and is promoted when "
					   "it has caught up; ask again)"
					 : "");
		return;
	}
	c->step++;
	change_step(c);
}

/* Remove (if stale) → add → promote → done, each step once the previous one is
 * committed. */
static void change_step(struct change *c)
{
	struct replication *repl = c->repl;
	const struct raft_server *s = find_server(repl, c->id);
	int rv = 0;

	c->req.data = c;
	if (c->type == PEER_REMOVE) {
		if (c->step > 0) {
			change_done(c, true, "node %llu removed from the cluster",
				    (unsigned long long)c->id);
			return;
		}
		rv = raft_remove(&repl->raft, &c->req, c->id, on_changed);
	} else if (c->step == 0) {
		/* A joining node whose log is gone, still listed as a voter: the leader's
		 * record of what it acknowledged is stale, so start it over as a new member.
		 * A non-voter (an earlier join that did not finish) keeps its progress. */
		if (c->type == PEER_JOIN && s != NULL && s->role == RAFT_VOTER) {
			log_info("cluster: node %llu has an empty log; removing and adding it "
				 "again so that it catches up before it votes",
				 (unsigned long long)c->id);
			rv = raft_remove(&repl->raft, &c->req, c->id, on_changed);
		} else {
			c->step = 1;
			change_step(c);
			return;
		}
	} else if (c->step == 1) {
		if (s != NULL) {
			c->step = 2;
			change_step(c);
			return;
		}
		rv = raft_add(&repl->raft, &c->req, c->id, c->address, on_changed);
	} else {
		if (s != NULL && s->role == RAFT_VOTER) {
			change_done(c, true, "node %llu at %s is a voting member",
				    (unsigned long long)c->id, s->address);
			return;
		}
		rv = raft_assign(&repl->raft, &c->req, c->id, RAFT_VOTER, on_changed);
	}
	if (rv != 0)
		change_done(c, false, "changing the membership of node %llu failed: %s",
			    (unsigned long long)c->id, raft_strerror(rv));
}

/* Leadership was to move: to remove the leader (PEER_REMOVE of this node: the next leader
 * removes it), or because an administrator asked (PEER_TRANSFER). */
static void on_handed_over(struct raft_transfer *req)
{
	struct change *c = req->data;
	raft_id self = c->repl->config.id, leader;
	const char *address;

	if (c->abandoned) {
		free(c);
		return;
	}
	raft_leader(&c->repl->raft, &leader, &address);
	if (leader == 0 || leader == self ||
	    (c->type == PEER_TRANSFER && c->id != 0 && leader != c->id))
		change_done(c, false,
			    "node %llu could not hand leadership over (the other voters may be "
			    "behind or unreachable); try again",
			    (unsigned long long)self);
	else if (c->type == PEER_TRANSFER)
		change_done(c, true, "node %llu handed leadership to node %llu",
			    (unsigned long long)self, (unsigned long long)leader);
	else
		change_done(c, false,
			    "node %llu handed leadership to node %llu, which can remove it",
			    (unsigned long long)self, (unsigned long long)leader);
}

/* Hands leadership to voter @c->id (0: the most up to date one). */
static void transfer_leadership(struct change *c)
{
	struct replication *repl = c->repl;
	const struct raft_server *s = find_server(repl, c->id);

	if (c->id == repl->config.id) {
		change_done(c, true, "node %llu already leads", (unsigned long long)c->id);
		return;
	}
	if (c->id != 0 && (s == NULL || s->role != RAFT_VOTER)) {
		change_done(c, false, "node %llu is not a voting member",
			    (unsigned long long)c->id);
		return;
	}
	log_info("cluster: handing leadership to %s%llu", c->id != 0 ? "node " : "any voter ",
		 (unsigned long long)c->id);
	c->transfer.data = c;
	if (raft_transfer(&repl->raft, &c->transfer, c->id, on_handed_over) != 0)
		change_done(c, false, "node %llu cannot hand leadership over now; try again",
			    (unsigned long long)repl->config.id);
}

static bool valid_address(const char *address)
{
	const char *colon = strrchr(address, ':');

	return colon != NULL && colon != address && atoi(colon + 1) > 0 &&
	       atoi(colon + 1) < 65535 && strspn(colon + 1, "0123456789") == strlen(colon + 1);
}

void cluster_change(struct replication *repl, struct peer *origin, struct admin_task *task,
		    uint8_t type, raft_id id, const char *address, size_t address_len)
{
	const struct raft_server *s;
	struct change *c;
	char addr[PEER_ADDRESS_MAX + 1] = "";

	if (address != NULL)
		snprintf(addr, sizeof(addr), "%.*s", (int)address_len, address);
	if (raft_state(&repl->raft) != RAFT_LEADER) {
		admin_answer(origin, task, repl, false, "node %llu is not the leader",
			     (unsigned long long)repl->config.id);
		return;
	}
	if (repl->change != NULL) {
		admin_answer(origin, task, repl, false,
			     "another membership change is in progress; try again shortly");
		return;
	}
	if (type == PEER_TRANSFER) {
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			admin_answer(origin, task, repl, false, "out of memory");
			return;
		}
		*c = (struct change){
			.repl = repl, .type = type, .id = id, .origin = origin, .task = task};
		c->deadline_ms = uv_now(&repl->loop) + CHANGE_LIMIT_MS;
		repl->change = c;
		transfer_leadership(c);
		return;
	}
	if (id == 0 || (type != PEER_REMOVE && !valid_address(addr))) {
		admin_answer(origin, task, repl, false, "a member needs an id > 0 and a HOST:PORT");
		return;
	}
	s = find_server(repl, id);
	if (id == repl->config.id && type != PEER_REMOVE) {
		admin_answer(origin, task, repl, false, "node %llu is this node, the leader",
			     (unsigned long long)id);
		return;
	}
	if (type == PEER_REMOVE && s == NULL) {
		admin_answer(origin, task, repl, false, "node %llu is not a member",
			     (unsigned long long)id);
		return;
	}
	if (type == PEER_ADD && s != NULL && s->role == RAFT_VOTER) {
		admin_answer(origin, task, repl, false, "node %llu is already a member (at %s)",
			     (unsigned long long)id, s->address);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		admin_answer(origin, task, repl, false, "out of memory");
		return;
	}
	c->repl = repl;
	c->type = type;
	c->id = id;
	snprintf(c->address, sizeof(c->address), "%s", addr);
	c->origin = origin;
	c->task = task;
	c->deadline_ms = uv_now(&repl->loop) + CHANGE_LIMIT_MS;
	repl->change = c;
	if (id == repl->config.id) {
		/* The leader cannot remove itself and go on leading: hand leadership to
		 * another voter, which the tool then asks. */
		c->transfer.data = c;
		if (raft_transfer(&repl->raft, &c->transfer, 0, on_handed_over) != 0)
			change_done(c, false,
				    "node %llu leads and cannot hand leadership over "
				    "now; try again",
				    (unsigned long long)id);
		return;
	}
	log_info("cluster: %s node %llu%s%s",
		 type == PEER_REMOVE ? "removing"
		 : type == PEER_ADD  ? "adding"
				     : "joining",
		 (unsigned long long)id, addr[0] ? " at " : "", addr);
	change_step(c);
}

void cluster_peer_closed(struct replication *repl, struct peer *peer)
{
	if (repl->change != NULL && repl->change->origin == peer)
		repl->change->origin = NULL;
}

/* Starts Raft: with the founding configuration (@bootstrap), or as it is on disk. */
static int start_raft(struct replication *repl, bool bootstrap)
{
	int rv;

	if (bootstrap) {
		rv = raft_bootstrap(&repl->raft, &repl->founders);
		if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
			snprintf(repl->errmsg, sizeof(repl->errmsg), "raft bootstrap: %s",
				 raft_strerror(rv));
			return KMIPD_EIO;
		}
	}
	raft_set_max_catch_up_round_duration(&repl->raft, CATCH_UP_ROUND_MS);
	rv = raft_start(&repl->raft);
	if (rv != 0) {
		snprintf(repl->errmsg, sizeof(repl->errmsg),
			 "starting Raft (log in %s, peer address %s): %s%s%s", repl->dir,
			 repl->address, raft_strerror(rv), raft_errmsg(&repl->raft)[0] ? ": " : "",
			 raft_errmsg(&repl->raft));
		return KMIPD_EIO;
	}
	repl->raft_started = true;
	snapshots_start(repl);
	return 0;
}

static void on_probe(struct replication *repl, void *arg, int status, uint8_t type,
		     const uint8_t *body, size_t len)
{
	struct probe *probe = arg;
	json_t *answer;
	json_int_t term = 0, leader_id = 0;
	const char *leader_address = "";

	probe->inflight = false;
	if (status != 0 || type != PEER_STATUS)
		return;
	answer = json_loadb((const char *)body, len, 0, NULL);
	if (answer == NULL || json_unpack(answer, "{s:I,s:I,s:s}", "term", &term, "leader_id",
					  &leader_id, "leader_address", &leader_address) != 0) {
		json_decref(answer);
		return;
	}
	probe->answered_ms = uv_now(&repl->loop);
	probe->term = (uint64_t)term;
	probe->leader_id = (raft_id)leader_id;
	snprintf(probe->leader_address, sizeof(probe->leader_address), "%s", leader_address);
	json_decref(answer);
}

static void on_join_answer(struct replication *repl, void *arg, int status, uint8_t type,
			   const uint8_t *body, size_t len)
{
	json_t *answer;
	const char *message = "", *leader_address = "";
	json_int_t leader_id = 0;
	int ok = 0;

	(void)arg;
	repl->join_inflight = false;
	if (status != 0 || type != PEER_ADMIN)
		return;
	answer = json_loadb((const char *)body, len, 0, NULL);
	if (answer != NULL &&
	    json_unpack(answer, "{s:b,s:s,s:I,s:s}", "ok", &ok, "message", &message, "leader_id",
			&leader_id, "leader_address", &leader_address) == 0) {
		if (!ok && leader_id != 0 && leader_address[0] != '\0') {
			repl->join_to = (raft_id)leader_id;
			snprintf(repl->join_address, sizeof(repl->join_address), "%s",
				 leader_address);
		}
		log_info("cluster: join: %s", message);
	}
	json_decref(answer);
}

/* Forming: ask every other member for its status; decide once the answers say enough. */
static void form(struct replication *repl, uint64_t now)
{
	const struct raft_configuration *f = &repl->founders;
	unsigned reachable = 1; /* this node */
	struct probe *formed = NULL;
	static const uint8_t none[1];

	for (unsigned i = 0; i < f->n; i++) {
		struct probe *probe = &repl->probes[i];

		if (f->servers[i].id == repl->config.id)
			continue;
		if (probe->answered_ms != 0 && now - probe->answered_ms <= PROBE_FRESH_MS) {
			reachable++;
			if (probe->term >= 2 && formed == NULL)
				formed = probe;
		}
		if (!probe->inflight && now - probe->asked_ms >= PROBE_EVERY_MS &&
		    peer_request(repl, f->servers[i].id, f->servers[i].address, PEER_STATUS_REQ,
				 none, 0, 0, on_probe, probe) == 0) {
			probe->inflight = true;
			probe->asked_ms = now;
		}
	}
	if (formed != NULL) {
		log_info("cluster: this node has no Raft log and the cluster is running "
			 "(term %llu); joining it",
			 (unsigned long long)formed->term);
		repl->join_to = formed->leader_id;
		snprintf(repl->join_address, sizeof(repl->join_address), "%s",
			 formed->leader_address);
		repl->phase = PHASE_JOINING;
		if (start_raft(repl, false) != 0)
			log_error("cluster: %s", repl->errmsg);
		return;
	}
	if (reachable * 2 > f->n) {
		log_info("cluster: %u of %u members reachable, none has started a cluster: "
			 "founding it",
			 reachable, f->n);
		repl->phase = PHASE_RUNNING;
		if (start_raft(repl, true) != 0)
			log_error("cluster: %s", repl->errmsg);
		return;
	}
	if (now - repl->waiting_logged_ms >= WAIT_LOG_MS) {
		repl->waiting_logged_ms = now;
		log_info("cluster: waiting for a majority of cluster.members (%u of %u "
			 "reachable)",
			 reachable, f->n);
	}
}

/* Joining: ask the leader (or any member) to add this node until it is a voter. */
static void join(struct replication *repl, uint64_t now)
{
	const struct raft_server *self = find_server(repl, repl->config.id);
	const struct raft_configuration *f = &repl->founders;
	uint8_t body[8 + PEER_ADDRESS_MAX];
	size_t address_len = strlen(repl->address);
	const char *leader_address;
	raft_id leader_id;

	if (self != NULL && self->role == RAFT_VOTER) {
		log_info("cluster: joined the cluster as node %llu",
			 (unsigned long long)repl->config.id);
		repl->phase = PHASE_RUNNING;
		return;
	}
	if (repl->join_inflight || now - repl->join_asked_ms < JOIN_EVERY_MS)
		return;
	raft_leader(&repl->raft, &leader_id, &leader_address);
	if (leader_id != 0 && leader_id != repl->config.id) {
		repl->join_to = leader_id;
		snprintf(repl->join_address, sizeof(repl->join_address), "%s", leader_address);
	} else if (repl->join_to == 0 || repl->join_address[0] == '\0') {
		/* No leader known: try the members in turn; each answers who leads. */
		const struct raft_server *s = &f->servers[repl->join_next++ % f->n];

		if (s->id == repl->config.id)
			return;
		repl->join_to = s->id;
		snprintf(repl->join_address, sizeof(repl->join_address), "%s", s->address);
	}
	peer_put_u64(body, repl->config.id);
	memcpy(body + 8, repl->address, address_len);
	repl->join_asked_ms = now;
	if (peer_request(repl, repl->join_to, repl->join_address, PEER_JOIN, body, 8 + address_len,
			 0, on_join_answer, NULL) == 0)
		repl->join_inflight = true;
	repl->join_to = 0; /* the answer (or raft) says where to go next */
}

static void on_witness_transferred(struct raft_transfer *req)
{
	struct replication *repl = req->data;

	repl->witness_transferring = false;
}

/* A witness that finds itself leading hands leadership to another voter. */
static void witness_step_down(struct replication *repl, uint64_t now)
{
	int rv;

	if (!repl->config.witness || repl->witness_transferring || repl->stopping ||
	    raft_state(&repl->raft) != RAFT_LEADER || now < repl->witness_retry_ms)
		return;
	repl->witness_transfer.data = repl;
	rv = raft_transfer(&repl->raft, &repl->witness_transfer, 0, on_witness_transferred);
	if (rv == 0) {
		repl->witness_transferring = true;
		log_info("cluster: this node is a witness; handing leadership to another voter");
	} else {
		repl->witness_retry_ms = now + repl->config.election_timeout_ms;
		log_debug("cluster: witness hand-over not possible yet: %s", raft_strerror(rv));
	}
}

void cluster_tick(struct replication *repl)
{
	uint64_t now = uv_now(&repl->loop);

	peer_expire_requests(repl);
	if (repl->change != NULL && now >= repl->change->deadline_ms) {
		struct change *c = repl->change;

		/* libraft still holds the request; its callback frees it. */
		admin_answer(c->origin, c->task, repl, false,
			     "the membership change of node %llu did not complete in time",
			     (unsigned long long)c->id);
		c->abandoned = true;
		repl->change = NULL;
	}
	if (repl->stopping)
		return;
	if (repl->phase == PHASE_FORMING)
		form(repl, now);
	else if (repl->phase == PHASE_JOINING)
		join(repl, now);
	else if (repl->raft_started)
		ask_levels(repl, now);
	witness_step_down(repl, now);
}

int cluster_start(struct replication *repl)
{
	bool clustered = repl->founders.n > 1;

	if (!clustered || !raft_dir_is_empty(repl->dir)) {
		/* A single node founds its own cluster; a node with a log resumes it. */
		repl->phase = PHASE_RUNNING;
		return start_raft(repl, true);
	}
	repl->probes = calloc(repl->founders.n, sizeof(*repl->probes));
	if (repl->probes == NULL)
		return KMIPD_ENOMEM;
	repl->phase = PHASE_FORMING;
	repl->waiting_logged_ms = uv_now(&repl->loop);
	log_info("cluster: this node has no Raft log yet; asking the other members whether a "
		 "cluster is running");
	return 0;
}

/* ---- Administration (replication_admin) ---- */

void cluster_admin_finish(struct admin_task *task, const char *json)
{
	struct reply *reply = task->reply;

	json_decref(task->members);
	task->members = NULL;
	task->json =
		strdup(json != NULL ? json : "{\"ok\": false, \"message\": \"out of memory\"}");
	if (mailbox_post(task->reply_to, &reply->item) != 0) {
		/* The caller has gone: nobody hears the outcome. */
		free(task->json);
		free(reply);
		free(task);
	}
}

/* STATUS: one member's answer, into its slot. */
struct member_ask {
	struct admin_task *task;
	size_t slot;
};

static void status_done(struct admin_task *task)
{
	json_t *out;
	char *text;

	if (--task->pending > 0)
		return;
	out = json_pack("{s:O}", "members", task->members);
	text = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
	cluster_admin_finish(task, text);
	free(text);
	json_decref(out);
}

static void on_member_status(struct replication *repl, void *arg, int status, uint8_t type,
			     const uint8_t *body, size_t len)
{
	struct member_ask *ask = arg;
	json_t *slot = json_array_get(ask->task->members, ask->slot);
	json_t *answer = NULL;

	(void)repl;
	if (status == 0 && type == PEER_STATUS)
		answer = json_loadb((const char *)body, len, 0, NULL);
	if (answer != NULL)
		json_array_set_new(ask->task->members, ask->slot, answer);
	else
		json_object_set_new(
			slot, "error",
			json_stringn((const char *)body, status != 0 && body != NULL ? len : 0));
	status_done(ask->task);
	free(ask);
}

/* Asks every member for its status (this node answers for itself at once). */
static void ask_members(struct admin_task *task)
{
	struct replication *repl = task->repl;
	const struct raft_configuration *conf = &repl->raft.configuration;

	task->members = json_array();
	task->pending = 1; /* until every question is out */
	for (unsigned i = 0; i < conf->n && task->members != NULL; i++) {
		const struct raft_server *s = &conf->servers[i];
		struct member_ask *ask;
		struct buf own = BUF_INIT;

		if (s->id == repl->config.id && cluster_status(repl, &own) == 0) {
			json_array_append_new(task->members,
					      json_loadb((const char *)own.data, own.len, 0, NULL));
			buf_free(&own);
			continue;
		}
		buf_free(&own);
		json_array_append_new(
			task->members,
			json_pack("{s:I, s:s}", "id", (json_int_t)s->id, "address", s->address));
		ask = calloc(1, sizeof(*ask));
		if (ask == NULL)
			continue;
		*ask = (struct member_ask){task, json_array_size(task->members) - 1};
		task->pending++;
		if (peer_request(repl, s->id, s->address, PEER_STATUS_REQ, NULL, 0,
				 task->timeout_ms, on_member_status, ask) != 0) {
			task->pending--;
			free(ask);
		}
	}
	status_done(task);
}

static void on_leader_answer(struct replication *repl, void *arg, int status, uint8_t type,
			     const uint8_t *body, size_t len)
{
	struct admin_task *task = arg;
	char *text;

	if (status != 0 || type != PEER_ADMIN) {
		admin_answer(NULL, task, repl, false, "the leader did not answer: %.*s",
			     (int)(body != NULL ? len : 0), body != NULL ? (const char *)body : "");
		return;
	}
	text = strndup((const char *)body, len);
	cluster_admin_finish(task, text);
	free(text);
}

void cluster_admin_run(struct admin_task *task)
{
	static const uint8_t frame_of[] = {
		[REPLICATION_ADD] = PEER_ADD,
		[REPLICATION_REMOVE] = PEER_REMOVE,
		[REPLICATION_TRANSFER] = PEER_TRANSFER,
	};
	struct replication *repl = task->repl;
	uint8_t body[8 + PEER_ADDRESS_MAX];
	size_t address_len = strlen(task->address);
	const char *leader_address;
	raft_id leader;

	if (repl->stopping || repl->phase != PHASE_RUNNING || !repl->raft_started) {
		admin_answer(NULL, task, repl, false, "node %llu is %s",
			     (unsigned long long)repl->config.id,
			     repl->stopping ? "shutting down" : "not running in a cluster yet");
		return;
	}
	if (task->op == REPLICATION_STATUS) {
		ask_members(task);
		return;
	}
	raft_leader(&repl->raft, &leader, &leader_address);
	if (leader == 0) {
		admin_answer(NULL, task, repl, false,
			     "no leader is known (no quorum): membership cannot change now");
		return;
	}
	if (leader == repl->config.id) {
		cluster_change(repl, NULL, task, frame_of[task->op], task->id, task->address,
			       address_len);
		return;
	}
	peer_put_u64(body, task->id);
	memcpy(body + 8, task->address, address_len);
	if (peer_request(repl, leader, leader_address, frame_of[task->op], body,
			 8 + (task->op == REPLICATION_ADD ? address_len : 0), task->timeout_ms,
			 on_leader_answer, task) != 0)
		admin_answer(NULL, task, repl, false,
			     "the leader, node %llu at %s, cannot be asked",
			     (unsigned long long)leader, leader_address);
}
