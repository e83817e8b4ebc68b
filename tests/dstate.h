/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dstate.h - tasks in uninterruptible sleep (D state), for the tests that
 * kill processes mid-operation: after each kill, nothing may be left stuck
 * in the kernel.  A brief D is a lock or I/O wait, so only a task that
 * stays in D for a second counts.
 */
#ifndef XPMEM_TESTS_DSTATE_H
#define XPMEM_TESTS_DSTATE_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The tasks in D state now: up to @max pids into @pids (may be NULL) and
 * their /proc stat lines into @lines (each of 512 bytes, may be NULL).
 * Returns how many there are (also beyond @max).
 */
static inline int d_state_scan(int *pids, char (*lines)[512], int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		char path[300], buf[512], *p;
		ssize_t len;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = 0;
		p = strrchr(buf, ')');
		if (!p || p[1] != ' ' || p[2] != 'D')
			continue;
		if (n < max && pids)
			pids[n] = atoi(e->d_name);
		if (n < max && lines)
			memcpy(lines[n], buf, (size_t)len + 1);
		n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* tasks in D state now; with @show, their /proc stat lines on stdout as "# " lines */
static inline int d_state_count(int show)
{
	static char lines[64][512];
	int n = d_state_scan(NULL, show ? lines : NULL, 64);

	for (int i = 0; show && i < n && i < 64; i++)
		printf("# D state: %s", lines[i]);
	return n;
}

/* tasks that stay in D state for a whole second (0 as soon as there is none) */
static inline int d_state_stuck(void)
{
	for (int look = 0; look < 10; look++) {
		if (!d_state_count(0))
			return 0;
		usleep(100000);
	}
	return d_state_count(1);
}

/*
 * Watch D-state tasks across many looks (one after each kill of a storm):
 * returns the pid of a task that has been in D state at every look for
 * more than @secs, 0 if none.  Tasks come and go; only one stuck through
 * the whole interval counts, so swap I/O of the survivors does not.
 */
struct d_watch {
	int pid[64];
	double since[64];
};

static inline int d_state_watch(struct d_watch *w, double now, double secs)
{
	static char lines[64][512];
	struct d_watch next;
	int pids[64], n, stuck = 0;

	memset(&next, 0, sizeof(next));
	n = d_state_scan(pids, lines, 64);
	for (int k = 0; k < n && k < 64; k++) {
		next.pid[k] = pids[k];
		next.since[k] = now;
		for (int i = 0; i < 64 && w->pid[i]; i++)
			if (w->pid[i] == pids[k])
				next.since[k] = w->since[i];
		if (now - next.since[k] > secs) {
			printf("# D state for %.0f s: %s", now - next.since[k], lines[k]);
			stuck = pids[k];
		}
	}
	*w = next;
	return stuck;
}

#endif /* XPMEM_TESTS_DSTATE_H */
