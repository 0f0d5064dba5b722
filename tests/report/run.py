#!/usr/bin/env python3
"""The death report (issue 5, DESIGN §6): sampled allocation sites, the footprint
timeline, the loaded modules, and `membudget report`.

Usage: run.py LIB DEBUG_LIB TOOL BINDIR
  LIB        the release library, preloaded
  DEBUG_LIB  the debug library (its test hook holds allocator locks)
  TOOL       the report tool (membudget-report)
  BINDIR     the programs built from tests/report/*.c

Cases:
  golden     checked-in dumps (tests/report/golden/*.json) against the expected
             text, folded stacks and JSON, byte for byte; bad input and arguments
  leak3      ground truth: three C functions leaking 60/30/10% of the bytes from
             two threads under a 64M budget are the top three sites, in order,
             each estimate within 20% of what the program leaked
  python3    a Python function leaking bytearrays: the top site's stack holds the
             interpreter's C allocation path for it
  hold       the dump is complete when the dying thread, or another one, holds
             locks of the allocator and the sampler (debug library)
  resample   realloc in place replaces a sample, a moved span and a free end it
  svg        the timeline opens in headless Chromium and is not blank
  cxxnames   C++ names demangled in the text, --folded and --json (which keeps
             the mangled name); an inlined helper a frame of its own, marked;
             a stack deeper than the writer keeps ends in a marked frame
  symbols    a sized function symbol inside another's range (twosyms): the
             return address before it is named by the outer function, the one
             inside it by the inner symbol, though the outer one was named
             first (a module's symbol lookups are answered from earlier ones
             only between two symbol boundaries)
  inline3    calls inlined in one another (inner into middle into outer into
             chain, -O2 -g): every inlined call a frame of its own, innermost
             first, each caller at the line of its call; names and lines the
             same as addr2line -i -f for the return address
  dwz        the same chain in two units of one program, its DWARF rewritten
             by dwz (the inlined functions' definitions moved to a partial
             unit the two units import): the frames equal addr2line -i -f's
             for the program before dwz (binutils' addr2line does not follow
             the partial unit); skipped without dwz
  lto        Debian's python3.11 (link-time optimized, python3.11-dbg's
             DWARF): on a dump of it, the interpreter's frames of up to 300
             return addresses equal addr2line -i -f's, inlined calls included
             (their definitions lie in other units: DW_FORM_ref_addr);
             skipped without python3.11-dbg
  diff       --diff OLD NEW over two membudget_dump() reports of a program
             that leaks at one site between them: that site first, with the
             growth, in the text, --folded (differential) and --json; bad
             arguments
  allocator  --json keeps the dump's allocator section
  html       --html: the page opens in headless Chromium with no console error
             and no network, its largest leaf frame is leak3's dominant site, a
             click on it zooms into it, the search marks frames; markup in the
             dump and in frame names stays text; bad arguments
  hostile    dumps made hostile from the golden ones: module paths naming a FIFO,
             /dev/zero, a link to a FIFO, non-UTF-8 bytes (path_bytes); the dump
             itself a FIFO or larger than the limit; numbers past 2^63 and
             1.6e19; markup and escape sequences in the dump's strings and in a
             module's symbol names; a module whose DWARF names a FIFO as its
             alternate debug file; --folded over 200,000 sites
Prints "ok NAME" or "FAIL NAME: why" per case, then "N passed, N failed[, N skipped]".
Set REPORT_REGOLD=1 to rewrite the expected golden outputs from the tool."""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import suite  # noqa: E402  (tests/suite.py)

LIB = os.path.realpath(sys.argv[1])
DEBUG_LIB = os.path.realpath(sys.argv[2])
TOOL = os.path.realpath(sys.argv[3])
BIN = os.path.realpath(sys.argv[4])
HERE = os.path.dirname(os.path.realpath(__file__))
GOLDEN = os.path.join(HERE, "golden")
TIMEOUT = 60

results = suite.Results(15)
ok, skip, fail = results.ok, results.skip, results.fail
tmp = tempfile.mkdtemp(prefix="mb-report.")


def clean_env(extra, lib=None):
    return suite.environment(extra, lib)


def run(cmd, env=None, timeout=TIMEOUT):
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", "timed out after %d s" % timeout
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def report(*args):
    return run([TOOL] + list(args))


def report_json(path):
    rc, out, err = report("--json", path)
    if rc != 0:
        raise RuntimeError("report --json exit %s: %s" % (rc, err))
    return json.loads(out)


def die_under_budget(name, cmd, extra_env, lib=LIB):
    """Runs cmd until the budget stops it; returns (dump path, stderr) or None."""
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "report.json")
    env = clean_env(dict(extra_env, MEMBUDGET_REPORT=path), lib)
    rc, _, err = run(cmd, env)
    if rc != -signal.SIGABRT:
        fail(name, "exit status %s, expected SIGABRT" % rc, err)
        return None
    if not os.path.exists(path):
        fail(name, "no report at " + path, err)
        return None
    try:
        with open(path) as f:
            json.load(f)
    except ValueError as e:
        fail(name, "the report is not valid JSON: %s" % e)
        return None
    return path, err


# ---- golden dumps -------------------------------------------------------------------

def check_golden():
    regold = os.environ.get("REPORT_REGOLD") == "1"
    for dump in sorted(f for f in os.listdir(GOLDEN) if f.endswith(".json") and ".expected." not in f):
        base = dump[:-len(".json")]
        path = os.path.join(GOLDEN, dump)
        for mode, args, suffix in (("text", [], "txt"), ("folded", ["--folded"], "folded"),
                                   ("json", ["--json"], "json")):
            name = "golden %s %s" % (base, mode)
            expected_path = os.path.join(GOLDEN, "%s.expected.%s" % (base, suffix))
            rc, out, err = report(*(args + [path]))
            if rc != 0:
                fail(name, "exit status %s" % rc, err)
                continue
            if regold:
                with open(expected_path, "w") as f:
                    f.write(out)
            try:
                with open(expected_path) as f:
                    expected = f.read()
            except OSError:
                fail(name, "no expected output " + expected_path)
                continue
            if out != expected:
                a, b = out.splitlines(), expected.splitlines()
                i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
                fail(name, "differs from %s at line %d" % (os.path.basename(expected_path), i + 1),
                     "got:      %s\nexpected: %s" % (a[i] if i < len(a) else "<end>",
                                                    b[i] if i < len(b) else "<end>"))
                continue
            ok(name)


def check_bad_input():
    name = "report rejects what is not a report"
    not_json = os.path.join(tmp, "not.json")
    with open(not_json, "w") as f:
        f.write("{ this is not json\n")
    other = os.path.join(tmp, "other.json")
    with open(other, "w") as f:
        f.write('{"hello": 1}\n')
    cases = [([not_json], 1, "line 1"), ([other], 1, "not a membudget report"),
             ([os.path.join(tmp, "absent.json")], 1, "absent.json"), ([], 2, "DUMP missing"),
             (["--folded", "--json", other], 2, "choose one"), (["--sites", "x", other], 2, "--sites x"),
             (["--bogus", other], 2, "--bogus")]
    for args, want_rc, want_text in cases:
        rc, out, err = report(*args)
        if rc != want_rc or want_text not in err or out:
            return fail(name, "%s: exit %s (expected %s), stderr %r" % (args, rc, want_rc, err))
    rc, out, _ = report("--help")
    if rc != 0 or "usage: membudget report DUMP" not in out:
        return fail(name, "--help: exit %s" % rc, out)
    ok(name)


# ---- ground truth: three C functions -------------------------------------------------

def site_function(site):
    return site["frames"][0].get("function") if site["frames"] else None


