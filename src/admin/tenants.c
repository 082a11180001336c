/* /v1/tenants: create, list, show and delete tenants. Creation and deletion are replicated
 * commands: the answer comes once this node has applied them, so every later request to
 * this node sees the change (and the other nodes apply it within a round trip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "kmipd/command.h"
#include "kmipd/crypto.h"
#include "kmipd/error.h"
#include "kmipd/kmip_spec.h"
#include "kmipd/pki.h"
#include "kmipd/provider.h"
#include "kmipd/store.h"
#include "kmipd/tenant_keys.h"

static const char *state_text(enum keyring_state state)
{
	return state == KEYRING_READY ? "ready" : state == KEYRING_PENDING ? "pending" : "refused";
}

/* The tenant's KEK on this node: {"version", "loaded", "state", and when something is
 * wrong "reason" and "since"}; for a cloud tenant also "provider_reachable". */
static json_t *kek_json(struct admin *admin, const struct store_tenant *t)
{
	struct keyring_view view;
	json_t *kek;

	if (keyring_view(admin->config.keyring, t->name, &view) != 0)
		return json_pack("{s:I, s:b, s:s, s:s}", "version", (json_int_t)t->kek_version,
				 "loaded", 0, "state", "pending", "reason",
				 "not loaded on this node yet");
	kek = json_pack("{s:I, s:b, s:s}", "version", (json_int_t)t->kek_version, "loaded",
			view.state == KEYRING_READY && view.version == t->kek_version, "state",
			state_text(view.state));
	if (t->retiring_version != 0)
		json_object_set_new(kek, "retiring_version", json_integer(t->retiring_version));
	if (strcmp(t->provider, "local") != 0)
		json_object_set_new(kek, "provider_reachable", json_boolean(view.provider_ok));
	if (view.reason[0] != '\0') {
		json_object_set_new(kek, "reason", json_string(view.reason));
		json_object_set_new(kek, "since", admin_date(view.since));
	}
	return kek;
}

static json_t *tenant_json(struct admin *admin, struct store_txn *txn, const struct store_tenant *t)
{
	uint64_t objects = 0;

	store_object_count(txn, t->name, &objects);
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:o}", "name", t->name, "provider", t->provider,
			 "root_key_id", t->root_key_id ? t->root_key_id : "", "created",
			 admin_date(t->created), "objects", (json_int_t)objects, "kek",
			 kek_json(admin, t));
}

struct list {
	struct admin *admin;
	struct store_txn *txn;
	json_t *items;
};

static int list_one(const struct store_tenant *t, void *arg)
{
	struct list *l = arg;

	if (t->deleted == 0)
		json_array_append_new(l->items, tenant_json(l->admin, l->txn, t));
	return 0;
}

void handle_tenant_list(struct http_conn *c, const char **params)
{
	struct list l = {c->admin, NULL, json_array()};

	(void)params;
	if (store_txn_begin(c->admin->config.store, false, &l.txn) != 0) {
		json_decref(l.items);
		http_error(c, 503, "the key store cannot be read");
		return;
	}
	store_tenant_foreach(l.txn, &c->arena, list_one, &l);
	store_txn_abort(l.txn);
	http_json(c, 200, json_pack("{s:o}", "tenants", l.items));
}

bool admin_find_tenant(struct http_conn *c, struct store_txn *txn, const char *name,
		       struct store_tenant *t)
{
	if (!pki_name_valid(name)) {
		http_error(c, 404, "no tenant %s", name);
		return false;
	}
	if (store_tenant_get(txn, name, &c->arena, t) == 0 && t->deleted == 0)
		return true;
	if (!admin_catch_up(c))
		http_error(c, 404, "no tenant %s", name);
	return false;
}

bool admin_read_tenant(struct http_conn *c, const char *name, struct store_tenant *t)
{
	struct store_txn *txn;
	bool found;

	if (store_txn_begin(c->admin->config.store, false, &txn) != 0) {
		http_error(c, 503, "the key store cannot be read");
		return false;
	}
	found = admin_find_tenant(c, txn, name, t);
	store_txn_abort(txn);
	return found;
}

