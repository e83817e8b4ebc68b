// SPDX-License-Identifier: GPL-2.0
/*
 * shmem_ops.c - OpenSHMEM (Open MPI's oshmem, spml ucx) one-sided and
 * collective operations on the symmetric heap, every result checked
 * against a value computed independently (a pattern function of origin
 * PE, test and element index, never the data path under test).
 *
 * Run with any number of PEs >= 2 (oshrun -n 2/4/8).  PE 0 prints TAP;
 * every test is collective and ends with report(): each PE puts its error
 * count into its own slot of that test on PE 0 (pre-set to -1, so a count
 * that never arrived fails the test too), so a wrong element on any PE
 * fails the test by name, with the first bad element of each PE as a
 * diagnostic.
 *
 * OpenSHMEM 1.4 (Open MPI 4.1.4) has no put-with-signal; the signal tests
 * put the data, shmem_fence, then put (or atomically add to) a flag the
 * target waits on with shmem_long_wait_until.
 *
 * Usage: shmem_ops [--max-kib N] [--iters N] [--tag SUFFIX] [--no-nbi]
 *   --max-kib     largest put/get in KiB (default 4096: 8 B .. 4 MiB)
 *   --iters       rounds of the atomics, lock and signal tests (default 32)
 *   --tag         appended to every test name (the runner tells runs apart)
 *   --no-nbi      report the four put_nbi/get_nbi tests as SKIP: for the run
 *                 over UCX's posix + cma, where Open MPI 4.1.4's spml ucx
 *                 over UCX 1.13.1 sometimes returns from shmem_quiet before
 *                 the last non-blocking put or get landed, with no xpmem
 *                 loaded at all (docs/testing.md, "OpenSHMEM suite")
 */
#include <shmem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int me, np, right, left;
static int ntests, nfailed, nskipped;
static const char *tag = "";
static size_t max_bytes = 4u << 20;
static int iters = 32;
static int no_nbi;

/* ---- the independent oracle ---------------------------------------------- */

static uint64_t pat(int pe, int test, size_t i)
{
	uint64_t x = ((uint64_t)pe << 48) ^ ((uint64_t)test << 32) ^ i;

	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	x ^= x >> 33;
	return x | 1;	/* never 0, so a zeroed page is always wrong */
}

/* the pattern stream of (pe, test) as bytes: element i's little-endian
 * bytes, so sizes that are not multiples of 8 are checked byte-exactly */
static void fill_bytes(void *p, size_t n, int pe, int test)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		uint64_t v = pat(pe, test, i / 8);

		memcpy(b + i, &v, 8);
	}
	for (; i < n; i++)
		b[i] = (uint8_t)(pat(pe, test, i / 8) >> (8 * (i % 8)));
}

static long errors;	/* this PE's errors in the current test */

static void bad(const char *what, size_t i, uint64_t got, uint64_t want)
{
	if (errors++ == 0) {
		printf("# pe %d: %s: element %zu is %#llx, want %#llx\n", me, what, i,
		       (unsigned long long)got, (unsigned long long)want);
		fflush(stdout);
	}
}

static void check_bytes(const char *what, const void *p, size_t n, int pe, int test)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t want = pat(pe, test, i / 8);

		for (size_t j = i; j < i + 8 && j < n; j++)
			if (b[j] != (uint8_t)(want >> (8 * (j % 8)))) {
				bad(what, j, b[j], (uint8_t)(want >> (8 * (j % 8))));
				return;
			}
	}
}

#define SENTINEL 0x5e5e5e5e5e5e5e5eULL

/* ---- reporting ------------------------------------------------------------ */

#define MAX_TESTS 128
static long *errslot;	/* symmetric, MAX_TESTS x np slots: used on PE 0 */

/* every PE's error count into its slot of this test on PE 0 (pre-set to
 * -1 there), then one barrier: PE 0 reads them all */
static void report(const char *name)
{
	long total = 0, missing = 0, *slot;

	fflush(stdout);
	if (ntests >= MAX_TESTS)
		shmem_global_exit(3);
	slot = errslot + (size_t)ntests * np;
	shmem_long_p(&slot[me], errors, 0);
	shmem_quiet();
	shmem_barrier_all();
	ntests++;
	if (me == 0) {
		for (int i = 0; i < np; i++) {
			if (slot[i] < 0)
				missing++;
			else
				total += slot[i];
		}
		if (total || missing)
			nfailed++;
		if (missing)
			printf("# %ld PEs' error counts never arrived\n", missing);
		printf("%sok %d %s%s\n", total || missing ? "not " : "", ntests, name, tag);
		fflush(stdout);
	} else if (errors) {
		nfailed++;	/* for our own exit status */
	}
	errors = 0;
}

