// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_segment.c - segments (exported ranges), access permits, their ids.
 *
 * A segment is a virtual range of the exporting mm, not a set of pages:
 * whatever the owner maps there, now or later, is what attachers see.
 *
 * Ids are random (xpmem_ids.c).  Access control is by permit: mode bits
 * checked against the caller's credentials at get, like a file's (RDWR
 * needs read and write permission, RDONLY read; CAP_DAC_OVERRIDE in the
 * caller's user namespace overrides it only for an owner and group mapped
 * into that namespace, as for an inode); and by owner: a segment is
 * removed, and an apid used, only by the thread group that made it, held
 * by reference (struct pid), whatever descriptor the call comes through
 * (SCM_RIGHTS and CLONE_FILES pass descriptors, not permits).
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
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>

#include "xpmem_internal.h"
#include "xpmem_wire.h"

/* Is @owner (a thread group's struct pid) the caller's thread group? */
static bool xpmem_is_caller(struct pid *owner)
{
	return owner == task_tgid(current);
}

/* ---- segments ----------------------------------------------------------- */

static void xpmem_segment_free(struct kref *ref)
{
	struct xpmem_segment *seg = container_of(ref, struct xpmem_segment, ref);

	mmdrop(seg->mm);
	put_pid(seg->tgid);
	xpmem_user_uncharge(seg->user, XPMEM_OWNS_SEGMENT);
	kfree_rcu(seg, rcu);	/* a lookup by id may still be looking at it */
	xpmem_uncount(segments);
}

void xpmem_segment_put(struct xpmem_segment *seg)
{
	kref_put(&seg->ref, xpmem_segment_free);
}

/* The live segment of @segid, referenced, or NULL. */
static struct xpmem_segment *xpmem_segment_lookup(xpmem_segid_t segid)
{
	struct xpmem_segment *seg = NULL;
	struct xpmem_id *e;

	rcu_read_lock();
	e = xpmem_id_find(segid, XPMEM_ID_SEGMENT);
	if (e) {
		seg = container_of(e, struct xpmem_segment, id);
		if (!kref_get_unless_zero(&seg->ref))
			seg = NULL;
	}
	rcu_read_unlock();
	return seg;
}

/*
 * A user's lookup of a segid: throttled while the user keeps failing
 * (xpmem_ids.c).  Returns the segment referenced, or an ERR_PTR.
 */
static struct xpmem_segment *xpmem_segment_find(xpmem_segid_t segid)
{
	struct xpmem_segment *seg;
	int ret = xpmem_id_lookup_allowed();

	if (ret)
		return ERR_PTR(ret);
	seg = xpmem_segment_lookup(segid);
	if (!seg) {
		if (xpmem_id_forged(segid, XPMEM_ID_SEGMENT))
			xpmem_id_lookup_forged();
		return ERR_PTR(-ENOENT);
	}
	return seg;
}

int xpmem_segment_make(struct xpmem_file *xf, unsigned long vaddr,
		       unsigned long size, umode_t mode, xpmem_segid_t *segid)
{
	struct mm_struct *mm = current->mm;
	struct xpmem_segment *seg;
	struct xpmem_user *user;
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

	user = xpmem_user_charge(XPMEM_OWNS_SEGMENT);
	if (IS_ERR(user))
		return PTR_ERR(user);
	seg = kzalloc(sizeof(*seg), GFP_KERNEL_ACCOUNT);
	if (!seg) {
		xpmem_user_uncharge(user, XPMEM_OWNS_SEGMENT);
		return -ENOMEM;
	}
	kref_init(&seg->ref);		/* the id's reference */
	mmgrab(mm);
	seg->mm = mm;
	seg->user = user;
	seg->start = vaddr;
	seg->size = size;
	seg->tgid = get_pid(task_tgid(current));
	seg->owner = xf;
	seg->uid = current_euid();
	seg->gid = current_egid();
	seg->mode = mode;
	mutex_init(&seg->lock);
	INIT_LIST_HEAD(&seg->accesses);
	INIT_LIST_HEAD(&seg->exports);
	INIT_LIST_HEAD(&seg->file_node);
	xpmem_count(segments);

	/* published complete: on the file's list and findable, at once */
	mutex_lock(&xf->lock);
	ret = xpmem_id_publish(&seg->id, XPMEM_ID_SEGMENT);
	if (!ret) {
		list_add_tail(&seg->file_node, &xf->segments);
		*segid = seg->id.id;
	}
	mutex_unlock(&xf->lock);
	if (ret)
		xpmem_segment_put(seg);
	/* from here @seg may already be dead and gone: not touched again */
	return ret;
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
	xpmem_id_withdraw(&seg->id, XPMEM_ID_SEGMENT);
	return true;
}

