// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_local.c - the local kind of attachment (xpmem_attach.h): an
 * attachment of a segment of this partition, its mirror of the source,
 * how its faults resolve pages, what a debugger may copy, and which page
 * get_user_pages() may be given (and to whom: the "attaching mm" tracker
 * below).  Also the permits of local segments (xpmem_segment.h's access
 * ops): their attach.
 *
 * A local attachment's vma is VM_MIXEDMAP and its PTEs are special (no
 * page reference, no mapcount).  Its mirror (xpmem_mirror.c), an interval
 * notifier on the exporting mm, zaps them before a source page goes.
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
 *
 * Resolving with the attacher's fault lock held only trylocks the
 * source's mmap lock (->resolve_nowait); a contended source is resolved
 * with the fault lock dropped (->resolve, xpmem_attach.c).
 *
 * ---- The attaching mm: who may be told which page an attachment PTE maps
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
#include <linux/cred.h>
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "xpmem_attach.h"
#include "xpmem_compat.h"
#include "xpmem_ids.h"
#include "xpmem_local.h"
#include "xpmem_mirror.h"
#include "xpmem_stats.h"
#include "xpmem_trace.h"

/* invalidations of one attaching mm that may be open at the same time */
#define XPMEM_AMM_BRACKETS	32

struct xpmem_amm_bracket {
	const struct mmu_notifier_range *range;	/* NULL: slot free */
	struct task_struct *task;
	unsigned long start, end;
	struct list_head node;		/* in amm->more, if allocated */
};

/* one per mm that maps a local attachment */
struct xpmem_amm {
	struct mmu_notifier mn;
	spinlock_t lock;		/* innermost: under PTE locks */
	unsigned int nr_vmas;		/* local attachment vmas in this mm */
	unsigned long lo, hi;		/* ... and a span that covers them */
	unsigned int nr_brackets;	/* open brackets, in slots or in more */
	struct xpmem_amm_bracket brackets[XPMEM_AMM_BRACKETS];
	struct list_head more;		/* open brackets beyond the slots */
	/*
	 * A bracket could be recorded nowhere (no slot, no memory): from
	 * then on nobody is given a page of this mm's attachments.
	 */
	bool lost;
	bool dead;			/* ->release ran: exit_mmap */
	/* under the mm's mmap lock: the mm's interval tree is not set up yet */
	bool needs_itree;
};

struct xpmem_local_att {
	struct xpmem_attachment att;
	struct xpmem_mirror mirror;	/* [att.src_start, + size) of src_mm */
	struct mm_struct *src_mm;	/* the exporting mm (mm_count) */
	struct xpmem_amm *amm;		/* the attaching mm's */
	/* counted against: the source is another user's (max_foreign_mirrors) */
	struct xpmem_user *foreign;
	/*
	 * Writable attachment over a source range that was not all writable
	 * at attach time: pages the source maps read-only are mapped
	 * read-only, and writes to them come through pfn_mkwrite.
	 */
	bool ro_source;
#ifdef CONFIG_XPMEM_TEST_HOOKS
	/*
	 * Test hook (debugfs test_pin_pages, read at attach time): keep a
	 * reference on every page this attachment maps, as pinning XPMEM
	 * implementations do, so the no-pinning tests can show they would
	 * catch one.
	 */
	struct xarray test_pins;
	bool test_pin;
#endif
	struct rcu_head rcu;
};

static struct xpmem_local_att *to_local(struct xpmem_attachment *att)
{
	return container_of(att, struct xpmem_local_att, att);
}

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
	amm->needs_itree = true;
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

/*
 * Find or create the tracker of @mm.  Takes @mm's mmap lock for writing.
 *
 * A new tracker comes with the mm's interval tree (the one an exporting
 * mm's mirrors live in), registered in the same mmap-lock section.  Both
 * registrations take every reverse-map lock of the mm (see
 * xpmem_mm_may_register()), which must never happen while the mm maps an
 * attachment: its i_mmap_rwsem would be held, for writing, by a task
 * that then waits for another file's, held by an invalidation that waits
 * for the zap of that very attachment (found by make check's fuzzer on
 * 6.12: an mm that had attached before it was first attached from got
 * its interval tree in mmu_interval_notifier_insert() then).  No local
 * attachment can be mapped here before its tracker exists, and no caller
 * gets the tracker before the tree is there: a failed registration
 * leaves needs_itree set for the next caller to try again.
 */
