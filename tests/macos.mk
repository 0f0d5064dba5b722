# The macOS port, built and link-checked here without a Mac (issue 15):
#   make check-macos MACOS_SDK=DIR
# DIR is a macOS SDK's root (usr/, System/), e.g. the root/ folder of
# github.com/hexops-graveyard/sdk-macos-12.0, kept outside this repository.
# scripts/check_macos.sh builds the library for x86_64- and arm64-apple-macos11
# with Debian's clang (-isysroot, -Werror) and ld64.lld, checks each with
# scripts/check_macos.py (llvm-objdump, llvm-nm and the SDK's .tbd stubs), and
# makes a universal file with llvm-lipo; it compiles the command and the report
# tool with -Werror, and links and checks them when MACOS_JANSSON=DIR names a
# jansson source tree (the SDK has none).  Without MACOS_SDK the check is skipped
# with one line saying how to run it (make check stays green); with it, clang,
# lld, llvm and python3-yaml are installed first (scripts/deps.sh macos).

MACOS_SDK ?=
# The LLVM tools of Debian's clang, unversioned: /usr/lib/llvm-N/bin.
MACOS_LLVM_BIN ?= $(patsubst %/,%,$(dir $(realpath $(shell command -v $(CLANG) 2>/dev/null))))

CHECKS += check-macos
.PHONY: check-macos

ifeq ($(MACOS_SDK),)
check-macos:
	@mkdir -p $(RESULTS)
	@echo "skip macos: MACOS_SDK is not set; make check-macos MACOS_SDK=DIR builds and link-checks the macOS library against the SDK root DIR (e.g. the root/ folder of github.com/hexops-graveyard/sdk-macos-12.0)"
	@echo "0 passed, 0 failed, 1 skipped" >$(RESULTS)/macos.txt
else
check-macos: macos-deps $(REL_LIB)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c 'bash scripts/check_macos.sh "$(abspath $(MACOS_SDK))" \
		"$(MACOS_LLVM_BIN)" $(REL_LIB) $(BUILD_ROOT) "$(MACOS_JANSSON)" 2>&1 | tee $(RESULTS)/macos.txt'

.PHONY: macos-deps
macos-deps:
	@bash scripts/deps.sh --install macos
endif
