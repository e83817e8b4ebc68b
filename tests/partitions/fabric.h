/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fabric.h - what the partition test programs share.  Every partition has
 * a mailbox region of its own (scripts/xpmem-partitions): writable at PCI
 * slot 00:0f.0, and visible read-only to every other partition p at slot
 * 00:(0x18+p).0.  The tests publish in the scratch area of their own
 * region (beyond XPMEM_MAILBOX_SCRATCH, never used by the driver) and read
 * their peers':
 *
 *   own scratch + 64 KiB      the highest barrier number K this partition reached
 *   own scratch + 128 KiB     this partition's board: 512 64-bit values
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

#include "time_scale.h"

#define FABRIC_SCRATCH		(512 * 1024)
#define FABRIC_BARRIER_OFFSET	(FABRIC_SCRATCH + 65536)
#define FABRIC_BOARD_OFFSET	(FABRIC_SCRATCH + 131072)
#define FABRIC_MAILBOX_BYTES	(1 << 20)
#define FABRIC_MAX		4

struct fabric {
	int me, np;
	/* mailbox[p]: partition p's region; only mailbox[me] is writable */
	volatile char *mailbox[FABRIC_MAX];
};

/* partition p's mailbox region as this partition sees it: 0x0f if its own */
static inline int fabric_mailbox_slot(int me, int p)
{
	return p == me ? 0x0f : 0x18 + p;
}

/* Map a mailbox region (@writable: PROT_WRITE too); NULL with a message. */
static inline volatile char *fabric_map_mailbox(int slot, int writable)
{
	char path[64];
	void *mb;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/0000:00:%02x.0/resource2", slot);
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_SYNC);
	if (fd < 0) {
		perror(path);
		return NULL;
	}
	mb = mmap(NULL, FABRIC_MAILBOX_BYTES, PROT_READ | (writable ? PROT_WRITE : 0),
		  MAP_SHARED, fd, 0);
	close(fd);
	if (mb == MAP_FAILED) {
		perror(path);
		return NULL;
	}
	return mb;
}

/* Map every partition's mailbox; 0, or -1 with a message. */
static inline int fabric_open(struct fabric *f)
{
	const char *e = getenv("XPMEM_PARTITION"), *c = getenv("XPMEM_PARTITIONS");

	f->me = e ? atoi(e) : -1;
	f->np = c ? atoi(c) : 0;
	if (f->me < 0 || f->np < 2 || f->np > FABRIC_MAX || f->me >= f->np) {
		fprintf(stderr, "XPMEM_PARTITION/XPMEM_PARTITIONS not set (run under scripts/xpmem-partitions)\n");
		return -1;
	}
	for (int p = 0; p < f->np; p++) {
		f->mailbox[p] = fabric_map_mailbox(fabric_mailbox_slot(f->me, p), p == f->me);
		if (!f->mailbox[p])
			return -1;
	}
	return 0;
}

static inline volatile uint64_t *fabric_barrier_word(struct fabric *f, int p)
{
	return (volatile uint64_t *)(f->mailbox[p] + FABRIC_BARRIER_OFFSET);
}

/*
 * Reach barrier @k and wait until every partition not in @gone (a bit
 * mask) reached it too.  K only grows over a run.  0, or -1 after @secs
 * times the guest's measured slowness (XPMEM_TIME_SCALE, from the boot's
 * calibration; at least 1): a partition that is merely slow is waited for.
 */
static inline int fabric_barrier(struct fabric *f, uint64_t k, unsigned int gone, int secs)
{
	time_t end = time(NULL) + (time_t)(secs * xpmem_time_scale());

	__sync_synchronize();
	*fabric_barrier_word(f, f->me) = k;
	for (int p = 0; p < f->np; p++) {
		while (!(gone & (1u << p)) && *fabric_barrier_word(f, p) < k) {
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
	((volatile uint64_t *)(f->mailbox[f->me] + FABRIC_BOARD_OFFSET))[key] = val;
	__sync_synchronize();
}

static inline uint64_t fabric_get(struct fabric *f, int p, unsigned int key)
{
	__sync_synchronize();
	return ((volatile uint64_t *)(f->mailbox[p] + FABRIC_BOARD_OFFSET))[key];
}

#endif /* XPMEM_TESTS_FABRIC_H */
