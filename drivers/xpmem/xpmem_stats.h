/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_stats.h - the bottom layer: what every other file may count,
 * time and hook (xpmem_stats.c).  It calls nothing of the driver.
 *
 *   counters    per CPU, summed when read (debugfs "counters" and "live");
 *               the fault path pays one this_cpu_inc, no shared cache line
 *   histograms  log2 buckets of nanoseconds, per CPU: fault latency and
 *               invalidation (acknowledgment) wait
 *   test hooks  only with CONFIG_XPMEM_TEST_HOOKS (the test builds): a
 *               slow acknowledger and an emulated pinning implementation;
 *               without it they compile to nothing
 */
#ifndef _XPMEM_STATS_H
#define _XPMEM_STATS_H

#include <linux/jiffies.h>
#include <linux/percpu.h>
#include <linux/types.h>

struct seq_file;

struct xpmem_counters {
	/* live objects: must all return to 0 when nothing is in use */
	long segments;
	long accesses;
	long attachments;
	long mirrors;		/* interval notifiers on exporting mms */
	long attacher_mms;	/* mms tracked for page lookups (xpmem_local.c) */
	long att_spaces;	/* attaching mms' address_spaces (xpmem_attach.c) */
	long exports;		/* permits partitions hold here */
	long export_atts;	/* their attachments (rmap entries) */
	/* event counts: only ever grow */
	long lookups_forged;	/* lookups by ids never issued (guesses) */
	long lookups_throttled;	/* ... refused: the user kept guessing */
	long limits_hit;	/* a per-user or per-peer limit said EDQUOT */
	long gets;		/* successful xpmem_get calls */
	long attaches;		/* successful xpmem_attach calls */
	long att_space_renewals;	/* a space's offsets ran out: a new one */
	long faults;
	long fault_pages;	/* PTEs faults set (fault-around: up to 16 each) */
	long fault_retries;	/* sequence changed during a fault */
	long fault_slow;	/* resolved with the fault lock dropped */
	long fault_contended;	/* ... but the caller could not drop it */
	long fault_contended_tries;	/* ... so the fault tried again, sleeping */
	long fault_errors_after_retry;	/* returned by a retried fault */
	long mkwrite;
	long invalidations;	/* mirror ->invalidate calls */
	long invalidate_hits;	/* ... that took translations down */
	long invalidate_nonblock_busy;	/* ... refused to a non-blockable caller */
	long invalidate_unmapped;	/* ... with nothing mapped in the range */
	long invalidate_nonblock_unmapped;	/* ... of those, non-blockable ones */
	long acks;		/* local attachments zapped for an invalidation */
	long batched_zaps;	/* zaps and INVALs started by another mirror's call */
	long ack_wait_slow;	/* zap waits that exceeded the warning time */
	long install_delays;	/* faults held by the test hook install_delay_ms */
	long attach_delays;	/* attaches held by the test hook attach_delay_ms */
	long revokes;
	long pages_given;	/* find_special_page answered a page */
	long pages_withheld;	/* ... answered none (zap, fork, exit) */
	long amm_bracket_overflows;	/* all bracket slots were taken */
	long fabric_tx;		/* messages sent */
	long fabric_rx;		/* messages accepted */
	long fabric_bad;	/* messages dropped as malformed */
	long fabric_peers_dead;	/* partitions declared dead */
	long export_faults;	/* pages resolved for a partition */
	long export_invals;	/* invalidations sent to partitions */
	long export_acks;	/* ... and acknowledged by them */
	long export_slow_acks;	/* ... later than half the peer timeout */
	long export_fenced_acks;	/* ... ended by the peer's death */
	long import_faults;	/* remote faults resolved by an owner */
	long import_invals;	/* invalidations received and done */
};

DECLARE_PER_CPU(struct xpmem_counters, xpmem_pcpu_counters);

#define xpmem_count(field)	this_cpu_inc(xpmem_pcpu_counters.field)
#define xpmem_count_add(field, n)	this_cpu_add(xpmem_pcpu_counters.field, n)
#define xpmem_uncount(field)	this_cpu_dec(xpmem_pcpu_counters.field)

