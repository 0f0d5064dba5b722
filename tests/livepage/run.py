#!/usr/bin/env python3
"""The live-statistics pages against another user (DESIGN §11, "Everything read
is hostile"): `membudget stat` and `membudget top`, run as root, facing pages
that `nobody` places or owns.

  fifo            a FIFO where root's process's page would be: no hang, refused
  forged          a page made by nobody for root's process: refused, not shown
  truncate        a page its owner keeps truncating and rewriting while root
                  reads it again and again: no death by a signal, no hang
  module fifo     a page naming a FIFO as the file of a frame: no hang in
                  stat, stat --json and top
  escapes         comm, policy, limit source and a frame's file holding
                  terminal controls and newlines: escaped in stat and top,
                  kept exactly in --json, valid label values in --prometheus
  bounds          counts and indexes past the layout: refused, not followed
  the directory   a page of the library lands in /dev/shm/membudget-<uid>/
                  (0700); a directory of that name that another user made, or
                  a FIFO or a symbolic link there, keeps the library from
                  publishing without stopping or blocking its process
  cxx_names       a C++ program whose largest allocation site is
                  store::Arena<store::Block>::grow(unsigned long), reached
                  through operator new: stat, stat --json and top --once name
                  both frames demangled, and no mangled (_Z) name shows

Everything runs in a private mount namespace with a tmpfs of its own on
/dev/shm (the suite re-executes itself under `unshare -m`), so nothing of the
host is touched; the second user comes from `setpriv`.  Needs root, unshare and
setpriv (util-linux).  Every command has a time limit: a hang is a failure.

Usage: run.py BUILD_ROOT [CASE...] (the functions below; all by default).  Prints "ok NAME", "skip NAME: why" or "FAIL NAME:
why" per case, then "N passed, N failed[, N skipped]"."""
import json
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import suite  # noqa: E402  (tests/suite.py)

BUILD = os.path.realpath(sys.argv[1]) if len(sys.argv) > 1 else None
TOOL = BUILD and os.path.join(BUILD, "membudget")
LIB = BUILD and os.path.join(BUILD, "libmembudget.so")
LIVE = BUILD and os.path.join(BUILD, "tests", "cli", "live")
CXXSITE = BUILD and os.path.join(BUILD, "tests", "livepage", "cxxsite")
SHM = "/dev/shm"
TIMEOUT = 10
NOBODY = 65534
AS_NOBODY = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
MIB = 1 << 20
# Rounds of the truncation race: today's reader died of SIGBUS in about one
# run in ten; the reader must survive every one.
TRUNCATE_ROUNDS = 150

results = suite.Results(12)
ok, skip, fail = results.ok, results.skip, results.fail
children = []


check = results.check


def tool(*args, timeout=TIMEOUT):
    """Runs the command as root; a hang becomes returncode None."""
    try:
        r = subprocess.run([TOOL] + list(args), capture_output=True, timeout=timeout,
                           env=suite.environment())
    except subprocess.TimeoutExpired as e:
        r = subprocess.CompletedProcess(e.cmd, None, e.stdout or b"", e.stderr or b"")
    r.out = r.stdout.decode("utf-8", "replace")
    r.err = r.stderr.decode("utf-8", "replace")
    return r


def as_nobody(*args, data=None):
    return subprocess.run(AS_NOBODY + list(args), input=data, capture_output=True, timeout=TIMEOUT)


def spawn(argv, owner=0):
    p = subprocess.Popen((AS_NOBODY if owner == NOBODY else []) + argv,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=suite.environment())
    children.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def victim(owner):
    """A process of `owner` to claim a page for, and its pid."""
    p = spawn(["sleep", "120"], owner)
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:  # setpriv has exec'd sleep
        try:
            with open("/proc/%d/status" % p.pid) as f:
                text = f.read()
            uid = int(re.search(r"^Uid:\s+\d+\s+(\d+)", text, re.M).group(1))
            with open("/proc/%d/comm" % p.pid) as f:
                if f.read().strip() == "sleep" and uid == owner:
                    break
        except (OSError, AttributeError):
            pass
        time.sleep(0.01)
    return p, p.pid


