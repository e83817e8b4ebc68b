// SPDX-License-Identifier: GPL-2.0
/*
 * calibrate - how fast this guest does kernel memory work, for the time
 * limits of the tests.  Faults in and frees anonymous memory (page faults,
 * page allocation and zeroing, page table and rmap work: what the suites
 * mostly do) for about a second, and prints
 *
 *   <pages per second> <time scale>
 *
 * where the time scale is how many times slower than the reference rate
 * this guest is (at least 1).  guest-init exports it as XPMEM_TIME_SCALE;
 * tap.h multiplies every test's time limit by it, so a limit never depends
 * on how fast the host happens to be.  XPMEM_REFERENCE_PAGES_PER_SEC is the
 * rate of a stock Debian 6.12 guest under TCG on the project's 2-core
 * machine (94,000-96,000 measured; the debug kernel does about 20,000);
 * it defines the unit of the limits written in the tests, not a verdict.
 *
 *   calibrate [MAX]
 *
 * prints "<pages per second> <time scale> <measured scale>": the time
 * scale is the measured one capped at MAX (default 16).  A guest slower
 * than that makes every limit so long that a stall of minutes would pass
 * unseen, so the limits stay at MAX and the exit status is 3: the caller
 * fails the job (guest-init does) instead of trusting them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define XPMEM_REFERENCE_PAGES_PER_SEC 90000.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double max = argc > 1 ? atof(argv[1]) : 16.0;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = 16UL << 20;
	double t0 = now(), t;
	unsigned long pages = 0;
	double rate, scale;

	do {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return 1;
		for (size_t off = 0; off < len; off += pg)
			p[off] = 1;
		munmap(p, len);
		pages += len / pg;
		t = now() - t0;
	} while (t < 1.0);
	rate = pages / t;
	scale = XPMEM_REFERENCE_PAGES_PER_SEC / rate;
	if (scale < 1)
		scale = 1;
	printf("%.0f %.1f %.1f\n", rate, scale > max ? max : scale, scale);
	return scale > max ? 3 : 0;
}
