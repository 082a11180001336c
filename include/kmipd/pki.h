/* The cluster's certificate authority and the identities it issues.
 *
 * Dev mode makes a CA, a server certificate and a first client certificate on first start;
 * kmipctl issues more client certificates from the same CA. A certificate issued by the CA
 * names its tenant and client in a subjectAltName URI
 *
 *     urn:kmipd:tenant:<tenant>:client:<client>
 *
 * and the server trusts the CA's word for it: that is how a client certificate maps to
 * exactly one client of one tenant without a lookup. Names are 1..64 bytes of
 * [A-Za-z0-9._-].
 *
 * Keys are RSA-2048 (the server key type vCenter is known to accept); certificates carry
 * extendedKeyUsage serverAuth and clientAuth, since missing EKUs are the most common
 * set-up failure with KMIP clients. Private key files are written with mode 0600. */
#ifndef KMIPD_PKI_H
#define KMIPD_PKI_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#define PKI_NAME_MAX 64

/* Node certificates (the server certificate of every node) carry this URI; the peer port
 * accepts only them, and the KMIP port never accepts them (they name no tenant). */
#define PKI_NODE_URI "urn:kmipd:node"

/* Paths inside a PKI directory. */
#define PKI_CA_CERT	"ca.pem"
#define PKI_CA_KEY	"ca-key.pem"
#define PKI_SERVER_CERT "server.pem"
#define PKI_SERVER_KEY	"server-key.pem"
#define PKI_CLIENT_CERT "client.pem"
#define PKI_CLIENT_KEY	"client-key.pem"
#define PKI_ADMIN_CERT	"admin.pem"
#define PKI_ADMIN_KEY	"admin-key.pem"
#define PKI_DEV_ADMIN	"dev-admin" /* the administrator dev mode makes */

/* True if @name is a valid tenant or client name. */
bool pki_name_valid(const char *name);

/* Makes sure @dir (created 0700 if missing) holds a CA, a server certificate for
 * localhost, 127.0.0.1 and ::1 (plus @extra_host if not NULL: comma-separated DNS names
 * and IP addresses) that is also the node certificate (PKI_NODE_URI),
 * a client certificate for (@tenant, @client) and an administrator's certificate
 * (PKI_ADMIN_CERT, for PKI_DEV_ADMIN). Existing files are kept, so a second
 * start reuses them. On failure a sentence naming the file and cause goes into @errmsg. */
int pki_dev_init(const char *dir, const char *extra_host, const char *tenant, const char *client,
		 char *errmsg, size_t errlen);

/* Issues a client certificate and key for (@tenant, @client) signed by the CA in @dir,
 * writing @cert_path and @key_path (0600). Refuses to overwrite existing files. */
int pki_issue_client(const char *dir, const char *tenant, const char *client, const char *cert_path,
		     const char *key_path, char *errmsg, size_t errlen);

/* Issues an administrator's certificate and key (for the admin API) for @name, signed by
 * the CA in @dir: URI urn:kmipd:admin:<name>. Refuses to overwrite existing files. */
int pki_issue_admin(const char *dir, const char *name, const char *cert_path, const char *key_path,
		    char *errmsg, size_t errlen);

/* Loads the CA certificate @cert_path and its key @key_path, to issue in memory (the
 * admin API). 0; KMIPD_ENOT_FOUND when there is no key file (this node cannot issue);
 * else an error with a sentence in @errmsg. */
int pki_ca_load(const char *cert_path, const char *key_path, X509 **ca, EVP_PKEY **ca_key,
		char *errmsg, size_t errlen);

/* Issues a client certificate for (@tenant, @client) signed by @ca: for @public_key (a
 * CSR's) when it is not NULL, else for a new RSA key returned in *@key_out. */
int pki_issue_client_cert(X509 *ca, EVP_PKEY *ca_key, const char *tenant, const char *client,
			  EVP_PKEY *public_key, X509 **cert_out, EVP_PKEY **key_out, char *errmsg,
			  size_t errlen);

/* The administrator a CA-issued certificate names (urn:kmipd:admin:<name>). 0, or
 * KMIPD_ENOT_FOUND (none, or two different ones). (The chain is already verified.) */
int pki_cert_admin(X509 *cert, char name[PKI_NAME_MAX + 1]);

/* Reads the tenant and client named by a CA-issued certificate's URI. 0, or KMIPD_ENOT_FOUND
 * if @cert carries no valid kmipd URI. (The caller has already verified the chain.) */
int pki_cert_identity(X509 *cert, char tenant[PKI_NAME_MAX + 1], char client[PKI_NAME_MAX + 1]);

/* True if @cert carries PKI_NODE_URI. (The caller has already verified the chain.) */
bool pki_cert_is_node(X509 *cert);

/* The SHA-256 fingerprint of @cert's DER encoding as 64 lower-case hex digits. */
int pki_cert_fingerprint(X509 *cert, char out[65]);

#endif
