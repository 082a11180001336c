/* The cluster CA and the certificates it issues (see include/kmipd/pki.h): the dev-mode CA,
 * server and client certificates, client certificates for kmipctl, and reading the
 * (tenant, client) identity back out of a certificate. */
#include "kmipd/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "kmipd/error.h"
#include "kmipd/fsutil.h"

#define KEY_BITS	  2048
#define CA_DAYS		  (10 * 365 + 2)
#define LEAF_DAYS	  825  /* the longest validity Apple and browsers accept */
#define BACKDATE_SECONDS  3600 /* tolerate clocks of peers that run a little behind */
#define SERIAL_LEN	  16
#define URI_PREFIX	  "urn:kmipd:tenant:"
#define URI_CLIENT_MARKER ":client:"
#define URI_ADMIN	  "urn:kmipd:admin:"

enum kind { KIND_CA, KIND_SERVER, KIND_CLIENT, KIND_ADMIN };

/* What to issue, and with which CA (unused for the CA itself). */
struct issue {
	enum kind kind;
	const char *extra_host; /* server: may be NULL */
	const char *tenant;	/* client */
	const char *client;	/* client; admin: the administrator's name */
	X509 *ca;
	EVP_PKEY *ca_key;
};

/* The reason of OpenSSL's most recent error, clearing the thread's error queue. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : "unknown OpenSSL error";
}

bool pki_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];

		if (i >= PKI_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* True if @host is something we can put into a DNS subjectAltName. */
static bool dns_name_valid(const char *host)
{
	size_t i;

	for (i = 0; host[i] != '\0'; i++) {
		char c = host[i];

		if (i >= 253)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return false;
	}
	return i > 0;
}

static bool is_ip_address(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static int join(char *out, size_t cap, const char *dir, const char *name, char *errmsg,
		size_t errlen)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap) {
		errmsgf(errmsg, errlen, "path %s/%s is too long", dir, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* 0 if @path exists, -ENOENT if not, another -errno if we cannot tell. */
static int path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? 0 : -errno;
}

/* Refuses encrypted keys instead of letting OpenSSL prompt on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Writes a new file @path with @mode holding @key (if not NULL), then @cert and @chain (if not
 * NULL), as PEM. The contents go to a temporary file next to @path, created with O_EXCL, which
 * is fsynced and then hard-linked to @path: the file appears complete or not at all, and an
 * existing @path is never overwritten (KMIPD_EEXISTS). */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, X509 *chain,
		     char *errmsg, size_t errlen)
{
	char tmp[PATH_MAX];
	char iobuf[8192]; /* stdio's buffer holds the PEM text: ours is wiped afterwards */
	unsigned char suffix[6];
	FILE *f = NULL;
	int fd = -1, n, ok, rv;

	if (RAND_bytes(suffix, sizeof(suffix)) != 1) {
		errmsgf(errmsg, errlen, "writing %s: %s", path, ssl_reason());
		return KMIPD_ECRYPTO;
	}
	n = snprintf(tmp, sizeof(tmp), "%s.tmp-%02x%02x%02x%02x%02x%02x", path, suffix[0],
		     suffix[1], suffix[2], suffix[3], suffix[4], suffix[5]);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errmsgf(errmsg, errlen, "path %s is too long", path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		rv = -errno;
		errmsgf(errmsg, errlen, "cannot create %s: %s", tmp, strerror(-rv));
		return rv;
	}
	/* Exactly @mode whatever the umask: certificates are meant to be readable. */
	if (fchmod(fd, mode) != 0) {
		rv = -errno;
		errmsgf(errmsg, errlen, "cannot set the mode of %s: %s", tmp, strerror(-rv));
		close(fd);
		goto err;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		rv = -errno;
		errmsgf(errmsg, errlen, "writing %s: %s", tmp, strerror(-rv));
		close(fd);
		goto err;
	}
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));

	ok = 1;
	if (key != NULL)
		ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (ok && cert != NULL)
		ok = PEM_write_X509(f, cert);
	if (ok && chain != NULL)
		ok = PEM_write_X509(f, chain);
	if (!ok) {
		errmsgf(errmsg, errlen, "writing %s: %s", tmp, ssl_reason());
		rv = KMIPD_ECRYPTO;
		fclose(f);
		goto err;
	}
	rv = 0;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rv = -errno;
	if (fclose(f) != 0 && rv == 0)
		rv = -errno;
	if (rv != 0) {
		errmsgf(errmsg, errlen, "writing %s: %s", tmp, strerror(-rv));
		goto err;
	}
	if (link(tmp, path) != 0) {
		rv = -errno;
		if (rv == -EEXIST) {
			errmsgf(errmsg, errlen, "%s already exists; refusing to overwrite it",
				path);
			rv = KMIPD_EEXISTS;
		} else {
			errmsgf(errmsg, errlen, "cannot create %s: %s", path, strerror(-rv));
		}
		goto err;
	}
	unlink(tmp);
	rv = fsync_parent_dir(path);
	if (rv != 0)
		errmsgf(errmsg, errlen, "syncing the directory of %s: %s", path,
			kmipd_strerror(rv));
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	return rv;

