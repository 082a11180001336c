/* kmipctl: the command-line tool for operating kmipd. It decodes TTLV for people
 * (`kmipctl ttlv decode`), issues client certificates from a node's CA
 * (`kmipctl --data-dir DIR issue-client`) and asks a cluster's nodes about their state, or
 * to add or remove a member, over the peer channel (`kmipctl cluster ...`). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/credentials.h"
#include "kmipd/ctl.h"
#include "kmipd/dump.h"
#include "kmipd/error.h"
#include "kmipd/peer_proto.h"
#include "kmipd/pki.h"
#include "kmipd/tls.h"
#include "kmipd/ttlv.h"

#define EXIT_USAGE    2
#define EXIT_DEGRADED 3 /* cluster status: a member did not answer, or no leader is known */

static const char usage_top[] =
	"usage: kmipctl [--data-dir DIR] <command> ...\n"
	"\n"
	"commands:\n"
	"  ttlv decode HEX|FILE|-   print a KMIP message (TTLV) with the specification's names\n"
	"  issue-client             issue a client certificate from the node's CA\n"
	"  issue-admin              issue an administrator's certificate (for the admin API)\n"
	"  tenant list|create|show|delete\n"
	"                           tenants (admin API)\n"
	"  object list|show         a tenant's objects: metadata, never key material (admin API)\n"
	"  client list|show|add|issue|sign-csr|download|delete\n"
	"                           a tenant's client certificates (admin API)\n"
	"  pki ca|server            export the cluster CA or the server chain as PEM (admin API)\n"
	"  hash-password            print the credentials-file hash of a password (stdin)\n"
	"  cluster status|add|remove|transfer|drain|undrain\n"
	"                           the cluster's members and their lag, membership, leadership,\n"
	"                           draining a node before an upgrade (admin API; status, add\n"
	"                           and remove also over the peer channel with --node)\n"
	"\n"
	"Run 'kmipctl <command> --help' for more.\n";

static const char usage_ttlv[] =
	"usage: kmipctl ttlv decode [--max-size BYTES] HEX|FILE|-\n"
	"\n"
	"Decodes one TTLV item (normally a whole KMIP request or response message) and prints\n"
	"it as a tree. The input is a hex string (spaces and colons allowed), a file holding\n"
	"the binary message or its hex, or '-' for standard input. Invalid input is reported\n"
	"with the offset and the rule it breaks, and kmipctl exits with status 1.\n"
	"\n"
	"  --max-size BYTES   refuse messages larger than this (default 1048576)\n";

static const char usage_issue[] =
	"usage: kmipctl --data-dir DIR issue-client --tenant NAME --name CLIENT --out OUTDIR\n"
	"\n"
	"Writes OUTDIR/CLIENT.pem and OUTDIR/CLIENT-key.pem (mode 0600): a certificate and key\n"
	"for client CLIENT of tenant NAME, signed by the CA in DIR/pki. The node trusts the\n"
	"CA's word: the tenant is created on the client's first connection if it does not\n"
	"exist, without a restart. Names are 1-64 characters of A-Z a-z 0-9 . _ -\n";

/* Reads all of @f into @out. */
static int read_all(FILE *f, struct buf *out)
{
	uint8_t chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(out, chunk, n) != 0)
			return KMIPD_ENOMEM;
	return ferror(f) ? -EIO : 0;
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* True if @in is hex text (digits with optional whitespace and colons). */
static bool looks_like_hex(const uint8_t *in, size_t len)
{
	size_t digits = 0;

	for (size_t i = 0; i < len; i++) {
		if (hex_value(in[i]) >= 0)
			digits++;
		else if (in[i] != ' ' && in[i] != '\n' && in[i] != '\r' && in[i] != '\t' &&
			 in[i] != ':')
			return false;
	}
	return digits > 0;
}

/* Converts hex text into bytes; "0x" prefixes, whitespace and colons are skipped. */
static int unhex(const uint8_t *in, size_t len, struct buf *out)
{
	int high = -1;

	for (size_t i = 0; i < len; i++) {
		int v = hex_value(in[i]);

		if (in[i] == '0' && i + 1 < len && (in[i + 1] == 'x' || in[i + 1] == 'X') &&
		    high < 0) {
			i++;
			continue;
		}
		if (v < 0)
			continue;
		if (high < 0) {
			high = v;
		} else {
			uint8_t byte = (uint8_t)(high << 4 | v);

			if (buf_append(out, &byte, 1) != 0)
				return KMIPD_ENOMEM;
			high = -1;
		}
	}
	return high < 0 ? 0 : KMIPD_EMALFORMED;
}

/* Loads the message named by @arg: '-', a file, or hex on the command line. */
static int load_input(const char *arg, struct buf *msg)
{
	struct buf raw = BUF_INIT;
	FILE *f = NULL;
	int rv;

	if (strcmp(arg, "-") == 0) {
		rv = read_all(stdin, &raw);
	} else if ((f = fopen(arg, "rb")) != NULL) {
		rv = read_all(f, &raw);
		fclose(f);
	} else if (looks_like_hex((const uint8_t *)arg, strlen(arg))) {
		rv = buf_append(&raw, arg, strlen(arg));
	} else {
		fprintf(stderr, "kmipctl: '%s' is neither a readable file nor hex: %s\n", arg,
			strerror(errno));
		return KMIPD_EINVAL;
	}
	if (rv == 0 && looks_like_hex(raw.data, raw.len))
		rv = unhex(raw.data, raw.len, msg);
	else if (rv == 0)
		rv = buf_append(msg, raw.data, raw.len);
	if (rv == KMIPD_EMALFORMED)
		fprintf(stderr, "kmipctl: the hex input has an odd number of digits\n");
	else if (rv != 0)
		fprintf(stderr, "kmipctl: reading '%s': %s\n", arg, kmipd_strerror(rv));
	buf_free(&raw);
	return rv;
}

