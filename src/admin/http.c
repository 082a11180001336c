/* The admin API's connections: TLS (tls_stream), HTTP/1.1 requests parsed one at a time
 * with http-parser, responses with a Content-Length. A connection that sends nothing
 * complete for IDLE_MS is closed; so is one whose request is malformed or too large, after
 * an error response. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "internal.h"
#include "kmipd/error.h"
#include "kmipd/log.h"
#include "kmipd/metrics.h"
#include "kmipd/pki.h"

#define IDLE_MS 10000

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

static void conn_free(struct http_conn *c)
{
	struct admin *admin = c->admin;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		admin->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	admin->conn_count--;
	buf_free(&c->in);
	buf_free(&c->req.url);
	buf_free(&c->req.body);
	arena_free(&c->arena);
	free(c);
}

static void on_timer_closed(uv_handle_t *handle)
{
	struct http_conn *c = handle->data;

	c->timer_open = false;
	if (c->stream == NULL && c->waiting == 0)
		conn_free(c);
}

/* Frees @c once its stream and timer have closed and no answer from the raft loop is
 * still to come. */
static void maybe_free(struct http_conn *c)
{
	if (c->stream != NULL || c->waiting > 0)
		return;
	if (c->timer_open) {
		if (!uv_is_closing((uv_handle_t *)&c->timer))
			uv_close((uv_handle_t *)&c->timer, on_timer_closed);
		return;
	}
	conn_free(c);
}

static void on_idle(uv_timer_t *timer)
{
	struct http_conn *c = timer->data;

	if (c->stream != NULL)
		tls_stream_close(c->stream, "idle");
}

static void reset_request(struct http_conn *c)
{
	struct http_request *r = &c->req;

	r->path[0] = r->query[0] = '\0';
	r->header[0] = '\0';
	r->header_done = false;
	r->correlation[0] = '\0';
	r->too_large = false;
	c->audit_op = NULL;
	c->audit_tenant[0] = '\0';
	c->caught_up = false;
	c->pending = NULL;
	buf_clear(&r->url);
	buf_clear(&r->body);
	arena_reset(&c->arena);
}

/* ---- Parsing ---- */

static int on_message_begin(http_parser *p)
{
	reset_request(p->data);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (c->req.url.len + len > ADMIN_PATH_MAX * 2) {
		c->req.too_large = true;
		return 0;
	}
	return buf_append(&c->req.url, at, len) == 0 ? 0 : -1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	size_t have = c->req.header_done ? 0 : strlen(c->req.header);

	c->req.header_done = false;
	if (have == 0)
		c->req.header[0] = '\0';
	for (size_t i = 0; i < len && have + 1 < sizeof(c->req.header); i++)
		c->req.header[have++] = (char)tolower((unsigned char)at[i]);
	c->req.header[have] = '\0';
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	size_t have;

	c->req.header_done = true;
	if (strcmp(c->req.header, "x-correlation-id") != 0)
		return 0;
	have = strlen(c->req.correlation);
	for (size_t i = 0; i < len && have + 1 < sizeof(c->req.correlation); i++)
		if (isalnum((unsigned char)at[i]) || strchr("-_.:", at[i]) != NULL)
			c->req.correlation[have++] = at[i];
	c->req.correlation[have] = '\0';
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (c->req.body.len + len > ADMIN_BODY_MAX) {
		c->req.too_large = true;
		return 0;
	}
	return buf_append(&c->req.body, at, len) == 0 ? 0 : -1;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	c->busy = true;
	c->req.method = (enum http_method)p->method;
	c->keep_alive = http_should_keep_alive(p) != 0;
	http_parser_pause(p, 1); /* one request at a time */
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Percent-decodes @in (@len bytes) into @out (@cap bytes). -1 if it does not fit, holds
 * a NUL or a bad escape. */
static int url_decode(const char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == '%') {
			char hex[3] = {0};

			if (i + 2 >= len)
				return -1;
			hex[0] = in[i + 1];
			hex[1] = in[i + 2];
			if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]))
				return -1;
			ch = (char)strtol(hex, NULL, 16);
			i += 2;
		} else if (ch == '+') {
			ch = ' ';
		}
		if (ch == '\0' || o + 1 >= cap)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

