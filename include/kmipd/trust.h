/* Which client a KMIP client certificate is.
 *
 * Four ways in, tried in this order, each with the key store's certificate records
 * (store_cert_*):
 *
 *   pinned   the certificate's SHA-256 is recorded for a client (vCenter's self-signed
 *            client certificate, uploaded through the admin API);
 *   issued   the same, for a certificate the cluster CA issued through the admin API (a
 *            deleted one is refused, although the CA's signature is still good);
 *   tenant CA  the certificate chains to a CA certificate recorded for a client (vCenter's
 *            VMCA): every certificate it issues is that client, whatever names it carries;
 *   cluster CA  the certificate chains to the cluster CA (tls.client_ca) and names its
 *            tenant and client in a kmipd URI (include/kmipd/pki.h).
 *
 * OpenSSL verifies against the cluster CA during the handshake; trust_install() adds a
 * verify callback that admits the first three instead when that fails. After the handshake
 * (full or resumed: a resumed session skips verification, and a record may have been
 * deleted since) trust_identify() decides again from the certificate alone, so a session
 * never outlives the record that admitted it. */
#ifndef KMIPD_TRUST_H
#define KMIPD_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kmipd/pki.h"
#include "kmipd/store.h"

enum trust_path {
	TRUST_CLUSTER_CA = 1,
	TRUST_PINNED,
	TRUST_ISSUED,
	TRUST_TENANT_CA,
};

struct trust_identity {
	enum trust_path path;
	char tenant[OBJECT_TENANT_MAX + 1];
	char client[PKI_NAME_MAX + 1];
	char fingerprint[65]; /* the client certificate's */
	/* The record that admitted it (the certificate's own, or its CA's for TRUST_TENANT_CA;
	 * for TRUST_CLUSTER_CA the certificate's fingerprint): deleting that record cuts the
	 * connection. */
	char trusted_by[65];
};

/* "cluster-ca", "pinned", "issued" or "tenant-ca". */
const char *trust_path_name(enum trust_path path);

/* Makes @ctx (the KMIP port's) admit certificates recorded in @store as well as those of
 * the cluster CA. 0 or KMIPD_ECRYPTO. */
int trust_install(SSL_CTX *ctx, struct store *store);

/* Who the peer of the finished handshake @ssl is. 0 and @id, or KMIPD_EPERMISSION with a
 * sentence in @why (no certificate, not trusted, deleted, expired, no kmipd URI) or a
 * store error. */
int trust_identify(SSL *ssl, struct store *store, struct trust_identity *id, char *why,
		   size_t whylen);

/* What the admin API needs to know of an uploaded certificate. */
struct trust_cert_info {
	char fingerprint[65];
	char subject[256];
	char issuer[256];
	int64_t not_before, not_after; /* Unix seconds */
	bool is_ca;		       /* basicConstraints CA:TRUE */
	bool signs_certs;	       /* and keyUsage says keyCertSign: certainly a CA */
	bool self_signed;
	uint8_t subject_hash[32]; /* as store_cert.subject_hash */
};

/* Describes @cert. 0 or KMIPD_ECRYPTO. */
int trust_cert_info(X509 *cert, struct trust_cert_info *info);

/* The DER of the name @name hashed as store_cert.subject_hash wants it. */
int trust_name_hash(const X509_NAME *name, uint8_t out[32]);

#endif
