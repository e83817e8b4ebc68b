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
 * under the attacher's page table lock.  invalidate_range_start may sleep
 * only when every bracket slot is taken (never in practice: there are
 * XPMEM_AMM_BRACKETS of them) and the range is blockable; otherwise it
 * answers -EAGAIN for a range that covers an attachment.
 */
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/wait.h>

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
	while (amm->nr_brackets == XPMEM_AMM_BRACKETS) {
		spin_unlock(&amm->lock);
		if (!mmu_notifier_range_blockable(range))
			return -EAGAIN;
		xpmem_count(amm_bracket_waits);
		wait_event(amm->slot_wq,
			   READ_ONCE(amm->nr_brackets) < XPMEM_AMM_BRACKETS ||
			   READ_ONCE(amm->dead));
		if (READ_ONCE(amm->dead))
			return 0;	/* nothing is given out any more */
		spin_lock(&amm->lock);
	}
	for (i = 0; i < XPMEM_AMM_BRACKETS; i++) {
		b = &amm->brackets[i];
		if (b->range)
			continue;
		b->range = range;
		b->task = current;
		b->start = range->start;
		b->end = range->end;
		amm->nr_brackets++;
		break;
	}
	spin_unlock(&amm->lock);
	return 0;
}

static void xpmem_amm_range_end(struct mmu_notifier *mn,
				const struct mmu_notifier_range *range)
{
	struct xpmem_amm *amm = to_amm(mn);
	bool freed = false;
	int i;

	spin_lock(&amm->lock);
	for (i = 0; amm->nr_brackets && i < XPMEM_AMM_BRACKETS; i++) {
		struct xpmem_amm_bracket *b = &amm->brackets[i];

		if (b->range != range || b->task != current)
			continue;
		b->range = NULL;
		b->task = NULL;
		amm->nr_brackets--;
		freed = true;
		break;
	}
	spin_unlock(&amm->lock);
	if (freed && wq_has_sleeper(&amm->slot_wq))
		wake_up(&amm->slot_wq);
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
	wake_up_all(&amm->slot_wq);	/* no slot will be freed any more */
}

static struct mmu_notifier *xpmem_amm_alloc(struct mm_struct *mm)
{
	struct xpmem_amm *amm = kzalloc(sizeof(*amm), GFP_KERNEL);

	if (!amm)
		return ERR_PTR(-ENOMEM);
	spin_lock_init(&amm->lock);
	init_waitqueue_head(&amm->slot_wq);
	__module_get(THIS_MODULE);	/* callbacks are module text */
	xpmem_count(attacher_mms);
	return &amm->mn;
}

/* after an SRCU grace period: no callback is running */
static void xpmem_amm_free(struct mmu_notifier *mn)
{
	struct xpmem_amm *amm = to_amm(mn);

	WARN_ON_ONCE(amm->nr_vmas);
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
	bool zapping = false;
	int i;

	if (vma->vm_mm != amm->mn.mm || READ_ONCE(amm->dead))
		return false;
	/* a task always sees the brackets it opened itself */
	if (!READ_ONCE(amm->nr_brackets))
		return true;
	spin_lock(&amm->lock);
	for (i = 0; i < XPMEM_AMM_BRACKETS; i++) {
		struct xpmem_amm_bracket *b = &amm->brackets[i];

		if (b->range && b->task == current &&
		    addr >= b->start && addr < b->end) {
			zapping = true;
			break;
		}
	}
	spin_unlock(&amm->lock);
	return !zapping;
}
