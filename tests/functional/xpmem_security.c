// SPDX-License-Identifier: GPL-2.0
/*
 * A node shared by many users and containers (docs/security.md): ids that
 * cannot be guessed, permits that are exact and stay with the thread group
 * that got them, an fdinfo listing that shows a reader only the objects
 * whose maker's memory it could read, containers that share only what
 * their modes allow, per-user limits and memory-cgroup accounting.  Runs
 * as root in the guest and becomes other users (65534, 65533, ...) and
 * containers (user and pid namespaces with their own uid maps) as each
 * test needs.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "tap.h"
#include "testlib.h"
#include "xpmem.h"

static size_t PG;

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int become(uid_t uid)
{
	return setresgid(uid, uid, uid) || setresuid(uid, uid, uid) ? -1 : 0;
}

/* write a module parameter; returns the old value (or -1) */
static long set_param(const char *name, long value)
{
	char path[128], buf[32];
	long old = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/xpmem/parameters/%s", name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &old) != 1)
			old = -1;
		fclose(f);
	}
	f = fopen(path, "w");
	if (!f)
		return -1;
	snprintf(buf, sizeof(buf), "%ld\n", value);
	fputs(buf, f);
	fclose(f);
	return old;
}

/* a kernel log line of this test's own time (tap.h) */
static int dmesg_has(const char *needle)
{
	return tap_dmesg_has(needle);
}

static xpmem_segid_t make_seg(void *p, size_t len, long mode)
{
	return xpmem_make(p, len, XPMEM_PERMIT_MODE, (void *)mode);
}

/* ---- ids -------------------------------------------------------------------- */

#define NIDS 4096

static int t_ids_carry_56_unpredictable_bits(void)
{
	char *buf = map_anon(NIDS * PG);
	static xpmem_segid_t ids[NIDS];
	int varying = 0, bits[64] = { 0 };
	double lo = 1, hi = 0, ham = 0;

	FAIL_IF(!buf, "mmap");
	for (int i = 0; i < NIDS; i++) {
		ids[i] = make_seg(buf + (size_t)i * PG, PG, 0600);
		FAIL_IF(ids[i] <= 0, "make #%d: %s", i, strerror(errno));
		for (int b = 0; b < 64; b++)
			bits[b] += (ids[i] >> b) & 1;
		if (i)
			ham += __builtin_popcountll((uint64_t)(ids[i] ^ ids[i - 1]));
	}
	for (int b = 0; b < 64; b++) {
		double f = (double)bits[b] / NIDS;

		if (bits[b] && bits[b] != NIDS)
			varying++;
		if (b < 56) {
			lo = f < lo ? f : lo;
			hi = f > hi ? f : hi;
		}
	}
	ham /= NIDS - 1;
	tap_diag("over %d consecutive ids of one process: %d bits vary; each of bits 0-55 is set in %.3f-%.3f of them; consecutive ids differ in %.1f bits on average",
		 NIDS, varying, lo, hi, ham);
	/* a fair coin over 4096 draws stays within 0.44-0.56 (7 sigma) */
	FAIL_IF(varying < 56 || lo < 0.44 || hi > 0.56, "ids are not 56 random bits");
	FAIL_IF(ham < 26 || ham > 30, "consecutive ids are related (mean distance %.1f, want 28)", ham);
	for (int b = 56; b < 64; b++)
		FAIL_IF(bits[b] && bits[b] != NIDS, "bit %d (partition field) varies", b);
	for (int i = 0; i < NIDS; i++)
		FAIL_IF(xpmem_remove(ids[i]), "remove");
	return live_counters_settle();
}

/*
 * A user who keeps looking up ids that do not exist is refused (EAGAIN) for
 * a while, also for ids that do exist, and the kernel log says so; other
 * users are not affected; the refusal ends as the bucket refills.
 */
static int guesser(int in, int out, void *arg)
{
	xpmem_segid_t real = *(xpmem_segid_t *)arg;
	unsigned long seed = 0x12345678;
	long enoent = 0, eagain = 0, first_eagain = -1, during;

	(void)in;
	if (become(65534))
		return 10;
	for (long k = 0; k < 2000; k++) {
		xpmem_segid_t guess;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		guess = (xpmem_segid_t)(seed >> 8);
		if (xpmem_get(guess, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL) >= 0)
			return 11;	/* found a live segment by guessing */
		if (errno == ENOENT) {
			enoent++;
		} else if (errno == EAGAIN) {
			if (first_eagain < 0)
				first_eagain = k;
			eagain++;
		} else {
			return 12;
		}
	}
	/*
	 * A real id is refused too while throttled: asked at once, before
	 * anything that may sleep (the bucket gains a token a second; on a
	 * slow guest three pipe writes to the parent first once took long
	 * enough at 50 a second for a token to come back).
	 */
	during = xpmem_get(real, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL) < 0 ? errno : 0;
	chan_send(out, enoent);
	chan_send(out, eagain);
	chan_send(out, first_eagain);
	chan_send(out, during);
	sleep(3);	/* the bucket refills (guess_rate per second) */
	chan_send(out, xpmem_get(real, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL) < 0 ? errno : 0);
	return 0;
}

static int other_user_gets(int in, int out, void *arg)
{
	xpmem_segid_t real = *(xpmem_segid_t *)arg;

	(void)in;
	if (become(65533))
		return 10;
	chan_send(out, xpmem_get(real, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL) < 0 ? errno : 0);
	return 0;
}

static int t_guessing_ids_is_throttled_per_user(void)
{
	long burst = set_param("guess_burst", 200), rate = set_param("guess_rate", 1);
	char *buf = map_anon(PG);
	xpmem_segid_t real = make_seg(buf, PG, 0666);
	long enoent, eagain, first, during, after, other;
	struct peer g, o;

	FAIL_IF(burst < 0 || rate < 0, "module parameters guess_burst/guess_rate");
	FAIL_IF(real <= 0, "make");
	FAIL_IF(peer_start(&g, guesser, &real), "fork");
	enoent = peer_recv(&g);
	eagain = peer_recv(&g);
	first = peer_recv(&g);
	during = peer_recv(&g);
	FAIL_IF(peer_start(&o, other_user_gets, &real), "fork");
	other = peer_recv(&o);
	after = peer_recv(&g);
	set_param("guess_burst", burst);
	set_param("guess_rate", rate);
	FAIL_IF(peer_wait(&g) || peer_wait(&o), "children");
	tap_diag("guesser (burst 200, 1/s): %ld ENOENT, then EAGAIN from attempt %ld on (%ld in all)",
		 enoent, first, eagain);
	FAIL_IF(first < 150 || first > 260, "throttled after %ld failures, want about 200", first);
	FAIL_IF(during != EAGAIN, "a real id while throttled: errno %ld, want EAGAIN", during);
	FAIL_IF(other != 0, "another user was refused: errno %ld", other);
	FAIL_IF(after != 0, "still refused after the bucket refilled: errno %ld", after);
	FAIL_IF(!dmesg_has("keeps presenting ids that were never issued"), "no log line");
	FAIL_IF(xpmem_remove(real), "remove");
	return 0;
}

