// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_proto.c - the memory protocol between partitions: requests that
 * wait for their reply, which context handles each incoming message (a
 * table by message type, filled in by xpmem_export.c and xpmem_import.c),
 * and what happens when a peer goes away.  Above the transport
 * (xpmem_transport.h), whose client it is.
 *
 * Messages arrive in the transport's receive context (the ivshmem poll
 * thread), which must never block: it is also this partition's heartbeat,
 * and a blocked poller would get the partition declared dead.  So:
 *   - REPLY completes the waiting requester on the spot (here);
 *   - XPMEM_IN_RECEIVE handlers (ACK: the owner's invalidation wait) run
 *     on the spot and must not sleep;
 *   - requests to an owner (GET, RELEASE, ATTACH, DETACH, FAULT) and
 *     invalidations to an attacher (INVAL) go into per-peer queues of
 *     fixed size, drained by work items that may sleep.  A request that
 *     finds its queue full is answered -EAGAIN and asked again; an INVAL
 *     always finds room, because an owner has at most XPMEM_ACK_SLOTS
 *     of them outstanding per peer (xpmem_export.c).  Nothing is
 *     allocated in the receive context.
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

#include "xpmem_ids.h"
#include "xpmem_proto.h"
#include "xpmem_stats.h"
#include "xpmem_trace.h"
#include "xpmem_transport.h"

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
static struct workqueue_struct *xpmem_request_wq;	/* requests, cleanup */
static struct workqueue_struct *xpmem_inval_wq;	/* invalidations */

/*
 * The transport; NULL when this partition is not on a fabric.  Set before
 * the transport starts and never cleared: its ops refuse (-ENODEV) once
 * it stopped, so a worker still sending then is safe.
 */
static const struct xpmem_transport *xpmem_transport;

/* handlers by message type, and the sides' peer operations (set at init) */
static const struct xpmem_proto_handler *xpmem_handlers[XPMEM_MSG_TYPES];
#define XPMEM_PROTO_SIDES	2
static const struct xpmem_proto_peer_ops *xpmem_peer_ops[XPMEM_PROTO_SIDES];

void xpmem_proto_register(u16 type, const struct xpmem_proto_handler *h)
{
	if (!WARN_ON(type >= XPMEM_MSG_TYPES || xpmem_handlers[type]))
		xpmem_handlers[type] = h;
}

void xpmem_proto_register_peer_ops(const struct xpmem_proto_peer_ops *ops)
{
	int i;

	for (i = 0; i < XPMEM_PROTO_SIDES; i++) {
		if (!xpmem_peer_ops[i]) {
			xpmem_peer_ops[i] = ops;
			return;
		}
	}
	WARN_ON(1);
}

/* ---- the transport, for the sides ------------------------------------------ */

int xpmem_proto_me(void)
{
	return xpmem_ivshmem_me();
}

unsigned int xpmem_peer_timeout_ms(void)
{
	return xpmem_transport ? xpmem_transport->timeout_ms() : 1000;
}

bool xpmem_peer_alive(int peer)
{
	return xpmem_transport && xpmem_transport->alive(peer);
}

bool xpmem_peer_window(int peer, phys_addr_t *start, phys_addr_t *len)
{
	return xpmem_transport && xpmem_transport->window(peer, start, len);
}

bool xpmem_own_window_offset(phys_addr_t phys, u64 *offset)
{
	return xpmem_transport && xpmem_transport->own_offset(phys, offset);
}

void xpmem_peer_fence(int peer, const char *why)
{
	if (xpmem_transport)
		xpmem_transport->fence(peer, why);
}

void xpmem_peer_count_bad(int peer, const char *why, u64 val)
{
	if (xpmem_transport)
		xpmem_transport->count_bad(peer, why, val);
}

/* Never sleeps: -ENOBUFS when the peer's ring is full (see xpmem_transport.h). */
int xpmem_peer_send(int dst, u16 type, const u64 *payload, unsigned int npayload)
{
	if (dst < 0 || dst >= XPMEM_MAX_PARTITIONS)
		return -EINVAL;
	if (!xpmem_transport)
		return -ENODEV;
	trace_xpmem_msg(true, dst, type, npayload ? payload[0] : 0);
	return xpmem_transport->send(dst, type, payload, npayload);
}

/*
 * As xpmem_peer_send(), but wait (sleeping) while the ring is full: a
 * live peer's receiver never blocks, so it drains its rings.  A peer whose
 * ring stays full for a peer timeout (it beats but does not drain, or its
 * tail is bogus) is fenced, and the wait ends with -EHOSTDOWN.  @killable:
 * a fatal signal ends it too (-EINTR), for a request a caller may give
 * up; never for a message that must arrive or the peer be fenced, such as
 * the INVAL of an invalidation, which the killed task's exit may be
 * waiting on (the page is freed when it returns).
 */
int xpmem_peer_send_wait(int dst, u16 type, const u64 *payload, unsigned int npayload,
			 bool killable)
{
	unsigned long limit = jiffies + msecs_to_jiffies(xpmem_peer_timeout_ms());
	int ret;

	while ((ret = xpmem_peer_send(dst, type, payload, npayload)) == -ENOBUFS) {
		if (killable && fatal_signal_pending(current))
			return -EINTR;
		if (time_after(jiffies, limit)) {
			xpmem_peer_fence(dst, "its ring stayed full");
			return -EHOSTDOWN;
		}
		usleep_range(50, 200);
	}
	return ret;
}

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
	rpc = xpmem_handle_lookup(&xpmem_rpcs, p[0], offsetof(struct xpmem_rpc, id));
	if (rpc && rpc->peer == src && !rpc->answered) {
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
	int ret;

	init_completion(&rpc.done);
	/* the handle's tag makes a late or forged reply miss */
	ret = xpmem_handle_alloc(&xpmem_rpcs, &rpc, &rpc.id, GFP_KERNEL);
	if (ret)
		return ret;
	req[0] = rpc.id;
	/*
	 * A caller that may not give up (RELEASE, DETACH: the owner keeps
	 * what they free otherwise) is often an exiting task with SIGKILL
	 * pending: it must not give up on a full ring either.
	 */
	ret = xpmem_peer_send_wait(dst, type, req, nreq, killable);
	deadline = jiffies + msecs_to_jiffies(XPMEM_RPC_TIMEOUT_FACTOR *
					      xpmem_peer_timeout_ms());
	while (!ret && !wait_for_completion_timeout(&rpc.done, HZ / 10)) {
		if (!xpmem_peer_alive(dst))
			ret = -EHOSTDOWN;
		else if (killable && fatal_signal_pending(current))
			ret = -EINTR;
		else if (time_after(jiffies, deadline))
			ret = -ETIMEDOUT;
	}
	xpmem_handle_free(&xpmem_rpcs, rpc.id, &rpc);
	/* from here on the receive context cannot touch rpc */
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
							 xpmem_peer_timeout_ms());
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

u64 xpmem_peer_gen(int p)
{
	return atomic64_read(&xpmem_rpeer[p].gen);
}

/* Drain @q, handing each message of the peer's current generation to its handler. */
static void xpmem_queue_drain_fn(struct work_struct *work)
{
	struct xpmem_remote_queue *q = container_of(work, struct xpmem_remote_queue, work);
	struct xpmem_queued_msg m;

	for (;;) {
		spin_lock(&q->lock);
		if (!kfifo_get(&q->fifo, &m)) {
			spin_unlock(&q->lock);
			return;
		}
		spin_unlock(&q->lock);
		if (m.gen == xpmem_peer_gen(q->peer))
			xpmem_handlers[m.type]->handle(q->peer, m.gen, m.p);
		cond_resched();
	}
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

/* a REPLY, handled here: req, error, values */
static const struct xpmem_proto_handler xpmem_reply_handler = {
	.ctx = XPMEM_IN_RECEIVE,
	.len = 40,
	.rx = xpmem_rpc_complete,
	.bad_why = "reply to no request",
};

/*
 * The transport's ->rx: every message of the memory protocol whose header
 * passed the transport's checks.  Type and length are checked against the
 * handler table.  Returns 0, or -EINVAL with *why and *val saying why it
 * was dropped.
 */
static int xpmem_proto_rx(int src, u16 type, const __le64 *payload, unsigned int len,
			  const char **why, u64 *val)
{
	struct xpmem_remote_peer *rp = &xpmem_rpeer[src];
	const struct xpmem_proto_handler *h;
	u64 p[XPMEM_PAYLOAD_WORDS];
	u64 gen = xpmem_peer_gen(src);
	unsigned int i;

	h = type < XPMEM_MSG_TYPES ? xpmem_handlers[type] : NULL;
	if (!h) {
		*why = "unknown type";
		*val = type;
		return -EINVAL;
	}
	if (len != h->len) {
		*why = "payload length";
		*val = len;
		return -EINVAL;
	}
	for (i = 0; i < XPMEM_PAYLOAD_WORDS; i++)
		p[i] = le64_to_cpu(payload[i]);
	trace_xpmem_msg(false, src, type, p[0]);

	switch (h->ctx) {
	case XPMEM_IN_RECEIVE:
		if (h->rx(src, p))
			return 0;
		*why = h->bad_why;
		*val = p[0];
		return -EINVAL;
	case XPMEM_IN_INVALS:
		if (xpmem_queue_put(&rp->invals, gen, type, p, xpmem_inval_wq))
			return 0;
		/* more outstanding than any correct owner can have */
		*why = "invalidations beyond the owner's limit";
		*val = p[0];
		return -EINVAL;
	case XPMEM_IN_REQUESTS:
		if (!xpmem_queue_put(&rp->reqs, gen, type, p, xpmem_request_wq)) {
			u64 busy[XPMEM_PAYLOAD_WORDS] = { p[0], (u64)-EAGAIN };

			/*
			 * A REPLY is always full length (the receiver drops
			 * any other); if even this does not fit in the ring,
			 * the requester times out.
			 */
			xpmem_peer_send(src, XPMEM_MSG_REPLY, busy, XPMEM_PAYLOAD_WORDS);
		}
		return 0;
	}
	return -EINVAL;
}

/* ---- peers going away ----------------------------------------------------------- */

static void xpmem_remote_cleanup_fn(struct work_struct *work)
{
	struct xpmem_remote_peer *rp = container_of(work, struct xpmem_remote_peer, cleanup);
	int p = rp - xpmem_rpeer, i;

	for (i = 0; i < XPMEM_PROTO_SIDES; i++)
		if (xpmem_peer_ops[i] && xpmem_peer_ops[i]->cleanup)
			xpmem_peer_ops[i]->cleanup(p);
}

/*
 * The transport's ->peer_down: partition @p stopped being alive (or this
 * partition is leaving the fabric).  Only non-sleeping work here: a new
 * generation, failed requests, the sides' ->down (completed ack waits);
 * the revocations are queued.
 */
static void xpmem_proto_peer_down(int p)
{
	int i;

	atomic64_inc(&xpmem_rpeer[p].gen);
	/* pairs with the smp_mb() of xpmem_export_get() (the walk below) */
	smp_mb__after_atomic();
	xpmem_rpc_fail_peer(p);
	for (i = 0; i < XPMEM_PROTO_SIDES; i++)
		if (xpmem_peer_ops[i] && xpmem_peer_ops[i]->down)
			xpmem_peer_ops[i]->down(p);
	queue_work(xpmem_request_wq, &xpmem_rpeer[p].cleanup);
}

/* The transport's ->tick: every heartbeat, for each live peer. */
static void xpmem_proto_tick(int p)
{
	int i;

	for (i = 0; i < XPMEM_PROTO_SIDES; i++)
		if (xpmem_peer_ops[i] && xpmem_peer_ops[i]->tick)
			xpmem_peer_ops[i]->tick(p);
}

static const struct xpmem_transport_client xpmem_proto_client = {
	.rx = xpmem_proto_rx,
	.peer_down = xpmem_proto_peer_down,
	.tick = xpmem_proto_tick,
};

/* The workqueues and queues; the sides register their handlers after this. */
int xpmem_proto_init(void)
{
	int p;

	/*
	 * WQ_MEM_RECLAIM on both: an owner's reclaim waits for our acks
	 * (import) and a remote attacher's progress for our replies
	 * (export), also when this partition is short of memory.
	 */
	xpmem_request_wq = alloc_workqueue("xpmem_export", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	xpmem_inval_wq = alloc_workqueue("xpmem_import", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!xpmem_request_wq || !xpmem_inval_wq) {
		if (xpmem_request_wq)
			destroy_workqueue(xpmem_request_wq);
		if (xpmem_inval_wq)
			destroy_workqueue(xpmem_inval_wq);
		return -ENOMEM;
	}
	xpmem_proto_register(XPMEM_MSG_REPLY, &xpmem_reply_handler);
	for (p = 0; p < XPMEM_MAX_PARTITIONS; p++) {
		struct xpmem_remote_peer *rp = &xpmem_rpeer[p];

		atomic64_set(&rp->gen, 1);
		spin_lock_init(&rp->reqs.lock);
		INIT_KFIFO(rp->reqs.fifo);
		INIT_WORK(&rp->reqs.work, xpmem_queue_drain_fn);
		rp->reqs.peer = p;
		spin_lock_init(&rp->invals.lock);
		INIT_KFIFO(rp->invals.fifo);
		INIT_WORK(&rp->invals.work, xpmem_queue_drain_fn);
		rp->invals.peer = p;
		INIT_WORK(&rp->cleanup, xpmem_remote_cleanup_fn);
	}
	return 0;
}

/*
 * Start the transport, once every handler is registered; 0 also off a
 * fabric.  The pointer is published first: a request that arrives as
 * soon as the transport probes can be answered.
 */
int xpmem_proto_start(void)
{
	xpmem_transport = xpmem_ivshmem_transport();
	return xpmem_ivshmem_start(&xpmem_proto_client);
}

/*
 * Stop the transport: every live peer goes down (requests fail, ack waits
 * complete), then the queued cleanups run.
 */
void xpmem_proto_stop(void)
{
	xpmem_ivshmem_stop();
	flush_workqueue(xpmem_inval_wq);
	flush_workqueue(xpmem_request_wq);
}

/* After xpmem_proto_stop(): nothing queues any more work. */
void xpmem_proto_exit(void)
{
	destroy_workqueue(xpmem_inval_wq);
	destroy_workqueue(xpmem_request_wq);
	WARN_ON(!xa_empty(&xpmem_rpcs));
}

void xpmem_proto_debugfs(struct dentry *dir)
{
	if (xpmem_transport)
		xpmem_transport->debugfs(dir);
}
