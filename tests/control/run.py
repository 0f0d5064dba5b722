#!/usr/bin/env python3
"""Control of a running process from outside, and the live figures of idle
processes (issue 16, DESIGN §11): `membudget state`, `pages`, `release` and
`dump` against tests/control/target, a program that registers a pressure
callback, takes its memory early and then waits without allocating.

  idle figures    an idle process that took 50 MiB shows it in `stat` and
                  `top --once`, and its page keeps being republished
  state, pages    the thresholds change at once, seen in `stat --json` with
                  their source; a state over which the footprint already
                  stands starts the policies at once (callback, policy)
  release         runs the registered callback at that level
  dump            a valid report of a live process, which runs on
  control off     MEMBUDGET_CONTROL=off: the documented refusal
  forged, stale   a page with another process's start time, or none
  no answer       a stopped process: the commander gives up with one line
  cut short       the page truncated under a waiting commander: one line
  dead lock       a lock left by a commander that died is taken over
  another user    (root only) nobody may not command root's process
  fork child      the child starts its own thread: its page and its answers
  bad arguments   one line naming the argument, exit 2

Usage: run.py BUILD_ROOT (holding membudget, libmembudget.so and
tests/control/target).  MB_TEST_BACKEND=jemalloc runs the targets on the
jemalloc backend.  Prints "ok NAME", "skip NAME: why" or "FAIL NAME: why",
then "N passed, N failed[, N skipped]".  Every command has a time limit."""
import json
import mmap
import os
import re
import select
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
TOOL = os.path.join(BUILD, "membudget")
LIB = os.path.join(BUILD, "libmembudget.so")
TARGET = os.path.join(BUILD, "tests", "control", "target")
SHM = "/dev/shm"
TIMEOUT = 30
MIB = 1 << 20
NOBODY = 65534
# The page's layout (policy/statspage.h): the header, and the control area.
PAGE_MAGIC = 0x3170626D
PAGE_SIZE_CONTROL = 3088
CONTROL_AT = 1752  # serving, lock, request, done: four uint32_t
# The publish bound (MB_STATSPAGE_PUBLISH_NS) is 1 s; the checks below wait
# for what the bound promises with room for a loaded machine, and assert what
# happened, never how long it took.
SETTLE = 10.0

results = suite.Results(12)
ok, skip, fail, check = results.ok, results.skip, results.fail, results.check
tmp = tempfile.mkdtemp(prefix="mb-control.")
os.chmod(tmp, 0o755)
children = []


def tool(*args, env=None, timeout=TIMEOUT, prefix=()):
    try:
        return subprocess.run(list(prefix) + [TOOL] + list(args), capture_output=True, text=True,
                              env=env if env is not None else suite.environment(),
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, None, "", "timed out")


def page_path(pid):
    return "%s/membudget-%d/%d" % (SHM, os.geteuid(), pid)


def wait_for(pred, seconds=10.0, step=0.05):
    end = time.time() + seconds
    while time.time() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


def read_lines(p, labels, seconds=15.0):
    """Reads "LABEL PID" lines of p until every label is seen; {label: pid}."""
    fd = p.stdout.fileno()
    end = time.time() + seconds
    while not all(l in p.announced for l in labels) and time.time() < end:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            break
        p.pending += chunk
        while b"\n" in p.pending:
            line, p.pending = p.pending.split(b"\n", 1)
            m = re.match(r"(\w+) (\d+)$", line.decode().strip())
            if m:
                p.announced[m.group(1)] = int(m.group(2))
    return p.announced


def start(mib, mode="", extra=None):
    """Starts target preloaded; returns (Popen, pid, log path)."""
    log = os.path.join(tmp, "levels.%d.%d" % (len(children), time.time_ns() % 100000))
    args = [TARGET, log, str(mib)] + ([mode] if mode else [])
    env = suite.environment(extra, preload=LIB)
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    children.append(p)
    p.announced, p.pending = {}, b""
    if "ready" not in read_lines(p, ("ready",)):
        raise RuntimeError("target did not start: %s" % p.stderr.read1(4096).decode())
    return p, p.announced["ready"], log


def stop(p):
    try:
        p.send_signal(signal.SIGCONT)
        p.terminate()
        p.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def stat_json(pid):
    r = tool("stat", str(pid), "--json")
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def page_ready(pid):
    return stat_json(pid)


def levels(log):
    try:
        with open(log) as f:
            return [int(m.group(1)) for m in re.finditer(r"level (\d+)", f.read())]
    except FileNotFoundError:
        return []


def one_line(r):
    return r.stderr.count("\n") == 1 and r.stdout == ""


