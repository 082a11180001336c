/* Human-readable log lines on standard error:
 *
 *     2026-11-23T15:04:05.123Z info  kmipd: listening on 127.0.0.1:5696
 *
 * One line per call, written with a single write so lines from different threads never
 * interleave. Never log key material: log identifiers, names and causes. */
#ifndef KMIPD_LOG_H
#define KMIPD_LOG_H

#include <stdint.h>

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
	LOG_FATAL,
};

/* Lines below @level are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn", "error". 0 or KMIPD_EINVAL. */
int log_level_parse(const char *name, enum log_level *level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Repeats of one complaint (a peer retrying every second) at @level once per @interval_ms
 * per @key, and at debug in between. Not thread-safe: one gate per thread. */
struct log_gate {
	uint64_t interval_ms;
	struct {
		uint64_t key, logged_ms;
	} recent[8];
};

/* The level to log @key's complaint at, at time @now_ms (any monotonic clock). */
enum log_level log_gate_level(struct log_gate *gate, uint64_t key, uint64_t now_ms,
			      enum log_level level);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_fatal(...) log_write(LOG_FATAL, __VA_ARGS__)

#endif
