/*
 * oomguard - a call into a library that does not check its allocations
 * (libconfig 1.5: when one fails it dereferences NULL, hands out NULL
 * strings, or its scanner prints "out of dynamic memory" and calls
 * exit(2)), made to end in an error instead of a crash.
 *
 * oomguard_run runs fn with SIGSEGV and SIGBUS caught: a crash inside it
 * jumps back and is reported, as out of memory when errno says ENOMEM
 * (the failed allocation set it), else as a crash; an exit() inside it
 * prints one clear line and leaves with status 1.  What fn had made is
 * abandoned, not freed: the caller reports the error and stops.  A crash
 * outside a guarded call is not touched (it crashes as it would).
 *
 * For the main thread's start-up work (reading configuration files),
 * not for hot paths: each run installs and restores signal handlers.
 */
#ifndef VOLLEY_OOMGUARD_H
#define VOLLEY_OOMGUARD_H

enum oomguard_end {
	OOMGUARD_OK,		/* fn returned */
	OOMGUARD_OUT_OF_MEMORY,	/* it crashed, or oomguard_fail, on ENOMEM */
	OOMGUARD_CRASHED,	/* it crashed otherwise */
};

/*
 * oomguard_run - fn(ctx) under the guard.  Returns how it ended; *ret_r
 * is fn's return when OOMGUARD_OK.
 */
enum oomguard_end oomguard_run(int (*fn)(void *ctx), void *ctx, int *ret_r);

/*
 * oomguard_fail - inside fn: the library handed back NULL where it had
 * to make something (a string setting without a string): out of memory.
 * Does not return.
 */
__attribute__((noreturn)) void oomguard_fail(void);

/* oomguard_message - "out of memory" or "... crashed", for an end */
const char *oomguard_message(enum oomguard_end end);

#endif
