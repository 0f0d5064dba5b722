#!/usr/bin/env python3
"""What `membudget-report --html` costs on a real dump with full debug
information, and whether two builds of the report tool write the same page.

1. The dump (unless --dump names one): an interpreter (--python, by default
   Debian's /usr/bin/python3.11) runs a workload under build/libmembudget.so,
   every --sample bytes sampled (16K by default): it imports a good part of
   the standard library, compiles, parses and encodes, and keeps what it made;
   then membudget_dump() (through ctypes) writes the report.  Its frames lie
   in the interpreter, the C library and the extension modules; where the
   interpreter's DWARF is at hand (python3.11-dbg installed: Debian's debug
   symbols, found by build-id under /usr/lib/debug; or an interpreter built
   with -g, such as pyenv's) the report expands the calls inlined at each of
   them, which is where the time goes.
2. Each tool (build/membudget-report, and every --also NAME=PATH) writes the
   page ROUNDS times, rounds interleaved in an order shuffled with a fixed
   seed; the CPU time (user + system, from the process's own rusage) is taken
   as the median and the least (other load on the machine only adds time).
3. The outputs of every tool (--html, the text, --json and --folded) are
   compared byte for byte with the first tool's.

Prints a Markdown table (and writes it to --out); exits 1 when a run fails or
an output differs.

    make bench-report
    make bench-report BENCH_REPORT_ARGS='--also before=/tmp/membudget-report-old --rounds 9'
    python3 bench/report_bench.py --python ~/.pyenv/versions/3.11.7/bin/python3.11 --sample 1K
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "build" / "membudget-report"
LIB = ROOT / "build" / "libmembudget.so"
PYTHON = "/usr/bin/python3.11"
DEBUG_DIR = Path("/usr/lib/debug/.build-id")

WORKLOAD = r"""
import ctypes, importlib, json, re, sys
names = ["argparse", "asyncio", "collections", "csv", "dataclasses", "decimal", "difflib",
         "email.parser", "fractions", "html.parser", "http.client", "inspect", "ipaddress",
         "logging", "pathlib", "pickle", "pydoc", "sqlite3", "statistics", "string",
         "tarfile", "textwrap", "tokenize", "typing", "unittest", "urllib.request", "uuid",
         "xml.dom.minidom", "xml.etree.ElementTree", "zipfile"]
mods = [importlib.import_module(n) for n in names]
keep = []
for i in range(300):
    keep.append({"k%d" % j: [j, str(j) * 8, (j, i)] for j in range(64)})
    keep.append(json.loads(json.dumps(keep[-1])))
    keep.append(re.compile(r"(\w+)-%d-(\d+)" % i))
    keep.append(compile("def f%d(x):\n    return [x * k for k in range(%d)]\n" % (i, i),
                        "<gen>", "exec"))
    keep.append(bytearray(40000 + i))
    keep.append("-".join(str(k) for k in range(200 + i)).encode())
for n in range(len(mods)):
    keep.append(sorted(dir(mods[n])))
if ctypes.CDLL(None).membudget_dump(sys.argv[1].encode()) != 0:
    sys.exit("membudget_dump failed")
"""


def make_dump(tmp, python, sample):
    path = os.path.join(tmp, "python3.json")
    script = os.path.join(tmp, "workload.py")
    with open(script, "w") as f:
        f.write(WORKLOAD)
    env = dict(os.environ, LD_PRELOAD=str(LIB), MEMBUDGET_SAMPLE=sample,
               MEMBUDGET_LIMIT="4G", PYTHONMALLOC="malloc")
    p = subprocess.run([python, script, path], env=env, capture_output=True, text=True)
    if p.returncode != 0 or not os.path.exists(path):
        sys.exit("the python3 workload failed (exit %s): %s" % (p.returncode, p.stderr[-2000:]))
    return path


def interpreter_symbols(python):
    """Whether the interpreter has its DWARF: in its own file, or as Debian's
    debug symbols (found by build-id, as the report tool looks for them)."""
    p = subprocess.run(["readelf", "-S", "-n", python], capture_output=True, text=True)
    if ".debug_info" in p.stdout:
        return True
    ids = [l.split()[-1] for l in p.stdout.splitlines() if "Build ID" in l]
    return bool(ids) and (DEBUG_DIR / ids[0][:2] / (ids[0][2:] + ".debug")).exists()


def cpu_run(argv):
    """Runs argv; its exit status and its own user + system CPU seconds."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    return p.returncode, usage.ru_utime + usage.ru_stime, err


