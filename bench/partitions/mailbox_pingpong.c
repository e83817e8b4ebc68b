// SPDX-License-Identifier: GPL-2.0
/*
 * mailbox_pingpong.c - round-trip latency of polled words in the mailbox
 * regions of two partitions (scripts/xpmem-partitions), from user space:
 * the floor for a ring-based channel.  Partition 0 writes a sequence
 * number in its own mailbox, partition 1 spins until it sees it there and
 * echoes it in its own, partition 0 spins for the echo.  Prints mean, median and p99 in
 * microseconds from partition 0.  Other partitions idle.
 *
 * Usage: mailbox_pingpong [ROUNDS]   (default 20000)
 */
#include "partitions/fabric.h"

/* in the scratch area of each partition's own mailbox, past fabric.h's board */
#define WORD_OFFSET (FABRIC_SCRATCH + 192 * 1024)

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
	long rounds = argc > 1 ? atol(argv[1]) : 20000;
	volatile uint64_t *ping, *pong;
	double *lat, t0, sum = 0;
	struct fabric f;

	if (fabric_open(&f))
		return 2;
	if (f.me > 1)
		return 0;
	/* 0 writes ping in its own mailbox, 1 answers pong in its own */
	ping = (volatile uint64_t *)(f.mailbox[0] + WORD_OFFSET);
	pong = (volatile uint64_t *)(f.mailbox[1] + WORD_OFFSET);
	if (f.me == 1) {
		time_t end = time(NULL) + 600;

		*pong = 0;
		if (fabric_barrier(&f, 1, ~3u, 120))
			return 1;
		for (long i = 1; i <= rounds; i++) {
			while (*ping != (uint64_t)i)
				if (time(NULL) > end)
					return 1;
			*pong = i;
		}
		return 0;
	}
	lat = calloc(rounds, sizeof(*lat));
	*ping = 0;
	if (!lat || fabric_barrier(&f, 1, ~3u, 120))
		return 1;
	for (long i = 1; i <= rounds; i++) {
		time_t end = time(NULL) + 60;

		t0 = now_us();
		*ping = i;
		while (*pong != (uint64_t)i)
			if (time(NULL) > end)
				return 1;
		lat[i - 1] = now_us() - t0;
		sum += lat[i - 1];
	}
	qsort(lat, rounds, sizeof(*lat), cmp);
	printf("mailbox polled round trip over %ld rounds: mean %.2f us, median %.2f us, p99 %.2f us\n",
	       rounds, sum / rounds, lat[rounds / 2], lat[rounds * 99 / 100]);
	return 0;
}
