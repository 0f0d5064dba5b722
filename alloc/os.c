/* Raw system calls: the allocator must not recurse into the mmap wrappers it
 * exports, must not disturb errno on success, and must work before libc's own
 * initialization has finished. */
#include "alloc/os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

void *os_map(size_t len) {
    long r = os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return os_failed(r) ? NULL : (void *)r;
}

void *os_map_aligned(size_t len, size_t align) {
    if (align <= OS_PAGE_SIZE) return os_map(len);
    if (len + align < len) return NULL;
    /* Over-map by the alignment and trim both ends: two extra munmaps, but only
     * on the rare path of a new chunk or an over-aligned large span. */
    size_t span = len + align - OS_PAGE_SIZE;
    char *raw = os_map(span);
    if (raw == NULL) return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = span - head - len;
    if (head) os_munmap(raw, head);
    if (tail) os_munmap((char *)start + len, tail);
    return (void *)start;
}

void os_unmap(void *addr, size_t len) { os_munmap(addr, len); }

void os_decommit(void *addr, size_t len) { os_madvise(addr, len, MADV_DONTNEED); }

uint64_t os_now_ns(void) {
    struct timespec ts;
    int saved = errno;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no allocation, no lock */
    errno = saved;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

pid_t os_getpid(void) { return (pid_t)os_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0); }
pid_t os_gettid(void) { return (pid_t)os_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0); }

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

long os_read_small_file(const char *path, char *buf, size_t cap) {
    long fd = os_syscall6(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd < 0) return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        long n = os_syscall6(SYS_read, fd, (long)(buf + len), (long)(cap - 1 - len), 0, 0, 0);
        if (n == -EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    os_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    buf[len] = '\0';
    return (long)len;
}

long os_open(const char *path, int flags, int mode) {
    return os_syscall6(SYS_openat, AT_FDCWD, (long)path, flags, mode, 0, 0);
}

void os_close(int fd) { os_syscall6(SYS_close, fd, 0, 0, 0, 0, 0); }

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

void os_futex_wait(_Atomic int *addr, int expected) {
    os_syscall6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, expected, 0, 0, 0);
}

void os_futex_wake(_Atomic int *addr, int count) {
    os_syscall6(SYS_futex, (long)addr, FUTEX_WAKE_PRIVATE, count, 0, 0, 0);
}

void os_yield(void) { os_syscall6(SYS_sched_yield, 0, 0, 0, 0, 0, 0); }
