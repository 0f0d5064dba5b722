/* What the command learns about processes from the operating system, one
 * small function per need, so that the readers (tools/livestats.c,
 * tools/stat_out.c, tools/cli.c, tools/membudget.c, tools/run_*.c) have no
 * /proc path or OS call of their own.  tools/proc_linux.c reads /proc;
 * tools/proc_darwin.c asks libproc and sysctl (the Makefile's platform block
 * picks one: TOOL_PROC_SRC). */
#ifndef MEMBUDGET_TOOLS_PROC_H
#define MEMBUDGET_TOOLS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The effective uid of process pid; false with errno set when it cannot be
 * read (EIO: an answer that does not parse). */
bool proc_owner(pid_t pid, uid_t *uid);

/* The process's state letter ('Z' for a zombie, '?' when the OS has none to
 * give) and its start time, in the unit of the library's os_start_time()
 * (Linux: clock ticks after boot; Darwin: microseconds since the epoch).  false
 * when unreadable. */
bool proc_state_start(pid_t pid, char *state, uint64_t *start);

/* Calls fn with the path of each file the process maps until fn returns true:
 * -1 when its mappings cannot be read, else whether fn returned true. */
int proc_maps_paths(pid_t pid, bool (*fn)(void *ctx, const char *path), void *ctx);

/* The command line, its arguments joined by spaces; "" when unreadable. */
void proc_cmdline(pid_t pid, char *out, size_t cap);

/* The path of the running executable; false when unknown. */
bool proc_self_exe(char *out, size_t cap);

/* The variable that names libraries for the dynamic loader to insert
 * ("LD_PRELOAD", "DYLD_INSERT_LIBRARIES"). */
const char *proc_preload_variable(void);

/* The library's file name: libmembudget.so, libmembudget.dylib. */
const char *proc_library_file(void);

/* What to add when the library did not start in a command: "" on Linux (the
 * checks before exec have said it all); on Darwin, the reasons dyld drops
 * DYLD_INSERT_LIBRARIES that cannot be seen from outside. */
const char *proc_not_live_hint(void);

/* A signal's name: "SIGKILL", "SIGRTMIN+3" (Linux), else "signal N". */
void proc_signal_name(int sig, char *buf, size_t cap);

/* pipe(2) with both ends close-on-exec: 0, or -1 with errno. */
int proc_pipe_cloexec(int fds[2]);

/* A connected pair of local sockets that keeps message boundaries (the
 * handshake of preload/handshake.h), both ends close-on-exec: 0 or -1. */
int proc_socketpair_cloexec(int fds[2]);

#endif
