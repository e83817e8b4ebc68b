// SPDX-License-Identifier: GPL-2.0
/*
 * mpi_kill_epoch.c - ranks that stay inside a passive-target epoch,
 * Putting 1 MiB blocks into their right neighbour's window and flushing,
 * until the test kills one of them with SIGKILL from outside.
 *
 * Usage: mpi_kill_epoch DIR
 * Each rank writes DIR/rank<N>.pid once it has completed a flushed Put
 * inside the epoch (so the kill lands in the middle of one), then keeps
 * going.  A rank never runs longer than 300 s: nothing here can hang a
 * test run even if the kill never comes.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const int n = (1 << 20) / 8;
	int me, np, right;
	uint64_t *base, *buf;
	MPI_Win w;
	char path[4096];
	time_t start = time(NULL);
	FILE *f;

	MPI_Init(&argc, &argv);
	if (argc < 2)
		MPI_Abort(MPI_COMM_WORLD, 2);
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_size(MPI_COMM_WORLD, &np);
	right = (me + 1) % np;
	MPI_Win_allocate(n * 8, 8, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &w);
	MPI_Alloc_mem(n * 8, MPI_INFO_NULL, &buf);
	memset(buf, me, n * 8);
	MPI_Win_lock_all(0, w);
	for (unsigned long it = 0; time(NULL) - start < 300; it++) {
		MPI_Put(buf, n, MPI_UINT64_T, right, 0, n, MPI_UINT64_T, w);
		MPI_Get(buf, n / 2, MPI_UINT64_T, right, n / 2, n / 2, MPI_UINT64_T, w);
		MPI_Win_flush(right, w);
		if (it == 0) {
			snprintf(path, sizeof(path), "%s/rank%d.pid", argv[1], me);
			f = fopen(path, "w");
			if (!f)
				MPI_Abort(MPI_COMM_WORLD, 2);
			fprintf(f, "%d\n", getpid());
			fclose(f);
		}
	}
	MPI_Win_unlock_all(w);
	fprintf(stderr, "rank %d: still alive after 300 s, nobody killed us\n", me);
	MPI_Abort(MPI_COMM_WORLD, 1);
	return 1;
}
