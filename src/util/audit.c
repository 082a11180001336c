/* The audit trail (see include/kmipd/audit.h): per-thread buffers of JSON lines, written
 * to one file descriptor under a mutex. */
#include "kmipd/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/log.h"

#define FLUSH_AT 16384

static struct {
	pthread_mutex_t lock; /* guards fd and path */
	int fd;		      /* -1: closed */
	char *path;	      /* NULL for standard output */
	uint64_t node;
	atomic_bool enabled;
	pthread_key_t key; /* this thread's struct buf */
	pthread_once_t once;
} sink = {PTHREAD_MUTEX_INITIALIZER, -1, NULL, 0, false, 0, PTHREAD_ONCE_INIT};

static void write_all(const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&sink.lock);
	while (len > 0 && sink.fd >= 0) {
		ssize_t n = write(sink.fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("audit: writing to %s failed: %s; events are being lost",
				  sink.path != NULL ? sink.path : "standard output",
				  strerror(errno));
			break;
		}
		data += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&sink.lock);
}

/* A thread ends: what it buffered is written, then its buffer freed. */
static void thread_done(void *p)
{
	struct buf *b = p;

	if (b->len > 0)
		write_all(b->data, b->len);
	buf_free(b);
	free(b);
}

static void make_key(void)
{
	pthread_key_create(&sink.key, thread_done);
}

static struct buf *thread_buf(void)
{
	struct buf *b;

	pthread_once(&sink.once, make_key);
	b = pthread_getspecific(sink.key);
	if (b == NULL && (b = calloc(1, sizeof(*b))) != NULL &&
	    pthread_setspecific(sink.key, b) != 0) {
		free(b);
		b = NULL;
	}
	return b;
}

static int open_path(const char *path, int *fd)
{
	*fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	return *fd < 0 ? -errno : 0;
}

int audit_open(const char *path, uint64_t node, char *errmsg, size_t errlen)
{
	int fd = STDOUT_FILENO, rc;

	if (path == NULL || path[0] == '\0')
		return 0;
	if (strcmp(path, "-") != 0 && (rc = open_path(path, &fd)) != 0) {
		snprintf(errmsg, errlen, "audit file %s: %s", path, strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&sink.lock);
	sink.fd = fd;
	free(sink.path);
	sink.path = strcmp(path, "-") != 0 ? strdup(path) : NULL;
	sink.node = node;
	pthread_mutex_unlock(&sink.lock);
	atomic_store(&sink.enabled, true);
	return 0;
}

bool audit_enabled(void)
{
	return atomic_load_explicit(&sink.enabled, memory_order_relaxed);
}

/* Appends @s as a JSON string (quoted, escaped). */
static int put_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int rc = buf_append(b, "\"", 1);

	for (; rc == 0 && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};

			rc = buf_append(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

			rc = buf_append(b, esc, 6);
		} else {
			rc = buf_append(b, &c, 1);
		}
	}
	return rc == 0 ? buf_append(b, "\"", 1) : rc;
}

static int put_field(struct buf *b, const char *name, const char *value)
{
	if (value == NULL)
		return 0;
	if (buf_printf(b, ",\"%s\":", name) != 0)
		return KMIPD_ENOMEM;
	return put_string(b, value);
}

void audit_log(const struct audit_event *e)
{
	struct buf *b;
	struct timeval tv;
	struct tm tm;
	size_t start;
	int rc;

	if (!audit_enabled() || (b = thread_buf()) == NULL)
		return;
	start = b->len;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	rc = buf_printf(b,
			"{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"node\":%llu,"
			"\"kind\":\"%s\"",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec, (int)(tv.tv_usec / 1000), (unsigned long long)sink.node,
			e->kind != NULL ? e->kind : "kmip");
	rc |= put_field(b, "tenant", e->tenant);
	rc |= put_field(b, "client", e->client);
	rc |= put_field(b, "cert", e->cert);
	rc |= put_field(b, "source", e->source);
	rc |= put_field(b, "operation", e->operation);
	rc |= put_field(b, "uid", e->uid);
	rc |= put_field(b, "result", e->result);
	rc |= put_field(b, "reason", e->reason);
	rc |= put_field(b, "message", e->message);
	rc |= put_field(b, "correlation", e->correlation);
	rc |= buf_append(b, "}\n", 2);
	if (rc != 0) {
		b->len = start; /* out of memory: drop this event whole, not half of it */
		return;
	}
	if (b->len >= FLUSH_AT)
		audit_flush();
}

void audit_flush(void)
{
	struct buf *b;

	if (!audit_enabled())
		return;
	pthread_once(&sink.once, make_key);
	b = pthread_getspecific(sink.key);
	if (b == NULL || b->len == 0)
		return;
	write_all(b->data, b->len);
	buf_clear(b);
}

int audit_reopen(void)
{
	int fd, rc;

	pthread_mutex_lock(&sink.lock);
	if (sink.path == NULL || sink.fd < 0) {
		pthread_mutex_unlock(&sink.lock);
		return 0;
	}
	rc = open_path(sink.path, &fd);
	if (rc == 0) {
		close(sink.fd);
		sink.fd = fd;
		log_info("audit: reopened %s", sink.path);
	} else {
		log_error("audit: reopening %s failed: %s; still writing to the old file",
			  sink.path, strerror(-rc));
	}
	pthread_mutex_unlock(&sink.lock);
	return rc;
}

void audit_close(void)
{
	audit_flush();
	atomic_store(&sink.enabled, false);
	pthread_mutex_lock(&sink.lock);
	if (sink.fd >= 0 && sink.fd != STDOUT_FILENO)
		close(sink.fd);
	sink.fd = -1;
	free(sink.path);
	sink.path = NULL;
	pthread_mutex_unlock(&sink.lock);
}
