/* kmipctl client ... and kmipctl pki ...: a tenant's client certificates, and the cluster's
 * CA and server chain, through the admin API (src/admin/clients.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "kmipd/ctl.h"

static const char usage_client[] =
	"usage: kmipctl client list TENANT\n"
	"       kmipctl client show TENANT CLIENT\n"
	"       kmipctl client add TENANT CLIENT CERT.pem [--kind pinned|ca]\n"
	"       kmipctl client issue TENANT CLIENT --out DIR\n"
	"       kmipctl client sign-csr TENANT CLIENT REQUEST.csr [--out FILE]\n"
	"       kmipctl client download TENANT SHA256 [--out FILE]\n"
	"       kmipctl client delete TENANT SHA256\n"
	"\n"
	"The certificates a tenant's KMIP clients connect with.\n"
	"  add       trusts a certificate: a client's own (pinned: vCenter's self-signed\n"
	"            certificate) or a CA's (every certificate it issues is that client:\n"
	"            vCenter's VMCA). One whose key usage includes certificate signing is\n"
	"            taken for a CA unless --kind says otherwise. A file with several\n"
	"            certificates adds each.\n"
	"  issue     makes a key and a certificate from the cluster CA and writes\n"
	"            DIR/CLIENT.pem, DIR/CLIENT-key.pem (0600) and DIR/ca.pem (vCenter: \"KMS\n"
	"            certificate and private key\"). The key is kept nowhere else.\n"
	"  sign-csr  has the cluster CA sign a request (vCenter: \"New Certificate Signing\n"
	"            Request\") and writes the certificate to FILE or standard output.\n"
	"  delete    stops trusting a certificate at once on every node and closes the\n"
	"            connections made with it; the tenant's keys stay.\n"
	"To rotate a client's certificate, add (or issue) the new one, move the client to it,\n"
	"then delete the old one. Certificates are named by their SHA-256 fingerprint, as\n"
	"'list' shows it.\n"
	"\n";

static const char usage_pki[] =
	"usage: kmipctl pki ca [--out FILE]\n"
	"       kmipctl pki server [--out FILE]\n"
	"\n"
	"Exports the cluster CA certificate, or the node's server certificate chain, as PEM\n"
	"(vCenter: \"Upload KMS certificate\" wants the CA).\n"
	"\n";

/* Writes @text to @path (NULL: standard output); @mode for a new file. */
static int write_text(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd;

	if (path == NULL) {
		fputs(text, stdout);
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		fprintf(stderr, "kmipctl: cannot create %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? " (refusing to overwrite it)" : "");
		return CTL_EXIT_FAILED;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		fprintf(stderr, "kmipctl: writing %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return CTL_EXIT_FAILED;
	}
	close(fd);
	return 0;
}

/* Reads the file @path into @out, NUL-terminated. */
static int read_text(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "r");
	char chunk[8192];
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "kmipctl: cannot read %s: %s\n", path, strerror(errno));
		return CTL_EXIT_FAILED;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
	buf_append(out, "", 1);
	return 0;
}

static void print_cert_row(json_t *cert)
{
	printf("  %s  %-7s %-20s %5lldd  %s\n", ctl_str(cert, "fingerprint"), ctl_str(cert, "kind"),
	       ctl_str(cert, "not_after"),
	       (long long)json_integer_value(json_object_get(cert, "expires_in_days")),
	       ctl_str(cert, "subject"));
}

static void print_client(json_t *client)
{
	size_t i;
	json_t *cert;

	printf("%s\n", ctl_str(client, "client"));
	json_array_foreach(json_object_get(client, "certificates"), i, cert) print_cert_row(cert);
}

/* Adds every certificate of the PEM file @file for @client, one request each. */
static int add(struct ctl *c, const char *tenant, const char *client, const char *file)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	struct buf text = BUF_INIT, path = BUF_INIT;
	const char *at;
	int rv = read_text(file, &text), added = 0;

	if (rv != 0)
		return rv;
	if (strstr((char *)text.data, "PRIVATE KEY") != NULL) {
		fprintf(stderr, "kmipctl: %s holds a private key: give the certificate only\n",
			file);
		buf_free(&text);
		return CTL_EXIT_USAGE;
	}
	ctl_tenant_path(&path, tenant, "/clients", NULL, false);
	for (at = strstr((char *)text.data, begin); at != NULL && rv == 0; at = strstr(at, begin)) {
		const char *stop = strstr(at, end);
		json_t *body, *answer = NULL;
		char *pem;

		if (stop == NULL)
			break;
		stop += sizeof(end) - 1;
		pem = strndup(at, (size_t)(stop - at));
		body = json_pack("{s:s, s:s+}", "client", client, "certificate", pem, "\n");
		if (c->kind != NULL)
			json_object_set_new(body, "kind", json_string(c->kind));
		rv = ctl_call(c, "POST", (char *)path.data, body, &answer);
		if (rv == 0 && !c->json)
			printf("%s certificate %s added for client %s of tenant %s\n",
			       ctl_str(answer, "kind"), ctl_str(answer, "fingerprint"), client,
			       tenant);
		added += rv == 0;
		json_decref(answer);
		json_decref(body);
		free(pem);
		at = stop;
	}
	if (rv == 0 && added == 0) {
		fprintf(stderr, "kmipctl: %s holds no PEM certificate (%s)\n", file, begin);
		rv = CTL_EXIT_USAGE;
	}
	buf_free(&path);
	buf_free(&text);
	return rv;
}

