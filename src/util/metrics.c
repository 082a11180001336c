/* Process-wide counters and histograms, rendered in the Prometheus text format (see
 * include/kmipd/metrics.h). Every update is one or two relaxed atomic additions. */
#include "kmipd/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"

#define OPS	  64 /* operation codes 0..63 (KMIP 1.4 ends at 0x2B) */
#define REASONS	  27 /* 0 success, 1..0x18, [25] General Failure, [26] any other */
#define GENERAL	  25
#define OTHER	  26
#define PROVIDERS 4
#define ROOT_OPS  4

/* Upper bounds of the latency buckets, in seconds; the last bucket is +Inf. */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				0.05,	0.1,   0.25,   0.5,   1,    2.5};
#define BUCKETS (sizeof(bounds) / sizeof(bounds[0]) + 1)

struct histogram {
	atomic_uint_fast64_t buckets[BUCKETS];
	atomic_uint_fast64_t sum_ns;
};

static struct {
	atomic_uint_fast64_t items[OPS][REASONS];
	struct histogram latency[OPS];
	atomic_uint_fast64_t handshakes[2]; /* failed, ok */
	atomic_int_fast64_t connections;
	atomic_uint_fast64_t forwarded[2]; /* failed, ok */
	atomic_uint_fast64_t entries_appended, writes_appended, checkpoints;
	atomic_uint_fast64_t root_key[PROVIDERS][ROOT_OPS][2]; /* provider, operation, failed/ok */
	atomic_uint_fast64_t admin[6];			       /* 1xx..5xx by hundreds; [0] other */
} m;

static const char *const providers[PROVIDERS] = {"local", "keyprotect", "hpcs", "other"};
static const char *const root_ops[ROOT_OPS] = {"wrap", "unwrap", "rewrap", "metadata"};

static unsigned reason_index(uint32_t reason)
{
	if (reason <= 0x18)
		return reason;
	return reason == KMIP_REASON_GENERAL_FAILURE ? GENERAL : OTHER;
}

static uint32_t reason_of(unsigned index)
{
	return index == GENERAL ? KMIP_REASON_GENERAL_FAILURE : index;
}

static void observe(struct histogram *h, double seconds)
{
	size_t i = 0;

	while (i < BUCKETS - 1 && seconds > bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, (uint_fast64_t)(seconds * 1e9), memory_order_relaxed);
}

void metrics_kmip_item(uint32_t operation, uint32_t reason, double seconds)
{
	unsigned op = operation < OPS ? operation : 0;

	atomic_fetch_add_explicit(&m.items[op][reason_index(reason)], 1, memory_order_relaxed);
	observe(&m.latency[op], seconds);
}

void metrics_tls_handshake(int ok)
{
	atomic_fetch_add_explicit(&m.handshakes[ok != 0], 1, memory_order_relaxed);
}

void metrics_connections(int delta)
{
	atomic_fetch_add_explicit(&m.connections, delta, memory_order_relaxed);
}

void metrics_forwarded(int ok)
{
	atomic_fetch_add_explicit(&m.forwarded[ok != 0], 1, memory_order_relaxed);
}

void metrics_appended(unsigned writes)
{
	atomic_fetch_add_explicit(&m.entries_appended, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m.writes_appended, writes, memory_order_relaxed);
}

void metrics_checkpoint(void)
{
	atomic_fetch_add_explicit(&m.checkpoints, 1, memory_order_relaxed);
}

void metrics_root_key(const char *provider, const char *operation, int ok)
{
	unsigned p = 0, op = 0;

	while (p < PROVIDERS - 1 && strcmp(providers[p], provider) != 0)
		p++;
	while (op < ROOT_OPS - 1 && strcmp(root_ops[op], operation) != 0)
		op++;
	atomic_fetch_add_explicit(&m.root_key[p][op][ok != 0], 1, memory_order_relaxed);
}

