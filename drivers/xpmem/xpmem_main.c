// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_main.c - /dev/xpmem: the misc device, its ioctls, module init.
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
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "xpmem_internal.h"

struct xpmem_counters xpmem_stats;

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
	int ret;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (!xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	if (cmd.flags != XPMEM_RDONLY && cmd.flags != XPMEM_RDWR)
		return -EINVAL;
	if (cmd.permit_type != XPMEM_PERMIT_MODE)
		return -EINVAL;
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
	unsigned long vaddr;
	int ret;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.flags || cmd.pad || !xpmem_reserved_zero(cmd.reserved))
		return -EINVAL;
	vaddr = cmd.vaddr;
	ret = xpmem_attach(xf, cmd.apid, cmd.offset, cmd.size, &vaddr);
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
	mutex_init(&xf->lock);
	INIT_LIST_HEAD(&xf->segments);
	INIT_LIST_HEAD(&xf->accesses);
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

static const struct file_operations xpmem_fops = {
	.owner = THIS_MODULE,
	.open = xpmem_open,
	.flush = xpmem_flush,
	.release = xpmem_release,
	.unlocked_ioctl = xpmem_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice xpmem_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = XPMEM_MODULE_NAME,
	.fops = &xpmem_fops,
	.mode = 0666,
};

static int __init xpmem_init(void)
{
	int ret;

	ret = xpmem_ids_init();
	if (ret)
		return ret;
	ret = xpmem_mirror_init();
	if (ret)
		goto err_ids;
	ret = xpmem_attach_init();
	if (ret)
		goto err_mirror;
	ret = misc_register(&xpmem_miscdev);
	if (ret)
		goto err_attach;
	xpmem_debugfs_init();
	ret = xpmem_remote_init();
	if (ret)
		goto err_misc;
	ret = xpmem_fabric_init();
	if (ret)
		goto err_remote;
	pr_info("xpmem: version %s loaded (/dev/%s)\n",
		XPMEM_CURRENT_VERSION_STRING, XPMEM_MODULE_NAME);
	return 0;

err_remote:
	xpmem_remote_exit();
err_misc:
	xpmem_debugfs_exit();
	misc_deregister(&xpmem_miscdev);
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
	xpmem_fabric_exit();
	xpmem_remote_exit();
	xpmem_debugfs_exit();
	misc_deregister(&xpmem_miscdev);
	xpmem_attach_exit();
	xpmem_mirror_exit();
	xpmem_ids_exit();
	pr_info("xpmem: unloaded\n");
}

module_init(xpmem_init);
module_exit(xpmem_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Cross-process memory export/attach with sleeping notifiers");
MODULE_VERSION(XPMEM_CURRENT_VERSION_STRING);