static void skip(const char *name, const char *why)
{
	ntests++;
	nskipped++;
	if (me == 0) {
		printf("ok %d %s%s # SKIP %s\n", ntests, name, tag, why);
		fflush(stdout);
	}
}

/* ---- symmetric buffers ---------------------------------------------------- */

static uint64_t *sdst, *ssrc;	/* max_bytes each, symmetric */
static uint64_t *priv;		/* max_bytes, private */
static long *psync;		/* SHMEM_SYNC_SIZE, symmetric */
static long *pwrk;		/* work array for reductions, symmetric */
static size_t pwrk_elems;

static void psync_reset(void)
{
	for (int i = 0; i < SHMEM_SYNC_SIZE; i++)
		psync[i] = SHMEM_SYNC_VALUE;
	shmem_barrier_all();
}

static const char *size_name(size_t b, char *buf, size_t len)
{
	if (b >= (1u << 20) && b % (1u << 20) == 0)
		snprintf(buf, len, "%zuMiB", b >> 20);
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(buf, len, "%zuKiB", b >> 10);
	else
		snprintf(buf, len, "%zuB", b);
	return buf;
}

/* ---- put / get ------------------------------------------------------------ */

/* shmem_putmem of @bytes into the right neighbour; the left one's arrives */
static void test_put(size_t bytes, int test)
{
	char sz[32], name[96];

	fill_bytes(priv, bytes, me, test);
	memset(sdst, 0x5e, bytes + 64);	/* guard bytes past the put */
	shmem_barrier_all();
	shmem_putmem(sdst, priv, bytes, right);
	shmem_barrier_all();	/* completes the puts (quiet) and orders them */
	check_bytes("putmem from the left", sdst, bytes, left, test);
	for (size_t i = bytes; i < bytes + 64; i++)
		if (((uint8_t *)sdst)[i] != 0x5e) {
			bad("byte past the put", i, ((uint8_t *)sdst)[i], 0x5e);
			break;
		}
	snprintf(name, sizeof(name), "putmem_%s_to_right_neighbour",
		 size_name(bytes, sz, sizeof(sz)));
	report(name);
}

/* shmem_getmem of @bytes from the right neighbour's symmetric buffer */
static void test_get(size_t bytes, int test)
{
	char sz[32], name[96];

	fill_bytes(ssrc, bytes, me, test);
	memset(priv, 0x5e, bytes);
	shmem_barrier_all();
	shmem_getmem(priv, ssrc, bytes, right);
	check_bytes("getmem from the right", priv, bytes, right, test);
	snprintf(name, sizeof(name), "getmem_%s_from_right_neighbour",
		 size_name(bytes, sz, sizeof(sz)));
	report(name);
}

/* typed single-element put/get (shmem_long_p / shmem_long_g) with every PE */
static void test_p_g_all_pairs(void)
{
	const int test = 40;

	for (int i = 0; i < np; i++)
		sdst[i] = SENTINEL;
	shmem_barrier_all();
	for (int k = 0; k < np; k++)
		shmem_long_p((long *)&sdst[me], (long)pat(me, test, k), k);
	shmem_barrier_all();
	for (int i = 0; i < np; i++)
		if (sdst[i] != pat(i, test, me))
			bad("shmem_long_p from every PE", i, sdst[i], pat(i, test, me));
	for (int k = 0; k < np; k++) {
		uint64_t got = (uint64_t)shmem_long_g((long *)&sdst[k], k);

		if (got != pat(k, test, k))
			bad("shmem_long_g from every PE", k, got, pat(k, test, k));
	}
	report("long_p_and_long_g_between_every_pair");
}

