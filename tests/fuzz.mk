# Fuzzing (tests/fuzz/): three libFuzzer targets built with clang
# -fsanitize=fuzzer,address,undefined.
#   fuzz_alloc   the allocator's sources linked in (-DMBTEST_LINKED -DMB_NO_EXPORTS,
#                as tests/unit.mk's linked mode) with the debug build's internal
#                checks (-DMB_DEBUG=1), instrumented for coverage; two
#                threads drive malloc/calloc/realloc/reallocarray/free and the
#                aligned calls over shared slots (contents, alignment, overlap,
#                malloc_usable_size, errno)
#   fuzz_config  every MEMBUDGET_* parser of policy/config.c against the grammar it
#                documents, round trips, mb_config_set, and the thresholds of
#                policy/limits.c computed from what the parsers accept
#   fuzz_report  the report tool's dump reader (tools/report*.c) and every output
#                (text, --folded, --json, --svg), with frames named from the
#                input's bytes: outputs escaped, re-parsable, bounded by the input
#   fuzz_livepage  the live-page reader of tools/livestats.c (with the symbolizer's
#                module checks) on page files as another user may write them:
#                what it accepts is within the layout, the pread copy agrees
#                with the checks, every string's terminal form is control-free
# check-fuzz runs two lines at once (two cores), each target after replaying its
# checked-in regression inputs (tests/fuzz/regress/<target>/): fuzz_alloc then
# fuzz_report (FUZZ_REPORT_SECONDS), beside fuzz_config then fuzz_livepage
# (FUZZ_SECONDS each); writes $(RESULTS)/fuzz-<name>.txt for each.
# fuzz-stress (part of `make stress`) runs each until FUZZ_STRESS_OPS operations
# (fuzz_alloc) or executions (fuzz_config), FUZZ_STRESS_SECONDS per session.
# The working corpora stay in build/fuzz/<target>/corpus between runs.

FUZZ_DIR      := $(BUILD_ROOT)/fuzz
FUZZ_SECONDS  ?= 40
FUZZ_REPORT_SECONDS ?= 30
FUZZ_STRESS_OPS ?= 10000000
FUZZ_STRESS_SECONDS ?= 120
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIB_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN) -DMB_DEBUG=1 \
	-DMBTEST_LINKED -DMB_NO_EXPORTS
FUZZ_NOBUILTIN := $(addprefix -fno-builtin-,malloc calloc realloc free aligned_alloc \
	posix_memalign memalign valloc pvalloc reallocarray malloc_usable_size)
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Iinclude -I. -Itests \
	-Wall -Wextra -Werror -Wshadow $(FUZZ_NOBUILTIN) -pthread -fsanitize=fuzzer $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(MB_LIB_SRCS:%.c=$(FUZZ_DIR)/lib/%.o)
FUZZ_BINS     := $(FUZZ_DIR)/fuzz_alloc $(FUZZ_DIR)/fuzz_config $(FUZZ_DIR)/fuzz_report \
	$(FUZZ_DIR)/fuzz_livepage
FUZZ_RUN      := bash tests/fuzz/run_fuzz.sh

$(FUZZ_DIR)/lib/%.o: %.c $(MB_LIB_HDRS) tests/fuzz.mk
	@mkdir -p $(dir $@)
	$(CLANG) $(BASE_CFLAGS) -Wno-error $(FUZZ_LIB_FLAGS) -c $< -o $@

# The pattern loops run over every allocated byte: no coverage, no sanitizer.
$(FUZZ_DIR)/fuzz_pattern.o: tests/fuzz/fuzz_pattern.c tests/testutil.h tests/harness.h tests/fuzz.mk
	@mkdir -p $(dir $@)
	$(CLANG) -std=c11 -D_GNU_SOURCE -g -O2 -Itests -Wall -Wextra -Werror -c $< -o $@

$(FUZZ_DIR)/fuzz_alloc: tests/fuzz/fuzz_alloc.c $(FUZZ_DIR)/fuzz_pattern.o $(FUZZ_LIB_OBJS) \
		tests/mbtest.h tests/testutil.h tests/harness.h tests/fuzz.mk
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -DMBTEST_LINKED -DMB_NO_EXPORTS $< $(FUZZ_DIR)/fuzz_pattern.o \
		$(FUZZ_LIB_OBJS) -o $@ $(MB_LIB_LDLIBS) -ldl

# The parsers need nothing else of the library: config.c and limits.c only.
$(FUZZ_DIR)/fuzz_config: tests/fuzz/fuzz_config.c policy/config.c policy/limits.c alloc/fmt.c \
		$(MB_OS_LIMITS_SRCS) policy/config.h policy/limits.h alloc/fmt.h tests/fuzz.mk
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $< policy/config.c policy/limits.c alloc/fmt.c $(MB_OS_LIMITS_SRCS) -o $@

