/* A tenant's clients and their certificates (see include/kmipd/trust.h for how a
 * certificate admits a KMIP client):
 *
 *   GET    /v1/tenants/{t}/clients                  every client and its certificates
 *   GET    /v1/tenants/{t}/clients/{c}              one client
 *   POST   /v1/tenants/{t}/clients                  {"client", "certificate": PEM}: trust
 *                                                   one certificate, a pinned leaf or a CA
 *   POST   /v1/tenants/{t}/clients/{c}/issue        a new key and certificate from the
 *                                                   cluster CA (the key is not kept)
 *   POST   /v1/tenants/{t}/clients/{c}/sign         {"csr": PEM}: the cluster CA signs it
 *   GET    /v1/tenants/{t}/certificates/{sha256}    one certificate, with its PEM
 *   DELETE /v1/tenants/{t}/certificates/{sha256}    stop trusting it; its connections close
 *   GET    /v1/pki/ca, /v1/pki/server               the cluster CA, this node's chain (PEM)
 *
 * A second certificate added to a client is how a client's certificate is rotated: both
 * work until the old one is deleted, and the tenant's keys are the tenant's, whichever
 * certificate a client connects with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "internal.h"
#include "kmipd/command.h"
#include "kmipd/error.h"
#include "kmipd/pki.h"
#include "kmipd/store.h"
#include "kmipd/trust.h"

#define EXPIRY_WARNING_DAYS 30

static const char *kind_name(enum store_cert_kind kind)
{
	switch (kind) {
	case STORE_CERT_PINNED:
		return "pinned";
	case STORE_CERT_CA:
		return "ca";
	case STORE_CERT_ISSUED:
		return "issued";
	}
	return "unknown";
}

/* @cert (DER) as PEM text in @out. */
static int der_to_pem(const uint8_t *der, size_t len, struct buf *out)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	int rv = cert != NULL ? admin_pem_cert(cert, out) : KMIPD_ECRYPTO;

	X509_free(cert);
	ERR_clear_error();
	return rv;
}

static json_t *cert_json(const struct store_cert *rec, bool with_pem)
{
	const unsigned char *p = rec->der;
	X509 *cert = d2i_X509(NULL, &p, (long)rec->der_len);
	struct trust_cert_info info;
	json_t *out;

	if (cert == NULL || trust_cert_info(cert, &info) != 0) {
		X509_free(cert);
		ERR_clear_error();
		return json_pack("{s:s, s:s, s:s}", "fingerprint", rec->fingerprint, "client",
				 rec->client, "error", "the stored certificate does not parse");
	}
	X509_free(cert);
	out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I}", "fingerprint", rec->fingerprint,
			"client", rec->client, "kind", kind_name(rec->kind), "subject",
			info.subject, "not_before", admin_date(info.not_before), "not_after",
			admin_date(info.not_after), "added", admin_date(rec->added),
			"expires_in_days", (json_int_t)((info.not_after - time(NULL)) / 86400));
	json_object_set_new(out, "issuer", json_string(info.issuer));
	if (with_pem) {
		struct buf pem = BUF_INIT;

		if (der_to_pem(rec->der, rec->der_len, &pem) == 0)
			json_object_set_new(out, "pem", json_stringn((char *)pem.data, pem.len));
		buf_free(&pem);
	}
	return out;
}

/* ---- Reading ---- */

struct listing {
	const char *client; /* NULL: every client */
	json_t *clients;    /* client name -> array of certificates */
};

static int list_one(const struct store_cert *rec, void *arg)
{
	struct listing *l = arg;
	json_t *certs;

	if (rec->deleted != 0 || (l->client != NULL && strcmp(rec->client, l->client) != 0))
		return 0;
	certs = json_object_get(l->clients, rec->client);
	if (certs == NULL) {
		certs = json_array();
		json_object_set_new(l->clients, rec->client, certs);
	}
	json_array_append_new(certs, cert_json(rec, false));
	return 0;
}

