/* The cluster through the admin API:
 *
 *   GET    /v1/cluster                  this node's view, and every member's own: state,
 *                                       applied index and lag behind the leader's commit
 *   POST   /v1/cluster/members          {"id", "address"}: add a voter (answered once it
 *                                       has caught up and votes)
 *   DELETE /v1/cluster/members/{id}     remove a member
 *   POST   /v1/cluster/transfer         {"to": id} (optional): hand leadership over
 *   POST   /v1/cluster/drain            this node: no new KMIP connections, the open ones
 *                                       close after their request, leadership handed over
 *   POST   /v1/cluster/undrain          this node serves KMIP again
 *
 * Membership changes and transfers run on the leader (replication_admin forwards them);
 * draining is this node's own business. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kmipd/error.h"

#define STATUS_TIMEOUT_MS   2000   /* a member that has not answered by then is unreachable */
#define CHANGE_TIMEOUT_MS   120000 /* an added node may need long to catch up */
#define TRANSFER_TIMEOUT_MS 10000

/* Submits @op for @c; the answer comes to @done(c, json). */
static void ask_cluster(struct http_conn *c, enum replication_admin_op op, uint64_t id,
			const char *address, unsigned timeout_ms, replication_admin_fn done)
{
	int rv = replication_admin(c->admin->config.replication, op, id, address, timeout_ms,
				   &c->admin->replies, done, c);

	if (rv != 0) {
		http_error(c, 503, "the cluster cannot be asked: %s", kmipd_strerror(rv));
		return;
	}
	admin_wait(c);
}

/* ---- Status ---- */

static json_t *member_answer(json_t *answers, uint64_t id)
{
	size_t i;
	json_t *m;

	json_array_foreach(json_object_get(answers, "members"), i, m)
	{
		if ((uint64_t)json_integer_value(json_object_get(m, "id")) == id)
			return m;
	}
	return NULL;
}

static void cluster_answered(void *arg, const char *json)
{
	struct http_conn *c = arg;
	struct replication_status s;
	json_t *answers, *members = json_array(), *body, *leader, *config, *entry;
	json_int_t commit;
	size_t i;

	if (!admin_resume(c))
		return;
	answers = json_loads(json, 0, NULL);
	replication_status(c->admin->config.replication, &s);
	/* The members and the commit index lag is measured against are the leader's (this
	 * node's, if the leader did not answer): a follower may not have the latest
	 * configuration yet. */
	leader = member_answer(answers, s.leader_id);
	commit = leader != NULL ? json_integer_value(json_object_get(leader, "commit_index"))
				: (json_int_t)s.commit_index;
	config = json_object_get(leader, "members");
	if (config == NULL) {
		config = json_array();
		for (unsigned k = 0; k < s.members && k < sizeof(s.member) / sizeof(s.member[0]);
		     k++)
			json_array_append_new(config, json_pack("{s:I, s:s, s:s}", "id",
								(json_int_t)s.member[k].id,
								"address", s.member[k].address,
								"role", s.member[k].role));
	} else {
		json_incref(config);
	}
	json_array_foreach(config, i, entry)
	{
		json_int_t id = json_integer_value(json_object_get(entry, "id"));
		json_t *own = member_answer(answers, (uint64_t)id);
		json_t *error = json_object_get(own, "error");
		json_t *m = json_pack("{s:I, s:O, s:O, s:b, s:b}", "id", id, "address",
				      json_object_get(entry, "address"), "role",
				      json_object_get(entry, "role"), "leader",
				      (uint64_t)id == s.leader_id, "reachable",
				      own != NULL && error == NULL);

		if (own != NULL && error == NULL) {
			json_int_t applied =
				json_integer_value(json_object_get(own, "applied_index"));

			json_object_set(m, "state", json_object_get(own, "state"));
			json_object_set(m, "term", json_object_get(own, "term"));
			json_object_set(m, "applied_index", json_object_get(own, "applied_index"));
			json_object_set(m, "commit_index", json_object_get(own, "commit_index"));
			/* An older kmipd does not say: it applies level 2 (command.h). */
			json_object_set_new(
				m, "format_level",
				json_object_get(own, "format_level") != NULL
					? json_copy(json_object_get(own, "format_level"))
					: json_integer(2));
			json_object_set_new(m, "lag",
					    json_integer(commit > applied ? commit - applied : 0));
		} else {
			json_object_set_new(m, "error",
					    json_string(json_string_value(error) != NULL &&
									json_string_value(error)[0]
								? json_string_value(error)
								: "no answer"));
		}
		json_array_append_new(members, m);
	}
	json_decref(config);
	json_decref(answers);
	body = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:b, s:o}", "cluster",
			 c->admin->config.cluster_id, "node", (json_int_t)s.id, "state", s.state,
			 "term", (json_int_t)s.term, "commit_index", (json_int_t)s.commit_index,
			 "applied_index", (json_int_t)s.applied_index, "leader",
			 (json_int_t)s.leader_id, "drained", atomic_load(&c->admin->drained),
			 "members", members);
	if (body != NULL && s.leader_address[0] != '\0')
		json_object_set_new(body, "leader_address", json_string(s.leader_address));
	json_object_set_new(body, "format_level", json_integer(s.format_level));
	json_object_set_new(body, "certificate_warnings", admin_expiry_warnings(c->admin));
	http_json(c, 200, body);
}

