/* Each cloud tenant is one entry with a timer: when it fires, the tenant's wrapped KEK is
 * sent to its provider to unwrap, and the answer decides what the keyring holds and when
 * to ask again. Tenants are few (one per customer), so the entries are a list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kmipd/error.h"
#include "kmipd/log.h"
#include "kmipd/object.h"
#include "kmipd/provider.h"
#include "kmipd/tenant_keys.h"

struct entry {
	struct tenant_keys *tk;
	struct entry *next;
	char name[OBJECT_TENANT_MAX + 1];
	char provider[16];
	char *root_key_id;
	char *wrapped; /* the provider's opaque text, NUL-terminated */
	size_t wrapped_len;
	uint32_t version;
	/* The KEK before it while the tenant's objects are re-sealed (0: none), unwrapped
	 * after the current one on every check. */
	uint32_t retiring_version;
	char *retiring;
	bool asking_retiring; /* the call in flight is for the retiring KEK */
	uint64_t generation;  /* bumped when the record changes */
	uint64_t asked;	      /* the generation the call in flight was made for */
	uv_timer_t timer;
	unsigned failures; /* unanswered checks in a row */
	bool in_flight;
	bool again;	/* the record changed while a call was in flight */
	bool forgotten; /* unlinked; freed once its call and timer are done */
	bool timer_closed;
};

struct tenant_keys {
	struct tenant_keys_config config;
	struct provider *keyprotect, *hpcs;
	struct entry *entries;
	unsigned open; /* entries not yet freed */
	bool closing;
};

void tenant_keys_aad(const char *tenant, unsigned version, char bufs[2][80],
		     const char *aad[TENANT_KEYS_AAD])
{
	snprintf(bufs[0], sizeof(bufs[0]), "tenant:%s", tenant);
	snprintf(bufs[1], sizeof(bufs[1]), "kek-version:%u", version);
	aad[0] = "kmipd-kek";
	aad[1] = bufs[0];
	aad[2] = bufs[1];
}

bool tenant_keys_provider_known(const char *type)
{
	return strcmp(type, "local") == 0 || strcmp(type, "keyprotect") == 0 ||
	       strcmp(type, "hpcs") == 0;
}

static struct provider *provider_of(struct tenant_keys *tk, const char *type)
{
	if (strcmp(type, "keyprotect") == 0)
		return tk->keyprotect;
	if (strcmp(type, "hpcs") == 0)
		return tk->hpcs;
	return NULL;
}

/* ---- Entries ---- */

static void free_entry(struct entry *e)
{
	struct tenant_keys *tk = e->tk;

	free(e->root_key_id);
	free(e->wrapped);
	free(e->retiring);
	free(e);
	if (--tk->open == 0 && tk->closing)
		free(tk);
}

static void on_timer_closed(uv_handle_t *handle)
{
	struct entry *e = handle->data;

	e->timer_closed = true;
	if (!e->in_flight)
		free_entry(e);
}

/* Unlinks @e and releases it once its call (if any) has answered. */
static void retire(struct entry *e)
{
	struct entry **pp = &e->tk->entries;

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->next;
	if (*pp == e)
		*pp = e->next;
	e->forgotten = true;
	uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}

