#!/usr/bin/env python3
"""The budget's behaviour seen from outside (issue 4): programs that grow until
stopped (C and python3, one and eight threads, and in a real memory cgroup with
no MEMBUDGET_LIMIT), fail mode in C, C++ and python3, pressure callbacks
(including the inactive-limit notice), bad configuration, and the safety of
the report path.

Usage: run.py LIB BINDIR   (LIB: the library to preload; BINDIR: the built
test programs grow, fail, fail_cxx and callbacks).  MB_TEST_BACKEND=jemalloc
runs every case with MEMBUDGET_BACKEND=jemalloc (make check runs the suite
once per backend).  Prints "ok NAME", "skip
NAME: reason" or "FAIL NAME: reason" per case, then "N passed, N failed" (and
", N skipped" when a case could not run here); exits non-zero on any failure."""
import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import suite  # noqa: E402  (tests/suite.py)

LIB = os.path.realpath(sys.argv[1])
BIN = os.path.realpath(sys.argv[2])
MIB = 1 << 20
KIB = 1 << 10
TIMEOUT = 60
KILL_LINE = "exceeded its memory budget"
BACKEND = suite.BACKEND

results = suite.Results(10)
ok, skip, fail = results.ok, results.skip, results.fail
tmp = tempfile.mkdtemp(prefix="mb-budget.")
RUNNER_PID = os.getpid()


def clean_env(extra, preload=True):
    return suite.environment(extra, LIB if preload else None)


