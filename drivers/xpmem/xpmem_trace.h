/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_trace.h - tracepoints of the xpmem driver (events/xpmem/ in
 * tracefs).  Defined in xpmem_stats.c, the bottom layer.
 *
 *   xpmem_fault             a fault of an attachment: its address, local or
 *                           remote, write, whether the fault lock was
 *                           dropped, sequence retries, pages mapped, the
 *                           vm_fault_t result and the latency
 *   xpmem_invalidate_start  the exporting mm invalidates a range a mirror
 *   xpmem_invalidate_end    maps: the event, then how long the mirror waited
 *                           for its translations to go (zap or ACK)
 *   xpmem_ack               an invalidation acknowledged: by the local zap
 *                           (peer -1) or by a partition, and the wait
 *   xpmem_msg               a message to or from a partition
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM xpmem

#if !defined(_XPMEM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _XPMEM_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(xpmem_fault,
	TP_PROTO(unsigned long addr, bool remote, bool write, bool slow,
		 unsigned int retries, unsigned int pages, unsigned int result, u64 ns),
	TP_ARGS(addr, remote, write, slow, retries, pages, result, ns),
	TP_STRUCT__entry(
		__field(unsigned long, addr)
		__field(bool, remote)
		__field(bool, write)
		__field(bool, slow)
		__field(unsigned int, retries)
		__field(unsigned int, pages)
		__field(unsigned int, result)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->addr = addr;
		__entry->remote = remote;
		__entry->write = write;
		__entry->slow = slow;
		__entry->retries = retries;
		__entry->pages = pages;
		__entry->result = result;
		__entry->ns = ns;
	),
	TP_printk("addr=%#lx %s %s slow=%d retries=%u pages=%u result=%#x ns=%llu",
		  __entry->addr, __entry->remote ? "remote" : "local",
		  __entry->write ? "write" : "read", __entry->slow, __entry->retries,
		  __entry->pages, __entry->result, __entry->ns)
);

TRACE_EVENT(xpmem_invalidate_start,
	TP_PROTO(unsigned long start, unsigned long end, int event, bool blockable),
	TP_ARGS(start, end, event, blockable),
	TP_STRUCT__entry(
		__field(unsigned long, start)
		__field(unsigned long, end)
		__field(int, event)
		__field(bool, blockable)
	),
	TP_fast_assign(
		__entry->start = start;
		__entry->end = end;
		__entry->event = event;
		__entry->blockable = blockable;
	),
	TP_printk("range=%#lx-%#lx event=%d blockable=%d",
		  __entry->start, __entry->end, __entry->event, __entry->blockable)
);

TRACE_EVENT(xpmem_invalidate_end,
	TP_PROTO(unsigned long start, unsigned long end, u64 ns),
	TP_ARGS(start, end, ns),
	TP_STRUCT__entry(
		__field(unsigned long, start)
		__field(unsigned long, end)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->start = start;
		__entry->end = end;
		__entry->ns = ns;
	),
	TP_printk("range=%#lx-%#lx waited_ns=%llu", __entry->start, __entry->end, __entry->ns)
);

TRACE_EVENT(xpmem_ack,
	TP_PROTO(int peer, u64 id, u64 ns),
	TP_ARGS(peer, id, ns),
	TP_STRUCT__entry(
		__field(int, peer)
		__field(u64, id)
		__field(u64, ns)
	),
	TP_fast_assign(
		__entry->peer = peer;
		__entry->id = id;
		__entry->ns = ns;
	),
	TP_printk("peer=%d id=%#llx ns=%llu", __entry->peer, __entry->id, __entry->ns)
);

TRACE_EVENT(xpmem_msg,
	TP_PROTO(bool tx, int peer, u16 type, u64 word0),
	TP_ARGS(tx, peer, type, word0),
	TP_STRUCT__entry(
		__field(bool, tx)
		__field(int, peer)
		__field(u16, type)
		__field(u64, word0)
	),
	TP_fast_assign(
		__entry->tx = tx;
		__entry->peer = peer;
		__entry->type = type;
		__entry->word0 = word0;
	),
	TP_printk("%s peer=%d type=%u word0=%#llx", __entry->tx ? "tx" : "rx",
		  __entry->peer, __entry->type, __entry->word0)
);

#endif /* _XPMEM_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE xpmem_trace
#include <trace/define_trace.h>
