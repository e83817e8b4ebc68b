// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_ids.c - the names users hold (segids and apids), what each user may
 * own, and who keeps guessing.
 *
 * Ids.  A segid or apid is a positive 64-bit value:
 *
 *   bits 62..56  partition field (0 off a fabric, partition + 1 on one):
 *                routes a cross-partition id to its owner
 *   bits 55..16  40 random bits (get_random_u64())
 *   bits 15..0   tag: SipHash of the rest and the id's kind under a key
 *                drawn at module load
 *
 * For a segment made with a permissive mode the id is the only secret, so
 * guessing one must take about 2^55 tries, and one id tells nothing about
 * the next.  Ids are kept in an rhashtable keyed by the whole id (a
 * collision draws again); a lookup is an RCU hash lookup.
 *
 * Stale or forged.  The tag tells an id this module issued (and whose
 * object may since have ended: a *stale* id, which programs meet whenever
 * a peer goes away) from one it never issued (a *forged* or mistyped one:
 * the tag matches one time in 65536).  A stale id fails with ENOENT and
 * costs nothing; a forged one fails with ENOENT too and is counted as a
 * guess.  A peer partition answers a forged id of its own with
 * -EKEYREJECTED, so the requester counts it against its user.
 *
 * Guessing.  A forged id costs the caller's user a token from a bucket
 * (XPMEM_GUESS_BURST tokens, refilled at XPMEM_GUESS_RATE per second).
 * While a user's bucket is empty, every lookup by id that user makes fails
 * with EAGAIN (also one that would have succeeded: otherwise a guesser
 * would still learn which ids are live) and a rate-limited line goes to
 * the kernel log.  Legitimate programs never pay: only ids they did not
 * get from the driver cost tokens.
 *
 * Users.  Each segment, permit and attachment is counted against the user
 * (kuid) that made it, up to the module parameters max_segments_per_user,
 * max_permits_per_user, max_attachments_per_user (EDQUOT beyond, with a
 * rate-limited log line).  Local attachments of memory another user
 * exported are also counted against max_foreign_mirrors_per_user: each
 * is a mirror on that user's mm, and each mirror that maps a page adds a
 * zap to every invalidation of it (xpmem_mirror.c), so one user's
 * attachments bound the work they add to another user's munmap, reclaim
 * and exit.  The memory itself is charged to the maker's
 * memory cgroup (GFP_KERNEL_ACCOUNT throughout the driver).
 *
 * In a user namespace (a container), the user namespace's owner (the host
 * user who made the outermost one) is charged for each object as well,
 * with the same limits: a rootless container's 65536 subordinate ids
 * would otherwise be 65536 users (xpmem_container_owner()).
 *
 * A user's record stays in the table while it counts objects, and after
 * that until its bucket is full again (the table holds a reference; a
 * collector frees idle records every XPMEM_USER_GC_SECS), so a guesser
 * gains nothing by owning nothing.  Records are charged to the memory
 * cgroup of whoever made them.
 *
 * Locks: xpmem_users_lock (spinlock) protects the user table; a user's
 * bucket has its own spinlock.  Neither is held across anything else.
 */
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/user_namespace.h>
#include <linux/jiffies.h>
#include <linux/moduleparam.h>
#include <linux/random.h>
#include <linux/rhashtable.h>
#include <linux/siphash.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "xpmem_ids.h"
#include "xpmem_stats.h"
#include "xpmem_wire.h"

/* ---- per-user limits and guess throttling ---------------------------------- */

static unsigned int xpmem_max_segments = 65536;
module_param_named(max_segments_per_user, xpmem_max_segments, uint, 0644);
MODULE_PARM_DESC(max_segments_per_user, "segments one user may have at a time (EDQUOT beyond)");

static unsigned int xpmem_max_permits = 65536;
module_param_named(max_permits_per_user, xpmem_max_permits, uint, 0644);
MODULE_PARM_DESC(max_permits_per_user, "access permits one user may hold at a time (EDQUOT beyond)");

static unsigned int xpmem_max_attachments = 65536;
module_param_named(max_attachments_per_user, xpmem_max_attachments, uint, 0644);
MODULE_PARM_DESC(max_attachments_per_user, "attachments one user may have at a time (EDQUOT beyond)");

