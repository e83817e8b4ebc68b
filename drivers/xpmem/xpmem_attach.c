// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_attach.c - attachments: the vma in the attacher, and its faults.
 *
 * Each attachment is a shared mapping of its own pseudo-filesystem inode.
 * That inode's address_space is what invalidation zaps with
 * unmap_mapping_range(): the kernel's i_mmap tree finds every vma of the
 * attachment (also after mremap or a split) and i_mmap_rwsem keeps them
 * from being torn down while they are zapped, without ever taking the
 * attacher's mmap lock.
 *
 * A local attachment's vma is VM_MIXEDMAP and its PTEs are "special": they
 * hold no page reference and no mapcount.  No page is pinned after a fault
 * returns; the only thing that keeps an attacher coherent is its mirror
 * (xpmem_mirror.c), an interval notifier on the exporting mm that zaps
 * these PTEs before the page goes.
 * get_user_pages() still works on them (futexes, O_DIRECT,
 * process_vm_readv, RDMA registration): find_special_page gives the source
 * page to everyone but a task that is zapping the PTE (xpmem_amm.c).  A
 * pin taken that way is the pinner's, exactly like a pin taken through the
 * source mapping: invalidation still zaps the attacher's PTE at once, and
 * the pinned page stays valid for its pinner until it unpins.
 *
 * Another partition's memory (att->remote) has no struct page here: those
 * vmas stay VM_IO | VM_PFNMAP and get_user_pages() refuses them.
 *
 * Lifetime: the attachment is referenced by the ioctl that makes it, by
 * each of its vmas and by work queued for it.  When the last vma goes
 * (munmap, detach, exit), vma close queues the teardown that may wait
 * (removing the mirror waits for a running invalidation of the source;
 * another partition's attachment is given back with a request to the
 * owner) on xpmem_att_wq: vma close holds the attacher's mmap lock and
 * must not wait for either.
 *
 * Fault path and locks.  The fault core holds the attacher's mmap lock
 * (read) or, since 6.6, possibly only the vma's lock.  Resolving the page
 * needs the *source* mm's mmap lock, and holding two mmap locks would need
 * a global order that the fault core does not follow.  So:
 *   1. the attachment's sequence is sampled (xpmem_mirror_read_begin());
 *   2. mmap_read_trylock() on the source: a trylock never waits, so it
 *      cannot take part in a deadlock; on success the page is resolved
 *      and installed under the fault lock;
 *   3. if it is contended, the fault lock is dropped, the page resolved
 *      with a normal (killable) lock on the source, that lock dropped,
 *      the attacher's mmap lock taken again to install the page if the
 *      vma is still this attachment, and the fault is retried (it finds
 *      the PTE).  No lock of one mm is ever held while waiting for the
 *      other's.  A caller that cannot have its lock dropped (a debugger's
 *      access_remote_vm: no FAULT_FLAG_ALLOW_RETRY) gets a failed fault
 *      rather than a wait under the lock; the core then falls back to
 *      ->access, which tries again without waiting.
 * Another partition's page (xpmem_import.c) is always resolved the third
 * way: the request to the owner is a wait on a remote peer, never made
 * with a lock held.  In every case the PTE is installed only if the
 * sequence is unchanged and the attachment not revoked, checked under the
 * attachment's install lock inside the attacher's page table lock
 * (apply_to_page_range() calls us with it held); invalidation and revoke
 * publish their change under the same lock before they zap.
 *
 * Writable attachments resolve every fault, reads too, with FOLL_WRITE,
 * which breaks copy-on-write in the source and marks the page dirty there:
 * a writable attachment has writable PTEs only, each pointing at the page
 * the source itself writes to.  So the vma needs no write notification
 * (page_mkwrite/pfn_mkwrite), which the kernel would take as "dirty
 * tracked" and then refuse long-term writable pins (RDMA registration).
 * The exception: a writable attachment made over a source range that was
 * not all writable (ro_source) maps the read-only pages read-only and
 * keeps pfn_mkwrite to check writes to them.  RDONLY attachments resolve
 * reads without FOLL_WRITE and map read-only.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/highmem.h>
#include <linux/mman.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/delay.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "xpmem_internal.h"
#include "xpmem_compat.h"

#define XPMEM_FS_MAGIC	0x58504d4d	/* "XPMM" */

static struct vfsmount *xpmem_mnt;
static struct workqueue_struct *xpmem_att_wq;
static const struct vm_operations_struct xpmem_att_vm_ops;
static const struct vm_operations_struct xpmem_att_ro_source_vm_ops;
static const struct vm_operations_struct xpmem_att_remote_vm_ops;

static bool xpmem_vma_is_attachment(struct vm_area_struct *vma)
{
	return vma->vm_ops == &xpmem_att_vm_ops ||
	       vma->vm_ops == &xpmem_att_ro_source_vm_ops ||
	       vma->vm_ops == &xpmem_att_remote_vm_ops;
}

/* ---- test hook: emulate a pinning implementation ---------------------------- */

static void xpmem_test_pin(struct xpmem_attachment *att, unsigned long src,
			   unsigned long pfn)
{
	struct page *page = pfn_to_page(pfn), *old;

	if (!att->test_pin)
		return;
	get_page(page);
	old = xa_store(&att->test_pins, src >> PAGE_SHIFT, page, GFP_KERNEL);
	if (xa_is_err(old))
		put_page(page);
	else if (old)
		put_page(old);
}

