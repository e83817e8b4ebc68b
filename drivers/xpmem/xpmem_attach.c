// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_attach.c - the attachment core: the object, its vma, and its
 * faults, whatever the kind (xpmem_attach.h).  The kind (local:
 * xpmem_local.c; another partition's memory: xpmem_import.c) resolves
 * pages, keeps the invalidation sequence and knows what a debugger or
 * get_user_pages may do; this file calls it only through att->ops.
 *
 * Each attachment is a shared mapping of a pseudo-filesystem file, its
 * attaching mm's "space" (below), at page offsets no other attachment of
 * that mm uses.  The space's address_space is what invalidation zaps with
 * unmap_mapping_range() over the attachment's offsets: the kernel's i_mmap
 * tree finds every vma of the attachment (also after mremap or a split)
 * and i_mmap_rwsem keeps them from being torn down while they are zapped,
 * without ever taking the attacher's mmap lock.  PTEs are "special": they
 * hold no page reference and no mapcount, and no page is pinned after a
 * fault returns.
 *
 * Lifetime: the attachment is referenced by whoever makes it, by each of
 * its vmas and by work queued for it.  When the last vma goes (munmap,
 * detach, exit), vma close queues the teardown that may wait (the kind's
 * ->teardown: removing a mirror waits for a running invalidation of the
 * source, giving another partition's attachment back waits for its
 * owner) on xpmem_att_wq: vma close holds the attacher's mmap lock and
 * must not wait for either.  It is a dependent of its permit
 * (xpmem_segment.h): the permit's end revokes it.
 *
 * Fault path and locks.  The fault core holds the attacher's mmap lock
 * (read) or, since 6.6, possibly only the vma's lock.  Resolving a page
 * may need the *source* mm's mmap lock or an answer from another
 * partition, and holding the attacher's lock while waiting for either
 * would tie the attacher to them.  So:
 *   1. the attachment's invalidation sequence is sampled (->read_begin);
 *   2. ->resolve_nowait tries without waiting (a local source's lock is
 *      only trylocked); on success the page is installed under the fault
 *      lock;
 *   3. otherwise the fault lock is dropped, the page resolved with
 *      ->resolve (which may sleep, bounded), the attacher's mmap lock
 *      taken again to install the page if the vma is still this
 *      attachment at the same source address, and the fault is retried
 *      (it finds the PTE).  No lock of one mm is ever held while waiting
 *      for another mm or a peer.  A caller that cannot have its lock
 *      dropped (no FAULT_FLAG_ALLOW_RETRY: fixup_user_fault() for
 *      futexes, a debugger's access_remote_vm) never waits for the
 *      source's lock under it either: step 2 is tried again, sleeping
 *      between tries, for at most XPMEM_CONTENDED_WAIT, and then the
 *      fault fails (a debugger's core then falls back to ->access).
 * In every case the PTE is installed only if the sequence is unchanged and
 * the attachment not revoked, checked under the kind's install lock inside
 * the attacher's page table lock (apply_to_page_range() calls us with it
 * held); invalidation and revoke publish their change under the same lock
 * before they zap.
 *
 * Lock order: attacher PTE lock -> install lock (spinlock).  The
 * permit's lock (xpmem_access.lock, a mutex) is taken when an attachment
 * is added, revoked or freed, never under an mmap lock or a spinlock.
 */
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/hashtable.h>
#include <linux/ktime.h>
#include <linux/mman.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pseudo_fs.h>
#include <linux/refcount.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "xpmem_attach.h"
#include "xpmem_compat.h"
#include "xpmem_mirror.h"
#include "xpmem_stats.h"
#include "xpmem_trace.h"

static struct vfsmount *xpmem_mnt;
static struct workqueue_struct *xpmem_att_wq;
static const struct vm_operations_struct xpmem_att_vm_ops;
static const struct vm_operations_struct xpmem_att_notify_vm_ops;

static struct xpmem_attachment *xpmem_vma_att(struct vm_area_struct *vma)
{
	return vma->vm_private_data;
}

/* ---- the attaching mm's space ------------------------------------------- */

/*
 * All attachments mapped in one mm are shared mappings of one pseudo file,
 * the mm's space, each at its own range of page offsets, handed out from a
 * counter and never reused within the space.  One file and inode per mm,
 * not per attachment: making and freeing them was a third of the time of
 * an attach + detach (docs/bench/peer.md).
 *
 * The lock cycle of docs/design.md ("Why attachments are mapped through
 * their mm's space") keeps its scope: mm_take_all_locks() of an mm takes a
 * space's i_mmap_rwsem only if that mm maps one of the space's vmas, which
 * is the mm the space belongs to (or a fork child that kept a copy with
 * MADV_DOFORK, as before with an attachment's own inode).  Sharing the
 * lock among the attachments of one mm adds waits (a vma of one attachment
 * inserted or removed while another is zapped), never a new cycle: a zap
 * holds it for reading and then takes only that mm's page table locks.
 *
 * The file is never in a file table.  Its ->mmap maps only an attachment
 * that xpmem_attachment_map() is mapping, in the task doing it (a pending
 * map: remap_file_pages() on an attachment vma reaches ->mmap too, and
 * gets -EBUSY).  No sleeping lock is held across vm_mmap(), which may wait
 * for user space (a userfaultfd monitor of an unmap, mm_populate()).
 *
 * A space is found by its mm in xpmem_spaces while it has attachments
 * (users); the last one's put drops the space's reference of the file,
 * and the file's release frees the space: whoever holds the file (a vma,
 * remap_file_pages() in progress) can read file->private_data.  The
 * counter stops short of the largest offset a mapping may have; a space
 * that runs out leaves the table (its attachments keep it) and the next
 * attach of the mm makes a new one.  Every attachment takes one offset
 * more than its pages: no two are contiguous in the file, so no merge of
 * two attachments' vmas could ever look right to the core.
 */
struct xpmem_att_space {
	struct hlist_node node;		/* in xpmem_spaces, while findable */
	struct mm_struct *mm;		/* the attaching mm (mm_count) */
	refcount_t users;		/* its attachments */
	struct file *file;		/* holds the inode: the address_space */
	pgoff_t next_pgoff;		/* under xpmem_spaces_lock */
	bool hashed;			/* under xpmem_spaces_lock */
	spinlock_t pending_lock;	/* innermost */
	struct list_head pending;	/* xpmem_att_pending: maps in progress */
};

/* an xpmem_attachment_map() in progress: what ->mmap may map, for which task */
struct xpmem_att_pending {
	struct list_head node;
	struct task_struct *task;
	struct xpmem_attachment *att;
};

static DEFINE_HASHTABLE(xpmem_spaces, 6);
static DEFINE_SPINLOCK(xpmem_spaces_lock);

static const struct file_operations xpmem_att_fops;

/* offsets a space hands out, in pages: every byte offset fits in a loff_t */
static pgoff_t xpmem_space_pages_limit(void)
{
#ifdef CONFIG_XPMEM_TEST_HOOKS
	unsigned int max = READ_ONCE(xpmem_space_pages_max);

	if (max)
		return max;
#endif
	return (pgoff_t)(LLONG_MAX >> PAGE_SHIFT);
}

static struct xpmem_att_space *xpmem_space_new(struct mm_struct *mm)
{
	struct xpmem_att_space *space = kzalloc(sizeof(*space), GFP_KERNEL_ACCOUNT);
	struct inode *inode;
	struct file *file;

	if (!space)
		return ERR_PTR(-ENOMEM);
	inode = alloc_anon_inode(xpmem_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		kfree(space);
		return ERR_CAST(inode);
	}
	__module_get(THIS_MODULE);	/* dropped by the file's last fput */
	file = alloc_file_pseudo(inode, xpmem_mnt, "xpmem", O_RDWR, &xpmem_att_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(inode);
		kfree(space);
		return ERR_CAST(file);
	}
	file->private_data = space;
	space->file = file;
	mmgrab(mm);
	space->mm = mm;
	refcount_set(&space->users, 1);
	spin_lock_init(&space->pending_lock);
	INIT_LIST_HEAD(&space->pending);
	xpmem_count(att_spaces);
	return space;
}

/* ->release of the space's file: its last reference (a vma's or the space's) */
static int xpmem_space_release(struct inode *inode, struct file *file)
{
	struct xpmem_att_space *space = file->private_data;

	mmdrop(space->mm);
	kfree(space);
	xpmem_uncount(att_spaces);
	return 0;
}

static void xpmem_space_put(struct xpmem_att_space *space)
{
	/* the last put unhashes under the lock: a lookup never finds a count of 0 */
	if (refcount_dec_not_one(&space->users))
		return;
	spin_lock(&xpmem_spaces_lock);
	if (!refcount_dec_and_test(&space->users)) {
		spin_unlock(&xpmem_spaces_lock);
		return;
	}
	if (space->hashed)
		hash_del(&space->node);
	spin_unlock(&xpmem_spaces_lock);
	/*
	 * The vmas hold their own references.  In a worker (a teardown)
	 * the last reference goes now, not in a later delayed fput: the
	 * file holds the module, and an unload after the last detach
	 * should not find it still in use.
	 */
	if (current->flags & PF_KTHREAD)
		__fput_sync(space->file);
	else
		fput(space->file);
}

/* The attachment current is mapping through @space, if any. */
static struct xpmem_attachment *xpmem_space_pending(struct xpmem_att_space *space)
{
	struct xpmem_attachment *att = NULL;
	struct xpmem_att_pending *p;

	spin_lock(&space->pending_lock);
	list_for_each_entry(p, &space->pending, node) {
		if (p->task == current) {
			att = p->att;
			break;
		}
	}
	spin_unlock(&space->pending_lock);
	return att;
}

/*
 * Reserve @pages offsets in the current mm's space for a new attachment:
 * the space, referenced, and the first offset in *@pgoff.
 */
static struct xpmem_att_space *xpmem_space_reserve(unsigned long pages, pgoff_t *pgoff)
{
	struct mm_struct *mm = current->mm;
	struct xpmem_att_space *space, *fresh = NULL;
	pgoff_t limit = xpmem_space_pages_limit();

	if (pages >= limit)
		return ERR_PTR(-ENOMEM);
again:
	spin_lock(&xpmem_spaces_lock);
	hash_for_each_possible(xpmem_spaces, space, node, (unsigned long)mm) {
		if (space->mm != mm)
			continue;
		if (space->next_pgoff <= limit - pages) {
			/* hashed: its count is not 0 (the last put unhashes it first) */
			refcount_inc(&space->users);
			goto found;
		}
		/* offsets used up: its attachments keep it, the mm gets a new one */
		hash_del(&space->node);
		space->hashed = false;
		xpmem_count(att_space_renewals);
		break;
	}
	if (fresh) {
		space = fresh;
		fresh = NULL;
		space->hashed = true;
		hash_add(xpmem_spaces, &space->node, (unsigned long)mm);
		goto found;
	}
	spin_unlock(&xpmem_spaces_lock);
	fresh = xpmem_space_new(mm);
	if (IS_ERR(fresh))
		return fresh;
	goto again;
found:
	*pgoff = space->next_pgoff;
	space->next_pgoff += pages + 1;		/* and a gap */
	spin_unlock(&xpmem_spaces_lock);
	if (fresh)		/* another attach of this mm made one meanwhile */
		xpmem_space_put(fresh);
	return space;
}

/* ---- lifetime ------------------------------------------------------------ */

static void xpmem_att_release(struct kref *ref)
{
	struct xpmem_attachment *att = container_of(ref, struct xpmem_attachment, ref);

	xa_destroy(&att->fault_errors);
	/* off the permit's list first: fdinfo may look at att->mm until then */
	xpmem_access_del_dependent(att->ap, &att->dep);
	if (att->mm)
		mmdrop(att->mm);
	xpmem_space_put(att->space);
	xpmem_access_put(att->ap);
	xpmem_user_uncharge(att->user, XPMEM_OWNS_ATTACHMENT);
	xpmem_uncount(attachments);
	att->ops->free(att);
}

void xpmem_att_get(struct xpmem_attachment *att)
{
	kref_get(&att->ref);
}

void xpmem_att_put(struct xpmem_attachment *att)
{
	kref_put(&att->ref, xpmem_att_release);
}

/* the byte offset in its space's file of offset @offset in the attachment */
static loff_t xpmem_att_file_pos(struct xpmem_attachment *att, unsigned long offset)
{
	return ((loff_t)att->pgoff << PAGE_SHIFT) + offset;
}

/* Zap [offset, offset + len) of the attachment in every vma that maps it. */
void xpmem_att_zap(struct xpmem_attachment *att, unsigned long offset, unsigned long len)
{
	xpmem_zap_mapping(att->space->file->f_mapping, xpmem_att_file_pos(att, offset), len);
}

/* The same queued to the zap worker; xpmem_zap_mapping_wait_queued(@zw) waits. */
void xpmem_att_zap_queue(struct xpmem_attachment *att, unsigned long offset,
			 unsigned long len, struct xpmem_zap_work *zw)
{
	xpmem_zap_mapping_queue(zw, att->space->file->f_mapping,
				xpmem_att_file_pos(att, offset), len);
}

/* The same from a notifier callback: in the zap worker, waiting for it. */
void xpmem_att_zap_wait(struct xpmem_attachment *att, unsigned long offset,
			unsigned long len)
{
	xpmem_zap_mapping_wait(att->space->file->f_mapping,
			       xpmem_att_file_pos(att, offset), len);
}

/* The offset in @att of @addr, an address in one of its vmas @vma. */
unsigned long xpmem_vma_att_offset(struct vm_area_struct *vma, struct xpmem_attachment *att,
				   unsigned long addr)
{
	return ((vma->vm_pgoff - att->pgoff) << PAGE_SHIFT) + (addr - vma->vm_start);
}

/*
 * Withdraw an attachment (its permit was released, its segment removed,
 * its owning partition went away): from now on its faults get SIGBUS,
 * and its present PTEs are zapped now.  Never from a notifier callback.
 */
void xpmem_attachment_revoke(struct xpmem_attachment *att)
{
	spinlock_t *lock = att->ops->install_lock(att);

	spin_lock(lock);
	WRITE_ONCE(att->revoked, true);
	spin_unlock(lock);
	xpmem_count(revokes);
	xpmem_att_zap(att, 0, att->size);
}

static void xpmem_att_dep_revoke(struct xpmem_dependent *d)
{
	xpmem_attachment_revoke(container_of(d, struct xpmem_attachment, dep));
}

/* ---- fdinfo: where the attachment is mapped, and how much of it --------- */

static int xpmem_count_pte(pte_t *pte, unsigned long addr, void *data)
{
	if (pte_present(ptep_get(pte)))
		(*(unsigned long *)data)++;
	return 0;
}

/*
 * "  attachment KIND addr A size S offset O mapped N" for each vma of the
 * attachment in the mm that mapped it, N its present PTEs.  Called with
 * the permit's lock held: the mm's lock is only tried (never a wait under
 * a mutex the attach path takes before mapping), "busy" when contended.
 */
static void xpmem_att_dep_show(struct xpmem_dependent *d, struct seq_file *m)
{
	struct xpmem_attachment *att = container_of(d, struct xpmem_attachment, dep);
	const char *revoked = READ_ONCE(att->revoked) ? " revoked" : "";
	struct mm_struct *mm = READ_ONCE(att->mm);
	struct vm_area_struct *vma;
	bool any = false;

	if (!mm || !mmget_not_zero(mm)) {
		seq_printf(m, "  attachment %s size %#lx unmapped%s\n", att->ops->name,
			   att->size, revoked);
		return;
	}
	if (!mmap_read_trylock(mm)) {
		mmput_async(mm);
		seq_printf(m, "  attachment %s size %#lx busy%s\n", att->ops->name,
			   att->size, revoked);
		return;
	}
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			unsigned long mapped = 0;

			if (!xpmem_vma_is_attachment(vma) || xpmem_vma_att(vma) != att)
				continue;
			xpmem_apply_to_existing_page_range(mm, vma->vm_start,
							   vma->vm_end - vma->vm_start,
							   xpmem_count_pte, &mapped);
			seq_printf(m, "  attachment %s addr %#lx size %#lx offset %#lx mapped %lu%s\n",
				   att->ops->name, vma->vm_start, vma->vm_end - vma->vm_start,
				   xpmem_vma_att_offset(vma, att, vma->vm_start), mapped, revoked);
			any = true;
		}
	}
	mmap_read_unlock(mm);
	mmput_async(mm);
	if (!any)
		seq_printf(m, "  attachment %s size %#lx unmapped%s\n", att->ops->name,
			   att->size, revoked);
}

