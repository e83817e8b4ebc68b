// SPDX-License-Identifier: GPL-2.0
/*
 * mpi_rma.c - MPI one-sided communication and large point-to-point
 * messages, every result checked against a value computed independently
 * (a pattern function of origin rank, test and element index, never the
 * data path under test).
 *
 * Run with any number of ranks >= 2 (mpiexec -n 2/4/8).  Rank 0 prints
 * TAP; every test is collective and ends with an MPI_Allreduce of the
 * per-rank error counts, so a wrong element on any rank fails the test by
 * name, with the first bad element of each rank as a diagnostic.
 *
 * Window kinds: MPI_Win_create (malloc), MPI_Win_allocate,
 * MPI_Win_allocate_shared, MPI_Win_create_dynamic (+MPI_Win_attach).
 * Synchronisation: fence, post/start/complete/wait, lock/unlock exclusive
 * and shared, lock_all + flush, lock_all + flush_local.
 *
 * Usage: mpi_rma [--max-mib N] [--tag SUFFIX] [--no-fetching-rma] [--no-cas]
 *   --max-mib  largest Put/Get/Send size in MiB (default 64)
 *   --tag      appended to every test name (the runner tells runs apart)
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int me, np, left, right;
static int ntests, nfailed, nskipped;
static const char *tag = "";	/* --tag: appended to every test name */
/*
 * --no-fetching-rma: skip every test that fetches data from a target
 * (Get, Get_accumulate, Fetch_and_op, Compare_and_swap), reported as
 * SKIP.  For runs over UCX transports without native RMA, where UCX
 * 1.13.1 emulates fetching operations with active messages and, under
 * MPICH, completes an epoch before the replies arrived (wrong data, then
 * a segfault in ucp_get_rep_handler on a freed buffer): docs/testing.md.
 */
static int no_fetch;
/*
 * --no-cas: skip only the MPI_Compare_and_swap test, reported as SKIP.
 * For Open MPI 4.1.4's osc/rdma over btl/vader, whose emulated
 * compare-and-swap segfaults in mca_btl_vader_send (Debian's own vader
 * with CMA and no xpmem too): docs/testing.md.  The same test runs under
 * osc/pt2pt in the same suite.
 */
static int no_cas;
static size_t max_elems = (64u << 20) / 8;	/* largest transfer, u64 elements */
static int unified;	/* MPI_WIN_UNIFIED: local loads see remote puts after win_sync */

/* ---- the independent oracle ---------------------------------------------- */

/* 64-bit mix of (origin rank, test id, element): what the element must hold */
static uint64_t pat(int rank, int test, size_t i)
{
	uint64_t x = ((uint64_t)rank << 48) ^ ((uint64_t)test << 32) ^ i;

	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	x ^= x >> 33;
	return x | 1;	/* never 0, so a zeroed page is always wrong */
}

static void fill(uint64_t *p, size_t n, int rank, int test)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(rank, test, i);
}

static long errors;	/* this rank's errors in the current test */

static void bad(const char *what, size_t i, uint64_t got, uint64_t want)
{
	if (errors++ == 0)
		printf("# rank %d: %s: element %zu is %#llx, want %#llx\n", me, what, i,
		       (unsigned long long)got, (unsigned long long)want);
}

static void check(const char *what, const uint64_t *p, size_t n, int rank, int test)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(rank, test, i))
			bad(what, i, p[i], pat(rank, test, i));
}

#define SENTINEL 0x5e5e5e5e5e5e5e5eULL

static const char fetch_why[] = "fetching RMA not run (--no-fetching-rma)";

static void skip(const char *name, const char *why)
{
	ntests++;
	nskipped++;
	if (me == 0) {
		printf("ok %d %s%s # SKIP %s\n", ntests, name, tag, why);
		fflush(stdout);
	}
}

