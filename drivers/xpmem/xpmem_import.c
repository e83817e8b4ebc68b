// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_import.c - the attacher's side of cross-partition export: permits
 * on segments of other partitions, attachments of them, their faults and
 * the owner's invalidations.
 *
 * A segid whose partition field names another partition is served by
 * that partition (its owner): xpmem_get asks it (GET) and the owner's
 * permit check decides; the permit here is an ordinary xpmem_access with
 * no local segment.  xpmem_attach asks the owner for an attachment
 * (ATTACH) and maps an ordinary attachment vma (xpmem_attach.c), whose
 * faults ask the owner for the page (FAULT): the reply is the page's
 * physical address in the owner, which this partition reaches through
 * the owner's fabric window, so the PTE maps window pfns (special PTEs
 * of a VM_PFNMAP vma, no struct page, no reference).
 *
 * Coherence: the attachment's remote_seq is this partition's count of the
 * owner's invalidations of it.  A fault samples it before asking, and
 * installs the PTE only if it is unchanged, under the install lock inside
 * the page table lock; an INVAL bumps it before zapping (the protocol of
 * a local attachment's mirror, xpmem_mirror.c).  The owner sends its reply before any INVAL
 * that voids it (xpmem_export.c), so either the fault sees the bump or
 * the zap removes its PTE.  The ACK goes out only after the zap: then no
 * CPU here can reach the page any more (unmap_mapping_range flushed the
 * TLBs).
 *
 * When the owner dies, is fenced or restarts, every attachment of it is
 * revoked: zapped, and its faults get SIGBUS.
 *
 * Sleeping: faults ask the owner with no lock of the attacher's held (the
 * fault lock is dropped first, xpmem_attach.c; bounded: the owner's
 * death, a fatal signal or the RPC timeout ends the wait).  The zap for
 * an INVAL runs in xpmem_import_wq and takes the attachment's
 * i_mmap_rwsem and page table locks, never an mmap lock, so it cannot wait
 * for a faulting thread here.
 */
#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/xarray.h>

#include "xpmem_internal.h"
#include "xpmem_wire.h"

/* remote attachments by cookie: the name the owner uses in INVALs */
static DEFINE_XARRAY_ALLOC1(xpmem_imports);

/* ---- permits ------------------------------------------------------------- */

static int xpmem_import_errno(int err)
{
	/* not on a fabric at all: no partition of that number exists here */
	return err == -ENODEV ? -ENOENT : err;
}

int xpmem_import_get(int peer, xpmem_segid_t segid, bool writable,
		     struct xpmem_access *ap)
{
	u64 req[XPMEM_PAYLOAD_WORDS] = {
		0, (u64)segid, writable,
		from_kuid_munged(&init_user_ns, current_euid()),
		from_kgid_munged(&init_user_ns, current_egid()),
	};
	u64 rep[XPMEM_PAYLOAD_WORDS];
	u64 gen = xpmem_remote_gen(peer);
	int ret;

	ret = xpmem_rpc_call(peer, XPMEM_MSG_GET, req, XPMEM_PAYLOAD_WORDS, rep, true);
	if (ret)
		return xpmem_import_errno(ret);
	ap->remote_peer = peer;
	ap->remote_gen = gen;
	ap->remote_handle = rep[2];
	ap->remote_size = rep[3];
	if (!rep[3] || !PAGE_ALIGNED(rep[3])) {
		xpmem_fabric_count_bad(peer, "segment size", rep[3]);
		xpmem_import_release(ap);
		return -EPROTO;
	}
	return 0;
}

/* The permit is gone here; tell the owner (if it is still the same one). */
void xpmem_import_release(struct xpmem_access *ap)
{
	u64 req[2] = { 0, ap->remote_handle };
	u64 rep[XPMEM_PAYLOAD_WORDS];

	if (xpmem_remote_gen(ap->remote_peer) == ap->remote_gen)
		xpmem_rpc_call(ap->remote_peer, XPMEM_MSG_RELEASE, req, 2, rep, false);
}

/* ---- attachments ------------------------------------------------------------ */

static struct xpmem_attachment *xpmem_import_lookup(int peer, u64 gen, u64 cookie)
{
	struct xpmem_attachment *att;

	if (cookie > U32_MAX)
		return NULL;
	rcu_read_lock();
	att = xa_load(&xpmem_imports, cookie);
	if (att && (att->peer != peer || att->ap->remote_gen != gen ||
		    !kref_get_unless_zero(&att->ref)))
		att = NULL;
	rcu_read_unlock();
	return att;
}

/*
 * Ask the owner for an attachment of [offset, offset + att->size) of the
 * segment behind att->ap.  Called before the vma exists.
 */
