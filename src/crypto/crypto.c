/* Key material handling (see include/kmipd/crypto.h): locked key storage, randomness, UUIDs,
 * AES-256-GCM sealing, the local root key file and tenant KEK wrapping. */
#include "kmipd/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "kmipd/error.h"
#include "kmipd/fsutil.h"

#define NONCE_LEN 12
#define TAG_LEN	  16

static const char kek_aad_prefix[] = "kmipd-kek"; /* the terminating NUL is part of it */
static const char object_aad_prefix[] = "kmipd-object";

/* One page per key, so that mlock() and munlock() of one key never touch another's page. */
static size_t key_alloc_size(void)
{
	long page = sysconf(_SC_PAGESIZE);

	if (page < (long)sizeof(struct crypto_key))
		return 4096;
	return (size_t)page;
}

/* A zeroed page that is locked in memory (best effort: without CAP_IPC_LOCK or with a small
 * RLIMIT_MEMLOCK it may merely be swapped out) and left out of core dumps. */
static void *secret_page_new(void)
{
	size_t size = key_alloc_size();
	void *p = NULL;

	if (posix_memalign(&p, size, size) != 0)
		return NULL;
	memset(p, 0, size);
	(void)mlock(p, size);
#ifdef MADV_DONTDUMP
	(void)madvise(p, size, MADV_DONTDUMP);
#endif
	return p;
}

static void secret_page_free(void *p)
{
	size_t size = key_alloc_size();

	if (p == NULL)
		return;
	OPENSSL_cleanse(p, size);
	(void)munlock(p, size);
	free(p);
}

struct crypto_key *crypto_key_new(void)
{
	return secret_page_new();
}

void crypto_key_free(struct crypto_key *key)
{
	secret_page_free(key);
}

/* One locked key per thread for keys needed only during one operation, so a request does
 * not pay for mlock/munlock (which take the process's memory-map lock) every time. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *key)
{
	crypto_key_free(key);
}

static void scratch_init(void)
{
	(void)pthread_key_create(&scratch_key, scratch_free);
}

struct crypto_key *crypto_key_borrow(void)
{
	struct crypto_key *key;

	pthread_once(&scratch_once, scratch_init);
	key = pthread_getspecific(scratch_key);
	if (key == NULL) {
		key = crypto_key_new();
		if (key != NULL && pthread_setspecific(scratch_key, key) != 0) {
			crypto_key_free(key);
			key = NULL;
		}
	}
	return key;
}

void crypto_key_return(struct crypto_key *key)
{
	if (key != NULL)
		OPENSSL_cleanse(key->bytes, sizeof(key->bytes));
}

static int random_direct(uint8_t *p, size_t len)
{
	/* RAND_bytes takes an int length. */
	while (len > 0) {
		int n = len > INT_MAX ? INT_MAX : (int)len;

		if (RAND_bytes(p, n) != 1)
			return KMIPD_ECRYPTO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Small draws (identifiers, keys, IVs) come from a pool per thread that OpenSSL's DRBG
 * refills a page at a time. Each RAND_bytes costs a getpid system call (OpenSSL 3.0's
 * fork check) and a Create made four: 8% of a KMIP worker's time on a paravirtualised
 * kernel. The pool is a locked page left out of core dumps, like a key; bytes leave it
 * once and are wiped as they go; the page is wiped when its thread ends, and a forked
 * child forgets what its parent's thread had drawn. */
#define RANDOM_POOLED_MAX 64

struct random_pool {
	size_t next; /* first unused byte of bytes[]; bytes[next..] not yet handed out */
	uint8_t bytes[];
};

static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static size_t pool_capacity(void)
{
	return key_alloc_size() - offsetof(struct random_pool, bytes);
}

static void pool_forget(void)
{
	struct random_pool *pool = pthread_getspecific(pool_key);

	if (pool != NULL) {
		OPENSSL_cleanse(pool->bytes, pool_capacity());
		pool->next = pool_capacity();
	}
}

static void pool_init(void)
{
	(void)pthread_key_create(&pool_key, secret_page_free);
	(void)pthread_atfork(NULL, NULL, pool_forget);
}

static struct random_pool *pool_get(void)
{
	struct random_pool *pool;

	pthread_once(&pool_once, pool_init);
	pool = pthread_getspecific(pool_key);
	if (pool == NULL) {
		pool = secret_page_new();
		if (pool == NULL)
			return NULL;
		if (pthread_setspecific(pool_key, pool) != 0) {
			secret_page_free(pool);
			return NULL;
		}
		pool->next = pool_capacity();
	}
	return pool;
}

int crypto_random(void *buf, size_t len)
{
	struct random_pool *pool = len <= RANDOM_POOLED_MAX ? pool_get() : NULL;

	if (pool == NULL)
		return random_direct(buf, len);
	if (pool_capacity() - pool->next < len) {
		if (random_direct(pool->bytes, pool_capacity()) != 0) {
			pool_forget();
			return KMIPD_ECRYPTO;
		}
		pool->next = 0;
	}
	memcpy(buf, pool->bytes + pool->next, len);
	OPENSSL_cleanse(pool->bytes + pool->next, len);
	pool->next += len;
	return 0;
}

/* The last stamp handed out in this process: Unix milliseconds << 12 | the 4,096ths of a
 * millisecond since (RFC 9562's method 3, "increased clock precision"). */
static _Atomic uint64_t last_stamp;

/* Writes the next stamp into @out: 48 bits of milliseconds, big-endian, in out[0..5], and
 * 12 bits of fraction in the low nibble of out[6] (its high nibble 0) and all of out[7].
 * Stamps strictly increase within the process, across threads, even when the clock gives
 * the same fraction twice or steps back (the stamp then runs ahead of the clock until it
 * catches up), so identifiers made one after another sort in that order. The B-trees they key
 * grow at the right-hand edge, where LMDB splits a full page so that the old one stays
 * full; a key that lands just before the last one splits it in the middle instead, and
 * with ties within a millisecond broken by random bits, the store's pages were left
 * two-thirds full. */
static void put_stamp(uint8_t out[8])
{
	struct timespec ts;
	uint64_t now, last, next;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) << 12 |
	      (uint64_t)(ts.tv_nsec % 1000000) * 4096 / 1000000;
	last = atomic_load_explicit(&last_stamp, memory_order_relaxed);
	do
		next = now > last ? now : last + 1;
	while (!atomic_compare_exchange_weak_explicit(&last_stamp, &last, next,
						      memory_order_relaxed, memory_order_relaxed));
	out[7] = (uint8_t)next;
	out[6] = (uint8_t)((next >> 8) & 0x0f);
	next >>= 12;
	for (int i = 5; i >= 0; i--, next >>= 8)
		out[i] = (uint8_t)next;
}

