#!/usr/bin/env python3
"""CPython's own test suite under the preload (DESIGN §7: the allocator must be
safe in programs nobody here wrote).

Every module of MODULES runs with `python -m test MODULE` and PYTHONMALLOC=malloc
(so that every object goes through malloc/free), first without the preload, then,
if it passed, with LD_PRELOAD=LIB.  A module that passes without the preload must
pass with it; one that fails, or that this Python's test package does not ship,
is reported as skipped with the reason.  One line per module, then
"N passed, N failed, N skipped".

Usage: run_cpython.py LIB [--python EXE] [--jobs N] [--timeout S] [--logs DIR]
                          [--modules "test_a test_b ..."]
The interpreter is, unless --python says otherwise, the first of `python3` and
/usr/bin/python3.11 (Debian's libpython3.11-testsuite) whose test package has
test_dict.  Two workers by default, so the suite fits two cores."""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# The modules the issue names (allocation-heavy: containers, strings, codecs,
# serialization, compression, the cycle collector, weak references, buffers),
# then more of the same kind.  test_sqlite3 is a package in 3.11.
MODULES = """
test_dict test_list test_set test_bytes test_unicode test_json test_pickle test_re
test_sqlite3 test_gc test_weakref test_array test_deque test_heapq test_bisect
test_itertools test_functools test_collections test_struct test_io test_memoryview
test_mmap test_zlib test_hashlib test_decimal test_fractions test_statistics
test_string test_format test_sort
test_tuple test_long test_float test_marshal test_copy test_csv test_ordered_dict
test_defaultdict test_bz2 test_lzma test_codecs test_base64 test_binascii
test_zipfile test_tarfile test_threading test_queue test_ctypes test_xml_etree
test_xml_etree_c test_email test_ast test_dataclasses test_random test_math
test_descr test_datetime test_tracemalloc test_bufio test_weakset test_userdict
test_userlist test_userstring test_textwrap test_difflib test_enum test_contextlib
""".split()

# "== Tests result: SUCCESS ==" (3.11.7) or "Tests result: SUCCESS" (older 3.11).
RESULT_RE = re.compile(r"^(?:== )?Tests result: ([A-Z][A-Z ,_]*[A-Z])", re.M)


def find_python(explicit):
    """The interpreter's real path (not a pyenv shim), or None."""
    candidates = [explicit] if explicit else ["python3", "/usr/bin/python3.11"]
    for exe in candidates:
        path = shutil.which(exe) if os.sep not in exe else exe
        if not path:
            continue
        try:
            out = subprocess.run(
                [path, "-c", "import sys, test.test_dict; print(sys.executable)"],
                capture_output=True, text=True, timeout=60, env=base_env(None))
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip():
            return os.path.realpath(out.stdout.strip())
    return None


def base_env(lib, tmp=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEMBUDGET_", "PYTHON")) and k != "LD_PRELOAD"}
    env["PYTHONMALLOC"] = "malloc"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if tmp:
        env["TMPDIR"] = tmp
    if lib:
        env["LD_PRELOAD"] = lib
        # MB_TEST_BACKEND=jemalloc: the preloaded runs use the jemalloc backend.
        env["MEMBUDGET_BACKEND"] = os.environ.get("MB_TEST_BACKEND", "native")
    return env


def shipped(python, module):
    """True when this Python's test package has the module."""
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('test.' + sys.argv[1]) is None)"
    return subprocess.run([python, "-c", code, module], env=base_env(None),
                          capture_output=True, timeout=60).returncode == 0


class Outcome:
    def __init__(self, ok, status, seconds, log):
        self.ok, self.status, self.seconds, self.log = ok, status, seconds, log


def run_module(python, module, lib, timeout, tmp_root):
    """Runs one module once; returns an Outcome."""
    work = tempfile.mkdtemp(prefix=module + ".", dir=tmp_root)
    cmd = [python, "-m", "test", "--fail-env-changed", "--timeout", str(timeout),
           "--tempdir", os.path.join(work, "regrtest"), module]
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, env=base_env(lib, work), cwd=work, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout + 60)
        log = p.stdout.decode(errors="replace")
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        log = (e.stdout or b"").decode(errors="replace")
        rc = None
    seconds = time.monotonic() - start
    shutil.rmtree(work, ignore_errors=True)
    m = RESULT_RE.findall(log)
    result = m[-1].strip() if m else None
    if rc is None:
        return Outcome(False, "hung (killed after %d s)" % (timeout + 60), seconds, log)
    if rc < 0:
        return Outcome(False, "killed by signal %d" % -rc, seconds, log)
    if rc == 0 and result == "SUCCESS":
        return Outcome(True, "SUCCESS", seconds, log)
    return Outcome(False, "exit status %d, %s" % (rc, result or "no result line"), seconds, log)


