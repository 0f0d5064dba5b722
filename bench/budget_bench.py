#!/usr/bin/env python3
"""The cost and the reaction of the budget (issue 4's benchmark).

(a) Cost of a limit: the same build of libmembudget.so, preloaded, with
    MEMBUDGET_LIMIT far above what the workload uses (64G by default) against no
    MEMBUDGET_LIMIT at all, on the micro workloads that bench/bench.mk builds into
    build/bench/ and on tests/programs/workloads/python3.sh.  Rounds are
    interleaved: each round runs every (workload, configuration) pair once, in an
    order shuffled with a fixed seed.  Per workload: the median wall time of each
    configuration and their ratio; over the workloads: the geometric mean of the
    ratios.  Target: at most 1% (a ratio of 1.010).

(b) Reaction: a fast-growing C program (tests/budget/grow.c: every thread
    allocates blocks and writes them whole, never frees) at MEMBUDGET_LIMIT=256M,
    with 1, 2 and 8 threads, is stopped by the budget.  The overshoot at death is
    the OS view of the footprint (RssAnon + VmSwap) minus the limit, taken two
    ways: the peak of /proc/PID/status sampled by this script every ~0.5 ms, and
    the value the death report recorded (footprint.os) while the process was
    being stopped.  Negative means stopped below the limit.

Writes bench/BUDGET.md (--out) with the tables and the command that made them,
and prints the same text.  Needs build/libmembudget.so, the micro workloads and
build/bench/treerun (make bench-build), and build/tests/budget/grow; `make
bench-budget` builds them all first.  Exits 1 if a run failed or printed
something other than the reference output.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_BUILD = ROOT / "build" / "bench"
TREERUN = BENCH_BUILD / "treerun"
MICRO_DIR = ROOT / "bench" / "micro"
PYTHON_WORKLOAD = ROOT / "tests" / "programs" / "workloads" / "python3.sh"
LIB = ROOT / "build" / "libmembudget.so"
GROW = ROOT / "build" / "tests" / "budget" / "grow"
MIB = 1 << 20
KIB = 1 << 10
KILL_LINE = "exceeded its memory budget"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def base_env():
    """The environment of every run: ours without LD_PRELOAD or MEMBUDGET_*."""
    return {k: v for k, v in os.environ.items()
            if k != "LD_PRELOAD" and not k.startswith("MEMBUDGET_")}


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def sh(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    distro = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    swap = "no swap"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("SwapTotal:") and int(line.split()[1]) > 0:
                    swap = "swap %.1f GiB" % (int(line.split()[1]) / (1 << 20))
    except OSError:
        pass
    return "%d CPUs, %s, %.1f GiB RAM, %s; kernel %s; %s" % (
        os.cpu_count(), cpu, mem / (1 << 30), swap, platform.release(), distro)


# ---- (a) the cost of a limit -------------------------------------------------

class Workload:
    def __init__(self, name, argv):
        self.name = name
        self.argv_template = argv  # the string WORKDIR is replaced per run

    def argv(self, workdir):
        return [workdir if a == "WORKDIR" else a for a in self.argv_template]


def discover_workloads(only):
    workloads = []
    for src in sorted(MICRO_DIR.glob("*.c")):
        binary = BENCH_BUILD / src.stem
        if not binary.exists():
            sys.exit("budget_bench: %s is missing; run make bench-build" % binary)
        workloads.append(Workload("micro/" + src.stem, [str(binary)]))
    if PYTHON_WORKLOAD.exists():
        workloads.append(Workload("python3", ["bash", str(PYTHON_WORKLOAD), "WORKDIR"]))
    if only:
        pats = [p.strip() for p in only.split(",") if p.strip()]
        workloads = [w for w in workloads
                     if any(p == w.name or p == w.name.split("/")[-1] for p in pats)]
    return workloads


def run_timed(workload, preload, extra_env, tmp_root, timeout_s):
    """One run under treerun; returns (status, (wall s, CPU s), stdout, stderr)."""
    workdir = tempfile.mkdtemp(prefix="run-", dir=tmp_root)
    res_path = Path(tmp_root) / "result.json"
    if res_path.exists():
        res_path.unlink()
    env = base_env()
    env.update(extra_env)
    cmd = [str(TREERUN), "-o", str(res_path), "-t", str(timeout_s), "-p", str(preload), "--"]
    cmd += workload.argv(workdir)
    r = subprocess.run(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        m = json.loads(res_path.read_text())
    except (OSError, ValueError):
        return "NO-RESULT", None, r.stdout, r.stderr
    if m.get("timed_out"):
        status = "TIMEOUT"
    elif m.get("signal"):
        status = "CRASH(sig %d)" % m["signal"]
    elif m.get("exit") != 0:
        status = "FAIL(exit %d)" % m["exit"]
    elif b"membudget:" in r.stderr:
        status = "MESSAGE"  # the budget said something: the limit was not far enough
    else:
        status = "ok"
    return status, (m.get("wall_s"), m.get("user_s", 0) + m.get("sys_s", 0)), r.stdout, r.stderr


def bench_cost(args, preload, tmp_root):
    workloads = discover_workloads(args.only)
    configs = [("no limit", {}), ("MEMBUDGET_LIMIT=" + args.limit, {"MEMBUDGET_LIMIT": args.limit})]
    reference = {}
    problems = []
    log("cost: %d workloads x %d configurations x %d rounds" % (
        len(workloads), len(configs), args.rounds))
    # Unmeasured warm-up under the first configuration: caches, and the
    # reference output every measured run must reproduce.
    for w in workloads:
        status, _, out, err = run_timed(w, preload, {}, tmp_root, args.timeout)
        if status != "ok":
            problems.append("%s, warm-up: %s; stderr tail %r" % (
                w.name, status, err.decode(errors="replace")[-300:]))
        reference[w.name] = out
    per_round = {(w.name, c[0]): [] for w in workloads for c in configs}  # None for a bad run
    rng = random.Random(args.seed)
    for r in range(args.rounds):
        pairs = [(w, c) for w in workloads for c in configs]
        rng.shuffle(pairs)
        for w, (cname, cenv) in pairs:
            status, wall, out, err = run_timed(w, preload, cenv, tmp_root, args.timeout)
            if status == "ok" and out != reference[w.name]:
                status = "WRONG OUTPUT"
            if status == "ok":
                per_round[(w.name, cname)].append(wall)
            else:
                per_round[(w.name, cname)].append(None)
                problems.append("%s, %s, round %d: %s; stderr tail %r" % (
                    w.name, cname, r + 1, status, err.decode(errors="replace")[-300:]))
        log("cost: round %d/%d done" % (r + 1, args.rounds))
    rows = []
    for w in workloads:
        ra = per_round[(w.name, configs[0][0])]
        rb = per_round[(w.name, configs[1][0])]
        a = [x for x in ra if x is not None]
        b = [x for x in rb if x is not None]
        row = {"name": w.name, "runs": (len(a), len(b), args.rounds)}
        if a and b:
            for key, i in (("wall", 0), ("cpu", 1)):
                ma = statistics.median(x[i] for x in a)
                mb = statistics.median(x[i] for x in b)
                row[key] = (ma, mb, mb / ma)
            row["cv"] = max(statistics.pstdev([x[0] for x in a]) / row["wall"][0],
                            statistics.pstdev([x[0] for x in b]) / row["wall"][1])
            paired = [y[0] / x[0] for x, y in zip(ra, rb) if x is not None and y is not None]
            row["paired"] = (statistics.median(paired), min(paired), max(paired)) if paired else None
        rows.append(row)
    return configs, rows, problems


def render_cost(configs, rows, args):
    out = []
    out.append("## (a) Cost of a limit: %s against no limit\n" % configs[1][0])
    out.append("Medians over the rounds; ratio = with the limit / without. CPU = user + "
               "system time of the process tree. Per-round ratio: the two runs of the same "
               "round (adjacent in time) divided, then the median (min-max) over rounds. "
               "CV: the larger coefficient of variation of the two wall-time columns.\n")
    out.append("| workload | wall, no limit | wall, %s | wall ratio | per-round wall ratio "
               "(min-max) | CPU, no limit | CPU, limit | CPU ratio | CV | runs ok |" % configs[1][0])
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    walls, cpus, paireds = [], [], []
    for row in rows:
        ok_runs = "%d+%d/%d" % (row["runs"][0], row["runs"][1], 2 * row["runs"][2])
        if "wall" not in row:
            out.append("| %s | - | - | - | - | - | - | - | - | %s |" % (row["name"], ok_runs))
            continue
        walls.append(row["wall"][2])
        cpus.append(row["cpu"][2])
        if row["paired"]:
            paireds.append(row["paired"][0])
        paired = "%.3f (%.3f-%.3f)" % row["paired"] if row["paired"] else "-"
        out.append("| %s | %.3f s | %.3f s | %.3f | %s | %.3f s | %.3f s | %.3f | %.1f%% | %s |" % (
            row["name"], row["wall"][0], row["wall"][1], row["wall"][2], paired, row["cpu"][0],
            row["cpu"][1], row["cpu"][2], 100 * row["cv"], ok_runs))
    gw, gc, gp = geomean(walls), geomean(cpus), geomean(paireds)
    out.append("| **geomean** | | | **%.3f** | **%.3f** | | | **%.3f** | | |" % (gw, gp, gc))
    out.append("")
    out.append("Geomean cost of the limit: wall %+.1f%% (ratio of medians), %+.1f%% (per-round "
               "ratios), CPU %+.1f%%; target <= +1%%: %s." % (
                   100 * (gw - 1), 100 * (gp - 1), 100 * (gc - 1),
                   "met" if gw <= 1.01 else "not met on the ratio of wall-time medians"))
    load = os.getloadavg()[0]
    noisy = [r["name"] for r in rows if "cv" in r and r["cv"] > 0.05]
    if noisy:
        out.append("")
        out.append("Noise: %d of %d workloads varied by more than 5%% (CV) between rounds "
                   "(load average %.2f on %d CPUs at the end of this part); differences "
                   "smaller than that spread are not resolved by this run." % (
                       len(noisy), len(rows), load, os.cpu_count()))
    return "\n".join(out), gw


# ---- (b) reaction ------------------------------------------------------------

def os_fields(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    rss = swap = None
    for line in text.splitlines():
        if line.startswith("RssAnon:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmSwap:"):
            swap = int(line.split()[1]) * 1024
    return None if rss is None else rss + (swap or 0)


def reaction_run(preload, threads, block, limit, tmp_root):
    d = tempfile.mkdtemp(prefix="react-", dir=tmp_root)
    env = base_env()
    env.update({"LD_PRELOAD": str(preload), "MEMBUDGET_LIMIT": "%dM" % (limit // MIB),
                "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    err_path = os.path.join(d, "stderr")
    start = time.monotonic()
    with open(err_path, "wb") as err:
        p = subprocess.Popen([str(GROW), str(threads), str(block)], env=env,
                             stdout=subprocess.DEVNULL, stderr=err)
        peak = 0
        deadline = start + 60
        while p.poll() is None:
            v = os_fields(p.pid)
            if v is not None and v > peak:
                peak = v
            time.sleep(0.0005)
            if time.monotonic() > deadline:
                p.kill()
                p.wait()
                break
    elapsed = time.monotonic() - start
    with open(err_path, "rb") as f:
        stderr = f.read().decode(errors="replace")
    reports = [n for n in os.listdir(d) if n.startswith("r.")]
    lines = [l for l in stderr.splitlines() if KILL_LINE in l]
    result = {"rc": p.returncode, "peak": peak, "elapsed": elapsed}
    problem = None
    if p.returncode != -signal.SIGABRT or len(lines) != 1 or len(reports) != 1:
        problem = "status %s, %d lines, %d reports" % (p.returncode, len(lines), len(reports))
    else:
        try:
            with open(os.path.join(d, reports[0])) as f:
                dump = json.load(f)
            view = dump["footprint"]["os"]
            result["recorded"] = view["rss_anon_bytes"] + view["vm_swap_bytes"]
            result["footprint"] = dump["footprint"]["bytes"]
        except (OSError, ValueError, KeyError) as e:
            problem = "report unreadable: %s" % e
    shutil.rmtree(d, ignore_errors=True)
    return result, problem


def bench_reaction(args, preload, tmp_root):
    limit = 256 * MIB
    blocks = [int(b) for b in args.blocks.split(",")]
    rows, problems = [], []
    log("reaction: threads 1, 2, 8 x blocks %s x %d runs" % (args.blocks, args.reaction_runs))
    # Interleaved as well: run r of every case before run r + 1 of any.
    cases = [(t, b) for b in blocks for t in (1, 2, 8)]
    results = {c: [] for c in cases}
    for r in range(args.reaction_runs):
        for c in cases:
            res, problem = reaction_run(preload, c[0], c[1], limit, tmp_root)
            if problem:
                problems.append("reaction threads=%d block=%d, run %d: %s" % (c[0], c[1], r + 1,
                                                                                problem))
            else:
                results[c].append(res)
    for c in cases:
        rs = results[c]
        row = {"threads": c[0], "block": c[1], "runs": len(rs)}
        if rs:
            sampled = [x["peak"] - limit for x in rs]
            recorded = [x["recorded"] - limit for x in rs]
            row.update({
                "sampled_med": statistics.median(sampled), "sampled_max": max(sampled),
                "recorded_med": statistics.median(recorded), "recorded_max": max(recorded),
                "bound": 64 * KIB * c[0] + MIB,
                "rate": statistics.median(x["recorded"] / x["elapsed"] for x in rs),
            })
        rows.append(row)
    return rows, problems


def kib(v):
    return "%+.0f" % (v / KIB)


def render_reaction(rows, args):
    out = ["## (b) Reaction: a fast-growing process at MEMBUDGET_LIMIT=256M\n",
           "Overshoot = RssAnon + VmSwap at death − 256 MiB, in KiB (negative: stopped "
           "below the limit); median and maximum over %d runs per row. The issue's bound "
           "is 64 KiB × threads + 1 MiB." % args.reaction_runs, "",
           "| threads | block | sampled peak − limit, median | max | recorded in the report "
           "− limit, median | max | bound | growth rate | runs ok |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        block = "%d KiB" % (row["block"] // KIB) if row["block"] < MIB else "%d MiB" % (
            row["block"] // MIB)
        if not row["runs"]:
            out.append("| %d | %s | - | - | - | - | - | - | 0/%d |" % (
                row["threads"], block, args.reaction_runs))
            continue
        out.append("| %d | %s | %s | %s | %s | %s | +%d | %.0f MiB/s | %d/%d |" % (
            row["threads"], block, kib(row["sampled_med"]), kib(row["sampled_max"]),
            kib(row["recorded_med"]), kib(row["recorded_max"]), row["bound"] // KIB,
            row["rate"] / MIB, row["runs"], args.reaction_runs))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="rounds of the cost benchmark (7)")
    ap.add_argument("--limit", default="64G", help="the far-away limit (64G)")
    ap.add_argument("--only", help="cost workloads to run, e.g. python3,small_churn")
    ap.add_argument("--reaction-runs", type=int, default=7, help="runs per reaction row (7)")
    ap.add_argument("--blocks", default="65536,1048576",
                    help="block sizes of the growing program, bytes (65536,1048576)")
    ap.add_argument("--part", choices=["all", "cost", "reaction"], default="all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=300, help="per run, seconds")
    ap.add_argument("--quick", action="store_true", help="2 rounds, 3 reaction runs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "BUDGET.md"))
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.reaction_runs = 2, 3
    for needed in (LIB, TREERUN, GROW):
        if not needed.exists():
            sys.exit("budget_bench: %s is missing; run make bench-budget" % needed)

    tmp_root = tempfile.mkdtemp(prefix="mb-budget-bench.")
    # A copy, so that a rebuild during the run cannot change the library.
    preload = Path(tmp_root) / "libmembudget.so"
    shutil.copy2(LIB, preload)
    digest = hashlib.sha256(preload.read_bytes()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(LIB.stat().st_mtime, datetime.timezone.utc)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()[0]
    t0 = time.monotonic()
    problems = []
    sections = []
    geo = None
    try:
        if args.part in ("all", "cost"):
            configs, rows, p = bench_cost(args, preload, tmp_root)
            problems += p
            text, geo = render_cost(configs, rows, args)
            sections.append(text)
        if args.part in ("all", "reaction"):
            rows, p = bench_reaction(args, preload, tmp_root)
            problems += p
            sections.append(render_reaction(rows, args))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    minutes = (time.monotonic() - t0) / 60
    command = "python3 bench/budget_bench.py" + "".join(" " + shlex.quote(a) for a in sys.argv[1:])
    head = [
        "# Budget benchmark",
        "",
        "Command: `%s` (or `make bench-budget`)  " % command,
        "Date: %s (%.1f min)  " % (started.strftime("%Y-%m-%d %H:%M UTC"), minutes),
        "Machine: %s  " % machine_info(),
        "Library: build/libmembudget.so built %s, sha256 %s  " % (
            built.strftime("%Y-%m-%d %H:%M UTC"), digest),
        "Load average at start %.2f, at end %.2f" % (load_start, os.getloadavg()[0]),
        "",
        "Method: every run preloads the same copy of the library. (a) Wall time from "
        "build/bench/treerun (fork to exit of the workload's top process); %d rounds, "
        "interleaved, order shuffled with seed %d, after one unmeasured warm-up run per "
        "workload whose output every measured run must reproduce. Both configurations "
        "keep the budget counter and its threshold check on every page or span commit; "
        "they differ in where the thresholds are (no limit: the jetsam model's, from "
        "ramSize; with the limit: 0.8/0.9/1.0 x 64 GiB), so the ratio is the price of "
        "setting a limit that is never approached. (b) tests/budget/grow.c: each thread "
        "mallocs blocks of the given size and writes them whole; /proc/PID/status "
        "sampled every ~0.5 ms by the script; the report's `footprint.os` is read by the "
        "dying process itself. Growth rate: the recorded OS view at death over the time "
        "from start to death (process start-up included)." % (args.rounds, args.seed),
        "",
    ]
    text = "\n".join(head) + "\n" + "\n\n".join(sections) + "\n"
    if problems:
        text += "\n## Runs that failed\n\n" + "\n".join("- " + p for p in problems) + "\n"
    Path(args.out).write_text(text)
    print(text)
    log("budget_bench: wrote %s" % args.out)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
