# What a fresh machine sees (tests/deps/run.sh): every target the README names
# stops before compiling, with one line naming the missing Debian packages.
CHECKS += check-deps
.PHONY: check-deps

check-deps:
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c 'bash tests/deps/run.sh 2>&1 | tee $(RESULTS)/deps.txt'
