# make bench-group: six python3 workers, two of which grow, under 1 GiB: a
# membudget group (bands) against a real v1 memory cgroup (root) and no limit
# (bench/group_bench.py); writes bench/GROUP.md.  Not a test: not in CHECKS.

.PHONY: bench-group
bench-group: $(REL_LIB) tool
	$(PYTHON) bench/group_bench.py $(BUILD_ROOT)
