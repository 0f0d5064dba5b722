#!/usr/bin/env python3
"""`membudget run` as the command's parent (issue 16): why the command ended
(exit status and one reason line), the events file, restarts and the window
that stops them, signals sent to run, bad option values.

Usage: run.py BUILD_ROOT   (BUILD_ROOT holds membudget, membudget-report,
libmembudget.so and tests/run/grow).  MB_TEST_BACKEND=jemalloc runs the
commands on the jemalloc backend.  Prints "ok NAME", "skip NAME: why" or
"FAIL NAME: why" per case, then "N passed, N failed[, N skipped]".  Nothing
here asserts a duration: restarts are counted, and every wait has a generous
limit that only a hang reaches."""
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

BUILD = os.path.realpath(sys.argv[1])
TOOL = os.path.join(BUILD, "membudget")
GROW = os.path.join(BUILD, "tests", "run", "grow")
TIMEOUT = 120
BUDGET = 121  # run's status for a command its budget stopped

results = suite.Results(16)
check, fail = results.check, results.fail
tmp = tempfile.mkdtemp(prefix="mb-run.")
_serial = [0]


def env(extra=None):
    """The environment of a run: no MEMBUDGET_* from outside, reports in tmp,
    the backend under test."""
    e = suite.environment(dict({"TMPDIR": tmp, "MEMBUDGET_BACKEND": suite.BACKEND}, **(extra or {})))
    return e


def fresh(name):
    _serial[0] += 1
    return os.path.join(tmp, "%s.%d" % (name, _serial[0]))


def run(*args, extra=None, timeout=TIMEOUT):
    return subprocess.run([TOOL, "run"] + list(args), capture_output=True, text=True,
                          env=env(extra), timeout=timeout)


