# Limits and configuration (policy/limits.c, policy/config.c, DESIGN §4 and §10),
# and the footprint counter's charge rules (policy/budget.c).
# The test links the two sources directly, so it needs neither the library nor a
# preload.  check-limits runs it as built with the library's flags;
# check-limits-san runs the same source under AddressSanitizer and UBSan, which
# watch the parsers' arithmetic and the fixed buffers.

LIMITS_CC    ?= gcc
LIMITS_DIR   := $(BUILD_ROOT)/tests
LIMITS_TEST  := $(LIMITS_DIR)/test_limits
LIMITS_SAN   := $(LIMITS_DIR)/test_limits-san
LIMITS_SRCS  := tests/unit/test_limits.c policy/config.c policy/limits.c policy/budget.c \
	$(MB_OS_LIMITS_SRCS)
LIMITS_DEPS  := $(LIMITS_SRCS) policy/config.h policy/group.h policy/limits.h policy/budget.h alloc/os.h \
	tests/harness.h tests/limits.mk
LIMITS_SAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
# The text buffer the sources write with (alloc/fmt.h).
LIMITS_SRCS  += alloc/fmt.c
LIMITS_DEPS  += alloc/fmt.c alloc/fmt.h

CHECKS += check-limits check-limits-san
.PHONY: check-limits check-limits-san

$(LIMITS_TEST): $(LIMITS_DEPS)
	@mkdir -p $(dir $@)
	$(LIMITS_CC) $(BASE_CFLAGS) -O2 $(EXTRA_CFLAGS) $(LIMITS_SRCS) -o $@

$(LIMITS_SAN): $(LIMITS_DEPS)
	@mkdir -p $(dir $@)
	$(LIMITS_CC) $(BASE_CFLAGS) $(LIMITS_SAN_FLAGS) $(LIMITS_SRCS) -o $@

# /bin/sh has no pipefail: the test's status travels through a file so that tee
# cannot hide a failure or a crash.
# $(call limits_run,binary,results name)
define limits_run
	@mkdir -p $(RESULTS) $(LIMITS_DIR)
	@{ $(1) 2>&1; echo $$? > $(LIMITS_DIR)/$(2).status; } | tee $(RESULTS)/$(2).txt; \
	status=$$(cat $(LIMITS_DIR)/$(2).status 2>/dev/null || echo 1); \
	rm -f $(LIMITS_DIR)/$(2).status; \
	if [ "$$status" != 0 ]; then echo "$(2): exit status $$status" >&2; fi; \
	[ "$$status" = 0 ]
endef

check-limits: $(LIMITS_TEST)
	$(call limits_run,$(LIMITS_TEST),limits)

check-limits-san: $(LIMITS_SAN)
	$(call limits_run,$(LIMITS_SAN),limits-san)
