// SPDX-License-Identifier: GPL-2.0
/*
 * shmem_bench.c - OpenSHMEM put/get latency and bandwidth between two
 * PEs, 8 B .. 8 MiB (x4 steps), PE 0 -> PE 1's symmetric heap.
 *
 *   latency:   one shmem_putmem + shmem_quiet (or one blocking
 *              shmem_getmem), repeated, mean per op
 *   bandwidth: a burst of shmem_putmem_nbi (shmem_getmem_nbi), one
 *              shmem_quiet, bytes / time
 *
 * Every size is warmed up first (so first-touch faults are not in the
 * figures) and both buffers are checked after the timed transfers, so a
 * fast wrong answer cannot pass as a result.  Output, from PE 0, one line
 * per size, as bench/mpi/mpi_rma_bench:
 *   bytes put_lat_us get_lat_us put_MBps get_MBps
 * Run under different UCX_TLS settings in the same boot and compare the
 * ratios: the guest is emulated (TCG), absolute numbers mean little.
 */
#include <shmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BYTES (16u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int budget_iters(size_t bytes, double want_bytes, int lo, int hi)
{
	double it = want_bytes / (double)bytes;

	return it < lo ? lo : it > hi ? hi : (int)it;
}

/* seconds for @iters puts (gets) of @bytes to PE 1: each completed
 * (@each: latency) or all issued non-blocking and completed once */
static double timed_ops(unsigned char *heap, unsigned char *buf, size_t bytes, int get,
			int iters, int each)
{
	double t = now();

	for (int i = 0; i < iters; i++) {
		if (each) {
			if (get) {
				shmem_getmem(buf, heap, bytes, 1);
			} else {
				shmem_putmem(heap, buf, bytes, 1);
				shmem_quiet();
			}
		} else if (get) {
			shmem_getmem_nbi(buf, heap, bytes, 1);
		} else {
			shmem_putmem_nbi(heap, buf, bytes, 1);
		}
	}
	shmem_quiet();
	return now() - t;
}

int main(void)
{
	unsigned char *heap, *buf;
	static long bad;	/* symmetric */
	long total;

	shmem_init();
	if (shmem_n_pes() != 2) {
		if (shmem_my_pe() == 0)
			fprintf(stderr, "shmem_bench: run with exactly 2 PEs\n");
		shmem_global_exit(2);
	}
	heap = shmem_malloc(MAX_BYTES);
	buf = malloc(MAX_BYTES);
	if (!heap || !buf)
		shmem_global_exit(2);
	memset(heap, 0, MAX_BYTES);
	if (shmem_my_pe() == 0)
		printf("# bytes put_lat_us get_lat_us put_MBps get_MBps\n");

	for (size_t bytes = 8; bytes <= MAX_BYTES; bytes *= 4) {
		int lat_it = budget_iters(bytes, 64.0 * (1 << 20), 4, 400);
		int bw_it = budget_iters(bytes, 256.0 * (1 << 20), 4, 2000);
		int v = (int)(bytes & 0xff) | 1;
		double put_lat = 0, get_lat = 0, put_bw = 0, get_bw = 0;

		memset(buf, v, bytes);
		shmem_barrier_all();
		if (shmem_my_pe() == 0) {
			/* warm-up: faults, registration caches, attachments */
			for (int i = 0; i < 3; i++) {
				shmem_putmem(heap, buf, bytes, 1);
				shmem_getmem(buf, heap, bytes, 1);
			}
			memset(buf, v, bytes);
			put_lat = timed_ops(heap, buf, bytes, 0, lat_it, 1) / lat_it * 1e6;
			put_bw = (double)bytes * bw_it / timed_ops(heap, buf, bytes, 0, bw_it, 0) / 1e6;
			get_lat = timed_ops(heap, buf, bytes, 1, lat_it, 1) / lat_it * 1e6;
			get_bw = (double)bytes * bw_it / timed_ops(heap, buf, bytes, 1, bw_it, 0) / 1e6;
			for (size_t i = 0; i < bytes; i++)
				if (buf[i] != v)
					bad++;
		}
		shmem_barrier_all();
		if (shmem_my_pe() == 1)
			for (size_t i = 0; i < bytes; i++)
				if (heap[i] != v)
					bad++;
		if (shmem_my_pe() == 0)
			printf("%zu %.2f %.2f %.1f %.1f\n", bytes, put_lat, get_lat, put_bw, get_bw);
		fflush(stdout);
	}
	shmem_barrier_all();
	total = bad + shmem_long_g(&bad, 1 - shmem_my_pe());
	if (shmem_my_pe() == 0 && total)
		printf("# ERROR: %ld bytes wrong after the timed transfers\n", total);
	shmem_barrier_all();
	free(buf);
	shmem_free(heap);
	shmem_finalize();
	return total ? 1 : 0;
}
