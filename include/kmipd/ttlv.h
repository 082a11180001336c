/* TTLV, the binary encoding of KMIP: decoding a message into a tree, encoding a tree or a
 * stream of items into a buffer, and framing messages on a byte stream.
 *
 * Every item is Tag (3 bytes), Type (1), Length (4, big-endian) and a value padded with
 * zeros to a multiple of 8 bytes. The decoder is strict: it accepts exactly what the
 * specification allows and reports the first violation with its offset and the rule. */
#ifndef KMIPD_TTLV_H
#define KMIPD_TTLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"

enum ttlv_type {
	TTLV_STRUCTURE = 0x01,
	TTLV_INTEGER = 0x02,
	TTLV_LONG_INTEGER = 0x03,
	TTLV_BIG_INTEGER = 0x04,
	TTLV_ENUMERATION = 0x05,
	TTLV_BOOLEAN = 0x06,
	TTLV_TEXT_STRING = 0x07,
	TTLV_BYTE_STRING = 0x08,
	TTLV_DATE_TIME = 0x09,
	TTLV_INTERVAL = 0x0A,
};

#define TTLV_HEADER_SIZE	 8
#define TTLV_DEFAULT_MAX_MESSAGE (1024 * 1024)
#define TTLV_DEFAULT_MAX_DEPTH	 16
#define TTLV_MAX_DEPTH		 64 /* the hard upper bound for any configured depth */

/* The name of @type ("Structure", "Text String"), or NULL if @type is not a TTLV type. */
const char *ttlv_type_name(unsigned type);

/* One decoded item. Strings and big integers point into the buffer that was decoded, which
 * must therefore outlive the tree (the tree is a view, like an LMDB value). */
struct ttlv_item {
	uint32_t tag;
	uint8_t type;		/* enum ttlv_type */
	uint32_t length;	/* value length as encoded, without padding */
	size_t offset;		/* where the item starts in the decoded buffer */
	struct ttlv_item *next; /* next sibling, NULL for the last */
	union {
		int32_t integer;
		int64_t long_integer;
		uint32_t enumeration;
		bool boolean;
		int64_t date_time;    /* seconds since the epoch */
		uint32_t interval;    /* seconds */
		const uint8_t *bytes; /* text (not NUL-terminated), byte string, big integer */
		struct {
			struct ttlv_item *first;
			struct ttlv_item *last;
			uint32_t count;
		} children;
	} v;
};

/* Why a message was rejected: X(NAME, description of the rule). */
#define TTLV_RULES(X)                                                                     \
	X(OK, "no error")                                                                 \
	X(SHORT_HEADER, "fewer than 8 bytes left for an item header")                     \
	X(BAD_TAG, "tag outside the KMIP ranges 0x42xxxx and 0x54xxxx")                   \
	X(BAD_TYPE, "unknown item type")                                                  \
	X(BAD_LENGTH, "length not allowed for the item type")                             \
	X(PAST_END, "value extends past the end of its enclosing structure or the input") \
	X(PADDING, "non-zero padding byte")                                               \
	X(BAD_BOOLEAN, "boolean value other than 0 or 1")                                 \
	X(BAD_UTF8, "text string is not valid UTF-8")                                     \
	X(TOO_DEEP, "structures nested beyond the depth limit")                           \
	X(TOO_LARGE, "message larger than the configured maximum")                        \
	X(NOT_STRUCTURE, "a message must be a single structure")                          \
	X(TRAILING, "bytes after the end of the message")                                 \
	X(NO_MEMORY, "out of memory for the decoded tree")

enum ttlv_rule {
#define TTLV_RULE_ENUM_(name, text) TTLV_RULE_##name,
	TTLV_RULES(TTLV_RULE_ENUM_)
#undef TTLV_RULE_ENUM_
};

/* A rejection: the rule, the offset of the offending byte, the tag of the item being read
 * (0 if none could be read) and a sentence for a person ("offset 24 (tag 0x420069): ..."). */
struct ttlv_error {
	enum ttlv_rule rule;
	size_t offset;
	uint32_t tag;
	char message[192];
};

/* The description of @rule, as in TTLV_RULES. */
const char *ttlv_rule_text(enum ttlv_rule rule);

struct ttlv_limits {
	size_t max_message; /* whole message, header included; 0 = TTLV_DEFAULT_MAX_MESSAGE */
	unsigned max_depth; /* 0 = TTLV_DEFAULT_MAX_DEPTH; at most TTLV_MAX_DEPTH */
};

/* Decodes the single item (normally one Request or Response Message structure) that
 * fills @data exactly. The tree is allocated from @arena and borrows @data. @limits may
 * be NULL for the defaults.
 *
 * Returns 0 and sets *root, or KMIPD_EMALFORMED / KMIPD_ETRUNCATED / KMIPD_ETOO_LARGE /
 * KMIPD_ETOO_DEEP / KMIPD_ENOMEM with @err filled in (@err may be NULL). On error nothing
 * useful is left in the arena; reset it. */
