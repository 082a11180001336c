/* kmipctl cluster ... through the admin API (src/admin/cluster.c). With --node, kmipctl
 * talks to the peer channel instead (src/kmipctl.c), as it must before any admin API is
 * reachable. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kmipd/ctl.h"
#include "kmipd/error.h"

static const char usage_cluster[] =
	"usage: kmipctl cluster status\n"
	"       kmipctl cluster add ID@HOST:PORT\n"
	"       kmipctl cluster remove ID\n"
	"       kmipctl cluster transfer [ID]\n"
	"       kmipctl cluster drain\n"
	"       kmipctl cluster undrain\n"
	"\n"
	"Through the admin API of the node --endpoint names:\n"
	"  status    every member: role, state, applied index and its lag behind the\n"
	"            leader's commit index (each member answers for itself; one that cannot\n"
	"            be reached says so). Exits 3 if a member did not answer or no leader is\n"
	"            known.\n"
	"  add       node ID, whose Raft address is HOST:PORT, becomes a voter once it has\n"
	"            caught up (it must be running; raise --timeout for a large store).\n"
	"  remove    node ID leaves the cluster.\n"
	"  transfer  the leader hands leadership to node ID (or to the best placed voter).\n"
	"  drain     this node stops taking KMIP connections (its port refuses them, so\n"
	"            vCenter goes to its other endpoint at once), closes the open ones after\n"
	"            their request, and hands leadership over if it leads: before an\n"
	"            upgrade. /readyz says 503 while it is drained.\n"
	"  undrain   this node takes KMIP connections again.\n"
	"(kmipctl cluster status|add|remove --node HOST:PORT asks over the peer channel with\n"
	"a node certificate instead: kmipctl cluster status --node HOST:PORT --help.)\n"
	"\n";

static void print_member(json_t *m)
{
	json_t *lag = json_object_get(m, "lag");
	char lag_text[32] = "-";

	if (json_is_integer(lag))
		snprintf(lag_text, sizeof(lag_text), "%lld", (long long)json_integer_value(lag));
	printf("%4lld  %-22s %-8s %-10s %12lld %8s  %s\n",
	       (long long)json_integer_value(json_object_get(m, "id")), ctl_str(m, "address"),
	       ctl_str(m, "role"),
	       json_is_true(json_object_get(m, "reachable")) ? ctl_str(m, "state") : "unreachable",
	       (long long)json_integer_value(json_object_get(m, "applied_index")), lag_text,
	       json_is_true(json_object_get(m, "leader")) ? "leader" : ctl_str(m, "error"));
}

static int status(struct ctl *c)
{
	json_t *answer = NULL, *m;
	bool degraded;
	size_t i;
	int rv = ctl_call(c, "GET", "/v1/cluster", NULL, &answer);

	if (rv != 0)
		return rv;
	degraded = json_integer_value(json_object_get(answer, "leader")) == 0;
	json_array_foreach(json_object_get(answer, "members"), i, m) degraded |=
		!json_is_true(json_object_get(m, "reachable"));
	if (!c->json) {
		printf("cluster %s, leader node %lld, term %lld%s\n", ctl_str(answer, "cluster"),
		       (long long)json_integer_value(json_object_get(answer, "leader")),
		       (long long)json_integer_value(json_object_get(answer, "term")),
		       json_is_true(json_object_get(answer, "drained"))
			       ? " (the node asked is drained)"
			       : "");
		printf("%4s  %-22s %-8s %-10s %12s %8s\n", "ID", "RAFT ADDRESS", "ROLE", "STATE",
		       "APPLIED", "LAG");
		json_array_foreach(json_object_get(answer, "members"), i, m) print_member(m);
	}
	json_decref(answer);
	return degraded ? CTL_EXIT_DEGRADED : 0;
}

int ctl_parse_node_id(const char *text, size_t len, uint64_t *id)
{
	char digits[24], *end;

	if (len == 0 || len >= sizeof(digits))
		return KMIPD_EINVAL;
	memcpy(digits, text, len);
	digits[len] = '\0';
	/* strtoull accepts a sign and leading spaces; a node id has neither. */
	if (!isdigit((unsigned char)digits[0]))
		return KMIPD_EINVAL;
	errno = 0;
	*id = strtoull(digits, &end, 10);
	return errno == 0 && *end == '\0' && *id != 0 ? 0 : KMIPD_EINVAL;
}

