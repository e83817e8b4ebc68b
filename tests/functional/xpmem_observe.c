// SPDX-License-Identifier: GPL-2.0
/*
 * What an administrator can see: the driver's tracepoints each fire with
 * their fields, the fdinfo of a /dev/xpmem descriptor lists what was
 * made through it (segments with range and mode, permits, attachments
 * with address, size and mapped pages), and the latency histograms fill.
 * (The partition message tracepoint, xpmem_msg, is read by the partition
 * suite.)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "tap.h"
#include "testlib.h"
#include "xpmem.h"

static size_t PG;
static const char *tracefs = "/sys/kernel/tracing";

/* tracefs files are written truncating, as a shell's ">" does */
static int write_str(const char *path, const char *s)
{
	return write_file_flags(path, s, O_TRUNC);
}

/* the whole of a (small) file, NUL-terminated, or NULL */
static char *slurp(const char *path)
{
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* the line of @text that starts with (after spaces) and contains every @needle */
static const char *find_line(const char *text, const char *a, const char *b)
{
	const char *l = text;

	while (l && *l) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		char line[512];

		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1),
			 l);
		if (strstr(line, a) && (!b || strstr(line, b)))
			return l;
		l = e ? e + 1 : NULL;
	}
	return NULL;
}

static int tracing_mounted(void)
{
	struct stat st;

	if (stat("/sys/kernel/tracing/trace", &st) == 0)
		return 0;
	mkdir("/sys/kernel/tracing", 0755);
	return system("mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null") == 0 &&
	       stat("/sys/kernel/tracing/trace", &st) == 0 ? 0 : -1;
}

static int t_every_tracepoint_fires_with_its_fields(void)
{
	const char *events[] = { "xpmem_fault", "xpmem_invalidate_start",
				 "xpmem_invalidate_end", "xpmem_ack" };
	char path[256], *trace;
	size_t len = 16 * PG;
	char *src, *att;
	xpmem_segid_t seg;
	xpmem_apid_t apid;

	FAIL_IF(tracing_mounted(), "no tracefs");
	/*
	 * No comm/tgid recording: it would hook sched_switch and
	 * sched_wakeup, whose static keys are then live-patched in the
	 * scheduler on enable and disable (tests/partitions/run).
	 */
	snprintf(path, sizeof(path), "%s/options/record-cmd", tracefs);
	write_str(path, "0");
	snprintf(path, sizeof(path), "%s/options/record-tgid", tracefs);
	write_str(path, "0");
	snprintf(path, sizeof(path), "%s/events/xpmem/enable", tracefs);
	FAIL_IF(write_str(path, "1"), "enable events/xpmem (is the module's trace system there?)");
	snprintf(path, sizeof(path), "%s/trace", tracefs);
	write_str(path, "");	/* clear */

	src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(src, 7, len);
	seg = xpmem_make(src, len, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	att = xpmem_attach((struct xpmem_addr){ .apid = apid }, len, NULL);
	FAIL_IF(seg <= 0 || apid <= 0 || att == (void *)-1, "make/get/attach");
	for (size_t i = 0; i < len; i += PG)
		FAIL_IF(att[i] != 7, "data");
	madvise(src, len, MADV_DONTNEED);	/* invalidates the mirror: zap, ack */
	FAIL_IF(att[0] != 0, "attacher did not see the new page");
	xpmem_detach(att);
	xpmem_release(apid);
	xpmem_remove(seg);

	snprintf(path, sizeof(path), "%s/events/xpmem/enable", tracefs);
	write_str(path, "0");
	snprintf(path, sizeof(path), "%s/trace", tracefs);
	trace = slurp(path);
	FAIL_IF(!trace, "read trace");
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		char name[64];
		const char *l;

		snprintf(name, sizeof(name), "%s:", events[i]);
		l = find_line(trace, name, NULL);
		FAIL_IF(!l, "no %s event in the trace", events[i]);
		tap_diag("%.*s", (int)(strchr(l, '\n') ? strchr(l, '\n') - l : 200), l);
	}
	/* the fields carry what they say */
	FAIL_IF(!find_line(trace, "xpmem_fault:", "local read"), "no local read fault");
	FAIL_IF(!find_line(trace, "xpmem_fault:", "pages=16"),
		"no fault that mapped 16 pages (the first read: fault-around)");
	FAIL_IF(!find_line(trace, "xpmem_fault:", "pages=1 "),
		"no fault that mapped one page (the read after the source's DONTNEED)");
	FAIL_IF(!find_line(trace, "xpmem_ack:", "peer=-1"), "no local acknowledgment");
	FAIL_IF(!find_line(trace, "xpmem_invalidate_start:", "blockable=1"),
		"no blockable invalidation");
	free(trace);
	return live_counters_settle();
}

/* the descriptor libxpmem opened */
static int xpmem_fd(void)
{
	char link[256], path[300];
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");
	int fd = -1;

	while (dir && (d = readdir(dir))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (!strcmp(link, "/dev/xpmem"))
				fd = atoi(d->d_name);
		}
	}
	if (dir)
		closedir(dir);
	return fd;
}