static int cmd_ttlv(int argc, char **argv)
{
	struct ttlv_limits limits = {0};
	struct buf msg = BUF_INIT;
	struct arena arena;
	struct ttlv_item *root;
	struct ttlv_error err;
	const char *input = NULL;
	int i, rv;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_ttlv, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "decode") != 0) {
		fprintf(stderr, "kmipctl ttlv: unknown subcommand '%s'\n\n%s", argv[1], usage_ttlv);
		return EXIT_USAGE;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_ttlv, stdout);
			return 0;
		} else if (strcmp(argv[i], "--max-size") == 0 && i + 1 < argc) {
			char *end;

			limits.max_message = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || limits.max_message == 0) {
				fprintf(stderr, "kmipctl: --max-size needs a positive number\n");
				return EXIT_USAGE;
			}
		} else if (input == NULL) {
			input = argv[i];
		} else {
			fprintf(stderr, "kmipctl ttlv decode: one input only\n\n%s", usage_ttlv);
			return EXIT_USAGE;
		}
	}
	if (input == NULL) {
		fputs(usage_ttlv, stderr);
		return EXIT_USAGE;
	}
	if (load_input(input, &msg) != 0)
		return EXIT_FAILURE;

	arena_init(&arena, 64 * 1024, 0);
	rv = ttlv_decode(msg.data, msg.len, &limits, &arena, &root, &err);
	if (rv == 0)
		kmip_dump(stdout, root);
	else
		fprintf(stderr, "kmipctl: not valid TTLV (%zu bytes): %s\n", msg.len, err.message);
	arena_free(&arena);
	buf_free(&msg);
	return rv == 0 ? 0 : EXIT_FAILURE;
}

static int cmd_issue_client(const char *data_dir, int argc, char **argv)
{
	const char *tenant = NULL, *name = NULL, *out = NULL;
	char pki[4096], cert[4096], key[4096], errmsg[512];
	int rv;

	for (int i = 1; i < argc; i++) {
		const char **field = strcmp(argv[i], "--tenant") == 0 ? &tenant
				     : strcmp(argv[i], "--name") == 0 ? &name
				     : strcmp(argv[i], "--out") == 0  ? &out
								      : NULL;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_issue, stdout);
			return 0;
		}
		if (field == NULL || i + 1 >= argc) {
			fprintf(stderr, "kmipctl issue-client: unexpected '%s'\n\n%s", argv[i],
				usage_issue);
			return EXIT_USAGE;
		}
		*field = argv[++i];
	}
	if (data_dir == NULL || tenant == NULL || name == NULL || out == NULL) {
		fprintf(stderr,
			"kmipctl issue-client: --data-dir, --tenant, --name and --out are "
			"all required\n\n%s",
			usage_issue);
		return EXIT_USAGE;
	}
	if (!pki_name_valid(tenant) || !pki_name_valid(name)) {
		fprintf(stderr,
			"kmipctl issue-client: '%s' is not a valid name (1-64 characters "
			"of A-Z a-z 0-9 . _ -)\n",
			pki_name_valid(tenant) ? name : tenant);
		return EXIT_USAGE;
	}
	if (mkdir(out, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kmipctl issue-client: creating %s: %s\n", out, strerror(errno));
		return 1;
	}
	snprintf(pki, sizeof(pki), "%s/pki", data_dir);
	snprintf(cert, sizeof(cert), "%s/%s.pem", out, name);
	snprintf(key, sizeof(key), "%s/%s-key.pem", out, name);
	rv = pki_issue_client(pki, tenant, name, cert, key, errmsg, sizeof(errmsg));
	if (rv != 0) {
		fprintf(stderr, "kmipctl issue-client: %s\n", errmsg);
		return 1;
	}
	printf("%s\n%s\n", cert, key);
	return 0;
}

/* Reads a password (one line) from standard input and prints its credentials-file hash. */
static int cmd_hash_password(void)
{
	char line[1024], hash[72];
	size_t len;

	if (fgets(line, sizeof(line), stdin) == NULL) {
		fprintf(stderr, "kmipctl hash-password: no password on standard input\n");
		return EXIT_USAGE;
	}
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (len == 0) {
		fprintf(stderr, "kmipctl hash-password: the password is empty\n");
		return EXIT_USAGE;
	}
	credential_hash(line, hash);
	OPENSSL_cleanse(line, sizeof(line));
	printf("%s\n", hash);
	return 0;
}

static const char usage_cluster[] =
	"(This is the peer-channel form, with --node; without it kmipctl cluster goes through\n"
	"the admin API: kmipctl cluster --help.)\n"
	"\n"
	"usage: kmipctl cluster status --node HOST:PORT [options]\n"
	"       kmipctl cluster add ID@HOST:PORT --node HOST:PORT [options]\n"
	"       kmipctl cluster remove ID --node HOST:PORT [options]\n"
	"\n"
	"Asks a member, over its peer channel (mutual TLS on the port after its Raft port):\n"
	"  status   for its state, then every other member for theirs, and prints a table.\n"
	"           Exits 0 if every member answered and a leader is known, 3 if not, and 1\n"
	"           if the --node itself cannot be asked.\n"
	"  add      to add node ID, whose Raft address is HOST:PORT, to the cluster. The\n"
	"           answer comes once the node is a voter: it must be running to catch\n"
	"           up (raise --timeout for a large store).\n"
	"  remove   to remove node ID from the cluster.\n"
	"           A node that is not the leader names it, and the leader is asked instead.\n"
	"           Exits 0 if the change was made, 1 if not.\n"
	"\n"
	"  --node HOST:PORT   the Raft address of the member to ask (required)\n"
	"  --pki-dir DIR      use DIR/" PKI_CA_CERT ", DIR/" PKI_SERVER_CERT
	" and DIR/" PKI_SERVER_KEY "\n"
	"                     (default: DATA_DIR/pki with kmipctl --data-dir DATA_DIR)\n"
	"  --ca FILE          the cluster CA (overrides --pki-dir)\n"
	"  --cert FILE        a node certificate: the peer channel accepts no other kind\n"
	"  --key FILE         its private key\n"
	"  --cluster-id ID    the cluster's id (default kmipd)\n"
	"  --timeout SECONDS  limit on connecting to each node and getting its answer\n"
	"                     (default 5)\n"
	"  --json             print the answers as JSON\n";

