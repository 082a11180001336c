/* canned-server: the ceiling for kmip-bench. A plain OpenSSL TLS server with kmipd's own
 * TLS context (tls_server_context(): same protocol versions, cipher list, mutual TLS and
 * session resumption settings) that reads TTLV-framed messages and answers each one with
 * fixed bytes: a valid KMIP 1.x response chosen by the request's Operation (Discover
 * Versions, Query, Create, Get with a 32-byte AES key, Get Attributes State, Activate;
 * anything else gets Operation Not Supported). The Unique Batch Item ID, the protocol
 * minor version and the operation are copied from the request into the canned bytes; the
 * request is not otherwise decoded. What it costs is TLS and framing, nothing else.
 *
 * One thread per core (--threads), each with its own epoll loop and its own listening
 * socket on the same port (SO_REUSEPORT), TLS through memory BIOs as kmipd does it (one
 * recv per readable event, one send per TLS flight or batch of answers). Prints "listening on
 * HOST:PORT" and "ready"; SIGINT or SIGTERM stops it and prints what it served. See
 * bench/README.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kmipd/buf.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/tls.h"
#include "kmipd/ttlv.h"

#include "tls_io.h"

#define MAX_MESSAGE (64 * 1024)
#define KEY_ID	    "1f0e6a53-9c2b-4d87-b5a4-3e6f0c9d8a21"
#define TIME_STAMP  1700000000

static const uint8_t key_material[32] = {
	0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae,
	0xf0, 0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61,
	0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
};

/* The request fields the answer copies: their item headers as they appear on the wire. */
static const uint8_t op_header[8] = {0x42, 0x00, 0x5C, TTLV_ENUMERATION, 0, 0, 0, 4};
static const uint8_t batch_id_header[8] = {0x42, 0x00, 0x93, TTLV_BYTE_STRING, 0, 0, 0, 8};
static const uint8_t minor_header[8] = {0x42, 0x00, 0x6B, TTLV_INTEGER, 0, 0, 0, 4};

enum canned { R_DISCOVER, R_QUERY, R_CREATE, R_GET, R_GETATTR, R_ACTIVATE, R_OTHER, R_COUNT };

static const uint32_t canned_ops[R_COUNT] = {
	KMIP_OP_DISCOVER_VERSIONS,
	KMIP_OP_QUERY,
	KMIP_OP_CREATE,
	KMIP_OP_GET,
	KMIP_OP_GET_ATTRIBUTES,
	KMIP_OP_ACTIVATE,
	0,
};

/* A response with the offsets of the values to patch. */
struct canned_response {
	struct buf bytes;
	size_t op_off, minor_off, id_off; /* id_off 0: carries no batch item id */
};

static struct canned_response responses[R_COUNT][2]; /* [op][with a batch item id] */

