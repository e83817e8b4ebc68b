/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_internal.h - objects shared by the files of the xpmem driver.
 *
 * Object graph (arrows are counted references):
 *
 *   xpmem_file (one per open of /dev/xpmem)
 *     lists the segments and access permits its users created
 *
 *   xpmem_segment --> the exporting mm (mm_count: mmgrab)
 *   xpmem_access  --> xpmem_segment
 *   xpmem_attachment --> xpmem_access, and the exporting mm (mm_count)
 *        embeds an xpmem_mirror: an interval notifier on the exporting mm
 *        over the attached range, from attach until its last vma is gone.
 *
 * Across partitions (xpmem_remote.c, xpmem_export.c, xpmem_import.c):
 *   a permit on another partition's segment is an xpmem_access with no
 *   segment (remote_peer, remote_handle); its attachments are remote and
 *   fault through the owner.  On the owner, what a partition holds is an
 *   xpmem_export (--> xpmem_segment) and its xpmem_export_atts, each a
 *   mirror of the exporting mm like a local attachment.
 *
 * Who may sleep where, and the lock order, are documented at the top of
 * the file that owns each lock: xpmem_mirror.c (mirror->lock, the zap
 * registry), xpmem_main.c (xpmem_file.lock), xpmem_segment.c
 * (segment/access locks), xpmem_attach.c (fault path).
 */
#ifndef _XPMEM_INTERNAL_H
#define _XPMEM_INTERNAL_H

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/interval_tree.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/rhashtable-types.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/uidgid.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "xpmem.h"

#define XPMEM_MODULE_NAME "xpmem"

/* ---- counters, exported read-only in debugfs (xpmem_debugfs.c) ------- */

struct xpmem_counters {
	/* live objects: must all return to 0 when nothing is in use */
	atomic_long_t segments;
	atomic_long_t accesses;
	atomic_long_t attachments;
	atomic_long_t mirrors;		/* interval notifiers on exporting mms */
	/* event counts: only ever grow */
	atomic_long_t lookups_forged;	/* lookups by ids never issued (guesses) */
	atomic_long_t lookups_throttled; /* ... refused: the user kept guessing */
	atomic_long_t limits_hit;	/* a per-user limit said EDQUOT */
	atomic_long_t gets;		/* successful xpmem_get calls */
	atomic_long_t attaches;		/* successful xpmem_attach calls */
	atomic_long_t faults;
	atomic_long_t fault_retries;	/* sequence changed during a fault */
	atomic_long_t fault_slow;	/* resolved with the fault lock dropped */
	atomic_long_t fault_contended;	/* ... but the caller could not drop it */
	atomic_long_t fault_errors_after_retry;	/* returned by a retried fault */
	atomic_long_t mkwrite;
	atomic_long_t invalidations;	/* mirror ->invalidate calls */
	atomic_long_t invalidate_hits;	/* ... that took translations down */
	atomic_long_t invalidate_nonblock_busy; /* ... refused to a non-blockable caller */
	atomic_long_t acks;		/* local attachments zapped for an invalidation */
	atomic_long_t ack_wait_slow;	/* zap waits that exceeded the warning time */
	atomic_long_t revokes;
	/* get_user_pages through attachments (xpmem_attach.c, xpmem_amm.c) */
	atomic_long_t attacher_mms;	/* live: mms tracked for page lookups */
	atomic_long_t pages_given;	/* find_special_page answered a page */
	atomic_long_t pages_withheld;	/* ... answered none (zap, fork, exit) */
	atomic_long_t amm_bracket_overflows; /* all bracket slots were taken */
	/* partitions (xpmem_fabric.c) */
	atomic_long_t fabric_tx;		/* messages sent */
	atomic_long_t fabric_rx;		/* messages accepted */
	atomic_long_t fabric_bad;		/* messages dropped as malformed */
	atomic_long_t fabric_peers_dead;	/* partitions declared dead */
	/* cross-partition memory (xpmem_export.c, xpmem_import.c) */
	atomic_long_t exports;		/* live: permits partitions hold here */
	atomic_long_t export_atts;	/* live: their attachments (rmap entries) */
	atomic_long_t export_faults;	/* pages resolved for a partition */
	atomic_long_t export_invals;	/* invalidations sent to partitions */
	atomic_long_t export_acks;	/* ... and acknowledged by them */
	atomic_long_t export_fenced_acks; /* ... ended by the peer's death */
	atomic_long_t import_faults;	/* remote faults resolved by an owner */
	atomic_long_t import_invals;	/* invalidations received and done */
};

