# make bench-budget: the cost of a far-away MEMBUDGET_LIMIT against none, and the
# overshoot at death of a fast-growing process at 256M with 1, 2 and 8 threads
# (bench/budget_bench.py); writes bench/BUDGET.md, which `make bench` runs first and
# copies into bench/RESULTS.md; not a test.  Options through BENCH_BUDGET_ARGS:
#   make bench-budget BENCH_BUDGET_ARGS=--quick
#   make bench-budget BENCH_BUDGET_ARGS='--part reaction --reaction-runs 15'

BENCH_BUDGET_ARGS ?=

.PHONY: bench-budget

bench-budget: $(REL_LIB) bench-build $(BUILD_ROOT)/tests/budget/grow
	$(PYTHON) bench/budget_bench.py $(BENCH_BUDGET_ARGS)
