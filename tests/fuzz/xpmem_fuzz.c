// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_fuzz - a concurrent, seeded fuzzer of /dev/xpmem and of what the
 * kernel does to exported and attached memory meanwhile.
 *
 *   xpmem_fuzz [--seed N] [--duration SEC] [--procs P] [--threads T]
 *              [--min-ops N] [--scratch DEV] [--users]
 *
 * P worker processes of T threads each issue random operations, drawn from
 * a PRNG seeded from the printed seed (the same seed replays the same
 * choices; the interleavings are the machine's):
 *   - every ioctl, with valid, stale (released/removed), foreign (another
 *     worker's), forged (flipped tag, slot or partition bits, random) ids,
 *     bad ranges, offsets, sizes, flags, reserved words, permit modes and
 *     bad argument pointers;
 *   - the memory under them: munmap (as PROT_NONE over part of a region
 *     or an attachment), mmap over it again, mremap, mprotect, madvise
 *     (DONTNEED, FREE, PAGEOUT, COLD, HUGEPAGE, COLLAPSE, POPULATE_READ,
 *     POPULATE_WRITE, DOFORK, KEEPONFORK, ...) of regions and attachments,
 *     mbind/move_pages/migrate_pages, ftruncate/fallocate of exported
 *     memfd memory;
 *   - the descriptor: close(dup(fd)), dup2() of a new open over it,
 *     close and reopen, while other threads use it;
 *   - other ways in: fork (the child does a few operations, then exits or
 *     is killed), /proc/PID/mem reads and writes of other workers'
 *     attachments, vmsplice of attachments into a pipe, O_DIRECT from and
 *     into attachments (--scratch: a block device to use);
 *   - from the supervisor: SIGKILL of a random worker, often followed at
 *     once by process_mrelease() of its pidfd (the non-blocking
 *     invalidation path), and a replacement worker.
 * With --users, odd workers run as uid/gid 65534, so permits meet other
 * users' segments.
 *
 * Data: every word the fuzzer writes anywhere is a tag (magic, owner
 * slot, owner incarnation); a word read through an attachment, or from
 * one's own memory, /proc/PID/mem or a pipe, must be 0 (a page never
 * written) or a tag of the segment's owner.  Anything else is a page that
 * is not the owner's: a coherence failure.  An access may fault (SIGSEGV
 * or SIGBUS) at any time: something else may have just changed the
 * memory, as the README says.
 *
 * Failures (exit 1): a foreign word, an errno an operation must never
 * return, a worker dying of anything but the supervisor's SIGKILL, a
 * worker that makes no progress for 60 s (times XPMEM_TIME_SCALE) or does
 * not die when killed, fewer than --min-ops operations, or the driver's
 * live objects not back to zero at the end.  Printed: the seed, operations
 * per second and per kind, errnos per kind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "xpmem.h"
#include "testlib.h"

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_mrelease
#define SYS_process_mrelease 448
#endif
#define MPOL_DEFAULT	0
#define MPOL_BIND	2
#define MPOL_MF_MOVE	(1 << 1)

#define MAX_PROCS	16
#define MAX_THREADS	16
#define NR_REGIONS	4
#define REGION_SPAN	(2UL << 20)	/* one THP each */
#define NR_SLOTS	16		/* attachment slots per worker */
#define SLOT_SPAN	(4UL << 20)
#define BOARD_IDS	256
#define TAG_MAGIC	0xa5c3ULL
#define MAX_FAIL_TEXT	8

static size_t PG;

/* ---- the operations ---------------------------------------------------------- */

enum op {
	OP_MAKE, OP_REMOVE, OP_GET, OP_RELEASE, OP_ATTACH, OP_DETACH,
	OP_ACCESS, OP_OWN_ACCESS, OP_BAD_IOCTL, OP_FD, OP_REMAP, OP_UNMAP,
	OP_MREMAP, OP_MPROTECT, OP_MADVISE, OP_NUMA, OP_FORK, OP_PROCMEM,
	OP_VMSPLICE, OP_ODIRECT, OP_TRUNCATE, OP_KILL, OP_MRELEASE,
	NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"make", "remove", "get", "release", "attach", "detach",
	"access", "own_access", "bad_ioctl", "fd", "remap", "unmap",
	"mremap", "mprotect", "madvise", "numa", "fork", "procmem",
	"vmsplice", "odirect", "truncate", "kill", "mrelease",
};

/* relative frequency of each operation in the workers' mix (--skip zeroes some) */
static unsigned int op_weight[NR_OPS] = {
	[OP_MAKE] = 8, [OP_REMOVE] = 3, [OP_GET] = 12, [OP_RELEASE] = 3,
	[OP_ATTACH] = 14, [OP_DETACH] = 5, [OP_ACCESS] = 30, [OP_OWN_ACCESS] = 10,
	[OP_BAD_IOCTL] = 5, [OP_FD] = 3, [OP_REMAP] = 4, [OP_UNMAP] = 1,
	[OP_MREMAP] = 2, [OP_MPROTECT] = 2, [OP_MADVISE] = 8, [OP_NUMA] = 2,
	[OP_FORK] = 1, [OP_PROCMEM] = 4, [OP_VMSPLICE] = 3, [OP_ODIRECT] = 2,
	[OP_TRUNCATE] = 1,
};

/* errno values an xpmem ioctl may return; anything else is a failure */
static bool ioctl_errno_ok(int e)
{
	switch (e) {
	case EINVAL: case ENOENT: case EPERM: case EACCES: case EFAULT:
	case ENOMEM: case ENOSPC: case EBADF: case EINTR: case EAGAIN:
	case EBUSY: case ENOTTY: case EHOSTDOWN: case EMFILE:
		return true;
	default:
		return false;
	}
}

/* ---- shared between supervisor and workers ------------------------------------ */

struct board_seg {
	volatile int64_t id;
	volatile uint64_t vaddr, size;
	volatile int owner, inc;
};

struct board_apid {
	volatile int64_t id;
	volatile uint64_t size;		/* of its segment */
	volatile int owner, inc;	/* the segment's owner */
};

struct board_att {
	volatile uint64_t addr, len;	/* 0: none */
	volatile int owner, inc;
	volatile uint64_t gen;		/* bumped by every change of the slot */
	/*
	 * Operations using the attachment now, by the incarnation's parity
	 * (a killed worker's holds are left behind in the other counter):
	 * the owner does not detach a held slot (hold_att()).
	 */
	volatile int64_t users[2];
};

struct worker_info {
	volatile pid_t pid;
	volatile int inc;		/* incarnation of this slot */
	volatile uint64_t progress;	/* operations done */
	struct board_att att[NR_SLOTS];
};

