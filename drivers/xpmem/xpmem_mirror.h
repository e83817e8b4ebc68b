/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_mirror.h - the reverse map: every secondary mapping of an
 * exporting mm is a mirror, an mmu_interval_notifier on the source range
 * it maps (xpmem_mirror.c).  A mirror knows what maps it only as ops: it
 * knows no attachment and no partition.  Also here: zapping attachment
 * mappings and looking up a source page, which both kinds of mirror use.
 */
#ifndef _XPMEM_MIRROR_H
#define _XPMEM_MIRROR_H

#include <linux/fs.h>
#include <linux/interval_tree.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/spinlock.h>

/* attachment vmas are files of the driver's pseudo filesystem */
#define XPMEM_FS_MAGIC	0x58504d4d	/* "XPMM" */

static inline bool xpmem_vma_is_attachment(struct vm_area_struct *vma)
{
	return vma->vm_file && vma->vm_file->f_inode->i_sb->s_magic == XPMEM_FS_MAGIC;
}

struct xpmem_mirror;
struct xpmem_mirror_set;

/* a zap of an attachment mapping handed to the zap worker (xpmem_mirror.c) */
struct xpmem_zap_work {
	struct work_struct work;
	struct address_space *mapping;
	loff_t start, len;
	struct completion done;
};

/*
 * What a mirror's invalidation in two steps keeps between them: each kind
 * uses its own member (its ops below know which).
 */
struct xpmem_mirror_wait {
	union {
		struct xpmem_zap_work zap;	/* local: the queued zap */
		struct completion ack;		/* remote: the peer's ACK */
	};
};

struct xpmem_mirror_ops {
	/*
	 * Take down every translation of source range [start, end) and
	 * return once none can be used any more.  Called from the exporting
	 * mm's notifier in blockable context; may sleep, bounded.
	 */
	void (*invalidate)(struct xpmem_mirror *m, unsigned long start,
			   unsigned long end);
	/*
	 * Optional, the same in two steps: ->invalidate_begin starts taking
	 * the range down and returns true if there is something to wait for
	 * (then ->invalidate_wait waits for it, with the same @w, and only
	 * then is the range down), false if it was all done already.
	 * Between the two the other mirrors of the invalidation begin too
	 * (7.1's two-pass notifier, or a batch: xpmem_mirror.c), so their
	 * zaps and INVALs are in flight together.  Both may sleep.
	 */
	bool (*invalidate_begin)(struct xpmem_mirror *m, unsigned long start,
				 unsigned long end, struct xpmem_mirror_wait *w);
	void (*invalidate_wait)(struct xpmem_mirror *m, unsigned long start,
				unsigned long end, struct xpmem_mirror_wait *w);
};

struct xpmem_mirror {
	struct mmu_interval_notifier mni;	/* the source range */
	const struct xpmem_mirror_ops *ops;
	spinlock_t lock;	/* publishes the sequence to faults (install) */
	/*
	 * [mapped_start, mapped_end): the source addresses of which this
	 * mirror may have given out a translation (empty: start >= end).
	 * Under ->lock: widened by every install or publication after its
	 * sequence check (xpmem_mirror_mapped()), narrowed by an invalidation
	 * at the end it took down.  An invalidation outside it has nothing
	 * to take down: no ->invalidate, no sleep, even for the OOM reaper.
	 */
	unsigned long mapped_start, mapped_end;
	bool released;		/* the exporting mm went through exit_mmap */
	bool inserted;
	/*
	 * One wait per invalidation on kernels whose notifier has one pass
	 * (xpmem_mirror.c, "Batches"): the mirrors of one exporting mm with
	 * ->invalidate_begin are also in that mm's set, so the first of them
	 * an invalidation reaches can start the zaps of all the others.
	 * ->batched (under ->lock): some invalidation's batch holds this
	 * mirror and will end it; [batch_start, batch_end) is its part.
	 */
	struct xpmem_mirror_set *set;
	struct interval_tree_node set_node;	/* in set->mirrors */
	struct list_head batch_link;		/* in the batch that holds it */
	unsigned long batch_start, batch_end;
	struct xpmem_mirror_wait batch_wait;
	bool batched;
};

int xpmem_mirror_insert(struct xpmem_mirror *m, const struct xpmem_mirror_ops *ops,
			struct mm_struct *mm, unsigned long start, unsigned long size);
void xpmem_mirror_remove(struct xpmem_mirror *m);
unsigned long xpmem_mirror_read_begin(struct xpmem_mirror *m);
bool xpmem_mirror_read_retry(struct xpmem_mirror *m, unsigned long seq);
void xpmem_mirror_mapped(struct xpmem_mirror *m, unsigned long start, unsigned long len);

void xpmem_zap_mapping(struct address_space *mapping, loff_t start, loff_t len);
void xpmem_zap_mapping_wait(struct address_space *mapping, loff_t start, loff_t len);
void xpmem_zap_mapping_queue(struct xpmem_zap_work *zw, struct address_space *mapping,
			     loff_t start, loff_t len);
void xpmem_zap_mapping_wait_queued(struct xpmem_zap_work *zw);

int xpmem_src_page(struct mm_struct *mm, unsigned long addr, bool write,
		   struct page **page);

int xpmem_mirror_init(void);
void xpmem_mirror_exit(void);

#endif /* _XPMEM_MIRROR_H */
