// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_rdma.c - RDMA registration of attached memory, on a real verbs
 * device: soft-RoCE (rdma_rxe) over a veth in the test guest, created by
 * tests/rdma/run, which passes its name as argv[1].
 *
 * The attacher registers its attachment (ibv_reg_mr: a long-term pin,
 * pin_user_pages(FOLL_LONGTERM)), and a second queue pair on the same
 * device does RDMA WRITE into it and RDMA READ out of it: the bytes land
 * in and come from the source process's memory.  An RDONLY attachment
 * cannot be registered for write.  And the source unmapping while the
 * registration holds its pin: the invalidation completes at once, the
 * attacher's mapping follows the source to its new memory, the registered
 * pages stay valid for the device until deregistration (RDMA READ gives
 * the old bytes, RDMA WRITE does not reach the new memory), and nothing is
 * lost or leaked.
 *
 * TAP output; run as root in the test guest.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <sys/utsname.h>

#include "tap.h"
#include "testlib.h"
#include "xpmem.h"

#define SIZE	(64 * 1024)
#define HALF	(SIZE / 2)

static const char *g_dev_name;
static xpmem_segid_t g_seg;

/* anonymous memory filled with fill_bytes(seed), exported as g_seg */
static unsigned char *export_pattern(unsigned int seed)
{
	unsigned char *src = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (src == MAP_FAILED)
		return NULL;
	fill_bytes(src, SIZE, seed);
	g_seg = xpmem_make(src, SIZE, XPMEM_PERMIT_MODE, (void *)0600);
	return g_seg < 0 ? NULL : src;
}

static void *attach_seg(int flags, size_t size)
{
	xpmem_apid_t apid = xpmem_get(g_seg, flags, XPMEM_PERMIT_MODE, NULL);
	struct xpmem_addr a = { .apid = apid, .offset = 0 };
	void *p;

	if (apid < 0)
		return NULL;
	p = xpmem_attach(a, size, NULL);
	return p == (void *)-1 ? NULL : p;
}

static int kernel_older_than(int major, int minor)
{
	struct utsname u;
	int a = 0, b = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &a, &b) != 2)
		return 0;
	return a < major || (a == major && b < minor);
}

/* ---- two RC queue pairs on one device, connected to each other ----------- */

struct verbs {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp[2];
	union ibv_gid gid;
	int gid_index;
	enum ibv_mtu mtu;
};

