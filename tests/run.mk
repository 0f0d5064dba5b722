# `membudget run` as the command's parent (issue 16, DESIGN §11 "The parent's
# side"): tests/run/run.py drives the command built by tools/tools.mk and the
# release library with a small growing program (tests/run/grow.c): the exit
# status and reason line of a budget death (active and inactive limits), of a
# signal and of a plain exit; the events file, parsed line by line; restart
# counts for on-budget, always and never, and the window that stops them;
# SIGTERM and SIGINT sent to run; bad option values.  check-run-jemalloc runs
# the same cases on the jemalloc backend.

RUNTEST_DIR  := $(BUILD_ROOT)/tests/run
RUNTEST_GROW := $(RUNTEST_DIR)/grow

CHECKS += check-run check-run-jemalloc
.PHONY: check-run check-run-jemalloc

$(RUNTEST_GROW): tests/run/grow.c tests/run.mk
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror $< -o $@

check-run: $(REL_LIB) tool report-tool $(RUNTEST_GROW)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/run/run.py $(BUILD_ROOT) 2>&1 | tee $(RESULTS)/run.txt'

check-run-jemalloc: $(REL_LIB) tool report-tool $(RUNTEST_GROW)
	$(call with_jemalloc,run-jemalloc,$(PYTHON) tests/run/run.py $(BUILD_ROOT))
