// SPDX-License-Identifier: GPL-2.0
/*
 * partition-demo.c - make demo, second part: two partitions (separate
 * kernels, scripts/xpmem-partitions) share memory with the plain libxpmem
 * calls.  Partition 0 exports a buffer; partition 1 gets and attaches it
 * with the segid it finds on the board in the mailbox, reads the greeting
 * and writes its answer with ordinary loads and stores; partition 0 reads
 * the answer in its own buffer.
 */
#include <stdio.h>
#include <string.h>
#include <xpmem.h>

#include "partitions/fabric.h"

#define SIZE (64 * 1024)

int main(void)
{
	struct fabric f;
	char *buf;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fabric_open(&f))
		return 2;
	if (f.me == 0) {
		xpmem_segid_t segid;

		buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		snprintf(buf, SIZE, "hello from partition 0, pid %d", getpid());
		segid = xpmem_make(buf, SIZE, XPMEM_PERMIT_MODE, (void *)0600);
		if (segid < 0) {
			perror("xpmem_make");
			return 1;
		}
		printf("partition 0: exported %d KiB at %p as segid %#llx (owner: partition %lld)\n",
		       SIZE / 1024, buf, (long long)segid, (long long)(segid >> 56) - 1);
		fabric_put(&f, 1, segid);
		fabric_barrier(&f, 1, 0, 120);
		fabric_barrier(&f, 2, 0, 120);	/* partition 1 reads and answers */
		printf("partition 0: my buffer now says: \"%s\"\n", buf + 4096);
		xpmem_remove(segid);
	} else if (f.me == 1) {
		xpmem_segid_t segid;
		struct xpmem_addr addr;
		xpmem_apid_t apid;
		char *p;

		fabric_barrier(&f, 1, 0, 120);
		segid = fabric_get(&f, 0, 1);
		apid = xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		if (apid < 0) {
			perror("xpmem_get");
			return 1;
		}
		addr.apid = apid;
		addr.offset = 0;
		p = xpmem_attach(addr, SIZE, NULL);
		if (p == (void *)-1) {
			perror("xpmem_attach");
			return 1;
		}
		printf("partition 1: attached segid %#llx of partition 0 at %p\n",
		       (long long)segid, p);
		printf("partition 1: it says: \"%s\"\n", p);
		snprintf(p + 4096, SIZE - 4096, "hello back from partition 1, pid %d", getpid());
		xpmem_detach(p);
		xpmem_release(apid);
		fabric_barrier(&f, 2, 0, 120);
	}
	return 0;
}