void metrics_admin_request(int status)
{
	unsigned i = status >= 100 && status < 600 ? (unsigned)status / 100 : 0;

	atomic_fetch_add_explicit(&m.admin[i], 1, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* The operation's name as a label value ("Create"), or its number. */
static const char *op_label(unsigned op, char *tmp, size_t cap)
{
	const char *name = kmip_enum_name(KMIP_FAMILY_OP, op);

	if (name != NULL)
		return name;
	snprintf(tmp, cap, "0x%02x", op);
	return tmp;
}

static int render_items(struct buf *out)
{
	char tmp[16];
	int rc = 0;

	rc |= buf_printf(out, "# HELP kmipd_kmip_requests_total KMIP batch items answered, by "
			      "operation and result (ok, or the Result Reason).\n"
			      "# TYPE kmipd_kmip_requests_total counter\n");
	for (unsigned op = 0; op < OPS; op++)
		for (unsigned r = 0; r < REASONS; r++) {
			uint64_t n = get(&m.items[op][r]);
			const char *reason =
				r == 0	     ? "ok"
				: r == OTHER ? "other"
					     : kmip_enum_name(KMIP_FAMILY_REASON, reason_of(r));

			if (n > 0)
				rc |= buf_printf(out,
						 "kmipd_kmip_requests_total{operation=\"%s\","
						 "result=\"%s\"} %llu\n",
						 op_label(op, tmp, sizeof(tmp)),
						 reason != NULL ? reason : "other",
						 (unsigned long long)n);
		}
	rc |= buf_printf(out, "# HELP kmipd_kmip_request_duration_seconds Time from a batch "
			      "item's start to its result, by operation.\n"
			      "# TYPE kmipd_kmip_request_duration_seconds histogram\n");
	for (unsigned op = 0; op < OPS; op++) {
		struct histogram *h = &m.latency[op];
		uint64_t cumulative = 0;

		for (size_t i = 0; i < BUCKETS; i++)
			cumulative += get(&h->buckets[i]);
		if (cumulative == 0)
			continue;
		cumulative = 0;
		for (size_t i = 0; i < BUCKETS; i++) {
			cumulative += get(&h->buckets[i]);
			if (i < BUCKETS - 1)
				rc |= buf_printf(out,
						 "kmipd_kmip_request_duration_seconds_bucket{"
						 "operation=\"%s\",le=\"%g\"} %llu\n",
						 op_label(op, tmp, sizeof(tmp)), bounds[i],
						 (unsigned long long)cumulative);
			else
				rc |= buf_printf(out,
						 "kmipd_kmip_request_duration_seconds_bucket{"
						 "operation=\"%s\",le=\"+Inf\"} %llu\n",
						 op_label(op, tmp, sizeof(tmp)),
						 (unsigned long long)cumulative);
		}
		rc |= buf_printf(out,
				 "kmipd_kmip_request_duration_seconds_sum{operation=\"%s\"} %.9f\n"
				 "kmipd_kmip_request_duration_seconds_count{operation=\"%s\"} "
				 "%llu\n",
				 op_label(op, tmp, sizeof(tmp)), (double)get(&h->sum_ns) / 1e9,
				 op_label(op, tmp, sizeof(tmp)), (unsigned long long)cumulative);
	}
	return rc;
}

int metrics_render(struct buf *out)
{
	int rc = render_items(out);

	rc |= buf_printf(out,
			 "# HELP kmipd_tls_handshakes_total TLS handshakes on the KMIP port.\n"
			 "# TYPE kmipd_tls_handshakes_total counter\n"
			 "kmipd_tls_handshakes_total{result=\"ok\"} %llu\n"
			 "kmipd_tls_handshakes_total{result=\"failed\"} %llu\n",
			 (unsigned long long)get(&m.handshakes[1]),
			 (unsigned long long)get(&m.handshakes[0]));
	rc |= buf_printf(out,
			 "# HELP kmipd_kmip_connections Open KMIP connections.\n"
			 "# TYPE kmipd_kmip_connections gauge\n"
			 "kmipd_kmip_connections %lld\n",
			 (long long)atomic_load_explicit(&m.connections, memory_order_relaxed));
	rc |= buf_printf(out,
			 "# HELP kmipd_forwarded_writes_total Writes this node forwarded to the "
			 "leader, by outcome.\n"
			 "# TYPE kmipd_forwarded_writes_total counter\n"
			 "kmipd_forwarded_writes_total{result=\"ok\"} %llu\n"
			 "kmipd_forwarded_writes_total{result=\"failed\"} %llu\n",
			 (unsigned long long)get(&m.forwarded[1]),
			 (unsigned long long)get(&m.forwarded[0]));
	rc |= buf_printf(
		out,
		"# HELP kmipd_raft_entries_appended_total Raft entries this node appended "
		"as the leader to carry writes.\n"
		"# TYPE kmipd_raft_entries_appended_total counter\n"
		"kmipd_raft_entries_appended_total %llu\n"
		"# HELP kmipd_raft_writes_appended_total Writes those entries carried (more "
		"than one an entry: writes batched).\n"
		"# TYPE kmipd_raft_writes_appended_total counter\n"
		"kmipd_raft_writes_appended_total %llu\n"
		"# HELP kmipd_raft_checkpoints_total Checkpoints of the key store this node took "
		"as its Raft snapshots.\n"
		"# TYPE kmipd_raft_checkpoints_total counter\n"
		"kmipd_raft_checkpoints_total %llu\n",
		(unsigned long long)get(&m.entries_appended),
		(unsigned long long)get(&m.writes_appended),
		(unsigned long long)get(&m.checkpoints));
	rc |= buf_printf(out, "# HELP kmipd_root_key_operations_total Root-key operations, by "
			      "provider, operation and outcome.\n"
			      "# TYPE kmipd_root_key_operations_total counter\n");
	for (unsigned p = 0; p < PROVIDERS; p++)
		for (unsigned op = 0; op < ROOT_OPS; op++)
			for (unsigned ok = 0; ok < 2; ok++)
				if ((p == 0 && op < 2) || get(&m.root_key[p][op][ok]) > 0)
					rc |= buf_printf(
						out,
						"kmipd_root_key_operations_total{provider=\"%s\","
						"operation=\"%s\",result=\"%s\"} %llu\n",
						providers[p], root_ops[op], ok ? "ok" : "failed",
						(unsigned long long)get(&m.root_key[p][op][ok]));
	rc |= buf_printf(out, "# HELP kmipd_admin_requests_total Admin API requests, by HTTP "
			      "status class.\n"
			      "# TYPE kmipd_admin_requests_total counter\n");
	for (unsigned i = 1; i < 6; i++)
		rc |= buf_printf(out, "kmipd_admin_requests_total{status=\"%uxx\"} %llu\n", i,
				 (unsigned long long)get(&m.admin[i]));
	return rc != 0 ? KMIPD_ENOMEM : 0;
}

int metrics_gauge(struct buf *out, const char *name, const char *help, const char *labels,
		  double value)
{
	int rc = 0;

	if (help != NULL)
		rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	if (labels != NULL && labels[0] != '\0')
		rc |= buf_printf(out, "%s{%s} %.17g\n", name, labels, value);
	else
		rc |= buf_printf(out, "%s %.17g\n", name, value);
	return rc != 0 ? KMIPD_ENOMEM : 0;
}

char *metrics_escape(const char *value, char *out, size_t cap)
{
	size_t o = 0;

	for (; *value != '\0' && o + 3 < cap; value++) {
		if (*value == '\\' || *value == '"') {
			out[o++] = '\\';
			out[o++] = *value;
		} else if (*value == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *value;
		}
	}
	if (cap > 0)
		out[o] = '\0';
	return out;
}