struct board {
	volatile int stop;
	volatile uint32_t seg_next, apid_next;
	struct board_seg segs[BOARD_IDS];
	struct board_apid apids[BOARD_IDS];
	struct worker_info w[MAX_PROCS];
	volatile uint64_t ops[NR_OPS];
	volatile uint64_t errs[NR_OPS];		/* calls that returned an error */
	volatile uint64_t faults[NR_OPS];	/* accesses that got a signal */
	volatile uint64_t words_checked;	/* everywhere */
	volatile uint64_t att_words;		/* of them, read through attachments */
	volatile uint64_t attaches_ok;
	volatile uint64_t bad_errno, foreign_words, unexpected;
	volatile uint32_t nfail;
	char fail[MAX_FAIL_TEXT][200];
};

static struct board *B;
static int nprocs = 4, nthreads = 4, users;
static unsigned int duration = 30;
static uint64_t seed, min_ops = 1000;
static const char *scratch;

static void note_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_failure(const char *fmt, ...)
{
	uint32_t i = __atomic_fetch_add(&B->nfail, 1, __ATOMIC_SEQ_CST);
	va_list ap;

	if (i >= MAX_FAIL_TEXT)
		return;
	va_start(ap, fmt);
	vsnprintf(B->fail[i], sizeof(B->fail[i]), fmt, ap);
	va_end(ap);
}

/* ---- PRNG (xorshift64*), one per thread ------------------------------------------ */

static __thread uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int percent)
{
	return rnd_below(100) < percent;
}

/* the PRNG state of one thread: a function of the run's seed and who it is */
static uint64_t seed_for(int slot, int inc, int thread)
{
	uint64_t x = seed ^ ((uint64_t)slot << 48) ^ ((uint64_t)inc << 24) ^ (uint64_t)thread;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x ? x : 1;
}

/* ---- tags ------------------------------------------------------------------------ */

static uint64_t tag_of(int owner, int inc)
{
	return TAG_MAGIC << 48 | (uint64_t)(owner & 0xff) << 40 | (uint64_t)(inc & 0xff) << 32 |
	       (rnd() & 0xffffffffULL);
}

static bool tag_ok(uint64_t v, int owner, int inc)
{
	return v == 0 || (v >> 48 == TAG_MAGIC && ((v >> 40) & 0xff) == (uint64_t)(owner & 0xff) &&
			  ((v >> 32) & 0xff) == (uint64_t)(inc & 0xff));
}

static void check_words(const uint64_t *w, size_t n, int owner, int inc, const char *via)
{
	for (size_t i = 0; i < n; i++) {
		if (tag_ok(w[i], owner, inc))
			continue;
		__atomic_add_fetch(&B->foreign_words, 1, __ATOMIC_RELAXED);
		note_failure("foreign word %#" PRIx64 " via %s (owner %d inc %d)", w[i], via, owner, inc);
		return;
	}
	__atomic_add_fetch(&B->words_checked, n, __ATOMIC_RELAXED);
}

/* ---- faults during accesses --------------------------------------------------------- */

static __thread sigjmp_buf probe_env;
static __thread volatile int probing;

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (probing)
		siglongjmp(probe_env, sig);
	/* a fault outside an access: the fuzzer's own state was hit */
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * probe_begin(); if (!sigsetjmp(probe_env, 1)) { accesses } else
 * probe_fault(op); probe_end(); -- a SIGSEGV/SIGBUS during the accesses
 * is counted for @op instead of killing the worker.
 */
static void probe_fault(enum op op)
{
	__atomic_add_fetch(&B->faults[op], 1, __ATOMIC_RELAXED);
}

/* ---- one worker process ---------------------------------------------------------------- */

struct region {
	char *base;		/* REGION_SPAN reserved */
	int memfd;		/* region 2: memfd-backed */
};

struct slot {
	int state;		/* 0 free, 1 busy, 2 attached */
	char *addr;
	size_t len;
	int64_t apid;
	int owner, inc;
	bool writable;
	uint64_t gen;		/* the board's gen when picked */
};

struct own_apid {
	int64_t id;
	uint64_t size;
	int owner, inc;
	bool writable;
};

static int me, my_inc;
/*
 * Two opens of /dev/xpmem: most calls go through the first; a fifth of
 * them, and most of the descriptor games, through the second (a ->flush
 * drops everything the thread group made through that file, so games on
 * the first alone would leave little alive to fuzz).
 */
static volatile int xfd = -1, xfd2 = -1;

