#!/usr/bin/env python3
"""Link checks of libmembudget.dylib against a macOS SDK (make check-macos).

    check_macos.py SDK ARCH DYLIB LINUX_SO EXPORTS_MAP
    check_macos.py --tool SDK ARCH PROGRAM

For one architecture of the Darwin library, with the SDK's text stubs (.tbd)
as the truth about libSystem:
  platform    the file is a Mach-O dylib for ARCH, built for macOS 11 with SDK 12
  interpose   every name of the Linux ABI (EXPORTS_MAP) that libSystem has is
              bound in __DATA,__interpose (a tuple per name, each bound), and
              so are Darwin's own malloc_size, malloc_good_size, reallocf and
              reallocarrayf; the ABI's names that libSystem lacks are exported
              by the library instead, but for glibc's internal names and Linux's
              own calls, which libSystem must indeed lack
  undefined   every undefined symbol is exported by libSystem for ARCH
  api         the exported membudget_* names equal the Linux library's
  platform calls  the calls alloc/os_darwin.c and policy/machine_darwin.c make
              for the platform interface are linked: the shared futex
              (__ulock_*), the pressure level and free pages (sysctl), the
              thread count (proc_pidinfo), the read-only page (mprotect)
  backend page    alloc_backend is alloc_backend_page, which starts a 16 KiB
              page (arm64's) and shares it with no other symbol
With --tool, for a program (membudget, membudget-report): a Mach-O executable
for ARCH, every undefined symbol exported by libSystem or libc++ for ARCH, and
for membudget the shared futex's calls linked (membudget control).
Prints one line per check, "ok ..." or "FAIL ...", and exits 1 on any FAIL.
"""
import fnmatch
import os
import re
import subprocess
import sys

import yaml

# glibc's internal entry points and Linux's own calls: not on Darwin.
NOT_ON_DARWIN = {"__libc_*", "__posix_memalign", "mmap64", "mremap"}
# What the platform interface's Darwin side must call (alloc/os.h).
PLATFORM_CALLS = ["___ulock_wait", "___ulock_wake", "_sysctlnametomib", "_sysctl",
                  "_proc_pidinfo", "_task_info", "_mprotect"]
PROTECT_PAGE = 16384  # the largest page of both architectures
DARWIN_OWN = {"malloc_size", "malloc_good_size", "reallocf", "reallocarrayf"}


def tool(name):
    """An LLVM tool: from MACOS_LLVM_BIN (check_macos.sh sets it), else PATH."""
    return os.path.join(os.environ.get("MACOS_LLVM_BIN", ""), name)


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class Loader(yaml.SafeLoader):
    pass


Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_mapping(node))


def tbd_exports(sdk, arch, roots=("/usr/lib/libSystem.B.dylib",)):
    """Every symbol the libraries export for ARCH-macos, through their re-exports."""
    target = arch + "-macos"
    seen, symbols = set(), set()
    todo = list(roots)
    while todo:
        install = todo.pop()
        if install in seen:
            continue
        seen.add(install)
        path = os.path.join(sdk, install.lstrip("/"))
        path = os.path.splitext(path)[0] + ".tbd"
        with open(path) as f:
            docs = list(yaml.load_all(f, Loader=Loader))
        for doc in docs:
            for block in doc.get("reexported-libraries", []) or []:
                if target in block.get("targets", []):
                    todo.extend(block.get("libraries", []))
            for key in ("exports", "reexports"):
                for block in doc.get(key, []) or []:
                    if target not in block.get("targets", []):
                        continue
                    for kind in ("symbols", "weak-symbols", "thread-local-symbols"):
                        symbols.update(block.get(kind, []) or [])
                    for cls in block.get("objc-classes", []) or []:
                        symbols.add("_OBJC_CLASS_$_" + cls)
                        symbols.add("_OBJC_METACLASS_$_" + cls)
    symbols.add("dyld_stub_binder")
    return symbols


