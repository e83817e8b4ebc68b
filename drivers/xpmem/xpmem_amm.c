// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_amm.c - per attaching mm: who may be told which page an
 * attachment PTE maps.
 *
 * Attachment PTEs are "special": they hold no page reference and no
 * mapcount.  To let get_user_pages() resolve them (shared futexes,
 * O_DIRECT, process_vm_readv, RDMA registration) the attachment vma has a
 * find_special_page callback that returns the source page.  But
 * vm_normal_page(), which calls it, is also what the core's zap uses, and
 * a zap that is handed a page drops a mapcount and a reference that the
 * PTE never held.  So the answer must be "no page" to whoever is zapping
 * the PTE and "this page" to everyone else.
 *
 * Every zap of a user page table (munmap, exit, MADV_DONTNEED,
 * unmap_mapping_range, which is also how xpmem's own invalidations zap)
 * runs between invalidate_range_start and invalidate_range_end of that
 * mm's notifiers, in one task.  This notifier, registered on every mm that
 * maps a local attachment, records (task, range) for each such bracket
 * that may cover an attachment, and find_special_page answers NULL to a
 * task inside a bracket that covers the address.  Other tasks, a GUP
 * running at the same time for instance, still get the page: the PTE is
 * still there, and the source cannot free the page before this zap has
 * removed it (the source's own invalidation waits for that zap).
 *
 * exit_mmap zaps after ->release, which unhooks plain notifiers: from
 * ->release on, the answer is NULL for everyone (no one can GUP an mm
 * whose users are gone).
 *
 * Locks: amm->lock is a spinlock, innermost: find_special_page takes it
 * under the attacher's page table lock.  Nothing here sleeps or fails:
 * this notifier has an invalidate_range_end, and the core forbids a start
 * that can fail to have one (it would then call the end of a start that
 * failed).  A bracket that finds all XPMEM_AMM_BRACKETS slots taken is
 * allocated (GFP_NOWAIT) onto amm->more; if even that fails, amm->lost is
 * set for good and nobody is given a page of this mm's attachments any
 * more (get_user_pages on them fails): safe, and it needs a storm of
 * concurrent invalidations of one mm while memory is exhausted.
 */
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "xpmem_internal.h"

static inline struct xpmem_amm *to_amm(struct mmu_notifier *mn)
{
	return container_of(mn, struct xpmem_amm, mn);
}

/* Does [start, end) meet the span of this mm's attachment vmas? */
static bool xpmem_amm_covers_locked(struct xpmem_amm *amm, unsigned long start,
				    unsigned long end)
{
	lockdep_assert_held(&amm->lock);
	return amm->nr_vmas && start < amm->hi && end > amm->lo;
}

static int xpmem_amm_range_start(struct mmu_notifier *mn,
				 const struct mmu_notifier_range *range)
{
	struct xpmem_amm *amm = to_amm(mn);
	struct xpmem_amm_bracket *b;
	int i;

	spin_lock(&amm->lock);
	if (!xpmem_amm_covers_locked(amm, range->start, range->end)) {
		spin_unlock(&amm->lock);
		return 0;
	}
	b = NULL;
	for (i = 0; i < XPMEM_AMM_BRACKETS; i++) {
		if (!amm->brackets[i].range) {
			b = &amm->brackets[i];
			break;
		}
	}
	if (!b) {
		xpmem_count(amm_bracket_overflows);
		b = kmalloc(sizeof(*b), GFP_NOWAIT | __GFP_NOWARN);
		if (!b) {
			WRITE_ONCE(amm->lost, true);
			spin_unlock(&amm->lock);
			pr_warn_once("xpmem: no memory to track a zap of an attacher; its attachments are no longer given to get_user_pages\n");
			return 0;
		}
		list_add(&b->node, &amm->more);
	}
	b->range = range;
	b->task = current;
	b->start = range->start;
	b->end = range->end;
	amm->nr_brackets++;
	spin_unlock(&amm->lock);
	return 0;
}

static void xpmem_amm_range_end(struct mmu_notifier *mn,
				const struct mmu_notifier_range *range)
{
	struct xpmem_amm *amm = to_amm(mn);
	struct xpmem_amm_bracket *b, *freed = NULL;
	int i;

	if (!READ_ONCE(amm->nr_brackets))
		return;		/* ours are visible to us: none open */
	spin_lock(&amm->lock);
	for (i = 0; i < XPMEM_AMM_BRACKETS; i++) {
		b = &amm->brackets[i];
		if (b->range == range && b->task == current) {
			b->range = NULL;
			b->task = NULL;
			amm->nr_brackets--;
			goto out;
		}
	}
	list_for_each_entry(b, &amm->more, node) {
		if (b->range == range && b->task == current) {
			list_del(&b->node);
			amm->nr_brackets--;
			freed = b;
			break;
		}
	}
	/* not found: the start did not cover the span, or it was lost */
out:
	spin_unlock(&amm->lock);
	kfree(freed);
}

/*
 * exit_mmap: from here on no page is given out.  ->release also unhooks
 * this notifier, so a bracket opened before it (a reclaim walk, an
 * invalidation worker zapping) never sees its invalidate_range_end here.
 * The brackets must stay all the same: a zapper that read "not dead"
 * just before this must still find its own bracket.
 */
static void xpmem_amm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct xpmem_amm *amm = to_amm(mn);

	WRITE_ONCE(amm->dead, true);
}

static struct mmu_notifier *xpmem_amm_alloc(struct mm_struct *mm)
{
	struct xpmem_amm *amm = kzalloc(sizeof(*amm), GFP_KERNEL_ACCOUNT);

	if (!amm)
		return ERR_PTR(-ENOMEM);
	spin_lock_init(&amm->lock);
	INIT_LIST_HEAD(&amm->more);
	__module_get(THIS_MODULE);	/* callbacks are module text */
	xpmem_count(attacher_mms);
	return &amm->mn;
}

/* after an SRCU grace period: no callback is running */
static void xpmem_amm_free(struct mmu_notifier *mn)
{
	struct xpmem_amm *amm = to_amm(mn);

	WARN_ON_ONCE(amm->nr_vmas);
	/* brackets whose end never came: opened before ->release unhooked us */
	while (!list_empty(&amm->more)) {
		struct xpmem_amm_bracket *b =
			list_first_entry(&amm->more, struct xpmem_amm_bracket, node);

		list_del(&b->node);
		kfree(b);
	}
	kfree(amm);
	xpmem_uncount(attacher_mms);
	module_put(THIS_MODULE);
}

static const struct mmu_notifier_ops xpmem_amm_ops = {
	.release = xpmem_amm_release,
	.invalidate_range_start = xpmem_amm_range_start,
	.invalidate_range_end = xpmem_amm_range_end,
	.alloc_notifier = xpmem_amm_alloc,
	.free_notifier = xpmem_amm_free,
};

/* Find or create the tracker of @mm.  Takes @mm's mmap lock for writing. */
struct xpmem_amm *xpmem_amm_get(struct mm_struct *mm)
{
	struct mmu_notifier *mn = mmu_notifier_get(&xpmem_amm_ops, mm);

	if (IS_ERR(mn))
		return ERR_CAST(mn);
	return to_amm(mn);
}

void xpmem_amm_put(struct xpmem_amm *amm)
{
	mmu_notifier_put(&amm->mn);
}

/*
 * An attachment vma of this mm appeared (mmap, split, mremap): widen the
 * span.  It only ever shrinks back when the last vma goes, so it may cover
 * more than the vmas do, which costs a bracket slot, never correctness.
 * Called with the mm's mmap lock held for writing.
 */
void xpmem_amm_vma_add(struct xpmem_amm *amm, struct vm_area_struct *vma)
{
	spin_lock(&amm->lock);
	if (!amm->nr_vmas++) {
		amm->lo = vma->vm_start;
		amm->hi = vma->vm_end;
	} else {
		amm->lo = min(amm->lo, vma->vm_start);
		amm->hi = max(amm->hi, vma->vm_end);
	}
	spin_unlock(&amm->lock);
}

void xpmem_amm_vma_del(struct xpmem_amm *amm)
{
	spin_lock(&amm->lock);
	if (!WARN_ON_ONCE(!amm->nr_vmas) && !--amm->nr_vmas) {
		amm->lo = 0;
		amm->hi = 0;
	}
	spin_unlock(&amm->lock);
}

/*
 * May find_special_page() give the page behind @addr of @vma to the
 * current task?  Not if the mm is exiting, not to a task that is inside an
 * invalidation bracket covering @addr (it is zapping), and not for a vma
 * of another mm (a child that inherited the vma through MADV_DOFORK: its
 * zaps are not tracked here).
 */
bool xpmem_amm_may_give_page(struct xpmem_amm *amm, struct vm_area_struct *vma,
			     unsigned long addr)
{
	struct xpmem_amm_bracket *b;
	bool zapping = false;
	int i;

	if (vma->vm_mm != amm->mn.mm || READ_ONCE(amm->dead) || READ_ONCE(amm->lost))
		return false;
	/* a task always sees the brackets it opened itself */
	if (!READ_ONCE(amm->nr_brackets))
		return true;
	spin_lock(&amm->lock);
	list_for_each_entry(b, &amm->more, node) {
		if (b->task == current && addr >= b->start && addr < b->end) {
			zapping = true;
			break;
		}
	}
	for (i = 0; !zapping && i < XPMEM_AMM_BRACKETS; i++) {
		b = &amm->brackets[i];
		if (b->range && b->task == current &&
		    addr >= b->start && addr < b->end) {
			zapping = true;
			break;
		}
	}
	spin_unlock(&amm->lock);
	return !zapping;
}
