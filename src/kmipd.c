/* kmipd: the daemon. Reads its settings, opens the key store, loads the root key, starts
 * the raft loop and the KMIP workers, and stops them in order on SIGTERM or SIGINT:
 * stop accepting, finish the requests in flight, close Raft, close the store, exit 0. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "kmipd/admin.h"
#include "kmipd/audit.h"
#include "kmipd/command.h"
#include "kmipd/config.h"
#include "kmipd/credentials.h"
#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/keyring.h"
#include "kmipd/log.h"
#include "kmipd/net.h"
#include "kmipd/pki.h"
#include "kmipd/replication.h"
#include "kmipd/service.h"
#include "kmipd/store.h"
#include "kmipd/tls.h"
#include "kmipd/trust.h"

#define KMIPD_VERSION "0.1.0"
#define DEV_TENANT    "default"
#define DEV_CLIENT    "dev-client"

static const char usage[] =
	"usage: kmipd --config FILE [--SECTION.KEY=VALUE ...]\n"
	"       kmipd --dev --data-dir DIR [--listen HOST:PORT]\n"
	"\n"
	"Serves KMIP 1.0-1.4 over mutual TLS.\n"
	"\n"
	"  --config FILE       read settings from an INI file\n"
	"  --dev               development node: on first start make a CA, a server\n"
	"                      certificate for localhost, the tenant 'default' on a local\n"
	"                      root key and a client certificate for it (DIR/pki)\n"
	"  --data-dir DIR      where the key store, Raft log, root key and PKI live\n"
	"                      (server.data_dir)\n"
	"  --listen HOST:PORT  KMIP address (server.listen, default 127.0.0.1:5696)\n"
	"  --workers N         worker threads (server.workers, default: one per core)\n"
	"  --log-level LEVEL   debug, info, warn or error (server.log_level)\n"
	"  --SECTION.KEY=VALUE any setting of the config file, e.g. --tls.cert=FILE\n"
	"  --version           print the version\n"
	"\n"
	"Settings: server.{listen,workers,data_dir,log_level,max_message,idle_timeout_ms,\n"
	"handshake_timeout_ms,max_connections,credentials,pki_dir,hosts},\n"
	"tls.{cert,key,client_ca,ca_key,ciphers}, root_key.{file,check_interval_ms},\n"
	"keyprotect.{url,instance_id,iam_url,api_key_file,api_key_env,ca_file,timeout_ms,\n"
	"retries,backoff_ms,backoff_max_ms} and the same under hpcs., raft.{id,address,role},\n"
	"cluster.{id,members,election_timeout_ms,heartbeat_ms,write_timeout_ms,\n"
	"batch_hold_ms,snapshot_threshold,snapshot_trailing,format_level},\n"
	"store.map_window_ms, admin.{listen,public_metrics}, audit.file. The peer channel\n"
	"listens on the port after raft.address's. raft.role is voter\n"
	"(default) or witness (votes, keeps the state, serves no KMIP). audit.file gets one\n"
	"JSON line per KMIP operation and admin change ('-': standard output); SIGHUP\n"
	"reopens it.\n";

struct daemon {
	struct config config;
	uv_loop_t loop;
	uv_signal_t sigterm, sigint, sighup;
	struct mailbox replies;
	struct store *store;
	struct keyring *keyring;
	struct replication *replication;
	struct credentials *credentials;
	struct service service;
	SSL_CTX *tls;
	SSL_CTX *peer_server_tls, *peer_client_tls, *admin_tls;
	struct net *_Atomic net; /* read by the raft loop (revoke) */
	struct admin *admin;
	char admin_host[128];
	struct kmip_server_identity identity;
	int tenant_status; /* of the dev tenant's creation; 1 while waiting */
	bool stopping;	   /* SIGTERM or SIGINT arrived */
};