/* every PE puts a block into its own slot of every PE's buffer */
static void test_put_all_pairs(size_t bytes, int test)
{
	char sz[32], name[96];
	size_t n = bytes / 8;

	if ((size_t)np * bytes > max_bytes)
		return;
	for (size_t i = 0; i < n; i++)
		priv[i] = pat(me, test, i);
	for (size_t i = 0; i < n * np; i++)
		sdst[i] = SENTINEL;
	shmem_barrier_all();
	for (int k = 1; k <= np; k++)
		shmem_putmem(sdst + (size_t)me * n, priv, bytes, (me + k) % np);
	shmem_barrier_all();
	for (int j = 0; j < np; j++)
		for (size_t i = 0; i < n; i++)
			if (sdst[(size_t)j * n + i] != pat(j, test, i)) {
				bad("block from every PE", (size_t)j * n + i,
				    sdst[(size_t)j * n + i], pat(j, test, i));
				break;
			}
	snprintf(name, sizeof(name), "putmem_%s_between_every_pair",
		 size_name(bytes, sz, sizeof(sz)));
	report(name);
}

/* strided: shmem_iput64 (target stride 3, source stride 2) and shmem_iget64 */
static void test_iput_iget(size_t n, int test)
{
	char name[96];
	size_t span = 3 * n;

	if (span * 8 > max_bytes || 2 * n * 8 > max_bytes)
		n = max_bytes / 8 / 3, span = 3 * n;
	for (size_t i = 0; i < 2 * n; i++)
		priv[i] = (i % 2) ? SENTINEL : pat(me, test, i / 2);
	for (size_t i = 0; i < span; i++)
		sdst[i] = SENTINEL;
	shmem_barrier_all();
	shmem_iput64(sdst, priv, 3, 2, n, right);
	shmem_barrier_all();
	for (size_t i = 0; i < span; i++) {
		uint64_t want = (i % 3) ? SENTINEL : pat(left, test, i / 3);

		if (sdst[i] != want) {
			bad("iput64 stride 3 <- 2 from the left", i, sdst[i], want);
			break;
		}
	}
	snprintf(name, sizeof(name), "iput64_%zu_elements_strided_to_right_neighbour", n);
	report(name);

	/* iget: every 3rd element of the right neighbour's source, packed */
	for (size_t i = 0; i < span; i++)
		ssrc[i] = (i % 3) ? SENTINEL : pat(me, test + 1, i / 3);
	for (size_t i = 0; i < n + 8; i++)
		priv[i] = 0;
	shmem_barrier_all();
	shmem_iget64(priv, ssrc, 1, 3, n, right);
	for (size_t i = 0; i < n; i++)
		if (priv[i] != pat(right, test + 1, i)) {
			bad("iget64 stride 1 <- 3 from the right", i, priv[i], pat(right, test + 1, i));
			break;
		}
	for (size_t i = n; i < n + 8; i++)
		if (priv[i] != 0) {
			bad("element past the iget", i, priv[i], 0);
			break;
		}
	snprintf(name, sizeof(name), "iget64_%zu_elements_strided_from_right_neighbour", n);
	report(name);
}

/* non-blocking: @chunks put_nbi / get_nbi of @bytes each, one shmem_quiet */
static void test_nbi(size_t bytes, int chunks, int test)
{
	char sz[32], name[96];
	size_t n = bytes / 8;

	if ((size_t)chunks * bytes > max_bytes)
		chunks = (int)(max_bytes / bytes);
	if (no_nbi) {
		snprintf(name, sizeof(name), "put_nbi_%dx%s_then_quiet", chunks,
			 size_name(bytes, sz, sizeof(sz)));
		skip(name, "nbi not run (--no-nbi)");
		snprintf(name, sizeof(name), "get_nbi_%dx%s_then_quiet", chunks,
			 size_name(bytes, sz, sizeof(sz)));
		skip(name, "nbi not run (--no-nbi)");
		return;
	}
	for (size_t i = 0; i < n * chunks; i++)
		priv[i] = pat(me, test, i);
	for (size_t i = 0; i < n * chunks; i++)
		sdst[i] = SENTINEL;
	shmem_barrier_all();
	/* backwards, so a "complete in order" shortcut would not hide a loss */
	for (int c = chunks - 1; c >= 0; c--)
		shmem_putmem_nbi(sdst + (size_t)c * n, priv + (size_t)c * n, bytes, right);
	shmem_quiet();
	shmem_barrier_all();
	for (size_t i = 0; i < n * chunks; i++)
		if (sdst[i] != pat(left, test, i)) {
			bad("put_nbi from the left", i, sdst[i], pat(left, test, i));
			break;
		}
	snprintf(name, sizeof(name), "put_nbi_%dx%s_then_quiet", chunks,
		 size_name(bytes, sz, sizeof(sz)));
	report(name);

	snprintf(name, sizeof(name), "get_nbi_%dx%s_then_quiet", chunks,
		 size_name(bytes, sz, sizeof(sz)));
	for (size_t i = 0; i < n * chunks; i++)
		ssrc[i] = pat(me, test + 1, i);
	for (size_t i = 0; i < n * chunks; i++)
		priv[i] = SENTINEL;
	shmem_barrier_all();
	for (int c = chunks - 1; c >= 0; c--)
		shmem_getmem_nbi(priv + (size_t)c * n, ssrc + (size_t)c * n, bytes, right);
	shmem_quiet();
	for (size_t i = 0; i < n * chunks; i++)
		if (priv[i] != pat(right, test + 1, i)) {
			bad("get_nbi from the right", i, priv[i], pat(right, test + 1, i));
			break;
		}
	report(name);
}