def page_dir(uid):
    return "%s/membudget-%d" % (SHM, uid)


def page_paths(uid, pid):
    """Where a reader looks for the page of pid, a process of uid: the
    per-user directory, and the one file per pid of the first layout."""
    return ["%s/%d" % (page_dir(uid), pid), "%s/membudget.%d" % (SHM, pid)]


def reset_shm():
    for name in os.listdir(SHM):
        path = os.path.join(SHM, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def nobody_dir(uid, mode=0o777):
    """nobody makes the per-user directory of uid, as an attacker would."""
    as_nobody("mkdir", "-m", "%o" % mode, page_dir(uid))


def nobody_own_dir():
    """nobody's own per-user directory, as the library makes it."""
    as_nobody("mkdir", "-p", "-m", "0700", page_dir(NOBODY))


def nobody_file(path, data):
    r = as_nobody("sh", "-c", 'umask 077; cat > "$1"', "sh", path, data=data)
    return r.returncode == 0


# ---- pages ------------------------------------------------------------------------

def text(s, size):
    b = s.encode() if isinstance(s, str) else s
    return b[:size].ljust(size, b"\0")


def make_page(pid, comm="forged", policy="pwned", footprint=int(117.7 * MIB),
              limit_source="MEMBUDGET_LIMIT=256M", sample=0, frames=(), modules=(),
              frame_count=None, module_count=None, depth=None, size=1752, top_site=1):
    """A page in the layout of policy/statspage.h.  start_ticks 0 ("unknown")
    keeps a reader from calling it stale for want of a mapping."""
    rec = struct.pack("<IIIIQQ16sQ", 0x3170626d, 1, size, pid, 0, time.time_ns(),
                      text(comm, 16), 2)
    rec += struct.pack("<14QII", time.time_ns(), 10 ** 9, 7, footprint, footprint, footprint,
                       footprint, 0, footprint, 256 * MIB, 200 * MIB, 230 * MIB, 256 * MIB, 3,
                       1, 1)
    rec += text(policy, 24) + text("abort", 8) + text("active", 12) + text("rss", 36)
    rec += text(limit_source, 192)
    assert len(rec) == 448
    fc = len(frames) if frame_count is None else frame_count
    mc = len(modules) if module_count is None else module_count
    rec += struct.pack("<9Q4I", sample, 5 * MIB if sample else 0, 10, 10, 5 * MIB,
                       time.time_ns(), 1000, 1, 1000, top_site if sample else 0,
                       fc if depth is None else depth, fc, mc)
    for i in range(8):
        address, offset, module = frames[i] if i < len(frames) else (0, 0, 0)
        rec += struct.pack("<QQII", address, offset, module, 0)
    for i in range(4):
        rec += text(modules[i] if i < len(modules) else b"", 256)
    assert len(rec) == 1752
    return rec.ljust(4096, b"\0")


def refused_one_line(r):
    return (r.returncode == 1 and r.out == "" and len(r.err.splitlines()) == 1)


def listed(r, pid):
    return re.search(r"^\s*%d " % pid, r.out, re.M) is not None


def no_controls(s):
    """No byte a terminal acts on: C0 but newline, DEL, C1 (as UTF-8)."""
    return re.search(r"[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]", s) is None


# ---- the cases ------------------------------------------------------------------------

def fifo():
    p, pid = victim(0)
    try:
        nobody_dir(0)
        for path in page_paths(0, pid):
            as_nobody("mkfifo", path)
        r = tool("stat", str(pid))
        check("fifo: stat does not block and refuses in one line",
              r.returncode is not None and refused_one_line(r),
              "exit %s (None: hung %d s)" % (r.returncode, TIMEOUT), r.err + r.out)
        r = tool("stat", "--json", str(pid))
        check("fifo: stat --json does not block", r.returncode == 1,
              "exit %s" % r.returncode, r.err + r.out)
        r = tool("top", "--once")
        check("fifo: top --once does not block, does not list it",
              r.returncode == 0 and not listed(r, pid), "exit %s" % r.returncode, r.out + r.err)
    finally:
        stop(p)
        reset_shm()


def forged():
    p, pid = victim(0)
    try:
        nobody_dir(0)
        page = make_page(pid, comm="sleep", policy="pwned")
        placed = all(nobody_file(path, page) for path in page_paths(0, pid))
        if not check("forged: nobody places its pages", placed, "could not write"):
            return
        r = tool("stat", str(pid))
        check("forged: stat refuses nobody's page for root's process, in one line",
              refused_one_line(r) and "pwned" not in r.out + r.err and "117.7" not in r.out,
              "exit %s" % r.returncode, r.out + r.err)
        r = tool("stat", "--json", str(pid))
        check("forged: stat --json refuses it", r.returncode == 1 and "pwned" not in r.out,
              "exit %s" % r.returncode, r.out + r.err)
        r = tool("stat", "--prometheus", str(pid))
        check("forged: stat --prometheus refuses it", r.returncode == 1 and "pwned" not in r.out,
              "exit %s" % r.returncode, r.out + r.err)
        r = tool("top", "--once")
        check("forged: top --once does not show it",
              r.returncode == 0 and not listed(r, pid) and "pwned" not in r.out,
              "exit %s" % r.returncode, r.out + r.err)
        # The same page in a file root owns but nobody may write: refused too.
        reset_shm()
        os.mkdir(page_dir(0), 0o700)
        path = page_paths(0, pid)[0]
        with open(path, "wb") as f:
            f.write(page)
        os.chmod(path, 0o666)
        os.chmod(page_dir(0), 0o777)
        r = tool("stat", str(pid))
        check("forged: a directory others may write is refused",
              refused_one_line(r) and "pwned" not in r.out, "exit %s" % r.returncode,
              r.out + r.err)
    finally:
        stop(p)
        reset_shm()


TRUNCATOR = r"""
import os, sys
data = sys.stdin.buffer.read()
fds = []
for path in sys.argv[1:]:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fds.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
print("ready", flush=True)
while True:
    for fd in fds:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data[:2048], 0)
        os.ftruncate(fd, 4096)
        os.pwrite(fd, data, 0)
"""


def truncate():
    p, pid = victim(NOBODY)
    writer = None
    try:
        page = make_page(pid, comm="sleep", policy="truncated")
        # A Python that nobody may run (sys.executable may lie under /root).
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        writer = subprocess.Popen(AS_NOBODY + [python, "-c", TRUNCATOR] +
                                  page_paths(NOBODY, pid), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        children.append(writer)
        writer.stdin.write(page)
        writer.stdin.close()
        import select
        ready = select.select([writer.stdout], [], [], TIMEOUT)[0]
        line = writer.stdout.readline() if ready else b""
        if line != b"ready\n":
            writer.kill()
            return fail("truncate: nobody's writer runs", "no ready line",
                        writer.stderr.read(2000).decode(errors="replace"))
        deaths, hangs, bad, shown = [], 0, [], 0
        for i in range(TRUNCATE_ROUNDS):
            r = tool("top", "--once") if i % 3 == 2 else tool("stat", str(pid))
            if r.returncode is None:
                hangs += 1
            elif r.returncode < 0:
                deaths.append(signal.Signals(-r.returncode).name)
            elif r.returncode not in (0, 1) or (r.returncode == 1 and len(r.err.splitlines()) != 1):
                bad.append((r.returncode, r.err))
            elif r.returncode == 0 and "truncated" in r.out:
                shown += 1
        check("truncate: %d reads of a page truncated under them: no signal, no hang"
              % TRUNCATE_ROUNDS, not deaths and not hangs and not bad,
              "%d deaths (%s), %d hangs, %d bad exits" % (len(deaths), ", ".join(deaths[:5]),
                                                          hangs, len(bad)), repr(bad[:3]))
        check("truncate: the page is read when whole", shown > 0, "never shown")
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
        stop(p)
        reset_shm()


def module_fifo():
    p, pid = victim(NOBODY)
    nobody_own_dir()
    try:
        fifo_path = os.path.join(SHM, "module.so")
        as_nobody("mkfifo", fifo_path)
        page = make_page(pid, comm="sleep", policy="unrestricted", sample=64 * 1024,
                         frames=[(0x7f0000001234, 0x1234, 0)], modules=[fifo_path])
        placed = all(nobody_file(path, page) for path in page_paths(NOBODY, pid))
        if not check("module fifo: nobody publishes its page", placed, "could not write"):
            return
        for args in (("stat", str(pid)), ("stat", "--json", str(pid)),
                     ("stat", "--prometheus", str(pid)), ("top", "--once")):
            r = tool(*args)
            label = " ".join(a for a in args if not a.isdigit())
            check("module fifo: %s does not block on a FIFO named as a frame's file" % label,
                  r.returncode == 0 and (args[0] == "stat" or listed(r, pid)),
                  "exit %s (None: hung %d s)" % (r.returncode, TIMEOUT), r.out + r.err)
    finally:
        stop(p)
        reset_shm()


EVIL_COMM = "ev\x1b[31mi\nl\x07"          # 15 bytes: fits comm[16]
EVIL_POLICY = "p\x1b]0;title\x07x"
EVIL_SOURCE = "MEMBUDGET_LIMIT=\x1b[2J\xc2\x9b6m"
EVIL_MODULE = "/tmp/\x1b[2Jm\nod.so"


def escapes():
    p, pid = victim(NOBODY)
    nobody_own_dir()
    try:
        page = make_page(pid, comm=EVIL_COMM, policy=EVIL_POLICY,
                         limit_source=EVIL_SOURCE.encode("latin-1"), sample=64 * 1024,
                         frames=[(0x7f0000001234, 0x1234, 0)], modules=[EVIL_MODULE])
        placed = all(nobody_file(path, page) for path in page_paths(NOBODY, pid))
        if not check("escapes: nobody publishes its page", placed, "could not write"):
            return
        r = tool("stat", str(pid))
        first = r.out.splitlines()[0] if r.out else ""
        check("escapes: stat writes no terminal control, comm on its own line",
              r.returncode == 0 and no_controls(r.out) and
              first.startswith("pid") and "\\x1b[31mi\\x0al\\x07" in first and
              "\\x1b]0;title\\x07x" in r.out and "\\xc2\\x9b" in r.out and
              "\\x1b[2Jm\\x0aod.so" in r.out,
              "exit %s" % r.returncode, ascii(r.out + r.err))
        r = tool("top", "--once")
        rows = [l for l in r.out.splitlines() if re.match(r"\s*%d " % pid, l)]
        check("escapes: top keeps the process on one row, no terminal control",
              r.returncode == 0 and no_controls(r.out) and len(rows) == 1 and
              "\\x1b" in rows[0] and not any(l.startswith("l\\x07") or l.startswith("od.so")
                                             for l in r.out.splitlines()),
              "exit %s, %d rows" % (r.returncode, len(rows)), ascii(r.out + r.err))
        r = tool("stat", "--json", str(pid))
        try:
            doc = json.loads(r.out)
            frame = doc["top_site"]["frames"][0]
            # JSON carries C1 code points as they are (tools/textout.h); C0 and
            # DEL are escaped.
            check("escapes: stat --json keeps the strings exactly, as valid JSON",
                  doc["comm"] == EVIL_COMM and doc["policy"] == EVIL_POLICY and
                  doc["limit_source"] == EVIL_SOURCE.encode("latin-1").decode("utf-8") and
                  frame["module"] == EVIL_MODULE and
                  re.search(r"[\x00-\x09\x0b-\x1f\x7f]", r.out) is None,
                  "strings differ", ascii(r.out))
        except (ValueError, KeyError, IndexError, TypeError) as e:
            fail("escapes: stat --json keeps the strings exactly, as valid JSON", repr(e),
                 ascii(r.out + r.err))
        r = tool("stat", "--prometheus", str(pid))
        sample = re.compile(r'^membudget_[a-z_]+\{(?:[a-z_]+="(?:[^"\\\n]|\\[\\"n])*",?)+\} '
                            r'[0-9.e+-]+$')
        lines = [l for l in r.out.splitlines() if not l.startswith("#")]
        check("escapes: stat --prometheus label values escaped per the exposition format",
              r.returncode == 0 and lines and all(sample.match(l) for l in lines) and
              no_controls(r.out) and
              'comm="ev\ufffd[31mi\\nl\ufffd"' in r.out,
              "exit %s" % r.returncode,
              ascii("\n".join(l for l in lines if not sample.match(l)) or r.out))
    finally:
        stop(p)
        reset_shm()


def bounds():
    """Counts and indexes a writer never produces: the page is refused (one
    line), not read past its fields."""
    p, pid = victim(NOBODY)
    cases = [
        ("frame count past the frames", dict(frames=[(0x1000, 0, 0)], modules=["/bin/sh"],
                                             frame_count=1000)),
        ("module count past the modules", dict(frames=[(0x1000, 0, 0)], modules=["/bin/sh"],
                                               module_count=99)),
        ("frame naming a module past the count", dict(frames=[(0x1000, 0, 3)],
                                                      modules=["/bin/sh"])),
        ("depth below the frame count", dict(frames=[(0x1000, 0, 0)] * 4, modules=["/bin/sh"],
                                             depth=2)),
        ("a module path without its NUL", dict(frames=[(0x1000, 0, 0)],
                                               modules=[b"/" + b"a" * 255])),
        ("a size past the file", dict(size=8192)),
        ("a size below the first layout", dict(size=100)),
    ]
    nobody_own_dir()
    try:
        for name, kw in cases:
            page = make_page(pid, comm="sleep", sample=64 * 1024, **kw)
            for path in page_paths(NOBODY, pid):
                if os.path.exists(path):
                    os.unlink(path)
            placed = all(nobody_file(path, page) for path in page_paths(NOBODY, pid))
            r = tool("stat", str(pid))
            check("bounds: %s: refused in one line" % name,
                  placed and refused_one_line(r), "exit %s" % r.returncode, r.out + r.err)
        # A comm without its NUL.
        page = bytearray(make_page(pid))
        page[32:48] = b"x" * 16
        for path in page_paths(NOBODY, pid):
            if os.path.exists(path):
                os.unlink(path)
        placed = all(nobody_file(path, bytes(page)) for path in page_paths(NOBODY, pid))
        r = tool("stat", str(pid))
        check("bounds: a comm without its NUL: refused in one line",
              placed and refused_one_line(r), "exit %s" % r.returncode, r.out + r.err)
    finally:
        stop(p)
        reset_shm()


def library_directory():
    """The library's own page, and what it does when the directory is wrong."""
    def run_live(extra_env=None):
        env = suite.environment(dict(extra_env or {}, MEMBUDGET_VERBOSE="1",
                                     MEMBUDGET_MONITOR="thread"), preload=LIB)
        p = subprocess.Popen([LIVE, "256", "20", "16"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        children.append(p)
        line = p.stdout.readline().decode()
        m = re.match(r"ready (\d+)", line)
        return p, int(m.group(1)) if m else None

    def finish(p):
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return None, err.decode(errors="replace")
        return p.returncode, err.decode(errors="replace")

    # The normal case: the directory is made 0700, the page 0600, and read.
    p, pid = run_live()
    try:
        path = "%s/%d" % (page_dir(0), pid)
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and not os.path.exists(path):
            time.sleep(0.05)
        st_dir = os.lstat(page_dir(0)) if os.path.exists(page_dir(0)) else None
        st_page = os.lstat(path) if os.path.exists(path) else None
        check("directory: the library publishes in %s/ (0700), its page 0600" % page_dir(0),
              st_dir is not None and stat.S_ISDIR(st_dir.st_mode) and
              stat.S_IMODE(st_dir.st_mode) == 0o700 and st_dir.st_uid == 0 and
              st_page is not None and stat.S_IMODE(st_page.st_mode) == 0o600,
              "dir %s, page %s" % (st_dir and oct(st_dir.st_mode), st_page and
                                   oct(st_page.st_mode)), "\n".join(os.listdir(SHM)))
        r = tool("stat", str(pid))
        check("directory: stat reads the library's page", r.returncode == 0 and
              re.match(r"pid\s+%d \(live\)" % pid, r.out), "exit %s" % r.returncode,
              r.out + r.err)
        r = tool("top", "--once")
        check("directory: top lists it", r.returncode == 0 and listed(r, pid),
              "exit %s" % r.returncode, r.out + r.err)
    finally:
        status, err = finish(p)
    check("directory: the page is removed at exit", status == 0 and not os.path.exists(path),
          "exit %s" % status, err)
    reset_shm()

    # Another user's directory, a FIFO, a symbolic link: no page, the process
    # runs on, at most one line about it.
    traps = [
        ("nobody's directory", lambda: nobody_dir(0, 0o700)),
        ("nobody's directory open to all", lambda: nobody_dir(0, 0o777)),
        ("a FIFO", lambda: as_nobody("mkfifo", page_dir(0))),
        ("a symbolic link to nobody's directory",
         lambda: (as_nobody("mkdir", "-m", "0777", SHM + "/elsewhere"),
                  as_nobody("ln", "-s", SHM + "/elsewhere", page_dir(0)))),
        ("root's directory open to all", lambda: os.mkdir(page_dir(0), 0o777) or
         os.chmod(page_dir(0), 0o777)),
    ]
    for name, make in traps:
        make()
        p, pid = run_live()
        try:
            time.sleep(0.8)  # past the first tick after half a second
            alive = p.poll() is None
            pages = [os.path.join(d, f) for d, _, fs in os.walk(SHM) for f in fs
                     if f == str(pid) or f == "membudget.%d" % pid]
        finally:
            status, err = finish(p)
        lines = [l for l in err.splitlines() if "live statistics" in l]
        check("directory: %s in the way: no page, the process runs on, one line" % name,
              pid is not None and alive and status == 0 and not pages and
              len(lines) == 1 and "unavailable" in lines[0] and page_dir(0) in lines[0],
              "alive %s, exit %s, pages %s" % (alive, status, pages), err)
        reset_shm()


# tests/livepage/cxxsite: 512 KiB steps up to 48 MiB, three of every four from
# the template member (36 MiB), one from store::spare (12 MiB); sampled at 1 per
# 64 KiB, the member's site holds the largest estimate by far.
CXX_SITE = "store::Arena<store::Block>::grow(unsigned long)"
CXX_NEW = "operator new(unsigned long)"
CXX_MANGLED = "_ZN5store5ArenaINS_5BlockEE4growEm"


def cxx_top_site(pid):
    """stat --json of pid once its page names a top site (None if none comes
    within the time limit: the monitor publishes it at a tick)."""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        r = tool("stat", "--json", str(pid))
        try:
            site = json.loads(r.out)["top_site"]
            if site["state"] == "ok" and len(site["frames"]) >= 2:
                return r, site
        except (ValueError, KeyError, TypeError):
            pass
        time.sleep(0.1)
    return r, None


def cxx_names():
    """The top site of a C++ process, by its demangled names."""
    env = suite.environment({"MEMBUDGET_SAMPLE": "64K", "MEMBUDGET_MONITOR": "thread"},
                            preload=LIB)
    p = subprocess.Popen([CXXSITE, "512", "48"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    children.append(p)
    try:
        line = p.stdout.readline().decode()
        m = re.match(r"done (\d+)$", line.strip())
        if not check("cxx names: the C++ program allocates its sites", m is not None and
                     int(m.group(1)) == p.pid, "no done line: %r" % line):
            return
        pid = p.pid
        r, site = cxx_top_site(pid)
        names = [f.get("function") for f in site["frames"]] if site else []
        check("cxx names: stat --json names operator new < %s" % CXX_SITE,
              r.returncode == 0 and names[:2] == [CXX_NEW, CXX_SITE] and
              site["text"].startswith("%s < %s < main" % (CXX_NEW, CXX_SITE)) and
              "_Z" not in r.out, "frames %s" % names, r.out + r.err)
        r = tool("stat", str(pid))
        head = re.search(r"^top site\s+(.*?): \S+ \S+ \(\d+ bytes\) estimated live", r.out, re.M)
        frames = re.findall(r"^\s+#(\d+) (.*?)(?: at (\S+)| in (\S+))?$", r.out, re.M)
        src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cxxsite.cc")).read()
        new_line = next(i + 1 for i, l in enumerate(src.splitlines()) if "the largest site" in l)
        check("cxx names: stat names the site %s at cxxsite.cc:%d" % (CXX_SITE, new_line),
              r.returncode == 0 and head is not None and head.group(1) == CXX_NEW and
              len(frames) >= 2 and frames[0][1] == CXX_NEW and frames[1][1] == CXX_SITE and
              frames[1][2].endswith("/cxxsite.cc:%d" % new_line) and
              "_Z" not in r.out and CXX_MANGLED not in r.out, "frames %s" % frames[:3],
              r.out + r.err)
        env = suite.environment()
        env.pop("COLUMNS", None)
        t = subprocess.run([TOOL, "top", "--once"], capture_output=True, timeout=TIMEOUT, env=env)
        out = t.stdout.decode("utf-8", "replace")
        rows = [l for l in out.splitlines() if re.match(r"\s*%d \S" % pid, l)]
        check("cxx names: top --once shows the site as %s < %s < main" % (CXX_NEW, CXX_SITE),
              t.returncode == 0 and len(rows) == 1 and
              rows[0].endswith(" %s < %s < main" % (CXX_NEW, CXX_SITE)) and "_Z" not in out,
              "row %r" % (rows[:1],), out + t.stderr.decode("utf-8", "replace"))
    finally:
        stop(p)
        reset_shm()


def main():
    if BUILD is None:
        print("usage: run.py BUILD_ROOT", file=sys.stderr)
        return 2
    if os.environ.get("MB_LIVEPAGE_NS") != "1":
        if os.getuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
            skip("live pages against another user", "needs root, unshare and setpriv (util-linux)")
            print(results.summary())
            return 0
        # A private mount namespace with its own /dev/shm: the host's is
        # never touched.
        env = dict(os.environ, MB_LIVEPAGE_NS="1")
        return subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                               os.path.abspath(__file__)] + sys.argv[1:], env=env).returncode
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=64m", "mb-livepage",
                            SHM], capture_output=True, text=True)
    if mount.returncode != 0:
        fail("a private /dev/shm", "mount failed", mount.stderr)
        print(results.summary())
        return 1
    cases = [fifo, forged, truncate, module_fifo, escapes, bounds, library_directory, cxx_names]
    # sys.argv[2:]: names of cases to run; all when none.
    return suite.run_cases(results, cases, only=sys.argv[2:], children=children,
                           on_error=reset_shm)


if __name__ == "__main__":
    sys.exit(main())