def check_leak3():
    name = "leak3: top three sites are leak_60, leak_30, leak_10, estimates within 20%"
    got = die_under_budget("leak3", [os.path.join(BIN, "leak3")],
                           {"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_SAMPLE": "16K"})
    if got is None:
        return None
    path, err = got
    truth = {}
    for line in err.splitlines():
        m = re.match(r"truth (\w+) (\d+)$", line)
        if m:
            truth[m.group(1)] = int(m.group(2))
    if sorted(truth) != ["leak_10", "leak_30", "leak_60"]:
        fail(name, "the program did not print its truth", err)
        return path
    r = report_json(path)
    top = [site_function(s) for s in r["sites"][:3]]
    if top != ["leak_60", "leak_30", "leak_10"]:
        fail(name, "top three sites are %s" % top,
             "\n".join("%s %s" % (site_function(s), s["est_bytes"]) for s in r["sites"][:6]))
        return path
    errors = []
    for s in r["sites"][:3]:
        fn = site_function(s)
        ratio = s["est_bytes"] / truth[fn]
        errors.append("%s %+.1f%%" % (fn, (ratio - 1) * 100))
        if not 0.8 <= ratio <= 1.2:
            fail(name, "%s estimated %d bytes, leaked %d (%.0f%%)" % (fn, s["est_bytes"], truth[fn],
                                                                    ratio * 100))
            return path
        frame = s["frames"][0]
        if not frame.get("file", "").endswith("tests/report/leak3.c") or not frame.get("line"):
            fail(name, "%s's frame has no source line: %s" % (fn, frame))
            return path
    ok(name + " (" + ", ".join(errors) + ")")

    name = "leak3: text names the functions with file:line"
    rc, out, err = report(path)
    lines = out.splitlines()
    want = [r"^membudget: pid \d+ \(leak3\) exceeded its memory budget: footprint .* >= limit 64 MiB \(MEMBUDGET_LIMIT=64M\)$",
            r"^Limit 64 MiB: MEMBUDGET_LIMIT=64M$", r"^Footprint ", r"^Policy strict-synchronous",
            r"^  #1 .*", r"^       leak_60  .*tests/report/leak3\.c:\d+$",
            r"^       leak_30  .*tests/report/leak3\.c:\d+$", r"^       leak_10  .*tests/report/leak3\.c:\d+$"]
    missing = [w for w in want if not any(re.search(w, l) for l in lines)]
    if rc != 0 or missing:
        fail(name, "exit %s; missing %s" % (rc, missing), out)
    elif len(lines) > 60:
        fail(name, "%d lines: more than one screen" % len(lines), out)
    else:
        ok(name)

    name = "leak3: folded stacks, outermost frame first"
    rc, out, err = report("--folded", path)
    first = out.splitlines()[0] if out else ""
    m = re.match(r"^(.+) (\d+)$", first)
    top_bytes = r["sites"][0]["est_bytes"]
    if rc != 0 or not m or not m.group(1).endswith(";worker;leak_60") or int(m.group(2)) != top_bytes:
        fail(name, "first line %r (est_bytes %d)" % (first, top_bytes), err)
    elif not all(re.match(r"^\S.* \d+$", l) for l in out.splitlines()):
        fail(name, "a line is not 'frames bytes'", out)
    else:
        ok(name)

    name = "leak3: modules carry build-ids that match their files"
    mods = [m for m in r["modules"] if m["path"].startswith("/")]
    exe = [m for m in mods if m["path"] == os.path.join(BIN, "leak3")]
    bad = [m for m in mods if m["symbols"] != "read"]
    if not exe or not exe[0]["build_id"] or bad or not any("libc.so" in m["path"] for m in mods):
        fail(name, "executable %s; not read: %s" % (exe, [(m["path"], m["symbols"]) for m in bad]))
    else:
        ok(name + " (%d modules)" % len(mods))

    name = "leak3: timeline and policy history in the report"
    ticks, events = r["timeline"], r["policy"]["events"]
    kinds = [e["kind"] for e in events]
    if not ticks or "kill" not in kinds or ticks[-1]["time_ns"] > r["uptime_ns"]:
        fail(name, "%d ticks, events %s" % (len(ticks), kinds))
    else:
        ok(name)
    return path


# ---- python3 -------------------------------------------------------------------------

PY_LEAK = """
def hoard():
    keep = []
    while True:
        keep.append(bytearray(200_000))

hoard()
"""
# The C functions of CPython's allocation path for bytearray(n) and its growth.
PY_FRAMES = {"PyByteArray_Resize", "bytearray___init__", "bytearray___init___impl",
             "bytearray_iconcat", "list_resize", "app1", "_PyList_AppendTakeRef"}


def check_python():
    python = shutil.which("python3")
    name = "python3: the top site is the interpreter's bytearray allocation path"
    script = os.path.join(tmp, "hoard.py")
    with open(script, "w") as f:
        f.write(PY_LEAK)
    got = die_under_budget("python3", [python, script],
                           {"MEMBUDGET_LIMIT": "64M", "PYTHONMALLOC": "malloc"})
    if got is None:
        return
    r = report_json(got[0])
    if not r["sites"]:
        return fail(name, "no sites")
    top = r["sites"][0]
    names = [f.get("function") for f in top["frames"]]
    if not PY_FRAMES & set(names):
        return fail(name, "top site (%.0f%%) frames: %s" % (top["share"] * 100, names))
    if top["share"] < 0.5:
        return fail(name, "top site holds only %.0f%% of the estimate" % (top["share"] * 100))
    ok(name + " (%s, %.0f%%)" % (next(n for n in names if n in PY_FRAMES), top["share"] * 100))


# ---- the dump when locks are held ----------------------------------------------------

def check_hold(mode):
    who = "the dying thread" if mode == "same" else "another thread"
    name = "dump complete while %s holds allocator and sample locks" % who
    rc, out, _ = run([os.path.join(BIN, "hold"), "same"], clean_env({"MEMBUDGET_LIMIT": "32M"}, LIB))
    if rc != 77:
        return fail(name, "the release library has a debug hook? exit %s" % rc, out)
    got = die_under_budget("hold-" + mode, [os.path.join(BIN, "hold"), mode],
                           {"MEMBUDGET_LIMIT": "32M"}, lib=DEBUG_LIB)
    if got is None:
        return
    with open(got[0]) as f:
        d = json.load(f)
    problems = []
    for key in ("limit", "footprint", "policy", "size_classes", "timeline", "sampling", "sites", "modules"):
        if key not in d:
            problems.append("no " + key)
    recorded = [s for s in d.get("sites", []) if s["frames"]]
    if not recorded:
        problems.append("no site with frames")
    if not any("libc.so" in m["path"] and m["build_id"] for m in d.get("modules", [])):
        problems.append("no libc module with a build-id")
    if not d.get("timeline", {}).get("ticks"):
        problems.append("no timeline tick")
    if d.get("footprint", {}).get("meta_bytes", 0) == 0:
        problems.append("no metadata figure")
    if problems:
        return fail(name, ", ".join(problems))
    rc, out, err = report(got[0])
    if rc != 0 or "grow_block" not in out:
        return fail(name, "report exit %s, grow_block not in the text" % rc, out + err)
    ok(name)


# ---- numbers every reader can read ------------------------------------------------------

INT64_MAX = (1 << 63) - 1

# Requests no machine can grant, each refused with ENOMEM (MemoryError), then a
# dump: the peak is what the process held, and every integer of the dump fits
# an int64, the reader's (jansson's json_int_t).
HUGE_REQUESTS = """
import ctypes, sys
lib = ctypes.CDLL(None)
lib.malloc.restype = ctypes.c_void_p
lib.malloc.argtypes = [ctypes.c_size_t]
lib.calloc.restype = ctypes.c_void_p
lib.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
lib.membudget_set_limit.argtypes = [ctypes.c_size_t]
lib.membudget_dump.argtypes = [ctypes.c_char_p]
refused = [lib.malloc(2**63 - 1) is None, lib.malloc(2**62) is None,
           lib.malloc(2**48) is None, lib.calloc(2**31, 2**31) is None]
try:
    bytearray(10**15)
    refused.append(False)
except MemoryError:
    refused.append(True)
keep = bytearray(8 << 20)  # a peak of the process's own
print(refused, lib.membudget_set_limit(2**63), lib.membudget_set_limit(2**57),
      lib.membudget_dump(sys.argv[1].encode()))
"""


def integers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from integers(v)
    elif isinstance(value, list):
        for v in value:
            yield from integers(v)


def check_huge_requests():
    name = "refused huge requests leave the peak alone; the dump reads back"
    d = os.path.join(tmp, "huge")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "huge.json")
    env = clean_env({"PYTHONMALLOC": "malloc", "MEMBUDGET_VERBOSE": "1",
                     "MEMBUDGET_LIMIT": "256M"}, LIB)
    rc, out, err = run([sys.executable, "-c", HUGE_REQUESTS, path], env)
    if rc != 0 or out.strip() != "[True, True, True, True, True] -1 -1 0":
        return fail(name, "exit %s, stdout %r (expected every request refused, both limits "
                    "past 2^56 refused, the dump written)" % (rc, out), err)
    with open(path) as f:
        dump = json.load(f)
    peak = dump["footprint"]["counter_peak_bytes"]
    if not 8 << 20 <= peak < 1 << 30:
        return fail(name, "counter_peak_bytes %d: not what the process held" % peak)
    too_big = [v for v in integers(dump) if v > INT64_MAX or v < 0]
    if too_big:
        return fail(name, "integers an int64 reader refuses: %s" % too_big[:5])
    m = re.search(r"\(python3?[^)]*\) at exit: committed .*, peak [^(]+\((\d+)\)", err)
    if m is None or int(m.group(1)) >= 1 << 30:
        return fail(name, "the exit line's peak is not the process's", err)
    # Both front ends of the reader: membudget-report and `membudget report`.
    cli = os.path.join(os.path.dirname(TOOL), "membudget")
    tools = [[TOOL]] + ([[cli, "report"]] if os.path.exists(cli) else [])
    for tool in tools:
        for args in ([], ["--json"]):
            rc, out, err = run(tool + args + [path])
            if rc != 0:
                return fail(name, "%s exit %s" % (" ".join(tool + args), rc), err)
            if args:
                r = json.loads(out)
                if r.get("pid") != dump["pid"]:
                    return fail(name, "%s: pid %r" % (" ".join(tool + args), r.get("pid")))
            elif str(dump["pid"]) not in out:
                return fail(name, "%s: the text does not name pid %d" % (" ".join(tool), dump["pid"]))
    ok(name + " (peak %.1f MiB)" % (peak / (1 << 20)))


