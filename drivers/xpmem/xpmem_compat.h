/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xpmem_compat.h - the only place where kernel version differences live.
 *
 * Supported: 6.1 (Debian 12) up to 7.1 (the newest release, make check's
 * "mainline" kernel).
 */
#ifndef _XPMEM_COMPAT_H
#define _XPMEM_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>

/*
 * The only version comparison of the driver; everything below keys off it.
 * (checkpatch flags LINUX_VERSION_CODE because in-tree code has no use for
 * it; an out-of-tree module supporting several kernels has.)
 */
#define XPMEM_KERNEL_OLDER_THAN(a, b, c) (LINUX_VERSION_CODE < KERNEL_VERSION(a, b, c))

/* 6.3 made vma->vm_flags read-only behind vm_flags_set()/vm_flags_clear() */
#if XPMEM_KERNEL_OLDER_THAN(6, 3, 0)
static inline void xpmem_vm_flags_set(struct vm_area_struct *vma,
				      unsigned long flags)
{
	vma->vm_flags |= flags;
}

static inline void xpmem_vm_flags_clear(struct vm_area_struct *vma,
					unsigned long flags)
{
	vma->vm_flags &= ~flags;
}
#else
static inline void xpmem_vm_flags_set(struct vm_area_struct *vma,
				      vm_flags_t flags)
{
	vm_flags_set(vma, flags);
}

static inline void xpmem_vm_flags_clear(struct vm_area_struct *vma,
					vm_flags_t flags)
{
	vm_flags_clear(vma, flags);
}
#endif

/* 6.5 dropped the vmas argument of get_user_pages_remote() */
static inline long xpmem_gup_remote_one(struct mm_struct *mm,
					unsigned long addr,
					unsigned int gup_flags,
					struct page **page)
{
#if XPMEM_KERNEL_OLDER_THAN(6, 5, 0)
	return get_user_pages_remote(mm, addr, 1, gup_flags, page, NULL, NULL);
#else
	return get_user_pages_remote(mm, addr, 1, gup_flags, page, NULL);
#endif
}

/* The same for @nr pages already present (FOLL_NOFAULT): fault-around. */
static inline long xpmem_gup_remote_present(struct mm_struct *mm,
					    unsigned long addr, unsigned long nr,
					    unsigned int gup_flags,
					    struct page **pages)
{
#if XPMEM_KERNEL_OLDER_THAN(6, 5, 0)
	return get_user_pages_remote(mm, addr, nr, gup_flags | FOLL_NOFAULT, pages,
				     NULL, NULL);
#else
	return get_user_pages_remote(mm, addr, nr, gup_flags | FOLL_NOFAULT, pages, NULL);
#endif
}

/*
 * A read-only pin, turned into a plain reference: pinning makes the core
 * unshare an anonymous page that the source shares with a fork child or
 * KSM (a copy becomes the source's own), so that get_user_pages through
 * an attachment can pin the page later (xpmem_att_find_special_page).
 */
static inline long xpmem_pin_remote_one_read(struct mm_struct *mm,
					     unsigned long addr,
					     struct page **page)
{
	long n;

#if XPMEM_KERNEL_OLDER_THAN(6, 5, 0)
	n = pin_user_pages_remote(mm, addr, 1, 0, page, NULL, NULL);
#else
	n = pin_user_pages_remote(mm, addr, 1, 0, page, NULL);
#endif
	if (n == 1) {
		get_page(*page);
		unpin_user_page(*page);
	}
	return n;
}

/* The same for @nr pages already present (FOLL_NOFAULT): fault-around. */
static inline long xpmem_pin_remote_present_read(struct mm_struct *mm,
						 unsigned long addr, unsigned long nr,
						 struct page **pages)
{
	long n, i;

#if XPMEM_KERNEL_OLDER_THAN(6, 5, 0)
	n = pin_user_pages_remote(mm, addr, nr, FOLL_NOFAULT, pages, NULL, NULL);
#else
	n = pin_user_pages_remote(mm, addr, nr, FOLL_NOFAULT, pages, NULL);
#endif
	for (i = 0; i < n; i++) {
		get_page(pages[i]);
		unpin_user_page(pages[i]);
	}
	return n;
}

/*
 * Drop whatever lock the fault core took for this fault: the mmap lock, or
 * since 6.6 possibly only the per-VMA lock (before 6.6 a file-backed vma is
 * never faulted under the per-VMA lock alone).
 */
static inline void xpmem_release_fault_lock(struct vm_fault *vmf)
{
#if XPMEM_KERNEL_OLDER_THAN(6, 6, 0)
	mmap_read_unlock(vmf->vma->vm_mm);
#else
	release_fault_lock(vmf);
#endif
}

/*
 * fork: before 6.11, dup_mmap() copies a vma's page table (copy_page_range,
 * which calls vm_normal_page() on the parent's PTEs) before it calls the
 * child vma's ->open, so ->open cannot stop the copy, and a page handed to
 * the copy would be counted for a PTE that holds no reference.  The copy
 * happens only to a vma the application made inheritable (MADV_DOFORK and
 * MADV_KEEPONFORK clear our VM_DONTCOPY and VM_WIPEONFORK); such a vma's
 * pages are given to nobody on those kernels (get_user_pages on it fails).
 * From 6.11 on, ->open runs before the copy and sets VM_WIPEONFORK.  (No
 * lock internals are read: rw_semaphore differs on PREEMPT_RT.)
 */