# ---- the live figures of an idle process --------------------------------------------

def idle_figures():
    p, pid, _ = start(50)
    try:
        first = wait_for(lambda: page_ready(pid), seconds=15)
        if not check("idle: an idle process publishes its page", first,
                     "no readable page: %s" % tool("stat", str(pid)).stderr):
            return
        check("idle: stat shows the 50 MiB it took", first["footprint_bytes"] >= 50 * MIB and
              first["counter_bytes"] >= 50 * MIB, "footprint %d" % first["footprint_bytes"],
              json.dumps(first))
        r = tool("stat", str(pid))
        check("idle: stat (text) reads it", r.returncode == 0 and
              re.search(r"^footprint\s", r.stdout, re.M), "exit %s" % r.returncode,
              r.stdout + r.stderr)
        r = tool("top", "--once")
        rows = [l for l in r.stdout.splitlines() if re.match(r"\s*%d target\s" % pid, l)]
        check("idle: top --once lists it", r.returncode == 0 and len(rows) == 1,
              "no row", r.stdout + r.stderr)
        later = wait_for(lambda: (lambda j: j if j and j["updates"] > first["updates"] + 1
                                  else None)(stat_json(pid)), seconds=SETTLE)
        check("idle: republished while idle (updates grow, the figures stay fresh)",
              later and later["updates"] > first["updates"] and
              later["updated_unix_ns"] > first["updated_unix_ns"],
              "updates %s then %s" % (first["updates"], later and later["updates"]))
    finally:
        stop(p)


# ---- state, pages -------------------------------------------------------------------

def model_limits(env, *args):
    """`membudget limits --json` for this machine with env and args: what the
    process's thresholds must be."""
    r = tool("limits", "--json", *args, env=suite.environment(env))
    return json.loads(r.stdout) if r.returncode == 0 else None


def state_and_pages():
    active, inactive = model_limits({}), model_limits({}, "--state", "inactive")
    pages3 = model_limits({}, "--pages", "3")
    if not (active and inactive and pages3):
        return fail("state: membudget limits --json", "no thresholds to compare with")
    if len({active["kill_bytes"], inactive["kill_bytes"], pages3["kill_bytes"]}) != 3:
        return skip("state and pages", "ramSize is too small here for the model to tell "
                    "active, inactive and 3 pages apart")
    p, pid, _ = start(8)
    try:
        before = wait_for(lambda: page_ready(pid), seconds=15)
        if not check("state: the page appears", before, "no page"):
            return
        r = tool("state", str(pid), "inactive")
        check("state: membudget state PID inactive", r.returncode == 0 and
              ("pid %d: state inactive; kill threshold " % pid) in r.stdout and
              "(%d bytes)" % inactive["kill_bytes"] in r.stdout and
              "set by membudget state" in r.stdout, "exit %s" % r.returncode, r.stdout + r.stderr)
        s = stat_json(pid)
        check("state: stat shows the inactive thresholds at once, set from outside",
              before["limit_bytes"] == active["kill_bytes"] and s and
              s["limit_bytes"] == inactive["kill_bytes"] and s["state"] == "inactive" and
              s["conservative_bytes"] == inactive["conservative_bytes"] and
              "(state set by membudget state)" in s["limit_source"],
              "before %s, after %s" % (before["limit_bytes"], s and s["limit_bytes"]),
              json.dumps(s))
        r = tool("state", str(pid), "active")
        r2 = tool("pages", str(pid), "3")
        s = stat_json(pid)
        check("pages: membudget pages PID 3", r.returncode == 0 and r2.returncode == 0 and
              ("pid %d: pages 3; kill threshold " % pid) in r2.stdout and s and
              s["limit_bytes"] == pages3["kill_bytes"] and s["pages"] == 3 and
              s["state"] == "active" and
              "state set by membudget state, pages by membudget pages" in s["limit_source"],
              "exit %s/%s" % (r.returncode, r2.returncode), r2.stdout + r2.stderr + json.dumps(s))
        check("state, pages: the process runs on", p.poll() is None, "exit %s" % p.poll())
    finally:
        stop(p)


MAP_MIB = 1741  # 1.7 GiB


