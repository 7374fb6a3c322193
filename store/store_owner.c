/*
 * store_owner - lease owners: the name a sender run leases jobs under,
 * and whether the run a name stands for may still be at work (see
 * store.h).  Nothing here touches the database, so any backend behind
 * store.h shares it.
 *
 * An owner reads, in one line that also ends up in reply texts
 * ("interrupted: sender OWNER stopped; ..."):
 *
 *   HOST pid PID run RUN boot BOOT pidns PIDNS start START
 *
 *   HOST   the host name, at most 64 bytes, every byte that is not
 *          printable ASCII or is ':' made '_'; for people only
 *   PID    getpid()
 *   RUN    64 random bits in hex, new for every call: no two runs share
 *          a name, even when everything else below is unknown or equal
 *   BOOT   /proc/sys/kernel/random/boot_id, the same for every process
 *          of one boot of one kernel, whatever container it is in
 *   PIDNS  the inode of /proc/self/ns/pid: which PID namespace PID is in
 *   START  field 22 of /proc/self/stat, the start time in clock ticks
 *          since boot: a PID used again later has another
 *
 * A field that cannot be learned is "-" (no /proc in a minimal
 * container): unknown, so nobody can declare that owner dead.
 *
 * Why not "HOST:PID", as before: two containers with one host name (host
 * networking, or the same --hostname), each running volley as PID 1,
 * were the same owner and reclaimed each other's live leases; a PID in
 * another namespace of the same kernel gave false "gone"; a PID taken
 * again after a restart looked alive until the lease expired.
 *
 * The new name holds no ':', so a volley from before it reads it as an
 * owner on another host and leaves its leases to expire.
 */
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OWNER_HOST_MAX	64
#define OWNER_UNKNOWN	"-"

/* One owner's fields, each as text: what is compared is what was shown. */
struct owner {
	char host[OWNER_HOST_MAX + 1];
	char pid[16];
	char run[33];
	char boot[40];
	char pidns[24];
	char start[24];
};

static bool owner_known(const char *field)
{
	return strcmp(field, OWNER_UNKNOWN) != 0;
}

static void owner_format(char *dst, size_t size, const struct owner *o)
{
	snprintf(dst, size, "%s pid %s run %s boot %s pidns %s start %s",
		 o->host, o->pid, o->run, o->boot, o->pidns, o->start);
}

/* only_of - s is not empty and every byte of it is in set */
static bool only_of(const char *s, const char *set)
{
	return s[0] != '\0' && s[strspn(s, set)] == '\0';
}

#define DIGITS	"0123456789"
#define HEX	"0123456789abcdef"

/*
 * owner_word - the next space-separated word of *p into dst, and *p past
 * it and one space; -1 if there is none or it does not fit.
 */
static int owner_word(const char **p, char *dst, size_t size)
{
	size_t n = strcspn(*p, " ");

	if (n == 0 || n >= size)
		return -1;
	memcpy(dst, *p, n);
	dst[n] = '\0';
	*p += n;
	if (**p == ' ')
		(*p)++;
	return 0;
}

/* owner_key - the next word of *p must be key */
static int owner_key(const char **p, const char *key)
{
	char word[8];

	if (owner_word(p, word, sizeof(word)) < 0 || strcmp(word, key) != 0)
		return -1;
	return 0;
}

/*
 * owner_parse - the fields of an owner that store_lease_owner_self()
 * could have made, or -1.  Written back, they must give the very same
 * text: one spelling per owner, so that nothing half-parsed is trusted.
 */
