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
 * Lifetime: a segment or permit belongs to the file it was made through.
 * That file's lock (xpmem_file.lock) alone decides whether the object is
 * live: it is put on the file's list and its id is published in one
 * critical section, once the object is complete, and it is taken off the
 * list, marked dead and its id withdrawn in one critical section by
 * exactly one of the paths that end it (remove/release by id, ->flush of
 * the thread group that made it, ->release of the file).  Whoever marks it
 * dead destroys it; every other path sees "dead" under the same lock and
 * leaves it alone.  Lookups by id (RCU + kref_get_unless_zero) find only
 * published objects, and a reference keeps a dead object's memory, not
 * its use.
 *
 * Lock order (outer first):
 *   xpmem_file.lock -> xpmem_segment.lock -> xpmem_access.lock
 * All three are mutexes taken only from ioctl/close context.  A revoke
 * under xpmem_access.lock zaps attachments (i_mmap_rwsem, page table
 * locks), which never need these locks.  xpmem_access.lock is also taken
 * (last) when an attachment is freed; so none of these locks may be held
 * while taking an mmap lock (attach does its vm_mmap unlocked).
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

	mmdrop(seg->mm);
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
	u32 slot;
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

	seg = kzalloc(sizeof(*seg), GFP_KERNEL_ACCOUNT);
	if (!seg)
		return -ENOMEM;
	kref_init(&seg->ref);		/* the id's reference */
	mmgrab(mm);
	seg->mm = mm;
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
	INIT_LIST_HEAD(&seg->file_node);
	xpmem_count(segments);

	/* a slot, reserved (not findable) until the segment is published */
	ret = xa_alloc_cyclic(&xpmem_segments, &slot, NULL,
			      XA_LIMIT(1, U32_MAX), &xpmem_segment_next,
			      GFP_KERNEL);
	if (ret < 0) {
		xpmem_segment_put(seg);
		return ret == -EBUSY ? -ENOSPC : ret;
	}
	seg->slot = slot;
	seg->segid = xpmem_make_id(slot);

	/* published complete: on the file's list and findable, at once */
	mutex_lock(&xf->lock);
	list_add_tail(&seg->file_node, &xf->segments);
	xa_store(&xpmem_segments, slot, seg, GFP_KERNEL);
	*segid = seg->segid;
	mutex_unlock(&xf->lock);
	/* from here @seg may already be dead and gone: not touched again */
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

/*
 * Withdraw @seg, which its caller has just marked dead and unpublished
 * (xpmem_file.lock): no new gets, every attachment faults SIGBUS from now
 * on.  Drops the id's reference.
 */
static void xpmem_segment_destroy(struct xpmem_segment *seg)
{
	struct xpmem_access *ap;

	mutex_lock(&seg->lock);
	seg->removed = true;
	list_for_each_entry(ap, &seg->accesses, seg_node)
		xpmem_access_revoke_all(ap);
	xpmem_export_segment_destroy(seg);	/* other partitions' permits */
	mutex_unlock(&seg->lock);
	xpmem_segment_put(seg);	/* the id's reference */
}

/* With xf->lock held: @seg is ours to end now (or someone else's already). */
static bool xpmem_segment_claim_locked(struct xpmem_file *xf, struct xpmem_segment *seg)
{
	lockdep_assert_held(&xf->lock);
	if (seg->dead)
		return false;
	seg->dead = true;
	list_del_init(&seg->file_node);
	xa_erase(&xpmem_segments, seg->slot);
	return true;
}