static int parse_args(struct config *config, int argc, char **argv)
{
	char errmsg[256];

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = NULL;
		char name[128];
		const char *eq;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strcmp(arg, "--version") == 0) {
			printf("kmipd %s\n", KMIPD_VERSION);
			exit(0);
		}
		if (strcmp(arg, "--dev") == 0) {
			config->dev = true;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0) {
			fprintf(stderr, "kmipd: unexpected argument '%s'\n%s", arg, usage);
			return 2;
		}
		eq = strchr(arg, '=');
		snprintf(name, sizeof(name), "%.*s",
			 eq ? (int)(eq - arg - 2) : (int)strlen(arg + 2), arg + 2);
		if (eq != NULL)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else {
			fprintf(stderr, "kmipd: --%s needs a value\n", name);
			return 2;
		}
		if (strcmp(name, "config") == 0) {
			if (config_load(config, value, errmsg, sizeof(errmsg)) != 0) {
				fprintf(stderr, "kmipd: %s\n", errmsg);
				return 1;
			}
			continue;
		}
		/* Short forms of the common settings. */
		if (strcmp(name, "data-dir") == 0)
			snprintf(name, sizeof(name), "server.data_dir");
		else if (strcmp(name, "listen") == 0)
			snprintf(name, sizeof(name), "server.listen");
		else if (strcmp(name, "workers") == 0)
			snprintf(name, sizeof(name), "server.workers");
		else if (strcmp(name, "log-level") == 0)
			snprintf(name, sizeof(name), "server.log_level");
		if (config_set(config, name, value, errmsg, sizeof(errmsg)) != 0) {
			fprintf(stderr, "kmipd: %s\n%s", errmsg, usage);
			return 2;
		}
	}
	return 0;
}

static void on_signal(uv_signal_t *signal, int signum)
{
	struct daemon *d = signal->data;

	log_info("kmipd: %s received: finishing requests in flight and stopping",
		 signum == SIGTERM ? "SIGTERM" : "SIGINT");
	uv_signal_stop(&d->sigterm);
	uv_signal_stop(&d->sigint);
	d->stopping = true;
	uv_stop(&d->loop);
}

/* SIGHUP: the audit file was rotated. */
static void on_hangup(uv_signal_t *signal, int signum)
{
	(void)signal;
	(void)signum;
	audit_reopen();
}

static void on_reply(struct mailbox *mailbox, struct mailbox_item *item)
{
	(void)mailbox;
	replication_deliver(item);
}

static void on_tenant_created(void *arg, const struct command_result *result)
{
	struct daemon *d = arg;

	d->tenant_status = result->status == KMIPD_EEXISTS ? 0 : result->status;
	uv_stop(&d->loop);
}

/* Dev mode: the tenant the dev client certificate names exists before anyone connects. */
static int ensure_dev_tenant(struct daemon *d)
{
	struct command cmd;
	struct buf wrapped = BUF_INIT, entry = BUF_INIT;
	int rv;

	if (keyring_check(d->keyring, DEV_TENANT, NULL, 0) == 0)
		return 0;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_TENANT_CREATE;
	cmd.time = service_now();
	snprintf(cmd.tenant, sizeof(cmd.tenant), DEV_TENANT);
	rv = crypto_request_id(cmd.request_id);
	if (rv == 0)
		rv = keyring_make(d->keyring, DEV_TENANT, 1, &wrapped);
	if (rv == 0) {
		snprintf(cmd.tenant_record.name, sizeof(cmd.tenant_record.name), DEV_TENANT);
		snprintf(cmd.tenant_record.provider, sizeof(cmd.tenant_record.provider), "local");
		cmd.tenant_record.root_key_id = "";
		cmd.tenant_record.wrapped_kek = wrapped.data;
		cmd.tenant_record.wrapped_kek_len = wrapped.len;
		cmd.tenant_record.created = cmd.time;
		rv = command_encode(&cmd, &entry);
	}
	/* In a cluster the other nodes may still be starting: retry while there is no
	 * quorum, for up to a minute. */
	for (int attempt = 0; rv == 0; attempt++) {
		rv = replication_submit(d->replication, &entry, &d->replies, on_tenant_created, d);
		if (rv != 0)
			break;
		d->tenant_status = 1;
		while (d->tenant_status == 1)
			uv_run(&d->loop, UV_RUN_ONCE);
		rv = d->tenant_status;
		if (d->stopping) {
			rv = KMIPD_ECANCELED;
			break;
		}
		if (rv != KMIPD_ENO_QUORUM && rv != KMIPD_EAGAIN)
			break;
		if (attempt == 12) {
			log_error("kmipd: no quorum for a minute; are the other nodes running?");
			break;
		}
		log_info("kmipd: waiting for the cluster to elect a leader");
		rv = 0;
	}
	buf_free(&wrapped);
	buf_free(&entry);
	if (rv == 0)
		log_info("kmipd: tenant '%s' is ready", DEV_TENANT);
	return rv;
}