err:
	unlink(tmp);
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	return rv;
}

/* Opens @path for reading with a buffer of ours (wiped by the caller). */
static FILE *open_read(const char *path, char *iobuf, size_t iolen, int *rv, char *errmsg,
		       size_t errlen)
{
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		*rv = -errno;
		errmsgf(errmsg, errlen, "cannot read %s: %s", path, strerror(-*rv));
		return NULL;
	}
	setvbuf(f, iobuf, _IOFBF, iolen);
	return f;
}

static int load_cert(const char *path, X509 **out, char *errmsg, size_t errlen)
{
	char iobuf[4096];
	FILE *f;
	int rv = 0;

	f = open_read(path, iobuf, sizeof(iobuf), &rv, errmsg, errlen);
	if (f == NULL)
		return rv;
	*out = PEM_read_X509(f, NULL, no_password, NULL);
	fclose(f);
	if (*out == NULL) {
		errmsgf(errmsg, errlen, "%s does not hold a PEM certificate: %s", path,
			ssl_reason());
		rv = KMIPD_EMALFORMED;
	}
	return rv;
}

static int load_key(const char *path, EVP_PKEY **out, char *errmsg, size_t errlen)
{
	char iobuf[4096];
	FILE *f;
	int rv = 0;

	f = open_read(path, iobuf, sizeof(iobuf), &rv, errmsg, errlen);
	if (f == NULL)
		return rv;
	*out = PEM_read_PrivateKey(f, NULL, no_password, NULL);
	fclose(f);
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	if (*out == NULL) {
		errmsgf(errmsg, errlen, "%s does not hold an unencrypted PEM private key: %s", path,
			ssl_reason());
		rv = KMIPD_EMALFORMED;
	}
	return rv;
}

/* Adds one extension written in OpenSSL's configuration syntax. */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* Appends a DNS, URI or IP general name. The values are given as data, never parsed as
 * configuration, so a host name cannot smuggle in more entries. */
static int push_name(GENERAL_NAMES *names, int type, const char *value)
{
	GENERAL_NAME *gen = GENERAL_NAME_new();

	if (gen == NULL)
		return -1;
	if (type == GEN_IPADD) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);

		if (ip == NULL)
			goto err;
		GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
	} else {
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		if (s == NULL)
			goto err;
		if (!ASN1_STRING_set(s, value, -1)) {
			ASN1_IA5STRING_free(s);
			goto err;
		}
		GENERAL_NAME_set0_value(gen, type, s);
	}
	if (sk_GENERAL_NAME_push(names, gen) <= 0)
		goto err;
	return 0;
err:
	GENERAL_NAME_free(gen);
	return -1;
}