/* The clients of tenant @tenant as [{"client", "certificates"}], in name order. */
static int list_clients(struct http_conn *c, const char *tenant, const char *client, json_t **out)
{
	struct listing l = {client, json_object()};
	struct store_txn *txn;
	struct store_tenant t;
	struct arena records;
	const char *name;
	json_t *certs, *array;
	int rv;

	rv = store_txn_begin(c->admin->config.store, false, &txn);
	if (rv != 0) {
		json_decref(l.clients);
		http_error(c, 503, "the key store cannot be read");
		return rv;
	}
	if (!admin_find_tenant(c, txn, tenant, &t)) {
		store_txn_abort(txn);
		json_decref(l.clients);
		return KMIPD_ENOT_FOUND;
	}
	arena_init(&records, 8192, 0);
	rv = store_cert_foreach(txn, t.name, &records, list_one, &l);
	arena_free(&records);
	store_txn_abort(txn);
	if (rv != 0) {
		json_decref(l.clients);
		http_error(c, 500, "reading the certificates failed: %s", kmipd_strerror(rv));
		return rv;
	}
	array = json_array();
	json_object_foreach(l.clients, name, certs) json_array_append_new(
		array, json_pack("{s:s, s:O}", "client", name, "certificates", certs));
	json_decref(l.clients);
	*out = array;
	return 0;
}

void handle_client_list(struct http_conn *c, const char **params)
{
	json_t *clients;

	if (list_clients(c, params[0], NULL, &clients) == 0)
		http_json(c, 200, json_pack("{s:s, s:o}", "tenant", params[0], "clients", clients));
}

void handle_client_show(struct http_conn *c, const char **params)
{
	json_t *clients;

	if (list_clients(c, params[0], params[1], &clients) != 0)
		return;
	if (json_array_size(clients) == 0) {
		json_decref(clients);
		if (!admin_catch_up(c))
			http_error(c, 404, "tenant %s has no client %s with a certificate",
				   params[0], params[1]);
		return;
	}
	http_json(c, 200, json_incref(json_array_get(clients, 0)));
	json_decref(clients);
}

/* Reads certificate @fp of @tenant; false after answering 404 (or starting a catch-up). */
static bool find_cert(struct http_conn *c, const char *tenant, const char *fp,
		      struct store_cert *rec)
{
	struct store_txn *txn;
	bool found;

	if (store_txn_begin(c->admin->config.store, false, &txn) != 0) {
		http_error(c, 503, "the key store cannot be read");
		return false;
	}
	found = store_cert_get(txn, fp, &c->arena, rec) == 0 && rec->deleted == 0 &&
		strcmp(rec->tenant, tenant) == 0;
	store_txn_abort(txn);
	if (!found && !admin_catch_up(c))
		http_error(c, 404,
			   "tenant %s has no certificate with SHA-256 fingerprint %s (64 hex "
			   "digits, as 'kmipctl client list' shows)",
			   tenant, fp);
	return found;
}

void handle_cert_show(struct http_conn *c, const char **params)
{
	struct store_cert rec;

	if (find_cert(c, params[0], params[1], &rec))
		http_json(c, 200, cert_json(&rec, true));
}

/* ---- Changes ---- */

static void cert_added(struct http_conn *c, const struct command *cmd,
		       const struct command_result *result)
{
	const struct admin_issued *issued = c->pending;
	json_t *body =
		json_pack("{s:s, s:s, s:s, s:s}", "tenant", cmd->tenant, "client", cmd->cert.client,
			  "fingerprint", cmd->cert.fingerprint, "kind", kind_name(cmd->cert.kind));

	(void)result;
	if (issued != NULL) {
		json_object_set_new(body, "certificate", json_string(issued->cert_pem));
		json_object_set_new(body, "ca", json_string(issued->ca_pem));
		if (issued->key_pem != NULL)
			json_object_set_new(body, "private_key", json_string(issued->key_pem));
	}
	http_json(c, 201, body);
}

/* Submits COMMAND_CERT_ADD for @cert. */
static void add_cert(struct http_conn *c, const char *tenant, const char *client, X509 *cert,
		     enum store_cert_kind kind)
{
	struct trust_cert_info info;
	struct command cmd;
	unsigned char *der = NULL;
	int len;

