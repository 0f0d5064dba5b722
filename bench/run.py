#!/usr/bin/env python3
"""Compare allocators side by side: every workload under every allocator.

Workloads are the micro benchmarks in bench/micro/*.c (built into build/bench/) and
every real-program workload tests/programs/workloads/NAME.sh (run as NAME.sh WORKDIR
in a fresh empty directory).  Allocators are glibc (no preload) and each preloadable
allocator whose shared object exists.

Rounds are interleaved: round r runs every workload under every allocator, in an
order shuffled with a fixed seed, so slow drift of the machine spreads evenly.  Each
run goes through build/bench/treerun, which measures wall time and the peak RSS of
the whole process tree (see bench/treerun.c).  Before the rounds, every workload runs
once under glibc, unmeasured: that warms caches and gives the reference output that
every measured run must reproduce byte for byte.

Writes the Markdown report to bench/RESULTS.md (--out) and prints it; the raw runs
go to build/bench/results.json.
"""

import argparse
import datetime
import fnmatch
import hashlib
import json
import math
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
TREERUN = BUILD / "treerun"
MICRO_DIR = ROOT / "bench" / "micro"
PROGRAMS_DIR = ROOT / "tests" / "programs" / "workloads"

LIBDIR = Path("/usr/lib") / (platform.machine() + "-linux-gnu")
# (name, shared object to preload or None, Debian package that ships it)
ALLOCATORS = [
    ("glibc", None, "libc6"),
    ("jemalloc", LIBDIR / "libjemalloc.so.2", "libjemalloc2"),
    ("mimalloc", LIBDIR / "libmimalloc.so.2", "libmimalloc2.0"),
    ("tcmalloc", LIBDIR / "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    ("membudget", ROOT / "build" / "libmembudget.so", None),
    ("membudget+jemalloc", ROOT / "build" / "libmembudget.so", None),
    ("membudget+jemalloc-unsampled", ROOT / "build" / "libmembudget.so", None),
]
# Environment an allocator runs with: the jemalloc backend of our library, and
# the same without sampling (only when asked for by name: --alloc).
ALLOC_ENV = {"membudget+jemalloc": {"MEMBUDGET_BACKEND": "jemalloc"},
             "membudget+jemalloc-unsampled": {"MEMBUDGET_BACKEND": "jemalloc",
                                              "MEMBUDGET_SAMPLE": "0"}}
ON_REQUEST = {"membudget+jemalloc-unsampled"}
PROGRAM_VERSIONS = [
    ("python3", ["python3", "--version"]),
    ("sqlite3", ["sqlite3", "--version"]),
    ("gcc", ["gcc", "--version"]),
    ("perl", ["perl", "-e", "print $^V"]),
    ("git", ["git", "--version"]),
    ("java", ["java", "-version"]),
    ("node", ["node", "--version"]),
]

MEASUREMENT_NOTE = (
    "Wall time: from fork to the exit of the workload's top process. Peak RSS: the "
    "largest ru_maxrss of any single process in the workload's process tree, as "
    "reported by wait4 (each reaped process reports the maximum of its own peak and "
    "of the descendants it reaped); the runner is a child subreaper, so orphaned "
    "descendants are reaped and counted too. It is the peak of the biggest process "
    "(the one doing the work), not a sum over processes. The allocator is preloaded "
    "into every process of the tree (shells and helpers included); glibc means no "
    "preload. Each cell is the median over the rounds; the ratio in parentheses is "
    "against {baseline}. A run whose stdout differs from the glibc reference run is "
    "WRONG and has no speed; geomeans cover only workloads that every allocator ran "
    "correctly."
)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Workload:
    def __init__(self, name, command, kind):
        self.name = name          # row label: micro/NAME or NAME
        self.command = command    # argv; the string WORKDIR is replaced per run
        self.kind = kind

    def argv(self, workdir):
        return [workdir if a == "WORKDIR" else a for a in self.command]


def discover_workloads():
    workloads = []
    for src in sorted(MICRO_DIR.glob("*.c")):
        workloads.append(Workload("micro/" + src.stem, [str(BUILD / src.stem)], "micro"))
    for script in sorted(PROGRAMS_DIR.glob("*.sh")):
        command = [str(script), "WORKDIR"]
        if not os.access(script, os.X_OK):
            command = ["bash"] + command
        workloads.append(Workload(script.stem, command, "program"))
    return workloads


def select(items, patterns, key):
    if not patterns:
        return items
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen = []
    for item in items:
        names = {key(item), key(item).split("/")[-1]}
        if any(fnmatch.fnmatchcase(n, p) for n in names for p in pats):
            chosen.append(item)
    return chosen


def ensure_built(workloads):
    """Builds the micro workloads and treerun through bench/bench.mk when stale."""
    targets = [(TREERUN, [ROOT / "bench" / "treerun.c"])]
    common = list(MICRO_DIR.glob("*.h"))
    for w in workloads:
        if w.kind == "micro":
            stem = Path(w.command[0]).name
            targets.append((Path(w.command[0]), [MICRO_DIR / (stem + ".c")] + common))
    stale = [t for t, srcs in targets
             if not t.exists() or any(s.stat().st_mtime > t.stat().st_mtime for s in srcs)]
    if not stale:
        return
    log("building benchmark programs (make bench-build)")
    r = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "bench-build"])
    if r.returncode != 0:
        sys.exit("bench: building the benchmark programs failed")