def os_fields(pid):
    """{"RssAnon": bytes, "VmSwap": bytes} of a live process, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "VmSwap"):
            fields[key] = int(value.split()[0]) * 1024
    if "RssAnon" not in fields:
        return None
    fields.setdefault("VmSwap", 0)
    return fields


last_swap_peak = 0  # the largest VmSwap the last sampled run() saw


def run(cmd, env, sample=False, cwd=None, preexec=None):
    """Runs cmd; returns (returncode, stdout, stderr, largest sampled OS view).
    preexec runs in the child between fork and exec (see subprocess.Popen)."""
    global last_swap_peak
    last_swap_peak = 0
    out_path = os.path.join(tmp, "out")
    err_path = os.path.join(tmp, "err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=cwd, preexec_fn=preexec)
        peak = 0
        deadline = time.time() + TIMEOUT
        while p.poll() is None:
            if sample:
                fields = os_fields(p.pid)
                if fields is not None:
                    peak = max(peak, fields["RssAnon"] + fields["VmSwap"])
                    last_swap_peak = max(last_swap_peak, fields["VmSwap"])
                time.sleep(0.0005)
            else:
                time.sleep(0.005)
            if time.time() > deadline:
                p.kill()
                p.wait()
                break
    with open(out_path, "rb") as f:
        stdout = f.read().decode(errors="replace")
    with open(err_path, "rb") as f:
        stderr = f.read().decode(errors="replace")
    return p.returncode, stdout, stderr, peak


def fresh_dir(name):
    d = os.path.join(tmp, name)
    os.mkdir(d)
    return d


def load_dumps(d):
    dumps = []
    for n in sorted(os.listdir(d)):
        with open(os.path.join(d, n)) as f:
            dumps.append(json.load(f))
    return dumps


def dump_figures(d):
    """One line of the figures that explain a budget death, from the one
    report in d: footprint, counter and OS view, threads, and on the jemalloc
    backend its arenas (hooked of all), allocated/resident/charged bytes and
    the policy events; "" when there is no readable report."""
    try:
        dumps = load_dumps(d)
    except (OSError, ValueError):
        return ""
    if len(dumps) != 1:
        return ""
    dump = dumps[0]
    f, a = dump.get("footprint", {}), dump.get("allocator", {})
    mib = lambda v: "%.1f" % (v / MIB)  # noqa: E731
    text = "report: reason %s, footprint %s MiB (counter %s, OS %s), threads %s live %s" % (
        dump.get("reason"), mib(f.get("bytes", 0)), mib(f.get("counter_bytes", 0)),
        mib(f.get("os", {}).get("os_bytes", 0)), f.get("threads"), f.get("threads_live"))
    if a.get("backend") == "jemalloc":
        text += "; jemalloc arenas %s (hooked %s), allocated %s MiB, resident %s, charged %s" % (
            a.get("arenas"), a.get("arenas_hooked"), mib(a.get("allocated_bytes", 0)),
            mib(a.get("resident_bytes", 0)), mib(a.get("charged_bytes", 0)))
    events = dump.get("policy", {}).get("events", [])
    if events:
        text += "; events " + ", ".join("%s->%s at %s MiB (released %s)" % (
            e.get("kind") if e.get("kind") != "policy" else e.get("from"), e.get("to"),
            mib(e.get("footprint_bytes", 0)), mib(e.get("released_bytes", 0))) for e in events)
    return text


# ---- growing programs are stopped -------------------------------------------

def verify_death(name, rc, err, d, limit, threads, peak):
    """The checks every budget death must pass: SIGABRT, exactly one line that
    names the one report in d, the report valid JSON with mode 0600 and reason
    kill at this limit, and the OS view of the footprint (sampled by us, and as
    the report recorded it) at most limit + 64 KiB x threads + 1 MiB yet not far
    below the limit.  Returns (line, report, recorded OS view), or None after
    reporting the failure."""
    bound = limit + 64 * KIB * threads + MIB
    lines = [l for l in err.splitlines() if KILL_LINE in l]
    if rc != -signal.SIGABRT:
        return fail(name, "exit status %s, expected SIGABRT" % rc, err)
    if len(lines) != 1:
        return fail(name, "%d budget lines, expected 1" % len(lines), err)
    files = os.listdir(d)
    if len(files) != 1:
        return fail(name, "%d reports, expected 1: %s" % (len(files), files), err)
    path = os.path.join(d, files[0])
    if not lines[0].endswith("report: " + path):
        return fail(name, "the line does not name the report: " + lines[0])
    if subprocess.run([sys.executable, "-m", "json.tool", path], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        return fail(name, "the report is not valid JSON")
    if stat.S_IMODE(os.stat(path).st_mode) != 0o600:
        return fail(name, "the report's mode is %o" % stat.S_IMODE(os.stat(path).st_mode))
    dump = load_dumps(d)[0]
    os_view = dump["footprint"]["os"]
    recorded = os_view["rss_anon_bytes"] + os_view["vm_swap_bytes"]
    if dump["limit"]["kill_bytes"] != limit or dump["reason"] != "kill":
        return fail(name, "report limit %s reason %s" % (dump["limit"]["kill_bytes"], dump["reason"]))
    for what, v in (("sampled", peak), ("recorded", recorded)):
        if v > bound:
            return fail(name, "%s RssAnon+VmSwap %d > limit + 64 KiB x threads + 1 MiB = %d"
                        % (what, v, bound))
    # Not far below the limit either: the process was stopped at the limit,
    # not long before it.
    if recorded < limit * 85 // 100:
        return fail(name, "recorded RssAnon+VmSwap %d is far below the limit %d" % (recorded, limit))
    return lines[0], dump, recorded


def check_growth(limit_mib, threads, block):
    name = "grow limit=%dM threads=%d" % (limit_mib, threads)
    d = fresh_dir("grow-%d-%d" % (limit_mib, threads))
    env = clean_env({"MEMBUDGET_LIMIT": "%dM" % limit_mib,
                     "MEMBUDGET_REPORT": os.path.join(d, "report.%p.json")})
    rc, _, err, peak = run([os.path.join(BIN, "grow"), str(threads), str(block)], env, sample=True)
    death = verify_death(name, rc, err, d, limit_mib * MIB, threads, peak)
    if death is None:
        return
    ok(name + " (peak %.1f MiB, at death %.1f MiB)" % (peak / MIB, death[2] / MIB))


def check_python_growth():
    name = "grow python3 limit=64M"
    d = fresh_dir("grow-python")
    env = clean_env({"MEMBUDGET_LIMIT": "64M", "PYTHONMALLOC": "malloc",
                     "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    code = "l=[]\nwhile True: l.append(bytearray(1<<18))\n"
    rc, _, err, peak = run(["python3", "-c", code], env, sample=True)
    lines = [l for l in err.splitlines() if KILL_LINE in l]
    if rc != -signal.SIGABRT or len(lines) != 1 or len(os.listdir(d)) != 1:
        return fail(name, "status %s, %d lines, %d reports" % (rc, len(lines), len(os.listdir(d))), err)
    if peak > 64 * MIB + 64 * KIB + MIB:
        return fail(name, "sampled RssAnon+VmSwap %d over the bound" % peak)
    load_dumps(d)
    ok(name)


def check_python_threads():
    name = "grow python3 limit=64M threads=8"
    d = fresh_dir("grow-python-8")
    env = clean_env({"MEMBUDGET_LIMIT": "64M", "PYTHONMALLOC": "malloc",
                     "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    # All eight threads allocate before any of them grows (the barrier), and a
    # short switch interval makes them take turns often, so several are near
    # the limit when it is crossed.
    code = ("import sys, threading\nsys.setswitchinterval(1e-4)\n"
            "start = threading.Barrier(8)\n"
            "def grow():\n    l = [bytearray(1 << 18)]\n    start.wait()\n"
            "    while True: l.append(bytearray(1 << 18))\n"
            "ts = [threading.Thread(target=grow) for _ in range(8)]\n"
            "for t in ts: t.start()\nfor t in ts: t.join()\n")
    rc, _, err, peak = run(["python3", "-c", code], env, sample=True)
    death = verify_death(name, rc, err, d, 64 * MIB, 8, peak)
    if death is None:
        return
    threads = death[1]["footprint"]["threads_live"]
    if threads < 8:
        return fail(name, "the report counts %d live threads, expected at least 8" % threads,
                    dump_figures(d))
    ok(name + " (peak %.1f MiB, at death %.1f MiB, %d threads)" % (peak / MIB, death[2] / MIB,
                                                                  threads))


def check_mmap():
    name = "anonymous mmap of 100 MiB under 64M is stopped"
    d = fresh_dir("mmap")
    env = clean_env({"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    rc, out, err, _ = run([os.path.join(BIN, "grow"), "1", str(100 * MIB), "mmap"], env)
    if rc != -signal.SIGABRT or "mapped" in out or len(os.listdir(d)) != 1:
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    ok(name)
    name = "fail mode: anonymous mmap of 100 MiB under 64M fails with ENOMEM"
    env["MEMBUDGET_ACTION"] = "fail"
    rc, out, err, _ = run([os.path.join(BIN, "grow"), "1", str(100 * MIB), "mmap"], env)
    if rc != 3 or "errno=12" not in out:
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    ok(name)
    name = "file-backed read-only mapping of 100 MiB is not counted"
    data = os.path.join(tmp, "data.bin")
    with open(data, "wb") as f:
        f.write(b"x" * (100 * MIB))
    code = ("import mmap\nf=open(%r,'rb')\nm=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ)\n"
            "print(sum(m[i] for i in range(0,len(m),4096)))\n" % data)
    env = clean_env({"MEMBUDGET_LIMIT": "64M"})
    rc, out, err, _ = run(["python3", "-c", code], env)
    os.unlink(data)
    if rc != 0 or out.strip() != str(120 * 25600):
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    ok(name)


# ---- fail mode ----------------------------------------------------------------

def check_fail_c():
    name = "fail mode in C: NULL/ENOMEM, then recovery after freeing"
    d = fresh_dir("fail-c")
    env = clean_env({"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_ACTION": "fail",
                     "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    rc, out, err, _ = run([os.path.join(BIN, "fail")], env)
    if rc != 0 or "errno=ENOMEM" not in out or "recovered yes" not in out:
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    lines = [l for l in err.splitlines() if KILL_LINE in l]
    if len(lines) != 1 or len(os.listdir(d)) != 1:
        return fail(name, "%d lines, %d reports, expected one each" % (len(lines), len(os.listdir(d))), err)
    if load_dumps(d)[0]["reason"] != "fail":
        return fail(name, "the report's reason is not fail")
    ok(name)


def check_fail_cxx():
    name = "fail mode in C++: std::bad_alloc caught, new succeeds again after delete"
    d = fresh_dir("fail-cxx")
    env = clean_env({"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_ACTION": "fail",
                     "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    rc, out, err, _ = run([os.path.join(BIN, "fail_cxx")], env)
    if rc != 0 or "caught bad_alloc after" not in out or "recovered yes" not in out:
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    lines = [l for l in err.splitlines() if KILL_LINE in l]
    if len(lines) != 1 or len(os.listdir(d)) != 1:
        return fail(name, "%d lines, %d reports, expected one each" % (len(lines), len(os.listdir(d))), err)
    if load_dumps(d)[0]["reason"] != "fail":
        return fail(name, "the report's reason is not fail")
    ok(name)


def check_fail_python():
    name = "fail mode in python3: MemoryError caught, finishes normally"
    d = fresh_dir("fail-py")
    env = clean_env({"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_ACTION": "fail", "PYTHONMALLOC": "malloc",
                     "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    code = ("l=[]\ntry:\n    while True: l.append(bytearray(1<<20))\n"
            "except MemoryError:\n    n=len(l); l=None\n    print('caught', n > 30)\n"
            "x=[bytearray(1<<20) for i in range(20)]\nprint('done', len(x))\n")
    rc, out, err, _ = run(["python3", "-c", code], env)
    if rc != 0 or out != "caught True\ndone 20\n":
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    ok(name)


def check_warn():
    name = "warn mode: one line and one report, nothing fails"
    d = fresh_dir("warn")
    env = clean_env({"MEMBUDGET_LIMIT": "32M", "MEMBUDGET_ACTION": "warn",
                     "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    code = "x=[bytearray(1<<20) for i in range(48)]\nprint(len(x))\n"
    rc, out, err, _ = run(["python3", "-c", code], clean_env(dict(env, PYTHONMALLOC="malloc")))
    lines = [l for l in err.splitlines() if KILL_LINE in l]
    if rc != 0 or out != "48\n" or len(lines) != 1 or len(os.listdir(d)) != 1:
        return fail(name, "status %s, stdout %r, %d lines" % (rc, out, len(lines)), err)
    ok(name)


# ---- callbacks -------------------------------------------------------------------

def check_callbacks():
    name = "callbacks see Conservative, Strict, StrictSynchronous in order"
    env = clean_env({"MEMBUDGET_RAM": "4G"})
    rc, out, err, _ = run([os.path.join(BIN, "callbacks"), "climb"], env)
    if rc != 0 or not out.startswith("levels: 1 2 3\n"):
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    if "critical memory usage" not in err:
        return fail(name, "no critical memory usage line", err)
    ok(name)
    name = "no callback below the thresholds"
    env = clean_env({"MEMBUDGET_LIMIT": "256M"})
    rc, out, err, _ = run([os.path.join(BIN, "callbacks"), "below"], env)
    if rc != 0 or not out.startswith("levels:\n") or err != "":
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    ok(name)
    name = "a release callback that frees its cache survives the kill threshold"
    d = fresh_dir("survive")
    env = clean_env({"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    rc, out, err, _ = run([os.path.join(BIN, "callbacks"), "survive"], env)
    if rc != 0 or "survived" not in out or os.listdir(d):
        return fail(name, "status %s, stdout %r" % (rc, out), dump_figures(d) + "\n" + err)
    ok(name)
    if BACKEND == "jemalloc":
        # The callback runs in the thread that met the kill threshold, and
        # what it frees goes to that thread's cache.  Here jemalloc caches
        # 1 MiB blocks (64 of them): shrink-or-die must flush the dying
        # thread's cache before it purges and measures again.
        name = "jemalloc: the same survives when the freed cache lands in the thread cache"
        d2 = fresh_dir("survive-tcache")
        env2 = clean_env({"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_REPORT": os.path.join(d2, "r.%p.json"),
                          "MALLOC_CONF": "tcache_max:1048576,tcache_nslots_large:64"})
        rc, out, err, _ = run([os.path.join(BIN, "callbacks"), "survive"], env2)
        if rc != 0 or "survived" not in out or os.listdir(d2):
            return fail(name, "status %s, stdout %r" % (rc, out), dump_figures(d2) + "\n" + err)
        ok(name)
    name = "without the callback the same program dies"
    rc, out, err, _ = run([os.path.join(BIN, "callbacks"), "nocache"], env)
    if rc != -signal.SIGABRT or "survived" in out or len(os.listdir(d)) != 1:
        return fail(name, "status %s, stdout %r" % (rc, out), dump_figures(d) + "\n" + err)
    ok(name)


def check_inactive_limit():
    name = "inactive limit while active: one notice per crossing, with hysteresis"
    d = fresh_dir("inactive")
    report = os.path.join(d, "live.json")
    # webkit-legacy on a 4 GiB ramSize, active, 1 page: kill at 3.6 GiB, the
    # inactive kill threshold at 2 GiB, below Conservative (2.4 GiB), so the
    # notice is the only callback the program sees.  The monitor thread lowers
    # the policy and re-arms the notice while the program sleeps.
    env = clean_env({"MEMBUDGET_MODEL": "webkit-legacy", "MEMBUDGET_RAM": "4G",
                     "MEMBUDGET_STATE": "active", "MEMBUDGET_PAGES": "1",
                     "MEMBUDGET_MONITOR": "thread", "MEMBUDGET_INTERVAL": "10ms"})
    rc, out, err, _ = run([os.path.join(BIN, "callbacks"), "inactive", report], env)
    level = "4"  # MEMBUDGET_LEVEL_INACTIVE_LIMIT
    expected = ("crossed levels: {0}\nfurther levels: {0}\nhysteresis levels: {0}\n"
                "again levels: {0} {0}\npolicy 0 limit {1}\n").format(level, 3865470566)
    if rc != 0 or out != expected or err != "":
        return fail(name, "status %s, stdout %r, expected %r" % (rc, out, expected), err)
    try:
        with open(report) as f:
            dump = json.load(f)
    except (OSError, ValueError) as e:
        return fail(name, "no valid report from membudget_dump(): %s" % e)
    events = [e for e in dump["policy"]["events"] if e["kind"] == "inactive-limit"]
    if dump["limit"]["inactive_kill_bytes"] != 2 * 1024 * MIB or len(events) != 2 \
            or any(e["threshold_bytes"] != 2 * 1024 * MIB for e in events):
        return fail(name, "inactive limit %s, %d inactive-limit events, expected 2"
                    % (dump["limit"]["inactive_kill_bytes"], len(events)))
    ok(name)


def check_monitor_and_fork():
    name = "MEMBUDGET_MONITOR=thread stops an idle process the counter cannot see"
    d = fresh_dir("monitor")
    grow = [os.path.join(BIN, "grow"), "1", str(96 * MIB), "sbrk"]
    env = clean_env({"MEMBUDGET_LIMIT": "64M", "MEMBUDGET_MONITOR": "thread",
                     "MEMBUDGET_INTERVAL": "20ms", "MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
    rc, out, err, _ = run(grow, env)
    lines = [l for l in err.splitlines() if KILL_LINE in l]
    if rc != -signal.SIGABRT or len(lines) != 1 or len(os.listdir(d)) != 1 or "slept" in err:
        fail(name, "status %s, stdout %r" % (rc, out), err)
    elif load_dumps(d)[0]["footprint"]["baseline_bytes"] < 64 * MIB:
        fail(name, "the report's baseline is below the brk memory")
    else:
        ok(name)
    name = "inline monitor: the idle process is stopped at its next allocation"
    del env["MEMBUDGET_MONITOR"]
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    rc, out, err, _ = run(grow, env)
    if rc != -signal.SIGABRT or "slept" not in err or out != "":
        fail(name, "status %s, stdout %r" % (rc, out), err)
    else:
        ok(name)
    # The live-thread count is the process's own, on every backend: threads
    # that allocated and have not exited (the jemalloc backend once read
    # jemalloc's per-arena count of bound threads, which was 0 on one machine).
    name = "membudget_stats counts the live threads that allocated, and not the exited ones"
    rc, out, err, _ = run([os.path.join(BIN, "callbacks"), "threads"], clean_env({}))
    if rc != 0 or out != "live 7 then 5\n":
        fail(name, "status %s, stdout %r, expected 'live 7 then 5'" % (rc, out), err)
    else:
        ok(name)
    name = "a fork child starts Unrestricted"
    rc, out, err, _ = run([os.path.join(BIN, "callbacks"), "fork"], clean_env({"MEMBUDGET_LIMIT": "64M"}))
    if rc != 0 or out != "parent policy 1\nchild policy 0\n":
        fail(name, "status %s, stdout %r" % (rc, out), err)
    else:
        ok(name)


# ---- a real memory cgroup ----------------------------------------------------------

CGROUP_LIMIT = 1000 * MIB          # memory.limit_in_bytes / memory.max of the test cgroup
CGROUP_KILL = 966367641            # 0.9 x ramSize, ramSize = 1000 MiB rounded up to 1 GiB


def unescape_mount(field):
    """Undoes the octal escapes (\\040 for a space ...) of /proc/self/mountinfo."""
    out, i = "", 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out += chr(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out += field[i]
            i += 1
    return out


def own_memory_cgroup():
    """(version, directory) of this process's memory cgroup, found from
    /proc/self/cgroup and /proc/self/mountinfo: v1's memory controller first,
    else v2 when its memory controller is available; (0, why) when neither."""
    try:
        with open("/proc/self/cgroup") as f:
            cgroup_lines = f.read().splitlines()
        with open("/proc/self/mountinfo") as f:
            mounts = f.read().splitlines()
    except OSError as e:
        return 0, str(e)
    v1_path = v2_path = None
    for line in cgroup_lines:
        hid, controllers, path = line.split(":", 2)
        if hid == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    v1_mount = v2_mount = None
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        root, point = unescape_mount(fields[3]), unescape_mount(fields[4])
        if rfields[0] == "cgroup" and "memory" in rfields[2].split(","):
            v1_mount = (root, point)
        elif rfields[0] == "cgroup2":
            v2_mount = (root, point)

    def directory(mount, path):
        # A path outside the mount's root (a cgroup namespace, a container):
        # the mount point itself, as the library does.
        root, point = mount
        rel = path
        if root != "/":
            rel = path[len(root):] if path == root or path.startswith(root + "/") else "/"
        d = os.path.normpath(point + "/" + rel.lstrip("/"))
        return d if os.path.isdir(d) else point

    if v1_path is not None and v1_mount is not None:
        return 1, directory(v1_mount, v1_path)
    if v2_path is not None and v2_mount is not None:
        d = directory(v2_mount, v2_path)
        try:
            with open(os.path.join(d, "cgroup.subtree_control")) as f:
                if "memory" in f.read().split():
                    return 2, d
        except OSError:
            pass
        return 0, "cgroup v2 at %s without the memory controller for its children" % d
    return 0, "no memory cgroup mounted"


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def smallest_ancestor_limit(version, d):
    """The smallest memory limit set on d or above it, in bytes, or None."""
    name = "memory.limit_in_bytes" if version == 1 else "memory.max"
    smallest = None
    while True:
        try:
            with open(os.path.join(d, name)) as f:
                text = f.read().strip()
            if text != "max" and int(text) < (1 << 62):
                smallest = int(text) if smallest is None else min(smallest, int(text))
        except (OSError, ValueError):
            break
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return smallest


def oom_kills(version, d):
    """The kernel's count of OOM kills in cgroup d, or None when it keeps none."""
    name, key = ("memory.oom_control", "oom_kill") if version == 1 else ("memory.events", "oom_kill")
    try:
        with open(os.path.join(d, name)) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
    except (OSError, ValueError):
        pass
    return None