def abi_names(exports_map):
    text = open(exports_map).read()
    body = text.split("global:", 1)[1].split("local:", 1)[0]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return [n.strip() for n in body.replace("\n", " ").split(";") if n.strip()]


def darwin_name(name, libsystem):
    """The symbol libSystem gives a C name, if any ($DARWIN_EXTSN variants)."""
    for sym in ("_" + name, "_" + name + "$DARWIN_EXTSN"):
        if sym in libsystem:
            return sym
    return None


def check_tool(sdk, arch, program):
    failures = 0
    name = os.path.basename(program)

    def report(ok, what):
        nonlocal failures
        print(("ok   " if ok else "FAIL ") + f"{arch}: {name}: {what}")
        failures += not ok

    headers = run(tool("llvm-objdump"), "--macho", "--private-headers", program)
    want_cpu = {"x86_64": "X86_64", "arm64": "ARM64"}[arch]
    report(re.search(r"MH_MAGIC_64\s+" + want_cpu + r"\s+\S+\s+\S+\s+EXECUTE\s", headers) is not None
           and re.search(r"platform macos\n\s*sdk 12\.0\n\s*minos 11\.0\n", headers) is not None,
           f"Mach-O executable, cpu {want_cpu}, macOS minos 11.0, sdk 12.0")
    libs = sorted(set(re.findall(r"cmd LC_LOAD_DYLIB\n\s*cmdsize \d+\n\s*name (\S+)", headers)))
    known = tbd_exports(sdk, arch, ("/usr/lib/libSystem.B.dylib", "/usr/lib/libc++.1.dylib"))
    undefined = [line.split()[-1] for line in run(tool("llvm-nm"), "-u", program).splitlines()]
    unresolved = sorted(s for s in undefined if s not in known)
    if name == "membudget":  # `control` waits on the live page's shared futex
        lacking = [s for s in ("___ulock_wait", "___ulock_wake") if s not in undefined]
        report(not lacking, "control: waits and wakes with __ulock_wait, __ulock_wake"
               + (f"; not called: {' '.join(lacking)}" if lacking else ""))
    allowed = {"/usr/lib/libSystem.B.dylib", "/usr/lib/libc++.1.dylib"}
    report(not unresolved and set(libs) <= allowed,
           f"undefined: {len(undefined)} symbols, all in the SDK's libSystem or libc++; "
           f"loads {' '.join(libs)}"
           + (f"; not there: {' '.join(unresolved)}" if unresolved else ""))
    return 1 if failures else 0


def report_backend_page(dylib, report):
    """alloc_backend_page: its own page, read-only once chosen (alloc/backend.c)."""
    defined = []
    for line in run(tool("llvm-nm"), "-n", "--defined-only", dylib).splitlines():
        fields = line.split()
        if len(fields) == 3:
            defined.append((int(fields[0], 16), fields[2]))
    where = {name: addr for addr, name in defined}
    page = where.get("_alloc_backend_page")
    if page is None or where.get("_alloc_backend") != page:
        report(False, "backend page: _alloc_backend_page missing or _alloc_backend not its alias")
        return
    inside = sorted({name for addr, name in defined if page < addr < page + PROTECT_PAGE})
    report(page % PROTECT_PAGE == 0 and not inside,
           f"backend page: alloc_backend = alloc_backend_page at {page:#x}"
           + (f", alone on its {PROTECT_PAGE // 1024} KiB page" if page % PROTECT_PAGE == 0
              and not inside else "")
           + (f"; not {PROTECT_PAGE // 1024} KiB aligned" if page % PROTECT_PAGE else "")
           + (f"; shares it with {' '.join(inside[:5])}" if inside else ""))


