/*
 * fuzz_smtp_reply - libFuzzer target for the SMTP reply parser.
 *
 * The input is split in two at a point taken from its first byte and fed
 * in two pieces, so the fuzzer explores replies cut anywhere.  Every
 * reply handed out must have a code of 200..599 and a text within the
 * limits; a failed parser must stay failed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser p;
	const struct smtp_reply *r;
	const char *in, *error;
	size_t split, piece[2];

	if (size == 0)
		return 0;
	split = data[0] % size;
	in = (const char *)data + 1;
	piece[0] = split;
	piece[1] = size - 1 - split;
	smtp_reply_parser_init(&p, 512, 16);
	for (int k = 0; k < 2; k++) {
		size_t len = piece[k];
		int rc;

		while ((rc = smtp_reply_parse(&p, &in, &len, &r, &error)) == 1) {
			if (r->code < 200 || r->code > 599 ||
			    r->text.len > 16 * 513 || r->lines > 16)
				abort();
		}
		if (rc < 0) {
			if (smtp_reply_parse(&p, &in, &len, &r, &error) != -1)
				abort();
			break;
		}
	}
	smtp_reply_parser_free(&p);
	return 0;
}
