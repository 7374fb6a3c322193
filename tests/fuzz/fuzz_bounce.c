/*
 * fuzz_bounce - libFuzzer target for bounce_parse (and the MIME reader
 * under it).  Promises checked on every input:
 *   - no crash, no read outside the input (it is not NUL ended);
 *   - every address reported is bytes of the input or of one of its
 *     parts decoded (the parser never builds an address);
 *   - counts within their limits, strings NUL ended within their size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "mailmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bounce_report report;
static struct mailmsg mime;
static struct buf decoded;

/* literal - s is empty, or in the input, or in a decoded part */
static void literal(const char *in, size_t size, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n == max)
		abort();	/* not NUL ended */
	if (n == 0 || memmem(in, size, s, n) != NULL ||
	    memmem(buf_cstr(&decoded), decoded.len, s, n) != NULL)
		return;
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct bounce_report *r = &report;

	bounce_parse(in, size, r);
	if (r->nrcpts > BOUNCE_RCPTS_MAX || r->nverp > BOUNCE_VERP_MAX ||
	    r->kind > BOUNCE_TEXT)
		abort();
	buf_reset(&decoded);
	mailmsg_parse(&mime, in, size);
	if (mime.nparts > MAILMSG_PARTS_MAX)
		abort();
	for (size_t i = 0; i < mime.nparts; i++) {
		if (mime.parts[i].depth > MAILMSG_DEPTH_MAX)
			abort();
		mailmsg_decode(&mime.parts[i], &decoded);
	}
	for (size_t i = 0; i < r->nverp; i++)
		literal(in, size, r->verp[i], BOUNCE_ADDR_MAX);
	for (size_t i = 0; i < r->nrcpts; i++) {
		literal(in, size, r->rcpts[i].final_rcpt, BOUNCE_ADDR_MAX);
		literal(in, size, r->rcpts[i].original_rcpt, BOUNCE_ADDR_MAX);
		if (strnlen(r->rcpts[i].diagnostic, BOUNCE_TEXT_MAX) ==
		    BOUNCE_TEXT_MAX)
			abort();
	}
	literal(in, size, r->orig_to, BOUNCE_ADDR_MAX);
	literal(in, size, r->orig_from, BOUNCE_ADDR_MAX);
	literal(in, size, r->orig_message_id, BOUNCE_ID_MAX);
	literal(in, size, r->message_id, BOUNCE_ID_MAX);
	literal(in, size, r->arf.original_rcpt_to, BOUNCE_ADDR_MAX);
	literal(in, size, r->arf.original_mail_from, BOUNCE_ADDR_MAX);
	return 0;
}
