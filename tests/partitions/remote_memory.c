// SPDX-License-Identifier: GPL-2.0
/*
 * remote_memory.c - cross-partition export, tested from every partition at
 * once (scripts/xpmem-partitions runs it in each; they meet at barriers
 * and publish ids on a board in the mailbox's scratch area, fabric.h).
 * Partition 0 owns the segments; every other partition attaches them;
 * partition 1 also owns one that partition 0 attaches (both directions).
 *
 *   remote_memory main    data both ways, permits, owner munmap / remap /
 *                         page migration (THP collapse) / swap-out under
 *                         remote writers / exit, a remote attacher
 *                         killed, no INVAL where a partition got no
 *                         page, counters back to zero
 *   remote_memory kill    partition 0 exports a segment the last partition
 *                         maps; the last one delays its acks, keeps
 *                         faulting and is killed by the host (its whole
 *                         QEMU) while partition 0 waits in munmap for its
 *                         ack; partition 1 (with 3 partitions) restarts
 *                         its driver and attaches again
 *
 * Prints TAP lines "ok N name" / "not ok N name"; tests/partitions/run
 * numbers them into its own stream.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <xpmem.h>

#include "dstate.h"
#include "partitions/fabric.h"

/*
 * A line in the kernel log that starts a step (@tag), and whether the
 * kernel logged a line with @needle since: a step judges the log of its
 * own time, not an earlier step's or an earlier boot's tests.
 */
static void kmsg_mark(const char *tag)
{
	FILE *k = fopen("/dev/kmsg", "w");

	if (k) {
		fprintf(k, "xpmem-test: step %s begins (pid %d)\n", tag, (int)getpid());
		fclose(k);
	}
}

static int kmsg_since(const char *tag, const char *needle)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "dmesg | sed -n '/xpmem-test: step %s begins (pid %d)$/,$p' | grep -q '%s'",
		 tag, (int)getpid(), needle);
	return system(cmd) == 0;
}

#define PAGE		4096UL
#define SEG_PAGES	1024UL			/* 4 MiB: half 4K pages, half THP-able */
#define SEG_BYTES	(SEG_PAGES * PAGE)
#define SMALL_BYTES	(64 * 1024UL)
#define KILL_BYTES	(1024 * 1024UL)
#define WAIT		120			/* seconds at a barrier */

enum { KEY_RW = 1, KEY_RO, KEY_NONE, KEY_P1, KEY_EXIT, KEY_KILL, KEY_STAY, KEY_VICTIM,
       KEY_LIMIT, KEY_IDLE, KEY_SLOW, KEY_SLOW_T, KEY_SWAP_DONE = 20 };

#define PEER_LIMIT	3	/* max_objects_per_peer for step 10 */

/* write a module parameter; its old value, or -1 */
static long set_param(const char *name, long val)
{
	char path[128];
	long old = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/sys/module/xpmem/parameters/%s", name);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	if (fscanf(fp, "%ld", &old) != 1)
		old = -1;
	fclose(fp);
	fp = fopen(path, "w");
	if (!fp)
		return -1;
	fprintf(fp, "%ld\n", val);
	return fclose(fp) ? -1 : old;
}

static struct fabric f;
static int ntest, nfail;

static void ok(const char *name)
{
	printf("ok %d %s\n", ++ntest, name);
	fflush(stdout);
}

static void nok(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("not ok %d %s\n# ", ++ntest, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	nfail++;
}

#define CHECK(cond, name, ...) do { if (cond) ok(name); else nok(name, __VA_ARGS__); } while (0)

static void barrier(uint64_t k, unsigned int gone)
{
	if (fabric_barrier(&f, k, gone, WAIT)) {
		nok("barrier", "barrier %llu timed out", (unsigned long long)k);
		exit(1);
	}
}

static uint64_t pattern(unsigned long page, unsigned int round)
{
	return 0x9e3779b97f4a7c15ULL * (page + 1) ^ ((uint64_t)round << 48);
}

static void fill(char *buf, unsigned long pages, unsigned int round)
{
	for (unsigned long i = 0; i < pages; i++)
		*(uint64_t *)(buf + i * PAGE) = pattern(i, round);
}

/* first page whose first word is not pattern(i, round), or -1 */
static long check(const char *buf, unsigned long from, unsigned long to, unsigned int round)
{
	for (unsigned long i = from; i < to; i++)
		if (*(const volatile uint64_t *)(buf + i * PAGE) != pattern(i, round))
			return (long)i;
	return -1;
}

/* a 2 MiB-aligned private anonymous region */
static char *alloc_aligned(unsigned long bytes)
{
	char *p = mmap(NULL, bytes + (2UL << 20), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	return (char *)(((uintptr_t)p + (2UL << 20) - 1) & ~((2UL << 20) - 1));
}

/*
 * The signal a read (or write) of *addr raises here, 0 if none.  In this
 * process: attachments are not inherited by fork (VM_DONTCOPY).
 */
static sigjmp_buf probe_jmp;

static void probe_handler(int sig)
{
	siglongjmp(probe_jmp, sig);
}

static int access_signal(volatile char *addr, int write);

/* write @v to *addr; the signal it raised, 0 if none */
static int access_write_u64(volatile uint64_t *addr, uint64_t v)
{
	int sig = access_signal((volatile char *)addr, 1);

	if (!sig)
		*addr = v;	/* the page is mapped writable now */
	return sig;
}

static int access_signal(volatile char *addr, int write)
{
	struct sigaction sa = { .sa_handler = probe_handler }, old_segv, old_bus;
	int sig;

	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	sig = sigsetjmp(probe_jmp, 1);
	if (!sig) {
		if (write)
			*addr = 1;
		else
			(void)*addr;
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
}

/* the value after @name in a file of "name value" lines, or -1 */
static long keyed(const char *path, const char *name)
{
	FILE *fp = fopen(path, "r");
	char n[64];
	long v, r = -1;

	if (!fp)
		return -1;
	while (fscanf(fp, "%63s %ld", n, &v) == 2)
		if (!strcmp(n, name))
			r = v;
	fclose(fp);
	return r;
}

static long counter(const char *name)
{
	return keyed("/sys/kernel/debug/xpmem/counters", name);
}

static long vmstat(const char *name)
{
	return keyed("/proc/vmstat", name);
}

/* read *addr until it raises SIGBUS, up to @tries times @usec apart */
static int wait_sigbus(volatile char *addr, int tries, useconds_t usec)
{
	int sig = 0;

	for (int i = 0; i < tries && sig != SIGBUS; i++) {
		sig = access_signal(addr, 0);
		if (sig != SIGBUS)
			usleep(usec);
	}
	return sig;
}

/*
 * Poll until the owner's live export counters are both 0, for up to
 * @tries tenths of a second; leaves the last values in *e and *a.
 */
static void wait_exports_zero(int tries, long *e, long *a)
{
	for (int i = 0; i < tries; i++) {
		*e = counter("exports");
		*a = counter("export_atts");
		if (!*e && !*a)
			return;
		usleep(100000);
	}
}

/* the sum of the driver's live-object counters (debugfs "live"), -1 if unreadable */
static long live_sum(void)
{
	FILE *fp = fopen("/sys/kernel/debug/xpmem/live", "r");
	char n[64];
	long v, sum = 0;

	if (!fp)
		return -1;
	while (fscanf(fp, "%63s %ld", n, &v) == 2)
		sum += v;
	fclose(fp);
	return sum;
}

static uint64_t pfn_of(void *addr)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (uintptr_t)addr / PAGE * 8) != 8)
		e = 0;
	close(fd);
	return (e & (1ULL << 63)) ? e & ((1ULL << 55) - 1) : 0;
}