int crypto_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	size_t i, o = 0;

	if (crypto_random(b, sizeof(b)) != 0)
		return KMIPD_ECRYPTO;
	put_stamp(b);
	b[6] |= 0x70;				/* version 7 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
	for (i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
	return 0;
}

int crypto_request_id(uint8_t out[16])
{
	if (crypto_random(out, 16) != 0)
		return KMIPD_ECRYPTO;
	put_stamp(out);
	return 0;
}

/* Feeds the blob's header (its format byte, and for format 2 the KEK version) and then
 * @aad into a GCM context as additional data. */
static int add_aad(EVP_CIPHER_CTX *ctx, int encrypt, const uint8_t *header, size_t header_len,
		   const void *aad, size_t aad_len)
{
	const uint8_t *p = aad;
	int outl;

	if ((encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate)(ctx, NULL, &outl, header,
							      (int)header_len) != 1)
		return -1;
	while (aad_len > 0) {
		int n = aad_len > INT_MAX ? INT_MAX : (int)aad_len;

		if ((encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate)(ctx, NULL, &outl, p, n) != 1)
			return -1;
		p += n;
		aad_len -= (size_t)n;
	}
	return 0;
}

/* The header of a blob sealed under KEK version @kek_version: format 1 (one byte) for
 * version 1, which every kmipd reads, else format 2 with the version after it. */
static size_t seal_header(uint32_t kek_version, uint8_t header[5])
{
	if (kek_version <= 1) {
		header[0] = CRYPTO_SEAL_VERSION;
		return 1;
	}
	header[0] = CRYPTO_SEAL_VERSION_KEK;
	header[1] = (uint8_t)(kek_version >> 24);
	header[2] = (uint8_t)(kek_version >> 16);
	header[3] = (uint8_t)(kek_version >> 8);
	header[4] = (uint8_t)kek_version;
	return 5;
}