extern struct xpmem_counters xpmem_stats;
extern unsigned int xpmem_ack_delay_ms;	/* test hook, debugfs */
extern bool xpmem_test_pin_pages;	/* test hook, debugfs */

#define xpmem_count(field)	atomic_long_inc(&xpmem_stats.field)
#define xpmem_uncount(field)	atomic_long_dec(&xpmem_stats.field)

/* ---- secondary mappings of an exporting mm (xpmem_mirror.c) ----------- */

struct xpmem_mirror;

struct xpmem_mirror_ops {
	/*
	 * Take down every translation of source range [start, end) and
	 * return once none can be used any more.  Called from the exporting
	 * mm's notifier in blockable context; may sleep, bounded.
	 */
	void (*invalidate)(struct xpmem_mirror *m, unsigned long start,
			   unsigned long end);
};

struct xpmem_mirror {
	struct mmu_interval_notifier mni;	/* the source range */
	const struct xpmem_mirror_ops *ops;
	spinlock_t lock;	/* publishes the sequence to faults (install) */
	bool released;		/* the exporting mm went through exit_mmap */
	bool inserted;
};

int xpmem_mirror_insert(struct xpmem_mirror *m, const struct xpmem_mirror_ops *ops,
			struct mm_struct *mm, unsigned long start, unsigned long size);
void xpmem_mirror_remove(struct xpmem_mirror *m);
unsigned long xpmem_mirror_read_begin(struct xpmem_mirror *m);
bool xpmem_mirror_read_retry(struct xpmem_mirror *m, unsigned long seq);
void xpmem_zap_mapping(struct address_space *mapping, loff_t start, loff_t len);
void xpmem_zap_mapping_wait(struct address_space *mapping, loff_t start, loff_t len);
int xpmem_mirror_init(void);
void xpmem_mirror_exit(void);

/* ---- ids and users (xpmem_ids.c) --------------------------------------- */

enum xpmem_id_kind { XPMEM_ID_SEGMENT, XPMEM_ID_PERMIT, XPMEM_NR_ID_KINDS };

/* an object findable by a random id (embedded in segments and permits) */
struct xpmem_id {
	struct rhash_head node;
	s64 id;
};

enum xpmem_owned {
	XPMEM_OWNS_SEGMENT,
	XPMEM_OWNS_PERMIT,
	XPMEM_OWNS_ATTACHMENT,
	XPMEM_NR_OWNED
};

struct xpmem_user;

int xpmem_id_publish(struct xpmem_id *e, enum xpmem_id_kind kind);
void xpmem_id_withdraw(struct xpmem_id *e, enum xpmem_id_kind kind);
struct xpmem_id *xpmem_id_find(s64 id, enum xpmem_id_kind kind);
int xpmem_id_partition(s64 id);
int xpmem_id_lookup_allowed(void);
void xpmem_id_lookup_forged(void);
bool xpmem_id_forged(s64 id, enum xpmem_id_kind kind);
struct xpmem_user *xpmem_user_charge(enum xpmem_owned what);
void xpmem_user_uncharge(struct xpmem_user *u, enum xpmem_owned what);
int xpmem_ids_init(void);
void xpmem_ids_exit(void);

/* ---- the open file ---------------------------------------------------- */

struct xpmem_file {
	/* both lists, and whether each object on them is live (xpmem_segment.c) */
	struct mutex lock;
	struct list_head segments;
	struct list_head accesses;
};

/* ---- segments and access permits (xpmem_segment.c) ------------------- */

struct xpmem_segment {
	struct kref ref;
	struct rcu_head rcu;		/* looked up under RCU */
	struct list_head exports;	/* xpmem_export.c, under lock */
	struct xpmem_id id;		/* id.id is the segid */
	struct pid *tgid;		/* thread group that made it (referenced) */
	struct xpmem_user *user;	/* counted against */
	struct xpmem_file *owner;
	struct list_head file_node;	/* in owner->segments while live */
	bool dead;			/* under owner->lock: ended, id withdrawn */
	struct mm_struct *mm;		/* exporting mm (mm_count) */
	unsigned long start, size;
	kuid_t uid;
	kgid_t gid;
	umode_t mode;

	struct mutex lock;		/* protects accesses, exports, removed */
	struct list_head accesses;
	bool removed;
};

