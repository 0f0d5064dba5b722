#!/usr/bin/env python3
"""The soak (make stress): tests/stress/soak.c under the preload at LIMIT, its
footprint held at FRACTION of the limit, for SECONDS (600 by default; any
duration for a short run).  Passes when
  - the process ends normally, with no budget line and no report (no death);
  - every sampled footprint after the warm-up stays under the limit;
  - the RSS does not drift upward: a least-squares line through the RSS
    sampled after the warm-up rises by less than DRIFT (a share of the limit)
    over that time; its slope is reported, with the footprint's;
  - no block lost its contents.
One result line per check, then "N passed, N failed".

Usage: soak.py LIB SOAK [--seconds S] [--warmup S] [--limit 256M] [--fraction 0.8]
                        [--drift 0.05]"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

MIB = 1 << 20
KILL_LINE = "exceeded its memory budget"


def fit(points):
    """Slope and intercept of the least-squares line through (t, v)."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0, mv
    slope = sum((t - mt) * (v - mv) for t, v in points) / var
    return slope, mv - slope * mt


def size_bytes(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * units[s[-1].upper()]) if s[-1].upper() in units else int(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("soak")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--limit", default="256M")
    ap.add_argument("--fraction", type=float, default=0.8)
    ap.add_argument("--drift", type=float, default=0.05)
    args = ap.parse_args()
    warmup = args.warmup if args.warmup is not None else min(60.0, args.seconds / 5)
    limit = size_bytes(args.limit)
    tmp = tempfile.mkdtemp(prefix="mb-soak.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMBUDGET_") and k != "LD_PRELOAD"}
    env.update({"LD_PRELOAD": os.path.realpath(args.lib), "MEMBUDGET_LIMIT": args.limit,
                "MEMBUDGET_REPORT": os.path.join(tmp, "r.%p.json")})
    cmd = [os.path.realpath(args.soak), str(args.seconds), str(warmup), str(args.fraction)]
    print("soak: %s, limit %s, footprint held at %.0f%%, %.0f s (warm-up %.0f s)"
          % (os.path.basename(args.lib), args.limit, args.fraction * 100, args.seconds, warmup), flush=True)
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=args.seconds + 180)
        rc, out, err = p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace")
    reports = os.listdir(tmp)
    shutil.rmtree(tmp, ignore_errors=True)

    passed = failed = 0

    def result(ok, text):
        nonlocal passed, failed
        if ok:
            passed += 1
            print("ok " + text, flush=True)
        else:
            failed += 1
            print("FAIL " + text, flush=True)

    samples = []
    for m in re.finditer(r"^sample ([\d.]+) rss=(\d+) footprint=(\d+) counter=(\d+) live=(\d+) policy=(\d+)",
                         out, re.M):
        samples.append(tuple(float(x) for x in m.groups()))
    done = re.search(r"^soak: done ops=(\d+) threads=(\d+) errors=(\d+)", out, re.M)
    deaths = [l for l in err.splitlines() if KILL_LINE in l]
    status = "hung (killed)" if rc is None else "exit status %d" % rc
    result(rc == 0 and done is not None and not deaths and not reports,
           "no death: %s, %d budget lines, %d reports" % (status, len(deaths), len(reports)))
    if rc != 0 or done is None:
        for l in err.splitlines()[:10]:
            print("    | " + l)
    measured = [s for s in samples if s[0] >= warmup]
    if len(measured) < 3:
        result(False, "too few samples after the warm-up (%d)" % len(measured))
    else:
        peak = max(s[2] for s in measured)
        result(peak < limit, "footprint under the limit: peak %.1f MiB of %.1f MiB (mean %.1f MiB)"
               % (peak / MIB, limit / MIB, sum(s[2] for s in measured) / len(measured) / MIB))
        span = measured[-1][0] - measured[0][0]
        rss_slope, _ = fit([(s[0], s[1]) for s in measured])
        fp_slope, _ = fit([(s[0], s[2]) for s in measured])
        rise = rss_slope * span
        result(rise < args.drift * limit,
               "RSS does not drift: slope %+.3f MiB/min (%+.1f MiB over %.0f s, bound %.1f MiB); "
               "footprint slope %+.3f MiB/min; RSS %.1f -> %.1f MiB"
               % (rss_slope * 60 / MIB, rise / MIB, span, args.drift * limit / MIB,
                  fp_slope * 60 / MIB, measured[0][1] / MIB, measured[-1][1] / MIB))
    if done:
        result(int(done.group(3)) == 0, "contents intact: %s operations, %s threads, %s errors"
               % (done.group(1), done.group(2), done.group(3)))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
