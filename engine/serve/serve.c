/*
 * serve - one-click unsubscribe over HTTP (see serve.h).
 *
 * libmicrohttpd runs one internal thread that polls every connection;
 * the handler below runs in it, so the store connection and the token
 * key are used from that one thread only.  A request's state (its body,
 * at most SERVE_BODY_MAX bytes) is allocated when its head is in and
 * freed when it completes, however it ends.
 */
#include "serve.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "buf.h"
#include "errmsg.h"
#include "token.h"
#include "xalloc.h"

#define SERVE_ONE_CLICK_KEY "List-Unsubscribe"
#define SERVE_ONE_CLICK_VALUE "One-Click"
#define SERVE_RETRY_AFTER "5"
/* bytes of a body too big read (and dropped) before answering 413 */
#define SERVE_DISCARD_MAX (64 * 1024)

struct serve {
	const struct serve_params *p;
	struct store *st;
	struct token_key *key;
	char mhd_error[256];	/* what libmicrohttpd said last */
};

enum serve_method { SERVE_GET, SERVE_HEAD, SERVE_POST };

/* One request: made when its head is in, freed when it completes. */
struct serve_req {
	enum serve_method method;
	bool too_big;
	size_t discarded;	/* bytes of a body too big, dropped */
	size_t len;
	char body[SERVE_BODY_MAX + 1];
	/* the post processor's findings */
	bool key_seen;
	bool value_long;
	size_t vlen;
	char value[sizeof(SERVE_ONE_CLICK_VALUE)];
};

/* --- responses ---------------------------------------------------------- */

/* serve_html_escape - p escaped for HTML text and attribute values */
static void serve_html_escape(struct buf *out, const char *p)
{
	for (; *p != '\0'; p++) {
		switch (*p) {
		case '&': buf_append_str(out, "&amp;"); break;
		case '<': buf_append_str(out, "&lt;"); break;
		case '>': buf_append_str(out, "&gt;"); break;
		case '"': buf_append_str(out, "&quot;"); break;
		case '\'': buf_append_str(out, "&#39;"); break;
		default: buf_putc(out, *p); break;
		}
	}
}

/*
 * serve_shown_path - the path for the log: under /u/, no more than what
 * could be a token's ids (a link with a byte added or cut must not put
 * the rest of a working token in the log); anything else cut short;
 * bytes outside printable ASCII as %XX
 */
static void serve_shown_path(struct buf *out, const char *url)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, max = 80;

	if (strncmp(url, "/u/", 3) == 0) {
		int dashes = 0;

		for (n = 3; url[n] != '\0' && dashes < 2 && n < 3 + 2 * 13;
		     n++) {
			if (url[n] == '-')
				dashes++;
		}
		max = n;
		n = 0;
	} else {
		/*
		 * Any other path may hold a token too ("//u/T", a prefix a
		 * proxy did not strip): only its first segment, cut short
		 */
		const char *slash = strchr(url + 1, '/');

		max = slash != NULL ? (size_t)(slash - url) + 1 : strlen(url);
		if (max > 12)
			max = 12;
	}
	for (; url[n] != '\0' && n < max; n++) {
		unsigned char ch = (unsigned char)url[n];

		if (ch <= ' ' || ch > '~' || ch == '%') {
			buf_putc(out, '%');
			buf_putc(out, hex[ch >> 4]);
			buf_putc(out, hex[ch & 15]);
		} else {
			buf_putc(out, (char)ch);
		}
	}
	if (url[n] != '\0')
		buf_append_str(out, "...");
}

/* serve_client - the client's address as text, for logs and sources */
static void serve_client(struct MHD_Connection *conn, char *dst,
			 size_t size)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	snprintf(dst, size, "-");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  dst, (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, dst,
			  (socklen_t)size);
}

/* serve_log - the request's line, through the caller's log */
static void serve_log(struct serve *sv, struct MHD_Connection *conn,
		      const char *method, const char *url, unsigned status,
		      const char *note)
{
	struct buf line = BUF_INIT, path = BUF_INIT;
	char client[INET6_ADDRSTRLEN];
	char m[12];
	size_t i;

	if (sv->p->log == NULL)
		return;
	for (i = 0; i + 1 < sizeof(m) && method[i] != '\0'; i++)
		m[i] = method[i] > ' ' && method[i] <= '~' ? method[i] : '?';
	m[i] = '\0';
	serve_client(conn, client, sizeof(client));
	serve_shown_path(&path, url);
	buf_printf(&line, "%s %s %s %u%s%s", client, m, buf_cstr(&path),
		   status, note != NULL ? " " : "", note != NULL ? note : "");
	sv->p->log(sv->p->ctx, buf_cstr(&line));
	buf_free(&line);
	buf_free(&path);
}