def check_real_cgroup():
    """A growing C program in a real 1000 MiB memory cgroup, with no
    MEMBUDGET_LIMIT: ramSize comes from the cgroup (1 GiB), the kill threshold
    is 0.9 x ramSize, and membudget stops the program with its line and
    report before the kernel's OOM killer would kill it without one.  Only the
    child process is moved into the cgroup; the cgroup is removed afterwards."""
    name = "real %s cgroup of 1000 MiB, no MEMBUDGET_LIMIT: stopped by membudget at 921.6 MiB"
    version, parent = own_memory_cgroup()
    if version == 0:
        return skip(name % "memory", parent)
    name = name % ("v%d" % version)
    if os.geteuid() != 0:
        return skip(name, "not root: no cgroup can be created")
    smallest = smallest_ancestor_limit(version, parent)
    if smallest is not None and smallest < CGROUP_LIMIT:
        return skip(name, "an enclosing cgroup is limited to %d bytes, below 1000 MiB" % smallest)
    cg = os.path.join(parent, "membudget-budget-test-%d" % RUNNER_PID)
    try:
        os.mkdir(cg)
    except OSError as e:
        return skip(name, "mkdir %s: %s" % (cg, e.strerror))
    try:
        limit_file = "memory.limit_in_bytes" if version == 1 else "memory.max"
        try:
            write_file(os.path.join(cg, limit_file), str(CGROUP_LIMIT))
        except OSError as e:
            return skip(name, "%s: %s" % (os.path.join(cg, limit_file), e.strerror))
        # No swapping around the limit either: memory+swap gets the same limit
        # where the kernel has the file; the child's VmSwap is checked anyway.
        swap_file = os.path.join(cg, "memory.memsw.limit_in_bytes" if version == 1
                                 else "memory.swap.max")
        swap_note = "no swap limit file"
        if os.path.exists(swap_file):
            try:
                write_file(swap_file, str(CGROUP_LIMIT) if version == 1 else "0")
                swap_note = "swap limited"
            except OSError as e:
                swap_note = "swap limit not set (%s)" % e.strerror
        procs = os.path.join(cg, "cgroup.procs")

        def enter_cgroup():
            # In the child, after fork and before exec: only this process moves.
            pid = os.getpid()
            if pid == RUNNER_PID:
                os._exit(121)
            write_file(procs, str(pid))

        d = fresh_dir("cgroup")
        env = clean_env({"MEMBUDGET_REPORT": os.path.join(d, "r.%p.json")})
        try:
            rc, _, err, peak = run([os.path.join(BIN, "grow"), "1", str(256 * KIB)], env,
                                   sample=True, preexec=enter_cgroup)
        except subprocess.SubprocessError as e:
            return skip(name, "cannot move the child into %s: %s" % (cg, e))
        swap_peak = last_swap_peak
        with open("/proc/self/cgroup") as f:
            if os.path.basename(cg) in f.read():
                return fail(name, "the test runner itself is in %s" % cg)
        if rc == -signal.SIGKILL:
            return fail(name, "killed by SIGKILL (the kernel's OOM killer: %s kills)"
                        % oom_kills(version, cg), err)
        death = verify_death(name, rc, err, d, CGROUP_KILL, 1, peak)
        if death is None:
            return
        line, dump, recorded = death
        lim = dump["limit"]
        if lim["cgroup_dir"] != cg or lim["cgroup_bytes"] != CGROUP_LIMIT \
                or lim["ram_bytes"] != 1024 * MIB or lim["cgroup_version"] != version:
            return fail(name, "the report's cgroup %r %s, ramSize %s" % (
                lim["cgroup_dir"], lim["cgroup_bytes"], lim["ram_bytes"]))
        if "limit 921.6 MiB" not in line or os.path.join(cg, limit_file) + " = %d" % CGROUP_LIMIT \
                not in line:
            return fail(name, "the line does not name the cgroup limit: " + line)
        kills = oom_kills(version, cg)
        if kills:
            return fail(name, "the kernel's OOM killer acted %d times in the cgroup" % kills)
        if swap_peak or dump["footprint"]["os"]["vm_swap_bytes"]:
            return fail(name, "the child swapped (%d bytes sampled); %s" % (swap_peak, swap_note))
        ok(name + " (at death %.1f MiB, peak %.1f MiB; %s)" % (recorded / MIB, peak / MIB, swap_note))
    finally:
        # The child has been reaped: the cgroup is empty and can go.
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    break
                time.sleep(0.05)
        if os.path.exists(cg):
            fail("remove the test cgroup", "%s is still there" % cg)


