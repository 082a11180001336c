/* kmip-bench: a KMIP load generator. N TLS connections (mutual TLS) send KMIP 1.x requests
 * in a closed loop (one request outstanding per connection) for a duration or a number of
 * requests, with an operation mix; every response is decoded and must be Result Status
 * Success with the payload the operation promises, or it counts as an error, never as
 * throughput. It prints ops/s and latency percentiles per operation and a RESULT line for
 * scripts. See bench/README.md.
 *
 * Connections are spread over a few threads (--threads), each running an epoll loop over
 * non-blocking sockets, with TLS through memory BIOs (one recv per readable event, one send
 * per TLS flight), so a couple of threads drive hundreds of connections with little
 * overhead and leave the CPU to the server. --new-connection does what vCenter does: connect,
 * handshake, one request, close (optionally resuming the previous TLS session).
 *
 * --endpoints does what vCenter does with a key provider of several KMS: every connection
 * starts on the first endpoint (--spread: on endpoint i mod n); a connection failure or a
 * failed request moves the slot to the next endpoint, where the same request is sent again,
 * and the slot stays on the endpoint that worked. --timeline writes ops, errors and latency
 * per 100 ms to a CSV file. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
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
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/ttlv.h"

#include "tls_io.h"

/* ---- operations ---------------------------------------------------------------------- */

enum op { OP_DISCOVER, OP_QUERY, OP_CREATE, OP_GET, OP_GETATTR, OP_ACTIVATE, OP_COUNT };

static const char *const op_names[OP_COUNT] = {
	"discover", "query", "create", "get", "getattr", "activate",
};
static const uint32_t op_codes[OP_COUNT] = {
	KMIP_OP_DISCOVER_VERSIONS, KMIP_OP_QUERY,    KMIP_OP_CREATE, KMIP_OP_GET,
	KMIP_OP_GET_ATTRIBUTES,	   KMIP_OP_ACTIVATE,
};

/* vCenter's Unique Batch Item ID: "QLKC" and a little-endian counter that restarts at 1 in
 * every message. The first Discover Versions of a connection carries none. */
static const uint8_t batch_id[8] = {'Q', 'L', 'K', 'C', 1, 0, 0, 0};

#define UID_MAX 128

/* ---- latency histogram ---------------------------------------------------------------- */

/* Log-linear buckets over nanoseconds: exact below 128 ns, then 128 sub-buckets per power
 * of two (a relative error under 0.8 %), up to 2^64 ns. */
#define HIST_SUB     128
#define HIST_SHIFT   7
#define HIST_BUCKETS (HIST_SUB + (64 - HIST_SHIFT) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t buckets[HIST_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SHIFT;
	return HIST_SUB + shift * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* The middle of bucket @i. */
static double hist_value(unsigned i)
{
	unsigned shift, sub;

	if (i < HIST_SUB)
		return i;
	shift = (i - HIST_SUB) / HIST_SUB;
	sub = (i - HIST_SUB) % HIST_SUB;
	return ((double)(HIST_SUB + sub) + 0.5) * (double)(1ull << shift);
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

static void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	if (from->max > into->max)
		into->max = from->max;
}

/* The @p-th percentile in ms (0 if empty); never above the exact maximum. */
static double hist_pct_ms(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			double v = hist_value(i);

			return (v > (double)h->max ? (double)h->max : v) / 1e6;
		}
	}
	return (double)h->max / 1e6;
}

/* ---- options -------------------------------------------------------------------------- */

static struct {
	const char *host;
	unsigned port;
	const char *ca, *cert, *key, *ciphers, *name, *server_pids;
	const char *endpoints, *timeline, *request_log;
	unsigned connections, threads, keys, per_conn, kmip_version, timeout_ms;
	double duration, warmup, rate;
	long requests;
	unsigned weights[OP_COUNT];
	bool new_conn, resume, tls12, tls13, quiet, spread;
} opt = {
	.host = "127.0.0.1",
	.port = 5696,
	.connections = 16,
	.threads = 2,
	.keys = 1000,
	.kmip_version = KMIP_V1_1,
	.duration = 10,
	.warmup = -1,
	.name = "kmip-bench",
};

static const char usage[] =
	"usage: kmip-bench --ca FILE --cert FILE --key FILE [options]\n"
	"\n"
	"  --host ADDR          server address (127.0.0.1)\n"
	"  --port N             server port (5696)\n"
	"  --ca FILE            CA bundle the server certificate must chain to\n"
	"  --cert FILE          client certificate (PEM), --key FILE its private key\n"
	"  --connections N      concurrent connections, one request in flight each (16)\n"
	"  --threads N          client threads, each an epoll loop (2)\n"
	"  --duration S         measure for S seconds (10), after a warm-up of --warmup S\n"
	"                       (default 1; 0 with --requests)\n"
	"  --requests N         instead of a duration: stop after N requests\n"
	"  --rate R             offer R requests/s in all, on a fixed schedule, whether or not\n"
	"                       earlier ones were answered (default: each connection sends\n"
	"                       its next request when the last is answered); latency counts\n"
	"                       from when a request was due, so time spent waiting for a\n"
	"                       free connection is included\n"
	"  --mix SPEC           operation weights, e.g. get=90,create=10 (discover=100);\n"
	"                       ops: discover query create get getattr activate\n"
	"  --keys K             keys created before the run for get/getattr (1000) and,\n"
	"                       with activate in the mix, K more to activate\n"
	"  --new-connection     connect + handshake + one request + close for every request\n"
	"  --per-connection R   close and reconnect after R requests (1 with --new-connection)\n"
	"  --resume             reconnect with the previous connection's TLS session\n"
	"  --tls12 | --tls13    only TLS 1.2 / only TLS 1.3 (default: either, 1.3 preferred)\n"
	"  --ciphers LIST       OpenSSL TLS 1.2 cipher list for the client\n"
	"  --kmip-version M.N   protocol version in every request (1.1)\n"
	"  --name NAME          label of the RESULT line\n"
	"  --server-pid P[,P..] report the CPU these processes used in the measured window\n"
	"  --quiet              only the RESULT lines\n"
	"  --endpoints H:P,H:P[,...]  several servers, as vCenter's key provider: each\n"
	"                       connection uses the first; a failed connection or request\n"
	"                       is retried on the next one (a failover), and the connection\n"
	"                       stays where it worked (replaces --host and --port)\n"
	"  --spread             with --endpoints: connection i starts on endpoint i mod n\n"
	"  --timeout MS         a request (or a connect + handshake) not done in MS ms fails\n"
	"                       (default 0: no timeout)\n"
	"  --timeline FILE      per 100 ms of the measured window, a CSV line: ops, errors,\n"
	"                       failovers, p50/p99/max latency, in all and per operation\n"
	"  --request-log FILE   every request of the measured window, a CSV line: when it\n"
	"                       ended and started, operation, result, latency, failovers\n";

static int parse_mix(const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	int rv = 0;

	memset(opt.weights, 0, sizeof(opt.weights));
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		unsigned weight = 1;
		int found = -1;

		if (eq != NULL) {
			*eq = '\0';
			weight = (unsigned)strtoul(eq + 1, NULL, 10);
		}
		for (int i = 0; i < OP_COUNT; i++)
			if (strcmp(tok, op_names[i]) == 0)
				found = i;
		if (found < 0) {
			fprintf(stderr, "kmip-bench: unknown operation '%s' in --mix\n", tok);
			rv = -1;
			break;
		}
		opt.weights[found] += weight;
	}
	free(copy);
	return rv;
}

static void parse_args(int argc, char **argv)
{
	enum {
		O_HOST = 256,
		O_PORT,
		O_CA,
		O_CERT,
		O_KEY,
		O_CONNS,
		O_THREADS,
		O_DURATION,
		O_WARMUP,
		O_REQUESTS,
		O_RATE,
		O_MIX,
		O_KEYS,
		O_NEWCONN,
		O_PERCONN,
		O_RESUME,
		O_TLS12,
		O_TLS13,
		O_CIPHERS,
		O_VERSION,
		O_NAME,
		O_QUIET,
		O_SERVER_PID,
		O_ENDPOINTS,
		O_SPREAD,
		O_TIMEOUT,
		O_TIMELINE,
		O_REQUEST_LOG,
		O_HELP,
	};
	static const struct option longopts[] = {
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"ca", required_argument, NULL, O_CA},
		{"cert", required_argument, NULL, O_CERT},
		{"key", required_argument, NULL, O_KEY},
		{"connections", required_argument, NULL, O_CONNS},
		{"threads", required_argument, NULL, O_THREADS},
		{"duration", required_argument, NULL, O_DURATION},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"requests", required_argument, NULL, O_REQUESTS},
		{"rate", required_argument, NULL, O_RATE},
		{"mix", required_argument, NULL, O_MIX},
		{"keys", required_argument, NULL, O_KEYS},
		{"new-connection", no_argument, NULL, O_NEWCONN},
		{"per-connection", required_argument, NULL, O_PERCONN},
		{"resume", no_argument, NULL, O_RESUME},
		{"tls12", no_argument, NULL, O_TLS12},
		{"tls13", no_argument, NULL, O_TLS13},
		{"ciphers", required_argument, NULL, O_CIPHERS},
		{"kmip-version", required_argument, NULL, O_VERSION},
		{"name", required_argument, NULL, O_NAME},
		{"quiet", no_argument, NULL, O_QUIET},
		{"server-pid", required_argument, NULL, O_SERVER_PID},
		{"endpoints", required_argument, NULL, O_ENDPOINTS},
		{"spread", no_argument, NULL, O_SPREAD},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"timeline", required_argument, NULL, O_TIMELINE},
		{"request-log", required_argument, NULL, O_REQUEST_LOG},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	bool mix_given = false;
	int c;

	if (argc == 1) {
		/* `make bench` runs every benchmark without arguments: this one needs a server. */
		printf("kmip-bench: needs a KMIP server to load; see --help, bench/README.md and "
		       "bench/compare.sh\n");
		exit(0);
	}
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_HOST:
			opt.host = optarg;
			break;
		case O_PORT:
			opt.port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_CA:
			opt.ca = optarg;
			break;
		case O_CERT:
			opt.cert = optarg;
			break;
		case O_KEY:
			opt.key = optarg;
			break;
		case O_CONNS:
			opt.connections = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_THREADS:
			opt.threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_DURATION:
			opt.duration = strtod(optarg, NULL);
			break;
		case O_WARMUP:
			opt.warmup = strtod(optarg, NULL);
			break;
		case O_REQUESTS:
			opt.requests = strtol(optarg, NULL, 10);
			break;
		case O_RATE:
			opt.rate = strtod(optarg, NULL);
			if (!(opt.rate > 0)) {
				fprintf(stderr, "kmip-bench: --rate wants requests per second\n");
				exit(2);
			}
			break;
		case O_MIX:
			if (parse_mix(optarg) != 0)
				exit(2);
			mix_given = true;
			break;
		case O_KEYS:
			opt.keys = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_NEWCONN:
			opt.new_conn = true;
			break;
		case O_PERCONN:
			opt.per_conn = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_RESUME:
			opt.resume = true;
			break;
		case O_TLS12:
			opt.tls12 = true;
			break;
		case O_TLS13:
			opt.tls13 = true;
			break;
		case O_CIPHERS:
			opt.ciphers = optarg;
			break;
		case O_VERSION: {
			unsigned major, minor;

			if (sscanf(optarg, "%u.%u", &major, &minor) != 2) {
				fprintf(stderr, "kmip-bench: --kmip-version wants M.N\n");
				exit(2);
			}
			opt.kmip_version = KMIP_VERSION(major, minor);
			break;
		}
		case O_NAME:
			opt.name = optarg;
			break;
		case O_QUIET:
			opt.quiet = true;
			break;
		case O_SERVER_PID:
			opt.server_pids = optarg;
			break;
		case O_ENDPOINTS:
			opt.endpoints = optarg;
			break;
		case O_SPREAD:
			opt.spread = true;
			break;
		case O_TIMEOUT:
			opt.timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_TIMELINE:
			opt.timeline = optarg;
			break;
		case O_REQUEST_LOG:
			opt.request_log = optarg;
			break;
		case O_HELP:
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			exit(2);
		}
	}
	if (optind != argc || opt.ca == NULL || opt.cert == NULL || opt.key == NULL) {
		fputs(usage, stderr);
		exit(2);
	}
	if (!mix_given)
		opt.weights[OP_DISCOVER] = 100;
	if (opt.connections == 0 || opt.threads == 0 || (opt.tls12 && opt.tls13) ||
	    (opt.requests <= 0 && opt.duration <= 0)) {
		fprintf(stderr, "kmip-bench: bad --connections, --threads, --duration, "
				"--requests or TLS version options\n");
		exit(2);
	}
	if (opt.threads > opt.connections)
		opt.threads = opt.connections;
	if (opt.new_conn && opt.per_conn == 0)
		opt.per_conn = 1;
	if (opt.rate > 0 && opt.new_conn) {
		fprintf(stderr, "kmip-bench: --rate paces requests on open connections; it does "
				"not go with --new-connection\n");
		exit(2);
	}
	if (opt.warmup < 0)
		opt.warmup = opt.requests > 0 ? 0 : 1;
}