static struct xpmem_amm *xpmem_amm_get(struct mm_struct *mm)
{
	struct mmu_notifier *mn;
	int ret = 0;

	if (mmap_write_lock_killable(mm))
		return ERR_PTR(-EINTR);
	mn = mmu_notifier_get_locked(&xpmem_amm_ops, mm);
	if (!IS_ERR(mn) && to_amm(mn)->needs_itree) {
		ret = __mmu_notifier_register(NULL, mm);
		if (!ret)
			to_amm(mn)->needs_itree = false;
	}
	mmap_write_unlock(mm);
	if (IS_ERR(mn))
		return ERR_CAST(mn);
	if (ret) {
		mmu_notifier_put(mn);
		return ERR_PTR(ret);
	}
	return to_amm(mn);
}

static void xpmem_amm_put(struct xpmem_amm *amm)
{
	mmu_notifier_put(&amm->mn);
}

/*
 * An attachment vma of this mm appeared (mmap, split, mremap): widen the
 * span.  It only ever shrinks back when the last vma goes, so it may cover
 * more than the vmas do, which costs a bracket slot, never correctness.
 * Called with the mm's mmap lock held for writing.
 */
static void xpmem_amm_vma_add(struct xpmem_amm *amm, struct vm_area_struct *vma)
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