static const struct xpmem_dependent_ops xpmem_att_dep_ops = {
	.revoke = xpmem_att_dep_revoke,
	.show = xpmem_att_dep_show,
};

/* The last vma is gone: the kind's teardown, in xpmem_att_wq. */
static void xpmem_att_teardown_fn(struct work_struct *work)
{
	struct xpmem_attachment *att =
		container_of(work, struct xpmem_attachment, teardown);

	xpmem_test_teardown_delay();
	att->ops->teardown(att);
	xpmem_att_put(att);
}

/* ---- installing a PTE ------------------------------------------------------ */

static vm_fault_t xpmem_errno_to_fault(int err)
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

static unsigned long xpmem_att_src(struct vm_area_struct *vma,
				   struct xpmem_attachment *att,
				   unsigned long addr)
{
	return att->src_start + xpmem_vma_att_offset(vma, att, addr);
}

struct xpmem_install {
	struct mm_struct *mm;
	struct xpmem_attachment *att;
	unsigned long seq, src;		/* src: the source address the PTE maps */
	pte_t pte;
	bool retry;
};

/* Has @att been revoked or invalidated since @seq?  With its install lock held. */
static bool xpmem_att_changed(struct xpmem_attachment *att, unsigned long seq)
{
	return READ_ONCE(att->revoked) || att->ops->read_retry(att, seq);
}

