/* Tenant KEKs in memory: a small array guarded by a read-write lock. Tenants are few (one
 * per KMIP instance), so a linear search is the clearest structure; the lock is held only
 * while copying 32 bytes. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "kmipd/error.h"
#include "kmipd/keyring.h"
#include "kmipd/metrics.h"
#include "kmipd/object.h"

struct keyring_entry {
	char tenant[OBJECT_TENANT_MAX + 1];
	struct crypto_key *kek; /* current; NULL unless READY */
	struct crypto_key *old; /* retiring, or NULL */
	struct keyring_view view;
};

struct keyring {
	pthread_rwlock_t lock;
	struct crypto_key *root;
	struct keyring_entry *entries;
	size_t count;
	size_t cap;
};

struct keyring *keyring_new(const struct crypto_key *root)
{
	struct keyring *ring = calloc(1, sizeof(*ring));

	if (ring == NULL)
		return NULL;
	ring->root = crypto_key_new();
	if (ring->root == NULL) {
		free(ring);
		return NULL;
	}
	memcpy(ring->root->bytes, root->bytes, CRYPTO_KEY_LEN);
	pthread_rwlock_init(&ring->lock, NULL);
	return ring;
}

void keyring_free(struct keyring *ring)
{
	if (ring == NULL)
		return;
	for (size_t i = 0; i < ring->count; i++) {
		crypto_key_free(ring->entries[i].kek);
		crypto_key_free(ring->entries[i].old);
	}
	free(ring->entries);
	crypto_key_free(ring->root);
	pthread_rwlock_destroy(&ring->lock);
	free(ring);
}

static struct keyring_entry *find(struct keyring *ring, const char *tenant)
{
	for (size_t i = 0; i < ring->count; i++)
		if (strcmp(ring->entries[i].tenant, tenant) == 0)
			return &ring->entries[i];
	return NULL;
}

/* Makes room for one more entry. Called with the write lock held. */
static int grow(struct keyring *ring)
{
	struct keyring_entry *entries;
	size_t cap = ring->cap * 2 + 4;

	if (ring->count < ring->cap)
		return 0;
	entries = realloc(ring->entries, cap * sizeof(*entries));
	if (entries == NULL)
		return KMIPD_ENOMEM;
	ring->entries = entries;
	ring->cap = cap;
	return 0;
}

/* The entry for @tenant, made (PENDING, no KEK) if there is none. Called with the write
 * lock held; NULL when out of memory. */
static struct keyring_entry *entry_for(struct keyring *ring, const char *tenant)
{
	struct keyring_entry *entry = find(ring, tenant);

	if (entry != NULL || grow(ring) != 0)
		return entry;
	entry = &ring->entries[ring->count++];
	memset(entry, 0, sizeof(*entry));
	strcpy(entry->tenant, tenant);
	entry->view.state = KEYRING_PENDING;
	entry->view.provider_ok = true;
	entry->view.since = (int64_t)time(NULL);
	return entry;
}

/* Makes @kek (owned from now on) version @version of @tenant's KEK, current or retiring. */
static int install(struct keyring *ring, const char *tenant, uint32_t version,
		   struct crypto_key *kek, bool retiring)
{
	struct keyring_entry *entry;
	int rv = KMIPD_ENOMEM;

	pthread_rwlock_wrlock(&ring->lock);
	entry = entry_for(ring, tenant);
	if (entry != NULL && retiring) {
		crypto_key_free(entry->old);
		entry->old = kek;
		entry->view.old_version = version;
		kek = NULL;
		rv = 0;
	} else if (entry != NULL) {
		if (entry->kek != NULL && version > entry->view.version) {
			/* A rotation: the KEK it replaces still opens what is not re-sealed
			 * yet, until keyring_retire(). */
			crypto_key_free(entry->old);
			entry->old = entry->kek;
			entry->view.old_version = entry->view.version;
		} else {
			crypto_key_free(entry->kek);
		}
		entry->kek = kek;
		kek = NULL;
		if (entry->view.state != KEYRING_READY || !entry->view.provider_ok)
			entry->view.since = (int64_t)time(NULL);
		entry->view.state = KEYRING_READY;
		entry->view.provider_ok = true;
		entry->view.reason[0] = '\0';
		entry->view.version = version;
		rv = 0;
	}
	pthread_rwlock_unlock(&ring->lock);
	crypto_key_free(kek);
	return rv;
}

int keyring_load(struct keyring *ring, const char *tenant, uint32_t version, const uint8_t *wrapped,
		 size_t len, bool retiring)
{
	struct crypto_key *kek;
	int rv;

	if (strlen(tenant) > OBJECT_TENANT_MAX)
		return KMIPD_EINVAL;
	kek = crypto_key_new();
	if (kek == NULL)
		return KMIPD_ENOMEM;
	rv = crypto_kek_unwrap(ring->root, tenant, version, wrapped, len, kek);
	metrics_root_key("local", "unwrap", rv == 0);
	if (rv != 0) {
		crypto_key_free(kek);
		return rv;
	}
	return install(ring, tenant, version, kek, retiring);
}

int keyring_put(struct keyring *ring, const char *tenant, uint32_t version,
		const struct crypto_key *kek, bool retiring)
{
	struct crypto_key *copy;

	if (strlen(tenant) > OBJECT_TENANT_MAX)
		return KMIPD_EINVAL;
	copy = crypto_key_new();
	if (copy == NULL)
		return KMIPD_ENOMEM;
	memcpy(copy->bytes, kek->bytes, CRYPTO_KEY_LEN);
	return install(ring, tenant, version, copy, retiring);
}

