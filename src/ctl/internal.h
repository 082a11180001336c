/* Shared by kmipctl's admin API commands (admin.c, client.c). */
#ifndef KMIPD_SRC_CTL_INTERNAL_H
#define KMIPD_SRC_CTL_INTERNAL_H

#include <stdbool.h>

#include <jansson.h>

#include "kmipd/buf.h"

#define PATH 4096

/* The options of a command line, once parsed. */
struct ctl {
	char endpoint[512];
	char ca[PATH], cert[PATH], key[PATH];
	long timeout_s;
	bool json;
	/* What is left of the command line once the options are taken out. */
	const char *args[8];
	int nargs;
	/* Options of particular commands. */
	const char *provider, *root_key, *state, *type, *attribute, *limit;
	const char *out;  /* --out: where to write files */
	const char *kind; /* --kind: pinned or ca */
	bool all, destroy_confirmed;
};

/* Reports a usage error with @usage; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses the options of every admin command and of @usage's command. 0 or an exit status. */
int ctl_parse(struct ctl *c, const char *data_dir, const char *usage, int argc, char **argv);

/* Sends the request and prints the answer as JSON when --json; returns the exit status,
 * and the answer in *out for a table when the request succeeded (caller frees). @path is
 * encoded already. */
int ctl_call(struct ctl *c, const char *method, const char *path, json_t *body, json_t **out);

/* Appends @s percent-encoded (a path segment or a query value). */
void ctl_encode(struct buf *out, const char *s);

/* "/v1/tenants/TENANT" + @rest + (@uid if not NULL), encoded; NUL-terminated unless
 * @open (query parameters follow). */
void ctl_tenant_path(struct buf *path, const char *tenant, const char *rest, const char *uid,
		     bool open);

/* The string @key of @o, or "". */
const char *ctl_str(json_t *o, const char *key);

/* `kmipctl client ...` and `kmipctl pki ...` (client.c). */
int ctl_client_command(const char *data_dir, int argc, char **argv);
int ctl_pki_command(const char *data_dir, int argc, char **argv);

/* `kmipctl cluster ...` without --node (cluster.c). */
int ctl_cluster_command(const char *data_dir, int argc, char **argv);

#endif
