// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_fuzz - a concurrent, seeded fuzzer of /dev/xpmem and of what the
 * kernel does to exported and attached memory meanwhile.
 *
 *   xpmem_fuzz [--seed N] [--duration SEC] [--procs P] [--threads T]
 *              [--min-ops N] [--scratch DEV] [--users] [--skip OP,...]
 *              [--reads-only] [--stop-on-data-failure]
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
 * Data.  Every page of a worker's four regions has an entry in a table
 * shared by all processes (MAP_SHARED, made by the supervisor before it
 * forks): the incarnation it describes, a sequence count (odd while the
 * page changes), hi (the newest generation written or being written), lo
 * (every word of the page is at least that generation), wild (the last
 * generation of a change that may leave zeros or the page's own older
 * words: remap, munmap, MADV_DONTNEED/FREE/REMOVE, truncate) and moved
 * (the last that may leave another page's words: the target of an
 * mremap).  Whoever changes a page (the owner, or anyone through an
 * attachment, /proc/PID/mem or O_DIRECT) takes the page's lock (a
 * trylock: a busy page is left alone), makes the count odd, raises hi to
 * a new generation g, rewrites the whole page with words (magic, owner,
 * incarnation, page index, g), sets lo = g if every word was written,
 * makes the count even and unlocks.  The supervisor breaks the locks of a
 * worker (and of its fork children) it reaped.  A reader samples count
 * and lo, reads, then samples hi, wild, moved and count: if the count did
 * not move (no writer in between), every word must be the owner's, of
 * that page, with lo <= generation <= hi; if wild > lo also 0 or an older
 * generation of the page; if moved > lo any word of the owner.  A stale
 * page (an attachment PTE the driver failed to zap), a write that landed
 * in a private copy, a page of another owner or offset all fail at once.
 * Reads that raced a writer, of memory a fork child exported, get the old
 * check (0 or a word of the owner); reads outside the owner's regions are
 * not checked.  Each worker lists the pages it changed lately, and part
 * of the reads through attachments go there, where a PTE left behind
 * would show.  An access may fault (SIGSEGV or SIGBUS) at any time:
 * something else may have just changed the memory, as the README says.
 *
 * Errnos: each call's arguments are classed (bad pointer, bad argument,
 * forged or foreign id, stale id, valid) and each class has its own set
 * of errnos; a valid call on the caller's own live objects must succeed
 * but for the documented transient errors (EDQUOT, ENOMEM, EAGAIN).
 *
 * Failures (exit 1; 3 if any data check failed): a data check, an errno
 * outside the call's set, a worker dying of anything but the
 * supervisor's SIGKILL, a thread that makes no progress for
 * HANG_SECS x XPMEM_TIME_SCALE s (checked every tick, so before each
 * kill), a killed worker that does not exit, fewer operations, attaches,
 * kills, process_mreleases, forks or strictly checked words than the
 * run's length asks (MIN_*_PER_S x duration / XPMEM_TIME_SCALE; short
 * of it the run goes on, up to 300 s x XPMEM_TIME_SCALE more), an
 * operation kind done more or less than MIX_FACTOR times what its weight
 * asks of the operations drawn (the kinds that need a live attachment:
 * times the fraction of their draws that found one, at least
 * MIN_ATT_HIT), or the driver's live objects not back to zero at the end.
 * Printed: the seed, operations per second and per kind, errors, faults
 * and busy pages per kind.
 *
 * --reads-only: attachments are only read, by loads (no writes, no
 * /proc/PID/mem, vmsplice, O_DIRECT, madvise/mprotect/mremap/numa of
 * attachments): for a driver built to leave stale PTEs (debugfs
 * skip_zap_every), whose pages the kernel may have freed.
 * --stop-on-data-failure: end at the first data check failure, at the
 * latest after duration x XPMEM_TIME_SCALE (not extended for the minimum
 * work).
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
#define PAGE		4096UL
#define REGION_SPAN	(2UL << 20)	/* one THP each */
#define REGION_PAGES	(REGION_SPAN / PAGE)
#define NPAGES		(NR_REGIONS * REGION_PAGES)	/* a worker's pages */
#define PAGE_WORDS	(PAGE / 8)
#define NR_SLOTS	16		/* attachment slots per worker */
#define SLOT_SPAN	(4UL << 20)
#define SLOT_PAGES	(SLOT_SPAN / PAGE)
#define BOARD_IDS	256
#define TAG_MAGIC	0xa5ULL
#define MAX_FAIL_TEXT	8
#define NR_RECENT	256		/* a few seconds of a worker's changes */

/*
 * The work a run must do, per second of its duration, divided by
 * XPMEM_TIME_SCALE (at least 1): about a tenth of the lowest rate x time
 * scale of five 60 s runs on debian-6.12 (TCG guest, 2 vCPUs, 4 x 4
 * threads, the host shared with other guests; docs/testing.md has the
 * figures).  The debug kernel does about half of that lowest rate.
 */
#define MIN_OPS_PER_S		300.0
#define MIN_ATTACHES_PER_S	5.0
#define MIN_KILLS_PER_S		0.1
#define MIN_MRELEASES_PER_S	0.03
#define MIN_FORKS_PER_S		3.0
#define MIN_WORDS_PER_S		800.0	/* checked against generations */
#define MIN_ATT_WORDS_PER_S	400.0	/* ... of them read through attachments */
/*
 * Each kind's count within this factor of its weight's share of the
 * operations drawn (for the kinds that need a live attachment, times the
 * fraction of their draws that found one, at least MIN_ATT_HIT: about a
 * third on the stock kernels, a fifth on the debug kernel)
 */
#define MIX_FACTOR		3.0
#define MIN_ATT_HIT		0.05
/* a thread with no finished operation for this long (scaled) hangs */
#define HANG_SECS		20.0

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

/* ---- errnos: a set per command and per class of arguments ---------------------- */

typedef unsigned __int128 errset;	/* bit e: errno e allowed */

static errset errs_of(const int *l)
{
	errset m = 0;

	for (; *l; l++)
		m |= (errset)1 << *l;
	return m;
}

/* the set of errnos listed (a value: the list lives only in its statement) */
#define ERRS(...)	errs_of((const int[]){ __VA_ARGS__, 0 })
/* documented for any call that allocates or is charged: never a finding */
#define TRANSIENT	EDQUOT, ENOMEM, EAGAIN

static bool errno_in(int e, errset set)
{
	return e > 0 && e < 128 && (set >> e & 1);
}

/* ---- the page table: one entry per page of every worker's regions ------------------ */

struct pstate {
	volatile uint32_t lock;		/* 0, or the holder's token */
	volatile uint32_t seq;		/* odd while the holder changes the page */
	volatile uint32_t inc;		/* incarnation of the owner it describes */
	volatile uint32_t hi;		/* newest generation written or being written */
	volatile uint32_t lo;		/* every word is at least this generation */
	volatile uint32_t wild;		/* last generation that may leave zeros or older words */
	volatile uint32_t moved;	/* last generation that may leave another page's words */
	/*
	 * The last PSTATE_HIST changes, for a failure's message: generation
	 * << 12 | the operation << 4 | the kind of change << 1 | fork child
	 */
	volatile uint32_t nhist;
	volatile uint32_t hist[4];
};
#define PSTATE_HIST	4

struct ptable {
	/* by owner, incarnation parity (a dead one's readers may linger), page */
	struct pstate p[MAX_PROCS][2][NPAGES];
};

/* ---- shared between supervisor and workers ------------------------------------ */

struct board_seg {
	volatile int64_t id;
	volatile uint64_t vaddr, size;
	volatile int owner, inc, weak;	/* weak: a fork child's memory */
};

struct board_apid {
	volatile int64_t id;
	volatile uint64_t vaddr, size;	/* of its segment */
	volatile int owner, inc, weak;	/* the segment's owner */
	volatile int holder, holder_inc;	/* the worker that got it */
};

struct board_att {
	volatile uint64_t addr, len;	/* 0: none */
	volatile uint64_t src;		/* source address of map offset 0 */
	volatile int owner, inc, weak;
	volatile uint64_t gen;		/* bumped by every change of the slot */
	/*
	 * Operations using the attachment now, by the incarnation's parity
	 * (a killed worker's holds are left behind in the other counter):
	 * the owner does not detach or move a held slot (hold_att()).
	 */
	volatile int64_t users[2];
	/* page k of the slot shows source page src + map[k] (-1: a hole) */
	volatile int16_t map[SLOT_PAGES];
};

struct worker_info {
	volatile pid_t pid;
	volatile int inc;		/* incarnation of this slot */
	volatile uint64_t progress;	/* operations done */
	volatile uint64_t tprogress[MAX_THREADS];	/* ... by each thread (and its fork child) */
	struct {
		volatile int inc;
		volatile uint64_t base[NR_REGIONS];
	} where[2];			/* region addresses, by incarnation parity */
	struct board_att att[NR_SLOTS];
	/* runs of its own pages it changed lately: where stale PTEs would be */
	volatile uint32_t recent_next;
	struct {
		volatile int32_t first, n;
	} recent[NR_RECENT];
};

struct board {
	volatile int stop;
	volatile uint32_t seg_next, apid_next;
	struct board_seg segs[BOARD_IDS];
	struct board_apid apids[BOARD_IDS];
	struct worker_info w[MAX_PROCS];
	volatile uint64_t ops[NR_OPS];
	volatile uint64_t picks[NR_OPS];	/* drawn by random_op() */
	volatile uint64_t errs[NR_OPS];		/* calls that returned an error */
	volatile uint64_t faults[NR_OPS];	/* accesses that got a signal */
	volatile uint64_t busy[NR_OPS];		/* left alone: a page was locked */
	volatile uint64_t words_checked;	/* everywhere, either check */
	volatile uint64_t words_strict;		/* ... against the page's generations */
	volatile uint64_t att_words;		/* ... of them read through attachments */
	volatile uint64_t reads_raced;		/* reads a writer overlapped: old check */
	volatile uint64_t pages_written;	/* whole pages rewritten with a generation */
	volatile uint64_t att_pages_written;	/* ... of them through attachments etc. */
	volatile uint64_t attaches_ok, forks_ok;
	volatile uint64_t bad_errno, data_fail, unexpected;
	volatile uint64_t detach_gone;	/* detach found the piece gone (EINVAL, nothing mapped) */
	volatile uint32_t nfail, ndfail;
	char fail[MAX_FAIL_TEXT][240];
	char dfail[MAX_FAIL_TEXT][400];	/* the first data check failures */
};

static struct board *B;
static struct ptable *T;
static int nprocs = 4, nthreads = 4, users, reads_only, stop_on_data;
static unsigned int duration = 30;
static uint64_t seed, min_ops;
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

/* ---- words: (magic, owner, incarnation, page, generation) -------------------------- */

static uint64_t tag(int owner, int inc, int page, uint32_t gen)
{
	return TAG_MAGIC << 56 | (uint64_t)(owner & 0xf) << 52 | (uint64_t)(inc & 0xff) << 44 |
	       (uint64_t)(page & 0xfff) << 32 | gen;
}

static bool tag_owner_ok(uint64_t v, int owner, int inc)
{
	return v >> 56 == TAG_MAGIC && ((v >> 52) & 0xf) == (uint64_t)(owner & 0xf) &&
	       ((v >> 44) & 0xff) == (uint64_t)(inc & 0xff);
}

