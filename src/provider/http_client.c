/* libcurl's multi interface on a libuv loop: curl says which sockets to watch and when to
 * wake it (the socket and timer callbacks), the loop tells curl what happened
 * (curl_multi_socket_action), and finished transfers are collected after each call. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "kmipd/error.h"
#include "kmipd/http_client.h"

struct http_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	char *ca_file;
	struct transfer *transfers; /* in flight, for close */
	unsigned handles_open;	    /* the timer and poll handles not yet closed */
	bool closing;
};

/* One request in flight. */
struct transfer {
	struct http_client *hc;
	CURL *easy;
	struct curl_slist *headers;
	struct buf body; /* the request body (wiped when freed) */
	struct http_response response;
	http_done_fn done;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
	struct transfer *prev, *next;
};

/* A socket curl asked us to watch. */
struct watch {
	uv_poll_t poll;
	struct http_client *hc;
	curl_socket_t fd;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void maybe_free(struct http_client *hc)
{
	if (hc->closing && hc->handles_open == 0 && hc->transfers == NULL) {
		free(hc->ca_file);
		free(hc);
	}
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct http_client *hc = handle->data;

	if (handle->type == UV_POLL)
		free(handle);
	hc->handles_open--;
	maybe_free(hc);
}

static void transfer_free(struct transfer *t)
{
	struct http_client *hc = t->hc;

	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		hc->transfers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	curl_multi_remove_handle(hc->multi, t->easy);
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	buf_free(&t->body);
	buf_free(&t->response.body);
	free(t);
}

/* Hands the finished transfer's outcome to its owner. */
static void finish(struct transfer *t, CURLcode code)
{
	struct http_response *r = &t->response;
	double seconds = 0;

	if (code == CURLE_OK) {
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r->status);
	} else {
		r->status = 0;
		snprintf(r->error, sizeof(r->error), "%s",
			 t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(code));
	}
	curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &seconds);
	r->seconds = seconds;
	t->done(t->arg, r);
	transfer_free(t);
}

static void collect(struct http_client *hc)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(hc->multi, &left)) != NULL) {
		struct transfer *t = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		finish(t, msg->data.result);
	}
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
	struct watch *w = handle->data;
	struct http_client *hc = w->hc;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(hc->multi, w->fd, flags, &running);
	collect(hc);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_client *hc = userp;
	struct watch *w = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (w != NULL) {
			uv_poll_stop(&w->poll);
			w->poll.data = hc;
			uv_close((uv_handle_t *)&w->poll, on_handle_closed);
			curl_multi_assign(hc->multi, fd, NULL);
		}
		return 0;
	}
	if (w == NULL) {
		w = calloc(1, sizeof(*w));
		if (w == NULL || uv_poll_init_socket(hc->loop, &w->poll, fd) != 0) {
			free(w);
			return -1;
		}
		hc->handles_open++;
		w->hc = hc;
		w->fd = fd;
		w->poll.data = w;
		curl_multi_assign(hc->multi, fd, w);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	uv_poll_start(&w->poll, events, on_poll);
	return 0;
}

static void on_timeout(uv_timer_t *timer)
{
	struct http_client *hc = timer->data;
	int running;

	curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(hc);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *hc = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&hc->timer);
	else
		uv_timer_start(&hc->timer, on_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

struct http_client *http_client_new(uv_loop_t *loop, const char *ca_file)
{
	struct http_client *hc;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return NULL;
	hc = calloc(1, sizeof(*hc));
	if (hc == NULL)
		return NULL;
	hc->loop = loop;
	if (ca_file != NULL && ca_file[0] != '\0' && (hc->ca_file = strdup(ca_file)) == NULL)
		goto err;
	hc->multi = curl_multi_init();
	if (hc->multi == NULL)
		goto err;
	curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
	curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
	uv_timer_init(loop, &hc->timer);
	hc->timer.data = hc;
	hc->handles_open = 1;
	return hc;
err:
	free(hc->ca_file);
	free(hc);
	return NULL;
}

void http_client_close(struct http_client *hc)
{
	if (hc == NULL)
		return;
	hc->closing = true;
	while (hc->transfers != NULL) {
		struct transfer *t = hc->transfers;

		snprintf(t->errbuf, sizeof(t->errbuf), "the client is closing");
		finish(t, CURLE_ABORTED_BY_CALLBACK);
	}
	/* Removing the last easy handles made curl ask to stop watching their sockets, so
	 * every poll handle is closing now. */
	curl_multi_cleanup(hc->multi);
	hc->multi = NULL;
	uv_close((uv_handle_t *)&hc->timer, on_handle_closed);
}

/* libcurl's write callback: the response body, refused past HTTP_CLIENT_MAX_BODY. */
static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
	struct transfer *t = userp;
	size_t len = size * n;

	if (t->response.body.len + len > HTTP_CLIENT_MAX_BODY ||
	    buf_append(&t->response.body, data, len) != 0)
		return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
	return len;
}

