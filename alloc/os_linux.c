/* The platform interface on Linux (alloc/os.h), in raw system calls: the
 * allocator must not recurse into the mmap wrappers it exports, must not
 * disturb errno on success, and must work before libc's own initialization has
 * finished. */
#include "alloc/os_linux.h"
#include "alloc/fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

long os_syscall6(long nr, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#else
    int saved = errno;
    long ret = syscall(nr, a, b, c, d, e, f);
    if (ret == -1) ret = -errno;
    errno = saved;
    return ret;
#endif
}

long os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return os_syscall6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, (long)off);
}

long os_munmap(void *addr, size_t len) {
    return os_syscall6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
}

long os_madvise(void *addr, size_t len, int advice) {
    return os_syscall6(SYS_madvise, (long)addr, (long)len, advice, 0, 0, 0);
}

long os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr) {
    return os_syscall6(SYS_mremap, (long)old_addr, (long)old_len, (long)new_len, flags,
                       (long)new_addr, 0);
}

long os_remap(void *old_addr, size_t old_len, size_t new_len) {
    return os_mremap(old_addr, old_len, new_len, MREMAP_MAYMOVE, NULL);
}

void os_decommit(void *addr, size_t len) { os_madvise(addr, len, MADV_DONTNEED); }

long os_protect_readonly(void *addr, size_t len) {
    return os_syscall6(SYS_mprotect, (long)addr, (long)len, PROT_READ, 0, 0, 0);
}

bool os_page_mapped(const void *p) {
    /* mincore fails with ENOMEM on a hole. */
    unsigned char resident;
    long r = os_syscall6(SYS_mincore, (long)((uintptr_t)p & ~(OS_PAGE_SIZE - 1)),
                         (long)OS_PAGE_SIZE, (long)&resident, 0, 0, 0);
    return r != -ENOMEM;
}

long os_read_own_memory(void *dst, const void *src, size_t n) {
    struct iovec local = {dst, n}, remote = {(void *)src, n};
    return os_syscall6(SYS_process_vm_readv, os_getpid(), (long)&local, 1, (long)&remote, 1, 0);
}

uint64_t os_now_ns(void) {
    struct timespec ts;
    int saved = errno;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no allocation, no lock */
    errno = saved;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

pid_t os_getpid(void) { return (pid_t)os_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0); }
pid_t os_gettid(void) { return (pid_t)os_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0); }
uint32_t os_geteuid(void) { return (uint32_t)os_syscall6(SYS_geteuid, 0, 0, 0, 0, 0, 0); }

bool os_random(void *buf, size_t n) {
    return os_syscall6(SYS_getrandom, (long)buf, (long)n, GRND_NONBLOCK, 0, 0, 0) == (long)n;
}

long os_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        long n = os_syscall6(SYS_write, fd, (long)p, (long)len, 0, 0, 0);
        if (n == -EINTR) continue;
        if (n <= 0) return n < 0 ? n : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

long os_open(const char *path, int flags, int mode) {
    return os_syscall6(SYS_openat, AT_FDCWD, (long)path, flags, mode, 0, 0);
}

long os_openat(int dirfd, const char *name, int flags, int mode) {
    return os_syscall6(SYS_openat, dirfd, (long)name, flags, mode, 0, 0);
}

void os_close(int fd) { os_syscall6(SYS_close, fd, 0, 0, 0, 0, 0); }

long os_read(int fd, void *buf, size_t len) {
    return os_syscall6(SYS_read, fd, (long)buf, (long)len, 0, 0, 0);
}

long os_mkdir(const char *path, int mode) {
    return os_syscall6(SYS_mkdirat, AT_FDCWD, (long)path, mode, 0, 0, 0);
}

long os_unlinkat(int dirfd, const char *name) {
    return os_syscall6(SYS_unlinkat, dirfd, (long)name, 0, 0, 0, 0);
}

long os_fstat(int fd, struct stat *st) { return os_syscall6(SYS_fstat, fd, (long)st, 0, 0, 0, 0); }