static void xpmem_amm_vma_del(struct xpmem_amm *amm)
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
static bool xpmem_amm_may_give_page(struct xpmem_amm *amm, struct vm_area_struct *vma,
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

/* ---- test hook: emulate a pinning implementation ---------------------------- */

#ifdef CONFIG_XPMEM_TEST_HOOKS
static void xpmem_test_pin(struct xpmem_local_att *la, unsigned long src, struct page *page)
{
	struct page *old;

	if (!la->test_pin)
		return;
	get_page(page);
	old = xa_store(&la->test_pins, src >> PAGE_SHIFT, page, GFP_KERNEL);
	if (xa_is_err(old))
		put_page(page);
	else if (old)
		put_page(old);
}

static void xpmem_test_pin_init(struct xpmem_local_att *la)
{
	xa_init(&la->test_pins);
	la->test_pin = xpmem_test_pin_enabled();
}

static void xpmem_test_unpin_all(struct xpmem_local_att *la)
{
	struct page *page;
	unsigned long idx;

	xa_for_each(&la->test_pins, idx, page)
		put_page(page);
	xa_destroy(&la->test_pins);
}

/* debugfs skip_zap_every: is this zap the Nth, to be skipped (a broken driver)? */
static bool xpmem_test_skip_zap(void)
{
	static atomic_t zaps = ATOMIC_INIT(0);
	unsigned int n = READ_ONCE(xpmem_skip_zap_every);

	return n && (unsigned int)atomic_inc_return(&zaps) % n == 0;
}
#else
static void xpmem_test_pin(struct xpmem_local_att *la, unsigned long src, struct page *page)
{
}

static void xpmem_test_pin_init(struct xpmem_local_att *la)
{
}

static void xpmem_test_unpin_all(struct xpmem_local_att *la)
{
}

static bool xpmem_test_skip_zap(void)
{
	return false;
}
#endif

/* ---- the mirror of the source ------------------------------------------------ */

/* The mirror's ->invalidate: zap [start, end) of the source, wait. */
static void xpmem_local_invalidate(struct xpmem_mirror *m, unsigned long start,
				   unsigned long end)
{
	struct xpmem_local_att *la = container_of(m, struct xpmem_local_att, mirror);
	u64 t0 = ktime_get_ns();

	if (xpmem_test_skip_zap())
		return;		/* test hook: the source's pages stay mapped here */
	xpmem_att_zap_wait(&la->att, start - la->att.src_start, end - start);
	xpmem_count(acks);
	trace_xpmem_ack(-1, start, ktime_get_ns() - t0);
}

/* The same in two steps (the two-pass notifier): queue the zap ... */
static bool xpmem_local_invalidate_begin(struct xpmem_mirror *m, unsigned long start,
					 unsigned long end, struct xpmem_mirror_wait *w)
{
	struct xpmem_local_att *la = container_of(m, struct xpmem_local_att, mirror);

	if (xpmem_test_skip_zap())
		return false;	/* test hook: the source's pages stay mapped here */
	xpmem_att_zap_queue(&la->att, start - la->att.src_start, end - start, &w->zap);
	return true;
}

/* ... and wait for it */
static void xpmem_local_invalidate_wait(struct xpmem_mirror *m, unsigned long start,
					unsigned long end, struct xpmem_mirror_wait *w)
{
	u64 t0 = ktime_get_ns();

	xpmem_zap_mapping_wait_queued(&w->zap);
	xpmem_count(acks);
	trace_xpmem_ack(-1, start, ktime_get_ns() - t0);
}

static const struct xpmem_mirror_ops xpmem_local_mirror_ops = {
	.invalidate = xpmem_local_invalidate,
	.invalidate_begin = xpmem_local_invalidate_begin,
	.invalidate_wait = xpmem_local_invalidate_wait,
};

static unsigned long xpmem_local_read_begin(struct xpmem_attachment *att)
{
	return xpmem_mirror_read_begin(&to_local(att)->mirror);
}

static bool xpmem_local_read_retry(struct xpmem_attachment *att, unsigned long seq)
{
	return xpmem_mirror_read_retry(&to_local(att)->mirror, seq);
}

static spinlock_t *xpmem_local_install_lock(struct xpmem_attachment *att)
{
	return &to_local(att)->mirror.lock;
}

static void xpmem_local_installed(struct xpmem_attachment *att, unsigned long src,
				  unsigned long len)
{
	xpmem_mirror_mapped(&to_local(att)->mirror, src, len);
}

/* ---- resolving a page --------------------------------------------------------- */

/*
 * Fault-around: the pages after @src in the same source vma that are
 * present there with the writability of the faulting one, up to
 * @r->max_more.  Nothing is faulted in the source (FOLL_NOFAULT): a page
 * that is not there, or that would need copy-on-write or unsharing,
 * ends the run.  The source vma was checked for the faulting page
 * (xpmem_src_page(): not an attachment, not a pfn mapping).
 */
static void xpmem_local_resolve_more(struct xpmem_local_att *la, unsigned long src,
				     struct xpmem_resolved *r)
{
	struct vm_area_struct *vma;
	unsigned long nr;
	long got, i;

	if (!r->max_more)
		return;
	vma = vma_lookup(la->src_mm, src);
	if (!vma)
		return;
	nr = min_t(unsigned long, r->max_more, (vma->vm_end - src - PAGE_SIZE) >> PAGE_SHIFT);
	if (!nr)
		return;
	if (r->writable)
		got = xpmem_gup_remote_present(la->src_mm, src + PAGE_SIZE, nr, FOLL_WRITE,
					       r->more);
	else
		got = xpmem_pin_remote_present_read(la->src_mm, src + PAGE_SIZE, nr, r->more);
	if (got <= 0)
		return;
	r->nr_more = got;
	for (i = 0; i < got; i++)
		xpmem_test_pin(la, src + (i + 1) * PAGE_SIZE, r->more[i]);
}

/*
 * The source page for a fault, the source's mmap lock held: for write if
 * the fault writes or the attachment is writable (see the top of this
 * file), except that a read through a ro_source attachment of a page the
 * source maps read-only is resolved read-only.
 */
static int xpmem_local_resolve_locked(struct xpmem_local_att *la, unsigned long src,
				      bool write, struct xpmem_resolved *r)
{
	int err;

	r->writable = write || la->att.writable;
	err = xpmem_src_page(la->src_mm, src, r->writable, &r->page);
	if (err == -EACCES && !write && r->writable && la->ro_source) {
		r->writable = false;
		err = xpmem_src_page(la->src_mm, src, false, &r->page);
	}
	if (err) {
		r->page = NULL;
		return err;
	}
	r->pfn = page_to_pfn(r->page);
	xpmem_test_pin(la, src, r->page);
	xpmem_local_resolve_more(la, src, r);
	return 0;
}

/* With the attacher's fault lock held: the source's lock is only tried. */
static int xpmem_local_resolve_nowait(struct xpmem_attachment *att, unsigned long src,
				      bool write, struct xpmem_resolved *r)
{
	struct xpmem_local_att *la = to_local(att);
	int err;

	if (!mmget_not_zero(la->src_mm))
		return -EFAULT;		/* the owner is exiting */
	if (!mmap_read_trylock(la->src_mm)) {
		mmput_async(la->src_mm);
		/*
		 * Its own segment: the fault holds this very lock, and the
		 * writer that makes the trylock fail waits for it.
		 */
		return la->src_mm == READ_ONCE(att->mm) ? -EWOULDBLOCK : -EBUSY;
	}
	err = xpmem_local_resolve_locked(la, src, write, r);
	mmap_read_unlock(la->src_mm);
	/* never run the source's exit_mmap under our fault lock */
	mmput_async(la->src_mm);
	return err;
}

/* With no lock of the attacher's held: a killable wait for the source's lock. */
static int xpmem_local_resolve(struct xpmem_attachment *att, unsigned long src,
			       bool write, struct xpmem_resolved *r)
{
	struct xpmem_local_att *la = to_local(att);
	int err = -EINTR;

	if (!mmget_not_zero(la->src_mm))
		return -EFAULT;		/* the owner is exiting */
	if (!mmap_read_lock_killable(la->src_mm)) {
		err = xpmem_local_resolve_locked(la, src, write, r);
		mmap_read_unlock(la->src_mm);
	}
	mmput(la->src_mm);
	return err;
}

/*
 * A debugger's access (the core falls back here when GUP failed: for a
 * write through an RDONLY attachment, and when the source's lock was
 * contended, since a debugger's fault cannot drop its lock).  Copy through
 * the source's pages with the rules of a fault: the caller holds the
 * attacher's mmap lock, so the source's is only trylocked (-EAGAIN when
 * busy); no page reference outlives the call.  Returns the bytes copied
 * or -errno.
 */
static int xpmem_local_access(struct xpmem_attachment *att, struct vm_area_struct *vma,
			      unsigned long addr, void *buf, int len, int write)
{
	struct xpmem_local_att *la = to_local(att);
	struct mm_struct *src_mm = la->src_mm;
	int done = 0;

	len = min_t(unsigned long, len, vma->vm_end - addr);
	if (!mmget_not_zero(src_mm))
		return -EIO;
	if (!mmap_read_trylock(src_mm)) {
		mmput_async(src_mm);
		return -EAGAIN;
	}
	while (done < len) {
		unsigned long a = addr + done, off = offset_in_page(a);
		unsigned long src = att->src_start + xpmem_vma_att_offset(vma, att, a - off);
		int n = min_t(unsigned long, len - done, PAGE_SIZE - off);
		struct page *page;
		void *kaddr;
		int err;

		err = xpmem_src_page(src_mm, src, write, &page);
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
static bool xpmem_local_pte(struct vm_area_struct *vma, unsigned long addr, pte_t *pte)
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
 * A CONFIG_DEBUG_VM kernel asserts, on every pin get_user_pages takes
 * through a writable PTE (follow_page_pte), that PageAnonExclusive() of
 * that very page holds: true of a tail of a PMD-mapped THP only through
 * its head, which the assertion does not look at.  Such a kernel gets no
 * tail of a PMD-mapped THP (its get_user_pages fails there, as before the
 * fix below); every other kernel does.  Read-only: tests read it.
 */
static bool xpmem_gup_pmd_thp = !IS_ENABLED(CONFIG_DEBUG_VM);
module_param_named(gup_on_pmd_mapped_thp, xpmem_gup_pmd_thp, bool, 0444);
MODULE_PARM_DESC(gup_on_pmd_mapped_thp,
		 "get_user_pages may take tail pages of a PMD-mapped THP through an attachment (N on CONFIG_DEBUG_VM kernels)");

/*
 * Is the source's anonymous @page exclusive to the source (not shared with
 * a fork child or KSM), read the way get_user_pages itself reads it
 * (gup_must_unshare) for the mapping the source has?  The kernel keeps
 * the flag where the mapping level puts it: on every page of a small or a
 * PTE-mapped large folio, but only on the head page of a hugetlb folio and
 * of a PMD-mapped THP (a split hands it to every page).  Reading a tail's
 * own bit there withheld 511 of every 512 pages of a THP-backed export
 * from get_user_pages, and on 6.1 asks PageAnonExclusive() about a
 * hugetlb tail, which it forbids (VM_BUG_ON_PGFLAGS).
 *
 * A large folio is PMD-mapped while its entire mapcount is raised; a PMD
 * mapping with an exclusive head is the folio's only mapping.  A split
 * running at the same time can at worst make this answer false for a
 * moment (the caller then withholds the page, get_user_pages fails for
 * that page once); it cannot make a shared page look exclusive: sharing
 * it (fork, KSM) first invalidates the source range, which zaps the
 * attachment PTE this page was found through, under the PTE lock our
 * caller holds.
 */
static bool xpmem_anon_exclusive(struct page *page)
{
	struct folio *folio = page_folio(page);
	struct page *head = &folio->page;

	if (!folio_test_large(folio))
		return PageAnonExclusive(page);
	if (folio_test_hugetlb(folio))
		return XPMEM_HUGETLB_TAIL_PINNABLE && PageAnonExclusive(head);
	if (PageAnonExclusive(page))
		return true;
	return xpmem_gup_pmd_thp && folio_entire_mapcount(folio) > 0 &&
	       PageAnonExclusive(head);
}

/*
 * vm_normal_page() of a PTE of a local attachment: the source page it
 * maps, so that get_user_pages() (futexes, O_DIRECT, process_vm_*, RDMA)
 * works on attached memory; a page reference or pin it takes is its own.
 * NULL ("not a normal page", as for any VM_MIXEDMAP pfn) whenever the
 * caller could take the page for a counted mapping of this vma:
 *  - the caller is zapping the PTE, or the mm is exiting (the amm above);
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
 *    fork child, or KSM; xpmem_anon_exclusive() reads the flag where the
 *    kernel keeps it for huge pages): get_user_pages would then ask for
 *    the page to be unshared, which a shared mapping cannot do, and would
 *    loop;
 *  - the zero page (the core handles it itself).
 */
static struct page *xpmem_local_find_special_page(struct xpmem_attachment *att,
						  struct vm_area_struct *vma,
						  unsigned long addr)
{
	struct page *page;
	unsigned long pfn;
	pte_t pte;

	if (!xpmem_amm_may_give_page(to_local(att)->amm, vma, addr) ||
	    xpmem_vma_fork_may_copy(vma) || xpmem_in_page_moving_syscall())
		goto withhold;
	if (!xpmem_local_pte(vma, addr, &pte) || !pte_present(pte) || !pte_special(pte))
		goto withhold;
	if ((vma->vm_flags & VM_WRITE) && !pte_write(pte))
		goto withhold;
	pfn = pte_pfn(pte);
	if (is_zero_pfn(pfn) || !pfn_valid(pfn))
		goto withhold;
	page = pfn_to_page(pfn);
	if (PageAnon(page) && !xpmem_anon_exclusive(page))
		goto withhold;
	xpmem_count(pages_given);
	return page;
withhold:
	xpmem_count(pages_withheld);
	return NULL;
}

/* ---- vmas -------------------------------------------------------------------- */

static void xpmem_local_mmap(struct xpmem_attachment *att, struct vm_area_struct *vma)
{
	/*
	 * Not VM_IO / VM_PFNMAP, which get_user_pages refuses.  That also
	 * lets MADV_DOFORK clear VM_DONTCOPY, hence VM_WIPEONFORK (and
	 * ->open) for a fork.
	 */
	xpmem_vm_flags_set(vma, VM_MIXEDMAP | VM_WIPEONFORK);
}

/*
 * A vma of the attachment appeared: the mapping itself, a split or an
 * mremap move in the attaching mm (tracked), or a fork child's copy after
 * the application cleared VM_DONTCOPY (MADV_DOFORK) and VM_WIPEONFORK
 * (MADV_KEEPONFORK).  A child's copy must start empty: its PTEs would be
 * outside this mm's tracking.
 */
static void xpmem_local_vma_open(struct xpmem_attachment *att, struct vm_area_struct *vma)
{
	struct xpmem_amm *amm = to_local(att)->amm;

	if (vma->vm_mm == amm->mn.mm) {
		xpmem_amm_vma_add(amm, vma);
		return;
	}
	/* fork: from 6.11 this runs before the page table copy, and stops it */
	xpmem_vm_flags_set(vma, VM_WIPEONFORK);
	if (XPMEM_FORK_OPENS_AFTER_COPY)	/* copied already: drop it */
		xpmem_att_zap(att, xpmem_vma_att_offset(vma, att, vma->vm_start),
			      vma->vm_end - vma->vm_start);
}

static void xpmem_local_vma_close(struct xpmem_attachment *att, struct vm_area_struct *vma)
{
	struct xpmem_amm *amm = to_local(att)->amm;

	if (vma->vm_mm == amm->mn.mm)
		xpmem_amm_vma_del(amm);
}

/* the last vma is gone (in a worker): stop mirroring the source */
static void xpmem_local_teardown(struct xpmem_attachment *att)
{
	xpmem_mirror_remove(&to_local(att)->mirror);
}

static void xpmem_local_free(struct xpmem_attachment *att)
{
	struct xpmem_local_att *la = to_local(att);

	WARN_ON_ONCE(la->mirror.inserted);
	xpmem_test_unpin_all(la);
	if (la->amm)
		xpmem_amm_put(la->amm);
	xpmem_user_uncharge(la->foreign, XPMEM_OWNS_FOREIGN_MIRROR);
	mmdrop(la->src_mm);
	kfree_rcu(la, rcu);
}

static const struct xpmem_att_ops xpmem_local_att_ops = {
	.name = "local",
	.mmap = xpmem_local_mmap,
	.read_begin = xpmem_local_read_begin,
	.read_retry = xpmem_local_read_retry,
	.install_lock = xpmem_local_install_lock,
	.installed = xpmem_local_installed,
	.resolve_nowait = xpmem_local_resolve_nowait,
	.resolve = xpmem_local_resolve,
	.access = xpmem_local_access,
	.find_special_page = xpmem_local_find_special_page,
	.vma_open = xpmem_local_vma_open,
	.vma_close = xpmem_local_vma_close,
	.teardown = xpmem_local_teardown,
	.free = xpmem_local_free,
};

/* ---- attaching -------------------------------------------------------------- */

/*
 * Is there a vma in [start, end) of the source that the source cannot
 * write?  1 if so, 0 if not, -EINTR if a fatal signal ended the wait for
 * the source's lock (another process's mm: its lock may be held long).
 * Decides, for a writable attachment, whether it must keep write
 * notification (ro_source) to map such pages read-only.  Holes do not
 * count: faults there get SIGBUS either way.  The caller holds mm_users.
 */
static int xpmem_source_has_read_only(struct mm_struct *mm, unsigned long start,
				      unsigned long end)
{
	struct vm_area_struct *vma;
	int ro = 0;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	for (vma = find_vma(mm, start); vma && vma->vm_start < end;
	     vma = find_vma(mm, vma->vm_end)) {
		if (!(vma->vm_flags & VM_WRITE)) {
			ro = 1;
			break;
		}
	}
	mmap_read_unlock(mm);
	return ro;
}

/*
 * The mirror of [src_start, + size) of the segment's mm exists before the
 * attachment is mapped: an invalidation that comes first only zaps an
 * empty mapping.
 */
static int xpmem_local_mirror_source(struct xpmem_local_att *la)
{
	struct xpmem_attachment *att = &la->att;
	int ret;

	if (!mmget_not_zero(la->src_mm))
		return -ENOENT;		/* the exporting process has exited */
	ret = att->writable ? xpmem_source_has_read_only(la->src_mm, att->src_start,
							 att->src_start + att->size) : 0;
	if (ret < 0)
		goto out;
	la->ro_source = ret;
	att->write_notify = la->ro_source;
	/* the first notifier of an mm takes all its locks (xpmem_mm_may_register) */
	ret = xpmem_mm_may_register(la->src_mm);
	if (!ret)
		ret = xpmem_mirror_insert(&la->mirror, &xpmem_local_mirror_ops,
					  la->src_mm, att->src_start, att->size);
out:
	mmput(la->src_mm);
	return ret;
}

/* The access ops' ->attach of a local permit; takes over the caller's reference of @ap. */
static int xpmem_local_attach(struct xpmem_access *ap, unsigned long offset,
			      unsigned long size, unsigned long *vaddr)
{
	struct xpmem_segment *seg = ap->seg;
	struct xpmem_local_att *la;
	int ret;

	ret = xpmem_attach_check_range(ap, offset, size, *vaddr);
	if (ret)
		goto err_put_ap;
	/*
	 * A fixed address over the very memory it would show (the caller's
	 * own segment) would replace that memory with a view of itself:
	 * refused, as the established driver refuses it.
	 */
	ret = -EINVAL;
	if (*vaddr && seg->mm == current->mm &&
	    *vaddr < seg->start + offset + size && seg->start + offset < *vaddr + size)
		goto err_put_ap;
	ret = -ENOMEM;
	la = kzalloc(sizeof(*la), GFP_KERNEL_ACCOUNT);
	if (!la)
		goto err_put_ap;
	ret = xpmem_attachment_init(&la->att, &xpmem_local_att_ops, ap,
				    seg->start + offset, size);
	if (ret) {
		kfree(la);
		goto err_put_ap;
	}
	/* from here the attachment owns @ap's reference; abort frees it all */
	mmgrab(seg->mm);
	la->src_mm = seg->mm;
	xpmem_test_pin_init(la);
	/* a mirror on another user's mm: bounded per attaching user (EDQUOT) */
	if (!uid_eq(seg->uid, current_euid())) {
		la->foreign = xpmem_user_charge(XPMEM_OWNS_FOREIGN_MIRROR);
		if (IS_ERR(la->foreign)) {
			ret = PTR_ERR(la->foreign);
			la->foreign = NULL;
			goto err_abort;
		}
	}
	/* the page lookups of this mm (above); no registration under a copy */
	ret = xpmem_mm_may_register(current->mm);
	if (ret)
		goto err_abort;
	la->amm = xpmem_amm_get(current->mm);
	if (IS_ERR(la->amm)) {
		ret = PTR_ERR(la->amm);
		la->amm = NULL;
		goto err_abort;
	}
	ret = xpmem_local_mirror_source(la);
	if (ret)
		goto err_abort;
	xpmem_test_attach_delay();
	ret = xpmem_attachment_add(&la->att);
	if (ret)
		goto err_abort;
	return xpmem_attachment_map(&la->att, vaddr);

err_abort:
	xpmem_attachment_abort(&la->att);
	return ret;
err_put_ap:
	xpmem_access_put(ap);
	return ret;
}

static const struct xpmem_access_ops xpmem_local_access_ops = {
	.attach = xpmem_local_attach,
};

void xpmem_local_init(void)
{
	xpmem_segment_set_local_ops(&xpmem_local_access_ops);
}