/* libcurl's header callback: only Retry-After matters. */
static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
	static const char name[] = "retry-after:";
	struct transfer *t = userp;
	size_t len = size * n;
	char value[64];
	size_t vlen;
	char *end;
	long secs;

	if (len <= sizeof(name) - 1 || strncasecmp(data, name, sizeof(name) - 1) != 0)
		return len;
	vlen = len - (sizeof(name) - 1);
	if (vlen >= sizeof(value))
		return len;
	memcpy(value, data + sizeof(name) - 1, vlen);
	value[vlen] = '\0';
	while (vlen > 0 && (value[vlen - 1] == '\r' || value[vlen - 1] == '\n'))
		value[--vlen] = '\0';
	secs = strtol(value, &end, 10);
	if (end != value && *end == '\0' && secs >= 0) {
		t->response.retry_after_s = secs;
	} else {
		time_t when = curl_getdate(value + strspn(value, " "), NULL);
		time_t now = time(NULL);

		if (when != -1)
			t->response.retry_after_s = when > now ? (long)(when - now) : 0;
	}
	return len;
}

int http_client_send(struct http_client *hc, const struct http_request *request, http_done_fn done,
		     void *arg)
{
	struct transfer *t;
	CURLMcode mc;

	if (hc->closing || strncmp(request->url, "https://", 8) != 0)
		return KMIPD_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return KMIPD_ENOMEM;
	t->hc = hc;
	t->done = done;
	t->arg = arg;
	t->response.retry_after_s = -1;
	t->easy = curl_easy_init();
	if (t->easy == NULL)
		goto nomem;
	for (unsigned i = 0; i < HTTP_CLIENT_HEADERS && request->headers[i] != NULL; i++) {
		struct curl_slist *more = curl_slist_append(t->headers, request->headers[i]);

		if (more == NULL)
			goto nomem;
		t->headers = more;
	}
	if (request->body_len > 0 && buf_append(&t->body, request->body, request->body_len) != 0)
		goto nomem;

	curl_easy_setopt(t->easy, CURLOPT_URL, request->url);
	curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(t->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS,
			 (long)(request->timeout_ms != 0 ? request->timeout_ms : 30000));
	curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
	if (hc->ca_file != NULL)
		curl_easy_setopt(t->easy, CURLOPT_CAINFO, hc->ca_file);
	if (strcmp(request->method, "POST") == 0) {
		curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
		/* Not copied by curl: the buffer is ours to wipe. */
		curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS,
				 t->body.len ? (char *)t->body.data : "");
		curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, (long)t->body.len);
	} else if (strcmp(request->method, "GET") != 0) {
		curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, request->method);
	}

	t->next = hc->transfers;
	if (t->next != NULL)
		t->next->prev = t;
	hc->transfers = t;
	mc = curl_multi_add_handle(hc->multi, t->easy);
	if (mc != CURLM_OK) {
		hc->transfers = t->next;
		if (t->next != NULL)
			t->next->prev = NULL;
		t->next = NULL;
		goto nomem;
	}
	return 0;
nomem:
	if (t->easy != NULL)
		curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	buf_free(&t->body);
	free(t);
	return KMIPD_ENOMEM;
}