/* ---- shared state --------------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static SSL_CTX *client_ctx;

/* The servers: --host and --port, or the list of --endpoints. */
#define MAX_ENDPOINTS 16
struct endpoint {
	char host[256];
	unsigned port;
	struct sockaddr_storage addr;
	socklen_t addr_len;
};
static struct endpoint endpoints[MAX_ENDPOINTS];
static unsigned n_endpoints;

/* The server certificate must name @host (an IP address or a DNS name). 1 if set. */
static int set_verify_name(X509_VERIFY_PARAM *param, const char *host)
{
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a6) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(param, host);
	return X509_VERIFY_PARAM_set1_host(param, host, 0);
}

/* Unique Identifiers of keys: read by get/getattr (filled before the run), and a pool of
 * Pre-Active keys consumed by activate (filled before the run and by creates). */
struct uid_list {
	pthread_mutex_t lock;
	char (*uids)[UID_MAX];
	size_t len, cap;
};
static struct uid_list get_keys = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};
static struct uid_list activate_keys = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static void uid_push(struct uid_list *l, const uint8_t *uid, size_t len)
{
	pthread_mutex_lock(&l->lock);
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		void *p = realloc(l->uids, cap * UID_MAX);

		if (p == NULL) {
			pthread_mutex_unlock(&l->lock);
			return;
		}
		l->uids = p;
		l->cap = cap;
	}
	memcpy(l->uids[l->len], uid, len);
	l->uids[l->len][len] = '\0';
	l->len++;
	pthread_mutex_unlock(&l->lock);
}

static bool uid_pop(struct uid_list *l, char *out)
{
	bool ok = false;

	pthread_mutex_lock(&l->lock);
	if (l->len > 0) {
		l->len--;
		memcpy(out, l->uids[l->len], UID_MAX);
		ok = true;
	}
	pthread_mutex_unlock(&l->lock);
	return ok;
}

/* The first few distinct error (and failover) descriptions, printed at the end. */
#define MAX_ERROR_SAMPLES 8
struct samples {
	pthread_mutex_t lock;
	char text[MAX_ERROR_SAMPLES][256];
	unsigned count[MAX_ERROR_SAMPLES];
	unsigned used;
};
static struct samples error_samples = {.lock = PTHREAD_MUTEX_INITIALIZER};
static struct samples failover_samples = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void sample(struct samples *s, const char *text)
{
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->used; i++) {
		if (strcmp(s->text[i], text) == 0) {
			s->count[i]++;
			pthread_mutex_unlock(&s->lock);
			return;
		}
	}
	if (s->used < MAX_ERROR_SAMPLES) {
		snprintf(s->text[s->used], sizeof(s->text[0]), "%s", text);
		s->count[s->used++] = 1;
	}
	pthread_mutex_unlock(&s->lock);
}

static void sample_error(const char *text)
{
	sample(&error_samples, text);
}

static pthread_mutex_t tls_info_lock = PTHREAD_MUTEX_INITIALIZER;
static char tls_info[128];

/* ---- a phase: connections running one mix until a deadline or a request count --------- */

struct phase {
	unsigned weights[OP_COUNT];
	unsigned total_weight;
	unsigned connections;
	unsigned per_conn;   /* 0: unlimited */
	bool new_conn;	     /* latency counts from the connect */
	bool record;	     /* false: results are not kept (preparation) */
	bool keys_to_get;    /* creates feed get_keys (else activate_keys when needed) */
	bool feed_activate;  /* creates feed activate_keys */
	int64_t start_ns;    /* results completing before this are not recorded */
	int64_t end_ns;	     /* 0: until the tickets run out */
	atomic_long tickets; /* requests left when limited */
	bool limited;
	double rate; /* --rate: requests/s offered in all (0: each connection back to back) */
};

/* C_PACED: --rate, the connection is free and waits for the next request to be due. */
enum cstate { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_SEND, C_READ, C_PACED, C_DONE };

struct worker;

struct conn {
	struct worker *w;
	enum cstate st;
	int fd;
	SSL *ssl;
	BIO *rbio, *wbio;     /* memory BIOs: ciphertext in and out, owned by ssl */
	struct buf pend;      /* ciphertext the socket did not take yet */
	bool eof;	      /* the server closed its side */
	bool want_out;	      /* EPOLLOUT is in the interest set */
	SSL_SESSION *session; /* for --resume: the latest ticket or session of this slot */
	bool ticket;	      /* holds a request ticket */
	bool prepared;	      /* c->out holds the next request */
	enum op op;
	int64_t t_conn, t_req, retry_at;
	unsigned on_conn; /* requests answered on this TLS connection */
	struct buf out, in;
	char uid[UID_MAX]; /* the key the request names */
	/* --endpoints */
	unsigned ep;	   /* the endpoint this slot uses */
	unsigned slot;	   /* this slot's number, over all threads */
	unsigned failed;   /* attempts failed in a row (connections or requests) */
	unsigned retries;  /* failovers of the request in hand */
	int64_t t_first;   /* when the request in hand was first started */
	int64_t t_attempt; /* --timeout: when the connect or the request started */
	bool queued;	   /* --rate: in its worker's queue of free connections */
	int64_t t_sent;	   /* --rate: when the request in hand went out (t_req: was due) */
	bool was_ready;	   /* --rate: counted in its worker's @ready */
};

/* --timeline, --request-log: one record per request answered or failed, and per failover. */
enum tl_kind { TL_OK, TL_ERR, TL_FAILOVER };

struct tl_rec {
	int64_t t;	 /* when it happened */
	int64_t t_start; /* when the request (its first attempt) started */
	uint64_t lat;	 /* TL_OK: the request's latency */
	uint8_t op;	 /* enum op, or OP_COUNT for a connection with no request */
	uint8_t kind;
	uint8_t retries; /* failovers of the request before this (capped at 255) */
	uint8_t ep;	 /* the endpoint that answered or failed it (0 without --endpoints) */
	uint16_t slot;	 /* the connection slot, counted over all threads */
};

struct worker {
	pthread_t thread;
	struct phase *ph;
	int ep;
	struct conn *conns;
	unsigned nconns, live, idle;
	uint64_t rng;
	struct arena arena;
	struct hist lat[OP_COUNT];
	uint64_t ok[OP_COUNT], err[OP_COUNT];
	struct hist handshake;
	uint64_t handshakes, resumed, conn_errors, activate_fallbacks;
	int64_t last_done;
	/* --endpoints: failovers per operation ([OP_COUNT]: a connection with no request),
	 * requests that succeeded after one or more, and where the slots ended */
	uint64_t failovers[OP_COUNT + 1], recovered[OP_COUNT];
	uint64_t on_endpoint[MAX_ENDPOINTS];
	struct tl_rec *tl;
	size_t tl_len, tl_cap;
	int64_t next_timeout_check;
	/* --rate: this thread's share of the schedule, one request every @interval ns, which
	 * starts (next_due, INT64_MAX until then) @stagger ns after its connections are up
	 * (@ready of them), or a second after the thread started if some never come up; the
	 * free connections waiting for the next request (a ring of nconns); requests sent
	 * more than 1 ms after they were due, for want of a free connection or of the CPU */
	int64_t interval, next_due, stagger, started;
	unsigned ready;
	struct conn **free_ring;
	unsigned free_head, free_len;
	uint64_t late, paced;
	struct hist send_delay; /* --rate: from due to sent, of the requests answered ok */
};

