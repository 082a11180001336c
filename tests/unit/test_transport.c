/* The Raft transport over mutual TLS, driven as libraft drives it: transports on one loop
 * hand over streams that carry bytes both ways; peers of another cluster, tools, KMIP
 * client certificates and the wrong node are refused before anything is handed over;
 * closing cancels what is pending and ends what is open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/replication/transport.h"
#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/peer_proto.h"
#include "kmipd/pki.h"
#include "kmipd/stream_write.h"
#include "kmipd/tls.h"
#include "kmipd/tls_stream.h"

#define CLUSTER	   "test-cluster"
#define TIMEOUT_MS 20000 /* generous: valgrind runs the TLS handshakes slowly */

/* Shared by every test: one PKI (RSA key generation is slow) and its TLS contexts. */
struct group {
	char base[64];
	char dir[96];
	SSL_CTX *node_server; /* node certificate, as kmipd builds it */
	SSL_CTX *node_client;
	SSL_CTX *kmip_client; /* a KMIP client's certificate from the same CA */
};

/* One test's loop, with a timer that bounds every wait. */
struct world {
	const struct group *g;
	uv_loop_t loop;
	uv_timer_t timer;
	bool expired;
};

/* A transport and what its accept callback saw. */
struct node {
	struct raft_uv_transport t;
	char address[32];
	int accepts;
	raft_id accepted_id;
	char accepted_address[64];
	uv_stream_t *accepted;
	bool closed;
};

/* One connect request and its outcome. */
struct attempt {
	struct raft_uv_connect req;
	bool done;
	int status;
	uv_stream_t *stream;
};

/* What a handed-over stream reads. */
struct sink {
	struct buf got;
	bool eof;
};

struct send {
	uv_write_t req;
	uv_buf_t buf;
	bool done;
	int status;
};

/* Loops until @cond holds or the timer expires, then asserts @cond. */
#define RUN_UNTIL(w, cond)                                              \
	do {                                                            \
		(w)->expired = false;                                   \
		uv_timer_start(&(w)->timer, on_expired, TIMEOUT_MS, 0); \
		while (!(cond) && !(w)->expired)                        \
			uv_run(&(w)->loop, UV_RUN_ONCE);                \
		uv_timer_stop(&(w)->timer);                             \
		assert_true(cond);                                      \
	} while (0)

