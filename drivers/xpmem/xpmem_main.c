// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_main.c - /dev/xpmem: the misc device, its ioctls, its fdinfo,
 * and module init: the top layer (docs/design.md has the picture).
 *
 * Every ioctl argument struct has flags and reserved words; unknown flags
 * and non-zero reserved words are refused with EINVAL so the ABI can grow
 * (include/uapi/xpmem.h).
 *
 * Locking: xpmem_file.lock protects the lists of segments and access
 * permits created through one open file.  It is a mutex taken from ioctl
 * and close context only, outside any mmap lock (see xpmem_segment.c for
 * the full order).  ->flush runs on every close of a descriptor (also at
 * exit, after the closing task's mm is gone) and drops what the closing
 * thread group created; ->release (last close) drops everything left.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "xpmem_attach.h"
#include "xpmem_debugfs.h"
#include "xpmem_export.h"
#include "xpmem_ids.h"
#include "xpmem_import.h"
#include "xpmem_local.h"
#include "xpmem_mirror.h"
#include "xpmem_proto.h"
#include "xpmem_segment.h"

/*
 * The release: the same as the library's and the packages' (Makefile
 * VERSION, dkms.conf, debian/changelog; tests/packaging checks that they
 * agree).  XPMEM_CURRENT_VERSION_STRING in xpmem.h is the interface's
 * version, which changes only with the ABI.
 */
#define XPMEM_MODULE_VERSION	"3.0.0"

/* every argument struct ends in two reserved words that must be zero */
static bool xpmem_reserved_zero(const __u64 reserved[2])
{
	return !reserved[0] && !reserved[1];
}

static long xpmem_ioc_version(void __user *uarg)
{
	struct xpmem_cmd_version cmd;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.flags || !xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	cmd.version = XPMEM_CURRENT_VERSION;
	if (copy_to_user(uarg, &cmd, sizeof(cmd)))
		return -EFAULT;
	return 0;
}

static long xpmem_ioc_make(struct xpmem_file *xf, void __user *uarg)
{
	struct xpmem_cmd_make cmd;
	xpmem_segid_t segid;
	int ret;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.flags || !xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	if (cmd.permit_type != XPMEM_PERMIT_MODE || cmd.permit_value & ~0777ULL)
		return -EINVAL;
	ret = xpmem_segment_make(xf, cmd.vaddr, cmd.size,
				 (umode_t)cmd.permit_value, &segid);
	if (ret)
		return ret;
	cmd.segid = segid;
	if (copy_to_user(uarg, &cmd, sizeof(cmd))) {
		xpmem_segment_remove(xf, segid);
		return -EFAULT;
	}
	return 0;
}

static long xpmem_ioc_remove(struct xpmem_file *xf, void __user *uarg)
{
	struct xpmem_cmd_remove cmd;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.flags || cmd.pad || !xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	return xpmem_segment_remove(xf, cmd.segid);
}

static long xpmem_ioc_get(struct xpmem_file *xf, void __user *uarg)
{
	struct xpmem_cmd_get cmd;
	xpmem_apid_t apid;
	int peer, ret;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (!xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	if (cmd.flags != XPMEM_RDONLY && cmd.flags != XPMEM_RDWR)
		return -EINVAL;
	if (cmd.permit_type != XPMEM_PERMIT_MODE)
		return -EINVAL;
	if (cmd.segid <= 0)
		return -EINVAL;
	peer = xpmem_id_partition(cmd.segid);
	if (peer >= 0)	/* another partition's segment: its owner decides */
		ret = xpmem_import_get(xf, peer, cmd.segid, cmd.flags == XPMEM_RDWR, &apid);
	else
		ret = xpmem_access_get(xf, cmd.segid, cmd.flags == XPMEM_RDWR, &apid);
	if (ret)
		return ret;
	cmd.apid = apid;
	if (copy_to_user(uarg, &cmd, sizeof(cmd))) {
		xpmem_access_release(xf, apid);
		return -EFAULT;
	}
	return 0;
}

static long xpmem_ioc_release(struct xpmem_file *xf, void __user *uarg)
{
	struct xpmem_cmd_release cmd;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.flags || cmd.pad || !xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	return xpmem_access_release(xf, cmd.apid);
}

static long xpmem_ioc_attach(struct xpmem_file *xf, void __user *uarg)
{
	struct xpmem_cmd_attach cmd;
	struct xpmem_access *ap;
	unsigned long vaddr;
	int ret;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.flags || cmd.pad || !xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	/*
	 * A size that is not a page multiple is rounded up to one, as the
	 * established XPMEM driver does (Open MPI's vader attaches a 2 MiB
	 * aligned span plus one byte and does not check the result); the
	 * offset and the address must still be page aligned.
	 */
	if (cmd.size > ULONG_MAX - PAGE_SIZE + 1)
		return -EINVAL;
	cmd.size = PAGE_ALIGN(cmd.size);
	vaddr = cmd.vaddr;
	ap = xpmem_access_lookup(cmd.apid);
	if (IS_ERR(ap))
		return PTR_ERR(ap);
	/* the permit's kind attaches; it takes over the lookup's reference */
	ret = ap->ops->attach(ap, cmd.offset, cmd.size, &vaddr);
	if (ret)
		return ret;
	cmd.vaddr = vaddr;
	if (copy_to_user(uarg, &cmd, sizeof(cmd))) {
		xpmem_detach(vaddr);
		return -EFAULT;
	}
	return 0;
}

static long xpmem_ioc_detach(void __user *uarg)
{
	struct xpmem_cmd_detach cmd;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.flags || cmd.pad || !xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	return xpmem_detach(cmd.vaddr);
}

static long xpmem_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct xpmem_file *xf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case XPMEM_CMD_VERSION:
		return xpmem_ioc_version(uarg);
	case XPMEM_CMD_MAKE:
		return xpmem_ioc_make(xf, uarg);
	case XPMEM_CMD_REMOVE:
		return xpmem_ioc_remove(xf, uarg);
	case XPMEM_CMD_GET:
		return xpmem_ioc_get(xf, uarg);
	case XPMEM_CMD_RELEASE:
		return xpmem_ioc_release(xf, uarg);
	case XPMEM_CMD_ATTACH:
		return xpmem_ioc_attach(xf, uarg);
	case XPMEM_CMD_DETACH:
		return xpmem_ioc_detach(uarg);
	default:
		return -ENOTTY;
	}
}

