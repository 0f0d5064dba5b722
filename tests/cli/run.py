#!/usr/bin/env python3
"""The membudget command (issue 6, DESIGN §9): golden outputs of `limits` on
fake /proc and cgroup trees; `run` exit codes and environment; `stat`,
`top --once` and `top` in tmux on live processes; the sampled top site in
`stat` (text, --json, --prometheus) and `top` (a process with a known dominant
site, sampling off, a page of an older writer); the live-statistics pages
(mode 0600, unreadable by `nobody`, removed at exit, stale ones cleaned, a fork
child's own page); `stat --all` (text, --json, one --prometheus exposition
checked with prometheus_client's parser) and figures marked stale; one-line errors with exit 2 for bad arguments; `make install`
into a temporary DESTDIR, the example built against membudget.pc; the man pages
against the options table and the header.

Usage: run.py BUILD_ROOT [--update]   (BUILD_ROOT holds membudget,
libmembudget.so, debug/libmembudget.so and tests/cli/live; --update rewrites
the golden files of tests/cli/golden from the current output, to be reviewed
with git diff).  Prints "ok NAME", "skip NAME: reason" or "FAIL NAME: reason"
per case, then "N passed, N failed[, N skipped]"."""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import suite  # noqa: E402  (tests/suite.py)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.realpath(sys.argv[1])
UPDATE = "--update" in sys.argv[2:]
TOOL = os.path.join(BUILD, "membudget")
LIB = os.path.join(BUILD, "libmembudget.so")
DEBUG_LIB = os.path.join(BUILD, "debug", "libmembudget.so")
LIVE = os.path.join(BUILD, "tests", "cli", "live")
GOLDEN = os.path.join(HERE, "golden")
SHM = "/dev/shm"
TIMEOUT = 30
MIB = 1 << 20

results = suite.Results(12)
ok, skip, fail = results.ok, results.skip, results.fail
tmp = tempfile.mkdtemp(prefix="mb-cli.")
os.chmod(tmp, 0o755)
children = []  # processes to stop at the end, whatever happens


check = results.check


def clean_env(extra=None):
    return suite.environment(extra)


def tool(*args, env=None, timeout=TIMEOUT, prefix=()):
    return subprocess.run(list(prefix) + [TOOL] + list(args), capture_output=True, text=True,
                          env=env if env is not None else clean_env(), timeout=timeout)


def page_path(pid):
    """The page of pid, one of our processes: in our per-user directory."""
    return "%s/membudget-%d/%d" % (SHM, os.geteuid(), pid)


def page_dir_ready():
    """Our per-user directory, made as the library makes it, for pages
    written here."""
    path = "%s/membudget-%d" % (SHM, os.geteuid())
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def page_ready(pid):
    """The process's own page can be read (a file of the same name may be the
    stale page of an earlier process that had this pid)."""
    return tool("stat", str(pid)).returncode == 0 and os.path.exists(page_path(pid))


def wait_for(pred, seconds=5.0, step=0.05):
    end = time.time() + seconds
    while time.time() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


def start_live(step_kib, interval_ms, max_mib, *extra, via_run=True, env_extra=None,
               run_args=("--limit", "256M"), program=LIVE):
    """Starts tests/cli/live (under `membudget run`, or preloaded directly;
    program: a copy of it under another name); returns (Popen, pid of live)."""
    args = [program, str(step_kib), str(interval_ms), str(max_mib)] + list(extra)
    if via_run:
        args = [TOOL, "run"] + list(run_args) + ["--"] + args
        env = clean_env(env_extra)
    else:
        env = clean_env(dict(env_extra or {}, LD_PRELOAD=LIB))
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    children.append(p)
    p.announced = {}
    if "ready" not in read_announcements(p, ("ready",)):
        raise RuntimeError("live did not start: %r" % p.announced)
    return p, p.announced["ready"]


def read_announcements(p, labels, seconds=10.0):
    """Reads "LABEL PID" lines of a live process, in whatever order they come,
    until every label is seen or the time is up; returns {label: pid}."""
    import select
    fd = p.stdout.fileno()
    buf = getattr(p, "pending", b"")
    end = time.time() + seconds
    while not all(l in p.announced for l in labels):
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            m = re.match(r"(\w+) (\d+)$", line.decode().strip())
            if m:
                p.announced[m.group(1)] = int(m.group(2))
        if all(l in p.announced for l in labels) or time.time() >= end:
            break
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            break
        buf += chunk
    p.pending = buf
    return p.announced


def stop(p, pid=None, sig=signal.SIGTERM):
    try:
        os.kill(pid if pid is not None else p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def one_line_error(name, result, *needles):
    lines = result.stderr.splitlines()
    good = (result.returncode == 2 and len(lines) == 1 and result.stdout == "" and
            all(n in lines[0] for n in needles))
    check(name, good, "want exit 2 and one line naming %s; got exit %d" % (needles, result.returncode),
          result.stderr + result.stdout)


# ---- version, help, bad arguments -------------------------------------------------

def version():
    with open(os.path.join(REPO, "include", "membudget.h")) as f:
        want = re.search(r'#define MEMBUDGET_VERSION "([^"]+)"', f.read()).group(1)
    r = tool("--version")
    check("version", r.returncode == 0 and r.stdout == "membudget %s\n" % want,
          "want 'membudget %s'" % want, r.stdout + r.stderr)


def help_texts():
    for sub in ("run", "limits", "stat", "top", "report"):
        r = tool(sub, "--help")
        good = r.returncode == 0 and r.stdout.startswith("usage: membudget " + sub)
        check("help " + sub, good, "exit %d" % r.returncode, r.stdout[:300] + r.stderr)
    r = tool("help", "top")
    check("help top (as a command)", r.returncode == 0 and "usage: membudget top" in r.stdout,
          "exit %d" % r.returncode, r.stdout + r.stderr)
    r = tool("--help")
    check("help", r.returncode == 0 and all(s in r.stdout for s in
                                            ("run", "limits", "stat", "top", "report")),
          "exit %d" % r.returncode, r.stdout)
    r = tool("run", "--help")
    check("run --help says each process has its own budget",
          "budget is per process" in r.stdout and "inherits" in r.stdout, "not said", r.stdout)
    check("run --help names the status of a command the library did not start in (122)",
          "122 the library did not or could not start in CMD" in r.stdout and
          "--start-timeout" in r.stdout, "not said", r.stdout)


BAD_ARGUMENTS = [
    ((), ("no command",)),
    (("frob",), ("'frob'", "run, limits")),
    (("run",), ("no command given", "--limit L")),
    (("run", "--limit", "12Q", "--", "true"), ("--limit", "'12Q'", "512M")),
    (("run", "--action", "explode", "true"), ("--action", "abort, fail or warn")),
    (("run", "--pages", "0", "true"), ("--pages", "'0'", "whole number")),
    (("run", "--state", "sleepy", "true"), ("--state", "active or inactive")),
    (("run", "--sample", "lots", "true"), ("--sample", "512K")),
    (("run", "--report", "/tmp/x%q", "true"), ("--report", "%p")),
    (("run", "--frob", "--", "true"), ("'--frob'", "--limit L")),
    (("run", "--limit"), ("'--limit'", "needs a value")),
    (("run", "--library", "/nonexistent/lib.so", "true"), ("--library", "libmembudget.so")),
    (("run", "--start-timeout", "0", "true"), ("--start-timeout", "'0'", "0.1 to 3600")),
    (("limits", "--pages", "0"), ("--pages", "whole number")),
    (("limits", "--model", "foo"), ("--model", "webkit or webkit-legacy")),
    (("limits", "--root", "/nonexistent"), ("--root", "directory")),
    (("limits", "extra"), ("'extra'", "--json")),
    (("limits", "--json=3"), ("'--json'", "takes no value")),
    (("stat",), ("no PID", "PID, --prometheus")),
    (("stat", "abc"), ("'abc'", "process id")),
    (("stat", "0"), ("'0'", "process id")),
    (("stat", "1", "2"), ("'2'", "PID")),
    (("stat", "--frob", "1"), ("'--frob'", "--prometheus")),
    (("stat", "--json", "--prometheus", "1"), ("--prometheus", "--json", "exclude")),
    (("stat", "--all", "1"), ("--all", "'1'", "exclude")),
    (("stat", "--all", "--json", "--prometheus"), ("--prometheus", "--json", "exclude")),
    (("top", "-d", "0"), ("-d", "'0'", "0.1 to 3600")),
    (("top", "-d", "abc"), ("-d", "'abc'", "seconds")),
    (("top", "-n", "0"), ("-n", "'0'", "1 or more")),
    (("top", "--frob"), ("'--frob'", "--once")),
    (("top", "extra"), ("'extra'", "-d SECONDS")),
]


def bad_arguments():
    for args, needles in BAD_ARGUMENTS:
        one_line_error("bad arguments: membudget %s" % " ".join(args), tool(*args), *needles)


# ---- limits: golden outputs on fake trees ---------------------------------------

MEMINFO_24G = "MemTotal:       25165824 kB\nMemFree:        20000000 kB\n"
MEMINFO_8G = "MemTotal:        8388608 kB\nMemFree:         1000000 kB\n"
MOUNTS_BASE = ("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
               "25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n")
MOUNTS_V1 = MOUNTS_BASE + (
    "31 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup "
    "cgroup rw,memory\n")
MOUNTS_V2 = MOUNTS_BASE + (
    "30 25 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n")

TREE_V2 = {"proc/meminfo": MEMINFO_24G, "proc/self/mountinfo": MOUNTS_V2,
           "proc/self/cgroup": "0::/mb\n", "sys/fs/cgroup/mb/memory.max": "1048576000\n",
           "sys/fs/cgroup/mb/memory.current": "4096\n"}
TREE_V1 = {"proc/meminfo": MEMINFO_24G, "proc/self/mountinfo": MOUNTS_V1,
           "proc/self/cgroup": "12:memory:/mb\n1:name=systemd:/mb\n",
           "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
           "sys/fs/cgroup/memory/mb/memory.limit_in_bytes": "1048576000\n"}
TREE_NONE = {"proc/meminfo": MEMINFO_24G}
TREE_8G = {"proc/meminfo": MEMINFO_8G}

LIMITS_CASES = [
    # golden file, tree, options, environment
    ("limits-v2.txt", TREE_V2, [], {}),
    ("limits-v2.json", TREE_V2, ["--json"], {}),
    ("limits-v1-inactive-3-pages.txt", TREE_V1, ["--state", "inactive", "--pages", "3"], {}),
    ("limits-no-cgroup-legacy.txt", TREE_NONE, ["--model", "webkit-legacy"], {}),
    ("limits-8g-percent.txt", TREE_8G, [], {"MEMBUDGET_LIMIT": "80%"}),
    ("limits-limit-option.txt", TREE_NONE, ["--limit", "64M"], {"MEMBUDGET_LIMIT": "1G"}),
    ("limits-bad-order.txt", TREE_NONE, [],
     {"MEMBUDGET_CONSERVATIVE": "0.95", "MEMBUDGET_STRICT": "0.9"}),
    ("limits-bad-variable.txt", TREE_NONE, [], {"MEMBUDGET_PAGES": "many"}),
]


def build_tree(files):
    root = tempfile.mkdtemp(prefix="tree.", dir=tmp)
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)
    return root