/* the sum over every CPU of the counter at @offset in struct xpmem_counters */
long xpmem_counter_sum(size_t offset);
#define xpmem_counter_read(field) \
	xpmem_counter_sum(offsetof(struct xpmem_counters, field))

enum xpmem_hist {
	XPMEM_HIST_FAULT,		/* a fault of a local attachment */
	XPMEM_HIST_FAULT_REMOTE,	/* ... of another partition's memory */
	XPMEM_HIST_INVALIDATE,		/* ->invalidate: until zapped or acknowledged */
	XPMEM_NR_HIST
};

void xpmem_hist_record(enum xpmem_hist h, u64 ns);
void xpmem_hist_show(struct seq_file *m);

#ifdef CONFIG_XPMEM_TEST_HOOKS
/* debugfs ack_delay_ms: every acknowledgment (local or remote) waits this long */
extern unsigned int xpmem_ack_delay_ms;
/* debugfs test_pin_pages: attachments made meanwhile keep a reference on each page */
extern bool xpmem_test_pin_pages;
/* debugfs skip_zap_every: every Nth local zap is skipped, a broken driver (0 = off) */
extern unsigned int xpmem_skip_zap_every;

void xpmem_test_ack_delay(void);
/*
 * The same for a local zap, in the zap worker; debugfs zaps_held_max:
 * the most zaps held by it at once (write 0 to reset)
 */
extern unsigned int xpmem_zaps_held_max;
void xpmem_test_zap_delay(void);
/* how long xpmem_test_zap_delay() holds a zap now: not a slow zap */
static inline unsigned long xpmem_test_zap_delay_jiffies(void)
{
	return msecs_to_jiffies(READ_ONCE(xpmem_ack_delay_ms));
}

/*
 * debugfs install_delay_ms: the next fault of an attachment, once it has
 * resolved its page, waits this long before it installs it (one fault:
 * the value goes back to 0), so that a test can invalidate in between
 */
extern unsigned int xpmem_install_delay_ms;
void xpmem_test_install_delay(void);
/*
 * debugfs attach_delay_ms: the next local attach, holding its permit and
 * with its mirror in place, waits this long before it joins the permit's
 * dependents (one attach), so that a test can release the permit then
 */
extern unsigned int xpmem_attach_delay_ms;
void xpmem_test_attach_delay(void);
/*
 * debugfs contend_next_fault: true (non-zero) once, for the next fault of
 * an attachment that may drop its lock, which then acts as if the
 * source's lock were busy (the value goes back to 0)
 */
extern unsigned int xpmem_contend_next_fault;
bool xpmem_test_contend_fault(void);
/*
 * debugfs teardown_delay_ms: every attachment teardown queued by the
 * close of its last vma waits this long first (0 = off), so that a test
 * can unload the module while one is pending
 */
extern unsigned int xpmem_teardown_delay_ms;
void xpmem_test_teardown_delay(void);
/*
 * debugfs space_pages_max: an attaching mm's space hands out at most this
 * many pages of offsets (0 = the real limit), so that a test can run it out
 */
extern unsigned int xpmem_space_pages_max;
static inline bool xpmem_test_pin_enabled(void)
{
	return READ_ONCE(xpmem_test_pin_pages);
}
#else
static inline void xpmem_test_ack_delay(void)
{
}

static inline void xpmem_test_install_delay(void)
{
}

static inline void xpmem_test_attach_delay(void)
{
}

static inline void xpmem_test_zap_delay(void)
{
}

static inline unsigned long xpmem_test_zap_delay_jiffies(void)
{
	return 0;
}

static inline void xpmem_test_teardown_delay(void)
{
}

static inline bool xpmem_test_contend_fault(void)
{
	return false;
}

static inline bool xpmem_test_pin_enabled(void)
{
	return false;
}
#endif

#endif /* _XPMEM_STATS_H */
