# One budget for a group of processes, with priority bands (issue 17, DESIGN
# §11): tests/group/run.py starts python3 and sleep members of groups
# (MEMBUDGET_GROUP, policy/group.h) and checks joining, the group file's
# safety, the limit outliving its creator, the victim at the group's limit
# (lowest band, then largest) and its report's group section, a SIGKILLed
# member leaving the sum, the full slot table, and (as root) two users'
# groups of the same name; `membudget group`, `top --group`, `limits
# --group` and `run --group-limit`.

CHECKS += check-group
.PHONY: check-group

check-group: $(REL_LIB) $(REPORT_TOOL) tool
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/group/run.py $(BUILD_ROOT) 2>&1 | tee $(RESULTS)/group.txt'
