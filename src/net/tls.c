/* The server's TLS context; see tls.h. */
#include <stdio.h>

#include <openssl/err.h>

#include "kmipd/tls.h"

static const unsigned char session_id_context[] = "kmipd";

const char *tls_last_error(char *out, size_t len)
{
	unsigned long code = ERR_peek_last_error();

	if (code == 0)
		snprintf(out, len, "no error");
	else
		ERR_error_string_n(code, out, len);
	ERR_clear_error();
	return out;
}

SSL_CTX *tls_server_context(const struct tls_config *config, char *errmsg, size_t errlen)
{
	const char *ciphers = config->ciphers ? config->ciphers : TLS_DEFAULT_CIPHERS;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char reason[256];

	if (ctx == NULL) {
		snprintf(errmsg, errlen, "creating the TLS context: %s",
			 tls_last_error(reason, sizeof(reason)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION);
	/* Idle connections give their buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		snprintf(errmsg, errlen, "TLS cipher list '%s': %s", ciphers,
			 tls_last_error(reason, sizeof(reason)));
		goto err;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, config->cert_file) != 1) {
		snprintf(errmsg, errlen, "server certificate %s: %s", config->cert_file,
			 tls_last_error(reason, sizeof(reason)));
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, config->key_file, SSL_FILETYPE_PEM) != 1) {
		snprintf(errmsg, errlen, "server key %s: %s", config->key_file,
			 tls_last_error(reason, sizeof(reason)));
		goto err;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(errmsg, errlen, "server key %s does not match certificate %s",
			 config->key_file, config->cert_file);
		goto err;
	}
	if (SSL_CTX_load_verify_locations(ctx, config->client_ca, NULL) != 1) {
		snprintf(errmsg, errlen, "client CA bundle %s: %s", config->client_ca,
			 tls_last_error(reason, sizeof(reason)));
		goto err;
	}
	/* The CA names clients are told to pick a certificate from. */
	SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(config->client_ca));
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);

	/* Resumption: tickets (stateless) and a server-side cache for clients that only
	 * use session ids. The id context is required once client certificates are. */
	SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof(session_id_context) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 20000);
	SSL_CTX_set_timeout(ctx, config->session_timeout_s > 0 ? config->session_timeout_s : 3600);
	return ctx;
err:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_client_context(const struct tls_config *config, char *errmsg, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char reason[256];

	if (ctx == NULL) {
		snprintf(errmsg, errlen, "creating the TLS client context: %s",
			 tls_last_error(reason, sizeof(reason)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, config->cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, config->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(errmsg, errlen, "node certificate %s / key %s: %s", config->cert_file,
			 config->key_file, tls_last_error(reason, sizeof(reason)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_load_verify_locations(ctx, config->client_ca, NULL) != 1) {
		snprintf(errmsg, errlen, "cluster CA %s: %s", config->client_ca,
			 tls_last_error(reason, sizeof(reason)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}