def lines_of(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def reason_lines(r):
    return [l for l in r.stderr.splitlines() if l.startswith("membudget run: ")]


def events_of(path):
    """Every line of the events file as JSON; a line that is not fails the
    case that reads it (json.loads raises)."""
    return [json.loads(line) for line in lines_of(path)]


BUDGET_LINE = re.compile(r"^membudget run: (\S+) \(pid (\d+)\) exceeded its (active|inactive) "
                         r"limit \((.+) of (.+)\); report: (\S+)$")


def budget_death(label, r, state, limit_text=None):
    """The last line says the budget stopped the command, with the report's
    own figures; the report is the pid's kill report; status 121."""
    last = r.stderr.splitlines()[-1] if r.stderr else ""
    m = BUDGET_LINE.match(last)
    if not check("%s: status %d and the reason line last" % (label, BUDGET),
                 r.returncode == BUDGET and m is not None and m.group(3) == state and
                 (limit_text is None or m.group(5) == limit_text),
                 "exit %d, last line %r" % (r.returncode, last), r.stderr):
        return None
    with open(m.group(6)) as f:
        doc = json.load(f)
    check("%s: the report is the pid's kill report, in the %s state" % (label, state),
          doc["reason"] == "kill" and doc["pid"] == int(m.group(2)) and
          doc["limit"]["state"] == state, "report %s: %r" % (m.group(6), {
              k: doc.get(k) for k in ("reason", "pid")}))
    check("%s: the summary is still printed before it" % label,
          "exceeded its memory budget" in r.stderr and len(r.stderr.splitlines()) >= 4,
          "%d lines" % len(r.stderr.splitlines()), r.stderr)
    return doc


# ---- why it died --------------------------------------------------------------------

def why_it_died():
    r = run("--limit", "32M", "--", GROW, "1024")
    budget_death("budget death, active limit", r, "active", "32 MiB")

    # The jetsam model's inactive threshold: 0.9 x a ramSize of 128 MiB.
    r = run("--", GROW, "1024", extra={"MEMBUDGET_STATE": "inactive", "MEMBUDGET_RAM": "128M"})
    doc = budget_death("budget death, inactive limit", r, "inactive")
    if doc is not None:
        check("inactive limit: the threshold is the model's for the inactive state",
              doc["limit"]["kill_bytes"] == doc["limit"]["inactive_kill_bytes"] and
              doc["limit"]["kill_source"] != "MEMBUDGET_LIMIT", "limit %r" % doc["limit"])

    r = run("--", "sh", "-c", "kill -SEGV $$")
    check("crash: 139 and 'crashed with signal 11 (SIGSEGV)'",
          r.returncode == 139 and reason_lines(r) and
          re.match(r"membudget run: sh \(pid \d+\) crashed with signal 11 \(SIGSEGV\)$",
                   reason_lines(r)[-1]), "exit %d" % r.returncode, r.stderr)
    # An abort that is not the budget's: no kill report, so 134 as before.
    r = run("--limit", "32M", "--", "sh", "-c", "kill -ABRT $$")
    check("an abort without a kill report: 134 and 'crashed with signal 6 (SIGABRT)'",
          r.returncode == 134 and reason_lines(r) and
          reason_lines(r)[-1].endswith("crashed with signal 6 (SIGABRT)") and
          "exceeded" not in r.stderr, "exit %d" % r.returncode, r.stderr)
    r = run("--", "sh", "-c", "kill -TERM $$")
    check("killed: 143 and 'was killed by signal 15 (SIGTERM)'",
          r.returncode == 143 and reason_lines(r) and
          reason_lines(r)[-1].endswith("was killed by signal 15 (SIGTERM)"),
          "exit %d" % r.returncode, r.stderr)
    r = run("--", "sh", "-c", "exit 3")
    check("exit 3: status 3 and 'exited 3'",
          r.returncode == 3 and len(reason_lines(r)) == 1 and
          re.match(r"membudget run: sh \(pid \d+\) exited 3$", reason_lines(r)[0]),
          "exit %d" % r.returncode, r.stderr)
    r = run("--", "true")
    check("exit 0: nothing on stderr", r.returncode == 0 and r.stderr == "",
          "exit %d" % r.returncode, r.stderr)
    # A report of the right name but not of this process (an older dump of
    # another pid) does not make an ordinary crash a budget death.
    fake = os.path.join(tmp, "fake.%p.json")
    r = run("--report", fake, "--", "sh", "-c",
            'printf \'{"membudget_dump": 1, "pid": %d, "reason": "kill", "time_unix_ns": 1, '
            '"limit": {"state": "active", "kill_bytes": 1}, "footprint": {"bytes": 2}}\' $$ '
            '> "$0"/fake.$$.json; kill -ABRT $$', tmp)
    check("a kill report of the pid dated before the command started: not a budget death (134)",
          r.returncode == 134 and "exceeded" not in r.stderr, "exit %d" % r.returncode, r.stderr)

    # The report is read as hostile input: behind a symbolic link it is not
    # read, though it says all the right things.
    for kind in ("link", "file"):
        script = ('now=$(date +%%s%%N); printf \'{"membudget_dump": 1, "pid": %%d, "reason": '
                  '"kill", "time_unix_ns": %%s, "limit": {"state": "active", "kill_bytes": 1048576}, '
                  '"footprint": {"bytes": 2097152}}\' $$ "$now" > "$0"/%s.$$.real; %s; '
                  'kill -ABRT $$') % (kind, 'ln -s "$0"/%s.$$.real "$0"/%s.$$.json' % (kind, kind)
                                       if kind == "link" else
                                       'mv "$0"/%s.$$.real "$0"/%s.$$.json' % (kind, kind))
        r = run("--report", os.path.join(tmp, kind + ".%p.json"), "--", "sh", "-c", script, tmp)
        if kind == "link":
            check("a kill report behind a symbolic link is not read: 134, no budget line",
                  r.returncode == 134 and "exceeded" not in r.stderr, "exit %d" % r.returncode,
                  r.stderr)
        else:
            # The same, as a regular file of ours: the command's word is taken.
            check("the same report as a regular file of the user's is read: 121, 2 MiB of 1 MiB",
                  r.returncode == BUDGET and
                  "exceeded its active limit (2 MiB of 1 MiB)" in r.stderr,
                  "exit %d" % r.returncode, r.stderr)
    # A command name with a newline and terminal controls: one line, escaped.
    odd = os.path.join(tmp, "ev\x1b[31mil\nname")
    with open(odd, "w") as f:
        f.write("#!/bin/sh\nexit 3\n")
    os.chmod(odd, 0o755)
    r = run("--", odd)
    check("a command name with controls: the reason line escaped, one line",
          r.returncode == 3 and len(r.stderr.splitlines()) == 1 and "\x1b" not in r.stderr and
          "ev\\x1b[31mil\\x0aname (pid " in r.stderr, "exit %d" % r.returncode, repr(r.stderr))


# ---- the events file -----------------------------------------------------------------

def events_file():
    path = fresh("events") + ".jsonl"
    # grows to 166 MiB (between conservative, 80% of 200M, and strict, 90%),
    # waits until run has written the policy change, then grows past the limit
    r = run("--limit", "200M", "--events", path, "--", GROW, "1024", "--pause-at", "166", path,
            '"to":"conservative"', extra={"MEMBUDGET_MONITOR": "thread",
                                          "MEMBUDGET_INTERVAL": "20ms"})
    try:
        evs = events_of(path)
    except ValueError as e:
        fail("events: every line is one JSON object", str(e), "\n".join(lines_of(path)))
        return
    check("events: every line is one JSON object", all(isinstance(e, dict) for e in evs) and evs,
          "%d lines" % len(evs))
    mode = stat.S_IMODE(os.stat(path).st_mode)
    check("events: the file is created 0600", mode == 0o600, "mode %o" % mode)
    kinds = [e["event"] for e in evs]
    start = evs[0] if evs else {}
    check("events: start first, with pid, command and limit",
          kinds[:1] == ["start"] and start.get("command") == [GROW, "1024", "--pause-at", "166",
                                                             path, '"to":"conservative"'] and
          start.get("limit") == "200M" and start.get("state") == "active" and
          start.get("run") == 1 and isinstance(start.get("pid"), int), "%r" % evs[:1])
    pol = [e for e in evs if e["event"] == "policy"]
    check("events: the policy change unrestricted -> conservative, with the figures",
          any(e["from"] == "unrestricted" and e["to"] == "conservative" and
              e["limit_bytes"] == 200 << 20 and e["footprint_bytes"] > 160 << 20 for e in pol),
          "policy events %r" % pol, "\n".join(lines_of(path)))
    death = evs[-1] if evs else {}
    check("events: death last, reason active-limit, status 121, the report's path",
          death.get("event") == "death" and death.get("reason") == "active-limit" and
          death.get("status") == BUDGET and death.get("signal") == 6 and
          death.get("pid") == start.get("pid") and death.get("report") and
          os.path.exists(death["report"]) and r.returncode == BUDGET,
          "exit %d, last %r" % (r.returncode, death), r.stderr)

    # `-`: standard error; every line starting with '{' is an event
    r = run("--events", "-", "--", "sh", "-c", "exit 5")
    evs = [json.loads(l) for l in r.stderr.splitlines() if l.startswith("{")]
    check("events -: start and death on stderr, reason exit, exit_code 5",
          [e["event"] for e in evs] == ["start", "death"] and evs[1]["reason"] == "exit" and
          evs[1]["exit_code"] == 5 and evs[1]["status"] == 5 and evs[1]["report"] is None,
          "events %r" % evs, r.stderr)

    # The file is opened without following a link.
    target = fresh("target")
    link = fresh("link")
    open(target, "w").close()
    os.symlink(target, link)
    r = run("--events", link, "--", "true")
    check("events: a symbolic link is refused in one line, nothing run",
          r.returncode == 125 and len(r.stderr.splitlines()) == 1 and "--events" in r.stderr and
          os.path.getsize(target) == 0, "exit %d" % r.returncode, r.stderr)

    # Strings are escaped: a command with a quote, a newline and a control byte.
    path = fresh("escape") + ".jsonl"
    r = run("--events", path, "--", "sh", "-c", "exit 0", 'a"b\nc\x01d')
    evs = events_of(path)
    check("events: arguments escaped (one line each, the argument read back)",
          len(lines_of(path)) == 2 and evs[0]["command"][-1] == 'a"b\nc\x01d',
          "lines %r" % lines_of(path))


# ---- restarts -------------------------------------------------------------------------

def restarts():
    count = fresh("count")
    events = fresh("events")
    r = run("--limit", "32M", "--restart", "on-budget", "--restart-max", "5", "--restart-delay",
            "0", "--events", events, "--", GROW, "1024", "--count", count, "2")
    evs = events_of(events)
    deaths = [e for e in evs if e["event"] == "death"]
    reports = [e["report"] for e in deaths if e["reason"] == "active-limit"]
    check("on-budget: two budget deaths restarted, the third run exits 0",
          r.returncode == 0 and len(lines_of(count)) == 3 and
          [e["event"] for e in evs].count("start") == 3 and
          [e["count"] for e in evs if e["event"] == "restart"] == [1, 2] and
          [e["run"] for e in evs if e["event"] == "start"] == [1, 2, 3] and
          len(re.findall(r"restarting \S+ \(restart \d\)", r.stderr)) == 2,
          "exit %d, %d runs" % (r.returncode, len(lines_of(count))), r.stderr)
    check("on-budget: every run's report kept, each its own",
          len(reports) == 2 and len(set(reports)) == 2 and all(map(os.path.exists, reports)),
          "reports %r" % reports)

    count = fresh("count")
    r = run("--restart=on-budget", "--restart-delay", "0", "--", "sh", "-c",
            'echo r >> "$0"; exit 4', count)
    check("on-budget: another failure is not restarted", r.returncode == 4 and
          len(lines_of(count)) == 1, "exit %d, %d runs" % (r.returncode, len(lines_of(count))),
          r.stderr)

    count = fresh("count")
    r = run("--restart", "always", "--restart-max", "5", "--restart-delay", "0", "--", "sh", "-c",
            'echo r >> "$0"; n=$(wc -l < "$0"); [ "$n" -ge 4 ] && exit 0; '
            '[ "$n" -eq 2 ] && kill -SEGV $$; exit 4', count)
    check("always: exit 4, a crash, exit 4 restarted; the fourth run's exit 0 ends it",
          r.returncode == 0 and len(lines_of(count)) == 4 and
          len(re.findall(r"restarting sh \(restart \d\)", r.stderr)) == 3,
          "exit %d, %d runs" % (r.returncode, len(lines_of(count))), r.stderr)

    for mode in ("never", None):
        count = fresh("count")
        args = ["--limit", "32M"] + (["--restart", mode] if mode else []) + \
            ["--", GROW, "1024", "--count", count, "2"]
        r = run(*args)
        check("%s: a budget death is not restarted" % (mode or "no --restart"),
              r.returncode == BUDGET and len(lines_of(count)) == 1 and "restarting" not in r.stderr,
              "exit %d, %d runs" % (r.returncode, len(lines_of(count))), r.stderr)

    # Reports without %p: the later ones go beside the name, none lost.
    count = fresh("count")
    fixed = fresh("fixed") + ".json"
    r = run("--limit", "32M", "--report", fixed, "--restart", "on-budget", "--restart-max", "5",
            "--restart-delay", "0", "--", GROW, "1024", "--count", count, "2")
    named = re.findall(r"exceeded its active limit .*; report: (\S+)$", r.stderr, re.M)
    check("on-budget with a report path without %p: both reports kept under their own names",
          r.returncode == 0 and len(named) == 2 and len(set(named)) == 2 and
          all(map(os.path.exists, named)), "exit %d, reports %r" % (r.returncode, named), r.stderr)


def restart_window():
    # Every run dies at once: with the window far longer than any run, the
    # deaths are all recent, and --restart-max restarts in a row are allowed.
    for top in (1, 3):
        count = fresh("count")
        events = fresh("events")
        r = run("--limit", "32M", "--restart", "on-budget", "--restart-window", "86400",
                "--restart-max", str(top), "--restart-delay", "0", "--events", events, "--",
                GROW, "1024", "--count", count, "100")
        evs = events_of(events)
        stops = [e for e in evs if e["event"] == "stop-restarting"]
        stop_line = [l for l in r.stderr.splitlines() if "not restarting" in l]
        check("window: --restart-max %d stops after %d runs, with a line and an event" %
              (top, top + 1),
              r.returncode == BUDGET and len(lines_of(count)) == top + 1 and
              len(stop_line) == 1 and "died again within 86400 s of a restart" in stop_line[0] and
              len(stops) == 1 and stops[0]["count"] == top and evs[-1]["event"] == "stop-restarting",
              "exit %d, %d runs" % (r.returncode, len(lines_of(count))), r.stderr)
    # Default numbers (WebKit's: one restart, 30 s): two runs that die at once.
    count = fresh("count")
    r = run("--limit", "32M", "--restart", "on-budget", "--restart-delay", "0", "--", GROW, "1024",
            "--count", count, "100", timeout=TIMEOUT)
    check("window: the defaults allow one restart of a command that dies at once",
          r.returncode == BUDGET and len(lines_of(count)) == 2 and
          "--restart-max 1, --restart-window 30" in r.stderr,
          "exit %d, %d runs" % (r.returncode, len(lines_of(count))), r.stderr)
    # Runs that outlast the window (each sleeps 0.5 s, the window is 0.05 s)
    # clear the count: every death is restarted however many there are.
    count = fresh("count")
    r = run("--limit", "32M", "--restart", "on-budget", "--restart-window", "0.05",
            "--restart-max", "1", "--restart-delay", "0", "--", GROW, "1024", "--count", count,
            "3", "--sleep-ms", "500")
    check("window: runs longer than the window clear the count (3 deaths, 4 runs, exit 0)",
          r.returncode == 0 and len(lines_of(count)) == 4 and "not restarting" not in r.stderr,
          "exit %d, %d runs" % (r.returncode, len(lines_of(count))), r.stderr)


def wait_for(pred, seconds=60.0):
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def signals_stop_restarts():
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        count = fresh("count")
        p = subprocess.Popen([TOOL, "run", "--restart", "always", "--restart-max", "5",
                              "--restart-delay", "0", "--", "sh", "-c",
                              'echo r >> "$0"; exec sleep 60', count],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started = wait_for(lambda: len(lines_of(count)) == 1)
        # whether the shell or the sleep it execs gets the signal, the
        # command ends by it
        p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        check("%s sent to run reaches the command and stops restarts" % name,
              started and p.returncode == 128 + sig and len(lines_of(count)) == 1 and
              "not restarting sh: run received %s" % name in err,
              "exit %s, %d runs" % (p.returncode, len(lines_of(count))), err)


SIGWAIT_PY = r"""
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
open(sys.argv[1], "a").write("ready\n")
while True:
    info = signal.sigwaitinfo([signal.SIGINT])
    open(sys.argv[1], "a").write("INT %d %d\n" % (info.si_code, info.si_pid))
"""


def terminal_sigint():
    """Ctrl-C on run's terminal reaches the command from the kernel
    (si_code SI_KERNEL); a SIGINT a process sends to run is passed on (si_pid
    is run's).  That run does not send the terminal's SIGINT a second time
    cannot be seen here: SIGINT does not queue, so a second copy arriving
    while the first is pending merges with it."""
    import pty
    log = fresh("sigint")
    pid, master = pty.fork()
    if pid == 0:
        os.execve(TOOL, [TOOL, "run", "--", "python3", "-c", SIGWAIT_PY, log], env())
    try:
        ready = wait_for(lambda: "ready" in "".join(lines_of(log)))
        os.write(master, b"\x03")
        first = wait_for(lambda: any(l.startswith("INT") for l in lines_of(log)))
        os.kill(pid, signal.SIGINT)
        marked = wait_for(lambda: any(l == "INT 0 %d" % pid for l in lines_of(log)))
        got = [l for l in lines_of(log) if l.startswith("INT")]
        check("a terminal's SIGINT reaches the command; one a process sends to run is passed on",
              ready and first and marked and got == ["INT 128 0", "INT 0 %d" % pid],
              "signals %r" % got)
    finally:
        os.kill(pid, signal.SIGTERM)  # passed on: the command ends, then run
        _, status = os.waitpid(pid, 0)
        os.close(master)
    check("run ends with the command's SIGTERM status (143)",
          os.WIFEXITED(status) and os.WEXITSTATUS(status) == 143, "status %#x" % status)


# ---- bad options ------------------------------------------------------------------------

def bad_options():
    cases = [
        (["--restart", "sometimes"], "--restart 'sometimes'", "on-budget, always or never"),
        (["--restart=", "true"], "--restart ''", "on-budget, always or never"),
        (["--restart-window", "0"], "--restart-window '0'", "0.01 to 86400"),
        (["--restart-window", "-1"], "--restart-window '-1'", "0.01 to 86400"),
        (["--restart-window", "1e3"], "--restart-window '1e3'", "0.01 to 86400"),
        (["--restart-max", "0"], "--restart-max '0'", "1 to 1000000"),
        (["--restart-max", "2x"], "--restart-max '2x'", "1 to 1000000"),
        (["--restart-delay", "-0.5"], "--restart-delay '-0.5'", "0 to 3600"),
        (["--restart-delay", "soon"], "--restart-delay 'soon'", "0 to 3600"),
    ]
    for args, named, form in cases:
        r = run(*(args + ["--", "true"]))
        check("bad value %s: one line naming it and the accepted form, exit 2" % " ".join(args),
              r.returncode == 2 and len(r.stderr.splitlines()) == 1 and named in r.stderr and
              form in r.stderr, "exit %d" % r.returncode, r.stderr)
    r = run("--events")
    check("--events without a file: one line, exit 2",
          r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "--events" in r.stderr,
          "exit %d" % r.returncode, r.stderr)


def main():
    for path in (TOOL, GROW):
        if not os.path.exists(path):
            print("FAIL setup: %s is missing" % path)
            print("0 passed, 1 failed")
            sys.exit(1)
    print("backend %s" % suite.BACKEND, flush=True)
    for case in (why_it_died, events_file, restarts, restart_window, signals_stop_restarts,
                 terminal_sigint, bad_options):
        try:
            case()
        except Exception as e:  # a case that breaks fails, the others still run
            fail(case.__name__, "%s: %s" % (type(e).__name__, e))
    print(results.summary())
    subprocess.run(["rm", "-rf", tmp])
    sys.exit(0 if results.failed == 0 else 1)


main()
