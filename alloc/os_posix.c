/* The parts of the platform interface (alloc/os.h) that POSIX gives every
 * platform alike: the small-file reader (on the platform's os_open/os_read),
 * the thread-exit hook and the fork hooks.  Linked with each platform's own
 * file (the Makefile's MB_OS_BASE_SRCS). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>

#include "alloc/os.h"

long os_open_small_file(const char *path) {
    return os_open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
}

long os_read_small_file(const char *path, char *buf, size_t cap) {
    long fd = os_open_small_file(path);
    if (fd < 0) return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        long n = os_read((int)fd, buf + len, cap - 1 - len);
        if (n == -EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    os_close((int)fd);
    buf[len] = '\0';
    return (long)len;
}

static pthread_key_t exit_key;
static bool exit_key_ok;

bool os_thread_exit_init(void (*fn)(void *value)) {
    /* pthread_key_create takes no lock of ours and does not allocate. */
    exit_key_ok = pthread_key_create(&exit_key, fn) == 0;
    return exit_key_ok;
}

void os_thread_exit_arm(void *value) {
    /* pthread_setspecific may allocate (glibc: keys >= 32). */
    if (exit_key_ok) pthread_setspecific(exit_key, value);
}

int os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
    return pthread_atfork(prepare, parent, child);
}