/* Called by apply_to_page_range() with the attacher's PTE lock held. */
static int xpmem_install_pte(pte_t *ptep, unsigned long addr, void *data)
{
	struct xpmem_install *in = data;
	spinlock_t *lock = in->att->ops->install_lock(in->att);

	spin_lock(lock);
	in->retry = xpmem_att_changed(in->att, in->seq);
	/* another thread's fault may have won: its PTE is just as current */
	if (!in->retry && pte_none(ptep_get(ptep))) {
		xpmem_set_special_pte(in->mm, addr, ptep, in->pte);
		in->att->ops->installed(in->att, in->src, PAGE_SIZE);
	}
	spin_unlock(lock);
	return 0;
}

/* pages one fault may map (1: the faulting page only); bench/local compares */
static unsigned int xpmem_fault_around = XPMEM_FAULT_AROUND;
module_param_named(fault_around_pages, xpmem_fault_around, uint, 0644);
MODULE_PARM_DESC(fault_around_pages,
		 "pages one attachment fault may map, the faulting one included (1-16, default 16)");

struct xpmem_install_run {
	struct mm_struct *mm;
	struct xpmem_attachment *att;
	unsigned long seq, start, src;	/* src: the source address start maps */
	const struct xpmem_resolved *r;
	pgprot_t prot;
	unsigned int installed;
	bool stop;
};

