/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tap.h - a small kselftest-style TAP harness for the xpmem test programs.
 *
 * A program defines a table of { name, function } and calls
 * tap_main(table, n, argc, argv).  Each test runs in its own forked child
 * with a time limit, so a crash, a hang or a stray signal fails that test
 * only.  A test returns 0 for pass, TAP_SKIP to skip, anything else fails;
 * FAIL_IF() prints a "# " diagnostic with the line.  Output:
 *
 *   TAP version 13
 *   1..N
 *   ok 1 name
 *   not ok 2 name
 *   ...
 *   # N passed, N failed, N skipped
 *
 * The closing "N passed, N failed" line of a whole run is printed by the
 * suite runner (tests/run-suite), which adds up the programs.
 */
#ifndef XPMEM_TESTS_TAP_H
#define XPMEM_TESTS_TAP_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "time_scale.h"

#define TAP_SKIP 77

struct tap_test {
	const char *name;
	int (*fn)(void);
	unsigned int timeout;	/* seconds; 0 = default */
};

static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

#define FAIL_IF(cond, ...) do {						\
	if (cond) {							\
		tap_diag("%s:%d: %s", __func__, __LINE__, #cond);	\
		tap_diag(__VA_ARGS__);					\
		return 1;						\
	}								\
} while (0)

/* For checking an expected errno: ret must be -1 and errno must match. */
#define FAIL_UNLESS_ERRNO(ret, err) \
	FAIL_IF((ret) != -1 || errno != (err), "got %lld errno %d (%s), want errno %d (%s)", \
		(long long)(ret), errno, strerror(errno), (err), strerror(err))

/* ---- probing memory for SIGSEGV / SIGBUS without dying ------------------ */

static sigjmp_buf tap_probe_env;
static volatile sig_atomic_t tap_probe_sig;

static void tap_probe_handler(int sig)
{
	tap_probe_sig = sig;
	siglongjmp(tap_probe_env, 1);
}

/*
 * Read (write=0) or write (write=1, storing *val) one byte-aligned long at
 * addr.  Returns 0, or the signal (SIGSEGV/SIGBUS) the access raised.
 */
static inline int tap_probe(volatile long *addr, int write, long *val)
{
	struct sigaction sa, old_segv, old_bus;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tap_probe_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	tap_probe_sig = 0;
	if (sigsetjmp(tap_probe_env, 1) == 0) {
		if (write)
			*addr = *val;
		else
			*val = *addr;
	}
	sig = tap_probe_sig;
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
}

/* ---- running the table --------------------------------------------------- */

/* every time limit of a test is multiplied by the guest's slowness */
static inline double tap_time_scale(void)
{
	return xpmem_time_scale();
}

/*
 * The kernel log line that starts each test (root only; elsewhere
 * nothing): tap_dmesg_has() looks only after it, so a test judges the
 * log lines of its own time, not an earlier test's.
 */
static inline void tap_mark_kmsg(const char *name)
{
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	char line[256];
	int n;

	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "xpmem-test: %s begins (pgid %d)\n", name,
		     (int)getpgrp());
	if (write(fd, line, (size_t)n) < 0)
		n = 0;
	close(fd);
}

/*
 * Has the kernel logged a line containing @needle (a grep pattern without
 * quotes) since this test began (its tap_mark_kmsg line)?
 */
static inline int tap_dmesg_has(const char *needle)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "dmesg | sed -n '/xpmem-test: .* begins (pgid %d)$/,$p' | grep -q '%s'",
		 (int)getpgrp(), needle);
	return system(cmd) == 0;
}

/*
 * The test's leftover helpers (its process group @pgid, and any orphan of
 * it: tap_main makes this process their subreaper) are killed and reaped
 * before the next test starts, so that no test sees another's processes
 * still exiting (and their driver objects still being torn down).  A
 * helper that is still there 10 s (times the time scale) after SIGKILL is
 * stuck, in the driver or elsewhere: the test fails.
 */