int ttlv_decode(const uint8_t *data, size_t len, const struct ttlv_limits *limits,
		struct arena *arena, struct ttlv_item **root, struct ttlv_error *err);

/* Framing on a byte stream. Given the first @have bytes of a message, sets *need to how
 * many more bytes must arrive before the message is complete (0: complete; its total size
 * is then in *total, and bytes beyond it belong to the next message). Until the 8-byte
 * header is in, *need counts only what the header still lacks. Checks the header as soon
 * as it is complete: it must be a Structure whose length is a multiple of 8 and keeps the
 * message within @max_message (0 = default), so a peer can never make the caller buffer
 * more than that. 0 on success; KMIPD_EMALFORMED or KMIPD_ETOO_LARGE with @err set. */
int ttlv_frame_need(const uint8_t *data, size_t have, size_t max_message, size_t *need,
		    size_t *total, struct ttlv_error *err);

/* Walking a decoded tree. All return NULL / false when nothing matches. */

/* The first child of structure @parent with @tag. */
const struct ttlv_item *ttlv_child(const struct ttlv_item *parent, uint32_t tag);

/* The next sibling after @item with the same tag (for repeated fields). */
const struct ttlv_item *ttlv_next_same(const struct ttlv_item *item);

/* True if text string @item equals the NUL-terminated @s. */
bool ttlv_text_equals(const struct ttlv_item *item, const char *s);

/* Tree construction, for building messages in tests and tools. Nodes are allocated from
 * @arena; strings are copied. Return NULL when out of memory. */
struct ttlv_item *ttlv_new(struct arena *arena, uint32_t tag, enum ttlv_type type);
struct ttlv_item *ttlv_new_bytes(struct arena *arena, uint32_t tag, enum ttlv_type type,
				 const void *data, size_t len);
/* Appends @child to structure @parent. */
void ttlv_append(struct ttlv_item *parent, struct ttlv_item *child);

/* Encoding. A writer appends items to a buffer; structures are opened with ttlv_begin()
 * and closed with ttlv_end(), which fills in their length. Errors are sticky: after the
 * first one every call does nothing and ttlv_writer_finish() reports it, so encoding code
 * needs no check after every item. */
struct ttlv_writer {
	struct buf *out;
	size_t start; /* out->len when the writer began */
	int error;
	unsigned depth;
	size_t open[TTLV_MAX_DEPTH]; /* offsets of the headers of open structures */
};

/* Starts writing at the end of @out (existing contents are kept). */
void ttlv_writer_init(struct ttlv_writer *w, struct buf *out);

void ttlv_begin(struct ttlv_writer *w, uint32_t tag);
void ttlv_end(struct ttlv_writer *w);
void ttlv_put_integer(struct ttlv_writer *w, uint32_t tag, int32_t value);
void ttlv_put_long(struct ttlv_writer *w, uint32_t tag, int64_t value);
/* @value is big-endian two's complement; it is sign-extended to a multiple of 8 bytes. */
void ttlv_put_big(struct ttlv_writer *w, uint32_t tag, const uint8_t *value, size_t len);
void ttlv_put_enum(struct ttlv_writer *w, uint32_t tag, uint32_t value);
void ttlv_put_bool(struct ttlv_writer *w, uint32_t tag, bool value);
void ttlv_put_text(struct ttlv_writer *w, uint32_t tag, const char *text, size_t len);
void ttlv_put_cstr(struct ttlv_writer *w, uint32_t tag, const char *text);
void ttlv_put_bytes(struct ttlv_writer *w, uint32_t tag, const void *data, size_t len);
void ttlv_put_datetime(struct ttlv_writer *w, uint32_t tag, int64_t seconds);
void ttlv_put_interval(struct ttlv_writer *w, uint32_t tag, uint32_t seconds);

/* Writes @item and, for a structure, everything below it. */
void ttlv_put_item(struct ttlv_writer *w, const struct ttlv_item *item);

/* Writes @item again under another tag (Attribute Value carrying a typed value). */
void ttlv_put_item_as(struct ttlv_writer *w, uint32_t tag, const struct ttlv_item *item);

/* 0 if everything was written and every structure closed; else the first error
 * (KMIPD_ENOMEM, KMIPD_ETOO_DEEP, KMIPD_ETOO_LARGE, KMIPD_EINVAL), and whatever this
 * writer appended is wiped and removed from the buffer. */
int ttlv_writer_finish(struct ttlv_writer *w);

/* Encodes a whole tree into @out (appending). 0 or an error as above. */
int ttlv_encode(const struct ttlv_item *root, struct buf *out);

#endif