static void on_expired(uv_timer_t *timer)
{
	struct world *w = timer->data;

	w->expired = true;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static SSL_CTX *context(const struct group *g, const char *cert, const char *key, bool server)
{
	char cert_path[160], key_path[160], ca_path[160], msg[512];
	SSL_CTX *ctx;

	snprintf(cert_path, sizeof(cert_path), "%s/%s", g->dir, cert);
	snprintf(key_path, sizeof(key_path), "%s/%s", g->dir, key);
	snprintf(ca_path, sizeof(ca_path), "%s/%s", g->dir, PKI_CA_CERT);
	struct tls_config config = {
		.cert_file = cert_path,
		.key_file = key_path,
		.client_ca = ca_path,
	};
	ctx = server ? tls_server_context(&config, msg, sizeof(msg))
		     : tls_client_context(&config, msg, sizeof(msg));
	if (ctx == NULL)
		fprintf(stderr, "TLS context: %s\n", msg);
	return ctx;
}

static int group_setup(void **state)
{
	struct group *g = calloc(1, sizeof(*g));
	char msg[512];

	if (g == NULL)
		return -1;
	/* libraft's side of a pair may be written after the transport closed ours. */
	signal(SIGPIPE, SIG_IGN);
	strcpy(g->base, "/tmp/kmipd-test-transport-XXXXXX");
	if (mkdtemp(g->base) == NULL)
		return -1;
	snprintf(g->dir, sizeof(g->dir), "%s/pki", g->base);
	if (pki_dev_init(g->dir, NULL, "acme", "vcenter", msg, sizeof(msg)) != 0) {
		fprintf(stderr, "pki_dev_init: %s\n", msg);
		return -1;
	}
	g->node_server = context(g, PKI_SERVER_CERT, PKI_SERVER_KEY, true);
	g->node_client = context(g, PKI_SERVER_CERT, PKI_SERVER_KEY, false);
	g->kmip_client = context(g, PKI_CLIENT_CERT, PKI_CLIENT_KEY, false);
	if (g->node_server == NULL || g->node_client == NULL || g->kmip_client == NULL)
		return -1;
	*state = g;
	return 0;
}

static int group_teardown(void **state)
{
	struct group *g = *state;

	SSL_CTX_free(g->node_server);
	SSL_CTX_free(g->node_client);
	SSL_CTX_free(g->kmip_client);
	nftw(g->base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(g);
	return 0;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (w == NULL || uv_loop_init(&w->loop) != 0)
		return -1;
	w->g = *state;
	uv_timer_init(&w->loop, &w->timer);
	w->timer.data = w;
	*state = w;
	return 0;
}

static void close_left_open(uv_handle_t *handle, void *arg)
{
	unsigned *left = arg;

	if (!uv_is_closing(handle)) {
		(*left)++;
		uv_close(handle, NULL);
	}
}

/* Every handle must be closed by now: the loop closes cleanly. (After a failed assertion
 * some are not: they are closed here, so that the run goes on to report it.) */
static int teardown(void **state)
{
	struct world *w = *state;
	const struct group *g = w->g;
	unsigned left = 0;

	uv_close((uv_handle_t *)&w->timer, NULL);
	uv_walk(&w->loop, close_left_open, &left);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(left, 0);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	free(w);
	*state = (void *)g;
	return 0;
}

/* A loopback port nobody listens on (until someone binds it). */
static int free_port(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	close(fd);
	return ntohs(addr.sin_port);
}

static void free_raft_handle(uv_handle_t *handle)
{
	raft_free(handle);
}

/* libraft's accept callback: it owns @stream from here on. */
static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
		      uv_stream_t *stream)
{
	struct node *n = t->data;

	n->accepts++;
	n->accepted_id = id;
	snprintf(n->accepted_address, sizeof(n->accepted_address), "%s", address);
	if (n->accepted != NULL)
		uv_close((uv_handle_t *)stream, free_raft_handle);
	else
		n->accepted = stream;
}

static void on_connected(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
	struct attempt *a = req->data;

	a->done = true;
	a->status = status;
	a->stream = stream;
}

static void on_node_closed(struct raft_uv_transport *t)
{
	struct node *n = t->data;

	n->closed = true;
}

/* Starts node @id of @cluster on a free port, listening if @listen. */
static void node_start(struct world *w, struct node *n, raft_id id, const char *cluster,
		       SSL_CTX *client, bool listen)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->address, sizeof(n->address), "127.0.0.1:%d", free_port());
	assert_int_equal(transport_init(&n->t, &w->loop, w->g->node_server, client, cluster), 0);
	n->t.data = n;
	assert_int_equal(n->t.init(&n->t, id, n->address), 0);
	if (listen)
		assert_int_equal(n->t.listen(&n->t, on_accept), 0);
}

/* Closes @n's transport, waits for its close callback and frees it. */
static void node_stop(struct world *w, struct node *n)
{
	n->t.close(&n->t, on_node_closed);
	RUN_UNTIL(w, n->closed);
	transport_free(&n->t);
}

static void node_connect(struct node *n, struct attempt *a, raft_id id, const char *address)
{
	memset(a, 0, sizeof(*a));
	a->req.data = a;
	assert_int_equal(n->t.connect(&n->t, &a->req, id, address, on_connected), 0);
}

static void on_sink_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct sink *s = stream->data;

	if (nread > 0)
		assert_int_equal(buf_append(&s->got, buf->base, (size_t)nread), 0);
	else if (nread < 0)
		s->eof = true;
	free(buf->base);
}

static void sink_start(uv_stream_t *stream, struct sink *s)
{
	memset(s, 0, sizeof(*s));
	stream->data = s;
	assert_int_equal(uv_read_start(stream, stream_alloc, on_sink_read), 0);
}

static void on_sent(uv_write_t *req, int status)
{
	struct send *s = req->data;

	s->done = true;
	s->status = status;
}

/* Writes @len bytes of a pattern that differs with @seed, reads them at @to, and checks
 * they arrived whole and in order. */
