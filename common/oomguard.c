/*
 * oomguard - see oomguard.h.
 */
#include "oomguard.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static __thread sigjmp_buf oomguard_jump;
static __thread volatile sig_atomic_t oomguard_active;

static void oomguard_on_crash(int sig)
{
	if (!oomguard_active) {
		/* not ours: crash as if we were not here */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	siglongjmp(oomguard_jump, 1);
}

/* an exit() from inside the library (flex's "out of dynamic memory") */
static void oomguard_on_exit(void)
{
	static const char msg[] = "volley: out of memory (in libconfig); "
				  "stopping\n";

	if (!oomguard_active)
		return;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to try */
	}
	_exit(EXIT_FAILURE);
}

void oomguard_fail(void)
{
	errno = ENOMEM;
	if (oomguard_active)
		siglongjmp(oomguard_jump, 1);
	oomguard_on_exit();	/* unguarded: cannot happen; stop anyway */
	_exit(EXIT_FAILURE);
}

enum oomguard_end oomguard_run(int (*fn)(void *ctx), void *ctx, int *ret_r)
{
	static bool exit_hook;
	struct sigaction sa, old_segv, old_bus;
	enum oomguard_end end;

	if (!exit_hook && atexit(oomguard_on_exit) == 0)
		exit_hook = true;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = oomguard_on_crash;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	errno = 0;
	if (sigsetjmp(oomguard_jump, 1) == 0) {
		oomguard_active = 1;
		*ret_r = fn(ctx);
		end = OOMGUARD_OK;
	} else {
		end = errno == ENOMEM ? OOMGUARD_OUT_OF_MEMORY :
		      OOMGUARD_CRASHED;
	}
	oomguard_active = 0;
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return end;
}

const char *oomguard_message(enum oomguard_end end)
{
	switch (end) {
	case OOMGUARD_OK:
		return "ok";
	case OOMGUARD_OUT_OF_MEMORY:
		return "out of memory while reading it";
	default:
		return "volley crashed while reading it (a bug: please "
		       "report it)";
	}
}