# ---- bad configuration -----------------------------------------------------------

BAD_VALUES = [
    ("MEMBUDGET_LIMIT", "abc"), ("MEMBUDGET_LIMIT", "-5"), ("MEMBUDGET_LIMIT", "0"),
    ("MEMBUDGET_LIMIT", "200%"), ("MEMBUDGET_LIMIT", "1e99"), ("MEMBUDGET_LIMIT", "12Q"),
    ("MEMBUDGET_LIMIT", ""), ("MEMBUDGET_LIMIT", "99999999999999999999999"),
    ("MEMBUDGET_ACTION", "explode"), ("MEMBUDGET_MODEL", "chrome"),
    ("MEMBUDGET_STATE", "sleeping"), ("MEMBUDGET_PAGES", "0"), ("MEMBUDGET_PAGES", "-1"),
    ("MEMBUDGET_RAM", "lots"), ("MEMBUDGET_CONSERVATIVE", "1.5"), ("MEMBUDGET_STRICT", "abc"),
    ("MEMBUDGET_FOOTPRINT", "pss"), ("MEMBUDGET_MONITOR", "cron"), ("MEMBUDGET_INTERVAL", "0"),
    ("MEMBUDGET_INTERVAL", "5h"), ("MEMBUDGET_SAMPLE", "-1"), ("MEMBUDGET_REPORT", "/tmp/%x"),
    ("MEMBUDGET_BACKEND", "tcmalloc"), ("MEMBUDGET_VERBOSE", "3"),
    # Past 2^56 bytes, the largest address space a process has.
    ("MEMBUDGET_LIMIT", "8388608T"), ("MEMBUDGET_RAM", "100000T"),
    ("MEMBUDGET_CONSERVATIVE", "18446744073709551615"), ("MEMBUDGET_STRICT", "65537T"),
    ("MEMBUDGET_SAMPLE", "9223372036854775808"),
]