/* The fault-around pages: each PTE under the same check as the faulting one. */
static int xpmem_install_more_pte(pte_t *ptep, unsigned long addr, void *data)
{
	struct xpmem_install_run *run = data;
	unsigned int i = (addr - run->start) >> PAGE_SHIFT;
	spinlock_t *lock = run->att->ops->install_lock(run->att);
	pte_t pte;

	if (run->stop)
		return 0;
	pte = pte_mkspecial(pfn_pte(page_to_pfn(run->r->more[i]), run->prot));
	pte = run->r->writable ? pte_mkdirty(pte_mkyoung(pte)) : pte_mkyoung(pte);
	spin_lock(lock);
	run->stop = xpmem_att_changed(run->att, run->seq);
	if (!run->stop && pte_none(ptep_get(ptep))) {
		xpmem_set_special_pte(run->mm, addr, ptep, pte);
		run->att->ops->installed(run->att, run->src + ((unsigned long)i << PAGE_SHIFT),
					 PAGE_SIZE);
		run->installed++;
	}
	spin_unlock(lock);
	return 0;
}

/*
 * Map the pages after the faulting one (@r->more) from @addr on, while
 * nothing invalidated @att since @seq; drop their references.  Returns
 * how many PTEs it set.  A failure here costs only later faults.
 */
