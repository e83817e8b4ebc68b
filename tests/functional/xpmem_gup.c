// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_gup.c - the kernel's own users of attached memory: everything that
 * calls get_user_pages() / pin_user_pages() on an attachment.
 *
 *   futexes (process-shared pthread mutexes, condition variables, robust
 *   mutexes) living in attached memory; O_DIRECT I/O on a virtio disk into
 *   and out of an attachment; process_vm_readv/writev from a third process
 *   on the attacher's range; what RDONLY attachments refuse; a pin held
 *   while the source invalidates; fork of an attacher that asked for its
 *   attachment to be inherited.  RDMA registration is tests/rdma/.
 *
 * Futexes: a process-shared futex is keyed by (inode, offset) only on a
 * file page (memfd, shmem, hugetlbfs).  On an anonymous page the kernel
 * keys it by (mm, address), so waiter and waker must be the same process:
 * the futex tests export memfd memory, as applications sharing pthread
 * objects across processes do (docs/design.md).
 *
 * TAP output, one test per behaviour; run as root in the test guest.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>

#include "tap.h"
#include "testlib.h"
#include "xpmem.h"

#define PG ((size_t)sysconf(_SC_PAGESIZE))

/* ---- helpers ---------------------------------------------------------------- */

/* permits this process holds, released by settle() */
static xpmem_apid_t g_apids[1024];
static int g_nr_apids;

static void *attach_seg(xpmem_segid_t segid, int flags, size_t size)
{
	xpmem_apid_t apid = xpmem_get(segid, flags, XPMEM_PERMIT_MODE, NULL);
	struct xpmem_addr a = { .apid = apid, .offset = 0 };
	void *p;

	if (apid < 0)
		return NULL;
	if (g_nr_apids < 1024)
		g_apids[g_nr_apids++] = apid;
	p = xpmem_attach(a, size, NULL);
	return p == (void *)-1 ? NULL : p;
}

