/* Optional KMIP Username/Password credentials per client, on top of the client
 * certificate. A credentials file has one line per client that must send them:
 *
 *     TENANT CLIENT USERNAME sha256:HEX
 *
 * where HEX is the SHA-256 of the password (`kmipctl hash-password` prints it). Lines
 * starting with '#' and blank lines are ignored. Use long random passwords: they are
 * machine credentials, and a fast hash only protects a strong one. Clients without a line
 * may send credentials or not; they are not checked. */
#ifndef KMIPD_CREDENTIALS_H
#define KMIPD_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct credentials;

struct credential {
	char tenant[65];
	char client[65];
	char username[129];
	uint8_t sha256[32];
};

/* Reads @path. On failure a sentence naming the file and line goes into @errmsg. */
int credentials_load(const char *path, struct credentials **out, char *errmsg, size_t errlen);
void credentials_free(struct credentials *creds);

/* The entry for (@tenant, @client), or NULL if that client has none. */
const struct credential *credentials_find(const struct credentials *creds, const char *tenant,
					  const char *client);

/* True if @username and @password (@len bytes each) match @c, in constant time for the
 * password. */
bool credential_matches(const struct credential *c, const uint8_t *username, size_t username_len,
			const uint8_t *password, size_t password_len);

/* Writes "sha256:" and the hex SHA-256 of @password into @out (72 bytes). */
void credential_hash(const char *password, char out[72]);

#endif
