// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_remote.c - plumbing of the memory protocol between partitions:
 * which context handles each incoming message, requests that wait for
 * their reply, and what happens when a peer goes away.
 *
 * Messages arrive in the fabric's poll thread (xpmem_fabric.c), which
 * must never block: it is also this partition's heartbeat, and a blocked
 * poller would get the partition declared dead.  So:
 *   - REPLY completes the waiting requester on the spot;
 *   - ACK completes the owner's invalidation wait on the spot;
 *   - requests to an owner (GET, RELEASE, ATTACH, DETACH, FAULT) and
 *     invalidations to an attacher (INVAL) go into per-peer queues of
 *     fixed size, drained by work items that may sleep.  A request that
 *     finds its queue full is answered -EAGAIN and asked again; an INVAL
 *     always finds room, because an owner has at most XPMEM_ACK_SLOTS
 *     of them outstanding per peer (xpmem_export.c).  Nothing is
 *     allocated in the poll thread.
 * Invalidations and requests have separate queues and workqueues: a
 * fault being served may wait for the end of an invalidation on the
 * owner, which waits for an ack from the faulting partition; if that
 * partition's INVAL could queue behind requests, the two would wait on
 * each other.
 *
 * Per peer, "gen" counts its incarnations as seen here: it moves on when
 * the peer stops being alive (death, fencing, clean leave, restart).
 * Queued messages and objects of an older generation are dropped.
 *
 * Locks (none is held while sleeping):
 *   xpmem_rpcs' xa_lock: the table of requests waiting for a reply;
 *     taken by the requester and by the poll thread.
 *   queue->lock: one per queue; poll thread (producer) and worker.
 */
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/kfifo.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "xpmem_internal.h"
#include "xpmem_wire.h"

/* longest a request waits for its reply from a peer that still beats */
#define XPMEM_RPC_TIMEOUT_FACTOR	10

struct xpmem_queued_msg {
	u64 gen;
	u16 type;
	u64 p[XPMEM_PAYLOAD_WORDS];
};

struct xpmem_remote_queue {
	spinlock_t lock;		/* fifo: the poll thread puts, the worker gets */
	DECLARE_KFIFO(fifo, struct xpmem_queued_msg, XPMEM_ACK_SLOTS);
	struct work_struct work;
	int peer;
};

struct xpmem_remote_peer {
	atomic64_t gen;
	struct xpmem_remote_queue reqs;		/* to us as owner */
	struct xpmem_remote_queue invals;	/* to us as attacher */
	struct work_struct cleanup;
};

static struct xpmem_remote_peer xpmem_rpeer[XPMEM_MAX_PARTITIONS];
static struct workqueue_struct *xpmem_export_wq;	/* requests, cleanup */
static struct workqueue_struct *xpmem_import_wq;	/* invalidations */

/* ---- requests that wait for a reply ---------------------------------------- */

struct xpmem_rpc {
	u64 id;				/* tag << 32 | slot in xpmem_rpcs */
	int peer;
	bool answered;			/* reply[] is valid; under xa_lock */
	struct completion done;
	u64 reply[XPMEM_PAYLOAD_WORDS];
};

static DEFINE_XARRAY_ALLOC1(xpmem_rpcs);

/* A REPLY: false if it answers no request of ours to @src. */
static bool xpmem_rpc_complete(int src, const u64 *p)
{
	struct xpmem_rpc *rpc;

	xa_lock(&xpmem_rpcs);
	rpc = xa_load(&xpmem_rpcs, (u32)p[0]);
	if (rpc && rpc->id == p[0] && rpc->peer == src && !rpc->answered) {
		memcpy(rpc->reply, p, sizeof(rpc->reply));
		rpc->answered = true;
		complete(&rpc->done);
		rpc = (void *)1;
	} else {
		rpc = NULL;
	}
	xa_unlock(&xpmem_rpcs);
	return rpc;	/* NULL: late (the requester gave up) or forged */
}

static void xpmem_rpc_fail_peer(int p)
{
	struct xpmem_rpc *rpc;
	unsigned long idx;

	xa_lock(&xpmem_rpcs);
	xa_for_each(&xpmem_rpcs, idx, rpc) {
		if (rpc->peer != p || rpc->answered)
			continue;
		rpc->reply[1] = (u64)-EHOSTDOWN;
		rpc->answered = true;
		complete(&rpc->done);
	}
	xa_unlock(&xpmem_rpcs);
}

/*
 * One round: send, wait.  The wait ends with the reply, the peer's death
 * (-EHOSTDOWN), a fatal signal if @killable (-EINTR), or after
 * XPMEM_RPC_TIMEOUT_FACTOR peer timeouts (-ETIMEDOUT).  It sleeps in
 * slices of 100 ms, so it never looks like a hung task.
 */
