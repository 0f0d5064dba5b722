/* The platform interface on Darwin (alloc/os.h).  libSystem's calls, with
 * errno saved and restored around each (the interface never touches errno);
 * the library's own calls of mmap and munmap reach libSystem, not our
 * interposed wrappers (dyld does not apply an image's interposing to itself).
 * Mach's calls where the BSD layer has none: the footprint (task_info's
 * phys_footprint, as WebKit's memoryFootprint() reads it), reading our own
 * memory, the mapping at an address. */
#include "alloc/os.h"
#include "alloc/fmt.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libproc.h>
#include <mach-o/loader.h>
#include <mach/mach.h>
#include <mach/mach_vm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/proc.h>
#include <sys/proc_info.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* errno of the call as -errno, errno itself left as it was. */
#define OS_CALL(expr)                                                                              \
    ({                                                                                             \
        int os_saved_ = errno;                                                                     \
        long os_r_ = (long)(expr);                                                                 \
        if (os_r_ == -1) os_r_ = -errno;                                                           \
        errno = os_saved_;                                                                         \
        os_r_;                                                                                     \
    })

long os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    int saved = errno;
    void *p = mmap(addr, len, prot, flags, fd, off);
    long r = p == MAP_FAILED ? -errno : (long)p;
    errno = saved;
    return r;
}

long os_munmap(void *addr, size_t len) { return OS_CALL(munmap(addr, len)); }
long os_madvise(void *addr, size_t len, int advice) { return OS_CALL(madvise(addr, len, advice)); }

/* Darwin has no mremap: the exported one does not exist, and the allocator
 * copies a block that outgrows its mapping. */
long os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr) {
    (void)old_addr, (void)old_len, (void)new_len, (void)flags, (void)new_addr;
    return -ENOSYS;
}

long os_remap(void *old_addr, size_t old_len, size_t new_len) {
    return os_mremap(old_addr, old_len, new_len, 0, NULL);
}

/* The contract is stronger than bmalloc's decommit: the pages must read as
 * zero afterwards.  MADV_FREE_REUSABLE takes them out of phys_footprint (the
 * ledger WebKit and jetsam read) but may leave their contents; a fresh
 * anonymous mapping over them does both.  Should that fail (no map entry to
 * spare), the pages are marked reusable and cleared by hand. */
void os_decommit(void *addr, size_t len) {
    long r = os_mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
    if (!os_failed(r)) return;
    while (os_madvise(addr, len, MADV_FREE_REUSABLE) == -EAGAIN) {
    }
    memset(addr, 0, len);
}

/* Whole pages of the machine's size (vm_page_size: 16 KiB on Apple silicon),
 * or nothing: mprotect would round a shorter range out over its neighbours. */
long os_protect_readonly(void *addr, size_t len) {
    uintptr_t mask = (uintptr_t)vm_page_size - 1;
    if ((((uintptr_t)addr | (uintptr_t)len) & mask) != 0) return -EINVAL;
    return OS_CALL(mprotect(addr, len, PROT_READ));
}

bool os_page_mapped(const void *p) {
    mach_vm_address_t addr = (uintptr_t)p & ~(uintptr_t)(OS_PAGE_SIZE - 1);
    mach_vm_size_t size = 0;
    vm_region_basic_info_data_64_t info;
    mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
    mach_port_t object = MACH_PORT_NULL;
    /* The region holding addr, or the next one above it. */
    kern_return_t kr = mach_vm_region(mach_task_self(), &addr, &size, VM_REGION_BASIC_INFO_64,
                                      (vm_region_info_t)&info, &count, &object);
    return kr == KERN_SUCCESS && addr <= (uintptr_t)p;
}

long os_read_own_memory(void *dst, const void *src, size_t n) {
    mach_vm_size_t got = 0;
    kern_return_t kr = mach_vm_read_overwrite(mach_task_self(), (mach_vm_address_t)(uintptr_t)src,
                                              n, (mach_vm_address_t)(uintptr_t)dst, &got);
    return kr == KERN_SUCCESS ? (long)got : -EFAULT;
}

/* ---- time, identity, randomness, waiting ----------------------------------- */

uint64_t os_now_ns(void) {
    int saved = errno;
    uint64_t ns = clock_gettime_nsec_np(CLOCK_MONOTONIC); /* commpage: no lock */
    errno = saved;
    return ns;
}

uint64_t os_realtime_ns(void) {
    int saved = errno;
    uint64_t ns = clock_gettime_nsec_np(CLOCK_REALTIME);
    errno = saved;
    return ns;
}

void os_sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    OS_CALL(nanosleep(&ts, NULL));
}

pid_t os_getpid(void) { return getpid(); }
/* The thread's Mach port name: unique among the process's live threads. */
pid_t os_gettid(void) { return (pid_t)pthread_mach_thread_np(pthread_self()); }
uint32_t os_geteuid(void) { return (uint32_t)geteuid(); }

bool os_random(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n > 0) { /* getentropy: at most 256 bytes a call, never blocks */
        size_t chunk = n < 256 ? n : 256;
        if (OS_CALL(getentropy(p, chunk)) != 0) return false;
        p += chunk;
        n -= chunk;
    }
    return true;
}