def check_bad_values():
    code = "print('hello', sum(range(1000)))"
    expected_out = "hello 499500\n"
    bad = 0
    for var, value in BAD_VALUES:
        rc, out, err, _ = run(["python3", "-c", code], clean_env({var: value}))
        lines = err.splitlines()
        if (rc != 0 or out != expected_out or len(lines) != 1 or var not in lines[0]
                or ("'%s'" % value) not in lines[0] or "expected" not in lines[0]):
            bad += 1
            fail("bad value %s=%r" % (var, value), "status %s, stdout %r" % (rc, out), err)
    # Thresholds in the wrong order: one line, the defaults stand.
    rc, out, err, _ = run(["python3", "-c", code],
                          clean_env({"MEMBUDGET_CONSERVATIVE": "0.95", "MEMBUDGET_STRICT": "0.9"}))
    lines = err.splitlines()
    if rc != 0 or out != expected_out or len(lines) != 1 or "MEMBUDGET_CONSERVATIVE" not in lines[0]:
        bad += 1
        fail("thresholds in the wrong order", "status %s, stdout %r" % (rc, out), err)
    rc, out, err, _ = run(["python3", "-c", code], clean_env({"MEMBUDGET_LIMT": "64M"}))
    if rc != 0 or out != expected_out or len(err.splitlines()) != 1 or "MEMBUDGET_LIMT" not in err:
        bad += 1
        fail("a misspelt variable", "status %s, stdout %r" % (rc, out), err)
    if bad == 0:
        ok("%d malformed MEMBUDGET_* values: one line each, output unchanged" % (len(BAD_VALUES) + 2))