static int xpmem_rpc_once(int dst, u16 type, u64 *req, unsigned int nreq,
			  u64 *reply, bool killable)
{
	struct xpmem_rpc rpc = { .peer = dst };
	unsigned long deadline;
	u32 slot;
	int ret;

	init_completion(&rpc.done);
	ret = xa_alloc(&xpmem_rpcs, &slot, &rpc, xa_limit_32b, GFP_KERNEL);
	if (ret)
		return ret;
	/* the tag makes a late or forged reply miss */
	rpc.id = ((u64)(get_random_u32() | 1) << 32) | slot;
	req[0] = rpc.id;
	ret = xpmem_fabric_send_wait(dst, type, req, nreq);
	deadline = jiffies + msecs_to_jiffies(XPMEM_RPC_TIMEOUT_FACTOR *
					      xpmem_fabric_timeout_ms());
	while (!ret && !wait_for_completion_timeout(&rpc.done, HZ / 10)) {
		if (!xpmem_fabric_peer_alive(dst))
			ret = -EHOSTDOWN;
		else if (killable && fatal_signal_pending(current))
			ret = -EINTR;
		else if (time_after(jiffies, deadline))
			ret = -ETIMEDOUT;
	}
	xa_erase(&xpmem_rpcs, slot);
	/* from here on the poll thread cannot touch rpc */
	if (rpc.answered) {
		memcpy(reply, rpc.reply, sizeof(rpc.reply));
		ret = (int)(s64)rpc.reply[1];
		if (ret > 0 || ret < -MAX_ERRNO)
			ret = -EPROTO;	/* not an errno: a broken owner */
	}
	return ret;
}

/*
 * Send request @type (payload @req, of which word 0 is filled in here)
 * to partition @dst and wait for its REPLY, asking again while the owner
 * answers -EAGAIN (its queue was full), for at most
 * XPMEM_RPC_TIMEOUT_FACTOR peer timeouts in all (-ETIMEDOUT).  Returns the
 * owner's error, or the transport's; on 0, @reply holds the reply's words.
 */
int xpmem_rpc_call(int dst, u16 type, u64 *req, unsigned int nreq,
		   u64 *reply, bool killable)
{
	unsigned long limit = jiffies + msecs_to_jiffies(XPMEM_RPC_TIMEOUT_FACTOR *
							 xpmem_fabric_timeout_ms());
	int ret;

	while ((ret = xpmem_rpc_once(dst, type, req, nreq, reply, killable)) == -EAGAIN) {
		if (killable && fatal_signal_pending(current))
			return -EINTR;
		if (time_after(jiffies, limit))
			return -ETIMEDOUT;
		usleep_range(200, 1000);
	}
	return ret;
}

/* ---- queues and their workers ------------------------------------------------ */

u64 xpmem_remote_gen(int p)
{
	return atomic64_read(&xpmem_rpeer[p].gen);
}

/* Drain @q, handing each message of the peer's current generation on. */
static void xpmem_queue_drain(struct xpmem_remote_queue *q,
			      void (*handle)(int peer, u64 gen, u16 type, const u64 *p))
{
	struct xpmem_queued_msg m;

	for (;;) {
		spin_lock(&q->lock);
		if (!kfifo_get(&q->fifo, &m)) {
			spin_unlock(&q->lock);
			return;
		}
		spin_unlock(&q->lock);
		if (m.gen == xpmem_remote_gen(q->peer))
			handle(q->peer, m.gen, m.type, m.p);
		cond_resched();
	}
}

static void xpmem_remote_reqs_fn(struct work_struct *work)
{
	xpmem_queue_drain(container_of(work, struct xpmem_remote_queue, work),
			  xpmem_export_request);
}

static void xpmem_remote_inval_one(int peer, u64 gen, u16 type, const u64 *p)
{
	xpmem_import_inval(peer, gen, p);
}

static void xpmem_remote_invals_fn(struct work_struct *work)
{
	xpmem_queue_drain(container_of(work, struct xpmem_remote_queue, work),
			  xpmem_remote_inval_one);
}

static bool xpmem_queue_put(struct xpmem_remote_queue *q, u64 gen, u16 type,
			    const u64 *p, struct workqueue_struct *wq)
{
	struct xpmem_queued_msg m = { .gen = gen, .type = type };
	bool queued;

	memcpy(m.p, p, sizeof(m.p));
	spin_lock(&q->lock);
	queued = kfifo_put(&q->fifo, m);
	spin_unlock(&q->lock);
	if (queued)
		queue_work(wq, &q->work);
	return queued;
}

/*
 * Called by the poll thread for every message of the memory protocol
 * that passed the channel's checks (version, source, type, length).
 * Returns 0, or -EINVAL with *why and *val saying why it was dropped.
 */