static int xpmem_open(struct inode *inode, struct file *file)
{
	struct xpmem_file *xf = kzalloc(sizeof(*xf), GFP_KERNEL_ACCOUNT);

	if (!xf)
		return -ENOMEM;
	xpmem_file_init(xf);
	file->private_data = xf;
	return 0;
}

static int xpmem_flush(struct file *file, fl_owner_t id)
{
	xpmem_file_cleanup(file->private_data, false);
	return 0;
}

static int xpmem_release(struct inode *inode, struct file *file)
{
	struct xpmem_file *xf = file->private_data;

	xpmem_file_cleanup(xf, true);
	kfree(xf);
	return 0;
}

/* /proc/PID/fdinfo/FD: what was made through this descriptor */
static void xpmem_show_fdinfo(struct seq_file *m, struct file *file)
{
	xpmem_file_show(m, file->private_data);
}

static const struct file_operations xpmem_fops = {
	.owner = THIS_MODULE,
	.open = xpmem_open,
	.show_fdinfo = xpmem_show_fdinfo,
	.flush = xpmem_flush,
	.release = xpmem_release,
	.unlocked_ioctl = xpmem_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice xpmem_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "xpmem",
	.fops = &xpmem_fops,
	.mode = 0666,
};

/*
 * Bottom up: ids, mirrors, attachments, the kinds and the partition sides
 * (which register with the protocol), the transport, the device, debugfs.
 * Exit is the reverse: the transport stops first (every peer goes down,
 * its cleanups run), the device goes before anything it uses.
 */
static int __init xpmem_init(void)
{
	int ret;

	ret = xpmem_ids_init(xpmem_proto_me());
	if (ret)
		return ret;
	ret = xpmem_mirror_init();
	if (ret)
		goto err_ids;
	ret = xpmem_attach_init();
	if (ret)
		goto err_mirror;
	xpmem_local_init();
	ret = xpmem_proto_init();
	if (ret)
		goto err_attach;
	/* peer cleanup runs in this order: the attacher's side, then the owner's */
	xpmem_import_init();
	xpmem_export_init();
	ret = xpmem_proto_start();
	if (ret)
		goto err_proto;
	ret = misc_register(&xpmem_miscdev);
	if (ret)
		goto err_stop;
	xpmem_debugfs_init();
	pr_info("xpmem: version %s (interface %s) loaded (/dev/xpmem)\n",
		XPMEM_MODULE_VERSION, XPMEM_CURRENT_VERSION_STRING);
	return 0;

err_stop:
	xpmem_proto_stop();
err_proto:
	xpmem_export_exit();
	xpmem_proto_exit();
err_attach:
	xpmem_attach_exit();
err_mirror:
	xpmem_mirror_exit();
err_ids:
	xpmem_ids_exit();
	return ret;
}

static void __exit xpmem_exit(void)
{
	xpmem_debugfs_exit();
	misc_deregister(&xpmem_miscdev);
	xpmem_attach_flush();
	xpmem_proto_stop();
	xpmem_export_exit();
	xpmem_proto_exit();
	xpmem_attach_exit();
	xpmem_mirror_exit();
	xpmem_ids_exit();
	pr_info("xpmem: unloaded\n");
}

module_init(xpmem_init);
module_exit(xpmem_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Cross-process memory export/attach with sleeping notifiers");
MODULE_VERSION(XPMEM_MODULE_VERSION);
