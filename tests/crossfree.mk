# Cross-thread frees (tests/stress/crossfree.c):
#   check-crossfree        preloaded under the release library: a ring of
#                          threads freeing each other's blocks keeps its
#                          committed pages and peak RSS under a bound from the
#                          bytes in flight; threads exiting with live blocks
#                          that others free leave nothing behind after a
#                          release, wave after wave; forks while threads free
#                          each other's blocks
#   check-crossfree-debug  the same under the debug library (its internal
#                          checks; a shorter ring)
# CROSSFREE_PASSES and MBTEST_SCALE scale the counts.

CROSSFREE_BIN := $(BUILD_ROOT)/tests/stress/crossfree

CHECKS += check-crossfree check-crossfree-debug
.PHONY: check-crossfree check-crossfree-debug

check-crossfree: $(CROSSFREE_BIN) $(REL_LIB)
	@bash tests/run_suite.sh -t 600 -e LD_PRELOAD=$(abspath $(REL_LIB)) \
		$(RESULTS)/crossfree.txt crossfree $(CROSSFREE_BIN)

check-crossfree-debug: $(CROSSFREE_BIN) $(DEBUG_LIB)
	@bash tests/run_suite.sh -t 900 -e LD_PRELOAD=$(abspath $(DEBUG_LIB)) -e CROSSFREE_PASSES=100000 \
		$(RESULTS)/crossfree-debug.txt crossfree-debug $(CROSSFREE_BIN)