def limits_golden():
    os.makedirs(GOLDEN, exist_ok=True)
    for name, files, options, env in LIMITS_CASES:
        root = build_tree(files)
        r = tool("limits", "--root", root, *options, env=clean_env(env))
        text = "".join("stderr: %s\n" % line for line in r.stderr.splitlines())
        text += r.stdout + "exit %d\n" % r.returncode
        text = text.replace(root, "ROOT")
        path = os.path.join(GOLDEN, name)
        if UPDATE:
            with open(path, "w") as f:
                f.write(text)
        try:
            with open(path) as f:
                want = f.read()
        except OSError as e:
            fail("limits golden " + name, str(e))
            continue
        if text == want:
            ok("limits golden " + name)
        else:
            import difflib
            diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                                "golden", "output"))
            fail("limits golden " + name, "output differs from tests/cli/golden/" + name, diff)
        if name.endswith(".json"):
            try:
                doc = json.loads(r.stdout)
                check("limits --json parses", doc["kill_bytes"] == 966367641 and
                      doc["cgroup_version"] == 2, "unexpected values", r.stdout)
            except ValueError as e:
                fail("limits --json parses", str(e), r.stdout)


def limits_here():
    """On this machine: the kill threshold is the one a preloaded process gets."""
    r = tool("limits", "--json")
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        fail("limits here", "no JSON", r.stdout + r.stderr)
        return
    p = subprocess.run(["true"], capture_output=True, text=True,
                       env=clean_env({"LD_PRELOAD": LIB, "MEMBUDGET_VERBOSE": "2"}))
    m = re.search(r"^kill threshold: .*\((\d+) bytes\)", p.stderr, re.M)
    check("limits here = what a preloaded process uses",
          m is not None and int(m.group(1)) == doc["kill_bytes"],
          "library says %s, limits says %s" % (m and m.group(1), doc["kill_bytes"]), p.stderr)
    r = tool("limits", "--state", "inactive", "--pages", "2")
    rows = [l.split()[0] for l in r.stdout.splitlines()]
    check("limits here: a table", r.returncode == 0 and len(rows) == 12 and
          "NAME" in rows and "ramSize" in rows, "exit %d" % r.returncode, r.stdout + r.stderr)


# ---- run --------------------------------------------------------------------------

def run_exit_codes():
    r = tool("run", "--", "true")
    check("run: normal exit 0", r.returncode == 0 and r.stderr == "", "exit %d" % r.returncode,
          r.stderr)
    r = tool("run", "sh", "-c", "exit 3")
    check("run: exit status passed on (3), no -- needed", r.returncode == 3,
          "exit %d" % r.returncode, r.stderr)
    r = tool("run", "--", "sh", "-c", "kill -TERM $$")
    check("run: killed by SIGTERM -> 143", r.returncode == 143, "exit %d" % r.returncode, r.stderr)
    r = tool("run", "--", "membudget-no-such-command")
    check("run: command not found -> 127, one line",
          r.returncode == 127 and r.stderr.strip().endswith("command not found") and
          len(r.stderr.splitlines()) == 1, "exit %d" % r.returncode, r.stderr)
    r = tool("run", "--", "/nonexistent/dir/cmd")
    check("run: no such file -> 127", r.returncode == 127, "exit %d" % r.returncode, r.stderr)
    plain = os.path.join(tmp, "not-executable")
    with open(plain, "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(plain, 0o644)
    r = tool("run", "--", plain)
    check("run: not executable -> 126", r.returncode == 126 and "Permission denied" in r.stderr,
          "exit %d" % r.returncode, r.stderr)
    leftovers = [d for d in os.listdir(tmp) if d.startswith("membudget-run.")]
    r = tool("run", "--", "true", env=clean_env({"TMPDIR": tmp}))
    check("run: the private report directory is removed when empty",
          [d for d in os.listdir(tmp) if d.startswith("membudget-run.")] == leftovers,
          "left: %s" % os.listdir(tmp))


def run_environment():
    other = "/lib/x86_64-linux-gnu/libdl.so.2"
    if not os.path.exists(other):
        other = os.path.realpath(LIB)  # any readable path serves to see it kept
    env = clean_env({"LD_PRELOAD": other + " " + DEBUG_LIB, "MEMBUDGET_VERBOSE": "0"})
    script = 'echo "$LD_PRELOAD|$MEMBUDGET_LIMIT|$MEMBUDGET_ACTION|$MEMBUDGET_STATE|' \
             '$MEMBUDGET_PAGES|$MEMBUDGET_SAMPLE|$MEMBUDGET_VERBOSE|$MEMBUDGET_REPORT"'
    r = tool("run", "--limit", "64M", "--action", "warn", "--state", "inactive", "--pages", "2",
             "--sample", "0", "--report", "rel/r.%p.json", "--", "sh", "-c", script, env=env)
    fields = r.stdout.strip().split("|")
    want_preload = os.path.realpath(LIB) + ":" + other
    good = (r.returncode == 0 and len(fields) == 8 and fields[0] == want_preload and
            fields[1:7] == ["64M", "warn", "inactive", "2", "0", "0"] and
            fields[7] == os.path.join(os.getcwd(), "rel/r.%p.json"))
    check("run: environment (library first, other entries kept, another copy dropped, "
          "variables set, report path absolute)", good, "got %r" % fields, r.stderr)
    r = tool("run", "--library", DEBUG_LIB, "--", "sh", "-c", 'echo "$LD_PRELOAD"')
    check("run --library", r.stdout.strip() == os.path.realpath(DEBUG_LIB), "got %r" % r.stdout,
          r.stderr)
    # The command itself runs without the library, even when started under it.
    r = tool("run", "--", "sh", "-c", 'grep -c libmembudget /proc/$PPID/maps || true',
             env=clean_env({"LD_PRELOAD": LIB}))
    check("run: membudget itself is not under the preload", r.stdout.strip() == "0",
          "its maps name the library %s times" % r.stdout.strip(), r.stderr)


def run_budget_death():
    report_tool = os.path.exists(os.path.join(BUILD, "membudget-report"))
    r = tool("run", "--limit", "32M", "--", LIVE, "1024", "0", "0",
             env=clean_env({"TMPDIR": tmp}))
    m = re.search(r"exceeded its memory budget: .*; report: (\S+\.json)", r.stderr)
    dump = m.group(1) if m else None
    good = r.returncode == 121 and dump is not None and os.path.exists(dump)
    check("run: budget death -> 121, the line and the report", good,
          "exit %d, report %s" % (r.returncode, dump), r.stderr)
    if not good:
        return
    with open(dump) as f:
        doc = json.load(f)
    check("run: the report is the process's", doc["reason"] == "kill" and
          os.path.dirname(dump).startswith(os.path.join(tmp, "membudget-run.")),
          "reason %s in %s" % (doc["reason"], dump))
    if report_tool:
        # The summary comes from the report tool: more than the library's line.
        extra = [l for l in r.stderr.splitlines() if "exceeded its memory budget" not in l]
        check("run: budget death prints the report's summary", len(extra) >= 3,
              "only %d more lines" % len(extra), r.stderr)
    else:
        check("run: without the report tool, the dump path and the death line",
              "no summary" in r.stderr and r.stderr.count(dump) >= 2, "missing", r.stderr)
    check("run: a death leaves no live-statistics page",
          not os.path.exists(page_path(doc["pid"])), "page of %d left" % doc["pid"])
    # A child dies; the command goes on (each process has its own budget).
    r = tool("run", "--limit", "32M", "--report", os.path.join(tmp, "child.%p.json"), "--", "sh",
             "-c", '"$0" 1024 0 0; echo "child status $?"', LIVE)
    reports = [f for f in os.listdir(tmp) if f.startswith("child.")]
    check("run: a child over its budget dies alone",
          r.returncode == 0 and "child status 134" in r.stdout and len(reports) == 1,
          "exit %d, reports %s" % (r.returncode, reports), r.stdout + r.stderr)
    # The report's name is taken (a file someone left there, or an older
    # process's dump): the library writes beside it, and run still finds the
    # process's own report for its summary.
    if report_tool:
        for kind in ("file", "older dump"):
            taken = os.path.join(tmp, "taken-%s.json" % kind.replace(" ", "-"))
            with open(taken, "w") as f:
                f.write("not a dump\n" if kind == "file" else '{\n  "pid": 1,\n  "reason": "kill"\n}\n')
            before = open(taken).read()
            r = tool("run", "--limit", "32M", "--report", taken, "--", LIVE, "1024", "0", "0",
                     env=clean_env({"TMPDIR": tmp}))
            m = re.search(r"exceeded its memory budget: .*; report: (\S+\.json)", r.stderr)
            written = m.group(1) if m else None
            extra = [l for l in r.stderr.splitlines() if "exceeded its memory budget" not in l]
            check("run: a report name already taken (%s): summary from the name written" % kind,
                  r.returncode == 121 and written not in (None, taken) and
                  os.path.exists(written) and open(taken).read() == before and len(extra) >= 3,
                  "exit %d, report %s, %d summary lines" % (r.returncode, written, len(extra)),
                  r.stderr)


# ---- run never runs a command without the library in silence ------------------------

UNBUDGETED = 122  # run's status when the library did not or could not start in CMD

HOG_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* Allocates and touches argv[1] MiB a MiB at a time, then says so. */
int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
    for (size_t i = 0; i < mib; i++) {
        char *p = malloc(1 << 20);
        if (p == NULL) return 3;
        memset(p, 1, 1 << 20);
    }
    printf("allocated %zu MiB\n", mib);
    return 0;
}
"""

OWN_MALLOC_C = r"""
#include <stddef.h>
#include <string.h>
#include <unistd.h>
/* A program with a malloc of its own, which wins over any preloaded one. */
static _Alignas(16) char arena[16 << 20];
static size_t used;
void *malloc(size_t n) {
    size_t *p = (size_t *)(arena + used);
    n = (n + 31) & ~(size_t)15;
    if (used + n > sizeof arena) return NULL;
    used += n;
    p[0] = n - 16;
    return (char *)p + 16;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) { return malloc(a * b); } /* the arena starts zeroed */