def main():
    if sys.argv[1] == "--tool":
        return check_tool(*sys.argv[2:5])
    sdk, arch, dylib, linux_so, exports_map = sys.argv[1:6]
    failures = 0

    def report(ok, what):
        nonlocal failures
        print(("ok   " if ok else "FAIL ") + f"{arch}: {what}")
        failures += not ok

    headers = run(tool("llvm-objdump"), "--macho", "--private-headers", dylib)
    want_cpu = {"x86_64": "X86_64", "arm64": "ARM64"}[arch]
    platform_ok = (re.search(r"MH_MAGIC_64\s+" + want_cpu + r"\s+\S+\s+\S+\s+DYLIB\s", headers)
                   is not None
                   and re.search(r"platform macos\n\s*sdk 12\.0\n\s*minos 11\.0\n", headers)
                   is not None)
    report(platform_ok, f"platform: Mach-O dylib, cpu {want_cpu}, macOS minos 11.0, sdk 12.0")

    libsystem = tbd_exports(sdk, arch)
    binds = run(tool("llvm-objdump"), "--macho", "--bind", dylib)
    bound = [line.split()[-1] for line in binds.splitlines()
             if re.match(r"\s*__DATA\s+__interpose\s", line)]
    sections = run(tool("llvm-objdump"), "--macho", "--section-headers", dylib)
    m = re.search(r"__interpose\s+([0-9a-f]+)", sections)
    tuples = int(m.group(1), 16) // 16 if m else 0
    exported = {line.split()[-1] for line in run(tool("llvm-nm"), "-gU", dylib).splitlines()}
    missing, misplaced, wrongly_absent = [], [], []
    names = abi_names(exports_map)
    for name in names:
        if name == "membudget_*":
            continue
        sym = darwin_name(name, libsystem)
        if any(fnmatch.fnmatch(name, p) for p in NOT_ON_DARWIN):
            if sym is not None:
                wrongly_absent.append(name)
        elif sym is not None:
            if sym not in bound:
                missing.append(name)
        elif "_" + name not in exported:
            misplaced.append(name)
    for name in sorted(DARWIN_OWN):
        sym = darwin_name(name, libsystem)
        if sym is None or sym not in bound:
            missing.append(name)
    interposed = sorted(set(bound))
    report(not missing and tuples == len(bound) and len(set(bound)) == len(bound),
           f"interpose: {tuples} tuples, {len(bound)} bound, each once: "
           + " ".join(s.lstrip("_") for s in interposed)
           + (f"; not bound: {' '.join(missing)}" if missing else ""))
    report(not misplaced and not wrongly_absent,
           "ABI names libSystem lacks are exported: "
           + " ".join(sorted(s.lstrip("_") for s in exported if not s.startswith("_membudget_")))
           + (f"; neither bound nor exported: {' '.join(misplaced)}" if misplaced else "")
           + (f"; libSystem has these after all: {' '.join(wrongly_absent)}"
              if wrongly_absent else ""))

    undefined = [line.split()[-1] for line in run(tool("llvm-nm"), "-u", dylib).splitlines()]
    unresolved = sorted(s for s in undefined if s not in libsystem)
    report(not unresolved, f"undefined: {len(undefined)} symbols, all in the SDK's libSystem"
           + (f"; not there: {' '.join(unresolved)}" if unresolved else ""))

    absent = [s.lstrip("_") for s in PLATFORM_CALLS if s not in undefined]
    report(not absent, "platform calls: " + " ".join(s.lstrip("_") for s in PLATFORM_CALLS)
           + (f"; not called: {' '.join(absent)}" if absent else ""))
    report_backend_page(dylib, report)

    linux = {line.split()[-1] for line in run("nm", "-D", "--defined-only", linux_so).splitlines()}
    linux_api = sorted(s for s in linux if s.startswith("membudget_"))
    darwin_api = sorted(s[1:] for s in exported if s.startswith("_membudget_"))
    report(linux_api == darwin_api and linux_api,
           f"api: {len(darwin_api)} membudget_* exports, the same as {os.path.basename(linux_so)}'s"
           + ("" if linux_api == darwin_api else
              f"; only Linux: {sorted(set(linux_api) - set(darwin_api))}"
              f"; only Darwin: {sorted(set(darwin_api) - set(linux_api))}"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
