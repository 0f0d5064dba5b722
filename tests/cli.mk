# The membudget command (issue 6, DESIGN §9): tests/cli/run.py drives the
# command built by tools/tools.mk against the release library, with a small
# program to watch (tests/cli/live.c).  Golden outputs of `limits` live in
# tests/cli/golden (regenerate with `python3 tests/cli/run.py build --update`
# and review the diff).  Needs tmux for the top test, setpriv (util-linux) and
# root for the check that another user cannot read a stats page, pkg-config and
# groff for the install test.

CLI_DIR  := $(BUILD_ROOT)/tests/cli
CLI_LIVE := $(CLI_DIR)/live

CHECKS += check-cli
.PHONY: check-cli

$(CLI_LIVE): tests/cli/live.c tests/cli.mk
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror $< -o $@

check-cli: $(REL_LIB) $(DEBUG_LIB) tool $(CLI_LIVE)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/cli/run.py $(BUILD_ROOT) 2>&1 | tee $(RESULTS)/cli.txt'