static int owner_parse(const char *s, struct owner *o)
{
	char back[300];
	const char *p = s;
	long pid;

	if (strlen(s) >= sizeof(back) ||
	    owner_word(&p, o->host, sizeof(o->host)) < 0 ||
	    owner_key(&p, "pid") < 0 ||
	    owner_word(&p, o->pid, sizeof(o->pid)) < 0 ||
	    owner_key(&p, "run") < 0 ||
	    owner_word(&p, o->run, sizeof(o->run)) < 0 ||
	    owner_key(&p, "boot") < 0 ||
	    owner_word(&p, o->boot, sizeof(o->boot)) < 0 ||
	    owner_key(&p, "pidns") < 0 ||
	    owner_word(&p, o->pidns, sizeof(o->pidns)) < 0 ||
	    owner_key(&p, "start") < 0 ||
	    owner_word(&p, o->start, sizeof(o->start)) < 0 || *p != '\0')
		return -1;
	if (!only_of(o->pid, DIGITS) || strlen(o->pid) > 10 ||
	    (pid = strtol(o->pid, NULL, 10)) <= 0 || pid > INT_MAX ||
	    !only_of(o->run, HEX) ||
	    (owner_known(o->boot) && !only_of(o->boot, HEX "-")) ||
	    (owner_known(o->pidns) && !only_of(o->pidns, DIGITS)) ||
	    (owner_known(o->start) && !only_of(o->start, DIGITS)))
		return -1;
	owner_format(back, sizeof(back), o);
	return strcmp(back, s) == 0 ? 0 : -1;
}

/*
 * read_small - the first line of a small file into dst (NUL-terminated,
 * newline dropped), or -1 with errno set.
 */
static int read_small(const char *path, char *dst, size_t size)
{
	size_t n = 0;
	ssize_t got;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (n + 1 < size &&
	       (got = read(fd, dst + n, size - 1 - n)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		n += (size_t)got;
	}
	close(fd);
	dst[n] = '\0';
	dst[strcspn(dst, "\n")] = '\0';
	return 0;
}

/*
 * proc_start_time - field 22 of the stat file at path (a process's start
 * time in clock ticks since boot) into dst, or -1 with errno set (EINVAL
 * when the file does not read as one).  The command name in field 2 may
 * hold spaces and parentheses, so fields are counted from its last ')'.
 */
static int proc_start_time(const char *path, char *dst, size_t size)
{
	char line[2048];
	const char *p;
	size_t n;

	if (read_small(path, line, sizeof(line)) < 0)
		return -1;
	p = strrchr(line, ')');
	if (p == NULL)
		goto out_inval;
	for (int field = 2; field < 22; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			goto out_inval;
		p++;
	}
	n = strspn(p, DIGITS);
	if (n == 0 || n >= size || (p[n] != ' ' && p[n] != '\0'))
		goto out_inval;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;

out_inval:
	errno = EINVAL;
	return -1;
}

static void owner_host(char *dst, size_t size)
{
	char host[256];
	size_t n;

	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	host[OWNER_HOST_MAX] = '\0';
	/* one word, and no ':' for volleys that still read "HOST:PID" */
	for (n = 0; host[n] != '\0'; n++) {
		unsigned char c = (unsigned char)host[n];

		if (c > 0x7e || !isgraph(c) || c == ':')
			host[n] = '_';
	}
	snprintf(dst, size, "%s", n > 0 ? host : OWNER_UNKNOWN);
}

/* splitmix64's finaliser: every input bit moves every output bit */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void owner_run_id(char *dst, size_t size)
{
	struct timespec wall, mono;
	uint64_t r;

	/* GRND_NONBLOCK: never wait for entropy at early boot for this */
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* still unique beside the PID, boot and start time */
		clock_gettime(CLOCK_REALTIME, &wall);
		clock_gettime(CLOCK_MONOTONIC, &mono);
		r = mix64((uint64_t)wall.tv_sec * 1000000000u +
			  (uint64_t)wall.tv_nsec);
		r = mix64(r ^ ((uint64_t)mono.tv_nsec << 20) ^
			  (uint64_t)getpid());
	}
	snprintf(dst, size, "%016llx", (unsigned long long)r);
}