static void send_and_check(struct world *w, uv_stream_t *from, struct sink *to, size_t len,
			   unsigned seed)
{
	uint8_t *bytes = malloc(len);
	struct send s = {.req.data = &s};

	assert_non_null(bytes);
	for (size_t i = 0; i < len; i++)
		bytes[i] = (uint8_t)(i * 31 + seed + i / 251);
	buf_clear(&to->got);
	s.buf = uv_buf_init((char *)bytes, (unsigned)len);
	assert_int_equal(uv_write(&s.req, from, &s.buf, 1, on_sent), 0);
	RUN_UNTIL(w, s.done && to->got.len >= len);
	assert_int_equal(s.status, 0);
	assert_int_equal(to->got.len, len);
	assert_memory_equal(to->got.data, bytes, len);
	free(bytes);
}

/* Node 1 connected to node 2 (listening): both ends of the link, reading into sinks. */
struct link_pair {
	struct node n1, n2;
	struct attempt a;
	struct sink at1, at2;
};

static void link_up(struct world *w, struct link_pair *p)
{
	node_start(w, &p->n2, 2, CLUSTER, w->g->node_client, true);
	node_start(w, &p->n1, 1, CLUSTER, w->g->node_client, false);
	node_connect(&p->n1, &p->a, 2, p->n2.address);
	RUN_UNTIL(w, p->a.done && p->n2.accepts == 1);
	assert_int_equal(p->a.status, 0);
	assert_non_null(p->a.stream);
	assert_int_equal(p->n2.accepted_id, 1);
	assert_string_equal(p->n2.accepted_address, p->n1.address);
	sink_start(p->a.stream, &p->at1);
	sink_start(p->n2.accepted, &p->at2);
}

/* libraft's part in the end: close the streams it was given. */
static void link_release(struct link_pair *p)
{
	if (!uv_is_closing((uv_handle_t *)p->a.stream))
		uv_close((uv_handle_t *)p->a.stream, free_raft_handle);
	if (!uv_is_closing((uv_handle_t *)p->n2.accepted))
		uv_close((uv_handle_t *)p->n2.accepted, free_raft_handle);
}

static void link_pair_free(struct link_pair *p)
{
	buf_free(&p->at1.got);
	buf_free(&p->at2.got);
}

/* Log lines (standard error) between capture_begin() and capture_end(). */
struct captured {
	char text[8192];
};

static int capture_begin(void)
{
	char path[] = "/tmp/kmipd-test-transport-log-XXXXXX";
	int saved = dup(STDERR_FILENO), fd = mkstemp(path);

	assert_true(saved >= 0 && fd >= 0);
	unlink(path);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
	return saved;
}

static void capture_end(int saved, struct captured *out)
{
	ssize_t n;

	memset(out, 0, sizeof(*out));
	assert_int_equal(lseek(STDERR_FILENO, 0, SEEK_SET), 0);
	n = read(STDERR_FILENO, out->text, sizeof(out->text) - 1);
	assert_true(n >= 0);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	fputs(out->text, stderr); /* still shown with the test's output */
}

static void bytes_cross_both_ways(void **state)
{
	struct world *w = *state;
	struct link_pair p;

	link_up(w, &p);
	send_and_check(w, p.a.stream, &p.at2, 4096, 1);
	send_and_check(w, p.n2.accepted, &p.at1, 3000, 2);
	send_and_check(w, p.a.stream, &p.at2, 1u << 20, 3);
	send_and_check(w, p.n2.accepted, &p.at1, 1u << 20, 4);
	link_release(&p);
	node_stop(w, &p.n1);
	node_stop(w, &p.n2);
	link_pair_free(&p);
}

/* libraft closing its stream is, at the other node, libraft reading EOF. */
static void closing_one_end_ends_the_other(void **state)
{
	struct world *w = *state;
	struct link_pair p;

	link_up(w, &p);
	uv_close((uv_handle_t *)p.a.stream, free_raft_handle);
	RUN_UNTIL(w, p.at2.eof);
	uv_close((uv_handle_t *)p.n2.accepted, free_raft_handle);
	node_stop(w, &p.n1);
	node_stop(w, &p.n2);
	link_pair_free(&p);
}

static void close_ends_open_links(void **state)
{
	struct world *w = *state;
	struct link_pair p;

	link_up(w, &p);
	node_stop(w, &p.n1);
	RUN_UNTIL(w, p.at1.eof && p.at2.eof);
	node_stop(w, &p.n2);
	link_release(&p);
	link_pair_free(&p);
}