/* ---- atomics -------------------------------------------------------------- */

static long *counter, *owner, *tickets;	/* symmetric */

/* every PE fetch-adds 1 @iters times on the last PE's counter: every
 * ticket 0 .. np*iters-1 handed out exactly once, the counter ends there */
static void test_fetch_add(void)
{
	const int target = np - 1;
	long total = (long)np * iters;

	*counter = 0;
	shmem_barrier_all();
	for (int i = 0; i < iters; i++)
		priv[i] = (uint64_t)shmem_long_atomic_fetch_add(counter, 1, target);
	shmem_putmem(tickets + (size_t)me * iters, priv, (size_t)iters * 8, 0);
	shmem_barrier_all();
	if (me == target && *counter != total)
		bad("counter after every fetch-add", 0, (uint64_t)*counter, (uint64_t)total);
	if (me == 0) {
		char *seen = calloc((size_t)total, 1);

		for (long i = 0; i < total; i++) {
			long t = tickets[i];

			if (t < 0 || t >= total || seen[t]++) {
				bad("ticket handed out twice or out of range", (size_t)i,
				    (uint64_t)t, 0);
				break;
			}
		}
		free(seen);
	}
	report("atomic_fetch_add_hands_out_every_ticket_once");
}

/* one compare-and-swap winner; a counter incremented by CAS retry loops;
 * a mismatching compare does not swap */
static void test_compare_swap(void)
{
	const int target = np - 1;
	long old, v;

	*owner = 0;
	*counter = 0;
	shmem_barrier_all();
	old = shmem_long_atomic_compare_swap(owner, 0, me + 1, 0);
	shmem_barrier_all();
	v = shmem_long_g(owner, 0);
	if (v < 1 || v > np)
		bad("owner after the race", 0, (uint64_t)v, 1);
	if ((old == 0) != (v == me + 1))
		bad("compare-swap: I won iff the owner is me", 0, (uint64_t)old, 0);
	/* exactly one winner: every PE adds 1 to PE 0's tickets[0] if it won */
	tickets[0] = 0;
	shmem_barrier_all();
	if (old == 0)
		shmem_long_atomic_add(tickets, 1, 0);
	shmem_barrier_all();
	if (me == 0 && tickets[0] != 1)
		bad("compare-swap winners", 0, (uint64_t)tickets[0], 1);
	report("atomic_compare_swap_has_exactly_one_winner");

	for (int i = 0; i < iters; i++) {
		long cur = shmem_long_atomic_fetch(counter, target);

		for (;;) {
			long seen = shmem_long_atomic_compare_swap(counter, cur, cur + 1, target);

			if (seen == cur)
				break;
			cur = seen;
		}
	}
	/* a compare that cannot match leaves the counter alone */
	v = shmem_long_atomic_compare_swap(counter, -12345, 777, target);
	if (v == -12345)
		bad("mismatching compare swapped", 0, (uint64_t)v, 0);
	shmem_barrier_all();
	if (me == target && *counter != (long)np * iters)
		bad("counter after CAS loops", 0, (uint64_t)*counter, (uint64_t)np * iters);
	report("atomic_compare_swap_loop_counts_every_increment");
}

/* every PE swaps its id into PE 0's slot: the old values and the final one
 * are the initial 0 and every id, each exactly once */