# ---- paths that are not ASCII -------------------------------------------------------------

def check_non_ascii_paths():
    """leak3 run from a directory named in UTF-8 (dé), and from one whose name
    is not UTF-8 (the byte 0xe9 alone): the dump is valid JSON for Python and
    for the reader (jansson), a UTF-8 path reads back as itself and its frames
    are symbolized, and the other path has its exact bytes in path_bytes."""
    # The long one (2 KB of two-byte characters) crosses the writer's buffer
    # flushes in the middle of a string.
    long_name = b"/".join([("\u00e9" * 100).encode()] * 10)
    for label, dirname in (("UTF-8", "d\u00e9".encode()), ("not UTF-8", b"d\xe9"),
                           ("long UTF-8", long_name)):
        utf8 = label != "not UTF-8"
        name = "leak3 in a directory whose name is %s: valid dump, exact path, symbolized" % label
        d = os.path.join(os.fsencode(tmp), b"paths", dirname)
        os.makedirs(d, exist_ok=True)
        exe = os.path.join(d, b"leak3")
        shutil.copy2(os.path.join(BIN, "leak3"), exe)
        got = die_under_budget("paths-" + label.replace(" ", "-"), [exe],
                               {"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_SAMPLE": "16K"})
        if got is None:
            continue
        path = got[0]
        with open(path, "rb") as f:
            raw = f.read()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            fail(name, "the dump is not UTF-8: %s" % e)
            continue
        dump = json.loads(raw)
        mods = [m for m in dump["modules"] if m["path"].endswith("/leak3")]
        if len(mods) != 1:
            fail(name, "modules ending in /leak3: %s" % [m["path"] for m in mods])
            continue
        m = mods[0]
        if utf8:
            if m["path"] != os.fsdecode(exe) or "path_bytes" in m:
                fail(name, "path %r (path_bytes %r), expected %r" % (
                    m["path"], m.get("path_bytes"), os.fsdecode(exe)))
                continue
        else:
            want = exe.decode("utf-8", errors="replace")
            if m["path"] != want or bytes.fromhex(m.get("path_bytes", "")) != exe:
                fail(name, "path %r, path_bytes %r, expected %r and %s" % (
                    m["path"], m.get("path_bytes"), want, exe.hex()))
                continue
            # Every other string of the dump is UTF-8: no _bytes member.
            others = [k for mod in dump["modules"] if mod is not m for k in mod if k.endswith("_bytes")]
            if others:
                fail(name, "_bytes members beside UTF-8 paths: %s" % others)
                continue
        try:
            r = report_json(path)  # jansson: refuses a document that is not UTF-8
        except (RuntimeError, ValueError) as e:
            fail(name, "the reader: %s" % e)
            continue
        top = sorted(site_function(s) or "?" for s in r["sites"][:3])
        symbolized = top == ["leak_10", "leak_30", "leak_60"]
        if utf8:
            if not symbolized:
                fail(name, "top sites %s; module %s" % (top, [
                    (x["path"], x.get("symbols")) for x in r["modules"] if x["path"].endswith("/leak3")]))
                continue
            ok(name)
        elif symbolized:
            ok(name)
        else:
            ok(name.replace(", symbolized", ""))
            skip("leak3 in a directory whose name is not UTF-8: symbolized",
                 "the reader does not open path_bytes yet (top sites %s)" % top)


# ---- realloc and free ----------------------------------------------------------------

def check_resample():
    name = "realloc in place replaces a sample; a moved span and a free end it"
    d = os.path.join(tmp, "resample")
    os.makedirs(d, exist_ok=True)
    rc, out, err = run([os.path.join(BIN, "resample"), d], clean_env({"MEMBUDGET_SAMPLE": "1"}, LIB))
    if rc != 0 or "in-place yes" not in out:
        return fail(name, "exit %s: %s" % (rc, out), err)
    names = ("site_a", "site_b", "realloc_c", "realloc_d", "site_e", "shrink_e")
    want = [{"site_a": (1, 1000), "site_b": (1, 3 << 20)},
            {"realloc_c": (1, 990), "realloc_d": (1, 64 << 20), "shrink_e": (1, 900)}, {}]
    for i, expected in enumerate(want, 1):
        r = report_json(os.path.join(d, "%d.json" % i))
        live = {}
        for s in r["sites"]:
            fn = site_function(s)
            if fn in names:
                live[fn] = (s["live_samples"], s["live_sampled_bytes"])
                if s["est_bytes"] < s["live_sampled_bytes"]:
                    return fail(name, "report %d: %s estimates %d bytes for %d sampled"
                                % (i, fn, s["est_bytes"], s["live_sampled_bytes"]))
        if live != expected:
            return fail(name, "report %d: live %s, expected %s" % (i, live, expected),
                        "stdout %r; %s" % (out.strip(), allocator_figures(raw_dump(d, i))))
    ok(name)

    if suite.BACKEND == "jemalloc":
        check_resample_unretained()

    name = "MEMBUDGET_SAMPLE=0: no sites, the report says sampling was off"
    d = os.path.join(tmp, "nosample")
    os.makedirs(d, exist_ok=True)
    rc, out, err = run([os.path.join(BIN, "resample"), d], clean_env({"MEMBUDGET_SAMPLE": "0"}, LIB))
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    if err.strip():
        return fail(name, "unexpected stderr", err)
    r = report_json(os.path.join(d, "1.json"))
    rc, text, _ = report(os.path.join(d, "1.json"))
    if r["sites"] or r["sampling"]["rate_bytes"] != 0 or "sampling was off" not in text:
        return fail(name, "%d sites, rate %s" % (len(r["sites"]), r["sampling"]["rate_bytes"]), text)
    ok(name)


# ---- C++ names, inlined frames, cut stacks -------------------------------------------

def check_cxx():
    name = "cxxnames: C++ names demangled, mangled kept in --json"
    d = os.path.join(tmp, "cxx")
    os.makedirs(d, exist_ok=True)
    rc, out, err = run([os.path.join(BIN, "cxxnames"), d], clean_env({"MEMBUDGET_SAMPLE": "1"}, LIB))
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    path = os.path.join(d, "cxx.json")
    r = report_json(path)
    grow = next((s for s in r["sites"]
                 if any(f.get("function") == "shapes::Grid<int>::grow(unsigned long)"
                        for f in s["frames"])), None)
    if grow is None:
        return fail(name, "no site with shapes::Grid<int>::grow(unsigned long)",
                    "\n".join(str([f.get("function") for f in s["frames"][:4]]) for s in r["sites"][:4]))
    frame = next(f for f in grow["frames"] if f.get("function", "").startswith("shapes::Grid"))
    new = next((f for f in grow["frames"] if f.get("function", "").startswith("operator new")), None)
    if frame.get("mangled") != "_ZN6shapes4GridIiE4growEm" or new is None or not new.get("mangled", "").startswith("_Zn"):
        return fail(name, "frames %s" % grow["frames"][:4])
    plain = [f for s in r["sites"] for f in s["frames"] if f.get("function") == "leak_plain"]
    if not plain or "mangled" in plain[0]:
        return fail(name, "leak_plain: %s" % plain[:1])
    ok(name)

    name = "cxxnames: an inlined call is a frame of its own, at its line, before its caller"
    names = [(f.get("function"), f.get("inlined", False), f.get("line")) for f in grow["frames"]]
    k = next((i for i, f in enumerate(grow["frames"]) if f.get("function") == "shapes::make_cells"), None)
    src = open(os.path.join(HERE, "cxxnames.cc")).read().splitlines()
    new_line = next(i + 1 for i, l in enumerate(src) if "new char[n]" in l and "p =" in l)
    call_line = next(i + 1 for i, l in enumerate(src) if "sink = make_cells(n)" in l)
    if (k is None or not grow["frames"][k].get("inlined") or grow["frames"][k].get("line") != new_line
            or grow["frames"][k + 1].get("function") != "shapes::Grid<int>::grow(unsigned long)"
            or grow["frames"][k + 1].get("inlined") or grow["frames"][k + 1].get("line") != call_line
            or grow["frames"][k]["address"] != grow["frames"][k + 1]["address"]):
        return fail(name, "frames %s (make_cells at %d, called at %d)" % (names[:5], new_line, call_line))
    ok(name)

    name = "cxxnames: text and --folded show the demangled names and the inlined frame"
    rc, text, err = report("--frames", "4", path)
    rc2, folded, err2 = report("--folded", path)
    want_text = [r"^       shapes::make_cells \(inlined\)  .*cxxnames\.cc:%d$" % new_line,
                 r"^       shapes::Grid<int>::grow\(unsigned long\)  .*cxxnames\.cc:%d$" % call_line,
                 r"^       operator new\(unsigned long\)"]
    missing = [w for w in want_text if not any(re.search(w, l) for l in text.splitlines())]
    if rc != 0 or missing or "_ZN6shapes" in text:
        return fail(name, "exit %s; missing %s" % (rc, missing), text)
    if rc2 != 0 or not re.search(r"^\S*;main;shapes::Grid<int>::grow\(unsigned long\);shapes::make_cells;operator new", folded, re.M) \
            or "_ZN" in folded:
        return fail(name, "exit %s" % rc2, folded + err2)
    ok(name)

    name = "cxxnames: a stack deeper than the writer keeps ends in a marked frame"
    max_frames = r["sampling"]["max_frames"]
    deep = [s for s in r["sites"] if s["frames"] and s["frames"][1].get("function") == "shapes::deep(int, unsigned long)"]
    short = [s for s in r["sites"] if s is not grow and s not in deep]
    mark = "[stack cut at %d frames]" % max_frames
    if (len(deep) != 1 or not deep[0].get("truncated") or len(deep[0]["frames"]) != max_frames
            or any(s.get("truncated") for s in r["sites"] if s not in deep)):
        return fail(name, "sites %s" % [(len(s["frames"]), s.get("truncated")) for s in r["sites"]])
    deep_line = next((l for l in folded.splitlines() if "shapes::deep" in l), "")
    if not deep_line.startswith(mark + ";shapes::deep(int, unsigned long);") or \
            not any(l.startswith("_start;") for l in folded.splitlines()):
        return fail(name, "folded line %r" % deep_line[:200])
    rc, text, _ = report("--frames", "0", path)
    if mark not in text or ", then the stack was cut" not in report(path)[1]:
        return fail(name, "no mark in the text", text)
    ok(name)
    return short