static int open_device(struct verbs *v)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_port_attr port;

	v->ctx = NULL;
	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), g_dev_name))
			v->ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	if (!v->ctx || ibv_query_port(v->ctx, 1, &port))
		return -1;
	v->mtu = port.active_mtu;
	/* the RoCE v2 GID of the device's IPv4 address (::ffff:a.b.c.d) */
	v->gid_index = -1;
	for (int i = 0; i < port.gid_tbl_len && v->gid_index < 0; i++) {
		static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

		if (!ibv_query_gid(v->ctx, 1, i, &v->gid) &&
		    !memcmp(v->gid.raw, v4mapped, 12))
			v->gid_index = i;
	}
	if (v->gid_index < 0)
		return -2;
	v->pd = ibv_alloc_pd(v->ctx);
	v->cq = ibv_create_cq(v->ctx, 16, NULL, NULL, 0);
	if (!v->pd || !v->cq)
		return -3;
	for (int i = 0; i < 2; i++) {
		struct ibv_qp_init_attr ia = {
			.send_cq = v->cq, .recv_cq = v->cq, .qp_type = IBV_QPT_RC,
			.cap = { .max_send_wr = 8, .max_recv_wr = 8,
				 .max_send_sge = 1, .max_recv_sge = 1 },
		};
		struct ibv_qp_attr a = {
			.qp_state = IBV_QPS_INIT, .port_num = 1,
			.qp_access_flags = IBV_ACCESS_LOCAL_WRITE |
					   IBV_ACCESS_REMOTE_READ |
					   IBV_ACCESS_REMOTE_WRITE,
		};

		v->qp[i] = ibv_create_qp(v->pd, &ia);
		if (!v->qp[i] || ibv_modify_qp(v->qp[i], &a, IBV_QP_STATE |
					       IBV_QP_PKEY_INDEX | IBV_QP_PORT |
					       IBV_QP_ACCESS_FLAGS))
			return -4;
	}
	for (int i = 0; i < 2; i++) {
		struct ibv_qp_attr a = {
			.qp_state = IBV_QPS_RTR, .path_mtu = v->mtu,
			.dest_qp_num = v->qp[1 - i]->qp_num, .rq_psn = 0,
			.max_dest_rd_atomic = 1, .min_rnr_timer = 12,
			.ah_attr = { .is_global = 1, .port_num = 1,
				     .grh = { .dgid = v->gid, .hop_limit = 1,
					      .sgid_index = (uint8_t)v->gid_index } },
		};
		struct ibv_qp_attr r = {
			.qp_state = IBV_QPS_RTS, .timeout = 14, .retry_cnt = 7,
			.rnr_retry = 7, .sq_psn = 0, .max_rd_atomic = 1,
		};

		if (ibv_modify_qp(v->qp[i], &a, IBV_QP_STATE | IBV_QP_AV |
				  IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
			return -5;
		if (ibv_modify_qp(v->qp[i], &r, IBV_QP_STATE | IBV_QP_TIMEOUT |
				  IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				  IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
			return -6;
	}
	return 0;
}

/*
 * One RDMA WRITE or READ on qp[0] between a local buffer and a region of
 * a memory region registered on the same device (the target side of the
 * operation is qp[1]); waits for its completion.  0 or the status.
 */
static int rdma_op(struct verbs *v, enum ibv_wr_opcode op, struct ibv_mr *local,
		   void *laddr, struct ibv_mr *remote, void *raddr, uint32_t len)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)laddr, .length = len, .lkey = local->lkey,
	};
	struct ibv_send_wr wr = {
		.sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = (uintptr_t)raddr, .rkey = remote->rkey },
	}, *bad;
	struct ibv_wc wc;
	int n;

	if (ibv_post_send(v->qp[0], &wr, &bad))
		return -1;
	for (int spins = 0; spins < 100000; spins++) {
		n = ibv_poll_cq(v->cq, 1, &wc);
		if (n < 0)
			return -2;
		if (n == 1)
			return wc.status == IBV_WC_SUCCESS ? 0 : (int)wc.status;
		usleep(100);
	}
	return -3;	/* no completion in 10 s */
}

/* ---- tests -------------------------------------------------------------------- */

enum { CMD_QUIT, CMD_WRITE_FIRST_HALF, CMD_READ_SECOND_HALF };

/* the attachment's size is *(size_t *)@arg, SIZE if @arg is NULL */
static int rdma_attacher(int in, int out, void *arg)
{
	size_t size = arg ? *(size_t *)arg : SIZE, half = size / 2;
	unsigned char *att = attach_seg(XPMEM_RDWR, size), *buf;
	struct ibv_mr *att_mr, *buf_mr;
	struct verbs v;
	int rc;

	if (!att || posix_memalign((void **)&buf, 4096, size))
		return 10;
	rc = open_device(&v);
	if (rc) {
		tap_diag("verbs setup on %s failed: step %d, %s", g_dev_name, -rc,
			 strerror(errno));
		return 11;
	}
	att_mr = ibv_reg_mr(v.pd, att, size, IBV_ACCESS_LOCAL_WRITE |
			    IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!att_mr) {
		tap_diag("ibv_reg_mr on the attachment: %s", strerror(errno));
		return 12;
	}
	buf_mr = ibv_reg_mr(v.pd, buf, size, IBV_ACCESS_LOCAL_WRITE);
	if (!buf_mr)
		return 13;
	chan_send(out, 1);
	for (;;) {
		long cmd = chan_recv(in);

		if (cmd == CMD_WRITE_FIRST_HALF) {
			fill_bytes(buf, half, 201);
			rc = rdma_op(&v, IBV_WR_RDMA_WRITE, buf_mr, buf, att_mr, att, half);
		} else if (cmd == CMD_READ_SECOND_HALF) {
			memset(buf, 0, size);
			rc = rdma_op(&v, IBV_WR_RDMA_READ, buf_mr, buf, att_mr,
				     att + half, half);
			if (!rc)
				rc = bytes_mismatch(buf, half, 202) >= 0 ? 1000 : 0;
		} else {
			break;
		}
		chan_send(out, rc);
	}
	ibv_dereg_mr(att_mr);
	ibv_dereg_mr(buf_mr);
	return 0;
}

/*
 * RDMA WRITE into the first half of a registered attachment of @src
 * (g_seg, @size bytes) lands in the source; the source's writes to the
 * second half come back by RDMA READ
 */