def state_starts_policies():
    """webkit-legacy, ramSize 4 GiB: active, Conservative at 2.4 GiB; inactive,
    the kill threshold 2 GiB and Conservative at 1.6 GiB.  1.7 GiB of untouched
    (charged) mapping: made inactive, the process is over Conservative at
    once, idle as it is."""
    name = "policies: made inactive over its new Conservative threshold, the policy rises at once"
    env = {"MEMBUDGET_MODEL": "webkit-legacy", "MEMBUDGET_RAM": "4G"}
    active, inactive = model_limits(env), model_limits(env, "--state", "inactive")
    size = MAP_MIB * MIB
    if not (active and inactive and inactive["conservative_bytes"] < size <
            min(active["conservative_bytes"], inactive["kill_bytes"]) - 64 * MIB):
        return skip(name, "ramSize is below 4 GiB here")
    p, pid, log = start(MAP_MIB, "map", env)
    try:
        before = wait_for(lambda: page_ready(pid), seconds=15)
        if not check("policies: the page appears", before, "no page"):
            return
        r = tool("state", str(pid), "inactive")
        s = wait_for(lambda: (lambda j: j if j and j["policy"] != "unrestricted" else None)(
            stat_json(pid)), seconds=SETTLE)
        check(name, r.returncode == 0 and before["policy"] == "unrestricted" and s and
              1 in levels(log), "policy %s, callback levels %s" % (s and s["policy"], levels(log)),
              r.stdout + r.stderr)
        check("policies: it runs on (under its kill threshold)", p.poll() is None, "exited")
    finally:
        stop(p)


# ---- release, dump ------------------------------------------------------------------

def release():
    p, pid, log = start(8)
    try:
        wait_for(lambda: page_ready(pid), seconds=15)
        r = tool("release", str(pid), "strict")
        check("release: membudget release PID strict runs the callback at level 2",
              r.returncode == 0 and re.search(r"pid %d: pressure strict: callbacks run, released "
                                              r".*\(\d+ bytes\); footprint now" % pid, r.stdout)
              and levels(log) == [2], "levels %s" % levels(log), r.stdout + r.stderr)
        r = tool("release", str(pid), "critical")
        r2 = tool("release", str(pid), "inactive-limit")
        check("release: critical, then the inactive-limit notice", r.returncode == 0 and
              r2.returncode == 0 and levels(log) == [2, 3, 4], "levels %s" % levels(log),
              r.stdout + r.stderr + r2.stderr)
    finally:
        stop(p)


def dump():
    p, pid, _ = start(20, extra={"MEMBUDGET_REPORT": os.path.join(tmp, "report.%p.json")})
    try:
        wait_for(lambda: page_ready(pid), seconds=15)
        r = tool("dump", str(pid))
        path = r.stdout.strip()
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            doc = None
            why = str(e)
        check("dump: a valid report of the live process", r.returncode == 0 and doc and
              doc.get("reason") == "request" and doc.get("pid") == pid and
              doc["footprint"]["counter_bytes"] >= 20 * MIB,
              "exit %s, %s" % (r.returncode, doc and doc.get("reason") or why),
              r.stdout + r.stderr)
        check("dump: the process runs on", p.poll() is None and os.kill(pid, 0) is None,
              "exited")
        r2 = tool("dump", str(pid))
        path2 = r2.stdout.strip()
        check("dump: a second dump goes to a file of its own", r2.returncode == 0 and
              path2 != path and os.path.exists(path2) and os.path.exists(path),
              "%r then %r" % (path, path2), r2.stderr)
    finally:
        stop(p)


# ---- refusals -------------------------------------------------------------------------

def control_off():
    p, pid, _ = start(8, "busy", {"MEMBUDGET_CONTROL": "off"})
    try:
        seen = wait_for(lambda: page_ready(pid), seconds=15)
        r = tool("state", str(pid), "inactive")
        check("control off: the documented refusal", seen and r.returncode == 1 and one_line(r) and
              "pid %d does not take commands (MEMBUDGET_CONTROL=off)" % pid in r.stderr,
              "exit %s" % r.returncode, r.stdout + r.stderr)
        s = stat_json(pid)
        check("control off: nothing changed", s and s["state"] == "active", json.dumps(s))
    finally:
        stop(p)


def forged_page(pid, start_ticks):
    """A page for pid saying it takes commands, with the given start time."""
    page = bytearray(4096)
    struct.pack_into("<IIII", page, 0, PAGE_MAGIC, 1, PAGE_SIZE_CONTROL, pid)
    struct.pack_into("<QQ", page, 16, start_ticks, time.time_ns())
    page[32:38] = b"forged"
    struct.pack_into("<I", page, CONTROL_AT, 1)  # serving
    path = page_path(pid)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, bytes(page))
    os.close(fd)
    return path


def start_ticks_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    return int(text[text.rindex(")") + 2:].split()[19])


