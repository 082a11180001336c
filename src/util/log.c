/* Log lines on standard error; see log.h. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kmipd/error.h"
#include "kmipd/log.h"

static atomic_int min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

void log_set_level(enum log_level level)
{
	atomic_store(&min_level, (int)level);
}

int log_level_parse(const char *name, enum log_level *level)
{
	for (int i = LOG_DEBUG; i < LOG_FATAL; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return KMIPD_EINVAL;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	struct timespec now;
	struct tm tm;
	size_t n;
	va_list ap;
	int written;

	if ((int)level < atomic_load(&min_level))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	written = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ", now.tv_nsec / 1000000,
			   level_names[level]);
	n += written > 0 ? (size_t)written : 0;
	va_start(ap, fmt);
	written = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (written < 0)
		written = 0;
	n += (size_t)written;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	line[n++] = '\n';
	/* One write(2): lines from different threads do not interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

enum log_level log_gate_level(struct log_gate *gate, uint64_t key, uint64_t now_ms,
			      enum log_level level)
{
	size_t n = sizeof(gate->recent) / sizeof(gate->recent[0]), slot = 0;

	for (size_t i = 0; i < n; i++) {
		if (gate->recent[i].logged_ms != 0 && gate->recent[i].key == key) {
			if (now_ms < gate->recent[i].logged_ms + gate->interval_ms)
				return LOG_DEBUG;
			slot = i;
			break;
		}
		if (gate->recent[i].logged_ms < gate->recent[slot].logged_ms)
			slot = i; /* else the oldest makes room */
	}
	gate->recent[slot].key = key;
	gate->recent[slot].logged_ms = now_ms != 0 ? now_ms : 1;
	return level;
}