static struct pstate *pst(int owner, int inc, int page)
{
	return &T->p[owner][inc & 1][page];
}

/* page index of source address @a of @owner's incarnation @inc, or -1 */
static int owner_page(int owner, int inc, uint64_t a)
{
	int par = inc & 1;

	if (owner < 0 || owner >= MAX_PROCS ||
	    __atomic_load_n(&B->w[owner].where[par].inc, __ATOMIC_ACQUIRE) != inc)
		return -1;
	for (int r = 0; r < NR_REGIONS; r++) {
		uint64_t b = B->w[owner].where[par].base[r];

		if (b && a >= b && a < b + REGION_SPAN)
			return (int)(r * REGION_PAGES + (a - b) / PAGE);
	}
	return -1;
}

/* what a reader samples before its read */
struct snap {
	struct pstate *ps;	/* NULL: no generation check */
	int owner, inc, page;
	uint32_t seq, pinc, lo;
};

static void snap_begin(struct snap *s, int owner, int inc, int page, bool weak)
{
	s->owner = owner;
	s->inc = inc;
	s->page = page;
	s->ps = NULL;
	if (weak || page < 0)
		return;
	s->ps = pst(owner, inc, page);
	s->seq = __atomic_load_n(&s->ps->seq, __ATOMIC_SEQ_CST);
	s->pinc = __atomic_load_n(&s->ps->inc, __ATOMIC_SEQ_CST);
	s->lo = __atomic_load_n(&s->ps->lo, __ATOMIC_SEQ_CST);
}

static void data_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void data_failure(const char *fmt, ...)
{
	char text[400];
	va_list ap;
	uint32_t i;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	__atomic_add_fetch(&B->data_fail, 1, __ATOMIC_SEQ_CST);
	i = __atomic_fetch_add(&B->ndfail, 1, __ATOMIC_SEQ_CST);
	if (i < MAX_FAIL_TEXT)
		snprintf(B->dfail[i], sizeof(B->dfail[i]), "%s", text);
	if (stop_on_data)
		B->stop = 1;
}

/* the last changes of a page, newest last: generation/operation/kind[c: by a fork child] */
static void hist_text(char *buf, size_t size, int owner, int inc, int page)
{
	static const char kinds[] = "PWM";
	struct pstate *p = pst(owner, inc, page);
	uint32_t n = p->nhist;
	size_t len = 0;

	buf[0] = 0;
	for (uint32_t k = n > PSTATE_HIST ? n - PSTATE_HIST : 0; k < n && len < size; k++) {
		uint32_t e = p->hist[k % PSTATE_HIST];
		unsigned int op = (e >> 4) & 0xff;

		len += (size_t)snprintf(buf + len, size - len, " %u/%s/%c%s", e >> 12,
					op < NR_OPS ? op_name[op] : "?", kinds[(e >> 1) & 3],
					(e & 1) ? "c" : "");
	}
}

/*
 * Check @n words read after snap_begin(@s): against the page's
 * generations if no writer overlapped the read, else (and for pages
 * without an entry) the old way: 0 or a word of the owner.
 */
static void check_read(const uint64_t *w, size_t n, const struct snap *s, const char *via, bool att)
{
	bool strict = false, wild = false, moved = false;
	uint32_t hi = 0, wl = 0, mv = 0, seq2 = 0, inc2 = 0;

	if (s->page < 0)
		return;		/* not a page of the owner's regions: anything may be there */
	if (s->ps) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		hi = __atomic_load_n(&s->ps->hi, __ATOMIC_SEQ_CST);
		wl = __atomic_load_n(&s->ps->wild, __ATOMIC_SEQ_CST);
		mv = __atomic_load_n(&s->ps->moved, __ATOMIC_SEQ_CST);
		inc2 = __atomic_load_n(&s->ps->inc, __ATOMIC_SEQ_CST);
		seq2 = __atomic_load_n(&s->ps->seq, __ATOMIC_SEQ_CST);
		strict = seq2 == s->seq && !(seq2 & 1) && s->pinc == (uint32_t)s->inc &&
			 inc2 == s->pinc;
		wild = wl > s->lo;
		moved = mv > s->lo;
		if (!strict)
			__atomic_add_fetch(&B->reads_raced, 1, __ATOMIC_RELAXED);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t v = w[i];
		bool ours = tag_owner_ok(v, s->owner, s->inc);

		if ((!strict || moved) && (v == 0 || ours))
			continue;
		if (!ours && v) {
			data_failure("foreign word %#" PRIx64 " via %s (owner %d inc %d page %d)", v, via,
				     s->owner, s->inc, s->page);
			return;
		}
		if (v == 0 && wild)
			continue;
		if (v == 0) {
			data_failure("zero word via %s: owner %d inc %d page %d was not zeroed since generation %u (hi %u wild %u)",
				     via, s->owner, s->inc, s->page, s->lo, hi, wl);
			return;
		}
		if ((int)((v >> 32) & 0xfff) != s->page) {
			char h1[80], h2[80];

			hist_text(h1, sizeof(h1), s->owner, s->inc, (int)((v >> 32) & 0xfff));
			hist_text(h2, sizeof(h2), s->owner, s->inc, s->page);
			data_failure("word %#" PRIx64 " of page %d via %s at page %d (owner %d inc %d); changes of the first %s, of the second %s",
				     v, (int)((v >> 32) & 0xfff), via, s->page, s->owner, s->inc, h1, h2);
			return;
		}
		if ((uint32_t)v > hi || ((uint32_t)v < s->lo && !wild)) {
			char h[80];

			hist_text(h, sizeof(h), s->owner, s->inc, s->page);
			data_failure("stale word via %s: generation %u, owner %d inc %d page %d holds %u..%u (wild %u); changes%s",
				     via, (uint32_t)v, s->owner, s->inc, s->page, s->lo, hi, wl, h);
			return;
		}
	}
	__atomic_add_fetch(&B->words_checked, n, __ATOMIC_RELAXED);
	if (strict) {
		__atomic_add_fetch(&B->words_strict, n, __ATOMIC_RELAXED);
		if (att)
			__atomic_add_fetch(&B->att_words, n, __ATOMIC_RELAXED);
	}
}

/* ---- writers: a trylock per page, held while the page changes ------------------------ */

static __thread uint32_t my_token;	/* (child, thread, slot + 1, incarnation) */

static bool page_trylock(struct pstate *p)
{
	uint32_t z = 0;

	return __atomic_compare_exchange_n(&p->lock, &z, my_token, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST);
}

static void page_unlock(struct pstate *p)
{
	__atomic_store_n(&p->lock, 0, __ATOMIC_SEQ_CST);
}

/* lock the entry of @owner's page, of incarnation @inc: NULL if busy or another's */
static struct pstate *page_lock(int owner, int inc, int page)
{
	struct pstate *p = pst(owner, inc, page);

	if (!page_trylock(p))
		return NULL;
	if (__atomic_load_n(&p->inc, __ATOMIC_SEQ_CST) != (uint32_t)inc) {
		page_unlock(p);
		return NULL;
	}
	return p;
}

enum change { PLAIN, WILD, MOVED };

static __thread int cur_op;	/* the operation this thread runs */
static int in_child;		/* a fork child of a worker */

/*
 * With the lock: a new generation.  WILD: the page may end up with zeros
 * or any older words of its own (dropped, truncated, mapped again);
 * MOVED: with any words of the owner (another page moved here).
 */
static uint32_t page_begin(struct pstate *p, enum change kind)
{
	uint32_t g = p->hi + 1;

	p->hist[p->nhist++ % PSTATE_HIST] = g << 12 | (uint32_t)cur_op << 4 | kind << 1 | !!in_child;

	__atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_SEQ_CST);	/* odd */
	__atomic_store_n(&p->hi, g, __ATOMIC_SEQ_CST);
	if (kind != PLAIN)
		__atomic_store_n(&p->wild, g, __ATOMIC_SEQ_CST);
	if (kind == MOVED)
		__atomic_store_n(&p->moved, g, __ATOMIC_SEQ_CST);
	return g;
}

/* @complete: every word of the page now holds generation @g */
static void page_end(struct pstate *p, uint32_t g, bool complete)
{
	if (complete)
		__atomic_store_n(&p->lo, g, __ATOMIC_SEQ_CST);
	__atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_SEQ_CST);	/* even */
	page_unlock(p);
}

/*
 * The locks held by processes that are gone: @match under @mask (a
 * worker and its fork children: slot and incarnation; one child: its
 * whole token).  The pages keep what was written; lo stays.
 */