static unsigned int xpmem_install_more(struct vm_area_struct *vma, unsigned long addr,
				       struct xpmem_resolved *r, struct xpmem_attachment *att,
				       unsigned long seq)
{
	unsigned long flags = r->writable ? vma->vm_flags : vma->vm_flags & ~VM_WRITE;
	struct xpmem_install_run run = {
		.mm = vma->vm_mm,
		.att = att,
		.seq = seq,
		.start = addr,
		.src = xpmem_att_src(vma, att, addr),
		.r = r,
		.prot = vm_get_page_prot(flags),
	};
	unsigned int i;

	if (r->nr_more)
		apply_to_page_range(vma->vm_mm, addr, r->nr_more << PAGE_SHIFT,
				    xpmem_install_more_pte, &run);
	for (i = 0; i < r->nr_more; i++)
		put_page(r->more[i]);	/* no pin outlives the fault */
	r->nr_more = 0;
	return run.installed;
}

/* Drop the references of fault-around pages that will not be mapped. */
static void xpmem_resolved_put_more(struct xpmem_resolved *r)
{
	unsigned int i;

	for (i = 0; i < r->nr_more; i++)
		put_page(r->more[i]);
	r->nr_more = 0;
}

/*
 * Map @pfn at @addr of @vma (an attachment vma of @att) if nothing
 * invalidated or revoked @att since @seq.  -EAGAIN: resolve again.
 */
static int xpmem_install(struct vm_area_struct *vma, unsigned long addr,
			 unsigned long pfn, bool write, struct xpmem_attachment *att,
			 unsigned long seq)
{
	unsigned long flags = write ? vma->vm_flags : vma->vm_flags & ~VM_WRITE;
	struct xpmem_install in = {
		.mm = vma->vm_mm,
		.att = att,
		.seq = seq,
		.src = xpmem_att_src(vma, att, addr),
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
 * Per fault, for its counters and its tracepoint: copied at the start,
 * since after a slow path the attachment may be gone (the fault dropped
 * its lock and its reference).
 */
struct xpmem_fault_stat {
	u64 t0;
	unsigned int retries;
	unsigned int pages;		/* PTEs this fault set */
	bool slow;
	bool remote;
};

static vm_fault_t xpmem_fault_done(struct vm_fault *vmf, struct xpmem_fault_stat *st,
				   vm_fault_t ret)
{
	u64 ns = ktime_get_ns() - st->t0;

	xpmem_hist_record(st->remote ? XPMEM_HIST_FAULT_REMOTE : XPMEM_HIST_FAULT, ns);
	xpmem_count_add(fault_pages, st->pages);
	trace_xpmem_fault(vmf->address, st->remote, vmf->flags & FAULT_FLAG_WRITE,
			  st->slow, st->retries, st->pages,
			  (__force unsigned int)ret, ns);
	return ret;
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
				       bool write, unsigned long seq, unsigned int *pages)
{
	struct mm_struct *mm = vmf->vma->vm_mm;
	struct xpmem_resolved r = { };
	struct vm_area_struct *vma;
	int err;

	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return VM_FAULT_RETRY;	/* the caller keeps its lock */
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY)) {
		/*
		 * A lock we may not drop, and the source stayed busy for
		 * XPMEM_CONTENDED_WAIT: fail rather than wait under it.
		 */
		xpmem_count(fault_contended);
		return VM_FAULT_SIGBUS;
	}
	xpmem_count(fault_slow);
	xpmem_att_get(att);
	mmgrab(mm);
	xpmem_release_fault_lock(vmf);

	err = att->ops->resolve(att, src, write, &r);
	xpmem_fault_error_stash(att, src, seq, err);
	if (!err)
		xpmem_test_install_delay();
	if (!err && !mmap_read_lock_killable(mm)) {
		vma = vma_lookup(mm, addr);
		if (vma && xpmem_vma_is_attachment(vma) && xpmem_vma_att(vma) == att &&
		    xpmem_att_src(vma, att, addr) == src)
			*pages = !xpmem_install(vma, addr, r.pfn, r.writable, att, seq);
		mmap_read_unlock(mm);
	}
	if (r.page)
		put_page(r.page);	/* no pin outlives the fault */
	mmdrop(mm);
	xpmem_att_put(att);
	return VM_FAULT_RETRY;
}

/*
 * How long a fault that cannot drop its lock keeps trying a contended
 * source (above).  A writer holds an mm's lock for microseconds as a
 * rule; failing at the first busy trylock gave futex callers
 * (FUTEX_WAKE_OP, PI and robust futexes) a spurious EFAULT.
 */
#define XPMEM_CONTENDED_WAIT	(HZ / 4)

static bool xpmem_fault_keeps_lock(struct vm_fault *vmf)
{
	return !(vmf->flags & (FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_RETRY_NOWAIT));
}

/*
 * The caller has a fatal signal: end the fault the way the core's own
 * handlers do (a retry with the lock dropped, which the arch code ends
 * quietly for a dying task), or fail it where that is not allowed.
 */
static vm_fault_t xpmem_fault_dying(struct vm_fault *vmf)
{
	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return VM_FAULT_RETRY;	/* the caller keeps its lock */
	if (vmf->flags & FAULT_FLAG_ALLOW_RETRY) {
		xpmem_release_fault_lock(vmf);
		return VM_FAULT_RETRY;
	}
	return VM_FAULT_SIGBUS;
}