void handle_cluster(struct http_conn *c, const char **params)
{
	(void)params;
	ask_cluster(c, REPLICATION_STATUS, 0, NULL, STATUS_TIMEOUT_MS, cluster_answered);
}

/* ---- Changes ---- */

/* The leader's answer to a change: 200 with it, or 409 with its message. */
static void changed(void *arg, const char *json)
{
	struct http_conn *c = arg;
	json_t *answer = json_loads(json, 0, NULL);
	const char *message = json_string_value(json_object_get(answer, "message"));

	if (c->stream == NULL || c->admin->stopping) /* the client left; the outcome stands */
		admin_audit(c, json_is_true(json_object_get(answer, "ok")) ? 200 : 409, message);
	if (!admin_resume(c)) {
		json_decref(answer);
		return;
	}
	if (json_is_true(json_object_get(answer, "ok")))
		http_json(c, 200, json_incref(answer));
	else
		http_error(c, 409, "%s", message != NULL ? message : "the cluster refused it");
	json_decref(answer);
}

/* Reads a member id (1..2^63) from @text; false after answering 400. */
static bool member_id(struct http_conn *c, const char *text, uint64_t *id)
{
	char *end;
	unsigned long long v = strtoull(text, &end, 10);

	if (text[0] == '\0' || *end != '\0' || v == 0 || v > INT64_MAX) {
		http_error(c, 400, "'%s' is not a node id (a number from 1)", text);
		return false;
	}
	*id = v;
	return true;
}

void handle_member_add(struct http_conn *c, const char **params)
{
	json_t *body = http_body_object(c);
	const char *address;
	json_int_t id;
	json_error_t err;

	(void)params;
	admin_audit_as(c, "add cluster member", NULL);
	if (body == NULL)
		return;
	if (json_unpack_ex(body, &err, JSON_STRICT, "{s:I, s:s}", "id", &id, "address", &address) !=
		    0 ||
	    id <= 0) {
		http_error(c, 400,
			   "the body must be {\"id\": N (from 1), \"address\": \"HOST:PORT\" (its "
			   "Raft address)}: %s",
			   err.text[0] ? err.text : "the id must be at least 1");
	} else if (strlen(address) > 255 || strchr(address, ':') == NULL) {
		http_error(c, 400, "address '%s' is not HOST:PORT", address);
	} else {
		ask_cluster(c, REPLICATION_ADD, (uint64_t)id, address, CHANGE_TIMEOUT_MS, changed);
	}
	json_decref(body);
}

void handle_member_remove(struct http_conn *c, const char **params)
{
	uint64_t id;

	admin_audit_as(c, "remove cluster member", NULL);
	if (member_id(c, params[0], &id))
		ask_cluster(c, REPLICATION_REMOVE, id, NULL, CHANGE_TIMEOUT_MS, changed);
}

void handle_transfer(struct http_conn *c, const char **params)
{
	json_t *body = http_body_object(c);
	json_int_t to = 0;
	json_error_t err;

	(void)params;
	admin_audit_as(c, "transfer leadership", NULL);
	if (body == NULL)
		return;
	if (json_unpack_ex(body, &err, JSON_STRICT, "{s?:I}", "to", &to) != 0 || to < 0)
		http_error(c, 400, "the body must be {} or {\"to\": NODE_ID}: %s", err.text);
	else
		ask_cluster(c, REPLICATION_TRANSFER, (uint64_t)to, NULL, TRANSFER_TIMEOUT_MS,
			    changed);
	json_decref(body);
}

/* ---- Draining ---- */

static void drained_and_handed_over(void *arg, const char *json)
{
	struct http_conn *c = arg;
	json_t *answer = json_loads(json, 0, NULL);

	if (admin_resume(c))
		http_json(c, 200,
			  json_pack("{s:b, s:b, s:s}", "drained", 1, "leadership_handed_over",
				    json_is_true(json_object_get(answer, "ok")), "leadership",
				    json_string_value(json_object_get(answer, "message"))
					    ? json_string_value(json_object_get(answer, "message"))
					    : ""));
	json_decref(answer);
}

void handle_drain(struct http_conn *c, const char **params)
{
	struct replication_status s;

	(void)params;
	admin_audit_as(c, "drain node", NULL);
	atomic_store(&c->admin->drained, true);
	if (c->admin->config.drain != NULL)
		c->admin->config.drain(c->admin->config.drain_arg, true);
	replication_status(c->admin->config.replication, &s);
	if (s.leader_id == s.id && s.voters > 1) {
		/* A drained node should not lead an upgrade's worth of writes either. */
		ask_cluster(c, REPLICATION_TRANSFER, 0, NULL, TRANSFER_TIMEOUT_MS,
			    drained_and_handed_over);
		return;
	}
	http_json(c, 200, json_pack("{s:b, s:b}", "drained", 1, "leadership_handed_over", 0));
}

void handle_undrain(struct http_conn *c, const char **params)
{
	(void)params;
	admin_audit_as(c, "undrain node", NULL);
	atomic_store(&c->admin->drained, false);
	if (c->admin->config.drain != NULL)
		c->admin->config.drain(c->admin->config.drain_arg, false);
	http_json(c, 200, json_pack("{s:b}", "drained", 0));
}