static void test_swap(void)
{
	long got;

	if (me == 0)
		*owner = 0;
	shmem_barrier_all();
	got = shmem_long_atomic_swap(owner, me + 1, 0);
	shmem_long_p(tickets + me, got, 0);
	shmem_barrier_all();
	if (me == 0) {
		char *seen = calloc((size_t)np + 1, 1);
		long final = *owner;

		for (int i = 0; i <= np; i++) {
			long v = i < np ? tickets[i] : final;

			if (v < 0 || v > np || seen[v]++) {
				bad("swap chain value twice or out of range", (size_t)i,
				    (uint64_t)v, 0);
				break;
			}
		}
		free(seen);
	}
	report("atomic_swap_chain_is_a_permutation");
}

/* ---- signals (put, fence, flag) and wait_until ---------------------------- */

static long *flag;	/* symmetric */

static void test_put_signal(size_t bytes, int test)
{
	char sz[32], name[96];
	size_t n = bytes / 8;

	*flag = 0;
	shmem_barrier_all();
	for (int r = 1; r <= iters; r++) {
		for (size_t i = 0; i < n; i++)
			priv[i] = pat(me, test + r, i);
		/* the left neighbour reads our buffer before we see our flag
		 * bumped again: a ring, one round in flight per PE */
		shmem_putmem(sdst + (size_t)(r % 2) * n, priv, bytes, right);
		shmem_fence();	/* data before the flag */
		shmem_long_p(flag, r, right);
		shmem_long_wait_until(flag, SHMEM_CMP_GE, r);
		for (size_t i = 0; i < n; i++)
			if (sdst[(size_t)(r % 2) * n + i] != pat(left, test + r, i)) {
				bad("data behind the flag", i, sdst[(size_t)(r % 2) * n + i],
				    pat(left, test + r, i));
				break;
			}
		/* keep rounds in step: the next put reuses the other half */
		shmem_barrier_all();
	}
	snprintf(name, sizeof(name), "put_%s_fence_flag_wait_until_sees_the_data",
		 size_name(bytes, sz, sizeof(sz)));
	report(name);
}

/* every other PE atomically adds to PE 0's flag; PE 0 waits for the sum */
static void test_wait_until_atomic(void)
{
	*flag = 0;
	shmem_barrier_all();
	if (me != 0) {
		for (int i = 0; i < iters; i++)
			shmem_long_atomic_add(flag, 1, 0);
	} else {
		long want = (long)(np - 1) * iters;

		shmem_long_wait_until(flag, SHMEM_CMP_EQ, want);
		if (*flag != want)
			bad("flag after wait_until", 0, (uint64_t)*flag, (uint64_t)want);
	}
	shmem_barrier_all();
	report("wait_until_sees_atomic_adds_from_every_pe");
}

/* ---- barrier and collectives ---------------------------------------------- */

static void test_barrier(void)
{
	for (int r = 1; r <= iters; r++) {
		for (int k = 0; k < np; k++)
			shmem_long_p((long *)&sdst[me], r, k);
		shmem_barrier_all();	/* completes every PE's puts */
		for (int i = 0; i < np; i++)
			if (sdst[i] != (uint64_t)r) {
				bad("slot after the barrier", (size_t)i, sdst[i], (uint64_t)r);
				break;
			}
		shmem_barrier_all();	/* nobody writes round r+1 before all read r */
	}
	report("barrier_all_completes_every_pes_puts");
}

static void test_broadcast(size_t n, int test)
{
	char name[96];
	const int root = np - 1;

	for (size_t i = 0; i < n; i++) {
		ssrc[i] = pat(me, test, i);
		sdst[i] = SENTINEL;
	}
	psync_reset();
	shmem_broadcast64(sdst, ssrc, n, root, 0, 0, np, psync);
	shmem_barrier_all();
	if (me != root) {	/* the root's target is not written (spec) */
		for (size_t i = 0; i < n; i++)
			if (sdst[i] != pat(root, test, i)) {
				bad("broadcast from the last PE", i, sdst[i], pat(root, test, i));
				break;
			}
	}
	snprintf(name, sizeof(name), "broadcast64_%zu_elements_from_last_pe", n);
	report(name);
}

/* element i of PE p's contribution: small, so sums do not overflow */
static long rval(int p, size_t i, int test)
{
	return (long)(pat(p, test, i) % 1000003) - 500000;
}