static int add_san(X509 *cert, const struct issue *is)
{
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	char uri[sizeof(URI_PREFIX) + sizeof(URI_CLIENT_MARKER) + 2 * PKI_NAME_MAX];
	int rv = -1;

	if (names == NULL)
		return -1;
	if (is->kind == KIND_SERVER) {
		if (push_name(names, GEN_DNS, "localhost") != 0 ||
		    push_name(names, GEN_IPADD, "127.0.0.1") != 0 ||
		    push_name(names, GEN_IPADD, "::1") != 0 ||
		    push_name(names, GEN_URI, PKI_NODE_URI) != 0)
			goto out;
		for (const char *h = is->extra_host; h != NULL && *h != '\0';) {
			size_t len = strcspn(h, ",");
			char host[256];

			if (len > 0 && len < sizeof(host)) {
				memcpy(host, h, len);
				host[len] = '\0';
				if (strcmp(host, "localhost") != 0 &&
				    strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0 &&
				    push_name(names, is_ip_address(host) ? GEN_IPADD : GEN_DNS,
					      host) != 0)
					goto out;
			}
			h += len;
			if (*h == ',')
				h++;
		}
	} else if (is->kind == KIND_ADMIN) {
		snprintf(uri, sizeof(uri), URI_ADMIN "%s", is->client);
		if (push_name(names, GEN_URI, uri) != 0)
			goto out;
	} else {
		snprintf(uri, sizeof(uri), URI_PREFIX "%s" URI_CLIENT_MARKER "%s", is->tenant,
			 is->client);
		if (push_name(names, GEN_URI, uri) != 0)
			goto out;
	}
	if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1)
		rv = 0;
out:
	GENERAL_NAMES_free(names);
	return rv;
}

/* A random positive 128-bit serial number. */
static int set_serial(X509 *cert)
{
	unsigned char b[SERIAL_LEN];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40); /* positive, and exactly 16 bytes long */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (bn == NULL)
		return -1;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

/* Makes and signs a certificate of @is->kind for @key. NULL on failure (OpenSSL's error
 * queue says why). */
static X509 *make_cert(const struct issue *is, EVP_PKEY *key)
{
	bool ca = is->kind == KIND_CA;
	X509 *cert = X509_new();
	X509 *issuer = ca ? cert : is->ca;
	EVP_PKEY *signer = ca ? key : is->ca_key;
	X509_NAME *name;
	const char *cn = is->kind == KIND_CA	   ? "kmipd dev CA"
			 : is->kind == KIND_SERVER ? "localhost"
						   : is->client;

	if (cert == NULL)
		return NULL;
	name = X509_get_subject_name(cert);
	if (!X509_set_version(cert, X509_VERSION_3) || set_serial(cert) != 0)
		goto err;
	if ((is->kind == KIND_CLIENT || is->kind == KIND_ADMIN) &&
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
					(const unsigned char *)(is->kind == KIND_ADMIN
									? "kmipd administrators"
									: is->tenant),
					-1, -1, 0))
		goto err;
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0))
		goto err;
	if (!X509_set_issuer_name(cert, X509_get_subject_name(issuer)))
		goto err;
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -BACKDATE_SECONDS) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), ca ? CA_DAYS : LEAF_DAYS, 0, NULL) == NULL)
		goto err;
	if (!X509_set_pubkey(cert, key))
		goto err;

	if (ca) {
		if (add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
		    add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
		    add_ext(cert, issuer, NID_subject_key_identifier, "hash") != 0)
			goto err;
	} else {
		if (add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
		    add_ext(cert, issuer, NID_key_usage,
			    "critical,digitalSignature,keyEncipherment") != 0 ||
		    add_ext(cert, issuer, NID_ext_key_usage, "serverAuth,clientAuth") != 0 ||
		    add_ext(cert, issuer, NID_subject_key_identifier, "hash") != 0 ||
		    add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always") != 0 ||
		    add_san(cert, is) != 0)
			goto err;
	}
	if (X509_sign(cert, signer, EVP_sha256()) <= 0)
		goto err;
	return cert;