struct xpmem_access {
	struct kref ref;
	struct rcu_head rcu;		/* looked up under RCU */
	struct xpmem_id id;		/* id.id is the apid */
	struct pid *tgid;		/* the only thread group that may use it */
	struct xpmem_user *user;	/* counted against */
	struct xpmem_file *owner;
	struct list_head file_node;	/* in owner->accesses while live */
	bool dead;			/* under owner->lock: ended, id withdrawn */
	struct xpmem_segment *seg;	/* NULL: a segment of another partition */
	struct list_head seg_node;	/* in seg->accesses */
	bool writable;

	/* a permit on another partition's segment (seg == NULL) */
	int remote_peer;		/* the owning partition, -1: local */
	u64 remote_gen;			/* its incarnation, xpmem_remote_gen() */
	u64 remote_handle;		/* the owner's name for the permit */
	unsigned long remote_size;	/* the segment's size */

	struct mutex lock;		/* protects attachments, released */
	struct list_head attachments;
	bool released;
};

int xpmem_segment_make(struct xpmem_file *xf, unsigned long vaddr,
		       unsigned long size, umode_t mode, xpmem_segid_t *segid);
int xpmem_segment_remove(struct xpmem_file *xf, xpmem_segid_t segid);
int xpmem_access_get(struct xpmem_file *xf, xpmem_segid_t segid, bool writable,
		     xpmem_apid_t *apid);
struct xpmem_segment *xpmem_segment_get_for_peer(xpmem_segid_t segid, bool writable,
						 u32 euid, u32 egid, int *err);
void xpmem_segment_put(struct xpmem_segment *seg);
int xpmem_access_release(struct xpmem_file *xf, xpmem_apid_t apid);
struct xpmem_access *xpmem_access_lookup(xpmem_apid_t apid);
void xpmem_access_put(struct xpmem_access *ap);
void xpmem_file_cleanup(struct xpmem_file *xf, bool all);

/* ---- attaching mms (xpmem_amm.c) ---------------------------------------- */

/* invalidations of one attaching mm that may be open at the same time */
#define XPMEM_AMM_BRACKETS	32

struct xpmem_amm_bracket {
	const struct mmu_notifier_range *range;	/* NULL: slot free */
	struct task_struct *task;
	unsigned long start, end;
	struct list_head node;		/* in amm->more, if allocated */
};

struct xpmem_amm {
	struct mmu_notifier mn;
	spinlock_t lock;		/* innermost: under PTE locks */
	unsigned int nr_vmas;		/* local attachment vmas in this mm */
	unsigned long lo, hi;		/* ... and a span that covers them */
	unsigned int nr_brackets;	/* open brackets, in slots or in more */
	struct xpmem_amm_bracket brackets[XPMEM_AMM_BRACKETS];
	struct list_head more;		/* open brackets beyond the slots */
	/*
	 * A bracket could be recorded nowhere (no slot, no memory): from
	 * then on nobody is given a page of this mm's attachments.
	 */
	bool lost;
	bool dead;			/* ->release ran: exit_mmap */
};

struct xpmem_amm *xpmem_amm_get(struct mm_struct *mm);
void xpmem_amm_put(struct xpmem_amm *amm);
void xpmem_amm_vma_add(struct xpmem_amm *amm, struct vm_area_struct *vma);
void xpmem_amm_vma_del(struct xpmem_amm *amm);
bool xpmem_amm_may_give_page(struct xpmem_amm *amm, struct vm_area_struct *vma,
			     unsigned long addr);

/* ---- attachments (xpmem_attach.c) ------------------------------------- */

struct xpmem_attachment {
	struct kref ref;
	/* local: mirrors [src_start, + size) of the exporting mm */
	struct xpmem_mirror mirror;
	struct xpmem_access *ap;
	struct mm_struct *src_mm;	/* local: the exporting mm (mm_count) */
	struct xpmem_amm *amm;		/* local: the attaching mm's */
	bool remote;			/* another partition's memory */
	/*
	 * Remote: where the pages are, the owner's name for it, and this
	 * partition's count of the owner's invalidations of it (under
	 * remote_lock, the remote install lock).
	 */
	int peer;
	u64 remote_handle;
	u32 cookie;			/* slot in xpmem_imports, our name for it */
	spinlock_t remote_lock;
	unsigned long remote_seq;
	struct rcu_head rcu;
	unsigned long src_start, size;
	bool writable;
	/*
	 * Writable attachment over a source range that was not all writable
	 * at attach time: pages the source maps read-only are mapped
	 * read-only, and writes to them come through pfn_mkwrite (which
	 * makes the vma dirty-tracked: no long-term writable pins).
	 */
	bool ro_source;
	bool revoked;			/* set under the install lock */
	bool mapped;			/* the one vm_mmap() happened */
	atomic_t nr_vmas;		/* vmas mapping this attachment */
	struct inode *inode;		/* own address_space: zap target */
	struct list_head ap_node;	/* in ap->attachments */
	struct work_struct teardown;	/* queued when the last vma goes */
	struct xpmem_user *user;	/* counted against */
	/*
	 * Test hook only (debugfs test_pin_pages, read at attach time): keep a
	 * reference on every page this attachment maps, as pinning XPMEM
	 * implementations do, so the no-pinning tests can show they would
	 * catch one.  Never used otherwise.
	 */
	struct xarray test_pins;
	bool test_pin;
	/*
	 * Errors of faults resolved with the fault lock dropped, by page
	 * index in the attachment, for the retried fault to return
	 * (xpmem_fault_unlocked(): a fault that dropped its lock can only
	 * ask to be retried).
	 */
	struct xarray fault_errors;
};