def why(log):
    """The lines of a failing log that say what failed, for the report."""
    keep = [l for l in log.splitlines()
            if l.startswith(("FAIL:", "ERROR:", "Fatal Python error", "membudget:"))
            or "Error:" in l or "Warning -- " in l]
    return keep[:8] or log.splitlines()[-8:]


def preflight(python, lib):
    """The preloaded interpreter really runs on the library: its symbols resolve
    and its counter has charged memory."""
    code = ("import ctypes\nlib = ctypes.CDLL(None)\nf = lib.membudget_footprint\n"
            "f.restype = ctypes.c_size_t\nx = [bytes(1000) for _ in range(10000)]\n"
            "print(f() > 10000000)\n")
    p = subprocess.run([python, "-c", code], env=base_env(lib), capture_output=True,
                       text=True, timeout=60)
    return p.returncode == 0 and p.stdout == "True\n", p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--python")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--modules")
    ap.add_argument("--logs")
    args = ap.parse_args()
    lib = os.path.realpath(args.lib)
    modules = args.modules.split() if args.modules else MODULES
    started = time.monotonic()

    python = find_python(args.python)
    if python is None:
        print("FAIL no Python with its test package (install libpython3.11-testsuite)")
        print("0 passed, 1 failed, 0 skipped")
        return 1
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    print("conformance: %s (Python %s), %d modules, PYTHONMALLOC=malloc, %d workers"
          % (python, version, len(modules), args.jobs), flush=True)

    passed = failed = skipped = 0
    ok, err = preflight(python, lib)
    if not ok:
        print("FAIL preflight: the preloaded interpreter does not run on %s" % lib)
        for l in err.splitlines()[:8]:
            print("    | " + l)
        print("0 passed, 1 failed, 0 skipped")
        return 1
    print("ok preflight: the preloaded interpreter's allocations are charged to the budget",
          flush=True)
    passed += 1

    tmp_root = tempfile.mkdtemp(prefix="mb-conformance.")
    if args.logs:
        os.makedirs(args.logs, exist_ok=True)
    present = [m for m in modules if shipped(python, m)]
    for m in modules:
        if m not in present:
            print("skip %s: this Python's test package does not ship it" % m, flush=True)
            skipped += 1

    # Without the preload first, then with it, each phase two modules at a time,
    # the longest first so the phase does not end on one slow module.
    slow_first = ["test_io", "test_statistics", "test_decimal", "test_pickle", "test_re",
                  "test_unicode", "test_tarfile", "test_zipfile", "test_threading"]
    present.sort(key=lambda m: (m not in slow_first, slow_first.index(m) if m in slow_first else 0))
    results = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {m: pool.submit(run_module, python, m, None, args.timeout, tmp_root) for m in present}
        base = {m: f.result() for m, f in futures.items()}
        futures = {m: pool.submit(run_module, python, m, lib, args.timeout, tmp_root)
                   for m in present if base[m].ok}
        for m, f in futures.items():
            results[m] = f.result()

    for m in sorted(present, key=modules.index):
        b = base[m]
        if not b.ok:
            skipped += 1
            print("skip %s: fails without the preload (%s)" % (m, b.status))
            for l in why(b.log):
                print("    | " + l)
            continue
        r = results[m]
        if r.ok:
            passed += 1
            print("ok %s (%.1f s without, %.1f s with the preload)" % (m, b.seconds, r.seconds))
        else:
            failed += 1
            print("FAIL %s: passes without the preload; with it: %s" % (m, r.status))
            for l in why(r.log):
                print("    | " + l)
            if args.logs:
                with open(os.path.join(args.logs, m + ".log"), "w") as f:
                    f.write(r.log)
    shutil.rmtree(tmp_root, ignore_errors=True)
    print("conformance: %.0f s" % (time.monotonic() - started))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
