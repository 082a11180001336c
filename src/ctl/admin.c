/* kmipctl's admin API commands (see include/kmipd/ctl.h): option parsing shared by all of
 * them, one HTTPS request each through libcurl, and human tables or --json output. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <ini.h>
#include <jansson.h>

#include "internal.h"
#include "kmipd/buf.h"
#include "kmipd/ctl.h"
#include "kmipd/pki.h"

static const char usage_common[] =
	"Talking to a node (every command below):\n"
	"  --endpoint URL   the node's admin API (default https://127.0.0.1:9696;\n"
	"                   KMIPCTL_ENDPOINT)\n"
	"  --pki-dir DIR    DIR/ca.pem, DIR/admin.pem and DIR/admin-key.pem (dev mode makes\n"
	"                   them; kmipctl --data-dir D uses D/pki)\n"
	"  --ca FILE --cert FILE --key FILE   the same files one by one\n"
	"  --config FILE    an INI file with endpoint=, ca=, cert=, key= under [kmipctl]\n"
	"                   (KMIPCTL_CONFIG)\n"
	"  --timeout S      give up after S seconds (default 30)\n"
	"  --json           print the node's JSON answer instead of a table\n"
	"\n"
	"Exit status: 0 done; 1 the node refused or failed it (the message says why); 2 bad\n"
	"usage; 4 no such tenant or object; 5 the node could not be reached (or TLS failed).\n";

static const char usage_tenant[] =
	"usage: kmipctl tenant list\n"
	"       kmipctl tenant create NAME [--provider local|keyprotect|hpcs --root-key ID]\n"
	"       kmipctl tenant show NAME\n"
	"       kmipctl tenant rotate-kek NAME\n"
	"       kmipctl tenant root-key NAME\n"
	"       kmipctl tenant rewrap NAME\n"
	"       kmipctl tenant delete NAME --destroy-all-keys\n"
	"\n"
	"Tenants are isolated key spaces, each with its own key-encryption key wrapped by the\n"
	"root key. Deleting one destroys all of its keys on every node, for good (its KEK is\n"
	"forgotten: crypto-shredding) and cuts its clients off at once.\n"
	"\n";

static const char usage_object[] =
	"usage: kmipctl object list TENANT [--state STATE] [--type TYPE]\n"
	"                           [--attribute NAME=VALUE] [--limit N] [--all]\n"
	"       kmipctl object show TENANT UID\n"
	"\n"
	"Metadata and attributes of a tenant's objects, never their key material. --state is\n"
	"a KMIP state (Pre-Active, Active, Deactivated, Compromised, Destroyed, ...),\n"
	"--attribute a text attribute's value (vCenter names its keys with x-Name, e.g.\n"
	"--attribute x-Name=vm01). Lists come 100 at a time (--limit up to 1000); --all\n"
	"follows them to the end.\n"
	"\n";

static const char usage_issue_admin[] =
	"usage: kmipctl --data-dir DIR issue-admin --name NAME --out OUTDIR\n"
	"\n"
	"Writes OUTDIR/NAME.pem and OUTDIR/NAME-key.pem (mode 0600): a certificate and key for\n"
	"administrator NAME, signed by the CA in DIR/pki, for the admin API (kmipctl --cert\n"
	"and --key). Names are 1-64 characters of A-Z a-z 0-9 . _ -\n";

int ctl_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("kmipctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n%s%s", usage, usage == usage_issue_admin ? "" : usage_common);
	return CTL_EXIT_USAGE;
}

static void set_path(char *field, const char *value)
{
	snprintf(field, PATH, "%s", value);
}

static void from_pki_dir(struct ctl *c, const char *dir)
{
	snprintf(c->ca, sizeof(c->ca), "%s/" PKI_CA_CERT, dir);
	snprintf(c->cert, sizeof(c->cert), "%s/" PKI_ADMIN_CERT, dir);
	snprintf(c->key, sizeof(c->key), "%s/" PKI_ADMIN_KEY, dir);
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct ctl *c = user;

	if (strcmp(section, "kmipctl") != 0)
		return 1;
	if (strcmp(name, "endpoint") == 0)
		snprintf(c->endpoint, sizeof(c->endpoint), "%s", value);
	else if (strcmp(name, "ca") == 0)
		set_path(c->ca, value);
	else if (strcmp(name, "cert") == 0)
		set_path(c->cert, value);
	else if (strcmp(name, "key") == 0)
		set_path(c->key, value);
	else if (strcmp(name, "pki_dir") == 0)
		from_pki_dir(c, value);
	else
		return 0;
	return 1;
}

/* Parses the options of every admin command and of @usage's command. */
int ctl_parse(struct ctl *c, const char *data_dir, const char *usage, int argc, char **argv)
{
	const char *config = getenv("KMIPCTL_CONFIG");
	char pki[PATH];

	memset(c, 0, sizeof(*c));
	c->timeout_s = 30;
	snprintf(c->endpoint, sizeof(c->endpoint), "%s",
		 getenv("KMIPCTL_ENDPOINT") ? getenv("KMIPCTL_ENDPOINT")
					    : "https://127.0.0.1:9696");
	if (data_dir != NULL) {
		snprintf(pki, sizeof(pki), "%s/pki", data_dir);
		from_pki_dir(c, pki);
	}
	/* The config file first, so that flags override it. */
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--config") == 0)
			config = argv[i + 1];
	if (config != NULL) {
		int line = ini_parse(config, on_ini, c);

		if (line != 0) {
			fprintf(stderr, "kmipctl: config file %s: %s\n", config,
				line < 0 ? strerror(errno) : "unknown setting or syntax error");
			return CTL_EXIT_USAGE;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes_value = true;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			printf("%s%s", usage, usage == usage_issue_admin ? "" : usage_common);
			exit(0);
		} else if (strcmp(arg, "--json") == 0) {
			c->json = true;
			takes_value = false;
		} else if (strcmp(arg, "--all") == 0) {
			c->all = true;
			takes_value = false;
		} else if (strcmp(arg, "--destroy-all-keys") == 0) {
			c->destroy_confirmed = true;
			takes_value = false;
		} else if (strncmp(arg, "--", 2) != 0) {
			if (c->nargs == (int)(sizeof(c->args) / sizeof(c->args[0])))
				return ctl_usage_error(usage, "too many arguments");
			c->args[c->nargs++] = arg;
			takes_value = false;
		} else if (value == NULL) {
			return ctl_usage_error(usage, "%s needs a value", arg);
		} else if (strcmp(arg, "--endpoint") == 0) {
			snprintf(c->endpoint, sizeof(c->endpoint), "%s", value);
		} else if (strcmp(arg, "--pki-dir") == 0) {
			from_pki_dir(c, value);
		} else if (strcmp(arg, "--ca") == 0) {
			set_path(c->ca, value);
		} else if (strcmp(arg, "--cert") == 0) {
			set_path(c->cert, value);
		} else if (strcmp(arg, "--key") == 0) {
			set_path(c->key, value);
		} else if (strcmp(arg, "--config") == 0) {
			/* read above */
		} else if (strcmp(arg, "--timeout") == 0) {
			char *end;

			c->timeout_s = strtol(value, &end, 10);
			if (*end != '\0' || c->timeout_s < 1 || c->timeout_s > 3600)
				return ctl_usage_error(
					usage, "--timeout: '%s' is not 1-3600 seconds", value);
		} else if (strcmp(arg, "--provider") == 0) {
			c->provider = value;
		} else if (strcmp(arg, "--root-key") == 0) {
			c->root_key = value;
		} else if (strcmp(arg, "--state") == 0) {
			c->state = value;
		} else if (strcmp(arg, "--type") == 0) {
			c->type = value;
		} else if (strcmp(arg, "--attribute") == 0) {
			c->attribute = value;
		} else if (strcmp(arg, "--limit") == 0) {
			c->limit = value;
		} else if (strcmp(arg, "--out") == 0) {
			c->out = value;
		} else if (strcmp(arg, "--kind") == 0) {
			c->kind = value;
		} else {
			return ctl_usage_error(usage, "unknown option '%s'", arg);
		}
		if (takes_value)
			i++;
	}
	return 0;
}

