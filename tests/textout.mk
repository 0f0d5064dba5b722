# The escapers of tools/textout.c (terminal, XML, JSON), with ASan and UBSan.
TEXTOUT_TEST := $(BUILD_ROOT)/tests/tools/test_textout

CHECKS += check-textout
.PHONY: check-textout

$(TEXTOUT_TEST): tests/tools/test_textout.c tools/textout.c tools/textout.h policy/utf8.h alloc/fmt.c \
		alloc/fmt.h tests/textout.mk
	@mkdir -p $(dir $@)
	$(CLANG) -std=c11 -D_GNU_SOURCE -g -O1 -I. $(WARN) -fsanitize=address,undefined \
		-fno-sanitize-recover=all tests/tools/test_textout.c tools/textout.c alloc/fmt.c -o $@

check-textout: $(TEXTOUT_TEST)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c '$(TEXTOUT_TEST) 2>&1 | tee $(RESULTS)/textout.txt'