static unsigned int xpmem_max_foreign_mirrors = 4096;
module_param_named(max_foreign_mirrors_per_user, xpmem_max_foreign_mirrors, uint, 0644);
MODULE_PARM_DESC(max_foreign_mirrors_per_user,
		 "local attachments of other users' memory one user may have at a time (EDQUOT beyond)");

/* forged ids a user may present at once, and per second after that */
static unsigned int xpmem_guess_burst = 10000;
module_param_named(guess_burst, xpmem_guess_burst, uint, 0644);
MODULE_PARM_DESC(guess_burst, "lookups of ids never issued a user may make in a burst");

static unsigned int xpmem_guess_rate = 1000;
module_param_named(guess_rate, xpmem_guess_rate, uint, 0644);
MODULE_PARM_DESC(guess_rate, "lookups of ids never issued a user may make per second after a burst (EAGAIN beyond)");

struct xpmem_user {
	struct hlist_node node;
	kuid_t uid;
	/*
	 * The user who owns the container this user lives in (below), who
	 * pays for its objects as well; NULL on the host.  Referenced.
	 */
	struct xpmem_user *owner;
	refcount_t ref;			/* objects counted here, + lookups, + users it owns */
	atomic_t count[XPMEM_NR_OWNED];
	spinlock_t bucket_lock;		/* tokens, stamp */
	unsigned long tokens;		/* failed lookups left */
	unsigned long stamp;		/* jiffies of the last refill */
};

#define XPMEM_USER_GC_SECS	30

static DEFINE_HASHTABLE(xpmem_users, 8);
static DEFINE_SPINLOCK(xpmem_users_lock);
static void xpmem_users_gc_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(xpmem_users_gc, xpmem_users_gc_fn);

static const char *const xpmem_owned_name[XPMEM_NR_OWNED] = {
	[XPMEM_OWNS_SEGMENT] = "segments",
	[XPMEM_OWNS_PERMIT] = "permits",
	[XPMEM_OWNS_ATTACHMENT] = "attachments",
	[XPMEM_OWNS_FOREIGN_MIRROR] = "foreign_mirrors",
};

static unsigned int xpmem_owned_limit(enum xpmem_owned what)
{
	switch (what) {
	case XPMEM_OWNS_SEGMENT:
		return READ_ONCE(xpmem_max_segments);
	case XPMEM_OWNS_PERMIT:
		return READ_ONCE(xpmem_max_permits);
	case XPMEM_OWNS_FOREIGN_MIRROR:
		return READ_ONCE(xpmem_max_foreign_mirrors);
	default:
		return READ_ONCE(xpmem_max_attachments);
	}
}

static struct xpmem_user *xpmem_user_find_locked(kuid_t uid)
{
	struct xpmem_user *u;

	lockdep_assert_held(&xpmem_users_lock);
	hash_for_each_possible(xpmem_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid))
			return u;
	return NULL;
}

/*
 * Who pays for objects made in the current user namespace besides the
 * maker: a rootless container maps a range of subordinate ids (65536 by
 * default) to its users, each a kuid of its own, which would multiply
 * every per-user limit by that many.  The user namespace whose parent is
 * the initial one was made by a host user (its owner, who was given those
 * ids): that user pays for everything made under it too.  INVALID_UID on
 * the host, or where the maker is that owner.
 */
static kuid_t xpmem_container_owner(kuid_t uid)
{
	const struct user_namespace *ns = current_user_ns();

	if (ns == &init_user_ns)
		return INVALID_UID;
	while (ns->parent != &init_user_ns)
		ns = ns->parent;
	return uid_eq(ns->owner, uid) ? INVALID_UID : ns->owner;
}

static struct xpmem_user *xpmem_user_get_uid(kuid_t uid, kuid_t owner);

/* The record of the current user, referenced; NULL if out of memory. */
static struct xpmem_user *xpmem_user_get(void)
{
	kuid_t uid = current_euid();

	return xpmem_user_get_uid(uid, xpmem_container_owner(uid));
}

/*
 * The record of @uid, referenced, made if need be; a record made here
 * links to the record of @owner (if valid), which it keeps referenced.
 * NULL if out of memory.
 */
static struct xpmem_user *xpmem_user_get_uid(kuid_t uid, kuid_t owner)
{
	struct xpmem_user *u, *fresh, *owner_rec = NULL;

	spin_lock(&xpmem_users_lock);
	u = xpmem_user_find_locked(uid);
	if (u)
		refcount_inc(&u->ref);
	spin_unlock(&xpmem_users_lock);
	if (u)
		return u;

