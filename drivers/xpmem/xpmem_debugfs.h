/* SPDX-License-Identifier: GPL-2.0 */
/* xpmem_debugfs.h - /sys/kernel/debug/xpmem (xpmem_debugfs.c) */
#ifndef _XPMEM_DEBUGFS_H
#define _XPMEM_DEBUGFS_H

void xpmem_debugfs_init(void);
void xpmem_debugfs_exit(void);

#endif /* _XPMEM_DEBUGFS_H */
