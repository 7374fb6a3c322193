/*
 * fuzz_smtp_session - libFuzzer target for the SMTP session: the input is
 * everything a server says, fed in pieces whose sizes come from the input
 * itself.  On READY two messages are submitted, with BDAT when the first
 * byte says so and the server offers CHUNKING.  Whatever the server
 * says, the session must never report a transaction sent unless one of
 * its recipients was accepted in it (a message the server takes in
 * several transactions, "too many recipients", has a DONE each, all but
 * the last with "more"), never report a message after its last DONE,
 * never give a recipient two RCPT events, and - with STARTTLS and AUTH
 * configured, chosen by the first byte - never write a credential before
 * the TLS handshake.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *rcpts[] = { "a@x.example", "b@x.example" };
	struct smtp_session_params p = { .helo_name = "fuzz.example",
					 .pipelining = true };
	bool secure = false, with_tls = size > 0 && (data[0] & 1);
	struct smtp_message m[2] = {
		{ .from = "s@x.example", .rcpts = rcpts, .nrcpts = 2,
		  .data = "BODY-ONE\r\n", .len = 10, .ctx = (void *)1 },
		{ .from = "s@x.example", .rcpts = rcpts, .nrcpts = 1,
		  .data = "BODY-TWO\r\n", .len = 10, .ctx = (void *)2 },
	};
	struct smtp_session *s;
	/* a recipient accepted since the message's last DONE */
	bool accepted[3] = { false, false, false };
	int done[3] = { 0, 0, 0 };
	int rcpt_events[3][2] = { { 0, 0 }, { 0, 0 }, { 0, 0 } };
	size_t pos = 0;

	p.chunking = size > 0 && (data[0] & 2);
	p.chunking_window = 1 + (size > 0 ? (data[0] >> 2) % 3 : 0);
	if (with_tls) {
		p.tls = SMTP_TLS_STARTTLS;
		p.username = "user";
		p.password = "SECRET-PASSWORD";
	}
	s = smtp_session_new(&p);
	while (pos < size) {
		size_t n = (size_t)data[pos] % 64 + 1;
		const char *out;
		size_t outlen;
		struct smtp_event ev;

		pos++;
		if (n > size - pos)
			n = size - pos;
		smtp_session_feed(s, (const char *)data + pos, n);
		pos += n;
		while (smtp_session_event(s, &ev)) {
			intptr_t k = (intptr_t)ev.ctx;

			if (ev.kind == SMTP_EV_STARTTLS) {
				smtp_session_tls_done(s);
				secure = true;
			} else if (ev.kind == SMTP_EV_READY) {
				smtp_session_submit(s, &m[0]);
				smtp_session_submit(s, &m[1]);
			} else if (ev.kind == SMTP_EV_RCPT) {
				if (ev.rcpt > 1 || ++rcpt_events[k][ev.rcpt] > 1)
					abort();
				if (ev.code / 100 == 2)
					accepted[k] = true;
			} else if (ev.kind == SMTP_EV_DONE) {
				if (done[k] > 0 || (ev.sent && !accepted[k]))
					abort();
				accepted[k] = false;
				if (!ev.more)
					done[k]++;
			}
		}
		smtp_session_output(s, &out, &outlen);
		/* base64 of "\0user\0SECRET-PASSWORD" starts "AHVzZXIAU0VD" */
		if (!secure && outlen > 0 &&
		    (memmem(out, outlen, "AUTH", 4) != NULL ||
		     memmem(out, outlen, "AHVzZXIAU0VD", 12) != NULL))
			abort();
		smtp_session_sent(s, outlen);
	}
	smtp_session_free(&s);
	return 0;
}
