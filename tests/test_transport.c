/*
 * test_transport - real TCP and TLS on loopback: OpenSSL's own s_server
 * with a certificate made for the test, checked the way volley checks a
 * relay (chain, host name, IP address), and the failures a user meets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "errmsg.h"
#include "transport.h"

static char dir[64];
static char cert[128];
static char key[128];
/* names only in the subject CN, no subjectAltName: never accepted */
static char cn_cert[128];
static char cn_key[128];
static char port[16];		/* s_server, TLS 1.3 (its default) */
static char port12[16];		/* s_server -tls1_2 */
static char port_cn[16];	/* s_server with cn_cert */
static pid_t server = -1, server12 = -1, server_cn = -1;

static int listener(int family, int backlog, struct sockaddr_storage *a_r);

/* ipv6_loopback - whether ::1 can be bound here */
static bool ipv6_loopback(void)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6,
				  .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* file_has - whether the file at path holds text (read whole) */
static bool file_has(const char *path, const char *text)
{
	char buf[65536];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

/*
 * accepted_port - the port an s_server started with "-accept ADDR:0"
 * listens on, from the "ACCEPT 127.0.0.1:PORT" (or "ACCEPT [::1]:PORT")
 * line it prints to out once it listens; waits up to 5 s.  The kernel
 * picks the port as s_server binds, so no other program can hold it: a
 * port picked first and bound later could be taken in between, and
 * whatever answered there would not be s_server.
 */
static void accepted_port(const char *out, char *port_r, size_t portsize)
{
	for (int i = 0; i < 100; i++) {
		char line[256];
		FILE *f = fopen(out, "r");

		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			const char *colon = strrchr(line, ':');

			if (strncmp(line, "ACCEPT ", 7) != 0 || colon == NULL)
				continue;
			fclose(f);
			snprintf(port_r, portsize, "%d", atoi(colon + 1));
			assert_true(atoi(port_r) > 0);
			return;
		}
		if (f != NULL)
			fclose(f);
		usleep(50000);
	}
	fail_msg("openssl s_server wrote no ACCEPT line to %s", out);
}

/*
 * start_server - openssl s_server -rev with certificate crt and key k on
 * a loopback port of its choosing (into port_r), with one more option
 * if extra is not NULL; returns once it listens.  Each line sent comes
 * back reversed; "CLOSE" closes.
 */
