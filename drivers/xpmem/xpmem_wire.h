/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_wire.h - what a partition writes into its mailbox region: the
 * layout every partition's driver must agree on, byte for byte.
 *
 * Every partition has a mailbox region of its own, which only it can
 * write: its peers see it read-only (the emulated machine maps their view
 * from a read-only memory backend; real hardware must do the same with the
 * fabric's access control, docs/partitions.md).  So a partition cannot
 * forge a message that appears to come from another, nor touch another's
 * presence, by construction.  Everything is little-endian with explicit
 * sizes; every structure's size is asserted below.  Everything a partition
 * reads from a peer's region was written by another kernel and is
 * validated before use (xpmem_ivshmem.c, xpmem_proto.c), never trusted.
 *
 *   offset 0 of partition p's region   struct xpmem_mailbox
 *     slot                p's presence: magic, version, boot nonce,
 *                         heartbeat, state, whom it fenced, whom it saw
 *     in[q]               how far p consumed the ring from q (its tail)
 *     out[q]              messages from p to q, and p's head of that ring:
 *                         single producer (p), single consumer (q, which
 *                         publishes its tail in its own region's in[p])
 *   XPMEM_MAILBOX_SCRATCH .. end: not used by the driver (user-space tests
 *                         of the emulated machine use it)
 */
#ifndef _XPMEM_WIRE_H
#define _XPMEM_WIRE_H

#include <linux/build_bug.h>
#include <linux/types.h>

#define XPMEM_FABRIC_MAGIC	0x4241464d454d5058ULL	/* "XPMEMFAB" */
#define XPMEM_WIRE_VERSION	4
#define XPMEM_MAX_PARTITIONS	4
#define XPMEM_RING_ENTRIES	128	/* a power of two */
#define XPMEM_MAILBOX_SCRATCH	(512 * 1024)

enum xpmem_slot_state {
	XPMEM_SLOT_ABSENT = 0,
	XPMEM_SLOT_UP = 1,
	XPMEM_SLOT_LEAVING = 2,		/* clean shutdown: not a failure */
};

/* a partition's presence, in its own region */
struct xpmem_wire_slot {
	__le64 magic;
	__le64 nonce;		/* random per boot: a new value is a restart */
	__le64 heartbeat;	/* incremented every XPMEM_HEARTBEAT_MS */
	__le32 version;
	__le32 state;		/* enum xpmem_slot_state */
	/*
	 * fenced[p]: the nonce of partition p's incarnation that this one
	 * declared dead (it stopped answering) and fenced; 0 if none.
	 * Partition p, finding its own nonce there, drops everything it
	 * shares with this one until one of the two restarts.
	 */
	__le64 fenced[XPMEM_MAX_PARTITIONS];
	/*
	 * seen[p]: the nonce of partition p's incarnation this one knows.
	 * A partition counts a peer alive only once the peer's seen[] holds
	 * its own current nonce (a handshake), so no message is sent to an
	 * incarnation that would drop it.
	 */
	__le64 seen[XPMEM_MAX_PARTITIONS];
	__le64 reserved[4];
};

/*
 * Message types and their payload words.  "req" is the requester's id for
 * the request, echoed in the reply; "handle" names an object the owner
 * created for the requester (tagged, checked against the sender); errors
 * are negative errnos.  Requests go owner-ward, replies and invalidations
 * come back (docs/partitions.md).
 */
enum xpmem_msg_type {
	XPMEM_MSG_PING = 1,	/* cookie; echoed by PONG */
	XPMEM_MSG_PONG = 2,
	/* requests, to the owner of a segment; every one is answered by REPLY */
	XPMEM_MSG_GET = 3,	/* req, segid, writable, euid, egid */
	XPMEM_MSG_RELEASE = 4,	/* req, permit handle */
	XPMEM_MSG_ATTACH = 5,	/* req, permit handle, offset, size, cookie */
	XPMEM_MSG_DETACH = 6,	/* req, attachment handle */
	XPMEM_MSG_FAULT = 7,	/* req, attachment handle, offset | write (bit 0) */
	/*
	 * req, error, then per request: GET: permit handle, segment size;
	 * ATTACH: attachment handle; FAULT: the page's physical address in
	 * the owner.  -EAGAIN: the owner's queue was full, ask again.
	 */
	XPMEM_MSG_REPLY = 8,
	/* from the owner: zap, then ACK with the same id */
	XPMEM_MSG_INVAL = 9,	/* ack id, cookie, start offset, end offset */
	XPMEM_MSG_ACK = 10,	/* ack id */
	XPMEM_MSG_TYPES
};

/* a message: fixed size, so a ring entry never straddles anything */
struct xpmem_wire_msg {
	__le16 version;
	__le16 type;		/* enum xpmem_msg_type */
	__le16 src;		/* sending partition, must match the ring */
	__le16 dst;		/* receiving partition, must match the ring */
	__le32 len;		/* bytes of payload[] in use */
	/*
	 * The receiver's incarnation it is for: the low 32 bits of the
	 * receiver's nonce as the sender knew it.  A receiver drops a message
	 * for another one (sent before the sender saw it restart).
	 */
	__le32 to_incarnation;
	__le64 seq;		/* sender's per-ring sequence number */
	__le64 payload[5];
};

/* the producer's half of a ring: in the producer's region */
struct xpmem_wire_ring {
	__le64 head;		/* messages written so far */
	__le64 pad0[7];
	struct xpmem_wire_msg msg[XPMEM_RING_ENTRIES];
};

/* the consumer's half of a ring: in the consumer's region */
struct xpmem_wire_consumed {
	__le64 tail;		/* messages consumed so far */
	__le64 pad[7];
};

/* one partition's mailbox region: everything in it is written by that partition */
struct xpmem_mailbox {
	struct xpmem_wire_slot slot;
	struct xpmem_wire_consumed in[XPMEM_MAX_PARTITIONS];
	struct xpmem_wire_ring out[XPMEM_MAX_PARTITIONS];
};

static_assert(sizeof(struct xpmem_wire_slot) == 128);
static_assert(sizeof(struct xpmem_wire_msg) == 64);
static_assert(sizeof(struct xpmem_wire_ring) == 64 + 64 * XPMEM_RING_ENTRIES);
static_assert(sizeof(struct xpmem_wire_consumed) == 64);
static_assert(sizeof(struct xpmem_mailbox) <= XPMEM_MAILBOX_SCRATCH);

#endif /* _XPMEM_WIRE_H */
