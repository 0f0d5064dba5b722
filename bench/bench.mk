# make bench: the budget's and the sampler's benchmarks first (bench-budget,
# bench-sample), then glibc, jemalloc, mimalloc, tcmalloc and membudget compared on
# the micro workloads (bench/micro/*.c) and the real-program workloads
# (tests/programs/workloads/*.sh); writes bench/RESULTS.md with all three.  Not a
# test: it is not in CHECKS.  Options go through BENCH_ARGS, e.g.
#   make bench BENCH_ARGS=--quick
#   make bench BENCH_ARGS='--only python3,micro/* --alloc glibc,mimalloc,membudget'

BENCH_BUILD  := $(BUILD_ROOT)/bench
BENCH_CFLAGS := -O2 -pthread -Wall -Wextra
BENCH_MICRO  := $(patsubst bench/micro/%.c,$(BENCH_BUILD)/%,$(wildcard bench/micro/*.c))
BENCH_ARGS   ?=

.PHONY: bench bench-run bench-build

bench:
	@bash scripts/deps.sh --install bench
	@$(MAKE) --no-print-directory MB_DEPS_DONE=1 DEBUG= bench-run

bench-run: $(REL_LIB) bench-build bench-budget bench-sample
	$(PYTHON) bench/run.py $(BENCH_ARGS)

bench-build: $(BENCH_MICRO) $(BENCH_BUILD)/treerun

$(BENCH_BUILD)/%: bench/micro/%.c $(wildcard bench/micro/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

$(BENCH_BUILD)/treerun: bench/treerun.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $<
