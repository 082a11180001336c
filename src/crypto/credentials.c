/* Username/Password credentials per client; see credentials.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kmipd/credentials.h"
#include "kmipd/error.h"
#include "kmipd/fsutil.h"

struct credentials {
	struct credential *entries;
	size_t count;
};

static int unhex32(const char *hex, uint8_t out[32])
{
	for (size_t i = 0; i < 32; i++) {
		unsigned byte;

		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return KMIPD_EINVAL;
		out[i] = (uint8_t)byte;
	}
	return hex[64] == '\0' ? 0 : KMIPD_EINVAL;
}

static int parse_line(char *line, struct credential *c)
{
	char *save = NULL;
	char *fields[5];
	int n = 0;

	for (char *tok = strtok_r(line, " \t\r\n", &save); tok != NULL && n < 5;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		fields[n++] = tok;
	if (n != 4 || strlen(fields[0]) >= sizeof(c->tenant) ||
	    strlen(fields[1]) >= sizeof(c->client) || strlen(fields[2]) >= sizeof(c->username) ||
	    strncmp(fields[3], "sha256:", 7) != 0 || strlen(fields[3]) != 7 + 64)
		return KMIPD_EINVAL;
	strcpy(c->tenant, fields[0]);
	strcpy(c->client, fields[1]);
	strcpy(c->username, fields[2]);
	return unhex32(fields[3] + 7, c->sha256);
}

int credentials_load(const char *path, struct credentials **out, char *errmsg, size_t errlen)
{
	struct credentials *creds = calloc(1, sizeof(*creds));
	FILE *f = fopen(path, "r");
	char line[512];
	size_t cap = 0;
	int lineno = 0;

	if (creds == NULL || f == NULL) {
		int err = f == NULL ? errno : ENOMEM;

		errmsgf(errmsg, errlen, "credentials file %s: %s", path, strerror(err));
		if (f != NULL)
			fclose(f);
		free(creds);
		return -err;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line + strspn(line, " \t");

		lineno++;
		if (*p == '#' || *p == '\n' || *p == '\0')
			continue;
		if (creds->count == cap) {
			struct credential *grown;

			cap = cap * 2 + 8;
			grown = realloc(creds->entries, cap * sizeof(*grown));
			if (grown == NULL) {
				errmsgf(errmsg, errlen, "credentials file %s: out of memory", path);
				goto err;
			}
			creds->entries = grown;
		}
		if (parse_line(line, &creds->entries[creds->count]) != 0) {
			errmsgf(errmsg, errlen,
				"credentials file %s, line %d: expected TENANT CLIENT USERNAME "
				"sha256:HEX (64 hex digits)",
				path, lineno);
			goto err;
		}
		creds->count++;
	}
	fclose(f);
	*out = creds;
	return 0;
err:
	fclose(f);
	credentials_free(creds);
	return KMIPD_EINVAL;
}

void credentials_free(struct credentials *creds)
{
	if (creds == NULL)
		return;
	OPENSSL_cleanse(creds->entries, creds->count * sizeof(*creds->entries));
	free(creds->entries);
	free(creds);
}

const struct credential *credentials_find(const struct credentials *creds, const char *tenant,
					  const char *client)
{
	if (creds == NULL)
		return NULL;
	for (size_t i = 0; i < creds->count; i++)
		if (strcmp(creds->entries[i].tenant, tenant) == 0 &&
		    strcmp(creds->entries[i].client, client) == 0)
			return &creds->entries[i];
	return NULL;
}

bool credential_matches(const struct credential *c, const uint8_t *username, size_t username_len,
			const uint8_t *password, size_t password_len)
{
	uint8_t digest[32];
	unsigned digest_len = 0;
	bool user_ok, pass_ok;

	user_ok = username_len == strlen(c->username) &&
		  memcmp(username, c->username, username_len) == 0;
	if (EVP_Digest(password, password_len, digest, &digest_len, EVP_sha256(), NULL) != 1 ||
	    digest_len != sizeof(digest))
		return false;
	pass_ok = CRYPTO_memcmp(digest, c->sha256, sizeof(digest)) == 0;
	OPENSSL_cleanse(digest, sizeof(digest));
	return user_ok && pass_ok;
}

void credential_hash(const char *password, char out[72])
{
	uint8_t digest[32];
	unsigned len = 0;

	EVP_Digest(password, strlen(password), digest, &len, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", digest[i]);
	OPENSSL_cleanse(digest, sizeof(digest));
}