/*
 * serve_reply - queue a response: status, body, its type, the headers
 * every response has, and one extra header (name NULL: none)
 */
static enum MHD_Result serve_reply(struct MHD_Connection *conn,
				   unsigned status, const char *type,
				   const char *body, size_t len,
				   const char *name, const char *value)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;	/* out of memory: the connection is closed */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (strncmp(type, "text/html", 9) == 0)
		MHD_add_response_header(r, "Content-Security-Policy",
					"default-src 'none'; "
					"form-action 'self'; "
					"base-uri 'none'; "
					"frame-ancestors 'none'");
	if (name != NULL)
		MHD_add_response_header(r, name, value);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

#define SERVE_TEXT "text/plain; charset=utf-8"
#define SERVE_HTML "text/html; charset=utf-8"

/* serve_text - a plain-text response, logged */
static enum MHD_Result serve_text(struct serve *sv,
				  struct MHD_Connection *conn,
				  const char *method, const char *url,
				  unsigned status, const char *text,
				  const char *name, const char *value)
{
	serve_log(sv, conn, method, url, status, NULL);
	return serve_reply(conn, status, SERVE_TEXT, text, strlen(text),
			   name, value);
}

/* serve_page - an HTML page: title (escaped), then body (HTML) */
static enum MHD_Result serve_page(struct MHD_Connection *conn,
				  unsigned status, const char *title,
				  const char *body)
{
	struct buf page = BUF_INIT;
	enum MHD_Result ret;

	buf_append_str(&page, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		       "<meta charset=\"utf-8\">\n"
		       "<meta name=\"viewport\" content=\"width=device-width, "
		       "initial-scale=1\">\n"
		       "<meta name=\"robots\" content=\"noindex\">\n"
		       "<title>");
	serve_html_escape(&page, title);
	buf_append_str(&page, "</title>\n</head>\n<body>\n<main>\n");
	buf_append_str(&page, body);
	buf_append_str(&page, "</main>\n</body>\n</html>\n");
	ret = serve_reply(conn, status, SERVE_HTML, page.data, page.len, NULL,
			  NULL);
	buf_free(&page);
	return ret;
}

/* serve_accepts_html - does the client want a page (a browser)? */
static bool serve_accepts_html(struct MHD_Connection *conn)
{
	const char *accept = MHD_lookup_connection_value(conn,
		MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);

	return accept != NULL && strstr(accept, "text/html") != NULL;
}

/* --- the token and the store ------------------------------------------- */

/*
 * serve_find - the job the token in url names, when the token is right
 * for it: 1 and *ref; 0 (a 404) if not; -1 if the store failed (*status
 * 503 when that may pass, else 500)
 */
static int serve_find(struct serve *sv, const char *url,
		      struct store_job_ref *ref, unsigned *status)
{
	const char *tok = url + 3, *error;
	size_t len;
	int64_t c, j;
	int found;

	if (strncmp(url, "/u/", 3) != 0)
		return 0;
	len = strlen(tok);
	if (!token_unsub_parse(tok, len, &c, &j) || j <= 0)
		return 0;
	found = store_job_ref(sv->st, j, ref, &error);
	if (found < 0) {
		*status = store_error_transient(sv->st) ?
			  MHD_HTTP_SERVICE_UNAVAILABLE :
			  MHD_HTTP_INTERNAL_SERVER_ERROR;
		return -1;
	}
	if (found == 0 || ref->campaign_id != c || ref->address == NULL ||
	    !token_unsub_check(sv->key, tok, len, ref->address,
			       strlen(ref->address)))
		return 0;
	if (ref->list == NULL)
		ref->list = STORE_LIST_DEFAULT;
	return 1;
}

/* serve_store_failed - 503 with Retry-After, or 500 */
static enum MHD_Result serve_store_failed(struct serve *sv,
					  struct MHD_Connection *conn,
					  const char *method, const char *url,
					  unsigned status)
{
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		return serve_text(sv, conn, method, url, status,
				  "The service is busy; try again in a "
				  "moment.\n", MHD_HTTP_HEADER_RETRY_AFTER,
				  SERVE_RETRY_AFTER);
	return serve_text(sv, conn, method, url, status,
			  "Something went wrong on our side.\n", NULL, NULL);
}