def check_symbol_boundaries():
    name = "symbols: an address inside a symbol nested in another's range takes the inner name"
    d = os.path.join(tmp, "twosyms")
    os.makedirs(d, exist_ok=True)
    rc, out, err = run([os.path.join(BIN, "twosyms"), d], clean_env({"MEMBUDGET_SAMPLE": "1"}, LIB))
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    r = report_json(os.path.join(d, "twosyms.json"))
    inner = [(f.get("function"), f.get("function_offset")) for s in r["sites"] for f in s["frames"][:1]]
    # Only the program's own sites: with every allocation sampled, the
    # library's thread start (the C library's calloc of its TLS) is one too.
    inner = [i for i in inner if i[0] in ("two_parts", "inner_part")]
    # The outer function's site first (it holds four times the bytes), then
    # the inner symbol's.
    if (len(inner) != 2 or inner[0][0] != "two_parts" or inner[1][0] != "inner_part"
            or not inner[0][1] > 0 or not inner[1][1] > 0):
        return fail(name, "innermost frames %s" % inner)
    ok(name + " (two_parts+%d, inner_part+%d)" % (inner[0][1], inner[1][1]))


def addr2line_frames(module, offset):
    """addr2line -i -f -C's frames for offset in module: (function, file's
    base name, line), innermost first; None when it cannot be run."""
    try:
        p = subprocess.run(["addr2line", "-i", "-f", "-C", "-e", module, "0x%x" % offset],
                           capture_output=True, text=True, timeout=TIMEOUT)
    except FileNotFoundError:
        return None
    lines = p.stdout.splitlines()
    frames = []
    for fn, where in zip(lines[0::2], lines[1::2]):
        where = where.split(" (discriminator")[0]
        path, _, line = where.rpartition(":")
        frames.append((fn, os.path.basename(path), int(line) if line.isdigit() else 0))
    return frames


def check_inline3():
    name = "inline3: calls inlined in one another, each a frame, as addr2line -i lists them"
    d = os.path.join(tmp, "inline3")
    os.makedirs(d, exist_ok=True)
    prog = os.path.join(BIN, "inline3")
    rc, out, err = run([prog, d], clean_env({"MEMBUDGET_SAMPLE": "1"}, LIB))
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    path = os.path.join(d, "inline3.json")
    r = report_json(path)
    frames = r["sites"][0]["frames"] if r["sites"] else []
    k = next((i for i, f in enumerate(frames) if f.get("function") == "chain"), None)
    if k is None:
        return fail(name, "no frame names chain: %s" % frames)
    address = frames[k]["address"]
    got = [(f.get("function"), os.path.basename(f.get("file", "")), f.get("line"))
           for f in frames[:k + 1] if f["address"] == address]
    marks = [bool(f.get("inlined")) for f in frames[:k + 1]]
    # A return address: the call is the byte before it.
    want = addr2line_frames(prog, int(frames[k]["offset"], 16) - 1)
    if want is None:
        return skip(name, "addr2line (binutils) not installed")
    names = [w[0] for w in want]
    if names != ["inner", "middle", "outer", "chain"]:
        return fail(name, "addr2line -i lists %s (the build did not inline the chain)" % want)
    if got != want or marks != [True, True, True, False]:
        return fail(name, "report %s (inlined %s), addr2line -i %s" % (got, marks, want))
    text = report("--frames", "0", path)[1]
    src = os.path.basename(want[0][1])
    for fn, _, line in want:
        mark = " (inlined)" if fn != "chain" else ""
        if not re.search(r"^ +%s%s  \S*%s:%d$" % (fn, re.escape(mark), re.escape(src), line),
                         text, re.M):
            return fail(name, "text has no line for %s%s at %s:%d" % (fn, mark, src, line), text)
    ok(name + " (%s)" % ", ".join("%s:%d" % (fn, line) for fn, _, line in want))


# The chain of inline3.c a second time, in a unit of its own.
DWZ_SECOND = """#define main inline3_second_main
#define chain chain_again
#include "%s"
"""


def check_dwz():
    name = "dwz: inlined calls whose definitions dwz moved to a partial unit, as addr2line -i lists them"
    if not shutil.which("dwz"):
        return skip(name, "dwz not installed")
    d = os.path.join(tmp, "dwz")
    os.makedirs(d, exist_ok=True)
    second, plain, prog = (os.path.join(d, n) for n in ("second.c", "plain", "inline3-dwz"))
    with open(second, "w") as f:
        f.write(DWZ_SECOND % os.path.join(HERE, "inline3.c"))
    flags = ["-std=c11", "-O2", "-g", "-fno-omit-frame-pointer"]
    steps = [["cc"] + flags + ["-c", os.path.join(HERE, "inline3.c"), "-o", plain + "1.o"],
             ["cc"] + flags + ["-c", second, "-o", plain + "2.o"],
             ["cc", plain + "1.o", plain + "2.o", "-o", plain, "-ldl"],
             ["cp", plain, prog], ["dwz", prog], ["readelf", "--debug-dump=info", prog]]
    for cmd in steps:
        rc, out, err = run(cmd)
        if rc != 0:
            return fail(name, "%s: exit %s" % (cmd[0], rc), err)
    if "DW_TAG_imported_unit" not in out:
        return skip(name, "dwz made no partial unit of the two units")
    rc, out, err = run([prog, d], clean_env({"MEMBUDGET_SAMPLE": "1"}, LIB))
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    r = report_json(os.path.join(d, "inline3.json"))
    frames = r["sites"][0]["frames"] if r["sites"] else []
    k = next((i for i, f in enumerate(frames) if f.get("function") == "chain"), None)
    if k is None:
        return fail(name, "no frame names chain: %s" % frames)
    got = [(f.get("function"), os.path.basename(f.get("file", "")), f.get("line"))
           for f in frames[:k + 1]]
    # dwz rewrites the DWARF only: the code and its addresses are the same.
    want = addr2line_frames(plain, int(frames[k]["offset"], 16) - 1)
    if want is None:
        return skip(name, "addr2line (binutils) not installed")
    if [w[0] for w in want] != ["inner", "middle", "outer", "chain"] or got != want:
        return fail(name, "report %s, addr2line -i (before dwz) %s" % (got, want))
    ok(name + " (%s)" % ", ".join("%s:%d" % (fn, line) for fn, _, line in want))


LTO_PYTHON = "/usr/bin/python3.11"
LTO_WORKLOAD = r"""
import ctypes, json, re, sys
keep = []
for i in range(200):
    keep.append({"k%d" % j: [j, str(j) * 8, (j, i)] for j in range(32)})
    keep.append(json.loads(json.dumps(keep[-1])))
    keep.append(re.compile(r"(\w+)-%d-(\d+)" % i))
    keep.append(compile("def f%d(x):\n    return [x * k for k in range(%d)]\n" % (i, i),
                        "<gen>", "exec"))
if ctypes.CDLL(None).membudget_dump(sys.argv[1].encode()) != 0:
    sys.exit("membudget_dump failed")
"""
LTO_ADDRESSES = 300


def frame_runs(frames, module):
    """The frames of each distinct return address in module: its inlined
    calls and the function after them, first met; {address: frames}."""
    runs, k = {}, 0
    while k < len(frames):
        j = k
        while j < len(frames) - 1 and frames[j].get("inlined") and \
                frames[j + 1]["address"] == frames[k]["address"]:
            j += 1
        if frames[k].get("module") == module:
            runs.setdefault(frames[k]["address"], frames[k:j + 1])
        k = j + 1
    return runs


