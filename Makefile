# membudget — build, test, benchmark.
#   make            build/libmembudget.so (release)
#   make DEBUG=1    build/debug/libmembudget.so (internal invariant checks on)
#   make check      install what is missing (Debian), build, run every test
#   make demo       run a real program under the budget
#   make bench      compare allocators side by side (bench/RESULTS.md)

CC      ?= cc
CLANG   ?= clang
PYTHON  ?= python3
PREFIX  ?= /usr/local

BUILD_ROOT := build
ifeq ($(DEBUG),1)
BUILD   := $(BUILD_ROOT)/debug
MODE_CFLAGS := -O1 -DMB_DEBUG=1
else
BUILD   := $(BUILD_ROOT)
MODE_CFLAGS := -O2 -DNDEBUG
endif

# The platform (alloc/os.h, the platform interface): its implementation files
# for the target OS, chosen here and nowhere else.  A new OS is a new block.
#   MB_OS_BASE_SRCS    layer 0: alloc/os.c and alloc/os_<os>.c
#   MB_OS_LIMITS_SRCS  with RAM and container limits: what policy/limits.c
#                      needs, for the programs that link it alone (the
#                      command, tests/limits, fuzz)
#   MB_OS_SRCS         all of them, with the loaded modules and the machine's
#                      memory (policy/machine.h): the library's
#   MB_OS_CFLAGS       the exported names' list (MB_INTERPOSE_H, preload/api.c)
#   MB_OS_LIB_LDFLAGS  how the library is linked and what it exports
#   MB_OS_LIB_SUFFIX   the library's file name ends with it
MB_OS_TRIPLE := $(shell $(CC) -dumpmachine 2>/dev/null)
MB_OS ?= $(if $(findstring linux,$(MB_OS_TRIPLE)),linux,$(if $(findstring apple,$(MB_OS_TRIPLE)),darwin,unknown))
#   MB_OS_TOOL_*       the command's and the report tool's own files and flags
MB_OS_LIB_SUFFIX := .so
ifeq ($(MB_OS),linux)
MB_OS_BASE_SRCS := alloc/os.c alloc/os_posix.c alloc/os_linux.c
MB_OS_LIMITS_SRCS := $(MB_OS_BASE_SRCS) policy/limits_linux.c
MB_OS_SRCS  := $(MB_OS_LIMITS_SRCS) policy/modules_linux.c policy/machine_linux.c
MB_OS_CFLAGS := -DMB_INTERPOSE_H='"preload/interpose_linux.h"'
MB_OS_LIB_LDFLAGS := -Wl,--version-script=preload/exports.map -Wl,-z,now -Wl,-z,relro \
	-Wl,-soname,libmembudget.so
# Relative relocations packed (DT_RELR, glibc 2.36 and binutils 2.38 on): 32 KB of
# them, mostly jemalloc's, are no longer read at every start.
MB_OS_LIB_LDFLAGS += $(shell $(CC) -shared -Wl,-z,pack-relative-relocs -Wl,--fatal-warnings \
	-x c /dev/null -o /dev/null 2>/dev/null && echo -Wl,-z,pack-relative-relocs)
MB_OS_CFLAGS += -DMB_MMAP_EXPORTS_H='"preload/mmap_linux.h"'
MB_OS_TOOL_SRCS := tools/proc_linux.c tools/run_preload_linux.c
MB_OS_REPORT_SYMBOLS := tools/report_symbols.c tools/report_index.c
else ifeq ($(MB_OS),darwin)
# macOS (tests/macos.mk builds it here against an SDK: make check-macos).  The
# malloc zone is a file of the library's own; the jemalloc backend stays Linux's.
MB_OS_BASE_SRCS := alloc/os.c alloc/os_posix.c alloc/os_darwin.c
MB_OS_LIMITS_SRCS := $(MB_OS_BASE_SRCS) policy/limits_darwin.c
MB_OS_SRCS  := $(MB_OS_LIMITS_SRCS) policy/modules_darwin.c policy/machine_darwin.c \
	preload/zone_darwin.c
MB_OS_CFLAGS := -include alloc/os_darwin_compat.h \
	-DMB_INTERPOSE_H='"preload/interpose_darwin.h"' -DMB_MMAP_EXPORTS_H='"preload/mmap_darwin.h"'
