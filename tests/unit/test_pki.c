/* The dev-mode CA and the certificates it issues: files and modes, chains, names and EKUs,
 * identities read back from client certificates, and real TLS handshakes with them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kmipd/error.h"
#include "kmipd/pki.h"
#include "slurp.h"

#define TENANT "acme"
#define CLIENT "vcenter"
#define HOST   "kms.example.com"

/* Shared by every test: one PKI directory (RSA key generation is slow) under a temp dir. */
struct fixture {
	char base[64];
	char dir[96];
	char msg[512];
};

static const char *const files[] = {PKI_CA_CERT,    PKI_CA_KEY,	     PKI_SERVER_CERT,
				    PKI_SERVER_KEY, PKI_CLIENT_CERT, PKI_CLIENT_KEY};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->base, "/tmp/kmipd-test-pki-XXXXXX");
	if (mkdtemp(f->base) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/pki", f->base);
	if (pki_dev_init(f->dir, HOST, TENANT, CLIENT, f->msg, sizeof(f->msg)) != 0) {
		fprintf(stderr, "pki_dev_init: %s\n", f->msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

typedef char path_t[256];

/* @dir/@name into @out. */
static const char *join(path_t out, const char *dir, const char *name)
{
	snprintf(out, sizeof(path_t), "%s/%s", dir, name);
	return out;
}

/* @dir/@name for immediate use: the result lives until eight more calls. */
static const char *path_in(const char *dir, const char *name)
{
	static path_t ring[8];
	static unsigned next;

	return join(ring[next++ % 8], dir, name);
}

static X509 *read_cert(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *cert;

	assert_non_null(fp);
	cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(cert);
	return cert;
}

/* X509_verify_cert() of @cert against @dir's CA alone, for TLS @purpose. */
static int verify(const char *dir, X509 *cert, int purpose)
{
	X509 *ca = read_cert(path_in(dir, PKI_CA_CERT));
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	ok = X509_verify_cert(ctx);
	if (ok != 1)
		fprintf(stderr, "verify: %s\n",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(ca);
	ERR_clear_error();
	return ok;
}

static void assert_rsa_2048_with_both_ekus(X509 *cert)
{
	EVP_PKEY *key = X509_get0_pubkey(cert);
	uint32_t xku = X509_get_extended_key_usage(cert);

	assert_non_null(key);
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(key), 2048);
	assert_true(xku & XKU_SSL_SERVER);
	assert_true(xku & XKU_SSL_CLIENT);
	assert_true(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE);
	assert_true(X509_get_key_usage(cert) & KU_KEY_ENCIPHERMENT);
	assert_int_equal(X509_get_signature_nid(cert), NID_sha256WithRSAEncryption);
	assert_non_null(X509_get0_authority_key_id(cert));
}

static void dev_init_creates_all_files(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	size_t i;

	assert_int_equal(stat(f->dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		bool is_key = strstr(files[i], "-key") != NULL;

		assert_int_equal(stat(path_in(f->dir, files[i]), &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_true(st.st_size > 0);
		assert_int_equal(st.st_mode & 0777, is_key ? 0600 : 0644);
	}
}

static void second_init_keeps_every_file(void **state)
{
	struct fixture *f = *state;
	char *before[6];
	size_t len[6], i, n;

	for (i = 0; i < 6; i++)
		before[i] = slurp(path_in(f->dir, files[i]), &len[i]);
	assert_int_equal(pki_dev_init(f->dir, HOST, TENANT, CLIENT, f->msg, sizeof(f->msg)), 0);
	for (i = 0; i < 6; i++) {
		char *after = slurp(path_in(f->dir, files[i]), &n);

		assert_int_equal(n, len[i]);
		assert_memory_equal(after, before[i], n);
		free(after);
		free(before[i]);
	}
}

static void ca_is_a_ca(void **state)
{
	struct fixture *f = *state;
	X509 *ca = read_cert(path_in(f->dir, PKI_CA_CERT));
	char cn[64];

	assert_int_equal(X509_check_ca(ca), 1);
	assert_true(X509_get_extension_flags(ca) & EXFLAG_SS);
	assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, "kmipd dev CA");
	X509_free(ca);
}

static void server_cert_chains_to_the_ca_with_its_names(void **state)
{
	struct fixture *f = *state;
	X509 *cert = read_cert(path_in(f->dir, PKI_SERVER_CERT));
	char tenant[PKI_NAME_MAX + 1], client[PKI_NAME_MAX + 1];

	assert_int_equal(verify(f->dir, cert, X509_PURPOSE_SSL_SERVER), 1);
	assert_int_equal(verify(f->dir, cert, X509_PURPOSE_SSL_CLIENT), 1);
	assert_rsa_2048_with_both_ekus(cert);
	assert_int_equal(X509_check_host(cert, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(cert, HOST, 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(cert, "other.example.com", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(cert, "::1", 0), 1);
	assert_int_equal(X509_check_ip_asc(cert, "10.0.0.1", 0), 0);
	assert_int_equal(X509_check_ca(cert), 0);
	assert_int_equal(pki_cert_identity(cert, tenant, client), KMIPD_ENOT_FOUND);
	X509_free(cert);
}

/* server.pem carries the CA after the leaf, so the server sends the full chain. */
static void server_pem_holds_the_chain(void **state)
{
	struct fixture *f = *state;
	FILE *fp = fopen(path_in(f->dir, PKI_SERVER_CERT), "r");
	X509 *leaf, *second, *ca = read_cert(path_in(f->dir, PKI_CA_CERT));

	assert_non_null(fp);
	leaf = PEM_read_X509(fp, NULL, NULL, NULL);
	second = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(leaf);
	assert_non_null(second);
	assert_int_equal(X509_cmp(second, ca), 0);
	X509_free(leaf);
	X509_free(second);
	X509_free(ca);
	ERR_clear_error();
}

static void client_cert_names_its_tenant_and_client(void **state)
{
	struct fixture *f = *state;
	X509 *cert = read_cert(path_in(f->dir, PKI_CLIENT_CERT));
	char tenant[PKI_NAME_MAX + 1], client[PKI_NAME_MAX + 1], text[80];

	assert_int_equal(verify(f->dir, cert, X509_PURPOSE_SSL_CLIENT), 1);
	assert_rsa_2048_with_both_ekus(cert);
	assert_int_equal(pki_cert_identity(cert, tenant, client), 0);
	assert_string_equal(tenant, TENANT);
	assert_string_equal(client, CLIENT);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, text,
					      sizeof(text)) > 0);
	assert_string_equal(text, CLIENT);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName,
					      text, sizeof(text)) > 0);
	assert_string_equal(text, TENANT);
	X509_free(cert);
}

static void issue_client_for_another_tenant(void **state)
{
	struct fixture *f = *state;
	path_t cert_buf, key_buf;
	const char *cert_path = join(cert_buf, f->base, "globex.pem");
	const char *key_path = join(key_buf, f->base, "globex-key.pem");
	char tenant[PKI_NAME_MAX + 1], client[PKI_NAME_MAX + 1];
	char *before;
	size_t len, n;
	struct stat st;
	X509 *cert;

	assert_int_equal(pki_issue_client(f->dir, "globex", "esx-01.lab", cert_path, key_path,
					  f->msg, sizeof(f->msg)),
			 0);
	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	cert = read_cert(cert_path);
	assert_int_equal(verify(f->dir, cert, X509_PURPOSE_SSL_CLIENT), 1);
	assert_rsa_2048_with_both_ekus(cert);
	assert_int_equal(pki_cert_identity(cert, tenant, client), 0);
	assert_string_equal(tenant, "globex");
	assert_string_equal(client, "esx-01.lab");
	X509_free(cert);

	/* Never overwrites: neither file changes and the message names the file. */
	before = slurp(key_path, &len);
	assert_int_equal(pki_issue_client(f->dir, "globex", "esx-02", cert_path,
					  path_in(f->base, "new-key.pem"), f->msg, sizeof(f->msg)),
			 KMIPD_EEXISTS);
	assert_non_null(strstr(f->msg, cert_path));
	assert_int_equal(pki_issue_client(f->dir, "globex", "esx-02", path_in(f->base, "new.pem"),
					  key_path, f->msg, sizeof(f->msg)),
			 KMIPD_EEXISTS);
	assert_non_null(strstr(f->msg, key_path));
	assert_int_equal(stat(path_in(f->base, "new.pem"), &st), -1);
	assert_int_equal(stat(path_in(f->base, "new-key.pem"), &st), -1);
	{
		char *after = slurp(key_path, &n);

		assert_int_equal(n, len);
		assert_memory_equal(after, before, n);
		free(after);
	}
	free(before);
}

static void issue_client_needs_the_ca(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(pki_issue_client(f->base, "globex", "x", path_in(f->base, "x.pem"),
					  path_in(f->base, "x-key.pem"), f->msg, sizeof(f->msg)),
			 -ENOENT);
	assert_non_null(strstr(f->msg, PKI_CA_CERT));
}

static void bad_names_are_refused(void **state)
{
	struct fixture *f = *state;
	char name64[65], name65[66];
	static const char *const bad[] = {"", "a:b", "a/b", "a b", "caf\xc3\xa9", "a\nb", NULL};
	size_t i;

	memset(name64, 'a', 64);
	name64[64] = '\0';
	memset(name65, 'a', 65);
	name65[65] = '\0';
	assert_true(pki_name_valid(name64));
	assert_false(pki_name_valid(name65));
	assert_true(pki_name_valid("Tenant_1.prod-eu"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(pki_name_valid(bad[i]));

	assert_int_equal(pki_issue_client(f->dir, "a:b", "c", path_in(f->base, "n.pem"),
					  path_in(f->base, "n-key.pem"), f->msg, sizeof(f->msg)),
			 KMIPD_EINVAL);
	assert_int_equal(pki_issue_client(f->dir, "acme", name65, path_in(f->base, "n.pem"),
					  path_in(f->base, "n-key.pem"), f->msg, sizeof(f->msg)),
			 KMIPD_EINVAL);
	assert_int_equal(pki_issue_client(f->dir, "acme", "", path_in(f->base, "n.pem"),
					  path_in(f->base, "n-key.pem"), f->msg, sizeof(f->msg)),
			 KMIPD_EINVAL);
	assert_int_equal(pki_dev_init(f->dir, NULL, "a/b", CLIENT, f->msg, sizeof(f->msg)),
			 KMIPD_EINVAL);
	assert_non_null(strstr(f->msg, "a/b"));
	assert_int_equal(pki_dev_init(f->dir, "evil,DNS:x", TENANT, CLIENT, f->msg, sizeof(f->msg)),
			 KMIPD_EINVAL);
}

static void fingerprint_is_stable_hex(void **state)
{
	struct fixture *f = *state;
	X509 *a = read_cert(path_in(f->dir, PKI_CLIENT_CERT));
	X509 *b = read_cert(path_in(f->dir, PKI_CLIENT_CERT));
	X509 *server = read_cert(path_in(f->dir, PKI_SERVER_CERT));
	char fa[65], fb[65], fs[65];
	size_t i;

	assert_int_equal(pki_cert_fingerprint(a, fa), 0);
	assert_int_equal(pki_cert_fingerprint(b, fb), 0);
	assert_int_equal(pki_cert_fingerprint(server, fs), 0);
	assert_int_equal(strlen(fa), 64);
	for (i = 0; i < 64; i++)
		assert_true((fa[i] >= '0' && fa[i] <= '9') || (fa[i] >= 'a' && fa[i] <= 'f'));
	assert_string_equal(fa, fb);
	assert_string_not_equal(fa, fs);
	X509_free(a);
	X509_free(b);
	X509_free(server);
}

/* An unsigned certificate carrying exactly the given subjectAltName (config syntax). */
static X509 *cert_with_san(const char *san)
{
	X509 *cert = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	assert_non_null(cert);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
	return cert;
}

static void identity_needs_one_valid_kmipd_uri(void **state)
{
	static const struct {
		const char *san;
		int rv;
		const char *tenant, *client;
	} cases[] = {
		{"URI:urn:kmipd:tenant:t1:client:c1", 0, "t1", "c1"},
		{"URI:https://example.com,URI:urn:kmipd:tenant:t1:client:c1", 0, "t1", "c1"},
		{"DNS:urn:kmipd:tenant:t1:client:c1", KMIPD_ENOT_FOUND, NULL, NULL},
		{"URI:URN:kmipd:tenant:t1:client:c1", KMIPD_ENOT_FOUND, NULL, NULL},
		{"URI:urn:kmipd:tenant:t1:client:", KMIPD_ENOT_FOUND, NULL, NULL},
		{"URI:urn:kmipd:tenant::client:c1", KMIPD_ENOT_FOUND, NULL, NULL},
		{"URI:urn:kmipd:tenant:t1", KMIPD_ENOT_FOUND, NULL, NULL},
		{"URI:urn:kmipd:tenant:a/b:client:c1", KMIPD_ENOT_FOUND, NULL, NULL},
		{"URI:urn:kmipd:tenant:t1:client:c1:client:c2", KMIPD_ENOT_FOUND, NULL, NULL},
		{"URI:urn:kmipd:tenant:t1:x:client:c1", KMIPD_ENOT_FOUND, NULL, NULL},
		/* An invalid kmipd URI does not hide a valid one. */
		{"URI:urn:kmipd:tenant:t/1:client:c1,URI:urn:kmipd:tenant:t2:client:c2", 0, "t2",
		 "c2"},
		/* Two different identities: trust neither. */
		{"URI:urn:kmipd:tenant:t1:client:c1,URI:urn:kmipd:tenant:t2:client:c2",
		 KMIPD_ENOT_FOUND, NULL, NULL},
	};
	char tenant[PKI_NAME_MAX + 1], client[PKI_NAME_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *cert = cert_with_san(cases[i].san);

		assert_int_equal(pki_cert_identity(cert, tenant, client), cases[i].rv);
		if (cases[i].rv == 0) {
			assert_string_equal(tenant, cases[i].tenant);
			assert_string_equal(client, cases[i].client);
		}
		X509_free(cert);
	}
	{
		X509 *bare = X509_new();

		assert_int_equal(pki_cert_identity(bare, tenant, client), KMIPD_ENOT_FOUND);
		X509_free(bare);
	}
}

/* Handshake options: the client's certificate (NULL: none) and highest TLS version. */
struct tls_case {
	const char *client_cert;
	const char *client_key;
	int max_version;
	const char *cipher; /* TLS 1.2 cipher list, or NULL */
};

/* Runs a TLS handshake between two SSL objects over a memory BIO pair. Returns 1 if both
 * sides completed it, 0 if the server refused it, -1 otherwise. On success the server's view
 * of the client identity is checked. */
static int handshake(const char *dir, const struct tls_case *tc)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	STACK_OF(X509_NAME) *client_cas = SSL_load_client_CA_file(path_in(dir, PKI_CA_CERT));
	BIO *sbio, *cbio;
	SSL *s, *c;
	bool sdone = false, cdone = false, sfail = false, cfail = false;
	int round, ok;

	assert_non_null(sctx);
	assert_non_null(cctx);
	assert_non_null(client_cas);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(sctx, path_in(dir, PKI_SERVER_CERT)),
			 1);
	assert_int_equal(
		SSL_CTX_use_PrivateKey_file(sctx, path_in(dir, PKI_SERVER_KEY), SSL_FILETYPE_PEM),
		1);
	assert_int_equal(SSL_CTX_load_verify_locations(sctx, path_in(dir, PKI_CA_CERT), NULL), 1);
	SSL_CTX_set_client_CA_list(sctx, client_cas);
	SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);

	if (tc->client_cert != NULL) {
		assert_int_equal(
			SSL_CTX_use_certificate_file(cctx, tc->client_cert, SSL_FILETYPE_PEM), 1);
		assert_int_equal(
			SSL_CTX_use_PrivateKey_file(cctx, tc->client_key, SSL_FILETYPE_PEM), 1);
	}
	assert_int_equal(SSL_CTX_load_verify_locations(cctx, path_in(dir, PKI_CA_CERT), NULL), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	if (tc->max_version != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(cctx, tc->max_version), 1);
	if (tc->cipher != NULL)
		assert_int_equal(SSL_CTX_set_cipher_list(cctx, tc->cipher), 1);

	s = SSL_new(sctx);
	c = SSL_new(cctx);
	assert_non_null(s);
	assert_non_null(c);
	assert_int_equal(SSL_set1_host(c, "localhost"), 1);
	assert_int_equal(SSL_set_tlsext_host_name(c, "localhost"), 1);
	assert_int_equal(BIO_new_bio_pair(&sbio, 0, &cbio, 0), 1);
	SSL_set_bio(s, sbio, sbio);
	SSL_set_bio(c, cbio, cbio);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);

	for (round = 0; round < 50 && !((sdone || sfail) && (cdone || cfail)); round++) {
		if (!cdone && !cfail) {
			int r = SSL_do_handshake(c);
			int e = SSL_get_error(c, r);

			cdone = r == 1;
			cfail = r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
		}
		if (!sdone && !sfail) {
			int r = SSL_do_handshake(s);
			int e = SSL_get_error(s, r);

			sdone = r == 1;
			sfail = r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
		}
		/* With TLS 1.3 the client is done before the server has judged its certificate;
		 * once the server has failed, the outcome is known. */
		if (sfail)
			break;
	}
	ok = sdone && cdone ? 1 : sfail ? 0 : -1;
	if (ok == 1) {
		X509 *peer = SSL_get0_peer_certificate(s);
		char tenant[PKI_NAME_MAX + 1], client[PKI_NAME_MAX + 1];

		assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
		assert_int_equal(SSL_get_verify_result(s), X509_V_OK);
		assert_non_null(peer);
		assert_int_equal(pki_cert_identity(peer, tenant, client), 0);
		assert_string_equal(tenant, TENANT);
		assert_string_equal(client, CLIENT);
		if (tc->max_version != 0)
			assert_int_equal(SSL_version(s), tc->max_version);
	}
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	ERR_clear_error();
	return ok;
}

static void tls_handshake_with_the_client_cert(void **state)
{
	struct fixture *f = *state;
	path_t cert, key;
	struct tls_case tc = {join(cert, f->dir, PKI_CLIENT_CERT),
			      join(key, f->dir, PKI_CLIENT_KEY), 0, NULL};

	assert_int_equal(handshake(f->dir, &tc), 1);
	/* vCenter 7 negotiates TLS 1.2, with RSA key exchange against a short suite list. */
	tc.max_version = TLS1_2_VERSION;
	assert_int_equal(handshake(f->dir, &tc), 1);
	tc.cipher = "AES128-SHA256";
	assert_int_equal(handshake(f->dir, &tc), 1);
	tc.cipher = "ECDHE-RSA-AES256-GCM-SHA384";
	assert_int_equal(handshake(f->dir, &tc), 1);
}

static void tls_handshake_without_client_cert_fails(void **state)
{
	struct fixture *f = *state;
	struct tls_case tc = {NULL, NULL, 0, NULL};

	assert_int_equal(handshake(f->dir, &tc), 0);
	tc.max_version = TLS1_2_VERSION;
	assert_int_equal(handshake(f->dir, &tc), 0);
}

/* The server trusts its own CA only: a client certificate from another kmipd dev CA, even
 * naming the same tenant and client, is refused. */
static void tls_handshake_with_a_foreign_client_cert_fails(void **state)
{
	struct fixture *f = *state;
	path_t other, cert, key;
	struct tls_case tc;

	snprintf(other, sizeof(other), "%s/other", f->base);
	assert_int_equal(pki_dev_init(other, NULL, TENANT, CLIENT, f->msg, sizeof(f->msg)), 0);
	tc = (struct tls_case){join(cert, other, PKI_CLIENT_CERT), join(key, other, PKI_CLIENT_KEY),
			       0, NULL};
	assert_int_equal(handshake(f->dir, &tc), 0);
}

/* A directory where only the CA survives gets new leaf certificates from that CA; an IP
 * address as the extra host becomes an IP subjectAltName. */
static void missing_leaves_are_issued_from_the_existing_ca(void **state)
{
	struct fixture *f = *state;
	path_t dir;
	char *ca_before, *ca_after;
	size_t len, n;
	X509 *server;

	snprintf(dir, sizeof(dir), "%s/partial", f->base);
	assert_int_equal(pki_dev_init(dir, "192.0.2.7", TENANT, CLIENT, f->msg, sizeof(f->msg)), 0);
	ca_before = slurp(path_in(dir, PKI_CA_CERT), &len);
	assert_int_equal(unlink(path_in(dir, PKI_SERVER_CERT)), 0);
	assert_int_equal(unlink(path_in(dir, PKI_SERVER_KEY)), 0);
	assert_int_equal(unlink(path_in(dir, PKI_CLIENT_CERT)), 0);

	assert_int_equal(pki_dev_init(dir, "192.0.2.7", TENANT, CLIENT, f->msg, sizeof(f->msg)), 0);
	ca_after = slurp(path_in(dir, PKI_CA_CERT), &n);
	assert_int_equal(n, len);
	assert_memory_equal(ca_after, ca_before, n);
	server = read_cert(path_in(dir, PKI_SERVER_CERT));
	assert_int_equal(verify(dir, server, X509_PURPOSE_SSL_SERVER), 1);
	assert_int_equal(X509_check_ip_asc(server, "192.0.2.7", 0), 1);
	assert_int_equal(X509_check_host(server, "192.0.2.7", 0, 0, NULL), 0);
	X509_free(server);
	server = read_cert(path_in(dir, PKI_CLIENT_CERT));
	assert_int_equal(verify(dir, server, X509_PURPOSE_SSL_CLIENT), 1);
	X509_free(server);
	free(ca_before);
	free(ca_after);

	/* A certificate whose key is gone is an error naming the key file. */
	assert_int_equal(unlink(path_in(dir, PKI_CLIENT_KEY)), 0);
	assert_int_equal(pki_dev_init(dir, NULL, TENANT, CLIENT, f->msg, sizeof(f->msg)),
			 KMIPD_ENOT_FOUND);
	assert_non_null(strstr(f->msg, path_in(dir, PKI_CLIENT_KEY)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dev_init_creates_all_files),
		cmocka_unit_test(second_init_keeps_every_file),
		cmocka_unit_test(ca_is_a_ca),
		cmocka_unit_test(server_cert_chains_to_the_ca_with_its_names),
		cmocka_unit_test(server_pem_holds_the_chain),
		cmocka_unit_test(client_cert_names_its_tenant_and_client),
		cmocka_unit_test(issue_client_for_another_tenant),
		cmocka_unit_test(issue_client_needs_the_ca),
		cmocka_unit_test(bad_names_are_refused),
		cmocka_unit_test(fingerprint_is_stable_hex),
		cmocka_unit_test(identity_needs_one_valid_kmipd_uri),
		cmocka_unit_test(tls_handshake_with_the_client_cert),
		cmocka_unit_test(tls_handshake_without_client_cert_fails),
		cmocka_unit_test(tls_handshake_with_a_foreign_client_cert_fails),
		cmocka_unit_test(missing_leaves_are_issued_from_the_existing_ca),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
