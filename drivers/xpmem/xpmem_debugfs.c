// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_debugfs.c - /sys/kernel/debug/xpmem/
 *
 *   counters      "name value" lines: every counter, live and events.
 *   live          the same, for the live-object counts only: each returns
 *                 to 0 when nothing is in use, which the tests assert by
 *                 reading this file (so none can be forgotten).
 *   histograms    "NAME LOW COUNT": latency histograms in log2 buckets of
 *                 nanoseconds (fault, remote fault, invalidation wait)
 *   partitions    the fabric: this partition and each peer's state
 *   ping          write "PEER COUNT": measured round trips to PEER; read
 *                 the result (the transport, xpmem_ivshmem.c)
 * Only in modules built with CONFIG_XPMEM_TEST_HOOKS (the test builds):
 *   ack_delay_ms  delay every acknowledgment (a local zap, in the zap
 *                 worker, or an ACK to an owning partition), to exercise
 *                 slow acknowledgers (0 = off)
 *   zaps_held_max  the most local zaps that ack_delay_ms held at once
 *                 (write 0 to reset): all of an invalidation's zaps wait
 *                 together, or one after another
 *   test_pin_pages  attachments made while it is Y keep a page reference
 *                 on everything they map, like pinning XPMEM
 *                 implementations; proves the no-pinning tests can fail
 *   skip_zap_every  N: every Nth zap of a local attachment for an
 *                 invalidation is skipped (0 = off), a broken driver that
 *                 leaves stale PTEs; proves the fuzzer's data check fails
 *   install_delay_ms  the next fault that resolves a page waits this long
 *                 before it installs it (one shot), so that a test can
 *                 put an invalidation between resolve and install
 *   attach_delay_ms  the next local attach, holding its permit and with
 *                 its mirror in place, waits this long before it joins
 *                 the permit's dependents (one shot), so that a test can
 *                 release the permit in between
 *   contend_next_fault  1: the next fault of an attachment that may drop
 *                 its lock finds the source's lock busy (one shot), as
 *                 a writer on the source would make it, so that a test
 *                 can drive the path that drops the fault's lock
 *                 without a race
 *   teardown_delay_ms  each attachment teardown queued by the close of its
 *                 last vma waits this long first, so that a test can
 *                 unload the module while one is pending
 *   space_pages_max  N: an attaching mm's space (xpmem_attach.c) hands
 *                 out at most N pages of offsets before the next attach
 *                 starts a new one (0 = the real limit, LLONG_MAX bytes), so
 *                 that a test can run one out
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "xpmem_debugfs.h"
#include "xpmem_proto.h"
#include "xpmem_stats.h"

static struct dentry *xpmem_debugfs_dir;

#ifdef CONFIG_XPMEM_TEST_HOOKS
unsigned int xpmem_skip_zap_every;	/* read by xpmem_local.c */
#endif

