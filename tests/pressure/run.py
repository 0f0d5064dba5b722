#!/usr/bin/env python3
"""Pressure from around the process (issue 16, policy/machine.h): an idle
process under the library, watched with `membudget stat --json`, while the
memory around it changes:

  - memory PSI through a file of the test's own (MEMBUDGET_PSI_FILE): some
    avg10 over its threshold raises the policy to Conservative and the
    callback hears level 1, full avg10 over its own to Strict (level 2), back
    under lowers it; the report's policy events name the source "psi";
  - MemAvailable the same way (MEMBUDGET_MEMINFO_FILE);
  - switched off (MEMBUDGET_MACHINE=off, MEMBUDGET_PSI=off): the same file
    raises nothing;
  - a real v1 memory cgroup (root; skipped with the reason when there is
    none): a process in a new child cgroup whose memory.limit_in_bytes is
    lowered while it runs shows lower thresholds and the source in `stat`,
    its callback runs (its footprint is above the new Conservative threshold),
    and raising the limit back restores them; the cgroup's usage against its
    limit raises the policy too (MEMBUDGET_CGROUP_USED).  The cgroup is
    removed at the end, whatever happens.

Nothing waits for a time: each wait is for a state (a line, a policy, a
number of monitor ticks), bounded by a generous limit so that a hang fails.

Usage: run.py BUILD_ROOT.  Prints "ok NAME", "skip NAME: why" or
"FAIL NAME: why" per case, then "N passed, N failed[, N skipped]"."""
import errno
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import suite  # noqa: E402  (tests/suite.py)

BUILD = os.path.realpath(sys.argv[1])
TOOL = os.path.join(BUILD, "membudget")
LIB = os.path.join(BUILD, "libmembudget.so")
DEBUG_LIB = os.path.join(BUILD, "debug", "libmembudget.so")
HOLD = os.path.join(BUILD, "tests", "pressure", "hold")
UNIT = os.path.join(BUILD, "tests", "pressure", "test_machine")
MIB = 1 << 20
GIB = 1 << 30
WAIT = 30.0  # seconds: the most any one state may take to appear (a hang fails)

results = suite.Results(16)
ok, skip, fail = results.ok, results.skip, results.fail
tmp = tempfile.mkdtemp(prefix="mb-pressure.")
RUNNER_PID = os.getpid()

QUIET = {"MEMBUDGET_MONITOR": "thread", "MEMBUDGET_INTERVAL": "20ms"}


def write_atomic(path, text):
    """Replaces path's contents in one step: the library never reads half."""
    part = path + ".part"
    with open(part, "w") as f:
        f.write(text)
    os.rename(part, path)


def psi_text(some, full):
    return ("some avg10=%.2f avg60=0.00 avg300=0.00 total=1\n"
            "full avg10=%.2f avg60=0.00 avg300=0.00 total=1\n" % (some, full))


def meminfo_text(total_kib, available_kib):
    return ("MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\n"
            "Buffers:             0 kB\n" % (total_kib, available_kib, available_kib))