static void tl_push(struct conn *c, int64_t t, uint64_t lat, unsigned op, enum tl_kind kind)
{
	struct worker *w = c->w;
	int64_t start = c->retries			  ? c->t_first
			: w->ph->new_conn || !c->prepared ? c->t_conn
							  : c->t_req;

	if (opt.timeline == NULL && opt.request_log == NULL)
		return;
	if (w->tl_len == w->tl_cap) {
		size_t cap = w->tl_cap ? w->tl_cap * 2 : 65536;
		struct tl_rec *p = realloc(w->tl, cap * sizeof(*p));

		if (p == NULL)
			return;
		w->tl = p;
		w->tl_cap = cap;
	}
	w->tl[w->tl_len++] =
		(struct tl_rec){.t = t,
				.t_start = start,
				.lat = lat,
				.op = (uint8_t)op,
				.kind = (uint8_t)kind,
				.retries = (uint8_t)(c->retries < 255 ? c->retries : 255),
				.ep = (uint8_t)c->ep,
				.slot = (uint16_t)c->slot};
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static bool in_window(const struct phase *ph, int64_t t)
{
	return ph->record && t >= ph->start_ns && (ph->end_ns == 0 || t <= ph->end_ns);
}

static bool take_ticket(struct phase *ph)
{
	return !ph->limited || atomic_fetch_sub(&ph->tickets, 1) > 0;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *session)
{
	struct conn *c = SSL_get_app_data(ssl);

	if (c == NULL)
		return 0;
	SSL_SESSION_free(c->session);
	c->session = session;
	return 1; /* we keep the reference */
}

static void conn_start(struct conn *c);

/* The socket side of the connection, as tls_io.h moves it. */
static int flush(struct conn *c)
{
	return tls_io_flush(c->wbio, c->fd, &c->pend, c->w->ep, c, &c->want_out);
}

static int fill(struct conn *c)
{
	return tls_io_fill(c->fd, c->rbio, &c->eof);
}

/* Tears the TLS connection down; graceful sends close_notify first (so the session stays
 * resumable, as a well-behaved client does). */
static void conn_teardown(struct conn *c, bool graceful)
{
	if (c->ssl != NULL) {
		if (graceful && c->fd >= 0) {
			SSL_shutdown(c->ssl);
			flush(c);
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	buf_clear(&c->pend);
	c->on_conn = 0;
	c->eof = false;
	c->want_out = false;
	ERR_clear_error();
}

/* --endpoints: the attempt on endpoint c->ep failed (the connection, or the request @why).
 * Moves the slot on to the next endpoint. True if the request in hand (if any) is to be
 * tried there: a failover. False once every endpoint has failed in a row: the caller counts
 * the error as without --endpoints. */
static bool fail_over(struct conn *c, int64_t t, const char *why)
{
	struct worker *w = c->w;
	char text[300];

	if (opt.endpoints == NULL)
		return false;
	c->ep = (c->ep + 1) % n_endpoints;
	if (++c->failed >= n_endpoints) {
		c->failed = 0;
		return false;
	}
	if (in_window(w->ph, t)) {
		unsigned op = c->prepared ? (unsigned)c->op : OP_COUNT;

		w->failovers[op]++;
		tl_push(c, t, 0, op, TL_FAILOVER);
	}
	if (c->prepared || w->ph->new_conn) {
		if (c->retries == 0)
			c->t_first = w->ph->new_conn ? c->t_conn : c->t_req;
		c->retries++;
	}
	if (in_window(w->ph, t) || !w->ph->record) {
		snprintf(text, sizeof(text), "%s", why);
		sample(&failover_samples, text);
	}
	return true;
}

/* The connection failed; counts the error against the request in flight (or the
 * connection), and retries in 10 ms. With --endpoints, first tries the next endpoint at
 * once, with the same request. */
static void conn_fail(struct conn *c, const char *what)
{
	struct worker *w = c->w;
	int64_t t = now_ns();
	char text[256];
	unsigned long e = ERR_peek_last_error();
	char reason[160] = "";
	unsigned from = c->ep;
	bool again;

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(text, sizeof(text), "%s%s%s%s", what, reason[0] ? " (" : "", reason,
		 reason[0] ? ")" : "");
	if (opt.endpoints != NULL) {
		char why[300];

		snprintf(why, sizeof(why), "%s:%u: %s", endpoints[from].host, endpoints[from].port,
			 text);
		again = fail_over(c, t, why);
		snprintf(text, sizeof(text), "%s", why);
	} else {
		again = false;
	}
	if (!again) {
		if (in_window(w->ph, t)) {
			/* c->prepared: a request is in flight or about to go. (Without
			 * --endpoints only in C_SEND and C_READ.) */
			if (c->prepared) {
				w->err[c->op]++;
				tl_push(c, t, 0, c->op, TL_ERR);
			} else {
				/* in new-connection mode, also a failed request */
				w->conn_errors++;
				tl_push(c, t, 0, OP_COUNT, TL_ERR);
			}
		}
		if (in_window(w->ph, t) || !w->ph->record)
			sample_error(text);
	}
	conn_teardown(c, false);
	buf_clear(&c->in); /* a partial response must not prefix the next one */
	c->st = C_IDLE;
	w->idle++;
	if (again) {
		c->retry_at = t; /* the same request (prepared, ticket kept), next endpoint */
		return;
	}
	c->prepared = false;
	c->ticket = false; /* a failure uses up its request, so --requests always ends */
	c->retries = 0;
	c->retry_at = t + 10000000;
}

static void conn_finish(struct conn *c)
{
	conn_teardown(c, true);
	c->st = C_DONE;
	c->w->live--;
}

/* ---- requests ------------------------------------------------------------------------- */

static void put_header(struct ttlv_writer *tw)
{
	ttlv_begin(tw, KMIP_TAG_REQUEST_HEADER);
	ttlv_begin(tw, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_put_integer(tw, KMIP_TAG_PROTOCOL_VERSION_MAJOR,
			 (int32_t)KMIP_VERSION_MAJOR(opt.kmip_version));
	ttlv_put_integer(tw, KMIP_TAG_PROTOCOL_VERSION_MINOR,
			 (int32_t)KMIP_VERSION_MINOR(opt.kmip_version));
	ttlv_end(tw);
	ttlv_put_integer(tw, KMIP_TAG_BATCH_COUNT, 1);
	ttlv_end(tw);
}

static void put_attribute_int(struct ttlv_writer *tw, const char *name, enum ttlv_type type,
			      int32_t value)
{
	ttlv_begin(tw, KMIP_TAG_ATTRIBUTE);
	ttlv_put_cstr(tw, KMIP_TAG_ATTRIBUTE_NAME, name);
	if (type == TTLV_ENUMERATION)
		ttlv_put_enum(tw, KMIP_TAG_ATTRIBUTE_VALUE, (uint32_t)value);
	else
		ttlv_put_integer(tw, KMIP_TAG_ATTRIBUTE_VALUE, value);
	ttlv_end(tw);
}

/* Builds the request for @op (naming c->uid where the operation needs a key). */
static int build_request(struct conn *c, enum op op)
{
	struct ttlv_writer tw;

	buf_clear(&c->out);
	ttlv_writer_init(&tw, &c->out);
	ttlv_begin(&tw, KMIP_TAG_REQUEST_MESSAGE);
	put_header(&tw);
	ttlv_begin(&tw, KMIP_TAG_BATCH_ITEM);
	ttlv_put_enum(&tw, KMIP_TAG_OPERATION, op_codes[op]);
	if (op != OP_DISCOVER)
		ttlv_put_bytes(&tw, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, batch_id, sizeof(batch_id));
	ttlv_begin(&tw, KMIP_TAG_REQUEST_PAYLOAD);
	switch (op) {
	case OP_DISCOVER:
		break; /* empty, as vCenter sends it */
	case OP_QUERY:
		ttlv_put_enum(&tw, KMIP_TAG_QUERY_FUNCTION, KMIP_QUERY_SERVER_INFORMATION);
		break;
	case OP_CREATE:
		ttlv_put_enum(&tw, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_TYPE_SYMMETRIC_KEY);
		ttlv_begin(&tw, KMIP_TAG_TEMPLATE_ATTRIBUTE);
		put_attribute_int(&tw, "Cryptographic Algorithm", TTLV_ENUMERATION, KMIP_ALG_AES);
		put_attribute_int(&tw, "Cryptographic Length", TTLV_INTEGER, 256);
		put_attribute_int(&tw, "Cryptographic Usage Mask", TTLV_INTEGER,
				  KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT);
		ttlv_end(&tw);
		break;
	case OP_GET:
	case OP_ACTIVATE:
		ttlv_put_cstr(&tw, KMIP_TAG_UNIQUE_IDENTIFIER, c->uid);
		break;
	case OP_GETATTR:
		ttlv_put_cstr(&tw, KMIP_TAG_UNIQUE_IDENTIFIER, c->uid);
		ttlv_put_cstr(&tw, KMIP_TAG_ATTRIBUTE_NAME, "State");
		break;
	case OP_COUNT:
		break;
	}
	ttlv_end(&tw);
	ttlv_end(&tw);
	ttlv_end(&tw);
	return ttlv_writer_finish(&tw);
}

static enum op pick_op(struct worker *w)
{
	const struct phase *ph = w->ph;
	unsigned r = (unsigned)(rng_next(&w->rng) % ph->total_weight);

	for (int i = 0; i < OP_COUNT; i++) {
		if (r < ph->weights[i])
			return (enum op)i;
		r -= ph->weights[i];
	}
	return OP_DISCOVER;
}

static int prepare(struct conn *c)
{
	struct worker *w = c->w;
	enum op op = pick_op(w);

	if (op == OP_ACTIVATE && !uid_pop(&activate_keys, c->uid)) {
		op = OP_CREATE; /* nothing left to activate: make one instead */
		w->activate_fallbacks++;
	}
	if ((op == OP_GET || op == OP_GETATTR) && get_keys.len > 0) {
		size_t i = (size_t)(rng_next(&w->rng) % get_keys.len);

		memcpy(c->uid, get_keys.uids[i], UID_MAX);
	}
	c->op = op;
	c->prepared = true;
	return build_request(c, op);
}

/* ---- responses ------------------------------------------------------------------------ */

static bool text_is(const struct ttlv_item *item, const char *s)
{
	return item != NULL && item->type == TTLV_TEXT_STRING && ttlv_text_equals(item, s);
}

static const struct ttlv_item *child_typed(const struct ttlv_item *parent, uint32_t tag,
					   enum ttlv_type type)
{
	const struct ttlv_item *item;

	if (parent == NULL || parent->type != TTLV_STRUCTURE)
		return NULL;
	item = ttlv_child(parent, tag);
	return item != NULL && item->type == type ? item : NULL;
}

/* Checks the response to c's request: 0, or -1 with a description in @why. */
static int check_response(struct conn *c, char *why, size_t whylen)
{
	struct worker *w = c->w;
	struct ttlv_item *root;
	struct ttlv_error terr;
	const struct ttlv_item *hdr, *item, *status, *payload, *x;
	int rv;

	arena_reset(&w->arena);
	rv = ttlv_decode(c->in.data, c->in.len, NULL, &w->arena, &root, &terr);
	if (rv != 0) {
		snprintf(why, whylen, "%s: undecodable response: %s", op_names[c->op],
			 terr.message);
		return -1;
	}
	if (root->tag != KMIP_TAG_RESPONSE_MESSAGE || root->type != TTLV_STRUCTURE) {
		snprintf(why, whylen, "%s: not a Response Message", op_names[c->op]);
		return -1;
	}
	hdr = child_typed(root, KMIP_TAG_RESPONSE_HEADER, TTLV_STRUCTURE);
	x = child_typed(hdr, KMIP_TAG_BATCH_COUNT, TTLV_INTEGER);
	item = child_typed(root, KMIP_TAG_BATCH_ITEM, TTLV_STRUCTURE);
	if (x == NULL || x->v.integer != 1 || item == NULL || ttlv_next_same(item) != NULL) {
		snprintf(why, whylen, "%s: response without exactly one batch item",
			 op_names[c->op]);
		return -1;
	}
	status = child_typed(item, KMIP_TAG_RESULT_STATUS, TTLV_ENUMERATION);
	if (status == NULL || status->v.enumeration != KMIP_STATUS_SUCCESS) {
		const struct ttlv_item *reason =
			child_typed(item, KMIP_TAG_RESULT_REASON, TTLV_ENUMERATION);
		const struct ttlv_item *msg =
			child_typed(item, KMIP_TAG_RESULT_MESSAGE, TTLV_TEXT_STRING);
		const char *rname =
			reason ? kmip_enum_name(KMIP_FAMILY_REASON, reason->v.enumeration) : NULL;

		snprintf(why, whylen, "%s: %s, reason %s: %.*s", op_names[c->op],
			 status ? "Operation Failed" : "no Result Status", rname ? rname : "none",
			 msg ? (int)msg->length : 4, msg ? (const char *)msg->v.bytes : "none");
		return -1;
	}
	x = child_typed(item, KMIP_TAG_OPERATION, TTLV_ENUMERATION);
	if (x == NULL || x->v.enumeration != op_codes[c->op]) {
		snprintf(why, whylen, "%s: response for another operation", op_names[c->op]);
		return -1;
	}
	x = ttlv_child(item, KMIP_TAG_UNIQUE_BATCH_ITEM_ID);
	if (c->op != OP_DISCOVER &&
	    (x == NULL || x->type != TTLV_BYTE_STRING || x->length != sizeof(batch_id) ||
	     memcmp(x->v.bytes, batch_id, sizeof(batch_id)) != 0)) {
		snprintf(why, whylen, "%s: Unique Batch Item ID not echoed", op_names[c->op]);
		return -1;
	}
	payload = child_typed(item, KMIP_TAG_RESPONSE_PAYLOAD, TTLV_STRUCTURE);
	if (payload == NULL) {
		snprintf(why, whylen, "%s: no Response Payload", op_names[c->op]);
		return -1;
	}
	switch (c->op) {
	case OP_DISCOVER: {
		bool found = false;

		for (x = ttlv_child(payload, KMIP_TAG_PROTOCOL_VERSION); x != NULL;
		     x = ttlv_next_same(x)) {
			const struct ttlv_item *ma =
				child_typed(x, KMIP_TAG_PROTOCOL_VERSION_MAJOR, TTLV_INTEGER);
			const struct ttlv_item *mi =
				child_typed(x, KMIP_TAG_PROTOCOL_VERSION_MINOR, TTLV_INTEGER);

			if (ma && mi &&
			    KMIP_VERSION((unsigned)ma->v.integer, (unsigned)mi->v.integer) ==
				    opt.kmip_version)
				found = true;
		}
		if (!found) {
			snprintf(why, whylen, "discover: our version is not listed");
			return -1;
		}
		break;
	}
	case OP_QUERY:
		if (child_typed(payload, KMIP_TAG_VENDOR_IDENTIFICATION, TTLV_TEXT_STRING) ==
		    NULL) {
			snprintf(why, whylen, "query: no Vendor Identification");
			return -1;
		}
		break;
	case OP_CREATE:
		x = child_typed(payload, KMIP_TAG_UNIQUE_IDENTIFIER, TTLV_TEXT_STRING);
		if (x == NULL || x->length == 0 || x->length >= UID_MAX) {
			snprintf(why, whylen, "create: no usable Unique Identifier");
			return -1;
		}
		if (w->ph->keys_to_get)
			uid_push(&get_keys, x->v.bytes, x->length);
		else if (w->ph->feed_activate)
			uid_push(&activate_keys, x->v.bytes, x->length);
		break;
	case OP_GET: {
		const struct ttlv_item *kb, *kv, *km;

		x = child_typed(payload, KMIP_TAG_OBJECT_TYPE, TTLV_ENUMERATION);
		kb = child_typed(child_typed(payload, KMIP_TAG_SYMMETRIC_KEY, TTLV_STRUCTURE),
				 KMIP_TAG_KEY_BLOCK, TTLV_STRUCTURE);
		kv = child_typed(kb, KMIP_TAG_KEY_VALUE, TTLV_STRUCTURE);
		km = child_typed(kv, KMIP_TAG_KEY_MATERIAL, TTLV_BYTE_STRING);
		if (x == NULL || x->v.enumeration != KMIP_OBJECT_TYPE_SYMMETRIC_KEY ||
		    !text_is(ttlv_child(payload, KMIP_TAG_UNIQUE_IDENTIFIER), c->uid) ||
		    km == NULL || km->length != 32) {
			snprintf(why, whylen, "get: not the 32-byte symmetric key asked for");
			return -1;
		}
		break;
	}
	case OP_GETATTR: {
		const struct ttlv_item *a;

		a = child_typed(payload, KMIP_TAG_ATTRIBUTE, TTLV_STRUCTURE);
		x = a ? child_typed(a, KMIP_TAG_ATTRIBUTE_VALUE, TTLV_ENUMERATION) : NULL;
		if (!text_is(ttlv_child(payload, KMIP_TAG_UNIQUE_IDENTIFIER), c->uid) ||
		    !text_is(ttlv_child(a, KMIP_TAG_ATTRIBUTE_NAME), "State") || x == NULL) {
			snprintf(why, whylen, "getattr: no State attribute");
			return -1;
		}
		break;
	}
	case OP_ACTIVATE:
		if (!text_is(ttlv_child(payload, KMIP_TAG_UNIQUE_IDENTIFIER), c->uid)) {
			snprintf(why, whylen, "activate: Unique Identifier not returned");
			return -1;
		}
		break;
	case OP_COUNT:
		break;
	}
	return 0;
}

/* A whole response is in c->in. Records it and moves on; true if the connection is to
 * send its next request now. */
static bool on_response(struct conn *c)
{
	struct worker *w = c->w;
	struct phase *ph = w->ph;
	int64_t t = now_ns();
	char why[384];
	bool ok = check_response(c, why, sizeof(why)) == 0;

	if (!ok && opt.endpoints != NULL) {
		char text[460];

		snprintf(text, sizeof(text), "%s:%u: %s", endpoints[c->ep].host,
			 endpoints[c->ep].port, why);
		if (fail_over(c, t, text)) {
			/* The same request on the next endpoint (c->out still holds it). */
			buf_clear(&c->in);
			conn_teardown(c, true);
			conn_start(c);
			return false;
		}
		snprintf(why, sizeof(why), "%.383s", text);
	}
	if (in_window(ph, t)) {
		if (ok) {
			uint64_t lat = (uint64_t)(t - (c->retries     ? c->t_first
						       : ph->new_conn ? c->t_conn
								      : c->t_req));

			w->ok[c->op]++;
			hist_add(&w->lat[c->op], lat);
			if (w->interval > 0 && c->retries == 0)
				hist_add(&w->send_delay, (uint64_t)(c->t_sent - c->t_req));
			tl_push(c, t, lat, c->op, TL_OK);
			if (c->retries)
				w->recovered[c->op]++;
		} else {
			w->err[c->op]++;
			tl_push(c, t, 0, c->op, TL_ERR);
			sample_error(why);
		}
	} else if (!ok && ph->record == false) {
		sample_error(why);
	}
	if (ok)
		c->failed = 0;
	c->retries = 0;
	w->last_done = t;
	c->ticket = false;
	c->prepared = false;
	c->on_conn++;
	buf_clear(&c->in);
	if (!ok && opt.endpoints != NULL) {
		/* Every endpoint failed this request; the next one starts where c->ep is now. */
		conn_teardown(c, true);
		conn_start(c);
		return false;
	}
	if (ph->end_ns != 0 && t >= ph->end_ns) {
		conn_finish(c);
		return false;
	}
	if (ph->per_conn != 0 && c->on_conn >= ph->per_conn) {
		conn_teardown(c, true);
		conn_start(c);
		return false;
	}
	c->st = C_SEND;
	return true;
}

/* ---- the connection state machine ----------------------------------------------------- */

static void drive(struct conn *c, uint32_t events);

/* --rate: the first request of @w's schedule is due a stagger after @t. */
static void start_schedule(struct worker *w, int64_t t)
{
	if (w->next_due == INT64_MAX)
		w->next_due = t + w->stagger;
}

/* --rate: gives @c the next request of its thread's schedule and sets @due to when that
 * request was due; false if none is due yet, and @c waits in the free ring (C_PACED). */
static bool pace(struct conn *c, int64_t *due)
{
	struct worker *w = c->w;
	int64_t t = now_ns();

	if (!c->was_ready) {
		c->was_ready = true;
		if (++w->ready == w->nconns)
			start_schedule(w, t);
	}
	if (w->next_due > t) {
		c->st = C_PACED;
		if (!c->queued) {
			w->free_ring[(w->free_head + w->free_len++) % w->nconns] = c;
			c->queued = true;
		}
		return false;
	}
	*due = w->next_due;
	w->next_due += w->interval;
	if (in_window(w->ph, t)) {
		w->paced++;
		if (t - *due > 1000000)
			w->late++;
	}
	return true;
}

/* --rate: sends the requests that are due on the connections that wait for them. */
static void release_due(struct worker *w)
{
	while (w->free_len > 0 && w->next_due <= now_ns()) {
		struct conn *c = w->free_ring[w->free_head];

		w->free_head = (w->free_head + 1) % w->nconns;
		w->free_len--;
		c->queued = false;
		if (c->st != C_PACED)
			continue; /* failed and restarted meanwhile */
		c->st = C_SEND;
		drive(c, 0);
	}
}

/* Moves @c on as far as it goes without waiting. @events: what epoll reported (0 when
 * called directly). */
static void drive(struct conn *c, uint32_t events)
{
	struct worker *w = c->w;

	if (c->st != C_CONNECTING && c->st != C_IDLE && c->st != C_DONE) {
		if ((events & EPOLLOUT) && c->pend.len > 0 && flush(c) != 0) {
			conn_fail(c, "sending failed");
			return;
		}
		if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) && fill(c) != 0) {
			conn_fail(c, errno == ECONNRESET ? "connection reset by the server"
							 : "receiving failed");
			return;
		}
	}
	for (;;) {
		int n;

		switch (c->st) {
		case C_IDLE:
		case C_DONE:
			return;
		case C_CONNECTING: {
			int err = 0;
			socklen_t len = sizeof(err);

			if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
				return; /* still connecting */
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
				char text[128];

				snprintf(text, sizeof(text), "connect: %s",
					 strerror(err ? err : errno));
				conn_fail(c, text);
				return;
			}
			c->want_out = true; /* flush() drops EPOLLOUT once nothing waits */
			c->st = C_HANDSHAKE;
			events = 0;
			break;
		}
		case C_HANDSHAKE:
			n = SSL_connect(c->ssl);
			/* The client's last flight goes out with the request. */
			if (n != 1 && flush(c) != 0) {
				conn_fail(c, "sending failed");
				return;
			}
			if (n == 1) {
				int64_t t = now_ns();

				if (in_window(w->ph, t)) {
					w->handshakes++;
					if (SSL_session_reused(c->ssl))
						w->resumed++;
					hist_add(&w->handshake, (uint64_t)(t - c->t_conn));
				}
				if (tls_info[0] == '\0') {
					pthread_mutex_lock(&tls_info_lock);
					snprintf(tls_info, sizeof(tls_info), "%s %s",
						 SSL_get_version(c->ssl),
						 SSL_CIPHER_get_name(
							 SSL_get_current_cipher(c->ssl)));
					pthread_mutex_unlock(&tls_info_lock);
				}
				c->st = C_SEND;
				break;
			}
			switch (SSL_get_error(c->ssl, n)) {
			case SSL_ERROR_WANT_READ:
				if (c->eof)
					conn_fail(c,
						  "server closed the connection in the handshake");
				return;
			default:
				conn_fail(c, "TLS handshake failed");
				return;
			}
		case C_PACED:
			if (c->eof)
				conn_fail(c, "server closed a connection waiting for its next "
					     "request");
			return;
		case C_SEND:
			if (!c->prepared) {
				int64_t due = 0;

				if (w->interval > 0 && !pace(c, &due))
					return;
				if (!c->ticket && !take_ticket(w->ph)) {
					conn_finish(c);
					return;
				}
				c->ticket = true;
				if (prepare(c) != 0) {
					conn_fail(c, "building the request failed");
					return;
				}
				c->t_sent = now_ns();
				c->t_req = due != 0 ? due : c->t_sent;
			}
			if (opt.timeout_ms > 0)
				c->t_attempt = now_ns();
			n = SSL_write(c->ssl, c->out.data, (int)c->out.len);
			if (n <= 0 || flush(c) != 0) {
				conn_fail(c, "sending the request failed");
				return;
			}
			c->st = C_READ;
			break;
		case C_READ: {
			struct ttlv_error terr;
			size_t need, total;

			if (ttlv_frame_need(c->in.data, c->in.len, 0, &need, &total, &terr) != 0) {
				char text[256];

				snprintf(text, sizeof(text), "%s: bad response framing: %s",
					 op_names[c->op], terr.message);
				c->in.len = 0;
				conn_fail(c, text);
				return;
			}
			if (need == 0) {
				if (c->in.len != total) {
					conn_fail(c, "bytes after the response");
					return;
				}
				if (!on_response(c))
					return;
				break;
			}
			if (buf_reserve(&c->in, need) != 0) {
				conn_fail(c, "out of memory");
				return;
			}
			n = SSL_read(c->ssl, c->in.data + c->in.len, (int)need);
			if (n > 0) {
				c->in.len += (size_t)n;
				break;
			}
			switch (SSL_get_error(c->ssl, n)) {
			case SSL_ERROR_WANT_READ:
				if (flush(c) != 0) { /* e.g. a TLS 1.3 key update */
					conn_fail(c, "sending failed");
					return;
				}
				if (c->eof)
					conn_fail(c,
						  "server closed the connection before answering");
				return;
			case SSL_ERROR_ZERO_RETURN:
				conn_fail(c, "server closed the connection before answering");
				return;
			default:
				conn_fail(c, "reading the response failed");
				return;
			}
		}
		}
	}
}

/* Opens a new TCP + TLS connection for slot @c (its request ticket is taken first). */
static void conn_start(struct conn *c)
{
	struct worker *w = c->w;
	struct epoll_event ev;
	const struct endpoint *ep;
	int one = 1, rv;

	if (w->ph->end_ns != 0 && now_ns() >= w->ph->end_ns) {
		conn_finish(c);
		return;
	}
	if (!c->ticket) {
		if (!take_ticket(w->ph)) {
			conn_finish(c);
			return;
		}
		c->ticket = true;
	}
	c->t_conn = c->t_attempt = now_ns();
	ep = &endpoints[c->ep];
	c->fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, "socket() failed");
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ssl = SSL_new(client_ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		conn_fail(c, "SSL_new failed");
		return;
	}
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_app_data(c->ssl, c);
	if (opt.endpoints != NULL && set_verify_name(SSL_get0_param(c->ssl), ep->host) != 1) {
		conn_fail(c, "setting the name to verify failed");
		return;
	}
	SSL_set_connect_state(c->ssl);
	if (opt.resume && c->session != NULL)
		SSL_set_session(c->ssl, c->session);
	ev.events = EPOLLIN | EPOLLOUT; /* level-triggered; EPOLLOUT until connected */
	ev.data.ptr = c;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		conn_fail(c, "epoll_ctl failed");
		return;
	}
	c->want_out = true;
	rv = connect(c->fd, (struct sockaddr *)&ep->addr, ep->addr_len);
	if (rv != 0 && errno != EINPROGRESS) {
		char text[128];

		snprintf(text, sizeof(text), "connect: %s", strerror(errno));
		conn_fail(c, text);
		return;
	}
	c->st = rv == 0 ? C_HANDSHAKE : C_CONNECTING;
	drive(c, 0);
}

