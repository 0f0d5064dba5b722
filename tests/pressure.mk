# Pressure from around the process (issue 16, policy/machine.h): the levels'
# arithmetic, the readers of PSI, meminfo and fake v1/v2 cgroup directories,
# and the thresholds recomputed when the cgroup's limit changes
# (tests/pressure/test_machine.c, linked with the sources it tests); then
# tests/pressure/run.py: an idle process under the release library driven by
# a PSI file and a meminfo file of the test's own (MEMBUDGET_PSI_FILE,
# MEMBUDGET_MEMINFO_FILE), switched off, and in a real v1 memory cgroup whose
# limit is lowered and raised while it runs (root; skipped with the reason
# when there is no v1 memory controller); the inline monitor's case runs on
# the debug library.

PRESSURE_DIR  := $(BUILD_ROOT)/tests/pressure
PRESSURE_UNIT := $(PRESSURE_DIR)/test_machine
PRESSURE_HOLD := $(PRESSURE_DIR)/hold
PRESSURE_SRCS := tests/pressure/test_machine.c policy/machine.c policy/machine_linux.c \
	policy/config.c policy/limits.c \
	alloc/fmt.c $(MB_OS_LIMITS_SRCS)
PRESSURE_DEPS := $(PRESSURE_SRCS) policy/machine.h policy/config.h policy/limits.h \
	policy/pressure.h alloc/os.h alloc/fmt.h tests/harness.h tests/pressure.mk

CHECKS += check-pressure
.PHONY: check-pressure

$(PRESSURE_UNIT): $(PRESSURE_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O1 $(EXTRA_CFLAGS) $(PRESSURE_SRCS) -o $@

$(PRESSURE_HOLD): tests/pressure/hold.c tests/pressure.mk
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror $< -o $@ -ldl

# run.py runs the unit program first and adds its counts to its own closing line.
check-pressure: $(PRESSURE_UNIT) $(PRESSURE_HOLD) $(REL_LIB) $(DEBUG_LIB) tool
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/pressure/run.py $(BUILD_ROOT) 2>&1 | \
		tee $(RESULTS)/pressure.txt'