static void break_locks(uint32_t mask, uint32_t match)
{
	struct pstate *p = &T->p[0][0][0], *end = p + MAX_PROCS * 2 * NPAGES;

	for (; p < end; p++) {
		uint32_t t = __atomic_load_n(&p->lock, __ATOMIC_SEQ_CST);

		if (!t || (t & mask) != match)
			continue;
		if (p->seq & 1)
			__atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_SEQ_CST);
		__atomic_compare_exchange_n(&p->lock, &t, 0, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
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

static void probe_fault(enum op op)
{
	__atomic_add_fetch(&B->faults[op], 1, __ATOMIC_RELAXED);
}

/*
 * Write the whole page at @p with words of generation @g: true if every
 * word was stored (a fault, counted for @op, stops it).
 */
static bool write_page(volatile uint64_t *p, int owner, int inc, int page, uint32_t g, enum op op)
{
	uint64_t v = tag(owner, inc, page, g);
	bool done = false;

	probing = 1;
	if (!sigsetjmp(probe_env, 1)) {
		for (size_t i = 0; i < PAGE_WORDS; i++)
			p[i] = v;
		done = true;
	} else {
		probe_fault(op);
	}
	probing = 0;
	if (done)
		__atomic_add_fetch(&B->pages_written, 1, __ATOMIC_RELAXED);
	return done;
}

/*
 * Read @n words at @p into @buf: false if it faulted (counted for @op).
 */
static bool read_words(const volatile uint64_t *p, uint64_t *buf, size_t n, enum op op)
{
	bool done = false;

	probing = 1;
	if (!sigsetjmp(probe_env, 1)) {
		for (size_t i = 0; i < n; i++)
			buf[i] = p[i];
		done = true;
	} else {
		probe_fault(op);
	}
	probing = 0;
	return done;
}

/* ---- one worker process ---------------------------------------------------------------- */

struct region {
	char *base;		/* REGION_SPAN reserved */
	int memfd;		/* region 2: memfd-backed */
};

struct slot {
	int state;		/* 0 free, 1 busy, 2 attached */
	char *addr;
	size_t len;		/* the span of the slot it may use */
	int64_t apid;
	int owner, inc;
	bool writable, weak;
	uint64_t src;		/* source address of the attachment's first page */
	uint64_t gen;		/* the board's gen when picked */
};

/* a segment this process made */
struct own_seg {
	int64_t id;
	uint64_t vaddr, size;
	unsigned int mode;
	int fdi;		/* made through xfd (0) or xfd2 (1) */
	unsigned int epoch;	/* ... whose fd_epoch was this */
	bool mine;		/* made by this process (not the fork parent) */
};

struct own_apid {
	int64_t id;
	uint64_t vaddr, size;
	int owner, inc;
	bool writable, weak;
	bool mine;		/* made by this process (not the fork parent) */
	int fdi;
	unsigned int epoch;
};

static int me, my_inc;
/*
 * Two opens of /dev/xpmem: most calls go through the first; a fifth of
 * them, and most of the descriptor games, through the second (a ->flush
 * drops everything the thread group made through that file, so games on
 * the first alone would leave little alive to fuzz).  fd_epoch[i] moves
 * before each game on descriptor i: what was made through it before
 * may be gone.
 */
static volatile int xfd = -1, xfd2 = -1;
static volatile unsigned int fd_epoch[2], fd_games[2];

/*
 * The epoch of descriptor @fdi before a call that makes an object through
 * it: ~0 while a game is in progress (then the object may be dropped
 * without the epoch moving after our look).
 */
static unsigned int epoch_now(int fdi)
{
	unsigned int e = __atomic_load_n(&fd_epoch[fdi], __ATOMIC_SEQ_CST);

	return __atomic_load_n(&fd_games[fdi], __ATOMIC_SEQ_CST) ? ~0u : e;
}

/* no game on @fdi since epoch_now() returned @e (read after the call that failed) */
static bool epoch_same(int fdi, unsigned int e)
{
	return e != ~0u && !__atomic_load_n(&fd_games[fdi], __ATOMIC_SEQ_CST) &&
	       __atomic_load_n(&fd_epoch[fdi], __ATOMIC_SEQ_CST) == e;
}

/* a game on descriptor @fdi: what was made through it may be dropped */
static void game_begin(int fdi)
{
	__atomic_add_fetch(&fd_games[fdi], 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&fd_epoch[fdi], 1, __ATOMIC_SEQ_CST);
}

static void game_end(int fdi)
{
	__atomic_add_fetch(&fd_epoch[fdi], 1, __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&fd_games[fdi], 1, __ATOMIC_SEQ_CST);
}

static int fd_of(int fdi)
{
	return fdi ? xfd2 : xfd;
}

static int pick_fdi(void)
{
	return chance(20);
}

static struct region regions[NR_REGIONS];
static char *slot_base;
static struct slot slots[NR_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;	/* slots, own ids */
/*
 * The slot area has no holes but while this is held for reading (a
 * detach or a move of an attachment, until the gap is reserved again);
 * an attach the kernel places holds it for writing until the attachment
 * is moved into its slot.  Otherwise the kernel can place it in another
 * slot's gap, that slot then moves a piece over it, and our move (or the
 * detach and munmap when the move fails) takes that slot's piece away.
 */
static pthread_rwlock_t area_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct own_seg own_segs[64];
static int nown_segs;
static struct own_apid own_apids[64];
static int nown_apids;
static int64_t stale_ids[16];	/* removed or released by us: never valid again */
static int nstale;
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
	__atomic_add_fetch(&B->w[me].tprogress[thread_no], 1, __ATOMIC_RELAXED);
}

static void count_busy(enum op op)
{
	__atomic_add_fetch(&B->busy[op], 1, __ATOMIC_RELAXED);
}

/*
 * An xpmem ioctl whose arguments allow the errnos @allowed (0-terminated)
 * and, if @must_fail, no success.  0 or -1.
 */
static int xioctl(enum op op, int fd, unsigned long cmd, void *arg, errset allowed,
		  bool must_fail, const char *what)
{
	int r = ioctl(fd, cmd, arg), e = errno;

	if (r < 0 && !errno_in(e, allowed)) {
		__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
		note_failure("%s (%s): errno %d (%s)", op_name[op], what, e, strerror(e));
	} else if (r == 0 && must_fail) {
		__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
		note_failure("%s (%s): succeeded", op_name[op], what);
	}
	errno = e;
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

	if (!n) {
		out->id = (int64_t)(rnd() >> 1);
		return out->id;
	}
	i = (uint32_t)rnd_below(n < BOARD_IDS ? n : BOARD_IDS);
	out->id = __atomic_load_n(&B->segs[i].id, __ATOMIC_ACQUIRE);
	out->vaddr = B->segs[i].vaddr;
	out->size = B->segs[i].size;
	out->owner = B->segs[i].owner;
	out->inc = B->segs[i].inc;
	out->weak = B->segs[i].weak;
	if (__atomic_load_n(&B->segs[i].id, __ATOMIC_SEQ_CST) != out->id)
		out->id = 0;	/* rewritten meanwhile: the fields are another's */
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
	B->segs[i].weak = in_child;
	__atomic_store_n(&B->segs[i].id, id, __ATOMIC_RELEASE);
}

static void board_put_apid(int64_t id, const struct board_seg *s)
{
	uint32_t i = __atomic_fetch_add(&B->apid_next, 1, __ATOMIC_SEQ_CST) % BOARD_IDS;

	B->apids[i].id = 0;
	B->apids[i].vaddr = s->vaddr;
	B->apids[i].size = s->size;
	B->apids[i].owner = s->owner;
	B->apids[i].inc = s->inc;
	B->apids[i].weak = s->weak;
	B->apids[i].holder = me;
	B->apids[i].holder_inc = my_inc;
	__atomic_store_n(&B->apids[i].id, id, __ATOMIC_RELEASE);
}

/* a pointer the ioctl argument goes to: usually good, sometimes not (*bad) */
static void *arg_ptr(void *good, bool *bad)
{
	*bad = true;
	switch (rnd_below(40)) {
	case 0: return NULL;
	case 1: return (void *)(uintptr_t)0xdead0000;		/* unmapped */
	case 2: return regions[0].base + REGION_SPAN - 8;	/* straddles the end */
	case 3: return (void *)(uintptr_t)0xffff800000000000ULL; /* kernel */
	default: *bad = false; return good;
	}
}

static const unsigned int seg_modes[] = { 0600, 0666, 0644, 0400, 0, 0222, 0466, 0660 };

static void op_make(void)
{
	struct xpmem_cmd_make c = { .permit_type = XPMEM_PERMIT_MODE };
	struct region *r = &regions[rnd_below(NR_REGIONS)];
	size_t pages = REGION_SPAN / PG;
	uint64_t off = rnd_below(pages) * PG;
	bool bad, invalid = true;
	int ret, fdi = pick_fdi();
	unsigned int epoch = epoch_now(fdi);
	void *arg;

	if (chance(5)) {
		c.vaddr = 0;
		c.size = XPMEM_MAXADDR_SIZE;	/* the whole address space (UCX) */
	} else {
		c.vaddr = (uint64_t)(uintptr_t)r->base + off;
		c.size = (1 + rnd_below(pages - off / PG)) * PG;
	}
	c.permit_value = seg_modes[rnd_below(8)];
	switch (rnd_below(30)) {
	case 0: c.vaddr += 1 + rnd_below(PG - 1); break;
	case 1: c.size = 0; break;
	case 2: c.size = -PG; break;
	case 3: c.flags = 1; break;
	case 4: c.reserved[rnd_below(2)] = 1; break;
	case 5: c.permit_type = 7; break;
	case 6: c.permit_value = 01777; break;
	case 7: c.vaddr = -2 * PG; c.size = 4 * PG; break;	/* wraps */
	default: invalid = false; break;
	}
	arg = arg_ptr(&c, &bad);
	ret = xioctl(OP_MAKE, fd_of(fdi), XPMEM_CMD_MAKE, arg,
		     bad ? ERRS(EFAULT) : invalid ? ERRS(EINVAL) : ERRS(EDQUOT, ENOMEM),
		     bad || invalid, bad ? "bad pointer" : invalid ? "bad arguments" : "valid");
	count(OP_MAKE, ret);
	if (ret || bad || c.segid <= 0)
		return;
	board_put_seg(c.segid, c.vaddr, c.size == XPMEM_MAXADDR_SIZE ? 1ULL << 46 : c.size);
	pthread_mutex_lock(&lock);
	if (nown_segs < 64)
		own_segs[nown_segs++] = (struct own_seg){ c.segid, c.vaddr, c.size, (unsigned int)c.permit_value,
							  fdi, epoch, true };
	pthread_mutex_unlock(&lock);
}

static void add_stale(int64_t id)
{
	stale_ids[nstale++ % 16] = id;
}

static void op_remove(void)
{
	struct xpmem_cmd_remove c = { 0 };
	struct board_seg s;
	struct own_seg o = { 0 };
	bool mine = false, bad, mangled;
	int fdi = pick_fdi(), ret;
	errset allowed;
	const char *what;
	void *arg;

	pthread_mutex_lock(&lock);
	if (nown_segs && chance(70)) {
		int i = (int)rnd_below(nown_segs);

		o = own_segs[i];
		own_segs[i] = own_segs[--nown_segs];	/* ours alone from here */
		add_stale(o.id);
		c.segid = o.id;
		mine = o.mine;
		if (chance(80))
			fdi = o.fdi;
	} else if (nstale && chance(30)) {
		c.segid = stale_ids[rnd_below(nstale < 16 ? nstale : 16)];
	} else {
		/*
		 * Another's (or a fork child's) segment: ours are ended only
		 * through our list, so that a remove of a listed one must work.
		 */
		c.segid = board_seg_id(&s);
		if (!c.segid || (s.owner == me && s.inc == my_inc))
			c.segid = (int64_t)(rnd() >> 1);
	}
	pthread_mutex_unlock(&lock);
	c.segid = mangle_id(c.segid);
	mangled = mine && c.segid != o.id;
	if (chance(3))
		c.pad = 1;
	arg = arg_ptr(&c, &bad);
	if (bad) {
		allowed = ERRS(EFAULT);
		what = "bad pointer";
	} else if (c.pad) {
		allowed = ERRS(EINVAL);
		what = "pad";
	} else if (mine && !mangled && fdi == o.fdi) {
		/*
		 * Gone (ENOENT), or its descriptor now another file (EPERM),
		 * only after a game on the descriptor (checked below).
		 */
		allowed = ERRS(EAGAIN, ENOMEM, ENOENT, EPERM);
		what = "own segment";
	} else {
		allowed = ERRS(EINVAL, ENOENT, EPERM, EAGAIN, ENOMEM);
		what = "another's, stale or forged id";
	}
	ret = xioctl(OP_REMOVE, fd_of(fdi), XPMEM_CMD_REMOVE, arg, allowed, bad || c.pad, what);
	if (ret && (errno == ENOENT || errno == EPERM) && mine && !mangled && !bad && !c.pad &&
	    fdi == o.fdi && epoch_same(fdi, o.epoch)) {
		__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
		note_failure("remove of a live own segment: errno %d", errno);
	}
	count(OP_REMOVE, ret);
}

static void op_get(void)
{
	struct xpmem_cmd_get c = { .permit_type = XPMEM_PERMIT_MODE };
	struct board_seg s = { 0 };
	struct own_seg o = { 0 };
	bool own = false, bad, mangled = false, badargs = false, mode_ok = true;
	int ret, fdi = pick_fdi();
	unsigned int epoch = epoch_now(fdi);
	errset allowed;
	void *arg;

	pthread_mutex_lock(&lock);
	if (nown_segs && chance(25)) {
		o = own_segs[rnd_below(nown_segs)];
		own = o.mine;	/* a fork child's copy lists its parent's too */
		s = (struct board_seg){ .id = o.id, .vaddr = o.vaddr,
					.size = o.size == XPMEM_MAXADDR_SIZE ? 1ULL << 46 : o.size,
					.owner = me, .inc = my_inc, .weak = o.mine && in_child };
	}
	pthread_mutex_unlock(&lock);
	if (!s.id)
		board_seg_id(&s);
	c.segid = s.id;
	if (chance(15)) {
		c.segid = mangle_id(c.segid);
		mangled = c.segid != s.id;
	}
	c.flags = chance(50) ? XPMEM_RDWR : XPMEM_RDONLY;
	if (chance(3)) {
		c.flags = (uint32_t)rnd();
		badargs = c.flags != XPMEM_RDWR && c.flags != XPMEM_RDONLY;
	}
	if (chance(3)) {
		c.reserved[1] = 5;
		badargs = true;
	}
	/* as nobody, the owner class of the mode decides (root overrides it) */
	if (users && (me & 1)) {
		unsigned int need = c.flags == XPMEM_RDWR ? 0600 : 0400;

		mode_ok = (o.mode & need) == need;
	}
	arg = arg_ptr(&c, &bad);
	if (bad)
		allowed = ERRS(EFAULT);
	else if (badargs)
		allowed = ERRS(EINVAL);
	else if (own && !mangled && mode_ok)
		allowed = ERRS(TRANSIENT, ENOENT);	/* ENOENT: checked below */
	else
		allowed = ERRS(EINVAL, ENOENT, EACCES, EHOSTDOWN, TRANSIENT);
	ret = xioctl(OP_GET, fd_of(fdi), XPMEM_CMD_GET, arg, allowed, bad || badargs,
		     bad ? "bad pointer" : badargs ? "bad arguments" : own && !mangled ? "own segment" : "id");
	if (ret && errno == ENOENT && own && !mangled && !bad && !badargs && mode_ok) {
		bool listed = false;

		/* still ours and its descriptor untouched: it must exist */
		pthread_mutex_lock(&lock);
		for (int i = 0; i < nown_segs; i++)
			listed |= own_segs[i].id == o.id;
		pthread_mutex_unlock(&lock);
		if (listed && epoch_same(o.fdi, o.epoch)) {
			__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
			note_failure("get of a live own segment: ENOENT");
		}
	}
	count(OP_GET, ret);
	if (ret || bad || c.apid <= 0)
		return;
	board_put_apid(c.apid, &s);
	pthread_mutex_lock(&lock);
	if (nown_apids < 64)
		own_apids[nown_apids++] = (struct own_apid){ c.apid, s.vaddr, s.size, s.owner, s.inc,
							     c.flags == XPMEM_RDWR, s.weak != 0, true,
							     fdi, epoch };
	pthread_mutex_unlock(&lock);
}

static void op_release(void)
{
	struct xpmem_cmd_release c = { 0 };
	struct own_apid a = { 0 };
	bool own = false, bad, mangled;
	int fdi = pick_fdi(), ret;
	errset allowed;
	void *arg;

	pthread_mutex_lock(&lock);
	if (nown_apids && chance(70)) {
		int i = (int)rnd_below(nown_apids);

		a = own_apids[i];
		own_apids[i] = own_apids[--nown_apids];	/* ours alone from here */
		add_stale(a.id);
		c.apid = a.id;
		own = true;
		if (chance(80))
			fdi = a.fdi;
	} else if (nstale && chance(30)) {
		c.apid = stale_ids[rnd_below(nstale < 16 ? nstale : 16)];
	} else {
		/* another's permit: ours are ended only through our list */
		struct board_apid *b = &B->apids[rnd_below(BOARD_IDS)];

		c.apid = __atomic_load_n(&b->id, __ATOMIC_ACQUIRE);
		if ((b->holder == me && b->holder_inc == my_inc) ||
		    __atomic_load_n(&b->id, __ATOMIC_SEQ_CST) != c.apid)
			c.apid = (int64_t)(rnd() >> 1);
	}
	pthread_mutex_unlock(&lock);
	c.apid = mangle_id(c.apid);
	mangled = own && c.apid != a.id;
	arg = arg_ptr(&c, &bad);
	if (bad)
		allowed = ERRS(EFAULT);
	else if (own && !mangled && a.mine && fdi == a.fdi)
		allowed = ERRS(EAGAIN, ENOMEM, ENOENT, EPERM);	/* checked below */
	else
		allowed = ERRS(EINVAL, ENOENT, EPERM, EAGAIN, ENOMEM);
	ret = xioctl(OP_RELEASE, fd_of(fdi), XPMEM_CMD_RELEASE, arg, allowed, bad,
		     bad ? "bad pointer" : own && !mangled ? "own permit" : "id");
	if (ret && (errno == ENOENT || errno == EPERM) && own && !mangled && !bad && a.mine &&
	    fdi == a.fdi && epoch_same(fdi, a.epoch)) {
		__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
		note_failure("release of a live own permit: errno %d", errno);
	}
	count(OP_RELEASE, ret);
}

/* re-reserve slot memory as PROT_NONE (after a detach left a hole) */
static void slot_reserve(char *addr, size_t len)
{
	mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
	     -1, 0);
}

/* with the lock: publish slot @i to the board (a fork child has no board slots) */
static void publish_slot(int i)
{
	struct board_att *a = &B->w[me].att[i];

	if (in_child)
		return;
	__atomic_store_n(&a->addr, 0, __ATOMIC_RELEASE);
	__atomic_add_fetch(&a->gen, 1, __ATOMIC_SEQ_CST);
	if (slots[i].state != 2)
		return;
	a->len = slots[i].len;
	a->owner = slots[i].owner;
	a->inc = slots[i].inc;
	a->weak = slots[i].weak;
	a->src = slots[i].src;
	__atomic_store_n(&a->addr, (uint64_t)(uintptr_t)slots[i].addr, __ATOMIC_RELEASE);
}

/* the private copy of the slots' page maps (the board's, for the fork child too) */
static int16_t slot_map[NR_SLOTS][SLOT_PAGES];

static void set_map(int i)
{
	if (in_child)
		return;
	for (size_t k = 0; k < SLOT_PAGES; k++)
		B->w[me].att[i].map[k] = slot_map[i][k];
}

static void op_attach(void)
{
	struct xpmem_cmd_attach c = { 0 };
	struct own_apid ap = { 0 };
	bool bad, valid = true, own = false, placed;
	int i, ret, fdi = pick_fdi();
	errset allowed;
	char *want;
	void *arg;

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
		own = ap.mine;
	} else {
		struct board_apid *b = &B->apids[rnd_below(BOARD_IDS)];

		ap = (struct own_apid){ b->id, b->vaddr, b->size, b->owner, b->inc, true, b->weak != 0,
					false, 0, 0 };
	}
	slots[i].state = 1;
	pthread_mutex_unlock(&lock);

	want = slot_base + i * SLOT_SPAN;
	c.apid = ap.id;
	if (chance(10)) {
		c.apid = mangle_id(ap.id);
		own &= c.apid == ap.id;
	}
	c.size = (1 + rnd_below(SLOT_SPAN / PG)) * PG;
	if (ap.size > PG)
		c.offset = rnd_below(ap.size / PG) * PG;
	if (ap.size > c.offset && c.offset + c.size > ap.size && chance(80))
		c.size = ap.size - c.offset;	/* fits the segment (then clamped to the slot) */
	c.vaddr = chance(70) ? (uint64_t)(uintptr_t)want : 0;
	switch (rnd_below(30)) {
	case 0: c.size += 1 + rnd_below(PG - 1); break;	/* rounded up, as the established driver */
	case 1: c.offset += 8; valid = false; break;
	case 2: c.size = 0; valid = false; break;
	case 3: c.vaddr += 8; valid = false; break;
	case 4: c.flags = 2; valid = false; break;
	case 5: c.offset = -PG; valid = false; break;
	}
	if (c.size > SLOT_SPAN)
		c.size = SLOT_SPAN;
	/* the rounded range must lie in the segment */
	if (c.offset >= ap.size || ((c.size + PG - 1) & ~(PG - 1)) > ap.size - c.offset)
		valid = false;
	arg = arg_ptr(&c, &bad);
	if (bad)
		allowed = ERRS(EFAULT);
	else if (c.flags)
		allowed = ERRS(EINVAL);	/* checked before the permit is looked up */
	else if (!valid)
		allowed = ERRS(EINVAL, ENOENT, EPERM, TRANSIENT);
	else if (own && valid)
		/*
		 * Our own permit: ENOENT once its segment or owner is gone,
		 * EINVAL over our own whole-address-space export, EBUSY while
		 * either side's mm maps a copy of another mm's attachment
		 * kept through MADV_DOFORK (the driver's documented refusal:
		 * a registration there could deadlock).  Which mms map such
		 * copies at a given moment is not tracked here (fork children
		 * of any worker keep them, and the owner of a segment may be
		 * one), so EBUSY is allowed for every attach of our own
		 * permit; a debian-6.12-rt run met it outside the cases the
		 * fuzzer could name.
		 */
		allowed = ap.owner == me && ap.inc == my_inc && ap.size >= 1ULL << 46 && c.vaddr ?
			  ERRS(TRANSIENT, ENOENT, EINVAL, EBUSY) : ERRS(TRANSIENT, ENOENT, EBUSY);
	else
		allowed = ERRS(EINVAL, ENOENT, EPERM, EACCES, EBUSY, TRANSIENT);
	placed = !c.vaddr;
	if (placed)
		pthread_rwlock_wrlock(&area_lock);
	else
		pthread_rwlock_rdlock(&area_lock);	/* a failed fixed attach may leave a gap */
	ret = xioctl(OP_ATTACH, fd_of(fdi), XPMEM_CMD_ATTACH, arg, allowed, bad || !valid,
		     bad ? "bad pointer" : !valid ? "bad range or flags" : own ? "own permit" : "id");
	if (bad && !ret)
		ret = -1;	/* cannot happen (must fail above); never use c */
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
	if (ret)	/* the slot is ours alone: whatever is in it (a gap) reserved again */
		mmap(want, SLOT_SPAN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		     -1, 0);
	pthread_rwlock_unlock(&area_lock);
	pthread_mutex_lock(&lock);
	if (ret) {
		slots[i].state = 0;
	} else {
		size_t len = (c.size + PG - 1) & ~(PG - 1);

		__atomic_add_fetch(&B->attaches_ok, 1, __ATOMIC_RELAXED);
		slots[i] = (struct slot){ 2, want, len, ap.id, ap.owner, ap.inc, ap.writable, ap.weak,
					  ap.vaddr + c.offset, 0 };
		for (size_t k = 0; k < SLOT_PAGES; k++)
			slot_map[i][k] = k < len / PG ? (int16_t)k : -1;
		set_map(i);
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
 * A fork child holds its parent's slots the same way (its copy of an
 * attachment is the parent's as long as the parent's slot is unchanged).
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

/*
 * Page @k of held slot @i (owner, incarnation): its owner's page index,
 * -1 outside the owner's regions, -2 a hole.
 */
static int slot_page(int w, int i, size_t k, int owner, int inc, uint64_t src)
{
	int16_t m = B->w[w].att[i].map[k];

	if (in_child && w == me)
		m = slot_map[i][k];	/* our own copy of the slot, as it was at the fork */
	if (m < 0)
		return -2;
	return owner_page(owner, inc, src + (uint64_t)m * PAGE);
}

/* take the slot from the board for a change of its mapping: false if held */
static bool claim_slot(int i)
{
	pthread_mutex_lock(&lock);
	if (slots[i].state != 2) {
		pthread_mutex_unlock(&lock);
		return false;
	}
	slots[i].state = 1;
	publish_slot(i);	/* gen moves on: no new holds */
	if (!in_child && __atomic_load_n(&B->w[me].att[i].users[my_inc & 1], __ATOMIC_SEQ_CST) > 0) {
		/* in use by an operation that reads or writes through it */
		slots[i].state = 2;
		publish_slot(i);
		pthread_mutex_unlock(&lock);
		return false;
	}
	pthread_mutex_unlock(&lock);
	return true;
}

static void op_detach(void)
{
	struct xpmem_cmd_detach c = { 0 };
	struct slot s;
	int i = pick_slot(&s), ret;
	size_t k;
	bool bad;
	void *arg;

	if (i < 0) {
		c.vaddr = chance(50) ? (uint64_t)(uintptr_t)regions[0].base : rnd();
		arg = arg_ptr(&c, &bad);
		ret = xioctl(OP_DETACH, xfd, XPMEM_CMD_DETACH, arg, bad ? ERRS(EFAULT) : ERRS(EINVAL),
			     true, bad ? "bad pointer" : "not an attachment");
		count(OP_DETACH, ret);
		return;
	}
	if (!claim_slot(i))
		return;
	/* an address inside a piece of the attachment that is still there */
	k = rnd_below(s.len / PG);
	for (size_t n = 0; n < SLOT_PAGES && slot_map[i][k] < 0; n++)
		k = (k + 1) % SLOT_PAGES;
	c.vaddr = (uint64_t)(uintptr_t)s.addr + k * PG + rnd_below(PG);
	pthread_rwlock_rdlock(&area_lock);
	if (slot_map[i][k] < 0) {
		count(OP_DETACH, 0);	/* nothing of it is left (moved over) */
	} else if (chance(70)) {
		/* a fork child maps no copy unless MADV_DOFORK asked for one */
		ret = ioctl(pick_fdi() ? xfd2 : xfd, XPMEM_CMD_DETACH, &c);
		if (ret && !in_child) {
			/* what is mapped there (no stdio: it would map an arena) */
			char buf[4096], line[160], what[160] = "no mapping";
			int e = errno, fd = open("/proc/self/maps", O_RDONLY), len = 0;
			ssize_t got;

			while (fd >= 0 && (got = read(fd, buf, sizeof(buf))) > 0) {
				for (ssize_t b = 0; b < got; b++) {
					unsigned long lo, hi;

					if (buf[b] != '\n') {
						if (len < (int)sizeof(line) - 1)
							line[len++] = buf[b];
						continue;
					}
					line[len] = 0;
					len = 0;
					if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= c.vaddr && c.vaddr < hi)
						memcpy(what, line, sizeof(what));
				}
			}
			if (fd >= 0)
				close(fd);
			if (e == EINVAL && !strcmp(what, "no mapping")) {
				/*
				 * Nothing is mapped there any more: the kernel's
				 * answer is right for what the address space
				 * holds; an operation of another thread took the
				 * piece without the slot map knowing (counted, and
				 * printed at the end, not a driver failure)
				 */
				__atomic_add_fetch(&B->detach_gone, 1, __ATOMIC_RELAXED);
				ret = 0;
			} else {
				__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
				note_failure("detach of slot %d page %zu (map %d, len %zu, owner %d): errno %d; maps: %s",
					     i, k, slot_map[i][k], s.len / PG, s.owner, e, what);
			}
		}
		count(OP_DETACH, ret);
	} else {
		count(OP_DETACH, 0);	/* by unmapping it, as a program's munmap would */
	}
	/* whatever is left of the slot (a split piece, or a hole) is reserved again */
	mmap(s.addr, SLOT_SPAN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
	     -1, 0);
	pthread_rwlock_unlock(&area_lock);
	pthread_mutex_lock(&lock);
	slots[i].state = 0;
	pthread_mutex_unlock(&lock);
}