/* ---- Requests ---- */

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	return buf_append(arg, data, size * n) == 0 ? size * n : 0;
}

/* Appends @s percent-encoded (for a path segment or a query value). */
void ctl_encode(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch) != NULL) {
			buf_append(out, &ch, 1);
		} else {
			char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};

			buf_append(out, esc, 3);
		}
	}
}

/* One request: @method @path (already encoded) with @body (NULL: none). On success *out
 * holds the JSON answer (or NULL if it was not JSON) and *status the HTTP status. A
 * failure to talk to the node is reported on stderr and returns CTL_EXIT_UNREACHABLE. */
static int request(struct ctl *c, const char *method, const char *path, json_t *body, long *status,
		   json_t **out)
{
	struct buf url = BUF_INIT, answer = BUF_INIT;
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", *text = NULL;
	CURL *curl = curl_easy_init();
	CURLcode rc;
	int rv = 0;

	*out = NULL;
	if (curl == NULL) {
		fprintf(stderr, "kmipctl: cannot start libcurl\n");
		return CTL_EXIT_FAILED;
	}
	buf_printf(&url, "%s%s", c->endpoint, path);
	buf_append(&url, "", 1);
	curl_easy_setopt(curl, CURLOPT_URL, (char *)url.data);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	if (c->ca[0] != '\0')
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca);
	if (c->cert[0] != '\0')
		curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
	if (c->key[0] != '\0')
		curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
	headers = curl_slist_append(headers, "Accept: application/json");
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text != NULL ? text : "");
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		fprintf(stderr, "kmipctl: %s %s: %s\n", method, (char *)url.data,
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
		rv = CTL_EXIT_UNREACHABLE;
	} else {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
		*out = json_loadb((const char *)answer.data, answer.len, 0, NULL);
		if (*out == NULL && c->json)
			fwrite(answer.data, 1, answer.len, stdout);
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	free(text);
	buf_free(&url);
	buf_free(&answer);
	return rv;
}