static void *map_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* shared memfd memory: futex keys on it are the same in every process */
static void *map_memfd(size_t size)
{
	int fd = memfd_create("xpmem-gup", 0);
	void *p;

	if (fd < 0 || ftruncate(fd, size))
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static xpmem_segid_t g_seg;

/* anonymous memory filled with fill_bytes(seed), exported as g_seg */
static unsigned char *export_pattern(size_t size, unsigned int seed)
{
	unsigned char *src = map_anon(size);

	if (!src)
		return NULL;
	fill_bytes(src, size, seed);
	g_seg = xpmem_make(src, size, XPMEM_PERMIT_MODE, (void *)0600);
	return g_seg < 0 ? NULL : src;
}

/*
 * Release this process's permits, then wait up to 10 s for the driver's
 * live objects to be gone.
 */
static int settle(void)
{
	while (g_nr_apids > 0)
		xpmem_release(g_apids[--g_nr_apids]);
	return live_counters_settle();
}

/* ---- futexes ------------------------------------------------------------------ */

#define FUTEX_PARTIES	3	/* the source and two attachers */
#define FUTEX_ROUNDS	300

struct shared_sync {
	pthread_mutex_t lock;
	pthread_cond_t turn_cv;
	int turn;		/* whose turn: 0 source, 1 and 2 attachers */
	long counter;		/* incremented under lock by everyone */
	long waits;		/* times a party found it was not its turn */
};

/* FUTEX_ROUNDS turns in strict rotation, plus lock-only increments */
static int play_turns(struct shared_sync *s, int me)
{
	for (int r = 0; r < FUTEX_ROUNDS; r++) {
		if (pthread_mutex_lock(&s->lock))
			return 1;
		while (s->turn != me) {
			s->waits++;
			if (pthread_cond_wait(&s->turn_cv, &s->lock))
				return 2;
		}
		s->counter++;
		s->turn = (me + 1) % FUTEX_PARTIES;
		pthread_cond_broadcast(&s->turn_cv);
		pthread_mutex_unlock(&s->lock);
		for (int k = 0; k < 10; k++) {	/* plain contention */
			if (pthread_mutex_lock(&s->lock))
				return 3;
			s->counter++;
			pthread_mutex_unlock(&s->lock);
		}
	}
	return 0;
}

static int futex_attacher(int in, int out, void *arg)
{
	struct shared_sync *s = attach_seg(g_seg, XPMEM_RDWR, PG);
	int me = (int)(long)arg;

	(void)in;
	if (!s)
		return 10;
	chan_send(out, 1);	/* attached */
	if (chan_recv(in) != 2)
		return 11;
	return play_turns(s, me);
}

static int t_futex_pshared_mutex_and_condvar_through_attachments(void)
{
	struct shared_sync *s = map_memfd(PG);
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	struct peer p[2];
	int rc;

	FAIL_IF(!s, "memfd mapping");
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	FAIL_IF(pthread_mutex_init(&s->lock, &ma), "mutex init");
	FAIL_IF(pthread_cond_init(&s->turn_cv, &ca), "cond init");
	g_seg = xpmem_make(s, PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(g_seg < 0, "xpmem_make");
	for (int i = 0; i < 2; i++) {
		FAIL_IF(peer_start(&p[i], futex_attacher, (void *)(long)(i + 1)), "fork");
		FAIL_IF(peer_recv(&p[i]) != 1, "attacher %d did not attach", i + 1);
	}
	for (int i = 0; i < 2; i++)
		peer_send(&p[i], 2);
	rc = play_turns(s, 0);
	FAIL_IF(rc, "source: step %d failed", rc);
	for (int i = 0; i < 2; i++) {
		rc = peer_wait(&p[i]);
		FAIL_IF(rc, "attacher %d: status %d", i + 1, rc);
	}
	FAIL_IF(s->counter != FUTEX_PARTIES * FUTEX_ROUNDS * 11L,
		"counter %ld, want %ld", s->counter, FUTEX_PARTIES * FUTEX_ROUNDS * 11L);
	/* strict rotation: parties did block in futex waits */
	FAIL_IF(s->waits == 0, "nobody ever waited");
	tap_diag("%ld condition waits, %ld pages given to get_user_pages",
		 s->waits, counter("pages_given"));
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

struct robust_area {
	pthread_mutex_t lock;
	long data;
};

static int robust_owner(int in, int out, void *arg)
{
	struct robust_area *r = attach_seg(g_seg, XPMEM_RDWR, PG);

	(void)arg;
	if (!r)
		return 10;
	if (pthread_mutex_lock(&r->lock))
		return 11;
	r->data = 42;
	chan_send(out, 1);	/* holding the lock; now wait to be killed */
	chan_recv(in);
	return 12;
}

struct locker {
	struct robust_area *r;
	int rc;
	long data;
	int repaired;
};

/* the thread that gets EOWNERDEAD owns the lock: it repairs and unlocks */
static void *lock_it(void *arg)
{
	struct locker *l = arg;

	l->rc = pthread_mutex_lock(&l->r->lock);
	if (l->rc == EOWNERDEAD) {
		l->data = l->r->data;
		l->repaired = !pthread_mutex_consistent(&l->r->lock) &&
			      !pthread_mutex_unlock(&l->r->lock);
	}
	return NULL;
}

static int t_futex_robust_mutex_owner_killed_through_attachment(void)
{
	struct robust_area *r = map_memfd(PG);
	struct locker l = { .r = r, .rc = -1 };
	pthread_mutexattr_t ma;
	pthread_t th;
	struct peer p;
	int rc;

	FAIL_IF(!r, "memfd mapping");
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	FAIL_IF(pthread_mutex_init(&r->lock, &ma), "mutex init");
	g_seg = xpmem_make(r, PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(g_seg < 0, "xpmem_make");
	FAIL_IF(peer_start(&p, robust_owner, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "owner did not take the lock");
	/* a thread of the source blocks on the lock (futex wait) ... */
	FAIL_IF(pthread_create(&th, NULL, lock_it, &l), "thread");
	usleep(200000);
	FAIL_IF(l.rc != -1, "lock taken while the owner holds it: %d", l.rc);
	/* ... and the kernel's robust-list walk at the owner's death, done
	 * through the owner's attachment, must wake it with EOWNERDEAD */
	kill(p.pid, SIGKILL);
	rc = peer_wait(&p);
	FAIL_IF(rc != 128 + SIGKILL, "owner status %d", rc);
	pthread_join(th, NULL);
	FAIL_IF(l.rc != EOWNERDEAD, "lock returned %d (%s), want EOWNERDEAD",
		l.rc, strerror(l.rc));
	FAIL_IF(l.data != 42, "data %ld", l.data);
	FAIL_IF(!l.repaired, "consistent + unlock failed");
	/* usable again, by anyone */
	FAIL_IF(pthread_mutex_lock(&r->lock), "lock after repair");
	FAIL_IF(pthread_mutex_unlock(&r->lock), "unlock after repair");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/* ---- O_DIRECT on a virtio disk -------------------------------------------------- */

/* the scratch disk scripts/xpmem-vm attaches (serial xpmem-scratch) */
static int open_scratch_disk(void)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	char path[300], serial[64], dev[300];
	int fd = -1;

	while (d && (e = readdir(d))) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(serial, sizeof(serial), f) &&
		    !strncmp(serial, "xpmem-scratch", 13)) {
			snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
			fd = open(dev, O_RDWR | O_DIRECT);
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return fd;
}

#define DIO_SIZE (64 * 1024)

static int dio_attacher(int in, int out, void *arg)
{
	unsigned char *att = attach_seg(g_seg, XPMEM_RDWR, DIO_SIZE);
	int fd = open_scratch_disk();

	(void)arg;
	if (!att || fd < 0)
		return 10;
	/* write() from the attachment: the source's bytes go to the disk */
	if (pwrite(fd, att, DIO_SIZE, 0) != DIO_SIZE)
		return 11;
	chan_send(out, 1);
	if (chan_recv(in) != 2)
		return 12;
	/* read() into the attachment: the disk's bytes land in the source */
	if (pread(fd, att, DIO_SIZE, DIO_SIZE) != DIO_SIZE)
		return 13;
	chan_send(out, 3);
	return 0;
}

static int t_odirect_write_from_and_read_into_attachment(void)
{
	unsigned char *src = export_pattern(DIO_SIZE, 7), *buf;
	int fd = open_scratch_disk();
	struct peer p;
	long bad;

	/* the harness always gives this guest one (xpmem-vm --disk) */
	FAIL_IF(fd < 0, "no scratch disk (serial xpmem-scratch): %s", strerror(errno));
	FAIL_IF(posix_memalign((void **)&buf, 4096, DIO_SIZE), "memalign");
	FAIL_IF(!src, "mmap, xpmem_make");
	FAIL_IF(peer_start(&p, dio_attacher, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher's O_DIRECT write failed (status %d)",
		peer_wait(&p));
	FAIL_IF(pread(fd, buf, DIO_SIZE, 0) != DIO_SIZE, "read back: %s", strerror(errno));
	bad = bytes_mismatch(buf, DIO_SIZE, 7);
	FAIL_IF(bad >= 0, "disk differs from the source at byte %ld", bad);
	/* now the other way: a new pattern on disk, read into the attachment */
	fill_bytes(buf, DIO_SIZE, 99);
	FAIL_IF(pwrite(fd, buf, DIO_SIZE, DIO_SIZE) != DIO_SIZE, "write: %s", strerror(errno));
	peer_send(&p, 2);
	FAIL_IF(peer_recv(&p) != 3, "attacher's O_DIRECT read failed (status %d)",
		peer_wait(&p));
	bad = bytes_mismatch(src, DIO_SIZE, 99);
	FAIL_IF(bad >= 0, "source differs from the disk at byte %ld", bad);
	FAIL_IF(peer_wait(&p), "attacher status");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	close(fd);
	return settle();
}

/* ---- process_vm_readv / process_vm_writev ------------------------------------------ */

#define PVM_SIZE (16 * 4096)

static int holder(int in, int out, void *arg)
{
	void *att = attach_seg(g_seg, (int)(long)arg, PVM_SIZE);

	if (!att)
		return 10;
	chan_send(out, (long)att);
	chan_recv(in);		/* hold it until told */
	return 0;
}

static int t_process_vm_readv_writev_on_attached_range(void)
{
	unsigned char *src = export_pattern(PVM_SIZE, 3), *buf = map_anon(PVM_SIZE);
	struct iovec local, remote;
	struct peer att;
	long addr, bad;
	pid_t pid;
	int st;

	FAIL_IF(!src || !buf, "mmap, xpmem_make");
	FAIL_IF(peer_start(&att, holder, (void *)(long)XPMEM_RDWR), "fork");
	addr = peer_recv(&att);
	FAIL_IF(addr <= 0, "attacher failed");
	/* a third process, neither source nor attacher, reads and writes */
	pid = fork();
	if (pid == 0) {
		ssize_t n;

		local = (struct iovec){ buf, PVM_SIZE };
		remote = (struct iovec){ (void *)addr, PVM_SIZE };
		n = process_vm_readv(att.pid, &local, 1, &remote, 1, 0);
		if (n != PVM_SIZE)
			_exit(1);
		if (bytes_mismatch(buf, PVM_SIZE, 3) >= 0)
			_exit(2);
		fill_bytes(buf, PVM_SIZE, 51);
		n = process_vm_writev(att.pid, &local, 1, &remote, 1, 0);
		_exit(n == PVM_SIZE ? 0 : 3);
	}
	FAIL_IF(waitpid(pid, &st, 0) != pid, "wait");
	FAIL_IF(!WIFEXITED(st) || WEXITSTATUS(st),
		"third process: step %d failed", WEXITSTATUS(st));
	bad = bytes_mismatch(src, PVM_SIZE, 51);
	FAIL_IF(bad >= 0, "process_vm_writev did not land in the source (byte %ld)", bad);
	peer_send(&att, 0);
	FAIL_IF(peer_wait(&att), "attacher status");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/* ---- RDONLY attachments ------------------------------------------------------------- */

static int t_rdonly_attachment_refuses_write_pins(void)
{
	unsigned char *src = export_pattern(PVM_SIZE, 5), *buf = map_anon(PVM_SIZE);
	struct iovec local, remote;
	struct peer att;
	long addr;
	pid_t pid;
	int st;

	FAIL_IF(!src || !buf, "mmap, xpmem_make");
	FAIL_IF(peer_start(&att, holder, (void *)(long)XPMEM_RDONLY), "fork");
	addr = peer_recv(&att);
	FAIL_IF(addr <= 0, "attacher failed");
	pid = fork();
	if (pid == 0) {
		local = (struct iovec){ buf, PVM_SIZE };
		remote = (struct iovec){ (void *)addr, PVM_SIZE };
		/* reading (a read pin) is allowed ... */
		if (process_vm_readv(att.pid, &local, 1, &remote, 1, 0) != PVM_SIZE) {
			tap_diag("process_vm_readv: %s", strerror(errno));
			_exit(1);
		}
		if (bytes_mismatch(buf, PVM_SIZE, 5) >= 0)
			_exit(2);
		/* ... writing (a write pin) is not */
		fill_bytes(buf, PVM_SIZE, 77);
		if (process_vm_writev(att.pid, &local, 1, &remote, 1, 0) != -1 ||
		    errno != EFAULT)
			_exit(3);
		_exit(0);
	}
	FAIL_IF(waitpid(pid, &st, 0) != pid, "wait");
	FAIL_IF(!WIFEXITED(st) || WEXITSTATUS(st), "checker: step %d failed",
		WEXITSTATUS(st));
	FAIL_IF(bytes_mismatch(src, PVM_SIZE, 5) >= 0, "source changed through RDONLY");
	peer_send(&att, 0);
	FAIL_IF(peer_wait(&att), "attacher status");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/* O_DIRECT read() into an RDONLY attachment needs a write pin: EFAULT */
static int rdonly_dio(int in, int out, void *arg)
{
	void *att = attach_seg(g_seg, XPMEM_RDONLY, DIO_SIZE);
	int fd = open_scratch_disk();
	ssize_t n;

	(void)in;
	(void)arg;
	if (!att || fd < 0)
		return 10;
	n = pread(fd, att, DIO_SIZE, 0);
	chan_send(out, n == -1 ? errno : 1000);
	if (pwrite(fd, att, DIO_SIZE, 2 * DIO_SIZE) != DIO_SIZE)
		return 11;	/* reading from it is fine */
	return 0;
}

static int t_rdonly_attachment_refuses_odirect_read_into_it(void)
{
	unsigned char *src = export_pattern(DIO_SIZE, 9);
	int fd = open_scratch_disk();
	struct peer p;
	long e;

	FAIL_IF(fd < 0, "no scratch disk (serial xpmem-scratch): %s", strerror(errno));
	FAIL_IF(!src, "mmap, xpmem_make");
	FAIL_IF(peer_start(&p, rdonly_dio, NULL), "fork");
	e = peer_recv(&p);
	FAIL_IF(e != EFAULT, "O_DIRECT read into RDONLY attachment: %ld, want EFAULT", e);
	FAIL_IF(peer_wait(&p), "attacher status");
	FAIL_IF(bytes_mismatch(src, DIO_SIZE, 9) >= 0, "source changed through RDONLY");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	close(fd);
	return settle();
}

/* ---- a pin held while the source invalidates ------------------------------------------ */

#define PIN_PAGES 16
#define PIN_ROUNDS 256

/*
 * Bytes charged to the memory cgroup @cg that no mapping, page cache or
 * kernel object accounts for: pages still referenced after every mapping
 * of them is gone (what a leaked page reference leaves).  memory.current
 * is uncharged when a page is freed; anon and file count mapped anonymous
 * pages and page cache, kernel the slab, stacks, page tables and per-CPU
 * memory (a freed slab object is uncharged at once, even while KASAN's
 * quarantine still holds it, which made MemAvailable useless here), sock
 * the socket buffers.  Off by at most the per-CPU charge stock and stat
 * batches (a few hundred KiB).
 */
static long memcg_unaccounted(const char *cg)
{
	char cur[128], stat[128];
	FILE *f;
	long current = -1;

	snprintf(cur, sizeof(cur), "/sys/fs/cgroup/%s/memory.current", cg);
	snprintf(stat, sizeof(stat), "/sys/fs/cgroup/%s/memory.stat", cg);
	f = fopen(cur, "r");
	if (!f || fscanf(f, "%ld", &current) != 1)
		current = -1;
	if (f)
		fclose(f);
	for (int i = 0; i < 4; i++) {
		static const char *const key[] = { "anon", "file", "kernel", "sock" };
		long v = keyed_value(stat, key[i]);

		if (v < 0 || current < 0)
			return LONG_MIN;	/* unreadable */
		current -= v;
	}
	return current;
}

/*
 * vmsplice() takes references on the attachment's pages (get_user_pages)
 * and keeps them in the pipe.  The source then unmaps the range: the
 * attacher's PTEs go at once (its next access is SIGBUS), the pipe still
 * holds the old pages and reads back the old bytes, and once it is
 * drained the pages are freed: repeated, nothing accumulates.
 */
static int t_invalidation_while_pinned_keeps_pinner_valid(void)
{
	size_t size = PIN_PAGES * PG;
	long before, after, v;
	unsigned char *rd;
	char pid[32];

	/*
	 * The rounds run in a memory cgroup of their own, so that what the
	 * pinned pages leave behind can be told apart from kernel memory.
	 */
	FAIL_IF(memcg_group("xpmem-pin", "max"), "memory cgroup xpmem-pin: %s", strerror(errno));
	snprintf(pid, sizeof(pid), "%d", getpid());
	FAIL_IF(write_file("/sys/fs/cgroup/xpmem-pin/cgroup.procs", pid), "into the cgroup");
	rd = map_anon(size);
	FAIL_IF(!rd, "mmap");
	before = memcg_unaccounted("xpmem-pin");
	for (int round = 0; round < PIN_ROUNDS; round++) {
		unsigned char *src = export_pattern(size, (unsigned int)round), *att;
		struct iovec iov;
		int pfd[2], sig;
		ssize_t n = 0;

		FAIL_IF(!src, "mmap, xpmem_make");
		att = attach_seg(g_seg, XPMEM_RDWR, size);
		FAIL_IF(!att, "attach");
		FAIL_IF(pipe(pfd), "pipe");
		FAIL_IF(fcntl(pfd[1], F_SETPIPE_SZ, (int)size) < (int)size, "pipe size");
		iov = (struct iovec){ att, size };
		FAIL_IF(vmsplice(pfd[1], &iov, 1, 0) != (ssize_t)size,
			"vmsplice: %s", strerror(errno));
		/* invalidate: the source's pages go away under the pin */
		FAIL_IF(munmap(src, size), "munmap");
		sig = tap_probe((volatile long *)att, 0, &v);
		FAIL_IF(sig != SIGBUS, "attacher access after munmap: signal %d", sig);
		while (n < (ssize_t)size) {
			ssize_t r = read(pfd[0], rd + n, size - (size_t)n);

			FAIL_IF(r <= 0, "pipe read");
			n += r;
		}
		FAIL_IF(bytes_mismatch(rd, size, (unsigned int)round) >= 0,
			"round %d: pinned pages changed", round);
		close(pfd[0]);
		close(pfd[1]);
		FAIL_IF(xpmem_detach(att), "detach");
		FAIL_IF(xpmem_remove(g_seg), "remove");
	}
	after = memcg_unaccounted("xpmem-pin");
	write_file("/sys/fs/cgroup/cgroup.procs", pid);
	rmdir("/sys/fs/cgroup/xpmem-pin");
	tap_diag("charged but unaccounted for: %ld -> %ld KiB over %d rounds of %zu KiB",
		 before / 1024, after / 1024, PIN_ROUNDS, size / 1024);
	FAIL_IF(before == LONG_MIN || after == LONG_MIN, "memory.current / memory.stat unreadable");
	/*
	 * A leak of every pinned page would be PIN_ROUNDS * size = 16 MiB; of
	 * one page in eight, 2 MiB.
	 */
	FAIL_IF(after - before > 2 * 1024 * 1024, "%ld KiB of pinned pages were never freed",
		(after - before) / 1024);
	return settle();
}

/* ---- fork of an attacher that asked to pass its attachment on ---------------------- */

/* is the running kernel at least major.minor? */
static int kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return 0;
	return ma > major || (ma == major && mi >= minor);
}

/*
 * Make the attachment at @att inheritable (MADV_DOFORK).  Newer kernels
 * (7.1's madvise; 6.12's still allows it) refuse MADV_DOFORK on a
 * VM_SPECIAL vma, which an attachment is (VM_MIXEDMAP | VM_DONTEXPAND):
 * there fork never copies an attachment and the test has nothing to test.
 */
#define DOFORK_OR_SKIP(att, size)						\
	do {									\
		int e_ = madvise((att), (size), MADV_DOFORK) ? errno : 0;	\
		if (e_ == EINVAL && kernel_at_least(6, 13)) {			\
			tap_diag("MADV_DOFORK refused (EINVAL): this kernel never lets fork copy an attachment"); \
			xpmem_detach(att);					\
			xpmem_remove(g_seg);					\
			settle();						\
			return TAP_SKIP;					\
		}								\
		FAIL_IF(e_, "MADV_DOFORK: %s", strerror(e_));			\
	} while (0)

static int t_fork_after_madv_dofork_keeponfork_is_safe(void)
{
	size_t size = 8 * PG;
	unsigned char *src = export_pattern(size, 11), *att;
	struct iovec local, remote;
	unsigned char buf[64];
	pid_t pid;
	int st;

	FAIL_IF(!src, "mmap, xpmem_make");
	att = attach_seg(g_seg, XPMEM_RDWR, size);
	FAIL_IF(!att, "attach");
	FAIL_IF(bytes_mismatch(att, size, 11) >= 0, "attachment contents");	/* mapped */
	DOFORK_OR_SKIP(att, size);
	FAIL_IF(madvise(att, size, MADV_KEEPONFORK), "MADV_KEEPONFORK: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		/* the child's copy starts empty and faults from the source */
		if (bytes_mismatch(att, size, 11) >= 0)
			_exit(1);
		att[0] = 0x5a;
		_exit(0);
	}
	FAIL_IF(waitpid(pid, &st, 0) != pid, "wait");
	FAIL_IF(!WIFEXITED(st) || WEXITSTATUS(st), "child: status %#x", st);
	FAIL_IF(src[0] != 0x5a, "child's write not in the source");
	FAIL_IF(bytes_mismatch(att + PG, size - PG, 11 + 31 * (unsigned int)PG + 1) >= 0,
		"parent's attachment after the fork");
	/*
	 * The parent's attachment stays pinnable from 6.11, where fork calls
	 * ->open before it copies page tables; before, a vma the application
	 * made inheritable gives its pages to nobody (xpmem_compat.h), so
	 * process_vm_readv, which pins, fails with EFAULT there.
	 */
	local = (struct iovec){ buf, sizeof(buf) };
	remote = (struct iovec){ att + PG, sizeof(buf) };
	if (kernel_at_least(6, 11)) {
		FAIL_IF(process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != sizeof(buf),
			"process_vm_readv: %s", strerror(errno));
		FAIL_IF(memcmp(buf, src + PG, sizeof(buf)), "parent reads wrong bytes");
	} else {
		FAIL_UNLESS_ERRNO(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), EFAULT);
	}
	FAIL_IF(xpmem_detach(att), "detach");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/*
 * A fork child that kept a copy of its parent's attachment (MADV_DOFORK):
 * registering xpmem's notifiers on its mm would take the copy's mapping
 * lock while waiting for others (mm_take_all_locks), which deadlocks with
 * an invalidation zapping that attachment (xpmem_mm_may_register()).  So
 * its attach fails with EBUSY while the copy is mapped, and works once it
 * is unmapped.  Found by the fuzzer on 6.1 as a hang.
 */
static int t_child_with_inherited_attachment_attaches_after_unmapping_it(void)
{
	size_t size = 4 * PG;
	unsigned char *src = export_pattern(size, 17), *att;
	pid_t pid;
	int st;

	FAIL_IF(!src, "mmap, xpmem_make");
	att = attach_seg(g_seg, XPMEM_RDWR, size);
	FAIL_IF(!att, "attach");
	DOFORK_OR_SKIP(att, size);
	pid = fork();
	if (pid == 0) {
		xpmem_apid_t apid = xpmem_get(g_seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		struct xpmem_addr a = { .apid = apid, .offset = 0 };
		unsigned char *mine;

		if (apid < 0)
			_exit(10);
		mine = xpmem_attach(a, size, NULL);
		if (mine != (void *)-1 || errno != EBUSY)
			_exit(11);	/* attached (or failed otherwise) with the copy mapped */
		if (munmap(att, size))
			_exit(12);
		mine = xpmem_attach(a, size, NULL);
		if (mine == (void *)-1)
			_exit(13);
		if (bytes_mismatch(mine, size, 17) >= 0)
			_exit(14);
		_exit(xpmem_detach(mine) ? 15 : 0);
	}
	FAIL_IF(waitpid(pid, &st, 0) != pid, "wait");
	FAIL_IF(!WIFEXITED(st), "child: status %#x", st);
	FAIL_IF(WEXITSTATUS(st) == 11, "child attached (or not with EBUSY) while it mapped the copy");
	FAIL_IF(WEXITSTATUS(st), "child: exit %d (10 get, 12 munmap, 13 attach after unmapping, 14 contents, 15 detach)",
		WEXITSTATUS(st));
	FAIL_IF(xpmem_detach(att), "detach");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/* ---- writable attachment over read-only source memory --------------------------------- */

static int t_rdwr_attachment_reads_readonly_source_and_refuses_writes(void)
{
	size_t size = 4 * PG;
	unsigned char *src = map_anon(size), *att;
	long v = 1;
	int sig;

	FAIL_IF(!src, "mmap");
	fill_bytes(src, size, 13);
	FAIL_IF(mprotect(src + 2 * PG, 2 * PG, PROT_READ), "mprotect");
	g_seg = xpmem_make(src, size, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(g_seg < 0, "xpmem_make");
	att = attach_seg(g_seg, XPMEM_RDWR, size);
	FAIL_IF(!att, "attach");
	FAIL_IF(bytes_mismatch(att, size, 13) >= 0, "read through the attachment");
	sig = tap_probe((volatile long *)(att + 2 * PG), 1, &v);
	FAIL_IF(sig != SIGSEGV, "write to a page the source maps read-only: signal %d", sig);
	sig = tap_probe((volatile long *)att, 1, &v);
	FAIL_IF(sig, "write to a writable page: signal %d", sig);
	FAIL_IF(*(long *)src != 1, "write not in the source");
	FAIL_IF(bytes_mismatch(src + PG, 3 * PG, 13 + 31 * (unsigned int)PG + 1) >= 0,
		"source pages other than the first written");
	FAIL_IF(xpmem_detach(att), "detach");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/* ---- the attacher's own zaps and page walks --------------------------------------- */

/*
 * MADV_DONTNEED on an attachment (allowed now that it is not VM_PFNMAP) is
 * a core zap of special PTEs: it must not take them for counted mappings
 * (a bad mapcount would show as "Bad page" in the console).  smaps walks
 * the same PTEs.  Then the attachment refaults from the source and pins.
 */
static int t_attacher_dontneed_and_smaps_on_attachment(void)
{
	size_t size = 16 * PG;
	unsigned char *src = export_pattern(size, 21), *att, buf[256];
	long withheld = counter("pages_withheld");
	struct iovec local, remote;
	char line[256];
	FILE *f;

	FAIL_IF(!src, "mmap, xpmem_make");
	att = attach_seg(g_seg, XPMEM_RDWR, size);
	FAIL_IF(!att, "attach");
	FAIL_IF(bytes_mismatch(att, size, 21) >= 0, "contents");
	f = fopen("/proc/self/smaps", "r");	/* walks the attachment's PTEs */
	FAIL_IF(!f, "smaps");
	while (fgets(line, sizeof(line), f))
		;
	fclose(f);
	FAIL_IF(madvise(att, size, MADV_DONTNEED), "MADV_DONTNEED: %s", strerror(errno));
	FAIL_IF(counter("pages_withheld") - withheld < 16,
		"the zap was given pages (%ld withheld)", counter("pages_withheld") - withheld);
	FAIL_IF(bytes_mismatch(src, size, 21) >= 0, "source changed by the attacher's zap");
	FAIL_IF(bytes_mismatch(att, size, 21) >= 0, "attachment after MADV_DONTNEED");
	local = (struct iovec){ buf, sizeof(buf) };
	remote = (struct iovec){ att + 3 * PG, sizeof(buf) };
	FAIL_IF(process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != sizeof(buf),
		"process_vm_readv: %s", strerror(errno));
	FAIL_IF(memcmp(buf, src + 3 * PG, sizeof(buf)), "pinned read");
	FAIL_IF(xpmem_detach(att), "detach");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/* ---- huge-page exports ------------------------------------------------------------- */

/* HUGE_LEN bytes of @kind (testlib.h) filled with fill_bytes(@seed), exported as g_seg */
static unsigned char *huge_export(enum huge_kind kind, unsigned int seed, const char **why)
{
	unsigned char *src = huge_backed(kind, seed, why);

	if (!src)
		return NULL;
	g_seg = xpmem_make(src, HUGE_LEN, XPMEM_PERMIT_MODE, (void *)0600);
	return g_seg < 0 ? NULL : src;
}

/* the source still THP-backed after the test (THP kinds): nothing split it */
static int huge_still(const unsigned char *src, enum huge_kind kind)
{
	long kb = kind == HK_THP ? smaps_field_kb(src, "AnonHugePages") : 0;

	if (kind == HK_THP && kb < (long)(HUGE_LEN >> 10)) {
		tap_diag("the source's AnonHugePages went down to %ld kB", kb);
		return 1;
	}
	return 0;
}

#define HUGE_EXPORT(src, kind, seed)						\
	do {									\
		const char *why_;						\
		(src) = huge_export((kind), (seed), &why_);			\
		if (!(src) && why_) {						\
			tap_diag("%s", why_);					\
			return TAP_SKIP;					\
		}								\
		FAIL_IF(!(src), "huge-page export");				\
	} while (0)

static int huge_holder(int in, int out, void *arg)
{
	unsigned char *att = attach_seg(g_seg, XPMEM_RDWR, HUGE_LEN);

	(void)arg;
	if (!att)
		return 10;
	for (size_t off = 0; off < HUGE_LEN; off += PG)	/* mapped, as a user's would be */
		(void)*(volatile unsigned char *)(att + off);
	chan_send(out, (long)att);
	chan_recv(in);		/* hold it until told */
	return 0;
}

/* a third process reads and writes all of it through the attacher */
static int huge_pvm(enum huge_kind kind)
{
	unsigned char *src, *buf = map_anon(HUGE_LEN);
	struct iovec local, remote;
	struct peer att;
	long addr, bad;
	pid_t pid;
	int st;

	HUGE_EXPORT(src, kind, 61);
	FAIL_IF(!buf, "mmap");
	FAIL_IF(peer_start(&att, huge_holder, NULL), "fork");
	addr = peer_recv(&att);
	FAIL_IF(addr <= 0, "attacher failed");
	pid = fork();
	if (pid == 0) {
		ssize_t n;

		local = (struct iovec){ buf, HUGE_LEN };
		remote = (struct iovec){ (void *)addr, HUGE_LEN };
		n = process_vm_readv(att.pid, &local, 1, &remote, 1, 0);
		if (n != (ssize_t)HUGE_LEN) {
			printf("# process_vm_readv: %zd of %lu bytes (%s)\n", n, HUGE_LEN,
			       n < 0 ? strerror(errno) : "short");
			_exit(1);
		}
		if (bytes_mismatch(buf, HUGE_LEN, 61) >= 0)
			_exit(2);
		fill_bytes(buf, HUGE_LEN, 62);
		n = process_vm_writev(att.pid, &local, 1, &remote, 1, 0);
		if (n != (ssize_t)HUGE_LEN) {
			printf("# process_vm_writev: %zd of %lu bytes (%s)\n", n, HUGE_LEN,
			       n < 0 ? strerror(errno) : "short");
			_exit(3);
		}
		_exit(0);
	}
	FAIL_IF(waitpid(pid, &st, 0) != pid, "wait");
	FAIL_IF(!WIFEXITED(st) || WEXITSTATUS(st), "third process: step %d failed",
		WEXITSTATUS(st));
	bad = bytes_mismatch(src, HUGE_LEN, 62);
	FAIL_IF(bad >= 0, "process_vm_writev did not land in the source (byte %ld)", bad);
	peer_send(&att, 0);
	FAIL_IF(peer_wait(&att), "attacher status");
	FAIL_IF(huge_still(src, kind), "huge pages split");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/* the attacher vmsplices every page of its attachment into a pipe */
static int huge_vmsplicer(int in, int out, void *arg)
{
	unsigned char *att = attach_seg(g_seg, XPMEM_RDWR, HUGE_LEN);
	const size_t chunk = 64 * 1024;
	static unsigned char back[64 * 1024];
	int fds[2];

	(void)in;
	(void)out;
	(void)arg;
	if (!att || pipe(fds))
		return 10;
	for (size_t off = 0; off < HUGE_LEN; off += chunk) {
		struct iovec iov = { att + off, chunk };
		size_t got = 0;
		ssize_t n = vmsplice(fds[1], &iov, 1, 0);

		if (n != (ssize_t)chunk) {
			printf("# vmsplice at offset %#zx: %zd (%s)\n", off, n,
			       n < 0 ? strerror(errno) : "short");
			return 11;
		}
		while (got < chunk) {
			n = read(fds[0], back + got, chunk - got);
			if (n <= 0)
				return 12;
			got += n;
		}
		if (memcmp(back, att + off, chunk))
			return 13;
	}
	return 0;
}

static int huge_vmsplice(enum huge_kind kind)
{
	unsigned char *src;
	struct peer p;
	int rc;

	HUGE_EXPORT(src, kind, 63);
	FAIL_IF(peer_start(&p, huge_vmsplicer, NULL), "fork");
	rc = peer_wait(&p);
	FAIL_IF(rc, "attacher: step %d failed", rc);
	FAIL_IF(bytes_mismatch(src, HUGE_LEN, 63) >= 0, "source changed");
	FAIL_IF(huge_still(src, kind), "huge pages split");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

/* O_DIRECT of all of it, both ways, at 4 MiB and 8 MiB into the scratch disk */
static int huge_dio_attacher(int in, int out, void *arg)
{
	unsigned char *att = attach_seg(g_seg, XPMEM_RDWR, HUGE_LEN);
	int fd = open_scratch_disk();
	ssize_t n;

	(void)arg;
	if (!att || fd < 0)
		return 10;
	n = pwrite(fd, att, HUGE_LEN, HUGE_LEN);
	if (n != (ssize_t)HUGE_LEN) {
		printf("# O_DIRECT write from the attachment: %zd (%s)\n", n,
		       n < 0 ? strerror(errno) : "short");
		return 11;
	}
	chan_send(out, 1);
	if (chan_recv(in) != 2)
		return 12;
	n = pread(fd, att, HUGE_LEN, 2 * HUGE_LEN);
	if (n != (ssize_t)HUGE_LEN) {
		printf("# O_DIRECT read into the attachment: %zd (%s)\n", n,
		       n < 0 ? strerror(errno) : "short");
		return 13;
	}
	chan_send(out, 3);
	return 0;
}

static int huge_odirect(enum huge_kind kind)
{
	unsigned char *src, *buf;
	int fd = open_scratch_disk();
	struct peer p;
	long bad;

	FAIL_IF(fd < 0, "no scratch disk (serial xpmem-scratch): %s", strerror(errno));
	HUGE_EXPORT(src, kind, 64);
	FAIL_IF(posix_memalign((void **)&buf, 4096, HUGE_LEN), "memalign");
	FAIL_IF(peer_start(&p, huge_dio_attacher, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher's O_DIRECT write failed (status %d)", peer_wait(&p));
	FAIL_IF(pread(fd, buf, HUGE_LEN, HUGE_LEN) != (ssize_t)HUGE_LEN, "read back: %s",
		strerror(errno));
	bad = bytes_mismatch(buf, HUGE_LEN, 64);
	FAIL_IF(bad >= 0, "disk differs from the source at byte %ld", bad);
	fill_bytes(buf, HUGE_LEN, 65);
	FAIL_IF(pwrite(fd, buf, HUGE_LEN, 2 * HUGE_LEN) != (ssize_t)HUGE_LEN, "write: %s",
		strerror(errno));
	peer_send(&p, 2);
	FAIL_IF(peer_recv(&p) != 3, "attacher's O_DIRECT read failed (status %d)", peer_wait(&p));
	bad = bytes_mismatch(src, HUGE_LEN, 65);
	FAIL_IF(bad >= 0, "source differs from the disk at byte %ld", bad);
	FAIL_IF(peer_wait(&p), "attacher status");
	FAIL_IF(huge_still(src, kind), "huge pages split");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	close(fd);
	return settle();
}

/*
 * Shared (not FUTEX_PRIVATE) futexes look their word's page up with
 * get_user_pages: a wake and a wait with a stale value on every page, then
 * a real wait woken by another thread on a tail page of the second huge
 * page.  On anonymous memory the key is (mm, address): waiter and waker
 * are threads of the attacher.
 */
struct huge_futex {
	uint32_t *word;
	volatile int woken;
	long rc;
};

static void *huge_futex_waiter(void *arg)
{
	struct huge_futex *f = arg;

	f->rc = syscall(SYS_futex, f->word, FUTEX_WAIT, 0, NULL, NULL, 0);
	if (f->rc)
		f->rc = -errno;
	f->woken = 1;
	return NULL;
}

static int huge_futex_attacher(int in, int out, void *arg)
{
	unsigned char *att = attach_seg(g_seg, XPMEM_RDWR, HUGE_LEN);
	struct huge_futex f = { 0 };
	pthread_t th;
	long r;

	(void)in;
	(void)out;
	(void)arg;
	if (!att)
		return 10;
	for (size_t off = 0; off < HUGE_LEN; off += PG) {
		uint32_t *w = (uint32_t *)(att + off + 64);

		r = syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
		if (r < 0) {
			printf("# FUTEX_WAKE on page %zu: %s\n", off / PG, strerror(errno));
			return 11;
		}
		r = syscall(SYS_futex, w, FUTEX_WAIT, *w + 1, NULL, NULL, 0);
		if (r != -1 || errno != EAGAIN) {
			printf("# FUTEX_WAIT with a stale value on page %zu: %ld (%s), want EAGAIN\n",
			       off / PG, r, strerror(errno));
			return 12;
		}
	}
	f.word = (uint32_t *)(att + HUGE_SZ + 5 * PG + 128);
	*f.word = 0;
	if (pthread_create(&th, NULL, huge_futex_waiter, &f))
		return 13;
	/* wake until the waiter is gone: it may not be waiting yet */
	for (int i = 0; i < 100000 && !f.woken; i++) {
		r = syscall(SYS_futex, f.word, FUTEX_WAKE, 1, NULL, NULL, 0);
		if (r < 0)
			return 14;
		usleep(1000);
	}
	pthread_join(th, NULL);
	if (f.rc && f.rc != -EAGAIN && f.rc != -EINTR) {
		printf("# FUTEX_WAIT on a tail page: %s\n", strerror((int)-f.rc));
		return 15;
	}
	return f.woken ? 0 : 16;
}

static int huge_futex(enum huge_kind kind)
{
	unsigned char *src;
	struct peer p;
	int rc;

	HUGE_EXPORT(src, kind, 66);
	FAIL_IF(peer_start(&p, huge_futex_attacher, NULL), "fork");
	rc = peer_wait(&p);
	FAIL_IF(rc, "attacher: step %d failed", rc);
	FAIL_IF(huge_still(src, kind), "huge pages split");
	FAIL_IF(xpmem_remove(g_seg), "remove");
	return settle();
}

#define HUGE_TESTS(kind, name)								\
	static int t_##name##_export_process_vm_readv_writev_every_page(void)	\
	{ return huge_pvm(kind); }							\
	static int t_##name##_export_vmsplice_every_page(void)			\
	{ return huge_vmsplice(kind); }						\
	static int t_##name##_export_odirect_both_ways(void)				\
	{ return huge_odirect(kind); }						\
	static int t_##name##_export_shared_futexes_on_every_page(void)		\
	{ return huge_futex(kind); }
HUGE_TESTS(HK_THP, thp)
HUGE_TESTS(HK_THP_PTE, thp_pte_mapped)
HUGE_TESTS(HK_HUGETLB, hugetlb)

#define HUGE_ENTRIES(name)								\
	{ #name "_export_process_vm_readv_writev_every_page",			\
	  t_##name##_export_process_vm_readv_writev_every_page, 120 },		\
	{ #name "_export_vmsplice_every_page",					\
	  t_##name##_export_vmsplice_every_page, 120 },				\
	{ #name "_export_odirect_both_ways",					\
	  t_##name##_export_odirect_both_ways, 120 },				\
	{ #name "_export_shared_futexes_on_every_page",				\
	  t_##name##_export_shared_futexes_on_every_page, 120 }

static const struct tap_test tests[] = {
	{ "futex_pshared_mutex_and_condvar_through_attachments",
	  t_futex_pshared_mutex_and_condvar_through_attachments, 120 },
	{ "futex_robust_mutex_owner_killed_through_attachment",
	  t_futex_robust_mutex_owner_killed_through_attachment, 60 },
	{ "odirect_write_from_and_read_into_attachment",
	  t_odirect_write_from_and_read_into_attachment, 60 },
	{ "process_vm_readv_writev_on_attached_range",
	  t_process_vm_readv_writev_on_attached_range, 60 },
	{ "rdonly_attachment_refuses_write_pins",
	  t_rdonly_attachment_refuses_write_pins, 60 },
	{ "rdonly_attachment_refuses_odirect_read_into_it",
	  t_rdonly_attachment_refuses_odirect_read_into_it, 60 },
	{ "invalidation_while_pinned_keeps_pinner_valid",
	  t_invalidation_while_pinned_keeps_pinner_valid, 180 },
	{ "fork_after_madv_dofork_keeponfork_is_safe",
	  t_fork_after_madv_dofork_keeponfork_is_safe, 60 },
	{ "child_with_inherited_attachment_attaches_after_unmapping_it",
	  t_child_with_inherited_attachment_attaches_after_unmapping_it, 60 },
	{ "rdwr_attachment_reads_readonly_source_and_refuses_writes",
	  t_rdwr_attachment_reads_readonly_source_and_refuses_writes, 60 },
	{ "attacher_dontneed_and_smaps_on_attachment",
	  t_attacher_dontneed_and_smaps_on_attachment, 60 },
	HUGE_ENTRIES(thp),
	HUGE_ENTRIES(thp_pte_mapped),
	HUGE_ENTRIES(hugetlb),
};

int main(int argc, char **argv)
{
	if (xpmem_init() != 0) {
		printf("1..1\nnot ok 1 open_dev_xpmem\n# %s\n", strerror(errno));
		return 1;
	}
	return tap_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