static void build_response(enum canned which, bool with_id, struct canned_response *r)
{
	struct ttlv_writer w;
	struct buf *out = &r->bytes;

	ttlv_writer_init(&w, out);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_MESSAGE);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_HEADER);
	ttlv_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	r->minor_off = out->len + TTLV_HEADER_SIZE;
	ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, 1);
	ttlv_end(&w);
	ttlv_put_datetime(&w, KMIP_TAG_TIME_STAMP, TIME_STAMP);
	ttlv_put_integer(&w, KMIP_TAG_BATCH_COUNT, 1);
	ttlv_end(&w);
	ttlv_begin(&w, KMIP_TAG_BATCH_ITEM);
	r->op_off = out->len + TTLV_HEADER_SIZE;
	ttlv_put_enum(&w, KMIP_TAG_OPERATION,
		      which == R_OTHER ? KMIP_OP_LOCATE : canned_ops[which]);
	r->id_off = 0;
	if (with_id) {
		r->id_off = out->len + TTLV_HEADER_SIZE;
		ttlv_put_bytes(&w, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, "QLKC\1\0\0\0", 8);
	}
	if (which == R_OTHER) {
		ttlv_put_enum(&w, KMIP_TAG_RESULT_STATUS, KMIP_STATUS_OPERATION_FAILED);
		ttlv_put_enum(&w, KMIP_TAG_RESULT_REASON, KMIP_REASON_OPERATION_NOT_SUPPORTED);
		ttlv_put_cstr(&w, KMIP_TAG_RESULT_MESSAGE, "canned-server does not answer this");
		goto done;
	}
	ttlv_put_enum(&w, KMIP_TAG_RESULT_STATUS, KMIP_STATUS_SUCCESS);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_PAYLOAD);
	switch (which) {
	case R_DISCOVER:
		for (unsigned minor = 4; minor + 1 > 0; minor--) {
			ttlv_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
			ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
			ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, (int32_t)minor);
			ttlv_end(&w);
		}
		break;
	case R_QUERY:
		ttlv_put_cstr(&w, KMIP_TAG_VENDOR_IDENTIFICATION, "canned-server");
		break;
	case R_CREATE:
		ttlv_put_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
		ttlv_put_cstr(&w, KMIP_TAG_UNIQUE_IDENTIFIER, KEY_ID);
		break;
	case R_GET:
		ttlv_put_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
		ttlv_put_cstr(&w, KMIP_TAG_UNIQUE_IDENTIFIER, KEY_ID);
		ttlv_begin(&w, KMIP_TAG_SYMMETRIC_KEY);
		ttlv_begin(&w, KMIP_TAG_KEY_BLOCK);
		ttlv_put_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW);
		ttlv_begin(&w, KMIP_TAG_KEY_VALUE);
		ttlv_put_bytes(&w, KMIP_TAG_KEY_MATERIAL, key_material, sizeof(key_material));
		ttlv_end(&w);
		ttlv_put_enum(&w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES);
		ttlv_put_integer(&w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 256);
		ttlv_end(&w);
		ttlv_end(&w);
		break;
	case R_GETATTR:
		ttlv_put_cstr(&w, KMIP_TAG_UNIQUE_IDENTIFIER, KEY_ID);
		ttlv_begin(&w, KMIP_TAG_ATTRIBUTE);
		ttlv_put_cstr(&w, KMIP_TAG_ATTRIBUTE_NAME, "State");
		ttlv_put_enum(&w, KMIP_TAG_ATTRIBUTE_VALUE, KMIP_STATE_PRE_ACTIVE);
		ttlv_end(&w);
		break;
	case R_ACTIVATE:
		ttlv_put_cstr(&w, KMIP_TAG_UNIQUE_IDENTIFIER, KEY_ID);
		break;
	case R_OTHER:
	case R_COUNT:
		break;
	}
	ttlv_end(&w);
done:
	ttlv_end(&w);
	ttlv_end(&w);
	if (ttlv_writer_finish(&w) != 0) {
		fprintf(stderr, "canned-server: cannot build the canned responses\n");
		exit(1);
	}
}

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Writes the canned answer to the request @req into @out. */
static int answer(const uint8_t *req, size_t len, struct buf *out)
{
	const uint8_t *op = memmem(req, len, op_header, sizeof(op_header));
	const uint8_t *id = memmem(req, len, batch_id_header, sizeof(batch_id_header));
	const uint8_t *minor = memmem(req, len, minor_header, sizeof(minor_header));
	uint32_t code = op != NULL && op + 12 <= req + len ? load_be32(op + 8) : 0;
	enum canned which = R_OTHER;
	const struct canned_response *r;
	uint8_t *p;

	for (int i = 0; i < R_OTHER; i++)
		if (canned_ops[i] == code)
			which = (enum canned)i;
	if (id != NULL && id + 16 > req + len)
		id = NULL;
	r = &responses[which][id != NULL];
	if (buf_reserve(out, r->bytes.len) != 0)
		return -1;
	p = out->data + out->len;
	memcpy(p, r->bytes.data, r->bytes.len);
	if (which == R_OTHER)
		memcpy(p + r->op_off, op != NULL ? op + 8 : (const uint8_t *)"\0\0\0\0", 4);
	if (id != NULL)
		memcpy(p + r->id_off, id + 8, 8);
	if (minor != NULL && minor + 12 <= req + len)
		memcpy(p + r->minor_off, minor + 8, 4);
	out->len += r->bytes.len;
	return 0;
}

/* ---- the server ----------------------------------------------------------------------- */

static struct {
	const char *host, *cert, *key, *ca;
	unsigned port, threads;
} opt = {.host = "127.0.0.1", .port = 5697};

static SSL_CTX *ctx;

struct worker {
	pthread_t thread;
	int ep, listener;
	atomic_ullong handshakes, resumed, messages, failed_handshakes;
};

