# The live-statistics pages against another user (DESIGN §11): tests/livepage/run.py
# runs `membudget stat` and `top` as root on pages that `nobody` places, owns,
# truncates or fills with terminal controls, and the library against a per-user
# directory that is not its own, in a private mount namespace with its own
# /dev/shm.  Needs root, unshare and setpriv (util-linux); skips otherwise.

CHECKS += check-livepage
.PHONY: check-livepage

check-livepage: $(REL_LIB) tool $(CLI_LIVE)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/livepage/run.py $(BUILD_ROOT) 2>&1 | tee $(RESULTS)/livepage.txt'
