// SPDX-License-Identifier: GPL-2.0
/*
 * Functional tests of /dev/xpmem through libxpmem: one behaviour per test.
 * Run inside the test guest with the module loaded (tests/run-suite).
 */
#define _GNU_SOURCE
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>

#include "dstate.h"
#include "tap.h"
#include "testlib.h"
#include "xpmem.h"

#define PG ((size_t)sysconf(_SC_PAGESIZE))
#define LONGS_PER_PAGE (PG / sizeof(long))

/* ---- helpers ---------------------------------------------------------------- */

static long *map_pages(size_t n)
{
	void *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* page i of a buffer holds (tag << 32 | i) in every long */
static void fill(long *buf, size_t pages, long tag)
{
	for (size_t i = 0; i < pages * LONGS_PER_PAGE; i++)
		buf[i] = (tag << 32) | (long)(i / LONGS_PER_PAGE);
}

static long bad_long(const long *buf, size_t pages, long tag)
{
	for (size_t i = 0; i < pages * LONGS_PER_PAGE; i++)
		if (buf[i] != ((tag << 32) | (long)(i / LONGS_PER_PAGE)))
			return (long)i;
	return -1;
}

static void *attach_apid(xpmem_apid_t apid, off_t off, size_t size)
{
	struct xpmem_addr a = { .apid = apid, .offset = off };

	return xpmem_attach(a, size, NULL);
}

/* get + attach a whole segment of `pages` pages */
static long *attach_seg(xpmem_segid_t segid, int flags, size_t pages,
			xpmem_apid_t *apid_out)
{
	xpmem_apid_t apid = xpmem_get(segid, flags, XPMEM_PERMIT_MODE, NULL);
	void *p;

	if (apid < 0)
		return NULL;
	p = attach_apid(apid, 0, pages * PG);
	if (p == (void *)-1)
		return NULL;
	if (apid_out)
		*apid_out = apid;
	return p;
}


/* ---- basic calls ------------------------------------------------------------------ */

static int t_version_matches_header(void)
{
	int v = xpmem_version();

	FAIL_IF(v != XPMEM_CURRENT_VERSION, "version %#x, header says %#x",
		v, XPMEM_CURRENT_VERSION);
	return 0;
}

static int t_make_then_remove(void)
{
	long *buf = map_pages(4);
	xpmem_segid_t s = xpmem_make(buf, 4 * PG, XPMEM_PERMIT_MODE, (void *)0600);

	FAIL_IF(s <= 0, "make: %s", strerror(errno));
	FAIL_IF(xpmem_remove(s) != 0, "remove: %s", strerror(errno));
	FAIL_UNLESS_ERRNO(xpmem_remove(s), ENOENT);
	return 0;
}

static int t_make_whole_address_space(void)
{
	long *buf = map_pages(2), *att;
	xpmem_segid_t s;
	xpmem_apid_t a;

	fill(buf, 2, 7);
	s = xpmem_make(NULL, XPMEM_MAXADDR_SIZE, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(s <= 0, "make whole AS: %s", strerror(errno));
	a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	FAIL_IF(a <= 0, "get: %s", strerror(errno));
	/* in a whole-address-space segment the offset is the address */
	att = attach_apid(a, (off_t)(uintptr_t)buf, 2 * PG);
	FAIL_IF(att == (void *)-1, "attach: %s", strerror(errno));
	FAIL_IF(bad_long(att, 2, 7) >= 0, "data differs at %ld", bad_long(att, 2, 7));
	FAIL_IF(xpmem_detach(att) || xpmem_release(a) || xpmem_remove(s), "teardown");
	return 0;
}

static int t_get_then_release(void)
{
	long *buf = map_pages(1);
	xpmem_segid_t s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	xpmem_apid_t a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);

	FAIL_IF(a <= 0, "get: %s", strerror(errno));
	FAIL_IF(xpmem_release(a) != 0, "release: %s", strerror(errno));
	FAIL_UNLESS_ERRNO(xpmem_release(a), ENOENT);
	FAIL_UNLESS_ERRNO((long)attach_apid(a, 0, PG), ENOENT);
	return xpmem_remove(s);
}

static int t_attach_then_detach(void)
{
	long *buf = map_pages(4), *att, v;
	xpmem_segid_t s;

	fill(buf, 4, 1);
	s = xpmem_make(buf, 4 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	att = attach_seg(s, XPMEM_RDWR, 4, NULL);
	FAIL_IF(!att, "attach: %s", strerror(errno));
	FAIL_IF(att == buf, "attachment must be a new mapping");
	FAIL_IF(bad_long(att, 4, 1) >= 0, "data differs");
	FAIL_IF(xpmem_detach(att) != 0, "detach: %s", strerror(errno));
	FAIL_IF(tap_probe(att, 0, &v) != SIGSEGV, "detached range still mapped");
	FAIL_UNLESS_ERRNO(xpmem_detach(att), EINVAL);
	return xpmem_remove(s);
}

/* ---- data visibility between processes -------------------------------------------- */

static xpmem_segid_t g_segid;

static int attacher_reads_after_go(int in, int out, void *arg)
{
	long *att = attach_seg(g_segid, XPMEM_RDWR, 1, NULL);

	(void)arg;
	if (!att)
		return 10;
	chan_send(out, att[0]);		/* before */
	if (chan_recv(in) != 1)
		return 11;
	chan_send(out, att[0]);		/* after the source wrote */
	chan_recv(in);
	return 0;
}

static int t_attacher_sees_source_writes(void)
{
	long *buf = map_pages(1);
	struct peer p;
	long before, after;

	buf[0] = 1;
	g_segid = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(peer_start(&p, attacher_reads_after_go, NULL), "fork");
	before = peer_recv(&p);
	buf[0] = 0x1234;
	peer_send(&p, 1);
	after = peer_recv(&p);
	peer_send(&p, 0);
	FAIL_IF(peer_wait(&p) != 0, "attacher failed");
	FAIL_IF(before != 1 || after != 0x1234, "attacher saw %#lx then %#lx", before, after);
	return xpmem_remove(g_segid);
}

static int attacher_writes_page(int in, int out, void *arg)
{
	long *att = attach_seg(g_segid, XPMEM_RDWR, 2, NULL);

	(void)in;
	(void)arg;
	if (!att)
		return 10;
	fill(att, 2, 0x55);
	chan_send(out, 1);
	return 0;
}

static int t_source_sees_attacher_writes(void)
{
	long *buf = map_pages(2);
	struct peer p;

	fill(buf, 2, 1);
	g_segid = xpmem_make(buf, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(peer_start(&p, attacher_writes_page, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher did not finish");
	FAIL_IF(peer_wait(&p) != 0, "attacher failed");
	FAIL_IF(bad_long(buf, 2, 0x55) >= 0, "source sees old data at %ld", bad_long(buf, 2, 0x55));
	return xpmem_remove(g_segid);
}

static int t_read_then_write_through_rdwr_attachment(void)
{
	long *buf = map_pages(1), *att;
	xpmem_segid_t s;

	buf[0] = 3;
	s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	att = attach_seg(s, XPMEM_RDWR, 1, NULL);
	FAIL_IF(!att, "attach: %s", strerror(errno));
	FAIL_IF(att[0] != 3, "read %ld", att[0]);	/* read-only PTE first */
	att[0] = 4;					/* then upgrade on write */
	FAIL_IF(buf[0] != 4, "source sees %ld after attacher write", buf[0]);
	buf[0] = 5;
	FAIL_IF(att[0] != 5, "attacher sees %ld after source write", att[0]);
	return xpmem_remove(s);
}

static int attacher_reads_value(int in, int out, void *arg)
{
	long *att = attach_seg(g_segid, XPMEM_RDWR, 1, NULL);

	(void)arg;
	if (!att)
		return 10;
	while (chan_recv(in) == 1)
		chan_send(out, att[0]);
	return 0;
}

static int t_two_attachers_see_each_other(void)
{
	long *buf = map_pages(1);
	struct peer a, b;
	long *att;

	buf[0] = 0;
	g_segid = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(peer_start(&a, attacher_reads_value, NULL), "fork");
	FAIL_IF(peer_start(&b, attacher_reads_value, NULL), "fork");
	peer_send(&a, 1);
	FAIL_IF(peer_recv(&a) != 0, "first read");
	peer_send(&b, 1);
	FAIL_IF(peer_recv(&b) != 0, "first read");
	/* the test process attaches too and writes through its attachment */
	att = attach_seg(g_segid, XPMEM_RDWR, 1, NULL);
	FAIL_IF(!att, "attach");
	att[0] = 42;
	peer_send(&a, 1);
	peer_send(&b, 1);
	FAIL_IF(peer_recv(&a) != 42, "attacher A missed the write");
	FAIL_IF(peer_recv(&b) != 42, "attacher B missed the write");
	peer_send(&a, 0);
	peer_send(&b, 0);
	FAIL_IF(peer_wait(&a) || peer_wait(&b), "attacher failed");
	FAIL_IF(buf[0] != 42, "source sees %ld", buf[0]);
	return xpmem_remove(g_segid);
}

static int t_same_segment_attached_twice(void)
{
	long *buf = map_pages(2), *a1, *a2;
	xpmem_segid_t s;

	fill(buf, 2, 2);
	s = xpmem_make(buf, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	a1 = attach_seg(s, XPMEM_RDWR, 2, NULL);
	a2 = attach_seg(s, XPMEM_RDWR, 2, NULL);
	FAIL_IF(!a1 || !a2 || a1 == a2, "two attachments %p %p", a1, a2);
	a1[LONGS_PER_PAGE + 1] = 99;
	FAIL_IF(a2[LONGS_PER_PAGE + 1] != 99, "second attachment missed write");
	FAIL_IF(buf[LONGS_PER_PAGE + 1] != 99, "source missed write");
	FAIL_IF(xpmem_detach(a1) || a2[0] != ((2L << 32) | 0), "detach one, other still works");
	return xpmem_remove(s);
}

static int t_attach_at_offset(void)
{
	long *buf = map_pages(8), *att;
	xpmem_segid_t s;
	xpmem_apid_t a;

	fill(buf, 8, 9);
	s = xpmem_make(buf, 8 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	a = xpmem_get(s, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	att = attach_apid(a, 3 * PG, 2 * PG);
	FAIL_IF(att == (void *)-1, "attach: %s", strerror(errno));
	FAIL_IF(att[0] != ((9L << 32) | 3) || att[LONGS_PER_PAGE] != ((9L << 32) | 4),
		"offset attach sees %#lx %#lx", att[0], att[LONGS_PER_PAGE]);
	return xpmem_remove(s);
}

static int t_attach_at_fixed_address(void)
{
	long *buf = map_pages(2), *att;
	void *want = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	xpmem_segid_t s;
	xpmem_apid_t a;

	fill(buf, 2, 4);
	want = (char *)want + PG;
	s = xpmem_make(buf, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	att = xpmem_attach((struct xpmem_addr){ .apid = a, .offset = 0 }, 2 * PG, want);
	FAIL_IF(att != want, "attached at %p, asked %p (%s)", att, want, strerror(errno));
	FAIL_IF(bad_long(att, 2, 4) >= 0, "data differs");
	return xpmem_remove(s);
}

/*
 * remap_file_pages() on an attachment reaches the ->mmap of the file all
 * of the process's attachments are mapped through (its space), with an
 * offset of the caller's choosing: refused with EBUSY, so no attachment's
 * offsets, nor another attachment's pages, can be mapped that way.  The
 * other attachment keeps its own data.  The range asked for is a hole
 * afterwards on the kernels of the matrix (the core closes the old vma
 * before it calls ->mmap).  Last, the same on the process's only
 * attachment: closing it ends the space's last attachment before ->mmap
 * runs, and ->mmap must still find the space (the file holds it now;
 * before, a teardown that finished first freed the space under the call:
 * a race this single try rarely wins, so the fix holds by construction,
 * not by this test).  The driver's objects go either way.
 */
static int t_remap_file_pages_of_an_attachment_is_refused(void)
{
	long *buf = map_pages(2), *first, *second;
	xpmem_segid_t s;
	xpmem_apid_t a;
	long r;

	fill(buf, 2, 6);
	s = xpmem_make(buf, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	first = xpmem_attach((struct xpmem_addr){ .apid = a, .offset = 0 }, PG, NULL);
	second = xpmem_attach((struct xpmem_addr){ .apid = a, .offset = PG }, PG, NULL);
	FAIL_IF(first == (void *)-1 || second == (void *)-1, "attach: %s", strerror(errno));
	FAIL_IF(first[0] != ((6L << 32) | 0) || second[0] != ((6L << 32) | 1), "data differs");
	/* the offsets of the attachments made so far, each on a fresh victim */
	for (long pgoff = 0; pgoff < 4; pgoff++) {
		r = syscall(SYS_remap_file_pages, second, PG, 0, pgoff, 0);
		FAIL_IF(r != -1 || errno != EBUSY, "remap_file_pages at offset %ld: %ld (%s), want EBUSY",
			pgoff, r, r ? strerror(errno) : "done");
		xpmem_detach(second);	/* EINVAL where the kernel left a hole */
		second = xpmem_attach((struct xpmem_addr){ .apid = a, .offset = PG }, PG, NULL);
		FAIL_IF(second == (void *)-1, "attach: %s", strerror(errno));
		FAIL_IF(second[0] != ((6L << 32) | 1), "a new attachment reads %#lx", second[0]);
	}
	FAIL_IF(first[0] != ((6L << 32) | 0), "the first attachment reads %#lx", first[0]);
	xpmem_detach(first);
	/* the only attachment left: the space's last one goes inside the call */
	r = syscall(SYS_remap_file_pages, second, PG, 0, 0, 0);
	FAIL_IF(r != -1 || errno != EBUSY, "remap_file_pages of the only attachment: %ld (%s), want EBUSY",
		r, r ? strerror(errno) : "done");
	xpmem_detach(second);	/* EINVAL where the kernel left a hole */
	FAIL_IF(xpmem_release(a) || xpmem_remove(s), "teardown");
	munmap(buf, 2 * PG);
	return live_counters_settle();
}

/*
 * A size that is not a page multiple is rounded up to one, as the
 * established driver does: Open MPI's vader attaches "a 2 MiB aligned span
 * plus one byte" of a whole-address-space segment and uses the result
 * without checking it.  The attachment covers the whole last page and
 * nothing more.
 */
static int t_attach_size_rounded_up_to_a_page(void)
{
	long *buf = map_pages(3), *att, v;
	char *want = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	xpmem_segid_t s = xpmem_make(0, XPMEM_MAXADDR_SIZE, XPMEM_PERMIT_MODE, (void *)0600);
	xpmem_apid_t a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);

	FAIL_IF(want == MAP_FAILED || s < 0 || a < 0, "setup: %s", strerror(errno));
	fill(buf, 3, 9);
	att = xpmem_attach((struct xpmem_addr){ .apid = a, .offset = (off_t)(uintptr_t)buf },
			   PG + 1, want);
	FAIL_IF(att != (long *)want, "attach of PG + 1 bytes: %p (%s)", att, strerror(errno));
	/* the byte asked for and the rest of its page, from the source */
	FAIL_IF(bad_long(att, 2, 9) >= 0, "data of the two pages differs");
	att[LONGS_PER_PAGE + LONGS_PER_PAGE - 1] = 77;
	FAIL_IF(buf[2 * LONGS_PER_PAGE - 1] != 77, "a write to the last page missed the source");
	/* and not one page more: the reservation behind it is still PROT_NONE */
	FAIL_IF(tap_probe((long *)(want + 2 * PG), 0, &v) != SIGSEGV,
		"the page after the rounded size is accessible");
	FAIL_IF(xpmem_detach(att), "detach: %s", strerror(errno));
	FAIL_IF(tap_probe((long *)want, 0, &v) != SIGSEGV, "still mapped after detach");
	/* a one-byte attachment is one page */
	att = attach_apid(a, (off_t)(uintptr_t)(buf + 2 * LONGS_PER_PAGE), 1);
	FAIL_IF(att == (void *)-1, "attach of 1 byte: %s", strerror(errno));
	FAIL_IF(att[0] != ((9L << 32) | 2), "one-byte attachment shows %#lx", att[0]);
	FAIL_IF(att[LONGS_PER_PAGE - 1] != ((9L << 32) | 2), "end of the page differs");
	FAIL_IF(xpmem_detach(att), "detach: %s", strerror(errno));
	FAIL_IF(xpmem_release(a), "release");
	return xpmem_remove(s);
}

static int t_thread_of_same_process_uses_apid(void);

/* ---- permissions ------------------------------------------------------------------ */

static int t_rdonly_attach_write_gets_sigsegv(void)
{
	long *buf = map_pages(1), *att, v = 5;
	xpmem_segid_t s;

	buf[0] = 1;
	s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	att = attach_seg(s, XPMEM_RDONLY, 1, NULL);
	FAIL_IF(!att, "attach: %s", strerror(errno));
	FAIL_IF(att[0] != 1, "read %ld", att[0]);
	FAIL_IF(tap_probe(att, 1, &v) != SIGSEGV, "write to RDONLY attachment did not SIGSEGV");
	FAIL_IF(buf[0] != 1, "source changed to %ld", buf[0]);
	return xpmem_remove(s);
}

static int t_rdonly_attach_cannot_mprotect_writable(void)
{
	long *buf = map_pages(1), *att;
	xpmem_segid_t s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);

	att = attach_seg(s, XPMEM_RDONLY, 1, NULL);
	FAIL_IF(!att, "attach");
	FAIL_UNLESS_ERRNO(mprotect(att, PG, PROT_READ | PROT_WRITE), EACCES);
	return xpmem_remove(s);
}

/* ---- debugger access: /proc/PID/mem (ptrace's path) ---------------------------- */

/* export @pages pages filled with pattern @tag, attach them, open /proc/self/mem */
static int proc_mem_setup(int pages, int tag, int flags, long **buf, long **att,
			  xpmem_segid_t *s)
{
	int fd = open("/proc/self/mem", O_RDWR);

	if (fd < 0) {
		tap_diag("open /proc/self/mem: %s", strerror(errno));
		return -1;
	}
	*buf = map_pages(pages);
	fill(*buf, pages, tag);
	*s = xpmem_make(*buf, pages * PG, XPMEM_PERMIT_MODE, (void *)0600);
	*att = attach_seg(*s, flags, pages, NULL);
	if (!*att) {
		tap_diag("attach: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int t_proc_mem_reads_attachment(void)
{
	long *buf, *att, got[LONGS_PER_PAGE];
	xpmem_segid_t s;
	int fd = proc_mem_setup(3, 21, XPMEM_RDONLY, &buf, &att, &s);

	FAIL_IF(fd < 0, "setup");
	/* half a page on each side of a page boundary, nothing faulted yet */
	FAIL_IF(pread(fd, got, PG, (off_t)(uintptr_t)att + PG / 2) != (ssize_t)PG,
		"pread: %s", strerror(errno));
	for (int i = 0; i < (int)LONGS_PER_PAGE; i++)
		FAIL_IF(got[i] != buf[LONGS_PER_PAGE / 2 + i], "word %d: %#lx want %#lx", i,
			got[i], buf[LONGS_PER_PAGE / 2 + i]);
	close(fd);
	return xpmem_remove(s);
}

static int t_proc_mem_writes_rdwr_attachment(void)
{
	long *buf, *att, v[2] = { 0x1234567, 0x7654321 };
	xpmem_segid_t s;
	int fd = proc_mem_setup(2, 22, XPMEM_RDWR, &buf, &att, &s);

	FAIL_IF(fd < 0, "setup");
	/* straddle the page boundary */
	FAIL_IF(pwrite(fd, v, sizeof(v), (off_t)(uintptr_t)&att[LONGS_PER_PAGE - 1]) !=
		sizeof(v), "pwrite: %s", strerror(errno));
	FAIL_IF(buf[LONGS_PER_PAGE - 1] != v[0] || buf[LONGS_PER_PAGE] != v[1],
		"source has %#lx %#lx", buf[LONGS_PER_PAGE - 1], buf[LONGS_PER_PAGE]);
	FAIL_IF(att[LONGS_PER_PAGE] != v[1], "attachment reads %#lx", att[LONGS_PER_PAGE]);
	close(fd);
	return xpmem_remove(s);
}

static int t_proc_mem_cannot_write_rdonly_attachment(void)
{
	long *buf, *att, v = 99, before;
	xpmem_segid_t s;
	int fd = proc_mem_setup(1, 23, XPMEM_RDONLY, &buf, &att, &s);

	FAIL_IF(fd < 0, "setup");
	before = buf[0];
	/* /proc/PID/mem writes use FOLL_FORCE: still no write to the source */
	FAIL_UNLESS_ERRNO(pwrite(fd, &v, sizeof(v), (off_t)(uintptr_t)att), EIO);
	FAIL_IF(buf[0] != before || att[0] != before, "source %#lx attachment %#lx, want %#lx",
		buf[0], att[0], before);
	close(fd);
	return xpmem_remove(s);
}

static int drop_to_nobody(void)
{
	return setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	       setresuid(65534, 65534, 65534);
}

static int other_uid_gets(int in, int out, void *arg)
{
	long flags = (long)arg;

	(void)in;
	if (drop_to_nobody())
		return 10;
	if (xpmem_get(g_segid, (int)flags, XPMEM_PERMIT_MODE, NULL) >= 0)
		chan_send(out, 0);
	else
		chan_send(out, errno);
	return 0;
}

static int t_mode_0600_refuses_other_uid(void)
{
	long *buf = map_pages(1);
	struct peer p;
	long err;

	FAIL_IF(geteuid() != 0, "needs root, to become another user (the harness runs as root)");
	g_segid = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(peer_start(&p, other_uid_gets, (void *)XPMEM_RDONLY), "fork");
	err = peer_recv(&p);
	FAIL_IF(peer_wait(&p) != 0, "child failed");
	FAIL_IF(err != EACCES, "other uid got errno %ld, want EACCES", err);
	return xpmem_remove(g_segid);
}

static int t_mode_0644_other_uid_read_only(void)
{
	long *buf = map_pages(1);
	struct peer p;
	long ro, rw;

	FAIL_IF(geteuid() != 0, "needs root, to become another user (the harness runs as root)");
	g_segid = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0644);
	FAIL_IF(peer_start(&p, other_uid_gets, (void *)XPMEM_RDONLY), "fork");
	ro = peer_recv(&p);
	peer_wait(&p);
	FAIL_IF(peer_start(&p, other_uid_gets, (void *)XPMEM_RDWR), "fork");
	rw = peer_recv(&p);
	peer_wait(&p);
	FAIL_IF(ro != 0, "RDONLY get refused: errno %ld", ro);
	FAIL_IF(rw != EACCES, "RDWR get: errno %ld, want EACCES", rw);
	return xpmem_remove(g_segid);
}

static xpmem_apid_t g_apid;

static int other_process_uses_apid(int in, int out, void *arg)
{
	(void)in;
	(void)arg;
	chan_send(out, attach_apid(g_apid, 0, PG) == (void *)-1 ? errno : 0);
	chan_send(out, xpmem_release(g_apid) ? errno : 0);
	return 0;
}

static int t_apid_of_another_process_refused(void)
{
	long *buf = map_pages(1);
	struct peer p;
	long e1, e2;

	g_segid = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0666);
	g_apid = xpmem_get(g_segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	FAIL_IF(g_apid <= 0, "get");
	FAIL_IF(peer_start(&p, other_process_uses_apid, NULL), "fork");
	e1 = peer_recv(&p);
	e2 = peer_recv(&p);
	peer_wait(&p);
	FAIL_IF(e1 != EPERM, "attach with foreign apid: errno %ld, want EPERM", e1);
	FAIL_IF(e2 != EPERM, "release of foreign apid: errno %ld, want EPERM", e2);
	FAIL_IF(xpmem_release(g_apid) != 0, "owner's release failed");
	return xpmem_remove(g_segid);
}

static int t_guessed_ids_refused(void)
{
	long *buf = map_pages(1);
	xpmem_segid_t s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	xpmem_apid_t a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);

	/* same slot, another tag: must not reach the object */
	FAIL_UNLESS_ERRNO(xpmem_get(s ^ (1LL << 32), XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL), ENOENT);
	FAIL_UNLESS_ERRNO(xpmem_remove(s ^ (1LL << 40)), ENOENT);
	FAIL_UNLESS_ERRNO((long)attach_apid(a ^ (1LL << 33), 0, PG), ENOENT);
	FAIL_UNLESS_ERRNO(xpmem_release(a ^ (1LL << 33)), ENOENT);
	/* neighbouring slot */
	FAIL_UNLESS_ERRNO(xpmem_get(s + 1, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL), ENOENT);
	return xpmem_remove(s);
}

/* ---- bad input ---------------------------------------------------------------------- */

static int t_bad_ids_give_einval_or_enoent(void)
{
	FAIL_UNLESS_ERRNO(xpmem_get(0, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_get(-5, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_remove(0), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_release(-1), EINVAL);
	FAIL_UNLESS_ERRNO((long)attach_apid(0, 0, PG), EINVAL);
	/* well formed but never issued */
	FAIL_UNLESS_ERRNO(xpmem_get((1LL << 32) | 0x7ffffff0, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL), ENOENT);
	FAIL_UNLESS_ERRNO(xpmem_release((1LL << 32) | 0x7ffffff0), ENOENT);
	return 0;
}

static int t_unknown_flags_and_reserved_give_einval(void)
{
	long *buf = map_pages(1);
	xpmem_segid_t s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	int fd = open("/dev/xpmem", O_RDWR);
	struct xpmem_cmd_make mk;
	struct xpmem_cmd_attach at;

	FAIL_IF(fd < 0, "open: %s", strerror(errno));
	FAIL_UNLESS_ERRNO(xpmem_get(s, 0, XPMEM_PERMIT_MODE, NULL), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_get(s, XPMEM_RDONLY | XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_get(s, XPMEM_RDWR, 2, NULL), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_make(buf, PG, 2, (void *)0600), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)01000), EINVAL);

	memset(&mk, 0, sizeof(mk));
	mk.vaddr = (uintptr_t)buf;
	mk.size = PG;
	mk.permit_type = XPMEM_PERMIT_MODE;
	mk.permit_value = 0600;
	mk.flags = 1;
	FAIL_UNLESS_ERRNO(ioctl(fd, XPMEM_CMD_MAKE, &mk), EINVAL);
	mk.flags = 0;
	mk.reserved[1] = 1;
	FAIL_UNLESS_ERRNO(ioctl(fd, XPMEM_CMD_MAKE, &mk), EINVAL);
	memset(&at, 0, sizeof(at));
	at.apid = 1;
	at.size = PG;
	at.pad = 1;
	FAIL_UNLESS_ERRNO(ioctl(fd, XPMEM_CMD_ATTACH, &at), EINVAL);
	FAIL_UNLESS_ERRNO(ioctl(fd, _IO('X', 0x7f), NULL), ENOTTY);
	close(fd);
	return xpmem_remove(s);
}

static int t_make_bad_ranges_give_einval(void)
{
	char *buf = (char *)map_pages(2);

	FAIL_UNLESS_ERRNO(xpmem_make(buf + 8, PG, XPMEM_PERMIT_MODE, (void *)0600), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_make(buf, PG + 8, XPMEM_PERMIT_MODE, (void *)0600), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_make(buf, 0, XPMEM_PERMIT_MODE, (void *)0600), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_make((void *)-PG, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600), EINVAL);
	/* beyond any user address space, 4- or 5-level paging */
	FAIL_UNLESS_ERRNO(xpmem_make((void *)(1UL << 60), PG, XPMEM_PERMIT_MODE, (void *)0600), EINVAL);
	return 0;
}

static int t_attach_bad_ranges_give_einval(void)
{
	long *buf = map_pages(4);
	xpmem_segid_t s = xpmem_make(buf, 4 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	xpmem_apid_t a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	char *hint = (char *)map_pages(1);

	buf[0] = 42;
	buf[3 * LONGS_PER_PAGE] = 43;
	FAIL_UNLESS_ERRNO((long)attach_apid(a, 8, PG), EINVAL);		/* misaligned offset */
	FAIL_UNLESS_ERRNO((long)attach_apid(a, 0, 0), EINVAL);		/* empty */
	/* a size rounded up to a page must still end inside the segment */
	FAIL_UNLESS_ERRNO((long)attach_apid(a, PG, 3 * PG + 1), EINVAL);
	FAIL_UNLESS_ERRNO((long)attach_apid(a, 0, (size_t)-1), EINVAL);
	FAIL_UNLESS_ERRNO((long)attach_apid(a, 0, (size_t)-PG + 1), EINVAL);
	FAIL_UNLESS_ERRNO((long)attach_apid(a, 3 * PG, 2 * PG), EINVAL);	/* past the end */
	FAIL_UNLESS_ERRNO((long)attach_apid(a, 4 * PG, PG), EINVAL);	/* starts at the end */
	FAIL_UNLESS_ERRNO((long)attach_apid(a, -(off_t)PG, PG), EINVAL);	/* negative */
	FAIL_UNLESS_ERRNO((long)xpmem_attach((struct xpmem_addr){ a, 0 }, PG, hint + 8), EINVAL);
	/* a fixed address beyond the user address space: EINVAL, not mmap's ENOMEM */
	FAIL_UNLESS_ERRNO((long)xpmem_attach((struct xpmem_addr){ a, 0 }, PG, (void *)(1UL << 60)),
			  EINVAL);
	FAIL_UNLESS_ERRNO((long)xpmem_attach((struct xpmem_addr){ a, 0 }, 2 * PG, (void *)-PG),
			  EINVAL);
	/* a fixed address over the caller's own source range of the segment */
	FAIL_UNLESS_ERRNO((long)xpmem_attach((struct xpmem_addr){ a, 0 }, PG, buf), EINVAL);
	FAIL_UNLESS_ERRNO((long)xpmem_attach((struct xpmem_addr){ a, PG }, 2 * PG, buf), EINVAL);
	FAIL_UNLESS_ERRNO((long)xpmem_attach((struct xpmem_addr){ a, 2 * PG }, 2 * PG,
					     (char *)buf + 3 * PG), EINVAL);
	/* and the source memory is still the caller's own */
	FAIL_IF(buf[0] != 42 || buf[3 * LONGS_PER_PAGE] != 43, "source memory changed");
	return xpmem_remove(s);
}

static int t_bad_user_pointer_gives_efault(void)
{
	int fd = open("/dev/xpmem", O_RDWR);

	FAIL_IF(fd < 0, "open");
	FAIL_UNLESS_ERRNO(ioctl(fd, XPMEM_CMD_MAKE, (void *)8), EFAULT);
	FAIL_UNLESS_ERRNO(ioctl(fd, XPMEM_CMD_GET, (void *)-4096L), EFAULT);
	FAIL_UNLESS_ERRNO(ioctl(fd, XPMEM_CMD_VERSION, NULL), EFAULT);
	close(fd);
	return 0;
}

static int t_detach_of_non_attachment_gives_einval(void)
{
	long *buf = map_pages(1);

	FAIL_UNLESS_ERRNO(xpmem_detach(buf), EINVAL);
	FAIL_UNLESS_ERRNO(xpmem_detach(NULL), EINVAL);
	return 0;
}

static int t_get_of_removed_segment_gives_enoent(void)
{
	long *buf = map_pages(1);
	xpmem_segid_t s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	xpmem_apid_t a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);

	FAIL_IF(xpmem_remove(s), "remove");
	FAIL_UNLESS_ERRNO(xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL), ENOENT);
	/* a permit obtained before the removal no longer attaches */
	FAIL_UNLESS_ERRNO((long)attach_apid(a, 0, PG), ENOENT);
	return xpmem_release(a);
}

/* ---- holes and changes in the source -------------------------------------------------- */

static int t_hole_access_gives_sigbus(void)
{
	long *buf = map_pages(3), *att, v = 0;
	xpmem_segid_t s;

	fill(buf, 3, 6);
	s = xpmem_make(buf, 3 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	munmap((char *)buf + PG, PG);
	att = attach_seg(s, XPMEM_RDWR, 3, NULL);
	FAIL_IF(!att, "attach over a hole: %s", strerror(errno));
	FAIL_IF(att[0] != ((6L << 32) | 0), "page 0");
	FAIL_IF(tap_probe(att + LONGS_PER_PAGE, 0, &v) != SIGBUS, "hole read did not SIGBUS");
	FAIL_IF(tap_probe(att + LONGS_PER_PAGE, 1, &v) != SIGBUS, "hole write did not SIGBUS");
	FAIL_IF(att[2 * LONGS_PER_PAGE] != ((6L << 32) | 2), "page 2");
	return xpmem_remove(s);
}

static int t_memory_mapped_into_hole_becomes_visible(void)
{
	long *buf = map_pages(3), *att, v = 0, *hole;
	xpmem_segid_t s;

	s = xpmem_make(buf, 3 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	munmap((char *)buf + PG, PG);
	att = attach_seg(s, XPMEM_RDWR, 3, NULL);
	FAIL_IF(tap_probe(att + LONGS_PER_PAGE, 0, &v) != SIGBUS, "hole did not SIGBUS");
	hole = mmap((char *)buf + PG, PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	FAIL_IF(hole == MAP_FAILED, "mmap into hole");
	hole[5] = 0xfeed;
	FAIL_IF(tap_probe(att + LONGS_PER_PAGE + 5, 0, &v) != 0 || v != 0xfeed,
		"new memory in the hole not visible (got %#lx)", v);
	return xpmem_remove(s);
}

static int t_source_remap_shows_new_memory(void)
{
	long *buf = map_pages(2), *att, *n;
	xpmem_segid_t s;

	fill(buf, 2, 1);
	s = xpmem_make(buf, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	att = attach_seg(s, XPMEM_RDWR, 2, NULL);
	FAIL_IF(bad_long(att, 2, 1) >= 0, "initial data");
	munmap(buf, 2 * PG);
	n = mmap(buf, 2 * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	FAIL_IF(n != buf, "remap");
	fill(n, 2, 2);
	FAIL_IF(bad_long(att, 2, 2) >= 0, "attacher still sees old memory at %ld", bad_long(att, 2, 2));
	return xpmem_remove(s);
}

static int t_source_madv_dontneed_shows_zeros(void)
{
	long *buf = map_pages(2), *att;
	xpmem_segid_t s;

	fill(buf, 2, 3);
	s = xpmem_make(buf, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	att = attach_seg(s, XPMEM_RDONLY, 2, NULL);
	FAIL_IF(att[LONGS_PER_PAGE] != ((3L << 32) | 1), "initial data");
	FAIL_IF(madvise(buf, 2 * PG, MADV_DONTNEED), "madvise");
	FAIL_IF(att[0] != 0 || att[LONGS_PER_PAGE] != 0, "stale data after DONTNEED: %#lx", att[0]);
	buf[0] = 8;
	FAIL_IF(att[0] != 8, "new write not visible");
	return xpmem_remove(s);
}

/* ---- lifetime: exits, kills, releases --------------------------------------------------- */

static int source_exports_then_waits(int in, int out, void *arg)
{
	long *buf = map_pages(4);
	xpmem_segid_t s;

	(void)arg;
	fill(buf, 4, 0x77);
	s = xpmem_make(buf, 4 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	chan_send(out, s);
	chan_recv(in);		/* until told to exit (or the pipe closes) */
	return 0;
}

static int t_source_exit_gives_attacher_sigbus(void)
{
	struct peer p;
	long *att, v;
	xpmem_apid_t a;

	FAIL_IF(peer_start(&p, source_exports_then_waits, NULL), "fork");
	att = attach_seg(peer_recv(&p), XPMEM_RDWR, 4, &a);
	FAIL_IF(!att, "attach: %s", strerror(errno));
	FAIL_IF(bad_long(att, 4, 0x77) >= 0, "data");
	peer_send(&p, 1);
	FAIL_IF(peer_wait(&p) != 0, "source failed");
	FAIL_IF(tap_probe(att, 0, &v) != SIGBUS, "read after source exit did not SIGBUS");
	FAIL_IF(tap_probe(att + 3 * LONGS_PER_PAGE, 1, &v) != SIGBUS, "write did not SIGBUS");
	FAIL_IF(xpmem_detach(att) != 0, "detach after source exit: %s", strerror(errno));
	FAIL_IF(xpmem_release(a) != 0, "release after source exit: %s", strerror(errno));
	return live_counters_settle();
}

static int attacher_touches_then_exits(int in, int out, void *arg)
{
	long *att = attach_seg(g_segid, XPMEM_RDWR, 4, NULL);

	(void)in;
	(void)arg;
	if (!att)
		return 10;
	fill(att, 4, 0x31);
	chan_send(out, 1);
	return 0;	/* exit with the attachment still mapped */
}

static int t_attacher_exit_leaves_source_working(void)
{
	long *buf = map_pages(4), *att;
	struct peer p;

	g_segid = xpmem_make(buf, 4 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(peer_start(&p, attacher_touches_then_exits, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1 || peer_wait(&p) != 0, "attacher failed");
	FAIL_IF(bad_long(buf, 4, 0x31) >= 0, "attacher's writes lost");
	fill(buf, 4, 0x32);
	att = attach_seg(g_segid, XPMEM_RDONLY, 4, NULL);
	FAIL_IF(!att || bad_long(att, 4, 0x32) >= 0, "segment unusable after attacher exit");
	/* the exited attacher's attachment is torn down by a worker: bounded, not synchronous */
	for (int i = 0; i < 100 * tap_time_scale() && counter("attachments") != 1; i++)
		usleep(100000);
	FAIL_IF(counter("attachments") != 1, "attachments = %ld 10 s after the exit, want 1",
		counter("attachments"));
	return xpmem_remove(g_segid);
}

static int source_writes_forever(int in, int out, void *arg)
{
	long *buf = map_pages(16);
	xpmem_segid_t s = xpmem_make(buf, 16 * PG, XPMEM_PERMIT_MODE, (void *)0600);

	(void)in;
	(void)arg;
	chan_send(out, s);
	for (unsigned long i = 0;; i++)
		buf[(i * 613) % (16 * LONGS_PER_PAGE)] = (long)i;
	return 0;
}

static int t_kill9_source_in_tight_loop(void)
{
	struct peer p;
	long *att, v = 0;
	xpmem_apid_t a;
	time_t end;
	int sig = 0;

	FAIL_IF(peer_start(&p, source_writes_forever, NULL), "fork");
	att = attach_seg(peer_recv(&p), XPMEM_RDWR, 16, &a);
	FAIL_IF(!att, "attach: %s", strerror(errno));
	end = time(NULL) + 1;
	for (unsigned long i = 0; time(NULL) < end; i++)
		att[(i * 31) % (16 * LONGS_PER_PAGE)] += 1;
	kill(p.pid, SIGKILL);
	FAIL_IF(peer_wait(&p) != 128 + SIGKILL, "source not killed");
	FAIL_IF(d_state_stuck(), "a task stuck in D state after the kill");
	/* every page, not just the first: none may still reach the dead mm */
	for (size_t i = 0; i < 16; i++) {
		sig = tap_probe(att + i * LONGS_PER_PAGE, 0, &v);
		FAIL_IF(sig != SIGBUS, "page %zu after the source was killed: signal %d", i, sig);
		sig = tap_probe(att + i * LONGS_PER_PAGE + 1, 1, &v);
		FAIL_IF(sig != SIGBUS, "write to page %zu after the source was killed: signal %d", i, sig);
	}
	FAIL_IF(xpmem_detach(att) || xpmem_release(a), "teardown");
	return live_counters_settle();
}

/* increments the odd longs of the segment through its attachment */
static int attacher_hammers(int in, int out, void *arg)
{
	long *att = attach_seg(g_segid, XPMEM_RDWR, 16, NULL);

	(void)in;
	(void)arg;
	if (!att)
		return 10;
	chan_send(out, 1);
	for (unsigned long i = 0;; i++)
		att[((i * 613) % (8 * LONGS_PER_PAGE)) * 2 + 1] += 1;
	return 0;
}

/* an attacher that checks the whole segment holds fill(0x55) */
static int attacher_checks_fill(int in, int out, void *arg)
{
	long *att = attach_seg(g_segid, XPMEM_RDONLY, 16, NULL);

	(void)in;
	(void)arg;
	chan_send(out, att ? bad_long(att, 16, 0x55) : -2);
	return 0;
}

static int t_kill9_attacher_in_tight_loop(void)
{
	long *buf = map_pages(16), odd = 0;
	struct peer p, q;
	time_t end;

	g_segid = xpmem_make(buf, 16 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(peer_start(&p, attacher_hammers, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher did not start");
	/* the source writes the even longs and keeps invalidating pages */
	end = time(NULL) + 1;
	for (unsigned long i = 0; time(NULL) < end; i++) {
		buf[((i * 7) % (8 * LONGS_PER_PAGE)) * 2] += 1;
		if (i % 4096 == 0)
			madvise(buf + (i / 4096 % 16) * LONGS_PER_PAGE, PG, MADV_DONTNEED);
	}
	kill(p.pid, SIGKILL);
	FAIL_IF(peer_wait(&p) != 128 + SIGKILL, "attacher not killed");
	FAIL_IF(d_state_stuck(), "a task stuck in D state after the kill");
	/* the killed attacher's writes reached the source's own pages */
	for (size_t i = 1; i < 16 * LONGS_PER_PAGE; i += 2)
		odd += buf[i];
	FAIL_IF(odd <= 0, "none of the attacher's writes are in the source");
	/* and the segment still works for the next attacher */
	fill(buf, 16, 0x55);
	FAIL_IF(peer_start(&q, attacher_checks_fill, NULL), "fork");
	FAIL_IF(peer_recv(&q) != -1, "a new attacher does not see the source's data");
	FAIL_IF(peer_wait(&q), "new attacher");
	FAIL_IF(xpmem_remove(g_segid), "remove");
	return live_counters_settle();
}

static int t_release_revokes_attachment(void)
{
	long *buf = map_pages(1), *att, v;
	xpmem_segid_t s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	xpmem_apid_t a;

	buf[0] = 1;
	att = attach_seg(s, XPMEM_RDWR, 1, &a);
	FAIL_IF(!att || att[0] != 1, "attach");
	FAIL_IF(xpmem_release(a), "release: %s", strerror(errno));
	FAIL_IF(tap_probe(att, 0, &v) != SIGBUS, "attachment usable after its permit was released");
	FAIL_IF(xpmem_detach(att), "detach: %s", strerror(errno));
	return xpmem_remove(s);
}

static int attacher_reads_until_signal(int in, int out, void *arg)
{
	long *att = attach_seg(g_segid, XPMEM_RDONLY, 1, NULL), v;

	(void)arg;
	if (!att)
		return 10;
	chan_send(out, att[0]);
	chan_recv(in);
	chan_send(out, tap_probe(att, 0, &v));
	return 0;
}

static int t_remove_revokes_attachments(void)
{
	long *buf = map_pages(1);
	struct peer p;
	long first, sig;

	buf[0] = 12;
	g_segid = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(peer_start(&p, attacher_reads_until_signal, NULL), "fork");
	first = peer_recv(&p);
	FAIL_IF(xpmem_remove(g_segid), "remove");
	peer_send(&p, 1);
	sig = peer_recv(&p);
	peer_wait(&p);
	FAIL_IF(first != 12, "first read %ld", first);
	FAIL_IF(sig != SIGBUS, "access after remove: signal %ld, want SIGBUS", sig);
	return 0;
}

/* ---- fork ----------------------------------------------------------------------------- */

static int t_fork_child_inherits_no_exports_or_attachments(void)
{
	long *buf = map_pages(1), *att;
	xpmem_segid_t s;
	xpmem_apid_t a;
	pid_t pid;
	int st;

	buf[0] = 21;
	s = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	att = attach_seg(s, XPMEM_RDWR, 1, &a);
	FAIL_IF(!att, "attach");
	pid = fork();
	if (pid == 0) {
		long v;

		if (tap_probe(att, 0, &v) != SIGSEGV)
			_exit(1);	/* attachment vma was copied */
		if (xpmem_remove(s) != -1 || errno != EPERM)
			_exit(2);	/* parent's segment is not the child's */
		if (attach_apid(a, 0, PG) != (void *)-1 || errno != EPERM)
			_exit(3);	/* parent's permit is not the child's */
		_exit(0);
	}
	FAIL_IF(waitpid(pid, &st, 0) != pid, "wait");
	FAIL_IF(!WIFEXITED(st) || WEXITSTATUS(st), "child check %d failed", WEXITSTATUS(st));
	FAIL_IF(att[0] != 21, "parent attachment broken");
	return xpmem_remove(s);
}

/*
 * Source forks while an attacher is attached.  Both sides then write
 * (copy-on-write): the attacher must follow the source's pages, never the
 * child's, in both directions.
 */
static int cow_attacher(int in, int out, void *arg)
{
	long *att = attach_seg(g_segid, XPMEM_RDWR, 2, NULL);

	(void)arg;
	if (!att)
		return 10;
	for (;;) {
		long cmd = chan_recv(in);

		if (cmd == 0)
			return 0;
		if (cmd == 1)		/* read page 0 */
			chan_send(out, att[0]);
		if (cmd == 2)		/* read page 1 */
			chan_send(out, att[LONGS_PER_PAGE]);
		if (cmd == 3) {		/* write page 1 */
			att[LONGS_PER_PAGE] = 0x3333;
			chan_send(out, 1);
		}
		if (cmd < 0)
			return 11;
	}
}

static int t_fork_cow_attacher_follows_source(void)
{
	long *buf = map_pages(2);
	int c2p[2], p2c[2];
	struct peer a;
	long v;
	pid_t child;
	int st;

	buf[0] = 0x1000;
	buf[LONGS_PER_PAGE] = 0x2000;
	g_segid = xpmem_make(buf, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(peer_start(&a, cow_attacher, NULL), "fork attacher");
	peer_send(&a, 1);
	FAIL_IF(peer_recv(&a) != 0x1000, "attacher initial read");
	peer_send(&a, 2);
	FAIL_IF(peer_recv(&a) != 0x2000, "attacher initial read");

	FAIL_IF(pipe(c2p) || pipe(p2c), "pipe");
	child = fork();
	if (child == 0) {
		/* the forked copy of the source: write page 0, then check page 1 */
		buf[0] = 0xc0c0;
		chan_send(c2p[1], 1);
		chan_recv(p2c[0]);
		_exit(buf[LONGS_PER_PAGE] == 0x2000 ? 0 : 1);
	}
	FAIL_IF(chan_recv(c2p[0]) != 1, "child did not write");
	/* child's write must not be visible to the source's attacher */
	peer_send(&a, 1);
	v = peer_recv(&a);
	FAIL_IF(v != 0x1000, "attacher sees the child's page 0 (%#lx)", v);
	/* the source writes page 0 (breaking COW): attacher follows */
	buf[0] = 0x5a5a;
	peer_send(&a, 1);
	v = peer_recv(&a);
	FAIL_IF(v != 0x5a5a, "attacher missed source write after fork (%#lx)", v);
	/* the attacher writes page 1 (still COW-shared): source sees it, child not */
	peer_send(&a, 3);
	FAIL_IF(peer_recv(&a) != 1, "attacher write");
	FAIL_IF(buf[LONGS_PER_PAGE] != 0x3333, "source missed attacher write (%#lx)", buf[LONGS_PER_PAGE]);
	chan_send(p2c[1], 1);
	FAIL_IF(waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st),
		"forked child saw the attacher's write");
	peer_send(&a, 0);
	FAIL_IF(peer_wait(&a), "attacher failed");
	return xpmem_remove(g_segid);
}

/* ---- scale and threads --------------------------------------------------------------------- */

static int cmp_id(const void *a, const void *b)
{
	xpmem_segid_t x = *(const xpmem_segid_t *)a, y = *(const xpmem_segid_t *)b;

	return x < y ? -1 : x > y;
}

static int t_thousand_segments_in_one_process(void)
{
	const int n = 1000;
	long *buf = map_pages(n), *att;
	xpmem_segid_t *ids = calloc(n, sizeof(*ids)), *sorted;

	fill(buf, n, 0x44);
	for (int i = 0; i < n; i++) {
		ids[i] = xpmem_make((char *)buf + i * PG, PG, XPMEM_PERMIT_MODE, (void *)0600);
		FAIL_IF(ids[i] <= 0, "make #%d: %s", i, strerror(errno));
	}
	/* all n ids distinct */
	sorted = malloc(n * sizeof(*sorted));
	memcpy(sorted, ids, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_id);
	for (int i = 1; i < n; i++)
		FAIL_IF(sorted[i] == sorted[i - 1], "duplicate id %#llx", (long long)sorted[i]);
	FAIL_IF(counter("segments") < n, "segments counter %ld", counter("segments"));
	att = attach_seg(ids[n - 1], XPMEM_RDONLY, 1, NULL);
	FAIL_IF(!att || att[0] != ((0x44L << 32) | (n - 1)), "last segment's data");
	att = attach_seg(ids[n / 2], XPMEM_RDONLY, 1, NULL);
	FAIL_IF(!att || att[0] != ((0x44L << 32) | (n / 2)), "middle segment's data");
	for (int i = 0; i < n; i++)
		FAIL_IF(xpmem_remove(ids[i]), "remove #%d", i);
	return 0;
}

static void *thread_attach(void *arg)
{
	long *att = attach_apid(g_apid, 0, PG);

	(void)arg;
	return att == (void *)-1 ? NULL : (void *)att[0];
}

static int t_thread_of_same_process_uses_apid(void)
{
	long *buf = map_pages(1);
	pthread_t th;
	void *r;

	buf[0] = 0x7e;
	g_segid = xpmem_make(buf, PG, XPMEM_PERMIT_MODE, (void *)0600);
	g_apid = xpmem_get(g_segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	pthread_create(&th, NULL, thread_attach, NULL);
	pthread_join(th, &r);
	FAIL_IF((long)r != 0x7e, "thread could not use its process's apid");
	return xpmem_remove(g_segid);
}

/*
 * How many lines of /proc/self/fdinfo/@fd start with "@kind <id>" (the
 * segments and permits made through that descriptor); -1 if unreadable.
 */
static int fd_lists(int fd, const char *kind, long long id)
{
	char path[64], line[256], want[64];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	snprintf(want, sizeof(want), "%s %#llx ", kind, id);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, want, strlen(want));
	fclose(f);
	return n;
}

static int t_close_of_device_cleans_up(void)
{
	long *buf = map_pages(2);
	int fd = open("/dev/xpmem", O_RDWR);
	struct xpmem_cmd_make mk;
	struct xpmem_cmd_get gt;

	memset(&mk, 0, sizeof(mk));
	mk.vaddr = (uintptr_t)buf;
	mk.size = 2 * PG;
	mk.permit_type = XPMEM_PERMIT_MODE;
	mk.permit_value = 0600;
	FAIL_IF(ioctl(fd, XPMEM_CMD_MAKE, &mk), "make: %s", strerror(errno));
	memset(&gt, 0, sizeof(gt));
	gt.segid = mk.segid;
	gt.flags = XPMEM_RDWR;
	gt.permit_type = XPMEM_PERMIT_MODE;
	FAIL_IF(ioctl(fd, XPMEM_CMD_GET, &gt), "get: %s", strerror(errno));
	/*
	 * This descriptor's own objects, from its fdinfo: the global live
	 * counters also hold what earlier tests' exited children leave to
	 * the driver's workers, which finish when the host lets them.
	 */
	FAIL_IF(fd_lists(fd, "segment", mk.segid) != 1 || fd_lists(fd, "permit", gt.apid) != 1,
		"fdinfo of the descriptor does not list its segment %#llx and permit %#llx",
		(long long)mk.segid, (long long)gt.apid);
	close(fd);
	FAIL_UNLESS_ERRNO(xpmem_get(mk.segid, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL), ENOENT);
	return live_counters_settle();
}

/* is page @p mapped in this process (/proc/self/pagemap bit 63)? -1: cannot tell */
static int page_present(const void *p)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &e, sizeof(e), (off_t)((uintptr_t)p / PG * sizeof(e)));
	close(fd);
	return n == sizeof(e) ? (int)(e >> 63) : -1;
}

/*
 * One fault maps the faulting page and the pages after it that the source
 * has present (up to 16), never more than the vma, the attachment or the
 * source vma cover, and never faults pages into the source.
 */
static int t_fault_maps_the_present_pages_after_it(void)
{
	size_t n = 40;
	char *src = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	xpmem_segid_t seg;
	xpmem_apid_t apid;
	long f0;
	char *att;

	FAIL_IF(src == MAP_FAILED, "mmap");
	madvise(src, n * PG, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < n; i++)	/* present: 0-9 and 20-39 */
		if (i < 10 || i >= 20)
			src[i * PG] = (char)i;
	seg = xpmem_make(src, n * PG, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	att = xpmem_attach((struct xpmem_addr){ .apid = apid }, n * PG, NULL);
	FAIL_IF(seg <= 0 || apid <= 0 || att == (void *)-1, "make/get/attach");
	f0 = counter("faults");
	FAIL_IF(att[0] != 0, "data");
	FAIL_IF(counter("faults") - f0 != 1, "%ld faults for the first read", counter("faults") - f0);
	for (size_t i = 1; i < 10; i++)
		FAIL_IF(page_present(att + i * PG) != 1, "page %zu (present in the source) not mapped", i);
	for (size_t i = 10; i < 20; i++) {
		FAIL_IF(page_present(att + i * PG) != 0, "page %zu (absent in the source) mapped", i);
		FAIL_IF(page_present(src + i * PG) != 0, "page %zu faulted into the source", i);
	}
	/* from page 20: 16 pages (20-35) in one fault, 36 on faults again */
	f0 = counter("faults");
	FAIL_IF(att[20 * PG] != 20, "data");
	FAIL_IF(counter("faults") - f0 != 1, "%ld faults for the read of page 20",
		counter("faults") - f0);
	for (size_t i = 21; i < 36; i++)
		FAIL_IF(page_present(att + i * PG) != 1, "page %zu not mapped by the fault at 20", i);
	FAIL_IF(page_present(att + 36 * PG) != 0, "page 36: more than 16 pages in one fault");
	for (size_t i = 0; i < n; i++)
		if (i < 10 || i >= 20)
			FAIL_IF(att[i * PG] != (char)i, "page %zu reads %d", i, att[i * PG]);
#ifdef MADV_POPULATE_READ
	/* prefault without an API change: MADV_POPULATE_READ goes through the same faults */
	{
		xpmem_apid_t apid2 = xpmem_get(seg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
		char *att2 = xpmem_attach((struct xpmem_addr){ .apid = apid2 }, n * PG, NULL);
		long faults;

		FAIL_IF(apid2 <= 0 || att2 == (void *)-1, "second get/attach");
		f0 = counter("faults");
		FAIL_IF(madvise(att2, n * PG, MADV_POPULATE_READ), "MADV_POPULATE_READ: %s",
			strerror(errno));
		faults = counter("faults") - f0;
		for (size_t i = 0; i < n; i++)
			FAIL_IF(page_present(att2 + i * PG) != 1, "page %zu not populated", i);
		/* 0-9, then 10-19 one by one (absent in the source), 20-35, 36-39 */
		FAIL_IF(faults > 13, "%ld faults to populate %zu pages", faults, n);
		FAIL_IF(att2[20 * PG] != 20, "populated data");
		FAIL_IF(xpmem_detach(att2) || xpmem_release(apid2), "second teardown");
	}
#endif
	/* an invalidation takes fault-around pages down like any other */
	src[25 * PG] = 99;
	madvise(src + 25 * PG, PG, MADV_DONTNEED);
	FAIL_IF(page_present(att + 25 * PG) != 0, "page 25 still mapped after the source dropped it");
	FAIL_IF(att[25 * PG] != 0, "page 25 after the source dropped it");
	FAIL_IF(xpmem_detach(att) || xpmem_release(apid) || xpmem_remove(seg), "teardown");
	munmap(src, n * PG);
	return live_counters_settle();
}

/*
 * An invalidation zaps an attachment only where its attacher may have PTEs
 * (what it touched, with fault-around): elsewhere it is counted as
 * invalidate_unmapped and costs no zap.  The mapped range shrinks by what
 * a zap took down at its ends and grows again with new faults: a page
 * mapped after a shrink is still taken down when the source drops it.
 */
static int t_invalidation_zaps_only_where_the_attacher_mapped(void)
{
	size_t n = 64;
	char *src = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long acks, unmapped;
	xpmem_segid_t seg;
	xpmem_apid_t apid;
	char *att;

	FAIL_IF(src == MAP_FAILED, "mmap");
	madvise(src, n * PG, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < n; i++)
		src[i * PG] = (char)i;
	seg = xpmem_make(src, n * PG, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	att = xpmem_attach((struct xpmem_addr){ .apid = apid }, n * PG, NULL);
	FAIL_IF(seg <= 0 || apid <= 0 || att == (void *)-1, "make/get/attach");
#define INVAL(first, pages, want_acks, want_unmapped) do {				\
	acks = counter("acks");								\
	unmapped = counter("invalidate_unmapped");					\
	FAIL_IF(madvise(src + (first) * PG, (pages) * PG, MADV_DONTNEED), "madvise");	\
	FAIL_IF(counter("acks") - acks != (want_acks) ||				\
		counter("invalidate_unmapped") - unmapped != (want_unmapped),		\
		"DONTNEED of pages %d-%d: %ld zaps, %ld without one, want %d and %d",	\
		(first), (first) + (pages) - 1, counter("acks") - acks,			\
		counter("invalidate_unmapped") - unmapped, (want_acks), (want_unmapped));	\
} while (0)
	/* nothing touched yet: nothing to zap */
	INVAL(50, 1, 0, 1);
	/* page 10 and fault-around: 10-25 mapped */
	FAIL_IF(att[10 * PG] != 10, "data of page 10");
	FAIL_IF(page_present(att + 25 * PG) != 1, "page 25 not mapped by the fault at 10");
	INVAL(40, 1, 0, 1);
	FAIL_IF(page_present(att + 10 * PG) != 1, "page 10 lost by an invalidation elsewhere");
	/* fault-around pages count: inside (20), at the high end (25, then 24) */
	INVAL(20, 1, 1, 0);
	INVAL(25, 1, 1, 0);
	INVAL(24, 1, 1, 0);
	FAIL_IF(page_present(att + 24 * PG) != 0, "page 24 still mapped after the source dropped it");
	/* across the low end: zapped; the mapped range now starts at 13 */
	INVAL(8, 5, 1, 0);
	FAIL_IF(page_present(att + 11 * PG) != 0, "page 11 mapped after the source dropped it");
	FAIL_IF(page_present(att + 13 * PG) != 1, "page 13 lost");
	/* a fault below it widens it again (2-7: the source dropped 8 on) */
	FAIL_IF(att[3 * PG] != 3, "data of page 3");
	FAIL_IF(page_present(att + 7 * PG) != 1, "page 7 not mapped by the fault at 3");
	INVAL(3, 1, 1, 0);
	FAIL_IF(page_present(att + 3 * PG) != 0, "page 3 still mapped after the source dropped it");
	FAIL_IF(att[3 * PG] != 0, "page 3 reads %d after the source dropped it", att[3 * PG]);
	/* all of it: zapped once; then nothing is mapped */
	INVAL(0, (int)n, 1, 0);
	INVAL(20, 1, 0, 1);
#undef INVAL
	FAIL_IF(xpmem_detach(att) || xpmem_release(apid) || xpmem_remove(seg), "teardown");
	munmap(src, n * PG);
	return live_counters_settle();
}

/* write @v to the module file @path; 0 if it took */
static int write_sys(const char *path, const char *v)
{
	FILE *f = fopen(path, "w");
	int bad;

	if (!f)
		return -1;
	bad = fputs(v, f) < 0;
	return fclose(f) || bad;
}

/* read the first word of @path into @buf ("" if it cannot) */
static void read_sys(const char *path, char *buf, int len)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (f) {
		if (!fgets(buf, len, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
}

#define TWO_PASS	"/sys/module/xpmem/parameters/two_pass_invalidation"
#define ACK_DELAY	"/sys/kernel/debug/xpmem/ack_delay_ms"
#define HELD_MAX	"/sys/kernel/debug/xpmem/zaps_held_max"

/* does this kernel's interval notifier have two passes (7.1 on)? */
static int kernel_has_two_pass_notifier(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return -1;
	return major > 7 || (major == 7 && minor >= 1);
}

/*
 * One invalidation, one wait: when N attachments map the page the source
 * drops, each is zapped exactly once (an attachment of the next page is
 * not), every zap is started before the invalidating task waits (the
 * zaps, each held by the test hook ack_delay_ms, are held at the same
 * time), and on a kernel whose notifier has one pass the first mirror
 * reached starts the zaps of all the others (batched_zaps).  With
 * two_pass_invalidation=N each is zapped in its own call, one at a time.
 * Every attachment then reads the source's new page.
 */
static int t_invalidation_of_a_page_many_attachments_map_zaps_each_once(void)
{
	enum { N = 16 };
	char *src = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int core_two_pass = kernel_has_two_pass_notifier();
	int hooks = access(ACK_DELAY, W_OK) == 0;
	volatile char *att[N], *next;
	char two_pass_was[8];
	xpmem_segid_t seg;
	xpmem_apid_t apid;
	int ret = 1;

	FAIL_IF(src == MAP_FAILED || core_two_pass < 0, "mmap/uname");
	madvise(src, 2 * PG, MADV_NOHUGEPAGE);
	src[0] = 1;
	src[PG] = 9;
	seg = xpmem_make(src, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	FAIL_IF(seg <= 0 || apid <= 0, "make/get");
	for (int i = 0; i < N; i++) {
		att[i] = xpmem_attach((struct xpmem_addr){ .apid = apid }, PG, NULL);
		FAIL_IF(att[i] == (void *)-1, "attach %d: %s", i, strerror(errno));
	}
	next = xpmem_attach((struct xpmem_addr){ .apid = apid, .offset = PG }, PG, NULL);
	FAIL_IF(next == (void *)-1, "attach of the next page: %s", strerror(errno));
	read_sys(TWO_PASS, two_pass_was, sizeof(two_pass_was));
	FAIL_IF(!two_pass_was[0], "no module parameter two_pass_invalidation");
	if (!hooks)
		tap_diag("no test hooks: the zaps' overlap is not checked");
	for (int round = 0; round < 2; round++) {
		/* round 0: every zap started before the wait; round 1: one wait per mirror */
		int batched_want = round == 0 && !core_two_pass ? N - 1 : 0;
		char held[16] = "";
		long acks, batched;

		if (write_sys(TWO_PASS, round == 0 ? "Y" : "N") ||
		    (hooks && (write_sys(HELD_MAX, "0") || write_sys(ACK_DELAY, "200")))) {
			tap_diag("cannot set two_pass_invalidation or the hooks");
			goto out;
		}
		if (next[0] != 9) {
			tap_diag("round %d: the attachment of the next page reads %d", round, next[0]);
			goto out;
		}
		for (int i = 0; i < N; i++)
			if (att[i][0] != src[0]) {
				tap_diag("round %d: attachment %d reads %d, want %d", round, i,
					 att[i][0], src[0]);
				goto out;
			}
		acks = counter("acks");
		batched = counter("batched_zaps");
		if (madvise(src, PG, MADV_DONTNEED)) {
			tap_diag("madvise: %s", strerror(errno));
			goto out;
		}
		acks = counter("acks") - acks;
		batched = counter("batched_zaps") - batched;
		if (hooks) {
			write_sys(ACK_DELAY, "0");
			read_sys(HELD_MAX, held, sizeof(held));
		}
		tap_diag("round %d (two_pass_invalidation=%s): %ld zaps, %ld batched, at most %s held at once",
			 round, round == 0 ? "Y" : "N", acks, batched, hooks ? held : "?");
		if (acks != N || batched != batched_want) {
			tap_diag("round %d: want %d zaps and %d batched", round, N, batched_want);
			goto out;
		}
		if (hooks && (round == 0 ? atoi(held) < 2 : atoi(held) != 1)) {
			tap_diag("round %d: %s zaps held at once, want %s", round, held,
				 round == 0 ? "several" : "one");
			goto out;
		}
		for (int i = 0; i < N; i++)
			if (page_present((void *)att[i]) != 0 || att[i][0] != 0) {
				tap_diag("round %d: attachment %d still maps the dropped page", round, i);
				goto out;
			}
		if (page_present((void *)next) != 1) {
			tap_diag("round %d: the attachment of the next page was zapped", round);
			goto out;
		}
		src[0] = (char)(round + 2);
	}
	ret = 0;
out:
	if (hooks)
		write_sys(ACK_DELAY, "0");
	write_sys(TWO_PASS, two_pass_was);
	for (int i = 0; i < N; i++)
		xpmem_detach((void *)att[i]);
	xpmem_detach((void *)next);
	FAIL_IF(xpmem_release(apid) || xpmem_remove(seg), "teardown");
	munmap(src, 2 * PG);
	return ret ? ret : live_counters_settle();
}

#define SPACE_MAX	"/sys/kernel/debug/xpmem/space_pages_max"

/*
 * The attachments of one process are mapped through one file, its space,
 * each at its own range of offsets (xpmem_attach.c).  Each attachment
 * reads and writes its own source page, and an invalidation zaps exactly
 * the attachment of the page it drops, in the first space of the process
 * and in the next one that the test hook space_pages_max makes it start
 * when the first runs out of offsets (spaces of 7 pages, each attachment
 * taking its pages and a gap: attachments 0-3 in the first, 4-7 in the
 * second).  An attachment as large as a space fails with ENOMEM.  A driver that zapped by the space's offsets
 * wrongly (another attachment's range, or every attachment of the
 * process) fails here.
 */
static int t_attachments_of_one_process_share_a_space_but_not_its_offsets(void)
{
	enum { N = 8 };
	char *src = mmap(NULL, N * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int hooks = access(SPACE_MAX, W_OK) == 0;
	volatile char *att[N] = { 0 };
	const int dropped[] = { 2, 7 };
	long renewals = counter("att_space_renewals");
	xpmem_segid_t seg;
	xpmem_apid_t apid;
	int ret = 1;

	FAIL_IF(src == MAP_FAILED, "mmap");
	madvise(src, N * PG, MADV_NOHUGEPAGE);
	for (int i = 0; i < N; i++)
		src[i * PG] = (char)(10 + i);
	seg = xpmem_make(src, N * PG, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	FAIL_IF(seg <= 0 || apid <= 0, "make/get");
	if (!hooks)
		tap_diag("no test hooks: one space only, its renewal is not checked");
	else
		FAIL_IF(write_sys(SPACE_MAX, "7"), "cannot set space_pages_max");
	for (int i = 0; i < N; i++) {
		att[i] = xpmem_attach((struct xpmem_addr){ .apid = apid, .offset = i * PG },
				      PG, NULL);
		if (att[i] == (void *)-1) {
			tap_diag("attach %d: %s", i, strerror(errno));
			att[i] = NULL;
			goto out;
		}
	}
	if (hooks) {
		void *big = xpmem_attach((struct xpmem_addr){ .apid = apid }, N * PG, NULL);

		if (big != (void *)-1 || errno != ENOMEM) {
			tap_diag("an attachment of %d pages in spaces of 7: %s, want ENOMEM", N,
				 big == (void *)-1 ? strerror(errno) : "attached");
			if (big != (void *)-1)
				xpmem_detach(big);
			goto out;
		}
		if (counter("att_space_renewals") - renewals != 1) {
			tap_diag("%ld new spaces for 8 one-page attachments in spaces of 7, want 1",
				 counter("att_space_renewals") - renewals);
			goto out;
		}
	}
	for (int i = 0; i < N; i++) {
		if (att[i][0] != 10 + i) {
			tap_diag("attachment %d reads %d, want %d", i, att[i][0], 10 + i);
			goto out;
		}
		att[i][1] = (char)(50 + i);
		if (src[i * PG + 1] != 50 + i) {
			tap_diag("attachment %d's write reached the source as %d", i, src[i * PG + 1]);
			goto out;
		}
	}
	for (unsigned int d = 0; d < sizeof(dropped) / sizeof(dropped[0]); d++) {
		if (madvise(src + dropped[d] * PG, PG, MADV_DONTNEED)) {
			tap_diag("madvise: %s", strerror(errno));
			goto out;
		}
		for (int i = 0; i < N; i++) {
			int gone = 0;

			for (unsigned int e = 0; e <= d; e++)
				gone |= i == dropped[e];
			if (page_present((void *)att[i]) != !gone) {
				tap_diag("after dropping source page %d: attachment %d %s", dropped[d],
					 i, gone ? "still maps it" : "was zapped too");
				goto out;
			}
		}
	}
	for (int i = 0; i < N; i++) {
		int gone = i == dropped[0] || i == dropped[1];

		if (att[i][0] != (gone ? 0 : 10 + i)) {
			tap_diag("attachment %d reads %d after the drops", i, att[i][0]);
			goto out;
		}
	}
	ret = 0;
out:
	if (hooks)
		write_sys(SPACE_MAX, "0");
	for (int i = 0; i < N; i++)
		if (att[i])
			xpmem_detach((void *)att[i]);
	FAIL_IF(xpmem_release(apid) || xpmem_remove(seg), "teardown");
	munmap(src, N * PG);
	return ret ? ret : live_counters_settle();
}

static int t_counters_return_to_zero(void)
{
	return live_counters_settle();
}

#define TEST(name) { #name, t_##name, 0 }

static const struct tap_test tests[] = {
	TEST(version_matches_header),
	TEST(make_then_remove),
	TEST(make_whole_address_space),
	TEST(get_then_release),
	TEST(attach_then_detach),
	TEST(fault_maps_the_present_pages_after_it),
	TEST(invalidation_zaps_only_where_the_attacher_mapped),
	TEST(invalidation_of_a_page_many_attachments_map_zaps_each_once),
	TEST(attachments_of_one_process_share_a_space_but_not_its_offsets),
	TEST(attacher_sees_source_writes),
	TEST(source_sees_attacher_writes),
	TEST(read_then_write_through_rdwr_attachment),
	TEST(two_attachers_see_each_other),
	TEST(same_segment_attached_twice),
	TEST(attach_at_offset),
	TEST(attach_at_fixed_address),
	TEST(remap_file_pages_of_an_attachment_is_refused),
	TEST(thread_of_same_process_uses_apid),
	TEST(rdonly_attach_write_gets_sigsegv),
	TEST(rdonly_attach_cannot_mprotect_writable),
	TEST(proc_mem_reads_attachment),
	TEST(proc_mem_writes_rdwr_attachment),
	TEST(proc_mem_cannot_write_rdonly_attachment),
	TEST(mode_0600_refuses_other_uid),
	TEST(mode_0644_other_uid_read_only),
	TEST(apid_of_another_process_refused),
	TEST(guessed_ids_refused),
	TEST(bad_ids_give_einval_or_enoent),
	TEST(unknown_flags_and_reserved_give_einval),
	TEST(make_bad_ranges_give_einval),
	TEST(attach_bad_ranges_give_einval),
	TEST(attach_size_rounded_up_to_a_page),
	TEST(bad_user_pointer_gives_efault),
	TEST(detach_of_non_attachment_gives_einval),
	TEST(get_of_removed_segment_gives_enoent),
	TEST(hole_access_gives_sigbus),
	TEST(memory_mapped_into_hole_becomes_visible),
	TEST(source_remap_shows_new_memory),
	TEST(source_madv_dontneed_shows_zeros),
	TEST(source_exit_gives_attacher_sigbus),
	TEST(attacher_exit_leaves_source_working),
	TEST(kill9_source_in_tight_loop),
	TEST(kill9_attacher_in_tight_loop),
	TEST(release_revokes_attachment),
	TEST(remove_revokes_attachments),
	TEST(fork_child_inherits_no_exports_or_attachments),
	TEST(fork_cow_attacher_follows_source),
	TEST(thousand_segments_in_one_process),
	TEST(close_of_device_cleans_up),
	TEST(counters_return_to_zero),
};

int main(int argc, char **argv)
{
	if (xpmem_init()) {
		printf("1..1\nnot ok 1 open_dev_xpmem\n# %s\n", strerror(errno));
		return 1;
	}
	return tap_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