/* pages [@first, + @n) of ours changed: readers of attachments look there first */
static void note_recent(int first, int n)
{
	uint32_t i;

	if (in_child || n <= 0)
		return;
	i = __atomic_fetch_add(&B->w[me].recent_next, 1, __ATOMIC_RELAXED) % NR_RECENT;
	B->w[me].recent[i].n = 0;
	B->w[me].recent[i].first = first;
	__atomic_store_n(&B->w[me].recent[i].n, n, __ATOMIC_RELEASE);
}

static void op_access(void)
{
	struct slot s;
	struct snap sn;
	size_t words, off, k;
	volatile uint64_t *p;
	uint64_t buf[64];
	int i = pick_held_slot(&s), page;

	if (i < 0)
		return;
	k = rnd_below(s.len / PG);
	page = slot_page(me, i, k, s.owner, s.inc, s.src);
	if (page == -2) {
		unhold_att(me, my_inc, i);
		return;
	}
	p = (volatile uint64_t *)(s.addr + k * PG);
	count(OP_ACCESS, 0);
	if (s.writable && !s.weak && page >= 0 && !reads_only && chance(40)) {
		/* a whole page, under the page's lock, with a new generation */
		struct pstate *ps = page_lock(s.owner, s.inc, page);

		if (ps) {
			uint32_t g = page_begin(ps, PLAIN);

			page_end(ps, g, write_page(p, s.owner, s.inc, page, g, OP_ACCESS));
			__atomic_add_fetch(&B->att_pages_written, 1, __ATOMIC_RELAXED);
		} else {
			count_busy(OP_ACCESS);
		}
	} else if (!s.weak && chance(40)) {
		/* pages the owner changed lately: where a PTE the driver did not zap shows */
		struct worker_info *ow = &B->w[s.owner];
		int par = s.inc & 1, done = 0;

		for (int tries = 0; tries < 16 && done < 64; tries++) {
			int j = (int)rnd_below(NR_RECENT), n, first;

			n = __atomic_load_n(&ow->recent[j].n, __ATOMIC_ACQUIRE);
			first = ow->recent[j].first;
			for (int q = first; q < first + n && done < 64 && first >= 0 && q < (int)NPAGES; q++) {
				uint64_t a = ow->where[par].base[q / REGION_PAGES] + (q % REGION_PAGES) * PAGE;

				if (ow->where[par].inc != s.inc || a < s.src || (a - s.src) / PAGE >= s.len / PG)
					continue;
				k = (a - s.src) / PAGE;
				if (slot_page(me, i, k, s.owner, s.inc, s.src) != q ||
				    (in_child ? slot_map[i][k] : B->w[me].att[i].map[k]) != (int16_t)k)
					continue;	/* moved within the slot: not this page */
				off = rnd_below(PAGE_WORDS - 1);
				snap_begin(&sn, s.owner, s.inc, q, false);
				if (!read_words((volatile uint64_t *)(s.addr + k * PG) + off, buf, 2, OP_ACCESS)) {
					tries = 16;
					break;
				}
				check_read(buf, 2, &sn, "attachment", true);
				done++;
			}
		}
	} else if (chance(50)) {
		/* a few words of one page */
		off = rnd_below(PAGE_WORDS);
		words = 1 + rnd_below(64);
		if (off + words > PAGE_WORDS)
			words = PAGE_WORDS - off;
		snap_begin(&sn, s.owner, s.inc, page, s.weak);
		if (read_words(p + off, buf, words, OP_ACCESS))
			check_read(buf, words, &sn, "attachment", true);
	} else {
		/* a word or two of each of up to 32 pages: a stale one is rare */
		for (int n = 0; n < 32; n++) {
			k = rnd_below(s.len / PG);
			page = slot_page(me, i, k, s.owner, s.inc, s.src);
			if (page == -2)
				continue;
			off = rnd_below(PAGE_WORDS - 1);
			snap_begin(&sn, s.owner, s.inc, page, s.weak);
			if (!read_words((volatile uint64_t *)(s.addr + k * PG) + off, buf, 2, OP_ACCESS))
				break;
			check_read(buf, 2, &sn, "attachment", true);
		}
	}
	unhold_att(me, my_inc, i);
}