struct state_count {
	json_t *states;
};

static int count_state(const struct object *o, void *arg)
{
	struct state_count *sc = arg;
	const char *name = kmip_enum_name(KMIP_FAMILY_STATE, o->state);
	json_t *n;

	name = name != NULL ? name : "unknown";
	n = json_object_get(sc->states, name);
	json_object_set_new(sc->states, name, json_integer(n ? json_integer_value(n) + 1 : 1));
	return 0;
}

void handle_tenant_show(struct http_conn *c, const char **params)
{
	struct store_tenant t;
	struct store_txn *txn;
	struct state_count sc = {json_object()};
	struct arena objects; /* reset between objects: not the request's */
	json_t *body;

	if (store_txn_begin(c->admin->config.store, false, &txn) != 0) {
		json_decref(sc.states);
		http_error(c, 503, "the key store cannot be read");
		return;
	}
	if (!admin_find_tenant(c, txn, params[0], &t)) {
		store_txn_abort(txn);
		json_decref(sc.states);
		return;
	}
	body = tenant_json(c->admin, txn, &t);
	arena_init(&objects, 16384, 0);
	store_object_foreach(txn, t.name, NULL, &objects, true, count_state, &sc);
	arena_free(&objects);
	store_txn_abort(txn);
	json_object_set_new(body, "states", sc.states);
	http_json(c, 200, body);
}

/* ---- Changes ---- */

static void tenant_deleted(struct http_conn *c, const struct command *cmd,
			   const struct command_result *result)
{
	http_json(c, 200,
		  json_pack("{s:s, s:b, s:I}", "name", cmd->tenant, "deleted", 1,
			    "objects_destroyed", (json_int_t)result->index));
}

struct provider *admin_provider(struct http_conn *c, const char *type)
{
	struct admin *admin = c->admin;
	bool hpcs = strcmp(type, "hpcs") == 0;
	struct provider **slot = hpcs ? &admin->hpcs : &admin->keyprotect;
	const struct provider_config *pc = hpcs ? admin->config.hpcs : admin->config.keyprotect;
	char errmsg[300];

	if (*slot != NULL)
		return *slot;
	if (pc == NULL || pc->url[0] == '\0') {
		http_error(c, 409,
			   "this node is not set up for %s: set [%s] url, instance_id and "
			   "api_key_file or api_key_env on every node",
			   type, type);
		return NULL;
	}
	if (provider_new(&admin->loop, pc, slot, errmsg, sizeof(errmsg)) != 0) {
		http_error(c, 500, "%s", errmsg);
		return NULL;
	}
	return *slot;
}

/* A cloud tenant's new KEK (a new tenant's, or a rotation's) while its provider wraps it:
 * @cmd is submitted with the wrapped form, and answered by @done. */
struct cloud_wrap {
	struct http_conn *c;
	struct command cmd;
	char root_key_id[256];
	int status_ok;
	admin_done_fn done;
};

static void tenant_created(struct http_conn *c, const struct command *cmd,
			   const struct command_result *result)
{
	struct store_txn *txn;
	struct store_tenant t;
	json_t *made = NULL;

	(void)result;
	if (store_txn_begin(c->admin->config.store, false, &txn) == 0) {
		if (store_tenant_get(txn, cmd->tenant, &c->arena, &t) == 0)
			made = tenant_json(c->admin, txn, &t);
		store_txn_abort(txn);
	}
	http_json(c, 201, made != NULL ? made : json_pack("{s:s}", "name", cmd->tenant));
}

static void on_wrapped(void *arg, const struct provider_result *r)
{
	struct cloud_wrap *cc = arg;
	struct http_conn *c = cc->c;
	struct store_tenant *t = &cc->cmd.tenant_record;

	if (!admin_resume(c)) {
		free(cc);
		return;
	}
	if (r->verdict != PROVIDER_OK) {
		http_error(c,
			   r->verdict == PROVIDER_UNAVAILABLE ? 503
			   : r->verdict == PROVIDER_REVOKED   ? 409
							      : 400,
			   "the tenant's key-encryption key could not be wrapped with root key %s: "
			   "%s (correlation-id %s)",
			   cc->root_key_id, r->reason, r->correlation_id);
		free(cc);
		return;
	}
	t->root_key_id = cc->root_key_id;
	t->wrapped_kek = (const uint8_t *)r->ciphertext;
	t->wrapped_kek_len = strlen(r->ciphertext);
	admin_submit(c, &cc->cmd, cc->status_ok, cc->done);
	free(cc);
}

