// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libxpmem - the established XPMEM user API on top of /dev/xpmem.
 *
 * Every call returns -1 (or (void *)-1 for xpmem_attach) with errno set
 * on failure.  The device is opened once per process, lazily or by
 * xpmem_init(); the descriptor is shared by all threads.  A forked child
 * inherits it: the driver scopes segments and permits to the thread
 * group that made them, so the child starts with none.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "xpmem.h"

#define XPMEM_EXPORT __attribute__((visibility("default")))

static int xpmem_fd = -1;

static int xpmem_dev(void)
{
	int fd = __atomic_load_n(&xpmem_fd, __ATOMIC_ACQUIRE);
	int expected = -1;

	if (fd >= 0)
		return fd;
	fd = open(XPMEM_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!__atomic_compare_exchange_n(&xpmem_fd, &expected, fd, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		close(fd);	/* another thread won the race */
		fd = expected;
	}
	return fd;
}

static int xpmem_ioctl(unsigned long cmd, void *arg)
{
	int fd = xpmem_dev();

	if (fd < 0)
		return -1;
	return ioctl(fd, cmd, arg);
}

XPMEM_EXPORT int xpmem_init(void)
{
	return xpmem_dev() < 0 ? -1 : 0;
}

XPMEM_EXPORT int xpmem_version(void)
{
	struct xpmem_cmd_version cmd;

	memset(&cmd, 0, sizeof(cmd));
	if (xpmem_ioctl(XPMEM_CMD_VERSION, &cmd) < 0)
		return -1;
	return (int)cmd.version;
}

XPMEM_EXPORT xpmem_segid_t xpmem_make(void *vaddr, size_t size,
				      int permit_type, void *permit_value)
{
	struct xpmem_cmd_make cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.vaddr = (uintptr_t)vaddr;
	/* keep "whole address space" recognisable on 32-bit userspace too */
	cmd.size = size == XPMEM_MAXADDR_SIZE ? (__u64)-1 : (__u64)size;
	cmd.permit_type = (__u32)permit_type;
	cmd.permit_value = (uintptr_t)permit_value;
	if (xpmem_ioctl(XPMEM_CMD_MAKE, &cmd) < 0)
		return -1;
	return cmd.segid;
}

XPMEM_EXPORT int xpmem_remove(xpmem_segid_t segid)
{
	struct xpmem_cmd_remove cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.segid = segid;
	return xpmem_ioctl(XPMEM_CMD_REMOVE, &cmd) < 0 ? -1 : 0;
}

XPMEM_EXPORT xpmem_apid_t xpmem_get(xpmem_segid_t segid, int flags,
				    int permit_type, void *permit_value)
{
	struct xpmem_cmd_get cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.segid = segid;
	cmd.flags = (__u32)flags;
	cmd.permit_type = (__u32)permit_type;
	cmd.permit_value = (uintptr_t)permit_value;
	if (xpmem_ioctl(XPMEM_CMD_GET, &cmd) < 0)
		return -1;
	return cmd.apid;
}

XPMEM_EXPORT int xpmem_release(xpmem_apid_t apid)
{
	struct xpmem_cmd_release cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.apid = apid;
	return xpmem_ioctl(XPMEM_CMD_RELEASE, &cmd) < 0 ? -1 : 0;
}

XPMEM_EXPORT void *xpmem_attach(struct xpmem_addr addr, size_t size,
				void *vaddr)
{
	struct xpmem_cmd_attach cmd;

	if (addr.offset < 0) {
		errno = EINVAL;
		return (void *)-1;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.apid = addr.apid;
	cmd.offset = (__u64)addr.offset;
	cmd.size = size;
	cmd.vaddr = (uintptr_t)vaddr;
	if (xpmem_ioctl(XPMEM_CMD_ATTACH, &cmd) < 0)
		return (void *)-1;
	return (void *)(uintptr_t)cmd.vaddr;
}

XPMEM_EXPORT int xpmem_detach(void *vaddr)
{
	struct xpmem_cmd_detach cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.vaddr = (uintptr_t)vaddr;
	return xpmem_ioctl(XPMEM_CMD_DETACH, &cmd) < 0 ? -1 : 0;
}
