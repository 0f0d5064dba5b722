/* RAM and the process's memory limit on Darwin (alloc/os.h, the platform
 * interface; policy/limits.h): bmalloc's ramSize inputs.  Physical RAM is the
 * hw.memsize sysctl; the limit is the jetsam limit that
 * memorystatus_control(MEMORYSTATUS_CMD_GET_MEMLIMIT_PROPERTIES) answers for
 * this process, as bmalloc's jetsamLimit() reads it: the active limit in MiB,
 * none when it is -1 (no limit), and bmalloc's 840 MiB when the call fails.
 * It fills the container fields of struct mb_limits (ramSize takes the
 * smaller; policy/limits.c rounds it up to 128 MiB); there is no usage file.
 * os_proc_available_memory() is iOS-only and is not called. */
#include <errno.h>
#include <stdint.h>
#include <sys/sysctl.h>
#include <unistd.h>

#include "alloc/fmt.h"
#include "alloc/os.h"
#include "policy/limits.h"

/* xnu's bsd/sys/kern_memorystatus.h: a private call, declared by hand as
 * WebKit's bmalloc declares it. */
int memorystatus_control(uint32_t command, int32_t pid, uint32_t flags, void *buffer,
                         size_t buffersize);
#define MB_MEMORYSTATUS_CMD_GET_MEMLIMIT_PROPERTIES 8
struct mb_memlimit_properties {
    int32_t memlimit_active; /* MiB; -1: none */
    uint32_t memlimit_active_attr;
    int32_t memlimit_inactive;
    uint32_t memlimit_inactive_attr;
};
#define MB_JETSAM_FALLBACK_BYTES ((uint64_t)840 << 20)

static void probe_physical(struct mb_limits *lim) {
    struct mb_buf src;
    uint64_t memsize = 0;
    size_t len = sizeof memsize;
    int saved = errno;
    int r = sysctlbyname("hw.memsize", &memsize, &len, NULL, 0);
    errno = saved;
    mb_buf_init(&src, lim->phys_source, sizeof lim->phys_source);
    if (r == 0 && len == sizeof memsize && memsize != 0) {
        lim->phys_bytes = memsize;
        mb_buf_str(&src, "sysctl hw.memsize");
    } else {
        lim->phys_bytes = 0;
        mb_buf_str(&src, "unknown: sysctl hw.memsize did not answer");
    }
}

static void probe_jetsam(struct mb_limits *lim) {
    struct mb_memlimit_properties props = {0};
    int saved = errno;
    int r = memorystatus_control(MB_MEMORYSTATUS_CMD_GET_MEMLIMIT_PROPERTIES, (int32_t)getpid(), 0,
                                 &props, sizeof props);
    int err = errno;
    errno = saved;
    struct mb_buf src;
    mb_buf_init(&src, lim->cgroup_source, sizeof lim->cgroup_source);
    lim->cgroup_version = 0;
    lim->cgroup_dir[0] = '\0';
    if (r != 0) {
        lim->cgroup_bytes = MB_JETSAM_FALLBACK_BYTES;
        mb_buf_str(&src, "jetsam limit: bmalloc's 840 MiB fallback (memorystatus_control failed, "
                         "errno ");
        mb_buf_u64(&src, (uint64_t)err);
        mb_buf_char(&src, ')');
    } else if (props.memlimit_active <= 0) {
        lim->cgroup_bytes = 0;
        mb_buf_str(&src, "none: memorystatus_control reports no jetsam limit for this process");
    } else {
        lim->cgroup_bytes = (uint64_t)props.memlimit_active << 20;
        mb_buf_str(&src, "jetsam limit: memorystatus_control MEMLIMIT_PROPERTIES active ");
        mb_buf_u64(&src, (uint64_t)props.memlimit_active);
        mb_buf_str(&src, " MiB");
    }
}

/* root names a fake tree on Linux; Darwin's answers come from the kernel. */
void os_limits_probe(struct mb_limits *lim, const char *root) {
    (void)root;
    probe_physical(lim);
    probe_jetsam(lim);
}

/* The footprint comes from phys_footprint (alloc/os_darwin.c): no file. */
bool os_container_usage_file(const struct mb_limits *lim, char *out, size_t cap) {
    (void)lim;
    if (cap > 0) out[0] = '\0';
    return false;
}