static void another_cluster_is_refused(void **state)
{
	struct world *w = *state;
	struct node n2, n3;
	struct attempt a;
	struct captured log;
	int saved = capture_begin();

	node_start(w, &n2, 2, CLUSTER, w->g->node_client, true);
	node_start(w, &n3, 3, "other-cluster", w->g->node_client, false);
	node_connect(&n3, &a, 2, n2.address);
	RUN_UNTIL(w, a.done);
	/* Closing waits for the refused link at node 2: no accept can come after. */
	node_stop(w, &n2);
	node_stop(w, &n3);
	capture_end(saved, &log);
	assert_int_equal(a.status, RAFT_NOCONNECTION);
	assert_null(a.stream);
	assert_int_equal(n2.accepts, 0);
	/* Each side names both clusters and the other node. */
	assert_non_null(strstr(log.text, "refusing node 3 at 127.0.0.1:"));
	assert_non_null(strstr(log.text, "refusing node 2 at 127.0.0.1:"));
	assert_non_null(
		strstr(log.text, "cluster 'other-cluster', this node to cluster '" CLUSTER "'"));
	assert_non_null(strstr(log.text, "cluster '" CLUSTER "', this node to cluster "
					 "'other-cluster'"));
}

static void nobody_listening_is_no_connection(void **state)
{
	struct world *w = *state;
	char address[32];
	struct node n1;
	struct attempt a;

	snprintf(address, sizeof(address), "127.0.0.1:%d", free_port());
	node_start(w, &n1, 1, CLUSTER, w->g->node_client, false);
	node_connect(&n1, &a, 2, address);
	RUN_UNTIL(w, a.done);
	assert_int_equal(a.status, RAFT_NOCONNECTION);
	assert_null(a.stream);
	node_stop(w, &n1);
}

/* As in libraft's TCP transport: an address that cannot be dialled fails at once. */
static void bad_address_fails_at_once(void **state)
{
	struct world *w = *state;
	static const char *const bad[] = {"127.0.0.1",	     "127.0.0.1:",    "127.0.0.1:0",
					  "127.0.0.1:65536", "127.0.0.1:80x", ":7000",
					  "not-an-ip:7000"};
	struct node n1;
	struct attempt a = {.req.data = &a};

	node_start(w, &n1, 1, CLUSTER, w->g->node_client, false);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(n1.t.connect(&n1.t, &a.req, 2, bad[i], on_connected),
				 RAFT_NOCONNECTION);
	node_stop(w, &n1);
	assert_false(a.done);
}

static void kmip_client_certificate_is_refused(void **state)
{
	struct world *w = *state;
	struct node n2, n4;
	struct attempt a;

	node_start(w, &n2, 2, CLUSTER, w->g->node_client, true);
	node_start(w, &n4, 4, CLUSTER, w->g->kmip_client, false);
	node_connect(&n4, &a, 2, n2.address);
	RUN_UNTIL(w, a.done);
	node_stop(w, &n2);
	node_stop(w, &n4);
	assert_int_not_equal(a.status, 0);
	assert_null(a.stream);
	assert_int_equal(n2.accepts, 0);
}

/* The node at the address is node 2, not the node 5 we dialled. Node 2 cannot know whom
 * node 1 meant: it accepts, and its stream ends without a byte. */
static void wrong_node_is_refused(void **state)
{
	struct world *w = *state;
	struct node n1, n2;
	struct attempt a;
	struct sink at2;

	node_start(w, &n2, 2, CLUSTER, w->g->node_client, true);
	node_start(w, &n1, 1, CLUSTER, w->g->node_client, false);
	node_connect(&n1, &a, 5, n2.address);
	RUN_UNTIL(w, a.done && n2.accepts == 1);
	assert_int_equal(a.status, RAFT_NOCONNECTION);
	assert_null(a.stream);
	sink_start(n2.accepted, &at2);
	RUN_UNTIL(w, at2.eof);
	assert_int_equal(at2.got.len, 0);
	uv_close((uv_handle_t *)n2.accepted, free_raft_handle);
	node_stop(w, &n2);
	node_stop(w, &n1);
}

/* A raw TLS client with a node certificate that opens with @opening instead of a node's
 * HELLO: the transport must close on it without an accept. */
struct raw_client {
	struct buf opening;
	bool closed;
};

