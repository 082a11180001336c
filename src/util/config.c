/* Settings from the defaults, an INI file and flags; see config.h. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "kmipd/command.h"
#include "kmipd/config.h"
#include "kmipd/error.h"

static void provider_defaults(struct provider_config *p, const char *type)
{
	snprintf(p->type, sizeof(p->type), "%s", type);
	snprintf(p->iam_url, sizeof(p->iam_url), "https://iam.cloud.ibm.com/identity/token");
	p->timeout_ms = 10000;
	p->retries = 4;
	p->backoff_ms = 1000;
	p->backoff_max_ms = 30000;
}

void config_defaults(struct config *config)
{
	memset(config, 0, sizeof(*config));
	snprintf(config->listen_host, sizeof(config->listen_host), "127.0.0.1");
	config->listen_port = 5696;
	snprintf(config->log_level, sizeof(config->log_level), "info");
	config->max_message = 1024 * 1024;
	config->idle_timeout_ms = 120000;
	config->handshake_timeout_ms = 10000;
	config->max_connections = 10000;
	config->node_id = 1;
	snprintf(config->raft_address, sizeof(config->raft_address), "127.0.0.1:7696");
	snprintf(config->cluster_id, sizeof(config->cluster_id), "kmipd");
	config->election_timeout_ms = 1000;
	config->heartbeat_ms = 25;
	config->write_timeout_ms = 5000;
	config->batch_hold_ms = 2;
	config->snapshot_threshold = 128;
	config->snapshot_trailing = 8192;
	config->map_window_ms = 0;
	config->format_level = COMMAND_LEVEL;
	config->check_interval_ms = 300000;
	provider_defaults(&config->keyprotect, "keyprotect");
	provider_defaults(&config->hpcs, "hpcs");
}

static int parse_unsigned(const char *value, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (value[0] == '-' || value[0] == '\0')
		return KMIPD_EINVAL;
	v = strtoull(value, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return KMIPD_EINVAL;
	*out = v;
	return 0;
}

static int set_text(char *field, size_t size, const char *value)
{
	if (strlen(value) >= size)
		return KMIPD_ERANGE;
	memcpy(field, value, strlen(value) + 1);
	return 0;
}

/* host:port, [v6]:port or host alone. */
static int set_listen(struct config *config, const char *value)
{
	const char *colon = strrchr(value, ':');
	unsigned long long port;
	size_t host_len;

	if (value[0] == '[') {
		const char *close = strchr(value, ']');

		if (close == NULL)
			return KMIPD_EINVAL;
		host_len = (size_t)(close - value - 1);
		value++;
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		host_len = colon ? (size_t)(colon - value) : strlen(value);
	}
	if (host_len == 0 || host_len >= sizeof(config->listen_host))
		return KMIPD_EINVAL;
	if (colon != NULL) {
		if (parse_unsigned(colon + 1, 65535, &port) != 0)
			return KMIPD_EINVAL;
		config->listen_port = (unsigned)port;
	}
	memcpy(config->listen_host, value, host_len);
	config->listen_host[host_len] = '\0';
	return 0;
}

#define TEXT(name_, field)                                                \
	if (strcmp(name, name_) == 0)                                     \
	return set_text(config->field, sizeof(config->field), value) == 0 \
		       ? 0                                                \
		       : (snprintf(errmsg, errlen, "%s: value is too long", name), KMIPD_ERANGE)
#define NUMBER(name_, field, max)                                                                 \
	if (strcmp(name, name_) == 0) {                                                           \
		if (parse_unsigned(value, max, &number) != 0) {                                   \
			snprintf(errmsg, errlen, "%s: '%s' is not a number from 0 to %llu", name, \
				 value, (unsigned long long)(max));                               \
			return KMIPD_EINVAL;                                                      \
		}                                                                                 \
		config->field = number;                                                           \
		return 0;                                                                         \
	}

static bool valid_cluster_id(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)id[i]) && strchr("._-", id[i]) == NULL)
			return false;
	return true;
}

