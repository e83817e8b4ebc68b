/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_proto.h - the memory protocol between partitions (xpmem_proto.c):
 * requests that wait for their reply, which context handles each message
 * type, peer generations, and what happens when a peer goes away.  Above
 * the transport (xpmem_transport.h); the owner's side (xpmem_export.c)
 * and the attacher's side (xpmem_import.c) register their handlers here.
 */
#ifndef _XPMEM_PROTO_H
#define _XPMEM_PROTO_H

#include <linux/types.h>

#include "xpmem_wire.h"

struct dentry;

#define XPMEM_PAYLOAD_WORDS	5
/* invalidations an owner may have outstanding per peer (a power of two) */
#define XPMEM_ACK_SLOTS		256

/* where a message type is handled */
enum xpmem_proto_ctx {
	/*
	 * In the transport's receive context, on the spot: must not sleep.
	 * ->rx returns false if the message matches nothing (counted bad).
	 */
	XPMEM_IN_RECEIVE,
	/* in the peer's request queue (a worker; may sleep): a request to us as owner */
	XPMEM_IN_REQUESTS,
	/* in the peer's invalidation queue (a worker; may sleep): to us as attacher */
	XPMEM_IN_INVALS,
};

struct xpmem_proto_handler {
	enum xpmem_proto_ctx ctx;
	unsigned int len;		/* payload bytes the message carries */
	/* XPMEM_IN_RECEIVE: handle now; false: counted bad as @bad_why */
	bool (*rx)(int peer, const u64 *p);
	const char *bad_why;
	/* the queues: the peer's generation when it arrived, checked current */
	void (*handle)(int peer, u64 gen, const u64 *p);
};

/* what a side does when a peer's incarnation ends, and every heartbeat */
struct xpmem_proto_peer_ops {
	void (*down)(int peer);		/* receive context: no sleeping */
	void (*cleanup)(int peer);	/* a worker, after down: revoke what it held */
	void (*tick)(int peer);		/* receive context, each heartbeat */
};

void xpmem_proto_register(u16 type, const struct xpmem_proto_handler *h);
void xpmem_proto_register_peer_ops(const struct xpmem_proto_peer_ops *ops);

int xpmem_proto_me(void);
u64 xpmem_peer_gen(int peer);
bool xpmem_peer_alive(int peer);
bool xpmem_peer_window(int peer, phys_addr_t *start, phys_addr_t *len);
bool xpmem_own_window_offset(phys_addr_t phys, u64 *offset);
void xpmem_peer_fence(int peer, const char *why);
void xpmem_peer_count_bad(int peer, const char *why, u64 val);
unsigned int xpmem_peer_timeout_ms(void);
int xpmem_peer_send(int dst, u16 type, const u64 *payload, unsigned int npayload);
int xpmem_peer_send_wait(int dst, u16 type, const u64 *payload, unsigned int npayload,
			 bool killable);
int xpmem_rpc_call(int dst, u16 type, u64 *req, unsigned int nreq,
		   u64 *reply, bool killable);

int xpmem_proto_init(void);
int xpmem_proto_start(void);
void xpmem_proto_stop(void);
void xpmem_proto_exit(void);
void xpmem_proto_debugfs(struct dentry *dir);

#endif /* _XPMEM_PROTO_H */
