// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_segment.c - the open file, segments (exported ranges), access
 * permits.  Above ids (xpmem_ids.c); what is made under a segment or a
 * permit (another partition's permit, an attachment) is known here only
 * as a dependent with a ->revoke (xpmem_segment.h), called when the
 * segment or permit ends.
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
#include <linux/pid_namespace.h>
#include <linux/proc_fs.h>
#include <linux/sched/coredump.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>

#include "xpmem_segment.h"
#include "xpmem_stats.h"

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
	INIT_LIST_HEAD(&seg->dependents);
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
	struct xpmem_dependent *d;

	mutex_lock(&ap->lock);
	ap->released = true;
	list_for_each_entry(d, &ap->dependents, node)
		d->ops->revoke(d);
	mutex_unlock(&ap->lock);
}

/*
 * @d is made under @ap (an attachment): revoked when @ap ends.  -ENOENT if
 * it has ended already.  Taken off again by xpmem_access_del_dependent().
 */
int xpmem_access_add_dependent(struct xpmem_access *ap, struct xpmem_dependent *d)
{
	int ret = 0;

	mutex_lock(&ap->lock);
	if (ap->released)
		ret = -ENOENT;
	else
		list_add_tail(&d->node, &ap->dependents);
	mutex_unlock(&ap->lock);
	return ret;
}

void xpmem_access_del_dependent(struct xpmem_access *ap, struct xpmem_dependent *d)
{
	mutex_lock(&ap->lock);
	list_del_init(&d->node);
	mutex_unlock(&ap->lock);
}

/* The same for a segment (another partition's permit on it). */
int xpmem_segment_add_dependent(struct xpmem_segment *seg, struct xpmem_dependent *d)
{
	int ret = 0;

	mutex_lock(&seg->lock);
	if (seg->removed)
		ret = -ENOENT;
	else
		list_add_tail(&d->node, &seg->dependents);
	mutex_unlock(&seg->lock);
	return ret;
}

void xpmem_segment_del_dependent(struct xpmem_segment *seg, struct xpmem_dependent *d)
{
	mutex_lock(&seg->lock);
	list_del_init(&d->node);
	mutex_unlock(&seg->lock);
}

/*
 * Withdraw @seg, which its caller has just marked dead and unpublished
 * (xpmem_file.lock): no new gets, every attachment faults SIGBUS from now
 * on.  Drops the id's reference.
 */
static void xpmem_segment_destroy(struct xpmem_segment *seg)
{
	struct xpmem_dependent *d;
	struct xpmem_access *ap;

	mutex_lock(&seg->lock);
	seg->removed = true;
	list_for_each_entry(ap, &seg->accesses, seg_node)
		xpmem_access_revoke_all(ap);
	list_for_each_entry(d, &seg->dependents, node)
		d->ops->revoke(d);	/* other partitions' permits */
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

	WARN_ON_ONCE(!list_empty(&ap->dependents));
	if (ap->seg)
		xpmem_segment_put(ap->seg);
	put_pid(ap->tgid);
	if (ap->mm)
		mmdrop(ap->mm);
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

	if (ap->ops && ap->ops->release)
		ap->ops->release(ap);
	if (!seg)
		return;
	mutex_lock(&seg->lock);
	list_del_init(&ap->seg_node);
	mutex_unlock(&seg->lock);
}

/* what a permit on a segment of this partition does (xpmem_local.c sets it) */
static const struct xpmem_access_ops *xpmem_local_access_ops;

void xpmem_segment_set_local_ops(const struct xpmem_access_ops *ops)
{
	xpmem_local_access_ops = ops;
}

/*
 * A new permit of the current thread group, counted against its user:
 * on @seg (referenced by the caller, handed over) or, with @seg NULL, on
 * another partition's segment (the caller fills in the remote fields).
 * Not findable until xpmem_access_publish().  ERR_PTR on failure.
 */
