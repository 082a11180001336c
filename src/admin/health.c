/* Health, readiness, metrics and this node's view of the cluster. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "kmipd/metrics.h"
#include "kmipd/store.h"

struct root_key_scan {
	struct admin *admin;
	json_t *list; /* NULL: count only */
	json_int_t refused, pending, unreachable;
};

static int scan_tenant(const struct store_tenant *t, void *arg)
{
	struct root_key_scan *scan = arg;
	struct keyring_view view;
	const char *state;

	if (t->deleted != 0 || keyring_view(scan->admin->config.keyring, t->name, &view) != 0)
		return 0;
	if (view.state == KEYRING_READY && view.provider_ok)
		return 0;
	state = view.state == KEYRING_REVOKED	? "refused"
		: view.state == KEYRING_PENDING ? "pending"
						: "serving from cache";
	scan->refused += view.state == KEYRING_REVOKED;
	scan->pending += view.state == KEYRING_PENDING;
	scan->unreachable += view.state == KEYRING_READY;
	if (scan->list != NULL)
		json_array_append_new(scan->list,
				      json_pack("{s:s, s:s, s:s, s:s, s:o}", "tenant", t->name,
						"provider", t->provider, "state", state, "reason",
						view.reason, "since", admin_date(view.since)));
	return 0;
}

/* Tenants whose KEK is refused, not unwrapped yet, or served from cache because their
 * provider does not answer, into @scan. */
static void scan_root_keys(struct http_conn *c, struct root_key_scan *scan)
{
	struct store_txn *txn;

	if (store_txn_begin(c->admin->config.store, false, &txn) != 0)
		return;
	store_tenant_foreach(txn, &c->arena, scan_tenant, scan);
	store_txn_abort(txn);
}

/* GET /healthz: the process is alive and its admin loop turns. Certificates about to
 * expire are warned of: the server's and the CA's in full (anyone sees them in a
 * handshake), clients' only counted (GET /v1/cluster names them, to administrators).
 * Tenants whose root key is refused or whose provider does not answer are counted, and
 * named to a caller with an administrator's certificate. */
void handle_healthz(struct http_conn *c, const char **params)
{
	json_t *all = admin_expiry_warnings(c->admin), *shown = json_array(), *w, *body;
	struct root_key_scan scan = {c->admin, NULL, 0, 0, 0};
	json_int_t clients = 0;
	size_t i;

	(void)params;
	json_array_foreach(all, i, w)
	{
		if (strcmp(json_string_value(json_object_get(w, "kind")), "client") == 0)
			clients++;
		else
			json_array_append(shown, w);
	}
	json_decref(all);
	if (c->admin_name[0] != '\0')
		scan.list = json_array();
	scan_root_keys(c, &scan);
	body = json_pack("{s:s, s:I, s:s, s:o, s:I, s:{s:I, s:I, s:I}}", "status",
			 scan.refused + scan.pending + scan.unreachable ? "degraded" : "ok", "node",
			 (json_int_t)c->admin->config.node_id, "version", c->admin->config.version,
			 "certificate_warnings", shown, "client_certificates_expiring", clients,
			 "root_key_problems", "refused", scan.refused, "pending", scan.pending,
			 "provider_unreachable", scan.unreachable);
	if (scan.list != NULL)
		json_object_set_new(body, "root_keys", scan.list);
	http_json(c, 200, body);
}

/* Whether this node serves reads and writes, and why not. */
struct readiness {
	bool reads, writes;
	char why[160];
};

static void assess(struct admin *admin, const struct replication_status *s, struct readiness *r)
{
	memset(r, 0, sizeof(*r));
	if (atomic_load(&admin->drained)) {
		snprintf(r->why, sizeof(r->why),
			 "this node is drained: it accepts no KMIP connections until an "
			 "administrator undrains it (kmipctl cluster undrain)");
		return;
	}
	if (s->witness) {
		snprintf(r->why, sizeof(r->why), "this node is a witness: it serves no KMIP");
		return;
	}
	if (!s->running) {
		snprintf(r->why, sizeof(r->why),
			 "this node is still forming or joining the cluster: its store may not "
			 "hold the cluster's keys yet");
		return;
	}
	r->reads = true;
	if (s->leader_id == 0) {
		snprintf(r->why, sizeof(r->why),
			 "no leader is known (no quorum): reads are served, writes fail");
		return;
	}
	r->writes = true;
}