static void xpmem_test_unpin_all(struct xpmem_attachment *att)
{
	struct page *page;
	unsigned long idx;

	xa_for_each(&att->test_pins, idx, page)
		put_page(page);
	xa_destroy(&att->test_pins);
}

/* ---- lifetime ------------------------------------------------------------ */

void xpmem_att_release(struct kref *ref)
{
	struct xpmem_attachment *att =
		container_of(ref, struct xpmem_attachment, ref);
	struct xpmem_access *ap = att->ap;

	WARN_ON_ONCE(att->mirror.inserted);
	xpmem_test_unpin_all(att);
	xa_destroy(&att->fault_errors);
	if (att->amm)
		xpmem_amm_put(att->amm);
	if (att->src_mm)
		mmdrop(att->src_mm);
	mutex_lock(&ap->lock);
	list_del(&att->ap_node);
	mutex_unlock(&ap->lock);
	iput(att->inode);
	xpmem_access_put(ap);
	xpmem_user_uncharge(att->user, XPMEM_OWNS_ATTACHMENT);
	/* remote attachments are found by cookie under RCU */
	kfree_rcu(att, rcu);
	xpmem_uncount(attachments);
}

static void xpmem_att_put(struct xpmem_attachment *att)
{
	kref_put(&att->ref, xpmem_att_release);
}

/* The install lock: publishes revoke and invalidation against faults. */
static spinlock_t *xpmem_att_lock(struct xpmem_attachment *att)
{
	return att->remote ? &att->remote_lock : &att->mirror.lock;
}

/*
 * Withdraw an attachment (its permit was released or its segment removed):
 * from now on its faults get SIGBUS, and its present PTEs are zapped now.
 * Called with att->ap->lock held (never from a notifier callback).
 */
void xpmem_attachment_revoke(struct xpmem_attachment *att)
{
	spinlock_t *lock = xpmem_att_lock(att);

	spin_lock(lock);
	WRITE_ONCE(att->revoked, true);
	spin_unlock(lock);
	xpmem_count(revokes);
	xpmem_zap_mapping(att->inode->i_mapping, 0, att->size);
}

/* The mirror's ->invalidate: zap [start, end) of the source, wait. */
static void xpmem_att_mirror_invalidate(struct xpmem_mirror *m, unsigned long start,
					unsigned long end)
{
	struct xpmem_attachment *att =
		container_of(m, struct xpmem_attachment, mirror);
	unsigned int delay = READ_ONCE(xpmem_ack_delay_ms);

	if (delay)	/* test hook: a slow acknowledger */
		msleep(delay);
	xpmem_zap_mapping_wait(att->inode->i_mapping, start - att->src_start, end - start);
	xpmem_count(acks);
}

static const struct xpmem_mirror_ops xpmem_att_mirror_ops = {
	.invalidate = xpmem_att_mirror_invalidate,
};

/*
 * The last vma of @att is gone: stop mirroring the source, or give the
 * attachment back to the owning partition.  In xpmem_att_wq (see the top
 * of this file); holds the reference vma close took for it.
 */
static void xpmem_att_teardown_fn(struct work_struct *work)
{
	struct xpmem_attachment *att =
		container_of(work, struct xpmem_attachment, teardown);

	if (att->remote)
		xpmem_import_detach(att);
	else
		xpmem_mirror_remove(&att->mirror);
	xpmem_att_put(att);
}

/* ---- resolving a page in the source -------------------------------------- */

/*
 * Return a referenced page of the source at @addr.  The caller holds the
 * source mmap lock.  The reference is dropped as soon as the PTE is in.
 */
int xpmem_src_page(struct mm_struct *mm, unsigned long addr, bool write,
		   struct page **page)
{
	struct vm_area_struct *vma = vma_lookup(mm, addr);
	long n;

	if (!vma)
		return -EFAULT;		/* a hole in the segment */
	/*
	 * Never resolve through another attachment (or any pfn mapping):
	 * attachments map only the exporter's own pages, which is also what
	 * lets a zap of attachment vmas skip the mirrors it hits
	 * (xpmem_mirror.c).
	 */
	if (xpmem_vma_is_attachment(vma) ||
	    (vma->vm_flags & (VM_IO | VM_PFNMAP)))
		return -EFAULT;
	if (!(vma->vm_flags & (write ? VM_WRITE : VM_READ)))
		return -EACCES;
	if (write)	/* breaks copy-on-write in the source */
		n = xpmem_gup_remote_one(mm, addr, FOLL_WRITE, page);
	else		/* unshares a page shared with a fork child or KSM */
		n = xpmem_pin_remote_one_read(mm, addr, page);
	if (n == 1)
		return 0;
	return n < 0 ? (int)n : -EFAULT;
}

vm_fault_t xpmem_errno_to_fault(int err)
{
	switch (err) {
	case -EACCES:
		return VM_FAULT_SIGSEGV;
	case -ENOMEM:
		return VM_FAULT_OOM;
	default:
		return VM_FAULT_SIGBUS;
	}
}