int crypto_sealed_info(const uint8_t *sealed, size_t sealed_len, uint32_t *kek_version,
		       size_t *plain_len)
{
	size_t header;

	if (sealed == NULL || sealed_len == 0)
		return KMIPD_EMALFORMED;
	if (sealed[0] == CRYPTO_SEAL_VERSION) {
		header = 1;
		*kek_version = 1;
	} else if (sealed[0] == CRYPTO_SEAL_VERSION_KEK && sealed_len >= 5) {
		header = 5;
		*kek_version = (uint32_t)sealed[1] << 24 | (uint32_t)sealed[2] << 16 |
			       (uint32_t)sealed[3] << 8 | sealed[4];
		if (*kek_version < 2)
			return KMIPD_EMALFORMED;
	} else {
		return KMIPD_EMALFORMED;
	}
	if (sealed_len < header + NONCE_LEN + TAG_LEN)
		return KMIPD_EMALFORMED;
	*plain_len = sealed_len - header - NONCE_LEN - TAG_LEN;
	return 0;
}

int crypto_seal_kek(const struct crypto_key *key, uint32_t kek_version, const void *aad,
		    size_t aad_len, const uint8_t *plain, size_t len, struct buf *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t header[5], *p, *nonce, *cipher, *tag;
	size_t header_len = seal_header(kek_version, header);
	size_t total = header_len + NONCE_LEN + TAG_LEN + len;
	int outl, rv = KMIPD_ECRYPTO;

	if (key == NULL || out == NULL || (plain == NULL && len > 0) ||
	    (aad == NULL && aad_len > 0))
		return KMIPD_EINVAL;
	if (len > INT_MAX)
		return KMIPD_ETOO_LARGE;
	rv = buf_reserve(out, total);
	if (rv != 0)
		return rv;
	rv = KMIPD_ECRYPTO;

	/* Written in place after out->len; len is only advanced once everything succeeded. */
	p = out->data + out->len;
	memcpy(p, header, header_len);
	nonce = p + header_len;
	cipher = nonce + NONCE_LEN;
	tag = cipher + len;
	if (crypto_random(nonce, NONCE_LEN) != 0)
		goto err;

	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto err;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key->bytes, nonce) != 1)
		goto err;
	if (add_aad(ctx, 1, header, header_len, aad, aad_len) != 0)
		goto err;
	if (len > 0 &&
	    (EVP_EncryptUpdate(ctx, cipher, &outl, plain, (int)len) != 1 || (size_t)outl != len))
		goto err;
	if (EVP_EncryptFinal_ex(ctx, cipher + len, &outl) != 1 || outl != 0)
		goto err;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		goto err;
	EVP_CIPHER_CTX_free(ctx);
	out->len += total;
	return 0;

err:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(p, total);
	return rv;
}

int crypto_seal(const struct crypto_key *key, const void *aad, size_t aad_len, const uint8_t *plain,
		size_t len, struct buf *out)
{
	return crypto_seal_kek(key, 1, aad, aad_len, plain, len, out);
}

int crypto_open(const struct crypto_key *key, const void *aad, size_t aad_len,
		const uint8_t *sealed, size_t sealed_len, uint8_t *plain)
{
	EVP_CIPHER_CTX *ctx = NULL;
	const uint8_t *nonce, *cipher, *tag;
	uint8_t *tmp = NULL;
	size_t len;
	int outl, rv = KMIPD_ECRYPTO;

	uint32_t kek_version;
	size_t header_len;

	if (key == NULL || (aad == NULL && aad_len > 0) || (sealed == NULL && sealed_len > 0))
		return KMIPD_EINVAL;
	if (crypto_sealed_info(sealed, sealed_len, &kek_version, &len) != 0)
		return KMIPD_EMALFORMED;
	header_len = sealed_len - len - NONCE_LEN - TAG_LEN;
	if (len > INT_MAX)
		return KMIPD_ETOO_LARGE;
	if (plain == NULL && len > 0)
		return KMIPD_EINVAL;
	nonce = sealed + header_len;
	cipher = nonce + NONCE_LEN;
	tag = cipher + len;

	/* Decrypt aside: the caller's buffer sees plaintext only once the tag has verified. */
	tmp = malloc(len > 0 ? len : 1);
	if (tmp == NULL)
		return KMIPD_ENOMEM;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto out;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key->bytes, nonce) != 1)
		goto out;
	if (add_aad(ctx, 0, sealed, header_len, aad, aad_len) != 0)
		goto out;
	if (len > 0 &&
	    (EVP_DecryptUpdate(ctx, tmp, &outl, cipher, (int)len) != 1 || (size_t)outl != len))
		goto out;
	/* The ctrl takes a non-const pointer but only reads the tag for decryption. */
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(uintptr_t)tag) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, tmp + len, &outl) != 1)
		goto out;
	if (len > 0)
		memcpy(plain, tmp, len);
	rv = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(tmp, len > 0 ? len : 1);
	free(tmp);
	return rv;
}

