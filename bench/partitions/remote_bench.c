// SPDX-License-Identifier: GPL-2.0
/*
 * remote_bench.c - cross-partition export, measured in one run of two
 * partitions (bench/partitions/run), each number next to its local
 * counterpart from the same boot so that the ratio is what counts (TCG
 * guests on an oversubscribed host: absolute times are the emulator's).
 *
 *   first-touch fault   partition 1 touches every page of an attachment
 *                       of partition 0's segment once (FAULT round trip
 *                       + PTE install); local: the same on an attachment
 *                       of a segment of partition 1's own
 *   invalidation        partition 0 zaps (MADV_DONTNEED) single pages
 *                       that partition 1 maps: INVAL to ACK round trip
 *                       included; local: pages a local process maps
 *   copy bandwidth      memcpy out of a faulted-in attachment, remote vs
 *                       local
 *
 * Output: "# " lines and a markdown table on stdout of partition 1.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <xpmem.h>

#include "../../tests/partitions/fabric.h"

#define PAGE		4096UL
#define BYTES		(32UL << 20)
#define PAGES		(BYTES / PAGE)
#define ZAPS		256
#define ROUNDS		8

enum { KEY_SEG = 1, KEY_ZAP_REMOTE = 2, KEY_ZAP_LOCAL = 3 };

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static char *attach(xpmem_segid_t segid, xpmem_apid_t *apid)
{
	struct xpmem_addr a = { .offset = 0 };
	void *p;

	*apid = xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	if (*apid < 0)
		return NULL;
	a.apid = *apid;
	p = xpmem_attach(a, BYTES, NULL);
	return p == (void *)-1 ? NULL : p;
}

/* mean microseconds per first touch of every page of an attachment */
static double first_touch(xpmem_segid_t segid)
{
	xpmem_apid_t apid;
	char *p = attach(segid, &apid);
	double t0, t;

	if (!p)
		return -1;
	t0 = now_us();
	for (unsigned long i = 0; i < PAGES; i++)
		(void)*(volatile char *)(p + i * PAGE);
	t = (now_us() - t0) / PAGES;
	xpmem_detach(p);
	xpmem_release(apid);
	return t;
}

/* MB/s copying the whole (faulted-in) attachment, best of ROUNDS */
static double bandwidth(xpmem_segid_t segid)
{
	xpmem_apid_t apid;
	char *p = attach(segid, &apid), *dst = malloc(BYTES);
	double best = 0;

	if (!p || !dst)
		return -1;
	memset(dst, 0, BYTES);
	memcpy(dst, p, BYTES);	/* fault everything in */
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_us(), mbs;

		memcpy(dst, p, BYTES);
		mbs = BYTES / (now_us() - t0);
		if (mbs > best)
			best = mbs;
	}
	xpmem_detach(p);
	xpmem_release(apid);
	free(dst);
	return best;
}

/* mean microseconds of MADV_DONTNEED of one page, over ZAPS mapped pages */
static double zap_pages(char *buf)
{
	double t0 = now_us();

	for (unsigned long i = 0; i < ZAPS; i++)
		madvise(buf + i * 4 * PAGE, PAGE, MADV_DONTNEED);
	return (now_us() - t0) / ZAPS;
}

static void touch_all(char *p)
{
	for (unsigned long i = 0; i < PAGES; i++)
		(void)*(volatile char *)(p + i * PAGE);
}

int main(void)
{
	struct fabric f;
	char *buf;
	xpmem_segid_t seg;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fabric_open(&f) || f.me > 1)
		return f.me > 1 ? 0 : 2;
	buf = mmap(NULL, BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	memset(buf, 0x5a, BYTES);
	seg = xpmem_make(buf, BYTES, XPMEM_PERMIT_MODE, (void *)0600);
	if (seg < 0)
		return 1;
	fabric_put(&f, KEY_SEG, seg);
	if (fabric_barrier(&f, 200, 0, 120))
		return 1;

	if (f.me == 1) {
		xpmem_segid_t remote = fabric_get(&f, 0, KEY_SEG);
		double fl = first_touch(seg), fr = first_touch(remote);
		double bl = bandwidth(seg), br = bandwidth(remote);
		xpmem_apid_t apid;
		char *p = attach(remote, &apid);

		/* keep every page of partition 0 mapped here while it zaps */
		if (!p)
			return 1;
		touch_all(p);
		fabric_barrier(&f, 201, 0, 120);
		fabric_barrier(&f, 202, 0, 600);	/* partition 0 zaps what we map */
		xpmem_detach(p);
		xpmem_release(apid);
		fabric_barrier(&f, 203, 0, 600);	/* ... then what only it maps */
		{
			double zl = (double)fabric_get(&f, 0, KEY_ZAP_LOCAL) / 1000;
			double zr = (double)fabric_get(&f, 0, KEY_ZAP_REMOTE) / 1000;

			printf("| measure | local | remote (other partition) | remote / local |\n");
			printf("|---|---|---|---|\n");
			printf("| first-touch fault, us/page | %.1f | %.1f | %.2fx |\n", fl, fr, fr / fl);
			printf("| invalidation (zap 1 page, ack included), us | %.1f | %.1f | %.2fx |\n",
			       zl, zr, zr / zl);
			printf("| copy out of an attachment, MB/s | %.0f | %.0f | %.2fx |\n",
			       bl, br, br / bl);
		}
	} else {
		double zr, zl;
		int pipefd[2];
		pid_t pid;
		char c = 0;

		fabric_barrier(&f, 201, 0, 120);
		zr = zap_pages(buf);	/* partition 1 maps every page */
		fabric_barrier(&f, 202, 0, 600);
		/* partition 1 has let go: now a local attacher maps the pages */
		memset(buf, 0x5b, BYTES);
		if (pipe(pipefd))
			return 1;
		pid = fork();
		if (pid == 0) {
			xpmem_apid_t apid;
			char *p = attach(seg, &apid);

			if (p)
				touch_all(p);
			if (write(pipefd[1], "r", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		if (read(pipefd[0], &c, 1) != 1)
			return 1;
		zl = zap_pages(buf + PAGE);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fabric_put(&f, KEY_ZAP_REMOTE, (uint64_t)(zr * 1000));
		fabric_put(&f, KEY_ZAP_LOCAL, (uint64_t)(zl * 1000));
		fabric_barrier(&f, 203, 0, 600);
	}
	fabric_barrier(&f, 204, 0, 600);
	xpmem_remove(seg);
	return 0;
}
