/* Which client a KMIP client certificate is (see include/kmipd/trust.h). */
#include "kmipd/trust.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "kmipd/arena.h"
#include "kmipd/error.h"
#include "kmipd/fsutil.h"

const char *trust_path_name(enum trust_path path)
{
	switch (path) {
	case TRUST_CLUSTER_CA:
		return "cluster-ca";
	case TRUST_PINNED:
		return "pinned";
	case TRUST_ISSUED:
		return "issued";
	case TRUST_TENANT_CA:
		return "tenant-ca";
	}
	return "?";
}

/* The SSL_CTX ex_data slot holding the store (trust_install). */
static int store_index = -1;

int trust_name_hash(const X509_NAME *name, uint8_t out[32])
{
	const unsigned char *der;
	size_t len;
	unsigned int n = 0;

	if (X509_NAME_get0_der(name, &der, &len) != 1 ||
	    EVP_Digest(der, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) {
		ERR_clear_error();
		return KMIPD_ECRYPTO;
	}
	return 0;
}

static int64_t asn1_unix_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

int trust_cert_info(X509 *cert, struct trust_cert_info *info)
{
	memset(info, 0, sizeof(*info));
	if (pki_cert_fingerprint(cert, info->fingerprint) != 0 ||
	    trust_name_hash(X509_get_subject_name(cert), info->subject_hash) != 0)
		return KMIPD_ECRYPTO;
	X509_NAME_oneline(X509_get_subject_name(cert), info->subject, sizeof(info->subject));
	X509_NAME_oneline(X509_get_issuer_name(cert), info->issuer, sizeof(info->issuer));
	info->not_before = asn1_unix_time(X509_get0_notBefore(cert));
	info->not_after = asn1_unix_time(X509_get0_notAfter(cert));
	uint32_t flags = X509_get_extension_flags(cert);
	info->is_ca = (flags & EXFLAG_CA) != 0;
	info->signs_certs = info->is_ca && (flags & EXFLAG_KUSAGE) != 0 &&
			    (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) != 0;
	info->self_signed = X509_check_issued(cert, cert) == X509_V_OK;
	ERR_clear_error();
	return 0;
}

/* True if @cert is valid now (its dates; the signature is checked elsewhere). */
static bool in_date(X509 *cert)
{
	return X509_cmp_current_time(X509_get0_notBefore(cert)) < 0 &&
	       X509_cmp_current_time(X509_get0_notAfter(cert)) > 0;
}

/* Verifies @leaf (with the peer's @chain, may be NULL) against @anchors, which may be a
 * CA that is not a root (X509_V_FLAG_PARTIAL_CHAIN). True if it verifies for client
 * authentication. */
static bool chains_to(X509_STORE *anchors, X509 *leaf, STACK_OF(X509) * chain, bool partial)
{
	X509_STORE_CTX *x = X509_STORE_CTX_new();
	bool ok = false;

	if (x != NULL && X509_STORE_CTX_init(x, anchors, leaf, chain) == 1) {
		X509_STORE_CTX_set_purpose(x, X509_PURPOSE_SSL_CLIENT);
		if (partial)
			X509_STORE_CTX_set_flags(x, X509_V_FLAG_PARTIAL_CHAIN);
		ok = X509_verify_cert(x) == 1;
	}
	X509_STORE_CTX_free(x);
	ERR_clear_error();
	return ok;
}

struct issuer_search {
	X509 *leaf;
	STACK_OF(X509) * chain;
	const struct store_cert *found; /* copied out below, the arena is reset per record */
	struct store_cert match;
};

/* Does the CA certificate @ca (a record) issue issuer_search.leaf? */
static int try_issuer(const struct store_cert *ca, void *arg)
{
	struct issuer_search *s = arg;
	const unsigned char *p = ca->der;
	X509 *cert = d2i_X509(NULL, &p, (long)ca->der_len);
	X509_STORE *anchors = X509_STORE_new();
	bool ok = false;

	if (cert != NULL && anchors != NULL && X509_STORE_add_cert(anchors, cert) == 1)
		ok = chains_to(anchors, s->leaf, s->chain, true);
	X509_STORE_free(anchors);
	X509_free(cert);
	ERR_clear_error();
	if (!ok)
		return 0;
	s->match = *ca;
	s->match.der = NULL; /* not needed past this record */
	s->found = &s->match;
	return 1;
}

/* The records' answer for @leaf: 0 and @id (pinned, issued or tenant CA), KMIPD_ENOT_FOUND
 * when no record speaks for it, KMIPD_EPERMISSION when one refuses it. */
static int lookup(struct store *store, X509 *leaf, STACK_OF(X509) * chain,
		  struct trust_identity *id, char *why, size_t whylen)
{
	struct issuer_search search = {leaf, chain, NULL, {{0}}};
	struct store_txn *txn;
	struct store_cert rec;
	struct arena arena;
	uint8_t issuer_hash[32];
	int rc;

	memset(id, 0, sizeof(*id));
	if (pki_cert_fingerprint(leaf, id->fingerprint) != 0)
		return KMIPD_ECRYPTO;
	rc = store_txn_begin(store, false, &txn);
	if (rc != 0)
		return rc;
	arena_init(&arena, 4096, 0);
	rc = store_cert_get(txn, id->fingerprint, &arena, &rec);
	if (rc == 0 && rec.deleted != 0) {
		errmsgf(why, whylen, "certificate %s was deleted", id->fingerprint);
		rc = KMIPD_EPERMISSION;
	} else if (rc == 0 && rec.kind != STORE_CERT_CA) {
		id->path = rec.kind == STORE_CERT_PINNED ? TRUST_PINNED : TRUST_ISSUED;
		snprintf(id->tenant, sizeof(id->tenant), "%s", rec.tenant);
		snprintf(id->client, sizeof(id->client), "%s", rec.client);
		memcpy(id->trusted_by, id->fingerprint, sizeof(id->trusted_by));
		if (!in_date(leaf)) {
			errmsgf(why, whylen, "certificate %s is expired or not yet valid",
				id->fingerprint);
			rc = KMIPD_EPERMISSION;
		}
	} else if (rc == 0 || rc == KMIPD_ENOT_FOUND) {
		/* Not recorded itself (or recorded as a CA): is its issuer a tenant's CA? */
		rc = trust_name_hash(X509_get_issuer_name(leaf), issuer_hash);
		if (rc == 0)
			rc = store_cert_issuer_foreach(txn, issuer_hash, &arena, try_issuer,
						       &search);
		if (rc == 1 || (rc == 0 && search.found != NULL)) {
			id->path = TRUST_TENANT_CA;
			snprintf(id->tenant, sizeof(id->tenant), "%s", search.match.tenant);
			snprintf(id->client, sizeof(id->client), "%s", search.match.client);
			memcpy(id->trusted_by, search.match.fingerprint, sizeof(id->trusted_by));
			rc = 0;
		} else if (rc == 0) {
			rc = KMIPD_ENOT_FOUND;
		}
	}
	store_txn_abort(txn);
	arena_free(&arena);
	return rc;
}

/* OpenSSL could not verify the client's certificate against the cluster CA: admit it if
 * a record speaks for it. Called once per problem found; each asks the records again. */
static int verify_callback(int ok, X509_STORE_CTX *x)
{
	SSL *ssl;
	struct store *store;
	struct trust_identity id;

	if (ok)
		return 1;
	ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	store = ssl != NULL ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), store_index) : NULL;
	if (store == NULL)
		return 0;
	if (lookup(store, X509_STORE_CTX_get0_cert(x), X509_STORE_CTX_get0_untrusted(x), &id, NULL,
		   0) != 0)
		return 0;
	X509_STORE_CTX_set_error(x, X509_V_OK);
	return 1;
}