/* Darwin's futex: the private __ulock calls that libc++ and libdispatch use,
 * declared here as those projects do (bsd/sys/ulock.h of xnu). */
int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);
#define MB_UL_COMPARE_AND_WAIT 1
#define MB_UL_COMPARE_AND_WAIT_SHARED 3 /* keyed on the page, not the address: macOS 10.15 */
#define MB_ULF_WAKE_ALL 0x00000100
#define MB_ULF_NO_ERRNO 0x01000000

void os_futex_wait(_Atomic int *addr, int expected) {
    __ulock_wait(MB_UL_COMPARE_AND_WAIT | MB_ULF_NO_ERRNO, (void *)addr, (uint32_t)expected, 0);
}

void os_futex_wake(_Atomic int *addr, int count) {
    uint32_t op = MB_UL_COMPARE_AND_WAIT | MB_ULF_NO_ERRNO | (count > 1 ? MB_ULF_WAKE_ALL : 0);
    __ulock_wake(op, (void *)addr, 0);
}

/* The shared form: the kernel finds the waiters by the physical page, so a
 * wake from another process mapping the same file reaches them.  The timeout
 * is in microseconds (0: none), rounded up, at most UINT32_MAX (71 minutes:
 * a longer wait returns -ETIMEDOUT early, which the contract allows). */
long os_futex_wait_shared(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns) {
    if (atomic_load_explicit(addr, memory_order_acquire) != expected) return -EAGAIN;
    uint64_t us = timeout_ns / 1000 + (timeout_ns % 1000 != 0);
    uint32_t timeout_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    int saved = errno;
    int rc = __ulock_wait(MB_UL_COMPARE_AND_WAIT_SHARED | MB_ULF_NO_ERRNO, (void *)addr, expected,
                          timeout_us);
    errno = saved;
    /* rc >= 0: woken, or the word differed (the kernel does not tell which). */
    return rc >= 0 ? 0 : rc; /* -ETIMEDOUT, -EINTR, -EFAULT */
}

long os_futex_wake_shared(_Atomic uint32_t *addr, int count) {
    uint32_t op = MB_UL_COMPARE_AND_WAIT_SHARED | MB_ULF_NO_ERRNO |
                  (count > 1 ? MB_ULF_WAKE_ALL : 0);
    int saved = errno;
    int rc = __ulock_wake(op, (void *)addr, 0);
    errno = saved;
    return rc >= 0 || rc == -ENOENT ? 0 : rc; /* -ENOENT: no one was waiting */
}

void os_yield(void) { sched_yield(); }

/* ---- files -------------------------------------------------------------- */

long os_open(const char *path, int flags, int mode) { return OS_CALL(open(path, flags, mode)); }
long os_openat(int dirfd, const char *name, int flags, int mode) {
    return OS_CALL(openat(dirfd, name, flags, mode));
}
void os_close(int fd) { OS_CALL(close(fd)); }
long os_read(int fd, void *buf, size_t len) { return OS_CALL(read(fd, buf, len)); }

long os_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        long n = OS_CALL(write(fd, p, len));
        if (n == -EINTR) continue;
        if (n <= 0) return n < 0 ? n : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

long os_mkdir(const char *path, int mode) { return OS_CALL(mkdir(path, (mode_t)mode)); }
long os_unlinkat(int dirfd, const char *name) { return OS_CALL(unlinkat(dirfd, name, 0)); }
long os_fstat(int fd, struct stat *st) { return OS_CALL(fstat(fd, st)); }
long os_file_allocate(int fd, off_t len) {
    /* The blocks first (F_PREALLOCATE: all of them or none), then the size. */
    fstore_t store = {F_ALLOCATEALL, F_PEOFPOSMODE, 0, len, 0};
    long rc = OS_CALL(fcntl(fd, F_PREALLOCATE, &store));
    if (rc < 0 && rc != -ENOTSUP) return rc;
    return OS_CALL(ftruncate(fd, len));
}

/* ".NAME.new.PID" beside NAME: the name os_file_create_unnamed gives the file
 * until os_file_publish links it (macOS has no O_TMPFILE). */
static bool unnamed_name(char *out, size_t cap, const char *name) {
    struct mb_buf b = mb_buf_on(out, cap);
    mb_buf_char(&b, '.');
    mb_buf_str(&b, name);
    mb_buf_str(&b, ".new.");
    mb_buf_u64(&b, (uint64_t)getpid());
    return !b.truncated;
}

