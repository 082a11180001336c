/* Error codes shared by every kmipd module.
 *
 * Functions return int: 0 on success, a negative KMIPD_E* code on failure. System call
 * failures are passed through as -errno (as libuv does), so a code below -KMIPD_ERRNO_MAX
 * is always one of ours and kmipd_strerror() describes both kinds. */
#ifndef KMIPD_ERROR_H
#define KMIPD_ERROR_H

#define KMIPD_ERRNO_MAX 4095

/* X(name, text) — the one table of kmipd's own error codes. */
#define KMIPD_ERRORS(X)                                             \
	X(NOMEM, "out of memory")                                   \
	X(INVAL, "invalid argument")                                \
	X(TRUNCATED, "input ends before the item does")             \
	X(MALFORMED, "malformed input")                             \
	X(TOO_LARGE, "message exceeds the configured maximum size") \
	X(TOO_DEEP, "structures nested beyond the limit")           \
	X(NOT_FOUND, "not found")                                   \
	X(EXISTS, "already exists")                                 \
	X(UNSUPPORTED, "not supported")                             \
	X(RANGE, "value out of range")                              \
	X(IO, "input/output error")                                 \
	X(CRYPTO, "cryptographic failure")                          \
	X(PERMISSION, "permission denied")                          \
	X(STATE, "operation not allowed in the current state")      \
	X(AGAIN, "try again later")                                 \
	X(CANCELED, "operation canceled")                           \
	X(NO_QUORUM, "the cluster has no quorum")                   \
	X(NO_SPACE, "storage is full")                              \
	X(CORRUPT, "stored data is corrupt")                        \
	X(UNAVAILABLE, "the root key provider cannot be reached")

enum {
	KMIPD_OK = 0,
	KMIPD_EBASE_ = -10000, /* ours run upwards from -9999 */
#define KMIPD_ERROR_ENUM_(name, text) KMIPD_E##name,
	KMIPD_ERRORS(KMIPD_ERROR_ENUM_)
#undef KMIPD_ERROR_ENUM_
		KMIPD_ELAST_
};

/* Returns a static description of @code: a KMIPD_E* code, a negated errno value, or 0. */
const char *kmipd_strerror(int code);

#endif