static const char serve_not_found[] =
	"This unsubscribe link is not valid.  Please use the link from the "
	"message you received, whole.\n";

/* --- GET: the page with the button ------------------------------------- */

static enum MHD_Result serve_get(struct serve *sv, struct MHD_Connection *conn,
				 const char *method, const char *url)
{
	struct store_job_ref ref;
	struct buf body = BUF_INIT, title = BUF_INIT;
	unsigned status = 0;
	enum MHD_Result ret;
	int found = serve_find(sv, url, &ref, &status);

	if (found < 0)
		return serve_store_failed(sv, conn, method, url, status);
	if (found == 0)
		return serve_text(sv, conn, method, url,
				  MHD_HTTP_NOT_FOUND, serve_not_found, NULL,
				  NULL);
	buf_printf(&title, "Unsubscribe from %s", ref.list);
	buf_append_str(&body, "<h1>Unsubscribe from ");
	serve_html_escape(&body, ref.list);
	buf_append_str(&body, "</h1>\n<p>Press the button to stop getting "
		       "the mail of the list <strong>");
	serve_html_escape(&body, ref.list);
	buf_append_str(&body, "</strong>.</p>\n"
		       "<form method=\"post\">\n"
		       "<input type=\"hidden\" name=\"" SERVE_ONE_CLICK_KEY
		       "\" value=\"" SERVE_ONE_CLICK_VALUE "\">\n"
		       "<button type=\"submit\">Unsubscribe</button>\n"
		       "</form>\n");
	serve_log(sv, conn, method, url, MHD_HTTP_OK, "page");
	ret = serve_page(conn, MHD_HTTP_OK, buf_cstr(&title), body.data);
	buf_free(&body);
	buf_free(&title);
	return ret;
}

/* --- POST: the unsubscribe --------------------------------------------- */

/* serve_post_field - MHD's post processor: keep the One-Click field */
static enum MHD_Result serve_post_field(void *cls, enum MHD_ValueKind kind,
					const char *key, const char *filename,
					const char *content_type,
					const char *transfer_encoding,
					const char *data, uint64_t off,
					size_t size)
{
	struct serve_req *rq = cls;

	(void)kind;
	(void)filename;
	(void)content_type;
	(void)transfer_encoding;
	if (key == NULL || strcmp(key, SERVE_ONE_CLICK_KEY) != 0)
		return MHD_YES;
	if (off == 0) {
		rq->key_seen = true;
		rq->vlen = 0;
		rq->value_long = false;
	}
	if (off != rq->vlen || size >= sizeof(rq->value) - rq->vlen) {
		rq->value_long = true;
		return MHD_YES;
	}
	memcpy(rq->value + rq->vlen, data, size);
	rq->vlen += size;
	rq->value[rq->vlen] = '\0';
	return MHD_YES;
}

/*
 * serve_one_click - does the body say List-Unsubscribe=One-Click?  Form
 * encoded (urlencoded or multipart, through MHD's post processor), or
 * with no Content-Type as that very text.
 */
static bool serve_one_click(struct MHD_Connection *conn,
			    struct serve_req *rq)
{
	const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		MHD_HTTP_HEADER_CONTENT_TYPE);
	struct MHD_PostProcessor *pp;
	size_t len = rq->len;

	if (type == NULL) {
		while (len > 0 && (rq->body[len - 1] == '\n' ||
				   rq->body[len - 1] == '\r'))
			len--;
		return len == strlen(SERVE_ONE_CLICK_KEY "="
				     SERVE_ONE_CLICK_VALUE) &&
		       memcmp(rq->body, SERVE_ONE_CLICK_KEY "="
			      SERVE_ONE_CLICK_VALUE, len) == 0;
	}
	if (strncasecmp(type, MHD_HTTP_POST_ENCODING_FORM_URLENCODED,
			strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED)) != 0 &&
	    strncasecmp(type, MHD_HTTP_POST_ENCODING_MULTIPART_FORMDATA,
			strlen(MHD_HTTP_POST_ENCODING_MULTIPART_FORMDATA)) != 0)
		return false;
	pp = MHD_create_post_processor(conn, 512, serve_post_field, rq);
	if (pp == NULL)
		return false;
	if (MHD_post_process(pp, rq->body, rq->len) != MHD_YES) {
		MHD_destroy_post_processor(pp);
		return false;
	}
	if (MHD_destroy_post_processor(pp) != MHD_YES)
		return false;
	return rq->key_seen && !rq->value_long &&
	       strcmp(rq->value, SERVE_ONE_CLICK_VALUE) == 0;
}

