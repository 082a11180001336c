/* Key material handling: randomness, unique identifiers, sealing object material under a
 * tenant KEK with AES-256-GCM, and the local root key that wraps tenant KEKs.
 *
 * Every buffer that held a secret is wiped (OPENSSL_cleanse) before it is released. Secrets
 * that live long (KEKs, the root key) are kept in struct crypto_key, whose storage is
 * locked into memory (mlock) when the process is allowed to. */
#ifndef KMIPD_CRYPTO_H
#define KMIPD_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/buf.h"

#define CRYPTO_KEY_LEN		32 /* AES-256 */
#define CRYPTO_SEAL_VERSION	1  /* sealed under KEK version 1 (or a root key) */
#define CRYPTO_SEAL_VERSION_KEK 2  /* the KEK version follows, 4 bytes big-endian */
/* format (1) + nonce (12) + tag (16); format 2 adds 4 */
#define CRYPTO_SEAL_OVERHEAD (1 + 12 + 16)

/* A 256-bit secret key. Allocate with crypto_key_new(); never copy it by value. */
struct crypto_key {
	uint8_t bytes[CRYPTO_KEY_LEN];
};

/* A locked, zeroed key (NULL when out of memory); free with crypto_key_free(), which wipes
 * it. */
struct crypto_key *crypto_key_new(void);
void crypto_key_free(struct crypto_key *key);

/* The calling thread's scratch key: locked once, reused by every operation on the thread,
 * freed when the thread exits. Give it back with crypto_key_return(), which wipes it;
 * never hold it across a function that may borrow it too. NULL when out of memory. */
struct crypto_key *crypto_key_borrow(void);
void crypto_key_return(struct crypto_key *key);

/* Fills @buf with @len bytes from OpenSSL's DRBG. 0 or KMIPD_ECRYPTO. */
int crypto_random(void *buf, size_t len);

/* Writes a time-ordered (version 7: 48 bits of Unix milliseconds, 12 bits of fraction of a
 * millisecond, 62 random bits) UUID in canonical lower-case form, NUL-terminated, into
 * @out (37 bytes). 0 or KMIPD_ECRYPTO. Within a process, each one sorts after the one
 * made before it (across threads too), so each new object's key lands at the right-hand
 * end of the store's B-tree: at 300,000 keys, random UUIDs made every Create dirty a page
 * of its own. */
int crypto_uuid(char out[37]);

/* A request id (struct command.request_id) ordered the same way: 48 bits of Unix
 * milliseconds, 4 zero bits, 12 bits of fraction, then 64 random bits. 0 or
 * KMIPD_ECRYPTO. */
int crypto_request_id(uint8_t out[16]);

/* Seals @len bytes of @plain under @key with AES-256-GCM, binding @aad (@aad_len bytes:
 * who the material belongs to, so a sealed blob cannot be moved to another object or
 * tenant). Appends version | nonce | ciphertext | tag to @out. 0, KMIPD_ENOMEM or
 * KMIPD_ECRYPTO. */
int crypto_seal(const struct crypto_key *key, const void *aad, size_t aad_len, const uint8_t *plain,
		size_t len, struct buf *out);

/* crypto_seal() for material sealed under version @kek_version of a tenant's KEK: the
 * blob records the version (format 2), so that whoever opens it knows which KEK to use.
 * Version 1 writes format 1, as crypto_seal() does. */
int crypto_seal_kek(const struct crypto_key *key, uint32_t kek_version, const void *aad,
		    size_t aad_len, const uint8_t *plain, size_t len, struct buf *out);

/* Reads a sealed blob's header: the KEK version it was sealed under (1 for format 1) and
 * how many plaintext bytes it holds. 0 or KMIPD_EMALFORMED. */
int crypto_sealed_info(const uint8_t *sealed, size_t sealed_len, uint32_t *kek_version,
		       size_t *plain_len);

/* Opens a blob made by crypto_seal() or crypto_seal_kek() with the same @key and @aad,
 * writing its plaintext (crypto_sealed_info's @plain_len bytes) to @plain. 0,
 * KMIPD_EMALFORMED (not a sealed blob of a known format) or KMIPD_ECRYPTO (wrong key, wrong
 * AAD or tampered: nothing is written to @plain). */
int crypto_open(const struct crypto_key *key, const void *aad, size_t aad_len,
		const uint8_t *sealed, size_t sealed_len, uint8_t *plain);

/* The AAD that binds object material to its tenant, unique identifier and object type:
 * "kmipd-object\0" tenant "\0" uid "\0" type (4 bytes, big-endian). Writes at most @cap
 * bytes to @out and returns the length (0 if @cap is too small). */
size_t crypto_object_aad(uint8_t *out, size_t cap, const char *tenant, const char *uid,
			 uint32_t object_type);

/* The local root key provider: one AES-256 key in a file of exactly 32 bytes, mode 0600.
 *
 * Loads the key at @path into @key. With @create, a missing file is created (random key,
 * O_EXCL, mode 0600, fsynced with its directory). A file with a different size, or
 * readable or writable by group or others, is refused. On failure a sentence naming the
 * path and the problem goes into @errmsg. */
int crypto_root_key_load(const char *path, bool create, struct crypto_key *key, char *errmsg,
			 size_t errlen);

/* Wraps version @version of a tenant KEK with the root key: crypto_seal() with AAD
 * "kmipd-kek\0" tenant, followed for versions after 1 by "\0v" and the version. */
int crypto_kek_wrap(const struct crypto_key *root, const char *tenant, uint32_t version,
		    const struct crypto_key *kek, struct buf *out);

/* Unwraps what crypto_kek_wrap() made. 0, KMIPD_EMALFORMED or KMIPD_ECRYPTO (wrong root key,
 * or the wrapped KEK belongs to another tenant or version). */
int crypto_kek_unwrap(const struct crypto_key *root, const char *tenant, uint32_t version,
		      const uint8_t *wrapped, size_t len, struct crypto_key *kek);

/* Turns off core dumps for this process (prctl PR_SET_DUMPABLE and RLIMIT_CORE = 0), so a
 * crash cannot write key material to disk. */
void crypto_disable_core_dumps(void);

#endif
