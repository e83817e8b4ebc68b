// SPDX-License-Identifier: GPL-2.0
/*
 * mailbox_pingpong.c - round-trip latency of a polled message slot in the
 * shared mailbox region between two partitions (scripts/xpmem-partitions),
 * from user space: the floor for a ring-based channel.  Partition 0 writes
 * a sequence number, partition 1 spins until it sees it and echoes it,
 * partition 0 spins for the echo.  Prints mean, median and p99 in
 * microseconds from partition 0.  Other partitions idle.
 *
 * Usage: mailbox_pingpong [ROUNDS]   (default 20000)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* in the driver's scratch area (XPMEM_MAILBOX_SCRATCH = 512 KiB), past
 * what tests/partitions/fabric_window uses */
#define SLOT_OFFSET (512 * 1024 + 4096)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *e = getenv("XPMEM_PARTITION");
	int me = e ? atoi(e) : -1;
	long rounds = argc > 1 ? atol(argv[1]) : 20000;
	volatile uint64_t *ping, *pong, *hello;
	double *lat, t0, sum = 0;
	char *mb;
	int fd;

	if (me < 0) {
		fprintf(stderr, "run under scripts/xpmem-partitions\n");
		return 2;
	}
	fd = open("/sys/bus/pci/devices/0000:00:0f.0/resource2", O_RDWR | O_SYNC);
	if (fd < 0) {
		perror("mailbox BAR");
		return 1;
	}
	mb = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mb == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	hello = (volatile uint64_t *)(mb + SLOT_OFFSET);
	ping = (volatile uint64_t *)(mb + SLOT_OFFSET + 64);	/* own cache lines */
	pong = (volatile uint64_t *)(mb + SLOT_OFFSET + 128);
	if (me > 1)
		return 0;
	if (me == 1) {
		time_t end = time(NULL) + 600;

		hello[1] = 1;
		for (long i = 1; i <= rounds; i++) {
			while (*ping != (uint64_t)i)
				if (time(NULL) > end)
					return 1;
			*pong = i;
		}
		return 0;
	}
	lat = calloc(rounds, sizeof(*lat));
	while (hello[1] != 1)
		usleep(1000);
	for (long i = 1; i <= rounds; i++) {
		t0 = now_us();
		*ping = i;
		while (*pong != (uint64_t)i)
			;
		lat[i - 1] = now_us() - t0;
		sum += lat[i - 1];
	}
	qsort(lat, rounds, sizeof(*lat), cmp);
	printf("mailbox polled round trip over %ld rounds: mean %.2f us, median %.2f us, p99 %.2f us\n",
	       rounds, sum / rounds, lat[rounds / 2], lat[rounds * 99 / 100]);
	return 0;
}