static pid_t start_server(char *port_r, size_t portsize, const char *crt,
			  const char *k, const char *extra)
{
	static int n;
	char out[128];
	pid_t pid;

	snprintf(out, sizeof(out), "%s/server-%d.out", dir, n++);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

#ifdef __linux__
		/* Gone with the test, even when a crash skips teardown. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("openssl", "openssl", "s_server", "-rev",
		       "-accept", "127.0.0.1:0", "-cert", crt, "-key", k,
		       extra, (char *)NULL);
		_exit(127);
	}
	accepted_port(out, port_r, portsize);
	return pid;
}

static int setup(void **state)
{
	char cmd[512];

	(void)state;
	signal(SIGPIPE, SIG_IGN);	/* as volley's main does */
	strcpy(dir, "/tmp/volley-test-tls-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 "
		 "-nodes -keyout %s -out %s -days 1 -subj /CN=localhost "
		 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1 "
		 ">/dev/null 2>&1", key, cert);
	assert_int_equal(system(cmd), 0);
	snprintf(cn_cert, sizeof(cn_cert), "%s/cn-cert.pem", dir);
	snprintf(cn_key, sizeof(cn_key), "%s/cn-key.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 "
		 "-nodes -keyout %s -out %s -days 1 "
		 "-subj /CN=localhost/CN=127.0.0.1 >/dev/null 2>&1",
		 cn_key, cn_cert);
	assert_int_equal(system(cmd), 0);
	server = start_server(port, sizeof(port), cert, key, NULL);
	server12 = start_server(port12, sizeof(port12), cert, key, "-tls1_2");
	server_cn = start_server(port_cn, sizeof(port_cn), cn_cert, cn_key,
				 NULL);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	if (server12 > 0) {
		kill(server12, SIGTERM);
		waitpid(server12, NULL, 0);
	}
	if (server_cn > 0) {
		kill(server_cn, SIGTERM);
		waitpid(server_cn, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/*
 * tls_round_trip - connect to host (checking name in the certificate),
 * TLS with these settings, and see a line come back reversed.
 */
static int tls_round_trip_to(const char *srv_port, const char *host,
			     const char *name, bool verify, const char *ca,
			     const char **error_r)
{
	struct transport_params p = { host, srv_port, name, 2000, 2000 };
	struct transport_tls_params tp = { verify, ca };
	struct transport_tls *tls;
	struct transport *t;
	char got[64];
	ssize_t n;
	size_t have = 0;
	int ret = -1;

	assert_int_equal(transport_tls_new(&tp, &tls, error_r), 0);
	if (transport_connect(&p, &t, error_r) < 0)
		goto out;
	if (transport_start_tls(t, tls, error_r) < 0)
		goto out_close;
	assert_true(transport_is_tls(t));
	assert_int_equal(transport_write(t, "hello\n", 6, error_r), 0);
	while (have < 6 &&
	       (n = transport_read(t, got + have, sizeof(got) - have,
				   error_r)) > 0)
		have += (size_t)n;
	assert_int_equal(have, 6);
	assert_memory_equal(got, "olleh\n", 6);
	ret = 0;
out_close:
	transport_close(&t);
out:
	transport_tls_free(&tls);
	return ret;
}

/* tls_round_trip - tls_round_trip_to the usual server */
static int tls_round_trip(const char *host, const char *name, bool verify,
			  const char *ca, const char **error_r)
{
	return tls_round_trip_to(port, host, name, verify, ca, error_r);
}

static void test_tls_verified(void **state)
{
	const char *err = NULL;

	(void)state;
	assert_int_equal(tls_round_trip("localhost", NULL, true, cert, &err),
			 0);
	assert_int_equal(tls_round_trip("127.0.0.1", NULL, true, cert, &err),
			 0);
	assert_int_equal(tls_round_trip("127.0.0.1", "localhost", true, cert,
					&err), 0);
}

static void test_tls_untrusted_chain(void **state)
{
	const char *err = NULL;

	(void)state;
	/* The system store does not know the test's certificate. */
	assert_int_equal(tls_round_trip("localhost", NULL, true, NULL, &err),
			 -1);
	assert_non_null(strstr(err, "certificate verify failed"));
	/* ... which tls_verify = false accepts. */
	assert_int_equal(tls_round_trip("localhost", NULL, false, NULL, &err),
			 0);
}

static void test_tls_wrong_name(void **state)
{
	const char *err = NULL;

	(void)state;
	if (tls_round_trip("127.0.0.1", "mail.example.com", true, cert,
			   &err) == 0)
		fail_msg("a certificate for localhost passed for another name");
	assert_non_null(strstr(err, "mismatch"));
	if (tls_round_trip("127.0.0.1", "127.0.0.2", true, cert, &err) == 0)
		fail_msg("a certificate for 127.0.0.1 passed for 127.0.0.2");
	assert_non_null(strstr(err, "mismatch"));
}

/*
 * A name only in the subject CN is no name: browsers and curl stopped
 * reading the CN (RFC 6125 6.4.4), and a relay whose certificate still
 * relies on it must be told why it is refused.  Addresses never matched
 * the CN either.
 */
static void test_tls_cn_only(void **state)
{
	const char *err = NULL;

	(void)state;
	if (tls_round_trip_to(port_cn, "localhost", NULL, true, cn_cert,
			      &err) == 0)
		fail_msg("a certificate with no subjectAltName passed on "
			 "its CN");
	assert_non_null(strstr(err, "hostname mismatch"));
	assert_non_null(strstr(err, "no subjectAltName"));
	if (tls_round_trip_to(port_cn, "127.0.0.1", NULL, true, cn_cert,
			      &err) == 0)
		fail_msg("an address passed on the CN");
	assert_non_null(strstr(err, "IP address mismatch"));
	assert_non_null(strstr(err, "no subjectAltName"));
	/* Not checked at all, it still connects. */
	assert_int_equal(tls_round_trip_to(port_cn, "localhost", NULL, false,
					   NULL, &err), 0);
}

/*
 * sni_sent - one verified TLS connection to host (127.0.0.1, ::1 or
 * localhost), served by an s_server of its own listening on addr (a
 * port of its choosing):
 * whether the client's hello carried a server_name extension.  The
 * server prints every extension it gets (-tlsextdebug) and exits after
 * that one connection, so its output is whole when it has gone.
 */
static bool sni_sent(const char *host, const char *addr)
{
	static int n;
	char out[128], accept[64], sport[16];
	const char *err = NULL;
	pid_t pid;
	int status, i;

	snprintf(out, sizeof(out), "%s/sni-%d.out", dir, n++);
	snprintf(accept, sizeof(accept), strchr(addr, ':') ? "[%s]:0" :
		 "%s:0", addr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("openssl", "openssl", "s_server", "-rev",
		       "-tlsextdebug", "-naccept", "1", "-accept", accept,
		       "-cert", cert, "-key", key, (char *)NULL);
		_exit(127);
	}
	accepted_port(out, sport, sizeof(sport));
	if (tls_round_trip_to(sport, host, NULL, true, cert, &err) < 0)
		fail_msg("TLS with %s: %s", host, err);
	for (i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(50000);
	if (i == 100) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		fail_msg("s_server did not exit after one connection");
	}
	/* proof that it printed the hello's extensions at all */
	assert_true(file_has(out, "TLS client extension"));
	return file_has(out, "\"server name\"");
}

/* SNI carries host names only (RFC 6066 3): never an address. */
static void test_sni_ipv4(void **state)
{
	(void)state;
	assert_false(sni_sent("127.0.0.1", "127.0.0.1"));
	assert_true(sni_sent("localhost", "127.0.0.1"));
}

static void test_sni_ipv6(void **state)
{
	(void)state;
	if (!ipv6_loopback())
		skip();		/* no IPv6 loopback here */
	assert_false(sni_sent("::1", "::1"));
}

/* A name SNI cannot carry (over 255 bytes) fails, not goes unsent. */
static void test_sni_unsendable(void **state)
{
	char name[300];
	const char *err = NULL;

	(void)state;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	if (tls_round_trip("127.0.0.1", name, false, NULL, &err) == 0)
		fail_msg("a handshake went on without the name asked for");
	assert_non_null(strstr(err, "SNI"));
}

/* An empty name means the host, never "check no name at all". */
static void test_tls_empty_name(void **state)
{
	const char *err = NULL;

	(void)state;
	assert_int_equal(tls_round_trip("localhost", "", true, cert, &err), 0);
}

static void test_connect_refused(void **state)
{
	struct transport_params p = { "127.0.0.1", NULL, NULL, 1000, 1000 };
	struct transport *t;
	const char *err = NULL;
	char closed[16];

	struct sockaddr_storage closed_a;
	int closed_fd = listener(AF_INET, -1, &closed_a);

	(void)state;
	assert_true(closed_fd >= 0);	/* bound, not listening: refused */
	snprintf(closed, sizeof(closed), "%d",
		 ntohs(((struct sockaddr_in *)&closed_a)->sin_port));
	p.port = closed;
	assert_int_equal(transport_connect(&p, &t, &err), -1);
	assert_non_null(strstr(err, "refused"));
	close(closed_fd);
	p.host = "no-such-host.invalid";
	assert_int_equal(transport_connect(&p, &t, &err), -1);
	assert_non_null(strstr(err, "no-such-host.invalid"));
}

/* A server that accepts and says nothing never hangs the reader. */
static void test_read_deadline(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	struct transport_params p = { "127.0.0.1", NULL, NULL, 1000, 300 };
	struct transport *t;
	const char *err = NULL;
	char lport[16], buf[16];
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	snprintf(lport, sizeof(lport), "%d", ntohs(a.sin_port));
	p.port = lport;
	assert_int_equal(transport_connect(&p, &t, &err), 0);
	assert_int_equal(transport_read(t, buf, sizeof(buf), &err), -1);
	assert_non_null(strstr(err, "no reply"));
	transport_close(&t);
	close(lfd);
}

/*
 * listener - a socket listening on a free port of the loopback address
 * of family (AF_INET, AF_INET6) with this backlog, its address in *a_r;
 * -1 when the family has no loopback here.  With a backlog below 0 it is
 * bound and does not listen: connections to it are refused, and no other
 * process (a test running beside this one) can take the port meanwhile.
 */
static int listener(int family, int backlog, struct sockaddr_storage *a_r)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)a_r;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)a_r;
	socklen_t len = sizeof(*a_r);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(a_r, 0, sizeof(*a_r));
	if (family == AF_INET) {
		a4->sin_family = AF_INET;
		a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		a6->sin6_family = AF_INET6;
		a6->sin6_addr = in6addr_loopback;
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)a_r, family == AF_INET ?
			   sizeof(*a4) : sizeof(*a6)) < 0 ||
	    (backlog >= 0 && listen(fd, backlog) < 0) ||
	    getsockname(fd, (struct sockaddr *)a_r, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* connect_nb - a non-blocking connect to a; whether it was done in ms */
static bool connect_nb(const struct sockaddr_storage *a, int ms, int *fd_r)
{
	struct pollfd pfd = { .events = POLLOUT };
	socklen_t len = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
			sizeof(struct sockaddr_in6);
	int soerr = 0;

	pfd.fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(pfd.fd >= 0);
	*fd_r = pfd.fd;
	if (connect(pfd.fd, (const struct sockaddr *)a, len) == 0)
		return true;
	assert_int_equal(errno, EINPROGRESS);
	if (poll(&pfd, 1, ms) != 1)
		return false;
	len = sizeof(soerr);
	getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	return soerr == 0;
}

/*
 * A blackholed address: a listener with backlog 0 whose queue one
 * connection, never accepted, has filled.  Linux drops a SYN to a full
 * queue (no reset), so a connect there waits as on a dead route.
 */
struct hole {
	int lfd, filler, probe;
	struct sockaddr_storage a;
};

static void hole_open(struct hole *h, int family)
{
	h->lfd = listener(family, 0, &h->a);
	assert_true(h->lfd >= 0);
	assert_true(connect_nb(&h->a, 1000, &h->filler));
	/* the premise: a connect there now goes unanswered */
	if (connect_nb(&h->a, 300, &h->probe))
		fail_msg("a full listen queue did not drop a SYN here");
}

static void hole_close(struct hole *h)
{
	close(h->probe);
	close(h->filler);
	close(h->lfd);
}

/* ai_of - a one-address list entry for a, before next */
static struct addrinfo ai_of(struct sockaddr_storage *a,
			     struct addrinfo *next)
{
	socklen_t len = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
			sizeof(struct sockaddr_in6);

	return (struct addrinfo){
		.ai_family = a->ss_family, .ai_socktype = SOCK_STREAM,
		.ai_addrlen = len, .ai_addr = (struct sockaddr *)a,
		.ai_next = next,
	};
}

/* accepted - whether a connection came to listener fd within ms */
static bool accepted(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int afd;

	if (poll(&pfd, 1, ms) != 1)
		return false;
	afd = accept(fd, NULL, NULL);
	if (afd >= 0)
		close(afd);
	return afd >= 0;
}

/*
 * A name with several addresses whose first is blackholed: the next is
 * tried long before the connect timeout runs out (RFC 8305), and the
 * connection goes there.
 */
static void test_connect_blackholed_first(void **state)
{
	struct transport_params p = { "relay.test", "25", NULL, 2000, 1000 };
	struct sockaddr_storage live_a;
	struct addrinfo ai_live, ai_hole;
	struct transport *t = NULL;
	const char *err = NULL;
	struct hole h;
	int64_t t0, took;
	int live = listener(AF_INET, 8, &live_a);

	(void)state;
	assert_true(live >= 0);
	hole_open(&h, AF_INET);
	ai_live = ai_of(&live_a, NULL);
	ai_hole = ai_of(&h.a, &ai_live);
	t0 = clock_mono_ms();
	if (transport_connect_addrs(&p, &ai_hole, &t, &err) < 0)
		fail_msg("after %lld ms: %s",
			 (long long)(clock_mono_ms() - t0), err);
	took = clock_mono_ms() - t0;
	/* after one attempt delay (250 ms), not the whole budget */
	if (took > 1500)
		fail_msg("connected after %lld ms of a 2000 ms budget",
			 (long long)took);
	assert_true(accepted(live, 1000));
	transport_close(&t);
	hole_close(&h);
	close(live);
}

/*
 * An address that fails (refused) does not hold the next one back for
 * the attempt delay: behind a blackholed first address, four refused
 * ones and a live one take one delay in all, not five.
 */
static void test_connect_failure_starts_next(void **state)
{
	struct transport_params p = { "relay.test", "25", NULL, 2000, 1000 };
	struct sockaddr_storage live_a, closed_a[4];
	int closed_fd[4];
	struct addrinfo ai[6];
	struct transport *t = NULL;
	const char *err = NULL;
	struct hole h;
	int64_t t0, took;
	int live = listener(AF_INET, 8, &live_a);

	(void)state;
	assert_true(live >= 0);
	hole_open(&h, AF_INET);
	for (int i = 0; i < 4; i++) {
		closed_fd[i] = listener(AF_INET, -1, &closed_a[i]);
		assert_true(closed_fd[i] >= 0);	/* bound, not listening */
	}
	ai[5] = ai_of(&live_a, NULL);
	for (int i = 4; i >= 1; i--)
		ai[i] = ai_of(&closed_a[i - 1], &ai[i + 1]);
	ai[0] = ai_of(&h.a, &ai[1]);
	t0 = clock_mono_ms();
	if (transport_connect_addrs(&p, &ai[0], &t, &err) < 0)
		fail_msg("%s", err);
	took = clock_mono_ms() - t0;
	/* one attempt delay is 250 ms, five would be 1250 */
	if (took > 1100)
		fail_msg("connected after %lld ms", (long long)took);
	assert_true(accepted(live, 1000));
	transport_close(&t);
	hole_close(&h);
	close(live);
	for (int i = 0; i < 4; i++)
		close(closed_fd[i]);
}

/*
 * The resolver lists every IPv6 address before the IPv4 ones; when IPv6
 * is what is broken, the families alternate (RFC 8305 4) so IPv4 comes
 * second, not after every IPv6 address has had its turn.
 */
static void test_connect_families_alternate(void **state)
{
	struct transport_params p = { "relay.test", "25", NULL, 2000, 1000 };
	struct sockaddr_storage v6_a, v4_a;
	struct addrinfo ai_hole, ai_v6, ai_v4;
	struct transport *t = NULL;
	const char *err = NULL;
	struct hole h;
	int v6 = listener(AF_INET6, 8, &v6_a), v4;

	(void)state;
	if (v6 < 0)
		skip();		/* no IPv6 loopback here */
	v4 = listener(AF_INET, 8, &v4_a);
	assert_true(v4 >= 0);
	hole_open(&h, AF_INET6);
	ai_v4 = ai_of(&v4_a, NULL);
	ai_v6 = ai_of(&v6_a, &ai_v4);
	ai_hole = ai_of(&h.a, &ai_v6);
	if (transport_connect_addrs(&p, &ai_hole, &t, &err) < 0)
		fail_msg("%s", err);
	assert_true(accepted(v4, 1000));
	assert_false(accepted(v6, 0));
	transport_close(&t);
	hole_close(&h);
	close(v4);
	close(v6);
}

/* With every address blackholed, the budget is the whole timeout. */
static void test_connect_all_blackholed(void **state)
{
	struct transport_params p = { "relay.test", "25", NULL, 1000, 1000 };
	struct addrinfo ai1, ai2;
	struct transport *t = NULL;
	const char *err = NULL;
	struct hole h1, h2;
	int64_t t0, took;

	(void)state;
	hole_open(&h1, AF_INET);
	hole_open(&h2, AF_INET);
	ai2 = ai_of(&h2.a, NULL);
	ai1 = ai_of(&h1.a, &ai2);
	t0 = clock_mono_ms();
	assert_int_equal(transport_connect_addrs(&p, &ai1, &t, &err), -1);
	took = clock_mono_ms() - t0;
	assert_int_equal(transport_errno_kind(errno), TRANSPORT_ERR_TIMEOUT);
	assert_non_null(strstr(err, "relay.test port 25"));
	assert_non_null(strstr(err, "timed out"));
	if (took < 900 || took > 1900)
		fail_msg("gave up after %lld ms of a 1000 ms budget",
			 (long long)took);
	hole_close(&h1);
	hole_close(&h2);
}

/*
 * Running out of file descriptors.  Each case runs in a forked child
 * that lowers RLIMIT_NOFILE to its lowest free descriptor (starve())
 * when it has opened what it needs, and writes what it saw, one line,
 * into a pipe for the parent to check.
 */
static void starve(void)
{
	int fd = open("/dev/null", O_RDONLY);
	struct rlimit rl;

	close(fd);
	rl.rlim_cur = rl.rlim_max = (rlim_t)fd;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* starved - fn(arg, out, size) in a child; its line into out */
static void starved(void (*fn)(void *, char *, size_t), void *arg,
		    char *out, size_t size)
{
	int fds[2], status;
	ssize_t n, have = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char line[1024] = "";

		close(fds[0]);
		fn(arg, line, sizeof(line));
		n = write(fds[1], line, strlen(line));
		_exit(n < 0);
	}
	close(fds[1]);
	while (have < (ssize_t)size - 1 &&
	       (n = read(fds[0], out + have, size - 1 - (size_t)have)) > 0)
		have += n;
	out[have] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* connect_starved - transport_connect to host (arg) with no fd left */
static void connect_starved(void *arg, char *out, size_t size)
{
	struct transport_params p = { arg, port, NULL, 1000, 1000 };
	struct transport *t = NULL;
	const char *err = NULL;
	int rc;

	starve();
	rc = transport_connect(&p, &t, &err);
	snprintf(out, size, "rc=%d errno=%d %s", rc, errno,
		 rc < 0 ? err : "");
}

/* Out of descriptors, a name is not "not known": the message says why. */
static void test_no_fds_connect(void **state)
{
	char out[1024], want[64];

	(void)state;
	snprintf(want, sizeof(want), "rc=-1 errno=%d ", EMFILE);
	starved(connect_starved, "localhost", out, sizeof(out));
	if (strncmp(out, want, strlen(want)) != 0 ||
	    strstr(out, strerror(EMFILE)) == NULL)
		fail_msg("by name: %s", out);
	starved(connect_starved, "127.0.0.1", out, sizeof(out));
	if (strncmp(out, want, strlen(want)) != 0 ||
	    strstr(out, strerror(EMFILE)) == NULL)
		fail_msg("by address: %s", out);
}

/*
 * tls_new_starved - transport_tls_new loading ca_file, no fd left, after
 * a connection whose TLS never started (what its close may leave behind
 * must not become the reason given)
 */
static void tls_new_starved(void *arg, char *out, size_t size)
{
	struct transport_params p = { "127.0.0.1", port, NULL, 1000, 1000 };
	struct transport_tls_params tp = { true, cert }, off = { false, NULL };
	struct transport_tls *tls = NULL;
	struct transport *t = NULL;
	const char *err = NULL;
	char name[300];

	(void)arg;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	p.tls_name = name;	/* too long for SNI: fails before the hello */
	if (transport_tls_new(&off, &tls, &err) < 0 ||
	    transport_connect(&p, &t, &err) < 0 ||
	    transport_start_tls(t, tls, &err) == 0) {
		snprintf(out, size, "setup: %s", err ? err : "TLS started");
		return;
	}
	transport_close(&t);
	transport_tls_free(&tls);
	starve();
	if (transport_tls_new(&tp, &tls, &err) == 0)
		snprintf(out, size, "loaded");
	else
		snprintf(out, size, "%s", err);
}

/* ... nor a code dump of OpenSSL's ("error:80000018:system library"). */
static void test_no_fds_ca_file(void **state)
{
	char out[1024];

	(void)state;
	starved(tls_new_starved, NULL, out, sizeof(out));
	if (strncmp(out, cert, strlen(cert)) != 0 ||
	    strstr(out, strerror(EMFILE)) == NULL ||
	    strstr(out, "error:") != NULL)
		fail_msg("%s", out);
}

/*
 * verify_starved - a TLS handshake checked against a CA folder (which
 * OpenSSL reads during the check, a file per issuer it looks for) with
 * no fd left to read it with
 */
static void verify_starved(void *arg, char *out, size_t size)
{
	struct transport_params p = { "localhost", port, NULL, 2000, 2000 };
	struct transport_tls_params tp = { true, NULL };
	struct transport_tls *tls = NULL;
	struct transport *t = NULL;
	const char *err = NULL;
	char none[128];
	int rc;

	snprintf(none, sizeof(none), "%s/none.pem", dir);
	/* "the system store" is these, when they are set */
	setenv("SSL_CERT_DIR", arg, 1);
	setenv("SSL_CERT_FILE", none, 1);
	if (transport_tls_new(&tp, &tls, &err) < 0 ||
	    transport_connect(&p, &t, &err) < 0) {
		snprintf(out, size, "setup: %s", err);
		return;
	}
	starve();
	rc = transport_start_tls(t, tls, &err);
	snprintf(out, size, "rc=%d verify_failed=%d %s", rc,
		 transport_verify_failed(t), rc < 0 ? err : "");
}

/*
 * A store that cannot be read is not a bad certificate: the message says
 * why, and "retrying will not help" (transport_verify_failed) is not
 * claimed.  The same folder, with descriptors, verifies.
 */
static void test_no_fds_verify(void **state)
{
	char certs[128], cmd[1024], out[1024];

	(void)state;
	snprintf(certs, sizeof(certs), "%s/certs", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s %s/$(openssl x509 "
		 "-hash -noout -in %s).0", certs, cert, certs, cert);
	assert_int_equal(system(cmd), 0);
	starved(verify_starved, certs, out, sizeof(out));
	if (strncmp(out, "rc=-1 verify_failed=0 ", 22) != 0 ||
	    strstr(out, strerror(EMFILE)) == NULL)
		fail_msg("%s", out);
}

/*
 * try_tls - connect to host:srv_port, TLS with tls checking name, and
 * one line there and back (which takes in TLS 1.3 tickets); whether the
 * handshake resumed a session into *resumed.  No cmocka asserts: worker
 * threads call it.  Returns 0, or -1 with err filled.
 */
static int try_tls(struct transport_tls *tls, const char *host,
		   const char *srv_port, const char *name, bool *resumed,
		   const char **error_r)
{
	struct transport_params p = { host, srv_port, name, 2000, 2000 };
	struct transport *t;
	char got[64];
	size_t have = 0;
	ssize_t n = 0;
	int ret = -1;

	if (transport_connect(&p, &t, error_r) < 0)
		return -1;
	if (transport_tls_resumed(t)) {		/* no TLS yet */
		errmsg_set(error_r, "resumed before TLS");
		goto out;
	}
	if (transport_start_tls(t, tls, error_r) < 0)
		goto out;
	*resumed = transport_tls_resumed(t);
	if (transport_write(t, "ping\n", 5, error_r) < 0)
		goto out;
	while (have < 5 &&
	       (n = transport_read(t, got + have, sizeof(got) - have,
				   error_r)) > 0)
		have += (size_t)n;
	if (have < 5 || memcmp(got, "gnip\n", 5) != 0) {
		if (n >= 0)
			errmsg_set(error_r, "no echo");
		goto out;
	}
	ret = 0;
out:
	transport_close(&t);
	return ret;
}

/* connect_tls - try_tls, failing the test on any error */
static bool connect_tls(struct transport_tls *tls, const char *host,
			const char *srv_port, const char *name)
{
	const char *err = NULL;
	bool resumed = false;

	if (try_tls(tls, host, srv_port, name, &resumed, &err) < 0)
		fail_msg("TLS with %s: %s", name ? name : host, err);
	return resumed;
}

static struct transport_tls *new_tls(bool verify)
{
	struct transport_tls_params tp = { verify, verify ? cert : NULL };
	struct transport_tls *tls;
	const char *err = NULL;

	if (transport_tls_new(&tp, &tls, &err) < 0)
		fail_msg("transport_tls_new: %s", err);
	return tls;
}

/* The second connection to a relay resumes the first one's session. */
static void resumption(const char *srv_port)
{
	struct transport_tls *tls = new_tls(true);

	assert_false(connect_tls(tls, "127.0.0.1", srv_port, "localhost"));
	assert_true(connect_tls(tls, "127.0.0.1", srv_port, "localhost"));
	assert_true(connect_tls(tls, "127.0.0.1", srv_port, "localhost"));
	transport_tls_free(&tls);
}

static void test_tls13_resumption(void **state)
{
	(void)state;
	resumption(port);
}

static void test_tls12_resumption(void **state)
{
	(void)state;
	resumption(port12);
}

/* A session made for one name is never offered for another. */
static void no_cross_name(const char *srv_port, bool verify,
			  const char *name_a, const char *name_b)
{
	struct transport_tls *tls = new_tls(verify);

	assert_false(connect_tls(tls, "127.0.0.1", srv_port, name_a));
	assert_false(connect_tls(tls, "127.0.0.1", srv_port, name_b));
	assert_true(connect_tls(tls, "127.0.0.1", srv_port, name_a));
	assert_true(connect_tls(tls, "127.0.0.1", srv_port, name_b));
	transport_tls_free(&tls);
}

static void test_tls_no_cross_name_resumption(void **state)
{
	(void)state;
	/* Both names are in the certificate (NULL: the host, 127.0.0.1). */
	no_cross_name(port, true, "localhost", NULL);
	no_cross_name(port12, true, "localhost", NULL);
	/* Not checked at all, yet still kept apart. */
	no_cross_name(port, false, "localhost", "mail.example.com");
	no_cross_name(port12, false, "localhost", "mail.example.com");
}

/* Nor across contexts, so never with other verification settings. */
static void test_tls_no_cross_context_resumption(void **state)
{
	struct transport_tls *unchecked = new_tls(false);
	struct transport_tls *checked = new_tls(true);

	(void)state;
	assert_false(connect_tls(unchecked, "127.0.0.1", port, "localhost"));
	assert_false(connect_tls(checked, "127.0.0.1", port, "localhost"));
	assert_true(connect_tls(unchecked, "127.0.0.1", port, "localhost"));
	transport_tls_free(&unchecked);
	transport_tls_free(&checked);
}

/* Many workers, one context: the cache under its lock (and ASan). */
static struct transport_tls *shared_tls;

struct worker {
	const char *port;
	int failed;
	char err[256];		/* the last failure, copied from the thread */
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	const char *err;
	bool resumed;

	for (int i = 0; i < 5; i++) {
		if (try_tls(shared_tls, "127.0.0.1", w->port, "localhost",
			    &resumed, &err) < 0) {
			w->failed++;
			snprintf(w->err, sizeof(w->err), "%s", err);
		}
	}
	return NULL;
}

static void test_tls_shared_by_threads(void **state)
{
	pthread_t th[4];
	struct worker w[4];

	(void)state;
	shared_tls = new_tls(true);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .port = i % 2 ? port : port12 };
		assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]),
				 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		if (w[i].failed)
			fail_msg("worker %d: %d failed, last: %s", i,
				 w[i].failed, w[i].err);
	/* Whatever the interleaving, both relays' sessions are there now. */
	assert_true(connect_tls(shared_tls, "127.0.0.1", port, "localhost"));
	assert_true(connect_tls(shared_tls, "127.0.0.1", port12,
				"localhost"));
	transport_tls_free(&shared_tls);
}