/*
 * Resolve the source page for a fault on @att: for write if the fault
 * writes or the attachment is writable (see the top of this file), except
 * that a read through a ro_source attachment of a page the source maps
 * read-only is resolved read-only.  *@writable says which it was.
 */
static int xpmem_att_resolve(struct xpmem_attachment *att,
			     struct mm_struct *src_mm, unsigned long src,
			     bool write, struct page **page, bool *writable)
{
	int err;

	*writable = write || att->writable;
	err = xpmem_src_page(src_mm, src, *writable, page);
	if (err == -EACCES && !write && *writable && att->ro_source) {
		*writable = false;
		err = xpmem_src_page(src_mm, src, false, page);
	}
	return err;
}

static unsigned long xpmem_att_src(struct vm_area_struct *vma,
				   struct xpmem_attachment *att,
				   unsigned long addr)
{
	return att->src_start + (vma->vm_pgoff << PAGE_SHIFT) +
	       (addr - vma->vm_start);
}

/* ---- installing a PTE ------------------------------------------------------ */

struct xpmem_install {
	struct mm_struct *mm;
	struct xpmem_attachment *att;
	unsigned long seq;
	pte_t pte;
	bool retry;
};

/*
 * Has @att been revoked or invalidated since @seq was sampled?  With its
 * install lock held.
 */
static bool xpmem_att_retry_locked(struct xpmem_attachment *att, unsigned long seq)
{
	if (READ_ONCE(att->revoked))
		return true;
	if (att->remote)
		return att->remote_seq != seq;
	return xpmem_mirror_read_retry(&att->mirror, seq);
}

/* Called by apply_to_page_range() with the attacher's PTE lock held. */
static int xpmem_install_pte(pte_t *ptep, unsigned long addr, void *data)
{
	struct xpmem_install *in = data;
	spinlock_t *lock = xpmem_att_lock(in->att);

	spin_lock(lock);
	in->retry = xpmem_att_retry_locked(in->att, in->seq);
	/* another thread's fault may have won: its PTE is just as current */
	if (!in->retry && pte_none(ptep_get(ptep)))
		set_pte_at(in->mm, addr, ptep, in->pte);
	spin_unlock(lock);
	return 0;
}

/*
 * Map @pfn at @addr of @vma (an attachment vma of @att) if nothing
 * invalidated or revoked @att since @seq.  -EAGAIN: resolve again.
 */
int xpmem_install(struct vm_area_struct *vma, unsigned long addr,
		  unsigned long pfn, bool write, struct xpmem_attachment *att,
		  unsigned long seq)
{
	unsigned long flags = write ? vma->vm_flags : vma->vm_flags & ~VM_WRITE;
	struct xpmem_install in = {
		.mm = vma->vm_mm,
		.att = att,
		.seq = seq,
	};
	pte_t pte = pte_mkspecial(pfn_pte(pfn, vm_get_page_prot(flags)));
	int ret;

	in.pte = write ? pte_mkdirty(pte_mkyoung(pte)) : pte_mkyoung(pte);
	ret = apply_to_page_range(vma->vm_mm, addr, PAGE_SIZE,
				  xpmem_install_pte, &in);
	if (ret)
		return ret;
	return in.retry ? -EAGAIN : 0;
}

/* ---- faults ----------------------------------------------------------------- */

/*
 * The page of a fault, resolved with no lock of the attacher's held:
 * locally with a sleeping lock on the source (the source's lock was
 * contended), or from the owning partition.  Returns 0 with *pfn set, and
 * *page referenced if it has one.
 */
static int xpmem_att_resolve_unlocked(struct xpmem_attachment *att, unsigned long src,
				      bool write, unsigned long *pfn, struct page **page,
				      bool *writable)
{
	struct mm_struct *src_mm = att->src_mm;
	int err = -EFAULT;

	*page = NULL;
	if (att->remote) {
		*writable = write;
		return xpmem_import_resolve(att, src, write, pfn);
	}
	if (!mmget_not_zero(src_mm))
		return -EFAULT;		/* the owner is exiting */
	if (!mmap_read_lock_killable(src_mm)) {
		err = xpmem_att_resolve(att, src_mm, src, write, page, writable);
		mmap_read_unlock(src_mm);
	}
	mmput(src_mm);
	if (!err)
		*pfn = page_to_pfn(*page);
	return err;
}

/*
 * A fault that dropped its lock must return VM_FAULT_RETRY (the core then
 * neither unlocks nor touches the vma), so a resolve that failed there
 * (no page at the source, no access, the owner said no) is kept for the
 * retried fault to return: by page index, with the sequence it was
 * resolved under.  The retry returns it only if nothing invalidated the
 * attachment since; any success at that index clears it.  -EAGAIN (the
 * owner's queue was full) and a fatal signal (-EINTR) are not results.
 */
#define XPMEM_STASH_ERRNO_BITS	12	/* -MAX_ERRNO .. -1 */
#define XPMEM_STASH_SEQ_MASK	(LONG_MAX >> XPMEM_STASH_ERRNO_BITS)