/* --timeout: fails the connects and requests that have taken too long. */
static void check_timeouts(struct worker *w, int64_t now)
{
	int64_t limit = (int64_t)opt.timeout_ms * 1000000;

	for (unsigned i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		if (c->st != C_CONNECTING && c->st != C_HANDSHAKE && c->st != C_READ)
			continue;
		if (now - c->t_attempt < limit)
			continue;
		if (c->st == C_READ) {
			char text[96];

			snprintf(text, sizeof(text), "%s: no response within %u ms",
				 op_names[c->op], opt.timeout_ms);
			conn_fail(c, text);
		} else {
			conn_fail(c, c->st == C_CONNECTING ? "connect timed out"
							   : "TLS handshake timed out");
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event events[64];

	for (unsigned i = 0; i < w->nconns; i++)
		conn_start(&w->conns[i]);
	while (w->live > 0) {
		int64_t now = now_ns();
		int timeout = 100, n;
		struct timespec ts;

		if (w->ph->end_ns != 0 && now >= w->ph->end_ns)
			break;
		if (w->idle > 0) {
			timeout = 1;
			for (unsigned i = 0; i < w->nconns; i++) {
				struct conn *c = &w->conns[i];

				if (c->st == C_IDLE && c->retry_at <= now) {
					w->idle--;
					conn_start(c);
				}
			}
		}
		if (w->next_due == INT64_MAX && now - w->started >= 1000000000)
			start_schedule(w, now); /* some connections are still not up */
		if (opt.timeout_ms > 0 && now >= w->next_timeout_check) {
			check_timeouts(w, now);
			w->next_timeout_check = now + 10000000;
		}
		if (w->ph->end_ns != 0) {
			int64_t left_ms = (w->ph->end_ns - now + 999999) / 1000000;

			if (left_ms < timeout)
				timeout = (int)(left_ms > 0 ? left_ms : 0);
		}
		if (opt.timeout_ms > 0 && timeout > 10)
			timeout = 10;
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000;
		if (w->free_len > 0) {
			/* --rate: wake when the next request is due, to the microsecond */
			int64_t wait = w->next_due - now;

			if (wait < 0)
				wait = 0;
			if (wait < (int64_t)timeout * 1000000) {
				ts.tv_sec = wait / 1000000000;
				ts.tv_nsec = (long)(wait % 1000000000);
			}
		}
		n = epoll_pwait2(w->ep, events, 64, &ts, NULL);
		for (int i = 0; i < n; i++)
			drive(events[i].data.ptr, events[i].events);
		if (w->interval > 0)
			release_due(w);
	}
	for (unsigned i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		if (c->st != C_DONE)
			conn_teardown(c, true);
		w->on_endpoint[c->ep]++;
	}
	return NULL;
}

/* ---- CPU use in the measured window ----------------------------------------------------- */

/* What the processes in opt.server_pids have used so far, all threads counted; each
 * figure -1 if it could not be read. */
struct server_usage {
	double cpu_seconds; /* /proc/PID/stat */
	double switches;    /* context switches, /proc/PID/task/N/status */
	double io_calls; /* read- and write-like system calls, /proc/PID/io (ended threads too) */
};

static void add(double *sum, double v)
{
	*sum = (*sum < 0 ? 0 : *sum) + v;
}

/* Adds to @sum the values of the "KEY: N" lines of @path named @a or @b. */
static void add_fields(const char *path, const char *a, const char *b, double *sum)
{
	char line[256];
	FILE *f = fopen(path, "r");
	size_t la = strlen(a), lb = strlen(b);

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if ((strncmp(line, a, la) == 0 && line[la] == ':') ||
		    (strncmp(line, b, lb) == 0 && line[lb] == ':'))
			add(sum, strtod(strchr(line, ':') + 1, NULL));
	fclose(f);
}

static void add_cpu_seconds(const char *pid, double *sum)
{
	char path[64], line[1024], *p;
	unsigned long utime, stime;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (p == NULL || (p = strrchr(line, ')')) == NULL)
		return;
	/* After the command: state (3) ... utime (14), stime (15). */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) ==
	    2)
		add(sum, (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK));
}