static int t_fdinfo_lists_segments_permits_and_attachments(void)
{
	size_t len = 8 * PG;
	char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *b = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char path[64], want[256], *info;
	xpmem_segid_t sa, sb;
	xpmem_apid_t ap;
	char *att;
	int fd = xpmem_fd();

	FAIL_IF(fd < 0, "no /dev/xpmem descriptor");
	memset(a, 1, len);
	/* page 5 absent: fault-around of the first read stops before it */
	madvise(a + 5 * PG, PG, MADV_DONTNEED);
	sa = xpmem_make(a, len, XPMEM_PERMIT_MODE, (void *)0640);
	sb = xpmem_make(b, 2 * PG, XPMEM_PERMIT_MODE, (void *)0600);
	ap = xpmem_get(sa, XPMEM_RDONLY, XPMEM_PERMIT_MODE, NULL);
	att = xpmem_attach((struct xpmem_addr){ .apid = ap, .offset = 2 * PG }, 4 * PG, NULL);
	FAIL_IF(sa <= 0 || sb <= 0 || ap <= 0 || att == (void *)-1, "make/get/attach");
	for (int i = 0; i < 3; i++)	/* three of the four pages mapped */
		FAIL_IF(att[i * PG] != 1, "data");

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	info = slurp(path);
	FAIL_IF(!info, "read %s", path);
	printf("%s", info);	/* shown as is in the log, for the reader */

	snprintf(want, sizeof(want), "segment %#llx range %#lx-%#lx mode 0640", (long long)sa,
		 (unsigned long)a, (unsigned long)a + len);
	FAIL_IF(!find_line(info, want, NULL), "no line \"%s\"", want);
	snprintf(want, sizeof(want), "segment %#llx range %#lx-%#lx mode 0600", (long long)sb,
		 (unsigned long)b, (unsigned long)b + 2 * PG);
	FAIL_IF(!find_line(info, want, NULL), "no line \"%s\"", want);
	snprintf(want, sizeof(want), "permit %#llx segid %#llx rdonly size %#lx", (long long)ap,
		 (long long)sa, (unsigned long)len);
	FAIL_IF(!find_line(info, want, NULL), "no line \"%s\"", want);
	snprintf(want, sizeof(want), "attachment local addr %#lx size %#lx offset 0x0 mapped 3",
		 (unsigned long)att, 4 * PG);
	FAIL_IF(!find_line(info, want, NULL), "no line \"%s\"", want);
	free(info);

	/* after the detach the attachment leaves the listing (its teardown is queued) */
	xpmem_detach(att);
	for (int i = 0; i < 100 * tap_time_scale(); i++) {
		info = slurp(path);
		if (!info || !find_line(info, "attachment", NULL))
			break;
		free(info);
		info = NULL;
		usleep(100000);
	}
	FAIL_IF(!info, "attachment still listed after 10 s (or fdinfo unreadable)");
	free(info);
	xpmem_release(ap);
	xpmem_remove(sa);
	xpmem_remove(sb);
	info = slurp(path);
	FAIL_IF(!info || find_line(info, "segment", NULL) || find_line(info, "permit", NULL),
		"objects still listed after remove/release");
	free(info);
	return live_counters_settle();
}

static int t_latency_histograms_fill(void)
{
	char *h0 = slurp("/sys/kernel/debug/xpmem/histograms"), *h1;
	size_t len = 4 * PG;
	char *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long faults0 = 0, faults1 = 0, inv0 = 0, inv1 = 0;
	xpmem_segid_t seg;
	xpmem_apid_t apid;
	char *att;

	FAIL_IF(!h0, "no debugfs histograms");
	memset(src, 3, len);
	seg = xpmem_make(src, len, XPMEM_PERMIT_MODE, (void *)0600);
	apid = xpmem_get(seg, XPMEM_RDWR, XPMEM_PERMIT_MODE, NULL);
	att = xpmem_attach((struct xpmem_addr){ .apid = apid }, len, NULL);
	FAIL_IF(att == (void *)-1, "attach");
	for (size_t i = 0; i < len; i += PG)
		FAIL_IF(att[i] != 3, "data");
	madvise(src, len, MADV_DONTNEED);
	xpmem_detach(att);
	xpmem_release(apid);
	xpmem_remove(seg);
	h1 = slurp("/sys/kernel/debug/xpmem/histograms");
	FAIL_IF(!h1, "read histograms");
	for (int k = 0; k < 2; k++) {
		const char *l = k ? h1 : h0;
		long *f = k ? &faults1 : &faults0, *v = k ? &inv1 : &inv0;
		char name[64];
		unsigned long long low;
		long n;
		int used;

		while (sscanf(l, "%63s %llu %ld%n", name, &low, &n, &used) == 3) {
			if (!strcmp(name, "fault_ns"))
				*f += n;
			else if (!strcmp(name, "invalidate_wait_ns"))
				*v += n;
			l += used;
		}
	}
	tap_diag("fault_ns: %ld -> %ld samples, invalidate_wait_ns: %ld -> %ld", faults0,
		 faults1, inv0, inv1);
	/* one fault per page that was not mapped by fault-around: at least one */
	FAIL_IF(faults1 - faults0 < 1, "fault histogram did not count the faults");
	FAIL_IF(inv1 <= inv0, "invalidation histogram did not count the invalidation");
	free(h0);
	free(h1);
	return live_counters_settle();
}

#define TEST(name, secs) { #name, t_##name, secs }

int main(int argc, char **argv)
{
	struct tap_test tests[] = {
		TEST(every_tracepoint_fires_with_its_fields, 60),
		TEST(fdinfo_lists_segments_permits_and_attachments, 60),
		TEST(latency_histograms_fill, 60),
	};

	PG = (size_t)sysconf(_SC_PAGESIZE);
	if (xpmem_init()) {
		printf("1..1\nnot ok 1 open_dev_xpmem\n# %s\n", strerror(errno));
		return 1;
	}
	return tap_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
