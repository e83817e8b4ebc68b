/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_segment.h - the open file, segments (exported ranges) and access
 * permits (xpmem_segment.c).  Above ids; below attachments and the
 * partition sides, which it knows only as dependents with ops.
 */
#ifndef _XPMEM_SEGMENT_H
#define _XPMEM_SEGMENT_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/uidgid.h>

#include "xpmem.h"
#include "xpmem_ids.h"

struct seq_file;
struct pid;
struct mm_struct;

/* one per open of /dev/xpmem */
struct xpmem_file {
	/* both lists, and whether each object on them is live (xpmem_segment.c) */
	struct mutex lock;
	struct list_head segments;
	struct list_head accesses;
};

/*
 * Something made under a segment or a permit that must end with it: an
 * attachment under a permit, another partition's permit under a segment.
 * The segment or permit calls ->revoke (with its own lock held, once) when
 * it ends, and ->show for the descriptor's fdinfo listing.
 */
struct xpmem_dependent;

struct xpmem_dependent_ops {
	void (*revoke)(struct xpmem_dependent *d);
	void (*show)(struct xpmem_dependent *d, struct seq_file *m);
};

struct xpmem_dependent {
	struct list_head node;		/* under the segment's or permit's lock */
	const struct xpmem_dependent_ops *ops;
};

struct xpmem_segment {
	struct kref ref;
	struct rcu_head rcu;		/* looked up under RCU */
	struct xpmem_id id;		/* id.id is the segid */
	struct pid *tgid;		/* thread group that made it (referenced) */
	struct xpmem_user *user;	/* counted against */
	struct xpmem_file *owner;
	struct list_head file_node;	/* in owner->segments while live */
	bool dead;			/* under owner->lock: ended, id withdrawn */
	struct mm_struct *mm;		/* exporting mm (mm_count) */
	unsigned long start, size;
	kuid_t uid;
	kgid_t gid;
	umode_t mode;

	struct mutex lock;		/* protects accesses, dependents, removed */
	struct list_head accesses;
	struct list_head dependents;	/* other partitions' permits */
	bool removed;
};

struct xpmem_access;

/* what a kind of permit does (local: xpmem_local.c; remote: xpmem_import.c) */
struct xpmem_access_ops {
	/* attach [offset, offset + size) at *@vaddr (0: anywhere) */
	int (*attach)(struct xpmem_access *ap, unsigned long offset, unsigned long size,
		      unsigned long *vaddr);
	/* the permit ended: give it back to its owner (remote); may be NULL */
	void (*release)(struct xpmem_access *ap);
};

struct xpmem_access {
	struct kref ref;
	struct rcu_head rcu;		/* looked up under RCU */
	const struct xpmem_access_ops *ops;
	struct xpmem_id id;		/* id.id is the apid */
	struct pid *tgid;		/* the only thread group that may use it */
	struct mm_struct *mm;		/* where it was got (mm_count): fdinfo */
	struct xpmem_user *user;	/* counted against */
	struct xpmem_file *owner;
	struct list_head file_node;	/* in owner->accesses while live */
	bool dead;			/* under owner->lock: ended, id withdrawn */
	struct xpmem_segment *seg;	/* NULL: a segment of another partition */
	struct list_head seg_node;	/* in seg->accesses */
	bool writable;
	xpmem_segid_t segid;
	unsigned long size;		/* the segment's */

	/* a permit on another partition's segment (xpmem_import.c) */
	int remote_peer;		/* the owning partition, -1: local */
	u64 remote_gen;			/* its incarnation */
	u64 remote_handle;		/* the owner's name for the permit */

	struct mutex lock;		/* protects dependents, released */
	struct list_head dependents;	/* attachments */
	bool released;
};

int xpmem_segment_make(struct xpmem_file *xf, unsigned long vaddr,
		       unsigned long size, umode_t mode, xpmem_segid_t *segid);
int xpmem_segment_remove(struct xpmem_file *xf, xpmem_segid_t segid);
struct xpmem_segment *xpmem_segment_get_for_peer(xpmem_segid_t segid, bool writable,
						 u32 euid, u32 egid, int *err);
void xpmem_segment_put(struct xpmem_segment *seg);
int xpmem_segment_add_dependent(struct xpmem_segment *seg, struct xpmem_dependent *d);
void xpmem_segment_del_dependent(struct xpmem_segment *seg, struct xpmem_dependent *d);

void xpmem_segment_set_local_ops(const struct xpmem_access_ops *ops);
int xpmem_access_get(struct xpmem_file *xf, xpmem_segid_t segid, bool writable,
		     xpmem_apid_t *apid);
struct xpmem_access *xpmem_access_new(const struct xpmem_access_ops *ops,
				      struct xpmem_segment *seg, xpmem_segid_t segid,
				      bool writable);
int xpmem_access_publish(struct xpmem_file *xf, struct xpmem_access *ap, xpmem_apid_t *apid);
int xpmem_access_release(struct xpmem_file *xf, xpmem_apid_t apid);
struct xpmem_access *xpmem_access_lookup(xpmem_apid_t apid);
void xpmem_access_put(struct xpmem_access *ap);
int xpmem_access_add_dependent(struct xpmem_access *ap, struct xpmem_dependent *d);
void xpmem_access_del_dependent(struct xpmem_access *ap, struct xpmem_dependent *d);

void xpmem_file_init(struct xpmem_file *xf);
void xpmem_file_cleanup(struct xpmem_file *xf, bool all);
void xpmem_file_show(struct seq_file *m, struct xpmem_file *xf);

#endif /* _XPMEM_SEGMENT_H */