/* One [keyprotect] or [hpcs] setting: @key is @name without its section. */
static int provider_set(struct provider_config *p, const char *name, const char *key,
			const char *value, char *errmsg, size_t errlen)
{
	struct {
		const char *key;
		char *text;
		size_t size;
		unsigned *number;
		unsigned long long max;
	} fields[] = {
		{"url", p->url, sizeof(p->url), NULL, 0},
		{"instance_id", p->instance_id, sizeof(p->instance_id), NULL, 0},
		{"iam_url", p->iam_url, sizeof(p->iam_url), NULL, 0},
		{"api_key_file", p->api_key_file, sizeof(p->api_key_file), NULL, 0},
		{"api_key_env", p->api_key_env, sizeof(p->api_key_env), NULL, 0},
		{"ca_file", p->ca_file, sizeof(p->ca_file), NULL, 0},
		{"timeout_ms", NULL, 0, &p->timeout_ms, 600000},
		{"retries", NULL, 0, &p->retries, 20},
		{"backoff_ms", NULL, 0, &p->backoff_ms, 600000},
		{"backoff_max_ms", NULL, 0, &p->backoff_max_ms, 3600000},
	};
	unsigned long long number;

	if (strcmp(key, "api_key") == 0) {
		snprintf(errmsg, errlen,
			 "%s: an API key is never taken from the configuration or the command "
			 "line; name a file (api_key_file) or an environment variable "
			 "(api_key_env) holding it",
			 name);
		return KMIPD_EINVAL;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(key, fields[i].key) != 0)
			continue;
		if (fields[i].text != NULL) {
			if (set_text(fields[i].text, fields[i].size, value) == 0)
				return 0;
			snprintf(errmsg, errlen, "%s: value is too long", name);
			return KMIPD_ERANGE;
		}
		if (parse_unsigned(value, fields[i].max, &number) != 0) {
			snprintf(errmsg, errlen, "%s: '%s' is not a number from 0 to %llu", name,
				 value, fields[i].max);
			return KMIPD_EINVAL;
		}
		*fields[i].number = (unsigned)number;
		return 0;
	}
	snprintf(errmsg, errlen, "unknown setting '%s'", name);
	return KMIPD_ENOT_FOUND;
}

int config_set(struct config *config, const char *name, const char *value, char *errmsg,
	       size_t errlen)
{
	unsigned long long number;

	if (strcmp(name, "server.listen") == 0) {
		if (set_listen(config, value) != 0) {
			snprintf(errmsg, errlen, "server.listen: '%s' is not HOST:PORT", value);
			return KMIPD_EINVAL;
		}
		return 0;
	}
	NUMBER("server.workers", workers, 256)
	TEXT("server.data_dir", data_dir);
	TEXT("server.log_level", log_level);
	NUMBER("server.max_message", max_message, 64u << 20)
	NUMBER("server.idle_timeout_ms", idle_timeout_ms, 86400000)
	NUMBER("server.handshake_timeout_ms", handshake_timeout_ms, 600000)
	NUMBER("server.max_connections", max_connections, 1000000)
	TEXT("server.credentials", credentials);
	TEXT("server.pki_dir", pki_dir);
	TEXT("server.hosts", hosts);
	TEXT("tls.cert", cert);
	TEXT("tls.key", key);
	TEXT("tls.client_ca", client_ca);
	TEXT("tls.ca_key", ca_key);
	TEXT("tls.ciphers", ciphers);
	TEXT("root_key.file", root_key_file);
	NUMBER("root_key.check_interval_ms", check_interval_ms, 86400000)
	if (strncmp(name, "keyprotect.", 11) == 0)
		return provider_set(&config->keyprotect, name, name + 11, value, errmsg, errlen);
	if (strncmp(name, "hpcs.", 5) == 0)
		return provider_set(&config->hpcs, name, name + 5, value, errmsg, errlen);
	NUMBER("raft.id", node_id, ULLONG_MAX)
	TEXT("raft.address", raft_address);
	if (strcmp(name, "raft.role") == 0) {
		if (strcmp(value, "voter") != 0 && strcmp(value, "witness") != 0) {
			snprintf(errmsg, errlen, "raft.role: '%s' is neither voter nor witness",
				 value);
			return KMIPD_EINVAL;
		}
		config->witness = strcmp(value, "witness") == 0;
		return 0;
	}
	if (strcmp(name, "cluster.id") == 0) {
		if (!valid_cluster_id(value)) {
			snprintf(errmsg, errlen,
				 "cluster.id: '%s' is not 1-64 characters of A-Z a-z 0-9 . _ -",
				 value);
			return KMIPD_EINVAL;
		}
		snprintf(config->cluster_id, sizeof(config->cluster_id), "%s", value);
		return 0;
	}
	TEXT("cluster.members", members);
	NUMBER("cluster.election_timeout_ms", election_timeout_ms, 60000)
	NUMBER("cluster.heartbeat_ms", heartbeat_ms, 10000)
	NUMBER("cluster.write_timeout_ms", write_timeout_ms, 600000)
	NUMBER("cluster.batch_hold_ms", batch_hold_ms, 1000)
	NUMBER("cluster.snapshot_threshold", snapshot_threshold, 100000000)
	NUMBER("cluster.snapshot_trailing", snapshot_trailing, 100000000)
	NUMBER("store.map_window_ms", map_window_ms, 3600000)
	if (strcmp(name, "cluster.format_level") == 0) {
		if (parse_unsigned(value, COMMAND_LEVEL, &number) != 0 || number < 2) {
			snprintf(errmsg, errlen,
				 "cluster.format_level: '%s' is not a level from 2 to %d", value,
				 COMMAND_LEVEL);
			return KMIPD_EINVAL;
		}
		config->format_level = (unsigned)number;
		return 0;
	}
	TEXT("admin.listen", admin_listen);
	if (strcmp(name, "admin.public_metrics") == 0) {
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
			snprintf(errmsg, errlen,
				 "admin.public_metrics: '%s' is neither true nor false", value);
			return KMIPD_EINVAL;
		}
		config->public_metrics = strcmp(value, "true") == 0;
		return 0;
	}
	TEXT("audit.file", audit_file);
	snprintf(errmsg, errlen, "unknown setting '%s'", name);
	return KMIPD_ENOT_FOUND;
}