# The report tool's sources as membudget-report builds them, without its main.
FUZZ_REPORT_SRCS := alloc/fmt.c tools/textout.c tools/report.c tools/report_symbols.c tools/report_svg.c \
	tools/report_diff.c tools/report_html.c
FUZZ_REPORT_SRCS += tools/report_index.c

$(FUZZ_DIR)/fuzz_report: tests/fuzz/fuzz_report.c $(FUZZ_REPORT_SRCS) $(REPORT_HDRS) tests/fuzz.mk
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_REPORT_SRCS) -o $@ $(REPORT_LDLIBS)

# The reader as the command links it, with the symbolizer (libdw) when the
# command has it (tools/tools.mk).
FUZZ_LIVE_SRCS := tools/livestats.c tools/textout.c $(MB_OS_BASE_SRCS) $(filter tools/proc_%,$(MB_OS_TOOL_SRCS))
FUZZ_LIVE_FLAGS :=
FUZZ_LIVE_LIBS :=
ifneq ($(wildcard /usr/include/elfutils/libdwfl.h),)
ifneq ($(wildcard /usr/include/jansson.h),)
FUZZ_LIVE_SRCS += tools/report_symbols.c
FUZZ_LIVE_SRCS += tools/report_index.c
FUZZ_LIVE_FLAGS += -DMB_TOOL_SYMBOLS
FUZZ_LIVE_LIBS += -ldw -lelf -lstdc++
endif
endif
# textout writes hex with the text buffer's table (alloc/fmt.h).
FUZZ_LIVE_SRCS += alloc/fmt.c

$(FUZZ_DIR)/fuzz_livepage: tests/fuzz/fuzz_livepage.c $(FUZZ_LIVE_SRCS) tools/livestats.h \
		tools/textout.h policy/statspage.h policy/stats_list.h policy/utf8.h tests/fuzz.mk
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_LIVE_FLAGS) $< $(FUZZ_LIVE_SRCS) -o $@ $(FUZZ_LIVE_LIBS)

CHECKS += check-fuzz
.PHONY: check-fuzz fuzz-stress fuzz-build

fuzz-build: $(FUZZ_BINS)

check-fuzz: $(FUZZ_BINS)
	@mkdir -p $(RESULTS)
	@{ $(FUZZ_RUN) -t $(FUZZ_SECONDS) $(RESULTS)/fuzz-alloc.txt fuzz-alloc $(FUZZ_DIR)/fuzz_alloc \
		fuzz_alloc $(FUZZ_DIR)/fuzz_alloc.work >/dev/null; ra=$$?; \
	$(FUZZ_RUN) -t $(FUZZ_REPORT_SECONDS) $(RESULTS)/fuzz-report.txt fuzz-report $(FUZZ_DIR)/fuzz_report \
		fuzz_report $(FUZZ_DIR)/fuzz_report.work >/dev/null && exit $$ra; } & a=$$!; \
	{ $(FUZZ_RUN) -t $(FUZZ_SECONDS) $(RESULTS)/fuzz-config.txt fuzz-config $(FUZZ_DIR)/fuzz_config \
		fuzz_config $(FUZZ_DIR)/fuzz_config.work >/dev/null; rc=$$?; \
	$(FUZZ_RUN) -t $(FUZZ_SECONDS) $(RESULTS)/fuzz-livepage.txt fuzz-livepage \
		$(FUZZ_DIR)/fuzz_livepage fuzz_livepage $(FUZZ_DIR)/fuzz_livepage.work >/dev/null && \
		exit $$rc; } & c=$$!; \
	wait $$a; ra=$$?; wait $$c; rc=$$?; \
	cat $(RESULTS)/fuzz-alloc.txt $(RESULTS)/fuzz-config.txt $(RESULTS)/fuzz-report.txt \
		$(RESULTS)/fuzz-livepage.txt; \
	[ $$ra -eq 0 ] && [ $$rc -eq 0 ]

fuzz-stress: $(FUZZ_BINS)
	@mkdir -p $(RESULTS)
	@$(FUZZ_RUN) -t $(FUZZ_STRESS_SECONDS) -o $(FUZZ_STRESS_OPS) $(RESULTS)/fuzz-alloc-stress.txt \
		fuzz-alloc-stress $(FUZZ_DIR)/fuzz_alloc fuzz_alloc $(FUZZ_DIR)/fuzz_alloc.work >/dev/null & a=$$!; \
	$(FUZZ_RUN) -t $(FUZZ_STRESS_SECONDS) -o $(FUZZ_STRESS_OPS) $(RESULTS)/fuzz-config-stress.txt \
		fuzz-config-stress $(FUZZ_DIR)/fuzz_config fuzz_config $(FUZZ_DIR)/fuzz_config.work >/dev/null & c=$$!; \
	wait $$a; ra=$$?; wait $$c; rc=$$?; \
	cat $(RESULTS)/fuzz-alloc-stress.txt $(RESULTS)/fuzz-config-stress.txt; [ $$ra -eq 0 ] && [ $$rc -eq 0 ]
