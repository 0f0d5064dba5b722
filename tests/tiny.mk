# The fixed cost of a small program (issue 19): tests/tiny/tiny_cost.c, run
# preloaded with the release library, checks that libm is not mapped, that
# libunwind's code is not run before the first sample and that the budget's
# counter stays near what ~100 small blocks touch.  The resident sizes
# themselves are make bench's (micro/tiny, micro/tiny_classes).
CHECKS += check-tiny
.PHONY: check-tiny

TINY_BIN := $(BUILD_ROOT)/tests/tiny/tiny_cost

$(TINY_BIN): tests/tiny/tiny_cost.c tests/harness.h include/membudget.h tests/tiny.mk
	@mkdir -p $(dir $@)
	$(CC) $(UT_CFLAGS) -O1 $< -o $@

check-tiny: $(TINY_BIN) $(REL_LIB)
	@$(UT_RUN) -e LD_PRELOAD=$(abspath $(REL_LIB)) -e MEMBUDGET_SAMPLE=1T \
		$(RESULTS)/tiny.txt tiny $(TINY_BIN)
