# Control of a running process from outside (issue 16, DESIGN §11):
# tests/control/run.py drives `membudget state`, `pages`, `release` and `dump`
# against tests/control/target (a program that registers a pressure callback,
# takes memory early and then waits without allocating), and checks the live
# figures of such an idle process in `stat` and `top`, MEMBUDGET_CONTROL=off,
# forged and stale pages, a commander that gets no answer, a lock left by a
# commander that died, another user's command (root only) and a fork child's
# own control thread.  check-control-jemalloc runs the same on the jemalloc
# backend.

CONTROL_DIR    := $(BUILD_ROOT)/tests/control
CONTROL_TARGET := $(CONTROL_DIR)/target

CHECKS += check-control check-control-jemalloc
.PHONY: check-control check-control-jemalloc

# target calls the public API: it links against the library it runs under.
$(CONTROL_TARGET): tests/control/target.c include/membudget.h tests/control.mk $(REL_LIB)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Iinclude $< -o $@ \
		-L$(BUILD_ROOT) -lmembudget -Wl,-rpath,$(abspath $(BUILD_ROOT))

check-control: $(REL_LIB) tool $(CONTROL_TARGET)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/control/run.py $(BUILD_ROOT) 2>&1 | tee $(RESULTS)/control.txt'

check-control-jemalloc: $(REL_LIB) tool $(CONTROL_TARGET)
	$(call with_jemalloc,control-jemalloc,$(PYTHON) tests/control/run.py $(BUILD_ROOT))
