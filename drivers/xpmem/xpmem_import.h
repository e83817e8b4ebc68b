/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_import.h - permits on and attachments of other partitions'
 * segments (xpmem_import.c): the remote kind of attachment.
 */
#ifndef _XPMEM_IMPORT_H
#define _XPMEM_IMPORT_H

#include "xpmem.h"

struct xpmem_file;

int xpmem_import_get(struct xpmem_file *xf, int peer, xpmem_segid_t segid, bool writable,
		     xpmem_apid_t *apid);
void xpmem_import_init(void);

#endif /* _XPMEM_IMPORT_H */
