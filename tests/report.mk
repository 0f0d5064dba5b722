# The death report (issue 5, DESIGN §6): sampled allocation sites, the footprint
# timeline and the modules in the dump, and the report tool.  tests/report/run.py
# compares the tool's output on the checked-in dumps of tests/report/golden/ byte
# for byte, checks the estimates against programs whose leaks are known (C and
# python3), the dump's completeness while allocator locks are held (the debug
# library's hook), sample retirement on realloc and free, and the SVG in headless
# Chromium.  REPORT_REGOLD=1 rewrites the expected golden outputs.

REPORT_TEST_DIR   := $(BUILD_ROOT)/tests/report
REPORT_TEST_PROGS := $(REPORT_TEST_DIR)/leak3 $(REPORT_TEST_DIR)/hold $(REPORT_TEST_DIR)/resample \
	$(REPORT_TEST_DIR)/grow $(REPORT_TEST_DIR)/cxxnames $(REPORT_TEST_DIR)/twosyms \
	$(REPORT_TEST_DIR)/inline3
# Each leaking function a frame of its own, with line information.
REPORT_TEST_CFLAGS := -std=c11 -O1 -g -fno-omit-frame-pointer -fno-inline \
	-Wall -Wextra -Werror -pthread

CHECKS += check-report check-report-jemalloc
.PHONY: check-report check-report-jemalloc

$(REPORT_TEST_DIR)/%: tests/report/%.c tests/report.mk
	@mkdir -p $(dir $@)
	$(CC) $(REPORT_TEST_CFLAGS) $< -o $@ -ldl

# C++ names: a template member, an inlined helper (optimized, so that it is
# inlined) and a stack deeper than the writer keeps.
$(REPORT_TEST_DIR)/cxxnames: tests/report/cxxnames.cc tests/report.mk
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror $< -o $@ -ldl

# Calls inlined in one another: optimized, each of the three forced inline.
$(REPORT_TEST_DIR)/inline3: tests/report/inline3.c tests/report.mk
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -fno-omit-frame-pointer -Wall -Wextra -Werror $< -o $@ -ldl

check-report: $(REL_LIB) $(DEBUG_LIB) $(BUILD_ROOT)/membudget-report $(REPORT_TEST_PROGS)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/report/run.py $(REL_LIB) $(DEBUG_LIB) \
		$(BUILD_ROOT)/membudget-report $(REPORT_TEST_DIR) 2>&1 | tee $(RESULTS)/report.txt'

# The ground truth (and every other preloaded case) on the jemalloc backend.
check-report-jemalloc: $(REL_LIB) $(DEBUG_LIB) $(BUILD_ROOT)/membudget-report $(REPORT_TEST_PROGS)
	$(call with_jemalloc,report-jemalloc,$(PYTHON) tests/report/run.py $(REL_LIB) $(DEBUG_LIB) \
		$(BUILD_ROOT)/membudget-report $(REPORT_TEST_DIR))
