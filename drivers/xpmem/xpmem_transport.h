/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_transport.h - what the partition protocol (xpmem_proto.c) needs
 * from a transport between partitions, and what a transport calls back.
 *
 * Down (struct xpmem_transport): send a fixed-size message without
 * sleeping, tell whether a peer is alive, where a peer's RAM is reachable
 * from here (its window), fence a peer that stopped answering.  Up (struct
 * xpmem_transport_client): a message arrived, a peer's incarnation ended,
 * a heartbeat went by.  The transport owns liveness (heartbeats, the peer
 * timeout, restarts) and the validation of what it carries up to the
 * message header; the protocol owns message types and payloads.
 *
 * One implementation: xpmem_ivshmem.c, the emulated machine's ivshmem
 * mailboxes and windows (docs/partitions.md).  Another fabric (a real NTB,
 * a CXL shared window) would be one more file providing the same struct.
 */
#ifndef _XPMEM_TRANSPORT_H
#define _XPMEM_TRANSPORT_H

#include <linux/types.h>

struct dentry;

struct xpmem_transport_client {
	/*
	 * A message of @type from @src whose header (version, source,
	 * destination) checked out; @payload as on the wire, @len bytes of
	 * it in use.  Runs in the transport's receive context, which must
	 * never sleep.  0, or -EINVAL with *why and *val saying why the
	 * transport should count and drop it.
	 */
	int (*rx)(int src, u16 type, const __le64 *payload, unsigned int len,
		  const char **why, u64 *val);
	/* @peer's incarnation ended (death, fence, leave, restart); never sleeps */
	void (*peer_down)(int peer);
	/* every heartbeat, for each live peer; never sleeps */
	void (*tick)(int peer);
};

struct xpmem_transport {
	const char *name;
	/* queue a message; never sleeps: -ENOBUFS full, -EHOSTDOWN not alive, -ENODEV not on it */
	int (*send)(int dst, u16 type, const u64 *payload, unsigned int npayload);
	bool (*alive)(int peer);
	/* peer @peer's RAM as a physical range of this partition */
	bool (*window)(int peer, phys_addr_t *start, phys_addr_t *len);
	/* where this partition's @phys shows in its peers' windows of it */
	bool (*own_offset)(phys_addr_t phys, u64 *offset);
	/* declare @peer dead though it beats (it stopped answering); it is told */
	void (*fence)(int peer, const char *why);
	/* a message that passed the transport's checks but not the protocol's */
	void (*count_bad)(int peer, const char *why, u64 val);
	/* a live peer answers within this; a silent one is dead after it */
	unsigned int (*timeout_ms)(void);
	void (*debugfs)(struct dentry *dir);
};

/* ---- the ivshmem transport (xpmem_ivshmem.c) ---------------------------- */

int xpmem_ivshmem_me(void);
const struct xpmem_transport *xpmem_ivshmem_transport(void);
int xpmem_ivshmem_start(const struct xpmem_transport_client *client);
void xpmem_ivshmem_stop(void);

#endif /* _XPMEM_TRANSPORT_H */
