/* The server's TLS context: TLS 1.2 and 1.3, the cipher suites KMIP clients need, mutual
 * authentication against the cluster CA, and session resumption (tickets and a session
 * cache with a session id context, without which OpenSSL silently refuses to resume
 * sessions that carried a client certificate). */
#ifndef KMIPD_TLS_H
#define KMIPD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* TLS 1.2 suites: ECDHE with AES-GCM first, then the KMIP profiles' RSA key transport
 * CBC suites that vCenter 7 negotiates with servers that offer nothing else. */
#define TLS_DEFAULT_CIPHERS                                          \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:AES256-SHA256:AES128-SHA256"

struct tls_config {
	const char *cert_file;	/* server certificate chain, PEM */
	const char *key_file;	/* its private key, PEM */
	const char *client_ca;	/* CA bundle client certificates must chain to */
	const char *ciphers;	/* TLS 1.2 cipher list; NULL = TLS_DEFAULT_CIPHERS */
	long session_timeout_s; /* resumption lifetime; 0 = 3600 */
};

/* Builds the server context. NULL on failure with a sentence in @errmsg naming the file
 * and OpenSSL's reason. Free with SSL_CTX_free(). */
SSL_CTX *tls_server_context(const struct tls_config *config, char *errmsg, size_t errlen);

/* A client context for connections between nodes: presents the node certificate
 * (cert_file, key_file) and verifies the peer against client_ca (the cluster CA). Peers
 * are then identified by the node URI in their certificate, not by host name. */
SSL_CTX *tls_client_context(const struct tls_config *config, char *errmsg, size_t errlen);

/* Copies OpenSSL's most recent error for this thread into @out ("no error" if none) and
 * clears the thread's error queue. */
const char *tls_last_error(char *out, size_t len);

#endif