static int pick_fd(void)
{
	return chance(20) ? xfd2 : xfd;
}
static struct region regions[NR_REGIONS];
static char *slot_base;
static struct slot slots[NR_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;	/* slots, own ids */
static int64_t own_segs[64];
static int nown_segs;
static struct own_apid own_apids[64];
static int nown_apids;
static int scratch_fd = -1;
/*
 * Every mapping a worker needs is made before its threads start: a detach
 * leaves a hole in the slot area until the slot is reserved again (a
 * MAP_FIXED PROT_NONE), and a mapping placed by the kernel meanwhile (a
 * thread's stack, a lazily made buffer) lands in the hole and is wiped by
 * that reserve; the next touch outside a probe killed the worker (seen
 * once on 6.12-rt: status 0xb at a probed read, the handler already reset
 * by the first fault).
 */
static char *dio_bufs;		/* MAX_THREADS pages: thread t's O_DIRECT buffer at t * PG */
static __thread char *dio_buf;	/* PG-aligned, one per thread */
static __thread int thread_no;
static pthread_barrier_t threads_started;

static void count(enum op op, int ret)
{
	__atomic_add_fetch(&B->ops[op], 1, __ATOMIC_RELAXED);
	if (ret)
		__atomic_add_fetch(&B->errs[op], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&B->w[me].progress, 1, __ATOMIC_RELAXED);
}

static int xioctl(enum op op, unsigned long cmd, void *arg)
{
	int r = ioctl(pick_fd(), cmd, arg);

	if (r < 0 && !ioctl_errno_ok(errno)) {
		__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
		note_failure("%s: ioctl %#lx returned errno %d (%s)", op_name[op], cmd, errno,
			     strerror(errno));
	}
	return r < 0 ? -1 : 0;
}

/* an id as a fuzzer would hand it over: mostly real, sometimes forged */
static int64_t mangle_id(int64_t id)
{
	switch (rnd_below(12)) {
	case 0: return id ^ (int64_t)(1ULL << (32 + rnd_below(24)));	/* tag bit */
	case 1: return id ^ (int64_t)(1ULL << rnd_below(32));		/* slot bit */
	case 2: return id ^ (int64_t)(1ULL << (56 + rnd_below(7)));	/* partition */
	case 3: return (int64_t)(rnd() >> 1);
	case 4: return -id;
	case 5: return 0;
	default: return id;
	}
}

static int64_t board_seg_id(struct board_seg *out)
{
	uint32_t n = B->seg_next, i;

	if (!n)
		return (int64_t)(rnd() >> 1);
	i = (uint32_t)rnd_below(n < BOARD_IDS ? n : BOARD_IDS);
	out->id = B->segs[i].id;
	out->vaddr = B->segs[i].vaddr;
	out->size = B->segs[i].size;
	out->owner = B->segs[i].owner;
	out->inc = B->segs[i].inc;
	return out->id;
}

static void board_put_seg(int64_t id, uint64_t vaddr, uint64_t size)
{
	uint32_t i = __atomic_fetch_add(&B->seg_next, 1, __ATOMIC_SEQ_CST) % BOARD_IDS;

	B->segs[i].id = 0;
	B->segs[i].vaddr = vaddr;
	B->segs[i].size = size;
	B->segs[i].owner = me;
	B->segs[i].inc = my_inc;
	__atomic_store_n(&B->segs[i].id, id, __ATOMIC_RELEASE);
}

static void board_put_apid(int64_t id, uint64_t size, int owner, int inc)
{
	uint32_t i = __atomic_fetch_add(&B->apid_next, 1, __ATOMIC_SEQ_CST) % BOARD_IDS;

	B->apids[i].size = size;
	B->apids[i].owner = owner;
	B->apids[i].inc = inc;
	__atomic_store_n(&B->apids[i].id, id, __ATOMIC_RELEASE);
}

/* a pointer the ioctl argument goes to: usually good, sometimes not */
static void *arg_ptr(void *good)
{
	switch (rnd_below(40)) {
	case 0: return NULL;
	case 1: return (void *)(uintptr_t)0xdead0000;		/* unmapped */
	case 2: return regions[0].base + REGION_SPAN - 8;	/* may straddle */
	case 3: return (void *)(uintptr_t)0xffff800000000000ULL; /* kernel */
	default: return good;
	}
}

static void op_make(void)
{
	struct xpmem_cmd_make c = { .permit_type = XPMEM_PERMIT_MODE };
	static const unsigned int modes[] = { 0600, 0666, 0644, 0400, 0, 0222, 0466, 0660 };
	struct region *r = &regions[rnd_below(NR_REGIONS)];
	size_t pages = REGION_SPAN / PG;
	uint64_t off = rnd_below(pages) * PG;
	int ret;

	if (chance(5)) {
		c.vaddr = 0;
		c.size = XPMEM_MAXADDR_SIZE;	/* the whole address space (UCX) */
	} else {
		c.vaddr = (uint64_t)(uintptr_t)r->base + off;
		c.size = (1 + rnd_below(pages - off / PG)) * PG;
	}
	c.permit_value = modes[rnd_below(8)];
	switch (rnd_below(30)) {
	case 0: c.vaddr += 1 + rnd_below(PG - 1); break;
	case 1: c.size = 0; break;
	case 2: c.size = -PG; break;
	case 3: c.flags = 1; break;
	case 4: c.reserved[rnd_below(2)] = 1; break;
	case 5: c.permit_type = 7; break;
	case 6: c.permit_value = 01777; break;
	case 7: c.vaddr = 0x7ffffffff000ULL; c.size = 2 * PG; break;
	}
	ret = xioctl(OP_MAKE, XPMEM_CMD_MAKE, arg_ptr(&c));
	count(OP_MAKE, ret);
	if (ret || c.segid <= 0)
		return;
	board_put_seg(c.segid, c.vaddr, c.size == XPMEM_MAXADDR_SIZE ? 1ULL << 46 : c.size);
	pthread_mutex_lock(&lock);
	if (nown_segs < 64)
		own_segs[nown_segs++] = c.segid;
	pthread_mutex_unlock(&lock);
}

static void op_remove(void)
{
	struct xpmem_cmd_remove c = { 0 };
	struct board_seg s;

	pthread_mutex_lock(&lock);
	if (nown_segs && chance(70)) {
		int i = (int)rnd_below(nown_segs);

		c.segid = own_segs[i];
		if (chance(80))
			own_segs[i] = own_segs[--nown_segs];
	} else {
		c.segid = board_seg_id(&s);
	}
	pthread_mutex_unlock(&lock);
	c.segid = mangle_id(c.segid);
	if (chance(3))
		c.pad = 1;
	count(OP_REMOVE, xioctl(OP_REMOVE, XPMEM_CMD_REMOVE, arg_ptr(&c)));
}

static void op_get(void)
{
	struct xpmem_cmd_get c = { .permit_type = XPMEM_PERMIT_MODE };
	struct board_seg s = { 0 };
	int ret;

	c.segid = board_seg_id(&s);
	if (chance(15))
		c.segid = mangle_id(c.segid);
	c.flags = chance(50) ? XPMEM_RDWR : XPMEM_RDONLY;
	if (chance(3))
		c.flags = (uint32_t)rnd();
	if (chance(3))
		c.reserved[1] = 5;
	ret = xioctl(OP_GET, XPMEM_CMD_GET, arg_ptr(&c));
	count(OP_GET, ret);
	if (ret || c.apid <= 0)
		return;
	board_put_apid(c.apid, s.size, s.owner, s.inc);
	pthread_mutex_lock(&lock);
	if (nown_apids < 64)
		own_apids[nown_apids++] = (struct own_apid){ c.apid, s.size, s.owner, s.inc,
							     c.flags == XPMEM_RDWR };
	pthread_mutex_unlock(&lock);
}

static void op_release(void)
{
	struct xpmem_cmd_release c = { 0 };

	pthread_mutex_lock(&lock);
	if (nown_apids && chance(70)) {
		int i = (int)rnd_below(nown_apids);

		c.apid = own_apids[i].id;
		if (chance(80))
			own_apids[i] = own_apids[--nown_apids];
	} else {
		c.apid = B->apids[rnd_below(BOARD_IDS)].id;
	}
	pthread_mutex_unlock(&lock);
	c.apid = mangle_id(c.apid);
	count(OP_RELEASE, xioctl(OP_RELEASE, XPMEM_CMD_RELEASE, arg_ptr(&c)));
}

/* re-reserve slot memory as PROT_NONE (after a detach left a hole) */
static void slot_reserve(char *addr, size_t len)
{
	mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
	     -1, 0);
}

static void publish_slot(int i)
{
	struct board_att *a = &B->w[me].att[i];

	__atomic_store_n(&a->addr, 0, __ATOMIC_RELEASE);
	__atomic_add_fetch(&a->gen, 1, __ATOMIC_ACQ_REL);
	if (slots[i].state != 2)
		return;
	a->len = slots[i].len;
	a->owner = slots[i].owner;
	a->inc = slots[i].inc;
	__atomic_store_n(&a->addr, (uint64_t)(uintptr_t)slots[i].addr, __ATOMIC_RELEASE);
}