struct xpmem_access *xpmem_access_new(const struct xpmem_access_ops *ops,
				      struct xpmem_segment *seg, xpmem_segid_t segid,
				      bool writable)
{
	struct xpmem_user *user = xpmem_user_charge(XPMEM_OWNS_PERMIT);
	struct xpmem_access *ap;

	if (IS_ERR(user))
		return ERR_CAST(user);
	ap = kzalloc(sizeof(*ap), GFP_KERNEL_ACCOUNT);
	if (!ap) {
		xpmem_user_uncharge(user, XPMEM_OWNS_PERMIT);
		return ERR_PTR(-ENOMEM);
	}
	kref_init(&ap->ref);		/* the id's reference */
	ap->ops = ops;
	ap->seg = seg;
	ap->segid = segid;
	ap->size = seg ? seg->size : 0;
	ap->user = user;
	ap->tgid = get_pid(task_tgid(current));
	if (current->mm) {
		mmgrab(current->mm);
		ap->mm = current->mm;
	}
	ap->writable = writable;
	ap->remote_peer = -1;
	mutex_init(&ap->lock);
	INIT_LIST_HEAD(&ap->dependents);
	INIT_LIST_HEAD(&ap->seg_node);
	INIT_LIST_HEAD(&ap->file_node);
	xpmem_count(accesses);
	return ap;
}

/*
 * Publish @ap, complete: on @xf's list and findable by its new apid, in
 * one critical section.  On failure @ap is ended (and given back to a
 * remote owner).
 */
int xpmem_access_publish(struct xpmem_file *xf, struct xpmem_access *ap, xpmem_apid_t *apid)
{
	int ret;

	ap->owner = xf;
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
	/* from here @ap may already be released and gone: not touched again */
	xpmem_count(gets);
	return 0;
}