/* A node id (1..2^63) from @text, or 0. */
static uint64_t node_id(const char *text, size_t len)
{
	uint64_t id;

	return ctl_parse_node_id(text, len, &id) == 0 && id <= INT64_MAX ? id : 0;
}

/* A change: prints the leader's sentence. */
static int change(struct ctl *c, const char *method, const char *path, json_t *body)
{
	json_t *answer = NULL;
	int rv = ctl_call(c, method, path, body, &answer);

	if (rv == 0 && !c->json)
		printf("%s\n", ctl_str(answer, "message")[0] ? ctl_str(answer, "message") : "done");
	json_decref(answer);
	json_decref(body);
	return rv;
}

int ctl_cluster_command(const char *data_dir, int argc, char **argv)
{
	struct ctl c;
	const char *sub;
	json_t *answer = NULL;
	int rv = ctl_parse(&c, data_dir, usage_cluster, argc, argv);

	if (rv != 0)
		return rv;
	if (c.nargs == 0)
		return ctl_usage_error(usage_cluster, "cluster: which subcommand?");
	sub = c.args[0];
	if (strcmp(sub, "status") == 0 && c.nargs == 1)
		return status(&c);
	if (strcmp(sub, "add") == 0 && c.nargs == 2) {
		const char *at = strchr(c.args[1], '@');
		uint64_t id = at != NULL ? node_id(c.args[1], (size_t)(at - c.args[1])) : 0;

		if (id == 0 || strchr(at + 1, ':') == NULL)
			return ctl_usage_error(usage_cluster,
					       "add needs ID@HOST:PORT (a node id and its Raft "
					       "address), not '%s'",
					       c.args[1]);
		return change(&c, "POST", "/v1/cluster/members",
			      json_pack("{s:I, s:s}", "id", (json_int_t)id, "address", at + 1));
	}
	if (strcmp(sub, "remove") == 0 && c.nargs == 2) {
		struct buf path = BUF_INIT;

		if (node_id(c.args[1], strlen(c.args[1])) == 0)
			return ctl_usage_error(usage_cluster, "remove needs a node id, not '%s'",
					       c.args[1]);
		buf_printf(&path, "/v1/cluster/members/");
		ctl_encode(&path, c.args[1]);
		buf_append(&path, "", 1);
		rv = change(&c, "DELETE", (char *)path.data, NULL);
		buf_free(&path);
		return rv;
	}
	if (strcmp(sub, "transfer") == 0 && c.nargs <= 2) {
		uint64_t to = c.nargs == 2 ? node_id(c.args[1], strlen(c.args[1])) : 0;

		if (c.nargs == 2 && to == 0)
			return ctl_usage_error(usage_cluster, "transfer takes a node id, not '%s'",
					       c.args[1]);
		return change(&c, "POST", "/v1/cluster/transfer",
			      to != 0 ? json_pack("{s:I}", "to", (json_int_t)to) : json_object());
	}
	if ((strcmp(sub, "drain") == 0 || strcmp(sub, "undrain") == 0) && c.nargs == 1) {
		bool on = strcmp(sub, "drain") == 0;
		json_t *body = json_object();

		rv = ctl_call(&c, "POST", on ? "/v1/cluster/drain" : "/v1/cluster/undrain", body,
			      &answer);
		json_decref(body);
		if (rv == 0 && !c.json) {
			if (on)
				printf("node drained: it takes no KMIP connections%s\n",
				       json_is_true(
					       json_object_get(answer, "leadership_handed_over"))
					       ? "; leadership handed over"
					       : "");
			else
				printf("node undrained: it takes KMIP connections again\n");
		}
		json_decref(answer);
		return rv;
	}
	return ctl_usage_error(usage_cluster, "cluster %s: wrong arguments", sub);
}
