/* A node's settings: one INI file (`kmipd --config FILE`), every setting also a flag
 * (`--section.key=value` or the short forms kmipd --help lists). Flags override the
 * file; the file overrides the defaults. */
#ifndef KMIPD_CONFIG_H
#define KMIPD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_PATH_MAX 1024

/* [keyprotect] and [hpcs]: one instance of each root-key service (provider.h). A tenant
 * names the provider and its root key when it is created. */
struct provider_config {
	char type[16];			    /* "keyprotect" or "hpcs"; set by config_defaults */
	char url[512];			    /* the key API's base URL; "" = not configured */
	char instance_id[128];		    /* the bluemix-instance header */
	char iam_url[512];		    /* the IAM token endpoint */
	char api_key_file[CONFIG_PATH_MAX]; /* a file holding the API key, mode 0600 */
	char api_key_env[128];		    /* or an environment variable holding it */
	char ca_file[CONFIG_PATH_MAX];	    /* PEM bundle to verify the services; "" = system */
	unsigned timeout_ms;		    /* one HTTP request */
	unsigned retries;		    /* after the first attempt */
	unsigned backoff_ms;		    /* before the first retry, then doubling */
	unsigned backoff_max_ms;
};

struct config {
	/* [server] */
	char listen_host[64];
	unsigned listen_port;
	unsigned workers;
	char data_dir[CONFIG_PATH_MAX];
	char log_level[16];
	size_t max_message;
	unsigned idle_timeout_ms;
	unsigned handshake_timeout_ms;
	unsigned max_connections;
	char credentials[CONFIG_PATH_MAX]; /* Username/Password per client; "" = none */
	char pki_dir[CONFIG_PATH_MAX];	   /* dev mode's PKI; default DATA_DIR/pki */
	char hosts[512]; /* dev mode: extra names for the server certificate, comma-separated */
	bool dev;
	/* [tls] */
	char cert[CONFIG_PATH_MAX];
	char key[CONFIG_PATH_MAX];
	char client_ca[CONFIG_PATH_MAX];
	char ca_key[CONFIG_PATH_MAX]; /* the cluster CA's key, for issuing (may be absent) */
	char ciphers[512];
	/* [root_key] */
	char root_key_file[CONFIG_PATH_MAX];
	/* How often each node asks the provider again for every cloud tenant's KEK: a root
	 * key disabled or deleted stops being served within this, and comes back as soon. */
	unsigned check_interval_ms;
	struct provider_config keyprotect, hpcs;
	/* [raft] */
	unsigned long long node_id;
	char raft_address[128];
	bool witness; /* raft.role = witness: votes and keeps the state, serves no KMIP */
	/* [cluster] */
	char cluster_id[65]; /* nodes of different clusters refuse each other; default "kmipd" */
	char members[2048];  /* the initial voters: "ID@HOST:PORT,..."; "" = this node alone */
	unsigned election_timeout_ms;
	unsigned heartbeat_ms;
	unsigned write_timeout_ms;   /* a write without quorum fails after this */
	unsigned batch_hold_ms;	     /* writes behind an entry in flight wait this long */
	unsigned snapshot_threshold; /* entries between snapshots */
	unsigned snapshot_trailing;  /* entries of log kept behind a snapshot */
	/* [store] */
	unsigned map_window_ms; /* store pages not read for this long are unmapped; 0 = never */
	/* The highest command level (command.h) this node lets the cluster use; the cluster
	 * uses the lowest of its members'. Set it to the old level on every node during an
	 * upgrade that may be rolled back. Default: COMMAND_LEVEL. */
	unsigned format_level;
	/* [admin] */
	char admin_listen[128]; /* HOST:PORT of the admin API; default server.listen's host:9696;
				 * "off": none */
	bool public_metrics;	/* /metrics without an admin certificate */
	/* [audit] */
	char audit_file[CONFIG_PATH_MAX]; /* JSON lines; "-" standard output; "" none */
};

/* Fills @config with the defaults. */
void config_defaults(struct config *config);

/* Sets one setting by its "section.key" name from text. 0, or KMIPD_EINVAL / KMIPD_ENOT_FOUND
 * with a sentence in @errmsg naming the setting and the problem. */
int config_set(struct config *config, const char *name, const char *value, char *errmsg,
	       size_t errlen);

/* Reads an INI file into @config. 0 or an error with a sentence naming the file and line. */
int config_load(struct config *config, const char *path, char *errmsg, size_t errlen);

/* Fills the paths left empty from data_dir (dev mode and defaults):
 * PKI_DIR/{server.pem,server-key.pem,ca.pem} with PKI_DIR = DIR/pki unless set,
 * DIR/root.key; and admin.listen from server.listen's host and port 9696. */
int config_finish(struct config *config, char *errmsg, size_t errlen);

#endif