static int raw_open(struct tls_stream *stream)
{
	struct raw_client *c = tls_stream_data(stream);

	return tls_stream_write(stream, c->opening.data, c->opening.len);
}

static void raw_data(struct tls_stream *stream, const uint8_t *data, size_t len)
{
	(void)stream;
	(void)data;
	(void)len;
}

static void raw_close(struct tls_stream *stream, const char *why)
{
	struct raw_client *c = tls_stream_data(stream);

	(void)why;
	c->closed = true;
}

static const struct tls_stream_callbacks raw_callbacks = {raw_open, raw_data, raw_close};

static void raw_client_is_refused(struct world *w, struct raw_client *c)
{
	struct sockaddr_storage addr;
	struct tls_stream *stream = NULL;
	struct node n2;

	node_start(w, &n2, 2, CLUSTER, w->g->node_client, true);
	assert_int_equal(uv_ip4_addr("127.0.0.1", atoi(strchr(n2.address, ':') + 1),
				     (struct sockaddr_in *)&addr),
			 0);
	assert_int_equal(tls_stream_connect(&w->loop, (struct sockaddr *)&addr, w->g->node_client,
					    &raw_callbacks, c, &stream),
			 0);
	/* Only the transport closes this connection. */
	RUN_UNTIL(w, c->closed);
	node_stop(w, &n2);
	assert_int_equal(n2.accepts, 0);
	buf_free(&c->opening);
}

static void tool_hello_is_refused(void **state)
{
	struct raw_client c = {BUF_INIT, false};

	assert_int_equal(peer_hello_encode(&c.opening, 0, CLUSTER, ""), 0);
	raw_client_is_refused(*state, &c);
}

static void other_first_frame_is_refused(void **state)
{
	struct raw_client c = {BUF_INIT, false};

	assert_int_equal(peer_frame_begin(&c.opening, PEER_STATUS_REQ, 0), 0);
	raw_client_is_refused(*state, &c);
}

static void oversized_first_frame_is_refused(void **state)
{
	struct raw_client c = {BUF_INIT, false};

	assert_int_equal(peer_frame_begin(&c.opening, PEER_HELLO, 100000), 0);
	raw_client_is_refused(*state, &c);
}

/* A listener that accepts TCP and never says a word: the connect stays pending. */
struct mute_server {
	uv_tcp_t listener;
	uv_tcp_t conn;
	bool accepted;
};

static void on_mute_connection(uv_stream_t *server, int status)
{
	struct mute_server *m = server->data;

	assert_int_equal(status, 0);
	uv_tcp_init(server->loop, &m->conn);
	assert_int_equal(uv_accept(server, (uv_stream_t *)&m->conn), 0);
	m->accepted = true;
}

