#!/usr/bin/env python3
"""One budget for a group of processes, with priority bands (issue 17,
DESIGN §11): processes started with MEMBUDGET_GROUP share the file
<root>/membudget-<uid>/group.NAME (policy/group.h) and its limit.

  join            members claim slots; each publishes its footprint
  creator exits   the file and its limit outlive the member that made it
  band order      over the group's Conservative threshold, members are asked
                  to release one at a time: lowest band first, largest first
                  within it, higher bands only after the lower ones answered
  victim          at the group's limit exactly one member dies: the lowest
                  band, the largest in it; the others run on, and its report
                  has the group section with every member
  sigkill         a member killed by SIGKILL leaves the sum and is never
                  chosen: the next one in its band is
  stalled         a stopped member, asked or chosen, holds nobody up: after
                  3 s the next in order is asked, or dies
  no descriptors  a member out of file descriptors still counts the others
  killed creator  a creator killed while it fills in the file leaves none
                  half-made: the next member makes the group and joins; a
                  member killed while it claims a slot leaves it free
  table full      the 65th live member is refused with one line; a dead
                  member's slot is taken again
  two users       (root only) root's and nobody's groups of the same name are
                  two files, never mixed
  bad name, link  one line naming MEMBUDGET_GROUP; a link in the group
                  file's place is not followed

Usage: run.py BUILD_ROOT.  Prints "ok NAME", "skip NAME: why" or "FAIL NAME:
why", then "N passed, N failed[, N skipped]".  States and counts are
asserted, never durations; every wait has a generous bound."""
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import suite  # noqa: E402  (tests/suite.py)

BUILD = os.path.realpath(sys.argv[1])
LIB = os.path.join(BUILD, "libmembudget.so")
REPORT_TOOL = os.path.join(BUILD, "membudget-report")
SHM = "/dev/shm"
MIB = 1 << 20
NOBODY = 65534
SLOTS = 64
# The file's layout (policy/group.h): the header, then 64 slots of 48 bytes.
MAGIC = 0x3172676D
HEADER = struct.Struct("<IIIIQQIIQQ72s")
SLOT = struct.Struct("<IIQQIIQII")
SETTLE = 30.0

results = suite.Results(12)
ok, skip, fail, check = results.ok, results.skip, results.fail, results.check
tmp = tempfile.mkdtemp(prefix="mb-group.")
os.chmod(tmp, 0o755)
children = []
MEMBER = os.path.join(tmp, "member.py")
with open(MEMBER, "w") as f:
    f.write("import sys\n"
            "hold = bytearray(int(sys.argv[1]) << 20)\n"
            "for i in range(0, len(hold), 4096): hold[i] = 1\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n")
HOLD = os.path.join(tmp, "hold.py")
with open(HOLD, "w") as f:  # hold.py MIB [PID]: holds MIB MiB until PID is gone (or 120 s)
    f.write("import sys, time\n"
            "hold = bytearray(int(sys.argv[1]) << 20)\n"
            "for i in range(0, len(hold), 4096): hold[i] = 1\n"
            "def gone(pid):\n"
            "    try:\n"
            "        return open('/proc/%s/stat' % pid).read().rsplit(')', 1)[1].split()[0] in 'ZX'\n"
            "    except OSError:\n"
            "        return True\n"
            "end = time.monotonic() + 120\n"
            "while len(sys.argv) > 2 and not gone(sys.argv[2]) and time.monotonic() < end:\n"
            "    time.sleep(0.05)\n")
TOOL = os.path.join(BUILD, "membudget")
NOFD = os.path.join(tmp, "nofd.py")
with open(NOFD, "w") as f:  # nofd.py MIB: uses up its file descriptors, then holds MIB MiB
    f.write("import os, resource, sys\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))\n"
            "fds = []\n"
            "try:\n"
            "    while True: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
            "except OSError:\n"
            "    pass\n"
            "hold = bytearray(int(sys.argv[1]) << 20)\n"
            "for i in range(0, len(hold), 4096): hold[i] = 1\n"
            "os.close(fds.pop())\n"
            "print('ready', flush=True)\n"
            "fds.append(os.open('/dev/null', os.O_RDONLY))\n"
            "sys.stdin.readline()\n")