static void xpmem_fault_error_stash(struct xpmem_attachment *att, unsigned long src,
				    unsigned long seq, int err)
{
	unsigned long idx = (src - att->src_start) >> PAGE_SHIFT;

	if (!err) {
		xa_erase(&att->fault_errors, idx);
		return;
	}
	if (err == -EAGAIN || err == -EINTR || err < -MAX_ERRNO)
		return;
	/* on failure to store, the retried fault just resolves again */
	xa_store(&att->fault_errors, idx,
		 xa_mk_value(((seq & XPMEM_STASH_SEQ_MASK) << XPMEM_STASH_ERRNO_BITS) | -err),
		 GFP_KERNEL_ACCOUNT);
}

/* A retried fault: the error its first try resolved, if still current; else 0. */
static vm_fault_t xpmem_fault_error_take(struct vm_fault *vmf, struct xpmem_attachment *att,
					 unsigned long src, unsigned long seq)
{
	unsigned long idx = (src - att->src_start) >> PAGE_SHIFT;
	unsigned long v;
	void *entry;

	if (!(vmf->flags & FAULT_FLAG_TRIED) || xa_empty(&att->fault_errors))
		return 0;
	entry = xa_erase(&att->fault_errors, idx);
	if (!entry)
		return 0;
	v = xa_to_value(entry);
	if (v >> XPMEM_STASH_ERRNO_BITS != (seq & XPMEM_STASH_SEQ_MASK))
		return 0;	/* invalidated since: resolve again */
	xpmem_count(fault_errors_after_retry);
	return xpmem_errno_to_fault(-(int)(v & MAX_ERRNO));
}

/*
 * Resolve and install without holding the fault's lock (see the top of
 * this file): drop it, resolve, take the attacher's mmap lock again,
 * install if the vma at @addr is still this attachment at the same source
 * address, and have the fault retried.  Only @att and the mm (both
 * referenced here) may be touched once the fault lock is gone.
 */
static vm_fault_t xpmem_fault_unlocked(struct vm_fault *vmf,
				       struct xpmem_attachment *att,
				       unsigned long addr, unsigned long src,
				       bool write, unsigned long seq)
{
	struct mm_struct *mm = vmf->vma->vm_mm;
	struct vm_area_struct *vma;
	struct page *page;
	unsigned long pfn;
	bool writable;
	int err;

	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return VM_FAULT_RETRY;	/* the caller keeps its lock */
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY)) {
		/* a lock we may not drop: fail rather than wait under it */
		xpmem_count(fault_contended);
		return VM_FAULT_SIGBUS;
	}
	xpmem_count(fault_slow);
	kref_get(&att->ref);
	mmgrab(mm);
	xpmem_release_fault_lock(vmf);

	err = xpmem_att_resolve_unlocked(att, src, write, &pfn, &page, &writable);
	xpmem_fault_error_stash(att, src, seq, err);
	if (!err && !mmap_read_lock_killable(mm)) {
		vma = vma_lookup(mm, addr);
		if (vma && xpmem_vma_is_attachment(vma) && vma->vm_private_data == att &&
		    xpmem_att_src(vma, att, addr) == src &&
		    !xpmem_install(vma, addr, pfn, writable, att, seq) && page)
			xpmem_test_pin(att, src, pfn);
		mmap_read_unlock(mm);
	}
	if (page)
		put_page(page);		/* no pin outlives the fault */
	mmdrop(mm);
	xpmem_att_put(att);
	return VM_FAULT_RETRY;
}

static vm_fault_t xpmem_att_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = vma->vm_private_data;
	unsigned long addr = vmf->address & PAGE_MASK;
	unsigned long src = xpmem_att_src(vma, att, addr);
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	struct mm_struct *src_mm = att->src_mm;

	xpmem_count(faults);
	if (write && !att->writable)
		return VM_FAULT_SIGSEGV;
	if (att->remote) {	/* another partition's memory: always unlocked */
		unsigned long seq;
		vm_fault_t ret;

		if (READ_ONCE(att->revoked))
			return VM_FAULT_SIGBUS;
		seq = xpmem_import_read_begin(att);
		ret = xpmem_fault_error_take(vmf, att, src, seq);
		if (ret)
			return ret;
		return xpmem_fault_unlocked(vmf, att, addr, src, write, seq);
	}

	for (;;) {
		struct page *page;
		unsigned long seq;
		bool writable;
		vm_fault_t ret;
		int err;

		if (READ_ONCE(att->revoked))
			return VM_FAULT_SIGBUS;
		seq = xpmem_mirror_read_begin(&att->mirror);
		ret = xpmem_fault_error_take(vmf, att, src, seq);
		if (ret)
			return ret;
		if (!mmget_not_zero(src_mm))
			return VM_FAULT_SIGBUS;	/* owner exiting */
		if (!mmap_read_trylock(src_mm)) {
			mmput_async(src_mm);
			return xpmem_fault_unlocked(vmf, att, addr, src, write, seq);
		}
		err = xpmem_att_resolve(att, src_mm, src, write, &page, &writable);
		mmap_read_unlock(src_mm);
		/* never run the source's exit_mmap under our fault lock */
		mmput_async(src_mm);
		if (err)
			return xpmem_errno_to_fault(err);

		err = xpmem_install(vma, addr, page_to_pfn(page), writable, att, seq);
		if (!err)
			xpmem_test_pin(att, src, page_to_pfn(page));
		put_page(page);		/* no pin outlives the fault */
		if (!err)
			return VM_FAULT_NOPAGE;
		if (err != -EAGAIN)
			return xpmem_errno_to_fault(err);
		xpmem_count(fault_retries);
	}
}