static vm_fault_t xpmem_att_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = xpmem_vma_att(vma);
	unsigned long addr = vmf->address & PAGE_MASK;
	unsigned long src = xpmem_att_src(vma, att, addr);
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	struct xpmem_fault_stat st = { .t0 = ktime_get_ns(), .remote = att->ops->remote };
	unsigned long contended_until = 0;

	xpmem_count(faults);
	if (write && !att->writable)
		return xpmem_fault_done(vmf, &st, VM_FAULT_SIGSEGV);
	for (;;) {
		struct xpmem_resolved r = { };
		unsigned long seq;
		vm_fault_t ret;
		int err;

		if (READ_ONCE(att->revoked))
			return xpmem_fault_done(vmf, &st, VM_FAULT_SIGBUS);
		/* every retry below is bounded, and a dying caller stops here */
		if (fatal_signal_pending(current))
			return xpmem_fault_done(vmf, &st, xpmem_fault_dying(vmf));
		seq = att->ops->read_begin(att);
		ret = xpmem_fault_error_take(vmf, att, src, seq);
		if (ret)
			return xpmem_fault_done(vmf, &st, ret);
		r.max_more = min3((unsigned long)clamp(READ_ONCE(xpmem_fault_around), 1U,
						       (unsigned int)XPMEM_FAULT_AROUND) - 1,
				  (vma->vm_end - addr - PAGE_SIZE) >> PAGE_SHIFT,
				  (att->src_start + att->size - src - PAGE_SIZE) >> PAGE_SHIFT);
		/* test hook: the source's lock "busy", for a fault that may drop its own */
		if ((vmf->flags & (FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_RETRY_NOWAIT)) ==
		    FAULT_FLAG_ALLOW_RETRY && xpmem_test_contend_fault())
			err = -EBUSY;
		else
			err = att->ops->resolve_nowait(att, src, write, &r);
		if (err == -EBUSY && xpmem_fault_keeps_lock(vmf)) {
			if (!contended_until)
				contended_until = jiffies + XPMEM_CONTENDED_WAIT;
			if (time_before(jiffies, contended_until)) {
				xpmem_count(fault_contended_tries);
				st.retries++;
				usleep_range(50, 200);
				continue;
			}
		}
		if (err == -EBUSY || err == -EWOULDBLOCK) {
			st.slow = true;
			return xpmem_fault_done(vmf, &st,
						xpmem_fault_unlocked(vmf, att, addr, src,
								     write, seq, &st.pages));
		}
		if (err)
			return xpmem_fault_done(vmf, &st, xpmem_errno_to_fault(err));
		xpmem_test_install_delay();
		err = xpmem_install(vma, addr, r.pfn, r.writable, att, seq);
		if (r.page)
			put_page(r.page);	/* no pin outlives the fault */
		if (!err) {
			st.pages = 1 + xpmem_install_more(vma, addr + PAGE_SIZE, &r, att, seq);
			return xpmem_fault_done(vmf, &st, VM_FAULT_NOPAGE);
		}
		xpmem_resolved_put_more(&r);
		if (err != -EAGAIN)
			return xpmem_fault_done(vmf, &st, xpmem_errno_to_fault(err));
		xpmem_count(fault_retries);
		st.retries++;
	}
}

/*
 * Write to a read-only PTE of a write-notified attachment (another
 * partition's page, or a page the source mapped read-only when it was
 * faulted in).  Let the core make it writable only if the source,
 * resolved for write now without waiting, still gives the same page and
 * nothing invalidated it since; otherwise drop the PTE and let the
 * ordinary fault path (which may drop locks and retry) resolve it.
 */
static vm_fault_t xpmem_att_pfn_mkwrite(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct xpmem_attachment *att = xpmem_vma_att(vma);
	unsigned long addr = vmf->address & PAGE_MASK;
	unsigned long src = xpmem_att_src(vma, att, addr);
	struct xpmem_resolved r = { };
	unsigned long seq;
	bool same = false;
	int err;

	xpmem_count(mkwrite);
	if (!att->writable)
		return VM_FAULT_SIGSEGV;
	if (READ_ONCE(att->revoked))
		return VM_FAULT_SIGBUS;
	seq = att->ops->read_begin(att);
	err = att->ops->resolve_nowait(att, src, true, &r);
	if (!err) {
		spinlock_t *lock = att->ops->install_lock(att);

		spin_lock(lock);
		same = r.pfn == pte_pfn(vmf->orig_pte) && !xpmem_att_changed(att, seq);
		spin_unlock(lock);
		if (r.page)
			put_page(r.page);
	} else if (err != -EWOULDBLOCK && err != -EBUSY) {
		return xpmem_errno_to_fault(err);
	}
	if (same)
		return 0;
	/* VM_MIXEDMAP / VM_PFNMAP: zap the one PTE by file offset */
	xpmem_att_zap(att, xpmem_vma_att_offset(vma, att, addr), PAGE_SIZE);
	return VM_FAULT_NOPAGE;
}

/*
 * ptrace, /proc/PID/mem and so debuggers (access_remote_vm) try GUP
 * first; the core falls back to ->access when it fails.  The kind copies,
 * or refuses (-EIO).
 */
static int xpmem_att_access(struct vm_area_struct *vma, unsigned long addr,
			    void *buf, int len, int write)
{
	struct xpmem_attachment *att = xpmem_vma_att(vma);

	if (write && !att->writable)
		return -EACCES;
	if (READ_ONCE(att->revoked) || !att->ops->access)
		return -EIO;
	return att->ops->access(att, vma, addr, buf, len, write);
}

