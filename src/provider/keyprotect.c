/* The Key Protect / HPCS key API client: an IAM token cache, the wrap, unwrap, rewrap and
 * metadata calls, IBM's retry rules, and the mapping of answers to verdicts.
 *
 * A call is one `struct call`, which lives until its callback has run. It waits for a
 * token when there is none (one IAM request serves every call waiting), sends its
 * request, and on a retryable failure sleeps on its own timer before sending again. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kmipd/error.h"
#include "kmipd/http_client.h"
#include "kmipd/log.h"
#include "kmipd/metrics.h"
#include "kmipd/provider.h"

#define API_KEY_MAX    512
#define TOKEN_MAX      8192
#define CIPHERTEXT_MAX (64 * 1024)

enum action { ACTION_WRAP, ACTION_UNWRAP, ACTION_REWRAP, ACTION_CHECK };

static const char *const action_name[] = {"wrap", "unwrap", "rewrap", "metadata"};

struct call {
	struct provider *p;
	enum action action;
	char *url;
	struct buf body; /* the JSON request (wrap: holds the plaintext KEK; wiped) */
	unsigned attempt;
	bool renewed; /* a 401 already made us renew the token once */
	bool waiting; /* on the token queue */
	uv_timer_t timer;
	provider_done_fn done;
	void *arg;
	struct provider_result result;
	struct call *next; /* the token queue, then the list of calls in flight */
	struct call *all_prev, *all_next;
};

struct provider {
	struct provider_config config;
	uv_loop_t *loop;
	struct http_client *http;
	char *api_key; /* locked, wiped on close */
	char token[TOKEN_MAX];
	uint64_t token_renew_ms; /* loop time after which a new token is fetched first */
	uint64_t token_expiry_ms;
	bool fetching;
	struct call *queue; /* waiting for a token */
	struct call *calls; /* every call not yet reported */
	unsigned open;	    /* handles still closing */
	bool closing;
};

/* ---- Small helpers ---- */

static uint64_t now_ms(struct provider *p)
{
	return uv_now(p->loop);
}

static void new_correlation_id(char out[37])
{
	if (crypto_uuid(out) != 0)
		snprintf(out, 37, "00000000-0000-0000-0000-000000000000");
}

/* Appends @s as a JSON string. */
static int json_string_out(struct buf *out, const char *s)
{
	json_t *v = json_string(s);
	char *text;
	int rv;

	if (v == NULL)
		return KMIPD_EINVAL; /* not UTF-8 */
	text = json_dumps(v, JSON_ENCODE_ANY);
	json_decref(v);
	if (text == NULL)
		return KMIPD_ENOMEM;
	rv = buf_append(out, text, strlen(text));
	free(text);
	return rv;
}

/* Wipes a JSON string's bytes in place: jansson frees them without wiping. */
static void wipe_json_string(json_t *v)
{
	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

static int base64_encode(struct buf *out, const uint8_t *data, size_t len)
{
	size_t need = 4 * ((len + 2) / 3) + 1;
	int rv = buf_reserve(out, need);

	if (rv != 0)
		return rv;
	out->len += (size_t)EVP_EncodeBlock(out->data + out->len, data, (int)len);
	return 0;
}

/* Decodes exactly @len bytes of base64 into @out. 0 or KMIPD_EMALFORMED. */
static int base64_decode_exact(const char *text, uint8_t *out, size_t len)
{
	size_t tlen = strlen(text);
	uint8_t tmp[64];
	int n;

	if (tlen == 0 || tlen % 4 != 0 || tlen / 4 * 3 > sizeof(tmp))
		return KMIPD_EMALFORMED;
	n = EVP_DecodeBlock(tmp, (const uint8_t *)text, (int)tlen);
	if (n < 0) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return KMIPD_EMALFORMED;
	}
	n -= (text[tlen - 1] == '=') + (text[tlen - 2] == '=');
	if ((size_t)n != len) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return KMIPD_EMALFORMED;
	}
	memcpy(out, tmp, len);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return 0;
}

/* ---- The API key ---- */