/*
 * Ids of objects that ended are what programs meet when a peer goes away:
 * they fail with ENOENT however many there are, and cost nothing; the
 * same ids with one bit flipped were never issued and are counted.
 */
#define NSTALE 600

static int t_stale_ids_fail_enoent_and_are_not_counted_as_guesses(void)
{
	long burst = set_param("guess_burst", 200), rate = set_param("guess_rate", 50);
	static xpmem_segid_t stale[NSTALE];
	long forged0 = counter("lookups_forged"), forged, enoent = 0, other = 0;
	char *buf = map_anon(PG);
	xpmem_segid_t real;

	FAIL_IF(burst < 0 || rate < 0 || forged0 < 0, "module parameters or counters");
	for (int i = 0; i < NSTALE; i++) {
		stale[i] = make_seg(buf, PG, 0666);
		FAIL_IF(stale[i] <= 0 || xpmem_remove(stale[i]), "make/remove");
	}
	/* three times the burst of stale ids: every one ENOENT, none EAGAIN */
	for (int i = 0; i < NSTALE; i++) {
		if (xpmem_get(stale[i], XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL) >= 0)
			other++;
		else if (errno == ENOENT)
			enoent++;
		else
			other++;
	}
	forged = counter("lookups_forged") - forged0;
	real = make_seg(buf, PG, 0666);
	FAIL_IF(real <= 0, "make");
	tap_diag("%d stale segids (burst 200): %ld ENOENT, %ld otherwise; counted as guesses: %ld",
		 NSTALE, enoent, other, forged);
	FAIL_IF(enoent != NSTALE, "stale ids: %ld of %d ENOENT", enoent, NSTALE);
	FAIL_IF(forged != 0, "%ld stale ids counted as guesses", forged);
	/* flip one bit of the random part: never issued, so counted */
	forged0 = counter("lookups_forged");
	for (int i = 0; i < 50; i++) {
		xpmem_segid_t f = stale[i] ^ (1LL << (i % 56));

		FAIL_IF(xpmem_get(f, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL) >= 0 || errno != ENOENT,
			"a forged id: errno %d, want ENOENT", errno);
	}
	forged = counter("lookups_forged") - forged0;
	set_param("guess_burst", burst);
	set_param("guess_rate", rate);
	FAIL_IF(forged < 49, "only %ld of 50 ids with a flipped bit counted as guesses", forged);
	{
		xpmem_apid_t a = xpmem_get(real, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);

		FAIL_IF(a <= 0, "the real id after all that: errno %d", errno);
		FAIL_IF(xpmem_release(a), "release");
	}
	FAIL_IF(xpmem_remove(real), "remove");
	return live_counters_settle();
}

/* ---- permits ------------------------------------------------------------------ */

struct modes_case {
	long mode;
	int rdonly, rdwr;	/* errno expected for another user, 0 = allowed */
};

static int other_user_modes(int in, int out, void *arg)
{
	(void)arg;
	if (become(65534))
		return 10;
	for (;;) {
		xpmem_segid_t s = chan_recv(in);
		xpmem_apid_t a;

		if (s <= 0)
			return 0;
		a = xpmem_get(s, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
		chan_send(out, a < 0 ? errno : 0);
		if (a >= 0)
			xpmem_release(a);
		a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		chan_send(out, a < 0 ? errno : 0);
		if (a >= 0)
			xpmem_release(a);
	}
}

/* RDWR needs read and write permission of the caller's class, RDONLY read */
static int t_rdwr_needs_read_and_write_permission(void)
{
	static const struct modes_case cases[] = {
		{ 0622, EACCES, EACCES },	/* others may only write */
		{ 0644, 0, EACCES },
		{ 0666, 0, 0 },
		{ 0604, 0, EACCES },
		{ 0602, EACCES, EACCES },
		{ 0600, EACCES, EACCES },
	};
	char *buf = map_anon(PG);
	struct peer p;

	FAIL_IF(peer_start(&p, other_user_modes, NULL), "fork");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xpmem_segid_t s = make_seg(buf, PG, cases[i].mode);
		long ro, rw;

		FAIL_IF(s <= 0, "make");
		peer_send(&p, s);
		ro = peer_recv(&p);
		rw = peer_recv(&p);
		FAIL_IF(ro != cases[i].rdonly || rw != cases[i].rdwr,
			"mode %04lo: RDONLY errno %ld (want %d), RDWR errno %ld (want %d)",
			cases[i].mode, ro, cases[i].rdonly, rw, cases[i].rdwr);
		xpmem_remove(s);
	}
	peer_send(&p, 0);
	return peer_wait(&p);
}

/* pass @fd over a unix socket */
static int send_fd(int sock, int fd)
{
	char c = 'f', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&m);
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* uses the sender's ids through the descriptor it received */
static int receiver(int in, int out, void *arg)
{
	int sock = *(int *)arg, fd = recv_fd(sock);
	xpmem_segid_t seg = chan_recv(in);
	xpmem_apid_t ap = chan_recv(in);
	struct xpmem_cmd_attach at = { .apid = ap, .size = PG };
	struct xpmem_cmd_release rl = { .apid = ap };
	struct xpmem_cmd_remove rm = { .segid = seg };

	if (fd < 0)
		return 10;
	chan_send(out, ioctl(fd, XPMEM_CMD_ATTACH, &at) < 0 ? errno : 0);
	chan_send(out, ioctl(fd, XPMEM_CMD_RELEASE, &rl) < 0 ? errno : 0);
	chan_send(out, ioctl(fd, XPMEM_CMD_REMOVE, &rm) < 0 ? errno : 0);
	close(fd);	/* ->flush by another thread group: the sender's stay */
	return 0;
}

