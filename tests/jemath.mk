# The jemalloc backend's log, exp and round (alloc/jemalloc_math.c) against
# libm over their domains, and the release library's DT_NEEDED without libm
# (tests/jemath/test_jemalloc_math.c); then a program on the jemalloc backend
# with heap profiling on (MALLOC_CONF=prof:true), which calls them.
CHECKS += check-jemath
.PHONY: check-jemath

JEMATH_BIN := $(BUILD_ROOT)/tests/jemath/test_jemalloc_math

$(JEMATH_BIN): tests/jemath/test_jemalloc_math.c alloc/jemalloc_math.c alloc/jemalloc_math.h \
		tests/harness.h tests/jemath.mk
	@mkdir -p $(dir $@)
	$(CC) $(UT_CFLAGS) -I. -O2 tests/jemath/test_jemalloc_math.c alloc/jemalloc_math.c -o $@ -lm

check-jemath: $(REL_LIB) $(JEMATH_BIN) $(BUILD_ROOT)/bench/tiny_classes
	@mkdir -p $(RESULTS)
	@bash tests/jemath/run.sh $(RESULTS)/jemath.txt $(JEMATH_BIN) $(REL_LIB) \
		$(BUILD_ROOT)/bench/tiny_classes $(if $(MB_LIB_JE),jemalloc,native)
