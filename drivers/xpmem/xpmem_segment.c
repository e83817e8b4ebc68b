// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_segment.c - segments (exported ranges), access permits, their ids.
 *
 * A segment is a virtual range of the exporting mm, not a set of pages:
 * whatever the owner maps there, now or later, is what attachers see.
 *
 * Ids: a segid or apid is (partition << 56 | random tag << 32 | slot).
 * The slot indexes an xarray; the tag must match on every lookup, so an
 * id cannot be enumerated into another object.  Access control itself is
 * by permit (mode bits checked against the caller's credentials at get)
 * and by owner: an apid only works in the thread group that got it.
 *
 * Lock order (outer first):
 *   xpmem_file.lock -> xpmem_segment.lock -> xpmem_access.lock
 * All three are mutexes taken only from ioctl/close context.  A revoke
 * under xpmem_access.lock sleeps for acks, which never need these locks.
 * xpmem_access.lock is also taken (last) when an attachment is freed,
 * possibly under the attacher's mmap lock; so none of these locks may be
 * held while taking an mmap lock (attach does its vm_mmap unlocked).
 */
#include <linux/cred.h>
#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "xpmem_internal.h"
#include "xpmem_wire.h"

static DEFINE_XARRAY_ALLOC1(xpmem_segments);
static DEFINE_XARRAY_ALLOC1(xpmem_accesses);
static u32 xpmem_segment_next, xpmem_access_next;

/* The id's partition field: 0 off a fabric, partition + 1 on one. */
static u64 xpmem_id_field(void)
{
	return xpmem_fabric_me() + 1;
}

static s64 xpmem_make_id(u32 slot)
{
	u64 tag = get_random_u32() & XPMEM_ID_TAG_MASK;

	return (s64)((xpmem_id_field() << XPMEM_ID_PARTITION_SHIFT) |
		     (tag << XPMEM_ID_TAG_SHIFT) | slot);
}

/* The partition that owns a well-formed id if it is not this one, or -1. */
int xpmem_id_partition(s64 id)
{
	u64 field = ((u64)id >> XPMEM_ID_PARTITION_SHIFT) & XPMEM_ID_PARTITION_MASK;

	if (id <= 0 || !field || field == xpmem_id_field() ||
	    field > XPMEM_MAX_PARTITIONS)
		return -1;
	return field - 1;
}

/* Returns the slot of a well-formed id of this partition, or 0. */
static u32 xpmem_id_slot(s64 id)
{
	u64 v = (u64)id;

	if (id <= 0)
		return 0;
	if (((v >> XPMEM_ID_PARTITION_SHIFT) & XPMEM_ID_PARTITION_MASK) != xpmem_id_field())
		return 0;	/* another partition's, or none */
	return v & XPMEM_ID_SLOT_MASK;
}

/* ---- segments ----------------------------------------------------------- */

static void xpmem_segment_free(struct kref *ref)
{
	struct xpmem_segment *seg = container_of(ref, struct xpmem_segment, ref);

	xpmem_mm_put(seg->xmm);
	kfree_rcu(seg, rcu);	/* xpmem_segment_lookup() runs under RCU */
	xpmem_uncount(segments);
}

void xpmem_segment_put(struct xpmem_segment *seg)
{
	kref_put(&seg->ref, xpmem_segment_free);
}

static struct xpmem_segment *xpmem_segment_lookup(xpmem_segid_t segid)
{
	struct xpmem_segment *seg;
	u32 slot = xpmem_id_slot(segid);

	if (!slot)
		return NULL;
	rcu_read_lock();
	seg = xa_load(&xpmem_segments, slot);
	if (seg && (seg->segid != segid || !kref_get_unless_zero(&seg->ref)))
		seg = NULL;
	rcu_read_unlock();
	return seg;
}

int xpmem_segment_make(struct xpmem_file *xf, unsigned long vaddr,
		       unsigned long size, umode_t mode, xpmem_segid_t *segid)
{
	struct mm_struct *mm = current->mm;
	struct xpmem_segment *seg;
	struct xpmem_mm *xmm;
	int ret;

	if (!mm)
		return -EINVAL;
	if (vaddr == 0 && size == (unsigned long)XPMEM_MAXADDR_SIZE) {
		size = mm->task_size;	/* the whole user address space */
	} else {
		if (!size || !PAGE_ALIGNED(vaddr) || !PAGE_ALIGNED(size))
			return -EINVAL;
		if (vaddr + size < vaddr || vaddr + size > mm->task_size)
			return -EINVAL;
	}

	seg = kzalloc(sizeof(*seg), GFP_KERNEL);
	if (!seg)
		return -ENOMEM;
	xmm = xpmem_mm_get(mm);
	if (IS_ERR(xmm)) {
		kfree(seg);
		return PTR_ERR(xmm);
	}
	kref_init(&seg->ref);
	seg->xmm = xmm;
	seg->start = vaddr;
	seg->size = size;
	seg->tgid = current->tgid;
	seg->owner = xf;
	seg->uid = current_euid();
	seg->gid = current_egid();
	seg->mode = mode;
	mutex_init(&seg->lock);
	INIT_LIST_HEAD(&seg->accesses);
	INIT_LIST_HEAD(&seg->exports);
	xpmem_count(segments);

	/* publish last: a lookup may find it as soon as it is stored */
	ret = xa_alloc_cyclic(&xpmem_segments, &seg->slot, NULL,
			      XA_LIMIT(1, U32_MAX), &xpmem_segment_next,
			      GFP_KERNEL);
	if (ret < 0) {
		xpmem_segment_put(seg);
		return ret == -EBUSY ? -ENOSPC : ret;
	}
	seg->segid = xpmem_make_id(seg->slot);
	mutex_lock(&xf->lock);
	list_add_tail(&seg->file_node, &xf->segments);
	mutex_unlock(&xf->lock);
	xa_store(&xpmem_segments, seg->slot, seg, GFP_KERNEL);
	*segid = seg->segid;
	return 0;
}

/* Revoke every attachment made through @ap.  Caller holds no locks. */
static void xpmem_access_revoke_all(struct xpmem_access *ap)
{
	struct xpmem_attachment *att;

	mutex_lock(&ap->lock);
	ap->released = true;
	list_for_each_entry(att, &ap->attachments, ap_node)
		xpmem_attachment_revoke(att);
	mutex_unlock(&ap->lock);
}

/* Withdraw @seg: no new gets, every attachment faults SIGBUS from now on. */
static void xpmem_segment_destroy(struct xpmem_segment *seg)
{
	struct xpmem_access *ap;

	xa_erase(&xpmem_segments, seg->slot);
	mutex_lock(&seg->lock);
	seg->removed = true;
	list_for_each_entry(ap, &seg->accesses, seg_node)
		xpmem_access_revoke_all(ap);
	xpmem_export_segment_destroy(seg);	/* other partitions' permits */
	mutex_unlock(&seg->lock);
	xpmem_segment_put(seg);	/* the id's reference */
}

int xpmem_segment_remove(struct xpmem_file *xf, xpmem_segid_t segid)
{
	struct xpmem_segment *seg;

	if (segid <= 0)
		return -EINVAL;
	seg = xpmem_segment_lookup(segid);
	if (!seg)
		return -ENOENT;
	if (seg->tgid != current->tgid || seg->owner != xf) {
		xpmem_segment_put(seg);
		return -EPERM;
	}
	mutex_lock(&xf->lock);
	if (list_empty(&seg->file_node)) {
		/* a concurrent remove won */
		mutex_unlock(&xf->lock);
		xpmem_segment_put(seg);
		return -ENOENT;
	}
	list_del_init(&seg->file_node);
	mutex_unlock(&xf->lock);
	xpmem_segment_destroy(seg);
	xpmem_segment_put(seg);	/* the lookup's reference */
	return 0;
}

/*
 * XPMEM_PERMIT_MODE: the caller's effective ids against the owner's,
 * like a file's mode.  CAP_DAC_OVERRIDE bypasses it, as for files.
 */
static bool xpmem_mode_allows(struct xpmem_segment *seg, bool writable,
			      bool owner, bool group)
{
	umode_t need = writable ? 0222 : 0444;
	umode_t mode = seg->mode;

	if (owner)
		mode &= 0700;
	else if (group)
		mode &= 0070;
	else
		mode &= 0007;
	return mode & need;
}

static int xpmem_check_permit(struct xpmem_segment *seg, bool writable)
{
	if (xpmem_mode_allows(seg, writable, uid_eq(current_euid(), seg->uid),
			      in_egroup_p(seg->gid)))
		return 0;
	if (capable(CAP_DAC_OVERRIDE))
		return 0;
	return -EACCES;
}

/*
 * GET from another partition: the requester's effective uid and gid as
 * numbers of the initial user namespace (partitions of one machine share
 * one id space, as the nodes of a cluster do).  No capability crosses a
 * partition: root there is nobody special here.  Returns the segment
 * referenced, or NULL with *err set.
 */
struct xpmem_segment *xpmem_segment_get_for_peer(xpmem_segid_t segid, bool writable,
						 u32 euid, u32 egid, int *err)
{
	kuid_t uid = make_kuid(&init_user_ns, euid);
	kgid_t gid = make_kgid(&init_user_ns, egid);
	struct xpmem_segment *seg = xpmem_segment_lookup(segid);

	if (!seg) {
		*err = -ENOENT;
		return NULL;
	}
	if (!uid_valid(uid) || !gid_valid(gid) ||
	    !xpmem_mode_allows(seg, writable, uid_eq(uid, seg->uid), gid_eq(gid, seg->gid))) {
		xpmem_segment_put(seg);
		*err = -EACCES;
		return NULL;
	}
	return seg;
}

/* ---- access permits ------------------------------------------------------- */

static void xpmem_access_free(struct kref *ref)
{
	struct xpmem_access *ap = container_of(ref, struct xpmem_access, ref);

	WARN_ON_ONCE(!list_empty(&ap->attachments));
	if (ap->seg)
		xpmem_segment_put(ap->seg);
	kfree_rcu(ap, rcu);	/* xpmem_access_lookup() runs under RCU */
	xpmem_uncount(accesses);
}

void xpmem_access_put(struct xpmem_access *ap)
{
	kref_put(&ap->ref, xpmem_access_free);
}

/* Look up an apid for use by the current thread group. */
struct xpmem_access *xpmem_access_lookup(xpmem_apid_t apid)
{
	struct xpmem_access *ap;
	u32 slot = xpmem_id_slot(apid);

	if (!slot)
		return ERR_PTR(-EINVAL);
	rcu_read_lock();
	ap = xa_load(&xpmem_accesses, slot);
	if (ap && (ap->apid != apid || !kref_get_unless_zero(&ap->ref)))
		ap = NULL;
	rcu_read_unlock();
	if (!ap)
		return ERR_PTR(-ENOENT);
	if (ap->tgid != current->tgid) {
		xpmem_access_put(ap);
		return ERR_PTR(-EPERM);
	}
	return ap;
}

/* Take @ap off its segment, or give a remote permit back to its owner. */
static void xpmem_access_unlink(struct xpmem_access *ap)
{
	struct xpmem_segment *seg = ap->seg;

	if (!seg) {
		xpmem_import_release(ap);
		return;
	}
	mutex_lock(&seg->lock);
	list_del_init(&ap->seg_node);
	mutex_unlock(&seg->lock);
}

int xpmem_access_get(struct xpmem_file *xf, xpmem_segid_t segid, bool writable,
		     xpmem_apid_t *apid)
{
	struct xpmem_segment *seg = NULL;
	struct xpmem_access *ap;
	int peer, ret;

	if (segid <= 0)
		return -EINVAL;
	peer = xpmem_id_partition(segid);
	if (peer < 0) {
		seg = xpmem_segment_lookup(segid);
		if (!seg)
			return -ENOENT;
		ret = xpmem_check_permit(seg, writable);
		if (ret)
			goto err_put_seg;
	}

	ret = -ENOMEM;
	ap = kzalloc(sizeof(*ap), GFP_KERNEL);
	if (!ap)
		goto err_put_seg;
	kref_init(&ap->ref);
	ap->seg = seg;		/* takes over the lookup reference */
	ap->tgid = current->tgid;
	ap->owner = xf;
	ap->writable = writable;
	ap->remote_peer = -1;
	mutex_init(&ap->lock);
	INIT_LIST_HEAD(&ap->attachments);
	INIT_LIST_HEAD(&ap->seg_node);
	xpmem_count(accesses);

	if (seg) {
		mutex_lock(&seg->lock);
		if (seg->removed) {
			mutex_unlock(&seg->lock);
			xpmem_access_put(ap);
			return -ENOENT;
		}
		list_add_tail(&ap->seg_node, &seg->accesses);
		mutex_unlock(&seg->lock);
	} else {
		/* the owning partition checks the permit */
		ret = xpmem_import_get(peer, segid, writable, ap);
		if (ret) {
			xpmem_access_put(ap);
			return ret;
		}
	}

	ret = xa_alloc_cyclic(&xpmem_accesses, &ap->slot, NULL,
			      XA_LIMIT(1, U32_MAX), &xpmem_access_next,
			      GFP_KERNEL);
	if (ret < 0) {
		xpmem_access_unlink(ap);
		xpmem_access_put(ap);
		return ret == -EBUSY ? -ENOSPC : ret;
	}
	ap->apid = xpmem_make_id(ap->slot);
	mutex_lock(&xf->lock);
	list_add_tail(&ap->file_node, &xf->accesses);
	mutex_unlock(&xf->lock);
	xa_store(&xpmem_accesses, ap->slot, ap, GFP_KERNEL);
	*apid = ap->apid;
	xpmem_count(gets);
	return 0;

err_put_seg:
	if (seg)
		xpmem_segment_put(seg);
	return ret;
}

/* Withdraw @ap: its id stops working and its attachments fault SIGBUS. */
static void xpmem_access_destroy(struct xpmem_access *ap)
{
	xa_erase(&xpmem_accesses, ap->slot);
	xpmem_access_revoke_all(ap);
	xpmem_access_unlink(ap);
	xpmem_access_put(ap);	/* the id's reference */
}

int xpmem_access_release(struct xpmem_file *xf, xpmem_apid_t apid)
{
	struct xpmem_access *ap = xpmem_access_lookup(apid);

	if (IS_ERR(ap))
		return PTR_ERR(ap);
	mutex_lock(&xf->lock);
	if (ap->owner != xf || list_empty(&ap->file_node)) {
		int ret = ap->owner != xf ? -EPERM : -ENOENT;

		mutex_unlock(&xf->lock);
		xpmem_access_put(ap);
		return ret;
	}
	list_del_init(&ap->file_node);
	mutex_unlock(&xf->lock);
	xpmem_access_destroy(ap);
	xpmem_access_put(ap);
	return 0;
}

/*
 * Close of /dev/xpmem: drop what the closing thread group made (@all:
 * everything, on the last close).  A forked child closing its inherited
 * descriptor therefore leaves the parent's segments and permits alone.
 */
void xpmem_file_cleanup(struct xpmem_file *xf, bool all)
{
	struct xpmem_segment *seg, *stmp;
	struct xpmem_access *ap, *atmp;
	LIST_HEAD(segs);
	LIST_HEAD(aps);

	mutex_lock(&xf->lock);
	list_for_each_entry_safe(ap, atmp, &xf->accesses, file_node)
		if (all || ap->tgid == current->tgid)
			list_move_tail(&ap->file_node, &aps);
	list_for_each_entry_safe(seg, stmp, &xf->segments, file_node)
		if (all || seg->tgid == current->tgid)
			list_move_tail(&seg->file_node, &segs);
	mutex_unlock(&xf->lock);

	list_for_each_entry_safe(ap, atmp, &aps, file_node) {
		list_del_init(&ap->file_node);
		xpmem_access_destroy(ap);
	}
	list_for_each_entry_safe(seg, stmp, &segs, file_node) {
		list_del_init(&seg->file_node);
		xpmem_segment_destroy(seg);
	}
}

void xpmem_segment_ids_destroy(void)
{
	WARN_ON(!xa_empty(&xpmem_segments));
	WARN_ON(!xa_empty(&xpmem_accesses));
	xa_destroy(&xpmem_segments);
	xa_destroy(&xpmem_accesses);
}