int xpmem_segment_remove(struct xpmem_file *xf, xpmem_segid_t segid)
{
	struct xpmem_segment *seg;
	bool claimed;

	if (segid <= 0)
		return -EINVAL;
	seg = xpmem_segment_find(segid);
	if (IS_ERR(seg))
		return PTR_ERR(seg);
	/* maker and file never change: compared without the file's lock */
	if (!xpmem_is_caller(seg->tgid) || seg->owner != xf) {
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
 * like a file's mode: the class is owner, else group, else other, and
 * RDWR needs both the read and the write bit of that class, RDONLY the
 * read bit.
 */
static bool xpmem_mode_allows(struct xpmem_segment *seg, bool writable,
			      bool owner, bool group)
{
	umode_t need = writable ? 0666 : 0444;
	umode_t mode = seg->mode;

	if (owner)
		need &= 0700;
	else if (group)
		need &= 0070;
	else
		need &= 0007;
	return (mode & need) == need;
}

/*
 * As for a file: the mode, else CAP_DAC_OVERRIDE in the caller's user
 * namespace, if the segment's owner and group are mapped there (a
 * container's root overrides its own users' modes, nobody else's).
 */
static int xpmem_check_permit(struct xpmem_segment *seg, bool writable)
{
	struct user_namespace *ns = current_user_ns();

	if (xpmem_mode_allows(seg, writable, uid_eq(current_euid(), seg->uid),
			      in_egroup_p(seg->gid)))
		return 0;
	if (ns_capable(ns, CAP_DAC_OVERRIDE) && kuid_has_mapping(ns, seg->uid) &&
	    kgid_has_mapping(ns, seg->gid))
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
		/* the requester counts a forged id against its user */
		*err = xpmem_id_forged(segid, XPMEM_ID_SEGMENT) ? -EKEYREJECTED : -ENOENT;
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
	put_pid(ap->tgid);
	xpmem_user_uncharge(ap->user, XPMEM_OWNS_PERMIT);
	kfree_rcu(ap, rcu);	/* a lookup by id may still be looking at it */
	xpmem_uncount(accesses);
}

void xpmem_access_put(struct xpmem_access *ap)
{
	kref_put(&ap->ref, xpmem_access_free);
}

/*
 * Look up an apid for use by the current thread group (and only it: the
 * permit is its thread group's, whatever descriptor the call came
 * through).  Throttled like every lookup by id.
 */
struct xpmem_access *xpmem_access_lookup(xpmem_apid_t apid)
{
	struct xpmem_access *ap = NULL;
	struct xpmem_id *e;
	int ret;

	if (apid <= 0)
		return ERR_PTR(-EINVAL);
	ret = xpmem_id_lookup_allowed();
	if (ret)
		return ERR_PTR(ret);
	rcu_read_lock();
	e = xpmem_id_find(apid, XPMEM_ID_PERMIT);
	if (e) {
		ap = container_of(e, struct xpmem_access, id);
		if (!kref_get_unless_zero(&ap->ref))
			ap = NULL;
	}
	rcu_read_unlock();
	if (!ap) {
		if (xpmem_id_forged(apid, XPMEM_ID_PERMIT))
			xpmem_id_lookup_forged();
		return ERR_PTR(-ENOENT);
	}
	if (!xpmem_is_caller(ap->tgid)) {
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
	struct xpmem_user *user;
	struct xpmem_access *ap;
	int peer, ret;

	if (segid <= 0)
		return -EINVAL;
	peer = xpmem_id_partition(segid);
	if (peer < 0) {
		seg = xpmem_segment_find(segid);
		if (IS_ERR(seg))
			return PTR_ERR(seg);
		ret = xpmem_check_permit(seg, writable);
		if (ret)
			goto err_put_seg;
	} else {
		/* another partition's id: guessing those is throttled too */
		ret = xpmem_id_lookup_allowed();
		if (ret)
			return ret;
	}

	user = xpmem_user_charge(XPMEM_OWNS_PERMIT);
	if (IS_ERR(user)) {
		ret = PTR_ERR(user);
		goto err_put_seg;
	}
	ret = -ENOMEM;
	ap = kzalloc(sizeof(*ap), GFP_KERNEL_ACCOUNT);
	if (!ap) {
		xpmem_user_uncharge(user, XPMEM_OWNS_PERMIT);
		goto err_put_seg;
	}
	kref_init(&ap->ref);		/* the id's reference */
	ap->seg = seg;		/* takes over the lookup reference */
	ap->user = user;
	ap->tgid = get_pid(task_tgid(current));
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
			if (ret == -EKEYREJECTED) {	/* the owner never issued it */
				xpmem_id_lookup_forged();
				ret = -ENOENT;
			}
			xpmem_access_put(ap);
			return ret;
		}
	}

	/* published complete: on the file's list and findable, at once */
	mutex_lock(&xf->lock);
	ret = xpmem_id_publish(&ap->id, XPMEM_ID_PERMIT);
	if (!ret) {
		list_add_tail(&ap->file_node, &xf->accesses);
		*apid = ap->id.id;
	}
	mutex_unlock(&xf->lock);
	if (ret) {
		xpmem_access_unlink(ap);
		xpmem_access_put(ap);
		return ret;
	}
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
	xpmem_id_withdraw(&ap->id, XPMEM_ID_PERMIT);
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
		if (all || xpmem_is_caller(ap->tgid)) {
			xpmem_access_claim_locked(xf, ap);
			list_add_tail(&ap->file_node, &aps);
		}
	}
	list_for_each_entry_safe(seg, stmp, &xf->segments, file_node) {
		if (all || xpmem_is_caller(seg->tgid)) {
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