struct load_state {
	struct config *config;
	char *errmsg;
	size_t errlen;
	int rv;
};

static int on_ini(void *user, const char *section, const char *key, const char *value)
{
	struct load_state *state = user;
	char name[128];

	snprintf(name, sizeof(name), "%s.%s", section, key);
	state->rv = config_set(state->config, name, value, state->errmsg, state->errlen);
	return state->rv == 0;
}

int config_load(struct config *config, const char *path, char *errmsg, size_t errlen)
{
	struct load_state state = {config, errmsg, errlen, 0};
	char detail[256];
	int line = ini_parse(path, on_ini, &state);

	if (line == -1) {
		snprintf(errmsg, errlen, "config file %s: %s", path, strerror(errno));
		return KMIPD_EIO;
	}
	if (line != 0) {
		snprintf(detail, sizeof(detail), "%s", state.rv ? errmsg : "syntax error");
		snprintf(errmsg, errlen, "config file %s, line %d: %s", path, line, detail);
		return KMIPD_EINVAL;
	}
	return 0;
}

static int default_path(char *field, const char *dir, const char *name)
{
	if (field[0] != '\0')
		return 0;
	if ((size_t)snprintf(field, CONFIG_PATH_MAX, "%s/%s", dir, name) >= CONFIG_PATH_MAX)
		return KMIPD_ERANGE;
	return 0;
}

int config_finish(struct config *config, char *errmsg, size_t errlen)
{
	const char *dir = config->data_dir;

	if (dir[0] == '\0') {
		snprintf(errmsg, errlen, "no data directory: set server.data_dir or --data-dir");
		return KMIPD_EINVAL;
	}
	if (default_path(config->pki_dir, dir, "pki") != 0 ||
	    default_path(config->cert, config->pki_dir, "server.pem") != 0 ||
	    default_path(config->key, config->pki_dir, "server-key.pem") != 0 ||
	    default_path(config->client_ca, config->pki_dir, "ca.pem") != 0 ||
	    default_path(config->ca_key, config->pki_dir, "ca-key.pem") != 0 ||
	    default_path(config->root_key_file, dir, "root.key") != 0) {
		snprintf(errmsg, errlen, "data directory path is too long");
		return KMIPD_ERANGE;
	}
	if (config->admin_listen[0] == '\0')
		snprintf(config->admin_listen, sizeof(config->admin_listen),
			 strchr(config->listen_host, ':') ? "[%s]:9696" : "%s:9696",
			 config->listen_host);
	return 0;
}