static enum MHD_Result serve_post(struct serve *sv,
				  struct MHD_Connection *conn,
				  struct serve_req *rq, const char *method,
				  const char *url)
{
	struct store_job_ref ref;
	struct store_suppression s = { 0 };
	struct buf source = BUF_INIT, body = BUF_INIT, list = BUF_INIT;
	struct buf addr = BUF_INIT, title = BUF_INIT;
	char client[INET6_ADDRSTRLEN];
	unsigned status = 0;
	size_t added = 0;
	const char *error;
	enum MHD_Result ret;
	int found, ret_store;

	if (rq->too_big)
		return serve_text(sv, conn, method, url,
				  MHD_HTTP_CONTENT_TOO_LARGE,
				  "The request's body is too large.\n", NULL,
				  NULL);
	found = serve_find(sv, url, &ref, &status);
	if (found < 0)
		return serve_store_failed(sv, conn, method, url, status);
	if (found == 0)
		return serve_text(sv, conn, method, url, MHD_HTTP_NOT_FOUND,
				  serve_not_found, NULL, NULL);
	if (!serve_one_click(conn, rq))
		return serve_text(sv, conn, method, url,
				  MHD_HTTP_BAD_REQUEST,
				  "A one-click unsubscribe is a POST whose "
				  "body is List-Unsubscribe=One-Click "
				  "(RFC 8058).\n", NULL, NULL);
	serve_client(conn, client, sizeof(client));
	buf_printf(&source, "volley serve %s", client);
	/* ref's strings live in the store's buffer, which its next call
	 * reuses: the entry is made of copies */
	buf_append_str(&list, ref.list);
	buf_append(&addr, ref.address, strlen(ref.address) + 1);
	s.address = addr.data;
	s.reason = SUPPRESS_UNSUBSCRIBED;
	s.scope = buf_cstr(&list);
	s.source = buf_cstr(&source);
	s.campaign_id = ref.campaign_id;
	s.job_id = ref.job_id;
	ret_store = store_suppress_add(sv->st, &s, 1, &added, &error);
	buf_free(&addr);
	if (ret_store < 0) {
		buf_free(&source);
		buf_free(&list);
		return serve_store_failed(sv, conn, method, url,
					  store_error_transient(sv->st) ?
					  MHD_HTTP_SERVICE_UNAVAILABLE :
					  MHD_HTTP_INTERNAL_SERVER_ERROR);
	}
	buf_free(&source);
	serve_log(sv, conn, method, url, MHD_HTTP_OK,
		  added > 0 ? "unsubscribed" : "unsubscribed already");
	if (!serve_accepts_html(conn)) {
		buf_free(&list);
		return serve_reply(conn, MHD_HTTP_OK, SERVE_TEXT,
				   "Unsubscribed.\n", 14, NULL, NULL);
	}
	buf_append_str(&body, "<h1>You are unsubscribed</h1>\n<p>You will "
		       "get no more mail of the list <strong>");
	serve_html_escape(&body, buf_cstr(&list));
	buf_append_str(&body, "</strong>.</p>\n");
	buf_printf(&title, "Unsubscribed from %s", buf_cstr(&list));
	ret = serve_page(conn, MHD_HTTP_OK, buf_cstr(&title), body.data);
	buf_free(&title);
	buf_free(&body);
	buf_free(&list);
	return ret;
}

/* serve_count_framing - counts Content-Length and Transfer-Encoding */
static enum MHD_Result serve_count_framing(void *cls, enum MHD_ValueKind kind,
					   const char *key, const char *value)
{
	unsigned *n = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		n[0]++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		n[1]++;
	return MHD_YES;
}

/*
 * serve_framing_ambiguous - two lengths, or a length and a transfer
 * coding: where the body ends is in doubt, and a proxy in front may see
 * it end elsewhere (request smuggling, RFC 9112 6.3); refused
 */
