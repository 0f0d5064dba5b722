# The budget seen from outside (issue 4, DESIGN §3-§6, §8): growing programs
# stopped at 32M/64M/256M with one line and one valid report (C with 1 and 8
# threads, python3 with 1 and 8), and in a real 1000 MiB memory cgroup with no
# limit set (root only; reported as skipped elsewhere), anonymous mmap, fail
# mode in C, C++ and python3, warn mode, pressure callbacks and the
# inactive-limit notice, bad configuration and report path safety.
# tests/budget/run.py drives the preloaded release library and the small
# programs built here.

BUDGET_DIR   := $(BUILD_ROOT)/tests/budget
BUDGET_PROGS := $(BUDGET_DIR)/grow $(BUDGET_DIR)/fail $(BUDGET_DIR)/fail_cxx \
	$(BUDGET_DIR)/callbacks
BUDGET_CXX   ?= g++

CHECKS += check-budget check-budget-jemalloc
.PHONY: check-budget check-budget-jemalloc

$(BUDGET_DIR)/%: tests/budget/%.c include/membudget.h tests/budget.mk
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Iinclude -pthread $< -o $@

# C++: `new` and std::bad_alloc through Debian's g++ and libstdc++.
$(BUDGET_DIR)/fail_cxx: tests/budget/fail_cxx.cc tests/budget.mk
	@mkdir -p $(dir $@)
	$(BUDGET_CXX) -std=c++17 -O1 -g -Wall -Wextra -Werror $< -o $@

# callbacks.c calls the public API: it links against the library it runs under.
$(BUDGET_DIR)/callbacks: tests/budget/callbacks.c include/membudget.h tests/budget.mk $(REL_LIB)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Iinclude $< -o $@ \
		-L$(BUILD_ROOT) -lmembudget -Wl,-rpath,$(abspath $(BUILD_ROOT))

check-budget: $(REL_LIB) $(BUDGET_PROGS)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/budget/run.py $(REL_LIB) $(BUDGET_DIR) 2>&1 | tee $(RESULTS)/budget.txt'

# The same cases on the jemalloc backend (issue: the jemalloc backend).
check-budget-jemalloc: $(REL_LIB) $(BUDGET_PROGS)
	$(call with_jemalloc,budget-jemalloc,$(PYTHON) tests/budget/run.py $(REL_LIB) $(BUDGET_DIR))
