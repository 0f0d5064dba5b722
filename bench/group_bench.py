#!/usr/bin/env python3
"""make bench-group: one budget for six python3 workers, two of which grow,
under 1 GiB, three ways side by side (issue 17).  Not a test.

  membudget   the workers in one membudget group (MEMBUDGET_GROUP, limit 1G),
              steady ones in bands 5-8, the growers in bands 1 and 3
  cgroup v1   the same workers in a memory cgroup with memory.limit_in_bytes
              = 1G (/sys/fs/cgroup/memory; needs root)
  no limit    the same workers with neither

For each: the peak of the workers' summed RSS (sampled every 20 ms), whether
it stayed under 1 GiB, which worker died and whether it was the one the bands
name (the band-1 grower), how much the others gave back first (membudget: the
slots' released bytes), and whether a report exists.  Writes bench/GROUP.md.

Usage: group_bench.py BUILD_ROOT"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

BUILD = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else "build")
LIB = os.path.join(BUILD, "libmembudget.so")
TOOL = os.path.join(BUILD, "membudget")
MIB = 1 << 20
LIMIT = 1 << 30
CGROOT = "/sys/fs/cgroup/memory"
# name, band, steady MiB, growth step MiB, growth ceiling MiB
WORKERS = [("steady-a", 8, 110, 0, 0), ("steady-b", 7, 110, 0, 0), ("steady-c", 6, 110, 0, 0),
           ("steady-d", 5, 110, 0, 0), ("grower-low", 1, 40, 10, 420),
           ("grower-mid", 3, 40, 10, 420)]
EXPECTED_VICTIM = "grower-low"
WORKER = r"""
import sys, time
steady, step, ceiling = (int(a) for a in sys.argv[1:4])
blocks = [bytearray(steady << 20)]
for b in blocks:
    b[::4096] = b"x" * len(b[::4096])
size = steady
while step and size < ceiling:
    b = bytearray(step << 20)
    b[::4096] = b"x" * len(b[::4096])
    blocks.append(b)
    size += step
    time.sleep(0.05)
print("done", flush=True)
sys.stdin.readline()
"""


def rss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run(kind, tmp):
    script = os.path.join(tmp, "worker.py")
    with open(script, "w") as f:
        f.write(WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMBUDGET_")}
    env.pop("LD_PRELOAD", None)
    group = "bench-%d-%s" % (os.getpid(), kind.replace(" ", ""))
    cg = None
    if kind == "membudget":
        subprocess.run([TOOL, "group", group, "--limit", "1G"], check=True,
                       stdout=subprocess.DEVNULL)
    if kind == "cgroup v1":
        cg = os.path.join(CGROOT, group)
        os.mkdir(cg)
        with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
            f.write(str(LIMIT))
    procs = {}
    for name, band, steady, step, ceiling in WORKERS:
        e = dict(env)
        if kind == "membudget":
            e.update(LD_PRELOAD=LIB, MEMBUDGET_GROUP=group, MEMBUDGET_PRIORITY=str(band),
                     MEMBUDGET_REPORT=os.path.join(tmp, "report.%p.json"))
        argv = [sys.executable, script, str(steady), str(step), str(ceiling)]
        if cg is not None:
            argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg] + argv
        procs[name] = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, env=e)
    peak, start = 0, time.monotonic()
    pending = {n for n, *_ in WORKERS}
    os.set_blocking  # the workers' "done" lines are read below, one each
    for p in procs.values():
        os.set_blocking(p.stdout.fileno(), False)
    while pending and time.monotonic() - start < 120:
        peak = max(peak, sum(rss(p.pid) for p in procs.values() if p.poll() is None))
        for n in list(pending):
            p = procs[n]
            if p.poll() is not None or (p.stdout.readline() or "").strip() == "done":
                pending.discard(n)
        time.sleep(0.02)
    settle = time.monotonic() + 3  # a late victim still counts
    while time.monotonic() < settle:
        peak = max(peak, sum(rss(p.pid) for p in procs.values() if p.poll() is None))
        time.sleep(0.02)
    released = 0
    if kind == "membudget":
        released = group_released(group)
    died = {n: p.poll() for n, p in procs.items() if p.poll() is not None}
    for p in procs.values():
        if p.poll() is None:
            p.stdin.write("\n")
            p.stdin.flush()
    for p in procs.values():
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    reports = [f for f in os.listdir(tmp) if f.startswith("report.")]
    if kind == "membudget":
        os.unlink("/dev/shm/membudget-%d/group.%s" % (os.geteuid(), group))
    if cg is not None:
        os.rmdir(cg)
    return {"peak": peak, "died": died, "released": released, "reports": reports,
            "seconds": time.monotonic() - start}


def group_released(group):
    """The released bytes of every live slot of the group file (policy/group.h)."""
    with open("/dev/shm/membudget-%d/group.%s" % (os.geteuid(), group), "rb") as f:
        data = f.read()
    total = 0
    for i in range(64):
        s = struct.unpack_from("<IIQQIIQII", data, 128 + 48 * i)
        if s[0] != 0:
            total += s[6]
    return total


def main():
    rows = []
    kinds = ["membudget", "cgroup v1", "no limit"]
    for kind in kinds:
        if kind == "cgroup v1" and (os.geteuid() != 0 or not os.path.isdir(CGROOT)):
            rows.append((kind, None))
            continue
        tmp = tempfile.mkdtemp(prefix="mb-bench-group.")
        try:
            rows.append((kind, run(kind, tmp)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    lines = ["# make bench-group", "",
             "Six python3 workers (four steady at 110 MiB in bands 5-8, two growing by 10 MiB "
             "every 50 ms to 420 MiB in bands 1 and 3) under a 1 GiB budget.  Peak: the "
             "workers' summed RssAnon, sampled every 20 ms.", "",
             "| | peak | under 1 GiB | died | the banded victim | others released first "
             "| report |", "|---|---|---|---|---|---|---|"]
    for kind, r in rows:
        if r is None:
            lines.append("| %s | skipped: needs root and %s | | | | | |" % (kind, CGROOT))
            continue
        died = ", ".join("%s (%s)" % (n, "signal %d" % -c if c < 0 else "exit %d" % c)
                         for n, c in sorted(r["died"].items())) or "none"
        right = list(r["died"]) == [EXPECTED_VICTIM]
        lines.append("| %s | %.0f MiB | %s | %s | %s | %s | %s |" % (
            kind, r["peak"] / MIB, "yes" if r["peak"] < LIMIT else "no", died,
            "yes" if right else "no", "%.1f MiB" % (r["released"] / MIB)
            if kind == "membudget" else "n/a (no request)",
            "yes" if r["reports"] else "no"))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "GROUP.md"), "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