def forged_pages():
    """A process without the library, and a page made for it: with another
    process's start time (ours), and with none."""
    sleeper = subprocess.Popen(["sleep", "60"], env=suite.environment())
    children.append(sleeper)
    try:
        for label, ticks in (("another process's start time", start_ticks_of(os.getpid())),
                             ("no start time", 0)):
            path = forged_page(sleeper.pid, ticks)
            r = tool("state", str(sleeper.pid), "inactive")
            written = False
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data = f.read()
                written = struct.unpack_from("<I", data, CONTROL_AT + 8)[0] != 0
            check("forged page (%s): refused, nothing written" % label,
                  r.returncode == 1 and one_line(r) and not written and
                  ("not running with membudget" in r.stderr or
                   "not the page of the running process" in r.stderr),
                  "exit %s, request written %s" % (r.returncode, written), r.stderr)
            if os.path.exists(path):
                os.unlink(path)
    finally:
        sleeper.kill()
        sleeper.wait()
    r = tool("dump", str(sleeper.pid))
    check("gone: no process", r.returncode == 1 and one_line(r) and "no process" in r.stderr,
          "exit %s" % r.returncode, r.stderr)


def no_answer():
    # The dump asked for while it was stopped is written once it runs again.
    p, pid, _ = start(8, extra={"MEMBUDGET_REPORT": os.path.join(tmp, "late.%p.json")})
    try:
        wait_for(lambda: page_ready(pid), seconds=15)
        os.kill(pid, signal.SIGSTOP)
        r = tool("dump", str(pid), "--timeout", "1")
        check("no answer: a stopped process: one line, exit 3", r.returncode == 3 and one_line(r)
              and "pid %d did not answer within 1 s" % pid in r.stderr,
              "exit %s" % r.returncode, r.stdout + r.stderr)
        with open(page_path(pid), "rb") as f:
            lock = struct.unpack_from("<I", f.read(), CONTROL_AT + 4)[0]
        check("no answer: the lock is given back", lock == 0, "lock %d" % lock)
        os.kill(pid, signal.SIGCONT)
        r = tool("state", str(pid), "inactive")
        check("no answer: after SIGCONT it answers again", r.returncode == 0,
              "exit %s" % r.returncode, r.stderr)
    finally:
        stop(p)


def cut_short():
    """The page is cut to nothing while a commander waits on it (the process
    stopped): the commander says so in one line instead of dying of SIGBUS."""
    p, pid, _ = start(8)
    try:
        wait_for(lambda: page_ready(pid), seconds=15)
        os.kill(pid, signal.SIGSTOP)
        c = subprocess.Popen([TOOL, "dump", str(pid), "--timeout", "20"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=suite.environment())
        children.append(c)
        # The request posted (request even and non-zero): the commander now waits.
        posted = wait_for(lambda: struct.unpack_from("<I", open(page_path(pid), "rb").read(),
                                                     CONTROL_AT + 8)[0] % 2 == 0 and
                          struct.unpack_from("<I", open(page_path(pid), "rb").read(),
                                             CONTROL_AT + 8)[0] != 0, seconds=15)
        os.truncate(page_path(pid), 0)
        out, err = c.communicate(timeout=TIMEOUT)
        check("cut short: a page truncated under a waiting commander: one line, exit 1, no "
              "SIGBUS", posted and c.returncode == 1 and err.count("\n") == 1 and
              "cut short" in err and out == "", "exit %s" % c.returncode, err)
    finally:
        p.kill()  # its own page is gone from under it: it is not asked to go on
        p.wait()


def dead_lock():
    p, pid, _ = start(8)
    try:
        wait_for(lambda: page_ready(pid), seconds=15)
        dead = subprocess.Popen(["true"])
        dead.wait()
        with open(page_path(pid), "r+b") as f:
            m = mmap.mmap(f.fileno(), 4096)
            struct.pack_into("<I", m, CONTROL_AT + 4, dead.pid)
            m.close()
        r = tool("pages", str(pid), "2")
        check("dead lock: a lock held by a pid that is gone is taken over", r.returncode == 0 and
              "pages 2" in r.stdout, "exit %s" % r.returncode, r.stderr)
    finally:
        stop(p)


def another_user():
    name = "another user: nobody may not command root's process"
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return skip(name, "needs root and setpriv")
    copy = os.path.join(tmp, "membudget")
    shutil.copy(TOOL, copy)
    os.chmod(copy, 0o755)
    p, pid, _ = start(8)
    try:
        wait_for(lambda: page_ready(pid), seconds=15)
        r = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                            "--clear-groups", copy, "state", str(pid), "inactive"],
                           capture_output=True, text=True, timeout=TIMEOUT,
                           env=suite.environment())
        s = stat_json(pid)
        check(name, r.returncode == 1 and one_line(r) and "permission denied" in r.stderr and
              s and s["state"] == "active", "exit %s" % r.returncode, r.stdout + r.stderr)
    finally:
        stop(p)


