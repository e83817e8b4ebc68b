// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_import.c - the remote kind of attachment (xpmem_attach.h) and the
 * attacher's side of cross-partition export: permits on segments of
 * other partitions, attachments of them, their faults and the owner's
 * invalidations.
 *
 * A segid whose partition field names another partition is served by
 * that partition (its owner): xpmem_get asks it (GET) and the owner's
 * permit check decides; the permit here is an ordinary xpmem_access with
 * no local segment, whose ops give it back (RELEASE) and attach it.
 * Attaching asks the owner for an attachment (ATTACH) and maps an
 * ordinary attachment vma (xpmem_attach.c), whose faults ask the owner
 * for the page (FAULT): the reply is the page's physical address in the
 * owner, which this partition reaches through the owner's fabric window,
 * so the PTE maps window pfns (special PTEs of a VM_PFNMAP vma, no struct
 * page, no reference).
 *
 * Coherence: the attachment's seq is this partition's count of the
 * owner's invalidations of it.  A fault samples it before asking, and
 * installs the PTE only if it is unchanged, under the install lock inside
 * the page table lock; an INVAL bumps it before zapping (the protocol of
 * a local attachment's mirror, xpmem_mirror.c).  The owner sends its
 * reply before any INVAL that voids it (xpmem_export.c), so either the
 * fault sees the bump or the zap removes its PTE.  The ACK goes out only
 * after the zap: then no CPU here can reach the page any more
 * (unmap_mapping_range flushed the TLBs).
 *
 * When the owner dies, is fenced or restarts, every attachment of it is
 * revoked: zapped, and its faults get SIGBUS.
 *
 * Sleeping: faults ask the owner with no lock of the attacher's held
 * (->resolve_nowait always declines, so the core drops the fault lock;
 * bounded: the owner's death, a fatal signal or the RPC timeout ends the
 * wait).  The zap for an INVAL runs in the protocol's invalidation worker
 * and takes the attachment's i_mmap_rwsem and page table locks, never an
 * mmap lock, so it cannot wait for a faulting thread here.  A debugger
 * gets -EIO (no ->access): a copy from here could race with the owner's
 * reuse of the page.
 */
#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "xpmem_attach.h"
#include "xpmem_compat.h"
#include "xpmem_ids.h"
#include "xpmem_import.h"
#include "xpmem_proto.h"
#include "xpmem_segment.h"
#include "xpmem_stats.h"
#include "xpmem_trace.h"

struct xpmem_remote_att {
	struct xpmem_attachment att;
	int peer;
	u64 gen;			/* the owner's incarnation (the permit's) */
	u64 handle;			/* the owner's name for it */
	u64 cookie;			/* our name for it, in INVALs (xpmem_imports) */
	spinlock_t lock;		/* install lock: seq, and revoke */
	unsigned long seq;		/* invalidations received, times 2 */
	struct rcu_head rcu;
};

static struct xpmem_remote_att *to_remote(struct xpmem_attachment *att)
{
	return container_of(att, struct xpmem_remote_att, att);
}

/* remote attachments by cookie: the name the owner uses in INVALs */
static DEFINE_XARRAY_ALLOC1(xpmem_imports);

static int xpmem_import_errno(int err)
{
	/* not on a fabric at all: no partition of that number exists here */
	return err == -ENODEV ? -ENOENT : err;
}

/* ---- permits --------------------------------------------------------------- */

/* The permit ended here; tell the owner (if it is still the same one). */
static void xpmem_import_release(struct xpmem_access *ap)
{
	u64 req[2] = { 0, ap->remote_handle };
	u64 rep[XPMEM_PAYLOAD_WORDS];

	if (ap->remote_handle && xpmem_peer_gen(ap->remote_peer) == ap->remote_gen)
		xpmem_rpc_call(ap->remote_peer, XPMEM_MSG_RELEASE, req, 2, rep, false);
}

static int xpmem_remote_attach(struct xpmem_access *ap, unsigned long offset,
			       unsigned long size, unsigned long *vaddr);

static const struct xpmem_access_ops xpmem_remote_access_ops = {
	.attach = xpmem_remote_attach,
	.release = xpmem_import_release,
};

/*
 * xpmem_get of @segid, which names partition @peer: the owner checks the
 * permit against our effective ids.  Guessing other partitions' ids is
 * throttled too; one the owner never issued costs the user a token.
 */
int xpmem_import_get(struct xpmem_file *xf, int peer, xpmem_segid_t segid, bool writable,
		     xpmem_apid_t *apid)
{
	u64 req[XPMEM_PAYLOAD_WORDS] = {
		0, (u64)segid, writable,
		from_kuid_munged(&init_user_ns, current_euid()),
		from_kgid_munged(&init_user_ns, current_egid()),
	};
	u64 rep[XPMEM_PAYLOAD_WORDS];
	u64 gen = xpmem_peer_gen(peer);
	struct xpmem_access *ap;
	int ret;

	ret = xpmem_id_lookup_allowed();
	if (ret)
		return ret;
	ap = xpmem_access_new(&xpmem_remote_access_ops, NULL, segid, writable);
	if (IS_ERR(ap))
		return PTR_ERR(ap);
	ret = xpmem_rpc_call(peer, XPMEM_MSG_GET, req, XPMEM_PAYLOAD_WORDS, rep, true);
	if (ret) {
		if (ret == -EKEYREJECTED) {	/* the owner never issued it */
			xpmem_id_lookup_forged();
			ret = -ENOENT;
		}
		xpmem_access_put(ap);
		return xpmem_import_errno(ret);
	}
	ap->remote_peer = peer;
	ap->remote_gen = gen;
	ap->remote_handle = rep[2];
	ap->size = rep[3];
	if (!rep[3] || !PAGE_ALIGNED(rep[3])) {
		xpmem_peer_count_bad(peer, "segment size", rep[3]);
		xpmem_import_release(ap);
		xpmem_access_put(ap);
		return -EPROTO;
	}
	return xpmem_access_publish(xf, ap, apid);
}

/* ---- the remote kind of attachment ---------------------------------------------- */

static unsigned long xpmem_remote_read_begin(struct xpmem_attachment *att)
{
	struct xpmem_remote_att *ra = to_remote(att);
	unsigned long seq;

	spin_lock(&ra->lock);
	seq = ra->seq;
	spin_unlock(&ra->lock);
	return seq;
}

static bool xpmem_remote_read_retry(struct xpmem_attachment *att, unsigned long seq)
{
	lockdep_assert_held(&to_remote(att)->lock);
	return to_remote(att)->seq != seq;
}

static spinlock_t *xpmem_remote_install_lock(struct xpmem_attachment *att)
{
	return &to_remote(att)->lock;
}

/*
 * Nothing to record: what the owner may make us zap is what it published
 * to us, and the owner keeps that range (xpmem_export.c), so an INVAL
 * only comes for a range we may have mapped.
 */
static void xpmem_remote_installed(struct xpmem_attachment *att, unsigned long src,
				   unsigned long len)
{
}

/* Asking the owner is a wait: never with the fault lock held. */
static int xpmem_remote_resolve_nowait(struct xpmem_attachment *att, unsigned long src,
				       bool write, struct xpmem_resolved *r)
{
	return -EWOULDBLOCK;
}

/*
 * Ask the owner for the page at offset @off of @att (no lock held: this
 * waits for a remote peer, bounded by its death, a fatal signal or the
 * RPC timeout).  Gives a pfn of the owner's fabric window.
 */
static int xpmem_remote_resolve(struct xpmem_attachment *att, unsigned long off,
				bool write, struct xpmem_resolved *r)
{
	struct xpmem_remote_att *ra = to_remote(att);
	u64 req[3], rep[XPMEM_PAYLOAD_WORDS];
	phys_addr_t win, len;
	int err;

	req[1] = ra->handle;
	req[2] = off | write;
	err = xpmem_rpc_call(ra->peer, XPMEM_MSG_FAULT, req, 3, rep, true);
	if (err)
		return err;
	if (!xpmem_peer_window(ra->peer, &win, &len) ||
	    !PAGE_ALIGNED(rep[2]) || rep[2] >= len) {
		/* outside what the owner's window shows us */
		xpmem_peer_count_bad(ra->peer, "page address", rep[2]);
		return -EFAULT;
	}
	xpmem_count(import_faults);
	r->pfn = PHYS_PFN(win + rep[2]);
	r->page = NULL;
	r->writable = write;
	return 0;
}

static void xpmem_remote_mmap(struct xpmem_attachment *att, struct vm_area_struct *vma)
{
	/* no struct page here: never pinnable, never copied by fork */
	xpmem_vm_flags_set(vma, VM_IO | VM_PFNMAP);
}

/* The last vma is gone (or there never was one): tell the owner. */
static void xpmem_remote_teardown(struct xpmem_attachment *att)
{
	struct xpmem_remote_att *ra = to_remote(att);
	u64 req[2] = { 0, ra->handle };
	u64 rep[XPMEM_PAYLOAD_WORDS];

	if (!xpmem_handle_free(&xpmem_imports, ra->cookie, ra))
		return;
	if (ra->handle && xpmem_peer_gen(ra->peer) == ra->gen)
		xpmem_rpc_call(ra->peer, XPMEM_MSG_DETACH, req, 2, rep, false);
}

static void xpmem_remote_free(struct xpmem_attachment *att)
{
	/* found by cookie under RCU */
	kfree_rcu(to_remote(att), rcu);
}

static const struct xpmem_att_ops xpmem_remote_att_ops = {
	.name = "remote",
	.remote = true,
	.mmap = xpmem_remote_mmap,
	.read_begin = xpmem_remote_read_begin,
	.read_retry = xpmem_remote_read_retry,
	.install_lock = xpmem_remote_install_lock,
	.installed = xpmem_remote_installed,
	.resolve_nowait = xpmem_remote_resolve_nowait,
	.resolve = xpmem_remote_resolve,
	.teardown = xpmem_remote_teardown,
	.free = xpmem_remote_free,
};

/*
 * The access ops' ->attach of a permit on another partition's segment:
 * ask the owner for an attachment of [offset, + size), then map it.
 * Takes over the caller's reference of @ap.
 */
static int xpmem_remote_attach(struct xpmem_access *ap, unsigned long offset,
			       unsigned long size, unsigned long *vaddr)
{
	u64 req[XPMEM_PAYLOAD_WORDS], rep[XPMEM_PAYLOAD_WORDS];
	struct xpmem_remote_att *ra;
	int ret;

	ret = xpmem_attach_check_range(ap, offset, size, *vaddr);
	if (ret)
		goto err_put_ap;
	ret = -EHOSTDOWN;	/* the owner restarted or died since the get */
	if (xpmem_peer_gen(ap->remote_peer) != ap->remote_gen)
		goto err_put_ap;
	ret = -ENOMEM;
	ra = kzalloc(sizeof(*ra), GFP_KERNEL_ACCOUNT);
	if (!ra)
		goto err_put_ap;
	/* "source" addresses of a remote attachment are offsets in it */
	ret = xpmem_attachment_init(&ra->att, &xpmem_remote_att_ops, ap, 0, size);
	if (ret) {
		kfree(ra);
		goto err_put_ap;
	}
	/* from here the attachment owns @ap's reference; abort frees it all */
	ra->att.write_notify = true;	/* a write fault asks the owner for write */
	ra->peer = ap->remote_peer;
	ra->gen = ap->remote_gen;
	spin_lock_init(&ra->lock);
	ret = xpmem_attachment_add(&ra->att);
	if (ret)
		goto err_abort;
	ret = xpmem_handle_alloc(&xpmem_imports, ra, &ra->cookie, GFP_KERNEL);
	if (ret)
		goto err_abort;
	req[1] = ap->remote_handle;
	req[2] = offset;
	req[3] = size;
	req[4] = ra->cookie;
	ret = xpmem_rpc_call(ra->peer, XPMEM_MSG_ATTACH, req, XPMEM_PAYLOAD_WORDS, rep, true);
	if (ret) {
		ret = xpmem_import_errno(ret);
		goto err_abort;
	}
	ra->handle = rep[2];
	return xpmem_attachment_map(&ra->att, vaddr);

err_abort:
	xpmem_attachment_abort(&ra->att);	/* gives the owner's half back, if made */
	return ret;
err_put_ap:
	xpmem_access_put(ap);
	return ret;
}

/* ---- the owner's invalidations, and its going away ------------------------------ */

static struct xpmem_remote_att *xpmem_import_lookup(int peer, u64 gen, u64 cookie)
{
	struct xpmem_remote_att *ra;

	rcu_read_lock();
	ra = xpmem_handle_lookup(&xpmem_imports, cookie,
				 offsetof(struct xpmem_remote_att, cookie));
	if (ra && (ra->peer != peer || ra->gen != gen || !kref_get_unless_zero(&ra->att.ref)))
		ra = NULL;
	rcu_read_unlock();
	return ra;
}

/* Zap [start, end) (offsets in the attachment) after bumping its sequence. */
static void xpmem_import_zap(struct xpmem_remote_att *ra, unsigned long start,
			     unsigned long end)
{
	spin_lock(&ra->lock);
	ra->seq += 2;
	spin_unlock(&ra->lock);
	/* the fault's sequence check and this zap meet at the install lock */
	xpmem_att_zap(&ra->att, start, end - start);
}

/* INVAL from @peer: ack id, cookie, start, end.  In the invalidation worker. */
static void xpmem_import_inval(int peer, u64 gen, const u64 *p)
{
	struct xpmem_remote_att *ra = xpmem_import_lookup(peer, gen, p[1]);
	u64 t0 = ktime_get_ns();

	xpmem_test_ack_delay();
	if (ra) {
		if (p[2] < p[3] && p[3] <= ra->att.size &&
		    PAGE_ALIGNED(p[2]) && PAGE_ALIGNED(p[3]))
			xpmem_import_zap(ra, p[2], p[3]);
		else	/* never trust the range: zap all of it */
			xpmem_import_zap(ra, 0, ra->att.size);
		xpmem_att_put(&ra->att);
	}
	/* unknown cookie: already detached, nothing here maps it */
	xpmem_count(import_invals);
	xpmem_peer_send_wait(peer, XPMEM_MSG_ACK, p, 1, false);
	trace_xpmem_ack(peer, p[0], ktime_get_ns() - t0);
}

/* Worker: @peer went down; everything attached from it is revoked. */
static void xpmem_import_peer_cleanup(int peer)
{
	u64 gen = xpmem_peer_gen(peer);
	struct xpmem_remote_att *ra;
	unsigned long idx;

	xa_for_each(&xpmem_imports, idx, ra) {
		rcu_read_lock();
		ra = xa_load(&xpmem_imports, idx);
		if (ra && (ra->peer != peer || ra->gen == gen ||
			   !kref_get_unless_zero(&ra->att.ref)))
			ra = NULL;
		rcu_read_unlock();
		if (!ra)
			continue;
		xpmem_attachment_revoke(&ra->att);
		xpmem_att_put(&ra->att);
	}
}

static const struct xpmem_proto_handler xpmem_inval_handler = {
	.ctx = XPMEM_IN_INVALS,
	.len = 32,
	.handle = xpmem_import_inval,
};

static const struct xpmem_proto_peer_ops xpmem_import_peer_ops = {
	.cleanup = xpmem_import_peer_cleanup,
};

void xpmem_import_init(void)
{
	xpmem_proto_register(XPMEM_MSG_INVAL, &xpmem_inval_handler);
	xpmem_proto_register_peer_ops(&xpmem_import_peer_ops);
}
