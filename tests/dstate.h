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

/* tasks in D state now; with @show, their /proc stat lines on stdout as "# " lines */
static inline int d_state_count(int show)
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
		if (p && p[1] == ' ' && p[2] == 'D') {
			if (show)
				printf("# D state: %s", buf);
			n++;
		}
	}
	if (d)
		closedir(d);
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
	struct d_watch next;
	DIR *d = opendir("/proc");

	memset(&next, 0, sizeof(next));
	struct dirent *e;
	int n = 0, stuck = 0;

	while (d && (e = readdir(d)) && n < 64) {
		char path[300], buf[512], *p;
		ssize_t len;
		int fd, pid;

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
		pid = atoi(e->d_name);
		next.pid[n] = pid;
		next.since[n] = now;
		for (int i = 0; i < 64 && w->pid[i]; i++)
			if (w->pid[i] == pid)
				next.since[n] = w->since[i];
		if (now - next.since[n] > secs) {
			printf("# D state for %.0f s: %s", now - next.since[n], buf);
			stuck = pid;
		}
		n++;
	}
	if (d)
		closedir(d);
	*w = next;
	return stuck;
}

#endif /* XPMEM_TESTS_DSTATE_H */
