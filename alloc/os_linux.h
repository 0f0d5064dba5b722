/* Linux only: the raw system call beneath alloc/os_linux.c, for the Linux
 * implementation files of the platform interface (alloc/os.h) and the jemalloc
 * backend, which is Linux-only.  Returns -errno on failure, never touches errno. */
#ifndef MEMBUDGET_ALLOC_OS_LINUX_H
#define MEMBUDGET_ALLOC_OS_LINUX_H

#include "alloc/os.h"

long os_syscall6(long nr, long a, long b, long c, long d, long e, long f);

#endif