static bool serve_framing_ambiguous(struct MHD_Connection *conn)
{
	unsigned n[2] = { 0, 0 };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, serve_count_framing,
				  n);
	return n[0] > 1 || n[1] > 1 || (n[0] > 0 && n[1] > 0);
}

/* --- the handler -------------------------------------------------------- */

static enum MHD_Result serve_handle(void *cls, struct MHD_Connection *conn,
				    const char *url, const char *method,
				    const char *version,
				    const char *upload_data,
				    size_t *upload_data_size, void **req_cls)
{
	struct serve *sv = cls;
	struct serve_req *rq = *req_cls;

	(void)version;
	if (rq == NULL) {
		const char *cl;
		enum serve_method m;

		if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
			m = SERVE_GET;
		else if (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
			m = SERVE_HEAD;
		else if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
			m = SERVE_POST;
		else
			return serve_text(sv, conn, method, url,
					  MHD_HTTP_METHOD_NOT_ALLOWED,
					  "Method not allowed.\n",
					  MHD_HTTP_HEADER_ALLOW,
					  "GET, HEAD, POST");
		if (strncmp(url, "/u/", 3) != 0)
			return serve_text(sv, conn, method, url,
					  MHD_HTTP_NOT_FOUND,
					  "Not found.\n", NULL, NULL);
		if (serve_framing_ambiguous(conn))
			return serve_text(sv, conn, method, url,
					  MHD_HTTP_BAD_REQUEST,
					  "The request's length is said twice."
					  "\n", MHD_HTTP_HEADER_CONNECTION,
					  "close");
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
			MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && (strlen(cl) > 9 ||
				   strtoul(cl, NULL, 10) > SERVE_BODY_MAX))
			return serve_text(sv, conn, method, url,
					  MHD_HTTP_CONTENT_TOO_LARGE,
					  "The request's body is too "
					  "large.\n", NULL, NULL);
		rq = xcalloc(1, sizeof(*rq));
		rq->method = m;
		*req_cls = rq;
		return MHD_YES;	/* the body, if any, comes next */
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (!rq->too_big && n <= SERVE_BODY_MAX - rq->len) {
			memcpy(rq->body + rq->len, upload_data, n);
			rq->len += n;
			return MHD_YES;
		}
		/*
		 * Too big: read and drop a little more, so that a client
		 * that sends a bit over gets its 413 once its body is in
		 * (a server that closes on unread data makes the peer's
		 * TCP discard the answer); past SERVE_DISCARD_MAX (a
		 * chunked body has no length to refuse it by up front),
		 * answer at once and close.
		 */
		rq->too_big = true;
		rq->discarded += n;
		if (rq->discarded > SERVE_DISCARD_MAX)
			return serve_text(sv, conn, method, url,
					  MHD_HTTP_CONTENT_TOO_LARGE,
					  "The request's body is too "
					  "large.\n", MHD_HTTP_HEADER_CONNECTION,
					  "close");
		return MHD_YES;
	}
	if (rq->method != SERVE_POST) {
		if (rq->len > 0 || rq->too_big)
			return serve_text(sv, conn, method, url,
					  MHD_HTTP_BAD_REQUEST,
					  "A GET has no body.\n", NULL, NULL);
		return serve_get(sv, conn, method, url);
	}
	return serve_post(sv, conn, rq, method, url);
}

/* serve_completed - a request ended, answered or not: free its state */
static void serve_completed(void *cls, struct MHD_Connection *conn,
			    void **req_cls,
			    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	free(*req_cls);
	*req_cls = NULL;
}

/* serve_mhd_log - what libmicrohttpd says goes nowhere but here: kept
 * for an error that stops the start */
static void serve_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct serve *sv = cls;
	size_t n;

	vsnprintf(sv->mhd_error, sizeof(sv->mhd_error), fmt, ap);
	n = strcspn(sv->mhd_error, "\r\n");
	sv->mhd_error[n] = '\0';
}

/* --- listening ---------------------------------------------------------- */

bool serve_parse_listen(const char *listen, char *host, size_t host_size,
			unsigned *port_r)
{
	const char *colon, *h = listen;
	size_t hlen;
	char *end;
	unsigned long port;

	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (close == NULL || close[1] != ':')
			return false;
		h = listen + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL || memchr(listen, ':',
					    (size_t)(colon - listen)) != NULL)
			return false;
		hlen = (size_t)(colon - listen);
	}
	if (hlen == 0 || hlen >= host_size || colon[1] == '\0')
		return false;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || errno != 0 || port > 65535 || colon[1] == '-' ||
	    colon[1] == '+' || colon[1] == ' ')
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port_r = (unsigned)port;
	return true;
}

