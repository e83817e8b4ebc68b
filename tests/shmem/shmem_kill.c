// SPDX-License-Identifier: GPL-2.0
/*
 * shmem_kill.c - PEs that keep putting 1 MiB blocks into their right
 * neighbour's symmetric heap and getting half a block back, until the
 * test kills one of them with SIGKILL from outside.
 *
 * Usage: shmem_kill DIR
 * Each PE writes DIR/pe<N>.pid once it has completed a put and a get
 * (shmem_quiet), so the kill lands in the middle of the traffic, then
 * keeps going.  A PE never runs longer than 300 s: nothing here can hang
 * a test run even if the kill never comes.
 */
#include <shmem.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const size_t bytes = 1u << 20;
	int me, np, right;
	uint8_t *heap, *buf;
	char path[4096];
	time_t start = time(NULL);
	FILE *f;

	shmem_init();
	if (argc < 2)
		shmem_global_exit(2);
	me = shmem_my_pe();
	np = shmem_n_pes();
	right = (me + 1) % np;
	heap = shmem_malloc(bytes);
	buf = shmem_malloc(bytes);
	if (!heap || !buf)
		shmem_global_exit(2);
	memset(buf, me, bytes);
	shmem_barrier_all();
	for (unsigned long it = 0; time(NULL) - start < 300; it++) {
		shmem_putmem(heap, buf, bytes, right);
		shmem_getmem(buf, heap + bytes / 2, bytes / 2, right);
		shmem_quiet();
		if (it == 0) {
			snprintf(path, sizeof(path), "%s/pe%d.pid", argv[1], me);
			f = fopen(path, "w");
			if (!f)
				shmem_global_exit(2);
			fprintf(f, "%d\n", getpid());
			fclose(f);
		}
	}
	fprintf(stderr, "pe %d: still alive after 300 s, nobody killed us\n", me);
	shmem_global_exit(1);
	return 1;
}
