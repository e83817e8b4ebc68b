// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_ivshmem.c - the transport between partitions of the emulated
 * machine (xpmem_transport.h): discovery of the fabric, the message
 * channel, heartbeats and dead-peer detection, over ivshmem devices.
 *
 * The machine (docs/partitions.md): every partition has a mailbox region
 * of its own, which it writes, and sees each peer's mailbox region
 * read-only and each peer's RAM through a window, all as BAR 2 of ivshmem
 * PCI devices: its own mailbox at slot 0x0f, peer p's mailbox at slot
 * 0x18 + p, peer p's window at slot 0x10 + p.  Everything a partition
 * writes is in its own region, so no partition can forge another's
 * messages or presence (xpmem_wire.h).  This partition's own number comes
 * from the "partition" module parameter (on real hardware it is the
 * fabric's node id); without it the transport stays off and the driver is
 * purely local.
 *
 * Channel: fixed-size messages in single-producer single-consumer rings
 * (xpmem_wire.h: the producer's region holds the messages and the head,
 * the consumer's region the tail), polled by one kernel thread per
 * partition, which also publishes this partition's heartbeat and watches
 * the peers'.  A peer whose heartbeat stops for xpmem_timeout_param_ms is
 * declared dead and stays dead until it restarts (a new boot nonce):
 * nothing waits on it any longer.  Everything read from the mailbox was
 * written by another kernel: a message is copied out of the ring first,
 * then validated; a bad message is counted and dropped, a corrupt ring
 * index resynchronises the ring.  Never trusted, never dereferenced.
 * This file checks a message's header (version, source, destination) and
 * answers PING itself; every other message goes up to the client, the
 * memory protocol (xpmem_proto.c), which checks type and length.
 *
 * Locks and sleeping:
 *   xpmem_fabric_lock (mutex): probe/remove and the fabric pointer;
 *     debugfs readers take it too.
 *   peer->tx_lock (spinlock): one producer per outgoing ring; held only
 *     to fill one entry.
 *   ping_lock (mutex): one debugfs ping measurement at a time; the writer
 *     sleeps on a completion with a timeout, never unbounded.
 * The poll thread takes no lock but tx_lock (for replies).
 */
#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "xpmem_stats.h"
#include "xpmem_transport.h"
#include "xpmem_wire.h"

#define XPMEM_IVSHMEM_VENDOR	0x1af4
#define XPMEM_IVSHMEM_DEVICE	0x1110
#define XPMEM_MAILBOX_SLOT	0x0f
#define XPMEM_WINDOW_SLOT0	0x10
#define XPMEM_PEER_MAILBOX_SLOT0	0x18
#define XPMEM_HEARTBEAT_MS	100
#define XPMEM_PING_TIMEOUT_MS	1000

static int xpmem_partition = -1;
module_param_named(partition, xpmem_partition, int, 0444);
MODULE_PARM_DESC(partition, "this partition's number on the fabric (0-3; -1: no fabric)");

/*
 * A peer's window of this partition shows this partition's RAM from its
 * first byte: a page's offset in it is its physical address less where
 * the RAM begins.  QEMU's pc machine (x86) puts RAM at 0, which is the
 * default there.  Elsewhere it must be given (QEMU's arm64 virt machine:
 * 0x40000000): a guess from the lowest System RAM would be wrong where
 * firmware keeps the first pages (nomap), and a wrong base shows a peer
 * another page than the one it asked for.  A partition whose RAM is not
 * one range from there (an x86 guest of more than about 3 GiB has RAM
 * above the PCI hole at 4 GiB) shows its peers only that range: pages
 * beyond it fail the peer's window check (-EFAULT at the attacher).
 */
static unsigned long long xpmem_ram_base = ULLONG_MAX;
module_param_named(ram_base, xpmem_ram_base, ullong, 0444);
MODULE_PARM_DESC(ram_base,
		 "physical address of the first byte of this partition's RAM, offset 0 of its peers' windows (default 0 on x86; required elsewhere, 0x40000000 on QEMU's virt machine)");

static unsigned int xpmem_timeout_param_ms = 3000;
module_param_named(peer_timeout_ms, xpmem_timeout_param_ms, uint, 0644);
MODULE_PARM_DESC(peer_timeout_ms, "a peer silent this long is declared dead");

enum xpmem_peer_state {
	XPMEM_PEER_ABSENT,	/* never seen (or no window device) */
	XPMEM_PEER_ALIVE,
	XPMEM_PEER_DEAD,	/* stopped answering; fenced until it restarts */
	XPMEM_PEER_LEFT,	/* announced a clean shutdown */
};

static const char *const xpmem_peer_state_name[] = {
	[XPMEM_PEER_ABSENT] = "absent",
	[XPMEM_PEER_ALIVE] = "alive",
	[XPMEM_PEER_DEAD] = "dead",
	[XPMEM_PEER_LEFT] = "left",
};

struct xpmem_peer {
	int id;
	enum xpmem_peer_state state;	/* written by the poll thread only */
	u64 nonce;			/* the incarnation we know */
	u64 last_beat;			/* last heartbeat value seen */
	unsigned long beat_jiffies;	/* when it last changed */
	/*
	 * The peer's mailbox region, read-only: mapped by the poll thread
	 * when the peer's device is there, unmapped at fabric stop.
	 */
	struct xpmem_mailbox *mbox;
	spinlock_t tx_lock;		/* producer side of our out[id], tx_open, tx_to */
	u64 tx_seq;
	/*
	 * Sending is open while the peer is alive, to the incarnation it
	 * was alive as (the low 32 bits of its nonce, stamped on every
	 * message): set under tx_lock when the state changes, so a send that
	 * raced with a restart cannot stamp the new incarnation on what it
	 * meant for the old one.
	 */
	bool tx_open;
	u32 tx_to;
	atomic64_t tx, rx, bad;
	atomic64_t stale;		/* messages for another incarnation of ours, dropped */
	bool fence_request;		/* ->fence asked for it */
	const char *fence_why;
};

struct xpmem_fabric {
	int me;
	struct pci_dev *pdev;		/* our mailbox device */
	struct xpmem_mailbox *mbox;	/* our region: memremap'd BAR 2, write-back */
	u64 nonce;
	u64 heartbeat;
	struct task_struct *poller;
	struct xpmem_peer peer[XPMEM_MAX_PARTITIONS];
};

/* the protocol above us; set before the PCI driver registers */
static const struct xpmem_transport_client *xpmem_client;

static DEFINE_MUTEX(xpmem_fabric_lock);
/* written under xpmem_fabric_lock; senders read it under RCU */
static struct xpmem_fabric __rcu *xpmem_fabric_rcu;

static struct xpmem_fabric *xpmem_fabric_locked(void)
{
	return rcu_dereference_protected(xpmem_fabric_rcu,
					 lockdep_is_held(&xpmem_fabric_lock));
}

/*
 * Each peer's RAM as seen here (start 0: no window device), whether the
 * window was probed before or after the mailbox.  Written under
 * xpmem_fabric_lock, start last; read locklessly by the poll thread.
 */
static struct {
	resource_size_t start, len;
} xpmem_windows[XPMEM_MAX_PARTITIONS];

/* each peer's mailbox region as seen here (start 0: no device); the same rules */
static struct {
	resource_size_t start, len;
} xpmem_peer_mboxes[XPMEM_MAX_PARTITIONS];

/* ---- ping: a measured round trip, driven from debugfs ------------------ */

static DEFINE_MUTEX(xpmem_ping_lock);
static DECLARE_COMPLETION(xpmem_ping_done);
static u64 xpmem_ping_cookie;		/* the PONG we wait for */
static char xpmem_ping_result[160] = "no ping run yet\n";

/* ---- sending ------------------------------------------------------------ */

static int xpmem_fabric_send(struct xpmem_fabric *fab, int dst, u16 type,
			     const u64 *payload, unsigned int npayload)
{
	struct xpmem_peer *peer = &fab->peer[dst];
	struct xpmem_wire_ring *ring = &fab->mbox->out[dst];
	struct xpmem_mailbox *theirs;
	struct xpmem_wire_msg *msg;
	u64 head, tail;
	unsigned int i;

	/*
	 * Acquire: see what the poll thread published before ALIVE (its
	 * mapping of the peer's mailbox, the nonce, seen[]).
	 */
	if (smp_load_acquire(&peer->state) != XPMEM_PEER_ALIVE)
		return -EHOSTDOWN;
	theirs = READ_ONCE(peer->mbox);
	if (!theirs)
		return -EHOSTDOWN;
	if (npayload > ARRAY_SIZE(msg->payload))
		return -EINVAL;
	spin_lock(&peer->tx_lock);
	if (!peer->tx_open) {
		spin_unlock(&peer->tx_lock);
		return -EHOSTDOWN;	/* it went down since the check above */
	}
	head = le64_to_cpu(READ_ONCE(ring->head));
	/* acquire: the slot is free before we write it (not a control dependency) */
	tail = le64_to_cpu(smp_load_acquire(&theirs->in[fab->me].tail));
	if (head - tail >= XPMEM_RING_ENTRIES) {
		spin_unlock(&peer->tx_lock);
		return -ENOBUFS;	/* the peer is not consuming */
	}
	msg = &ring->msg[head & (XPMEM_RING_ENTRIES - 1)];
	msg->version = cpu_to_le16(XPMEM_WIRE_VERSION);
	msg->type = cpu_to_le16(type);
	msg->src = cpu_to_le16(fab->me);
	msg->dst = cpu_to_le16(dst);
	msg->len = cpu_to_le32(npayload * sizeof(u64));
	msg->to_incarnation = cpu_to_le32(peer->tx_to);
	msg->seq = cpu_to_le64(++peer->tx_seq);
	for (i = 0; i < ARRAY_SIZE(msg->payload); i++)
		msg->payload[i] = cpu_to_le64(i < npayload ? payload[i] : 0);
	/* the entry is complete before the consumer can see the new head */
	smp_wmb();
	WRITE_ONCE(ring->head, cpu_to_le64(head + 1));
	spin_unlock(&peer->tx_lock);
	atomic64_inc(&peer->tx);
	xpmem_count(fabric_tx);
	return 0;
}

/*
 * The fabric, if this partition is on one and @p names one of its peers;
 * NULL otherwise.  Caller holds rcu_read_lock().
 */
static struct xpmem_fabric *xpmem_fabric_of_peer(int p)
{
	struct xpmem_fabric *fab;

	if (p < 0 || p >= XPMEM_MAX_PARTITIONS)
		return NULL;
	fab = rcu_dereference(xpmem_fabric_rcu);
	return fab && p != fab->me ? fab : NULL;
}

/*
 * ->send.  The fabric is looked up under RCU: xpmem_fabric_stop() waits
 * for a grace period before freeing.  Never sleeps; -ENOBUFS when the
 * peer's ring is full, -EHOSTDOWN when it is not alive, -ENODEV when this
 * partition is not on a fabric.
 */
static int xpmem_ivshmem_send(int dst, u16 type, const u64 *payload,
			      unsigned int npayload)
{
	struct xpmem_fabric *fab;
	int ret = -ENODEV;

	if (dst < 0 || dst >= XPMEM_MAX_PARTITIONS)
		return -EINVAL;
	rcu_read_lock();
	fab = xpmem_fabric_of_peer(dst);
	if (fab)
		ret = xpmem_fabric_send(fab, dst, type, payload, npayload);
	rcu_read_unlock();
	return ret;
}

static unsigned int xpmem_ivshmem_timeout_ms(void)
{
	return max(READ_ONCE(xpmem_timeout_param_ms), 100U);
}

static void xpmem_fabric_bad(struct xpmem_peer *peer, const char *why, u64 val);

/* ->count_bad: a message that passed every check but the protocol's */
static void xpmem_ivshmem_count_bad(int p, const char *why, u64 val)
{
	struct xpmem_fabric *fab;

	rcu_read_lock();
	fab = xpmem_fabric_of_peer(p);
	if (fab)
		xpmem_fabric_bad(&fab->peer[p], why, val);
	rcu_read_unlock();
}

/* this partition's number on the fabric, -1 if none */
int xpmem_ivshmem_me(void)
{
	return xpmem_partition >= 0 && xpmem_partition < XPMEM_MAX_PARTITIONS ?
	       xpmem_partition : -1;
}

static bool xpmem_ivshmem_alive(int p)
{
	struct xpmem_fabric *fab;
	bool alive = false;

	rcu_read_lock();
	fab = xpmem_fabric_of_peer(p);
	if (fab) {
		/* acquire: pairs with xpmem_peer_set_state()'s release */
		alive = smp_load_acquire(&fab->peer[p].state) == XPMEM_PEER_ALIVE;
	}
	rcu_read_unlock();
	return alive;
}

/* ->own_offset: @phys of this partition as its peers' windows show it */
static bool xpmem_ivshmem_own_offset(phys_addr_t phys, u64 *offset)
{
	if (phys < xpmem_ram_base)
		return false;
	*offset = phys - xpmem_ram_base;
	return true;
}

/* ram_base when not given: see its comment */
static int xpmem_ivshmem_find_ram_base(void)
{
	if (xpmem_ram_base != ULLONG_MAX)
		return 0;
	if (!IS_ENABLED(CONFIG_X86)) {
		pr_err("xpmem: partition=%d needs ram_base= on this architecture (where this partition's RAM begins; 0x40000000 on QEMU's virt machine)\n",
		       xpmem_partition);
		return -EINVAL;
	}
	xpmem_ram_base = 0;
	return 0;
}

/* ->window: peer @p's RAM as a physical range of this partition */
static bool xpmem_ivshmem_window(int p, phys_addr_t *start, phys_addr_t *len)
{
	if (p < 0 || p >= XPMEM_MAX_PARTITIONS)
		return false;
	/* acquire: the length published with this start (the probe's release) */
	*start = smp_load_acquire(&xpmem_windows[p].start);
	*len = READ_ONCE(xpmem_windows[p].len);
	return *start != 0;
}

/*
 * ->fence: declare peer @p dead from outside the poll thread (it stopped
 * answering though its heartbeat goes on).  The poll thread carries it
 * out and publishes the fence in our slot, so @p learns it was cut off.
 */
static void xpmem_ivshmem_fence(int p, const char *why)
{
	struct xpmem_fabric *fab;

	rcu_read_lock();
	fab = xpmem_fabric_of_peer(p);
	if (fab) {
		WRITE_ONCE(fab->peer[p].fence_why, why);
		/* release: the poll thread that sees the request sees why */
		smp_store_release(&fab->peer[p].fence_request, true);
	}
	rcu_read_unlock();
}

/* ---- receiving ---------------------------------------------------------- */

static void xpmem_fabric_bad(struct xpmem_peer *peer, const char *why, u64 val)
{
	atomic64_inc(&peer->bad);
	xpmem_count(fabric_bad);
	pr_warn_ratelimited("xpmem: dropped a message from partition %d: %s (%llu)\n",
			    peer->id, why, val);
}

/*
 * Validate and act on one message (already copied out of the ring).
 * Returns 0, or -EINVAL with *why and *val saying why it was dropped.
 */
static int xpmem_fabric_handle(struct xpmem_fabric *fab, struct xpmem_peer *peer,
			       const struct xpmem_wire_msg *m, const char **why, u64 *val)
{
	u64 cookie = le64_to_cpu(m->payload[0]);
	u16 type = le16_to_cpu(m->type);

	*why = NULL;
	if (le16_to_cpu(m->version) != XPMEM_WIRE_VERSION) {
		*why = "wire version";
		*val = le16_to_cpu(m->version);
	} else if (le16_to_cpu(m->src) != peer->id) {
		*why = "source is not the ring's";
		*val = le16_to_cpu(m->src);
	} else if (le16_to_cpu(m->dst) != fab->me) {
		*why = "destination is not us";
		*val = le16_to_cpu(m->dst);
	} else if (le32_to_cpu(m->len) > sizeof(m->payload)) {
		*why = "payload length";
		*val = le32_to_cpu(m->len);
	} else if ((type == XPMEM_MSG_PING || type == XPMEM_MSG_PONG) &&
		   le32_to_cpu(m->len) != sizeof(u64)) {
		*why = "payload length";
		*val = le32_to_cpu(m->len);
	}
	if (*why)
		return -EINVAL;

	switch (type) {
	case XPMEM_MSG_PING:
		/* a full ring drops the reply; the pinger times out */
		xpmem_fabric_send(fab, peer->id, XPMEM_MSG_PONG, &cookie, 1);
		return 0;
	case XPMEM_MSG_PONG:
		if (cookie && cookie == READ_ONCE(xpmem_ping_cookie)) {
			WRITE_ONCE(xpmem_ping_cookie, 0);
			complete(&xpmem_ping_done);
		}
		return 0;
	default:
		return xpmem_client->rx(peer->id, type, m->payload, le32_to_cpu(m->len),
					why, val);
	}
}

/* consume the peer's ring to us; returns true if anything was there */
static bool xpmem_fabric_rx(struct xpmem_fabric *fab, struct xpmem_peer *peer)
{
	struct xpmem_wire_ring *ring;
	struct xpmem_wire_consumed *consumed = &fab->mbox->in[peer->id];
	struct xpmem_wire_msg m;
	u64 head, tail;
	bool any = false;

	if (!peer->mbox)
		return false;
	ring = &peer->mbox->out[fab->me];
	head = le64_to_cpu(READ_ONCE(ring->head));
	tail = le64_to_cpu(READ_ONCE(consumed->tail));	/* ours: only we write it */
	if (head == tail)
		return false;
	if (head - tail > XPMEM_RING_ENTRIES) {
		/* not something a correct producer can do: resynchronise */
		xpmem_fabric_bad(peer, "ring index jumped", head - tail);
		WRITE_ONCE(consumed->tail, cpu_to_le64(head));
		return true;
	}
	/* read the entries only after the head that published them */
	smp_rmb();
	while (tail != head) {
		const char *why;
		bool ours;
		u64 val;

		/* copy first: the producer's memory is not ours to trust */
		memcpy(&m, &ring->msg[tail & (XPMEM_RING_ENTRIES - 1)], sizeof(m));
		ours = le32_to_cpu(m.to_incarnation) == lower_32_bits(fab->nonce);
		/*
		 * A message for this incarnation from a peer not (yet) counted
		 * alive waits: the peer already sees our seen[] and sent
		 * between this poll's check of its slot and now; the next
		 * check counts it alive.  (A fenced peer's messages wait for
		 * good, and it learns of the fence from our slot.)  A message
		 * for another incarnation of ours is dropped, alive or not.
		 */
		if (ours && peer->state != XPMEM_PEER_ALIVE)
			break;
		tail++;
		/* finish reading the entry before handing its slot back */
		smp_mb();
		WRITE_ONCE(consumed->tail, cpu_to_le64(tail));
		any = true;
		if (!ours) {
			atomic64_inc(&peer->stale);
			continue;
		}
		/*
		 * Alive, as checked above; a message that takes it down (a
		 * forged one, a fence) makes the next one wait or drop.
		 */
		if (xpmem_fabric_handle(fab, peer, &m, &why, &val)) {
			xpmem_fabric_bad(peer, why, val);
		} else {
			atomic64_inc(&peer->rx);
			xpmem_count(fabric_rx);
		}
	}
	return any;
}

/* ---- presence: heartbeats, restarts, death ------------------------------ */

static void xpmem_peer_set_state(struct xpmem_fabric *fab, struct xpmem_peer *peer,
				 enum xpmem_peer_state state)
{
	enum xpmem_peer_state old = peer->state;

	if (old == state)
		return;
	pr_info("xpmem: partition %d is %s (was %s)\n", peer->id,
		xpmem_peer_state_name[state], xpmem_peer_state_name[old]);
	if (state == XPMEM_PEER_DEAD)
		xpmem_count(fabric_peers_dead);
	if (state == XPMEM_PEER_ALIVE || old == XPMEM_PEER_ALIVE) {
		spin_lock(&peer->tx_lock);
		peer->tx_open = state == XPMEM_PEER_ALIVE;
		peer->tx_to = lower_32_bits(peer->nonce);
		spin_unlock(&peer->tx_lock);
	}
	/* release: a sender that sees ALIVE sees the handshake before it */
	smp_store_release(&peer->state, state);
	/*
	 * Whatever was shared with that incarnation is over: fail its
	 * requests, complete the acks we waited for, revoke its mappings
	 * (the client; only non-sleeping work here, the rest queued).
	 */
	if (old == XPMEM_PEER_ALIVE)
		xpmem_client->peer_down(peer->id);
}

/*
 * Map the peer's mailbox region once its device is there (read-only: its
 * view here comes from a read-only backend; we never write it).  Poll
 * thread only; unmapped at fabric stop.
 */
static bool xpmem_peer_map(struct xpmem_peer *peer)
{
	struct xpmem_mailbox *mb;
	resource_size_t start;

	/* acquire: the length published with this start (the probe's release) */
	start = smp_load_acquire(&xpmem_peer_mboxes[peer->id].start);
	if (peer->mbox)
		return true;
	if (!start || READ_ONCE(xpmem_peer_mboxes[peer->id].len) < sizeof(*mb))
		return false;
	mb = memremap(start, sizeof(*mb), MEMREMAP_WB);
	if (!mb)
		return false;
	WRITE_ONCE(peer->mbox, mb);
	return true;
}

static void xpmem_peer_check(struct xpmem_fabric *fab, struct xpmem_peer *peer)
{
	struct xpmem_wire_slot *own = &fab->mbox->slot, *s;
	u64 magic, nonce, beat;
	u32 state;

	if (!READ_ONCE(xpmem_windows[peer->id].start) || !xpmem_peer_map(peer))
		return;		/* not (yet) a partition we can talk to */
	s = &peer->mbox->slot;
	magic = le64_to_cpu(READ_ONCE(s->magic));
	nonce = le64_to_cpu(READ_ONCE(s->nonce));
	/*
	 * The nonce first, then what its incarnation wrote before it (pairs
	 * with the smp_wmb() before the nonce in xpmem_fabric_start()): a new
	 * nonce is never read with the previous incarnation's seen[] or
	 * state.  The other partition's CPUs are this machine's, so smp_*
	 * barriers order it.
	 */
	smp_rmb();
	beat = le64_to_cpu(READ_ONCE(s->heartbeat));
	state = le32_to_cpu(READ_ONCE(s->state));
	if (magic != XPMEM_FABRIC_MAGIC ||
	    le32_to_cpu(READ_ONCE(s->version)) != XPMEM_WIRE_VERSION)
		return;

	if (nonce != peer->nonce) {
		/* first sight, or a restart: a new incarnation, fresh state */
		if (peer->nonce)
			pr_info("xpmem: partition %d restarted\n", peer->id);
		WRITE_ONCE(own->fenced[peer->id], 0);
		WRITE_ONCE(peer->fence_request, false);
		peer->nonce = nonce;
		peer->last_beat = beat;
		peer->beat_jiffies = jiffies;
		xpmem_peer_set_state(fab, peer, XPMEM_PEER_ABSENT);
		/*
		 * Nothing it sent before we knew this incarnation is for us
		 * (it sends only once it counts us alive, after seeing our
		 * seen[] below): consume its ring to us up to here.
		 */
		WRITE_ONCE(fab->mbox->in[peer->id].tail,
			   READ_ONCE(peer->mbox->out[fab->me].head));
		/*
		 * Tell it which of its incarnations we talk to.  Release: the
		 * head above is read before it can see this and send (else
		 * the reset would skip its first message).
		 */
		smp_store_release(&own->seen[peer->id], cpu_to_le64(nonce));
	}
	if (state == XPMEM_SLOT_LEAVING) {
		xpmem_peer_set_state(fab, peer, XPMEM_PEER_LEFT);
		return;
	}
	/* acquire: pairs with xpmem_ivshmem_fence()'s release (fence_why) */
	if (peer->state == XPMEM_PEER_ALIVE && smp_load_acquire(&peer->fence_request)) {
		/* it stopped answering though it beats: cut it off, tell it */
		pr_err("xpmem: fencing partition %d: %s\n", peer->id,
		       READ_ONCE(peer->fence_why));
		WRITE_ONCE(own->fenced[peer->id], cpu_to_le64(nonce));
		xpmem_peer_set_state(fab, peer, XPMEM_PEER_DEAD);
		return;
	}
	if (peer->state == XPMEM_PEER_ALIVE &&
	    le64_to_cpu(READ_ONCE(s->fenced[fab->me])) == fab->nonce) {
		/* it fenced us: it no longer honours anything we share */
		pr_err("xpmem: partition %d fenced this partition\n", peer->id);
		xpmem_peer_set_state(fab, peer, XPMEM_PEER_DEAD);
		return;
	}
	if (beat != peer->last_beat) {
		peer->last_beat = beat;
		peer->beat_jiffies = jiffies;
	}
	/*
	 * Alive once it has seen this incarnation of ours too: then neither
	 * side sends before the other listens (a message from a peer we do
	 * not count as alive is dropped).  A dead partition stays fenced
	 * until it restarts.
	 */
	if (peer->state == XPMEM_PEER_ABSENT && state == XPMEM_SLOT_UP &&
	    le64_to_cpu(READ_ONCE(s->seen[fab->me])) == fab->nonce) {
		peer->beat_jiffies = jiffies;
		xpmem_peer_set_state(fab, peer, XPMEM_PEER_ALIVE);
		return;
	}
	if (peer->state == XPMEM_PEER_ALIVE &&
	    time_after(jiffies, peer->beat_jiffies +
				msecs_to_jiffies(xpmem_ivshmem_timeout_ms())))
		xpmem_peer_set_state(fab, peer, XPMEM_PEER_DEAD);
}

static void xpmem_fabric_beat(struct xpmem_fabric *fab)
{
	WRITE_ONCE(fab->mbox->slot.heartbeat, cpu_to_le64(++fab->heartbeat));
}

/*
 * The poll thread: spins briefly after traffic (a request is usually
 * followed by more), then sleeps between polls so an idle partition does
 * not burn a CPU.  The sleep bounds the extra latency of a message to an
 * idle partition.
 */
static int xpmem_fabric_poll(void *arg)
{
	struct xpmem_fabric *fab = arg;
	unsigned long next_beat = jiffies;
	unsigned int idle = 0;
	int p;

	while (!kthread_should_stop()) {
		bool busy = false;

		if (time_after_eq(jiffies, next_beat)) {
			xpmem_fabric_beat(fab);
			next_beat = jiffies + msecs_to_jiffies(XPMEM_HEARTBEAT_MS);
			for (p = 0; p < XPMEM_MAX_PARTITIONS; p++)
				if (fab->peer[p].state == XPMEM_PEER_ALIVE)
					xpmem_client->tick(p);
		}
		for (p = 0; p < XPMEM_MAX_PARTITIONS; p++) {
			if (p == fab->me)
				continue;
			xpmem_peer_check(fab, &fab->peer[p]);
			busy |= xpmem_fabric_rx(fab, &fab->peer[p]);
		}
		if (busy)
			idle = 0;
		if (busy || idle++ < 1000)
			cond_resched();
		else	/* TASK_IDLE: an idle poller is not a D-state task */
			usleep_range_state(200, 500, TASK_IDLE);
	}
	return 0;
}

/* ---- bring-up and teardown ---------------------------------------------- */

static int xpmem_fabric_start(struct pci_dev *pdev)
{
	struct xpmem_fabric *fab;
	resource_size_t start = pci_resource_start(pdev, 2);
	resource_size_t len = pci_resource_len(pdev, 2);
	struct xpmem_wire_slot *own;
	int p, ret;

	if (len < sizeof(struct xpmem_mailbox)) {
		dev_err(&pdev->dev, "xpmem: mailbox BAR of %pa bytes is too small\n", &len);
		return -ENOSPC;
	}
	fab = kzalloc(sizeof(*fab), GFP_KERNEL);
	if (!fab)
		return -ENOMEM;
	/*
	 * Shared RAM on a coherent fabric: map it cacheable.  The BAR is not
	 * claimed with pci_request_region(): on Debian's IO_STRICT_DEVMEM
	 * kernels a claimed BAR could no longer be mapped by the user-space
	 * tools that use its scratch area (XPMEM_MAILBOX_SCRATCH and beyond).
	 */
	fab->mbox = memremap(start, sizeof(struct xpmem_mailbox), MEMREMAP_WB);
	if (!fab->mbox) {
		ret = -ENOMEM;
		goto err_free;
	}
	fab->me = xpmem_partition;
	fab->pdev = pdev;
	do {
		fab->nonce = get_random_u64();
	} while (!fab->nonce);
	/*
	 * A new incarnation: our heads go on from where they are (a peer
	 * consumes whatever an older incarnation left when it sees our new
	 * nonce), and so do our tails until we see each peer's.
	 */
	for (p = 0; p < XPMEM_MAX_PARTITIONS; p++) {
		fab->peer[p].id = p;
		spin_lock_init(&fab->peer[p].tx_lock);
	}
	own = &fab->mbox->slot;
	WRITE_ONCE(own->version, cpu_to_le32(XPMEM_WIRE_VERSION));
	WRITE_ONCE(own->heartbeat, 0);
	for (p = 0; p < XPMEM_MAX_PARTITIONS; p++) {
		WRITE_ONCE(own->fenced[p], 0);
		WRITE_ONCE(own->seen[p], 0);
	}
	WRITE_ONCE(own->state, cpu_to_le32(XPMEM_SLOT_UP));
	/*
	 * The slot is complete before the nonce that names this incarnation
	 * (after a restart the magic is already there: the nonce is what a
	 * peer acts on, xpmem_peer_check()), and before the magic.
	 */
	smp_wmb();
	WRITE_ONCE(own->nonce, cpu_to_le64(fab->nonce));
	/* and the nonce before the magic (a first start) */
	smp_wmb();
	WRITE_ONCE(own->magic, cpu_to_le64(XPMEM_FABRIC_MAGIC));

	fab->poller = kthread_run(xpmem_fabric_poll, fab, "xpmem-fabric");
	if (IS_ERR(fab->poller)) {
		ret = PTR_ERR(fab->poller);
		goto err_unmap;
	}
	rcu_assign_pointer(xpmem_fabric_rcu, fab);
	dev_info(&pdev->dev, "xpmem: partition %d on the fabric, mailbox %pa+%pa\n",
		 fab->me, &start, &len);
	return 0;

err_unmap:
	WRITE_ONCE(own->magic, 0);
	memunmap(fab->mbox);
err_free:
	kfree(fab);
	return ret;
}

static void xpmem_fabric_stop(struct xpmem_fabric *fab)
{
	int p;

	RCU_INIT_POINTER(xpmem_fabric_rcu, NULL);
	synchronize_rcu();	/* no sender still looks at fab */
	kthread_stop(fab->poller);
	/* as if every peer went away: fail, ack and revoke what they share */
	for (p = 0; p < XPMEM_MAX_PARTITIONS; p++)
		if (fab->peer[p].state == XPMEM_PEER_ALIVE)
			xpmem_peer_set_state(fab, &fab->peer[p], XPMEM_PEER_LEFT);
	/* tell the peers this is a clean leave, not a failure */
	WRITE_ONCE(fab->mbox->slot.state, cpu_to_le32(XPMEM_SLOT_LEAVING));
	memunmap(fab->mbox);
	for (p = 0; p < XPMEM_MAX_PARTITIONS; p++)
		if (fab->peer[p].mbox)
			memunmap(fab->peer[p].mbox);
	kfree(fab);
}

/*
 * Which per-peer device is at @slot: *@mailbox (a peer's mailbox, or its window)
 * and the peer's number, or -1 (not one of ours).
 */
static int xpmem_fabric_peer_slot(unsigned int slot, bool *mailbox)
{
	if (slot >= XPMEM_WINDOW_SLOT0 && slot < XPMEM_WINDOW_SLOT0 + XPMEM_MAX_PARTITIONS) {
		*mailbox = false;
		return slot - XPMEM_WINDOW_SLOT0;
	}
	if (slot >= XPMEM_PEER_MAILBOX_SLOT0 &&
	    slot < XPMEM_PEER_MAILBOX_SLOT0 + XPMEM_MAX_PARTITIONS) {
		*mailbox = true;
		return slot - XPMEM_PEER_MAILBOX_SLOT0;
	}
	return -1;
}

static int xpmem_fabric_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	unsigned int slot = PCI_SLOT(pdev->devfn);
	bool mailbox;
	int ret, p;

	if (xpmem_partition < 0)
		return -ENODEV;		/* not on a fabric: stay local */
	if (xpmem_partition >= XPMEM_MAX_PARTITIONS) {
		dev_err(&pdev->dev, "xpmem: partition=%d, must be 0..%d\n",
			xpmem_partition, XPMEM_MAX_PARTITIONS - 1);
		return -EINVAL;
	}
	p = xpmem_fabric_peer_slot(slot, &mailbox);
	if (pdev->bus->number != 0 || (slot != XPMEM_MAILBOX_SLOT && p < 0))
		return -ENODEV;		/* some other ivshmem device */
	ret = pci_enable_device(pdev);
	if (ret)
		return ret;

	mutex_lock(&xpmem_fabric_lock);
	if (slot == XPMEM_MAILBOX_SLOT) {
		ret = xpmem_fabric_locked() ? -EBUSY : xpmem_fabric_start(pdev);
	} else if (p == xpmem_partition) {
		ret = -EINVAL;	/* a view of ourselves: miswired */
		dev_err(&pdev->dev, "xpmem: device at slot %#x is our own\n", slot);
	} else if (mailbox) {
		WRITE_ONCE(xpmem_peer_mboxes[p].len, pci_resource_len(pdev, 2));
		/* release: start last, with its length (xpmem_peer_map()) */
		smp_store_release(&xpmem_peer_mboxes[p].start, pci_resource_start(pdev, 2));
		ret = 0;
	} else {
		WRITE_ONCE(xpmem_windows[p].len, pci_resource_len(pdev, 2));
		/* release: start last, with its length (xpmem_ivshmem_window()) */
		smp_store_release(&xpmem_windows[p].start, pci_resource_start(pdev, 2));
		ret = 0;
	}
	mutex_unlock(&xpmem_fabric_lock);
	if (ret)
		pci_disable_device(pdev);
	return ret;
}

static void xpmem_fabric_remove(struct pci_dev *pdev)
{
	unsigned int slot = PCI_SLOT(pdev->devfn);
	bool mailbox;
	int p = xpmem_fabric_peer_slot(slot, &mailbox);

	mutex_lock(&xpmem_fabric_lock);
	if (xpmem_fabric_locked() && xpmem_fabric_locked()->pdev == pdev) {
		xpmem_fabric_stop(xpmem_fabric_locked());
	} else if (p >= 0 && mailbox) {
		/* the fabric's mapping of it lives until the fabric stops */
		WRITE_ONCE(xpmem_peer_mboxes[p].start, 0);
		WRITE_ONCE(xpmem_peer_mboxes[p].len, 0);
	} else if (p >= 0) {
		WRITE_ONCE(xpmem_windows[p].start, 0);
		WRITE_ONCE(xpmem_windows[p].len, 0);
	}
	mutex_unlock(&xpmem_fabric_lock);
	pci_disable_device(pdev);
}

/* no MODULE_DEVICE_TABLE: the driver must not autoload on any ivshmem */
static const struct pci_device_id xpmem_fabric_ids[] = {
	{ PCI_DEVICE(XPMEM_IVSHMEM_VENDOR, XPMEM_IVSHMEM_DEVICE) },
	{ }
};

static struct pci_driver xpmem_fabric_driver = {
	.name = "xpmem-fabric",
	.id_table = xpmem_fabric_ids,
	.probe = xpmem_fabric_probe,
	.remove = xpmem_fabric_remove,
};

/* ---- debugfs: partitions (state) and ping (measured round trips) -------- */

static int xpmem_partitions_show(struct seq_file *m, void *unused)
{
	struct xpmem_fabric *fab;
	int p;

	mutex_lock(&xpmem_fabric_lock);
	fab = xpmem_fabric_locked();
	if (!fab) {
		seq_puts(m, "not on a fabric (module parameter partition unset or no mailbox)\n");
		goto out;
	}
	seq_printf(m, "me %d nonce %#llx heartbeat %llu\n", fab->me, fab->nonce,
		   fab->heartbeat);
	for (p = 0; p < XPMEM_MAX_PARTITIONS; p++) {
		struct xpmem_peer *peer = &fab->peer[p];
		unsigned long silent = jiffies - READ_ONCE(peer->beat_jiffies);

		if (p == fab->me)
			continue;
		seq_printf(m, "partition %d %s window %llu silent_ms %u tx %lld rx %lld bad %lld stale %lld\n",
			   p, xpmem_peer_state_name[READ_ONCE(peer->state)],
			   (unsigned long long)READ_ONCE(xpmem_windows[p].len),
			   peer->nonce ? jiffies_to_msecs(silent) : 0,
			   atomic64_read(&peer->tx), atomic64_read(&peer->rx),
			   atomic64_read(&peer->bad), atomic64_read(&peer->stale));
	}
out:
	mutex_unlock(&xpmem_fabric_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xpmem_partitions);

/* "PEER COUNT": COUNT sequential PING/PONG round trips to PEER */
static int xpmem_ping_run(int dst, unsigned int count)
{
	struct xpmem_fabric *fab;
	u64 t0, dt, sum = 0, lo = U64_MAX, hi = 0;
	unsigned int i;
	int ret = 0;

	mutex_lock(&xpmem_fabric_lock);
	fab = xpmem_fabric_locked();
	if (!fab || dst < 0 || dst >= XPMEM_MAX_PARTITIONS || dst == fab->me) {
		mutex_unlock(&xpmem_fabric_lock);
		return fab ? -EINVAL : -ENODEV;
	}
	for (i = 0; i < count; i++) {
		u64 cookie = get_random_u64() | 1;

		reinit_completion(&xpmem_ping_done);
		WRITE_ONCE(xpmem_ping_cookie, cookie);
		t0 = ktime_get_ns();
		ret = xpmem_fabric_send(fab, dst, XPMEM_MSG_PING, &cookie, 1);
		if (ret)
			break;
		if (!wait_for_completion_timeout(&xpmem_ping_done,
						 msecs_to_jiffies(XPMEM_PING_TIMEOUT_MS))) {
			ret = -ETIMEDOUT;
			break;
		}
		dt = ktime_get_ns() - t0;
		sum += dt;
		lo = min(lo, dt);
		hi = max(hi, dt);
	}
	WRITE_ONCE(xpmem_ping_cookie, 0);
	mutex_unlock(&xpmem_fabric_lock);
	if (i)
		snprintf(xpmem_ping_result, sizeof(xpmem_ping_result),
			 "partition %d: %u round trips, mean %llu ns, min %llu ns, max %llu ns%s\n",
			 dst, i, div_u64(sum, i), lo, hi, ret ? " (then failed)" : "");
	else
		snprintf(xpmem_ping_result, sizeof(xpmem_ping_result),
			 "partition %d: no round trip (error %d)\n", dst, ret);
	return ret;
}

static ssize_t xpmem_ping_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *ppos)
{
	char buf[32];
	int dst, ret;
	unsigned int count;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	if (sscanf(buf, "%d %u", &dst, &count) != 2 || !count || count > 100000)
		return -EINVAL;
	mutex_lock(&xpmem_ping_lock);
	ret = xpmem_ping_run(dst, count);
	mutex_unlock(&xpmem_ping_lock);
	return ret ? ret : len;
}

static ssize_t xpmem_ping_read(struct file *file, char __user *ubuf,
			       size_t len, loff_t *ppos)
{
	char buf[sizeof(xpmem_ping_result)];

	mutex_lock(&xpmem_ping_lock);
	strscpy(buf, xpmem_ping_result, sizeof(buf));
	mutex_unlock(&xpmem_ping_lock);
	return simple_read_from_buffer(ubuf, len, ppos, buf, strlen(buf));
}

static const struct file_operations xpmem_ping_fops = {
	.owner = THIS_MODULE,
	.read = xpmem_ping_read,
	.write = xpmem_ping_write,
	.llseek = default_llseek,
};

static void xpmem_ivshmem_debugfs(struct dentry *dir)
{
	debugfs_create_file("partitions", 0444, dir, NULL, &xpmem_partitions_fops);
	debugfs_create_file("ping", 0600, dir, NULL, &xpmem_ping_fops);
}

static const struct xpmem_transport xpmem_ivshmem_ops = {
	.name = "ivshmem",
	.send = xpmem_ivshmem_send,
	.alive = xpmem_ivshmem_alive,
	.window = xpmem_ivshmem_window,
	.own_offset = xpmem_ivshmem_own_offset,
	.fence = xpmem_ivshmem_fence,
	.count_bad = xpmem_ivshmem_count_bad,
	.timeout_ms = xpmem_ivshmem_timeout_ms,
	.debugfs = xpmem_ivshmem_debugfs,
};

/*
 * The transport, or NULL if this partition is not on a fabric (module
 * parameter partition unset): the driver is then purely local.  Its ops
 * work before xpmem_ivshmem_start() and after xpmem_ivshmem_stop()
 * (-ENODEV, not alive).
 */
const struct xpmem_transport *xpmem_ivshmem_transport(void)
{
	return xpmem_ivshmem_me() < 0 ? NULL : &xpmem_ivshmem_ops;
}

/* Bind the ivshmem devices of the fabric and start talking for @client. */
int xpmem_ivshmem_start(const struct xpmem_transport_client *client)
{
	int ret;

	if (xpmem_ivshmem_me() < 0)
		return 0;
	ret = xpmem_ivshmem_find_ram_base();
	if (ret)
		return ret;
	xpmem_client = client;
	return pci_register_driver(&xpmem_fabric_driver);
}

/* Unbind: every peer goes down for the client, then nothing calls it again. */
void xpmem_ivshmem_stop(void)
{
	if (xpmem_ivshmem_me() >= 0)
		pci_unregister_driver(&xpmem_fabric_driver);
}