int trust_install(SSL_CTX *ctx, struct store *store)
{
	if (store_index < 0)
		store_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (store_index < 0 || SSL_CTX_set_ex_data(ctx, store_index, store) != 1) {
		ERR_clear_error();
		return KMIPD_ECRYPTO;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_callback);
	return 0;
}

int trust_identify(SSL *ssl, struct store *store, struct trust_identity *id, char *why,
		   size_t whylen)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	int rc;

	memset(id, 0, sizeof(*id));
	if (leaf == NULL) {
		errmsgf(why, whylen, "no client certificate");
		return KMIPD_EPERMISSION;
	}
	rc = lookup(store, leaf, chain, id, why, whylen);
	if (rc != KMIPD_ENOT_FOUND)
		return rc;

	/* No record: the cluster CA's word, with the names in its URI. */
	if (!chains_to(SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)), leaf, chain, false)) {
		errmsgf(why, whylen,
			"certificate %s is not issued by the cluster CA nor added "
			"for a client",
			id->fingerprint);
		return KMIPD_EPERMISSION;
	}
	if (pki_cert_identity(leaf, id->tenant, id->client) != 0) {
		errmsgf(why, whylen, "certificate %s names no kmipd tenant and client",
			id->fingerprint);
		return KMIPD_EPERMISSION;
	}
	id->path = TRUST_CLUSTER_CA;
	memcpy(id->trusted_by, id->fingerprint, sizeof(id->trusted_by));
	return 0;
}