static void close_cancels_a_pending_connect(void **state)
{
	struct world *w = *state;
	struct mute_server m = {.accepted = false};
	struct sockaddr_in addr;
	char address[32];
	struct node n1;
	struct attempt a;
	int port = free_port();

	snprintf(address, sizeof(address), "127.0.0.1:%d", port);
	assert_int_equal(uv_ip4_addr("127.0.0.1", port, &addr), 0);
	uv_tcp_init(&w->loop, &m.listener);
	m.listener.data = &m;
	assert_int_equal(uv_tcp_bind(&m.listener, (struct sockaddr *)&addr, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&m.listener, 8, on_mute_connection), 0);

	node_start(w, &n1, 1, CLUSTER, w->g->node_client, false);
	node_connect(&n1, &a, 2, address);
	RUN_UNTIL(w, m.accepted);
	assert_false(a.done);
	node_stop(w, &n1);
	assert_true(a.done);
	assert_int_equal(a.status, RAFT_CANCELED);
	assert_null(a.stream);
	uv_close((uv_handle_t *)&m.conn, NULL);
	uv_close((uv_handle_t *)&m.listener, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* A peer that accepts the connection and never answers the handshake (a SYN into a cut
 * network looks the same to libraft) is given up after a bounded time, so that libraft
 * dials again soon after the network heals. */
static void a_silent_peer_is_given_up(void **state)
{
	struct world *w = *state;
	struct mute_server m = {.accepted = false};
	struct sockaddr_in addr;
	char address[32];
	struct node n1;
	struct attempt a;
	int port = free_port();
	uint64_t started;

	snprintf(address, sizeof(address), "127.0.0.1:%d", port);
	assert_int_equal(uv_ip4_addr("127.0.0.1", port, &addr), 0);
	uv_tcp_init(&w->loop, &m.listener);
	m.listener.data = &m;
	assert_int_equal(uv_tcp_bind(&m.listener, (struct sockaddr *)&addr, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&m.listener, 8, on_mute_connection), 0);

	node_start(w, &n1, 1, CLUSTER, w->g->node_client, false);
	uv_update_time(&w->loop);
	started = uv_now(&w->loop);
	node_connect(&n1, &a, 2, address);
	RUN_UNTIL(w, a.done);
	assert_int_equal(a.status, RAFT_NOCONNECTION);
	assert_null(a.stream);
	assert_true(uv_now(&w->loop) - started >= 1000);
	assert_true(uv_now(&w->loop) - started < 5000);
	node_stop(w, &n1);
	uv_close((uv_handle_t *)&m.conn, NULL);
	uv_close((uv_handle_t *)&m.listener, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Closed before the loop ran at all: the callback still comes, once. */
static void close_right_after_connect_cancels(void **state)
{
	struct world *w = *state;
	struct node n1, n2;
	struct attempt a;

	node_start(w, &n2, 2, CLUSTER, w->g->node_client, true);
	node_start(w, &n1, 1, CLUSTER, w->g->node_client, false);
	node_connect(&n1, &a, 2, n2.address);
	node_stop(w, &n1);
	assert_true(a.done);
	assert_int_equal(a.status, RAFT_CANCELED);
	node_stop(w, &n2);
	assert_int_equal(n2.accepts, 0);
}

/* Both ends of a tls_stream pair on one loop: what the server end received, and in how
 * many pieces (one per TLS record: OpenSSL's read returns one record's data at a time). */
struct stream_pair {
	uv_tcp_t listener;
	SSL_CTX *server_ctx;
	struct tls_stream *client, *server;
	struct buf got;
	unsigned pieces;
	bool client_closed, server_closed;
	uv_timer_t wake;
	uv_check_t late;
	bool late_sent;
};

static int pair_server_open(struct tls_stream *stream)
{
	(void)stream;
	return 0;
}

static void pair_server_data(struct tls_stream *stream, const uint8_t *data, size_t len)
{
	struct stream_pair *p = tls_stream_data(stream);

	assert_int_equal(buf_append(&p->got, data, len), 0);
	p->pieces++;
}

static void pair_close(struct tls_stream *stream, const char *why)
{
	struct stream_pair *p = tls_stream_data(stream);

	(void)why;
	*(stream == p->client ? &p->client_closed : &p->server_closed) = true;
}

static const struct tls_stream_callbacks pair_server = {pair_server_open, pair_server_data,
							pair_close};

/* One turn of the loop: a hundred small writes. */
static int pair_client_open(struct tls_stream *stream)
{
	char frame[16];

	for (int i = 0; i < 100; i++) {
		snprintf(frame, sizeof(frame), "frame %03d,", i);
		assert_int_equal(tls_stream_write(stream, frame, 10), 0);
	}
	return 0;
}

static const struct tls_stream_callbacks pair_client = {pair_client_open, raw_data, pair_close};

static void on_pair_connection(uv_stream_t *listener, int status)
{
	struct stream_pair *p = listener->data;

	assert_int_equal(status, 0);
	assert_int_equal(tls_stream_accept(listener, p->server_ctx, &pair_server, p, &p->server),
			 0);
}

/* A write from a check callback, once, in a turn with nothing else to do: the stream's
 * own check callback is not due before the loop's next poll. */
static void on_late_check(uv_check_t *check)
{
	struct stream_pair *p = check->data;

	assert_int_equal(tls_stream_write(p->client, "late", 4), 0);
	p->late_sent = true;
	uv_check_stop(check);
}

static void on_wake(uv_timer_t *timer)
{
	struct stream_pair *p = timer->data;

	uv_check_start(&p->late, on_late_check);
}

/* What one turn of the loop writes leaves as one record, in order; a write made in a
 * check callback leaves without waiting for other traffic to wake the loop; a write
 * larger than what a stream holds arrives whole. */
static void writes_of_one_turn_leave_as_one_record(void **state)
{
	struct world *w = *state;
	struct stream_pair p = {.got = BUF_INIT, .server_ctx = w->g->node_server};
	struct sockaddr_in addr;
	struct buf want = BUF_INIT;
	uint8_t *big = malloc(300000);
	int port = free_port();

	assert_non_null(big);
	assert_int_equal(uv_ip4_addr("127.0.0.1", port, &addr), 0);
	uv_tcp_init(&w->loop, &p.listener);
	p.listener.data = &p;
	assert_int_equal(uv_tcp_bind(&p.listener, (struct sockaddr *)&addr, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&p.listener, 8, on_pair_connection), 0);
	uv_check_init(&w->loop, &p.late);
	p.late.data = &p;
	uv_timer_init(&w->loop, &p.wake);
	p.wake.data = &p;
	assert_int_equal(tls_stream_connect(&w->loop, (struct sockaddr *)&addr, w->g->node_client,
					    &pair_client, &p, &p.client),
			 0);

	for (int i = 0; i < 100; i++) {
		char frame[16];

		snprintf(frame, sizeof(frame), "frame %03d,", i);
		assert_int_equal(buf_append(&want, frame, 10), 0);
	}
	RUN_UNTIL(w, p.got.len >= want.len);
	assert_int_equal(p.got.len, want.len);
	assert_memory_equal(p.got.data, want.data, want.len);
	assert_int_equal(p.pieces, 1);

	/* Nothing else happens on the loop: a write left waiting would time out. */
	uv_timer_start(&p.wake, on_wake, 0, 0);
	assert_int_equal(buf_append(&want, "late", 4), 0);
	RUN_UNTIL(w, p.got.len >= want.len);
	assert_true(p.late_sent);
	assert_int_equal(p.got.len, want.len);
	assert_memory_equal(p.got.data, want.data, want.len);
	assert_int_equal(p.pieces, 2);

	for (size_t i = 0; i < 300000; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	assert_int_equal(tls_stream_write(p.client, big, 300000), 0);
	assert_int_equal(buf_append(&want, big, 300000), 0);
	RUN_UNTIL(w, p.got.len >= want.len);
	assert_int_equal(p.got.len, want.len);
	assert_memory_equal(p.got.data, want.data, want.len);

	tls_stream_end(p.client, "done");
	RUN_UNTIL(w, p.client_closed && p.server_closed);
	uv_close((uv_handle_t *)&p.late, NULL);
	uv_close((uv_handle_t *)&p.wake, NULL);
	uv_close((uv_handle_t *)&p.listener, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	buf_free(&p.got);
	buf_free(&want);
	free(big);
}

static void init_checks_its_arguments(void **state)
{
	struct world *w = *state;
	struct raft_uv_transport t = {.data = &t};
	char long_id[PEER_CLUSTER_ID_MAX + 2];

	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(transport_init(&t, &w->loop, w->g->node_server, w->g->node_client, ""),
			 KMIPD_EINVAL);
	assert_int_equal(transport_init(&t, &w->loop, w->g->node_server, w->g->node_client, NULL),
			 KMIPD_EINVAL);
	assert_int_equal(
		transport_init(&t, &w->loop, w->g->node_server, w->g->node_client, long_id),
		KMIPD_EINVAL);
	assert_int_equal(transport_init(&t, &w->loop, NULL, w->g->node_client, CLUSTER),
			 KMIPD_EINVAL);
	assert_int_equal(
		transport_init(&t, &w->loop, w->g->node_server, w->g->node_client, CLUSTER), 0);
	assert_int_equal(t.version, 1);
	assert_ptr_equal(t.data, &t); /* the user's pointer survives */
	transport_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bytes_cross_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(closing_one_end_ends_the_other, setup, teardown),
		cmocka_unit_test_setup_teardown(close_ends_open_links, setup, teardown),
		cmocka_unit_test_setup_teardown(another_cluster_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(nobody_listening_is_no_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_address_fails_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(kmip_client_certificate_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(wrong_node_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(tool_hello_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(other_first_frame_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(oversized_first_frame_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(close_cancels_a_pending_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(a_silent_peer_is_given_up, setup, teardown),
		cmocka_unit_test_setup_teardown(close_right_after_connect_cancels, setup, teardown),
		cmocka_unit_test_setup_teardown(init_checks_its_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(writes_of_one_turn_leave_as_one_record, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
