// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_mirror.c - secondary mappings of an exporting mm ("mirrors"): one
 * mmu_interval_notifier each, on the source range it maps.
 *
 * Every local attachment and every attachment another partition holds is
 * a mirror: an interval of the exporting mm's notifier tree (the kernel's
 * interval tree of mmu_interval_notifiers is the reverse map from a source
 * address to every secondary mapping of it).  When the kernel invalidates
 * a range of that mm (munmap, reclaim, migration, COW, truncate, exit),
 * the core calls ->invalidate of each overlapping mirror; the mirror's
 * ops->invalidate takes its translations down and returns only when none
 * can be used any more (a local zap, or a remote partition's ACK).  Only
 * then may the kernel free or reuse the pages.
 *
 * Sequence: a fault samples xpmem_mirror_read_begin() before it resolves
 * the source page, and installs the translation only if
 * xpmem_mirror_read_retry() says no invalidation began since, checked
 * under mirror->lock, the lock under which ->invalidate publishes its
 * sequence (mmu_interval_set_seq()).  Either the fault sees the new
 * sequence and retries, or its translation was installed before the
 * sequence moved and the invalidation that follows removes it.
 *
 * Mapped range: a mirror remembers the span of source addresses it gave
 * translations of (xpmem_mirror_mapped(), at install or publication,
 * under mirror->lock after the sequence check); an invalidation outside
 * it has nothing to take down and returns at once, blockable or not.
 * That is what most invalidations of a large attachment are: its
 * attacher touched a part of it.
 *
 * The non-blockable contract (OOM reaper, process_mrelease): ->invalidate
 * returns false when it would have to sleep, and the core then ends the
 * invalidation period itself and hands -EAGAIN to the caller, which must
 * not call invalidate_range_end.  A mirror therefore never has to undo
 * anything: there is no "end" callback to get wrong.  The caller tries
 * again later (the reaper) or leaves the memory to exit_mmap, whose
 * invalidation is blockable.
 *
 * Why a worker zaps local attachments: zapping an attacher's PTEs runs the
 * attacher mm's notifiers, and the core wraps every
 * invalidate_range_start in one lockdep map; zapping inline from our
 * callback would nest that map.  So ->invalidate of a local attachment
 * hands the zap to xpmem_zap_wq and waits.  The nested notifier calls of
 * a zap of attachment vmas (in any mm, including an exporting one: a
 * process may export the range its own attachments live in) reach
 * ->invalidate of mirrors whose source range covers attachment vmas; no
 * mirror can map those addresses (faults never resolve through an
 * attachment vma), so such a call is recognised (xpmem_zap_covers():
 * this task is inside xpmem_zap_mapping(), which invalidates nothing but
 * the vmas it zaps) and returns at once.  Nothing else is exempt: a
 * reclaim or an unrelated notifier call of the same task at another time
 * is handled normally.
 *
 * Also here, for both kinds of mirror: xpmem_src_page(), the one way a
 * page of an exporting mm is looked up for a secondary mapping.
 *
 * Locks (outer first):
 *   mmap_lock / i_mmap_rwsem / anon_vma lock / folio locks of the caller
 *     -> (->invalidate; may sleep waiting for the zap worker or an ACK)
 *   attacher PTE lock -> mirror->lock (spinlock; fault install checks)
 *   xpmem_zaps_lock (spinlock): the registry of zaps in progress
 * Sleeping: ->invalidate sleeps only when the range is blockable; it takes
 * no lock that is held while allocating memory or while waiting for one
 * of the caller's rmap locks, and never the exporting mm's mmap lock.
 */
#include <linux/hashtable.h>
#include <linux/interval_tree.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "xpmem_compat.h"
#include "xpmem_mirror.h"
#include "xpmem_stats.h"
#include "xpmem_trace.h"

/* How long a wait for a zap runs before it is reported (then again each time). */
#define XPMEM_ZAP_WARN_SECS	10

static struct workqueue_struct *xpmem_zap_wq;

/* ---- zaps of attachment vmas, and the nested calls they cause ------------- */

struct xpmem_zap {
	struct list_head node;		/* in xpmem_zaps while in progress */
	struct task_struct *task;
};

static LIST_HEAD(xpmem_zaps);
static DEFINE_SPINLOCK(xpmem_zaps_lock);

/*
 * Remove every PTE of attachment @mapping's pages [start, start + len)
 * (offsets in the attachment), in every vma that maps it.  The nested
 * notifier calls this causes are recognised by xpmem_zap_covers().
 */
void xpmem_zap_mapping(struct address_space *mapping, loff_t start, loff_t len)
{
	struct xpmem_zap z = { .task = current };

	/* 0 means "to the end of the file": every later attachment of the space */
	if (WARN_ON_ONCE(len <= 0))
		return;
	spin_lock(&xpmem_zaps_lock);
	list_add(&z.node, &xpmem_zaps);
	spin_unlock(&xpmem_zaps_lock);
	unmap_mapping_range(mapping, start, len, 1);
	spin_lock(&xpmem_zaps_lock);
	list_del(&z.node);
	spin_unlock(&xpmem_zaps_lock);
}

/*
 * Is @range a piece of one of this task's zaps?  Inside
 * unmap_mapping_range() of an attachment's mapping the kernel invalidates
 * exactly the ranges of that mapping's vmas it zaps (MMU_NOTIFY_CLEAR),
 * one vma at a time, and nothing else: the zap allocates only with
 * GFP_NOWAIT (no reclaim) and frees no page tables.  So a call from this
 * task while it is registered is one of those.  Everything else, a reclaim
 * or an unrelated notifier of the same task at another time, is not.
 */
static bool xpmem_zap_covers(const struct mmu_notifier_range *range)
{
	struct xpmem_zap *z;
	bool covers = false;

	/* a task always sees its own registration: no zap of ours, no lock */
	if (data_race(list_empty(&xpmem_zaps)) || range->event != MMU_NOTIFY_CLEAR)
		return false;
	spin_lock(&xpmem_zaps_lock);
	list_for_each_entry(z, &xpmem_zaps, node) {
		if (z->task == current) {
			covers = true;
			break;
		}
	}
	spin_unlock(&xpmem_zaps_lock);
	return covers;
}

static void xpmem_zap_work_fn(struct work_struct *work)
{
	struct xpmem_zap_work *zw = container_of(work, struct xpmem_zap_work, work);

	xpmem_test_zap_delay();	/* test builds: a slow zap (debugfs ack_delay_ms) */
	xpmem_zap_mapping(zw->mapping, zw->start, zw->len);
	complete(&zw->done);
}

/*
 * Wait for a zap handed to the worker.  The wait has no external
 * dependency (the zap takes only the mapping's i_mmap_rwsem and the
 * attacher's page table locks, never an mmap lock, and allocates nothing
 * that could wait for reclaim); it is reported every XPMEM_ZAP_WARN_SECS,
 * never abandoned: returning before the zap would let the kernel free a
 * page an attacher still maps.  @zw lives until this returns.
 */
void xpmem_zap_mapping_wait_queued(struct xpmem_zap_work *zw)
{
	/* a zap the test hook holds on purpose (debugfs ack_delay_ms) is not slow */
	unsigned long warn_after = XPMEM_ZAP_WARN_SECS * HZ + xpmem_test_zap_delay_jiffies();
	unsigned long waited = 0;

	while (!wait_for_completion_timeout(&zw->done, warn_after)) {
		waited += warn_after / HZ;
		xpmem_count(ack_wait_slow);
		pr_warn_ratelimited("xpmem: zap of an attachment waiting for %lus\n", waited);
	}
}

/* From a notifier callback: have the zap worker zap, and wait until it did. */
void xpmem_zap_mapping_wait(struct address_space *mapping, loff_t start, loff_t len)
{
	struct xpmem_zap_work zw = {
		.mapping = mapping,
		.start = start,
		.len = len,
	};

	init_completion(&zw.done);
	INIT_WORK_ONSTACK(&zw.work, xpmem_zap_work_fn);
	queue_work(xpmem_zap_wq, &zw.work);
	xpmem_zap_mapping_wait_queued(&zw);
	destroy_work_on_stack(&zw.work);
}

/*
 * The same in two steps, for the two-pass notifier: queue the zap here
 * (@zw on the heap), wait later with xpmem_zap_mapping_wait_queued().
 */
void xpmem_zap_mapping_queue(struct xpmem_zap_work *zw, struct address_space *mapping,
			     loff_t start, loff_t len)
{
	zw->mapping = mapping;
	zw->start = start;
	zw->len = len;
	init_completion(&zw->done);
	INIT_WORK(&zw->work, xpmem_zap_work_fn);
	queue_work(xpmem_zap_wq, &zw->work);
}

/* ---- the interval notifier -------------------------------------------------- */

static inline struct xpmem_mirror *to_mirror(struct mmu_interval_notifier *mni)
{
	return container_of(mni, struct xpmem_mirror, mni);
}

/* With m->lock held: a translation of [start, start + len) was given out. */
void xpmem_mirror_mapped(struct xpmem_mirror *m, unsigned long start, unsigned long len)
{
	lockdep_assert_held(&m->lock);
	if (m->mapped_start >= m->mapped_end) {
		m->mapped_start = start;
		m->mapped_end = start + len;
		return;
	}
	m->mapped_start = min(m->mapped_start, start);
	m->mapped_end = max(m->mapped_end, start + len);
}

/*
 * The first part of every invalidation of @mni: publish the sequence and
 * decide whether anything of [*startp, *endp) (the part of the range in
 * this mirror) must be taken down: 1 if so, 0 if there is nothing to take
 * down, -EAGAIN if there is but the caller may not sleep.
 */
static int
xpmem_mirror_inval_begin(struct mmu_interval_notifier *mni, const struct mmu_notifier_range *range,
			 unsigned long cur_seq, unsigned long *startp, unsigned long *endp)
{
	struct xpmem_mirror *m = to_mirror(mni);
	unsigned long start = max(range->start, mni->interval_tree.start);
	unsigned long end = min(range->end, mni->interval_tree.last + 1);
	bool mapped;

	*startp = start;
	*endp = end;
	xpmem_count(invalidations);
	if (xpmem_zap_covers(range)) {
		/* our own zap of attachment vmas: nothing of ours maps them */
		spin_lock(&m->lock);
		mmu_interval_set_seq(mni, cur_seq);
		spin_unlock(&m->lock);
		return 0;
	}
	/*
	 * From here until the invalidation ends no fault installs and no
	 * reply is published for this mirror (their sequence check fails),
	 * so the mapped range cannot grow while we look at it or take it
	 * down.  A fault that installed before this saw the old sequence,
	 * and widened the range under this lock before we took it.
	 */
	spin_lock(&m->lock);
	mmu_interval_set_seq(mni, cur_seq);
	if (range->event == MMU_NOTIFY_RELEASE)
		m->released = true;	/* exit_mmap: no fault may resolve again */
	mapped = start < m->mapped_end && m->mapped_start < end;
	spin_unlock(&m->lock);
	if (!mapped) {
		xpmem_count(invalidate_unmapped);
		if (!mmu_notifier_range_blockable(range))
			xpmem_count(invalidate_nonblock_unmapped);
		return 0;
	}
	if (!mmu_notifier_range_blockable(range)) {
		/*
		 * The core ends the period and tells the caller -EAGAIN.  The
		 * sequence moved for nothing: a fault sampled before it
		 * resolves once more.
		 */
		trace_xpmem_invalidate_start(start, end, range->event, false);
		xpmem_count(invalidate_nonblock_busy);
		return -EAGAIN;
	}
	xpmem_count(invalidate_hits);
	trace_xpmem_invalidate_start(start, end, range->event, true);
	return 1;
}

/* The last part: [start, end) is down, @t0 ns after it began. */
static void xpmem_mirror_inval_end(struct xpmem_mirror *m, unsigned long start,
				   unsigned long end, u64 t0)
{
	t0 = ktime_get_ns() - t0;
	/* what was mapped at either end of the range is gone */
	spin_lock(&m->lock);
	if (start <= m->mapped_start)
		m->mapped_start = max(m->mapped_start, end);
	if (end >= m->mapped_end)
		m->mapped_end = min(m->mapped_end, start);
	spin_unlock(&m->lock);
	xpmem_hist_record(XPMEM_HIST_INVALIDATE, t0);
	trace_xpmem_invalidate_end(start, end, t0);
}

/*
 * Start every zap of an invalidation before waiting for any: a long list
 * of mirrors of one page (thousands of one-page attachments of a segment)
 * then costs one round of the zap worker instead of one round per mirror.
 * With the two-pass notifier (7.1) the core's passes do it; before it,
 * the first mirror an invalidation reaches does it for the mirrors of
 * the same mm (a batch, below).  Module parameter
 * two_pass_invalidation=N makes every invalidation one wait per mirror
 * (bench/local/two-pass compares both in one boot).
 */
static bool xpmem_two_pass = true;
module_param_named(two_pass_invalidation, xpmem_two_pass, bool, 0644);
MODULE_PARM_DESC(two_pass_invalidation,
		 "start every mirror's zap of an invalidation before waiting for any (default Y)");

/* ---- batches: one wait per invalidation on one-pass kernels ---------------
 *
 * The set of an exporting mm holds its mirrors that can zap in two steps
 * (->invalidate_begin), in an interval tree of source ranges.  The core
 * calls the mirrors an invalidation overlaps one after another, in the
 * invalidating task, and each of its calls must return with its part
 * down.  The first call that has something to take down (the leader)
 * takes the same first step for every mirror of the set the range
 * overlaps, what their own calls would do first: publish the sequence
 * under the mirror's lock (the invalidation's cur_seq, the one value all
 * calls of this invalidation period publish), and if the mirror has
 * something mapped in the range, queue its zap.  Then it waits for all of
 * them and narrows each mirror's mapped span as its own call would.  From
 * the publication on no fault installs in those mirrors until the period
 * ends (the core's read_begin waits, a fault that sampled before fails
 * its retry check), so when the core then calls them they find nothing
 * mapped in the range and return at once.  Where the range was in the
 * middle of a mirror's span (the span only narrows at its ends) that
 * call zaps again: redundant, not wrong.
 *
 * A mirror some other invalidation's batch holds (->batched) is left to
 * that batch and to its own call, which zaps for itself.  Publishing the
 * sequence of a mirror the core will not call in this period (inserted
 * while it runs) only makes its faults wait for the period's end.
 *
 * Lifetime: a mirror leaves its set before the core's tree, and then
 * waits until no batch holds it (xpmem_mirror_remove()); a batch holds
 * only mirrors it found in the set.  The set lives while it has mirrors;
 * the leader's own mirror is in it for the leader's whole call (its
 * removal waits for the invalidation period to end).
 *
 * Locks: xpmem_mirror_sets_lock (mutex: the hash and each set's count)
 *   -> set->lock (spinlock: the tree) -> mirror->lock.  The batch is
 * collected under set->lock and started and waited for with no lock.
 */
struct xpmem_mirror_set {
	struct hlist_node hnode;	/* in xpmem_mirror_sets */
	struct mm_struct *mm;		/* the key; never dereferenced */
	unsigned int nr_mirrors;	/* under xpmem_mirror_sets_lock */
	spinlock_t lock;
	struct rb_root_cached mirrors;	/* of set_node, under lock */
};

static DEFINE_HASHTABLE(xpmem_mirror_sets, 7);
static DEFINE_MUTEX(xpmem_mirror_sets_lock);
static DECLARE_WAIT_QUEUE_HEAD(xpmem_batch_wq);	/* a batch let go of mirrors */

/* Join @mm's set (made if it is the first), after the core's insert. */
static int xpmem_mirror_set_join(struct xpmem_mirror *m, struct mm_struct *mm)
{
	struct xpmem_mirror_set *set;

	mutex_lock(&xpmem_mirror_sets_lock);
	hash_for_each_possible(xpmem_mirror_sets, set, hnode, (unsigned long)mm)
		if (set->mm == mm)
			goto found;
	set = kzalloc(sizeof(*set), GFP_KERNEL);
	if (!set) {
		mutex_unlock(&xpmem_mirror_sets_lock);
		return -ENOMEM;
	}
	set->mm = mm;
	spin_lock_init(&set->lock);
	set->mirrors = RB_ROOT_CACHED;
	hash_add(xpmem_mirror_sets, &set->hnode, (unsigned long)mm);
found:
	set->nr_mirrors++;
	mutex_unlock(&xpmem_mirror_sets_lock);
	m->set_node.start = m->mni.interval_tree.start;
	m->set_node.last = m->mni.interval_tree.last;
	/* callbacks of this mirror may run from its core insert on */
	smp_store_release(&m->set, set);	/* after the set's init: paired in invalidate */
	spin_lock(&set->lock);
	interval_tree_insert(&m->set_node, &set->mirrors);
	spin_unlock(&set->lock);
	return 0;
}

static bool xpmem_mirror_in_batch(struct xpmem_mirror *m)
{
	bool batched;

	spin_lock(&m->lock);
	batched = m->batched;
	spin_unlock(&m->lock);
	return batched;
}

/* Leave the set: no batch finds @m after this, and none holds it. */
static void xpmem_mirror_set_leave(struct xpmem_mirror *m)
{
	struct xpmem_mirror_set *set = m->set;

	spin_lock(&set->lock);
	interval_tree_remove(&m->set_node, &set->mirrors);
	spin_unlock(&set->lock);
	/* a batch ends its mirrors within one invalidation: bounded as that is */
	wait_event(xpmem_batch_wq, !xpmem_mirror_in_batch(m));
}

/* After the core's remove: the set goes with its last mirror. */
static void xpmem_mirror_set_put(struct xpmem_mirror *m)
{
	struct xpmem_mirror_set *set = m->set;

	WRITE_ONCE(m->set, NULL);
	mutex_lock(&xpmem_mirror_sets_lock);
	if (!--set->nr_mirrors) {
		WARN_ON_ONCE(!RB_EMPTY_ROOT(&set->mirrors.rb_root));
		hash_del(&set->hnode);
		kfree(set);
	}
	mutex_unlock(&xpmem_mirror_sets_lock);
}

/*
 * The first step of the core's call for every mirror of @leader's set
 * that @range overlaps: publish the sequence; collect those with
 * something mapped in the range (and no other batch) on @batch.
 */
static void xpmem_batch_collect(struct xpmem_mirror_set *set,
				const struct mmu_notifier_range *range,
				unsigned long cur_seq, struct list_head *batch)
{
	struct interval_tree_node *node;

	spin_lock(&set->lock);
	for (node = interval_tree_iter_first(&set->mirrors, range->start, range->end - 1); node;
	     node = interval_tree_iter_next(node, range->start, range->end - 1)) {
		struct xpmem_mirror *m = container_of(node, struct xpmem_mirror, set_node);
		unsigned long start = max(range->start, node->start);
		unsigned long end = min(range->end, node->last + 1);

		spin_lock(&m->lock);
		mmu_interval_set_seq(&m->mni, cur_seq);
		if (range->event == MMU_NOTIFY_RELEASE)
			m->released = true;
		if (!m->batched && start < m->mapped_end && m->mapped_start < end) {
			m->batched = true;
			m->batch_start = start;
			m->batch_end = end;
			list_add_tail(&m->batch_link, batch);
		}
		spin_unlock(&m->lock);
	}
	spin_unlock(&set->lock);
}

/*
 * @leader's call has something to take down in [start, end): take down
 * what the range overlaps in every mirror of @set (the leader's), waiting
 * once.
 */
static void xpmem_batch_invalidate(struct xpmem_mirror *leader, struct xpmem_mirror_set *set,
				   const struct mmu_notifier_range *range, unsigned long cur_seq,
				   unsigned long start, unsigned long end)
{
	u64 t0 = ktime_get_ns();
	bool leader_in = false;
	struct xpmem_mirror *m, *tmp;
	LIST_HEAD(batch);
	LIST_HEAD(queued);

	xpmem_batch_collect(set, range, cur_seq, &batch);
	list_for_each_entry_safe(m, tmp, &batch, batch_link) {
		if (m == leader)
			leader_in = true;
		/* false: nothing to wait for (peer gone, or a test hook skipped the zap) */
		if (!m->ops->invalidate_begin(m, m->batch_start, m->batch_end, &m->batch_wait))
			continue;
		list_move_tail(&m->batch_link, &queued);
		if (m != leader)
			xpmem_count(batched_zaps);
	}
	list_for_each_entry(m, &queued, batch_link)
		m->ops->invalidate_wait(m, m->batch_start, m->batch_end, &m->batch_wait);
	list_splice_tail(&queued, &batch);
	/*
	 * Let go of each mirror only once it is off this list and the walk
	 * no longer needs its link: from then on another batch may collect
	 * it (and link it into a list on its own stack) or its removal may
	 * end and free it.  @tmp is still ours.
	 */
	list_for_each_entry_safe(m, tmp, &batch, batch_link) {
		xpmem_mirror_inval_end(m, m->batch_start, m->batch_end, t0);
		list_del_init(&m->batch_link);
		spin_lock(&m->lock);
		m->batched = false;
		spin_unlock(&m->lock);
	}
	wake_up_all(&xpmem_batch_wq);
	/* another invalidation's batch holds the leader: its own zap, here */
	if (!leader_in) {
		t0 = ktime_get_ns();
		leader->ops->invalidate(leader, start, end);
		xpmem_mirror_inval_end(leader, start, end, t0);
	}
}

static bool xpmem_mirror_invalidate(struct mmu_interval_notifier *mni,
				    const struct mmu_notifier_range *range,
				    unsigned long cur_seq)
{
	struct xpmem_mirror *m = to_mirror(mni);
	struct xpmem_mirror_set *set;
	unsigned long start, end;
	int step;
	u64 t0;

	step = xpmem_mirror_inval_begin(mni, range, cur_seq, &start, &end);
	if (step <= 0)
		return !step;	/* false only for -EAGAIN: busy, not blockable */
	/* the set's init before its use: paired with the release in set_join */
	set = smp_load_acquire(&m->set);
	if (set && READ_ONCE(xpmem_two_pass)) {
		xpmem_batch_invalidate(m, set, range, cur_seq, start, end);
		return true;
	}
	t0 = ktime_get_ns();
	m->ops->invalidate(m, start, end);
	xpmem_mirror_inval_end(m, start, end, t0);
	return true;
}

#if XPMEM_HAVE_TWO_PASS_NOTIFIER
/*
 * Two passes (7.1): the first starts every mirror's zap, the second
 * waits for each.  The second pass runs before the core ends the
 * invalidation (faults still wait), and a mirror is not removed while it
 * runs (mmu_interval_notifier_remove() waits for the invalidation's end).
 */

struct xpmem_mirror_pass {
	struct mmu_interval_notifier_finish finish;	/* the core's link */
	struct xpmem_mirror *m;
	unsigned long start, end;
	u64 t0;
	struct xpmem_mirror_wait wait;
};

static bool xpmem_mirror_invalidate_start(struct mmu_interval_notifier *mni,
					  const struct mmu_notifier_range *range,
					  unsigned long cur_seq,
					  struct mmu_interval_notifier_finish **finish)
{
	struct xpmem_mirror *m = to_mirror(mni);
	struct xpmem_mirror_pass *pass;
	unsigned long start, end;
	int step;
	u64 t0;

	step = xpmem_mirror_inval_begin(mni, range, cur_seq, &start, &end);
	if (step <= 0)
		return !step;	/* false only for -EAGAIN: busy, not blockable */
	t0 = ktime_get_ns();
	/* no memory for the second pass: all of it here, as one pass */
	pass = m->ops->invalidate_begin && READ_ONCE(xpmem_two_pass) ?
		kmalloc(sizeof(*pass), GFP_NOWAIT | __GFP_NOMEMALLOC | __GFP_NOWARN) : NULL;
	if (!pass) {
		m->ops->invalidate(m, start, end);
		xpmem_mirror_inval_end(m, start, end, t0);
		return true;
	}
	if (!m->ops->invalidate_begin(m, start, end, &pass->wait)) {
		kfree(pass);
		xpmem_mirror_inval_end(m, start, end, t0);
		return true;
	}
	pass->m = m;
	pass->start = start;
	pass->end = end;
	pass->t0 = t0;
	*finish = &pass->finish;
	return true;
}

static void xpmem_mirror_invalidate_finish(struct mmu_interval_notifier_finish *finish)
{
	struct xpmem_mirror_pass *pass = container_of(finish, struct xpmem_mirror_pass, finish);
	struct xpmem_mirror *m = pass->m;

	m->ops->invalidate_wait(m, pass->start, pass->end, &pass->wait);
	xpmem_mirror_inval_end(m, pass->start, pass->end, pass->t0);
	kfree(pass);
}
#endif

static const struct mmu_interval_notifier_ops xpmem_mirror_ni_ops = {
#if XPMEM_HAVE_TWO_PASS_NOTIFIER
	.invalidate_start = xpmem_mirror_invalidate_start,
	.invalidate_finish = xpmem_mirror_invalidate_finish,
#endif
	.invalidate = xpmem_mirror_invalidate,
};

/*
 * Make @m a mirror of [start, start + size) of @mm.  The caller holds an
 * mm_users reference (the first interval of an mm registers the mm's
 * notifier subscriptions, which needs a live mm).  Takes @mm's mmap lock
 * for writing.
 */
int xpmem_mirror_insert(struct xpmem_mirror *m, const struct xpmem_mirror_ops *ops,
			struct mm_struct *mm, unsigned long start, unsigned long size)
{
	int ret;

	spin_lock_init(&m->lock);
	m->ops = ops;
	m->mapped_start = 0;
	m->mapped_end = 0;
	m->released = false;
	m->set = NULL;
	m->batched = false;
	/*
	 * Under the mmap lock: the core's unlocked insert reads "no interval
	 * tree yet" outside it and registers one later, by when the mm may
	 * have got its tracker and an attachment (xpmem_local.c), and the
	 * registration would take that attachment's lock (the lock cycle of
	 * docs/design.md, "Why attachments are mapped through their mm's space").  Locked,
	 * the check and the registration are one section with the tracker's.
	 */
	if (mmap_write_lock_killable(mm))
		return -EINTR;
	ret = mmu_interval_notifier_insert_locked(&m->mni, mm, start, size,
						  &xpmem_mirror_ni_ops);
	mmap_write_unlock(mm);
	if (ret)
		return ret;
	m->inserted = true;
	xpmem_count(mirrors);
	/* where the core has one pass, batches need the mm's set (above) */
	if (!XPMEM_HAVE_TWO_PASS_NOTIFIER && ops->invalidate_begin) {
		ret = xpmem_mirror_set_join(m, mm);
		if (ret)
			xpmem_mirror_remove(m);
	}
	return ret;
}

/*
 * Stop mirroring.  May sleep until an invalidation of the mm that is
 * running now ends; so never call it from a notifier callback or with a
 * lock such a callback takes (vma close defers it to a worker).
 */
void xpmem_mirror_remove(struct xpmem_mirror *m)
{
	if (!m->inserted)
		return;
	if (m->set)
		xpmem_mirror_set_leave(m);
	mmu_interval_notifier_remove(&m->mni);
	if (m->set)
		xpmem_mirror_set_put(m);
	m->inserted = false;
	xpmem_uncount(mirrors);
}

/* Sample the sequence before resolving; waits while an invalidation hits @m. */
unsigned long xpmem_mirror_read_begin(struct xpmem_mirror *m)
{
	return mmu_interval_read_begin(&m->mni);
}

/* With m->lock held: did an invalidation begin since @seq was sampled? */
bool xpmem_mirror_read_retry(struct xpmem_mirror *m, unsigned long seq)
{
	lockdep_assert_held(&m->lock);
	return mmu_interval_read_retry(&m->mni, seq) || m->released;
}

/* ---- the source page of a secondary mapping ------------------------------ */

/*
 * Return a referenced page of the exporting mm @mm at @addr.  The caller
 * holds @mm's mmap lock.  The reference is dropped as soon as the
 * translation is in.
 */
int xpmem_src_page(struct mm_struct *mm, unsigned long addr, bool write,
		   struct page **page)
{
	struct vm_area_struct *vma = vma_lookup(mm, addr);
	long n;

	if (!vma)
		return -EFAULT;		/* a hole in the segment */
	/*
	 * Never resolve through an attachment (or any pfn mapping):
	 * attachments map only the exporter's own pages, which is also what
	 * lets a zap of attachment vmas skip the mirrors it hits (above).
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

int xpmem_mirror_init(void)
{
	/*
	 * WQ_MEM_RECLAIM: reclaim waits for these zaps, so the queue needs a
	 * rescuer.  Per-CPU and high priority: the invalidating task sleeps
	 * until its zap is done, so the zap runs on the CPU that task leaves
	 * idle, with no cross-CPU wakeup either way (bench/local: the
	 * unbound queue's hand-off cost 5-8 ms in some rounds on a loaded
	 * host, this one stayed under 0.4 ms).  A zap that sleeps (on the
	 * mapping's i_mmap_rwsem) lets the pool start another worker, so a
	 * slow zap delays the others on its CPU at most by its own run time.
	 */
	xpmem_zap_wq = alloc_workqueue("xpmem_zap", WQ_HIGHPRI | WQ_MEM_RECLAIM, 0);
	return xpmem_zap_wq ? 0 : -ENOMEM;
}

void xpmem_mirror_exit(void)
{
	destroy_workqueue(xpmem_zap_wq);
	/* the attacher mms' notifiers are freed after an SRCU grace period */
	mmu_notifier_synchronize();
}