def run_one(workload, preload, tmp_root, timeout_s, extra_env=None):
    """Runs a workload once under treerun; returns a dict with the measurements."""
    workdir = tempfile.mkdtemp(prefix="run-", dir=tmp_root)
    out_path = Path(tmp_root) / "stdout"
    err_path = Path(tmp_root) / "stderr"
    res_path = Path(tmp_root) / "result.json"
    if res_path.exists():
        res_path.unlink()
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("MEMBUDGET_")}
    env.update(extra_env or {})
    cmd = [str(TREERUN), "-o", str(res_path), "-t", str(timeout_s)]
    if preload:
        cmd += ["-p", str(preload)]
    cmd += ["--"] + workload.argv(workdir)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        subprocess.run(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                       stdout=out, stderr=err)
    shutil.rmtree(workdir, ignore_errors=True)
    stdout = out_path.read_bytes()
    stderr = err_path.read_bytes()
    try:
        m = json.loads(res_path.read_text())
    except (OSError, ValueError):
        m = {"wall_s": -1, "max_rss_kb": 0, "user_s": 0, "sys_s": 0, "exit": -1,
             "signal": 0, "processes": 0, "timed_out": False}
    m["stdout"] = stdout
    m["stderr"] = stderr
    if m["timed_out"]:
        m["status"] = "TIMEOUT"
    elif m["signal"]:
        m["status"] = "CRASH(sig %d)" % m["signal"]
    elif m["exit"] != 0:
        m["status"] = "FAIL(exit %d)" % m["exit"]
    elif preload and b"cannot be preloaded" in stderr:
        m["status"] = "NOT-PRELOADED"
    else:
        m["status"] = "ok"
    return m


def save_log(name, m):
    logdir = BUILD / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    base = logdir / name.replace("/", "_")
    base.with_suffix(".out").write_bytes(m["stdout"])
    base.with_suffix(".err").write_bytes(m["stderr"])
    return base


def first_difference(a, b):
    la, lb = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "<missing>"
        y = lb[i] if i < len(lb) else "<missing>"
        if x != y:
            return "line %d: glibc %r, got %r" % (i + 1, x[:120], y[:120])
    return "identical lines, different bytes"


