// SPDX-License-Identifier: GPL-2.0
/*
 * local_bench - what an attachment costs on one machine, as ratios to the
 * nearest thing without xpmem, every pair measured in the same boot with
 * interleaved samples (median of each).  Run in a guest by bench/local/run.
 *
 *   touch  first touch of every page of a 64 MiB attachment (one read per
 *          page: faults) vs first touch of fresh shared memory, over 4 KiB,
 *          THP and hugetlb source pages
 *   copy   warm copy out of an attachment vs memcpy of the source itself,
 *          process_vm_readv of the source, and a double copy through
 *          POSIX-style shared memory, 4 KiB to 64 MiB
 *   calls  xpmem_attach + xpmem_detach of 64 MiB and of 4 KiB (untouched),
 *          xpmem_get + xpmem_release, vs mmap + munmap of the same size
 *   inval  madvise(MADV_DONTNEED) of one source page that one attachment
 *          maps vs one that none maps, with 1 to 10,000 attachments of the
 *          source alive; and of a page an attachment covers but its
 *          attacher never touched (nothing to zap)
 *   mapinval
 *          madvise(MADV_DONTNEED) of one source page that N one-page
 *          attachments (N = 1 to 10,000, all in this process) map, each
 *          touched, vs munmap of one mapped page of the process's own
 *          memory, interleaved: what each mapping attachment adds to an
 *          invalidation, next to what the kernel's own unmap costs
 *   percall
 *          what else an MPI library pays per buffer (bench/peer compares
 *          it with the established driver): xpmem_detach of 4 MiB after
 *          touching every page; a new process's first xpmem_get +
 *          xpmem_attach + first touch of one page; and each further
 *          one-page attach + first touch, up to 10,000 attachments
 *
 * Output: "ROW key=value ..." lines on stdout (bench/local/report makes
 * the table and the plot), progress on stderr.
 *
 * QEMU's soft TLB is direct-mapped by virtual page: the source, the
 * attachment and every baseline buffer sit at the same address modulo
 * 1 GiB (each in its own GiB), else the copy figures swing with where the
 * kernel put them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xpmem.h"

#define MiB		(1UL << 20)
#define GiB		(1UL << 30)
#define BIG		(64 * MiB)
#define BASE		(0x200000000000UL)	/* slot k at BASE + k GiB */

