# The live-statistics pages against another user (DESIGN §11): tests/livepage/run.py
# runs `membudget stat` and `top` as root on pages that `nobody` places, owns,
# truncates or fills with terminal controls, and the library against a per-user
# directory that is not its own, in a private mount namespace with its own
# /dev/shm; and the names `stat` and `top` give a C++ program's top site
# (demangled).  Needs root, unshare and setpriv (util-linux); skips otherwise.

CHECKS += check-livepage
.PHONY: check-livepage

# A C++ process whose largest allocation site is a member of a class template
# in a namespace: stat and top name it demangled (case cxx_names).
LIVEPAGE_CXXSITE := $(BUILD_ROOT)/tests/livepage/cxxsite

$(LIVEPAGE_CXXSITE): tests/livepage/cxxsite.cc tests/livepage.mk
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror $< -o $@

check-livepage: $(REL_LIB) tool $(CLI_LIVE) $(LIVEPAGE_CXXSITE)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(PYTHON) tests/livepage/run.py $(BUILD_ROOT) 2>&1 | tee $(RESULTS)/livepage.txt'