struct conn {
	struct worker *w;
	int fd;
	SSL *ssl;
	BIO *rbio, *wbio; /* memory BIOs, owned by ssl */
	bool established, eof, want_out;
	struct buf in;	 /* plaintext of the message being read */
	struct buf pend; /* ciphertext the socket did not take yet */
	struct buf out;	 /* an answer on its way into SSL_write */
};

static int send_pending(struct conn *c)
{
	return tls_io_send(c->fd, &c->pend);
}

/* The socket side of the connection, as tls_io.h moves it. */
static int flush(struct conn *c)
{
	return tls_io_flush(c->wbio, c->fd, &c->pend, c->w->ep, c, &c->want_out);
}

static int fill(struct conn *c)
{
	return tls_io_fill(c->fd, c->rbio, &c->eof);
}

static void conn_close(struct conn *c, bool graceful)
{
	if (graceful && c->established) {
		SSL_shutdown(c->ssl); /* best effort close_notify, as kmipd does */
		flush(c);
	}
	SSL_free(c->ssl);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->pend);
	buf_free(&c->out);
	free(c);
	ERR_clear_error();
}

static void drive(struct conn *c, uint32_t events)
{
	if ((events & EPOLLOUT) && (send_pending(c) != 0 || flush(c) != 0)) {
		conn_close(c, false);
		return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && fill(c) != 0) {
		conn_close(c, false);
		return;
	}
	if (!c->established) {
		int n = SSL_do_handshake(c->ssl);

		if (flush(c) != 0) {
			conn_close(c, false);
			return;
		}
		if (n != 1) {
			if (SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ && !c->eof)
				return;
			atomic_fetch_add_explicit(&c->w->failed_handshakes, 1,
						  memory_order_relaxed);
			conn_close(c, false);
			return;
		}
		c->established = true;
		atomic_fetch_add_explicit(&c->w->handshakes, 1, memory_order_relaxed);
		if (SSL_session_reused(c->ssl))
			atomic_fetch_add_explicit(&c->w->resumed, 1, memory_order_relaxed);
	}
	for (;;) {
		struct ttlv_error terr;
		size_t need, total;
		int n;

		if (ttlv_frame_need(c->in.data, c->in.len, MAX_MESSAGE, &need, &total, &terr) !=
		    0) {
			conn_close(c, true);
			return;
		}
		if (need == 0) {
			buf_clear(&c->out);
			if (answer(c->in.data, total, &c->out) != 0 ||
			    SSL_write(c->ssl, c->out.data, (int)c->out.len) != (int)c->out.len) {
				conn_close(c, true);
				return;
			}
			atomic_fetch_add_explicit(&c->w->messages, 1, memory_order_relaxed);
			buf_consume(&c->in, total);
			continue;
		}
		if (buf_reserve(&c->in, need) != 0) {
			conn_close(c, true);
			return;
		}
		n = SSL_read(c->ssl, c->in.data + c->in.len, (int)need);
		if (n > 0) {
			c->in.len += (size_t)n;
			continue;
		}
		/* Everything answered so far (and TLS 1.3 tickets) goes out in one send. */
		if (flush(c) != 0) {
			conn_close(c, false);
			return;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			if (c->eof)
				conn_close(c, false);
			return;
		case SSL_ERROR_ZERO_RETURN:
			conn_close(c, true);
			return;
		default:
			conn_close(c, false);
			return;
		}
	}
}