/* one TAP line per test, from rank 0, after summing every rank's errors */
static void report(const char *name)
{
	long total = 0;

	fflush(stdout);
	MPI_Allreduce(&errors, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
	ntests++;
	if (total)
		nfailed++;
	if (me == 0) {
		printf("%sok %d %s%s\n", total ? "not " : "", ntests, name, tag);
		fflush(stdout);
	}
	errors = 0;
}

/* ---- windows ------------------------------------------------------------- */

enum win_kind { W_CREATE, W_ALLOCATE, W_SHARED, W_DYNAMIC, W_NKINDS };
static const char *const kind_name[] = { "create", "allocate", "allocate_shared",
					 "dynamic" };

struct win {
	enum win_kind kind;
	MPI_Win w;
	uint64_t *base;		/* this rank's window memory */
	size_t elems;
	MPI_Aint *remote;	/* dynamic: every rank's attached address */
};

static void win_open(struct win *w, enum win_kind kind, size_t elems)
{
	MPI_Aint bytes = (MPI_Aint)(elems * 8);
	MPI_Aint addr;

	memset(w, 0, sizeof(*w));
	w->kind = kind;
	w->elems = elems;
	switch (kind) {
	case W_CREATE:
		w->base = malloc(bytes);
		if (!w->base)
			MPI_Abort(MPI_COMM_WORLD, 2);
		MPI_Win_create(w->base, bytes, 8, MPI_INFO_NULL, MPI_COMM_WORLD, &w->w);
		break;
	case W_ALLOCATE:
		MPI_Win_allocate(bytes, 8, MPI_INFO_NULL, MPI_COMM_WORLD, &w->base, &w->w);
		break;
	case W_SHARED:
		MPI_Win_allocate_shared(bytes, 8, MPI_INFO_NULL, MPI_COMM_WORLD, &w->base,
					&w->w);
		break;
	case W_DYNAMIC:
		w->base = malloc(bytes);
		w->remote = malloc(np * sizeof(MPI_Aint));
		if (!w->base || !w->remote)
			MPI_Abort(MPI_COMM_WORLD, 2);
		MPI_Win_create_dynamic(MPI_INFO_NULL, MPI_COMM_WORLD, &w->w);
		MPI_Win_attach(w->w, w->base, bytes);
		MPI_Get_address(w->base, &addr);
		MPI_Allgather(&addr, 1, MPI_AINT, w->remote, 1, MPI_AINT, MPI_COMM_WORLD);
		break;
	default:
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	{
		int *model, flag;

		MPI_Win_get_attr(w->w, MPI_WIN_MODEL, &model, &flag);
		unified = flag && *model == MPI_WIN_UNIFIED;
	}
}

static void win_close(struct win *w)
{
	if (w->kind == W_DYNAMIC)
		MPI_Win_detach(w->w, w->base);
	MPI_Win_free(&w->w);
	if (w->kind == W_CREATE || w->kind == W_DYNAMIC)
		free(w->base);
	free(w->remote);
}

/* target displacement of element @i of @rank's window */
static MPI_Aint disp(const struct win *w, int rank, size_t i)
{
	if (w->kind == W_DYNAMIC)
		return MPI_Aint_add(w->remote[rank], (MPI_Aint)(i * 8));
	return (MPI_Aint)i;
}

/* Local access to our own window outside any epoch of ours: an exclusive
 * self-lock makes it a proper access epoch in both memory models. */
static void local_begin(struct win *w)
{
	MPI_Win_lock(MPI_LOCK_EXCLUSIVE, me, 0, w->w);
}

static void local_end(struct win *w)
{
	MPI_Win_unlock(me, w->w);
}

static void set_window(struct win *w, size_t n, int rank, int test)
{
	local_begin(w);
	fill(w->base, n, rank, test);
	for (size_t i = n; i < w->elems; i++)
		w->base[i] = SENTINEL;
	local_end(w);
	MPI_Barrier(MPI_COMM_WORLD);
}

static void check_window(struct win *w, const char *what, size_t n, int rank, int test)
{
	local_begin(w);
	check(what, w->base, n, rank, test);
	for (size_t i = n; i < w->elems; i++)
		if (w->base[i] != SENTINEL)
			bad("beyond the transfer", i, w->base[i], SENTINEL);
	local_end(w);
}

/* ---- Put / Get with every synchronisation -------------------------------- */

enum sync { S_FENCE, S_PSCW, S_LOCK_EXCL, S_LOCK_SHARED, S_FLUSH, S_FLUSH_LOCAL, S_NSYNC };
static const char *const sync_name[] = { "fence", "pscw", "lock_exclusive", "lock_shared",
					 "lock_all_flush", "lock_all_flush_local" };

static MPI_Group group_of(int rank)
{
	MPI_Group world, g;

	MPI_Comm_group(MPI_COMM_WORLD, &world);
	MPI_Group_incl(world, 1, &rank, &g);
	MPI_Group_free(&world);
	return g;
}

/*
 * Every rank Puts @n elements of its pattern into its right neighbour's
 * window (or Gets them from its right neighbour's window), synchronised
 * by @s; then the receiving side checks every element and that nothing
 * beyond the transfer changed.
 */
static void xfer(struct win *w, enum sync s, int get, size_t n, int test)
{
	size_t bytes = n * 8;
	uint64_t *buf = malloc(bytes + 8);
	MPI_Group to = MPI_GROUP_NULL, from = MPI_GROUP_NULL;
	int cnt = (int)n;

	if (!buf)
		MPI_Abort(MPI_COMM_WORLD, 2);
	if (get) {
		set_window(w, n, me, test);	/* neighbours read this */
		buf[n] = SENTINEL;
	} else {
		set_window(w, 0, 0, 0);		/* all sentinel */
		fill(buf, n, me, test);
	}

#define OP(rank) (get ? MPI_Get(buf, cnt, MPI_UINT64_T, rank, disp(w, rank, 0), cnt, \
				MPI_UINT64_T, w->w) \
		      : MPI_Put(buf, cnt, MPI_UINT64_T, rank, disp(w, rank, 0), cnt, \
				MPI_UINT64_T, w->w))
	switch (s) {
	case S_FENCE:
		MPI_Win_fence(MPI_MODE_NOPRECEDE, w->w);
		OP(right);
		MPI_Win_fence(MPI_MODE_NOSUCCEED, w->w);
		break;
	case S_PSCW:
		/* expose to the left neighbour, access the right one */
		to = group_of(right);
		from = group_of(left);
		MPI_Win_post(from, 0, w->w);
		MPI_Win_start(to, 0, w->w);
		OP(right);
		MPI_Win_complete(w->w);
		MPI_Win_wait(w->w);
		break;
	case S_LOCK_EXCL:
	case S_LOCK_SHARED:
		MPI_Win_lock(s == S_LOCK_EXCL ? MPI_LOCK_EXCLUSIVE : MPI_LOCK_SHARED, right, 0,
			     w->w);
		OP(right);
		MPI_Win_unlock(right, w->w);
		break;
	case S_FLUSH:
	case S_FLUSH_LOCAL:
		MPI_Win_lock_all(0, w->w);
		OP(right);
		if (s == S_FLUSH_LOCAL) {
			/*
			 * flush_local: the origin buffer is reusable.  For a Put,
			 * scribble over it: the target must still get the pattern.
			 * For a Get, the data must be there already.
			 */
			MPI_Win_flush_local(right, w->w);
			if (get)
				check("get after flush_local", buf, n, right, test);
			else
				memset(buf, 0xa5, bytes);
		}
		MPI_Win_flush(right, w->w);
		if (!get && unified) {
			/* completed at the target: visible there inside the epoch */
			MPI_Barrier(MPI_COMM_WORLD);
			MPI_Win_sync(w->w);
			check("put visible after flush", w->base, n, left, test);
			MPI_Barrier(MPI_COMM_WORLD);
		}
		MPI_Win_unlock_all(w->w);
		break;
	default:
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
#undef OP
	if (to != MPI_GROUP_NULL) {
		MPI_Group_free(&to);
		MPI_Group_free(&from);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	if (get) {
		check("get", buf, n, right, test);
		if (buf[n] != SENTINEL)
			bad("origin buffer beyond the get", n, buf[n], SENTINEL);
	} else {
		check_window(w, "put", n, left, test);
	}
	free(buf);
}

static const size_t small_sizes[] = { 1, 512, (1u << 20) / 8 + 3 };	/* 8 B, 4 KiB, 1 MiB+24 */

static void test_put_get_matrix(void)
{
	char name[128];
	int test = 100;

	for (int k = 0; k < W_NKINDS; k++) {
		struct win w;

		win_open(&w, k, small_sizes[2] + 16);
		for (int s = 0; s < S_NSYNC; s++) {
			for (int get = 0; get < 2; get++) {
				snprintf(name, sizeof(name), "%s_%s_window_%s_8B_4KiB_1MiB",
					 get ? "get" : "put", kind_name[k], sync_name[s]);
				if (get && no_fetch) {
					skip(name, fetch_why);
					continue;
				}
				for (size_t i = 0; i < 3; i++)
					xfer(&w, s, get, small_sizes[i], test++);
				report(name);
			}
		}
		win_close(&w);
	}
}

/* the largest transfer, Put then Get, on every window kind (lock_exclusive) */
static void test_put_get_large(void)
{
	char name[128];

	for (int k = 0; k < W_NKINDS; k++) {
		struct win w;

		win_open(&w, k, max_elems + 4);
		xfer(&w, S_LOCK_EXCL, 0, max_elems, 200 + k);
		if (!no_fetch)
			xfer(&w, S_FENCE, 1, max_elems, 210 + k);
		win_close(&w);
		snprintf(name, sizeof(name), "%s_%s_window_%zuMiB", no_fetch ? "put" : "put_get",
			 kind_name[k], max_elems * 8 >> 20);
		report(name);
	}
}

/* ---- non-contiguous datatypes -------------------------------------------- */

/*
 * Put a contiguous origin into a strided target (vector: 1 element every
 * 3), and Get a 2-D subarray (a 64x64 block at (7, 5) of a 256x256 array)
 * into a contiguous buffer.  Holes must stay untouched.
 */
static void test_datatypes(enum win_kind k)
{
	const size_t nv = 100000, stride = 3, rows = 256, cols = 256;
	size_t welems = nv * stride + 8;
	uint64_t *buf;
	MPI_Datatype vec, sub;
	struct win w;
	char name[128];
	int sizes[2] = { rows, cols }, subs[2] = { 64, 64 }, starts[2] = { 7, 5 };

	if (welems < rows * cols)
		welems = rows * cols;
	buf = malloc(welems * 8);
	if (!buf)
		MPI_Abort(MPI_COMM_WORLD, 2);
	win_open(&w, k, welems);

	MPI_Type_vector((int)nv, 1, (int)stride, MPI_UINT64_T, &vec);
	MPI_Type_commit(&vec);
	set_window(&w, 0, 0, 0);
	fill(buf, nv, me, 300);
	MPI_Win_fence(0, w.w);
	MPI_Put(buf, (int)nv, MPI_UINT64_T, right, disp(&w, right, 0), 1, vec, w.w);
	MPI_Win_fence(MPI_MODE_NOSUCCEED, w.w);
	local_begin(&w);
	for (size_t i = 0; i < w.elems; i++) {
		uint64_t want = (i % stride == 0 && i / stride < nv) ?
				pat(left, 300, i / stride) : SENTINEL;

		if (w.base[i] != want)
			bad("vector put", i, w.base[i], want);
	}
	local_end(&w);
	MPI_Type_free(&vec);
	snprintf(name, sizeof(name), "put_vector_datatype_%s_window", kind_name[k]);
	report(name);

	snprintf(name, sizeof(name), "get_subarray_datatype_%s_window", kind_name[k]);
	if (no_fetch) {
		skip(name, fetch_why);
		goto out;
	}
	MPI_Type_create_subarray(2, sizes, subs, starts, MPI_ORDER_C, MPI_UINT64_T, &sub);
	MPI_Type_commit(&sub);
	set_window(&w, rows * cols, me, 301);
	memset(buf, 0, 64 * 64 * 8);
	MPI_Win_lock(MPI_LOCK_SHARED, right, 0, w.w);
	MPI_Get(buf, 64 * 64, MPI_UINT64_T, right, disp(&w, right, 0), 1, sub, w.w);
	MPI_Win_unlock(right, w.w);
	for (size_t r = 0; r < 64; r++)
		for (size_t c = 0; c < 64; c++) {
			uint64_t want = pat(right, 301, (r + 7) * cols + c + 5);

			if (buf[r * 64 + c] != want)
				bad("subarray get", r * 64 + c, buf[r * 64 + c], want);
		}
	MPI_Type_free(&sub);
	report(name);
out:
	MPI_Barrier(MPI_COMM_WORLD);
	win_close(&w);
	free(buf);
}

/* ---- accumulate ------------------------------------------------------------ */

/* small non-negative operand of origin @r for element @i (exact in double) */
static int64_t operand(int r, int test, size_t i)
{
	return (int64_t)(pat(r, test, i) % 1000003);
}

/*
 * Every rank accumulates @n elements into every other rank's window
 * (all-to-all, so each target sees np-1 concurrent origins), with
 * fence or shared locks.  SUM and MAX are checked against the sum/max
 * computed here; REPLACE goes to a disjoint slice per origin.
 */
static void acc_test(enum win_kind k, MPI_Op op, int dbl, int lock, size_t n, int test,
		     const char *name)
{
	int replace = op == MPI_REPLACE;
	size_t welems = replace ? n * np : n;
	MPI_Datatype t = dbl ? MPI_DOUBLE : MPI_INT64_T;
	uint64_t *obuf = malloc(n * 8);
	struct win w;

	if (!obuf)
		MPI_Abort(MPI_COMM_WORLD, 2);
	win_open(&w, k, welems);
	local_begin(&w);
	for (size_t i = 0; i < welems; i++) {
		int64_t v = (int64_t)(i % 777);	/* initial value */

		if (dbl)
			((double *)w.base)[i] = (double)v;
		else
			((int64_t *)w.base)[i] = v;
	}
	local_end(&w);
	for (size_t i = 0; i < n; i++) {
		if (dbl)
			((double *)obuf)[i] = (double)operand(me, test, i);
		else
			((int64_t *)obuf)[i] = operand(me, test, i);
	}
	MPI_Barrier(MPI_COMM_WORLD);

	if (!lock)
		MPI_Win_fence(0, w.w);
	for (int d = 1; d < np; d++) {
		int t_rank = (me + d) % np;
		MPI_Aint at = disp(&w, t_rank, replace ? (size_t)me * n : 0);

		if (lock)
			MPI_Win_lock(MPI_LOCK_SHARED, t_rank, 0, w.w);
		MPI_Accumulate(obuf, (int)n, t, t_rank, at, (int)n, t, op, w.w);
		if (lock)
			MPI_Win_unlock(t_rank, w.w);
	}
	if (!lock)
		MPI_Win_fence(MPI_MODE_NOSUCCEED, w.w);
	MPI_Barrier(MPI_COMM_WORLD);

	local_begin(&w);
	for (size_t i = 0; i < welems; i++) {
		int64_t want = (int64_t)(i % 777), got;

		if (replace) {
			int origin = (int)(i / n);

			if (origin != me)
				want = operand(origin, test, i % n);
		} else {
			for (int r = 0; r < np; r++) {
				if (r == me)
					continue;
				if (op == MPI_SUM)
					want += operand(r, test, i);
				else if (operand(r, test, i) > want)
					want = operand(r, test, i);
			}
		}
		got = dbl ? (int64_t)((double *)w.base)[i] : ((int64_t *)w.base)[i];
		if (got != want)
			bad(name, i, (uint64_t)got, (uint64_t)want);
	}
	local_end(&w);
	MPI_Barrier(MPI_COMM_WORLD);
	win_close(&w);
	free(obuf);
	report(name);
}

/* MPI_Get_accumulate: every rank adds 1 to each of @n counters on rank 0
 * and fetches the old values; the fetched values of one counter over all
 * ranks must be exactly {0..np-1}, and the final counter np. */
static void test_get_accumulate(void)
{
	const size_t n = 4096;
	struct win w;
	int64_t *one = malloc(n * 8), *old = malloc(n * 8), *all = NULL;

	if (!one || !old)
		MPI_Abort(MPI_COMM_WORLD, 2);
	win_open(&w, W_ALLOCATE, n);
	local_begin(&w);
	memset(w.base, 0, n * 8);
	local_end(&w);
	for (size_t i = 0; i < n; i++)
		one[i] = 1;
	MPI_Barrier(MPI_COMM_WORLD);
	MPI_Win_lock_all(0, w.w);
	MPI_Get_accumulate(one, (int)n, MPI_INT64_T, old, (int)n, MPI_INT64_T, 0, 0, (int)n,
			   MPI_INT64_T, MPI_SUM, w.w);
	MPI_Win_flush(0, w.w);
	MPI_Win_unlock_all(w.w);
	if (me == 0)
		all = malloc(n * np * 8);
	MPI_Gather(old, (int)n, MPI_INT64_T, all, (int)n, MPI_INT64_T, 0, MPI_COMM_WORLD);
	MPI_Barrier(MPI_COMM_WORLD);
	if (me == 0) {
		char *seen = calloc(np, 1);

		local_begin(&w);
		for (size_t i = 0; i < n; i++) {
			if (w.base[i] != (uint64_t)np)
				bad("get_accumulate final", i, w.base[i], np);
			memset(seen, 0, np);
			for (int r = 0; r < np; r++) {
				int64_t v = all[(size_t)r * n + i];

				if (v < 0 || v >= np || seen[v]++)
					bad("get_accumulate fetched a duplicate or out of range",
					    i, (uint64_t)v, 0);
			}
		}
		local_end(&w);
		free(seen);
		free(all);
	}
	/* MPI_NO_OP: an atomic read returning the counters, all np */
	MPI_Barrier(MPI_COMM_WORLD);
	MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, w.w);
	MPI_Get_accumulate(NULL, 0, MPI_INT64_T, old, (int)n, MPI_INT64_T, 0, 0, (int)n,
			   MPI_INT64_T, MPI_NO_OP, w.w);
	MPI_Win_unlock(0, w.w);
	for (size_t i = 0; i < n; i++)
		if (old[i] != np)
			bad("get_accumulate NO_OP read", i, (uint64_t)old[i], np);
	MPI_Barrier(MPI_COMM_WORLD);
	win_close(&w);
	free(one);
	free(old);
	report("get_accumulate_sum_fetches_every_old_value_once_and_no_op_reads");
}

/* MPI_Fetch_and_op as a ticket dispenser on rank 0: np*K tickets, each
 * handed out exactly once. */
static void test_fetch_and_op(void)
{
	const int K = 200;
	struct win w;
	int64_t one = 1, *mine = malloc(K * 8), *all = NULL;

	win_open(&w, W_ALLOCATE, 1);
	local_begin(&w);
	w.base[0] = 0;
	local_end(&w);
	MPI_Barrier(MPI_COMM_WORLD);
	MPI_Win_lock_all(0, w.w);
	for (int i = 0; i < K; i++) {
		MPI_Fetch_and_op(&one, &mine[i], MPI_INT64_T, 0, 0, MPI_SUM, w.w);
		MPI_Win_flush(0, w.w);
	}
	MPI_Win_unlock_all(w.w);
	if (me == 0)
		all = malloc((size_t)K * np * 8);
	MPI_Gather(mine, K, MPI_INT64_T, all, K, MPI_INT64_T, 0, MPI_COMM_WORLD);
	MPI_Barrier(MPI_COMM_WORLD);
	if (me == 0) {
		char *seen = calloc((size_t)K * np, 1);

		for (int i = 0; i < K * np; i++)
			if (all[i] < 0 || all[i] >= (int64_t)K * np || seen[all[i]]++)
				bad("ticket duplicated or out of range", i, (uint64_t)all[i], 0);
		local_begin(&w);
		if (w.base[0] != (uint64_t)K * np)
			bad("final ticket counter", 0, w.base[0], (uint64_t)K * np);
		local_end(&w);
		free(seen);
		free(all);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	win_close(&w);
	free(mine);
	report("fetch_and_op_hands_out_every_ticket_once");
}

/*
 * MPI_Compare_and_swap as a spin lock on rank 0 guarding a plain
 * (non-atomic) counter updated with Get + Put: np*K increments, none lost.
 * Also checks that CAS returns the old value and only swaps on a match.
 */
static void test_compare_and_swap(void)
{
	const int K = 40;
	struct win w;
	int64_t zero = 0, mine_id = me + 1, old, cnt;

	win_open(&w, W_ALLOCATE, 2);	/* [0] lock word, [1] counter */
	local_begin(&w);
	w.base[0] = 0;
	w.base[1] = 0;
	local_end(&w);
	MPI_Barrier(MPI_COMM_WORLD);
	MPI_Win_lock_all(0, w.w);
	for (int i = 0; i < K; i++) {
		do {
			MPI_Compare_and_swap(&mine_id, &zero, &old, MPI_INT64_T, 0, 0, w.w);
			MPI_Win_flush(0, w.w);
		} while (old != 0);
		MPI_Get(&cnt, 1, MPI_INT64_T, 0, 1, 1, MPI_INT64_T, w.w);
		MPI_Win_flush(0, w.w);
		cnt++;
		MPI_Put(&cnt, 1, MPI_INT64_T, 0, 1, 1, MPI_INT64_T, w.w);
		MPI_Win_flush(0, w.w);
		/* release: must find our own id there */
		MPI_Compare_and_swap(&zero, &mine_id, &old, MPI_INT64_T, 0, 0, w.w);
		MPI_Win_flush(0, w.w);
		if (old != mine_id)
			bad("lock word at release", (size_t)i, (uint64_t)old, (uint64_t)mine_id);
	}
	MPI_Win_unlock_all(w.w);
	MPI_Barrier(MPI_COMM_WORLD);
	if (me == 0) {
		local_begin(&w);
		if (w.base[1] != (uint64_t)K * np)
			bad("counter under CAS lock", 1, w.base[1], (uint64_t)K * np);
		if (w.base[0] != 0)
			bad("lock word after all releases", 0, w.base[0], 0);
		local_end(&w);
	}
	/* a mismatching compare must not swap */
	MPI_Barrier(MPI_COMM_WORLD);
	if (me == 1) {
		int64_t bogus = 12345, newv = 999;

		MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, w.w);
		MPI_Compare_and_swap(&newv, &bogus, &old, MPI_INT64_T, 0, 1, w.w);
		MPI_Win_unlock(0, w.w);
		if (old != (int64_t)K * np)
			bad("CAS old value", 1, (uint64_t)old, (uint64_t)K * np);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	if (me == 0) {
		local_begin(&w);
		if (w.base[1] != (uint64_t)K * np)
			bad("mismatched CAS swapped", 1, w.base[1], (uint64_t)K * np);
		local_end(&w);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	win_close(&w);
	report("compare_and_swap_lock_protects_counter_and_mismatch_does_not_swap");
}

/* ---- point to point: UCX sends these by rendezvous --------------------- */

static void test_send_recv(void)
{
	char name[128];

	for (size_t bytes = 1u << 20; bytes <= max_elems * 8; bytes <<= 2) {
		size_t n = bytes / 8;
		uint64_t *sbuf = malloc(bytes), *rbuf = malloc(bytes + 8);
		MPI_Request rq[2];
		MPI_Status st[2];
		int test = 400 + __builtin_ctzl(bytes);

		if (!sbuf || !rbuf)
			MPI_Abort(MPI_COMM_WORLD, 2);
		fill(sbuf, n, me, test);
		rbuf[n] = SENTINEL;
		/* ring: everyone sends right and receives from the left at once */
		MPI_Irecv(rbuf, (int)n, MPI_UINT64_T, left, test, MPI_COMM_WORLD, &rq[0]);
		MPI_Isend(sbuf, (int)n, MPI_UINT64_T, right, test, MPI_COMM_WORLD, &rq[1]);
		MPI_Waitall(2, rq, st);
		check("ring", rbuf, n, left, test);
		if (rbuf[n] != SENTINEL)
			bad("beyond the message", n, rbuf[n], SENTINEL);
		/* and blocking send/recv the other way round, even ranks first */
		memset(rbuf, 0, bytes);
		if (me % 2 == 0) {
			MPI_Send(sbuf, (int)n, MPI_UINT64_T, left, test, MPI_COMM_WORLD);
			MPI_Recv(rbuf, (int)n, MPI_UINT64_T, right, test, MPI_COMM_WORLD,
				 MPI_STATUS_IGNORE);
		} else {
			MPI_Recv(rbuf, (int)n, MPI_UINT64_T, right, test, MPI_COMM_WORLD,
				 MPI_STATUS_IGNORE);
			MPI_Send(sbuf, (int)n, MPI_UINT64_T, left, test, MPI_COMM_WORLD);
		}
		check("send/recv", rbuf, n, right, test);
		free(sbuf);
		free(rbuf);
		snprintf(name, sizeof(name), "send_recv_%zuMiB_ring_and_pairs", bytes >> 20);
		report(name);
	}
}

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_size(MPI_COMM_WORLD, &np);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--max-mib") && i + 1 < argc)
			max_elems = (size_t)atoi(argv[++i]) * (1u << 20) / 8;
		else if (!strcmp(argv[i], "--tag") && i + 1 < argc)
			tag = argv[++i];
		else if (!strcmp(argv[i], "--no-fetching-rma"))
			no_fetch = 1;
		else if (!strcmp(argv[i], "--no-cas"))
			no_cas = 1;
	if (np < 2 || np % 2) {
		if (me == 0)
			printf("Bail out! needs an even number of ranks >= 2, got %d\n", np);
		MPI_Finalize();
		return 1;
	}
	left = (me + np - 1) % np;
	right = (me + 1) % np;
	if (me == 0) {
		printf("TAP version 13\n# %d ranks, largest transfer %zu MiB\n", np,
		       max_elems * 8 >> 20);
		fflush(stdout);
	}

	test_put_get_matrix();
	test_put_get_large();
	test_datatypes(W_ALLOCATE);
	test_datatypes(W_DYNAMIC);
	acc_test(W_ALLOCATE, MPI_SUM, 0, 0, 1u << 17, 500, "accumulate_sum_int64_fence");
	acc_test(W_ALLOCATE, MPI_SUM, 1, 0, 1u << 17, 501, "accumulate_sum_double_fence");
	acc_test(W_CREATE, MPI_SUM, 0, 1, 1u << 17, 502, "accumulate_sum_int64_lock_shared");
	acc_test(W_ALLOCATE, MPI_MAX, 0, 0, 1u << 17, 503, "accumulate_max_int64_fence");
	acc_test(W_DYNAMIC, MPI_MAX, 1, 1, 1u << 17, 504, "accumulate_max_double_lock_shared");
	acc_test(W_ALLOCATE, MPI_REPLACE, 0, 0, 1u << 17, 505, "accumulate_replace_int64_fence");
	acc_test(W_SHARED, MPI_REPLACE, 1, 1, 1, 506, "accumulate_replace_double_8B_lock_shared");
	if (no_fetch) {
		skip("get_accumulate_sum_fetches_every_old_value_once_and_no_op_reads", fetch_why);
		skip("fetch_and_op_hands_out_every_ticket_once", fetch_why);
		skip("compare_and_swap_lock_protects_counter_and_mismatch_does_not_swap", fetch_why);
	} else {
		test_get_accumulate();
		test_fetch_and_op();
		if (no_cas)
			skip("compare_and_swap_lock_protects_counter_and_mismatch_does_not_swap",
			     "compare-and-swap not run (--no-cas)");
		else
			test_compare_and_swap();
	}
	test_send_recv();

	if (me == 0) {
		printf("1..%d\n# %d passed, %d failed, %d skipped\n", ntests,
		       ntests - nfailed - nskipped, nfailed, nskipped);
		fflush(stdout);
	}
	MPI_Finalize();
	return nfailed ? 1 : 0;
}
