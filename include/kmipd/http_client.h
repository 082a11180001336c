/* An HTTPS client for one libuv loop: libcurl's multi interface driven by the loop's poll
 * and timer handles, so a request never blocks the thread that sends it. The root-key
 * providers use it to reach Key Protect and HPCS.
 *
 * Only https URLs are allowed, redirects are not followed, and a response body larger
 * than HTTP_CLIENT_MAX_BODY fails the request. Request and response bodies may carry key
 * material: the client wipes its copies before releasing them. Connections are kept and
 * reused between requests. */
#ifndef KMIPD_HTTP_CLIENT_H
#define KMIPD_HTTP_CLIENT_H

#include <stddef.h>

#include <uv.h>

#include "kmipd/buf.h"

#define HTTP_CLIENT_MAX_BODY (1u << 20)
#define HTTP_CLIENT_HEADERS  8

struct http_client;

/* A client on @loop, verifying servers against the PEM bundle @ca_file (NULL or "": the
 * system's). NULL when out of memory or libcurl cannot start. */
struct http_client *http_client_new(uv_loop_t *loop, const char *ca_file);

/* Cancels every request still in flight (each one's callback runs now, with
 * http_response.error set and status 0) and frees the client once libuv has closed its
 * handles: keep running @loop until then. */
void http_client_close(struct http_client *hc);

struct http_request {
	const char *method; /* "GET" or "POST" */
	const char *url;
	/* "Name: value" lines, NULL-terminated or HTTP_CLIENT_HEADERS at most. */
	const char *headers[HTTP_CLIENT_HEADERS + 1];
	const void *body; /* POST: sent as is; copied, and the copy wiped after the request */
	size_t body_len;
	unsigned timeout_ms; /* the whole request, connection included; 0 = 30 s */
};

struct http_response {
	long status;	    /* the HTTP status; 0 when no response came (see @error) */
	char error[256];    /* why no response came: "Connection refused", "timed out" ... */
	struct buf body;    /* valid during the callback only; wiped afterwards */
	long retry_after_s; /* the Retry-After header in seconds; -1 if none */
	double seconds;	    /* how long the request took */
};

/* Runs on @loop's thread when the request is over, whether it failed or not. */
typedef void (*http_done_fn)(void *arg, const struct http_response *response);

/* Starts @request; @done(@arg, response) runs exactly once, later, on the loop's thread
 * (never before this returns). Everything in @request is copied. 0, KMIPD_ENOMEM or
 * KMIPD_EINVAL (not an https URL); then @done does not run. */
int http_client_send(struct http_client *hc, const struct http_request *request, http_done_fn done,
		     void *arg);

#endif