/*
 * write_until_error - write to a connection whose peer has gone until a
 * write fails (the first ones may still land in the socket buffer, the
 * peer's RST comes back after them); a SIGPIPE would end the test here.
 */
static void write_until_error(struct transport *t)
{
	const char *err = NULL;
	int rc = 0;

	for (int i = 0; i < 200 && rc == 0; i++) {
		rc = transport_write(t, "data\n", 5, &err);
		if (rc == 0)
			usleep(10000);
	}
	assert_int_equal(rc, -1);
	assert_non_null(err);
}

static void test_write_to_closed_peer(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	struct transport_params p = { "127.0.0.1", NULL, NULL, 1000, 1000 };
	struct transport *t;
	const char *err = NULL;
	char lport[16];
	int lfd = socket(AF_INET, SOCK_STREAM, 0), afd;

	(void)state;
	signal(SIGPIPE, SIG_DFL);	/* what the transport must not need */
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	snprintf(lport, sizeof(lport), "%d", ntohs(a.sin_port));
	p.port = lport;
	assert_int_equal(transport_connect(&p, &t, &err), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	close(afd);
	close(lfd);
	write_until_error(t);
	transport_close(&t);
	signal(SIGPIPE, SIG_IGN);
}

static void test_tls_write_to_closed_peer(void **state)
{
	struct transport_params p = { "127.0.0.1", port, "localhost", 2000,
				      2000 };
	struct transport_tls *tls = new_tls(true);
	struct transport *t;
	const char *err = NULL;
	char buf[64];

	(void)state;
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(transport_connect(&p, &t, &err), 0);
	assert_int_equal(transport_start_tls(t, tls, &err), 0);
	/* s_server -rev closes the connection on "CLOSE". */
	assert_int_equal(transport_write(t, "CLOSE\n", 6, &err),
			 0);
	while (transport_read(t, buf, sizeof(buf), &err) > 0)
		;
	write_until_error(t);
	transport_close(&t);	/* its close_notify must not kill us either */
	transport_tls_free(&tls);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * digest_server - a TLS server in a child: one connection, reads len
 * bytes, answers their SHA-256 (32 bytes) and closes.  Returns its pid;
 * *port_r is where it listens.
 */
static pid_t digest_server(size_t len, char *port_r, size_t portsize)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t pid;

	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	snprintf(port_r, portsize, "%d", ntohs(a.sin_port));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char buf[65536], out[32];
		size_t got = 0, n;
		SSL *ssl;
		int fd;

#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
		if (ctx == NULL || md == NULL ||
		    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key,
						SSL_FILETYPE_PEM) != 1 ||
		    (fd = accept(lfd, NULL, NULL)) < 0 ||
		    (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
		    SSL_accept(ssl) != 1 ||
		    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
			_exit(1);
		while (got < len && SSL_read_ex(ssl, buf, sizeof(buf), &n))
			if (EVP_DigestUpdate(md, buf, n) == 1)
				got += n;
		if (got != len || EVP_DigestFinal_ex(md, out, NULL) != 1 ||
		    SSL_write_ex(ssl, out, sizeof(out), &n) != 1)
			_exit(1);
		SSL_shutdown(ssl);
		_exit(0);
	}
	close(lfd);
	return pid;
}

/*
 * A write of several TRANSPORT_TLS_BATCHes (256 KB) and an odd tail, in
 * one call: the records OpenSSL cuts, gathered and sent a batch at a
 * time, arrive whole and in order.  Then a small one on the same
 * connection, through the same (emptied) gathering buffer.
 */
static void test_tls_large_write(void **state)
{
	size_t len = 3 * 256 * 1024 + 12345;
	char *data = malloc(len + 7), sport[16];
	struct transport_params p = { "127.0.0.1", sport, "localhost", 5000,
				      5000 };
	struct transport_tls *tls = new_tls(true);
	struct transport *t;
	const char *err = NULL;
	unsigned char want[32], got[32];
	size_t have = 0;
	ssize_t n;
	pid_t pid;
	int status;

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < len + 7; i++)
		data[i] = (char)(i * 7 + i / 1000);
	EVP_Digest(data, len + 7, want, NULL, EVP_sha256(), NULL);
	pid = digest_server(len + 7, sport, sizeof(sport));
	assert_int_equal(transport_connect(&p, &t, &err), 0);
	if (transport_start_tls(t, tls, &err) < 0)
		fail_msg("%s", err);
	assert_int_equal(transport_write(t, data, len, &err), 0);
	assert_int_equal(transport_write(t, data + len, 7, &err), 0);
	while (have < sizeof(got) &&
	       (n = transport_read(t, got + have, sizeof(got) - have,
				   &err)) > 0)
		have += (size_t)n;
	assert_int_equal(have, sizeof(got));
	assert_memory_equal(got, want, sizeof(want));
	transport_close(&t);
	transport_tls_free(&tls);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_verified),
		cmocka_unit_test(test_tls_untrusted_chain),
		cmocka_unit_test(test_tls_wrong_name),
		cmocka_unit_test(test_tls_cn_only),
		cmocka_unit_test(test_tls_empty_name),
		cmocka_unit_test(test_sni_ipv4),
		cmocka_unit_test(test_sni_ipv6),
		cmocka_unit_test(test_sni_unsendable),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_read_deadline),
		cmocka_unit_test(test_connect_blackholed_first),
		cmocka_unit_test(test_connect_failure_starts_next),
		cmocka_unit_test(test_connect_families_alternate),
		cmocka_unit_test(test_connect_all_blackholed),
		cmocka_unit_test(test_no_fds_connect),
		cmocka_unit_test(test_no_fds_ca_file),
		cmocka_unit_test(test_no_fds_verify),
		cmocka_unit_test(test_tls13_resumption),
		cmocka_unit_test(test_tls_large_write),
		cmocka_unit_test(test_tls12_resumption),
		cmocka_unit_test(test_tls_no_cross_name_resumption),
		cmocka_unit_test(test_tls_no_cross_context_resumption),
		cmocka_unit_test(test_tls_shared_by_threads),
		cmocka_unit_test(test_write_to_closed_peer),
		cmocka_unit_test(test_tls_write_to_closed_peer),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