#if XPMEM_HAVE_GUP_HOOK
/* vm_operations_struct's XPMEM_GUP_HOOK (xpmem_compat.h): get_user_pages */
static struct page *xpmem_att_find_special_page(struct vm_area_struct *vma,
						unsigned long addr)
{
	struct xpmem_attachment *att = xpmem_vma_att(vma);

	if (!att->ops->find_special_page)
		return NULL;
	return att->ops->find_special_page(att, vma, addr);
}
#endif

/* ---- vma lifetime ------------------------------------------------------------ */

/*
 * Registering a notifier on an mm (mmu_notifier_register(), and the first
 * mmu_interval_notifier_insert() on it) takes every reverse-map lock of
 * that mm (mm_take_all_locks()): the i_mmap_rwsem of every file it maps,
 * an attachment's among them, for writing, one after the other, and its
 * anon_vma locks after those.  A local invalidation zaps an attachment
 * under its mapping's i_mmap_rwsem (read), called by the kernel with a
 * reverse-map lock held (reclaim, migration, truncate): if the registering
 * task holds the attachment's lock and waits for that reverse-map lock,
 * neither ends (found by the fuzzer on 6.1: a fork child attaching).
 *
 * An mm that maps only its own attachments has its tracker and its
 * interval tree registered (xpmem_amm_get(): both before its first
 * attachment is mapped), so xpmem registers nothing new there that takes
 * all locks: neither the tracker again nor, when the mm is first
 * attached from, the tree (mmu_interval_notifier_insert() registers only
 * if there is none; mm_has_notifiers() alone does not say there is one).
 * Only an mm that maps another mm's attachment, a fork child's copy kept
 * with MADV_DOFORK, could: xpmem registers nothing on such an mm
 * (-EBUSY, until it unmaps them).  Copies are counted so that the usual
 * case, no copy anywhere, costs nothing.  (Another driver registering on
 * an mm that maps attachments, KVM or RDMA ODP, is the same cycle;
 * docs/design.md, "Waits".)
 */
static atomic_t xpmem_copied_vmas = ATOMIC_INIT(0);

int xpmem_mm_may_register(struct mm_struct *mm)
{
	struct vm_area_struct *vma;
	int ret = 0;

	if (!atomic_read(&xpmem_copied_vmas))
		return 0;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			if (xpmem_vma_is_attachment(vma) && xpmem_vma_att(vma)->mm != mm) {
				ret = -EBUSY;
				break;
			}
		}
	}
	mmap_read_unlock(mm);
	if (ret)
		pr_info_ratelimited("xpmem: pid %d maps attachments inherited through MADV_DOFORK: unmap them before using xpmem in this process\n",
				    task_tgid_nr(current));
	return ret;
}

/* A vma of the attachment is duplicated: a split, an mremap move, or fork. */
static void xpmem_att_vma_open(struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = xpmem_vma_att(vma);

	if (vma->vm_mm != att->mm)
		atomic_inc(&xpmem_copied_vmas);
	atomic_inc(&att->nr_vmas);
	xpmem_att_get(att);
	if (att->ops->vma_open)
		att->ops->vma_open(att, vma);
}

/*
 * Called with the attacher's mmap lock held for writing (or at exit).
 * Nothing here waits: the teardown of the last vma's attachment is queued.
 */
static void xpmem_att_vma_close(struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = xpmem_vma_att(vma);

	if (vma->vm_mm != att->mm)
		atomic_dec(&xpmem_copied_vmas);
	if (att->ops->vma_close)
		att->ops->vma_close(att, vma);
	if (atomic_dec_and_test(&att->nr_vmas))
		queue_work(xpmem_att_wq, &att->teardown);	/* takes over our reference */
	else
		xpmem_att_put(att);
}

/* no write notification: writable PTEs only, pinnable (see xpmem_attach.h) */
static const struct vm_operations_struct xpmem_att_vm_ops = {
	.open = xpmem_att_vma_open,
	.close = xpmem_att_vma_close,
	.fault = xpmem_att_fault,
	.access = xpmem_att_access,
#if XPMEM_HAVE_GUP_HOOK
	.XPMEM_GUP_HOOK = xpmem_att_find_special_page,
#endif
};

/* write-notified: read-only PTEs in a writable vma go through pfn_mkwrite */
static const struct vm_operations_struct xpmem_att_notify_vm_ops = {
	.open = xpmem_att_vma_open,
	.close = xpmem_att_vma_close,
	.fault = xpmem_att_fault,
	.pfn_mkwrite = xpmem_att_pfn_mkwrite,
	.access = xpmem_att_access,
#if XPMEM_HAVE_GUP_HOOK
	.XPMEM_GUP_HOOK = xpmem_att_find_special_page,
#endif
};

/* ---- creating the vma ------------------------------------------------------ */

/*
 * ->mmap of a space's pseudo file: maps the attachment that
 * xpmem_attachment_map() is mapping, in the task doing it, and nothing
 * else (remap_file_pages() on an attachment vma comes here too).
 */