int xpmem_segment_remove(struct xpmem_file *xf, xpmem_segid_t segid)
{
	struct xpmem_segment *seg;
	bool claimed;

	if (segid <= 0)
		return -EINVAL;
	seg = xpmem_segment_lookup(segid);
	if (!seg)
		return -ENOENT;
	/* the owning file never changes: compared without its lock */
	if (seg->tgid != current->tgid || seg->owner != xf) {
		xpmem_segment_put(seg);
		return -EPERM;
	}
	mutex_lock(&xf->lock);
	claimed = xpmem_segment_claim_locked(xf, seg);
	mutex_unlock(&xf->lock);
	if (claimed)
		xpmem_segment_destroy(seg);
	xpmem_segment_put(seg);	/* the lookup's reference */
	return claimed ? 0 : -ENOENT;	/* a concurrent end won */
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
	u32 slot;

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
	ap = kzalloc(sizeof(*ap), GFP_KERNEL_ACCOUNT);
	if (!ap)
		goto err_put_seg;
	kref_init(&ap->ref);		/* the id's reference */
	ap->seg = seg;		/* takes over the lookup reference */
	ap->tgid = current->tgid;
	ap->owner = xf;
	ap->writable = writable;
	ap->remote_peer = -1;
	mutex_init(&ap->lock);
	INIT_LIST_HEAD(&ap->attachments);
	INIT_LIST_HEAD(&ap->seg_node);
	INIT_LIST_HEAD(&ap->file_node);
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

	ret = xa_alloc_cyclic(&xpmem_accesses, &slot, NULL,
			      XA_LIMIT(1, U32_MAX), &xpmem_access_next,
			      GFP_KERNEL);
	if (ret < 0) {
		xpmem_access_unlink(ap);
		xpmem_access_put(ap);
		return ret == -EBUSY ? -ENOSPC : ret;
	}
	ap->slot = slot;
	ap->apid = xpmem_make_id(slot);
	/* published complete: on the file's list and findable, at once */
	mutex_lock(&xf->lock);
	list_add_tail(&ap->file_node, &xf->accesses);
	xa_store(&xpmem_accesses, slot, ap, GFP_KERNEL);
	*apid = ap->apid;
	mutex_unlock(&xf->lock);
	xpmem_count(gets);
	return 0;

err_put_seg:
	if (seg)
		xpmem_segment_put(seg);
	return ret;
}

/*
 * Withdraw @ap, which its caller has just marked dead and unpublished:
 * its attachments fault SIGBUS.  Drops the id's reference.
 */
static void xpmem_access_destroy(struct xpmem_access *ap)
{
	xpmem_access_revoke_all(ap);
	xpmem_access_unlink(ap);
	xpmem_access_put(ap);	/* the id's reference */
}

/* With xf->lock held: @ap is ours to end now (or someone else's already). */
static bool xpmem_access_claim_locked(struct xpmem_file *xf, struct xpmem_access *ap)
{
	lockdep_assert_held(&xf->lock);
	if (ap->dead)
		return false;
	ap->dead = true;
	list_del_init(&ap->file_node);
	xa_erase(&xpmem_accesses, ap->slot);
	return true;
}

int xpmem_access_release(struct xpmem_file *xf, xpmem_apid_t apid)
{
	struct xpmem_access *ap = xpmem_access_lookup(apid);
	bool claimed;

	if (IS_ERR(ap))
		return PTR_ERR(ap);
	/* the owning file never changes: compared without its lock */
	if (ap->owner != xf) {
		xpmem_access_put(ap);
		return -EPERM;
	}
	mutex_lock(&xf->lock);
	claimed = xpmem_access_claim_locked(xf, ap);
	mutex_unlock(&xf->lock);
	if (claimed)
		xpmem_access_destroy(ap);
	xpmem_access_put(ap);
	return claimed ? 0 : -ENOENT;	/* a concurrent end won */
}

/*
 * Close of /dev/xpmem: drop what the closing thread group made (@all:
 * everything, on the last close).  A forked child closing its inherited
 * descriptor therefore leaves the parent's segments and permits alone.
 * The objects are claimed under the lock and destroyed after it: a
 * claimed object's file_node belongs to this function's private list.
 */
void xpmem_file_cleanup(struct xpmem_file *xf, bool all)
{
	struct xpmem_segment *seg, *stmp;
	struct xpmem_access *ap, *atmp;
	LIST_HEAD(segs);
	LIST_HEAD(aps);

	mutex_lock(&xf->lock);
	list_for_each_entry_safe(ap, atmp, &xf->accesses, file_node) {
		if (all || ap->tgid == current->tgid) {
			xpmem_access_claim_locked(xf, ap);
			list_add_tail(&ap->file_node, &aps);
		}
	}
	list_for_each_entry_safe(seg, stmp, &xf->segments, file_node) {
		if (all || seg->tgid == current->tgid) {
			xpmem_segment_claim_locked(xf, seg);
			list_add_tail(&seg->file_node, &segs);
		}
	}
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
