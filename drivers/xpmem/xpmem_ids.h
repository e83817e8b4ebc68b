/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_ids.h - ids users hold (segids, apids), wire handles, and what each
 * user may own (xpmem_ids.c).  Below everything but the counters.
 */
#ifndef _XPMEM_IDS_H
#define _XPMEM_IDS_H

#include <linux/rhashtable-types.h>
#include <linux/types.h>
#include <linux/xarray.h>

#include "xpmem.h"

enum xpmem_id_kind { XPMEM_ID_SEGMENT, XPMEM_ID_PERMIT, XPMEM_NR_ID_KINDS };

/* an object findable by its id (embedded in segments and permits) */
struct xpmem_id {
	struct rhash_head node;
	s64 id;
};

int xpmem_id_publish(struct xpmem_id *e, enum xpmem_id_kind kind);
void xpmem_id_withdraw(struct xpmem_id *e, enum xpmem_id_kind kind);
struct xpmem_id *xpmem_id_find(s64 id, enum xpmem_id_kind kind);
int xpmem_id_partition(s64 id);
int xpmem_id_lookup_allowed(void);
void xpmem_id_lookup_forged(void);
bool xpmem_id_forged(s64 id, enum xpmem_id_kind kind);

/* what a user owns, counted against the per-user limits */
enum xpmem_owned {
	XPMEM_OWNS_SEGMENT,
	XPMEM_OWNS_PERMIT,
	XPMEM_OWNS_ATTACHMENT,
	/* local attachments of another user's memory: mirrors on its mm */
	XPMEM_OWNS_FOREIGN_MIRROR,
	XPMEM_NR_OWNED
};

struct xpmem_user;

struct xpmem_user *xpmem_user_charge(enum xpmem_owned what);
void xpmem_user_uncharge(struct xpmem_user *u, enum xpmem_owned what);

int xpmem_handle_alloc(struct xarray *xa, void *obj, u64 *handle, gfp_t gfp);
void *xpmem_handle_lookup(struct xarray *xa, u64 handle, size_t offset);
bool xpmem_handle_free(struct xarray *xa, u64 handle, void *obj);

int xpmem_ids_init(int partition);
void xpmem_ids_exit(void);

#endif /* _XPMEM_IDS_H */
