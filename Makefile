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

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g -fPIC -fvisibility=hidden \
	-ftls-model=initial-exec -fno-plt -fno-semantic-interposition \
	-Iinclude -I. $(WARN)
CFLAGS_LIB := $(BASE_CFLAGS) $(MODE_CFLAGS) $(EXTRA_CFLAGS)

# Sources of the library, lowest layer first (DESIGN §1).
MB_LIB_SRCS := \
	policy/budget.c policy/config.c policy/limits.c \
	alloc/os.c alloc/fmt.c alloc/meta.c alloc/sizeclass.c alloc/chunk.c \
	alloc/heap.c alloc/large.c alloc/alloc.c alloc/stats.c \
	policy/monitor.c policy/pressure.c policy/sample.c policy/modules.c \
	policy/dump.c \
	policy/statspage.c \
	preload/api.c preload/public.c preload/mmap.c preload/init.c preload/debug.c
MB_LIB_HDRS := $(wildcard include/*.h policy/*.h alloc/*.h preload/*.h)
# What the library links against: libunwind for the sampled backtraces (DESIGN
# §6).  The sanitizer builds of tests/unit.mk link the same.
MB_LIB_LDLIBS := -lunwind
MB_LIB_OBJS := $(MB_LIB_SRCS:%.c=$(BUILD)/obj/%.o)

LIB       := $(BUILD)/libmembudget.so
REL_LIB   := $(BUILD_ROOT)/libmembudget.so
DEBUG_LIB := $(BUILD_ROOT)/debug/libmembudget.so

.PHONY: all lib debug check deps demo bench clean format
all: lib tool
lib: $(LIB)

$(BUILD)/obj/%.o: %.c $(MB_LIB_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LIB) -c $< -o $@

$(LIB): $(MB_LIB_OBJS) preload/exports.map
	$(CC) -shared -o $@ $(MB_LIB_OBJS) -Wl,--version-script=preload/exports.map \
		-Wl,-z,now -Wl,-z,relro -Wl,-soname,libmembudget.so -pthread $(MB_LIB_LDLIBS)

# The debug library is built by a nested make so both can be named as files.
ifneq ($(DEBUG),1)
$(DEBUG_LIB): $(MB_LIB_SRCS) $(MB_LIB_HDRS) preload/exports.map Makefile
	$(MAKE) --no-print-directory DEBUG=1 lib
endif

debug: $(DEBUG_LIB)

deps:
	@bash scripts/deps.sh

clean:
	rm -rf $(BUILD_ROOT)

format:
	clang-format -i $(MB_LIB_SRCS) $(MB_LIB_HDRS)

# The command, its man pages and pkg-config file, install/uninstall (tools/*.mk);
# before the tests, which name what they build.
-include tools/*.mk

# Test and benchmark fragments; each defines check-* targets that append to CHECKS.
CHECKS :=
RESULTS := $(BUILD_ROOT)/results
-include tests/*.mk tests/*/*.mk bench/*.mk

check: deps
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	$(MAKE) --no-print-directory lib
	$(MAKE) --no-print-directory debug
	@status=0; for c in $(CHECKS); do \
		$(MAKE) --no-print-directory $$c || status=1; \
	done; bash scripts/summary.sh $(RESULTS); s=$$?; [ $$status -eq 0 ] && [ $$s -eq 0 ]

demo: lib tool
	@$(MAKE) --no-print-directory report-tool >/dev/null 2>&1 || true
	@bash scripts/demo.sh $(LIB) $(TOOL)
