// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem-demo: two processes share memory through /dev/xpmem, narrated.
 *
 *   exporter: allocates 4 MiB, writes a message, exports it (xpmem_make)
 *   attacher: a separate process (forked, so it shares nothing by
 *             inheritance: exports and attachments are not inherited),
 *             gets a permit, attaches, reads the message, writes a reply.
 *   Then the exporter changes its memory under the attacher (MADV_DONTNEED,
 *   which frees the pages) and the attacher sees the new contents at once:
 *   the driver's notifier zapped the attacher's mapping before the kernel
 *   freed the page, and the next access faulted in the new one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xpmem.h"

#define SIZE (4UL << 20)

static void counters(const char *when)
{
	FILE *f = fopen("/sys/kernel/debug/xpmem/counters", "r");
	char k[64];
	long v;

	if (!f)
		return;
	printf("   driver counters %s:", when);
	while (fscanf(f, "%63s %ld", k, &v) == 2)
		if (!strcmp(k, "segments") || !strcmp(k, "attachments") ||
		    !strcmp(k, "faults") || !strcmp(k, "invalidate_hits"))
			printf(" %s=%ld", k, v);
	printf("\n");
	fclose(f);
}

int main(void)
{
	int go[2], done[2];
	char *buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	xpmem_segid_t segid;
	pid_t pid;
	char c;
	int st;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("xpmem demo: driver version %#x\n", xpmem_version());
	snprintf(buf, 128, "hello from exporter pid %d", getpid());
	segid = xpmem_make(buf, SIZE, XPMEM_PERMIT_MODE, (void *)0600);
	if (segid < 0) {
		perror("xpmem_make");
		return 1;
	}
	printf("1. exporter %d: exported 4 MiB at %p as segid %#llx (mode 0600)\n",
	       getpid(), buf, (unsigned long long)segid);
	counters("after make");
	if (pipe(go) || pipe(done))
		return 1;

	pid = fork();
	if (pid == 0) {
		xpmem_apid_t apid = xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		struct xpmem_addr addr = { .apid = apid, .offset = 0 };
		char *att = xpmem_attach(addr, SIZE, NULL);

		if (apid < 0 || att == (void *)-1) {
			perror("attacher");
			_exit(1);
		}
		printf("2. attacher %d: got permit %#llx, attached at %p\n",
		       getpid(), (unsigned long long)apid, att);
		printf("   attacher reads: \"%s\"\n", att);
		snprintf(att + 4096, 128, "reply from attacher pid %d", getpid());
		printf("   attacher wrote its reply into the exporter's second page\n");
		if (write(done[1], "1", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		printf("4. attacher reads again: \"%s\"\n", att);
		if (strncmp(att, "the exporter threw", 18))
			_exit(2);
		xpmem_detach(att);
		xpmem_release(apid);
		printf("   attacher detached and released its permit\n");
		_exit(0);
	}
	if (read(done[0], &c, 1) != 1)
		return 1;
	printf("3. exporter reads its own page 2: \"%s\"\n", buf + 4096);
	counters("while attached");
	madvise(buf, SIZE, MADV_DONTNEED);	/* frees the pages the attacher mapped */
	snprintf(buf, 128, "the exporter threw its pages away and wrote this");
	printf("   exporter freed its pages (MADV_DONTNEED) and wrote a new message\n");
	if (write(go[1], "1", 1) != 1)
		return 1;
	waitpid(pid, &st, 0);
	counters("after the attacher left");
	xpmem_remove(segid);
	printf("5. exporter removed the segment; %s\n",
	       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "demo OK" : "demo FAILED");
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
