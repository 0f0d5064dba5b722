# How make check records results (tests/results/run.sh): a failing suite keeps
# its lines, a target that stops before its suite runs leaves a failing line
# that says why (scripts/check_target.sh, record_suite.sh, summary.sh).
CHECKS += check-results
.PHONY: check-results

check-results:
	@mkdir -p $(RESULTS)
	@bash -o pipefail -c 'bash tests/results/run.sh 2>&1 | tee $(RESULTS)/results.txt'