static int xpmem_att_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct xpmem_attachment *att = xpmem_space_pending(file->private_data);

	if (!att)	/* not from xpmem_attachment_map() in this task */
		return -EBUSY;
	if (att->mapped)	/* mapped once, by xpmem_attachment_map() itself */
		return -EBUSY;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff != att->pgoff || vma->vm_end - vma->vm_start != att->size)
		return -EINVAL;
	if (!att->writable) {
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		xpmem_vm_flags_clear(vma, VM_MAYWRITE);
	}
	xpmem_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY);
	att->ops->mmap(att, vma);
	vma->vm_ops = att->write_notify ? &xpmem_att_notify_vm_ops : &xpmem_att_vm_ops;
	vma->vm_private_data = att;
	xpmem_att_get(att);
	mmgrab(vma->vm_mm);
	WRITE_ONCE(att->mm, vma->vm_mm);
	att->mapped = true;
	atomic_set(&att->nr_vmas, 1);
	if (att->ops->vma_open)
		att->ops->vma_open(att, vma);
	return 0;
}

static const struct file_operations xpmem_att_fops = {
	.owner = THIS_MODULE,
	.mmap = xpmem_att_mmap,
	.release = xpmem_space_release,
};

/* The common checks of an attach of [offset, + size) of @ap's segment at @vaddr. */
int xpmem_attach_check_range(struct xpmem_access *ap, unsigned long offset,
			     unsigned long size, unsigned long vaddr)
{
	if (!current->mm)
		return -EINVAL;
	if (!size || !PAGE_ALIGNED(offset) || !PAGE_ALIGNED(size) || !PAGE_ALIGNED(vaddr))
		return -EINVAL;
	if (offset >= ap->size || size > ap->size - offset)
		return -EINVAL;
	/* a fixed address must lie in the user address space (not ENOMEM from mmap) */
	if (vaddr && (size > current->mm->task_size || vaddr > current->mm->task_size - size))
		return -EINVAL;
	return 0;
}

/*
 * Make @att, which the kind allocated zeroed (inside its own struct), an
 * attachment of @size bytes from source address @src_start under @ap,
 * counted against the current user.  On success it holds the caller's
 * reference of @ap and one reference of its own for the caller; on
 * failure the caller still owns both @ap's reference and its memory.
 */
int xpmem_attachment_init(struct xpmem_attachment *att, const struct xpmem_att_ops *ops,
			  struct xpmem_access *ap, unsigned long src_start, unsigned long size)
{
	struct xpmem_user *user = xpmem_user_charge(XPMEM_OWNS_ATTACHMENT);
	struct xpmem_att_space *space;

	if (IS_ERR(user))
		return PTR_ERR(user);
	/* its offsets in the space: fixed now, zaps may come before it is mapped */
	space = xpmem_space_reserve(size >> PAGE_SHIFT, &att->pgoff);
	if (IS_ERR(space)) {
		xpmem_user_uncharge(user, XPMEM_OWNS_ATTACHMENT);
		return PTR_ERR(space);
	}
	kref_init(&att->ref);
	att->ops = ops;
	att->ap = ap;
	att->user = user;
	att->space = space;
	att->src_start = src_start;
	att->size = size;
	att->writable = ap->writable;
	att->dep.ops = &xpmem_att_dep_ops;
	INIT_LIST_HEAD(&att->dep.node);
	xa_init(&att->fault_errors);
	INIT_WORK(&att->teardown, xpmem_att_teardown_fn);
	xpmem_count(attachments);
	return 0;
}

/* Make @att a dependent of its permit; -ENOENT if the permit ended. */
int xpmem_attachment_add(struct xpmem_attachment *att)
{
	return xpmem_access_add_dependent(att->ap, &att->dep);
}

/* An attachment that will never be mapped: the kind's teardown, then the caller's reference. */
void xpmem_attachment_abort(struct xpmem_attachment *att)
{
	att->ops->teardown(att);
	xpmem_att_put(att);
}

/*
 * Map @att at *@vaddr (0: anywhere) in the current mm.  Takes over the
 * caller's reference either way; on failure the attachment is torn down.
 */
int xpmem_attachment_map(struct xpmem_attachment *att, unsigned long *vaddr)
{
	struct xpmem_att_space *space = att->space;
	struct xpmem_att_pending pending = { .task = current, .att = att };
	unsigned long addr;

	spin_lock(&space->pending_lock);
	list_add(&pending.node, &space->pending);
	spin_unlock(&space->pending_lock);
	addr = vm_mmap(space->file, *vaddr, att->size,
		       PROT_READ | (att->writable ? PROT_WRITE : 0),
		       MAP_SHARED | (*vaddr ? MAP_FIXED : 0),
		       xpmem_att_file_pos(att, 0));
	spin_lock(&space->pending_lock);
	list_del(&pending.node);
	spin_unlock(&space->pending_lock);
	if (IS_ERR_VALUE(addr)) {
		/* never mapped: no vma will queue the teardown */
		if (!att->mapped) {
			xpmem_attachment_abort(att);
			return (int)addr;
		}
		xpmem_att_put(att);
		return (int)addr;
	}
	*vaddr = addr;
	xpmem_att_put(att);	/* the vma holds its own reference */
	xpmem_count(attaches);
	return 0;
}

int xpmem_detach(unsigned long vaddr)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	unsigned long start, len;

	if (!mm)
		return -EINVAL;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
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

/* ---- the pseudo filesystem that owns the spaces' inodes ------------------- */

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

/* Module exit: run the teardowns vma close queued (a remote DETACH needs the transport). */
void xpmem_attach_flush(void)
{
	flush_workqueue(xpmem_att_wq);
}

void xpmem_attach_exit(void)
{
	destroy_workqueue(xpmem_att_wq);	/* runs what is still queued */
	kern_unmount(xpmem_mnt);
}