static void op_attach(void)
{
	struct xpmem_cmd_attach c = { 0 };
	struct own_apid ap = { 0 };
	int i, ret;
	char *want;

	pthread_mutex_lock(&lock);
	for (i = (int)rnd_below(NR_SLOTS); slots[i].state; i = (int)rnd_below(NR_SLOTS))
		if (chance(30))
			break;
	if (slots[i].state) {
		pthread_mutex_unlock(&lock);
		return;
	}
	if (nown_apids && chance(85)) {
		ap = own_apids[rnd_below(nown_apids)];
	} else {
		struct board_apid *b = &B->apids[rnd_below(BOARD_IDS)];

		ap = (struct own_apid){ b->id, b->size, b->owner, b->inc, true };
	}
	slots[i].state = 1;
	pthread_mutex_unlock(&lock);

	want = slot_base + i * SLOT_SPAN;
	c.apid = chance(10) ? mangle_id(ap.id) : ap.id;
	c.size = (1 + rnd_below(SLOT_SPAN / PG)) * PG;
	if (ap.size > PG)
		c.offset = rnd_below(ap.size / PG) * PG;
	if (ap.size > c.offset && c.offset + c.size > ap.size && chance(80))
		c.size = ap.size - c.offset;	/* fits the segment (then clamped to the slot) */
	c.vaddr = chance(70) ? (uint64_t)(uintptr_t)want : 0;
	switch (rnd_below(30)) {
	case 0: c.size += 1 + rnd_below(PG - 1); break;	/* rounded up, as the established driver */
	case 1: c.offset += 8; break;
	case 2: c.size = 0; break;
	case 3: c.vaddr += 8; break;
	case 4: c.flags = 2; break;
	case 5: c.offset = -PG; break;
	}
	if (c.size > SLOT_SPAN)
		c.size = SLOT_SPAN;
	ret = xioctl(OP_ATTACH, XPMEM_CMD_ATTACH, arg_ptr(&c));
	count(OP_ATTACH, ret);
	if (!ret && c.vaddr && c.vaddr != (uint64_t)(uintptr_t)want) {
		/* placed by the kernel: move it into the slot (mremap of an attachment) */
		void *m = mremap((void *)(uintptr_t)c.vaddr, c.size, c.size,
				 MREMAP_MAYMOVE | MREMAP_FIXED, want);

		if (m == MAP_FAILED) {
			struct xpmem_cmd_detach d = { .vaddr = c.vaddr };

			ioctl(xfd, XPMEM_CMD_DETACH, &d);
			munmap((void *)(uintptr_t)c.vaddr, c.size);
			ret = -1;
		}
	}
	pthread_mutex_lock(&lock);
	if (ret) {
		slots[i].state = 0;
		slot_reserve(want, SLOT_SPAN);
	} else {
		__atomic_add_fetch(&B->attaches_ok, 1, __ATOMIC_RELAXED);
		slots[i] = (struct slot){ 2, want, (c.size + PG - 1) & ~(PG - 1), ap.id,
					  ap.owner, ap.inc, ap.writable, 0 };
	}
	publish_slot(i);
	pthread_mutex_unlock(&lock);
}

static int pick_slot(struct slot *out)
{
	int i = (int)rnd_below(NR_SLOTS), found = -1;

	pthread_mutex_lock(&lock);
	if (slots[i].state == 2) {
		*out = slots[i];
		out->gen = __atomic_load_n(&B->w[me].att[i].gen, __ATOMIC_SEQ_CST);
		found = i;
	}
	pthread_mutex_unlock(&lock);
	return found;
}

/*
 * Hold attachment slot @i of worker @w (incarnation @inc), as published
 * with generation @gen, for an operation that reads or writes through
 * it: what it reads must be judged against the right owner, and what it
 * writes must not land in the next attachment of the slot, another
 * owner's.  False if the slot changed since.  The owner's detach bumps
 * gen and then looks at users; a hold adds to users and then looks at
 * gen (both sequentially consistent): one of the two sees the other.
 */
static bool hold_att(int w, int inc, int i, uint64_t gen)
{
	struct board_att *a = &B->w[w].att[i];

	__atomic_add_fetch(&a->users[inc & 1], 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&a->gen, __ATOMIC_SEQ_CST) == gen && a->addr)
		return true;
	__atomic_sub_fetch(&a->users[inc & 1], 1, __ATOMIC_SEQ_CST);
	return false;
}

static void unhold_att(int w, int inc, int i)
{
	__atomic_sub_fetch(&B->w[w].att[i].users[inc & 1], 1, __ATOMIC_SEQ_CST);
}

/* pick_slot() and hold it: -1 if nothing could be held */
static int pick_held_slot(struct slot *out)
{
	int i = pick_slot(out);

	return i >= 0 && hold_att(me, my_inc, i, out->gen) ? i : -1;
}

static void op_detach(void)
{
	struct xpmem_cmd_detach c = { 0 };
	struct slot s;
	int i = pick_slot(&s), ret;

	if (i < 0) {
		c.vaddr = chance(50) ? (uint64_t)(uintptr_t)regions[0].base : rnd();
		count(OP_DETACH, xioctl(OP_DETACH, XPMEM_CMD_DETACH, arg_ptr(&c)));
		return;
	}
	pthread_mutex_lock(&lock);
	if (slots[i].state != 2) {
		pthread_mutex_unlock(&lock);
		return;
	}
	slots[i].state = 1;
	publish_slot(i);	/* gen moves on: no new holds */
	if (__atomic_load_n(&B->w[me].att[i].users[my_inc & 1], __ATOMIC_SEQ_CST) > 0) {
		/* in use by an operation that reads or writes through it */
		slots[i].state = 2;
		publish_slot(i);
		pthread_mutex_unlock(&lock);
		return;
	}
	pthread_mutex_unlock(&lock);
	c.vaddr = (uint64_t)(uintptr_t)s.addr + rnd_below(s.len / PG) * PG + rnd_below(PG);
	if (chance(70)) {
		ret = xioctl(OP_DETACH, XPMEM_CMD_DETACH, &c);
		count(OP_DETACH, ret);
	} else {
		count(OP_DETACH, 0);	/* by unmapping it, as a program's munmap would */
	}
	/* whatever is left of the slot (a split piece, or a hole) is reserved again */
	mmap(s.addr, SLOT_SPAN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
	     -1, 0);
	pthread_mutex_lock(&lock);
	slots[i].state = 0;
	pthread_mutex_unlock(&lock);
}

static void op_access(void)
{
	struct slot s;
	size_t words, off;
	volatile uint64_t *p;
	uint64_t buf[64];
	bool write;
	int i = pick_held_slot(&s);

	if (i < 0)
		return;
	off = rnd_below(s.len / 8);
	words = 1 + rnd_below(64);
	if (off + words > s.len / 8)
		words = s.len / 8 - off;
	p = (volatile uint64_t *)s.addr + off;
	count(OP_ACCESS, 0);
	write = s.writable && chance(40);
	probing = 1;
	if (!sigsetjmp(probe_env, 1)) {
		if (write) {
			for (size_t i = 0; i < words; i++)
				p[i] = tag_of(s.owner, s.inc);
		} else {
			for (size_t i = 0; i < words; i++)
				buf[i] = p[i];
			probing = 0;
			check_words(buf, words, s.owner, s.inc, "attachment");
			__atomic_add_fetch(&B->att_words, words, __ATOMIC_RELAXED);
		}
	} else {
		probe_fault(OP_ACCESS);
	}
	probing = 0;
	unhold_att(me, my_inc, i);
}