def same_frames(got, want):
    """The report's frames against addr2line's: names (the function itself
    is the ELF symbol in the report, the DWARF's or the symbol's name in
    addr2line: compared without GCC's suffixes, .lto_priv.0, .constprop.1,
    .cold), base names of files ('??' and LTO's <artificial>, which addr2line
    prints where it cannot name the file, match any) and lines."""
    if len(got) != len(want):
        return False
    for k, ((gf, gfile, gline), (wf, wfile, wline)) in enumerate(zip(got, want)):
        if k == len(got) - 1:
            gf, wf = (gf or "").split(".")[0], wf.split(".")[0]
        if gf != wf or gline != wline or (gfile != wfile and wfile not in ("??", "<artificial>")):
            return False
    return True


def check_lto():
    name = "lto: Debian's python3.11 (link-time optimized): frames as addr2line -i lists them"
    if not os.path.exists(LTO_PYTHON) or not shutil.which("addr2line"):
        return skip(name, "%s or addr2line not installed" % LTO_PYTHON)
    d = os.path.join(tmp, "lto")
    os.makedirs(d, exist_ok=True)
    script, path = os.path.join(d, "work.py"), os.path.join(d, "python3.json")
    with open(script, "w") as f:
        f.write(LTO_WORKLOAD)
    rc, out, err = run([LTO_PYTHON, script, path],
                       clean_env({"MEMBUDGET_SAMPLE": "4K", "PYTHONMALLOC": "malloc"}, LIB))
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    r = report_json(path)
    if not any(m["path"] == LTO_PYTHON and m["symbols"] == "read" for m in r["modules"]):
        return skip(name, "no debug information for %s (python3.11-dbg)" % LTO_PYTHON)
    frames = [f for site in r["sites"] for f in site["frames"]]
    runs = frame_runs(frames, LTO_PYTHON)
    addrs = sorted(runs)[:LTO_ADDRESSES]
    if not addrs or not any(f.get("line") for a in addrs for f in runs[a]):
        return skip(name, "no line information for %s (python3.11-dbg)" % LTO_PYTHON)
    p = subprocess.run(["addr2line", "-a", "-i", "-f", "-e", LTO_PYTHON] +
                       ["0x%x" % (int(runs[a][0]["offset"], 16) - 1) for a in addrs],
                       capture_output=True, text=True, timeout=TIMEOUT)
    groups = []
    for line in p.stdout.splitlines():
        if re.match(r"^0x[0-9a-f]+$", line):
            groups.append([])
        elif groups:
            groups[-1].append(line)
    if p.returncode != 0 or len(groups) != len(addrs):
        return fail(name, "addr2line exit %s, %d answers" % (p.returncode, len(groups)), p.stderr)
    inlined = expected = 0
    for a, g in zip(addrs, groups):
        want = []
        for fn, where in zip(g[0::2], g[1::2]):
            file, _, line = where.split(" (discriminator")[0].rpartition(":")
            want.append((fn, os.path.basename(file), int(line) if line.isdigit() else 0))
        got = [(f.get("function"), os.path.basename(f.get("file", "")) or "??", f.get("line", 0))
               for f in runs[a]]
        inlined += len(got) - 1
        expected += len(want) - 1
        if not same_frames(got, want):
            return fail(name, "%s: report %s, addr2line -i %s" % (a, got, want))
    if expected == 0:
        return fail(name, "addr2line -i finds no inlined call at %d addresses" % len(addrs))
    ok(name + " (%d addresses, %d inlined frames)" % (len(addrs), inlined))


# ---- report --diff -------------------------------------------------------------------

def check_diff():
    name = "diff: the site that leaked between two reports comes first, with its growth"
    d = os.path.join(tmp, "diff")
    os.makedirs(d, exist_ok=True)
    rc, out, err = run([os.path.join(BIN, "grow"), d], clean_env({"MEMBUDGET_SAMPLE": "64K"}, LIB))
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    old, new = os.path.join(d, "old.json"), os.path.join(d, "new.json")
    rc, out, err = report("--diff", old, new, "--json")
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    j = json.loads(out)
    sites = j["sites"]
    top = [site_function(s) for s in sites]
    leaked = 128 * (64 << 10)
    first = sites[0] if sites else {}
    if (j.get("membudget_diff") != 1 or top[:1] != ["leak_between"] or first["old_est_bytes"] != 0
            or not 0.8 <= first["growth_bytes"] / leaked <= 1.2
            or first["growth_bytes"] != first["new_est_bytes"] - first["old_est_bytes"]):
        return fail(name, "sites %s" % [(site_function(s), s["growth_bytes"]) for s in sites])
    steady = [s for s in sites if site_function(s) == "keep_steady"]
    freed = [s for s in sites if site_function(s) == "freed_between"]
    if (len(steady) != 1 or steady[0]["growth_bytes"] != 0 or steady[0]["old_est_bytes"] == 0
            or len(freed) != 1 or freed[0]["new_est_bytes"] != 0 or top[-1] != "freed_between"):
        return fail(name, "sites %s" % [(site_function(s), s["growth_bytes"]) for s in sites])
    ok(name + " (+%d bytes estimated for %d leaked)" % (first["growth_bytes"], leaked))

    name = "diff: text and differential folded stacks"
    rc, text, err = report("--diff", old, new)
    lines = text.splitlines()
    k = next((i for i, l in enumerate(lines) if l.startswith("  #1 ")), None)
    if rc != 0 or k is None or "+" not in lines[k] or not lines[k + 1].startswith("       leak_between  ") \
            or "keep_steady" in text or "(1 site unchanged)" not in text:
        return fail(name, "exit %s" % rc, text + err)
    rc, folded, err = report("--diff", old, new, "--folded")
    fl = folded.splitlines()
    if rc != 0 or not fl or not re.match(r"^.*;main;leak_between 0 %d$" % first["new_est_bytes"], fl[0]) \
            or not all(re.match(r"^\S.* \d+ \d+$", l) for l in fl):
        return fail(name, "exit %s" % rc, folded + err)
    ok(name)

    name = "diff: a report against itself has no growth"
    rc, out, err = report("--diff", new, new, "--json")
    if rc != 0 or any(s["growth_bytes"] for s in json.loads(out)["sites"]):
        return fail(name, "exit %s" % rc, out + err)
    rc, text, err = report("--diff", new, new)
    if "none changed" not in text:
        return fail(name, "text", text)
    ok(name)

    name = "diff: bad arguments are one line and exit 2"
    cases = [(["--diff", old], 2, "NEW missing"), (["--diff", old, new, new], 2, "one NEW report"),
             (["--diff", old, new, "--svg", os.path.join(d, "x.svg")], 2, "not with --diff"),
             (["--diff", old, new, "--json", "--folded"], 2, "choose one"),
             (["--diff", os.path.join(d, "absent.json"), new], 1, "absent.json"),
             (["--diff", old, "--diff", old, new], 2, "twice")]
    for args, want_rc, want in cases:
        rc, out, err = report(*args)
        if rc != want_rc or want not in err or out:
            return fail(name, "%s: exit %s" % (args, rc), err)
    ok(name)


def check_allocator_kept(path):
    name = "allocator: --json keeps the dump's allocator section"
    if path is None:
        return skip(name, "no dump")
    raw = json.load(open(path))
    r = report_json(path)
    if "allocator" not in raw or r.get("allocator") != raw["allocator"]:
        return fail(name, "dump %s, report %s" % (raw.get("allocator"), r.get("allocator")))
    ok(name + " (backend %s)" % raw["allocator"].get("backend"))


def raw_dump(d, i):
    with open(os.path.join(d, "%d.json" % i)) as f:
        return json.load(f)


def allocator_figures(r):
    """The jemalloc figures of a dump that explain its accounting, as one line."""
    a, f = r.get("allocator", {}), r.get("footprint", {})
    return ("counter %d, jemalloc arenas %s (hooked %s), allocated %s, mapped %s, charged %s, "
            "metadata mapped %s resident %s" % (
                f.get("counter_bytes", 0), a.get("arenas"), a.get("arenas_hooked"),
                a.get("allocated_bytes"), a.get("mapped_bytes"), a.get("charged_bytes"),
                a.get("metadata_mapped_bytes"), a.get("metadata_resident_bytes")))


def check_resample_unretained():
    """The 64 MiB realloc of resample is served by jemalloc's huge arena,
    which that allocation creates.  With MALLOC_CONF retain:false jemalloc maps
    an arena's extents committed at once: the arena must have our hooks before
    its first extent, or the block is taken for metadata (not charged) and
    its decommit later uncharges what was never charged."""
    name = "jemalloc, retain:false: the block that creates an arena is charged, and uncharged once"
    d = os.path.join(tmp, "resample-unretained")
    os.makedirs(d, exist_ok=True)
    rc, out, err = run([os.path.join(BIN, "resample"), d],
                       clean_env({"MEMBUDGET_SAMPLE": "1", "MALLOC_CONF": "retain:false"}, LIB))
    if rc != 0:
        return fail(name, "exit %s: %s" % (rc, out), err)
    dumps = [raw_dump(d, i) for i in (1, 2, 3)]
    for i, r in enumerate(dumps, 1):
        a, counter = r["allocator"], r["footprint"]["counter_bytes"]
        if counter >= 1 << 63 or a["charged_bytes"] >= 1 << 63:
            return fail(name, "report %d: the counter wrapped below zero" % i, allocator_figures(r))
        if abs(a["charged_bytes"] + a["metadata_mapped_bytes"] - a["mapped_bytes"]) > 4096:
            return fail(name, "report %d: charged + metadata differ from jemalloc's mapped" % i,
                        allocator_figures(r))
    # Report 2 holds the live 64 MiB block: committed, so charged.
    if dumps[1]["allocator"]["charged_bytes"] < 64 << 20:
        return fail(name, "report 2: the live 64 MiB block is not charged", allocator_figures(dumps[1]))
    ok(name)