static int t_descriptor_passed_with_scm_rights_carries_no_permits(void)
{
	int sv[2], fd = open(XPMEM_DEV_PATH, O_RDWR);
	char *buf = map_anon(PG);
	struct xpmem_cmd_make mk = { .vaddr = (uintptr_t)buf, .size = PG,
				     .permit_type = XPMEM_PERMIT_MODE, .permit_value = 0666 };
	struct xpmem_cmd_get gt = { .flags = XPMEM_RDWR, .permit_type = XPMEM_PERMIT_MODE };
	struct xpmem_cmd_attach at = { .size = PG };
	long e1, e2, e3;
	struct peer p;

	FAIL_IF(fd < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "open, socketpair");
	FAIL_IF(ioctl(fd, XPMEM_CMD_MAKE, &mk), "make");
	gt.segid = mk.segid;
	FAIL_IF(ioctl(fd, XPMEM_CMD_GET, &gt), "get");
	FAIL_IF(peer_start(&p, receiver, &sv[1]), "fork");
	FAIL_IF(send_fd(sv[0], fd), "sendmsg");
	peer_send(&p, mk.segid);
	peer_send(&p, gt.apid);
	e1 = peer_recv(&p);
	e2 = peer_recv(&p);
	e3 = peer_recv(&p);
	FAIL_IF(peer_wait(&p), "receiver");
	FAIL_IF(e1 != EPERM || e2 != EPERM || e3 != EPERM,
		"receiver's attach/release/remove with the sender's ids: errno %ld %ld %ld, want EPERM",
		e1, e2, e3);
	/* the sender's objects survived the receiver's close */
	at.apid = gt.apid;
	FAIL_IF(ioctl(fd, XPMEM_CMD_ATTACH, &at), "sender's attach after the receiver's close: %s",
		strerror(errno));
	FAIL_IF(munmap((void *)(uintptr_t)at.vaddr, PG), "munmap the attachment");
	close(fd);
	return live_counters_settle();
}

static char clone_stack[64 * 1024] __attribute__((aligned(16)));
static volatile long clone_result[2];
static xpmem_apid_t clone_apid;
static int clone_fd;

static int clone_files_child(void *arg)
{
	struct xpmem_cmd_attach at = { .apid = clone_apid, .size = PG };
	struct xpmem_cmd_release rl = { .apid = clone_apid };

	(void)arg;
	clone_result[0] = ioctl(clone_fd, XPMEM_CMD_ATTACH, &at) < 0 ? errno : 0;
	clone_result[1] = ioctl(clone_fd, XPMEM_CMD_RELEASE, &rl) < 0 ? errno : 0;
	return 0;
}

static int t_clone_files_child_has_no_permits(void)
{
	char *buf = map_anon(PG);
	struct xpmem_cmd_make mk = { .vaddr = (uintptr_t)buf, .size = PG,
				     .permit_type = XPMEM_PERMIT_MODE, .permit_value = 0600 };
	struct xpmem_cmd_get gt = { .flags = XPMEM_RDWR, .permit_type = XPMEM_PERMIT_MODE };
	pid_t pid;
	int st;

	clone_fd = open(XPMEM_DEV_PATH, O_RDWR);
	FAIL_IF(clone_fd < 0 || ioctl(clone_fd, XPMEM_CMD_MAKE, &mk), "make");
	gt.segid = mk.segid;
	FAIL_IF(ioctl(clone_fd, XPMEM_CMD_GET, &gt), "get");
	clone_apid = gt.apid;
	/* shares our descriptor table and memory, not our thread group */
	pid = clone(clone_files_child, clone_stack + sizeof(clone_stack),
		    CLONE_FILES | CLONE_VM | SIGCHLD, NULL);
	FAIL_IF(pid < 0, "clone: %s", strerror(errno));
	FAIL_IF(waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st), "child");
	FAIL_IF(clone_result[0] != EPERM || clone_result[1] != EPERM,
		"CLONE_FILES child's attach/release: errno %ld %ld, want EPERM",
		clone_result[0], clone_result[1]);
	close(clone_fd);
	return live_counters_settle();
}

/* ---- fdinfo: a reader sees only what is its to see ------------------------------- */

/* /proc/@pid/fdinfo/@fd (@pid 0: self) into @buf, NUL-terminated: 0, or -1 */
static int read_fdinfo(pid_t pid, int fd, char *buf, size_t size)
{
	char path[64];
	size_t len = 0;
	ssize_t n;
	int f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	while (len < size - 1 && (n = read(f, buf + len, size - 1 - len)) > 0)
		len += n;
	close(f);
	buf[len] = '\0';
	return 0;
}

#define SHOWS_SEGMENT	1
#define SHOWS_PERMIT	2
#define SHOWS_ATTACH	4
#define SHOWS_HIDDEN	8	/* "hidden segments 1 permits 1": the listing is partial */
#define SHOWS_ALL	(SHOWS_SEGMENT | SHOWS_PERMIT | SHOWS_ATTACH)

/*
 * Which of the objects (a segid, an apid, an attachment's address) the
 * fdinfo of @fd shows its reader, as SHOWS_* bits; -1: unreadable.
 */
static long fdinfo_shows(pid_t pid, int fd, xpmem_segid_t seg, xpmem_apid_t ap,
			 unsigned long addr)
{
	static char info[16384];
	char s[64];
	long r = 0;

	if (read_fdinfo(pid, fd, info, sizeof(info)))
		return -1;
	snprintf(s, sizeof(s), "%#llx", (long long)seg);
	if (strstr(info, s))
		r |= SHOWS_SEGMENT;
	snprintf(s, sizeof(s), "%#llx", (long long)ap);
	if (strstr(info, s))
		r |= SHOWS_PERMIT;
	snprintf(s, sizeof(s), "addr %#lx", addr);
	if (strstr(info, s))
		r |= SHOWS_ATTACH;
	if (strstr(info, "\nhidden segments 1 permits 1\n"))
		r |= SHOWS_HIDDEN;
	return r;
}

/*
 * Make a 0666 segment of a page, a permit on it and an attachment
 * through @fd: 0, or -1.
 */