	if (trust_cert_info(cert, &info) != 0 || (len = i2d_X509(cert, &der)) <= 0) {
		ERR_clear_error();
		http_error(c, 400, "the certificate cannot be encoded");
		return;
	}
	if ((size_t)len > STORE_CERT_DER_MAX) {
		OPENSSL_free(der);
		http_error(c, 400, "the certificate is %d bytes; at most %d are accepted", len,
			   STORE_CERT_DER_MAX);
		return;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_CERT_ADD;
	cmd.time = (int64_t)time(NULL);
	snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", tenant);
	memcpy(cmd.cert.fingerprint, info.fingerprint, sizeof(cmd.cert.fingerprint));
	snprintf(cmd.cert.client, sizeof(cmd.cert.client), "%s", client);
	cmd.cert.kind = kind;
	cmd.cert.der = der;
	cmd.cert.der_len = (size_t)len;
	if (kind == STORE_CERT_CA)
		memcpy(cmd.cert.subject_hash, info.subject_hash, sizeof(cmd.cert.subject_hash));
	admin_submit(c, &cmd, 201, cert_added);
	OPENSSL_free(der);
}

/* The certificates in PEM @text; NULL after answering 400. */
static STACK_OF(X509) * read_pem_certs(struct http_conn *c, const char *text)
{
	BIO *bio = BIO_new_mem_buf(text, -1);
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *cert;

	while (bio != NULL && certs != NULL &&
	       (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(certs, cert);
	ERR_clear_error();
	BIO_free(bio);
	if (certs == NULL || sk_X509_num(certs) == 0) {
		sk_X509_pop_free(certs, X509_free);
		http_error(c, 400,
			   "\"certificate\" holds no PEM certificate (-----BEGIN "
			   "CERTIFICATE-----)");
		return NULL;
	}
	return certs;
}

void handle_client_add(struct http_conn *c, const char **params)
{
	json_t *body = http_body_object(c);
	const char *client, *pem, *kind = NULL;
	STACK_OF(X509) * certs;
	struct trust_cert_info info;
	json_error_t err;
	X509 *cert;

	admin_audit_as(c, "add client certificate", pki_name_valid(params[0]) ? params[0] : NULL);
	if (body == NULL)
		return;
	if (json_unpack_ex(body, &err, JSON_STRICT, "{s:s, s:s, s?:s}", "client", &client,
			   "certificate", &pem, "kind", &kind) != 0) {
		http_error(c, 400,
			   "the body must be {\"client\": NAME, \"certificate\": PEM, \"kind\": "
			   "\"pinned\" or \"ca\" (optional)}: %s",
			   err.text);
		goto out;
	}
	if (kind != NULL && strcmp(kind, "pinned") != 0 && strcmp(kind, "ca") != 0) {
		http_error(c, 400,
			   "kind '%s' is neither 'pinned' (this certificate is the client) "
			   "nor 'ca' (every certificate it issues is)",
			   kind);
		goto out;
	}
	if (!pki_name_valid(client)) {
		http_error(c, 400, "client name '%s' is not 1-%d characters of A-Z a-z 0-9 . _ -",
			   client, PKI_NAME_MAX);
		goto out;
	}
	if (strstr(pem, "PRIVATE KEY") != NULL) {
		http_error(c, 400,
			   "the upload holds a private key: send the certificate only, and "
			   "treat that key as exposed");
		goto out;
	}
	certs = read_pem_certs(c, pem);
	if (certs == NULL)
		goto out;
	if (sk_X509_num(certs) != 1) {
		http_error(c, 400,
			   "the upload holds %d certificates: add them one at a time (kmipctl "
			   "client add does so for a bundle)",
			   sk_X509_num(certs));
		sk_X509_pop_free(certs, X509_free);
		goto out;
	}
	cert = sk_X509_value(certs, 0);
	if (trust_cert_info(cert, &info) != 0) {
		http_error(c, 400, "the certificate cannot be read");
	} else if (info.not_after <= time(NULL)) {
		char when[32];

		admin_date_text(info.not_after, when);
		http_error(c, 400, "the certificate %s expired on %s", info.subject, when);
	} else if (kind != NULL && strcmp(kind, "ca") == 0 && !info.is_ca) {
		http_error(c, 400,
			   "%s is not a CA certificate (basicConstraints CA:TRUE): add it "
			   "as pinned",
			   info.subject);
	} else {
		/* Unless told, a certificate is a CA if it says it signs certificates: a
		 * self-signed client certificate often says CA:TRUE and nothing more. */
		bool ca = kind != NULL ? strcmp(kind, "ca") == 0 : info.signs_certs;

		add_cert(c, params[0], client, cert, ca ? STORE_CERT_CA : STORE_CERT_PINNED);
	}
	sk_X509_pop_free(certs, X509_free);
out:
	json_decref(body);
}

/* The cluster CA and its key; false after answering. */
static bool load_ca(struct http_conn *c, X509 **ca, EVP_PKEY **key)
{
	char why[512];
	int rv = pki_ca_load(c->admin->config.ca_cert, c->admin->config.ca_key, ca, key, why,
			     sizeof(why));

	if (rv == KMIPD_ENOT_FOUND)
		http_error(c, 409,
			   "%s, so it cannot issue client certificates: ask a node that holds "
			   "the key (tls.ca_key), or issue with 'kmipctl issue' where the CA key "
			   "is and add the certificate",
			   why);
	else if (rv != 0)
		http_error(c, 500, "the cluster CA cannot be used: %s", why);
	return rv == 0;
}

/* Issues for @public_key (a CSR's) or a new key, then records the certificate. */
static void issue(struct http_conn *c, const char *tenant, const char *client, EVP_PKEY *public_key)
{
	struct admin_issued *issued = arena_zalloc(&c->arena, sizeof(*issued));
	struct store_tenant t;
	X509 *ca = NULL, *cert = NULL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	char why[512];

	if (!admin_read_tenant(c, tenant, &t))
		return;
	if (issued == NULL) {
		http_error(c, 500, "out of memory");
		return;
	}
	if (!load_ca(c, &ca, &ca_key))
		return;
	if (pki_issue_client_cert(ca, ca_key, tenant, client, public_key, &cert,
				  public_key == NULL ? &key : NULL, why, sizeof(why)) != 0) {
		http_error(c, 500, "issuing the certificate failed: %s", why);
	} else if (admin_pem(c, cert, NULL, &issued->cert_pem) != 0 ||
		   admin_pem(c, ca, NULL, &issued->ca_pem) != 0 ||
		   (key != NULL && admin_pem(c, NULL, key, &issued->key_pem) != 0)) {
		http_error(c, 500, "out of memory");
	} else {
		c->pending = issued;
		add_cert(c, tenant, client, cert, STORE_CERT_ISSUED);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
}

void handle_client_issue(struct http_conn *c, const char **params)
{
	json_t *body = http_body_object(c);

	admin_audit_as(c, "issue client certificate", pki_name_valid(params[0]) ? params[0] : NULL);
	if (body == NULL)
		return;
	if (json_object_size(body) != 0) {
		http_error(c, 400, "issuing takes no parameters: send {}");
	} else if (!pki_name_valid(params[1])) {
		http_error(c, 400, "client name '%s' is not 1-%d characters of A-Z a-z 0-9 . _ -",
			   params[1], PKI_NAME_MAX);
	} else {
		issue(c, params[0], params[1], NULL);
	}
	json_decref(body);
}

void handle_client_sign(struct http_conn *c, const char **params)
{
	json_t *body = http_body_object(c);
	const char *pem;
	json_error_t err;
	X509_REQ *csr = NULL;
	EVP_PKEY *public_key;
	BIO *bio;

	admin_audit_as(c, "sign client certificate request",
		       pki_name_valid(params[0]) ? params[0] : NULL);
	if (body == NULL)
		return;
	if (json_unpack_ex(body, &err, JSON_STRICT, "{s:s}", "csr", &pem) != 0) {
		http_error(c, 400, "the body must be {\"csr\": PEM}: %s", err.text);
		goto out;
	}
	if (!pki_name_valid(params[1])) {
		http_error(c, 400, "client name '%s' is not 1-%d characters of A-Z a-z 0-9 . _ -",
			   params[1], PKI_NAME_MAX);
		goto out;
	}
	bio = BIO_new_mem_buf(pem, -1);
	csr = bio != NULL ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	public_key = csr != NULL ? X509_REQ_get0_pubkey(csr) : NULL;
	if (csr == NULL || public_key == NULL) {
		http_error(c, 400,
			   "\"csr\" holds no PEM certificate request (-----BEGIN "
			   "CERTIFICATE REQUEST-----)");
	} else if (X509_REQ_verify(csr, public_key) != 1) {
		http_error(c, 400,
			   "the certificate request's signature does not verify: it was "
			   "altered, or not made with its key");
	} else if (EVP_PKEY_get_bits(public_key) < 2048 &&
		   EVP_PKEY_get_id(public_key) == EVP_PKEY_RSA) {
		http_error(c, 400, "the request's RSA key has %d bits; at least 2048 are needed",
			   EVP_PKEY_get_bits(public_key));
	} else {
		issue(c, params[0], params[1], public_key);
	}
	ERR_clear_error();
	X509_REQ_free(csr);
out:
	json_decref(body);
}

static void cert_deleted(struct http_conn *c, const struct command *cmd,
			 const struct command_result *result)
{
	(void)result;
	http_json(c, 200,
		  json_pack("{s:s, s:s, s:b}", "tenant", cmd->tenant, "fingerprint",
			    cmd->cert.fingerprint, "deleted", 1));
}

void handle_cert_delete(struct http_conn *c, const char **params)
{
	struct store_cert rec;
	struct command cmd;

	admin_audit_as(c, "delete client certificate",
		       pki_name_valid(params[0]) ? params[0] : NULL);
	if (!find_cert(c, params[0], params[1], &rec))
		return;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_CERT_DELETE;
	cmd.time = (int64_t)time(NULL);
	snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", rec.tenant);
	memcpy(cmd.cert.fingerprint, rec.fingerprint, sizeof(cmd.cert.fingerprint));
	admin_submit(c, &cmd, 200, cert_deleted);
}

/* ---- The server's side ---- */

/* Sends the PEM file @path (certificates only) as {@field: PEM}. */
static void send_pem_file(struct http_conn *c, const char *path, const char *field)
{
	BIO *bio = BIO_new_file(path, "r");
	struct buf pem = BUF_INIT;
	X509 *cert;
	int n = 0;

	while (bio != NULL && (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (admin_pem_cert(cert, &pem) == 0)
			n++;
		X509_free(cert);
	}
	ERR_clear_error();
	BIO_free(bio);
	if (n == 0)
		http_error(c, 500, "%s holds no certificate this node can read", path);
	else
		http_json(c, 200, json_pack("{s:s%}", field, (char *)pem.data, pem.len));
	buf_free(&pem);
}

void handle_pki_ca(struct http_conn *c, const char **params)
{
	(void)params;
	send_pem_file(c, c->admin->config.ca_cert, "ca");
}

void handle_pki_server(struct http_conn *c, const char **params)
{
	(void)params;
	send_pem_file(c, c->admin->config.server_cert, "chain");
}

/* ---- Expiry ---- */

static json_t *expiring(const char *kind, const char *what, const char *subject, int64_t not_after)
{
	int64_t days = (not_after - time(NULL)) / 86400;

	return json_pack("{s:s, s:s, s:s, s:o, s:I}", "kind", kind, "certificate", what, "subject",
			 subject, "not_after", admin_date(not_after), "days_left",
			 (json_int_t)days);
}

static void check_file(const char *path, const char *kind, json_t *warnings)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	struct trust_cert_info info;

	if (cert != NULL && trust_cert_info(cert, &info) == 0 &&
	    info.not_after - time(NULL) < EXPIRY_WARNING_DAYS * 86400)
		json_array_append_new(warnings, expiring(kind, path, info.subject, info.not_after));
	X509_free(cert);
	BIO_free(bio);
	ERR_clear_error();
}

static int check_client(const struct store_cert *rec, void *arg)
{
	const unsigned char *p = rec->der;
	X509 *cert;
	struct trust_cert_info info;
	char what[160];

	if (rec->deleted != 0)
		return 0;
	cert = d2i_X509(NULL, &p, (long)rec->der_len);
	if (cert != NULL && trust_cert_info(cert, &info) == 0 &&
	    info.not_after - time(NULL) < EXPIRY_WARNING_DAYS * 86400) {
		snprintf(what, sizeof(what), "client %s of tenant %s (%.16s...)", rec->client,
			 rec->tenant, rec->fingerprint);
		json_array_append_new(arg, expiring("client", what, info.subject, info.not_after));
	}
	X509_free(cert);
	ERR_clear_error();
	return 0;
}

json_t *admin_expiry_warnings(struct admin *admin)
{
	json_t *warnings = json_array();
	struct store_txn *txn;
	struct arena records;

	check_file(admin->config.server_cert, "server", warnings);
	check_file(admin->config.ca_cert, "ca", warnings);
	if (store_txn_begin(admin->config.store, false, &txn) == 0) {
		arena_init(&records, 8192, 0);
		store_cert_foreach(txn, NULL, &records, check_client, warnings);
		arena_free(&records);
		store_txn_abort(txn);
	}
	return warnings;
}
