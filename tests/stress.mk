# Stress (tests/stress/):
#   check-churn, check-churn-debug  10,000 forks from a 4-thread allocating
#                      process, thread create/exit churn with remote frees and
#                      realloc ping-pong across threads (churn.c), preloaded under
#                      the release and the debug library: no fault, no deadlock,
#                      bounded counter and RSS
#   check-deaths       100 runs of an 8-thread growing workload (load.c) at limits
#                      drawn from 16M..512M with actions drawn from abort, fail,
#                      warn (seed DEATHS_SEED): one line and one valid report per
#                      death or crossing, nothing else (deaths.py)
#   make stress        not part of check: fuzz-stress (tests/fuzz.mk), the soak
#                      (soak.c at SOAK_FRACTION of SOAK_LIMIT for SOAK_SECONDS, RSS
#                      slope reported) and the churn at STRESS_SCALE times its size
#   make soak SOAK_SECONDS=60   a short soak alone

STRESS_DIR    := $(BUILD_ROOT)/tests/stress
STRESS_BINS   := $(STRESS_DIR)/churn $(STRESS_DIR)/load $(STRESS_DIR)/soak
STRESS_NOBUILTIN := $(addprefix -fno-builtin-,malloc calloc realloc free aligned_alloc \
	posix_memalign memalign valloc pvalloc reallocarray malloc_usable_size)
STRESS_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O2 -Iinclude -Itests -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes $(STRESS_NOBUILTIN) -pthread
DEATHS_RUNS   ?= 100
DEATHS_SEED   ?= 20260
SOAK_SECONDS  ?= 600
SOAK_LIMIT    ?= 256M
SOAK_FRACTION ?= 0.8
STRESS_SCALE  ?= 3

$(STRESS_DIR)/%: tests/stress/%.c tests/harness.h tests/mbtest.h tests/testutil.h \
		include/membudget.h tests/stress.mk
	@mkdir -p $(dir $@)
	$(CC) $(STRESS_CFLAGS) $< -o $@ -ldl

CHECKS += check-churn check-churn-debug check-deaths
.PHONY: check-churn check-churn-debug check-deaths stress soak stress-churn

check-churn: $(STRESS_DIR)/churn $(REL_LIB)
	@bash tests/run_suite.sh -t 600 -e LD_PRELOAD=$(abspath $(REL_LIB)) \
		$(RESULTS)/churn.txt churn $(STRESS_DIR)/churn

check-churn-debug: $(STRESS_DIR)/churn $(DEBUG_LIB)
	@bash tests/run_suite.sh -t 600 -e LD_PRELOAD=$(abspath $(DEBUG_LIB)) \
		$(RESULTS)/churn-debug.txt churn-debug $(STRESS_DIR)/churn

check-deaths: $(STRESS_DIR)/load $(REL_LIB)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/stress/deaths.py $(REL_LIB) $(STRESS_DIR)/load \
		--runs $(DEATHS_RUNS) --seed $(DEATHS_SEED) 2>&1 | tee $(RESULTS)/deaths.txt'

soak: $(STRESS_DIR)/soak $(REL_LIB)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/stress/soak.py $(REL_LIB) $(STRESS_DIR)/soak \
		--seconds $(SOAK_SECONDS) --limit $(SOAK_LIMIT) --fraction $(SOAK_FRACTION) 2>&1 | \
		tee $(RESULTS)/soak.txt'

stress-churn: $(STRESS_DIR)/churn $(REL_LIB) $(DEBUG_LIB)
	@status=0; \
	bash tests/run_suite.sh -t 3600 -e LD_PRELOAD=$(abspath $(REL_LIB)) -e MBTEST_SCALE=$(STRESS_SCALE) \
		$(RESULTS)/churn-stress.txt churn-stress $(STRESS_DIR)/churn || status=1; \
	bash tests/run_suite.sh -t 3600 -e LD_PRELOAD=$(abspath $(DEBUG_LIB)) -e MBTEST_SCALE=$(STRESS_SCALE) \
		$(RESULTS)/churn-stress-debug.txt churn-stress-debug $(STRESS_DIR)/churn || status=1; \
	exit $$status

# Each part runs even when one before it failed; the summary counts them all.
stress: lib debug
	@mkdir -p $(RESULTS)
	@status=0; for t in fuzz-stress soak stress-churn; do \
		$(MAKE) --no-print-directory $$t || status=1; \
	done; bash scripts/summary.sh $(RESULTS); exit $$status