def outputs(tool, dump, tmp, name):
    """The page and the other outputs of one tool, as bytes."""
    page = os.path.join(tmp, name + ".html")
    got = {}
    for mode, args in (("html", ["--html", page]), ("text", []), ("json", ["--json"]),
                       ("folded", ["--folded"])):
        p = subprocess.run([tool] + args + [dump], capture_output=True)
        if p.returncode != 0:
            sys.exit("%s %s: exit %s: %s" % (name, mode, p.returncode, p.stderr.decode()[-500:]))
        got[mode] = open(page, "rb").read() if mode == "html" else p.stdout
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", help="a dump to read (default: made from python3.11)")
    ap.add_argument("--python", default=PYTHON,
                    help="the interpreter that makes the dump (default %(default)s)")
    ap.add_argument("--sample", default="16K",
                    help="MEMBUDGET_SAMPLE of the dump's run (default %(default)s)")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                    help="another build of membudget-report to compare")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", help="also write the table to this file")
    args = ap.parse_args()
    tools = [("this build", str(TOOL))]
    for spec in args.also:
        name, _, path = spec.partition("=")
        if not path:
            ap.error("--also '%s' is not valid (expected NAME=PATH)" % spec)
        tools.append((name, path))
    tmp = tempfile.mkdtemp(prefix="mb-report-bench.")
    dump = args.dump or make_dump(tmp, args.python, args.sample)
    debug = "with" if interpreter_symbols(args.python) else "without"
    first = outputs(tools[0][1], dump, tmp, "tool0")
    same = {}
    for k, (name, path) in enumerate(tools[1:], 1):
        got = outputs(path, dump, tmp, "tool%d" % k)
        same[name] = [m for m in first if got[m] != first[m]]
    order = [(r, t) for r in range(args.rounds) for t in range(len(tools))]
    random.Random(18).shuffle(order)
    times = {t: [] for t in range(len(tools))}
    for _, t in order:
        rc, cpu, err = cpu_run([tools[t][1], "--html", os.path.join(tmp, "bench.html"), dump])
        if rc != 0:
            sys.exit("%s: exit %s: %s" % (tools[t][0], rc, err[-500:]))
        times[t].append(cpu)
    doc = json.loads(first["json"])
    frames = [f for site in doc["sites"] for f in site["frames"]]
    lines = ["# membudget-report --html", "",
             "%d sites, %d frames after expansion (%d of them inlined calls), %d distinct "
             "return addresses." % (len(doc["sites"]), len(frames),
                                    sum(1 for f in frames if f.get("inlined")),
                                    len({f["address"] for f in frames})), "",
             "Dump: %s (%d KiB) of %s, %s its debug information; %d rounds, CPU "
             "seconds (user + system) of one run." % (os.path.basename(dump),
                                                      os.path.getsize(dump) >> 10, args.python,
                                                      debug, args.rounds), "",
             "| build | median | least | same output as this build |", "|---|---|---|---|"]
    for t, (name, _) in enumerate(tools):
        diff = "-" if t == 0 else ("yes" if not same[name] else "no: " + ", ".join(same[name]))
        lines.append("| %s | %.3f s | %.3f s | %s |" % (name, statistics.median(times[t]),
                                                      min(times[t]), diff))
    shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 1 if any(same.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