static void test_reduce(size_t n, int test)
{
	char name[96];
	long *src = (long *)ssrc, *dst = (long *)sdst;
	static const char *const ops[] = { "sum", "max", "min", "and", "xor" };

	if (n / 2 + 1 > pwrk_elems)
		n = (pwrk_elems - 1) * 2;
	for (int op = 0; op < 5; op++) {
		for (size_t i = 0; i < n; i++) {
			src[i] = rval(me, i, test + op);
			dst[i] = (long)SENTINEL;
		}
		psync_reset();
		switch (op) {
		case 0: shmem_long_sum_to_all(dst, src, (int)n, 0, 0, np, pwrk, psync); break;
		case 1: shmem_long_max_to_all(dst, src, (int)n, 0, 0, np, pwrk, psync); break;
		case 2: shmem_long_min_to_all(dst, src, (int)n, 0, 0, np, pwrk, psync); break;
		case 3: shmem_long_and_to_all(dst, src, (int)n, 0, 0, np, pwrk, psync); break;
		case 4: shmem_long_xor_to_all(dst, src, (int)n, 0, 0, np, pwrk, psync); break;
		}
		for (size_t i = 0; i < n; i++) {
			long want = rval(0, i, test + op);

			for (int p = 1; p < np; p++) {
				long v = rval(p, i, test + op);

				switch (op) {
				case 0: want += v; break;
				case 1: want = v > want ? v : want; break;
				case 2: want = v < want ? v : want; break;
				case 3: want &= v; break;
				case 4: want ^= v; break;
				}
			}
			if (dst[i] != want) {
				bad(ops[op], i, (uint64_t)dst[i], (uint64_t)want);
				break;
			}
		}
		shmem_barrier_all();
		snprintf(name, sizeof(name), "long_%s_to_all_%zu_elements", ops[op], n);
		report(name);
	}
}

static void test_alltoall(size_t n, int test)
{
	char name[96];

	if ((size_t)np * n * 8 > max_bytes)
		n = max_bytes / 8 / np;
	for (int j = 0; j < np; j++)
		for (size_t i = 0; i < n; i++) {
			/* the block for PE j */
			ssrc[(size_t)j * n + i] = pat(me, test, (size_t)j * n + i);
			sdst[(size_t)j * n + i] = SENTINEL;
		}
	psync_reset();
	shmem_alltoall64(sdst, ssrc, n, 0, 0, np, psync);
	shmem_barrier_all();
	for (int j = 0; j < np; j++)
		for (size_t i = 0; i < n; i++)
			if (sdst[(size_t)j * n + i] != pat(j, test, (size_t)me * n + i)) {
				bad("alltoall block from PE j", (size_t)j * n + i,
				    sdst[(size_t)j * n + i], pat(j, test, (size_t)me * n + i));
				j = np;
				break;
			}
	snprintf(name, sizeof(name), "alltoall64_%zu_elements_per_pe", n);
	report(name);
}

/* ---- distributed lock ----------------------------------------------------- */

static long *lock;	/* symmetric, zeroed */

static void test_lock(void)
{
	const int target = np - 1;
	long inside = 0;

	*counter = 0;
	*flag = 0;
	shmem_barrier_all();
	for (int i = 0; i < iters; i++) {
		long c;

		shmem_set_lock(lock);
		/* a non-atomic read-modify-write: only the lock makes it safe;
		 * flag counts PEs inside (must be 0 on entry) */
		if (shmem_long_atomic_fetch_add(flag, 1, 0) != 0)
			inside++;
		c = shmem_long_g(counter, target);
		shmem_long_p(counter, c + 1, target);
		shmem_quiet();
		shmem_long_atomic_add(flag, -1, 0);
		shmem_quiet();
		shmem_clear_lock(lock);
	}
	if (inside)
		bad("another PE was inside the critical section", 0, (uint64_t)inside, 0);
	shmem_barrier_all();
	if (me == target && *counter != (long)np * iters)
		bad("counter after locked increments", 0, (uint64_t)*counter,
		    (uint64_t)np * iters);
	report("set_lock_serialises_read_modify_write");

	/* test_lock: PE 0 holds it, the others must fail to take it */
	if (me == 0)
		shmem_set_lock(lock);
	shmem_barrier_all();
	if (me != 0 && shmem_test_lock(lock) == 0) {
		bad("test_lock took a held lock", 0, 1, 0);
		shmem_clear_lock(lock);
	}
	shmem_barrier_all();
	if (me == 0)
		shmem_clear_lock(lock);
	shmem_barrier_all();
	/* released: exactly one PE at a time gets it by test_lock */
	while (shmem_test_lock(lock) != 0)
		;
	shmem_clear_lock(lock);
	report("test_lock_fails_on_a_held_lock_and_takes_a_free_one");
}

