"""What the Python test drivers (tests/*/run.py) share: the result lines every
suite prints ("ok NAME", "skip NAME: why", "FAIL NAME: why" followed by an
indented excerpt, and "N passed, N failed[, N skipped]" last, which
scripts/summary.sh adds up) and the environment of the programs they run.

MB_TEST_BACKEND=jemalloc makes every preloaded run use the jemalloc backend
(make check runs some suites a second time that way)."""
import os

BACKEND = os.environ.get("MB_TEST_BACKEND", "native")


class Results:
    def __init__(self, excerpt_lines=12):
        self.passed = self.failed = self.skipped = 0
        self.excerpt_lines = excerpt_lines

    def ok(self, name):
        self.passed += 1
        print("ok " + name, flush=True)

    def skip(self, name, why):
        self.skipped += 1
        print("skip %s: %s" % (name, why), flush=True)

    def fail(self, name, why, detail=""):
        """Returns None, so that a check can `return fail(...)`."""
        self.failed += 1
        print("FAIL %s: %s" % (name, why), flush=True)
        for line in str(detail).splitlines()[:self.excerpt_lines]:
            print("    | " + line)

    def check(self, name, cond, why, detail=""):
        """ok(name) when cond holds, else fail(name, why, detail); returns cond."""
        if cond:
            self.ok(name)
        else:
            self.fail(name, why, detail)
        return cond

    def summary(self):
        line = "%d passed, %d failed" % (self.passed, self.failed)
        if self.skipped:
            line += ", %d skipped" % self.skipped
        return line


def environment(extra=None, preload=None):
    """os.environ without MEMBUDGET_*, LD_PRELOAD and MALLOC_CONF, then `preload` preloaded
    on the backend MB_TEST_BACKEND names, then `extra` (which wins)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMBUDGET_")}
    env.pop("LD_PRELOAD", None)
    # jemalloc's own settings change what the jemalloc backend does (its
    # arenas, caches and decay): a case that needs one sets it itself.
    env.pop("MALLOC_CONF", None)
    if preload:
        env["LD_PRELOAD"] = preload
        env["MEMBUDGET_BACKEND"] = BACKEND
    env.update(extra or {})
    return env


def run_cases(results, cases, only=(), children=(), cleanup=None, on_error=None):
    """Runs the cases (those named in `only`, or all); one that raises counts
    as one failure and the others still run (after on_error, when given).
    Then kills the child processes still running, calls cleanup, prints the
    summary line and returns the exit status."""
    try:
        for case in cases:
            if only and case.__name__ not in only:
                continue
            try:
                case()
            except Exception as e:  # one broken case must not hide the others
                results.fail(case.__name__, "%s: %s" % (type(e).__name__, e))
                if on_error is not None:
                    on_error()
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
        if cleanup is not None:
            cleanup()
    print(results.summary())
    return 1 if results.failed else 0
