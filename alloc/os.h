/* Raw system calls for the allocator.  Nothing here touches errno, calls libc's
 * mmap (which we wrap) or allocates; every result is returned as a value, a
 * negative one being -errno. */
#ifndef MEMBUDGET_ALLOC_OS_H
#define MEMBUDGET_ALLOC_OS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OS_PAGE_SIZE ((size_t)4096)

long os_syscall6(long nr, long a, long b, long c, long d, long e, long f);

/* mmap/munmap/madvise/mremap without errno: failures come back as -errno
 * (for the pointer-returning calls, as a value in [-4095, -1]). */
long os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
long os_munmap(void *addr, size_t len);
long os_madvise(void *addr, size_t len, int advice);
long os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr);
static inline int os_failed(long r) { return (unsigned long)r > (unsigned long)-4096L; }

/* A fresh anonymous read-write mapping of `len` bytes, or NULL. */
void *os_map(size_t len);
/* A fresh anonymous read-write mapping of `len` bytes aligned to `align`
 * (a power of two >= OS_PAGE_SIZE), or NULL. */
void *os_map_aligned(size_t len, size_t align);
void os_unmap(void *addr, size_t len);
/* Gives the pages back to the OS; their contents read as zero afterwards. */
void os_decommit(void *addr, size_t len);

uint64_t os_now_ns(void);
pid_t os_getpid(void);
pid_t os_gettid(void);
/* Writes all len bytes, again after a short write or EINTR: 0, or -errno
 * (-EIO when the file takes no more). */
long os_write_all(int fd, const void *buf, size_t len);
/* Reads up to cap-1 bytes of a small file into buf, NUL-terminated; returns the
 * length or -1. */
long os_read_small_file(const char *path, char *buf, size_t cap);
/* The process's name from /proc/self/comm, or "?" when it cannot be read. */
void os_read_comm(char *out, size_t cap);

/* open(2)/close(2) without errno: a file descriptor, or -errno. */
long os_open(const char *path, int flags, int mode);
void os_close(int fd);
/* CLOCK_REALTIME in nanoseconds since the epoch (vDSO: no allocation). */
uint64_t os_realtime_ns(void);
/* Sleeps for ns nanoseconds (or until a signal). */
void os_sleep_ns(uint64_t ns);

void os_futex_wait(_Atomic int *addr, int expected);
void os_futex_wake(_Atomic int *addr, int count);
void os_yield(void);

#endif