static int read_api_key(const struct provider_config *c, char **out, char *errmsg, size_t errlen)
{
	char *key = calloc(1, API_KEY_MAX + 1);
	size_t len = 0;

	if (key == NULL)
		return KMIPD_ENOMEM;
	(void)mlock(key, API_KEY_MAX + 1);
	if (c->api_key_file[0] != '\0') {
		int fd = open(c->api_key_file, O_RDONLY | O_CLOEXEC);
		struct stat st;
		ssize_t n;

		if (fd < 0 || fstat(fd, &st) != 0) {
			snprintf(errmsg, errlen, "%s.api_key_file %s: %s", c->type, c->api_key_file,
				 strerror(errno));
			if (fd >= 0)
				close(fd);
			goto err;
		}
		if ((st.st_mode & 077) != 0) {
			snprintf(errmsg, errlen,
				 "%s.api_key_file %s: readable by others (mode %03o); make it 0600",
				 c->type, c->api_key_file, (unsigned)(st.st_mode & 0777));
			close(fd);
			goto err;
		}
		while (len < API_KEY_MAX && (n = read(fd, key + len, API_KEY_MAX - len)) > 0)
			len += (size_t)n;
		close(fd);
	} else if (c->api_key_env[0] != '\0') {
		const char *env = getenv(c->api_key_env);

		if (env == NULL || env[0] == '\0') {
			snprintf(errmsg, errlen, "%s.api_key_env: the environment has no %s",
				 c->type, c->api_key_env);
			goto err;
		}
		len = strlen(env);
		if (len > API_KEY_MAX)
			len = API_KEY_MAX;
		memcpy(key, env, len);
	} else {
		snprintf(errmsg, errlen, "%s: no API key: set %s.api_key_file or %s.api_key_env",
			 c->type, c->type, c->type);
		goto err;
	}
	while (len > 0 && (key[len - 1] == '\n' || key[len - 1] == '\r' || key[len - 1] == ' '))
		len--;
	key[len] = '\0';
	if (len == 0 || len == API_KEY_MAX) {
		snprintf(errmsg, errlen, "%s: the API key is %s", c->type,
			 len == 0 ? "empty" : "longer than any IBM Cloud API key");
		goto err;
	}
	*out = key;
	return 0;
err:
	OPENSSL_cleanse(key, API_KEY_MAX + 1);
	free(key);
	return KMIPD_EINVAL;
}

/* ---- Reporting ---- */

/* Frees @p once it is closing and its last call's timer has closed. */
static void maybe_free(struct provider *p)
{
	if (!p->closing || p->open > 0)
		return;
	if (p->api_key != NULL) {
		OPENSSL_cleanse(p->api_key, API_KEY_MAX + 1);
		free(p->api_key);
	}
	OPENSSL_cleanse(p->token, sizeof(p->token));
	free(p);
}

static void call_free(struct call *c)
{
	free(c->url);
	buf_free(&c->body);
	free(c);
}

static void call_closed(uv_handle_t *handle)
{
	struct call *c = handle->data;
	struct provider *p = c->p;

	call_free(c);
	p->open--;
	maybe_free(p);
}

/* Reports @c's result and releases it. */
static void report(struct call *c)
{
	struct provider *p = c->p;

	if (c->all_prev != NULL)
		c->all_prev->all_next = c->all_next;
	else
		p->calls = c->all_next;
	if (c->all_next != NULL)
		c->all_next->all_prev = c->all_prev;
	c->result.canceled = p->closing;
	if (!c->result.canceled)
		metrics_root_key(provider_type(p), action_name[c->action],
				 c->result.verdict == PROVIDER_OK);
	c->done(c->arg, &c->result);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, call_closed);
}

/* Writes the service's account of an error answer into @out: the reason code and
 * errorMsg of the key API's body, or IAM's errorCode and errorMessage. */