static int make_objects(int fd, xpmem_segid_t *seg, xpmem_apid_t *ap, unsigned long *addr)
{
	char *buf = map_anon(PG);
	struct xpmem_cmd_make mk = { .vaddr = (uintptr_t)buf, .size = PG,
				     .permit_type = XPMEM_PERMIT_MODE, .permit_value = 0666 };
	struct xpmem_cmd_get gt = { .flags = XPMEM_RDWR, .permit_type = XPMEM_PERMIT_MODE };
	struct xpmem_cmd_attach at = { .size = PG };

	if (!buf || ioctl(fd, XPMEM_CMD_MAKE, &mk))
		return -1;
	gt.segid = mk.segid;
	if (ioctl(fd, XPMEM_CMD_GET, &gt))
		return -1;
	at.apid = gt.apid;
	if (ioctl(fd, XPMEM_CMD_ATTACH, &at))
		return -1;
	*seg = mk.segid;
	*ap = gt.apid;
	*addr = at.vaddr;
	return 0;
}

struct fd_peer {
	int sock;
	uid_t uid;
};

enum { SENDER_SHOW = 1, SENDER_UNDUMPABLE };

/*
 * As @uid (dumpable, as a process that did not change uid is), makes its
 * objects, reports them and what its own fdinfo shows of them, passes the
 * descriptor, then answers commands until its pipe closes.
 */
static int fd_sender(int in, int out, void *arg)
{
	struct fd_peer *fp = arg;
	xpmem_segid_t seg;
	xpmem_apid_t ap;
	unsigned long addr;
	long cmd;
	int fd;

	if (become(fp->uid) || prctl(PR_SET_DUMPABLE, 1))
		return 10;
	fd = open(XPMEM_DEV_PATH, O_RDWR);
	if (fd < 0 || make_objects(fd, &seg, &ap, &addr))
		return 11;
	chan_send(out, seg);
	chan_send(out, ap);
	chan_send(out, (long)addr);
	chan_send(out, fdinfo_shows(0, fd, seg, ap, addr));
	if (send_fd(fp->sock, fd))
		return 12;
	while ((cmd = chan_recv(in)) > 0) {
		if (cmd == SENDER_UNDUMPABLE)
			chan_send(out, prctl(PR_SET_DUMPABLE, 0) ? errno : 0);
		else
			chan_send(out, fdinfo_shows(0, fd, seg, ap, addr));
	}
	return 0;
}

/*
 * As @uid, receives the descriptor and the sender's ids, reports the
 * descriptor's number, then what its own fdinfo shows of the sender's
 * objects once per command, until its pipe closes.
 */
static int fd_reader(int in, int out, void *arg)
{
	struct fd_peer *fp = arg;
	xpmem_segid_t seg;
	xpmem_apid_t ap;
	unsigned long addr;
	int fd;

	if (become(fp->uid))
		return 10;
	fd = recv_fd(fp->sock);
	if (fd < 0)
		return 11;
	seg = chan_recv(in);
	ap = chan_recv(in);
	addr = (unsigned long)chan_recv(in);
	chan_send(out, fd);
	while (chan_recv(in) > 0)
		chan_send(out, fdinfo_shows(0, fd, seg, ap, addr));
	close(fd);
	return 0;
}

/*
 * A sender of uid @suid makes its objects and passes the descriptor to a
 * reader of uid @ruid; both started, the ids in @ids, the reader's
 * descriptor number in *@rfd.  0, or 1 after a diagnostic.
 */