static int make_dir(const char *path, char *errmsg, size_t errlen)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(errmsg, errlen, "creating %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* replication's revoke hook, on the raft loop: cut the clients off on this node. */
static void cut_off(void *arg, const char *tenant, const char *fingerprint)
{
	struct daemon *d = arg;
	struct net *net = atomic_load(&d->net);

	if (net != NULL)
		net_revoke(net, tenant, fingerprint);
}

/* The admin API's drain hook: the KMIP front end on this node. */
static void drain_node(void *arg, bool on)
{
	struct daemon *d = arg;
	struct net *net = atomic_load(&d->net);

	if (net != NULL)
		net_drain(net, on);
	log_info("this node is %s", on ? "drained: it accepts no KMIP connections"
				       : "undrained: it accepts KMIP connections again");
}

/* Splits admin.listen ("HOST:PORT", "[V6]:PORT") into @host and @port. */
static int admin_address(const char *listen, char *host, size_t cap, unsigned *port)
{
	const char *colon = strrchr(listen, ':');
	const char *start = listen;
	size_t len;
	char *end;
	unsigned long p;

	if (colon == NULL)
		return KMIPD_EINVAL;
	len = (size_t)(colon - listen);
	if (listen[0] == '[') {
		start++;
		if (len < 2 || listen[len - 1] != ']')
			return KMIPD_EINVAL;
		len -= 2;
	}
	p = strtoul(colon + 1, &end, 10);
	if (len == 0 || len >= cap || *end != '\0' || colon[1] == '\0' || p > 65535)
		return KMIPD_EINVAL;
	memcpy(host, start, len);
	host[len] = '\0';
	*port = (unsigned)p;
	return 0;
}

static int start_admin(struct daemon *d, const struct tls_config *tls, char *errmsg, size_t errlen)
{
	struct config *c = &d->config;
	char *host = d->admin_host;
	unsigned port;

	if (strcmp(c->admin_listen, "off") == 0)
		return 0;
	if (admin_address(c->admin_listen, host, sizeof(d->admin_host), &port) != 0) {
		snprintf(errmsg, errlen, "admin.listen: '%s' is not HOST:PORT or 'off'",
			 c->admin_listen);
		return KMIPD_EINVAL;
	}
	d->admin_tls = tls_server_context(tls, errmsg, errlen);
	if (d->admin_tls == NULL)
		return KMIPD_ECRYPTO;
	/* A certificate is asked for, not required: /healthz and /readyz answer anyone. */
	SSL_CTX_set_verify(d->admin_tls, SSL_VERIFY_PEER, NULL);
	struct admin_config admin_config = {
		.host = host,
		.port = port,
		.tls = d->admin_tls,
		.store = d->store,
		.keyring = d->keyring,
		.replication = d->replication,
		.node_id = c->node_id,
		.cluster_id = c->cluster_id,
		.version = KMIPD_VERSION,
		.public_metrics = c->public_metrics,
		.ca_cert = c->client_ca,
		.ca_key = c->ca_key,
		.server_cert = c->cert,
		.drain = drain_node,
		.drain_arg = d,
		.keyprotect = &c->keyprotect,
		.hpcs = &c->hpcs,
	};
	return admin_start(&d->admin, &admin_config, errmsg, errlen);
}

static int start(struct daemon *d, char *errmsg, size_t errlen)
{
	struct config *c = &d->config;
	struct crypto_key *root = crypto_key_new();
	char path[CONFIG_PATH_MAX + 16];
	int rv;

	if (root == NULL)
		return KMIPD_ENOMEM;
	rv = audit_open(c->audit_file, c->node_id, errmsg, errlen);
	if (rv == 0)
		rv = make_dir(c->data_dir, errmsg, errlen);
	if (rv == 0 && c->dev) {
		rv = pki_dev_init(c->pki_dir, c->hosts[0] ? c->hosts : NULL, DEV_TENANT, DEV_CLIENT,
				  errmsg, errlen);
	}
	if (rv == 0)
		rv = crypto_root_key_load(c->root_key_file, c->dev, root, errmsg, errlen);
	if (rv == 0) {
		d->keyring = keyring_new(root);
		rv = d->keyring ? 0 : KMIPD_ENOMEM;
	}
	crypto_key_free(root);
	if (rv != 0)
		return rv;

	snprintf(path, sizeof(path), "%s/store", c->data_dir);
	struct store_config store_config = {.dir = path, .durable = false, .lazy = true};
	rv = store_open(&d->store, &store_config, errmsg, errlen);
	if (rv != 0)
		return rv;
	if (store_discarded(d->store))
		log_warn("the key store in %s was not flushed before the machine stopped and may "
			 "be torn: set aside as data.mdb.unflushed; refilling it from the Raft "
			 "snapshot and log",
			 path);

	struct tls_config tls_config = {
		.cert_file = c->cert,
		.key_file = c->key,
		.client_ca = c->client_ca,
		.ciphers = c->ciphers[0] ? c->ciphers : NULL,
	};
	d->tls = tls_server_context(&tls_config, errmsg, errlen);
	if (d->tls == NULL)
		return KMIPD_ECRYPTO;
	/* KMIP clients may also be certificates added through the admin API. */
	if (trust_install(d->tls, d->store) != 0) {
		snprintf(errmsg, errlen, "installing the client certificate check failed");
		return KMIPD_ECRYPTO;
	}
	/* The peer channel presents and verifies node certificates (the server certificate
	 * carries the node URI) with the same cluster CA. */
	d->peer_server_tls = tls_server_context(&tls_config, errmsg, errlen);
	if (d->peer_server_tls == NULL)
		return KMIPD_ECRYPTO;
	d->peer_client_tls = tls_client_context(&tls_config, errmsg, errlen);
	if (d->peer_client_tls == NULL)
		return KMIPD_ECRYPTO;

	snprintf(path, sizeof(path), "%s/raft", c->data_dir);
	struct replication_config repl_config = {
		.dir = path,
		.id = c->node_id,
		.address = c->raft_address,
		.store = d->store,
		.keyring = d->keyring,
		.members = c->members,
		.election_timeout_ms = c->election_timeout_ms,
		.heartbeat_ms = c->heartbeat_ms,
		.write_timeout_ms = c->write_timeout_ms,
		.batch_hold_ms = c->batch_hold_ms,
		.snapshot_threshold = c->snapshot_threshold,
		.snapshot_trailing = c->snapshot_trailing,
		.map_window_ms = c->map_window_ms,
		.peer_server_tls = d->peer_server_tls,
		.peer_client_tls = d->peer_client_tls,
		.cluster_id = c->cluster_id,
		.witness = c->witness,
		.revoke = cut_off,
		.revoke_arg = d,
		.keyprotect = &c->keyprotect,
		.hpcs = &c->hpcs,
		.check_interval_ms = c->check_interval_ms,
		.format_level = c->format_level,
	};
	rv = replication_start(&d->replication, &repl_config, errmsg, errlen);
	if (rv != 0)
		return rv;
	rv = start_admin(d, &tls_config, errmsg, errlen);
	if (rv != 0)
		return rv;

	if (c->credentials[0] != '\0') {
		rv = credentials_load(c->credentials, &d->credentials, errmsg, errlen);
		if (rv != 0)
			return rv;
	}
	d->service.credentials = d->credentials;
	d->service.store = d->store;
	d->service.keyring = d->keyring;
	d->service.propose = replication_propose;
	d->service.sync = replication_sync;
	d->service.propose_arg = d->replication;

	if (c->witness)
		return 0; /* votes and keeps the state; serves no KMIP */
	if (c->dev) {
		rv = ensure_dev_tenant(d);
		if (rv != 0) {
			snprintf(errmsg, errlen, "creating the dev tenant: %s", kmipd_strerror(rv));
			return rv;
		}
	}

	d->identity.vendor = "kmipd " KMIPD_VERSION;
	struct net_config net_config = {
		.host = c->listen_host,
		.port = c->listen_port,
		.workers = c->workers,
		.tls = d->tls,
		.service = &d->service,
		.replication = d->replication,
		.identity = &d->identity,
		.max_message = c->max_message,
		.handshake_timeout_ms = c->handshake_timeout_ms,
		.idle_timeout_ms = c->idle_timeout_ms,
		.max_connections = c->max_connections,
	};
	struct net *net;

	rv = net_start(&net, &net_config, errmsg, errlen);
	if (rv == 0)
		atomic_store(&d->net, net);
	return rv;
}

static void stop(struct daemon *d)
{
	struct net *net = atomic_exchange(&d->net, NULL);

	net_stop(net);
	admin_close(d->admin); /* no request reaches the raft loop after this */
	replication_stop(d->replication);
	d->replication = NULL;
	admin_stop(d->admin); /* after the raft loop has answered its changes */
	d->admin = NULL;
	if (d->store != NULL)
		store_close(d->store);
	keyring_free(d->keyring);
	credentials_free(d->credentials);
	SSL_CTX_free(d->tls);
	SSL_CTX_free(d->peer_server_tls);
	SSL_CTX_free(d->peer_client_tls);
	SSL_CTX_free(d->admin_tls);
}

/* Stops everything start() started, then closes the main loop's own handles and the
 * loop. */
static void shut_down(struct daemon *d)
{
	stop(d);
	mailbox_close(&d->replies, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	audit_close();
	uv_loop_close(&d->loop);
}

static void print_admin(struct daemon *d)
{
	if (d->admin != NULL)
		printf("  admin API       https://%s%s%s:%u\n",
		       strchr(d->admin_host, ':') ? "[" : "", d->admin_host,
		       strchr(d->admin_host, ':') ? "]" : "", admin_port(d->admin));
}

static void print_ready(struct daemon *d)
{
	struct config *c = &d->config;

	if (c->witness) {
		printf("kmipd %s witness node %llu of cluster '%s' (Raft on %s); serves no "
		       "KMIP\n",
		       KMIPD_VERSION, c->node_id, c->cluster_id, c->raft_address);
		print_admin(d);
		printf("ready\n");
		fflush(stdout);
		return;
	}
	printf("kmipd %s listening on %s:%u (KMIP over mutual TLS)\n", KMIPD_VERSION,
	       c->listen_host, net_port(d->net));
	print_admin(d);
	printf("  data directory  %s\n", c->data_dir);
	printf("  server cert     %s\n", c->cert);
	printf("  client CA       %s\n", c->client_ca);
	if (c->dev) {
		printf("  dev client      %s/client.pem, key %s/client-key.pem (tenant '%s')\n",
		       c->pki_dir, c->pki_dir, DEV_TENANT);
		printf("  CA for clients  %s/ca.pem\n", c->pki_dir);
		printf("  dev admin       %s/admin.pem, key %s/admin-key.pem (for kmipctl)\n",
		       c->pki_dir, c->pki_dir);
	}
	printf("ready\n");
	fflush(stdout);
}

static void no_work(uv_work_t *req)
{
	(void)req;
}

/* Starts libuv's thread pool here, under a name of its own: its threads take the name of
 * the thread that first queues work, which would otherwise be the raft thread's, and
 * `top -H` would show five of those. */
static void start_thread_pool(void)
{
	uv_loop_t loop;
	uv_work_t req;

	pthread_setname_np(pthread_self(), "kmipd-uvpool");
	if (uv_loop_init(&loop) == 0) {
		if (uv_queue_work(&loop, &req, no_work, NULL) == 0)
			uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
	}
	pthread_setname_np(pthread_self(), "kmipd");
}

int main(int argc, char **argv)
{
	struct daemon d;
	enum log_level level;
	char errmsg[512];
	int rv;

	memset(&d, 0, sizeof(d));
	config_defaults(&d.config);
	rv = parse_args(&d.config, argc, argv);
	if (rv != 0)
		return rv;
	if (log_level_parse(d.config.log_level, &level) != 0) {
		fprintf(stderr, "kmipd: unknown log level '%s'\n", d.config.log_level);
		return 2;
	}
	log_set_level(level);
	if (config_finish(&d.config, errmsg, sizeof(errmsg)) != 0) {
		fprintf(stderr, "kmipd: %s\n%s", errmsg, usage);
		return 2;
	}
	if (!d.config.dev)
		crypto_disable_core_dumps();
	signal(SIGPIPE, SIG_IGN);
	start_thread_pool();

	uv_loop_init(&d.loop);
	mailbox_init(&d.replies, &d.loop, on_reply, &d);
	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	uv_signal_init(&d.loop, &d.sighup);
	uv_signal_start(&d.sighup, on_hangup, SIGHUP);

	rv = start(&d, errmsg, sizeof(errmsg));
	if (rv != 0 && d.stopping) {
		/* Asked to stop while starting (waiting for a quorum): not a failure. */
		shut_down(&d);
		log_info("kmipd: stopped before it was ready");
		return 0;
	}
	if (rv != 0) {
		log_error("kmipd: %s", errmsg);
		shut_down(&d);
		return 1;
	}
	print_ready(&d);
	if (!d.stopping)
		uv_run(&d.loop, UV_RUN_DEFAULT);

	shut_down(&d);
	log_info("kmipd: stopped");
	return 0;
}
