/* The node's tenant KEKs, unwrapped in locked memory, shared by all threads.
 *
 * The raft loop loads a tenant's KEK when the tenant is created or at start-up (unwrapping
 * it with the local root key, or through a cloud provider: tenant_keys.h); workers copy a
 * KEK out for the duration of one operation. Each tenant also has a state that says why
 * its KEK is missing when it is, so that its requests fail with a reason a person can act
 * on, and whether its provider answered the last time it was asked. */
#ifndef KMIPD_KEYRING_H
#define KMIPD_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/buf.h"
#include "kmipd/crypto.h"

struct keyring;

/* A keyring whose local tenants' KEKs are wrapped by @root (the local root key; copied).
 * NULL on ENOMEM. */
struct keyring *keyring_new(const struct crypto_key *root);
/* Wipes every key and frees the keyring. */
void keyring_free(struct keyring *ring);

/* A tenant has one current KEK and, while its objects are re-sealed after a rotation, the
 * version before it ("retiring"). New material is sealed with the current one; material is
 * opened with the version its sealed blob names (crypto_sealed_info). */

/* Unwraps @wrapped, version @version of @tenant's KEK, with the local root key and keeps it
 * as the current KEK, or (@retiring) as the retiring one. 0, KMIPD_ECRYPTO /
 * KMIPD_EMALFORMED (the root key does not open it) or KMIPD_ENOMEM. */
int keyring_load(struct keyring *ring, const char *tenant, uint32_t version, const uint8_t *wrapped,
		 size_t len, bool retiring);

/* Makes a new random KEK, version @version, for @tenant and appends it, wrapped with the
 * local root key, to @wrapped. Nothing is kept: keyring_load() keeps the KEK once the
 * change is committed. 0, KMIPD_ECRYPTO or KMIPD_ENOMEM. */
int keyring_make(struct keyring *ring, const char *tenant, uint32_t version, struct buf *wrapped);

/* Wipes and forgets @tenant's KEKs (the tenant was deleted). 0, or KMIPD_ENOT_FOUND if
 * it had none. */
int keyring_drop(struct keyring *ring, const char *tenant);

/* Keeps a copy of @kek, version @version unwrapped by a provider, as @tenant's current KEK
 * (the tenant is served) or as its retiring one. */
int keyring_put(struct keyring *ring, const char *tenant, uint32_t version,
		const struct crypto_key *kek, bool retiring);

/* Wipes @tenant's retiring KEK: every object is sealed with the current one. */
void keyring_retire(struct keyring *ring, const char *tenant);

enum keyring_state {
	KEYRING_READY,	 /* the KEK is here */
	KEYRING_PENDING, /* not unwrapped yet: the provider has not answered (or is not set up) */
	KEYRING_REVOKED, /* the provider refused the root key: the KEK was wiped */
};

/* Sets @tenant's state to PENDING or REVOKED with @reason (a sentence for clients and
 * logs). REVOKED wipes the KEKs. PENDING keeps a KEK already here: the provider is only
 * unreachable then, which keyring_note records. 0 or KMIPD_ENOMEM. */
int keyring_mark(struct keyring *ring, const char *tenant, enum keyring_state state,
		 const char *reason);

/* Records whether @tenant's provider answered the last check (@reason says why not). */
void keyring_note(struct keyring *ring, const char *tenant, bool provider_ok, const char *reason);

/* Copies version @version of @tenant's KEK (0: the current one) into @out, and its version
 * into *@got (if not NULL). 0, KMIPD_ENOT_FOUND (no such tenant or version here),
 * KMIPD_EPERMISSION (REVOKED) or KMIPD_EUNAVAILABLE (PENDING). The caller wipes @out after
 * use (crypto_key_free or OPENSSL_cleanse). */
int keyring_get(struct keyring *ring, const char *tenant, uint32_t version, struct crypto_key *out,
		uint32_t *got);

/* What keyring_get() would return for the current KEK, copying nothing; for a non-zero
 * code, the reason goes into @why. */
int keyring_check(struct keyring *ring, const char *tenant, char *why, size_t len);

/* One tenant's state, for health output. */
struct keyring_view {
	enum keyring_state state;
	bool provider_ok;     /* the provider answered the last check (always, for local) */
	char reason[320];     /* why it is not READY, or why the provider did not answer */
	int64_t since;	      /* when the state or provider_ok last changed (Unix seconds) */
	uint32_t version;     /* of the current KEK here (0: none) */
	uint32_t old_version; /* of the retiring KEK here (0: none) */
};

/* 0 or KMIPD_ENOT_FOUND. */
int keyring_view(struct keyring *ring, const char *tenant, struct keyring_view *out);

#endif
