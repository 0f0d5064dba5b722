"""The program of `make demo`: a cache that shrinks when the budget says so, and a
working set that keeps growing until the budget stops it.

Run it under the library (`membudget run --limit 64M -- python3 demo_cache.py`,
with PYTHONMALLOC=malloc so every object goes through malloc).  Each step adds
one 1 MiB entry to the cache, while the cache is under its capacity, and 1 MiB
to the working set.  The program reads the budget through the API (ctypes, no
callback: the library's policy is polled once a step): when the policy rises
it lowers the cache's capacity (Conservative: half, Strict: none), drops what
is over it and asks the library to give the memory back (membudget_release).
The working set alone then crosses the limit, and the process is stopped with
a report.  With DEMO_MEMBUDGET_TOOL set to the membudget command, it runs
`membudget stat` on itself a few steps after the policy reaches Strict (the
live figures are refreshed at monitor ticks, every 100 ms)."""
import ctypes
import os
import subprocess
import sys
import time

MIB = 1 << 20
POLICIES = ["unrestricted", "conservative", "strict", "strict-synchronous"]
LEVEL_STRICT = 2  # MEMBUDGET_LEVEL_STRICT


class Stats(ctypes.Structure):
    """struct membudget_stats, in the order of include/membudget.h."""
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "counter_bytes", "counter_peak_bytes", "small_bytes", "small_live_bytes",
        "large_bytes", "large_cached_bytes", "mmap_bytes", "meta_bytes", "pages_in_use",
        "pages_free", "chunks", "threads", "threads_live", "released_bytes",
        "footprint_bytes", "baseline_bytes", "limit_bytes", "policy")]


lib = ctypes.CDLL(None)  # the preloaded library's symbols are global
if not hasattr(lib, "membudget_stats"):
    sys.exit("demo_cache.py: run me under libmembudget.so (membudget run -- python3 ...)")
lib.membudget_release.restype = ctypes.c_size_t
lib.membudget_release.argtypes = [ctypes.c_int]


def stats():
    s = Stats()
    lib.membudget_stats(ctypes.byref(s), ctypes.sizeof(s))
    return s


def say(text):
    print("python3: " + text, flush=True)


cache = []        # entries it can rebuild: the oldest first
capacity = 16     # entries; lowered, never raised, as the policy rises
work = []         # the working set: never given up
seen = 0
stat_at = None    # the step at which to show `membudget stat`
limit = stats().limit_bytes
say("cache of up to %d MiB, working set growing 1 MiB a step, limit %d MiB"
    % (capacity, limit // MIB))
for step in range(1, 10000):
    if len(cache) < capacity:
        cache.append(bytes(MIB))
    work.append(bytearray(MIB))
    s = stats()
    if s.policy > seen:
        before = s.footprint_bytes
        capacity = min(capacity, 8 if s.policy == 1 else 0)
        dropped = max(0, len(cache) - capacity)
        del cache[capacity:]
        released = lib.membudget_release(LEVEL_STRICT)
        if dropped:
            what = "cache cut to %d MiB (%d dropped, %.1f MiB released)" % (
                capacity, dropped, released / MIB)
        else:
            what = "no cache left to drop"
        say("step %3d: policy %s -> %s at %.1f MiB: %s, footprint now %.1f MiB"
            % (step, POLICIES[seen], POLICIES[s.policy], before / MIB, what,
               stats().footprint_bytes / MIB))
        seen = s.policy
        if s.policy == 2:
            stat_at = step + 8
    elif step == stat_at and os.environ.get("DEMO_MEMBUDGET_TOOL"):
        say("step %3d: what `membudget stat %d` says from outside:" % (step, os.getpid()))
        subprocess.run([os.environ["DEMO_MEMBUDGET_TOOL"], "stat", str(os.getpid())], check=False)
    elif step % 10 == 0:
        say("step %3d: footprint %.1f MiB of %d MiB, policy %s, cache %d MiB, working set %d MiB"
            % (step, s.footprint_bytes / MIB, limit // MIB, POLICIES[s.policy], len(cache),
               len(work)))
    time.sleep(0.02)