void *realloc(void *p, size_t n) {
    void *q = malloc(n);
    if (q != NULL && p != NULL) {
        size_t old = ((size_t *)p)[-2];
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}
int main(void) {
    alarm(60); /* gone by itself should nothing stop it */
    pause();
    return 0;
}
"""

_built = {}


def build_c(name, source, *flags):
    """Compiles source into tmp/name once; returns the path, or None with a
    failed check when the compiler cannot (a static build needs libc6-dev)."""
    if name in _built:
        return _built[name]
    src = os.path.join(tmp, name + ".c")
    exe = os.path.join(tmp, name)
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    with open(src, "w") as f:
        f.write(source)
    cc = subprocess.run([os.environ.get("CC", "cc"), "-O1", src, "-o", exe] + list(flags),
                        capture_output=True, text=True)
    _built[name] = exe if cc.returncode == 0 else None
    if cc.returncode != 0:
        fail("build " + name, "cc exit %d" % cc.returncode, cc.stderr)
    return _built[name]


def stopped_by_budget(r):
    """The command died of its budget: exit 121, the death line, and it never
    printed that it allocated everything."""
    return (r.returncode == 121 and "exceeded its memory budget" in r.stderr and
            "allocated" not in r.stdout)


def one_line(r):
    return len(r.stderr.splitlines()) == 1


def run_library_paths():
    """A library whose path LD_PRELOAD cannot carry as it is (it splits at
    spaces and colons and expands $ORIGIN) is still preloaded, through a
    private link that is gone when run ends; the user's LD_PRELOAD is kept."""
    hog = build_c("hog", HOG_C)
    if hog is None:
        return
    for label, dirname in (("a space", "lib dir"), ("a colon", "lib:dir"),
                           ("$ORIGIN", "lib$ORIGIN")):
        d = os.path.join(tmp, dirname)
        os.makedirs(d, exist_ok=True)
        lib = os.path.join(d, "libmembudget.so")
        shutil.copy(LIB, lib)
        links = tempfile.mkdtemp(prefix="links.", dir=tmp)
        env = clean_env({"TMPDIR": links})
        r = tool("run", "--library", lib, "--limit", "16M", "--", hog, "400", env=env)
        check("run --library with %s in its path: the budget stops a 400 MiB hog at 16M" % label,
              stopped_by_budget(r), "exit %d" % r.returncode, r.stdout + r.stderr)
        other = "/lib/x86_64-linux-gnu/libdl.so.2"
        if not os.path.exists(other):
            other = os.path.realpath(DEBUG_LIB)
        r = tool("run", "--library", lib, "--", "sh", "-c",
                 'echo "$LD_PRELOAD"; readlink "${LD_PRELOAD%%:*}"; '
                 'stat -c %a "$(dirname "${LD_PRELOAD%%:*}")"',
                 env=clean_env({"TMPDIR": links, "LD_PRELOAD": other}))
        out = r.stdout.split("\n")
        good = (r.returncode == 0 and len(out) >= 3 and
                re.match(re.escape(links) + r"/membudget-lib\.\w{6}/libmembudget\.so:" +
                         re.escape(other) + "$", out[0]) is not None and
                out[1] == lib and out[2] == "700")
        check("run --library with %s: LD_PRELOAD names a link in a 0700 directory, the "
              "user's entries after it" % label, good, "got %r" % out, r.stderr)
        left = [d for d in os.listdir(links) if d.startswith("membudget-lib.")]
        check("run --library with %s: the link and its directory are removed" % label,
              left == [], "left %s" % left)


def run_install_prefix_with_space():
    """An installed tree whose prefix has a space: the command finds its
    library in ../lib and the budget holds."""
    hog = build_c("hog", HOG_C)
    if hog is None:
        return
    prefix = os.path.join(tmp, "install prefix")
    os.makedirs(os.path.join(prefix, "bin"), exist_ok=True)
    os.makedirs(os.path.join(prefix, "lib"), exist_ok=True)
    shutil.copy(TOOL, os.path.join(prefix, "bin", "membudget"))
    shutil.copy(LIB, os.path.join(prefix, "lib", "libmembudget.so"))
    report_tool = os.path.join(BUILD, "membudget-report")
    if os.path.exists(report_tool):
        os.makedirs(os.path.join(prefix, "libexec", "membudget"), exist_ok=True)
        shutil.copy(report_tool, os.path.join(prefix, "libexec", "membudget"))
    r = subprocess.run([os.path.join(prefix, "bin", "membudget"), "run", "--limit", "16M", "--",
                        hog, "400"], capture_output=True, text=True, env=clean_env(),
                       timeout=TIMEOUT)
    check("run from a prefix with a space: the budget stops a 400 MiB hog at 16M",
          stopped_by_budget(r), "exit %d" % r.returncode, r.stdout + r.stderr)


def run_cannot_preload():
    """Programs the dynamic loader never preloads into are not run: one line
    saying why, status 122."""
    static = build_c("hog-static", HOG_C, "-static")
    if static is None:
        return
    r = tool("run", "--limit", "16M", "--", static, "400")
    check("run: a static program is not run: 122 and one line",
          r.returncode == UNBUDGETED and one_line(r) and r.stdout == "" and
          "statically linked" in r.stderr and static in r.stderr,
          "exit %d" % r.returncode, r.stdout + r.stderr)
    script = os.path.join(tmp, "static-interpreter")
    with open(script, "w") as f:
        f.write("#!%s\n" % static)
    os.chmod(script, 0o755)
    r = tool("run", "--limit", "16M", "--", script)
    check("run: a script whose interpreter is static is not run: 122 and one line",
          r.returncode == UNBUDGETED and one_line(r) and r.stdout == "" and
          "its interpreter %s is statically linked" % static in r.stderr,
          "exit %d" % r.returncode, r.stdout + r.stderr)
    hog = build_c("hog", HOG_C)
    if hog is None:
        return
    if os.getuid() == 0:
        setuid = os.path.join(tmp, "hog-setuid")
        shutil.copy(hog, setuid)
        os.chown(setuid, 65534, -1)
        os.chmod(setuid, 0o4755)
        r = tool("run", "--limit", "16M", "--", setuid, "400")
        check("run: a program setuid to another user is not run: 122 and one line",
              r.returncode == UNBUDGETED and one_line(r) and r.stdout == "" and
              "setuid" in r.stderr and "secure mode" in r.stderr,
              "exit %d" % r.returncode, r.stdout + r.stderr)
    else:
        skip("run: a setuid program is not run", "needs root to chown")


FAKE_LIB_C = "int not_membudget = 1;\n"


def run_library_not_started():
    """ld.so loads a library that is not ours (or ours is not the allocator):
    no handshake, so run says so in one line, exits 122, and kills a command
    still running."""
    hog = build_c("hog", HOG_C)
    fake = build_c(os.path.join("fake", "libmembudget.so"), FAKE_LIB_C, "-shared", "-fPIC")
    if hog is None or fake is None:
        return
    r = tool("run", "--library", fake, "--", hog, "10")
    check("run: a command that ends before the library starts: 122, one line, 'without a budget'",
          r.returncode == UNBUDGETED and one_line(r) and "did not start" in r.stderr and
          "ran without a budget (it exited with status 0)" in r.stderr,
          "exit %d" % r.returncode, r.stdout + r.stderr)
    r = tool("run", "--library", fake, "--start-timeout", "0.5", "--", "sh", "-c",
             'echo $$; exec sleep 60')
    lines = r.stdout.split()
    gone = False
    if lines and lines[0].isdigit():
        try:
            os.kill(int(lines[0]), 0)
        except ProcessLookupError:
            gone = True
    check("run: no handshake within --start-timeout: the command is killed, 122, one line",
          r.returncode == UNBUDGETED and one_line(r) and "no answer in 0.5 s" in r.stderr and
          "killed it" in r.stderr and gone, "exit %d, gone %s" % (r.returncode, gone),
          r.stdout + r.stderr)
    own = build_c("own-malloc", OWN_MALLOC_C)
    if own is None:
        return
    r = tool("run", "--", own)
    check("run: a program with a malloc of its own is killed, 122, one line from run",
          r.returncode == UNBUDGETED and "not its allocator" in r.stderr and
          "killed it" in r.stderr and
          len([l for l in r.stderr.splitlines() if l.startswith("membudget run:")]) == 1,
          "exit %d" % r.returncode, r.stdout + r.stderr)


def run_handshake_not_inherited():
    """A command that starts a command: both run under the library, the
    grandchild's budget stops it, and neither the variable nor the socket
    reaches it."""
    hog = build_c("hog", HOG_C)
    if hog is None:
        return
    script = ('"$0" 400; echo "child status $?"; grep -c libmembudget /proc/$$/maps; '
              'env | grep -c MEMBUDGET_HANDSHAKE; ls -l /proc/$$/fd | grep -c socket || true')
    r = tool("run", "--limit", "32M", "--", "sh", "-c", script, hog)
    out = r.stdout.split()
    check("run: the shell and its child both budgeted, no handshake variable or socket left",
          r.returncode == 0 and out[:3] == ["child", "status", "134"] and len(out) == 6 and
          int(out[3]) >= 1 and out[4:] == ["0", "0"] and "exceeded its memory budget" in r.stderr,
          "exit %d, got %r" % (r.returncode, out), r.stdout + r.stderr)


def handshake_values():
    """The library's side, preloaded directly: the record on the socket the
    variable names, the variable gone from the environment; a value that names
    anything else is ignored without a word and nothing is written."""
    import socket
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    value = "%d:%d" % (theirs.fileno(), os.fstat(theirs.fileno()).st_ino)
    p = subprocess.run(["sh", "-c", "env | grep -c MEMBUDGET_HANDSHAKE; echo $$"],
                       capture_output=True, text=True, pass_fds=[theirs.fileno()],
                       env=clean_env({"LD_PRELOAD": LIB, "MEMBUDGET_HANDSHAKE": value}))
    theirs.close()
    ours.setblocking(False)
    try:
        record = ours.recv(256).decode()
    except BlockingIOError:
        record = ""
    out = p.stdout.split()
    with open(os.path.join(REPO, "include", "membudget.h")) as f:
        version_ = re.search(r'#define MEMBUDGET_VERSION "([^"]+)"', f.read()).group(1)
    check("handshake: the record from the command's pid, the variable removed, nothing on stderr",
          p.returncode == 0 and p.stderr == "" and len(out) == 2 and out[0] == "0" and
          record == "membudget-handshake %s allocator %s\n" % (out[1], version_),
          "record %r" % record, p.stdout + p.stderr)
    ours.close()
    r_pipe, w_pipe = os.pipe()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ino = os.fstat(b.fileno()).st_ino
    bad = [("garbage", "x", []), ("a pipe, not a socket",
                                  "%d:%d" % (w_pipe, os.fstat(w_pipe).st_ino), [w_pipe]),
           ("another socket's inode", "%d:%d" % (b.fileno(), ino + 1), [b.fileno()]),
           ("a closed descriptor", "%d:%d" % (b.fileno() + 50, ino), []),
           ("standard input", "0:%d" % ino, []), ("a huge number", "99999999999999999999:1", [])]
    for label, value, fds in bad:
        p = subprocess.run(["true"], capture_output=True, text=True, pass_fds=fds,
                           env=clean_env({"LD_PRELOAD": LIB, "MEMBUDGET_HANDSHAKE": value}))
        check("handshake: a value naming %s is ignored without a word" % label,
              p.returncode == 0 and p.stderr == "", "exit %d" % p.returncode, p.stderr)
    os.close(w_pipe)
    b.close()
    a.setblocking(False)
    try:
        stray = a.recv(256)
    except BlockingIOError:
        stray = b"(nothing, but not closed)"
    check("handshake: nothing written where the value pointed elsewhere",
          os.read(r_pipe, 256) == b"" and stray == b"", "pipe or socket got %r" % stray)
    os.close(r_pipe)
    a.close()


# ---- stat, top, the pages ----------------------------------------------------------

def stat_fields(pid):
    r = tool("stat", str(pid))
    return r, {l.split()[0]: l for l in r.stdout.splitlines() if l.strip()}


def live_statistics():
    p, pid = start_live(256, 40, 120)
    try:
        page = wait_for(lambda: page_ready(pid) and page_path(pid))
        if not check("page appears at the first tick", page, "no %s" % page_path(pid)):
            return
        st = os.stat(page)
        check("page: owner-only (0600), ours", stat.S_IMODE(st.st_mode) == 0o600 and
              st.st_uid == os.getuid(), "mode %o uid %d" % (stat.S_IMODE(st.st_mode), st.st_uid))
        r, f = stat_fields(pid)
        good = r.returncode == 0 and re.match(r"pid\s+%d \(live\)" % pid, f.get("pid", ""))
        limit_ok = re.search(r"256 MiB \(268435456 bytes\): MEMBUDGET_LIMIT=256M; action abort",
                             f.get("limit", ""))
        fp = re.search(r"\((\d+) bytes\), ([\d.]+)% of the limit", f.get("footprint", ""))
        check("stat: a live process", bool(good) and limit_ok and fp and int(fp.group(1)) > MIB and
              "unrestricted" in f.get("policy", ""), "unexpected", r.stdout + r.stderr)
        first = int(fp.group(1)) if fp else 0
        time.sleep(0.6)
        r, f = stat_fields(pid)
        fp = re.search(r"\((\d+) bytes\)", f.get("footprint", ""))
        check("stat: the figures move as the process grows", fp and int(fp.group(1)) > first,
              "%s then %s" % (first, fp and fp.group(1)), r.stdout)
        r = tool("stat", "--prometheus", str(pid))
        lines = r.stdout.splitlines()
        samples = [l for l in lines if not l.startswith("#")]
        pattern = re.compile(r'^membudget_[a-z_]+\{pid="%d",comm="live"[^}]*\} [0-9.e+]+$' % pid)
        check("stat --prometheus", r.returncode == 0 and len(samples) >= 15 and
              all(pattern.match(l) for l in samples) and
              'membudget_limit_bytes{pid="%d",comm="live"} 268435456' % pid in lines and
              sum(l.startswith("# TYPE ") for l in lines) == len(samples),
              "bad exposition", r.stdout + r.stderr)
        r = tool("top", "--once")
        row = [l for l in r.stdout.splitlines() if re.match(r"\s*%d live\s" % pid, l)]
        check("top --once lists the process", r.returncode == 0 and len(row) == 1 and
              "\033" not in r.stdout and " 256M " in row[0], "no row", r.stdout + r.stderr)
        not_readable_by_nobody(pid)
        top_in_tmux(pid)
    finally:
        stop(p, pid)
    check("live process: exit status 0 through run", p.returncode == 0,
          "exit %s" % p.returncode, p.stderr.read().decode())
    check("page removed at exit", not os.path.exists(page_path(pid)), "still there")


def stat_json_text():
    """stat --json keeps UTF-8 as it is (an argument "dé" reads back as "dé",
    not as "dÃ©") and writes a byte that is not UTF-8 as U+FFFD."""
    name = "stat --json: UTF-8 in the command line kept, other bytes as U+FFFD"
    p, pid = start_live(64, 40, 8, "d\u00e9".encode(), b"x\xe9y\"\\")
    try:
        wait_for(lambda: os.path.exists(page_path(pid)))
        r = subprocess.run([TOOL, "stat", "--json", str(pid)], capture_output=True,
                           env=clean_env(), timeout=TIMEOUT)
        r.stdout = r.stdout.decode("utf-8", errors="backslashreplace")
        try:
            doc = json.loads(r.stdout)
            check(name, r.returncode == 0 and list(doc)[0] == "membudget_stat" and
                  doc["membudget_stat"] == 1 and
                  doc["cmdline"].endswith(" d\u00e9 x\ufffdy\"\\") and "\\u00c3" not in r.stdout,
                  "cmdline %r" % doc.get("cmdline"), r.stdout)
        except (ValueError, KeyError) as e:
            fail(name, repr(e), r.stdout + r.stderr)
    finally:
        stop(p, pid)


def not_readable_by_nobody(pid):
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        skip("page unreadable by nobody", "needs root and setpriv")
        return
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    c = subprocess.run(as_nobody + ["cat", page_path(pid)], capture_output=True)
    check("page: nobody cannot read it (cat)", c.returncode != 0 and c.stdout == b"",
          "cat exit %d" % c.returncode, c.stderr.decode())
    r = tool("stat", str(pid), prefix=as_nobody)
    check("page: nobody cannot read it (membudget stat)",
          r.returncode == 1 and "another user" in r.stderr and r.stdout == "",
          "exit %d" % r.returncode, r.stdout + r.stderr)
    r = tool("top", "--once", prefix=as_nobody)
    check("page: nobody's top does not show it", r.returncode == 0 and
          not re.search(r"^\s*%d " % pid, r.stdout, re.M) and "not shown" in r.stdout,
          "listed", r.stdout + r.stderr)


def top_in_tmux(pid):
    if shutil.which("tmux") is None:
        skip("top in tmux", "no tmux (Debian tmux)")
        return
    sock = "mb-cli-%d" % os.getpid()
    t = ["tmux", "-L", sock]
    subprocess.run(t + ["new-session", "-d", "-x", "100", "-y", "30", "-s", "top",
                        "env -u LD_PRELOAD %s top -d 0.2" % TOOL], check=True)
    try:
        def row():
            screen = subprocess.run(t + ["capture-pane", "-p", "-t", "top"], capture_output=True,
                                    text=True).stdout
            m = re.search(r"^\s*%d live\s+(\S+)" % pid, screen, re.M)
            return (screen, m.group(1)) if m else None
        first = wait_for(row, 5)
        if not check("top in tmux shows the process", first, "no row",
                     first[0] if first else ""):
            return
        later = wait_for(lambda: (lambda r: r if r and r[1] != first[1] else None)(row()), 5)
        check("top in tmux updates", later and "membudget top" in later[0],
              "footprint stayed %s" % first[1], later[0] if later else "")
        subprocess.run(t + ["send-keys", "-t", "top", "q"])
        gone = wait_for(lambda: subprocess.run(t + ["has-session", "-t", "top"],
                                               capture_output=True).returncode != 0, 5)
        check("top in tmux quits on q", gone, "still running")
    finally:
        subprocess.run(t + ["kill-server"], capture_output=True)


def stale_pages():
    # A process killed outright leaves its page; readers remove it.
    p, pid = start_live(256, 20, 64, via_run=False)
    wait_for(lambda: page_ready(pid))
    stop(p, pid, signal.SIGKILL)
    check("SIGKILL leaves the page behind", os.path.exists(page_path(pid)), "no page to clean")
    r = tool("stat", str(pid))
    check("stat removes the page of a dead process", r.returncode == 1 and "stale" in r.stderr
          and not os.path.exists(page_path(pid)), "exit %d" % r.returncode, r.stderr)
    p, pid = start_live(256, 20, 64, via_run=False)
    wait_for(lambda: page_ready(pid))
    stop(p, pid, signal.SIGKILL)
    r = tool("top", "--once")
    check("top removes pages of dead processes and does not list them",
          not os.path.exists(page_path(pid)) and not re.search(r"^\s*%d " % pid, r.stdout, re.M),
          "page left or listed", r.stdout)
    # membudget run cleans up after its own command.
    p, pid = start_live(256, 20, 64)
    wait_for(lambda: page_ready(pid))
    stop(p, pid, signal.SIGKILL)
    check("run removes the page of its command killed outright (exit 137)",
          p.returncode == 137 and not os.path.exists(page_path(pid)),
          "exit %s, page %s" % (p.returncode, os.path.exists(page_path(pid))))
    # A live process that no longer maps its page (it exec'd a program without
    # the library): the page is stale too.
    sleeper = subprocess.Popen(["sleep", "30"])
    children.append(sleeper)
    with open("/proc/%d/stat" % sleeper.pid) as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    import struct
    header = struct.pack("<IIIIQQ16sQ", 0x3170626d, 1, 64 + 8, sleeper.pid, start_ticks,
                         time.time_ns(), b"sleep", 2)
    page_dir_ready()
    fake = page_path(sleeper.pid)
    fd = os.open(fake, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, header.ljust(4096, b"\0"))
    os.close(fd)
    r = tool("top", "--once")
    check("a page its live process does not map is stale",
          not os.path.exists(fake) and not re.search(r"^\s*%d " % sleeper.pid, r.stdout, re.M),
          "page left or listed", r.stdout)
    stop(sleeper)
    if os.path.exists(fake):
        os.unlink(fake)


def fork_child_page():
    p, pid = start_live(256, 30, 64, "fork")
    try:
        child = read_announcements(p, ("ready", "child")).get("child")
        if not check("fork: the child runs", child, "no child line: %r" % p.announced):
            return
        both = wait_for(lambda: page_ready(pid) and page_ready(child))
        r, f = stat_fields(child)
        check("fork: the child publishes its own page", both and r.returncode == 0 and
              re.match(r"pid\s+%d \(live\)" % child, f.get("pid", "")),
              "parent page %s, child page %s" % (os.path.exists(page_path(pid)),
                                                 os.path.exists(page_path(child))),
              r.stdout + r.stderr)
        r, f = stat_fields(pid)
        check("fork: the parent's page stays the parent's", r.returncode == 0 and
              re.match(r"pid\s+%d \(live\)" % pid, f.get("pid", "")), "bad", r.stdout + r.stderr)
    finally:
        stop(p, pid)
    child = p.announced.get("child")
    check("fork: both pages removed at exit", not os.path.exists(page_path(pid)) and
          not (child and os.path.exists(page_path(child))), "left behind")


# ---- the sampled top site in stat and top ---------------------------------------------

# tests/cli/live in "sites" mode: 512 KiB steps up to 48 MiB, three of every four
# from grow_site_a (72 steps, 36 MiB), one from grow_site_b (12 MiB).  Sampling
# at 1 per 64 KiB takes a 512 KiB block with probability 1 - e^-8 (99.97%), each
# standing for 512 KiB / p: the estimate's relative standard deviation is about
# 0.2%, so a tolerance of 10% cannot fail by chance and still catches a wrong
# site (grow_site_b holds a third as much) or a wrong weighting.
SITE_STEP_KIB, SITE_MAX_MIB = 512, 48
SITE_A_BYTES = sum(1 for i in range(SITE_MAX_MIB * 1024 // SITE_STEP_KIB) if i % 4 != 3) \
    * SITE_STEP_KIB * 1024
SITE_TOLERANCE = 0.10
# The size of a stats page written before the top site was added (the first
# layout; policy/statspage.h, MB_STATSPAGE_SIZE_V1).
PAGE_SIZE_V1 = 448


def near(value, want, tolerance=SITE_TOLERANCE):
    return abs(value - want) <= tolerance * want


def no_columns_env():
    env = clean_env()
    env.pop("COLUMNS", None)
    return env


def top_row(pid, env=None):
    r = tool("top", "--once", env=env if env is not None else no_columns_env())
    rows = [l for l in r.stdout.splitlines() if re.match(r"\s*%d \S" % pid, l)]
    return r, rows[0] if len(rows) == 1 else None


def top_site_live():
    """A process whose dominant allocation site is known: stat, stat --json,
    stat --prometheus and top --once name it, with an estimate within 10% of
    its live bytes."""
    p, pid = start_live(SITE_STEP_KIB, 10, SITE_MAX_MIB, "sites",
                        env_extra={"MEMBUDGET_SAMPLE": "64K", "MEMBUDGET_MONITOR": "thread"})
    try:
        done = read_announcements(p, ("done",), seconds=20).get("done")
        if not check("top site: the process allocates its two sites", done == pid,
                     "no done line: %r" % p.announced):
            return
        # Past a monitor tick and a full pass over the sites after the last step.
        time.sleep(0.8)
        wait_for(lambda: page_ready(pid))
        want = SITE_A_BYTES
        r, f = stat_fields(pid)
        m = re.match(r"top site\s+(\S+): \S+ \S+ \((\d+) bytes\) estimated live in (\d+) samples "
                     r"of 1 per 64 KiB$", f.get("top", ""))
        frames = re.findall(r"^\s+#(\d+) (\S+)(?: at (\S+))?", r.stdout, re.M)
        check("top site: stat names grow_site_a, estimate within 10%% of %d" % want,
              r.returncode == 0 and m and m.group(1) == "grow_site_a" and
              near(int(m.group(2)), want) and frames[:2] and frames[0][1] == "grow_site_a" and
              frames[0][2].endswith("live.c:%s" % frames[0][2].rsplit(":", 1)[-1]) and
              "live.c" in frames[0][2] and frames[1][1] == "grow",
              "unexpected", r.stdout + r.stderr)
        r = tool("stat", "--json", str(pid))
        try:
            doc = json.loads(r.stdout)
            site = doc["top_site"]
            good = (r.returncode == 0 and doc["pid"] == pid and site["state"] == "ok" and
                    site["sample_rate_bytes"] == 64 * 1024 and
                    site["frames"][0]["function"] == "grow_site_a" and
                    site["frames"][0]["module"] == LIVE and
                    site["frames"][1]["function"] == "grow" and
                    site["text"] == "grow_site_a < grow < main" and
                    near(site["est_bytes"], want) and 60 <= site["live_samples"] <= 72 and
                    near(site["live_sampled_bytes"], want) and
                    doc["limit_bytes"] == 256 * MIB and site["scans"] >= 1)
            check("top site: stat --json names grow_site_a, estimate within 10%", good,
                  "unexpected", r.stdout)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            fail("top site: stat --json names grow_site_a, estimate within 10%", repr(e),
                 r.stdout + r.stderr)
        r = tool("stat", "--prometheus", str(pid))
        gauge = re.search(r'^membudget_top_site_bytes\{pid="%d",comm="live",site="grow_site_a",'
                          r'stack="grow_site_a < grow < main"\} (\d+)$' % pid, r.stdout, re.M)
        lines = r.stdout.splitlines()
        check("top site: stat --prometheus has the labelled gauge, within 10%",
              r.returncode == 0 and gauge and near(int(gauge.group(1)), want) and
              'membudget_sample_rate_bytes{pid="%d",comm="live"} 65536' % pid in lines and
              "# TYPE membudget_top_site_bytes gauge" in lines,
              "no gauge", r.stdout + r.stderr)
        r, row = top_row(pid)
        est = re.search(r" (\d+(?:\.\d)?)M grow_site_a < grow < main$", row or "")
        check("top site: top --once shows its estimate and frames",
              r.returncode == 0 and "TOP SITE" in r.stdout and est and
              near(float(est.group(1)) * MIB, want), "no site in the row", r.stdout + r.stderr)
        r, row = top_row(pid, env=dict(no_columns_env(), COLUMNS="100"))
        lines = r.stdout.splitlines()
        check("top site: top cuts the column at the width ($COLUMNS=100)",
              row is not None and len(row) == 100 and row.endswith("...") and
              "grow_site_" in row and all(len(l) <= 100 for l in lines),
              "row %r" % row, r.stdout)
        r, row = top_row(pid, env=dict(no_columns_env(), COLUMNS="70"))
        check("top site: no column when the width leaves no room ($COLUMNS=70)",
              row is not None and "TOP SITE" not in r.stdout and "grow_site" not in row,
              "row %r" % row, r.stdout)
    finally:
        stop(p, pid)


def top_site_sampling_off():
    """MEMBUDGET_SAMPLE=0: "not sampled", no top-site gauge."""
    p, pid = start_live(256, 20, 64, run_args=("--limit", "256M", "--sample", "0"))
    try:
        if not check("sampling off: page appears", wait_for(lambda: page_ready(pid)), "no page"):
            return
        time.sleep(0.3)
        r, f = stat_fields(pid)
        check("sampling off: stat says not sampled",
              r.returncode == 0 and re.match(r"top site\s+not sampled \(MEMBUDGET_SAMPLE=0\)$",
                                             f.get("top", "")),
              "unexpected", r.stdout + r.stderr)
        r = tool("stat", "--json", str(pid))
        try:
            site = json.loads(r.stdout)["top_site"]
            check("sampling off: stat --json", site["state"] == "off" and
                  site["text"] == "not sampled" and site["sample_rate_bytes"] == 0 and
                  "frames" not in site, "unexpected", r.stdout)
        except (ValueError, KeyError) as e:
            fail("sampling off: stat --json", repr(e), r.stdout + r.stderr)
        r = tool("stat", "--prometheus", str(pid))
        check("sampling off: stat --prometheus has the rate 0 and no top-site gauge",
              r.returncode == 0 and
              'membudget_sample_rate_bytes{pid="%d",comm="live"} 0' % pid in r.stdout.splitlines()
              and "top_site" not in r.stdout, "unexpected", r.stdout)
        r, row = top_row(pid)
        check("sampling off: top --once says not sampled", row and row.endswith(" not sampled"),
              "row %r" % row, r.stdout)
    finally:
        stop(p, pid)


def top_site_old_page():
    """A page written by a library from before the top site (size 448): read
    as it is, the site shown as "-", whatever lies past its size."""
    import mmap
    import struct
    pid = os.getpid()
    page_dir_ready()
    path = page_path(pid)
    if os.path.exists(path):
        os.unlink(path)
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    record = struct.pack("<IIIIQQ16sQ", 0x3170626d, 1, PAGE_SIZE_V1, pid, start_ticks,
                         time.time_ns(), b"oldwriter", 2)
    # updated, uptime, ticks, footprint, its peak, counter, its peak, baseline,
    # os, limit, conservative, strict, strict-sync, events; policy, pages.
    record += struct.pack("<14QII", time.time_ns(), 10 ** 9, 7, 48 * MIB, 50 * MIB, 47 * MIB,
                          49 * MIB, MIB, 48 * MIB, 256 * MIB, 200 * MIB, 230 * MIB, 256 * MIB, 0,
                          0, 1)
    record += struct.pack("<24s8s12s36s192s", b"unrestricted", b"abort", b"active", b"rss",
                          b"MEMBUDGET_LIMIT=256M")
    if not check("old page: the record has the first layout's size", len(record) == PAGE_SIZE_V1,
                 "%d bytes" % len(record)):
        return
    # What a newer writer would have put past the old size: a reader that
    # ignored `size` would show a site.
    data = record + b"\x41" * (4096 - len(record))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        # Mapped, as the library keeps its page: readers take a page that its
        # process does not map for a stale one.
        mapping = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
        try:
            r, f = stat_fields(pid)
            check("old page: stat reads it and shows the site as -",
                  r.returncode == 0 and re.match(r"pid\s+%d \(oldwriter\)" % pid, f.get("pid", ""))
                  and "48 MiB (50331648 bytes)" in f.get("footprint", "") and
                  re.match(r"top site\s+- \(", f.get("top", "")), "unexpected",
                  r.stdout + r.stderr)
            r = tool("stat", "--json", str(pid))
            try:
                doc = json.loads(r.stdout)
                check("old page: stat --json", doc["page_size"] == PAGE_SIZE_V1 and
                      doc["top_site"] == {"state": "unknown", "text": "-"} and
                      doc["footprint_bytes"] == 48 * MIB, "unexpected", r.stdout)
            except (ValueError, KeyError) as e:
                fail("old page: stat --json", repr(e), r.stdout + r.stderr)
            r = tool("stat", "--prometheus", str(pid))
            check("old page: stat --prometheus without sampling metrics",
                  r.returncode == 0 and "membudget_footprint_bytes{" in r.stdout and
                  "sample_rate" not in r.stdout and "top_site" not in r.stdout, "unexpected",
                  r.stdout + r.stderr)
            r, row = top_row(pid)
            check("old page: top --once shows -", row and "oldwriter" in row and
                  row.endswith(" -"), "row %r" % row, r.stdout)
        finally:
            mapping.close()
    finally:
        os.close(fd)
        if os.path.exists(path):
            os.unlink(path)


# ---- stat --all: one exposition, one document; the figures' age ----------------------

# A program name with the three characters the exposition format escapes in a
# label value (comm keeps the first 15 bytes of it).
ODD_NAME = 'mb"q\\z\nw'


def prometheus_parser():
    """prometheus_client's parser (Debian python3-prometheus-client, which make
    deps installs), also when this Python is not Debian's (pyenv)."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            return None
    return text_string_to_metric_families


def exposition_problems(text, parse):
    """What is wrong with an exposition: it does not parse, or a metric's HELP,
    TYPE or family comes more than once.  [] when nothing is."""
    problems = []
    for kind in ("HELP", "TYPE"):
        names = re.findall(r"^# %s (\S+)" % kind, text, re.M)
        problems += ["%s of %s %d times" % (kind, n, names.count(n))
                     for n in sorted(set(names)) if names.count(n) > 1]
    try:
        families = list(parse(text))
    except Exception as e:  # the parser's own error: not valid
        return problems + ["does not parse: %r" % e]
    names = [f.name for f in families]
    problems += ["family %s %d times" % (n, names.count(n)) for n in sorted(set(names))
                 if names.count(n) > 1]
    return problems


def by_pid(families, pids):
    """{pid: {sample name: [samples]}} of the samples labelled with our pids."""
    out = {pid: {} for pid in pids}
    for family in families:
        for sample in family.samples:
            pid = int(sample.labels.get("pid", "0"))
            if pid in out:
                out[pid].setdefault(sample.name, []).append(sample)
    return out


def stat_json(pid):
    r = tool("stat", "--json", str(pid))
    return json.loads(r.stdout) if r.returncode == 0 else None


def figure_of(doc, key):
    """What the sample named membudget_<key> should hold, from a `stat PID
    --json` object; None when the object has no such figure."""
    if key not in doc and key.endswith("_total") and key[:-6] in doc:
        key = key[:-6]
    if key == "last_update_timestamp_seconds":
        return doc["updated_unix_ns"] / 1e9
    if key == "limit_ratio":
        return doc["footprint_bytes"] / doc["limit_bytes"]
    if key in doc and isinstance(doc[key], int) and not isinstance(doc[key], bool):
        return doc[key]
    return None


def between(value, first, last):
    """value within [first, last] (either order), floats to 1e-9."""
    low, high = min(first, last), max(first, last)
    slack = 1e-9 * max(1.0, abs(high))
    return low - slack <= value <= high + slack


def same_figures(samples, before, after):
    """The samples of one process against its `stat PID --json` objects read
    just before and just after them: each figure they share lies between the
    two (equal to both while the page is not rewritten; a page rewritten
    meanwhile, as the library does at least every second, moves only forward
    for the counters and clocks).  Returns (compared, differences)."""
    compared, differences = 0, []
    for name, found in samples.items():
        key = name[len("membudget_"):]
        first, last = figure_of(before, key), figure_of(after, key)
        if first is None or last is None:
            continue
        compared += 1
        if not between(found[0].value, first, last):
            differences.append("%s %r, stat --json %r then %r" % (name, found[0].value, first,
                                                                    last))
    return compared, differences


# Members of `stat --json` that are timings or the age at the read: not
# compared between two reads.
UNSTEADY = ("age_ns", "stale", "scan_ns", "resolve_ns")


def same_object(found, before, after, where="", out=None):
    """A `stat --json` object (or a part) against the objects read before and
    after it: the same members, numbers between the two, the rest equal to
    one of them.  Returns the differences."""
    out = [] if out is None else out
    if isinstance(found, dict) and isinstance(before, dict) and isinstance(after, dict):
        if set(found) != set(after):
            out.append("%s members %r, %r" % (where, sorted(found), sorted(after)))
        for k in found:
            if k not in UNSTEADY and k in before and k in after:
                same_object(found[k], before[k], after[k], where + "." + k, out)
    elif isinstance(found, list) and isinstance(before, list) and isinstance(after, list):
        if len(found) != len(after) or len(found) != len(before):
            out.append("%s: %d items, %d then %d" % (where, len(found), len(before), len(after)))
        for i, item in enumerate(found[:min(len(before), len(after))]):
            same_object(item, before[i], after[i], "%s[%d]" % (where, i), out)
    elif isinstance(found, (int, float)) and not isinstance(found, bool) and \
            isinstance(before, (int, float)) and isinstance(after, (int, float)):
        if not between(found, before, after):
            out.append("%s %r, %r then %r" % (where, found, before, after))
    elif found != before and found != after:
        out.append("%s %r, %r then %r" % (where, found, before, after))
    return out


def bracketed(pids, command, judge, attempts=10):
    """Runs command between two `stat PID --json` of each pid, and judge(r,
    before, after) on what they read, until judge finds nothing wrong (a
    figure may move between reads in a way no bracket holds: a page's RSS);
    returns (the command's result, before, after, judge's last findings)."""
    problems = ["no read"]
    for _ in range(attempts):
        before = {pid: stat_json(pid) for pid in pids}
        r = command()
        after = {pid: stat_json(pid) for pid in pids}
        if not all(before[p] and after[p] for p in pids):
            problems = ["stat --json failed: %r %r" % (before, after)]
            continue
        problems = judge(r, before, after)
        if not problems:
            break
        time.sleep(0.1)
    return r, before, after, problems


def start_idle(program=LIVE):
    """A process that allocates 2 MiB over 1.3 s (past its first tick at 0.5 s,
    so it has a page), then waits; returns (Popen, pid) once its page is read."""
    p, pid = start_live(64, 40, 2, via_run=False, program=program)
    wait_for(lambda: page_ready(pid), 10)
    return p, pid


def stat_all_prometheus():
    """`stat --all --prometheus` with three processes, one named with a quote,
    a backslash and a newline: one exposition that prometheus_client parses,
    each family once, one sample per process and family, the values of `stat
    PID --json`, the odd name escaped and read back as it is."""
    parse = prometheus_parser()
    if not check("stat --all --prometheus: prometheus_client's parser is installed",
                 parse is not None, "no prometheus_client (Debian python3-prometheus-client: "
                 "make deps)"):
        return
    odd = os.path.join(tmp, ODD_NAME)
    shutil.copy(LIVE, odd)
    started = [start_idle(), start_idle(), start_idle(odd)]
    pids = [pid for _, pid in started]
    try:
        # The checker itself: two `stat PID --prometheus` concatenated, as a
        # textfile collector would be fed without --all, are refused.
        one = tool("stat", "--prometheus", str(pids[0]))
        check("stat PID --prometheus: a valid exposition for one process",
              one.returncode == 0 and not exposition_problems(one.stdout, parse) and
              len(list(parse(one.stdout))) >= 15, "exit %d: %s" % (
                  one.returncode, exposition_problems(one.stdout, parse)), one.stdout)
        two = one.stdout + tool("stat", "--prometheus", str(pids[1])).stdout
        check("stat --prometheus twice concatenated: HELP/TYPE repeated, found so",
              exposition_problems(two, parse) != [], "not found", two)

        def judge(r, before, after):
            if r.returncode != 0 or exposition_problems(r.stdout, parse):
                return ["not a valid exposition"]
            samples = by_pid(list(parse(r.stdout)), pids)
            results = {pid: same_figures(samples[pid], before[pid], after[pid]) for pid in pids}
            return ["pid %d: %d figures compared, %r" % (pid, n, d)
                    for pid, (n, d) in results.items() if n < 12 or d]
        r, _, docs, differences = bracketed(
            pids, lambda: tool("stat", "--all", "--prometheus"), judge)
        problems = exposition_problems(r.stdout, parse)
        if not check("stat --all --prometheus: one valid exposition, each HELP, TYPE and "
                     "family once", r.returncode == 0 and not problems,
                     "exit %d: %s" % (r.returncode, problems), r.stdout + r.stderr):
            return
        families = list(parse(r.stdout))
        samples = by_pid(families, pids)
        counts = {pid: [n for n, found in samples[pid].items() if len(found) != 1]
                  for pid in pids}
        check("stat --all --prometheus: one sample per process and metric, labelled pid",
              all(len(samples[pid]) >= 15 and not counts[pid] for pid in pids),
              "metrics per pid %r, repeated %r" % ({p: len(samples[p]) for p in pids}, counts),
              r.stdout)
        check("stat --all --prometheus: each process's values are its stat --json's",
              not differences, "%r" % differences)
        info = samples[pids[2]].get("membudget_info", [])
        comm = ODD_NAME[:15]
        check("stat --all --prometheus: quote, backslash and newline of comm escaped",
              len(info) == 1 and info[0].labels["comm"] == comm and
              docs[pids[2]]["comm"] == comm and
              'comm="mb\\"q\\\\z\\nw"' in r.stdout, "info %r" % info, r.stdout)
    finally:
        for p, pid in started:
            stop(p, pid)


def stat_all_json():
    """`stat --all --json`: one document, its version first, every process's
    object as `stat PID --json` writes it."""
    started = [start_idle(), start_idle()]
    pids = [pid for _, pid in started]
    try:
        name = "stat --all --json: one document listing each process as stat --json does"

        def judge(r, before, after):
            try:
                doc = json.loads(r.stdout)
                listed = {o["pid"]: o for o in doc["processes"]}
                return [d for p in pids for d in
                        (same_object(listed[p], before[p], after[p], "pid %d" % p)
                         if p in listed else ["pid %d not listed" % p])]
            except (ValueError, KeyError, TypeError) as e:
                return [repr(e)]
        r, _, _, differences = bracketed(pids, lambda: tool("stat", "--all", "--json"), judge)
        try:
            doc = json.loads(r.stdout)
            check(name, r.returncode == 0 and list(doc)[0] == "membudget_stat_all" and
                  doc["membudget_stat_all"] == 1 and doc["bound_ns"] > 0 and
                  doc["stale_after_ns"] > doc["bound_ns"] and not differences,
                  "%r" % differences, r.stdout + r.stderr)
        except (ValueError, KeyError, TypeError) as e:
            fail(name, repr(e), r.stdout + r.stderr)
        r = tool("stat", "--all")
        blocks = [b for b in r.stdout.split("\n\n") if b.startswith("pid")]
        check("stat --all: a block per process",
              r.returncode == 0 and all(sum(re.match(r"pid\s+%d \(live\)" % p, b) is not None
                                            for b in blocks) == 1 for p in pids) and
              all(re.search(r"^updated\s+[\d.]+ s ago, (within|past|STALE)", b, re.M)
                  for b in blocks), "unexpected", r.stdout + r.stderr)
    finally:
        for p, pid in started:
            stop(p, pid)


def stat_all_users():
    """As root, --all lists the processes of every user (one of nobody's beside
    ours, each once in the exposition); nobody's --all lists nobody's own and
    counts our directory as not shown."""
    name = "stat --all as root: every user's processes"
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        skip(name, "needs root and setpriv")
        return
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    nobody_dir = "%s/membudget-65534" % SHM
    existed = os.path.exists(nobody_dir)
    # nobody runs copies in tmp (0755): the checkout may be closed to others
    # (a clone in a mktemp -d directory, as make check-loaded makes).
    theirs_files = {}
    for what, path in (("lib", LIB), ("live", LIVE), ("tool", TOOL)):
        theirs_files[what] = os.path.join(tmp, "nobody-" + os.path.basename(path))
        shutil.copy(path, theirs_files[what])
        os.chmod(theirs_files[what], 0o755)
    p = subprocess.Popen(as_nobody + ["env", "LD_PRELOAD=" + theirs_files["lib"],
                                      theirs_files["live"], "256", "40", "120"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    children.append(p)
    p.announced = {}
    theirs = read_announcements(p, ("ready",)).get("ready")
    q, ours = start_live(256, 40, 120, via_run=False)
    try:
        readable = wait_for(lambda: theirs and tool("stat", str(theirs)).returncode == 0 and
                            page_ready(ours), 10)
        if not check("stat --all: a process of nobody's publishes its page", readable,
                     "no page of pid %r" % theirs,
                     "" if theirs or p.poll() is None else p.stderr.read().decode()):
            return
        r = tool("stat", "--all", "--prometheus")
        parse = prometheus_parser()
        info = [s.labels["pid"] for f in (parse(r.stdout) if parse and r.returncode == 0 else ())
                for s in f.samples if s.name == "membudget_info"]
        check(name, info.count(str(theirs)) == 1 and info.count(str(ours)) == 1,
              "membudget_info of pids %r" % info, r.stdout + r.stderr)
        r = subprocess.run(as_nobody + [theirs_files["tool"], "stat", "--all", "--json"],
                           capture_output=True, text=True, env=clean_env(), timeout=TIMEOUT)
        try:
            doc = json.loads(r.stdout)
            pids = [o["pid"] for o in doc["processes"]]
            check("stat --all as nobody: nobody's own processes, ours not shown",
                  theirs in pids and ours not in pids and doc["denied"] >= 1,
                  "pids %r, denied %r" % (pids, doc["denied"]), r.stdout + r.stderr)
        except (ValueError, KeyError, TypeError) as e:
            fail("stat --all as nobody: nobody's own processes, ours not shown", repr(e),
                 r.stdout + r.stderr)
    finally:
        stop(q, ours)
        stop(p, theirs)
        if not existed:
            try:
                os.rmdir(nobody_dir)
            except OSError:
                pass


def stale_figures():
    """A page of a live process whose figures are a minute old (the process
    is this one, the page written here): stale in stat, stat --json, top and
    the exposition; a current process beside it is not."""
    import mmap
    import struct
    parse = prometheus_parser()
    pid = os.getpid()
    page_dir_ready()
    path = page_path(pid)
    if os.path.exists(path):
        os.unlink(path)
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    old = time.time_ns() - 60 * 10 ** 9
    record = struct.pack("<IIIIQQ16sQ", 0x3170626d, 1, PAGE_SIZE_V1, pid, start_ticks, old,
                         b"stalewriter", 2)
    record += struct.pack("<14QII", old, 10 ** 9, 7, 48 * MIB, 50 * MIB, 47 * MIB, 49 * MIB, MIB,
                          48 * MIB, 256 * MIB, 200 * MIB, 230 * MIB, 256 * MIB, 0, 0, 1)
    record += struct.pack("<24s8s12s36s192s", b"unrestricted", b"abort", b"active", b"rss",
                          b"MEMBUDGET_LIMIT=256M")
    p, current = start_live(256, 40, 120, via_run=False)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, record + b"\0" * (4096 - len(record)))
        # Mapped, as the library keeps its page (else taken for a gone process's).
        mapping = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
        try:
            wait_for(lambda: page_ready(current))
            r, f = stat_fields(pid)
            check("stale: stat marks a minute-old page STALE before its figures",
                  r.returncode == 0 and f.get("STALE", "").startswith("STALE") and
                  "not current" in f["STALE"] and "STALE" in f.get("updated", "") and
                  r.stdout.index("STALE") < r.stdout.index("footprint"), "unexpected",
                  r.stdout + r.stderr)
            doc = stat_json(pid)
            check("stale: stat --json says so", doc is not None and doc["stale"] is True and
                  doc["age_ns"] >= 59 * 10 ** 9, "doc %r" % doc)
            r, row = top_row(pid)
            check("stale: top marks the row stale", row is not None and
                  re.search(r" stale( |$)", row) and "stale: past" in r.stdout, "row %r" % row,
                  r.stdout)
            r = tool("stat", "--all", "--prometheus")
            stale = {}
            if parse is not None and r.returncode == 0:
                for family in parse(r.stdout):
                    for sample in family.samples:
                        if sample.name == "membudget_stale":
                            stale[int(sample.labels["pid"])] = sample.value
            check("stale: membudget_stale is 1 for it, 0 for a process that runs",
                  stale.get(pid) == 1 and stale.get(current) == 0, "%r" % stale,
                  r.stdout + r.stderr)
        finally:
            mapping.close()
    finally:
        os.close(fd)
        if os.path.exists(path):
            os.unlink(path)
        stop(p, current)


# ---- install, pkg-config, man pages ------------------------------------------------

def install():
    dest = os.path.join(tmp, "destdir")
    make = os.environ.get("MAKE", "make")
    r = subprocess.run([make, "-C", REPO, "--no-print-directory", "-s", "install",
                        "PREFIX=/usr/local", "DESTDIR=" + dest], capture_output=True, text=True,
                       timeout=300)
    prefix = os.path.join(dest, "usr/local")
    files = ["lib/libmembudget.so", "bin/membudget", "include/membudget.h",
             "lib/pkgconfig/membudget.pc", "share/man/man1/membudget.1",
             "share/man/man3/membudget.3"]
    if os.path.exists(os.path.join(BUILD, "membudget-report")):
        files.append("libexec/membudget/membudget-report")
    missing = [f for f in files if not os.path.exists(os.path.join(prefix, f))]
    if not check("make install DESTDIR", r.returncode == 0 and not missing,
                 "exit %d, missing %s" % (r.returncode, missing), r.stdout + r.stderr):
        return
    env = clean_env({"PKG_CONFIG_PATH": os.path.join(prefix, "lib/pkgconfig"),
                     "PKG_CONFIG_SYSROOT_DIR": dest})
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "membudget"], capture_output=True,
                        text=True, env=env)
    flags = pc.stdout.split()
    check("pkg-config membudget", pc.returncode == 0 and
          "-I" + os.path.join(prefix, "include") in flags and
          "-L" + os.path.join(prefix, "lib") in flags and "-lmembudget" in flags,
          "got %r" % pc.stdout, pc.stderr)
    exe = os.path.join(tmp, "shrinking_cache")
    cc = subprocess.run([os.environ.get("CC", "cc"), os.path.join(REPO, "examples/shrinking_cache.c"),
                         "-o", exe] + flags, capture_output=True, text=True)
    if not check("the example builds against membudget.pc", cc.returncode == 0,
                 "cc exit %d" % cc.returncode, cc.stderr):
        return
    run = subprocess.run([exe], capture_output=True, text=True, timeout=TIMEOUT,
                         env=clean_env({"LD_LIBRARY_PATH": os.path.join(prefix, "lib"),
                                        "MEMBUDGET_LIMIT": "64M"}))
    check("the example runs, linked, and its cache shrinks",
          run.returncode == 0 and "work done" in run.stdout and "dropped" in run.stderr,
          "exit %d" % run.returncode, run.stdout + run.stderr)
    installed = os.path.join(prefix, "bin/membudget")
    r = subprocess.run([installed, "run", "--limit", "64M", "--", "sh", "-c", 'echo "$LD_PRELOAD"'],
                       capture_output=True, text=True, env=clean_env())
    check("installed membudget finds the installed library",
          r.returncode == 0 and r.stdout.strip() == os.path.join(prefix, "lib/libmembudget.so"),
          "got %r" % r.stdout, r.stderr)
    for page in ("man1/membudget.1", "man3/membudget.3"):
        g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                            os.path.join(prefix, "share/man", page)], capture_output=True, text=True)
        check("man page %s renders without warnings" % page, g.returncode == 0 and g.stderr == "",
              "groff exit %d" % g.returncode, g.stderr)
    r = subprocess.run([make, "-C", REPO, "--no-print-directory", "-s", "uninstall",
                        "PREFIX=/usr/local", "DESTDIR=" + dest], capture_output=True, text=True)
    left = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
    check("make uninstall removes every file", r.returncode == 0 and not left,
          "left %s" % left, r.stderr)


def man_pages():
    with open(os.path.join(REPO, "policy/config.c")) as f:
        names = re.findall(r'\[MB_OPT_\w+\]\s*=\s*\{"(MEMBUDGET_\w+)"', f.read())
    with open(os.path.join(BUILD, "man/membudget.1")) as f:
        man1 = f.read()
    missing = [n for n in names if ".B %s\n" % n not in man1]
    check("membudget(1) describes every MEMBUDGET_* variable of the options table",
          len(names) >= 15 and not missing, "missing %s" % missing)
    with open(os.path.join(REPO, "include/membudget.h")) as f:
        header = f.read()
    functions = set(re.findall(r"\b(membudget_[a-z_]+)\s*\(", header))
    fields = re.findall(r"^\s+uint64_t (\w+);", header, re.M)
    with open(os.path.join(BUILD, "man/membudget.3")) as f:
        man3 = f.read()
    missing = [n for n in sorted(functions) + fields if n.replace("_", "\\_") not in man3 and
               n not in man3]
    check("membudget(3) describes every function and stats field of membudget.h",
          len(functions) >= 10 and not missing, "missing %s" % missing)


def main():
    cases = [version, help_texts, bad_arguments, limits_golden, limits_here, run_exit_codes,
             run_environment, run_budget_death, run_library_paths, run_install_prefix_with_space,
             run_cannot_preload, run_library_not_started, run_handshake_not_inherited,
             handshake_values, live_statistics, stat_json_text, top_site_live,
             top_site_sampling_off, top_site_old_page, stale_pages, fork_child_page,
             stat_all_prometheus, stat_all_json, stat_all_users, stale_figures, install,
             man_pages]
    return suite.run_cases(results, cases, children=children,
                           cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))


if __name__ == "__main__":
    sys.exit(main())
