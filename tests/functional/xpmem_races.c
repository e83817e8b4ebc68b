// SPDX-License-Identifier: GPL-2.0
/*
 * Races on one object and the kernel's other paths, one test per bug class
 * found in the driver (each was shown to crash or hang the driver it was
 * written against; docs/testing.md).  Every loop is bounded by a count of
 * operations, and its time limit scales with the guest (tap.h).
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "dstate.h"
#include "tap.h"
#include "testlib.h"
#include "xpmem.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_mrelease
#define SYS_process_mrelease 448
#endif

static size_t PG;

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ---- ->flush of the descriptor against make/remove and get/release ------------ */

static int g_fd;
static volatile int g_stop;
static char *g_buf;

static void *close_dup_loop(void *arg)
{
	long *n = arg;

	while (!g_stop) {
		int d = dup(g_fd);

		if (d >= 0)
			close(d);	/* ->flush: drops what this thread group made */
		(*n)++;
	}
	return NULL;
}

static int make(int fd, void *p, size_t len, xpmem_segid_t *segid)
{
	struct xpmem_cmd_make c = {
		.vaddr = (uintptr_t)p, .size = len,
		.permit_type = XPMEM_PERMIT_MODE, .permit_value = 0600,
	};
	int r = ioctl(fd, XPMEM_CMD_MAKE, &c);

	*segid = c.segid;
	return r;
}

static int remove_seg(int fd, xpmem_segid_t segid)
{
	struct xpmem_cmd_remove c = { .segid = segid };

	return ioctl(fd, XPMEM_CMD_REMOVE, &c);
}

/*
 * One thread makes and removes a 1 MiB segment in a loop while another
 * closes duplicates of the same descriptor.  The driver published the
 * segment on the file's list before its id, and took "on some list" for
 * "still mine": a flush in between destroyed it under the maker and a
 * remove destroyed it twice (list_del corruption, use-after-free).
 */
static int t_make_remove_race_close_dup_of_the_descriptor(void)
{
	const long rounds = 20000;
	long closes = 0, made = 0, enoent = 0;
	pthread_t t;

	g_fd = open(XPMEM_DEV_PATH, O_RDWR);
	FAIL_IF(g_fd < 0, "open: %s", strerror(errno));
	g_buf = map_anon(1 << 20);
	g_stop = 0;
	pthread_create(&t, NULL, close_dup_loop, &closes);
	for (long i = 0; i < rounds; i++) {
		xpmem_segid_t s;

		if (make(g_fd, g_buf, 1 << 20, &s))
			continue;
		made++;
		if (remove_seg(g_fd, s)) {
			FAIL_IF(errno != ENOENT, "remove: %s", strerror(errno));
			enoent++;	/* the flush ended it first */
		}
	}
	g_stop = 1;
	pthread_join(t, NULL);
	tap_diag("%ld segments made and ended, %ld by a flush first, %ld close(dup) meanwhile",
		 made, enoent, closes);
	FAIL_IF(made < rounds / 2 || closes < 100, "too little racing: %ld made, %ld closes", made, closes);
	close(g_fd);
	return live_counters_settle();
}

/* the same with permits: get/release against close(dup(fd)) */
static int t_get_release_race_close_dup_of_the_descriptor(void)
{
	const long rounds = 20000;
	long closes = 0, got = 0;
	xpmem_segid_t seg;
	pthread_t t;
	int own;

	/* the segment lives on another descriptor: only the permits race */
	own = open(XPMEM_DEV_PATH, O_RDWR);
	g_fd = open(XPMEM_DEV_PATH, O_RDWR);
	FAIL_IF(own < 0 || g_fd < 0, "open");
	g_buf = map_anon(1 << 20);
	FAIL_IF(make(own, g_buf, 1 << 20, &seg), "make: %s", strerror(errno));
	g_stop = 0;
	pthread_create(&t, NULL, close_dup_loop, &closes);
	for (long i = 0; i < rounds; i++) {
		struct xpmem_cmd_get g = { .segid = seg, .flags = XPMEM_RDWR,
					   .permit_type = XPMEM_PERMIT_MODE };
		struct xpmem_cmd_release r = { 0 };

		if (ioctl(g_fd, XPMEM_CMD_GET, &g))
			continue;
		got++;
		r.apid = g.apid;
		if (ioctl(g_fd, XPMEM_CMD_RELEASE, &r))
			FAIL_IF(errno != ENOENT, "release: %s", strerror(errno));
	}
	g_stop = 1;
	pthread_join(t, NULL);
	tap_diag("%ld permits got and ended, %ld close(dup) meanwhile", got, closes);
	FAIL_IF(got < rounds / 2 || closes < 100, "too little racing: %ld got, %ld closes", got, closes);
	FAIL_IF(remove_seg(own, seg), "remove");
	close(g_fd);
	close(own);
	return live_counters_settle();
}

/* remove by id from one thread while another makes, and a third flushes */
static void *remove_by_board_loop(void *arg)
{
	volatile xpmem_segid_t *board = arg;

	while (!g_stop) {
		xpmem_segid_t s = board[0];

		if (s > 0)
			remove_seg(g_fd, s);
	}
	return NULL;
}

static int t_remove_race_remove_and_flush_of_one_segment(void)
{
	static volatile xpmem_segid_t board[1];
	long closes = 0, made = 0;
	pthread_t t1, t2;

	g_fd = open(XPMEM_DEV_PATH, O_RDWR);
	FAIL_IF(g_fd < 0, "open");
	g_buf = map_anon(1 << 20);
	g_stop = 0;
	pthread_create(&t1, NULL, close_dup_loop, &closes);
	pthread_create(&t2, NULL, remove_by_board_loop, (void *)board);
	for (long i = 0; i < 20000; i++) {
		xpmem_segid_t s;

		if (make(g_fd, g_buf, 1 << 20, &s))
			continue;
		made++;
		board[0] = s;
		remove_seg(g_fd, s);	/* three ways to end it at once */
	}
	g_stop = 1;
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	tap_diag("%ld segments, each ended by a remove, a second remove or a flush", made);
	FAIL_IF(made < 10000, "too little racing: %ld made", made);
	close(g_fd);
	return live_counters_settle();
}

/* ---- process_mrelease: the non-blocking invalidation path ---------------------- */

/*
 * An exporter is SIGKILLed while another process has its segment attached
 * and keeps touching it; its parent reaps its memory at once with
 * process_mrelease(), which invalidates without blocking.  The driver's
 * notifier returned -EAGAIN from a start that had an end callback (the
 * core WARNs, then calls that end for a start that failed) and its
 * sequence ended a period it never opened.  The attacher must get SIGBUS
 * (or its data), never anything else, and the non-blocking path must have
 * been taken.
 */
static int exporter(int in, int out, void *arg)
{
	size_t len = 4 << 20;
	char *p = map_anon(len);
	xpmem_segid_t s;

	(void)in;
	(void)arg;
	memset(p, 0x5a, len);
	s = xpmem_make(p, len, XPMEM_PERMIT_MODE, (void *)0600);
	chan_send(out, s);
	for (;;)
		pause();
	return 0;
}

/*
 * The attachers below tell the test they are ready with 1, and exit 0 if
 * what they saw after the exporter died was right.
 */
