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


def main():
    check_golden()
    check_bad_input()
    dump = check_leak3()
    check_python()
    check_hold("same")
    check_hold("other")
    check_resample()
    check_svg(dump)
    shutil.rmtree(tmp, ignore_errors=True)
    print(results.summary())
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