/* Splits the URL into path and query. */
static int split_url(struct http_conn *c)
{
	struct http_parser_url u;
	const char *url = (const char *)c->req.url.data;
	size_t len = c->req.url.len;

	http_parser_url_init(&u);
	if (len == 0 || http_parser_parse_url(url, len, 0, &u) != 0 ||
	    (u.field_set & (1 << UF_PATH)) == 0)
		return -1;
	if (url_decode(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len, c->req.path,
		       sizeof(c->req.path)) != 0)
		return -1;
	if ((u.field_set & (1 << UF_QUERY)) != 0) {
		if (u.field_data[UF_QUERY].len >= sizeof(c->req.query))
			return -1;
		memcpy(c->req.query, url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
		c->req.query[u.field_data[UF_QUERY].len] = '\0';
	}
	return 0;
}

const char *http_query(struct http_conn *c, const char *name)
{
	size_t name_len = strlen(name);
	const char *p = c->req.query;

	while (*p != '\0') {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		size_t key_len = eq != NULL ? (size_t)(eq - p) : len;

		if (key_len == name_len && memcmp(p, name, name_len) == 0) {
			const char *v = eq != NULL ? eq + 1 : p + len;
			size_t vlen = (size_t)(p + len - v);
			char *out = arena_alloc(&c->arena, vlen + 1);

			if (out == NULL || url_decode(v, vlen, out, vlen + 1) != 0)
				return NULL;
			return out;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return NULL;
}

static void parse(struct http_conn *c)
{
	while (!c->busy && c->stream != NULL && c->in.len > 0) {
		size_t n = http_parser_execute(&c->parser, &settings, (const char *)c->in.data,
					       c->in.len);
		enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);

		buf_consume(&c->in, n);
		if (err == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			err = HPE_OK;
		}
		if (err != HPE_OK) {
			c->busy = true;
			c->keep_alive = false;
			http_error(c, 400, "the request is not valid HTTP/1.1: %s",
				   http_errno_description(err));
			return;
		}
		if (!c->busy) {
			if (n == 0)
				return;
			continue;
		}
		uv_timer_stop(&c->timer);
		if (c->req.correlation[0] == '\0')
			snprintf(c->req.correlation, sizeof(c->req.correlation), "admin-%llu-%llu",
				 (unsigned long long)c->admin->config.node_id,
				 (unsigned long long)++c->serial);
		if (c->req.too_large) {
			c->keep_alive = false;
			http_error(c, 413, "the request is larger than %u bytes", ADMIN_BODY_MAX);
			return;
		}
		if (split_url(c) != 0) {
			c->keep_alive = false;
			http_error(c, 400, "the request's path is not valid");
			return;
		}
		admin_dispatch(c);
	}
}

/* ---- Responses ---- */

void http_send(struct http_conn *c, int status, const char *content_type, const void *body,
	       size_t len)
{
	struct buf out = BUF_INIT;

	metrics_admin_request(status);
	admin_audit(c, status, c->error_message[0] ? c->error_message : NULL);
	c->error_message[0] = '\0';
	if (c->stream == NULL)
		return;
	if (buf_printf(&out,
		       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		       "X-Correlation-ID: %s\r\nCache-Control: no-store\r\n%s\r\n",
		       status, status_text(status), content_type, len, c->req.correlation,
		       c->keep_alive ? "" : "Connection: close\r\n") != 0 ||
	    buf_append(&out, body, len) != 0 ||
	    tls_stream_write(c->stream, out.data, out.len) != 0) {
		buf_free(&out);
		tls_stream_close(c->stream, "write failed");
		return;
	}
	buf_free(&out);
	c->busy = false;
	if (!c->keep_alive) {
		tls_stream_end(c->stream, "answered");
		return;
	}
	reset_request(c);
	uv_timer_start(&c->timer, on_idle, IDLE_MS, 0);
	parse(c); /* a pipelined request may be waiting */
}

void http_json(struct http_conn *c, int status, json_t *body)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(body);
	if (text == NULL) {
		static const char oom[] = "{\"error\":\"out of memory\"}\n";

		http_send(c, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	{
		size_t len = strlen(text);
		char *line = realloc(text, len + 2);

		if (line != NULL) {
			line[len] = '\n';
			line[len + 1] = '\0';
			text = line;
		}
		http_send(c, status, "application/json", text, strlen(text));
	}
	free(text);
}

void http_error(struct http_conn *c, int status, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	snprintf(c->error_message, sizeof(c->error_message), "%s", message);
	http_json(c, status, json_pack("{s:s}", "error", message));
}

json_t *http_body_object(struct http_conn *c)
{
	json_error_t err;
	json_t *body;

	if (c->req.body.len == 0)
		return json_object();
	body = json_loadb((const char *)c->req.body.data, c->req.body.len, JSON_REJECT_DUPLICATES,
			  &err);
	if (body == NULL) {
		http_error(c, 400, "the body is not valid JSON: %s (at character %d)", err.text,
			   err.position);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		http_error(c, 400, "the body must be a JSON object");
		return NULL;
	}
	return body;
}

/* ---- The connection ---- */

static int on_open(struct tls_stream *stream)
{
	struct http_conn *c = tls_stream_data(stream);
	X509 *cert = tls_stream_peer_cert(stream);

	if (cert != NULL) {
		pki_cert_fingerprint(cert, c->fingerprint);
		if (pki_cert_admin(cert, c->admin_name) != 0)
			c->admin_name[0] = '\0';
	}
	return 0;
}

static void on_data(struct tls_stream *stream, const uint8_t *data, size_t len)
{
	struct http_conn *c = tls_stream_data(stream);

	if (c->in.len + len > ADMIN_BODY_MAX + 65536) {
		tls_stream_close(stream, "request too large");
		return;
	}
	if (buf_append(&c->in, data, len) != 0) {
		tls_stream_close(stream, "out of memory");
		return;
	}
	parse(c);
}

static void on_close(struct tls_stream *stream, const char *why)
{
	struct http_conn *c = tls_stream_data(stream);

	log_debug("admin: connection %s closed: %s", c->peer, why);
	c->stream = NULL;
	maybe_free(c);
}

static const struct tls_stream_callbacks callbacks = {on_open, on_data, on_close};

/* ---- Values ---- */

void admin_date_text(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	out[0] = '\0';
	if (t != 0 && gmtime_r(&tt, &tm) != NULL)
		strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *admin_date(int64_t t)
{
	char text[32];

	admin_date_text(t, text);
	return text[0] != '\0' ? json_string(text) : json_null();
}

/* Appends what @write puts into a memory BIO to @out. */
static int pem_into(struct buf *out, X509 *cert, EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int ok;

	if (bio == NULL)
		return KMIPD_ENOMEM;
	ok = cert != NULL ? PEM_write_bio_X509(bio, cert)
			  : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	len = BIO_get_mem_data(bio, &data);
	ok = ok == 1 && len > 0 && buf_append(out, data, (size_t)len) == 0;
	if (len > 0)
		OPENSSL_cleanse(data, (size_t)len); /* a private key, perhaps */
	BIO_free(bio);
	ERR_clear_error();
	return ok ? 0 : KMIPD_ENOMEM;
}

int admin_pem_cert(X509 *cert, struct buf *out)
{
	return pem_into(out, cert, NULL);
}

int admin_pem(struct http_conn *c, X509 *cert, EVP_PKEY *key, const char **out)
{
	struct buf pem = BUF_INIT;
	int rv = pem_into(&pem, cert, key);

	*out = rv == 0 ? arena_strndup(&c->arena, (const char *)pem.data, pem.len) : NULL;
	if (pem.data != NULL)
		OPENSSL_cleanse(pem.data, pem.cap);
	buf_free(&pem);
	return *out != NULL ? 0 : KMIPD_ENOMEM;
}

void http_accept(struct admin *admin)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	struct tls_stream *stream = NULL;
	int rv;

	if (c == NULL)
		return;
	c->admin = admin;
	arena_init(&c->arena, 4096, 1u << 20);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->next = admin->conns;
	if (admin->conns != NULL)
		admin->conns->prev = c;
	admin->conns = c;
	admin->conn_count++;
	uv_timer_init(&admin->loop, &c->timer);
	c->timer.data = c;
	c->timer_open = true;
	rv = tls_stream_accept((uv_stream_t *)&admin->listener, admin->config.tls, &callbacks, c,
			       &stream);
	c->stream = stream; /* if it exists, even closing: on_close will come */
	if (rv != 0) {
		maybe_free(c);
		return;
	}
	tls_stream_peer_address(stream, c->peer, sizeof(c->peer));
	if (admin->conn_count > ADMIN_CONNS_MAX) {
		log_warn("admin: connection %s refused: %u connections is the limit", c->peer,
			 ADMIN_CONNS_MAX);
		tls_stream_close(stream, "too many connections");
		return;
	}
	uv_timer_start(&c->timer, on_idle, IDLE_MS, 0);
}

void http_close_all(struct admin *admin)
{
	for (struct http_conn *c = admin->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->stream != NULL)
			tls_stream_close(c->stream, "node stopping");
		else
			maybe_free(c);
	}
}

void admin_wait(struct http_conn *c)
{
	c->waiting++;
}

bool admin_resume(struct http_conn *c)
{
	c->waiting--;
	if (c->stream == NULL) {
		maybe_free(c);
		return false;
	}
	/* Closing for admin_close(): the stream's on_close frees @c; nothing may run that
	 * reaches the replication, which may be gone. */
	return !c->admin->stopping;
}