def group_path(name, uid=None):
    return "%s/membudget-%d/group.%s" % (SHM, os.geteuid() if uid is None else uid, name)


def unique(stem):
    return "%s-%d-%d" % (stem, os.getpid(), int(time.monotonic() * 1000) % 100000)


def read_group(name, uid=None):
    """The header and the slots with a pid, or None."""
    try:
        with open(group_path(name, uid), "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < HEADER.size + SLOTS * SLOT.size:
        return None
    h = HEADER.unpack_from(data, 0)
    slots = []
    for i in range(SLOTS):
        s = SLOT.unpack_from(data, HEADER.size + i * SLOT.size)
        if s[0] != 0:
            slots.append({"pid": s[0], "band": s[1], "footprint": s[3], "requested": s[4],
                          "acknowledged": s[5], "released": s[6], "asked_seq": s[8]})
    return {"magic": h[0], "limit": h[4], "creator": h[6], "victims": h[9], "slots": slots}


def env_for(name, extra=None):
    e = {"MEMBUDGET_GROUP": name, "MEMBUDGET_REPORT": os.path.join(tmp, "report.%p.json")}
    e.update(extra or {})
    return suite.environment(e, preload=LIB)


def member(name, mib, band, extra=None):
    """A python3 member holding mib MiB, waiting on stdin; returns it once ready."""
    extra = dict(extra or {})
    if band is not None:
        extra["MEMBUDGET_PRIORITY"] = str(band)
    p = subprocess.Popen([sys.executable, MEMBER, str(mib)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env_for(name, extra))
    children.append(p)
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError("member did not start: %r %s" % (line, p.stderr.read()))
    return p


def stop(p):
    if p.poll() is None:
        try:
            p.stdin.write("\n")
            p.stdin.flush()
        except OSError:
            pass
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_for(pred, seconds=SETTLE, step=0.1):
    end = time.monotonic() + seconds
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def published(name, pids, at_least):
    """Every pid has a slot whose footprint reached at_least[pid] bytes."""
    g = read_group(name)
    if g is None:
        return False
    seen = {s["pid"]: s["footprint"] for s in g["slots"]}
    return all(seen.get(pid, 0) >= at_least.get(pid, 1) for pid in pids)


def report_of(pid):
    path = os.path.join(tmp, "report.%d.json" % pid)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def creator(name, limit):
    """Makes the group with its limit in a process that exits at once."""
    return subprocess.run(["true"], capture_output=True, text=True, timeout=60,
                          env=env_for(name, {"MEMBUDGET_GROUP_LIMIT": limit}))


# ---- the cases ------------------------------------------------------------------

def join_and_creator_exits():
    name = unique("join")
    r = creator(name, "300M")
    g = read_group(name)
    check("creator exits: the group file and its limit stay", r.returncode == 0 and
          g is not None and g["magic"] == MAGIC and g["limit"] == 300 * MIB and not g["slots"],
          "exit %s, group %r" % (r.returncode, g), r.stderr)
    st = os.lstat(group_path(name))
    check("the group file is a regular file, ours, mode 0600",
          st.st_uid == os.geteuid() and (st.st_mode & 0o777) == 0o600 and st.st_size == 4096,
          "mode %o uid %d size %d" % (st.st_mode, st.st_uid, st.st_size))
    a = member(name, 40, 3, {"MEMBUDGET_GROUP_LIMIT": "900M"})
    b = member(name, 20, 7)
    try:
        want = {a.pid: 40 * MIB, b.pid: 20 * MIB}
        seen = wait_for(lambda: published(name, want.keys(), want))
        g = read_group(name)
        bands = {s["pid"]: s["band"] for s in (g or {"slots": []})["slots"]}
        check("join: both members publish their footprints and bands", seen and
              bands.get(a.pid) == 3 and bands.get(b.pid) == 7, "group %r" % g)
        check("join: a later member's MEMBUDGET_GROUP_LIMIT does not change the limit",
              g is not None and g["limit"] == 300 * MIB, "group %r" % g)
    finally:
        stop(a)
        stop(b)
    g = read_group(name)
    check("join: members that exit leave their slots", g is not None and not g["slots"],
          "group %r" % g)


def victim_case(name, members, trigger, expect_key, sigkill_key=None, stop_key=None):
    """Starts members {key: (mib, band)}, optionally SIGKILLs or SIGSTOPs one,
    then starts trigger (mib, band) to go over the limit; returns (procs,
    whether the expected one died)."""
    procs = {k: member(name, mib, band) for k, (mib, band) in members.items()}
    want = {p.pid: mib * MIB for k, p in procs.items() for mib in [members[k][0]]}
    wait_for(lambda: published(name, want.keys(), want))
    if sigkill_key is not None:
        victim = procs.pop(sigkill_key)
        victim.kill()
        victim.wait()
    if stop_key is not None:
        procs[stop_key].send_signal(signal.SIGSTOP)
    procs["trigger"] = member(name, trigger[0], trigger[1])
    expected = procs[expect_key]
    died = wait_for(lambda: expected.poll() is not None)
    time.sleep(2)  # give a wrong second victim the chance to show itself
    return procs, died


def victim_choice():
    name = unique("victim")
    creator(name, "300M")
    procs, died = victim_case(name, {"low-small": (40, 0), "low-large": (80, 0),
                                     "high": (110, 5)}, (50, 9), "low-large")
    try:
        v = procs["low-large"]
        others_alive = all(p.poll() is None for k, p in procs.items() if k != "low-large")
        err = v.stderr.read() if v.poll() is not None else ""
        check("victim: the lowest band's largest member dies (SIGABRT)", died and
              v.returncode == -signal.SIGABRT, "returncode %s" % v.returncode, err)
        check("victim: exactly one dies, the others run on", others_alive,
              {k: p.poll() for k, p in procs.items()})
        rep = report_of(v.pid)
        grp = (rep or {}).get("group") or {}
        pids = {m["pid"] for m in grp.get("members", [])}
        check("victim: its report names the group, its band and every member", rep is not None
              and rep["reason"] == "kill" and grp.get("name") == name and grp.get("band") == 0
              and grp.get("limit_bytes") == 300 * MIB and grp.get("victim_pid") == v.pid and
              pids == {p.pid for p in procs.values()} and
              grp.get("footprint_bytes", 0) >= 300 * MIB, "group %r" % grp)
        check("victim: its line says the group chose it", "group " + name in err and
              "band 0" in err, "stderr", err)
        r = subprocess.run([REPORT_TOOL, os.path.join(tmp, "report.%d.json" % v.pid)],
                           capture_output=True, text=True, timeout=60, env=suite.environment())
        check("victim: membudget-report shows the group and its members",
              r.returncode == 0 and "chosen by its group's memory budget: group " + name in
              r.stdout and ("  group %s: " % name) in r.stdout and
              all(" %d " % p.pid in r.stdout for p in procs.values()),
              "exit %s" % r.returncode, r.stdout + r.stderr)
        g = read_group(name)
        check("victim: one was chosen, in the group file", g is not None and g["victims"] == 1,
              "group %r" % g)
    finally:
        for p in procs.values():
            stop(p)


def sigkill_member():
    name = unique("sigkill")
    creator(name, "300M")
    procs, died = victim_case(name, {"killed": (120, 0), "low": (40, 0), "high": (60, 5)},
                              (200, 9), "low", sigkill_key="killed")
    try:
        v = procs["low"]
        check("sigkill: the killed member's bytes leave the sum; the next in its band dies",
              died and v.returncode == -signal.SIGABRT, "returncode %s" % v.returncode)
        rep = report_of(v.pid) or {}
        grp = rep.get("group") or {}
        check("sigkill: the report lists the live members only", grp and
              {m["pid"] for m in grp["members"]} == {p.pid for p in procs.values()} and
              grp["footprint_bytes"] < 300 * MIB + 120 * MIB, "group %r" % grp)
        check("sigkill: the others run on",
              all(p.poll() is None for k, p in procs.items() if k != "low"),
              {k: p.poll() for k, p in procs.items()})
    finally:
        for p in procs.values():
            stop(p)


def band_order():
    name = unique("bands")
    creator(name, "400M")  # conservative 320M, strict 360M
    spec = {"low-small": (40, 0), "low-large": (80, 0), "mid": (60, 5)}
    procs = {k: member(name, mib, band) for k, (mib, band) in spec.items()}
    try:
        want = {procs[k].pid: spec[k][0] * MIB for k in spec}
        wait_for(lambda: published(name, want.keys(), want))
        g = read_group(name)
        check("band order: under Conservative nobody is asked", g is not None and
              all(s["requested"] == 0 for s in g["slots"]), "group %r" % g)
        procs["high"] = member(name, 130, 9)  # the sum, about 350M: over Conservative
        pids = {k: p.pid for k, p in procs.items()}

        def all_answered():
            g = read_group(name)
            slots = {s["pid"]: s for s in (g or {"slots": []})["slots"]}
            return slots if all(slots.get(pid, {}).get("acknowledged", 0) >= 1
                                for pid in pids.values()) else None
        slots = wait_for(all_answered, seconds=60)
        if not check("band order: every member answered (the sum stayed over)", slots,
                     "group %r" % read_group(name)):
            return
        seq = {k: slots[pid]["asked_seq"] for k, pid in pids.items()}
        check("band order: lowest band first, largest first in it, higher bands after",
              0 < seq["low-large"] < seq["low-small"] < seq["mid"] < seq["high"],
              "asked in order %r" % seq)
        check("band order: nobody died under the limit", all(p.poll() is None for p in
                                                              procs.values()),
              {k: p.poll() for k, p in procs.items()})
    finally:
        for p in procs.values():
            stop(p)


def stopped_member_asks():
    """A member that never answers (stopped) does not hold up the others'
    asks: after MB_GROUP_ANSWER_NS the next in band order is asked."""
    name = unique("stalled")
    creator(name, "400M")  # conservative 320M, strict 360M
    spec = {"stopped": (80, 0), "mid": (60, 5)}
    procs = {k: member(name, mib, band) for k, (mib, band) in spec.items()}
    try:
        want = {procs[k].pid: spec[k][0] * MIB for k in spec}
        wait_for(lambda: published(name, want.keys(), want))
        procs["stopped"].send_signal(signal.SIGSTOP)
        procs["high"] = member(name, 200, 9)  # the sum, about 340M: over Conservative
        pids = {k: p.pid for k, p in procs.items()}

        def mid_answered():
            g = read_group(name)
            slots = {s["pid"]: s for s in (g or {"slots": []})["slots"]}
            mid = slots.get(pids["mid"], {})
            return slots if mid.get("acknowledged", 0) >= 1 else None
        slots = wait_for(mid_answered, seconds=60)
        if not check("stalled: the member after a stopped one is asked and answers", slots,
                     "group %r" % read_group(name)):
            return
        st = slots[pids["stopped"]]
        check("stalled: the stopped member was asked first and has not answered",
              0 < st["asked_seq"] < slots[pids["mid"]]["asked_seq"] and st["acknowledged"] == 0,
              "slots %r" % slots)
    finally:
        procs["stopped"].send_signal(signal.SIGCONT)
        for p in procs.values():
            stop(p)


def stopped_victim():
    """A chosen member that never notices (stopped) is passed over after
    MB_GROUP_ANSWER_NS: the next in order dies, the stopped one lives on."""
    name = unique("stallkill")
    creator(name, "300M")
    # About 12 MiB of python3 each on top: 318M in all, 246M once "low" is gone.
    procs, died = victim_case(name, {"stopped": (110, 0), "low": (60, 1), "high": (30, 5)},
                              (70, 9), "low", stop_key="stopped")
    try:
        v = procs["low"]
        check("stalled victim: the next in order dies (SIGABRT)",
              died and v.returncode == -signal.SIGABRT, "returncode %s" % v.returncode)
        procs["stopped"].send_signal(signal.SIGCONT)
        time.sleep(1)
        g = read_group(name)
        check("stalled victim: the stopped member and the others run on; two choices made",
              all(p.poll() is None for k, p in procs.items() if k != "low") and
              g is not None and g["victims"] == 2,
              {k: p.poll() for k, p in procs.items()}, "group %r" % g)
    finally:
        procs["stopped"].send_signal(signal.SIGCONT)
        for p in procs.values():
            stop(p)


def no_descriptors():
    """A member out of file descriptors cannot read the others' /proc files:
    they still count (it is chosen and dies), they are not taken for dead."""
    name = unique("nofd")
    creator(name, "300M")
    big = member(name, 150, 9)
    p = subprocess.Popen([sys.executable, NOFD, "200"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env_for(name, {"MEMBUDGET_PRIORITY": "0"}))
    children.append(p)
    try:
        died = wait_for(lambda: p.poll() is not None, seconds=60)
        err = p.stderr.read() if died else ""
        check("no descriptors: the member that cannot read /proc still sees the others and "
              "dies as the group's victim", died and p.returncode == -signal.SIGABRT and
              "group " + name in err, "returncode %s" % p.returncode, err)
        check("no descriptors: the other member runs on", big.poll() is None,
              "returncode %s" % big.poll())
    finally:
        stop(p)
        stop(big)


def killed_creator():
    """A creator killed while it fills in the group file (stopped there by gdb,
    then killed) leaves no half-made file behind that would refuse every later
    member: the file has its name only once it is whole."""
    label = "killed creator: the next member makes the group and joins"
    if shutil.which("gdb") is None:
        skip(label, "gdb is not installed")
        return
    name = unique("halfmade")
    stopped, out = killed_in_gdb(name, "mb_group_file_init")
    if not check("killed creator: gdb stopped the creator inside mb_group_file_init and killed it",
                 stopped, "gdb output", out):
        return
    p = sleeper(name)
    try:
        joined = wait_for(lambda: any(s["pid"] == p.pid for s in
                                      (read_group(name) or {"slots": []})["slots"]))
        g = read_group(name)
        err = ""
        if not joined:
            p.kill()
            err = p.stderr.read()
        check(label, joined and g is not None and g["magic"] == MAGIC and
              g["limit"] == 0, "group %r" % g, err)
    finally:
        p.kill()
        p.wait()


def tool(*args, env=None):
    return subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=120,
                          env=env if env is not None else suite.environment())


def group_command():
    name = unique("cmd")
    r = tool("group", name, "--limit", "512M")
    g = read_group(name)
    check("group --limit: makes the group with that limit", r.returncode == 0 and g is not None
          and g["limit"] == 512 * MIB and ("group %s: 0 members" % name) in r.stdout,
          "exit %s, group %r" % (r.returncode, g), r.stdout + r.stderr)
    a = member(name, 30, 4, {"MEMBUDGET_GROUP_LIMIT": "64M"})
    try:
        wait_for(lambda: published(name, [a.pid], {a.pid: 30 * MIB}))
        r = tool("group", name, "--limit", "1G")
        g = read_group(name)
        check("group --limit: changes the limit of a group in use", r.returncode == 0 and
              g["limit"] == 1 << 30, "group %r" % g, r.stderr)
        r = tool("top", "--group", name, "--once")
        row = [l for l in r.stdout.splitlines() if l.split()[:2] == [str(a.pid), "4"]]
        check("top --group: the members, bands, total and thresholds", r.returncode == 0 and
              row and "limit 1 GiB" in r.stdout and "conservative 819.2 MiB" in r.stdout and
              "1 member," in r.stdout, "exit %s" % r.returncode, r.stdout + r.stderr)
        r = tool("limits", "--group", name)
        check("limits --group: how the thresholds were derived", r.returncode == 0 and
              "membudget group --limit" in r.stdout and "0.8 x limit" in r.stdout,
              "exit %s" % r.returncode, r.stdout + r.stderr)
        b = member(name, 10, None)  # no band given: active, 8
        try:
            wait_for(lambda: published(name, [b.pid], {b.pid: 10 * MIB}))
            before = {s["pid"]: s["band"] for s in read_group(name)["slots"]}.get(b.pid)
            r = tool("state", str(b.pid), "inactive")
            after = wait_for(lambda: {s["pid"]: s["band"] for s in read_group(name)["slots"]}
                             .get(b.pid) == 2)
            check("state: without MEMBUDGET_PRIORITY the band follows the state (8, then 2)",
                  before == 8 and after and r.returncode == 0, "band %s, state exit %s" %
                  (before, r.returncode), r.stderr)
        finally:
            stop(b)
        r = tool("group", name, "--json")
        j = json.loads(r.stdout) if r.returncode == 0 else {}
        check("group --json: the members", j.get("membudget_group") == 1 and
              [m["pid"] for m in j.get("members", [])] == [a.pid]
              and j.get("limit_bytes") == 1 << 30, r.stdout, r.stderr)
    finally:
        stop(a)
    for args, needles in ((("group",), ("NAME",)), (("group", "a/b"), ("'a/b'", "A-Z")),
                          (("group", name, "--limit", "1K"), ("--limit", "'1K'", "1M")),
                          (("group", unique("none")), ("no such group",))):
        r = tool(*args)
        want = 1 if "no such group" in needles else 2
        check("group: bad argument %s" % " ".join(args[2:] or args[1:]), r.returncode == want and
              len(r.stderr.strip().splitlines()) == 1 and all(n in r.stderr for n in needles),
              "exit %s" % r.returncode, r.stderr)


def run_private_group():
    script = ("MEMBUDGET_PRIORITY=0 python3 %s 60 $$ & low=$!; sleep 1; "
              "python3 %s 150 $low; wait" % (HOLD, HOLD))
    env = suite.environment({"MEMBUDGET_REPORT": os.path.join(tmp, "report.%p.json")})
    p = subprocess.Popen([TOOL, "run", "--library", LIB, "--group-limit", "200M", "--",
                          "bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    children.append(p)
    out, err = p.communicate(timeout=180)
    name = "run-%d" % p.pid
    check("run --group-limit: the tree is one group; its band-0 member is the one chosen",
          ("chosen by its group's memory budget: group " + name) in err and "band 0" in err,
          "exit %s" % p.returncode, err)
    check("run --group-limit: the private group is removed at the end",
          not os.path.exists(group_path(name)), group_path(name))
    events = os.path.join(tmp, "events.jsonl")
    p = subprocess.run([TOOL, "run", "--library", LIB, "--group-limit", "100M", "--events", events,
                        "--", sys.executable, HOLD, "150", "1"], capture_output=True, text=True,
                       env=env, timeout=180)
    deaths = [json.loads(l) for l in open(events) if '"death"' in l] if os.path.exists(events) else []
    check("run --group-limit: CMD chosen by the group: exit 121, one line, event group-limit",
          p.returncode == 121 and "was chosen by its group's limit (group run-" in p.stderr and
          len(deaths) == 1 and deaths[0]["reason"] == "group-limit" and
          deaths[0]["limit_bytes"] == 100 * MIB, "exit %s, deaths %r" % (p.returncode, deaths),
          p.stderr[-2000:])
    r = tool("run", "--priority", "10", "--", "true")
    check("run --priority 10: one line naming the option and the accepted form",
          r.returncode == 2 and "--priority '10'" in r.stderr and "0 (least important) to 9"
          in r.stderr, "exit %s" % r.returncode, r.stderr)


def sleeper(name, extra=None, prefix=()):
    p = subprocess.Popen(list(prefix) + ["sleep", "120"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env_for(name, extra))
    children.append(p)
    return p


def killed_in_gdb(name, function):
    """Runs /bin/true in the group under gdb, stopped at function and killed
    there; whether it stopped there."""
    env = suite.environment({"MEMBUDGET_GROUP": name})
    r = subprocess.run(["gdb", "-batch", "-nx", "-ex", "set startup-with-shell off",
                        "-ex", "set breakpoint pending on",
                        "-ex", "set environment LD_PRELOAD=" + LIB,
                        "-ex", "break " + function, "-ex", "run", "-ex", "kill",
                        "--args", "/bin/true"], capture_output=True, text=True, timeout=120,
                       env=env)
    return function in r.stdout and "exited normally" not in r.stdout, r.stdout + r.stderr


def table_full():
    name = unique("full")
    creator(name, "1G")
    abandoned = False
    if shutil.which("gdb") is not None:
        # A member killed while it claims its slot (stopped by gdb inside
        # slot_take): the slot is taken again once it is gone.
        abandoned, out = killed_in_gdb(name, "slot_take")
        check("table full: gdb stopped a member while it claimed its slot, and killed it",
              abandoned and any(s["pid"] > 4194304 for s in (read_group(name) or
                                                              {"slots": []})["slots"]),
              "group %r" % read_group(name), out)
    sleepers = [sleeper(name) for _ in range(SLOTS)]
    try:
        full = wait_for(lambda: (read_group(name) or {"slots": []})["slots"].__len__() == SLOTS and
                        all(s["pid"] <= 4194304 for s in read_group(name)["slots"]))
        if not check("table full: 64 members hold the 64 slots" +
                     (", one of them left by a member killed while taking it" if abandoned else ""),
                     full, "group %r" % read_group(name),
                     "".join(p.stderr.read() for p in sleepers if p.poll() is not None)):
            return
        r = subprocess.run(["true"], capture_output=True, text=True, timeout=60,
                           env=env_for(name))
        lines = r.stderr.strip().splitlines()
        check("table full: the 65th is refused with one line and runs on", r.returncode == 0 and
              len(lines) == 1 and "MEMBUDGET_GROUP=" + name in lines[0] and "full" in lines[0],
              "exit %s" % r.returncode, r.stderr)
        sleepers[0].kill()
        sleepers[0].wait()
        p = sleeper(name)
        sleepers.append(p)
        took = wait_for(lambda: any(s["pid"] == p.pid for s in read_group(name)["slots"]))
        check("table full: a SIGKILLed member's slot is taken by the next",
              took and sleepers[0].pid not in {s["pid"] for s in read_group(name)["slots"]},
              "group %r" % read_group(name), p.stderr.read() if p.poll() is not None else "")
    finally:
        for s in sleepers:
            s.kill()
            s.wait()


def two_users():
    label = "two users: root's and nobody's groups of the same name are never mixed"
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return skip(label, "needs root and setpriv")
    lib = os.path.join(tmp, "libmembudget.so")
    shutil.copy(LIB, lib)
    os.chmod(lib, 0o755)
    name = unique("same")
    mine = sleeper(name)
    # setpriv itself runs without the library (as root it would join root's
    # group); env gives it to sleep once it runs as nobody.
    theirs = subprocess.Popen(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                               "--clear-groups", "env", "LD_PRELOAD=" + lib,
                               "MEMBUDGET_GROUP=" + name, "sleep", "120"],
                              stderr=subprocess.PIPE, text=True, env=suite.environment())
    children.append(theirs)
    try:
        got = wait_for(lambda: read_group(name) and read_group(name, NOBODY) and
                       read_group(name)["slots"] and read_group(name, NOBODY)["slots"])
        ours = {s["pid"] for s in (read_group(name) or {"slots": []})["slots"]}
        other = {s["pid"] for s in (read_group(name, NOBODY) or {"slots": []})["slots"]}
        st = os.lstat(group_path(name, NOBODY)) if os.path.exists(group_path(name, NOBODY)) else None
        check(label, got and ours == {mine.pid} and other == {theirs.pid} and
              st is not None and st.st_uid == NOBODY, "root %r nobody %r" % (ours, other))
    finally:
        for p in (mine, theirs):
            p.kill()
            p.wait()
        try:
            os.unlink(group_path(name, NOBODY))
        except OSError:
            pass


def bad_name_and_link():
    r = subprocess.run(["true"], capture_output=True, text=True, timeout=60,
                       env=env_for("a/b"))
    lines = r.stderr.strip().splitlines()
    check("bad name: one line naming MEMBUDGET_GROUP and the accepted form",
          r.returncode == 0 and len(lines) == 1 and "MEMBUDGET_GROUP='a/b'" in lines[0] and
          "A-Z a-z 0-9" in lines[0], "exit %s" % r.returncode, r.stderr)
    name = unique("link")
    target = os.path.join(tmp, "elsewhere")
    open(target, "w").close()
    os.makedirs(os.path.dirname(group_path(name)), mode=0o700, exist_ok=True)
    os.symlink(target, group_path(name))
    try:
        r = subprocess.run(["true"], capture_output=True, text=True, timeout=60,
                           env=env_for(name))
        lines = r.stderr.strip().splitlines()
        check("link: the group file is never a link followed; one line", r.returncode == 0 and
              len(lines) == 1 and "link" in lines[0] and "MEMBUDGET_GROUP=" + name in lines[0] and
              os.path.getsize(target) == 0, "exit %s" % r.returncode, r.stderr)
    finally:
        os.unlink(group_path(name))
    name = unique("open")
    fd = os.open(group_path(name), os.O_CREAT | os.O_WRONLY, 0o644)
    os.ftruncate(fd, 4096)
    os.fchmod(fd, 0o644)
    os.close(fd)
    try:
        r = subprocess.run(["true"], capture_output=True, text=True, timeout=60,
                           env=env_for(name))
        check("forged: a group file open to others is refused with one line",
              r.returncode == 0 and len(r.stderr.strip().splitlines()) == 1 and
              "other users" in r.stderr, "exit %s" % r.returncode, r.stderr)
    finally:
        os.unlink(group_path(name))


def planted_directory():
    """Another user made nobody's per-user directory before nobody did (owned
    by root, open to all): `membudget group NAME --limit` run as nobody
    refuses it with one line and creates nothing there."""
    label = "group --limit: a per-user directory another user planted is refused"
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return skip(label, "needs root and setpriv")
    d = os.path.dirname(group_path("x", NOBODY))
    saved = "%s.saved-%d" % (d, os.getpid())
    if os.path.lexists(d):
        os.rename(d, saved)  # nobody's own, from an earlier case: put back below
    name = unique("planted")
    os.mkdir(d)
    os.chmod(d, 0o777)
    try:
        r = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                            "--clear-groups", TOOL, "group", name, "--limit", "1G"],
                           capture_output=True, text=True, env=suite.environment(), timeout=60)
        lines = r.stderr.splitlines()
        check(label, r.returncode == 1 and len(lines) == 1 and "owned by another user" in lines[0]
              and os.listdir(d) == [], "exit %d, files %r" % (r.returncode, os.listdir(d)),
              r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)
        if os.path.lexists(saved):
            os.rename(saved, d)


def main():
    cases = [bad_name_and_link, join_and_creator_exits, band_order, victim_choice,
             sigkill_member, stopped_member_asks, stopped_victim, no_descriptors,
             killed_creator, table_full, two_users, planted_directory, group_command,
             run_private_group]

    def cleanup():
        for path in glob.glob(group_path("*-%d-*" % os.getpid())):
            os.unlink(path)
        shutil.rmtree(tmp, ignore_errors=True)
    return suite.run_cases(results, cases, only=sys.argv[2:], children=children, cleanup=cleanup)


if __name__ == "__main__":
    sys.exit(main())