static char *attach_all(xpmem_segid_t segid, int flags, unsigned long bytes, xpmem_apid_t *apid)
{
	struct xpmem_addr a;
	void *p;

	*apid = xpmem_get(segid, flags, XPMEM_PERMIT_MODE, NULL);
	if (*apid < 0)
		return NULL;
	a.apid = *apid;
	a.offset = 0;
	p = xpmem_attach(a, bytes, NULL);
	return p == (void *)-1 ? NULL : p;
}

/* ---- main --------------------------------------------------------------- */

static int run_main(void)
{
	int me = f.me, np = f.np;
	char *seg = NULL, *small = NULL, *mine = NULL, *att = NULL;
	xpmem_segid_t rw = 0, ro = 0, none = 0, p1seg = 0;
	xpmem_apid_t apid = -1, apid_p1 = -1;
	char *att_p1 = NULL;
	long old_limit = -1;
	long bad;

	/* 1. partition 0 exports; partition 1 exports one for partition 0 */
	if (me == 0) {
		seg = alloc_aligned(SEG_BYTES);
		small = alloc_aligned(SMALL_BYTES);
		madvise(seg, SEG_BYTES, MADV_NOHUGEPAGE);	/* 4K pages: collapsed later */
		fill(seg, SEG_PAGES, 0);
		fill(small, SMALL_BYTES / PAGE, 0);
		rw = xpmem_make(seg, SEG_BYTES, XPMEM_PERMIT_MODE, (void *)0600);
		ro = xpmem_make(small, SMALL_BYTES, XPMEM_PERMIT_MODE, (void *)0400);
		none = xpmem_make(small, SMALL_BYTES, XPMEM_PERMIT_MODE, (void *)0);
		CHECK(rw > 0 && ro > 0 && none > 0 && (rw >> 56) == 1,
		      "owner_segids_name_partition_0", "rw %llx ro %llx none %llx",
		      (long long)rw, (long long)ro, (long long)none);
		fabric_put(&f, KEY_RW, rw);
		fabric_put(&f, KEY_RO, ro);
		fabric_put(&f, KEY_NONE, none);
	} else if (me == 1) {
		mine = alloc_aligned(SMALL_BYTES);
		fill(mine, SMALL_BYTES / PAGE, 7);
		p1seg = xpmem_make(mine, SMALL_BYTES, XPMEM_PERMIT_MODE, (void *)0600);
		CHECK(p1seg > 0 && (p1seg >> 56) == 2, "owner_segid_names_partition_1",
		      "segid %llx", (long long)p1seg);
		fabric_put(&f, KEY_P1, p1seg);
	}
	barrier(10, 0);

	/* 2. get, attach, read, write; permits; bad ids */
	if (me != 0) {
		rw = fabric_get(&f, 0, KEY_RW);
		ro = fabric_get(&f, 0, KEY_RO);
		none = fabric_get(&f, 0, KEY_NONE);
		att = attach_all(rw, XPMEM_RDWR, SEG_BYTES, &apid);
		CHECK(att, "remote_get_and_attach_rdwr", "errno %d", errno);
		if (!att)
			return 1;
		bad = check(att, 0, SEG_PAGES, 0);
		CHECK(bad < 0, "remote_attacher_reads_owner_data", "page %ld wrong", bad);
		{
			/* every write lands (no fault), and reads back through the mapping */
			long faulted = -1, wrong = -1;

			for (unsigned long i = 0; i < SEG_PAGES && faulted < 0; i++) {
				uint64_t v = 0xa0000000ULL + me * 65536 + i;

				if (access_write_u64((volatile uint64_t *)(att + i * PAGE + 64 * me), v))
					faulted = (long)i;
				else if (*(volatile uint64_t *)(att + i * PAGE + 64 * me) != v && wrong < 0)
					wrong = (long)i;
			}
			CHECK(faulted < 0 && wrong < 0, "remote_attacher_writes",
			      "write faulted at page %ld, read back wrong at page %ld", faulted, wrong);
		}

		{
			xpmem_apid_t a = xpmem_get(ro, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);

			CHECK(a < 0 && errno == EACCES, "remote_get_rdwr_refused_by_owner_permit",
			      "apid %lld errno %d", (long long)a, errno);
		}
		{
			xpmem_apid_t a;
			char *p = attach_all(ro, XPMEM_RDONLY, SMALL_BYTES, &a);

			CHECK(p && check(p, 0, SMALL_BYTES / PAGE, 0) < 0,
			      "remote_rdonly_attach_reads", "p %p errno %d", p, errno);
			{
				int sig = p ? access_signal(p, 1) : -1;

				CHECK(sig == SIGSEGV, "remote_rdonly_attachment_write_faults",
				      "signal %d", sig);
			}
			if (p) {
				xpmem_detach(p);
				xpmem_release(a);
			}
		}
		{
			xpmem_apid_t a = xpmem_get(none, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);

			/* root elsewhere is nobody special here: mode 0 means no */
			CHECK(a < 0 && errno == EACCES, "remote_get_refused_by_mode_0_even_for_root",
			      "apid %lld errno %d", (long long)a, errno);
		}
		{
			xpmem_apid_t a = xpmem_get(rw ^ 0x3, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);

			CHECK(a < 0 && errno == ENOENT, "remote_get_of_unknown_segid_enoent",
			      "apid %lld errno %d", (long long)a, errno);
			a = xpmem_get(rw ^ (0x5bULL << 32), XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
			CHECK(a < 0 && errno == ENOENT, "remote_get_of_forged_tag_enoent",
			      "apid %lld errno %d", (long long)a, errno);
		}
		if (np < 4) {
			/* a partition number with no partition behind it */
			xpmem_segid_t ghost = (rw & ~(0x7fLL << 56)) | ((int64_t)(np + 1) << 56);
			xpmem_apid_t a = xpmem_get(ghost, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);

			CHECK(a < 0 && errno == EHOSTDOWN, "remote_get_to_absent_partition_ehostdown",
			      "apid %lld errno %d", (long long)a, errno);
		}
		{
			struct xpmem_addr a = { .apid = apid, .offset = SEG_BYTES };
			void *p = xpmem_attach(a, PAGE, NULL);

			CHECK(p == (void *)-1 && errno == EINVAL, "remote_attach_beyond_segment_einval",
			      "p %p errno %d", p, errno);
		}
	} else {
		p1seg = fabric_get(&f, 1, KEY_P1);
		att_p1 = attach_all(p1seg, XPMEM_RDWR, SMALL_BYTES, &apid_p1);
		CHECK(att_p1 && check(att_p1, 0, SMALL_BYTES / PAGE, 7) < 0,
		      "partition_0_reads_partition_1_segment", "p %p errno %d", att_p1, errno);
		if (att_p1)
			fill(att_p1, SMALL_BYTES / PAGE, 8);
	}
	barrier(11, 0);

	/* 3. the owner sees the writes; then writes, and attachers see it */
	if (me == 0) {
		bad = -1;
		for (unsigned long i = 0; i < SEG_PAGES && bad < 0; i++)
			for (int p = 1; p < np; p++)
				if (*(uint64_t *)(seg + i * PAGE + 64 * p) != 0xa0000000ULL + p * 65536 + i)
					bad = (long)i;
		CHECK(bad < 0, "owner_sees_every_remote_write", "page %ld", bad);
		fill(seg, SEG_PAGES, 1);
	} else if (me == 1) {
		CHECK(check(mine, 0, SMALL_BYTES / PAGE, 8) < 0,
		      "partition_1_sees_partition_0_writes", "wrong data");
	}
	barrier(12, 0);
	if (me != 0) {
		bad = check(att, 0, SEG_PAGES, 1);
		CHECK(bad < 0, "owner_writes_seen_through_remote_attachment", "page %ld", bad);
	}
	barrier(13, 0);

	/* 4. owner munmap: SIGBUS remotely; remap: the new pages remotely */
	if (me == 0)
		munmap(seg + 16 * PAGE, 16 * PAGE);
	barrier(14, 0);
	if (me != 0) {
		long inv0 = counter("import_invals");
		int sig = access_signal(att + 20 * PAGE, 0);

		CHECK(sig == SIGBUS, "owner_munmap_gives_remote_sigbus", "signal %d", sig);
		CHECK(check(att, 15, 16, 1) < 0 && check(att, 32, 33, 1) < 0,
		      "owner_munmap_leaves_the_rest_mapped", "neighbour pages wrong");
		fabric_put(&f, 30 + me, inv0);
	}
	barrier(15, 0);
	if (me == 0) {
		char *p = mmap(seg + 16 * PAGE, 16 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

		if (p != MAP_FAILED)
			for (unsigned long i = 16; i < 32; i++)
				*(uint64_t *)(seg + i * PAGE) = pattern(i, 2);
	}
	barrier(16, 0);
	if (me != 0) {
		bad = check(att, 16, 32, 2);
		CHECK(bad < 0, "owner_remap_seen_by_remote_refault", "page %ld", bad);
	}
	barrier(17, 0);

	/* 5. migration: the owner collapses 512 pages into a THP (new pfns) */
	if (me == 0) {
		char *half = seg + SEG_BYTES / 2;
		uint64_t before = pfn_of(half), after;
		int r;

		madvise(half, SEG_BYTES / 2, MADV_HUGEPAGE);
		r = madvise(half, SEG_BYTES / 2, 25 /* MADV_COLLAPSE */);
		after = pfn_of(half);
		fabric_put(&f, KEY_SWAP_DONE - 1, r == 0 && before && after && before != after);
		CHECK(r == 0 && before != after, "owner_pages_migrated_into_a_thp",
		      "madvise %d errno %d pfn %llx -> %llx", r, errno,
		      (unsigned long long)before, (unsigned long long)after);
	}
	barrier(18, 0);
	if (me != 0) {
		long inv0 = (long)fabric_get(&f, me, 30 + me);

		bad = check(att, SEG_PAGES / 2, SEG_PAGES, 1);
		CHECK(bad < 0, "owner_page_migration_remote_sees_same_data", "page %ld", bad);
		CHECK(counter("import_invals") > inv0, "remote_invalidations_received",
		      "import_invals %ld (was %ld)", counter("import_invals"), inv0);
	}
	barrier(19, 0);

	/* 6. the owner pages out (zram swap) while the attachers write */
	if (me != 0) {
		for (unsigned int r = 1; r <= 30; r++) {
			for (unsigned long i = 0; i < SEG_PAGES / 2; i++)
				if (i < 16 || i >= 32)
					*(volatile uint64_t *)(att + i * PAGE + 2048 + 8 * me) = r;
			usleep(20000);
		}
		fabric_put(&f, KEY_SWAP_DONE, 1);
	} else {
		long out0 = vmstat("pswpout"), out;
		int done;

		do {
			madvise(seg, SEG_BYTES / 2, MADV_PAGEOUT);
			usleep(10000);
			done = 1;
			for (int p = 1; p < np; p++)
				done &= fabric_get(&f, p, KEY_SWAP_DONE) == 1;
		} while (!done);
		out = vmstat("pswpout");
		bad = -1;
		for (unsigned long i = 0; i < SEG_PAGES / 2 && bad < 0; i++)
			for (int p = 1; p < np; p++)
				if ((i < 16 || i >= 32) &&
				    *(uint64_t *)(seg + i * PAGE + 2048 + 8 * p) != 30)
					bad = (long)i;
		CHECK(out > out0, "owner_pages_swapped_out_while_attached", "pswpout %ld -> %ld",
		      out0, out);
		CHECK(bad < 0, "owner_swap_with_remote_writers_loses_nothing", "page %ld", bad);
		printf("# %ld pages swapped out while remote partitions wrote\n", out - out0);
	}
	barrier(20, 0);

	/* 7. an owner process exits: its remote attachers get SIGBUS */
	if (me == 0) {
		int pipefd[2] = { -1, -1 };
		pid_t pid;
		char c;

		if (pipe(pipefd))
			return 1;
		pid = fork();
		if (pid == 0) {
			char *b = alloc_aligned(SMALL_BYTES);

			fill(b, SMALL_BYTES / PAGE, 3);
			fabric_put(&f, KEY_EXIT, xpmem_make(b, SMALL_BYTES, XPMEM_PERMIT_MODE,
							      (void *)0600));
			c = 'p';
			if (write(pipefd[1], &c, 1) != 1)
				_exit(1);
			barrier(21, 0);
			barrier(22, 0);
			_exit(0);
		}
		/* published before anyone passes the barrier */
		if (read(pipefd[0], &c, 1) != 1)
			return 1;
		barrier(21, 0);
		barrier(22, 0);
		waitpid(pid, NULL, 0);
	} else {
		xpmem_apid_t a;
		char *p;

		barrier(21, 0);
		p = attach_all(fabric_get(&f, 0, KEY_EXIT), XPMEM_RDWR, SMALL_BYTES, &a);
		CHECK(p && check(p, 0, SMALL_BYTES / PAGE, 3) < 0, "remote_attach_of_child_segment",
		      "p %p errno %d", p, errno);
		barrier(22, 0);
		{
			/* the owner's exit reached us: SIGBUS, not its old pages */
			int sig = p ? wait_sigbus(p + PAGE, 100, 50000) : -1;

			CHECK(sig == SIGBUS, "owner_exit_gives_remote_sigbus", "signal %d", sig);
		}
		if (p) {
			xpmem_detach(p);
			xpmem_release(a);
		}
	}
	barrier(23, 0);

	/*
	 * 8. a remote attacher process is killed with its attachment live and
	 * faulted in: it dies at once, and its attachment is given back (the
	 * live counters here return to what they were before it)
	 */
	if (me != 0) {
		/* what this process holds; earlier detaches are given back asynchronously */
		long atts0 = (att != NULL) + (att_p1 != NULL), faults0, atts = -1;
		int pipefd[2], st = 0;
		pid_t pid = -1;
		char c;

		for (int i = 0; i < 100 && counter("attachments") != atts0; i++)
			usleep(100000);
		faults0 = counter("import_faults");

		if (pipe(pipefd) == 0 && (pid = fork()) == 0) {
			xpmem_apid_t a;
			char *p = attach_all(rw, XPMEM_RDWR, SEG_BYTES, &a);

			if (p)
				for (unsigned long i = 0; i < SEG_PAGES; i += 7)
					(void)*(volatile char *)(p + i * PAGE);
			c = p ? 'y' : 'n';
			if (write(pipefd[1], &c, 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		c = 'n';
		if (read(pipefd[0], &c, 1) != 1)
			c = 'n';
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		}
		CHECK(!d_state_stuck(), "no_task_in_d_state_after_remote_attacher_kill",
		      "a task stayed in D state");
		for (int i = 0; i < 100; i++) {
			atts = counter("attachments");
			if (atts == atts0)
				break;
			usleep(100000);
		}
		CHECK(c == 'y' && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL &&
		      counter("import_faults") - faults0 >= (long)(SEG_PAGES / 7) && atts == atts0,
		      "remote_attacher_killed_with_live_attachment",
		      "attached %c, status %#x, %ld remote faults, attachments %ld (was %ld)",
		      c, st, counter("import_faults") - faults0, atts, atts0);
	}
	barrier(24, 0);

	/* 9. everybody lets go: the owner's counters are back to zero */
	if (att) {
		xpmem_detach(att);
		xpmem_release(apid);
	}
	if (att_p1) {
		xpmem_detach(att_p1);
		xpmem_release(apid_p1);
	}
	barrier(25, 0);
	if (me == 0 || me == 1) {
		long e = -1, a = -1;

		wait_exports_zero(50, &e, &a);
		CHECK(!e && !a, "owner_export_counters_zero_after_remote_release",
		      "exports %ld export_atts %ld", e, a);
	}
	if (me == 0) {
		xpmem_remove(rw);
		xpmem_remove(ro);
		xpmem_remove(none);
	} else if (me == 1) {
		xpmem_remove(p1seg);
	}
	barrier(26, 0);

	/*
	 * 10. what a peer may make the owner hold is bounded: with
	 * max_objects_per_peer at 3 on the owner, each other partition gets
	 * 2 permits and 1 attachment, and the next get and attach fail with
	 * EDQUOT; released, they work again
	 */
	if (me == 0) {
		char *lim = alloc_aligned(SMALL_BYTES);

		fill(lim, SMALL_BYTES / PAGE, 9);
		kmsg_mark("peer_limit");
		old_limit = set_param("max_objects_per_peer", PEER_LIMIT);
		fabric_put(&f, KEY_LIMIT, xpmem_make(lim, SMALL_BYTES, XPMEM_PERMIT_MODE, (void *)0666));
	}
	barrier(27, 0);
	if (me != 0) {
		xpmem_segid_t lim = fabric_get(&f, 0, KEY_LIMIT);
		xpmem_apid_t a1 = xpmem_get(lim, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		xpmem_apid_t a2 = xpmem_get(lim, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
		struct xpmem_addr addr = { .apid = a1, .offset = 0 };
		void *p = a1 > 0 ? xpmem_attach(addr, SMALL_BYTES, NULL) : (void *)-1;
		xpmem_apid_t a3 = xpmem_get(lim, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
		int e3 = errno, e4;
		void *q;

		addr.apid = a2;
		q = a2 > 0 ? xpmem_attach(addr, SMALL_BYTES, NULL) : (void *)-1;
		e4 = errno;
		CHECK(a1 > 0 && a2 > 0 && p != (void *)-1 && a3 < 0 && e3 == EDQUOT &&
		      q == (void *)-1 && e4 == EDQUOT,
		      "owner_bounds_what_a_peer_makes_it_hold",
		      "gets %lld %lld, attach %p, then get %lld errno %d, attach %p errno %d",
		      (long long)a1, (long long)a2, p, (long long)a3, e3, q, e4);
		if (p != (void *)-1)
			xpmem_detach(p);
		if (a2 > 0)
			xpmem_release(a2);
		if (a1 > 0)
			xpmem_release(a1);
		if (a3 > 0)
			xpmem_release(a3);
		a1 = -1;
		for (int i = 0; i < 100 && a1 < 0; i++) {
			a1 = xpmem_get(lim, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
			if (a1 < 0)
				usleep(100000);	/* the detach is given back asynchronously */
		}
		CHECK(a1 > 0, "peer_limit_frees_up_when_released", "get errno %d", errno);
		if (a1 > 0)
			xpmem_release(a1);
	}
	barrier(28, 0);
	if (me == 0) {
		long e = -1, a = -1;

		set_param("max_objects_per_peer", old_limit);
		xpmem_remove((xpmem_segid_t)fabric_get(&f, 0, KEY_LIMIT));
		CHECK(kmsg_since("peer_limit", "reached max_objects_per_peer"),
		      "peer_limit_reported_in_the_log",
		      "no log line");
		wait_exports_zero(50, &e, &a);
		CHECK(!e && !a, "owner_export_counters_zero_after_the_limit_test",
		      "exports %ld export_atts %ld", e, a);
	}
	barrier(29, 0);

	/*
	 * 11. the owner tells a partition about an invalidation only where it
	 * gave that partition a page: attached but untouched, no INVAL;
	 * touched, an INVAL, and the partition then sees the new data
	 */
	{
		unsigned long pages = SMALL_BYTES / PAGE;
		char *idle = NULL;
		xpmem_apid_t ia = -1;
		char *ip = NULL;

		if (me == 0) {
			idle = alloc_aligned(SMALL_BYTES);
			madvise(idle, SMALL_BYTES, MADV_NOHUGEPAGE);
			fill(idle, pages, 10);
			fabric_put(&f, KEY_IDLE,
				   xpmem_make(idle, SMALL_BYTES, XPMEM_PERMIT_MODE, (void *)0600));
		}
		barrier(30, 0);
		if (me != 0) {
			ip = attach_all(fabric_get(&f, 0, KEY_IDLE), XPMEM_RDONLY, SMALL_BYTES, &ia);
			CHECK(ip, "remote_attach_of_idle_segment", "errno %d", errno);
		}
		barrier(31, 0);
		if (me == 0) {
			long inv0 = counter("export_invals"), um0 = counter("invalidate_unmapped");

			madvise(idle, SMALL_BYTES, MADV_DONTNEED);
			CHECK(counter("export_invals") == inv0 &&
			      counter("invalidate_unmapped") - um0 >= np - 1,
			      "owner_invalidation_of_untouched_range_sends_no_inval",
			      "%ld INVALs sent, %ld invalidations with nothing mapped (want 0 and %d)",
			      counter("export_invals") - inv0, counter("invalidate_unmapped") - um0,
			      np - 1);
			fill(idle, pages, 11);
		}
		barrier(32, 0);
		if (me != 0) {
			bad = ip ? check(ip, 0, pages, 11) : 0;
			CHECK(bad < 0, "remote_reads_idle_segment_after_owner_refill", "page %ld", bad);
		}
		barrier(33, 0);
		if (me == 0) {
			long inv0 = counter("export_invals");

			madvise(idle, SMALL_BYTES, MADV_DONTNEED);
			CHECK(counter("export_invals") - inv0 >= np - 1,
			      "owner_invalidation_of_touched_range_sends_inval",
			      "%ld INVALs sent for %d partitions", counter("export_invals") - inv0,
			      np - 1);
			fill(idle, pages, 12);
		}
		barrier(34, 0);
		if (me != 0) {
			bad = ip ? check(ip, 0, pages, 12) : 0;
			CHECK(bad < 0, "remote_sees_owner_data_after_inval", "page %ld", bad);
			if (ip) {
				xpmem_detach(ip);
				xpmem_release(ia);
			}
		}
		barrier(35, 0);
		if (me == 0)
			xpmem_remove((xpmem_segid_t)fabric_get(&f, 0, KEY_IDLE));
	}
	barrier(36, 0);
	/* everything of this part is gone, on every partition: every live counter */
	{
		long live = -1;

		for (int i = 0; i < 100 && (live = live_sum()) != 0; i++)
			usleep(100000);
		if (live)
			system("sed 's/^/# live: /' /sys/kernel/debug/xpmem/live");
		CHECK(live == 0, "every_live_counter_zero_after_the_main_part",
		      "live objects: %ld", live);
	}
	printf("# remote faults served here %ld, resolved remotely %ld, invalidations sent %ld acked %ld\n",
	       counter("export_faults"), counter("import_faults"), counter("export_invals"),
	       counter("export_acks"));
	barrier(37, 0);
	return 0;
}

/* ---- kill: a partition dies while the owner waits for its ack ---------- */

static int run_kill(void)
{
	int me = f.me, np = f.np, last = np - 1;
	unsigned int gone = 1u << last;
	char *seg = NULL;

	char *stay, *vatt = NULL;
	xpmem_apid_t vapid = -1;

	if (me == last) {
		/* the victim owns memory too: partition 0 maps it */
		char *v = alloc_aligned(SMALL_BYTES);

		fill(v, SMALL_BYTES / PAGE, 6);
		fabric_put(&f, KEY_VICTIM, xpmem_make(v, SMALL_BYTES, XPMEM_PERMIT_MODE, (void *)0600));
	}
	if (me == 0) {
		kmsg_mark("restart");
		seg = alloc_aligned(KILL_BYTES);
		fill(seg, KILL_BYTES / PAGE, 4);
		fabric_put(&f, KEY_KILL, xpmem_make(seg, KILL_BYTES, XPMEM_PERMIT_MODE, (void *)0600));
		/* one that stays mapped, for the partition that restarts */
		stay = alloc_aligned(SMALL_BYTES);
		fill(stay, SMALL_BYTES / PAGE, 5);
		fabric_put(&f, KEY_STAY, xpmem_make(stay, SMALL_BYTES, XPMEM_PERMIT_MODE, (void *)0600));
	}
	barrier(60, 0);
	if (me == 0) {
		vatt = attach_all(fabric_get(&f, last, KEY_VICTIM), XPMEM_RDWR, SMALL_BYTES, &vapid);
		CHECK(vatt && check(vatt, 0, SMALL_BYTES / PAGE, 6) < 0,
		      "partition_0_maps_victim_partition_segment", "p %p errno %d", vatt, errno);
	}
	if (me == last) {
		xpmem_apid_t a;
		char *p = attach_all(fabric_get(&f, 0, KEY_KILL), XPMEM_RDWR, KILL_BYTES, &a);
		const char *ctl = getenv("XPMEM_PARTITIONS_CTL");
		char path[512];
		FILE *fp;

		CHECK(p && check(p, 0, KILL_BYTES / PAGE, 4) < 0, "victim_maps_owner_segment",
		      "p %p errno %d", p, errno);
		/* acks from here take "forever": the owner must not wait that long */
		fp = fopen("/sys/kernel/debug/xpmem/ack_delay_ms", "w");
		if (fp) {
			fputs("600000\n", fp);
			fclose(fp);
		}
		/* and faults are in flight when the partition dies */
		if (fork() == 0) {
			for (;;) {
				xpmem_apid_t b;
				char *q = attach_all(fabric_get(&f, 0, KEY_KILL), XPMEM_RDONLY,
						     KILL_BYTES, &b);

				for (unsigned long i = 0; q && i < KILL_BYTES / PAGE; i++)
					(void)*(volatile char *)(q + i * PAGE);
				if (q)
					xpmem_detach(q);
				xpmem_release(b);
			}
		}
		barrier(61, 0);
		printf("# asking the host to kill this partition's QEMU\n");
		fflush(stdout);
		snprintf(path, sizeof(path), "%s/kill%d", ctl ? ctl : ".", me);
		fp = fopen(path, "w");
		if (fp)
			fclose(fp);
		sleep(600);	/* the host kills us here */
		return 1;
	}
	barrier(61, 0);
	if (me == 0) {
		struct timespec t0, t1;
		long ms, timeout = 3000;
		FILE *fp = fopen("/sys/module/xpmem/parameters/peer_timeout_ms", "r");
		int r;

		if (fp) {
			if (fscanf(fp, "%ld", &timeout) != 1)
				timeout = 3000;
			fclose(fp);
		}
		usleep(100000);
		/* the last partition maps all of it: this waits for its ack */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = munmap(seg, KILL_BYTES);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		/* the death is noticed within one peer timeout of its last beat */
		CHECK(r == 0 && ms < timeout + 2000,
		      "owner_munmap_returns_when_acking_partition_is_killed",
		      "munmap %d after %ld ms (peer timeout %ld ms)", r, ms, timeout);
		printf("# munmap waited %ld ms for the killed partition (peer timeout %ld ms)\n",
		       ms, timeout);
		{
			/* its owner is gone: its pages must not be reachable */
			int sig = vatt ? wait_sigbus(vatt + PAGE, 150, 100000) : -1;

			CHECK(sig == SIGBUS, "attacher_gets_sigbus_after_owner_partition_killed",
			      "signal %d", sig);
		}
		if (vatt) {
			xpmem_detach(vatt);
			xpmem_release(vapid);
		}
	}
	if (me == 1 && last > 1) {
		/* a partition restarts its driver: a new incarnation, welcome again */
		xpmem_apid_t a;
		char *p;
		/*
		 * the teardowns of this process's last detaches run in a
		 * worker and hold the module until they end: retry the unload
		 * for a while (10 s); loaded again with the parameters the
		 * guest loaded it with (scripts/guest-init: partition=1, and
		 * ram_base= on arm64)
		 */
		int r = system("for i in $(seq 100); do rmmod xpmem 2>/dev/null && break; sleep 0.1; done; "
			       "! grep -q '^xpmem ' /proc/modules && "
			       "insmod build/modules-test/$(uname -r)/xpmem.ko "
			       "$(echo \"${xpmemvm_modparams:-partition=1}\" | tr , ' ')");

		for (int i = 0; i < 100; i++) {
			if (!system("grep -q '^partition 0 alive' /sys/kernel/debug/xpmem/partitions"))
				break;
			usleep(100000);
		}
		p = attach_all(fabric_get(&f, 0, KEY_STAY), XPMEM_RDONLY, SMALL_BYTES, &a);
		CHECK(r == 0 && p && check(p, 0, SMALL_BYTES / PAGE, 5) < 0,
		      "restarted_partition_attaches_again", "reload %d p %p errno %d", r, p, errno);
		if (p) {
			xpmem_detach(p);
			xpmem_release(a);
		}
	}
	barrier(62, gone);
	if (me == 0) {
		long e = -1, a = -1;

		if (np > 2)
			CHECK(kmsg_since("restart", "partition 1 restarted"),
			      "owner_saw_partition_restart", "no restart in the log");
		xpmem_remove((xpmem_segid_t)fabric_get(&f, 0, KEY_KILL));
		xpmem_remove((xpmem_segid_t)fabric_get(&f, 0, KEY_STAY));
		wait_exports_zero(100, &e, &a);
		CHECK(!e && !a, "owner_counters_zero_after_partition_death",
		      "exports %ld export_atts %ld", e, a);
	}
	barrier(63, gone);
	return 0;
}

/* ---- slowack: a peer that acknowledges just short of the timeout -------- */

/* the state of partition @p in this partition's debugfs ("alive", "dead", ...) */
static int peer_in_state(int p, const char *state)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd),
		 "grep -q '^partition %d %s ' /sys/kernel/debug/xpmem/partitions", p, state);
	return system(cmd) == 0;
}

static long peer_timeout_ms(void)
{
	FILE *fp = fopen("/sys/module/xpmem/parameters/peer_timeout_ms", "r");
	long timeout = -1;

	if (fp) {
		if (fscanf(fp, "%ld", &timeout) != 1)
			timeout = -1;
		fclose(fp);
	}
	return timeout;
}

static int write_param(const char *path, long v)
{
	FILE *fp = fopen(path, "w");
	int bad;

	if (!fp)
		return -1;
	bad = fprintf(fp, "%ld\n", v) < 0;
	return fclose(fp) || bad;
}

/*
 * After the kill (3 partitions: 0 and 1 are left).  Partition 1 maps a
 * segment of 0 and then delays every ACK to 55% of 0's peer timeout (0
 * doubles its timeout for this step, so that the ACK still comes well
 * before the timeout's own fence on a slow host); partition 0 drops one
 * page at a time.  Its fourth slow ACK (of the last 8) gets 1 fenced, and
 * nothing more is sent to it; 1 learns it was fenced and loses the
 * mapping.  Barriers 64-66: between the kill's and step 7's.
 */
#define SLOW_ACKS_FENCE	4	/* the driver's XPMEM_SLOW_ACKS_FENCE */
#define TIMEOUT_PARAM	"/sys/module/xpmem/parameters/peer_timeout_ms"

static int run_slowack(void)
{
	int me = f.me;
	unsigned int gone = ((1u << f.np) - 1) & ~3u;	/* all but 0 and 1 */
	long timeout = peer_timeout_ms(), slow_timeout;
	xpmem_apid_t a = -1;
	char *seg = NULL, *p = NULL;

	kmsg_mark("slowack");
	if (me == 0) {
		seg = alloc_aligned(SMALL_BYTES);
		fill(seg, SMALL_BYTES / PAGE, 7);
		write_param(TIMEOUT_PARAM, 2 * timeout);
		fabric_put(&f, KEY_SLOW_T, (uint64_t)peer_timeout_ms());
		fabric_put(&f, KEY_SLOW, xpmem_make(seg, SMALL_BYTES, XPMEM_PERMIT_MODE, (void *)0600));
	}
	barrier(64, gone);
	slow_timeout = (long)fabric_get(&f, 0, KEY_SLOW_T);
	if (me == 1) {
		p = attach_all(fabric_get(&f, 0, KEY_SLOW), XPMEM_RDONLY, SMALL_BYTES, &a);
		if (!p || check(p, 0, SMALL_BYTES / PAGE, 7) >= 0)
			printf("# cannot map partition 0's segment: p %p errno %d\n", p, errno);
		write_param("/sys/kernel/debug/xpmem/ack_delay_ms", slow_timeout * 55 / 100);
	}
	barrier(65, gone);
	if (me == 0) {
		long slow = counter("export_slow_acks"), invals;
		int fenced = 0, i;

		/* each waits 55% of the timeout for its ACK, then 1 is fenced */
		for (i = 0; i < 2 * SLOW_ACKS_FENCE && !fenced; i++) {
			madvise(seg + i * PAGE, PAGE, MADV_DONTNEED);
			if (counter("export_slow_acks") - slow < SLOW_ACKS_FENCE)
				continue;
			/* the fence is taken by a heartbeat of the poll thread */
			for (int t = 0; t < 40 && !fenced; t++) {
				fenced = peer_in_state(1, "dead");
				if (!fenced)
					usleep(slow_timeout * 1000 / 20);
			}
		}
		slow = counter("export_slow_acks") - slow;
		CHECK(fenced && slow == SLOW_ACKS_FENCE &&
		      kmsg_since("slowack", "fencing partition 1: its acknowledgments kept"),
		      "peer_acking_close_to_the_timeout_is_fenced",
		      "fenced %d after %d invalidations, %ld slow acks (want %d), log line %d",
		      fenced, i, slow, SLOW_ACKS_FENCE,
		      kmsg_since("slowack", "fencing partition 1"));
		printf("# partition 1 fenced after %d invalidations with acks at 55%% of %ld ms\n",
		       i, slow_timeout);
		invals = counter("export_invals");
		madvise(seg + (SMALL_BYTES - PAGE), PAGE, MADV_DONTNEED);
		invals = counter("export_invals") - invals;
		CHECK(invals == 0, "invalidation_after_the_fence_sends_nothing",
		      "%ld INVALs sent to the fenced partition", invals);
		write_param(TIMEOUT_PARAM, timeout);
	}
	if (me == 1) {
		int sig = p ? wait_sigbus(p + SMALL_BYTES - PAGE, 100, slow_timeout * 1000 / 10) : -1;

		write_param("/sys/kernel/debug/xpmem/ack_delay_ms", 0);
		CHECK(sig == SIGBUS && kmsg_since("slowack", "partition 0 fenced this partition"),
		      "fenced_partition_loses_the_mapping_and_is_told",
		      "signal %d, log line %d", sig,
		      kmsg_since("slowack", "partition 0 fenced this partition"));
		if (p)
			xpmem_detach(p);
		xpmem_release(a);
	}
	barrier(66, gone);
	if (me == 0)
		xpmem_remove((xpmem_segid_t)fabric_get(&f, 0, KEY_SLOW));
	return 0;
}

static int plan_slowack(int me, int np)
{
	if (np < 3 || me > 1)
		return 0;
	return me == 0 ? 2 : 1;
}

/*
 * The plan of each part for this partition, fixed before anything runs, so
 * that a crash or an early exit cannot shorten it (tests/partitions/run
 * checks every planned test ran).  Partition 0 owns; every other one runs
 * the attacher's tests, partition 1 also owns a segment of its own.
 */
static int plan_main(int me, int np)
{
	int attacher = 19 + (np < 4);

	if (me == 0)	/* + step 10: the log line, counters; + step 11; + live counters */
		return 7 + 2 + 2 + 1;
	/* + step 10, + D state in step 8, + step 11, + live counters */
	return attacher + (me == 1 ? 3 : 0) + 2 + 1 + 3 + 1;
}

static int plan_kill(int me, int np)
{
	if (me == 0)
		return 4 + (np > 2);
	return me == 1 && np > 2 ? 1 : 0;
}

int main(int argc, char **argv)
{
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "plan")) {
		/* for tests/partitions/run's own plan: no fabric needed */
		int me = atoi(getenv("XPMEM_PARTITION") ? getenv("XPMEM_PARTITION") : "-1");
		int np = atoi(getenv("XPMEM_PARTITIONS") ? getenv("XPMEM_PARTITIONS") : "0");

		printf("%d\n", !strcmp(argv[2], "main") ? plan_main(me, np) :
			       !strcmp(argv[2], "kill") ? plan_kill(me, np) : plan_slowack(me, np));
		return 0;
	}
	if (argc != 2 || fabric_open(&f))
		return 2;
	if (!strcmp(argv[1], "main")) {
		printf("1..%d\n", plan_main(f.me, f.np));
		ret = run_main();
	} else if (!strcmp(argv[1], "kill")) {
		if (f.me != f.np - 1)	/* the victim is killed before it could finish */
			printf("1..%d\n", plan_kill(f.me, f.np));
		ret = run_kill();
	} else if (!strcmp(argv[1], "slowack")) {
		printf("1..%d\n", plan_slowack(f.me, f.np));
		ret = run_slowack();
	} else {
		return 2;
	}
	printf("# %d passed, %d failed\n", ntest - nfail, nfail);
	return ret || nfail;
}