/*
 * Write to a read-only PTE of a writable attachment: another partition's
 * page, or a page the source mapped read-only when it was faulted in
 * (ro_source attachments).  Let the core make it writable only if the
 * source, resolved for write now, still maps the same page and nothing
 * invalidated it since; otherwise drop the PTE and let the ordinary fault
 * path (which may drop locks and retry) resolve it.
 */
static vm_fault_t xpmem_att_pfn_mkwrite(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = vma->vm_private_data;
	unsigned long addr = vmf->address & PAGE_MASK;
	unsigned long src = xpmem_att_src(vma, att, addr);
	struct mm_struct *src_mm = att->src_mm;
	struct page *page;
	unsigned long seq;
	bool same = false;
	int err;

	xpmem_count(mkwrite);
	if (!att->writable)
		return VM_FAULT_SIGSEGV;
	if (att->remote)	/* the write fault asks the owner for write */
		goto refault;
	if (READ_ONCE(att->revoked))
		return VM_FAULT_SIGBUS;
	seq = xpmem_mirror_read_begin(&att->mirror);
	if (!mmget_not_zero(src_mm))
		return VM_FAULT_SIGBUS;
	if (mmap_read_trylock(src_mm)) {
		err = xpmem_src_page(src_mm, src, true, &page);
		mmap_read_unlock(src_mm);
		mmput_async(src_mm);
		if (err)
			return xpmem_errno_to_fault(err);
		spin_lock(&att->mirror.lock);
		same = page_to_pfn(page) == pte_pfn(vmf->orig_pte) &&
		       !xpmem_att_retry_locked(att, seq);
		spin_unlock(&att->mirror.lock);
		put_page(page);
	} else {
		mmput_async(src_mm);
	}
	if (same)
		return 0;
refault:
	/* VM_MIXEDMAP / VM_PFNMAP: zap the one PTE by file offset */
	xpmem_zap_mapping(att->inode->i_mapping,
			  (loff_t)(vma->vm_pgoff << PAGE_SHIFT) + (addr - vma->vm_start),
			  PAGE_SIZE);
	return VM_FAULT_NOPAGE;
}

/*
 * ptrace, /proc/PID/mem and so debuggers (access_remote_vm) use GUP, which
 * works on local attachments (find_special_page below); the core falls
 * back to ->access when GUP fails: always for another partition's memory
 * (VM_PFNMAP), for a write through an RDONLY attachment, and when the
 * source's lock was contended (a debugger's fault cannot drop its lock).
 * Copy through the source's pages with the rules of a fault: the caller
 * holds the attacher's mmap lock, so the source's is only trylocked
 * (-EAGAIN when busy); an RDONLY attachment is never written, even with
 * FOLL_FORCE; no page reference outlives the call.  Returns the bytes
 * copied or -errno.
 */
static int xpmem_att_access(struct vm_area_struct *vma, unsigned long addr,
			    void *buf, int len, int write)
{
	struct xpmem_attachment *att = vma->vm_private_data;
	struct mm_struct *src_mm = att->src_mm;
	int done = 0;

	if (write && !att->writable)
		return -EACCES;
	/*
	 * Another partition's page is only ours to touch while the owner
	 * cannot reuse it, i.e. through a PTE its invalidations zap; a copy
	 * from here could race with that, so debuggers get -EIO.
	 */
	if (att->remote)
		return -EIO;
	if (READ_ONCE(att->revoked))
		return -EIO;
	len = min_t(unsigned long, len, vma->vm_end - addr);
	if (!mmget_not_zero(src_mm))
		return -EIO;
	if (!mmap_read_trylock(src_mm)) {
		mmput_async(src_mm);
		return -EAGAIN;
	}
	while (done < len) {
		unsigned long a = addr + done, off = offset_in_page(a);
		int n = min_t(unsigned long, len - done, PAGE_SIZE - off);
		struct page *page;
		void *kaddr;
		int err;

		err = xpmem_src_page(src_mm, xpmem_att_src(vma, att, a - off), write, &page);
		if (err) {
			if (!done)
				done = err;
			break;
		}
		kaddr = kmap_local_page(page);
		if (write) {
			memcpy(kaddr + off, buf + done, n);
			flush_dcache_page(page);
			set_page_dirty_lock(page);
		} else {
			memcpy(buf + done, kaddr + off, n);
		}
		kunmap_local(kaddr);
		put_page(page);
		done += n;
	}
	mmap_read_unlock(src_mm);
	mmput_async(src_mm);
	return done;
}

/* ---- the page behind a PTE, for get_user_pages ------------------------- */

/*
 * The PTE at @addr of our own vma.  Every caller of vm_normal_page() holds
 * the page table lock of @addr (the core reads the PTE it passes under
 * it), so the table cannot go away under this lookup, and our vmas only
 * ever hold 4 KiB PTEs (no huge page is mapped in a VM_MIXEDMAP vma).
 */