def sh(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(allocs, membudget_copy):
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    except OSError:
        pass
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        glibc = sh(["ldd", "--version"]).splitlines()[0] if sh(["ldd", "--version"]) else "?"
    pkgs = []
    for name, so, pkg in ALLOCATORS:
        if pkg:
            v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
            pkgs.append("%s %s" % (pkg, v if v and "no packages" not in v else "(not installed)"))
    mb = ROOT / "build" / "libmembudget.so"
    if membudget_copy and mb.exists():
        st = mb.stat()
        digest = hashlib.sha256(Path(membudget_copy).read_bytes()).hexdigest()[:12]
        pkgs.append("membudget build/libmembudget.so built %s, sha256 %s" % (
            datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"), digest))
        if "membudget+jemalloc" in allocs:
            v = sh(["dpkg-query", "-W", "-f=${Version}", "libjemalloc-dev"])
            pkgs.append("its jemalloc backend from libjemalloc-dev %s" % (v or "?"))
    progs = []
    for name, cmd in PROGRAM_VERSIONS:
        if shutil.which(cmd[0]):
            first = sh(cmd).splitlines()
            version = first[0][:60] if first else "?"
            progs.append("%s: %s (%s)" % (name, version, shutil.which(cmd[0])))
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "glibc": glibc,
        "packages": pkgs,
        "programs": progs,
        "os": sh(["sh", "-c", ". /etc/os-release 2>/dev/null && echo \"$PRETTY_NAME\""]),
    }


def cpu_busy_s():
    """Seconds of CPU time the whole machine has spent busy since boot."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    v = [int(x) for x in fields]
    busy = v[0] + v[1] + v[2] + sum(v[5:8])  # user nice system irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


# (key, title, format of a value, how a run gives the value)
METRICS = [
    ("time", "Wall time, seconds", "%.3f", lambda r: r["wall_s"]),
    ("rss", "Peak RSS, MiB", "%.1f", lambda r: r["max_rss_kb"] / 1024),
    ("cpu", "CPU time (user+sys of the whole tree), seconds", "%.3f",
     lambda r: r["user_s"] + r["sys_s"]),
]


def summarize(workloads, allocs, runs, baseline):
    """runs[(workload, alloc)] = list of measurement dicts (measured rounds only)."""
    cells = {}
    for w in workloads:
        for a in allocs:
            rs = runs.get((w.name, a), [])
            bad = [r["status"] for r in rs if r["status"] != "ok"]
            c = {"n": len(rs), "bad": bad}
            if rs and not bad:
                for key, _, _, get in METRICS:
                    c[key] = statistics.median(get(r) for r in rs)
                times = [r["wall_s"] for r in rs]
                c["spread"] = (max(times) - min(times)) / c["time"] if c["time"] > 0 else 0
            cells[(w.name, a)] = c
    for w in workloads:
        base = cells.get((w.name, baseline), {})
        for a in allocs:
            c = cells[(w.name, a)]
            if "time" in c and "time" in base:
                for key, _, _, _ in METRICS:
                    if base[key] > 0:
                        c[key + "_ratio"] = c[key] / base[key]
    common = [w.name for w in workloads
              if all("time_ratio" in cells[(w.name, a)] and "cpu_ratio" in cells[(w.name, a)]
                     for a in allocs)]
    geo = {a: {key: geomean([cells[(n, a)][key + "_ratio"] for n in common])
               for key, _, _, _ in METRICS} for a in allocs}
    return cells, common, geo


def cell_text(c, metric, fmt):
    if c["n"] == 0:
        return "—"
    if c["bad"]:
        kinds = sorted(set(c["bad"]))
        return "**%s %d/%d**" % (" ".join(kinds), len(c["bad"]), c["n"])
    text = fmt % c[metric]
    if metric + "_ratio" in c:
        text += " (%.2f×)" % c[metric + "_ratio"]
    return text


def render(args, command, started, finished, machine, workloads, allocs, skipped,
           runs, refs, baseline, rounds_done, problems):
    cells, common, geo = summarize(workloads, allocs, runs, baseline)
    L = []
    L.append("# Allocator benchmark")
    L.append("")
    L.append("Command: %s  " % command)
    L.append("Date: %s (%.1f min)  " % (started.strftime("%Y-%m-%d %H:%M UTC"),
                                        (finished - started).total_seconds() / 60))
    L.append("Machine: %s CPUs, %s, %s RAM; kernel %s; %s; %s  " % (
        machine["nproc"], machine["cpu"], machine["memory"], machine["kernel"],
        machine["glibc"], machine["os"]))
    L.append("Allocators: %s  " % "; ".join(machine["packages"]))
    L.append("Programs: %s  " % "; ".join(machine["programs"]))
    L.append("Rounds: %d, interleaved, order shuffled with seed %d; load average at start %s, "
             "at end %s; other processes used %.0f%% of the CPU capacity meanwhile" % (
                 rounds_done, args.seed, args.load_start, args.load_end,
                 args.foreign_share * 100))
    L.append("")
    if problems:
        L.append("> **WARNING: %d run(s) failed or printed output different from glibc's; "
                 "those cells show no numbers. See Correctness below.**" % len(problems))
        L.append("")
    if args.foreign_share > 0.05:
        L.append("> Note: processes other than the benchmark's used %.0f%% of the machine's "
                 "CPU capacity during the run; wall times are noisier than on an idle "
                 "machine (see the spread table at the end); CPU times are less affected, though "
                 "not immune (the CPUs share caches)."
                 % (args.foreign_share * 100))
        L.append("")
    if skipped:
        for name, why in skipped:
            L.append("- **%s skipped**: %s" % (name, why))
        L.append("")
    if baseline not in allocs:
        L.append("- ratios need the baseline allocator %s, which did not run" % baseline)
        L.append("")

    header = "| workload | " + " | ".join(allocs) + " |"
    sep = "|---|" + "---:|" * len(allocs)
    for key, title, fmt, _ in METRICS:
        L.append("## %s (×%s)" % (title, baseline))
        L.append("")
        L.append(header)
        L.append(sep)
        for w in workloads:
            L.append("| %s | %s |" % (w.name, " | ".join(
                cell_text(cells[(w.name, a)], key, fmt) for a in allocs)))
        if baseline in allocs and common:
            L.append("| **geomean ×%s** | %s |" % (baseline, " | ".join(
                "**%.3f**" % geo[a][key] for a in allocs)))
        L.append("")

    py = next((w for w in workloads if w.name == "python3"), None)
    if py and "glibc" in allocs:
        g = cells[(py.name, "glibc")]
        parts = []
        for a in allocs:
            c = cells[(py.name, a)]
            if "time" in c and "time" in g:
                parts.append("%s %.3f×" % (a, c["time"] / g["time"]))
            else:
                parts.append("%s n/a" % a)
        L.append("python3 workload, wall time ×glibc: " + ", ".join(parts) + ".")
        L.append("")
    if "membudget" in allocs and baseline in allocs and common:
        t, r = geo["membudget"]["time"], geo["membudget"]["rss"]
        L.append("membudget against the targets: time geomean %.3f× %s (target ≤ 0.90), "
                 "peak RSS geomean %.3f× (target ≤ 0.80)." % (t, baseline, r))
        L.append("")
        parts = []
        for w in workloads:
            c, g = cells[(w.name, "membudget")], cells.get((w.name, "glibc"), {})
            if w.kind != "micro" and all(k in c and k in g for k in ("time", "rss")):
                held = c["time"] <= 0.85 * g["time"] and c["rss"] <= g["rss"]
                parts.append("%s %.2f× time, %.2f× peak RSS%s" % (
                    w.name, c["time"] / g["time"], c["rss"] / g["rss"], "" if held else " (not met)"))
        if parts:
            L.append("Real programs, membudget against glibc (target: time ≤ 0.85×, peak RSS "
                     "≤ 1.00×): " + "; ".join(parts) + ".")
            L.append("")
    for ours, what in (("membudget+jemalloc", "MEMBUDGET_BACKEND=jemalloc, the default budget "
                        "and sampling on"),
                       ("membudget+jemalloc-unsampled", "the same with MEMBUDGET_SAMPLE=0")):
        if ours in allocs and "jemalloc" in allocs and common:
            t = geo[ours]["time"] / geo["jemalloc"]["time"]
            r = geo[ours]["rss"] / geo["jemalloc"]["rss"]
            L.append("%s (%s) against plain jemalloc: time geomean %.3f× (target ≤ 1.02), "
                     "peak RSS geomean %.3f×." % (ours, what, t, r))
            L.append("")

    excluded = [w.name for w in workloads if w.name not in common]
    if excluded and baseline in allocs:
        L.append("Not in the geomeans (some allocator has no valid median): %s." %
                 ", ".join(excluded))
        L.append("")

    L.append("## Correctness")
    L.append("")
    if problems:
        L.append("**%d run(s) did not reproduce the glibc reference or failed:**" % len(problems))
        L.append("")
        for p in problems:
            L.append("- " + p)
    else:
        L.append("Every measured run exited 0 and printed exactly the glibc reference output.")
    L.append("")

    L.append("## How it is measured")
    L.append("")
    L.append(MEASUREMENT_NOTE.format(baseline=baseline))
    L.append("")
    if rounds_done > 1:
        L.append("Run-to-run spread of wall time, (max − min) / median over the rounds:")
        L.append("")
        L.append(header)
        L.append(sep)
        for w in workloads:
            L.append("| %s | %s |" % (w.name, " | ".join(
                "%.0f%%" % (cells[(w.name, a)]["spread"] * 100)
                if "spread" in cells[(w.name, a)] else "—" for a in allocs)))
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    ap.add_argument("--quick", action="store_true", help="one round")
    ap.add_argument("--only", help="workloads to run, comma-separated names or globs "
                    "(e.g. python3,micro/*)")
    ap.add_argument("--alloc", help="allocators to run, comma-separated")
    ap.add_argument("--seed", type=int, default=1, help="seed of the run order")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per run")
    ap.add_argument("--baseline", default="mimalloc", help="allocator the ratios are against")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"),
                    help="Markdown report (default bench/RESULTS.md)")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                    help="one more allocator column: the shared object PATH preloaded "
                    "(e.g. an earlier build of our library, to compare two versions "
                    "in one interleaved run); repeatable")
    args = ap.parse_args()
    rounds = 1 if args.quick else args.rounds
    if rounds < 1:
        ap.error("--rounds must be at least 1")

    command = "`%s`" % shlex.join(["python3", "bench/run.py"] + sys.argv[1:])
    if os.environ.get("MAKELEVEL"):
        command += " (through `make bench`)"

    workloads = select(discover_workloads(), args.only, lambda w: w.name)
    if not workloads:
        sys.exit("bench: no workload matches --only %s" % args.only)
    allocs, skipped = [], []
    default = [a for a in ALLOCATORS if a[0] not in ON_REQUEST]
    for name, so, pkg in select(ALLOCATORS if args.alloc else default, args.alloc,
                                lambda a: a[0]):
        if so is not None and not Path(so).exists():
            why = "%s is missing" % so
            if pkg:
                why += " (Debian package %s)" % pkg
            skipped.append((name, why))
            log("bench: %s skipped: %s" % (name, why))
            continue
        allocs.append(name)
    preload = {name: so for name, so, _ in ALLOCATORS}
    extra = {}
    for spec in args.also:
        name, sep, path = spec.partition("=")
        if not sep or not name or name in preload or name in extra:
            ap.error("--also wants NAME=PATH with a new NAME: %s" % spec)
        if not Path(path).exists():
            ap.error("--also %s: no such file" % spec)
        extra[name] = Path(path).resolve()
        allocs.append(name)
    if not allocs:
        sys.exit("bench: no allocator to run")
    ensure_built(workloads)

    started = datetime.datetime.now(datetime.timezone.utc)
    busy_start = cpu_busy_s()
    own_cpu = 0.0
    args.load_start = "%.2f" % os.getloadavg()[0]
    BUILD.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(BUILD / "logs", ignore_errors=True)
    tmp_root = tempfile.mkdtemp(prefix="mbbench-")
    # Preload a private copy of our own library: a rebuild during the run must not
    # mix two versions in one table (or catch a half-written file).
    ours = [a for a in allocs if a.startswith("membudget") and a not in extra]
    if ours:
        snapshot = BUILD / "preload" / "libmembudget.so"
        snapshot.parent.mkdir(exist_ok=True)
        shutil.copy2(preload[ours[0]], snapshot)
        for a in ours:
            preload[a] = snapshot
    for name, path in extra.items():
        copy = BUILD / "preload" / ("also-%s.so" % name.replace("/", "_"))
        copy.parent.mkdir(exist_ok=True)
        shutil.copy2(path, copy)
        preload[name] = copy
    machine = machine_info(allocs, preload[ours[0]] if ours else None)
    for name, path in extra.items():
        machine["packages"].append("%s %s, sha256 %s" % (
            name, path, hashlib.sha256(path.read_bytes()).hexdigest()[:12]))
    runs, refs, problems = {}, {}, []
    rounds_done = 0
    try:
        # Reference round: glibc, unmeasured; warms caches, fixes the expected output.
        ref_time = 0.0
        for w in list(workloads):
            m = run_one(w, None, tmp_root, args.timeout)
            if m["status"] != "ok":
                base = save_log("ref-glibc-" + w.name, m)
                why = "fails under glibc (%s), so it cannot be compared; logs: %s.out/.err" % (
                    m["status"], base.relative_to(ROOT))
                skipped.append((w.name, why))
                log("!!! workload %s %s" % (w.name, why))
                workloads.remove(w)
                continue
            refs[w.name] = m["stdout"]
            own_cpu += m["user_s"] + m["sys_s"]
            ref_time += max(m["wall_s"], 0)
            log("reference %-22s %7.3f s  %8.1f MiB" % (w.name, m["wall_s"],
                                                         m["max_rss_kb"] / 1024))
        log("estimated time: ~%.0f min for %d round(s) × %d allocator(s)" % (
            ref_time * len(allocs) * rounds / 60, rounds, len(allocs)))

        order_rng = random.Random(args.seed)
        total = rounds * len(workloads) * len(allocs)
        done = 0
        for r in range(rounds):
            pairs = [(w, a) for w in workloads for a in allocs]
            order_rng.shuffle(pairs)
            for w, a in pairs:
                m = run_one(w, preload[a], tmp_root, args.timeout, ALLOC_ENV.get(a))
                own_cpu += m["user_s"] + m["sys_s"]
                done += 1
                if m["status"] == "ok" and m["stdout"] != refs[w.name]:
                    m["status"] = "WRONG"
                if m["status"] != "ok":
                    base = save_log("%s-%s-r%d" % (a, w.name, r + 1), m)
                    what = ("stdout differs from glibc's: " +
                            first_difference(refs[w.name], m["stdout"]) +
                            (" (glibc itself: the workload's output is not deterministic)"
                             if a == "glibc" else "")
                            if m["status"] == "WRONG" else "stderr tail: %r" %
                            m["stderr"].decode(errors="replace")[-200:])
                    msg = "%s under %s, round %d: **%s** — %s (logs: %s.out/.err)" % (
                        w.name, a, r + 1, m["status"], what, base.relative_to(ROOT))
                    problems.append(msg)
                    log("!!! " + msg)
                runs.setdefault((w.name, a), []).append(m)
                log("[round %d/%d, %3d/%d] %-22s %-10s %7.3f s %8.1f MiB  %s" % (
                    r + 1, rounds, done, total, w.name, a, m["wall_s"],
                    m["max_rss_kb"] / 1024, m["status"]))
            rounds_done = r + 1
    except KeyboardInterrupt:
        log("bench: interrupted after %d complete round(s); %s not written" % (
            rounds_done, args.out))
        for k in list(runs):
            runs[k] = runs[k][:rounds_done]
        args.out = None
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    finished = datetime.datetime.now(datetime.timezone.utc)
    args.load_end = "%.2f" % os.getloadavg()[0]
    capacity = (finished - started).total_seconds() * len(os.sched_getaffinity(0))
    foreign = cpu_busy_s() - busy_start - own_cpu
    args.foreign_share = max(0.0, foreign / capacity) if capacity > 0 else 0.0
    report = render(args, command, started, finished, machine, workloads, allocs, skipped,
                    runs, refs, args.baseline, rounds_done, problems)
    print(report)
    raw = {"command": command, "started": started.isoformat(), "machine": machine,
           "runs": [{"workload": w, "allocator": a, "round": i + 1,
                     **{k: v for k, v in m.items() if k not in ("stdout", "stderr")}}
                    for (w, a), ms in runs.items() for i, m in enumerate(ms)]}
    (BUILD / "results.json").write_text(json.dumps(raw, indent=1) + "\n")
    if args.out:
        Path(args.out).write_text(report + "\n" + companion_sections())
        log("bench: wrote %s" % args.out)
    return 1 if problems else 0


# The budget's and the sampler's own benchmarks (make bench-budget, make
# bench-sample) write their tables beside this one; RESULTS.md carries them too,
# as they were last measured, each with the command that made it.
COMPANIONS = (("BUDGET.md", "make bench-budget"), ("SAMPLING.md", "make bench-sample"))


def companion_sections():
    parts = []
    for name, target in COMPANIONS:
        path = ROOT / "bench" / name
        if not path.exists():
            continue
        body = path.read_text()
        # Demote the companion's headings one level under its own section.
        body = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())
        parts.append("\n## From bench/%s (`%s`, its last run)\n\n%s\n" % (name, target, body))
    return "".join(parts)


if __name__ == "__main__":
    sys.exit(main())