class Held:
    """tests/pressure/hold under the library: its output lines gathered by a
    thread, its figures read with `membudget stat --json`."""

    def __init__(self, env, mib=16, preexec=None, lib=LIB):
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([HOLD, str(mib)], env=suite.environment(env, lib),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, preexec_fn=preexec)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # the end of the output
            self.cond.notify_all()

    def wait_line(self, pred, limit=WAIT):
        """The first line (from the start) for which pred holds, or None."""
        end = time.monotonic() + limit
        with self.cond:
            while True:
                for line in self.lines:
                    if line is not None and pred(line):
                        return line
                if None in self.lines or time.monotonic() >= end:
                    return None
                self.cond.wait(0.1)

    def levels(self):
        with self.cond:
            return [int(l.split()[1]) for l in self.lines if l and l.startswith("level ")]

    def stat(self):
        r = subprocess.run([TOOL, "stat", str(self.proc.pid), "--json"], capture_output=True,
                           text=True, env=suite.environment(), timeout=WAIT)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def wait_stat(self, pred, limit=WAIT):
        """The first `stat --json` for which pred holds, or the last one read
        (None when none could be read)."""
        end = time.monotonic() + limit
        last = None
        while True:
            s = self.stat()
            if s is not None:
                last = s
                if pred(s):
                    return s, True
            if time.monotonic() >= end or self.proc.poll() is not None:
                return last, False
            time.sleep(0.05)

    def ready(self):
        return self.wait_line(lambda l: l.startswith("ready ")) is not None and \
            self.wait_stat(lambda s: True)[1]

    def ticks_pass(self, n):
        """Waits until the page was updated n more times (n monitor ticks)."""
        first = self.stat()
        if first is None:
            return False
        return self.wait_stat(lambda s: s["updates"] >= first["updates"] + n)[1]

    def grow(self, mib):
        """Allocates mib more mebibytes in the process; whether it answered."""
        before = len([l for l in self.lines if l and l.startswith("grown ")])
        self.proc.stdin.write("grow %d\n" % mib)
        self.proc.stdin.flush()
        end = time.monotonic() + WAIT
        with self.cond:
            while len([l for l in self.lines if l and l.startswith("grown ")]) == before:
                if None in self.lines or time.monotonic() >= end:
                    return False
                self.cond.wait(0.1)
        return True

    def dump(self, path):
        self.proc.stdin.write("dump %s\n" % path)
        self.proc.stdin.flush()
        line = self.wait_line(lambda l: l.startswith("dumped "))
        if line != "dumped 0":
            return None
        with open(path) as f:
            return json.load(f)

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.stderr.read()


def describe(s):
    if s is None:
        return "no readable stat"
    keys = ("policy", "outside_policy", "outside_source", "psi_some", "psi_full",
            "mem_available_bytes", "mem_total_bytes", "cgroup_usage_bytes", "cgroup_bytes",
            "footprint_bytes", "conservative_bytes", "strict_bytes", "limit_bytes",
            "limit_source", "updates")
    return json.dumps({k: s.get(k) for k in keys}, indent=1)


def policy_is(name, outside=None, source=None):
    def pred(s):
        return s.get("policy") == name and \
            (outside is None or s.get("outside_policy") == outside) and \
            (source is None or s.get("outside_source") == source)
    return pred


def outside_events(dump, source):
    return [e for e in dump["policy"]["events"] if e.get("source") == source]


# ---- PSI and MemAvailable through the test's own files --------------------------

def check_source(name, var, calm, conservative, strict, source, source_name, text_name, extra):
    """One source driven through its file: calm, then the conservative
    level, the strict level, calm again; the callback's levels and the
    report's events along the way."""
    path = os.path.join(tmp, name.split()[0] + ".txt")
    write_atomic(path, calm)
    env = dict(QUIET, **extra)
    env[var] = path
    h = Held(env)
    try:
        if not h.ready():
            return fail(name, "the process did not start or publish", h.stop())
        s, _ = h.wait_stat(lambda s: True)
        if s.get("policy") != "unrestricted" or h.levels():
            return fail(name, "under pressure before any: levels %s" % h.levels(), describe(s))
        write_atomic(path, conservative)
        if h.wait_line(lambda l: l == "level 1") is None:
            return fail(name, "no callback at level 1 (levels %s)" % h.levels(), describe(h.stat()))
        s, good = h.wait_stat(policy_is("conservative", 1, source))
        if not good:
            return fail(name, "not conservative from %s" % source_name, describe(s))
        write_atomic(path, strict)
        if h.wait_line(lambda l: l == "level 2") is None:
            return fail(name, "no callback at level 2 (levels %s)" % h.levels(), describe(h.stat()))
        s, good = h.wait_stat(policy_is("strict", 2, source))
        if not good:
            return fail(name, "not strict from %s" % source_name, describe(s))
        text = subprocess.run([TOOL, "stat", str(h.proc.pid)], capture_output=True, text=True,
                              timeout=WAIT).stdout
        said = [l for l in text.splitlines() if l.startswith("outside")]
        if len(said) != 1 or "strict, asked by %s" % text_name not in said[0]:
            return fail(name, "`membudget stat` does not say why: %r" % said, text)
        write_atomic(path, calm)
        s, good = h.wait_stat(policy_is("unrestricted", 0))
        if not good:
            return fail(name, "the policy did not fall back", describe(s))
        dump = h.dump(os.path.join(tmp, name.split()[0] + ".json"))
        if dump is None:
            return fail(name, "membudget_dump() wrote no readable report")
        rises = [e for e in outside_events(dump, source_name) if e["kind"] == "policy"]
        tos = [e["to"] for e in rises]
        if "conservative" not in tos or "strict" not in tos:
            return fail(name, "the report's events do not name %s: %s" % (
                source_name, json.dumps(dump["policy"]["events"])))
        bad = [e for e in rises if e["to"] != "unrestricted" and
               not e["source_value"] >= e["source_bound"] > 0]
        if bad:
            return fail(name, "an event whose measure is under its threshold", json.dumps(bad))
        levels = h.levels()
        if levels[:2] != [1, 2]:
            return fail(name, "callback levels %s, expected 1 then 2" % levels)
        ok(name + " (levels %s; %d events from %s)" % (levels, len(rises), source_name))
    finally:
        err = h.stop()
        if "membudget:" in err:
            fail(name + ": no line on stderr", "the library complained", err)