static void error_text(const struct http_response *r, char *out, size_t len)
{
	json_t *root = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
	json_t *res = json_array_get(json_object_get(root, "resources"), 0);
	json_t *reason = json_array_get(json_object_get(res, "reasons"), 0);
	const char *msg = json_string_value(json_object_get(res, "errorMsg"));
	const char *code = json_string_value(json_object_get(reason, "code"));
	const char *detail = json_string_value(json_object_get(reason, "message"));

	if (msg == NULL)
		msg = json_string_value(json_object_get(root, "errorMessage"));
	if (code == NULL)
		code = json_string_value(json_object_get(root, "errorCode"));
	if (detail != NULL && msg != NULL && strcmp(detail, msg) == 0)
		detail = NULL;
	snprintf(out, len, "%s%s%s%s%s", code ? code : "", code && msg ? ": " : "", msg ? msg : "",
		 detail ? " - " : "", detail ? detail : "");
	json_decref(root);
}

static void describe_error(struct call *c, const struct http_response *r)
{
	char text[240];

	error_text(r, text, sizeof(text));
	snprintf(c->result.reason, sizeof(c->result.reason), "%s %s answered HTTP %ld%s%s",
		 provider_type(c->p), action_name[c->action], r->status, text[0] ? " " : "", text);
}

static bool body_mentions(const struct http_response *r, const char *text)
{
	return r->body.len > 0 && memmem(r->body.data, r->body.len, text, strlen(text)) != NULL;
}

/* ---- Sending ---- */

static void send_call(struct call *c);
static void fetch_token(struct provider *p);

static bool token_fresh(struct provider *p)
{
	return p->token[0] != '\0' && now_ms(p) < p->token_renew_ms;
}

/* Sends @c now if there is a fresh token, else queues it behind the IAM request. */
static void start(struct call *c)
{
	struct provider *p = c->p;

	if (token_fresh(p)) {
		send_call(c);
		return;
	}
	c->waiting = true;
	c->next = p->queue;
	p->queue = c;
	fetch_token(p);
}

static void on_backoff(uv_timer_t *timer)
{
	start(timer->data);
}

/* A failure worth retrying: wait and try again, or report UNAVAILABLE after the last
 * attempt. */
static void retry_or_report(struct call *c, long retry_after_s)
{
	struct provider *p = c->p;
	uint64_t delay = p->config.backoff_ms;

	if (c->attempt > p->config.retries || p->closing) {
		c->result.verdict = PROVIDER_UNAVAILABLE;
		report(c);
		return;
	}
	for (unsigned i = 1; i < c->attempt && delay < p->config.backoff_max_ms; i++)
		delay *= 2;
	if (delay > p->config.backoff_max_ms)
		delay = p->config.backoff_max_ms;
	if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000 > delay)
		delay = (uint64_t)retry_after_s * 1000;
	log_info("%s: retrying %s in %llu ms (attempt %u of %u): %s", provider_type(p),
		 action_name[c->action], (unsigned long long)delay, c->attempt + 1,
		 p->config.retries + 1, c->result.reason);
	uv_timer_start(&c->timer, on_backoff, delay, 0);
}

static bool retryable(long status)
{
	return status == 0 || status == 429 || (status >= 500 && status != 501);
}

