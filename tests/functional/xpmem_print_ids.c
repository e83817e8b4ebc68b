// SPDX-License-Identifier: GPL-2.0
/*
 * Helper for module_lifecycle.sh: make N one-page segments (default 64),
 * print their segids in hex, one a line, and remove them.  Run before and
 * after a module reload, it shows whether the ids a fresh load hands out
 * can be told from the last load's (a keyless hash of a counter would
 * repeat them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xpmem.h"

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 64;
	long pg = sysconf(_SC_PAGESIZE);
	char *buf = mmap(NULL, (size_t)n * pg, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	xpmem_segid_t *ids = calloc(n, sizeof(*ids));

	if (buf == MAP_FAILED || !ids || n <= 0)
		return 1;
	for (int i = 0; i < n; i++) {
		ids[i] = xpmem_make(buf + (size_t)i * pg, pg, XPMEM_PERMIT_MODE, (void *)0600);
		if (ids[i] <= 0) {
			perror("xpmem_make");
			return 1;
		}
		printf("%llx\n", (unsigned long long)ids[i]);
	}
	for (int i = 0; i < n; i++)
		xpmem_remove(ids[i]);
	return 0;
}