def check_psi():
    check_source("psi file: some avg10 12% conservative, full avg10 80% strict, 0% calm",
                 "MEMBUDGET_PSI_FILE", psi_text(0, 0), psi_text(12, 0), psi_text(30, 80), 1,
                 "psi", "memory PSI", {"MEMBUDGET_MEM_USED": "off", "MEMBUDGET_CGROUP_USED": "off"})


def check_meminfo():
    total = 8 * 1024 * 1024  # kB: 8 GiB
    check_source("meminfo file: 92% used conservative, 96% strict, 50% calm",
                 "MEMBUDGET_MEMINFO_FILE", meminfo_text(total, total // 2),
                 meminfo_text(total, total * 8 // 100), meminfo_text(total, total * 4 // 100), 2,
                 "memavailable", "MemAvailable", {"MEMBUDGET_PSI": "off", "MEMBUDGET_CGROUP_USED": "off"})


def check_inline():
    """Without the monitor thread, the tick runs on allocation slow paths: a
    process that allocates under PSI pressure hears the callback at a charge
    after the tick that read the file (the debug library, whose lock-rank
    checks watch the tick taking the pressure lock inside an allocation)."""
    name = "inline monitor, debug library: PSI pressure acted on while the process allocates"
    if not os.path.exists(DEBUG_LIB):
        return fail(name, "%s is missing" % DEBUG_LIB)
    path = os.path.join(tmp, "inline.txt")
    write_atomic(path, psi_text(0, 0))
    h = Held({"MEMBUDGET_MONITOR": "inline", "MEMBUDGET_INTERVAL": "1ms",
              "MEMBUDGET_PSI_FILE": path, "MEMBUDGET_MEM_USED": "off",
              "MEMBUDGET_CGROUP_USED": "off"}, 4, lib=DEBUG_LIB)
    try:
        if h.wait_line(lambda l: l.startswith("ready ")) is None:
            return fail(name, "the process did not start", h.stop())
        write_atomic(path, psi_text(12, 0))
        grown = 0
        while not h.levels() and grown < 512:
            if not h.grow(8):
                return fail(name, "the process stopped answering", h.stop())
            grown += 8
        if h.levels() != [1]:
            return fail(name, "levels %s after %d MiB more" % (h.levels(), grown))
        ok(name + " (after %d MiB)" % grown)
    finally:
        err = h.stop()
        if h.proc.returncode != 0:
            fail(name + ": exit status 0", "status %d" % h.proc.returncode, err)


def check_idle_inline():
    """The default monitor mode with a process that allocates nothing: the
    library's thread runs the pressure tick when it republishes the page, so
    the process still hears the machine's pressure (the release build)."""
    name = "inline monitor, idle process: PSI pressure acted on by the library's thread"
    path = os.path.join(tmp, "idle.txt")
    write_atomic(path, psi_text(0, 0))
    h = Held({"MEMBUDGET_MONITOR": "inline", "MEMBUDGET_PSI_FILE": path,
              "MEMBUDGET_MEM_USED": "off", "MEMBUDGET_CGROUP_USED": "off"}, 4)
    try:
        if h.wait_line(lambda l: l.startswith("ready ")) is None:
            return fail(name, "the process did not start", h.stop())
        write_atomic(path, psi_text(12, 0))
        if h.wait_line(lambda l: l == "level 1") is None:
            return fail(name, "no callback while idle (levels %s)" % h.levels(), describe(h.stat()))
        s, good = h.wait_stat(policy_is("conservative", 1, 1))
        if not good:
            return fail(name, "not conservative from psi", describe(s))
        ok(name)
    finally:
        err = h.stop()
        if h.proc.returncode != 0:
            fail(name + ": exit status 0", "status %d" % h.proc.returncode, err)


def check_off(name, extra):
    """A PSI file far over both thresholds raises nothing when switched off."""
    path = os.path.join(tmp, "off.txt")
    write_atomic(path, psi_text(90, 90))
    env = dict(QUIET, **extra)
    env["MEMBUDGET_PSI_FILE"] = path
    env["MEMBUDGET_MEM_USED"] = "off"
    env["MEMBUDGET_CGROUP_USED"] = "off"
    h = Held(env)
    try:
        if not h.ready():
            return fail(name, "the process did not start or publish", h.stop())
        if not h.ticks_pass(25):
            return fail(name, "the page stopped being updated", describe(h.stat()))
        s = h.stat()
        if h.levels() or s is None or s.get("policy") != "unrestricted" or \
                s.get("outside_policy") != 0:
            return fail(name, "pressure while switched off: levels %s" % h.levels(), describe(s))
        ok(name)
    finally:
        h.stop()


def check_bad_values():
    """A bad value costs one line naming the variable and the accepted form;
    the process runs on with the default."""
    name = "bad MEMBUDGET_PSI, MEMBUDGET_MACHINE, MEMBUDGET_PSI_FILE: one line each"
    env = suite.environment({"MEMBUDGET_PSI": "7", "MEMBUDGET_MACHINE": "maybe",
                             "MEMBUDGET_PSI_FILE": "relative"}, LIB)
    r = subprocess.run(["/bin/true"], env=env, capture_output=True, text=True, timeout=WAIT)
    lines = r.stderr.splitlines()
    want = ["membudget: MEMBUDGET_MACHINE='maybe' is not valid (expected on or off); using the "
            "default",
            "membudget: MEMBUDGET_PSI='7' is not valid (expected two percentages of stalled time, "
            "some avg10 for conservative and full avg10 for strict, such as 7%,70% (0% turns one "
            "off), or off); using the default",
            "membudget: MEMBUDGET_PSI_FILE='relative' is not valid (expected an absolute path "
            "shorter than 1024 bytes); using the default"]
    results.check(name, r.returncode == 0 and sorted(lines) == sorted(want),
                  "status %d, lines:" % r.returncode, r.stderr)


# ---- a real v1 memory cgroup ------------------------------------------------------

def own_v1_memory_cgroup():
    """The directory of this process's v1 memory cgroup, or (None, why)."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mountinfo") as f:
            mounts = f.read().splitlines()
    except OSError as e:
        return None, str(e)
    path = None
    for line in lines:
        hid, controllers, p = line.split(":", 2)
        if "memory" in controllers.split(","):
            path = p
    mount = None
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) >= 5 and len(rfields) >= 3 and rfields[0] == "cgroup" and \
                "memory" in rfields[2].split(","):
            mount = (fields[3], fields[4])
    if path is None or mount is None:
        return None, "no cgroup v1 memory controller mounted (cgroup v2 only, or none)"
    root, point = mount
    rel = path if root == "/" else (path[len(root):] if path.startswith(root) else "/")
    d = os.path.normpath(point + "/" + rel.lstrip("/"))
    return (d, None) if os.path.isdir(d) else (point, None)


def ancestors_limit(d):
    """The smallest memory.limit_in_bytes on d and above it (None: unlimited)."""
    smallest = None
    while d.startswith("/sys/fs/cgroup/"):
        try:
            with open(os.path.join(d, "memory.limit_in_bytes")) as f:
                v = int(f.read())
            if v < (1 << 62):
                smallest = v if smallest is None else min(smallest, v)
        except (OSError, ValueError):
            break
        d = os.path.dirname(d)
    return smallest


def set_limit(cg, value):
    with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
        f.write(str(value))


def remove_cgroup(cg):
    for _ in range(100):
        try:
            os.rmdir(cg)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY:
                return False
            time.sleep(0.05)
    return False


def in_cgroup(cg, mib, extra):
    procs = os.path.join(cg, "cgroup.procs")

    def enter():
        # In the child, between fork and exec: only the child moves.
        if os.getpid() == RUNNER_PID:
            os._exit(121)
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    return Held(dict(QUIET, **extra), mib, enter)


def cgroup_limit_case(cg):
    name = "v1 cgroup: memory.limit_in_bytes lowered at run time lowers the thresholds, raised restores them"
    # 160 MiB held.  At 1 GiB: ramSize 1 GiB, Conservative 0.5 x 1 GiB = 512 MiB;
    # at 256 MiB: ramSize 256 MiB, Conservative 128 MiB (the footprint is above
    # it), Strict and the kill threshold 0.9 x 256 MiB (below it).
    set_limit(cg, GIB)
    h = in_cgroup(cg, 160, {"MEMBUDGET_CONSERVATIVE": "0.5", "MEMBUDGET_PSI": "off",
                            "MEMBUDGET_MEM_USED": "off", "MEMBUDGET_CGROUP_USED": "off"})
    try:
        if not h.ready():
            return fail(name, "the process did not start or publish", h.stop())
        s, good = h.wait_stat(lambda s: s.get("conservative_bytes") == GIB // 2 and
                              s.get("cgroup_bytes") == GIB)
        if not good or s.get("policy") != "unrestricted" or h.levels():
            return fail(name, "at 1 GiB: not the thresholds of a 1 GiB ramSize, or pressure "
                        "already (levels %s)" % h.levels(), describe(s))
        set_limit(cg, 256 * MIB)
        s, good = h.wait_stat(lambda s: s.get("conservative_bytes") == 128 * MIB)
        if not good:
            return fail(name, "the lowered limit did not lower the thresholds", describe(s))
        kill = 256 * MIB * 9 // 10
        if s.get("limit_bytes") != kill or s.get("cgroup_bytes") != 256 * MIB or \
                "cgroup limit lowered at run time to 256 MiB" not in s.get("limit_source", ""):
            return fail(name, "limit or its source after lowering", describe(s))
        if h.wait_line(lambda l: l == "level 1") is None:
            return fail(name, "no callback at level 1 with the footprint above 128 MiB",
                        describe(h.stat()))
        s, good = h.wait_stat(policy_is("conservative"))
        if not good:
            return fail(name, "not conservative after lowering", describe(s))
        set_limit(cg, GIB)
        s, good = h.wait_stat(lambda s: s.get("conservative_bytes") == GIB // 2 and
                              s.get("policy") == "unrestricted")
        if not good or "cgroup limit raised at run time to 1 GiB" not in s.get("limit_source", ""):
            return fail(name, "raising the limit back did not restore the thresholds",
                        describe(s))
        dump = h.dump(os.path.join(tmp, "cgroup.json"))
        if dump is None:
            return fail(name, "membudget_dump() wrote no readable report")
        changes = [(e["source_value"], e["source_bound"])
                   for e in outside_events(dump, "cgroup-limit") if e["kind"] == "limit"]
        if changes != [(256 * MIB, GIB), (GIB, 256 * MIB)]:
            return fail(name, "the report's limit events: %s" % changes,
                        json.dumps(dump["policy"]["events"]))
        if dump["limit"]["cgroup_bytes"] != GIB or dump["limit"]["conservative_bytes"] != GIB // 2:
            return fail(name, "the report's limit section", json.dumps(dump["limit"]))
        ok(name + " (levels %s)" % h.levels())
    finally:
        h.stop()


def cgroup_usage_case(cg):
    name = "v1 cgroup: usage over 50% of memory.limit_in_bytes raises Conservative (MEMBUDGET_CGROUP_USED=50%,0%)"
    set_limit(cg, 256 * MIB)
    h = in_cgroup(cg, 160, {"MEMBUDGET_PSI": "off", "MEMBUDGET_MEM_USED": "off",
                            "MEMBUDGET_CGROUP_USED": "50%,0%"})
    try:
        if not h.ready():
            return fail(name, "the process did not start or publish", h.stop())
        if h.wait_line(lambda l: l == "level 1") is None:
            return fail(name, "no callback at level 1 (levels %s)" % h.levels(), describe(h.stat()))
        s, good = h.wait_stat(policy_is("conservative", 1, 3))
        if not good or not s.get("cgroup_usage_bytes", 0) >= 128 * MIB:
            return fail(name, "not conservative from the cgroup", describe(s))
        ok(name + " (usage %.1f MiB)" % (s["cgroup_usage_bytes"] / MIB))
    finally:
        h.stop()


def check_real_cgroup():
    base = "v1 cgroup: the limit followed live, the usage against it"
    if os.geteuid() != 0:
        return skip(base, "not root: no cgroup can be created")
    parent, why = own_v1_memory_cgroup()
    if parent is None:
        return skip(base, why)
    smallest = ancestors_limit(parent)
    if smallest is not None and smallest < 2 * GIB:
        return skip(base, "an enclosing cgroup is limited to %d bytes, below 2 GiB" % smallest)
    cg = os.path.join(parent, "membudget-pressure-test-%d" % RUNNER_PID)
    try:
        os.mkdir(cg)
    except OSError as e:
        return skip(base, "mkdir %s: %s" % (cg, e.strerror))
    try:
        cgroup_limit_case(cg)
        cgroup_usage_case(cg)
    finally:
        if not remove_cgroup(cg):
            fail("remove the test cgroup", "%s is still there" % cg)


def check_unit():
    """tests/pressure/test_machine: its failures are printed, its counts added."""
    r = subprocess.run([UNIT], capture_output=True, text=True, timeout=120)
    sys.stdout.write(r.stderr)
    last = (r.stdout.strip().splitlines() or [""])[-1]
    m = re.match(r"(\d+) passed, (\d+) failed$", last)
    if m is None or r.returncode != 0 or m.group(2) != "0":
        return fail("unit: test_machine", "status %d, last line %r" % (r.returncode, last))
    results.passed += int(m.group(1))
    print("ok unit: test_machine, %s" % last, flush=True)


def main():
    for path in (TOOL, LIB, HOLD, UNIT, DEBUG_LIB):
        if not os.path.exists(path):
            print("FAIL setup: %s is missing" % path)
            print(results.summary())
            return 1
    try:
        check_unit()
        check_bad_values()
        check_psi()
        check_meminfo()
        check_inline()
        check_idle_inline()
        check_off("switched off: MEMBUDGET_MACHINE=off, PSI at 90%: no pressure",
                  {"MEMBUDGET_MACHINE": "off"})
        check_off("switched off: MEMBUDGET_PSI=off, PSI at 90%: no pressure",
                  {"MEMBUDGET_PSI": "off"})
        check_real_cgroup()
    finally:
        subprocess.run(["rm", "-rf", tmp])
    print("pressure: " + results.summary())
    return 0 if results.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