int xpmem_import_attach(struct xpmem_attachment *att, unsigned long offset)
{
	struct xpmem_access *ap = att->ap;
	u64 req[XPMEM_PAYLOAD_WORDS];
	u64 rep[XPMEM_PAYLOAD_WORDS];
	int ret;

	if (xpmem_remote_gen(ap->remote_peer) != ap->remote_gen)
		return -EHOSTDOWN;	/* the owner restarted or died since */
	att->peer = ap->remote_peer;
	ret = xa_alloc(&xpmem_imports, &att->cookie, att, xa_limit_32b, GFP_KERNEL);
	if (ret)
		return ret;
	req[1] = ap->remote_handle;
	req[2] = offset;
	req[3] = att->size;
	req[4] = att->cookie;
	ret = xpmem_rpc_call(att->peer, XPMEM_MSG_ATTACH, req, XPMEM_PAYLOAD_WORDS, rep, true);
	if (ret) {
		xa_cmpxchg(&xpmem_imports, att->cookie, att, NULL, GFP_KERNEL);
		return xpmem_import_errno(ret);
	}
	att->remote_handle = rep[2];
	return 0;
}

/* The last vma of @att is gone (or it never got one): tell the owner. */
void xpmem_import_detach(struct xpmem_attachment *att)
{
	u64 req[2] = { 0, att->remote_handle };
	u64 rep[XPMEM_PAYLOAD_WORDS];

	if (xa_cmpxchg(&xpmem_imports, att->cookie, att, NULL, GFP_KERNEL) != att)
		return;
	if (att->remote_handle &&
	    xpmem_remote_gen(att->peer) == att->ap->remote_gen)
		xpmem_rpc_call(att->peer, XPMEM_MSG_DETACH, req, 2, rep, false);
}

/* Zap [start, end) (offsets in the attachment) after bumping its sequence. */
static void xpmem_import_zap(struct xpmem_attachment *att, unsigned long start,
			     unsigned long end)
{
	spin_lock(&att->remote_lock);
	att->remote_seq += 2;
	spin_unlock(&att->remote_lock);
	/* the fault's sequence check and this zap meet at the install lock */
	xpmem_zap_mapping(att->inode->i_mapping, start, end - start);
}

/* INVAL from @peer: ack id, cookie, start, end.  In xpmem_import_wq. */
void xpmem_import_inval(int peer, u64 gen, const u64 *p)
{
	struct xpmem_attachment *att = xpmem_import_lookup(peer, gen, p[1]);
	unsigned int delay = READ_ONCE(xpmem_ack_delay_ms);

	if (delay)	/* test hook: a slow (or, for the owner, a hung) attacher */
		msleep(delay);
	if (att) {
		if (p[2] < p[3] && p[3] <= att->size &&
		    PAGE_ALIGNED(p[2]) && PAGE_ALIGNED(p[3]))
			xpmem_import_zap(att, p[2], p[3]);
		else	/* never trust the range: zap all of it */
			xpmem_import_zap(att, 0, att->size);
		kref_put(&att->ref, xpmem_att_release);
	}
	/* unknown cookie: already detached, nothing here maps it */
	xpmem_count(import_invals);
	xpmem_fabric_send_wait(peer, XPMEM_MSG_ACK, p, 1);
}

/* Worker: @peer went down; everything attached from it is revoked. */
void xpmem_import_peer_cleanup(int peer)
{
	u64 gen = xpmem_remote_gen(peer);
	struct xpmem_attachment *att;
	unsigned long idx;

	xa_for_each(&xpmem_imports, idx, att) {
		rcu_read_lock();
		att = xa_load(&xpmem_imports, idx);
		if (att && (att->peer != peer || att->ap->remote_gen == gen ||
			    !kref_get_unless_zero(&att->ref)))
			att = NULL;
		rcu_read_unlock();
		if (!att)
			continue;
		xpmem_attachment_revoke(att);
		kref_put(&att->ref, xpmem_att_release);
	}
}

/* ---- faults ------------------------------------------------------------------ */

/* Sample the attachment's sequence before asking the owner for a page. */
unsigned long xpmem_import_read_begin(struct xpmem_attachment *att)
{
	unsigned long seq;

	spin_lock(&att->remote_lock);
	seq = att->remote_seq;
	spin_unlock(&att->remote_lock);
	return seq;
}

/*
 * Ask the owner for the page at offset @off of @att (no lock held: this
 * waits for a remote peer, bounded by its death, a fatal signal or the
 * RPC timeout).  Returns 0 with *pfn, a pfn of the owner's fabric window.
 */
int xpmem_import_resolve(struct xpmem_attachment *att, unsigned long off,
			 bool write, unsigned long *pfn)
{
	u64 req[3], rep[XPMEM_PAYLOAD_WORDS];
	phys_addr_t win, len;
	int err;

	req[1] = att->remote_handle;
	req[2] = off | write;
	err = xpmem_rpc_call(att->peer, XPMEM_MSG_FAULT, req, 3, rep, true);
	if (err)
		return err;
	if (!xpmem_fabric_window(att->peer, &win, &len) ||
	    !PAGE_ALIGNED(rep[2]) || rep[2] >= len) {
		/* outside what the owner's window shows us */
		xpmem_fabric_count_bad(att->peer, "page address", rep[2]);
		return -EFAULT;
	}
	xpmem_count(import_faults);
	*pfn = PHYS_PFN(win + rep[2]);
	return 0;
}