#if XPMEM_KERNEL_OLDER_THAN(6, 11, 0)
#define XPMEM_FORK_OPENS_AFTER_COPY 1
static inline bool xpmem_vma_fork_may_copy(struct vm_area_struct *vma)
{
	return !(vma->vm_flags & (VM_DONTCOPY | VM_WIPEONFORK));
}
#else
#define XPMEM_FORK_OPENS_AFTER_COPY 0
static inline bool xpmem_vma_fork_may_copy(struct vm_area_struct *vma)
{
	return false;
}
#endif

/*
 * Is the current task inside a system call that would act on the pages it
 * walks (age, reclaim, split or migrate them): madvise (MADV_COLD,
 * MADV_PAGEOUT), process_madvise, mbind, migrate_pages, move_pages?
 * Through an attachment those pages are the exporter's, so the attachment
 * gives them to none of these callers (xpmem_attach.c): an attacher acts
 * on its own mapping only.  The number is the architecture's, and the
 * 32-bit one for an x86 compat call; every architecture's native numbers
 * are the same names (the arm64 guest job runs the same tests).
 *
 * Work the kernel runs on a task's behalf outside its system call (an
 * io_uring worker running a queued IORING_OP_MADVISE, which io_uring
 * always runs there; a kernel thread that adopted an mm) has no system
 * call to tell what it does, so it is counted as page-moving: such a task
 * is never given an attachment's page (a get_user_pages from it, an
 * O_DIRECT request that io_uring punted to a worker, fails with EFAULT).
 * Deciding by what a caller cannot show, rather than by a list of the
 * requests it might be running, closes every queued path at once.
 */
#include <linux/compat.h>
#include <linux/sched/task_stack.h>
#include <asm/syscall.h>
#include <asm/unistd.h>
#ifdef CONFIG_IA32_EMULATION
#include <asm/unistd_32_ia32.h>
#endif
static inline bool xpmem_in_page_moving_syscall(void)
{
	long nr;

	if (current->flags & (PF_KTHREAD | PF_IO_WORKER))
		return true;
	nr = syscall_get_nr(current, task_pt_regs(current));
#ifdef CONFIG_IA32_EMULATION
	if (in_ia32_syscall())
		return nr == __NR_ia32_madvise || nr == __NR_ia32_process_madvise ||
		       nr == __NR_ia32_mbind || nr == __NR_ia32_migrate_pages ||
		       nr == __NR_ia32_move_pages;
#endif
#ifdef __X32_SYSCALL_BIT
	nr &= ~__X32_SYSCALL_BIT;	/* x32 shares the 64-bit numbers */
#elif defined(CONFIG_COMPAT)
	/*
	 * A compat task of another architecture (arm64's AArch32) numbers
	 * its calls by a table this header does not list: it cannot show
	 * what it does, so, as above, it is counted as page-moving.
	 */
	if (in_compat_syscall())
		return true;
#endif
	return nr == __NR_madvise || nr == __NR_process_madvise || nr == __NR_mbind ||
	       nr == __NR_migrate_pages || nr == __NR_move_pages;
}

/*
 * get_user_pages on an attachment (futexes, O_DIRECT, process_vm_*, RDMA
 * registration): vm_normal_page() asks the vma for the page behind one of
 * its special PTEs.  The hook is vm_operations_struct.find_special_page
 * up to 6.17; 6.18 renamed it find_normal_page and builds it only with
 * CONFIG_FIND_NORMAL_PAGE, which only Xen's grant device selects (so
 * every distribution kernel with Xen guest support has it: Debian,
 * Ubuntu, Fedora, SUSE).  XPMEM_GUP_HOOK is the member's name; on a kernel
 * without the member (XPMEM_HAVE_GUP_HOOK 0) vm_normal_page() answers
 * NULL for every PTE of an attachment, a VM_MIXEDMAP vma, and
 * get_user_pages on it fails with EFAULT, as it does for any pfn
 * mapping: loads, stores and everything else work (README.md, xpmem(7),
 * docs/design.md).
 */
#if XPMEM_KERNEL_OLDER_THAN(6, 18, 0)
#define XPMEM_HAVE_GUP_HOOK 1
#define XPMEM_GUP_HOOK find_special_page
#elif defined(CONFIG_FIND_NORMAL_PAGE)
#define XPMEM_HAVE_GUP_HOOK 1
#define XPMEM_GUP_HOOK find_normal_page
#else
#define XPMEM_HAVE_GUP_HOOK 0
#endif

/*
 * 7.1 (commit 7aba71dbc416): mmu_interval_notifier_ops may split an
 * invalidation in two passes, ->invalidate_start for every overlapping
 * interval, then ->invalidate_finish for those that asked for it, so that
 * all of them can start taking their translations down before any waits.
 */
