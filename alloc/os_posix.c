/* The parts of the platform interface (alloc/os.h) that POSIX threads give
 * every platform alike: the thread-exit hook and the fork hooks.  Linked with
 * each platform's own file (the Makefile's MB_OS_BASE_SRCS). */
#include <pthread.h>
#include <stdbool.h>

#include "alloc/os.h"

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