static int start_sender_and_reader(struct peer *s, struct peer *r, uid_t suid, uid_t ruid,
				   long ids[3], long *rfd)
{
	static struct fd_peer sp, rp;
	int sv[2];
	long own;

	FAIL_IF(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	sp = (struct fd_peer){ .sock = sv[0], .uid = suid };
	rp = (struct fd_peer){ .sock = sv[1], .uid = ruid };
	FAIL_IF(peer_start(s, fd_sender, &sp), "fork the sender");
	FAIL_IF(peer_start(r, fd_reader, &rp), "fork the reader");
	for (int i = 0; i < 3; i++)
		ids[i] = peer_recv(s);
	own = peer_recv(s);
	FAIL_IF(ids[0] <= 0 || ids[1] <= 0 || ids[2] <= 0, "sender's objects: %ld %ld %#lx",
		ids[0], ids[1], ids[2]);
	FAIL_IF(own != SHOWS_ALL, "the sender's own fdinfo shows %#lx of its objects, want %#x",
		own, SHOWS_ALL);
	for (int i = 0; i < 3; i++)
		peer_send(r, ids[i]);
	*rfd = peer_recv(r);
	FAIL_IF(*rfd < 0, "the reader received no descriptor (%ld)", *rfd);
	return 0;
}

static int t_fdinfo_of_a_received_descriptor_hides_the_senders_objects(void)
{
	struct peer s, r;
	long ids[3], rfd, seen, own;

	if (start_sender_and_reader(&s, &r, 65534, 65533, ids, &rfd))
		return 1;
	seen = peer_call(&r, 1);
	FAIL_IF(seen != SHOWS_HIDDEN,
		"a receiver of another uid reads its fdinfo: shows %#lx (1 segid, 2 apid, 4 attachment address, 8 the hidden line), want only the hidden line",
		seen);
	/* what it could read out of the sender's memory it still sees: the sender itself */
	own = peer_call(&s, SENDER_SHOW);
	FAIL_IF(own != SHOWS_ALL, "the sender's own fdinfo now shows %#lx, want %#x", own,
		SHOWS_ALL);
	FAIL_IF(peer_wait(&r), "reader");
	FAIL_IF(peer_wait(&s), "sender");
	return live_counters_settle();
}

static int t_fdinfo_shows_objects_to_readers_who_may_read_the_makers_memory(void)
{
	struct peer s, r;
	long ids[3], rfd, seen, as_root, ret;

	/* one uid, the sender dumpable: the reader could read its memory */
	if (start_sender_and_reader(&s, &r, 65534, 65534, ids, &rfd))
		return 1;
	seen = peer_call(&r, 1);
	as_root = fdinfo_shows(r.pid, (int)rfd, ids[0], ids[1], (unsigned long)ids[2]);
	FAIL_IF(seen != SHOWS_ALL, "a receiver of the sender's uid shows %#lx, want %#x", seen,
		SHOWS_ALL);
	FAIL_IF(as_root != SHOWS_ALL, "root reading the receiver's fdinfo: %#lx, want %#x",
		as_root, SHOWS_ALL);
	/* the sender no longer dumpable: only CAP_SYS_PTRACE reads its memory */
	ret = peer_call(&s, SENDER_UNDUMPABLE);
	FAIL_IF(ret, "PR_SET_DUMPABLE 0: errno %ld", ret);
	seen = peer_call(&r, 1);
	as_root = fdinfo_shows(r.pid, (int)rfd, ids[0], ids[1], (unsigned long)ids[2]);
	FAIL_IF(seen != SHOWS_HIDDEN,
		"the sender not dumpable, a receiver of its uid still shows %#lx, want only the hidden line",
		seen);
	FAIL_IF(as_root != SHOWS_ALL, "root reading the receiver's fdinfo: %#lx, want %#x",
		as_root, SHOWS_ALL);
	FAIL_IF(peer_wait(&r), "reader");
	FAIL_IF(peer_wait(&s), "sender");
	return live_counters_settle();
}

#define EXEC_HELPER "--fdinfo-after-exec"

/*
 * Makes its objects through a descriptor without O_CLOEXEC, reports what
 * its own fdinfo shows of them, changes to uid 65534 if *@arg says so,
 * and execs this program as EXEC_HELPER (fdinfo_after_exec()), which
 * reports what the descriptor's fdinfo shows the new image.
 */
static int exec_maker(int in, int out, void *arg)
{
	int drop = *(int *)arg, fd = open(XPMEM_DEV_PATH, O_RDWR);
	int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	char a[5][32];
	xpmem_segid_t seg;
	xpmem_apid_t ap;
	unsigned long addr;

	(void)in;
	if (fd < 0 || exe < 0 || make_objects(fd, &seg, &ap, &addr))
		return 10;
	chan_send(out, fdinfo_shows(0, fd, seg, ap, addr));
	if (drop && become(65534))
		return 11;
	snprintf(a[0], sizeof(a[0]), "%d", out);
	snprintf(a[1], sizeof(a[1]), "%d", fd);
	snprintf(a[2], sizeof(a[2]), "%#llx", (long long)seg);
	snprintf(a[3], sizeof(a[3]), "%#llx", (long long)ap);
	snprintf(a[4], sizeof(a[4]), "%#lx", addr);
	{
		char *argv[] = { "xpmem_security", EXEC_HELPER, a[0], a[1], a[2], a[3], a[4],
				 NULL };

		fexecve(exe, argv, environ);
	}
	return 12;
}

/* the program exec_maker() execs: OUT FD SEGID APID ADDR */
static int fdinfo_after_exec(int argc, char **argv)
{
	int out, fd;

	if (argc != 7)
		return 20;
	out = atoi(argv[2]);
	fd = atoi(argv[3]);
	chan_send(out, fdinfo_shows(0, fd, strtoll(argv[4], NULL, 0), strtoll(argv[5], NULL, 0),
				    strtoul(argv[6], NULL, 0)));
	return 0;
}

static int t_fdinfo_after_exec_hides_objects_made_before_it(void)
{
	for (int drop = 0; drop < 2; drop++) {
		const char *as = drop ? "changed to uid 65534" : "still root";
		long before, after;
		struct peer p;
		int st;

		FAIL_IF(peer_start(&p, exec_maker, &drop), "fork");
		before = peer_recv(&p);
		after = peer_recv(&p);
		st = peer_wait(&p);
		FAIL_IF(st, "maker or helper exited %d", st);
		FAIL_IF(before != SHOWS_ALL, "before exec the maker's fdinfo shows %#lx, want %#x",
			before, SHOWS_ALL);
		/* the objects outlive the exec (the thread group's), unlisted */
		FAIL_IF(after != SHOWS_HIDDEN,
			"after exec (%s) the inherited descriptor's fdinfo shows %#lx (1 segid, 2 apid, 4 attachment address, 8 the hidden line), want only the hidden line",
			as, after);
	}
	return live_counters_settle();
}

/* ---- containers ------------------------------------------------------------------ */

/*
 * A container: a child in new user and pid namespaces whose uids 0-65535
 * are host uids base..base+65535; it runs fn as pid 1 of its pid
 * namespace, as uid @uid there, and returns its status.
 */
struct container {
	long base;
	uid_t uid;
	int (*fn)(int in, int out, void *arg);
	void *arg;
	uid_t maker;	/* host user that makes the namespaces (0: root) */
};

static int container_init(int in, int out, void *arg)
{
	struct container *c = arg;
	char go;
	pid_t pid;
	int st;

	if (c->maker && (setresgid(c->maker, c->maker, c->maker) ||
			 setresuid(c->maker, c->maker, c->maker)))
		return 25;
	prctl(PR_SET_DUMPABLE, 1);	/* root maps our ids from outside */
	if (unshare(CLONE_NEWUSER | CLONE_NEWPID))
		return 20;
	chan_send(out, 1);		/* the parent writes our maps now */
	if (read(in, &go, 1) != 1)
		return 21;
	pid = fork();			/* pid 1 of the new pid namespace */
	if (pid == 0) {
		if (setresgid(c->uid, c->uid, c->uid) || setresuid(c->uid, c->uid, c->uid))
			_exit(22);
		_exit(c->fn(in, out, c->arg));
	}
	if (waitpid(pid, &st, 0) != pid)
		return 23;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 24;
}

static int container_start(struct peer *p, struct container *c)
{
	char path[64], map[64];

	if (peer_start(p, container_init, c) || peer_recv(p) != 1)
		return -1;
	snprintf(map, sizeof(map), "0 %ld 65536\n", c->base);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", p->pid);
	if (write_file(path, map))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/setgroups", p->pid);
	write_file(path, "deny\n");
	snprintf(path, sizeof(path), "/proc/%d/gid_map", p->pid);
	if (write_file(path, map))
		return -1;
	return write(p->to, "g", 1) == 1 ? 0 : -1;
}

/* container A: makes a 0600 and a 0666 segment (as its root) and serves them */
static int container_a(int in, int out, void *arg)
{
	char *buf = map_anon(2 * PG);

	(void)arg;
	memset(buf, 'A', 2 * PG);
	chan_send(out, getpid());	/* 1: pid 1 of its namespace */
	chan_send(out, make_seg(buf, PG, 0600));
	chan_send(out, make_seg(buf + PG, PG, 0666));
	/* then its root tries the host user's 0600 segment it is told of */
	{
		xpmem_segid_t host = chan_recv(in);
		xpmem_apid_t a = xpmem_get(host, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);

		chan_send(out, a < 0 ? errno : 0);
	}
	chan_recv(in);			/* until the test is done */
	return 0;
}

/* container B: tries A's segments */
static int container_b(int in, int out, void *arg)
{
	xpmem_segid_t s600 = chan_recv(in), s666 = chan_recv(in);
	xpmem_apid_t a;
	char *p;

	(void)arg;
	a = xpmem_get(s600, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	chan_send(out, a < 0 ? errno : 0);
	a = xpmem_get(s666, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	p = a > 0 ? xpmem_attach((struct xpmem_addr){ .apid = a }, PG, NULL) : (void *)-1;
	chan_send(out, p == (void *)-1 ? -errno : p[0]);
	return 0;
}

/* a host user other than root makes a 0600 segment */
static int host_user_segment(int in, int out, void *arg)
{
	char *buf = map_anon(PG);

	(void)arg;
	if (become(1000))
		return 10;
	chan_send(out, make_seg(buf, PG, 0600));
	chan_recv(in);
	return 0;
}

static int t_containers_share_by_mode_and_their_root_overrides_only_their_own(void)
{
	struct container ca = { .base = 100000, .uid = 0, .fn = container_a };
	struct container cb = { .base = 200000, .uid = 0, .fn = container_b };
	struct peer a, b, h;
	xpmem_segid_t s600, s666, host;
	long pid1, e600, data, ehost;

	FAIL_IF(container_start(&a, &ca), "container A: %s", strerror(errno));
	pid1 = peer_recv(&a);
	s600 = peer_recv(&a);
	s666 = peer_recv(&a);
	FAIL_IF(pid1 != 1 || s600 <= 0 || s666 <= 0, "container A: pid %ld, segments %lld %lld",
		pid1, (long long)s600, (long long)s666);
	FAIL_IF(container_start(&b, &cb), "container B");
	peer_send(&b, s600);
	peer_send(&b, s666);
	e600 = peer_recv(&b);
	data = peer_recv(&b);
	FAIL_IF(peer_start(&h, host_user_segment, NULL), "host user");
	host = peer_recv(&h);
	peer_send(&a, host);
	ehost = peer_recv(&a);
	peer_send(&a, 0);
	peer_send(&h, 0);
	FAIL_IF(peer_wait(&a) || peer_wait(&b) || peer_wait(&h), "children");
	tap_diag("B on A's 0600: errno %ld; B reads A's 0666 through another pid namespace: %c; A's root on a host user's 0600: errno %ld",
		 e600, (char)data, ehost);
	FAIL_IF(e600 != EACCES, "container B got container A's 0600 segment (errno %ld)", e600);
	FAIL_IF(data != 'A', "container B could not use A's 0666 segment (%ld)", data);
	FAIL_IF(ehost != EACCES, "a container's root overrode a host user's 0600 segment (errno %ld)",
		ehost);
	return live_counters_settle();
}

/* inside one container, its root overrides its own users' modes, as for files */
static int container_user_segment(int in, int out, void *arg)
{
	char *buf = map_anon(PG);
	int fds[2];
	pid_t pid;

	(void)arg;
	(void)in;
	if (pipe(fds))
		return 30;
	pid = fork();
	if (pid == 0) {
		xpmem_segid_t s;

		if (setresuid(1000, 1000, 1000))
			_exit(31);
		s = make_seg(buf, PG, 0600);
		if (write(fds[1], &s, sizeof(s)) != sizeof(s))
			_exit(32);
		pause();
		_exit(0);
	}
	{
		xpmem_segid_t s;
		xpmem_apid_t a;

		if (read(fds[0], &s, sizeof(s)) != sizeof(s))
			return 33;
		a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		chan_send(out, a < 0 ? errno : 0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

static int t_container_root_overrides_its_own_users_modes(void)
{
	struct container c = { .base = 300000, .uid = 0, .fn = container_user_segment };
	struct peer p;
	long e;

	FAIL_IF(container_start(&p, &c), "container");
	e = peer_recv(&p);
	FAIL_IF(peer_wait(&p), "container");
	FAIL_IF(e != 0, "container root refused its own user's 0600 segment: errno %ld", e);
	return live_counters_settle();
}

/*
 * A rootless container's users are its maker's subordinate ids, a kuid
 * each: the maker (host uid 1000 here) pays for what all of them make, so
 * 3 container users share one max_segments_per_user, not 3 of them.
 */
static int container_users_make(int in, int out, void *arg)
{
	char *buf = map_anon(16 * PG);
	long made = 0;

	(void)in;
	(void)arg;
	for (uid_t u = 1; u <= 3; u++) {
		int fds[2];
		pid_t pid;
		long n = 0;

		if (pipe(fds))
			return 30;
		pid = fork();
		if (pid == 0) {
			long k = 0;

			if (setresuid(u, u, u))
				_exit(31);
			while (k < 16 && make_seg(buf + k * PG, PG, 0600) > 0)
				k++;
			k = k * 1000 + (errno == EDQUOT);
			if (write(fds[1], &k, sizeof(k)) != sizeof(k))
				_exit(32);
			pause();	/* keeps its segments until killed */
			_exit(0);
		}
		if (read(fds[0], &n, sizeof(n)) != sizeof(n))
			return 33;
		chan_send(out, n);
		made += n / 1000;
	}
	chan_send(out, made);
	chan_recv(in);
	return 0;
}

static int t_a_containers_users_share_their_makers_limits(void)
{
	struct container c = { .base = 400000, .uid = 0, .fn = container_users_make,
			       .maker = 1000 };
	long os = set_param("max_segments_per_user", 5), n[3], made;
	struct peer p;

	FAIL_IF(os < 0, "module parameter");
	FAIL_IF(container_start(&p, &c), "container");
	for (int i = 0; i < 3; i++)
		n[i] = peer_recv(&p);
	made = peer_recv(&p);
	peer_send(&p, 0);	/* its pid 1 returns: the kernel kills its users */
	peer_wait(&p);
	set_param("max_segments_per_user", os);
	tap_diag("max_segments_per_user 5; container users 1, 2, 3 made %ld, %ld, %ld segments (EDQUOT at the end: %ld %ld %ld)",
		 n[0] / 1000, n[1] / 1000, n[2] / 1000, n[0] % 1000, n[1] % 1000, n[2] % 1000);
	FAIL_IF(made != 5, "the container's users made %ld segments in all, want 5 (their maker's limit)",
		made);
	FAIL_IF(!dmesg_has("with the users of its container"), "no log line");
	return live_counters_settle();
}

/* ---- limits and memory accounting -------------------------------------------------- */

static int limited_user(int in, int out, void *arg)
{
	char *buf = map_anon(8 * PG);
	xpmem_segid_t s[8];
	xpmem_apid_t a[8];
	int made = 0, got = 0, attached = 0;
	long e_make = 0, e_get = 0, e_att = 0;

	(void)in;
	(void)arg;
	if (become(65532))
		return 10;
	for (int i = 0; i < 8; i++) {
		s[i] = make_seg(buf + i * PG, PG, 0600);
		if (s[i] < 0) {
			e_make = errno;
			break;
		}
		made++;
	}
	for (int i = 0; i < 8; i++) {
		a[i] = xpmem_get(s[0], XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		if (a[i] < 0) {
			e_get = errno;
			break;
		}
		got++;
	}
	for (int i = 0; i < got; i++) {
		if (xpmem_attach((struct xpmem_addr){ .apid = a[i] }, PG, NULL) == (void *)-1) {
			e_att = errno;
			break;
		}
		attached++;
	}
	chan_send(out, made);
	chan_send(out, e_make);
	chan_send(out, got);
	chan_send(out, e_get);
	chan_send(out, attached);
	chan_send(out, e_att);
	return 0;
}

static int t_per_user_limits_refuse_with_edquot(void)
{
	long os = set_param("max_segments_per_user", 5);
	long op = set_param("max_permits_per_user", 4);
	long oa = set_param("max_attachments_per_user", 3);
	long hits0 = counter("limits_hit"), v[6];
	struct peer p;

	FAIL_IF(os < 0 || op < 0 || oa < 0, "module parameters");
	FAIL_IF(peer_start(&p, limited_user, NULL), "fork");
	for (int i = 0; i < 6; i++)
		v[i] = peer_recv(&p);
	FAIL_IF(peer_wait(&p), "child");
	set_param("max_segments_per_user", os);
	set_param("max_permits_per_user", op);
	set_param("max_attachments_per_user", oa);
	tap_diag("limits 5/4/3: made %ld (then errno %ld), got %ld (%ld), attached %ld (%ld)",
		 v[0], v[1], v[2], v[3], v[4], v[5]);
	FAIL_IF(v[0] != 5 || v[1] != EDQUOT, "segments");
	FAIL_IF(v[2] != 4 || v[3] != EDQUOT, "permits");
	FAIL_IF(v[4] != 3 || v[5] != EDQUOT, "attachments");
	FAIL_IF(counter("limits_hit") - hits0 != 3, "limits_hit counter");
	FAIL_IF(!dmesg_has("reached max_segments_per_user") ||
		!dmesg_has("reached max_attachments_per_user"), "no log line");
	return live_counters_settle();
}

/*
 * Attachments of another user's memory are mirrors on that user's mm,
 * and each one that maps a page adds a zap to every invalidation of it
 * (issue 27): one user may hold at most max_foreign_mirrors_per_user of
 * them (EDQUOT beyond), counted against the attaching user; attachments
 * of the user's own memory are not counted.
 */
static int foreign_attacher(int in, int out, void *arg)
{
	xpmem_segid_t seg = *(xpmem_segid_t *)arg;
	char *own = map_anon(PG);
	long foreign = 0, e_foreign = 0, mine = 0, e_mine = 0;
	xpmem_segid_t s;
	xpmem_apid_t a;

	(void)in;
	if (become(65531) || !own)
		return 10;
	a = xpmem_get(seg, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	for (int i = 0; a > 0 && i < 8; i++) {
		if (xpmem_attach((struct xpmem_addr){ .apid = a, .offset = (i % 4) * PG },
				 PG, NULL) == (void *)-1) {
			e_foreign = errno;
			break;
		}
		foreign++;
	}
	s = make_seg(own, PG, 0600);
	a = s > 0 ? xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL) : -1;
	for (int i = 0; a > 0 && i < 8; i++) {
		if (xpmem_attach((struct xpmem_addr){ .apid = a }, PG, NULL) == (void *)-1) {
			e_mine = errno;
			break;
		}
		mine++;
	}
	chan_send(out, foreign);
	chan_send(out, e_foreign);
	chan_send(out, mine);
	chan_send(out, e_mine);
	return 0;
}

static int t_attachments_of_another_users_memory_are_limited_per_user(void)
{
	char *buf = map_anon(4 * PG);
	xpmem_segid_t seg;
	long old, hits0 = counter("limits_hit"), v[4];
	struct peer p;

	FAIL_IF(!buf, "mmap");
	memset(buf, 1, 4 * PG);
	seg = make_seg(buf, 4 * PG, 0644);
	FAIL_IF(seg <= 0, "make: %s", strerror(errno));
	old = set_param("max_foreign_mirrors_per_user", 3);
	FAIL_IF(old < 0, "module parameter max_foreign_mirrors_per_user");
	FAIL_IF(peer_start(&p, foreign_attacher, &seg), "fork");
	for (int i = 0; i < 4; i++)
		v[i] = peer_recv(&p);
	FAIL_IF(peer_wait(&p), "child");
	set_param("max_foreign_mirrors_per_user", old);
	tap_diag("limit 3 (default %ld): another user's segment attached %ld times (then errno %ld); the user's own %ld times (errno %ld)",
		 old, v[0], v[1], v[2], v[3]);
	FAIL_IF(v[0] != 3 || v[1] != EDQUOT, "attachments of another user's memory");
	FAIL_IF(v[2] != 8 || v[3] != 0, "attachments of the user's own memory are limited too");
	FAIL_IF(counter("limits_hit") - hits0 != 1, "limits_hit counter");
	FAIL_IF(!dmesg_has("reached max_foreign_mirrors_per_user"), "no log line");
	FAIL_IF(xpmem_remove(seg), "remove");
	munmap(buf, 4 * PG);
	return live_counters_settle();
}

/*
 * A process in a memory cgroup with a small memory.max makes segments,
 * permits and attachments in a loop: the driver's allocations are charged
 * to its cgroup, so it fails there (ENOMEM, or the cgroup's OOM killer
 * takes it), and nothing outside notices.
 */
static int cgroup_hog(int in, int out, void *arg)
{
	char *buf = map_anon(PG);
	long n = 0;

	(void)arg;
	chan_recv(in);			/* moved into the cgroup */
	for (;;) {
		xpmem_segid_t s = make_seg(buf, PG, 0600);
		xpmem_apid_t a;

		if (s < 0)
			break;
		a = xpmem_get(s, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
		if (a < 0)
			break;
		if (xpmem_attach((struct xpmem_addr){ .apid = a }, PG, NULL) == (void *)-1)
			break;
		n++;
	}
	chan_send(out, errno);
	chan_send(out, n);
	pause();
	return 0;
}

static long cg_value(const char *file, const char *key)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/fs/cgroup/xpmem-test/%s", file);
	return keyed_value(path, key);
}

/*
 * The driver's own objects are charged to the maker's memory cgroup, not
 * only the vmas of attachments (the test above can reach memory.max with
 * those alone): N segments and N permits, no attachment, no page touched,
 * must raise the group's slab memory by at least N times a small object
 * each.
 */
#define CHARGE_N	4000

static int charge_maker(int in, int out, void *arg)
{
	char *buf = mmap(NULL, CHARGE_N * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	static xpmem_segid_t segs[CHARGE_N];
	static xpmem_apid_t aps[CHARGE_N];

	(void)arg;
	if (buf == MAP_FAILED)
		return 10;
	chan_recv(in);			/* moved into the cgroup */
	for (int i = 0; i < CHARGE_N; i++) {
		segs[i] = make_seg(buf + (size_t)i * PG, PG, 0600);
		aps[i] = segs[i] > 0 ? xpmem_get(segs[i], XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL) : -1;
		if (aps[i] < 0)
			return 11;
	}
	chan_send(out, 1);		/* made: the parent reads memory.stat */
	chan_recv(in);
	for (int i = 0; i < CHARGE_N; i++) {
		xpmem_release(aps[i]);
		xpmem_remove(segs[i]);
	}
	return 0;
}

static long cg_stat(const char *group, const char *key)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.stat", group);
	return keyed_value(path, key);
}

static int t_driver_objects_are_charged_to_the_makers_memory_cgroup(void)
{
	long slab0, slab1, per;
	char pidbuf[32];
	struct peer p;

	FAIL_IF(memcg_group("xpmem-charge", "256M"), "memory cgroup xpmem-charge: %s", strerror(errno));
	FAIL_IF(peer_start(&p, charge_maker, NULL), "fork");
	snprintf(pidbuf, sizeof(pidbuf), "%d\n", p.pid);
	FAIL_IF(write_file("/sys/fs/cgroup/xpmem-charge/cgroup.procs", pidbuf), "cgroup.procs");
	slab0 = cg_stat("xpmem-charge", "slab");
	peer_send(&p, 1);
	FAIL_IF(peer_recv(&p) != 1, "the maker failed (status %d)", peer_wait(&p));
	slab1 = cg_stat("xpmem-charge", "slab");
	peer_send(&p, 2);
	FAIL_IF(peer_wait(&p), "the maker's cleanup");
	rmdir("/sys/fs/cgroup/xpmem-charge");
	per = (slab1 - slab0) / (2 * CHARGE_N);
	tap_diag("%d segments and %d permits raised the group's slab by %ld KiB (%ld bytes an object)",
		 CHARGE_N, CHARGE_N, (slab1 - slab0) >> 10, per);
	/* a segment or a permit is well over 64 bytes; nothing else was made */
	FAIL_IF(slab0 < 0 || per < 64, "the driver's objects are not charged to the maker's cgroup");
	return live_counters_settle();
}

static int t_memory_cgroup_bounds_what_its_processes_make(void)
{
	char pidbuf[32];
	long err = -1, n = -1, oom;
	struct peer p;
	int st;

	FAIL_IF(memcg_group("xpmem-test", "12M"), "memory cgroup xpmem-test: %s", strerror(errno));
	FAIL_IF(peer_start(&p, cgroup_hog, NULL), "fork");
	snprintf(pidbuf, sizeof(pidbuf), "%d\n", p.pid);
	FAIL_IF(write_file("/sys/fs/cgroup/xpmem-test/cgroup.procs", pidbuf), "cgroup.procs");
	peer_send(&p, 1);		/* go */
	err = peer_recv(&p);
	n = peer_recv(&p);
	kill(p.pid, SIGKILL);
	close(p.to);
	close(p.from);
	waitpid(p.pid, &st, 0);
	oom = cg_value("memory.events", "oom_kill");
	tap_diag("in a 12 MiB cgroup: %ld segment+permit+attachment triples, then errno %ld; memory.events max %ld, oom_kill %ld",
		 n, err, cg_value("memory.events", "max"), oom);
	FAIL_IF(cg_value("memory.events", "max") <= 0, "the cgroup never reached memory.max");
	FAIL_IF(!(err == ENOMEM || (err == -999 && oom > 0)),
		"the hog stopped with errno %ld (want ENOMEM, or the cgroup's OOM kill)", err);
	rmdir("/sys/fs/cgroup/xpmem-test");
	/* the machine is fine: the driver's objects are gone, and it still works */
	FAIL_IF(live_counters_settle(), "live objects after the hog");
	{
		char *buf = map_anon(PG);
		xpmem_segid_t s = make_seg(buf, PG, 0600);

		FAIL_IF(s <= 0 || xpmem_remove(s), "make outside the cgroup");
	}
	return 0;
}

#define TEST(name, secs) { #name, t_##name, secs }

int main(int argc, char **argv)
{
	struct tap_test tests[] = {
		TEST(ids_carry_56_unpredictable_bits, 120),
		TEST(guessing_ids_is_throttled_per_user, 60),
		TEST(stale_ids_fail_enoent_and_are_not_counted_as_guesses, 60),
		TEST(rdwr_needs_read_and_write_permission, 60),
		TEST(descriptor_passed_with_scm_rights_carries_no_permits, 60),
		TEST(clone_files_child_has_no_permits, 60),
		TEST(fdinfo_of_a_received_descriptor_hides_the_senders_objects, 60),
		TEST(fdinfo_shows_objects_to_readers_who_may_read_the_makers_memory, 60),
		TEST(fdinfo_after_exec_hides_objects_made_before_it, 60),
		TEST(containers_share_by_mode_and_their_root_overrides_only_their_own, 60),
		TEST(container_root_overrides_its_own_users_modes, 60),
		TEST(per_user_limits_refuse_with_edquot, 60),
		TEST(a_containers_users_share_their_makers_limits, 60),
		TEST(memory_cgroup_bounds_what_its_processes_make, 120),
		TEST(driver_objects_are_charged_to_the_makers_memory_cgroup, 120),
		TEST(attachments_of_another_users_memory_are_limited_per_user, 60),
	};

	PG = (size_t)sysconf(_SC_PAGESIZE);
	if (argc > 1 && !strcmp(argv[1], EXEC_HELPER))
		return fdinfo_after_exec(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (xpmem_init()) {
		printf("1..1\nnot ok 1 open_dev_xpmem\n# %s\n", strerror(errno));
		return 1;
	}
	return tap_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