static void server_usage(struct server_usage *u)
{
	char *copy, *save = NULL;

	u->cpu_seconds = u->switches = u->io_calls = -1;
	if (opt.server_pids == NULL || (copy = strdup(opt.server_pids)) == NULL)
		return;
	for (char *pid = strtok_r(copy, ", ", &save); pid != NULL;
	     pid = strtok_r(NULL, ", ", &save)) {
		char path[300];
		struct dirent *e;
		DIR *tasks;

		add_cpu_seconds(pid, &u->cpu_seconds);
		snprintf(path, sizeof(path), "/proc/%s/io", pid);
		add_fields(path, "syscr", "syscw", &u->io_calls);
		snprintf(path, sizeof(path), "/proc/%s/task", pid);
		if ((tasks = opendir(path)) == NULL)
			continue;
		while ((e = readdir(tasks)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/status", pid, e->d_name);
			add_fields(path, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches",
				   &u->switches);
		}
		closedir(tasks);
	}
	free(copy);
}

static double own_cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(int64_t t)
{
	struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* The whole machine's busy and stolen CPU seconds so far, from /proc/stat. */
static void machine_cpu_seconds(double *busy, double *steal)
{
	unsigned long long v[8] = {0};
	long tck = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");

	*busy = *steal = 0;
	if (f == NULL)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		/* user nice system idle iowait irq softirq steal */
		*busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / (double)tck;
		*steal = (double)v[7] / (double)tck;
	}
	fclose(f);
}

/* CPU seconds at the window's start, then used in it. The machine's busy time minus the
 * server's and ours is what other processes took: a disturbed measurement. */
struct cpu_sample {
	double server, client, machine, steal;
	double switches, io_calls; /* the server's, as struct server_usage; -1 if unknown */
};

static void cpu_start(struct cpu_sample *cpu)
{
	struct server_usage u;

	server_usage(&u);
	cpu->server = u.cpu_seconds;
	cpu->switches = u.switches;
	cpu->io_calls = u.io_calls;
	cpu->client = own_cpu_seconds();
	machine_cpu_seconds(&cpu->machine, &cpu->steal);
}

/* -1 if either end is unknown. */
static double used(double start, double end)
{
	return start < 0 || end < 0 ? -1 : end - start;
}

static void cpu_end(struct cpu_sample *cpu)
{
	struct server_usage u;
	double machine, steal;

	machine_cpu_seconds(&machine, &steal);
	server_usage(&u);
	cpu->server = used(cpu->server, u.cpu_seconds);
	cpu->switches = used(cpu->switches, u.switches);
	cpu->io_calls = used(cpu->io_calls, u.io_calls);
	cpu->client = own_cpu_seconds() - cpu->client;
	cpu->machine = machine - cpu->machine;
	cpu->steal = steal - cpu->steal;
}

/* --timeline, --request-log: the start of the measured window, ns since the epoch. */
static int64_t window_unix_ns;

/* Runs @ph on its connections spread over the threads; adds the results into @total. */
static void run_phase(struct phase *ph, struct worker *total, struct cpu_sample *cpu)
{
	unsigned threads = opt.threads < ph->connections ? opt.threads : ph->connections;
	struct worker *workers = calloc(threads, sizeof(*workers));
	struct conn *conns = calloc(ph->connections, sizeof(*conns));
	int64_t start = now_ns();

	if (workers == NULL || conns == NULL) {
		fprintf(stderr, "kmip-bench: out of memory\n");
		exit(1);
	}
	ph->total_weight = 0;
	for (int i = 0; i < OP_COUNT; i++)
		ph->total_weight += ph->weights[i];
	for (unsigned i = 0; i < ph->connections; i++) {
		conns[i].fd = -1;
		conns[i].st = C_IDLE;
		conns[i].ep = opt.spread ? i % n_endpoints : 0;
		conns[i].slot = i;
	}
	for (unsigned t = 0; t < threads; t++) {
		struct worker *w = &workers[t];
		unsigned first = ph->connections * t / threads;
		unsigned last = ph->connections * (t + 1) / threads;

		w->ph = ph;
		w->conns = conns + first;
		w->nconns = last - first;
		w->live = w->nconns;
		w->rng = 0x9E3779B97F4A7C15ull * (t + 1) ^ (uint64_t)now_ns();
		arena_init(&w->arena, 16384, 0);
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		for (unsigned i = 0; i < w->nconns; i++)
			w->conns[i].w = w;
		if (ph->rate > 0) {
			/* each thread offers its connections' share of the rate; the threads'
			 * schedules are staggered so that together they are evenly spaced */
			w->interval = (int64_t)(1e9 * ph->connections / (ph->rate * w->nconns));
			w->stagger = w->interval * t / threads;
			w->next_due = INT64_MAX;
			w->started = start;
			w->free_ring = calloc(w->nconns, sizeof(*w->free_ring));
			if (w->free_ring == NULL) {
				fprintf(stderr, "kmip-bench: out of memory\n");
				exit(1);
			}
		}
	}
	for (unsigned t = 0; t < threads; t++)
		pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]);
	if (cpu != NULL) {
		sleep_until(ph->start_ns);
		if (opt.timeline != NULL || opt.request_log != NULL) {
			struct timespec rt;

			/* The measured window's start on the wall clock, for scripts that act at
			 * given times in it (failover drills). */
			clock_gettime(CLOCK_REALTIME, &rt);
			window_unix_ns = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec -
					 (now_ns() - ph->start_ns);
			printf("WINDOW_START unix_ms=%" PRId64 "\n", window_unix_ns / 1000000);
			fflush(stdout);
		}
		cpu_start(cpu);
		if (ph->end_ns != 0) {
			sleep_until(ph->end_ns);
			cpu_end(cpu);
		}
	}
	for (unsigned t = 0; t < threads; t++) {
		struct worker *w = &workers[t];

		pthread_join(w->thread, NULL);
		for (int i = 0; i < OP_COUNT; i++) {
			hist_merge(&total->lat[i], &w->lat[i]);
			total->ok[i] += w->ok[i];
			total->err[i] += w->err[i];
		}
		for (int i = 0; i <= OP_COUNT; i++)
			total->failovers[i] += w->failovers[i];
		for (int i = 0; i < OP_COUNT; i++)
			total->recovered[i] += w->recovered[i];
		for (unsigned i = 0; i < n_endpoints; i++)
			total->on_endpoint[i] += w->on_endpoint[i];
		if (w->tl_len > 0 && total->tl_len + w->tl_len > total->tl_cap) {
			size_t cap = total->tl_len + w->tl_len;
			struct tl_rec *p = realloc(total->tl, cap * sizeof(*p));

			if (p != NULL) {
				total->tl = p;
				total->tl_cap = cap;
			}
		}
		if (w->tl_len > 0 && total->tl_len + w->tl_len <= total->tl_cap) {
			memcpy(total->tl + total->tl_len, w->tl, w->tl_len * sizeof(*w->tl));
			total->tl_len += w->tl_len;
		}
		free(w->tl);
		hist_merge(&total->handshake, &w->handshake);
		total->handshakes += w->handshakes;
		total->resumed += w->resumed;
		total->conn_errors += w->conn_errors;
		total->activate_fallbacks += w->activate_fallbacks;
		total->late += w->late;
		hist_merge(&total->send_delay, &w->send_delay);
		total->paced += w->paced;
		free(w->free_ring);
		if (w->last_done > total->last_done)
			total->last_done = w->last_done;
		close(w->ep);
		arena_free(&w->arena);
	}
	if (cpu != NULL && ph->end_ns == 0)
		cpu_end(cpu);
	for (unsigned i = 0; i < ph->connections; i++) {
		SSL_SESSION_free(conns[i].session);
		buf_free(&conns[i].in);
		buf_free(&conns[i].out);
		buf_free(&conns[i].pend);
	}
	free(conns);
	free(workers);
}

