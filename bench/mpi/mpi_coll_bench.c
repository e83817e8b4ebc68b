// SPDX-License-Identifier: GPL-2.0
/*
 * mpi_coll_bench.c - MPI_Bcast (root 0) and MPI_Allreduce (MPI_SUM of
 * longs, in place) among all ranks, 64 KiB .. 4 MiB, each size in two
 * patterns:
 *   reused  the same buffer every iteration: what the transports' caches
 *           (UCX's registration cache of attachments) are made for
 *   fresh   every iteration a buffer at an address no earlier iteration
 *           used (mmap at a new address, munmap after the call): the
 *           application that allocates per call, where every large
 *           transfer needs a new attachment of its peer's buffer (the
 *           Aurora broadcast of mpich #7334: 16.1 s with xpmem, 4.0 s
 *           without)
 * Each call is timed alone between barriers; the figure is the slowest
 * rank's mean per call.  Every result is checked (a fast wrong answer
 * cannot pass as a result).  At the end each rank counts what the run left
 * in its address space: vmas of xpmem attachments and all vmas
 * (mpich #7348: finalize tore down 900,000 attachment vmas).
 *
 * Output, from rank 0, one line per (op, pattern, size):
 *   op pattern np bytes us_per_call
 * then per rank "# left rank R xpmem_vmas A vmas V", and "# ERROR ..." on
 * a wrong result.  Run under different UCX_TLS settings in the same boot
 * and compare: the guest is emulated (TCG), absolute numbers mean little.
 */
#define _GNU_SOURCE
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MIN_BYTES	(64u << 10)
#define MAX_BYTES	(4u << 20)
/* fresh buffers: each at the next unused address of this window */
#define FRESH_BASE	0x300000000000UL
#define FRESH_WINDOW	(1UL << 40)

static int me, np;
static unsigned long fresh_next;

static int iterations(size_t bytes)
{
	size_t it = (16u << 20) / bytes;

	return it < 4 ? 4 : it > 24 ? 24 : (int)it;
}

/* a buffer of @bytes: the reused one, or one at a never-used address */
static long *get_buffer(int fresh, long *reused, size_t bytes)
{
	void *p;

	if (!fresh)
		return reused;
	for (;;) {
		void *want = (void *)(FRESH_BASE + fresh_next % FRESH_WINDOW);

		fresh_next += bytes + (2u << 20);	/* a gap: no merge with the last */
		p = mmap(want, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == want)
			return p;
		if (p != MAP_FAILED)	/* a kernel that ignored the flag */
			munmap(p, bytes);
	}
}

static void put_buffer(int fresh, long *buf, size_t bytes)
{
	if (fresh)
		munmap(buf, bytes);
}

static void fill(long *buf, size_t n, int op, int iter)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = op ? me + (long)(i % 7) : (long)(i ^ (size_t)iter);
}

static long check(const long *buf, size_t n, int op, int iter)
{
	long bad = 0;

	for (size_t i = 0; i < n; i++) {
		long want = op ? (long)np * (np - 1) / 2 + (long)np * (long)(i % 7) :
				 (long)(i ^ (size_t)iter);

		bad += buf[i] != want;
	}
	return bad;
}

/* mean seconds per call of @op (0 bcast, 1 allreduce), slowest rank */
static double run(int op, int fresh, long *reused, size_t bytes, long *bad)
{
	size_t n = bytes / sizeof(long);
	int iters = iterations(bytes);
	double total = 0, slowest;

	for (int it = -2; it < iters; it++) {	/* two warm-up calls */
		long *buf = get_buffer(fresh, reused, bytes);
		double t;

		if (op || me == 0)
			fill(buf, n, op, it);
		else
			memset(buf, 0, bytes);
		MPI_Barrier(MPI_COMM_WORLD);
		t = MPI_Wtime();
		if (op)
			MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
		else
			MPI_Bcast(buf, (int)n, MPI_LONG, 0, MPI_COMM_WORLD);
		t = MPI_Wtime() - t;
		if (it >= 0)
			total += t;
		*bad += check(buf, n, op, it);
		put_buffer(fresh, buf, bytes);
	}
	total /= iters;
	MPI_Reduce(&total, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
	return slowest;
}

/* vmas of xpmem attachments, and all vmas, of this process */
static void count_vmas(long *xpmem_vmas, long *vmas)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];

	*xpmem_vmas = 0;
	*vmas = 0;
	while (f && fgets(line, sizeof(line), f)) {
		(*vmas)++;
		if (strstr(line, "xpmem") && !strstr(line, "/dev/xpmem"))
			(*xpmem_vmas)++;
	}
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	static const char *const ops[] = { "bcast", "allreduce" };
	static const char *const patterns[] = { "reused", "fresh" };
	long bad = 0, left[2], *all = NULL, *reused;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_size(MPI_COMM_WORLD, &np);
	fresh_next = (unsigned long)me * (FRESH_WINDOW / 64);
	reused = malloc(MAX_BYTES);
	if (!reused)
		MPI_Abort(MPI_COMM_WORLD, 2);
	if (me == 0)
		printf("# op pattern np bytes us_per_call\n");
	for (int op = 0; op < 2; op++)
		for (int fresh = 0; fresh < 2; fresh++)
			for (size_t bytes = MIN_BYTES; bytes <= MAX_BYTES; bytes *= 4) {
				double s = run(op, fresh, reused, bytes, &bad);

				if (me == 0) {
					printf("%s %s %d %zu %.1f\n", ops[op], patterns[fresh], np,
					       bytes, s * 1e6);
					fflush(stdout);
				}
			}
	count_vmas(&left[0], &left[1]);
	if (me == 0)
		all = malloc(sizeof(left) * (size_t)np);
	MPI_Gather(left, 2, MPI_LONG, all, 2, MPI_LONG, 0, MPI_COMM_WORLD);
	MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
	if (me == 0) {
		for (int r = 0; r < np; r++)
			printf("# left rank %d xpmem_vmas %ld vmas %ld\n", r, all[2 * r],
			       all[2 * r + 1]);
		if (bad)
			printf("# ERROR: %ld wrong words in the results\n", bad);
		free(all);
	}
	free(reused);
	MPI_Finalize();
	return bad ? 1 : 0;
}