MB_OS_LIB_LDFLAGS := -dynamiclib -Wl,-install_name,@rpath/libmembudget.dylib \
	-Wl,-exported_symbols_list,preload/exports_darwin.txt $(MACOS_LDFLAGS)
MB_OS_LIB_SUFFIX := .dylib
JEMALLOC_PIC :=
# The tools: libproc instead of /proc, atos instead of libdw (no macOS build),
# jansson from MACOS_JANSSON_CFLAGS/LDFLAGS (tests/macos.mk builds it).
MB_OS_TOOL_SRCS := tools/proc_darwin.c tools/run_preload_darwin.c
MB_OS_REPORT_SYMBOLS := tools/report_symbols_darwin.c
MB_OS_TOOL_CFLAGS := -include alloc/os_darwin_compat.h $(MACOS_JANSSON_CFLAGS)
MB_OS_TOOL_LDFLAGS := $(MACOS_LDFLAGS) $(MACOS_JANSSON_LDFLAGS)
MB_OS_REPORT_LDLIBS := -ljansson -lc++
else
$(error membudget: no platform implementation for $(MB_OS) (the target of $(CC)); see alloc/os.h)
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g -fPIC -fvisibility=hidden \
	-ftls-model=initial-exec $(if $(filter linux,$(MB_OS)),-fno-plt -fno-semantic-interposition) \
	-Iinclude -I. $(WARN) $(MB_OS_CFLAGS)
CFLAGS_LIB := $(BASE_CFLAGS) $(MODE_CFLAGS) $(EXTRA_CFLAGS)

.DEFAULT_GOAL := all

# Sources of the library, lowest layer first (DESIGN §1).
MB_LIB_SRCS := \
	policy/budget.c policy/config.c policy/limits.c \
	$(MB_OS_SRCS) alloc/fmt.c alloc/meta.c alloc/sizeclass.c alloc/chunk.c \
	alloc/heap.c alloc/large.c alloc/check.c alloc/alloc.c alloc/stats.c \
	alloc/native.c alloc/backend.c \
	policy/monitor.c policy/machine.c policy/pressure.c policy/sample.c \
	policy/dump.c \
	policy/statspage.c policy/control.c policy/group.c policy/group_view.c alloc/jemalloc.c \
	alloc/jemalloc_math.c \
	preload/api.c preload/public.c preload/mmap.c preload/init.c preload/debug.c