/* serve_listen - a listening socket on p->listen; -1 with *error_r */
static int serve_listen(const char *listen_at, char *shown, size_t size,
			const char **error_r)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[256], port[8], addr[INET6_ADDRSTRLEN];
	unsigned portn;
	int fd, one = 1, rc;

	if (!serve_parse_listen(listen_at, host, sizeof(host), &portn))
		return errmsg_set(error_r, "--listen %s: write ADDR:PORT, "
				  "like 127.0.0.1:8025 or [::1]:8025",
				  listen_at);
	snprintf(port, sizeof(port), "%u", portn);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0)
		return errmsg_set(error_r, "--listen %s: %s", listen_at,
				  gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return errmsg_set(error_r, "--listen %s: %s", listen_at,
				  strerror(errno));
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, 128) < 0) {
		int e = errno;

		close(fd);
		freeaddrinfo(ai);
		return errmsg_set(error_r, "--listen %s: %s", listen_at,
				  strerror(e));
	}
	freeaddrinfo(ai);
	/* the port the kernel gave, for ":0" */
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (void *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, addr,
				  sizeof(addr));
			snprintf(shown, size, "[%s]:%u", addr,
				 ntohs(s6->sin6_port));
		} else {
			const struct sockaddr_in *s4 = (void *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
			snprintf(shown, size, "%s:%u", addr,
				 ntohs(s4->sin_port));
		}
	} else {
		snprintf(shown, size, "%s", listen_at);
	}
	return fd;
}

/*
 * serve_drain - stop taking connections, let those open finish (at most
 * timeout_s seconds: an idle one is closed by then anyway), then stop
 */
static void serve_drain(struct MHD_Daemon *d, unsigned timeout_s)
{
	MHD_socket lfd = MHD_quiesce_daemon(d);
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	for (unsigned i = 0; i < timeout_s * 20; i++) {
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(
			d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

		if (di == NULL || di->num_connections == 0)
			break;
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);	/* quiesce gave it back to us */
}

int serve_run(const struct serve_params *p, const char **error_r)
{
	struct serve sv = { .p = p };
	struct MHD_Daemon *d;
	struct store_params sp = p->store;
	char shown[300];
	const char *error;
	int fd, ret = -1;

	if (token_key_new(p->secret, strlen(p->secret), &sv.key) < 0)
		return errmsg_set(error_r, "cannot set up HMAC-SHA256");
	sp.create = false;
	if (store_open(p->store_path, &sp, &sv.st, &error) < 0) {
		errmsg_set(error_r, "%s", error);
		goto out_key;
	}
	fd = serve_listen(p->listen != NULL ? p->listen :
			  SERVE_DEFAULT_LISTEN, shown, sizeof(shown),
			  error_r);
	if (fd < 0)
		goto out_store;
	d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
			     MHD_USE_ITC,
			     0, NULL, NULL, serve_handle, &sv,
			     MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
			     MHD_OPTION_CONNECTION_LIMIT,
			     (unsigned)(p->max_connections ?
					p->max_connections : 256),
			     MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			     (unsigned)p->per_ip,
			     MHD_OPTION_CONNECTION_TIMEOUT,
			     (unsigned)(p->timeout_s ? p->timeout_s : 10),
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			     (size_t)SERVE_CONN_MEMORY,
			     MHD_OPTION_NOTIFY_COMPLETED, serve_completed,
			     (void *)NULL,
			     MHD_OPTION_EXTERNAL_LOGGER, serve_mhd_log, &sv,
			     MHD_OPTION_END);
	if (d == NULL) {
		close(fd);
		errmsg_set(error_r, "cannot start the HTTP server%s%s",
			   sv.mhd_error[0] ? ": " : "", sv.mhd_error);
		goto out_store;
	}
	if (p->ready != NULL)
		p->ready(p->ctx, shown);
	while (!atomic_load(p->stop)) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	serve_drain(d, p->timeout_s ? p->timeout_s : 10);
	ret = 0;
out_store:
	store_close(&sv.st);
out_key:
	token_key_free(&sv.key);
	return ret;
}