int main(int argc, char **argv)
{
	int test = 100;
	size_t k;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--max-kib") && i + 1 < argc)
			max_bytes = (size_t)atol(argv[++i]) << 10;
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tag") && i + 1 < argc)
			tag = argv[++i];
		else if (!strcmp(argv[i], "--no-nbi"))
			no_nbi = 1;
		else {
			fprintf(stderr, "usage: %s [--max-kib N] [--iters N] [--tag S] [--no-nbi]\n",
				argv[0]);
			return 2;
		}
	}
	if (max_bytes < 64 * 1024)
		max_bytes = 64 * 1024;
	if (iters < 1)
		iters = 1;

	shmem_init();
	me = shmem_my_pe();
	np = shmem_n_pes();
	right = (me + 1) % np;
	left = (me + np - 1) % np;
	if (np < 2) {
		printf("1..0 # SKIP needs 2 or more PEs\n");
		shmem_finalize();
		return 0;
	}

	/* + 64: the guard bytes past the largest put */
	sdst = shmem_malloc(max_bytes + 64);
	ssrc = shmem_malloc(max_bytes + 64);
	errslot = shmem_malloc((size_t)MAX_TESTS * np * sizeof(long));
	psync = shmem_malloc(SHMEM_SYNC_SIZE * sizeof(long));
	pwrk_elems = 4096 / 2 + 1 + SHMEM_REDUCE_MIN_WRKDATA_SIZE;
	pwrk = shmem_malloc(pwrk_elems * sizeof(long));
	counter = shmem_calloc(1, sizeof(long));
	owner = shmem_calloc(1, sizeof(long));
	flag = shmem_calloc(1, sizeof(long));
	lock = shmem_calloc(1, sizeof(long));
	tickets = shmem_calloc((size_t)np * (iters > np ? iters : np) + 1, sizeof(long));
	priv = malloc(max_bytes + 64);
	if (!sdst || !ssrc || !errslot || !psync || !pwrk || !counter || !owner ||
	    !flag || !lock || !tickets || !priv) {
		fprintf(stderr, "pe %d: out of symmetric memory\n", me);
		shmem_global_exit(2);
	}
	for (size_t i = 0; i < (size_t)MAX_TESTS * np; i++)
		errslot[i] = -1;
	if (me == 0) {
		printf("# %d PEs, puts and gets 8 B .. %zu KiB, %d rounds\n", np,
		       max_bytes >> 10, iters);
		fflush(stdout);
	}
	shmem_barrier_all();

	/* every size class: short (8 B, 64 B), bcopy (512 B .. 64 KiB), large */
	for (k = 8; k <= max_bytes; k *= 8) {
		test_put(k, test++);
		test_get(k, test++);
	}
	if (k / 8 != max_bytes) {	/* the largest too, when not a power of 8 */
		test_put(max_bytes, test++);
		test_get(max_bytes, test++);
	}
	test_put(4095, test++);		/* odd sizes, unaligned tail */
	test_get(12345, test++);
	test_p_g_all_pairs();
	test_put_all_pairs(64 * 1024, test++);
	test_iput_iget(4096, test);
	test += 2;
	test_nbi(64 * 1024, 16, test);
	test += 2;
	test_nbi(8, 64, test);
	test += 2;
	test_fetch_add();
	test_compare_swap();
	test_swap();
	test_put_signal(8, test);
	test += iters + 1;
	test_put_signal(64 * 1024, test);
	test += iters + 1;
	test_wait_until_atomic();
	test_barrier();
	test_broadcast(1, test++);
	test_broadcast(64 * 1024, test++);
	test_reduce(1, test);
	test += 5;
	test_reduce(4096, test);
	test += 5;
	test_alltoall(1, test++);
	test_alltoall(16 * 1024, test++);
	test_lock();

	if (me == 0) {
		printf("1..%d\n# %d passed, %d failed, %d skipped\n", ntests,
		       ntests - nfailed - nskipped, nfailed, nskipped);
		fflush(stdout);
	}
	shmem_barrier_all();
	shmem_finalize();
	return nfailed ? 1 : 0;
}
