/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fabric.h - what the partition test programs share: the mailbox's
 * scratch area (beyond XPMEM_MAILBOX_SCRATCH, never used by the driver),
 * with a barrier word and a small board of published values per partition.
 *
 *   scratch + 64 KiB + 64 * p     partition p's barrier: the highest K it reached
 *   scratch + 128 KiB + 4 KiB * p partition p's board: 512 64-bit values
 */
#ifndef XPMEM_TESTS_FABRIC_H
#define XPMEM_TESTS_FABRIC_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define FABRIC_SCRATCH		(512 * 1024)
#define FABRIC_BARRIER_OFFSET	(FABRIC_SCRATCH + 65536)
#define FABRIC_BOARD_OFFSET	(FABRIC_SCRATCH + 131072)
#define FABRIC_MAILBOX_BYTES	(1 << 20)

struct fabric {
	int me, np;
	volatile uint64_t *barrier;	/* [p * 8] */
	volatile uint64_t *board;	/* [p * 512 + key] */
};

/* Map the mailbox; 0, or -1 with a message. */
static inline int fabric_open(struct fabric *f)
{
	const char *e = getenv("XPMEM_PARTITION"), *c = getenv("XPMEM_PARTITIONS");
	char *mb;
	int fd;

	f->me = e ? atoi(e) : -1;
	f->np = c ? atoi(c) : 0;
	if (f->me < 0 || f->np < 2 || f->np > 4) {
		fprintf(stderr, "XPMEM_PARTITION/XPMEM_PARTITIONS not set (run under scripts/xpmem-partitions)\n");
		return -1;
	}
	fd = open("/sys/bus/pci/devices/0000:00:0f.0/resource2", O_RDWR | O_SYNC);
	if (fd < 0) {
		perror("mailbox");
		return -1;
	}
	mb = mmap(NULL, FABRIC_MAILBOX_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (mb == MAP_FAILED) {
		perror("mmap mailbox");
		return -1;
	}
	f->barrier = (volatile uint64_t *)(mb + FABRIC_BARRIER_OFFSET);
	f->board = (volatile uint64_t *)(mb + FABRIC_BOARD_OFFSET);
	return 0;
}

/*
 * Reach barrier @k and wait until every partition not in @gone (a bit
 * mask) reached it too.  K only grows over a run.  0, or -1 after @secs.
 */
static inline int fabric_barrier(struct fabric *f, uint64_t k, unsigned int gone, int secs)
{
	time_t end = time(NULL) + secs;

	__sync_synchronize();
	f->barrier[f->me * 8] = k;
	for (int p = 0; p < f->np; p++) {
		while (!(gone & (1u << p)) && f->barrier[p * 8] < k) {
			if (time(NULL) > end) {
				fprintf(stderr, "barrier %llu: partition %d never came\n",
					(unsigned long long)k, p);
				return -1;
			}
			usleep(2000);
		}
	}
	__sync_synchronize();
	return 0;
}

static inline void fabric_put(struct fabric *f, unsigned int key, uint64_t val)
{
	f->board[f->me * 512 + key] = val;
	__sync_synchronize();
}

static inline uint64_t fabric_get(struct fabric *f, int p, unsigned int key)
{
	__sync_synchronize();
	return f->board[p * 512 + key];
}

#endif /* XPMEM_TESTS_FABRIC_H */