/* Answers are a few kilobytes of JSON; anything near this is not an answer. */
#define ANSWER_MAX (1u << 20)

struct cluster_options {
	const char *node;	/* the Raft address given with --node */
	const char *cluster_id; /* sent in our HELLO and expected in theirs */
	double timeout_s;	/* for one exchange with one node */
	bool json;
	SSL_CTX *tls;
};

/* One exchange with one node over its peer channel. The socket is non-blocking and every
 * wait goes through poll() against one deadline, so a node that accepts and then says
 * nothing (or trickles bytes) costs at most the timeout, handshake included. */
struct link {
	const char *address; /* the node's Raft address, named in messages */
	uint64_t id;	     /* the member expected there, named in messages if not 0 */
	int fd;
	SSL *ssl;
	struct buf in;	  /* bytes read and not yet consumed */
	size_t frame_len; /* of the frame last returned, consumed on the next read */
	int64_t deadline; /* CLOCK_MONOTONIC milliseconds */
	double timeout_s;
	char *why;
	size_t whylen;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes "node [ID ]at ADDRESS" followed by the formatted text into the link's message
 * and returns @code: the text starts with its own separator (": ..." or " belongs to"). */
static int fail(struct link *l, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct link *l, int code, const char *fmt, ...)
{
	int n = l->id != 0
			? snprintf(l->why, l->whylen, "node %" PRIu64 " at %s", l->id, l->address)
			: snprintf(l->why, l->whylen, "node at %s", l->address);
	va_list ap;

	if (n >= 0 && (size_t)n < l->whylen) {
		va_start(ap, fmt);
		vsnprintf(l->why + n, l->whylen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Waits until the socket is ready for @events, or fails once the deadline has passed. */
static int wait_socket(struct link *l, short events, const char *stage)
{
	struct pollfd p = {.fd = l->fd, .events = events};

	for (;;) {
		int64_t left = l->deadline - now_ms();
		int rv;

		if (left <= 0)
			return fail(l, -ETIMEDOUT, ": timed out after %g s %s", l->timeout_s,
				    stage);
		rv = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		/* POLLERR and POLLHUP count as ready: the next call reports what happened. */
		if (rv > 0)
			return 0;
		if (rv < 0 && errno != EINTR)
			return fail(l, -errno, ": poll: %s", strerror(errno));
	}
}

/* After an SSL call returned @ret: waits for the socket if OpenSSL wants to, otherwise
 * describes the failure. */
static int ssl_wait(struct link *l, int ret, const char *stage)
{
	int err = SSL_get_error(l->ssl, ret);
	char reason[256];
	long verify;

	switch (err) {
	case SSL_ERROR_WANT_READ:
		return wait_socket(l, POLLIN, stage);
	case SSL_ERROR_WANT_WRITE:
		return wait_socket(l, POLLOUT, stage);
	case SSL_ERROR_ZERO_RETURN:
		return fail(l, KMIPD_EIO, ": closed the connection %s", stage);
	case SSL_ERROR_SYSCALL:
		if (errno != 0 && ERR_peek_error() == 0)
			return fail(l, -errno, ": %s %s", strerror(errno), stage);
		if (ERR_peek_error() == 0)
			return fail(l, KMIPD_EIO, ": closed the connection %s", stage);
		break;
	default:
		break;
	}
	verify = SSL_get_verify_result(l->ssl);
	if (verify != X509_V_OK) {
		ERR_clear_error();
		return fail(l, KMIPD_ECRYPTO,
			    ": TLS failure: its certificate does not verify against the CA: %s",
			    X509_verify_cert_error_string(verify));
	}
	return fail(l, KMIPD_ECRYPTO, ": TLS failure %s: %s", stage,
		    tls_last_error(reason, sizeof(reason)));
}

/* Splits "host:port", "[v6]:port" or "v6:port" (as kmipd does, at the last colon). The
 * port must leave room for the peer channel after it. */
static int split_address(const char *address, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(address, ':'), *start = address, *end = colon;
	char *rest;
	long value;

	if (colon == NULL)
		return KMIPD_EINVAL;
	if (address[0] == '[') {
		if (colon == address || colon[-1] != ']')
			return KMIPD_EINVAL;
		start++;
		end--;
	}
	if (end <= start || (size_t)(end - start) >= hostlen || !isdigit((unsigned char)colon[1]))
		return KMIPD_EINVAL;
	errno = 0;
	value = strtol(colon + 1, &rest, 10);
	if (errno != 0 || *rest != '\0' || value < 1 || value > 65534)
		return KMIPD_EINVAL;
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	*port = (int)value;
	return 0;
}

/* Connects a non-blocking TCP socket to @host:@port, trying each address it resolves to. */
static int link_connect(struct link *l, const char *host, int port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res, *ai;
	char service[8];
	int rv, err = EADDRNOTAVAIL;

	snprintf(service, sizeof(service), "%d", port);
	rv = getaddrinfo(host, service, &hints, &res);
	if (rv != 0)
		return fail(l, KMIPD_EINVAL, ": cannot resolve '%s': %s", host, gai_strerror(rv));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		socklen_t len = sizeof(err);

		l->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			       ai->ai_protocol);
		if (l->fd < 0) {
			err = errno;
			continue;
		}
		if (connect(l->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		if (err == EINPROGRESS) {
			rv = wait_socket(l, POLLOUT, "while connecting to its peer channel");
			if (rv != 0) {
				freeaddrinfo(res);
				return rv;
			}
			if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
				err = errno;
			else if (err == 0)
				break;
		}
		close(l->fd);
		l->fd = -1;
	}
	freeaddrinfo(res);
	if (l->fd < 0)
		return fail(l, -err, ": connecting to its peer channel (port %d): %s", port,
			    strerror(err));
	return 0;
}

/* The TLS handshake. The CA vouches for the certificate; the node URI in it says the
 * other end is a node and not, say, a KMIP client that was handed the same CA. */
static int link_handshake(struct link *l, SSL_CTX *ctx)
{
	X509 *cert;
	int rv;

	l->ssl = SSL_new(ctx);
	if (l->ssl == NULL || SSL_set_fd(l->ssl, l->fd) != 1)
		return fail(l, KMIPD_ENOMEM, ": setting up TLS: out of memory");
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A node closing without close_notify is "closed the connection", not a TLS error;
	 * frames carry their length, so a cut-off answer is still noticed. */
	SSL_set_options(l->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	for (;;) {
		ERR_clear_error();
		errno = 0;
		rv = SSL_connect(l->ssl);
		if (rv == 1)
			break;
		rv = ssl_wait(l, rv, "in the handshake");
		if (rv != 0)
			return rv;
	}
	cert = SSL_get0_peer_certificate(l->ssl);
	if (cert == NULL || !pki_cert_is_node(cert))
		return fail(l, KMIPD_EPERMISSION,
			    ": its certificate is not a node certificate (no %s URI)",
			    PKI_NODE_URI);
	return 0;
}

static int link_write(struct link *l, const struct buf *b)
{
	for (;;) {
		int rv;

		ERR_clear_error();
		errno = 0;
		/* Without SSL_MODE_ENABLE_PARTIAL_WRITE a success is the whole buffer. */
		rv = SSL_write(l->ssl, b->data, (int)b->len);
		if (rv > 0)
			return 0;
		rv = ssl_wait(l, rv, "while sending");
		if (rv != 0)
			return rv;
	}
}

/* Reads the next frame. *@body (*@len bytes) stays valid until the next call. */
static int link_read_frame(struct link *l, const char *stage, uint8_t *type, const uint8_t **body,
			   size_t *len)
{
	buf_consume(&l->in, l->frame_len);
	l->frame_len = 0;
	for (;;) {
		int rv, n;

		/* Refuse on the length alone rather than buffer up to PEER_FRAME_MAX. */
		if (l->in.len >= 4 && peer_get_u32(l->in.data) > ANSWER_MAX)
			return fail(l, KMIPD_ETOO_LARGE,
				    ": sent a frame of %" PRIu32
				    " bytes %s, more than kmipctl accepts (%u)",
				    peer_get_u32(l->in.data), stage, ANSWER_MAX);
		rv = peer_frame_next(l->in.data, l->in.len, type, body, len, &l->frame_len);
		if (rv == 0)
			return 0;
		if (rv != KMIPD_EAGAIN)
			return fail(l, rv, ": sent a malformed frame %s", stage);
		if (buf_reserve(&l->in, 16384) != 0)
			return fail(l, KMIPD_ENOMEM, ": out of memory %s", stage);
		ERR_clear_error();
		errno = 0;
		n = SSL_read(l->ssl, l->in.data + l->in.len, (int)(l->in.cap - l->in.len));
		if (n > 0) {
			l->in.len += (size_t)n;
			continue;
		}
		rv = ssl_wait(l, n, stage);
		if (rv != 0)
			return rv;
	}
}

static void link_close(struct link *l)
{
	if (l->ssl != NULL) {
		/* Best effort: a close_notify if the socket takes it now, no waiting. */
		SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
	}
	if (l->fd >= 0)
		close(l->fd);
	buf_free(&l->in);
	ERR_clear_error();
}

/* Exchanges HELLOs: ours says node 0 (a tool), theirs must name our cluster. */
static int link_hello(struct link *l, const char *cluster_id, uint64_t *node_id)
{
	struct buf out = BUF_INIT;
	struct peer_hello hello;
	const uint8_t *body;
	uint8_t type;
	size_t len;
	int rv;

	rv = peer_hello_encode(&out, 0, cluster_id, "");
	if (rv == 0)
		rv = link_write(l, &out);
	else
		rv = fail(l, rv, ": encoding the HELLO: %s", kmipd_strerror(rv));
	buf_free(&out);
	if (rv != 0)
		return rv;
	rv = link_read_frame(l, "while waiting for its HELLO", &type, &body, &len);
	if (rv == KMIPD_EIO)
		/* A node closes without a word on a cluster id that is not its own (if it
		 * reads ours before sending its own HELLO) and on a certificate that is not
		 * a node certificate. */
		return fail(l, rv,
			    ": closed the connection before its HELLO (is '%s' its cluster id? "
			    "is the certificate a node certificate of its CA?)",
			    cluster_id);
	if (rv != 0)
		return rv;
	if (type != PEER_HELLO || peer_hello_decode(body, len, &hello) != 0)
		return fail(l, KMIPD_EMALFORMED, ": did not answer with a valid HELLO");
	if (strcmp(hello.cluster_id, cluster_id) != 0)
		return fail(l, KMIPD_EPERMISSION, " belongs to cluster '%s', not '%s'",
			    hello.cluster_id, cluster_id);
	if (hello.version != PEER_PROTO_VERSION)
		return fail(l, KMIPD_EUNSUPPORTED,
			    ": speaks peer protocol version %u; kmipctl speaks version %u",
			    hello.version, PEER_PROTO_VERSION);
	*node_id = hello.node_id;
	return 0;
}

/* One question to one node, and its answer. */
struct question {
	const char *address;	 /* the node's Raft address */
	uint64_t id;		 /* the member expected there, or 0; only named in messages */
	enum peer_frame request; /* sent with body_len bytes of body */
	const uint8_t *body;
	size_t body_len;
	enum peer_frame answer; /* the answer's frame type; its body is a JSON object */

	uint64_t node_id; /* out: the id in the node's HELLO */
	json_t *reply;	  /* out: the answer (the caller's reference), NULL on failure */
	char why[512];	  /* out: on failure, a sentence starting "node [ID ]at ADDRESS" */
};

/* Asks @q: connects to the node's peer channel, exchanges HELLOs, sends the request and
 * parses the answer. 0, or an error with @q->why saying what went wrong (connection
 * refused, TLS failure, a cluster id mismatch, no answer in time, ...). */
static int node_ask(const struct cluster_options *o, struct question *q)
{
	struct link l = {
		.address = q->address,
		.id = q->id,
		.fd = -1,
		.in = BUF_INIT,
		.deadline = now_ms() + (int64_t)(o->timeout_s * 1000),
		.timeout_s = o->timeout_s,
		.why = q->why,
		.whylen = sizeof(q->why),
	};
	struct buf req = BUF_INIT;
	const uint8_t *reply;
	json_error_t jerr;
	char host[PEER_ADDRESS_MAX + 1];
	uint8_t type;
	size_t len;
	int port, rv;

	q->reply = NULL;
	if (split_address(q->address, host, sizeof(host), &port) != 0)
		return fail(&l, KMIPD_EINVAL, ": not a HOST:PORT address");
	rv = link_connect(&l, host, port + 1);
	if (rv == 0)
		rv = link_handshake(&l, o->tls);
	if (rv == 0)
		rv = link_hello(&l, o->cluster_id, &q->node_id);
	if (rv == 0) {
		if (peer_frame_begin(&req, q->request, q->body_len) != 0 ||
		    buf_append(&req, q->body, q->body_len) != 0)
			rv = fail(&l, KMIPD_ENOMEM, ": out of memory");
		else
			rv = link_write(&l, &req);
	}
	if (rv == 0)
		rv = link_read_frame(&l, "while waiting for its answer", &type, &reply, &len);
	if (rv == 0 && type != q->answer && type != PEER_ADMIN)
		rv = fail(&l, KMIPD_EMALFORMED, ": answered with a frame of type %u, not %u", type,
			  q->answer);
	if (rv == 0) {
		q->reply = json_loadb((const char *)reply, len, 0, &jerr);
		if (!json_is_object(q->reply))
			rv = fail(&l, KMIPD_EMALFORMED, ": answered with invalid JSON: %s",
				  q->reply == NULL ? jerr.text : "not an object");
	}
	/* A node may refuse any request with an ADMIN answer; say what it said. */
	if (rv == 0 && type != q->answer) {
		json_t *message = json_object_get(q->reply, "message");

		rv = fail(&l, KMIPD_ESTATE, ": refused: %s",
			  json_is_string(message) ? json_string_value(message) : "(no reason)");
	}
	if (rv != 0) {
		json_decref(q->reply);
		q->reply = NULL;
	}
	buf_free(&req);
	link_close(&l);
	return rv;
}

/* A positive integer member of @object, or 0. */
static uint64_t json_id(const json_t *object, const char *key)
{
	json_t *v = json_object_get(object, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v)
							       : 0;
}

/* A string member of @object, or @fallback. Borrowed from @object. */
static const char *json_text(const json_t *object, const char *key, const char *fallback)
{
	json_t *v = json_object_get(object, key);

	return json_is_string(v) ? json_string_value(v) : fallback;
}

/* One member in `cluster status`: its STATUS, or why it gave none. */
struct status_row {
	uint64_t id;
	char address[PEER_ADDRESS_MAX + 1];
	json_t *status; /* owned; NULL if the node did not answer */
	char error[512];
	bool asked;
};

struct status_table {
	struct status_row *rows;
	size_t len, cap;
};

static struct status_row *table_find(struct status_table *t, uint64_t id)
{
	for (size_t i = 0; i < t->len; i++)
		if (t->rows[i].id == id)
			return &t->rows[i];
	return NULL;
}

/* Appends a row for node @id at @address. NULL if out of memory. */
static struct status_row *table_append(struct status_table *t, uint64_t id, const char *address)
{
	struct status_row *row;

	if (t->len == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		void *p = realloc(t->rows, cap * sizeof(*t->rows));

		if (p == NULL)
			return NULL;
		t->rows = p;
		t->cap = cap;
	}
	row = &t->rows[t->len++];
	memset(row, 0, sizeof(*row));
	row->id = id;
	snprintf(row->address, sizeof(row->address), "%s", address);
	return row;
}

/* Adds a row for each member in @status's "members" that has none yet. Rows may move. */
static int table_add_members(struct status_table *t, const json_t *status)
{
	json_t *members = json_object_get(status, "members"), *m;
	size_t i;

	json_array_foreach(members, i, m)
	{
		uint64_t id = json_id(m, "id");

		if (id == 0 || table_find(t, id) != NULL)
			continue;
		if (table_append(t, id, json_text(m, "address", "")) == NULL)
			return KMIPD_ENOMEM;
	}
	return 0;
}

/* Asks every row not asked yet; a silent node's reason goes to stderr, one line each. */
static void table_ask(struct status_table *t, const struct cluster_options *o)
{
	for (size_t i = 0; i < t->len; i++) {
		struct status_row *row = &t->rows[i];
		struct question q = {
			.address = row->address,
			.id = row->id,
			.request = PEER_STATUS_REQ,
			.answer = PEER_STATUS,
		};

		if (row->asked)
			continue;
		row->asked = true;
		if (node_ask(o, &q) != 0) {
			fprintf(stderr, "kmipctl: %s\n", q.why);
			snprintf(row->error, sizeof(row->error), "%s", q.why);
		}
		row->status = q.reply;
	}
}

static int row_compare(const void *a, const void *b)
{
	const struct status_row *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void table_free(struct status_table *t)
{
	for (size_t i = 0; i < t->len; i++)
		json_decref(t->rows[i].status);
	free(t->rows);
}

/* The leader as the answers tell it, in the newest term any node reports: a node that
 * says it leads in that term (a deposed leader in an older term may not know yet), else
 * the leader a node of that term names. @row is NULL unless the leader itself answered. */
struct leader_view {
	uint64_t id; /* 0: none known */
	const char *address;
	json_int_t term;
	const struct status_row *row;
};

static struct leader_view find_leader(const struct status_table *t)
{
	struct leader_view v = {0, "-", 0, NULL};

	for (size_t i = 0; i < t->len; i++) {
		json_t *term = json_object_get(t->rows[i].status, "term");

		if (json_is_integer(term) && json_integer_value(term) > v.term)
			v.term = json_integer_value(term);
	}
	for (size_t i = 0; i < t->len && v.row == NULL; i++) {
		const json_t *s = t->rows[i].status;

		if (json_integer_value(json_object_get(s, "term")) != v.term)
			continue;
		if (strcmp(json_text(s, "state", ""), "leader") == 0) {
			v.row = &t->rows[i];
			v.id = v.row->id;
			v.address = v.row->address;
		} else if (v.id == 0 && json_id(s, "leader_id") != 0) {
			v.id = json_id(s, "leader_id");
			v.address = json_text(s, "leader_address", "-");
		}
	}
	return v;
}

/* A node's role in the configuration that @config (a STATUS) holds, or "-". */
static const char *raft_role(const json_t *config, uint64_t id)
{
	json_t *members = json_object_get(config, "members"), *m;
	size_t i;

	json_array_foreach(members, i, m)
	{
		if (json_id(m, "id") == id)
			return json_text(m, "role", "-");
	}
	return "-";
}

static void print_table(const struct cluster_options *o, const struct status_table *t,
			const struct leader_view *leader, const json_t *config)
{
	json_t *leader_applied = NULL;
	int width = 16;

	if (leader->id != 0)
		printf("cluster %s: leader node %" PRIu64 " (%s), term %" JSON_INTEGER_FORMAT "\n",
		       o->cluster_id, leader->id, leader->address, leader->term);
	else
		printf("cluster %s: no leader known, term %" JSON_INTEGER_FORMAT "\n",
		       o->cluster_id, leader->term);
	if (leader->row != NULL)
		leader_applied = json_object_get(leader->row->status, "applied_index");
	for (size_t i = 0; i < t->len; i++)
		if ((int)strlen(t->rows[i].address) > width)
			width = (int)strlen(t->rows[i].address);
	printf("%-5s %-*s %-8s %-10s %-10s %-8s %s\n", "node", width, "address", "role",
	       "raft-role", "state", "applied", "lag");
	for (size_t i = 0; i < t->len; i++) {
		const struct status_row *row = &t->rows[i];
		json_t *applied = json_object_get(row->status, "applied_index");
		char id[24], applied_text[24] = "-", lag[24] = "-";

		snprintf(id, sizeof(id), "%" PRIu64, row->id);
		if (json_is_integer(applied))
			snprintf(applied_text, sizeof(applied_text), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(applied));
		if (json_is_integer(applied) && json_is_integer(leader_applied)) {
			json_int_t behind =
				json_integer_value(leader_applied) - json_integer_value(applied);

			/* Each node is asked at its own moment, so one asked after the leader
			 * may have applied more: that is no lag, not a negative one. */
			snprintf(lag, sizeof(lag), "%" JSON_INTEGER_FORMAT,
				 behind > 0 ? behind : 0);
		}
		printf("%-5s %-*s %-8s %-10s %-10s %-8s %s\n", id, width, row->address,
		       row->status ? json_text(row->status, "role", "-") : "-",
		       raft_role(config, row->id),
		       row->status ? json_text(row->status, "state", "-") : "unreachable",
		       applied_text, lag);
	}
}

static int print_json(const struct cluster_options *o, const struct status_table *t,
		      const struct leader_view *leader)
{
	json_t *nodes = json_array(), *doc;
	int rv = nodes != NULL ? 0 : KMIPD_ENOMEM;

	for (size_t i = 0; i < t->len && rv == 0; i++) {
		const struct status_row *row = &t->rows[i];
		json_t *node = row->status != NULL
				       ? json_incref(row->status)
				       : json_pack("{s:I, s:s, s:s, s:s}", "id",
						   (json_int_t)row->id, "address", row->address,
						   "state", "unreachable", "error", row->error);

		if (json_array_append_new(nodes, node) != 0)
			rv = KMIPD_ENOMEM;
	}
	/* "o" hands nodes over to doc, even when packing fails. */
	doc = json_pack("{s:s, s:I, s:I, s:o}", "cluster_id", o->cluster_id, "leader_id",
			(json_int_t)leader->id, "term", leader->term, "nodes", nodes);
	if (doc == NULL || rv != 0 ||
	    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
		json_decref(doc);
		fprintf(stderr, "kmipctl: out of memory\n");
		return KMIPD_ENOMEM;
	}
	putchar('\n');
	json_decref(doc);
	return 0;
}

static int cluster_status(const struct cluster_options *o)
{
	struct status_table t = {0};
	struct status_row *row;
	struct leader_view leader;
	struct question q = {
		.address = o->node,
		.request = PEER_STATUS_REQ,
		.answer = PEER_STATUS,
	};
	const json_t *config;
	json_t *first;
	size_t known;
	int rv = 0;

	if (node_ask(o, &q) != 0) {
		fprintf(stderr, "kmipctl: %s\n", q.why);
		return EXIT_FAILURE;
	}
	first = q.reply;
	if (json_id(first, "id") == 0) {
		fprintf(stderr, "kmipctl: node at %s answered a STATUS without its id\n", o->node);
		json_decref(first);
		return EXIT_FAILURE;
	}
	/* The node asked heads the table even if it is in no configuration (joining). */
	row = table_append(&t, json_id(first, "id"), json_text(first, "address", o->node));
	if (row == NULL) {
		json_decref(first);
		rv = KMIPD_ENOMEM;
	} else {
		row->status = first;
		row->asked = true;
		rv = table_add_members(&t, first);
	}
	if (rv == 0)
		table_ask(&t, o);
	leader = find_leader(&t);
	/* The node asked may be behind on configuration changes; the leader is not. */
	known = t.len;
	if (rv == 0 && leader.row != NULL)
		rv = table_add_members(&t, leader.row->status);
	if (rv == 0 && t.len > known)
		table_ask(&t, o);
	if (rv != 0) {
		fprintf(stderr, "kmipctl: out of memory\n");
		table_free(&t);
		return EXIT_FAILURE;
	}

	/* The same table whichever member was asked. */
	qsort(t.rows, t.len, sizeof(*t.rows), row_compare);
	leader = find_leader(&t);
	config = leader.row != NULL ? leader.row->status : first;
	if (o->json)
		rv = print_json(o, &t, &leader);
	else
		print_table(o, &t, &leader, config);
	for (size_t i = 0; i < t.len && rv == 0; i++)
		if (t.rows[i].status == NULL)
			rv = EXIT_DEGRADED;
	if (rv == 0 && leader.id == 0)
		rv = EXIT_DEGRADED;
	table_free(&t);
	return rv == 0 || rv == EXIT_DEGRADED ? rv : EXIT_FAILURE;
}

/* ADD (@address set) or REMOVE node @id. A node that is not the leader answers with the
 * leader's id and address, and kmipctl asks that node; at most three nodes are asked, so
 * nodes that keep naming each other cannot keep kmipctl going. */
static int cluster_change(const struct cluster_options *o, uint64_t id, const char *address)
{
	uint8_t body[8 + PEER_ADDRESS_MAX];
	struct question q = {
		.address = o->node,
		.request = address != NULL ? PEER_ADD : PEER_REMOVE,
		.body = body,
		.body_len = 8,
		.answer = PEER_ADMIN,
	};
	char leader[PEER_ADDRESS_MAX + 1];
	bool ok = false;

	peer_put_u64(body, id);
	if (address != NULL) {
		memcpy(body + q.body_len, address, strlen(address));
		q.body_len += strlen(address);
	}
	/* The node asked → its leader → (when removing the leader, which hands leadership
	 * over first) the next leader. */
	for (int attempt = 0; attempt < 3; attempt++) {
		const char *leader_address;
		uint64_t leader_id;

		if (node_ask(o, &q) != 0) {
			fprintf(stderr, "kmipctl: %s\n", q.why);
			return EXIT_FAILURE;
		}
		if (!json_is_boolean(json_object_get(q.reply, "ok"))) {
			fprintf(stderr, "kmipctl: node at %s answered without \"ok\"\n", q.address);
			json_decref(q.reply);
			return EXIT_FAILURE;
		}
		ok = json_is_true(json_object_get(q.reply, "ok"));
		leader_id = json_id(q.reply, "leader_id");
		leader_address = json_text(q.reply, "leader_address", "");
		if (ok || attempt == 2 || leader_id == 0 || leader_id == q.node_id ||
		    leader_address[0] == '\0')
			break;
		fprintf(stderr,
			"kmipctl: node %" PRIu64 " at %s: %s; asking the leader, node %" PRIu64
			" at %s\n",
			q.node_id, q.address, json_text(q.reply, "message", "not the leader"),
			leader_id, leader_address);
		snprintf(leader, sizeof(leader), "%s", leader_address);
		json_decref(q.reply);
		q.address = leader;
		q.id = leader_id;
	}
	if (o->json) {
		json_dumpf(q.reply, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else if (ok) {
		printf("%s\n", json_text(q.reply, "message", "done"));
	} else {
		fprintf(stderr, "kmipctl: node %" PRIu64 " at %s: %s\n", q.node_id, q.address,
			json_text(q.reply, "message", "refused"));
	}
	json_decref(q.reply);
	return ok ? 0 : EXIT_FAILURE;
}

static bool address_valid(const char *address)
{
	char host[PEER_ADDRESS_MAX + 1];
	int port;

	return strlen(address) <= PEER_ADDRESS_MAX &&
	       split_address(address, host, sizeof(host), &port) == 0;
}

/* Prints "kmipctl cluster: " and the formatted complaint, then the usage. */
static int cluster_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int cluster_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("kmipctl cluster: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n%s", usage_cluster);
	return EXIT_USAGE;
}

static int cmd_cluster(const char *data_dir, int argc, char **argv)
{
	struct cluster_options o = {.cluster_id = "kmipd", .timeout_s = 5};
	const char *pki_dir = NULL, *ca = NULL, *cert = NULL, *key = NULL, *target = NULL;
	char ca_path[4096], cert_path[4096], key_path[4096], dir[4096], errmsg[512];
	const char *command;
	uint64_t id = 0;
	int rv;

	if (argc < 2) {
		fputs(usage_cluster, stderr);
		return EXIT_USAGE;
	}
	command = argv[1];
	if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
		fputs(usage_cluster, stdout);
		return 0;
	}
	if (strcmp(command, "status") != 0 && strcmp(command, "add") != 0 &&
	    strcmp(command, "remove") != 0)
		return cluster_usage_error("unknown subcommand '%s'", command);
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i];
		const char **value = strcmp(arg, "--node") == 0		? &o.node
				     : strcmp(arg, "--pki-dir") == 0	? &pki_dir
				     : strcmp(arg, "--ca") == 0		? &ca
				     : strcmp(arg, "--cert") == 0	? &cert
				     : strcmp(arg, "--key") == 0	? &key
				     : strcmp(arg, "--cluster-id") == 0 ? &o.cluster_id
									: NULL;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage_cluster, stdout);
			return 0;
		} else if (strcmp(arg, "--json") == 0) {
			o.json = true;
		} else if (strcmp(arg, "--timeout") == 0) {
			char *end;

			if (i + 1 >= argc)
				return cluster_usage_error("%s needs a value", arg);
			o.timeout_s = strtod(argv[++i], &end);
			/* The upper bound keeps the deadline arithmetic far from overflow. */
			if (end == argv[i] || *end != '\0' || !(o.timeout_s > 0) ||
			    o.timeout_s > 86400)
				return cluster_usage_error(
					"--timeout needs a number of seconds, not '%s'", argv[i]);
		} else if (value != NULL) {
			if (i + 1 >= argc)
				return cluster_usage_error("%s needs a value", arg);
			*value = argv[++i];
		} else if (arg[0] == '-' && arg[1] != '\0') {
			return cluster_usage_error("unknown option '%s'", arg);
		} else if (target == NULL && strcmp(command, "status") != 0) {
			target = arg;
		} else {
			return cluster_usage_error("unexpected '%s'", arg);
		}
	}

	if (o.node == NULL)
		return cluster_usage_error("%s needs --node HOST:PORT", command);
	if (!address_valid(o.node))
		return cluster_usage_error("--node needs the Raft address HOST:PORT of a member, "
					   "not '%s'",
					   o.node);
	if (strlen(o.cluster_id) == 0 || strlen(o.cluster_id) > PEER_CLUSTER_ID_MAX)
		return cluster_usage_error("a cluster id is 1-64 bytes, not '%s'", o.cluster_id);
	if (strcmp(command, "add") == 0) {
		const char *at = target != NULL ? strchr(target, '@') : NULL;

		if (at == NULL || ctl_parse_node_id(target, (size_t)(at - target), &id) != 0 ||
		    !address_valid(at + 1))
			return cluster_usage_error("add needs ID@HOST:PORT (a node id and its "
						   "Raft address), not '%s'",
						   target != NULL ? target : "nothing");
	} else if (strcmp(command, "remove") == 0) {
		if (target == NULL || ctl_parse_node_id(target, strlen(target), &id) != 0)
			return cluster_usage_error("remove needs a node id, not '%s'",
						   target != NULL ? target : "nothing");
	}
	if (pki_dir == NULL && data_dir != NULL) {
		snprintf(dir, sizeof(dir), "%s/pki", data_dir);
		pki_dir = dir;
	}
	if (pki_dir != NULL) {
		snprintf(ca_path, sizeof(ca_path), "%s/" PKI_CA_CERT, pki_dir);
		snprintf(cert_path, sizeof(cert_path), "%s/" PKI_SERVER_CERT, pki_dir);
		snprintf(key_path, sizeof(key_path), "%s/" PKI_SERVER_KEY, pki_dir);
		ca = ca != NULL ? ca : ca_path;
		cert = cert != NULL ? cert : cert_path;
		key = key != NULL ? key : key_path;
	}
	if (ca == NULL || cert == NULL || key == NULL)
		return cluster_usage_error("%s needs --pki-dir DIR, or --ca, --cert and --key",
					   command);

	/* OpenSSL reports a missing file as "system lib"; say which file and why. */
	const char *files[] = {ca, cert, key};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (access(files[i], R_OK) != 0) {
			fprintf(stderr, "kmipctl: cannot read %s: %s\n", files[i], strerror(errno));
			return EXIT_FAILURE;
		}
	}

	struct tls_config tls_config = {.cert_file = cert, .key_file = key, .client_ca = ca};

	o.tls = tls_client_context(&tls_config, errmsg, sizeof(errmsg));
	if (o.tls == NULL) {
		fprintf(stderr, "kmipctl: %s\n", errmsg);
		return EXIT_FAILURE;
	}
	/* A node that closes while we write must be an error message, not a dead process. */
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(command, "status") == 0)
		rv = cluster_status(&o);
	else
		rv = cluster_change(&o, id,
				    strcmp(command, "add") == 0 ? strchr(target, '@') + 1 : NULL);
	SSL_CTX_free(o.tls);
	return rv;
}