static int rdma_write_and_read(unsigned char *src, size_t size)
{
	size_t half = size / 2;
	struct peer p;
	long r;

	FAIL_IF(peer_start(&p, rdma_attacher, &size), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher setup failed (status %d)", peer_wait(&p));
	r = peer_call(&p, CMD_WRITE_FIRST_HALF);
	FAIL_IF(r, "RDMA WRITE completion: %ld", r);
	FAIL_IF(bytes_mismatch(src, half, 201) >= 0, "RDMA WRITE not in the source (byte %ld)",
		bytes_mismatch(src, half, 201));
	fill_bytes(src + half, half, 202);
	r = peer_call(&p, CMD_READ_SECOND_HALF);
	FAIL_IF(r, "RDMA READ: %ld (1000: wrong bytes)", r);
	peer_send(&p, CMD_QUIT);
	FAIL_IF(peer_wait(&p), "attacher status");
	return 0;
}

static int t_rdma_write_and_read_through_registered_attachment(void)
{
	unsigned char *src = export_pattern(1);

	FAIL_IF(!src, "mmap, xpmem_make");
	FAIL_IF(rdma_write_and_read(src, SIZE), "through the attachment");
	return xpmem_remove(g_seg);
}

/*
 * The same over a 4 MiB export backed by huge pages (testlib.h): the
 * registration pins every 4 KiB page of it, head or tail, through the
 * attachment (the driver's get_user_pages rule), and the source is still
 * backed by huge pages afterwards (nothing split them).  Where the kernel
 * cannot back it, or the driver gives no tail of a PMD-mapped THP (a
 * CONFIG_DEBUG_VM kernel), a skip (tests/known-skips).
 */
static int rdma_huge(enum huge_kind kind)
{
	const char *why;
	unsigned char *src = huge_backed(kind, 7, &why);

	if (!src && why) {
		tap_diag("%s", why);
		return TAP_SKIP;
	}
	FAIL_IF(!src, "huge-page memory");
	g_seg = xpmem_make(src, HUGE_LEN, XPMEM_PERMIT_MODE, (void *)0600);
	FAIL_IF(g_seg < 0, "xpmem_make");
	FAIL_IF(rdma_write_and_read(src, HUGE_LEN), "through the attachment of huge pages");
	if (kind == HK_THP) {
		long kb = smaps_field_kb(src, "AnonHugePages");

		FAIL_IF(kb < (long)(HUGE_LEN >> 10), "the source's AnonHugePages went down to %ld kB", kb);
	}
	return xpmem_remove(g_seg);
}

static int t_thp_export_rdma_write_and_read_through_registered_attachment(void)
{
	return rdma_huge(HK_THP);
}

static int t_hugetlb_export_rdma_write_and_read_through_registered_attachment(void)
{
	return rdma_huge(HK_HUGETLB);
}

static int rdonly_attacher(int in, int out, void *arg)
{
	void *att = attach_seg(XPMEM_RDONLY, SIZE);
	struct ibv_mr *mr;
	struct verbs v;

	(void)in;
	(void)arg;
	if (!att || open_device(&v))
		return 10;
	mr = ibv_reg_mr(v.pd, att, SIZE, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE);
	chan_send(out, mr ? 0 : errno);
	if (mr)
		return 11;
	/*
	 * Registering it for reading only is fine, from 6.2 on.  Before,
	 * ib_umem_get() pinned read-only regions with FOLL_WRITE | FOLL_FORCE
	 * (to break copy-on-write), which the kernel refuses on any shared
	 * mapping that is not writable, an RDONLY attachment as much as a
	 * read-only MAP_SHARED file.
	 */
	mr = ibv_reg_mr(v.pd, att, SIZE, IBV_ACCESS_REMOTE_READ);
	if (kernel_older_than(6, 2)) {
		if (mr || errno != EFAULT)
			return 13;
		tap_diag("kernel before 6.2: read-only registration pins for write, EFAULT");
		return 0;
	}
	if (!mr)
		return 12;
	ibv_dereg_mr(mr);
	return 0;
}

static int t_rdma_write_registration_of_rdonly_attachment_refused(void)
{
	unsigned char *src = export_pattern(3);
	struct peer p;
	long e;

	FAIL_IF(!src, "mmap, xpmem_make");
	FAIL_IF(peer_start(&p, rdonly_attacher, NULL), "fork");
	e = peer_recv(&p);
	FAIL_IF(e != EFAULT, "ibv_reg_mr(LOCAL_WRITE) on RDONLY: %ld, want EFAULT", e);
	FAIL_IF(peer_wait(&p), "attacher: read-only registration failed");
	FAIL_IF(bytes_mismatch(src, SIZE, 3) >= 0, "source changed");
	return xpmem_remove(g_seg);
}

static int pinned_attacher(int in, int out, void *arg)
{
	unsigned char *att = attach_seg(XPMEM_RDWR, SIZE), *buf;
	struct ibv_mr *att_mr, *buf_mr;
	struct verbs v;
	long val;
	int rc;

	(void)arg;
	if (!att || posix_memalign((void **)&buf, 4096, SIZE) || open_device(&v))
		return 10;
	att_mr = ibv_reg_mr(v.pd, att, SIZE, IBV_ACCESS_LOCAL_WRITE |
			    IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	buf_mr = ibv_reg_mr(v.pd, buf, SIZE, IBV_ACCESS_LOCAL_WRITE);
	if (!att_mr || !buf_mr)
		return 11;
	chan_send(out, 1);
	if (chan_recv(in) != 2)	/* the source unmapped it and mapped new memory */
		return 12;
	/* our mapping follows the source: its new (zero) memory ... */
	rc = tap_probe((volatile long *)att, 0, &val);
	if (rc || val) {
		tap_diag("attacher after the source's remap: signal %d value %ld", rc, val);
		return 13;
	}
	/* ... the registered pages are the device's until deregistration */
	rc = rdma_op(&v, IBV_WR_RDMA_READ, buf_mr, buf, att_mr, att, SIZE);
	if (rc || bytes_mismatch(buf, SIZE, 5) >= 0) {
		tap_diag("RDMA READ after invalidation: %d", rc);
		return 14;
	}
	fill_bytes(buf, SIZE, 6);
	rc = rdma_op(&v, IBV_WR_RDMA_WRITE, buf_mr, buf, att_mr, att, SIZE);
	if (rc)
		return 15;
	if (ibv_dereg_mr(att_mr) || ibv_dereg_mr(buf_mr))
		return 16;
	return 0;
}

static int t_rdma_registration_outlives_source_invalidation(void)
{
	unsigned char *src = export_pattern(5);
	long before = counter("acks");
	struct peer p;
	int rc;

	FAIL_IF(!src, "mmap, xpmem_make");
	FAIL_IF(peer_start(&p, pinned_attacher, NULL), "fork");
	FAIL_IF(peer_recv(&p) != 1, "attacher setup failed (status %d)", peer_wait(&p));
	/* invalidate while the pin is held: must complete, not wait for it */
	FAIL_IF(munmap(src, SIZE), "munmap");
	FAIL_IF(counter("acks") <= before, "no invalidation reached the attacher");
	/* new memory at the same place is not the pinned pages */
	FAIL_IF(mmap(src, SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != src, "remap");
	peer_send(&p, 2);
	rc = peer_wait(&p);
	FAIL_IF(rc, "attacher: step %d failed", rc);
	for (size_t i = 0; i < SIZE; i++)
		FAIL_IF(src[i], "RDMA WRITE to the old pages showed up in new memory");
	return xpmem_remove(g_seg);
}

static const struct tap_test tests[] = {
	{ "rdma_write_and_read_through_registered_attachment",
	  t_rdma_write_and_read_through_registered_attachment, 120 },
	{ "rdma_write_registration_of_rdonly_attachment_refused",
	  t_rdma_write_registration_of_rdonly_attachment_refused, 60 },
	{ "rdma_registration_outlives_source_invalidation",
	  t_rdma_registration_outlives_source_invalidation, 120 },
	{ "thp_export_rdma_write_and_read_through_registered_attachment",
	  t_thp_export_rdma_write_and_read_through_registered_attachment, 120 },
	{ "hugetlb_export_rdma_write_and_read_through_registered_attachment",
	  t_hugetlb_export_rdma_write_and_read_through_registered_attachment, 120 },
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s RDMA_DEVICE [TEST...]\n", argv[0]);
		return 2;
	}
	g_dev_name = argv[1];
	if (xpmem_init() != 0) {
		printf("1..1\nnot ok 1 open_dev_xpmem\n# %s\n", strerror(errno));
		return 1;
	}
	return tap_main(tests, sizeof(tests) / sizeof(tests[0]), argc - 1, argv + 1);
}
