# Unit and threaded tests of the malloc ABI (tests/unit/test_api.c,
# tests/threads/*.c), and of the misuses the allocator stops
# (tests/unit/test_memerr.c, preload mode only: double and invalid frees abort
# the children it forks).  One source per program, built three ways, run four times:
#   check-unit        gcc -Werror binaries run with LD_PRELOAD=$(REL_LIB)
#   check-unit-debug  the same binaries with LD_PRELOAD=$(DEBUG_LIB) (internal checks)
#   check-unit-asan   clang ASan+UBSan, the allocator linked in (-DMBTEST_LINKED):
#                     unit and threaded tests
#   check-unit-tsan   clang TSan, the allocator linked in: threaded tests
# Each writes $(RESULTS)/<suite>.txt, whose last line is "<suite>: N passed, N failed"
# (tests/run_suite.sh adds up the programs and counts a crash or hang as a failure).
# Needs Debian's clang and libclang-rt-14-dev (sanitizer runtimes), coreutils'
# timeout and util-linux's setarch.

UT_DIR    := $(BUILD_ROOT)/tests
UT_UNIT   := test_api
UT_MEMERR := test_memerr
UT_THREAD := test_threads test_thread_exit test_fork
UT_HDRS   := tests/harness.h tests/mbtest.h tests/testutil.h include/membudget.h tests/unit.mk
UT_RUN    := bash tests/run_suite.sh

UT_WARN   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# The compiler must not fold or drop malloc-family calls: the tests look at what
# the allocator does with requests whose result is only compared with NULL.
UT_NOBUILTIN := $(addprefix -fno-builtin-,malloc calloc realloc free aligned_alloc \
	posix_memalign memalign valloc pvalloc reallocarray malloc_usable_size)
UT_CFLAGS := -std=c11 -D_GNU_SOURCE -g -Iinclude -Itests $(UT_WARN) $(UT_NOBUILTIN) -pthread

UT_ASAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
UT_TSAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=thread
UT_LINKED_DEFS := -DMBTEST_LINKED -DMB_NO_EXPORTS

# ---- preload mode: plain binaries, the library comes from LD_PRELOAD --------
UT_PRELOAD_BINS := $(addprefix $(UT_DIR)/preload/,$(UT_UNIT) $(UT_THREAD) $(UT_MEMERR))

$(addprefix $(UT_DIR)/preload/,$(UT_UNIT)): $(UT_DIR)/preload/%: tests/unit/%.c $(UT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UT_CFLAGS) -O2 -fPIE -pie $< -o $@ -ldl

$(addprefix $(UT_DIR)/preload/,$(UT_THREAD)): $(UT_DIR)/preload/%: tests/threads/%.c $(UT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UT_CFLAGS) -O2 -fPIE -pie $< -o $@ -ldl

# The debug library calls membudget_debug_inside_malloc from inside malloc when
# the program defines it: the test exports its definition.
$(UT_DIR)/preload/$(UT_MEMERR): tests/unit/$(UT_MEMERR).c $(UT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(UT_CFLAGS) -O2 -fPIE -pie $< -o $@ -ldl \
		-Wl,--export-dynamic-symbol=membudget_debug_inside_malloc

# ---- linked mode: the library's sources compiled into each test binary -------
# The library's own -Werror is enforced by its release and debug builds; here
# clang's warnings in the -DMB_NO_EXPORTS configuration are shown, not fatal, so
# that a warning cannot hide what the sanitizers find.
# $(call ut_linked,asan|tsan,SANITIZER_FLAGS,TEST_NAMES); MB_LIB_LDLIBS, if the top
# Makefile ever sets it, names libraries the allocator itself links against.
define ut_linked
UT_$(1)_LIB_OBJS := $$(MB_LIB_SRCS:%.c=$(UT_DIR)/$(1)/lib/%.o)
UT_$(1)_BINS := $$(addprefix $(UT_DIR)/$(1)/,$(3))

$(UT_DIR)/$(1)/lib/%.o: %.c $$(MB_LIB_HDRS)
	@mkdir -p $$(dir $$@)
	$$(CLANG) $$(BASE_CFLAGS) -Wno-error $(2) $(UT_LINKED_DEFS) -c $$< -o $$@

$(UT_DIR)/$(1)/test_api.o: tests/unit/test_api.c $(UT_HDRS)
	@mkdir -p $$(dir $$@)
	$$(CLANG) $(UT_CFLAGS) $(2) $(UT_LINKED_DEFS) -c $$< -o $$@

$(UT_DIR)/$(1)/%.o: tests/threads/%.c $(UT_HDRS)
	@mkdir -p $$(dir $$@)
	$$(CLANG) $(UT_CFLAGS) $(2) $(UT_LINKED_DEFS) -c $$< -o $$@

$$(UT_$(1)_BINS): $(UT_DIR)/$(1)/%: $(UT_DIR)/$(1)/%.o $$(UT_$(1)_LIB_OBJS)
	$$(CLANG) $(2) -pthread $$< $$(UT_$(1)_LIB_OBJS) -o $$@ $$(MB_LIB_LDLIBS) -ldl
endef

$(eval $(call ut_linked,asan,$(UT_ASAN_FLAGS),$(UT_UNIT) $(UT_THREAD)))
$(eval $(call ut_linked,tsan,$(UT_TSAN_FLAGS),$(UT_THREAD)))

# TSan from clang 14 needs the address layout it expects; with too much mmap
# randomization it stops with "unexpected memory mapping".  setarch -R turns
# randomization off for the test alone, where the kernel lets us.
UT_TSAN_WRAP = $(shell setarch $$(uname -m) -R true >/dev/null 2>&1 && echo "setarch $$(uname -m) -R")

UT_ASAN_ENV := -e ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:allocator_may_return_null=1 \
	-e UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# TSan refuses a thread started in the child of a multi-threaded fork, which
# the library's own thread is (MEMBUDGET_CONTROL, restarted at the child's first
# tick): the threaded tests fork from threads, so it is off here.
UT_TSAN_ENV := -e TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1 -e MEMBUDGET_CONTROL=off

# ---- the checks ---------------------------------------------------------------
CHECKS += check-unit check-unit-debug check-unit-asan check-unit-tsan
.PHONY: check-unit check-unit-debug check-unit-asan check-unit-tsan unit-tests

unit-tests: $(UT_PRELOAD_BINS) $(UT_asan_BINS) $(UT_tsan_BINS)

check-unit: $(UT_PRELOAD_BINS) $(REL_LIB)
	@$(UT_RUN) -e LD_PRELOAD=$(abspath $(REL_LIB)) $(RESULTS)/unit.txt unit $(UT_PRELOAD_BINS)

check-unit-debug: $(UT_PRELOAD_BINS) $(DEBUG_LIB)
	@$(UT_RUN) -e LD_PRELOAD=$(abspath $(DEBUG_LIB)) -e MBTEST_DEBUG_LIB=1 \
		$(RESULTS)/unit-debug.txt unit-debug $(UT_PRELOAD_BINS)

check-unit-asan: $(UT_asan_BINS)
	@$(UT_RUN) $(UT_ASAN_ENV) $(RESULTS)/unit-asan.txt unit-asan $(UT_asan_BINS)

# TSan runs the threaded tests at half their size (~5x slower per operation).
check-unit-tsan: $(UT_tsan_BINS)
	@$(UT_RUN) $(UT_TSAN_ENV) -e MBTEST_SCALE=0.5 -w "$(UT_TSAN_WRAP)" \
		$(RESULTS)/unit-tsan.txt unit-tsan $(UT_tsan_BINS)
