# The large-span cache against the budget (issue 19): tests/largecache/largecache.c,
# preloaded under the release and the debug library with a Conservative threshold
# of 128M: the cache stays within the room under it and never raises the policy,
# the large figures stay exact, a freed span is reused without faulting its pages
# back in, a policy rise and membudget_release empty it at once, and a forked child
# reuses and releases its copy.

LARGECACHE_DIR  := $(BUILD_ROOT)/tests/largecache
LARGECACHE_PROG := $(LARGECACHE_DIR)/largecache
LARGECACHE_ENV  := MEMBUDGET_LIMIT=1G MEMBUDGET_CONSERVATIVE=128M MEMBUDGET_STRICT=900M

CHECKS += check-largecache
.PHONY: check-largecache

$(LARGECACHE_PROG): tests/largecache/largecache.c include/membudget.h tests/largecache.mk
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Iinclude $< -o $@ -ldl

check-largecache: $(LARGECACHE_PROG) $(REL_LIB) $(DEBUG_LIB)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c 'fails=0 passes=0; for lib in $(abspath $(REL_LIB)) $(abspath $(DEBUG_LIB)); do \
		for c in headroom rise release fork; do \
			if env $(LARGECACHE_ENV) LD_PRELOAD=$$lib $(LARGECACHE_PROG) $$c; then \
			echo "ok $$c under $$lib"; passes=$$((passes + 1)); \
			else echo "FAIL $$c under $$lib"; fails=$$((fails + 1)); fi; \
		done; done; echo "largecache: $$passes passed, $$fails failed"; test $$fails -eq 0' 2>&1 \
		| tee $(RESULTS)/largecache.txt
