/* kmipctl: the command-line tool for operating kmipd. It decodes TTLV for people
 * (`kmipctl ttlv decode`) and issues client certificates from a node's CA
 * (`kmipctl --data-dir DIR issue-client`); the admin commands join it as the admin API
 * is built. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "kmipd/arena.h"
#include "kmipd/buf.h"
#include "kmipd/credentials.h"
#include "kmipd/dump.h"
#include "kmipd/error.h"
#include "kmipd/pki.h"
#include "kmipd/ttlv.h"

#define EXIT_USAGE 2

static const char usage_top[] =
	"usage: kmipctl [--data-dir DIR] <command> ...\n"
	"\n"
	"commands:\n"
	"  ttlv decode HEX|FILE|-   print a KMIP message (TTLV) with the specification's names\n"
	"  issue-client             issue a client certificate from the node's CA\n"
	"  hash-password            print the credentials-file hash of a password (stdin)\n"
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

static const char usage_issue[] =
	"usage: kmipctl --data-dir DIR issue-client --tenant NAME --name CLIENT --out OUTDIR\n"
	"\n"
	"Writes OUTDIR/CLIENT.pem and OUTDIR/CLIENT-key.pem (mode 0600): a certificate and key\n"
	"for client CLIENT of tenant NAME, signed by the CA in DIR/pki. The node trusts the\n"
	"CA's word: the tenant is created on the client's first connection if it does not\n"
	"exist, without a restart. Names are 1-64 characters of A-Z a-z 0-9 . _ -\n";

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

static int cmd_issue_client(const char *data_dir, int argc, char **argv)
{
	const char *tenant = NULL, *name = NULL, *out = NULL;
	char pki[4096], cert[4096], key[4096], errmsg[512];
	int rv;

	for (int i = 1; i < argc; i++) {
		const char **field = strcmp(argv[i], "--tenant") == 0 ? &tenant
				     : strcmp(argv[i], "--name") == 0 ? &name
				     : strcmp(argv[i], "--out") == 0  ? &out
								      : NULL;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_issue, stdout);
			return 0;
		}
		if (field == NULL || i + 1 >= argc) {
			fprintf(stderr, "kmipctl issue-client: unexpected '%s'\n\n%s", argv[i],
				usage_issue);
			return EXIT_USAGE;
		}
		*field = argv[++i];
	}
	if (data_dir == NULL || tenant == NULL || name == NULL || out == NULL) {
		fprintf(stderr,
			"kmipctl issue-client: --data-dir, --tenant, --name and --out are "
			"all required\n\n%s",
			usage_issue);
		return EXIT_USAGE;
	}
	if (!pki_name_valid(tenant) || !pki_name_valid(name)) {
		fprintf(stderr,
			"kmipctl issue-client: '%s' is not a valid name (1-64 characters "
			"of A-Z a-z 0-9 . _ -)\n",
			pki_name_valid(tenant) ? name : tenant);
		return EXIT_USAGE;
	}
	if (mkdir(out, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kmipctl issue-client: creating %s: %s\n", out, strerror(errno));
		return 1;
	}
	snprintf(pki, sizeof(pki), "%s/pki", data_dir);
	snprintf(cert, sizeof(cert), "%s/%s.pem", out, name);
	snprintf(key, sizeof(key), "%s/%s-key.pem", out, name);
	rv = pki_issue_client(pki, tenant, name, cert, key, errmsg, sizeof(errmsg));
	if (rv != 0) {
		fprintf(stderr, "kmipctl issue-client: %s\n", errmsg);
		return 1;
	}
	printf("%s\n%s\n", cert, key);
	return 0;
}

/* Reads a password (one line) from standard input and prints its credentials-file hash. */
static int cmd_hash_password(void)
{
	char line[1024], hash[72];
	size_t len;

	if (fgets(line, sizeof(line), stdin) == NULL) {
		fprintf(stderr, "kmipctl hash-password: no password on standard input\n");
		return EXIT_USAGE;
	}
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (len == 0) {
		fprintf(stderr, "kmipctl hash-password: the password is empty\n");
		return EXIT_USAGE;
	}
	credential_hash(line, hash);
	OPENSSL_cleanse(line, sizeof(line));
	printf("%s\n", hash);
	return 0;
}

int main(int argc, char **argv)
{
	const char *data_dir = NULL;

	if (argc >= 3 && strcmp(argv[1], "--data-dir") == 0) {
		data_dir = argv[2];
		argc -= 2;
		argv += 2;
	}
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
	if (strcmp(argv[1], "hash-password") == 0)
		return cmd_hash_password();
	if (strcmp(argv[1], "issue-client") == 0)
		return cmd_issue_client(data_dir, argc - 1, argv + 1);
	fprintf(stderr, "kmipctl: unknown command '%s'\n\n%s", argv[1], usage_top);
	return EXIT_USAGE;
}
