// SPDX-License-Identifier: GPL-2.0
/*
 * fabric_window.c - check the emulated partitioned machine itself
 * (scripts/xpmem-partitions), before any driver relies on it: a page of
 * one partition's RAM must be readable and writable from every other
 * partition through the fabric window, at the page's guest-physical
 * address less where that partition's RAM begins (0 on QEMU's x86 pc
 * machine, 0x40000000 on its arm64 virt machine: the lowest System RAM of
 * /proc/iomem there; the driver's ram_base); every partition's mailbox region must be visible to its peers,
 * and writable by its owner only.  TAP, run in every partition with
 * XPMEM_PARTITION / XPMEM_PARTITIONS set.
 *
 * Partition i allocates and locks a page, fills it with a pattern naming
 * i, finds its guest-physical address in /proc/self/pagemap and publishes
 * it in the scratch area of its own mailbox (PCI slot 0x0f).  Every
 * partition then reads each peer's publication in that peer's mailbox
 * (slot 0x18+peer), reads the peer's page through the peer's window (BAR
 * 2 of the ivshmem device at slot 0x10+peer), checks the pattern, and
 * writes its own id into the peer's page at offset 8*(1+i).  It also
 * tries to overwrite a word of the peer's mailbox, mapped writable: the
 * write must not land (the emulated fabric's access control, which the
 * driver's isolation between partitions rests on).  Finally each
 * partition checks, in its own page, that every peer's write arrived, and
 * in its own mailbox that no peer's did.  Each publication also carries a
 * "done" word so nobody exits while a peer still reads its page.
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

/* what a partition publishes in the scratch area of its own mailbox */
struct publication {
	volatile uint64_t magic;	/* MAGIC once the rest is written */
	volatile uint64_t phys;		/* the page's offset in our RAM (window) */
	volatile uint64_t nonce;
	volatile uint64_t done;		/* = nonce when finished reading */
	volatile uint64_t canary[MAX_PARTS];	/* peer j tries to overwrite canary[j] */
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

/*
 * Where this partition's RAM begins, offset 0 of its peers' windows: 0 on
 * x86 (whose first System RAM starts after page 0), else the lowest System
 * RAM in /proc/iomem.
 */
static uint64_t ram_base(void)
{
#ifdef __x86_64__
	return 0;
#else
	uint64_t lowest = UINT64_MAX, start, end;
	char line[256];
	FILE *f = fopen("/proc/iomem", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (line[0] != ' ' && strstr(line, ": System RAM") &&
		    sscanf(line, "%lx-%lx", &start, &end) == 2 && start < lowest)
			lowest = start;
	fclose(f);
	return lowest == UINT64_MAX ? 0 : lowest;
#endif
}

/* BAR 2 of the device at @slot, mapped writable even if the memory behind is not */
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

static uint64_t canary_value(uint64_t nonce, int j)
{
	return nonce ^ (0x1111111111111111ULL * (j + 1));
}

int main(void)
{
	const char *e = getenv("XPMEM_PARTITION"), *c = getenv("XPMEM_PARTITIONS");
	int me = e ? atoi(e) : -1, np = c ? atoi(c) : 0;
	struct publication *pub[MAX_PARTS] = { NULL };
	volatile uint64_t *page;
	uint64_t nonce;
	size_t mblen;
	char name[128];

	printf("TAP version 13\n");
	if (me < 0 || np < 2 || np > MAX_PARTS || me >= np) {
		printf("Bail out! XPMEM_PARTITION/XPMEM_PARTITIONS not set (run under scripts/xpmem-partitions)\n");
		return 1;
	}
	/* the plan, fixed before anything runs: a crash cannot shorten it */
	printf("1..%d\n", 2 + 4 * (np - 1));
	srand(time(NULL) ^ getpid());
	nonce = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ ((uint64_t)me << 60) ^ 1;

	for (int j = 0; j < np; j++) {
		char *mb = map_bar(j == me ? 0x0f : 0x18 + j, &mblen);

		if (mb && mblen >= SCRATCH + sizeof(struct publication))
			pub[j] = (struct publication *)(mb + SCRATCH);
	}
	int all = 1;

	for (int j = 0; j < np; j++)
		all &= pub[j] != NULL;
	result(all, "every_partitions_mailbox_bar_maps");
	if (!all)
		return 1;

	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
		    -1, 0);
	if (page == MAP_FAILED)
		return 1;
	for (int i = 0; i < 512; i++)
		page[i] = nonce + i;
	for (int j = 0; j < np; j++)
		page[1 + j] = 0;	/* peers write their id + 1 here */
	pub[me]->phys = virt_to_phys((void *)page);
	if (pub[me]->phys)
		pub[me]->phys -= ram_base();
	pub[me]->nonce = nonce;
	for (int j = 0; j < np; j++)
		pub[me]->canary[j] = canary_value(nonce, j);
	__sync_synchronize();
	pub[me]->magic = MAGIC;
	result(pub[me]->phys != 0, "own_page_has_a_guest_physical_address");

	for (int j = 0; j < np; j++) {
		struct publication *pj = pub[j];
		volatile uint64_t *peer;
		uint64_t before;
		size_t wlen;
		uint64_t *win;
		int ok = 1;

		if (j == me)
			continue;
		snprintf(name, sizeof(name), "partition_%d_page_readable_through_window", j);
		if (wait_for(&pj->magic, MAGIC, 120)) {
			printf("# partition %d never published its page\n", j);
			result(0, name);
			snprintf(name, sizeof(name), "write_into_partition_%d_mailbox_does_not_land", j);
			result(0, name);
			continue;
		}
		__sync_synchronize();
		win = map_bar(0x10 + j, &wlen);
		if (!win || pj->phys + 4096 > wlen) {
			printf("# window of partition %d: %p, %zu bytes, page at %#llx\n", j,
			       (void *)win, wlen, (unsigned long long)pj->phys);
			result(0, name);
		} else {
			peer = (volatile uint64_t *)((char *)win + pj->phys);
			for (int i = 1 + MAX_PARTS; i < 512; i++)
				if (peer[i] != pj->nonce + i) {
					printf("# word %d: %#llx, want %#llx\n", i,
					       (unsigned long long)peer[i],
					       (unsigned long long)(pj->nonce + i));
					ok = 0;
					break;
				}
			result(ok, name);
			peer[1 + me] = me + 1;	/* write into the peer's RAM */
			__sync_synchronize();
		}

		/* a hostile partition writing into another's mailbox */
		snprintf(name, sizeof(name), "write_into_partition_%d_mailbox_does_not_land", j);
		before = pj->canary[me];
		pj->canary[me] = ~before;
		pj->magic = 0;
		__sync_synchronize();
		usleep(1000);
		if (pj->canary[me] != canary_value(pj->nonce, me) || before != pj->canary[me] ||
		    pj->magic != MAGIC)
			printf("# partition %d's mailbox: canary %#llx (was %#llx), magic %#llx\n", j,
			       (unsigned long long)pj->canary[me], (unsigned long long)before,
			       (unsigned long long)pj->magic);
		result(pj->canary[me] == canary_value(pj->nonce, me) && pj->magic == MAGIC, name);
	}

	/* every peer's write must show up in our own page, none in our mailbox */
	for (int j = 0; j < np; j++) {
		if (j == me)
			continue;
		snprintf(name, sizeof(name), "partition_%d_wrote_into_our_ram", j);
		result(wait_for(&page[1 + j], j + 1, 120) == 0, name);
	}
	/* leave only when every peer is done with our page and our mailbox */
	pub[me]->done = nonce;
	for (int j = 0; j < np; j++)
		if (j != me && wait_for(&pub[j]->done, pub[j]->nonce, 120)) {
			printf("# partition %d did not finish\n", j);
			return 1;
		}
	for (int j = 0; j < np; j++) {
		if (j == me)
			continue;
		snprintf(name, sizeof(name), "partition_%d_could_not_write_into_our_mailbox", j);
		result(pub[me]->canary[j] == canary_value(nonce, j) && pub[me]->magic == MAGIC, name);
	}
	printf("# %d passed, %d failed\n", n_ok, n_fail);
	return n_fail ? 1 : 0;
}
