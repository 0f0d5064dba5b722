#!/usr/bin/env python3
"""Budget deaths under load (DESIGN §5, §6): RUNS runs of an 8-thread growing
workload (tests/stress/load.c) under the preload, each at a limit drawn between
16M and 512M and an action drawn from abort, fail and warn, from one seed, so a
failing run can be replayed alone (--only N).

  abort  the process dies of SIGABRT with exactly one "exceeded its memory
         budget" line on stderr, naming the one report in the report
         directory, which python3 -m json.tool accepts (reason "kill", the limit
         as set);
  fail   the process ends normally (its allocations failed with ENOMEM and it
         went on), with one line and one report (reason "fail");
  warn   the process ends normally after growing past the limit 1 + CYCLES
         times, with one line and one report (reason "warn") per crossing (a
         growth past the limit that starts under 90% of it, which re-arms the
         warning; the workload counts them).
No run may hang (TIMEOUT) or end any other way.  One result line per run, then
"N passed, N failed".

Usage: deaths.py LIB LOAD [--runs N] [--seed S] [--only N] [--timeout S]"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
KILL_LINE = "exceeded its memory budget"


def run_one(lib, load, n, limit_mib, action, cycles, seed, timeout, tmp):
    d = os.path.join(tmp, "run%03d" % n)
    os.mkdir(d)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMBUDGET_") and k != "LD_PRELOAD"}
    env.update({"LD_PRELOAD": lib, "MEMBUDGET_BACKEND": os.environ.get("MB_TEST_BACKEND", "native"),
                "MEMBUDGET_LIMIT": "%dM" % limit_mib,
                "MEMBUDGET_ACTION": action, "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json"),
                "MEMBUDGET_INTERVAL": "20ms"})
    if action == "warn":
        # A crossing is re-armed by a monitor tick that sees the footprint under
        # 90% of the limit.  The workload is idle while it is down there, and an
        # inline tick runs only on the allocator's slow paths: the monitor
        # thread watches the idle process, so every dip is seen.
        env["MEMBUDGET_MONITOR"] = "thread"
    limit = limit_mib * MIB
    # Grow well past the limit (live data; the footprint is higher still); come
    # back down to 40% of it between crossings.
    high, low = limit * 5 // 4, limit * 2 // 5
    cmd = [load, "8", str(high), str(low), str(cycles if action == "warn" else 0), str(seed)]
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        rc, out, err = p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace")
    seconds = time.monotonic() - start
    what = "run %d: %s at %dM (seed %d%s)" % (n, action, limit_mib, seed,
                                              ", %d cycles" % cycles if action == "warn" else "")
    problems = check(action, limit, cycles, rc, out, err, d, timeout)
    shutil.rmtree(d, ignore_errors=True)
    return what, seconds, problems, err


def check(action, limit, cycles, rc, out, err, d, timeout):
    if rc is None:
        return ["hung: killed after %d s" % timeout]
    lines = [l for l in err.splitlines() if KILL_LINE in l]
    reports = sorted(os.listdir(d))
    problems = []
    if action == "abort":
        if rc != -signal.SIGABRT:
            problems.append("exit status %s, expected SIGABRT" % rc)
        expected = 1
        reason = "kill"
    else:
        if rc != 0:
            problems.append("exit status %s, expected 0" % rc)
        elif not out.startswith("load: done") or "errors=0" not in out:
            problems.append("no clean closing line: %r" % out.strip())
        if action == "fail":
            m = re.search(r"nulls=(\d+)", out)
            nulls = int(m.group(1)) if m else 0
            if rc == 0 and nulls == 0:
                problems.append("no allocation failed, yet the workload went past the limit")
            expected = 1
            reason = "fail"
        else:
            m = re.search(r"cycles=(\d+) crossings=(-?\d+)", out)
            if rc == 0 and (not m or int(m.group(1)) != cycles):
                problems.append("the workload ran %s cycles of %d" % (m and m.group(1), cycles))
            # The first growth, and each growth that started under 90% of the
            # limit, as the workload saw it.
            expected = int(m.group(2)) if m else cycles + 1
            if expected < 1:
                problems.append("the workload could not count its crossings")
            reason = "warn"
    if len(lines) != expected:
        problems.append("%d budget lines, expected %d" % (len(lines), expected))
    if len(reports) != expected:
        problems.append("%d reports, expected %d: %s" % (len(reports), expected, reports))
    named = set()
    for l in lines:
        m = re.search(r"report: (\S+)$", l)
        if not m or not os.path.isfile(m.group(1)):
            problems.append("a line names no report: " + l)
        else:
            named.add(os.path.basename(m.group(1)))
    if named and named != set(reports):
        problems.append("the lines name %s, the directory holds %s" % (sorted(named), reports))
    for r in reports:
        path = os.path.join(d, r)
        v = subprocess.run([sys.executable, "-m", "json.tool", path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        if v.returncode != 0:
            problems.append("%s is not valid JSON: %s" % (r, v.stderr.decode(errors="replace").strip()))
            continue
        with open(path) as f:
            dump = json.load(f)
        if dump.get("reason") != reason:
            problems.append("%s: reason %r, expected %r" % (r, dump.get("reason"), reason))
        if dump.get("limit", {}).get("kill_bytes") != limit:
            problems.append("%s: limit %r, expected %d" % (r, dump.get("limit", {}).get("kill_bytes"), limit))
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("load")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20260)
    ap.add_argument("--only", type=int)
    ap.add_argument("--timeout", type=int, default=90)
    args = ap.parse_args()
    lib, load = os.path.realpath(args.lib), os.path.realpath(args.load)
    rng = random.Random(args.seed)
    plan = []
    for n in range(args.runs):
        limit_mib = rng.randint(16, 512)
        action = rng.choice(["abort", "fail", "warn"])
        cycles = rng.randint(1, 3)
        plan.append((n, limit_mib, action, cycles, rng.randrange(1 << 30)))
    if args.only is not None:
        plan = [p for p in plan if p[0] == args.only]
    tmp = tempfile.mkdtemp(prefix="mb-deaths.")
    passed = failed = 0
    started = time.monotonic()
    counts = {"abort": 0, "fail": 0, "warn": 0}
    for n, limit_mib, action, cycles, seed in plan:
        what, seconds, problems, err = run_one(lib, load, n, limit_mib, action, cycles, seed,
                                               args.timeout, tmp)
        counts[action] += 1
        if problems:
            failed += 1
            print("FAIL %s: %s" % (what, "; ".join(problems)), flush=True)
            for l in err.splitlines()[:6]:
                print("    | " + l)
            print("    replay: %s %s %s --seed %d --only %d" % (sys.argv[0], args.lib, args.load, args.seed, n))
        else:
            passed += 1
            print("ok %s, %.1f s" % (what, seconds), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    print("deaths: %d abort, %d fail, %d warn runs in %.0f s (seed %d)"
          % (counts["abort"], counts["fail"], counts["warn"], time.monotonic() - started, args.seed))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