#define XPMEM_COUNTER(name, live) \
	{ #name, offsetof(struct xpmem_counters, name), live }
#define XPMEM_LIVE(name)	XPMEM_COUNTER(name, true)
#define XPMEM_EVENT(name)	XPMEM_COUNTER(name, false)

static const struct {
	const char *name;
	size_t offset;
	bool live;		/* counts objects that exist now */
} xpmem_counter_table[] = {
	XPMEM_LIVE(segments),
	XPMEM_LIVE(accesses),
	XPMEM_LIVE(attachments),
	XPMEM_LIVE(mirrors),
	XPMEM_LIVE(attacher_mms),
	XPMEM_LIVE(att_spaces),
	XPMEM_LIVE(exports),
	XPMEM_LIVE(export_atts),
	XPMEM_EVENT(lookups_forged),
	XPMEM_EVENT(lookups_throttled),
	XPMEM_EVENT(limits_hit),
	XPMEM_EVENT(gets),
	XPMEM_EVENT(attaches),
	XPMEM_EVENT(att_space_renewals),
	XPMEM_EVENT(faults),
	XPMEM_EVENT(fault_pages),
	XPMEM_EVENT(fault_retries),
	XPMEM_EVENT(fault_slow),
	XPMEM_EVENT(fault_contended),
	XPMEM_EVENT(fault_contended_tries),
	XPMEM_EVENT(fault_errors_after_retry),
	XPMEM_EVENT(mkwrite),
	XPMEM_EVENT(invalidations),
	XPMEM_EVENT(invalidate_hits),
	XPMEM_EVENT(invalidate_nonblock_busy),
	XPMEM_EVENT(invalidate_unmapped),
	XPMEM_EVENT(invalidate_nonblock_unmapped),
	XPMEM_EVENT(acks),
	XPMEM_EVENT(batched_zaps),
	XPMEM_EVENT(ack_wait_slow),
	XPMEM_EVENT(install_delays),
	XPMEM_EVENT(attach_delays),
	XPMEM_EVENT(revokes),
	XPMEM_EVENT(pages_given),
	XPMEM_EVENT(pages_withheld),
	XPMEM_EVENT(amm_bracket_overflows),
	XPMEM_EVENT(fabric_tx),
	XPMEM_EVENT(fabric_rx),
	XPMEM_EVENT(fabric_bad),
	XPMEM_EVENT(fabric_peers_dead),
	XPMEM_EVENT(export_faults),
	XPMEM_EVENT(export_invals),
	XPMEM_EVENT(export_acks),
	XPMEM_EVENT(export_slow_acks),
	XPMEM_EVENT(export_fenced_acks),
	XPMEM_EVENT(import_faults),
	XPMEM_EVENT(import_invals),
};

static void xpmem_counters_print(struct seq_file *m, bool live_only)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(xpmem_counter_table); i++)
		if (!live_only || xpmem_counter_table[i].live)
			seq_printf(m, "%s %ld\n", xpmem_counter_table[i].name,
				   xpmem_counter_sum(xpmem_counter_table[i].offset));
}

static int xpmem_counters_show(struct seq_file *m, void *unused)
{
	xpmem_counters_print(m, false);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xpmem_counters);

static int xpmem_live_show(struct seq_file *m, void *unused)
{
	xpmem_counters_print(m, true);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xpmem_live);

static int xpmem_histograms_show(struct seq_file *m, void *unused)
{
	xpmem_hist_show(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xpmem_histograms);

void xpmem_debugfs_init(void)
{
	/* debugfs failures are not fatal; the handles are checked inside */
	xpmem_debugfs_dir = debugfs_create_dir("xpmem", NULL);
	debugfs_create_file("counters", 0444, xpmem_debugfs_dir, NULL,
			    &xpmem_counters_fops);
	debugfs_create_file("live", 0444, xpmem_debugfs_dir, NULL,
			    &xpmem_live_fops);
	debugfs_create_file("histograms", 0444, xpmem_debugfs_dir, NULL,
			    &xpmem_histograms_fops);
#ifdef CONFIG_XPMEM_TEST_HOOKS
	debugfs_create_u32("ack_delay_ms", 0600, xpmem_debugfs_dir,
			   &xpmem_ack_delay_ms);
	debugfs_create_bool("test_pin_pages", 0600, xpmem_debugfs_dir,
			    &xpmem_test_pin_pages);
	debugfs_create_u32("skip_zap_every", 0600, xpmem_debugfs_dir,
			   &xpmem_skip_zap_every);
	debugfs_create_u32("install_delay_ms", 0600, xpmem_debugfs_dir,
			   &xpmem_install_delay_ms);
	debugfs_create_u32("attach_delay_ms", 0600, xpmem_debugfs_dir,
			   &xpmem_attach_delay_ms);
	debugfs_create_u32("contend_next_fault", 0600, xpmem_debugfs_dir,
			   &xpmem_contend_next_fault);
	debugfs_create_u32("teardown_delay_ms", 0600, xpmem_debugfs_dir,
			   &xpmem_teardown_delay_ms);
	debugfs_create_u32("zaps_held_max", 0600, xpmem_debugfs_dir,
			   &xpmem_zaps_held_max);
	debugfs_create_u32("space_pages_max", 0600, xpmem_debugfs_dir,
			   &xpmem_space_pages_max);
#endif
	xpmem_proto_debugfs(xpmem_debugfs_dir);
}

void xpmem_debugfs_exit(void)
{
	debugfs_remove_recursive(xpmem_debugfs_dir);
}