static void owner_boot_id(char *dst, size_t size)
{
	char id[64];

	if (read_small("/proc/sys/kernel/random/boot_id", id,
		       sizeof(id)) < 0 ||
	    !only_of(id, HEX "-") || strlen(id) >= size)
		strcpy(id, OWNER_UNKNOWN);
	snprintf(dst, size, "%s", id);
}

static void owner_pidns(char *dst, size_t size)
{
	struct stat ns;

	/* the namespace file's inode names the namespace ("pid:[INODE]") */
	if (stat("/proc/self/ns/pid", &ns) < 0)
		snprintf(dst, size, OWNER_UNKNOWN);
	else
		snprintf(dst, size, "%llu", (unsigned long long)ns.st_ino);
}

void store_lease_owner_self(char *dst, size_t size)
{
	struct owner o;

	owner_host(o.host, sizeof(o.host));
	snprintf(o.pid, sizeof(o.pid), "%ld", (long)getpid());
	owner_run_id(o.run, sizeof(o.run));
	owner_boot_id(o.boot, sizeof(o.boot));
	owner_pidns(o.pidns, sizeof(o.pidns));
	if (proc_start_time("/proc/self/stat", o.start, sizeof(o.start)) < 0)
		strcpy(o.start, OWNER_UNKNOWN);
	owner_format(dst, size, &o);
}

/*
 * proc_is_ours - /proc shows this process's PID namespace, so that
 * /proc/PID is the process kill(PID) reaches.  A /proc mounted for
 * another namespace (unshare --pid without --mount-proc) shows other
 * numbers.
 */
static bool proc_is_ours(void)
{
	char link[32];
	ssize_t n = readlink("/proc/self", link, sizeof(link) - 1);

	if (n <= 0)
		return false;
	link[n] = '\0';
	return only_of(link, DIGITS) && strtol(link, NULL, 10) == getpid();
}

/*
 * pid_gone - false unless PID, in this process's namespace, is surely
 * not the process that started at start (clock ticks since boot, or "-"
 * if unknown): no such process, or one started at another time.
 */
static bool pid_gone(pid_t pid, const char *start)
{
	char path[64], now[24];

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	if (!owner_known(start) || !proc_is_ours())
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (proc_start_time(path, now, sizeof(now)) < 0)
		/* it exited since kill(), or hidepid hides it: ask again */
		return kill(pid, 0) < 0 && errno == ESRCH;
	return strcmp(now, start) != 0;
}

/*
 * legacy_alive - an owner "HOST:PID" from a volley before the current
 * names, judged as that volley did: on this host (by name) it is alive
 * while kill(PID, 0) finds a process.  See store.h for why that is weak.
 */
static bool legacy_alive(const char *owner, const struct owner *self)
{
	const char *colon = strrchr(owner, ':');
	long pid;

	if (colon == NULL || !owner_known(self->host) ||
	    (size_t)(colon - owner) != strlen(self->host) ||
	    strncmp(owner, self->host, strlen(self->host)) != 0)
		return true;	/* another host: only expiry can tell */
	if (!only_of(colon + 1, DIGITS) || strlen(colon + 1) > 10)
		return true;
	pid = strtol(colon + 1, NULL, 10);
	if (pid <= 0 || pid > INT_MAX)
		return true;
	return !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

bool store_lease_owner_alive(const char *owner, const char *self)
{
	struct owner o, me;

	/* this very process cannot be an earlier owner still at work */
	if (strcmp(owner, self) == 0)
		return false;
	if (owner_parse(self, &me) < 0)
		return true;
	if (owner_parse(owner, &o) < 0)
		return legacy_alive(owner, &me);
	/* A PID means something only in the namespace and boot it was
	 * taken in; anywhere else, only the lease's expiry can tell. */
	if (!owner_known(o.boot) || strcmp(o.boot, me.boot) != 0 ||
	    !owner_known(o.pidns) || strcmp(o.pidns, me.pidns) != 0)
		return true;
	return !pid_gone((pid_t)strtol(o.pid, NULL, 10), o.start);
}