# ---- the SVG timeline ----------------------------------------------------------------

def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            if depth != 8 or color not in (2, 6):
                raise ValueError("PNG depth %d color %d" % (depth, color))
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def check_svg(dump):
    name = "svg: the timeline opens in headless Chromium and is not blank"
    if dump is None:
        return fail(name, "no dump from leak3")
    svg = os.path.join(tmp, "timeline.svg")
    rc, out, err = report("--svg", svg, dump)
    if rc != 0 or not out.startswith("membudget: pid"):
        return fail(name, "report --svg exit %s" % rc, err)
    try:
        root = ET.parse(svg).getroot()
    except ET.ParseError as e:
        return fail(name, "not well-formed XML: %s" % e)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for word in ("kill 64 MiB", "strict", "conservative"):
        if word not in texts:
            return fail(name, "no %r label" % word)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return skip(name, "chromium is not installed (scripts/deps.sh installs it)")
    png = os.path.join(tmp, "timeline.png")
    profile = tempfile.mkdtemp(prefix="mb-chromium.")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           "--user-data-dir=" + profile, "--window-size=960,440", "--screenshot=" + png,
           "file://" + svg]
    rc, out, err = run(cmd, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    if not os.path.exists(png):
        return fail(name, "no screenshot (exit %s)" % rc, err)
    width, height, bpp, rows = png_pixels(png)
    background = rows[0][:3]
    colors, differ = set(), 0
    for row in rows:
        for x in range(0, width * bpp, bpp):
            px = row[x:x + 3]
            colors.add(px)
            if px != background:
                differ += 1
    share = differ / float(width * height)
    # The plot's blue line must be there: the footprint's colour (#1f5fbf).
    blue = sum(1 for c in colors if c[2] > 150 and c[0] < 90 and c[1] < 140)
    if share < 0.05 or len(colors) < 8 or blue == 0:
        return fail(name, "%.1f%% of pixels differ from the background, %d colours, %d blue"
                    % (share * 100, len(colors), blue))
    ok(name + " (%dx%d, %.0f%% drawn, %d colours)" % (width, height, share * 100, len(colors)))


# ---- the HTML page -------------------------------------------------------------------

# Put first in the page's <head> by the test (not part of the page): records
# errors, then once the page is loaded finds the widest of leak3's three leaf
# frames, clicks it, and searches; the results go in <pre id="mbtest">.
HTML_PROBE = r"""<script>
window.__mb = {errors: []};
window.addEventListener('error', function (e) { __mb.errors.push(String(e.message)); });
(function () { var ce = console.error; console.error = function () {
  __mb.errors.push(Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); }; })();
window.addEventListener('load', function () { setTimeout(function () {
  var r = {errors: __mb.errors};
  function frames(re) { return Array.from(document.querySelectorAll('#fg .fr')).filter(
      function (e) { return re.test(e.dataset.name || ''); }); }
  r.boxes = document.querySelectorAll('#fg .fr').length;
  r.full = document.getElementById('fg').clientWidth;
  var leaves = frames(/^leak_(60|30|10)$/).map(function (e) {
      return [e.dataset.name, e.getBoundingClientRect().width, e]; });
  leaves.sort(function (a, b) { return b[1] - a[1]; });
  r.widths = leaves.map(function (l) { return [l[0], l[1]]; });
  r.largest = leaves.length ? leaves[0][0] : null;
  if (leaves.length) {
    leaves[0][2].dispatchEvent(new MouseEvent('click', {bubbles: true}));
    r.after = frames(new RegExp('^' + r.largest + '$')).map(function (e) {
        return e.getBoundingClientRect().width; });
    r.others_after = frames(/^leak_(60|30|10)$/).length - r.after.length;
  }
  document.getElementById('reset').click();
  var s = document.getElementById('search'); s.value = 'leak_30';
  s.dispatchEvent(new Event('input'));
  r.hits = document.querySelectorAll('#fg .fr.hit').length;
  r.status = document.getElementById('status').textContent;
  var pre = document.createElement('pre'); pre.id = 'mbtest'; pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
}, 0); });
</script>"""


def browse(html, name):
    """The page's DOM after its scripts ran, in headless Chromium, with HTML_PROBE
    put first in its head; (probe results or None, why)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None, "chromium is not installed (scripts/deps.sh installs it)"
    with open(html, encoding="utf-8") as f:
        page = f.read()
    probed = os.path.join(tmp, name + ".probed.html")
    with open(probed, "w", encoding="utf-8") as f:
        f.write(page.replace("<head>", "<head>" + HTML_PROBE, 1))
    profile = tempfile.mkdtemp(prefix="mb-chromium.")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           "--user-data-dir=" + profile, "--window-size=1200,900", "--virtual-time-budget=10000",
           "--dump-dom", "file://" + probed]
    rc, out, err = run(cmd, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    m = re.search(r'<pre id="mbtest">(.*?)</pre>', out, re.S)
    if m is None:
        return None, "no probe results (exit %s): %s" % (rc, err[-500:])
    import html as htmllib
    return json.loads(htmllib.unescape(m.group(1))), ""


def check_html(dump):
    name = "html: the page renders, its largest frame is leak_60, a click zooms into it"
    if dump is None:
        return fail(name, "no dump from leak3")
    page = os.path.join(tmp, "leak3.html")
    rc, out, err = report("--html", page, dump)
    if rc != 0 or not out.startswith("membudget: pid") or not os.path.exists(page):
        return fail(name, "report --html exit %s" % rc, err)
    text = open(page, encoding="utf-8").read()
    fetches = re.findall(r'(?:src|href)\s*=|@import|url\(|fetch\(|XMLHttpRequest', text)
    if fetches or "Content-Security-Policy" not in text:
        return fail(name, "the page may fetch: %s" % fetches[:5])
    for part in ("Allocator", "The limit and how it was derived", "<svg", "conservative"):
        if part not in text:
            return fail(name, "no %r in the page" % part)
    r, why = browse(page, "leak3")
    if r is None:
        return skip(name, why) if "not installed" in why else fail(name, why)
    w = dict((n, x) for n, x in r.get("widths", []))
    if r["errors"] or not r["boxes"] or r["largest"] != "leak_60" or len(w) != 3 \
            or not w["leak_60"] > w["leak_30"] > w["leak_10"]:
        return fail(name, "probe %s" % r)
    if not r.get("after") or r["after"][0] < 0.95 * r["full"] or r["others_after"] != 0:
        return fail(name, "the click did not zoom: %s" % r)
    if r["hits"] < 1 or not r["status"].startswith("matched "):
        return fail(name, "the search marked nothing: %s" % r)
    ok(name + " (%d frames drawn, leak_60 %.0f px of %d, then %.0f px)"
       % (r["boxes"], w["leak_60"], r["full"], r["after"][0]))

    name = "html: markup in the dump and in frame names stays text"
    d = golden_dump()
    d["reason"] = "<script>alert(1)</script>"
    d["comm"] = "</script><script>window.__pwned=1</script><!--<script>"
    d["limit"]["kill_source"] = "<img src=x onerror=alert(2)>"
    dump2 = write_dump("markup-html.json", d)
    page2 = os.path.join(tmp, "markup.html")
    rc, out, err = run([TOOL, "--no-symbols", "--html", page2, dump2], timeout=HOSTILE_TIMEOUT)
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    text = open(page2, encoding="utf-8").read()
    if "<script>alert" in text or "<img" in text or "window.__pwned=1</script>" in text \
            or text.count("<script") != 2:
        return fail(name, "markup from the dump in the page", text[:600])
    r, why = browse(page2, "markup")
    if r is None:
        return skip(name, why) if "not installed" in why else fail(name, why)
    if r["errors"] or not r["boxes"]:
        return fail(name, "probe %s" % r)
    ok(name)

    name = "html: bad arguments are one line and exit 2"
    for args, want in ((["--html"], "--html needs a value"), (["--html", "", dump], "needs a file name"),
                       (["--diff", dump, dump, "--html", page], "not with --diff")):
        rc, out, err = report(*args)
        if rc != 2 or want not in err or len(err.splitlines()) != 2:
            return fail(name, "%s: exit %s" % (args, rc), err)
    rc, out, err = report("--html", os.path.join(tmp, "no", "such", "dir.html"), dump)
    if rc != 1 or "cannot write" not in err:
        return fail(name, "unwritable path: exit %s" % rc, err)
    ok(name)


# ---- hostile dumps -------------------------------------------------------------------

HOSTILE_TIMEOUT = 60  # only turns a hang into a failure: these take well under a second


def golden_dump():
    with open(os.path.join(GOLDEN, "kill.json")) as f:
        return json.load(f)


def write_dump(name, d):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(d, f, separators=(",", ":"))
    return path


def module_dump(name, path, path_bytes=None):
    """The golden dump, its first module (which frames point into) at path."""
    d = golden_dump()
    d["modules"][0]["path"] = path
    d["modules"][0]["build_id"] = ""
    if path_bytes is not None:
        d["modules"][0]["path_bytes"] = path_bytes.hex()
    return write_dump(name, d)


def check_module_paths():
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    link = os.path.join(tmp, "link-to-fifo")
    os.symlink(fifo, link)
    # A FIFO whose name is not UTF-8: only path_bytes names it exactly.
    odd = os.path.join(tmp.encode(), b"fifo-\xff\xfe")
    os.mkfifo(odd)
    cases = [("a FIFO", fifo, None), ("/dev/zero", "/dev/zero", None),
             ("a symbolic link to a FIFO", link, None),
             ("a FIFO named by path_bytes", odd.decode(errors="replace"), odd)]
    for what, path, exact in cases:
        name = "hostile: a module path naming %s is not opened, and said so" % what
        dump = module_dump("module-%d.json" % cases.index((what, path, exact)), path, exact)
        rc, out, err = run([TOOL, dump], timeout=HOSTILE_TIMEOUT)
        if rc is None:
            fail(name, "report hung: " + err)
            continue
        line = next((l for l in out.splitlines() if l.startswith("Symbols:")), "")
        shown = path if exact is None else odd.decode(errors="replace")
        if rc != 0 or "not a regular file, not opened: " + shown not in line:
            fail(name, "exit %s, symbols line %r" % (rc, line), err)
            continue
        rc, out, err = run([TOOL, "--json", dump], timeout=HOSTILE_TIMEOUT)
        try:
            state = json.loads(out)["modules"][0]["symbols"]
        except (ValueError, KeyError, IndexError):
            state = None
        if rc != 0 or state != "not a regular file":
            fail(name, "--json: exit %s, symbols %r" % (rc, state), err)
            continue
        ok(name)

    name = "hostile: a dump that is a FIFO is refused with one line"
    rc, out, err = run([TOOL, fifo], timeout=HOSTILE_TIMEOUT)
    if rc != 1 or out or err.count("\n") != 1 or "not a regular file" not in err:
        fail(name, "exit %s, stderr %r" % (rc, err))
    else:
        ok(name)


def check_oversized():
    name = "hostile: a dump over 32 MiB is refused with one line, unread"
    d = golden_dump()
    path = os.path.join(tmp, "oversized.json")
    with open(path, "w") as f:
        text = json.dumps(d)
        f.write(text[:-1] + " " * ((32 << 20) + 1 - len(text)) + "}")
    rc, out, err = run([TOOL, path], timeout=HOSTILE_TIMEOUT)
    os.unlink(path)
    if rc != 1 or out or err.count("\n") != 1 or "larger than 32 MiB" not in err:
        return fail(name, "exit %s, stdout %d bytes, stderr %r" % (rc, len(out), err[:300]))
    ok(name)


def check_numbers():
    name = "hostile: a number past 2^63 loses that field, not the report"
    text = json.dumps(golden_dump())
    peak = '"counter_peak_bytes": %d' % golden_dump()["footprint"]["counter_peak_bytes"]
    if peak not in text:
        return fail(name, "the golden dump has no counter_peak_bytes")
    path = os.path.join(tmp, "huge-int.json")
    with open(path, "w") as f:
        f.write(text.replace(peak, '"counter_peak_bytes": 9223372036855189504'))
    rc, out, err = run([TOOL, path], timeout=HOSTILE_TIMEOUT)
    if rc != 0 or not out.startswith("membudget: pid 4242 (leaky) exceeded its memory budget"):
        return fail(name, "exit %s" % rc, err)
    if "note: footprint.counter_peak_bytes: 9.2233720368551895e+18 is out of range" not in out \
            or "peak counter 0 B" not in out or "#1   36.4 MiB" not in out:
        return fail(name, "no note, or the rest of the report is not there", out)
    rc, out, err = run([TOOL, "--json", path], timeout=HOSTILE_TIMEOUT)
    try:
        r = json.loads(out)
    except ValueError:
        return fail(name, "--json: exit %s, not JSON" % rc, err)
    if r["footprint"]["counter_peak_bytes"] is not None or \
            len(r["sites"]) != len(golden_dump()["sites"]) or \
            not any("counter_peak_bytes" in n for n in r.get("notes", [])):
        return fail(name, "--json: peak %r, %d sites, notes %r"
                    % (r["footprint"]["counter_peak_bytes"], len(r["sites"]), r.get("notes")))
    ok(name)


def svg_of(dump, name):
    svg = os.path.join(tmp, name + ".svg")
    rc, out, err = run([TOOL, "--svg", svg, dump], timeout=HOSTILE_TIMEOUT)
    size = os.path.getsize(svg) if os.path.exists(svg) else 0
    root = None
    if rc == 0 and size < (1 << 20):
        try:
            root = ET.parse(svg).getroot()
        except ET.ParseError:
            pass
    if os.path.exists(svg):
        os.unlink(svg)
    return rc, out, err, size, root


def check_svg_scale():
    d = golden_dump()
    d["footprint"]["bytes"] = 1.6e19
    huge = write_dump("footprint-1.6e19.json", d)
    d = golden_dump()
    top = (1 << 63) - 1
    d["footprint"]["bytes"] = d["limit"]["kill_bytes"] = d["limit"]["strict_sync_bytes"] = top
    d["uptime_ns"] = d["timeline"]["ticks"][0]["time_ns"] = top
    edge = write_dump("int64-max.json", d)
    for what, dump in (("a footprint of 1.6e19", huge), ("sizes and times of 2^63-1", edge)):
        name = "hostile: --svg with %s ends, with a picture of bounded size" % what
        rc, out, err, size, root = svg_of(dump, "scale")
        if rc is None:
            fail(name, "report --svg hung (%d bytes written)" % size)
        elif rc != 0 or root is None or size > 64 * 1024:
            fail(name, "exit %s, %d bytes, well-formed %s" % (rc, size, root is not None), err)
        else:
            ok(name + " (%d bytes)" % size)


def check_markup():
    name = "hostile: markup and escape sequences in the dump are escaped in the SVG and the text"
    d = golden_dump()
    d["reason"] = "<script>alert(1)</script>"
    d["comm"] = "<script>x</script>\x1b[31m\x9b2J"
    d["limit"]["kill_source"] = "\x1b]0;pwned\x07"
    d["policy"]["events"][0]["to"] = "</text><script>y</script>"
    dump = write_dump("markup.json", d)
    rc, out, err, size, root = svg_of(dump, "markup")
    if rc != 0 or root is None:
        return fail(name, "--svg: exit %s, %d bytes, not well-formed XML" % (rc, size), err)
    elements = {el.tag.split("}")[-1] for el in root.iter()}
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    if "script" in elements or "<script>alert(1)</script>" not in texts:
        return fail(name, "--svg: elements %s" % sorted(elements), texts[:300])
    rc, out, err = run([TOOL, dump], timeout=HOSTILE_TIMEOUT)
    first = out.splitlines()[0] if out else ""
    want = ("membudget: pid 4242 (<script>x</script>\\x1b[31m\\xc2\\x9b2J) exceeded its memory "
            "budget: footprint 64.1 MiB >= limit 64 MiB (\\x1b]0;pwned\\x07)")
    controls = [c for c in out if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
    if rc != 0 or first != want or controls:
        return fail(name, "text: exit %s, %d control characters" % (rc, len(controls)),
                    "got:      %s\nexpected: %s" % (first, want))
    if "</text><script>y</script>" not in out:
        return fail(name, "the event's policy is not in the text", out)
    ok(name)


EVIL_C = """
__attribute__((noinline)) void *evil(void) { static char x; __asm__ volatile("" ::: "memory"); return &x; }
int main(void) { return evil() == 0; }
"""


def check_symbol_names():
    name = "hostile: escape sequences in a module's symbol names are escaped (text, --folded, --json)"
    d = os.path.join(tmp, "evil")
    os.makedirs(d, exist_ok=True)
    src, obj, renamed, exe = (os.path.join(d, n) for n in ("evil.c", "evil.o", "evil2.o", "evil"))
    with open(src, "w") as f:
        f.write(EVIL_C)
    symbol = "ev\x1b[2Jil;x"
    steps = [["cc", "-O1", "-fno-pie", "-c", src, "-o", obj],
             ["objcopy", "--redefine-sym", "evil=" + symbol, obj, renamed],
             ["cc", "-no-pie", "-Wl,--build-id", renamed, "-o", exe], ["nm", exe]]
    for cmd in steps:
        rc, out, err = run(cmd)
        if rc != 0:
            return fail(name, "%s: exit %s" % (cmd[0], rc), err)
    address = next((int(l.split()[0], 16) for l in out.splitlines() if l.endswith(" " + symbol)), None)
    if address is None:
        return fail(name, "no renamed symbol in the program", out)
    dump = golden_dump()
    dump["modules"] = [{"path": exe, "base": "0x0", "start": "0x400000", "end": "0x500000",
                        "build_id": ""}]
    dump["sites"] = [{"est_bytes": 4096, "est_objects": 1, "live_samples": 1,
                      "live_sampled_bytes": 4096, "total_samples": 1,
                      "frames": ["0x%x" % (address + 2)]}]
    path = write_dump("evil.json", dump)
    shown = "ev\\x1b[2Jil;x"
    rc, out, err = run([TOOL, path], timeout=HOSTILE_TIMEOUT)
    if rc != 0 or ("       " + shown) not in out or "\x1b" in out:
        return fail(name, "text: exit %s" % rc, out + err)
    rc, out, err = run([TOOL, "--folded", path], timeout=HOSTILE_TIMEOUT)
    if rc != 0 or out != "ev\\x1b[2Jil:x 4096\n":
        return fail(name, "--folded: exit %s, %r" % (rc, out), err)
    rc, out, err = run([TOOL, "--json", path], timeout=HOSTILE_TIMEOUT)
    try:
        frame = json.loads(out)["sites"][0]["frames"][0]
    except (ValueError, KeyError, IndexError):
        return fail(name, "--json: exit %s" % rc, out + err)
    if frame.get("function") != symbol or "\x1b" in out:
        return fail(name, "--json: function %r" % frame.get("function"))
    ok(name)


def check_altlink():
    name = ("hostile: a module whose DWARF refers to an alternate debug file (dwz) that is a "
            "FIFO is named from its symbols, without reading its lines")
    d = os.path.join(tmp, "altlink")
    os.makedirs(d, exist_ok=True)
    src, asm, obj, linked, exe = (os.path.join(d, n) for n in
                                  ("alt.c", "alt.s", "alt.o", "alt-linked", "alt"))
    fifo = os.path.join(d, "alt.debug")
    os.mkfifo(fifo)
    with open(src, "w") as f:
        f.write(EVIL_C)
    rc, out, err = run(["cc", "-O1", "-g", "-gdwarf-4", "-dA", "-fno-pie", "-S", src, "-o", asm])
    if rc != 0:
        return fail(name, "cc -S: exit %s" % rc, err)
    # The compilation unit's directory becomes a string of the alternate file
    # (DW_FORM_GNU_strp_alt, the same 4-byte offset): reading the unit's lines
    # makes libdw open the file .gnu_debugaltlink names.
    with open(asm) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines[:-1]):
        if "(DW_AT_comp_dir)" in line and "(DW_FORM_strp)" in lines[i + 1]:
            lines[i + 1] = "\t.uleb128 0x1f21"
            break
    else:
        return fail(name, "no DW_AT_comp_dir of form DW_FORM_strp in the assembly")
    with open(asm, "w") as f:
        f.write("\n".join(lines))
    section = os.path.join(d, "altlink.bin")
    with open(section, "wb") as f:
        f.write(fifo.encode() + b"\0" + bytes(range(1, 21)))
    steps = [["cc", "-c", asm, "-o", obj], ["cc", "-no-pie", "-Wl,--build-id", obj, "-o", linked],
             ["objcopy", "--add-section", ".gnu_debugaltlink=" + section, linked, exe], ["nm", exe]]
    for cmd in steps:
        rc, out, err = run(cmd)
        if rc != 0:
            return fail(name, "%s: exit %s" % (cmd[0], rc), err)
    address = next((int(l.split()[0], 16) for l in out.splitlines() if l.endswith(" T evil")), None)
    if address is None:
        return fail(name, "no symbol evil in the program", out)
    dump = golden_dump()
    dump["modules"] = [{"path": exe, "base": "0x0", "start": "0x400000", "end": "0x500000",
                        "build_id": ""}]
    dump["sites"] = [{"est_bytes": 4096, "frames": ["0x%x" % (address + 2)]}]
    path = write_dump("altlink.json", dump)
    rc, out, err = run([TOOL, "--json", path], timeout=HOSTILE_TIMEOUT)
    if rc is None:
        return fail(name, "report hung")
    try:
        frame = json.loads(out)["sites"][0]["frames"][0]
    except (ValueError, KeyError, IndexError):
        return fail(name, "--json: exit %s" % rc, out + err)
    if frame.get("function") != "evil" or "file" in frame:
        return fail(name, "frame %s" % frame)
    ok(name)


FOLDED_SITES = 200000


def check_folded_scale():
    """Sites i and i + n/2 fold to the same line, which sums their bytes; each line
    shares 8 outer frames with every other (a long common prefix), so comparing
    every pair of lines takes minutes where sorting them takes a second."""
    name = "hostile: --folded over %d sites merges equal stacks, in the order of first sight" % FOLDED_SITES
    half = FOLDED_SITES // 2
    d = golden_dump()
    module = "/nonexistent/lib" + "x" * 40 + ".so"
    base = 0x10000
    d["modules"] = [{"path": module, "base": "0x%x" % base, "start": "0x%x" % base,
                     "end": "0x%x" % (base + (1 << 32)), "build_id": ""}]
    outer = [base + 0x100000 + k for k in range(8)]
    sites = []
    for i in range(FOLDED_SITES):
        j = i % half
        sites.append({"est_bytes": (10 ** 9 - j) if i < half else 1 + j,
                      "frames": [base + 16 * j + 1] + outer})
    d["sites"] = sites
    path = write_dump("sites-%d.json" % FOLDED_SITES, d)
    rc, out, err = run([TOOL, "--folded", "--no-symbols", path], timeout=HOSTILE_TIMEOUT)
    if rc is None:
        return fail(name, "did not finish in %d s" % HOSTILE_TIMEOUT)
    lines = out.splitlines()
    if rc != 0 or len(lines) != half:
        return fail(name, "exit %s, %d lines (expected %d)" % (rc, len(lines), half), err)
    leaf = os.path.basename(module)
    prefix = ";".join("%s+0x%x" % (leaf, a - base) for a in reversed(outer))
    for j in (0, 1, half // 2, half - 1):
        want = "%s;%s+0x%x %d" % (prefix, leaf, 16 * j + 1, (10 ** 9 - j) + (1 + j))
        if lines[j] != want:
            return fail(name, "line %d" % (j + 1), "got:      %s\nexpected: %s" % (lines[j], want))
    ok(name)


HTML_SITES = 10000
HTML_MAX_BYTES = 4 << 20   # docs/dump.md: the page of a 10,000-site report


def check_html_scale():
    """A report of 10,000 sites of 32 frames each (the writer's most), inner
    frames all distinct, outer ones shared: the page is under 4 MiB and draws
    in Chromium.  Its CPU time is printed, not asserted: how fast the page is
    written is `make bench-report`'s to show (bench/REPORT.md)."""
    name = "html: %d sites of 32 frames, a page under %d MiB that draws" % (
        HTML_SITES, HTML_MAX_BYTES >> 20)
    d = golden_dump()
    base = 0x10000
    d["modules"] = [{"path": "/nonexistent/libscale.so", "base": "0x%x" % base,
                     "start": "0x%x" % base, "end": "0x%x" % (base + (1 << 32)), "build_id": ""}]
    d["sampling"]["max_frames"] = 32
    sites = []
    for i in range(HTML_SITES):
        inner = [base + 0x1000000 + 64 * i + k for k in range(4)]
        middle = [base + 0x100000 + 16 * (i % 97) + k for k in range(12)]
        outer = [base + 0x10000 + k for k in range(16)]
        sites.append({"est_bytes": 1000 + i, "frames": ["0x%x" % a for a in inner + middle + outer]})
    d["sites"] = sites
    path = write_dump("html-%d.json" % HTML_SITES, d)
    page = os.path.join(tmp, "scale.html")
    before = os.times()
    rc, out, err = run([TOOL, "--no-symbols", "--html", page, path], timeout=HOSTILE_TIMEOUT)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if rc != 0:
        return fail(name, "exit %s" % rc, err)
    size = os.path.getsize(page)
    if size > HTML_MAX_BYTES:
        return fail(name, "%d bytes" % size)
    r, why = browse(page, "scale")
    if r is None:
        return skip(name, why) if "not installed" in why else fail(name, why)
    if r["errors"] or not r["boxes"]:
        return fail(name, "probe %s" % r)
    ok(name + " (%.2f s of CPU, %.2f MiB, %d frames drawn)" % (cpu, size / 1048576.0, r["boxes"]))


def check_hostile():
    check_module_paths()
    check_oversized()
    check_numbers()
    check_svg_scale()
    check_markup()
    check_symbol_names()
    check_altlink()
    check_folded_scale()
    check_html_scale()


def main():
    check_golden()
    check_bad_input()
    dump = check_leak3()
    check_allocator_kept(dump)
    check_python()
    check_hold("same")
    check_hold("other")
    check_resample()
    check_cxx()
    check_symbol_boundaries()
    check_inline3()
    check_dwz()
    check_lto()
    check_diff()
    check_huge_requests()
    check_non_ascii_paths()
    check_svg(dump)
    check_html(dump)
    check_hostile()
    shutil.rmtree(tmp, ignore_errors=True)
    print(results.summary())
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