/* Takes what the service answered a successful call. */
static void take_answer(struct call *c, const struct http_response *r)
{
	json_t *root = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
	json_t *plaintext = json_object_get(root, "plaintext");
	const char *ciphertext = json_string_value(json_object_get(root, "ciphertext"));
	json_t *version = json_object_get(root, "rewrappedKeyVersion");
	struct crypto_key *kek = NULL;
	const char *problem = NULL;

	if (version == NULL || c->action == ACTION_WRAP)
		version = json_object_get(root, "keyVersion");
	if (root == NULL) {
		problem = "an answer that is not JSON";
	} else if (c->action == ACTION_CHECK) {
		json_t *res = json_array_get(json_object_get(root, "resources"), 0);
		json_t *state = json_object_get(res, "state");

		if (!json_is_integer(state))
			problem = "metadata without a key state";
		else if (json_is_true(json_object_get(res, "extractable")))
			problem = "metadata of a standard key, not a root key";
		else
			c->result.key_state = (int)json_integer_value(state);
		version = json_object_get(res, "keyVersion");
	} else if (c->action == ACTION_UNWRAP) {
		kek = crypto_key_new();
		if (kek == NULL)
			problem = "no memory for the key";
		else if (!json_is_string(plaintext) ||
			 base64_decode_exact(json_string_value(plaintext), kek->bytes,
					     CRYPTO_KEY_LEN) != 0)
			problem = "an unwrapped key that is not 32 bytes of base64";
	} else if (ciphertext == NULL) {
		problem = "an answer without a ciphertext";
	}
	if (ciphertext != NULL && strlen(ciphertext) > CIPHERTEXT_MAX)
		problem = "a ciphertext longer than 64 KiB";
	wipe_json_string(plaintext);

	if (problem != NULL) {
		snprintf(c->result.reason, sizeof(c->result.reason),
			 "%s %s answered HTTP %ld with %s", provider_type(c->p),
			 action_name[c->action], r->status, problem);
		c->result.verdict = PROVIDER_REFUSED;
		crypto_key_free(kek);
		json_decref(root);
		report(c);
		return;
	}
	c->result.verdict = PROVIDER_OK;
	c->result.kek = kek;
	c->result.ciphertext = c->action == ACTION_CHECK ? NULL : ciphertext;
	c->result.key_version = json_string_value(json_object_get(version, "id"));
	snprintf(c->result.reason, sizeof(c->result.reason), "%s %s answered HTTP %ld",
		 provider_type(c->p), action_name[c->action], r->status);
	report(c);
	crypto_key_free(kek);
	json_decref(root);
}

static void on_answer(void *arg, const struct http_response *r)
{
	struct call *c = arg;
	struct provider *p = c->p;

	c->result.http_status = r->status;
	if (r->status == 0) {
		snprintf(c->result.reason, sizeof(c->result.reason), "%s %s: no answer from %s: %s",
			 provider_type(p), action_name[c->action], p->config.url, r->error);
		log_warn("%s: %s failed after %.0f ms (correlation-id %s): %s", provider_type(p),
			 action_name[c->action], r->seconds * 1000, c->result.correlation_id,
			 r->error);
		retry_or_report(c, -1);
		return;
	}
	log_info("%s: %s: HTTP %ld in %.0f ms (correlation-id %s)", provider_type(p),
		 action_name[c->action], r->status, r->seconds * 1000, c->result.correlation_id);
	if (r->status == 200) {
		take_answer(c, r);
		return;
	}
	describe_error(c, r);
	if (r->status == 401 && !c->renewed) {
		/* IBM's rule: renew the token once and try again. */
		c->renewed = true;
		p->token[0] = '\0';
		start(c);
		return;
	}
	if (retryable(r->status)) {
		retry_or_report(c, r->retry_after_s);
		return;
	}
	if (r->status >= 500 || body_mentions(r, "CKR_IBM_WK_NOT_INITIALIZED")) {
		/* A server error not worth retrying (501), or an HPCS crypto unit without its
		 * master key (an operator must load it): the root key itself is not revoked. */
		c->result.verdict = PROVIDER_UNAVAILABLE;
	} else if (r->status == 401 || r->status == 403 || r->status == 404 || r->status == 409 ||
		   r->status == 410) {
		c->result.verdict = PROVIDER_REVOKED;
	} else {
		c->result.verdict = PROVIDER_REFUSED;
	}
	report(c);
}

static void send_call(struct call *c)
{
	struct provider *p = c->p;
	char auth[TOKEN_MAX + 32], instance[200], correlation[64];
	struct http_request req = {
		.method = c->action == ACTION_CHECK ? "GET" : "POST",
		.url = c->url,
		.headers = {auth, instance, correlation, "Accept: application/json",
			    c->action == ACTION_CHECK ? NULL : "Content-Type: application/json"},
		.body = c->body.data,
		.body_len = c->body.len,
		.timeout_ms = p->config.timeout_ms,
	};
	int rv;

	c->attempt++;
	new_correlation_id(c->result.correlation_id);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->token);
	snprintf(instance, sizeof(instance), "bluemix-instance: %s", p->config.instance_id);
	snprintf(correlation, sizeof(correlation), "correlation-id: %s", c->result.correlation_id);
	rv = http_client_send(p->http, &req, on_answer, c);
	OPENSSL_cleanse(auth, sizeof(auth));
	if (rv != 0) {
		snprintf(c->result.reason, sizeof(c->result.reason), "%s %s could not be sent: %s",
			 provider_type(p), action_name[c->action], kmipd_strerror(rv));
		c->result.verdict = PROVIDER_UNAVAILABLE;
		report(c);
	}
}