static void op_own_access(void)
{
	struct region *r = &regions[rnd_below(NR_REGIONS)];
	volatile uint64_t *p = (volatile uint64_t *)(r->base + rnd_below(REGION_SPAN / PG) * PG);
	uint64_t buf[64];
	size_t words = 1 + rnd_below(64);

	bool write = chance(50);

	count(OP_OWN_ACCESS, 0);
	probing = 1;
	if (!sigsetjmp(probe_env, 1)) {
		if (write) {
			for (size_t i = 0; i < words; i++)
				p[i] = tag_of(me, my_inc);
		} else {
			for (size_t i = 0; i < words; i++)
				buf[i] = p[i];
			probing = 0;
			check_words(buf, words, me, my_inc, "own memory");
		}
	} else {
		probe_fault(OP_OWN_ACCESS);
	}
	probing = 0;
}

static void op_bad_ioctl(void)
{
	static const unsigned long cmds[] = {
		XPMEM_CMD_VERSION, XPMEM_CMD_MAKE, XPMEM_CMD_REMOVE, XPMEM_CMD_GET,
		XPMEM_CMD_RELEASE, XPMEM_CMD_ATTACH, XPMEM_CMD_DETACH,
	};
	uint64_t garbage[12];
	unsigned long cmd = cmds[rnd_below(7)];
	void *arg = garbage;
	int r;

	for (int i = 0; i < 12; i++)
		garbage[i] = chance(50) ? rnd() : rnd_below(4);
	/*
	 * An argument in the fuzzer's own memory (maybe PROT_NONE, read-only
	 * or an attachment) only for the commands that never write back:
	 * what an _IOWR command writes there would not be a tag.
	 */
	static const unsigned long in_only[] = {
		XPMEM_CMD_REMOVE, XPMEM_CMD_RELEASE, XPMEM_CMD_DETACH,
	};

	switch (rnd_below(6)) {
	case 0: cmd = _IOWR(XPMEM_IOC_MAGIC, 7 + rnd_below(50), struct xpmem_cmd_make); break;
	case 1: cmd = rnd(); break;
	case 2:
		cmd = in_only[rnd_below(3)];
		arg = regions[1].base;
		break;
	case 3:
		cmd = in_only[rnd_below(3)];
		arg = (char *)slot_base + rnd_below(NR_SLOTS) * SLOT_SPAN;
		break;
	}
	r = ioctl(pick_fd(), cmd, arg);
	if (r < 0 && !ioctl_errno_ok(errno)) {
		__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
		note_failure("bad_ioctl %#lx: errno %d (%s)", cmd, errno, strerror(errno));
	}
	count(OP_BAD_IOCTL, r < 0);
}

static void op_fd(void)
{
	int fd = chance(85) ? xfd2 : xfd, d, n;

	switch (rnd_below(4)) {
	case 0:
	case 1:		/* ->flush of the same file while others use it */
		d = dup(fd);
		if (d >= 0)
			close(d);
		count(OP_FD, d < 0);
		break;
	case 2:		/* replace the file behind the descriptor */
		n = open(XPMEM_DEV_PATH, O_RDWR);
		if (n >= 0) {
			dup2(n, fd);
			close(n);
		}
		count(OP_FD, n < 0);
		break;
	case 3:		/* a second file, some calls through it, closed */
		n = open(XPMEM_DEV_PATH, O_RDWR);
		if (n >= 0) {
			struct xpmem_cmd_version v = { 0 };

			ioctl(n, XPMEM_CMD_VERSION, &v);
			close(n);
		}
		count(OP_FD, n < 0);
		break;
	}
}

static void *region_page(struct region **rp, size_t *pages)
{
	struct region *r = &regions[rnd_below(NR_REGIONS)];
	size_t total = REGION_SPAN / PG, off = rnd_below(total);

	*rp = r;
	*pages = 1 + rnd_below(total - off < 64 ? total - off : 64);
	return r->base + off * PG;
}