	if (uid_valid(owner)) {
		owner_rec = xpmem_user_get_uid(owner, INVALID_UID);
		if (!owner_rec)
			return NULL;
	}
	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT);
	if (!fresh) {
		if (owner_rec)
			refcount_dec(&owner_rec->ref);
		return NULL;
	}
	fresh->uid = uid;
	fresh->owner = owner_rec;	/* our reference on it moves to the record */
	refcount_set(&fresh->ref, 2);	/* the table's and the caller's */
	spin_lock_init(&fresh->bucket_lock);
	fresh->tokens = READ_ONCE(xpmem_guess_burst);
	fresh->stamp = jiffies;

	spin_lock(&xpmem_users_lock);
	u = xpmem_user_find_locked(uid);
	if (u) {
		refcount_inc(&u->ref);	/* another thread was first */
	} else {
		hash_add(xpmem_users, &fresh->node, __kuid_val(uid));
		u = fresh;
		fresh = NULL;
	}
	spin_unlock(&xpmem_users_lock);
	if (fresh) {
		if (fresh->owner)
			refcount_dec(&fresh->owner->ref);
		kfree(fresh);
	}
	schedule_delayed_work(&xpmem_users_gc, XPMEM_USER_GC_SECS * HZ);
	return u;
}

/* The table keeps its own reference: the collector frees idle records. */
static void xpmem_user_put(struct xpmem_user *u)
{
	refcount_dec(&u->ref);
}

static void xpmem_bucket_refill(struct xpmem_user *u);

/* Free the records nobody references, of users that are not guessing. */
static void xpmem_users_gc_fn(struct work_struct *work)
{
	struct xpmem_user *u;
	struct hlist_node *tmp;
	bool left = false;
	int bkt;

	spin_lock(&xpmem_users_lock);
	hash_for_each_safe(xpmem_users, bkt, tmp, u, node) {
		bool idle;

		spin_lock(&u->bucket_lock);
		xpmem_bucket_refill(u);
		idle = refcount_read(&u->ref) == 1 &&
		       u->tokens >= READ_ONCE(xpmem_guess_burst);
		spin_unlock(&u->bucket_lock);
		if (idle) {
			hash_del(&u->node);
			if (u->owner)	/* collected on a later pass, once idle */
				refcount_dec(&u->owner->ref);
			kfree(u);
		} else {
			left = true;
		}
	}
	spin_unlock(&xpmem_users_lock);
	if (left)
		schedule_delayed_work(&xpmem_users_gc, XPMEM_USER_GC_SECS * HZ);
}

/*
 * Count one more object of kind @what against the current user.  Returns
 * the user (referenced: give it back with xpmem_user_uncharge()), or an
 * ERR_PTR: -EDQUOT over the limit, -ENOMEM.
 */
/* Count one more @what against @u alone; false (and a log line) over its limit. */
static bool xpmem_user_count_one(struct xpmem_user *u, enum xpmem_owned what, kuid_t maker)
{
	if (atomic_inc_return(&u->count[what]) <= xpmem_owned_limit(what))
		return true;
	atomic_dec(&u->count[what]);
	if (uid_eq(u->uid, maker))
		pr_warn_ratelimited("xpmem: user %u reached max_%s_per_user (%u)\n",
				    from_kuid(&init_user_ns, u->uid), xpmem_owned_name[what],
				    xpmem_owned_limit(what));
	else
		pr_warn_ratelimited("xpmem: user %u reached max_%s_per_user (%u) with the users of its container (user %u)\n",
				    from_kuid(&init_user_ns, u->uid), xpmem_owned_name[what],
				    xpmem_owned_limit(what), from_kuid(&init_user_ns, maker));
	xpmem_count(limits_hit);
	return false;
}

/*
 * Count one more object of kind @what against the current user, and
 * against the owner of its container (xpmem_container_owner()).  Returns
 * the user (referenced: give it back with xpmem_user_uncharge()), or an
 * ERR_PTR: -EDQUOT over either limit, -ENOMEM.
 */
struct xpmem_user *xpmem_user_charge(enum xpmem_owned what)
{
	struct xpmem_user *u = xpmem_user_get();

	if (!u)
		return ERR_PTR(-ENOMEM);
	if (!xpmem_user_count_one(u, what, u->uid)) {
		xpmem_user_put(u);
		return ERR_PTR(-EDQUOT);
	}
	if (u->owner && !xpmem_user_count_one(u->owner, what, u->uid)) {
		atomic_dec(&u->count[what]);
		xpmem_user_put(u);
		return ERR_PTR(-EDQUOT);
	}
	return u;
}

