/* How `membudget run` makes sure that the library starts in the command, and
 * says so when it cannot (tools/run_start.c): a preload path that LD_PRELOAD
 * can carry, the checks before exec (a static, setuid or foreign-architecture
 * program never loads it), and the handshake after exec
 * (preload/handshake.h). */
#ifndef MEMBUDGET_TOOLS_RUN_START_H
#define MEMBUDGET_TOOLS_RUN_START_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- the preload path ---- */

struct run_preload {
    char path[PATH_MAX + 32]; /* what LD_PRELOAD names */
    char link_dir[PATH_MAX];  /* "" unless a private directory holds a link */
};

/* LD_PRELOAD splits its value at spaces and colons and expands '$' tokens:
 * a library whose path holds any of them (or anything but [A-Za-z0-9/._+-])
 * is named through a symbolic link, libmembudget.so, in a new directory
 * $TMPDIR/membudget-lib.XXXXXX (mode 0700; /tmp when $TMPDIR is unset or has
 * such characters itself).  Returns false after an error line. */
bool run_preload_prepare(const char *lib, struct run_preload *pre);
/* Removes the link and its directory, if any. */
void run_preload_finish(struct run_preload *pre);

/* ---- before exec ---- */

/* false, with the reason in `why` ("it is statically linked ..."), when the
 * dynamic loader will not preload `lib` into the program `cmd` (found as
 * execvp finds it; a script is judged by its interpreter): a static program,
 * one that runs in secure mode (setuid, setgid, file capabilities), one built
 * for another ELF class or machine.  true when nothing stands in the way, or
 * when the program cannot be read (exec then has its say). */
bool run_can_preload(const char *cmd, const char *lib, char *why, size_t cap);
/* The file execvp would run for cmd: cmd itself when it has a slash, else the
 * first executable regular file of that name along $PATH. */
bool run_find_command(const char *cmd, char *out, size_t cap);

/* ---- after exec: the handshake ---- */

struct run_handshake {
    int ours;           /* the end `run` reads */
    int theirs;         /* the end the command inherits */
    char env_value[64]; /* MEMBUDGET_HANDSHAKE's value: "FD:INODE" */
};

/* The socket pair, both ends close-on-exec; run_handshake_child clears the
 * flag on `theirs` in the child and sets the variable.  false after an error
 * line. */
bool run_handshake_open(struct run_handshake *hs);
void run_handshake_child(const struct run_handshake *hs);
/* In the parent after fork: closes `theirs`. */
void run_handshake_parent(struct run_handshake *hs);
void run_handshake_close(struct run_handshake *hs);

/* Whatever the result, the caller learns from the status it reaps whether the
 * command ended by itself (it ran without a budget) or by a SIGKILL of
 * `run`'s (it was stopped in time). */
enum run_start_result {
    RUN_START_LIVE,      /* the library answered from the command's own pid */
    RUN_START_EXITED,    /* the command ended without an answer */
    RUN_START_NO_ANSWER, /* no answer in the time */
    RUN_START_CLOSED,    /* every copy of the other end was closed unanswered */
    RUN_START_FOREIGN,   /* loaded, but the command's malloc is another's */
    RUN_START_OTHER_PID, /* the answer came from a descendant, not the command */
};

/* Waits up to `seconds` for the answer of the library in process `pid`,
 * watching the process: returns as soon as the answer comes or the process
 * ends (not reaped: waitpid is the caller's).  Anything but RUN_START_LIVE
 * leaves a reason in `why`. */
enum run_start_result run_handshake_wait(struct run_handshake *hs, pid_t pid, double seconds,
                                         char *why, size_t cap);

#endif
