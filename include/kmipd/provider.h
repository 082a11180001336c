/* Root-key providers in the cloud: IBM Key Protect and Hyper Protect Crypto Services,
 * which serve the same key API at different addresses. A provider wraps and unwraps tenant
 * KEKs with a customer's root key that never leaves the service.
 *
 * Every call is asynchronous: it runs on the libuv loop the provider was made on (HTTPS
 * through http_client.h) and reports through a callback on that loop. A provider keeps an
 * IAM token, renewed before it expires and once more when the key API answers 401. Calls
 * that meet a connection error, 429 or a 5xx other than 501 are retried with exponential
 * backoff (honouring Retry-After) before they report the provider unavailable. Each HTTP
 * request carries a fresh correlation-id, which is logged.
 *
 * The API key is read once, from a file or an environment variable the configuration
 * names, and kept in locked memory; it is never logged. */
#ifndef KMIPD_PROVIDER_H
#define KMIPD_PROVIDER_H

#include <stdbool.h>

#include <uv.h>

#include "kmipd/config.h"
#include "kmipd/crypto.h"

/* What an answer means for the keys a root key protects. */
enum provider_verdict {
	PROVIDER_OK,
	/* The root key cannot be used: disabled or not active (409), deleted (410), unknown
	 * (404), or this node's access was taken away (401 after a renewed token, 403, or
	 * an API key IAM no longer knows). What it protects must be dropped. */
	PROVIDER_REVOKED,
	/* No answer about the key: unreachable, timed out, throttled or failing after the
	 * retries, a 501 (not retried), or an HPCS crypto unit that is not initialised.
	 * Keep what is cached. */
	PROVIDER_UNAVAILABLE,
	/* The provider says the request is wrong: not a root key, a ciphertext that does not
	 * open with this AAD, a malformed answer. */
	PROVIDER_REFUSED,
};

struct provider_result {
	enum provider_verdict verdict;
	bool canceled;	  /* the provider was closed before an answer came */
	long http_status; /* of the last answer; 0 if none came */
	char reason[320]; /* what happened, for logs and clients, with the service's code */
	char correlation_id[37];
	/* unwrap, rewrap: the plaintext KEK (unwrap only); valid during the callback and
	 * wiped afterwards. */
	const struct crypto_key *kek;
	/* wrap, rewrap: the new wrapped KEK. unwrap: the KEK wrapped again under the root
	 * key's current version when it was rotated since (store it), else NULL. Opaque
	 * text; valid during the callback. */
	const char *ciphertext;
	const char *key_version; /* the root key version @ciphertext (or the unwrap) used */
	int key_state;		 /* check: 0 pre-active, 1 active, 2 suspended, 3 deactivated,
				  * 5 destroyed */
};

typedef void (*provider_done_fn)(void *arg, const struct provider_result *result);

struct provider;

/* Makes the provider of type @config->type ("keyprotect" or "hpcs") on @loop and reads its
 * API key. 0, or KMIPD_EINVAL / KMIPD_EIO / KMIPD_ENOMEM with a sentence in @errmsg
 * (settings missing, the API key file unreadable). */
int provider_new(uv_loop_t *loop, const struct provider_config *config, struct provider **out,
		 char *errmsg, size_t errlen);

/* Every call still pending reports (result.canceled, verdict PROVIDER_UNAVAILABLE) before
 * this returns; the provider is freed once libuv has closed its handles: keep running the
 * loop until then. The API key is wiped. */
void provider_close(struct provider *p);

/* The provider's configured type, "keyprotect" or "hpcs". */
const char *provider_type(const struct provider *p);

/* Wraps @kek with root key @root_key_id (an id or alias), binding the @n_aad strings of
 * @aad (each at most 255 bytes): unwrap must be given the same list. Everything is copied.
 * 0, KMIPD_EINVAL or KMIPD_ENOMEM; then @done does not run. */
int provider_wrap(struct provider *p, const char *root_key_id, const char *const aad[],
		  unsigned n_aad, const struct crypto_key *kek, provider_done_fn done, void *arg);

/* Unwraps @ciphertext (what wrap returned). */
int provider_unwrap(struct provider *p, const char *root_key_id, const char *const aad[],
		    unsigned n_aad, const char *ciphertext, provider_done_fn done, void *arg);

/* Wraps @ciphertext's key again under the root key's current version. */
int provider_rewrap(struct provider *p, const char *root_key_id, const char *const aad[],
		    unsigned n_aad, const char *ciphertext, provider_done_fn done, void *arg);

/* Reads the root key's metadata: result.key_state; PROVIDER_REFUSED if it is not a root
 * key. */
int provider_check(struct provider *p, const char *root_key_id, provider_done_fn done, void *arg);

#endif
