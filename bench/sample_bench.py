#!/usr/bin/env python3
"""The cost of allocation sampling (DESIGN §6) and of writing a big report.

1. Every micro workload (build/bench/*, from bench/micro/*.c) and the python3
   workload (tests/programs/workloads/python3.sh) runs under build/libmembudget.so
   with sampling off (MEMBUDGET_SAMPLE=0), at 512K (the default) and at 64K.
   Rounds are interleaved: round r runs every (workload, setting) pair once, in an
   order shuffled with a fixed seed.  Each run goes through build/bench/treerun
   (wall time of the process tree) and must print the same output as the first
   run of its workload with sampling off.  Cells are medians over the rounds
   (and, second table, the fastest run: other load on the machine only ever
   adds time); ratios are against sampling off; geomeans cover every workload.
2. With perf (when it is installed), one profiled run per workload and setting:
   the share of CPU time spent in the sampler (the library's sampling
   functions and libunwind), which other load on the machine does not distort.
3. build/bench/dump_sites makes 10,000 distinct allocation sites (every
   allocation sampled) and times membudget_dump() writing the report.

Writes bench/SAMPLING.md (--out) and prints it; exits 1 when a run fails or
prints something else than its reference.

    make bench-sample                               # 7 rounds
    make bench-sample BENCH_SAMPLE_ARGS='--rounds 3 --only small_churn,python3'
"""

import argparse
import datetime
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
TREERUN = BUILD / "treerun"
DUMP_SITES = BUILD / "dump_sites"
LIB = ROOT / "build" / "libmembudget.so"
MICRO = ["small_churn", "prodcons", "larson", "realloc_grow", "large_churn"]
PROGRAM = ROOT / "tests" / "programs" / "workloads" / "python3.sh"
SETTINGS = [("off", "0"), ("512K", "512K"), ("64K", "64K")]
TARGET_RATIO_512K = 1.02
TARGET_DUMP_MS = 50.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def workloads(only):
    items = [(name, [str(BUILD / name)]) for name in MICRO]
    items.append(("python3", ["bash", str(PROGRAM)]))
    if only:
        wanted = set(only.split(","))
        items = [w for w in items if w[0] in wanted]
    return items