static void op_own_access(void)
{
	int r = (int)rnd_below(NR_REGIONS), k = (int)rnd_below(REGION_PAGES);
	int page = r * (int)REGION_PAGES + k;
	volatile uint64_t *p = (volatile uint64_t *)(regions[r].base + k * PAGE);
	uint64_t buf[64];
	size_t words = 1 + rnd_below(64), off = rnd_below(PAGE_WORDS);
	struct snap sn;

	count(OP_OWN_ACCESS, 0);
	if (!in_child && chance(50)) {
		/* a run of whole pages, each under its lock, with a new generation */
		int n = 1 + (int)rnd_below(16);

		for (int j = 0; j < n && k + j < (int)REGION_PAGES; j++) {
			struct pstate *ps = page_lock(me, my_inc, page + j);
			uint32_t g;

			if (!ps) {
				count_busy(OP_OWN_ACCESS);
				continue;
			}
			g = page_begin(ps, PLAIN);
			page_end(ps, g, write_page(p + j * PAGE_WORDS, me, my_inc, page + j, g,
						   OP_OWN_ACCESS));
		}
		note_recent(page, n);
		return;
	}
	if (off + words > PAGE_WORDS)
		words = PAGE_WORDS - off;
	/* a fork child's private regions are a snapshot: no generations there */
	snap_begin(&sn, me, my_inc, page, in_child);
	if (read_words(p + off, buf, words, OP_OWN_ACCESS))
		check_read(buf, words, &sn, "own memory", false);
}

static void op_bad_ioctl(void)
{
	static const unsigned long cmds[] = {
		XPMEM_CMD_VERSION, XPMEM_CMD_MAKE, XPMEM_CMD_REMOVE, XPMEM_CMD_GET,
		XPMEM_CMD_RELEASE, XPMEM_CMD_ATTACH, XPMEM_CMD_DETACH,
	};
	/*
	 * An argument in the fuzzer's own memory (maybe PROT_NONE, read-only
	 * or an attachment) only for the commands that never write back:
	 * what an _IOWR command writes there would not be a tag.
	 */
	static const unsigned long in_only[] = {
		XPMEM_CMD_REMOVE, XPMEM_CMD_RELEASE, XPMEM_CMD_DETACH,
	};
	uint64_t garbage[12];
	unsigned long cmd = cmds[rnd_below(7)];
	void *arg = garbage;
	errset allowed = ERRS(EFAULT, EINVAL, ENOENT, EPERM, EACCES, EBUSY, EHOSTDOWN, TRANSIENT);
	int r;

	for (int i = 0; i < 12; i++)
		garbage[i] = chance(50) ? rnd() : rnd_below(4);
	switch (rnd_below(6)) {
	case 0:		/* a command number the driver does not have */
		cmd = _IOWR(XPMEM_IOC_MAGIC, 7 + rnd_below(50), struct xpmem_cmd_make);
		allowed = ERRS(ENOTTY);
		break;
	case 1:		/* anything: the VFS's own commands included */
		cmd = rnd();
		allowed = ERRS(ENOTTY, EINVAL, EFAULT, EPERM, EOPNOTSUPP, EBADF);
		break;
	case 2:
		cmd = in_only[rnd_below(3)];
		arg = regions[1].base;
		break;
	case 3:
		cmd = in_only[rnd_below(3)];
		arg = (char *)slot_base + rnd_below(NR_SLOTS) * SLOT_SPAN;
		break;
	}
	r = ioctl(fd_of(pick_fdi()), cmd, arg);
	if (r < 0 && !errno_in(errno, allowed)) {
		__atomic_add_fetch(&B->bad_errno, 1, __ATOMIC_RELAXED);
		note_failure("bad_ioctl %#lx: errno %d (%s)", cmd, errno, strerror(errno));
	}
	count(OP_BAD_IOCTL, r < 0);
}

