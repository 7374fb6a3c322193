/*
 * serve - `volley serve`: the HTTP server behind {{unsubscribe_url}},
 * one-click unsubscribe as RFC 8058 has it.
 *
 *   POST /u/TOKEN   body List-Unsubscribe=One-Click (form-encoded as
 *                   application/x-www-form-urlencoded or
 *                   multipart/form-data): the recipient the token names
 *                   is suppressed for its campaign's list; 200 at once,
 *                   and 200 again for the same token (idempotent)
 *   GET  /u/TOKEN   a page naming the list, with a button that POSTs;
 *                   a GET never unsubscribes (scanners fetch links)
 *   HEAD /u/TOKEN   the GET's headers
 *
 * Statuses: 404 for any other path and for a token that is not one this
 * secret made for a job of the store (nothing recorded); 400 for a POST
 * without the One-Click field; 405 (with Allow) for other methods; 413
 * for a body over SERVE_BODY_MAX; 503 with Retry-After when the store
 * is busy or out of space for now (never a 200 for an unsubscribe that
 * was not recorded); 500 for a store that fails for good.
 *
 * TOKEN is templates/sign/token.h's unsubscribe token: "C-J-MAC", the
 * campaign and job ids and 130 bits of HMAC-SHA256 over them and the
 * recipient's address.  The job is looked up (store_job_ref) and the
 * token believed only if its campaign and address give the same MAC.
 *
 * Resources are bounded: one polling thread (libmicrohttpd's internal
 * one, which alone uses the store), at most max_connections connections
 * and per_ip from one address, a connection idle for timeout_s seconds
 * is closed (slow clients), SERVE_CONN_MEMORY bytes per connection for
 * the request's head and the answer (a head over about half of it gets
 * 431), a body of at most SERVE_BODY_MAX bytes.
 *
 * Every response carries Cache-Control: no-store,
 * X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer; pages
 * a strict Content-Security-Policy.  Everything a page says that came
 * from the store is HTML-escaped.
 */
#ifndef VOLLEY_SERVE_H
#define VOLLEY_SERVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define SERVE_DEFAULT_LISTEN "127.0.0.1:8025"
#define SERVE_BODY_MAX 1024
#define SERVE_CONN_MEMORY (32 * 1024)

struct serve_params {
	const char *store_path;
	struct store_params store;
	const char *secret;		/* unsubscribe.secret_file's line */
	const char *listen;		/* "ADDR:PORT", "[V6]:PORT"; NULL:
					 * SERVE_DEFAULT_LISTEN */
	unsigned max_connections;	/* 0: 256 */
	unsigned per_ip;		/* 0: no cap per client address */
	unsigned timeout_s;		/* idle connections; 0: 10 */
	atomic_bool *stop;		/* set (from a signal) to stop */
	/*
	 * log - one line per request: client address, method, the path
	 * with a token cut to its ids ("/u/1-a-..."), the status and what
	 * was done; never a whole token.  Called from the server's thread.
	 */
	void (*log)(void *ctx, const char *line);
	/* ready - the address it listens on ("127.0.0.1:8025"), once */
	void (*ready)(void *ctx, const char *addr);
	void *ctx;
};

/*
 * serve_run - listen and answer until *p->stop is set, then stop
 * cleanly (requests under way are finished).  0 on a requested stop; -1
 * with *error_r if it cannot start (address in use, the store, the
 * secret).
 */
int serve_run(const struct serve_params *p, const char **error_r);

/*
 * serve_parse_listen - "HOST:PORT" or "[V6]:PORT" split into host (no
 * brackets) and port; false if not that shape
 */
bool serve_parse_listen(const char *listen, char *host, size_t host_size,
			unsigned *port_r);

#endif
