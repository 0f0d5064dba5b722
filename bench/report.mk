# make bench-report: the CPU time of `membudget-report --html` on a dump of the
# Debian interpreter (python3.11) with its debug symbols when python3.11-dbg is
# installed, and whether other builds of the tool write the same outputs
# (bench/report_bench.py).  Not a test: it is not in CHECKS.  Options through
# BENCH_REPORT_ARGS, e.g.
#   make bench-report BENCH_REPORT_ARGS='--also before=/tmp/membudget-report-old --rounds 9'

BENCH_REPORT_ARGS ?=

.PHONY: bench-report

bench-report: $(REL_LIB) $(BUILD_ROOT)/membudget-report
	$(PYTHON) bench/report_bench.py $(BENCH_REPORT_ARGS)
