// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem_stats.c - counters, latency histograms, tracepoints and test
 * hooks (xpmem_stats.h, xpmem_trace.h).  The bottom layer: it calls
 * nothing of the driver, and every other file may call it.
 *
 * Counters and histograms are per CPU: writers never share a cache line
 * (the fault path of many attachers at once), readers (debugfs) sum over
 * the possible CPUs, which may see a live count mid-update: a snapshot,
 * exact once the driver is quiet.
 */
#include <linux/delay.h>
#include <linux/log2.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>

#include "xpmem_stats.h"

#define CREATE_TRACE_POINTS
#include "xpmem_trace.h"

DEFINE_PER_CPU(struct xpmem_counters, xpmem_pcpu_counters);

long xpmem_counter_sum(size_t offset)
{
	long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += *(long *)((char *)per_cpu_ptr(&xpmem_pcpu_counters, cpu) + offset);
	return sum;
}

/* bucket b counts latencies in [2^b, 2^(b+1)) ns; the last one everything above */
#define XPMEM_HIST_BUCKETS	40

struct xpmem_hists {
	unsigned long count[XPMEM_NR_HIST][XPMEM_HIST_BUCKETS];
};

static DEFINE_PER_CPU(struct xpmem_hists, xpmem_pcpu_hists);

static const char *const xpmem_hist_name[XPMEM_NR_HIST] = {
	[XPMEM_HIST_FAULT] = "fault_ns",
	[XPMEM_HIST_FAULT_REMOTE] = "remote_fault_ns",
	[XPMEM_HIST_INVALIDATE] = "invalidate_wait_ns",
};

void xpmem_hist_record(enum xpmem_hist h, u64 ns)
{
	unsigned int b = ns ? ilog2(ns) : 0;

	this_cpu_inc(xpmem_pcpu_hists.count[h][min(b, XPMEM_HIST_BUCKETS - 1)]);
}

/* "NAME LOW COUNT" for every non-empty bucket, LOW its lower bound in ns */
void xpmem_hist_show(struct seq_file *m)
{
	unsigned int h, b;
	int cpu;

	for (h = 0; h < XPMEM_NR_HIST; h++) {
		for (b = 0; b < XPMEM_HIST_BUCKETS; b++) {
			unsigned long n = 0;

			for_each_possible_cpu(cpu)
				n += per_cpu_ptr(&xpmem_pcpu_hists, cpu)->count[h][b];
			if (n)
				seq_printf(m, "%s %llu %lu\n", xpmem_hist_name[h],
					   b ? 1ULL << b : 0ULL, n);
		}
	}
}

#ifdef CONFIG_XPMEM_TEST_HOOKS
unsigned int xpmem_ack_delay_ms;
bool xpmem_test_pin_pages;

void xpmem_test_ack_delay(void)
{
	unsigned int delay = READ_ONCE(xpmem_ack_delay_ms);

	if (delay)	/* a slow (or, for an owner, a hung) acknowledger */
		msleep(delay);
}

/*
 * A one-shot hook's value, taken: the caller that reads it non-zero is
 * the only one (the value goes back to 0).  A plain read first: every
 * fault and attach passes here in the test builds.
 */
static unsigned int xpmem_test_take(unsigned int *hook)
{
	return READ_ONCE(*hook) ? xchg(hook, 0) : 0;
}

unsigned int xpmem_install_delay_ms;

void xpmem_test_install_delay(void)
{
	unsigned int delay = xpmem_test_take(&xpmem_install_delay_ms);

	if (delay) {	/* a fault that resolved just before an invalidation */
		xpmem_count(install_delays);
		msleep(delay);
	}
}

static atomic_t xpmem_zaps_held;
unsigned int xpmem_zaps_held_max;

void xpmem_test_zap_delay(void)
{
	unsigned int delay = READ_ONCE(xpmem_ack_delay_ms);
	unsigned int held, max;

	if (!delay)
		return;
	/* how many zaps were held at once: one wait per invalidation, or one per zap */
	held = atomic_inc_return(&xpmem_zaps_held);
	max = READ_ONCE(xpmem_zaps_held_max);
	while (held > max) {
		unsigned int was = cmpxchg(&xpmem_zaps_held_max, max, held);

		if (was == max)
			break;
		max = was;
	}
	msleep(delay);
	atomic_dec(&xpmem_zaps_held);
}

unsigned int xpmem_attach_delay_ms;

void xpmem_test_attach_delay(void)
{
	unsigned int delay = xpmem_test_take(&xpmem_attach_delay_ms);

	if (delay) {	/* an attach that a release of its permit overtakes */
		xpmem_count(attach_delays);
		msleep(delay);
	}
}

unsigned int xpmem_contend_next_fault;

bool xpmem_test_contend_fault(void)
{
	return xpmem_test_take(&xpmem_contend_next_fault);
}

unsigned int xpmem_teardown_delay_ms;
unsigned int xpmem_space_pages_max;

void xpmem_test_teardown_delay(void)
{
	unsigned int delay = READ_ONCE(xpmem_teardown_delay_ms);

	if (!delay)
		return;
	/* the test reads these lines: the second must come before module exit ends */
	pr_info("xpmem: test hook: an attachment's teardown waits %u ms\n", delay);
	msleep(delay);
	pr_info("xpmem: test hook: the delayed teardown goes on\n");
}
#endif