/* Generates KEK version @version of @cmd's tenant and has @provider wrap it with root key
 * @root; @cmd is submitted when the wrapped form comes back. The plaintext KEK is wiped
 * once sent: each node gets it from the provider, as it will at every start. */
static void wrap_cloud_kek(struct http_conn *c, struct provider *provider,
			   const struct command *cmd, const char *root, uint32_t version,
			   int status_ok, admin_done_fn done)
{
	struct cloud_wrap *cc = calloc(1, sizeof(*cc));
	struct crypto_key *kek = crypto_key_new();
	char bufs[2][80];
	const char *aad[TENANT_KEYS_AAD];
	int rv = cc == NULL || kek == NULL ? KMIPD_ENOMEM : 0;

	if (rv == 0)
		rv = crypto_random(kek->bytes, CRYPTO_KEY_LEN);
	if (rv == 0) {
		cc->c = c;
		cc->cmd = *cmd;
		cc->status_ok = status_ok;
		cc->done = done;
		snprintf(cc->root_key_id, sizeof(cc->root_key_id), "%s", root);
		tenant_keys_aad(cmd->tenant, version, bufs, aad);
		rv = provider_wrap(provider, root, aad, TENANT_KEYS_AAD, kek, on_wrapped, cc);
	}
	crypto_key_free(kek);
	if (rv != 0) {
		free(cc);
		http_error(c, rv == KMIPD_EINVAL ? 400 : 500,
			   rv == KMIPD_EINVAL
				   ? "root_key_id '%s' is not a key id or alias (A-Z a-z "
				     "0-9 . _ -, at most 240)"
				   : "the tenant's key could not be made: %s",
			   rv == KMIPD_EINVAL ? root : kmipd_strerror(rv));
		return;
	}
	admin_wait(c);
}

/* Submits @cmd (a tenant's creation or KEK rotation) with KEK version @version made for
 * it: wrapped by @cloud with root key @root, or (@cloud NULL) by the local root key. */
static void submit_new_kek(struct http_conn *c, struct provider *cloud, struct command *cmd,
			   const char *root, uint32_t version, int status_ok, admin_done_fn done)
{
	struct buf wrapped = BUF_INIT;
	int rv;

	if (cloud != NULL) {
		wrap_cloud_kek(c, cloud, cmd, root, version, status_ok, done);
		return;
	}
	rv = keyring_make(c->admin->config.keyring, cmd->tenant, version, &wrapped);
	if (rv != 0) {
		http_error(c, 500, "making the tenant's key-encryption key failed: %s",
			   kmipd_strerror(rv));
		return;
	}
	cmd->tenant_record.wrapped_kek = wrapped.data;
	cmd->tenant_record.wrapped_kek_len = wrapped.len;
	admin_submit(c, cmd, status_ok, done);
	buf_free(&wrapped);
}

