# Real programs under the preload (tests/programs/run.sh): python3, sqlite3, gcc, perl,
# git, java and node run with and without LD_PRELOAD=$(REL_LIB) and must print the same
# bytes; the library's exit summary and an empty [heap] prove it served the allocations.
CHECKS += check-programs check-programs-jemalloc

.PHONY: check-programs check-programs-jemalloc
check-programs: $(REL_LIB)
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c 'bash tests/programs/run.sh $(REL_LIB) 2>&1 | tee $(RESULTS)/programs.txt'

check-programs-jemalloc: $(REL_LIB)
	$(call with_jemalloc,programs-jemalloc,bash tests/programs/run.sh $(REL_LIB))
