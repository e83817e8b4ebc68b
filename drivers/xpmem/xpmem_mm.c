// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_mm.c - per exporting mm: the mmu notifier, the reverse map of
 * secondary mappings, and invalidations that wait for acknowledgment.
 *
 * One struct xpmem_mm exists per exporting mm, shared by all its segments
 * (mmu_notifier_get() finds or creates it; mmu_notifier_put() frees it
 * after an SRCU grace period, so no callback can still be running on it).
 * It holds mm_count (the notifier core's mmgrab), never mm_users: the
 * fault path takes mm_users only around an access (mmget_not_zero) and
 * fails cleanly once the owner is exiting.
 *
 * Reverse map: an interval tree (rmap) of every secondary mapping
 * (struct xpmem_rmap) of a range of this mm.  invalidate_range_start
 * finds the overlapping entries in O(log n + k), marks them with the
 * current invalidation sequence, has each of them torn down, and sleeps
 * until every one has acknowledged.  Only then may the primary MMU free
 * or reuse the pages.
 *
 * Why a worker does the tearing down: zapping an attacher's PTEs calls
 * the attacher mm's own invalidate_range_start, and the mmu notifier core
 * wraps every invalidate_range_start in a lockdep map; doing it inline
 * from our callback would nest that map.  So the callback hands the work
 * to xpmem_inval_wq and waits for the acks, exactly as it will wait for a
 * remote partition's acks.  The worker's own nested notifier calls are
 * recognised (xpmem_in_inval_worker()) and return at once: the only
 * ranges it zaps are attachment vmas, and faults refuse to resolve
 * through attachment vmas, so nothing downstream can map them.
 *
 * Lock order (outer first):
 *   attacher mmap_lock (vma open/close, mmap)
 *     -> xpmem_mm.rmap_sem
 *       -> attachment inode i_mmap_rwsem (unmap_mapping_range, worker)
 *         -> attacher page table locks
 *   xpmem_mm.rmap_sem -> xpmem_mm.seq_lock (spinlock, never sleeps)
 *
 * Sleeping:
 *   - invalidate_range_start sleeps (down_read, waiting for acks) only
 *     when mmu_notifier_range_blockable(); otherwise it answers -EAGAIN
 *     if any secondary mapping overlaps, and 0 without waiting if none.
 *   - It may be called with i_mmap_rwsem or the anon_vma rwsem held and
 *     from reclaim, so nothing here allocates memory while holding
 *     rmap_sem or seq_lock, and nothing takes the exporting mm's mmap lock.
 *   - Ack waits use a completion with a timeout: the waiter warns (once per
 *     interval) and keeps waiting, because returning before the ack would
 *     let the kernel free a page an attacher still maps.
 */
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "xpmem_internal.h"

/* How long an ack wait runs before it is reported (then again each time). */
#define XPMEM_ACK_WARN_SECS	10

static struct workqueue_struct *xpmem_inval_wq;

static void xpmem_inval_work_fn(struct work_struct *work);

/* the local invalidation worker, or the one zapping for a remote owner */
static bool xpmem_in_inval_worker(void)
{
	struct work_struct *w = current_work();

	return (w && w->func == xpmem_inval_work_fn) || xpmem_remote_is_zap_worker();
}

static inline struct xpmem_mm *to_xmm(struct mmu_notifier *mn)
{
	return container_of(mn, struct xpmem_mm, mn);
}

static inline struct xpmem_rmap *to_rmap(struct interval_tree_node *it)
{
	return container_of(it, struct xpmem_rmap, it);
}

/* ---- the invalidation sequence ---------------------------------------- */

/* Open an invalidation period (or join the one that is open). */
static void xpmem_seq_begin_locked(struct xpmem_mm *xmm)
{
	lockdep_assert_held(&xmm->seq_lock);
	if (xmm->active++ == 0)
		xmm->invalidate_seq |= 1;
}

static void xpmem_seq_end(struct xpmem_mm *xmm)
{
	bool wake = false;

	spin_lock(&xmm->seq_lock);
	if (WARN_ON_ONCE(xmm->active == 0)) {
		spin_unlock(&xmm->seq_lock);
		return;
	}
	if (--xmm->active == 0) {
		xmm->invalidate_seq++;	/* odd -> even: period over */
		wake = true;
	}
	spin_unlock(&xmm->seq_lock);
	if (wake)
		wake_up_all(&xmm->seq_wq);
}

/*
 * Sample the sequence of one secondary mapping before resolving a page for
 * it.  If an invalidation that hit this mapping is still running, wait for
 * it to end: until invalidate_range_end the primary page tables are in
 * flux and anything resolved now would be retried anyway.
 */
unsigned long xpmem_rmap_read_begin(struct xpmem_mm *xmm,
				    struct xpmem_rmap *rmap)
{
	unsigned long seq;
	bool busy;

	spin_lock(&xmm->seq_lock);
	seq = rmap->invalidate_seq;
	busy = seq == xmm->invalidate_seq;
	spin_unlock(&xmm->seq_lock);
	if (busy)
		wait_event(xmm->seq_wq,
			   READ_ONCE(xmm->invalidate_seq) != seq);
	return seq;
}

/*
 * True if an invalidation hit the mapping since read_begin returned seq.
 * Callers check this under the attacher's page table lock, right before
 * installing a translation: the invalidation stores the new sequence
 * before it zaps, and its zap takes the same page table lock, so either
 * we see the new sequence or the zap sees (and removes) our PTE.  The
 * full barrier covers the case where the page table did not exist when
 * the zap walked past it (store-buffer pattern with the pmd population).
 */
bool xpmem_rmap_read_retry(struct xpmem_rmap *rmap, unsigned long seq)
{
	/* orders our page table population before the sequence load */
	smp_mb();
	return READ_ONCE(rmap->invalidate_seq) != seq;
}

/*
 * For a secondary mapping that is not a page table here (a partition):
 * run @publish (which must not sleep: it puts a reply in a ring) only if
 * no invalidation hit @rmap since xpmem_rmap_read_begin() returned @seq,
 * else return -EAGAIN.  An invalidation marks its entries under seq_lock
 * before it tells anyone, so whatever @publish sends is ordered before
 * the invalidation's own message.
 */
int xpmem_rmap_publish(struct xpmem_mm *xmm, struct xpmem_rmap *rmap,
		       unsigned long seq, int (*publish)(void *arg), void *arg)
{
	int ret = -EAGAIN;

	spin_lock(&xmm->seq_lock);
	if (rmap->invalidate_seq == seq)
		ret = publish(arg);
	spin_unlock(&xmm->seq_lock);
	return ret;
}

/* ---- the reverse map ---------------------------------------------------- */

void xpmem_rmap_init(struct xpmem_rmap *rmap, const struct xpmem_rmap_ops *ops,
		     unsigned long start, unsigned long size)
{
	RB_CLEAR_NODE(&rmap->it.rb);
	rmap->it.start = start;
	rmap->it.last = start + size - 1;
	rmap->ops = ops;
	rmap->linked = false;
}

void xpmem_rmap_insert(struct xpmem_mm *xmm, struct xpmem_rmap *rmap)
{
	down_write(&xmm->rmap_sem);
	spin_lock(&xmm->seq_lock);
	/*
	 * Inserted while an invalidation period is open: that invalidation
	 * may cover this range and did not see the entry, so treat the entry
	 * as hit (faults wait for the period to end).  Otherwise pick a value
	 * that is not the current sequence.
	 */
	if (xmm->active)
		rmap->invalidate_seq = xmm->invalidate_seq;
	else
		rmap->invalidate_seq = xmm->invalidate_seq - 1;
	spin_unlock(&xmm->seq_lock);
	interval_tree_insert(&rmap->it, &xmm->rmap);
	rmap->linked = true;
	up_write(&xmm->rmap_sem);
	xpmem_count(rmap_entries);
}

void xpmem_rmap_remove(struct xpmem_mm *xmm, struct xpmem_rmap *rmap)
{
	down_write(&xmm->rmap_sem);
	if (rmap->linked) {
		interval_tree_remove(&rmap->it, &xmm->rmap);
		rmap->linked = false;
		xpmem_uncount(rmap_entries);
	}
	up_write(&xmm->rmap_sem);
}

/* ---- carrying out an invalidation -------------------------------------- */

void xpmem_inval_ack(struct xpmem_inval *inv)
{
	if (atomic_dec_and_test(&inv->pending))
		complete(&inv->done);
}

static void xpmem_inval_work_fn(struct work_struct *work)
{
	struct xpmem_inval *inv = container_of(work, struct xpmem_inval, work);
	struct xpmem_mm *xmm = inv->xmm;
	unsigned long last = inv->end - 1;
	struct interval_tree_node *it;

	down_read(&xmm->rmap_sem);
	for (it = interval_tree_iter_first(&xmm->rmap, inv->start, last); it;
	     it = interval_tree_iter_next(it, inv->start, last)) {
		struct xpmem_rmap *rmap = to_rmap(it);

		if (inv->only && inv->only != rmap)
			continue;
		atomic_inc(&inv->pending);
		rmap->ops->invalidate(rmap, max(inv->start, it->start),
				      min(last, it->last) + 1, inv);
	}
	up_read(&xmm->rmap_sem);
	xpmem_inval_ack(inv);	/* the walker's own count */
}

/*
 * Hand [start, end) to the worker and sleep until every overlapping
 * secondary mapping (or only @only) has acknowledged.  The caller has
 * already marked the entries' sequences.
 */
static void xpmem_inval_run(struct xpmem_mm *xmm, unsigned long start,
			    unsigned long end, struct xpmem_rmap *only)
{
	struct xpmem_inval inv = {
		.xmm = xmm,
		.start = start,
		.end = end,
		.only = only,
		.pending = ATOMIC_INIT(1),
	};
	unsigned long waited = 0;

	init_completion(&inv.done);
	INIT_WORK_ONSTACK(&inv.work, xpmem_inval_work_fn);
	queue_work(xpmem_inval_wq, &inv.work);
	while (!wait_for_completion_timeout(&inv.done,
					    XPMEM_ACK_WARN_SECS * HZ)) {
		waited += XPMEM_ACK_WARN_SECS;
		xpmem_count(ack_wait_slow);
		pr_warn_ratelimited("xpmem: invalidation of [%#lx, %#lx) waiting %lus for %d acks\n",
				    start, end, waited,
				    atomic_read(&inv.pending));
	}
	destroy_work_on_stack(&inv.work);
}

/* Mark every entry overlapping [start, end); returns how many. */
static unsigned int xpmem_mark_overlaps_locked(struct xpmem_mm *xmm,
					       unsigned long start,
					       unsigned long end)
{
	struct interval_tree_node *it;
	unsigned int hits = 0;

	for (it = interval_tree_iter_first(&xmm->rmap, start, end - 1); it;
	     it = interval_tree_iter_next(it, start, end - 1)) {
		to_rmap(it)->invalidate_seq = xmm->invalidate_seq;
		hits++;
	}
	return hits;
}

static int xpmem_mn_invalidate_range_start(struct mmu_notifier *mn,
					   const struct mmu_notifier_range *range)
{
	struct xpmem_mm *xmm = to_xmm(mn);
	unsigned int hits;

	xpmem_count(invalidations);

	/* Our own worker zapping attachment vmas that live in this mm. */
	if (xpmem_in_inval_worker()) {
		spin_lock(&xmm->seq_lock);
		xpmem_seq_begin_locked(xmm);
		spin_unlock(&xmm->seq_lock);
		return 0;
	}

	if (!mmu_notifier_range_blockable(range)) {
		if (!down_read_trylock(&xmm->rmap_sem)) {
			xpmem_count(invalidate_nonblock_busy);
			return -EAGAIN;
		}
		if (interval_tree_iter_first(&xmm->rmap, range->start,
					     range->end - 1)) {
			up_read(&xmm->rmap_sem);
			xpmem_count(invalidate_nonblock_busy);
			return -EAGAIN;
		}
		spin_lock(&xmm->seq_lock);
		xpmem_seq_begin_locked(xmm);
		spin_unlock(&xmm->seq_lock);
		up_read(&xmm->rmap_sem);
		return 0;
	}

	down_read(&xmm->rmap_sem);
	spin_lock(&xmm->seq_lock);
	xpmem_seq_begin_locked(xmm);
	hits = xpmem_mark_overlaps_locked(xmm, range->start, range->end);
	spin_unlock(&xmm->seq_lock);
	up_read(&xmm->rmap_sem);

	if (hits) {
		xpmem_count(invalidate_hits);
		xpmem_inval_run(xmm, range->start, range->end, NULL);
	}
	return 0;
}

static void xpmem_mn_invalidate_range_end(struct mmu_notifier *mn,
					  const struct mmu_notifier_range *range)
{
	xpmem_seq_end(to_xmm(mn));
}

/*
 * Invalidate every secondary mapping of [start, end) outside of a notifier
 * callback (mm teardown, segment removal, permit release).
 */
static void xpmem_invalidate_now(struct xpmem_mm *xmm, unsigned long start,
				 unsigned long end, struct xpmem_rmap *only)
{
	unsigned int hits;

	down_read(&xmm->rmap_sem);
	spin_lock(&xmm->seq_lock);
	xpmem_seq_begin_locked(xmm);
	if (only) {
		hits = only->linked;
		if (hits)
			only->invalidate_seq = xmm->invalidate_seq;
	} else {
		hits = xpmem_mark_overlaps_locked(xmm, start, end);
	}
	spin_unlock(&xmm->seq_lock);
	up_read(&xmm->rmap_sem);

	if (hits)
		xpmem_inval_run(xmm, start, end, only);
	xpmem_seq_end(xmm);
}

void xpmem_rmap_revoke(struct xpmem_mm *xmm, struct xpmem_rmap *rmap)
{
	xpmem_count(revokes);
	xpmem_invalidate_now(xmm, rmap->it.start, rmap->it.last + 1, rmap);
}

/*
 * The exporting mm is being torn down (exit_mmap), before its pages are
 * freed.  Refuse new faults, then take down every secondary mapping.
 */
static void xpmem_mn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct xpmem_mm *xmm = to_xmm(mn);

	WRITE_ONCE(xmm->dead, true);
	xpmem_invalidate_now(xmm, 0, ULONG_MAX, NULL);
}