size_t crypto_object_aad(uint8_t *out, size_t cap, const char *tenant, const char *uid,
			 uint32_t object_type)
{
	size_t prefix_len = sizeof(object_aad_prefix); /* with its NUL */
	size_t tenant_len, uid_len, need, o = 0;

	if (out == NULL || tenant == NULL || uid == NULL)
		return 0;
	tenant_len = strlen(tenant);
	uid_len = strlen(uid);
	need = prefix_len + tenant_len + 1 + uid_len + 1 + 4;
	if (need > cap || need < tenant_len || need < uid_len)
		return 0;
	memcpy(out + o, object_aad_prefix, prefix_len);
	o += prefix_len;
	memcpy(out + o, tenant, tenant_len + 1);
	o += tenant_len + 1;
	memcpy(out + o, uid, uid_len + 1);
	o += uid_len + 1;
	out[o++] = (uint8_t)(object_type >> 24);
	out[o++] = (uint8_t)(object_type >> 16);
	out[o++] = (uint8_t)(object_type >> 8);
	out[o++] = (uint8_t)object_type;
	return o;
}

/* Writes all of @len bytes. 0 or -errno. */
static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates @path holding a fresh random key. -EEXIST if someone else created it first. */
static int create_root_key(const char *path, struct crypto_key *key, char *errmsg, size_t errlen)
{
	uint8_t fresh[CRYPTO_KEY_LEN];
	int fd, rv;

	if (crypto_random(fresh, sizeof(fresh)) != 0) {
		errmsgf(errmsg, errlen,
			"cannot generate a root key for %s: the random generator failed", path);
		return KMIPD_ECRYPTO;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rv = -errno;
		if (rv != -EEXIST)
			errmsgf(errmsg, errlen, "cannot create root key file %s: %s", path,
				strerror(-rv));
		goto out;
	}
	rv = write_all(fd, fresh, sizeof(fresh));
	if (rv == 0 && fsync(fd) != 0)
		rv = -errno;
	if (close(fd) != 0 && rv == 0)
		rv = -errno;
	if (rv == 0)
		rv = fsync_parent_dir(path);
	if (rv != 0) {
		errmsgf(errmsg, errlen, "cannot write root key file %s: %s", path,
			kmipd_strerror(rv));
		/* A partial key file would be refused on the next start; do not leave one. */
		unlink(path);
		goto out;
	}
	memcpy(key->bytes, fresh, sizeof(fresh));
out:
	OPENSSL_cleanse(fresh, sizeof(fresh));
	return rv;
}

