/* SPDX-License-Identifier: LGPL-2.1 WITH Linux-syscall-note */
/*
 * xpmem.h - cross-process / cross-partition memory: ABI and user API.
 *
 * This one header serves two readers:
 *  - the kernel module (drivers/xpmem), which only sees the ioctl ABI
 *    below (fixed-size structs, 64-bit fields, explicit padding, so that
 *    32- and 64-bit userspace produce the same layout);
 *  - programs written for the established XPMEM API, which see the same
 *    types and function prototypes they always have (xpmem_make,
 *    xpmem_get, xpmem_attach, ...) and link against libxpmem.
 *
 * Growth rule: every argument struct has a flags word and reserved
 * words.  The driver refuses unknown flag bits and non-zero reserved
 * words with EINVAL, so a later version can give them a meaning without
 * old kernels silently ignoring it.
 */
#ifndef _UAPI_XPMEM_H
#define _UAPI_XPMEM_H

#include <linux/types.h>
#include <linux/ioctl.h>
#ifndef __KERNEL__
#include <stddef.h>
#include <sys/types.h>
#endif

/* ---- types shared with the established XPMEM API ---------------------- */

typedef __s64 xpmem_segid_t;	/* returned by xpmem_make() */
typedef __s64 xpmem_apid_t;	/* returned by xpmem_get() */

#ifndef __KERNEL__
struct xpmem_addr {
	xpmem_apid_t apid;	/* access permit that represents the memory */
	off_t offset;		/* offset into the segment */
};
#endif

/* xpmem_make(NULL, XPMEM_MAXADDR_SIZE, ...) exports the whole address space */
#define XPMEM_MAXADDR_SIZE	((size_t)-1L)

/* Access flags for xpmem_get() */
#define XPMEM_RDONLY		0x1
#define XPMEM_RDWR		0x2

/* permit_type values: XPMEM_PERMIT_MODE takes unix mode bits (mask 0777) */
#define XPMEM_PERMIT_MODE	0x1

/* Kept for source compatibility with programs that test for it. */
#define XPMEM_ERRNO_NOPROC	2004

#define XPMEM_DEV_PATH		"/dev/xpmem"

/* Version: major in bits 31..16, minor in 15..0 */
#define XPMEM_CURRENT_VERSION		0x00030000
#define XPMEM_CURRENT_VERSION_STRING	"3.0"

/*
 * Layout of a segid / apid (both positive 63-bit values):
 *   bit  63     always 0 (ids are positive; -1 is the error return)
 *   bits 62..56 partition field: 0 off a fabric, owning partition + 1 on one
 *   bits 55..0  unpredictable, drawn afresh for every object (40 random
 *               bits and a 16-bit keyed tag the driver checks): an id
 *               cannot be enumerated or guessed (about 2^55 tries), and
 *               one id says nothing about the next.  Presenting ids the
 *               driver never issued is rate-limited per user (EAGAIN);
 *               ids of objects that ended (ENOENT) are not.
 */
#define XPMEM_ID_PARTITION_SHIFT	56
#define XPMEM_ID_PARTITION_MASK		0x7fULL
#define XPMEM_ID_RANDOM_MASK		0x00ffffffffffffffULL

/* ---- ioctl ABI on /dev/xpmem ------------------------------------------ */

#define XPMEM_IOC_MAGIC		'X'

struct xpmem_cmd_version {
	__u32 version;		/* out: XPMEM_CURRENT_VERSION of the driver */
	__u32 flags;		/* in: must be 0 */
	__u64 reserved[2];	/* in: must be 0 */
};

struct xpmem_cmd_make {
	__u64 vaddr;		/* in: page-aligned start, 0 for whole AS */
	__u64 size;		/* in: page-aligned size or XPMEM_MAXADDR_SIZE */
	__u64 permit_value;	/* in: mode bits for XPMEM_PERMIT_MODE */
	__u32 permit_type;	/* in: XPMEM_PERMIT_MODE */
	__u32 flags;		/* in: must be 0 */
	__s64 segid;		/* out */
	__u64 reserved[2];	/* in: must be 0 */
};

struct xpmem_cmd_remove {
	__s64 segid;		/* in */
	__u32 flags;		/* in: must be 0 */
	__u32 pad;		/* in: must be 0 */
	__u64 reserved[2];	/* in: must be 0 */
};

struct xpmem_cmd_get {
	__s64 segid;		/* in */
	__u32 flags;		/* in: XPMEM_RDONLY or XPMEM_RDWR */
	__u32 permit_type;	/* in: XPMEM_PERMIT_MODE */
	__u64 permit_value;	/* in: unused, accepted for compatibility */
	__s64 apid;		/* out */
	__u64 reserved[2];	/* in: must be 0 */
};

struct xpmem_cmd_release {
	__s64 apid;		/* in */
	__u32 flags;		/* in: must be 0 */
	__u32 pad;		/* in: must be 0 */
	__u64 reserved[2];	/* in: must be 0 */
};

struct xpmem_cmd_attach {
	__s64 apid;		/* in */
	__u64 offset;		/* in: page-aligned offset into the segment */
	__u64 size;		/* in: non-zero; rounded up to a page */
	__u64 vaddr;		/* in: 0 = kernel chooses, else fixed */
				/* out: address of the attachment */
	__u32 flags;		/* in: must be 0 */
	__u32 pad;		/* in: must be 0 */
	__u64 reserved[2];	/* in: must be 0 */
};

struct xpmem_cmd_detach {
	__u64 vaddr;		/* in: any address inside an attachment */
	__u32 flags;		/* in: must be 0 */
	__u32 pad;		/* in: must be 0 */
	__u64 reserved[2];	/* in: must be 0 */
};

#define XPMEM_CMD_VERSION	_IOWR(XPMEM_IOC_MAGIC, 0, struct xpmem_cmd_version)
#define XPMEM_CMD_MAKE		_IOWR(XPMEM_IOC_MAGIC, 1, struct xpmem_cmd_make)
#define XPMEM_CMD_REMOVE	_IOW(XPMEM_IOC_MAGIC, 2, struct xpmem_cmd_remove)
#define XPMEM_CMD_GET		_IOWR(XPMEM_IOC_MAGIC, 3, struct xpmem_cmd_get)
#define XPMEM_CMD_RELEASE	_IOW(XPMEM_IOC_MAGIC, 4, struct xpmem_cmd_release)
#define XPMEM_CMD_ATTACH	_IOWR(XPMEM_IOC_MAGIC, 5, struct xpmem_cmd_attach)
#define XPMEM_CMD_DETACH	_IOW(XPMEM_IOC_MAGIC, 6, struct xpmem_cmd_detach)

/* ---- the established user API (libxpmem) ------------------------------ */

#ifndef __KERNEL__
#ifdef __cplusplus
extern "C" {
#endif

int xpmem_init(void);
int xpmem_version(void);
xpmem_segid_t xpmem_make(void *vaddr, size_t size, int permit_type,
			 void *permit_value);
int xpmem_remove(xpmem_segid_t segid);
xpmem_apid_t xpmem_get(xpmem_segid_t segid, int flags, int permit_type,
		       void *permit_value);
int xpmem_release(xpmem_apid_t apid);
void *xpmem_attach(struct xpmem_addr addr, size_t size, void *vaddr);
int xpmem_detach(void *vaddr);

#ifdef __cplusplus
}
#endif
#endif /* !__KERNEL__ */

#endif /* _UAPI_XPMEM_H */