int main(int argc, char **argv)
{
	const char *data_dir = NULL;

	if (argc >= 3 && strcmp(argv[1], "--data-dir") == 0) {
		data_dir = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2) {
		fputs(usage_top, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_top, stdout);
		return 0;
	}
	if (strcmp(argv[1], "ttlv") == 0)
		return cmd_ttlv(argc - 1, argv + 1);
	if (strcmp(argv[1], "hash-password") == 0)
		return cmd_hash_password();
	if (strcmp(argv[1], "issue-client") == 0)
		return cmd_issue_client(data_dir, argc - 1, argv + 1);
	if (strcmp(argv[1], "cluster") == 0) {
		/* With --node, over the peer channel; else through the admin API. */
		for (int i = 2; i < argc; i++)
			if (strcmp(argv[i], "--node") == 0)
				return cmd_cluster(data_dir, argc - 1, argv + 1);
		return ctl_admin_command(data_dir, argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "tenant") == 0 || strcmp(argv[1], "object") == 0 ||
	    strcmp(argv[1], "client") == 0 || strcmp(argv[1], "pki") == 0 ||
	    strcmp(argv[1], "issue-admin") == 0)
		return ctl_admin_command(data_dir, argc - 1, argv + 1);
	fprintf(stderr, "kmipctl: unknown command '%s'\n\n%s", argv[1], usage_top);
	return EXIT_USAGE;
}
