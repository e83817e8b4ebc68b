/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_export.h - the owner's side of cross-partition export
 * (xpmem_export.c): registers its request handlers with the protocol.
 */
#ifndef _XPMEM_EXPORT_H
#define _XPMEM_EXPORT_H

void xpmem_export_init(void);
void xpmem_export_exit(void);

#endif /* _XPMEM_EXPORT_H */
