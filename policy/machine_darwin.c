/* The machine's memory on macOS (alloc/os.h: os_machine_files,
 * os_machine_read; policy/machine.h).  macOS has no PSI, no meminfo and no
 * cgroups.  Its equivalents, read with sysctl:
 *
 *   kern.memorystatus_vm_pressure_level  the kernel's own pressure level, the
 *       one memory_pressure(1) prints and libdispatch's
 *       DISPATCH_SOURCE_TYPE_MEMORYPRESSURE delivers: 1 normal, 2 warning,
 *       4 critical.  Warning maps to Conservative, critical to Strict (source
 *       "vm-pressure", policy/machine.c, switched by MEMBUDGET_PSI); the
 *       kernel keeps its own hysteresis.
 *   hw.memsize and the free, inactive, speculative and purgeable page counts
 *       (vm.page_*_count, times vm.pagesize): the memory the kernel can hand
 *       out without compressing or swapping, against all of it (source
 *       "memavailable", MEMBUDGET_MEM_USED's thresholds).  vm.page_free_count
 *       alone is small on a healthy Mac, which keeps file pages cached.
 *
 * The sysctl names are turned into MIBs once, at start-up (sysctlnametomib);
 * each reading is then plain sysctl(2) calls into stack variables: no
 * allocation, no lock, no file.  MEMBUDGET_PSI_FILE and MEMBUDGET_MEMINFO_FILE
 * (the test variables) are Linux's and are ignored here. */
#include <errno.h>
#include <string.h>
#include <sys/sysctl.h>
#include <sys/types.h>

#include "alloc/os.h"
#include "policy/limits.h"
#include "policy/machine.h"

enum { MIB_PRESSURE, MIB_MEMSIZE, MIB_PAGESIZE, MIB_FREE, MIB_INACTIVE, MIB_SPECULATIVE,
       MIB_PURGEABLE, MIB_COUNT };
static const char *const mib_names[MIB_COUNT] = {
    "kern.memorystatus_vm_pressure_level", "hw.memsize", "vm.pagesize", "vm.page_free_count",
    "vm.page_inactive_count", "vm.page_speculative_count", "vm.page_purgeable_count"};

#define MIB_MAX 4 /* CTL_MAXNAME is 12; these names have 2 or 3 levels */
static struct {
    int mib[MIB_MAX];
    size_t len; /* 0: the kernel has no such name */
} mibs[MIB_COUNT];

static void find_mibs(void) {
    int saved = errno;
    for (int i = 0; i < MIB_COUNT; i++) {
        size_t len = MIB_MAX;
        mibs[i].len = sysctlnametomib(mib_names[i], mibs[i].mib, &len) == 0 ? len : 0;
    }
    errno = saved;
}

/* One integer of 4 or 8 bytes, as the kernel gives it. */
static bool read_number(int which, uint64_t *out) {
    if (mibs[which].len == 0) return false;
    union {
        uint32_t u32;
        uint64_t u64;
    } v;
    memset(&v, 0, sizeof v);
    size_t len = sizeof v;
    int saved = errno;
    int rc = sysctl(mibs[which].mib, (u_int)mibs[which].len, &v, &len, NULL, 0);
    errno = saved;
    if (rc != 0) return false;
    if (len == sizeof v.u32)
        *out = v.u32;
    else if (len == sizeof v.u64)
        *out = v.u64;
    else
        return false;
    return true;
}

static bool read_available(uint64_t *total, uint64_t *available) {
    uint64_t page = 0, sum = 0;
    if (!read_number(MIB_MEMSIZE, total) || *total == 0 || !read_number(MIB_PAGESIZE, &page) ||
        page == 0)
        return false;
    for (int i = MIB_FREE; i <= MIB_PURGEABLE; i++) {
        uint64_t pages = 0;
        if (!read_number(i, &pages)) {
            if (i == MIB_FREE) return false; /* the others are additions */
            continue;
        }
        sum += pages;
    }
    *available = sum > *total / page ? *total : sum * page;
    return true;
}

void os_machine_files(const struct mb_limits *lim, const char *psi_file, const char *meminfo_file,
                      struct mb_machine_files *out) {
    (void)lim, (void)psi_file, (void)meminfo_file; /* no cgroups, no files to replace */
    memset(out, 0, sizeof *out);
    find_mibs();
}

void os_machine_read(const struct mb_machine_files *f, struct mb_machine_reading *out) {
    (void)f;
    memset(out, 0, sizeof *out);
    uint64_t raw = 0;
    if (read_number(MIB_PRESSURE, &raw) && raw >= MB_VM_PRESSURE_NORMAL) {
        out->vm_pressure_valid = true;
        out->vm_pressure_raw = (uint32_t)(raw > UINT32_MAX ? UINT32_MAX : raw);
    }
    out->mem_valid = read_available(&out->mem_total_bytes, &out->mem_available_bytes);
}