err:
	X509_free(cert);
	return NULL;
}

/* A new key and a certificate for it, both in memory. */
static int make_pair(const struct issue *is, const char *cert_path, EVP_PKEY **key_out,
		     X509 **cert_out, char *errmsg, size_t errlen)
{
	EVP_PKEY *key = EVP_RSA_gen(KEY_BITS);

	if (key == NULL) {
		errmsgf(errmsg, errlen, "cannot generate an RSA key for %s: %s", cert_path,
			ssl_reason());
		return KMIPD_ECRYPTO;
	}
	*cert_out = make_cert(is, key);
	if (*cert_out == NULL) {
		errmsgf(errmsg, errlen, "cannot make the certificate %s: %s", cert_path,
			ssl_reason());
		EVP_PKEY_free(key);
		return KMIPD_ECRYPTO;
	}
	*key_out = key;
	return 0;
}

/* Checks that an existing pair belongs together and was issued by the right CA. */
static int check_pair(const struct issue *is, X509 *cert, EVP_PKEY *key, const char *cert_path,
		      const char *key_path, char *errmsg, size_t errlen)
{
	EVP_PKEY *issuer_key = is->kind == KIND_CA ? key : is->ca_key;

	if (X509_check_private_key(cert, key) != 1) {
		errmsgf(errmsg, errlen,
			"%s is not the key of %s; remove both to have a new pair made", key_path,
			cert_path);
		ERR_clear_error();
		return KMIPD_EINVAL;
	}
	if (X509_verify(cert, issuer_key) != 1) {
		if (is->kind == KIND_CA)
			errmsgf(errmsg, errlen,
				"%s is not a self-signed CA certificate; remove it and %s to have "
				"a "
				"new CA made",
				cert_path, key_path);
		else
			errmsgf(errmsg, errlen,
				"%s was not signed by the CA in the same directory; remove it and "
				"its "
				"key %s to have a new pair issued",
				cert_path, key_path);
		ERR_clear_error();
		return KMIPD_EINVAL;
	}
	return 0;
}

/* Makes sure @dir/@cert_name and @dir/@key_name exist, creating what is missing: a missing
 * certificate is issued for an existing key; a certificate without its key is an error. On
 * success the pair is returned in @cert_out and @key_out if they are not NULL. */