static int toucher(int in, int out, void *arg)
{
	xpmem_segid_t s = *(xpmem_segid_t *)arg;
	xpmem_apid_t a = xpmem_get(s, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	struct xpmem_addr addr = { .apid = a };
	volatile char *p = a > 0 ? xpmem_attach(addr, 4 << 20, NULL) : (void *)-1;
	long v;

	(void)in;
	if (p == (void *)-1)
		return 10;
	chan_send(out, p[0] == 0x5a);	/* attached and touched */
	for (size_t i = 0;; i = (i + 4096) % (4 << 20)) {
		int sig = tap_probe((volatile long *)(p + (i & ~7UL)), 0, &v);

		if (sig == SIGBUS)
			return 0;	/* the exporter is gone */
		if (sig || (v != 0x5a5a5a5a5a5a5a5aL))
			return 11;
	}
}

/*
 * The same with an attachment its attacher never touched: the attachment
 * has nothing to take down, so the non-blocking invalidation must not
 * refuse (it did, for every attachment of the range: process_mrelease
 * said EAGAIN and the OOM reaper gave up on memory nobody had mapped).
 * The attacher touches it once the exporter is reaped: SIGBUS.
 */
static int idle_attacher(int in, int out, void *arg)
{
	xpmem_segid_t s = *(xpmem_segid_t *)arg;
	xpmem_apid_t a = xpmem_get(s, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	struct xpmem_addr addr = { .apid = a };
	volatile char *p = a > 0 ? xpmem_attach(addr, 4 << 20, NULL) : (void *)-1;
	long v;

	if (p == (void *)-1)
		return 10;
	chan_send(out, 1);	/* attached, nothing touched */
	if (chan_recv(in) != 2)
		return 13;
	return tap_probe((volatile long *)(p + (1 << 20)), 0, &v) == SIGBUS ? 0 : 12;
}

/* what process_mrelease() said over the rounds */
struct mrelease_rounds {
	int reaped;	/* 0: it dropped the whole mm */
	int again;	/* EAGAIN: something could not go without blocking */
	int gone;	/* ESRCH: exit_mmap was done already */
};

/*
 * Each round: an exporter, an attacher of its segment (@attacher), a
 * SIGKILL of the exporter and at once process_mrelease() of it; then the
 * attacher is told (2) and must exit 0.  EAGAIN is an error unless
 * @may_refuse.
 */
static int mrelease_rounds(int rounds, int (*attacher)(int, int, void *), bool may_refuse,
			   struct mrelease_rounds *said)
{
	*said = (struct mrelease_rounds){ 0 };
	for (int r = 0; r < rounds; r++) {
		struct peer ex, at;
		xpmem_segid_t s;
		int pfd, rc;

		FAIL_IF(peer_start(&ex, exporter, NULL), "exporter");
		s = peer_recv(&ex);
		FAIL_IF(s <= 0, "make");
		FAIL_IF(peer_start(&at, attacher, &s), "attacher");
		FAIL_IF(peer_recv(&at) != 1, "attacher did not attach (or read wrong data)");
		pfd = (int)syscall(SYS_pidfd_open, ex.pid, 0);
		FAIL_IF(pfd < 0, "pidfd_open: %s", strerror(errno));
		kill(ex.pid, SIGKILL);
		rc = (int)syscall(SYS_process_mrelease, pfd, 0);
		FAIL_IF(rc && errno != ESRCH && !(errno == EAGAIN && may_refuse),
			"process_mrelease: %s (round %d)", strerror(errno), r);
		said->reaped += rc == 0;
		said->again += rc && errno == EAGAIN;
		said->gone += rc && errno == ESRCH;
		close(pfd);
		FAIL_IF(peer_wait(&ex) != 128 + SIGKILL, "exporter not killed");
		peer_send(&at, 2);
		rc = peer_wait(&at);
		FAIL_IF(rc, "attacher exit %d: %s", rc,
			rc == 11 ? "wrong data or signal" :
			rc == 12 ? "no SIGBUS after the exporter died" :
			rc == 13 ? "no go-ahead from the test" : "setup");
	}
	return 0;
}

static int t_process_mrelease_of_exporter_with_touched_attachment(void)
{
	long nonblock0 = counter("invalidate_nonblock_busy");
	struct mrelease_rounds said;

	/*
	 * EAGAIN: the reap could not drop everything without blocking (the
	 * attached range: its attacher's PTEs must go first, which needs
	 * sleeping); exit_mmap does the rest.
	 */
	if (mrelease_rounds(20, toucher, true, &said))
		return 1;
	tap_diag("process_mrelease: %d reaped all, %d EAGAIN, %d ESRCH; the non-blocking path refused %ld times",
		 said.reaped, said.again, said.gone,
		 counter("invalidate_nonblock_busy") - nonblock0);
	FAIL_IF(counter("invalidate_nonblock_busy") == nonblock0,
		"the non-blocking invalidation path was never taken");
	return live_counters_settle();
}

static int t_process_mrelease_of_exporter_with_untouched_attachment_reaps_it(void)
{
	long nonblock0 = counter("invalidate_nonblock_busy");
	long unmapped0 = counter("invalidate_nonblock_unmapped");
	struct mrelease_rounds said;

	if (mrelease_rounds(20, idle_attacher, false, &said))
		return 1;
	tap_diag("process_mrelease: %d returned 0, %d ESRCH; non-blocking invalidations with nothing mapped %ld, refused %ld",
		 said.reaped, said.gone, counter("invalidate_nonblock_unmapped") - unmapped0,
		 counter("invalidate_nonblock_busy") - nonblock0);
	/* 0 also when exit_mmap was done first: the counter says the reaper ran */
	FAIL_IF(counter("invalidate_nonblock_unmapped") == unmapped0,
		"the non-blocking path never met the attachment (exit_mmap always first)");
	FAIL_IF(counter("invalidate_nonblock_busy") != nonblock0,
		"the non-blocking path refused an attachment with nothing mapped");
	return live_counters_settle();
}

/* ---- registering on an mm while a file it maps is truncated ----------------------- */

/*
 * Registering the first notifier of an mm takes every reverse-map lock of
 * it, an attachment's i_mmap_rwsem among them, one after the other.  A
 * truncate holds the file's i_mmap_rwsem while the mirror of an
 * attachment of that file waits for its zap, which needs the
 * attachment's.  The driver registered an mm's interval tree when the
 * mm was first attached from; an mm that had attached before (so it
 * mapped an attachment) then had its locks taken while the truncate ran,
 * and the three waited for each other for good (make check's fuzzer on
 * 6.12).  Here: B exports its mapping of a memfd, A maps the memfd above
 * its attachment of B's range and exports some memory of its own; the
 * memfd is truncated while the zap of A's attachment is held back
 * (debugfs ack_delay_ms), and meanwhile D makes the first attachment of
 * A's memory.  Both must finish.
 */
struct trunc_arg {
	int memfd;
	size_t len;
	xpmem_segid_t seg;
};

static int memfd_exporter(int in, int out, void *arg)
{
	struct trunc_arg *t = arg;
	char *m = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);

	if (m == MAP_FAILED)
		return 10;
	memset(m, 0x3c, t->len);
	chan_send(out, xpmem_make(m, t->len, XPMEM_PERMIT_MODE, (void *)0600));
	chan_recv(in);
	return 0;
}

static int memfd_attacher(int in, int out, void *arg)
{
	struct trunc_arg *t = arg;
	/* first the memfd (top-down: higher), then the attachment below it */
	char *m = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
	xpmem_apid_t a = xpmem_get(t->seg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	volatile char *p = a > 0 ? xpmem_attach((struct xpmem_addr){ .apid = a }, t->len, NULL)
				 : (void *)-1;
	char *mine = map_anon(t->len);

	if (m == MAP_FAILED || p == (void *)-1 || !mine)
		return 10;
	if (p[0] != 0x3c)	/* mapped: its zap has work to do */
		return 11;
	if ((uintptr_t)p > (uintptr_t)m)
		return 12;	/* the lock order below needs the attachment first */
	memset(mine, 0x4d, t->len);
	chan_send(out, xpmem_make(mine, t->len, XPMEM_PERMIT_MODE, (void *)0600));
	chan_recv(in);
	return 0;
}

static int t_first_attach_from_an_attacher_while_a_file_it_maps_is_truncated(void)
{
	struct trunc_arg t = { .len = 16 * PG };
	double scale = tap_time_scale();
	char delay[32];
	struct peer b, a;
	pid_t trunc, d;
	bool attached, during;
	int st;

	t.memfd = (int)syscall(SYS_memfd_create, "xpmem-truncate", 0);
	FAIL_IF(t.memfd < 0 || ftruncate(t.memfd, (off_t)t.len), "memfd");
	FAIL_IF(peer_start(&b, memfd_exporter, &t), "exporter");
	t.seg = peer_recv(&b);
	FAIL_IF(t.seg <= 0, "exporter's make");
	FAIL_IF(peer_start(&a, memfd_attacher, &t), "attacher");
	t.seg = peer_recv(&a);
	FAIL_IF(t.seg <= 0, "attacher's make (status %d)", t.seg == -999 ? peer_wait(&a) : 0);
	snprintf(delay, sizeof(delay), "%d", (int)(2000 * scale));
	FAIL_IF(write_file("/sys/kernel/debug/xpmem/ack_delay_ms", delay), "ack delay hook");
	trunc = fork();
	if (trunc == 0)
		_exit(ftruncate(t.memfd, 0) ? 1 : 0);
	usleep((useconds_t)(300000 * scale));	/* the truncate waits in the zap's delay */
	FAIL_IF(waitpid(trunc, &st, WNOHANG) != 0,
		"the truncate did not wait for the zap: the scenario did not happen");
	d = fork();
	if (d == 0) {
		xpmem_apid_t ap = xpmem_get(t.seg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
		volatile char *p = ap > 0 ? xpmem_attach((struct xpmem_addr){ .apid = ap }, t.len,
							 NULL) : (void *)-1;

		_exit(p != (void *)-1 && p[0] == 0x4d ? 0 : 1);
	}
	attached = reap_within(d, 30, &st);
	/* it ran while the truncate held the file's lock, waiting for the zap */
	during = waitpid(trunc, NULL, WNOHANG) == 0;
	write_file("/sys/kernel/debug/xpmem/ack_delay_ms", "0");
	FAIL_IF(!attached, "the first attachment of the attacher's memory did not finish within 30 s "
		"(a truncate of a file it maps was waiting for a zap)");
	FAIL_IF(!WIFEXITED(st) || WEXITSTATUS(st), "the attach failed or read wrong data (status %#x)",
		st);
	FAIL_IF(!during, "the truncate ended before the attach did: the scenario did not happen");
	FAIL_IF(!reap_within(trunc, 30, &st), "the truncate did not finish within 30 s");
	FAIL_IF(!WIFEXITED(st) || WEXITSTATUS(st), "the truncate failed (status %#x)", st);
	peer_send(&a, 1);
	peer_send(&b, 1);
	FAIL_IF(peer_wait(&a) || peer_wait(&b), "attacher or exporter failed");
	close(t.memfd);
	return live_counters_settle();
}

/* ---- faults against a contended source lock ------------------------------------- */

/*
 * Many threads of an attacher fault different pages while the source's
 * mmap lock is taken for writing all the time and the pages keep being
 * invalidated.  The slow path's one-entry stash was cleared by every
 * lookup, so threads wiped each other's entries and could retry without
 * bound.  Every thread must get through its faults.
 */
#define CONTEND_THREADS	8
#define CONTEND_FAULTS	300

struct contend {
	volatile long *att;
	int idx;
	long done;
};

static void *contend_faulter(void *arg)
{
	struct contend *c = arg;

	for (long k = 0; k < CONTEND_FAULTS; k++) {
		volatile long *p = c->att + (size_t)c->idx * (PG / 8);

		(void)*p;
		c->done++;
		usleep(100);
	}
	return NULL;
}

static int contended_source(int in, int out, void *arg)
{
	size_t len = CONTEND_THREADS * PG;
	long *p = map_anon(len);
	xpmem_segid_t s;

	(void)arg;
	for (size_t i = 0; i < len / 8; i++)
		p[i] = 1;
	s = xpmem_make(p, len, XPMEM_PERMIT_MODE, (void *)0600);
	chan_send(out, s);
	fcntl(in, F_SETFL, O_NONBLOCK);
	for (unsigned long k = 0;; k++) {
		long v;
		void *m = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		munmap(m, PG);	/* the source's mmap lock, for writing */
		if (k % 64 == 0)
			madvise(p + (k / 64 % CONTEND_THREADS) * (PG / 8), PG, MADV_DONTNEED);
		if (read(in, &v, sizeof(v)) == sizeof(v))
			return 0;
	}
}

static int t_faults_of_many_threads_progress_while_source_lock_contended(void)
{
	struct contend c[CONTEND_THREADS];
	pthread_t t[CONTEND_THREADS];
	long slow0 = counter("fault_slow");
	struct peer src;
	xpmem_segid_t s;
	xpmem_apid_t a;
	long *att, total = 0;

	FAIL_IF(peer_start(&src, contended_source, NULL), "source");
	s = peer_recv(&src);
	a = xpmem_get(s, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	FAIL_IF(a < 0, "get");
	att = xpmem_attach((struct xpmem_addr){ .apid = a }, CONTEND_THREADS * PG, NULL);
	FAIL_IF(att == (void *)-1, "attach");
	for (int i = 0; i < CONTEND_THREADS; i++) {
		c[i] = (struct contend){ .att = att, .idx = i };
		pthread_create(&t[i], NULL, contend_faulter, &c[i]);
	}
	for (int i = 0; i < CONTEND_THREADS; i++) {
		pthread_join(t[i], NULL);
		total += c[i].done;
	}
	peer_send(&src, 0);
	FAIL_IF(peer_wait(&src), "source");
	tap_diag("%ld reads by %d threads, %ld faults took the slow path", total, CONTEND_THREADS,
		 counter("fault_slow") - slow0);
	FAIL_IF(total != CONTEND_THREADS * CONTEND_FAULTS, "reads done: %ld", total);
	FAIL_IF(xpmem_detach(att) || xpmem_release(a), "teardown");
	return live_counters_settle();
}

/* ---- debugger access of processes attached to each other ------------------------- */

/*
 * Two processes attach each other's memory; each has a thread taking its
 * own mmap lock for writing all the time; a third process reads both
 * attachments through /proc/PID/mem (the debugger's path, whose faults
 * cannot drop the mmap lock).  The fault polled a trylock on the source
 * while holding the attacher's mmap lock: with queued writers on both,
 * the two livelocked.  Every read must finish (with data or an error).
 */
struct mutual {
	volatile xpmem_segid_t seg[2];
	volatile uintptr_t att[2];
	volatile int ready, stop, stopped;
};

static void *mmap_writer(void *arg)
{
	struct mutual *m = arg;

	while (!m->stop) {
		void *x = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		munmap(x, PG);
	}
	return NULL;
}

static int mutual_side(struct mutual *m, int me)
{
	size_t len = 16 * PG;
	char *p = map_anon(len);
	xpmem_apid_t a;
	pthread_t w;
	char *att;

	memset(p, 'a' + me, len);
	m->seg[me] = xpmem_make(p, len, XPMEM_PERMIT_MODE, (void *)0600);
	while (!m->seg[!me])
		usleep(1000);
	a = xpmem_get(m->seg[!me], XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	att = a > 0 ? xpmem_attach((struct xpmem_addr){ .apid = a }, len, NULL) : (void *)-1;
	if (att == (void *)-1)
		return 10;
	m->att[me] = (uintptr_t)att;
	__atomic_add_fetch(&m->ready, 1, __ATOMIC_SEQ_CST);
	pthread_create(&w, NULL, mmap_writer, m);
	while (!m->stop) {
		for (size_t i = 0; i < len; i += PG)
			(void)*(volatile char *)(att + i);
		madvise(p, len, MADV_DONTNEED);	/* keep the other side faulting */
		memset(p, 'a' + me, len);
	}
	pthread_join(w, NULL);
	/* the other side still reads our memory until it stops too */
	__atomic_add_fetch(&m->stopped, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&m->stopped, __ATOMIC_SEQ_CST) < 2)
		usleep(1000);
	return 0;
}

static int t_debugger_reads_of_mutually_attached_processes_finish(void)
{
	struct mutual *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fds[2], reads = 0, data = 0, st;
	pid_t pid[2];
	char path[64], buf[64];

	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0)
			_exit(mutual_side(m, i));
	}
	while (m->ready < 2)
		usleep(1000);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/%d/mem", pid[i]);
		fds[i] = open(path, O_RDONLY);
		FAIL_IF(fds[i] < 0, "open %s", path);
	}
	for (int k = 0; k < 2000; k++) {
		int i = k & 1;
		ssize_t n = pread(fds[i], buf, sizeof(buf),
				  (off_t)(m->att[i] + (size_t)(k % 16) * PG));

		reads++;
		if (n == (ssize_t)sizeof(buf)) {
			FAIL_IF(buf[0] != 'a' + !i && buf[0] != 0,
				"read %#x through process %d's attachment", buf[0], i);
			data++;
		}
	}
	m->stop = 1;
	for (int i = 0; i < 2; i++) {
		close(fds[i]);
		FAIL_IF(waitpid(pid[i], &st, 0) != pid[i] || !WIFEXITED(st) || WEXITSTATUS(st),
			"side %d: status %#x", i, st);
	}
	tap_diag("%d debugger reads finished, %d with data", reads, data);
	FAIL_IF(data == 0, "no debugger read ever got data");
	return live_counters_settle();
}

/* ---- the attacher reshapes its attachment while the source invalidates ------------ */

#define RS_PAGES	64

#define RS_FINAL	0xfffffffULL	/* the generation of the quiesced source */
#define RS_MARK		0xabcd0000ULL	/* the attacher's writes, word 2 of each page */

/*
 * The source: page i holds (i << 32 | generation) in every word, rewritten
 * all the time (each rewrite after a DONTNEED, which invalidates the page)
 * until told to stop (1); then it writes every page a last time with
 * RS_FINAL and says so; told to check (2), it answers how many pages do
 * not hold the attacher's mark in word 2.
 */
static int reshaping_source(int in, int out, void *arg)
{
	size_t len = RS_PAGES * PG, words = PG / 8;
	uint64_t *p = map_anon(len), gen = 0;
	volatile long *rewrites = arg;	/* shared: generation page j last got, complete */
	unsigned int seed = 7;
	xpmem_segid_t s;
	long v, bad = 0;

	for (size_t i = 0; i < RS_PAGES; i++)
		for (size_t w = 0; w < words; w++)
			p[i * words + w] = (uint64_t)i << 32 | 1;
	s = xpmem_make(p, len, XPMEM_PERMIT_MODE, (void *)0600);
	chan_send(out, s);
	fcntl(in, F_SETFL, O_NONBLOCK);
	for (;;) {
		size_t j = (size_t)rand_r(&seed) % RS_PAGES;

		gen++;
		madvise(p + j * words, PG, MADV_DONTNEED);	/* invalidates page j */
		for (size_t w = 0; w < words; w++)
			p[j * words + w] = (uint64_t)j << 32 | (gen + 1);
		__atomic_store_n(&rewrites[j], (long)(gen + 1), __ATOMIC_RELEASE);
		if (read(in, &v, sizeof(v)) == sizeof(v))
			break;
	}
	for (size_t i = 0; i < RS_PAGES; i++)
		for (size_t w = 0; w < words; w++)
			p[i * words + w] = (uint64_t)i << 32 | RS_FINAL;
	fcntl(in, F_SETFL, 0);
	chan_send(out, 1);
	if (chan_recv(in) != 2)
		return 1;
	for (size_t i = 0; i < RS_PAGES; i++)
		if ((i < 20 || i >= 24) && i < 56 && p[i * words + 2] != ((uint64_t)i << 32 | RS_MARK))
			bad++;
	chan_send(out, bad);
	return 0;
}

/*
 * Read source page @page through @addr, after the source said it had
 * completely written generation @done of it: 0 (a later DONTNEED, before
 * its rewrite) or (page << 32 | gen) with gen >= @done and never going
 * back.  An older generation is a page the source no longer maps (a
 * missed invalidation).  Returns 0, or 1 with a diagnostic; counts the
 * reads that saw a generation this piece had not shown.
 */
static int rs_check(const volatile uint64_t *addr, size_t page, uint64_t done,
		    uint64_t *last, long *seen)
{
	uint64_t v = addr[PG / 16];

	if (!v)
		return 0;
	if (v >> 32 != page || (v & 0xffffffff) < last[page] || (v & 0xffffffff) < done) {
		tap_diag("page %zu: read %#llx (page %llu gen %llu; last gen %llu, source done with %llu)",
			 page, (unsigned long long)v, (unsigned long long)(v >> 32),
			 (unsigned long long)(v & 0xffffffff), (unsigned long long)last[page],
			 (unsigned long long)done);
		return 1;
	}
	if ((v & 0xffffffff) != last[page])
		seen[page]++;
	last[page] = v & 0xffffffff;
	return 0;
}

static double rs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* where page @i of the source is mapped after the reshaping, NULL: the hole */
static volatile uint64_t *rs_piece(char *att, char *moved, size_t i)
{
	if (i >= 20 && i < 24)
		return NULL;
	return (volatile uint64_t *)(i >= 32 && i < 48 ? moved + (i - 32) * PG : att + i * PG);
}

/*
 * README: an attacher may split its attachment (mprotect), unmap part of it
 * and move parts with mremap; every piece keeps mapping the same source
 * pages, while the source invalidates them all the time.  The attachment
 * is faulted in before it is reshaped, so mremap moves live PTEs; every
 * piece must see the source's pages change (not stay on one generation),
 * and once the source is quiet, read its last values and write through to
 * it.
 */
static int t_attacher_splits_unmaps_and_moves_attachment_while_source_invalidates(void)
{
	uint64_t last[RS_PAGES] = { 0 };
	long seen[RS_PAGES] = { 0 }, gen0;
	volatile long *rewrites = mmap(NULL, RS_PAGES * sizeof(long), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double t_end;
	long total = 0;
	int rounds = 0;
	struct peer src;
	xpmem_segid_t s;
	xpmem_apid_t a;
	char *att, *moved, *spare;
	long v;

	FAIL_IF(rewrites == MAP_FAILED, "shared counters");
	FAIL_IF(peer_start(&src, reshaping_source, (void *)rewrites), "source");
	s = peer_recv(&src);
	a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	FAIL_IF(a < 0, "get");
	att = xpmem_attach((struct xpmem_addr){ .apid = a }, RS_PAGES * PG, NULL);
	FAIL_IF(att == (void *)-1, "attach");
	spare = mmap(NULL, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FAIL_IF(spare == MAP_FAILED, "spare");
	for (size_t i = 0; i < RS_PAGES; i++)	/* live PTEs before the reshaping */
		FAIL_IF(rs_check((volatile uint64_t *)(att + i * PG), i, 0, last, seen),
			"before the reshaping");

	/* split: pages 8..15 inaccessible, the rest still the source's */
	FAIL_IF(mprotect(att + 8 * PG, 8 * PG, PROT_NONE), "mprotect: %s", strerror(errno));
	FAIL_IF(tap_probe((volatile long *)(att + 9 * PG), 0, &v) != SIGSEGV, "PROT_NONE piece readable");
	/* a hole: pages 20..23 unmapped */
	FAIL_IF(munmap(att + 20 * PG, 4 * PG), "munmap: %s", strerror(errno));
	FAIL_IF(tap_probe((volatile long *)(att + 21 * PG), 0, &v) != SIGSEGV, "hole readable");
	/* moved, with its PTEs: pages 32..47 to another address */
	moved = mremap(att + 32 * PG, 16 * PG, 16 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, spare);
	FAIL_IF(moved == MAP_FAILED, "mremap: %s", strerror(errno));
	/* shrunk in place: pages 48..63 to 48..55 */
	FAIL_IF(mremap(att + 48 * PG, 16 * PG, 8 * PG, 0) == MAP_FAILED, "mremap shrink: %s",
		strerror(errno));
	FAIL_IF(mprotect(att + 8 * PG, 8 * PG, PROT_READ | PROT_WRITE), "mprotect back");

	/*
	 * Read every piece, round after round, until the source has finished
	 * 8 rewrites per page on average (or a minute passed).  Each read must
	 * show at least the generation the source had finished before it: a
	 * piece mapping a page the source no longer uses shows an older one.
	 */
	for (size_t i = 0; i < RS_PAGES; i++)
		seen[i] = 0;
	gen0 = (long)__atomic_load_n(&rewrites[0], __ATOMIC_ACQUIRE);
	for (size_t i = 1; i < RS_PAGES; i++)
		gen0 = rewrites[i] > gen0 ? rewrites[i] : gen0;
	t_end = rs_now() + 60 * tap_time_scale();
	while (rs_now() < t_end) {
		long newest = 0;

		for (size_t i = 0; i < 56; i++) {
			volatile uint64_t *p = rs_piece(att, moved, i);
			uint64_t done = (uint64_t)__atomic_load_n(&rewrites[i], __ATOMIC_ACQUIRE);

			if (p)
				FAIL_IF(rs_check(p, i, done, last, seen),
					"round %d: stale page at piece for page %zu", rounds, i);
		}
		rounds++;
		for (size_t i = 0; i < RS_PAGES; i++)
			newest = rewrites[i] > newest ? rewrites[i] : newest;
		if (newest - gen0 >= 8 * RS_PAGES)
			break;
	}
	for (size_t i = 0; i < 56; i++)
		total += seen[i];
	tap_diag("%d rounds of reads, %ld reads showed a new generation", rounds, total);
	/* the check had something to check: pieces kept seeing the source's changes */
	FAIL_IF(total < 56, "only %ld reads saw a new generation", total);

	/* the source stops: every piece reads its last values, then writes through */
	peer_send(&src, 1);
	FAIL_IF(peer_recv(&src) != 1, "source did not quiesce");
	for (size_t i = 0; i < 56; i++) {
		volatile uint64_t *p = rs_piece(att, moved, i);

		if (!p)
			continue;
		FAIL_IF(p[PG / 16] != ((uint64_t)i << 32 | RS_FINAL),
			"piece for page %zu reads %#llx after the source stopped (stale)", i,
			(unsigned long long)p[PG / 16]);
		p[2] = (uint64_t)i << 32 | RS_MARK;
	}
	peer_send(&src, 2);
	v = peer_recv(&src);
	FAIL_IF(v != 0, "%ld pieces' writes did not reach the source", v);
	FAIL_IF(peer_wait(&src), "source");
	/* every piece goes by munmap or by detach */
	FAIL_IF(xpmem_detach(moved), "detach moved piece: %s", strerror(errno));
	FAIL_IF(munmap(att, 20 * PG) || munmap(att + 24 * PG, 8 * PG) ||
		xpmem_detach(att + 50 * PG), "the other pieces");
	FAIL_IF(xpmem_release(a), "release");
	return live_counters_settle();
}


/* ---- waits for an acknowledgment, made slow by the test hook ---------------------- */

/*
 * The hook ack_delay_ms (debugfs, test builds) makes every acknowledgment
 * of an invalidation late by that much: the invalidating task is then
 * certainly inside its wait when the test acts, whatever the host's
 * speed.  Each test below puts one thing into that window.
 */
#define ACK_DELAY_MS	1500
#define ACK_PAGES	16

static int set_ack_delay(unsigned int ms)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", ms);
	return write_file("/sys/kernel/debug/xpmem/ack_delay_ms", v);
}

static double ack_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* an attacher that maps every page of g_ack_seg, says so, and waits */
static xpmem_segid_t g_ack_seg;

static int ack_attacher(int in, int out, void *arg)
{
	xpmem_apid_t a = xpmem_get(g_ack_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	volatile long *att;

	(void)arg;
	att = a > 0 ? xpmem_attach((struct xpmem_addr){ .apid = a }, ACK_PAGES * PG, NULL) :
		      (void *)-1;
	if (att == (void *)-1)
		return 10;
	for (int i = 0; i < ACK_PAGES; i++)
		(void)att[i * PG / sizeof(long)];
	chan_send(out, 1);
	if (chan_recv(in) != 2)		/* (killed here in most tests) */
		return 11;
	/* after the exporter's DONTNEED: its new, zeroed pages */
	for (int i = 0; i < ACK_PAGES; i++)
		if (att[i * PG / sizeof(long)] != 0)
			return 12;
	return 0;
}

struct dontneed_call {
	char *buf;
	int ret, err;
	double secs;
};

static void *dontneed_thread(void *arg)
{
	struct dontneed_call *c = arg;
	double t0 = ack_now();

	c->ret = madvise(c->buf, ACK_PAGES * PG, MADV_DONTNEED);
	c->err = errno;
	c->secs = ack_now() - t0;
	return NULL;
}

static char *ack_export(void)
{
	char *buf = map_anon(ACK_PAGES * PG);

	if (!buf)
		return NULL;
	for (int i = 0; i < ACK_PAGES; i++)
		buf[i * PG] = (char)(i + 1);
	g_ack_seg = xpmem_make(buf, ACK_PAGES * PG, XPMEM_PERMIT_MODE, (void *)0600);
	return g_ack_seg > 0 ? buf : NULL;
}

/*
 * The attacher is SIGKILLed while the exporter's invalidation waits for
 * the zap of its attachment: the attacher's exit finishes (its own
 * teardown waits at most for that one invalidation), the invalidation
 * ends, nothing stays in D state and the driver's objects go.
 */
static int t_attacher_killed_while_an_invalidation_waits_for_its_zap(void)
{
	struct dontneed_call c = { 0 };
	char *buf = ack_export();
	pthread_t t;
	struct peer p;
	int st = 0;
	bool reaped;

	FAIL_IF(!buf, "export");
	FAIL_IF(peer_start(&p, ack_attacher, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher");
	FAIL_IF(set_ack_delay(ACK_DELAY_MS), "ack delay hook");
	c.buf = buf;
	pthread_create(&t, NULL, dontneed_thread, &c);
	usleep(ACK_DELAY_MS * 1000 / 4);	/* inside the wait */
	kill(p.pid, SIGKILL);
	reaped = reap_within(p.pid, 30, &st);
	pthread_join(t, NULL);
	set_ack_delay(0);
	tap_diag("DONTNEED returned %d after %.2f s; the attacher %s", c.ret, c.secs,
		 reaped ? "was reaped" : "did not exit");
	FAIL_IF(!reaped, "the attacher killed during the wait did not exit within 30 s (scaled)");
	FAIL_IF(!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL, "attacher status %#x", st);
	FAIL_IF(c.ret, "MADV_DONTNEED: %s", strerror(c.err));
	FAIL_IF(c.secs < ACK_DELAY_MS / 1000.0 * 0.9, "the invalidation did not wait for the ack");
	FAIL_IF(d_state_stuck(), "a task stuck in D state");
	FAIL_IF(xpmem_remove(g_ack_seg), "remove");
	return live_counters_settle();
}

/*
 * A signal that is not fatal arrives while an invalidation waits for an
 * acknowledgment: the wait neither ends early (the page would be freed
 * under a mapping) nor fails the system call, and the signal is handled
 * once it returns.
 */
static volatile int g_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	g_usr1++;
}

struct signaller {
	pthread_t target;
	int n;
};

static void *signal_thread(void *arg)
{
	struct signaller *sg = arg;

	for (int i = 0; i < sg->n; i++) {
		usleep(ACK_DELAY_MS * 1000 / (sg->n + 2));
		pthread_kill(sg->target, SIGRTMIN);	/* queued: each one counts */
	}
	return NULL;
}

static int t_non_fatal_signal_during_an_ack_wait_neither_cuts_it_nor_is_lost(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	struct signaller sg = { .target = pthread_self(), .n = 3 };
	struct dontneed_call c = { 0 };
	char *buf = ack_export();
	struct peer p;
	pthread_t t;

	FAIL_IF(!buf, "export");
	sigaction(SIGRTMIN, &sa, NULL);
	g_usr1 = 0;
	FAIL_IF(peer_start(&p, ack_attacher, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher");
	FAIL_IF(set_ack_delay(ACK_DELAY_MS), "ack delay hook");
	c.buf = buf;
	pthread_create(&t, NULL, signal_thread, &sg);
	dontneed_thread(&c);		/* in this thread: the signals' target */
	pthread_join(t, NULL);
	set_ack_delay(0);
	tap_diag("DONTNEED returned %d after %.2f s, %d signals handled", c.ret, c.secs, g_usr1);
	FAIL_IF(c.ret, "MADV_DONTNEED failed with a signal pending: %s", strerror(c.err));
	FAIL_IF(c.secs < ACK_DELAY_MS / 1000.0 * 0.9, "the wait ended early (%.2f s)", c.secs);
	FAIL_IF(g_usr1 != sg.n, "%d of %d signals handled", g_usr1, sg.n);
	for (int i = 0; i < ACK_PAGES; i++)
		FAIL_IF(buf[i * PG], "page %d not zeroed by DONTNEED", i);
	peer_send(&p, 2);
	FAIL_IF(peer_wait(&p), "the attacher did not see the new pages (status %d)", peer_wait(&p));
	FAIL_IF(xpmem_remove(g_ack_seg), "remove");
	return live_counters_settle();
}

/*
 * The exporter itself is SIGKILLed while it waits for an acknowledgment:
 * it exits (the wait is bounded by the late ack, and exit_mmap's own
 * invalidation waits for the zap too), nothing stays in D state.
 */
static int ack_exporter(int in, int out, void *arg)
{
	struct dontneed_call c = { 0 };

	(void)in;
	(void)arg;
	c.buf = ack_export();
	if (!c.buf)
		return 10;
	chan_send(out, g_ack_seg);
	if (chan_recv(in) != 1)
		return 11;
	chan_send(out, 2);		/* about to wait */
	dontneed_thread(&c);
	return 12;			/* not reached: killed in the wait */
}

static int t_exporter_killed_during_an_ack_wait_exits(void)
{
	struct peer e, a;
	int st = 0;
	bool reaped;

	FAIL_IF(peer_start(&e, ack_exporter, NULL), "fork exporter");
	g_ack_seg = peer_recv(&e);
	FAIL_IF(g_ack_seg <= 0, "exporter");
	FAIL_IF(peer_start(&a, ack_attacher, NULL), "fork attacher");
	FAIL_IF(peer_recv(&a) != 1, "attacher");
	FAIL_IF(set_ack_delay(ACK_DELAY_MS), "ack delay hook");
	peer_send(&e, 1);
	FAIL_IF(peer_recv(&e) != 2, "exporter");
	usleep(ACK_DELAY_MS * 1000 / 4);
	kill(e.pid, SIGKILL);
	reaped = reap_within(e.pid, 30, &st);
	set_ack_delay(0);
	FAIL_IF(!reaped, "the exporter killed in its ack wait did not exit within 30 s (scaled)");
	FAIL_IF(!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL, "exporter status %#x", st);
	kill(a.pid, SIGKILL);
	FAIL_IF(!reap_within(a.pid, 30, NULL), "attacher did not exit");
	FAIL_IF(d_state_stuck(), "a task stuck in D state");
	return live_counters_settle();
}

/*
 * exec() of a process that holds attachments: its old address space, and
 * with it every attachment mapping, goes; the permits belong to the thread
 * group, which exec keeps, until it exits.
 */
static int t_exec_of_a_process_holding_attachments_ends_its_mappings(void)
{
	const long att0 = 0;
	char *buf;
	pid_t pid;
	int go[2], st;

	/* the attachment counter is global: start from a driver at rest */
	FAIL_IF(live_counters_settle(), "objects of earlier tests still live");
	buf = ack_export();
	FAIL_IF(!buf, "export");
	FAIL_IF(pipe(go), "pipe");
	pid = fork();
	if (pid == 0) {
		xpmem_apid_t a = xpmem_get(g_ack_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		volatile char *att = a > 0 ?
			xpmem_attach((struct xpmem_addr){ .apid = a }, ACK_PAGES * PG, NULL) :
			(void *)-1;
		char c;

		if (att == (void *)-1 || att[0] != 1)
			_exit(10);
		if (read(go[0], &c, 1) != 1)
			_exit(11);
		execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(12);
	}
	close(go[0]);
	FAIL_IF(wait_until_counter("attachments", att0 + 1, 10) != 0, "the attachment never showed");
	FAIL_IF(write(go[1], "x", 1) != 1, "go");
	/* the exec'd process lives on; its attachment must be gone */
	FAIL_IF(wait_until_counter("attachments", att0, 10) != 0,
		"attachments %ld 10 s (scaled) after the exec, want %ld", counter("attachments"), att0);
	FAIL_IF(waitpid(pid, &st, WNOHANG) != 0, "the exec'd process ended (status %#x)", st);
	/* and the exporter's memory is still its own */
	FAIL_IF(madvise(buf, ACK_PAGES * PG, MADV_DONTNEED), "DONTNEED");
	kill(pid, SIGKILL);
	FAIL_IF(!reap_within(pid, 30, NULL), "the exec'd process did not exit");
	close(go[1]);
	FAIL_IF(xpmem_remove(g_ack_seg), "remove");
	return live_counters_settle();
}

/*
 * get against get: threads of one process get the same segment at once;
 * every get succeeds with its own permit, and releasing each ends it.
 */
#define GG_THREADS	4
#define GG_ROUNDS	2000

static void *get_release_thread(void *arg)
{
	long *bad = arg;

	for (int i = 0; i < GG_ROUNDS; i++) {
		xpmem_apid_t a = xpmem_get(g_ack_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);

		if (a <= 0 || xpmem_release(a))
			(*bad)++;
	}
	return NULL;
}

static int t_gets_of_one_segment_from_many_threads_all_succeed(void)
{
	pthread_t t[GG_THREADS];
	long bad[GG_THREADS] = { 0 }, total = 0;
	char *buf = ack_export();

	FAIL_IF(!buf, "export");
	for (int i = 0; i < GG_THREADS; i++)
		pthread_create(&t[i], NULL, get_release_thread, &bad[i]);
	for (int i = 0; i < GG_THREADS; i++) {
		pthread_join(t[i], NULL);
		total += bad[i];
	}
	FAIL_IF(total, "%ld of %d gets or releases failed", total, GG_THREADS * GG_ROUNDS);
	FAIL_IF(xpmem_remove(g_ack_seg), "remove");
	return live_counters_settle();
}

/* ---- a fault that resolved its page just before an invalidation ------------------ */

/*
 * The hook install_delay_ms (debugfs, test builds) holds the next fault of
 * an attachment between resolving its source page and installing it.  In
 * that window the exporter drops the page (MADV_DONTNEED) and writes a new
 * one.  The fault must not install the page it resolved: the sequence
 * check under the install lock sends it back to resolve, and the attacher
 * reads the new data.  A driver without the check installs the dropped
 * page, which the kernel frees under the attacher's PTE once the fault
 * lets go of it (the attacher then reads the old byte, or whatever the
 * page became).
 */
#define STALE_DELAY_MS	2000

/*
 * Hold the next fault STALE_DELAY_MS (scaled) between resolve and
 * install: the milliseconds armed, 0 if the hook is not there
 */
static unsigned int arm_install_delay(void)
{
	unsigned int ms = (unsigned int)(STALE_DELAY_MS * tap_time_scale());
	char v[16];

	snprintf(v, sizeof(v), "%u", ms);
	return write_file("/sys/kernel/debug/xpmem/install_delay_ms", v) ? 0 : ms;
}

/* 0 once a fault is held (install_delays past @before); else disarm, -1 */
static int await_held_fault(long before)
{
	if (!wait_until_counter("install_delays", before + 1, 30))
		return 0;
	write_file("/sys/kernel/debug/xpmem/install_delay_ms", "0");
	return -1;
}

static int stale_attacher(int in, int out, void *arg)
{
	xpmem_apid_t a = xpmem_get(g_ack_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	volatile unsigned char *att;

	(void)arg;
	att = a > 0 ? xpmem_attach((struct xpmem_addr){ .apid = a }, ACK_PAGES * PG, NULL) :
		      (void *)-1;
	if (att == (void *)-1)
		return 10;
	chan_send(out, 1);
	if (chan_recv(in) != 2)
		return 11;
	chan_send(out, att[0]);		/* the fault the hook holds */
	chan_send(out, att[PG]);	/* a later fault: nothing held */
	return 0;
}

static int t_fault_resolved_before_an_invalidation_installs_the_new_page(void)
{
	long held = counter("install_delays"), retries = counter("fault_retries");
	unsigned int delay;
	char *buf = ack_export();
	double t0, secs;
	long got0, got1;
	struct peer p;

	FAIL_IF(!buf, "export");
	FAIL_IF(held < 0, "no install_delays counter: a module without the test hooks");
	FAIL_IF(peer_start(&p, stale_attacher, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher");
	delay = arm_install_delay();
	FAIL_IF(!delay, "install delay hook");
	peer_send(&p, 2);
	FAIL_IF(await_held_fault(held), "the attacher's fault never reached the hook");
	/* inside the window: drop the page the fault holds, write a new one */
	t0 = ack_now();
	FAIL_IF(madvise(buf, ACK_PAGES * PG, MADV_DONTNEED), "MADV_DONTNEED: %s", strerror(errno));
	buf[0] = 0x5a;
	buf[PG] = 0x5b;
	secs = ack_now() - t0;
	got0 = peer_recv(&p);
	got1 = peer_recv(&p);
	FAIL_IF(peer_wait(&p), "attacher");
	tap_diag("the held fault read %#lx (want 0x5a, the dropped page had 0x1), the next %#lx; fault retries +%ld; the exporter's change took %.3f s of the %u ms window",
		 got0, got1, counter("fault_retries") - retries, secs, delay);
	FAIL_IF(secs > delay / 1000.0 / 2, "the exporter's change took %.2f s: outside the window, nothing judged", secs);
	FAIL_IF(got0 != 0x5a, "the fault installed the page it resolved before the invalidation");
	FAIL_IF(got1 != 0x5b, "a later fault read %#lx", got1);
	FAIL_IF(xpmem_remove(g_ack_seg), "remove");
	return live_counters_settle();
}

/* ---- a futex on an attachment while the source's mmap lock is busy ---------------- */

/*
 * FUTEX_WAKE_OP's atomic operation faults in its page with
 * fixup_user_fault(), which cannot have its lock dropped: the driver may
 * not wait for the source's mmap lock under it.  It used to fail such a
 * fault at the first busy trylock, and the futex call returned EFAULT
 * whenever the exporter was mapping or unmapping anything at that moment
 * (review F8).  Here an exporter thread maps and unmaps in a loop while
 * the attacher, 3000 times, drops its PTE of the page and runs
 * FUTEX_WAKE_OP (an add of 1) on it: every call must succeed, and the
 * page must end with 3000 added.  The driver's counter shows the faults
 * that met a busy source and tried again.  The retry is bounded (250 ms):
 * with two threads churning there is always a writer queued, and on the
 * debug kernel 67 of 3000 calls still ran the bound out; one churning
 * thread leaves the lock free between its calls, as a real exporter does.
 */
#define WAKEOP_ROUNDS	3000

static volatile int g_churn_stop;

static void *churn_thread(void *arg)
{
	long *n = arg;

	while (!g_churn_stop) {
		void *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED)
			munmap(p, 4 * PG);
		(*n)++;
	}
	return NULL;
}

static int wakeop_attacher(int in, int out, void *arg)
{
	xpmem_apid_t a = xpmem_get(g_ack_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	int *att, dummy = 0;
	long efault = 0, other = 0;

	(void)arg;
	(void)in;
	att = a > 0 ? xpmem_attach((struct xpmem_addr){ .apid = a }, ACK_PAGES * PG, NULL) :
		      (void *)-1;
	if (att == (void *)-1)
		return 10;
	for (int i = 0; i < WAKEOP_ROUNDS; i++) {
		/* the attacher's own PTE goes: the next access faults */
		if (madvise(att, PG, MADV_DONTNEED))
			return 11;
		/* wake 1 at &dummy, *att += 1, wake 0 at att if it was 0 */
		if (syscall(SYS_futex, &dummy, FUTEX_WAKE_OP_PRIVATE, 1, (void *)0, att,
			    FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)) < 0) {
			if (errno == EFAULT)
				efault++;
			else
				other++;
		}
	}
	chan_send(out, efault);
	chan_send(out, other);
	return 0;
}

static int t_futex_on_an_attachment_of_a_busy_source_succeeds(void)
{
	long tries = counter("fault_contended_tries"), failed = counter("fault_contended");
	long churns = 0, efault, other;
	char *buf = ack_export();
	pthread_t t;
	struct peer p;
	int *word;

	FAIL_IF(!buf, "export");
	word = (int *)buf;
	*word = 0;
	g_churn_stop = 0;
	pthread_create(&t, NULL, churn_thread, &churns);
	FAIL_IF(peer_start(&p, wakeop_attacher, NULL), "fork");
	efault = peer_recv(&p);
	other = peer_recv(&p);
	g_churn_stop = 1;
	pthread_join(t, NULL);
	FAIL_IF(peer_wait(&p), "attacher");
	tap_diag("%d FUTEX_WAKE_OP calls: %ld EFAULT, %ld other errors; the word reads %d; faults that found the source busy and tried again +%ld, that gave up +%ld; %ld maps/unmaps meanwhile",
		 WAKEOP_ROUNDS, efault, other, *word, counter("fault_contended_tries") - tries,
		 counter("fault_contended") - failed, churns);
	FAIL_IF(efault || other, "%ld of %d futex calls failed on attached memory", efault + other,
		WAKEOP_ROUNDS);
	FAIL_IF(*word != WAKEOP_ROUNDS, "the word reads %d, not %d", *word, WAKEOP_ROUNDS);
	FAIL_IF(xpmem_remove(g_ack_seg), "remove");
	return live_counters_settle();
}

/* ---- a detach while a fault resolves with its lock dropped ------------------------- */

/*
 * A fault that finds the source's mmap lock busy drops its own lock,
 * resolves, and takes the attacher's lock again to install: by then the
 * attachment may be gone and something else mapped at the address.  The
 * hook install_delay_ms holds that fault after it resolved; meanwhile the
 * test unmaps the attachment and maps anonymous memory at the same
 * address.  The fault must install nothing there (it checks that the vma
 * is still this attachment at the same source offset): the load that
 * faulted reads the new mapping's zero.  A driver without that check puts
 * the exporter's page into the anonymous mapping.  The hook
 * contend_next_fault makes that fault find the source's lock busy, so it
 * takes the slow path whatever the host's speed (this test once relied
 * on two threads mapping and unmapping in the exporter to make the lock
 * busy at the right moment: in 20 rounds under a loaded host it never
 * was, and the test failed without judging anything).
 */
struct detach_race {
	volatile unsigned char *att;
	volatile long got;
	volatile int done;
};

static void *detach_race_reader(void *arg)
{
	struct detach_race *d = arg;

	d->got = d->att[0];	/* the fault the hooks send down the slow path and hold */
	d->done = 1;
	return NULL;
}

static int t_detach_while_a_fault_resolves_unlocked_installs_nothing(void)
{
	long slow0 = counter("fault_slow"), held0 = counter("install_delays");
	struct detach_race d = { 0 };
	char *buf = ack_export();
	xpmem_apid_t a;
	pthread_t r;
	void *att, *anon;

	FAIL_IF(!buf, "export");
	FAIL_IF(held0 < 0, "no install_delays counter: a module without the test hooks");
	memset(buf, 0x77, ACK_PAGES * PG);
	a = xpmem_get(g_ack_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	FAIL_IF(a <= 0, "get");
	att = xpmem_attach((struct xpmem_addr){ .apid = a }, ACK_PAGES * PG, NULL);
	FAIL_IF(att == (void *)-1, "attach: %s", strerror(errno));
	d.att = att;
	FAIL_IF(write_file("/sys/kernel/debug/xpmem/contend_next_fault", "1"),
		"contend_next_fault hook");
	FAIL_IF(!arm_install_delay(), "install delay hook");
	pthread_create(&r, NULL, detach_race_reader, &d);
	FAIL_IF(await_held_fault(held0), "the fault never reached the hook");
	FAIL_IF(counter("fault_slow") == slow0,
		"the held fault resolved under its lock: contend_next_fault did not send it down the slow path");
	/* the fault dropped its lock: take its address away and reuse it */
	FAIL_IF(munmap(att, ACK_PAGES * PG), "munmap: %s", strerror(errno));
	anon = mmap(att, ACK_PAGES * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	FAIL_IF(anon != att, "mmap over the old address: %s", strerror(errno));
	FAIL_IF(d.done, "the fault finished before the unmap: the hook did not hold it");
	pthread_join(r, NULL);
	tap_diag("the load that faulted read %#lx (the exporter's pages hold 0x77, the new mapping 0)",
		 d.got);
	FAIL_IF(d.got != 0, "the fault installed the exporter's page into the mapping that replaced the attachment");
	FAIL_IF(((volatile unsigned char *)anon)[0] != 0, "the new mapping holds %#x",
		((volatile unsigned char *)anon)[0]);
	munmap(anon, ACK_PAGES * PG);
	FAIL_IF(xpmem_release(a), "release");
	FAIL_IF(xpmem_remove(g_ack_seg), "remove");
	return live_counters_settle();
}

struct attach_race {
	xpmem_apid_t apid;
	void *att;
	int err;
	volatile int done;
};

static void *held_attach(void *arg)
{
	struct attach_race *r = arg;

	r->att = xpmem_attach((struct xpmem_addr){ .apid = r->apid }, ACK_PAGES * PG, NULL);
	r->err = r->att == (void *)-1 ? errno : 0;
	r->done = 1;
	return NULL;
}

/*
 * A release of a permit while an attach of it is in flight: the release
 * goes through at once (it does not wait for the attach), and the attach
 * then fails with ENOENT and leaves nothing behind (its mirror removed, no
 * attachment of an ended permit mapped).  The test hook attach_delay_ms
 * holds the attach after it found its permit and put its mirror in place,
 * before it joins the permit's dependents, so the release comes in
 * between every time.  A driver that did not look at the permit's end
 * when it adds the attachment maps an attachment of the released permit,
 * which the release never revoked: this test fails there.
 */
static int t_release_during_an_attach_of_its_permit_fails_that_attach(void)
{
	unsigned int ms = (unsigned int)(ACK_DELAY_MS * tap_time_scale());
	long held0 = counter("attach_delays");
	struct attach_race r = { 0 };
	char *buf = ack_export();
	pthread_t t;
	char v[16];

	FAIL_IF(!buf, "export");
	FAIL_IF(held0 < 0, "no attach_delays counter: a module without the test hooks");
	memset(buf, 0x5a, ACK_PAGES * PG);
	r.apid = xpmem_get(g_ack_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	FAIL_IF(r.apid <= 0, "get");
	snprintf(v, sizeof(v), "%u", ms);
	FAIL_IF(write_file("/sys/kernel/debug/xpmem/attach_delay_ms", v), "attach_delay_ms hook");
	pthread_create(&t, NULL, held_attach, &r);
	if (wait_until_counter("attach_delays", held0 + 1, 30)) {
		write_file("/sys/kernel/debug/xpmem/attach_delay_ms", "0");
		pthread_join(t, NULL);
		FAIL_IF(1, "the attach never reached the hook (%s)",
			r.err ? strerror(r.err) : "it attached");
	}
	FAIL_IF(r.done, "the attach finished while the hook should hold it");
	FAIL_IF(xpmem_release(r.apid), "release during the attach: %s", strerror(errno));
	FAIL_IF(r.done, "the attach finished before the release returned: the release waited for it");
	pthread_join(t, NULL);
	if (!r.err) {
		tap_diag("the attach of the released permit succeeded; its first byte reads %#x",
			 ((volatile unsigned char *)r.att)[0]);
		xpmem_detach(r.att);
		FAIL_IF(1, "an attachment of a released permit is mapped");
	}
	tap_diag("the attach held across the release failed with %s", strerror(r.err));
	FAIL_IF(r.err != ENOENT, "want ENOENT");
	FAIL_IF(xpmem_remove(g_ack_seg), "remove");
	munmap(buf, ACK_PAGES * PG);
	return live_counters_settle();
}

#define TEST(name, secs) { #name, t_##name, secs }

int main(int argc, char **argv)
{
	struct tap_test tests[] = {
		TEST(make_remove_race_close_dup_of_the_descriptor, 120),
		TEST(get_release_race_close_dup_of_the_descriptor, 120),
		TEST(remove_race_remove_and_flush_of_one_segment, 120),
		TEST(process_mrelease_of_exporter_with_touched_attachment, 120),
		TEST(process_mrelease_of_exporter_with_untouched_attachment_reaps_it, 120),
		TEST(first_attach_from_an_attacher_while_a_file_it_maps_is_truncated, 120),
		TEST(faults_of_many_threads_progress_while_source_lock_contended, 120),
		TEST(debugger_reads_of_mutually_attached_processes_finish, 120),
		TEST(attacher_splits_unmaps_and_moves_attachment_while_source_invalidates, 120),
		TEST(attacher_killed_while_an_invalidation_waits_for_its_zap, 120),
		TEST(non_fatal_signal_during_an_ack_wait_neither_cuts_it_nor_is_lost, 120),
		TEST(exporter_killed_during_an_ack_wait_exits, 120),
		TEST(exec_of_a_process_holding_attachments_ends_its_mappings, 120),
		TEST(gets_of_one_segment_from_many_threads_all_succeed, 120),
		TEST(fault_resolved_before_an_invalidation_installs_the_new_page, 120),
		TEST(futex_on_an_attachment_of_a_busy_source_succeeds, 120),
		TEST(detach_while_a_fault_resolves_unlocked_installs_nothing, 120),
		TEST(release_during_an_attach_of_its_permit_fails_that_attach, 120),
	};

	PG = (size_t)sysconf(_SC_PAGESIZE);
	signal(SIGPIPE, SIG_IGN);
	return tap_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