/* ---- IAM ---- */

/* Every call waiting for a token goes on: sent with the new token, or failed with @verdict
 * and @reason (retryable failures retry on each call's own schedule). */
static void release_queue(struct provider *p, bool ok, enum provider_verdict verdict,
			  const char *reason, long retry_after_s, long status)
{
	struct call *queue = p->queue;

	p->queue = NULL;
	while (queue != NULL) {
		struct call *c = queue;

		queue = c->next;
		c->waiting = false;
		if (ok) {
			send_call(c);
			continue;
		}
		c->attempt++;
		c->result.http_status = status;
		snprintf(c->result.reason, sizeof(c->result.reason), "%s", reason);
		if (verdict == PROVIDER_UNAVAILABLE) {
			retry_or_report(c, retry_after_s);
		} else {
			c->result.verdict = verdict;
			report(c);
		}
	}
}

static void on_token(void *arg, const struct http_response *r)
{
	struct provider *p = arg;
	char reason[320];
	json_t *root = NULL, *token, *expires;
	enum provider_verdict verdict = PROVIDER_UNAVAILABLE;

	p->fetching = false;
	if (r->status == 0) {
		snprintf(reason, sizeof(reason), "%s: no answer from IAM at %s: %s",
			 provider_type(p), p->config.iam_url, r->error);
		log_warn("%s", reason);
		release_queue(p, false, verdict, reason, -1, 0);
		return;
	}
	if (r->status == 200) {
		root = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
		token = json_object_get(root, "access_token");
		expires = json_object_get(root, "expires_in");
		if (json_is_string(token) && json_string_length(token) < TOKEN_MAX &&
		    json_is_integer(expires) && json_integer_value(expires) > 0) {
			uint64_t ttl = (uint64_t)json_integer_value(expires) * 1000;
			/* IBM's SDKs renew after 80% of the lifetime. */
			uint64_t renew = ttl / 5 * 4;

			snprintf(p->token, sizeof(p->token), "%s", json_string_value(token));
			p->token_expiry_ms = now_ms(p) + ttl;
			p->token_renew_ms = now_ms(p) + renew;
			log_info("%s: IAM token obtained, valid for %llu s", provider_type(p),
				 (unsigned long long)(ttl / 1000));
			wipe_json_string(token);
			json_decref(root);
			release_queue(p, true, PROVIDER_OK, NULL, -1, 200);
			return;
		}
		wipe_json_string(token);
		json_decref(root);
		snprintf(reason, sizeof(reason), "%s: IAM answered HTTP 200 without a usable token",
			 provider_type(p));
		verdict = PROVIDER_REFUSED;
	} else {
		char text[240];

		error_text(r, text, sizeof(text));
		snprintf(reason, sizeof(reason), "%s: IAM answered HTTP %ld%s%s", provider_type(p),
			 r->status, text[0] ? " " : "", text);
		if (retryable(r->status))
			verdict = PROVIDER_UNAVAILABLE;
		else if (r->status == 400 || r->status == 401 || r->status == 403)
			verdict = PROVIDER_REVOKED; /* the API key itself is refused */
		else
			verdict = PROVIDER_REFUSED;
	}
	log_warn("%s", reason);
	release_queue(p, false, verdict, reason, r->retry_after_s, r->status);
}