static void op_remap(void)
{
	struct region *r;
	size_t pages;
	char *p = region_page(&r, &pages);
	void *m;

	if (r->memfd >= 0)
		m = mmap(p, pages * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r->memfd,
			 p - r->base);
	else
		m = mmap(p, pages * PG, PROT_READ | PROT_WRITE,
			 (r == &regions[3] ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	count(OP_REMAP, m == MAP_FAILED);
}

static void op_unmap(void)
{
	struct region *r;
	size_t pages;
	char *p = region_page(&r, &pages);
	void *m = mmap(p, pages * PG, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);

	count(OP_UNMAP, m == MAP_FAILED);
}

static void op_mremap(void)
{
	struct region *r;
	size_t pages, len;
	char *p = region_page(&r, &pages), *to;
	struct slot s;
	void *m;

	if (chance(50) && pick_slot(&s) >= 0) {
		/* move part of an attachment within its slot */
		size_t a = rnd_below(s.len / PG), b = rnd_below(SLOT_SPAN / PG);

		len = (1 + rnd_below((s.len / PG) - a)) * PG;
		if (b * PG + len > SLOT_SPAN)
			b = (SLOT_SPAN - len) / PG;
		m = mremap(s.addr + a * PG, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, s.addr + b * PG);
		count(OP_MREMAP, m == MAP_FAILED);
		return;
	}
	/* move pages of a region to another place in the same region */
	len = pages * PG;
	to = r->base + rnd_below(REGION_SPAN / PG - pages + 1) * PG;
	m = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	count(OP_MREMAP, m == MAP_FAILED);
	if (m != MAP_FAILED && to != p) {
		/* keep the source range reserved: only the region is ours */
		for (size_t i = 0; i < pages; i++) {
			char *q = p + i * PG;

			if (q < to || q >= to + len)
				mmap(q, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				     MAP_FIXED_NOREPLACE, -1, 0);
		}
	}
}

static void op_mprotect(void)
{
	/* mostly back to read-write: the memory is meant to be used */
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE, PROT_WRITE,
				     PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE };
	struct region *r;
	size_t pages;
	char *p = region_page(&r, &pages);
	struct slot s;

	if (chance(40) && pick_slot(&s) >= 0) {
		p = s.addr + rnd_below(s.len / PG) * PG;
		pages = 1;
	}
	count(OP_MPROTECT, mprotect(p, pages * PG, prots[rnd_below(6)]));
}

static void op_madvise(void)
{
	static const int advice[] = {
		MADV_DONTNEED, MADV_FREE, MADV_PAGEOUT, MADV_COLD, MADV_HUGEPAGE,
		MADV_NOHUGEPAGE, MADV_COLLAPSE, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
		MADV_DOFORK, MADV_DONTFORK, MADV_KEEPONFORK, MADV_WIPEONFORK, MADV_WILLNEED,
		MADV_REMOVE, MADV_MERGEABLE, MADV_UNMERGEABLE,
	};
	struct region *r;
	size_t pages;
	char *p = region_page(&r, &pages);
	struct slot s;
	int a = advice[rnd_below(sizeof(advice) / sizeof(advice[0]))], ret;

	if (chance(40) && pick_slot(&s) >= 0) {
		size_t first = rnd_below(s.len / PG);

		p = s.addr + first * PG;
		pages = 1 + rnd_below(s.len / PG - first);
	}
	if (a == MADV_HUGEPAGE || a == MADV_COLLAPSE) {
		p = r->base;
		pages = REGION_SPAN / PG;
	}
	ret = madvise(p, pages * PG, a);
	count(OP_MADVISE, ret);
}

static void op_numa(void)
{
	struct region *r;
	size_t pages;
	char *p = region_page(&r, &pages);
	unsigned long node = 1UL << rnd_below(2), other = node ^ 3;
	struct slot s;
	long ret;

	if (chance(40) && pick_slot(&s) >= 0) {
		p = s.addr;
		pages = s.len / PG < 16 ? s.len / PG : 16;
	}
	switch (rnd_below(3)) {
	case 0:
		ret = syscall(SYS_mbind, p, pages * PG, MPOL_BIND, &node, 8, MPOL_MF_MOVE);
		break;
	case 1: {
		void *pv[16];
		int nodes[16], status[16];

		if (pages > 16)
			pages = 16;
		for (size_t i = 0; i < pages; i++) {
			pv[i] = p + i * PG;
			nodes[i] = (int)rnd_below(2);
		}
		ret = syscall(SYS_move_pages, 0, pages, pv, nodes, status, 0);
		break;
	}
	default:
		ret = syscall(SYS_migrate_pages, 0, 8, &other, &node);
		break;
	}
	count(OP_NUMA, ret < 0);
}

static void op_procmem(void)
{
	int w = (int)rnd_below(nprocs), i = (int)rnd_below(NR_SLOTS), fd;
	struct board_att *a = &B->w[w].att[i];
	int winc = B->w[w].inc;
	pid_t pid = B->w[w].pid;
	uint64_t gen = __atomic_load_n(&a->gen, __ATOMIC_SEQ_CST);
	uint64_t addr = __atomic_load_n(&a->addr, __ATOMIC_ACQUIRE), len = a->len;
	int owner = a->owner, inc = a->inc;
	uint64_t buf[32];
	char path[64];
	ssize_t n;

	if (!addr || !pid || !hold_att(w, winc, i, gen))
		return;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		unhold_att(w, winc, i);
		count(OP_PROCMEM, 1);
		return;
	}
	addr += rnd_below(len / 8 > 32 ? len / 8 - 32 : 1) * 8;
	if (chance(30)) {
		for (int k = 0; k < 32; k++)
			buf[k] = tag_of(owner, inc);
		n = pwrite(fd, buf, sizeof(buf), (off_t)addr);
	} else {
		n = pread(fd, buf, sizeof(buf), (off_t)addr);
		if (n > 0)
			check_words(buf, (size_t)n / 8, owner, inc, "/proc/PID/mem");
	}
	unhold_att(w, winc, i);
	count(OP_PROCMEM, n < 0);
	close(fd);
}

static void op_vmsplice(void)
{
	struct slot s;
	int pfd[2];
	uint64_t buf[512];
	struct iovec iov;
	ssize_t n = -1, got;
	int i = pick_held_slot(&s);

	if (i < 0)
		return;
	if (pipe(pfd)) {
		unhold_att(me, my_inc, i);
		return;
	}
	iov.iov_base = s.addr + rnd_below(s.len / PG) * PG;
	iov.iov_len = PG;
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	n = vmsplice(pfd[1], &iov, 1, SPLICE_F_NONBLOCK);
	if (n > 0) {
		got = read(pfd[0], buf, sizeof(buf) < (size_t)n ? sizeof(buf) : (size_t)n);
		if (got > 0)
			check_words(buf, (size_t)got / 8, s.owner, s.inc, "vmsplice");
	}
	unhold_att(me, my_inc, i);
	count(OP_VMSPLICE, n < 0);
	close(pfd[0]);
	close(pfd[1]);
}

static void op_odirect(void)
{
	struct slot s;
	off_t blk;
	ssize_t n;
	int i;

	if (scratch_fd < 0)
		return;
	dio_buf = dio_bufs + thread_no * PG;
	i = pick_held_slot(&s);
	if (i < 0)
		return;
	/* blocks of this thread only: another's could hold another owner's tags */
	blk = (off_t)(((me * MAX_THREADS + thread_no) * 16 + rnd_below(16)) * PG);
	if (s.writable && chance(50)) {
		/* into the attachment: first a block holding the owner's tags */
		for (size_t k = 0; k < PG / 8; k++)
			((uint64_t *)dio_buf)[k] = tag_of(s.owner, s.inc);
		n = pwrite(scratch_fd, dio_buf, PG, blk);
		if (n == (ssize_t)PG)
			n = pread(scratch_fd, s.addr + rnd_below(s.len / PG) * PG, PG, blk);
	} else {
		/* out of the attachment, then check what reached the disk */
		n = pwrite(scratch_fd, s.addr + rnd_below(s.len / PG) * PG, PG, blk);
		if (n == (ssize_t)PG && pread(scratch_fd, dio_buf, PG, blk) == (ssize_t)PG)
			check_words((uint64_t *)dio_buf, PG / 8, s.owner, s.inc, "O_DIRECT");
	}
	unhold_att(me, my_inc, i);
	count(OP_ODIRECT, n < 0);
}

static void op_truncate(void)
{
	struct region *r = &regions[2];
	int ret;

	if (chance(50))
		ret = ftruncate(r->memfd, (off_t)(rnd_below(REGION_SPAN / PG + 1) * PG));
	else
		ret = fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(rnd_below(REGION_SPAN / PG) * PG), (off_t)(PG * (1 + rnd_below(16))));
	if (chance(60))
		ftruncate(r->memfd, REGION_SPAN);
	count(OP_TRUNCATE, ret);
}

static void random_op(void);