/* GET /readyz: 200 when this node can serve reads; the body says whether writes can be
 * made and why not. */
void handle_readyz(struct http_conn *c, const char **params)
{
	struct replication_status s;
	struct readiness r;
	json_t *body;

	(void)params;
	replication_status(c->admin->config.replication, &s);
	assess(c->admin, &s, &r);
	body = json_pack("{s:b, s:b, s:b, s:s, s:I}", "ready", r.reads, "reads", r.reads, "writes",
			 r.writes, "state", s.state, "leader", (json_int_t)s.leader_id);
	if (body != NULL && r.why[0] != '\0')
		json_object_set_new(body, "why", json_string(r.why));
	http_json(c, r.reads ? 200 : 503, body);
}

struct tenant_counts {
	struct store_txn *txn;
	struct buf *out;
	unsigned tenants;
	int rc;
};

static int count_tenant(const struct store_tenant *t, void *arg)
{
	struct tenant_counts *tc = arg;
	char name[2 * OBJECT_TENANT_MAX + 1], labels[3 * OBJECT_TENANT_MAX];
	uint64_t n = 0;

	if (t->deleted != 0)
		return 0;
	tc->tenants++;
	if (store_object_count(tc->txn, t->name, &n) != 0)
		return 0;
	snprintf(labels, sizeof(labels), "tenant=\"%s\"",
		 metrics_escape(t->name, name, sizeof(name)));
	tc->rc |= metrics_gauge(tc->out, "kmipd_tenant_objects",
				tc->tenants == 1 ? "Objects per tenant." : NULL, labels, (double)n);
	return 0;
}

/* GET /metrics: Prometheus text format 0.0.4. */
void handle_metrics(struct http_conn *c, const char **params)
{
	struct admin *admin = c->admin;
	struct replication_status s;
	struct buf out = BUF_INIT;
	struct arena arena;
	struct readiness r;
	char labels[64];
	int rc;

	(void)params;
	replication_status(admin->config.replication, &s);
	assess(admin, &s, &r);
	rc = metrics_render(&out);
	snprintf(labels, sizeof(labels), "state=\"%s\"", s.state);
	rc |= metrics_gauge(&out, "kmipd_raft_state",
			    "This node's Raft state (1 for the state it is in).", labels, 1);
	rc |= metrics_gauge(&out, "kmipd_raft_term", "The Raft term this node is in.", NULL,
			    (double)s.term);
	rc |= metrics_gauge(&out, "kmipd_raft_commit_index",
			    "The highest Raft entry this node knows to be committed.", NULL,
			    (double)s.commit_index);
	rc |= metrics_gauge(&out, "kmipd_raft_applied_index",
			    "The highest Raft entry this node's store holds.", NULL,
			    (double)s.applied_index);
	rc |= metrics_gauge(&out, "kmipd_raft_leader",
			    "The id of the node this node takes for the leader; 0: none known.",
			    NULL, (double)s.leader_id);
	rc |= metrics_gauge(&out, "kmipd_raft_voters", "Voters in this node's configuration.", NULL,
			    (double)s.voters);
	rc |= metrics_gauge(&out, "kmipd_ready_reads", "1 if this node serves reads.", NULL,
			    r.reads);
	rc |= metrics_gauge(&out, "kmipd_ready_writes",
			    "1 if writes can be made through this node (a leader is known).", NULL,
			    r.writes);
	{
		struct store_txn *txn;
		struct tenant_counts tc = {NULL, &out, 0, 0};

		arena_init(&arena, 4096, 0);
		if (store_txn_begin(admin->config.store, false, &txn) == 0) {
			tc.txn = txn;
			store_tenant_foreach(txn, &arena, count_tenant, &tc);
			store_txn_abort(txn);
		}
		arena_free(&arena);
		rc |= tc.rc;
		rc |= metrics_gauge(&out, "kmipd_tenants", "Tenants (not deleted).", NULL,
				    tc.tenants);
	}
	if (rc != 0) {
		buf_free(&out);
		http_error(c, 500, "out of memory rendering the metrics");
		return;
	}
	http_send(c, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
	buf_free(&out);
}