static void fetch_token(struct provider *p)
{
	static const char prefix[] =
		"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=";
	struct http_request req = {
		.method = "POST",
		.url = p->config.iam_url,
		.headers = {"Content-Type: application/x-www-form-urlencoded",
			    "Accept: application/json", NULL},
		.timeout_ms = p->config.timeout_ms,
	};
	struct buf body = BUF_INIT;
	int rv;

	if (p->fetching)
		return;
	rv = buf_append(&body, prefix, sizeof(prefix) - 1);
	for (const char *k = p->api_key; rv == 0 && *k != '\0'; k++) {
		if ((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		    (*k >= '0' && *k <= '9') || strchr("-_.~", *k) != NULL)
			rv = buf_append(&body, k, 1);
		else
			rv = buf_printf(&body, "%%%02X", (unsigned char)*k);
	}
	req.body = body.data;
	req.body_len = body.len;
	if (rv == 0)
		rv = http_client_send(p->http, &req, on_token, p);
	buf_free(&body);
	if (rv != 0) {
		char reason[160];

		snprintf(reason, sizeof(reason), "%s: the IAM request could not be sent: %s",
			 provider_type(p), kmipd_strerror(rv));
		release_queue(p, false, PROVIDER_UNAVAILABLE, reason, -1, 0);
		return;
	}
	p->fetching = true;
}

/* ---- Calls ---- */

static int call_new(struct provider *p, enum action action, const char *root_key_id,
		    provider_done_fn done, void *arg, struct call **out)
{
	struct call *c;
	int n;

	if (p->closing || root_key_id == NULL || root_key_id[0] == '\0' ||
	    strlen(root_key_id) > 240)
		return KMIPD_EINVAL;
	for (const char *s = root_key_id; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || strchr("-_.", *s) != NULL))
			return KMIPD_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return KMIPD_ENOMEM;
	/* The id was checked above: nothing in it needs escaping. */
	n = action == ACTION_CHECK
		    ? asprintf(&c->url, "%s/api/v2/keys/%s/metadata", p->config.url, root_key_id)
		    : asprintf(&c->url, "%s/api/v2/keys/%s/actions/%s", p->config.url, root_key_id,
			       action_name[action]);
	if (n < 0) {
		free(c);
		return KMIPD_ENOMEM;
	}
	c->p = p;
	c->action = action;
	c->done = done;
	c->arg = arg;
	c->result.key_state = -1;
	*out = c;
	return 0;
}

/* Links @c in and starts it. */
static void launch(struct call *c)
{
	struct provider *p = c->p;

	uv_timer_init(p->loop, &c->timer);
	c->timer.data = c;
	p->open++;
	c->all_next = p->calls;
	if (c->all_next != NULL)
		c->all_next->all_prev = c;
	p->calls = c;
	start(c);
}

/* Appends ,"aad":[...] for @aad. */
static int append_aad(struct buf *body, const char *const aad[], unsigned n)
{
	int rv = buf_append(body, ",\"aad\":[", 8);

	for (unsigned i = 0; rv == 0 && i < n; i++) {
		if (strlen(aad[i]) > 255)
			return KMIPD_EINVAL;
		if (i > 0)
			rv = buf_append(body, ",", 1);
		if (rv == 0)
			rv = json_string_out(body, aad[i]);
	}
	return rv == 0 ? buf_append(body, "]", 1) : rv;
}

/* Ends @c's JSON body with the AAD and starts it; @rv is how building the body went so
 * far. A body that could not be built frees @c. */
static int finish_and_launch(struct call *c, int rv, const char *const aad[], unsigned n_aad)
{
	if (rv == 0)
		rv = append_aad(&c->body, aad, n_aad);
	if (rv == 0)
		rv = buf_append(&c->body, "}", 1);
	if (rv != 0) {
		call_free(c);
		return rv;
	}
	launch(c);
	return 0;
}

int provider_wrap(struct provider *p, const char *root_key_id, const char *const aad[],
		  unsigned n_aad, const struct crypto_key *kek, provider_done_fn done, void *arg)
{
	struct call *c;
	int rv = call_new(p, ACTION_WRAP, root_key_id, done, arg, &c);

	if (rv != 0)
		return rv;
	rv = buf_append(&c->body, "{\"plaintext\":\"", 14);
	if (rv == 0)
		rv = base64_encode(&c->body, kek->bytes, CRYPTO_KEY_LEN);
	if (rv == 0)
		rv = buf_append(&c->body, "\"", 1);
	return finish_and_launch(c, rv, aad, n_aad);
}