#define XPMEM_HAVE_TWO_PASS_NOTIFIER	(!XPMEM_KERNEL_OLDER_THAN(7, 1, 0))

/*
 * Call @fn on PTEs of [@addr, @addr + @size) of @mm where a PTE table is
 * there, allocating none (fdinfo counts an attachment's present PTEs;
 * the caller holds @mm's mmap lock).  apply_to_existing_page_range() does
 * exactly that; 6.14 stopped exporting it.  From 6.14 on, the exported
 * apply_to_page_range(), which would allocate every missing table, is
 * called only for the PMD ranges whose PTE table is present, found with
 * the same reads of the upper levels as the kernel's own walk (and as
 * xpmem_local_pte()): under the mmap lock no table above the PTE level
 * goes away.  Only an empty PTE table can be freed meanwhile (reclaimed
 * by a concurrent MADV_DONTNEED, under the mmap read lock too); then
 * apply_to_page_range() allocates it again, empty, as a fault there
 * would, and the count is still exact.  There @fn also sees empty PTEs,
 * which apply_to_existing_page_range() skips: @fn must ignore them.
 */
#if XPMEM_KERNEL_OLDER_THAN(6, 14, 0)
static inline int xpmem_apply_to_existing_page_range(struct mm_struct *mm,
						     unsigned long addr, unsigned long size,
						     pte_fn_t fn, void *data)
{
	return apply_to_existing_page_range(mm, addr, size, fn, data);
}
#else
/* @addr's PTE table is present: @addr; else the end of the hole, up to @end */
static inline unsigned long xpmem_pte_table_hole(struct mm_struct *mm,
						 unsigned long addr, unsigned long end)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;
	pmd_t pmd;

	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return pgd_addr_end(addr, end);
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return p4d_addr_end(addr, end);
	pud = pud_offset(p4d, addr);
	if (pud_none(*pud) || pud_leaf(*pud) || pud_bad(*pud))
		return pud_addr_end(addr, end);
	pmd = pmdp_get_lockless(pmd_offset(pud, addr));
	if (!pmd_present(pmd) || pmd_leaf(pmd) || pmd_bad(pmd))
		return pmd_addr_end(addr, end);
	return addr;
}

static inline int xpmem_apply_to_existing_page_range(struct mm_struct *mm,
						     unsigned long addr, unsigned long size,
						     pte_fn_t fn, void *data)
{
	unsigned long end = addr + size, next;
	int err = 0;

	while (addr < end && !err) {
		next = xpmem_pte_table_hole(mm, addr, end);
		if (next == addr) {
			next = pmd_addr_end(addr, end);
			err = apply_to_page_range(mm, addr, next - addr, fn, data);
		}
		addr = next;
	}
	return err;
}
#endif

/*
 * PageAnonExclusive() reads a hugetlb folio's bit on its head page from
 * 6.12 on; before, it reads the tail's own bit (clear) and, with
 * CONFIG_DEBUG_VM, get_user_pages asserts that bit on every pin through a
 * writable PTE: a CONFIG_DEBUG_VM kernel before 6.12 gets no hugetlb tail
 * page through an attachment (xpmem_local.c).
 */
#define XPMEM_HUGETLB_TAIL_PINNABLE \
	(!IS_ENABLED(CONFIG_DEBUG_VM) || !XPMEM_KERNEL_OLDER_THAN(6, 12, 0))

/*
 * Set one special PTE (pte_special(): an attachment's, never a normal
 * page of the attacher) where there was none.  arm64's set_pte_at() calls
 * __sync_cache_and_tags(), which skips a special PTE at run time but
 * references mte_sync_tags(), which no module may link against; what is
 * left for a special PTE is the store itself, __set_pte() (arm64's
 * set_pte()), with the page-table check of set_ptes() (a no-op unless
 * CONFIG_PAGE_TABLE_CHECK).  A special PTE is never part of a contiguous
 * (contpte) block: those are folded only over one folio's normal pages.
 */
#ifdef CONFIG_ARM64
static inline void xpmem_set_special_pte(struct mm_struct *mm, unsigned long addr,
					 pte_t *ptep, pte_t pte)
{
	VM_WARN_ON_ONCE(!pte_special(pte));
	/*
	 * The check's signature: one PTE with its address before 6.6's
	 * set_ptes(); 6.6 made it ptes_set without the address; 6.19 (the
	 * powerpc page-table-check series) gave the address back.  Only
	 * 6.12's is compiled here (make static); 7.1's read in its source.
	 */
#if XPMEM_KERNEL_OLDER_THAN(6, 6, 0)
	page_table_check_pte_set(mm, addr, ptep, pte);
#elif XPMEM_KERNEL_OLDER_THAN(6, 19, 0)
	page_table_check_ptes_set(mm, ptep, pte, 1);
#else
	page_table_check_ptes_set(mm, addr, ptep, pte, 1);
#endif
	set_pte(ptep, pte);
}
#else
static inline void xpmem_set_special_pte(struct mm_struct *mm, unsigned long addr,
					 pte_t *ptep, pte_t pte)
{
	set_pte_at(mm, addr, ptep, pte);
}
#endif

#endif /* _XPMEM_COMPAT_H */