# ---- the report path ---------------------------------------------------------------

def die_with_report(report, extra=None):
    env = clean_env(dict({"MEMBUDGET_LIMIT": "32M", "MEMBUDGET_REPORT": report}, **(extra or {})))
    return run([os.path.join(BIN, "grow"), "1", str(256 * KIB)], env)


def check_report_paths():
    d = fresh_dir("paths")
    # The default: $TMPDIR/membudget.<pid>.json.
    name = "default report path in $TMPDIR, mode 0600"
    env = clean_env({"MEMBUDGET_LIMIT": "32M", "TMPDIR": d})
    rc, _, err, _ = run([os.path.join(BIN, "grow"), "1", str(256 * KIB)], env)
    files = os.listdir(d)
    if rc != -signal.SIGABRT or len(files) != 1 or not files[0].startswith("membudget.") \
            or stat.S_IMODE(os.stat(os.path.join(d, files[0])).st_mode) != 0o600:
        fail(name, "status %s, files %s" % (rc, files), err)
    else:
        ok(name)
    for f in files:
        os.unlink(os.path.join(d, f))

    # The name is taken (anyone may create /tmp/membudget.<pid>.json, and pids
    # repeat across containers): the file or link there is left alone, and the
    # report goes to a new name beside it, which the line names.
    target = os.path.join(d, "target")
    with open(target, "w") as f:
        f.write("target\n")
    grow = os.path.join(BIN, "grow")
    for kind in ("file", "symbolic link", "dangling symbolic link"):
        for pattern in ("default", "MEMBUDGET_REPORT"):
            name = "a %s at the %s report path: left alone, the report goes beside it" % (
                kind, pattern)
            sub = fresh_dir("taken-%s-%s" % (kind.replace(" ", "-"), pattern.lower()))
            if pattern == "default":
                env = clean_env({"MEMBUDGET_LIMIT": "32M", "TMPDIR": sub})
                taken = os.path.join(sub, "membudget.$$.json")
            else:
                env = clean_env({"MEMBUDGET_LIMIT": "32M",
                                 "MEMBUDGET_REPORT": os.path.join(sub, "r.%p.json")})
                taken = os.path.join(sub, "r.$$.json")
            # The shell takes the name for its own pid, then becomes the program.
            if kind == "file":
                take = "echo 'keep me' > %s" % taken
            elif kind == "symbolic link":
                take = "ln -s %s %s" % (target, taken)
            else:
                take = "ln -s %s %s" % (os.path.join(sub, "absent"), taken)
            rc, _, err, _ = run(["sh", "-c", '%s && exec "$0" 1 %d' % (take, 256 * KIB), grow], env)
            lines = [l for l in err.splitlines() if KILL_LINE in l]
            names = sorted(os.listdir(sub))
            if rc != -signal.SIGABRT or len(lines) != 1 or len(names) != 2:
                fail(name, "status %s, %d lines, files %s" % (rc, len(lines), names), err)
                continue
            first = [n for n in names if n.count(".") == 2][0]
            other = [n for n in names if n != first][0]
            stem = first[:-len(".json")]
            path = os.path.join(sub, other)
            with open(target) as f:
                target_text = f.read()
            problems = []
            if not re.fullmatch(re.escape(stem) + r"\.[0-9a-z]{8}\.json", other):
                problems.append("the report is named %s" % other)
            if not lines[0].endswith("report: " + path):
                problems.append("the line does not name %s" % path)
            if kind == "file":
                with open(os.path.join(sub, first)) as f:
                    if f.read() != "keep me\n":
                        problems.append("the existing file changed")
            elif not os.path.islink(os.path.join(sub, first)) or target_text != "target\n" \
                    or os.path.exists(os.path.join(sub, "absent")):
                problems.append("the link or what it points to changed")
            if os.path.islink(path) or stat.S_IMODE(os.lstat(path).st_mode) != 0o600:
                problems.append("the report is not a new file of mode 0600")
            else:
                try:
                    with open(path) as f:
                        if json.load(f)["reason"] != "kill":
                            problems.append("the report's reason")
                except ValueError as e:
                    problems.append("the report is not JSON: %s" % e)
            if problems:
                fail(name, "; ".join(problems), err)
            else:
                ok(name)

    name = "an unwritable directory: the summary reaches stderr"
    if os.geteuid() == 0:
        report = os.path.join(d, "missing-dir", "r.json")  # root may write anywhere
    else:
        locked = os.path.join(d, "locked")
        os.mkdir(locked, 0o500)
        report = os.path.join(locked, "r.json")
    rc, _, err, _ = die_with_report(report)
    lines = [l for l in err.splitlines() if KILL_LINE in l]
    if rc != -signal.SIGABRT or os.path.exists(report) or len(lines) != 1 \
            or "report: none" not in lines[0] or "membudget: summary:" not in err:
        fail(name, "status %s" % rc, err)
    else:
        ok(name)