static int unwrap_like(struct provider *p, enum action action, const char *root_key_id,
		       const char *const aad[], unsigned n_aad, const char *ciphertext,
		       provider_done_fn done, void *arg)
{
	struct call *c;
	int rv;

	if (ciphertext == NULL || ciphertext[0] == '\0' || strlen(ciphertext) > CIPHERTEXT_MAX)
		return KMIPD_EINVAL;
	rv = call_new(p, action, root_key_id, done, arg, &c);
	if (rv != 0)
		return rv;
	rv = buf_append(&c->body, "{\"ciphertext\":", 14);
	if (rv == 0)
		rv = json_string_out(&c->body, ciphertext);
	return finish_and_launch(c, rv, aad, n_aad);
}

int provider_unwrap(struct provider *p, const char *root_key_id, const char *const aad[],
		    unsigned n_aad, const char *ciphertext, provider_done_fn done, void *arg)
{
	return unwrap_like(p, ACTION_UNWRAP, root_key_id, aad, n_aad, ciphertext, done, arg);
}

int provider_rewrap(struct provider *p, const char *root_key_id, const char *const aad[],
		    unsigned n_aad, const char *ciphertext, provider_done_fn done, void *arg)
{
	return unwrap_like(p, ACTION_REWRAP, root_key_id, aad, n_aad, ciphertext, done, arg);
}

int provider_check(struct provider *p, const char *root_key_id, provider_done_fn done, void *arg)
{
	struct call *c;
	int rv = call_new(p, ACTION_CHECK, root_key_id, done, arg, &c);

	if (rv != 0)
		return rv;
	launch(c);
	return 0;
}

/* ---- Life cycle ---- */

const char *provider_type(const struct provider *p)
{
	return p->config.type;
}

int provider_new(uv_loop_t *loop, const struct provider_config *config, struct provider **out,
		 char *errmsg, size_t errlen)
{
	struct provider *p;
	int rv;

	if (strcmp(config->type, "keyprotect") != 0 && strcmp(config->type, "hpcs") != 0) {
		snprintf(errmsg, errlen, "no root-key provider named '%s'", config->type);
		return KMIPD_EINVAL;
	}
	if (strncmp(config->url, "https://", 8) != 0 ||
	    strncmp(config->iam_url, "https://", 8) != 0 || config->instance_id[0] == '\0') {
		snprintf(errmsg, errlen,
			 "%s: set %s.url and %s.iam_url (https addresses) and %s.instance_id",
			 config->type, config->type, config->type, config->type);
		return KMIPD_EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return KMIPD_ENOMEM;
	p->config = *config;
	/* A base URL may end in a slash; the paths bring their own. */
	for (size_t n = strlen(p->config.url); n > 8 && p->config.url[n - 1] == '/'; n--)
		p->config.url[n - 1] = '\0';
	p->loop = loop;
	rv = read_api_key(config, &p->api_key, errmsg, errlen);
	if (rv != 0) {
		free(p);
		return rv;
	}
	p->http = http_client_new(loop, config->ca_file);
	if (p->http == NULL) {
		OPENSSL_cleanse(p->api_key, API_KEY_MAX + 1);
		free(p->api_key);
		free(p);
		snprintf(errmsg, errlen, "%s: the HTTPS client could not start", config->type);
		return KMIPD_ENOMEM;
	}
	*out = p;
	return 0;
}

void provider_close(struct provider *p)
{
	if (p == NULL)
		return;
	p->closing = true;
	/* Requests in flight end now, and their calls report (nothing retries while
	 * closing); then the calls waiting for a token or a retry. */
	http_client_close(p->http);
	p->http = NULL;
	p->queue = NULL;
	while (p->calls != NULL) {
		struct call *c = p->calls;

		c->result.verdict = PROVIDER_UNAVAILABLE;
		snprintf(c->result.reason, sizeof(c->result.reason), "%s: the node is stopping",
			 provider_type(p));
		report(c);
	}
	maybe_free(p);
}
