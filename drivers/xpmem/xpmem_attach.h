/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_attach.h - attachments: the core (xpmem_attach.c) that owns the
 * object, its pseudo file and its vmas, and dispatches everything that
 * depends on where the pages are to the attachment's kind, through
 * struct xpmem_att_ops: local (a segment of this partition,
 * xpmem_local.c) or remote (another partition's, xpmem_import.c).  The
 * kinds sit above the core and call it; the core calls a kind only
 * through these ops.
 */
#ifndef _XPMEM_ATTACH_H
#define _XPMEM_ATTACH_H

#include <linux/kref.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "xpmem_segment.h"

struct xpmem_attachment;
struct xpmem_zap_work;
struct xpmem_att_space;

/* a page resolved for a fault: its pfn, and its page if it has one (referenced) */
/*
 * Pages one fault may map: the faulting one and, when the kind can give
 * them without faulting the source (they are present there), those after
 * it.  First touch of an attachment otherwise costs one fault per page.
 */
#define XPMEM_FAULT_AROUND	16

struct xpmem_resolved {
	unsigned long pfn;
	struct page *page;
	bool writable;		/* map it writable */
	/*
	 * Set by the core: how many pages after the faulting one the vma
	 * and the attachment still cover (at most XPMEM_FAULT_AROUND - 1);
	 * the kind may resolve up to that many, present in the source with
	 * the same writability, into @more (referenced), and says how many.
	 */
	unsigned int max_more, nr_more;
	struct page *more[XPMEM_FAULT_AROUND - 1];
};

struct xpmem_att_ops {
	const char *name;			/* "local", "remote" */
	bool remote;				/* for counters and traces */
	/* set vma flags and what the vma may do; the core set the common ones */
	void (*mmap)(struct xpmem_attachment *att, struct vm_area_struct *vma);
	/* sample the invalidation sequence before resolving (may sleep, bounded) */
	unsigned long (*read_begin)(struct xpmem_attachment *att);
	/* with the install lock held: did an invalidation begin since @seq? */
	bool (*read_retry)(struct xpmem_attachment *att, unsigned long seq);
	/* the install lock: invalidation and revoke publish under it */
	spinlock_t *(*install_lock)(struct xpmem_attachment *att);
	/* with the install lock held: a PTE now maps source [src, src + len) */
	void (*installed)(struct xpmem_attachment *att, unsigned long src, unsigned long len);
	/*
	 * Resolve the page at source address @src with the attacher's fault
	 * lock held: must not wait for another mm or a peer; -EWOULDBLOCK
	 * if it would (then the core drops the fault lock and calls
	 * ->resolve); -EBUSY if a lock was busy that is not the attacher's
	 * own, so that trying again shortly may succeed (a fault that cannot
	 * drop its lock does, for a bounded time).
	 */
	int (*resolve_nowait)(struct xpmem_attachment *att, unsigned long src, bool write,
			      struct xpmem_resolved *r);
	/* the same with no lock of the attacher's held: may sleep, bounded */
	int (*resolve)(struct xpmem_attachment *att, unsigned long src, bool write,
		       struct xpmem_resolved *r);
	/* a debugger's access (access_remote_vm); NULL: -EIO */
	int (*access)(struct xpmem_attachment *att, struct vm_area_struct *vma,
		      unsigned long addr, void *buf, int len, int write);
	/* vm_normal_page() of a PTE (get_user_pages); NULL: no page */
	struct page *(*find_special_page)(struct xpmem_attachment *att,
					  struct vm_area_struct *vma, unsigned long addr);
	/* a vma of the attachment appeared (split, mremap, fork) or went */
	void (*vma_open)(struct xpmem_attachment *att, struct vm_area_struct *vma);
	void (*vma_close)(struct xpmem_attachment *att, struct vm_area_struct *vma);
	/* the last vma is gone (in a worker): stop mirroring, or give it back */
	void (*teardown)(struct xpmem_attachment *att);
	/* the last reference: free the kind's part and the object (RCU) */
	void (*free)(struct xpmem_attachment *att);
};

struct xpmem_attachment {
	struct kref ref;
	const struct xpmem_att_ops *ops;
	struct xpmem_access *ap;	/* referenced */
	struct xpmem_dependent dep;	/* in ap's dependents: revoked with it */
	unsigned long src_start, size;	/* remote: src_start 0, offsets */
	bool writable;
	/*
	 * Writes to read-only PTEs go through pfn_mkwrite (ro_source local
	 * attachments, remote ones); otherwise the vma needs no write
	 * notification, which would make it "dirty tracked" and refuse
	 * long-term writable pins (RDMA registration).
	 */
	bool write_notify;
	bool revoked;			/* set under the install lock */
	bool mapped;			/* the one vm_mmap() happened */
	atomic_t nr_vmas;		/* vmas mapping this attachment */
	/*
	 * The address_space it is mapped through and zapped with: its
	 * attaching mm's (one per mm, xpmem_attach.c), at page offsets
	 * [pgoff, pgoff + size / PAGE_SIZE) that no other attachment of that
	 * space uses.  Referenced; fixed for the attachment's life.
	 */
	struct xpmem_att_space *space;
	pgoff_t pgoff;
	struct mm_struct *mm;		/* the mm it was mapped in (mm_count), for fdinfo */
	struct work_struct teardown;	/* queued when the last vma goes */
	struct xpmem_user *user;	/* counted against */
	/*
	 * Errors of faults resolved with the fault lock dropped, by page
	 * index in the attachment, for the retried fault to return (a
	 * fault that dropped its lock can only ask to be retried).
	 */
	struct xarray fault_errors;
};

int xpmem_attachment_init(struct xpmem_attachment *att, const struct xpmem_att_ops *ops,
			  struct xpmem_access *ap, unsigned long offset, unsigned long size);
int xpmem_attachment_add(struct xpmem_attachment *att);
int xpmem_attachment_map(struct xpmem_attachment *att, unsigned long *vaddr);
void xpmem_attachment_abort(struct xpmem_attachment *att);
void xpmem_attachment_revoke(struct xpmem_attachment *att);
void xpmem_att_get(struct xpmem_attachment *att);
void xpmem_att_put(struct xpmem_attachment *att);
int xpmem_mm_may_register(struct mm_struct *mm);
void xpmem_att_zap(struct xpmem_attachment *att, unsigned long offset, unsigned long len);
void xpmem_att_zap_wait(struct xpmem_attachment *att, unsigned long offset,
			unsigned long len);
void xpmem_att_zap_queue(struct xpmem_attachment *att, unsigned long offset,
			 unsigned long len, struct xpmem_zap_work *zw);
int xpmem_attach_check_range(struct xpmem_access *ap, unsigned long offset,
			     unsigned long size, unsigned long vaddr);
unsigned long xpmem_vma_att_offset(struct vm_area_struct *vma, struct xpmem_attachment *att,
				   unsigned long addr);
int xpmem_detach(unsigned long vaddr);
void xpmem_attach_flush(void);
int xpmem_attach_init(void);
void xpmem_attach_exit(void);

#endif /* _XPMEM_ATTACH_H */
