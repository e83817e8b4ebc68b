// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_export.c - the owner's side of cross-partition export: permits
 * and attachments that other partitions hold on our segments, the faults
 * we resolve for them, and the invalidations we send them and wait for.
 *
 * Objects:
 *   xpmem_export      a permit a peer got on one of our segments (GET).
 *                     It references the segment; it is named on the wire
 *                     by a tagged handle that only works for that peer in
 *                     that incarnation (gen).
 *   xpmem_export_att  an attachment the peer made through it (ATTACH):
 *                     a range of the segment, and a mirror of the
 *                     exporting mm (xpmem_mirror.c), so every
 *                     invalidation of the range reaches it.
 *
 * A fault (FAULT) is resolved like a local one: sample the mirror's
 * invalidation sequence, look the page up in the source mm with the mmap
 * lock held for read, drop the page reference, and publish the page's
 * physical address to the peer only if no invalidation hit the mirror in
 * between: the reply is put in the ring under the mirror's lock, and an
 * invalidation publishes its sequence under that same lock before it
 * sends INVAL.  The ring is FIFO, so the peer sees the reply before the
 * INVAL that voids it.  No page stays referenced.
 *
 * An invalidation (the mirror's ->invalidate, called by the exporting
 * mm's notifier) takes an ack slot, sends INVAL and sleeps until the
 * peer's ACK frees the slot.  Bounds: a peer that leaves an ack
 * outstanding for longer than the peer timeout is fenced
 * (xpmem_export_check_acks(), from the poll thread), and the waiter fences
 * it itself after XPMEM_ACK_FENCE_FACTOR timeouts; its death completes
 * every slot it held; its mappings are revoked.  A non-blockable
 * invalidation (OOM reaper) is refused before it sends anything
 * (xpmem_mirror.c).
 * Revocation in the emulated machine means we stop honouring the peer:
 * no reply, no fault, every rmap entry gone.  The emulation cannot stop
 * its QEMU from reading our RAM file; real hardware would close the
 * peer's access in the fabric's firewall before the slots complete.
 *
 * Security: a handle is checked against the sending peer and its
 * generation, offsets against the attachment, pages come only from the
 * exported range of the segment's own mm (xpmem_src_page() refuses pfn
 * and attachment vmas), and writes only through writable permits.
 *
 * Locks (outer first):
 *   xpmem_segment.lock -> xpmem_export.lock
 *     (segment removal revokes exports: sends INVALs, waits for ACKs;
 *      no invalidation needs either lock)
 *   xpmem_mirror.lock -> fabric tx_lock (a fault's reply is sent under
 *     the mirror's lock; neither sleeps)
 *   ack slots: xpmem_export_peer.lock, a spinlock (poll thread too).
 * Sleeping: requests are handled in xpmem_export_wq, one worker per
 * peer; ack waits sleep in ->invalidate, never under a spinlock.
 */
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pfn.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "xpmem_attach.h"
#include "xpmem_export.h"
#include "xpmem_ids.h"
#include "xpmem_mirror.h"
#include "xpmem_proto.h"
#include "xpmem_segment.h"
#include "xpmem_stats.h"
#include "xpmem_trace.h"

struct xpmem_export {
	struct kref ref;
	struct rcu_head rcu;
	u64 handle;			/* tag << 32 | slot in xpmem_exports */
	int peer;
	u64 gen;			/* the peer's incarnation */
	struct xpmem_segment *seg;	/* referenced */
	bool writable;
	struct xpmem_dependent dep;	/* in seg's dependents: revoked with it */
	struct mutex lock;		/* atts, released */
	struct list_head atts;
	bool released;
};

struct xpmem_export_att {
	struct xpmem_mirror mirror;	/* of the segment's mm */
	struct kref ref;
	struct rcu_head rcu;
	u64 handle;			/* tag << 32 | slot in xpmem_export_atts */
	u64 cookie;			/* the peer's name for it, in INVALs */
	struct xpmem_export *exp;	/* referenced */
	struct mm_struct *mm;		/* the segment's (its reference) */
	unsigned long src_start, size;
	bool revoked;			/* under mirror.lock */
	struct list_head exp_node;	/* in exp->atts, under exp->lock */
};

static DEFINE_XARRAY_ALLOC1(xpmem_exports);
static DEFINE_XARRAY_ALLOC1(xpmem_export_atts);

/* ---- ack slots: invalidations waiting for a peer ---------------------------- */

/* an ack wait waits this many peer timeouts before fencing the peer itself */
#define XPMEM_ACK_FENCE_FACTOR	4

/*
 * A peer may not routinely keep this partition's invalidations waiting
 * for most of a peer timeout, each just short of the fence above: of its
 * last XPMEM_ACK_HISTORY acknowledgments, XPMEM_SLOW_ACKS_FENCE that each
 * took longer than half the peer timeout fence it.  So a peer that stalls
 * every other invalidation is fenced at its fourth slow ack; one that is
 * slow now and then (a loaded host) is not.  An ack's time is the peer's
 * time on it: from when it was sent or the peer's previous ack, whichever
 * is later (a peer works through INVALs one after another: the 100th of
 * one invalidation's INVALs waited for the 99 before it, which is not its
 * delay).  The overdue check below measures the same way: a peer is
 * fenced for an ack only if it acknowledged nothing for a whole timeout.
 */
#define XPMEM_ACK_HISTORY	8
#define XPMEM_SLOW_ACKS_FENCE	4

struct xpmem_ack_slot {
	struct completion *done;	/* NULL: free */
	unsigned long sent;		/* jiffies */
	u64 sent_ns;			/* for the tracepoint */
	u16 tag;			/* so a late ack cannot hit a reused slot */
};

static struct xpmem_export_peer {
	spinlock_t lock;		/* slot[], pending, next_tag */
	struct xpmem_ack_slot slot[XPMEM_ACK_SLOTS];
	unsigned int pending;
	u16 next_tag;
	u8 slow_history;		/* bit i: the ack i acks ago was slow */
	u64 last_ack_ns;		/* when the last ack came */
	unsigned long last_ack;		/* ... in jiffies */
	wait_queue_head_t slot_wq;	/* a slot was freed */
} xpmem_epeer[XPMEM_MAX_PARTITIONS];

static bool xpmem_ack_slot_free(struct xpmem_export_peer *ep, u64 gen, int peer)
{
	return READ_ONCE(ep->pending) < XPMEM_ACK_SLOTS || xpmem_peer_gen(peer) != gen;
}

/*
 * Take a slot for @done; sleeps while all are in use, for as long as the
 * peer is alive: a slot held past the peer timeout gets the peer fenced
 * (xpmem_export_check_acks()), and its death frees every slot.
 * -EHOSTDOWN: the peer is gone.
 */
static int xpmem_ack_slot_get(int peer, u64 gen, struct completion *done, u64 *id)
{
	struct xpmem_export_peer *ep = &xpmem_epeer[peer];
	unsigned long limit = jiffies + XPMEM_ACK_FENCE_FACTOR *
			      msecs_to_jiffies(xpmem_peer_timeout_ms());
	unsigned int i;

	for (;;) {
		if (!wait_event_timeout(ep->slot_wq, xpmem_ack_slot_free(ep, gen, peer),
					msecs_to_jiffies(xpmem_peer_timeout_ms())) &&
		    time_after(jiffies, limit))
			xpmem_peer_fence(peer, "acknowledgment slots stayed full");
		spin_lock(&ep->lock);
		/* checked under the lock that xpmem_export_peer_down() takes */
		if (xpmem_peer_gen(peer) != gen) {
			spin_unlock(&ep->lock);
			return -EHOSTDOWN;
		}
		for (i = 0; i < XPMEM_ACK_SLOTS; i++)
			if (!ep->slot[i].done)
				break;
		if (i < XPMEM_ACK_SLOTS)
			break;
		spin_unlock(&ep->lock);
	}
	ep->slot[i].done = done;
	ep->slot[i].sent = jiffies;
	ep->slot[i].sent_ns = ktime_get_ns();
	ep->slot[i].tag = ++ep->next_tag;
	ep->pending++;
	*id = ((u64)ep->slot[i].tag << 16) | i;
	spin_unlock(&ep->lock);
	return 0;
}

/* Free the slot named @id and return its waiter (NULL: no such slot). */
static struct completion *xpmem_ack_slot_put(int peer, u64 id, u64 *sent_ns)
{
	struct xpmem_export_peer *ep = &xpmem_epeer[peer];
	struct completion *done = NULL;
	u64 i = id & 0xffff;

	spin_lock(&ep->lock);
	if (i < XPMEM_ACK_SLOTS && id >> 16 == ep->slot[i].tag && ep->slot[i].done) {
		done = ep->slot[i].done;
		*sent_ns = ep->slot[i].sent_ns;
		ep->slot[i].done = NULL;
		ep->pending--;
	}
	spin_unlock(&ep->lock);
	if (done)
		wake_up(&ep->slot_wq);
	return done;
}

/* why xpmem_export_ack_too_slow() fences a peer (its kernel log line) */
static const char xpmem_slow_acks_reason[] =
	"its acknowledgments kept invalidations waiting close to the timeout";

/*
 * Receive context: one more ack of @peer, come at @now, of an INVAL sent
 * at @sent_ns; true if the peer's time on it fences it.
 */
static bool xpmem_export_ack_too_slow(int peer, u64 sent_ns, u64 now)
{
	struct xpmem_export_peer *ep = &xpmem_epeer[peer];
	u64 half_timeout_ns = (u64)xpmem_peer_timeout_ms() * NSEC_PER_MSEC / 2;
	u64 waited_ns;
	bool slow, fence;

	spin_lock(&ep->lock);
	waited_ns = now - max(sent_ns, ep->last_ack_ns);
	slow = waited_ns > half_timeout_ns;
	/*
	 * One entry per wait the peer made us do: an ACK that came quickly
	 * after the ACK before it, of an INVAL sent before that one came (a
	 * batch sends several at once), records nothing; else a peer could
	 * hold the first INVAL of every batch near the timeout and dilute it
	 * with the quick ACKs of the rest.
	 */
	if (slow || sent_ns >= ep->last_ack_ns)
		ep->slow_history = ep->slow_history << 1 | slow;
	ep->last_ack_ns = now;
	ep->last_ack = jiffies;
	BUILD_BUG_ON(BITS_PER_TYPE(ep->slow_history) != XPMEM_ACK_HISTORY);
	fence = hweight8(ep->slow_history) >= XPMEM_SLOW_ACKS_FENCE;
	if (fence)
		ep->slow_history = 0;
	spin_unlock(&ep->lock);
	if (slow)
		xpmem_count(export_slow_acks);
	return fence;
}

/* Receive context: ACK from @peer (ack id); false if it acknowledges nothing we sent. */
static bool xpmem_export_ack(int peer, const u64 *p)
{
	u64 sent_ns = 0, now;
	struct completion *done = xpmem_ack_slot_put(peer, p[0], &sent_ns);

	if (!done)
		return false;
	now = ktime_get_ns();
	xpmem_count(export_acks);
	trace_xpmem_ack(peer, p[0], now - sent_ns);
	complete(done);
	if (xpmem_export_ack_too_slow(peer, sent_ns, now))
		xpmem_peer_fence(peer, xpmem_slow_acks_reason);
	return true;
}

/* Receive context: @peer is gone; nothing it holds can be waited for. */
static void xpmem_export_peer_down(int peer)
{
	struct xpmem_export_peer *ep = &xpmem_epeer[peer];
	unsigned int i;

	spin_lock(&ep->lock);
	ep->slow_history = 0;	/* a new incarnation starts clean */
	for (i = 0; i < XPMEM_ACK_SLOTS; i++) {
		if (!ep->slot[i].done)
			continue;
		complete(ep->slot[i].done);	/* the waiter owns it from here */
		ep->slot[i].done = NULL;
		ep->pending--;
		xpmem_count(export_fenced_acks);
	}
	spin_unlock(&ep->lock);
	wake_up_all(&ep->slot_wq);
}

/*
 * Receive context, each heartbeat: an ack overdue by a peer timeout (the
 * peer acknowledged nothing for that long) fences it.
 */
static void xpmem_export_check_acks(int peer)
{
	struct xpmem_export_peer *ep = &xpmem_epeer[peer];
	unsigned long limit = msecs_to_jiffies(xpmem_peer_timeout_ms());
	bool overdue = false;
	unsigned int i;

	if (!READ_ONCE(ep->pending))
		return;
	spin_lock(&ep->lock);
	for (i = 0; i < XPMEM_ACK_SLOTS && !overdue; i++)
		overdue = ep->slot[i].done &&
			  time_after(jiffies, limit + (time_after(ep->last_ack, ep->slot[i].sent) ?
						       ep->last_ack : ep->slot[i].sent));
	spin_unlock(&ep->lock);
	if (overdue)
		xpmem_peer_fence(peer, "an invalidation was not acknowledged in time");
}

/* ---- lifetime of exports and their attachments ------------------------------- */

/*
 * What one peer may make this partition hold for it: permits (exports)
 * and attachments (export_atts) together.  The requests come from another
 * kernel, so nothing here is charged to a local user or memory cgroup;
 * this bound is what keeps a peer holding one permit from making us
 * allocate without end (-EDQUOT beyond, logged).
 */
static unsigned int xpmem_max_peer_objects = 65536;
module_param_named(max_objects_per_peer, xpmem_max_peer_objects, uint, 0644);
MODULE_PARM_DESC(max_objects_per_peer,
		 "permits and attachments one partition may hold here at a time (EDQUOT beyond)");

static atomic_t xpmem_peer_objects[XPMEM_MAX_PARTITIONS];

static int xpmem_peer_charge(int peer)
{
	unsigned int max = READ_ONCE(xpmem_max_peer_objects);

	if (atomic_inc_return(&xpmem_peer_objects[peer]) > max) {
		atomic_dec(&xpmem_peer_objects[peer]);
		pr_warn_ratelimited("xpmem: partition %d reached max_objects_per_peer (%u)\n",
				    peer, max);
		xpmem_count(limits_hit);
		return -EDQUOT;
	}
	return 0;
}

static void xpmem_peer_uncharge(int peer)
{
	atomic_dec(&xpmem_peer_objects[peer]);
}

static void xpmem_export_free(struct kref *ref)
{
	struct xpmem_export *exp = container_of(ref, struct xpmem_export, ref);

	WARN_ON_ONCE(!list_empty(&exp->atts));
	xpmem_peer_uncharge(exp->peer);
	xpmem_segment_put(exp->seg);
	kfree_rcu(exp, rcu);
}

static void xpmem_export_put(struct xpmem_export *exp)
{
	kref_put(&exp->ref, xpmem_export_free);
}

static void xpmem_export_att_free(struct kref *ref)
{
	struct xpmem_export_att *att = container_of(ref, struct xpmem_export_att, ref);

	WARN_ON_ONCE(att->mirror.inserted);
	xpmem_peer_uncharge(att->exp->peer);
	xpmem_export_put(att->exp);
	kfree_rcu(att, rcu);
}

static void xpmem_export_att_put(struct xpmem_export_att *att)
{
	kref_put(&att->ref, xpmem_export_att_free);
}

/*
 * Have the peer zap [start, end) of the source: take an ack slot for
 * @done and send INVAL.  False if there is nothing to wait for (the peer
 * is gone: nothing maps it).  Sleeps while every ack slot is taken.
 */
static bool xpmem_export_att_send_inval(struct xpmem_export_att *att, unsigned long start,
					unsigned long end, struct completion *done)
{
	int peer = att->exp->peer;
	u64 p[4];

	init_completion(done);
	if (xpmem_ack_slot_get(peer, att->exp->gen, done, &p[0])) {
		xpmem_count(export_fenced_acks);
		return false;
	}
	p[1] = att->cookie;
	p[2] = start - att->src_start;
	p[3] = end - att->src_start;
	xpmem_count(export_invals);
	if (xpmem_peer_send_wait(peer, XPMEM_MSG_INVAL, p, 4, false)) {
		/* not alive any more; peer_down may have completed it already */
		u64 sent_ns;

		if (xpmem_ack_slot_put(peer, p[0], &sent_ns)) {
			xpmem_count(export_fenced_acks);
			return false;
		}
	}
	return true;
}

/*
 * Wait for the ACK of an INVAL (or the peer's death).  Bounded: after
 * XPMEM_ACK_FENCE_FACTOR peer timeouts the peer is fenced, and its death
 * completes the wait.
 */
static void xpmem_export_att_wait_ack(struct xpmem_export_att *att, struct completion *done)
{
	unsigned long timeout = msecs_to_jiffies(xpmem_peer_timeout_ms());
	unsigned int waits = 0;

	while (!wait_for_completion_timeout(done, timeout)) {
		if (++waits == XPMEM_ACK_FENCE_FACTOR)
			xpmem_peer_fence(att->exp->peer, "an invalidation was not acknowledged");
		xpmem_count(ack_wait_slow);
	}
}

/* Both: from revoke, and the mirror's ->invalidate. */
static void xpmem_export_att_zap(struct xpmem_export_att *att, unsigned long start,
				 unsigned long end)
{
	struct completion done;

	if (xpmem_export_att_send_inval(att, start, end, &done))
		xpmem_export_att_wait_ack(att, &done);
}

static inline struct xpmem_export_att *to_export_att(struct xpmem_mirror *m)
{
	return container_of(m, struct xpmem_export_att, mirror);
}

static void xpmem_export_att_invalidate(struct xpmem_mirror *m, unsigned long start,
					unsigned long end)
{
	xpmem_export_att_zap(to_export_att(m), start, end);
}

/* In two steps: every INVAL of an invalidation is sent before any wait. */
static bool xpmem_export_att_invalidate_begin(struct xpmem_mirror *m, unsigned long start,
					      unsigned long end, struct xpmem_mirror_wait *w)
{
	return xpmem_export_att_send_inval(to_export_att(m), start, end, &w->ack);
}

static void xpmem_export_att_invalidate_wait(struct xpmem_mirror *m, unsigned long start,
					     unsigned long end, struct xpmem_mirror_wait *w)
{
	xpmem_export_att_wait_ack(to_export_att(m), &w->ack);
}

static const struct xpmem_mirror_ops xpmem_export_mirror_ops = {
	.invalidate = xpmem_export_att_invalidate,
	.invalidate_begin = xpmem_export_att_invalidate_begin,
	.invalidate_wait = xpmem_export_att_invalidate_wait,
};

/*
 * Withdraw @att: no fault is served for it any more and the peer has
 * zapped (or is dead).  Caller holds att->exp->lock; once only.
 */
static void xpmem_export_att_destroy(struct xpmem_export_att *att)
{
	xpmem_handle_free(&xpmem_export_atts, att->handle, att);
	spin_lock(&att->mirror.lock);
	WRITE_ONCE(att->revoked, true);
	spin_unlock(&att->mirror.lock);
	xpmem_count(revokes);
	xpmem_export_att_zap(att, att->src_start, att->src_start + att->size);
	xpmem_mirror_remove(&att->mirror);
	list_del_init(&att->exp_node);
	xpmem_uncount(export_atts);
	xpmem_export_att_put(att);
}

/* Revoke every attachment of @exp and refuse new ones. */
static void xpmem_export_revoke(struct xpmem_export *exp)
{
	struct xpmem_export_att *att, *tmp;

	mutex_lock(&exp->lock);
	exp->released = true;
	list_for_each_entry_safe(att, tmp, &exp->atts, exp_node)
		xpmem_export_att_destroy(att);
	mutex_unlock(&exp->lock);
}

/* The caller took @exp out of xpmem_exports (so it runs once). */
static void xpmem_export_destroy(struct xpmem_export *exp)
{
	xpmem_export_revoke(exp);
	xpmem_segment_del_dependent(exp->seg, &exp->dep);
	xpmem_uncount(exports);
	xpmem_export_put(exp);
}

/* The segment ends (its lock held): the peer's attachments go now. */
static void xpmem_export_dep_revoke(struct xpmem_dependent *d)
{
	xpmem_export_revoke(container_of(d, struct xpmem_export, dep));
}

static const struct xpmem_dependent_ops xpmem_export_dep_ops = {
	.revoke = xpmem_export_dep_revoke,
};

static struct xpmem_export *xpmem_export_lookup(int peer, u64 gen, u64 handle)
{
	struct xpmem_export *exp;

	rcu_read_lock();
	exp = xpmem_handle_lookup(&xpmem_exports, handle, offsetof(struct xpmem_export, handle));
	if (exp && (exp->peer != peer || exp->gen != gen || !kref_get_unless_zero(&exp->ref)))
		exp = NULL;
	rcu_read_unlock();
	return exp;
}

static struct xpmem_export_att *xpmem_export_att_lookup(int peer, u64 gen, u64 handle)
{
	struct xpmem_export_att *att;

	rcu_read_lock();
	att = xpmem_handle_lookup(&xpmem_export_atts, handle,
				  offsetof(struct xpmem_export_att, handle));
	if (att && (att->exp->peer != peer || att->exp->gen != gen ||
		    !kref_get_unless_zero(&att->ref)))
		att = NULL;
	rcu_read_unlock();
	return att;
}

/* ---- requests ------------------------------------------------------------------ */

static void xpmem_export_reply(int peer, u64 req, int err, u64 a, u64 b)
{
	u64 p[XPMEM_PAYLOAD_WORDS] = { req, (u64)(s64)err, a, b, 0 };

	xpmem_peer_send_wait(peer, XPMEM_MSG_REPLY, p, XPMEM_PAYLOAD_WORDS, false);
}

/* GET: req, segid, writable, euid, egid */
static void xpmem_export_get(int peer, u64 gen, const u64 *p)
{
	struct xpmem_segment *seg;
	struct xpmem_export *exp;
	int err;

	if (p[2] > 1 || p[3] > U32_MAX || p[4] > U32_MAX) {
		err = -EINVAL;
		goto fail;
	}
	seg = xpmem_segment_get_for_peer((s64)p[1], p[2], p[3], p[4], &err);
	if (!seg)
		goto fail;
	err = xpmem_peer_charge(peer);
	if (err) {
		xpmem_segment_put(seg);
		goto fail;
	}
	exp = kzalloc(sizeof(*exp), GFP_KERNEL);
	if (!exp) {
		xpmem_peer_uncharge(peer);
		xpmem_segment_put(seg);
		err = -ENOMEM;
		goto fail;
	}
	kref_init(&exp->ref);
	exp->peer = peer;
	exp->gen = gen;
	exp->seg = seg;			/* takes over the lookup's reference */
	exp->writable = p[2];
	mutex_init(&exp->lock);
	INIT_LIST_HEAD(&exp->atts);
	exp->dep.ops = &xpmem_export_dep_ops;
	INIT_LIST_HEAD(&exp->dep.node);

	err = xpmem_segment_add_dependent(seg, &exp->dep);
	if (err) {
		xpmem_export_put(exp);
		goto fail;
	}
	err = xpmem_handle_alloc(&xpmem_exports, exp, &exp->handle, GFP_KERNEL);
	if (err) {
		xpmem_segment_del_dependent(seg, &exp->dep);
		xpmem_export_put(exp);
		goto fail;
	}
	xpmem_count(exports);
	/*
	 * The peer went down meanwhile: its cleanup may have missed this.
	 * Full barrier: the store of the handle above and the load of the
	 * generation are ordered against xpmem_proto_peer_down()'s increment
	 * and its cleanup's walk (queue_work() orders those), so either the
	 * walk sees this export or this sees the new generation.
	 */
	smp_mb();
	if (xpmem_peer_gen(peer) != gen) {
		if (xpmem_handle_free(&xpmem_exports, exp->handle, exp))
			xpmem_export_destroy(exp);
		return;
	}
	xpmem_export_reply(peer, p[0], 0, exp->handle, seg->size);
	return;
fail:
	xpmem_export_reply(peer, p[0], err, 0, 0);
}

/* RELEASE: req, permit handle */
static void xpmem_export_release(int peer, u64 gen, const u64 *p)
{
	struct xpmem_export *exp = xpmem_export_lookup(peer, gen, p[1]);
	int err = -ENOENT;

	if (exp) {
		if (xpmem_handle_free(&xpmem_exports, exp->handle, exp)) {
			xpmem_export_destroy(exp);
			err = 0;
		}
		xpmem_export_put(exp);
	}
	xpmem_export_reply(peer, p[0], err, 0, 0);
}

/* ATTACH: req, permit handle, offset, size, cookie */
static void xpmem_export_attach(int peer, u64 gen, const u64 *p)
{
	struct xpmem_export *exp = xpmem_export_lookup(peer, gen, p[1]);
	u64 offset = p[2], size = p[3];
	struct xpmem_export_att *att;
	struct xpmem_segment *seg;
	int err = -ENOENT;

	if (!exp)
		goto fail;
	seg = exp->seg;
	err = -EINVAL;
	if (!size || !PAGE_ALIGNED(offset) || !PAGE_ALIGNED(size) ||
	    offset >= seg->size || size > seg->size - offset)
		goto fail_put;
	err = xpmem_peer_charge(peer);
	if (err)
		goto fail_put;
	att = kzalloc(sizeof(*att), GFP_KERNEL);
	if (!att) {
		xpmem_peer_uncharge(peer);
		err = -ENOMEM;
		goto fail_put;
	}
	kref_init(&att->ref);
	att->exp = exp;			/* takes over the lookup's reference */
	att->mm = seg->mm;
	att->cookie = p[4];
	att->src_start = seg->start + offset;
	att->size = size;
	INIT_LIST_HEAD(&att->exp_node);
	err = -ENOENT;
	if (!mmget_not_zero(att->mm)) {	/* the exporting process has exited */
		xpmem_export_att_put(att);
		goto fail;
	}
	/* the first notifier of an mm takes all its locks (xpmem_mm_may_register) */
	err = xpmem_mm_may_register(att->mm);
	if (!err)
		err = xpmem_mirror_insert(&att->mirror, &xpmem_export_mirror_ops, att->mm,
					  att->src_start, size);
	mmput(att->mm);
	if (err) {
		xpmem_export_att_put(att);
		goto fail;
	}

	mutex_lock(&exp->lock);
	err = exp->released ? -ENOENT :
	      xpmem_handle_alloc(&xpmem_export_atts, att, &att->handle, GFP_KERNEL);
	if (err) {
		mutex_unlock(&exp->lock);
		xpmem_mirror_remove(&att->mirror);
		xpmem_export_att_put(att);
		goto fail;
	}
	list_add_tail(&att->exp_node, &exp->atts);
	xpmem_count(export_atts);
	mutex_unlock(&exp->lock);
	xpmem_export_reply(peer, p[0], 0, att->handle, 0);
	return;

fail_put:
	xpmem_export_put(exp);
fail:
	xpmem_export_reply(peer, p[0], err, 0, 0);
}

/* DETACH: req, attachment handle */
static void xpmem_export_detach(int peer, u64 gen, const u64 *p)
{
	struct xpmem_export_att *att = xpmem_export_att_lookup(peer, gen, p[1]);
	int err = -ENOENT;

	if (att) {
		struct xpmem_export *exp = att->exp;

		mutex_lock(&exp->lock);
		if (!list_empty(&att->exp_node)) {
			/*
			 * The peer says it maps nothing any more; it is asked
			 * to confirm (INVAL, ACK) all the same, so a peer that
			 * lies cannot keep a mapping of pages we then reuse.
			 */
			xpmem_export_att_destroy(att);
			err = 0;
		}
		mutex_unlock(&exp->lock);
		xpmem_export_att_put(att);
	}
	xpmem_export_reply(peer, p[0], err, 0, 0);
}

/*
 * Publish the page at @src of a FAULT to the peer: put the REPLY in the
 * ring under the mirror's lock, only if no invalidation began since @seq
 * (and the attachment is not revoked), and count it in the mirror's
 * mapped range: an invalidation outside that range sends no INVAL.
 * -EAGAIN: resolve again; -ENOBUFS: the ring is full.
 */
static int xpmem_export_publish(struct xpmem_export_att *att, unsigned long seq,
				int peer, unsigned long src, const u64 *reply)
{
	int err = -EAGAIN;

	spin_lock(&att->mirror.lock);
	if (!att->revoked && !xpmem_mirror_read_retry(&att->mirror, seq)) {
		err = xpmem_peer_send(peer, XPMEM_MSG_REPLY, reply, XPMEM_PAYLOAD_WORDS);
		if (!err)
			xpmem_mirror_mapped(&att->mirror, src, PAGE_SIZE);
	}
	spin_unlock(&att->mirror.lock);
	return err;
}

/* FAULT: req, attachment handle, offset | write */
static void xpmem_export_fault(int peer, u64 gen, const u64 *p)
{
	struct xpmem_export_att *att = xpmem_export_att_lookup(peer, gen, p[1]);
	u64 reply[XPMEM_PAYLOAD_WORDS] = { p[0] };
	unsigned long limit = jiffies + msecs_to_jiffies(xpmem_peer_timeout_ms());
	bool write = p[2] & 1;
	u64 off = p[2] & PAGE_MASK;
	struct mm_struct *mm;
	int err;

	err = -ENOENT;
	if (!att)
		goto fail;
	err = -EINVAL;
	if ((p[2] & ~PAGE_MASK & ~1ULL) || off >= att->size)
		goto fail_put;
	err = -EACCES;
	if (write && !att->exp->writable)
		goto fail_put;
	mm = att->mm;
	for (;;) {
		struct page *page;
		unsigned long seq;

		err = -ENOENT;
		if (READ_ONCE(att->revoked))
			break;
		seq = xpmem_mirror_read_begin(&att->mirror);
		if (!mmget_not_zero(mm))
			break;		/* the owner is exiting */
		mmap_read_lock(mm);
		err = xpmem_src_page(mm, att->src_start + off, write, &page);
		mmap_read_unlock(mm);
		mmput_async(mm);
		if (err)
			break;
		/* the page as the peer's window of this partition shows it */
		if (!xpmem_own_window_offset(PFN_PHYS(page_to_pfn(page)), &reply[2])) {
			put_page(page);
			err = -EFAULT;
			break;
		}
		put_page(page);		/* nothing stays pinned */
		err = xpmem_export_publish(att, seq, peer, att->src_start + off, reply);
		if (!err) {
			xpmem_count(export_faults);
			xpmem_export_att_put(att);
			return;
		}
		if (err == -EAGAIN)
			continue;	/* invalidated meanwhile: resolve again */
		if (err != -ENOBUFS)
			break;
		/* ring full: the peer is draining it, or not for long */
		if (time_after(jiffies, limit)) {
			xpmem_peer_fence(peer, "its ring stayed full");
			err = -EHOSTDOWN;
			break;
		}
		usleep_range(50, 200);
	}
fail_put:
	xpmem_export_att_put(att);
fail:
	xpmem_export_reply(peer, p[0], err, 0, 0);
}

/* Worker: @peer went down; drop everything its old incarnations held. */
static void xpmem_export_peer_cleanup(int peer)
{
	u64 gen = xpmem_peer_gen(peer);
	struct xpmem_export *exp;
	unsigned long idx;

	xa_for_each(&xpmem_exports, idx, exp) {
		rcu_read_lock();
		exp = xa_load(&xpmem_exports, idx);
		if (exp && (exp->peer != peer || exp->gen == gen ||
			    !kref_get_unless_zero(&exp->ref)))
			exp = NULL;
		rcu_read_unlock();
		if (!exp)
			continue;
		if (xpmem_handle_free(&xpmem_exports, exp->handle, exp))
			xpmem_export_destroy(exp);
		xpmem_export_put(exp);
	}
}

/* requests to us as owner (in the peer's request worker), and ACKs */
static const struct xpmem_proto_handler xpmem_export_handlers[] = {
	[XPMEM_MSG_GET] = { .ctx = XPMEM_IN_REQUESTS, .len = 40, .handle = xpmem_export_get },
	[XPMEM_MSG_RELEASE] = { .ctx = XPMEM_IN_REQUESTS, .len = 16,
				.handle = xpmem_export_release },
	[XPMEM_MSG_ATTACH] = { .ctx = XPMEM_IN_REQUESTS, .len = 40,
			       .handle = xpmem_export_attach },
	[XPMEM_MSG_DETACH] = { .ctx = XPMEM_IN_REQUESTS, .len = 16,
			       .handle = xpmem_export_detach },
	[XPMEM_MSG_FAULT] = { .ctx = XPMEM_IN_REQUESTS, .len = 24, .handle = xpmem_export_fault },
	[XPMEM_MSG_ACK] = { .ctx = XPMEM_IN_RECEIVE, .len = 8, .rx = xpmem_export_ack,
			    .bad_why = "ack of no invalidation" },
};

static const struct xpmem_proto_peer_ops xpmem_export_peer_ops = {
	.down = xpmem_export_peer_down,
	.cleanup = xpmem_export_peer_cleanup,
	.tick = xpmem_export_check_acks,
};

void xpmem_export_init(void)
{
	u16 type;
	int p;

	for (p = 0; p < XPMEM_MAX_PARTITIONS; p++) {
		spin_lock_init(&xpmem_epeer[p].lock);
		init_waitqueue_head(&xpmem_epeer[p].slot_wq);
	}
	for (type = 0; type < ARRAY_SIZE(xpmem_export_handlers); type++)
		if (xpmem_export_handlers[type].len)
			xpmem_proto_register(type, &xpmem_export_handlers[type]);
	xpmem_proto_register_peer_ops(&xpmem_export_peer_ops);
}

/* After the fabric stopped and every peer's cleanup ran. */
void xpmem_export_exit(void)
{
	WARN_ON(!xa_empty(&xpmem_exports));
	WARN_ON(!xa_empty(&xpmem_export_atts));
}