void xpmem_user_uncharge(struct xpmem_user *u, enum xpmem_owned what)
{
	if (!u)
		return;
	if (u->owner)
		atomic_dec(&u->owner->count[what]);
	atomic_dec(&u->count[what]);
	xpmem_user_put(u);
}

/* Refill the bucket for the time gone by; with bucket_lock held. */
static void xpmem_bucket_refill(struct xpmem_user *u)
{
	unsigned long now = jiffies, burst = READ_ONCE(xpmem_guess_burst);
	unsigned long add = (now - u->stamp) * READ_ONCE(xpmem_guess_rate) / HZ;

	if (add) {
		u->tokens = min(u->tokens + add, burst);
		u->stamp = now;
	}
}

/*
 * Before a lookup by id: may the current user look ids up?  -EAGAIN while
 * its bucket of failed lookups is empty.
 */
int xpmem_id_lookup_allowed(void)
{
	struct xpmem_user *u = xpmem_user_get();
	int ret = 0;

	if (!u)
		return -ENOMEM;
	spin_lock(&u->bucket_lock);
	xpmem_bucket_refill(u);
	if (!u->tokens)
		ret = -EAGAIN;
	spin_unlock(&u->bucket_lock);
	if (ret) {
		xpmem_count(lookups_throttled);
		pr_warn_ratelimited("xpmem: user %u keeps presenting ids that were never issued; refused for now\n",
				    from_kuid(&init_user_ns, u->uid));
	}
	xpmem_user_put(u);
	return ret;
}

/* A lookup by an id that was never issued: it costs the current user a token. */
void xpmem_id_lookup_forged(void)
{
	struct xpmem_user *u = xpmem_user_get();

	xpmem_count(lookups_forged);
	if (!u)
		return;
	spin_lock(&u->bucket_lock);
	xpmem_bucket_refill(u);
	if (u->tokens)
		u->tokens--;
	spin_unlock(&u->bucket_lock);
	xpmem_user_put(u);
}

/* ---- ids ------------------------------------------------------------------- */

static const struct rhashtable_params xpmem_id_params = {
	.key_len = sizeof(s64),
	.key_offset = offsetof(struct xpmem_id, id),
	.head_offset = offsetof(struct xpmem_id, node),
	.automatic_shrinking = true,
};

static struct rhashtable xpmem_id_tables[XPMEM_NR_ID_KINDS];
static siphash_key_t xpmem_id_key;

#define XPMEM_ID_TAG_MASK	0xffffULL

static u64 xpmem_id_tag(u64 untagged, enum xpmem_id_kind kind)
{
	return siphash_2u64(untagged, kind, &xpmem_id_key) & XPMEM_ID_TAG_MASK;
}

/* The id's partition field: 0 off a fabric, partition + 1 on one (set at init). */
static u64 xpmem_id_field_value;

static u64 xpmem_id_field(void)
{
	return xpmem_id_field_value;
}

/*
 * Give @e a fresh random id of @kind and make it findable.  The caller's
 * object must be complete: a lookup may find it from now on.
 */
int xpmem_id_publish(struct xpmem_id *e, enum xpmem_id_kind kind)
{
	int ret;

	do {
		u64 rnd = get_random_u64() & XPMEM_ID_RANDOM_MASK & ~XPMEM_ID_TAG_MASK;
		u64 untagged = (xpmem_id_field() << XPMEM_ID_PARTITION_SHIFT) | rnd;

		if (!rnd)
			continue;
		e->id = (s64)(untagged | xpmem_id_tag(untagged, kind));
		ret = rhashtable_lookup_insert_fast(&xpmem_id_tables[kind], &e->node,
						    xpmem_id_params);
	} while (ret == -EEXIST);	/* 1 in 2^56 per live id: draw again */
	return ret;
}

/* Make @e unfindable (an RCU grace period later nobody holds it from a lookup). */
void xpmem_id_withdraw(struct xpmem_id *e, enum xpmem_id_kind kind)
{
	rhashtable_remove_fast(&xpmem_id_tables[kind], &e->node, xpmem_id_params);
}