static size_t PG;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
	fprintf(stderr, "local_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* slot @k: its own GiB, same offset modulo 1 GiB as every other slot */
static void *slot_addr(int k)
{
	return (void *)(BASE + (unsigned long)k * GiB);
}

static char *map_at(int k, size_t len, int flags)
{
	char *p = mmap(slot_addr(k), len, PROT_READ | PROT_WRITE,
		       flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static char *attach_at(xpmem_apid_t apid, size_t off, size_t len, int k)
{
	struct xpmem_addr a = { .apid = apid, .offset = off };
	char *p = xpmem_attach(a, len, slot_addr(k));

	if (p == (void *)-1)
		die("xpmem_attach");
	return p;
}

static void touch(volatile char *p, size_t len, size_t step)
{
	for (size_t i = 0; i < len; i += step)
		(void)p[i];
}

/* ---- first touch ------------------------------------------------------------------ */

enum src_kind { SRC_4K, SRC_THP, SRC_HUGETLB };
static const char *const src_name[] = { "4k", "thp", "hugetlb" };

static char *make_source(enum src_kind kind)
{
	char *p;

	if (kind == SRC_HUGETLB) {
		p = mmap(slot_addr(0), BIG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
	} else {
		p = map_at(0, BIG, MAP_PRIVATE);
		madvise(p, BIG, kind == SRC_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	}
	memset(p, 1, BIG);
	return p;
}

/* the driver's fault-around (module parameter), 0 if it cannot be set */
static int set_fault_around(unsigned int pages)
{
	FILE *f = fopen("/sys/module/xpmem/parameters/fault_around_pages", "w");
	int ok;

	if (!f)
		return 0;
	ok = fprintf(f, "%u\n", pages) > 0;
	return fclose(f) == 0 && ok;
}

static void bench_touch(enum src_kind kind, int rounds)
{
	double *tx = calloc(rounds, sizeof(double)), *ts = calloc(rounds, sizeof(double));
	double *t1 = calloc(rounds, sizeof(double));
	char *src = make_source(kind);
	xpmem_segid_t seg;
	xpmem_apid_t apid;

	if (!src) {
		printf("ROW touch src=%s skipped=no_hugetlb_pages\n", src_name[kind]);
		return;
	}
	seg = xpmem_make(src, BIG, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	if (seg <= 0 || apid <= 0)
		die("make/get");
	for (int r = 0; r < rounds; r++) {
		char *att = attach_at(apid, 0, BIG, 1), *shm;
		double t0 = now();

		touch(att, BIG, PG);
		tx[r] = now() - t0;
		xpmem_detach(att);
		/* the same with one page per fault (the driver before fault-around) */
		if (set_fault_around(1)) {
			att = attach_at(apid, 0, BIG, 1);
			t0 = now();
			touch(att, BIG, PG);
			t1[r] = now() - t0;
			xpmem_detach(att);
			set_fault_around(16);
		}
		shm = map_at(2, BIG, MAP_SHARED);
		t0 = now();
		touch(shm, BIG, PG);
		ts[r] = now() - t0;
		munmap(shm, BIG);
		fprintf(stderr, ".");
	}
	xpmem_release(apid);
	xpmem_remove(seg);
	munmap(src, BIG);
	printf("ROW touch src=%s bytes=%lu xpmem_s=%.6f shm_s=%.6f xpmem_gbs=%.3f shm_gbs=%.3f ratio=%.3f one_page_gbs=%.3f around_gain=%.3f\n",
	       src_name[kind], BIG, median(tx, rounds), median(ts, rounds),
	       BIG / median(tx, rounds) / 1e9, BIG / median(ts, rounds) / 1e9,
	       median(ts, rounds) / median(tx, rounds),
	       median(t1, rounds) > 0 ? BIG / median(t1, rounds) / 1e9 : 0,
	       median(t1, rounds) > 0 ? median(t1, rounds) / median(tx, rounds) : 0);
	fflush(stdout);
	free(tx);
	free(ts);
	free(t1);
}

/* ---- warm copy -------------------------------------------------------------------- */

static void bench_copy(int rounds)
{
	char *src = map_at(0, BIG, MAP_PRIVATE), *dst = map_at(3, BIG, MAP_PRIVATE);
	char *shm = map_at(2, BIG, MAP_SHARED), *att;
	double *t[4];
	xpmem_segid_t seg;
	xpmem_apid_t apid;

	for (int i = 0; i < 4; i++)
		t[i] = calloc(rounds, sizeof(double));
	madvise(src, BIG, MADV_NOHUGEPAGE);
	memset(src, 2, BIG);
	memset(dst, 0, BIG);
	memset(shm, 0, BIG);
	seg = xpmem_make(src, BIG, XPMEM_PERMIT_MODE, (void *)0600);
	/* RDWR here and below: hpc/xpmem (bench/peer runs this program on it) refuses any attach of an RDONLY permit */
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	att = attach_at(apid, 0, BIG, 1);
	touch(att, BIG, PG);	/* warm */
	for (size_t n = 4096; n <= BIG; n *= 4) {
		int reps = (int)(BIG / n) < 64 ? (int)(BIG / n) : 64;

		for (int r = 0; r < rounds; r++) {
			struct iovec l = { dst, n }, rv = { src, n };
			double t0 = now();

			for (int k = 0; k < reps; k++)
				memcpy(dst, att, n);
			t[0][r] = (now() - t0) / reps;
			t0 = now();
			for (int k = 0; k < reps; k++)
				memcpy(dst, src, n);
			t[1][r] = (now() - t0) / reps;
			t0 = now();
			for (int k = 0; k < reps; k++)
				if (process_vm_readv(getpid(), &l, 1, &rv, 1, 0) != (ssize_t)n)
					die("process_vm_readv");
			t[2][r] = (now() - t0) / reps;
			t0 = now();
			for (int k = 0; k < reps; k++) {
				memcpy(shm, src, n);
				memcpy(dst, shm, n);
			}
			t[3][r] = (now() - t0) / reps;
		}
		printf("ROW copy bytes=%zu xpmem_gbs=%.3f memcpy_gbs=%.3f cma_gbs=%.3f shm2_gbs=%.3f vs_memcpy=%.3f vs_cma=%.3f vs_shm2=%.3f\n",
		       n, n / median(t[0], rounds) / 1e9, n / median(t[1], rounds) / 1e9,
		       n / median(t[2], rounds) / 1e9, n / median(t[3], rounds) / 1e9,
		       median(t[1], rounds) / median(t[0], rounds),
		       median(t[2], rounds) / median(t[0], rounds),
		       median(t[3], rounds) / median(t[0], rounds));
		fflush(stdout);
		fprintf(stderr, ".");
	}
	xpmem_detach(att);
	xpmem_release(apid);
	xpmem_remove(seg);
	munmap(src, BIG);
	munmap(dst, BIG);
	munmap(shm, BIG);
	for (int i = 0; i < 4; i++)
		free(t[i]);
}

/* ---- per-call costs --------------------------------------------------------------- */

static void bench_calls(int rounds)
{
	size_t sizes[] = { BIG, 4096 };
	char *src = map_at(0, BIG, MAP_PRIVATE);
	double *ta = calloc(rounds, sizeof(double)), *tm = calloc(rounds, sizeof(double));
	double *tg = calloc(rounds, sizeof(double));
	xpmem_segid_t seg = xpmem_make(src, BIG, XPMEM_PERMIT_MODE, (void *)0600);
	xpmem_apid_t apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	const int per = 50;

	if (seg <= 0 || apid <= 0)
		die("make/get");
	for (size_t s = 0; s < 2; s++) {
		size_t len = sizes[s];

		for (int r = 0; r < rounds; r++) {
			double t0 = now();

			for (int k = 0; k < per; k++)
				xpmem_detach(attach_at(apid, 0, len, 1));
			ta[r] = (now() - t0) / per;
			t0 = now();
			for (int k = 0; k < per; k++)
				munmap(map_at(1, len, MAP_SHARED), len);
			tm[r] = (now() - t0) / per;
		}
		printf("ROW calls op=attach_detach bytes=%zu xpmem_us=%.2f mmap_munmap_us=%.2f ratio=%.3f\n",
		       len, median(ta, rounds) * 1e6, median(tm, rounds) * 1e6,
		       median(ta, rounds) / median(tm, rounds));
		fflush(stdout);
		fprintf(stderr, ".");
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = now();

		for (int k = 0; k < per; k++) {
			xpmem_apid_t a = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);

			if (a <= 0)
				die("xpmem_get");
			xpmem_release(a);
		}
		tg[r] = (now() - t0) / per;
		t0 = now();
		for (int k = 0; k < per; k++)
			munmap(map_at(1, 4096, MAP_SHARED), 4096);
		tm[r] = (now() - t0) / per;
	}
	printf("ROW calls op=get_release bytes=0 xpmem_us=%.2f mmap_munmap_us=%.2f ratio=%.3f\n",
	       median(tg, rounds) * 1e6, median(tm, rounds) * 1e6,
	       median(tg, rounds) / median(tm, rounds));
	fflush(stdout);
	xpmem_release(apid);
	xpmem_remove(seg);
	munmap(src, BIG);
	free(ta);
	free(tm);
	free(tg);
}

/* ---- invalidation ------------------------------------------------------------------ */

/*
 * Source of @n + 3 pages; attachment i maps page i (one page each), page 0
 * is the covered one (its attachment faulted in), page n + 1 is covered by
 * none, page n + 2 by one more attachment that is never touched.  Times
 * madvise(DONTNEED) of one page, refilled between samples.
 */
static void bench_inval(int rounds)
{
	int counts[] = { 1, 10, 100, 1000, 10000 };
	size_t maxn = 10000, len = (maxn + 3) * PG;
	char *src = map_at(0, len, MAP_PRIVATE);
	char **att = calloc(maxn, sizeof(char *));
	double *tc = calloc(rounds, sizeof(double)), *tu = calloc(rounds, sizeof(double));
	double *ti = calloc(rounds, sizeof(double));
	xpmem_segid_t seg;
	xpmem_apid_t apid;
	size_t have = 0;
	char *idle;

	madvise(src, len, MADV_NOHUGEPAGE);
	memset(src, 3, len);
	seg = xpmem_make(src, len, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	if (seg <= 0 || apid <= 0)
		die("make/get");
	idle = xpmem_attach((struct xpmem_addr){ .apid = apid, .offset = (maxn + 2) * PG },
			    PG, NULL);
	if (idle == (void *)-1)
		die("xpmem_attach (idle)");
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		char *covered = src, *uncovered = src + (maxn + 1) * PG;
		char *untouched = src + (maxn + 2) * PG;

		while (have < (size_t)counts[c]) {
			/* attachments in slot 1's GiB and beyond, the kernel places them */
			struct xpmem_addr a = { .apid = apid, .offset = have * PG };

			att[have] = xpmem_attach(a, PG, NULL);
			if (att[have] == (void *)-1)
				die("xpmem_attach (many)");
			have++;
		}
		for (int r = 0; r < rounds; r++) {
			double t0;

			covered[0] = 3;
			uncovered[0] = 3;
			untouched[0] = 3;
			(void)*(volatile char *)att[0];	/* the covered page is mapped */
			/* the cheap ones first: not right after a zap's hand-off */
			t0 = now();
			madvise(uncovered, PG, MADV_DONTNEED);
			tu[r] = now() - t0;
			t0 = now();
			madvise(untouched, PG, MADV_DONTNEED);
			ti[r] = now() - t0;
			t0 = now();
			madvise(covered, PG, MADV_DONTNEED);
			tc[r] = now() - t0;
		}
		printf("ROW inval attachments=%d covered_us=%.2f uncovered_us=%.2f ratio=%.3f"
		       " untouched_us=%.2f untouched_ratio=%.3f\n",
		       counts[c], median(tc, rounds) * 1e6, median(tu, rounds) * 1e6,
		       median(tc, rounds) / median(tu, rounds), median(ti, rounds) * 1e6,
		       median(ti, rounds) / median(tu, rounds));
		fflush(stdout);
		fprintf(stderr, ".");
	}
	for (size_t i = 0; i < have; i++)
		xpmem_detach(att[i]);
	xpmem_detach(idle);
	xpmem_release(apid);
	xpmem_remove(seg);
	munmap(src, len);
	free(att);
	free(tc);
	free(tu);
	free(ti);
}

/*
 * A page N attachments map: attachment i (one page) of source page 0 for
 * i < N, each touched before every sample; the baseline is munmap of one
 * freshly mapped and touched page of this process's own.
 */
static void bench_mapinval(int rounds)
{
	int counts[] = { 1, 10, 100, 1000, 10000 };
	size_t maxn = 10000;
	char *src = map_at(0, PG, MAP_PRIVATE);
	char **att = calloc(maxn, sizeof(char *));
	double *ta = calloc(rounds, sizeof(double)), *tm = calloc(rounds, sizeof(double));
	xpmem_segid_t seg;
	xpmem_apid_t apid;
	size_t have = 0;

	memset(src, 3, PG);
	seg = xpmem_make(src, PG, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	if (seg <= 0 || apid <= 0)
		die("make/get");
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		while (have < (size_t)counts[c]) {
			struct xpmem_addr a = { .apid = apid, .offset = 0 };

			att[have] = xpmem_attach(a, PG, NULL);
			if (att[have] == (void *)-1)
				die("xpmem_attach (mapping)");
			have++;
		}
		for (int r = 0; r < rounds; r++) {
			char *own = mmap(NULL, PG, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			double t0;

			if (own == MAP_FAILED)
				die("mmap");
			own[0] = 1;
			src[0] = 3;
			for (size_t i = 0; i < have; i++)
				(void)*(volatile char *)att[i];
			t0 = now();
			munmap(own, PG);
			tm[r] = now() - t0;
			t0 = now();
			madvise(src, PG, MADV_DONTNEED);
			ta[r] = now() - t0;
		}
		printf("ROW mapinval mapping=%d inval_us=%.2f munmap_us=%.2f per_mapping_us=%.2f"
		       " per_mapping_vs_munmap=%.3f\n",
		       counts[c], median(ta, rounds) * 1e6, median(tm, rounds) * 1e6,
		       median(ta, rounds) * 1e6 / counts[c],
		       median(ta, rounds) / counts[c] / median(tm, rounds));
		fflush(stdout);
		fprintf(stderr, ".");
	}
	for (size_t i = 0; i < have; i++)
		xpmem_detach(att[i]);
	xpmem_release(apid);
	xpmem_remove(seg);
	munmap(src, PG);
	free(att);
	free(ta);
	free(tm);
}

/* ---- per call -------------------------------------------------------------------- */

#define PERCALL_ATTS	10000

/* the child of bench_percall: a new process's first get + attach + touch of @seg */
static int first_attach(const char *segid)
{
	xpmem_segid_t seg = (xpmem_segid_t)strtoll(segid, NULL, 0);
	xpmem_apid_t apid;
	double t0;
	char *p;

	PG = (size_t)sysconf(_SC_PAGESIZE);
	if (xpmem_init())
		die("xpmem_init");
	t0 = now();
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	if (apid <= 0)
		die("xpmem_get");
	p = xpmem_attach((struct xpmem_addr){ .apid = apid }, PG, NULL);
	if (p == (void *)-1)
		die("xpmem_attach");
	(void)*(volatile char *)p;
	printf("%.9f\n", now() - t0);
	xpmem_detach(p);
	xpmem_release(apid);
	return 0;
}

static double run_first_attach(xpmem_segid_t seg)
{
	char arg[32], out[64] = "";
	int fds[2], status;
	double t = -1;
	FILE *f;
	pid_t pid;

	snprintf(arg, sizeof(arg), "%lld", (long long)seg);
	if (pipe(fds))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		/* a new image: the library's state is a new process's */
		dup2(fds[1], 1);
		execl("/proc/self/exe", "local_bench", "--first-attach", arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (f && fgets(out, sizeof(out), f))
		t = atof(out);
	if (f)
		fclose(f);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) || t < 0)
		die("first attach child");
	return t;
}

static void bench_percall(int rounds)
{
	const size_t len = 4 * MiB;
	char *src = map_at(0, BIG, MAP_PRIVATE);
	double *td = calloc(rounds, sizeof(double)), *tf = calloc(rounds, sizeof(double));
	double *tn = calloc(rounds, sizeof(double));
	char **att = calloc(PERCALL_ATTS, sizeof(char *));
	xpmem_segid_t seg;
	xpmem_apid_t apid;

	if (!td || !tf || !tn || !att)
		die("calloc");
	madvise(src, BIG, MADV_NOHUGEPAGE);
	memset(src, 1, BIG);
	seg = xpmem_make(src, BIG, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	if (seg <= 0 || apid <= 0)
		die("make/get");
	for (int r = 0; r < rounds; r++) {
		char *p = attach_at(apid, 0, len, 1);
		double t0;

		touch(p, len, PG);
		t0 = now();
		xpmem_detach(p);
		td[r] = now() - t0;
		tf[r] = run_first_attach(seg);
		t0 = now();
		for (size_t i = 0; i < PERCALL_ATTS; i++) {
			att[i] = xpmem_attach((struct xpmem_addr){ .apid = apid,
								  .offset = (i % 1024) * PG },
					      PG, NULL);
			if (att[i] == (void *)-1)
				die("xpmem_attach");
			(void)*(volatile char *)att[i];
		}
		tn[r] = (now() - t0) / PERCALL_ATTS;
		for (size_t i = 0; i < PERCALL_ATTS; i++)
			xpmem_detach(att[i]);
		fprintf(stderr, ".");
	}
	printf("ROW percall op=detach_after_touch bytes=%zu us=%.2f\n", len, median(td, rounds) * 1e6);
	printf("ROW percall op=first_get_attach_touch bytes=%zu us=%.2f\n", PG,
	       median(tf, rounds) * 1e6);
	printf("ROW percall op=further_attach_touch bytes=%zu n=%d us=%.2f\n", PG, PERCALL_ATTS,
	       median(tn, rounds) * 1e6);
	fflush(stdout);
	xpmem_release(apid);
	xpmem_remove(seg);
	munmap(src, BIG);
	free(att);
	free(td);
	free(tf);
	free(tn);
}

/*
 * local_bench [ROUNDS [PART...]]: PART is touch, copy, calls, inval,
 * mapinval or percall (default: all); local_bench --first-attach SEGID is
 * percall's child
 */
static int wanted(int argc, char **argv, const char *part)
{
	if (argc <= 2)
		return 1;
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], part))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 9;

	if (argc == 3 && !strcmp(argv[1], "--first-attach"))
		return first_attach(argv[2]);
	PG = (size_t)sysconf(_SC_PAGESIZE);
	if (xpmem_init())
		die("xpmem_init");
	fprintf(stderr, "local_bench: %d rounds per figure\n", rounds);
	if (wanted(argc, argv, "touch")) {
		fprintf(stderr, "touch ");
		bench_touch(SRC_4K, rounds);
		bench_touch(SRC_THP, rounds);
		bench_touch(SRC_HUGETLB, rounds);
		fprintf(stderr, "\n");
	}
	if (wanted(argc, argv, "copy")) {
		fprintf(stderr, "copy ");
		bench_copy(rounds);
		fprintf(stderr, "\n");
	}
	if (wanted(argc, argv, "calls")) {
		fprintf(stderr, "calls ");
		bench_calls(rounds);
		fprintf(stderr, "\n");
	}
	if (wanted(argc, argv, "inval")) {
		fprintf(stderr, "inval ");
		bench_inval(rounds);
		fprintf(stderr, "\n");
	}
	if (wanted(argc, argv, "mapinval")) {
		fprintf(stderr, "mapinval ");
		bench_mapinval(rounds);
		fprintf(stderr, "\n");
	}
	if (wanted(argc, argv, "percall")) {
		fprintf(stderr, "percall ");
		bench_percall(rounds);
		fprintf(stderr, "\n");
	}
	return 0;
}
