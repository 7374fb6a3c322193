/*
 * sink_faults - the scripted misbehaviour of `volley sink`: a small line
 * format, parsed once at startup, and the lookup the sink's session makes
 * before each reply.
 *
 * One rule per line; lines starting with '#' and blank lines are ignored:
 *
 *   COMMAND [CONDITION...] [delay MS] [ACTION]
 *
 *   COMMAND    greeting ehlo helo starttls auth mail rcpt data bdat
 *              message rset noop quit
 *              (data: the reply to the DATA command itself; message: the
 *              verdict on a message, after DATA's final dot or to
 *              BDAT ... LAST; bdat: the reply to a BDAT chunk not LAST)
 *   CONDITION  GLOB    an address pattern ('*' and '?', ASCII case
 *                      ignored; "<>" is the null sender): the sender
 *                      for mail, the recipient for rcpt, any accepted
 *                      recipient for data, bdat and message
 *              msg=N   the Nth transaction (MAIL command) on a connection
 *              conn=N  the Nth connection since the sink started
 *   ACTION     CODE [X.Y.Z] [TEXT]   reply this instead
 *              silent         never reply again; keep the connection
 *              malformed [TEXT]  send TEXT (default a bad code) as the
 *                             reply line
 *              overlong [N]   the normal reply, padded to N bytes
 *                             (default 3000) on one line
 *              drop [N]       close the connection instead of replying;
 *                             for data, bdat and message after N bytes
 *                             of the content (without N: data closes
 *                             instead of 354, message at end of data)
 *   delay MS alone delays the normal reply.
 *
 * and three connection-wide settings:
 *
 *   close-after N [CODE [X.Y.Z] [TEXT]]  after N messages on a
 *                      connection the next MAIL gets 421 (or CODE) and
 *                      the connection is closed
 *   starttls-inject TEXT   TEXT and CRLF sent in plaintext right behind
 *                      the 220 that answers STARTTLS
 *
 * The first rule that matches a command wins.  Rules change only the
 * reply to a command the sink would accept; a reply with code 421 closes
 * the connection after it is sent.
 *
 * Errors name the file and line: "faults.txt:3: unknown command 'rcptt'".
 */
#ifndef VOLLEY_SINK_FAULTS_H
#define VOLLEY_SINK_FAULTS_H

#include <stdbool.h>
#include <stddef.h>

enum sink_cmd {
	SINK_CMD_GREETING,
	SINK_CMD_EHLO,
	SINK_CMD_HELO,
	SINK_CMD_STARTTLS,
	SINK_CMD_AUTH,
	SINK_CMD_MAIL,
	SINK_CMD_RCPT,
	SINK_CMD_DATA,
	SINK_CMD_BDAT,
	SINK_CMD_MESSAGE,
	SINK_CMD_RSET,
	SINK_CMD_NOOP,
	SINK_CMD_QUIT,
	SINK_CMD_COUNT
};

enum sink_fault_action {
	SINK_FAULT_NORMAL,	/* the usual reply (after delay_ms) */
	SINK_FAULT_REPLY,	/* code, enhanced, text */
	SINK_FAULT_SILENT,
	SINK_FAULT_MALFORMED,	/* text is the whole line */
	SINK_FAULT_OVERLONG,	/* length */
	SINK_FAULT_DROP,	/* after drop_after content bytes, if set */
};

#define SINK_FAULT_NO_BYTES ((size_t)-1)

struct sink_rule {
	enum sink_cmd cmd;
	const char *pattern;	/* NULL: any address; "" the null sender */
	unsigned msg;		/* 0: any */
	unsigned long conn;	/* 0: any */
	unsigned delay_ms;
	enum sink_fault_action action;
	int code;
	char enhanced[16];
	const char *text;
	size_t length;		/* OVERLONG */
	size_t drop_after;	/* DROP: content bytes, or SINK_FAULT_NO_BYTES */
	unsigned line;		/* in the faults file */
};

struct sink_faults;

/*
 * sink_faults_parse - rules from text (len bytes); name is the file's
 * name for messages.  Returns 0, or -1 with *error_r "NAME:LINE: reason".
 */
int sink_faults_parse(const char *name, const char *text, size_t len,
		      struct sink_faults **f_r, const char **error_r);
/* sink_faults_load - sink_faults_parse of a file; -1 also when unreadable */
int sink_faults_load(const char *path, struct sink_faults **f_r,
		     const char **error_r);
void sink_faults_free(struct sink_faults **fp);

/* sink_faults_count - how many rules (not counting the settings) */
size_t sink_faults_count(const struct sink_faults *f);
/* sink_faults_rule - the ith rule, in file order */
const struct sink_rule *sink_faults_rule(const struct sink_faults *f,
					 size_t i);

/*
 * sink_faults_match - the first rule for cmd whose conditions hold, or
 * NULL.  addrs: the address(es) a pattern is matched against (a rule
 * with a pattern matches if any of them does; with n == 0 it never
 * does).  f may be NULL.
 */
const struct sink_rule *sink_faults_match(const struct sink_faults *f,
					  enum sink_cmd cmd,
					  const char *const *addrs, size_t n,
					  unsigned msg, unsigned long conn);

/* close-after: 0 when unset; the reply given then */
unsigned sink_faults_close_after(const struct sink_faults *f,
				 const struct sink_rule **reply_r);
/* starttls-inject: the text, or NULL */
const char *sink_faults_starttls_inject(const struct sink_faults *f);

/* sink_glob - does s match pattern ('*', '?'; ASCII case ignored)? */
bool sink_glob(const char *pattern, const char *s);

/* sink_cmd_name - "rcpt" for SINK_CMD_RCPT ... */
const char *sink_cmd_name(enum sink_cmd cmd);

#endif