/* ---- setup and report ----------------------------------------------------------------- */

static void setup_tls(void)
{
	char reason[256];

	client_ctx = SSL_CTX_new(TLS_client_method());
	if (client_ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(client_ctx, opt.tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(client_ctx, opt.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
	SSL_CTX_set_mode(client_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (opt.ciphers != NULL && SSL_CTX_set_cipher_list(client_ctx, opt.ciphers) != 1)
		goto fail;
	if (SSL_CTX_load_verify_locations(client_ctx, opt.ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(client_ctx, opt.cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(client_ctx, opt.key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(client_ctx) != 1)
		goto fail;
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
	/* With --endpoints every connection sets the name of its own endpoint. */
	if (opt.endpoints == NULL &&
	    set_verify_name(SSL_CTX_get0_param(client_ctx), endpoints[0].host) != 1)
		goto fail;
	if (opt.resume) {
		SSL_CTX_set_session_cache_mode(
			client_ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(client_ctx, new_session_cb);
	}
	return;
fail:
	ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
	fprintf(stderr, "kmip-bench: TLS set-up (CA %s, cert %s, key %s): %s\n", opt.ca, opt.cert,
		opt.key, reason);
	exit(1);
}

/* --host and --port, or --endpoints HOST:PORT,... ([v6]:PORT for IPv6), into endpoints[]. */
static void resolve(void)
{
	char *copy = NULL, *save = NULL, *tok;

	if (opt.endpoints == NULL) {
		snprintf(endpoints[0].host, sizeof(endpoints[0].host), "%s", opt.host);
		endpoints[0].port = opt.port;
		n_endpoints = 1;
	} else {
		copy = strdup(opt.endpoints);
		for (tok = strtok_r(copy, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			struct endpoint *ep = &endpoints[n_endpoints];
			char *colon = strrchr(tok, ':'), *end;
			unsigned long port;

			if (n_endpoints == MAX_ENDPOINTS) {
				fprintf(stderr, "kmip-bench: at most %d --endpoints\n",
					MAX_ENDPOINTS);
				exit(2);
			}
			if (colon == NULL || colon == tok) {
				fprintf(stderr,
					"kmip-bench: --endpoints wants HOST:PORT, not '%s'\n", tok);
				exit(2);
			}
			*colon = '\0';
			port = strtoul(colon + 1, &end, 10);
			if (*end != '\0' || port == 0 || port > 65535) {
				fprintf(stderr, "kmip-bench: bad port in --endpoints: '%s'\n",
					colon + 1);
				exit(2);
			}
			if (tok[0] == '[' && colon[-1] == ']') {
				colon[-1] = '\0';
				tok++;
			}
			snprintf(ep->host, sizeof(ep->host), "%s", tok);
			ep->port = (unsigned)port;
			n_endpoints++;
		}
		free(copy);
		if (n_endpoints == 0) {
			fprintf(stderr, "kmip-bench: --endpoints is empty\n");
			exit(2);
		}
	}
	for (unsigned i = 0; i < n_endpoints; i++) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
		char port[16];
		int rv;

		snprintf(port, sizeof(port), "%u", endpoints[i].port);
		rv = getaddrinfo(endpoints[i].host, port, &hints, &res);
		if (rv != 0) {
			fprintf(stderr, "kmip-bench: %s: %s\n", endpoints[i].host,
				gai_strerror(rv));
			exit(1);
		}
		memcpy(&endpoints[i].addr, res->ai_addr, res->ai_addrlen);
		endpoints[i].addr_len = res->ai_addrlen;
		freeaddrinfo(res);
	}
}

static void print_row(const char *name, uint64_t ok, uint64_t err, double secs,
		      const struct hist *h)
{
	printf("%-9s %10" PRIu64 " %7" PRIu64 " %11.1f %8.3f %8.3f %8.3f %8.3f %8.3f\n", name, ok,
	       err, (double)ok / secs, hist_pct_ms(h, 50), hist_pct_ms(h, 90), hist_pct_ms(h, 99),
	       hist_pct_ms(h, 99.9), (double)h->max / 1e6);
}

static const char *mode_name(void)
{
	if (opt.new_conn)
		return opt.per_conn > 1 ? (opt.resume ? "reconnect-resume" : "reconnect")
					: (opt.resume ? "new-connection-resume" : "new-connection");
	if (opt.per_conn > 0)
		return opt.resume ? "reconnect-resume" : "reconnect";
	return "persistent";
}

static void print_result(const char *tag, const char *op, uint64_t ok, uint64_t err, double secs,
			 const struct hist *h, const struct worker *r, const struct cpu_sample *cpu,
			 uint64_t failovers, uint64_t recovered)
{
	printf("%s name=%s op=%s ops_per_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
	       "p999_ms=%.3f max_ms=%.3f ok=%" PRIu64 " errors=%" PRIu64 " seconds=%.2f "
	       "connections=%u per_connection=%u mode=%s",
	       tag, opt.name, op, (double)ok / secs, hist_pct_ms(h, 50), hist_pct_ms(h, 90),
	       hist_pct_ms(h, 99), hist_pct_ms(h, 99.9), (double)h->max / 1e6, ok, err, secs,
	       opt.connections, opt.per_conn, mode_name());
	if (opt.endpoints != NULL)
		printf(" endpoints=%u failovers=%" PRIu64 " recovered=%" PRIu64, n_endpoints,
		       failovers, recovered);
	if (r != NULL && opt.rate > 0)
		printf(" rate=%.1f late_pct=%.2f send_delay_p99_ms=%.3f", opt.rate,
		       r->paced ? 100.0 * (double)r->late / (double)r->paced : 0.0,
		       hist_pct_ms(&r->send_delay, 99));
	if (r != NULL && r->handshakes > 0)
		printf(" handshakes_per_s=%.1f resumed_pct=%.1f handshake_p99_ms=%.3f",
		       (double)r->handshakes / secs,
		       100.0 * (double)r->resumed / (double)r->handshakes,
		       hist_pct_ms(&r->handshake, 99));
	if (cpu != NULL) {
		double other = cpu->machine - cpu->client - (cpu->server > 0 ? cpu->server : 0);

		if (cpu->server >= 0)
			printf(" server_cpu_pct=%.0f", 100.0 * cpu->server / secs);
		printf(" client_cpu_pct=%.0f", 100.0 * cpu->client / secs);
		if (cpu->server >= 0)
			printf(" other_cpu_pct=%.0f", 100.0 * (other > 0 ? other : 0) / secs);
		if (cpu->server >= 0 && ok > 0)
			printf(" server_cpu_us_per_op=%.0f", 1e6 * cpu->server / (double)ok);
		if (cpu->switches >= 0 && ok > 0)
			printf(" server_switches_per_op=%.2f", cpu->switches / (double)ok);
		if (cpu->io_calls >= 0 && ok > 0)
			printf(" server_io_calls_per_op=%.2f", cpu->io_calls / (double)ok);
		printf(" steal_pct=%.0f", 100.0 * cpu->steal / secs);
	}
	printf("\n");
}

static int tl_cmp(const void *a, const void *b)
{
	const struct tl_rec *x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t;
}

static void put_ms(FILE *f, double ms, bool any)
{
	if (any)
		fprintf(f, ",%.3f", ms);
	else
		fputs(",", f); /* no request in the interval: no latency */
}

/* --timeline: one CSV line per 100 ms of the measured window [start, end] (the last one
 * may be shorter; total->tl is sorted by time): the interval's start (ms into the window and on the
 * wall clock), what completed in it (ok, errors, failovers, latency percentiles of the ok
 * requests), in all and for each operation in the mix, and when the first ok request of each
 * operation completed in it (ms into the window). Returns the number of lines, or -1. */
static long write_timeline(const struct worker *total, int64_t start, int64_t end)
{
	const int64_t step = 100000000;
	struct hist *h = calloc(OP_COUNT + 1, sizeof(*h)); /* [OP_COUNT]: all */
	bool used[OP_COUNT];
	FILE *f = fopen(opt.timeline, "w");
	size_t r = 0;
	long lines = 0;

	if (f == NULL || h == NULL) {
		fprintf(stderr, "kmip-bench: cannot write %s: %s\n", opt.timeline, strerror(errno));
		if (f != NULL)
			fclose(f);
		free(h);
		return -1;
	}
	fputs("t_ms,unix_ms,ok,errors,failovers,p50_ms,p99_ms,max_ms", f);
	for (int i = 0; i < OP_COUNT; i++) {
		used[i] = opt.weights[i] > 0 || total->ok[i] > 0 || total->err[i] > 0;
		if (used[i])
			fprintf(f,
				",%s_ok,%s_errors,%s_failovers,%s_p50_ms,%s_p99_ms,%s_max_ms,%s_"
				"first_ok_ms",
				op_names[i], op_names[i], op_names[i], op_names[i], op_names[i],
				op_names[i], op_names[i]);
	}
	fputs("\n", f);
	for (int64_t t0 = start; t0 < end || (t0 == start && lines == 0); t0 += step) {
		int64_t t1 = t0 + step;
		uint64_t ok[OP_COUNT + 1] = {0}, err[OP_COUNT + 1] = {0}, fo[OP_COUNT + 1] = {0};
		int64_t first_ok[OP_COUNT];

		for (int i = 0; i <= OP_COUNT; i++) {
			h[i].count = h[i].max = 0;
			memset(h[i].buckets, 0, sizeof(h[i].buckets));
		}
		for (int i = 0; i < OP_COUNT; i++)
			first_ok[i] = -1;
		/* The window includes its end: the last interval takes what completed at it. */
		for (; r < total->tl_len && (total->tl[r].t < t1 || t1 >= end); r++) {
			const struct tl_rec *rec = &total->tl[r];

			switch (rec->kind) {
			case TL_OK:
				ok[rec->op]++;
				hist_add(&h[rec->op], rec->lat);
				hist_add(&h[OP_COUNT], rec->lat);
				if (first_ok[rec->op] < 0)
					first_ok[rec->op] = rec->t;
				break;
			case TL_ERR:
				err[rec->op]++;
				break;
			case TL_FAILOVER:
				fo[rec->op]++;
				break;
			}
		}
		{
			uint64_t all_ok = 0, all_err = 0, all_fo = 0;

			for (int i = 0; i <= OP_COUNT; i++) {
				all_ok += ok[i];
				all_err += err[i];
				all_fo += fo[i];
			}
			fprintf(f, "%.0f,%" PRId64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64,
				(double)(t0 - start) / 1e6,
				(window_unix_ns + (t0 - start)) / 1000000, all_ok, all_err, all_fo);
			put_ms(f, hist_pct_ms(&h[OP_COUNT], 50), all_ok > 0);
			put_ms(f, hist_pct_ms(&h[OP_COUNT], 99), all_ok > 0);
			put_ms(f, (double)h[OP_COUNT].max / 1e6, all_ok > 0);
		}
		for (int i = 0; i < OP_COUNT; i++) {
			if (!used[i])
				continue;
			fprintf(f, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64, ok[i], err[i], fo[i]);
			put_ms(f, hist_pct_ms(&h[i], 50), ok[i] > 0);
			put_ms(f, hist_pct_ms(&h[i], 99), ok[i] > 0);
			put_ms(f, (double)h[i].max / 1e6, ok[i] > 0);
			put_ms(f, (double)(first_ok[i] - start) / 1e6, first_ok[i] >= 0);
		}
		fputs("\n", f);
		lines++;
	}
	free(h);
	if (fclose(f) != 0) {
		fprintf(stderr, "kmip-bench: writing %s failed: %s\n", opt.timeline,
			strerror(errno));
		return -1;
	}
	return lines;
}

/* --request-log: every record, in time order (write_timeline sorted them). */
static int write_request_log(const struct worker *total, int64_t start)
{
	static const char *const kinds[] = {"ok", "error", "failover"};
	FILE *f = fopen(opt.request_log, "w");

	if (f == NULL) {
		fprintf(stderr, "kmip-bench: cannot write %s: %s\n", opt.request_log,
			strerror(errno));
		return -1;
	}
	fprintf(f, "# window start unix_ms=%" PRId64 "\n", window_unix_ns / 1000000);
	fputs("t_ms,start_ms,op,result,latency_ms,failovers,endpoint,slot\n", f);
	for (size_t i = 0; i < total->tl_len; i++) {
		const struct tl_rec *rec = &total->tl[i];

		fprintf(f, "%.3f,%.3f,%s,%s,", (double)(rec->t - start) / 1e6,
			(double)(rec->t_start - start) / 1e6,
			rec->op < OP_COUNT ? op_names[rec->op] : "connection", kinds[rec->kind]);
		if (rec->kind == TL_OK)
			fprintf(f, "%.3f", (double)rec->lat / 1e6);
		fprintf(f, ",%u,%u,%u\n", rec->retries, rec->ep, rec->slot);
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "kmip-bench: writing %s failed: %s\n", opt.request_log,
			strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct worker *total = calloc(1, sizeof(*total));
	struct hist *all = calloc(1, sizeof(*all));
	struct phase *ph = calloc(1, sizeof(*ph));
	uint64_t ok = 0, err = 0, failovers = 0, recovered = 0;
	bool timeline_failed = false;
	struct cpu_sample cpu = {0, 0, 0, 0, -1, -1};
	double secs;
	int64_t t0;

	if (total == NULL || all == NULL || ph == NULL)
		return 1;
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	resolve();
	setup_tls();

	/* Keys for get/getattr and for activate, made on persistent connections. */
	if (opt.weights[OP_GET] || opt.weights[OP_GETATTR] || opt.weights[OP_ACTIVATE]) {
		struct worker *prep = calloc(1, sizeof(*prep));
		bool want_get = opt.weights[OP_GET] || opt.weights[OP_GETATTR];

		for (int pass = 0; pass < 2 && prep != NULL; pass++) {
			struct phase *pp = calloc(1, sizeof(*pp));

			if (pass == 0 ? !want_get : !opt.weights[OP_ACTIVATE]) {
				free(pp);
				continue;
			}
			pp->weights[OP_CREATE] = 1;
			pp->connections = opt.connections < 16 ? opt.connections : 16;
			pp->limited = true;
			atomic_store(&pp->tickets, (long)opt.keys);
			pp->keys_to_get = pass == 0;
			pp->feed_activate = pass == 1;
			t0 = now_ns();
			run_phase(pp, prep, NULL);
			if (!opt.quiet)
				printf("prepared %zu keys to %s in %.2f s\n",
				       pass == 0 ? get_keys.len : activate_keys.len,
				       pass == 0 ? "read" : "activate",
				       (double)(now_ns() - t0) / 1e9);
			free(pp);
		}
		free(prep);
		if (want_get && get_keys.len == 0) {
			fprintf(stderr, "kmip-bench: no key could be created for get/getattr:\n");
			for (unsigned i = 0; i < error_samples.used; i++)
				fprintf(stderr, "  %s\n", error_samples.text[i]);
			return 1;
		}
		for (unsigned i = 0; i < error_samples.used; i++)
			fprintf(stderr, "while preparing keys: error (%ux): %s\n",
				error_samples.count[i], error_samples.text[i]);
		error_samples.used = 0;
		for (unsigned i = 0; i < failover_samples.used; i++)
			fprintf(stderr, "while preparing keys: failover (%ux) after: %s\n",
				failover_samples.count[i], failover_samples.text[i]);
		failover_samples.used = 0;
	}

	for (int i = 0; i < OP_COUNT; i++)
		ph->weights[i] = opt.weights[i];
	ph->connections = opt.connections;
	ph->per_conn = opt.per_conn;
	ph->new_conn = opt.new_conn;
	ph->record = true;
	ph->feed_activate = opt.weights[OP_ACTIVATE] > 0;
	ph->rate = opt.rate;
	t0 = now_ns();
	ph->start_ns = t0 + (int64_t)(opt.warmup * 1e9);
	if (opt.requests > 0) {
		ph->limited = true;
		atomic_store(&ph->tickets, opt.requests);
	} else {
		ph->end_ns = ph->start_ns + (int64_t)(opt.duration * 1e9);
	}
	run_phase(ph, total, &cpu);
	if (total->last_done < ph->start_ns)
		total->last_done = now_ns(); /* no request was answered: the run's end */
	secs = opt.requests > 0 ? (double)(total->last_done - ph->start_ns) / 1e9
				: (double)(ph->end_ns - ph->start_ns) / 1e9;
	if (secs <= 0)
		secs = 1e-9;

	for (int i = 0; i < OP_COUNT; i++) {
		hist_merge(all, &total->lat[i]);
		ok += total->ok[i];
		err += total->err[i];
		recovered += total->recovered[i];
	}
	err += total->conn_errors;
	for (int i = 0; i <= OP_COUNT; i++)
		failovers += total->failovers[i];
	if (total->tl_len > 0)
		qsort(total->tl, total->tl_len, sizeof(*total->tl), tl_cmp);
	if (opt.timeline != NULL) {
		long lines = write_timeline(total, ph->start_ns,
					    ph->end_ns != 0 ? ph->end_ns : total->last_done);

		if (lines < 0)
			timeline_failed = true;
		else if (!opt.quiet)
			printf("timeline: %s, %ld lines of 100 ms\n", opt.timeline, lines);
	}
	if (opt.request_log != NULL) {
		if (write_request_log(total, ph->start_ns) != 0)
			timeline_failed = true;
		else if (!opt.quiet)
			printf("request log: %s, %zu lines\n", opt.request_log, total->tl_len);
	}

	if (!opt.quiet) {
		char where[300];

		if (opt.endpoints != NULL)
			snprintf(where, sizeof(where), "endpoints %s%s", opt.endpoints,
				 opt.spread ? " (spread)" : "");
		else
			snprintf(where, sizeof(where), "%s:%u", opt.host, opt.port);
		printf("== kmip-bench %s: %s, %s, KMIP %u.%u, %u connections, %u threads, %s, "
		       "%.2f s measured (after %.1f s warm-up)\n",
		       opt.name, where, tls_info[0] ? tls_info : "no TLS session",
		       KMIP_VERSION_MAJOR(opt.kmip_version), KMIP_VERSION_MINOR(opt.kmip_version),
		       opt.connections, opt.threads,
		       opt.new_conn ? (opt.resume ? "new connection per request, resumed"
						  : "new connection per request, full handshakes")
				    : (opt.per_conn ? "reconnecting" : "persistent connections"),
		       secs, opt.warmup);
		printf("%-9s %10s %7s %11s %8s %8s %8s %8s %8s\n", "op", "ok", "errors", "ops/s",
		       "p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms");
		for (int i = 0; i < OP_COUNT; i++)
			if (opt.weights[i] || total->ok[i] || total->err[i])
				print_row(op_names[i], total->ok[i], total->err[i], secs,
					  &total->lat[i]);
		print_row("total", ok, err, secs, all);
		if (opt.new_conn)
			printf("latency counts from the connect: TCP + TLS handshake + request + "
			       "response\n");
		if (opt.rate > 0)
			printf("offered %.1f requests/s on a fixed schedule (from when the "
			       "connections were up); latency counts from when each was due; "
			       "%" PRIu64 " of %" PRIu64
			       " went out more than 1 ms late; from due to "
			       "sent: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
			       opt.rate, total->late, total->paced,
			       hist_pct_ms(&total->send_delay, 50),
			       hist_pct_ms(&total->send_delay, 99),
			       (double)total->send_delay.max / 1e6);
		if (total->handshakes > 0)
			printf("handshakes %" PRIu64
			       " (%.1f/s), resumed %.1f%%, handshake p50 %.3f "
			       "ms, p99 %.3f ms\n",
			       total->handshakes, (double)total->handshakes / secs,
			       100.0 * (double)total->resumed / (double)total->handshakes,
			       hist_pct_ms(&total->handshake, 50),
			       hist_pct_ms(&total->handshake, 99));
		printf("CPU in the window (100%% = one core of %ld): kmip-bench %.0f%%",
		       sysconf(_SC_NPROCESSORS_ONLN), 100.0 * cpu.client / secs);
		if (cpu.server >= 0)
			printf(", server (%s) %.0f%%", opt.server_pids, 100.0 * cpu.server / secs);
		printf(", whole machine %.0f%%, stolen by the hypervisor %.0f%%",
		       100.0 * cpu.machine / secs, 100.0 * cpu.steal / secs);
		printf("\n");
		if (total->conn_errors)
			printf("connection errors (no request in flight): %" PRIu64 "\n",
			       total->conn_errors);
		if (total->activate_fallbacks)
			printf("activate: %" PRIu64
			       " times no Pre-Active key was left, a create was "
			       "sent instead\n",
			       total->activate_fallbacks);
		if (opt.endpoints != NULL) {
			printf("failovers %" PRIu64 " (", failovers);
			for (int i = 0; i < OP_COUNT; i++)
				if (total->failovers[i])
					printf("%s %" PRIu64 ", ", op_names[i],
					       total->failovers[i]);
			printf("with no request in flight %" PRIu64 "); %" PRIu64
			       " requests succeeded after failing over (counted as ok, with their "
			       "whole latency)\n",
			       total->failovers[OP_COUNT], recovered);
			printf("connections at the end, per endpoint:");
			for (unsigned i = 0; i < n_endpoints; i++)
				printf(" %s:%u %" PRIu64, endpoints[i].host, endpoints[i].port,
				       total->on_endpoint[i]);
			printf("\n");
		}
	}
	for (unsigned i = 0; i < error_samples.used; i++)
		fprintf(stderr, "error (%ux): %s\n", error_samples.count[i], error_samples.text[i]);
	for (unsigned i = 0; i < failover_samples.used; i++)
		fprintf(stderr, "failover (%ux) after: %s\n", failover_samples.count[i],
			failover_samples.text[i]);
	for (int i = 0; i < OP_COUNT; i++)
		if (opt.weights[i] || total->ok[i] || total->err[i])
			print_result("RESULT_OP", op_names[i], total->ok[i], total->err[i], secs,
				     &total->lat[i], NULL, NULL, total->failovers[i],
				     total->recovered[i]);
	print_result("RESULT", "total", ok, err, secs, all, total, &cpu, failovers, recovered);
	if (opt.rate > 0 && (double)ok / secs < 0.97 * opt.rate)
		fprintf(stderr,
			"kmip-bench: warning: offered %.1f requests/s, %.1f/s were answered: the "
			"server (or this client) could not keep up\n",
			opt.rate, (double)ok / secs);
	if (opt.resume && total->handshakes > 0 && total->resumed * 2 < total->handshakes)
		fprintf(stderr,
			"kmip-bench: warning: --resume but only %" PRIu64 " of %" PRIu64
			" handshakes resumed a session\n",
			total->resumed, total->handshakes);
	SSL_CTX_free(client_ctx);
	free(total->tl);
	free(all);
	free(total);
	free(ph);
	if (timeline_failed)
		return 1;
	return err > 0 ? 3 : 0;
}
