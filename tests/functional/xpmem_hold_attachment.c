// SPDX-License-Identifier: GPL-2.0
/*
 * Helper for module_lifecycle.sh: attach one of our own pages, close the
 * library's descriptor (so only the attachment keeps the module busy),
 * signal readiness with /tmp/xpmem-holding and wait to be killed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xpmem.h"

int main(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	long *buf = mmap(NULL, pg, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	xpmem_segid_t s;
	xpmem_apid_t a;
	long *att;
	int fd;

	buf[0] = 1;
	s = xpmem_make(buf, pg, XPMEM_PERMIT_MODE, (void *)0600);
	a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	att = xpmem_attach((struct xpmem_addr){ .apid = a, .offset = 0 }, pg, NULL);
	if (s < 0 || a < 0 || att == (void *)-1 || att[0] != 1) {
		perror("xpmem_hold_attachment");
		return 1;
	}
	/* closing every descriptor of /dev/xpmem drops segment and permit */
	for (fd = 3; fd < 64; fd++)
		close(fd);
	fd = open("/tmp/xpmem-holding", O_CREAT | O_WRONLY, 0644);
	close(fd);
	for (;;)
		pause();
}
