/* SPDX-License-Identifier: GPL-2.0 */
/*
 * testlib.h - helpers shared by the xpmem test programs:
 *   a peer process with two pipes (commands in, answers out), reaping a
 *   child within a (scaled) time,
 *   "key value" files (/proc/vmstat, the driver's debugfs counters),
 *   writes to kernel files and a memory cgroup of a test's own.
 * A peer waits for commands without a timeout of its own: every test runs
 * under the alarm() of tap.h, which also kills its helpers.
 */
#ifndef XPMEM_TESTS_TESTLIB_H
#define XPMEM_TESTS_TESTLIB_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "time_scale.h"

struct peer {
	pid_t pid;
	int to, from;
};

static inline int chan_send(int fd, long v)
{
	return write(fd, &v, sizeof(v)) == sizeof(v) ? 0 : -1;
}

/* the next value, or -999 if the other side is gone */
static inline long chan_recv(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long v;

	if (poll(&p, 1, -1) != 1 || read(fd, &v, sizeof(v)) != sizeof(v))
		return -999;
	return v;
}

/* fork a peer running fn(in, out, arg); its exit status is fn's value */
static inline int peer_start(struct peer *p, int (*fn)(int in, int out, void *arg),
			     void *arg)
{
	int a[2], b[2];

	if (pipe(a) || pipe(b))
		return -1;
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		close(a[1]);
		close(b[0]);
		_exit(fn(a[0], b[1], arg));
	}
	close(a[0]);
	close(b[1]);
	p->to = a[1];
	p->from = b[0];
	return 0;
}

static inline int peer_send(struct peer *p, long v) { return chan_send(p->to, v); }
static inline long peer_recv(struct peer *p) { return chan_recv(p->from); }

/* send a command, return the answer (-998: could not send) */
static inline long peer_call(struct peer *p, long cmd)
{
	if (chan_send(p->to, cmd))
		return -998;
	return chan_recv(p->from);
}

/* close the pipes and reap: exit status, or 128 + signal */
static inline int peer_wait(struct peer *p)
{
	int st;

	close(p->to);
	close(p->from);
	if (waitpid(p->pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Reap @pid if it exits within @secs times the guest's slowness, its wait
 * status in *@status (may be NULL); false: it did not.
 */
static inline bool reap_within(pid_t pid, double secs, int *status)
{
	struct timespec t0, t;
	double limit = secs * xpmem_time_scale();

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		usleep(2000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 < limit);
	return false;
}

/* value of `key` in a file of "key value" lines, or -1 */
static inline long keyed_value(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	char k[64];
	long v, r = -1;

	while (f && fscanf(f, "%63s %ld", k, &v) == 2)
		if (!strcmp(k, key))
			r = v;
	if (f)
		fclose(f);
	return r;
}

/* one of the driver's debugfs counters */
static inline long counter(const char *name)
{
	return keyed_value("/sys/kernel/debug/xpmem/counters", name);
}

/* value (kB) of @field ("AnonHugePages", "Rss", ...) of the smaps entry
 * of this process's vma that holds @addr; -1 if there is none */
static inline long smaps_field_kb(const void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long lo, hi;
	char line[256];
	long r = -1;
	int in = 0;

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && !strncmp(line, field, strlen(field)))
			r = atol(line + strlen(field) + 1);
	}
	if (f)
		fclose(f);
	return r;
}

/* wait up to @secs (scaled) for counter @name to read @want; 0 once it does */
static inline int wait_until_counter(const char *name, long want, double secs)
{
	int tries = (int)(secs * 10 * xpmem_time_scale());

	while (counter(name) != want) {
		if (tries-- <= 0)
			return 1;
		usleep(100000);
	}
	return 0;
}

/* the sum of the driver's live-object counters (debugfs "live"), or -1 */
static inline long live_objects(void)
{
	FILE *f = fopen("/sys/kernel/debug/xpmem/live", "r");
	char k[64];
	long v, sum = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", k, &v) == 2)
		sum += v;
	fclose(f);
	return sum;
}

/*
 * Wait up to 10 s (times the guest's time scale) for every live-object
 * counter of the driver (segments, permits, attachments, mirrors,
 * reverse-map entries, ...: the debugfs file "live", which the driver
 * defines, so no test can leave one out) to read 0.  Returns 0, or 1 after
 * printing the file as TAP diagnostics.
 */
static inline int live_counters_settle(void)
{
	int tries = (int)(100 * xpmem_time_scale());
	FILE *f;
	char line[128];

	while (tries-- > 0) {
		if (live_objects() == 0)
			return 0;
		usleep(100000);
	}
	f = fopen("/sys/kernel/debug/xpmem/live", "r");
	while (f && fgets(line, sizeof(line), f))
		printf("# live: %s", line);
	if (f)
		fclose(f);
	fflush(stdout);
	return 1;
}

/* a byte pattern that differs per byte, per 4 KiB page and per seed */
static inline void fill_bytes(unsigned char *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed + (i >> 12));
}

/* index of the first byte that is not fill_bytes(seed)'s, or -1 */
static inline long bytes_mismatch(const unsigned char *p, size_t n,
				  unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 31 + seed + (i >> 12)))
			return (long)i;
	return -1;
}