/* Reads the key from an open root key file, checking its type, mode and size first. */
static int read_root_key(int fd, const char *path, struct crypto_key *key, char *errmsg,
			 size_t errlen)
{
	uint8_t tmp[CRYPTO_KEY_LEN + 1];
	struct stat st;
	size_t got = 0;
	int rv = 0;

	if (fstat(fd, &st) != 0) {
		rv = -errno;
		errmsgf(errmsg, errlen, "cannot stat root key file %s: %s", path, strerror(-rv));
		return rv;
	}
	if (!S_ISREG(st.st_mode)) {
		errmsgf(errmsg, errlen, "root key file %s is not a regular file", path);
		return KMIPD_EINVAL;
	}
	if ((st.st_mode & 077) != 0) {
		errmsgf(errmsg, errlen,
			"root key file %s is %s by other users (mode 0%03o); chmod 600 it", path,
			(st.st_mode & 044) != 0	  ? "readable"
			: (st.st_mode & 022) != 0 ? "writable"
						  : "accessible",
			(unsigned)(st.st_mode & 0777));
		return KMIPD_EPERMISSION;
	}
	if (st.st_size != CRYPTO_KEY_LEN) {
		errmsgf(errmsg, errlen,
			"root key file %s is %lld bytes long; a root key file holds exactly %d "
			"bytes",
			path, (long long)st.st_size, CRYPTO_KEY_LEN);
		return KMIPD_ECORRUPT;
	}
	/* Read one byte more than expected to notice a file that grew since fstat(). */
	while (got < sizeof(tmp)) {
		ssize_t n = read(fd, tmp + got, sizeof(tmp) - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rv = -errno;
			errmsgf(errmsg, errlen, "cannot read root key file %s: %s", path,
				strerror(-rv));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got != CRYPTO_KEY_LEN) {
		errmsgf(errmsg, errlen,
			"root key file %s changed size while being read; a root key file holds "
			"exactly %d bytes",
			path, CRYPTO_KEY_LEN);
		rv = KMIPD_ECORRUPT;
		goto out;
	}
	memcpy(key->bytes, tmp, CRYPTO_KEY_LEN);
out:
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return rv;
}

int crypto_root_key_load(const char *path, bool create, struct crypto_key *key, char *errmsg,
			 size_t errlen)
{
	int attempt, fd, rv;

	if (path == NULL || key == NULL) {
		errmsgf(errmsg, errlen, "no root key file given");
		return KMIPD_EINVAL;
	}
	/* Two rounds: a concurrent creator may win the O_EXCL race, then we read its file. */
	for (attempt = 0; attempt < 2; attempt++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			rv = read_root_key(fd, path, key, errmsg, errlen);
			close(fd);
			return rv;
		}
		rv = -errno;
		if (rv != -ENOENT || !create) {
			if (rv == -ENOENT)
				errmsgf(errmsg, errlen, "root key file %s does not exist", path);
			else
				errmsgf(errmsg, errlen, "cannot open root key file %s: %s", path,
					strerror(-rv));
			return rv;
		}
		rv = create_root_key(path, key, errmsg, errlen);
		if (rv != -EEXIST)
			return rv;
	}
	errmsgf(errmsg, errlen, "root key file %s keeps appearing and disappearing", path);
	return KMIPD_EAGAIN;
}

/* "kmipd-kek\0" tenant, and for KEK versions after the first "\0v" and the version in
 * decimal, in a new allocation (free() it). */
static uint8_t *kek_aad(const char *tenant, uint32_t version, size_t *len)
{
	size_t tenant_len = strlen(tenant);
	char suffix[16] = "";
	size_t suffix_len = 0;
	uint8_t *aad;

	if (version > 1)
		suffix_len = (size_t)snprintf(suffix, sizeof(suffix), "%cv%u", '\0', version);
	*len = sizeof(kek_aad_prefix) + tenant_len + suffix_len;
	aad = malloc(*len);
	if (aad == NULL)
		return NULL;
	memcpy(aad, kek_aad_prefix, sizeof(kek_aad_prefix));
	memcpy(aad + sizeof(kek_aad_prefix), tenant, tenant_len);
	memcpy(aad + sizeof(kek_aad_prefix) + tenant_len, suffix, suffix_len);
	return aad;
}

int crypto_kek_wrap(const struct crypto_key *root, const char *tenant, uint32_t version,
		    const struct crypto_key *kek, struct buf *out)
{
	uint8_t *aad;
	size_t aad_len;
	int rv;

	if (root == NULL || tenant == NULL || kek == NULL || out == NULL)
		return KMIPD_EINVAL;
	aad = kek_aad(tenant, version, &aad_len);
	if (aad == NULL)
		return KMIPD_ENOMEM;
	rv = crypto_seal(root, aad, aad_len, kek->bytes, CRYPTO_KEY_LEN, out);
	free(aad);
	return rv;
}

int crypto_kek_unwrap(const struct crypto_key *root, const char *tenant, uint32_t version,
		      const uint8_t *wrapped, size_t len, struct crypto_key *kek)
{
	uint8_t *aad;
	size_t aad_len;
	int rv;

	if (root == NULL || tenant == NULL || kek == NULL || (wrapped == NULL && len > 0))
		return KMIPD_EINVAL;
	if (len != CRYPTO_SEAL_OVERHEAD + CRYPTO_KEY_LEN)
		return KMIPD_EMALFORMED;
	aad = kek_aad(tenant, version, &aad_len);
	if (aad == NULL)
		return KMIPD_ENOMEM;
	/* crypto_open() writes nothing unless the tag verifies. */
	rv = crypto_open(root, aad, aad_len, wrapped, len, kek->bytes);
	free(aad);
	return rv;
}

void crypto_disable_core_dumps(void)
{
	struct rlimit none = {0, 0};

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &none);
}