long os_file_allocate(int fd, off_t len) {
    long rc = os_syscall6(SYS_fallocate, fd, 0, 0, (long)len, 0, 0);
    /* A filesystem without fallocate: sized only (tmpfs and the usual disk
     * filesystems have it). */
    if (rc == -EOPNOTSUPP || rc == -ENOSYS)
        rc = os_syscall6(SYS_ftruncate, fd, (long)len, 0, 0, 0, 0);
    return rc;
}

long os_file_create_unnamed(int dirfd, const char *name, off_t len) {
    (void)name;
    long fd = os_openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    /* Filesystems and kernels without O_TMPFILE say so in several ways. */
    if (fd == -EOPNOTSUPP || fd == -EISDIR || fd == -EINVAL) return -EOPNOTSUPP;
    if (fd < 0) return fd;
    long rc = os_file_allocate((int)fd, len);
    if (rc < 0) {
        os_close((int)fd);
        return rc;
    }
    return fd;
}

long os_file_publish(int fd, int dirfd, const char *name) {
    /* linkat through /proc/self/fd: AT_EMPTY_PATH would need a capability. */
    char path[40];
    struct mb_buf b = mb_buf_on(path, sizeof path);
    mb_buf_str(&b, "/proc/self/fd/");
    mb_buf_u64(&b, (uint64_t)fd);
    return os_syscall6(SYS_linkat, AT_FDCWD, (long)path, dirfd, (long)name, AT_SYMLINK_FOLLOW, 0);
}

uint64_t os_realtime_ns(void) {
    struct timespec ts;
    int saved = errno;
    clock_gettime(CLOCK_REALTIME, &ts);
    errno = saved;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void os_sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    os_syscall6(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
}

void os_read_comm(char *out, size_t cap) {
    long n = os_read_small_file("/proc/self/comm", out, cap);
    if (n <= 0) {
        out[0] = '?';
        out[1] = '\0';
        return;
    }
    if (out[n - 1] == '\n') out[n - 1] = '\0';
}

/* Field 22 of /proc/self/stat, the start time; 0 when it cannot be read.
 * The command name (field 2) may hold spaces and parentheses: fields are
 * counted from the last ')'. */
/* The state letter and the start time (field 22) of a /proc/<pid>/stat text;
 * false when it does not parse. */
static bool parse_stat(const char *text, char *state, uint64_t *start) {
    const char *p = NULL;
    for (const char *q = text; *q != '\0'; q++)
        if (*q == ')') p = q;
    if (p == NULL) return false;
    p++;
    while (*p == ' ') p++;
    *state = *p;
    for (int field = 3; field < 22 && *p != '\0'; field++) { /* skip fields 3..21 */
        while (*p == ' ') p++;
        while (*p != ' ' && *p != '\0') p++;
    }
    while (*p == ' ') p++;
    if (*p < '0' || *p > '9') return false;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
    *start = v;
    return true;
}

uint64_t os_start_time(void) {
    char text[1024], state;
    uint64_t start;
    long n = os_read_small_file("/proc/self/stat", text, sizeof text);
    return n > 0 && parse_stat(text, &state, &start) ? start : 0;
}

/* The pid names a process (of any user) that /proc could not describe. */
static enum os_process_state exists_unread(pid_t pid) {
    long rc = os_syscall6(SYS_kill, pid, 0, 0, 0, 0, 0);
    return rc == 0 || rc == -EPERM ? OS_PROCESS_UNKNOWN : OS_PROCESS_GONE;
}

enum os_process_state os_process_state(pid_t pid, uint64_t start) {
    if (pid <= 0) return OS_PROCESS_GONE;
    char path[40], text[1024], digits[24], state = 0;
    char *d = digits + sizeof digits;
    *--d = '\0';
    for (uint64_t v = (uint64_t)pid; v != 0; v /= 10) *--d = (char)('0' + v % 10);
    size_t len = 0;
    for (const char *parts[] = {"/proc/", d, "/stat", NULL}, **s = parts; *s != NULL; s++)
        for (const char *c = *s; *c != '\0' && len + 1 < sizeof path; c++) path[len++] = *c;
    path[len] = '\0';
    long fd = os_open_small_file(path);
    if (fd == -ENOENT || fd == -ESRCH) return OS_PROCESS_GONE;
    if (fd < 0) return exists_unread(pid); /* EMFILE, ENFILE, ENOMEM, EACCES... */
    size_t got = 0;
    for (long n; got + 1 < sizeof text; got += (size_t)n) {
        n = os_read((int)fd, text + got, sizeof text - 1 - got);
        if (n == -EINTR) n = 0;
        else if (n == -ESRCH) { /* it exited between the open and the read */
            os_close((int)fd);
            return OS_PROCESS_GONE;
        } else if (n <= 0) break;
    }
    os_close((int)fd);
    text[got] = '\0';
    uint64_t now;
    if (!parse_stat(text, &state, &now)) return exists_unread(pid);
    if (state == 'Z' || state == 'X' || state == 'x') return OS_PROCESS_GONE;
    return start == 0 || now == start ? OS_PROCESS_RUNNING : OS_PROCESS_GONE;
}

bool os_secure_exec(void) { return getauxval(AT_SECURE) != 0; }

#ifndef MB_NO_EXPORTS
/* The linker's symbol for our own ELF header: the program headers follow. */
extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

void os_own_text(uintptr_t *start, uintptr_t *end) {
    const ElfW(Ehdr) *eh = &__ehdr_start;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
    uintptr_t base = (uintptr_t)eh, first_vaddr = UINTPTR_MAX;
    *start = *end = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < first_vaddr) first_vaddr = ph[i].p_vaddr;
    if (first_vaddr == UINTPTR_MAX) return;
    base -= first_vaddr & ~(uintptr_t)(OS_PAGE_SIZE - 1);
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X)) continue;
        *start = base + ph[i].p_vaddr;
        *end = *start + ph[i].p_memsz;
    }
}
#else
/* Linked into a test program: our code and the program's are one object. */
void os_own_text(uintptr_t *start, uintptr_t *end) { *start = *end = 0; }
#endif

