# Large blocks grown by realloc (issue 19): tests/realloc/realloc.c, preloaded
# under the release and the debug library: a block that must move to grow goes
# into a cached span's resident pages (few minor faults), and every byte
# survives growing and shrinking (the debug build checks its counter).

REALLOC_DIR  := $(BUILD_ROOT)/tests/realloc
REALLOC_PROG := $(REALLOC_DIR)/realloc
REALLOC_ENV  := MEMBUDGET_LIMIT=1G MEMBUDGET_CONSERVATIVE=128M MEMBUDGET_STRICT=900M

CHECKS += check-realloc
.PHONY: check-realloc

$(REALLOC_PROG): tests/realloc/realloc.c tests/realloc.mk
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror $< -o $@

check-realloc: $(REALLOC_PROG) $(REL_LIB) $(DEBUG_LIB)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c 'fails=0 passes=0; for lib in $(abspath $(REL_LIB)) $(abspath $(DEBUG_LIB)); do \
		for c in warm content; do \
			if env $(REALLOC_ENV) LD_PRELOAD=$$lib $(REALLOC_PROG) $$c; then \
			echo "ok $$c under $$lib"; passes=$$((passes + 1)); \
			else echo "FAIL $$c under $$lib"; fails=$$((fails + 1)); fi; \
		done; done; echo "realloc: $$passes passed, $$fails failed"; test $$fails -eq 0' 2>&1 \
		| tee $(RESULTS)/realloc.txt
