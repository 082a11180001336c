/* kmipctl: the command-line tool for operating kmipd. Today it decodes TTLV for people
 * (`kmipctl ttlv decode`); the admin commands join it as the admin API is built. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/dump.h"
#include "kmipd/error.h"
#include "kmipd/ttlv.h"

#define EXIT_USAGE 2

static const char usage_top[] =
	"usage: kmipctl <command> ...\n"
	"\n"
	"commands:\n"
	"  ttlv decode HEX|FILE|-   print a KMIP message (TTLV) with the specification's names\n"
	"\n"
	"Run 'kmipctl <command> --help' for more.\n";

static const char usage_ttlv[] =
	"usage: kmipctl ttlv decode [--max-size BYTES] HEX|FILE|-\n"
	"\n"
	"Decodes one TTLV item (normally a whole KMIP request or response message) and prints\n"
	"it as a tree. The input is a hex string (spaces and colons allowed), a file holding\n"
	"the binary message or its hex, or '-' for standard input. Invalid input is reported\n"
	"with the offset and the rule it breaks, and kmipctl exits with status 1.\n"
	"\n"
	"  --max-size BYTES   refuse messages larger than this (default 1048576)\n";

/* Reads all of @f into @out. */
static int read_all(FILE *f, struct buf *out)
{
	uint8_t chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(out, chunk, n) != 0)
			return KMIPD_ENOMEM;
	return ferror(f) ? -EIO : 0;
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* True if @in is hex text (digits with optional whitespace and colons). */
static bool looks_like_hex(const uint8_t *in, size_t len)
{
	size_t digits = 0;

	for (size_t i = 0; i < len; i++) {
		if (hex_value(in[i]) >= 0)
			digits++;
		else if (in[i] != ' ' && in[i] != '\n' && in[i] != '\r' && in[i] != '\t' &&
			 in[i] != ':')
			return false;
	}
	return digits > 0;
}

/* Converts hex text into bytes; "0x" prefixes, whitespace and colons are skipped. */
static int unhex(const uint8_t *in, size_t len, struct buf *out)
{
	int high = -1;

	for (size_t i = 0; i < len; i++) {
		int v = hex_value(in[i]);

		if (in[i] == '0' && i + 1 < len && (in[i + 1] == 'x' || in[i + 1] == 'X') &&
		    high < 0) {
			i++;
			continue;
		}
		if (v < 0)
			continue;
		if (high < 0) {
			high = v;
		} else {
			uint8_t byte = (uint8_t)(high << 4 | v);

			if (buf_append(out, &byte, 1) != 0)
				return KMIPD_ENOMEM;
			high = -1;
		}
	}
	return high < 0 ? 0 : KMIPD_EMALFORMED;
}

/* Loads the message named by @arg: '-', a file, or hex on the command line. */
static int load_input(const char *arg, struct buf *msg)
{
	struct buf raw = BUF_INIT;
	FILE *f = NULL;
	int rv;

	if (strcmp(arg, "-") == 0) {
		rv = read_all(stdin, &raw);
	} else if ((f = fopen(arg, "rb")) != NULL) {
		rv = read_all(f, &raw);
		fclose(f);
	} else if (looks_like_hex((const uint8_t *)arg, strlen(arg))) {
		rv = buf_append(&raw, arg, strlen(arg));
	} else {
		fprintf(stderr, "kmipctl: '%s' is neither a readable file nor hex: %s\n", arg,
			strerror(errno));
		return KMIPD_EINVAL;
	}
	if (rv == 0 && looks_like_hex(raw.data, raw.len))
		rv = unhex(raw.data, raw.len, msg);
	else if (rv == 0)
		rv = buf_append(msg, raw.data, raw.len);
	if (rv == KMIPD_EMALFORMED)
		fprintf(stderr, "kmipctl: the hex input has an odd number of digits\n");
	else if (rv != 0)
		fprintf(stderr, "kmipctl: reading '%s': %s\n", arg, kmipd_strerror(rv));
	buf_free(&raw);
	return rv;
}

static int cmd_ttlv(int argc, char **argv)
{
	struct ttlv_limits limits = {0};
	struct buf msg = BUF_INIT;
	struct arena arena;
	struct ttlv_item *root;
	struct ttlv_error err;
	const char *input = NULL;
	int i, rv;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_ttlv, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "decode") != 0) {
		fprintf(stderr, "kmipctl ttlv: unknown subcommand '%s'\n\n%s", argv[1], usage_ttlv);
		return EXIT_USAGE;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_ttlv, stdout);
			return 0;
		} else if (strcmp(argv[i], "--max-size") == 0 && i + 1 < argc) {
			char *end;

			limits.max_message = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || limits.max_message == 0) {
				fprintf(stderr, "kmipctl: --max-size needs a positive number\n");
				return EXIT_USAGE;
			}
		} else if (input == NULL) {
			input = argv[i];
		} else {
			fprintf(stderr, "kmipctl ttlv decode: one input only\n\n%s", usage_ttlv);
			return EXIT_USAGE;
		}
	}
	if (input == NULL) {
		fputs(usage_ttlv, stderr);
		return EXIT_USAGE;
	}
	if (load_input(input, &msg) != 0)
		return EXIT_FAILURE;

	arena_init(&arena, 64 * 1024, 0);
	rv = ttlv_decode(msg.data, msg.len, &limits, &arena, &root, &err);
	if (rv == 0)
		kmip_dump(stdout, root);
	else
		fprintf(stderr, "kmipctl: not valid TTLV (%zu bytes): %s\n", msg.len, err.message);
	arena_free(&arena);
	buf_free(&msg);
	return rv == 0 ? 0 : EXIT_FAILURE;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_top, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_top, stdout);
		return 0;
	}
	if (strcmp(argv[1], "ttlv") == 0)
		return cmd_ttlv(argc - 1, argv + 1);
	fprintf(stderr, "kmipctl: unknown command '%s'\n\n%s", argv[1], usage_top);
	return EXIT_USAGE;
}
