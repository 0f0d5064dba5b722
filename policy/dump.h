/* The death dump (DESIGN §6, first version; schema in docs/dump.md): one JSON
 * document with the limit and its inputs, the footprint and its breakdown, the
 * policy history and the live bytes of every size class.  Written with
 * write(2) from a buffer reserved at start-up: no malloc, no stdio, and no lock
 * an allocating thread may hold, so the dying thread may write it from inside
 * the allocator.  The file is created O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, so
 * an existing file or a symbolic link at the path is never followed or
 * overwritten; a report of a crossing then goes to a random name beside it;
 * when none can be created, a summary goes to stderr instead. */
#ifndef MEMBUDGET_POLICY_DUMP_H
#define MEMBUDGET_POLICY_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct membudget_stats;

enum mb_dump_reason {
    MB_DUMP_KILL = 0, /* MEMBUDGET_ACTION=abort: the process dies */
    MB_DUMP_FAIL,     /* MEMBUDGET_ACTION=fail: an allocation was refused */
    MB_DUMP_WARN,     /* MEMBUDGET_ACTION=warn */
    MB_DUMP_REQUEST   /* membudget_dump() */
};

/* Remembers where reports go ($TMPDIR is read here, once) and the function that
 * fills the allocator statistics (the ABI layer adds the mapping bytes).  From
 * the constructor. */
void mb_dump_init(void (*fill_stats)(struct membudget_stats *out, bool wait));

/* The report path for this process: MEMBUDGET_REPORT with %p expanded, else
 * $TMPDIR/membudget.<pid>.json.  The n-th report of a process (n >= 2, warn
 * mode) gets ".n" before a final ".json".  Returns false when it does not fit. */
int mb_dump_path(char *out, size_t cap, unsigned n);

/* Writes the dump to a new file at path; 0 or a negative errno. */
int mb_dump_write_path(const char *path, enum mb_dump_reason reason, uint64_t footprint_bytes);

/* A crossing of the kill threshold: creates the next report file (at
 * mb_dump_path, or, when a file or link is there, at that name with a random
 * ".XXXXXXXX" before ".json"), writes the one greppable line to stderr
 * ("membudget: pid P (comm) exceeded its memory budget: footprint X >= limit Y
 * (source); report: PATH", the file written), then the dump, or a summary on
 * stderr when no file can be created. */
void mb_dump_report(enum mb_dump_reason reason, uint64_t footprint_bytes);

/* A report asked for from outside (`membudget dump PID`): the next report
 * file of the process, created as mb_dump_report does (a random name beside
 * a taken one), written with reason "request"; the process goes on.  path
 * receives the name used (or tried).  0, or a negative errno. */
int mb_dump_request(char *path, size_t cap);

/* The "critical memory usage" line of StrictSynchronous. */
void mb_dump_critical_line(uint64_t footprint_bytes, uint64_t threshold_bytes);

/* In a fork child: report numbering starts over (the pid changed). */
void mb_dump_atfork_child(void);

#endif