void handle_tenant_create(struct http_conn *c, const char **params)
{
	json_t *body = http_body_object(c);
	const char *name, *provider = "local", *root = "";
	struct command cmd;
	struct store_txn *txn;
	struct store_tenant existing;
	struct provider *cloud = NULL;
	bool exists = false;
	json_error_t err;

	(void)params;
	admin_audit_as(c, "create tenant", NULL);
	if (body == NULL)
		return;
	if (json_unpack_ex(body, &err, JSON_STRICT, "{s:s, s?:s, s?:s}", "name", &name, "provider",
			   &provider, "root_key_id", &root) != 0) {
		http_error(c, 400,
			   "the body must be {\"name\": ..., \"provider\": \"local\" | "
			   "\"keyprotect\" | \"hpcs\", \"root_key_id\": ...}: %s",
			   err.text);
		json_decref(body);
		return;
	}
	if (!pki_name_valid(name)) {
		http_error(c, 400, "tenant name '%s' is not 1-%d characters of A-Z a-z 0-9 . _ -",
			   name, PKI_NAME_MAX);
		json_decref(body);
		return;
	}
	if (!tenant_keys_provider_known(provider)) {
		http_error(c, 400,
			   "provider '%s' is not one of local (the node's root key file), "
			   "keyprotect (IBM Key Protect) or hpcs (Hyper Protect Crypto Services)",
			   provider);
		json_decref(body);
		return;
	}
	if (strcmp(provider, "local") == 0 && root[0] != '\0') {
		http_error(c, 400,
			   "root_key_id '%s': the local provider has one root key (the node's "
			   "root key file) and takes no id",
			   root);
		json_decref(body);
		return;
	}
	if (strcmp(provider, "local") != 0 && root[0] == '\0') {
		http_error(c, 400,
			   "a %s tenant names its root key: give root_key_id (the key's id or "
			   "alias in the %s instance)",
			   provider, provider);
		json_decref(body);
		return;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_TENANT_CREATE;
	cmd.time = (int64_t)time(NULL);
	snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", name);
	snprintf(cmd.tenant_record.name, sizeof(cmd.tenant_record.name), "%s", cmd.tenant);
	snprintf(cmd.tenant_record.provider, sizeof(cmd.tenant_record.provider), "%s", provider);
	cmd.tenant_record.root_key_id = "";
	cmd.tenant_record.created = cmd.time;
	admin_audit_as(c, "create tenant", cmd.tenant);
	if (strcmp(provider, "local") != 0 && (cloud = admin_provider(c, provider)) == NULL) {
		json_decref(body);
		return;
	}
	if (store_txn_begin(c->admin->config.store, false, &txn) == 0) {
		exists = store_tenant_get(txn, cmd.tenant, &c->arena, &existing) == 0 &&
			 existing.deleted == 0;
		store_txn_abort(txn);
	}
	if (exists) {
		http_error(c, 409, "tenant %s already exists", cmd.tenant);
		json_decref(body);
		return;
	}
	submit_new_kek(c, cloud, &cmd, root, 1, 201, tenant_created);
	json_decref(body);
}

static void kek_rotated(struct http_conn *c, const struct command *cmd,
			const struct command_result *result)
{
	http_json(c, 200,
		  json_pack("{s:s, s:I, s:I, s:s}", "name", cmd->tenant, "kek_version",
			    (json_int_t)result->index, "retiring_version",
			    (json_int_t)result->index - 1, "message",
			    "new objects are sealed with the new key-encryption key; the leader "
			    "re-seals the others in the background and then retires the old one"));
}

/* False after answering 409 when a member of the cluster cannot apply commands of @type
 * yet (a rolling upgrade under way, or a node pinned to an older level). */
static bool cluster_can_apply(struct http_conn *c, enum command_type type, const char *what)
{
	struct replication_status s;

	replication_status(c->admin->config.replication, &s);
	if (s.format_level >= command_level(type))
		return true;
	if (s.format_held_by != 0)
		http_error(c, 409,
			   "%s needs every node at command level %u; node %llu is at level %u (an "
			   "older kmipd, one that has not answered yet, or cluster.format_level): "
			   "finish the upgrade first",
			   what, command_level(type), (unsigned long long)s.format_held_by,
			   s.format_level);
	else
		http_error(c, 409,
			   "%s needs command level %u; this node's cluster.format_level is %u",
			   what, command_level(type), s.format_level);
	return false;
}

/* ---- The root key at its provider ---- */

/* A question about a cloud tenant's root key, while the provider answers. */
struct root_key_call {
	struct http_conn *c;
	char tenant[OBJECT_TENANT_MAX + 1];
	char provider[16];
	char root_key_id[256];
	char *wrapped; /* rewrap: the form sent, NUL-terminated */
};

static int verdict_status(enum provider_verdict verdict)
{
	return verdict == PROVIDER_UNAVAILABLE ? 503 : verdict == PROVIDER_REVOKED ? 409 : 400;
}

static const char *root_key_state_name(int state)
{
	static const char *const names[] = {"pre-active",  "active", "suspended",
					    "deactivated", NULL,     "destroyed"};

	return state >= 0 && state <= 5 && names[state] != NULL ? names[state] : "unknown";
}

/* Reads cloud tenant params[0] into @t and makes a call for it: NULL after answering (no
 * such tenant, a local one, no provider here). */
static struct root_key_call *root_key_call_new(struct http_conn *c, const char **params,
					       struct store_tenant *t, struct provider **p)
{
	struct root_key_call *rk;

	if (!admin_read_tenant(c, params[0], t))
		return NULL;
	if (strcmp(t->provider, "local") == 0) {
		http_error(c, 409,
			   "tenant %s's key-encryption key is wrapped by the nodes' root key file, "
			   "not by a provider's root key",
			   t->name);
		return NULL;
	}
	*p = admin_provider(c, t->provider);
	rk = *p != NULL ? calloc(1, sizeof(*rk)) : NULL;
	if (*p != NULL && rk == NULL)
		http_error(c, 500, "out of memory");
	if (rk != NULL) {
		rk->c = c;
		snprintf(rk->tenant, sizeof(rk->tenant), "%s", t->name);
		snprintf(rk->provider, sizeof(rk->provider), "%s", t->provider);
		snprintf(rk->root_key_id, sizeof(rk->root_key_id), "%s", t->root_key_id);
	}
	return rk;
}

static void root_key_call_free(struct root_key_call *rk)
{
	free(rk->wrapped);
	free(rk);
}

static void on_checked(void *arg, const struct provider_result *r)
{
	struct root_key_call *rk = arg;
	struct http_conn *c = rk->c;

	if (!admin_resume(c)) {
		root_key_call_free(rk);
		return;
	}
	if (r->verdict != PROVIDER_OK)
		http_error(c, verdict_status(r->verdict),
			   "%s could not read root key %s: %s (correlation-id %s)", rk->provider,
			   rk->root_key_id, r->reason, r->correlation_id);
	else
		http_json(c, 200,
			  json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "tenant", rk->tenant,
				    "provider", rk->provider, "root_key_id", rk->root_key_id,
				    "state", r->key_state, "state_name",
				    root_key_state_name(r->key_state), "key_version",
				    r->key_version != NULL ? r->key_version : "", "correlation_id",
				    r->correlation_id));
	root_key_call_free(rk);
}

