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
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/transport.h"

static char dir[64];
static char cert[128];
static char port[16];
static pid_t server = -1;

/* free_port - a loopback port nobody listens on right now */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

static int setup(void **state)
{
	char cmd[512], key[128], accept[64];
	struct transport_params p = { "127.0.0.1", port, NULL, 1000, 1000 };
	struct transport *t = NULL;
	char err[256];

	(void)state;
	signal(SIGPIPE, SIG_IGN);	/* as volley's main does */
	strcpy(dir, "/tmp/volley-test-tls-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 "
		 "-nodes -keyout %s -out %s -days 1 -subj /CN=localhost "
		 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
		 ">/dev/null 2>&1", key, cert);
	assert_int_equal(system(cmd), 0);
	snprintf(port, sizeof(port), "%d", free_port());
	snprintf(accept, sizeof(accept), "127.0.0.1:%s", port);
	server = fork();
	assert_true(server >= 0);
	if (server == 0) {
		int devnull = open("/dev/null", 1);

		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("openssl", "openssl", "s_server", "-quiet", "-rev",
		       "-accept", accept, "-cert", cert, "-key", key,
		       (char *)NULL);
		_exit(127);
	}
	/* Wait until it listens. */
	for (int i = 0; i < 100; i++) {
		if (transport_connect(&p, &t, err, sizeof(err)) == 0)
			break;
		usleep(50000);
	}
	assert_non_null(t);
	transport_close(&t);
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
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/*
 * tls_round_trip - connect to host (checking name in the certificate),
 * TLS with these settings, and see a line come back reversed.
 */
static int tls_round_trip(const char *host, const char *name, bool verify,
			  const char *ca, char *err, size_t errsize)
{
	struct transport_params p = { host, port, name, 2000, 2000 };
	struct transport_tls_params tp = { verify, ca };
	struct transport_tls *tls;
	struct transport *t;
	char got[64];
	ssize_t n;
	size_t have = 0;
	int ret = -1;

	assert_int_equal(transport_tls_new(&tp, &tls, err, errsize), 0);
	if (transport_connect(&p, &t, err, errsize) < 0)
		goto out;
	if (transport_start_tls(t, tls, err, errsize) < 0)
		goto out_close;
	assert_true(transport_is_tls(t));
	assert_int_equal(transport_write(t, "hello\n", 6, err, errsize), 0);
	while (have < 6 && (n = transport_read(t, got + have,
					       sizeof(got) - have, err,
					       errsize)) > 0)
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

static void test_tls_verified(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(tls_round_trip("localhost", NULL, true, cert, err,
					sizeof(err)), 0);
	assert_int_equal(tls_round_trip("127.0.0.1", NULL, true, cert, err,
					sizeof(err)), 0);
	assert_int_equal(tls_round_trip("127.0.0.1", "localhost", true, cert,
					err, sizeof(err)), 0);
}

static void test_tls_untrusted_chain(void **state)
{
	char err[256];

	(void)state;
	/* The system store does not know the test's certificate. */
	assert_int_equal(tls_round_trip("localhost", NULL, true, NULL, err,
					sizeof(err)), -1);
	assert_non_null(strstr(err, "certificate verify failed"));
	/* ... which tls_verify = false accepts. */
	assert_int_equal(tls_round_trip("localhost", NULL, false, NULL, err,
					sizeof(err)), 0);
}

static void test_tls_wrong_name(void **state)
{
	char err[256];

	(void)state;
	if (tls_round_trip("127.0.0.1", "mail.example.com", true, cert, err,
			   sizeof(err)) == 0)
		fail_msg("a certificate for localhost passed for another name");
	assert_non_null(strstr(err, "mismatch"));
	if (tls_round_trip("127.0.0.1", "127.0.0.2", true, cert, err,
			   sizeof(err)) == 0)
		fail_msg("a certificate for 127.0.0.1 passed for 127.0.0.2");
	assert_non_null(strstr(err, "mismatch"));
}

/* An empty name means the host, never "check no name at all". */
static void test_tls_empty_name(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(tls_round_trip("localhost", "", true, cert, err,
					sizeof(err)), 0);
}

static void test_connect_refused(void **state)
{
	struct transport_params p = { "127.0.0.1", NULL, NULL, 1000, 1000 };
	struct transport *t;
	char err[256], closed[16];

	(void)state;
	snprintf(closed, sizeof(closed), "%d", free_port());
	p.port = closed;
	assert_int_equal(transport_connect(&p, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "refused"));
	p.host = "no-such-host.invalid";
	assert_int_equal(transport_connect(&p, &t, err, sizeof(err)), -1);
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
	char err[256], lport[16], buf[16];
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	snprintf(lport, sizeof(lport), "%d", ntohs(a.sin_port));
	p.port = lport;
	assert_int_equal(transport_connect(&p, &t, err, sizeof(err)), 0);
	assert_int_equal(transport_read(t, buf, sizeof(buf), err,
					sizeof(err)), -1);
	assert_non_null(strstr(err, "no reply"));
	transport_close(&t);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_verified),
		cmocka_unit_test(test_tls_untrusted_chain),
		cmocka_unit_test(test_tls_wrong_name),
		cmocka_unit_test(test_tls_empty_name),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_read_deadline),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
