// SPDX-License-Identifier: GPL-2.0
/*
 * fabric_sync.c - a barrier between partitions, for the test scripts
 * (fabric.h): partition i records the barrier number K it reached, then
 * waits until every other partition, except those listed as gone,
 * reached K too.
 *
 * Usage: fabric_sync K [GONE...]   (XPMEM_PARTITION/XPMEM_PARTITIONS set)
 * Exit 1 after 120 s without everyone.
 */
#include "partitions/fabric.h"

int main(int argc, char **argv)
{
	uint64_t k = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
	unsigned int gone = 0;
	struct fabric f;

	if (!k || fabric_open(&f))
		return 2;
	for (int a = 2; a < argc; a++)
		gone |= 1u << atoi(argv[a]);
	return fabric_barrier(&f, k, gone, 120) ? 1 : 0;
}