static bool xpmem_att_pte(struct vm_area_struct *vma, unsigned long addr,
			  pte_t *pte)
{
	pgd_t *pgd = pgd_offset(vma->vm_mm, addr);
	p4d_t *p4d;
	pud_t *pud;
	pmd_t pmd;

	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return false;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return false;
	pud = pud_offset(p4d, addr);
	if (pud_none(*pud) || pud_bad(*pud))
		return false;
	pmd = READ_ONCE(*pmd_offset(pud, addr));
	if (pmd_none(pmd) || !pmd_present(pmd) || pmd_bad(pmd))
		return false;
	*pte = ptep_get(pte_offset_kernel(&pmd, addr));
	return true;
}

/*
 * vm_normal_page() of a PTE of a local attachment: the source page it
 * maps, so that get_user_pages() (futexes, O_DIRECT, process_vm_*, RDMA)
 * works on attached memory; a page reference or pin it takes is its own.
 * NULL ("not a normal page", as for any VM_MIXEDMAP pfn) whenever the
 * caller could take the page for a counted mapping of this vma:
 *  - the caller is zapping the PTE, or the mm is exiting (xpmem_amm.c);
 *  - the caller would age, reclaim, split or migrate the page (madvise
 *    COLD/PAGEOUT, mbind, migrate_pages, move_pages: xpmem_compat.h): the
 *    exporter's pages are the exporter's, an attacher acts on its own
 *    mapping only;
 *  - the vma may be copied by fork, before 6.11 (xpmem_compat.h);
 *  - a read-only PTE in a writable vma: the caller is the write fault,
 *    which with NULL makes the PTE writable through pfn_mkwrite (or, with
 *    none, directly: without ro_source every PTE was resolved for write,
 *    so the page is the one the source writes to); with a page it would
 *    treat it as a page cache page and dirty-account it;
 *  - an anonymous page that is not exclusive to the source (shared with a
 *    fork child, or KSM): get_user_pages would then ask for the page to
 *    be unshared, which a shared mapping cannot do, and would loop;
 *  - the zero page (the core handles it itself).
 */
static struct page *xpmem_att_find_special_page(struct vm_area_struct *vma,
						unsigned long addr)
{
	struct xpmem_attachment *att = vma->vm_private_data;
	struct page *page;
	unsigned long pfn;
	pte_t pte;

	if (!xpmem_amm_may_give_page(att->amm, vma, addr) ||
	    xpmem_vma_fork_may_copy(vma) || xpmem_in_page_moving_syscall())
		goto withhold;
	if (!xpmem_att_pte(vma, addr, &pte) || !pte_present(pte) ||
	    !pte_special(pte))
		goto withhold;
	if ((vma->vm_flags & VM_WRITE) && !pte_write(pte))
		goto withhold;
	pfn = pte_pfn(pte);
	if (is_zero_pfn(pfn) || !pfn_valid(pfn))
		goto withhold;
	page = pfn_to_page(pfn);
	if (PageAnon(page) && !PageAnonExclusive(page))
		goto withhold;
	xpmem_count(pages_given);
	return page;
withhold:
	xpmem_count(pages_withheld);
	return NULL;
}

/* ---- vma lifetime ------------------------------------------------------------ */

/*
 * A vma of the attachment is duplicated: a split or an mremap move, or
 * fork after the application cleared VM_DONTCOPY (MADV_DOFORK) and
 * VM_WIPEONFORK (MADV_KEEPONFORK).  A child's copy must start empty: its
 * PTEs would be outside this mm's tracking (xpmem_amm.c).
 */
static void xpmem_att_vma_open(struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = vma->vm_private_data;

	atomic_inc(&att->nr_vmas);
	kref_get(&att->ref);
	if (!att->amm)
		return;
	if (vma->vm_mm == att->amm->mn.mm) {
		xpmem_amm_vma_add(att->amm, vma);
		return;
	}
	/* fork: from 6.11 this runs before the page table copy, and stops it */
	xpmem_vm_flags_set(vma, VM_WIPEONFORK);
	if (XPMEM_FORK_OPENS_AFTER_COPY)	/* copied already: drop it */
		xpmem_zap_mapping(att->inode->i_mapping,
				  (loff_t)vma->vm_pgoff << PAGE_SHIFT,
				  vma->vm_end - vma->vm_start);
}

/*
 * Called with the attacher's mmap lock held for writing (or at exit).
 * Nothing here waits: the teardown of the last vma's attachment is queued.
 */
static void xpmem_att_vma_close(struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = vma->vm_private_data;

	if (att->amm && vma->vm_mm == att->amm->mn.mm)
		xpmem_amm_vma_del(att->amm);
	if (atomic_dec_and_test(&att->nr_vmas))
		queue_work(xpmem_att_wq, &att->teardown);	/* takes over our reference */
	else
		xpmem_att_put(att);
}

/* local attachment: pinnable, writable ones need no write notification */
static const struct vm_operations_struct xpmem_att_vm_ops = {
	.open = xpmem_att_vma_open,
	.close = xpmem_att_vma_close,
	.fault = xpmem_att_fault,
	.access = xpmem_att_access,
	.find_special_page = xpmem_att_find_special_page,
};

