/* The node's tenant KEKs, unwrapped in locked memory, shared by all threads.
 *
 * The raft loop loads a tenant's KEK when the tenant is created or at start-up (unwrapping
 * it with the root key); workers copy a KEK out for the duration of one operation. A tenant
 * whose KEK cannot be unwrapped stays absent and its requests fail with a clear reason. */
#ifndef KMIPD_KEYRING_H
#define KMIPD_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "kmipd/buf.h"
#include "kmipd/crypto.h"

struct keyring;

/* A keyring whose KEKs are wrapped by @root (the local root key; copied). NULL on ENOMEM. */
struct keyring *keyring_new(const struct crypto_key *root);
/* Wipes every key and frees the keyring. */
void keyring_free(struct keyring *ring);

/* Unwraps @wrapped for @tenant and keeps it. 0, KMIPD_ECRYPTO / KMIPD_EMALFORMED (the root
 * key does not open it) or KMIPD_ENOMEM. Loading a tenant again replaces its KEK. */
int keyring_load(struct keyring *ring, const char *tenant, const uint8_t *wrapped, size_t len);

/* Makes a new random KEK for @tenant and appends it, wrapped with the root key, to
 * @wrapped. Nothing is kept: keyring_load() keeps the KEK once the tenant is committed.
 * 0, KMIPD_ECRYPTO or KMIPD_ENOMEM. */
int keyring_make(struct keyring *ring, const char *tenant, struct buf *wrapped);

/* Wipes and forgets @tenant's KEK (the tenant was deleted). 0, or KMIPD_ENOT_FOUND if
 * it had none. */
int keyring_drop(struct keyring *ring, const char *tenant);

/* Copies @tenant's KEK into @out. 0 or KMIPD_ENOT_FOUND. The caller wipes @out after use
 * (crypto_key_free or OPENSSL_cleanse). */
int keyring_get(struct keyring *ring, const char *tenant, struct crypto_key *out);

#endif