static int ensure_pair(const char *dir, const char *cert_name, const char *key_name,
		       const struct issue *is, X509 **cert_out, EVP_PKEY **key_out, char *errmsg,
		       size_t errlen)
{
	char cert_path[PATH_MAX], key_path[PATH_MAX];
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	X509 *chain = is->kind == KIND_SERVER ? is->ca : NULL; /* server.pem carries the CA */
	int cert_state, key_state, rv;

	rv = join(cert_path, sizeof(cert_path), dir, cert_name, errmsg, errlen);
	if (rv == 0)
		rv = join(key_path, sizeof(key_path), dir, key_name, errmsg, errlen);
	if (rv != 0)
		return rv;
	cert_state = path_exists(cert_path);
	key_state = path_exists(key_path);
	if (cert_state != 0 && cert_state != -ENOENT) {
		errmsgf(errmsg, errlen, "cannot look at %s: %s", cert_path, strerror(-cert_state));
		return cert_state;
	}
	if (key_state != 0 && key_state != -ENOENT) {
		errmsgf(errmsg, errlen, "cannot look at %s: %s", key_path, strerror(-key_state));
		return key_state;
	}
	if (cert_state == 0 && key_state != 0) {
		errmsgf(errmsg, errlen,
			"%s exists but its key %s does not; restore the key or remove %s to have a "
			"new pair made",
			cert_path, key_path, cert_path);
		return KMIPD_ENOT_FOUND;
	}

	if (key_state == 0) {
		rv = load_key(key_path, &key, errmsg, errlen);
		if (rv != 0)
			goto out;
	}
	if (cert_state == 0) {
		rv = load_cert(cert_path, &cert, errmsg, errlen);
		if (rv == 0)
			rv = check_pair(is, cert, key, cert_path, key_path, errmsg, errlen);
		goto out;
	}

	if (key == NULL) {
		rv = make_pair(is, cert_path, &key, &cert, errmsg, errlen);
		if (rv == 0)
			rv = write_pem(key_path, 0600, key, NULL, NULL, errmsg, errlen);
	} else {
		/* A key without its certificate: an earlier start stopped between the two. */
		cert = make_cert(is, key);
		if (cert == NULL) {
			errmsgf(errmsg, errlen, "cannot make the certificate %s: %s", cert_path,
				ssl_reason());
			rv = KMIPD_ECRYPTO;
		}
	}
	if (rv == 0)
		rv = write_pem(cert_path, 0644, NULL, cert, chain, errmsg, errlen);
out:
	if (rv == 0 && cert_out != NULL) {
		*cert_out = cert;
		cert = NULL;
	}
	if (rv == 0 && key_out != NULL) {
		*key_out = key;
		key = NULL;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return rv;
}

static int check_names(const char *tenant, const char *client, char *errmsg, size_t errlen)
{
	if (!pki_name_valid(tenant)) {
		errmsgf(errmsg, errlen,
			"tenant name \"%s\" is not 1 to %d characters of A-Z, a-z, 0-9, '.', '_' "
			"and '-'",
			tenant != NULL ? tenant : "", PKI_NAME_MAX);
		return KMIPD_EINVAL;
	}
	if (!pki_name_valid(client)) {
		errmsgf(errmsg, errlen,
			"client name \"%s\" is not 1 to %d characters of A-Z, a-z, 0-9, '.', '_' "
			"and '-'",
			client != NULL ? client : "", PKI_NAME_MAX);
		return KMIPD_EINVAL;
	}
	return 0;
}

static int make_dir(const char *dir, char *errmsg, size_t errlen)
{
	struct stat st;
	int rv;

	if (mkdir(dir, 0700) == 0) {
		(void)fsync_parent_dir(dir); /* best effort: each file syncs the new directory */
		return 0;
	}
	rv = -errno;
	if (rv != -EEXIST) {
		errmsgf(errmsg, errlen, "cannot create the directory %s: %s", dir, strerror(-rv));
		return rv;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		errmsgf(errmsg, errlen, "%s exists and is not a directory", dir);
		return -ENOTDIR;
	}
	return 0;
}

int pki_dev_init(const char *dir, const char *extra_host, const char *tenant, const char *client,
		 char *errmsg, size_t errlen)
{
	struct issue is = {KIND_CA, NULL, NULL, NULL, NULL, NULL};
	int rv;

	if (dir == NULL) {
		errmsgf(errmsg, errlen, "no PKI directory given");
		return KMIPD_EINVAL;
	}
	rv = check_names(tenant, client, errmsg, errlen);
	if (rv != 0)
		return rv;
	for (const char *h = extra_host; h != NULL && *h != '\0';) {
		size_t len = strcspn(h, ",");
		char host[256];

		if (len == 0 || len >= sizeof(host)) {
			errmsgf(errmsg, errlen, "server hosts \"%s\": an empty or overlong entry",
				extra_host);
			return KMIPD_EINVAL;
		}
		memcpy(host, h, len);
		host[len] = '\0';
		if (!is_ip_address(host) && !dns_name_valid(host)) {
			errmsgf(errmsg, errlen,
				"server host \"%s\" is neither an IP address nor a DNS name", host);
			return KMIPD_EINVAL;
		}
		h += len;
		if (*h == ',')
			h++;
	}
	rv = make_dir(dir, errmsg, errlen);
	if (rv != 0)
		return rv;

	rv = ensure_pair(dir, PKI_CA_CERT, PKI_CA_KEY, &is, &is.ca, &is.ca_key, errmsg, errlen);
	if (rv != 0)
		return rv;
	is.kind = KIND_SERVER;
	is.extra_host = extra_host;
	rv = ensure_pair(dir, PKI_SERVER_CERT, PKI_SERVER_KEY, &is, NULL, NULL, errmsg, errlen);
	if (rv == 0) {
		is.kind = KIND_CLIENT;
		is.tenant = tenant;
		is.client = client;
		rv = ensure_pair(dir, PKI_CLIENT_CERT, PKI_CLIENT_KEY, &is, NULL, NULL, errmsg,
				 errlen);
	}
	if (rv == 0) {
		is.kind = KIND_ADMIN;
		is.tenant = NULL;
		is.client = PKI_DEV_ADMIN;
		rv = ensure_pair(dir, PKI_ADMIN_CERT, PKI_ADMIN_KEY, &is, NULL, NULL, errmsg,
				 errlen);
	}
	X509_free(is.ca);
	EVP_PKEY_free(is.ca_key);
	return rv;
}

/* Refuses early when @path exists, before any key is generated. */
static int must_not_exist(const char *path, char *errmsg, size_t errlen)
{
	int rv = path_exists(path);

	if (rv == 0) {
		errmsgf(errmsg, errlen, "%s already exists; refusing to overwrite it", path);
		return KMIPD_EEXISTS;
	}
	if (rv != -ENOENT) {
		errmsgf(errmsg, errlen, "cannot look at %s: %s", path, strerror(-rv));
		return rv;
	}
	return 0;
}

/* Issues a leaf of @is (CA loaded from @dir) into new files @cert_path and @key_path. */
static int issue_leaf(const char *dir, struct issue *is, const char *cert_path,
		      const char *key_path, char *errmsg, size_t errlen)
{
	char ca_cert_path[PATH_MAX], ca_key_path[PATH_MAX];
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rv = must_not_exist(cert_path, errmsg, errlen);

	if (rv == 0)
		rv = must_not_exist(key_path, errmsg, errlen);
	if (rv == 0)
		rv = join(ca_cert_path, sizeof(ca_cert_path), dir, PKI_CA_CERT, errmsg, errlen);
	if (rv == 0)
		rv = join(ca_key_path, sizeof(ca_key_path), dir, PKI_CA_KEY, errmsg, errlen);
	if (rv == 0)
		rv = load_cert(ca_cert_path, &is->ca, errmsg, errlen);
	if (rv == 0)
		rv = load_key(ca_key_path, &is->ca_key, errmsg, errlen);
	if (rv == 0 && X509_check_private_key(is->ca, is->ca_key) != 1) {
		errmsgf(errmsg, errlen, "%s is not the key of %s", ca_key_path, ca_cert_path);
		ERR_clear_error();
		rv = KMIPD_EINVAL;
	}
	if (rv == 0)
		rv = make_pair(is, cert_path, &key, &cert, errmsg, errlen);
	if (rv == 0)
		rv = write_pem(key_path, 0600, key, NULL, NULL, errmsg, errlen);
	if (rv == 0) {
		rv = write_pem(cert_path, 0644, NULL, cert, NULL, errmsg, errlen);
		if (rv != 0)
			unlink(key_path); /* ours: written above with O_EXCL */
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	X509_free(is->ca);
	EVP_PKEY_free(is->ca_key);
	return rv;
}

int pki_issue_client(const char *dir, const char *tenant, const char *client, const char *cert_path,
		     const char *key_path, char *errmsg, size_t errlen)
{
	struct issue is = {KIND_CLIENT, NULL, tenant, client, NULL, NULL};
	int rv;

	if (dir == NULL || cert_path == NULL || key_path == NULL) {
		errmsgf(errmsg, errlen, "no PKI directory or output file given");
		return KMIPD_EINVAL;
	}
	rv = check_names(tenant, client, errmsg, errlen);
	return rv != 0 ? rv : issue_leaf(dir, &is, cert_path, key_path, errmsg, errlen);
}

int pki_issue_admin(const char *dir, const char *name, const char *cert_path, const char *key_path,
		    char *errmsg, size_t errlen)
{
	struct issue is = {KIND_ADMIN, NULL, NULL, name, NULL, NULL};

	if (dir == NULL || cert_path == NULL || key_path == NULL) {
		errmsgf(errmsg, errlen, "no PKI directory or output file given");
		return KMIPD_EINVAL;
	}
	if (!pki_name_valid(name)) {
		errmsgf(errmsg, errlen,
			"administrator name \"%s\" is not 1 to %d characters of A-Z, a-z, 0-9, "
			"'.', '_' and '-'",
			name != NULL ? name : "", PKI_NAME_MAX);
		return KMIPD_EINVAL;
	}
	return issue_leaf(dir, &is, cert_path, key_path, errmsg, errlen);
}

int pki_ca_load(const char *cert_path, const char *key_path, X509 **ca, EVP_PKEY **ca_key,
		char *errmsg, size_t errlen)
{
	int rv = path_exists(key_path);

	*ca = NULL;
	*ca_key = NULL;
	if (rv == -ENOENT) {
		errmsgf(errmsg, errlen, "there is no CA key %s on this node", key_path);
		return KMIPD_ENOT_FOUND;
	}
	rv = load_cert(cert_path, ca, errmsg, errlen);
	if (rv == 0)
		rv = load_key(key_path, ca_key, errmsg, errlen);
	if (rv == 0 && X509_check_private_key(*ca, *ca_key) != 1) {
		errmsgf(errmsg, errlen, "%s is not the key of %s", key_path, cert_path);
		ERR_clear_error();
		rv = KMIPD_EINVAL;
	}
	if (rv != 0) {
		X509_free(*ca);
		EVP_PKEY_free(*ca_key);
		*ca = NULL;
		*ca_key = NULL;
	}
	return rv;
}

int pki_issue_client_cert(X509 *ca, EVP_PKEY *ca_key, const char *tenant, const char *client,
			  EVP_PKEY *public_key, X509 **cert_out, EVP_PKEY **key_out, char *errmsg,
			  size_t errlen)
{
	struct issue is = {KIND_CLIENT, NULL, tenant, client, ca, ca_key};
	int rv = check_names(tenant, client, errmsg, errlen);

	*cert_out = NULL;
	if (key_out != NULL)
		*key_out = NULL;
	if (rv != 0)
		return rv;
	if (public_key == NULL)
		return make_pair(&is, client, key_out, cert_out, errmsg, errlen);
	*cert_out = make_cert(&is, public_key);
	if (*cert_out == NULL) {
		errmsgf(errmsg, errlen, "cannot sign a certificate for client %s: %s", client,
			ssl_reason());
		return KMIPD_ECRYPTO;
	}
	return 0;
}

/* Copies a name of @len bytes into @out if it is valid. */
static bool take_name(const char *p, size_t len, char out[PKI_NAME_MAX + 1])
{
	char tmp[PKI_NAME_MAX + 1];

	if (len == 0 || len > PKI_NAME_MAX)
		return false;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	if (!pki_name_valid(tmp))
		return false;
	memcpy(out, tmp, len + 1);
	return true;
}

/* Parses one URI of @len bytes; true and the names if it is a valid kmipd identity. */
static bool parse_uri(const char *uri, size_t len, char tenant[PKI_NAME_MAX + 1],
		      char client[PKI_NAME_MAX + 1])
{
	size_t prefix_len = sizeof(URI_PREFIX) - 1, marker_len = sizeof(URI_CLIENT_MARKER) - 1;
	const char *rest, *end = uri + len, *p;

	if (len < prefix_len || memcmp(uri, URI_PREFIX, prefix_len) != 0)
		return false;
	rest = uri + prefix_len;
	/* Names cannot hold ':', so the first ":client:" is the separator. */
	for (p = rest; (size_t)(end - p) >= marker_len; p++) {
		if (memcmp(p, URI_CLIENT_MARKER, marker_len) == 0)
			return take_name(rest, (size_t)(p - rest), tenant) &&
			       take_name(p + marker_len, (size_t)(end - p - (ptrdiff_t)marker_len),
					 client);
	}
	return false;
}

int pki_cert_identity(X509 *cert, char tenant[PKI_NAME_MAX + 1], char client[PKI_NAME_MAX + 1])
{
	char t[PKI_NAME_MAX + 1], c[PKI_NAME_MAX + 1];
	char found_t[PKI_NAME_MAX + 1], found_c[PKI_NAME_MAX + 1];
	GENERAL_NAMES *names;
	int i, found = 0;

	if (cert == NULL || tenant == NULL || client == NULL)
		return KMIPD_EINVAL;
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (names == NULL) {
		ERR_clear_error();
		return KMIPD_ENOT_FOUND;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gen = sk_GENERAL_NAME_value(names, i);
		const char *data;
		int len;

		if (gen->type != GEN_URI)
			continue;
		data = (const char *)ASN1_STRING_get0_data(gen->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(gen->d.uniformResourceIdentifier);
		if (data == NULL || len <= 0 || !parse_uri(data, (size_t)len, t, c))
			continue;
		if (!found) {
			memcpy(found_t, t, sizeof(t));
			memcpy(found_c, c, sizeof(c));
			found = 1;
		} else if (strcmp(t, found_t) != 0 || strcmp(c, found_c) != 0) {
			/* Two different identities in one certificate: trust neither. */
			found = 0;
			break;
		}
	}
	GENERAL_NAMES_free(names);
	if (!found)
		return KMIPD_ENOT_FOUND;
	memcpy(tenant, found_t, sizeof(found_t));
	memcpy(client, found_c, sizeof(found_c));
	return 0;
}

bool pki_cert_is_node(X509 *cert)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool found = false;

	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);

		if (n->type == GEN_URI &&
		    (size_t)ASN1_STRING_length(n->d.uniformResourceIdentifier) ==
			    strlen(PKI_NODE_URI) &&
		    memcmp(ASN1_STRING_get0_data(n->d.uniformResourceIdentifier), PKI_NODE_URI,
			   strlen(PKI_NODE_URI)) == 0)
			found = true;
	}
	GENERAL_NAMES_free(names);
	return found;
}