# ---- the API from a live process -----------------------------------------------------

def check_api_dump():
    name = "membudget_dump() writes a valid report and refuses to overwrite"
    d = fresh_dir("api")
    path = os.path.join(d, "live.json")
    code = ("import ctypes,sys\nlib=ctypes.CDLL(None)\nf=lib.membudget_dump\n"
            "f.argtypes=[ctypes.c_char_p]\nprint(f(sys.argv[1].encode()), f(sys.argv[1].encode()))\n"
            "lib.membudget_limit.restype=ctypes.c_size_t\nprint(lib.membudget_limit())\n"
            "print(lib.membudget_set_limit(ctypes.c_size_t(128<<20)))\nprint(lib.membudget_limit())\n")
    rc, out, err, _ = run(["python3", "-c", code, path], clean_env({"MEMBUDGET_LIMIT": "256M"}))
    if rc != 0 or out != "0 -1\n%d\n0\n%d\n" % (256 * MIB, 128 * MIB):
        return fail(name, "status %s, stdout %r" % (rc, out), err)
    with open(path) as f:
        dump = json.load(f)
    if dump["reason"] != "request" or dump["limit"]["kill_bytes"] != 256 * MIB:
        return fail(name, "reason %s" % dump["reason"])
    ok(name)
    # The backend asked for is the one that served the process.
    alloc = dump.get("allocator", {})
    name = "the report names the backend in use (%s)" % BACKEND
    if alloc.get("backend") != BACKEND:
        return fail(name, "allocator %r" % alloc)
    ok(name)
    if BACKEND == "jemalloc":
        # What jemalloc itself counts mapped is what the hooks charged (its
        # committed extents) plus its metadata blocks (mapped, not charged).
        name = "jemalloc: charged bytes + metadata match jemalloc's stats.mapped"
        ours = alloc["charged_bytes"] + alloc["metadata_mapped_bytes"]
        if alloc["mapped_bytes"] == 0 or alloc["charged_bytes"] == 0 \
                or abs(ours - alloc["mapped_bytes"]) > 4 * KIB:
            return fail(name, "charged %d + metadata %d, stats.mapped %d" % (
                alloc["charged_bytes"], alloc["metadata_mapped_bytes"], alloc["mapped_bytes"]))
        ok(name)


