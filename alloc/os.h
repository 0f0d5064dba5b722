/* The platform interface (DESIGN §1, layer 0): everything membudget needs that
 * differs between operating systems, and nothing else.  The layers above call
 * these functions and never a system call, a /proc or /sys path, or an
 * OS-specific header of their own.
 *
 * Implementations, chosen by the Makefile from the target OS (MB_OS):
 *   Linux   alloc/os_linux.c       memory, files, clocks, waiting, process facts,
 *                                  the footprint, thread-exit and fork hooks,
 *                                  the live pages' location
 *           policy/limits_linux.c  RAM and container limits (ramSize's inputs),
 *                                  the container's usage file
 *           policy/modules_linux.c the loaded modules (policy/modules.h: ELF,
 *                                  /proc/self/maps)
 *           policy/machine_linux.c the machine's and the container's memory
 *                                  (policy/machine.h: PSI, meminfo, the
 *                                  cgroup's usage and limits)
 *           preload/interpose_linux.h  the exported names (MB_INTERPOSE_H):
 *                                  ELF aliases of the mb_* entry points
 *   alloc/os.c holds what is written once on top of these (os_map_aligned).
 * A new platform is new files beside these, named by the OS, and one block of
 * the Makefile.
 *
 * Conventions: nothing here touches errno, calls libc's mmap (which we wrap) or
 * allocates; everything may run inside malloc, before libc has finished
 * starting.  Failures come back as values: -errno for the calls that return
 * long (for the pointer-returning ones, a value in [-4095, -1]: os_failed). */
#ifndef MEMBUDGET_ALLOC_OS_H
#define MEMBUDGET_ALLOC_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define OS_PAGE_SIZE ((size_t)4096)

static inline int os_failed(long r) { return (unsigned long)r > (unsigned long)-4096L; }

/* ---- memory ------------------------------------------------------------- */

/* mmap/munmap/madvise without errno. */
long os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
long os_munmap(void *addr, size_t len);
long os_madvise(void *addr, size_t len, int advice);
/* mremap(2) with the caller's flags, for the exported mremap (preload/mmap.c). */
long os_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr);
/* Grows or shrinks an anonymous mapping, moving it if need be: the new address,
 * or -errno (-ENOSYS where the OS cannot, and the caller copies instead). */
long os_remap(void *old_addr, size_t old_len, size_t new_len);

/* A fresh anonymous read-write mapping of `len` bytes, or NULL. */
void *os_map(size_t len);
/* A fresh anonymous read-write mapping of `len` bytes aligned to `align`
 * (a power of two >= OS_PAGE_SIZE), or NULL. */
void *os_map_aligned(size_t len, size_t align);
void os_unmap(void *addr, size_t len);
/* Gives the pages back to the OS; their contents read as zero afterwards. */
void os_decommit(void *addr, size_t len);
/* Makes whole pages read-only: 0, or -errno. */
long os_protect_readonly(void *addr, size_t len);
/* Is the page holding p mapped at all? */
bool os_page_mapped(const void *p);
/* Copies n bytes of our own address space without faulting on an unmapped
 * page: the number of bytes copied, or -errno when the OS refuses. */
long os_read_own_memory(void *dst, const void *src, size_t n);

/* ---- time, identity, randomness, waiting ----------------------------------- */

uint64_t os_now_ns(void);      /* monotonic, nanoseconds */
uint64_t os_realtime_ns(void); /* since the epoch, nanoseconds */
void os_sleep_ns(uint64_t ns); /* or until a signal */
pid_t os_getpid(void);
pid_t os_gettid(void);
uint32_t os_geteuid(void);
/* Fills buf with n unpredictable bytes without blocking; false when the OS has
 * none to give yet (the caller mixes clocks instead). */
bool os_random(void *buf, size_t n);
/* Waits while *addr == expected (or spuriously); wakes up to count waiters. */
void os_futex_wait(_Atomic int *addr, int expected);
void os_futex_wake(_Atomic int *addr, int count);
/* The same on a word of a mapping other processes share (a live page): waits
 * while *addr == expected, at most timeout_ns (0: no limit), or until a
 * signal or a wake from any process mapping the same file.  0 when woken,
 * -ETIMEDOUT, -EAGAIN (the word differed), -EINTR, or -EFAULT (the mapping
 * no longer has the word: a file cut short). */
long os_futex_wait_shared(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns);
/* Wakes up to count waiters of a shared word; -EFAULT as above. */
long os_futex_wake_shared(_Atomic uint32_t *addr, int count);
void os_yield(void);

/* ---- files -------------------------------------------------------------- */

/* open(2)/openat(2): a file descriptor, or -errno.  dirfd may be AT_FDCWD. */
long os_open(const char *path, int flags, int mode);
long os_openat(int dirfd, const char *name, int flags, int mode);
void os_close(int fd);
/* read(2): the bytes read, 0 at the end, or -errno (-EINTR included). */
long os_read(int fd, void *buf, size_t len);
/* Writes all len bytes, again after a short write or EINTR: 0, or -errno
 * (-EIO when the file takes no more). */
long os_write_all(int fd, const void *buf, size_t len);
long os_mkdir(const char *path, int mode);
long os_unlinkat(int dirfd, const char *name);
long os_fstat(int fd, struct stat *st);
/* Sizes a new file to len bytes with its storage allocated, so that writing a
 * shared mapping of it cannot fault (SIGBUS) when the filesystem is full:
 * 0, or -errno (-ENOSPC then, before anything is mapped). */