int xpmem_remote_rx(int src, u16 type, const __le64 *payload,
		    const char **why, u64 *val)
{
	struct xpmem_remote_peer *rp = &xpmem_rpeer[src];
	u64 p[XPMEM_PAYLOAD_WORDS];
	u64 gen = xpmem_remote_gen(src);
	unsigned int i;

	for (i = 0; i < XPMEM_PAYLOAD_WORDS; i++)
		p[i] = le64_to_cpu(payload[i]);

	switch (type) {
	case XPMEM_MSG_REPLY:
		if (xpmem_rpc_complete(src, p))
			return 0;
		*why = "reply to no request";
		*val = p[0];
		return -EINVAL;
	case XPMEM_MSG_ACK:
		if (xpmem_export_ack(src, p[0]))
			return 0;
		*why = "ack of no invalidation";
		*val = p[0];
		return -EINVAL;
	case XPMEM_MSG_INVAL:
		if (xpmem_queue_put(&rp->invals, gen, type, p, xpmem_import_wq))
			return 0;
		/* more outstanding than any correct owner can have */
		*why = "invalidations beyond the owner's limit";
		*val = p[0];
		return -EINVAL;
	case XPMEM_MSG_GET:
	case XPMEM_MSG_RELEASE:
	case XPMEM_MSG_ATTACH:
	case XPMEM_MSG_DETACH:
	case XPMEM_MSG_FAULT:
		if (!xpmem_queue_put(&rp->reqs, gen, type, p, xpmem_export_wq)) {
			u64 busy[XPMEM_PAYLOAD_WORDS] = { p[0], (u64)-EAGAIN };

			/*
			 * A REPLY is always full length (the receiver drops
			 * any other); if even this does not fit in the ring,
			 * the requester times out.
			 */
			xpmem_fabric_send_msg(src, XPMEM_MSG_REPLY, busy, XPMEM_PAYLOAD_WORDS);
		}
		return 0;
	default:
		*why = "not a memory protocol message";
		*val = type;
		return -EINVAL;
	}
}

/* ---- peers going away ----------------------------------------------------------- */

static void xpmem_remote_cleanup_fn(struct work_struct *work)
{
	struct xpmem_remote_peer *rp = container_of(work, struct xpmem_remote_peer, cleanup);
	int p = rp - xpmem_rpeer;

	xpmem_import_peer_cleanup(p);
	xpmem_export_peer_cleanup(p);
}

/*
 * Poll thread: partition @p stopped being alive (or this partition is
 * leaving the fabric).  Only non-sleeping work here: a new generation,
 * failed requests, completed ack waits; the revocations are queued.
 */
void xpmem_remote_peer_down(int p)
{
	atomic64_inc(&xpmem_rpeer[p].gen);
	xpmem_rpc_fail_peer(p);
	xpmem_export_peer_down(p);
	queue_work(xpmem_export_wq, &xpmem_rpeer[p].cleanup);
}

/* Poll thread, every heartbeat, for each live peer. */
void xpmem_remote_tick(int p)
{
	xpmem_export_check_acks(p);
}

int xpmem_remote_init(void)
{
	int p;

	/*
	 * WQ_MEM_RECLAIM on both: an owner's reclaim waits for our acks
	 * (import) and a remote attacher's progress for our replies
	 * (export), also when this partition is short of memory.
	 */
	xpmem_export_wq = alloc_workqueue("xpmem_export", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	xpmem_import_wq = alloc_workqueue("xpmem_import", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!xpmem_export_wq || !xpmem_import_wq) {
		if (xpmem_export_wq)
			destroy_workqueue(xpmem_export_wq);
		if (xpmem_import_wq)
			destroy_workqueue(xpmem_import_wq);
		return -ENOMEM;
	}
	xpmem_export_init();
	for (p = 0; p < XPMEM_MAX_PARTITIONS; p++) {
		struct xpmem_remote_peer *rp = &xpmem_rpeer[p];

		atomic64_set(&rp->gen, 1);
		spin_lock_init(&rp->reqs.lock);
		INIT_KFIFO(rp->reqs.fifo);
		INIT_WORK(&rp->reqs.work, xpmem_remote_reqs_fn);
		rp->reqs.peer = p;
		spin_lock_init(&rp->invals.lock);
		INIT_KFIFO(rp->invals.fifo);
		INIT_WORK(&rp->invals.work, xpmem_remote_invals_fn);
		rp->invals.peer = p;
		INIT_WORK(&rp->cleanup, xpmem_remote_cleanup_fn);
	}
	return 0;
}

/* After the fabric is stopped: nothing queues any more work. */
void xpmem_remote_exit(void)
{
	destroy_workqueue(xpmem_import_wq);
	destroy_workqueue(xpmem_export_wq);
	xpmem_export_exit();
	WARN_ON(!xa_empty(&xpmem_rpcs));
}
