// SPDX-License-Identifier: GPL-2.0
/*
 * fabric_sync.c - a barrier between partitions, for the test scripts: in
 * the mailbox's scratch area (not used by the driver) partition i writes
 * the barrier number K it reached into its own word, then waits until
 * every other partition, except those listed as gone, reached K too.
 *
 * Usage: fabric_sync K [GONE...]   (XPMEM_PARTITION/XPMEM_PARTITIONS set)
 * Exit 1 after 120 s without everyone.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BARRIER_OFFSET (512 * 1024 + 65536)

int main(int argc, char **argv)
{
	const char *e = getenv("XPMEM_PARTITION"), *c = getenv("XPMEM_PARTITIONS");
	int me = e ? atoi(e) : -1, np = c ? atoi(c) : 0, fd;
	uint64_t k = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
	time_t end = time(NULL) + 120;
	volatile uint64_t *word;
	char *mb;

	if (me < 0 || np < 2 || np > 4 || !k)
		return 2;
	fd = open("/sys/bus/pci/devices/0000:00:0f.0/resource2", O_RDWR | O_SYNC);
	if (fd < 0)
		return 1;
	mb = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mb == MAP_FAILED)
		return 1;
	word = (volatile uint64_t *)(mb + BARRIER_OFFSET);
	word[me * 8] = k;
	for (int p = 0; p < np; p++) {
		int gone = 0;

		for (int a = 2; a < argc; a++)
			gone |= atoi(argv[a]) == p;
		while (!gone && word[p * 8] < k) {
			if (time(NULL) > end) {
				fprintf(stderr, "fabric_sync %llu: partition %d never came\n",
					(unsigned long long)k, p);
				return 1;
			}
			usleep(2000);
		}
	}
	return 0;
}