def run_once(argv, preload, sample, tmp_root):
    """One run under treerun: (wall seconds, stdout, status text)."""
    workdir = tempfile.mkdtemp(prefix="run-", dir=tmp_root)
    res = Path(tmp_root) / "result.json"
    if res.exists():
        res.unlink()
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("MEMBUDGET_")}
    env["MEMBUDGET_SAMPLE"] = sample
    cmd = [str(TREERUN), "-o", str(res), "-t", "600", "-p", str(preload), "--"] + argv
    if argv[0] == "bash":
        cmd.append(workdir)
    p = subprocess.run(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        m = json.loads(res.read_text())
    except (OSError, ValueError):
        return None, p.stdout, "no result (treerun exit %d)" % p.returncode
    if m.get("timed_out"):
        return None, p.stdout, "TIMEOUT"
    if m.get("signal") or m.get("exit"):
        return None, p.stdout, "exit %s signal %s: %s" % (m.get("exit"), m.get("signal"),
                                                          p.stderr.decode(errors="replace")[-300:])
    return m["wall_s"], p.stdout, "ok"


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


NOTES = """\
Reading the figures: on this 2-CPU machine the wall times of a workload vary by 5-10%
from run to run when other work runs beside it (see the load average); the perf table
is the sampler's own cost. An allocation of `s` bytes is sampled with probability
`1 - exp(-s/R)`, so allocations much larger than the rate are nearly always sampled:
`realloc_grow` reallocates buffers of 256 KiB to 6 MiB on every append, and `realloc`
counts the block's whole new size (a block resized in place and sampled again replaces
its own sample, which keeps the estimate unbiased), so most of its reallocations take a
sample. Small-object workloads pay for the samples they take and nothing on the
`free` of unsampled blocks, except one load of a 64 KiB filter for blocks on a page
that holds a live sample."""


SAMPLER_SYMBOLS = ("sample_", "site_", "live_", "filter_", "mb_sample", "alloc_mark_sampled",
                   "alloc_sampled_free", "large_mark_sampled", "meta_retire", "hash_frames",
                   "next_interval", "one_minus_exp", "exp_neg", "series_neg", "rng_next")


def sampler_share(argv, preload, sample, tmp_root):
    """Percent of the CPU samples of one run spent in the sampler, or None."""
    perf = shutil.which("perf")
    if perf is None:
        return None
    workdir = tempfile.mkdtemp(prefix="prof-", dir=tmp_root)
    data = Path(tmp_root) / "perf.data"
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("MEMBUDGET_")}
    env.update({"MEMBUDGET_SAMPLE": sample})
    cmd = [perf, "record", "-q", "-e", "cpu-clock", "-o", str(data), "--", "env",
           "LD_PRELOAD=" + str(preload)] + argv + ([workdir] if argv[0] == "bash" else [])
    p = subprocess.run(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(workdir, ignore_errors=True)
    if p.returncode != 0:
        return None
    rep = subprocess.run([perf, "report", "-i", str(data), "--no-children", "--sort", "dso,symbol",
                          "--stdio"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    share = 0.0
    for line in rep.stdout.decode(errors="replace").splitlines():
        f = line.split()
        if len(f) < 4 or not f[0].endswith("%"):
            continue
        dso, sym = f[1], f[3]
        if "libunwind" in dso or ("libmembudget" in dso and sym.startswith(SAMPLER_SYMBOLS)):
            share += float(f[0][:-1])
    return share


def dump_timing(preload, tmp_root, repeat):
    d = tempfile.mkdtemp(prefix="dump-", dir=tmp_root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMBUDGET_")}
    env.update({"LD_PRELOAD": str(preload), "MEMBUDGET_SAMPLE": "1"})
    times, size, sites = [], 0, 0
    for _ in range(3):  # separate processes: cold and warm caches both count
        p = subprocess.run([str(DUMP_SITES), d, "10000", str(repeat)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError("dump_sites failed: " + p.stderr.decode(errors="replace"))
        for line in p.stdout.decode().splitlines():
            f = line.split()
            times.append(float(f[5]))
            size = int(f[3])
        last = Path(d) / ("dump-%d.json" % (repeat - 1))
        sites = len(json.loads(last.read_text())["sites"])
    shutil.rmtree(d, ignore_errors=True)
    return times, size, sites


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--out", default=str(ROOT / "bench" / "SAMPLING.md"))
    args = ap.parse_args()

    for needed in (TREERUN, DUMP_SITES, LIB):
        if not needed.exists():
            sys.exit("bench-sample: %s is missing (make bench-sample builds it)" % needed)
    load_start = os.getloadavg()[0]
    tmp_root = tempfile.mkdtemp(prefix="mb-sample-bench.")
    preload = Path(tmp_root) / "libmembudget.so"
    shutil.copy2(LIB, preload)  # a rebuild during the run cannot change it

    items = workloads(args.only)
    reference = {}
    failures = []
    log("reference runs (sampling off, unmeasured)")
    for name, argv in items:
        wall, out, status = run_once(argv, preload, "0", tmp_root)
        if wall is None:
            failures.append("%s reference: %s" % (name, status))
        reference[name] = out

    times = {(name, s): [] for name, _ in items for s, _ in SETTINGS}
    rng = random.Random(args.seed)
    for r in range(args.rounds):
        order = [(name, argv, s, value) for name, argv in items for s, value in SETTINGS]
        rng.shuffle(order)
        for name, argv, s, value in order:
            wall, out, status = run_once(argv, preload, value, tmp_root)
            if wall is None or out != reference[name]:
                why = status if wall is None else "output differs from the reference"
                failures.append("%s at %s, round %d: %s" % (name, s, r + 1, why))
                continue
            times[(name, s)].append(wall)
            log("round %d/%d  %-13s %-5s %8.3f s" % (r + 1, args.rounds, name, s, wall))

    profile = {}
    for name, argv in items:
        for s, value in SETTINGS[1:]:
            profile[(name, s)] = sampler_share(argv, preload, value, tmp_root)
            log("profile %-13s %-5s %s" % (name, s, profile[(name, s)]))
    dump_ms, dump_bytes, dump_sites = dump_timing(preload, tmp_root, 5)
    shutil.rmtree(tmp_root, ignore_errors=True)

    lines = []
    lines.append("# Allocation sampling: cost and report size")
    lines.append("")
    lines.append("Written by `bench/sample_bench.py` (`make bench-sample`) on %s; %s, %d CPUs, "
                 "%d rounds." % (datetime.date.today().isoformat(), platform.machine(),
                                 os.cpu_count() or 0, args.rounds))
    lines.append("")
    lines.append("    make bench-sample                 # or: python3 bench/sample_bench.py --rounds %d" % args.rounds)
    lines.append("")
    lines.append("Load average (1 min) at the start and end of the run: %.2f and %.2f; "
                 "other work on the machine only ever adds time, so compare the fastest "
                 "runs too." % (load_start, os.getloadavg()[0]))
    lines.append("")
    lines.append("Every workload runs under `build/libmembudget.so` with sampling off "
                 "(`MEMBUDGET_SAMPLE=0`), at the default 512 KiB and at 64 KiB, in interleaved "
                 "rounds shuffled with a fixed seed; wall time from `build/bench/treerun`, median "
                 "over the rounds; the ratio is against sampling off, and every run printed the "
                 "same output as the reference run.")
    lines.append("")
    geo = {}
    for title, pick in (("median", statistics.median), ("fastest run", min)):
        lines.append("## Sampling cost (wall time, %s)" % title)
        lines.append("")
        lines.append("| workload | off | 512K | 64K |")
        lines.append("|---|---:|---:|---:|")
        ratios = {"512K": [], "64K": []}
        for name, _ in items:
            base = times[(name, "off")]
            if not base:
                lines.append("| %s | FAIL | | |" % name)
                continue
            b = pick(base)
            cells = ["%.3f s" % b]
            for s in ("512K", "64K"):
                t = times[(name, s)]
                if not t:
                    cells.append("FAIL")
                    continue
                m = pick(t)
                ratios[s].append(m / b)
                cells.append("%.3f s (%.3f)" % (m, m / b))
            lines.append("| %s | %s |" % (name, " | ".join(cells)))
        geo[title] = (geomean(ratios["512K"]), geomean(ratios["64K"]))
        lines.append("| **geomean** | 1 | **%.3f** | **%.3f** |" % geo[title])
        lines.append("")
    g512 = geo["median"][0]
    lines.append("Target: at most 2%% at 512K (geomean of the median ratios <= %.2f): %s "
                 "(fastest runs: %.3f)." % (TARGET_RATIO_512K, "met" if g512 <= TARGET_RATIO_512K
                                           else "NOT met", geo["fastest run"][0]))
    lines.append("")
    if all(v is not None for v in profile.values()):
        lines.append("## CPU time in the sampler (perf, one run each)")
        lines.append("")
        lines.append("Share of the run's CPU samples (`perf record -e cpu-clock`) in the library's "
                     "sampling functions and in libunwind: the cost of sampling itself, whatever "
                     "else the machine was doing.")
        lines.append("")
        lines.append("| workload | 512K | 64K |")
        lines.append("|---|---:|---:|")
        for name, _ in items:
            lines.append("| %s | %.2f%% | %.2f%% |" % (name, profile[(name, "512K")],
                                                     profile[(name, "64K")]))
        lines.append("")
    lines.append("## Notes")
    lines.append("")
    lines.append(NOTES)
    lines.append("")
    lines.append("## Writing a report with 10,000 distinct sites")
    lines.append("")
    lines.append("`build/bench/dump_sites` allocates through 10,000 distinct call paths with every "
                 "allocation sampled (`MEMBUDGET_SAMPLE=1`), then times `membudget_dump()`, 5 times "
                 "in each of 3 processes.")
    lines.append("")
    lines.append("| sites in the report | report size | median | min | max |")
    lines.append("|---:|---:|---:|---:|---:|")
    lines.append("| %d | %.1f MiB | %.1f ms | %.1f ms | %.1f ms |" % (
        dump_sites, dump_bytes / 1048576.0, statistics.median(dump_ms), min(dump_ms), max(dump_ms)))
    lines.append("")
    lines.append("Target: at most %.0f ms: %s." % (TARGET_DUMP_MS,
                 "met" if statistics.median(dump_ms) <= TARGET_DUMP_MS else "NOT met"))
    if failures:
        lines.append("")
        lines.append("## Failures")
        lines.append("")
        for f in failures:
            lines.append("- " + f)
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
