# Conformance (tests/conformance/): suites nobody here wrote, run on the allocator.
#   check-conformance        CPython's own test suite (python3 -m test) on 60+
#                            allocation-heavy modules with PYTHONMALLOC=malloc,
#                            without and with LD_PRELOAD=$(REL_LIB): a module that
#                            passes without must pass with it; one that fails
#                            without (or is not shipped) is reported as skipped.
#                            Python: `python3` if it has its test package, else
#                            Debian's python3.11 with libpython3.11-testsuite.
#                            $(RESULTS)/conformance.txt
#   check-conformance-jemalloc  the same with MEMBUDGET_BACKEND=jemalloc
#                            $(RESULTS)/conformance-jemalloc.txt
#   check-conformance-edges  reproducers of allocator bugs the fuzzers found
#                            (tests/conformance/edges.c), preloaded under the
#                            release and the debug library
#   check-valgrind           memcheck on the unit and threaded tests in linked mode
#                            (no preload), and on the CLI and the report tool when
#                            they are built
# CONFORMANCE_PYTHON, CONFORMANCE_MODULES ("test_a test_b") and CONFORMANCE_JOBS
# override the interpreter, the modules and the number of workers.

CONF_DIR     := $(BUILD_ROOT)/tests/conformance
STRESS_DIR   := $(BUILD_ROOT)/tests/stress
CONF_JOBS    ?= 2
CONF_ARGS     = --jobs $(CONF_JOBS) --logs $(RESULTS)/conformance-logs \
	$(if $(CONFORMANCE_PYTHON),--python $(CONFORMANCE_PYTHON)) \
	$(if $(CONFORMANCE_MODULES),--modules "$(CONFORMANCE_MODULES)")
CONF_NOBUILTIN := $(addprefix -fno-builtin-,malloc calloc realloc free aligned_alloc \
	posix_memalign memalign valloc pvalloc reallocarray malloc_usable_size)
CONF_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -Iinclude -Itests -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes $(CONF_NOBUILTIN) -pthread

CHECKS += check-conformance check-conformance-jemalloc check-conformance-edges check-valgrind
.PHONY: check-conformance check-conformance-jemalloc check-conformance-edges check-valgrind

check-conformance: $(REL_LIB)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/conformance/run_cpython.py $(REL_LIB) $(CONF_ARGS) 2>&1 | \
		tee $(RESULTS)/conformance.txt'

check-conformance-jemalloc: $(REL_LIB)
	$(call with_jemalloc,conformance-jemalloc,$(PYTHON) tests/conformance/run_cpython.py $(REL_LIB) \
		--jobs $(CONF_JOBS) --logs $(RESULTS)/conformance-jemalloc-logs \
		$(if $(CONFORMANCE_PYTHON),--python $(CONFORMANCE_PYTHON)) \
		$(if $(CONFORMANCE_MODULES),--modules "$(CONFORMANCE_MODULES)"))

$(CONF_DIR)/edges: tests/conformance/edges.c tests/harness.h tests/mbtest.h tests/testutil.h \
		include/membudget.h tests/conformance.mk
	@mkdir -p $(dir $@)
	$(CC) $(CONF_CFLAGS) -O2 $< -o $@ -ldl

# Reports of the deaths the reproducers cause go to $(CONF_DIR)/reports.
check-conformance-edges: $(CONF_DIR)/edges $(REL_LIB) $(DEBUG_LIB)
	@rm -rf $(CONF_DIR)/reports && mkdir -p $(CONF_DIR)/reports; status=0; \
	bash tests/run_suite.sh -t 120 -e LD_PRELOAD=$(abspath $(REL_LIB)) -e TMPDIR=$(abspath $(CONF_DIR)/reports) \
		$(RESULTS)/conformance-edges.txt conformance-edges $(CONF_DIR)/edges || status=1; \
	bash tests/run_suite.sh -t 120 -e LD_PRELOAD=$(abspath $(DEBUG_LIB)) -e TMPDIR=$(abspath $(CONF_DIR)/reports) \
		$(RESULTS)/conformance-edges-debug.txt conformance-edges-debug $(CONF_DIR)/edges || status=1; \
	exit $$status

# ---- valgrind -------------------------------------------------------------------
# Linked mode without sanitizers (valgrind brings its own): the library's sources
# built once more with -DMB_NO_EXPORTS, so malloc stays glibc's and memcheck
# watches the allocator's code rather than replacing it.
VG_DIR       := $(CONF_DIR)/valgrind
VG_TESTS     := test_api test_threads test_thread_exit test_fork
VG_LIB_OBJS  := $(MB_LIB_SRCS:%.c=$(VG_DIR)/lib/%.o)
VG_BINS      := $(addprefix $(VG_DIR)/,$(VG_TESTS))
VG_CLI       := $(if $(wildcard tools/membudget.c),$(BUILD_ROOT)/membudget)
VG_REPORT    := $(if $(wildcard tools/report_main.c),$(BUILD_ROOT)/membudget-report)

$(VG_DIR)/lib/%.o: %.c $(MB_LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Wno-error -Wno-unused-function -O1 -DMBTEST_LINKED -DMB_NO_EXPORTS -c $< -o $@

$(VG_DIR)/test_api: tests/unit/test_api.c $(VG_LIB_OBJS) tests/harness.h tests/mbtest.h tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CONF_CFLAGS) -O1 -DMBTEST_LINKED -DMB_NO_EXPORTS $< $(VG_LIB_OBJS) -o $@ $(MB_LIB_LDLIBS) -ldl

$(addprefix $(VG_DIR)/,test_threads test_thread_exit test_fork): $(VG_DIR)/%: tests/threads/%.c \
		$(VG_LIB_OBJS) tests/harness.h tests/mbtest.h tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CONF_CFLAGS) -O1 -DMBTEST_LINKED -DMB_NO_EXPORTS $< $(VG_LIB_OBJS) -o $@ $(MB_LIB_LDLIBS) -ldl

check-valgrind: $(VG_BINS) $(REL_LIB) $(STRESS_DIR)/load $(VG_CLI) $(VG_REPORT)
	@bash tests/conformance/run_valgrind.sh $(RESULTS)/valgrind.txt tests/conformance/valgrind.supp \
		$(abspath $(REL_LIB)) $(STRESS_DIR)/load "$(VG_CLI)" "$(VG_REPORT)" $(VG_BINS)
