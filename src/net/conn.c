/* One client connection: TLS through memory BIOs, TTLV framing, and the KMIP exchange.
 *
 *   HANDSHAKE ──► (tenant known?) ──► READING ──► PROCESSING ──► READING ...
 *                  └─ WAIT_TENANT ─┘                 │ pending write: waits for the raft
 *                                                    │ loop, reading paused
 * Ciphertext from the socket goes into the read BIO; plaintext is pulled from OpenSSL
 * only as far as the current message needs (ttlv_frame_need), so a client can never make
 * the connection hold more than one maximum-size message. While a request is processed
 * the socket is not read at all.
 *
 * Teardown is asynchronous: the TCP handle and the timer are closed, and the memory is
 * released when both close callbacks have run and no proposal of this connection is still
 * with the raft loop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "kmipd/audit.h"
#include "kmipd/command.h"
#include "kmipd/error.h"
#include "kmipd/keyring.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/log.h"
#include "kmipd/metrics.h"
#include "kmipd/pki.h"
#include "kmipd/stream_write.h"
#include "kmipd/tls.h"
#include "kmipd/trust.h"
#include "kmipd/ttlv.h"
#include "net_internal.h"

enum conn_state {
	CONN_HANDSHAKE,
	CONN_WAIT_TENANT, /* the tenant named by the certificate is being created */
	CONN_READING,
	CONN_PROCESSING,
	CONN_CLOSING,
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct worker *worker;
	struct conn *prev, *next; /* in worker->conns */
	enum conn_state state;
	SSL *ssl;
	BIO *rbio;     /* ciphertext in, owned by ssl */
	BIO *wbio;     /* ciphertext out, owned by ssl */
	struct buf in; /* plaintext of the message being read */
	size_t message_len;
	struct kmip_exchange exchange;
	struct session session;
	unsigned handles_open;
	unsigned waiting; /* proposals with the raft loop that will call back */
	unsigned messages;
	uint64_t serial;     /* this connection's number on its worker */
	uint64_t started_ns; /* when the message being answered began */
	char peer[64];
};

static void conn_close(struct conn *c, const char *why);
static void conn_read_more(struct conn *c);

static struct net_config *config_of(struct conn *c)
{
	return &c->worker->net->config;
}