static void accept_all(struct worker *w)
{
	for (;;) {
		int fd = accept4(w->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event ev;
		struct conn *c;

		if (fd < 0)
			return; /* EAGAIN, or a transient error: the next event retries */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (c == NULL || (c->ssl = SSL_new(ctx)) == NULL) {
			free(c);
			close(fd);
			continue;
		}
		c->w = w;
		c->fd = fd;
		c->rbio = BIO_new(BIO_s_mem());
		c->wbio = BIO_new(BIO_s_mem());
		if (c->rbio == NULL || c->wbio == NULL) {
			BIO_free(c->rbio);
			BIO_free(c->wbio);
			SSL_free(c->ssl);
			free(c);
			close(fd);
			continue;
		}
		SSL_set_bio(c->ssl, c->rbio, c->wbio);
		SSL_set_accept_state(c->ssl);
		ev.events = EPOLLIN; /* level-triggered */
		ev.data.ptr = c;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			conn_close(c, false);
			continue;
		}
		drive(c, EPOLLIN);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event events[64];

	for (;;) {
		int n = epoll_wait(w->ep, events, 64, -1);

		for (int i = 0; i < n; i++) {
			if (events[i].data.ptr == NULL)
				accept_all(w);
			else
				drive(events[i].data.ptr, events[i].events);
		}
	}
	return NULL;
}

static int listen_socket(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 4096) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static const char usage[] =
	"usage: canned-server --cert FILE --key FILE --ca FILE [--host ADDR] [--port N]\n"
	"                     [--threads N]\n"
	"\n"
	"Answers every TTLV message with canned KMIP response bytes over mutual TLS, with\n"
	"kmipd's TLS settings: the ceiling of TLS + framing for kmip-bench.\n"
	"  --host ADDR  IPv4 address to listen on (127.0.0.1)\n"
	"  --port N     port (5697)\n"
	"  --cert FILE  server certificate chain, --key FILE its key (PEM)\n"
	"  --ca FILE    CA bundle client certificates must chain to\n"
	"  --threads N  event-loop threads, each with its own listener (one per core)\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'h'}, {"port", required_argument, NULL, 'p'},
		{"cert", required_argument, NULL, 'c'}, {"key", required_argument, NULL, 'k'},
		{"ca", required_argument, NULL, 'a'},	{"threads", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'H'},	{NULL, 0, NULL, 0},
	};
	struct tls_config tls = {0};
	struct worker *workers;
	unsigned long long hs = 0, resumed = 0, messages = 0, failed = 0;
	char errmsg[512];
	sigset_t stop;
	int c, sig;

	if (argc == 1) {
		/* `make bench` runs every benchmark without arguments: this is a server. */
		printf("canned-server: a server for kmip-bench; see --help, bench/README.md and "
		       "bench/compare.sh\n");
		return 0;
	}
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			opt.host = optarg;
			break;
		case 'p':
			opt.port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			opt.cert = optarg;
			break;
		case 'k':
			opt.key = optarg;
			break;
		case 'a':
			opt.ca = optarg;
			break;
		case 't':
			opt.threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'H':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc || opt.cert == NULL || opt.key == NULL || opt.ca == NULL) {
		fputs(usage, stderr);
		return 2;
	}
	if (opt.threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		opt.threads = n > 0 ? (unsigned)n : 1;
	}
	for (int i = 0; i < R_COUNT; i++) {
		build_response((enum canned)i, false, &responses[i][0]);
		build_response((enum canned)i, true, &responses[i][1]);
	}
	tls.cert_file = opt.cert;
	tls.key_file = opt.key;
	tls.client_ca = opt.ca;
	ctx = tls_server_context(&tls, errmsg, sizeof(errmsg));
	if (ctx == NULL) {
		fprintf(stderr, "canned-server: %s\n", errmsg);
		return 1;
	}

	/* Signals go to the main thread only, which waits for them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	workers = calloc(opt.threads, sizeof(*workers));
	if (workers == NULL)
		return 1;
	for (unsigned i = 0; i < opt.threads; i++) {
		struct worker *w = &workers[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

		w->listener = listen_socket();
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		if (w->listener < 0 || w->ep < 0 ||
		    epoll_ctl(w->ep, EPOLL_CTL_ADD, w->listener, &ev) != 0) {
			fprintf(stderr, "canned-server: cannot listen on %s:%u: %s\n", opt.host,
				opt.port, strerror(errno));
			return 1;
		}
	}
	for (unsigned i = 0; i < opt.threads; i++)
		pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
	printf("listening on %s:%u\nready\n", opt.host, opt.port);
	fflush(stdout);

	sigwait(&stop, &sig);
	for (unsigned i = 0; i < opt.threads; i++) {
		hs += atomic_load(&workers[i].handshakes);
		resumed += atomic_load(&workers[i].resumed);
		messages += atomic_load(&workers[i].messages);
		failed += atomic_load(&workers[i].failed_handshakes);
	}
	fprintf(stderr,
		"canned-server: %llu messages, %llu handshakes (%llu resumed), %llu failed "
		"handshakes\n",
		messages, hs, resumed, failed);
	return 0;
}