/* GET /v1/tenants/N/root-key: the root key's state as its provider sees it now. */
void handle_tenant_root_key(struct http_conn *c, const char **params)
{
	struct store_tenant t;
	struct provider *p = NULL;
	struct root_key_call *rk = root_key_call_new(c, params, &t, &p);
	int rv;

	if (rk == NULL)
		return;
	rv = provider_check(p, rk->root_key_id, on_checked, rk);
	if (rv != 0) {
		root_key_call_free(rk);
		http_error(c, 500, "asking %s failed: %s", t.provider, kmipd_strerror(rv));
		return;
	}
	admin_wait(c);
}

static void rewrap_stored(struct http_conn *c, const struct command *cmd,
			  const struct command_result *result)
{
	(void)result;
	http_json(c, 200, json_pack("{s:s, s:b}", "tenant", cmd->tenant, "rewrapped", 1));
}

static void on_rewrapped(void *arg, const struct provider_result *r)
{
	struct root_key_call *rk = arg;
	struct http_conn *c = rk->c;
	struct command cmd;

	if (!admin_resume(c)) {
		root_key_call_free(rk);
		return;
	}
	if (r->verdict != PROVIDER_OK) {
		http_error(c, verdict_status(r->verdict),
			   "%s could not rewrap tenant %s's key-encryption key with root key %s: "
			   "%s (correlation-id %s)",
			   rk->provider, rk->tenant, rk->root_key_id, r->reason, r->correlation_id);
		root_key_call_free(rk);
		return;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_TENANT_REWRAP;
	cmd.time = (int64_t)time(NULL);
	snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", rk->tenant);
	cmd.tenant_record.wrapped_kek = (const uint8_t *)r->ciphertext;
	cmd.tenant_record.wrapped_kek_len = strlen(r->ciphertext);
	cmd.old_kek = (const uint8_t *)rk->wrapped;
	cmd.old_kek_len = strlen(rk->wrapped);
	admin_submit(c, &cmd, 200, rewrap_stored);
	root_key_call_free(rk);
}

/* POST /v1/tenants/N/rewrap: the KEK wrapped again under the root key's current version
 * now (after the root key was rotated), instead of at the nodes' next check. */
void handle_tenant_rewrap(struct http_conn *c, const char **params)
{
	struct store_tenant t;
	struct provider *p = NULL;
	struct root_key_call *rk;
	char bufs[2][80];
	const char *aad[TENANT_KEYS_AAD];
	int rv;

	admin_audit_as(c, "rewrap tenant KEK", pki_name_valid(params[0]) ? params[0] : NULL);
	if (!cluster_can_apply(c, COMMAND_TENANT_REWRAP, "rewrapping a key-encryption key"))
		return;
	rk = root_key_call_new(c, params, &t, &p);
	if (rk == NULL)
		return;
	rk->wrapped = strndup((const char *)t.wrapped_kek, t.wrapped_kek_len);
	tenant_keys_aad(t.name, t.kek_version, bufs, aad);
	rv = rk->wrapped == NULL ? KMIPD_ENOMEM
				 : provider_rewrap(p, rk->root_key_id, aad, TENANT_KEYS_AAD,
						   rk->wrapped, on_rewrapped, rk);
	if (rv != 0) {
		root_key_call_free(rk);
		http_error(c, 500, "asking %s failed: %s", t.provider, kmipd_strerror(rv));
		return;
	}
	admin_wait(c);
}

/* POST /v1/tenants/N/rotate-kek: a new KEK, wrapped by the tenant's root key. */
void handle_tenant_rotate_kek(struct http_conn *c, const char **params)
{
	struct store_tenant t;
	struct command cmd;
	struct provider *cloud = NULL;

	admin_audit_as(c, "rotate tenant KEK", pki_name_valid(params[0]) ? params[0] : NULL);
	if (!cluster_can_apply(c, COMMAND_KEK_ROTATE, "rotating a key-encryption key"))
		return;
	if (!admin_read_tenant(c, params[0], &t))
		return;
	if (t.retiring_version != 0) {
		http_error(c, 409,
			   "tenant %s's key-encryption key version %u is still being retired "
			   "(objects are re-sealed under version %u); rotate again once that is "
			   "done",
			   t.name, t.retiring_version, t.kek_version);
		return;
	}
	if (strcmp(t.provider, "local") != 0 && (cloud = admin_provider(c, t.provider)) == NULL)
		return;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_KEK_ROTATE;
	cmd.time = (int64_t)time(NULL);
	snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", t.name);
	cmd.kek_version = t.kek_version + 1;
	submit_new_kek(c, cloud, &cmd, t.root_key_id, cmd.kek_version, 200, kek_rotated);
}

void handle_tenant_delete(struct http_conn *c, const char **params)
{
	json_t *body = http_body_object(c);
	const char *confirm = NULL;
	struct store_tenant t;
	struct command cmd;

	admin_audit_as(c, "delete tenant", pki_name_valid(params[0]) ? params[0] : NULL);
	if (body == NULL)
		return;
	json_unpack(body, "{s?:s}", "confirm", &confirm);
	if (confirm == NULL || strcmp(confirm, params[0]) != 0) {
		http_error(c, 400,
			   "deleting tenant %s destroys all of its keys on every node, for good: "
			   "confirm with {\"confirm\": \"%s\"}",
			   params[0], params[0]);
		json_decref(body);
		return;
	}
	json_decref(body);
	if (!admin_read_tenant(c, params[0], &t))
		return;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = COMMAND_TENANT_DELETE;
	cmd.time = (int64_t)time(NULL);
	snprintf(cmd.tenant, sizeof(cmd.tenant), "%s", t.name);
	admin_submit(c, &cmd, 200, tenant_deleted);
}