/*
 * Write @val to a kernel file (sysfs, procfs, cgroup, tracefs), opened
 * with O_WRONLY | @oflags: 0 when all of it was taken.
 */
static inline int write_file_flags(const char *path, const char *val, int oflags)
{
	int fd = open(path, O_WRONLY | oflags);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static inline int write_file(const char *path, const char *val)
{
	return write_file_flags(path, val, 0);
}

/*
 * A fresh memory cgroup /sys/fs/cgroup/@name (cgroup2 mounted there if it
 * is not yet) with memory.max @max and no swap, so that whatever a test
 * puts in it is the only candidate of its OOM killer.  0, or -1 with
 * errno.  The caller moves processes in (cgroup.procs) and rmdir()s it.
 */
static inline int memcg_group(const char *name, const char *max)
{
	char path[128];

	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK)) {
		mkdir("/sys/fs/cgroup", 0755);
		if (mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL))
			return -1;
	}
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", name);
	rmdir(path);
	if (mkdir(path, 0755))
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.max", name);
	if (write_file(path, max))
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.swap.max", name);
	write_file(path, "0");
	return 0;
}

/* ---- huge-page memory ------------------------------------------------------------- */

/*
 * Memory backed by huge pages for exports, 4 MiB (two 2 MiB pages): get_user_pages
 * through an attachment must get every 4 KiB page of them, head or tail,
 * whatever level the source maps them at.  The kinds:
 *   thp             anonymous THP, PMD-mapped in the source
 *   thp_pte_mapped  the same after an mprotect round trip split the PMDs
 *                   (the folios stay large, now mapped by PTEs)
 *   hugetlb         anonymous MAP_HUGETLB, 2 MiB pages
 * On a kernel without THP (Debian's PREEMPT_RT) the THP kinds skip.
 */
#define HUGE_SZ		(2UL << 20)
#define HUGE_LEN	(2 * HUGE_SZ)

enum huge_kind { HK_THP, HK_THP_PTE, HK_HUGETLB };

/*
 * HUGE_LEN bytes of @kind filled with fill_bytes(@seed), not shared with
 * fork children (MADV_DONTFORK); NULL with *why set if this kernel cannot
 * back it (a skip) or with *why NULL on a failure.
 */
static inline unsigned char *huge_backed(enum huge_kind kind, unsigned int seed, const char **why)
{
	unsigned char *src, *raw;
	long kb;

	*why = NULL;
	if (kind == HK_HUGETLB) {
		char nr[32];
		FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
		long have = 0;

		if (f) {
			if (fscanf(f, "%ld", &have) != 1)
				have = 0;
			fclose(f);
		}
		if (have < 4) {
			snprintf(nr, sizeof(nr), "%d", 4);
			write_file("/proc/sys/vm/nr_hugepages", nr);
		}
		src = mmap(NULL, HUGE_LEN, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (src == MAP_FAILED) {
			printf("# MAP_HUGETLB: %s\n", strerror(errno));
			return NULL;
		}
	} else {
		char v[8] = "";
		FILE *f;

		if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK)) {
			*why = "this kernel has no THP";
			return NULL;
		}
		/* a CONFIG_DEBUG_VM kernel: tails of PMD-mapped THP are not given */
		f = fopen("/sys/module/xpmem/parameters/gup_on_pmd_mapped_thp", "r");
		if (kind == HK_THP && f && fgets(v, sizeof(v), f) && v[0] == 'N') {
			fclose(f);
			*why = "CONFIG_DEBUG_VM kernel: the driver gives get_user_pages no tail page of a PMD-mapped THP (gup_on_pmd_mapped_thp=N)";
			return NULL;
		}
		if (f)
			fclose(f);
		raw = mmap(NULL, HUGE_LEN + HUGE_SZ, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (raw == MAP_FAILED)
			return NULL;
		src = (unsigned char *)(((uintptr_t)raw + HUGE_SZ - 1) & ~(HUGE_SZ - 1));
		madvise(src, HUGE_LEN, MADV_HUGEPAGE);
	}
	/*
	 * The attachers are this process's fork children: without this the
	 * fork would share the huge pages with them, and the attachment's
	 * write faults would break that copy-on-write by splitting them
	 */
	madvise(src, HUGE_LEN, MADV_DONTFORK);
	fill_bytes(src, HUGE_LEN, seed);
	if (kind != HK_HUGETLB) {
		kb = smaps_field_kb(src, "AnonHugePages");
		if (kb < (long)(HUGE_LEN >> 10)) {
			printf("# AnonHugePages %ld kB of %lu: the source is not THP-backed\n", kb,
				 HUGE_LEN >> 10);
			return NULL;
		}
	}
	if (kind == HK_THP_PTE) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);

		/* split both PMDs: the folios stay large, mapped by PTEs */
		for (size_t off = 0; off < HUGE_LEN; off += HUGE_SZ)
			if (mprotect(src + off + pg, pg, PROT_READ) ||
			    mprotect(src + off + pg, pg, PROT_READ | PROT_WRITE))
				return NULL;
		kb = smaps_field_kb(src, "AnonHugePages");
		if (kb != 0) {
			printf("# AnonHugePages %ld kB after the mprotect round trip: not split\n", kb);
			return NULL;
		}
	}
	return src;
}

#endif /* XPMEM_TESTS_TESTLIB_H */
