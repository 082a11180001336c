/* Runs one KMIP request message from standard input through the message layer and writes
 * the response message to standard output: lets tests drive the operation table with an
 * independent client's encoder and check the response with its decoder. */
#include <stdio.h>
#include <time.h>

#include "kmipd/buf.h"
#include "kmipd/error.h"
#include "kmipd/exchange.h"

int main(void)
{
	static const struct kmip_server_identity identity = {"kmipd test"};
	struct kmip_exchange_config config = {.identity = &identity};
	struct buf in = BUF_INIT, out = BUF_INIT;
	uint8_t chunk[4096];
	size_t n;
	int rv;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_append(&in, chunk, n) != 0)
			return 1;
	rv = kmip_process(&config, in.data, in.len, (int64_t)time(NULL), &out);
	if (rv != 0) {
		fprintf(stderr, "kmip_process: %s\n", kmipd_strerror(rv));
		return 1;
	}
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&in);
	buf_free(&out);
	return 0;
}
