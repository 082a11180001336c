/* Keeping each tenant's KEK in the keyring as its root-key provider allows, on the raft
 * loop's thread.
 *
 * A local tenant's KEK is unwrapped at once with the node's root key file. A tenant whose
 * root key is in Key Protect or HPCS is unwrapped by the provider when the node starts or
 * learns of the tenant, and again every check interval:
 *
 *   - the provider unwraps it: the tenant is served (again, if it was refused);
 *   - the provider refuses the root key (disabled, deleted, unknown, access taken away):
 *     the KEK is wiped from memory and the tenant's requests fail with that reason until
 *     a later check succeeds;
 *   - the provider cannot be reached: a KEK already here keeps serving and the condition
 *     shows in health output; without one, the tenant waits, asked again with backoff.
 *
 * When an unwrap hands back the KEK wrapped anew (the root key was rotated), the new form
 * is given to the @rewrapped callback, which replicates it. */
#ifndef KMIPD_TENANT_KEYS_H
#define KMIPD_TENANT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "kmipd/config.h"
#include "kmipd/keyring.h"
#include "kmipd/store.h"

/* The AAD a tenant's KEK is wrapped with by a cloud provider: the strings
 * "kmipd-kek", "tenant:<name>", "kek-version:<version>". @bufs holds the last two. */
#define TENANT_KEYS_AAD 3
void tenant_keys_aad(const char *tenant, unsigned version, char bufs[2][80],
		     const char *aad[TENANT_KEYS_AAD]);

struct tenant_keys_config {
	uv_loop_t *loop;
	struct keyring *keyring;
	/* The providers' settings; one whose url is "" is not set up on this node. */
	const struct provider_config *keyprotect, *hpcs;
	unsigned check_interval_ms; /* 0 = 300000 */
	/* A cloud tenant's KEK came back wrapped anew (@ciphertext) in place of @old. */
	void (*rewrapped)(void *arg, const char *tenant, const uint8_t *old, size_t old_len,
			  const char *ciphertext);
	void *arg;
};

struct tenant_keys;

/* 0, or an error with a sentence in @errmsg (a provider's settings are incomplete, its API
 * key unreadable). */
int tenant_keys_new(const struct tenant_keys_config *config, struct tenant_keys **out, char *errmsg,
		    size_t errlen);

/* Stops every check; the structure is freed once libuv has closed its handles. */
void tenant_keys_close(struct tenant_keys *tk);

/* @t is what the store holds for a tenant now (at start-up, after it was created or its
 * KEK rewrapped, after a snapshot was restored): load its KEK, or start asking its
 * provider. A deleted record is forgotten. @t is copied. */
void tenant_keys_update(struct tenant_keys *tk, const struct store_tenant *t);

/* The tenant was deleted: stop checking it and wipe its KEK. */
void tenant_keys_forget(struct tenant_keys *tk, const char *tenant);

/* Whether @type ("local", "keyprotect", "hpcs") names a provider. */
bool tenant_keys_provider_known(const char *type);

#endif
