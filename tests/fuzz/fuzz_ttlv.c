/* libFuzzer target for the TTLV codec: the strict decoder, the encoder, the dump and the
 * stream framing.
 *
 * The decoder accepts exactly one encoding of a tree, so whatever it accepts must encode
 * back to the same bytes. Framing must agree with the decoder: a message the decoder
 * accepts is framed, at every prefix, as exactly its own size, and framing never asks a
 * caller to buffer more than max_message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/dump.h"
#include "kmipd/error.h"
#include "kmipd/ttlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

static FILE *devnull(void)
{
	static FILE *f;

	if (f == NULL) {
		f = fopen("/dev/null", "w");
		CHECK(f != NULL);
	}
	return f;
}

/* The depth limit comes from the middle byte of the top-level tag (0x00 in every KMIP
 * tag, hence the default): the fuzzer can pick small limits and values past
 * TTLV_MAX_DEPTH (clamped) without any byte being taken from the message. */
static unsigned pick_depth(const uint8_t *data, size_t size)
{
	return size >= 2 ? data[1] : 0;
}

/* Checks one ttlv_frame_need() answer for the first @have bytes against @max_message
 * (already resolved, never 0). */
static void check_frame(const uint8_t *data, size_t have, size_t max_message, int rv, size_t need,
			size_t total)
{
	if (rv != 0) {
		CHECK(rv == KMIPD_EMALFORMED || rv == KMIPD_ETOO_LARGE);
		CHECK(have >= TTLV_HEADER_SIZE);
		return;
	}
	if (have < TTLV_HEADER_SIZE) {
		CHECK(total == 0);
		CHECK(need == TTLV_HEADER_SIZE - have);
		return;
	}
	/* A complete header: the frame size is known and bounded. */
	CHECK(total >= TTLV_HEADER_SIZE && total <= max_message);
	CHECK(total % 8 == 0);
	CHECK(need == (have >= total ? 0 : total - have));
	CHECK(have + need <= max_message || need == 0);
	CHECK(data[3] == TTLV_STRUCTURE);
}

static void check_framing(const uint8_t *data, size_t size, const struct ttlv_item *root)
{
	const size_t max_message = TTLV_DEFAULT_MAX_MESSAGE;
	struct ttlv_error err;
	size_t need, total;
	int rv;

	/* Whatever the input, every answer on the whole of it is self-consistent. */
	rv = ttlv_frame_need(data, size, 0, &need, &total, &err);
	check_frame(data, size, max_message, rv, need, total);

	if (root == NULL || root->type != TTLV_STRUCTURE)
		return; /* framing is only for messages, which are structures */

	/* The decoder accepted the input: framing takes it whole. */
	CHECK(rv == 0 && need == 0 && total == size);

	/* Every prefix: framing accepts it, never with a total other than the size of the
	 * message, and never asks for bytes past the message or past max_message. */
	for (size_t have = 0; have < size; have++) {
		rv = ttlv_frame_need(data, have, 0, &need, &total, &err);
		CHECK(rv == 0);
		check_frame(data, have, max_message, rv, need, total);
		if (have >= TTLV_HEADER_SIZE)
			CHECK(total == size && have + need == size);
		else
			CHECK(have + need == TTLV_HEADER_SIZE);
	}

	/* Exactly the message's size is allowed, one 8-byte step less is not. */
	rv = ttlv_frame_need(data, size, size, &need, &total, &err);
	CHECK(rv == 0 && need == 0 && total == size);
	if (size > TTLV_HEADER_SIZE) {
		rv = ttlv_frame_need(data, TTLV_HEADER_SIZE, size - 1, &need, &total, &err);
		CHECK(rv == KMIPD_ETOO_LARGE && err.rule == TTLV_RULE_TOO_LARGE);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ttlv_limits limits = {.max_message = 0, .max_depth = pick_depth(data, size)};
	struct arena arena;
	struct ttlv_item *root = NULL;
	struct ttlv_error err;
	struct buf out = BUF_INIT;
	int rv;

	arena_init(&arena, 4096, 0);
	rv = ttlv_decode(data, size, &limits, &arena, &root, &err);
	if (rv != 0) {
		CHECK(rv == KMIPD_EMALFORMED || rv == KMIPD_ETRUNCATED || rv == KMIPD_ETOO_DEEP ||
		      rv == KMIPD_ETOO_LARGE);
		CHECK(root == NULL);
		CHECK(err.rule != TTLV_RULE_OK && err.offset <= size);
		CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
		check_framing(data, size, NULL);
		arena_free(&arena);
		return 0;
	}
	CHECK(root != NULL && root->offset == 0);

	/* One encoding only: the tree encodes back to the very bytes it came from. */
	rv = ttlv_encode(root, &out);
	CHECK(rv == 0);
	CHECK(out.len == size);
	CHECK(memcmp(out.data, data, size) == 0);
	buf_free(&out);

	/* The decoder refuses the same input under a maximum one byte too small. */
	if (size > 1) {
		struct arena small;
		struct ttlv_item *again;

		limits.max_message = size - 1;
		arena_init(&small, 4096, 0);
		CHECK(ttlv_decode(data, size, &limits, &small, &again, NULL) == KMIPD_ETOO_LARGE);
		arena_free(&small);
	}

	kmip_dump(devnull(), root);
	check_framing(data, size, root);
	arena_free(&arena);
	return 0;
}
