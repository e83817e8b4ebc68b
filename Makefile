# SPDX-License-Identifier: GPL-2.0
#
# xpmem top-level Makefile.
#
#   make              module (for KVER), libxpmem, tests
#   make demo         boot a guest and show two processes sharing memory,
#                     then two partitions (two kernels) sharing memory
#   make check        static checks, then the test suites in guests, on every
#                     kernel of the matrix (the CI's budget: tests/check
#                     says what runs where)
#   make check-full   every job on every kernel in its full form
#   make fuzz         the concurrent fuzzer, DURATION seconds (default 3600)
#                     on KERNEL (default debug); SEED=... replays a run
#   make static       checkpatch --strict, W=1 and sparse on every kernel
#   make bench        MPI Put/Get and OpenSHMEM put/get benchmarks, xpmem
#                     vs posix+cma, and the cross-partition benchmark (bench/)
#   make install      PREFIX=/usr/local DESTDIR= (library, header, pkg-config,
#                     man pages xpmem(7) and xpmem_make(3))
#   make deb          Debian packages xpmem-dkms, libxpmem0, libxpmem-dev in
#                     build/deb/, checked by lintian (debian/, dkms.conf)
#
# KVER selects the kernel release to build the module against (default:
# the running kernel if its headers exist, else the newest Debian 6.1).
# KERNELS selects the guest kernels of `make check` (names from
# scripts/kernels); KERNEL=NAME is the same for a single one.

VERSION   := 3.0.0
SONAME    := libxpmem.so.0
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
INCLUDEDIR?= $(PREFIX)/include
MANDIR    ?= $(PREFIX)/share/man
B         := build

CC        ?= cc
CFLAGS    ?= -O2 -g
WARN      := -Wall -Wextra -Werror=implicit-function-declaration
LIB_CFLAGS:= $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden -Iinclude/uapi
TEST_CFLAGS := $(CFLAGS) $(WARN) -Iinclude/uapi -Itests -pthread

KVER ?= $(shell if [ -e /lib/modules/$$(uname -r)/build/Makefile ]; then \
		uname -r; else scripts/kernels debian-6.1 | cut -d' ' -f2; fi)
KDIR ?= /lib/modules/$(KVER)/build
ifdef KERNEL
KERNELS := $(KERNEL)
endif
KERNELS ?= $(shell scripts/kernels | cut -d' ' -f1)

# an arm64 release (scripts/arm64-kernel/build) is cross-built
KARCH_FLAGS := $(if $(filter %-arm64,$(KVER)),ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)

