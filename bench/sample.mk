# make bench-sample: what allocation sampling costs (off, 512K, 64K on the micro
# workloads and the python3 workload) and how long a report with 10,000 distinct
# sites takes to write; writes bench/SAMPLING.md (bench/sample_bench.py).  Not a
# test: it is not in CHECKS.  Options through BENCH_SAMPLE_ARGS, e.g.
#   make bench-sample BENCH_SAMPLE_ARGS='--rounds 3 --only small_churn,python3'

SAMPLE_BENCH_DIR   := $(BUILD_ROOT)/bench
SAMPLE_BENCH_MICRO := $(patsubst bench/micro/%.c,$(SAMPLE_BENCH_DIR)/%,$(wildcard bench/micro/*.c))
BENCH_SAMPLE_ARGS  ?=

.PHONY: bench-sample

bench-sample: $(REL_LIB) $(SAMPLE_BENCH_MICRO) $(SAMPLE_BENCH_DIR)/treerun $(SAMPLE_BENCH_DIR)/dump_sites
	$(PYTHON) bench/sample_bench.py $(BENCH_SAMPLE_ARGS)

$(SAMPLE_BENCH_DIR)/dump_sites: bench/dump_sites.c bench/sample.mk
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -o $@ $< -ldl