/* Writes the files of an issued certificate into directory @dir. */
static int write_issued(json_t *answer, const char *dir, const char *client)
{
	char cert[PATH + 80], key[PATH + 80], ca[PATH + 80];
	int rv;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kmipctl: creating %s: %s\n", dir, strerror(errno));
		return CTL_EXIT_FAILED;
	}
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, client);
	snprintf(key, sizeof(key), "%s/%s-key.pem", dir, client);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	rv = write_text(key, ctl_str(answer, "private_key"), 0600);
	if (rv == 0)
		rv = write_text(cert, ctl_str(answer, "certificate"), 0644);
	if (rv == 0 && access(ca, F_OK) != 0)
		rv = write_text(ca, ctl_str(answer, "ca"), 0644);
	if (rv == 0)
		printf("certificate %s issued for client %s\n%s\n%s\n%s\n",
		       ctl_str(answer, "fingerprint"), client, cert, key, ca);
	return rv;
}

static int client_subcommand(struct ctl *c, const char *sub)
{
	struct buf path = BUF_INIT;
	json_t *answer = NULL, *body = NULL;
	int rv;

	if (strcmp(sub, "list") == 0 && c->nargs == 2) {
		ctl_tenant_path(&path, c->args[1], "/clients", NULL, false);
		rv = ctl_call(c, "GET", (char *)path.data, NULL, &answer);
		if (rv == 0 && !c->json) {
			size_t i;
			json_t *client;

			printf("CLIENT\n  %-64s  %-7s %-20s %6s  %s\n", "SHA-256", "KIND",
			       "EXPIRES", "DAYS", "SUBJECT");
			json_array_foreach(json_object_get(answer, "clients"), i, client)
				print_client(client);
		}
	} else if (strcmp(sub, "show") == 0 && c->nargs == 3) {
		ctl_tenant_path(&path, c->args[1], "/clients/", c->args[2], false);
		rv = ctl_call(c, "GET", (char *)path.data, NULL, &answer);
		if (rv == 0 && !c->json)
			print_client(answer);
	} else if (strcmp(sub, "add") == 0 && c->nargs == 4) {
		rv = add(c, c->args[1], c->args[2], c->args[3]);
	} else if (strcmp(sub, "issue") == 0 && c->nargs == 3) {
		if (c->out == NULL)
			return ctl_usage_error(usage_client, "client issue: --out DIR is required");
		ctl_tenant_path(&path, c->args[1], "/clients/", c->args[2], true);
		buf_printf(&path, "/issue");
		buf_append(&path, "", 1);
		body = json_object();
		rv = ctl_call(c, "POST", (char *)path.data, body, &answer);
		if (rv == 0)
			rv = write_issued(answer, c->out, c->args[2]);
	} else if (strcmp(sub, "sign-csr") == 0 && c->nargs == 4) {
		struct buf csr = BUF_INIT;

		rv = read_text(c->args[3], &csr);
		if (rv != 0)
			return rv;
		ctl_tenant_path(&path, c->args[1], "/clients/", c->args[2], true);
		buf_printf(&path, "/sign");
		buf_append(&path, "", 1);
		body = json_pack("{s:s}", "csr", (char *)csr.data);
		buf_free(&csr);
		rv = ctl_call(c, "POST", (char *)path.data, body, &answer);
		if (rv == 0 && !c->json)
			rv = write_text(c->out, ctl_str(answer, "certificate"), 0644);
		if (rv == 0 && !c->json && c->out != NULL)
			printf("certificate %s signed for client %s: %s\n",
			       ctl_str(answer, "fingerprint"), c->args[2], c->out);
	} else if (strcmp(sub, "download") == 0 && c->nargs == 3) {
		ctl_tenant_path(&path, c->args[1], "/certificates/", c->args[2], false);
		rv = ctl_call(c, "GET", (char *)path.data, NULL, &answer);
		if (rv == 0 && !c->json)
			rv = write_text(c->out, ctl_str(answer, "pem"), 0644);
	} else if (strcmp(sub, "delete") == 0 && c->nargs == 3) {
		ctl_tenant_path(&path, c->args[1], "/certificates/", c->args[2], false);
		rv = ctl_call(c, "DELETE", (char *)path.data, NULL, &answer);
		if (rv == 0 && !c->json)
			printf("certificate %s of tenant %s deleted; its connections are closed\n",
			       c->args[2], c->args[1]);
	} else {
		return ctl_usage_error(usage_client, "client %s: wrong arguments", sub);
	}
	json_decref(body);
	json_decref(answer);
	buf_free(&path);
	return rv;
}

int ctl_client_command(const char *data_dir, int argc, char **argv)
{
	struct ctl c;
	int rv = ctl_parse(&c, data_dir, usage_client, argc, argv);

	if (rv != 0)
		return rv;
	if (c.nargs == 0)
		return ctl_usage_error(usage_client, "client: which subcommand?");
	return client_subcommand(&c, c.args[0]);
}

int ctl_pki_command(const char *data_dir, int argc, char **argv)
{
	struct ctl c;
	json_t *answer = NULL;
	bool ca;
	int rv = ctl_parse(&c, data_dir, usage_pki, argc, argv);

	if (rv != 0)
		return rv;
	if (c.nargs != 1 || (strcmp(c.args[0], "ca") != 0 && strcmp(c.args[0], "server") != 0))
		return ctl_usage_error(usage_pki, "pki: 'ca' or 'server'?");
	ca = strcmp(c.args[0], "ca") == 0;
	rv = ctl_call(&c, "GET", ca ? "/v1/pki/ca" : "/v1/pki/server", NULL, &answer);
	if (rv == 0 && !c.json)
		rv = write_text(c.out, ctl_str(answer, ca ? "ca" : "chain"), 0644);
	json_decref(answer);
	return rv;
}