int pki_cert_admin(X509 *cert, char name[PKI_NAME_MAX + 1])
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	size_t prefix_len = sizeof(URI_ADMIN) - 1;
	int found = 0;

	if (names == NULL) {
		ERR_clear_error();
		return KMIPD_ENOT_FOUND;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
		const char *data;
		int len;
		char found_name[PKI_NAME_MAX + 1];

		if (n->type != GEN_URI)
			continue;
		data = (const char *)ASN1_STRING_get0_data(n->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(n->d.uniformResourceIdentifier);
		if (data == NULL || (size_t)len <= prefix_len ||
		    memcmp(data, URI_ADMIN, prefix_len) != 0 ||
		    !take_name(data + prefix_len, (size_t)len - prefix_len, found_name))
			continue;
		if (found && strcmp(found_name, name) != 0) {
			found = 0; /* two administrators in one certificate: neither */
			break;
		}
		memcpy(name, found_name, sizeof(found_name));
		found = 1;
	}
	GENERAL_NAMES_free(names);
	return found ? 0 : KMIPD_ENOT_FOUND;
}

int pki_cert_fingerprint(X509 *cert, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (cert == NULL || out == NULL)
		return KMIPD_EINVAL;
	if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32) {
		ERR_clear_error();
		return KMIPD_ECRYPTO;
	}
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	out[64] = '\0';
	return 0;
}