/* Reports a refused request; returns the exit status for it. */
static int refused(long status, json_t *answer)
{
	const char *message = json_string_value(json_object_get(answer, "error"));

	fprintf(stderr, "kmipctl: %s (HTTP %ld)\n", message ? message : "the node refused it",
		status);
	return status == 404 ? CTL_EXIT_NOT_FOUND : CTL_EXIT_FAILED;
}

/* Sends the request and prints the answer as JSON when --json; returns the exit status,
 * and the answer in *out for a table when the request succeeded (caller frees). */
int ctl_call(struct ctl *c, const char *method, const char *path, json_t *body, json_t **out)
{
	long status = 0;
	json_t *answer;
	int rv = request(c, method, path, body, &status, &answer);

	*out = NULL;
	if (rv != 0)
		return rv;
	if (status >= 400) {
		rv = refused(status, answer);
		json_decref(answer);
		return rv;
	}
	if (answer == NULL) {
		fprintf(stderr, "kmipctl: the node's answer is not JSON (HTTP %ld)\n", status);
		return CTL_EXIT_FAILED;
	}
	if (c->json) {
		json_dumpf(answer, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	}
	*out = answer;
	return 0;
}

/* "/v1/tenants/TENANT" + @rest + (@uid if not NULL), encoded; NUL-terminated unless
 * @open (query parameters follow). */
void ctl_tenant_path(struct buf *path, const char *tenant, const char *rest, const char *uid,
		     bool open)
{
	buf_printf(path, "/v1/tenants/");
	ctl_encode(path, tenant);
	buf_printf(path, "%s", rest);
	if (uid != NULL)
		ctl_encode(path, uid);
	if (!open)
		buf_append(path, "", 1);
}

const char *ctl_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* ---- tenant ---- */

static void print_tenant_row(json_t *t)
{
	printf("%-24s %-10s %10lld  %s\n", ctl_str(t, "name"), ctl_str(t, "provider"),
	       (long long)json_integer_value(json_object_get(t, "objects")), ctl_str(t, "created"));
}

/* POST {} to /v1/tenants/NAME@action for the tenant in c->args[1]. */
static int tenant_action(struct ctl *c, struct buf *path, const char *action, json_t **answer)
{
	json_t *body = json_object();
	int rv;

	ctl_tenant_path(path, c->args[1], action, NULL, false);
	rv = ctl_call(c, "POST", (char *)path->data, body, answer);
	json_decref(body);
	return rv;
}

static int tenant_command(const char *data_dir, int argc, char **argv)
{
	struct ctl c;
	struct buf path = BUF_INIT;
	json_t *answer = NULL;
	const char *sub;
	int rv = ctl_parse(&c, data_dir, usage_tenant, argc, argv);

	if (rv != 0)
		return rv;
	if (c.nargs == 0)
		return ctl_usage_error(usage_tenant, "tenant: which subcommand?");
	sub = c.args[0];
	if (strcmp(sub, "list") == 0 && c.nargs == 1) {
		rv = ctl_call(&c, "GET", "/v1/tenants", NULL, &answer);
		if (rv == 0 && !c.json) {
			size_t i;
			json_t *t;

			printf("%-24s %-10s %10s  %s\n", "TENANT", "PROVIDER", "OBJECTS",
			       "CREATED");
			json_array_foreach(json_object_get(answer, "tenants"), i, t)
				print_tenant_row(t);
		}
	} else if (strcmp(sub, "create") == 0 && c.nargs == 2) {
		json_t *body = json_pack("{s:s, s:s}", "name", c.args[1], "provider",
					 c.provider != NULL ? c.provider : "local");

		if (c.root_key != NULL)
			json_object_set_new(body, "root_key_id", json_string(c.root_key));

		rv = ctl_call(&c, "POST", "/v1/tenants", body, &answer);
		json_decref(body);
		if (rv == 0 && !c.json)
			printf("tenant %s created (provider %s)\n", ctl_str(answer, "name"),
			       ctl_str(answer, "provider"));
	} else if (strcmp(sub, "show") == 0 && c.nargs == 2) {
		ctl_tenant_path(&path, c.args[1], "", NULL, false);
		rv = ctl_call(&c, "GET", (char *)path.data, NULL, &answer);
		if (rv == 0 && !c.json) {
			json_t *kek = json_object_get(answer, "kek");
			const char *state;
			json_t *n;

			printf("tenant           %s\n", ctl_str(answer, "name"));
			printf("provider         %s %s\n", ctl_str(answer, "provider"),
			       ctl_str(answer, "root_key_id"));
			printf("created          %s\n", ctl_str(answer, "created"));
			printf("KEK              version %lld, %s on this node\n",
			       (long long)json_integer_value(json_object_get(kek, "version")),
			       ctl_str(kek, "state"));
			if (json_object_get(kek, "retiring_version") != NULL)
				printf("                 version %lld retiring: objects are being "
				       "re-sealed\n",
				       (long long)json_integer_value(
					       json_object_get(kek, "retiring_version")));
			if (json_is_false(json_object_get(kek, "provider_reachable")))
				printf("                 %s does not answer\n",
				       ctl_str(answer, "provider"));
			if (json_object_get(kek, "reason") != NULL)
				printf("                 since %s: %s\n", ctl_str(kek, "since"),
				       ctl_str(kek, "reason"));
			printf("objects          %lld\n",
			       (long long)json_integer_value(json_object_get(answer, "objects")));
			json_object_foreach(json_object_get(answer, "states"), state, n)
				printf("  %-14s %lld\n", state, (long long)json_integer_value(n));
		}
	} else if (strcmp(sub, "root-key") == 0 && c.nargs == 2) {
		ctl_tenant_path(&path, c.args[1], "/root-key", NULL, false);
		rv = ctl_call(&c, "GET", (char *)path.data, NULL, &answer);
		if (rv == 0 && !c.json)
			printf("tenant %s: %s root key %s is %s (state %lld), version %s\n",
			       c.args[1], ctl_str(answer, "provider"),
			       ctl_str(answer, "root_key_id"), ctl_str(answer, "state_name"),
			       (long long)json_integer_value(json_object_get(answer, "state")),
			       ctl_str(answer, "key_version"));
	} else if (strcmp(sub, "rewrap") == 0 && c.nargs == 2) {
		rv = tenant_action(&c, &path, "/rewrap", &answer);
		if (rv == 0 && !c.json)
			printf("tenant %s: its key-encryption key is wrapped under the root key's "
			       "current version\n",
			       c.args[1]);
	} else if (strcmp(sub, "rotate-kek") == 0 && c.nargs == 2) {
		rv = tenant_action(&c, &path, "/rotate-kek", &answer);
		if (rv == 0 && !c.json)
			printf("tenant %s: key-encryption key version %lld is current; version "
			       "%lld "
			       "is retired once the leader has re-sealed every object under the "
			       "new "
			       "one\n",
			       c.args[1],
			       (long long)json_integer_value(
				       json_object_get(answer, "kek_version")),
			       (long long)json_integer_value(
				       json_object_get(answer, "retiring_version")));
	} else if (strcmp(sub, "delete") == 0 && c.nargs == 2) {
		json_t *body;

		if (!c.destroy_confirmed)
			return ctl_usage_error(
				usage_tenant,
				"deleting tenant %s destroys all of its keys on every "
				"node, for good: add --destroy-all-keys to confirm",
				c.args[1]);
		body = json_pack("{s:s}", "confirm", c.args[1]);
		ctl_tenant_path(&path, c.args[1], "", NULL, false);
		rv = ctl_call(&c, "DELETE", (char *)path.data, body, &answer);
		json_decref(body);
		if (rv == 0 && !c.json)
			printf("tenant %s deleted: %lld object(s) destroyed\n", c.args[1],
			       (long long)json_integer_value(
				       json_object_get(answer, "objects_destroyed")));
	} else {
		return ctl_usage_error(usage_tenant, "tenant %s: wrong arguments", sub);
	}
	json_decref(answer);
	buf_free(&path);
	return rv;
}

/* ---- object ---- */

static void print_object_row(json_t *o)
{
	json_t *custom = json_object_get(o, "custom");
	const char *name = json_string_value(json_object_get(custom, "x-Name"));

	printf("%-36s  %-14s %-12s %-20s %s\n", ctl_str(o, "uid"), ctl_str(o, "type"),
	       ctl_str(o, "state"), ctl_str(o, "initial_date"), name != NULL ? name : "");
}

static void query_param(struct buf *path, bool *first, const char *name, const char *value)
{
	if (value == NULL)
		return;
	buf_printf(path, "%c%s=", *first ? '?' : '&', name);
	ctl_encode(path, value);
	*first = false;
}

static int object_command(const char *data_dir, int argc, char **argv)
{
	struct ctl c;
	json_t *answer = NULL;
	const char *sub;
	int rv = ctl_parse(&c, data_dir, usage_object, argc, argv);

	if (rv != 0)
		return rv;
	if (c.nargs == 0)
		return ctl_usage_error(usage_object, "object: which subcommand?");
	sub = c.args[0];
	if (strcmp(sub, "list") == 0 && c.nargs == 2) {
		const char *after = NULL;
		char next[64] = "";
		bool header = !c.json;

		do {
			struct buf path = BUF_INIT;
			bool first = true;
			size_t i;
			json_t *o;

			ctl_tenant_path(&path, c.args[1], "/objects", NULL, true);
			query_param(&path, &first, "state", c.state);
			query_param(&path, &first, "type", c.type);
			query_param(&path, &first, "attribute", c.attribute);
			query_param(&path, &first, "limit", c.limit);
			query_param(&path, &first, "after", after);
			buf_append(&path, "", 1);
			rv = ctl_call(&c, "GET", (char *)path.data, NULL, &answer);
			buf_free(&path);
			if (rv != 0)
				break;
			if (header) {
				printf("%-36s  %-14s %-12s %-20s %s\n", "UID", "TYPE", "STATE",
				       "CREATED", "x-Name");
				header = false;
			}
			if (!c.json)
				json_array_foreach(json_object_get(answer, "objects"), i, o)
					print_object_row(o);
			snprintf(next, sizeof(next), "%s", ctl_str(answer, "next"));
			after = next[0] != '\0' ? next : NULL;
			if (after != NULL && !c.all && !c.json)
				printf("(more: kmipctl object list %s --all)\n", c.args[1]);
			json_decref(answer);
			answer = NULL;
		} while (after != NULL && c.all);
	} else if (strcmp(sub, "show") == 0 && c.nargs == 3) {
		struct buf path = BUF_INIT;

		ctl_tenant_path(&path, c.args[1], "/objects/", c.args[2], false);
		rv = ctl_call(&c, "GET", (char *)path.data, NULL, &answer);
		buf_free(&path);
		if (rv == 0 && !c.json) {
			static const char *const dates[] = {
				"initial_date",	   "activation_date", "deactivation_date",
				"compromise_date", "destroy_date",    "last_change_date"};
			size_t i;
			json_t *a;

			printf("uid              %s\n", ctl_str(answer, "uid"));
			printf("type             %s\n", ctl_str(answer, "type"));
			printf("state            %s\n", ctl_str(answer, "state"));
			for (i = 0; i < sizeof(dates) / sizeof(dates[0]); i++)
				if (json_is_string(json_object_get(answer, dates[i])))
					printf("%-16s %s\n", dates[i], ctl_str(answer, dates[i]));
			printf("attributes\n");
			json_array_foreach(json_object_get(answer, "attributes"), i, a)
			{
				char *value = json_dumps(json_object_get(a, "value"),
							 JSON_ENCODE_ANY | JSON_COMPACT);

				printf("  %s", ctl_str(a, "name"));
				if (json_integer_value(json_object_get(a, "index")) > 0)
					printf(" [%lld]", (long long)json_integer_value(
								  json_object_get(a, "index")));
				printf(": %s\n", value != NULL ? value : "?");
				free(value);
			}
		}
	} else {
		return ctl_usage_error(usage_object, "object %s: wrong arguments", sub);
	}
	json_decref(answer);
	return rv;
}

/* ---- issue-admin ---- */

static int issue_admin(const char *data_dir, int argc, char **argv)
{
	const char *name = NULL, *out = NULL;
	char pki[PATH], cert[PATH + 80], key[PATH + 80], errmsg[512];
	int rv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_issue_admin, stdout);
			return 0;
		}
		if (i + 1 >= argc ||
		    (strcmp(argv[i], "--name") != 0 && strcmp(argv[i], "--out") != 0))
			return ctl_usage_error(usage_issue_admin, "issue-admin: unexpected '%s'",
					       argv[i]);
		if (strcmp(argv[i], "--name") == 0)
			name = argv[++i];
		else
			out = argv[++i];
	}
	if (data_dir == NULL || name == NULL || out == NULL)
		return ctl_usage_error(
			usage_issue_admin,
			"issue-admin: --data-dir, --name and --out are all required");
	if (mkdir(out, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kmipctl issue-admin: creating %s: %s\n", out, strerror(errno));
		return CTL_EXIT_FAILED;
	}
	snprintf(pki, sizeof(pki), "%s/pki", data_dir);
	snprintf(cert, sizeof(cert), "%s/%s.pem", out, name);
	snprintf(key, sizeof(key), "%s/%s-key.pem", out, name);
	rv = pki_issue_admin(pki, name, cert, key, errmsg, sizeof(errmsg));
	if (rv != 0) {
		fprintf(stderr, "kmipctl issue-admin: %s\n", errmsg);
		return CTL_EXIT_FAILED;
	}
	printf("%s\n%s\n", cert, key);
	return 0;
}

int ctl_admin_command(const char *data_dir, int argc, char **argv)
{
	int rv;

	if (strcmp(argv[0], "issue-admin") == 0)
		return issue_admin(data_dir, argc, argv);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(argv[0], "tenant") == 0)
		rv = tenant_command(data_dir, argc, argv);
	else if (strcmp(argv[0], "client") == 0)
		rv = ctl_client_command(data_dir, argc, argv);
	else if (strcmp(argv[0], "pki") == 0)
		rv = ctl_pki_command(data_dir, argc, argv);
	else if (strcmp(argv[0], "cluster") == 0)
		rv = ctl_cluster_command(data_dir, argc, argv);
	else
		rv = object_command(data_dir, argc, argv);
	curl_global_cleanup();
	return rv;
}
