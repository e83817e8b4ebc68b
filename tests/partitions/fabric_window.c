// SPDX-License-Identifier: GPL-2.0
/*
 * fabric_window.c - check the emulated partitioned machine itself
 * (scripts/xpmem-partitions), before any driver relies on it: a page of
 * one partition's RAM must be readable and writable from every other
 * partition through the fabric window, at the page's guest-physical
 * address, and the shared mailbox must be shared.  TAP, run in every
 * partition with XPMEM_PARTITION / XPMEM_PARTITIONS set.
 *
 * Partition i allocates and locks a page, fills it with a pattern naming
 * i, finds its guest-physical address in /proc/self/pagemap and publishes
 * it in its slot of the mailbox.  Every partition then reads each peer's
 * page through that peer's window (BAR 2 of the ivshmem device at PCI slot
 * 0x10+peer), checks the pattern, and writes its own id into the peer's
 * page at offset 8*(1+i).  Finally each partition checks, in its own page,
 * that every peer's write arrived.  The mailbox also carries a "done"
 * counter so nobody exits while a peer still reads its page.
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

#define MAGIC 0x786d656d66616272ULL	/* "xmemfabr" */
#define MAX_PARTS 4
#define SCRATCH (512 * 1024)	/* XPMEM_MAILBOX_SCRATCH: the driver uses what is below */

struct mailbox {
	volatile uint64_t magic[MAX_PARTS];	/* MAGIC + boot nonce when published */
	volatile uint64_t phys[MAX_PARTS];	/* guest-physical address of the page */
	volatile uint64_t nonce[MAX_PARTS];
	volatile uint64_t done[MAX_PARTS];	/* = nonce when finished reading */
};

static int n_ok, n_fail, n;

static void result(int ok, const char *name)
{
	printf("%sok %d %s\n", ok ? "" : "not ", ++n, name);
	if (ok)
		n_ok++;
	else
		n_fail++;
	fflush(stdout);
}

static void *map_bar(int slot, size_t *len)
{
	char path[128];
	int fd;
	off_t sz;
	void *p;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/0000:00:%02x.0/resource2", slot);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0) {
		printf("# open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	sz = lseek(fd, 0, SEEK_END);
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		printf("# mmap %s: %s\n", path, strerror(errno));
		return NULL;
	}
	*len = sz;
	return p;
}

static uint64_t virt_to_phys(void *v)
{
	uint64_t ent;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t off = (uintptr_t)v / 4096 * 8;

	if (fd < 0 || pread(fd, &ent, 8, off) != 8)
		return 0;
	close(fd);
	if (!(ent & (1ULL << 63)))
		return 0;
	return (ent & ((1ULL << 55) - 1)) * 4096;
}

static int wait_for(volatile uint64_t *word, uint64_t want, int secs)
{
	time_t end = time(NULL) + secs;

	while (*word != want) {
		if (time(NULL) > end)
			return -1;
		usleep(1000);
	}
	return 0;
}

int main(void)
{
	const char *e = getenv("XPMEM_PARTITION"), *c = getenv("XPMEM_PARTITIONS");
	int me = e ? atoi(e) : -1, np = c ? atoi(c) : 0;
	volatile uint64_t *page;
	struct mailbox *mb;
	uint64_t nonce;
	size_t mblen;
	char name[128];

	printf("TAP version 13\n");
	if (me < 0 || np < 2 || np > MAX_PARTS || me >= np) {
		printf("Bail out! XPMEM_PARTITION/XPMEM_PARTITIONS not set (run under scripts/xpmem-partitions)\n");
		return 1;
	}
	/* the plan, fixed before anything runs: a crash cannot shorten it */
	printf("1..%d\n", 2 + 2 * (np - 1));
	srand(time(NULL) ^ getpid());
	nonce = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ ((uint64_t)me << 60) ^ 1;

	mb = map_bar(0x0f, &mblen);
	result(mb && mblen >= SCRATCH + sizeof(*mb), "mailbox_bar_maps");
	if (!mb)
		return 1;
	mb = (struct mailbox *)((char *)mb + SCRATCH);

	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
		    -1, 0);
	if (page == MAP_FAILED)
		return 1;
	for (int i = 0; i < 512; i++)
		page[i] = nonce + i;
	for (int j = 0; j < np; j++)
		page[1 + j] = 0;	/* peers write their id + 1 here */
	mb->phys[me] = virt_to_phys((void *)page);
	mb->nonce[me] = nonce;
	__sync_synchronize();
	mb->magic[me] = MAGIC;
	result(mb->phys[me] != 0, "own_page_has_a_guest_physical_address");

	for (int j = 0; j < np; j++) {
		volatile uint64_t *peer;
		size_t wlen;
		uint64_t *win;
		int ok = 1;

		if (j == me)
			continue;
		snprintf(name, sizeof(name), "partition_%d_page_readable_through_window", j);
		if (wait_for(&mb->magic[j], MAGIC, 120)) {
			printf("# partition %d never published its page\n", j);
			result(0, name);
			continue;
		}
		__sync_synchronize();
		win = map_bar(0x10 + j, &wlen);
		if (!win || mb->phys[j] + 4096 > wlen) {
			printf("# window of partition %d: %p, %zu bytes, page at %#llx\n", j,
			       (void *)win, wlen, (unsigned long long)mb->phys[j]);
			result(0, name);
			continue;
		}
		peer = (volatile uint64_t *)((char *)win + mb->phys[j]);
		for (int i = 1 + MAX_PARTS; i < 512; i++)
			if (peer[i] != mb->nonce[j] + i) {
				printf("# word %d: %#llx, want %#llx\n", i,
				       (unsigned long long)peer[i],
				       (unsigned long long)(mb->nonce[j] + i));
				ok = 0;
				break;
			}
		result(ok, name);
		peer[1 + me] = me + 1;	/* write into the peer's RAM */
		__sync_synchronize();
	}

	/* every peer's write must show up in our own page */
	for (int j = 0; j < np; j++) {
		if (j == me)
			continue;
		snprintf(name, sizeof(name), "partition_%d_wrote_into_our_ram", j);
		result(wait_for(&page[1 + j], j + 1, 120) == 0, name);
	}

	/* leave only when every peer is done with our page */
	mb->done[me] = nonce;
	for (int j = 0; j < np; j++)
		if (j != me && wait_for(&mb->done[j], mb->nonce[j], 120)) {
			printf("# partition %d did not finish\n", j);
			return 1;
		}
	printf("# %d passed, %d failed\n", n_ok, n_fail);
	return n_fail ? 1 : 0;
}