/* writable local attachment over a partly read-only source (ro_source) */
static const struct vm_operations_struct xpmem_att_ro_source_vm_ops = {
	.open = xpmem_att_vma_open,
	.close = xpmem_att_vma_close,
	.fault = xpmem_att_fault,
	.pfn_mkwrite = xpmem_att_pfn_mkwrite,
	.access = xpmem_att_access,
	.find_special_page = xpmem_att_find_special_page,
};

/* another partition's memory: no struct page, never pinnable */
static const struct vm_operations_struct xpmem_att_remote_vm_ops = {
	.open = xpmem_att_vma_open,
	.close = xpmem_att_vma_close,
	.fault = xpmem_att_fault,
	.pfn_mkwrite = xpmem_att_pfn_mkwrite,
	.access = xpmem_att_access,
};

/* ---- creating the vma ------------------------------------------------------ */

/* ->mmap of the attachment's pseudo file; reached only from xpmem_attach(). */
static int xpmem_att_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = file->private_data;

	if (att->mapped)	/* mapped once, by xpmem_attach() itself */
		return -EBUSY;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != att->size)
		return -EINVAL;
	if (!att->writable) {
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		xpmem_vm_flags_clear(vma, VM_MAYWRITE);
	}
	if (att->remote) {
		xpmem_vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND |
				   VM_DONTDUMP | VM_DONTCOPY);
		vma->vm_ops = &xpmem_att_remote_vm_ops;
	} else {
		/*
		 * Not VM_IO / VM_PFNMAP, which get_user_pages refuses.  That
		 * also lets MADV_DOFORK clear VM_DONTCOPY, hence VM_WIPEONFORK
		 * (and ->open) for a fork.
		 */
		xpmem_vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND |
				   VM_DONTDUMP | VM_DONTCOPY | VM_WIPEONFORK);
		vma->vm_ops = att->ro_source ? &xpmem_att_ro_source_vm_ops :
					       &xpmem_att_vm_ops;
	}
	vma->vm_private_data = att;
	kref_get(&att->ref);
	att->mapped = true;
	atomic_set(&att->nr_vmas, 1);
	if (att->amm)
		xpmem_amm_vma_add(att->amm, vma);
	return 0;
}

static const struct file_operations xpmem_att_fops = {
	.owner = THIS_MODULE,
	.mmap = xpmem_att_mmap,
};

/*
 * Is there a vma in [start, end) of the source that the source cannot
 * write?  Decides, for a writable attachment, whether it must keep write
 * notification (ro_source) to map such pages read-only.  Holes do not
 * count: faults there get SIGBUS either way.  The caller holds mm_users.
 */
static bool xpmem_source_has_read_only(struct mm_struct *mm, unsigned long start,
				       unsigned long end)
{
	struct vm_area_struct *vma;
	bool ro = false;

	mmap_read_lock(mm);
	for (vma = find_vma(mm, start); vma && vma->vm_start < end;
	     vma = find_vma(mm, vma->vm_end)) {
		if (!(vma->vm_flags & VM_WRITE)) {
			ro = true;
			break;
		}
	}
	mmap_read_unlock(mm);
	return ro;
}

/*
 * A local attachment mirrors [att->src_start, + size) of the segment's mm
 * from before it is mapped: an invalidation that comes first only zaps
 * an empty mapping.
 */
static int xpmem_att_mirror_source(struct xpmem_attachment *att, struct xpmem_segment *seg)
{
	int ret;

	if (!mmget_not_zero(seg->mm))
		return -ENOENT;		/* the exporting process has exited */
	att->ro_source = att->writable &&
		xpmem_source_has_read_only(seg->mm, att->src_start, att->src_start + att->size);
	ret = xpmem_mirror_insert(&att->mirror, &xpmem_att_mirror_ops, seg->mm,
				  att->src_start, att->size);
	mmput(seg->mm);
	return ret;
}