long os_file_create_unnamed(int dirfd, const char *name, off_t len) {
    char temp[256];
    if (!unnamed_name(temp, sizeof temp, name)) return -ENAMETOOLONG;
    os_unlinkat(dirfd, temp); /* left by an earlier process of this pid that died */
    long fd = os_openat(dirfd, temp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return fd;
    long rc = os_file_allocate((int)fd, len);
    if (rc < 0) {
        os_close((int)fd);
        os_unlinkat(dirfd, temp);
        return rc;
    }
    return fd;
}

long os_file_publish(int fd, int dirfd, const char *name) {
    (void)fd;
    char temp[256];
    if (!unnamed_name(temp, sizeof temp, name)) return -ENAMETOOLONG;
    long rc = OS_CALL(linkat(dirfd, temp, dirfd, name, 0));
    os_unlinkat(dirfd, temp);
    return rc;
}

/* glibc's secure_getenv, declared in alloc/os_darwin_compat.h. */
char *secure_getenv(const char *name) { return issetugid() ? NULL : getenv(name); }

/* ---- the process ---------------------------------------------------------- */

void os_read_comm(char *out, size_t cap) {
    int saved = errno;
    int n = cap > 1 ? proc_name(getpid(), out, (uint32_t)cap) : 0;
    errno = saved;
    if (n <= 0 && cap >= 2) {
        out[0] = '?';
        out[1] = '\0';
    }
}

/* The start time in microseconds since the epoch (proc_pidinfo's BSD info). */
/* The BSD info of pid (its start time and status), or false. */
static bool bsd_info(pid_t pid, struct proc_bsdinfo *info) {
    int saved = errno;
    int n = proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, info, (int)sizeof *info);
    errno = saved;
    return n == (int)sizeof *info;
}

static uint64_t start_of(const struct proc_bsdinfo *info) {
    return (uint64_t)info->pbi_start_tvsec * 1000000u + (uint64_t)info->pbi_start_tvusec;
}

uint64_t os_start_time(void) {
    struct proc_bsdinfo info;
    return bsd_info(getpid(), &info) ? start_of(&info) : 0;
}

/* A zombie's BSD info still answers: its status (SZOMB) says it is gone.  An
 * answer that fails for another reason than ESRCH leaves it unknown. */
enum os_process_state os_process_state(pid_t pid, uint64_t start) {
    struct proc_bsdinfo info;
    if (pid <= 0) return OS_PROCESS_GONE;
    int saved = errno;
    errno = 0;
    int n = proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, &info, (int)sizeof info);
    int err = errno;
    bool exists = n == (int)sizeof info || (err != ESRCH && (kill(pid, 0) == 0 || errno == EPERM));
    errno = saved;
    if (n != (int)sizeof info) return exists ? OS_PROCESS_UNKNOWN : OS_PROCESS_GONE;
    return info.pbi_status != SZOMB && (start == 0 || start_of(&info) == start)
               ? OS_PROCESS_RUNNING
               : OS_PROCESS_GONE;
}

bool os_secure_exec(void) { return issetugid() != 0; }

/* phys_footprint: the ledger jetsam kills by and WebKit's memoryFootprint()
 * reads; it counts compressed and swapped pages already, so swap reads 0. */
bool os_footprint(uint64_t *resident_anon_bytes, uint64_t *swap_bytes) {
    task_vm_info_data_t info;
    mach_msg_type_number_t count = TASK_VM_INFO_COUNT;
    *resident_anon_bytes = *swap_bytes = 0;
    if (task_info(mach_task_self(), TASK_VM_INFO, (task_info_t)&info, &count) != KERN_SUCCESS)
        return false;
    *resident_anon_bytes = info.phys_footprint;
    return true;
}

unsigned os_thread_count(void) {
    struct proc_taskinfo info;
    int saved = errno;
    int n = proc_pidinfo(getpid(), PROC_PIDTASKINFO, 0, &info, (int)sizeof info);
    errno = saved;
    return n == (int)sizeof info && info.pti_threadnum > 0 ? (unsigned)info.pti_threadnum : 0;
}

/* Our image's __TEXT segment, found from its Mach-O header (dladdr on a
 * function of ours: dyld keeps the image list without allocating here). */
void os_own_text(uintptr_t *start, uintptr_t *end) {
    Dl_info info;
    *start = *end = 0;
    if (dladdr((const void *)(uintptr_t)os_own_text, &info) == 0 || info.dli_fbase == NULL) return;
    const struct mach_header_64 *mh = info.dli_fbase;
    if (mh->magic != MH_MAGIC_64) return;
    const char *lc = (const char *)(mh + 1);
    for (uint32_t i = 0; i < mh->ncmds; i++) {
        const struct load_command *cmd = (const void *)lc;
        const struct segment_command_64 *seg = (const void *)lc;
        if (cmd->cmd == LC_SEGMENT_64 && strcmp(seg->segname, SEG_TEXT) == 0) {
            *start = (uintptr_t)mh; /* __TEXT starts at the header */
            *end = *start + (uintptr_t)seg->vmsize;
            return;
        }
        lc += cmd->cmdsize;
    }
}

/* ---- threads and hooks ------------------------------------------------------ */

void os_name_this_thread(const char *name) { pthread_setname_np(name); }

/* /private/tmp: on every macOS, world-writable and sticky like /dev/shm, and
 * not the per-user $TMPDIR (whose name a reader in another session cannot
 * know).  /tmp is a link to it; the link is not followed. */
const char *os_statspage_root(void) { return "/private/tmp"; }
