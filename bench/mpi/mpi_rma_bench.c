// SPDX-License-Identifier: GPL-2.0
/*
 * mpi_rma_bench.c - MPI_Put / MPI_Get latency and bandwidth between two
 * ranks, 8 B .. 64 MiB, passive target (lock_all), rank 0 -> rank 1.
 *
 *   latency:   one operation + MPI_Win_flush, repeated, mean per op
 *   bandwidth: a burst of operations, one MPI_Win_flush, bytes / time
 *
 * Every size is warmed up first (so first-touch faults are not in the
 * figures) and the window is checked after the timed Puts, so a fast
 * wrong answer cannot pass as a result.  Output, from rank 0, one line
 * per size:  bytes put_lat_us get_lat_us put_MBps get_MBps
 * Run under different UCX_TLS settings in the same boot and compare the
 * ratios: the guest is emulated (TCG), absolute numbers mean little.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BYTES (64u << 20)

static double budget_iters(size_t bytes, double want_bytes, int lo, int hi)
{
	double it = want_bytes / (double)bytes;

	return it < lo ? lo : it > hi ? hi : it;
}

/*
 * Seconds for @iters Puts (or Gets) of @bytes to rank 1, each followed by
 * a flush (@flush_each: latency) or all followed by one (bandwidth).
 */
static double timed_ops(MPI_Win w, void *buf, size_t bytes, int get, int iters,
			int flush_each)
{
	double t = MPI_Wtime();

	for (int i = 0; i < iters; i++) {
		if (get)
			MPI_Get(buf, (int)bytes, MPI_BYTE, 1, 0, (int)bytes, MPI_BYTE, w);
		else
			MPI_Put(buf, (int)bytes, MPI_BYTE, 1, 0, (int)bytes, MPI_BYTE, w);
		if (flush_each)
			MPI_Win_flush(1, w);
	}
	MPI_Win_flush(1, w);
	return MPI_Wtime() - t;
}

int main(int argc, char **argv)
{
	int me, np;
	unsigned char *base, *buf;
	MPI_Win w;
	long bad = 0;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_size(MPI_COMM_WORLD, &np);
	if (np != 2) {
		if (me == 0)
			fprintf(stderr, "mpi_rma_bench: run with exactly 2 ranks\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	MPI_Win_allocate(MAX_BYTES, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &w);
	buf = malloc(MAX_BYTES);
	if (!buf)
		MPI_Abort(MPI_COMM_WORLD, 2);
	memset(base, 0, MAX_BYTES);
	if (me == 0)
		printf("# bytes put_lat_us get_lat_us put_MBps get_MBps\n");

	for (size_t bytes = 8; bytes <= MAX_BYTES;
	     bytes = bytes < MAX_BYTES && bytes * 4 > MAX_BYTES ? MAX_BYTES : bytes * 4) {
		int lat_it = (int)budget_iters(bytes, 64.0 * (1 << 20), 4, 400);
		int bw_it = (int)budget_iters(bytes, 256.0 * (1 << 20), 4, 2000);
		double put_lat = 0, get_lat = 0, put_bw = 0, get_bw = 0;

		memset(buf, (int)(bytes & 0xff) | 1, bytes);
		MPI_Barrier(MPI_COMM_WORLD);
		MPI_Win_lock_all(0, w);
		if (me == 0) {
			/* warm-up: faults, registration caches, attachments */
			for (int i = 0; i < 3; i++) {
				MPI_Put(buf, (int)bytes, MPI_BYTE, 1, 0, (int)bytes, MPI_BYTE, w);
				MPI_Get(buf, (int)bytes, MPI_BYTE, 1, 0, (int)bytes, MPI_BYTE, w);
				MPI_Win_flush(1, w);
			}
			memset(buf, (int)(bytes & 0xff) | 1, bytes);

			put_lat = timed_ops(w, buf, bytes, 0, lat_it, 1) / lat_it * 1e6;
			put_bw = (double)bytes * bw_it / timed_ops(w, buf, bytes, 0, bw_it, 0) / 1e6;
			get_lat = timed_ops(w, buf, bytes, 1, lat_it, 1) / lat_it * 1e6;
			get_bw = (double)bytes * bw_it / timed_ops(w, buf, bytes, 1, bw_it, 0) / 1e6;
		}
		MPI_Win_unlock_all(w);
		MPI_Barrier(MPI_COMM_WORLD);
		if (me == 1) {
			/* what the Puts left must be rank 0's buffer */
			MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 1, 0, w);
			for (size_t i = 0; i < bytes; i++)
				if (base[i] != ((bytes & 0xff) | 1))
					bad++;
			MPI_Win_unlock(1, w);
		}
		if (me == 0)
			for (size_t i = 0; i < bytes; i++)
				if (buf[i] != ((bytes & 0xff) | 1))
					bad++;
		if (me == 0)
			printf("%zu %.2f %.2f %.1f %.1f\n", bytes, put_lat, get_lat, put_bw, get_bw);
		fflush(stdout);
	}
	MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
	if (me == 0 && bad)
		printf("# ERROR: %ld bytes wrong after the timed transfers\n", bad);
	MPI_Win_free(&w);
	free(buf);
	MPI_Finalize();
	return bad ? 1 : 0;
}