int xpmem_attach(struct xpmem_file *xf, xpmem_apid_t apid, unsigned long offset,
		 unsigned long size, unsigned long *vaddr)
{
	struct xpmem_attachment *att;
	struct xpmem_segment *seg;
	struct xpmem_access *ap;
	struct xpmem_user *user;
	unsigned long seg_size;
	struct inode *inode;
	struct file *file;
	unsigned long addr;
	int ret;

	if (!current->mm)
		return -EINVAL;
	ap = xpmem_access_lookup(apid);
	if (IS_ERR(ap))
		return PTR_ERR(ap);
	seg = ap->seg;		/* NULL: another partition's segment */
	seg_size = seg ? seg->size : ap->remote_size;
	ret = -EINVAL;
	if (!size || !PAGE_ALIGNED(offset) || !PAGE_ALIGNED(size) ||
	    !PAGE_ALIGNED(*vaddr))
		goto err_put_ap;
	if (offset >= seg_size || size > seg_size - offset)
		goto err_put_ap;

	user = xpmem_user_charge(XPMEM_OWNS_ATTACHMENT);
	if (IS_ERR(user)) {
		ret = PTR_ERR(user);
		goto err_put_ap;
	}
	ret = -ENOMEM;
	att = kzalloc(sizeof(*att), GFP_KERNEL_ACCOUNT);
	if (!att) {
		xpmem_user_uncharge(user, XPMEM_OWNS_ATTACHMENT);
		goto err_put_ap;
	}
	kref_init(&att->ref);
	att->user = user;
	att->ap = ap;			/* takes over the lookup reference */
	att->remote = !seg;
	/* remote: "source" addresses are offsets in the attachment */
	att->src_start = seg ? seg->start + offset : 0;
	att->size = size;
	att->writable = ap->writable;
	att->peer = -1;
	spin_lock_init(&att->remote_lock);
	xa_init(&att->test_pins);
	xa_init(&att->fault_errors);
	att->test_pin = seg && READ_ONCE(xpmem_test_pin_pages);
	INIT_LIST_HEAD(&att->ap_node);
	INIT_WORK(&att->teardown, xpmem_att_teardown_fn);
	xpmem_count(attachments);

	inode = alloc_anon_inode(xpmem_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		ret = PTR_ERR(inode);
		goto err_free;
	}
	att->inode = inode;
	if (seg) {
		mmgrab(seg->mm);
		att->src_mm = seg->mm;
		/* the page lookups of this mm (xpmem_amm.c) */
		att->amm = xpmem_amm_get(current->mm);
		if (IS_ERR(att->amm)) {
			ret = PTR_ERR(att->amm);
			att->amm = NULL;
			goto err_free;
		}
		ret = xpmem_att_mirror_source(att, seg);
		if (ret)
			goto err_free;
	}

	mutex_lock(&ap->lock);
	if (ap->released) {
		mutex_unlock(&ap->lock);
		ret = -ENOENT;
		goto err_free;
	}
	list_add_tail(&att->ap_node, &ap->attachments);
	mutex_unlock(&ap->lock);

	if (!seg) {
		ret = xpmem_import_attach(att, offset);
		if (ret)
			goto err_put_att;
	}

	/* the file owns one inode reference, the attachment keeps its own */
	ihold(inode);
	__module_get(THIS_MODULE);	/* dropped by fput of the file */
	file = alloc_file_pseudo(inode, xpmem_mnt, "xpmem", O_RDWR,
				 &xpmem_att_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(inode);
		ret = PTR_ERR(file);
		goto err_put_att;
	}
	file->private_data = att;

	addr = vm_mmap(file, *vaddr, size,
		       PROT_READ | (att->writable ? PROT_WRITE : 0),
		       MAP_SHARED | (*vaddr ? MAP_FIXED : 0), 0);
	fput(file);		/* the vma holds its own reference */
	if (IS_ERR_VALUE(addr)) {
		ret = (int)addr;
		goto err_put_att;
	}
	*vaddr = addr;
	xpmem_att_put(att);	/* the vma holds its own reference */
	xpmem_count(attaches);
	return 0;

err_put_att:
	/* never mapped: no vma will queue the teardown, do it here */
	if (!att->mapped) {
		if (att->remote)
			xpmem_import_detach(att);	/* the owner's half, if made */
		else
			xpmem_mirror_remove(&att->mirror);
	}
	xpmem_att_put(att);	/* also drops ap */
	return ret;
err_free:
	/* not on ap's list yet: undo by hand */
	xpmem_mirror_remove(&att->mirror);
	if (att->amm)
		xpmem_amm_put(att->amm);
	if (att->src_mm)
		mmdrop(att->src_mm);
	if (att->inode)
		iput(att->inode);
	xa_destroy(&att->test_pins);
	xpmem_user_uncharge(att->user, XPMEM_OWNS_ATTACHMENT);
	kfree(att);
	xpmem_uncount(attachments);
err_put_ap:
	xpmem_access_put(ap);
	return ret;
}

int xpmem_detach(unsigned long vaddr)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	unsigned long start, len;

	if (!mm)
		return -EINVAL;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, vaddr);
	if (!vma || !xpmem_vma_is_attachment(vma)) {
		mmap_read_unlock(mm);
		return -EINVAL;
	}
	start = vma->vm_start;
	len = vma->vm_end - vma->vm_start;
	mmap_read_unlock(mm);
	return vm_munmap(start, len);
}

/* ---- the pseudo filesystem that owns the attachment inodes ---------------- */

static int xpmem_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, XPMEM_FS_MAGIC) ? 0 : -ENOMEM;
}

/* no .owner: the internal mount must not pin the module it belongs to */
static struct file_system_type xpmem_fs_type = {
	.name = "xpmem",
	.init_fs_context = xpmem_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

int xpmem_attach_init(void)
{
	/*
	 * Teardowns queued by vma close: a remote DETACH may wait for its
	 * peer, a mirror removal for a running invalidation.
	 */
	xpmem_att_wq = alloc_workqueue("xpmem_att", WQ_UNBOUND, 0);
	if (!xpmem_att_wq)
		return -ENOMEM;
	xpmem_mnt = kern_mount(&xpmem_fs_type);
	if (IS_ERR(xpmem_mnt)) {
		destroy_workqueue(xpmem_att_wq);
		return PTR_ERR(xpmem_mnt);
	}
	return 0;
}

void xpmem_attach_exit(void)
{
	destroy_workqueue(xpmem_att_wq);	/* runs what is still queued */
	kern_unmount(xpmem_mnt);
}