static inline int tap_reap_leftovers(pid_t pgid)
{
	double limit = 10 * tap_time_scale();
	struct timespec a, b;
	char path[64];
	FILE *f;
	long c;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (;;) {
		kill(-pgid, SIGKILL);
		/* orphans that left the group: this process's children now */
		snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
		f = fopen(path, "r");
		while (f && fscanf(f, "%ld", &c) == 1)
			kill((pid_t)c, SIGKILL);
		if (f)
			fclose(f);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (b.tv_sec - a.tv_sec + (b.tv_nsec - a.tv_nsec) / 1e9 > limit) {
			tap_diag("a helper of this test is still alive %.0f s after SIGKILL", limit);
			return 1;
		}
		usleep(10000);
	}
}

static inline int tap_run_one(const struct tap_test *t)
{
	unsigned int limit = (unsigned int)((t->timeout ? t->timeout : 60) * tap_time_scale());
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);	/* so a timeout can kill its helpers too */
		tap_mark_kmsg(t->name);
		alarm(limit);
		exit(t->fn());
	}
	setpgid(pid, pid);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (tap_reap_leftovers(pid))
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WTERMSIG(status) == SIGALRM)
		tap_diag("timed out after %us", limit);
	else
		tap_diag("killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	return -1;
}

/* Do the arguments select @t?  "-name" leaves it out; plain names select only those. */
static inline int tap_selected(const struct tap_test *t, int only_named, int argc, char **argv)
{
	int selected = !only_named;

	for (int a = 1; a < argc; a++) {
		if (argv[a][0] == '-' && !strcmp(argv[a] + 1, t->name))
			selected = 0;
		else if (!strcmp(argv[a], t->name))
			selected = 1;
	}
	return selected;
}

static inline int tap_main(const struct tap_test *tests, size_t n,
			   int argc, char **argv)
{
	unsigned int pass = 0, fail = 0, skip = 0;
	int only_named = 0;
	struct timespec t0, t1;
	size_t i, planned = 0, num = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* orphans of a test's helpers come back to us (tap_reap_leftovers) */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* a misspelt name must not pass as "nothing selected" or "nothing left out" */
	for (int a = 1; a < argc; a++) {
		const char *name = argv[a][0] == '-' ? argv[a] + 1 : argv[a];
		size_t t;

		for (t = 0; t < n && strcmp(name, tests[t].name); t++)
			;
		if (t == n) {
			printf("TAP version 13\n1..1\nnot ok 1 test_selection\n# no test is named %s\n",
			       name);
			return 1;
		}
	}
	/*
	 * Arguments select tests by name; "-name" leaves one out.  With no
	 * plain name among them, every test not left out runs.
	 */
	for (int a = 1; a < argc; a++)
		if (argv[a][0] != '-')
			only_named = 1;
	/*
	 * A test that is not selected is not run and not reported at all
	 * (it is no skip: make check-full runs it); the plan counts the
	 * selected ones.
	 */
	for (i = 0; i < n; i++)
		planned += tap_selected(&tests[i], only_named, argc, argv);
	printf("TAP version 13\n1..%zu\n", planned);
	tap_diag("time limits scaled by %.1f (XPMEM_TIME_SCALE)", tap_time_scale());
	for (i = 0; i < n; i++) {
		int r;

		if (!tap_selected(&tests[i], only_named, argc, argv))
			continue;
		num++;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = tap_run_one(&tests[i]);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		tap_diag("%s took %.1f s", tests[i].name,
			 (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
		if (r == 0) {
			printf("ok %zu %s\n", num, tests[i].name);
			pass++;
		} else if (r == TAP_SKIP) {
			printf("ok %zu %s # SKIP\n", num, tests[i].name);
			skip++;
		} else {
			printf("not ok %zu %s\n", num, tests[i].name);
			fail++;
		}
	}
	printf("# %u passed, %u failed, %u skipped\n", pass, fail, skip);
	return fail ? 1 : 0;
}

#endif /* XPMEM_TESTS_TAP_H */