MB_LIB_HDRS := $(wildcard include/*.h policy/*.h alloc/*.h preload/*.h)
# What the library links against: libunwind for the sampled backtraces (DESIGN
# §6).  The sanitizer builds of tests/unit.mk link the same.
MB_LIB_LDLIBS := $(if $(filter darwin,$(MB_OS)),,-lunwind)
MB_LIB_OBJS := $(MB_LIB_SRCS:%.c=$(BUILD)/obj/%.o)

# The jemalloc backend (alloc/jemalloc.c): Debian's libjemalloc_pic.a
# (libjemalloc-dev), its objects merged into one with the C++ operators left
# out, the public names renamed to mbje_* (alloc/jemalloc.syms: nothing of it is
# visible to the program, and its mmap/munmap calls come to us) and the
# constructor removed (it starts only when chosen).  Its calls to libm's log,
# exp and round go to alloc/jemalloc_math.c, so that no process maps libm for
# it (the same jemalloc.syms renames them).  Without libjemalloc-dev
# the library builds without the backend.  JEMALLOC_PIC= forces that.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
JEMALLOC_PIC ?= $(firstword $(wildcard /usr/lib/$(MULTIARCH)/libjemalloc_pic.a /usr/lib/libjemalloc_pic.a))
JE_OBJ := $(BUILD_ROOT)/jemalloc/jemalloc.o
ifneq ($(JEMALLOC_PIC),)
ifneq ($(wildcard /usr/include/jemalloc/jemalloc.h),)
CFLAGS_LIB += -DMB_HAVE_JEMALLOC=1
MB_LIB_JE := $(JE_OBJ)
endif
endif

$(JE_OBJ): $(JEMALLOC_PIC) alloc/jemalloc.syms Makefile | build-deps
	@rm -rf $(@D) && mkdir -p $(@D)/members
	cd $(@D)/members && ar x $(abspath $(JEMALLOC_PIC))
	$(LD) -r -o $(@D)/merged.o $$(ls $(@D)/members/*.o | grep -v jemalloc_cpp)
	objcopy --redefine-syms=alloc/jemalloc.syms -R .init_array \
		--rename-section .text=.mbje_text --rename-section .text.unlikely=.mbje_text_unlikely \
		--rename-section .text.startup=.mbje_text_startup $(@D)/merged.o $@

LIB       := $(BUILD)/libmembudget$(MB_OS_LIB_SUFFIX)
REL_LIB   := $(BUILD_ROOT)/libmembudget.so
DEBUG_LIB := $(BUILD_ROOT)/debug/libmembudget.so

.PHONY: all lib debug check check-loaded deps build-deps demo bench clean format
all: lib tool
lib: $(LIB)

# What a target needs from Debian (scripts/deps.sh).  A build stops at once with
# one line naming the missing packages and the command that installs them;
# make demo, make bench and make check install them first (as root), then build
# in a sub-make, which sees what was installed (MB_DEPS_DONE skips the check).
build-deps:
ifneq ($(MB_DEPS_DONE),1)
	@bash scripts/deps.sh --check build
endif

$(BUILD)/obj/%.o: %.c $(MB_LIB_HDRS) Makefile | build-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LIB) -c $< -o $@

$(LIB): $(MB_LIB_OBJS) $(MB_LIB_JE) preload/exports.map
	$(CC) -shared -o $@ $(MB_LIB_OBJS) $(MB_LIB_JE) $(MB_OS_LIB_LDFLAGS) -pthread $(MB_LIB_LDLIBS)

# The debug library is built by a nested make so both can be named as files.
ifneq ($(DEBUG),1)
$(DEBUG_LIB): $(MB_LIB_SRCS) $(MB_LIB_HDRS) preload/exports.map Makefile
	$(MAKE) --no-print-directory DEBUG=1 lib
endif

debug: $(DEBUG_LIB)

deps:
	@bash scripts/deps.sh --install check

clean:
	rm -rf $(BUILD_ROOT)

format:
	clang-format -i $(MB_LIB_SRCS) $(MB_LIB_HDRS)

# The command, its man pages and pkg-config file, install/uninstall (tools/*.mk);
# before the tests, which name what they build.
-include tools/*.mk

# $(call with_jemalloc,NAME,COMMAND): a suite run again on the jemalloc backend
# (MB_TEST_BACKEND=jemalloc), its lines in $(RESULTS)/NAME.txt, and a failing
# one there if it stops before its closing line (scripts/record_suite.sh); a
# build without the backend records one skip.
define with_jemalloc
	@mkdir -p $(RESULTS)
	@if [ -n "$(MB_LIB_JE)" ]; then \
		MB_TEST_BACKEND=jemalloc bash scripts/record_suite.sh $(RESULTS) $(1) $(2); \
	else \
		printf 'skip %s: this build has no jemalloc backend (install libjemalloc-dev)\n0 passed, 0 failed, 1 skipped\n' \
			$(1) | tee $(RESULTS)/$(1).txt; \
	fi
endef

# Test and benchmark fragments; each defines check-* targets that append to CHECKS.
CHECKS :=
RESULTS := $(BUILD_ROOT)/results
-include tests/*.mk tests/*/*.mk bench/*.mk

check: deps
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	$(MAKE) --no-print-directory MB_DEPS_DONE=1 lib
	$(MAKE) --no-print-directory MB_DEPS_DONE=1 debug
	@status=0; for c in $(CHECKS); do \
		bash scripts/check_target.sh $(RESULTS) $$c \
			$(MAKE) --no-print-directory MB_DEPS_DONE=1 $$c || status=1; \
	done; bash scripts/summary.sh $(RESULTS); s=$$?; [ $$status -eq 0 ] && [ $$s -eq 0 ]

# make check three times in a fresh clone with every core kept busy
# (scripts/check_loaded.sh); not part of make check.
check-loaded: deps
	@bash scripts/check_loaded.sh $(LOADED_RUNS)

demo:
	@bash scripts/deps.sh --install demo
	@$(MAKE) --no-print-directory MB_DEPS_DONE=1 lib tool report-tool
	@bash scripts/demo.sh $(LIB) $(TOOL)