static void op_fork(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		/*
		 * The child: a few operations as a new thread group, then out.
		 * Only this thread was copied: a lock another thread held at
		 * the fork stays held in the copy, so start from a fresh one.
		 */
		int n = (int)rnd_below(20);

		pthread_mutex_init(&lock, NULL);
		rng ^= (uint64_t)getpid() << 17;
		for (int i = 0; i < n; i++)
			random_op();
		_exit(0);
	}
	count(OP_FORK, pid < 0);
	if (pid < 0)
		return;
	if (chance(30)) {
		usleep((useconds_t)rnd_below(2000));
		kill(pid, SIGKILL);
	}
	/* bounded: a child stuck in the kernel must not hide as a quiet thread */
	for (int waited = 0; waitpid(pid, NULL, WNOHANG) != pid; waited++) {
		if (waited == 30000) {
			note_failure("fork child %d of worker %d did not exit within 60 s", pid, me);
			kill(pid, SIGKILL);
		}
		usleep(2000);
	}
}

static void random_op(void)
{
	static unsigned int total;
	unsigned int pick, acc = 0;
	int op;

	if (!total)
		for (op = 0; op < NR_OPS; op++)
			total += op_weight[op];
	pick = (unsigned int)rnd_below(total);
	for (op = 0; op < NR_OPS; op++) {
		acc += op_weight[op];
		if (pick < acc)
			break;
	}
	switch (op) {
	case OP_MAKE: op_make(); break;
	case OP_REMOVE: op_remove(); break;
	case OP_GET: op_get(); break;
	case OP_RELEASE: op_release(); break;
	case OP_ATTACH: op_attach(); break;
	case OP_DETACH: op_detach(); break;
	case OP_ACCESS: op_access(); break;
	case OP_OWN_ACCESS: op_own_access(); break;
	case OP_BAD_IOCTL: op_bad_ioctl(); break;
	case OP_FD: op_fd(); break;
	case OP_REMAP: op_remap(); break;
	case OP_UNMAP: op_unmap(); break;
	case OP_MREMAP: op_mremap(); break;
	case OP_MPROTECT: op_mprotect(); break;
	case OP_MADVISE: op_madvise(); break;
	case OP_NUMA: op_numa(); break;
	case OP_FORK: op_fork(); break;
	case OP_PROCMEM: op_procmem(); break;
	case OP_VMSPLICE: op_vmsplice(); break;
	case OP_ODIRECT: op_odirect(); break;
	case OP_TRUNCATE: op_truncate(); break;
	}
}

static void *worker_thread(void *arg)
{
	uintptr_t t = (uintptr_t)arg;

	thread_no = (int)t;
	rng = seed_for(me, my_inc, (int)t);
	pthread_barrier_wait(&threads_started);	/* every stack is mapped */
	while (!B->stop)
		random_op();
	return NULL;
}

static void worker_setup(void)
{
	struct sigaction sa = { .sa_sigaction = fault_handler, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int i = 0; i < NR_REGIONS; i++) {
		struct region *r = &regions[i];
		char *span = mmap(NULL, 2 * REGION_SPAN, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		int flags = MAP_FIXED | (i == 3 ? MAP_SHARED | MAP_ANONYMOUS :
					 MAP_PRIVATE | MAP_ANONYMOUS);

		/* 2 MiB aligned, so region 1 can be a THP */
		r->base = (char *)(((uintptr_t)span + REGION_SPAN - 1) & ~(REGION_SPAN - 1));
		r->memfd = -1;
		if (i == 2) {
			r->memfd = (int)syscall(SYS_memfd_create, "xpmem-fuzz", 0);
			if (r->memfd < 0 || ftruncate(r->memfd, REGION_SPAN))
				exit(3);
			mmap(r->base, REGION_SPAN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			     r->memfd, 0);
		} else {
			mmap(r->base, REGION_SPAN, PROT_READ | PROT_WRITE, flags, -1, 0);
		}
		if (i == 1)
			madvise(r->base, REGION_SPAN, MADV_HUGEPAGE);
		for (size_t off = 0; off < REGION_SPAN; off += PG)
			*(uint64_t *)(r->base + off) = tag_of(me, my_inc);
	}
	slot_base = mmap(NULL, NR_SLOTS * SLOT_SPAN, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	dio_bufs = mmap(NULL, MAX_THREADS * PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (slot_base == MAP_FAILED || dio_bufs == MAP_FAILED)
		exit(3);
	if (scratch) {
		scratch_fd = open(scratch, O_RDWR | O_DIRECT);
	}
	/* high, fixed numbers: dup2() games never hit another descriptor */
	xfd = open(XPMEM_DEV_PATH, O_RDWR);
	xfd2 = open(XPMEM_DEV_PATH, O_RDWR);
	if (xfd < 0 || xfd2 < 0 || dup2(xfd, 900) != 900 || dup2(xfd2, 901) != 901)
		exit(4);
	close(xfd);
	close(xfd2);
	xfd = 900;
	xfd2 = 901;
	if (users && (me & 1)) {
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			exit(5);
	}
	prctl(PR_SET_DUMPABLE, 1);	/* /proc/PID/mem of other workers */
}

static int worker_main(int slot, int inc)
{
	pthread_t th[MAX_THREADS];

	me = slot;
	my_inc = inc;
	rng = seed_for(me, my_inc, 99);
	/* holds of the incarnation before the last one are long over */
	for (int i = 0; i < NR_SLOTS; i++)
		B->w[me].att[i].users[my_inc & 1] = 0;
	worker_setup();
	pthread_barrier_init(&threads_started, NULL, (unsigned int)nthreads);
	for (int t = 1; t < nthreads; t++)
		pthread_create(&th[t], NULL, worker_thread, (void *)(uintptr_t)t);
	worker_thread((void *)0);
	for (int t = 1; t < nthreads; t++)
		pthread_join(th[t], NULL);
	return 0;
}

/* ---- the supervisor ----------------------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static pid_t spawn(int slot)
{
	int inc = ++B->w[slot].inc;
	pid_t pid;

	memset((void *)B->w[slot].att, 0, sizeof(B->w[slot].att));
	pid = fork();
	if (pid == 0)
		_exit(worker_main(slot, inc));
	B->w[slot].pid = pid;
	return pid;
}

/* wait for @pid to be gone, for at most @secs (scaled); false: it is stuck */
static bool reap(pid_t pid, double secs, int *status)
{
	double limit = now() + secs * xpmem_time_scale();

	do {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		usleep(2000);
	} while (now() < limit);
	return false;
}

static void dump_stacks(pid_t pid)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd),
		 "for t in /proc/%d/task/*; do echo \"# $t: $(cat $t/wchan)\"; sed 's/^/#   /' $t/stack; done",
		 pid);
	if (system(cmd))
		return;
}

static void usage(void)
{
	fprintf(stderr, "usage: xpmem_fuzz [--seed N] [--duration SEC] [--procs P] [--threads T] "
			"[--min-ops N] [--scratch DEV] [--users] [--skip OP,OP...]\n");
	exit(2);
}

static bool skipped_kill, skipped_mrelease;

/* --skip fd,kill,...: leave operations out of the mix (to isolate a bug) */
static void skip_ops(const char *list)
{
	char *copy = strdup(list), *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int op;

		for (op = 0; op < NR_OPS; op++)
			if (!strcmp(t, op_name[op]))
				break;
		if (op == NR_OPS)
			usage();
		op_weight[op] = 0;
		skipped_kill |= op == OP_KILL;
		skipped_mrelease |= op == OP_MRELEASE;
	}
	free(copy);
}

