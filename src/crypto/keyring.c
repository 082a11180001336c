/* Tenant KEKs in memory: a small array guarded by a read-write lock. Tenants are few (one
 * per KMIP instance), so a linear search is the clearest structure; the lock is held only
 * while copying 32 bytes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kmipd/error.h"
#include "kmipd/keyring.h"
#include "kmipd/object.h"

struct keyring_entry {
	char tenant[OBJECT_TENANT_MAX + 1];
	struct crypto_key *kek;
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
	for (size_t i = 0; i < ring->count; i++)
		crypto_key_free(ring->entries[i].kek);
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

int keyring_load(struct keyring *ring, const char *tenant, const uint8_t *wrapped, size_t len)
{
	struct crypto_key *kek = crypto_key_new();
	struct keyring_entry *entry;
	int rv;

	if (kek == NULL)
		return KMIPD_ENOMEM;
	if (strlen(tenant) > OBJECT_TENANT_MAX) {
		crypto_key_free(kek);
		return KMIPD_EINVAL;
	}
	rv = crypto_kek_unwrap(ring->root, tenant, wrapped, len, kek);
	if (rv != 0) {
		crypto_key_free(kek);
		return rv;
	}

	pthread_rwlock_wrlock(&ring->lock);
	entry = find(ring, tenant);
	if (entry == NULL && (rv = grow(ring)) == 0) {
		entry = &ring->entries[ring->count++];
		strcpy(entry->tenant, tenant);
		entry->kek = NULL;
	}
	if (entry != NULL) {
		crypto_key_free(entry->kek);
		entry->kek = kek;
		kek = NULL;
	}
	pthread_rwlock_unlock(&ring->lock);
	crypto_key_free(kek);
	return rv;
}

int keyring_make(struct keyring *ring, const char *tenant, struct buf *wrapped)
{
	struct crypto_key *kek = crypto_key_new();
	int rv;

	if (kek == NULL)
		return KMIPD_ENOMEM;
	rv = crypto_random(kek->bytes, CRYPTO_KEY_LEN);
	if (rv == 0)
		rv = crypto_kek_wrap(ring->root, tenant, kek, wrapped);
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
		*entry = ring->entries[--ring->count];
		rv = 0;
	}
	pthread_rwlock_unlock(&ring->lock);
	return rv;
}

int keyring_get(struct keyring *ring, const char *tenant, struct crypto_key *out)
{
	struct keyring_entry *entry;
	int rv = KMIPD_ENOT_FOUND;

	pthread_rwlock_rdlock(&ring->lock);
	entry = find(ring, tenant);
	if (entry != NULL) {
		memcpy(out->bytes, entry->kek->bytes, CRYPTO_KEY_LEN);
		rv = 0;
	}
	pthread_rwlock_unlock(&ring->lock);
	return rv;
}