static void op_fd(void)
{
	int fdi = chance(85), fd = fd_of(fdi), d, n;

	switch (rnd_below(4)) {
	case 0:
	case 1:		/* ->flush of the same file while others use it */
		game_begin(fdi);
		d = dup(fd);
		if (d >= 0)
			close(d);
		game_end(fdi);
		count(OP_FD, d < 0);
		break;
	case 2:		/* replace the file behind the descriptor */
		game_begin(fdi);
		n = open(XPMEM_DEV_PATH, O_RDWR);
		if (n >= 0) {
			dup2(n, fd);
			close(n);
		}
		game_end(fdi);
		count(OP_FD, n < 0);
		break;
	case 3:		/* a second file, some calls through it, closed */
		n = open(XPMEM_DEV_PATH, O_RDWR);
		if (n >= 0) {
			struct xpmem_cmd_version v = { 0 };

			xioctl(OP_FD, n, XPMEM_CMD_VERSION, &v, ERRS(0), false, "version");
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

static int region_index(struct region *r)
{
	return (int)(r - regions);
}

/* own page index of address @p in region @r */
static int own_index(struct region *r, const char *p)
{
	return region_index(r) * (int)REGION_PAGES + (int)((p - r->base) / PAGE);
}

static char *own_addr(int page)
{
	return regions[page / REGION_PAGES].base + (page % REGION_PAGES) * PAGE;
}

/*
 * A change of own pages that may leave zeros or their older words in
 * them (WILD), or from index @moved on another page's words (MOVED): the
 * pages @idx (@n of them) locked (all or none: false, counted busy for
 * @op).  A fork child changes only its own copy: nothing to lock.
 */
struct own_change {
	int n, moved;
	int idx[2 * REGION_PAGES];
	struct pstate *ps[2 * REGION_PAGES];
	uint32_t g[2 * REGION_PAGES];
};

static bool own_change_begin(struct own_change *c, enum op op)
{
	if (in_child) {
		c->n = 0;
		return true;
	}
	for (int j = 0; j < c->n; j++) {
		c->ps[j] = page_lock(me, my_inc, c->idx[j]);
		if (!c->ps[j]) {
			while (j--)
				page_unlock(c->ps[j]);
			count_busy(op);
			return false;
		}
	}
	for (int j = 0; j < c->n; j++)
		c->g[j] = page_begin(c->ps[j], j >= c->moved ? MOVED : WILD);
	return true;
}

/* rewrite every page of the change that can be written, and unlock */
static void own_change_end(struct own_change *c, enum op op)
{
	for (int j = 0, run = 0; j < c->n; j++) {
		if (j + 1 == c->n || c->idx[j + 1] != c->idx[j] + 1) {
			note_recent(c->idx[run], j + 1 - run);
			run = j + 1;
		}
	}
	for (int j = 0; j < c->n; j++) {
		bool done = write_page((volatile uint64_t *)own_addr(c->idx[j]), me, my_inc, c->idx[j],
				       c->g[j], op);

		page_end(c->ps[j], c->g[j], done);
	}
}

static void own_change_range(struct own_change *c, int first, int n)
{
	c->n = 0;
	c->moved = 2 * REGION_PAGES;
	for (int j = 0; j < n; j++)
		c->idx[c->n++] = first + j;
}

static void op_remap(void)
{
	struct region *r;
	size_t pages;
	char *p = region_page(&r, &pages);
	struct own_change ch;
	void *m;

	own_change_range(&ch, own_index(r, p), (int)pages);
	if (!own_change_begin(&ch, OP_REMAP))
		return;
	if (r->memfd >= 0)
		m = mmap(p, pages * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r->memfd,
			 p - r->base);
	else
		m = mmap(p, pages * PG, PROT_READ | PROT_WRITE,
			 (r == &regions[3] ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	own_change_end(&ch, OP_REMAP);
	count(OP_REMAP, m == MAP_FAILED);
}

static void op_unmap(void)
{
	struct region *r;
	size_t pages;
	char *p = region_page(&r, &pages);
	struct own_change ch;
	void *m;

	own_change_range(&ch, own_index(r, p), (int)pages);
	if (!own_change_begin(&ch, OP_UNMAP))
		return;
	m = mmap(p, pages * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	own_change_end(&ch, OP_UNMAP);	/* PROT_NONE now: the rewrite faults */
	count(OP_UNMAP, m == MAP_FAILED);
}

/*
 * Move pages @a.. (@len bytes) of held-by-claim slot @i to @b..: the
 * slot's page map follows (what was left behind is a hole).
 */
static void slot_move(int i, size_t a, size_t b, size_t npages)
{
	int16_t old[SLOT_PAGES];

	memcpy(old, slot_map[i], sizeof(old));
	for (size_t k = 0; k < npages; k++)
		slot_map[i][a + k] = -1;
	for (size_t k = 0; k < npages; k++)
		slot_map[i][b + k] = old[a + k];
	if (b + npages > slots[i].len / PG)
		slots[i].len = (b + npages) * PG;
	set_map(i);
}

static void op_mremap(void)
{
	struct region *r;
	size_t pages, len;
	char *p = region_page(&r, &pages), *to;
	struct own_change ch;
	struct slot s;
	void *m;
	int i;

	if (chance(50) && !reads_only && (i = pick_slot(&s)) >= 0) {
		/* move part of an attachment within its slot (no holder meanwhile) */
		size_t a, b = rnd_below(SLOT_SPAN / PG);

		if (!claim_slot(i))
			return;
		s = slots[i];	/* as it is now, not as it was picked */
		a = rnd_below(s.len / PG);
		len = (1 + rnd_below((s.len / PG) - a)) * PG;
		if (b * PG + len > SLOT_SPAN)
			b = (SLOT_SPAN - len) / PG;
		pthread_rwlock_rdlock(&area_lock);
		m = mremap(s.addr + a * PG, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, s.addr + b * PG);
		count(OP_MREMAP, m == MAP_FAILED);
		if (m != MAP_FAILED) {
			/*
			 * What it left is reserved again at once: a hole in the
			 * slot area could take an attachment the kernel places
			 * for another slot, whose detach (if its move fails)
			 * would then hit ours.
			 */
			size_t lo = a, hi = a + len / PG;

			if (b > a && b < hi)
				hi = b;
			else if (b <= a && b + len / PG > a)
				lo = b + len / PG;
			if (lo < hi)
				slot_reserve(s.addr + lo * PG, (hi - lo) * PG);
		}
		pthread_rwlock_unlock(&area_lock);
		pthread_mutex_lock(&lock);
		if (m != MAP_FAILED)
			slot_move(i, a, b, len / PG);
		slots[i].state = 2;
		publish_slot(i);
		pthread_mutex_unlock(&lock);
		return;
	}
	/*
	 * Move pages of a region to another place in the same region (not
	 * the memfd region: its pages stay at their file offsets, so that a
	 * truncate changes the pages it locked).
	 */
	if (r == &regions[2]) {
		r = &regions[3];
		p = r->base + (p - regions[2].base);
	}
	len = pages * PG;
	to = r->base + rnd_below(REGION_SPAN / PG - pages + 1) * PG;
	/* the pages left behind (then unmapped), and those moved onto */
	ch.n = 0;
	for (size_t k = 0; k < pages; k++) {
		char *q = p + k * PG;

		if (q < to || q >= to + len)
			ch.idx[ch.n++] = own_index(r, q);
	}
	ch.moved = ch.n;
	for (size_t k = 0; k < pages; k++)
		ch.idx[ch.n++] = own_index(r, to + k * PG);
	if (!own_change_begin(&ch, OP_MREMAP))
		return;
	m = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (m != MAP_FAILED && to != p) {
		/* keep the source range reserved: only the region is ours */
		for (size_t k = 0; k < pages; k++) {
			char *q = p + k * PG;

			if (q < to || q >= to + len)
				mmap(q, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				     MAP_FIXED_NOREPLACE, -1, 0);
		}
	}
	own_change_end(&ch, OP_MREMAP);
	count(OP_MREMAP, m == MAP_FAILED);
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

	if (!reads_only && chance(40) && pick_slot(&s) >= 0) {
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
	struct own_change ch = { .n = 0, .moved = 2 * REGION_PAGES };
	struct slot s;
	int a = advice[rnd_below(sizeof(advice) / sizeof(advice[0]))], ret;
	bool own = true;

	if (!reads_only && chance(40) && pick_slot(&s) >= 0) {
		size_t first = rnd_below(s.len / PG);

		p = s.addr + first * PG;
		pages = 1 + rnd_below(s.len / PG - first);
		own = false;
	}
	if (a == MADV_HUGEPAGE || a == MADV_COLLAPSE) {
		p = r->base;
		pages = REGION_SPAN / PG;
		own = true;
	}
	/* the advice that drops the contents of our own pages */
	if (own && (a == MADV_DONTNEED || a == MADV_FREE || a == MADV_REMOVE)) {
		if (in_child && a == MADV_REMOVE)
			return;		/* would punch the parent's shared pages */
		own_change_range(&ch, own_index(r, p), (int)pages);
		if (!own_change_begin(&ch, OP_MADVISE))
			return;
	}
	ret = madvise(p, pages * PG, a);
	own_change_end(&ch, OP_MADVISE);
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

	if (!reads_only && chance(40) && pick_slot(&s) >= 0) {
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
	int w = (int)rnd_below(nprocs), i = (int)rnd_below(NR_SLOTS), fd, page;
	struct board_att *a = &B->w[w].att[i];
	int winc = B->w[w].inc;
	pid_t pid = B->w[w].pid;
	uint64_t gen = __atomic_load_n(&a->gen, __ATOMIC_SEQ_CST);
	uint64_t addr = __atomic_load_n(&a->addr, __ATOMIC_ACQUIRE), len = a->len, src = a->src;
	int owner = a->owner, inc = a->inc, weak = a->weak;
	uint64_t buf[PAGE_WORDS];
	char path[64];
	struct snap sn;
	size_t k;
	ssize_t n;

	if (!addr || !pid || !hold_att(w, winc, i, gen))
		return;
	k = rnd_below(len / PAGE);
	/* the worker's own mapping (also from its fork child): the board's map */
	page = B->w[w].att[i].map[k] < 0 ? -2 :
	       owner_page(owner, inc, src + (uint64_t)B->w[w].att[i].map[k] * PAGE);
	if (page == -2) {
		unhold_att(w, winc, i);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		unhold_att(w, winc, i);
		count(OP_PROCMEM, 1);
		return;
	}
	addr += k * PAGE;
	if (!weak && page >= 0 && chance(30)) {
		/* a whole page of the owner's, under the page's lock */
		struct pstate *ps = page_lock(owner, inc, page);

		n = 0;
		if (ps) {
			uint32_t g = page_begin(ps, PLAIN);

			for (size_t j = 0; j < PAGE_WORDS; j++)
				buf[j] = tag(owner, inc, page, g);
			n = pwrite(fd, buf, PAGE, (off_t)addr);
			page_end(ps, g, n == (ssize_t)PAGE);
			__atomic_add_fetch(&B->att_pages_written, 1, __ATOMIC_RELAXED);
		} else {
			count_busy(OP_PROCMEM);
		}
	} else {
		size_t off = rnd_below(PAGE_WORDS - 32) * 8;

		snap_begin(&sn, owner, inc, page, weak);
		n = pread(fd, buf, 32 * 8, (off_t)(addr + off));
		if (n > 0)
			check_read(buf, (size_t)n / 8, &sn, "/proc/PID/mem", true);
	}
	unhold_att(w, winc, i);
	count(OP_PROCMEM, n < 0);
	close(fd);
}

static void op_vmsplice(void)
{
	struct slot s;
	struct snap sn;
	int pfd[2], page;
	uint64_t buf[PAGE_WORDS];
	struct iovec iov;
	ssize_t n = -1, got;
	size_t k;
	int i = pick_held_slot(&s);

	if (i < 0)
		return;
	k = rnd_below(s.len / PG);
	page = slot_page(me, i, k, s.owner, s.inc, s.src);
	if (page == -2 || pipe(pfd)) {
		unhold_att(me, my_inc, i);
		return;
	}
	iov.iov_base = s.addr + k * PG;
	iov.iov_len = PG;
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	snap_begin(&sn, s.owner, s.inc, page, s.weak);
	n = vmsplice(pfd[1], &iov, 1, SPLICE_F_NONBLOCK);
	if (n > 0) {
		got = read(pfd[0], buf, sizeof(buf) < (size_t)n ? sizeof(buf) : (size_t)n);
		if (got > 0)
			check_read(buf, (size_t)got / 8, &sn, "vmsplice", true);
	}
	unhold_att(me, my_inc, i);
	count(OP_VMSPLICE, n < 0);
	close(pfd[0]);
	close(pfd[1]);
}

static void op_odirect(void)
{
	struct slot s;
	struct snap sn;
	off_t blk;
	ssize_t n = -1;
	size_t k;
	int i, page;

	if (scratch_fd < 0)
		return;
	dio_buf = dio_bufs + thread_no * PG;
	i = pick_held_slot(&s);
	if (i < 0)
		return;
	k = rnd_below(s.len / PG);
	page = slot_page(me, i, k, s.owner, s.inc, s.src);
	if (page == -2) {
		unhold_att(me, my_inc, i);
		return;
	}
	/* blocks of this thread only: another's could hold another owner's words */
	blk = (off_t)(((me * MAX_THREADS + thread_no) * 16 + rnd_below(16)) * PG);
	if (s.writable && !s.weak && page >= 0 && chance(50)) {
		/* into the attachment: first a block of the page's next generation */
		struct pstate *ps = page_lock(s.owner, s.inc, page);

		if (ps) {
			uint32_t g = page_begin(ps, PLAIN);

			for (size_t j = 0; j < PAGE_WORDS; j++)
				((uint64_t *)dio_buf)[j] = tag(s.owner, s.inc, page, g);
			n = pwrite(scratch_fd, dio_buf, PG, blk);
			if (n == (ssize_t)PG)
				n = pread(scratch_fd, s.addr + k * PG, PG, blk);
			page_end(ps, g, n == (ssize_t)PG);
			__atomic_add_fetch(&B->att_pages_written, 1, __ATOMIC_RELAXED);
		} else {
			n = 0;
			count_busy(OP_ODIRECT);
		}
	} else {
		/* out of the attachment, then check what reached the disk */
		snap_begin(&sn, s.owner, s.inc, page, s.weak);
		n = pwrite(scratch_fd, s.addr + k * PG, PG, blk);
		if (n == (ssize_t)PG && pread(scratch_fd, dio_buf, PG, blk) == (ssize_t)PG)
			check_read((uint64_t *)dio_buf, PG / 8, &sn, "O_DIRECT", true);
	}
	unhold_att(me, my_inc, i);
	count(OP_ODIRECT, n < 0);
}

/* the memfd's size in pages, as this worker's truncates left it (under trunc_lock) */
static pthread_mutex_t trunc_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t memfd_pages = REGION_PAGES;

static void op_truncate(void)
{
	struct region *r = &regions[2];
	struct own_change ch;
	size_t first, npages;
	bool resize = chance(50);
	int ret;

	if (in_child)
		return;		/* the parent's file: its pages are the parent's */
	pthread_mutex_lock(&trunc_lock);
	if (resize) {
		size_t to = rnd_below(REGION_PAGES + 1);

		/*
		 * Everything from the lower of the two sizes may change, and
		 * the size back to the whole region (below) changes nothing
		 * lower.
		 */
		first = to < memfd_pages ? to : memfd_pages;
		own_change_range(&ch, 2 * (int)REGION_PAGES + (int)first, (int)(REGION_PAGES - first));
		if (!own_change_begin(&ch, OP_TRUNCATE)) {
			pthread_mutex_unlock(&trunc_lock);
			return;
		}
		ret = ftruncate(r->memfd, (off_t)(to * PG));
		if (!ret)
			memfd_pages = to;
		if (chance(60) && !ftruncate(r->memfd, REGION_SPAN))
			memfd_pages = REGION_PAGES;
	} else {
		first = rnd_below(REGION_PAGES);
		npages = 1 + rnd_below(16);
		if (first + npages > REGION_PAGES)
			npages = REGION_PAGES - first;
		own_change_range(&ch, 2 * (int)REGION_PAGES + (int)first, (int)npages);
		if (!own_change_begin(&ch, OP_TRUNCATE)) {
			pthread_mutex_unlock(&trunc_lock);
			return;
		}
		ret = fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(first * PG), (off_t)(PG * npages));
	}
	own_change_end(&ch, OP_TRUNCATE);
	pthread_mutex_unlock(&trunc_lock);
	count(OP_TRUNCATE, ret);
}

static void random_op(void);

/* the kinds that do nothing without a live attachment of the worker's to use */
static bool needs_att(int op)
{
	return op == OP_ACCESS || op == OP_PROCMEM || op == OP_VMSPLICE || op == OP_ODIRECT;
}

static void op_fork(void)
{
	uint32_t child_token = my_token | 0x80000000u;
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		/*
		 * The child: a few operations as a new thread group, then out.
		 * Only this thread was copied: a lock another thread held at
		 * the fork stays held in the copy, so start from a fresh one.
		 * It dies with its parent (whose death breaks its page locks).
		 */
		int n = (int)rnd_below(20);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		in_child = 1;
		my_token = child_token;
		pthread_mutex_init(&lock, NULL);
		pthread_mutex_init(&trunc_lock, NULL);
		pthread_rwlock_init(&area_lock, NULL);
		for (int i = 0; i < nown_segs; i++)
			own_segs[i].mine = false;
		for (int i = 0; i < nown_apids; i++)
			own_apids[i].mine = false;
		rng ^= (uint64_t)getpid() << 17;
		for (int i = 0; i < n; i++)
			random_op();
		_exit(0);
	}
	count(OP_FORK, pid < 0);
	if (pid < 0)
		return;
	__atomic_add_fetch(&B->forks_ok, 1, __ATOMIC_RELAXED);
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
	break_locks(~0u, child_token);	/* a killed child's */
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
	__atomic_add_fetch(&B->picks[op], 1, __ATOMIC_RELAXED);
	cur_op = op;
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

static uint32_t token_of(int slot, int inc, int thread)
{
	return (uint32_t)(thread & 0x7fff) << 16 | (uint32_t)(slot + 1) << 8 | (uint32_t)(inc & 0xff);
}

static void *worker_thread(void *arg)
{
	uintptr_t t = (uintptr_t)arg;

	thread_no = (int)t;
	my_token = token_of(me, my_inc, thread_no);
	rng = seed_for(me, my_inc, (int)t);
	pthread_barrier_wait(&threads_started);	/* every stack is mapped */
	while (!B->stop)
		random_op();
	return NULL;
}

/*
 * This incarnation's entries: each page locked (a writer of the one
 * before the last may still hold it for a moment; a dead one's lock was
 * broken when it was reaped), claimed for this incarnation and written.
 */
static void claim_pages(void)
{
	for (int page = 0; page < (int)NPAGES; page++) {
		struct pstate *p = pst(me, my_inc, page);
		uint32_t g;

		for (int tries = 0; !page_trylock(p); tries++) {
			if (tries > 20000) {	/* 2 s and more: take it */
				__atomic_store_n(&p->lock, my_token, __ATOMIC_SEQ_CST);
				break;
			}
			usleep(100);
		}
		g = page_begin(p, MOVED);
		__atomic_store_n(&p->inc, (uint32_t)my_inc, __ATOMIC_SEQ_CST);
		page_end(p, g, write_page((volatile uint64_t *)own_addr(page), me, my_inc, page, g,
					  OP_OWN_ACCESS));
	}
}

static void worker_setup(void)
{
	struct sigaction sa = { .sa_sigaction = fault_handler, .sa_flags = SA_SIGINFO | SA_NODEFER };
	int par = my_inc & 1;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	__atomic_store_n(&B->w[me].where[par].inc, 0, __ATOMIC_SEQ_CST);
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
		B->w[me].where[par].base[i] = (uint64_t)(uintptr_t)r->base;
	}
	claim_pages();
	__atomic_store_n(&B->w[me].where[par].inc, my_inc, __ATOMIC_SEQ_CST);
	slot_base = mmap(NULL, NR_SLOTS * SLOT_SPAN, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	dio_bufs = mmap(NULL, MAX_THREADS * PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (slot_base == MAP_FAILED || dio_bufs == MAP_FAILED)
		exit(3);
	if (scratch)
		scratch_fd = open(scratch, O_RDWR | O_DIRECT);
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
	thread_no = 0;
	my_token = token_of(me, my_inc, 0);
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

static double last_tchange[MAX_PROCS][MAX_THREADS];
static uint64_t last_tprogress[MAX_PROCS][MAX_THREADS];
static double longest_quiet;	/* the longest a thread went without an operation */

static pid_t spawn(int slot)
{
	int inc = ++B->w[slot].inc;
	pid_t pid;

	memset((void *)B->w[slot].att, 0, sizeof(B->w[slot].att));
	pid = fork();
	if (pid == 0)
		_exit(worker_main(slot, inc));
	B->w[slot].pid = pid;
	for (int t = 0; t < nthreads; t++) {
		last_tprogress[slot][t] = B->w[slot].tprogress[t];
		last_tchange[slot][t] = now();
	}
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

/* worker @w of incarnation @inc is gone: so are the page locks of it and its children */
static void reaped(int w, int inc)
{
	break_locks(0xffff, (uint32_t)(w + 1) << 8 | (uint32_t)(inc & 0xff));
}

static void dump_stacks(pid_t pid)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd),
		 "for t in /proc/%d/task/*; do echo \"# $t: $(cat $t/wchan)\"; sed 's/^/#   /' $t/stack; done",
		 pid);
	if (system(cmd))
		return;
}

/*
 * Every thread of every worker must have finished an operation within
 * HANG_SECS (scaled): a thread stuck in the kernel is a hang, also when
 * the kill that comes next would end it.  The number of hangs found.
 */
static int check_threads(void)
{
	double t = now(), limit = HANG_SECS * xpmem_time_scale();
	int hangs = 0;

	for (int w = 0; w < nprocs; w++) {
		for (int th = 0; th < nthreads; th++) {
			uint64_t p = B->w[w].tprogress[th];
			double quiet = t - last_tchange[w][th];

			if (p != last_tprogress[w][th]) {
				last_tprogress[w][th] = p;
				last_tchange[w][th] = t;
				continue;
			}
			if (quiet > longest_quiet)
				longest_quiet = quiet;
			if (quiet > limit) {
				note_failure("thread %d of worker %d (pid %d) finished no operation for %.0f s",
					     th, w, B->w[w].pid, quiet);
				dump_stacks(B->w[w].pid);
				hangs++;
				last_tchange[w][th] = t;
			}
		}
	}
	return hangs;
}

static void usage(void)
{
	fprintf(stderr, "usage: xpmem_fuzz [--seed N] [--duration SEC] [--procs P] [--threads T] "
			"[--min-ops N] [--scratch DEV] [--users] [--skip OP,OP...] [--reads-only] "
			"[--stop-on-data-failure]\n");
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

/* the minimum work of a run of @secs: @rate per second, divided by the time scale */
static uint64_t need(double rate, double secs)
{
	return (uint64_t)(rate * secs / xpmem_time_scale());
}

struct minimum {
	const char *what;
	uint64_t have, want;
};

int main(int argc, char **argv)
{
	double start, end, limit, last_report;
	uint64_t total = 0, kills = 0, mreleases = 0, reported = 0;
	struct minimum mins[7];
	int failures = 0, st, nmins;

	PG = (size_t)sysconf(_SC_PAGESIZE);
	if (PG != PAGE) {
		fprintf(stderr, "xpmem_fuzz: needs 4 KiB pages\n");
		return 2;
	}
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
		else if (!strcmp(argv[i], "--reads-only"))
			reads_only = 1;
		else if (!strcmp(argv[i], "--stop-on-data-failure"))
			stop_on_data = 1;
		else
			usage();
	}
	if (nprocs < 1 || nprocs > MAX_PROCS || nthreads < 1 || nthreads > MAX_THREADS)
		usage();
	if (reads_only) {
		/* what they read is read by loads instead */
		op_weight[OP_ACCESS] += op_weight[OP_PROCMEM] + op_weight[OP_VMSPLICE] +
					op_weight[OP_ODIRECT];
		op_weight[OP_PROCMEM] = op_weight[OP_VMSPLICE] = op_weight[OP_ODIRECT] = 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# xpmem_fuzz --seed %#" PRIx64 " --duration %u --procs %d --threads %d%s%s%s%s%s",
	       seed, duration, nprocs, nthreads, scratch ? " --scratch " : "",
	       scratch ? scratch : "", users ? " --users" : "", reads_only ? " --reads-only" : "",
	       stop_on_data ? " --stop-on-data-failure" : "");
	if (min_ops)
		printf(" --min-ops %" PRIu64, min_ops);
	for (int op = 0, first = 1; op < NR_OPS; op++) {
		bool off = op == OP_KILL ? skipped_kill : op == OP_MRELEASE ? skipped_mrelease :
			   !op_weight[op];

		if (off && !(reads_only && (op == OP_PROCMEM || op == OP_VMSPLICE || op == OP_ODIRECT))) {
			printf("%s%s", first ? " --skip " : ",", op_name[op]);
			first = 0;
		}
	}
	printf("\n");
	/* no scratch disk: no O_DIRECT operations in the mix */
	if (!scratch)
		op_weight[OP_ODIRECT] = 0;
	B = mmap(NULL, sizeof(*B), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	T = mmap(NULL, sizeof(*T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (B == MAP_FAILED || T == MAP_FAILED)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	rng = seed_for(255, 0, 0);
	for (int w = 0; w < nprocs; w++)
		spawn(w);
	start = now();
	last_report = start;
	end = start + duration;
	if (stop_on_data)	/* until the first data check failure, within the scaled duration */
		end = start + duration * xpmem_time_scale();
	limit = end + 300 * xpmem_time_scale();
	for (;;) {
		int w = (int)rnd_below(nprocs);
		pid_t pid = B->w[w].pid;
		double t;
		bool short_of_work;

		usleep((useconds_t)(20000 + rnd_below(180000)));
		total = 0;
		for (int op = 0; op < NR_OPS; op++)
			total += B->ops[op];
		t = now();
		if (B->stop)
			break;		/* --stop-on-data-failure */
		/* past the duration: on until the minimum work is done, within the cap */
		short_of_work = total < need(MIN_OPS_PER_S, duration) || total < min_ops ||
				B->attaches_ok < need(MIN_ATTACHES_PER_S, duration) ||
				B->words_strict < need(MIN_WORDS_PER_S, duration) ||
				(!skipped_kill && kills < need(MIN_KILLS_PER_S, duration)) ||
				(!skipped_mrelease && mreleases < need(MIN_MRELEASES_PER_S, duration)) ||
				(op_weight[OP_FORK] && B->forks_ok < need(MIN_FORKS_PER_S, duration));
		if (t >= end && (!short_of_work || t >= limit || stop_on_data))
			break;	/* (a run that expects a data failure is not extended) */
		/* long runs: the rate as it goes (a rate that decays is a finding) */
		if (duration >= 300 && t - last_report >= 60) {
			printf("# %5.0f s: %" PRIu64 " operations, %.0f/s over the last %.0f s, %" PRIu64 " kills\n",
			       t - start, total, (total - reported) / (t - last_report), t - last_report, kills);
			reported = total;
			last_report = t;
		}
		/* a thread that stopped finishing operations is stuck somewhere */
		failures += check_threads();
		/* a worker that died on its own: anything but our SIGKILL fails */
		if (waitpid(pid, &st, WNOHANG) == pid) {
			note_failure("worker %d died on its own: status %#x", w, st);
			failures++;
			reaped(w, B->w[w].inc);
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
		reaped(w, B->w[w].inc);
		spawn(w);
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
	{
		double secs = now() - start, hit;
		uint64_t picks = 0, att_picks = 0, att_done = 0;
		unsigned int wsum = 0;

		for (int op = 0; op < NR_OPS; op++)
			wsum += op_weight[op];
		printf("# %.0f s, %" PRIu64 " operations (%.0f/s), %" PRIu64 " kills (%" PRIu64
		       " with process_mrelease), %" PRIu64 " forks, %" PRIu64 " attaches\n",
		       secs, total, total / secs, kills, mreleases, B->forks_ok, B->attaches_ok);
		printf("# words checked %" PRIu64 ", %" PRIu64 " of them against generations (%" PRIu64
		       " through attachments); %" PRIu64 " reads raced a writer; %" PRIu64
		       " pages rewritten (%" PRIu64 " through attachments, /proc/PID/mem, O_DIRECT)\n",
		       B->words_checked, B->words_strict, B->att_words, B->reads_raced, B->pages_written,
		       B->att_pages_written);
		printf("# detaches that found their piece already unmapped by another operation: %" PRIu64 "\n",
		       B->detach_gone);
		printf("# per second: %.0f operations, %.2f kills, %.2f process_mrelease, %.1f forks, %.1f attaches, %.0f words (%.0f through attachments)\n",
		       total / secs, kills / secs, mreleases / secs, B->forks_ok / secs,
		       B->attaches_ok / secs, B->words_strict / secs, B->att_words / secs);
		printf("# longest a thread went without finishing an operation: %.1f s (limit %.0f s)\n",
		       longest_quiet, HANG_SECS * xpmem_time_scale());
		/*
		 * The mix: each kind done within MIX_FACTOR of what its weight
		 * asks of the operations drawn; for the kinds that need a live
		 * attachment of the worker's, times the fraction of their draws
		 * that found one (which must not be tiny: attaching works).
		 */
		for (int op = 0; op < NR_OPS; op++) {
			picks += B->picks[op];
			if (op_weight[op] && needs_att(op)) {
				att_picks += B->picks[op];
				att_done += B->ops[op];
			}
		}
		hit = att_picks ? (double)att_done / att_picks : 1;
		printf("# %-11s %10s %10s %10s %10s %8s %8s\n", "operation", "count", "errors", "faults",
		       "busy", "count/", "expected");
		for (int op = 0; op < NR_OPS; op++) {
			double want = wsum ? (double)picks * op_weight[op] / wsum * (needs_att(op) ? hit : 1) : 0;

			printf("# %-11s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8.2f %8.0f\n",
			       op_name[op], B->ops[op], B->errs[op], B->faults[op], B->busy[op],
			       want > 0 ? B->ops[op] / want : 0, want);
			if (op_weight[op] && !B->data_fail &&
			    (B->ops[op] < want / MIX_FACTOR || B->ops[op] > want * MIX_FACTOR)) {
				note_failure("mix: %" PRIu64 " %s operations, %.0f expected (factor %.0f)",
					     B->ops[op], op_name[op], want, MIX_FACTOR);
				failures++;
			}
		}
		printf("# %.0f%% of the draws of an operation through an attachment found one\n", 100 * hit);
		if (hit < MIN_ATT_HIT && !B->data_fail) {
			note_failure("only %.1f%% of the operations that need an attachment found one (want %.0f%%)",
				     100 * hit, 100 * MIN_ATT_HIT);
			failures++;
		}
		/* the work the run must have done to prove anything */
		nmins = 0;
		mins[nmins++] = (struct minimum){ "operations", total,
			need(MIN_OPS_PER_S, duration) > min_ops ? need(MIN_OPS_PER_S, duration) : min_ops };
		mins[nmins++] = (struct minimum){ "attaches", B->attaches_ok, need(MIN_ATTACHES_PER_S, duration) };
		mins[nmins++] = (struct minimum){ "words checked against generations", B->words_strict,
						  need(MIN_WORDS_PER_S, duration) };
		mins[nmins++] = (struct minimum){ "... of them through attachments", B->att_words,
						  need(MIN_ATT_WORDS_PER_S, duration) };
		if (!skipped_kill || !skipped_mrelease)
			mins[nmins++] = (struct minimum){ "kills", kills, need(MIN_KILLS_PER_S, duration) };
		if (!skipped_mrelease)
			mins[nmins++] = (struct minimum){ "process_mrelease", mreleases,
							  need(MIN_MRELEASES_PER_S, duration) };
		if (op_weight[OP_FORK])
			mins[nmins++] = (struct minimum){ "forks", B->forks_ok, need(MIN_FORKS_PER_S, duration) };
		for (int i = 0; i < nmins && !B->data_fail; i++) {
			printf("# minimum %s: %" PRIu64 " (want %" PRIu64 ")\n", mins[i].what, mins[i].have,
			       mins[i].want);
			if (mins[i].have < mins[i].want) {
				note_failure("too little work: %" PRIu64 " %s, want %" PRIu64 " (%u s, time scale %.1f)",
					     mins[i].have, mins[i].what, mins[i].want, duration, xpmem_time_scale());
				failures++;
			}
		}
	}
	if (live_counters_settle()) {
		note_failure("the driver's live objects did not return to zero");
		failures++;
	}
	for (uint32_t i = 0; i < B->ndfail && i < MAX_FAIL_TEXT; i++)
		printf("# failure: data check: %s\n", B->dfail[i]);
	for (uint32_t i = 0; i < B->nfail && i < MAX_FAIL_TEXT; i++)
		printf("# failure: %s\n", B->fail[i]);
	printf("# data check failures %" PRIu64 ", unexpected errnos %" PRIu64 ", failures %d (seed %#" PRIx64 ")\n",
	       B->data_fail, B->bad_errno, failures + (int)B->nfail, seed);
	if (B->data_fail)
		return 3;
	return failures || B->nfail || B->bad_errno ? 1 : 0;
}