long os_file_allocate(int fd, off_t len);
/* A new regular file of len bytes (storage allocated), mode 0600, in dirfd,
 * that no other process can open before os_file_publish gives it the name
 * `name`: a file made and filled this way is never seen half-written, and a
 * process killed before publishing leaves nothing behind (Linux: O_TMPFILE;
 * macOS: a hidden temporary name beside it, which a crash leaves).  The fd,
 * or -errno; -EOPNOTSUPP when the filesystem cannot (then create the file in
 * place). */
long os_file_create_unnamed(int dirfd, const char *name, off_t len);
/* Gives that file its name in dirfd, unless a file has it already: 0, or
 * -errno (-EEXIST: another process published first). */
long os_file_publish(int fd, int dirfd, const char *name);
/* Opens a file of the OS (/proc, /sys, cgroup files) for reading: without
 * following a link at its last component, without blocking (a FIFO put in its
 * place), close-on-exec.  A file descriptor, or -errno. */
long os_open_small_file(const char *path);
/* Reads up to cap-1 bytes of such a file into buf, NUL-terminated; returns the
 * length or -1: the one small-file reader, for every layer. */
long os_read_small_file(const char *path, char *buf, size_t cap);

/* ---- the process ---------------------------------------------------------- */

/* The process's name, or "?" when it cannot be read. */
void os_read_comm(char *out, size_t cap);
/* When the process started, in the OS's unit (Linux: clock ticks after boot,
 * field 22 of /proc/<pid>/stat): with the pid, it tells this process from a
 * later one of the same pid.  0 when it cannot be read. */
uint64_t os_start_time(void);
/* Whether process pid runs and started at start (os_start_time's unit; 0:
 * whenever it started).
 * GONE: no such process, a zombie, or a later process of the same pid.
 * UNKNOWN: the process exists but its start time cannot be read now (no file
 * descriptor left, memory, a /proc this process may not read): the caller
 * must count it as live, never take its place.  Reads the OS's file with
 * os_open_small_file; never blocks, never allocates, keeps errno. */
enum os_process_state { OS_PROCESS_GONE, OS_PROCESS_RUNNING, OS_PROCESS_UNKNOWN };
enum os_process_state os_process_state(pid_t pid, uint64_t start);
/* The process runs with privileges its invoker lacks (setuid, capabilities):
 * the environment is not to be trusted. */
bool os_secure_exec(void);
/* The OS view of the footprint (DESIGN §3): resident anonymous memory and what
 * of it is swapped out (Linux: RssAnon and VmSwap of /proc/self/status).
 * False, with both 0, when it cannot be read; a missing swap figure reads 0. */
bool os_footprint(uint64_t *resident_anon_bytes, uint64_t *swap_bytes);
/* The number of threads the process has now, or 0 when it cannot be read. */
unsigned os_thread_count(void);

/* The address range of the library's own machine code, to tell our frames
 * from the program's in a backtrace; [0, 0) when the library is linked into a
 * test program (MB_NO_EXPORTS: one object). */
void os_own_text(uintptr_t *start, uintptr_t *end);

/* ---- threads and hooks ------------------------------------------------------ */

/* Names the calling thread (ps, top, gdb). */
void os_name_this_thread(const char *name);

/* fn(value) runs when a thread that armed the hook with a non-NULL value
 * exits.  Init once (no allocation, no lock of ours); false when the OS has no
 * slot left.  Arming may allocate through us: callers pause the budget. */
bool os_thread_exit_init(void (*fn)(void *value));
void os_thread_exit_arm(void *value);
/* Runs prepare before fork, parent and child after it; 0 or an errno value. */
int os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* ---- RAM and container limits (policy/limits.h) ------------------------------ */

struct mb_limits;
/* Fills ramSize's inputs that the OS knows: physical RAM and the container's
 * memory limit, each with the text of where it came from, and the container's
 * directory (phys_*, cgroup_* of struct mb_limits).  Files are read under root
 * ("/" or NULL for the real ones; tests use fake trees).  Never fails: what
 * cannot be read is said so in the text. */
void os_limits_probe(struct mb_limits *lim, const char *root);
/* The file holding the container's current memory use (the footprint with
 * MEMBUDGET_FOOTPRINT=cgroup); false when there is none or it does not fit. */
bool os_container_usage_file(const struct mb_limits *lim, char *out, size_t cap);

/* ---- the machine's and the container's memory (policy/machine.h) --------------- */

struct mb_machine_files;
struct mb_machine_reading;
/* Where the pressure sources are: the memory PSI file (Linux: the cgroup's
 * memory.pressure on v2, else /proc/pressure/memory), the meminfo file, the
 * container's directory from lim.  psi_file and meminfo_file, when not "",
 * replace the system's (the test variables). */
void os_machine_files(const struct mb_limits *lim, const char *psi_file, const char *meminfo_file,
                      struct mb_machine_files *out);
/* Reads every source once, with the small-file reader, into stack buffers:
 * PSI, MemTotal and MemAvailable, the container's usage, high and max limits,
 * and its limit as ramSize takes it (followed while the process runs). */
void os_machine_read(const struct mb_machine_files *f, struct mb_machine_reading *out);

/* ---- the live statistics pages (policy/statspage.h) -------------------------- */

/* The directory holding each user's directory of pages (Linux: /dev/shm, a
 * tmpfs every process can reach). */
const char *os_statspage_root(void);

#endif