/* A permit on a segment of this partition (another's: xpmem_import.c). */
int xpmem_access_get(struct xpmem_file *xf, xpmem_segid_t segid, bool writable,
		     xpmem_apid_t *apid)
{
	struct xpmem_segment *seg;
	struct xpmem_access *ap;
	int ret;

	if (segid <= 0)
		return -EINVAL;
	seg = xpmem_segment_find(segid);
	if (IS_ERR(seg))
		return PTR_ERR(seg);
	ret = xpmem_check_permit(seg, writable);
	if (ret) {
		xpmem_segment_put(seg);
		return ret;
	}
	ap = xpmem_access_new(xpmem_local_access_ops, seg, segid, writable);
	if (IS_ERR(ap)) {
		xpmem_segment_put(seg);
		return PTR_ERR(ap);
	}
	mutex_lock(&seg->lock);
	if (seg->removed) {
		mutex_unlock(&seg->lock);
		xpmem_access_put(ap);	/* drops the segment too */
		return -ENOENT;
	}
	list_add_tail(&ap->seg_node, &seg->accesses);
	mutex_unlock(&seg->lock);
	return xpmem_access_publish(xf, ap, apid);
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

void xpmem_file_init(struct xpmem_file *xf)
{
	mutex_init(&xf->lock);
	INIT_LIST_HEAD(&xf->segments);
	INIT_LIST_HEAD(&xf->accesses);
}

/*
 * May the reader of an fdinfo listing (current) see an object that thread
 * group @maker made while its address space was @mm (pinned by the
 * object, so the pointer cannot name another mm meanwhile)?  The ids are
 * secrets (for a 0666 segment the only one) and the listing goes to
 * whoever holds the descriptor (SCM_RIGHTS, fork, exec): so an object is
 * listed only to a reader who could read its ids out of the maker's
 * memory anyway:
 *  - a reader in @mm itself (the maker, its threads, a CLONE_VM child);
 *  - while a thread of @maker still runs in @mm (it has not exec'd or
 *    exited: after that its ids are in no memory anyone can read), a
 *    reader with ptrace read access to that thread
 *    (PTRACE_MODE_READ_FSCREDS, what /proc/PID/environ asks): the
 *    reader's fsuid and fsgid are the thread's real, effective and saved
 *    ids and @mm is dumpable, or the reader has CAP_SYS_PTRACE over the
 *    thread's credentials and, @mm not dumpable, over @mm's user namespace.
 * This is __ptrace_may_access() without the LSM hook, which modules
 * cannot call (ptrace_may_access is not exported).  It takes only RCU:
 * no sleep and no lock, so it may run under xf->lock.
 */
static bool xpmem_reader_may_see(struct pid *maker, struct mm_struct *mm)
{
	const struct cred *cred = current_cred(), *tcred;
	struct task_struct *leader, *t;
	bool ok = false;

	if (!mm)
		return false;
	if (current->mm == mm)
		return true;
	rcu_read_lock();
	leader = pid_task(maker, PIDTYPE_TGID);
	if (leader) {
		for_each_thread(leader, t) {
			if (READ_ONCE(t->mm) != mm)
				continue;
			tcred = __task_cred(t);
			ok = (uid_eq(cred->fsuid, tcred->euid) &&
			      uid_eq(cred->fsuid, tcred->suid) &&
			      uid_eq(cred->fsuid, tcred->uid) &&
			      gid_eq(cred->fsgid, tcred->egid) &&
			      gid_eq(cred->fsgid, tcred->sgid) &&
			      gid_eq(cred->fsgid, tcred->gid)) ||
			     ns_capable_noaudit(tcred->user_ns, CAP_SYS_PTRACE);
			break;
		}
	}
	rcu_read_unlock();
	if (!ok)	/* not the reader's, or exited or exec'd: in no memory now */
		return false;
	/* dumpability after the credentials, as in __ptrace_may_access (commit_creds) */
	smp_rmb();
	return get_dumpable(mm) == SUID_DUMP_USER ||
	       ns_capable_noaudit(mm->user_ns, CAP_SYS_PTRACE);
}

/*
 * /proc/PID/fdinfo of a /dev/xpmem descriptor: what was made through it
 * and is the reader's to see (xpmem_reader_may_see), one line per segment
 * and per permit, each permit followed by its attachments (their ->show;
 * they are in the permit's thread group's memory, shown with it); then,
 * if any were left out, "hidden segments N permits N", so that the
 * reader knows the listing is partial.  Takes xf->lock and each permit's
 * lock.
 */
void xpmem_file_show(struct seq_file *m, struct xpmem_file *xf)
{
	/* pids as the reader's /proc shows them */
	struct pid_namespace *ns = proc_pid_ns(file_inode(m->file)->i_sb);
	unsigned int hidden_segs = 0, hidden_aps = 0;
	struct xpmem_segment *seg;
	struct xpmem_access *ap;
	struct xpmem_dependent *d;

	mutex_lock(&xf->lock);
	list_for_each_entry(seg, &xf->segments, file_node) {
		if (!xpmem_reader_may_see(seg->tgid, seg->mm)) {
			hidden_segs++;
			continue;
		}
		seq_printf(m, "segment %#llx range %#lx-%#lx mode %04o uid %u pid %d\n",
			   (unsigned long long)seg->id.id, seg->start, seg->start + seg->size,
			   seg->mode, from_kuid_munged(seq_user_ns(m), seg->uid),
			   pid_nr_ns(seg->tgid, ns));
	}
	list_for_each_entry(ap, &xf->accesses, file_node) {
		if (!xpmem_reader_may_see(ap->tgid, ap->mm)) {
			hidden_aps++;
			continue;
		}
		seq_printf(m, "permit %#llx segid %#llx %s size %#lx pid %d",
			   (unsigned long long)ap->id.id, (unsigned long long)ap->segid,
			   ap->writable ? "rdwr" : "rdonly", ap->size,
			   pid_nr_ns(ap->tgid, ns));
		if (ap->remote_peer >= 0)
			seq_printf(m, " partition %d", ap->remote_peer);
		seq_putc(m, '\n');
		mutex_lock(&ap->lock);
		list_for_each_entry(d, &ap->dependents, node)
			if (d->ops->show)
				d->ops->show(d, m);
		mutex_unlock(&ap->lock);
	}
	mutex_unlock(&xf->lock);
	if (hidden_segs || hidden_aps)
		seq_printf(m, "hidden segments %u permits %u\n", hidden_segs, hidden_aps);
}