static void maybe_free(struct conn *c)
{
	struct worker *worker = c->worker;

	if (c->handles_open > 0 || c->waiting > 0)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		worker->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	kmip_exchange_free(&c->exchange);
	buf_free(&c->in);
	SSL_free(c->ssl);
	atomic_fetch_sub(&worker->net->connections, 1);
	metrics_connections(-1);
	free(c);

	/* A stopping worker ends when its last connection is gone. */
	if (worker->stopping && worker->conns == NULL)
		mailbox_close(&worker->replies, NULL);
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct conn *c = handle->data;

	c->handles_open--;
	maybe_free(c);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->handle->data;

	free(req);
	if (status != 0 && c->state != CONN_CLOSING)
		conn_close(c, uv_strerror(status));
	else if (c->state == CONN_READING &&
		 uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
		conn_read_more(c); /* reading may have paused for the client to catch up */
}

/* Sends whatever OpenSSL has produced. */
static int flush(struct conn *c)
{
	return stream_write_bio((uv_stream_t *)&c->tcp, c->wbio, on_write);
}

static void on_timeout(uv_timer_t *timer)
{
	struct conn *c = timer->data;

	conn_close(c, c->state == CONN_HANDSHAKE ? "TLS handshake timed out" : "idle timeout");
}

static void arm_timer(struct conn *c, unsigned ms)
{
	uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static size_t max_message(struct conn *c)
{
	return config_of(c)->max_message ? config_of(c)->max_message : TTLV_DEFAULT_MAX_MESSAGE;
}

static unsigned idle_ms(struct conn *c)
{
	return config_of(c)->idle_timeout_ms ? config_of(c)->idle_timeout_ms : 120000;
}

static void conn_close(struct conn *c, const char *why)
{
	if (c->state == CONN_CLOSING)
		return;
	if (why != NULL)
		log_debug("connection %s closed after %u message(s): %s", c->peer, c->messages,
			  why);
	if (c->state != CONN_HANDSHAKE) {
		/* Best effort close_notify; the socket closes right after. */
		SSL_shutdown(c->ssl);
		flush(c);
	}
	c->state = CONN_CLOSING;
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Counts and audits each answered batch item of the message. */
static void record_items(struct conn *c)
{
	const struct kmip_exchange *ex = &c->exchange;
	double seconds = (double)(uv_hrtime() - c->started_ns) / 1e9;
	bool audit = audit_enabled();
	char correlation[48];

	if (audit)
		snprintf(correlation, sizeof(correlation), "%u-%llu-%u", c->worker->index,
			 (unsigned long long)c->serial, c->messages + 1);
	for (size_t i = 0; i < ex->done; i++) {
		const struct kmip_result *r = &ex->results[i];
		bool ok = r->status == KMIP_STATUS_SUCCESS;
		const char *op;

		metrics_kmip_item(r->operation, ok ? 0 : r->reason, seconds);
		if (!audit)
			continue;
		op = kmip_enum_name(KMIP_FAMILY_OP, r->operation);
		audit_log(&(struct audit_event){
			.kind = "kmip",
			.tenant = c->session.tenant[0] ? c->session.tenant : NULL,
			.client = c->session.client[0] ? c->session.client : NULL,
			.cert = c->session.fingerprint[0] ? c->session.fingerprint : NULL,
			.source = c->peer,
			.operation = op != NULL ? op : "(none)",
			.uid = r->uid,
			.result = ok ? "ok" : "failed",
			.reason = ok ? NULL : kmip_enum_name(KMIP_FAMILY_REASON, r->reason),
			.message = ok ? NULL : r->message,
			.correlation = correlation,
		});
	}
}

static void respond(struct conn *c)
{
	struct buf out = BUF_INIT;
	int rv = kmip_exchange_respond(&c->exchange, &out);
	size_t done = 0;

	record_items(c);
	while (rv == 0 && done < out.len) {
		int n = SSL_write(c->ssl, out.data + done, (int)(out.len - done));

		if (n <= 0)
			rv = KMIPD_EIO;
		else
			done += (size_t)n;
	}
	buf_free(&out); /* wipes: a Get response holds key material */
	kmip_exchange_reset(&c->exchange);
	buf_consume(&c->in, c->message_len);
	c->message_len = 0;
	c->messages++;
	if (rv == 0)
		rv = flush(c);
	if (rv != 0) {
		conn_close(c, "writing the response failed");
		return;
	}
	if (c->worker->stopping || c->worker->draining) {
		conn_close(c, c->worker->stopping ? "node shutting down" : "node drained");
		return;
	}
	c->state = CONN_READING;
	arm_timer(c, idle_ms(c));
	conn_read_more(c);
}

/* Runs the exchange until it finishes or waits for the raft loop. */
static void run_exchange(struct conn *c)
{
	if (kmip_exchange_run(&c->exchange) == KMIP_OP_PENDING) {
		c->waiting++;
		return;
	}
	respond(c);
}

/* session->resume: a pending item has finished. */
static void on_resume(struct session *session)
{
	struct conn *c = session->conn;

	c->waiting--;
	if (c->state == CONN_CLOSING) {
		kmip_exchange_reset(&c->exchange);
		maybe_free(c);
		return;
	}
	run_exchange(c);
}

static void process(struct conn *c)
{
	int rv;

	c->state = CONN_PROCESSING;
	c->started_ns = uv_hrtime();
	uv_timer_stop(&c->timer);
	/* Reading goes on: stopping and restarting it cost two epoll_ctl calls per request.
	 * What arrives meanwhile waits in OpenSSL's buffer, up to a message's worth. */
	rv = kmip_exchange_begin(&c->exchange, c->in.data, c->message_len, (int64_t)time(NULL));
	if (rv != 0) {
		conn_close(c, "request is not a KMIP message");
		return;
	}
	run_exchange(c);
}

/* Pulls plaintext until the current message is complete or OpenSSL needs more bytes. */
static void read_plaintext(struct conn *c)
{
	size_t max = max_message(c);

	while (c->state == CONN_READING) {
		struct ttlv_error err;
		size_t need, total;
		int n, rv;

		rv = ttlv_frame_need(c->in.data, c->in.len, max, &need, &total, &err);
		if (rv != 0) {
			log_info("connection %s: %s; closing it", c->peer, err.message);
			conn_close(c, NULL);
			return;
		}
		if (need == 0) {
			c->message_len = total;
			process(c);
			return;
		}
		if (buf_reserve(&c->in, need) != 0) {
			conn_close(c, "out of memory");
			return;
		}
		n = SSL_read(c->ssl, c->in.data + c->in.len, (int)need);
		if (n > 0) {
			c->in.len += (size_t)n;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			flush(c); /* e.g. TLS 1.3 tickets after the handshake */
			return;
		case SSL_ERROR_ZERO_RETURN:
			conn_close(c, c->in.len ? "client closed mid-message" : "client closed");
			return;
		default: {
			char reason[160];

			conn_close(c, tls_last_error(reason, sizeof(reason)));
			return;
		}
		}
	}
}

static void on_tenant_created(void *arg, const struct command_result *result)
{
	struct conn *c = arg;
	struct crypto_key kek;

	c->waiting--;
	if (c->state == CONN_CLOSING) {
		maybe_free(c);
		return;
	}
	if (keyring_check(c->worker->net->config.service->keyring, c->session.tenant, NULL, 0) !=
	    0) {
		log_error("tenant %s could not be created: %s", c->session.tenant,
			  result->status ? kmipd_strerror(result->status) : "its KEK is unusable");
		conn_close(c, NULL);
		return;
	}
	OPENSSL_cleanse(&kek, sizeof(kek));
	log_info("tenant %s created for client %s", c->session.tenant, c->session.client);
	c->state = CONN_READING;
	arm_timer(c, idle_ms(c));
	conn_read_more(c);
}

/* A tenant named by a CA-issued certificate for the first time: create it (a replicated
 * command), then serve. */
static int create_tenant(struct conn *c)
{
	struct net_config *config = config_of(c);
	struct command cmd;
	struct buf wrapped = BUF_INIT, entry = BUF_INIT;
	int rv;

	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_TENANT_CREATE;
	cmd.time = service_now();
	snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", c->session.tenant);
	rv = crypto_request_id(cmd.request_id);
	if (rv == 0)
		rv = keyring_make(config->service->keyring, c->session.tenant, 1, &wrapped);
	if (rv == 0) {
		struct store_tenant *t = &cmd.tenant_record;

		snprintf(t->name, sizeof(t->name), "%s", c->session.tenant);
		snprintf(t->provider, sizeof(t->provider), "local");
		t->root_key_id = "";
		t->wrapped_kek = wrapped.data;
		t->wrapped_kek_len = wrapped.len;
		t->created = cmd.time;
		rv = command_encode(&cmd, &entry);
	}
	if (rv == 0)
		rv = replication_submit(config->replication, &entry, &c->worker->replies,
					on_tenant_created, c);
	buf_free(&wrapped);
	buf_free(&entry);
	if (rv == 0)
		c->waiting++;
	return rv;
}

/* True if @tenant exists only as a deleted record: its certificates no longer open
 * anything, and connecting does not make it again. */
static bool tenant_deleted(struct store *store, const char *tenant)
{
	struct store_txn *txn;
	struct store_tenant t;
	struct arena arena;
	bool deleted = false;

	if (store_txn_begin(store, false, &txn) != 0)
		return false;
	arena_init(&arena, 512, 0);
	if (store_tenant_get(txn, tenant, &arena, &t) == 0)
		deleted = t.deleted != 0;
	store_txn_abort(txn);
	arena_free(&arena);
	return deleted;
}

/* The handshake is done: who is this? Decided from the certificate and the store's
 * records each time, a resumed session included (trust_identify). */
static void authenticate(struct conn *c)
{
	struct net_config *config = config_of(c);
	struct trust_identity id;
	char why[200];
	int rv;

	rv = trust_identify(c->ssl, config->service->store, &id, why, sizeof(why));
	if (rv != 0) {
		log_warn("connection %s: refusing the client: %s", c->peer,
			 rv == KMIPD_EPERMISSION ? why : kmipd_strerror(rv));
		conn_close(c, NULL);
		return;
	}
	snprintf(c->session.tenant, sizeof(c->session.tenant), "%s", id.tenant);
	snprintf(c->session.client, sizeof(c->session.client), "%s", id.client);
	memcpy(c->session.fingerprint, id.fingerprint, sizeof(c->session.fingerprint));
	memcpy(c->session.trusted_by, id.trusted_by, sizeof(c->session.trusted_by));
	c->session.credential = credentials_find(config->service->credentials, c->session.tenant,
						 c->session.client);
	log_debug("connection %s: client %s of tenant %s (%s, %s)", c->peer, c->session.client,
		  c->session.tenant, trust_path_name(id.path), SSL_get_version(c->ssl));

	if (tenant_deleted(config->service->store, c->session.tenant)) {
		log_warn("connection %s: client %s of tenant %s refused: the tenant was deleted",
			 c->peer, c->session.client, c->session.tenant);
		conn_close(c, NULL);
		return;
	}
	/* A tenant whose KEK is refused or not unwrapped yet is let in: its requests are
	 * answered with the reason, which tells the client more than a closed connection. */
	rv = keyring_check(config->service->keyring, c->session.tenant, NULL, 0);
	if (rv == 0 || rv == KMIPD_EPERMISSION || rv == KMIPD_EUNAVAILABLE) {
		c->state = CONN_READING;
		arm_timer(c, idle_ms(c));
		read_plaintext(c);
		return;
	}
	if (id.path != TRUST_CLUSTER_CA) {
		/* Added through the admin API to a tenant that exists: its KEK is gone only
		 * if the tenant is going. */
		log_warn("connection %s: client %s of tenant %s refused: the tenant has no key",
			 c->peer, c->session.client, c->session.tenant);
		conn_close(c, NULL);
		return;
	}
	c->state = CONN_WAIT_TENANT;
	uv_timer_stop(&c->timer);
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (create_tenant(c) != 0)
		conn_close(c, "could not create the tenant");
}

static void handshake(struct conn *c)
{
	int rv = SSL_do_handshake(c->ssl);
	char reason[200];

	if (flush(c) != 0) {
		conn_close(c, "write failed during handshake");
		return;
	}
	if (rv == 1) {
		metrics_tls_handshake(1);
		authenticate(c);
		return;
	}
	if (SSL_get_error(c->ssl, rv) == SSL_ERROR_WANT_READ)
		return;
	/* A failed handshake ends this connection only: no certificate, an unknown CA, a
	 * protocol mismatch or a port scanner. */
	metrics_tls_handshake(0);
	log_info("connection %s: TLS handshake failed: %s", c->peer,
		 tls_last_error(reason, sizeof(reason)));
	flush(c); /* the alert */
	conn_close(c, NULL);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = handle->data;
	struct worker *worker = c->worker;

	(void)suggested;
	/* One read at a time per loop: each read is copied into the connection's BIO at
	 * once, so one buffer per worker serves every connection. */
	*buf = uv_buf_init((char *)worker->read_buf, sizeof(worker->read_buf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;

	if (nread == UV_EOF && c->state == CONN_PROCESSING)
		return; /* libuv has stopped reading; the next read after the response sees it */
	if (nread < 0) {
		if (nread == UV_EOF)
			conn_close(c, c->state == CONN_HANDSHAKE ? "closed before the handshake"
				      : c->in.len > 0		 ? "client closed mid-message"
								 : "client closed");
		else
			conn_close(c, uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	if (BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
		conn_close(c, "out of memory");
		return;
	}
	if (c->state == CONN_HANDSHAKE)
		handshake(c);
	else if (c->state == CONN_READING) {
		arm_timer(c, idle_ms(c));
		read_plaintext(c);
	} else if (BIO_ctrl_pending(c->rbio) > max_message(c))
		uv_read_stop(stream); /* a client sending ahead; conn_read_more resumes */
}

/* Resumes reading after a response (or after the client read its backlog). */
static void conn_read_more(struct conn *c)
{
	size_t max_unsent = config_of(c)->max_unsent ? config_of(c)->max_unsent : 4u << 20;

	if (c->state != CONN_READING)
		return;
	/* A client that does not read its responses gets no new ones. */
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > max_unsent) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	/* A complete message may already sit in OpenSSL's or our buffers. */
	read_plaintext(c);
}

void net_peer_name(const uv_tcp_t *tcp, char *out, size_t cap)
{
	struct sockaddr_storage addr;
	int len = sizeof(addr);
	char host[48] = "?";
	unsigned port = 0;

	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&addr, &len) == 0) {
		if (addr.ss_family == AF_INET) {
			uv_ip4_name((struct sockaddr_in *)&addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
		} else if (addr.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
		}
	}
	snprintf(out, cap, "%s:%u", host, port);
}

void conn_accept(struct worker *worker)
{
	struct net *net = worker->net;
	struct net_config *config = &net->config;
	unsigned limit = config->max_connections ? config->max_connections : 10000;
	struct conn *c = calloc(1, sizeof(*c));
	struct kmip_exchange_config xconfig;

	if (c == NULL) {
		log_error("worker %u: out of memory accepting a connection", worker->index);
		return;
	}
	c->worker = worker;
	uv_tcp_init(&worker->loop, &c->tcp);
	uv_timer_init(&worker->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles_open = 2;
	c->serial = ++worker->accepted;
	atomic_fetch_add(&net->connections, 1);
	metrics_connections(1);
	c->next = worker->conns;
	if (worker->conns != NULL)
		worker->conns->prev = c;
	worker->conns = c;

	if (uv_accept((uv_stream_t *)&worker->listener, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c, NULL);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	net_peer_name(&c->tcp, c->peer, sizeof(c->peer));
	if (atomic_load(&net->connections) > limit) {
		log_warn("connection %s refused: %u connections is the limit", c->peer, limit);
		c->state = CONN_HANDSHAKE;
		conn_close(c, NULL);
		return;
	}

	c->ssl = SSL_new(config->tls);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		conn_close(c, "out of memory");
		return;
	}
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_accept_state(c->ssl);

	memset(&xconfig, 0, sizeof(xconfig));
	xconfig.limits.max_message = config->max_message;
	xconfig.identity = config->identity;
	xconfig.authenticate = service_authenticate;
	xconfig.sync = service_sync;
	xconfig.app = &c->session;
	kmip_exchange_init(&c->exchange, &xconfig);
	c->session.service = config->service;
	c->session.resume = on_resume;
	c->session.reply = &worker->replies;
	c->session.conn = c;

	c->state = CONN_HANDSHAKE;
	arm_timer(c, config->handshake_timeout_ms ? config->handshake_timeout_ms : 10000);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

unsigned conn_revoke(struct worker *worker, const char *tenant, const char *fingerprint)
{
	unsigned n = 0;

	for (struct conn *c = worker->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->state == CONN_CLOSING || c->state == CONN_HANDSHAKE ||
		    strcmp(c->session.tenant, tenant) != 0 ||
		    (fingerprint != NULL && strcmp(c->session.trusted_by, fingerprint) != 0))
			continue;
		/* Mid-request or not: its answer may never come; the client's access is gone. */
		conn_close(c, "access revoked");
		n++;
	}
	return n;
}

void conn_drain(struct worker *worker)
{
	struct conn *c = worker->conns;

	if (c == NULL) {
		if (worker->stopping)
			mailbox_close(&worker->replies, NULL);
		return;
	}
	while (c != NULL) {
		struct conn *next = c->next;

		/* Requests being processed finish and are answered; respond() then closes. */
		if (c->state != CONN_PROCESSING && c->state != CONN_CLOSING)
			conn_close(c, worker->stopping ? "node shutting down" : "node drained");
		c = next;
	}
}