void keyring_retire(struct keyring *ring, const char *tenant)
{
	struct keyring_entry *entry;

	pthread_rwlock_wrlock(&ring->lock);
	entry = find(ring, tenant);
	if (entry != NULL) {
		crypto_key_free(entry->old); /* wiped */
		entry->old = NULL;
		entry->view.old_version = 0;
	}
	pthread_rwlock_unlock(&ring->lock);
}

int keyring_mark(struct keyring *ring, const char *tenant, enum keyring_state state,
		 const char *reason)
{
	struct keyring_entry *entry;

	if (strlen(tenant) > OBJECT_TENANT_MAX || state == KEYRING_READY)
		return KMIPD_EINVAL;
	pthread_rwlock_wrlock(&ring->lock);
	entry = entry_for(ring, tenant);
	if (entry != NULL) {
		if (state == KEYRING_REVOKED || entry->kek == NULL) {
			crypto_key_free(entry->kek); /* wiped */
			crypto_key_free(entry->old);
			entry->kek = NULL;
			entry->old = NULL;
			entry->view.version = 0;
			entry->view.old_version = 0;
			if (entry->view.state != state)
				entry->view.since = (int64_t)time(NULL);
			entry->view.state = state;
			snprintf(entry->view.reason, sizeof(entry->view.reason), "%s", reason);
		}
	}
	pthread_rwlock_unlock(&ring->lock);
	return entry != NULL ? 0 : KMIPD_ENOMEM;
}

void keyring_note(struct keyring *ring, const char *tenant, bool provider_ok, const char *reason)
{
	struct keyring_entry *entry;

	pthread_rwlock_wrlock(&ring->lock);
	entry = find(ring, tenant);
	if (entry != NULL) {
		if (entry->view.provider_ok != provider_ok)
			entry->view.since = (int64_t)time(NULL);
		entry->view.provider_ok = provider_ok;
		if (entry->view.state == KEYRING_READY)
			snprintf(entry->view.reason, sizeof(entry->view.reason), "%s",
				 provider_ok ? "" : reason);
	}
	pthread_rwlock_unlock(&ring->lock);
}

int keyring_make(struct keyring *ring, const char *tenant, uint32_t version, struct buf *wrapped)
{
	struct crypto_key *kek = crypto_key_new();
	int rv;

	if (kek == NULL)
		return KMIPD_ENOMEM;
	rv = crypto_random(kek->bytes, CRYPTO_KEY_LEN);
	if (rv == 0)
		rv = crypto_kek_wrap(ring->root, tenant, version, kek, wrapped);
	metrics_root_key("local", "wrap", rv == 0);
	crypto_key_free(kek);
	return rv;
}

int keyring_drop(struct keyring *ring, const char *tenant)
{
	struct keyring_entry *entry;
	int rv = KMIPD_ENOT_FOUND;

	pthread_rwlock_wrlock(&ring->lock);
	entry = find(ring, tenant);
	if (entry != NULL) {
		crypto_key_free(entry->kek); /* wiped */
		crypto_key_free(entry->old);
		*entry = ring->entries[--ring->count];
		rv = 0;
	}
	pthread_rwlock_unlock(&ring->lock);
	return rv;
}

/* The code keyring_get() returns for @entry. */
static int entry_code(const struct keyring_entry *entry)
{
	if (entry == NULL)
		return KMIPD_ENOT_FOUND;
	if (entry->kek != NULL)
		return 0;
	return entry->view.state == KEYRING_REVOKED ? KMIPD_EPERMISSION : KMIPD_EUNAVAILABLE;
}

int keyring_get(struct keyring *ring, const char *tenant, uint32_t version, struct crypto_key *out,
		uint32_t *got)
{
	struct keyring_entry *entry;
	const struct crypto_key *kek = NULL;
	int rv;

	pthread_rwlock_rdlock(&ring->lock);
	entry = find(ring, tenant);
	rv = entry_code(entry);
	if (rv == 0) {
		if (version == 0 || version == entry->view.version) {
			kek = entry->kek;
			version = entry->view.version;
		} else if (entry->old != NULL && version == entry->view.old_version) {
			kek = entry->old;
		} else {
			rv = KMIPD_ENOT_FOUND;
		}
	}
	if (kek != NULL) {
		memcpy(out->bytes, kek->bytes, CRYPTO_KEY_LEN);
		if (got != NULL)
			*got = version;
	}
	pthread_rwlock_unlock(&ring->lock);
	return rv;
}

int keyring_check(struct keyring *ring, const char *tenant, char *why, size_t len)
{
	struct keyring_entry *entry;
	int rv;

	pthread_rwlock_rdlock(&ring->lock);
	entry = find(ring, tenant);
	rv = entry_code(entry);
	if (rv != 0 && len > 0)
		snprintf(why, len, "%s",
			 entry != NULL ? entry->view.reason : "the tenant has no key on this node");
	pthread_rwlock_unlock(&ring->lock);
	return rv;
}

int keyring_view(struct keyring *ring, const char *tenant, struct keyring_view *out)
{
	struct keyring_entry *entry;

	pthread_rwlock_rdlock(&ring->lock);
	entry = find(ring, tenant);
	if (entry != NULL)
		*out = entry->view;
	pthread_rwlock_unlock(&ring->lock);
	return entry != NULL ? 0 : KMIPD_ENOT_FOUND;
}
