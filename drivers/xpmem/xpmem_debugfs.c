// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_debugfs.c - /sys/kernel/debug/xpmem/
 *
 *   counters      "name value" lines; the live-object counts (segments,
 *                 accesses, attachments, notifiers, rmap_entries) return
 *                 to 0 when nothing is in use, which the tests assert.
 *   ack_delay_ms  test hook: delay every acknowledgment (local, or to
 *                 an owning partition), to exercise slow acknowledgers
 *                 (0 = off).
 *   partitions    the fabric: this partition and each peer's state
 *   ping          write "PEER COUNT": measured round trips to PEER; read
 *                 the result (xpmem_fabric.c)
 *   test_pin_pages  test hook: attachments made while it is Y keep a page
 *                 reference on everything they map, like pinning XPMEM
 *                 implementations; proves the no-pinning tests can fail.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "xpmem_internal.h"

unsigned int xpmem_ack_delay_ms;
bool xpmem_test_pin_pages;

static struct dentry *xpmem_debugfs_dir;

#define XPMEM_COUNTER(name) { #name, &xpmem_stats.name }

static const struct {
	const char *name;
	atomic_long_t *value;
} xpmem_counter_table[] = {
	XPMEM_COUNTER(segments),
	XPMEM_COUNTER(accesses),
	XPMEM_COUNTER(attachments),
	XPMEM_COUNTER(notifiers),
	XPMEM_COUNTER(rmap_entries),
	XPMEM_COUNTER(gets),
	XPMEM_COUNTER(attaches),
	XPMEM_COUNTER(faults),
	XPMEM_COUNTER(fault_retries),
	XPMEM_COUNTER(fault_slow),
	XPMEM_COUNTER(mkwrite),
	XPMEM_COUNTER(invalidations),
	XPMEM_COUNTER(invalidate_hits),
	XPMEM_COUNTER(invalidate_nonblock_busy),
	XPMEM_COUNTER(acks),
	XPMEM_COUNTER(ack_wait_slow),
	XPMEM_COUNTER(revokes),
	XPMEM_COUNTER(attacher_mms),
	XPMEM_COUNTER(pages_given),
	XPMEM_COUNTER(pages_withheld),
	XPMEM_COUNTER(amm_bracket_waits),
	XPMEM_COUNTER(fabric_tx),
	XPMEM_COUNTER(fabric_rx),
	XPMEM_COUNTER(fabric_bad),
	XPMEM_COUNTER(fabric_peers_dead),
	XPMEM_COUNTER(exports),
	XPMEM_COUNTER(export_atts),
	XPMEM_COUNTER(export_faults),
	XPMEM_COUNTER(export_invals),
	XPMEM_COUNTER(export_acks),
	XPMEM_COUNTER(export_fenced_acks),
	XPMEM_COUNTER(import_faults),
	XPMEM_COUNTER(import_invals),
};

static int xpmem_counters_show(struct seq_file *m, void *unused)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(xpmem_counter_table); i++)
		seq_printf(m, "%s %ld\n", xpmem_counter_table[i].name,
			   atomic_long_read(xpmem_counter_table[i].value));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xpmem_counters);

void xpmem_debugfs_init(void)
{
	/* debugfs failures are not fatal; the handles are checked inside */
	xpmem_debugfs_dir = debugfs_create_dir(XPMEM_MODULE_NAME, NULL);
	debugfs_create_file("counters", 0444, xpmem_debugfs_dir, NULL,
			    &xpmem_counters_fops);
	debugfs_create_u32("ack_delay_ms", 0600, xpmem_debugfs_dir,
			   &xpmem_ack_delay_ms);
	debugfs_create_bool("test_pin_pages", 0600, xpmem_debugfs_dir,
			    &xpmem_test_pin_pages);
	xpmem_fabric_debugfs(xpmem_debugfs_dir);
}

void xpmem_debugfs_exit(void)
{
	debugfs_remove_recursive(xpmem_debugfs_dir);
}