static struct entry *find(struct tenant_keys *tk, const char *name)
{
	for (struct entry *e = tk->entries; e != NULL; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* ---- Checking ---- */

static void check(struct entry *e);
static int ask(struct entry *e, bool retiring);

static void on_timer(uv_timer_t *timer)
{
	check(timer->data);
}

static void schedule(struct entry *e, uint64_t delay_ms)
{
	uv_timer_start(&e->timer, on_timer, delay_ms, 0);
}

static uint64_t interval_ms(const struct tenant_keys *tk)
{
	return tk->config.check_interval_ms != 0 ? tk->config.check_interval_ms : 300000;
}

/* How long to wait after @e's provider could not be reached: doubling from the provider's
 * backoff, at most its maximum and at most the check interval. */
static uint64_t backoff_ms(const struct entry *e)
{
	const struct tenant_keys *tk = e->tk;
	const struct provider_config *pc =
		strcmp(e->provider, "hpcs") == 0 ? tk->config.hpcs : tk->config.keyprotect;
	uint64_t delay = pc->backoff_ms != 0 ? pc->backoff_ms : 1000;
	uint64_t cap = pc->backoff_max_ms < interval_ms(tk) ? pc->backoff_max_ms : interval_ms(tk);

	for (unsigned i = 1; i < e->failures && delay < cap; i++)
		delay *= 2;
	return delay < cap ? delay : cap;
}

static void on_unwrapped(void *arg, const struct provider_result *r)
{
	struct entry *e = arg;
	struct tenant_keys *tk = e->tk;
	struct keyring_view before;
	bool known;
	char why[640];

	e->in_flight = false;
	if (e->forgotten || r->canceled) {
		if (e->timer_closed)
			free_entry(e);
		return;
	}
	if (e->asking_retiring) {
		e->asking_retiring = false;
		if (r->verdict == PROVIDER_OK)
			keyring_put(tk->config.keyring, e->name, e->retiring_version, r->kek, true);
		else
			log_warn(
				"tenant %s: its retiring key-encryption key (version %u) could not "
				"be unwrapped (%s); objects not re-sealed yet cannot be read here "
				"until it is",
				e->name, e->retiring_version, r->reason);
		goto next;
	}
	known = keyring_view(tk->config.keyring, e->name, &before) == 0;
	switch (r->verdict) {
	case PROVIDER_OK:
		keyring_put(tk->config.keyring, e->name, e->version, r->kek, false);
		if (!known || before.state != KEYRING_READY || !before.provider_ok)
			log_info("tenant %s: %s unwrapped its key-encryption key with root key %s "
				 "(correlation-id %s); serving it",
				 e->name, e->provider, e->root_key_id, r->correlation_id);
		if (r->ciphertext != NULL && e->asked == e->generation &&
		    tk->config.rewrapped != NULL) {
			log_info("tenant %s: root key %s was rotated; storing the key-encryption "
				 "key wrapped under its version %s",
				 e->name, e->root_key_id, r->key_version ? r->key_version : "?");
			tk->config.rewrapped(tk->config.arg, e->name, (const uint8_t *)e->wrapped,
					     e->wrapped_len, r->ciphertext);
		}
		e->failures = 0;
		schedule(e, interval_ms(tk));
		if (e->retiring_version == 0) {
			keyring_retire(tk->config.keyring, e->name);
		} else if (!e->again && ask(e, true) == 0) {
			return;
		}
		break;
	case PROVIDER_REVOKED:
	case PROVIDER_REFUSED:
		snprintf(why, sizeof(why),
			 "tenant %s: its root key %s in %s cannot be used (%s); its keys are "
			 "unavailable until the root key is usable again",
			 e->name, e->root_key_id, e->provider, r->reason);
		if (!known || before.state != KEYRING_REVOKED)
			log_error("%s; its key-encryption key is wiped from this node's memory "
				  "(correlation-id %s)",
				  why, r->correlation_id);
		keyring_mark(tk->config.keyring, e->name, KEYRING_REVOKED, why);
		e->failures = 0;
		schedule(e, interval_ms(tk));
		break;
	case PROVIDER_UNAVAILABLE:
		e->failures++;
		if (known && before.state == KEYRING_READY) {
			snprintf(why, sizeof(why),
				 "%s cannot be reached (%s); serving from the key-encryption key "
				 "unwrapped earlier",
				 e->provider, r->reason);
			if (before.provider_ok)
				log_warn("tenant %s: %s", e->name, why);
			keyring_note(tk->config.keyring, e->name, false, why);
		} else {
			snprintf(
				why, sizeof(why),
				"tenant %s: its key-encryption key is not unwrapped yet: %s cannot "
				"be reached (%s); retrying",
				e->name, e->provider, r->reason);
			if (!known || before.state != KEYRING_PENDING ||
			    strcmp(before.reason, why) != 0)
				log_warn("%s", why);
			keyring_mark(tk->config.keyring, e->name, KEYRING_PENDING, why);
		}
		schedule(e, backoff_ms(e));
		break;
	}
next:
	if (e->again) {
		e->again = false;
		check(e);
	}
}

/* Sends @e's current KEK (or, @retiring, the retiring one) to its provider to unwrap. */
static int ask(struct entry *e, bool retiring)
{
	struct provider *p = provider_of(e->tk, e->provider);
	char bufs[2][80];
	const char *aad[TENANT_KEYS_AAD];
	int rv;

	log_debug("tenant %s: asking %s to unwrap key-encryption key version %u", e->name,
		  e->provider, retiring ? e->retiring_version : e->version);
	tenant_keys_aad(e->name, retiring ? e->retiring_version : e->version, bufs, aad);
	rv = provider_unwrap(p, e->root_key_id, aad, TENANT_KEYS_AAD,
			     retiring ? e->retiring : e->wrapped, on_unwrapped, e);
	if (rv == 0) {
		e->in_flight = true;
		e->asking_retiring = retiring;
		e->asked = e->generation;
	}
	return rv;
}

static void check(struct entry *e)
{
	struct tenant_keys *tk = e->tk;
	char why[400];
	int rv;

	if (e->in_flight) {
		e->again = true;
		return;
	}
	uv_timer_stop(&e->timer);
	if (provider_of(tk, e->provider) == NULL) {
		/* Settings do not change while the node runs: nothing to retry. */
		snprintf(why, sizeof(why),
			 "tenant %s: its root key is in %s, which this node is not set up for "
			 "(set [%s] url, instance_id and api_key_file or api_key_env)",
			 e->name, e->provider, e->provider);
		log_error("%s", why);
		keyring_mark(tk->config.keyring, e->name, KEYRING_PENDING, why);
		return;
	}
	rv = ask(e, false);
	if (rv != 0) {
		snprintf(why, sizeof(why),
			 "tenant %s: its root key id '%s' or wrapped key cannot be sent to %s: %s",
			 e->name, e->root_key_id, e->provider, kmipd_strerror(rv));
		log_error("%s", why);
		keyring_mark(tk->config.keyring, e->name, KEYRING_PENDING, why);
		e->failures++;
		schedule(e, interval_ms(tk));
	}
}

/* ---- The interface ---- */

static void load_local(struct tenant_keys *tk, const struct store_tenant *t)
{
	int rv = keyring_load(tk->config.keyring, t->name, t->kek_version, t->wrapped_kek,
			      t->wrapped_kek_len, false);

	if (rv == 0 && t->retiring_version != 0)
		rv = keyring_load(tk->config.keyring, t->name, t->retiring_version, t->retiring_kek,
				  t->retiring_kek_len, true);
	else if (rv == 0)
		keyring_retire(tk->config.keyring, t->name);
	if (rv != 0) {
		char why[300];

		snprintf(why, sizeof(why),
			 "tenant %s: its key-encryption key cannot be unwrapped with this node's "
			 "root key file (%s)",
			 t->name, kmipd_strerror(rv));
		log_error("%s; its requests will fail", why);
		keyring_mark(tk->config.keyring, t->name, KEYRING_REVOKED, why);
	}
}

void tenant_keys_update(struct tenant_keys *tk, const struct store_tenant *t)
{
	struct entry *e;
	bool same;

	if (tk->closing)
		return;
	if (t->deleted != 0) {
		tenant_keys_forget(tk, t->name);
		return;
	}
	if (strcmp(t->provider, "local") == 0) {
		load_local(tk, t);
		return;
	}
	e = find(tk, t->name);
	same = e != NULL && strcmp(e->provider, t->provider) == 0 &&
	       strcmp(e->root_key_id, t->root_key_id) == 0 &&
	       e->wrapped_len == t->wrapped_kek_len &&
	       memcmp(e->wrapped, t->wrapped_kek, t->wrapped_kek_len) == 0 &&
	       e->version == t->kek_version && e->retiring_version == t->retiring_version &&
	       (t->retiring_version == 0 ||
		(strlen(e->retiring) == t->retiring_kek_len &&
		 memcmp(e->retiring, t->retiring_kek, t->retiring_kek_len) == 0));
	log_debug("tenant %s: KEK version %u, retiring %u: %s", t->name, t->kek_version,
		  t->retiring_version, same ? "unchanged" : "asking the provider");
	if (same)
		return;
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			goto nomem;
		e->tk = tk;
		tk->open++;
		snprintf(e->name, sizeof(e->name), "%s", t->name);
		uv_timer_init(tk->config.loop, &e->timer);
		e->timer.data = e;
		e->next = tk->entries;
		tk->entries = e;
	}
	free(e->root_key_id);
	free(e->wrapped);
	free(e->retiring);
	e->root_key_id = strdup(t->root_key_id != NULL ? t->root_key_id : "");
	e->wrapped = strndup((const char *)t->wrapped_kek, t->wrapped_kek_len);
	e->retiring = strndup(t->retiring_version != 0 ? (const char *)t->retiring_kek : "",
			      t->retiring_version != 0 ? t->retiring_kek_len : 0);
	if (e->root_key_id == NULL || e->wrapped == NULL || e->retiring == NULL) {
		retire(e);
		goto nomem;
	}
	e->wrapped_len = t->wrapped_kek_len;
	e->version = t->kek_version;
	e->retiring_version = t->retiring_version;
	snprintf(e->provider, sizeof(e->provider), "%s", t->provider);
	e->generation++;
	e->failures = 0;
	if (keyring_check(tk->config.keyring, t->name, NULL, 0) == KMIPD_ENOT_FOUND) {
		char why[200];

		snprintf(why, sizeof(why),
			 "tenant %s: its key-encryption key is being unwrapped by %s; try again",
			 t->name, t->provider);
		keyring_mark(tk->config.keyring, t->name, KEYRING_PENDING, why);
	}
	check(e);
	return;
nomem:
	log_error("tenant %s: out of memory keeping its key-encryption key", t->name);
	keyring_mark(tk->config.keyring, t->name, KEYRING_PENDING,
		     "the node ran out of memory keeping the tenant's key-encryption key");
}

void tenant_keys_forget(struct tenant_keys *tk, const char *tenant)
{
	struct entry *e = find(tk, tenant);

	if (e != NULL)
		retire(e);
	keyring_drop(tk->config.keyring, tenant);
}

int tenant_keys_new(const struct tenant_keys_config *config, struct tenant_keys **out, char *errmsg,
		    size_t errlen)
{
	struct tenant_keys *tk = calloc(1, sizeof(*tk));
	int rv = 0;

	if (tk == NULL)
		return KMIPD_ENOMEM;
	tk->config = *config;
	if (config->keyprotect != NULL && config->keyprotect->url[0] != '\0')
		rv = provider_new(config->loop, config->keyprotect, &tk->keyprotect, errmsg,
				  errlen);
	if (rv == 0 && config->hpcs != NULL && config->hpcs->url[0] != '\0')
		rv = provider_new(config->loop, config->hpcs, &tk->hpcs, errmsg, errlen);
	if (rv != 0) {
		provider_close(tk->keyprotect);
		free(tk);
		return rv;
	}
	*out = tk;
	return 0;
}

void tenant_keys_close(struct tenant_keys *tk)
{
	if (tk == NULL)
		return;
	tk->closing = true;
	/* Every call in flight reports now (canceled). */
	provider_close(tk->keyprotect);
	provider_close(tk->hpcs);
	while (tk->entries != NULL)
		retire(tk->entries);
	if (tk->open == 0)
		free(tk);
}