MOD_SRC := $(wildcard drivers/xpmem/*.c drivers/xpmem/*.h) \
	   drivers/xpmem/Kbuild include/uapi/xpmem.h
MOD_OUT := $(B)/modules/$(KVER)

LIB_SO  := $(B)/lib/libxpmem.so.$(VERSION)
LIB_A   := $(B)/lib/libxpmem.a
PCS     := $(B)/lib/pkgconfig/xpmem.pc $(B)/lib/pkgconfig/cray-xpmem.pc

TEST_SRCS := $(wildcard tests/functional/*.c tests/demo/*.c tests/oversub/*.c tests/partitions/*.c \
		 tests/harness/*.c tests/fuzz/*.c)
TEST_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRCS))
# RDMA test: needs libibverbs-dev (scripts/deps installs it)
RDMA_BINS := $(if $(wildcard /usr/include/infiniband/verbs.h),$(B)/tests/rdma/xpmem_rdma)
BENCH_SRCS := $(wildcard bench/partitions/*.c bench/local/*.c)
BENCH_BINS := $(patsubst %.c,$(B)/%,$(BENCH_SRCS))

# MPI tests and benchmark: built with MPICH's mpicc when it is installed
# (scripts/deps installs it; the MPI suite reports a failure without it),
# called by its own name: installing Open MPI switches the plain mpicc
MPICC     ?= mpicc.mpich
MPI_SRCS  := $(wildcard tests/mpi/*.c bench/mpi/*.c)
MPI_BINS  := $(if $(shell command -v $(MPICC)),$(patsubst %.c,$(B)/%,$(MPI_SRCS)))
# the same MPI tests built with Open MPI's mpicc.openmpi (tests/mpi/run's
# Open MPI part), into build/tests/mpi-ompi/
OMPICC    ?= mpicc.openmpi
OMPI_BINS := $(if $(shell command -v $(OMPICC)),$(patsubst tests/mpi/%.c,$(B)/tests/mpi-ompi/%,$(wildcard tests/mpi/*.c)) \
	$(patsubst bench/mpi/%.c,$(B)/bench/mpi-ompi/%,$(wildcard bench/mpi/*.c)))
# OpenSHMEM tests and benchmark (tests/shmem/run, bench/shmem/run): Open
# MPI's oshmem, built with its oshcc (openmpi-bin; MPICH has no OpenSHMEM)
OSHCC      ?= oshcc
SHMEM_BINS := $(if $(shell command -v $(OSHCC)),$(patsubst %.c,$(B)/%,$(wildcard tests/shmem/*.c bench/shmem/*.c)))

.PHONY: all module module-test lib tests tests-demo tests-arm64 arm64-programs check check-full check-oversub fuzz static demo bench bench-local bench-mpi-coll bench-shmem bench-partitions bench-peer install deb deps clean
all: module module-test lib tests

# ---- kernel module: built in a private copy per release -------------------
# build/modules/<release>/xpmem.ko is the module to install; the test suites
# load build/modules-test/<release>/xpmem.ko, the same source built with
# the test hooks (CONFIG_XPMEM_TEST_HOOKS: debugfs ack_delay_ms,
# test_pin_pages), which the installed module never contains.
MOD_TEST_OUT := $(B)/modules-test/$(KVER)
module: $(MOD_OUT)/xpmem.ko
module-test: $(MOD_TEST_OUT)/xpmem.ko
define build_module
	@test -e $(KDIR)/Makefile || { echo "no kernel headers at $(KDIR) (run scripts/deps)"; exit 1; }
	@rm -rf $(1)/src
	@mkdir -p $(1)/src/drivers/xpmem $(1)/src/include/uapi
	@cp drivers/xpmem/*.c drivers/xpmem/*.h drivers/xpmem/Kbuild $(1)/src/drivers/xpmem/
	@cp include/uapi/xpmem.h $(1)/src/include/uapi/
	+$(MAKE) -C $(KDIR) M=$(CURDIR)/$(1)/src/drivers/xpmem CONFIG_XPMEM=m W=1 $(KARCH_FLAGS) $(2) modules
	@cp $(1)/src/drivers/xpmem/xpmem.ko $(1)/xpmem.ko
endef
$(MOD_OUT)/xpmem.ko: $(MOD_SRC)
	$(call build_module,$(MOD_OUT),)
$(MOD_TEST_OUT)/xpmem.ko: $(MOD_SRC)
	$(call build_module,$(MOD_TEST_OUT),XPMEM_TEST_HOOKS=y)

# ---- libxpmem ---------------------------------------------------------------
# build/lib/pkgconfig describes a default install; `make install` writes the
# .pc files again for the PREFIX it is given.
lib: $(LIB_SO) $(LIB_A) $(PCS)
$(B)/lib/xpmem.o: lib/libxpmem/xpmem.c include/uapi/xpmem.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(LIB_CFLAGS) -c $< -o $@
$(LIB_SO): $(B)/lib/xpmem.o lib/libxpmem/libxpmem.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libxpmem/libxpmem.map -o $@ $<
	ln -sf libxpmem.so.$(VERSION) $(B)/lib/$(SONAME)
	ln -sf $(SONAME) $(B)/lib/libxpmem.so
$(LIB_A): $(B)/lib/xpmem.o
	$(AR) rcs $@ $<
$(B)/lib/pkgconfig/%.pc: lib/libxpmem/%.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< >$@

# ---- tests --------------------------------------------------------------------
tests: $(TEST_BINS) $(MPI_BINS) $(OMPI_BINS) $(SHMEM_BINS) $(BENCH_BINS) $(RDMA_BINS)
$(B)/bench/partitions/%: bench/partitions/%.c tests/partitions/fabric.h tests/time_scale.h $(LIB_SO)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -L$(B)/lib -lxpmem -Wl,-rpath,$(CURDIR)/$(B)/lib
$(B)/bench/local/%: bench/local/%.c include/uapi/xpmem.h $(LIB_SO)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -L$(B)/lib -lxpmem -Wl,-rpath,$(CURDIR)/$(B)/lib
$(B)/tests/mpi/% $(B)/bench/mpi/%: MPI_CFLAGS := $(CFLAGS) $(WARN)
$(B)/tests/mpi/%: tests/mpi/%.c
	@mkdir -p $(@D)
	$(MPICC) $(MPI_CFLAGS) -o $@ $<
$(B)/bench/mpi/%: bench/mpi/%.c
	@mkdir -p $(@D)
	$(MPICC) $(MPI_CFLAGS) -o $@ $<
$(B)/tests/mpi-ompi/%: tests/mpi/%.c
	@mkdir -p $(@D)
	$(OMPICC) $(CFLAGS) $(WARN) -o $@ $<
$(B)/bench/mpi-ompi/%: bench/mpi/%.c
	@mkdir -p $(@D)
	$(OMPICC) $(CFLAGS) $(WARN) -o $@ $<
$(B)/tests/shmem/%: tests/shmem/%.c
	@mkdir -p $(@D)
	$(OSHCC) $(CFLAGS) $(WARN) -o $@ $<
$(B)/bench/shmem/%: bench/shmem/%.c
	@mkdir -p $(@D)
	$(OSHCC) $(CFLAGS) $(WARN) -o $@ $<
$(B)/tests/rdma/xpmem_rdma: tests/rdma/xpmem_rdma.c tests/tap.h tests/testlib.h tests/time_scale.h include/uapi/xpmem.h $(LIB_SO)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -L$(B)/lib -lxpmem -libverbs -Wl,-rpath,$(CURDIR)/$(B)/lib

$(B)/tests/%: tests/%.c tests/tap.h tests/testlib.h tests/time_scale.h tests/oversub/pattern.h tests/partitions/fabric.h include/uapi/xpmem.h $(LIB_SO)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -L$(B)/lib -lxpmem -Wl,-rpath,$(CURDIR)/$(B)/lib

# The arm64 guest's programs (debian-6.12-arm64): libxpmem and the
# functional, fuzz, oversub, partitions and harness programs cross-built
# into build/arm64/
# (guest-init mounts its lib/ and tests/ over build/lib and build/tests
# in an arm64 guest)
ARM64_CROSS ?= aarch64-linux-gnu-
tests-arm64:
	$(MAKE) B=$(B)/arm64 CC=$(ARM64_CROSS)gcc AR=$(ARM64_CROSS)ar arm64-programs
arm64-programs: $(LIB_SO) $(LIB_A) $(filter-out $(B)/tests/demo/%,$(TEST_BINS))

# ---- running ------------------------------------------------------------------
deps:
	scripts/deps

check: deps
	$(MAKE) all
	tests/check $(KERNELS)

check-full: deps
	$(MAKE) all
	XPMEM_FULL=1 tests/check $(KERNELS)

# the long form of the fuzzer: one guest, DURATION seconds (default 3600)
FUZZ_KERNEL = $(if $(KERNEL),$(KERNEL),debug)
FUZZ_DURATION = $(if $(filter command line environment,$(origin DURATION)),$(DURATION),3600)
fuzz: deps
	$(MAKE) all
	scripts/xpmem-vm --kernel $(FUZZ_KERNEL) --disk 16 --timeout $$(( $(FUZZ_DURATION) + 1800 )) \
		--log build/vm/console-$(FUZZ_KERNEL)-fuzz.log \
		run -- env XPMEM_FUZZ_DURATION=$(FUZZ_DURATION) XPMEM_FUZZ_SEED=$(SEED) \
		"XPMEM_FUZZ_ARGS=--procs 4 --threads 4 --users --min-ops $$(( $(FUZZ_DURATION) * 100 ))" \
		tests/fuzz/run

# the long form of the oversubscription suite: DURATION seconds of 8x
# oversubscription plus a quarter of it for each of the fork and kill -9
# storms; DURATION=1200 is a 30-minute run.
DURATION ?= 1200
check-oversub: deps
	$(MAKE) all
	XPMEM_JOBS=oversub XPMEM_OVERSUB_DURATION=$(DURATION) \
		XPMEM_CHECK_TIMEOUT=$$(( $(DURATION) * 4 + 1800 )) tests/check $(KERNELS)

static: deps
	scripts/static-checks $(KERNELS)

# the demo installs and boots only what it shows: one stock kernel, no MPI,
# no debug kernel (scripts/deps --demo)
DEMO_KERNEL ?= debian-6.12
demo:
	scripts/deps --demo
	$(MAKE) tests-demo
	scripts/xpmem-vm --kernel $(DEMO_KERNEL) run -- tests/demo/run-demo
	scripts/xpmem-partitions --count 2 --kernel $(DEMO_KERNEL) --mem 512 \
		--log-prefix build/vm/console-demo-part run -- tests/demo/run-partition-demo
tests-demo: $(filter $(B)/tests/demo/%,$(TEST_BINS))

# Local attachments (first touch, copy, per-call costs, invalidation), one
# guest boot; table in build/bench/local.md, plot in build/bench/local.png.
# Then MPI Put/Get latency and bandwidth, UCX xpmem vs posix+cma, one guest
# boot; table in build/bench/mpi-rma.md, plot in build/bench/mpi-rma.png.
# Then OpenSHMEM put/get, UCX xpmem vs posix+cma, one guest boot
# (bench-shmem; table in build/bench/shmem.md, plot in build/bench/shmem.png)
bench: deps
	$(MAKE) all
	scripts/xpmem-vm --kernel $(BENCH_KERNEL) --mem 2048 run -- bench/local/run
	bench/local/report
	tests/mpi/build-ucx-xpmem
	tests/mpi/build-ompi-xpmem
	scripts/xpmem-vm --kernel $(BENCH_KERNEL) --mem 2048 run -- bench/mpi/run
	bench/mpi/report
	$(MAKE) bench-mpi-coll
	$(MAKE) bench-shmem
	$(MAKE) bench-partitions
BENCH_KERNEL ?= debian-6.12

# MPI_Bcast / MPI_Allreduce, reused and fresh buffers, np 2/4/8, UCX xpmem
# vs posix+cma, one guest boot; build/bench/mpi-coll.md and .png
bench-mpi-coll: deps
	$(MAKE) all
	tests/mpi/build-ucx-xpmem
	scripts/xpmem-vm --kernel $(BENCH_KERNEL) --mem 2048 run -- bench/mpi/run-coll
	bench/mpi/report-coll

bench-shmem: deps
	$(MAKE) all
	tests/mpi/build-ucx-xpmem
	scripts/xpmem-vm --kernel $(BENCH_KERNEL) --mem 2048 run -- bench/shmem/run
	bench/shmem/report

# cross-partition fault, invalidation and copy vs local, two partitions in
# one run; table in build/bench/partitions/remote.md
bench-local: deps
	$(MAKE) all
	scripts/xpmem-vm --kernel $(BENCH_KERNEL) --mem 2048 run -- bench/local/run
	bench/local/report

# this driver against the established one (hpc/xpmem; XPMEM_PEER_SRC=a
# checkout of it, else the bench says so and does nothing), same program,
# same kernel (debian-6.1), interleaved; build/bench/peer.md and .png
bench-peer: deps
	$(MAKE) all
	bench/peer/run

bench-partitions: deps
	$(MAKE) all
	scripts/xpmem-partitions --count 2 --kernel $(BENCH_KERNEL) --mem 1024 \
		--log-prefix build/vm/console-bench-part run -- bench/partitions/run
	@{ echo "# Cross-partition export vs local ($(BENCH_KERNEL), TCG, same run)"; echo; \
	   cat build/bench/partitions/remote.md; echo; \
	   echo "Channel round trip (in-kernel PING/PONG): $$(cat build/bench/partitions/ping.txt)"; \
	 } >build/bench/partitions.md
	@cat build/bench/partitions.md

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libxpmem.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libxpmem.so
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	for pc in xpmem cray-xpmem; do \
		sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		    lib/libxpmem/$$pc.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/$$pc.pc; \
		chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/$$pc.pc; done
	install -m 644 include/uapi/xpmem.h $(DESTDIR)$(INCLUDEDIR)/xpmem.h
	install -d $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	install -m 644 docs/man/*.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 docs/man/xpmem.7 $(DESTDIR)$(MANDIR)/man7/

# ---- Debian packages -----------------------------------------------------------
# build/deb/: xpmem-dkms, libxpmem0, libxpmem-dev (debian/control), built by
# dpkg-buildpackage in a copy of this tree (it writes its output next to
# the tree it builds, and its own build files into it), then lintian.
DEB_DIR := $(B)/deb
deb:
	scripts/deps --deb
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/xpmem-$(VERSION)
	tar -c --exclude=./build --exclude=./.git . | tar -x -C $(DEB_DIR)/xpmem-$(VERSION)
	cd $(DEB_DIR)/xpmem-$(VERSION) && dpkg-buildpackage -b -uc -us >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	lintian --info --display-info --fail-on error,warning $(DEB_DIR)/xpmem_$(VERSION)_*.changes \
		>$(DEB_DIR)/lintian.log 2>&1; rc=$$?; cat $(DEB_DIR)/lintian.log; exit $$rc
	@ls $(DEB_DIR)/*.deb

clean:
	rm -rf $(B)