int xpmem_attach(struct xpmem_file *xf, xpmem_apid_t apid, unsigned long offset,
		 unsigned long size, unsigned long *vaddr);
int xpmem_src_page(struct mm_struct *mm, unsigned long addr, bool write,
		   struct page **page);
int xpmem_install(struct vm_area_struct *vma, unsigned long addr,
		  unsigned long pfn, bool write, struct xpmem_attachment *att,
		  unsigned long seq);
vm_fault_t xpmem_errno_to_fault(int err);
int xpmem_detach(unsigned long vaddr);
void xpmem_attachment_revoke(struct xpmem_attachment *att);
void xpmem_att_release(struct kref *ref);
int xpmem_attach_init(void);
void xpmem_attach_exit(void);

/* ---- debugfs (xpmem_debugfs.c) ---------------------------------------- */

void xpmem_debugfs_init(void);
void xpmem_debugfs_exit(void);

/* ---- partitions (xpmem_fabric.c) ----------------------------------------- */

struct dentry;
int xpmem_fabric_init(void);
void xpmem_fabric_exit(void);
void xpmem_fabric_debugfs(struct dentry *dir);
int xpmem_fabric_me(void);
int xpmem_fabric_send_msg(int dst, u16 type, const u64 *payload,
			  unsigned int npayload);
int xpmem_fabric_send_wait(int dst, u16 type, const u64 *payload,
			   unsigned int npayload);
bool xpmem_fabric_peer_alive(int p);
bool xpmem_fabric_window(int p, phys_addr_t *start, phys_addr_t *len);
void xpmem_fabric_fence(int p, const char *why);
unsigned int xpmem_fabric_timeout_ms(void);
void xpmem_fabric_count_bad(int p, const char *why, u64 val);

/* ---- the memory protocol between partitions (xpmem_remote.c) ------------ */

#define XPMEM_PAYLOAD_WORDS	5
/* invalidations an owner may have outstanding per peer (a power of two) */
#define XPMEM_ACK_SLOTS		256

int xpmem_remote_rx(int src, u16 type, const __le64 *payload,
		    const char **why, u64 *val);
void xpmem_remote_peer_down(int p);
void xpmem_remote_tick(int p);
u64 xpmem_remote_gen(int p);
int xpmem_rpc_call(int dst, u16 type, u64 *req, unsigned int nreq,
		   u64 *reply, bool killable);
int xpmem_remote_init(void);
void xpmem_remote_exit(void);

/* owner side: our memory used by other partitions (xpmem_export.c) */
void xpmem_export_request(int peer, u64 gen, u16 type, const u64 *p);
bool xpmem_export_ack(int peer, u64 id);
void xpmem_export_peer_down(int peer);
void xpmem_export_peer_cleanup(int peer);
void xpmem_export_check_acks(int peer);
void xpmem_export_segment_destroy(struct xpmem_segment *seg);
void xpmem_export_init(void);
void xpmem_export_exit(void);

/* attacher side: other partitions' memory used here (xpmem_import.c) */
int xpmem_import_get(int peer, xpmem_segid_t segid, bool writable,
		     struct xpmem_access *ap);
void xpmem_import_release(struct xpmem_access *ap);
int xpmem_import_attach(struct xpmem_attachment *att, unsigned long offset);
void xpmem_import_detach(struct xpmem_attachment *att);
unsigned long xpmem_import_read_begin(struct xpmem_attachment *att);
int xpmem_import_resolve(struct xpmem_attachment *att, unsigned long off,
			 bool write, unsigned long *pfn);
void xpmem_import_inval(int peer, u64 gen, const u64 *p);
void xpmem_import_peer_cleanup(int peer);

#endif /* _XPMEM_INTERNAL_H */