def fork_child():
    p, pid, log = start(8, "fork")
    try:
        child = read_lines(p, ("ready", "child")).get("child")
        if not check("fork: the child runs", child, "no child line"):
            return
        seen = wait_for(lambda: page_ready(child), seconds=15)
        check("fork: the idle child publishes (its own thread, started at its first tick)",
              seen and seen["pid"] == child, "no page for the child",
              tool("stat", str(child)).stderr)
        r = tool("release", str(child), "conservative")
        check("fork: the child answers commands itself", r.returncode == 0 and
              ("pid %d: pressure conservative" % child) in r.stdout and
              re.search(r"level 1 pid %d\b" % child, open(log).read() if os.path.exists(log)
                        else ""), "exit %s" % r.returncode, r.stdout + r.stderr)
        r = tool("state", str(pid), "inactive")
        check("fork: the parent still answers", r.returncode == 0, "exit %s" % r.returncode,
              r.stderr)
    finally:
        stop(p)
        child = p.announced.get("child")
        if child:
            try:
                os.kill(child, signal.SIGKILL)  # if the parent could not end it
            except ProcessLookupError:
                pass


BAD_ARGUMENTS = [
    (("state",), ("no PID", "active|inactive")),
    (("state", "1"), ("no operand", "active|inactive")),
    (("state", "1", "sleepy"), ("'sleepy'", "active|inactive")),
    (("pages", "1", "0"), ("page count", "'0'", "1 to 1000000")),
    (("pages", "1", "1000001"), ("'1000001'", "1 to 1000000")),
    (("release", "1", "extreme"), ("'extreme'", "conservative|strict|critical|inactive-limit")),
    (("dump", "abc"), ("'abc'", "process id")),
    (("dump", "1", "2"), ("'2'", "PID")),
    (("dump", "1", "--timeout", "0"), ("--timeout", "'0'", "0.1 to 60")),
]


def bad_arguments():
    for args, needles in BAD_ARGUMENTS:
        r = tool(*args)
        check("bad arguments: membudget %s" % " ".join(args), r.returncode == 2 and one_line(r)
              and all(n in r.stderr for n in needles), "exit %s" % r.returncode, r.stderr)
    for sub in ("state", "pages", "release", "dump"):
        r = tool(sub, "--help")
        check("help " + sub, r.returncode == 0 and "usage: membudget state PID" in r.stdout and
              "Exit status" in r.stdout, "exit %s" % r.returncode, r.stdout + r.stderr)


def full_shm():
    """/dev/shm full (a container's 64 MiB filled by another program): the
    page and the group file get no storage, and the host runs on rather than
    dying of SIGBUS at its first write into the mapping.  In a private mount
    namespace (root), over a 8 KiB tmpfs filled to the brim."""
    name = "full /dev/shm: no page, no group, and the process runs on (no SIGBUS)"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return skip(name, "needs root and unshare(1)")
    code = ("import time\nt = time.time()\nkeep = []\n"
            "while time.time() - t < 1.5:\n    keep.append(bytearray(100000))\n    time.sleep(0.01)\n"
            "print('survived')\n")
    env = suite.environment({"MEMBUDGET_GROUP": "fullshm", "MEMBUDGET_GROUP_LIMIT": "1G",
                             "MEMBUDGET_VERBOSE": "1"}, preload=None)
    script = ('mount -t tmpfs -o size=8k tmpfs /dev/shm && '
              'dd if=/dev/zero of=/dev/shm/fill bs=4096 count=2 2>/dev/null; '
              'LD_PRELOAD="$0" exec "$@"')
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, LIB,
                        sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=TIMEOUT)
    if "mount" in r.stderr and r.returncode != 0 and "survived" not in r.stdout:
        return skip(name, "cannot mount a tmpfs here: %s" % r.stderr.strip()[:200])
    if r.returncode != 0 or r.stdout != "survived\n":
        return fail(name, "exit %d, stdout %r" % (r.returncode, r.stdout), r.stderr)
    if "group" not in r.stderr:
        return fail(name, "no line saying the process runs outside its group", r.stderr)
    ok(name)


def main():
    cases = [bad_arguments, idle_figures, state_and_pages, state_starts_policies, release, dump,
             control_off, forged_pages, no_answer, cut_short, dead_lock, another_user, fork_child,
             full_shm]
    return suite.run_cases(results, cases, children=children,
                           cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))


if __name__ == "__main__":
    sys.exit(main())