/* The entry of @id of @kind, or NULL.  Caller holds rcu_read_lock(). */
struct xpmem_id *xpmem_id_find(s64 id, enum xpmem_id_kind kind)
{
	return rhashtable_lookup(&xpmem_id_tables[kind], &id, xpmem_id_params);
}

/*
 * Did this module never issue @id as an id of @kind?  (Its tag does not
 * match, or it names another partition or none.)  A stale id is not forged.
 */
bool xpmem_id_forged(s64 id, enum xpmem_id_kind kind)
{
	u64 field = ((u64)id >> XPMEM_ID_PARTITION_SHIFT) & XPMEM_ID_PARTITION_MASK;

	if (id <= 0 || field != xpmem_id_field())
		return true;
	return xpmem_id_tag((u64)id & ~XPMEM_ID_TAG_MASK, kind) != ((u64)id & XPMEM_ID_TAG_MASK);
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

/* ---- wire handles -------------------------------------------------------- */

/*
 * Names this partition gives other partitions (permit and attachment
 * handles, request ids) or that they give us (attachment cookies): a slot
 * of an xarray with a random 32-bit tag above it, so a handle of an ended
 * object does not name the object that reuses its slot.  The owner of the
 * table keeps the full handle in the object and compares it on lookup
 * (xpmem_handle_lookup()).  Unlike user ids these need no secrecy from
 * other users: they never leave the kernel, and a peer that sends a
 * handle of another peer's object is refused by the peer check of every
 * lookup.
 */
int xpmem_handle_alloc(struct xarray *xa, void *obj, u64 *handle, gfp_t gfp)
{
	u32 slot;
	int ret = xa_alloc(xa, &slot, NULL, xa_limit_32b, gfp);

	if (ret)
		return ret;
	/* the handle is in the object before the object is in the table */
	*handle = ((u64)(get_random_u32() | 1) << 32) | slot;
	xa_store(xa, slot, obj, gfp);	/* the slot exists: cannot fail */
	return 0;
}

/* The object of @handle if its stored handle (at @offset in it) matches; under RCU. */
void *xpmem_handle_lookup(struct xarray *xa, u64 handle, size_t offset)
{
	void *obj = xa_load(xa, (u32)handle);

	if (obj && *(u64 *)((char *)obj + offset) != handle)
		obj = NULL;
	return obj;
}

/* Free @handle's slot if it still holds @obj; true if this call freed it. */
bool xpmem_handle_free(struct xarray *xa, u64 handle, void *obj)
{
	return xa_cmpxchg(xa, (u32)handle, obj, NULL, GFP_KERNEL) == obj;
}

/*
 * @partition: this partition's number on a fabric, or -1.  Ids carry it
 * (+ 1) so that another partition's id goes to its owner.
 */
int xpmem_ids_init(int partition)
{
	int kind, ret;

	xpmem_id_field_value = partition + 1;
	get_random_bytes(&xpmem_id_key, sizeof(xpmem_id_key));
	for (kind = 0; kind < XPMEM_NR_ID_KINDS; kind++) {
		ret = rhashtable_init(&xpmem_id_tables[kind], &xpmem_id_params);
		if (ret) {
			while (kind--)
				rhashtable_destroy(&xpmem_id_tables[kind]);
			return ret;
		}
	}
	return 0;
}

/* Module exit: every object is gone by now. */
void xpmem_ids_exit(void)
{
	struct xpmem_user *u;
	struct hlist_node *tmp;
	int kind, bkt;

	for (kind = 0; kind < XPMEM_NR_ID_KINDS; kind++) {
		WARN_ON(atomic_read(&xpmem_id_tables[kind].nelems));
		rhashtable_destroy(&xpmem_id_tables[kind]);
	}
	cancel_delayed_work_sync(&xpmem_users_gc);
	/*
	 * A container user's record references its owner's: those links go
	 * first, so that what is left of a record's count is the table's
	 * alone unless an object is still charged to it (the collector, which
	 * would have dropped them one pass at a time, may not have run since
	 * the last container user's objects went).
	 */
	hash_for_each(xpmem_users, bkt, u, node) {
		if (u->owner) {
			refcount_dec(&u->owner->ref);
			u->owner = NULL;
		}
	}
	hash_for_each_safe(xpmem_users, bkt, tmp, u, node) {
		WARN(refcount_read(&u->ref) != 1, "xpmem: user %u still owns objects\n",
		     from_kuid(&init_user_ns, u->uid));
		hash_del(&u->node);
		kfree(u);
	}
}
