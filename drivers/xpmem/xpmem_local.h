/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_local.h - the local kind of attachment and the permits of this
 * partition's segments (xpmem_local.c).  Above the attachment core.
 */
#ifndef _XPMEM_LOCAL_H
#define _XPMEM_LOCAL_H

void xpmem_local_init(void);

#endif /* _XPMEM_LOCAL_H */