static struct mmu_notifier *xpmem_mn_alloc(struct mm_struct *mm)
{
	struct xpmem_mm *xmm;

	xmm = kzalloc(sizeof(*xmm), GFP_KERNEL);
	if (!xmm)
		return ERR_PTR(-ENOMEM);
	init_rwsem(&xmm->rmap_sem);
	xmm->rmap = RB_ROOT_CACHED;
	spin_lock_init(&xmm->seq_lock);
	xmm->invalidate_seq = 2;
	init_waitqueue_head(&xmm->seq_wq);
	/* the notifier's callbacks are module text: pin it until freed */
	__module_get(THIS_MODULE);
	xpmem_count(notifiers);
	return &xmm->mn;
}

/* Called after an SRCU grace period: no callback can be running. */
static void xpmem_mn_free(struct mmu_notifier *mn)
{
	struct xpmem_mm *xmm = to_xmm(mn);

	WARN_ON_ONCE(!RB_EMPTY_ROOT(&xmm->rmap.rb_root));
	kfree(xmm);
	xpmem_uncount(notifiers);
	module_put(THIS_MODULE);
}

static const struct mmu_notifier_ops xpmem_mn_ops = {
	.release = xpmem_mn_release,
	.invalidate_range_start = xpmem_mn_invalidate_range_start,
	.invalidate_range_end = xpmem_mn_invalidate_range_end,
	.alloc_notifier = xpmem_mn_alloc,
	.free_notifier = xpmem_mn_free,
};

/* Find or create the notifier of @mm.  Takes @mm's mmap lock for writing. */
struct xpmem_mm *xpmem_mm_get(struct mm_struct *mm)
{
	struct mmu_notifier *mn = mmu_notifier_get(&xpmem_mn_ops, mm);

	if (IS_ERR(mn))
		return ERR_CAST(mn);
	return to_xmm(mn);
}

void xpmem_mm_put(struct xpmem_mm *xmm)
{
	mmu_notifier_put(&xmm->mn);
}

int xpmem_mm_init(void)
{
	/*
	 * WQ_MEM_RECLAIM: invalidations happen under memory pressure and
	 * the reclaiming task sleeps until the work is done, so the queue
	 * needs a rescuer.  Unbound: a slow ack must not hold up
	 * invalidations of unrelated processes queued behind it.
	 */
	xpmem_inval_wq = alloc_workqueue("xpmem_inval",
					 WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	return xpmem_inval_wq ? 0 : -ENOMEM;
}

void xpmem_mm_exit(void)
{
	destroy_workqueue(xpmem_inval_wq);
	/* wait for pending free_notifier callbacks */
	mmu_notifier_synchronize();
}