/* The value in bytes of a "Name:   1234 kB" line of /proc/self/status. */
static bool status_field(const char *text, const char *name, uint64_t *out) {
    size_t n = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ' || *p == '\t') p++;
            uint64_t v = 0;
            if (*p < '0' || *p > '9') return false;
            while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
            while (*p == ' ') p++;
            *out = (p[0] == 'k' && p[1] == 'B') ? v * 1024 : v;
            return true;
        }
        p = strchr(p, '\n');
        if (p != NULL) p++;
    }
    return false;
}

bool os_footprint(uint64_t *resident_anon_bytes, uint64_t *swap_bytes) {
    char text[4096];
    *resident_anon_bytes = *swap_bytes = 0;
    long n = os_read_small_file("/proc/self/status", text, sizeof text);
    if (n <= 0 || !status_field(text, "RssAnon", resident_anon_bytes)) return false;
    status_field(text, "VmSwap", swap_bytes);
    return true;
}

unsigned os_thread_count(void) {
    char text[4096];
    uint64_t n = 0;
    if (os_read_small_file("/proc/self/status", text, sizeof text) <= 0 ||
        !status_field(text, "Threads", &n) || n > UINT32_MAX)
        return 0;
    return (unsigned)n;
}

void os_futex_wait(_Atomic int *addr, int expected) {
    os_syscall6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, expected, 0, 0, 0);
}

void os_futex_wake(_Atomic int *addr, int count) {
    os_syscall6(SYS_futex, (long)addr, FUTEX_WAKE_PRIVATE, count, 0, 0, 0);
}

long os_futex_wait_shared(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns) {
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    /* FUTEX_WAIT, not FUTEX_WAIT_PRIVATE: the waker is another process. */
    return os_syscall6(SYS_futex, (long)addr, FUTEX_WAIT, (long)expected,
                       timeout_ns != 0 ? (long)&ts : 0, 0, 0);
}

long os_futex_wake_shared(_Atomic uint32_t *addr, int count) {
    return os_syscall6(SYS_futex, (long)addr, FUTEX_WAKE, count, 0, 0, 0);
}

void os_yield(void) { os_syscall6(SYS_sched_yield, 0, 0, 0, 0, 0, 0); }

/* ---- threads and hooks ------------------------------------------------------ */

void os_name_this_thread(const char *name) { pthread_setname_np(pthread_self(), name); }

const char *os_statspage_root(void) { return "/dev/shm"; }