int main(int argc, char **argv)
{
	uint64_t last_progress[MAX_PROCS] = { 0 };
	double last_change[MAX_PROCS], start, end, limit, last_report;
	uint64_t total = 0, kills = 0, mreleases = 0, reported = 0;
	int failures = 0, st;

	PG = (size_t)sysconf(_SC_PAGESIZE);
	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			duration = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--procs") && i + 1 < argc)
			nprocs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--min-ops") && i + 1 < argc)
			min_ops = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--scratch") && i + 1 < argc)
			scratch = argv[++i];
		else if (!strcmp(argv[i], "--users"))
			users = 1;
		else if (!strcmp(argv[i], "--skip") && i + 1 < argc)
			skip_ops(argv[++i]);
		else
			usage();
	}
	if (nprocs < 1 || nprocs > MAX_PROCS || nthreads < 1 || nthreads > MAX_THREADS)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# xpmem_fuzz --seed %#" PRIx64 " --duration %u --procs %d --threads %d --min-ops %" PRIu64 "%s%s%s",
	       seed, duration, nprocs, nthreads, min_ops, scratch ? " --scratch " : "",
	       scratch ? scratch : "", users ? " --users" : "");
	for (int op = 0, first = 1; op < NR_OPS; op++) {
		bool off = op == OP_KILL ? skipped_kill : op == OP_MRELEASE ? skipped_mrelease :
			   !op_weight[op];

		if (off) {
			printf("%s%s", first ? " --skip " : ",", op_name[op]);
			first = 0;
		}
	}
	printf("\n");
	B = mmap(NULL, sizeof(*B), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (B == MAP_FAILED)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	rng = seed_for(255, 0, 0);
	for (int w = 0; w < nprocs; w++) {
		spawn(w);
		last_change[w] = now();
	}
	start = now();
	last_report = start;
	end = start + duration;
	limit = end + 300 * xpmem_time_scale();
	while (now() < end || (total < min_ops && now() < limit)) {
		int w = (int)rnd_below(nprocs);
		pid_t pid = B->w[w].pid;

		usleep((useconds_t)(20000 + rnd_below(180000)));
		total = 0;
		for (int op = 0; op < NR_OPS; op++)
			total += B->ops[op];
		/* long runs: the rate as it goes (a rate that decays is a finding) */
		if (duration >= 300 && now() - last_report >= 60) {
			double t = now();

			printf("# %5.0f s: %" PRIu64 " operations, %.0f/s over the last %.0f s, %" PRIu64 " kills\n",
			       t - start, total, (total - reported) / (t - last_report), t - last_report, kills);
			reported = total;
			last_report = t;
		}
		/* a worker that stopped making progress is stuck somewhere */
		for (int i = 0; i < nprocs; i++) {
			if (B->w[i].progress != last_progress[i]) {
				last_progress[i] = B->w[i].progress;
				last_change[i] = now();
			} else if (now() - last_change[i] > 60 * xpmem_time_scale()) {
				note_failure("worker %d (pid %d) made no progress for 60 s", i, B->w[i].pid);
				dump_stacks(B->w[i].pid);
				failures++;
				last_change[i] = now();
			}
		}
		/* a worker that died on its own: anything but our SIGKILL fails */
		if (waitpid(pid, &st, WNOHANG) == pid) {
			note_failure("worker %d died on its own: status %#x", w, st);
			failures++;
			spawn(w);
			continue;
		}
		if (!chance(12) || (skipped_kill && skipped_mrelease))
			continue;
		if (skipped_kill || (!skipped_mrelease && chance(50))) {
			/* kill, and reap its memory now: the OOM reaper's path */
			int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

			kill(pid, SIGKILL);
			if (pfd >= 0) {
				if (syscall(SYS_process_mrelease, pfd, 0) == 0)
					mreleases++;
				close(pfd);
			}
			__atomic_add_fetch(&B->ops[OP_MRELEASE], 1, __ATOMIC_RELAXED);
		} else {
			kill(pid, SIGKILL);
			__atomic_add_fetch(&B->ops[OP_KILL], 1, __ATOMIC_RELAXED);
		}
		kills++;
		if (!reap(pid, 30, &st)) {
			note_failure("killed worker %d (pid %d) did not exit within 30 s", w, pid);
			dump_stacks(pid);
			failures++;
			reap(pid, 600, &st);
		} else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
			note_failure("worker %d ended with status %#x before our SIGKILL", w, st);
			failures++;
		}
		spawn(w);
		last_change[w] = now();
	}
	B->stop = 1;
	for (int w = 0; w < nprocs; w++) {
		kill(B->w[w].pid, SIGKILL);
		if (!reap(B->w[w].pid, 30, &st)) {
			note_failure("worker %d did not exit at the end", w);
			dump_stacks(B->w[w].pid);
			failures++;
		}
	}
	total = 0;
	for (int op = 0; op < NR_OPS; op++)
		total += B->ops[op];
	printf("# %.0f s, %" PRIu64 " operations (%.0f/s), %" PRIu64 " kills (%" PRIu64 " with process_mrelease), %" PRIu64 " attaches, %" PRIu64 " words checked (%" PRIu64 " through attachments)\n",
	       now() - start, total, total / (now() - start), kills, mreleases, B->attaches_ok,
	       B->words_checked, B->att_words);
	printf("# %-11s %10s %10s %10s\n", "operation", "count", "errors", "faults");
	for (int op = 0; op < NR_OPS; op++)
		printf("# %-11s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", op_name[op], B->ops[op],
		       B->errs[op], B->faults[op]);
	if (live_counters_settle()) {
		note_failure("the driver's live objects did not return to zero");
		failures++;
	}
	for (uint32_t i = 0; i < B->nfail && i < MAX_FAIL_TEXT; i++)
		printf("# failure: %s\n", B->fail[i]);
	if (B->foreign_words || B->bad_errno)
		failures++;
	/* the work the run must have done to prove anything */
	if (total < min_ops || B->attaches_ok < min_ops / 100 || B->att_words < min_ops / 10) {
		printf("# too little work: %" PRIu64 " operations (want %" PRIu64 "), %" PRIu64
		       " attaches (want %" PRIu64 "), %" PRIu64 " words through attachments (want %" PRIu64 ")\n",
		       total, min_ops, B->attaches_ok, min_ops / 100, B->att_words, min_ops / 10);
		failures++;
	}
	printf("# foreign words %" PRIu64 ", unexpected errnos %" PRIu64 ", failures %d (seed %#" PRIx64 ")\n",
	       B->foreign_words, B->bad_errno, failures + (int)B->nfail, seed);
	return failures || B->nfail ? 1 : 0;
}
