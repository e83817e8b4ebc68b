/*
 * A program written the way existing XPMEM users write them (the pattern
 * of the classic XPMEM examples and of MPI shared-memory transports):
 * export the whole address space, hand the segid to a peer, the peer
 * gets, attaches a buffer by its virtual address, and both sides use it.
 * It uses only the established xpmem.h API and must build unchanged with
 *   cc classic_example.c $(pkg-config --cflags --libs cray-xpmem)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xpmem.h>

#define BUF_SIZE (1 << 20)

int main(void)
{
	int to_child[2], to_parent[2];
	xpmem_segid_t segid;
	char *buf;
	pid_t pid;
	int status;

	if (xpmem_version() < 0) {
		perror("xpmem_version");
		return 1;
	}
	buf = aligned_alloc(4096, BUF_SIZE);
	strcpy(buf, "hello from the exporter");
	segid = xpmem_make(0, XPMEM_MAXADDR_SIZE, XPMEM_PERMIT_MODE, (void *)0666);
	if (segid == -1) {
		perror("xpmem_make");
		return 1;
	}
	if (pipe(to_child) || pipe(to_parent))
		return 1;

	pid = fork();
	if (pid == 0) {
		struct xpmem_addr addr;
		xpmem_apid_t apid;
		char *remote;
		uintptr_t where;

		if (read(to_child[0], &where, sizeof(where)) != sizeof(where))
			_exit(2);
		apid = xpmem_get(segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		if (apid == -1) {
			perror("xpmem_get");
			_exit(3);
		}
		addr.apid = apid;
		addr.offset = where;
		remote = xpmem_attach(addr, BUF_SIZE, NULL);
		if (remote == (void *)-1) {
			perror("xpmem_attach");
			_exit(4);
		}
		if (strcmp(remote, "hello from the exporter") != 0)
			_exit(5);
		strcpy(remote + 4096, "hello back from the attacher");
		xpmem_detach(remote);
		xpmem_release(apid);
		if (write(to_parent[1], "k", 1) != 1)
			_exit(6);
		_exit(0);
	}
	{
		uintptr_t where = (uintptr_t)buf;
		char c;

		if (write(to_child[1], &where, sizeof(where)) != sizeof(where) ||
		    read(to_parent[0], &c, 1) != 1)
			return 1;
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "attacher failed: status %d\n", status);
		return 1;
	}
	if (strcmp(buf + 4096, "hello back from the attacher") != 0) {
		fprintf(stderr, "exporter did not see the attacher's write\n");
		return 1;
	}
	xpmem_remove(segid);
	printf("classic example: data went both ways\n");
	return 0;
}