def check_backend_table_readonly():
    """Every exported entry point jumps through the backend table: once the
    constructor has chosen, its page is read-only in the running process."""
    name = "the backend table's page is read-only once chosen (%s)" % BACKEND
    try:
        syms = subprocess.run(["nm", LIB], capture_output=True, text=True, timeout=TIMEOUT).stdout
    except OSError as e:
        return skip(name, "nm: %s" % e)
    value = None
    for line in syms.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == "alloc_backend_page":
            value = int(fields[0], 16)
    if not syms.strip():
        return skip(name, "%s has no symbol table (stripped)" % LIB)
    if value is None:
        return fail(name, "%s has no alloc_backend_page: the table has no page of its own" % LIB)
    # The program says it is in main, so the constructor has run.
    p = subprocess.Popen(["python3", "-c", "import time; print('ready', flush=True); time.sleep(60)"],
                         env=clean_env({}), stdout=subprocess.PIPE, text=True)
    try:
        p.stdout.readline()
        with open("/proc/%d/maps" % p.pid) as f:
            maps = f.read()
    finally:
        p.kill()
        p.wait()
    mine = [line.split() for line in maps.splitlines() if line.endswith(" " + LIB)]
    bases = [int(m[0].split("-")[0], 16) for m in mine if int(m[2], 16) == 0]
    if not bases:
        return fail(name, "%s is not mapped in the process" % LIB, maps)
    addr = min(bases) + value
    perms = [m[1] for m in mine
             if int(m[0].split("-")[0], 16) <= addr < int(m[0].split("-")[1], 16)]
    if perms != ["r--p"]:
        return fail(name, "the page at %#x is mapped %r" % (addr, perms), maps)
    ok(name)


def main():
    for limit in (32, 64, 256):
        for threads in (1, 8):
            check_growth(limit, threads, 256 * KIB if threads == 1 else 64 * KIB)
    check_python_growth()
    check_python_threads()
    check_real_cgroup()
    check_mmap()
    check_fail_c()
    check_fail_cxx()
    check_fail_python()
    check_warn()
    check_callbacks()
    check_inactive_limit()
    check_monitor_and_fork()
    check_bad_values()
    check_report_paths()
    check_api_dump()
    check_backend_table_readonly()
    print(results.summary(), flush=True)
    subprocess.run(["chmod", "-R", "u+rwx", tmp])
    subprocess.run(["rm", "-rf", tmp])
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
